/* cuda_common.cuh - shared by the CUDA backend's .cu files: error checking, the launchers
 * each file provides to backend_cuda.cu, and small device helpers.
 *
 * Every CUDA runtime and cuBLAS call goes through CUDA_CHECK / CUBLAS_CHECK, and every
 * kernel launch is followed by CUDA_LAUNCH_CHECK: a failure ends the program through the
 * project's error path (io/err.h die: "prog: error: file:line: CUDA error: what", exit 1),
 * since the backend's kernels return nothing. */
#ifndef ITREK_LLM_CUDA_COMMON_CUH
#define ITREK_LLM_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "llm/backend.h"

/* io/err.h is C11 (stdnoreturn.h); declare the one function used here. */
extern "C" [[noreturn]] void die(const char *fmt, ...);

#define CUDA_CHECK(call)                                                                                         \
    do {                                                                                                         \
        cudaError_t e_ = (call);                                                                                 \
        if (e_ != cudaSuccess) die("%s:%d: CUDA error: %s (%s)", __FILE__, __LINE__, cudaGetErrorString(e_), #call); \
    } while (0)
#define CUDA_LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())
#define CUBLAS_CHECK(call)                                                                                       \
    do {                                                                                                         \
        cublasStatus_t s_ = (call);                                                                              \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                         \
            die("%s:%d: cuBLAS error: %s (%s)", __FILE__, __LINE__, cu_blas_status(s_), #call);                  \
    } while (0)

/* cuBLAS is opened with dlopen when the backend starts (backend_cuda.cu), so programs that
 * never select --device cuda do not pay for loading it (about 0.3 s at every start). */
const char *cu_blas_status(cublasStatus_t s);

/* Blocks for n items at b per block, capped (kernels use grid-stride loops). */
static inline unsigned cu_blocks(size_t n, int b) {
    size_t g = (n + (size_t)b - 1) / (size_t)b;
    if (g < 1) g = 1;
    return g > 65535u * 16u ? 65535u * 16u : (unsigned)g;
}

/* Activations (backend.h's llm_act) are bf16 on this backend (act_bytes 2); kernels load them
 * into fp32 (ld), compute in fp32 and round once on store (st: round to nearest even). */
typedef __nv_bfloat16 act_t;
__device__ __forceinline__ float ld(float v) { return v; }
__device__ __forceinline__ float ld(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ void st(float *p, float v) { *p = v; }
__device__ __forceinline__ void st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16_rn(v); }

/* Scratch buffers of the backend (grown on demand, stream-ordered): slot ids. FA, FB, FC: fp32
 * copies of bf16 operands (A, B, C) of the products that compute in fp32. */
enum { CU_S_XB, CU_S_WB, CU_S_DESC, CU_S_D, CU_S_MISC, CU_S_FA, CU_S_FB, CU_S_FC, CU_S_ATT_S, CU_S_ATT_P, CU_N_SCRATCH };
void *cu_scratch(int slot, size_t bytes);
cublasHandle_t cu_blas(void);
/* cublasGemmStridedBatchedEx (opened at run time with the rest of cuBLAS), fp32 compute */
cublasStatus_t cu_gemm_strided_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                       const float *alpha, const void *A, cudaDataType at, int lda, long long sa,
                                       const void *B, cudaDataType bt, int ldb, long long sb, const float *beta,
                                       void *C, cudaDataType ct, int ldc, long long sc, int batch);
/* Training attention through cuBLAS (attention_gemm.cu) rather than the warp kernels of
 * attention.cu: 1 unless ITREK_CUDA_ATTN=warp (or llm_cuda_attention_path(1)) */
int cu_attn_gemm(void);
/* The backend's stream (non-blocking, created at start): every launch, cuBLAS call, copy and
 * memset goes to it, since a graph can only be captured from such a stream. */
cudaStream_t cu_stream(void);
/* Host-to-device copy of n bytes, ordered on the stream; src may be reused on return (small
 * copies go through pinned staging and do not wait for the device: backend_cuda.cu). */
void cu_h2d(void *dst, const void *src, size_t n);

/* kernels.cu (void * arguments are activations: bf16) */
void cu_embed(float *x, const float *table, const int *tok, int T, int C);
void cu_rmsnorm(void *y, const float *x, const float *w, int T, int C, float eps);
void cu_rope(void *x, const int *pos, int T, int n_heads, int head_dim, float theta);
void cu_swiglu(void *g, const void *u, size_t n);
void cu_add(float *y, const void *x, size_t n);
void cu_add_act(void *y, const void *x, size_t n);
void cu_rmsnorm_backward(float *dx, float *dw, const void *dy, const float *x, const float *w, int T, int C, float eps);
void cu_swiglu_backward(void *dg, void *du, const void *dh, const void *g, const void *u, size_t n);
void cu_xent(float *lg, const int *tgt, int nr, int V, float gs, int backward, float *loss);
void cu_dropout(void *dst, const void *src, size_t n, float p, uint64_t seed, uint64_t stream);
void cu_randomize(void *p, size_t n, int elem, float scale, uint64_t seed);
void cu_f32_to_bf16(__nv_bfloat16 *dst, const float *src, size_t n);
void cu_bf16_to_f32(float *dst, const __nv_bfloat16 *src, size_t n);
void cu_f32_to_act(void *dst, const float *src, size_t n); /* backend.h's f32_to_act */
void cu_dequant_bf16(__nv_bfloat16 *dst, const int8_t *q, const float *scale, int rows, int cols);
/* y (T,N) = x (T,K) W^T, T <= 8, int8 W, bf16 x; y fp32 when y_f32, else bf16 */
void cu_gemv_int8(void *y, int y_f32, const __nv_bfloat16 *x, const int8_t *q, const float *scale, int T, int N, int K);
void cu_scale_rows(float *C, int M, int N, int ldc, float beta);
/* backend.h's kv_append (the decode step's graphs) */
void cu_kv_append(void *const *kdst, void *const *vdst, const int *start, const int *pos, const void *k, const void *v,
                  int B, int kvd);

/* attention.cu */
void cu_attention(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim);
void cu_attention_train(const llm_train_attn *a);
void cu_attention_backward(const llm_train_attn *a);
/* D[row * nh + h] = dout . out over the head's hd values (rows x nh warps) */
void cu_att_rowdot(float *D, const __nv_bfloat16 *dout, const __nv_bfloat16 *out, int rows, int nh, int hd);

/* attention_gemm.cu */
void cu_attention_train_gemm(const llm_train_attn *a);
void cu_attention_backward_gemm(const llm_train_attn *a);
size_t cu_attn_pack(void *dst, const llm_attn_item *items, int n_items);
void cu_attention_packed(const void *desc, int n_items, int n_spans, int rows, int n_heads, int n_kv_heads,
                         int head_dim);

#endif
