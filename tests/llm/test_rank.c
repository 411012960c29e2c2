/* test_rank.c - the reranker's building blocks: the title trie, constrained listwise decoding
 * on a toy vocabulary, and the answer tokens (ratings, Yes./No., titles) as the model would
 * emit them after an alpaca prompt, with the stories260K and (when present) LLaMA-2 tokenizers. */
#include "../unit/harness.h"
#include "io/rng.h"
#include "rerank/answer_tokens.h"
#include "rerank/title_trie.h"
#include "llm/tokenizer.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- trie */

static void test_trie(void) {
    const int a[] = {1, 2, 3}, b[] = {1, 2, 4}, c[] = {1, 5}, d[] = {1, 2, 3};
    const int *seqs[] = {a, b, c, d};
    const int lens[] = {3, 3, 2, 3};
    rank_trie *t = rank_trie_new(seqs, lens, 4);
    int tk[8];
    CHECK("trie: root allows only 1", rank_trie_allowed(t, 0, tk, 8) == 1 && tk[0] == 1);
    int n1 = rank_trie_child(t, 0, 1);
    int n = rank_trie_allowed(t, n1, tk, 8);
    CHECK("trie: after 1: 2 and 5, ascending", n == 2 && tk[0] == 2 && tk[1] == 5);
    int n12 = rank_trie_child(t, n1, 2), n123 = rank_trie_child(t, n12, 3);
    CHECK("trie: no child for an unknown token", rank_trie_child(t, n1, 7) == -1);
    CHECK("trie: 1 2 3 completes sequence 0 (lowest of the duplicates)", rank_trie_complete(t, n123) == 0);
    CHECK("trie: inner node completes nothing", rank_trie_complete(t, n12) == -1);
    rank_trie_remove(t, 0);
    CHECK("trie: duplicate still live after removing one", rank_trie_complete(t, n123) == 3 && rank_trie_child(t, n12, 3) == n123);
    rank_trie_remove(t, 3);
    CHECK("trie: both removed: 3 no longer allowed", rank_trie_child(t, n12, 3) == -1 && rank_trie_allowed(t, n12, tk, 8) == 1 && tk[0] == 4);
    rank_trie_remove(t, 1);
    n = rank_trie_allowed(t, n1, tk, 8);
    CHECK("trie: after removing 0,1,3 only 5 follows 1", n == 1 && tk[0] == 5);
    CHECK("trie: live count", rank_trie_live(t) == 1);
    rank_trie_remove(t, 1); /* twice: no effect */
    CHECK("trie: removing twice is harmless", rank_trie_live(t) == 1);
    rank_trie_free(t);
}

/* ---------------------------------------------------------------- constrained decoding, toy model */

enum { V = 20, SEP = 9, EOS = 2 };

/* Runs the decoder with fixed per-token preferences (a toy model: the same logits at every
 * step). Returns the emitted tokens in out. */
static int run_list(rank_list *l, const float *logits, int *out, int max) {
    int n = 0;
    for (int step = 0; step < 1000 && n < max; step++) {
        int tok = rank_list_choose(l, logits, V);
        if (tok < 0) break;
        out[n++] = tok;
        if (rank_list_push(l, tok)) break;
    }
    return n;
}

static void test_list_toy(void) {
    /* titles: A = 3 4, B = 3 5, C = 6, D = 7 8; each + SEP (mid) or + EOS (last) */
    const int As[] = {3, 4, SEP}, Bs[] = {3, 5, SEP}, Cs[] = {6, SEP}, Ds[] = {7, 8, SEP};
    const int Ae[] = {3, 4, EOS}, Be[] = {3, 5, EOS}, Ce[] = {6, EOS}, De[] = {7, 8, EOS};
    const int *sep[] = {As, Bs, Cs, Ds}, *eos[] = {Ae, Be, Ce, De};
    const int sl[] = {3, 3, 2, 3};
    /* preferences: 10 (never allowed) > 5 > 4 > 3 > SEP > EOS > 6 > 7 > 8 > the rest */
    float lg[V];
    for (int i = 0; i < V; i++) lg[i] = -10;
    const int pref[] = {10, 5, 4, 3, SEP, EOS, 6, 7, 8};
    for (int k = 0; k < 9; k++) lg[pref[k]] = 10.0f - k;
    rank_list l;
    rank_list_init(&l, sep, sl, eos, sl, 4, 5); /* need = min(5, 4) = 4 */
    int out[64];
    int n = run_list(&l, lg, out, 64);
    const int want[] = {3, 5, SEP, 3, 4, SEP, 6, SEP, 7, 8, EOS};
    CHECK("list toy: 4 titles needed of 4", l.need == 4 && l.n_chosen == 4);
    CHECK("list toy: order B A C D", l.chosen[0] == 1 && l.chosen[1] == 0 && l.chosen[2] == 2 && l.chosen[3] == 3);
    CHECK("list toy: emitted tokens", n == 11 && memcmp(out, want, sizeof want) == 0);
    rank_list_free(&l);

    /* need 2: the second title ends with EOS */
    rank_list_init(&l, sep, sl, eos, sl, 4, 2);
    n = run_list(&l, lg, out, 64);
    const int want2[] = {3, 5, SEP, 3, 4, EOS};
    CHECK("list toy: need 2 -> B then A, last with EOS", n == 6 && memcmp(out, want2, sizeof want2) == 0);
    rank_list_free(&l);

    /* ties: equal logits choose the lowest token id */
    for (int i = 0; i < V; i++) lg[i] = 0;
    rank_list_init(&l, sep, sl, eos, sl, 4, 1);
    n = run_list(&l, lg, out, 64);
    CHECK("list toy: ties -> lowest id (A = 3 4 EOS)", n == 3 && out[0] == 3 && out[1] == 4 && out[2] == EOS && l.chosen[0] == 0);
    rank_list_free(&l);
}

/* Random titles (shared prefixes, prefixes of each other, duplicates) and random logits at every
 * step: the answer always names min(5, n) distinct titles and the tokens spell them out. */
static void test_list_random(void) {
    rng_t r;
    rng_init(&r, 42, 0);
    int ok_count = 0, ok_tokens = 0, ok_distinct = 0, trials = 300;
    for (int trial = 0; trial < trials; trial++) {
        int n = 1 + (int)rng_below(&r, 10);
        int *sep[10], *eos[10], ls[10], le[10];
        for (int i = 0; i < n; i++) {
            int L = 1 + (int)rng_below(&r, 4);
            sep[i] = malloc(sizeof(int) * 8);
            eos[i] = malloc(sizeof(int) * 8);
            if (i > 0 && rng_below(&r, 4) == 0) { /* a copy or a prefix of an earlier title */
                int j = (int)rng_below(&r, (uint64_t)i);
                L = 1 + (int)rng_below(&r, (uint64_t)(ls[j] - 1));
                memcpy(sep[i], sep[j], sizeof(int) * (size_t)L);
                if (L < ls[j] - 1 && rng_below(&r, 2)) sep[i][L++] = 10 + (int)rng_below(&r, 3);
            } else {
                for (int k = 0; k < L; k++) sep[i][k] = 3 + (int)rng_below(&r, 5); /* tokens 3..7: many shared prefixes */
            }
            memcpy(eos[i], sep[i], sizeof(int) * (size_t)L);
            sep[i][L] = SEP;
            eos[i][L] = EOS;
            ls[i] = le[i] = L + 1;
        }
        rank_list l;
        rank_list_init(&l, (const int *const *)sep, ls, (const int *const *)eos, le, n, RTASK_LIST_TOP);
        int need = n < RTASK_LIST_TOP ? n : RTASK_LIST_TOP;
        int out[256], m = 0;
        float lg[V];
        for (int step = 0; step < 200; step++) {
            for (int i = 0; i < V; i++) lg[i] = (float)rng_normal(&r);
            int tok = rank_list_choose(&l, lg, V);
            if (tok < 0) break;
            out[m++] = tok;
            if (rank_list_push(&l, tok)) break;
        }
        ok_count += l.n_chosen == need;
        bool distinct = true;
        for (int a = 0; a < l.n_chosen; a++)
            for (int b = 0; b < a; b++) distinct &= l.chosen[a] != l.chosen[b];
        ok_distinct += distinct;
        int want[256], w = 0;
        for (int a = 0; a < l.n_chosen; a++) {
            const int *s = a + 1 < need ? sep[l.chosen[a]] : eos[l.chosen[a]];
            int L = a + 1 < need ? ls[l.chosen[a]] : le[l.chosen[a]];
            for (int k = 0; k < L; k++) want[w++] = s[k];
        }
        ok_tokens += w == m && memcmp(want, out, sizeof(int) * (size_t)m) == 0;
        rank_list_free(&l);
        for (int i = 0; i < n; i++) { free(sep[i]); free(eos[i]); }
    }
    CHECK("list random: always min(5, n) titles", ok_count == trials);
    CHECK("list random: titles distinct", ok_distinct == trials);
    CHECK("list random: tokens are the chosen titles' sequences", ok_tokens == trials);
}

/* ---------------------------------------------------------------- answer tokens */

static int enc(const llm_tokenizer *t, const char *s, int bos, int *ids, int max) {
    return tok_encode(t, s, bos, 0, ids, max);
}

/* Whole-prompt check: encode(prompt + answer) = encode(prompt) followed by the answer's tokens. */
static bool matches_full(const llm_tokenizer *t, const char *prompt, const char *answer) {
    static int p[8192], f[8192];
    char *full = malloc(strlen(prompt) + strlen(answer) + 1);
    strcpy(full, prompt);
    strcat(full, answer);
    int np = enc(t, prompt, 1, p, 8192), nf = enc(t, full, 1, f, 8192);
    free(full);
    int *a;
    int na = rank_answer_tokens(t, prompt, strlen(prompt), answer, &a);
    bool ok = na > 0 && nf == np + na && memcmp(f, p, sizeof(int) * (size_t)np) == 0 &&
              memcmp(f + np, a, sizeof(int) * (size_t)na) == 0;
    free(a);
    return ok;
}

static const char *PROMPT =
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n### Instruction:\nYou are a movie recommender "
    "system. Respond only with \"Yes.\" or \"No.\".\n\n### Input:\nUser's liked movies: \"Toy Story (1995)\", "
    "\"Heat (1995)\".\nUser's disliked movies: None.\n\nQuestion: Would the user prefer \"Fargo (1996)\" over "
    "\"Babe (1995)\"?\n\n### Response:\n";

static void test_answers(const char *name, const llm_tokenizer *t) {
    char buf[128];
    bool ok = true;
    for (int v = 1; v <= 10; v++) { snprintf(buf, sizeof buf, "%d", v); ok &= matches_full(t, PROMPT, buf); }
    snprintf(buf, sizeof buf, "%s: ratings 1..10 tokenise as after the prompt", name);
    CHECK(buf, ok);
    snprintf(buf, sizeof buf, "%s: Yes. / No. tokenise as after the prompt", name);
    CHECK(buf, matches_full(t, PROMPT, "Yes.") && matches_full(t, PROMPT, "No."));
    snprintf(buf, sizeof buf, "%s: a quoted title + newline tokenises as after the prompt", name);
    CHECK(buf, matches_full(t, PROMPT, "\"Toy Story (1995)\"\n") && matches_full(t, PROMPT, "\"Heat (1995)\""));
    /* A whole listwise answer = title+sep sequences concatenated, the last title alone. */
    const char *items[] = {"\"Fargo (1996)\"", "\"Babe (1995)\"", "\"L'Âge d'or (1930)\"", "\"Heat (1995)\""};
    static int f[8192], p[8192];
    char full[4096];
    snprintf(full, sizeof full, "%s%s\n%s\n%s\n%s", PROMPT, items[0], items[1], items[2], items[3]);
    int np = enc(t, PROMPT, 1, p, 8192), nf = enc(t, full, 1, f, 8192);
    int cat[512], nc = 0;
    for (int k = 0; k < 4; k++) {
        char s[256];
        snprintf(s, sizeof s, "%s%s", items[k], k < 3 ? "\n" : "");
        int *a;
        int na = rank_answer_tokens(t, PROMPT, strlen(PROMPT), s, &a);
        if (na > 0) { memcpy(cat + nc, a, sizeof(int) * (size_t)na); nc += na; }
        free(a);
    }
    snprintf(buf, sizeof buf, "%s: a listwise answer is its titles' sequences concatenated", name);
    CHECK(buf, nf == np + nc && memcmp(f + np, cat, sizeof(int) * (size_t)nc) == 0);
    /* Prefix sharing: the prefix (up to the end of the history) encodes as the start of the prompt. */
    const char *cut = strstr(PROMPT, "\n\nQuestion:") + 2;
    char pre[2048];
    memcpy(pre, PROMPT, (size_t)(cut - PROMPT));
    pre[cut - PROMPT] = 0;
    int pp[2048];
    int npp = enc(t, pre, 1, pp, 2048);
    snprintf(buf, sizeof buf, "%s: the prefix's tokens start the prompt's tokens", name);
    CHECK(buf, npp < np && memcmp(pp, p, sizeof(int) * (size_t)npp) == 0);
}

int main(void) {
    test_trie();
    test_list_toy();
    test_list_random();
    const char *shared = getenv("SHARED");
    if (!shared) shared = "/work/shared";
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/models/stories260K/tok512.bin", shared);
    llm_tokenizer *t = tok_load_llama2c(path, 512, err, sizeof err);
    CHECK("stories260K tokenizer loads", t != NULL);
    if (t) { test_answers("tok512", t); tok_free(t); }
    snprintf(path, sizeof path, "%s/models/llama2-tokenizer/tokenizer.model", shared);
    t = tok_load(path, err, sizeof err);
    if (t) { test_answers("llama2", t); tok_free(t); }
    else printf("(LLaMA-2 tokenizer not found: %s; skipped)\n", err);
    return 0;
}
