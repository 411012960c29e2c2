/* tok_common.c - the tokenizers' shared helpers (tok_common.h): the error setter and the
 * merge-candidate heap. The heap's sift-up and sift-down are those both BPE loops had (the
 * last item sinks from the root, the earlier child winning ties), so candidates of equal
 * priority still pop in the order the tokenizers' reference implementations give.
 */
#include "llm/tok_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"

void tok_seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#define AT(h, i) ((h)->a + (i) * (h)->elem)

void tok_heap_push(tok_heap *h, const void *item) {
    if (h->n == h->cap) {
        h->cap = h->cap * 2 + 32;
        h->a = xrealloc(h->a, h->cap * h->elem);
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!h->before(item, AT(h, up))) break;
        memcpy(AT(h, i), AT(h, up), h->elem);
        i = up;
    }
    memcpy(AT(h, i), item, h->elem);
}

void tok_heap_pop(tok_heap *h, void *out) {
    memcpy(out, AT(h, 0), h->elem);
    size_t n = --h->n, i = 0;
    const unsigned char *last = AT(h, n); /* sinks from the root; its slot is past the end now */
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const unsigned char *bp = last;
        if (l < n && h->before(AT(h, l), bp)) best = l, bp = AT(h, l);
        if (l + 1 < n && h->before(AT(h, l + 1), bp)) best = l + 1;
        if (best == i) break;
        memcpy(AT(h, i), AT(h, best), h->elem);
        i = best;
    }
    if (n) memcpy(AT(h, i), last, h->elem);
}

void tok_heap_free(tok_heap *h) {
    free(h->a);
    h->a = NULL;
    h->n = h->cap = 0;
}
