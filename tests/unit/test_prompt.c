/* test_prompt.c - template parsing, exact prompt layout for the three tasks, the shared prefix,
 * the token budget (oldest history dropped), the rating calibration line, and (with the LLaMA-2
 * tokenizer from $SHARED) that the shipped templates' prefix ends on a token boundary. */
#include "harness.h"
#include "llm/tokenizer.h"
#include "rec/prompt.h"
#include "prompt_fixture.h"

#define TINY PROMPT_TINY

#include <stdlib.h>
#include <string.h>
#include <unistd.h>



static void test_parse(void) {
    prompt_templates t;
    const char *x =
        "wrapper = \\s{instruction}\\t{input}\\\\  \n"
        "item = {{{title}}}\n"
        "rated_item = a\\\n"
        "      b{item}{rating}\n";
    /* the rest of the keys from TINY */
    size_t n = strlen(x) + sizeof TINY;
    char *all = malloc(n + 1);
    strcpy(all, x);
    const char *rest = strstr(TINY, "rated_sep");
    strcat(all, rest);
    templates_parse(&t, all, strlen(all), "inline");
    CHECK("templates: \\s, \\t, \\\\ escapes; trailing blanks dropped", strcmp(t.text[T_WRAPPER], " {instruction}\t{input}\\") == 0);
    CHECK("templates: {{ and }} kept escaped until rendering", strcmp(t.text[T_ITEM], "{{{title}}}") == 0);
    CHECK("templates: continuation line (leading blanks skipped)", strcmp(t.text[T_RATED_ITEM], "ab{item}{rating}") == 0);
    char *it = prompt_item_text(&t, "Heat (1995)");
    CHECK("templates: {{ }} render as literal braces", strcmp(it, "{Heat (1995)}") == 0);
    free(it);
    templates_free(&t);
    free(all);

    char path[4096];
    if (shipped_templates("recranker.tmpl", path, sizeof path)) {
        templates_load(&t, path);
        CHECK("shipped templates: alpaca wrapper",
              strncmp(t.text[T_WRAPPER], "Below is an instruction that describes a task, paired with an input that provides further "
                                          "context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
                      400) == 0);
        CHECK("shipped templates: pairwise answers", strcmp(t.text[T_PAIR_YES], "Yes.") == 0 && strcmp(t.text[T_PAIR_NO], "No.") == 0);
        templates_free(&t);
    } else {
        CHECK("shipped templates found (set ITREK_ROOT)", 0);
    }
}

static prompt_env tiny_env(prompt_templates *t, catalog *c) {
    prompt_env e = {t, c, 1, 5, true, NULL, NULL, 1 << 20, 0, false};
    return e;
}

static void test_layout(void) {
    prompt_templates t;
    templates_parse(&t, TINY, strlen(TINY), "tiny");
    catalog c = make_catalog();
    prompt_env env = tiny_env(&t, &c);
    hist_entry h[3] = {{1, 5, 10, HIST_LIKED}, {2, 1, 20, HIST_DISLIKED}, {3, 4, 30, HIST_LIKED}};
    prompt_query q = pairwise_query(4, 5);
    prompt_text out;
    bool over;
    int d = prompt_build(&env, RTASK_PAIRWISE, h, 3, &q, 1, &out, &over);
    const char *want = "I:Q|IN:L[\"A (2000)\",\"C\"]D[\"B\"]\n\"D\">\"E\"?~Y|R\n";
    CHECK("pairwise: exact prompt", strcmp(out.prompt, want) == 0);
    CHECK("pairwise: response", strcmp(out.response, "N") == 0);
    CHECK("pairwise: prefix ends after the history", out.prefix_len == strlen("I:Q|IN:L[\"A (2000)\",\"C\"]D[\"B\"]\n"));
    CHECK("pairwise: nothing dropped", d == 0 && !over);
    CHECK("pairwise: tokens estimated as 1 + ceil(bytes/2)", out.tokens == 1 + (int)((strlen(want) + 1) / 2));
    prompt_text_free(&out);
    env.hint = false;
    prompt_build(&env, RTASK_PAIRWISE, h, 3, &q, 1, &out, &over);
    CHECK("pairwise: --no-hint drops the hint", strcmp(out.prompt, "I:Q|IN:L[\"A (2000)\",\"C\"]D[\"B\"]\n\"D\">\"E\"?|R\n") == 0);
    prompt_text_free(&out);
    env.hint = true;

    /* pointwise: three targets over one rated history share the prefix */
    hist_entry r[2] = {{1, 5, 10, HIST_RATED}, {2, 1.5f, 20, HIST_RATED}};
    prompt_query pq[3];
    memset(pq, 0, sizeof pq);
    for (int k = 0; k < 3; k++) {
        pq[k].items[0] = 6 + k;
        pq[k].n_items = 1;
        pq[k].hint_score = 2.26 + 3 * k; /* 2.26 -> 2.3, 5.26 -> 5.0 (clamped), 8.26 -> 5.0 */
    }
    pq[0].has_response = true;
    pq[0].rating = 4;
    prompt_text po[3];
    prompt_build(&env, RTASK_POINTWISE, r, 2, pq, 3, po, &over);
    CHECK("pointwise: exact prompt", strcmp(po[0].prompt, "I:P1-5|IN:H[\"A (2000)\"=5;\"B\"=1.5]\nT\"F\"~2.3|R\n") == 0);
    CHECK("pointwise: hint clamped to the scale", strstr(po[1].prompt, "~5.0|") != NULL && strstr(po[2].prompt, "~5.0|") != NULL);
    CHECK("pointwise: response is the rating", strcmp(po[0].response, "4") == 0 && po[1].response == NULL);
    int same = 1;
    for (int k = 1; k < 3; k++) same &= po[k].prefix_len == po[0].prefix_len && memcmp(po[k].prompt, po[0].prompt, po[0].prefix_len) == 0;
    CHECK("pointwise: the queries share their prefix", same);
    CHECK("pointwise: the prefix ends with a newline", po[0].prompt[po[0].prefix_len - 1] == '\n');
    for (int k = 0; k < 3; k++) prompt_text_free(&po[k]);

    /* listwise */
    prompt_query lq;
    memset(&lq, 0, sizeof lq);
    for (int k = 0; k < 6; k++) lq.items[k] = 4 + k;
    lq.n_items = 6;
    lq.n_hint_top = 2;
    lq.hint_top[0] = 9;
    lq.hint_top[1] = 4;
    lq.has_response = true;
    lq.n_answer = 3;
    lq.answer[0] = 5;
    lq.answer[1] = 4;
    lq.answer[2] = 8;
    prompt_build(&env, RTASK_LISTWISE, h, 1, &lq, 1, &out, &over);
    CHECK("listwise: exact prompt", strcmp(out.prompt, "I:K5of6|IN:L[\"A (2000)\"]D[-]\nC[\"D\",\"E\",\"F\",\"G\",\"H\",\"I\"]~\"I\",\"D\"|R\n") == 0);
    CHECK("listwise: response joined by answer_sep", strcmp(out.response, "\"E\"/\"D\"/\"H\"") == 0);
    prompt_text_free(&out);
    templates_free(&t);
    catalog_free(&c);
}

/* The token budget over a pairwise history of liked lists, or (rated) of the rated history that
 * pairwise.history shows with {history}: the same rules either way. */
static void test_budget(bool rated) {
    prompt_templates t;
    char *text = rated ? with_line(TINY, "pairwise.history", "pairwise.history = L[{history}]\\n") : strdup(TINY);
    templates_parse(&t, text, strlen(text), "tiny");
    catalog c = make_catalog();
    prompt_env env = tiny_env(&t, &c);
    hist_entry h[10];
    for (int k = 0; k < 10; k++) /* items 1..10, oldest first */
        h[k] = (hist_entry){1 + k, (float)(1 + k % 5), 100 + k, rated ? HIST_RATED : HIST_LIKED};
    char name[128];
#define BUDGET_CHECK(what, cond) do { snprintf(name, sizeof name, "%sbudget: %s", rated ? "rated " : "", what); CHECK(name, cond); } while (0)
    prompt_query q;
    memset(&q, 0, sizeof q);
    q.items[0] = 11;
    q.items[1] = 12;
    q.n_items = 2;
    prompt_text full, cut;
    bool over;
    prompt_build(&env, RTASK_PAIRWISE, h, 10, &q, 1, &full, &over);
    env.reserve = 7;
    env.context = full.tokens + 7 - 5; /* 5 tokens too many */
    int d = prompt_build(&env, RTASK_PAIRWISE, h, 10, &q, 1, &cut, &over);
    BUDGET_CHECK("oldest entries dropped", d > 0 && !over);
    BUDGET_CHECK("the shortened prompt fits with the reserve", cut.tokens + env.reserve <= env.context);
    BUDGET_CHECK("the newest entry stays, the oldest goes", strstr(cut.prompt, "\"J\"") && !strstr(cut.prompt, "\"A (2000)\""));
    prompt_text one_less;
    int ctx = env.context;
    env.context = 1 << 20;
    prompt_build(&env, RTASK_PAIRWISE, h + d - 1, 10 - d + 1, &q, 1, &one_less, &over);
    env.context = ctx;
    BUDGET_CHECK("dropping one entry fewer would not fit", one_less.tokens + env.reserve > env.context);
    prompt_text_free(&one_less);
    prompt_text_free(&cut);
    env.context = 5;
    d = prompt_build(&env, RTASK_PAIRWISE, h, 10, &q, 1, &cut, &over);
    BUDGET_CHECK("over budget even without history", over && d == 10 && strstr(cut.prompt, "L[-]") != NULL);
    prompt_text_free(&cut);
    /* training: the response counts when longer than the reserve */
    env.context = full.tokens + 3;
    env.reserve = 0;
    q.has_response = true;
    q.answer_yes = true; /* "Y": 1 + ceil(1/2) = 2 tokens <= 3 */
    d = prompt_build(&env, RTASK_PAIRWISE, h, 10, &q, 1, &cut, &over);
    BUDGET_CHECK("a short response fits without dropping", d == 0);
    prompt_text_free(&cut);
    env.context = full.tokens + 1;
    d = prompt_build(&env, RTASK_PAIRWISE, h, 10, &q, 1, &cut, &over);
    BUDGET_CHECK("the response's own tokens count", d > 0 && cut.tokens + 2 <= env.context);
    prompt_text_free(&cut);
    prompt_text_free(&full);
    templates_free(&t);
    catalog_free(&c);
    free(text);
#undef BUDGET_CHECK
}

static void test_line(void) {
    double x[5] = {0, 1, 2, 3, 4}, y[5], a, b;
    for (int i = 0; i < 5; i++) y[i] = 2 + 3 * x[i];
    fit_line(x, y, 5, &a, &b);
    CHECK_NEAR("fit_line: intercept", a, 2, 1e-12);
    CHECK_NEAR("fit_line: slope", b, 3, 1e-12);
    double cx[3] = {1, 1, 1}, cy[3] = {1, 2, 6};
    fit_line(cx, cy, 3, &a, &b);
    CHECK("fit_line: constant scores give the mean", b == 0 && a == 3);
}

static int count_llama(void *ctx, const char *s, size_t n) {
    (void)n;
    return tok_encode(ctx, s, 1, 0, NULL, 0);
}

/* A shipped templates file (data/prompts/NAME) with the LLaMA-2 tokenizer: the shared prefix
 * ends on a token boundary in all three tasks. all_rated: every task shows the rated history
 * (rated.tmpl), checked in the prompt text too. */
static void test_token_boundary(const char *name, bool all_rated) {
    const char *shared = getenv("SHARED");
    char tp[4096], mp[4096], label[256];
    snprintf(tp, sizeof tp, "%s/models/llama2-tokenizer/tokenizer.model", shared ? shared : "../shared");
    if (access(tp, R_OK) != 0 || !shipped_templates(name, mp, sizeof mp)) {
        printf("PASS %s token boundary: skipped (no LLaMA-2 tokenizer or templates)\n", name);
        return;
    }
    char err[256];
    llm_tokenizer *tok = tok_load(tp, err, sizeof err);
    CHECK("token boundary: tokenizer loads", tok != NULL);
    if (!tok) return;
    prompt_templates t;
    templates_load(&t, mp);
    catalog c = make_catalog();
    free(c.by_id[1].title);
    c.by_id[1].title = strdup("Usual Suspects, The (1995)");
    free(c.by_id[2].title);
    c.by_id[2].title = strdup("Á köldum klaka (Cold Fever) (1994)");
    prompt_env env = {&t, &c, 1, 5, true, count_llama, tok, 1024, 128, false};
    hist_entry h[4] = {{1, 5, 1, HIST_LIKED}, {2, 1, 2, HIST_DISLIKED}, {3, 4, 3, HIST_LIKED}, {9, 2, 4, HIST_DISLIKED}};
    hist_entry hr[4] = {{1, 5, 1, HIST_RATED}, {2, 1, 2, HIST_RATED}, {3, 4, 3, HIST_RATED}, {9, 2, 4, HIST_RATED}};
    int ok = 1, ids[4096], pids[4096];
    for (int task = 0; task < RTASK_COUNT; task++) {
        prompt_query q;
        memset(&q, 0, sizeof q);
        q.n_items = task == RTASK_POINTWISE ? 1 : task == RTASK_PAIRWISE ? 2 : 6;
        for (int k = 0; k < q.n_items; k++) q.items[k] = 4 + k;
        q.hint_score = 3.7;
        q.n_hint_top = 5;
        for (int k = 0; k < 5; k++) q.hint_top[k] = 5 + k;
        prompt_text out;
        bool over;
        prompt_build(&env, (prompt_task)task, task == RTASK_POINTWISE || all_rated ? hr : h, 4, &q, 1, &out, &over);
        if (all_rated) ok &= strstr(out.prompt, "User's historical movie ratings: \"Usual Suspects, The (1995)\": 5; ") != NULL;
        int n = tok_encode(tok, out.prompt, 1, 0, ids, 4096);
        char *prefix = strndup(out.prompt, out.prefix_len);
        int np = tok_encode(tok, prefix, 1, 0, pids, 4096);
        ok &= n == out.tokens && np < n && memcmp(ids, pids, sizeof *ids * (size_t)np) == 0;
        free(prefix);
        prompt_text_free(&out);
    }
    snprintf(label, sizeof label, "%s token boundary: LLaMA-2 tokens of the prefix begin the prompt's tokens (3 tasks%s)", name,
             all_rated ? ", the rated history in each" : "");
    CHECK(label, ok);
    templates_free(&t);
    catalog_free(&c);
    tok_free(tok);
}

int main(void) {
    test_parse();
    test_layout();
    test_budget(false);
    test_budget(true);
    test_line();
    test_token_boundary("recranker.tmpl", false);
    test_token_boundary("rated.tmpl", true);
    return 0;
}
