/* queries.c - itrek.queries reader and writer (see queries.h). */
#include "records/queries.h"

#include "io/err.h"
#include "records/fields.h"
#include "records/header.h"

#include <stdlib.h>
#include <string.h>

/* ====================================================================== header */

static bool obj_int(const msgpack_object *o, int64_t *v) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) *v = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) *v = o->via.i64;
    else return false;
    return true;
}

void queries_header_read(stream_reader *r, queries_header *h, unsigned need) {
    memset(h, 0, sizeof *h);
    h->source = xstrdup(sr_name(r));
    h->scheme = records_param_str(r, "scheme", need & QH_SCHEME);
    h->part = records_param_str(r, "part", need & QH_PART);
    h->leaky = records_param_leaky(r);
    const msgpack_object *sc = sr_header_param(r, "scale");
    if (!sc && (need & QH_SCALE)) die_at(h->source, 0, "field 'params.scale': missing (the rating scale [min, max])");
    if (sc) {
        int64_t lo, hi;
        if (sc->type != MSGPACK_OBJECT_ARRAY || sc->via.array.size != 2 || !obj_int(&sc->via.array.ptr[0], &lo) ||
            !obj_int(&sc->via.array.ptr[1], &hi) || lo > hi || lo < -1000000 || hi > 1000000)
            die_at(h->source, 0, "field 'params.scale': expected [min, max] integers with min <= max");
        h->has_scale = true;
        h->scale_lo = (int)lo;
        h->scale_hi = (int)hi;
    }
    const msgpack_object *fm = sr_header_param(r, "format");
    const char *keys[4] = {"item", "sep", "yes", "no"};
    char **dst[4] = {&h->item, &h->sep, &h->yes, &h->no};
    for (int k = 0; k < 4; k++) {
        const msgpack_object *v = fm && fm->type == MSGPACK_OBJECT_MAP ? mp_find(fm, keys[k]) : NULL;
        if (!v) continue;
        if (v->type != MSGPACK_OBJECT_STR || memchr(v->via.str.ptr, 0, v->via.str.size))
            die_at(h->source, 0, "field 'params.format.%s': expected a string", keys[k]);
        *dst[k] = records_strdup(v);
    }
}

void queries_header_free(queries_header *h) {
    free(h->source); free(h->scheme); free(h->part);
    free(h->item); free(h->sep); free(h->yes); free(h->no);
    memset(h, 0, sizeof *h);
}

/* ====================================================================== records */

void query_rec_free(query_rec *q) {
    free(q->prompt); free(q->items); free(q->ranks); free(q->history); free(q->title_len);
    for (int i = 0; i < q->n_titles; i++) free(q->titles[i]);
    free(q->titles);
    memset(q, 0, sizeof *q);
}

bool queries_next(stream_reader *r, unsigned need, query_rec *q) {
    query_rec_free(q);
    const msgpack_object *rec = sr_next(r);
    if (!rec) return false;
    q->rec = sr_index(r);
    q->pair = q->swapped = -1;
    q->tokens = q->dropped = -1;
    q->id = sr_int(r, rec, "id");
    q->task = records_task(r, rec);
    q->user = sr_int(r, rec, "user");
    if ((need & QR_PROMPT) || sr_has(rec, "prompt")) {
        q->prompt = sr_strdup(r, rec, "prompt");
        q->prompt_len = strlen(q->prompt);
        int64_t pl = sr_int(r, rec, "prefix_len");
        if (pl < 0 || (uint64_t)pl > q->prompt_len)
            sr_fail(r, "field 'prefix_len': %lld is outside the prompt's %zu bytes", (long long)pl, q->prompt_len);
        q->prefix_len = (size_t)pl;
    }
    if ((need & QR_ITEMS) || sr_has(rec, "items")) {
        const msgpack_object_array *items = sr_array(r, rec, "items");
        uint32_t want = q->task == RTASK_POINTWISE ? 1 : q->task == RTASK_PAIRWISE ? 2 : 0;
        if (want && items->size != want)
            sr_fail(r, "field 'items': a %s query shows %u item%s, got %u", rtask_name(q->task), want, want > 1 ? "s" : "",
                    items->size);
        if (items->size == 0) sr_fail(r, "field 'items': empty");
        q->n_items = (int)items->size;
        q->items = records_item_ids(r, items, "items");
        for (int i = 0; i < q->n_items; i++)
            for (int j = 0; j < i; j++)
                if (q->items[j] == q->items[i]) sr_fail(r, "field 'items[%d]': item %d shown twice", i, q->items[i]);
    }
    if ((need & QR_RANKS) || (q->items && sr_has(rec, "ranks"))) {
        const msgpack_object_array *ranks = sr_array(r, rec, "ranks");
        if (!q->items || ranks->size != (uint32_t)q->n_items)
            sr_fail(r, "field 'ranks': %u entries but 'items' has %d", ranks->size, q->n_items);
        q->ranks = xmalloc(sizeof *q->ranks * (ranks->size ? ranks->size : 1));
        for (uint32_t i = 0; i < ranks->size; i++) {
            int64_t m = sr_elem_int(r, ranks, i, "ranks");
            if (m < 0 || m > 1000000) sr_fail(r, "field 'ranks[%u]': %lld is not a base rank", i, (long long)m);
            q->ranks[i] = (int32_t)m;
        }
    }
    if (((need & QR_TITLES) && q->task == RTASK_LISTWISE) || sr_has(rec, "titles")) {
        const msgpack_object_array *a = sr_array(r, rec, "titles");
        if (q->task == RTASK_LISTWISE && a->size == 0) sr_fail(r, "field 'titles': a listwise query needs at least one title");
        if (q->items && a->size != (uint32_t)q->n_items)
            sr_fail(r, "field 'titles': %u entries but 'items' has %d", a->size, q->n_items);
        q->n_titles = (int)a->size;
        q->titles = xmalloc(sizeof *q->titles * (a->size ? a->size : 1));
        q->title_len = xmalloc(sizeof *q->title_len * (a->size ? a->size : 1));
        for (uint32_t i = 0; i < a->size; i++) {
            const msgpack_object *e = &a->ptr[i];
            if (e->type != MSGPACK_OBJECT_STR) { q->n_titles = (int)i; sr_fail(r, "field 'titles[%u]': expected string", i); }
            if (memchr(e->via.str.ptr, 0, e->via.str.size)) sr_fail(r, "field 'titles[%u]': contains a NUL byte", i);
            q->titles[i] = records_strdup(e);
            q->title_len[i] = e->via.str.size;
        }
    }
    if (q->task == RTASK_PAIRWISE) {
        if ((need & QR_PAIR) || sr_has(rec, "pair")) q->pair = sr_int(r, rec, "pair");
        const msgpack_object *sw = mp_find(rec, "swapped");
        if (sw || (need & QR_SWAPPED)) {
            if (!sw || sw->type != MSGPACK_OBJECT_BOOLEAN) sr_fail(r, "field 'swapped': missing or not a boolean");
            q->swapped = sw->via.boolean;
        }
    }
    if ((need & QR_HISTORY) || sr_has(rec, "history")) {
        const msgpack_object_array *h = sr_array(r, rec, "history");
        q->n_history = (int)h->size;
        q->history = records_item_ids(r, h, "history");
    }
    if (sr_has(rec, "tokens")) q->tokens = sr_int(r, rec, "tokens");
    if (sr_has(rec, "dropped")) q->dropped = sr_int(r, rec, "dropped");
    return true;
}

/* ====================================================================== whole streams */

typedef struct { int64_t id; long rec; } id_rec;
static int cmp_id_rec(const void *a, const void *b) {
    const id_rec *x = a, *y = b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    return (x->rec > y->rec) - (x->rec < y->rec);
}

void queries_load(queries *qs, const char *path, unsigned hneed, unsigned need) {
    memset(qs, 0, sizeof *qs);
    stream_reader *r = sr_open(path, QUERIES_SCHEMA, 1);
    queries_header_read(r, &qs->h, hneed);
    size_t cap = 0;
    query_rec q = {0};
    while (queries_next(r, need, &q)) {
        if (qs->n == cap) qs->q = xrealloc(qs->q, sizeof *qs->q * (cap = cap ? 2 * cap : 1024));
        qs->q[qs->n++] = q;
        memset(&q, 0, sizeof q);
    }
    sr_close(r);
    id_rec *ids = xmalloc(sizeof *ids * (qs->n ? qs->n : 1));
    for (size_t k = 0; k < qs->n; k++) ids[k] = (id_rec){qs->q[k].id, qs->q[k].rec};
    qsort(ids, qs->n, sizeof *ids, cmp_id_rec);
    for (size_t k = 1; k < qs->n; k++)
        if (ids[k].id == ids[k - 1].id)
            die_at(qs->h.source, ids[k].rec, "field 'id': %lld repeats the id of record %ld", (long long)ids[k].id, ids[k - 1].rec);
    free(ids);
}

void queries_free(queries *qs) {
    for (size_t k = 0; k < qs->n; k++) query_rec_free(&qs->q[k]);
    free(qs->q);
    queries_header_free(&qs->h);
    memset(qs, 0, sizeof *qs);
}

/* ====================================================================== writing */

void queries_write_header(stream_writer *w, const prompt_params *p, long n_candidates, long records, long users,
                          prompt_token_stats *ts) {
    pk_map h, m, st;
    records_header_begin(&h, sw_pk(w), QUERIES_SCHEMA, 1);
    pkm_begin(&m, pkm_key(&h, "params"));
    prompt_params_pack(&m, p);
    pkm_end(&m);
    prompt_inputs_pack(&h, p);
    pkm_int(&h, "candidates", n_candidates);
    pkm_begin(&st, pkm_key(&h, "stats"));
    pkm_int(&st, "records", records);
    pkm_int(&st, "users", users);
    prompt_token_stats_pack(&st, ts, p->tokenizer);
    pkm_end(&st);
    sw_map_end(w, &h);
}

void queries_write(stream_writer *w, const query_rec *q) {
    pk_map m;
    sw_map_begin(w, &m);
    pkm_int(&m, "id", q->id);
    pkm_str(&m, "task", rtask_name(q->task));
    pkm_int(&m, "user", q->user);
    pkm_str(&m, "prompt", q->prompt);
    pkm_int(&m, "prefix_len", (int64_t)q->prefix_len);
    pkm_ints(&m, "items", q->items, (size_t)q->n_items);
    pkm_ints(&m, "ranks", q->ranks, (size_t)q->n_items);
    msgpack_packer *pk = pkm_key(&m, "titles");
    msgpack_pack_array(pk, (size_t)q->n_items);
    for (int k = 0; k < q->n_items; k++) pk_str(pk, q->titles[k]);
    if (q->task == RTASK_PAIRWISE) {
        pkm_int(&m, "pair", q->pair);
        pkm_bool(&m, "swapped", q->swapped > 0);
    }
    pkm_ints(&m, "history", q->history, (size_t)q->n_history);
    pkm_int(&m, "tokens", q->tokens);
    pkm_int(&m, "dropped", q->dropped);
    sw_map_end(w, &m);
}
