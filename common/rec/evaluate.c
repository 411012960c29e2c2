/* evaluate.c - rankings in, metric tables out. */
#include "rec/evaluate.h"

#include "io/err.h"
#include "io/stream.h"
#include "records/candidates.h"
#include "records/rankings.h"
#include "rec/metrics.h"

#include <jansson.h>
#include <stdbool.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static method_ranking *find_or_add(method_ranking **ms, int *n, const char *name, int32_t n_users, const char *file) {
    for (int k = 0; k < *n; k++)
        if (strcmp((*ms)[k].name, name) == 0) return &(*ms)[k];
    if (*n == EVAL_MAX_METHODS) die_at(file, -1, "more than %d methods", EVAL_MAX_METHODS);
    *ms = xrealloc(*ms, sizeof **ms * (size_t)(*n + 1));
    method_ranking *m = &(*ms)[(*n)++];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->n_users = n_users;
    m->items = xcalloc((size_t)n_users, sizeof *m->items);
    m->len = xcalloc((size_t)n_users, sizeof *m->len);
    m->from = xcalloc((size_t)n_users, sizeof *m->from);
    return m;
}

/* The stream's params.scheme must match the interactions' scheme when both are known. */
static void check_scheme(stream_reader *r, const char *scheme, const interactions *ia) {
    if (!scheme || !ia->scheme[0]) return;
    if (strcmp(ia->scheme, scheme) != 0)
        die_at(sr_name(r), 0, "field 'params.scheme': '%s' does not match the interactions' scheme '%s' (%s)", scheme,
               ia->scheme, ia->source);
}

/* Each load call has its own id, so a method may come from two inputs (fuse's `base` and the
 * candidates) as long as they agree, while a repeat within one input is an error. */
static int32_t load_calls;

/* User u's ranking items[0..n) (the current record of r) into m. */
static void store(stream_reader *r, method_ranking *m, int64_t u, const int32_t *items, int n, const interactions *ia) {
    if (u < 0 || u >= ia->n_users) sr_fail(r, "field 'user': %lld is not a user of %s", (long long)u, ia->source);
    if (m->items[u]) {
        if (m->from[u] == load_calls)
            sr_fail(r, "field 'user': duplicate ranking for user %lld (method %s)", (long long)u, m->name);
        if (n != m->len[u] || memcmp(items, m->items[u], sizeof *items * (size_t)n) != 0)
            sr_fail(r, "field 'items': the %s ranking of user %lld differs from the one in an earlier input", m->name,
                    (long long)u);
        return;
    }
    m->from[u] = load_calls;
    m->items[u] = xmalloc(sizeof(int32_t) * ((size_t)n + 1));
    memcpy(m->items[u], items, sizeof *items * (size_t)n);
    m->len[u] = n;
}

void rankings_load(method_ranking **ms, int *n, const char *path, const interactions *ia) {
    load_calls++;
    stream_reader *r = sr_open(path, RANKINGS_SCHEMA, 1);
    rankings_head h;
    rankings_head_read(r, &h);
    check_scheme(r, h.scheme, ia);
    ranking_rec k = {0};
    while (rankings_next(r, &k)) {
        char name[sizeof k.method + 6];
        bool mark = h.leaky && strcmp(k.method, "base") != 0;
        if (mark && !strstr(k.method, "LEAKY")) {
            snprintf(name, sizeof name, "LEAKY %s", k.method);
            if (strlen(name) >= 32) sr_fail(r, "field 'method': '%s' is longer than 31 bytes", name);
        } else
            snprintf(name, sizeof name, "%s", k.method);
        method_ranking *m = find_or_add(ms, n, name, ia->n_users, sr_name(r));
        m->leaky |= mark;
        store(r, m, k.user, k.items, k.n_items, ia);
    }
    rankings_head_free(&h);
    sr_close(r);
}

void candidates_load_as_method(method_ranking **ms, int *n, const char *path, const interactions *ia, const char *name) {
    load_calls++;
    stream_reader *r = sr_open(path, CANDIDATES_SCHEMA, 1);
    cand_head h;
    cand_head_read(r, &h);
    check_scheme(r, h.scheme, ia);
    cand_head_free(&h);
    method_ranking *m = find_or_add(ms, n, name, ia->n_users, sr_name(r));
    cand_rec c = {0};
    while (candidates_next(r, &c)) store(r, m, c.user, c.items, c.n_items, ia);
    sr_close(r);
}

void method_rankings_free(method_ranking *ms, int n) {
    for (int k = 0; k < n; k++) {
        for (int32_t u = 0; u < ms[k].n_users; u++) free(ms[k].items[u]);
        free(ms[k].items);
        free(ms[k].len);
        free(ms[k].from);
    }
    free(ms);
}

void eval_compute(eval_table *t, const interactions *ia, part_t part, method_ranking *ms, int n, const eval_params *p) {
    memset(t, 0, sizeof *t);
    t->p = *p;
    t->methods = ms;
    t->n_methods = n;
    snprintf(t->scheme, sizeof t->scheme, "%s", ia->scheme[0] ? ia->scheme : "unknown");
    snprintf(t->part, sizeof t->part, "%s", part_name(part));
    for (int mi = 0; mi < n; mi++) t->leaky |= ms[mi].leaky;
    user_lists pos;
    user_lists_build(&pos, ia, PART_BIT(part), ia->like);
    t->n_cols = 3 * p->n_k + 1;
    t->col_names = xcalloc((size_t)t->n_cols, sizeof *t->col_names);
    for (int k = 0; k < p->n_k; k++) {
        snprintf(t->col_names[3 * k], 16, "H@%d", p->ks[k]);
        snprintf(t->col_names[3 * k + 1], 16, "N@%d", p->ks[k]);
        snprintf(t->col_names[3 * k + 2], 16, "R@%d", p->ks[k]);
    }
    snprintf(t->col_names[3 * p->n_k], 16, "MRR");
    int32_t *users = xmalloc(sizeof *users * (size_t)(pos.n_users + 1));
    for (int32_t u = 0; u < pos.n_users; u++)
        if (ul_len(&pos, u) > 0) users[t->n_users++] = u;
    int NU = t->n_users, NC = t->n_cols;
    /* per (method, column, user) values, kept for the paired bootstrap */
    double *v = xcalloc((size_t)n * NC * (NU ? NU : 1), sizeof *v);
    for (int mi = 0; mi < n; mi++)
        for (int k = 0; k < NU; k++) {
            int32_t u = users[k];
            const int32_t *rk = u < ms[mi].n_users ? ms[mi].items[u] : NULL;
            int len = rk ? ms[mi].len[u] : 0;
            const int32_t *ps = pos.item + pos.off[u];
            int np = ul_len(&pos, u);
            double *row = v + ((size_t)mi * NC) * NU;
            for (int kk = 0; kk < p->n_k; kk++) {
                row[(size_t)(3 * kk) * NU + k] = metric_hr(rk, len, ps, np, p->ks[kk]);
                row[(size_t)(3 * kk + 1) * NU + k] = metric_ndcg(rk, len, ps, np, p->ks[kk]);
                row[(size_t)(3 * kk + 2) * NU + k] = metric_recall(rk, len, ps, np, p->ks[kk]);
            }
            row[(size_t)(3 * p->n_k) * NU + k] = metric_mrr(rk, len, ps, np);
        }
    t->mean = xcalloc((size_t)n * NC, sizeof(double));
    t->lo = xcalloc((size_t)n * NC, sizeof(double));
    t->hi = xcalloc((size_t)n * NC, sizeof(double));
    t->diff = xcalloc((size_t)n * NC, sizeof(double));
    t->baseline_index = -1;
    for (int mi = 0; mi < n; mi++)
        if (strcmp(ms[mi].name, p->baseline) == 0) t->baseline_index = mi;
    double *d = xmalloc(sizeof *d * (size_t)(NU ? NU : 1));
    for (int mi = 0; mi < n; mi++)
        for (int c = 0; c < NC; c++) {
            const double *a = v + ((size_t)mi * NC + c) * NU;
            double s = 0;
            for (int k = 0; k < NU; k++) s += a[k];
            t->mean[mi * NC + c] = NU ? s / NU : 0;
            if (t->baseline_index >= 0 && mi != t->baseline_index) {
                const double *b = v + ((size_t)t->baseline_index * NC + c) * NU;
                for (int k = 0; k < NU; k++) d[k] = a[k] - b[k];
                /* Same seed for every column and method: the same resampled user sets, so intervals
                 * of different methods are comparable. */
                bootstrap_mean_ci(d, NU, p->bootstrap, 0.95, p->seed, &t->diff[mi * NC + c], &t->lo[mi * NC + c],
                                  &t->hi[mi * NC + c]);
            }
        }
    free(d);
    free(v);
    free(users);
    user_lists_free(&pos);
}

static int col_index(const eval_table *t, char kind, int k) {
    for (int kk = 0; kk < t->p.n_k; kk++)
        if (t->p.ks[kk] == k) return 3 * kk + (kind == 'H' ? 0 : kind == 'N' ? 1 : 2);
    return -1;
}

void eval_write_md(const eval_table *t, FILE *out) {
    int NC = t->n_cols;
    if (t->leaky)
        fprintf(out, "**LEAKY** diagnostic: the rows marked LEAKY were made with RecRanker's hints, which read "
                     "held-out ratings (promptgen --hints recranker-leaky); they are not results.\n\n");
    fprintf(out, "Protocol `%s`, part `%s`%s: %d users with a positive.\n\n", t->scheme, t->part, t->leaky ? ", LEAKY" : "",
            t->n_users);
    fprintf(out, "| Method |");
    for (int k = 0; k < t->p.n_k; k++) fprintf(out, " H@%d | N@%d |", t->p.ks[k], t->p.ks[k]);
    fprintf(out, "\n|---|");
    for (int k = 0; k < t->p.n_k; k++) fprintf(out, "---:|---:|");
    fputc('\n', out);
    for (int mi = 0; mi < t->n_methods; mi++) {
        fprintf(out, "| %s |", t->methods[mi].name);
        for (int k = 0; k < t->p.n_k; k++)
            fprintf(out, " %.5f | %.5f |", t->mean[mi * NC + col_index(t, 'H', t->p.ks[k])],
                    t->mean[mi * NC + col_index(t, 'N', t->p.ks[k])]);
        fputc('\n', out);
    }
    int b = t->baseline_index;
    if (b < 0 || t->n_methods < 2) return;
    for (int mi = 0; mi < t->n_methods; mi++) {
        if (mi == b) continue;
        fprintf(out, "| Improvement of %s over %s |", t->methods[mi].name, t->methods[b].name);
        for (int k = 0; k < t->p.n_k; k++)
            for (int kind = 0; kind < 2; kind++) {
                int c = col_index(t, kind ? 'N' : 'H', t->p.ks[k]);
                double base = t->mean[b * NC + c];
                if (base > 0) fprintf(out, " %+.2f%% |", 100.0 * (t->mean[mi * NC + c] - base) / base);
                else fprintf(out, " n/a |");
            }
        fputc('\n', out);
    }
    if (t->p.bootstrap > 0) {
        fprintf(out, "\nPaired difference against `%s` with a 95%% bootstrap interval over users (%d resamples, seed %llu):\n\n",
                t->methods[b].name, t->p.bootstrap, (unsigned long long)t->p.seed);
        fprintf(out, "| Method |");
        for (int k = 0; k < t->p.n_k; k++) fprintf(out, " ΔH@%d | ΔN@%d |", t->p.ks[k], t->p.ks[k]);
        fprintf(out, "\n|---|");
        for (int k = 0; k < t->p.n_k; k++) fprintf(out, "---:|---:|");
        fputc('\n', out);
        for (int mi = 0; mi < t->n_methods; mi++) {
            if (mi == b) continue;
            fprintf(out, "| %s |", t->methods[mi].name);
            for (int k = 0; k < t->p.n_k; k++)
                for (int kind = 0; kind < 2; kind++) {
                    int c = mi * NC + col_index(t, kind ? 'N' : 'H', t->p.ks[k]);
                    fprintf(out, " %+.4f [%+.4f, %+.4f] |", t->diff[c], t->lo[c], t->hi[c]);
                }
            fputc('\n', out);
        }
    }
}

void eval_write_csv(const eval_table *t, FILE *out) {
    fprintf(out, "protocol,part,users,method");
    for (int c = 0; c < t->n_cols; c++) fprintf(out, ",%s", t->col_names[c]);
    fputc('\n', out);
    for (int mi = 0; mi < t->n_methods; mi++) {
        fprintf(out, "%s,%s,%d,%s", t->scheme, t->part, t->n_users, t->methods[mi].name);
        for (int c = 0; c < t->n_cols; c++) fprintf(out, ",%.17g", t->mean[mi * t->n_cols + c]);
        fputc('\n', out);
    }
}

void eval_write_json(const eval_table *t, FILE *out) {
    json_t *root = json_object(), *rows = json_array(), *boot = json_array();
    json_object_set_new(root, "protocol", json_string(t->scheme));
    json_object_set_new(root, "part", json_string(t->part));
    json_object_set_new(root, "users", json_integer(t->n_users));
    if (t->leaky) json_object_set_new(root, "leaky", json_true());
    for (int mi = 0; mi < t->n_methods; mi++) {
        json_t *row = json_object();
        json_object_set_new(row, "method", json_string(t->methods[mi].name));
        for (int c = 0; c < t->n_cols; c++) json_object_set_new(row, t->col_names[c], json_real(t->mean[mi * t->n_cols + c]));
        json_array_append_new(rows, row);
        if (t->baseline_index >= 0 && mi != t->baseline_index && t->p.bootstrap > 0)
            for (int c = 0; c < t->n_cols; c++) {
                int i = mi * t->n_cols + c;
                json_array_append_new(boot, json_pack("{s:s,s:s,s:s,s:f,s:f,s:f}", "method", t->methods[mi].name, "against",
                                                      t->methods[t->baseline_index].name, "metric", t->col_names[c],
                                                      "diff", t->diff[i], "lo", t->lo[i], "hi", t->hi[i]));
            }
    }
    json_object_set_new(root, "rows", rows);
    json_object_set_new(root, "bootstrap", boot);
    json_object_set_new(root, "bootstrap_resamples", json_integer(t->p.bootstrap));
    char *s = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    fputs(s, out);
    fputc('\n', out);
    free(s);
    json_decref(root);
}

void eval_free(eval_table *t) {
    free(t->col_names);
    free(t->mean);
    free(t->lo);
    free(t->hi);
    free(t->diff);
    memset(t, 0, sizeof *t);
}
