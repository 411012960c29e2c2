/* promptset.c - the record generator (see promptset.h, docs/promptgen.md): which users, items
 * and answers the prompts are about. Training samples its tasks per draw (targets, pairs with a
 * drawn negative, listwise candidates), evaluation turns each user's candidates into queries; both
 * give the base model's hints and hand the text to prompt_build (rec/prompt.c). The candidates
 * reader and the task names are in the records layer (records/candidates.h, records/task.h). */
#include "rec/promptset.h"

#include "io/err.h"
#include "io/parallel.h"
#include "io/rng.h"
#include "io/stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- prompt sets ---------- */

void fit_line(const double *x, const double *y, size_t n, double *a, double *b) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    if (n) { mx /= (double)n; my /= (double)n; }
    double sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    *b = sxx > 0 ? sxy / sxx : 0;
    *a = my - *b * mx;
}

double promptset_score(const promptset *ps, int32_t user, int32_t item) {
    const mf_model *m = ps->mf;
    if (user < 0 || user >= m->n_users || item < 0 || item >= m->n_items) return 0;
    const float *p = m->P + (size_t)user * m->dim, *q = m->Q + (size_t)item * m->dim;
    double s = m->bias[item];
    for (int d = 0; d < m->dim; d++) s += (double)p[d] * q[d];
    return s;
}

double promptset_rating(const promptset *ps, int32_t user, int32_t item) {
    return ps->cal_a + ps->cal_b * promptset_score(ps, user, item);
}

double promptset_hint_rating(const promptset *ps, int32_t user, int32_t item) {
    if (ps->hints != HINTS_RECRANKER_LEAKY) return promptset_rating(ps, user, item);
    if (user < 0 || user >= ps->ia->n_users || item < 0 || item >= ps->ia->n_items) return 0;
    return ps->rating_all[(size_t)user * (size_t)ps->ia->n_items + (size_t)item];
}

/* Listwise hint: the RTASK_LIST_TOP items of items[0..n) with the highest promptset_hint_rating,
 * ties in the given order (RecRanker sorts with Python's stable sort). */
static int hint_top_leaky(const promptset *ps, int32_t u, const int32_t *items, int n, int32_t *top) {
    int idx[PROMPT_MAX_ITEMS];
    double r[PROMPT_MAX_ITEMS];
    for (int i = 0; i < n; i++) { idx[i] = i; r[i] = promptset_hint_rating(ps, u, items[i]); }
    for (int i = 1; i < n; i++) /* insertion sort: stable, n <= PROMPT_MAX_ITEMS */
        for (int j = i; j > 0 && r[idx[j]] > r[idx[j - 1]]; j--) { int t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t; }
    int k = n < RTASK_LIST_TOP ? n : RTASK_LIST_TOP;
    for (int i = 0; i < k; i++) top[i] = items[idx[i]];
    return k;
}

typedef struct { double score; int32_t item; } scored_item;

static int cmp_scored(const void *a, const void *b) { /* score desc, then item id */
    const scored_item *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* Hard negatives: per user, the `hard` items of neg_pool with the best MF scores among those the
 * user never interacted with (in any part). They look like the evaluation candidates (MF's top
 * items the user has not seen), which uniform negatives do not: those are mostly obscure items
 * that any popularity signal separates from the positives. */
static void build_hard_pool(promptset *ps) {
    size_t ni = (size_t)ps->ia->n_items, H = (size_t)ps->hard;
    ps->hard_pool = xmalloc(sizeof *ps->hard_pool * ((size_t)ps->ia->n_users * H + 1));
    scored_item *sc = xmalloc(sizeof *sc * ((size_t)ps->n_neg_pool + 1));
    for (int32_t u = 0; u < ps->ia->n_users; u++) {
        size_t m = 0;
        for (int k = 0; k < ps->n_neg_pool; k++) {
            int32_t i = ps->neg_pool[k];
            if ((size_t)i < ni && ps->seen[(size_t)u * ni + i]) continue;
            sc[m++] = (scored_item){promptset_score(ps, u, i), i};
        }
        qsort(sc, m, sizeof *sc, cmp_scored);
        for (size_t k = 0; k < H; k++) ps->hard_pool[(size_t)u * H + k] = k < m ? sc[k].item : -1;
    }
    free(sc);
}

static int cmp_title(const void *a, const void *b, void *ctx) {
    const catalog *cat = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    int c = strcmp(cat->by_id[x].title, cat->by_id[y].title);
    return c ? c : (x > y) - (x < y);
}

void promptset_init(promptset *ps, bool eval, part_t part) {
    const interactions *ia = ps->ia;
    ps->eval = eval;
    ps->part = part;
    unsigned mask = PART_BIT(PART_TRAIN) | (eval && part == PART_TEST ? PART_BIT(PART_VALID) : 0);
    user_lists_build(&ps->hist, ia, mask, -INFINITY);
    user_lists_build(&ps->target_pos, ia, PART_BIT(eval ? part : PART_TEST), ia->like);
    ps->n_liked = xcalloc((size_t)ia->n_users + 1, sizeof *ps->n_liked);
    size_t ni = (size_t)ia->n_items;
    ps->seen = xcalloc((size_t)ia->n_users * ni + 1, 1);
    ps->rating_all = ps->hints == HINTS_RECRANKER_LEAKY ? xcalloc((size_t)ia->n_users * ni + 1, sizeof *ps->rating_all) : NULL;
    double *x = xmalloc(sizeof *x * (ia->n + 1)), *y = xmalloc(sizeof *y * (ia->n + 1));
    size_t nc = 0;
    for (size_t k = 0; k < ia->n; k++) {
        const interaction *v = &ia->v[k];
        ps->seen[(size_t)v->user * ni + v->item] = 1;
        if (ps->rating_all && v->part != PART_DROP) ps->rating_all[(size_t)v->user * ni + v->item] = (float)v->rating;
        if (v->part != PART_TRAIN) continue;
        if (v->rating >= ia->like) ps->n_liked[v->user]++;
        if (v->user < ps->mf->n_users && v->item < ps->mf->n_items) {
            x[nc] = promptset_score(ps, v->user, v->item);
            y[nc] = v->rating;
            nc++;
        }
    }
    /* Items listed twice under one title (ML-100K has a few): a user who has one of them has
     * "seen" the others too, so that no training negative shows the title of a user's item. */
    int32_t nt = ps->cat->n_items < ia->n_items ? ps->cat->n_items : ia->n_items;
    int32_t *by_title = xmalloc(sizeof *by_title * (size_t)(nt + 1));
    int nb = 0;
    for (int32_t i = 0; i < nt; i++)
        if (ps->cat->by_id[i].title) by_title[nb++] = i;
    qsort_r(by_title, (size_t)nb, sizeof *by_title, cmp_title, (void *)ps->cat);
    for (int a = 0; a < nb;) {
        int b = a + 1;
        while (b < nb && strcmp(ps->cat->by_id[by_title[a]].title, ps->cat->by_id[by_title[b]].title) == 0) b++;
        if (b - a > 1)
            for (int32_t u = 0; u < ia->n_users; u++) {
                bool any = false;
                for (int k = a; k < b; k++) any |= ps->seen[(size_t)u * ni + by_title[k]];
                if (any)
                    for (int k = a; k < b; k++) ps->seen[(size_t)u * ni + by_title[k]] = 1;
            }
        a = b;
    }
    free(by_title);
    fit_line(x, y, nc, &ps->cal_a, &ps->cal_b);
    ps->cal_n = (long)nc;
    free(x);
    free(y);
    ps->neg_pool = xmalloc(sizeof *ps->neg_pool * (size_t)(ps->cat->n_items + 1));
    ps->n_neg_pool = 0;
    for (int32_t i = 0; i < ps->cat->n_items; i++)
        if (ps->cat->by_id[i].title && i < ps->mf->n_items && ps->mf->has_item[i]) ps->neg_pool[ps->n_neg_pool++] = i;
    ps->hard_pool = NULL;
    if (!eval && ps->hard > 0) build_hard_pool(ps);
}

void promptset_free(promptset *ps) {
    user_lists_free(&ps->hist);
    user_lists_free(&ps->target_pos);
    free(ps->n_liked);
    free(ps->seen);
    free(ps->neg_pool);
    free(ps->hard_pool);
    free(ps->rating_all);
    ps->rating_all = NULL;
    ps->hard_pool = NULL;
    ps->n_liked = NULL;
    ps->seen = NULL;
    ps->neg_pool = NULL;
}

/* History entries of user u (oldest first) for a task, from the user's history-part entries
 * before index `end` of ps->hist (-1: all), leaving out the items in excl[0..ne): a rated
 * history (pointwise, and pairwise/listwise when their template shows {history}): the last
 * `history` rated items; otherwise the last `history` liked and the last `max_dislikes`
 * disliked items, merged in time order. Returns the count (h has room for all). */
static int user_history(const promptset *ps, prompt_task task, int32_t u, int end, const int32_t *excl, int ne,
                        hist_entry *h) {
    const user_lists *L = &ps->hist;
    bool rated = task == RTASK_POINTWISE || ps->env.t->rated[task];
    int a = L->off[u], b = end >= 0 ? end : L->off[u + 1];
    int left_r = ps->history, left_l = ps->history, left_d = ps->max_dislikes;
    int n = 0;
    for (int j = b - 1; j >= a; j--) {
        bool skip = false;
        for (int k = 0; k < ne; k++)
            if (excl[k] == L->item[j]) skip = true;
        if (skip) continue;
        uint8_t kind;
        if (rated) {
            if (left_r <= 0) break;
            left_r--;
            kind = HIST_RATED;
        } else if (L->rating[j] >= ps->ia->like) {
            if (left_l <= 0) continue;
            left_l--;
            kind = HIST_LIKED;
        } else if (L->rating[j] <= ps->dislike) {
            if (left_d <= 0) continue;
            left_d--;
            kind = HIST_DISLIKED;
        } else {
            continue;
        }
        h[n++] = (hist_entry){L->item[j], L->rating[j], L->ts[j], kind};
    }
    for (int i = 0, j = n - 1; i < j; i++, j--) { hist_entry t = h[i]; h[i] = h[j]; h[j] = t; }
    return n;
}

static void finish_record(prompt_record *rec, prompt_task task, int32_t u, const prompt_query *q, const hist_entry *h,
                          int nh, int dropped, bool overlong) {
    rec->task = task;
    rec->user = u;
    rec->n_items = q->n_items;
    memcpy(rec->items, q->items, sizeof q->items[0] * (size_t)q->n_items);
    rec->n_history = nh - dropped;
    rec->history = xmalloc(sizeof *rec->history * (size_t)(rec->n_history + 1));
    for (int k = dropped; k < nh; k++) rec->history[k - dropped] = h[k].item;
    rec->dropped = dropped;
    rec->overlong = overlong;
}

static bool in_list(const int32_t *v, int n, int32_t x) {
    for (int k = 0; k < n; k++)
        if (v[k] == x) return true;
    return false;
}

/* A random item the user has no interaction with and that is not in taken[0..nt): from the
 * user's hard pool when there is one (falling back to the catalogue when the pool runs out). */
static int32_t draw_negative(const promptset *ps, rng_t *r, int32_t u, const int32_t *taken, int nt) {
    size_t ni = (size_t)ps->ia->n_items;
    if (ps->hard_pool) {
        const int32_t *pool = ps->hard_pool + (size_t)u * (size_t)ps->hard;
        int np = 0;
        while (np < ps->hard && pool[np] >= 0) np++;
        int free_n = 0;
        for (int k = 0; k < np; k++) free_n += !in_list(taken, nt, pool[k]);
        if (free_n > 0) {
            int pick = (int)rng_below(r, (uint64_t)free_n);
            for (int k = 0; k < np; k++)
                if (!in_list(taken, nt, pool[k]) && pick-- == 0) return pool[k];
        }
    }
    for (int tries = 0; tries < 1000000; tries++) {
        int32_t i = ps->neg_pool[rng_below(r, (uint64_t)ps->n_neg_pool)];
        if ((size_t)i < ni && ps->seen[(size_t)u * ni + i]) continue;
        if (!in_list(taken, nt, i)) return i;
    }
    die("user %d: no item left to draw as a negative", u);
}

typedef struct { int32_t item; float rating; int64_t ts; } ranked;

static int cmp_answer(const void *a, const void *b) { /* rating desc, then more recent, then item id */
    const ranked *x = a, *y = b;
    if (x->rating != y->rating) return x->rating > y->rating ? -1 : 1;
    if (x->ts != y->ts) return x->ts > y->ts ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

typedef struct {
    const promptset *ps;
    const int32_t *draws;
    long first_draw;
    prompt_record *out; /* RTASK_COUNT slots per draw */
} train_job;

static void train_one(void *vctx, int k, int worker) {
    (void)worker;
    train_job *J = vctx;
    const promptset *ps = J->ps;
    int32_t u = J->draws[k];
    rng_t r;
    rng_init(&r, ps->seed, 0x100000000ull + (uint64_t)(J->first_draw + k));
    const user_lists *L = &ps->hist;
    int a = L->off[u], n = L->off[u + 1] - a;
    hist_entry *h = xmalloc(sizeof *h * (size_t)(n + 1));
    int32_t *liked = xmalloc(sizeof *liked * (size_t)(n + 1));
    int nl = 0;
    for (int j = a; j < a + n; j++)
        if (L->rating[j] >= ps->ia->like) liked[nl++] = j;
    for (int t = 0; t < RTASK_COUNT; t++) {
        prompt_record *rec = &J->out[(size_t)k * RTASK_COUNT + t];
        memset(rec, 0, sizeof *rec);
        rec->pair = -1;
        /* every task draws from the rng whether it is asked for or not, so --tasks does not
         * change the other tasks' prompts */
        prompt_query q;
        memset(&q, 0, sizeof q);
        q.has_response = true;
        int nh = 0;
        bool ok = false;
        if (t == RTASK_POINTWISE) {
            if (n >= 2) {
                /* next: a target with at least one entry before it, and only those shown */
                int j = ps->next ? a + 1 + (int)rng_below(&r, (uint64_t)(n - 1)) : a + (int)rng_below(&r, (uint64_t)n);
                q.items[0] = L->item[j];
                q.n_items = 1;
                q.hint_score = promptset_hint_rating(ps, u, L->item[j]);
                q.rating = (int)lround(L->rating[j]);
                nh = ps->next ? user_history(ps, RTASK_POINTWISE, u, j, NULL, 0, h)
                              : user_history(ps, RTASK_POINTWISE, u, -1, &L->item[j], 1, h);
                ok = true;
            }
        } else if (t == RTASK_PAIRWISE) {
            if (nl >= 2) {
                int j = ps->next ? liked[1 + rng_below(&r, (uint64_t)(nl - 1))] : liked[rng_below(&r, (uint64_t)nl)];
                int32_t pos = L->item[j], neg = draw_negative(ps, &r, u, &pos, 1);
                bool first_pos = rng_below(&r, 2) == 0;
                q.items[0] = first_pos ? pos : neg;
                q.items[1] = first_pos ? neg : pos;
                q.n_items = 2;
                q.hint_yes = promptset_score(ps, u, q.items[0]) > promptset_score(ps, u, q.items[1]);
                q.answer_yes = first_pos;
                nh = ps->next ? user_history(ps, RTASK_PAIRWISE, u, j, NULL, 0, h)
                              : user_history(ps, RTASK_PAIRWISE, u, -1, &pos, 1, h);
                ok = true;
            }
        } else {
            if (nl >= RTASK_LIST_TOP + 1) {
                /* RTASK_LIST_TOP distinct liked items, liked[first .. first + RTASK_LIST_TOP): next, the
                 * ones from a random cut on (the history before it); otherwise random ones
                 * (partial Fisher-Yates over the liked list) */
                ranked pos[RTASK_LIST_TOP];
                scored_item all[2 * RTASK_LIST_TOP];
                int32_t held[RTASK_LIST_TOP];
                int first = 0, cut = -1;
                if (ps->next) {
                    first = 1 + (int)rng_below(&r, (uint64_t)(nl - RTASK_LIST_TOP));
                    cut = liked[first];
                } else {
                    for (int s = 0; s < RTASK_LIST_TOP; s++) {
                        int pick = s + (int)rng_below(&r, (uint64_t)(nl - s));
                        int32_t tmp = liked[s]; liked[s] = liked[pick]; liked[pick] = tmp;
                    }
                }
                for (int s = 0; s < RTASK_LIST_TOP; s++) {
                    int j = liked[first + s];
                    pos[s] = (ranked){L->item[j], L->rating[j], L->ts[j]};
                    held[s] = L->item[j];
                }
                int32_t cand[2 * RTASK_LIST_TOP];
                for (int s = 0; s < RTASK_LIST_TOP; s++) cand[s] = held[s];
                for (int s = 0; s < RTASK_LIST_TOP; s++) cand[RTASK_LIST_TOP + s] = draw_negative(ps, &r, u, cand, RTASK_LIST_TOP + s);
                rng_shuffle_int(&r, cand, 2 * RTASK_LIST_TOP);
                q.n_items = 2 * RTASK_LIST_TOP;
                for (int s = 0; s < 2 * RTASK_LIST_TOP; s++) {
                    q.items[s] = cand[s];
                    all[s] = (scored_item){promptset_score(ps, u, cand[s]), cand[s]};
                }
                qsort(all, 2 * RTASK_LIST_TOP, sizeof all[0], cmp_scored);
                q.n_hint_top = RTASK_LIST_TOP;
                for (int s = 0; s < RTASK_LIST_TOP; s++) q.hint_top[s] = all[s].item;
                if (ps->hints == HINTS_RECRANKER_LEAKY) q.n_hint_top = hint_top_leaky(ps, u, q.items, q.n_items, q.hint_top);
                /* random: best rated first (RecRanker); next: in the order they came */
                if (!ps->next) qsort(pos, RTASK_LIST_TOP, sizeof pos[0], cmp_answer);
                q.n_answer = RTASK_LIST_TOP;
                for (int s = 0; s < RTASK_LIST_TOP; s++) q.answer[s] = pos[s].item;
                nh = ps->next ? user_history(ps, RTASK_LISTWISE, u, cut, NULL, 0, h)
                              : user_history(ps, RTASK_LISTWISE, u, -1, held, RTASK_LIST_TOP, h);
                ok = true;
            }
        }
        if (!ok || !ps->tasks[t]) { rec->task = (prompt_task)t; rec->user = -1; continue; }
        bool overlong;
        int dropped = prompt_build(&ps->env, (prompt_task)t, h, nh, &q, 1, &rec->text, &overlong);
        finish_record(rec, (prompt_task)t, u, &q, h, nh, dropped, overlong);
    }
    free(liked);
    free(h);
}

prompt_record *promptset_train(const promptset *ps, const int32_t *draws, int n, long first_draw, int *n_out,
                               long skipped[RTASK_COUNT]) {
    prompt_record *all = xcalloc((size_t)n * RTASK_COUNT + 1, sizeof *all);
    train_job J = {ps, draws, first_draw, all};
    parallel_for(n, ps->threads, train_one, &J);
    int m = 0;
    for (int k = 0; k < n * RTASK_COUNT; k++) {
        if (all[k].user < 0) {
            if (ps->tasks[all[k].task]) skipped[all[k].task]++;
            continue;
        }
        all[m++] = all[k];
    }
    *n_out = m;
    return all;
}

typedef struct {
    const promptset *ps;
    const cand_set *cs;
    const int32_t *users;
    prompt_record **out;
    int *n_out;
} eval_job;

static void eval_one(void *vctx, int k, int worker) {
    (void)worker;
    eval_job *J = vctx;
    const promptset *ps = J->ps;
    int32_t u = J->users[k];
    const int32_t *c = J->cs->items[u];
    int nc = J->cs->len[u];
    rng_t r;
    rng_init(&r, ps->seed, 0x200000000ull + (uint64_t)u);
    int n = ps->hist.off[u + 1] - ps->hist.off[u];
    hist_entry *h = xmalloc(sizeof *h * (size_t)(n + 1));
    prompt_record *out = xcalloc((size_t)2 * nc + 2, sizeof *out);
    prompt_query *q = xcalloc((size_t)nc + 1, sizeof *q);
    prompt_text *tx = xcalloc((size_t)nc + 1, sizeof *tx);
    int m = 0;
    /* the pairs are drawn whether pairwise is asked for or not */
    int32_t perm[PROMPT_MAX_ITEMS];
    for (int i = 0; i < nc; i++) perm[i] = i;
    rng_shuffle_int(&r, perm, (size_t)nc);
    for (int t = 0; t < RTASK_COUNT; t++) {
        if (!ps->tasks[t] || nc == 0) continue;
        int nq = 0;
        int32_t ranks[PROMPT_MAX_ITEMS][PROMPT_MAX_ITEMS];
        int pair_of[PROMPT_MAX_ITEMS];
        bool swapped[PROMPT_MAX_ITEMS];
        memset(q, 0, sizeof *q * (size_t)(nc + 1));
        if (t == RTASK_POINTWISE) {
            for (int i = 0; i < nc; i++) {
                q[nq].items[0] = c[i];
                q[nq].n_items = 1;
                q[nq].hint_score = promptset_hint_rating(ps, u, c[i]);
                ranks[nq][0] = i;
                pair_of[nq] = -1;
                swapped[nq] = false;
                nq++;
            }
        } else if (t == RTASK_PAIRWISE) {
            for (int p = 0; p < nc / 2; p++) {
                int x = perm[2 * p], y = perm[2 * p + 1];
                for (int s = 0; s < 2; s++) {
                    int f = s ? y : x, g = s ? x : y;
                    q[nq].items[0] = c[f];
                    q[nq].items[1] = c[g];
                    q[nq].n_items = 2;
                    q[nq].hint_yes = f < g;
                    ranks[nq][0] = f;
                    ranks[nq][1] = g;
                    pair_of[nq] = p;
                    swapped[nq] = s == 1;
                    nq++;
                }
            }
        } else {
            q[0].n_items = nc;
            for (int i = 0; i < nc; i++) { q[0].items[i] = c[i]; ranks[0][i] = i; }
            q[0].n_hint_top = nc < RTASK_LIST_TOP ? nc : RTASK_LIST_TOP;
            for (int i = 0; i < q[0].n_hint_top; i++) q[0].hint_top[i] = c[i];
            if (ps->hints == HINTS_RECRANKER_LEAKY) q[0].n_hint_top = hint_top_leaky(ps, u, c, nc, q[0].hint_top);
            pair_of[0] = -1;
            swapped[0] = false;
            nq = 1;
        }
        if (nq == 0) continue;
        int nh = user_history(ps, (prompt_task)t, u, -1, NULL, 0, h);
        bool overlong;
        int dropped = prompt_build(&ps->env, (prompt_task)t, h, nh, q, nq, tx, &overlong);
        for (int i = 0; i < nq; i++) {
            prompt_record *rec = &out[m++];
            rec->text = tx[i];
            rec->pair = pair_of[i];
            rec->swapped = swapped[i];
            memcpy(rec->ranks, ranks[i], sizeof ranks[i][0] * (size_t)q[i].n_items);
            finish_record(rec, (prompt_task)t, u, &q[i], h, nh, dropped, overlong);
        }
    }
    J->out[k] = out;
    J->n_out[k] = m;
    free(q);
    free(tx);
    free(h);
}

prompt_record *promptset_eval(const promptset *ps, const cand_set *cs, const int32_t *users, int n, int *n_out) {
    prompt_record **per = xcalloc((size_t)n + 1, sizeof *per);
    int *cnt = xcalloc((size_t)n + 1, sizeof *cnt);
    eval_job J = {ps, cs, users, per, cnt};
    parallel_for(n, ps->threads, eval_one, &J);
    int total = 0;
    for (int k = 0; k < n; k++) total += cnt[k];
    prompt_record *all = xcalloc((size_t)total + 1, sizeof *all);
    int m = 0;
    for (int k = 0; k < n; k++) {
        memcpy(all + m, per[k], sizeof *all * (size_t)cnt[k]);
        m += cnt[k];
        free(per[k]);
    }
    free(per);
    free(cnt);
    *n_out = m;
    return all;
}

void prompt_records_free(prompt_record *r, int n) {
    for (int k = 0; k < n; k++) {
        prompt_text_free(&r[k].text);
        free(r[k].history);
    }
    free(r);
}
