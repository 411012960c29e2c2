/* sampling.c - adaptive (importance + clustering + repetition penalty) and uniform user
 * sampling; k-means with k-means++ initialisation. See sampling.h. */
#include "rec/sampling.h"

#include "io/err.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void sampling_params_default(sampling_params *p) {
    p->uniform = false;
    p->draws = 5000;
    p->pool = 0.6;
    p->penalty = 0.92;
    p->clusters = 10;
    p->kmeans_iters = 100;
}

/* Index of the first cumulative weight > x (cum is non-decreasing, cum[m-1] > x). */
static int upper_index(const double *cum, int m, double x) {
    int lo = 0, hi = m - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (cum[mid] > x) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

void draw_weighted(rng_t *r, const int32_t *values, const double *w, int m, int n, int32_t *out) {
    double *cum = xmalloc(sizeof *cum * (size_t)(m > 0 ? m : 1));
    double s = 0;
    for (int i = 0; i < m; i++) {
        s += w[i] > 0 ? w[i] : 0;
        cum[i] = s;
    }
    if (!(s > 0)) die("sampling: all weights are zero");
    for (int k = 0; k < n; k++) {
        int i = upper_index(cum, m, rng_uniform(r) * s);
        while (i > 0 && !(w[i] > 0)) i--; /* never land on a zero-weight entry (rounding at the edge) */
        out[k] = values[i];
    }
    free(cum);
}

static double sqdist(const float *x, const double *c, int dim) {
    double s = 0;
    for (int d = 0; d < dim; d++) {
        double t = (double)x[d] - c[d];
        s += t * t;
    }
    return s;
}

int kmeans(const float *X, int n, int dim, int k, int max_iter, rng_t *r, int *labels, double *centroids,
           double *inertia) {
    if (k < 1 || n < 1) die("kmeans: need k >= 1 and n >= 1 (k=%d, n=%d)", k, n);
    if (k > n) k = n;
    double *d2 = xmalloc(sizeof *d2 * (size_t)n);
    /* k-means++ */
    int first = (int)rng_below(r, (uint64_t)n);
    for (int d = 0; d < dim; d++) centroids[d] = X[(size_t)first * dim + d];
    for (int i = 0; i < n; i++) d2[i] = sqdist(X + (size_t)i * dim, centroids, dim);
    for (int c = 1; c < k; c++) {
        double s = 0;
        for (int i = 0; i < n; i++) s += d2[i];
        int pick;
        if (s > 0) {
            double x = rng_uniform(r) * s, acc = 0;
            pick = n - 1;
            for (int i = 0; i < n; i++) {
                acc += d2[i];
                if (acc > x && d2[i] > 0) { pick = i; break; }
            }
            while (pick > 0 && !(d2[pick] > 0)) pick--;
        } else {
            pick = (int)rng_below(r, (uint64_t)n); /* all points coincide with centres */
        }
        double *cc = centroids + (size_t)c * dim;
        for (int d = 0; d < dim; d++) cc[d] = X[(size_t)pick * dim + d];
        for (int i = 0; i < n; i++) {
            double t = sqdist(X + (size_t)i * dim, cc, dim);
            if (t < d2[i]) d2[i] = t;
        }
    }
    /* Lloyd */
    for (int i = 0; i < n; i++) labels[i] = -1;
    double *sum = xmalloc(sizeof *sum * (size_t)k * dim);
    int *cnt = xmalloc(sizeof *cnt * (size_t)k);
    int it = 0;
    for (; it < max_iter; it++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            int best = 0;
            double bd = DBL_MAX;
            for (int c = 0; c < k; c++) {
                double t = sqdist(X + (size_t)i * dim, centroids + (size_t)c * dim, dim);
                if (t < bd) { bd = t; best = c; }
            }
            d2[i] = bd;
            if (labels[i] != best) { labels[i] = best; changed++; }
        }
        if (!changed) break;
        memset(sum, 0, sizeof *sum * (size_t)k * dim);
        memset(cnt, 0, sizeof *cnt * (size_t)k);
        for (int i = 0; i < n; i++) {
            cnt[labels[i]]++;
            for (int d = 0; d < dim; d++) sum[(size_t)labels[i] * dim + d] += X[(size_t)i * dim + d];
        }
        for (int c = 0; c < k; c++)
            if (cnt[c] > 0)
                for (int d = 0; d < dim; d++) centroids[(size_t)c * dim + d] = sum[(size_t)c * dim + d] / cnt[c];
    }
    if (inertia) {
        double s = 0;
        for (int i = 0; i < n; i++) s += d2[i];
        *inertia = s;
    }
    free(sum);
    free(cnt);
    free(d2);
    return it;
}

void draw_penalised(rng_t *r, const int32_t *pool, int m, double C, int n, int32_t *out) {
    int32_t maxid = 0;
    for (int i = 0; i < m; i++)
        if (pool[i] > maxid) maxid = pool[i];
    int *copies = xcalloc((size_t)maxid + 1, sizeof *copies);
    for (int i = 0; i < m; i++) copies[pool[i]]++;
    double *w = xmalloc(sizeof *w * (size_t)(m > 0 ? m : 1));
    for (int i = 0; i < m; i++) w[i] = pow(C, copies[pool[i]] - 1);
    draw_weighted(r, pool, w, m, n, out);
    free(w);
    free(copies);
}

void sampling_draw(sampling_result *res, const sampling_params *p, const int32_t *n_liked, int32_t n_users,
                   const float *vecs, int dim, uint64_t seed) {
    memset(res, 0, sizeof *res);
    rng_t r;
    rng_init(&r, seed, 0x5A3D1E);
    int32_t *elig = xmalloc(sizeof *elig * (size_t)(n_users > 0 ? n_users : 1));
    int ne = 0;
    for (int32_t u = 0; u < n_users; u++)
        if (n_liked[u] >= 2) elig[ne++] = u;
    if (ne == 0) die("sampling: no user has two or more liked train items");
    res->eligible = ne;
    res->n = p->draws;
    res->users = xmalloc(sizeof *res->users * (size_t)(p->draws > 0 ? p->draws : 1));
    if (p->uniform) {
        for (int k = 0; k < p->draws; k++) res->users[k] = elig[rng_below(&r, (uint64_t)ne)];
    } else {
        int n_pool = (int)lround(p->pool * p->draws);
        if (n_pool < 1) n_pool = 1;
        /* importance list */
        double *w = xmalloc(sizeof *w * (size_t)ne);
        for (int i = 0; i < ne; i++) w[i] = log((double)n_liked[elig[i]]);
        int k = p->clusters < ne ? p->clusters : ne;
        /* the cluster list can round to a few more than n_pool */
        int32_t *pool = xmalloc(sizeof *pool * (size_t)(2 * n_pool + k + 1));
        draw_weighted(&r, elig, w, ne, n_pool, pool);
        res->n_importance = n_pool;
        free(w);
        /* cluster list */
        if (!vecs) die("sampling: adaptive sampling needs the MF user vectors");
        float *X = xmalloc(sizeof *X * (size_t)ne * dim);
        for (int i = 0; i < ne; i++) memcpy(X + (size_t)i * dim, vecs + (size_t)elig[i] * dim, sizeof *X * dim);
        int *labels = xmalloc(sizeof *labels * (size_t)ne);
        double *cent = xmalloc(sizeof *cent * (size_t)k * dim);
        res->kmeans_iters = kmeans(X, ne, dim, k, p->kmeans_iters, &r, labels, cent, &res->kmeans_inertia);
        res->cluster_sizes = xcalloc((size_t)(p->clusters > 0 ? p->clusters : 1), sizeof *res->cluster_sizes);
        for (int i = 0; i < ne; i++) res->cluster_sizes[labels[i]]++;
        int32_t *members = xmalloc(sizeof *members * (size_t)ne);
        int m = n_pool;
        for (int c = 0; c < k; c++) {
            int nm = 0;
            for (int i = 0; i < ne; i++)
                if (labels[i] == c) members[nm++] = elig[i];
            if (nm == 0) continue;
            int want = (int)lround((double)nm / ne * n_pool);
            for (int j = 0; j < want; j++) pool[m++] = members[rng_below(&r, (uint64_t)nm)];
        }
        res->n_cluster = m - n_pool;
        draw_penalised(&r, pool, m, p->penalty, p->draws, res->users);
        free(members);
        free(cent);
        free(labels);
        free(X);
        free(pool);
    }
    /* spread */
    int *cnt = xcalloc((size_t)n_users + 1, sizeof *cnt);
    for (int k = 0; k < res->n; k++) cnt[res->users[k]]++;
    res->min_per_user = 0;
    for (int32_t u = 0; u < n_users; u++) {
        if (!cnt[u]) continue;
        if (res->distinct == 0 || cnt[u] < res->min_per_user) res->min_per_user = cnt[u];
        if (cnt[u] > res->max_per_user) res->max_per_user = cnt[u];
        res->distinct++;
    }
    res->mean_per_user = res->distinct ? (double)res->n / res->distinct : 0;
    free(cnt);
    free(elig);
}

void sampling_result_free(sampling_result *res) {
    free(res->users);
    free(res->cluster_sizes);
    memset(res, 0, sizeof *res);
}
