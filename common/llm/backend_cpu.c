/* backend_cpu.c - the reference backend: OpenBLAS sgemm for the products, a small
 * persistent thread pool for attention, int8 dequantisation and the element-wise kernels.
 *
 * Determinism: every output element is computed by one thread with a fixed order of
 * operations (no atomics on floats; a reduction across rows, as RMSNorm's weight gradient,
 * runs over the rows in order inside one task), so results depend on the thread count only
 * through OpenBLAS's blocking.
 *
 * Attention (prefill and training) runs one task per (sequence, head) on the pool, each task
 * calling a single-threaded sgemm (OpenBLAS is switched to one thread for the job) on blocks
 * of ATT_BQ query rows against the keys of their causal prefix only.
 *
 * The training kernels (backward passes, training attention, the generic gemm) are in
 * backend_cpu_train.c; backend_cpu_impl.h is what the two files share. */
#include "llm/backend.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "llm/backend_cpu_impl.h"
#include "llm/gemm.h"

/* Lets the vectoriser if-convert float compares (the clamps of vexpf, softmax maxima): only
 * the floating-point exception flags may differ, never a value. */
#pragma GCC optimize("no-trapping-math")

/* ---- thread pool: run fn(ctx, i) for i in [0, n) on the workers and the caller ----
 *
 * Tasks are claimed from a counter that carries the job's generation in its high half, so a
 * worker that wakes late (the machine busy with other processes) cannot claim a task of a
 * later job; the caller waits for its tasks to be done, not for every worker to check in, so
 * a job the caller finished alone costs no wake-up latency. */

#define POOL_MAX 256
static struct {
    int n_workers, want;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    task_fn fn;
    void *ctx;
    int n_tasks;
    unsigned gen;
    _Atomic unsigned long long next; /* gen << 32 | next task */
    atomic_int n_done;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER, .done = PTHREAD_COND_INITIALIZER, .want = 1};

/* Claim and run tasks of job `gen` until none is left (or a later job has begun). */
static void pool_drain(unsigned gen, task_fn fn, void *ctx, int n) {
    unsigned long long v = atomic_load(&pool.next);
    for (;;) {
        if ((unsigned)(v >> 32) != gen || (int)(v & 0xffffffffu) >= n) return;
        if (!atomic_compare_exchange_weak(&pool.next, &v, v + 1)) continue;
        fn(ctx, (int)(v & 0xffffffffu));
        if (atomic_fetch_add(&pool.n_done, 1) + 1 == n) {
            pthread_mutex_lock(&pool.mu);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.mu);
        }
        v = atomic_load(&pool.next);
    }
}

static void *pool_worker(void *arg) {
    int id = (int)(intptr_t)arg;
    unsigned seen = 0;
    pthread_mutex_lock(&pool.mu);
    for (;;) {
        while (pool.gen == seen) pthread_cond_wait(&pool.work, &pool.mu);
        seen = pool.gen;
        if (id >= pool.want - 1) continue; /* parked: fewer threads wanted now */
        task_fn fn = pool.fn;
        void *ctx = pool.ctx;
        int n = pool.n_tasks;
        pthread_mutex_unlock(&pool.mu);
        pool_drain(seen, fn, ctx, n);
        pthread_mutex_lock(&pool.mu);
    }
    return NULL;
}

/* Run on up to want threads; small jobs (work below ~64K flops) stay on the caller. */
void cpu_pool_run(int n, task_fn fn, void *ctx, double work) {
    if (n <= 0) return;
    if (pool.want <= 1 || n == 1 || work < 65536) {
        for (int i = 0; i < n; i++) fn(ctx, i);
        return;
    }
    pthread_mutex_lock(&pool.mu);
    while (pool.n_workers < pool.want - 1 && pool.n_workers < POOL_MAX) {
        pthread_t th;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &a, pool_worker, (void *)(intptr_t)pool.n_workers);
        pthread_attr_destroy(&a);
        if (rc != 0) break;
        pool.n_workers++;
    }
    unsigned gen = ++pool.gen;
    pool.fn = fn;
    pool.ctx = ctx;
    pool.n_tasks = n;
    atomic_store(&pool.n_done, 0);
    atomic_store(&pool.next, (unsigned long long)gen << 32);
    pthread_cond_broadcast(&pool.work);
    pthread_mutex_unlock(&pool.mu);
    pool_drain(gen, fn, ctx, n);
    pthread_mutex_lock(&pool.mu);
    while (atomic_load(&pool.n_done) < n) pthread_cond_wait(&pool.done, &pool.mu);
    pthread_mutex_unlock(&pool.mu);
}

/* Per-thread scratch buffers (the pool's workers live as long as the process): no allocation
 * per call once they have grown. */
#define N_SCRATCH 4
static _Thread_local float *scratch_p[N_SCRATCH];
static _Thread_local size_t scratch_n[N_SCRATCH];

float *cpu_scratch(int slot, size_t n) {
    if (n > scratch_n[slot]) {
        free(scratch_p[slot]);
        scratch_p[slot] = xmalloc((n ? n : 1) * sizeof(float));
        scratch_n[slot] = n;
    }
    return scratch_p[slot];
}

typedef struct {
    range_fn fn;
    void *ctx;
    size_t n, chunk;
} range_ctx;

static void range_task(void *vctx, int i) {
    range_ctx *r = vctx;
    size_t a = (size_t)i * r->chunk, b = a + r->chunk < r->n ? a + r->chunk : r->n;
    r->fn(r->ctx, a, b);
}

void cpu_par_range(size_t n, size_t grain, range_fn fn, void *ctx, double work_per_item) {
    if (n == 0) return;
    size_t chunk = n / ((size_t)pool.want * 4) + 1;
    if (chunk < grain) chunk = grain;
    range_ctx r = {fn, ctx, n, chunk};
    cpu_pool_run((int)((n + chunk - 1) / chunk), range_task, &r, work_per_item * (double)n);
}

static int blas_threads = 1; /* OpenBLAS's threads outside cpu_blas_serial(1) */
void cpu_blas_serial(int on) {
    if (blas_threads > 1 && pool.want > 1) openblas_set_num_threads(on ? 1 : blas_threads);
}

static void cpu_set_threads(int n) {
    if (n < 1) n = 1;
    blas_threads = n;
    pthread_mutex_lock(&pool.mu);
    pool.want = n > POOL_MAX ? POOL_MAX : n; /* workers beyond want - 1 stay parked */
    pthread_mutex_unlock(&pool.mu);
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
    float *row = cpu_scratch(0, (size_t)K);
    for (int r = r0; r < r1; r++) {
        const int8_t *q = c->w->q + (size_t)r * K;
        float s = c->w->scale[r];
        for (int k = 0; k < K; k++) row[k] = (float)q[k] * s;
        for (int t = 0; t < c->T; t++) c->y[(size_t)t * N + r] = cblas_sdot(K, row, 1, c->x + (size_t)t * K, 1);
    }
}

/* Dequantise rows [r0, r0 + nr) of an int8 weight into buf (nr, cols), on the pool. */
typedef struct {
    const llm_weight *w;
    float *buf;
    int r0;
} dq_ctx;

static void dequant_range(void *vctx, size_t a, size_t b) {
    dq_ctx *c = vctx;
    int K = c->w->cols;
    for (size_t r = a; r < b; r++) {
        const int8_t *q = c->w->q + (size_t)(c->r0 + (int)r) * K;
        float s = c->w->scale[c->r0 + (int)r], *d = c->buf + r * K;
        for (int k = 0; k < K; k++) d[k] = (float)q[k] * s;
    }
}

void cpu_dequant_rows(float *buf, const llm_weight *w, int r0, int nr) {
    dq_ctx c = {w, buf, r0};
    cpu_par_range((size_t)nr, 16, dequant_range, &c, 2.0 * w->cols);
}

int cpu_dequant_block_rows(const llm_weight *w) {
    int K = w->cols, N = w->rows, rb = (1 << 18) / (K > 0 ? K : 1);
    if (rb < 8) rb = 8;
    if (rb > N) rb = N;
    return rb;
}

static void cpu_matmul(llm_act yv, llm_cact xv, const llm_weight *w, int T) {
    float *y = yv;
    const float *x = xv;
    int N = w->rows, K = w->cols;
    if (T <= 0) return;
    if (w->f && T <= 4) { /* decode: y_t = W x_t (sgemm would pack all of W for one row) */
        for (int t = 0; t < T; t++)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, N, K, 1.0f, w->f, K, x + (size_t)t * K, 1, 0.0f, y + (size_t)t * N, 1);
        return;
    }
    if (w->f) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, x, K, w->f, K, 0.0f, y, N);
        return;
    }
    if (T <= 4) {
        mm_ctx c = {y, x, w, T, 64};
        int n = (N + c.rows_per_task - 1) / c.rows_per_task;
        cpu_pool_run(n, mm_int8_task, &c, 2.0 * T * N * K);
        return;
    }
    /* Prefill: dequantise blocks of rows (about 1 MiB) and hand them to sgemm. */
    int rb = cpu_dequant_block_rows(w);
    float *buf = cpu_scratch(3, (size_t)rb * K);
    for (int r0 = 0; r0 < N; r0 += rb) {
        int nr = r0 + rb <= N ? rb : N - r0;
        cpu_dequant_rows(buf, w, r0, nr);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, nr, K, 1.0f, x, K, buf, K, 0.0f, y + r0, N);
    }
}

/* ---- inference products (matmul_infer): gemm.h's AVX-512 kernel ----
 *
 * y (T,N) = x (T,K) W^T for llm_forward. x is packed once per call into tiles of MR rows, W
 * once per process into column panels of NR (gk_weight); a thread owns a range of panels.
 * Loops: blocks of MC tiles, then K blocks (the A block, MC*MR rows by KC, stays in L2), then
 * the thread's panels (a (KC, NR) block of W, 32 KiB, stays in L1 for all the tiles). Each
 * element is one fma chain over k (gemm.h), so the
 * result is the same for any T >= 5, thread count or CPU. Training keeps matmul (OpenBLAS):
 * its committed trajectories stay as they were. */
#define GK_KC 256 /* a packed W block: 256 x 32 floats, 32 KiB */
#define GK_MC 24  /* tiles per A block: 336 rows x 256 floats, 336 KiB */

typedef struct {
    float *y, *ap;
    const float *x, *w, *wp; /* wp: W packed (gk_packed) */
    int T, N, K, n_tiles;
} gk_ctx;

/* The packed copy of a frozen weight, kept in w->cpu_pack: panel p (K, NR) at p * K * NR, made at
 * its first product (one more copy of the weight in memory: the pack of each call read W from
 * memory in 32 strided rows, about 15% of the products' time). It is checked on every product
 * against the weight's pointer, shape and 32 sampled elements (as cpu-bf16's copies are), and
 * remade when they differ, so a weight rewritten in place (full training) is never read stale.
 * llm_cpu_weight_release frees it (model.c's weight_free). */
typedef struct {
    const float *src;
    int rows, cols;
    uint64_t fp;
    float *p;
} gk_packed;

static uint64_t gk_fingerprint(const llm_weight *w) {
    size_t n = (size_t)w->rows * w->cols;
    uint64_t h = 1469598103934665603ull;
    for (int j = 0; j < 32 && n; j++) {
        uint32_t v;
        memcpy(&v, w->f + (n - 1) * (size_t)j / 31, sizeof v);
        h = (h ^ v) * 1099511628211ull;
    }
    return h;
}

static void gk_pack_w_range(void *vctx, size_t a, size_t b) {
    const gk_ctx *c = vctx;
    const float *wrow[LLM_GEMM_NR];
    for (size_t p = a; p < b; p++) {
        int n0 = (int)p * LLM_GEMM_NR, nc = c->N - n0 < LLM_GEMM_NR ? c->N - n0 : LLM_GEMM_NR;
        for (int j = 0; j < nc; j++) wrow[j] = c->w + (size_t)(n0 + j) * c->K;
        llm_gemm_pack_bt((float *)c->wp + p * (size_t)c->K * LLM_GEMM_NR, wrow, nc, 0, c->K);
    }
}

static const float *gk_weight(const llm_weight *cw) {
    llm_weight *w = (llm_weight *)cw; /* w->cpu_pack is this backend's to keep */
    gk_packed *e = w->cpu_pack;
    uint64_t fp = gk_fingerprint(w);
    if (e && e->src == w->f && e->rows == w->rows && e->cols == w->cols && e->fp == fp) return e->p;
    if (!e) w->cpu_pack = e = xcalloc(1, sizeof *e);
    size_t n_pan = (size_t)(w->rows + LLM_GEMM_NR - 1) / LLM_GEMM_NR;
    free(e->p);
    e->p = xmalloc(n_pan * (size_t)w->cols * LLM_GEMM_NR * sizeof *e->p);
    e->src = w->f, e->rows = w->rows, e->cols = w->cols, e->fp = fp;
    gk_ctx c = {.w = w->f, .wp = e->p, .N = w->rows, .K = w->cols};
    cpu_par_range(n_pan, 1, gk_pack_w_range, &c, (double)w->cols * LLM_GEMM_NR);
    return e->p;
}

void llm_cpu_weight_release(llm_weight *w) {
    gk_packed *e = w->cpu_pack;
    if (!e) return;
    free(e->p);
    free(e);
    w->cpu_pack = NULL;
}

static void gk_pack_tiles(void *vctx, size_t a, size_t b) {
    const gk_ctx *c = vctx;
    const float *rows[LLM_GEMM_MR];
    for (size_t t = a; t < b; t++) {
        int r0 = (int)t * LLM_GEMM_MR, mr = c->T - r0 < LLM_GEMM_MR ? c->T - r0 : LLM_GEMM_MR;
        for (int i = 0; i < mr; i++) rows[i] = c->x + (size_t)(r0 + i) * c->K;
        llm_gemm_pack_a(c->ap + t * LLM_GEMM_MR * (size_t)c->K, rows, mr, 0, c->K);
    }
}

static void gk_panels(void *vctx, size_t a, size_t b) {
    const gk_ctx *c = vctx;
    int K = c->K, N = c->N;
    float *crow[LLM_GEMM_MR];
    for (int m0 = 0; m0 < c->n_tiles; m0 += GK_MC) {
        int m1 = m0 + GK_MC < c->n_tiles ? m0 + GK_MC : c->n_tiles;
        for (int k0 = 0; k0 < K; k0 += GK_KC) {
            int kc = K - k0 < GK_KC ? K - k0 : GK_KC;
            for (size_t p = a; p < b; p++) {
                int n0 = (int)p * LLM_GEMM_NR, nc = N - n0 < LLM_GEMM_NR ? N - n0 : LLM_GEMM_NR;
                const float *wb = c->wp + (p * (size_t)K + (size_t)k0) * LLM_GEMM_NR; // (kc,NR) block of W^T
                for (int t = m0; t < m1; t++) {
                    int r0 = t * LLM_GEMM_MR, mr = c->T - r0 < LLM_GEMM_MR ? c->T - r0 : LLM_GEMM_MR;
                    for (int i = 0; i < mr; i++) crow[i] = c->y + (size_t)(r0 + i) * N + n0;
                    // y[r0:r0+mr, n0:n0+nc] (+)= x[r0:r0+mr, k0:k0+kc] W[n0:n0+nc, k0:k0+kc]^T
                    llm_gemm_tile(kc, c->ap + ((size_t)t * K + k0) * LLM_GEMM_MR, wb, LLM_GEMM_NR, crow, mr, nc, k0 > 0);
                }
            }
        }
    }
}

static void cpu_matmul(llm_act yv, llm_cact xv, const llm_weight *w, int T);

/* The inference kernel runs where AVX-512 does, unless ITREK_CPU_GEMM=blas asks for the OpenBLAS
 * paths (the reference of tests/bench/smol-rank-bench.sh, and a way to rule the kernel out). */
static int infer_kernel(void) {
    static int on = -1;
    if (on < 0) {
        const char *e = getenv("ITREK_CPU_GEMM");
        on = llm_gemm_fast() && !(e && strcmp(e, "blas") == 0);
    }
    return on;
}

static void cpu_matmul_infer(llm_act yv, llm_cact xv, const llm_weight *w, int T) {
    if (!w->f || T <= 4 || !infer_kernel()) { /* int8, decode (sgemv reads W once), no AVX-512 */
        cpu_matmul(yv, xv, w, T);
        return;
    }
    int K = w->cols, N = w->rows, n_tiles = (T + LLM_GEMM_MR - 1) / LLM_GEMM_MR;
    gk_ctx c = {yv, cpu_scratch(3, (size_t)n_tiles * LLM_GEMM_MR * K), xv, w->f, gk_weight(w), T, N, K, n_tiles};
    cpu_par_range((size_t)n_tiles, 1, gk_pack_tiles, &c, (double)LLM_GEMM_MR * K);
    cpu_par_range((size_t)(N + LLM_GEMM_NR - 1) / LLM_GEMM_NR, 1, gk_panels, &c, 2.0 * T * LLM_GEMM_NR * K);
}

#include "llm/vexp.h"

/* ---- element-wise kernels, threaded over rows or ranges ---- */

static void rmsnorm_range(void *vctx, size_t a, size_t b) {
    const ew_ctx *c = vctx;
    int C = c->C;
    for (size_t t = a; t < b; t++) {
        const float *xt = c->x + t * C;
        float *yt = c->y + t * C;
        double ss = 0;
        for (int i = 0; i < C; i++) ss += (double)xt[i] * xt[i];
        float inv = (float)(1.0 / sqrt(ss / C + c->eps));
        for (int i = 0; i < C; i++) yt[i] = c->w[i] * (xt[i] * inv);
    }
}

static void cpu_rmsnorm(llm_act y, const float *x, const float *w, int T, int C, float eps) {
    ew_ctx c = {.y = y, .x = x, .w = w, .C = C, .eps = eps};
    cpu_par_range((size_t)(T > 0 ? T : 0), 4, rmsnorm_range, &c, 4.0 * C);
}

/* cos and sin of every (position, frequency) seen so far, (n_pos, hd) rows of hd/2 cosines
 * then hd/2 sines: the same values the loop computed per token and layer, computed once. */
static struct {
    float *cs, theta;
    int n_pos, hd;
} rope_tab;

static void rope_range(void *vctx, size_t a, size_t b) {
    const ew_ctx *c = vctx;
    int hd = c->head_dim, half = hd / 2;
    float cs[1024], *cd = c->inv_freq && hd > 1024 ? xmalloc((size_t)hd * sizeof *cd) : cs;
    for (size_t t = a; t < b; t++) {
        const float *cp = cd;
        if (c->inv_freq) /* negative positions (training's backward): computed here, as before the table */
            for (int i = 0; i < half; i++) {
                float ang = (float)c->pos[t] * c->inv_freq[i];
                cd[i] = (float)cos((double)ang);
                cd[half + i] = (float)sin((double)ang);
            }
        else
            cp = rope_tab.cs + (size_t)c->pos[t] * hd;
        for (int h = 0; h < c->n_heads; h++) {
            float *v = c->y + (t * c->n_heads + h) * hd;
            for (int i = 0; i < half; i++) {
                float x0 = v[i], x1 = v[i + half], co = cp[i], si = cp[half + i];
                v[i] = x0 * co - x1 * si;
                v[i + half] = x1 * co + x0 * si;
            }
        }
    }
    if (cd != cs) free(cd);
}

static void cpu_rope(llm_act x, const int *pos, int T, int n_heads, int head_dim, float theta) {
    int half = head_dim / 2, need = 0, neg = 0;
    for (int t = 0; t < T; t++) {
        if (pos[t] + 1 > need) need = pos[t] + 1;
        neg |= pos[t] < 0;
    }
    if (neg) { /* no table: the angles of these positions, per token */
        float fr[512], *inv_freq = half <= 512 ? fr : xmalloc((size_t)(half ? half : 1) * sizeof *inv_freq);
        for (int i = 0; i < half; i++) inv_freq[i] = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        ew_ctx c = {.y = x, .pos = pos, .n_heads = n_heads, .head_dim = head_dim, .inv_freq = inv_freq};
        cpu_par_range((size_t)(T > 0 ? T : 0), 2, rope_range, &c, 40.0 * half + 6.0 * n_heads * half);
        if (inv_freq != fr) free(inv_freq);
        return;
    }
    if (rope_tab.theta != theta || rope_tab.hd != head_dim) rope_tab.n_pos = 0;
    if (need > rope_tab.n_pos) { /* grow (to a power of two, at least 256 positions) */
        int n = 256;
        while (n < need) n *= 2;
        float fr[512], *inv_freq = half <= 512 ? fr : xmalloc((size_t)(half ? half : 1) * sizeof *inv_freq);
        for (int i = 0; i < half; i++) inv_freq[i] = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        rope_tab.cs = xrealloc(rope_tab.cs, (size_t)n * (head_dim ? head_dim : 1) * sizeof *rope_tab.cs);
        for (int p = rope_tab.n_pos; p < n; p++)
            for (int i = 0; i < half; i++) {
                float ang = (float)p * inv_freq[i];
                rope_tab.cs[(size_t)p * head_dim + i] = (float)cos((double)ang);
                rope_tab.cs[(size_t)p * head_dim + half + i] = (float)sin((double)ang);
            }
        if (inv_freq != fr) free(inv_freq);
        rope_tab.n_pos = n, rope_tab.theta = theta, rope_tab.hd = head_dim;
    }
    ew_ctx c = {.y = x, .pos = pos, .n_heads = n_heads, .head_dim = head_dim};
    cpu_par_range((size_t)(T > 0 ? T : 0), 2, rope_range, &c, 6.0 * n_heads * half);
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
    float *sc = cpu_scratch(0, (size_t)n), scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < c->n_heads; h++) {
        const float *q = (const float *)it->q + ((size_t)t * c->n_heads + h) * hd;
        float *out = (float *)it->out + ((size_t)t * c->n_heads + h) * hd;
        int kvh = h / rep, p = 0;
        float mx = -INFINITY;
        for (int s = 0; s < it->n_spans && p < n; s++)
            for (int j = 0; j < it->spans[s].len && p < n; j++, p++) {
                const float *k = (const float *)it->spans[s].k + (size_t)j * kvd + (size_t)kvh * hd;
                float d[8] = {0}, dd = 0; /* eight fixed partial sums (vectorisable) */
                int e = 0;
                for (; e + 8 <= hd; e += 8)
                    for (int u = 0; u < 8; u++) d[u] += q[e + u] * k[e + u];
                for (; e < hd; e++) dd += q[e] * k[e];
                sc[p] = (((d[0] + d[4]) + (d[1] + d[5])) + ((d[2] + d[6]) + (d[3] + d[7])) + dd) * scale;
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
                const float *v = (const float *)it->spans[s].v + (size_t)j * kvd + (size_t)kvh * hd;
                float a = sc[p] * inv;
                for (int e = 0; e < hd; e++) out[e] += a * v[e];
            }
    }
}

/* Prefill of T >= 8 tokens: one task per (item, query head); blocks of ATT_BQ query rows,
 * scores = q K^T and out = softmax(scores) V as single-threaded sgemm calls over the cached
 * spans, each block against the positions up to its last row only. */

typedef struct {
    const llm_attn_item *items;
    const int *task_item;
    int n_heads, n_kv_heads, head_dim;
} pre_ctx;

static void att_prefill_task(void *vctx, int task) {
    const pre_ctx *c = vctx;
    const llm_attn_item *it = &c->items[c->task_item[task]];
    int h = task % c->n_heads, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    int kvh = h / (c->n_heads / c->n_kv_heads), T = it->T, nmax = 0;
    for (int t = 0; t < T; t++) if (it->pos[t] + 1 > nmax) nmax = it->pos[t] + 1;
    float *S = cpu_scratch(0, (size_t)ATT_BQ * nmax), scale = 1.0f / sqrtf((float)hd);
    for (int t0 = 0; t0 < T; t0 += ATT_BQ) {
        int t1 = t0 + ATT_BQ < T ? t0 + ATT_BQ : T, nb = t1 - t0, n = 0, off = 0;
        for (int t = t0; t < t1; t++) if (it->pos[t] + 1 > n) n = it->pos[t] + 1;
        for (int s = 0; s < it->n_spans && off < n; s++) { // S (nb,n) = q_h (nb,hd) K^T
            int len = it->spans[s].len < n - off ? it->spans[s].len : n - off;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, len, hd, scale,
                        (const float *)it->q + (size_t)t0 * qd + (size_t)h * hd, qd,
                        (const float *)it->spans[s].k + (size_t)kvh * hd, kvd, 0.0f, S + off, n);
            off += len;
        }
        for (int t = t0; t < t1; t++) { // causal softmax over positions 0..pos[t]
            float *row = S + (size_t)(t - t0) * n, mx = -INFINITY, sum = 0;
            int np = it->pos[t] + 1;
            for (int p = 0; p < np; p++) if (row[p] > mx) mx = row[p];
            for (int p = 0; p < np; p++) { row[p] = expf(row[p] - mx); sum += row[p]; }
            float inv = 1.0f / sum;
            for (int p = 0; p < np; p++) row[p] *= inv;
            for (int p = np; p < n; p++) row[p] = 0;
        }
        off = 0;
        for (int s = 0; s < it->n_spans && off < n; s++) { // out_h (nb,hd) = S (nb,n) V
            int len = it->spans[s].len < n - off ? it->spans[s].len : n - off;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, hd, len, 1.0f, S + off, n,
                        (const float *)it->spans[s].v + (size_t)kvh * hd, kvd, off ? 1.0f : 0.0f,
                        (float *)it->out + (size_t)t0 * qd + (size_t)h * hd, qd);
            off += len;
        }
    }
}

/* ---- attention on gemm.h's kernel (AVX-512): one task per (item, kv head, chunk of rows).
 * The rows of a kv head are its query heads' rows, token-major (row r: token r / rep, head
 * kvh * rep + r % rep), so that GQA reads the head's keys and values once for all its query
 * heads. A task packs K^T (keys 0..n-1 of its rows, from the spans) into column panels and
 * copies V contiguous; then per tile of MR rows: S = q K^T over the keys the tile can see,
 * the causal softmax (gemm.h), out = P V. Each element is a fixed chain (gemm.h), so a row's
 * result does not depend on the rows computed with it: the same for any batch. ---- */
#define ATT_CHUNK (8 * LLM_GEMM_MR) /* rows per task */

typedef struct {
    const llm_attn_item *items;
    const int *task_item, *task_kvh, *task_r0;
    int n_heads, n_kv_heads, head_dim;
} gatt_ctx;

static void att_gk_task(void *vctx, int task) {
    const gatt_ctx *c = vctx;
    const llm_attn_item *it = &c->items[c->task_item[task]];
    int kvh = c->task_kvh[task], hd = c->head_dim, rep = c->n_heads / c->n_kv_heads;
    int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd, R = it->T * rep;
    int r0 = c->task_r0[task], r1 = r0 + ATT_CHUNK < R ? r0 + ATT_CHUNK : R, n = 0;
    for (int r = r0; r < r1; r++) if (it->pos[r / rep] + 1 > n) n = it->pos[r / rep] + 1;
    int n_pan = (n + LLM_GEMM_NR - 1) / LLM_GEMM_NR, npad = n_pan * LLM_GEMM_NR;
    float *kp = cpu_scratch(0, (size_t)npad * hd), *vc = cpu_scratch(1, (size_t)n * hd);
    float *S = cpu_scratch(2, (size_t)LLM_GEMM_MR * (2 * npad + hd)), *pp = S + (size_t)LLM_GEMM_MR * npad,
          *qp = pp + (size_t)LLM_GEMM_MR * npad;
    // kp: panel j (hd,NR) = K[keys 32j..32j+31]^T, vc (n,hd) = V, both of kv head kvh
    const float *krow[LLM_GEMM_NR];
    int s = 0, j = 0;
    for (int p = 0; p < n; p++, j++) {
        while (j >= it->spans[s].len) s++, j = 0;
        const float *k = (const float *)it->spans[s].k + (size_t)j * kvd + (size_t)kvh * hd;
        krow[p % LLM_GEMM_NR] = k;
        memcpy(vc + (size_t)p * hd, (const float *)it->spans[s].v + (size_t)j * kvd + (size_t)kvh * hd,
               (size_t)hd * sizeof *vc);
        if (p % LLM_GEMM_NR == LLM_GEMM_NR - 1 || p == n - 1)
            llm_gemm_pack_bt(kp + (size_t)(p / LLM_GEMM_NR) * hd * LLM_GEMM_NR, krow, p % LLM_GEMM_NR + 1, 0, hd);
    }
    float scale = 1.0f / sqrtf((float)hd), *crow[LLM_GEMM_MR];
    const float *rows[LLM_GEMM_MR];
    int np[LLM_GEMM_MR];
    for (int t0 = r0; t0 < r1; t0 += LLM_GEMM_MR) {
        int mr = r1 - t0 < LLM_GEMM_MR ? r1 - t0 : LLM_GEMM_MR, nt = 0;
        for (int i = 0; i < mr; i++) {
            int r = t0 + i, t = r / rep, h = kvh * rep + r % rep;
            rows[i] = (const float *)it->q + (size_t)t * qd + (size_t)h * hd;
            np[i] = it->pos[t] + 1;
            if (np[i] > nt) nt = np[i];
        }
        int ntp = (nt + LLM_GEMM_NR - 1) / LLM_GEMM_NR * LLM_GEMM_NR;
        llm_gemm_pack_a(qp, rows, mr, 0, hd);
        for (int jp = 0; jp < ntp; jp += LLM_GEMM_NR) { // S (mr,ntp) = q K^T
            for (int i = 0; i < mr; i++) crow[i] = S + (size_t)i * ntp + jp;
            llm_gemm_tile(hd, qp, kp + (size_t)jp * hd, LLM_GEMM_NR, crow, mr, LLM_GEMM_NR, 0);
        }
        llm_softmax_causal(S, ntp, mr, np, nt, scale); // P = softmax(scale S), causal
        for (int i = 0; i < mr; i++) rows[i] = S + (size_t)i * ntp;
        llm_gemm_pack_a(pp, rows, mr, 0, nt);
        for (int e0 = 0; e0 < hd; e0 += LLM_GEMM_NR) { // out (mr,hd) = P V
            for (int i = 0; i < mr; i++) {
                int r = t0 + i, t = r / rep, h = kvh * rep + r % rep;
                crow[i] = (float *)it->out + (size_t)t * qd + (size_t)h * hd + e0;
            }
            llm_gemm_tile(nt, pp, vc + e0, hd, crow, mr, hd - e0 < LLM_GEMM_NR ? hd - e0 : LLM_GEMM_NR, 0);
        }
    }
}

static void cpu_attention_gk(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim) {
    int rep = n_heads / n_kv_heads, n = 0;
    for (int i = 0; i < n_items; i++) n += n_kv_heads * ((items[i].T * rep + ATT_CHUNK - 1) / ATT_CHUNK);
    int *ti = xmalloc((size_t)(n ? n : 1) * 3 * sizeof *ti), *tk = ti + n, *tr = tk + n;
    double work = 0;
    n = 0;
    for (int i = 0; i < n_items; i++)
        for (int h = 0; h < n_kv_heads; h++)
            for (int r = 0; r < items[i].T * rep; r += ATT_CHUNK) {
                ti[n] = i, tk[n] = h, tr[n++] = r;
                work += 4.0 * (items[i].T * rep - r < ATT_CHUNK ? items[i].T * rep - r : ATT_CHUNK) *
                        (items[i].pos[items[i].T - 1] + 1) * head_dim;
            }
    gatt_ctx c = {items, ti, tk, tr, n_heads, n_kv_heads, head_dim};
    cpu_pool_run(n, att_gk_task, &c, work);
    free(ti);
}

static void cpu_attention(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim) {
    if (infer_kernel()) {
        cpu_attention_gk(items, n_items, n_heads, n_kv_heads, head_dim);
        return;
    }
    int n = 0, nb = 0;
    double work = 0, bwork = 0;
    for (int i = 0; i < n_items; i++)
        if (items[i].T < 8) n += items[i].T;
        else nb++;
    if (nb) { /* prefills: one task per (item, head) */
        int *bi = xmalloc((size_t)nb * n_heads * sizeof *bi);
        nb = 0;
        for (int i = 0; i < n_items; i++)
            if (items[i].T >= 8)
                for (int h = 0; h < n_heads; h++) {
                    bi[nb++] = i;
                    bwork += 2.0 * items[i].T * (items[i].pos[items[i].T - 1] + 1) * head_dim;
                }
        pre_ctx pc = {items, bi, n_heads, n_kv_heads, head_dim};
        cpu_blas_serial(1);
        cpu_pool_run(nb, att_prefill_task, &pc, bwork);
        cpu_blas_serial(0);
        free(bi);
    }
    int *ti = xmalloc((size_t)(n ? n : 1) * sizeof *ti), *tt = xmalloc((size_t)(n ? n : 1) * sizeof *tt);
    n = 0;
    for (int i = 0; i < n_items; i++)
        for (int t = 0; t < items[i].T && items[i].T < 8; t++) {
            ti[n] = i, tt[n] = t, n++;
            work += 4.0 * (items[i].pos[t] + 1) * n_heads * head_dim;
        }
    att_ctx c = {items, ti, tt, n_heads, n_kv_heads, head_dim};
    cpu_pool_run(n, att_task, &c, work);
    free(ti);
    free(tt);
}

static void swiglu_range(void *vctx, size_t a, size_t b) {
    const ew_ctx *c = vctx;
    llm_swiglu_f32(c->y + a, c->u + a, b - a); /* gemm.c: vectorised where AVX-512 is */
}

static void cpu_swiglu(llm_act g, llm_cact u, size_t n) {
    ew_ctx c = {.y = g, .u = u};
    cpu_par_range(n, 4096, swiglu_range, &c, 20.0);
}

static void add_range(void *vctx, size_t a, size_t b) {
    const ew_ctx *c = vctx;
    float *restrict y = c->y;
    const float *restrict x = c->x;
    for (size_t i = a; i < b; i++) y[i] += x[i];
}

static void cpu_add(float *y, llm_cact x, size_t n) {
    ew_ctx c = {.y = y, .x = x};
    cpu_par_range(n, 16384, add_range, &c, 1.0);
}

static const llm_backend cpu = {
    .name = "cpu",
    .set_threads = cpu_set_threads,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .embed = cpu_embed,
    .matmul = cpu_matmul,
    .matmul_infer = cpu_matmul_infer,
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
    .act_bytes = 4, /* activations are fp32: the mixed-type members stay NULL (backend.h) */
};

const llm_backend *llm_backend_cpu(void) { return &cpu; }

void llm_cpu_parallel(size_t n, size_t grain, void (*fn)(void *ctx, size_t a, size_t b), void *ctx,
                      double work_per_item) {
    cpu_par_range(n, grain, fn, ctx, work_per_item);
}
