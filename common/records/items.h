/* records/items.h - the itrek.items stream (the catalogue, written by split --catalog, read by
 * promptgen): its record type, reader and writer.
 *
 * Header: schema, version, producer; items (count); inputs.ml100k.
 * Record: item, title (UTF-8), year (0 unknown), genres [str]. docs/formats.md is the reference.
 */
#ifndef ITREK_RECORDS_ITEMS_H
#define ITREK_RECORDS_ITEMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int32_t id;
    char *title; /* UTF-8 */
    int32_t year; /* 0 when unknown */
    char **genres;
    int n_genres;
} item_info;

typedef struct {
    item_info *by_id; /* indexed by item id; title NULL where absent */
    int32_t n_items;  /* max id + 1 */
    int32_t count;
} catalog;

/* Read an itrek.items stream. */
void catalog_load(catalog *c, const char *path);
void catalog_free(catalog *c);
/* The entry for id, growing the table (capacity *cap, zero-filled) as needed. */
item_info *catalog_slot(catalog *c, int32_t id, size_t *cap);

/* Writes the catalogue as itrek.items; SOURCE names the input directory in inputs.ml100k. */
void items_write(const char *path, bool zstd, const catalog *c, const char *source);

#endif
