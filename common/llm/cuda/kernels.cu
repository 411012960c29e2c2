/* kernels.cu - the CUDA backend's element-wise and row kernels: embedding, RMSNorm (and its
 * backward), RoPE, SwiGLU (and its backward), residual add, cross-entropy, LoRA dropout,
 * AdamW, random fills, bf16 conversion / int8 dequantisation and the small-batch int8
 * product. Activations (act_t) are bf16 in memory: each kernel loads them into fp32 (ld),
 * computes in fp32 with the CPU backend's formulas (backend_cpu.c) and rounds once on store
 * (st). The residual stream, its gradient, norm weights, logits and optimiser state are fp32. */
#include "llm/cuda/cuda_common.cuh"

/* ---------------------------------------------------------------- reductions */

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it. */
__device__ float block_sum(float v) {
    __shared__ float part[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) part[wid] = v;
    __syncthreads();
    if (wid == 0) {
        float s = lane < nw ? part[lane] : 0.0f;
        s = warp_sum(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
}
__device__ float block_max(float v) {
    __shared__ float part[32];
    __shared__ float total;
    int lane = threadIdx.x & 31, wid = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) part[wid] = v;
    __syncthreads();
    if (wid == 0) {
        float s = lane < nw ? part[lane] : -INFINITY;
        s = warp_max(s);
        if (lane == 0) total = s;
    }
    __syncthreads();
    return total;
}

/* splitmix64 finaliser over (seed, stream, i): the counter-based random source. */
__device__ __forceinline__ uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
__device__ __forceinline__ uint64_t hash3(uint64_t seed, uint64_t stream, uint64_t i) {
    return mix64(seed * 0x9E3779B97F4A7C15ull ^ mix64(stream + 0x632BE59BD9B4E019ull) ^ (i * 0xD1B54A32D192ED03ull));
}

#define GRID_STRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* ---------------------------------------------------------------- forward */

__global__ void embed_k(float *x, const float *table, const int *tok, int C) {
    const float *src = table + (size_t)tok[blockIdx.x] * C;
    float *dst = x + (size_t)blockIdx.x * C;
    for (int i = threadIdx.x; i < C; i += blockDim.x) dst[i] = src[i];
}
void cu_embed(float *x, const float *table, const int *tok, int T, int C) {
    if (T <= 0) return;
    embed_k<<<T, 256, 0, cu_stream()>>>(x, table, tok, C);
    CUDA_LAUNCH_CHECK();
}

/* fp32 residual x in, bf16 activations y out */
__global__ void rmsnorm_k(act_t *y, const float *x, const float *w, int C, float eps) {
    const float *xt = x + (size_t)blockIdx.x * C;
    act_t *yt = y + (size_t)blockIdx.x * C;
    float ss = 0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) ss += xt[i] * xt[i];
    ss = block_sum(ss);
    float inv = (float)(1.0 / sqrt((double)ss / C + eps));
    for (int i = threadIdx.x; i < C; i += blockDim.x) st(&yt[i], w[i] * (xt[i] * inv));
}
void cu_rmsnorm(void *y, const float *x, const float *w, int T, int C, float eps) {
    if (T <= 0) return;
    rmsnorm_k<<<T, 256, 0, cu_stream()>>>((act_t *)y, x, w, C, eps);
    CUDA_LAUNCH_CHECK();
}

__global__ void rope_k(act_t *x, const int *pos, size_t n, int n_heads, int head_dim, float theta) {
    int half = head_dim / 2;
    GRID_STRIDE(idx, n) {
        int i = (int)(idx % (size_t)half);
        size_t th = idx / (size_t)half; /* t * n_heads + h */
        int t = (int)(th / (size_t)n_heads);
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        float ang = (float)pos[t] * inv_freq;
        double sd, cd;
        sincos((double)ang, &sd, &cd);
        float c = (float)cd, s = (float)sd;
        act_t *v = x + th * (size_t)head_dim;
        float a = ld(v[i]), b = ld(v[i + half]);
        st(&v[i], a * c - b * s);
        st(&v[i + half], b * c + a * s);
    }
}
void cu_rope(void *x, const int *pos, int T, int n_heads, int head_dim, float theta) {
    size_t n = (size_t)T * n_heads * (size_t)(head_dim / 2);
    if (n == 0) return;
    rope_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>((act_t *)x, pos, n, n_heads, head_dim, theta);
    CUDA_LAUNCH_CHECK();
}

__global__ void swiglu_k(act_t *g, const act_t *u, size_t n) {
    GRID_STRIDE(i, n) {
        float gi = ld(g[i]);
        st(&g[i], gi / (1.0f + expf(-gi)) * ld(u[i]));
    }
}
void cu_swiglu(void *g, const void *u, size_t n) {
    if (!n) return;
    swiglu_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>((act_t *)g, (const act_t *)u, n);
    CUDA_LAUNCH_CHECK();
}

/* the residual: fp32 y += bf16 x */
__global__ void add_k(float *y, const act_t *x, size_t n) {
    GRID_STRIDE(i, n) y[i] += ld(x[i]);
}
void cu_add(float *y, const void *x, size_t n) {
    if (!n) return;
    add_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(y, (const act_t *)x, n);
    CUDA_LAUNCH_CHECK();
}

/* activations: bf16 y += bf16 x, summed in fp32 and rounded once */
__global__ void add_act_k(act_t *y, const act_t *x, size_t n) {
    GRID_STRIDE(i, n) st(&y[i], ld(y[i]) + ld(x[i]));
}
void cu_add_act(void *y, const void *x, size_t n) {
    if (!n) return;
    add_act_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>((act_t *)y, (const act_t *)x, n);
    CUDA_LAUNCH_CHECK();
}

/* The decode step's KV append (graphs): for sequence b, row pos[b] - start[b] of its layer
 * cache kdst[b] / vdst[b] gets row b of k / v (kvd activations each, copied as they are).
 * The destination row is read from device memory, so a captured launch stays valid while
 * the positions advance. One block per sequence. */
__global__ void kv_append_k(act_t *const *kdst, act_t *const *vdst, const int *start, const int *pos, const act_t *k,
                            const act_t *v, int kvd) {
    int b = blockIdx.x;
    size_t row = (size_t)(pos[b] - start[b]);
    act_t *kd = kdst[b] + row * (size_t)kvd, *vd = vdst[b] + row * (size_t)kvd;
    const act_t *ks = k + (size_t)b * kvd, *vs = v + (size_t)b * kvd;
    for (int i = threadIdx.x; i < kvd; i += blockDim.x) {
        kd[i] = ks[i];
        vd[i] = vs[i];
    }
}
void cu_kv_append(void *const *kdst, void *const *vdst, const int *start, const int *pos, const void *k, const void *v,
                  int B, int kvd) {
    if (B <= 0 || kvd <= 0) return;
    kv_append_k<<<B, 256, 0, cu_stream()>>>((act_t *const *)kdst, (act_t *const *)vdst, start, pos, (const act_t *)k,
                                            (const act_t *)v, kvd);
    CUDA_LAUNCH_CHECK();
}

/* ---------------------------------------------------------------- backward */

/* fp32 dx (the residual's gradient) += from bf16 dy and the fp32 residual x */
__global__ void rmsnorm_bwd_k(float *dx, float *dw, const act_t *dy, const float *x, const float *w, int C, float eps) {
    const float *xt = x + (size_t)blockIdx.x * C;
    const act_t *gt = dy + (size_t)blockIdx.x * C;
    float *dxt = dx + (size_t)blockIdx.x * C;
    float ss = 0, dot = 0;
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        ss += xt[i] * xt[i];
        dot += w[i] * ld(gt[i]) * xt[i];
    }
    ss = block_sum(ss);
    dot = block_sum(dot);
    float inv = (float)(1.0 / sqrt((double)ss / C + eps));
    float c = (float)((double)dot * inv * inv * inv / C);
    for (int i = threadIdx.x; i < C; i += blockDim.x) {
        float gi = ld(gt[i]);
        dxt[i] += inv * w[i] * gi - c * xt[i];
        if (dw) atomicAdd(&dw[i], gi * xt[i] * inv); /* full-parameter only; order not fixed */
    }
}
void cu_rmsnorm_backward(float *dx, float *dw, const void *dy, const float *x, const float *w, int T, int C, float eps) {
    if (T <= 0) return;
    rmsnorm_bwd_k<<<T, 256, 0, cu_stream()>>>(dx, dw, (const act_t *)dy, x, w, C, eps);
    CUDA_LAUNCH_CHECK();
}

__global__ void swiglu_bwd_k(act_t *dg, act_t *du, const act_t *dh, const act_t *g, const act_t *u, size_t n) {
    GRID_STRIDE(i, n) {
        float gi = ld(g[i]), sg = 1.0f / (1.0f + expf(-gi)), si = gi * sg, d = ld(dh[i]);
        st(&du[i], d * si);
        st(&dg[i], d * ld(u[i]) * sg * (1.0f + gi * (1.0f - sg)));
    }
}
void cu_swiglu_backward(void *dg, void *du, const void *dh, const void *g, const void *u, size_t n) {
    if (!n) return;
    swiglu_bwd_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>((act_t *)dg, (act_t *)du, (const act_t *)dh, (const act_t *)g,
                                             (const act_t *)u, n);
    CUDA_LAUNCH_CHECK();
}

/* One block per row of logits. */
__global__ void xent_k(float *lg, const int *tgt, int V, float gs, int backward, float *loss) {
    float *row = lg + (size_t)blockIdx.x * V;
    int y = tgt[blockIdx.x];
    if (y < 0) {
        if (threadIdx.x == 0) loss[blockIdx.x] = 0;
        if (backward)
            for (int v = threadIdx.x; v < V; v += blockDim.x) row[v] = 0;
        return;
    }
    float mx = -INFINITY;
    for (int v = threadIdx.x; v < V; v += blockDim.x) mx = fmaxf(mx, row[v]);
    mx = block_max(mx);
    float s = 0;
    for (int v = threadIdx.x; v < V; v += blockDim.x) s += expf(row[v] - mx);
    s = block_sum(s);
    float lse = mx + logf(s), ly = row[y];
    __syncthreads(); /* every thread has read row[y] before it is overwritten */
    if (threadIdx.x == 0) loss[blockIdx.x] = lse - ly;
    if (!backward) return;
    for (int v = threadIdx.x; v < V; v += blockDim.x) row[v] = expf(row[v] - lse) * gs - (v == y ? gs : 0.0f);
}
void cu_xent(float *lg, const int *tgt, int nr, int V, float gs, int backward, float *loss) {
    if (nr <= 0) return;
    xent_k<<<nr, 512, 0, cu_stream()>>>(lg, tgt, V, gs, backward, loss);
    CUDA_LAUNCH_CHECK();
}

/* activations; dst may equal src (each element read, then written, by one thread) */
__global__ void dropout_k(act_t *dst, const act_t *src, size_t n, uint32_t thr, float sc, uint64_t seed, uint64_t stream) {
    GRID_STRIDE(i, n) st(&dst[i], (uint32_t)hash3(seed, stream, i) >= thr ? ld(src[i]) * sc : 0.0f);
}
void cu_dropout(void *dst, const void *src, size_t n, float p, uint64_t seed, uint64_t stream) {
    if (!n) return;
    uint32_t thr = (uint32_t)fmin(4294967295.0, (double)p * 4294967296.0);
    dropout_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>((act_t *)dst, (const act_t *)src, n, thr, 1.0f / (1.0f - p), seed, stream);
    CUDA_LAUNCH_CHECK();
}

__global__ void rand_i8_k(int8_t *p, size_t n, uint64_t seed) {
    GRID_STRIDE(i, n) p[i] = (int8_t)((int)(hash3(seed, 1, i) % 255u) - 127);
}
/* fp32 (T = float) or activations (T = act_t), uniform in [-scale, scale] */
template <typename T>
__global__ void rand_real_k(T *p, size_t n, float scale, uint64_t seed) {
    GRID_STRIDE(i, n) st(&p[i], scale * (2.0f * (float)((hash3(seed, 4, i) >> 40) * (1.0 / 16777216.0)) - 1.0f));
}
void cu_randomize(void *p, size_t n, int elem, float scale, uint64_t seed) {
    if (!n) return;
    if (elem == 1) rand_i8_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>((int8_t *)p, n, seed);
    else if (elem == 2) rand_real_k<act_t><<<cu_blocks(n, 256), 256, 0, cu_stream()>>>((act_t *)p, n, scale, seed);
    else rand_real_k<float><<<cu_blocks(n, 256), 256, 0, cu_stream()>>>((float *)p, n, scale, seed);
    CUDA_LAUNCH_CHECK();
}

/* ---------------------------------------------------------------- products */

__global__ void f32_to_bf16_k(__nv_bfloat16 *dst, const float *src, size_t n) {
    GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn(src[i]);
}
void cu_f32_to_bf16(__nv_bfloat16 *dst, const float *src, size_t n) {
    if (!n) return;
    f32_to_bf16_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(dst, src, n);
    CUDA_LAUNCH_CHECK();
}
void cu_f32_to_act(void *dst, const float *src, size_t n) { cu_f32_to_bf16((act_t *)dst, src, n); }

/* exact: every bf16 is an fp32 */
__global__ void bf16_to_f32_k(float *dst, const __nv_bfloat16 *src, size_t n) {
    GRID_STRIDE(i, n) dst[i] = __bfloat162float(src[i]);
}
void cu_bf16_to_f32(float *dst, const __nv_bfloat16 *src, size_t n) {
    if (!n) return;
    bf16_to_f32_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(dst, src, n);
    CUDA_LAUNCH_CHECK();
}

/* W[r][c] = q[r][c] scale[r], rounded once to bf16. */
__global__ void dequant_k(__nv_bfloat16 *dst, const int8_t *q, const float *scale, size_t n, int cols) {
    GRID_STRIDE(i, n) dst[i] = __float2bfloat16_rn((float)q[i] * scale[i / (size_t)cols]);
}
void cu_dequant_bf16(__nv_bfloat16 *dst, const int8_t *q, const float *scale, int rows, int cols) {
    size_t n = (size_t)rows * cols;
    if (!n) return;
    dequant_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(dst, q, scale, n, cols);
    CUDA_LAUNCH_CHECK();
}

/* y (T,N) = x (T,K) W^T for T <= 8, int8 W and bf16 x: one warp per output row reads that
 * row once (4 bytes per lane per step when K % 4 == 0) and dots it with the T inputs in fp32;
 * y is fp32 (TY = float: logits) or bf16 (TY = act_t), rounded once. */
#define GEMV_MAXT 8
template <typename TY>
__global__ void gemv_int8_k(TY *y, const act_t *x, const int8_t *q, const float *scale, int T, int N, int K, int vec) {
    int warp = (int)((blockIdx.x * (size_t)blockDim.x + threadIdx.x) >> 5), lane = threadIdx.x & 31;
    int nwarps = (int)((gridDim.x * (size_t)blockDim.x) >> 5);
    for (int r = warp; r < N; r += nwarps) {
        const int8_t *row = q + (size_t)r * K;
        float acc[GEMV_MAXT];
#pragma unroll
        for (int t = 0; t < GEMV_MAXT; t++) acc[t] = 0;
        if (vec) {
            const char4 *r4 = (const char4 *)row;
            for (int k4 = lane; k4 < K / 4; k4 += 32) {
                char4 c = r4[k4];
                float w0 = c.x, w1 = c.y, w2 = c.z, w3 = c.w;
#pragma unroll
                for (int t = 0; t < GEMV_MAXT; t++)
                    if (t < T) {
                        const act_t *xv = x + (size_t)t * K + 4 * (size_t)k4;
                        acc[t] += w0 * ld(xv[0]) + w1 * ld(xv[1]) + w2 * ld(xv[2]) + w3 * ld(xv[3]);
                    }
            }
        } else {
            for (int k = lane; k < K; k += 32) {
                float wk = row[k];
#pragma unroll
                for (int t = 0; t < GEMV_MAXT; t++)
                    if (t < T) acc[t] += wk * ld(x[(size_t)t * K + k]);
            }
        }
        float s = scale[r];
#pragma unroll
        for (int t = 0; t < GEMV_MAXT; t++)
            if (t < T) {
                float v = warp_sum(acc[t]);
                if (lane == 0) st(&y[(size_t)t * N + r], v * s);
            }
    }
}
void cu_gemv_int8(void *y, int y_f32, const __nv_bfloat16 *x, const int8_t *q, const float *scale, int T, int N, int K) {
    if (T <= 0 || N <= 0) return;
    if (T > GEMV_MAXT) die("%s:%d: gemv_int8 with T %d > %d", __FILE__, __LINE__, T, GEMV_MAXT);
    int threads = 256, blocks = (N + 7) / 8;
    if (blocks > 132 * 16) blocks = 132 * 16;
    int vec = (K & 3) == 0 && ((uintptr_t)q & 3) == 0; /* char4 loads of the weight rows */
    if (y_f32) gemv_int8_k<float><<<blocks, threads, 0, cu_stream()>>>((float *)y, x, q, scale, T, N, K, vec);
    else gemv_int8_k<act_t><<<blocks, threads, 0, cu_stream()>>>((act_t *)y, x, q, scale, T, N, K, vec);
    CUDA_LAUNCH_CHECK();
}

__global__ void scale_rows_k(float *C, int M, int N, int ldc, float beta) {
    size_t n = (size_t)M * N;
    GRID_STRIDE(i, n) {
        float *p = C + (i / (size_t)N) * (size_t)ldc + i % (size_t)N;
        *p = beta == 0 ? 0.0f : beta * *p;
    }
}
void cu_scale_rows(float *C, int M, int N, int ldc, float beta) {
    size_t n = (size_t)M * N;
    if (!n) return;
    scale_rows_k<<<cu_blocks(n, 256), 256, 0, cu_stream()>>>(C, M, N, ldc, beta);
    CUDA_LAUNCH_CHECK();
}
