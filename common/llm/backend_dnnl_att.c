/* backend_dnnl_att.c - the cpu-bf16 backend's attention: training forward and backward, and
 * prefill items of 8 tokens or more, as batched oneDNN bf16 matrix products with the softmax
 * in fp32 on the CPU backend's pool (the method is described below). Decode items, heads over
 * 1024 wide and ITREK_BF16_ATTENTION=0 go to the CPU backend's fp32 attention. Primitives,
 * scratch and rounding come from backend_dnnl.c (backend_dnnl_impl.h).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "llm/backend.h"
#include "llm/backend_dnnl_impl.h"
#include "llm/vexp.h"

/* ---- attention in bf16: training forward and backward, prefill items of 8 tokens or more ----
 *
 * Per sequence, the R = n_heads / n_kv_heads query heads of kv head g are stacked as rows, so
 * that each product is one matmul batched over the G = n_kv_heads groups, all operands plain
 * row-major: S (G, R Lp, Np) = scale Q K^T; the causal softmax in fp32 on the pool (the
 * log-sum-exp kept for the backward), P rounded to bf16; O = P V. The backward recomputes S,
 * then dP = dO V^T, P = exp(S - lse), dS = P (dP - rowsum(dO O)), dV^T = dO^T P,
 * dQ = scale dS K, dK^T = scale Q^T dS (P and dS rounded to bf16). Query and key counts are
 * padded with zero rows to multiples of 64 (the causal mask never reaches the padding), so
 * the primitives are per 64-token length. The products cover the whole Lp x Np square, twice
 * the causal work (the fp32 path skips the blocks above the diagonal): cheap on AMX.
 * Decode items (fewer than 8 tokens) go to the CPU backend's fp32 attention. */

static int attention_bf16 = -1; /* -1: from ITREK_BF16_ATTENTION (default on) */

static int att_on(void) {
    if (attention_bf16 < 0) {
        const char *e = getenv("ITREK_BF16_ATTENTION");
        attention_bf16 = !(e && strcmp(e, "0") == 0);
    }
    return attention_bf16;
}

/* dst (G, M, N) fp32 = alpha src (G, M, K) wei (G, K, N), dense bf16 operands */
static const pent *bprim(int G, int M, int K, int N, float alpha) {
    pkey k = {.kind = K_BATCH, .M = M, .N = N, .K = K, .lda = G, .alpha = alpha};
    pent *e = bf_pent_find(&k);
    if (e) return e;
    dnnl_memory_desc_t sd, wd, dd;
    dnnl_dims_t ds = {G, M, K}, dw = {G, K, N}, dst = {G, M, N};
    DN(dnnl_memory_desc_init_by_tag(&sd, 3, ds, dnnl_bf16, dnnl_abc));
    DN(dnnl_memory_desc_init_by_tag(&wd, 3, dw, dnnl_bf16, dnnl_abc));
    DN(dnnl_memory_desc_init_by_tag(&dd, 3, dst, dnnl_f32, dnnl_abc));
    return bf_pent_new(&k, bf_matmul_pd(&sd, &wd, &dd, alpha, 0.0f));
}

typedef struct {
    int G, R, hd, nh;
    int L, Lp;               /* query rows (contiguous, stride qd), padded */
    int n, Np;               /* key / value rows, padded */
    size_t qd, kvd;
    const float *const *kr;  /* n key rows (all kv heads) */
    const float *const *vr;  /* n value rows */
    const int *lim;          /* query row i attends keys 0..lim[i] */
    float scale;
} att_geom;

/* Pack rows into bf16 per (group, head-in-group): dst (G, R np, hd), or transposed
 * (G, hd, R np); row i of head (g, r) is src(i) + (g R + r) hd; rows i >= n are zero. */
typedef struct {
    bf16 *d;
    const float *base;          /* rows base + i ld ... */
    size_t ld;
    const float *const *rows;   /* ... or these */
    int n, np, G, R, hd, trans;
} pack_ctx;

static void pack_range(void *vc, size_t a, size_t b) {
    const pack_ctx *c = vc;
    bf16 tmp[1024];
    for (size_t q = a; q < b; q++) {
        int i = (int)(q % (size_t)c->np), r = (int)(q / (size_t)c->np % (size_t)c->R), g = (int)(q / ((size_t)c->np * c->R));
        const float *src = i < c->n ? (c->rows ? c->rows[i] : c->base + (size_t)i * c->ld) + (size_t)(g * c->R + r) * c->hd : NULL;
        if (!c->trans) {
            bf16 *d = c->d + q * (size_t)c->hd;
            if (src) bf_cvt(d, src, (size_t)c->hd);
            else memset(d, 0, (size_t)c->hd * sizeof(bf16));
        } else {
            if (src) bf_cvt(tmp, src, (size_t)c->hd);
            else memset(tmp, 0, (size_t)c->hd * sizeof(bf16));
            size_t rn = (size_t)c->R * c->np;
            bf16 *d = c->d + (size_t)g * c->hd * rn + (size_t)r * c->np + (size_t)i;
            for (int e = 0; e < c->hd; e++) d[(size_t)e * rn] = tmp[e];
        }
    }
}

static bf16 *pack(int slot, const float *base, size_t ld, const float *const *rows, int n, int np, int G, int R, int hd,
                  int trans) {
    bf16 *d = bf_scratch(slot, (size_t)G * R * np * hd * sizeof(bf16));
    pack_ctx c = {d, base, ld, rows, n, np, G, R, hd, trans};
    double t = bf_now();
    llm_cpu_parallel((size_t)G * R * np, 16, pack_range, &c, 4.0 * hd);
    bf_stats.round_s += bf_now() - t;
    return d;
}

/* Softmax rows of S (forward: into Pb, lse) or the backward's P and dS rows. */
typedef struct {
    const att_geom *g;
    const float *S, *dP;
    bf16 *Pb, *dSb;
    float *lse;                  /* forward: (L, nh) rows, or NULL */
    const float *out, *dout;     /* backward: (L, qd) rows of O and dO */
    const float *lse_in;         /* backward */
} soft_ctx;

static void soft_fwd_range(void *vc, size_t a, size_t b) {
    const soft_ctx *c = vc;
    const att_geom *g = c->g;
    for (size_t q = a; q < b; q++) {
        int i = (int)(q % (size_t)g->Lp), h = (int)(q / (size_t)g->Lp); /* h = group * R + r */
        const float *row = c->S + q * (size_t)g->Np;
        bf16 *pb = c->Pb + q * (size_t)g->Np;
        if (i >= g->L) { memset(pb, 0, (size_t)g->Np * sizeof(bf16)); continue; }
        int np = g->lim[i] + 1;
        float mx = -INFINITY, sum = 0;
        for (int j = 0; j < np; j++) mx = row[j] > mx ? row[j] : mx;
        float *p = (float *)row; /* S is scratch: overwritten with the probabilities */
        for (int j = 0; j < np; j++) p[j] = vexpf(row[j] - mx);
        for (int j = 0; j < np; j++) sum += p[j];
        float inv = 1.0f / sum;
        for (int j = 0; j < np; j++) p[j] *= inv;
        bf_cvt(pb, p, (size_t)np);
        memset(pb + np, 0, (size_t)(g->Np - np) * sizeof(bf16));
        if (c->lse) c->lse[(size_t)i * g->nh + h] = mx + logf(sum);
    }
}

static void soft_bwd_range(void *vc, size_t a, size_t b) {
    const soft_ctx *c = vc;
    const att_geom *g = c->g;
    for (size_t q = a; q < b; q++) {
        int i = (int)(q % (size_t)g->Lp), h = (int)(q / (size_t)g->Lp);
        float *S = (float *)c->S + q * (size_t)g->Np, *dP = (float *)c->dP + q * (size_t)g->Np;
        bf16 *pb = c->Pb + q * (size_t)g->Np, *ds = c->dSb + q * (size_t)g->Np;
        if (i >= g->L) {
            memset(pb, 0, (size_t)g->Np * sizeof(bf16));
            memset(ds, 0, (size_t)g->Np * sizeof(bf16));
            continue;
        }
        const float *x = c->dout + (size_t)i * g->qd + (size_t)h * g->hd, *y = c->out + (size_t)i * g->qd + (size_t)h * g->hd;
        float D = 0, l = c->lse_in[(size_t)i * g->nh + h];
        for (int e = 0; e < g->hd; e++) D += x[e] * y[e];
        int np = i + 1;
        for (int j = 0; j < np; j++) S[j] = vexpf(S[j] - l);        /* P */
        for (int j = 0; j < np; j++) dP[j] = S[j] * (dP[j] - D);    /* dS */
        bf_cvt(pb, S, (size_t)np);
        bf_cvt(ds, dP, (size_t)np);
        memset(pb + np, 0, (size_t)(g->Np - np) * sizeof(bf16));
        memset(ds + np, 0, (size_t)(g->Np - np) * sizeof(bf16));
    }
}

/* Results back into the (rows, all heads) layouts: X (G, R Lp, hd) -> dst rows (head g R + r),
 * or transposed XT (G, hd, Np) -> dst rows (kv head g). */
typedef struct {
    const att_geom *g;
    const float *X;
    float *dst;
    size_t ld;
    int trans;
} scat_ctx;

static void scat_range(void *vc, size_t a, size_t b) {
    const scat_ctx *c = vc;
    const att_geom *g = c->g;
    for (size_t i = a; i < b; i++) {
        float *d = c->dst + i * c->ld;
        if (!c->trans)
            for (int h = 0; h < g->G * g->R; h++)
                memcpy(d + (size_t)h * g->hd, c->X + ((size_t)h * g->Lp + i) * g->hd, (size_t)g->hd * sizeof(float));
        else
            for (int k = 0; k < g->G; k++)
                for (int e = 0; e < g->hd; e++) d[(size_t)k * g->hd + e] = c->X[((size_t)k * g->hd + e) * g->Np + i];
    }
}

static void scatter(const att_geom *g, const float *X, float *dst, size_t ld, int trans) {
    scat_ctx c = {g, X, dst, ld, trans};
    llm_cpu_parallel((size_t)g->L, 8, scat_range, &c, 2.0 * (trans ? g->G : g->G * g->R) * g->hd);
}

/* out (L rows, qd) = attention of the L query rows q; lse (L, nh) when not NULL. */
static int att_forward(const att_geom *g, const float *q, float *out, float *lse) {
    int G = g->G, RL = g->R * g->Lp;
    const pent *pS = bprim(G, RL, g->hd, g->Np, g->scale), *pO = bprim(G, RL, g->Np, g->hd, 1.0f);
    if (!pS->p || !pO->p) return -1;
    bf16 *Qp = pack(S_QP, q, g->qd, NULL, g->L, g->Lp, G, g->R, g->hd, 0);
    bf16 *KT = pack(S_KT, NULL, 0, g->kr, g->n, g->Np, G, 1, g->hd, 1);
    bf16 *Vp = pack(S_VP, NULL, 0, g->vr, g->n, g->Np, G, 1, g->hd, 0);
    float *S = bf_scratch(S_S, (size_t)G * RL * g->Np * sizeof(float)), *O = bf_scratch(S_O, (size_t)G * RL * g->hd * sizeof(float));
    bf16 *Pb = bf_scratch(S_PB, (size_t)G * RL * g->Np * sizeof(bf16));
    bf_run(pS, Qp, KT, S);
    soft_ctx c = {.g = g, .S = S, .Pb = Pb, .lse = lse};
    llm_cpu_parallel((size_t)G * RL, 4, soft_fwd_range, &c, 12.0 * g->Np);
    bf_run(pO, Pb, Vp, O);
    scatter(g, O, out, g->qd, 0);
    return 0;
}

void bf_attention_train(const llm_train_attn *a) {
    int G = a->n_kv_heads, R = a->n_heads / a->n_kv_heads, hd = a->head_dim;
    size_t qd = (size_t)a->n_heads * hd, kvd = (size_t)G * hd;
    if (!att_on() || hd > 1024) { llm_backend_cpu()->attention_train(a); return; }
    for (int s = 0; s < a->n_seq; s++) {
        int L = a->len[s];
        if (L <= 0) continue;
        size_t o = (size_t)a->off[s];
        int Lp = (L + 63) / 64 * 64;
        const float **rows = bf_scratch(S_ROWS, 2 * (size_t)L * sizeof *rows);
        for (int i = 0; i < L; i++) {
            rows[i] = (const float *)a->k + (o + (size_t)i) * kvd;
            rows[L + i] = (const float *)a->v + (o + (size_t)i) * kvd;
        }
        att_geom g = {G, R, hd, a->n_heads, L, Lp, L, Lp, qd, kvd, rows, rows + L, NULL, 1.0f / sqrtf((float)hd)};
        int *lm = xmalloc((size_t)L * sizeof *lm);
        for (int i = 0; i < L; i++) lm[i] = i;
        g.lim = lm;
        int rc = att_forward(&g, (const float *)a->q + o * qd, (float *)a->out + o * qd, a->lse + o * (size_t)a->n_heads);
        free(lm);
        if (rc != 0) { /* no primitive for these shapes: this sequence in fp32 */
            bf_stats.fallbacks++;
            llm_train_attn one = *a;
            one.n_seq = 1, one.off = a->off + s, one.len = a->len + s;
            llm_backend_cpu()->attention_train(&one);
        }
    }
    bf_stats.attention++;
}

void bf_attention_backward(const llm_train_attn *a) {
    int G = a->n_kv_heads, R = a->n_heads / a->n_kv_heads, hd = a->head_dim;
    size_t qd = (size_t)a->n_heads * hd, kvd = (size_t)G * hd;
    if (!att_on() || hd > 1024) { llm_backend_cpu()->attention_backward(a); return; }
    for (int s = 0; s < a->n_seq; s++) {
        int L = a->len[s];
        if (L <= 0) continue;
        size_t o = (size_t)a->off[s];
        int Lp = (L + 63) / 64 * 64, RL = R * Lp;
        float scale = 1.0f / sqrtf((float)hd);
        const pent *pS = bprim(G, RL, hd, Lp, scale), *pdP = bprim(G, RL, hd, Lp, 1.0f), *pdV = bprim(G, hd, RL, Lp, 1.0f),
                   *pdQ = bprim(G, RL, Lp, hd, scale), *pdK = bprim(G, hd, RL, Lp, scale);
        if (!pS->p || !pdP->p || !pdV->p || !pdQ->p || !pdK->p) {
            bf_stats.fallbacks++;
            llm_train_attn one = *a;
            one.n_seq = 1, one.off = a->off + s, one.len = a->len + s;
            llm_backend_cpu()->attention_backward(&one);
            continue;
        }
        const float *q = (const float *)a->q + o * qd, *k = (const float *)a->k + o * kvd, *v = (const float *)a->v + o * kvd;
        const float *dO = (const float *)a->dout + o * qd;
        att_geom g = {G, R, hd, a->n_heads, L, Lp, L, Lp, qd, kvd, NULL, NULL, NULL, scale};
        bf16 *Qp = pack(S_QP, q, qd, NULL, L, Lp, G, R, hd, 0), *QT = pack(S_QT, q, qd, NULL, L, Lp, G, R, hd, 1);
        bf16 *KT = pack(S_KT, k, kvd, NULL, L, Lp, G, 1, hd, 1), *Kp = pack(S_KP, k, kvd, NULL, L, Lp, G, 1, hd, 0);
        bf16 *VT = pack(S_VT, v, kvd, NULL, L, Lp, G, 1, hd, 1);
        bf16 *dOp = pack(S_DOP, dO, qd, NULL, L, Lp, G, R, hd, 0), *dOT = pack(S_DOT, dO, qd, NULL, L, Lp, G, R, hd, 1);
        float *S = bf_scratch(S_S, (size_t)G * RL * Lp * sizeof(float)), *dP = bf_scratch(S_DP, (size_t)G * RL * Lp * sizeof(float));
        bf16 *Pb = bf_scratch(S_PB, (size_t)G * RL * Lp * sizeof(bf16)), *dSb = bf_scratch(S_DSB, (size_t)G * RL * Lp * sizeof(bf16));
        float *X = bf_scratch(S_O, (size_t)G * RL * hd * sizeof(float));
        float *dVT = bf_scratch(S_DVT, (size_t)G * hd * Lp * sizeof(float)), *dKT = bf_scratch(S_DKT, (size_t)G * hd * Lp * sizeof(float));
        bf_run(pS, Qp, KT, S);
        bf_run(pdP, dOp, VT, dP);
        soft_ctx c = {.g = &g, .S = S, .dP = dP, .Pb = Pb, .dSb = dSb, .out = (const float *)a->out + o * qd, .dout = dO,
                      .lse_in = a->lse + o * (size_t)a->n_heads};
        llm_cpu_parallel((size_t)G * RL, 4, soft_bwd_range, &c, 16.0 * Lp);
        bf_run(pdV, dOT, Pb, dVT);
        bf_run(pdQ, dSb, Kp, X);
        bf_run(pdK, QT, dSb, dKT);
        scatter(&g, X, (float *)a->dq + o * qd, qd, 0);
        scatter(&g, dVT, (float *)a->dv + o * kvd, kvd, 1);
        scatter(&g, dKT, (float *)a->dk + o * kvd, kvd, 1);
    }
    bf_stats.attention++;
}

/* Inference attention: items of 8 tokens or more in bf16, the others (decode steps) on the
 * CPU backend, as it splits them too. */
void bf_attention(const llm_attn_item *items, int n_items, int n_heads, int n_kv_heads, int head_dim) {
    if (!att_on() || head_dim > 1024) { llm_backend_cpu()->attention(items, n_items, n_heads, n_kv_heads, head_dim); return; }
    int G = n_kv_heads, R = n_heads / n_kv_heads, hd = head_dim, n_small = 0;
    size_t qd = (size_t)n_heads * hd, kvd = (size_t)G * hd;
    llm_attn_item *small = xmalloc((size_t)(n_items ? n_items : 1) * sizeof *small);
    for (int it = 0; it < n_items; it++) {
        const llm_attn_item *x = &items[it];
        if (x->T < 8) { small[n_small++] = *x; continue; }
        int n = 0;
        for (int t = 0; t < x->T; t++) n = x->pos[t] + 1 > n ? x->pos[t] + 1 : n;
        const float **rows = bf_scratch(S_ROWS, 2 * (size_t)n * sizeof *rows);
        int p = 0;
        for (int s = 0; s < x->n_spans && p < n; s++)
            for (int j = 0; j < x->spans[s].len && p < n; j++, p++) {
                rows[p] = (const float *)x->spans[s].k + (size_t)j * kvd;
                rows[n + p] = (const float *)x->spans[s].v + (size_t)j * kvd;
            }
        att_geom g = {G, R, hd, n_heads, x->T, (x->T + 63) / 64 * 64, n, (n + 63) / 64 * 64, qd, kvd, rows, rows + n,
                      x->pos, 1.0f / sqrtf((float)hd)};
        if (p < n || att_forward(&g, (const float *)x->q, (float *)x->out, NULL) != 0) {
            bf_stats.fallbacks++;
            small[n_small++] = *x;
        }
    }
    if (n_small) llm_backend_cpu()->attention(small, n_small, n_heads, n_kv_heads, head_dim);
    free(small);
    bf_stats.attention++;
}
