/* attention_gemm.cu - training attention (backend.h's attention_train / attention_backward)
 * through cuBLAS's strided batched products on the tensor cores: the default path for
 * training; ITREK_CUDA_ATTN=warp selects the warp-per-row kernels of attention.cu instead
 * (they stay the path of the decode step and the KV cache).
 *
 * Why: the first run on an H100 (2026-11-27, docs/gpu.md) found the warp kernels, which do
 * every product on the CUDA cores, taking 55% of a LLaMA-7B-shape LoRA step at about
 * 5 TFLOP/s, while the int8 weight products ran at 577 TFLOP/s through cuBLAS. Here each
 * sequence's scores are a matrix: per sequence of length L and per member r of a query-head
 * group (query head h = kvh * g + r, g = n_heads / n_kv_heads), batched over the kv heads:
 *
 *   forward   S (L,L) = Q_h K^T                  bf16 operands, fp32 result (cuBLAS)
 *             P = softmax(scale S), causal       fp32 arithmetic, P rounded to bf16, lse fp32
 *             O_h = P V                          fp32 accumulation, bf16 result (cuBLAS)
 *   backward  S again, P = exp(scale S - lse)    (recomputed from the forward's lse)
 *             dV += P^T dO_h                     fp32 accumulation over the group (scratch)
 *             dP = dO_h V^T                      fp32
 *             dS = scale P (dP - D)              D = rowsum(dO * O) (attention.cu's att_dot_k)
 *             dQ_h = dS K, dK += dS^T Q_h        bf16 result; fp32 accumulation for dK
 *
 * The masked half of S is computed and thrown away (twice the causal FLOPs): the tensor
 * cores make that cheap, and the products stay plain cuBLAS calls. Rounding: P and dS are
 * rounded to bf16 once before their product (as flash attention does); everything else is
 * fp32 until the store. Scores take nkv * L * L * 4 bytes per batch (128 MiB for 32 heads
 * at L = 1024); the kv heads are processed in chunks that keep each buffer under
 * ATT_SCORE_BYTES. Nothing here uses atomics: results do not depend on scheduling. */
#include <math.h>
#include <stdlib.h>

#include "llm/cuda/cuda_common.cuh"

#define ATT_SCORE_BYTES ((size_t)256 << 20)
#define ATT_THREADS 256

/* block-wide reductions over ATT_THREADS threads (red: ATT_THREADS / 32 floats of shared memory) */
__device__ __forceinline__ float block_max(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) red[w] = v;
    __syncthreads();
    float m = red[0];
    for (int i = 1; i < ATT_THREADS / 32; i++) m = fmaxf(m, red[i]);
    return m;
}
__device__ __forceinline__ float block_sum(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __syncthreads();
    if (lane == 0) red[w] = v;
    __syncthreads();
    float s = 0;
    for (int i = 0; i < ATT_THREADS / 32; i++) s += red[i];
    return s;
}

/* One block per (row i, batch b): S (hc, L, ld) fp32 -> P (hc, L, ld) bf16 with zeros past the
 * diagonal, and lse of query head h = (kv0 + b) * g + r at lse[(off + i) * nh + h]. With
 * `given`, lse is read instead (the backward's recomputation). */
__global__ void att_softmax_k(act_t *P, const float *S, float *lse, int L, int lds, int off, int nh, int g, int r,
                              int kv0, float scale, int given) {
    __shared__ float red[ATT_THREADS / 32];
    int i = blockIdx.x, b = blockIdx.y;
    size_t base = ((size_t)b * L + i) * lds;
    const float *s = S + base;
    act_t *p = P + base;
    float *l = lse + (size_t)(off + i) * nh + (size_t)(kv0 + b) * g + r;
    float m;
    if (given) m = *l;
    else {
        float mx = -INFINITY;
        for (int j = threadIdx.x; j <= i; j += ATT_THREADS) mx = fmaxf(mx, scale * s[j]);
        mx = block_max(mx, red);
        float sum = 0;
        for (int j = threadIdx.x; j <= i; j += ATT_THREADS) sum += expf(scale * s[j] - mx);
        sum = block_sum(sum, red);
        m = mx + logf(sum);
        if (threadIdx.x == 0) *l = m;
    }
    for (int j = threadIdx.x; j < L; j += ATT_THREADS) st(p + j, j <= i ? expf(scale * s[j] - m) : 0.0f);
}

/* dS = scale P (dP - D) in place of P (bf16), zero past the diagonal; D of row i, head h at
 * D[(off + i) * nh + h] */
__global__ void att_dscore_k(act_t *P, const float *dP, const float *D, int L, int lds, int off, int nh, int g, int r,
                             int kv0, float scale) {
    int i = blockIdx.x, b = blockIdx.y;
    size_t base = ((size_t)b * L + i) * lds;
    float d = D[(size_t)(off + i) * nh + (size_t)(kv0 + b) * g + r];
    for (int j = threadIdx.x; j < L; j += ATT_THREADS)
        st(P + base + j, j <= i ? scale * ld(P[base + j]) * (dP[base + j] - d) : 0.0f);
}

/* C = A op B for a batch: cuBLAS column-major conventions (see the callers' comments) */
static void gemm_sb(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A, int lda,
                    long long sa, const void *B, int ldb, long long sb, float beta, void *C, int c_f32, int ldc,
                    long long sc, int batch) {
    const float one = 1.0f;
    CUBLAS_CHECK(cu_gemm_strided_batched(ta, tb, m, n, k, &one, A, CUDA_R_16BF, lda, sa, B, CUDA_R_16BF, ldb, sb,
                                         &beta, C, c_f32 ? CUDA_R_32F : CUDA_R_16BF, ldc, sc, batch));
}

typedef struct {
    int L, ld, hc;  /* sequence length, leading dimension of score rows (L rounded up to 8), kv heads per chunk */
    float *S;       /* (hc, L, ld) fp32: scores, then dP */
    act_t *P;       /* (hc, L, ld) bf16: probabilities, then dS */
} att_scores;

static att_scores scores_for(int L, int nkv) {
    att_scores a;
    a.L = L, a.ld = (L + 7) & ~7;
    size_t per = (size_t)L * a.ld * sizeof(float);
    a.hc = (int)(ATT_SCORE_BYTES / per);
    if (a.hc < 1) a.hc = 1;
    if (a.hc > nkv) a.hc = nkv;
    a.S = (float *)cu_scratch(CU_S_ATT_S, per * a.hc);
    a.P = (act_t *)cu_scratch(CU_S_ATT_P, (size_t)L * a.ld * sizeof(act_t) * a.hc);
    return a;
}

/* S^T in column-major terms: row-major S (L,ld)[i][j] = q_i . k_j is column-major (j, i):
 * S_cm = K_cm^T Q_cm with K_cm = k (hd x L, ld kvd) and Q_cm = q (hd x L, ld qd). The same
 * form gives dP = dO V^T (q -> dO, k -> V). */
static void scores(const att_scores *a, const act_t *q, int qd, const act_t *k, int kvd, int hd, int g, int hc) {
    gemm_sb(CUBLAS_OP_T, CUBLAS_OP_N, a->L, a->L, hd, k, kvd, hd, q, qd, (long long)g * hd, 0.0f, a->S, 1, a->ld,
            (long long)a->L * a->ld, hc);
}

void cu_attention_train_gemm(const llm_train_attn *t) {
    int nh = t->n_heads, nkv = t->n_kv_heads, hd = t->head_dim, g = nh / nkv;
    int qd = nh * hd, kvd = nkv * hd;
    float scale = 1.0f / sqrtf((float)hd);
    for (int s = 0; s < t->n_seq; s++) {
        int L = t->len[s], off = t->off[s];
        if (L <= 0) continue;
        att_scores a = scores_for(L, nkv);
        for (int kv0 = 0; kv0 < nkv; kv0 += a.hc) {
            int hc = nkv - kv0 < a.hc ? nkv - kv0 : a.hc;
            for (int r = 0; r < g; r++) {
                int h0 = kv0 * g + r; /* first query head of this batch */
                const act_t *q = (const act_t *)t->q + (size_t)off * qd + (size_t)h0 * hd;
                const act_t *k = (const act_t *)t->k + (size_t)off * kvd + (size_t)kv0 * hd;
                const act_t *v = (const act_t *)t->v + (size_t)off * kvd + (size_t)kv0 * hd;
                act_t *o = (act_t *)t->out + (size_t)off * qd + (size_t)h0 * hd;
                scores(&a, q, qd, k, kvd, hd, g, hc);
                att_softmax_k<<<dim3((unsigned)L, (unsigned)hc), ATT_THREADS, 0, cu_stream()>>>(
                    a.P, a.S, t->lse, L, a.ld, off, nh, g, r, kv0, scale, 0);
                CUDA_LAUNCH_CHECK();
                /* O_cm (hd x L, ld qd) = V_cm (hd x L, ld kvd) P_cm^T... P row-major (L,ld)[i][j] is
                 * column-major (j,i) = P^T: O^T = V^T P^T = V_cm P_buf_cm, no transposes */
                gemm_sb(CUBLAS_OP_N, CUBLAS_OP_N, hd, L, L, v, kvd, hd, a.P, a.ld, (long long)L * a.ld, 0.0f, o, 0, qd,
                        (long long)g * hd, hc);
            }
        }
    }
}

void cu_attention_backward_gemm(const llm_train_attn *t) {
    int nh = t->n_heads, nkv = t->n_kv_heads, hd = t->head_dim, g = nh / nkv;
    int qd = nh * hd, kvd = nkv * hd, rows = 0;
    float scale = 1.0f / sqrtf((float)hd);
    for (int s = 0; s < t->n_seq; s++) rows += t->len[s];
    if (rows == 0) return;
    float *D = (float *)cu_scratch(CU_S_D, (size_t)rows * nh * sizeof(float));
    cu_att_rowdot(D, (const act_t *)t->dout, (const act_t *)t->out, rows, nh, hd);
    for (int s = 0; s < t->n_seq; s++) {
        int L = t->len[s], off = t->off[s];
        if (L <= 0) continue;
        att_scores a = scores_for(L, nkv);
        /* dK, dV of this sequence accumulate over the group in fp32: (L, kvd) each */
        float *dk32 = (float *)cu_scratch(CU_S_FA, (size_t)L * kvd * sizeof(float) * 2), *dv32 = dk32 + (size_t)L * kvd;
        for (int kv0 = 0; kv0 < nkv; kv0 += a.hc) {
            int hc = nkv - kv0 < a.hc ? nkv - kv0 : a.hc;
            const act_t *k = (const act_t *)t->k + (size_t)off * kvd + (size_t)kv0 * hd;
            const act_t *v = (const act_t *)t->v + (size_t)off * kvd + (size_t)kv0 * hd;
            float *dk = dk32 + (size_t)kv0 * hd, *dv = dv32 + (size_t)kv0 * hd;
            for (int r = 0; r < g; r++) {
                int h0 = kv0 * g + r;
                float beta = r > 0 ? 1.0f : 0.0f;
                const act_t *q = (const act_t *)t->q + (size_t)off * qd + (size_t)h0 * hd;
                const act_t *dout = (const act_t *)t->dout + (size_t)off * qd + (size_t)h0 * hd;
                act_t *dq = (act_t *)t->dq + (size_t)off * qd + (size_t)h0 * hd;
                dim3 grid((unsigned)L, (unsigned)hc);
                scores(&a, q, qd, k, kvd, hd, g, hc);
                att_softmax_k<<<grid, ATT_THREADS, 0, cu_stream()>>>(a.P, a.S, t->lse, L, a.ld, off, nh, g, r, kv0,
                                                                     scale, 1);
                CUDA_LAUNCH_CHECK();
                /* dV^T (hd x L) [d][j] = sum_i dO^T[d][i] P[i][j]: A = dO_cm (hd x L, ld qd); B(i,j) = P[i][j],
                 * which is the transpose of P's buffer read column-major */
                gemm_sb(CUBLAS_OP_N, CUBLAS_OP_T, hd, L, L, dout, qd, (long long)g * hd, a.P, a.ld,
                        (long long)L * a.ld, beta, dv, 1, kvd, hd, hc);
                /* dP = dO V^T: the scores' form with q -> dO, k -> V */
                scores(&a, dout, qd, v, kvd, hd, g, hc);
                att_dscore_k<<<grid, ATT_THREADS, 0, cu_stream()>>>(a.P, a.S, D, L, a.ld, off, nh, g, r, kv0, scale);
                CUDA_LAUNCH_CHECK();
                /* dQ^T (hd x L) [d][i] = sum_j K^T[d][j] dS[i][j]: B(j,i) = dS[i][j] = dS's buffer as is */
                gemm_sb(CUBLAS_OP_N, CUBLAS_OP_N, hd, L, L, k, kvd, hd, a.P, a.ld, (long long)L * a.ld, 0.0f, dq, 0,
                        qd, (long long)g * hd, hc);
                /* dK^T (hd x L) [d][j] = sum_i Q^T[d][i] dS[i][j]: as dV with Q for dO */
                gemm_sb(CUBLAS_OP_N, CUBLAS_OP_T, hd, L, L, q, qd, (long long)g * hd, a.P, a.ld, (long long)L * a.ld,
                        beta, dk, 1, kvd, hd, hc);
            }
        }
        cu_f32_to_bf16((act_t *)t->dk + (size_t)off * kvd, dk32, (size_t)L * kvd);
        cu_f32_to_bf16((act_t *)t->dv + (size_t)off * kvd, dv32, (size_t)L * kvd);
    }
}
