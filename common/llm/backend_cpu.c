/* backend_cpu.c - the reference backend: OpenBLAS sgemm for the products, a small
 * persistent thread pool for attention and int8 products, plain loops for the rest.
 *
 * Determinism: every output element is computed by one thread with a fixed order of
 * operations, so results depend on the thread count only through OpenBLAS's blocking. */
#include "llm/backend.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"

/* ---- thread pool: run fn(ctx, i) for i in [0, n) on the workers and the caller ---- */

typedef void (*task_fn)(void *ctx, int i);

#define POOL_MAX 256
static struct {
    pthread_t th[POOL_MAX];
    int n_workers, want;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    task_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next;
    int busy;
    unsigned gen;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER, .want = 1};

static void pool_drain(void) {
    int i;
    while ((i = atomic_fetch_add(&pool.next, 1)) < pool.n_tasks) pool.fn(pool.ctx, i);
}

static void *pool_worker(void *arg) {
    (void)arg;
    unsigned seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.gen == seen) pthread_cond_wait(&pool.work, &pool.mu);
        seen = pool.gen;
        pthread_mutex_unlock(&pool.mu);
        pool_drain();
        pthread_mutex_lock(&pool.mu);
        if (--pool.busy == 0) pthread_cond_signal(&pool.done);
    }
    return NULL;
}

/* Run on min(want, n) threads; small jobs (work below ~64K flops) stay on the caller. */
static void pool_run(int n, task_fn fn, void *ctx, double work) {
    if (n <= 0) return;
    if (pool.want <= 1 || n == 1 || work < 65536) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    while (pool.n_workers < pool.want - 1 && pool.n_workers < POOL_MAX) {
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&pool.th[pool.n_workers], &a, pool_worker, NULL) != 0) { pthread_attr_destroy(&a); break; }
        pthread_attr_destroy(&a);
        pool.n_workers++;
    }
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_tasks = n;
    atomic_store(&pool.next, 0);
    pool.busy = pool.n_workers;
    pool.gen++;
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    pool_drain();
    pthread_mutex_lock(&pool.mu);
    while (pool.busy > 0) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}

static void cpu_set_threads(int n) {
    if (n < 1) n = 1;
    /* Workers already started stay parked; only want - 1 of them take part in new jobs
     * when want shrinks because pool_run counts busy by n_workers: keep it simple and only grow. */
    pool.want = n > POOL_MAX ? POOL_MAX : n;
    if (pool.n_workers > pool.want - 1) pool.want = pool.n_workers + 1;
    openblas_set_num_threads(n);
}

static void *cpu_alloc(size_t n) { return xmalloc(n); }
static void cpu_free(void *p) { free(p); }

static void cpu_embed(float *x, const float *table, const int *tok, int T, int C) {
    for (int t = 0; t < T; t++) memcpy(x + (size_t)t * C, table + (size_t)tok[t] * C, (size_t)C * sizeof *x);
}

/* ---- matmul ---- */

typedef struct {
    float *y;
    const float *x;
    const llm_weight *w;
    int T, rows_per_task;
} mm_ctx;

/* int8 rows [r0, r1) for all T tokens (small T): each row is dequantised once into an
 * L1-resident buffer and dotted with the T inputs (sdot is SIMD; the int8 weights are read once). */
static void mm_int8_task(void *vctx, int i) {
    mm_ctx *c = vctx;
    int K = c->w->cols, N = c->w->rows;
    int r0 = i * c->rows_per_task, r1 = r0 + c->rows_per_task < N ? r0 + c->rows_per_task : N;
    float *row = xmalloc((size_t)K * sizeof *row);
    for (int r = r0; r < r1; r++) {
        const int8_t *q = c->w->q + (size_t)r * K;
        float s = c->w->scale[r];
        for (int k = 0; k < K; k++) row[k] = (float)q[k] * s;
        for (int t = 0; t < c->T; t++) c->y[(size_t)t * N + r] = cblas_sdot(K, row, 1, c->x + (size_t)t * K, 1);
    }
    free(row);
}

static void cpu_matmul(float *y, const float *x, const llm_weight *w, int T) {
    int N = w->rows, K = w->cols;
    if (T <= 0) return;
    if (w->f) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, x, K, w->f, K, 0.0f, y, N);
        return;
    }
    if (T <= 4) {
        mm_ctx c = {y, x, w, T, 64};
        int n = (N + c.rows_per_task - 1) / c.rows_per_task;
        pool_run(n, mm_int8_task, &c, 2.0 * T * N * K);
        return;
    }
    /* Prefill: dequantise blocks of rows (about 1 MiB) and hand them to sgemm. */
    int rb = (1 << 18) / (K > 0 ? K : 1);
    if (rb < 8) rb = 8;
    if (rb > N) rb = N;
    float *buf = xmalloc((size_t)rb * K * sizeof *buf);
    for (int r0 = 0; r0 < N; r0 += rb) {
        int nr = r0 + rb <= N ? rb : N - r0;
        for (int r = 0; r < nr; r++) {
            const int8_t *q = w->q + (size_t)(r0 + r) * K;
            float s = w->scale[r0 + r], *d = buf + (size_t)r * K;
            for (int k = 0; k < K; k++) d[k] = (float)q[k] * s;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, nr, K, 1.0f, x, K, buf, K, 0.0f, y + r0, N);
    }
    free(buf);
}

static void cpu_rmsnorm(float *y, const float *x, const float *w, int T, int C, float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        float *yt = y + (size_t)t * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)xt[i] * xt[i];
        float inv = (float)(1.0 / sqrt(ss / C + eps));
        for (int i = 0; i < C; i++) yt[i] = w[i] * (xt[i] * inv);
    }
}

static void cpu_rope(float *x, const int *pos, int T, int n_heads, int head_dim, float theta) {
    int half = head_dim / 2;
    float *cs = xmalloc((size_t)head_dim * sizeof *cs);
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
            float ang = (float)pos[t] * inv_freq;
            cs[i] = (float)cos((double)ang);
            cs[half + i] = (float)sin((double)ang);
        }
        for (int h = 0; h < n_heads; h++) {
            float *v = x + ((size_t)t * n_heads + h) * head_dim;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half], c = cs[i], s = cs[half + i];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
    free(cs);
}

/* ---- attention: one task per (item, token) over all heads ---- */

typedef struct {
    const llm_attn_item *items;
    const int *task_item, *task_tok;
    int n_heads, n_kv_heads, head_dim;
} att_ctx;

static void att_task(void *vctx, int i) {
    att_ctx *c = vctx;
    const llm_attn_item *it = &c->items[c->task_item[i]];
    int t = c->task_tok[i], hd = c->head_dim, kvd = c->n_kv_heads * hd, rep = c->n_heads / c->n_kv_heads;
    int n = it->pos[t] + 1;
    float *sc = xmalloc((size_t)n * sizeof *sc);
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < c->n_heads; h++) {
        const float *q = it->q + ((size_t)t * c->n_heads + h) * hd;
        float *out = it->out + ((size_t)t * c->n_heads + h) * hd;
        int kvh = h / rep, p = 0;
        float mx = -INFINITY;
        for (int s = 0; s < it->n_spans && p < n; s++)
            for (int j = 0; j < it->spans[s].len && p < n; j++, p++) {
                const float *k = it->spans[s].k + (size_t)j * kvd + (size_t)kvh * hd;
                float d = 0;
                for (int e = 0; e < hd; e++) d += q[e] * k[e];
                sc[p] = d * scale;
                if (sc[p] > mx) mx = sc[p];
            }
        int np = p;
        float sum = 0;
        for (p = 0; p < np; p++) { sc[p] = expf(sc[p] - mx); sum += sc[p]; }
        float inv = 1.0f / sum;
        memset(out, 0, (size_t)hd * sizeof *out);
        p = 0;
        for (int s = 0; s < it->n_spans && p < np; s++)
            for (int j = 0; j < it->spans[s].len && p < np; j++, p++) {
                const float *v = it->spans[s].v + (size_t)j * kvd + (size_t)kvh * hd;
                float a = sc[p] * inv;
                for (int e = 0; e < hd; e++) out[e] += a * v[e];
            }
    }
    free(sc);
}

/* Prefill of T >= 8 tokens: per query head, scores = q K^T and out = softmax(scores) V as
 * sgemm calls over the cached spans (OpenBLAS threads them). */
static void att_blas(const llm_attn_item *it, int n_heads, int n_kv_heads, int hd) {
    int T = it->T, n = it->pos[T - 1] + 1, qd = n_heads * hd, kvd = n_kv_heads * hd, rep = n_heads / n_kv_heads;
    float *S = xmalloc((size_t)T * n * sizeof *S);
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < n_heads; h++) {
        int kvh = h / rep, off = 0;
        for (int s = 0; s < it->n_spans && off < n; s++) { // S (T,n) = q_h (T,hd) K^T
            int len = it->spans[s].len < n - off ? it->spans[s].len : n - off;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, len, hd, scale, it->q + (size_t)h * hd, qd,
                        it->spans[s].k + (size_t)kvh * hd, kvd, 0.0f, S + off, n);
            off += len;
        }
        for (int t = 0; t < T; t++) { // causal softmax over positions 0..pos[t]
            float *row = S + (size_t)t * n, mx = -INFINITY, sum = 0;
            int np = it->pos[t] + 1;
            for (int p = 0; p < np; p++) if (row[p] > mx) mx = row[p];
            for (int p = 0; p < np; p++) { row[p] = expf(row[p] - mx); sum += row[p]; }
            float inv = 1.0f / sum;
            for (int p = 0; p < np; p++) row[p] *= inv;
            for (int p = np; p < n; p++) row[p] = 0;
        }
        off = 0;
        for (int s = 0; s < it->n_spans && off < n; s++) { // out_h (T,hd) = S (T,n) V
            int len = it->spans[s].len < n - off ? it->spans[s].len : n - off;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, len, 1.0f, S + off, n,
                        it->spans[s].v + (size_t)kvh * hd, kvd, off ? 1.0f : 0.0f, it->out + (size_t)h * hd, qd);
            off += len;
        }
    }
    free(S);
}

static void cpu_attention(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim) {
    int n = 0;
    double work = 0;
    for (int i = 0; i < n_items; i++)
        if (items[i].T < 8) n += items[i].T;
        else att_blas(&items[i], n_heads, n_kv_heads, head_dim);
    int *ti = xmalloc((size_t)(n ? n : 1) * sizeof *ti), *tt = xmalloc((size_t)(n ? n : 1) * sizeof *tt);
    n = 0;
    for (int i = 0; i < n_items; i++)
        for (int t = 0; t < items[i].T && items[i].T < 8; t++) {
            ti[n] = i, tt[n] = t, n++;
            work += 4.0 * (items[i].pos[t] + 1) * n_heads * head_dim;
        }
    att_ctx c = {items, ti, tt, n_heads, n_kv_heads, head_dim};
    pool_run(n, att_task, &c, work);
    free(ti);
    free(tt);
}

static void cpu_swiglu(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static void cpu_add(float *y, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}


/* ---- training kernels ---- */

static void cpu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* C = beta C */
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
                B, ldb, beta, C, ldc);
}

/* dx (T,K) (+)= dy (T,N) W (N,K); int8 W is dequantised in blocks of rows (about 1 MiB). */
static void cpu_matmul_dx(float *dx, const float *dy, const llm_weight *w, int T, int accumulate) {
    int N = w->rows, K = w->cols;
    if (T <= 0) return;
    if (w->f) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, K, N, 1.0f, dy, N, w->f, K, accumulate ? 1.0f : 0.0f,
                    dx, K);
        return;
    }
    int rb = (1 << 18) / (K > 0 ? K : 1);
    if (rb < 8) rb = 8;
    if (rb > N) rb = N;
    float *buf = xmalloc((size_t)rb * K * sizeof *buf);
    for (int r0 = 0; r0 < N; r0 += rb) {
        int nr = r0 + rb <= N ? rb : N - r0;
        for (int r = 0; r < nr; r++) {
            const int8_t *q = w->q + (size_t)(r0 + r) * K;
            float s = w->scale[r0 + r], *d = buf + (size_t)r * K;
            for (int k = 0; k < K; k++) d[k] = (float)q[k] * s;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, K, nr, 1.0f, dy + r0, N, buf, K,
                    (accumulate || r0 > 0) ? 1.0f : 0.0f, dx, K);
    }
    free(buf);
}

static void cpu_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w, int T, int C,
                                 float eps) {
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C, *gt = dy + (size_t)t * C;
        float *dxt = dx + (size_t)t * C;
        double ss = 0, dot = 0;
        for (int i = 0; i < C; i++) ss += (double)xt[i] * xt[i];
        float inv = (float)(1.0 / sqrt(ss / C + eps)); /* as the forward computes it */
        for (int i = 0; i < C; i++) dot += (double)w[i] * gt[i] * xt[i];
        float c = (float)(dot * (double)inv * inv * inv / C);
        for (int i = 0; i < C; i++) dxt[i] += inv * w[i] * gt[i] - c * xt[i];
        if (dw)
            for (int i = 0; i < C; i++) dw[i] += gt[i] * xt[i] * inv;
    }
}

static void cpu_swiglu_backward(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float sg = 1.0f / (1.0f + expf(-g[i])), si = g[i] * sg;
        du[i] = dh[i] * si;
        dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
}

/* Scores S (L,L) = scale Q_h K^T with the causal mask applied through lse or a softmax. */
static void att_scores(const llm_train_attn *a, int s, int h, float *S) {
    int L = a->len[s], hd = a->head_dim, qd = a->n_heads * hd, kvd = a->n_kv_heads * hd;
    int kvh = h / (a->n_heads / a->n_kv_heads);
    size_t o = (size_t)a->off[s];
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hd, 1.0f / sqrtf((float)hd), a->q + o * qd + (size_t)h * hd,
                qd, a->k + o * kvd + (size_t)kvh * hd, kvd, 0.0f, S, L);
}

static void cpu_attention_train(const llm_train_attn *a) {
    int hd = a->head_dim, qd = a->n_heads * hd, kvd = a->n_kv_heads * hd, maxL = 0;
    for (int s = 0; s < a->n_seq; s++) if (a->len[s] > maxL) maxL = a->len[s];
    float *S = xmalloc((size_t)maxL * maxL * sizeof *S + 1);
    for (int s = 0; s < a->n_seq; s++) {
        int L = a->len[s];
        size_t o = (size_t)a->off[s];
        if (L <= 0) continue;
        for (int h = 0; h < a->n_heads; h++) {
            int kvh = h / (a->n_heads / a->n_kv_heads);
            att_scores(a, s, h, S);
            for (int i = 0; i < L; i++) {
                float *row = S + (size_t)i * L, mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) if (row[j] > mx) mx = row[j];
                for (int j = 0; j <= i; j++) { row[j] = expf(row[j] - mx); sum += row[j]; }
                float inv = 1.0f / sum;
                for (int j = 0; j <= i; j++) row[j] *= inv;
                for (int j = i + 1; j < L; j++) row[j] = 0;
                a->lse[(o + (size_t)i) * a->n_heads + h] = mx + logf(sum);
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hd, L, 1.0f, S, L, a->v + o * kvd + (size_t)kvh * hd,
                        kvd, 0.0f, a->out + o * qd + (size_t)h * hd, qd);
        }
    }
    free(S);
}

static void cpu_attention_backward(const llm_train_attn *a) {
    int hd = a->head_dim, qd = a->n_heads * hd, kvd = a->n_kv_heads * hd, maxL = 0;
    float scale = 1.0f / sqrtf((float)hd);
    for (int s = 0; s < a->n_seq; s++) if (a->len[s] > maxL) maxL = a->len[s];
    float *P = xmalloc((size_t)maxL * maxL * sizeof *P + 1), *dP = xmalloc((size_t)maxL * maxL * sizeof *dP + 1);
    float *D = xmalloc((size_t)maxL * sizeof *D + 1);
    for (int s = 0; s < a->n_seq; s++) {
        int L = a->len[s];
        size_t o = (size_t)a->off[s];
        if (L <= 0) continue;
        for (int i = 0; i < L; i++) { /* zero this sequence's dk, dv rows */
            memset(a->dk + (o + (size_t)i) * kvd, 0, (size_t)kvd * sizeof(float));
            memset(a->dv + (o + (size_t)i) * kvd, 0, (size_t)kvd * sizeof(float));
        }
        for (int h = 0; h < a->n_heads; h++) {
            int kvh = h / (a->n_heads / a->n_kv_heads);
            const float *Qh = a->q + o * qd + (size_t)h * hd, *Kh = a->k + o * kvd + (size_t)kvh * hd,
                        *Vh = a->v + o * kvd + (size_t)kvh * hd, *dO = a->dout + o * qd + (size_t)h * hd,
                        *Oh = a->out + o * qd + (size_t)h * hd;
            att_scores(a, s, h, P);
            for (int i = 0; i < L; i++) { /* P = exp(S - lse), causal */
                float *row = P + (size_t)i * L, l = a->lse[(o + (size_t)i) * a->n_heads + h];
                for (int j = 0; j <= i; j++) row[j] = expf(row[j] - l);
                for (int j = i + 1; j < L; j++) row[j] = 0;
                float d = 0;
                for (int e = 0; e < hd; e++) d += dO[(size_t)i * qd + e] * Oh[(size_t)i * qd + e];
                D[i] = d;
            }
            // dV_h (L,hd) += P^T dO
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hd, L, 1.0f, P, L, dO, qd, 1.0f,
                        a->dv + o * kvd + (size_t)kvh * hd, kvd);
            // dP (L,L) = dO V^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, L, hd, 1.0f, dO, qd, Vh, kvd, 0.0f, dP, L);
            for (int i = 0; i < L; i++) { /* dS = P (dP - D) */
                float *pr = P + (size_t)i * L, *dr = dP + (size_t)i * L;
                for (int j = 0; j <= i; j++) dr[j] = pr[j] * (dr[j] - D[i]);
                for (int j = i + 1; j < L; j++) dr[j] = 0;
            }
            // dQ_h = scale dS K ; dK += scale dS^T Q_h
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, hd, L, scale, dP, L, Kh, kvd, 0.0f,
                        a->dq + o * qd + (size_t)h * hd, qd);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L, hd, L, scale, dP, L, Qh, qd, 1.0f,
                        a->dk + o * kvd + (size_t)kvh * hd, kvd);
        }
    }
    free(P);
    free(dP);
    free(D);
}

static const llm_backend cpu = {
    .name = "cpu",
    .set_threads = cpu_set_threads,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .embed = cpu_embed,
    .matmul = cpu_matmul,
    .rmsnorm = cpu_rmsnorm,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .swiglu = cpu_swiglu,
    .add = cpu_add,
    .gemm = cpu_gemm,
    .matmul_dx = cpu_matmul_dx,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .swiglu_backward = cpu_swiglu_backward,
    .attention_train = cpu_attention_train,
    .attention_backward = cpu_attention_backward,
};

const llm_backend *llm_backend_cpu(void) { return &cpu; }
