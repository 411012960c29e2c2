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
} llm_backend;

const llm_backend *llm_backend_cpu(void);

#endif
