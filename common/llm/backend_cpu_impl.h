/* backend_cpu_impl.h - what backend_cpu.c (the pool, inference kernels, the backend struct)
 * and backend_cpu_train.c (the training kernels) share: the thread pool, the per-thread
 * scratch buffers, OpenBLAS's thread switch, int8 dequantisation, and the training kernels
 * the backend struct points to. Internal to the CPU backend: the rest use backend.h.
 */
#ifndef ITREK_LLM_BACKEND_CPU_IMPL_H
#define ITREK_LLM_BACKEND_CPU_IMPL_H

#include <stddef.h>

#include "llm/backend.h"

/* Query rows per block of the attention kernels (prefill and training). */
#define ATT_BQ 64

typedef void (*task_fn)(void *ctx, int i);
typedef void (*range_fn)(void *ctx, size_t a, size_t b);

/* Run fn(ctx, i) for i in [0, n) on up to the set number of threads (the caller included);
 * small jobs (work below ~64K flops) stay on the caller. */
void cpu_pool_run(int n, task_fn fn, void *ctx, double work);
/* Parallel loop over [0, n) in contiguous ranges (about 4 per thread, at least grain items). */
void cpu_par_range(size_t n, size_t grain, range_fn fn, void *ctx, double work_per_item);
/* The context of the element-wise kernels and their backward passes (each uses its fields). */
typedef struct {
    float *y, *dx, *dw, *inv;
    const float *x, *w, *dy, *u, *g;
    float *g2, *du;
    int T, C, n_heads, head_dim;
    const int *pos;
    float eps, theta;
    const float *inv_freq;
} ew_ctx;

/* This thread's scratch buffer `slot` with room for n floats (contents not kept). Slots 0-2
 * are for kernels run inside tasks, 3 for the caller. */
float *cpu_scratch(int slot, size_t n);
/* 1: OpenBLAS single-threaded, for a job of sgemm calls made from the pool's tasks; 0: back. */
void cpu_blas_serial(int on);
/* Rows [r0, r0 + nr) of an int8 weight as fp32 into buf (nr, cols). */
void cpu_dequant_rows(float *buf, const llm_weight *w, int r0, int nr);
/* Rows per dequantised block: about 1 MiB of fp32. */
int cpu_dequant_block_rows(const llm_weight *w);

/* ---- backend_cpu_train.c: backend.h's training members ---- */
void cpu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);
void cpu_matmul_dx(llm_act dxv, llm_cact dyv, const llm_weight *w, int T, int accumulate);
void cpu_rmsnorm_backward(float *dx, float *dw, llm_cact dy, const float *x, const float *w, int T, int C, float eps);
void cpu_swiglu_backward(llm_act dg, llm_act du, llm_cact dh, llm_cact g, llm_cact u, size_t n);
void cpu_attention_train(const llm_train_attn *a);
void cpu_attention_backward(const llm_train_attn *a);

#endif
