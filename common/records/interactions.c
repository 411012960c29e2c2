/* records/interactions.c - the itrek.interactions codec (records/interactions.h). */
#include "records/interactions.h"

#include "io/err.h"
#include "records/header.h"

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

stream_writer *interactions_write_begin(const char *path, bool zstd, const interactions_header *h) {
    stream_writer *w = sw_open(path, zstd);
    pk_map m;
    records_header_begin(&m, sw_pk(w), "itrek.interactions", 1);
    pk_map p;
    pkm_begin(&p, pkm_key(&m, "params"));
    pkm_str(&p, "scheme", h->scheme);
    msgpack_packer *pk = pkm_key(&p, "ratio");
    msgpack_pack_array(pk, 3);
    for (int k = 0; k < 3; k++) msgpack_pack_double(pk, h->ratio[k]);
    pkm_num(&p, "like", h->like);
    pkm_num(&p, "dislike", h->dislike);
    if (h->refit) pkm_bool(&p, "refit", true); /* only when set: older streams keep their bytes */
    pkm_end(&p);
    pkm_str_map(&m, "inputs", "ratings", h->ratings);
    pk_map c;
    pkm_begin(&c, pkm_key(&m, "counts"));
    for (int k = 0; k < 3; k++) pkm_int(&c, part_name((part_t)k), (int64_t)h->count[k]);
    pkm_int(&c, "dropped", (int64_t)h->dropped);
    pkm_end(&c);
    pk_map u;
    pkm_begin(&u, pkm_key(&m, "users"));
    pkm_int(&u, "all", h->users);
    pkm_int(&u, "with_test_positive", h->users_with_test_positive);
    pkm_end(&u);
    sw_map_end(w, &m);
    return w;
}

void interactions_put(stream_writer *w, const interaction *x, double like) {
    pk_map m;
    sw_map_begin(w, &m);
    pkm_int(&m, "user", x->user);
    pkm_int(&m, "item", x->item);
    pkm_num(&m, "rating", x->rating);
    pkm_int(&m, "ts", x->ts);
    pkm_str(&m, "part", part_name((part_t)x->part));
    pkm_bool(&m, "liked", x->rating >= like);
    sw_map_end(w, &m);
}
