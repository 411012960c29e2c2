/* answer_tokens.c - answer tokenisation after a prompt (see answer_tokens.h). */
#include "rerank/answer_tokens.h"

#include "io/err.h"

#include <stdlib.h>
#include <string.h>

/* Encode with a growing buffer; *out malloc'd; returns the count. */
int rerank_encode(const llm_tokenizer *t, const char *text, int bos, int **out) {
    int cap = 64 + (int)(strlen(text) / 2);
    int *ids = xmalloc(sizeof *ids * (size_t)cap);
    int n = tok_encode(t, text, bos, 0, ids, cap);
    if (n > cap) {
        ids = xrealloc(ids, sizeof *ids * (size_t)n);
        tok_encode(t, text, bos, 0, ids, n);
    }
    *out = ids;
    return n;
}

int rerank_lcp(const int *a, int na, const int *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

int rank_answer_tokens(const llm_tokenizer *t, const char *prompt, size_t prompt_len, const char *answer, int **out) {
    size_t s = prompt_len;
    while (s > 0 && prompt[s - 1] != ' ') s--;
    size_t tl = prompt_len - s, al = strlen(answer);
    char *buf = xmalloc(tl + al + 1);
    memcpy(buf, prompt + s, tl);
    buf[tl] = 0;
    int *a, *b;
    int na = rerank_encode(t, buf, 0, &a);
    memcpy(buf + tl, answer, al + 1);
    int nb = rerank_encode(t, buf, 0, &b);
    free(buf);
    int c = rerank_lcp(a, na, b, nb);
    int n = nb - c;
    int *r = xmalloc(sizeof *r * (size_t)(n ? n : 1));
    memcpy(r, b + c, sizeof *r * (size_t)n);
    free(a); free(b);
    *out = r;
    return c == na ? n : -1;
}
