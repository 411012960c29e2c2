/* quant.h - dequantisation of GGML's block-quantised tensor types (as stored in GGUF files)
 * to fp32, by the definitions of ggml-quants.c's dequantize_row_* (and the Python gguf package's
 * gguf.quants, which follows them).
 *
 * Each function reads n / QK consecutive blocks from `blocks` (any alignment; multi-byte fields
 * are little-endian) and writes n floats to `out`. n must be a multiple of the type's block size
 * (the caller checks: llm_dtype_bytes gives 0 otherwise). The arithmetic is fp32, one operation
 * at a time in GGML's order (no fused multiply-add), so the results equal ggml's scalar code
 * and gguf.quants.dequantize bit for bit.
 *
 *   type   values/block  bytes/block        type   values/block  bytes/block
 *   Q4_0        32            18            Q2_K       256            84
 *   Q4_1        32            20            Q3_K       256           110
 *   Q5_0        32            22            Q4_K       256           144
 *   Q5_1        32            24            Q5_K       256           176
 *   Q8_0        32            34            Q6_K       256           210
 */
#ifndef ITREK_LLM_QUANT_H
#define ITREK_LLM_QUANT_H

#include <stddef.h>

void llm_dequant_q4_0(const void *blocks, float *out, size_t n);
void llm_dequant_q4_1(const void *blocks, float *out, size_t n);
void llm_dequant_q5_0(const void *blocks, float *out, size_t n);
void llm_dequant_q5_1(const void *blocks, float *out, size_t n);
void llm_dequant_q8_0(const void *blocks, float *out, size_t n);
void llm_dequant_q2_k(const void *blocks, float *out, size_t n);
void llm_dequant_q3_k(const void *blocks, float *out, size_t n);
void llm_dequant_q4_k(const void *blocks, float *out, size_t n);
void llm_dequant_q5_k(const void *blocks, float *out, size_t n);
void llm_dequant_q6_k(const void *blocks, float *out, size_t n);

#endif
