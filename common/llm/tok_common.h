/* tok_common.h - what the tokenizer files share and nothing else needs: the error setter of
 * their load functions, FNV-1a for their piece -> id maps, and the binary heap of merge
 * candidates that both BPE loops (SentencePiece's in tokenizer.c, byte-level BPE's in bpe.c)
 * pop in priority order. Each loop has its own candidate type and order; the heap is generic
 * over both (an element size and a "pops first" test), so the two keep one sift-up/sift-down
 * and therefore pop equal candidates in the same order as before they shared it.
 */
#ifndef ITREK_LLM_TOK_COMMON_H
#define ITREK_LLM_TOK_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* printf into err (when err and errlen are set): the one-line reasons of the loaders. */
void tok_seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* 32-bit FNV-1a of s[0..n). */
static inline uint32_t tok_fnv1a(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

/* A binary min-heap by `before` (before(x, y): x pops first) of elem-byte items, made empty by
 * tok_heap_init; tok_heap_free releases the items. */
typedef struct {
    unsigned char *a;
    size_t n, cap, elem;
    int (*before)(const void *x, const void *y);
} tok_heap;

static inline void tok_heap_init(tok_heap *h, size_t elem, int (*before)(const void *x, const void *y)) {
    *h = (tok_heap){.elem = elem, .before = before};
}
void tok_heap_push(tok_heap *h, const void *item);
/* The first item into out (h->n > 0). */
void tok_heap_pop(tok_heap *h, void *out);
void tok_heap_free(tok_heap *h);

#endif
