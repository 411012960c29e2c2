/* answer_tokens.h - the tokens a model emits for an answer right after a prompt.
 *
 * Score mode teacher-forces every answer option (ratings, Yes./No., titles) after its prompt;
 * the option must be tokenised as it would continue that prompt, not on its own, or its
 * log-probability would be that of a sequence the model never produces.
 */
#ifndef ITREK_RERANK_ANSWER_TOKENS_H
#define ITREK_RERANK_ANSWER_TOKENS_H

#include <stddef.h>

#include "llm/tokenizer.h"

/* Encode with a growing buffer; *out malloc'd; returns the count. */
int rerank_encode(const llm_tokenizer *t, const char *text, int bos, int **out);
/* The length of the common prefix of two token sequences. */
int rerank_lcp(const int *a, int na, const int *b, int nb);

/* The tokens the model emits for `answer` right after `prompt`: encode(tail + answer) minus
 * encode(tail), where tail is the prompt's text after its last space (SentencePiece pieces do
 * not span a space, so this equals encode(prompt + answer) minus encode(prompt) and costs
 * little). *out is malloc'd. Returns the count, or -1 when the answer's first piece would
 * merge with the end of the prompt (no clean split; *out then holds the tokens after the
 * common prefix). */
int rank_answer_tokens(const llm_tokenizer *t, const char *prompt, size_t prompt_len, const char *answer, int **out);

#endif
