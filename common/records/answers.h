/* answers.h - itrek.answers: rank's answer to every query, read by fuse and by rank itself
 * (resume, --merge) (docs/formats.md).
 *
 * rank keeps answers as raw msgpack records: a resumed or merged output must hold the very bytes
 * the first run wrote, so those readers copy records instead of re-packing them. fuse reads them
 * through answers_next, which checks every field.
 */
#ifndef ITREK_RECORDS_ANSWERS_H
#define ITREK_RECORDS_ANSWERS_H

#include "io/stream.h"
#include "records/task.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ANSWERS_SCHEMA "itrek.answers"

/* ---------- writing ---------- */

typedef struct {
    bool score;       /* params.decode: score, else generate */
    bool likelihood;  /* params.listwise: likelihood, else greedy */
    double temperature, top_p;
    int top_k, max_new;
    uint64_t seed;
    const char *model, *adapter; /* adapter NULL: nil */
    bool int8;
    int scale_lo, scale_hi;
    const char *item, *sep, *yes, *no; /* params.format */
    const char *queries_path;          /* inputs.queries */
    /* `queries`: copied from the queries header (scheme, part NULL: nil) */
    const char *scheme, *part;
    long count;
    bool leaky;
    int shard_i, shard_n; /* `shard` only when shard_n > 1 */
} answers_params;

/* The header record's bytes, into sb (initialised by the caller). */
void answers_pack_header(msgpack_sbuffer *sb, const answers_params *p);

typedef struct {
    int64_t id, user;
    int task;
    char *text;
    double *scores; /* NULL: none */
    int n_scores;
    long rec;       /* reading: record index */
} answer_rec;

/* One record: id, task, user, text, and scores when there are any. */
void answers_pack(msgpack_packer *pk, const answer_rec *a);

/* ---------- raw records (rank: resume and merge) ---------- */

typedef struct {
    unsigned char *buf; size_t len;
    unsigned char *hdr; size_t hdr_len; /* the header record's bytes */
    size_t *off, *rlen;                 /* record k: buf[off[k] .. off[k] + rlen[k]) */
    int64_t *id;
    size_t n, cap;
} answers_raw;

/* A partial answers file (plain msgpack, as rank appends it): every complete record; a torn
 * record at the end (a run killed mid-write) is dropped with a warning. */
void answers_raw_load_partial(answers_raw *s, const char *path);
/* A complete answers stream (plain or zstd) through the checked reader. */
void answers_raw_load(answers_raw *s, const char *path);
void answers_raw_free(answers_raw *s);
/* The header of s without its `shard` entry, into sb; *i and *n: the shard (0 and 1 without). */
void answers_raw_header_unsharded(const answers_raw *s, const char *path, msgpack_sbuffer *sb, int *i, int *n);

/* ---------- reading (fuse) ---------- */

typedef struct {
    char *source;
    char *scheme, *part; /* queries.scheme / queries.part */
    int64_t count;       /* queries.count */
    bool leaky;          /* queries.leaky */
} answers_header;

/* The header of an opened itrek.answers stream: `queries` {scheme, part, count} required. */
void answers_header_read(stream_reader *r, answers_header *h);
void answers_header_free(answers_header *h);
/* The next record into a (previous contents freed; text required; scores numbers, -inf allowed,
 * NaN and +inf not); false at the end. */
bool answers_next(stream_reader *r, answer_rec *a);
void answer_rec_free(answer_rec *a);

#endif
