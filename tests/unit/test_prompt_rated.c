/* test_prompt_rated.c - the rated history in the pairwise and listwise templates: which tasks
 * show it (decided per task when the templates are parsed), the exact layout (as pointwise
 * renders it), the liked/disliked layout unchanged for templates without {history}, the token
 * budget over a rated history, the shipped templates' flags, and (with the LLaMA-2 tokenizer
 * from $SHARED) that data/prompts/rated.tmpl's prefix ends on a token boundary. A template
 * that mixes {history} with {liked} or {disliked} is a load error: tests/cli/promptgen.sh. */
#include "harness.h"
#include "llm/tokenizer.h"
#include "rec/prompt.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* pairwise: the rated history; listwise: liked and disliked lists */
static const char TINY[] =
    "wrapper = I:{instruction}|IN:{input}|R\\n\n"
    "item = \"{title}\"\n"
    "rated_item = {item}={rating}\n"
    "rated_sep = ;\n"
    "list_sep = ,\n"
    "none = -\n"
    "answer_sep = /\n"
    "pointwise.instruction = P{min}-{max}\n"
    "pointwise.history = H[{history}]\\n\n"
    "pointwise.query = T{target}\n"
    "pointwise.hint = ~{hint}\n"
    "pointwise.response = {rating}\n"
    "pairwise.instruction = Q\n"
    "pairwise.history = R[{history}]\\n\n"
    "pairwise.query = {first}>{second}?\n"
    "pairwise.hint = ~{hint}\n"
    "pairwise.yes = Y\n"
    "pairwise.no = N\n"
    "pairwise.response = {answer}\n"
    "listwise.instruction = K{k}of{n}\n"
    "listwise.history = L[{liked}]D[{disliked}]\\n\n"
    "listwise.query = C[{candidates}]\n"
    "listwise.hint = ~{hint}\n"
    "listwise.response = {answer}\n";

static catalog make_catalog(void) {
    static const char *titles[] = {NULL, "A (2000)", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L"};
    catalog c;
    memset(&c, 0, sizeof c);
    c.n_items = 13;
    c.by_id = calloc(13, sizeof *c.by_id);
    for (int i = 1; i < 13; i++) {
        c.by_id[i].id = i;
        c.by_id[i].title = strdup(titles[i]);
        c.count++;
    }
    return c;
}

/* TINY with key's line replaced by `line` (newly allocated). */
static char *with_line(const char *key, const char *line) {
    const char *at = strstr(TINY, key), *end = strchr(at, '\n') + 1;
    size_t n = strlen(TINY) + strlen(line) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s\n%s", (int)(at - TINY), TINY, line, end);
    return s;
}

static void test_flags(void) {
    prompt_templates t;
    templates_parse(&t, TINY, strlen(TINY), "tiny");
    CHECK("flags: pointwise always rated; pairwise rated by {history}; listwise liked/disliked",
          t.rated[TASK_POINTWISE] && t.rated[TASK_PAIRWISE] && !t.rated[TASK_LISTWISE]);
    templates_free(&t);
    char *s = with_line("listwise.history", "listwise.history = {{history}} {history}");
    templates_parse(&t, s, strlen(s), "tiny2");
    CHECK("flags: listwise rated by {history} ({{history}} is literal text)", t.rated[TASK_LISTWISE]);
    templates_free(&t);
    free(s);
    s = with_line("pairwise.history", "pairwise.history = {{history}} {liked}");
    templates_parse(&t, s, strlen(s), "tiny3");
    CHECK("flags: a literal {{history}} beside {liked} is no rated history", !t.rated[TASK_PAIRWISE]);
    templates_free(&t);
    free(s);

    const char *root = getenv("ITREK_ROOT");
    char path[4096];
    snprintf(path, sizeof path, "%s/data/prompts/recranker.tmpl", root ? root : ".");
    if (access(path, R_OK) == 0) {
        templates_load(&t, path);
        CHECK("flags: recranker.tmpl: pairwise and listwise show liked/disliked",
              t.rated[TASK_POINTWISE] && !t.rated[TASK_PAIRWISE] && !t.rated[TASK_LISTWISE]);
        templates_free(&t);
    } else {
        CHECK("shipped templates found (set ITREK_ROOT)", 0);
    }
    snprintf(path, sizeof path, "%s/data/prompts/rated.tmpl", root ? root : ".");
    if (access(path, R_OK) == 0) {
        templates_load(&t, path);
        CHECK("flags: rated.tmpl: every task shows the rated history",
              t.rated[TASK_POINTWISE] && t.rated[TASK_PAIRWISE] && t.rated[TASK_LISTWISE]);
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
    prompt_env env = {&t, &c, 1, 5, true, NULL, NULL, 1 << 20, 0};
    hist_entry r[3] = {{1, 5, 10, HIST_RATED}, {2, 1.5f, 20, HIST_RATED}, {3, 4, 30, HIST_RATED}};
    prompt_query q;
    memset(&q, 0, sizeof q);
    q.items[0] = 4;
    q.items[1] = 5;
    q.n_items = 2;
    q.hint_yes = true;
    q.has_response = true;
    q.answer_yes = false;
    prompt_text out;
    bool over;
    int d = prompt_build(&env, TASK_PAIRWISE, r, 3, &q, 1, &out, &over);
    const char *hist = "I:Q|IN:R[\"A (2000)\"=5;\"B\"=1.5;\"C\"=4]\n";
    char want[256];
    snprintf(want, sizeof want, "%s\"D\">\"E\"?~Y|R\n", hist);
    CHECK("rated pairwise: exact prompt (rated_item joined by rated_sep, oldest first)", strcmp(out.prompt, want) == 0);
    CHECK("rated pairwise: prefix ends after the history", out.prefix_len == strlen(hist));
    CHECK("rated pairwise: response, nothing dropped", strcmp(out.response, "N") == 0 && d == 0 && !over);
    prompt_text_free(&out);
    prompt_build(&env, TASK_PAIRWISE, r, 0, &q, 1, &out, &over);
    CHECK("rated pairwise: empty history shows `none`", strncmp(out.prompt, "I:Q|IN:R[-]\n", 12) == 0);
    prompt_text_free(&out);

    /* listwise in the same templates keeps the liked / disliked lists */
    hist_entry h[3] = {{1, 5, 10, HIST_LIKED}, {2, 1, 20, HIST_DISLIKED}, {3, 4, 30, HIST_LIKED}};
    prompt_query lq;
    memset(&lq, 0, sizeof lq);
    for (int k = 0; k < 6; k++) lq.items[k] = 4 + k;
    lq.n_items = 6;
    env.hint = false;
    prompt_build(&env, TASK_LISTWISE, h, 3, &lq, 1, &out, &over);
    CHECK("liked listwise beside rated pairwise: unchanged layout",
          strcmp(out.prompt, "I:K5of6|IN:L[\"A (2000)\",\"C\"]D[\"B\"]\nC[\"D\",\"E\",\"F\",\"G\",\"H\",\"I\"]|R\n") == 0);
    prompt_text_free(&out);
    templates_free(&t);

    /* listwise rated: the same history text as pointwise's */
    char *s = with_line("listwise.history", "listwise.history = H[{history}]\\n");
    templates_parse(&t, s, strlen(s), "tiny-listwise");
    prompt_build(&env, TASK_LISTWISE, r, 3, &lq, 1, &out, &over);
    CHECK("rated listwise: exact prompt",
          strcmp(out.prompt, "I:K5of6|IN:H[\"A (2000)\"=5;\"B\"=1.5;\"C\"=4]\nC[\"D\",\"E\",\"F\",\"G\",\"H\",\"I\"]|R\n") == 0);
    prompt_query pq;
    memset(&pq, 0, sizeof pq);
    pq.items[0] = 6;
    pq.n_items = 1;
    prompt_text po;
    prompt_build(&env, TASK_POINTWISE, r, 3, &pq, 1, &po, &over);
    const char *ph = strstr(po.prompt, "|IN:"), *lh = strstr(out.prompt, "|IN:");
    CHECK("rated listwise: history part identical to pointwise's",
          ph && lh && po.prefix_len - (size_t)(ph - po.prompt) == out.prefix_len - (size_t)(lh - out.prompt) &&
              memcmp(ph, lh, po.prefix_len - (size_t)(ph - po.prompt)) == 0);
    prompt_text_free(&po);
    prompt_text_free(&out);
    templates_free(&t);
    free(s);
    catalog_free(&c);
}

static void test_budget(void) {
    prompt_templates t;
    templates_parse(&t, TINY, strlen(TINY), "tiny");
    catalog c = make_catalog();
    prompt_env env = {&t, &c, 1, 5, true, NULL, NULL, 1 << 20, 0};
    hist_entry h[10];
    for (int k = 0; k < 10; k++) h[k] = (hist_entry){1 + k, (float)(1 + k % 5), 100 + k, HIST_RATED}; /* oldest first */
    prompt_query q;
    memset(&q, 0, sizeof q);
    q.items[0] = 11;
    q.items[1] = 12;
    q.n_items = 2;
    prompt_text full, cut;
    bool over;
    prompt_build(&env, TASK_PAIRWISE, h, 10, &q, 1, &full, &over);
    env.reserve = 7;
    env.context = full.tokens + 7 - 5; /* 5 tokens too many */
    int d = prompt_build(&env, TASK_PAIRWISE, h, 10, &q, 1, &cut, &over);
    CHECK("rated budget: oldest entries dropped, the rest fits", d > 0 && !over && cut.tokens + env.reserve <= env.context);
    CHECK("rated budget: the newest entry stays, the oldest goes", strstr(cut.prompt, "\"J\"=5") && !strstr(cut.prompt, "\"A (2000)\""));
    prompt_text_free(&cut);
    env.context = 5;
    d = prompt_build(&env, TASK_PAIRWISE, h, 10, &q, 1, &cut, &over);
    CHECK("rated budget: over budget even without history", over && d == 10 && strstr(cut.prompt, "R[-]") != NULL);
    prompt_text_free(&cut);
    prompt_text_free(&full);
    templates_free(&t);
    catalog_free(&c);
}

static int count_llama(void *ctx, const char *s, size_t n) {
    (void)n;
    return tok_encode(ctx, s, 1, 0, NULL, 0);
}

static void test_token_boundary(void) {
    const char *shared = getenv("SHARED"), *root = getenv("ITREK_ROOT");
    char tp[4096], mp[4096];
    snprintf(tp, sizeof tp, "%s/models/llama2-tokenizer/tokenizer.model", shared ? shared : "../shared");
    snprintf(mp, sizeof mp, "%s/data/prompts/rated.tmpl", root ? root : ".");
    if (access(tp, R_OK) != 0 || access(mp, R_OK) != 0) {
        printf("PASS rated.tmpl token boundary: skipped (no LLaMA-2 tokenizer or templates)\n");
        return;
    }
    char err[256];
    llm_tokenizer *tok = tok_load(tp, err, sizeof err);
    CHECK("rated.tmpl token boundary: tokenizer loads", tok != NULL);
    if (!tok) return;
    prompt_templates t;
    templates_load(&t, mp);
    catalog c = make_catalog();
    free(c.by_id[1].title);
    c.by_id[1].title = strdup("Usual Suspects, The (1995)");
    free(c.by_id[2].title);
    c.by_id[2].title = strdup("Á köldum klaka (Cold Fever) (1994)");
    prompt_env env = {&t, &c, 1, 5, true, count_llama, tok, 1024, 128};
    hist_entry hr[4] = {{1, 5, 1, HIST_RATED}, {2, 1, 2, HIST_RATED}, {3, 4, 3, HIST_RATED}, {9, 2, 4, HIST_RATED}};
    int ok = 1, ids[4096], pids[4096];
    for (int task = 0; task < TASK_COUNT; task++) {
        prompt_query q;
        memset(&q, 0, sizeof q);
        q.n_items = task == TASK_POINTWISE ? 1 : task == TASK_PAIRWISE ? 2 : 6;
        for (int k = 0; k < q.n_items; k++) q.items[k] = 4 + k;
        q.hint_score = 3.7;
        q.n_hint_top = 5;
        for (int k = 0; k < 5; k++) q.hint_top[k] = 5 + k;
        prompt_text out;
        bool over;
        prompt_build(&env, (prompt_task)task, hr, 4, &q, 1, &out, &over);
        ok &= strstr(out.prompt, "User's historical movie ratings: \"Usual Suspects, The (1995)\": 5; ") != NULL;
        int n = tok_encode(tok, out.prompt, 1, 0, ids, 4096);
        char *prefix = strndup(out.prompt, out.prefix_len);
        int np = tok_encode(tok, prefix, 1, 0, pids, 4096);
        ok &= n == out.tokens && np < n && memcmp(ids, pids, sizeof *ids * (size_t)np) == 0;
        free(prefix);
        prompt_text_free(&out);
    }
    CHECK("rated.tmpl token boundary: the rated history in all 3 tasks; prefix tokens begin the prompt's", ok);
    templates_free(&t);
    catalog_free(&c);
    tok_free(tok);
}

int main(void) {
    test_flags();
    test_layout();
    test_budget();
    test_token_boundary();
    return 0;
}
