/* backend_dnnl.c - "cpu-bf16": the CPU backend with bf16 matrix products through oneDNN.
 *
 * The function table is the CPU backend's (llm_backend_cpu), with these members replaced:
 *   matmul (and so the logits: matmul_f32 stays NULL), matmul_dx (and the classifier's
 *   backward, matmul_dx_f32 NULL), gemm, attention (items of 8 tokens or more),
 *   attention_train, attention_backward, set_threads; plus weight_release.
 * Activations stay fp32 in memory (act_bytes 4), so the rest of the engine runs unchanged.
 * ITREK_BF16_ATTENTION=0 in the environment keeps the CPU's fp32 attention (for comparisons).
 *
 * A product rounds its inputs to bf16 (round to nearest even) and runs a oneDNN matmul
 * primitive: bf16 x bf16 with fp32 accumulation, fp32 output. oneDNN picks the kernel for the
 * CPU: AMX tiles on Sapphire Rapids and later, avx512_bf16 instructions on Cooper Lake, and
 * on other AVX-512 CPUs an emulation that is slower than OpenBLAS's fp32 sgemm (the stages
 * print llm_dnnl_isa_note's warning); on CPUs without AVX-512 oneDNN has no bf16 matmul and
 * llm_backend_cpu_bf16 returns NULL with the reason.
 *
 * Weights. A frozen weight (fp32, or int8 with row scales, dequantised first) is converted
 * once, at its first product, into the blocked layout oneDNN chose for its shape
 * (format_tag_any on a primitive of MB rows, then one reorder), and kept in w->dev: one copy
 * for y = x W^T and, when training, one for dx = dy W. The copy is checked on every product
 * against the weight's data pointer, shape and a fingerprint of 32 sampled elements, and
 * remade when they differ; full-parameter training, which rewrites every weight after each
 * update, turns the cache off (llm_dnnl_set_weight_cache(0)) so that every product converts
 * its weight afresh. weight_release frees the copy (model.c's weight_free calls it).
 *
 * Shapes. Primitives are created once per shape and cached in a hash table. The number of
 * rows (tokens) varies from call to call, so a product of T rows runs as blocks of MB rows,
 * then one block of a multiple of 16 rows, then one of fewer than 16: at most 47 row counts
 * per weight shape, whatever T is, and no padding or copying of the caller's buffers. The
 * gemm's contracted dimension (the token count in weight gradients) is padded with zeros to
 * a multiple of KPAD in the bf16 copies of its operands.
 *
 * gemm. Only products whose three sides are all at least GEMM_MIN go to oneDNN: the weight
 * gradients of full training (out x in x tokens) and of the tied classifier. The LoRA products,
 * with one side r (16), stay fp32 OpenBLAS: rounding their operands would cost about as much
 * as the products themselves, a few percent of a step's flops.
 *
 * Threads: oneDNN runs on its OpenMP team (set_threads sets its size with
 * omp_set_num_threads, found at run time in the libgomp that libdnnl loads); the rounding of
 * activations runs on the CPU backend's pool. Not thread-safe: one product at a time, as the
 * engine calls its backend.
 */
#include "llm/backend_dnnl.h"

#include <dlfcn.h>
#include <immintrin.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/err.h"
#include "llm/vexp.h"

#define MB 512      /* rows per main block of a product */
#define KPAD 64     /* gemm: the contracted dimension rounded up to a multiple of this */
#define GEMM_MIN 64 /* gemm: smallest side that goes to oneDNN */

typedef uint16_t bf16;

static const llm_backend *cpu;
static llm_backend be16;
static int state; /* 0: not tried, 1: usable, -1: not */
static char state_err[512], note[512];
static dnnl_engine_t eng;
static dnnl_stream_t strm;
static int weight_cache = 1;
static llm_dnnl_stats stats;
static void (*omp_set)(int);

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void dn(dnnl_status_t s, const char *what) {
    if (s != dnnl_success) die("cpu-bf16: oneDNN %s failed (status %d)", what, (int)s);
}
#define DN(call) dn((call), #call)

/* ---- fp32 -> bf16, round to nearest even (NaN stays NaN) ---- */

static inline bf16 f2bf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (bf16)(u >> 16);
}

static void cvt_scalar(bf16 *d, const float *s, size_t n) {
    for (size_t i = 0; i < n; i++) d[i] = f2bf(s[i]);
}

/* AVX-512 without bf16 instructions: the same integer rounding, 16 at a time. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void cvt_avx512(bf16 *d, const float *s, size_t n) {
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff), quiet = _mm512_set1_epi32(0x00400000);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_maskz_loadu_ps(m, s + i);
        __m512i u = _mm512_castps_si512(v);
        __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(bias, _mm512_and_si512(_mm512_srli_epi32(u, 16), one)));
        r = _mm512_mask_mov_epi32(r, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), _mm512_or_si512(u, quiet));
        _mm256_mask_storeu_epi16(d + i, m, _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16)));
    }
}

/* avx512_bf16 (Cooper Lake, Sapphire Rapids and later): vcvtneps2bf16. */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void cvt_avx512bf16(bf16 *d, const float *s,
                                                                                          size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, s + i));
        _mm256_mask_storeu_epi16(d + i, m, (__m256i)h);
    }
}

static void (*cvt)(bf16 *d, const float *s, size_t n) = cvt_scalar;

/* rows [a, b): d[r*ldd + 0..cols) = bf16(s[r*lds + ..]), then zeros up to pad */
typedef struct {
    bf16 *d;
    const float *s;
    size_t ldd, lds, cols, pad;
} cvt_ctx;

static void cvt_range(void *vc, size_t a, size_t b) {
    const cvt_ctx *c = vc;
    for (size_t r = a; r < b; r++) {
        cvt(c->d + r * c->ldd, c->s + r * c->lds, c->cols);
        if (c->pad > c->cols) memset(c->d + r * c->ldd + c->cols, 0, (c->pad - c->cols) * sizeof(bf16));
    }
}

static void cvt_rows(bf16 *d, size_t ldd, const float *s, size_t lds, size_t rows, size_t cols, size_t pad) {
    double t = now();
    cvt_ctx c = {d, s, ldd, lds, cols, pad};
    llm_cpu_parallel(rows, 1 + 16384 / (cols ? cols : 1), cvt_range, &c, 2.0 * (double)pad);
    stats.round_s += now() - t;
}

/* Growing 64-byte-aligned scratch (slot 0, 1: the two operands; 2: a dequantised weight;
 * S_* : attention). */
enum { S_QP = 3, S_KT, S_VP, S_S, S_PB, S_O, S_KP, S_VT, S_QT, S_DOP, S_DOT, S_DP, S_DSB, S_DVT, S_DKT, S_ROWS, N_SCRATCH };
static void *scratch_p[N_SCRATCH];
static size_t scratch_n[N_SCRATCH];

static void *scratch(int slot, size_t bytes) {
    if (bytes > scratch_n[slot]) {
        free(scratch_p[slot]);
        scratch_p[slot] = NULL;
        if (posix_memalign(&scratch_p[slot], 64, bytes ? bytes : 64) != 0) die("cpu-bf16: out of memory (%zu bytes)", bytes);
        scratch_n[slot] = bytes;
    }
    return scratch_p[slot];
}

/* ---- primitives, cached by shape ---- */

enum { K_FWD = 0, K_BWD = 1, K_GEMM = 2 };

typedef struct {
    int kind, M, N, K, ta, tb;
    long lda, ldb, ldc;
    float alpha, beta;
} pkey;

typedef struct pent {
    pkey k;
    dnnl_primitive_t p; /* NULL: oneDNN has none for this shape (run in fp32) */
    dnnl_memory_t src, wei, dst;
    struct pent *next;
} pent;

#define PBUCKETS 1024
static pent *ptab[PBUCKETS];

static unsigned pkey_hash(const pkey *k) {
    uint64_t h = 1469598103934665603ull;
    long v[] = {k->kind, k->M, k->N, k->K, k->ta, k->tb, k->lda, k->ldb, k->ldc};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) h = (h ^ (uint64_t)v[i]) * 1099511628211ull;
    uint32_t a, b;
    memcpy(&a, &k->alpha, 4);
    memcpy(&b, &k->beta, 4);
    h = (h ^ a) * 1099511628211ull;
    h = (h ^ b) * 1099511628211ull;
    return (unsigned)(h ^ (h >> 29)) % PBUCKETS;
}

static int pkey_eq(const pkey *a, const pkey *b) {
    return a->kind == b->kind && a->M == b->M && a->N == b->N && a->K == b->K && a->ta == b->ta && a->tb == b->tb &&
           a->lda == b->lda && a->ldb == b->ldb && a->ldc == b->ldc && a->alpha == b->alpha && a->beta == b->beta;
}

static dnnl_primitive_attr_t make_attr(float alpha, float beta) {
    dnnl_primitive_attr_t attr;
    DN(dnnl_primitive_attr_create(&attr));
    if (alpha != 1.0f) DN(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha));
    if (beta != 0.0f) {
        dnnl_post_ops_t po;
        DN(dnnl_post_ops_create(&po));
        DN(dnnl_post_ops_append_sum(po, beta));
        DN(dnnl_primitive_attr_set_post_ops(attr, po));
        DN(dnnl_post_ops_destroy(po));
    }
    return attr;
}

/* A primitive descriptor for dst = alpha src wei + beta dst; NULL when oneDNN has none. */
static dnnl_primitive_desc_t matmul_pd(const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                                       const dnnl_memory_desc_t *dst, float alpha, float beta) {
    dnnl_matmul_desc_t d;
    if (dnnl_matmul_desc_init(&d, src, wei, NULL, dst) != dnnl_success) return NULL;
    dnnl_primitive_attr_t attr = make_attr(alpha, beta);
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_primitive_desc_create(&pd, &d, attr, eng, NULL) != dnnl_success) pd = NULL;
    DN(dnnl_primitive_attr_destroy(attr));
    return pd;
}

static void md_plain(dnnl_memory_desc_t *md, int64_t rows, int64_t cols, dnnl_data_type_t dt, int64_t s0, int64_t s1) {
    dnnl_dims_t dims = {rows, cols}, strides = {s0, s1};
    DN(dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides));
}

static pent *pent_new(const pkey *k, dnnl_primitive_desc_t pd) {
    pent *e = xcalloc(1, sizeof *e);
    e->k = *k;
    if (pd) {
        if (dnnl_primitive_create(&e->p, pd) != dnnl_success) e->p = NULL;
        if (e->p) {
            DN(dnnl_memory_create(&e->src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), eng, DNNL_MEMORY_NONE));
            DN(dnnl_memory_create(&e->wei, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), eng,
                                  DNNL_MEMORY_NONE));
            DN(dnnl_memory_create(&e->dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), eng, DNNL_MEMORY_NONE));
            stats.primitives++;
        }
        DN(dnnl_primitive_desc_destroy(pd));
    }
    unsigned h = pkey_hash(k);
    e->next = ptab[h];
    ptab[h] = e;
    return e;
}

static pent *pent_find(const pkey *k) {
    for (pent *e = ptab[pkey_hash(k)]; e; e = e->next)
        if (pkey_eq(&e->k, k)) return e;
    return NULL;
}

static void run(const pent *e, const void *src, const void *wei, void *dst) {
    double t = now();
    DN(dnnl_memory_set_data_handle_v2(e->src, (void *)src, strm));
    DN(dnnl_memory_set_data_handle_v2(e->wei, (void *)wei, strm));
    DN(dnnl_memory_set_data_handle_v2(e->dst, dst, strm));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei}, {DNNL_ARG_DST, e->dst}};
    DN(dnnl_primitive_execute(e->p, strm, 3, args));
    DN(dnnl_stream_wait(strm));
    stats.product_s += now() - t;
}

/* Rows of the next block: MB, else a multiple of 16, else the rest (< 16). */
static int block_rows(int left) { return left >= MB ? MB : left >= 16 ? (left & ~15) : left; }

/* ---- weight layouts: per (direction, K, N) the blocked bf16 layout oneDNN picked, and the
 * reorder from the fp32 weight into it. K_FWD: y (M,N) = x (M,K) W^T with W (N rows, K cols);
 * K_BWD: dx (M,N) = dy (M,K) W with W (K rows, N cols). ---- */

typedef struct lay {
    int dir, K, N, ok;
    dnnl_memory_desc_t md; /* bf16, (K, N) as the primitive's weights */
    size_t bytes;
    dnnl_primitive_t reorder;
    dnnl_memory_t rsrc, rdst;
    struct lay *next;
} lay;

static lay *lays;

static const lay *layout(int dir, int K, int N) {
    for (lay *l = lays; l; l = l->next)
        if (l->dir == dir && l->K == K && l->N == N) return l;
    lay *l = xcalloc(1, sizeof *l);
    l->dir = dir, l->K = K, l->N = N;
    l->next = lays;
    lays = l;
    dnnl_memory_desc_t src, wei, dst, f32w;
    md_plain(&src, MB, K, dnnl_bf16, K, 1);
    md_plain(&dst, MB, N, dnnl_f32, N, 1);
    dnnl_dims_t wd = {K, N};
    DN(dnnl_memory_desc_init_by_tag(&wei, 2, wd, dnnl_bf16, dnnl_format_tag_any));
    dnnl_primitive_desc_t pd = matmul_pd(&src, &wei, &dst, 1.0f, 0.0f);
    if (!pd) return l;
    l->md = *dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    DN(dnnl_primitive_desc_destroy(pd));
    l->bytes = dnnl_memory_desc_get_size(&l->md);
    /* the fp32 weight as (K, N): W^T of a row-major (N, K) forward, W itself backward */
    if (dir == K_FWD) md_plain(&f32w, K, N, dnnl_f32, 1, K);
    else md_plain(&f32w, K, N, dnnl_f32, N, 1);
    dnnl_primitive_desc_t rpd;
    if (dnnl_reorder_primitive_desc_create(&rpd, &f32w, eng, &l->md, eng, NULL) != dnnl_success) return l;
    if (dnnl_primitive_create(&l->reorder, rpd) != dnnl_success) { DN(dnnl_primitive_desc_destroy(rpd)); return l; }
    DN(dnnl_primitive_desc_destroy(rpd));
    DN(dnnl_memory_create(&l->rsrc, &f32w, eng, DNNL_MEMORY_NONE));
    DN(dnnl_memory_create(&l->rdst, &l->md, eng, DNNL_MEMORY_NONE));
    l->ok = 1;
    return l;
}

/* The product primitive of M rows against a weight in layout l (sum into dst when acc). */
static const pent *wprim(const lay *l, int M, int acc) {
    pkey k = {.kind = l->dir, .M = M, .N = l->N, .K = l->K, .alpha = 1.0f, .beta = acc ? 1.0f : 0.0f};
    pent *e = pent_find(&k);
    if (e) return e;
    dnnl_memory_desc_t src, dst, any;
    md_plain(&src, M, l->K, dnnl_bf16, l->K, 1);
    md_plain(&dst, M, l->N, dnnl_f32, l->N, 1);
    dnnl_primitive_desc_t pd = matmul_pd(&src, &l->md, &dst, 1.0f, k.beta);
    if (!pd) { /* the layout fixed: does format_tag_any pick the same one for this M? */
        dnnl_dims_t wd = {l->K, l->N};
        DN(dnnl_memory_desc_init_by_tag(&any, 2, wd, dnnl_bf16, dnnl_format_tag_any));
        pd = matmul_pd(&src, &any, &dst, 1.0f, k.beta);
        if (pd && !dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &l->md)) {
            DN(dnnl_primitive_desc_destroy(pd));
            pd = NULL;
        }
    }
    return pent_new(&k, pd);
}

/* ---- per-weight bf16 copies (w->dev) ---- */

typedef struct went {
    const void *src;      /* w->f or w->q when converted */
    const float *scale;
    int rows, cols;
    uint64_t fp;
    void *buf[2];         /* K_FWD, K_BWD copies (NULL until used) */
    struct went *prev, *next;
} went;

static went *wlist; /* every copy, so that all stay reachable until released */

static uint64_t fingerprint(const llm_weight *w) {
    size_t n = (size_t)w->rows * w->cols;
    uint64_t h = 1469598103934665603ull;
    for (int j = 0; j < 32 && n; j++) {
        size_t i = (n - 1) * (size_t)j / 31;
        uint32_t v;
        if (w->f) memcpy(&v, w->f + i, 4);
        else v = (uint8_t)w->q[i];
        h = (h ^ v) * 1099511628211ull;
        if (!w->f && w->scale) {
            memcpy(&v, w->scale + i / (size_t)w->cols, 4);
            h = (h ^ v) * 1099511628211ull;
        }
    }
    return h;
}

typedef struct {
    const llm_weight *w;
    float *d;
} dq_ctx;

static void dq_range(void *vc, size_t a, size_t b) {
    const dq_ctx *c = vc;
    size_t K = (size_t)c->w->cols;
    for (size_t r = a; r < b; r++) {
        const int8_t *q = c->w->q + r * K;
        float s = c->w->scale[r], *d = c->d + r * K;
        for (size_t k = 0; k < K; k++) d[k] = (float)q[k] * s;
    }
}

static void convert_weight(const llm_weight *w, const lay *l, void *dst) {
    double t = now();
    const float *src = w->f;
    if (!src) { /* int8: dequantise (as the CPU backend does), then the same reorder */
        float *d = scratch(2, (size_t)w->rows * w->cols * sizeof(float));
        dq_ctx c = {w, d};
        llm_cpu_parallel((size_t)w->rows, 16, dq_range, &c, 2.0 * w->cols);
        src = d;
    }
    DN(dnnl_memory_set_data_handle_v2(l->rsrc, (void *)src, strm));
    DN(dnnl_memory_set_data_handle_v2(l->rdst, dst, strm));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, l->rsrc}, {DNNL_ARG_TO, l->rdst}};
    DN(dnnl_primitive_execute(l->reorder, strm, 2, args));
    DN(dnnl_stream_wait(strm));
    stats.conversions++;
    stats.weight_s += now() - t;
}

static void went_drop(went *e) {
    free(e->buf[0]);
    free(e->buf[1]);
    e->buf[0] = e->buf[1] = NULL;
}

/* The bf16 copy of w for direction dir in layout *lp; NULL when oneDNN has no layout. */
static const void *weight_bf16(const llm_weight *cw, int dir, const lay **lp) {
    llm_weight *w = (llm_weight *)cw; /* w->dev is the backend's to keep */
    const lay *l = dir == K_FWD ? layout(K_FWD, w->cols, w->rows) : layout(K_BWD, w->rows, w->cols);
    *lp = l;
    if (!l->ok) return NULL;
    went *e = w->dev;
    const void *src = w->f ? (const void *)w->f : (const void *)w->q;
    const float *scale = w->f ? NULL : w->scale;
    if (!e) {
        e = xcalloc(1, sizeof *e);
        e->next = wlist;
        if (wlist) wlist->prev = e;
        wlist = e;
        w->dev = e;
    }
    int fresh = !weight_cache;
    if (fresh) e->src = NULL; /* converted from whatever the weight holds now: never reused once cached */
    else {
        uint64_t fp = fingerprint(w);
        if (e->src != src || e->scale != scale || e->rows != w->rows || e->cols != w->cols || e->fp != fp) {
            went_drop(e);
            e->src = src, e->scale = scale, e->rows = w->rows, e->cols = w->cols, e->fp = fp;
        }
    }
    if (!e->buf[dir]) {
        if (posix_memalign(&e->buf[dir], 64, l->bytes ? l->bytes : 64) != 0)
            die("cpu-bf16: out of memory (%zu bytes)", l->bytes);
        fresh = 1;
    }
    if (fresh) convert_weight(w, l, e->buf[dir]);
    return e->buf[dir];
}

static void bf_weight_release(llm_weight *w) {
    went *e = w->dev;
    if (!e) return;
    if (e->prev) e->prev->next = e->next;
    else wlist = e->next;
    if (e->next) e->next->prev = e->prev;
    went_drop(e);
    free(e);
    w->dev = NULL;
}

/* ---- the products ---- */

/* out (T, l->N) (+)= in (T, l->K) through the weight: the shared body of matmul and matmul_dx. */
static void wproduct(float *out, const float *in, const llm_weight *w, int T, int dir, int acc) {
    const lay *l;
    const void *wb = weight_bf16(w, dir, &l);
    int K = l->K, N = l->N;
    if (!wb) {
        stats.fallbacks++;
        if (dir == K_FWD) cpu->matmul(out, in, w, T);
        else cpu->matmul_dx(out, in, w, T, acc);
        return;
    }
    bf16 *xb = scratch(0, (size_t)T * K * sizeof(bf16));
    cvt_rows(xb, (size_t)K, in, (size_t)K, (size_t)T, (size_t)K, (size_t)K);
    for (int t0 = 0; t0 < T;) {
        int m = block_rows(T - t0);
        const pent *e = wprim(l, m, acc);
        if (e->p) run(e, xb + (size_t)t0 * K, wb, out + (size_t)t0 * N);
        else {
            stats.fallbacks++;
            if (dir == K_FWD) cpu->matmul(out + (size_t)t0 * N, in + (size_t)t0 * K, w, m);
            else cpu->matmul_dx(out + (size_t)t0 * N, in + (size_t)t0 * K, w, m, acc);
        }
        t0 += m;
    }
    stats.products++;
}

static void bf_matmul(llm_act y, llm_cact x, const llm_weight *w, int T) {
    if (T > 0) wproduct(y, x, w, T, K_FWD, 0);
}

static void bf_matmul_dx(llm_act dx, llm_cact dy, const llm_weight *w, int T, int accumulate) {
    if (T > 0) wproduct(dx, dy, w, T, K_BWD, accumulate);
}

/* C (M,N) = alpha op(A) op(B) + beta C. The operands are rounded into bf16 copies in their
 * stored orientation (op(A) = A^T reads A's copy through its strides), the contracted
 * dimension zero-padded to a multiple of KPAD. */
static void bf_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K < GEMM_MIN || M < GEMM_MIN || N < GEMM_MIN) {
        stats.fp32++;
        cpu->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int Kp = (K + KPAD - 1) / KPAD * KPAD;
    bf16 *Ab = scratch(0, (size_t)M * Kp * sizeof(bf16)), *Bb = scratch(1, (size_t)N * Kp * sizeof(bf16));
    long la, lb; /* leading dimensions of the copies */
    if (!ta) { /* A (M,K) -> (M,Kp) */
        la = Kp;
        cvt_rows(Ab, (size_t)Kp, A, (size_t)lda, (size_t)M, (size_t)K, (size_t)Kp);
    } else { /* A stored (K,M) -> (Kp,M) */
        la = M;
        cvt_rows(Ab, (size_t)M, A, (size_t)lda, (size_t)K, (size_t)M, (size_t)M);
        memset(Ab + (size_t)K * M, 0, (size_t)(Kp - K) * M * sizeof(bf16));
    }
    if (!tb) { /* B (K,N) -> (Kp,N) */
        lb = N;
        cvt_rows(Bb, (size_t)N, B, (size_t)ldb, (size_t)K, (size_t)N, (size_t)N);
        memset(Bb + (size_t)K * N, 0, (size_t)(Kp - K) * N * sizeof(bf16));
    } else { /* B stored (N,K) -> (N,Kp) */
        lb = Kp;
        cvt_rows(Bb, (size_t)Kp, B, (size_t)ldb, (size_t)N, (size_t)K, (size_t)Kp);
    }
    for (int i0 = 0; i0 < M;) {
        int m = block_rows(M - i0);
        pkey k = {.kind = K_GEMM, .M = m, .N = N, .K = Kp, .ta = ta, .tb = tb, .lda = la, .ldb = lb, .ldc = ldc,
                  .alpha = alpha, .beta = beta};
        pent *e = pent_find(&k);
        if (!e) {
            dnnl_memory_desc_t sa, sb, sc;
            if (ta) md_plain(&sa, m, Kp, dnnl_bf16, 1, la);
            else md_plain(&sa, m, Kp, dnnl_bf16, la, 1);
            if (tb) md_plain(&sb, Kp, N, dnnl_bf16, 1, lb);
            else md_plain(&sb, Kp, N, dnnl_bf16, lb, 1);
            md_plain(&sc, m, N, dnnl_f32, ldc, 1);
            e = pent_new(&k, matmul_pd(&sa, &sb, &sc, alpha, beta));
        }
        if (e->p) run(e, ta ? Ab + i0 : Ab + (size_t)i0 * la, Bb, C + (size_t)i0 * ldc);
        else {
            stats.fallbacks++;
            cpu->gemm(ta, tb, m, N, K, alpha, ta ? A + i0 : A + (size_t)i0 * lda, lda, B, ldb, beta, C + (size_t)i0 * ldc,
                      ldc);
        }
        i0 += m;
    }
    stats.products++;
}

/* ---- attention in bf16: training forward and backward, prefill items of 8 tokens or more ----
 *
 * Per sequence, the R = n_heads / n_kv_heads query heads of kv head g are stacked as rows, so
 * that each product is one matmul batched over the G = n_kv_heads groups, all operands plain
 * row-major: S (G, R Lp, Np) = scale Q K^T; the causal softmax in fp32 on the pool (the
 * log-sum-exp kept for the backward), P rounded to bf16; O = P V. The backward recomputes S,
 * then dP = dO V^T, P = exp(S - lse), dS = P (dP - rowsum(dO O)), dV^T = dO^T P,
 * dQ = scale dS K, dK^T = scale Q^T dS (P and dS rounded to bf16). Query and key counts are
 * padded with zero rows to multiples of 64 (the causal mask never reaches the padding), so
 * the primitives are per 64-token length. The products cover the whole Lp x Np square, twice
 * the causal work (the fp32 path skips the blocks above the diagonal): cheap on AMX.
 * Decode items (fewer than 8 tokens) go to the CPU backend's fp32 attention. */

enum { K_BATCH = 3 };

static int attention_bf16 = -1; /* -1: from ITREK_BF16_ATTENTION (default on) */

static int att_on(void) {
    if (attention_bf16 < 0) {
        const char *e = getenv("ITREK_BF16_ATTENTION");
        attention_bf16 = !(e && strcmp(e, "0") == 0);
    }
    return attention_bf16;
}

/* dst (G, M, N) fp32 = alpha src (G, M, K) wei (G, K, N), dense bf16 operands */
static const pent *bprim(int G, int M, int K, int N, float alpha) {
    pkey k = {.kind = K_BATCH, .M = M, .N = N, .K = K, .lda = G, .alpha = alpha};
    pent *e = pent_find(&k);
    if (e) return e;
    dnnl_memory_desc_t sd, wd, dd;
    dnnl_dims_t ds = {G, M, K}, dw = {G, K, N}, dst = {G, M, N};
    DN(dnnl_memory_desc_init_by_tag(&sd, 3, ds, dnnl_bf16, dnnl_abc));
    DN(dnnl_memory_desc_init_by_tag(&wd, 3, dw, dnnl_bf16, dnnl_abc));
    DN(dnnl_memory_desc_init_by_tag(&dd, 3, dst, dnnl_f32, dnnl_abc));
    return pent_new(&k, matmul_pd(&sd, &wd, &dd, alpha, 0.0f));
}

typedef struct {
    int G, R, hd, nh;
    int L, Lp;               /* query rows (contiguous, stride qd), padded */
    int n, Np;               /* key / value rows, padded */
    size_t qd, kvd;
    const float *const *kr;  /* n key rows (all kv heads) */
    const float *const *vr;  /* n value rows */
    const int *lim;          /* query row i attends keys 0..lim[i] */
    float scale;
} att_geom;

/* Pack rows into bf16 per (group, head-in-group): dst (G, R np, hd), or transposed
 * (G, hd, R np); row i of head (g, r) is src(i) + (g R + r) hd; rows i >= n are zero. */
typedef struct {
    bf16 *d;
    const float *base;          /* rows base + i ld ... */
    size_t ld;
    const float *const *rows;   /* ... or these */
    int n, np, G, R, hd, trans;
} pack_ctx;

static void pack_range(void *vc, size_t a, size_t b) {
    const pack_ctx *c = vc;
    bf16 tmp[1024];
    for (size_t q = a; q < b; q++) {
        int i = (int)(q % (size_t)c->np), r = (int)(q / (size_t)c->np % (size_t)c->R), g = (int)(q / ((size_t)c->np * c->R));
        const float *src = i < c->n ? (c->rows ? c->rows[i] : c->base + (size_t)i * c->ld) + (size_t)(g * c->R + r) * c->hd : NULL;
        if (!c->trans) {
            bf16 *d = c->d + q * (size_t)c->hd;
            if (src) cvt(d, src, (size_t)c->hd);
            else memset(d, 0, (size_t)c->hd * sizeof(bf16));
        } else {
            if (src) cvt(tmp, src, (size_t)c->hd);
            else memset(tmp, 0, (size_t)c->hd * sizeof(bf16));
            size_t rn = (size_t)c->R * c->np;
            bf16 *d = c->d + (size_t)g * c->hd * rn + (size_t)r * c->np + (size_t)i;
            for (int e = 0; e < c->hd; e++) d[(size_t)e * rn] = tmp[e];
        }
    }
}

static bf16 *pack(int slot, const float *base, size_t ld, const float *const *rows, int n, int np, int G, int R, int hd,
                  int trans) {
    bf16 *d = scratch(slot, (size_t)G * R * np * hd * sizeof(bf16));
    pack_ctx c = {d, base, ld, rows, n, np, G, R, hd, trans};
    double t = now();
    llm_cpu_parallel((size_t)G * R * np, 16, pack_range, &c, 4.0 * hd);
    stats.round_s += now() - t;
    return d;
}

/* Softmax rows of S (forward: into Pb, lse) or the backward's P and dS rows. */
typedef struct {
    const att_geom *g;
    const float *S, *dP;
    bf16 *Pb, *dSb;
    float *lse;                  /* forward: (L, nh) rows, or NULL */
    const float *out, *dout;     /* backward: (L, qd) rows of O and dO */
    const float *lse_in;         /* backward */
} soft_ctx;

static void soft_fwd_range(void *vc, size_t a, size_t b) {
    const soft_ctx *c = vc;
    const att_geom *g = c->g;
    for (size_t q = a; q < b; q++) {
        int i = (int)(q % (size_t)g->Lp), h = (int)(q / (size_t)g->Lp); /* h = group * R + r */
        const float *row = c->S + q * (size_t)g->Np;
        bf16 *pb = c->Pb + q * (size_t)g->Np;
        if (i >= g->L) { memset(pb, 0, (size_t)g->Np * sizeof(bf16)); continue; }
        int np = g->lim[i] + 1;
        float mx = -INFINITY, sum = 0;
        for (int j = 0; j < np; j++) mx = row[j] > mx ? row[j] : mx;
        float *p = (float *)row; /* S is scratch: overwritten with the probabilities */
        for (int j = 0; j < np; j++) p[j] = vexpf(row[j] - mx);
        for (int j = 0; j < np; j++) sum += p[j];
        float inv = 1.0f / sum;
        for (int j = 0; j < np; j++) p[j] *= inv;
        cvt(pb, p, (size_t)np);
        memset(pb + np, 0, (size_t)(g->Np - np) * sizeof(bf16));
        if (c->lse) c->lse[(size_t)i * g->nh + h] = mx + logf(sum);
    }
}

static void soft_bwd_range(void *vc, size_t a, size_t b) {
    const soft_ctx *c = vc;
    const att_geom *g = c->g;
    for (size_t q = a; q < b; q++) {
        int i = (int)(q % (size_t)g->Lp), h = (int)(q / (size_t)g->Lp);
        float *S = (float *)c->S + q * (size_t)g->Np, *dP = (float *)c->dP + q * (size_t)g->Np;
        bf16 *pb = c->Pb + q * (size_t)g->Np, *ds = c->dSb + q * (size_t)g->Np;
        if (i >= g->L) {
            memset(pb, 0, (size_t)g->Np * sizeof(bf16));
            memset(ds, 0, (size_t)g->Np * sizeof(bf16));
            continue;
        }
        const float *x = c->dout + (size_t)i * g->qd + (size_t)h * g->hd, *y = c->out + (size_t)i * g->qd + (size_t)h * g->hd;
        float D = 0, l = c->lse_in[(size_t)i * g->nh + h];
        for (int e = 0; e < g->hd; e++) D += x[e] * y[e];
        int np = i + 1;
        for (int j = 0; j < np; j++) S[j] = vexpf(S[j] - l);        /* P */
        for (int j = 0; j < np; j++) dP[j] = S[j] * (dP[j] - D);    /* dS */
        cvt(pb, S, (size_t)np);
        cvt(ds, dP, (size_t)np);
        memset(pb + np, 0, (size_t)(g->Np - np) * sizeof(bf16));
        memset(ds + np, 0, (size_t)(g->Np - np) * sizeof(bf16));
    }
}

/* Results back into the (rows, all heads) layouts: X (G, R Lp, hd) -> dst rows (head g R + r),
 * or transposed XT (G, hd, Np) -> dst rows (kv head g). */
typedef struct {
    const att_geom *g;
    const float *X;
    float *dst;
    size_t ld;
    int trans;
} scat_ctx;

static void scat_range(void *vc, size_t a, size_t b) {
    const scat_ctx *c = vc;
    const att_geom *g = c->g;
    for (size_t i = a; i < b; i++) {
        float *d = c->dst + i * c->ld;
        if (!c->trans)
            for (int h = 0; h < g->G * g->R; h++)
                memcpy(d + (size_t)h * g->hd, c->X + ((size_t)h * g->Lp + i) * g->hd, (size_t)g->hd * sizeof(float));
        else
            for (int k = 0; k < g->G; k++)
                for (int e = 0; e < g->hd; e++) d[(size_t)k * g->hd + e] = c->X[((size_t)k * g->hd + e) * g->Np + i];
    }
}

static void scatter(const att_geom *g, const float *X, float *dst, size_t ld, int trans) {
    scat_ctx c = {g, X, dst, ld, trans};
    llm_cpu_parallel((size_t)g->L, 8, scat_range, &c, 2.0 * (trans ? g->G : g->G * g->R) * g->hd);
}

/* out (L rows, qd) = attention of the L query rows q; lse (L, nh) when not NULL. */
static int att_forward(const att_geom *g, const float *q, float *out, float *lse) {
    int G = g->G, RL = g->R * g->Lp;
    const pent *pS = bprim(G, RL, g->hd, g->Np, g->scale), *pO = bprim(G, RL, g->Np, g->hd, 1.0f);
    if (!pS->p || !pO->p) return -1;
    bf16 *Qp = pack(S_QP, q, g->qd, NULL, g->L, g->Lp, G, g->R, g->hd, 0);
    bf16 *KT = pack(S_KT, NULL, 0, g->kr, g->n, g->Np, G, 1, g->hd, 1);
    bf16 *Vp = pack(S_VP, NULL, 0, g->vr, g->n, g->Np, G, 1, g->hd, 0);
    float *S = scratch(S_S, (size_t)G * RL * g->Np * sizeof(float)), *O = scratch(S_O, (size_t)G * RL * g->hd * sizeof(float));
    bf16 *Pb = scratch(S_PB, (size_t)G * RL * g->Np * sizeof(bf16));
    run(pS, Qp, KT, S);
    soft_ctx c = {.g = g, .S = S, .Pb = Pb, .lse = lse};
    llm_cpu_parallel((size_t)G * RL, 4, soft_fwd_range, &c, 12.0 * g->Np);
    run(pO, Pb, Vp, O);
    scatter(g, O, out, g->qd, 0);
    return 0;
}

static void bf_attention_train(const llm_train_attn *a) {
    int G = a->n_kv_heads, R = a->n_heads / a->n_kv_heads, hd = a->head_dim;
    size_t qd = (size_t)a->n_heads * hd, kvd = (size_t)G * hd;
    if (!att_on() || hd > 1024) { cpu->attention_train(a); return; }
    for (int s = 0; s < a->n_seq; s++) {
        int L = a->len[s];
        if (L <= 0) continue;
        size_t o = (size_t)a->off[s];
        int Lp = (L + 63) / 64 * 64;
        const float **rows = scratch(S_ROWS, 2 * (size_t)L * sizeof *rows);
        for (int i = 0; i < L; i++) {
            rows[i] = (const float *)a->k + (o + (size_t)i) * kvd;
            rows[L + i] = (const float *)a->v + (o + (size_t)i) * kvd;
        }
        att_geom g = {G, R, hd, a->n_heads, L, Lp, L, Lp, qd, kvd, rows, rows + L, NULL, 1.0f / sqrtf((float)hd)};
        int *lm = xmalloc((size_t)L * sizeof *lm);
        for (int i = 0; i < L; i++) lm[i] = i;
        g.lim = lm;
        int rc = att_forward(&g, (const float *)a->q + o * qd, (float *)a->out + o * qd, a->lse + o * (size_t)a->n_heads);
        free(lm);
        if (rc != 0) { /* no primitive for these shapes: this sequence in fp32 */
            stats.fallbacks++;
            llm_train_attn one = *a;
            one.n_seq = 1, one.off = a->off + s, one.len = a->len + s;
            cpu->attention_train(&one);
        }
    }
    stats.attention++;
}

static void bf_attention_backward(const llm_train_attn *a) {
    int G = a->n_kv_heads, R = a->n_heads / a->n_kv_heads, hd = a->head_dim;
    size_t qd = (size_t)a->n_heads * hd, kvd = (size_t)G * hd;
    if (!att_on() || hd > 1024) { cpu->attention_backward(a); return; }
    for (int s = 0; s < a->n_seq; s++) {
        int L = a->len[s];
        if (L <= 0) continue;
        size_t o = (size_t)a->off[s];
        int Lp = (L + 63) / 64 * 64, RL = R * Lp;
        float scale = 1.0f / sqrtf((float)hd);
        const pent *pS = bprim(G, RL, hd, Lp, scale), *pdP = bprim(G, RL, hd, Lp, 1.0f), *pdV = bprim(G, hd, RL, Lp, 1.0f),
                   *pdQ = bprim(G, RL, Lp, hd, scale), *pdK = bprim(G, hd, RL, Lp, scale);
        if (!pS->p || !pdP->p || !pdV->p || !pdQ->p || !pdK->p) {
            stats.fallbacks++;
            llm_train_attn one = *a;
            one.n_seq = 1, one.off = a->off + s, one.len = a->len + s;
            cpu->attention_backward(&one);
            continue;
        }
        const float *q = (const float *)a->q + o * qd, *k = (const float *)a->k + o * kvd, *v = (const float *)a->v + o * kvd;
        const float *dO = (const float *)a->dout + o * qd;
        att_geom g = {G, R, hd, a->n_heads, L, Lp, L, Lp, qd, kvd, NULL, NULL, NULL, scale};
        bf16 *Qp = pack(S_QP, q, qd, NULL, L, Lp, G, R, hd, 0), *QT = pack(S_QT, q, qd, NULL, L, Lp, G, R, hd, 1);
        bf16 *KT = pack(S_KT, k, kvd, NULL, L, Lp, G, 1, hd, 1), *Kp = pack(S_KP, k, kvd, NULL, L, Lp, G, 1, hd, 0);
        bf16 *VT = pack(S_VT, v, kvd, NULL, L, Lp, G, 1, hd, 1);
        bf16 *dOp = pack(S_DOP, dO, qd, NULL, L, Lp, G, R, hd, 0), *dOT = pack(S_DOT, dO, qd, NULL, L, Lp, G, R, hd, 1);
        float *S = scratch(S_S, (size_t)G * RL * Lp * sizeof(float)), *dP = scratch(S_DP, (size_t)G * RL * Lp * sizeof(float));
        bf16 *Pb = scratch(S_PB, (size_t)G * RL * Lp * sizeof(bf16)), *dSb = scratch(S_DSB, (size_t)G * RL * Lp * sizeof(bf16));
        float *X = scratch(S_O, (size_t)G * RL * hd * sizeof(float));
        float *dVT = scratch(S_DVT, (size_t)G * hd * Lp * sizeof(float)), *dKT = scratch(S_DKT, (size_t)G * hd * Lp * sizeof(float));
        run(pS, Qp, KT, S);
        run(pdP, dOp, VT, dP);
        soft_ctx c = {.g = &g, .S = S, .dP = dP, .Pb = Pb, .dSb = dSb, .out = (const float *)a->out + o * qd, .dout = dO,
                      .lse_in = a->lse + o * (size_t)a->n_heads};
        llm_cpu_parallel((size_t)G * RL, 4, soft_bwd_range, &c, 16.0 * Lp);
        run(pdV, dOT, Pb, dVT);
        run(pdQ, dSb, Kp, X);
        run(pdK, QT, dSb, dKT);
        scatter(&g, X, (float *)a->dq + o * qd, qd, 0);
        scatter(&g, dVT, (float *)a->dv + o * kvd, kvd, 1);
        scatter(&g, dKT, (float *)a->dk + o * kvd, kvd, 1);
    }
    stats.attention++;
}

/* Inference attention: items of 8 tokens or more in bf16, the others (decode steps) on the
 * CPU backend, as it splits them too. */
static void bf_attention(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim) {
    if (!att_on() || head_dim > 1024) { cpu->attention(items, n_items, n_heads, n_kv_heads, head_dim); return; }
    int G = n_kv_heads, R = n_heads / n_kv_heads, hd = head_dim, n_small = 0;
    size_t qd = (size_t)n_heads * hd, kvd = (size_t)G * hd;
    llm_attn_item *small = xmalloc((size_t)(n_items ? n_items : 1) * sizeof *small);
    for (int it = 0; it < n_items; it++) {
        const llm_attn_item *x = &items[it];
        if (x->T < 8) { small[n_small++] = *x; continue; }
        int n = 0;
        for (int t = 0; t < x->T; t++) n = x->pos[t] + 1 > n ? x->pos[t] + 1 : n;
        const float **rows = scratch(S_ROWS, 2 * (size_t)n * sizeof *rows);
        int p = 0;
        for (int s = 0; s < x->n_spans && p < n; s++)
            for (int j = 0; j < x->spans[s].len && p < n; j++, p++) {
                rows[p] = (const float *)x->spans[s].k + (size_t)j * kvd;
                rows[n + p] = (const float *)x->spans[s].v + (size_t)j * kvd;
            }
        att_geom g = {G, R, hd, n_heads, x->T, (x->T + 63) / 64 * 64, n, (n + 63) / 64 * 64, qd, kvd, rows, rows + n,
                      x->pos, 1.0f / sqrtf((float)hd)};
        if (p < n || att_forward(&g, (const float *)x->q, (float *)x->out, NULL) != 0) {
            stats.fallbacks++;
            small[n_small++] = *x;
        }
    }
    if (n_small) cpu->attention(small, n_small, n_heads, n_kv_heads, head_dim);
    free(small);
    stats.attention++;
}

static void bf_set_threads(int n) {
    if (n < 1) n = 1;
    cpu->set_threads(n);
    if (omp_set) omp_set(n);
}

/* ---- set-up ---- */

static const char *isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

static void init(void) {
    cpu = llm_backend_cpu();
    const dnnl_version_t *v = dnnl_version();
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    state = -1;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&strm, eng, dnnl_stream_default_flags) != dnnl_success) {
        snprintf(state_err, sizeof state_err, "--precision bf16: oneDNN %d.%d.%d cannot start a CPU engine", v->major,
                 v->minor, v->patch);
        return;
    }
    dnnl_memory_desc_t a, b, c;
    md_plain(&a, 16, 16, dnnl_bf16, 16, 1);
    md_plain(&b, 16, 16, dnnl_bf16, 16, 1);
    md_plain(&c, 16, 16, dnnl_f32, 16, 1);
    dnnl_primitive_desc_t pd = matmul_pd(&a, &b, &c, 1.0f, 0.0f);
    if (!pd) {
        snprintf(state_err, sizeof state_err,
                 "--precision bf16: oneDNN %d.%d.%d has no bf16 matrix product on this CPU (instruction set %s; it "
                 "needs AVX-512, and avx512_bf16 or AMX to be fast); use --precision fp32",
                 v->major, v->minor, v->patch, isa_name(isa));
        return;
    }
    DN(dnnl_primitive_desc_destroy(pd));
    int hw = (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
    if (!hw)
        snprintf(note, sizeof note,
                 "cpu-bf16: this CPU has no avx512_bf16 or AMX (oneDNN %d.%d.%d: %s); oneDNN emulates bf16 with "
                 "AVX-512, slower than --precision fp32",
                 v->major, v->minor, v->patch, isa_name(isa));
    cvt = hw ? cvt_avx512bf16 : cvt_avx512;
    void *sym = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    memcpy(&omp_set, &sym, sizeof sym);
    be16 = *cpu;
    be16.name = "cpu-bf16";
    be16.set_threads = bf_set_threads;
    be16.matmul = bf_matmul;
    be16.matmul_infer = NULL; /* the CPU's fp32 one would bypass the bf16 products */
    be16.matmul_dx = bf_matmul_dx;
    be16.gemm = bf_gemm;
    be16.attention = bf_attention;
    be16.attention_train = bf_attention_train;
    be16.attention_backward = bf_attention_backward;
    be16.weight_release = bf_weight_release;
    state = 1;
}

const llm_backend *llm_backend_cpu_bf16(char *err, size_t errlen) {
    if (!state) init();
    if (state < 0) {
        if (err && errlen) snprintf(err, errlen, "%s", state_err);
        return NULL;
    }
    return &be16;
}

const char *llm_dnnl_isa_note(void) {
    if (!state) init();
    return state > 0 && note[0] ? note : NULL;
}

void llm_dnnl_set_weight_cache(int on) { weight_cache = on; }

void llm_dnnl_get_stats(llm_dnnl_stats *s) { *s = stats; }
