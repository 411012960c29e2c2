/* config.h - LLaMA hyper-parameters and Hugging Face config.json. */
#ifndef ITREK_LLM_CONFIG_H
#define ITREK_LLM_CONFIG_H

#include <stddef.h>

typedef struct {
    int dim;          /* hidden_size */
    int hidden_dim;   /* intermediate_size (SwiGLU width) */
    int n_layers;     /* num_hidden_layers */
    int n_heads;      /* num_attention_heads */
    int n_kv_heads;   /* num_key_value_heads (grouped-query attention; = n_heads when absent) */
    int head_dim;     /* dim / n_heads unless config.json gives head_dim */
    int vocab_size;
    int max_seq_len;  /* max_position_embeddings */
    float norm_eps;   /* rms_norm_eps */
    float rope_theta;
    int tie_embeddings; /* tie_word_embeddings: lm_head = embed_tokens */
    int bos_id, eos_id; /* -1 when unknown */
} llm_config;

/* Read config.json (a file, or a directory holding one). Checks model_type/hidden_act when
 * present, rejects rope_scaling, and validates the numbers. 0, or -1 with a reason. */
int llm_config_load(const char *path, llm_config *c, char *err, size_t errlen);
/* Write a config.json that transformers' LlamaConfig accepts. */
int llm_config_save(const char *path, const llm_config *c, char *err, size_t errlen);
/* Consistency of the numbers (positive sizes, heads divide, ...). */
int llm_config_check(const llm_config *c, char *err, size_t errlen);

#endif
