/* metrics.c - HR, NDCG, Recall, MRR and the bootstrap interval. */
#include "rec/metrics.h"

#include "io/err.h"
#include "io/rng.h"

#include <math.h>
#include <stdlib.h>

/* m is small (a user's test positives), so a linear scan is the fastest membership test. */
static int is_pos(int32_t item, const int32_t *pos, int m) {
    for (int j = 0; j < m; j++)
        if (pos[j] == item) return 1;
    return 0;
}

double metric_hr(const int32_t *ranked, int n, const int32_t *pos, int m, int k) {
    for (int r = 0; r < n && r < k; r++)
        if (is_pos(ranked[r], pos, m)) return 1;
    return 0;
}

double metric_ndcg(const int32_t *ranked, int n, const int32_t *pos, int m, int k) {
    double dcg = 0, idcg = 0;
    for (int r = 0; r < n && r < k; r++)
        if (is_pos(ranked[r], pos, m)) dcg += 1.0 / log2(r + 2.0);
    for (int r = 0; r < m && r < k; r++) idcg += 1.0 / log2(r + 2.0);
    return idcg > 0 ? dcg / idcg : 0;
}

double metric_recall(const int32_t *ranked, int n, const int32_t *pos, int m, int k) {
    int hits = 0;
    for (int r = 0; r < n && r < k; r++) hits += is_pos(ranked[r], pos, m);
    return m > 0 ? (double)hits / m : 0;
}

double metric_mrr(const int32_t *ranked, int n, const int32_t *pos, int m) {
    for (int r = 0; r < n; r++)
        if (is_pos(ranked[r], pos, m)) return 1.0 / (r + 1);
    return 0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bootstrap_mean_ci(const double *d, int n, int B, double level, uint64_t seed, double *mean, double *lo,
                       double *hi) {
    double s = 0;
    for (int i = 0; i < n; i++) s += d[i];
    *mean = n ? s / n : 0;
    if (n == 0 || B <= 0) { *lo = *hi = *mean; return; }
    double *means = xmalloc(sizeof *means * (size_t)B);
    rng_t rng;
    rng_init(&rng, seed, 0xB007);
    for (int b = 0; b < B; b++) {
        double t = 0;
        for (int i = 0; i < n; i++) t += d[rng_below(&rng, (uint64_t)n)];
        means[b] = t / n;
    }
    qsort(means, (size_t)B, sizeof *means, cmp_double);
    double a = (1 - level) / 2;
    int il = (int)floor(a * (B - 1)), ih = (int)ceil((1 - a) * (B - 1));
    *lo = means[il];
    *hi = means[ih];
    free(means);
}
