/* tokenizer.h - SentencePiece BPE tokenizer (LLaMA style), read from a SentencePiece
 * `tokenizer.model` (protobuf ModelProto) or from a llama2.c `tok*.bin` vocabulary.
 *
 * Behaviour matches Debian's `spm_encode` for BPE models: the model's normalisation
 * (identity as LLaMA's model specifies, or the precompiled NFKC-style character map that
 * spm_train writes by default), dummy-prefix space, U+2581 for spaces, score-ordered
 * merges, byte fallback (<0xNN>) for pieces not in the vocabulary, user-defined / control
 * pieces honoured. Unigram/word/char models are refused at load time. See docs/tokenizer.md.
 * A loaded tokenizer is read-only: encode/decode may run from many threads at once.
 */
#ifndef ITREK_LLM_TOKENIZER_H
#define ITREK_LLM_TOKENIZER_H

#include <stddef.h>

typedef struct llm_tokenizer llm_tokenizer;

/* Load tokenizer.model. On failure returns NULL and writes a one-line reason to err. */
llm_tokenizer *tok_load(const char *path, char *err, size_t errlen);
/* Load a llama2.c tokenizer .bin (uint32 max_len; per token: f32 score, u32 len, bytes).
 * vocab_size <= 0 reads tokens up to the end of the file. */
llm_tokenizer *tok_load_llama2c(const char *path, int vocab_size, char *err, size_t errlen);
/* Write as a SentencePiece tokenizer.model that spm_encode and Hugging Face accept. 0 on success. */
int tok_save_model(const llm_tokenizer *t, const char *path, char *err, size_t errlen);
void tok_free(llm_tokenizer *t);

int tok_vocab_size(const llm_tokenizer *t);
int tok_bos(const llm_tokenizer *t);   /* -1 when the model has none */
int tok_eos(const llm_tokenizer *t);
int tok_unk(const llm_tokenizer *t);
int tok_pad(const llm_tokenizer *t);
/* Id of an exact piece (e.g. "<s>", "▁Yes"), or -1. */
int tok_piece_id(const llm_tokenizer *t, const char *piece);
const char *tok_piece(const llm_tokenizer *t, int id);

/* Encode UTF-8 text; BOS/EOS added when asked. Writes at most max_ids ids and returns the
 * total number the text needs (so a caller can retry with a larger buffer). */
int tok_encode(const llm_tokenizer *t, const char *text, int add_bos, int add_eos,
               int *ids, int max_ids);
/* Decode ids to UTF-8 into buf (NUL-terminated, truncated to buflen); returns the full
 * length needed. The leading dummy-prefix space of the first piece is removed, as
 * spm_decode does; byte pieces are reassembled into UTF-8. */
size_t tok_decode(const llm_tokenizer *t, const int *ids, int n, char *buf, size_t buflen);
/* The text one token adds when it follows token prev (for streaming output); prev < 0 or
 * BOS means "first token", whose dummy-prefix space is dropped. A byte piece yields its one
 * raw byte (in scratch), so consecutive calls reassemble multi-byte characters. */
const char *tok_decode_piece(const llm_tokenizer *t, int prev, int id, char scratch[8]);

#endif
