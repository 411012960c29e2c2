/* rankings.c - itrek.rankings writer and reader (see rankings.h). */
#include "records/rankings.h"

#include "io/err.h"
#include "records/fields.h"
#include "records/header.h"

#include <stdlib.h>
#include <string.h>

void rankings_write_header(stream_writer *w, const rankings_header *h) {
    pk_map m, p, parse, in;
    records_header_begin(&m, sw_pk(w), RANKINGS_SCHEMA, 1);
    /* label, methods and leaky only when given, so default outputs keep their bytes */
    pkm_begin(&p, pkm_key(&m, "params"));
    pkm_str(&p, "scheme", h->scheme);
    pkm_str(&p, "part", h->part);
    pkm_num(&p, "c1", h->c1);
    pkm_num(&p, "c2", h->c2);
    pkm_num(&p, "c3", h->c3);
    msgpack_packer *pk = pkm_key(&p, "lambda");
    msgpack_pack_array(pk, 3);
    for (int k = 0; k < 3; k++) msgpack_pack_double(pk, h->lambda[k]);
    pkm_str(&p, "point_score", h->point_score);
    if (h->label) pkm_str(&p, "label", h->label);
    if (h->leaky) pkm_bool(&p, "leaky", true);
    if (h->n_methods > 0) {
        pk = pkm_key(&p, "methods");
        msgpack_pack_array(pk, (size_t)h->n_methods);
        for (int k = 0; k < h->n_methods; k++) pk_str(pk, h->methods[k]);
    }
    pkm_end(&p);
    pkm_begin(&parse, pkm_key(&m, "parse"));
    for (int t = 0; t < RTASK_COUNT; t++) {
        const rankings_parse_stats *s = &h->parse[t];
        pk_map ts;
        pkm_begin(&ts, pkm_key(&parse, rtask_name(t)));
        pkm_int(&ts, "answers", s->answers);
        pkm_int(&ts, "unparsed", s->unparsed);
        pkm_int(&ts, "fallbacks", s->fallbacks);
        pkm_int(&ts, "missing", s->missing);
        if (t == RTASK_LISTWISE) pkm_int(&ts, "partial", s->partial);
        pkm_end(&ts);
    }
    pkm_end(&parse);
    pkm_begin(&in, pkm_key(&m, "inputs"));
    pkm_str(&in, "queries", h->queries_path);
    pkm_str(&in, "answers", h->answers_path);
    pkm_end(&in);
    pkm_int(&m, "users", h->users);
    sw_map_end(w, &m);
}

void rankings_write(stream_writer *w, int32_t user, const char *method, const int32_t *items, int n, const double *scores) {
    pk_map m;
    sw_map_begin(w, &m);
    pkm_int(&m, "user", user);
    pkm_str(&m, "method", method);
    msgpack_packer *pk = pkm_key(&m, "items");
    msgpack_pack_array(pk, (size_t)n);
    for (int k = 0; k < n; k++) msgpack_pack_int64(pk, items[k]);
    if (scores) {
        pk = pkm_key(&m, "scores");
        msgpack_pack_array(pk, (size_t)n);
        for (int k = 0; k < n; k++) msgpack_pack_double(pk, scores[k]);
    }
    sw_map_end(w, &m);
}

void rankings_head_read(stream_reader *r, rankings_head *h) {
    memset(h, 0, sizeof *h);
    const msgpack_object *s = sr_header_param(r, "scheme");
    if (s && s->type == MSGPACK_OBJECT_STR) h->scheme = records_strdup(s);
    h->leaky = records_param_leaky(r);
}

void rankings_head_free(rankings_head *h) {
    free(h->scheme);
    memset(h, 0, sizeof *h);
}

void ranking_rec_free(ranking_rec *k) {
    free(k->items);
    memset(k, 0, sizeof *k);
}

bool rankings_next(stream_reader *r, ranking_rec *k) {
    ranking_rec_free(k);
    const msgpack_object *rec = sr_next(r);
    if (!rec) return false;
    k->rec = sr_index(r);
    char *name = sr_strdup(r, rec, "method");
    if (!name[0] || strlen(name) >= sizeof k->method) sr_fail(r, "field 'method': empty or longer than 31 bytes");
    memcpy(k->method, name, strlen(name) + 1);
    free(name);
    k->user = sr_int(r, rec, "user");
    const msgpack_object_array *a = sr_array(r, rec, "items");
    k->items = records_item_list(r, a, "items");
    k->n_items = (int)a->size;
    return true;
}
