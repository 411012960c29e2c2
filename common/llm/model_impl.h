/* model_impl.h - what the three model files share and nothing else includes: the sequence
 * and workspace structs and the helpers that cross file lines. model.c holds the model's
 * memory, sequences, the KV cache and the forward pass; model_load.c the loaders, the random
 * initialisers and llm_save_hf; model_graph.c llm_decode_step and its captured graphs. Not a
 * public API: stages and tests use model.h.
 */
#ifndef ITREK_LLM_MODEL_IMPL_H
#define ITREK_LLM_MODEL_IMPL_H

#include "llm/model.h"

struct llm_seq {
    llm_model *m;
    llm_seq *parent; /* positions [0, start) are the parent's (and its ancestors') */
    int start;
    int n, cap;      /* own positions */
    void **k, **v;   /* per layer: (cap, kv_dim) activations (bf16 on CUDA: half the bytes) */
    float *logits;   /* (V) after the last position, or NULL */
    int refs;
};

struct llm_workspace {
    size_t cap_T, cap_R;
    float *x;                                 /* per token: the residual stream, fp32 (T,C) */
    llm_act xb, q, k, v, att, h1, h3;         /* per token: activations */
    int *tok, *pos;
    float *xs, *logits;                       /* per logits row: residual rows (R,C), logits (R,V) fp32 */
    llm_act xsn;                              /* per logits row: the final norm's output (R,C) */
    /* host copies on a device backend (else the same pointers as above) */
    int *tok_h, *pos_h;
    float *logits_h;
};

/* ---- model.c ---- */

/* Free a tensor of the model: host memory, or the backend's on a device backend. */
void mdl_mfree(const llm_model *m, void *p);
/* A model of config c with no weights yet, on the CPU backend. */
llm_model *mdl_alloc(const llm_config *c);
/* After loading: tie lm_head, quantise (o->int8; weights already quantised are left), set threads. */
void mdl_finish(llm_model *m, const llm_load_opts *o);
void mdl_workspace_free(const llm_model *m, llm_workspace *w);
/* The workspace *pw (created on first use) with room for T token rows and R logits rows. */
llm_workspace *mdl_ws_get_in(llm_model *m, llm_workspace **pw, size_t T, size_t R);
/* Room for `need` own positions in s (doubling). */
void mdl_seq_reserve(llm_seq *s, int need);
/* Spans of layer l covering positions [0, limit) of s, ancestors first, appended at out[n];
 * returns the new count. */
int mdl_seq_spans(const llm_seq *s, int l, int limit, llm_kv_span *out, int n);
int mdl_seq_depth(const llm_seq *s); /* 1 + the number of ancestors */
/* Room for T rows of the adapter's (T, r) product on the device. */
void mdl_lora_scratch_reserve(llm_model *m, size_t T);
/* y = x W^T for module mod of layer l, plus the attached adapter's product. */
void mdl_lin(llm_model *m, int l, int mod, llm_act y, llm_cact x, const llm_weight *W, int T);

/* ---- model_graph.c ---- */

/* Drop every captured decode graph (the buffers or the adapter they recorded changed). */
void mdl_dstep_drop_all(llm_model *m);
/* Free llm_decode_step's state (m->dstep). */
void mdl_dstep_free(llm_model *m);

#endif
