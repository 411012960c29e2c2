/* corpus.h - the text the default profile's backbone is pretrained on, and the item symbols
 * its tokenizer keeps whole.
 *
 * Everything comes from the train part and the catalogue, never valid or test: one line per
 * catalogue item (title, year, genres), then for every user windows of their train history in
 * time order, written exactly as the prompts write histories (the templates' `item`,
 * `rated_item` and separators): rated windows (pointwise style) and liked-list windows
 * (pairwise / listwise style). One document per line (newlines inside a template become
 * spaces), for `spm_train --input` and `lora-train --full --text`.
 *
 * The symbols file lists each distinct item text (e.g. "Toy Story (1995)" with its quotes) with
 * spaces written as U+2581, one per line, for `spm_train --user_defined_symbols_file`: the
 * tokenizer then keeps every title as one token, so a history of 50 films costs about 100
 * tokens and the model can learn item-to-item structure the way a sequential recommender does.
 */
#ifndef ITREK_REC_CORPUS_H
#define ITREK_REC_CORPUS_H

#include "rec/data.h"
#include "rec/prompt.h"

#include <stdio.h>

typedef struct {
    int window; /* items per history document (50) */
    int stride; /* step between windows (25) */
    int repeat; /* passes over the users, each with its own window offset (2) */
    uint64_t seed;
} corpus_params;

typedef struct {
    long docs, catalog_docs, rated_docs, liked_docs;
    long bytes;
} corpus_stats;

void corpus_write(FILE *out, const char *out_name, const interactions *ia, const catalog *cat,
                  const prompt_templates *t, const corpus_params *p, corpus_stats *st);
/* Writes each item's text; with `entries` (NULL: items only) also the rated history's fixed
 * text per rating value of its train part (": 5; " and ": 5") and the list separator (", "),
 * so that a history entry is 2 tokens rather than 6. Returns the number of distinct symbols. */
long corpus_write_symbols(FILE *out, const char *out_name, const catalog *cat, const prompt_templates *t,
                          const interactions *entries);
/* One item's symbol: the templates' item text for title, spaces as U+2581 (the caller frees). */
char *corpus_item_symbol(const prompt_templates *t, const char *title);

#endif
