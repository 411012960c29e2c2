/* records/candidates.h - the itrek.candidates stream (the base recommender's top-N per user,
 * written by candgen, read by promptgen and metrics).
 *
 * Header: params {for test|valid, n, users all|eval, scheme}, inputs {interactions, mf}, users.
 * Record: user, items [int] best first, scores [float] (same order). docs/formats.md.
 */
#ifndef ITREK_RECORDS_CANDIDATES_H
#define ITREK_RECORDS_CANDIDATES_H

#include "io/stream.h"

#include <stdbool.h>
#include <stdint.h>

#define CANDIDATES_SCHEMA "itrek.candidates"

typedef struct {
    const char *part;   /* "test" or "valid": what the candidates are for */
    int n;              /* candidates per user asked for */
    bool eval_users;    /* only users with a positive in that part (else all active users) */
    const char *scheme; /* the split's scheme */
    const char *interactions, *mf; /* input names */
    int users;          /* records that follow */
} candidates_header;

stream_writer *candidates_write_begin(const char *path, bool zstd, const candidates_header *h);
/* One user's candidates, best first, with their base scores. */
void candidates_put(stream_writer *w, int32_t user, const int32_t *items, const float *scores, int n);

/* ---------- reading ---------- */

/* The header entries readers use. */
typedef struct {
    char part[8];  /* params.for ("" when absent, not a string or too long) */
    int n;         /* params.n (0 when absent or not a positive integer) */
    char *scheme;  /* params.scheme, NULL when absent or not a string */
} cand_head;

/* Reads the header of an opened itrek.candidates stream. */
void cand_head_read(stream_reader *r, cand_head *h);
void cand_head_free(cand_head *h);

/* One record: the user as written (the caller checks it against what it knows) and its items,
 * best first, each an id in [0, 1e8] and none listed twice. (The scores are not read.) */
typedef struct {
    long rec;        /* record index (data records count from 1) */
    int64_t user;
    int32_t *items;
    int n_items;
} cand_rec;

/* The next record into c (its previous contents freed); false at the end of the stream. */
bool candidates_next(stream_reader *r, cand_rec *c);
void cand_rec_free(cand_rec *c);

/* A candidates stream (itrek.candidates) by user. */
typedef struct {
    int32_t n_users;      /* max user id + 1 */
    int32_t **items;      /* per user: candidates best first, or NULL */
    int *len;
    int32_t *order;       /* users in stream order */
    int n_order;
    char part[8];         /* header params.for */
    int n;                /* header params.n (0 when absent) */
    char *source;
} cand_set;

/* Reads PATH; MAX_ITEMS > 0 caps the candidates per user (a prompt shows at most so many). Dies
 * on a user or an item listed twice, an id out of range, a list over the cap. */
void cand_set_load(cand_set *c, const char *path, int max_items);
void cand_set_free(cand_set *c);

#endif
