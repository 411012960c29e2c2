/* mf.h - matrix factorisation with the BPR loss, its top-N scoring, and its stream form.
 *
 * score(u, i) = p_u . q_i + b_i
 *
 * Training (BPR, Rendle et al. 2009): for each positive (u, i) of the train part, draw
 * `negatives` items j uniformly among items the user has no train interaction with, and take
 * an SGD step on -ln sigmoid(score(u,i) - score(u,j)) + L2. Mini-batches of `batch` triples
 * compute their gradients at the same parameters and apply them in order.
 *
 * Parallel and deterministic (DSGD-style strata, Gemulla et al. 2011): each epoch users and
 * items are split at random into T blocks (T = threads); in stratum s, worker t trains the
 * positives with user block t and item block (t+s) mod T, drawing negatives from that item
 * block, so no two workers touch the same row. The result depends on seed and T only.
 *
 * Early stopping: every eval_every epochs HR@10 or NDCG@10 on the valid part (ranking all
 * items the user has no train interaction with); the best epoch's parameters are kept and
 * training stops after `patience` evaluations without improvement.
 */
#ifndef ITREK_REC_MF_H
#define ITREK_REC_MF_H

#include "io/stream.h"
#include "rec/data.h"

#include <stdbool.h>

typedef enum { MF_METRIC_NDCG10 = 0, MF_METRIC_HR10 = 1 } mf_metric;

typedef struct {
    int dim;
    double lr, reg, reg_bias, init_std;
    int epochs, batch, negatives;
    int eval_every, patience;
    mf_metric metric;
    bool positives_all; /* positives: every train interaction (true) or liked ones only */
    double recency;       /* > 0: a positive's step is scaled by max(floor, exp(-age/recency)), age = the
                             number of the user's more recent train positives; 0: off */
    double recency_floor;
    uint64_t seed;
    int threads;
    bool quiet;
    double log_every;
} mf_params;

typedef struct {
    int dim;
    int32_t n_users, n_items;
    float *P;          /* (n_users, dim) */
    float *Q;          /* (n_items, dim) */
    float *bias;       /* (n_items) */
    uint8_t *has_item; /* (n_items): 1 for items that exist (appear in the interactions) */
    /* training report */
    int best_epoch, epochs_run;
    double best_valid;
    double train_seconds;
    long long triples;
} mf_model;

void mf_params_default(mf_params *p);
void mf_train(mf_model *m, const interactions *ia, const mf_params *p);
void mf_free(mf_model *m);

/* Top n items per user by score, skipping excluded items (each user's lists in excl[0..n_excl)).
 * out_items/out_scores: (n_users_list, n); fewer than n available -> padded with -1 / -inf. */
void mf_topn(const mf_model *m, const int32_t *users, int n_users_list, const user_lists *const *excl, int n_excl,
             int n, int threads, int32_t *out_items, float *out_scores);

/* Mean HR@10 or NDCG@10 on the positives `pos` (user_lists), excluding `excl`. */
double mf_evaluate(const mf_model *m, const user_lists *pos, const user_lists *const *excl, int n_excl, mf_metric metric,
                   int threads);

/* itrek.mf stream. */
void mf_write(const mf_model *m, const mf_params *p, const char *path, bool zstd, const char *inputs_name);
void mf_read(mf_model *m, const char *path);

#endif
