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
 *
 * The model type and its stream form (itrek.mf) are in records/mf.h.
 */
#ifndef ITREK_REC_MF_H
#define ITREK_REC_MF_H

#include "io/stream.h"
#include "rec/data.h"
#include "records/mf.h"

#include <stdbool.h>

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


#endif
