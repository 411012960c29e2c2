/* test_metrics.c - metric values against hand computations, and the bootstrap. */
#include "../unit/harness.h"
#include "rec/metrics.h"

#include <stdlib.h>

int main(void) {
    /* Positives {A,C,F} ranked [B,A,D,C,E,F] with A..F = 1..6:
     * DCG@5 = 1/log2(3) + 1/log2(5) = 1.0616063; IDCG@5 = 1 + 1/log2(3) + 1/2 = 2.1309298. */
    int32_t ranked[] = {2, 1, 4, 3, 5, 6}, pos[] = {1, 3, 6};
    CHECK_NEAR("ndcg@5 hand example", metric_ndcg(ranked, 6, pos, 3, 5), 0.498189, 1e-6);
    CHECK_NEAR("ndcg@1 miss", metric_ndcg(ranked, 6, pos, 3, 1), 0, 1e-12);
    CHECK_NEAR("ndcg@2", metric_ndcg(ranked, 6, pos, 3, 2), (1 / 1.5849625007) / (1 + 1 / 1.5849625007), 1e-9);
    CHECK_NEAR("ndcg@6 idcg over 3", metric_ndcg(ranked, 6, pos, 3, 6),
               (1 / 1.5849625007 + 1 / 2.3219280949 + 1 / 2.8073549221) / (1 + 1 / 1.5849625007 + 0.5), 1e-9);
    CHECK("hr@1 miss", metric_hr(ranked, 6, pos, 3, 1) == 0);
    CHECK("hr@2 hit", metric_hr(ranked, 6, pos, 3, 2) == 1);
    CHECK_NEAR("recall@4", metric_recall(ranked, 6, pos, 3, 4), 2.0 / 3, 1e-12);
    CHECK_NEAR("mrr", metric_mrr(ranked, 6, pos, 3), 0.5, 1e-12);
    /* A short ranking (K beyond its length) and a missing ranking are misses past their end. */
    CHECK_NEAR("short ranking", metric_hr(ranked, 1, pos, 3, 10), 0, 0);
    CHECK_NEAR("missing ranking", metric_ndcg(NULL, 0, pos, 3, 10), 0, 0);
    /* One positive: NDCG@K = 1/log2(rank+1). */
    int32_t one[] = {4};
    CHECK_NEAR("ndcg one positive at rank 3", metric_ndcg(ranked, 6, one, 1, 5), 0.5, 1e-12);

    /* Bootstrap: constant differences give a degenerate interval; a symmetric sample a
     * roughly symmetric one containing the mean; same seed, same interval. */
    double d[200], mean, lo, hi, lo2, hi2;
    for (int i = 0; i < 200; i++) d[i] = 0.25;
    bootstrap_mean_ci(d, 200, 500, 0.95, 7, &mean, &lo, &hi);
    CHECK("bootstrap constant", mean == 0.25 && lo == 0.25 && hi == 0.25);
    for (int i = 0; i < 200; i++) d[i] = (i % 2) ? 1 : -1;
    bootstrap_mean_ci(d, 200, 2000, 0.95, 7, &mean, &lo, &hi);
    CHECK("bootstrap contains mean", lo < mean && mean < hi);
    /* sd of the mean = 1/sqrt(200) = 0.0707; the 95% half-width is about 0.139. */
    CHECK_NEAR("bootstrap width", hi - lo, 2 * 1.96 / sqrt(200.0), 0.03);
    bootstrap_mean_ci(d, 200, 2000, 0.95, 7, &mean, &lo2, &hi2);
    CHECK("bootstrap seeded", lo == lo2 && hi == hi2);
    return 0;
}
