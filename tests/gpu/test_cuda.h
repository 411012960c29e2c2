/* test_cuda.h - what test_cuda.c (the checks and main) and bench_cuda.c (the benchmarks) share.
 * Both are built into one program by tests/gpu/run.sh. */
#ifndef ITREK_TEST_CUDA_H
#define ITREK_TEST_CUDA_H

#include "llm/backend.h"

extern const llm_backend *G, *H; /* GPU, host (CPU) */
double now(void);                 /* seconds, monotonic */

void train_bench(int layers);
void gen_bench(int layers, int prompt, int new_tokens, const char *list, const char *graphs);
void roofline(void);

#endif
