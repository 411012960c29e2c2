/* records/items.c - the itrek.items codec (records/items.h). */
#include "records/items.h"

#include "io/err.h"
#include "records/header.h"
#include "io/stream.h"

#include <stdlib.h>
#include <string.h>

item_info *catalog_slot(catalog *c, int32_t id, size_t *cap) {
    if ((size_t)id >= *cap) {
        size_t ncap = *cap ? *cap : 1024;
        while (ncap <= (size_t)id) ncap *= 2;
        c->by_id = xrealloc(c->by_id, ncap * sizeof *c->by_id);
        memset(c->by_id + *cap, 0, (ncap - *cap) * sizeof *c->by_id);
        *cap = ncap;
    }
    return &c->by_id[id];
}

void catalog_load(catalog *c, const char *path) {
    memset(c, 0, sizeof *c);
    stream_reader *r = sr_open(path, "itrek.items", 1);
    size_t cap = 0;
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        int64_t id = sr_int(r, rec, "item");
        if (id < 0 || id > 100000000) sr_fail(r, "field 'item': id %lld out of range", (long long)id);
        item_info *it = catalog_slot(c, (int32_t)id, &cap);
        if (it->title) sr_fail(r, "field 'item': duplicate item id %lld", (long long)id);
        it->id = (int32_t)id;
        it->title = sr_strdup(r, rec, "title");
        it->year = sr_has(rec, "year") ? (int32_t)sr_int(r, rec, "year") : 0;
        if (sr_has(rec, "genres")) {
            const msgpack_object_array *g = sr_array(r, rec, "genres");
            it->genres = xcalloc(g->size, sizeof *it->genres);
            for (uint32_t k = 0; k < g->size; k++) {
                if (g->ptr[k].type != MSGPACK_OBJECT_STR) sr_fail(r, "field 'genres[%u]': expected string", k);
                it->genres[k] = strndup(g->ptr[k].via.str.ptr, g->ptr[k].via.str.size);
            }
            it->n_genres = (int)g->size;
        }
        if (id + 1 > c->n_items) c->n_items = (int32_t)id + 1;
        c->count++;
    }
    sr_close(r);
}

void catalog_free(catalog *c) {
    for (int32_t i = 0; i < c->n_items; i++) {
        free(c->by_id[i].title);
        for (int g = 0; g < c->by_id[i].n_genres; g++) free(c->by_id[i].genres[g]);
        free(c->by_id[i].genres);
    }
    free(c->by_id);
    memset(c, 0, sizeof *c);
}

void items_write(const char *path, bool zstd, const catalog *c, const char *source) {
    stream_writer *w = sw_open(path, zstd);
    pk_map m;
    records_header_begin(&m, sw_pk(w), "itrek.items", 1);
    pkm_int(&m, "items", c->count);
    pkm_str_map(&m, "inputs", "ml100k", source);
    sw_map_end(w, &m);
    for (int32_t i = 0; i < c->n_items; i++) {
        const item_info *it = &c->by_id[i];
        if (!it->title) continue;
        pk_map r;
        sw_map_begin(w, &r);
        pkm_int(&r, "item", it->id);
        pkm_str(&r, "title", it->title);
        pkm_int(&r, "year", it->year);
        msgpack_packer *pk = pkm_key(&r, "genres");
        msgpack_pack_array(pk, (size_t)it->n_genres);
        for (int g = 0; g < it->n_genres; g++) pk_str(pk, it->genres[g]);
        sw_map_end(w, &r);
    }
    sw_close(w);
}
