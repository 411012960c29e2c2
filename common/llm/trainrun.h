/* trainrun.h - the training run: examples from instructions or plain text, the loop of
 * micro-batches, gradient accumulation, clipping, AdamW with the cosine schedule, validation,
 * JSON-lines log, checkpoints and resumption. Used by stages/lora-train.c.
 *
 * Determinism: the data order of epoch e is a permutation drawn from io/rng.h with
 * (seed, stream 1000 + e); micro-batch number k (1-based over the run) draws its dropout
 * masks from stream k; so the same inputs, seed and thread count give identical bytes, and a
 * run resumed from a checkpoint continues exactly as the uninterrupted run would.
 */
#ifndef ITREK_LLM_TRAINRUN_H
#define ITREK_LLM_TRAINRUN_H

#include <signal.h>
#include <stdint.h>

#include "llm/optim.h"
#include "llm/tokenizer.h"
#include "llm/train.h"

typedef struct {
    llm_example *ex;
    int n, cap;
    long truncated;      /* examples shortened to fit the context */
    long dropped;        /* examples with no target token left (skipped) */
    long tokens, targets;
} llm_dataset;

/* Add an instruction example: tokens = encode(prompt + response) with BOS, then EOS; targets
 * start at the length of encode(prompt) with BOS (loss_on_all: at 1). Longer than ctx: tokens
 * after BOS are removed from the left of the prompt (then, if the response alone is too long,
 * from its end) and the example counts as truncated. */
void llm_dataset_add_instruction(llm_dataset *d, const llm_tokenizer *tok, const char *prompt, const char *response,
                                 int ctx, int loss_on_all);
/* Append one document of plain text (BOS + text + EOS) to a token stream. */
void llm_text_append(int **stream, long *n, long *cap, const llm_tokenizer *tok, const char *text);
/* Cut a token stream into examples of ctx tokens (the last may be shorter; < 2 dropped),
 * loss on every token. */
void llm_dataset_pack(llm_dataset *d, const int *stream, long n, int ctx);
/* Move a deterministic val_frac share (at least 1 when val_frac > 0 and n >= 2) to val. */
void llm_dataset_split(llm_dataset *all, llm_dataset *val, double val_frac, uint64_t seed);
void llm_dataset_free(llm_dataset *d);

typedef struct {
    int batch, accum;     /* micro-batch size, micro-batches per update */
    long steps, warmup;   /* updates in all, warm-up updates */
    float lr, clip;       /* clip <= 0: none */
    llm_adamw_opts adam;
    long eval_every;      /* updates between validation losses (0: only at the end) */
    long ckpt_every;      /* updates between checkpoints (0: none, but still on a signal) */
    int keep_ckpt;        /* checkpoints kept (older ones removed) */
    uint64_t seed;
    const char *out;      /* output directory (exists) */
    const char *log_path; /* JSON lines, or NULL */
    const char *resume;   /* checkpoint directory, or NULL */
    int quiet;
    double log_every;
    volatile sig_atomic_t *stop; /* set by a signal handler: checkpoint and return 1 */
    /* writes the trained model (adapter or full checkpoint) into a directory */
    int (*save)(void *ctx, const char *dir, char *err, size_t errlen);
    void *save_ctx;
} llm_run_opts;

typedef struct {
    long steps_done;
    double last_loss, last_val_loss; /* NAN when none */
    double tokens_per_s;             /* over the whole run */
    char checkpoint[4096];           /* last checkpoint written ("" none) */
} llm_run_result;

/* 0 done, 1 stopped by a signal (checkpoint written), -1 error with a reason. */
int llm_train_loop(llm_trainer *t, const llm_dataset *train, const llm_dataset *val, const llm_run_opts *o,
                   llm_run_result *res, char *err, size_t errlen);

#endif
