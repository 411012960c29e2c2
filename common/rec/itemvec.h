/* itemvec.h - item vectors from the train split's item-to-item transitions, to start a
 * backbone's title embeddings from collaborative structure instead of noise (docs/backbone.md,
 * docs/results.md tuning log 11).
 *
 * Counts how often item b follows item a within `window` places in a user's time-ordered train
 * history (weight 1/gap), makes the counts symmetric (the embeddings are tied to the output
 * head, so a dot product is what they can express), takes the positive pointwise mutual
 * information PPMI(a,b) = max(0, log(c(a,b) c / (c(a) c(b)))) and factorises it as word2vec
 * is known to (Levy & Goldberg 2014): the `dim` eigenpairs of largest |lambda|, item vector
 * v * sqrt(|lambda|). Only train-split rows are read; valid and test never are.
 */
#ifndef ITREK_REC_ITEMVEC_H
#define ITREK_REC_ITEMVEC_H

#include "rec/data.h"
#include "rec/prompt.h"

typedef struct {
    int window; /* places after an item that count as following it (5) */
    int dim;    /* vector length (64) */
} itemvec_params;

/* Returns (ia->n_items, dim) row-major float vectors, row = item id; *present (n_items bytes)
 * marks the items with at least one train transition (other rows are zero). Returns NULL and
 * fills err when the train part has fewer than dim such items or LAPACK fails. */
float *itemvec_ppmi(const interactions *ia, const itemvec_params *p, unsigned char **present, char *err, size_t errlen);

/* Writes an itrek.itemvecs stream (docs/formats.md): a header with dim, window and method, then
 * per catalogue item with a vector {item, symbol, vec}, symbol being the item's token text as
 * corpus_write_symbols writes it, so that lora-train --init-embeddings finds its token. */
void itemvec_write(const char *path, bool zstd, const float *vec, const unsigned char *present, int32_t n_items,
                   const catalog *cat,
                   const prompt_templates *t, const itemvec_params *p, const char *inputs_name);

#endif
