/* sampling.h - which users the training prompts are drawn for (RecRanker's adaptive user
 * sampling, and uniform sampling), and the k-means it clusters users with.
 *
 * Adaptive sampling (RecRanker, llm recommender/prompt/make_train_prompt.py):
 *   1. importance list: round(pool * draws) draws with replacement, user u with weight
 *      ln(n_u), n_u = the user's liked train items;
 *   2. cluster list: k-means (k-means++ initialisation, seeded) on the MF user vectors; cluster
 *      c gets round(|c| / N * pool * draws) draws, uniform with replacement inside the cluster;
 *   3. the two lists are concatenated and `draws` users are drawn with replacement from the
 *      merged list, each entry with weight C^(c_u - 1), c_u = the copies of u in the list.
 * Only eligible users take part (n_u >= 2: ln(1) = 0 would exclude a user from the importance
 * list anyway, and a user needs a liked item besides the held-out target). Every random choice
 * comes from one rng, so the draws depend only on the inputs and the seed.
 */
#ifndef ITREK_REC_SAMPLING_H
#define ITREK_REC_SAMPLING_H

#include "io/rng.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    bool uniform;      /* uniform draws over eligible users instead of adaptive */
    int draws;         /* final draws (ML-100K: 5000) */
    double pool;       /* each of the two pool lists holds round(pool * draws) draws (0.6) */
    double penalty;    /* C of the repetition penalty C^(c_u - 1) (0.92) */
    int clusters;      /* k of k-means (10) */
    int kmeans_iters;  /* Lloyd iterations at most (100) */
} sampling_params;

typedef struct {
    int32_t *users;    /* draws, in draw order */
    int n;             /* == params.draws */
    int eligible;      /* users with n_u >= 2 */
    int distinct;      /* distinct users drawn */
    int min_per_user, max_per_user; /* over the distinct users drawn */
    double mean_per_user;
    int n_importance, n_cluster;    /* sizes of the two pool lists (adaptive) */
    int kmeans_iters;               /* Lloyd iterations run (adaptive) */
    double kmeans_inertia;          /* sum of squared distances to the centroids */
    int *cluster_sizes;             /* (clusters) eligible users per cluster (adaptive) */
} sampling_result;

void sampling_params_default(sampling_params *p);

/* Draw users. n_liked[u] (u < n_users) is n_u; vecs (n_users x dim, row u = user u) are the MF
 * user vectors, needed for adaptive sampling only (NULL allowed with uniform). Dies when no
 * user is eligible. */
void sampling_draw(sampling_result *res, const sampling_params *p, const int32_t *n_liked, int32_t n_users,
                   const float *vecs, int dim, uint64_t seed);
void sampling_result_free(sampling_result *res);

/* --- building blocks (exposed for tests) --- */

/* n draws with replacement from values[0..m) with weights w (>= 0, not all 0). */
void draw_weighted(rng_t *r, const int32_t *values, const double *w, int m, int n, int32_t *out);

/* k-means on n points of dimension dim (row-major X). k-means++ initialisation (first centre
 * uniform, then each next centre with probability proportional to the squared distance to the
 * nearest centre), then Lloyd iterations until no assignment changes or max_iter. Ties go to the
 * lower centre index; an empty cluster keeps its centre. labels (n), centroids (k x dim) out.
 * Returns the iterations run. k is capped at n by the caller. */
int kmeans(const float *X, int n, int dim, int k, int max_iter, rng_t *r, int *labels, double *centroids,
           double *inertia);

/* Repetition counts and penalised redraw: out[n] from pool[m] with weight C^(c_u - 1). */
void draw_penalised(rng_t *r, const int32_t *pool, int m, double C, int n, int32_t *out);

#endif
