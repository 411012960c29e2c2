/* lora.h - LoRA adapters: y = W x + s B (A x), s = alpha / r, on any of the seven linear
 * layers of every block; saved and loaded in Hugging Face PEFT's layout.
 *
 * A adapter directory holds adapter_config.json (peft_type LORA, r, lora_alpha, lora_dropout,
 * target_modules, ...) and adapter_model.safetensors with the keys
 *     base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight  (r, in)
 *     base_model.model.model.layers.N.self_attn.q_proj.lora_B.weight  (out, r)
 * (mlp.gate_proj / up_proj / down_proj for the MLP), as PeftModel.save_pretrained writes them,
 * so PeftModel.from_pretrained reads ours and we read theirs.
 *
 * At inference an adapter is either applied on the fly (llm_model.lora: every adapted product
 * adds s (x A^T) B^T) or merged into fp32 base weights (W += s B A). See docs/lora-train.md.
 */
#ifndef ITREK_LLM_LORA_H
#define ITREK_LLM_LORA_H

#include <stddef.h>
#include <stdint.h>

#include "llm/backend.h"
#include "llm/config.h"

/* The seven linear layers of a block, in this fixed order. */
enum { LLM_MOD_Q, LLM_MOD_K, LLM_MOD_V, LLM_MOD_O, LLM_MOD_GATE, LLM_MOD_UP, LLM_MOD_DOWN, LLM_N_MODS };
#define LLM_MODS_ATTN 0x0Fu /* q_proj,k_proj,v_proj,o_proj: the default targets */
#define LLM_MODS_ALL 0x7Fu

/* "q_proj" ... "down_proj" */
const char *llm_mod_name(int mod);
/* "self_attn.q_proj" ... "mlp.down_proj" (the Hugging Face module path inside a block) */
const char *llm_mod_path(int mod);
/* (out, in) of module mod for configuration c */
void llm_mod_shape(const llm_config *c, int mod, int *out, int *in);

typedef struct {
    float *A; /* (r, in); NULL when the module is not adapted */
    float *B; /* (out, r) */
    int in, out;
} llm_lora_ab;

typedef struct llm_lora {
    int n_layers, r;
    float alpha, dropout, scale; /* scale = alpha / r (alpha / sqrt(r) with use_rslora) */
    int use_rslora;
    unsigned targets;            /* bit mod set when module mod is adapted */
    llm_lora_ab *ab;             /* n_layers * LLM_N_MODS, index l * LLM_N_MODS + mod */
    char *base_model;            /* base_model_name_or_path (may be NULL) */
    float *scratch;              /* forward scratch (T, r) */
    size_t scratch_cap;
} llm_lora;

/* Comma-separated module names (q_proj,k_proj,...; "all" for the seven) into a mask. 0 or -1. */
int llm_lora_parse_targets(const char *list, unsigned *mask, char *err, size_t errlen);
/* A new adapter for config c: A kaiming-uniform (bound 1/sqrt(in), as PEFT's
 * kaiming_uniform_(a=sqrt(5))), B zero; A drawn from io/rng.h with (seed, stream = l*7+mod). */
llm_lora *llm_lora_new(const llm_config *c, int r, float alpha, float dropout, unsigned targets, uint64_t seed);
/* Read a PEFT adapter directory, checking every tensor against config c. NULL with a reason. */
llm_lora *llm_lora_load(const char *dir, const llm_config *c, char *err, size_t errlen);
/* Write adapter_config.json and adapter_model.safetensors into dir (which must exist). */
int llm_lora_save(const llm_lora *a, const char *dir, char *err, size_t errlen);
void llm_lora_free(llm_lora *a);
static inline llm_lora_ab *llm_lora_at(const llm_lora *a, int layer, int mod) {
    return &a->ab[(size_t)layer * LLM_N_MODS + (size_t)mod];
}
/* y (T,out) += s (x (T,in) A^T) B^T for (layer, mod) when adapted; nothing otherwise. x and y
 * are activations of be (backend.h); A, B and the scratch are fp32 host memory, so be is a
 * host backend (a device model uses its device copies of A and B: model.c). */
void llm_lora_apply(llm_lora *a, const llm_backend *be, int layer, int mod, llm_act y, llm_cact x, int T);
/* W += s B A for every adapted module; w must be fp32 (w->f). */
void llm_lora_merge_weight(const llm_lora *a, int layer, int mod, llm_weight *w);

#endif
