/* test_sampling.c - weighted draws, k-means, the repetition penalty and user sampling. */
#include "harness.h"
#include "rec/sampling.h"

#include <stdlib.h>
#include <string.h>

static void test_weighted(void) {
    rng_t r;
    rng_init(&r, 7, 0);
    int32_t vals[3] = {10, 20, 30};
    double w[3] = {0, 1, 3};
    enum { N = 200000 };
    int32_t *out = malloc(sizeof *out * N);
    draw_weighted(&r, vals, w, 3, N, out);
    int c[3] = {0, 0, 0};
    for (int k = 0; k < N; k++) c[out[k] / 10 - 1]++;
    CHECK("weighted: zero weight never drawn", c[0] == 0);
    CHECK_NEAR("weighted: 1:3 weights give 1/4", (double)c[1] / N, 0.25, 0.02);
    /* same seed, same draws */
    rng_t r2;
    rng_init(&r2, 7, 0);
    int32_t *out2 = malloc(sizeof *out2 * N);
    draw_weighted(&r2, vals, w, 3, N, out2);
    CHECK("weighted: deterministic", memcmp(out, out2, sizeof *out * N) == 0);
    free(out);
    free(out2);
}

static void test_penalty(void) {
    rng_t r;
    rng_init(&r, 3, 0);
    /* user 1 has three copies (weight 0.5^2 each, 0.75 in all), user 2 one (weight 1) */
    int32_t pool[4] = {1, 1, 1, 2};
    enum { N = 200000 };
    int32_t *out = malloc(sizeof *out * N);
    draw_penalised(&r, pool, 4, 0.5, N, out);
    int c1 = 0;
    for (int k = 0; k < N; k++) c1 += out[k] == 1;
    CHECK_NEAR("penalty: P(user with 3 copies) = 3*0.25/1.75", (double)c1 / N, 0.75 / 1.75, 0.02);
    draw_penalised(&r, pool, 4, 1.0, N, out);
    c1 = 0;
    for (int k = 0; k < N; k++) c1 += out[k] == 1;
    CHECK_NEAR("penalty: C = 1 draws by copies", (double)c1 / N, 0.75, 0.02);
    free(out);
}

/* Three tight blobs in 2-D: 30 points near (0,0), 20 near (10,0), 10 near (0,10). */
static void blobs(float *X, int *truth) {
    rng_t r;
    rng_init(&r, 11, 0);
    static const float cx[3] = {0, 10, 0}, cy[3] = {0, 0, 10};
    static const int n[3] = {30, 20, 10};
    int k = 0;
    for (int b = 0; b < 3; b++)
        for (int j = 0; j < n[b]; j++, k++) {
            X[2 * k] = cx[b] + (float)(0.3 * rng_normal(&r));
            X[2 * k + 1] = cy[b] + (float)(0.3 * rng_normal(&r));
            truth[k] = b;
        }
}

static void test_kmeans(void) {
    float X[120];
    int truth[60], lab[60], lab2[60];
    double cent[6], cent2[6], inertia, inertia2;
    blobs(X, truth);
    int ok_all = 1;
    for (uint64_t seed = 1; seed <= 10; seed++) {
        rng_t r;
        rng_init(&r, seed, 0);
        kmeans(X, 60, 2, 3, 100, &r, lab, cent, &inertia);
        /* the clustering equals the blobs up to renaming */
        int map[3] = {-1, -1, -1}, ok = 1;
        for (int i = 0; i < 60; i++) {
            if (map[truth[i]] < 0) map[truth[i]] = lab[i];
            else if (map[truth[i]] != lab[i]) ok = 0;
        }
        if (map[0] == map[1] || map[0] == map[2] || map[1] == map[2]) ok = 0;
        ok_all &= ok;
    }
    CHECK("kmeans++: three separated blobs recovered for 10 seeds", ok_all);
    rng_t a, b;
    rng_init(&a, 5, 0);
    rng_init(&b, 5, 0);
    int it1 = kmeans(X, 60, 2, 3, 100, &a, lab, cent, &inertia);
    int it2 = kmeans(X, 60, 2, 3, 100, &b, lab2, cent2, &inertia2);
    CHECK("kmeans: deterministic for a seed", it1 == it2 && memcmp(lab, lab2, sizeof lab) == 0 && inertia == inertia2);
    CHECK("kmeans: converged before the iteration cap", it1 < 100);
    /* inertia: about 60 points * 2 dims * 0.09 */
    CHECK("kmeans: inertia of tight blobs is small", inertia < 60 * 2 * 0.09 * 2);
    /* k = 1: the centre is the mean */
    rng_init(&a, 1, 0);
    kmeans(X, 60, 2, 1, 100, &a, lab, cent, NULL);
    double mx = 0;
    for (int i = 0; i < 60; i++) mx += X[2 * i];
    CHECK_NEAR("kmeans: k=1 centre is the mean", cent[0], mx / 60, 1e-9);
}

static void test_draw(void) {
    /* users 0..59 with the blob vectors; n_liked: user 0 has 1 (not eligible), users 1..29 have
     * 2, the rest 100 */
    enum { NU = 60 };
    float X[2 * NU];
    int truth[NU];
    blobs(X, truth);
    int32_t n_liked[NU];
    for (int u = 0; u < NU; u++) n_liked[u] = u == 0 ? 1 : u < 30 ? 2 : 100;
    sampling_params p;
    sampling_params_default(&p);
    p.draws = 4000;
    p.clusters = 3;
    sampling_result a, b, c;
    sampling_draw(&a, &p, n_liked, NU, X, 2, 1);
    sampling_draw(&b, &p, n_liked, NU, X, 2, 1);
    sampling_draw(&c, &p, n_liked, NU, X, 2, 2);
    CHECK("adaptive: draws", a.n == 4000);
    CHECK("adaptive: eligible users have n_u >= 2", a.eligible == NU - 1);
    int never0 = 1, cnt[NU] = {0};
    for (int k = 0; k < a.n; k++) { never0 &= a.users[k] != 0; cnt[a.users[k]]++; }
    CHECK("adaptive: a user with one liked item is never drawn", never0);
    CHECK("adaptive: same seed, same draws", memcmp(a.users, b.users, sizeof *a.users * (size_t)a.n) == 0);
    CHECK("adaptive: another seed, other draws", memcmp(a.users, c.users, sizeof *a.users * (size_t)a.n) != 0);
    CHECK("adaptive: pool sizes (cluster list rounded per cluster)", a.n_importance == 2400 && abs(a.n_cluster - 2400) <= 3);
    CHECK("adaptive: cluster sizes are the blobs (29 eligible, 20, 10)",
          a.cluster_sizes[0] + a.cluster_sizes[1] + a.cluster_sizes[2] == 59);
    int distinct = 0, mn = 1 << 30, mx = 0;
    for (int u = 0; u < NU; u++)
        if (cnt[u]) { distinct++; if (cnt[u] < mn) mn = cnt[u]; if (cnt[u] > mx) mx = cnt[u]; }
    CHECK("adaptive: distinct / min / max reported", a.distinct == distinct && a.min_per_user == mn && a.max_per_user == mx);
    CHECK_NEAR("adaptive: mean per user", a.mean_per_user, 4000.0 / distinct, 1e-12);
    sampling_result_free(&a);
    sampling_result_free(&b);
    sampling_result_free(&c);
    /* importance (no penalty): users with 100 liked items (weight ln 100) come up more often
     * than those with 2 (ln 2), who share the clusters with them */
    p.penalty = 1.0;
    sampling_draw(&a, &p, n_liked, NU, X, 2, 1);
    memset(cnt, 0, sizeof cnt);
    for (int k = 0; k < a.n; k++) cnt[a.users[k]]++;
    double heavy = 0, light = 0;
    for (int u = 1; u < 30; u++) light += cnt[u];
    for (int u = 30; u < NU; u++) heavy += cnt[u];
    CHECK("adaptive: heavier users drawn more often per user", heavy / 30 > 2 * light / 29);
    sampling_result_free(&a);
    /* with few copies per user (60 draws) the penalty spreads the draws; with many copies it
     * would favour the least-copied users instead, as c * C^(c-1) falls beyond c = -1/ln C */
    p.draws = 60;
    long d_strong = 0, d_none = 0;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        p.penalty = 1.0;
        sampling_draw(&a, &p, n_liked, NU, X, 2, seed);
        d_none += a.distinct;
        sampling_result_free(&a);
        p.penalty = 0.65;
        sampling_draw(&a, &p, n_liked, NU, X, 2, seed);
        d_strong += a.distinct;
        sampling_result_free(&a);
    }
    CHECK("adaptive: a penalty (C = 0.65) reaches more distinct users when users have few copies", d_strong > d_none);
    p.draws = 4000;
    /* uniform */
    p.uniform = true;
    sampling_draw(&a, &p, n_liked, NU, NULL, 0, 1);
    memset(cnt, 0, sizeof cnt);
    never0 = 1;
    for (int k = 0; k < a.n; k++) { never0 &= a.users[k] != 0; cnt[a.users[k]]++; }
    CHECK("uniform: only eligible users", never0);
    CHECK_NEAR("uniform: about draws/eligible each", (double)cnt[45], 4000.0 / 59, 0.5);
    sampling_result_free(&a);
}

int main(void) {
    test_weighted();
    test_penalty();
    test_kmeans();
    test_draw();
    return 0;
}
