/* tokenizer_impl.h - the SentencePiece tokenizer's inside, shared by tokenizer.c (lookups,
 * normalisation, encoding, decoding, the accessors of both kinds) and tokenizer_load.c
 * (tok_load and friends, validation and tables, tok_save_model). Not a public API:
 * everything else uses tokenizer.h.
 */
#ifndef ITREK_LLM_TOKENIZER_IMPL_H
#define ITREK_LLM_TOKENIZER_IMPL_H

#include <stdint.h>
#include <string.h>

#include "io/err.h"
#include "llm/bpe.h"
#include "llm/spm_proto.h"
#include "llm/tokenizer.h"

#define WS "\xe2\x96\x81"   /* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space */
#define WS_LEN 3

/* Open-addressing hash map from piece bytes to id (value id + 1; 0 = empty slot). */
typedef struct {
    int *slot;
    uint32_t mask;
} piece_map;

struct llm_tokenizer {
    bpe_tokenizer *bpe;      /* the byte-level BPE kind (bpe.c) when set; every tok_* defers to it */
    spm_model m;             /* the model as read (or synthesised); what tok_save_model writes */
    int n;                   /* vocabulary size */
    piece_map normal;        /* NORMAL, USER_DEFINED, UNUSED: the pieces BPE merges may form */
    piece_map reserved;      /* UNKNOWN, CONTROL, BYTE: found only by exact id lookup */
    int unk, bos, eos, pad;
    int byte_id[256];        /* id of <0xNN>, -1 when absent */
    int byte_fallback;
    int has_unused;
    /* user-defined symbols: longest match wins; first-byte filter keeps the common case cheap */
    int n_user;
    uint32_t user_maxlen;
    uint8_t user_first[256];
    /* precompiled_charsmap: a darts-clone double-array trie plus a blob of NUL-terminated
     * replacement strings (NFKC and friends); NULL for identity normalisation */
    uint32_t *trie;
    size_t n_trie;
    const char *repl;
    size_t repl_len;
    /* decoded text of each piece (U+2581 -> ' '), for tok_decode_piece */
    char **surface;
};

/* A growable byte buffer (p need not be NUL-terminated). */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static inline void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* An empty map with room for n pieces. */
void sp_map_init(piece_map *pm, int n);
/* Insert id; returns 0, or -1 when the piece is already there. */
int sp_map_put(llm_tokenizer *t, piece_map *pm, int id);
/* SentencePiece's PieceToId: reserved pieces first, then normal ones, else <unk>. */
int sp_piece_to_id(const llm_tokenizer *t, const char *s, size_t n);
/* The decoded text of a piece (U+2581 -> ' '), malloc'd and NUL-terminated. */
char *sp_surface(const char *p, size_t n);

#endif
