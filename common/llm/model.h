/* model.h - a LLaMA model: loading (Hugging Face directory, GGUF, llama2.c checkpoint),
 * saving as a Hugging Face directory, sequences with a KV cache, and the batched forward.
 *
 * Internal layout is Hugging Face's: weights (out, in) row-major, q_proj/k_proj rows in the
 * rotate-half RoPE order. Loaders of Meta-layout files (llama2.c, GGUF) permute q/k rows
 * into that order (llm_permute_meta_to_hf), so one RoPE convention is used everywhere.
 *
 * A sequence (llm_seq) owns the keys and values of the positions it has seen. A fork shares
 * its parent's cached positions without copying them (the child reads the parent's first
 * `start` positions and appends its own), so a common prompt prefix is computed once:
 *     llm_seq *p = llm_seq_new(m); llm_forward(m, &(llm_batch){p, hist, n, LLM_LOGITS_NONE}, 1, ...);
 *     llm_seq *a = llm_seq_fork(p), *b = llm_seq_fork(p);   ... then extend a and b
 * A parent may be freed before its children (reference counts); it may keep growing, its
 * children only ever see the positions it had when they were forked.
 *
 * Not thread-safe: one llm_forward at a time per model (it owns the scratch buffers).
 */
#ifndef ITREK_LLM_MODEL_H
#define ITREK_LLM_MODEL_H

#include <stddef.h>

#include "llm/backend.h"
#include "llm/config.h"
#include "llm/tokenizer.h"

typedef struct {
    llm_weight wq, wk, wv, wo;       /* (n_heads*hd, C) (kvd, C) (kvd, C) (C, n_heads*hd) */
    llm_weight w_gate, w_up, w_down; /* (H, C) (H, C) (C, H) */
    float *attn_norm, *ffn_norm;     /* (C) */
} llm_layer;

typedef struct llm_workspace llm_workspace;
struct llm_lora;
struct llm_dstep;

typedef struct llm_model {
    llm_config cfg;
    const llm_backend *be;
    float *embed;       /* (V, C) */
    llm_layer *layers;  /* n_layers */
    float *norm;        /* (C) final RMSNorm */
    llm_weight lm_head; /* (V, C); .f == embed when tied */
    llm_tokenizer *tok; /* NULL when the checkpoint carries none */
    int int8;           /* linear layers held as int8 */
    int threads;
    llm_workspace *ws;
    struct llm_lora *lora; /* adapter applied on the fly (lora.h), owned by the model; NULL: none */
    /* On a device backend (be->device): every tensor above (embed, norms, weights' f / q /
     * scale, lm_head) is backend memory, and the adapter's A and B have device copies here
     * (index 2 (l * 7 + mod) for A, + 1 for B; NULL where not adapted). */
    float **lora_dev;
    float *lora_scratch_dev;
    size_t lora_scratch_dev_cap;
    struct llm_dstep *dstep; /* llm_decode_step's graphs and fixed buffers (model_graph.c); NULL until used */
} llm_model;

typedef struct {
    int int8;            /* quantise q,k,v,o,gate,up,down to int8 (per-row absmax) on load */
    int threads;         /* 0: the backend's default */
    const char *adapter; /* LoRA adapter directory (PEFT layout), applied on the fly; NULL: none */
    int merge;           /* with adapter: merge it into the weights (before any int8 quantisation) */
    const char *device;  /* "cpu" (NULL: the same) or "cuda": the backend (llm_backend_named); the
                          * weights are read on the host, then moved into the backend's memory */
} llm_load_opts;

/* path: a Hugging Face directory (config.json, model.safetensors or shards, optional
 * tokenizer.model), a .gguf file (tokenizer.model beside it is used when present), or a
 * llama2.c .bin checkpoint. NULL with a one-line reason on failure. */
llm_model *llm_load(const char *path, const llm_load_opts *o, char *err, size_t errlen);
llm_model *llm_load_llama2c(const char *path, const llm_load_opts *o, char *err, size_t errlen);
void llm_free(llm_model *m);
void llm_set_threads(llm_model *m, int n);
/* Write config.json and model.safetensors (F32, Hugging Face names) into dir (must exist).
 * The model must hold fp32 weights. */
int llm_save_hf(const llm_model *m, const char *dir, char *err, size_t errlen);

/* A model with random weights (Hugging Face LlamaPreTrainedModel's init: every linear and the
 * embedding normal(0, std), norms 1), tensor i drawn from io/rng.h (seed, stream = i). */
llm_model *llm_init_random(const llm_config *c, float std, uint64_t seed, int threads);
/* A model with random weights made by the backend itself (be->randomize; no host copy), for
 * benchmarks of large shapes: linear weights int8 (or fp32 uniform(-std, std)), embedding and
 * lm_head fp32 uniform(-std, std), norms 1. NULL with a reason when be cannot randomise. */
llm_model *llm_init_random_on(const llm_config *c, const llm_backend *be, int int8, float std, uint64_t seed, char *err,
                              size_t errlen);
/* Move a host model into device backend be's memory (a no-op when be is not a device or the
 * model is already there). 0, or -1 with a reason. */
int llm_model_to_backend(llm_model *m, const llm_backend *be, char *err, size_t errlen);
/* Attach an adapter for on-the-fly application (the model takes ownership; NULL detaches and
 * frees the old one). -1 with a reason when its shapes do not fit the model. */
int llm_set_adapter(llm_model *m, struct llm_lora *a, char *err, size_t errlen);

/* The linear weight of module mod (lora.h's LLM_MOD_Q .. LLM_MOD_DOWN) of a block. */
llm_weight *llm_layer_weight(llm_layer *Y, int mod);

/* Quantise a fp32 weight in place to int8 with one absmax scale per row (frees .f). */
void llm_weight_quantize(llm_weight *w);
/* Reorder the rows of a (n_heads*head_dim, cols) q or k weight from Meta's interleaved
 * RoPE pairs to Hugging Face's rotate-half order: per head, rows [0,2,4,..,1,3,5,..]. */
void llm_permute_meta_to_hf(float *w, int n_heads, int head_dim, int cols);

/* ---- sequences and the forward pass ---- */

typedef struct llm_seq llm_seq;
llm_seq *llm_seq_new(llm_model *m);
llm_seq *llm_seq_fork(llm_seq *parent);
void llm_seq_free(llm_seq *s);
int llm_seq_len(const llm_seq *s); /* positions seen, the shared prefix included */
/* Logits (V) after the last position, when the last llm_forward on it (or its parent at
 * the time of the fork) asked for logits; else NULL. */
const float *llm_seq_logits(const llm_seq *s);

enum { LLM_LOGITS_NONE = 0, LLM_LOGITS_LAST = 1, LLM_LOGITS_ALL = 2 };

typedef struct {
    llm_seq *seq;
    const int *tokens; /* n new tokens, appended at positions llm_seq_len(seq) .. + n - 1 */
    int n;
    int logits;        /* LLM_LOGITS_* */
    float *out;        /* optional: (V) for LAST, (n, V) for ALL */
} llm_batch;

/* Run the new tokens of several sequences as one batch (T = sum of n rows through every
 * matrix product). Each sequence appears at most once. 0, or -1 with a reason (bad token
 * id, context longer than max_position_embeddings). */
int llm_forward(llm_model *m, llm_batch *b, int n, char *err, size_t errlen);

/* Room for `total` positions in all (the shared prefix included) in one allocation at that
 * length, so that the cache buffers of s stay where they are until then (instead of growing
 * by doubling as llm_forward does). No-op when s already has the room. */
void llm_seq_reserve(llm_seq *s, int total);

/* One decode step: token tok[b] appended to seqs[b] for b < B (each sequence once), the logits
 * (V) after it into logits + b V when logits is not NULL, and into llm_seq_logits.
 * Graphs off (the default): exactly llm_forward with one LLM_LOGITS_LAST item per sequence.
 * Graphs on (a backend with graph support, and ITREK_CUDA_GRAPHS=1 in the environment or
 * llm_decode_graphs(m, 1)): the step runs with fixed buffers (token ids and positions
 * uploaded into them, the KV append done by a kernel at row pos[b], attention descriptors
 * kept in device memory) and is captured as a graph the second time the same key (B, the
 * cache buffers and their capacities, the adapter) comes back, then replayed; a new key
 * runs once without a graph. Same kernels in the same order: the same logits bit for bit.
 * 0, or -1 with a reason (as llm_forward). */
int llm_decode_step(llm_model *m, llm_seq *const *seqs, const int *tok, int B, float *logits, char *err,
                    size_t errlen);
/* Graphs for llm_decode_step: on 1 / 0 sets, -1 leaves the setting (initially
 * ITREK_CUDA_GRAPHS=1 or not). Returns whether steps now use graphs: never on a backend
 * without graph support (the CPU). */
int llm_decode_graphs(llm_model *m, int on);
/* How llm_decode_step's graphed steps ran: without a graph (a new key, or a capture that
 * could not complete), captured and launched, replayed. Zeros when graphs never ran. */
void llm_decode_graph_stats(const llm_model *m, long *eager, long *captured, long *replayed);

#endif
