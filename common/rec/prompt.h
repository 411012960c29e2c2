/* prompt.h - RecRanker's three prompt tasks in the alpaca wrapper, built from a template file,
 * with a token budget that drops the oldest history items. See docs/prompts.md.
 *
 * A prompt is laid out as
 *     W0 instruction W1 | history-part | query-part [hint-part] W2
 * where the wrapper template is "W0{instruction}W1{input}W2" and the input is the history part
 * followed by the query part and the hint. Everything before the query part depends only on the
 * user and the task, so the queries of one user and task share that prefix (prefix_len bytes).
 *
 * Template file (UTF-8): one `key = value` per line; blank lines and lines starting with '#'
 * are ignored; the value starts at the first non-blank after '=' and ends at the end of the line
 * (trailing blanks dropped); escapes: \n newline, \t tab, \s space, \\ backslash, and a
 * backslash at the very end of a line continues the value on the next line (whose leading
 * blanks are skipped). Placeholders are {name}; {{ and }} stand for literal braces. Every key
 * must be present exactly once, unknown keys and placeholders a key does not offer are errors.
 * pairwise.history and listwise.history show either the rated history ({history}, as pointwise
 * does) or the liked and disliked lists ({liked}, {disliked}); mixing the two is an error.
 *
 * This module knows nothing of tokenizers (rec does not include llm): the caller passes a token
 * counter, or none for the byte estimate.
 */
#ifndef ITREK_REC_PROMPT_H
#define ITREK_REC_PROMPT_H

#include "rec/data.h"
#include "rec/mf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { TASK_POINTWISE = 0, TASK_PAIRWISE = 1, TASK_LISTWISE = 2, TASK_COUNT = 3 } prompt_task;

const char *task_name(prompt_task t);
int task_from_name(const char *s, size_t n); /* -1 when unknown */

/* ---------- templates ---------- */

typedef enum {
    T_WRAPPER, T_ITEM, T_RATED_ITEM, T_RATED_SEP, T_LIST_SEP, T_NONE, T_ANSWER_SEP,
    T_POINT_INSTR, T_POINT_HIST, T_POINT_QUERY, T_POINT_HINT, T_POINT_RESP,
    T_PAIR_INSTR, T_PAIR_HIST, T_PAIR_QUERY, T_PAIR_HINT, T_PAIR_YES, T_PAIR_NO, T_PAIR_RESP,
    T_LIST_INSTR, T_LIST_HIST, T_LIST_QUERY, T_LIST_HINT, T_LIST_RESP,
    T_COUNT
} template_key;

typedef struct {
    char *text[T_COUNT];
    char *source; /* file name */
    /* per task: its history is the rated list ({history}: the last `history` rated items in time
     * order, rated_item joined by rated_sep); otherwise liked and disliked lists ({liked},
     * {disliked}). Always true for pointwise; for pairwise and listwise, true when their history
     * template uses {history} (set by templates_parse). */
    bool rated[TASK_COUNT];
} prompt_templates;

const char *template_key_name(template_key k);
/* Parse template text (name for messages: "NAME:LINE: what"). Dies on any error. */
void templates_parse(prompt_templates *t, const char *text, size_t n, const char *name);
void templates_load(prompt_templates *t, const char *path);
void templates_free(prompt_templates *t);

/* ---------- building ---------- */

/* Tokens of text (n bytes) as the model will see it, BOS included. */
typedef int (*token_count_fn)(void *ctx, const char *text, size_t n);

/* Without a tokenizer: 1 + ceil(bytes / PROMPT_BYTES_PER_TOKEN). */
#define PROMPT_BYTES_PER_TOKEN 2.0
int prompt_estimate_tokens(const char *text, size_t n);

enum { PROMPT_MAX_ITEMS = 64, PROMPT_TOP = 5 };

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
    int32_t hint_top[PROMPT_TOP];   /* listwise: the base's top items, best first */
    int n_hint_top;
    /* training answer (ignored unless has_response) */
    bool has_response;
    int rating;                     /* pointwise */
    bool answer_yes;                /* pairwise */
    int32_t answer[PROMPT_TOP];     /* listwise, best first */
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

/* A template with its placeholders filled: kv holds nkv (name, value) pairs; newly allocated. */
char *template_render(const char *tmpl, const char *const *kv, int nkv);
/* The title of an item as the templates show it (the `item` key applied), newly allocated. */
char *prompt_item_text(const prompt_templates *t, const char *title);
/* What a rated history entry writes after its item for the rating text `rating` (`rated_item`
 * = `{item}: {rating}` gives ": 5"), newly allocated; NULL when `rated_item` does not begin
 * with {item}. */
/* A rating as the prompts write it: "5" for whole numbers, else %g. */
void prompt_format_rating(char *buf, size_t n, double r);
char *prompt_rated_suffix(const prompt_templates *t, const char *rating);
/* An item's catalogue title; dies when the catalogue lacks the item. */
const char *prompt_title(const catalog *cat, int32_t item);

/* Least-squares line rating = a + b * score over (score, rating) pairs; b = 0 and a = mean when
 * the scores do not vary. */
void fit_line(const double *x, const double *y, size_t n, double *a, double *b);

/* ---------- prompt sets: training instructions and evaluation queries ---------- */

/* A candidates stream (itrek.candidates) by user. */
typedef struct {
    int32_t n_users;      /* max user id + 1 */
    int32_t **items;      /* per user: candidates best first, or NULL */
    int *len;
    int32_t *order;       /* users in stream order */
    int n_order;
    char part[8];         /* header params.for */
    int n;                /* header params.n (0 when absent) */
    char *source;
} cand_set;

void cand_set_load(cand_set *c, const char *path);
void cand_set_free(cand_set *c);

/* Where the hints come from.
 * HINTS_BASE: the base model (MF): pointwise its score calibrated to the rating scale, pairwise
 *   which of the two it scores higher, listwise its top PROMPT_TOP.
 * HINTS_RECRANKER_LEAKY: a diagnostic that reproduces RecRanker's published hint construction
 *   (its data_processing/make_test_prompt.py and make_train_prompt.py, the flaw RecRankerEval,
 *   arXiv 2507.05880, reported): pointwise and listwise hints read a rating matrix of *every*
 *   rating in the split (train, valid and test), 0 when unrated, so a held-out item shows its
 *   real rating and every other candidate 0. Pairwise keeps the base model's hint, as RecRanker's
 *   pairwise hint comes from its conventional recommender's predictions, not from the matrix.
 *   Streams made so carry params.leaky = true; the leakage check rejects them unless told that
 *   the run is the diagnostic (docs/protocols.md, "The hint leak"). */
typedef enum { HINTS_BASE = 0, HINTS_RECRANKER_LEAKY = 1 } hint_source;

typedef struct {
    /* inputs (set by the caller) */
    const interactions *ia;
    const catalog *cat;
    const mf_model *mf;
    prompt_env env;
    int history;          /* most recent rated (rated histories) / liked items shown (50) */
    int max_dislikes;     /* most recent disliked items shown (10) */
    double dislike;       /* ratings <= dislike are dislikes (2) */
    bool tasks[TASK_COUNT];
    uint64_t seed;
    int threads;
    /* training only: which train items become the answers, and what the negatives are */
    bool next;            /* false: random train items with the rest of the history shown (RecRanker);
                           * true: the items that follow a random cut in time, with only the history
                           * before the cut shown (the shape of a leave-one-out query) */
    int hard;             /* 0: negatives uniform over the catalogue; N > 0: from the user's N best-
                           * scored MF items the user never interacted with (like the candidates) */
    hint_source hints;    /* with env.hint: where the hints come from (env.leaky must agree) */
    /* derived by promptset_init */
    bool eval;
    part_t part;          /* eval: the part the queries are for */
    double cal_a, cal_b;  /* rating ~ cal_a + cal_b * MF score (least squares on train) */
    long cal_n;
    user_lists hist;      /* per user: the history parts' interactions, oldest first */
    user_lists target_pos;/* eval: positives of the evaluated part */
    int32_t *n_liked;     /* (n_users) liked train items per user */
    uint8_t *seen;        /* (n_users x n_items) an interaction in any part, or one with a same-titled item */
    int32_t *neg_pool;    /* items a training negative may be: in the catalogue and the model */
    int n_neg_pool;
    int32_t *hard_pool;   /* (n_users x hard) training with hard > 0: each user's best-scored unseen
                           * items of neg_pool, best first; -1 pads users with fewer */
    float *rating_all;    /* HINTS_RECRANKER_LEAKY: (n_users x n_items) the rating in any part, 0 if none */
} promptset;

/* One output record (an instruction or a query). */
typedef struct {
    prompt_task task;
    int32_t user;
    prompt_text text;
    int32_t items[PROMPT_MAX_ITEMS]; /* shown as target / pair / candidates, in order */
    int32_t ranks[PROMPT_MAX_ITEMS]; /* eval: 0-based base ranks of items */
    int n_items;
    int pair;                        /* eval pairwise: pair index; -1 otherwise */
    bool swapped;
    int32_t *history;                /* history item ids as shown, oldest first */
    int n_history;
    int dropped;                     /* history entries dropped for the token budget */
    bool overlong;                   /* over the budget even with no history */
} prompt_record;

/* Derives the lists the builders need. eval: queries for `part` (history: train, and valid when
 * part is test); otherwise training (history: train). */
void promptset_init(promptset *ps, bool eval, part_t part);
void promptset_free(promptset *ps);
/* The base model's score and its calibration to the rating scale. */
double promptset_score(const promptset *ps, int32_t user, int32_t item);
double promptset_rating(const promptset *ps, int32_t user, int32_t item);
/* The pointwise hint's value and the score listwise hints rank by: promptset_rating for
 * HINTS_BASE; the rating matrix entry (0 when unrated) for HINTS_RECRANKER_LEAKY. */
double promptset_hint_rating(const promptset *ps, int32_t user, int32_t item);

/* Training: the records of draws[0..n) (draw indices first_draw..first_draw+n-1 seed their
 * random choices), up to TASK_COUNT per draw, in draw order then task order; a task a user
 * cannot fill (listwise needs 6 liked train items) is skipped and counted in skipped[task].
 * Runs on ps->threads threads; the result does not depend on the thread count. */
prompt_record *promptset_train(const promptset *ps, const int32_t *draws, int n, long first_draw, int *n_out,
                               long skipped[TASK_COUNT]);
/* Evaluation: the queries of users[0..n) (each with candidates in cs): per user the pointwise
 * queries (one per candidate, base order), the pairwise ones (floor(c/2) disjoint random pairs,
 * each in both orders) and one listwise query over the candidates in base order. */
prompt_record *promptset_eval(const promptset *ps, const cand_set *cs, const int32_t *users, int n, int *n_out);
void prompt_records_free(prompt_record *r, int n);

#endif
