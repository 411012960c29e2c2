/* answers.c - itrek.answers writer and readers (see answers.h). */
#include "records/answers.h"

#include "io/err.h"
#include "records/header.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ====================================================================== writing */

void answers_pack_header(msgpack_sbuffer *sb, const answers_params *p) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    pk_map h, m, f, in, q;
    records_header_begin(&h, &pk, ANSWERS_SCHEMA, 1);
    pkm_begin(&m, pkm_key(&h, "params"));
    pkm_str(&m, "decode", p->score ? "score" : "generate");
    pkm_str(&m, "listwise", p->likelihood ? "likelihood" : "greedy");
    pkm_num(&m, "temperature", p->temperature);
    pkm_int(&m, "top_k", p->top_k);
    pkm_num(&m, "top_p", p->top_p);
    pkm_int(&m, "max_new", p->max_new);
    pkm_int(&m, "seed", (int64_t)p->seed);
    pkm_str(&m, "model", p->model);
    if (p->adapter) pkm_str(&m, "adapter", p->adapter);
    else msgpack_pack_nil(pkm_key(&m, "adapter"));
    pkm_bool(&m, "int8", p->int8);
    msgpack_packer *s = pkm_key(&m, "scale");
    msgpack_pack_array(s, 2);
    msgpack_pack_int(s, p->scale_lo);
    msgpack_pack_int(s, p->scale_hi);
    pkm_begin(&f, pkm_key(&m, "format"));
    pkm_str(&f, "item", p->item);
    pkm_str(&f, "sep", p->sep);
    pkm_str(&f, "yes", p->yes);
    pkm_str(&f, "no", p->no);
    pkm_end(&f);
    pkm_end(&m);
    pkm_begin(&in, pkm_key(&h, "inputs"));
    pkm_str(&in, "queries", p->queries_path);
    pkm_end(&in);
    /* leaky only when set, so that honest answers keep their bytes */
    pkm_begin(&q, pkm_key(&h, "queries"));
    if (p->scheme) pkm_str(&q, "scheme", p->scheme); else msgpack_pack_nil(pkm_key(&q, "scheme"));
    if (p->part) pkm_str(&q, "part", p->part); else msgpack_pack_nil(pkm_key(&q, "part"));
    pkm_int(&q, "count", p->count);
    if (p->leaky) pkm_bool(&q, "leaky", true);
    pkm_end(&q);
    if (p->shard_n > 1) {
        pk_map sh;
        pkm_begin(&sh, pkm_key(&h, "shard"));
        pkm_int(&sh, "i", p->shard_i);
        pkm_int(&sh, "n", p->shard_n);
        pkm_end(&sh);
    }
    pkm_end(&h);
}

void answers_pack(msgpack_packer *pk, const answer_rec *a) {
    pk_map m;
    pkm_begin(&m, pk);
    pkm_int(&m, "id", a->id);
    pkm_str(&m, "task", rtask_name(a->task));
    pkm_int(&m, "user", a->user);
    pkm_str(&m, "text", a->text);
    if (a->scores) {
        msgpack_packer *s = pkm_key(&m, "scores");
        msgpack_pack_array(s, (size_t)a->n_scores);
        for (int i = 0; i < a->n_scores; i++) msgpack_pack_double(s, a->scores[i]);
    }
    pkm_end(&m);
}

/* ====================================================================== raw records */

static void raw_push(answers_raw *s, int64_t id, size_t off, size_t len) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->off = xrealloc(s->off, sizeof *s->off * s->cap);
        s->rlen = xrealloc(s->rlen, sizeof *s->rlen * s->cap);
        s->id = xrealloc(s->id, sizeof *s->id * s->cap);
    }
    s->off[s->n] = off; s->rlen[s->n] = len; s->id[s->n] = id; s->n++;
}

void answers_raw_free(answers_raw *s) { free(s->buf); free(s->hdr); free(s->off); free(s->rlen); free(s->id); memset(s, 0, sizeof *s); }

static int64_t rec_id(const char *path, long rec, const msgpack_object *o) {
    const msgpack_object *id = o->type == MSGPACK_OBJECT_MAP ? mp_find(o, "id") : NULL;
    if (!id) die_at(path, rec, "missing field 'id'");
    if (id->type == MSGPACK_OBJECT_POSITIVE_INTEGER && id->via.u64 <= INT64_MAX) return (int64_t)id->via.u64;
    if (id->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return id->via.i64;
    die_at(path, rec, "field 'id': expected integer");
}

void answers_raw_load_partial(answers_raw *s, const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp) die_at(path, -1, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = xmalloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += k;
        if (len == cap) buf = xrealloc(buf, cap *= 2);
    }
    if (ferror(fp)) die_at(path, -1, "read error: %s", strerror(errno));
    fclose(fp);
    s->buf = buf; s->len = len;
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    size_t off = 0;
    long rec = 0;
    for (;;) {
        size_t start = off;
        msgpack_unpack_return ret = msgpack_unpack_next(&res, (const char *)buf, len, &off);
        if (ret == MSGPACK_UNPACK_SUCCESS) {
            if (rec == 0) {
                const msgpack_object *sch = res.data.type == MSGPACK_OBJECT_MAP ? mp_find(&res.data, "schema") : NULL;
                if (!sch || sch->type != MSGPACK_OBJECT_STR || sch->via.str.size != strlen(ANSWERS_SCHEMA) ||
                    memcmp(sch->via.str.ptr, ANSWERS_SCHEMA, sch->via.str.size) != 0)
                    die_at(path, 0, "not an itrek.answers stream");
                s->hdr = xmalloc(off - start); memcpy(s->hdr, buf + start, off - start); s->hdr_len = off - start;
            } else {
                raw_push(s, rec_id(path, rec, &res.data), start, off - start);
            }
            rec++;
            continue;
        }
        if (ret == MSGPACK_UNPACK_CONTINUE || ret == MSGPACK_UNPACK_EXTRA_BYTES) {
            if (start < len) warnf("%s: dropping %zu bytes of an unfinished record at the end", path, len - start);
            break;
        }
        if (ret == MSGPACK_UNPACK_PARSE_ERROR) die_at(path, rec, "not a msgpack record (corrupt stream)");
        if (ret == MSGPACK_UNPACK_NOMEM_ERROR) die("out of memory");
        break;
    }
    msgpack_unpacked_destroy(&res);
    if (rec == 0) die_at(path, 0, "missing header");
}

void answers_raw_load(answers_raw *s, const char *path) {
    stream_reader *r = sr_open(path, ANSWERS_SCHEMA, 1);
    msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
    msgpack_packer pk; msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *sr_header(r));
    s->hdr = xmalloc(sb.size); memcpy(s->hdr, sb.data, sb.size); s->hdr_len = sb.size;
    msgpack_sbuffer_clear(&sb);
    const msgpack_object *o;
    while ((o = sr_next(r))) {
        int64_t id = rec_id(sr_name(r), sr_index(r), o);
        size_t before = sb.size;
        msgpack_pack_object(&pk, *o);
        raw_push(s, id, before, sb.size - before);
    }
    sr_close(r);
    s->len = sb.size;
    s->buf = (unsigned char *)msgpack_sbuffer_release(&sb);
    msgpack_sbuffer_destroy(&sb);
}

void answers_raw_header_unsharded(const answers_raw *s, const char *path, msgpack_sbuffer *sb, int *si, int *sn) {
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_next(&u, (const char *)s->hdr, s->hdr_len, &off);
    const msgpack_object *h = &u.data;
    const msgpack_object *sh = mp_find(h, "shard");
    *si = 0; *sn = 1;
    if (sh) {
        const msgpack_object *a = mp_find(sh, "i"), *b = mp_find(sh, "n");
        if (!a || !b || a->type != MSGPACK_OBJECT_POSITIVE_INTEGER || b->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            b->via.u64 < 1 || b->via.u64 > 1000000 || a->via.u64 >= b->via.u64)
            die_at(path, 0, "field 'shard': expected {i, n} with 0 <= i < n");
        *si = (int)a->via.u64; *sn = (int)b->via.u64;
    }
    msgpack_packer pk; msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, h->via.map.size - (sh ? 1 : 0)); /* a copy less one key: the count is known */
    for (uint32_t k = 0; k < h->via.map.size; k++) {
        const msgpack_object_kv *kv = &h->via.map.ptr[k];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 5 && memcmp(kv->key.via.str.ptr, "shard", 5) == 0) continue;
        msgpack_pack_object(&pk, kv->key);
        msgpack_pack_object(&pk, kv->val);
    }
    msgpack_unpacked_destroy(&u);
}

/* ====================================================================== reading (fuse) */

static bool obj_int(const msgpack_object *o, int64_t *v) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX) *v = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) *v = o->via.i64;
    else return false;
    return true;
}

void answers_header_read(stream_reader *r, answers_header *h) {
    memset(h, 0, sizeof *h);
    const char *f = sr_name(r);
    h->source = xstrdup(f);
    const msgpack_object *m = mp_find(sr_header(r), "queries");
    if (!m) die_at(f, 0, "field 'queries': missing (the header must describe the queries it answers)");
    if (m->type != MSGPACK_OBJECT_MAP) die_at(f, 0, "field 'queries': expected map");
    const char *keys[2] = {"scheme", "part"};
    char **dst[2] = {&h->scheme, &h->part};
    for (int k = 0; k < 2; k++) {
        const msgpack_object *o = mp_find(m, keys[k]);
        if (!o) die_at(f, 0, "field 'queries.%s': missing", keys[k]);
        if (o->type != MSGPACK_OBJECT_STR) die_at(f, 0, "field 'queries.%s': expected string", keys[k]);
        *dst[k] = strndup(o->via.str.ptr, o->via.str.size);
        if (!*dst[k]) die("out of memory");
    }
    const msgpack_object *lk = mp_find(m, "leaky");
    if (lk && lk->type != MSGPACK_OBJECT_BOOLEAN) die_at(f, 0, "field 'queries.leaky': expected a boolean");
    h->leaky = lk && lk->via.boolean;
    const msgpack_object *c = mp_find(m, "count");
    if (!c) die_at(f, 0, "field 'queries.count': missing");
    if (!obj_int(c, &h->count)) die_at(f, 0, "field 'queries.count': expected integer");
}

void answers_header_free(answers_header *h) {
    free(h->source); free(h->scheme); free(h->part);
    memset(h, 0, sizeof *h);
}

void answer_rec_free(answer_rec *a) {
    free(a->text); free(a->scores);
    memset(a, 0, sizeof *a);
}

/* A log-probability: a number; -inf allowed (an impossible option). */
static double elem_logp(stream_reader *r, const msgpack_object_array *a, uint32_t i) {
    const msgpack_object *o = &a->ptr[i];
    double v;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: v = (double)o->via.u64; break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: v = (double)o->via.i64; break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: v = o->via.f64; break;
    default: sr_fail(r, "field 'scores[%u]': expected number", i);
    }
    if (isnan(v) || v == INFINITY) sr_fail(r, "field 'scores[%u]': not a log-probability (NaN or +inf)", i);
    return v;
}

bool answers_next(stream_reader *r, answer_rec *a) {
    answer_rec_free(a);
    const msgpack_object *rec = sr_next(r);
    if (!rec) return false;
    a->rec = sr_index(r);
    a->id = sr_int(r, rec, "id");
    uint32_t tl;
    const char *ts = sr_str(r, rec, "task", &tl);
    a->task = rtask_from_name(ts, tl);
    if (a->task < 0)
        sr_fail(r, "field 'task': unknown task '%.*s' (expected pointwise, pairwise or listwise)", (int)(tl > 40 ? 40 : tl), ts);
    a->user = sr_int(r, rec, "user");
    a->text = sr_strdup(r, rec, "text");
    if (sr_has(rec, "scores")) {
        const msgpack_object_array *sc = sr_array(r, rec, "scores");
        a->n_scores = (int)sc->size;
        a->scores = xmalloc(sizeof *a->scores * (sc->size ? sc->size : 1));
        for (uint32_t i = 0; i < sc->size; i++) a->scores[i] = elem_logp(r, sc, i);
    }
    return true;
}
