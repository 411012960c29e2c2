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

/* ---------- reading ---------- */

/* The header entries readers use (params.*). */
typedef struct {
    char *source; /* the file name for messages */
    char *scheme; /* params.scheme, NULL when absent */
    bool leaky;   /* params.leaky */
} instructions_header;

/* Reads the header of an opened itrek.instructions stream. */
void instructions_header_read(stream_reader *r, instructions_header *h);
void instructions_header_free(instructions_header *h);

/* Record fields a reader requires (id, task and user always are); others are read when present. */
enum { IR_PROMPT = 1, IR_RESPONSE = 2, IR_ITEMS = 4, IR_HISTORY = 8 };

/* One record, every field it has parsed and checked against the format. */
typedef struct {
    long rec; /* record index (data records count from 1) */
    int64_t id, user;
    int task;                 /* rtask */
    char *prompt, *response;  /* NULL when absent */
    size_t prompt_len, response_len;
    int64_t prefix_len;       /* within the prompt; -1 when absent */
    int32_t *items, *history; /* item ids; NULL when absent */
    int n_items, n_history;
    int64_t tokens, dropped;  /* -1 when absent */
} instruction_read;

/* The next record into t (its previous contents freed); false at the end of the stream. */
bool instructions_next(stream_reader *r, unsigned need, instruction_read *t);
void instruction_read_free(instruction_read *t);

/* For training: each record's prompt and response only (malloc'd); false at the end. */
bool instructions_next_text(stream_reader *r, char **prompt, char **response);

#endif
