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
 *
 * The bf16 attention (training and prefill) is in backend_dnnl_att.c; backend_dnnl_impl.h is
 * what the two files share (conversion, scratch, the primitive cache, the statistics).
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
#include "llm/backend_dnnl_impl.h"
#include "llm/vexp.h"

#define MB 512      /* rows per main block of a product */
#define KPAD 64     /* gemm: the contracted dimension rounded up to a multiple of this */
#define GEMM_MIN 64 /* gemm: smallest side that goes to oneDNN */

static const llm_backend *cpu;
static llm_backend be16;
static int state; /* 0: not tried, 1: usable, -1: not */
static char state_err[512], note[512];
static dnnl_engine_t eng;
static dnnl_stream_t strm;
static int weight_cache = 1;
llm_dnnl_stats bf_stats;
static void (*omp_set)(int);

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

void (*bf_cvt)(bf16 *d, const float *s, size_t n) = cvt_scalar;

/* rows [a, b): d[r*ldd + 0..cols) = bf16(s[r*lds + ..]), then zeros up to pad */
typedef struct {
    bf16 *d;
    const float *s;
    size_t ldd, lds, cols, pad;
} cvt_ctx;

static void cvt_range(void *vc, size_t a, size_t b) {
    const cvt_ctx *c = vc;
    for (size_t r = a; r < b; r++) {
        bf_cvt(c->d + r * c->ldd, c->s + r * c->lds, c->cols);
        if (c->pad > c->cols) memset(c->d + r * c->ldd + c->cols, 0, (c->pad - c->cols) * sizeof(bf16));
    }
}

static void cvt_rows(bf16 *d, size_t ldd, const float *s, size_t lds, size_t rows, size_t cols, size_t pad) {
    double t = bf_now();
    cvt_ctx c = {d, s, ldd, lds, cols, pad};
    llm_cpu_parallel(rows, 1 + 16384 / (cols ? cols : 1), cvt_range, &c, 2.0 * (double)pad);
    bf_stats.round_s += bf_now() - t;
}

static void *scratch_p[N_SCRATCH];
static size_t scratch_n[N_SCRATCH];

/* Growing 64-byte-aligned scratch (slot 0, 1: the two operands; 2: a dequantised weight;
 * S_* : attention). */
void *bf_scratch(int slot, size_t bytes) {
    if (bytes > scratch_n[slot]) {
        free(scratch_p[slot]);
        scratch_p[slot] = NULL;
        if (posix_memalign(&scratch_p[slot], 64, bytes ? bytes : 64) != 0) die("cpu-bf16: out of memory (%zu bytes)", bytes);
        scratch_n[slot] = bytes;
    }
    return scratch_p[slot];
}

/* ---- primitives, cached by shape ---- */

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

dnnl_primitive_desc_t bf_matmul_pd(const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
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

pent *bf_pent_new(const pkey *k, dnnl_primitive_desc_t pd) {
    pent *e = xcalloc(1, sizeof *e);
    e->k = *k;
    if (pd) {
        if (dnnl_primitive_create(&e->p, pd) != dnnl_success) e->p = NULL;
        if (e->p) {
            DN(dnnl_memory_create(&e->src, dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0), eng, DNNL_MEMORY_NONE));
            DN(dnnl_memory_create(&e->wei, dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), eng,
                                  DNNL_MEMORY_NONE));
            DN(dnnl_memory_create(&e->dst, dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0), eng, DNNL_MEMORY_NONE));
            bf_stats.primitives++;
        }
        DN(dnnl_primitive_desc_destroy(pd));
    }
    unsigned h = pkey_hash(k);
    e->next = ptab[h];
    ptab[h] = e;
    return e;
}

pent *bf_pent_find(const pkey *k) {
    for (pent *e = ptab[pkey_hash(k)]; e; e = e->next)
        if (pkey_eq(&e->k, k)) return e;
    return NULL;
}

void bf_run(const pent *e, const void *src, const void *wei, void *dst) {
    double t = bf_now();
    DN(dnnl_memory_set_data_handle_v2(e->src, (void *)src, strm));
    DN(dnnl_memory_set_data_handle_v2(e->wei, (void *)wei, strm));
    DN(dnnl_memory_set_data_handle_v2(e->dst, dst, strm));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, e->src}, {DNNL_ARG_WEIGHTS, e->wei}, {DNNL_ARG_DST, e->dst}};
    DN(dnnl_primitive_execute(e->p, strm, 3, args));
    DN(dnnl_stream_wait(strm));
    bf_stats.product_s += bf_now() - t;
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
    dnnl_primitive_desc_t pd = bf_matmul_pd(&src, &wei, &dst, 1.0f, 0.0f);
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
    pent *e = bf_pent_find(&k);
    if (e) return e;
    dnnl_memory_desc_t src, dst, any;
    md_plain(&src, M, l->K, dnnl_bf16, l->K, 1);
    md_plain(&dst, M, l->N, dnnl_f32, l->N, 1);
    dnnl_primitive_desc_t pd = bf_matmul_pd(&src, &l->md, &dst, 1.0f, k.beta);
    if (!pd) { /* the layout fixed: does format_tag_any pick the same one for this M? */
        dnnl_dims_t wd = {l->K, l->N};
        DN(dnnl_memory_desc_init_by_tag(&any, 2, wd, dnnl_bf16, dnnl_format_tag_any));
        pd = bf_matmul_pd(&src, &any, &dst, 1.0f, k.beta);
        if (pd && !dnnl_memory_desc_equal(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0), &l->md)) {
            DN(dnnl_primitive_desc_destroy(pd));
            pd = NULL;
        }
    }
    return bf_pent_new(&k, pd);
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
    double t = bf_now();
    const float *src = w->f;
    if (!src) { /* int8: dequantise (as the CPU backend does), then the same reorder */
        float *d = bf_scratch(2, (size_t)w->rows * w->cols * sizeof(float));
        dq_ctx c = {w, d};
        llm_cpu_parallel((size_t)w->rows, 16, dq_range, &c, 2.0 * w->cols);
        src = d;
    }
    DN(dnnl_memory_set_data_handle_v2(l->rsrc, (void *)src, strm));
    DN(dnnl_memory_set_data_handle_v2(l->rdst, dst, strm));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, l->rsrc}, {DNNL_ARG_TO, l->rdst}};
    DN(dnnl_primitive_execute(l->reorder, strm, 2, args));
    DN(dnnl_stream_wait(strm));
    bf_stats.conversions++;
    bf_stats.weight_s += bf_now() - t;
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
        bf_stats.fallbacks++;
        if (dir == K_FWD) cpu->matmul(out, in, w, T);
        else cpu->matmul_dx(out, in, w, T, acc);
        return;
    }
    bf16 *xb = bf_scratch(0, (size_t)T * K * sizeof(bf16));
    cvt_rows(xb, (size_t)K, in, (size_t)K, (size_t)T, (size_t)K, (size_t)K);
    for (int t0 = 0; t0 < T;) {
        int m = block_rows(T - t0);
        const pent *e = wprim(l, m, acc);
        if (e->p) bf_run(e, xb + (size_t)t0 * K, wb, out + (size_t)t0 * N);
        else {
            bf_stats.fallbacks++;
            if (dir == K_FWD) cpu->matmul(out + (size_t)t0 * N, in + (size_t)t0 * K, w, m);
            else cpu->matmul_dx(out + (size_t)t0 * N, in + (size_t)t0 * K, w, m, acc);
        }
        t0 += m;
    }
    bf_stats.products++;
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
        bf_stats.fp32++;
        cpu->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int Kp = (K + KPAD - 1) / KPAD * KPAD;
    bf16 *Ab = bf_scratch(0, (size_t)M * Kp * sizeof(bf16)), *Bb = bf_scratch(1, (size_t)N * Kp * sizeof(bf16));
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
        pent *e = bf_pent_find(&k);
        if (!e) {
            dnnl_memory_desc_t sa, sb, sc;
            if (ta) md_plain(&sa, m, Kp, dnnl_bf16, 1, la);
            else md_plain(&sa, m, Kp, dnnl_bf16, la, 1);
            if (tb) md_plain(&sb, Kp, N, dnnl_bf16, 1, lb);
            else md_plain(&sb, Kp, N, dnnl_bf16, lb, 1);
            md_plain(&sc, m, N, dnnl_f32, ldc, 1);
            e = bf_pent_new(&k, bf_matmul_pd(&sa, &sb, &sc, alpha, beta));
        }
        if (e->p) bf_run(e, ta ? Ab + i0 : Ab + (size_t)i0 * la, Bb, C + (size_t)i0 * ldc);
        else {
            bf_stats.fallbacks++;
            cpu->gemm(ta, tb, m, N, K, alpha, ta ? A + i0 : A + (size_t)i0 * lda, lda, B, ldb, beta, C + (size_t)i0 * ldc,
                      ldc);
        }
        i0 += m;
    }
    bf_stats.products++;
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
    dnnl_primitive_desc_t pd = bf_matmul_pd(&a, &b, &c, 1.0f, 0.0f);
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
    bf_cvt = hw ? cvt_avx512bf16 : cvt_avx512;
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

void llm_dnnl_get_stats(llm_dnnl_stats *s) { *s = bf_stats; }
