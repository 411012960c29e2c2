/* records/interactions.h - the itrek.interactions stream (written by split, read by every
 * stage that needs ratings): its record type, its reader and its writer, in one place.
 *
 * Header: schema, version, producer; params {scheme, ratio [3], like, dislike, refit only when
 * set}; inputs.ratings; counts {train, valid, test, dropped}; users {all, with_test_positive}.
 * Record: user, item, rating, ts, part "train"|"valid"|"test", liked (rating >= like).
 * docs/formats.md is the reference.
 */
#ifndef ITREK_RECORDS_INTERACTIONS_H
#define ITREK_RECORDS_INTERACTIONS_H

#include "io/stream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PART_TRAIN = 0, PART_VALID = 1, PART_TEST = 2, PART_DROP = 255 } part_t;
#define PART_BIT(p) (1u << (p))

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

const char *part_name(part_t p);
int part_from_name(const char *s, size_t n); /* -1 when unknown */

/* Read an itrek.interactions stream. Dies with a clear message on bad input. */
void interactions_load(interactions *ia, const char *path);
void interactions_free(interactions *ia);

/* What split writes in the header. */
typedef struct {
    const char *scheme; /* "ratio" or "loo" */
    double ratio[3];
    double like, dislike;
    bool refit;
    const char *ratings; /* the input table's name */
    size_t count[3], dropped;
    int users, users_with_test_positive;
} interactions_header;

/* Opens PATH and writes the header; then one interactions_put per row, then sw_close. */
stream_writer *interactions_write_begin(const char *path, bool zstd, const interactions_header *h);
void interactions_put(stream_writer *w, const interaction *x, double like);

#endif
