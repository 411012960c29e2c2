/* fields.h - field readers the record codecs share (not a stream of their own).
 *
 * What several schemas spell alike is read alike: params.leaky in a header, the `task` of the
 * prompt streams, arrays of item ids. Messages have the form "prog: error: FILE:RECORD: field
 * 'x': what".
 */
#ifndef ITREK_RECORDS_FIELDS_H
#define ITREK_RECORDS_FIELDS_H

#include "io/stream.h"

#include <stdbool.h>
#include <stdint.h>

/* A string object as a new NUL-terminated copy (the caller has checked its type). */
char *records_strdup(const msgpack_object *o);
/* params.KEY as a string (malloc'd): NULL when absent and not required; dies when it is
 * missing but required, or not a string. */
char *records_param_str(stream_reader *r, const char *key, bool required);
/* params.leaky of an opened stream: false when absent; dies when it is not a boolean. */
bool records_param_leaky(stream_reader *r);
/* The record's `task` (records/task.h); dies on an unknown name. */
int records_task(stream_reader *r, const msgpack_object *rec);
/* An array of item ids (field KEY, for messages): each 0 .. INT32_MAX; malloc'd (one element
 * more than a->size). */
int32_t *records_item_ids(stream_reader *r, const msgpack_object_array *a, const char *key);
/* The same, and no id twice: a ranked list (candidates, rankings). */
int32_t *records_item_list(stream_reader *r, const msgpack_object_array *a, const char *key);

#endif
