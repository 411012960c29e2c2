/* embedinit.c - token embeddings from given vectors (see embedinit.h). */
#include "llm/embedinit.h"

#include "io/err.h"
#include "io/stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

long llm_init_embeddings(llm_model *m, const llm_tokenizer *tok, const char *path, double std) {
    stream_reader *r = sr_open(path, "itrek.itemvecs", 1);
    int64_t dim = sr_header_int(r, "dim", -1);
    const int C = m->cfg.dim;
    if (dim < 1) sr_fail(r, "header field 'dim': expected a positive integer");
    if (dim > C) sr_fail(r, "header field 'dim': %lld is more than the model's hidden size %d", (long long)dim, C);
    /* the vectors first (their spread sets the scale), then the rows */
    long n = 0, cap = 64;
    int *row = xmalloc(sizeof *row * (size_t)cap);
    float *vec = xmalloc(sizeof *vec * (size_t)cap * (size_t)dim);
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        uint32_t len;
        const char *sym = sr_str(r, rec, "symbol", &len);
        char *piece = strndup(sym, len);
        if (!piece) die("out of memory");
        int id = tok_piece_id(tok, piece);
        if (id < 0) sr_fail(r, "field 'symbol': '%s' is not a token of the tokenizer", piece);
        free(piece);
        if (id >= m->cfg.vocab_size) sr_fail(r, "field 'symbol': token %d is outside the model's vocabulary", id);
        const msgpack_object_bin *b = sr_bin(r, rec, "vec");
        if (b->size != (uint32_t)dim * 4) sr_fail(r, "field 'vec': %u bytes, expected %lld float32", b->size, (long long)dim);
        if (n == cap) {
            cap *= 2;
            row = xrealloc(row, sizeof *row * (size_t)cap);
            vec = xrealloc(vec, sizeof *vec * (size_t)cap * (size_t)dim);
        }
        row[n] = id;
        memcpy(vec + (size_t)n * dim, b->ptr, b->size); /* float32 little-endian, as written */
        for (int64_t d = 0; d < dim; d++)
            if (!isfinite(vec[(size_t)n * dim + d])) sr_fail(r, "field 'vec': entry %lld is not finite", (long long)d);
        n++;
    }
    sr_close(r);
    if (n == 0) die_at(path, -1, "no vectors");
    double mean = 0, var = 0;
    size_t total = (size_t)n * dim;
    for (size_t k = 0; k < total; k++) mean += vec[k];
    mean /= (double)total;
    for (size_t k = 0; k < total; k++) var += (vec[k] - mean) * (vec[k] - mean);
    double sd = sqrt(var / (double)total), scale = sd > 0 ? std / sd : 0;
    for (long k = 0; k < n; k++)
        for (int64_t d = 0; d < dim; d++) m->embed[(size_t)row[k] * C + d] = (float)(vec[(size_t)k * dim + d] * scale);
    free(row);
    free(vec);
    return n;
}
