/* tokenizer.h - the tokenizers behind one API: SentencePiece BPE (LLaMA style), read from a
 * SentencePiece `tokenizer.model` (protobuf ModelProto) or a llama2.c `tok*.bin` vocabulary;
 * and byte-level BPE (GPT-2 family: SmolLM2, Llama 3, Qwen2; common/llm/bpe.h), read from GGUF
 * tokenizer metadata or a Hugging Face tokenizer.json. Every tok_* function works on both kinds.
 *
 * SentencePiece behaviour matches Debian's `spm_encode` for BPE models: the model's normalisation
 * (identity as LLaMA's model specifies, or the precompiled NFKC-style character map that
 * spm_train writes by default), dummy-prefix space, U+2581 for spaces, score-ordered
 * merges, byte fallback (<0xNN>) for pieces not in the vocabulary, user-defined / control
 * pieces honoured. Unigram/word/char models are refused at load time. See docs/tokenizer.md.
 * A loaded tokenizer is read-only: encode/decode may run from many threads at once.
 */
#ifndef ITREK_LLM_TOKENIZER_H
#define ITREK_LLM_TOKENIZER_H

#include <stddef.h>

struct gguf_file;
typedef struct llm_tokenizer llm_tokenizer;

/* Load a tokenizer, recognised by content and name:
 *   a GGUF file (magic "GGUF")     its tokenizer.ggml.* metadata (tok_load_gguf);
 *   NAME.json                      a Hugging Face tokenizer.json (byte-level BPE);
 *   a directory                    its tokenizer.model if it has one, else its tokenizer.json;
 *   anything else                  a SentencePiece tokenizer.model.
 * On failure returns NULL and writes a one-line reason to err. */
llm_tokenizer *tok_load(const char *path, char *err, size_t errlen);
/* The tokenizer of an open GGUF file (path only names it in errors): tokenizer.ggml.model
 * "gpt2" (byte-level BPE with the pre-tokenizer tokenizer.ggml.pre; bpe.h lists the known
 * ones, anything else is refused with a reason). "llama" (SentencePiece in GGUF) is refused
 * for now: load its tokenizer.model. */
llm_tokenizer *tok_load_gguf(const struct gguf_file *g, const char *path, char *err, size_t errlen);
/* Load a llama2.c tokenizer .bin (uint32 max_len; per token: f32 score, u32 len, bytes).
 * vocab_size <= 0 reads tokens up to the end of the file. */
llm_tokenizer *tok_load_llama2c(const char *path, int vocab_size, char *err, size_t errlen);
/* Write as a SentencePiece tokenizer.model that spm_encode and Hugging Face accept. 0 on success.
 * A byte-level BPE tokenizer cannot be written: -1 and a reason. */
int tok_save_model(const llm_tokenizer *t, const char *path, char *err, size_t errlen);
void tok_free(llm_tokenizer *t);

int tok_vocab_size(const llm_tokenizer *t);
int tok_bos(const llm_tokenizer *t);   /* -1 when the model has none */
int tok_eos(const llm_tokenizer *t);
int tok_unk(const llm_tokenizer *t);
int tok_pad(const llm_tokenizer *t);
/* 1 for the byte-level BPE kind, 0 for SentencePiece. */
int tok_is_bpe(const llm_tokenizer *t);
/* Whether tok_encode(..., add_bos = 1, ...) adds a BOS: SentencePiece whenever it has one;
 * byte-level BPE only when the metadata says add_bos_token (default false: SmolLM2 has none). */
int tok_add_bos(const llm_tokenizer *t);
/* Id of an exact piece as the vocabulary spells it (e.g. "<s>", "▁Yes"; byte-level BPE:
 * "ĠYes", "<|im_start|>"), or -1. */
int tok_piece_id(const llm_tokenizer *t, const char *piece);
const char *tok_piece(const llm_tokenizer *t, int id);

/* Encode UTF-8 text. add_bos: a BOS first if the tokenizer has one -- for byte-level BPE
 * only if its add_bos_token is also true (GGUF tokenizer.ggml.add_bos_token, or
 * tokenizer_config.json; default false), so SmolLM2 never gets one. add_eos: an EOS last if
 * the tokenizer has one. Byte-level BPE matches control and user-defined tokens (e.g.
 * <|im_start|>) in the text as single tokens. Writes at most max_ids ids and returns the
 * total number the text needs (so a caller can retry with a larger buffer). */
int tok_encode(const llm_tokenizer *t, const char *text, int add_bos, int add_eos,
               int *ids, int max_ids);
/* Decode ids to UTF-8 into buf (NUL-terminated, truncated to buflen); returns the full
 * length needed. SentencePiece: the leading dummy-prefix space of the first piece is removed,
 * as spm_decode does; byte pieces are reassembled into UTF-8; control pieces are invisible.
 * Byte-level BPE: Hugging Face's decode (control tokens as their text, malformed UTF-8 as
 * U+FFFD). */
size_t tok_decode(const llm_tokenizer *t, const int *ids, int n, char *buf, size_t buflen);
/* The text one token adds when it follows token prev (for streaming output); prev < 0 or
 * BOS means "first token", whose dummy-prefix space is dropped. A byte piece yields its one
 * raw byte (in scratch), so consecutive calls reassemble multi-byte characters. Byte-level
 * BPE: the token's raw bytes (prev and scratch unused), which may end inside a character. */
const char *tok_decode_piece(const llm_tokenizer *t, int prev, int id, char scratch[8]);

#endif
