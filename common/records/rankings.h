/* rankings.h - itrek.rankings: fuse's rankings per user and method, read by metrics
 * (docs/formats.md).
 */
#ifndef ITREK_RECORDS_RANKINGS_H
#define ITREK_RECORDS_RANKINGS_H

#include "io/stream.h"
#include "records/task.h"

#include <stdbool.h>
#include <stdint.h>

#define RANKINGS_SCHEMA "itrek.rankings"

typedef struct {
    long answers, unparsed, fallbacks, missing, partial; /* partial: listwise only */
} rankings_parse_stats;

typedef struct {
    const char *scheme, *part;
    double c1, c2, c3, lambda[3];
    const char *point_score;
    const char *label;          /* NULL: none */
    bool leaky;                 /* params.leaky only when set */
    const char *const *methods; /* params.methods (n_methods), only when n_methods > 0 */
    int n_methods;
    rankings_parse_stats parse[RTASK_COUNT];
    const char *queries_path, *answers_path;
    long users;
} rankings_header;

void rankings_write_header(stream_writer *w, const rankings_header *h);
/* One ranking: user, method, items best first, and each item's utility when scores is given. */
void rankings_write(stream_writer *w, int32_t user, const char *method, const int32_t *items, int n, const double *scores);

/* ---------- reading (metrics) ---------- */

/* The header entries readers use. */
typedef struct {
    char *scheme; /* params.scheme, NULL when absent or not a string */
    bool leaky;   /* params.leaky (dies when present and not a boolean) */
} rankings_head;

void rankings_head_read(stream_reader *r, rankings_head *h);
void rankings_head_free(rankings_head *h);

/* One record: the user as written (the caller checks it against what it knows), the method
 * (1..31 bytes) and the items best first, each an id in [0, INT32_MAX] and none twice. (The
 * scores are not read.) */
typedef struct {
    long rec; /* record index (data records count from 1) */
    int64_t user;
    char method[32];
    int32_t *items;
    int n_items;
} ranking_rec;

/* The next record into k (its previous contents freed); false at the end of the stream. */
bool rankings_next(stream_reader *r, ranking_rec *k);
void ranking_rec_free(ranking_rec *k);

#endif
