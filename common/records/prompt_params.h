/* prompt_params.h - what the headers of itrek.instructions and itrek.queries share.
 *
 * promptgen writes both streams from one set of prompt parameters; their `params` maps agree
 * key for key up to `format`, and their `inputs` and token statistics have one shape. Keeping
 * that part here lets records/instructions.c and records/queries.c write it the same way.
 */
#ifndef ITREK_RECORDS_PROMPT_PARAMS_H
#define ITREK_RECORDS_PROMPT_PARAMS_H

#include "io/pack.h"
#include "records/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *scheme;
    const char *part; /* queries: "test" or "valid"; instructions: NULL */
    int scale[2];
    bool tasks[RTASK_COUNT];
    bool hint;
    int history, max_dislikes;
    double like, dislike;
    int context, reserve;
    bool tokenizer; /* token counts from a tokenizer (else the 1 + bytes/2 estimate) */
    bool leaky;     /* --hints recranker-leaky: params.leaky (only when set) */
    double cal_a, cal_b;
    long cal_n;
    uint64_t seed;
    const char *item, *sep, *yes, *no; /* params.format: how answers look */
    /* inputs */
    const char *interactions, *catalog, *mf, *candidates /* queries only */, *templates, *tokenizer_path;
} prompt_params;

/* Token statistics of the records written. tokens[] is sorted here. */
typedef struct {
    long shortened, overlong, per_task[RTASK_COUNT];
    int *tokens;
    size_t n_tokens;
} prompt_token_stats;

/* params' shared entries, scheme .. format (the caller adds its own, then ends the map). */
void prompt_params_pack(pk_map *params, const prompt_params *p);
/* The header's `inputs` entry. */
void prompt_inputs_pack(pk_map *h, const prompt_params *p);
/* The shared tail of `stats`: shortened, overlong, per_task, tokens {from, min, median, p90, max}. */
void prompt_token_stats_pack(pk_map *stats, prompt_token_stats *s, bool tokenizer);

#endif
