/* embedinit.h - start a fresh model's token embeddings from given vectors (e.g. the PPMI item
 * vectors of promptgen --item-vectors, docs/backbone.md) instead of noise. */
#ifndef ITREK_LLM_EMBEDINIT_H
#define ITREK_LLM_EMBEDINIT_H

#include "llm/model.h"
#include "llm/tokenizer.h"

/* Reads an itrek.itemvecs stream and writes each record's vector, rescaled so that all vectors
 * together have standard deviation std, into the first dim entries of the embedding row of the
 * token whose piece is the record's symbol; the rest of the row keeps its random values. With
 * tied embeddings the output head changes with it. Dies naming file, record and field on a
 * symbol that is not a token, a vector of the wrong length, or dim above the model's width.
 * Returns the number of rows written. */
long llm_init_embeddings(llm_model *m, const llm_tokenizer *tok, const char *path, double std);

#endif
