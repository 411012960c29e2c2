/* records/mf.c - the itrek.mf codec (records/mf.h). */
#include "records/mf.h"

#include "io/err.h"
#include "records/header.h"
#include "io/stream.h"

#include <math.h>
#include <string.h>

void mf_write(const mf_model *m, const mf_params *p, const char *path, bool zstd, const char *inputs_name) {
    stream_writer *w = sw_open(path, zstd);
    pk_map h;
    records_header_begin(&h, sw_pk(w), "itrek.mf", 1);
    pkm_int(&h, "dim", m->dim);
    pkm_int(&h, "users", m->n_users);
    pkm_int(&h, "items", m->n_items);
    pk_map pm;
    pkm_begin(&pm, pkm_key(&h, "params"));
    pkm_str(&pm, "loss", "bpr");
    pkm_num(&pm, "lr", p->lr);
    pkm_num(&pm, "reg", p->reg);
    pkm_num(&pm, "reg_bias", p->reg_bias);
    pkm_num(&pm, "init_std", p->init_std);
    pkm_int(&pm, "epochs", p->epochs);
    pkm_int(&pm, "batch", p->batch);
    pkm_int(&pm, "negatives", p->negatives);
    pkm_int(&pm, "eval_every", p->eval_every);
    pkm_int(&pm, "patience", p->patience);
    pkm_str(&pm, "metric", p->metric == MF_METRIC_HR10 ? "hr10" : "ndcg10");
    pkm_str(&pm, "positives", p->positives_all ? "all" : "liked");
    pkm_num(&pm, "recency", p->recency);
    pkm_num(&pm, "recency_floor", p->recency_floor);
    pkm_int(&pm, "seed", (int64_t)p->seed);
    pkm_int(&pm, "threads", p->threads);
    pkm_end(&pm);
    pk_map v;
    pkm_begin(&v, pkm_key(&h, "valid"));
    if (m->best_epoch > 0) pkm_num(&v, "best", m->best_valid);
    else msgpack_pack_nil(pkm_key(&v, "best")); /* no valid part: nothing was selected */
    pkm_int(&v, "best_epoch", m->best_epoch);
    pkm_int(&v, "epochs_run", m->epochs_run);
    pkm_str(&v, "metric", p->metric == MF_METRIC_HR10 ? "HR@10" : "NDCG@10");
    pkm_end(&v);
    pkm_str_map(&h, "inputs", "interactions", inputs_name);
    sw_map_end(w, &h);
    for (int32_t u = 0; u < m->n_users; u++) {
        pk_map r;
        sw_map_begin(w, &r);
        pkm_int(&r, "user", u);
        pkm_f32bin(&r, "vec", m->P + (size_t)u * m->dim, (size_t)m->dim);
        pkm_num(&r, "bias", 0);
        sw_map_end(w, &r);
    }
    for (int32_t i = 0; i < m->n_items; i++) {
        if (!m->has_item[i]) continue;
        pk_map r;
        sw_map_begin(w, &r);
        pkm_int(&r, "item", i);
        pkm_f32bin(&r, "vec", m->Q + (size_t)i * m->dim, (size_t)m->dim);
        pkm_num(&r, "bias", m->bias[i]);
        sw_map_end(w, &r);
    }
    sw_close(w);
}

void mf_read(mf_model *m, const char *path) {
    memset(m, 0, sizeof *m);
    stream_reader *r = sr_open(path, "itrek.mf", 1);
    const msgpack_object *h = sr_header(r);
    m->dim = (int)sr_int(r, h, "dim");
    int64_t nu = sr_int(r, h, "users"), ni = sr_int(r, h, "items");
    if (m->dim < 1 || m->dim > 65536) die_at(sr_name(r), 0, "field 'dim': %d out of range [1, 65536]", m->dim);
    if (nu < 0 || nu > 100000000) die_at(sr_name(r), 0, "field 'users': out of range");
    if (ni < 0 || ni > 100000000) die_at(sr_name(r), 0, "field 'items': out of range");
    m->n_users = (int32_t)nu;
    m->n_items = (int32_t)ni;
    m->P = xcalloc((size_t)m->n_users * m->dim, sizeof(float));
    m->Q = xcalloc((size_t)m->n_items * m->dim, sizeof(float));
    m->bias = xcalloc((size_t)m->n_items, sizeof(float));
    m->has_item = xcalloc((size_t)m->n_items, 1);
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        bool is_user = sr_has(rec, "user");
        if (is_user == sr_has(rec, "item")) sr_fail(r, "field 'user'/'item': a record has exactly one of them");
        int64_t id = sr_int(r, rec, is_user ? "user" : "item");
        if (id < 0 || id >= (is_user ? nu : ni))
            sr_fail(r, "field '%s': id %lld outside the header's range [0, %lld)", is_user ? "user" : "item", (long long)id,
                    (long long)(is_user ? nu : ni));
        const msgpack_object_bin *v = sr_bin(r, rec, "vec");
        if (v->size != (uint32_t)m->dim * 4) sr_fail(r, "field 'vec': %u bytes, expected %d (dim x float32)", v->size, m->dim * 4);
        float *dst = is_user ? m->P + (size_t)id * m->dim : m->Q + (size_t)id * m->dim;
        memcpy(dst, v->ptr, v->size);
        for (int d = 0; d < m->dim; d++)
            if (!isfinite(dst[d])) sr_fail(r, "field 'vec': element %d is not finite", d);
        double b = sr_num(r, rec, "bias");
        if (!is_user) { m->bias[id] = (float)b; m->has_item[id] = 1; }
    }
    sr_close(r);
}
