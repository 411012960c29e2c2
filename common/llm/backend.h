/* backend.h - the compute interface of the LLM engine.
 *
 * The model (model.c) is written once against this struct of function pointers; a backend
 * supplies the kernels. The CPU backend (backend_cpu.c: OpenBLAS sgemm + a small thread
 * pool) is the reference and always builds; a CUDA backend implements the same struct.
 *
 * Conventions: every activation is fp32, row-major, one row per token: x (T,C) means T rows
 * of C floats. A weight is (rows = out_features, cols = in_features) as PyTorch stores
 * nn.Linear.weight, so matmul computes y = x W^T. Pointers passed to a backend are what
 * that backend's alloc returned (host memory for the CPU backend).
 * The training kernels (backward of each forward step, used by train.c) follow the forward ones.
 */
#ifndef ITREK_LLM_BACKEND_H
#define ITREK_LLM_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A linear layer's weight, fp32 or int8 with one absmax scale per output row:
 * W[r][c] = q[r][c] * scale[r], scale[r] = max_c |W[r][c]| / 127. */
typedef struct {
    int rows, cols; /* (out, in) */
    float *f;       /* fp32 (rows*cols), or NULL when quantised */
    int8_t *q;      /* int8 (rows*cols), or NULL */
    float *scale;   /* (rows) with q */
    void *dev;      /* backend-private copy (e.g. on a GPU); NULL on the CPU */
} llm_weight;

/* A contiguous run of cached positions: len rows of keys and values, each kv_dim floats. */
typedef struct {
    const float *k, *v;
    int len;
} llm_kv_span;

/* Attention for the T new tokens of one sequence: token t sits at absolute position pos[t]
 * and attends (causally) to positions 0..pos[t] of the concatenation of spans, which
 * already holds the new tokens' own keys and values. */
typedef struct {
    float *out;      /* (T, n_heads*head_dim) */
    const float *q;  /* (T, n_heads*head_dim), rotated */
    int T;
    const int *pos;  /* (T) */
    const llm_kv_span *spans;
    int n_spans;
} llm_attn_item;

/* Training attention over sequences packed as consecutive rows (no KV cache): sequence s
 * holds rows off[s] .. off[s]+len[s]-1 at positions 0 .. len[s]-1, causal within itself.
 * The forward writes out and lse (the log-sum-exp of each row's scaled scores, per head);
 * the backward recomputes the probabilities from lse and writes dq, dk, dv (overwritten). */
typedef struct {
    int n_seq;
    const int *off, *len;
    int n_heads, n_kv_heads, head_dim;
    const float *q, *k, *v; /* (T,n_heads*hd) rotated, (T,kvd) rotated, (T,kvd) */
    float *out;             /* (T,n_heads*hd) */
    float *lse;             /* (T,n_heads) */
    const float *dout;      /* backward: (T,n_heads*hd) */
    float *dq, *dk, *dv;    /* backward: (T,qd) (T,kvd) (T,kvd) */
} llm_train_attn;

typedef struct llm_backend {
    const char *name;
    void (*set_threads)(int n);
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    /* x (T,C) = table[tok[t]] */
    void (*embed)(float *x, const float *table, const int *tok, int T, int C);
    /* y (T,rows) = x (T,cols) W^T */
    void (*matmul)(float *y, const float *x, const llm_weight *w, int T);
    /* y (T,C) = x / sqrt(mean(x^2) + eps) * w ; y may equal x */
    void (*rmsnorm)(float *y, const float *x, const float *w, int T, int C, float eps);
    /* rotate-half RoPE (Hugging Face layout) in place on x (T, n_heads*head_dim):
     * pairs (i, i+head_dim/2), angle pos[t] * theta^(-2i/head_dim) */
    void (*rope)(float *x, const int *pos, int T, int n_heads, int head_dim, float theta);
    /* softmax(q k^T / sqrt(head_dim)) v with a causal mask, grouped-query heads:
     * query head h reads kv head h / (n_heads / n_kv_heads) */
    void (*attention)(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim);
    /* g = silu(g) * u, n floats */
    void (*swiglu)(float *g, const float *u, size_t n);
    /* y += x, n floats */
    void (*add)(float *y, const float *x, size_t n);

    /* ---- training kernels ---- */
    /* row-major C (M,N) = alpha op(A) op(B) + beta C, op(X) = X^T when tX (BLAS sgemm) */
    void (*gemm)(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
    /* dx (T,cols) = dy (T,rows) W (fp32 or int8 W); added into dx when accumulate */
    void (*matmul_dx)(float *dx, const float *dy, const llm_weight *w, int T, int accumulate);
    /* backward of rmsnorm: dx += dL/dx; dw += dL/dw unless dw is NULL */
    void (*rmsnorm_backward)(float *dx, float *dw, const float *dy, const float *x, const float *w, int T, int C,
                             float eps);
    /* backward of h = silu(g) u: dg = dh u silu'(g), du = dh silu(g) (overwritten) */
    void (*swiglu_backward)(float *dg, float *du, const float *dh, const float *g, const float *u, size_t n);
    void (*attention_train)(const llm_train_attn *a);
    void (*attention_backward)(const llm_train_attn *a);

    /* ---- device memory (a host backend leaves these 0 / NULL: the llm_be_* helpers below
     * then fall back to memcpy / memset, so host code is unchanged) ----
     * With `device` set, every buffer from alloc lives in device memory and the host never
     * dereferences it: data crosses with upload / download. Descriptor structs (llm_attn_item,
     * llm_kv_span, llm_train_attn and its off / len arrays) stay host memory; the buffers
     * they point to (q, out, pos, k, v, lse, ...) are backend memory. Calls are ordered (one
     * stream); download returns when the data is on the host. */
    int device;
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes); /* backend memory to backend memory */
    void (*zero)(void *p, size_t bytes);
    void (*sync)(void);
    /* ---- optional kernels (NULL: the caller does it on the host, as for the CPU) ---- */
    /* Cross-entropy over nr rows of logits lg (nr,V) with targets tgt (nr, -1: none):
     * loss[i] = logsumexp(lg_i) - lg_i[tgt_i] (0 without target); with backward, lg_i becomes
     * (softmax(lg_i) - onehot(tgt_i)) gs, or 0 without target. tgt, loss: backend memory. */
    void (*xent)(float *lg, const int *tgt, int nr, int V, float gs, int backward, float *loss);
    /* dst = src keep / (1 - p), keep drawn from a counter-based hash of (seed, stream, i), so
     * the same call gives the same mask (not the CPU's xoshiro masks). dst may equal src. */
    void (*dropout)(float *dst, const float *src, size_t n, float p, uint64_t seed, uint64_t stream);
    /* AdamW as optim.c: w *= decay; m, v moments; w -= step_size m / (sqrt(v) / bc2s + eps). */
    void (*adamw)(float *w, const float *g, float *m, float *v, size_t n, float decay, float b1, float b2, float eps,
                  float step_size, float bc2s);
    /* Random fill for benchmarks: elem 1: int8 uniform in [-127, 127]; elem 4: fp32 uniform in
     * [-scale, scale]; from a counter-based hash of (seed, i). */
    void (*randomize)(void *p, size_t n, int elem, float scale, uint64_t seed);
} llm_backend;

static inline void llm_be_copy(const llm_backend *be, void *dst, const void *src, size_t n) {
    if (be->copy) be->copy(dst, src, n);
    else if (n) memcpy(dst, src, n);
}
static inline void llm_be_zero(const llm_backend *be, void *p, size_t n) {
    if (be->zero) be->zero(p, n);
    else if (n) memset(p, 0, n);
}
static inline void llm_be_upload(const llm_backend *be, void *dst, const void *src, size_t n) {
    if (be->upload) be->upload(dst, src, n);
    else if (n && dst != src) memcpy(dst, src, n);
}
static inline void llm_be_download(const llm_backend *be, void *dst, const void *src, size_t n) {
    if (be->download) be->download(dst, src, n);
    else if (n && dst != src) memcpy(dst, src, n);
}

const llm_backend *llm_backend_cpu(void);
/* "cpu" (or NULL) or "cuda" (backend_cuda.h); NULL with a one-line reason when the name is
 * unknown or the backend cannot run here (no GPU, built without CUDA). Defined in model.c. */
const llm_backend *llm_backend_named(const char *name, char *err, size_t errlen);

#endif
