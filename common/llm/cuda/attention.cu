/* attention.cu - causal attention on the GPU, grouped-query heads. q, k, v, out and the
 * gradients dout, dq, dk, dv are bf16 activations (act_t), loaded into fp32; scores, softmax,
 * the log-sum-exp and every accumulation are fp32, each result rounded once on store.
 *
 * One warp per (query row, head): the query is held in registers (lane l owns dimensions
 * l, l+32, ...), keys are visited in order with an online softmax (running max and sum), so
 * no score matrix is ever stored: the same kernel serves decode steps over the KV cache (the
 * spans of llm_attn_item, ancestors first) and the packed sequences of training, where it
 * also writes the log-sum-exp of each row. The backward recomputes probabilities from the
 * log-sum-exp: one kernel for dq (warp per query row), one for dk and dv (warp per key row
 * and kv head, looping over the query heads that share it), so nothing is accumulated with
 * atomics and the results do not depend on scheduling.
 *
 * Descriptor structs arrive in host memory (backend.h); they are packed into one block and
 * uploaded with the call through the pinned staging ring (cu_h2d: no wait for the device;
 * the device buffer CU_S_DESC is reused by the next call in stream order). The decode step's
 * graphs (model.c) instead pack the block once (cu_attn_pack), keep it in a device buffer of
 * their own and launch from it (cu_attention_packed), since a captured launch may not upload.
 * head_dim <= 256. */
#include <stdlib.h>
#include <string.h>

#include "llm/cuda/cuda_common.cuh"

typedef struct {
    act_t *out;
    const act_t *q;
    const int *pos; /* NULL: position = row within the item (training) */
    int T, row0, span0, nspan;
} att_item;

typedef struct {
    const act_t *k, *v;
    int len, pad;
} att_span;

__device__ __forceinline__ float wsum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Forward: out = softmax(scale q K^T) V over positions 0..pos; lse optional. */
template <int J>
__global__ void att_fwd_k(const att_item *items, const att_span *spans, const int *row_item, int rows, int nh, int nkv,
                          int hd, float scale, float *lse) {
    size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= (size_t)rows * nh) return;
    int g = (int)(warp / nh), h = (int)(warp % nh);
    att_item it = items[row_item[g]];
    int t = g - it.row0, last = it.pos ? it.pos[t] : t;
    int kvd = nkv * hd, kvh = h / (nh / nkv);
    const act_t *q = it.q + ((size_t)t * nh + h) * hd;
    float qr[J], acc[J];
#pragma unroll
    for (int j = 0; j < J; j++) {
        int e = lane + 32 * j;
        qr[j] = e < hd ? ld(q[e]) : 0.0f;
        acc[j] = 0;
    }
    float m = -INFINITY, l = 0;
    int p = 0;
    for (int s = 0; s < it.nspan && p <= last; s++) {
        att_span sp = spans[it.span0 + s];
        for (int jj = 0; jj < sp.len && p <= last; jj++, p++) {
            const act_t *k = sp.k + (size_t)jj * kvd + (size_t)kvh * hd, *v = sp.v + (size_t)jj * kvd + (size_t)kvh * hd;
            float d = 0;
#pragma unroll
            for (int j = 0; j < J; j++) {
                int e = lane + 32 * j;
                if (e < hd) d += qr[j] * ld(k[e]);
            }
            float sc = wsum(d) * scale, mn = fmaxf(m, sc);
            float corr = expf(m - mn), pe = expf(sc - mn);
            l = l * corr + pe;
#pragma unroll
            for (int j = 0; j < J; j++) {
                int e = lane + 32 * j;
                acc[j] = acc[j] * corr + (e < hd ? pe * ld(v[e]) : 0.0f);
            }
            m = mn;
        }
    }
    act_t *out = it.out + ((size_t)t * nh + h) * hd;
    float inv = 1.0f / l;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int e = lane + 32 * j;
        if (e < hd) st(&out[e], acc[j] * inv);
    }
    if (lse && lane == 0) lse[(size_t)g * nh + h] = m + logf(l);
}

/* D[g,h] = dout . out (per row and head) */
__global__ void att_dot_k(float *D, const act_t *dout, const act_t *out, int rows, int nh, int hd) {
    size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= (size_t)rows * nh) return;
    const act_t *a = dout + warp * hd, *b = out + warp * hd;
    float d = 0;
    for (int e = lane; e < hd; e += 32) d += ld(a[e]) * ld(b[e]);
    d = wsum(d);
    if (lane == 0) D[warp] = d;
}

/* dq for query row g, head h: sum over keys j <= t of ds_j k_j scale,
 * ds_j = p_j (dout . v_j - D), p_j = exp(scale q . k_j - lse). */
template <int J>
__global__ void att_dq_k(const att_item *items, const int *row_item, int rows, int nh, int nkv, int hd, float scale,
                         const act_t *k, const act_t *v, const act_t *dout, const float *lse, const float *D, act_t *dq) {
    size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= (size_t)rows * nh) return;
    int g = (int)(warp / nh), h = (int)(warp % nh);
    att_item it = items[row_item[g]];
    int t = g - it.row0, kvd = nkv * hd, kvh = h / (nh / nkv), qd = nh * hd;
    const act_t *q = it.q + ((size_t)t * nh + h) * hd, *dO = dout + (size_t)g * qd + (size_t)h * hd;
    float qr[J], dor[J], acc[J];
#pragma unroll
    for (int j = 0; j < J; j++) {
        int e = lane + 32 * j;
        qr[j] = e < hd ? ld(q[e]) : 0.0f;
        dor[j] = e < hd ? ld(dO[e]) : 0.0f;
        acc[j] = 0;
    }
    float L = lse[(size_t)g * nh + h], Dg = D[(size_t)g * nh + h];
    size_t base = (size_t)it.row0; /* the sequence's first row: keys are rows base .. base + t */
    for (int j2 = 0; j2 <= t; j2++) {
        const act_t *kr = k + (base + j2) * kvd + (size_t)kvh * hd, *vr = v + (base + j2) * kvd + (size_t)kvh * hd;
        float kf[J], d1 = 0, d2 = 0;
#pragma unroll
        for (int j = 0; j < J; j++) {
            int e = lane + 32 * j;
            kf[j] = e < hd ? ld(kr[e]) : 0.0f;
            if (e < hd) { d1 += qr[j] * kf[j]; d2 += dor[j] * ld(vr[e]); }
        }
        d1 = wsum(d1), d2 = wsum(d2);
        float pj = expf(d1 * scale - L), ds = pj * (d2 - Dg);
#pragma unroll
        for (int j = 0; j < J; j++) acc[j] += ds * kf[j]; /* kf is 0 beyond hd */
    }
    act_t *o = dq + (size_t)g * qd + (size_t)h * hd;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int e = lane + 32 * j;
        if (e < hd) st(&o[e], acc[j] * scale);
    }
}

/* dk, dv for key row g, kv head kh: over the query heads of the group and query rows i >= j. */
template <int J>
__global__ void att_dkv_k(const att_item *items, const int *row_item, int rows, int nh, int nkv, int hd, float scale,
                          const act_t *q, const act_t *k, const act_t *v, const act_t *dout, const float *lse,
                          const float *D, act_t *dk, act_t *dv) {
    size_t warp = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
    int lane = threadIdx.x & 31;
    if (warp >= (size_t)rows * nkv) return;
    int g = (int)(warp / nkv), kh = (int)(warp % nkv), rep = nh / nkv;
    att_item it = items[row_item[g]];
    int j0 = g - it.row0, kvd = nkv * hd, qd = nh * hd;
    const act_t *kr = k + (size_t)g * kvd + (size_t)kh * hd, *vr = v + (size_t)g * kvd + (size_t)kh * hd;
    float kk[J], vv[J], ak[J], av[J];
#pragma unroll
    for (int j = 0; j < J; j++) {
        int e = lane + 32 * j;
        kk[j] = e < hd ? ld(kr[e]) : 0.0f;
        vv[j] = e < hd ? ld(vr[e]) : 0.0f;
        ak[j] = av[j] = 0;
    }
    for (int h = kh * rep; h < (kh + 1) * rep; h++)
        for (int i = j0; i < it.T; i++) {
            size_t gi = (size_t)it.row0 + i;
            const act_t *qi = q + gi * qd + (size_t)h * hd, *di = dout + gi * qd + (size_t)h * hd;
            float qf[J], df[J], d1 = 0, d2 = 0;
#pragma unroll
            for (int j = 0; j < J; j++) {
                int e = lane + 32 * j;
                qf[j] = e < hd ? ld(qi[e]) : 0.0f;
                df[j] = e < hd ? ld(di[e]) : 0.0f;
                d1 += qf[j] * kk[j];
                d2 += df[j] * vv[j];
            }
            d1 = wsum(d1), d2 = wsum(d2);
            float pj = expf(d1 * scale - lse[gi * nh + h]), ds = pj * (d2 - D[gi * nh + h]);
#pragma unroll
            for (int j = 0; j < J; j++) { /* qf, df are 0 beyond hd */
                av[j] += pj * df[j];
                ak[j] += ds * qf[j];
            }
        }
    act_t *ok = dk + (size_t)g * kvd + (size_t)kh * hd, *ov = dv + (size_t)g * kvd + (size_t)kh * hd;
#pragma unroll
    for (int j = 0; j < J; j++) {
        int e = lane + 32 * j;
        if (e < hd) { st(&ok[e], ak[j] * scale); st(&ov[e], av[j]); }
    }
}

/* ---------------------------------------------------------------- host side */

typedef struct {
    att_item *items;
    att_span *spans;
    int *row_item;
    int rows;
} att_desc;

/* Bytes of the packed block for ni items, ns spans and rows rows: items, then spans, then the
 * row -> item map (each part a multiple of 8 bytes after the ones before, so every part is
 * aligned for its type). */
static size_t desc_bytes(int ni, int ns, int rows) {
    return (size_t)ni * sizeof(att_item) + (size_t)ns * sizeof(att_span) + (size_t)rows * sizeof(int);
}

/* Pack items, spans and the row -> item map into the host block h (desc_bytes long). */
static void pack_desc(char *h, const att_item *hi, int ni, const att_span *hs, int ns) {
    size_t bi = (size_t)ni * sizeof(att_item), bs = (size_t)ns * sizeof(att_span);
    memcpy(h, hi, bi);
    memcpy(h + bi, hs, bs);
    int *ri = (int *)(h + bi + bs);
    for (int i = 0, g = 0; i < ni; i++)
        for (int t = 0; t < hi[i].T; t++) ri[g++] = i;
}

/* Where the parts of a packed block at device address d lie. */
static att_desc locate_desc(const void *d, int ni, int ns, int rows) {
    char *c = (char *)d;
    size_t bi = (size_t)ni * sizeof(att_item), bs = (size_t)ns * sizeof(att_span);
    return (att_desc){(att_item *)c, (att_span *)(c + bi), (int *)(c + bi + bs), rows};
}

/* Pack and upload into the scratch slot CU_S_DESC (reused by the next call in stream order). */
static att_desc upload_desc(const att_item *hi, int ni, const att_span *hs, int ns, int rows) {
    size_t total = desc_bytes(ni, ns, rows);
    char *h = (char *)malloc(total ? total : 1);
    if (!h) die("out of memory");
    pack_desc(h, hi, ni, hs, ns);
    char *d = (char *)cu_scratch(CU_S_DESC, total);
    cu_h2d(d, h, total); /* staged: h may go at once, the device is not waited for */
    free(h);
    return locate_desc(d, ni, ns, rows);
}

#define DISPATCH_J(hd, KERNEL, grid, block, ...)                                                                      \
    do {                                                                                                              \
        if ((hd) <= 32) KERNEL<1><<<grid, block, 0, cu_stream()>>>(__VA_ARGS__);                                      \
        else if ((hd) <= 64) KERNEL<2><<<grid, block, 0, cu_stream()>>>(__VA_ARGS__);                                 \
        else if ((hd) <= 128) KERNEL<4><<<grid, block, 0, cu_stream()>>>(__VA_ARGS__);                                \
        else if ((hd) <= 256) KERNEL<8><<<grid, block, 0, cu_stream()>>>(__VA_ARGS__);                                \
        else die("%s:%d: head_dim %d > 256 is not supported by the CUDA attention", __FILE__, __LINE__, (hd));        \
        CUDA_LAUNCH_CHECK();                                                                                          \
    } while (0)

static unsigned warp_blocks(size_t warps) { return (unsigned)((warps * 32 + 255) / 256); }

/* backend.h's items into the kernels' layout (host arrays of n_items and *ns_out spans). */
static void items_to_att(const llm_attn_item *items, int n_items, att_item **hi_out, att_span **hs_out, int *ns_out,
                         int *rows_out) {
    int ns = 0, rows = 0;
    for (int i = 0; i < n_items; i++) ns += items[i].n_spans, rows += items[i].T;
    size_t nib = n_items > 0 ? (size_t)n_items : 1, nsb = ns > 0 ? (size_t)ns : 1;
    att_item *hi = (att_item *)malloc(nib * sizeof *hi);
    att_span *hs = (att_span *)malloc(nsb * sizeof *hs);
    if (!hi || !hs) die("out of memory");
    for (int i = 0, s0 = 0, r0 = 0; i < n_items; i++) {
        hi[i] = (att_item){(act_t *)items[i].out, (const act_t *)items[i].q, items[i].pos, items[i].T, r0, s0,
                           items[i].n_spans};
        for (int s = 0; s < items[i].n_spans; s++)
            hs[s0 + s] = (att_span){(const act_t *)items[i].spans[s].k, (const act_t *)items[i].spans[s].v,
                                    items[i].spans[s].len, 0};
        s0 += items[i].n_spans, r0 += items[i].T;
    }
    *hi_out = hi, *hs_out = hs, *ns_out = ns, *rows_out = rows;
}

static void launch_fwd(att_desc d, int n_heads, int n_kv_heads, int head_dim) {
    size_t warps = (size_t)d.rows * n_heads;
    DISPATCH_J(head_dim, att_fwd_k, warp_blocks(warps), 256, d.items, d.spans, d.row_item, d.rows, n_heads, n_kv_heads,
               head_dim, 1.0f / sqrtf((float)head_dim), (float *)NULL);
}

void cu_attention(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim) {
    att_item *hi;
    att_span *hs;
    int ns, rows;
    items_to_att(items, n_items, &hi, &hs, &ns, &rows);
    if (rows > 0) launch_fwd(upload_desc(hi, n_items, hs, ns, rows), n_heads, n_kv_heads, head_dim);
    free(hi), free(hs);
}

/* The decode step's graphs (backend.h's attn_pack / attention_packed): the caller packs the
 * block once, keeps it in its own device buffer, and the launch reads it from there, so the
 * launch uploads nothing and can be captured. dst NULL: only the size. */
size_t cu_attn_pack(void *dst, const llm_attn_item *items, int n_items) {
    att_item *hi;
    att_span *hs;
    int ns, rows;
    items_to_att(items, n_items, &hi, &hs, &ns, &rows);
    size_t total = desc_bytes(n_items, ns, rows);
    if (dst) pack_desc((char *)dst, hi, n_items, hs, ns);
    free(hi), free(hs);
    return total;
}

void cu_attention_packed(const void *desc, int n_items, int n_spans, int rows, int n_heads, int n_kv_heads,
                         int head_dim) {
    if (rows > 0) launch_fwd(locate_desc(desc, n_items, n_spans, rows), n_heads, n_kv_heads, head_dim);
}

/* Training descriptors: item s = sequence s (rows off..off+len-1, positions 0..len-1). */
static att_desc train_desc(const llm_train_attn *a, int *rows_out) {
    int n = a->n_seq, rows = 0;
    att_item *hi = (att_item *)malloc((size_t)(n ? n : 1) * sizeof *hi);
    att_span *hs = (att_span *)malloc((size_t)(n ? n : 1) * sizeof *hs);
    if (!hi || !hs) die("out of memory");
    int qd = a->n_heads * a->head_dim, kvd = a->n_kv_heads * a->head_dim;
    for (int s = 0; s < n; s++) {
        size_t o = (size_t)a->off[s];
        if (a->off[s] != rows) die("%s:%d: training sequences must be packed in order", __FILE__, __LINE__);
        hi[s] = (att_item){(act_t *)a->out + o * qd, (const act_t *)a->q + o * qd, NULL, a->len[s], a->off[s], s, 1};
        hs[s] = (att_span){(const act_t *)a->k + o * kvd, (const act_t *)a->v + o * kvd, a->len[s], 0};
        rows += a->len[s];
    }
    att_desc d = upload_desc(hi, n, hs, n, rows);
    free(hi), free(hs);
    *rows_out = rows;
    return d;
}

void cu_att_rowdot(float *D, const act_t *dout, const act_t *out, int rows, int nh, int hd) {
    att_dot_k<<<warp_blocks((size_t)rows * nh), 256, 0, cu_stream()>>>(D, dout, out, rows, nh, hd);
    CUDA_LAUNCH_CHECK();
}

void cu_attention_train(const llm_train_attn *a) {
    if (cu_attn_gemm()) {
        cu_attention_train_gemm(a);
        return;
    }
    int rows;
    att_desc d = train_desc(a, &rows);
    if (rows == 0) return;
    size_t warps = (size_t)rows * a->n_heads;
    DISPATCH_J(a->head_dim, att_fwd_k, warp_blocks(warps), 256, d.items, d.spans, d.row_item, rows, a->n_heads,
               a->n_kv_heads, a->head_dim, 1.0f / sqrtf((float)a->head_dim), a->lse);
}

void cu_attention_backward(const llm_train_attn *a) {
    if (cu_attn_gemm()) {
        cu_attention_backward_gemm(a);
        return;
    }
    int rows;
    att_desc d = train_desc(a, &rows);
    if (rows == 0) return;
    int nh = a->n_heads, nkv = a->n_kv_heads, hd = a->head_dim;
    float scale = 1.0f / sqrtf((float)hd);
    float *D = (float *)cu_scratch(CU_S_D, (size_t)rows * nh * sizeof(float));
    size_t warps = (size_t)rows * nh;
    const act_t *q = (const act_t *)a->q, *k = (const act_t *)a->k, *v = (const act_t *)a->v;
    const act_t *dout = (const act_t *)a->dout, *out = (const act_t *)a->out;
    act_t *dq = (act_t *)a->dq, *dk = (act_t *)a->dk, *dv = (act_t *)a->dv;
    att_dot_k<<<warp_blocks(warps), 256, 0, cu_stream()>>>(D, dout, out, rows, nh, hd);
    CUDA_LAUNCH_CHECK();
    DISPATCH_J(hd, att_dq_k, warp_blocks(warps), 256, d.items, d.row_item, rows, nh, nkv, hd, scale, k, v, dout,
               a->lse, D, dq);
    DISPATCH_J(hd, att_dkv_k, warp_blocks((size_t)rows * nkv), 256, d.items, d.row_item, rows, nh, nkv, hd, scale,
               q, k, v, dout, a->lse, D, dk, dv);
}
