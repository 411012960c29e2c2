/* stream.h - ITREK record streams: msgpack maps, a header first, optionally zstd.
 *
 * Reader: plain or zstd input detected from the magic bytes 28 B5 2F FD (the sniffed bytes
 * are kept, so pipes work); rejects a missing/wrong header, an unknown major version, a
 * record over the size cap, a truncated stream, and (through the field getters) missing or
 * mistyped fields. Every message names program, file, record index and field; record 0 is
 * the header, data records count from 1.
 *
 * Writer: packs one map at a time; compresses when the path ends in ".zst" or when asked;
 * writes to PATH.tmp.PID and renames on close, so a failed run leaves no artifact.
 */
#ifndef ITREK_IO_STREAM_H
#define ITREK_IO_STREAM_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdnoreturn.h>

#include "io/pack.h"

#define STREAM_DEFAULT_MAX_RECORD (64u << 20) /* 64 MiB */

/* ---------- reading ---------- */

typedef struct stream_reader stream_reader;

/* Open PATH ("-" or NULL: stdin) and read its header, which must carry schema SCHEMA
 * (NULL: any) and major version MAJOR. Dies with a clear message on any failure. */
stream_reader *sr_open(const char *path, const char *schema, int major);
/* Header map (valid until sr_close). */
const msgpack_object *sr_header(const stream_reader *r);
const char *sr_schema(const stream_reader *r);
/* Next record (a map) or NULL at a clean end of stream. Valid until the next call. */
const msgpack_object *sr_next(stream_reader *r);
long sr_index(const stream_reader *r);      /* index of the last record returned */
const char *sr_name(const stream_reader *r); /* file name for messages */
void sr_close(stream_reader *r);

/* Field getters on a map. The required forms die naming file, record and field. */
const msgpack_object *mp_find(const msgpack_object *map, const char *key);
int64_t sr_int(const stream_reader *r, const msgpack_object *map, const char *key);
double sr_num(const stream_reader *r, const msgpack_object *map, const char *key); /* int or float */
/* A string field: returns a pointer into the record (not NUL-terminated) and its length. */
const char *sr_str(const stream_reader *r, const msgpack_object *map, const char *key, uint32_t *len);
/* A string field copied into a new NUL-terminated buffer (checked for embedded NULs). */
char *sr_strdup(const stream_reader *r, const msgpack_object *map, const char *key);
const msgpack_object_array *sr_array(const stream_reader *r, const msgpack_object *map, const char *key);
const msgpack_object_bin *sr_bin(const stream_reader *r, const msgpack_object *map, const char *key);
bool sr_has(const msgpack_object *map, const char *key);
/* Element getters for arrays returned by sr_array (field names "key[i]" in messages). */
int64_t sr_elem_int(const stream_reader *r, const msgpack_object_array *a, uint32_t i, const char *key);
/* Any failure about the current record: "prog: error: FILE:RECORD: what". */
noreturn void sr_fail(const stream_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Header getters (record 0); defaults used when the key is absent. */
int64_t sr_header_int(const stream_reader *r, const char *key, int64_t dflt);
/* params.<key> from the header, or NULL. */
const msgpack_object *sr_header_param(const stream_reader *r, const char *key);

/* ---------- writing ---------- */

typedef struct stream_writer stream_writer;

/* Open PATH ("-" or NULL: stdout). Compresses when compress is set or PATH ends in ".zst". */
stream_writer *sw_open(const char *path, bool compress);
/* The packer for the current record; pack exactly one map, then call sw_end_record. */
msgpack_packer *sw_pk(stream_writer *w);
void sw_end_record(stream_writer *w);
/* A record as a counted map (io/pack.h): sw_map_begin, its entries (pkm_*), then sw_map_end,
 * which writes the map and ends the record. */
void sw_map_begin(stream_writer *w, pk_map *m);
void sw_map_end(stream_writer *w, pk_map *m);
/* One record already packed elsewhere (N bytes of exactly one map): copied as it is. */
void sw_raw_record(stream_writer *w, const void *p, size_t n);
/* Headers begin with schema, version and producer: records/header.h. */
/* Finish: flush, end the zstd frame, fsync, rename into place. Dies on failure. */
void sw_close(stream_writer *w);

/* Whether a path (or stdin for "-") starts with the zstd magic; used by tests. */
bool is_zstd_magic(const unsigned char b[4]);

#endif
