/* gemm.h - the fp32 product kernel of the CPU backend's inference path (backend_cpu.c:
 * matmul_infer and prefill attention). Internal; tests/llm/test_gemm.c checks it.
 *
 * One micro-kernel: a tile of C, LLM_GEMM_MR rows by up to LLM_GEMM_NR columns,
 *     C[i][j] (+)= sum_k A[k][i] B[k][j]
 * with A packed (K, MR) (llm_gemm_pack_a) and B given as K rows of NR at stride ldb (packed
 * by llm_gemm_pack_bt from the rows of a (N, K) weight, or a value matrix read in place).
 *
 * Arithmetic: every element of C is one chain acc = fma(A[k][i], B[k][j], acc) over k in order,
 * starting from 0 (or from C's value when accumulating). No other order exists in the kernel,
 * so a result does not depend on the tile it falls in, on K blocking (the next block continues
 * the chain from C), on T, on the thread count or on the instruction set: the AVX-512 kernel
 * and the portable one (fmaf) give the same bits. */
#ifndef ITREK_LLM_GEMM_H
#define ITREK_LLM_GEMM_H

#include <stddef.h>

#define LLM_GEMM_MR 14 /* rows of A per tile: 28 accumulators + 2 of B + 1 broadcast = 31 zmm */
#define LLM_GEMM_NR 32 /* columns per tile: two zmm */

/* 1 when the AVX-512 kernel runs on this CPU (else the portable one, much slower: the backend
 * then keeps its OpenBLAS paths). */
int llm_gemm_fast(void);

/* C tile: rows crow[0..mr), columns [0, nc) (nc <= NR, mr <= MR) (+)= A (K, MR) B; A's rows
 * mr..MR-1 must be zero (pack_a does it). acc: add to C's values, else overwrite them. B's
 * columns nc..NR-1 are not read. */
void llm_gemm_tile(int K, const float *A, const float *B, int ldb, float *const *crow, int mr, int nc, int acc);

/* dst (K, MR) = the transpose of rows[0..mr) columns [k0, k0 + K); rows mr..MR-1 zero. */
void llm_gemm_pack_a(float *dst, const float *const *rows, int mr, int k0, int K);

/* dst (K, NR) = the transpose of rows[0..nc) columns [k0, k0 + K); columns nc..NR-1 zero. */
void llm_gemm_pack_bt(float *dst, const float *const *rows, int nc, int k0, int K);

/* Causal softmax of rows of scores in place: row i (n_pad floats at s + i * lds) becomes
 * exp(scale s - max) / sum over its first np[i] entries and 0 from there to n_pad. exp is
 * vexp.h's vexpf; the sum runs in 16 fixed partial sums (lane j takes entries j, j+16, ...)
 * added in a fixed tree, so the portable and the AVX-512 code agree bit for bit. */
void llm_softmax_causal(float *s, int lds, int rows, const int *np, int n_pad, float scale);

/* g = silu(g) u = g / (1 + vexpf(-g)) u, n elements: the CPU backend's swiglu (the
 * compiler leaves that loop scalar), the same value per element on every path. */
void llm_swiglu_f32(float *g, const float *u, size_t n);

#endif
