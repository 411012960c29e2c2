/* bpe_impl.h - the byte-level BPE tokenizer's inside, shared by bpe.c (tables, pre-tokenizer,
 * encode, decode) and bpe_load.c (building one from GGUF metadata or a tokenizer.json).
 * Not a public API: everything else uses bpe.h.
 */
#ifndef ITREK_LLM_BPE_IMPL_H
#define ITREK_LLM_BPE_IMPL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "llm/bpe.h"

/* token types, as GGUF's tokenizer.ggml.token_type numbers them */
enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* A known pre-tokenizer (bpe_load.c's table). */
typedef struct {
    const char *name;
    const char *alias[3];
    const char *re[2];      /* applied in order; each splits every fragment of the last */
    int nre;
    int gguf_ignore_merges; /* llama.cpp sets ignore_merges for Llama 3's pre-tokenizer */
} pre_def;

typedef struct {
    int *slot;   /* id + 1; 0 = empty */
    uint32_t mask;
} strmap;

typedef struct {
    uint64_t *key;   /* left << 32 | right; UINT64_MAX = empty */
    int *rank, *merged;
    uint64_t mask;
} pairmap;

struct bpe_tokenizer {
    int n;
    char *arena;            /* token strings, NUL-terminated */
    size_t *off;
    uint32_t *len;
    uint8_t *type;
    strmap map;
    int byte_id[256];       /* token of the byte-level character of each byte, -1 if none */
    pairmap merges;
    long n_merges;
    int *spec;              /* control / user-defined tokens, longest first */
    int n_spec;
    uint8_t spec_first[256];
    char *sarena;           /* decoded bytes of each token, NUL-terminated */
    size_t *soff;
    uint32_t *slen;
    int bos, eos, unk, pad, add_bos, ignore_merges;
    int word_unk;           /* model.unk_token: what a byte without a token becomes; -1: dropped */
    const pre_def *pre;
    pcre2_code *re[2];
    int jit[2];
};

/* GPT-2's byte-level characters: build the tables (once, thread-safe) before bpe_cp_byte. */
void bpe_init_tables(void);
/* The byte whose byte-level character is code point cp, or -1. */
int bpe_cp_byte(uint32_t cp);
/* 1 and the length when s starts with a well-formed UTF-8 character; else 0 and the length
 * of the maximal malformed part. */
int bpe_utf8_char(const uint8_t *s, size_t n, size_t *len);
/* The id of token s[0..n), or -1. */
int bpe_str_get(const bpe_tokenizer *b, const char *s, size_t n);

/* The hash of a merge's (left, right) key. */
static inline uint64_t bpe_mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

#endif
