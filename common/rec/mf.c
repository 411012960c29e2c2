/* mf.c - BPR matrix factorisation: training, scoring, evaluation, stream I/O. */
#include "rec/mf.h"

#include "io/err.h"
#include "io/parallel.h"
#include "io/progress.h"
#include "io/rng.h"
#include "rec/metrics.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mf_params_default(mf_params *p) {
    memset(p, 0, sizeof *p);
    p->dim = 64;
    p->lr = 0.1;
    p->reg = 0.01;
    p->reg_bias = 0.01;
    p->init_std = 0.1;
    p->epochs = 200;
    p->batch = 1;
    p->negatives = 4;
    p->eval_every = 5;
    p->patience = 4;
    p->metric = MF_METRIC_NDCG10;
    p->positives_all = false;
    p->recency = 5;
    p->recency_floor = 0.05;
    p->seed = 1;
    p->threads = 1;
    p->log_every = 10;
}

void mf_free(mf_model *m) {
    free(m->P);
    free(m->Q);
    free(m->bias);
    free(m->has_item);
    memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ scoring */

typedef struct {
    const mf_model *m;
    const int32_t *users;
    int n_users, n;
    const user_lists *const *excl;
    int n_excl;
    int32_t *out_items;
    float *out_scores;
    float *scratch; /* (threads, BLOCK, n_items) */
} topn_ctx;

enum { SCORE_BLOCK = 64 };

static void topn_task(void *arg, int task, int worker) {
    topn_ctx *c = arg;
    const mf_model *m = c->m;
    int u0 = task * SCORE_BLOCK, nb = c->n_users - u0 < SCORE_BLOCK ? c->n_users - u0 : SCORE_BLOCK;
    int D = m->dim, NI = m->n_items;
    float *S = c->scratch + (size_t)worker * SCORE_BLOCK * NI;  // (nb, NI)
    float *Pb = xmalloc(sizeof(float) * (size_t)nb * D);        // (nb, D)
    for (int b = 0; b < nb; b++) {
        int32_t u = c->users[u0 + b];
        if (u >= 0 && u < m->n_users) memcpy(Pb + (size_t)b * D, m->P + (size_t)u * D, sizeof(float) * D);
        else memset(Pb + (size_t)b * D, 0, sizeof(float) * D);
    }
    // S = Pb Q^T : (nb, D) x (D, NI)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, NI, D, 1.0f, Pb, D, m->Q, D, 0.0f, S, NI);
    free(Pb);
    for (int b = 0; b < nb; b++) {
        int32_t u = c->users[u0 + b];
        float *s = S + (size_t)b * NI;
        for (int i = 0; i < NI; i++) s[i] = m->has_item[i] ? s[i] + m->bias[i] : -INFINITY;
        for (int e = 0; e < c->n_excl; e++) {
            const user_lists *ul = c->excl[e];
            if (u < ul->n_users)
                for (int32_t k = ul->off[u]; k < ul->off[u + 1]; k++)
                    if (ul->item[k] < NI) s[ul->item[k]] = -INFINITY;
        }
        /* Top n by insertion; scanning ids upwards with a strict '>' keeps the lower id on ties. */
        int32_t *ti = c->out_items + (size_t)(u0 + b) * c->n;
        float *ts = c->out_scores + (size_t)(u0 + b) * c->n;
        int have = 0;
        for (int i = 0; i < NI; i++) {
            float v = s[i];
            if (v == -INFINITY) continue;
            if (have == c->n && v <= ts[have - 1]) continue;
            int p = have < c->n ? have++ : c->n - 1;
            while (p > 0 && v > ts[p - 1]) { ts[p] = ts[p - 1]; ti[p] = ti[p - 1]; p--; }
            ts[p] = v;
            ti[p] = i;
        }
        for (int k = have; k < c->n; k++) { ti[k] = -1; ts[k] = -INFINITY; }
    }
}

void mf_topn(const mf_model *m, const int32_t *users, int n_users_list, const user_lists *const *excl, int n_excl,
             int n, int threads, int32_t *out_items, float *out_scores) {
    /* One BLAS thread per worker: the parallelism is ours, which keeps results reproducible. */
    openblas_set_num_threads(1);
    int tasks = (n_users_list + SCORE_BLOCK - 1) / SCORE_BLOCK;
    if (threads > tasks) threads = tasks > 0 ? tasks : 1;
    topn_ctx c = {m, users, n_users_list, n, excl, n_excl, out_items, out_scores, NULL};
    c.scratch = xmalloc(sizeof(float) * (size_t)threads * SCORE_BLOCK * (size_t)m->n_items);
    parallel_for(tasks, threads, topn_task, &c);
    free(c.scratch);
}

double mf_evaluate(const mf_model *m, const user_lists *pos, const user_lists *const *excl, int n_excl, mf_metric metric,
                   int threads) {
    int32_t *users = xmalloc(sizeof *users * (size_t)(pos->n_users + 1));
    int nu = 0;
    for (int32_t u = 0; u < pos->n_users; u++)
        if (ul_len(pos, u) > 0) users[nu++] = u;
    if (nu == 0) { free(users); return 0; }
    int32_t *items = xmalloc(sizeof *items * (size_t)nu * 10);
    float *scores = xmalloc(sizeof *scores * (size_t)nu * 10);
    mf_topn(m, users, nu, excl, n_excl, 10, threads, items, scores);
    double sum = 0;
    for (int k = 0; k < nu; k++) {
        int32_t u = users[k];
        const int32_t *p = pos->item + pos->off[u];
        int np = ul_len(pos, u);
        sum += metric == MF_METRIC_HR10 ? metric_hr(items + (size_t)k * 10, 10, p, np, 10)
                                        : metric_ndcg(items + (size_t)k * 10, 10, p, np, 10);
    }
    free(users);
    free(items);
    free(scores);
    return sum / nu;
}

/* ------------------------------------------------------------------ training */

typedef struct {
    mf_model *m;
    const mf_params *p;
    int T, epoch, stratum;
    /* positives (u, i) bucketed by cell (user block, item block) */
    const int32_t *pu, *pi;
    const float *pw;          /* per positive: step weight (recency) */
    const int32_t *cell_off;  /* (T*T + 1) */
    int32_t *cell_pairs;      /* pair indices, cell after cell */
    int32_t **blk_items;      /* items of each item block */
    int32_t *blk_n;
    const int32_t *seen_off, *seen_item; /* per-user train items, sorted by id */
    float *gbuf;              /* (T, batch, 3*dim + 2) */
    double *loss;             /* (T) */
    long long *triples;       /* (T) */
} train_ctx;

static int seen(const train_ctx *c, int32_t u, int32_t j) {
    const int32_t *a = c->seen_item + c->seen_off[u];
    int lo = 0, hi = c->seen_off[u + 1] - c->seen_off[u];
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (a[mid] < j) lo = mid + 1;
        else hi = mid;
    }
    return lo < c->seen_off[u + 1] - c->seen_off[u] && a[lo] == j;
}

/* p . (a - b) with eight partial sums in a fixed order: vectorisable without -ffast-math
 * (the compiler may not reassociate a single float sum) and identical on every run. */
static inline float dot_diff(const float *restrict p, const float *restrict a, const float *restrict b, int D) {
    float acc[8] = {0};
    int d = 0;
    for (; d + 8 <= D; d += 8)
        for (int k = 0; k < 8; k++) acc[k] += p[d + k] * (a[d + k] - b[d + k]);
    for (; d < D; d++) acc[0] += p[d] * (a[d] - b[d]);
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* -ln sigmoid(x), stable for any x. */
static inline float bpr_loss(float x) { return (x > 0 ? 0.0f : -x) + log1pf(expf(-fabsf(x))); }

/* One mini-batch: the gradients of all its triples at the same parameters, then applied in
 * order. Returns the batch's summed BPR loss (without the L2 term). With batch 1 this is plain
 * SGD and skips the gradient buffer. */
static double apply_batch(train_ctx *c, const int32_t (*tr)[3], const float *w, int nb, float *restrict g) {
    mf_model *m = c->m;
    const int D = m->dim, G = 3 * D + 2;
    const float lr0 = (float)c->p->lr, reg = (float)c->p->reg, regb = (float)c->p->reg_bias;
    double loss = 0;
    if (nb == 1) {
        const float lr = lr0 * w[0];
        /* u, i, j are three distinct rows (j is never a positive of u), so restrict holds. */
        float *restrict P = m->P + (size_t)tr[0][0] * D, *restrict Qi = m->Q + (size_t)tr[0][1] * D,
                        *restrict Qj = m->Q + (size_t)tr[0][2] * D;
        float *bi = &m->bias[tr[0][1]], *bj = &m->bias[tr[0][2]];
        float x = *bi - *bj + dot_diff(P, Qi, Qj, D);
        float s = 1.0f / (1.0f + expf(x)); /* sigmoid(-x): the step size of the log-likelihood gradient */
        for (int d = 0; d < D; d++) {
            float pu = P[d], qi = Qi[d], qj = Qj[d];
            P[d] = pu + lr * (s * (qi - qj) - reg * pu);
            Qi[d] = qi + lr * (s * pu - reg * qi);
            Qj[d] = qj + lr * (-s * pu - reg * qj);
        }
        float gbi = s - regb * *bi, gbj = -s - regb * *bj;
        *bi += lr * gbi;
        *bj += lr * gbj;
        return bpr_loss(x);
    }
    for (int b = 0; b < nb; b++) {
        const float *P = m->P + (size_t)tr[b][0] * D, *Qi = m->Q + (size_t)tr[b][1] * D, *Qj = m->Q + (size_t)tr[b][2] * D;
        float x = m->bias[tr[b][1]] - m->bias[tr[b][2]] + dot_diff(P, Qi, Qj, D);
        float s = 1.0f / (1.0f + expf(x));
        loss += bpr_loss(x);
        float *gu = g + (size_t)b * G, *gi = gu + D, *gj = gi + D;
        for (int d = 0; d < D; d++) {
            gu[d] = s * (Qi[d] - Qj[d]) - reg * P[d];
            gi[d] = s * P[d] - reg * Qi[d];
            gj[d] = -s * P[d] - reg * Qj[d];
        }
        gj[D] = s - regb * m->bias[tr[b][1]];
        gj[D + 1] = -s - regb * m->bias[tr[b][2]];
    }
    for (int b = 0; b < nb; b++) {
        float *P = m->P + (size_t)tr[b][0] * D, *Qi = m->Q + (size_t)tr[b][1] * D, *Qj = m->Q + (size_t)tr[b][2] * D;
        const float *gu = g + (size_t)b * G, *gi = gu + D, *gj = gi + D;
        const float lr = lr0 * w[b];
        for (int d = 0; d < D; d++) {
            P[d] += lr * gu[d];
            Qi[d] += lr * gi[d];
            Qj[d] += lr * gj[d];
        }
        m->bias[tr[b][1]] += lr * gj[D];
        m->bias[tr[b][2]] += lr * gj[D + 1];
    }
    return loss;
}

/* Worker t of stratum s trains cell (user block t, item block (t+s) mod T). */
static void train_task(void *arg, int t, int worker) {
    train_ctx *c = arg;
    const int T = c->T, ib = (t + c->stratum) % T, cell = t * T + ib;
    const int B = c->p->batch, D = c->m->dim;
    rng_t rng;
    rng_init(&rng, c->p->seed, ((uint64_t)c->epoch * T + c->stratum) * T + t + 1);
    int32_t *pairs = c->cell_pairs + c->cell_off[cell];
    int np = c->cell_off[cell + 1] - c->cell_off[cell];
    rng_shuffle_int(&rng, pairs, (size_t)np);
    const int32_t *items = c->blk_items[ib];
    const int32_t ni = c->blk_n[ib];
    int32_t (*tr)[3] = xmalloc(sizeof *tr * (size_t)B);
    float *wt = xmalloc(sizeof *wt * (size_t)B);
    float *g = c->gbuf + (size_t)worker * B * (3 * D + 2);
    int nb = 0;
    double loss = 0;
    long long count = 0;
    for (int k = 0; k < np && ni > 0; k++) {
        int32_t u = c->pu[pairs[k]], i = c->pi[pairs[k]];
        for (int neg = 0; neg < c->p->negatives; neg++) {
            int32_t j = -1;
            /* Rejection sampling: a user has seen a small fraction of any block, so a few tries do. */
            for (int tries = 0; tries < 64; tries++) {
                int32_t cand = items[rng_below(&rng, (uint64_t)ni)];
                if (!seen(c, u, cand)) { j = cand; break; }
            }
            if (j < 0) continue;
            tr[nb][0] = u; tr[nb][1] = i; tr[nb][2] = j;
            wt[nb] = c->pw[pairs[k]];
            if (++nb == B) { loss += apply_batch(c, (const int32_t (*)[3])tr, wt, nb, g); count += nb; nb = 0; }
        }
    }
    if (nb) { loss += apply_batch(c, (const int32_t (*)[3])tr, wt, nb, g); count += nb; }
    free(tr);
    free(wt);
    c->loss[worker] += loss;
    c->triples[worker] += count;
}

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

void mf_train(mf_model *m, const interactions *ia, const mf_params *p) {
    double t0 = now_seconds();
    memset(m, 0, sizeof *m);
    const int D = p->dim, T = p->threads < 1 ? 1 : p->threads;
    m->dim = D;
    m->n_users = ia->n_users;
    m->n_items = ia->n_items;
    m->P = xmalloc(sizeof(float) * (size_t)m->n_users * D);
    m->Q = xmalloc(sizeof(float) * (size_t)m->n_items * D);
    m->bias = xcalloc((size_t)m->n_items, sizeof(float));
    m->has_item = xcalloc((size_t)m->n_items, 1);
    for (size_t k = 0; k < ia->n; k++) m->has_item[ia->v[k].item] = 1;
    rng_t rng;
    rng_init(&rng, p->seed, 0);
    for (size_t k = 0; k < (size_t)m->n_users * D; k++) m->P[k] = (float)(rng_normal(&rng) * p->init_std);
    for (size_t k = 0; k < (size_t)m->n_items * D; k++) m->Q[k] = (float)(rng_normal(&rng) * p->init_std);

    user_lists pos, train_all, valid_pos;
    user_lists_build(&pos, ia, PART_BIT(PART_TRAIN), p->positives_all ? -INFINITY : ia->like);
    user_lists_build(&train_all, ia, PART_BIT(PART_TRAIN), -INFINITY);
    user_lists_build(&valid_pos, ia, PART_BIT(PART_VALID), ia->like);
    const user_lists *excl[1] = {&train_all};
    /* No valid part (split --refit): nothing to early-stop on, so exactly p->epochs epochs are
     * trained and the last weights kept; the epoch count comes from the run that had one. */
    bool has_valid = valid_pos.off[valid_pos.n_users] > 0;

    /* Per-user seen items sorted by id, for negative rejection. */
    int32_t *seen_item = xmalloc(sizeof(int32_t) * (size_t)(train_all.off[train_all.n_users] + 1));
    memcpy(seen_item, train_all.item, sizeof(int32_t) * (size_t)train_all.off[train_all.n_users]);
    for (int32_t u = 0; u < train_all.n_users; u++)
        qsort(seen_item + train_all.off[u], (size_t)ul_len(&train_all, u), sizeof(int32_t), cmp_i32);

    int32_t npos = pos.off[pos.n_users];
    int32_t *pu = xmalloc(sizeof(int32_t) * (size_t)(npos + 1)), *pi = xmalloc(sizeof(int32_t) * (size_t)(npos + 1));
    float *pw = xmalloc(sizeof(float) * (size_t)(npos + 1));
    for (int32_t u = 0, k = 0; u < pos.n_users; u++)
        for (int32_t j = pos.off[u]; j < pos.off[u + 1]; j++, k++) {
            pu[k] = u;
            pi[k] = pos.item[j];
            /* age: how many of the user's train positives are more recent (lists are in time order) */
            int32_t age = pos.off[u + 1] - 1 - j;
            pw[k] = p->recency > 0 ? (float)fmax(p->recency_floor, exp(-age / p->recency)) : 1.0f;
        }
    int32_t n_exist = 0;
    int32_t *exist = xmalloc(sizeof(int32_t) * (size_t)(m->n_items + 1));
    for (int32_t i = 0; i < m->n_items; i++) if (m->has_item[i]) exist[n_exist++] = i;

    int32_t *ublk = xmalloc(sizeof(int32_t) * (size_t)(m->n_users + 1)), *iblk = xmalloc(sizeof(int32_t) * (size_t)(m->n_items + 1));
    int32_t *cell_off = xcalloc((size_t)T * T + 1, sizeof(int32_t)), *cell_pairs = xmalloc(sizeof(int32_t) * (size_t)(npos + 1));
    int32_t *cell_fill = xmalloc(sizeof(int32_t) * (size_t)T * T);
    int32_t **blk_items = xmalloc(sizeof(int32_t *) * (size_t)T), *blk_n = xcalloc((size_t)T, sizeof(int32_t));
    for (int t = 0; t < T; t++) blk_items[t] = xmalloc(sizeof(int32_t) * (size_t)(n_exist / T + 2));
    int32_t *perm = xmalloc(sizeof(int32_t) * (size_t)(n_exist + 1));

    train_ctx c = {.m = m, .p = p, .T = T, .pu = pu, .pi = pi, .pw = pw, .cell_off = cell_off, .cell_pairs = cell_pairs,
                   .blk_items = blk_items, .blk_n = blk_n, .seen_off = train_all.off, .seen_item = seen_item};
    c.gbuf = xmalloc(sizeof(float) * (size_t)T * p->batch * (3 * D + 2));
    c.loss = xcalloc((size_t)T, sizeof(double));
    c.triples = xcalloc((size_t)T, sizeof(long long));

    float *bestP = xmalloc(sizeof(float) * (size_t)m->n_users * D), *bestQ = xmalloc(sizeof(float) * (size_t)m->n_items * D);
    float *bestB = xmalloc(sizeof(float) * (size_t)m->n_items);
    m->best_valid = -1;
    int bad_evals = 0;
    progress pr;
    progress_start(&pr, "mf-train", (uint64_t)p->epochs, p->quiet, p->log_every);
    for (int epoch = 1; epoch <= p->epochs; epoch++) {
        /* Random blocks for this epoch: users independently, items as a shuffled round-robin. */
        rng_t er;
        rng_init(&er, p->seed, 0x10000 + (uint64_t)epoch);
        for (int32_t u = 0; u < m->n_users; u++) ublk[u] = T > 1 ? (int32_t)rng_below(&er, (uint64_t)T) : 0;
        memcpy(perm, exist, sizeof(int32_t) * (size_t)n_exist);
        rng_shuffle_int(&er, perm, (size_t)n_exist);
        for (int t = 0; t < T; t++) blk_n[t] = 0;
        for (int32_t k = 0; k < n_exist; k++) {
            int t = k % T;
            iblk[perm[k]] = t;
            blk_items[t][blk_n[t]++] = perm[k];
        }
        memset(cell_off, 0, sizeof(int32_t) * ((size_t)T * T + 1));
        for (int32_t k = 0; k < npos; k++) cell_off[ublk[pu[k]] * T + iblk[pi[k]] + 1]++;
        for (int k = 0; k < T * T; k++) cell_off[k + 1] += cell_off[k];
        memcpy(cell_fill, cell_off, sizeof(int32_t) * (size_t)T * T);
        for (int32_t k = 0; k < npos; k++) cell_pairs[cell_fill[ublk[pu[k]] * T + iblk[pi[k]]]++] = k;

        c.epoch = epoch;
        for (int t = 0; t < T; t++) { c.loss[t] = 0; c.triples[t] = 0; }
        for (int s = 0; s < T; s++) {
            c.stratum = s;
            parallel_for(T, T, train_task, &c);
        }
        double loss = 0;
        long long tri = 0;
        for (int t = 0; t < T; t++) { loss += c.loss[t]; tri += c.triples[t]; }
        m->triples += tri;
        m->epochs_run = epoch;
        char extra[96];
        snprintf(extra, sizeof extra, "loss %.4f", tri ? loss / tri : 0);
        if (has_valid && (epoch % p->eval_every == 0 || epoch == p->epochs)) {
            double v = mf_evaluate(m, &valid_pos, excl, 1, p->metric, T);
            snprintf(extra, sizeof extra, "loss %.4f valid %s %.5f", tri ? loss / tri : 0,
                     p->metric == MF_METRIC_HR10 ? "HR@10" : "NDCG@10", v);
            if (v > m->best_valid) {
                m->best_valid = v;
                m->best_epoch = epoch;
                bad_evals = 0;
                memcpy(bestP, m->P, sizeof(float) * (size_t)m->n_users * D);
                memcpy(bestQ, m->Q, sizeof(float) * (size_t)m->n_items * D);
                memcpy(bestB, m->bias, sizeof(float) * (size_t)m->n_items);
            } else if (++bad_evals >= p->patience) {
                progress_update(&pr, (uint64_t)epoch, extra);
                break;
            }
        }
        progress_update(&pr, (uint64_t)epoch, extra);
    }
    char extra[96];
    if (has_valid) snprintf(extra, sizeof extra, "best epoch %d valid %.5f", m->best_epoch, m->best_valid);
    else snprintf(extra, sizeof extra, "no valid part: the last epoch kept");
    progress_done(&pr, (uint64_t)m->epochs_run, extra);
    if (m->best_epoch > 0) {
        memcpy(m->P, bestP, sizeof(float) * (size_t)m->n_users * D);
        memcpy(m->Q, bestQ, sizeof(float) * (size_t)m->n_items * D);
        memcpy(m->bias, bestB, sizeof(float) * (size_t)m->n_items);
    }
    free(bestP); free(bestQ); free(bestB);
    free(c.gbuf); free(c.loss); free(c.triples);
    free(perm); free(ublk); free(iblk); free(cell_off); free(cell_pairs); free(cell_fill);
    for (int t = 0; t < T; t++) free(blk_items[t]);
    free(blk_items); free(blk_n); free(exist); free(pu); free(pi); free(pw); free(seen_item);
    user_lists_free(&pos); user_lists_free(&train_all); user_lists_free(&valid_pos);
    m->train_seconds = now_seconds() - t0;
}
