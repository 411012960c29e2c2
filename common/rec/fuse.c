/* fuse.c - answers in, hybrid rankings out (see fuse.h and docs/fuse.md). */
#include "rec/fuse.h"

#include "io/err.h"
#include "io/stream.h"
#include "records/answers.h"
#include "records/queries.h"
#include "records/rankings.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const METHOD_NAMES[FUSE_NMETHODS] = {"base", "pointwise", "pairwise", "listwise", "hybrid"};

void fuse_params_default(fuse_params *p) {
    memset(p, 0, sizeof *p);
    p->c1 = 0.05;
    p->c2 = 0.5;
    p->c3 = 0.025;
    p->lambda[0] = p->lambda[1] = p->lambda[2] = 1.0 / 3.0;
    p->point_score = FUSE_SCORE_EXPECTED;
    p->allow_missing = false;
}

const char *fuse_method_name(int m) { return m >= 0 && m < FUSE_NMETHODS ? METHOD_NAMES[m] : "?"; }
const char *fuse_point_score_name(fuse_point_score s) { return s == FUSE_SCORE_ARGMAX ? "argmax" : "expected"; }


/* ====================================================================== parsing */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
/* Letters, digits and every non-ASCII byte (part of a UTF-8 letter, most likely). */
static bool word_char(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80;
}
static bool ci_eq(const char *a, const char *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i])) return false;
    return true;
}

bool fuse_parse_point_text(const char *s, size_t n, int lo, int hi, int *rating) {
    size_t end = n;
    /* the last run of digits */
    while (end > 0 && !(s[end - 1] >= '0' && s[end - 1] <= '9')) end--;
    if (end == 0) return false;
    size_t start = end;
    while (start > 0 && s[start - 1] >= '0' && s[start - 1] <= '9') start--;
    while (start < end - 1 && s[start] == '0') start++; /* leading zeros */
    if (end - start > 9) return false; /* far outside any scale */
    long v = 0;
    for (size_t i = start; i < end; i++) v = v * 10 + (s[i] - '0');
    if (v < lo || v > hi) return false;
    *rating = (int)v;
    return true;
}

bool fuse_point_from_logp(const double *logp, int k, int lo, fuse_point_score mode, double *score) {
    int best = -1;
    for (int i = 0; i < k; i++)
        if (isfinite(logp[i]) && (best < 0 || logp[i] > logp[best])) best = i;
    if (best < 0) return false;
    if (mode == FUSE_SCORE_ARGMAX) {
        *score = lo + best;
        return true;
    }
    double sw = 0, swx = 0;
    for (int i = 0; i < k; i++) {
        if (!isfinite(logp[i])) continue;
        double w = exp(logp[i] - logp[best]);
        sw += w;
        swx += w * (lo + i);
    }
    *score = swx / sw;
    return true;
}

static bool has_word(const char *s, size_t n, const char *w) {
    size_t L = strlen(w);
    for (size_t i = 0; i + L <= n; i++)
        if (ci_eq(s + i, w, L) && (i == 0 || !word_char((unsigned char)s[i - 1])) &&
            (i + L == n || !word_char((unsigned char)s[i + L])))
            return true;
    return false;
}

int fuse_parse_pair_text(const char *s, size_t n) {
    if (has_word(s, n, "yes")) return 1;
    if (has_word(s, n, "no")) return 0;
    return -1;
}

int fuse_pair_from_logp(const double logp[2]) {
    if (!isfinite(logp[0]) && !isfinite(logp[1])) return -1;
    if (!isfinite(logp[0])) return 0;
    if (!isfinite(logp[1])) return 1;
    return logp[0] > logp[1] ? 1 : 0;
}

typedef struct {
    size_t len;
    int index;
} title_key;

static int cmp_title_key(const void *a, const void *b) {
    const title_key *x = a, *y = b;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->index - y->index;
}

typedef struct {
    size_t pos;
    int index;
} hit;

static int cmp_hit(const void *a, const void *b) {
    const hit *x = a, *y = b;
    if (x->pos != y->pos) return x->pos < y->pos ? -1 : 1;
    return x->index - y->index;
}

int fuse_parse_list_text(const char *s, size_t n, const char *const *titles, const size_t *title_len, int k,
                         int *order) {
    if (k <= 0) return 0;
    /* each title without surrounding white space and one pair of surrounding quotes */
    const char **tp = xmalloc(sizeof *tp * (size_t)k);
    title_key *keys = xmalloc(sizeof *keys * (size_t)k);
    for (int t = 0; t < k; t++) {
        const char *a = titles[t];
        size_t L = title_len[t];
        while (L && (*a == ' ' || *a == '\t' || *a == '\n')) a++, L--;
        while (L && (a[L - 1] == ' ' || a[L - 1] == '\t' || a[L - 1] == '\n')) L--;
        if (L >= 2 && (a[0] == '"' || a[0] == '\'') && a[L - 1] == a[0]) a++, L -= 2;
        tp[t] = a;
        keys[t] = (title_key){L, t};
    }
    qsort(keys, (size_t)k, sizeof *keys, cmp_title_key);
    unsigned char *used = xcalloc(n + 1, 1);
    bool *done = xcalloc((size_t)k, sizeof *done);
    int *group = xmalloc(sizeof *group * (size_t)k);
    hit *hits = xmalloc(sizeof *hits * (size_t)k);
    int n_hits = 0;
    for (int g = 0; g < k; g++) {
        int t = keys[g].index;
        size_t L = keys[g].len;
        if (done[t] || L == 0 || L > n) continue;
        const char *title = tp[t];
        /* candidates with the same title share its occurrences, in candidate order */
        int ng = 0;
        for (int h = g; h < k && keys[h].len == L; h++)
            if (!done[keys[h].index] && ci_eq(tp[keys[h].index], title, L)) {
                group[ng++] = keys[h].index;
                done[keys[h].index] = true;
            }
        bool wb_start = word_char((unsigned char)title[0]), wb_end = word_char((unsigned char)title[L - 1]);
        int occ = 0;
        for (size_t pos = 0; pos + L <= n;) {
            bool ok = ci_eq(s + pos, title, L) && !(wb_start && pos > 0 && word_char((unsigned char)s[pos - 1])) &&
                      !(wb_end && pos + L < n && word_char((unsigned char)s[pos + L]));
            for (size_t i = 0; ok && i < L; i++)
                if (used[pos + i]) ok = false;
            if (!ok) {
                pos++;
                continue;
            }
            memset(used + pos, 1, L);
            if (occ < ng) hits[n_hits++] = (hit){pos, group[occ]};
            occ++;
            pos += L;
        }
    }
    qsort(hits, (size_t)n_hits, sizeof *hits, cmp_hit);
    for (int i = 0; i < n_hits; i++) order[i] = hits[i].index;
    free(tp);
    free(keys);
    free(used);
    free(done);
    free(group);
    free(hits);
    return n_hits;
}

/* ====================================================================== fusion */

void fuse_utilities(int n, const double *score, const fuse_pair *pairs, int n_pairs, const int *list, int n_list,
                    const fuse_params *p, fuse_utils *u) {
    for (int m = 0; m < n; m++) {
        u->point[m] = score ? score[m] + p->c1 * (n - m) : 0;
        u->pair[m] = 0;
        u->list[m] = 0;
    }
    u->pair_fallbacks = 0;
    for (int k = 0; k < n_pairs; k++) {
        const fuse_pair *q = &pairs[k];
        if (q->ab == 1 && q->ba == 0) u->pair[q->a] += p->c2;
        else if (q->ab == 0 && q->ba == 1) u->pair[q->b] += p->c2;
        else {
            u->pair[q->a] += p->c2 / 2;
            u->pair[q->b] += p->c2 / 2;
            if (q->ab < 0 || q->ba < 0) u->pair_fallbacks++;
        }
    }
    for (int k = 0; k < n_list && k < FUSE_LIST_TOP; k++) u->list[list[k]] += p->c3 * (FUSE_LIST_TOP - k);
    for (int m = 0; m < n; m++)
        u->hybrid[m] = p->lambda[0] * u->point[m] + p->lambda[1] * u->pair[m] + p->lambda[2] * u->list[m];
}

typedef struct {
    double q;
    int m;
} sort_key;

static int cmp_sort_key(const void *a, const void *b) {
    const sort_key *x = a, *y = b;
    if (x->q != y->q) return x->q > y->q ? -1 : 1;
    return x->m - y->m;
}

void fuse_sort(int n, const double *u, int *order) {
    sort_key *k = xmalloc(sizeof *k * (size_t)(n > 0 ? n : 1));
    for (int m = 0; m < n; m++) k[m] = (sort_key){nearbyint(u[m] * 1e9), m};
    qsort(k, (size_t)n, sizeof *k, cmp_sort_key);
    for (int m = 0; m < n; m++) order[m] = k[m].m;
    free(k);
}

/* ====================================================================== the stage */

typedef struct {
    int64_t id;
    int task;
    int32_t user;
    long rec;       /* record index in the queries stream */
    int n;          /* items shown */
    int32_t *items; /* in the order shown */
    int32_t *ranks; /* their base ranks */
    char **titles;  /* listwise only */
    size_t *tlen;
    int64_t pair;   /* pairwise only */
    /* the answer */
    long ans_rec;   /* record index in the answers stream, 0: none */
    bool unparsed;
    double score;   /* pointwise */
    int yes;        /* pairwise: 1, 0, -1 */
    int *list;      /* listwise: indices into items, in the answer's order */
    int n_list;
} query;

typedef struct {
    long answers, unparsed, fallbacks, missing, partial;
} task_stats;

typedef struct {
    query *q;
    size_t n;
    int scale_lo, scale_hi;
    char *scheme, *part;
    const char *name;
    bool have[FUSE_NTASKS];
    bool leaky; /* params.leaky: the queries' hints are RecRanker's leaky ones (a diagnostic) */
} query_set;

/* The queries through records/queries: fuse needs the scheme, part and scale, and of every
 * record the items with their base ranks, the pair of a pairwise query, a listwise query's titles. */
static void read_queries(query_set *qs, const char *path) {
    memset(qs, 0, sizeof *qs);
    queries all;
    queries_load(&all, path, QH_SCHEME | QH_PART | QH_SCALE, QR_ITEMS | QR_RANKS | QR_TITLES | QR_PAIR);
    qs->name = xstrdup(all.h.source);
    qs->scheme = xstrdup(all.h.scheme);
    qs->part = xstrdup(all.h.part);
    qs->leaky = all.h.leaky;
    qs->scale_lo = all.h.scale_lo;
    qs->scale_hi = all.h.scale_hi;
    qs->n = all.n;
    qs->q = xcalloc(all.n ? all.n : 1, sizeof *qs->q);
    for (size_t k = 0; k < all.n; k++) {
        query_rec *r = &all.q[k];
        query *q = &qs->q[k];
        if (r->user < 0 || r->user > INT32_MAX) die_at(qs->name, r->rec, "field 'user': %lld is not an id", (long long)r->user);
        q->rec = r->rec;
        q->id = r->id;
        q->task = r->task;
        q->user = (int32_t)r->user;
        q->n = r->n_items;
        q->items = r->items; r->items = NULL;
        q->ranks = r->ranks; r->ranks = NULL;
        q->pair = r->pair;
        if (q->task == FUSE_LISTWISE) {
            q->titles = r->titles; r->titles = NULL; r->n_titles = 0;
            q->tlen = r->title_len; r->title_len = NULL;
        }
        qs->have[q->task] = true;
    }
    queries_free(&all);
}

static int cmp_query_id(const void *a, const void *b) {
    const query *x = *(query *const *)a, *y = *(query *const *)b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return x->rec < y->rec ? -1 : 1;
}

static int cmp_query_user(const void *a, const void *b) {
    const query *x = *(query *const *)a, *y = *(query *const *)b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->task != y->task) return x->task - y->task;
    if (x->task == FUSE_PAIRWISE && x->pair != y->pair) return x->pair < y->pair ? -1 : 1;
    return x->rec < y->rec ? -1 : (x->rec > y->rec);
}

/* One user's candidates and queries, validated. */
typedef struct {
    int32_t user;
    int n;          /* candidates */
    int32_t *item;  /* [n] by base rank */
    query **q;      /* this user's queries, sorted by task, pair, record */
    int nq;
} user_view;

static void check_user(const query_set *qs, user_view *uv) {
    const char *f = qs->name;
    int shown = 0;
    for (int k = 0; k < uv->nq; k++) shown += uv->q[k]->n;
    uv->item = xmalloc(sizeof *uv->item * (size_t)shown);
    for (int m = 0; m < shown; m++) uv->item[m] = -1;
    long *where = xcalloc((size_t)shown, sizeof *where);
    int n = 0;
    for (int k = 0; k < uv->nq; k++) {
        const query *q = uv->q[k];
        for (int i = 0; i < q->n; i++) {
            int m = q->ranks[i];
            if (m >= shown)
                die_at(f, q->rec, "field 'ranks[%d]': base rank %d, but the queries of user %d show only %d items", i, m,
                       uv->user, shown);
            if (uv->item[m] >= 0 && uv->item[m] != q->items[i])
                die_at(f, q->rec, "field 'ranks[%d]': user %d: base rank %d is item %d here but item %d in record %ld", i,
                       uv->user, m, q->items[i], uv->item[m], where[m]);
            uv->item[m] = q->items[i];
            where[m] = q->rec;
            if (m + 1 > n) n = m + 1;
        }
    }
    for (int m = 0; m < n; m++) {
        if (uv->item[m] < 0)
            die_at(f, uv->q[0]->rec, "field 'ranks': user %d: no query shows a candidate of base rank %d (ranks must be 0..%d)",
                   uv->user, m, n - 1);
        for (int j = 0; j < m; j++)
            if (uv->item[j] == uv->item[m])
                die_at(f, where[m], "field 'ranks': user %d: item %d has base ranks %d and %d", uv->user, uv->item[m], j, m);
    }
    uv->n = n;
    free(where);

    /* pointwise: one query per candidate; listwise: one query showing every candidate */
    long *point_rec = xcalloc((size_t)n, sizeof *point_rec);
    int n_list = 0;
    for (int k = 0; k < uv->nq; k++) {
        const query *q = uv->q[k];
        if (q->task == FUSE_POINTWISE) {
            int m = q->ranks[0];
            if (point_rec[m])
                die_at(f, q->rec, "field 'items': user %d: a second pointwise query for item %d (first at record %ld)",
                       uv->user, q->items[0], point_rec[m]);
            point_rec[m] = q->rec;
        } else if (q->task == FUSE_LISTWISE) {
            if (n_list++)
                die_at(f, q->rec, "field 'task': user %d: a second listwise query", uv->user);
            if (q->n != n)
                die_at(f, q->rec, "field 'items': user %d: the listwise query shows %d of the user's %d candidates", uv->user,
                       q->n, n);
        }
    }
    if (qs->have[FUSE_POINTWISE])
        for (int m = 0; m < n; m++)
            if (!point_rec[m])
                die_at(f, uv->q[0]->rec, "field 'items': user %d has no pointwise query for candidate item %d (base rank %d)",
                       uv->user, uv->item[m], m);
    if (qs->have[FUSE_LISTWISE] && !n_list)
        die_at(f, uv->q[0]->rec, "field 'task': user %d has no listwise query", uv->user);
    free(point_rec);

    /* pairwise: each pair exactly twice, in opposite orders (queries are sorted by pair) */
    for (int k = 0; k < uv->nq;) {
        const query *q = uv->q[k];
        if (q->task != FUSE_PAIRWISE) { k++; continue; }
        int e = k;
        while (e < uv->nq && uv->q[e]->task == FUSE_PAIRWISE && uv->q[e]->pair == q->pair) e++;
        if (e - k == 1)
            die_at(f, q->rec, "field 'pair': user %d pair %lld is asked in one order only (a pair must be asked in both orders)",
                   uv->user, (long long)q->pair);
        if (e - k > 2)
            die_at(f, uv->q[k + 2]->rec, "field 'pair': user %d pair %lld is asked %d times (a pair is asked twice, once in each order)",
                   uv->user, (long long)q->pair, e - k);
        const query *o = uv->q[k + 1];
        if (q->items[0] != o->items[1] || q->items[1] != o->items[0])
            die_at(f, o->rec, "field 'items': user %d pair %lld: the two queries do not show the same two items in opposite orders",
                   uv->user, (long long)q->pair);
        k = e;
    }
}

static void parse_answer(const answer_rec *a, const char *f, const query_set *qs, query *q, const fuse_params *p) {
    const char *text = a->text;
    size_t tl = strlen(text);
    if (q->task == FUSE_POINTWISE) {
        int lo = qs->scale_lo, hi = qs->scale_hi, rating;
        bool ok;
        if (a->scores) {
            int k = hi - lo + 1;
            if (a->n_scores != k)
                die_at(f, a->rec, "field 'scores': %d entries, expected %d (log-probabilities of the ratings %d..%d)", a->n_scores,
                       k, lo, hi);
            ok = fuse_point_from_logp(a->scores, k, lo, p->point_score, &q->score);
        } else {
            ok = fuse_parse_point_text(text, tl, lo, hi, &rating);
            if (ok) q->score = rating;
        }
        q->unparsed = !ok;
    } else if (q->task == FUSE_PAIRWISE) {
        if (a->scores) {
            if (a->n_scores != 2)
                die_at(f, a->rec, "field 'scores': %d entries, expected 2 (log-probabilities of Yes and No)", a->n_scores);
            q->yes = fuse_pair_from_logp(a->scores);
        } else {
            q->yes = fuse_parse_pair_text(text, tl);
        }
        q->unparsed = q->yes < 0;
    } else {
        q->list = xmalloc(sizeof *q->list * (size_t)q->n);
        q->n_list = fuse_parse_list_text(text, tl, (const char *const *)q->titles, q->tlen, q->n, q->list);
        q->unparsed = q->n_list == 0;
    }
}

/* The answers header's `queries` {scheme, part, count, leaky} against the queries stream. */
static void check_answers_header(const answers_header *h, const query_set *qs) {
    const char *f = h->source;
    const char *keys[2] = {"scheme", "part"};
    const char *got[2] = {h->scheme, h->part}, *want[2] = {qs->scheme, qs->part};
    for (int k = 0; k < 2; k++)
        if (strcmp(got[k], want[k]) != 0)
            die_at(f, 0, "field 'queries.%s': the answers are for %s '%s' but %s has %s '%s'", keys[k], keys[k], got[k], qs->name,
                   keys[k], want[k]);
    if (h->leaky != qs->leaky)
        die_at(f, 0, "field 'queries.leaky': the answers are for %s queries but %s is %s", qs->leaky ? "honest" : "leaky",
               qs->name, qs->leaky ? "leaky" : "honest");
    if (h->count != (int64_t)qs->n)
        die_at(f, 0, "field 'queries.count': the answers are for %lld queries but %s has %zu", (long long)h->count, qs->name,
               qs->n);
}

static void read_answers(query_set *qs, query **by_id, const char *path, const fuse_params *p, char **name_out) {
    stream_reader *r = sr_open(path, ANSWERS_SCHEMA, 1);
    answers_header h;
    answers_header_read(r, &h);
    *name_out = xstrdup(h.source);
    check_answers_header(&h, qs);
    const char *f = h.source;
    answer_rec a = {0};
    while (answers_next(r, &a)) {
        int64_t id = a.id;
        size_t lo = 0, hi = qs->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (by_id[mid]->id < id) lo = mid + 1;
            else hi = mid;
        }
        if (lo == qs->n || by_id[lo]->id != id) die_at(f, a.rec, "field 'id': no query with id %lld in %s", (long long)id, qs->name);
        query *q = by_id[lo];
        if (q->ans_rec)
            die_at(f, a.rec, "field 'id': a second answer to query %lld (first at record %ld)", (long long)id, q->ans_rec);
        if (a.task != q->task)
            die_at(f, a.rec, "field 'task': '%s', but query %lld (%s:%ld) is %s", rtask_name(a.task), (long long)id, qs->name,
                   q->rec, rtask_name(q->task));
        if (a.user != q->user)
            die_at(f, a.rec, "field 'user': %lld, but query %lld (%s:%ld) is for user %d", (long long)a.user, (long long)id,
                   qs->name, q->rec, q->user);
        q->ans_rec = a.rec;
        parse_answer(&a, f, qs, q, p);
    }
    answer_rec_free(&a);
    answers_header_free(&h);
    sr_close(r);
}

static void write_ranking(stream_writer *w, int32_t user, int method, const char *label, const int32_t *item,
                          const int *order, int n, const double *u) {
    char name[64];
    if (label && method != FUSE_M_BASE) snprintf(name, sizeof name, "%s %s", label, METHOD_NAMES[method]);
    else snprintf(name, sizeof name, "%s", METHOD_NAMES[method]);
    int32_t *items = xmalloc(sizeof *items * (size_t)(n ? n : 1));
    double *scores = u ? xmalloc(sizeof *scores * (size_t)(n ? n : 1)) : NULL;
    for (int k = 0; k < n; k++) {
        items[k] = item[order ? order[k] : k];
        if (u) scores[k] = u[order[k]];
    }
    rankings_write(w, user, name, items, n, scores);
    free(items);
    free(scores);
}

void fuse_run(const fuse_io *io, const fuse_params *p) {
    query_set qs;
    read_queries(&qs, io->queries);
    /* "LEAKY " + label + " pointwise" must stay within metrics' 31 bytes of a method name */
    if (qs.leaky && p->label && strlen(p->label) > 15)
        die_at(qs.name, 0, "field 'params.leaky': leaky queries name methods \"LEAKY %s ...\": --label may have 15 bytes at most here, not %zu",
               p->label, strlen(p->label));
    size_t N = qs.n;

    /* by id (queries_load checked that ids are unique) */
    query **by_id = xmalloc(sizeof *by_id * (N ? N : 1));
    for (size_t k = 0; k < N; k++) by_id[k] = &qs.q[k];
    qsort(by_id, N, sizeof *by_id, cmp_query_id);

    /* users, each validated before any answer is read */
    query **by_user = xmalloc(sizeof *by_user * (N ? N : 1));
    for (size_t k = 0; k < N; k++) by_user[k] = &qs.q[k];
    qsort(by_user, N, sizeof *by_user, cmp_query_user);
    int n_users = 0;
    user_view *uv = xmalloc(sizeof *uv * (N ? N : 1));
    for (size_t k = 0; k < N;) {
        size_t e = k;
        while (e < N && by_user[e]->user == by_user[k]->user) e++;
        user_view *v = &uv[n_users++];
        memset(v, 0, sizeof *v);
        v->user = by_user[k]->user;
        v->q = by_user + k;
        v->nq = (int)(e - k);
        check_user(&qs, v);
        k = e;
    }

    char *ans_name;
    read_answers(&qs, by_id, io->answers, p, &ans_name);

    /* missing answers */
    task_stats st[FUSE_NTASKS];
    memset(st, 0, sizeof st);
    long missing = 0;
    const query *first_missing = NULL;
    for (size_t k = 0; k < N; k++) {
        query *q = &qs.q[k];
        st[q->task].answers++;
        if (!q->ans_rec) {
            missing++;
            if (!first_missing || q->rec < first_missing->rec) first_missing = q;
            st[q->task].missing++;
            q->unparsed = true;
            q->yes = -1;
            q->n_list = 0;
        }
    }
    if (missing && !p->allow_missing)
        die_at(ans_name, -1, "field 'id': %ld of %zu queries have no answer (the first: query %lld, user %d, %s); "
               "--allow-missing counts them as unparsed",
               missing, N, (long long)first_missing->id, first_missing->user, rtask_name(first_missing->task));
    double mid = (qs.scale_lo + qs.scale_hi) / 2.0;
    for (size_t k = 0; k < N; k++) {
        query *q = &qs.q[k];
        if (q->unparsed) {
            st[q->task].unparsed++;
            if (q->task != FUSE_PAIRWISE) st[q->task].fallbacks++; /* pairwise: counted per pair below */
        }
        if (q->task == FUSE_POINTWISE && q->unparsed) q->score = mid;
        if (q->task == FUSE_LISTWISE && q->n_list > 0 && q->n_list < (q->n < FUSE_LIST_TOP ? q->n : FUSE_LIST_TOP))
            st[q->task].partial++;
    }

    /* output */
    /* Rankings from leaky queries say so in the header and in every reranked method's name. */
    char leaky_label[64];
    const char *label = p->label;
    if (qs.leaky) {
        snprintf(leaky_label, sizeof leaky_label, "LEAKY%s%s", p->label ? " " : "", p->label ? p->label : "");
        label = leaky_label;
    }
    /* the per-user pass computes the pair fallbacks the header needs; rankings are kept */
    int max_n = 1;
    for (int k = 0; k < n_users; k++)
        if (uv[k].n > max_n) max_n = uv[k].n;
    double *score = xmalloc(sizeof *score * (size_t)max_n);
    double *ubuf = xmalloc(sizeof *ubuf * 4 * (size_t)max_n);
    fuse_utils fu = {ubuf, ubuf + max_n, ubuf + 2 * max_n, ubuf + 3 * max_n, 0};
    fuse_pair *pairs = xmalloc(sizeof *pairs * (N ? N : 1));
    int *list = xmalloc(sizeof *list * (size_t)max_n);
    /* rankings: per user, 4 fused methods x n (order, utility) */
    size_t total = 0;
    for (int k = 0; k < n_users; k++) total += (size_t)uv[k].n;
    int *orders = xmalloc(sizeof *orders * 4 * (total ? total : 1));
    double *utils = xmalloc(sizeof *utils * 4 * (total ? total : 1));
    size_t off = 0;
    for (int k = 0; k < n_users; k++) {
        user_view *v = &uv[k];
        int n = v->n, n_pairs = 0, n_list = 0;
        for (int j = 0; j < v->nq; j++) {
            query *q = v->q[j];
            if (q->task == FUSE_POINTWISE) score[q->ranks[0]] = q->score;
            else if (q->task == FUSE_LISTWISE)
                for (int i = 0; i < q->n_list; i++) list[n_list++] = q->ranks[q->list[i]];
            else if (j + 1 < v->nq && v->q[j + 1]->task == FUSE_PAIRWISE && v->q[j + 1]->pair == q->pair) {
                query *o = v->q[j + 1];
                pairs[n_pairs++] = (fuse_pair){q->ranks[0], q->ranks[1], q->yes, o->yes};
                j++;
            }
        }
        fuse_utilities(n, qs.have[FUSE_POINTWISE] ? score : NULL, pairs, n_pairs, list, n_list, p, &fu);
        st[FUSE_PAIRWISE].fallbacks += fu.pair_fallbacks;
        const double *us[4] = {fu.point, fu.pair, fu.list, fu.hybrid};
        for (int mth = 0; mth < 4; mth++) {
            fuse_sort(n, us[mth], orders + 4 * off + (size_t)mth * n);
            memcpy(utils + 4 * off + (size_t)mth * n, us[mth], sizeof(double) * (size_t)n);
        }
        off += (size_t)n;
    }

    const char *methods[FUSE_NMETHODS];
    int nm = 0;
    for (int k = 0; k < FUSE_NMETHODS; k++)
        if (p->methods & 1u << k) methods[nm++] = METHOD_NAMES[k];
    rankings_header rh = {.scheme = qs.scheme, .part = qs.part, .c1 = p->c1, .c2 = p->c2, .c3 = p->c3,
                          .lambda = {p->lambda[0], p->lambda[1], p->lambda[2]},
                          .point_score = fuse_point_score_name(p->point_score), .label = label, .leaky = qs.leaky,
                          .methods = methods, .n_methods = nm, .queries_path = qs.name, .answers_path = ans_name,
                          .users = n_users};
    for (int t = 0; t < FUSE_NTASKS; t++)
        rh.parse[t] = (rankings_parse_stats){st[t].answers, st[t].unparsed, st[t].fallbacks, st[t].missing, st[t].partial};
    stream_writer *w = sw_open(io->output, io->zstd);
    rankings_write_header(w, &rh);

    off = 0;
    for (int k = 0; k < n_users; k++) {
        user_view *v = &uv[k];
        int n = v->n;
        if (!p->methods || p->methods & 1u << FUSE_M_BASE) {
            write_ranking(w, v->user, FUSE_M_BASE, label, v->item, NULL, n, NULL);
        }
        for (int mth = 0; mth < 4; mth++) {
            if (p->methods && !(p->methods & 1u << (FUSE_M_POINTWISE + mth))) continue;
            write_ranking(w, v->user, FUSE_M_POINTWISE + mth, label, v->item, orders + 4 * off + (size_t)mth * n, n,
                          utils + 4 * off + (size_t)mth * n);
        }
        off += (size_t)n;
    }
    sw_close(w);

    /* the parse summary: one line per task (always when something went unparsed) */
    for (int t = 0; t < FUSE_NTASKS; t++) {
        if (io->quiet && !st[t].unparsed) continue;
        fprintf(stderr, "%s: %s: %ld answers, %ld unparsed (%ld missing), %ld fallbacks", err_prog(), rtask_name(t),
                st[t].answers, st[t].unparsed, st[t].missing, st[t].fallbacks);
        if (t == FUSE_LISTWISE) fprintf(stderr, ", %ld partial", st[t].partial);
        if (!qs.have[t]) fprintf(stderr, " (no %s queries: its utility is 0 and its ranking the base order)", rtask_name(t));
        fputc('\n', stderr);
    }

    free(score); free(ubuf); free(pairs); free(list); free(orders); free(utils);
    for (int k = 0; k < n_users; k++) free(uv[k].item);
    free(uv); free(by_user); free(by_id);
    for (size_t k = 0; k < N; k++) {
        query *q = &qs.q[k];
        free(q->items); free(q->ranks); free(q->list); free(q->tlen);
        if (q->titles)
            for (int i = 0; i < q->n; i++) free(q->titles[i]);
        free(q->titles);
    }
    free(qs.q); free(qs.scheme); free(qs.part); free((char *)qs.name); free(ans_name);
}
