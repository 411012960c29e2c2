/* corpus.c - pretraining text and item symbols from the train split and the catalogue. */
#include "rec/corpus.h"

#include "io/err.h"
#include "io/rng.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put(FILE *out, const char *name, const char *s, corpus_stats *st) {
    /* One document per line: a template's newlines become spaces. */
    for (const char *c = s; *c; c++) {
        if (putc(*c == '\n' ? ' ' : *c, out) == EOF) die_at(name, -1, "write failed: %s", strerror(errno));
        st->bytes++;
    }
    if (putc('\n', out) == EOF) die_at(name, -1, "write failed: %s", strerror(errno));
    st->bytes++;
    st->docs++;
}

/* Appends src to a growing buffer. */
static void cat_str(char **buf, size_t *len, size_t *cap, const char *src) {
    size_t n = strlen(src);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        *buf = xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, src, n + 1);
    *len += n;
}

static void fmt_rating(char *b, size_t n, double r) {
    if (r == floor(r)) snprintf(b, n, "%d", (int)r);
    else snprintf(b, n, "%.1f", r);
}

/* Documents over windows of W entries (step S, first window starting at -off0) of a history:
 * rated entries (`rated_item` joined by `rated_sep` in the pointwise history template) when
 * ratings is given, else a liked list (`item` joined by `list_sep` in liked_key, the history
 * template of a task that shows liked lists). */
static void window_docs(FILE *out, const char *out_name, const prompt_templates *t, const catalog *cat,
                        const int32_t *items, const float *ratings, int n, int W, int S, int off0, template_key liked_key,
                        corpus_stats *st, long *count) {
    for (int s = -off0; s < n; s += S) {
        int lo = s < 0 ? 0 : s, hi = s + W < n ? s + W : n;
        if (hi - lo < 2) continue;
        char *h = NULL;
        size_t len = 0, cap = 0;
        for (int k = lo; k < hi; k++) {
            char *item = prompt_item_text(t, prompt_title(cat, items[k]));
            if (k > lo) cat_str(&h, &len, &cap, t->text[ratings ? T_RATED_SEP : T_LIST_SEP]);
            if (ratings) {
                char r[32];
                fmt_rating(r, sizeof r, ratings[k]);
                const char *kv[] = {"item", item, "rating", r};
                char *e = template_render(t->text[T_RATED_ITEM], kv, 2);
                cat_str(&h, &len, &cap, e);
                free(e);
            } else {
                cat_str(&h, &len, &cap, item);
            }
            free(item);
        }
        const char *kv_rated[] = {"history", h};
        const char *kv_liked[] = {"liked", h, "disliked", t->text[T_NONE]};
        char *doc = ratings ? template_render(t->text[T_POINT_HIST], kv_rated, 1)
                            : template_render(t->text[liked_key], kv_liked, 2);
        put(out, out_name, doc, st);
        (*count)++;
        free(doc);
        free(h);
        if (hi == n) break;
    }
}

void corpus_write(FILE *out, const char *out_name, const interactions *ia, const catalog *cat,
                  const prompt_templates *t, const corpus_params *p, corpus_stats *st) {
    memset(st, 0, sizeof *st);
    /* Catalogue lines: "Toy Story (1995)" (1995): Animation, Children's, Comedy */
    for (int32_t i = 0; i < cat->n_items; i++) {
        const item_info *it = &cat->by_id[i];
        if (!it->title) continue;
        char *item = prompt_item_text(t, it->title);
        char *line = NULL;
        size_t len = 0, cap = 0;
        cat_str(&line, &len, &cap, item);
        char year[32];
        snprintf(year, sizeof year, it->year ? " (%d):" : ":", it->year);
        cat_str(&line, &len, &cap, year);
        for (int g = 0; g < it->n_genres; g++) {
            cat_str(&line, &len, &cap, g ? ", " : " ");
            cat_str(&line, &len, &cap, it->genres[g]);
        }
        put(out, out_name, line, st);
        st->catalog_docs++;
        free(line);
        free(item);
    }
    user_lists hist;
    user_lists_build(&hist, ia, PART_BIT(PART_TRAIN), -INFINITY);
    rng_t rng;
    rng_init(&rng, p->seed, 0xC0);
    int W = p->window > 0 ? p->window : 50, S = p->stride > 0 ? p->stride : W;
    /* Liked-list documents only when a task shows liked lists (pairwise's template, else
     * listwise's): with every history rated (data/prompts/rated.tmpl) the rated windows are
     * already the prompts' history format. */
    bool any_liked = !t->rated[RTASK_PAIRWISE] || !t->rated[RTASK_LISTWISE];
    template_key liked_key = !t->rated[RTASK_PAIRWISE] ? T_PAIR_HIST : T_LIST_HIST;
    int32_t *liked = xmalloc(sizeof *liked * (size_t)(hist.off[hist.n_users] + 1));
    for (int pass = 0; pass < (p->repeat > 0 ? p->repeat : 1); pass++)
        for (int32_t u = 0; u < hist.n_users; u++) {
            int32_t a = hist.off[u], n = ul_len(&hist, u);
            if (n == 0) continue;
            /* Each pass starts its windows at another offset, so documents differ between passes. */
            int off0 = pass == 0 ? 0 : (int)rng_below(&rng, (uint64_t)S);
            /* rated windows, as the pointwise history shows them */
            window_docs(out, out_name, t, cat, hist.item + a, hist.rating + a, n, W, S, off0, liked_key, st, &st->rated_docs);
            if (!any_liked) continue;
            /* liked-list windows, as the pairwise and listwise histories show them */
            int nl = 0;
            for (int k = 0; k < n; k++)
                if (hist.rating[a + k] >= ia->like) liked[nl++] = hist.item[a + k];
            window_docs(out, out_name, t, cat, liked, NULL, nl, W, S, off0, liked_key, st, &st->liked_docs);
        }
    free(liked);
    user_lists_free(&hist);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* text with spaces as U+2581, the form SentencePiece matches user-defined symbols in */
static char *spm_form(const char *text) {
    size_t m = strlen(text);
    char *s = xmalloc(3 * m + 1), *o = s;
    for (size_t k = 0; k < m; k++) {
        if (text[k] == ' ') { *o++ = (char)0xE2; *o++ = (char)0x96; *o++ = (char)0x81; }
        else *o++ = text[k];
    }
    *o = 0;
    return s;
}

char *corpus_item_symbol(const prompt_templates *t, const char *title) {
    char *item = prompt_item_text(t, title), *sym = spm_form(item);
    free(item);
    return sym;
}

long corpus_write_symbols(FILE *out, const char *out_name, const catalog *cat, const prompt_templates *t,
                          const interactions *entries) {
    /* items, then at most 2 per distinct rating and the list separator */
    size_t cap = (size_t)cat->n_items + 1, n_sym = 0;
    char **sym = xcalloc(cap, sizeof *sym);
#define ADD_SYM(text)                                                                  \
    do {                                                                               \
        if (n_sym == cap) sym = xrealloc(sym, sizeof *sym * (cap *= 2));               \
        sym[n_sym++] = spm_form(text);                                                 \
    } while (0)
    for (int32_t i = 0; i < cat->n_items; i++) {
        if (!cat->by_id[i].title) continue;
        if (n_sym == cap) sym = xrealloc(sym, sizeof *sym * (cap *= 2));
        sym[n_sym++] = corpus_item_symbol(t, cat->by_id[i].title);
    }
    if (entries) {
        /* The rated history's fixed text (": 5; " between entries, ": 5" before the history's
         * closing text) and the list separator as whole tokens: otherwise a history entry costs
         * 6 tokens for its 1 title token (SentencePiece never merges across a space), and the
         * backbone sees a third as many items per pretraining step. */
        const char *sep = t->text[T_RATED_SEP];
        size_t n_ratings = 0;
        float *ratings = xmalloc(sizeof *ratings * (entries->n + 1));
        for (size_t k = 0; k < entries->n; k++) {
            if (entries->v[k].part != PART_TRAIN) continue;
            size_t j = 0;
            while (j < n_ratings && ratings[j] != entries->v[k].rating) j++;
            if (j == n_ratings) ratings[n_ratings++] = entries->v[k].rating;
        }
        for (size_t j = 0; j < n_ratings; j++) {
            char r[32];
            prompt_format_rating(r, sizeof r, ratings[j]);
            char *suffix = prompt_rated_suffix(t, r);
            if (!suffix) die("--entry-symbols: the templates' rated_item does not begin with {item}");
            if (suffix[0]) {
                size_t ls = strlen(suffix), lp = strlen(sep);
                char *joined = xmalloc(ls + lp + 1);
                memcpy(joined, suffix, ls);
                memcpy(joined + ls, sep, lp + 1);
                ADD_SYM(suffix);
                if (sep[0]) ADD_SYM(joined);
                free(joined);
            }
            free(suffix);
        }
        free(ratings);
        if (t->text[T_LIST_SEP][0]) ADD_SYM(t->text[T_LIST_SEP]);
    }
#undef ADD_SYM
    qsort(sym, n_sym, sizeof *sym, cmp_str);
    long written = 0;
    for (size_t k = 0; k < n_sym; k++) {
        if (k == 0 || strcmp(sym[k], sym[k - 1]) != 0) {
            if (fprintf(out, "%s\n", sym[k]) < 0) die_at(out_name, -1, "write failed: %s", strerror(errno));
            written++;
        }
    }
    for (size_t k = 0; k < n_sym; k++) free(sym[k]);
    free(sym);
    return written;
}
