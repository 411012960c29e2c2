/* model.c - a LLaMA model in memory and its batched forward pass (llama2.c style): weight
 * helpers (int8 quantisation, Meta -> Hugging Face q/k row order), the model's lifetime on a
 * host or device backend, the attached adapter, sequences with their KV cache (forks share a
 * parent's positions), the workspace and llm_forward. The loaders and llm_save_hf are in
 * model_load.c, llm_decode_step and its graphs in model_graph.c; model_impl.h is what the
 * three share.
 */
#include "llm/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/err.h"
#include "llm/backend_cuda.h"
#include "llm/lora.h"
#include "llm/model_impl.h"

/* ---------------------------------------------------------------- weights */

void llm_weight_quantize(llm_weight *w) {
    if (!w->f) return;
    size_t R = (size_t)w->rows, K = (size_t)w->cols;
    w->q = xmalloc(R * K);
    w->scale = xmalloc(R * sizeof *w->scale);
    for (size_t r = 0; r < R; r++) {
        const float *row = w->f + r * K;
        float amax = 0;
        for (size_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(row[k]));
        float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0;
        w->scale[r] = s;
        for (size_t k = 0; k < K; k++) w->q[r * K + k] = (int8_t)lrintf(row[k] * inv);
    }
    free(w->f);
    w->f = NULL;
}

void llm_permute_meta_to_hf(float *w, int n_heads, int head_dim, int cols) {
    size_t rowb = (size_t)cols * sizeof *w;
    float *tmp = xmalloc((size_t)head_dim * rowb);
    for (int h = 0; h < n_heads; h++) {
        float *base = w + (size_t)h * head_dim * cols;
        for (int j = 0; j < head_dim / 2; j++) {
            memcpy(tmp + (size_t)j * cols, base + (size_t)(2 * j) * cols, rowb);
            memcpy(tmp + (size_t)(head_dim / 2 + j) * cols, base + (size_t)(2 * j + 1) * cols, rowb);
        }
        memcpy(base, tmp, (size_t)head_dim * rowb);
    }
    free(tmp);
}

static void lora_dev_free(llm_model *m);

void mdl_mfree(const llm_model *m, void *p) {
    if (m->be->device) m->be->free(p);
    else free(p);
}

static void weight_free(const llm_model *m, llm_weight *w) {
    if (w->dev && m->be->weight_release) m->be->weight_release(w); /* cpu-bf16's blocked copy */
    llm_cpu_weight_release(w);                                     /* the CPU's packed copy */
    mdl_mfree(m, w->f);
    mdl_mfree(m, w->q);
    mdl_mfree(m, w->scale);
    memset(w, 0, sizeof *w);
}

llm_model *mdl_alloc(const llm_config *c) {
    llm_model *m = xcalloc(1, sizeof *m);
    m->cfg = *c;
    m->be = llm_backend_cpu();
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    return m;
}

/* After loading: tie lm_head, quantise, set threads. Already quantised weights have no .f:
 * llm_weight_quantize leaves them. */
void mdl_finish(llm_model *m, const llm_load_opts *o) {
    if (!m->lm_head.f) {
        m->lm_head = (llm_weight){.rows = m->cfg.vocab_size, .cols = m->cfg.dim, .f = m->embed};
        m->cfg.tie_embeddings = 1;
    }
    if (o && o->int8) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            llm_layer *L = &m->layers[l];
            llm_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (int i = 0; i < 7; i++) llm_weight_quantize(ws[i]);
        }
        m->int8 = 1; /* embeddings, norms and lm_head stay fp32 (as LLM.int8 leaves them) */
    }
    llm_set_threads(m, o && o->threads > 0 ? o->threads : 0);
}

void llm_set_threads(llm_model *m, int n) {
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    m->threads = n;
    m->be->set_threads(n);
}

llm_weight *llm_layer_weight(llm_layer *Y, int mod) {
    llm_weight *ws[] = {&Y->wq, &Y->wk, &Y->wv, &Y->wo, &Y->w_gate, &Y->w_up, &Y->w_down};
    return mod >= 0 && mod < LLM_N_MODS ? ws[mod] : NULL;
}

int llm_set_adapter(llm_model *m, llm_lora *a, char *err, size_t errlen) {
    if (a) {
        if (a->n_layers != m->cfg.n_layers) {
            snprintf(err, errlen, "adapter has %d layers, the model %d", a->n_layers, m->cfg.n_layers);
            return -1;
        }
        for (int l = 0; l < a->n_layers; l++)
            for (int mod = 0; mod < LLM_N_MODS; mod++) {
                const llm_weight *w = llm_layer_weight(&m->layers[l], mod);
                const llm_lora_ab *p = llm_lora_at(a, l, mod);
                if (p->A && (p->in != w->cols || p->out != w->rows)) {
                    snprintf(err, errlen, "adapter layer %d %s is (%d, %d), the model's weight (%d, %d)", l,
                             llm_mod_name(mod), p->out, p->in, w->rows, w->cols);
                    return -1;
                }
            }
    }
    mdl_dstep_drop_all(m); /* graphs recorded the old adapter's products */
    lora_dev_free(m);
    if (m->lora && m->lora != a) llm_lora_free(m->lora);
    m->lora = a;
    if (a && m->be->device) { /* device copies of A and B for the on-the-fly products */
        const llm_backend *be = m->be;
        size_t n = (size_t)a->n_layers * LLM_N_MODS;
        m->lora_dev = xcalloc(2 * n, sizeof *m->lora_dev);
        for (size_t i = 0; i < n; i++) {
            const llm_lora_ab *p = &a->ab[i];
            if (!p->A) continue;
            size_t na = (size_t)a->r * p->in * sizeof(float), nb = (size_t)p->out * a->r * sizeof(float);
            m->lora_dev[2 * i] = be->alloc(na);
            m->lora_dev[2 * i + 1] = be->alloc(nb);
            be->upload(m->lora_dev[2 * i], p->A, na);
            be->upload(m->lora_dev[2 * i + 1], p->B, nb);
        }
    }
    return 0;
}

static void lora_dev_free(llm_model *m) {
    if (m->lora_dev && m->lora)
        for (size_t i = 0; i < 2 * (size_t)m->lora->n_layers * LLM_N_MODS; i++) m->be->free(m->lora_dev[i]);
    free(m->lora_dev);
    m->lora_dev = NULL;
    if (m->lora_scratch_dev) m->be->free(m->lora_scratch_dev);
    m->lora_scratch_dev = NULL;
    m->lora_scratch_dev_cap = 0;
}

/* ---------------------------------------------------------------- backends */

const llm_backend *llm_backend_named(const char *name, char *err, size_t errlen) {
    if (!name || strcmp(name, "cpu") == 0) return llm_backend_cpu();
    if (strcmp(name, "cpu-bf16") == 0) {
        char e2[512];
        const llm_backend *be = llm_backend_cpu_bf16(e2, sizeof e2);
        if (!be) snprintf(err, errlen, "%s", e2);
        return be;
    }
    if (strcmp(name, "cuda") == 0) {
        char e2[512];
        const llm_backend *be = llm_backend_cuda(e2, sizeof e2);
        if (!be) snprintf(err, errlen, "--device cuda: %s", e2);
        return be;
    }
    snprintf(err, errlen, "unknown device '%s' (expected cpu, cpu-bf16 or cuda)", name);
    return NULL;
}

/* A host array of n bytes into backend memory (the host copy is freed). */
static void *to_dev(const llm_backend *be, void *h, size_t n) {
    if (!h) return NULL;
    void *d = be->alloc(n);
    be->upload(d, h, n);
    free(h);
    return d;
}

static void weight_to_dev(const llm_backend *be, llm_weight *w) {
    size_t n = (size_t)w->rows * w->cols;
    w->f = to_dev(be, w->f, n * sizeof(float));
    w->q = to_dev(be, w->q, n);
    w->scale = to_dev(be, w->scale, (size_t)w->rows * sizeof(float));
}

int llm_model_to_backend(llm_model *m, const llm_backend *be, char *err, size_t errlen) {
    if (m->be == be) return 0;
    if (!be->device) { /* a host model onto another host backend (cpu-bf16): same memory */
        if (!m->be->device) { m->be = be; llm_set_threads(m, m->threads); }
        return 0;
    }
    if (m->be->device) { snprintf(err, errlen, "the model is already on the %s device", m->be->name); return -1; }
    size_t C = (size_t)m->cfg.dim, V = (size_t)m->cfg.vocab_size;
    mdl_workspace_free(m, m->ws);
    m->ws = NULL;
    int tied = m->lm_head.f == m->embed;
    llm_cpu_weight_release(&m->lm_head); /* host copies the device never reads */
    for (int l = 0; l < m->cfg.n_layers; l++) {
        llm_layer *Y = &m->layers[l];
        for (int mod = 0; mod < LLM_N_MODS; mod++) {
            llm_cpu_weight_release(llm_layer_weight(Y, mod));
            weight_to_dev(be, llm_layer_weight(Y, mod));
        }
        Y->attn_norm = to_dev(be, Y->attn_norm, C * sizeof(float));
        Y->ffn_norm = to_dev(be, Y->ffn_norm, C * sizeof(float));
    }
    m->embed = to_dev(be, m->embed, V * C * sizeof(float));
    m->norm = to_dev(be, m->norm, C * sizeof(float));
    if (tied) m->lm_head.f = m->embed;
    else weight_to_dev(be, &m->lm_head);
    m->be = be;
    llm_set_threads(m, m->threads);
    if (m->lora) { /* make the device copies of an attached adapter */
        llm_lora *a = m->lora;
        m->lora = NULL;
        if (llm_set_adapter(m, a, err, errlen) != 0) return -1;
    }
    return 0;
}

void llm_free(llm_model *m) {
    if (!m) return;
    mdl_dstep_free(m);
    for (int l = 0; m->layers && l < m->cfg.n_layers; l++) {
        llm_layer *Y = &m->layers[l];
        llm_weight *ws[] = {&Y->wq, &Y->wk, &Y->wv, &Y->wo, &Y->w_gate, &Y->w_up, &Y->w_down};
        for (int i = 0; i < 7; i++) weight_free(m, ws[i]);
        mdl_mfree(m, Y->attn_norm);
        mdl_mfree(m, Y->ffn_norm);
    }
    free(m->layers);
    if (m->lm_head.f == m->embed) m->lm_head.f = NULL;
    weight_free(m, &m->lm_head);
    mdl_mfree(m, m->embed);
    mdl_mfree(m, m->norm);
    if (m->tok) tok_free(m->tok);
    lora_dev_free(m);
    llm_lora_free(m->lora);
    mdl_workspace_free(m, m->ws);
    free(m);
}

/* ---------------------------------------------------------------- sequences */

llm_seq *llm_seq_new(llm_model *m) {
    llm_seq *s = xcalloc(1, sizeof *s);
    s->m = m;
    s->refs = 1;
    s->k = xcalloc((size_t)m->cfg.n_layers, sizeof *s->k);
    s->v = xcalloc((size_t)m->cfg.n_layers, sizeof *s->v);
    return s;
}

llm_seq *llm_seq_fork(llm_seq *parent) {
    llm_seq *s = llm_seq_new(parent->m);
    s->parent = parent;
    parent->refs++;
    s->start = parent->start + parent->n;
    if (parent->logits) {
        s->logits = xmalloc((size_t)parent->m->cfg.vocab_size * sizeof *s->logits);
        memcpy(s->logits, parent->logits, (size_t)parent->m->cfg.vocab_size * sizeof *s->logits);
    }
    return s;
}

void llm_seq_free(llm_seq *s) {
    while (s && --s->refs == 0) {
        llm_seq *p = s->parent;
        for (int l = 0; l < s->m->cfg.n_layers; l++) { mdl_mfree(s->m, s->k[l]); mdl_mfree(s->m, s->v[l]); }
        free(s->k);
        free(s->v);
        free(s->logits);
        free(s);
        s = p;
    }
}

int llm_seq_len(const llm_seq *s) { return s->start + s->n; }
const float *llm_seq_logits(const llm_seq *s) { return s->logits; }

/* Reallocate the own cache of s to cap positions (cap > s->cap), keeping those held. */
static void seq_realloc(llm_seq *s, int cap) {
    size_t kvd = (size_t)s->m->cfg.n_kv_heads * s->m->cfg.head_dim;
    const llm_backend *be = s->m->be;
    size_t row = llm_act_nbytes(be, kvd); /* one position of one layer's keys (or values) */
    for (int l = 0; l < s->m->cfg.n_layers; l++) {
        if (be->device) { /* no realloc in device memory: allocate, copy the positions held, free */
            void *k = be->alloc((size_t)cap * row), *v = be->alloc((size_t)cap * row);
            if (s->n) {
                be->copy(k, s->k[l], (size_t)s->n * row);
                be->copy(v, s->v[l], (size_t)s->n * row);
            }
            be->free(s->k[l]), be->free(s->v[l]);
            s->k[l] = k, s->v[l] = v;
            continue;
        }
        s->k[l] = xrealloc(s->k[l], (size_t)cap * row);
        s->v[l] = xrealloc(s->v[l], (size_t)cap * row);
    }
    s->cap = cap;
}

void mdl_seq_reserve(llm_seq *s, int need) {
    if (need <= s->cap) return;
    int cap = s->cap ? s->cap : 16;
    while (cap < need) cap *= 2;
    seq_realloc(s, cap);
}

void llm_seq_reserve(llm_seq *s, int total) {
    int need = total - s->start;
    if (need > s->cap) seq_realloc(s, need);
}

/* Spans of layer l covering positions [0, limit) of s: ancestors first. */
int mdl_seq_spans(const llm_seq *s, int l, int limit, llm_kv_span *out, int n) {
    if (s->parent) n = mdl_seq_spans(s->parent, l, s->start < limit ? s->start : limit, out, n);
    int own = limit - s->start;
    if (own > s->n) own = s->n;
    if (own > 0) out[n++] = (llm_kv_span){s->k[l], s->v[l], own};
    return n;
}

int mdl_seq_depth(const llm_seq *s) { return s->parent ? 1 + mdl_seq_depth(s->parent) : 1; }

/* ---------------------------------------------------------------- forward */


void mdl_workspace_free(const llm_model *m, llm_workspace *w) {
    if (!w) return;
    mdl_mfree(m, w->x), mdl_mfree(m, w->xb), mdl_mfree(m, w->q), mdl_mfree(m, w->k), mdl_mfree(m, w->v), mdl_mfree(m, w->att);
    mdl_mfree(m, w->h1), mdl_mfree(m, w->h3), mdl_mfree(m, w->tok), mdl_mfree(m, w->pos), mdl_mfree(m, w->xs), mdl_mfree(m, w->logits);
    mdl_mfree(m, w->xsn);
    if (m->be->device) free(w->tok_h), free(w->pos_h), free(w->logits_h);
    free(w);
}

/* Grow a workspace buffer (contents not kept): host realloc, or the backend's memory. */
static void *ws_grow(const llm_model *m, void *p, size_t bytes) {
    if (!m->be->device) return xrealloc(p, bytes);
    m->be->free(p);
    return m->be->alloc(bytes);
}

llm_workspace *mdl_ws_get_in(llm_model *m, llm_workspace **pw, size_t T, size_t R) {
    if (!*pw) *pw = xcalloc(1, sizeof **pw);
    llm_workspace *w = *pw;
    const llm_config *c = &m->cfg;
    size_t C = (size_t)c->dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim,
           H = (size_t)c->hidden_dim;
    int dev = m->be->device;
    size_t ab = (size_t)m->be->act_bytes;
    if (T > w->cap_T) {
        w->cap_T = T;
        w->x = ws_grow(m, w->x, T * C * 4), w->xb = ws_grow(m, w->xb, T * (C > qd ? C : qd) * ab);
        w->q = ws_grow(m, w->q, T * qd * ab), w->att = ws_grow(m, w->att, T * qd * ab);
        w->k = ws_grow(m, w->k, T * kvd * ab), w->v = ws_grow(m, w->v, T * kvd * ab);
        w->h1 = ws_grow(m, w->h1, T * H * ab), w->h3 = ws_grow(m, w->h3, T * H * ab);
        w->tok = ws_grow(m, w->tok, T * sizeof(int)), w->pos = ws_grow(m, w->pos, T * sizeof(int));
        if (dev) w->tok_h = xrealloc(w->tok_h, T * sizeof(int)), w->pos_h = xrealloc(w->pos_h, T * sizeof(int));
        else w->tok_h = w->tok, w->pos_h = w->pos;
    }
    if (R > w->cap_R) {
        w->cap_R = R;
        w->xs = ws_grow(m, w->xs, R * C * 4), w->xsn = ws_grow(m, w->xsn, R * C * ab);
        w->logits = ws_grow(m, w->logits, R * (size_t)c->vocab_size * 4);
        w->logits_h = dev ? xrealloc(w->logits_h, R * (size_t)c->vocab_size * 4) : w->logits;
    }
    return w;
}

static llm_workspace *ws_get(llm_model *m, size_t T, size_t R) { return mdl_ws_get_in(m, &m->ws, T, R); }

/* Room for T rows of the adapter's (T, r) product on the device (mdl_lin below). */
void mdl_lora_scratch_reserve(llm_model *m, size_t T) {
    size_t need = T * (size_t)m->lora->r;
    if (need > m->lora_scratch_dev_cap) {
        m->be->free(m->lora_scratch_dev);
        m->lora_scratch_dev = m->be->alloc(need * sizeof(float));
        m->lora_scratch_dev_cap = need;
    }
}

/* y = x W^T, plus the adapter's s (x A^T) B^T when one is attached (one test when none). */
void mdl_lin(llm_model *m, int l, int mod, llm_act y, llm_cact x, const llm_weight *W, int T) {
    llm_be_matmul_infer(m->be, y, x, W, T);
    if (!m->lora) return;
    if (!m->lora_dev) {
        llm_lora_apply(m->lora, m->be, l, mod, y, x, T);
        return;
    }
    /* device: llm_lora_apply's two products on the device copies of A and B */
    const llm_lora *a = m->lora;
    const llm_lora_ab *p = llm_lora_at(a, l, mod);
    size_t i = (size_t)l * LLM_N_MODS + (size_t)mod;
    if (!p->A || T <= 0) return;
    mdl_lora_scratch_reserve(m, (size_t)T);
    /* fp32 A, B and (T, r) product against activations x and y */
    llm_be_gemm_act(m->be, LLM_ACT_A, 0, 1, T, a->r, p->in, 1.0f, x, p->in, m->lora_dev[2 * i], p->in, 0.0f,
                    m->lora_scratch_dev, a->r);
    llm_be_gemm_act(m->be, LLM_ACT_C, 0, 1, T, p->out, a->r, a->scale, m->lora_scratch_dev, a->r,
                    m->lora_dev[2 * i + 1], a->r, 1.0f, y, p->out);
}

int llm_forward(llm_model *m, llm_batch *b, int nb, char *err, size_t errlen) {
    const llm_config *c = &m->cfg;
    const llm_backend *be = m->be;
    int C = c->dim, H = c->hidden_dim, V = c->vocab_size, hd = c->head_dim;
    int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    size_t T = 0, R = 0;
    for (int i = 0; i < nb; i++) {
        if (!b[i].seq || b[i].n < 0 || (b[i].n > 0 && !b[i].tokens) || b[i].seq->m != m) { snprintf(err, errlen, "bad batch item %d", i); return -1; }
        for (int j = 0; j < i; j++)
            if (b[j].seq == b[i].seq) { snprintf(err, errlen, "sequence given twice in one batch"); return -1; }
        if (llm_seq_len(b[i].seq) + b[i].n > c->max_seq_len) {
            snprintf(err, errlen, "sequence of %d tokens exceeds the context of %d", llm_seq_len(b[i].seq) + b[i].n, c->max_seq_len);
            return -1;
        }
        for (int t = 0; t < b[i].n; t++)
            if (b[i].tokens[t] < 0 || b[i].tokens[t] >= V) {
                snprintf(err, errlen, "token id %d outside the vocabulary [0, %d)", b[i].tokens[t], V);
                return -1;
            }
        T += (size_t)b[i].n;
        if (b[i].n > 0) R += b[i].logits == LLM_LOGITS_ALL ? (size_t)b[i].n : b[i].logits == LLM_LOGITS_LAST ? 1 : 0;
    }
    if (T == 0) return 0;
    llm_workspace *w = ws_get(m, T, R);
    int max_spans = 0;
    size_t t0 = 0;
    for (int i = 0; i < nb; i++) {
        llm_seq *s = b[i].seq;
        mdl_seq_reserve(s, s->n + b[i].n);
        for (int t = 0; t < b[i].n; t++) {
            w->tok_h[t0 + (size_t)t] = b[i].tokens[t];
            w->pos_h[t0 + (size_t)t] = llm_seq_len(s) + t;
        }
        t0 += (size_t)b[i].n;
        int d = mdl_seq_depth(s);
        if (d > max_spans) max_spans = d;
    }
    llm_attn_item *items = xmalloc((size_t)nb * sizeof *items);
    llm_kv_span *spans = xmalloc((size_t)nb * (size_t)max_spans * sizeof *spans);
    int nT = (int)T;
    llm_be_upload(be, w->tok, w->tok_h, T * sizeof(int));
    llm_be_upload(be, w->pos, w->pos_h, T * sizeof(int));

    be->embed(w->x, m->embed, w->tok, nT, C); // x (T,C)
    for (int l = 0; l < c->n_layers; l++) {
        const llm_layer *Y = &m->layers[l];
        // attention block
        be->rmsnorm(w->xb, w->x, Y->attn_norm, nT, C, c->norm_eps); // xb (T,C)
        mdl_lin(m, l, LLM_MOD_Q, w->q, w->xb, &Y->wq, nT);             // q (T,qd)
        mdl_lin(m, l, LLM_MOD_K, w->k, w->xb, &Y->wk, nT);                       // k (T,kvd)
        mdl_lin(m, l, LLM_MOD_V, w->v, w->xb, &Y->wv, nT);                       // v (T,kvd)
        be->rope(w->q, w->pos, nT, c->n_heads, hd, c->rope_theta);
        be->rope(w->k, w->pos, nT, c->n_kv_heads, hd, c->rope_theta);
        t0 = 0;
        int ni = 0;
        for (int i = 0; i < nb; i++) {
            llm_seq *s = b[i].seq;
            if (b[i].n == 0) continue;
            // append this layer's keys and values to the sequence's cache
            size_t kvn = llm_act_nbytes(be, (size_t)b[i].n * kvd);
            llm_be_copy(be, llm_act_at(be, s->k[l], (size_t)s->n * kvd), llm_act_at(be, w->k, t0 * kvd), kvn);
            llm_be_copy(be, llm_act_at(be, s->v[l], (size_t)s->n * kvd), llm_act_at(be, w->v, t0 * kvd), kvn);
            s->n += b[i].n; /* visible to seq_spans; undone below until the last layer */
            llm_kv_span *sp = spans + (size_t)ni * max_spans;
            int ns = mdl_seq_spans(s, l, llm_seq_len(s), sp, 0);
            s->n -= b[i].n;
            items[ni++] = (llm_attn_item){.out = llm_act_at(be, w->att, t0 * qd), .q = llm_act_at(be, w->q, t0 * qd), .T = b[i].n,
                                          .pos = w->pos + t0, .spans = sp, .n_spans = ns};
            t0 += (size_t)b[i].n;
        }
        be->attention(items, ni, c->n_heads, c->n_kv_heads, hd); // att (T,qd)
        mdl_lin(m, l, LLM_MOD_O, w->xb, w->att, &Y->wo, nT);                 // xb (T,C)
        be->add(w->x, w->xb, T * (size_t)C);                     // residual
        // feed-forward block (SwiGLU)
        be->rmsnorm(w->xb, w->x, Y->ffn_norm, nT, C, c->norm_eps); // xb (T,C)
        mdl_lin(m, l, LLM_MOD_GATE, w->h1, w->xb, &Y->w_gate, nT);                  // h1 (T,H)
        mdl_lin(m, l, LLM_MOD_UP, w->h3, w->xb, &Y->w_up, nT);                    // h3 (T,H)
        be->swiglu(w->h1, w->h3, T * (size_t)H);                   // h1 = silu(h1) * h3
        mdl_lin(m, l, LLM_MOD_DOWN, w->xb, w->h1, &Y->w_down, nT);                  // xb (T,C)
        be->add(w->x, w->xb, T * (size_t)C);                       // residual
    }
    for (int i = 0; i < nb; i++) b[i].seq->n += b[i].n;
    free(items);
    free(spans);

    // final norm and classifier, only for the rows whose logits are wanted
    if (R > 0) {
        size_t r = 0;
        t0 = 0;
        for (int i = 0; i < nb; i++) {
            if (b[i].n > 0 && b[i].logits == LLM_LOGITS_ALL) { /* consecutive rows: one copy */
                llm_be_copy(be, w->xs + r * C, w->x + t0 * C, (size_t)b[i].n * C * 4);
                r += (size_t)b[i].n;
            } else if (b[i].n > 0 && b[i].logits == LLM_LOGITS_LAST)
                llm_be_copy(be, w->xs + r++ * C, w->x + (t0 + (size_t)b[i].n - 1) * C, (size_t)C * 4);
            t0 += (size_t)b[i].n;
        }
        be->rmsnorm(w->xsn, w->xs, m->norm, (int)R, C, c->norm_eps);        // xsn (R,C)
        if (be->matmul_infer) be->matmul_infer(w->logits, w->xsn, &m->lm_head, (int)R); // logits (R,V), fp32
        else llm_be_matmul_f32(be, w->logits, w->xsn, &m->lm_head, (int)R);
        llm_be_download(be, w->logits_h, w->logits, R * (size_t)V * 4);
        r = 0;
        for (int i = 0; i < nb; i++) {
            if (b[i].n == 0 || b[i].logits == LLM_LOGITS_NONE) continue;
            size_t rows = b[i].logits == LLM_LOGITS_ALL ? (size_t)b[i].n : 1;
            if (b[i].out) memcpy(b[i].out, w->logits_h + r * V, rows * V * 4);
            llm_seq *s = b[i].seq;
            if (!s->logits) s->logits = xmalloc((size_t)V * 4);
            memcpy(s->logits, w->logits_h + (r + rows - 1) * V, (size_t)V * 4);
            r += rows;
        }
    }
    for (int i = 0; i < nb; i++) /* logits not asked for: the old ones no longer follow the last position */
        if (b[i].n > 0 && b[i].logits == LLM_LOGITS_NONE && b[i].seq->logits) {
            free(b[i].seq->logits);
            b[i].seq->logits = NULL;
        }
    return 0;
}

