/* data.c - loading interactions and the catalogue; per-user lists. */
#include "rec/data.h"

#include "io/err.h"
#include "io/stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *PART_NAMES[] = {"train", "valid", "test"};

const char *part_name(part_t p) { return p <= PART_TEST ? PART_NAMES[p] : "drop"; }

int part_from_name(const char *s, size_t n) {
    for (int i = 0; i < 3; i++)
        if (strlen(PART_NAMES[i]) == n && memcmp(PART_NAMES[i], s, n) == 0) return i;
    return -1;
}

void interactions_load(interactions *ia, const char *path) {
    memset(ia, 0, sizeof *ia);
    stream_reader *r = sr_open(path, "itrek.interactions", 1);
    ia->source = xstrdup(sr_name(r));
    const msgpack_object *like = sr_header_param(r, "like");
    ia->like = 4;
    if (like) {
        if (like->type == MSGPACK_OBJECT_POSITIVE_INTEGER) ia->like = (double)like->via.u64;
        else if (like->type == MSGPACK_OBJECT_FLOAT64 || like->type == MSGPACK_OBJECT_FLOAT32) ia->like = like->via.f64;
        else die_at(sr_name(r), 0, "field 'params.like': expected number");
    }
    const msgpack_object *scheme = sr_header_param(r, "scheme");
    if (scheme && scheme->type == MSGPACK_OBJECT_STR) {
        size_t n = scheme->via.str.size < sizeof ia->scheme - 1 ? scheme->via.str.size : sizeof ia->scheme - 1;
        memcpy(ia->scheme, scheme->via.str.ptr, n);
    }
    size_t cap = 1024;
    ia->v = xmalloc(cap * sizeof *ia->v);
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        if (ia->n == cap) ia->v = xrealloc(ia->v, (cap *= 2) * sizeof *ia->v);
        interaction *x = &ia->v[ia->n];
        int64_t u = sr_int(r, rec, "user"), i = sr_int(r, rec, "item");
        if (u < 0 || u > 100000000) sr_fail(r, "field 'user': id %lld out of range [0, 1e8]", (long long)u);
        if (i < 0 || i > 100000000) sr_fail(r, "field 'item': id %lld out of range [0, 1e8]", (long long)i);
        x->user = (int32_t)u;
        x->item = (int32_t)i;
        x->rating = (float)sr_num(r, rec, "rating");
        x->ts = sr_int(r, rec, "ts");
        uint32_t n;
        const char *p = sr_str(r, rec, "part", &n);
        int part = part_from_name(p, n);
        if (part < 0) sr_fail(r, "field 'part': '%.*s' is not train, valid or test", (int)(n > 20 ? 20 : n), p);
        x->part = (uint8_t)part;
        if (x->user + 1 > ia->n_users) ia->n_users = x->user + 1;
        if (x->item + 1 > ia->n_items) ia->n_items = x->item + 1;
        ia->n++;
    }
    sr_close(r);
}

void interactions_free(interactions *ia) {
    free(ia->v);
    free(ia->source);
    memset(ia, 0, sizeof *ia);
}

typedef struct { int64_t ts; int32_t item; int32_t k; } sort_key;

static int cmp_time_item(const void *a, const void *b) {
    const sort_key *x = a, *y = b;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

void user_lists_build(user_lists *ul, const interactions *ia, unsigned part_mask, double min_rating) {
    ul->n_users = ia->n_users;
    ul->off = xcalloc((size_t)ia->n_users + 1, sizeof *ul->off);
    for (size_t k = 0; k < ia->n; k++) {
        const interaction *x = &ia->v[k];
        if ((part_mask & PART_BIT(x->part)) && x->rating >= min_rating) ul->off[x->user + 1]++;
    }
    for (int32_t u = 0; u < ia->n_users; u++) ul->off[u + 1] += ul->off[u];
    size_t total = (size_t)ul->off[ia->n_users];
    ul->item = xmalloc(total * sizeof *ul->item);
    ul->rating = xmalloc(total * sizeof *ul->rating);
    ul->ts = xmalloc(total * sizeof *ul->ts);
    sort_key *keys = xmalloc(total * sizeof *keys);
    int32_t *fill = xcalloc((size_t)ia->n_users, sizeof *fill);
    for (size_t k = 0; k < ia->n; k++) {
        const interaction *x = &ia->v[k];
        if (!((part_mask & PART_BIT(x->part)) && x->rating >= min_rating)) continue;
        int32_t pos = ul->off[x->user] + fill[x->user]++;
        keys[pos] = (sort_key){x->ts, x->item, (int32_t)k};
    }
    for (int32_t u = 0; u < ia->n_users; u++) {
        int32_t a = ul->off[u], n = ul->off[u + 1] - a;
        qsort(keys + a, (size_t)n, sizeof *keys, cmp_time_item);
        for (int32_t j = a; j < a + n; j++) {
            const interaction *x = &ia->v[keys[j].k];
            ul->item[j] = x->item;
            ul->rating[j] = x->rating;
            ul->ts[j] = x->ts;
        }
    }
    free(keys);
    free(fill);
}

void user_lists_free(user_lists *ul) {
    free(ul->off);
    free(ul->item);
    free(ul->rating);
    free(ul->ts);
    memset(ul, 0, sizeof *ul);
}

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
