/* prompt.c - the text of the prompts (see prompt.h, docs/prompts.md): item titles, the history,
 * query, hint, instruction and response parts rendered from the templates (rec/template.c), the
 * wrapped prompt, token counts, and dropping the oldest history until the prompts fit the
 * context. Which users, items and answers the prompts are about is rec/promptset.c's concern. */
#include "rec/prompt.h"

#include "io/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void render(sbuf *b, const char *tmpl, const char *const *kv, int nkv) {
    template_render_to(b, tmpl, kv, nkv, NULL, NULL);
}

int prompt_estimate_tokens(const char *text, size_t n) {
    (void)text;
    return 1 + (int)ceil((double)n / PROMPT_BYTES_PER_TOKEN);
}

const char *prompt_title(const catalog *cat, int32_t item) {
    if (item < 0 || item >= cat->n_items || !cat->by_id[item].title) die("item %d has no title in the catalogue", item);
    return cat->by_id[item].title;
}

char *prompt_item_text(const prompt_templates *t, const char *title) {
    sbuf b = {0};
    const char *kv[] = {"title", title};
    render(&b, t->text[T_ITEM], kv, 1);
    return sb_take(&b);
}

char *prompt_rated_suffix(const prompt_templates *t, const char *rating) {
    const char *tmpl = t->text[T_RATED_ITEM];
    if (strncmp(tmpl, "{item}", 6) != 0) return NULL;
    sbuf b = {0};
    const char *kv[] = {"item", "", "rating", rating};
    render(&b, tmpl + 6, kv, 2);
    return sb_take(&b);
}

static void add_item(sbuf *b, const prompt_env *env, int32_t item) {
    const char *kv[] = {"title", prompt_title(env->cat, item)};
    render(b, env->t->text[T_ITEM], kv, 1);
}

void prompt_format_rating(char *buf, size_t n, double r) {
    if (r == floor(r) && fabs(r) < 1e9) snprintf(buf, n, "%d", (int)r);
    else snprintf(buf, n, "%g", r);
}

/* A list of items joined by sep (or the `none` text when empty). */
static void item_list(sbuf *b, const prompt_env *env, const int32_t *items, int n, const char *sep) {
    if (n == 0) { sb_str(b, env->t->text[T_NONE]); return; }
    for (int k = 0; k < n; k++) {
        if (k) sb_str(b, sep);
        add_item(b, env, items[k]);
    }
}

/* The numbers the templates offer, as text: {min} {max} (the rating scale), and for a query of
 * n_items items {k} (the answers asked for) and {n} (the candidates shown). */
typedef struct { char min[16], max[16], k[16], n[16]; } numbers;

static numbers numbers_of(const prompt_env *env, int n_items) {
    numbers s;
    snprintf(s.min, sizeof s.min, "%d", env->scale_min);
    snprintf(s.max, sizeof s.max, "%d", env->scale_max);
    snprintf(s.k, sizeof s.k, "%d", RTASK_LIST_TOP < n_items ? RTASK_LIST_TOP : n_items);
    snprintf(s.n, sizeof s.n, "%d", n_items);
    return s;
}

/* The task's history template with the entries h[0..n): the rated list (pointwise, and the
 * tasks whose template shows {history}) or the liked and disliked lists. */
static void history_part(sbuf *b, const prompt_env *env, prompt_task task, const hist_entry *h, int n) {
    const prompt_templates *t = env->t;
    numbers num = numbers_of(env, 0);
    sbuf x = {0}, y = {0};
    template_key key = task == RTASK_POINTWISE ? T_POINT_HIST : task == RTASK_PAIRWISE ? T_PAIR_HIST : T_LIST_HIST;
    if (task == RTASK_POINTWISE || t->rated[task]) {
        int shown = 0;
        for (int k = 0; k < n; k++) {
            if (h[k].kind != HIST_RATED) continue;
            if (shown++) sb_str(&x, t->text[T_RATED_SEP]);
            sbuf it = {0};
            add_item(&it, env, h[k].item);
            char r[32];
            prompt_format_rating(r, sizeof r, h[k].rating);
            const char *kv[] = {"item", it.p, "rating", r};
            render(&x, t->text[T_RATED_ITEM], kv, 2);
            free(it.p);
        }
        if (!shown) sb_str(&x, t->text[T_NONE]);
        const char *kv[] = {"history", x.p, "min", num.min, "max", num.max};
        render(b, t->text[key], kv, 3);
    } else {
        int32_t *liked = xmalloc(sizeof *liked * (size_t)(n + 1)), *dis = xmalloc(sizeof *dis * (size_t)(n + 1));
        int nl = 0, nd = 0;
        for (int k = 0; k < n; k++) {
            if (h[k].kind == HIST_LIKED) liked[nl++] = h[k].item;
            else if (h[k].kind == HIST_DISLIKED) dis[nd++] = h[k].item;
        }
        item_list(&x, env, liked, nl, t->text[T_LIST_SEP]);
        item_list(&y, env, dis, nd, t->text[T_LIST_SEP]);
        sb_grow(&x, 0);
        sb_grow(&y, 0);
        const char *kv[] = {"liked", x.p, "disliked", y.p};
        render(b, t->text[key], kv, 2);
        free(liked);
        free(dis);
    }
    free(x.p);
    free(y.p);
}

/* The query part and hint of one query (appended to b). */
static void query_part(sbuf *b, const prompt_env *env, prompt_task task, const prompt_query *q) {
    const prompt_templates *t = env->t;
    numbers num = numbers_of(env, q->n_items);
    sbuf x = {0}, y = {0};
    if (task == RTASK_POINTWISE) {
        add_item(&x, env, q->items[0]);
        const char *kv[] = {"target", x.p, "min", num.min, "max", num.max};
        render(b, t->text[T_POINT_QUERY], kv, 3);
        if (env->hint) {
            double s = q->hint_score;
            /* RecRanker's matrix shows 0 for an unrated item: written as it is */
            if (!env->leaky && s < env->scale_min) s = env->scale_min;
            if (!env->leaky && s > env->scale_max) s = env->scale_max;
            char hs[32];
            snprintf(hs, sizeof hs, "%.1f", s);
            const char *kh[] = {"hint", hs, "min", num.min, "max", num.max};
            render(b, t->text[T_POINT_HINT], kh, 3);
        }
    } else if (task == RTASK_PAIRWISE) {
        add_item(&x, env, q->items[0]);
        add_item(&y, env, q->items[1]);
        const char *kv[] = {"first", x.p, "second", y.p};
        render(b, t->text[T_PAIR_QUERY], kv, 2);
        if (env->hint) {
            const char *kh[] = {"hint", t->text[q->hint_yes ? T_PAIR_YES : T_PAIR_NO]};
            render(b, t->text[T_PAIR_HINT], kh, 1);
        }
    } else {
        item_list(&x, env, q->items, q->n_items, t->text[T_LIST_SEP]);
        sb_grow(&x, 0);
        const char *kv[] = {"candidates", x.p, "k", num.k, "n", num.n};
        render(b, t->text[T_LIST_QUERY], kv, 3);
        if (env->hint) {
            item_list(&y, env, q->hint_top, q->n_hint_top, t->text[T_LIST_SEP]);
            sb_grow(&y, 0);
            const char *kh[] = {"hint", y.p, "k", num.k};
            render(b, t->text[T_LIST_HINT], kh, 2);
        }
    }
    free(x.p);
    free(y.p);
}

static char *response_text(const prompt_env *env, prompt_task task, const prompt_query *q) {
    const prompt_templates *t = env->t;
    sbuf b = {0}, x = {0};
    if (task == RTASK_POINTWISE) {
        char r[16];
        snprintf(r, sizeof r, "%d", q->rating);
        const char *kv[] = {"rating", r};
        render(&b, t->text[T_POINT_RESP], kv, 1);
    } else if (task == RTASK_PAIRWISE) {
        const char *kv[] = {"answer", t->text[q->answer_yes ? T_PAIR_YES : T_PAIR_NO]};
        render(&b, t->text[T_PAIR_RESP], kv, 1);
    } else {
        item_list(&x, env, q->answer, q->n_answer, t->text[T_ANSWER_SEP]);
        sb_grow(&x, 0);
        const char *kv[] = {"answer", x.p};
        render(&b, t->text[T_LIST_RESP], kv, 1);
    }
    free(x.p);
    sb_grow(&b, 0);
    return sb_take(&b);
}

static char *instruction_text(const prompt_env *env, prompt_task task, const prompt_query *q) {
    const prompt_templates *t = env->t;
    sbuf b = {0};
    numbers num = numbers_of(env, q->n_items);
    /* the listwise instruction may show the candidates, so that the history comes last and
     * the answer follows it (data/prompts/rated-last.tmpl) */
    sbuf c = {0};
    if (task == RTASK_LISTWISE) item_list(&c, env, q->items, q->n_items, t->text[T_LIST_SEP]);
    sb_grow(&c, 0);
    const char *kv[] = {"min", num.min, "max", num.max, "k", num.k, "n", num.n, "candidates", c.p};
    render(&b, t->text[task == RTASK_POINTWISE ? T_POINT_INSTR : task == RTASK_PAIRWISE ? T_PAIR_INSTR : T_LIST_INSTR], kv, 5);
    sb_grow(&b, 0);
    free(c.p);
    return sb_take(&b);
}

static int count_tokens(const prompt_env *env, const char *s, size_t n) {
    return env->count ? env->count(env->count_ctx, s, n) : prompt_estimate_tokens(s, n);
}

/* Builds the prompts with hist[drop..n) (only query `only`, or all when only < 0) and returns
 * the largest need; *worst_k receives the index of the query with that need. */
static int build_all(const prompt_env *env, prompt_task task, const hist_entry *hist, int n_hist, int drop,
                     const prompt_query *q, int nq, const int *resp_tokens, prompt_text *out, int only, int *worst_k) {
    sbuf hp = {0};
    history_part(&hp, env, task, hist + drop, n_hist - drop);
    sb_grow(&hp, 0);
    int worst = 0;
    if (worst_k) *worst_k = 0;
    for (int k = only < 0 ? 0 : only; k < (only < 0 ? nq : only + 1); k++) {
        char *instr = instruction_text(env, task, &q[k]);
        sbuf input = {0};
        sb_add(&input, hp.p, hp.n);
        query_part(&input, env, task, &q[k]);
        sb_grow(&input, 0);
        sbuf b = {0};
        size_t mark = 0;
        const char *kv[] = {"instruction", instr, "input", input.p};
        template_render_to(&b, env->t->text[T_WRAPPER], kv, 2, "input", &mark);
        sb_grow(&b, 0);
        free(out[k].prompt);
        out[k].prefix_len = mark + hp.n;
        out[k].prompt = sb_take(&b);
        out[k].tokens = count_tokens(env, out[k].prompt, strlen(out[k].prompt));
        int r = resp_tokens[k] > env->reserve ? resp_tokens[k] : env->reserve;
        out[k].need = out[k].tokens + r;
        if (out[k].need > worst) {
            worst = out[k].need;
            if (worst_k) *worst_k = k;
        }
        free(instr);
        free(input.p);
    }
    free(hp.p);
    return worst;
}

int prompt_build(const prompt_env *env, prompt_task task, const hist_entry *hist, int n_hist, const prompt_query *q,
                 int nq, prompt_text *out, bool *overlong) {
    *overlong = false;
    int *resp_tokens = xcalloc((size_t)(nq > 0 ? nq : 1), sizeof *resp_tokens);
    for (int k = 0; k < nq; k++) {
        memset(&out[k], 0, sizeof out[k]);
        if (q[k].has_response) {
            out[k].response = response_text(env, task, &q[k]);
            /* BOS stands in for the EOS that follows the response */
            resp_tokens[k] = count_tokens(env, out[k].response, strlen(out[k].response));
        }
    }
    int drop = 0, w = 0;
    int need = build_all(env, task, hist, n_hist, 0, q, nq, resp_tokens, out, -1, &w);
    if (need > env->context) {
        /* Guess the drop from the history's tokens per byte and each entry's bytes, then step to
         * the smallest drop that fits the query that needs the most (the queries differ only
         * after the shared history), then check them all and drop more if one still does not. */
        sbuf b = {0};
        history_part(&b, env, task, hist, n_hist);
        double per_byte = b.n ? (double)(count_tokens(env, b.p, b.n) - 1) / (double)b.n : 0;
        size_t base = 0;
        b.n = 0;
        history_part(&b, env, task, hist, 0);
        base = b.n;
        int guess = 0;
        double freed = 0;
        while (guess < n_hist && freed < need - env->context) {
            b.n = 0;
            history_part(&b, env, task, hist + guess, 1);
            freed += (double)(b.n > base ? b.n - base : 1) * per_byte;
            guess++;
        }
        free(b.p);
        if (guess < 1) guess = n_hist > 0 ? 1 : 0;
        drop = guess;
        if (build_all(env, task, hist, n_hist, drop, q, nq, resp_tokens, out, w, NULL) <= env->context) {
            while (drop > 1 && build_all(env, task, hist, n_hist, drop - 1, q, nq, resp_tokens, out, w, NULL) <= env->context)
                drop--;
        } else {
            while (drop < n_hist && build_all(env, task, hist, n_hist, drop + 1, q, nq, resp_tokens, out, w, NULL) > env->context)
                drop++;
            if (drop < n_hist) drop++;
        }
        while (build_all(env, task, hist, n_hist, drop, q, nq, resp_tokens, out, -1, NULL) > env->context) {
            if (drop >= n_hist) { *overlong = true; break; }
            drop++;
        }
    }
    free(resp_tokens);
    return drop;
}

void prompt_text_free(prompt_text *p) {
    free(p->prompt);
    free(p->response);
    memset(p, 0, sizeof *p);
}
