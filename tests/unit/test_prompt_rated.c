/* test_prompt_rated.c - the rated history in the pairwise and listwise templates: which tasks
 * show it (decided per task when the templates are parsed), the exact layout (as pointwise
 * renders it), the liked/disliked layout unchanged for templates without {history}, the token
 * budget over a rated history (test_prompt.c) and the shipped templates' flags (rated.tmpl's token boundary
 * with the LLaMA-2 tokenizer: test_prompt.c). A template
 * that mixes {history} with {liked} or {disliked} is a load error: tests/cli/promptgen.sh. */
#include "harness.h"
#include "rec/prompt.h"
#include "prompt_fixture.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* pairwise: the rated history; listwise: liked and disliked lists (set up by main) */
static char *TINY;

/* TINY with key's line replaced by `line` (newly allocated). */
static char *tiny_with(const char *key, const char *line) { return with_line(TINY, key, line); }

static void test_flags(void) {
    prompt_templates t;
    templates_parse(&t, TINY, strlen(TINY), "tiny");
    CHECK("flags: pointwise always rated; pairwise rated by {history}; listwise liked/disliked",
          t.rated[RTASK_POINTWISE] && t.rated[RTASK_PAIRWISE] && !t.rated[RTASK_LISTWISE]);
    templates_free(&t);
    char *s = tiny_with("listwise.history", "listwise.history = {{history}} {history}");
    templates_parse(&t, s, strlen(s), "tiny2");
    CHECK("flags: listwise rated by {history} ({{history}} is literal text)", t.rated[RTASK_LISTWISE]);
    templates_free(&t);
    free(s);
    s = tiny_with("pairwise.history", "pairwise.history = {{history}} {liked}");
    templates_parse(&t, s, strlen(s), "tiny3");
    CHECK("flags: a literal {{history}} beside {liked} is no rated history", !t.rated[RTASK_PAIRWISE]);
    templates_free(&t);
    free(s);

    char path[4096];
    if (shipped_templates("recranker.tmpl", path, sizeof path)) {
        templates_load(&t, path);
        CHECK("flags: recranker.tmpl: pairwise and listwise show liked/disliked",
              t.rated[RTASK_POINTWISE] && !t.rated[RTASK_PAIRWISE] && !t.rated[RTASK_LISTWISE]);
        templates_free(&t);
    } else {
        CHECK("shipped templates found (set ITREK_ROOT)", 0);
    }
    if (shipped_templates("rated.tmpl", path, sizeof path)) {
        templates_load(&t, path);
        CHECK("flags: rated.tmpl: every task shows the rated history",
              t.rated[RTASK_POINTWISE] && t.rated[RTASK_PAIRWISE] && t.rated[RTASK_LISTWISE]);
        CHECK("rated.tmpl: pairwise and listwise history as pointwise's",
              strcmp(t.text[T_PAIR_HIST], t.text[T_POINT_HIST]) == 0 && strcmp(t.text[T_LIST_HIST], t.text[T_POINT_HIST]) == 0);
        templates_free(&t);
    } else {
        CHECK("rated.tmpl found (set ITREK_ROOT)", 0);
    }
}

static void test_layout(void) {
    prompt_templates t;
    templates_parse(&t, TINY, strlen(TINY), "tiny");
    catalog c = make_catalog();
    prompt_env env = {&t, &c, 1, 5, true, NULL, NULL, 1 << 20, 0, false};
    hist_entry r[3] = {{1, 5, 10, HIST_RATED}, {2, 1.5f, 20, HIST_RATED}, {3, 4, 30, HIST_RATED}};
    prompt_query q = pairwise_query(4, 5);
    prompt_text out;
    bool over;
    int d = prompt_build(&env, RTASK_PAIRWISE, r, 3, &q, 1, &out, &over);
    const char *hist = "I:Q|IN:R[\"A (2000)\"=5;\"B\"=1.5;\"C\"=4]\n";
    char want[256];
    snprintf(want, sizeof want, "%s\"D\">\"E\"?~Y|R\n", hist);
    CHECK("rated pairwise: exact prompt (rated_item joined by rated_sep, oldest first)", strcmp(out.prompt, want) == 0);
    CHECK("rated pairwise: prefix ends after the history", out.prefix_len == strlen(hist));
    CHECK("rated pairwise: response, nothing dropped", strcmp(out.response, "N") == 0 && d == 0 && !over);
    prompt_text_free(&out);
    prompt_build(&env, RTASK_PAIRWISE, r, 0, &q, 1, &out, &over);
    CHECK("rated pairwise: empty history shows `none`", strncmp(out.prompt, "I:Q|IN:R[-]\n", 12) == 0);
    prompt_text_free(&out);

    /* listwise in the same templates keeps the liked / disliked lists */
    hist_entry h[3] = {{1, 5, 10, HIST_LIKED}, {2, 1, 20, HIST_DISLIKED}, {3, 4, 30, HIST_LIKED}};
    prompt_query lq;
    memset(&lq, 0, sizeof lq);
    for (int k = 0; k < 6; k++) lq.items[k] = 4 + k;
    lq.n_items = 6;
    env.hint = false;
    prompt_build(&env, RTASK_LISTWISE, h, 3, &lq, 1, &out, &over);
    CHECK("liked listwise beside rated pairwise: unchanged layout",
          strcmp(out.prompt, "I:K5of6|IN:L[\"A (2000)\",\"C\"]D[\"B\"]\nC[\"D\",\"E\",\"F\",\"G\",\"H\",\"I\"]|R\n") == 0);
    prompt_text_free(&out);
    templates_free(&t);

    /* listwise rated: the same history text as pointwise's */
    char *s = tiny_with("listwise.history", "listwise.history = H[{history}]\\n");
    templates_parse(&t, s, strlen(s), "tiny-listwise");
    prompt_build(&env, RTASK_LISTWISE, r, 3, &lq, 1, &out, &over);
    CHECK("rated listwise: exact prompt",
          strcmp(out.prompt, "I:K5of6|IN:H[\"A (2000)\"=5;\"B\"=1.5;\"C\"=4]\nC[\"D\",\"E\",\"F\",\"G\",\"H\",\"I\"]|R\n") == 0);
    prompt_query pq;
    memset(&pq, 0, sizeof pq);
    pq.items[0] = 6;
    pq.n_items = 1;
    prompt_text po;
    prompt_build(&env, RTASK_POINTWISE, r, 3, &pq, 1, &po, &over);
    const char *ph = strstr(po.prompt, "|IN:"), *lh = strstr(out.prompt, "|IN:");
    CHECK("rated listwise: history part identical to pointwise's",
          ph && lh && po.prefix_len - (size_t)(ph - po.prompt) == out.prefix_len - (size_t)(lh - out.prompt) &&
              memcmp(ph, lh, po.prefix_len - (size_t)(ph - po.prompt)) == 0);
    prompt_text_free(&po);
    prompt_text_free(&out);
    templates_free(&t);

    /* the candidates in the instruction (rated-last.tmpl): the history is the last variable
     * text before the answer, and the prefix still ends after it */
    char *s2 = with_line(s, "listwise.instruction", "listwise.instruction = K{k}of{n}:{candidates}");
    char *s3 = with_line(s2, "listwise.query", "listwise.query = Q?");
    templates_parse(&t, s3, strlen(s3), "tiny-last");
    prompt_build(&env, RTASK_LISTWISE, r, 3, &lq, 1, &out, &over);
    const char *want_last = "I:K5of6:\"D\",\"E\",\"F\",\"G\",\"H\",\"I\"|IN:H[\"A (2000)\"=5;\"B\"=1.5;\"C\"=4]\nQ?|R\n";
    CHECK("listwise candidates in the instruction: exact prompt", strcmp(out.prompt, want_last) == 0);
    CHECK("listwise candidates in the instruction: prefix ends after the history",
          out.prefix_len == strlen(want_last) - strlen("Q?|R\n"));
    prompt_text_free(&out);
    templates_free(&t);
    free(s3);
    free(s2);
    free(s);
    catalog_free(&c);
}

int main(void) {
    TINY = with_line(PROMPT_TINY, "pairwise.history", "pairwise.history = R[{history}]\\n");
    test_flags();
    test_layout();
    free(TINY);
    return 0;
}
