/* test_gemm.c - the CPU inference kernels (gemm.h, backend_cpu.c's matmul_infer, attention,
 * swiglu) against the simple references.
 *
 * gemm.h defines the arithmetic (one fma chain per element, k in order; vexpf; 16 partial
 * sums), so the packs, the tile, the softmax, matmul_infer and swiglu must equal their scalar
 * references bit for bit; the references in double check that the definition itself is right
 * (tolerance 1e-5 relative to the sum of |terms|). Attention is compared with a double
 * reference (1e-5) and must not depend on the rows computed with it (bit for bit). Without
 * AVX-512 the same calls run the portable code (the checks still hold). */
#include "../unit/harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/backend.h"
#include "llm/gemm.h"
#include "llm/vexp.h"

static uint64_t rs = 88172645463325252ull;
static float frand(void) { /* uniform in [-1, 1) */
    rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
    return (float)((double)(rs >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
}
static float *rnd(size_t n) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = frand();
    return p;
}

static void test_packs(void) {
    int bad = 0;
    for (int K = 1; K <= 70 && !bad; K += 3)
        for (int nr = 1; nr <= LLM_GEMM_NR; nr += 5) {
            float *src = rnd((size_t)LLM_GEMM_NR * (K + 7));
            const float *rows[LLM_GEMM_NR];
            for (int i = 0; i < LLM_GEMM_NR; i++) rows[i] = src + (size_t)i * (K + 7);
            float *a = malloc(sizeof(float) * (size_t)K * LLM_GEMM_MR), *b = malloc(sizeof(float) * (size_t)K * LLM_GEMM_NR);
            int mr = nr < LLM_GEMM_MR ? nr : LLM_GEMM_MR;
            llm_gemm_pack_a(a, rows, mr, 3, K);
            llm_gemm_pack_bt(b, rows, nr, 3, K);
            for (int k = 0; k < K; k++) {
                for (int i = 0; i < LLM_GEMM_MR; i++) bad += a[k * LLM_GEMM_MR + i] != (i < mr ? rows[i][3 + k] : 0.0f);
                for (int j = 0; j < LLM_GEMM_NR; j++) bad += b[k * LLM_GEMM_NR + j] != (j < nr ? rows[j][3 + k] : 0.0f);
            }
            free(src), free(a), free(b);
        }
    CHECK("pack_a / pack_bt: the transposes, zero padding", bad == 0);
}

static void test_tile(void) {
    int bad = 0;
    double worst = 0;
    for (int K = 1; K <= 300; K += 37)
        for (int mr = 1; mr <= LLM_GEMM_MR; mr += 4)
            for (int nc = 1; nc <= LLM_GEMM_NR; nc += 7)
                for (int acc = 0; acc < 2; acc++) {
                    int ldb = 40;
                    float *A = rnd((size_t)K * LLM_GEMM_MR), *B = rnd((size_t)K * ldb), *C = rnd(LLM_GEMM_MR * 33);
                    for (int k = 0; k < K; k++) for (int i = mr; i < LLM_GEMM_MR; i++) A[k * LLM_GEMM_MR + i] = 0;
                    float *C0 = malloc(sizeof(float) * LLM_GEMM_MR * 33), *crow[LLM_GEMM_MR];
                    memcpy(C0, C, sizeof(float) * LLM_GEMM_MR * 33);
                    for (int i = 0; i < LLM_GEMM_MR; i++) crow[i] = C + i * 33;
                    llm_gemm_tile(K, A, B, ldb, crow, mr, nc, acc);
                    for (int i = 0; i < LLM_GEMM_MR; i++)
                        for (int j = 0; j < 33; j++) {
                            if (i >= mr || j >= nc) { bad += C[i * 33 + j] != C0[i * 33 + j]; continue; } /* untouched */
                            float c = acc ? C0[i * 33 + j] : 0.0f;
                            double d = acc ? C0[i * 33 + j] : 0.0, mag = fabs(d);
                            for (int k = 0; k < K; k++) {
                                c = fmaf(A[k * LLM_GEMM_MR + i], B[k * ldb + j], c);
                                d += (double)A[k * LLM_GEMM_MR + i] * B[k * ldb + j];
                                mag += fabs((double)A[k * LLM_GEMM_MR + i] * B[k * ldb + j]);
                            }
                            bad += C[i * 33 + j] != c;
                            if (fabs(C[i * 33 + j] - d) / (mag + 1e-30) > worst) worst = fabs(C[i * 33 + j] - d) / (mag + 1e-30);
                        }
                    free(A), free(B), free(C), free(C0);
                }
    CHECK("tile: each element is the fma chain over k (bit for bit)", bad == 0);
    CHECK("tile: within 1e-5 of the double product (relative to sum |terms|)", worst < 1e-5);
}

static void test_softmax(void) {
    int bad = 0;
    double worst = 0;
    int rows = 5, lds = 96, np[5] = {1, 17, 33, 64, 90};
    float *s = rnd((size_t)rows * lds), *ref = malloc(sizeof(float) * rows * lds);
    for (int i = 0; i < rows * lds; i++) s[i] *= 20;
    memcpy(ref, s, sizeof(float) * rows * lds);
    llm_softmax_causal(s, lds, rows, np, 92, 0.125f);
    for (int i = 0; i < rows; i++) { /* the definition: scale, max, vexpf, 16 partial sums, fixed tree */
        float *r = ref + i * lds, mx = -INFINITY, part[16] = {0};
        double dr[96], dmx = -INFINITY, dsum = 0;
        for (int p = 0; p < np[i]; p++) { r[p] *= 0.125f; if (r[p] > mx) mx = r[p]; }
        for (int p = 0; p < np[i]; p++) { dr[p] = r[p]; if (dr[p] > dmx) dmx = dr[p]; }
        for (int p = 0; p < np[i]; p++) { r[p] = vexpf(r[p] - mx); part[p & 15] += r[p]; dsum += exp(dr[p] - dmx); }
        for (int h = 8; h >= 1; h /= 2) for (int j = 0; j < h; j++) part[j] += part[j + h];
        for (int p = 0; p < np[i]; p++) {
            r[p] *= 1.0f / part[0];
            double d = exp(dr[p] - dmx) / dsum;
            if (fabs(s[i * lds + p] - d) > worst) worst = fabs(s[i * lds + p] - d);
        }
        for (int p = np[i]; p < 92; p++) r[p] = 0;
        for (int p = 0; p < 92; p++) bad += s[i * lds + p] != r[p];
        for (int p = 92; p < lds; p++) bad += s[i * lds + p] != ref[i * lds + p]; /* beyond n_pad: untouched */
    }
    CHECK("softmax_causal: as defined (bit for bit), zeros past the causal end", bad == 0);
    CHECK("softmax_causal: within 1e-6 of the double softmax", worst < 1e-6);
    free(s), free(ref);
}

static void test_matmul(const llm_backend *be) {
    int shapes[][3] = {{5, 32, 16}, {37, 70, 300}, {100, 192, 576}, {29, 1000, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int T = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *x = rnd((size_t)T * K), *wf = rnd((size_t)N * K), *y = malloc(sizeof(float) * T * N),
              *y2 = malloc(sizeof(float) * T * N);
        llm_weight w = {.rows = N, .cols = K, .f = wf};
        be->set_threads(2);
        be->matmul_infer(y, x, &w, T);
        int bad = 0;
        double worst = 0;
        for (int t = 0; t < T; t++)
            for (int n = 0; n < N; n++) {
                float c = 0;
                double d = 0, mag = 0;
                for (int k = 0; k < K; k++) {
                    c = fmaf(x[(size_t)t * K + k], wf[(size_t)n * K + k], c);
                    d += (double)x[(size_t)t * K + k] * wf[(size_t)n * K + k];
                    mag += fabs((double)x[(size_t)t * K + k] * wf[(size_t)n * K + k]);
                }
                float g = y[(size_t)t * N + n];
                if (llm_gemm_fast()) bad += g != c; /* without AVX-512 matmul_infer is OpenBLAS's matmul */
                if (fabs(g - d) / (mag + 1e-30) > worst) worst = fabs(g - d) / (mag + 1e-30);
            }
        char nm[160];
        snprintf(nm, sizeof nm, "matmul_infer %dx%dx%d: the fma chain per element (bit for bit)", T, N, K);
        CHECK(nm, bad == 0);
        snprintf(nm, sizeof nm, "matmul_infer %dx%dx%d: within 1e-5 of the double product", T, N, K);
        CHECK(nm, worst < 1e-5);
        /* the same rows alone (T - 5 >= 5 rows from row 5) and on one thread: the same bits */
        if (T >= 10 && llm_gemm_fast()) {
            be->set_threads(1);
            be->matmul_infer(y2, x + (size_t)5 * K, &w, T - 5);
            snprintf(nm, sizeof nm, "matmul_infer %dx%dx%d: rows do not depend on T or threads", T, N, K);
            CHECK(nm, memcmp(y2, y + (size_t)5 * N, sizeof(float) * (size_t)(T - 5) * N) == 0);
        }
        /* a weight rewritten in place is not read from a stale packed copy */
        for (size_t i = 0; i < (size_t)N * K; i++) wf[i] = -wf[i];
        be->matmul_infer(y2, x, &w, T);
        bad = 0;
        for (size_t i = 0; i < (size_t)T * N; i++) bad += y2[i] != -y[i];
        snprintf(nm, sizeof nm, "matmul_infer %dx%dx%d: a rewritten weight is repacked", T, N, K);
        CHECK(nm, bad == 0);
        llm_cpu_weight_release(&w);
        CHECK("llm_cpu_weight_release frees the packed copy", w.cpu_pack == NULL);
        free(x), free(wf), free(y), free(y2);
    }
}

/* Attention of one item against the double reference: causal, GQA, keys over two spans. */
static double att_ref_diff(const llm_attn_item *it, int nh, int nkv, int hd) {
    int qd = nh * hd, kvd = nkv * hd;
    double worst = 0;
    for (int t = 0; t < it->T; t++)
        for (int h = 0; h < nh; h++) {
            int n = it->pos[t] + 1, kvh = h / (nh / nkv);
            double *sc = malloc(sizeof(double) * n), mx = -INFINITY, sum = 0;
            for (int p = 0, s = 0, j = 0; p < n; p++, j++) {
                while (j >= it->spans[s].len) s++, j = 0;
                const float *k = (const float *)it->spans[s].k + (size_t)j * kvd + kvh * hd;
                double d = 0;
                for (int e = 0; e < hd; e++) d += (double)((const float *)it->q)[(size_t)t * qd + h * hd + e] * k[e];
                sc[p] = d / sqrt((double)hd);
                if (sc[p] > mx) mx = sc[p];
            }
            for (int p = 0; p < n; p++) sum += (sc[p] = exp(sc[p] - mx));
            for (int e = 0; e < hd; e++) {
                double o = 0;
                for (int p = 0, s = 0, j = 0; p < n; p++, j++) {
                    while (j >= it->spans[s].len) s++, j = 0;
                    o += sc[p] / sum * ((const float *)it->spans[s].v)[(size_t)j * kvd + kvh * hd + e];
                }
                double g = ((float *)it->out)[(size_t)t * qd + h * hd + e];
                if (fabs(g - o) > worst) worst = fabs(g - o);
            }
            free(sc);
        }
    return worst;
}

static void test_attention(const llm_backend *be) {
    int nh = 6, nkv = 2, hd = 40, qd = nh * hd, kvd = nkv * hd, P = 50; /* hd 40: partial column panels */
    int Ts[3] = {1, 3, 27};
    float *pk = rnd((size_t)P * kvd), *pv = rnd((size_t)P * kvd);
    llm_attn_item items[3];
    llm_kv_span spans[3][2];
    float *own_k[3], *own_v[3], *q[3], *out[3], *alone = NULL;
    int *pos[3];
    for (int i = 0; i < 3; i++) {
        int T = Ts[i];
        own_k[i] = rnd((size_t)T * kvd), own_v[i] = rnd((size_t)T * kvd), q[i] = rnd((size_t)T * qd);
        for (size_t e = 0; e < (size_t)T * qd; e++) q[i][e] *= 4; /* peaked softmax rows too */
        out[i] = calloc((size_t)T * qd, sizeof(float));
        pos[i] = malloc(sizeof(int) * T);
        for (int t = 0; t < T; t++) pos[i][t] = P + t;
        spans[i][0] = (llm_kv_span){pk, pv, P};
        spans[i][1] = (llm_kv_span){own_k[i], own_v[i], T};
        items[i] = (llm_attn_item){out[i], q[i], T, pos[i], spans[i], 2};
    }
    be->set_threads(2);
    be->attention(items, 3, nh, nkv, hd);
    double worst = 0;
    for (int i = 0; i < 3; i++) {
        double d = att_ref_diff(&items[i], nh, nkv, hd);
        if (d > worst) worst = d;
    }
    CHECK("attention (causal, GQA, two spans, T 1, 3, 27): within 1e-5 of the double reference", worst < 1e-5);
    alone = malloc(sizeof(float) * (size_t)Ts[2] * qd);
    memcpy(alone, out[2], sizeof(float) * (size_t)Ts[2] * qd);
    memset(out[2], 0, sizeof(float) * (size_t)Ts[2] * qd);
    be->set_threads(1);
    be->attention(&items[2], 1, nh, nkv, hd);
    CHECK("attention: an item's rows do not depend on the batch or threads", !llm_gemm_fast() ||
          memcmp(alone, out[2], sizeof(float) * (size_t)Ts[2] * qd) == 0);
    for (int i = 0; i < 3; i++) free(own_k[i]), free(own_v[i]), free(q[i]), free(out[i]), free(pos[i]);
    free(pk), free(pv), free(alone);
}

static void test_swiglu(const llm_backend *be) {
    size_t n = 1000;
    float *g = rnd(n), *u = rnd(n), *ref = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) g[i] *= 30;
    for (size_t i = 0; i < n; i++) ref[i] = g[i] / (1.0f + vexpf(-g[i])) * u[i];
    be->swiglu(g, u, n);
    CHECK("swiglu: g / (1 + vexpf(-g)) u (bit for bit)", memcmp(g, ref, sizeof(float) * n) == 0);
    free(g), free(u), free(ref);
}

int main(void) {
    const llm_backend *be = llm_backend_cpu();
    printf("# AVX-512 kernels: %s\n", llm_gemm_fast() ? "yes" : "no (portable code)");
    test_packs();
    test_tile();
    test_softmax();
    test_matmul(be);
    test_attention(be);
    test_swiglu(be);
    return 0;
}
