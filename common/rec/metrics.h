/* metrics.h - top-K ranking metrics per user, and the paired bootstrap.
 *
 * ranked: the user's ranking, best first (n items); pos: the user's test positives (m >= 1).
 *   HR@K     1 if any positive is in the top K
 *   NDCG@K   DCG@K / IDCG@K, gains 1/log2(rank+1) with 1-based ranks, IDCG over min(m, K)
 *   Recall@K hits in the top K / m
 *   MRR      1 / rank of the first positive in the whole ranking, 0 if none
 */
#ifndef ITREK_REC_METRICS_H
#define ITREK_REC_METRICS_H

#include <stdint.h>

double metric_hr(const int32_t *ranked, int n, const int32_t *pos, int m, int k);
double metric_ndcg(const int32_t *ranked, int n, const int32_t *pos, int m, int k);
double metric_recall(const int32_t *ranked, int n, const int32_t *pos, int m, int k);
double metric_mrr(const int32_t *ranked, int n, const int32_t *pos, int m);

/* 95% (or any level) percentile bootstrap of the mean of d[0..n): B resamples of users with
 * replacement, seeded. Writes the mean and the interval. */
void bootstrap_mean_ci(const double *d, int n, int B, double level, uint64_t seed, double *mean, double *lo,
                       double *hi);

#endif
