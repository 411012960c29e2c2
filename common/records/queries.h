/* queries.h - itrek.queries: the evaluation prompts promptgen writes, rank answers and fuse
 * and the leakage check read (docs/formats.md).
 *
 * One reader serves every consumer: it parses every field a record has into one struct and
 * checks each against the format; a consumer names the fields it cannot do without (QR_* and
 * QH_* bits), so a hand-made stream may leave out what that consumer does not use. All
 * messages have the form "prog: error: FILE:RECORD: field 'x': what".
 */
#ifndef ITREK_RECORDS_QUERIES_H
#define ITREK_RECORDS_QUERIES_H

#include "io/stream.h"
#include "records/prompt_params.h"
#include "records/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUERIES_SCHEMA "itrek.queries"

/* Header fields a reader requires (params.*). */
enum { QH_SCHEME = 1, QH_PART = 2, QH_SCALE = 4 };
/* Record fields a reader requires. QR_TITLES: listwise records; QR_PAIR, QR_SWAPPED: pairwise. */
enum { QR_PROMPT = 1, QR_ITEMS = 2, QR_RANKS = 4, QR_TITLES = 8, QR_PAIR = 16, QR_SWAPPED = 32, QR_HISTORY = 64 };

typedef struct {
    char *source;        /* the file name for messages */
    char *scheme, *part; /* params.scheme / params.part, NULL when absent */
    bool has_scale;
    int scale_lo, scale_hi; /* params.scale, when has_scale */
    bool leaky;             /* params.leaky */
    char *item, *sep, *yes, *no; /* params.format.*, NULL when absent */
} queries_header;

typedef struct {
    long rec; /* record index (data records count from 1) */
    int64_t id, user;
    int task;                /* rtask */
    char *prompt;            /* NULL when absent */
    size_t prompt_len, prefix_len;
    int32_t *items, *ranks;  /* NULL when absent; n_items each */
    int n_items;
    char **titles;           /* NULL when absent */
    size_t *title_len;
    int n_titles;
    int32_t *history;        /* NULL when absent */
    int n_history;
    int64_t pair;            /* pairwise; -1 when absent */
    int swapped;             /* pairwise: 0 / 1; -1 when absent */
    int64_t tokens, dropped; /* -1 when absent */
} query_rec;

/* ---------- reading ---------- */

/* Reads the header of an opened itrek.queries stream. */
void queries_header_read(stream_reader *r, queries_header *h, unsigned need);
void queries_header_free(queries_header *h);
/* The next record into q (its previous contents freed); false at the end of the stream. */
bool queries_next(stream_reader *r, unsigned need, query_rec *q);
void query_rec_free(query_rec *q);

/* A whole stream: the header and every record, ids checked to be unique. */
typedef struct {
    queries_header h;
    query_rec *q;
    size_t n;
} queries;
void queries_load(queries *qs, const char *path, unsigned hneed, unsigned need);
void queries_free(queries *qs);

/* ---------- writing ---------- */

/* Header: schema, version, producer, params (shared ones), inputs, candidates, stats. */
void queries_write_header(stream_writer *w, const prompt_params *p, long n_candidates, long records, long users,
                          prompt_token_stats *ts);
/* One record from q (prompt, prefix_len, items, ranks, titles, pair/swapped for pairwise,
 * history, tokens, dropped). */
void queries_write(stream_writer *w, const query_rec *q);

#endif
