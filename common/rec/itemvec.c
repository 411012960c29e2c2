/* itemvec.c - PPMI item vectors from train-split transitions (see itemvec.h). */
#include "rec/itemvec.h"

#include "records/itemvecs.h"

#include "io/err.h"
#include "io/stream.h"
#include "rec/corpus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* LAPACK's symmetric eigensolver (in OpenBLAS; Debian ships no lapack.h beside it). The trailing
 * size_t arguments are the lengths of the character arguments in the gfortran calling convention. */
void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
             const double *vl, const double *vu, const int *il, const int *iu, const double *abstol, int *m,
             double *w, double *z, const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
             const int *liwork, int *info, size_t ljobz, size_t lrange, size_t luplo);

static const double *sort_key;
static int by_abs_desc(const void *a, const void *b) {
    double x = fabs(sort_key[*(const int *)a]), y = fabs(sort_key[*(const int *)b]);
    return x < y ? 1 : x > y ? -1 : *(const int *)a - *(const int *)b;
}

float *itemvec_ppmi(const interactions *ia, const itemvec_params *p, unsigned char **present, char *err, size_t errlen) {
    user_lists hist;
    user_lists_build(&hist, ia, PART_BIT(PART_TRAIN), -INFINITY);
    /* the items that occur in a transition, numbered 0..n-1 */
    int32_t N = ia->n_items;
    int *slot = xmalloc(sizeof *slot * (size_t)(N > 0 ? N : 1));
    for (int32_t i = 0; i < N; i++) slot[i] = -1;
    int n = 0;
    for (int32_t u = 0; u < hist.n_users; u++) {
        int32_t len = ul_len(&hist, u);
        if (len < 2) continue;
        for (int32_t k = hist.off[u]; k < hist.off[u + 1]; k++)
            if (slot[hist.item[k]] < 0) slot[hist.item[k]] = n++;
    }
    if (n < p->dim || n < 2) {
        snprintf(err, errlen, "%d items with a train transition, fewer than the %d dimensions asked for", n, p->dim);
        free(slot);
        user_lists_free(&hist);
        return NULL;
    }
    /* symmetric transition counts (n, n), column-major = row-major */
    double *a = xcalloc((size_t)n * n, sizeof *a);
    for (int32_t u = 0; u < hist.n_users; u++) {
        const int32_t *it = hist.item + hist.off[u];
        int32_t len = ul_len(&hist, u);
        for (int32_t x = 0; x < len; x++)
            for (int32_t y = x + 1; y < len && y <= x + p->window; y++) {
                int i = slot[it[x]], j = slot[it[y]];
                a[(size_t)i * n + j] += 1.0 / (y - x);
                a[(size_t)j * n + i] += 1.0 / (y - x);
            }
    }
    user_lists_free(&hist);
    double *row = xcalloc((size_t)n, sizeof *row), total = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) row[i] += a[(size_t)i * n + j];
        total += row[i];
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double c = a[(size_t)i * n + j], pmi = c > 0 ? log(c * total / (row[i] * row[j])) : 0;
            a[(size_t)i * n + j] = pmi > 0 ? pmi : 0;
        }
    free(row);
    /* every eigenpair (the matrix is ~1,700 wide for ML-100K: seconds), then the dim largest |lambda| */
    double *w = xmalloc(sizeof *w * (size_t)n), *z = xmalloc(sizeof *z * (size_t)n * n), vl = 0, vu = 0, abstol = 0;
    int il = 0, iu = 0, m = 0, info = 0, lwork = -1, liwork = -1, iwq = 0;
    int *isuppz = xmalloc(sizeof *isuppz * 2 * (size_t)n);
    double wq = 0;
    dsyevr_("V", "A", "U", &n, a, &n, &vl, &vu, &il, &iu, &abstol, &m, w, z, &n, isuppz, &wq, &lwork, &iwq, &liwork, &info, 1, 1, 1);
    lwork = (int)wq;
    liwork = iwq;
    double *work = xmalloc(sizeof *work * (size_t)lwork);
    int *iwork = xmalloc(sizeof *iwork * (size_t)liwork);
    if (info == 0)
        dsyevr_("V", "A", "U", &n, a, &n, &vl, &vu, &il, &iu, &abstol, &m, w, z, &n, isuppz, work, &lwork, iwork, &liwork, &info, 1, 1, 1);
    free(work);
    free(iwork);
    free(isuppz);
    free(a);
    float *vec = NULL;
    if (info != 0 || m != n) {
        snprintf(err, errlen, "LAPACK dsyevr failed (info %d, %d of %d eigenvalues)", info, m, n);
    } else {
        int *order = xmalloc(sizeof *order * (size_t)n);
        for (int k = 0; k < n; k++) order[k] = k;
        sort_key = w;
        qsort(order, (size_t)n, sizeof *order, by_abs_desc);
        vec = xcalloc((size_t)N * p->dim, sizeof *vec);
        *present = xcalloc((size_t)N, 1);
        for (int d = 0; d < p->dim; d++) {
            const double *v = z + (size_t)order[d] * n; /* eigenvector, column order[d] */
            /* an eigenvector's sign is arbitrary: fix it so the largest entry is positive, for
               the same vectors from any LAPACK build */
            int big = 0;
            for (int i = 1; i < n; i++)
                if (fabs(v[i]) > fabs(v[big])) big = i;
            double s = (v[big] < 0 ? -1 : 1) * sqrt(fabs(w[order[d]]));
            for (int32_t item = 0; item < N; item++)
                if (slot[item] >= 0) vec[(size_t)item * p->dim + d] = (float)(s * v[slot[item]]);
        }
        for (int32_t item = 0; item < N; item++) (*present)[item] = slot[item] >= 0;
        free(order);
    }
    free(w);
    free(z);
    free(slot);
    return vec;
}

void itemvec_write(const char *path, bool zstd, const float *vec, const unsigned char *present, int32_t n_items,
                   const catalog *cat,
                   const prompt_templates *t, const itemvec_params *p, const char *inputs_name) {
    stream_writer *w = itemvecs_write_begin(path, zstd, "ppmi-transitions", p->dim, p->window, inputs_name);
    for (int32_t i = 0; i < cat->n_items; i++) {
        if (i >= n_items || !cat->by_id[i].title || !present[i]) continue;
        char *sym = corpus_item_symbol(t, cat->by_id[i].title);
        itemvecs_put(w, i, sym, vec + (size_t)i * p->dim, p->dim);
        free(sym);
    }
    sw_close(w);
}
