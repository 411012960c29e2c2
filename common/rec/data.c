/* data.c - per-user lists of interactions. */
#include "rec/data.h"

#include "io/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int64_t ts; int32_t item; int32_t k; } sort_key;

static int cmp_time_item(const void *a, const void *b) {
    const sort_key *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

void user_lists_build(user_lists *ul, const interactions *ia, unsigned part_mask, double min_rating) {
    ul->n_users = ia->n_users;
    ul->off = xcalloc((size_t)ia->n_users + 1, sizeof *ul->off);
    for (size_t k = 0; k < ia->n; k++) {
        const interaction *x = &ia->v[k];
        if ((part_mask & PART_BIT(x->part)) && x->rating >= min_rating) ul->off[x->user + 1]++;
    }
    for (int32_t u = 0; u < ia->n_users; u++) ul->off[u + 1] += ul->off[u];
    size_t total = (size_t)ul->off[ia->n_users];
    ul->item = xmalloc(total * sizeof *ul->item);
    ul->rating = xmalloc(total * sizeof *ul->rating);
    ul->ts = xmalloc(total * sizeof *ul->ts);
    sort_key *keys = xmalloc(total * sizeof *keys);
    int32_t *fill = xcalloc((size_t)ia->n_users, sizeof *fill);
    for (size_t k = 0; k < ia->n; k++) {
        const interaction *x = &ia->v[k];
        if (!((part_mask & PART_BIT(x->part)) && x->rating >= min_rating)) continue;
        int32_t pos = ul->off[x->user] + fill[x->user]++;
        keys[pos] = (sort_key){x->ts, x->item, (int32_t)k};
    }
    for (int32_t u = 0; u < ia->n_users; u++) {
        int32_t a = ul->off[u], n = ul->off[u + 1] - a;
        qsort(keys + a, (size_t)n, sizeof *keys, cmp_time_item);
        for (int32_t j = a; j < a + n; j++) {
            const interaction *x = &ia->v[keys[j].k];
            ul->item[j] = x->item;
            ul->rating[j] = x->rating;
            ul->ts[j] = x->ts;
        }
    }
    free(keys);
    free(fill);
}

void user_lists_free(user_lists *ul) {
    free(ul->off);
    free(ul->item);
    free(ul->rating);
    free(ul->ts);
    memset(ul, 0, sizeof *ul);
}

