/* train.h - forward and backward of the LLaMA model for training: gradients for a LoRA
 * adapter (base frozen, fp32 or int8) or for every base weight (fp32, "full" mode, used to
 * pretrain a small model from random initialisation).
 *
 * A micro-batch is a list of examples (token sequences, each starting at position 0) packed
 * as consecutive rows: T = sum of lengths rows through every matrix product; attention is
 * causal within each sequence (no padding). The loss is next-token cross-entropy averaged over
 * the target tokens of the micro-batch: token t of an example is a target when
 * t >= loss_from (1 = the whole sequence).
 *
 * Per layer the forward keeps its activations for the backward, or with `recompute` only the
 * layer's input, recomputing the rest during the backward (one more forward's work, memory
 * for one layer's activations instead of all). The attention keeps only the log-sum-exp of
 * each row and recomputes its probabilities in the backward.
 *
 * Dropout (LoRA input only, as PEFT) draws its masks from io/rng.h with the trainer's seed and
 * a stream per (micro-batch number, layer, module), so a recomputed or resumed step sees the
 * same masks; stream 0 means no dropout (evaluation).
 */
#ifndef ITREK_LLM_TRAIN_H
#define ITREK_LLM_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "llm/lora.h"
#include "llm/model.h"

typedef struct {
    const int *tok; /* n tokens, BOS first */
    int n;
    int loss_from;  /* first target position (>= 1); n: no target */
} llm_example;

/* A trainable tensor, its gradient, and a name and shape as Hugging Face spells them. */
typedef struct {
    char name[200];
    float *w, *g;
    size_t n;
    int ndim;
    int64_t shape[2];
    int decay;      /* weight decay applies (not to norms) */
} llm_param;

typedef struct {
    int full;       /* train every base weight (needs fp32 weights; lora must be NULL) */
    int recompute;  /* activation recomputation */
    uint64_t seed;  /* dropout masks */
} llm_trainer_opts;

typedef struct llm_trainer llm_trainer;

/* lora: the adapter to train (not attached to m; m->lora must be NULL), or NULL with full. */
llm_trainer *llm_trainer_new(llm_model *m, llm_lora *lora, const llm_trainer_opts *o, char *err, size_t errlen);
void llm_trainer_free(llm_trainer *t);
/* The trainable tensors (owned by the trainer; w points into the model or the adapter). */
int llm_trainer_params(llm_trainer *t, llm_param **params);
void llm_trainer_zero_grad(llm_trainer *t);

/* One micro-batch. backward: add grad_scale * d(mean loss)/d(param) into the gradients.
 * dropout_stream: 0 for no dropout (evaluation), else a number unique to this micro-batch.
 * logits: optional (T, V) output of every row's logits (T = sum of n). Returns the mean loss
 * over the target tokens (0 when there is none) and their count in *n_targets; -1 with a
 * reason in err (a token outside the vocabulary, a sequence longer than the context). */
int llm_trainer_run(llm_trainer *t, const llm_example *ex, int n, int backward, float grad_scale,
                    uint64_t dropout_stream, float *logits, double *loss, long *n_targets, char *err, size_t errlen);

/* Bytes of activations kept for a micro-batch of T tokens (for reports and tests). */
size_t llm_trainer_activation_bytes(const llm_trainer *t, int T);

#endif
