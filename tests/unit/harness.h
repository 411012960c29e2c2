/* harness.h - the smallest unit-test harness: each CHECK prints "PASS name" or
 * "FAIL name: why"; tests/run.sh counts those lines. A test program exits 0 even when
 * checks fail (the runner counts failures), and non-zero only if it crashed. */
#ifndef ITREK_TEST_HARNESS_H
#define ITREK_TEST_HARNESS_H
#include <math.h>
#include <stdio.h>

static int harness_failed;

#define CHECK(name, cond) do { \
    if (cond) printf("PASS %s\n", name); \
    else { printf("FAIL %s: %s (%s:%d)\n", name, #cond, __FILE__, __LINE__); harness_failed++; } \
    fflush(stdout); } while (0)

/* |got - want| <= tol * max(1, |want|) */
#define CHECK_NEAR(name, got, want, tol) do { \
    double g_ = (got), w_ = (want), t_ = (tol) * (fabs(w_) > 1 ? fabs(w_) : 1); \
    if (fabs(g_ - w_) <= t_) printf("PASS %s\n", name); \
    else { printf("FAIL %s: got %.9g want %.9g tol %.3g (%s:%d)\n", name, g_, w_, t_, __FILE__, __LINE__); harness_failed++; } \
    fflush(stdout); } while (0)

#endif
