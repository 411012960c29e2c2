/* data.h - the per-user views every recommender stage needs (train history, positives by part,
 * seen sets), built from the interactions (records/interactions.h; the catalogue is
 * records/items.h, both included here for the stages that use them together).
 *
 * Ids are the dataset's own (ML-100K: users 1..943, items 1..1682); arrays are indexed by id
 * and sized max id + 1. Rows of a user_lists are in time order, ties broken by item id.
 */
#ifndef ITREK_REC_DATA_H
#define ITREK_REC_DATA_H

#include "records/interactions.h"
#include "records/items.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-user lists: items of user u are item[off[u] .. off[u+1]). */
typedef struct {
    int32_t n_users;
    int32_t *off;
    int32_t *item;
    float *rating;
    int64_t *ts;
} user_lists;

/* Lists of the interactions in the parts named by part_mask (bit 1<<part) whose rating is
 * >= min_rating (use -INFINITY for all), in time order per user. */
void user_lists_build(user_lists *ul, const interactions *ia, unsigned part_mask, double min_rating);
void user_lists_free(user_lists *ul);
static inline int32_t ul_len(const user_lists *ul, int32_t u) {
    return u < ul->n_users ? ul->off[u + 1] - ul->off[u] : 0;
}

#endif
