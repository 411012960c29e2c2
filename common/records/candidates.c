/* records/candidates.c - the itrek.candidates codec (records/candidates.h). */
#include "records/candidates.h"

#include "io/err.h"
#include "records/header.h"

#include <string.h>

stream_writer *candidates_write_begin(const char *path, bool zstd, const candidates_header *h) {
    stream_writer *w = sw_open(path, zstd);
    pk_map m;
    records_header_begin(&m, sw_pk(w), "itrek.candidates", 1);
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
    pkm_end(&m);
    sw_end_record(w);
    return w;
}

void candidates_put(stream_writer *w, int32_t user, const int32_t *items, const float *scores, int n) {
    pk_map r;
    pkm_begin(&r, sw_pk(w));
    pkm_int(&r, "user", user);
    pkm_ints(&r, "items", items, (size_t)n);
    pkm_floats(&r, "scores", scores, (size_t)n);
    pkm_end(&r);
    sw_end_record(w);
}

void cand_set_load(cand_set *c, const char *path, int max_items) {
    memset(c, 0, sizeof *c);
    stream_reader *r = sr_open(path, "itrek.candidates", 1);
    c->source = xstrdup(sr_name(r));
    const msgpack_object *f = sr_header_param(r, "for");
    if (f && f->type == MSGPACK_OBJECT_STR && f->via.str.size < sizeof c->part)
        memcpy(c->part, f->via.str.ptr, f->via.str.size);
    const msgpack_object *nn = sr_header_param(r, "n");
    if (nn && nn->type == MSGPACK_OBJECT_POSITIVE_INTEGER) c->n = (int)nn->via.u64;
    size_t cap = 0, ocap = 0;
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        int64_t u = sr_int(r, rec, "user");
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
        const msgpack_object_array *a = sr_array(r, rec, "items");
        if (max_items > 0 && a->size > (uint32_t)max_items)
            sr_fail(r, "field 'items': %u candidates, at most %d supported", a->size, max_items);
        c->items[u] = xmalloc(sizeof **c->items * (a->size + 1));
        for (uint32_t k = 0; k < a->size; k++) {
            int64_t it = sr_elem_int(r, a, k, "items");
            if (it < 0 || it > 100000000) sr_fail(r, "field 'items[%u]': id %lld out of range", k, (long long)it);
            for (uint32_t j = 0; j < k; j++)
                if (c->items[u][j] == it) sr_fail(r, "field 'items[%u]': item %lld listed twice", k, (long long)it);
            c->items[u][k] = (int32_t)it;
        }
        c->len[u] = (int)a->size;
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
