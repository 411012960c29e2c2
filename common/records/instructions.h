/* instructions.h - itrek.instructions: the training prompts with their responses, written by
 * promptgen and read by lora-train (and the leakage check) (docs/formats.md).
 */
#ifndef ITREK_RECORDS_INSTRUCTIONS_H
#define ITREK_RECORDS_INSTRUCTIONS_H

#include "io/stream.h"
#include "records/prompt_params.h"

#include <stdbool.h>
#include <stdint.h>

#define INSTRUCTIONS_SCHEMA "itrek.instructions"

/* params' sampling entries and the header's `stats`, beyond what prompt_params holds. */
typedef struct {
    bool uniform;
    int draws;
    double pool, penalty;
    int clusters;
    bool next_positives;
    int hard_negatives;
    /* stats */
    long records, eligible, n_draws, distinct;
    long min_per_user, max_per_user;
    double mean_per_user;
    long n_importance, n_cluster, kmeans_iters;
    double kmeans_inertia;
    const int *cluster_sizes;
    int n_cluster_sizes;
    long skipped[RTASK_COUNT];
} instructions_sampling;

void instructions_write_header(stream_writer *w, const prompt_params *p, const instructions_sampling *s, prompt_token_stats *ts);

typedef struct {
    int64_t id, user;
    int task;
    const char *prompt, *response;
    size_t prefix_len;
    const int32_t *items, *history;
    int n_items, n_history;
    int64_t tokens, dropped;
} instruction_rec;

void instructions_write(stream_writer *w, const instruction_rec *r);

/* Reading: each record's prompt and response (malloc'd), for training. Returns false at the end. */
bool instructions_next_text(stream_reader *r, char **prompt, char **response);

#endif
