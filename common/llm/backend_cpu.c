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
};

const llm_backend *llm_backend_cpu(void) { return &cpu; }
