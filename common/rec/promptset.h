/* promptset.h - the record generator: training instructions and evaluation queries, each a
 * prompt (rec/prompt.h) with the items it shows, its history and, for training, its answer. It
 * decides what the prompts are about (targets, pairs, negatives, candidates, hints); prompt.h
 * decides how they read. The task names are records/task.h's. See docs/promptgen.md.
 */
#ifndef ITREK_REC_PROMPTSET_H
#define ITREK_REC_PROMPTSET_H

#include "rec/data.h"
#include "rec/mf.h"
#include "rec/prompt.h"
#include "records/candidates.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Least-squares line rating = a + b * score over (score, rating) pairs; b = 0 and a = mean when
 * the scores do not vary. */
void fit_line(const double *x, const double *y, size_t n, double *a, double *b);


/* Where the hints come from.
 * HINTS_BASE: the base model (MF): pointwise its score calibrated to the rating scale, pairwise
 *   which of the two it scores higher, listwise its top RTASK_LIST_TOP.
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
    bool tasks[RTASK_COUNT];
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
 * random choices), up to RTASK_COUNT per draw, in draw order then task order; a task a user
 * cannot fill (listwise needs 6 liked train items) is skipped and counted in skipped[task].
 * Runs on ps->threads threads; the result does not depend on the thread count. */
prompt_record *promptset_train(const promptset *ps, const int32_t *draws, int n, long first_draw, int *n_out,
                               long skipped[RTASK_COUNT]);
/* Evaluation: the queries of users[0..n) (each with candidates in cs): per user the pointwise
 * queries (one per candidate, base order), the pairwise ones (floor(c/2) disjoint random pairs,
 * each in both orders) and one listwise query over the candidates in base order. */
prompt_record *promptset_eval(const promptset *ps, const cand_set *cs, const int32_t *users, int n, int *n_out);
void prompt_records_free(prompt_record *r, int n);

#endif
