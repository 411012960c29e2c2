/* test_itemvec.c - PPMI item vectors from train-split transitions (rec/itemvec.h), against
 * numpy: the Gram matrix V V^T (sign-free) of the same counts, PPMI and np.linalg.svd, computed
 * by hand for these four histories (window 2, dim 2); tolerance 1e-5 (float32 vectors). */
#include "harness.h"
#include "rec/itemvec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static interaction *add(interaction *v, size_t *n, int32_t user, int32_t item, int64_t ts, part_t part) {
    v[*n] = (interaction){.user = user, .item = item, .rating = 4, .ts = ts, .part = (uint8_t)part};
    (*n)++;
    return v;
}

int main(void) {
    static const int hist[4][4] = {{1, 2, 3, 4}, {2, 3, 5, 0}, {1, 3, 4, 5}, {4, 2, 1, 0}};
    interaction v[32];
    size_t n = 0;
    for (int u = 0; u < 4; u++)
        for (int k = 0; k < 4 && hist[u][k]; k++) add(v, &n, u + 1, hist[u][k], 100 * (u + 1) + k, PART_TRAIN);
    add(v, &n, 1, 6, 999, PART_VALID); /* never read: item 6 has no vector */
    add(v, &n, 2, 1, 5, PART_TEST);    /* before user 2's train rows in time, but not train */
    interactions ia = {.v = v, .n = n, .n_users = 5, .n_items = 7, .like = 4, .source = "test"};

    static const double gram[5][5] = {
        {0.201633843, 0.052515991, 0.310353922, 0.227637819, 0.067217578},
        {0.052515991, 0.332099005, 0.068621315, 0.084185150, 0.414280055},
        {0.310353922, 0.068621315, 0.478163668, 0.349424382, 0.088245228},
        {0.227637819, 0.084185150, 0.349424382, 0.258942003, 0.106908848},
        {0.067217578, 0.414280055, 0.088245228, 0.106908848, 0.516812642}};
    itemvec_params p = {.window = 2, .dim = 2};
    unsigned char *present = NULL;
    char err[256] = "";
    float *vec = itemvec_ppmi(&ia, &p, &present, err, sizeof err);
    CHECK("ppmi: vectors computed", vec != NULL);
    if (!vec) { printf("  (%s)\n", err); return 0; }
    CHECK("ppmi: items 1-5 present, 0 and 6 (valid only) not",
          present[1] && present[2] && present[3] && present[4] && present[5] && !present[0] && !present[6]);
    CHECK("ppmi: rows without a train transition are zero", vec[12] == 0 && vec[13] == 0 && vec[0] == 0 && vec[1] == 0);
    double worst = 0;
    for (int i = 1; i <= 5; i++)
        for (int j = 1; j <= 5; j++) {
            double g = vec[i * 2] * vec[j * 2] + vec[i * 2 + 1] * vec[j * 2 + 1];
            if (fabs(g - gram[i - 1][j - 1]) > worst) worst = fabs(g - gram[i - 1][j - 1]);
        }
    CHECK_NEAR("ppmi: V V^T equals numpy's (largest |eigenvalue| first, a negative one second)", worst, 0, 1e-5);
    /* the sign convention: each column's largest entry is positive */
    for (int d = 0; d < 2; d++) {
        int big = 1;
        for (int i = 2; i <= 5; i++)
            if (fabs(vec[i * 2 + d]) > fabs(vec[big * 2 + d])) big = i;
        CHECK(d == 0 ? "ppmi: column 0's largest entry positive" : "ppmi: column 1's largest entry positive", vec[big * 2 + d] > 0);
    }
    free(vec);
    free(present);

    p.dim = 6;
    vec = itemvec_ppmi(&ia, &p, &present, err, sizeof err);
    CHECK("ppmi: more dimensions than items is an error", vec == NULL && strstr(err, "5 items") && strstr(err, "6 dimensions"));
    return 0;
}
