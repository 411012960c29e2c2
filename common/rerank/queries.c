/* queries.c - the reranker's queries: read through records/queries, the shard's users, and
 * RecRanker's task logic: which options a pointwise or pairwise answer chooses from, how a
 * listwise answer shows titles, and every prompt and option tokenised (see internal.h). */
#include "rerank/internal.h"

#include "io/err.h"
#include "records/queries.h"
#include "rerank/answer_tokens.h"

#include <stdlib.h>
#include <string.h>

void rerank_read_queries(rk *c) {
    queries qs;
    queries_load(&qs, c->o->queries, 0, QR_PROMPT | QR_TITLES);
    const queries_header *h = &qs.h;
    c->qname = xstrdup(h->source);
    c->scheme = h->scheme ? xstrdup(h->scheme) : NULL;
    c->part = h->part ? xstrdup(h->part) : NULL;
    c->leaky = h->leaky;
    c->scale_lo = 1; c->scale_hi = 5;
    if (h->has_scale) {
        c->scale_lo = h->scale_lo;
        c->scale_hi = h->scale_hi;
        if (c->scale_hi - c->scale_lo + 1 > MAX_SCALE)
            die_at(c->qname, 0, "field 'params.scale': [%d, %d] is not a scale of 1 to %d values", c->scale_lo, c->scale_hi, MAX_SCALE);
    }
    /* answer format: the option, else the header's params.format, else recranker.tmpl's */
    const char *dflt[4] = {"\"{title}\"", "\n", "Yes.", "No."};
    const char *given[4] = {c->o->item_format, c->o->answer_sep, c->o->yes, c->o->no};
    const char *in_header[4] = {h->item, h->sep, h->yes, h->no};
    char **dst[4] = {&c->item_fmt, &c->sep, &c->yes, &c->no};
    for (int k = 0; k < 4; k++) *dst[k] = xstrdup(given[k] ? given[k] : in_header[k] ? in_header[k] : dflt[k]);
    if (!strstr(c->item_fmt, "{title}")) die("item format '%s' has no {title}", c->item_fmt);
    /* the queries, grouped by user (first-appearance order, each user's queries in file order) */
    id_map users;
    id_map_init(&users);
    c->q = xmalloc(sizeof *c->q * (qs.n ? qs.n : 1));
    size_t ucap = 64;
    c->u = xmalloc(sizeof *c->u * ucap);
    for (size_t k = 0; k < qs.n; k++) {
        query_rec *r = &qs.q[k];
        query q = {0};
        q.rec = r->rec;
        q.id = r->id;
        q.task = r->task;
        q.user = r->user;
        q.prompt = r->prompt;
        q.plen = r->prompt_len;
        q.prefix_len = r->prefix_len;
        q.titles = r->titles;
        q.n_titles = r->n_titles;
        r->prompt = NULL; r->titles = NULL; r->n_titles = 0;
        int ui = id_map_get(&users, q.user);
        if (ui < 0) {
            if (c->n_u == ucap) c->u = xrealloc(c->u, sizeof *c->u * (ucap *= 2));
            ui = (int)c->n_u++;
            c->u[ui] = (user_ent){q.user, NULL, 0, 0};
            id_map_put(&users, q.user, ui);
        }
        user_ent *ue = &c->u[ui];
        if (ue->n_q == ue->cap) ue->q = xrealloc(ue->q, sizeof *ue->q * (size_t)(ue->cap = ue->cap ? 2 * ue->cap : 32));
        ue->q[ue->n_q++] = (int)c->n_q;
        c->q[c->n_q++] = q;
    }
    c->n_records = (long)c->n_q;
    queries_free(&qs);
    id_map_free(&users);
    /* the shard: users with user mod n == i */
    c->su = xmalloc(sizeof *c->su * (c->n_u ? c->n_u : 1));
    int n = c->o->shard_n, i = c->o->shard_i;
    for (size_t k = 0; k < c->n_u; k++) {
        int64_t m = c->u[k].user % n;
        if (m < 0) m += n;
        if (m == i) c->su[c->n_su++] = (int)k;
    }
}

void rerank_set_options(rk *c) {
    c->n_opt[T_POINT] = c->scale_hi - c->scale_lo + 1;
    for (int v = 0; v < c->n_opt[T_POINT]; v++) snprintf(c->opt_text[T_POINT][v], sizeof c->opt_text[T_POINT][v], "%d", c->scale_lo + v);
    c->n_opt[T_PAIR] = 2;
    if (strlen(c->yes) >= sizeof c->opt_text[T_PAIR][0] || strlen(c->no) >= sizeof c->opt_text[T_PAIR][0])
        die("--yes/--no: at most %zu bytes", sizeof c->opt_text[T_PAIR][0] - 1);
    strcpy(c->opt_text[T_PAIR][0], c->yes);
    strcpy(c->opt_text[T_PAIR][1], c->no);
}

/* An item as answers show it: the item format with {title} replaced. */
char *rerank_render_item(const rk *c, const char *title) {
    size_t tl = strlen(title), n = 0, cap = strlen(c->item_fmt) + 1;
    for (const char *p = c->item_fmt; (p = strstr(p, "{title}")); p += 7) cap += tl;
    char *out = xmalloc(cap);
    for (const char *p = c->item_fmt; *p;) {
        if (strncmp(p, "{title}", 7) == 0) { memcpy(out + n, title, tl); n += tl; p += 7; }
        else out[n++] = *p++;
    }
    out[n] = 0;
    return out;
}

/* Tokens of answer after q's prompt, with EOS appended when eos. */
static int answer_toks(rk *c, const query *q, const char *answer, bool eos, int **out, long *merged) {
    int *a;
    int n = rank_answer_tokens(c->m->tok, q->prompt, q->plen, answer, &a);
    if (n < 0) { (*merged)++; n = 0; free(a); a = NULL; }
    if (n == 0) { /* merged with the prompt's end, or empty: the answer as it encodes on its own line */
        free(a);
        char *buf = xmalloc(strlen(answer) + 2);
        buf[0] = '\n';
        strcpy(buf + 1, answer);
        int *x, *y;
        int nx = rerank_encode(c->m->tok, "\n", 0, &x), ny = rerank_encode(c->m->tok, buf, 0, &y);
        int k = rerank_lcp(x, nx, y, ny);
        n = ny - k;
        a = xmalloc(sizeof *a * (size_t)(n + 2));
        memcpy(a, y + k, sizeof *a * (size_t)n);
        free(x); free(y); free(buf);
    } else {
        a = xrealloc(a, sizeof *a * (size_t)(n + 2));
    }
    if (eos) a[n++] = c->eos;
    *out = a;
    return n;
}

/* Tokenise every shard query; build the prefix groups; check every prompt fits the context. */
void rerank_tokenise(rk *c) {
    const llm_tokenizer *t = c->m->tok;
    int ctx = c->m->cfg.max_seq_len;
    long merged = 0;
    size_t oscap = 0;
    size_t gcap = 64;
    c->g = xmalloc(sizeof *c->g * gcap);
    for (size_t k = 0; k < c->n_su; k++) {
        user_ent *u = &c->u[c->su[k]];
        size_t g0 = c->n_g;
        for (int j = 0; j < u->n_q; j++) {
            query *q = &c->q[u->q[j]];
            q->n_toks = rerank_encode(t, q->prompt, 1, &q->toks);
            /* the group: queries of this user with the same prefix bytes */
            int gi = -1;
            for (size_t x = g0; x < c->n_g && gi < 0; x++) {
                const query *f = &c->q[c->g[x].first_q];
                if (f->prefix_len == q->prefix_len && memcmp(f->prompt, q->prompt, q->prefix_len) == 0) gi = (int)x;
            }
            if (gi < 0) {
                if (c->n_g == gcap) c->g = xrealloc(c->g, sizeof *c->g * (gcap *= 2));
                gi = (int)c->n_g++;
                char *pre = xmalloc(q->prefix_len + 1);
                memcpy(pre, q->prompt, q->prefix_len);
                pre[q->prefix_len] = 0;
                int *pt;
                int np = rerank_encode(t, pre, 1, &pt);
                free(pre);
                /* the prefix's own encoding may end differently than inside the prompt: keep the common part */
                int n_shared = rerank_lcp(pt, np, q->toks, q->n_toks);
                free(pt);
                c->g[gi] = (group){q->toks, n_shared, 0, 0, NULL, u->q[j]};
            }
            group *g = &c->g[gi];
            g->n_shared = rerank_lcp(g->toks, g->n_shared, q->toks, q->n_toks);
            g->n_q++;
            q->group = gi;
            /* room for the answer */
            int need = 1;
            if (c->o->decode == RANK_SCORE && q->task != T_LIST) {
                const char *tail = q->prompt + q->plen;
                while (tail > q->prompt && tail[-1] != ' ') tail--;
                q->os = -1;
                for (size_t x = 0; x < c->n_os && q->os < 0; x++)
                    if (c->os[x].task == q->task && strcmp(c->os[x].tail, tail) == 0) q->os = (int)x;
                if (q->os < 0) {
                    if (c->n_os == oscap) c->os = xrealloc(c->os, sizeof *c->os * (oscap = oscap ? 2 * oscap : 4));
                    optset *o = &c->os[c->n_os];
                    memset(o, 0, sizeof *o);
                    o->task = q->task;
                    o->tail = xstrdup(tail);
                    for (int v = 0; v < c->n_opt[q->task]; v++)
                        o->n[v] = answer_toks(c, q, c->opt_text[q->task][v], true, &o->tok[v], &merged);
                    q->os = (int)c->n_os++;
                }
                const optset *os = &c->os[q->os];
                for (int v = 0; v < c->n_opt[q->task]; v++) if (os->n[v] > need) need = os->n[v];
                need -= 1;
            } else if (c->o->decode == RANK_SCORE && q->task == T_LIST) {
                int n = q->n_titles;
                q->tsep = xmalloc(sizeof *q->tsep * (size_t)n); q->teos = xmalloc(sizeof *q->teos * (size_t)n);
                q->nsep = xmalloc(sizeof *q->nsep * (size_t)n); q->neos = xmalloc(sizeof *q->neos * (size_t)n);
                int *lens = xmalloc(sizeof *lens * (size_t)n);
                for (int i = 0; i < n; i++) {
                    char *it = rerank_render_item(c, q->titles[i]);
                    size_t L = strlen(it);
                    char *s = xmalloc(L + strlen(c->sep) + 1);
                    memcpy(s, it, L);
                    strcpy(s + L, c->sep);
                    q->nsep[i] = answer_toks(c, q, s, false, &q->tsep[i], &merged);
                    q->neos[i] = answer_toks(c, q, it, true, &q->teos[i], &merged);
                    free(s); free(it);
                    lens[i] = q->nsep[i] > q->neos[i] ? q->nsep[i] : q->neos[i];
                }
                if (c->o->list_likelihood && n > c->max_opts) c->max_opts = n;
                /* the longest RTASK_LIST_TOP titles must fit (likelihood: the longest one) */
                int top = n < RTASK_LIST_TOP ? n : RTASK_LIST_TOP;
                if (c->o->list_likelihood) top = 1;
                need = 0;
                for (int r = 0; r < top; r++) {
                    int b = 0;
                    for (int i = 1; i < n; i++) if (lens[i] > lens[b]) b = i;
                    need += lens[b];
                    lens[b] = -1;
                }
                free(lens);
            }
            if (q->n_toks + need > ctx)
                die_at(c->qname, q->rec, "field 'prompt': %d tokens and %d for the answer do not fit the model's context of %d",
                       q->n_toks, need, ctx);
        }
    }
    if (merged) warnf("%ld answer tokenisations merged with the end of their prompt; those answers were tokenised as after a newline", merged);
}

void rerank_free_queries(rk *c) {
    for (size_t i = 0; i < c->n_q; i++) {
        query *q = &c->q[i];
        free(q->prompt); free(q->toks);
        for (int k = 0; k < q->n_titles; k++) {
            free(q->titles[k]);
            if (q->tsep) { free(q->tsep[k]); free(q->teos[k]); }
        }
        free(q->titles); free(q->tsep); free(q->teos); free(q->nsep); free(q->neos);
    }
    for (size_t k = 0; k < c->n_os; k++) { free(c->os[k].tail); for (int v = 0; v < MAX_SCALE; v++) free(c->os[k].tok[v]); }
    free(c->os);
    for (size_t k = 0; k < c->n_u; k++) free(c->u[k].q);
    for (size_t k = 0; k < c->n_g; k++) llm_seq_free(c->g[k].seq);
    free(c->q); free(c->u); free(c->su); free(c->g);
    free(c->item_fmt); free(c->sep); free(c->yes); free(c->no);
    free(c->scheme); free(c->part);
    free((char *)c->qname);
}
