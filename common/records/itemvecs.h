/* records/itemvecs.h - the itrek.itemvecs stream (item vectors keyed by token text, written by
 * promptgen --mode corpus --item-vectors, read by lora-train --init-embeddings).
 *
 * Header: method, dim, params {window}, inputs.interactions.
 * Record: item, symbol (the item's token text), vec (dim float32 LE). docs/formats.md.
 */
#ifndef ITREK_RECORDS_ITEMVECS_H
#define ITREK_RECORDS_ITEMVECS_H

#include "io/stream.h"

#include <stdbool.h>
#include <stdint.h>

/* Opens PATH and writes the header; then itemvecs_put per item, then sw_close. */
stream_writer *itemvecs_write_begin(const char *path, bool zstd, const char *method, int dim, int window,
                                    const char *inputs_name);
void itemvecs_put(stream_writer *w, int32_t item, const char *symbol, const float *vec, int dim);

/* A whole stream in memory: n vectors of dim floats, symbol[k] its token text, rec[k] its
 * record index (for messages). Only dim, symbol and vec are required of a record, so any
 * vectors keyed by token pieces can be given. */
typedef struct {
    char *name; /* file name for messages */
    int dim;
    long n;
    char **symbol;
    float *vec; /* (n, dim) */
    long *rec;
} itemvecs;

/* Reads PATH; dies on a missing or non-positive dim, a dim over HIDDEN (the model's hidden
 * size, checked before any record is read), a vec of the wrong size, a non-finite entry, or no
 * vectors at all. */
void itemvecs_load(itemvecs *v, const char *path, int hidden);
void itemvecs_free(itemvecs *v);

#endif
