/* prompt.h - the text of RecRanker's three prompt tasks in the alpaca wrapper, built from a
 * template file (rec/template.h), with a token budget that drops the oldest history items. See
 * docs/prompts.md.
 *
 * A prompt is laid out as
 *     W0 instruction W1 | history-part | query-part [hint-part] W2
 * where the wrapper template is "W0{instruction}W1{input}W2" and the input is the history part
 * followed by the query part and the hint. Everything before the query part depends only on the
 * user and the task, so the queries of one user and task share that prefix (prefix_len bytes).
 *
 * This module knows nothing of tokenizers (rec does not include llm): the caller passes a token
 * counter, or none for the byte estimate.
 *
 * Including prompt.h also gives rec/template.h and rec/promptset.h (the record generator), so
 * that the callers of the one header prompt.h once was need no change.
 */
#ifndef ITREK_REC_PROMPT_H
#define ITREK_REC_PROMPT_H

#include "rec/data.h"
#include "rec/template.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Tokens of text (n bytes) as the model will see it, BOS included. */
typedef int (*token_count_fn)(void *ctx, const char *text, size_t n);

/* Without a tokenizer: 1 + ceil(bytes / PROMPT_BYTES_PER_TOKEN). */
#define PROMPT_BYTES_PER_TOKEN 2.0
int prompt_estimate_tokens(const char *text, size_t n);

enum { PROMPT_MAX_ITEMS = 64 };

typedef struct {
    const prompt_templates *t;
    const catalog *cat;
    int scale_min, scale_max; /* rating scale */
    bool hint;                /* append the base model's hint */
    token_count_fn count;     /* NULL: prompt_estimate_tokens */
    void *count_ctx;
    int context;              /* token budget of prompt + response */
    int reserve;              /* tokens kept for the response (at least the response itself) */
    bool leaky;               /* hints from RecRanker's rating matrix (HINTS_RECRANKER_LEAKY): the
                               * pointwise hint is written as it is (0 for unrated), not clamped */
} prompt_env;

/* One history entry. kind: rated (a rated history: pointwise, and pairwise/listwise when their
 * template shows {history}), liked or disliked (a liked/disliked history). */
enum { HIST_RATED = 0, HIST_LIKED = 1, HIST_DISLIKED = 2 };
typedef struct {
    int32_t item;
    float rating;
    int64_t ts;
    uint8_t kind;
} hist_entry;

typedef struct {
    /* pointwise: the target; pairwise: first, second (as shown); listwise: the candidates */
    int32_t items[PROMPT_MAX_ITEMS];
    int n_items;
    double hint_score;              /* pointwise: the base's score on the rating scale */
    bool hint_yes;                  /* pairwise: the base prefers the first item */
    int32_t hint_top[RTASK_LIST_TOP]; /* listwise: the base's top items, best first */
    int n_hint_top;
    /* training answer (ignored unless has_response) */
    bool has_response;
    int rating;                     /* pointwise */
    bool answer_yes;                /* pairwise */
    int32_t answer[RTASK_LIST_TOP];   /* listwise, best first */
    int n_answer;
} prompt_query;

typedef struct {
    char *prompt;       /* the whole wrapped prompt, up to and including W2 */
    size_t prefix_len;  /* bytes shared by every query built with the same history */
    char *response;     /* NULL unless has_response */
    int tokens;         /* prompt tokens (BOS included) */
    int need;           /* tokens + max(reserve, response tokens) */
} prompt_text;

/* Build nq prompts of one task over one history (hist[0..n_hist), oldest first). When the
 * longest would exceed the budget, the oldest history entries are dropped (all the prompts keep
 * the same history so that they share their prefix). Returns the number of entries dropped:
 * the prompts show hist[dropped .. n_hist). *overlong is set when even the empty history does
 * not fit (the prompts are then built with no history). */
int prompt_build(const prompt_env *env, prompt_task task, const hist_entry *hist, int n_hist, const prompt_query *q,
                 int nq, prompt_text *out, bool *overlong);
void prompt_text_free(prompt_text *p);

/* The title of an item as the templates show it (the `item` key applied), newly allocated. */
char *prompt_item_text(const prompt_templates *t, const char *title);
/* A rating as the prompts write it: "5" for whole numbers, else %g. */
void prompt_format_rating(char *buf, size_t n, double r);
/* What a rated history entry writes after its item for the rating text `rating` (`rated_item`
 * = `{item}: {rating}` gives ": 5"), newly allocated; NULL when `rated_item` does not begin
 * with {item}. */
char *prompt_rated_suffix(const prompt_templates *t, const char *rating);
/* An item's catalogue title; dies when the catalogue lacks the item. */
const char *prompt_title(const catalog *cat, int32_t item);

/* The umbrella part, last: promptset.h uses the types above (its own #include of this header
 * is then a no-op). */
#include "rec/promptset.h"

#endif
