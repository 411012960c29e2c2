/* backend_dnnl.h - the "cpu-bf16" backend (backend_dnnl.c): the CPU backend with its matrix
 * products (matmul, matmul_dx, the large gemm calls) and the products inside attention done
 * by oneDNN in bf16 with fp32 accumulation and fp32 outputs. Everything else (activations in
 * memory, norms, softmax, loss, LoRA masters, gradients, AdamW) is the CPU backend's fp32
 * code. docs/llm.md, "Precision". */
#ifndef ITREK_LLM_BACKEND_DNNL_H
#define ITREK_LLM_BACKEND_DNNL_H

#include <stddef.h>

#include "llm/backend.h"

/* llm_backend_cpu_bf16 (declared in backend.h) returns the backend, or NULL with a one-line
 * reason when oneDNN has no bf16 matrix product on this CPU (it needs AVX-512: oneDNN 2.6
 * refuses bf16 on AVX2-only CPUs). */

/* NULL where the CPU multiplies bf16 in hardware (avx512_bf16 or AMX); else a one-line warning
 * that oneDNN emulates bf16 with AVX-512 instructions, slower than fp32 OpenBLAS. */
const char *llm_dnnl_isa_note(void);

/* Frozen weights are converted to bf16 once, at their first product, and kept in w->dev.
 * Full-parameter training rewrites the weights after every update: it turns the cache off
 * (0), and every product then converts its weight again. On by default. */
void llm_dnnl_set_weight_cache(int on);

/* Counters since the start of the process (for tests and reports). */
typedef struct {
    long products;     /* matmul / matmul_dx / gemm calls that ran in bf16 on oneDNN */
    long attention;    /* attention calls (training forward, backward, prefill) in bf16 */
    long fp32;         /* calls passed to the CPU backend's fp32 code (gemm with a side < 64) */
    long fallbacks;    /* row blocks or sequences oneDNN had no primitive for (run in fp32; 0) */
    long conversions;  /* weight conversions to bf16 (one per weight and direction when cached) */
    long primitives;   /* oneDNN matmul primitives created */
    double round_s;    /* seconds rounding activations (product inputs) to bf16 */
    double weight_s;   /* seconds converting weights to bf16 */
    double product_s;  /* seconds in oneDNN's matmul primitives */
} llm_dnnl_stats;
void llm_dnnl_get_stats(llm_dnnl_stats *s);

#endif
