/* backend_dnnl_impl.h - what backend_dnnl.c (the bf16 products, weight copies, set-up) and
 * backend_dnnl_att.c (the bf16 attention) share: the bf16 rounding, the scratch buffers, the
 * cache of oneDNN matmul primitives by shape, the clock and the statistics. Internal to the
 * cpu-bf16 backend: the rest use backend_dnnl.h.
 */
#ifndef ITREK_LLM_BACKEND_DNNL_IMPL_H
#define ITREK_LLM_BACKEND_DNNL_IMPL_H

#include <oneapi/dnnl/dnnl.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "io/err.h"
#include "llm/backend.h"
#include "llm/backend_dnnl.h"

typedef uint16_t bf16;

static inline double bf_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* oneDNN calls that cannot fail short of a bug or no memory: die with the call's text. */
static inline void bf_dn(dnnl_status_t s, const char *what) {
    if (s != dnnl_success) die("cpu-bf16: oneDNN %s failed (status %d)", what, (int)s);
}
#define DN(call) bf_dn((call), #call)

extern llm_dnnl_stats bf_stats;

/* fp32 -> bf16, round to nearest even (NaN stays NaN): the fastest the CPU has. */
extern void (*bf_cvt)(bf16 *d, const float *s, size_t n);

/* Scratch slots: 0, 1 the two operands of a product, 2 a dequantised weight, S_*: attention. */
enum { S_QP = 3, S_KT, S_VP, S_S, S_PB, S_O, S_KP, S_VT, S_QT, S_DOP, S_DOT, S_DP, S_DSB, S_DVT, S_DKT, S_ROWS, N_SCRATCH };
/* Slot `slot` with room for bytes (64-byte aligned; contents not kept). */
void *bf_scratch(int slot, size_t bytes);

/* ---- primitives, cached by shape ---- */

/* Kinds of cached primitive: y = x W^T, dx = dy W, the gemm, the attention's batched products. */
enum { K_FWD = 0, K_BWD = 1, K_GEMM = 2, K_BATCH = 3 };

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

/* A primitive descriptor for dst = alpha src wei + beta dst; NULL when oneDNN has none. */
dnnl_primitive_desc_t bf_matmul_pd(const dnnl_memory_desc_t *src, const dnnl_memory_desc_t *wei,
                                   const dnnl_memory_desc_t *dst, float alpha, float beta);
/* Cache the primitive of pd (NULL: none) under key k (pd is destroyed). */
pent *bf_pent_new(const pkey *k, dnnl_primitive_desc_t pd);
pent *bf_pent_find(const pkey *k); /* NULL when not cached */
/* Run a cached primitive on these buffers and wait for it. */
void bf_run(const pent *e, const void *src, const void *wei, void *dst);

/* ---- backend_dnnl_att.c: the bf16 attention members ---- */
void bf_attention(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim);
void bf_attention_train(const llm_train_attn *a);
void bf_attention_backward(const llm_train_attn *a);

#endif
