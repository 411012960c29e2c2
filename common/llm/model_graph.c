/* model_graph.c - llm_decode_step: one decode step of B single-token sequences, either as
 * llm_forward (graphs off, the default and the only way on the CPU) or with fixed buffers so
 * that a device backend can capture the step's launches as a graph once and replay it for
 * every later step with the same key (ITREK_CUDA_GRAPHS=1 or llm_decode_graphs). The launches
 * are llm_forward's, in its order, so the logits are the same bit for bit; how the buffers are
 * kept fixed is described below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "llm/lora.h"
#include "llm/model.h"
#include "llm/model_impl.h"

/* llm_decode_step with graphs on: a step of B single-token sequences issues the launches of
 * llm_forward (same kernels, same order, T = B), with every pointer fixed for a given key so
 * that the launches can be captured once and replayed:
 *   - its own workspace d->w (llm_forward's may grow under it), reallocated only for a larger
 *     B (d->gen counts those; every graph is dropped then);
 *   - token ids and positions uploaded into w->tok / w->pos before the launch, not inside it;
 *   - the KV append a kernel (be->kv_append) writing row pos[b] - start[b] of each cache,
 *     instead of copies whose destination moves every step;
 *   - attention descriptors packed once (be->attn_pack) into a device buffer of the key; they
 *     do not change from step to step because the own span of each sequence is given with
 *     its capacity as length: the kernel stops at the query's position (read from w->pos),
 *     so it visits the same keys as llm_forward, whose span ends there;
 *   - no allocation inside: the adapter's scratch is reserved for B rows before, and the
 *     backend's scratch has its size from the run without a graph that precedes every
 *     capture (a capture that would still have to grow one fails and the step runs without).
 * The key is the host image of that device buffer (every cache pointer, capacity, the
 * parents' spans, the workspace rows) with B, d->gen and the adapter's pointers in front: a
 * step whose image equals a stored key replays its graph; otherwise it runs without one and
 * stores the key (the next equal step captures). A sequence that outgrows its capacity
 * (generate.c reserves prompt + max_new up front, so only callers that do not), a finished
 * sequence (B shrinks) or a new one gives a new key. The backend refuses a graph whose
 * scratch buffers were reallocated since (graph_launch -1): captured again. */

#define DG_MAX 4 /* keys kept per model, the least recently used one replaced */

typedef struct {
    long B, n_spans;
    unsigned long gen;
    const void *lora, *lora_dev, *lora_scratch;
    size_t lora_cap;
} dg_head;

typedef struct {
    int B, n_spans;             /* spans of one layer's descriptor (every layer has as many) */
    size_t att_stride;          /* layer l's attention descriptor at l * att_stride */
    size_t off_kv, kv_stride;   /* layer l's kdst[B], vdst[B] at off_kv + l * kv_stride */
    size_t off_start, n;        /* start[B] (int), the block's size */
} dg_layout;

typedef struct {
    unsigned char *key; /* dg_head (padded to 16 bytes), then the block as uploaded */
    size_t key_n;
    void *dev;          /* the block in device memory */
    void *exec;         /* the captured step; NULL: the key was seen once, not captured yet */
    unsigned long used;
} dg_entry;

struct llm_dstep {
    int on;
    llm_workspace *w;
    unsigned long gen, clock;
    dg_entry e[DG_MAX];
    unsigned char *key; /* the current step's key, built on the host */
    size_t key_cap;
    long n_eager, n_capture, n_replay;
};

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static int graphs_supported(const llm_backend *be) {
    return be->device && be->graph_begin && be->graph_end && be->graph_launch && be->graph_free && be->kv_append &&
           be->attn_pack && be->attention_packed;
}

static struct llm_dstep *dstep_get(llm_model *m) {
    if (!m->dstep) {
        m->dstep = xcalloc(1, sizeof *m->dstep);
        const char *e = getenv("ITREK_CUDA_GRAPHS");
        m->dstep->on = e && strcmp(e, "1") == 0; /* off by default: not yet measured on a device */
    }
    return m->dstep;
}

static void dg_entry_drop(llm_model *m, dg_entry *e) {
    if (e->exec) m->be->graph_free(e->exec);
    if (e->dev) m->be->free(e->dev);
    free(e->key);
    memset(e, 0, sizeof *e);
}

void mdl_dstep_drop_all(llm_model *m) {
    if (!m->dstep) return;
    for (int i = 0; i < DG_MAX; i++) dg_entry_drop(m, &m->dstep->e[i]);
}

void mdl_dstep_free(llm_model *m) {
    if (!m->dstep) return;
    mdl_dstep_drop_all(m);
    mdl_workspace_free(m, m->dstep->w);
    free(m->dstep->key);
    free(m->dstep);
    m->dstep = NULL;
}

int llm_decode_graphs(llm_model *m, int on) {
    struct llm_dstep *d = dstep_get(m);
    if (on >= 0) d->on = on != 0;
    return d->on && graphs_supported(m->be);
}

void llm_decode_graph_stats(const llm_model *m, long *eager, long *captured, long *replayed) {
    const struct llm_dstep *d = m->dstep;
    if (eager) *eager = d ? d->n_eager : 0;
    if (captured) *captured = d ? d->n_capture : 0;
    if (replayed) *replayed = d ? d->n_replay : 0;
}

/* Layer l's attention items of the step: query row i of w, position w->pos[i], spans of the
 * ancestors as llm_forward gives them and the own span at its capacity (see above). sp holds
 * maxd spans per sequence. Returns the number of spans. */
static int dg_items(const llm_model *m, const llm_workspace *w, llm_seq *const *seqs, int B, int l, int maxd,
                    llm_attn_item *it, llm_kv_span *sp) {
    const llm_backend *be = m->be;
    size_t qd = (size_t)m->cfg.n_heads * m->cfg.head_dim;
    int ns = 0;
    for (int i = 0; i < B; i++) {
        const llm_seq *s = seqs[i];
        llm_kv_span *p = sp + (size_t)i * maxd;
        int n = s->parent ? mdl_seq_spans(s->parent, l, s->start, p, 0) : 0;
        p[n++] = (llm_kv_span){s->k[l], s->v[l], s->cap};
        it[i] = (llm_attn_item){.out = llm_act_at(be, w->att, (size_t)i * qd), .q = llm_act_at(be, w->q, (size_t)i * qd),
                                .T = 1, .pos = w->pos + i, .spans = p, .n_spans = n};
        ns += n;
    }
    return ns;
}

/* The step's launches (llm_forward's for T = B single tokens), reading tok / pos from w and
 * the descriptors from the device block dev. Nothing here uploads, downloads or allocates. */
static void decode_body(llm_model *m, const llm_workspace *w, const char *dev, const dg_layout *lay) {
    const llm_config *c = &m->cfg;
    const llm_backend *be = m->be;
    int B = lay->B, C = c->dim, H = c->hidden_dim, hd = c->head_dim, kvd = c->n_kv_heads * hd;
    size_t T = (size_t)B;
    be->embed(w->x, m->embed, w->tok, B, C);
    for (int l = 0; l < c->n_layers; l++) {
        const llm_layer *Y = &m->layers[l];
        be->rmsnorm(w->xb, w->x, Y->attn_norm, B, C, c->norm_eps);
        mdl_lin(m, l, LLM_MOD_Q, w->q, w->xb, &Y->wq, B);
        mdl_lin(m, l, LLM_MOD_K, w->k, w->xb, &Y->wk, B);
        mdl_lin(m, l, LLM_MOD_V, w->v, w->xb, &Y->wv, B);
        be->rope(w->q, w->pos, B, c->n_heads, hd, c->rope_theta);
        be->rope(w->k, w->pos, B, c->n_kv_heads, hd, c->rope_theta);
        void *const *kd = (void *const *)(dev + lay->off_kv + (size_t)l * lay->kv_stride); /* device addresses */
        be->kv_append(kd, kd + B, (const int *)(dev + lay->off_start), w->pos, w->k, w->v, B, kvd);
        be->attention_packed(dev + (size_t)l * lay->att_stride, B, lay->n_spans, B, c->n_heads, c->n_kv_heads, hd);
        mdl_lin(m, l, LLM_MOD_O, w->xb, w->att, &Y->wo, B);
        be->add(w->x, w->xb, T * (size_t)C);
        be->rmsnorm(w->xb, w->x, Y->ffn_norm, B, C, c->norm_eps);
        mdl_lin(m, l, LLM_MOD_GATE, w->h1, w->xb, &Y->w_gate, B);
        mdl_lin(m, l, LLM_MOD_UP, w->h3, w->xb, &Y->w_up, B);
        be->swiglu(w->h1, w->h3, T * (size_t)H);
        mdl_lin(m, l, LLM_MOD_DOWN, w->xb, w->h1, &Y->w_down, B);
        be->add(w->x, w->xb, T * (size_t)C);
    }
    /* every row wants logits: the final norm reads the residual rows in place (llm_forward
     * copies them into xs first; the same values) */
    be->rmsnorm(w->xsn, w->x, m->norm, B, C, c->norm_eps);
    llm_be_matmul_f32(be, w->logits, w->xsn, &m->lm_head, B);
}

static int decode_graphed(llm_model *m, llm_seq *const *seqs, const int *tok, int B, float *logits, char *err,
                          size_t errlen) {
    const llm_config *c = &m->cfg;
    const llm_backend *be = m->be;
    struct llm_dstep *d = m->dstep;
    int V = c->vocab_size, L = c->n_layers;
    for (int i = 0; i < B; i++) { /* llm_forward's checks */
        if (!seqs[i] || seqs[i]->m != m) { snprintf(err, errlen, "bad batch item %d", i); return -1; }
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i]) { snprintf(err, errlen, "sequence given twice in one batch"); return -1; }
        if (llm_seq_len(seqs[i]) + 1 > c->max_seq_len) {
            snprintf(err, errlen, "sequence of %d tokens exceeds the context of %d", llm_seq_len(seqs[i]) + 1,
                     c->max_seq_len);
            return -1;
        }
        if (tok[i] < 0 || tok[i] >= V) {
            snprintf(err, errlen, "token id %d outside the vocabulary [0, %d)", tok[i], V);
            return -1;
        }
    }
    /* Everything the launches point to, before the key is taken. */
    for (int i = 0; i < B; i++) mdl_seq_reserve(seqs[i], seqs[i]->n + 1);
    size_t capT = d->w ? d->w->cap_T : 0, capR = d->w ? d->w->cap_R : 0;
    llm_workspace *w = mdl_ws_get_in(m, &d->w, (size_t)B, (size_t)B);
    if (w->cap_T != capT || w->cap_R != capR) { /* reallocated: every graph points to the old buffers */
        d->gen++;
        mdl_dstep_drop_all(m);
    }
    if (m->lora && m->lora_dev) mdl_lora_scratch_reserve(m, (size_t)B);

    /* The key: the head, then the block the kernels read (attention descriptors per layer,
     * cache pointers per layer, starts). */
    int maxd = 1;
    for (int i = 0; i < B; i++) {
        int dd = mdl_seq_depth(seqs[i]);
        if (dd > maxd) maxd = dd;
    }
    llm_attn_item *it = xmalloc((size_t)B * sizeof *it);
    llm_kv_span *sp = xmalloc((size_t)B * (size_t)maxd * sizeof *sp);
    dg_layout lay = {.B = B};
    lay.n_spans = dg_items(m, w, seqs, B, 0, maxd, it, sp);
    lay.att_stride = round16(be->attn_pack(NULL, it, B));
    lay.off_kv = (size_t)L * lay.att_stride;
    lay.kv_stride = round16(2 * (size_t)B * sizeof(void *));
    lay.off_start = lay.off_kv + (size_t)L * lay.kv_stride;
    lay.n = lay.off_start + round16((size_t)B * sizeof(int));
    size_t head = round16(sizeof(dg_head)), key_n = head + lay.n;
    if (key_n > d->key_cap) {
        d->key = xrealloc(d->key, key_n);
        d->key_cap = key_n;
    }
    memset(d->key, 0, key_n); /* padding bytes too: keys are compared with memcmp */
    dg_head h;
    memset(&h, 0, sizeof h);
    h.B = B, h.n_spans = lay.n_spans, h.gen = d->gen;
    h.lora = m->lora, h.lora_dev = m->lora_dev, h.lora_scratch = m->lora_scratch_dev, h.lora_cap = m->lora_scratch_dev_cap;
    memcpy(d->key, &h, sizeof h);
    unsigned char *blk = d->key + head;
    for (int l = 0; l < L; l++) {
        if (dg_items(m, w, seqs, B, l, maxd, it, sp) != lay.n_spans) die("decode step: span count differs by layer");
        be->attn_pack(blk + (size_t)l * lay.att_stride, it, B);
        void **kd = (void **)(blk + lay.off_kv + (size_t)l * lay.kv_stride);
        for (int i = 0; i < B; i++) kd[i] = seqs[i]->k[l], kd[B + i] = seqs[i]->v[l];
    }
    int *st = (int *)(blk + lay.off_start);
    for (int i = 0; i < B; i++) st[i] = seqs[i]->start;
    free(it);
    free(sp);

    dg_entry *e = NULL;
    for (int k = 0; k < DG_MAX && !e; k++)
        if (d->e[k].key && d->e[k].key_n == key_n && memcmp(d->e[k].key, d->key, key_n) == 0) e = &d->e[k];

    /* this step's tokens and positions into the fixed buffers, ahead of the launches */
    for (int i = 0; i < B; i++) w->tok_h[i] = tok[i], w->pos_h[i] = llm_seq_len(seqs[i]);
    be->upload(w->tok, w->tok_h, (size_t)B * sizeof(int));
    be->upload(w->pos, w->pos_h, (size_t)B * sizeof(int));

    if (!e) { /* a new key: store it and run without a graph (this also sizes the backend's scratch) */
        e = &d->e[0];
        for (int k = 1; k < DG_MAX; k++)
            if (!d->e[k].key || (e->key && d->e[k].used < e->used)) e = &d->e[k];
        dg_entry_drop(m, e);
        e->key = xmalloc(key_n);
        memcpy(e->key, d->key, key_n);
        e->key_n = key_n;
        e->dev = be->alloc(lay.n);
        be->upload(e->dev, blk, lay.n);
        decode_body(m, w, e->dev, &lay);
        d->n_eager++;
    } else if (e->exec && be->graph_launch(e->exec) == 0) {
        d->n_replay++;
    } else { /* seen before (or its graph is stale): capture now, then launch */
        if (e->exec) be->graph_free(e->exec);
        be->graph_begin();
        decode_body(m, w, e->dev, &lay);
        e->exec = be->graph_end();
        if (e->exec && be->graph_launch(e->exec) == 0) d->n_capture++;
        else { /* the capture could not complete (nothing of it ran): run the step itself */
            decode_body(m, w, e->dev, &lay);
            d->n_eager++;
        }
    }
    e->used = ++d->clock;

    be->download(w->logits_h, w->logits, (size_t)B * V * sizeof(float));
    for (int i = 0; i < B; i++) {
        llm_seq *s = seqs[i];
        if (logits) memcpy(logits + (size_t)i * V, w->logits_h + (size_t)i * V, (size_t)V * sizeof(float));
        if (!s->logits) s->logits = xmalloc((size_t)V * sizeof(float));
        memcpy(s->logits, w->logits_h + (size_t)i * V, (size_t)V * sizeof(float));
        s->n++;
    }
    return 0;
}

int llm_decode_step(llm_model *m, llm_seq *const *seqs, const int *tok, int B, float *logits, char *err,
                    size_t errlen) {
    if (B <= 0) return 0;
    if (llm_decode_graphs(m, -1)) return decode_graphed(m, seqs, tok, B, logits, err, errlen);
    /* without graphs: llm_forward, one single-token item per sequence */
    int V = m->cfg.vocab_size;
    llm_batch *b = xmalloc((size_t)B * sizeof *b);
    for (int i = 0; i < B; i++)
        b[i] = (llm_batch){seqs[i], tok + i, 1, LLM_LOGITS_LAST, logits ? logits + (size_t)i * V : NULL};
    int rc = llm_forward(m, b, B, err, errlen);
    free(b);
    return rc;
}
