/* backend_cuda.h - the CUDA backend (common/llm/cuda/ (.cu files)): the backend.h interface on one
 * NVIDIA GPU (CUDA runtime + cuBLAS + own kernels). A C header: no CUDA type appears here,
 * so C code (model.c, tests) may include it; no stage includes it (they pass --device to
 * llm_load_opts).
 *
 * Built when nvcc exists (the Makefile then defines ITREK_HAVE_CUDA); otherwise
 * backend_cuda_stub.c defines the functions below and llm_backend_cuda says so. */
#ifndef ITREK_LLM_BACKEND_CUDA_H
#define ITREK_LLM_BACKEND_CUDA_H

#include <stddef.h>

#include "llm/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CUDA backend on device 0, initialised on the first call (cuBLAS handle, memory pool);
 * NULL with a one-line reason when there is no usable GPU or driver, or when the program was
 * built without nvcc ("built without CUDA"). */
const llm_backend *llm_backend_cuda(char *err, size_t errlen);

/* Memory of the CUDA backend's pool (every alloc and scratch buffer): bytes in use now, the
 * high-water mark since the last reset, and cudaMemGetInfo's free and total. -1 without CUDA. */
int llm_cuda_mem_stats(size_t *in_use, size_t *peak, size_t *dev_free, size_t *dev_total);
void llm_cuda_reset_peak(void);
/* Training attention's path: 1 for the warp-per-row kernels (attention.cu), 0 for cuBLAS's
 * batched products (attention_gemm.cu, the default; ITREK_CUDA_ATTN=warp|gemm at start).
 * Sets it when warp >= 0; returns the previous one (-1 without CUDA). For tests. */
int llm_cuda_attention_path(int warp);
/* "NVIDIA H100 80GB HBM3, 132 SMs, cc 9.0" into buf; -1 without CUDA. */
int llm_cuda_device_name(char *buf, size_t n);

#ifdef __cplusplus
}
#endif

#endif
