/* backend_cpu_train.c - the CPU backend's training kernels: the generic gemm, dx = dy W, the
 * RMSNorm and SwiGLU backward passes and the training attention (forward keeping the
 * log-sum-exp rows, backward), on OpenBLAS and the pool of backend_cpu.c. Same determinism
 * as there: every output element is computed by one thread in a fixed order, a reduction
 * across rows (RMSNorm's weight gradient) runs over the rows in order inside one task.
 * Compiled with -O3 like backend_cpu.c (Makefile).
 */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "llm/backend.h"
#include "llm/backend_cpu_impl.h"
#include "llm/vexp.h"

/* Lets the vectoriser if-convert float compares (the clamps of vexpf, softmax maxima): only
 * the floating-point exception flags may differ, never a value. As in backend_cpu.c. */
#pragma GCC optimize("no-trapping-math")

void cpu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
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
void cpu_matmul_dx(llm_act dxv, llm_cact dyv, const llm_weight *w, int T, int accumulate) {
    float *dx = dxv;
    const float *dy = dyv;
    int N = w->rows, K = w->cols;
    if (T <= 0) return;
    if (w->f) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, K, N, 1.0f, dy, N, w->f, K, accumulate ? 1.0f : 0.0f,
                    dx, K);
        return;
    }
    int rb = cpu_dequant_block_rows(w);
    float *buf = cpu_scratch(3, (size_t)rb * K);
    for (int r0 = 0; r0 < N; r0 += rb) {
        int nr = r0 + rb <= N ? rb : N - r0;
        cpu_dequant_rows(buf, w, r0, nr);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, K, nr, 1.0f, dy + r0, N, buf, K,
                    (accumulate || r0 > 0) ? 1.0f : 0.0f, dx, K);
    }
}

/* Rows [a, b): dx and each row's 1/rms (kept for the weight gradient). */
static void rmsnorm_bwd_rows(void *vctx, size_t a, size_t b) {
    const ew_ctx *c = vctx;
    int C = c->C;
    const float *w = c->w;
    for (size_t t = a; t < b; t++) {
        const float *xt = c->x + t * C, *gt = c->dy + t * C;
        float *dxt = c->dx + t * C;
        double ss = 0, dot = 0;
        for (int i = 0; i < C; i++) ss += (double)xt[i] * xt[i];
        float inv = (float)(1.0 / sqrt(ss / C + c->eps)); /* as the forward computes it */
        for (int i = 0; i < C; i++) dot += (double)w[i] * gt[i] * xt[i];
        float k = (float)(dot * (double)inv * inv * inv / C);
        for (int i = 0; i < C; i++) dxt[i] += inv * w[i] * gt[i] - k * xt[i];
        c->inv[t] = inv;
    }
}

/* Columns [a, b) of dw, summed over the rows in order (the serial loop's order). */
static void rmsnorm_bwd_cols(void *vctx, size_t a, size_t b) {
    const ew_ctx *c = vctx;
    size_t C = (size_t)c->C;
    float *restrict dw = c->dw;
    for (int t = 0; t < c->T; t++) {
        const float *restrict xt = c->x + t * C, *restrict gt = c->dy + t * C;
        float inv = c->inv[t];
        for (size_t i = a; i < b; i++) dw[i] += gt[i] * xt[i] * inv;
    }
}

void cpu_rmsnorm_backward(float *dx, float *dw, llm_cact dy, const float *x, const float *w, int T, int C,
                          float eps) {
    if (T <= 0) return;
    ew_ctx c = {.dx = dx, .dw = dw, .dy = dy, .x = x, .w = w, .T = T, .C = C, .eps = eps,
                .inv = cpu_scratch(3, (size_t)T)};
    cpu_par_range((size_t)T, 4, rmsnorm_bwd_rows, &c, 8.0 * C);
    if (dw) cpu_par_range((size_t)C, 32, rmsnorm_bwd_cols, &c, 3.0 * T);
}

static void swiglu_bwd_range(void *vctx, size_t a, size_t b) {
    const ew_ctx *c = vctx;
    float *restrict dg = c->g2, *restrict du = c->du;
    const float *dh = c->dy, *g = c->g, *u = c->u;
    for (size_t i = a; i < b; i++) {
        float sg = 1.0f / (1.0f + vexpf(-g[i])), si = g[i] * sg;
        du[i] = dh[i] * si;
        dg[i] = dh[i] * u[i] * sg * (1.0f + g[i] * (1.0f - sg));
    }
}

void cpu_swiglu_backward(llm_act dg, llm_act du, llm_cact dh, llm_cact g, llm_cact u, size_t n) {
    ew_ctx c = {.g2 = dg, .du = du, .dy = dh, .g = g, .u = u};
    cpu_par_range(n, 4096, swiglu_bwd_range, &c, 25.0);
}

/* ---- training attention: one task per (sequence, head) forward, per (sequence, kv head)
 * backward (the kv head's dk, dv sum over its query heads in order); each task walks blocks of
 * ATT_BQ query rows against the keys 0..(last row of the block), single-threaded sgemm. ---- */

typedef struct {
    const llm_train_attn *a;
    int *seq, *head;
} tatt_ctx;

/* Tasks (s, h) for h < nh, longest sequences first (better balance on the pool). */
static int tatt_tasks(const llm_train_attn *a, int nh, tatt_ctx *c, double *work) {
    int n = 0;
    c->seq = xmalloc((size_t)(a->n_seq * nh + 1) * sizeof(int));
    c->head = xmalloc((size_t)(a->n_seq * nh + 1) * sizeof(int));
    *work = 0;
    for (int s = 0; s < a->n_seq; s++)
        if (a->len[s] > 0)
            for (int h = 0; h < nh; h++) {
                int k = n++;
                while (k > 0 && a->len[c->seq[k - 1]] < a->len[s]) { /* stable insertion by length */
                    c->seq[k] = c->seq[k - 1], c->head[k] = c->head[k - 1];
                    k--;
                }
                c->seq[k] = s, c->head[k] = h;
                *work += 2.0 * a->len[s] * a->len[s] * a->head_dim;
            }
    return n;
}

static void tatt_fwd_task(void *vctx, int task) {
    const tatt_ctx *c = vctx;
    const llm_train_attn *a = c->a;
    int s = c->seq[task], h = c->head[task], L = a->len[s], hd = a->head_dim, nh = a->n_heads;
    int qd = nh * hd, kvd = a->n_kv_heads * hd, kvh = h / (nh / a->n_kv_heads);
    size_t o = (size_t)a->off[s];
    const float *Q = (const float *)a->q + o * qd + (size_t)h * hd, *K = (const float *)a->k + o * kvd + (size_t)kvh * hd,
                *V = (const float *)a->v + o * kvd + (size_t)kvh * hd;
    float *O = (float *)a->out + o * qd + (size_t)h * hd, scale = 1.0f / sqrtf((float)hd);
    float *S = cpu_scratch(0, (size_t)ATT_BQ * L);
    for (int i0 = 0; i0 < L; i0 += ATT_BQ) {
        int i1 = i0 + ATT_BQ < L ? i0 + ATT_BQ : L, nb = i1 - i0;
        // S (nb,i1) = scale Q[i0:i1] K[0:i1]^T
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, i1, hd, scale, Q + (size_t)i0 * qd, qd, K, kvd, 0.0f,
                    S, i1);
        for (int r = 0; r < nb; r++) {
            int i = i0 + r;
            float *row = S + (size_t)r * i1, mx = -INFINITY, sum = 0;
            for (int j = 0; j <= i; j++) if (row[j] > mx) mx = row[j];
            for (int j = 0; j <= i; j++) row[j] = vexpf(row[j] - mx);
            for (int j = 0; j <= i; j++) sum += row[j];
            float inv = 1.0f / sum;
            for (int j = 0; j <= i; j++) row[j] *= inv;
            for (int j = i + 1; j < i1; j++) row[j] = 0;
            a->lse[(o + (size_t)i) * nh + h] = mx + logf(sum);
        }
        // O[i0:i1] (nb,hd) = P V[0:i1]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, hd, i1, 1.0f, S, i1, V, kvd, 0.0f,
                    O + (size_t)i0 * qd, qd);
    }
}

void cpu_attention_train(const llm_train_attn *a) {
    tatt_ctx c = {a, NULL, NULL};
    double work;
    int n = tatt_tasks(a, a->n_heads, &c, &work);
    cpu_blas_serial(1);
    cpu_pool_run(n, tatt_fwd_task, &c, work);
    cpu_blas_serial(0);
    free(c.seq);
    free(c.head);
}

static void tatt_bwd_task(void *vctx, int task) {
    const tatt_ctx *c = vctx;
    const llm_train_attn *a = c->a;
    int s = c->seq[task], kvh = c->head[task], L = a->len[s], hd = a->head_dim, nh = a->n_heads;
    int qd = nh * hd, kvd = a->n_kv_heads * hd, rep = nh / a->n_kv_heads;
    size_t o = (size_t)a->off[s];
    float scale = 1.0f / sqrtf((float)hd);
    const float *Kh = (const float *)a->k + o * kvd + (size_t)kvh * hd, *Vh = (const float *)a->v + o * kvd + (size_t)kvh * hd;
    float *dK = (float *)a->dk + o * kvd + (size_t)kvh * hd, *dV = (float *)a->dv + o * kvd + (size_t)kvh * hd;
    float *P = cpu_scratch(0, (size_t)ATT_BQ * L), *dP = cpu_scratch(1, (size_t)ATT_BQ * L), D[ATT_BQ];
    for (int i = 0; i < L; i++) { /* zero this sequence's dk, dv rows of the kv head */
        memset(dK + (size_t)i * kvd, 0, (size_t)hd * sizeof(float));
        memset(dV + (size_t)i * kvd, 0, (size_t)hd * sizeof(float));
    }
    for (int h = kvh * rep; h < (kvh + 1) * rep; h++) {
        const float *Qh = (const float *)a->q + o * qd + (size_t)h * hd, *dO = (const float *)a->dout + o * qd + (size_t)h * hd,
                    *Oh = (const float *)a->out + o * qd + (size_t)h * hd;
        float *dQ = (float *)a->dq + o * qd + (size_t)h * hd;
        for (int i0 = 0; i0 < L; i0 += ATT_BQ) {
            int i1 = i0 + ATT_BQ < L ? i0 + ATT_BQ : L, nb = i1 - i0;
            const float *Qb = Qh + (size_t)i0 * qd, *dOb = dO + (size_t)i0 * qd;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, i1, hd, scale, Qb, qd, Kh, kvd, 0.0f, P, i1);
            for (int r = 0; r < nb; r++) { /* P = exp(S - lse), causal; D = rowsum(dO O) */
                int i = i0 + r;
                float *row = P + (size_t)r * i1, l = a->lse[(o + (size_t)i) * nh + h];
                for (int j = 0; j <= i; j++) row[j] = vexpf(row[j] - l);
                for (int j = i + 1; j < i1; j++) row[j] = 0;
                const float *x = dOb + (size_t)r * qd, *y = Oh + (size_t)i * qd;
                float d = 0;
                for (int e = 0; e < hd; e++) d += x[e] * y[e];
                D[r] = d;
            }
            // dV[0:i1] (i1,hd) += P^T dO[i0:i1]
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, hd, nb, 1.0f, P, i1, dOb, qd, 1.0f, dV, kvd);
            // dP (nb,i1) = dO[i0:i1] V[0:i1]^T
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, i1, hd, 1.0f, dOb, qd, Vh, kvd, 0.0f, dP, i1);
            for (int r = 0; r < nb; r++) { /* dS = P (dP - D) */
                int i = i0 + r;
                float *pr = P + (size_t)r * i1, *dr = dP + (size_t)r * i1, di = D[r];
                for (int j = 0; j <= i; j++) dr[j] = pr[j] * (dr[j] - di);
                for (int j = i + 1; j < i1; j++) dr[j] = 0;
            }
            // dQ[i0:i1] = scale dS K[0:i1] ; dK[0:i1] += scale dS^T Q[i0:i1]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, hd, i1, scale, dP, i1, Kh, kvd, 0.0f,
                        dQ + (size_t)i0 * qd, qd);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, i1, hd, nb, scale, dP, i1, Qb, qd, 1.0f, dK, kvd);
        }
    }
}

void cpu_attention_backward(const llm_train_attn *a) {
    tatt_ctx c = {a, NULL, NULL};
    double work;
    int n = tatt_tasks(a, a->n_kv_heads, &c, &work);
    cpu_blas_serial(1);
    cpu_pool_run(n, tatt_bwd_task, &c, work * 2.0 * a->n_heads / a->n_kv_heads);
    cpu_blas_serial(0);
    free(c.seq);
    free(c.head);
}
