/* backend.h - the compute interface of the LLM engine.
 *
 * The model (model.c) is written once against this struct of function pointers; a backend
 * supplies the kernels. The CPU backend (backend_cpu.c: OpenBLAS sgemm + a small thread
 * pool) is the reference and always builds; a CUDA backend implements the same struct, and
 * "cpu-bf16" (backend_dnnl.c) is the CPU backend's table with its products (and attention's)
 * in bf16 through oneDNN, activations still fp32.
 *
 * Conventions: row-major, one row per token: x (T,C) means T rows of C elements. A weight is
 * (rows = out_features, cols = in_features) as PyTorch stores nn.Linear.weight, so matmul
 * computes y = x W^T. Pointers passed to a backend are what that backend's alloc returned
 * (host memory for the CPU backend).
 *
 * Element types. Activations (llm_act: the outputs of norms, products, RoPE, attention and
 * SwiGLU, the KV cache, and their gradients in training) have be->act_bytes per element:
 * fp32 (4) on the CPU, bf16 (2) on CUDA, which computes in fp32 inside every kernel and only
 * stores bf16. Callers size and offset them with llm_act_nbytes / llm_act_at and never do
 * element arithmetic on them. Everything else is fp32 (float *): the residual stream and its
 * gradient (small per-layer updates would vanish in a bf16 sum), logits, loss, the attention's
 * log-sum-exp, norm weights, embedding, LoRA A and B, every parameter gradient and optimiser
 * state. Where act_bytes is 4 an activation is a float array, and the optional mixed-type
 * members below may be NULL: the llm_be_* helpers then call the plain member, so the CPU runs
 * exactly the code it ran before activations had a type of their own.
 * The training kernels (backward of each forward step, used by train.c) follow the forward ones.
 */
#ifndef ITREK_LLM_BACKEND_H
#define ITREK_LLM_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* An activation buffer (act_bytes per element; see above). */
typedef void *llm_act;
typedef const void *llm_cact;

/* A linear layer's weight, fp32 or int8 with one absmax scale per output row:
 * W[r][c] = q[r][c] * scale[r], scale[r] = max_c |W[r][c]| / 127. */
typedef struct {
    int rows, cols; /* (out, in) */
    float *f;       /* fp32 (rows*cols), or NULL when quantised */
    int8_t *q;      /* int8 (rows*cols), or NULL */
    float *scale;   /* (rows) with q */
    void *dev;      /* backend-private copy, NULL until a backend makes one: cpu-bf16 keeps
                     * its bf16 copies here (backend_dnnl.c; freed by its weight_release);
                     * NULL on the CPU and on CUDA (which moves f / q / scale themselves) */
    void *cpu_pack; /* the CPU backend's packed copy for matmul_infer (backend_cpu.c), NULL until
                     * its first product; apart from dev, so that a model may change backends;
                     * freed by llm_cpu_weight_release (model.c's weight_free calls it) */
} llm_weight;

/* A contiguous run of cached positions: len rows of keys and values, each kv_dim activations. */
typedef struct {
    llm_cact k, v;
    int len;
} llm_kv_span;

/* Attention for the T new tokens of one sequence: token t sits at absolute position pos[t]
 * and attends (causally) to positions 0..pos[t] of the concatenation of spans, which
 * already holds the new tokens' own keys and values. */
typedef struct {
    llm_act out;     /* (T, n_heads*head_dim) */
    llm_cact q;      /* (T, n_heads*head_dim), rotated */
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
    llm_cact q, k, v;       /* (T,n_heads*hd) rotated, (T,kvd) rotated, (T,kvd) */
    llm_act out;            /* (T,n_heads*hd) */
    float *lse;             /* (T,n_heads), fp32 */
    llm_cact dout;          /* backward: (T,n_heads*hd) */
    llm_act dq, dk, dv;     /* backward: (T,qd) (T,kvd) (T,kvd) */
} llm_train_attn;

typedef struct llm_backend {
    const char *name;
    void (*set_threads)(int n);
    void *(*alloc)(size_t bytes);
    void (*free)(void *p);
    /* x (T,C) = table[tok[t]]: the residual stream, fp32 */
    void (*embed)(float *x, const float *table, const int *tok, int T, int C);
    /* y (T,rows) = x (T,cols) W^T */
    void (*matmul)(llm_act y, llm_cact x, const llm_weight *w, int T);
    /* the same product for inference (llm_forward: the layers and the logits), free to sum in
     * another order than matmul, which training keeps; NULL: matmul (llm_be_matmul_infer).
     * The CPU's runs on AVX-512 in one fixed order per element (gemm.h). Activations fp32 only:
     * a backend with act_bytes 2 leaves it NULL. */
    void (*matmul_infer)(llm_act y, llm_cact x, const llm_weight *w, int T);
    /* y (T,C) = x / sqrt(mean(x^2) + eps) * w: the fp32 residual x into activations y */
    void (*rmsnorm)(llm_act y, const float *x, const float *w, int T, int C, float eps);
    /* rotate-half RoPE (Hugging Face layout) in place on x (T, n_heads*head_dim):
     * pairs (i, i+head_dim/2), angle pos[t] * theta^(-2i/head_dim) */
    void (*rope)(llm_act x, const int *pos, int T, int n_heads, int head_dim, float theta);
    /* softmax(q k^T / sqrt(head_dim)) v with a causal mask, grouped-query heads:
     * query head h reads kv head h / (n_heads / n_kv_heads) */
    void (*attention)(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim);
    /* g = silu(g) * u, n elements */
    void (*swiglu)(llm_act g, llm_cact u, size_t n);
    /* residual y += x, n elements (y fp32) */
    void (*add)(float *y, llm_cact x, size_t n);

    /* ---- training kernels ---- */
    /* row-major C (M,N) = alpha op(A) op(B) + beta C, op(X) = X^T when tX (BLAS sgemm); fp32 */
    void (*gemm)(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
    /* dx (T,cols) = dy (T,rows) W (fp32 or int8 W); added into dx when accumulate */
    void (*matmul_dx)(llm_act dx, llm_cact dy, const llm_weight *w, int T, int accumulate);
    /* backward of rmsnorm: dx += dL/dx (fp32, the residual's gradient); dw += dL/dw unless dw
     * is NULL; dy the gradient of the (activation) output, x the fp32 input */
    void (*rmsnorm_backward)(float *dx, float *dw, llm_cact dy, const float *x, const float *w, int T, int C,
                             float eps);
    /* backward of h = silu(g) u: dg = dh u silu'(g), du = dh silu(g) (overwritten) */
    void (*swiglu_backward)(llm_act dg, llm_act du, llm_cact dh, llm_cact g, llm_cact u, size_t n);
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
    void (*dropout)(llm_act dst, llm_cact src, size_t n, float p, uint64_t seed, uint64_t stream);
    /* Random fill for benchmarks: elem 1: int8 uniform in [-127, 127]; elem 4: fp32 uniform in
     * [-scale, scale]; elem 2: activations (act_bytes 2) uniform in [-scale, scale]; from a
     * counter-based hash of (seed, i). */
    void (*randomize)(void *p, size_t n, int elem, float scale, uint64_t seed);

    /* ---- activation type (see the top of this file) ---- */
    int act_bytes; /* bytes per activation element: 4 (fp32) or 2 (bf16) */
    /* Mixed-type members; each may be NULL where act_bytes is 4 (the llm_be_* helpers below
     * then use the plain member, the two types being the same). */
    /* matmul with an fp32 output (logits) */
    void (*matmul_f32)(float *y, llm_cact x, const llm_weight *w, int T);
    /* matmul_dx on fp32 dy and dx (the classifier's backward from fp32 dlogits) */
    void (*matmul_dx_f32)(float *dx, const float *dy, const llm_weight *w, int T, int accumulate);
    /* gemm where the operands named in `act` (LLM_ACT_A | LLM_ACT_B | LLM_ACT_C) are
     * activations and the others fp32 (LoRA products: fp32 A, B against activations);
     * fp32 accumulation */
    void (*gemm_act)(int act, int ta, int tb, int M, int N, int K, float alpha, llm_cact A, int lda, llm_cact B,
                     int ldb, float beta, llm_act C, int ldc);
    /* y += x, n activations */
    void (*add_act)(llm_act y, llm_cact x, size_t n);
    /* dst = src rounded to activations, n elements */
    void (*f32_to_act)(llm_act dst, const float *src, size_t n);

    /* ---- graphs of the decode step (model_graph.c's llm_decode_step; all NULL on the CPU, which
     * then never takes that path) ----
     * Between graph_begin and graph_end every call on the backend is recorded, not run: no
     * call in between may upload, download, allocate or wait. graph_end returns the
     * executable graph, or NULL when the capture could not be completed (a scratch buffer had
     * to grow: it has now; nothing recorded ran, so the caller issues the calls again itself). */
    void (*graph_begin)(void);
    void *(*graph_end)(void);
    /* Replay g in order with the other calls: 0, or -1 (nothing launched) when a scratch
     * buffer the graph recorded has been reallocated since: capture again. */
    int (*graph_launch)(void *g);
    void (*graph_free)(void *g);
    /* For b < B: row pos[b] - start[b] of kdst[b] (vdst[b]), a sequence's layer cache, gets
     * row b of k (v); kvd activations a row. kdst, vdst, start, pos are backend memory, so a
     * recorded call stays right while the positions advance. */
    void (*kv_append)(void *const *kdst, void *const *vdst, const int *start, const int *pos, llm_cact k, llm_cact v,
                      int B, int kvd);
    /* attention in two halves: attn_pack writes the backend's descriptor block of the items
     * into host memory dst (returns its size; dst NULL: only the size); the caller uploads it
     * to an 8-byte-aligned buffer of its own, and attention_packed launches from there (it
     * transfers nothing, so it may be recorded). n_spans, rows: the items' spans and T summed. */
    size_t (*attn_pack)(void *dst, const llm_attn_item *items, int n_items);
    void (*attention_packed)(const void *desc, int n_items, int n_spans, int rows, int n_heads, int n_kv_heads,
                             int head_dim);

    /* ---- backend-private weight copies (NULL: the backend keeps none) ----
     * Frees w->dev and sets it to NULL; whoever frees a weight's f / q / scale calls it first
     * (model.c's weight_free). cpu-bf16 keeps its bf16 copies of the frozen weights there. */
    void (*weight_release)(llm_weight *w);
} llm_backend;

enum { LLM_ACT_A = 1, LLM_ACT_B = 2, LLM_ACT_C = 4 };

/* Bytes of n activations, and the address of activation i of p. */
static inline size_t llm_act_nbytes(const llm_backend *be, size_t n) { return n * (size_t)be->act_bytes; }
static inline llm_act llm_act_at(const llm_backend *be, llm_cact p, size_t i) {
    return (char *)p + i * (size_t)be->act_bytes;
}

static inline void llm_be_matmul_f32(const llm_backend *be, float *y, llm_cact x, const llm_weight *w, int T) {
    if (be->matmul_f32) be->matmul_f32(y, x, w, T);
    else be->matmul(y, x, w, T);
}
static inline void llm_be_matmul_infer(const llm_backend *be, llm_act y, llm_cact x, const llm_weight *w, int T) {
    if (be->matmul_infer) be->matmul_infer(y, x, w, T);
    else be->matmul(y, x, w, T);
}
static inline void llm_be_matmul_dx_f32(const llm_backend *be, float *dx, const float *dy, const llm_weight *w, int T,
                                        int accumulate) {
    if (be->matmul_dx_f32) be->matmul_dx_f32(dx, dy, w, T, accumulate);
    else be->matmul_dx(dx, dy, w, T, accumulate);
}
static inline void llm_be_gemm_act(const llm_backend *be, int act, int ta, int tb, int M, int N, int K, float alpha,
                                   llm_cact A, int lda, llm_cact B, int ldb, float beta, llm_act C, int ldc) {
    if (be->gemm_act) be->gemm_act(act, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else be->gemm(ta, tb, M, N, K, alpha, (const float *)A, lda, (const float *)B, ldb, beta, (float *)C, ldc);
}
static inline void llm_be_add_act(const llm_backend *be, llm_act y, llm_cact x, size_t n) {
    if (be->add_act) be->add_act(y, x, n);
    else be->add((float *)y, x, n);
}

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
static inline void llm_be_f32_to_act(const llm_backend *be, llm_act dst, const float *src, size_t n) {
    if (be->f32_to_act) be->f32_to_act(dst, src, n);
    else llm_be_copy(be, dst, src, n * sizeof(float));
}

const llm_backend *llm_backend_cpu(void);
/* Free w->cpu_pack (no-op when NULL). */
void llm_cpu_weight_release(llm_weight *w);
/* "cpu-bf16": the CPU backend with bf16 oneDNN products (backend_dnnl.c; more in
 * backend_dnnl.h), or NULL with a one-line reason where oneDNN has no bf16 on this CPU. */
const llm_backend *llm_backend_cpu_bf16(char *err, size_t errlen);
/* The CPU backend's thread pool, for host backends built on it (backend_dnnl.c): fn(ctx, a, b)
 * over contiguous ranges of [0, n) of at least grain items, on the caller and the pool's
 * workers; run on the caller alone when work_per_item * n is small. */
void llm_cpu_parallel(size_t n, size_t grain, void (*fn)(void *ctx, size_t a, size_t b), void *ctx,
                      double work_per_item);
/* "cpu" (or NULL), "cpu-bf16" (backend_dnnl.h: the CPU with bf16 oneDNN products) or "cuda"
 * (backend_cuda.h); NULL with a one-line reason when the name is unknown or the backend cannot
 * run here (no GPU, built without CUDA, no bf16 oneDNN on this CPU). Defined in model.c. */
const llm_backend *llm_backend_named(const char *name, char *err, size_t errlen);

#endif
