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

/* Reading (metrics): params.leaky of an opened rankings stream, and each record's method name
 * (malloc'd, 1..31 bytes). */
bool rankings_header_leaky(stream_reader *r);
char *rankings_method(stream_reader *r, const msgpack_object *rec);

#endif
