/* embedinit.c - token embeddings from given vectors (see embedinit.h). */
#include "llm/embedinit.h"

#include "io/err.h"
#include "records/itemvecs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

long llm_init_embeddings(llm_model *m, const llm_tokenizer *tok, const char *path, double std) {
    itemvecs iv;
    const int C = m->cfg.dim;
    itemvecs_load(&iv, path, C);
    const int64_t dim = iv.dim;
    /* the vectors first (their spread sets the scale), then the rows */
    long n = iv.n;
    int *row = xmalloc(sizeof *row * (size_t)n);
    const float *vec = iv.vec;
    for (long k = 0; k < n; k++) {
        int id = tok_piece_id(tok, iv.symbol[k]);
        if (id < 0) die_at(iv.name, iv.rec[k], "field 'symbol': '%s' is not a token of the tokenizer", iv.symbol[k]);
        if (id >= m->cfg.vocab_size) die_at(iv.name, iv.rec[k], "field 'symbol': token %d is outside the model's vocabulary", id);
        row[k] = id;
    }
    double mean = 0, var = 0;
    size_t total = (size_t)n * dim;
    for (size_t k = 0; k < total; k++) mean += vec[k];
    mean /= (double)total;
    for (size_t k = 0; k < total; k++) var += (vec[k] - mean) * (vec[k] - mean);
    double sd = sqrt(var / (double)total), scale = sd > 0 ? std / sd : 0;
    for (long k = 0; k < n; k++)
        for (int64_t d = 0; d < dim; d++) m->embed[(size_t)row[k] * C + d] = (float)(vec[(size_t)k * dim + d] * scale);
    free(row);
    itemvecs_free(&iv);
    return n;
}
