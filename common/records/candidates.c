/* records/candidates.c - the itrek.candidates codec (records/candidates.h). */
#include "records/candidates.h"

#include "io/err.h"
#include "records/fields.h"
#include "records/header.h"

#include <stdlib.h>
#include <string.h>

stream_writer *candidates_write_begin(const char *path, bool zstd, const candidates_header *h) {
    stream_writer *w = sw_open(path, zstd);
    pk_map m;
    records_header_begin(&m, sw_pk(w), CANDIDATES_SCHEMA, 1);
    pk_map p;
    pkm_begin(&p, pkm_key(&m, "params"));
    pkm_str(&p, "for", h->part);
    pkm_int(&p, "n", h->n);
    pkm_str(&p, "users", h->eval_users ? "eval" : "all");
    pkm_str(&p, "scheme", h->scheme);
    pkm_end(&p);
    pk_map in;
    pkm_begin(&in, pkm_key(&m, "inputs"));
    pkm_str(&in, "interactions", h->interactions);
    pkm_str(&in, "mf", h->mf);
    pkm_end(&in);
    pkm_int(&m, "users", h->users);
    sw_map_end(w, &m);
    return w;
}

void candidates_put(stream_writer *w, int32_t user, const int32_t *items, const float *scores, int n) {
    pk_map r;
    sw_map_begin(w, &r);
    pkm_int(&r, "user", user);
    pkm_ints(&r, "items", items, (size_t)n);
    pkm_floats(&r, "scores", scores, (size_t)n);
    sw_map_end(w, &r);
}

void cand_head_read(stream_reader *r, cand_head *h) {
    memset(h, 0, sizeof *h);
    const msgpack_object *f = sr_header_param(r, "for");
    if (f && f->type == MSGPACK_OBJECT_STR && f->via.str.size < sizeof h->part)
        memcpy(h->part, f->via.str.ptr, f->via.str.size);
    const msgpack_object *nn = sr_header_param(r, "n");
    if (nn && nn->type == MSGPACK_OBJECT_POSITIVE_INTEGER) h->n = (int)nn->via.u64;
    const msgpack_object *s = sr_header_param(r, "scheme");
    if (s && s->type == MSGPACK_OBJECT_STR) h->scheme = records_strdup(s);
}

void cand_head_free(cand_head *h) {
    free(h->scheme);
    memset(h, 0, sizeof *h);
}

void cand_rec_free(cand_rec *c) {
    free(c->items);
    memset(c, 0, sizeof *c);
}

bool candidates_next(stream_reader *r, cand_rec *c) {
    cand_rec_free(c);
    const msgpack_object *rec = sr_next(r);
    if (!rec) return false;
    c->rec = sr_index(r);
    c->user = sr_int(r, rec, "user");
    const msgpack_object_array *a = sr_array(r, rec, "items");
    c->items = records_item_list(r, a, "items");
    c->n_items = (int)a->size;
    return true;
}

void cand_set_load(cand_set *c, const char *path, int max_items) {
    memset(c, 0, sizeof *c);
    stream_reader *r = sr_open(path, CANDIDATES_SCHEMA, 1);
    c->source = xstrdup(sr_name(r));
    cand_head h;
    cand_head_read(r, &h);
    memcpy(c->part, h.part, sizeof c->part);
    c->n = h.n;
    cand_head_free(&h);
    size_t cap = 0, ocap = 0;
    cand_rec cr = {0};
    while (candidates_next(r, &cr)) {
        int64_t u = cr.user;
        if (u < 0 || u > 100000000) sr_fail(r, "field 'user': id %lld out of range", (long long)u);
        if ((size_t)u >= cap) {
            size_t ncap = cap ? cap : 1024;
            while (ncap <= (size_t)u) ncap *= 2;
            c->items = xrealloc(c->items, ncap * sizeof *c->items);
            c->len = xrealloc(c->len, ncap * sizeof *c->len);
            memset(c->items + cap, 0, (ncap - cap) * sizeof *c->items);
            memset(c->len + cap, 0, (ncap - cap) * sizeof *c->len);
            cap = ncap;
        }
        if (c->items[u]) sr_fail(r, "field 'user': user %lld appears twice", (long long)u);
        if (max_items > 0 && cr.n_items > max_items)
            sr_fail(r, "field 'items': %d candidates, at most %d supported", cr.n_items, max_items);
        c->items[u] = cr.items; /* taken over */
        c->len[u] = cr.n_items;
        cr.items = NULL;
        if ((size_t)c->n_order == ocap) c->order = xrealloc(c->order, (ocap = ocap ? 2 * ocap : 1024) * sizeof *c->order);
        c->order[c->n_order++] = (int32_t)u;
        if (u + 1 > c->n_users) c->n_users = (int32_t)u + 1;
    }
    sr_close(r);
}

void cand_set_free(cand_set *c) {
    for (int32_t u = 0; u < c->n_users; u++) free(c->items[u]);
    free(c->items);
    free(c->len);
    free(c->order);
    free(c->source);
    memset(c, 0, sizeof *c);
}
