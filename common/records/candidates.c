/* records/candidates.c - the itrek.candidates codec (records/candidates.h). */
#include "records/candidates.h"

#include "io/err.h"

stream_writer *candidates_write_begin(const char *path, bool zstd, const candidates_header *h) {
    stream_writer *w = sw_open(path, zstd);
    pk_map m;
    pkm_begin(&m, sw_pk(w));
    sw_header_common_map(w, &m, "itrek.candidates", 1);
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
