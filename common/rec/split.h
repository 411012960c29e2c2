/* split.h - reading raw ratings and the catalogue, and splitting ratings per user by time.
 *
 * Schemes (docs/protocols.md):
 *   ratio  each user's ratings in time order (ties: item id) go to train / valid / test with
 *          boundaries round(n*r_train) and round(n*(r_train+r_valid)).
 *   loo    RecRanker's: only liked ratings (>= like) are split: the last is test, the one
 *          before it valid, the rest train. Dislikes (<= dislike) dated before the user's
 *          valid item (test item when there is no valid one) stay in train; later dislikes
 *          and ratings strictly between the thresholds are dropped.
 * refit      (either scheme) the valid ratings join train and the valid part is empty: the
 *          models of the test run are refit on everything before the test part, so that the
 *          test task is the valid task one step later (docs/protocols.md). Under loo the
 *          dislikes dated before the test item stay in train, as those before the valid item
 *          do without refit.
 */
#ifndef ITREK_REC_SPLIT_H
#define ITREK_REC_SPLIT_H

#include "rec/data.h"

typedef struct {
    int32_t user, item;
    float rating;
    int64_t ts;
} rating_row;

typedef struct {
    rating_row *v;
    size_t n;
} ratings;

typedef enum { SPLIT_RATIO = 0, SPLIT_LOO = 1 } split_scheme;

typedef struct {
    split_scheme scheme;
    double ratio[3];
    double like;    /* ratings >= like are positives */
    double dislike; /* ratings <= dislike are dislikes (loo keeps early ones) */
    bool refit;     /* valid ratings go to train; the valid part is empty */
} split_params;

typedef struct {
    size_t count[3]; /* per part */
    size_t dropped;
    int32_t users, items;
    int32_t users_with_test_pos; /* users with a liked test rating */
} split_stats;

/* ML-100K u.data (tab separated user item rating unix-time). */
void ratings_read_ml100k(ratings *r, const char *dir);
/* Generic table: user, item, rating, timestamp per line, separated by tab, comma, ';' or "::"
 * (detected from the first data line); a first line that is not numeric is a header. */
void ratings_read_table(ratings *r, const char *path);
void ratings_free(ratings *r);

/* Sorts r by (user, ts, item), rejects duplicate (user, item) pairs, and assigns each row a
 * part (PART_DROP for rows the scheme drops). part has r->n entries. */
void split_assign(ratings *r, const split_params *p, uint8_t *part, split_stats *st, const char *source);

/* ML-100K u.item (latin-1, '|' separated) into a catalogue; genre names from u.genre when
 * present. Titles are converted to UTF-8; year from the title's "(YYYY)", else the release date. */
void catalog_read_ml100k(catalog *c, const char *dir);

#endif
