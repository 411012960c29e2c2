/* backend_cuda.cu - the CUDA backend: device memory (a stream-ordered pool), cuBLAS for the
 * products, the kernels of kernels.cu and attention.cu behind backend.h's function pointers.
 *
 * Activations (backend.h's llm_act: norm outputs, products, attention, SwiGLU, the KV cache
 * and their gradients) are bf16 (act_bytes 2); the residual stream, logits, norm weights,
 * LoRA A/B, gradients and optimiser state are fp32. Products:
 *   - int8 weights, T <= 8 rows (decode): a GEMV kernel that reads each int8 row once and the
 *     bf16 activations, fp32 sums;
 *   - int8 weights, more rows: the weight is dequantised (q * scale, rounded to bf16) into a
 *     scratch buffer and cublasGemmEx multiplies it with the bf16 activations as they are on
 *     the tensor cores, fp32 accumulation, output bf16 (activations) or fp32 (logits);
 *   - fp32 weights (lm_head, small models): the bf16 operands are widened into fp32 scratch
 *     (exact) and cublasSgemm computes in fp32; a bf16 result is rounded once;
 *   - LoRA products (gemm_act: fp32 A/B against activations): the same widening, cublasSgemm.
 * One stream, created by the backend (cudaStreamNonBlocking; a graph cannot be captured from
 * the legacy default stream): every launch, cuBLAS call (cublasSetStream), copy and memset
 * (the Async forms), allocation and free (cudaMallocAsync / cudaFreeAsync) goes to it, so
 * every call is ordered after the previous one; download and sync wait for it
 * (cudaStreamSynchronize). cuBLAS gets a fixed workspace (cublasSetWorkspace) so that it
 * never allocates, which a capture would forbid.
 *
 * Graphs (backend.h's graph_begin / graph_end / graph_launch, used by model.c's decode step
 * when ITREK_CUDA_GRAPHS=1): stream capture of the calls in between. Nothing may be
 * allocated while capturing; a scratch slot that would have to grow (cu_scratch) makes the
 * capture fail instead (graph_end returns NULL, the slot is grown then, and the caller runs
 * the step itself). Every reallocation of a scratch slot bumps a generation; a graph
 * recorded under an older one is refused by graph_launch (its pointers may be stale).
 *
 * Host-to-device copies up to CU_STAGE_MAX bytes (token ids, positions, attention
 * descriptors, LoRA A/B, norms) go through a ring of pinned staging buffers (cu_h2d): the
 * host data is copied into a pinned slot and cudaMemcpyAsync returns at once, where a
 * cudaMemcpy from pageable memory first waits for the stream to drain. A decode step so has
 * one synchronisation (the logits download) instead of one per layer (the attention's
 * descriptor upload). ITREK_CUDA_SYNC_UPLOAD=1 in the environment keeps every upload a
 * plain synchronous cudaMemcpy (the comparison path of tests/gpu/run.sh). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/backend_cuda.h"
#include "llm/cuda/cuda_common.cuh"

static struct {
    int ready;
    cublasHandle_t blas;
    cudaMemPool_t pool;
    cudaStream_t stream; /* every call of the backend (non-blocking: capturable) */
    void *blas_ws;       /* cuBLAS workspace, fixed (cublasSetWorkspace) */
    void *scratch[CU_N_SCRATCH];
    size_t scratch_cap[CU_N_SCRATCH];
    unsigned long scratch_gen; /* bumped by every scratch reallocation (graph_launch checks it) */
    int capturing;             /* between graph_begin and graph_end */
    int capture_failed;        /* a scratch slot should have grown during the capture */
    size_t scratch_want[CU_N_SCRATCH]; /* the sizes it should have grown to */
    int sync_upload; /* ITREK_CUDA_SYNC_UPLOAD=1: no staging ring */
    int attn_warp;   /* ITREK_CUDA_ATTN=warp: training attention by attention.cu's warp kernels */
} cu;

/* cuBLAS workspace: 32 MiB, what NVIDIA recommends for Hopper (4 MiB elsewhere). */
#define CU_BLAS_WS ((size_t)32 << 20)

/* The staging ring: slot i is reused only after the copy that last read it has completed
 * (its event), so the host never overwrites data a pending copy still reads. */
#define CU_NSTAGE 8
#define CU_STAGE_MAX ((size_t)1 << 20)
static struct {
    char *h[CU_NSTAGE]; /* pinned host memory (cudaMallocHost) */
    size_t cap[CU_NSTAGE];
    cudaEvent_t ev[CU_NSTAGE]; /* recorded after the copy out of slot i */
    int next;
} stage;

cublasHandle_t cu_blas(void) { return cu.blas; }
int cu_attn_gemm(void) { return !cu.attn_warp; }

cudaStream_t cu_stream(void) { return cu.stream; }

/* ---------------------------------------------------------------- cuBLAS, opened at run time */

static struct {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetWorkspace_v2) set_workspace;
    decltype(&cublasSgemm_v2) sgemm;
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    decltype(&cublasGetStatusString) status;
    cublasStatus_t (*gemm_sb)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, long long, const void *, cudaDataType, int, long long,
                              const void *, void *, cudaDataType, int, long long, int, cublasComputeType_t,
                              cublasGemmAlgo_t);
} blas;

const char *cu_blas_status(cublasStatus_t s) { return blas.status ? blas.status(s) : "cuBLAS not loaded"; }

cublasStatus_t cu_gemm_strided_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                       const float *alpha, const void *A, cudaDataType at, int lda, long long sa,
                                       const void *B, cudaDataType bt, int ldb, long long sb, const float *beta,
                                       void *C, cudaDataType ct, int ldc, long long sc, int batch) {
    return blas.gemm_sb(cu.blas, ta, tb, m, n, k, alpha, A, at, lda, sa, B, bt, ldb, sb, beta, C, ct, ldc, sc, batch,
                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

static int blas_open(char *err, size_t errlen) {
    if (blas.gemm_ex) return 0;
    static const char *const names[] = {"libcublas.so.13", "libcublas.so.12", "libcublas.so",
                                        "/usr/local/cuda/lib64/libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof *names && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "cannot load cuBLAS (%s)", dlerror());
        return -1;
    }
#define SYM(field, name)                                                                    \
    if (!(*(void **)&blas.field = dlsym(h, name))) {                                        \
        snprintf(err, errlen, "cuBLAS has no %s", name);                                  \
        return -1;                                                                          \
    }
    SYM(create, "cublasCreate_v2");
    SYM(set_stream, "cublasSetStream_v2");
    SYM(set_workspace, "cublasSetWorkspace_v2");
    SYM(sgemm, "cublasSgemm_v2");
    SYM(status, "cublasGetStatusString");
    SYM(gemm_sb, "cublasGemmStridedBatchedEx");
    SYM(gemm_ex, "cublasGemmEx");
#undef SYM
    return 0;
}

/* ---------------------------------------------------------------- memory */

static void *cu_alloc(size_t n) {
    void *p = NULL;
    if (cu.capturing) die("%s:%d: allocation while capturing a CUDA graph", __FILE__, __LINE__);
    CUDA_CHECK(cudaMallocAsync(&p, n ? n : 1, cu.stream));
    return p;
}

static void cu_free(void *p) {
    if (p && cu.capturing) die("%s:%d: free while capturing a CUDA graph", __FILE__, __LINE__);
    if (p) CUDA_CHECK(cudaFreeAsync(p, cu.stream));
}

void *cu_scratch(int slot, size_t bytes) {
    if (bytes > cu.scratch_cap[slot] && cu.capturing) {
        /* No allocation inside a capture: fail it (nothing recorded runs, so the too small
         * buffer returned here is never touched) and grow the slot in graph_end. */
        cu.capture_failed = 1;
        if (bytes > cu.scratch_want[slot]) cu.scratch_want[slot] = bytes;
        return cu.scratch[slot];
    }
    if (bytes > cu.scratch_cap[slot]) {
        cu.scratch_gen++;
        cu_free(cu.scratch[slot]);
        size_t cap = bytes + bytes / 4;
        cu.scratch[slot] = cu_alloc(cap);
        cu.scratch_cap[slot] = cap;
    }
    return cu.scratch[slot];
}

/* Host-to-device copy, ordered on the stream like a kernel; returns as soon as src may be
 * reused (staged copies do not wait for the device). Larger copies (weights) stay
 * synchronous cudaMemcpy. */
void cu_h2d(void *dst, const void *src, size_t n) {
    if (!n) return;
    if (cu.capturing) die("%s:%d: upload while capturing a CUDA graph", __FILE__, __LINE__);
    if (n > CU_STAGE_MAX || cu.sync_upload) { /* as the cudaMemcpy it replaces: returns when done */
        CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, cu.stream));
        CUDA_CHECK(cudaStreamSynchronize(cu.stream));
        return;
    }
    int i = stage.next;
    stage.next = (i + 1) % CU_NSTAGE;
    CUDA_CHECK(cudaEventSynchronize(stage.ev[i])); /* the last copy out of slot i is done (never recorded: at once) */
    if (n > stage.cap[i]) {
        if (stage.h[i]) CUDA_CHECK(cudaFreeHost(stage.h[i]));
        stage.h[i] = NULL, stage.cap[i] = 0;
        size_t cap = n < ((size_t)64 << 10) ? ((size_t)64 << 10) : CU_STAGE_MAX;
        CUDA_CHECK(cudaMallocHost((void **)&stage.h[i], cap));
        stage.cap[i] = cap;
    }
    memcpy(stage.h[i], src, n);
    CUDA_CHECK(cudaMemcpyAsync(dst, stage.h[i], n, cudaMemcpyHostToDevice, cu.stream));
    CUDA_CHECK(cudaEventRecord(stage.ev[i], cu.stream));
}

static void cu_upload(void *dst, const void *src, size_t n) { cu_h2d(dst, src, n); }
static void cu_download(void *dst, const void *src, size_t n) {
    if (!n) return;
    if (cu.capturing) die("%s:%d: download while capturing a CUDA graph", __FILE__, __LINE__);
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, cu.stream));
    CUDA_CHECK(cudaStreamSynchronize(cu.stream)); /* the data is on the host when this returns */
}
static void cu_copy(void *dst, const void *src, size_t n) {
    if (n && dst != src) CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, cu.stream));
}
static void cu_zero(void *p, size_t n) {
    if (n) CUDA_CHECK(cudaMemsetAsync(p, 0, n, cu.stream));
}
static void cu_sync(void) {
    if (cu.capturing) die("%s:%d: sync while capturing a CUDA graph", __FILE__, __LINE__);
    CUDA_CHECK(cudaStreamSynchronize(cu.stream));
}
static void cu_set_threads(int n) { (void)n; }

/* ---------------------------------------------------------------- products */

static const float ONE = 1.0f, ZERO = 0.0f;

/* An fp32 copy of n bf16 activations in scratch slot `slot` (exact: every bf16 is an fp32). */
static float *widen(int slot, const void *src, size_t n) {
    float *d = (float *)cu_scratch(slot, n * sizeof(float));
    cu_bf16_to_f32(d, (const __nv_bfloat16 *)src, n);
    return d;
}

/* Elements spanned by a row-major (rows, cols) matrix with leading dimension ld. */
static size_t extent(int rows, int cols, int ld) {
    return rows > 0 && cols > 0 ? (size_t)(rows - 1) * (size_t)ld + (size_t)cols : 0;
}

/* Row-major y (T,N) = x (T,K) W^T: column-major y^T (N,T) = W (K,N)^T x^T (K,T). x bf16; y bf16
 * (y_f32 0: an activation) or fp32 (y_f32 1: logits). */
static void cu_mm(void *y, int y_f32, const void *x, const llm_weight *w, int T) {
    int N = w->rows, K = w->cols;
    if (T <= 0 || N <= 0) return;
    if (w->f) { /* fp32 weight: fp32 product of the widened activations */
        float *xf = widen(CU_S_FA, x, (size_t)T * K);
        float *yf = y_f32 ? (float *)y : (float *)cu_scratch(CU_S_FC, (size_t)T * N * sizeof(float));
        CUBLAS_CHECK(blas.sgemm(cu.blas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &ONE, w->f, K, xf, K, &ZERO, yf, N));
        if (!y_f32) cu_f32_to_bf16((__nv_bfloat16 *)y, yf, (size_t)T * N);
        return;
    }
    if (T <= 8) {
        cu_gemv_int8(y, y_f32, (const __nv_bfloat16 *)x, w->q, w->scale, T, N, K);
        return;
    }
    __nv_bfloat16 *wb = (__nv_bfloat16 *)cu_scratch(CU_S_WB, (size_t)N * K * 2);
    cu_dequant_bf16(wb, w->q, w->scale, N, K);
    CUBLAS_CHECK(blas.gemm_ex(cu.blas, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &ONE, wb, CUDA_R_16BF, K, x, CUDA_R_16BF, K,
                              &ZERO, y, y_f32 ? CUDA_R_32F : CUDA_R_16BF, N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
static void cu_matmul(void *y, const void *x, const llm_weight *w, int T) { cu_mm(y, 0, x, w, T); }
static void cu_matmul_f32(float *y, const void *x, const llm_weight *w, int T) { cu_mm(y, 1, x, w, T); }

/* Row-major dx (T,K) (+)= dy (T,N) W (N,K): column-major dx^T (K,T) = W^T (K,N) dy^T (N,T).
 * Activations: bf16 dy and dx. */
static void cu_matmul_dx(void *dx, const void *dy, const llm_weight *w, int T, int accumulate) {
    int N = w->rows, K = w->cols;
    if (T <= 0 || K <= 0) return;
    const float *beta = accumulate ? &ONE : &ZERO;
    if (w->f) { /* fp32 weight: fp32 product of the widened operands, rounded once */
        float *dyf = widen(CU_S_FA, dy, (size_t)T * N);
        float *dxf = accumulate ? widen(CU_S_FC, dx, (size_t)T * K)
                                : (float *)cu_scratch(CU_S_FC, (size_t)T * K * sizeof(float));
        CUBLAS_CHECK(blas.sgemm(cu.blas, CUBLAS_OP_N, CUBLAS_OP_N, K, T, N, &ONE, w->f, K, dyf, N, beta, dxf, K));
        cu_f32_to_bf16((__nv_bfloat16 *)dx, dxf, (size_t)T * K);
        return;
    }
    __nv_bfloat16 *wb = (__nv_bfloat16 *)cu_scratch(CU_S_WB, (size_t)N * K * 2);
    cu_dequant_bf16(wb, w->q, w->scale, N, K);
    CUBLAS_CHECK(blas.gemm_ex(cu.blas, CUBLAS_OP_N, CUBLAS_OP_N, K, T, N, &ONE, wb, CUDA_R_16BF, K, dy, CUDA_R_16BF, N,
                              beta, dx, CUDA_R_16BF, K, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* matmul_dx on fp32 dy and dx (the classifier's backward from fp32 dlogits). */
static void cu_matmul_dx_f32(float *dx, const float *dy, const llm_weight *w, int T, int accumulate) {
    int N = w->rows, K = w->cols;
    if (T <= 0 || K <= 0) return;
    const float *beta = accumulate ? &ONE : &ZERO;
    if (w->f) {
        CUBLAS_CHECK(blas.sgemm(cu.blas, CUBLAS_OP_N, CUBLAS_OP_N, K, T, N, &ONE, w->f, K, dy, N, beta, dx, K));
        return;
    }
    __nv_bfloat16 *yb = (__nv_bfloat16 *)cu_scratch(CU_S_XB, (size_t)T * N * 2);
    __nv_bfloat16 *wb = (__nv_bfloat16 *)cu_scratch(CU_S_WB, (size_t)N * K * 2);
    cu_f32_to_bf16(yb, dy, (size_t)T * N);
    cu_dequant_bf16(wb, w->q, w->scale, N, K);
    CUBLAS_CHECK(blas.gemm_ex(cu.blas, CUBLAS_OP_N, CUBLAS_OP_N, K, T, N, &ONE, wb, CUDA_R_16BF, K, yb, CUDA_R_16BF, N,
                              beta, dx, CUDA_R_32F, K, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* Row-major C (M,N) = alpha op(A) op(B) + beta C as column-major C^T = op(B)^T op(A)^T. */
static void cu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                    float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        cu_scale_rows(C, M, N, ldc, beta);
        return;
    }
    CUBLAS_CHECK(blas.sgemm(cu.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N, M, K, &alpha, B,
                             ldb, A, lda, &beta, C, ldc));
}

/* cu_gemm where the operands flagged in act are bf16 activations: each is widened into its own
 * fp32 scratch (A: FA, B: FB, C: FC), the product is cu_gemm's fp32 one, and a bf16 C is
 * rounded back once. C is widened even with beta 0, so that elements between its rows
 * (ldc > N) come back unchanged (bf16 -> fp32 -> bf16 is exact); cuBLAS does not read C when
 * beta is 0. */
static void cu_gemm_act(int act, int ta, int tb, int M, int N, int K, float alpha, const void *A, int lda,
                        const void *B, int ldb, float beta, void *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    const float *Af = (const float *)A, *Bf = (const float *)B;
    if (K > 0 && (act & LLM_ACT_A)) Af = widen(CU_S_FA, A, extent(ta ? K : M, ta ? M : K, lda)); // op(A) (M,K)
    if (K > 0 && (act & LLM_ACT_B)) Bf = widen(CU_S_FB, B, extent(tb ? N : K, tb ? K : N, ldb)); // op(B) (K,N)
    float *Cf = (float *)C;
    size_t nc = extent(M, N, ldc);
    if (act & LLM_ACT_C) Cf = widen(CU_S_FC, C, nc);
    cu_gemm(ta, tb, M, N, K, alpha, Af, lda, Bf, ldb, beta, Cf, ldc);
    if (act & LLM_ACT_C) cu_f32_to_bf16((__nv_bfloat16 *)C, Cf, nc);
}

/* ---------------------------------------------------------------- graphs */

typedef struct {
    cudaGraphExec_t exec;
    unsigned long gen; /* cu.scratch_gen when captured */
} cu_graph;

static void cu_graph_begin(void) {
    if (cu.capturing) die("%s:%d: graph capture already open", __FILE__, __LINE__);
    /* ThreadLocal: a call this thread must not make while capturing (a synchronous copy, an
     * allocation outside the pool, a wait) fails at once instead of being recorded wrong. */
    CUDA_CHECK(cudaStreamBeginCapture(cu.stream, cudaStreamCaptureModeThreadLocal));
    cu.capturing = 1;
    cu.capture_failed = 0;
    for (int i = 0; i < CU_N_SCRATCH; i++) cu.scratch_want[i] = 0;
}

static void *cu_graph_end(void) {
    if (!cu.capturing) die("%s:%d: graph_end without graph_begin", __FILE__, __LINE__);
    cudaGraph_t g = NULL;
    CUDA_CHECK(cudaStreamEndCapture(cu.stream, &g));
    cu.capturing = 0;
    if (cu.capture_failed) { /* grow what the capture needed; the caller runs the step itself */
        CUDA_CHECK(cudaGraphDestroy(g));
        for (int i = 0; i < CU_N_SCRATCH; i++)
            if (cu.scratch_want[i]) cu_scratch(i, cu.scratch_want[i]);
        return NULL;
    }
    cu_graph *h = (cu_graph *)malloc(sizeof *h);
    if (!h) die("out of memory");
    CUDA_CHECK(cudaGraphInstantiate(&h->exec, g, 0));
    CUDA_CHECK(cudaGraphDestroy(g)); /* the executable graph is independent of it */
    h->gen = cu.scratch_gen;
    return h;
}

static int cu_graph_launch(void *p) {
    cu_graph *h = (cu_graph *)p;
    if (cu.capturing) die("%s:%d: graph launch while capturing", __FILE__, __LINE__);
    if (h->gen != cu.scratch_gen) return -1; /* a recorded scratch pointer may have been freed */
    CUDA_CHECK(cudaGraphLaunch(h->exec, cu.stream));
    return 0;
}

static void cu_graph_free(void *p) {
    cu_graph *h = (cu_graph *)p;
    if (!h) return;
    CUDA_CHECK(cudaGraphExecDestroy(h->exec)); /* one still running is freed when it completes */
    free(h);
}

/* ---------------------------------------------------------------- the backend */

static const llm_backend cuda_backend = {
    .name = "cuda",
    .set_threads = cu_set_threads,
    .alloc = cu_alloc,
    .free = cu_free,
    .embed = cu_embed,
    .matmul = cu_matmul,
    .rmsnorm = cu_rmsnorm,
    .rope = cu_rope,
    .attention = cu_attention,
    .swiglu = cu_swiglu,
    .add = cu_add,
    .gemm = cu_gemm,
    .matmul_dx = cu_matmul_dx,
    .rmsnorm_backward = cu_rmsnorm_backward,
    .swiglu_backward = cu_swiglu_backward,
    .attention_train = cu_attention_train,
    .attention_backward = cu_attention_backward,
    .device = 1,
    .upload = cu_upload,
    .download = cu_download,
    .copy = cu_copy,
    .zero = cu_zero,
    .sync = cu_sync,
    .xent = cu_xent,
    .dropout = cu_dropout,
    .randomize = cu_randomize,
    .act_bytes = 2, /* bf16 activations */
    .matmul_f32 = cu_matmul_f32,
    .matmul_dx_f32 = cu_matmul_dx_f32,
    .gemm_act = cu_gemm_act,
    .add_act = cu_add_act,
    .f32_to_act = cu_f32_to_act,
    .graph_begin = cu_graph_begin,
    .graph_end = cu_graph_end,
    .graph_launch = cu_graph_launch,
    .graph_free = cu_graph_free,
    .kv_append = cu_kv_append,
    .attn_pack = cu_attn_pack,
    .attention_packed = cu_attention_packed,
};

/* Initialise once; 0, or -1 with a reason (no device, no driver). Errors from here are
 * reported, not fatal: they decide whether --device cuda can run at all. */
static int cu_init(char *err, size_t errlen) {
    if (cu.ready) return 0;
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        snprintf(err, errlen, "no usable CUDA device (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
        return -1;
    }
    if ((e = cudaSetDevice(0)) != cudaSuccess) {
        snprintf(err, errlen, "cannot use CUDA device 0 (%s)", cudaGetErrorString(e));
        return -1;
    }
    int pools = 0;
    if ((e = cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, 0)) != cudaSuccess || !pools) {
        snprintf(err, errlen, "CUDA device 0 has no stream-ordered memory pools");
        return -1;
    }
    if (blas_open(err, errlen) != 0) return -1;
    cublasStatus_t s = blas.create(&cu.blas);
    if (s != CUBLAS_STATUS_SUCCESS) {
        snprintf(err, errlen, "cuBLAS initialisation failed (%s)", cu_blas_status(s));
        return -1;
    }
    CUDA_CHECK(cudaStreamCreateWithFlags(&cu.stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(blas.set_stream(cu.blas, cu.stream));
    /* A fixed workspace, set after the stream (cublasSetStream resets it to the default
     * one): cuBLAS then never allocates during a call, which a graph capture forbids. */
    CUDA_CHECK(cudaMalloc(&cu.blas_ws, CU_BLAS_WS));
    CUBLAS_CHECK(blas.set_workspace(cu.blas, cu.blas_ws, CU_BLAS_WS));
    CUDA_CHECK(cudaDeviceGetDefaultMemPool(&cu.pool, 0));
    uint64_t keep = UINT64_MAX; /* keep freed memory in the pool: no trips to the driver */
    CUDA_CHECK(cudaMemPoolSetAttribute(cu.pool, cudaMemPoolAttrReleaseThreshold, &keep));
    for (int i = 0; i < CU_NSTAGE; i++) CUDA_CHECK(cudaEventCreateWithFlags(&stage.ev[i], cudaEventDisableTiming));
    const char *su = getenv("ITREK_CUDA_SYNC_UPLOAD");
    cu.sync_upload = su && su[0] && strcmp(su, "0") != 0;
    const char *at = getenv("ITREK_CUDA_ATTN");
    if (at && at[0] && strcmp(at, "warp") != 0 && strcmp(at, "gemm") != 0) {
        snprintf(err, errlen, "ITREK_CUDA_ATTN: expected warp or gemm, not '%s'", at);
        return -1;
    }
    cu.attn_warp = at && strcmp(at, "warp") == 0;
    cu.ready = 1;
    return 0;
}

extern "C" const llm_backend *llm_backend_cuda(char *err, size_t errlen) {
    return cu_init(err, errlen) == 0 ? &cuda_backend : NULL;
}

extern "C" int llm_cuda_mem_stats(size_t *in_use, size_t *peak, size_t *dev_free, size_t *dev_total) {
    char e[256];
    if (cu_init(e, sizeof e) != 0) return -1;
    uint64_t used = 0, high = 0;
    CUDA_CHECK(cudaMemPoolGetAttribute(cu.pool, cudaMemPoolAttrUsedMemCurrent, &used));
    CUDA_CHECK(cudaMemPoolGetAttribute(cu.pool, cudaMemPoolAttrUsedMemHigh, &high));
    size_t fr = 0, tot = 0;
    CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    if (in_use) *in_use = (size_t)used;
    if (peak) *peak = (size_t)high;
    if (dev_free) *dev_free = fr;
    if (dev_total) *dev_total = tot;
    return 0;
}

extern "C" int llm_cuda_attention_path(int warp) {
    int was = cu.attn_warp;
    if (warp >= 0) cu.attn_warp = warp != 0;
    return was;
}

extern "C" void llm_cuda_reset_peak(void) {
    char e[256];
    if (cu_init(e, sizeof e) != 0) return;
    uint64_t zero = 0;
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaMemPoolSetAttribute(cu.pool, cudaMemPoolAttrUsedMemHigh, &zero));
}

extern "C" int llm_cuda_device_name(char *buf, size_t n) {
    char e[256];
    if (cu_init(e, sizeof e) != 0) {
        if (n) buf[0] = 0;
        return -1;
    }
    cudaDeviceProp p;
    CUDA_CHECK(cudaGetDeviceProperties(&p, 0));
    snprintf(buf, n, "%s, %d SMs, cc %d.%d, %.1f GiB", p.name, p.multiProcessorCount, p.major, p.minor,
             (double)p.totalGlobalMem / (1 << 30));
    return 0;
}
