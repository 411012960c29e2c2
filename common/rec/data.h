/* data.h - interactions and the catalogue in memory, and the per-user views every
 * recommender stage needs (train history, positives by part, seen sets).
 *
 * Ids are the dataset's own (ML-100K: users 1..943, items 1..1682); arrays are indexed by id
 * and sized max id + 1. Rows of a user_lists are in time order, ties broken by item id.
 */
#ifndef ITREK_REC_DATA_H
#define ITREK_REC_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PART_TRAIN = 0, PART_VALID = 1, PART_TEST = 2, PART_DROP = 255 } part_t;

typedef struct {
    int32_t user, item;
    float rating;
    int64_t ts;
    uint8_t part; /* part_t */
} interaction;

typedef struct {
    interaction *v;
    size_t n;
    int32_t n_users, n_items; /* max id + 1 */
    double like;              /* ratings >= like are positives (header params.like, default 4) */
    char scheme[16];          /* header params.scheme */
    char *source;             /* file name, for messages */
} interactions;

/* Per-user lists: items of user u are item[off[u] .. off[u+1]). */
typedef struct {
    int32_t n_users;
    int32_t *off;
    int32_t *item;
    float *rating;
    int64_t *ts;
} user_lists;

typedef struct {
    int32_t id;
    char *title; /* UTF-8 */
    int32_t year; /* 0 when unknown */
    char **genres;
    int n_genres;
} item_info;

typedef struct {
    item_info *by_id; /* indexed by item id; title NULL where absent */
    int32_t n_items;  /* max id + 1 */
    int32_t count;
} catalog;

const char *part_name(part_t p);
int part_from_name(const char *s, size_t n); /* -1 when unknown */

/* Read an itrek.interactions stream. Dies with a clear message on bad input. */
void interactions_load(interactions *ia, const char *path);
void interactions_free(interactions *ia);

/* Lists of the interactions in the parts named by part_mask (bit 1<<part) whose rating is
 * >= min_rating (use -INFINITY for all), in time order per user. */
void user_lists_build(user_lists *ul, const interactions *ia, unsigned part_mask, double min_rating);
void user_lists_free(user_lists *ul);
static inline int32_t ul_len(const user_lists *ul, int32_t u) {
    return u < ul->n_users ? ul->off[u + 1] - ul->off[u] : 0;
}

/* Read an itrek.items stream. */
void catalog_load(catalog *c, const char *path);
void catalog_free(catalog *c);
/* The entry for id, growing the table (capacity *cap, zero-filled) as needed. */
item_info *catalog_slot(catalog *c, int32_t id, size_t *cap);

#define PART_BIT(p) (1u << (p))

#endif
