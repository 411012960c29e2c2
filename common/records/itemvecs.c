/* records/itemvecs.c - the itrek.itemvecs codec (records/itemvecs.h). */
#include "records/itemvecs.h"

#include "io/err.h"
#include "records/header.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

stream_writer *itemvecs_write_begin(const char *path, bool zstd, const char *method, int dim, int window,
                                    const char *inputs_name) {
    stream_writer *w = sw_open(path, zstd);
    pk_map h;
    records_header_begin(&h, sw_pk(w), "itrek.itemvecs", 1);
    pkm_str(&h, "method", method);
    pkm_int(&h, "dim", dim);
    pk_map p;
    pkm_begin(&p, pkm_key(&h, "params"));
    pkm_int(&p, "window", window);
    pkm_end(&p);
    pkm_str_map(&h, "inputs", "interactions", inputs_name);
    sw_map_end(w, &h);
    return w;
}

void itemvecs_put(stream_writer *w, int32_t item, const char *symbol, const float *vec, int dim) {
    pk_map r;
    sw_map_begin(w, &r);
    pkm_int(&r, "item", item);
    pkm_str(&r, "symbol", symbol);
    pkm_f32bin(&r, "vec", vec, (size_t)dim);
    sw_map_end(w, &r);
}

void itemvecs_load(itemvecs *v, const char *path, int hidden) {
    memset(v, 0, sizeof *v);
    stream_reader *r = sr_open(path, "itrek.itemvecs", 1);
    v->name = xstrdup(sr_name(r));
    int64_t dim = sr_header_int(r, "dim", -1);
    if (dim < 1 || dim > 65536) sr_fail(r, "header field 'dim': expected a positive integer");
    if (dim > hidden) sr_fail(r, "header field 'dim': %lld is more than the model's hidden size %d", (long long)dim, hidden);
    v->dim = (int)dim;
    long cap = 64;
    v->symbol = xmalloc(sizeof *v->symbol * (size_t)cap);
    v->rec = xmalloc(sizeof *v->rec * (size_t)cap);
    v->vec = xmalloc(sizeof *v->vec * (size_t)cap * (size_t)dim);
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        if (v->n == cap) {
            cap *= 2;
            v->symbol = xrealloc(v->symbol, sizeof *v->symbol * (size_t)cap);
            v->rec = xrealloc(v->rec, sizeof *v->rec * (size_t)cap);
            v->vec = xrealloc(v->vec, sizeof *v->vec * (size_t)cap * (size_t)dim);
        }
        uint32_t len;
        const char *sym = sr_str(r, rec, "symbol", &len);
        char *piece = strndup(sym, len);
        if (!piece) die("out of memory");
        const msgpack_object_bin *b = sr_bin(r, rec, "vec");
        if (b->size != (uint32_t)dim * 4) sr_fail(r, "field 'vec': %u bytes, expected %lld float32", b->size, (long long)dim);
        float *dst = v->vec + (size_t)v->n * dim;
        memcpy(dst, b->ptr, b->size); /* float32 little-endian, as written */
        for (int64_t d = 0; d < dim; d++)
            if (!isfinite(dst[d])) sr_fail(r, "field 'vec': entry %lld is not finite", (long long)d);
        v->symbol[v->n] = piece;
        v->rec[v->n] = sr_index(r);
        v->n++;
    }
    sr_close(r);
    if (v->n == 0) die_at(path, -1, "no vectors");
}

void itemvecs_free(itemvecs *v) {
    for (long k = 0; k < v->n; k++) free(v->symbol[k]);
    free(v->symbol);
    free(v->vec);
    free(v->rec);
    free(v->name);
    memset(v, 0, sizeof *v);
}
