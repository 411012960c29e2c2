/* bpe.h - byte-level BPE tokenizer (GPT-2 family: GPT-2, SmolLM2, Llama 3, Qwen2), read from
 * GGUF tokenizer metadata (tokenizer.ggml.model "gpt2") or a Hugging Face tokenizer.json.
 *
 * Encoding, as Hugging Face `tokenizers` does it for these models:
 *   1. control and user-defined tokens (GGUF token_type 3 / 4; tokenizer.json added_tokens)
 *      are matched in the raw text as atoms, longest first, and become their own ids;
 *   2. the text between them is pre-tokenised by the regexes of the pre-tokenizer name
 *      (tokenizer.ggml.pre), PCRE2 in UTF + UCP mode, each stage splitting every fragment of
 *      the last into matches and the text between them:
 *        gpt2       GPT-2's regex ('s|'t|...| ?\p{L}+| ?\p{N}+|...)        (alias gpt-2)
 *        smollm     \p{N} (every digit alone), then GPT-2's regex
 *                   (HF: Sequence[Digits(individual_digits), ByteLevel])
 *        llama-bpe  Llama 3's regex (\p{N}{1,3}, case-insensitive 's 't ...)  (llama3, llama-v3)
 *        qwen2      Qwen2's regex (Llama 3's with single digits)
 *   3. each pre-token's bytes are mapped to GPT-2's printable "byte-level" characters and
 *      merged by the merges list, lowest rank first, leftmost on ties (HF's BPE::merge_word);
 *      a pre-token that is a whole token is taken as it is when ignore_merges is set
 *      (tokenizer.json model.ignore_merges; llama-bpe in GGUF, as llama.cpp does).
 * Input that is not valid UTF-8 is read with each malformed byte as U+FFFD.
 * Decoding maps the byte-level characters back to bytes; control tokens decode to their
 * text; the bytes are then read as UTF-8, each maximal malformed part becoming one U+FFFD
 * (Rust's from_utf8_lossy, as HF's ByteLevel decoder does).
 * A loaded tokenizer is read-only: encode/decode may run from many threads at once.
 * docs/tokenizer.md, "Byte-level BPE".
 */
#ifndef ITREK_LLM_BPE_H
#define ITREK_LLM_BPE_H

#include <stddef.h>

struct gguf_file;
typedef struct bpe_tokenizer bpe_tokenizer;

/* From the tokenizer.ggml.* keys of an open GGUF file (path is only named in errors). */
bpe_tokenizer *bpe_load_gguf(const struct gguf_file *g, const char *path, char *err, size_t errlen);
/* From a Hugging Face tokenizer.json (model.type BPE, byte-level pre-tokenizer and decoder).
 * Special-token names and add_bos_token come from the tokenizer_config.json beside it
 * (".../NAMEtokenizer.json" -> ".../NAMEtokenizer_config.json") when there is one; else
 * BOS/EOS/PAD are -1 and UNK is model.unk_token. */
bpe_tokenizer *bpe_load_json(const char *path, char *err, size_t errlen);
void bpe_free(bpe_tokenizer *b);

/* The known pre-tokenizer names, ", "-separated (for error messages). */
const char *bpe_known_pre(void);
/* The pre-tokenizer name the tokenizer was loaded with (canonical: gpt2, smollm, ...). */
const char *bpe_pre_name(const bpe_tokenizer *b);

int bpe_vocab_size(const bpe_tokenizer *b);
int bpe_bos(const bpe_tokenizer *b);   /* -1 when none */
int bpe_eos(const bpe_tokenizer *b);
int bpe_unk(const bpe_tokenizer *b);
int bpe_pad(const bpe_tokenizer *b);
int bpe_add_bos(const bpe_tokenizer *b);   /* add_bos_token of the metadata (default 0) */
/* Id of an exact token as the vocabulary spells it ("ĠToy", "<|im_start|>"), or -1. */
int bpe_piece_id(const bpe_tokenizer *b, const char *piece);
const char *bpe_piece(const bpe_tokenizer *b, int id);

/* tok_encode's contract: BOS only when add_bos and the tokenizer's add_bos_token are both
 * set, EOS when add_eos; writes at most max_ids ids and returns how many the text needs. */
int bpe_encode(const bpe_tokenizer *b, const char *text, int add_bos, int add_eos, int *ids, int max_ids);
/* tok_decode's contract (see the top of this file for the text it gives). */
size_t bpe_decode(const bpe_tokenizer *b, const int *ids, int n, char *buf, size_t buflen);
/* The raw bytes one token adds (NUL-terminated; may end inside a UTF-8 character, so that
 * consecutive calls reassemble it); "" for ids out of range. */
const char *bpe_decode_piece(const bpe_tokenizer *b, int id);

/* Step 2 alone (no special tokens): calls fn for each pre-token of text, in order. */
void bpe_pretokenize(const bpe_tokenizer *b, const char *text,
                     void (*fn)(void *ctx, const char *s, size_t n), void *ctx);
/* Bytes -> GPT-2 byte-level characters (UTF-8, NUL-terminated); out needs 2 * n + 1 bytes.
 * Returns the length written. */
size_t bpe_bytes_to_unicode(const char *s, size_t n, char *out);

#endif
