/* generate.h - sampling, batched generation with a KV cache, and continuation scoring.
 *
 * Randomness: request i of a call draws from its own generator, io/rng.h's xoshiro256**
 * seeded through splitmix64 with (seed, stream = i), so its output depends only on the
 * seed, its index and the model, never on the batch size or on the other requests.
 */
#ifndef ITREK_LLM_GENERATE_H
#define ITREK_LLM_GENERATE_H

#include <stdint.h>

#include "io/rng.h"
#include "llm/model.h"

typedef struct {
    float temperature; /* 0: greedy (argmax, lowest id on ties) */
    int top_k;         /* keep the k most likely tokens; 0: all */
    float top_p;       /* keep the smallest set whose probability reaches p; >= 1: all */
    int max_new;       /* new tokens at most */
    int stop_eos;      /* stop after the model's EOS (which is kept in the output) */
    uint64_t seed;
} llm_sampling;

/* Defaults: greedy, top_k 0, top_p 1, max_new 128, stop_eos 1, seed 1. */
llm_sampling llm_sampling_default(void);

/* Draw one token from logits (V) with temperature, top-k then top-p. */
int llm_sample(const float *logits, int V, const llm_sampling *s, rng_t *rng);

typedef struct {
    llm_seq *prefix;   /* optional: shared, already computed prefix (left untouched) */
    const int *prompt; /* tokens after the prefix; prefix length + n_prompt >= 1 */
    int n_prompt;
    /* results */
    int *out;          /* generated ids (malloc'd; free with free()) */
    int n_out;
    int stopped_eos;   /* 1 if the output ended with EOS */
} llm_request;

/* Generate for n requests, at most max_batch sequences decoded together; a finished one
 * hands its slot to the next waiting request. The prompts of newly started requests are
 * prefilled in the same forward pass as the decode steps of the running ones. Stops at
 * max_new, EOS (when asked) or the end of the context. 0, or -1 with a reason. */
int llm_generate(llm_model *m, llm_request *req, int n, const llm_sampling *s, int max_batch, char *err,
                 size_t errlen);

/* Total log-probability (natural log) of each continuation conts[i] (n_conts[i] tokens) after
 * the prompt: sum_j log p(c_j | prefix, prompt, c_<j), teacher-forced, no sampling. The prompt
 * is computed once and every continuation forks it. prefix may be NULL; prefix length +
 * n_prompt >= 1. An empty continuation scores 0. 0, or -1 with a reason. */
int llm_score(llm_model *m, llm_seq *prefix, const int *prompt, int n_prompt, const int *const *conts,
              const int *n_conts, int n_cont, double *logprob, char *err, size_t errlen);

/* log-softmax of logits (V) at index id, in double precision. */
double llm_log_softmax_at(const float *logits, int V, int id);

#endif
