/* train.c - the training forward and backward (LoRA or full-parameter), llama2.c style:
 * one function per direction, each step with its shape, written against backend.h. */
#include "llm/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "io/parallel.h"
#include "io/rng.h"

#define LOSS_CHUNK 128 /* rows of logits computed at a time (bounds memory at CHUNK x V) */

typedef struct {
    llm_act xn1, q, k, v, att, xn2, g, u, h; /* activations (backend.h: bf16 on CUDA) */
    float *lse, *x2;       /* fp32: log-sum-exp (T,nh); the residual after the attention block (T,C) */
    float *lu[LLM_N_MODS]; /* LoRA, fp32: (T, r) = dropout(x) A^T per adapted module */
} acts;

struct llm_trainer {
    llm_model *m;
    llm_lora *lora;
    llm_trainer_opts o;
    const llm_backend *be;
    int L, C, H, V, qd, kvd, nh, nkv, hd, r;
    /* gradients */
    float *g_embed, *g_norm, *g_head; /* g_head NULL when tied (g_embed takes both) */
    float **gW, **g_an, **g_fn;       /* full: L*7, L, L */
    float **gA, **gB;                 /* lora: L*7 (NULL where not adapted) */
    llm_param *params;
    int n_params;
    /* activations, sized for cap_T rows */
    size_t cap_T;
    int n_sets;
    acts *A;
    float **xin; /* L + 1: the input of every layer, xin[L] the last layer's output (residual, fp32) */
    float *dx, *dlu, *dxs, *lg; /* fp32: the residual's gradient (T,C); LoRA (T,r); classifier rows */
    llm_act xf, dxn, dq, dk, dv, datt, dh, dg, du, tmp, tmp2, xs; /* activations and their gradients */
    llm_act dya; /* dx as activations, where they are not fp32 (be->f32_to_act); else NULL */
    int *tok, *pos, *tgt;
    int cap_seq, *off, *len;
    uint64_t stream; /* dropout stream of the current micro-batch (0: none) */
    /* device backend (be->device): the buffers above are backend memory except tok, pos, tgt,
     * off, len and the gradients of params (host, for the optimiser); the adapter's A, B and
     * their gradients have device copies, synchronised at every llm_trainer_run. */
    float **dA, **dB, **dgA, **dgB; /* L*7 */
    int *dtok, *dpos, *dnpos, *dtgt; /* on the host: tok, pos, NULL, NULL */
    float *dloss, *hbuf;
};

/* ---------------------------------------------------------------- setup */

static void add_param(llm_trainer *t, const char *name, float *w, float *g, int rows, int cols, int decay) {
    llm_param *p = &t->params[t->n_params++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->w = w;
    p->g = g;
    p->n = (size_t)rows * (size_t)(cols ? cols : 1);
    p->ndim = cols ? 2 : 1;
    p->shape[0] = rows;
    p->shape[1] = cols;
    p->decay = decay;
}

llm_trainer *llm_trainer_new(llm_model *m, llm_lora *lora, const llm_trainer_opts *o, char *err, size_t errlen) {
    if (!!o->full == !!lora) { snprintf(err, errlen, "train either an adapter or the full model"); return NULL; }
    if (m->lora) { snprintf(err, errlen, "the model already has an adapter attached"); return NULL; }
    if (o->full && m->int8) { snprintf(err, errlen, "full-parameter training needs fp32 weights (not --int8)"); return NULL; }
    if (o->full && m->be->device) {
        snprintf(err, errlen, "full-parameter training is not supported on the %s device", m->be->name);
        return NULL;
    }
    const llm_config *c = &m->cfg;
    if (lora && lora->n_layers != c->n_layers) { snprintf(err, errlen, "adapter and model differ in layers"); return NULL; }
    llm_trainer *t = xcalloc(1, sizeof *t);
    t->m = m;
    t->lora = lora;
    t->o = *o;
    t->be = m->be;
    t->L = c->n_layers, t->C = c->dim, t->H = c->hidden_dim, t->V = c->vocab_size, t->hd = c->head_dim;
    t->nh = c->n_heads, t->nkv = c->n_kv_heads, t->qd = c->n_heads * c->head_dim, t->kvd = c->n_kv_heads * c->head_dim;
    t->r = lora ? lora->r : 0;
    int L = t->L, C = t->C;
    t->params = xcalloc((size_t)(L * 2 * LLM_N_MODS + 2 * L + 3), sizeof *t->params);
    char nm[200];
    if (o->full) {
        int tied = m->lm_head.f == m->embed;
        t->g_embed = xcalloc((size_t)t->V * C, sizeof(float));
        add_param(t, "model.embed_tokens.weight", m->embed, t->g_embed, t->V, C, 1);
        t->gW = xcalloc((size_t)L * LLM_N_MODS, sizeof *t->gW);
        t->g_an = xcalloc((size_t)L, sizeof *t->g_an);
        t->g_fn = xcalloc((size_t)L, sizeof *t->g_fn);
        for (int l = 0; l < L; l++) {
            llm_layer *Y = &m->layers[l];
            t->g_an[l] = xcalloc((size_t)C, sizeof(float));
            snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
            add_param(t, nm, Y->attn_norm, t->g_an[l], C, 0, 0);
            for (int mod = 0; mod < LLM_N_MODS; mod++) {
                llm_weight *w = llm_layer_weight(Y, mod);
                float **g = &t->gW[l * LLM_N_MODS + mod];
                *g = xcalloc((size_t)w->rows * w->cols, sizeof(float));
                snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, llm_mod_path(mod));
                add_param(t, nm, w->f, *g, w->rows, w->cols, 1);
            }
            t->g_fn[l] = xcalloc((size_t)C, sizeof(float));
            snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
            add_param(t, nm, Y->ffn_norm, t->g_fn[l], C, 0, 0);
        }
        t->g_norm = xcalloc((size_t)C, sizeof(float));
        add_param(t, "model.norm.weight", m->norm, t->g_norm, C, 0, 0);
        if (!tied) {
            t->g_head = xcalloc((size_t)t->V * C, sizeof(float));
            add_param(t, "lm_head.weight", m->lm_head.f, t->g_head, t->V, C, 1);
        }
    } else {
        t->gA = xcalloc((size_t)L * LLM_N_MODS, sizeof *t->gA);
        t->gB = xcalloc((size_t)L * LLM_N_MODS, sizeof *t->gB);
        for (int l = 0; l < L; l++)
            for (int mod = 0; mod < LLM_N_MODS; mod++) {
                llm_lora_ab *p = llm_lora_at(lora, l, mod);
                if (!p->A) continue;
                int i = l * LLM_N_MODS + mod;
                t->gA[i] = xcalloc((size_t)t->r * p->in, sizeof(float));
                t->gB[i] = xcalloc((size_t)p->out * t->r, sizeof(float));
                snprintf(nm, sizeof nm, "base_model.model.model.layers.%d.%s.lora_A.weight", l, llm_mod_path(mod));
                add_param(t, nm, p->A, t->gA[i], t->r, p->in, 1);
                snprintf(nm, sizeof nm, "base_model.model.model.layers.%d.%s.lora_B.weight", l, llm_mod_path(mod));
                add_param(t, nm, p->B, t->gB[i], p->out, t->r, 1);
            }
    }
    if (m->be->device) {
        size_t n = (size_t)L * LLM_N_MODS;
        t->dA = xcalloc(n, sizeof *t->dA), t->dB = xcalloc(n, sizeof *t->dB);
        t->dgA = xcalloc(n, sizeof *t->dgA), t->dgB = xcalloc(n, sizeof *t->dgB);
        for (size_t i = 0; i < n; i++) {
            const llm_lora_ab *p = &lora->ab[i];
            if (!p->A) continue;
            t->dA[i] = m->be->alloc((size_t)t->r * p->in * sizeof(float));
            t->dB[i] = m->be->alloc((size_t)p->out * t->r * sizeof(float));
            t->dgA[i] = m->be->alloc((size_t)t->r * p->in * sizeof(float));
            t->dgB[i] = m->be->alloc((size_t)p->out * t->r * sizeof(float));
        }
    }
    t->n_sets = o->recompute ? 1 : L;
    t->A = xcalloc((size_t)t->n_sets, sizeof *t->A);
    t->xin = xcalloc((size_t)L + 1, sizeof *t->xin);
    return t;
}

static void acts_free(acts *a) {
    free(a->xn1), free(a->q), free(a->k), free(a->v), free(a->att), free(a->lse), free(a->x2), free(a->xn2);
    free(a->g), free(a->u), free(a->h);
    for (int i = 0; i < LLM_N_MODS; i++) free(a->lu[i]);
}

/* Device backend: free every backend buffer and clear its pointer. */
static void dev_release(llm_trainer *t) {
    const llm_backend *be = t->be;
    if (!be->device) return;
#define REL(p) (be->free(p), (p) = NULL)
    for (int i = 0; t->A && i < t->n_sets; i++) {
        acts *a = &t->A[i];
        REL(a->xn1), REL(a->q), REL(a->k), REL(a->v), REL(a->att), REL(a->lse), REL(a->x2), REL(a->xn2);
        REL(a->g), REL(a->u), REL(a->h);
        for (int m = 0; m < LLM_N_MODS; m++) REL(a->lu[m]);
    }
    for (int l = 0; t->xin && l <= t->L; l++) REL(t->xin[l]);
    REL(t->xf), REL(t->dx), REL(t->dxn), REL(t->dq), REL(t->dk), REL(t->dv), REL(t->datt), REL(t->dh);
    REL(t->dg), REL(t->du), REL(t->tmp), REL(t->tmp2), REL(t->dlu), REL(t->xs), REL(t->dxs), REL(t->lg);
    REL(t->dya);
    REL(t->dtok), REL(t->dpos), REL(t->dnpos), REL(t->dtgt), REL(t->dloss);
    for (int i = 0; t->dA && i < t->L * LLM_N_MODS; i++) REL(t->dA[i]), REL(t->dB[i]), REL(t->dgA[i]), REL(t->dgB[i]);
#undef REL
    free(t->dA), free(t->dB), free(t->dgA), free(t->dgB), free(t->hbuf);
}

void llm_trainer_free(llm_trainer *t) {
    if (!t) return;
    dev_release(t);
    free(t->g_embed), free(t->g_norm), free(t->g_head);
    for (int i = 0; i < t->L * LLM_N_MODS; i++) {
        if (t->gW) free(t->gW[i]);
        if (t->gA) { free(t->gA[i]); free(t->gB[i]); }
    }
    for (int l = 0; l < t->L; l++) {
        if (t->g_an) free(t->g_an[l]);
        if (t->g_fn) free(t->g_fn[l]);
    }
    free(t->gW), free(t->g_an), free(t->g_fn), free(t->gA), free(t->gB), free(t->params);
    for (int i = 0; i < t->n_sets; i++) acts_free(&t->A[i]);
    free(t->A);
    for (int l = 0; l <= t->L; l++) free(t->xin[l]);
    free(t->xin);
    free(t->xf), free(t->dx), free(t->dxn), free(t->dq), free(t->dk), free(t->dv), free(t->datt), free(t->dh);
    free(t->dg), free(t->du), free(t->tmp), free(t->tmp2), free(t->dlu), free(t->xs), free(t->dxs), free(t->lg);
    free(t->dya);
    free(t->tok), free(t->pos), free(t->tgt), free(t->off), free(t->len);
    free(t);
}

int llm_trainer_params(llm_trainer *t, llm_param **p) {
    *p = t->params;
    return t->n_params;
}

void llm_trainer_zero_grad(llm_trainer *t) {
    for (int i = 0; i < t->n_params; i++) memset(t->params[i].g, 0, t->params[i].n * sizeof(float));
}

static int lora_on(const llm_trainer *t, int mod) { return t->lora && (t->lora->targets & (1u << mod)); }

size_t llm_trainer_activation_bytes(const llm_trainer *t, int T) {
    /* per token and set: activations (act_bytes each) and fp32 values (x2, lse, the LoRA
     * products); plus the fp32 input of every layer */
    size_t C = (size_t)t->C, H = (size_t)t->H, ab = (size_t)t->be->act_bytes;
    size_t per_act = 3 * C + 2 * (size_t)t->qd + 2 * (size_t)t->kvd + 3 * H, per_f32 = C + (size_t)t->nh;
    for (int mod = 0; mod < LLM_N_MODS; mod++) if (lora_on(t, mod)) per_f32 += (size_t)t->r;
    return (size_t)T * ((ab * per_act + 4 * per_f32) * (size_t)t->n_sets + 4 * C * (size_t)(t->L + 1));
}

/* Grow a buffer to n elements of es bytes (contents need not survive). */
static void *grow_(const llm_trainer *t, void *p, size_t n, size_t es) {
    if (!t->be->device) return xrealloc(p, (n ? n : 1) * es);
    t->be->free(p);
    return t->be->alloc((n ? n : 1) * es);
}
#define grow(p, n) grow_(t, p, n, sizeof(float))       /* fp32 */
#define growa(p, n) grow_(t, p, n, (size_t)t->be->act_bytes) /* activations */

static void ensure(llm_trainer *t, size_t T) {
    if (T <= t->cap_T) return;
    size_t C = (size_t)t->C, H = (size_t)t->H, qd = (size_t)t->qd, kvd = (size_t)t->kvd, mx = C;
    if (H > mx) mx = H;
    if (qd > mx) mx = qd;
    for (int i = 0; i < t->n_sets; i++) {
        acts *a = &t->A[i];
        a->xn1 = growa(a->xn1, T * C), a->q = growa(a->q, T * qd), a->k = growa(a->k, T * kvd), a->v = growa(a->v, T * kvd);
        a->att = growa(a->att, T * qd), a->lse = grow(a->lse, T * (size_t)t->nh), a->x2 = grow(a->x2, T * C);
        a->xn2 = growa(a->xn2, T * C), a->g = growa(a->g, T * H), a->u = growa(a->u, T * H), a->h = growa(a->h, T * H);
        for (int mod = 0; mod < LLM_N_MODS; mod++)
            if (lora_on(t, mod)) a->lu[mod] = grow(a->lu[mod], T * (size_t)t->r);
    }
    for (int l = 0; l <= t->L; l++) t->xin[l] = grow(t->xin[l], T * C);
    t->xf = growa(t->xf, T * C), t->dx = grow(t->dx, T * C), t->dxn = growa(t->dxn, T * C);
    t->dq = growa(t->dq, T * qd), t->dk = growa(t->dk, T * kvd), t->dv = growa(t->dv, T * kvd), t->datt = growa(t->datt, T * qd);
    t->dh = growa(t->dh, T * H), t->dg = growa(t->dg, T * H), t->du = growa(t->du, T * H);
    t->tmp = growa(t->tmp, T * mx), t->tmp2 = growa(t->tmp2, T * mx), t->dlu = grow(t->dlu, T * (size_t)(t->r ? t->r : 1));
    if (t->be->f32_to_act) t->dya = growa(t->dya, T * C);
    t->tok = xrealloc(t->tok, T * sizeof(int)), t->pos = xrealloc(t->pos, T * sizeof(int));
    t->tgt = xrealloc(t->tgt, T * sizeof(int));
    if (t->be->device) {
        const llm_backend *be = t->be;
        be->free(t->dtok), be->free(t->dpos), be->free(t->dnpos), be->free(t->dtgt), be->free(t->dloss);
        t->dtok = be->alloc(T * sizeof(int)), t->dpos = be->alloc(T * sizeof(int)), t->dnpos = be->alloc(T * sizeof(int));
        t->dtgt = be->alloc(LOSS_CHUNK * sizeof(int)), t->dloss = be->alloc(LOSS_CHUNK * sizeof(float));
        t->hbuf = xrealloc(t->hbuf, T * sizeof(int) > LOSS_CHUNK * sizeof(float) ? T * sizeof(int) : LOSS_CHUNK * sizeof(float));
    } else
        t->dtok = t->tok, t->dpos = t->pos;
    if (!t->xs) {
        t->xs = growa(NULL, LOSS_CHUNK * C), t->dxs = grow(NULL, LOSS_CHUNK * C);
        t->lg = grow(NULL, (size_t)LOSS_CHUNK * t->V);
    }
    t->cap_T = T;
}

/* ---------------------------------------------------------------- linear layers */

/* dst = src * keep / (1 - p), keep drawn per element (2 per 64-bit draw) from the stream of
 * (micro-batch, layer, module); the same call always gives the same mask. */
static void dropout(const llm_trainer *t, int l, int mod, llm_act dstv, llm_cact srcv, size_t n) {
    if (t->be->dropout) { /* device: a counter-based mask of the same (micro-batch, layer, module) */
        t->be->dropout(dstv, srcv, n, t->lora->dropout, t->o.seed, (t->stream << 20) | ((uint64_t)l << 3) | (uint64_t)mod);
        return;
    }
    float *dst = dstv; /* the host: activations are fp32 */
    const float *src = srcv;
    float p = t->lora->dropout, sc = 1.0f / (1.0f - p);
    uint32_t thr = (uint32_t)fmin(4294967295.0, (double)p * 4294967296.0);
    rng_t g;
    rng_init(&g, t->o.seed, (t->stream << 20) | ((uint64_t)l << 3) | (uint64_t)mod);
    for (size_t i = 0; i < n; i += 2) {
        uint64_t r = rng_u64(&g);
        dst[i] = (uint32_t)r >= thr ? src[i] * sc : 0.0f;
        if (i + 1 < n) dst[i + 1] = (uint32_t)(r >> 32) >= thr ? src[i + 1] * sc : 0.0f;
    }
}

static int use_dropout(const llm_trainer *t) { return t->lora && t->stream && t->lora->dropout > 0; }

/* y (T,out) = x W^T [+ s (dropout(x) A^T) B^T]; lu keeps dropout(x) A^T for the backward. */
static void lin_fwd(llm_trainer *t, int l, int mod, llm_act y, llm_cact x, float *lu, int T) {
    const llm_backend *be = t->be;
    const llm_weight *W = llm_layer_weight(&t->m->layers[l], mod);
    be->matmul(y, x, W, T);
    if (!lora_on(t, mod)) return;
    const llm_lora_ab *p = llm_lora_at(t->lora, l, mod);
    llm_cact xd = x;
    if (use_dropout(t)) {
        dropout(t, l, mod, t->tmp2, x, (size_t)T * p->in);
        xd = t->tmp2;
    }
    int r = t->r, i = l * LLM_N_MODS + mod;
    const float *A = t->dA ? t->dA[i] : p->A, *B = t->dB ? t->dB[i] : p->B;
    llm_be_gemm_act(be, LLM_ACT_A, 0, 1, T, r, p->in, 1.0f, xd, p->in, A, p->in, 0.0f, lu, r);        // lu (T,r) = xd A^T
    llm_be_gemm_act(be, LLM_ACT_C, 0, 1, T, p->out, r, t->lora->scale, lu, r, B, r, 1.0f, y, p->out); // y += s lu B^T
}

/* Backward of lin_fwd: dx (T,in) (+)= dy W [+ LoRA path]; gradients of W (full) or A, B. */
static void lin_bwd(llm_trainer *t, int l, int mod, llm_act dx, llm_cact dy, llm_cact x, const float *lu, int T,
                    int accumulate) {
    const llm_backend *be = t->be;
    const llm_weight *W = llm_layer_weight(&t->m->layers[l], mod);
    int out = W->rows, in = W->cols, i = l * LLM_N_MODS + mod;
    be->matmul_dx(dx, dy, W, T, accumulate);                                                   // dx (T,in) = dy W
    if (t->gW) llm_be_gemm_act(be, LLM_ACT_A | LLM_ACT_B, 1, 0, out, in, T, 1.0f, dy, out, x, in, 1.0f, t->gW[i], in); // dW += dy^T x
    if (!lora_on(t, mod)) return;
    const llm_lora_ab *p = llm_lora_at(t->lora, l, mod);
    int r = t->r, drop = use_dropout(t);
    float s = t->lora->scale;
    llm_cact xd = x;
    if (drop) {
        dropout(t, l, mod, t->tmp2, x, (size_t)T * in);
        xd = t->tmp2;
    }
    const float *A = t->dA ? t->dA[i] : p->A, *B = t->dB ? t->dB[i] : p->B;
    float *gA = t->dgA ? t->dgA[i] : t->gA[i], *gB = t->dgB ? t->dgB[i] : t->gB[i];
    llm_be_gemm_act(be, LLM_ACT_A, 1, 0, out, r, T, s, dy, out, lu, r, 1.0f, gB, r);          // dB (out,r) += s dy^T lu
    llm_be_gemm_act(be, LLM_ACT_A, 0, 0, T, r, out, s, dy, out, B, r, 0.0f, t->dlu, r);       // dlu (T,r) = s dy B
    llm_be_gemm_act(be, LLM_ACT_B, 1, 0, r, in, T, 1.0f, t->dlu, r, xd, in, 1.0f, gA, in);    // dA (r,in) += dlu^T xd
    if (!drop) {
        llm_be_gemm_act(be, LLM_ACT_C, 0, 0, T, in, r, 1.0f, t->dlu, r, A, in, 1.0f, dx, in); // dx += dlu A
    } else {
        llm_be_gemm_act(be, LLM_ACT_C, 0, 0, T, in, r, 1.0f, t->dlu, r, A, in, 0.0f, t->tmp2, in); // dxd = dlu A
        dropout(t, l, mod, t->tmp2, t->tmp2, (size_t)T * in);                                  // through the mask
        llm_be_add_act(be, dx, t->tmp2, (size_t)T * in);
    }
}

/* ---------------------------------------------------------------- one block */

static void attn_desc(const llm_trainer *t, llm_train_attn *d, int n_seq, acts *a) {
    *d = (llm_train_attn){.n_seq = n_seq, .off = t->off, .len = t->len, .n_heads = t->nh, .n_kv_heads = t->nkv,
                          .head_dim = t->hd, .q = a->q, .k = a->k, .v = a->v, .out = a->att, .lse = a->lse};
}

static void layer_fwd(llm_trainer *t, int l, acts *a, const float *x, float *xo, int T, int n_seq) {
    const llm_backend *be = t->be;
    const llm_config *c = &t->m->cfg;
    const llm_layer *Y = &t->m->layers[l];
    size_t TC = (size_t)T * t->C;
    be->rmsnorm(a->xn1, x, Y->attn_norm, T, t->C, c->norm_eps);         // xn1 (T,C)
    lin_fwd(t, l, LLM_MOD_Q, a->q, a->xn1, a->lu[LLM_MOD_Q], T);        // q (T,qd)
    lin_fwd(t, l, LLM_MOD_K, a->k, a->xn1, a->lu[LLM_MOD_K], T);        // k (T,kvd)
    lin_fwd(t, l, LLM_MOD_V, a->v, a->xn1, a->lu[LLM_MOD_V], T);        // v (T,kvd)
    be->rope(a->q, t->dpos, T, t->nh, t->hd, c->rope_theta);
    be->rope(a->k, t->dpos, T, t->nkv, t->hd, c->rope_theta);
    llm_train_attn d;
    attn_desc(t, &d, n_seq, a);
    be->attention_train(&d);                                            // att (T,qd), lse (T,nh)
    lin_fwd(t, l, LLM_MOD_O, t->tmp, a->att, a->lu[LLM_MOD_O], T);      // tmp (T,C)
    llm_be_copy(be, a->x2, x, TC * sizeof(float));
    be->add(a->x2, t->tmp, TC);                                         // x2 = x + attn
    be->rmsnorm(a->xn2, a->x2, Y->ffn_norm, T, t->C, c->norm_eps);      // xn2 (T,C)
    lin_fwd(t, l, LLM_MOD_GATE, a->g, a->xn2, a->lu[LLM_MOD_GATE], T);  // g (T,H)
    lin_fwd(t, l, LLM_MOD_UP, a->u, a->xn2, a->lu[LLM_MOD_UP], T);      // u (T,H)
    llm_be_copy(be, a->h, a->g, llm_act_nbytes(be, (size_t)T * t->H));
    be->swiglu(a->h, a->u, (size_t)T * t->H);                           // h = silu(g) u
    lin_fwd(t, l, LLM_MOD_DOWN, t->tmp, a->h, a->lu[LLM_MOD_DOWN], T);  // tmp (T,C)
    llm_be_copy(be, xo, a->x2, TC * sizeof(float));
    be->add(xo, t->tmp, TC);                                            // xo = x2 + mlp
}

/* The fp32 residual gradient dx as an activation for the products' backward: dx itself where
 * activations are fp32, else rounded into t->dya. */
static llm_cact dx_act(const llm_trainer *t, int T) {
    if (!t->dya) return t->dx;
    llm_be_f32_to_act(t->be, t->dya, t->dx, (size_t)T * t->C);
    return t->dya;
}

/* t->dx holds dL/d(layer output) on entry and dL/d(layer input) on return. */
static void layer_bwd(llm_trainer *t, int l, acts *a, const float *x, int T, int n_seq) {
    const llm_backend *be = t->be;
    const llm_config *c = &t->m->cfg;
    const llm_layer *Y = &t->m->layers[l];
    // feed-forward block: xo = x2 + down(silu(g) u)
    lin_bwd(t, l, LLM_MOD_DOWN, t->dh, dx_act(t, T), a->h, a->lu[LLM_MOD_DOWN], T, 0); // dh (T,H)
    be->swiglu_backward(t->dg, t->du, t->dh, a->g, a->u, (size_t)T * t->H);           // dg, du (T,H)
    lin_bwd(t, l, LLM_MOD_GATE, t->dxn, t->dg, a->xn2, a->lu[LLM_MOD_GATE], T, 0);    // dxn2 (T,C)
    lin_bwd(t, l, LLM_MOD_UP, t->dxn, t->du, a->xn2, a->lu[LLM_MOD_UP], T, 1);
    be->rmsnorm_backward(t->dx, t->g_fn ? t->g_fn[l] : NULL, t->dxn, a->x2, Y->ffn_norm, T, t->C, c->norm_eps); // dx2
    // attention block: x2 = x + o(attention(rope(q), rope(k), v))
    lin_bwd(t, l, LLM_MOD_O, t->datt, dx_act(t, T), a->att, a->lu[LLM_MOD_O], T, 0);  // datt (T,qd)
    llm_train_attn d;
    attn_desc(t, &d, n_seq, a);
    d.dout = t->datt, d.dq = t->dq, d.dk = t->dk, d.dv = t->dv;
    be->attention_backward(&d);                                                       // dq, dk, dv
    if (!t->dnpos) for (int i = 0; i < T; i++) t->pos[i] = -t->pos[i]; /* the inverse rotation */
    const int *np = t->dnpos ? t->dnpos : t->pos;
    be->rope(t->dq, np, T, t->nh, t->hd, c->rope_theta);
    be->rope(t->dk, np, T, t->nkv, t->hd, c->rope_theta);
    if (!t->dnpos) for (int i = 0; i < T; i++) t->pos[i] = -t->pos[i];
    lin_bwd(t, l, LLM_MOD_Q, t->dxn, t->dq, a->xn1, a->lu[LLM_MOD_Q], T, 0);          // dxn1 (T,C)
    lin_bwd(t, l, LLM_MOD_K, t->dxn, t->dk, a->xn1, a->lu[LLM_MOD_K], T, 1);
    lin_bwd(t, l, LLM_MOD_V, t->dxn, t->dv, a->xn1, a->lu[LLM_MOD_V], T, 1);
    be->rmsnorm_backward(t->dx, t->g_an ? t->g_an[l] : NULL, t->dxn, x, Y->attn_norm, T, t->C, c->norm_eps); // dx
}

/* ---------------------------------------------------------------- the step */

#pragma GCC push_options
#pragma GCC optimize("no-trapping-math") /* vexpf's clamps vectorise; values unchanged */
#include "llm/vexp.h"

/* Cross-entropy of the rows of a logits chunk, split in n_tasks contiguous shares: rl[i] =
 * logsumexp - logit of the target; with backward the row becomes dlogits = (p - onehot) gs
 * (0 for a row without target). Rows are independent: any split gives the same bytes. */
typedef struct {
    float *lg;
    const int *tgt, *rows;
    int V, nr, n_tasks, backward;
    double gs, *rl;
} xent_ctx;

static void xent_task(void *vctx, int task, int worker) {
    (void)worker;
    const xent_ctx *c = vctx;
    int V = c->V, i0 = (int)((long)c->nr * task / c->n_tasks), i1 = (int)((long)c->nr * (task + 1) / c->n_tasks);
    float *e = xmalloc((size_t)V * sizeof *e);
    for (int i = i0; i < i1; i++) {
        float *lr = c->lg + (size_t)i * V;
        int y = c->tgt[c->rows[i]];
        c->rl[i] = 0;
        if (y < 0) { memset(lr, 0, (size_t)V * sizeof(float)); continue; }
        float mx = lr[0];
        for (int v = 1; v < V; v++) if (lr[v] > mx) mx = lr[v];
        for (int v = 0; v < V; v++) e[v] = vexpf(lr[v] - mx); /* vectorised */
        double s = 0;
        for (int v = 0; v < V; v++) s += e[v];
        c->rl[i] = mx + log(s) - lr[y];
        if (!c->backward) continue;
        float k = (float)(c->gs / s);
        for (int v = 0; v < V; v++) lr[v] = e[v] * k; // dlogits = (p - onehot) gs
        lr[y] -= (float)c->gs;
    }
    free(e);
}
#pragma GCC pop_options

/* Device backend: positions, tokens and the adapter's current A, B up; gradients zeroed. */
static void dev_begin(llm_trainer *t, size_t T) {
    const llm_backend *be = t->be;
    int *h = (int *)t->hbuf;
    be->upload(t->dtok, t->tok, T * sizeof(int));
    be->upload(t->dpos, t->pos, T * sizeof(int));
    for (size_t i = 0; i < T; i++) h[i] = -t->pos[i]; /* the inverse rotation of the backward */
    be->upload(t->dnpos, h, T * sizeof(int));
    for (int i = 0; i < t->L * LLM_N_MODS; i++) {
        const llm_lora_ab *p = &t->lora->ab[i];
        if (!p->A) continue;
        size_t na = (size_t)t->r * p->in * sizeof(float), nb = (size_t)p->out * t->r * sizeof(float);
        be->upload(t->dA[i], p->A, na), be->upload(t->dB[i], p->B, nb);
        be->zero(t->dgA[i], na), be->zero(t->dgB[i], nb);
    }
}

/* Device backend: add this micro-batch's adapter gradients into the host ones. */
static void dev_end(llm_trainer *t) {
    for (int i = 0; i < t->L * LLM_N_MODS; i++) {
        const llm_lora_ab *p = &t->lora->ab[i];
        if (!p->A) continue;
        for (int ab = 0; ab < 2; ab++) {
            size_t n = ab ? (size_t)p->out * t->r : (size_t)t->r * p->in;
            float *g = ab ? t->gB[i] : t->gA[i], *tmp = xmalloc(n * sizeof *tmp);
            t->be->download(tmp, ab ? t->dgB[i] : t->dgA[i], n * sizeof *tmp);
            for (size_t k = 0; k < n; k++) g[k] += tmp[k];
            free(tmp);
        }
    }
}

/* Device backend: xent_task's work with be->xent; rl[i] as there. */
static void dev_xent(llm_trainer *t, const int *rows, int nr, int backward, double gs, double *rl) {
    int *tg = (int *)t->hbuf;
    float lf[LOSS_CHUNK];
    for (int i = 0; i < nr; i++) tg[i] = t->tgt[rows[i]];
    t->be->upload(t->dtgt, tg, (size_t)nr * sizeof(int));
    t->be->xent(t->lg, t->dtgt, nr, t->V, (float)gs, backward, t->dloss);
    t->be->download(lf, t->dloss, (size_t)nr * sizeof(float));
    for (int i = 0; i < nr; i++) rl[i] = lf[i];
}

/* Gather (scatter 0: dst row i = src row rows[i]) or scatter (1: dst row rows[i] = src row i)
 * of rows of row_bytes bytes, one copy per run of consecutive row numbers: the loss rows are
 * runs (every token, or each example's answer), and on a GPU each copy is a call (8,192 of
 * them per LLaMA-7B-shape step when copied row by row: 13% of the step on an H100). */
static void copy_rows(const llm_backend *be, void *dst, const void *src, const int *rows, int nr, size_t row_bytes,
                      int scatter) {
    for (int i = 0, j; i < nr; i = j) {
        for (j = i + 1; j < nr && rows[j] == rows[j - 1] + 1; j++) {}
        size_t at = (size_t)rows[i] * row_bytes, n = (size_t)(j - i) * row_bytes;
        if (scatter) llm_be_copy(be, (char *)dst + at, (const char *)src + (size_t)i * row_bytes, n);
        else llm_be_copy(be, (char *)dst + (size_t)i * row_bytes, (const char *)src + at, n);
    }
}

int llm_trainer_run(llm_trainer *t, const llm_example *ex, int n, int backward, float grad_scale,
                    uint64_t dropout_stream, float *logits, double *loss, long *n_targets, char *err, size_t errlen) {
    const llm_backend *be = t->be;
    const llm_config *c = &t->m->cfg;
    int C = t->C, V = t->V, L = t->L;
    size_t T = 0;
    long ntg = 0;
    for (int i = 0; i < n; i++) {
        if (ex[i].n < 0 || ex[i].n > c->max_seq_len) {
            snprintf(err, errlen, "example of %d tokens exceeds the context of %d", ex[i].n, c->max_seq_len);
            return -1;
        }
        for (int j = 0; j < ex[i].n; j++)
            if (ex[i].tok[j] < 0 || ex[i].tok[j] >= V) {
                snprintf(err, errlen, "token id %d outside the vocabulary [0, %d)", ex[i].tok[j], V);
                return -1;
            }
        T += (size_t)ex[i].n;
    }
    *loss = 0;
    if (n_targets) *n_targets = 0;
    if (T == 0) return 0;
    ensure(t, T);
    if (n > t->cap_seq) {
        t->cap_seq = n;
        t->off = xrealloc(t->off, (size_t)n * sizeof(int));
        t->len = xrealloc(t->len, (size_t)n * sizeof(int));
    }
    size_t row = 0;
    for (int i = 0; i < n; i++) {
        t->off[i] = (int)row, t->len[i] = ex[i].n;
        int from = ex[i].loss_from < 1 ? 1 : ex[i].loss_from;
        for (int j = 0; j < ex[i].n; j++, row++) {
            t->tok[row] = ex[i].tok[j];
            t->pos[row] = j;
            t->tgt[row] = j + 1 < ex[i].n && j + 1 >= from ? ex[i].tok[j + 1] : -1;
            if (t->tgt[row] >= 0) ntg++;
        }
    }
    t->stream = dropout_stream;
    int nT = (int)T;
    if (be->device) dev_begin(t, T);

    // forward
    be->embed(t->xin[0], t->m->embed, t->dtok, nT, C); // x (T,C)
    for (int l = 0; l < L; l++) layer_fwd(t, l, &t->A[t->o.recompute ? 0 : l], t->xin[l], t->xin[l + 1], nT, n);
    be->rmsnorm(t->xf, t->xin[L], t->m->norm, nT, C, c->norm_eps); // xf (T,C)

    // classifier and loss, LOSS_CHUNK rows at a time: only target rows unless logits are wanted
    if (backward) llm_be_zero(be, t->dx, T * C * sizeof(float)); /* dL/dxf, scattered by row */
    float *g_head = t->g_head ? t->g_head : t->g_embed;     /* tied: the embedding's gradient */
    double sum = 0, gs = ntg > 0 ? (double)grad_scale / (double)ntg : 0;
    int rows[LOSS_CHUNK];
    double rl[LOSS_CHUNK];
    size_t r0 = 0;
    while (r0 < T) {
        int nr = 0;
        for (; r0 < T && nr < LOSS_CHUNK; r0++)
            if (logits || t->tgt[r0] >= 0) rows[nr++] = (int)r0;
        if (!nr) break;
        copy_rows(be, t->xs, t->xf, rows, nr, llm_act_nbytes(be, (size_t)C), 0); // xs (nr,C) = xf[rows]
        llm_be_matmul_f32(be, t->lg, t->xs, &t->m->lm_head, nr); // lg (nr,V), fp32
        if (logits)
            for (int i = 0; i < nr; i++) llm_be_download(be, logits + (size_t)rows[i] * V, t->lg + (size_t)i * V, (size_t)V * sizeof(float));
        int nth = t->m->threads > 1 ? t->m->threads : 1, any = 0;
        if (be->xent) dev_xent(t, rows, nr, backward, gs, rl); /* the same on the device */
        else {
            xent_ctx xc = {t->lg, t->tgt, rows, V, nr, nr < nth ? nr : nth, backward, gs, rl};
            parallel_for(xc.n_tasks, nth, xent_task, &xc);
        }
        for (int i = 0; i < nr; i++) // in row order: the sum does not depend on the threads
            if (t->tgt[rows[i]] >= 0) any = 1, sum += rl[i];
        if (!backward || !any) continue;
        llm_be_matmul_dx_f32(be, t->dxs, t->lg, &t->m->lm_head, nr, 0); // dxs (nr,C) = dlogits W, fp32
        copy_rows(be, t->dx, t->dxs, rows, nr, (size_t)C * sizeof(float), 1); // dx[rows] = dxs (nr,C)
        if (g_head) llm_be_gemm_act(be, LLM_ACT_B, 1, 0, V, C, nr, 1.0f, t->lg, V, t->xs, C, 1.0f, g_head, C); // dW (V,C) += dlogits^T xs
    }
    *loss = ntg > 0 ? sum / (double)ntg : 0;
    if (n_targets) *n_targets = ntg;
    if (!backward) return 0;

    // backward
    llm_be_f32_to_act(be, t->dxn, t->dx, T * C); /* dL/dxf, the final norm's output: an activation gradient */
    llm_be_zero(be, t->dx, T * C * sizeof(float));
    be->rmsnorm_backward(t->dx, t->g_norm, t->dxn, t->xin[L], t->m->norm, nT, C, c->norm_eps); // dL/dx_L
    for (int l = L - 1; l >= 0; l--) {
        acts *a = &t->A[t->o.recompute ? 0 : l];
        if (t->o.recompute) layer_fwd(t, l, a, t->xin[l], t->xin[l + 1], nT, n); /* same values again */
        layer_bwd(t, l, a, t->xin[l], nT, n);
    }
    if (be->device) dev_end(t);
    if (t->g_embed) // embedding: scatter-add each row's gradient (in row order: deterministic)
        for (size_t i = 0; i < T; i++) {
            float *g = t->g_embed + (size_t)t->tok[i] * C;
            const float *d = t->dx + i * C;
            for (int k = 0; k < C; k++) g[k] += d[k];
        }
    return 0;
}
