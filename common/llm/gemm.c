/* gemm.c - the fp32 product kernel and the causal softmax of the CPU inference path (gemm.h).
 *
 * Why not OpenBLAS here: the Makefile pins OpenBLAS to its AVX2 (Haswell) kernels so that
 * every machine sums in the same order (docs/ARCHITECTURE.md, "BLAS kernels"); on the AVX-512
 * machines this project runs on that leaves half of each vector unit idle. This kernel uses
 * AVX-512 and still sums in one order everywhere (a plain fma chain per element, gemm.h), so
 * its results do not depend on the machine either. */
#include "llm/gemm.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "llm/vexp.h"

/* ---- portable versions (the definition of the arithmetic) ---- */

static void tile_portable(int K, const float *A, const float *B, int ldb, float *const *crow, int mr, int nc, int acc) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nc; j++) {
            float c = acc ? crow[i][j] : 0.0f;
            for (int k = 0; k < K; k++) c = fmaf(A[(size_t)k * LLM_GEMM_MR + i], B[(size_t)k * ldb + j], c);
            crow[i][j] = c;
        }
}

/* Fixed reduction of 16 partial sums: p[j] += p[j + h] for h = 8, 4, 2, 1. */
static float sum16(float *p) {
    for (int h = 8; h >= 1; h /= 2)
        for (int j = 0; j < h; j++) p[j] += p[j + h];
    return p[0];
}

static void softmax_portable(float *s, int lds, int rows, const int *np, int n_pad, float scale) {
    for (int i = 0; i < rows; i++) {
        float *r = s + (size_t)i * lds, mx = -INFINITY, part[16] = {0};
        int n = np[i];
        for (int p = 0; p < n; p++) {
            r[p] *= scale;
            if (r[p] > mx) mx = r[p];
        }
        for (int p = 0; p < n; p++) {
            r[p] = vexpf(r[p] - mx);
            part[p & 15] += r[p];
        }
        float inv = 1.0f / sum16(part);
        for (int p = 0; p < n; p++) r[p] *= inv;
        for (int p = n; p < n_pad; p++) r[p] = 0;
    }
}

/* ---- AVX-512 ---- */

#define AVX512 __attribute__((target("avx512f")))

/* Rows 0..13 of the tile: c<i>a, c<i>b hold columns 0-15 and 16-31 of row i. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)

AVX512 static void tile_avx512(int K, const float *A, const float *B, int ldb, float *const *crow, int mr, int nc,
                               int acc) {
    __mmask16 m0 = nc >= 16 ? 0xffff : (__mmask16)((1u << nc) - 1),
              m1 = nc >= 32 ? 0xffff : nc <= 16 ? 0 : (__mmask16)((1u << (nc - 16)) - 1);
#define DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
    ROWS(DECL)
#undef DECL
    if (acc) {
#define LOAD(i)                                                                                                      \
    if (i < mr) c##i##a = _mm512_maskz_loadu_ps(m0, crow[i]), c##i##b = _mm512_maskz_loadu_ps(m1, crow[i] + 16);
        ROWS(LOAD)
#undef LOAD
    }
    for (int k = 0; k < K; k++, A += LLM_GEMM_MR, B += ldb) {
        __m512 b0 = _mm512_maskz_loadu_ps(m0, B), b1 = _mm512_maskz_loadu_ps(m1, B + 16), a;
#define FMA(i)                                                                                                       \
    a = _mm512_set1_ps(A[i]);                                                                                        \
    c##i##a = _mm512_fmadd_ps(a, b0, c##i##a);                                                                       \
    c##i##b = _mm512_fmadd_ps(a, b1, c##i##b);
        ROWS(FMA)
#undef FMA
    }
#define STORE(i)                                                                                                     \
    if (i < mr) _mm512_mask_storeu_ps(crow[i], m0, c##i##a), _mm512_mask_storeu_ps(crow[i] + 16, m1, c##i##b);
    ROWS(STORE)
#undef STORE
}

/* vexpf on 16 lanes, the same operations in the same order (no fma: the C is compiled with
 * contraction off), so each lane equals vexpf of it. */
AVX512 static __m512 vexp16(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
    x = _mm512_min_ps(x, _mm512_set1_ps(88.0f));
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    __mmask16 neg = _mm512_cmp_ps_mask(t, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 h = _mm512_mask_blend_ps(neg, _mm512_set1_ps(0.5f), _mm512_set1_ps(-0.5f));
    __m512i n = _mm512_cvttps_epi32(_mm512_add_ps(t, h));
    __m512 fn = _mm512_cvtepi32_ps(n);
    __m512 r = _mm512_add_ps(_mm512_sub_ps(x, _mm512_mul_ps(fn, _mm512_set1_ps(0.693359375f))),
                             _mm512_mul_ps(fn, _mm512_set1_ps(2.12194440e-4f)));
    __m512 z = _mm512_mul_ps(r, r);
    __m512 y = _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(1.9875691500e-4f), r), _mm512_set1_ps(1.3981999507e-3f));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(8.3334519073e-3f));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(4.1665795894e-2f));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(1.6666665459e-1f));
    y = _mm512_add_ps(_mm512_mul_ps(y, r), _mm512_set1_ps(5.0000001201e-1f));
    y = _mm512_add_ps(_mm512_add_ps(_mm512_mul_ps(y, z), r), _mm512_set1_ps(1.0f));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(n, _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

AVX512 static void softmax_avx512(float *s, int lds, int rows, const int *np, int n_pad, float scale) {
    __m512 vs = _mm512_set1_ps(scale);
    for (int i = 0; i < rows; i++) {
        float *r = s + (size_t)i * lds, part[16];
        int n = np[i];
        __m512 mx = _mm512_set1_ps(-INFINITY), sum = _mm512_setzero_ps();
        for (int p = 0; p < n; p += 16) {
            __mmask16 m = n - p >= 16 ? 0xffff : (__mmask16)((1u << (n - p)) - 1);
            __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, r + p), vs);
            _mm512_mask_storeu_ps(r + p, m, v);
            mx = _mm512_mask_max_ps(mx, m, mx, v);
        }
        __m512 vmx = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
        for (int p = 0; p < n; p += 16) { /* lane j of sum takes entries j, j + 16, ... in order */
            __mmask16 m = n - p >= 16 ? 0xffff : (__mmask16)((1u << (n - p)) - 1);
            __m512 e = _mm512_maskz_mov_ps(m, vexp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, r + p), vmx)));
            _mm512_mask_storeu_ps(r + p, m, e);
            sum = _mm512_add_ps(sum, e); /* masked lanes add +0: no change */
        }
        _mm512_storeu_ps(part, sum);
        __m512 inv = _mm512_set1_ps(1.0f / sum16(part));
        for (int p = 0; p < n_pad; p += 16) {
            __mmask16 m = n - p >= 16 ? 0xffff : n - p <= 0 ? 0 : (__mmask16)((1u << (n - p)) - 1);
            __mmask16 w = n_pad - p >= 16 ? 0xffff : (__mmask16)((1u << (n_pad - p)) - 1);
            _mm512_mask_storeu_ps(r + p, w, _mm512_maskz_mul_ps(m, _mm512_maskz_loadu_ps(m, r + p), inv));
        }
    }
}

/* dst + m * ldd (m < kk) = column k0 + m of rows[0..nr) (16 lanes, masked by sm; lanes nr..15
 * zero): a 16 x 16 transpose in registers (unpack, shuffle, two lane shuffles). */
AVX512 static void transpose16(const float *const *rows, int nr, int k0, int kk, float *dst, int ldd, __mmask16 sm) {
    __mmask16 lm = kk >= 16 ? 0xffff : (__mmask16)((1u << kk) - 1);
    __m512 r[16], t[16], u[16];
    for (int i = 0; i < 16; i++) r[i] = i < nr ? _mm512_maskz_loadu_ps(lm, rows[i] + k0) : _mm512_setzero_ps();
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) { /* u[4i + c], 128-bit lane L: column 4L + c of rows 4i..4i+3 */
        u[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int c = 0; c < 4; c++) {
        __m512 a = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), b = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xDD);
        __m512 e = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88), f = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xDD);
        r[c] = _mm512_shuffle_f32x4(a, e, 0x88);
        r[c + 8] = _mm512_shuffle_f32x4(a, e, 0xDD);
        r[c + 4] = _mm512_shuffle_f32x4(b, f, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(b, f, 0xDD);
    }
    for (int m = 0; m < kk; m++) _mm512_mask_storeu_ps(dst + (size_t)m * ldd, sm, r[m]);
}

AVX512 static void pack_a_avx512(float *dst, const float *const *rows, int mr, int k0, int K) {
    for (int k = 0; k < K; k += 16)
        transpose16(rows, mr, k0 + k, K - k < 16 ? K - k : 16, dst + (size_t)k * LLM_GEMM_MR, LLM_GEMM_MR,
                    (__mmask16)((1u << LLM_GEMM_MR) - 1));
}

AVX512 static void pack_bt_avx512(float *dst, const float *const *rows, int nc, int k0, int K) {
    for (int g = 0; g < LLM_GEMM_NR; g += 16)
        for (int k = 0; k < K; k += 16)
            transpose16(rows + g, nc - g < 0 ? 0 : nc - g, k0 + k, K - k < 16 ? K - k : 16,
                        dst + (size_t)k * LLM_GEMM_NR + g, LLM_GEMM_NR, 0xffff);
}

AVX512 static void swiglu_avx512(float *g, const float *u, size_t n) {
    __m512 one = _mm512_set1_ps(1.0f);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? 0xffff : (__mmask16)((1u << (n - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(m, g + i), d = _mm512_add_ps(one, vexp16(_mm512_castsi512_ps(_mm512_xor_si512(
                                         _mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u))))); /* -x */
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_div_ps(x, d), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

/* ---- dispatch ---- */

static int fast = -1;

int llm_gemm_fast(void) {
    if (fast < 0) {
        __builtin_cpu_init();
        fast = __builtin_cpu_supports("avx512f") ? 1 : 0;
    }
    return fast;
}

void llm_gemm_tile(int K, const float *A, const float *B, int ldb, float *const *crow, int mr, int nc, int acc) {
    if (llm_gemm_fast()) tile_avx512(K, A, B, ldb, crow, mr, nc, acc);
    else tile_portable(K, A, B, ldb, crow, mr, nc, acc);
}

void llm_softmax_causal(float *s, int lds, int rows, const int *np, int n_pad, float scale) {
    if (llm_gemm_fast()) softmax_avx512(s, lds, rows, np, n_pad, scale);
    else softmax_portable(s, lds, rows, np, n_pad, scale);
}

void llm_gemm_pack_a(float *dst, const float *const *rows, int mr, int k0, int K) {
    if (llm_gemm_fast()) {
        pack_a_avx512(dst, rows, mr, k0, K);
        return;
    }
    for (int i = 0; i < LLM_GEMM_MR; i++) {
        float *d = dst + i;
        if (i < mr) {
            const float *r = rows[i] + k0;
            for (int k = 0; k < K; k++) d[(size_t)k * LLM_GEMM_MR] = r[k];
        } else
            for (int k = 0; k < K; k++) d[(size_t)k * LLM_GEMM_MR] = 0;
    }
}

void llm_gemm_pack_bt(float *dst, const float *const *rows, int nc, int k0, int K) {
    if (llm_gemm_fast()) {
        pack_bt_avx512(dst, rows, nc, k0, K);
        return;
    }
    for (int j = 0; j < LLM_GEMM_NR; j++) {
        float *d = dst + j;
        if (j < nc) {
            const float *r = rows[j] + k0;
            for (int k = 0; k < K; k++) d[(size_t)k * LLM_GEMM_NR] = r[k];
        } else
            for (int k = 0; k < K; k++) d[(size_t)k * LLM_GEMM_NR] = 0;
    }
}

void llm_swiglu_f32(float *g, const float *u, size_t n) {
    if (llm_gemm_fast()) swiglu_avx512(g, u, n);
    else
        for (size_t i = 0; i < n; i++) g[i] = g[i] / (1.0f + vexpf(-g[i])) * u[i];
}
