/* backend_cuda_stub.c - stands in for the CUDA backend when the build had no nvcc
 * (ITREK_HAVE_CUDA undefined): every entry point reports that CUDA is not built in. */
#ifndef ITREK_HAVE_CUDA
#include <stdio.h>

#include "llm/backend_cuda.h"

const llm_backend *llm_backend_cuda(char *err, size_t errlen) {
    snprintf(err, errlen, "built without CUDA (no nvcc at build time)");
    return NULL;
}

int llm_cuda_mem_stats(size_t *in_use, size_t *peak, size_t *dev_free, size_t *dev_total) {
    (void)in_use, (void)peak, (void)dev_free, (void)dev_total;
    return -1;
}

void llm_cuda_reset_peak(void) {}

int llm_cuda_attention_path(int warp) {
    (void)warp;
    return -1;
}

int llm_cuda_device_name(char *buf, size_t n) {
    if (n) buf[0] = 0;
    return -1;
}
#else
typedef int backend_cuda_stub_unused; /* ISO C forbids an empty translation unit */
#endif
