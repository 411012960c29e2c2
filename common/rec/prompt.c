/* prompt.c - template files and prompt building (see prompt.h, docs/prompts.md). */
#include "rec/prompt.h"

#include "io/err.h"
#include "io/parallel.h"
#include "io/rng.h"
#include "io/stream.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *TASK_NAMES[TASK_COUNT] = {"pointwise", "pairwise", "listwise"};

const char *task_name(prompt_task t) { return (unsigned)t < TASK_COUNT ? TASK_NAMES[t] : "?"; }

int task_from_name(const char *s, size_t n) {
    for (int i = 0; i < TASK_COUNT; i++)
        if (strlen(TASK_NAMES[i]) == n && memcmp(TASK_NAMES[i], s, n) == 0) return i;
    return -1;
}

/* ---------- string builder ---------- */

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_grow(sbuf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}
static void sb_add(sbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static char *sb_take(sbuf *b) {
    sb_grow(b, 0);
    char *p = b->p;
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

/* ---------- templates ---------- */

typedef struct {
    const char *name;
    const char *placeholders; /* space separated */
} key_spec;

static const key_spec KEYS[T_COUNT] = {
    [T_WRAPPER] = {"wrapper", "instruction input"},
    [T_ITEM] = {"item", "title"},
    [T_RATED_ITEM] = {"rated_item", "item rating"},
    [T_RATED_SEP] = {"rated_sep", ""},
    [T_LIST_SEP] = {"list_sep", ""},
    [T_NONE] = {"none", ""},
    [T_ANSWER_SEP] = {"answer_sep", ""},
    [T_POINT_INSTR] = {"pointwise.instruction", "min max"},
    [T_POINT_HIST] = {"pointwise.history", "history min max"},
    [T_POINT_QUERY] = {"pointwise.query", "target min max"},
    [T_POINT_HINT] = {"pointwise.hint", "hint min max"},
    [T_POINT_RESP] = {"pointwise.response", "rating"},
    [T_PAIR_INSTR] = {"pairwise.instruction", ""},
    [T_PAIR_HIST] = {"pairwise.history", "history liked disliked"},
    [T_PAIR_QUERY] = {"pairwise.query", "first second"},
    [T_PAIR_HINT] = {"pairwise.hint", "hint"},
    [T_PAIR_YES] = {"pairwise.yes", ""},
    [T_PAIR_NO] = {"pairwise.no", ""},
    [T_PAIR_RESP] = {"pairwise.response", "answer"},
    [T_LIST_INSTR] = {"listwise.instruction", "k n candidates"},
    [T_LIST_HIST] = {"listwise.history", "history liked disliked"},
    [T_LIST_QUERY] = {"listwise.query", "candidates k n"},
    [T_LIST_HINT] = {"listwise.hint", "hint k"},
    [T_LIST_RESP] = {"listwise.response", "answer"},
};

const char *template_key_name(template_key k) { return (unsigned)k < T_COUNT ? KEYS[k].name : "?"; }

static bool offers(const char *list, const char *name, size_t n) {
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ' ');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0) return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* Scan template s: literal text goes to b (braces unescaped); each placeholder is looked up in
 * kv (pairs name, value; nkv pairs). With b == NULL only validates against `allowed`; returns an
 * error message or NULL. *mark receives the output offset where placeholder mark_name starts. */
static const char *scan(const char *s, sbuf *b, const char *const *kv, int nkv, const char *allowed, const char *mark_name,
                        size_t *mark, char *err, size_t errlen) {
    for (const char *p = s; *p;) {
        if (p[0] == '{' && p[1] == '{') { if (b) sb_add(b, "{", 1); p += 2; continue; }
        if (p[0] == '}' && p[1] == '}') { if (b) sb_add(b, "}", 1); p += 2; continue; }
        if (*p == '}') { snprintf(err, errlen, "a lone '}' (write '}}' for a literal brace)"); return err; }
        if (*p == '{') {
            const char *e = strchr(p + 1, '}');
            if (!e) { snprintf(err, errlen, "'{' without its '}' (write '{{' for a literal brace)"); return err; }
            const char *name = p + 1;
            size_t n = (size_t)(e - name);
            if (allowed) {
                if (!offers(allowed, name, n)) {
                    snprintf(err, errlen, "placeholder {%.*s} is not offered here (offered: %s)", (int)(n > 40 ? 40 : n), name,
                             *allowed ? allowed : "none");
                    return err;
                }
            }
            if (b) {
                if (mark_name && strlen(mark_name) == n && memcmp(mark_name, name, n) == 0 && mark) *mark = b->n;
                bool found = false;
                for (int k = 0; k < nkv; k++)
                    if (strlen(kv[2 * k]) == n && memcmp(kv[2 * k], name, n) == 0) {
                        sb_str(b, kv[2 * k + 1]);
                        found = true;
                        break;
                    }
                if (!found) die("template placeholder {%.*s} has no value (internal error)", (int)n, name);
            }
            p = e + 1;
            continue;
        }
        const char *q = p;
        while (*q && *q != '{' && *q != '}') q++;
        if (b) sb_add(b, p, (size_t)(q - p));
        p = q;
    }
    return NULL;
}

static void render(sbuf *b, const char *tmpl, const char *const *kv, int nkv) {
    char err[16];
    scan(tmpl, b, kv, nkv, NULL, NULL, NULL, err, sizeof err);
}

/* Occurrences of placeholder {name} in s (braces escaped as {{ }} skipped); *first gets the
 * byte offset of the first one (-1 when none). */
static int count_placeholder(const char *s, const char *name, long *first) {
    int c = 0;
    size_t n = strlen(name);
    if (first) *first = -1;
    for (const char *p = s; *p;) {
        if ((p[0] == '{' && p[1] == '{') || (p[0] == '}' && p[1] == '}')) { p += 2; continue; }
        if (*p == '{') {
            const char *e = strchr(p + 1, '}');
            if (!e) break;
            if ((size_t)(e - p - 1) == n && memcmp(p + 1, name, n) == 0) {
                if (first && *first < 0) *first = (long)(p - s);
                c++;
            }
            p = e + 1;
            continue;
        }
        p++;
    }
    return c;
}

void templates_parse(prompt_templates *t, const char *text, size_t n, const char *name) {
    memset(t, 0, sizeof *t);
    t->source = xstrdup(name);
    long line_no = 0;
    size_t pos = 0;
    while (pos < n) {
        /* one physical line */
        size_t e = pos;
        while (e < n && text[e] != '\n') e++;
        line_no++;
        long key_line = line_no;
        const char *l = text + pos;
        size_t len = e - pos;
        pos = e < n ? e + 1 : e;
        if (len && l[len - 1] == '\r') len--;
        size_t i = 0;
        while (i < len && (l[i] == ' ' || l[i] == '\t')) i++;
        if (i == len || l[i] == '#') continue;
        for (size_t k = 0; k < len; k++)
            if (l[k] == 0) die_at(name, key_line, "a NUL byte in the template");
        /* key */
        size_t ks = i;
        while (i < len && l[i] != '=' && l[i] != ' ' && l[i] != '\t') i++;
        size_t klen = i - ks;
        while (i < len && (l[i] == ' ' || l[i] == '\t')) i++;
        if (i == len || l[i] != '=') die_at(name, key_line, "expected 'key = value'");
        i++;
        int key = -1;
        for (int k = 0; k < T_COUNT; k++)
            if (strlen(KEYS[k].name) == klen && memcmp(KEYS[k].name, l + ks, klen) == 0) key = k;
        if (key < 0) die_at(name, key_line, "unknown key '%.*s'", (int)(klen > 60 ? 60 : klen), l + ks);
        if (t->text[key]) die_at(name, key_line, "key '%s' given twice", KEYS[key].name);
        /* value, with escapes and continuation lines */
        sbuf v = {0};
        for (;;) {
            while (i < len && (l[i] == ' ' || l[i] == '\t')) i++;
            size_t end = len;
            while (end > i && (l[end - 1] == ' ' || l[end - 1] == '\t')) end--;
            bool cont = false;
            for (size_t k = i; k < end; k++) {
                if (l[k] != '\\') {
                    if ((unsigned char)l[k] < 0x20 && l[k] != '\t') die_at(name, line_no, "a control character in a value");
                    sb_add(&v, l + k, 1);
                    continue;
                }
                if (k + 1 == end) { cont = true; break; }
                char c = l[++k];
                switch (c) {
                case 'n': sb_add(&v, "\n", 1); break;
                case 't': sb_add(&v, "\t", 1); break;
                case 's': sb_add(&v, " ", 1); break;
                case '\\': sb_add(&v, "\\", 1); break;
                default: die_at(name, line_no, "unknown escape '\\%c' (use \\n \\t \\s \\\\)", c);
                }
            }
            if (!cont) break;
            if (pos >= n) die_at(name, line_no, "a continuation backslash on the last line");
            e = pos;
            while (e < n && text[e] != '\n') e++;
            line_no++;
            l = text + pos;
            len = e - pos;
            pos = e < n ? e + 1 : e;
            if (len && l[len - 1] == '\r') len--;
            for (size_t k = 0; k < len; k++)
                if (l[k] == 0) die_at(name, line_no, "a NUL byte in the template");
            i = 0;
        }
        sb_grow(&v, 0);
        t->text[key] = sb_take(&v);
        char err[160];
        if (scan(t->text[key], NULL, NULL, 0, KEYS[key].placeholders, NULL, NULL, err, sizeof err))
            die_at(name, key_line, "key '%s': %s", KEYS[key].name, err);
        if (key == T_PAIR_HIST || key == T_LIST_HIST) {
            /* the rated history ({history}) or the liked / disliked lists, not both */
            bool rated = count_placeholder(t->text[key], "history", NULL) > 0;
            bool lists = count_placeholder(t->text[key], "liked", NULL) + count_placeholder(t->text[key], "disliked", NULL) > 0;
            if (rated && lists)
                die_at(name, key_line, "key '%s': {history} (the rated history) cannot be combined with {liked} or {disliked}",
                       KEYS[key].name);
            t->rated[key == T_PAIR_HIST ? TASK_PAIRWISE : TASK_LISTWISE] = rated;
        }
    }
    for (int k = 0; k < T_COUNT; k++)
        if (!t->text[k]) die_at(name, -1, "key '%s' is missing", KEYS[k].name);
    t->rated[TASK_POINTWISE] = true;
    const char *w = t->text[T_WRAPPER];
    long at_instr, at_input;
    if (count_placeholder(w, "instruction", &at_instr) != 1 || count_placeholder(w, "input", &at_input) != 1 ||
        at_instr > at_input)
        die_at(name, -1, "key 'wrapper': needs {instruction} then {input}, once each");
    if (count_placeholder(t->text[T_ITEM], "title", NULL) != 1) die_at(name, -1, "key 'item': needs {title} once");
}

void templates_load(prompt_templates *t, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die_at(path, -1, "cannot open the templates: %m");
    sbuf b = {0};
    char buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) sb_add(&b, buf, n);
    if (ferror(f)) die_at(path, -1, "read error");
    fclose(f);
    templates_parse(t, b.p ? b.p : "", b.n, path);
    free(b.p);
}

void templates_free(prompt_templates *t) {
    for (int k = 0; k < T_COUNT; k++) free(t->text[k]);
    free(t->source);
    memset(t, 0, sizeof *t);
}

/* ---------- building ---------- */

int prompt_estimate_tokens(const char *text, size_t n) {
    (void)text;
    return 1 + (int)ceil((double)n / PROMPT_BYTES_PER_TOKEN);
}

const char *prompt_title(const catalog *cat, int32_t item) {
    if (item < 0 || item >= cat->n_items || !cat->by_id[item].title) die("item %d has no title in the catalogue", item);
    return cat->by_id[item].title;
}

char *template_render(const char *tmpl, const char *const *kv, int nkv) {
    sbuf b = {0};
    render(&b, tmpl, kv, nkv);
    return sb_take(&b);
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

/* The task's history template with the entries h[0..n): the rated list (pointwise, and the
 * tasks whose template shows {history}) or the liked and disliked lists. */
static void history_part(sbuf *b, const prompt_env *env, prompt_task task, const hist_entry *h, int n) {
    const prompt_templates *t = env->t;
    char smin[16], smax[16];
    snprintf(smin, sizeof smin, "%d", env->scale_min);
    snprintf(smax, sizeof smax, "%d", env->scale_max);
    sbuf x = {0}, y = {0};
    template_key key = task == TASK_POINTWISE ? T_POINT_HIST : task == TASK_PAIRWISE ? T_PAIR_HIST : T_LIST_HIST;
    if (task == TASK_POINTWISE || t->rated[task]) {
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
        const char *kv[] = {"history", x.p, "min", smin, "max", smax};
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
    char smin[16], smax[16], sk[16], sn[16];
    snprintf(smin, sizeof smin, "%d", env->scale_min);
    snprintf(smax, sizeof smax, "%d", env->scale_max);
    sbuf x = {0}, y = {0};
    if (task == TASK_POINTWISE) {
        add_item(&x, env, q->items[0]);
        const char *kv[] = {"target", x.p, "min", smin, "max", smax};
        render(b, t->text[T_POINT_QUERY], kv, 3);
        if (env->hint) {
            double s = q->hint_score;
            /* RecRanker's matrix shows 0 for an unrated item: written as it is */
            if (!env->leaky && s < env->scale_min) s = env->scale_min;
            if (!env->leaky && s > env->scale_max) s = env->scale_max;
            char hs[32];
            snprintf(hs, sizeof hs, "%.1f", s);
            const char *kh[] = {"hint", hs, "min", smin, "max", smax};
            render(b, t->text[T_POINT_HINT], kh, 3);
        }
    } else if (task == TASK_PAIRWISE) {
        add_item(&x, env, q->items[0]);
        add_item(&y, env, q->items[1]);
        const char *kv[] = {"first", x.p, "second", y.p};
        render(b, t->text[T_PAIR_QUERY], kv, 2);
        if (env->hint) {
            const char *kh[] = {"hint", t->text[q->hint_yes ? T_PAIR_YES : T_PAIR_NO]};
            render(b, t->text[T_PAIR_HINT], kh, 1);
        }
    } else {
        snprintf(sk, sizeof sk, "%d", PROMPT_TOP < q->n_items ? PROMPT_TOP : q->n_items);
        snprintf(sn, sizeof sn, "%d", q->n_items);
        item_list(&x, env, q->items, q->n_items, t->text[T_LIST_SEP]);
        sb_grow(&x, 0);
        const char *kv[] = {"candidates", x.p, "k", sk, "n", sn};
        render(b, t->text[T_LIST_QUERY], kv, 3);
        if (env->hint) {
            item_list(&y, env, q->hint_top, q->n_hint_top, t->text[T_LIST_SEP]);
            sb_grow(&y, 0);
            const char *kh[] = {"hint", y.p, "k", sk};
            render(b, t->text[T_LIST_HINT], kh, 2);
        }
    }
    free(x.p);
    free(y.p);
}

static char *response_text(const prompt_env *env, prompt_task task, const prompt_query *q) {
    const prompt_templates *t = env->t;
    sbuf b = {0}, x = {0};
    if (task == TASK_POINTWISE) {
        char r[16];
        snprintf(r, sizeof r, "%d", q->rating);
        const char *kv[] = {"rating", r};
        render(&b, t->text[T_POINT_RESP], kv, 1);
    } else if (task == TASK_PAIRWISE) {
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
    char smin[16], smax[16], sk[16], sn[16];
    snprintf(smin, sizeof smin, "%d", env->scale_min);
    snprintf(smax, sizeof smax, "%d", env->scale_max);
    snprintf(sk, sizeof sk, "%d", PROMPT_TOP < q->n_items ? PROMPT_TOP : q->n_items);
    snprintf(sn, sizeof sn, "%d", q->n_items);
    /* the listwise instruction may show the candidates, so that the history comes last and
     * the answer follows it (data/prompts/rated-last.tmpl) */
    sbuf c = {0};
    if (task == TASK_LISTWISE) item_list(&c, env, q->items, q->n_items, t->text[T_LIST_SEP]);
    sb_grow(&c, 0);
    const char *kv[] = {"min", smin, "max", smax, "k", sk, "n", sn, "candidates", c.p};
    render(&b, t->text[task == TASK_POINTWISE ? T_POINT_INSTR : task == TASK_PAIRWISE ? T_PAIR_INSTR : T_LIST_INSTR], kv, 5);
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
        char err[16];
        scan(env->t->text[T_WRAPPER], &b, kv, 2, NULL, "input", &mark, err, sizeof err);
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

void fit_line(const double *x, const double *y, size_t n, double *a, double *b) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
    if (n) { mx /= (double)n; my /= (double)n; }
    double sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; i++) {
        sxx += (x[i] - mx) * (x[i] - mx);
        sxy += (x[i] - mx) * (y[i] - my);
    }
    *b = sxx > 0 ? sxy / sxx : 0;
    *a = my - *b * mx;
}

/* ---------- candidates ---------- */

void cand_set_load(cand_set *c, const char *path) {
    memset(c, 0, sizeof *c);
    stream_reader *r = sr_open(path, "itrek.candidates", 1);
    c->source = xstrdup(sr_name(r));
    const msgpack_object *f = sr_header_param(r, "for");
    if (f && f->type == MSGPACK_OBJECT_STR && f->via.str.size < sizeof c->part)
        memcpy(c->part, f->via.str.ptr, f->via.str.size);
    const msgpack_object *nn = sr_header_param(r, "n");
    if (nn && nn->type == MSGPACK_OBJECT_POSITIVE_INTEGER) c->n = (int)nn->via.u64;
    size_t cap = 0, ocap = 0;
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        int64_t u = sr_int(r, rec, "user");
        if (u < 0 || u > 100000000) sr_fail(r, "field 'user': id %lld out of range", (long long)u);
        if ((size_t)u >= cap) {
            size_t ncap = cap ? cap : 1024;
            while (ncap <= (size_t)u) ncap *= 2;
            c->items = xrealloc(c->items, ncap * sizeof *c->items);
            c->len = xrealloc(c->len, ncap * sizeof *c->len);
            memset(c->items + cap, 0, (ncap - cap) * sizeof *c->items);
            memset(c->len + cap, 0, (ncap - cap) * sizeof *c->len);
            cap = ncap;
        }
        if (c->items[u]) sr_fail(r, "field 'user': user %lld appears twice", (long long)u);
        const msgpack_object_array *a = sr_array(r, rec, "items");
        if (a->size > PROMPT_MAX_ITEMS) sr_fail(r, "field 'items': %u candidates, at most %d supported", a->size, PROMPT_MAX_ITEMS);
        c->items[u] = xmalloc(sizeof **c->items * (a->size + 1));
        for (uint32_t k = 0; k < a->size; k++) {
            int64_t it = sr_elem_int(r, a, k, "items");
            if (it < 0 || it > 100000000) sr_fail(r, "field 'items[%u]': id %lld out of range", k, (long long)it);
            for (uint32_t j = 0; j < k; j++)
                if (c->items[u][j] == it) sr_fail(r, "field 'items[%u]': item %lld listed twice", k, (long long)it);
            c->items[u][k] = (int32_t)it;
        }
        c->len[u] = (int)a->size;
        if ((size_t)c->n_order == ocap) c->order = xrealloc(c->order, (ocap = ocap ? 2 * ocap : 1024) * sizeof *c->order);
        c->order[c->n_order++] = (int32_t)u;
        if (u + 1 > c->n_users) c->n_users = (int32_t)u + 1;
    }
    sr_close(r);
}

void cand_set_free(cand_set *c) {
    for (int32_t u = 0; u < c->n_users; u++) free(c->items[u]);
    free(c->items);
    free(c->len);
    free(c->order);
    free(c->source);
    memset(c, 0, sizeof *c);
}

/* ---------- prompt sets ---------- */

double promptset_score(const promptset *ps, int32_t user, int32_t item) {
    const mf_model *m = ps->mf;
    if (user < 0 || user >= m->n_users || item < 0 || item >= m->n_items) return 0;
    const float *p = m->P + (size_t)user * m->dim, *q = m->Q + (size_t)item * m->dim;
    double s = m->bias[item];
    for (int d = 0; d < m->dim; d++) s += (double)p[d] * q[d];
    return s;
}

double promptset_rating(const promptset *ps, int32_t user, int32_t item) {
    return ps->cal_a + ps->cal_b * promptset_score(ps, user, item);
}

double promptset_hint_rating(const promptset *ps, int32_t user, int32_t item) {
    if (ps->hints != HINTS_RECRANKER_LEAKY) return promptset_rating(ps, user, item);
    if (user < 0 || user >= ps->ia->n_users || item < 0 || item >= ps->ia->n_items) return 0;
    return ps->rating_all[(size_t)user * (size_t)ps->ia->n_items + (size_t)item];
}

/* Listwise hint: the PROMPT_TOP items of items[0..n) with the highest promptset_hint_rating,
 * ties in the given order (RecRanker sorts with Python's stable sort). */
static int hint_top_leaky(const promptset *ps, int32_t u, const int32_t *items, int n, int32_t *top) {
    int idx[PROMPT_MAX_ITEMS];
    double r[PROMPT_MAX_ITEMS];
    for (int i = 0; i < n; i++) { idx[i] = i; r[i] = promptset_hint_rating(ps, u, items[i]); }
    for (int i = 1; i < n; i++) /* insertion sort: stable, n <= PROMPT_MAX_ITEMS */
        for (int j = i; j > 0 && r[idx[j]] > r[idx[j - 1]]; j--) { int t = idx[j]; idx[j] = idx[j - 1]; idx[j - 1] = t; }
    int k = n < PROMPT_TOP ? n : PROMPT_TOP;
    for (int i = 0; i < k; i++) top[i] = items[idx[i]];
    return k;
}

typedef struct { double score; int32_t item; } scored_item;

static int cmp_scored(const void *a, const void *b) { /* score desc, then item id */
    const scored_item *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

/* Hard negatives: per user, the `hard` items of neg_pool with the best MF scores among those the
 * user never interacted with (in any part). They look like the evaluation candidates (MF's top
 * items the user has not seen), which uniform negatives do not: those are mostly obscure items
 * that any popularity signal separates from the positives. */
static void build_hard_pool(promptset *ps) {
    size_t ni = (size_t)ps->ia->n_items, H = (size_t)ps->hard;
    ps->hard_pool = xmalloc(sizeof *ps->hard_pool * ((size_t)ps->ia->n_users * H + 1));
    scored_item *sc = xmalloc(sizeof *sc * ((size_t)ps->n_neg_pool + 1));
    for (int32_t u = 0; u < ps->ia->n_users; u++) {
        size_t m = 0;
        for (int k = 0; k < ps->n_neg_pool; k++) {
            int32_t i = ps->neg_pool[k];
            if ((size_t)i < ni && ps->seen[(size_t)u * ni + i]) continue;
            sc[m++] = (scored_item){promptset_score(ps, u, i), i};
        }
        qsort(sc, m, sizeof *sc, cmp_scored);
        for (size_t k = 0; k < H; k++) ps->hard_pool[(size_t)u * H + k] = k < m ? sc[k].item : -1;
    }
    free(sc);
}

static int cmp_title(const void *a, const void *b, void *ctx) {
    const catalog *cat = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    int c = strcmp(cat->by_id[x].title, cat->by_id[y].title);
    return c ? c : (x > y) - (x < y);
}

void promptset_init(promptset *ps, bool eval, part_t part) {
    const interactions *ia = ps->ia;
    ps->eval = eval;
    ps->part = part;
    unsigned mask = PART_BIT(PART_TRAIN) | (eval && part == PART_TEST ? PART_BIT(PART_VALID) : 0);
    user_lists_build(&ps->hist, ia, mask, -INFINITY);
    user_lists_build(&ps->target_pos, ia, PART_BIT(eval ? part : PART_TEST), ia->like);
    ps->n_liked = xcalloc((size_t)ia->n_users + 1, sizeof *ps->n_liked);
    size_t ni = (size_t)ia->n_items;
    ps->seen = xcalloc((size_t)ia->n_users * ni + 1, 1);
    ps->rating_all = ps->hints == HINTS_RECRANKER_LEAKY ? xcalloc((size_t)ia->n_users * ni + 1, sizeof *ps->rating_all) : NULL;
    double *x = xmalloc(sizeof *x * (ia->n + 1)), *y = xmalloc(sizeof *y * (ia->n + 1));
    size_t nc = 0;
    for (size_t k = 0; k < ia->n; k++) {
        const interaction *v = &ia->v[k];
        ps->seen[(size_t)v->user * ni + v->item] = 1;
        if (ps->rating_all && v->part != PART_DROP) ps->rating_all[(size_t)v->user * ni + v->item] = (float)v->rating;
        if (v->part != PART_TRAIN) continue;
        if (v->rating >= ia->like) ps->n_liked[v->user]++;
        if (v->user < ps->mf->n_users && v->item < ps->mf->n_items) {
            x[nc] = promptset_score(ps, v->user, v->item);
            y[nc] = v->rating;
            nc++;
        }
    }
    /* Items listed twice under one title (ML-100K has a few): a user who has one of them has
     * "seen" the others too, so that no training negative shows the title of a user's item. */
    int32_t nt = ps->cat->n_items < ia->n_items ? ps->cat->n_items : ia->n_items;
    int32_t *by_title = xmalloc(sizeof *by_title * (size_t)(nt + 1));
    int nb = 0;
    for (int32_t i = 0; i < nt; i++)
        if (ps->cat->by_id[i].title) by_title[nb++] = i;
    qsort_r(by_title, (size_t)nb, sizeof *by_title, cmp_title, (void *)ps->cat);
    for (int a = 0; a < nb;) {
        int b = a + 1;
        while (b < nb && strcmp(ps->cat->by_id[by_title[a]].title, ps->cat->by_id[by_title[b]].title) == 0) b++;
        if (b - a > 1)
            for (int32_t u = 0; u < ia->n_users; u++) {
                bool any = false;
                for (int k = a; k < b; k++) any |= ps->seen[(size_t)u * ni + by_title[k]];
                if (any)
                    for (int k = a; k < b; k++) ps->seen[(size_t)u * ni + by_title[k]] = 1;
            }
        a = b;
    }
    free(by_title);
    fit_line(x, y, nc, &ps->cal_a, &ps->cal_b);
    ps->cal_n = (long)nc;
    free(x);
    free(y);
    ps->neg_pool = xmalloc(sizeof *ps->neg_pool * (size_t)(ps->cat->n_items + 1));
    ps->n_neg_pool = 0;
    for (int32_t i = 0; i < ps->cat->n_items; i++)
        if (ps->cat->by_id[i].title && i < ps->mf->n_items && ps->mf->has_item[i]) ps->neg_pool[ps->n_neg_pool++] = i;
    ps->hard_pool = NULL;
    if (!eval && ps->hard > 0) build_hard_pool(ps);
}

void promptset_free(promptset *ps) {
    user_lists_free(&ps->hist);
    user_lists_free(&ps->target_pos);
    free(ps->n_liked);
    free(ps->seen);
    free(ps->neg_pool);
    free(ps->hard_pool);
    free(ps->rating_all);
    ps->rating_all = NULL;
    ps->hard_pool = NULL;
    ps->n_liked = NULL;
    ps->seen = NULL;
    ps->neg_pool = NULL;
}

/* History entries of user u (oldest first) for a task, from the user's history-part entries
 * before index `end` of ps->hist (-1: all), leaving out the items in excl[0..ne): a rated
 * history (pointwise, and pairwise/listwise when their template shows {history}): the last
 * `history` rated items; otherwise the last `history` liked and the last `max_dislikes`
 * disliked items, merged in time order. Returns the count (h has room for all). */
static int user_history(const promptset *ps, prompt_task task, int32_t u, int end, const int32_t *excl, int ne,
                        hist_entry *h) {
    const user_lists *L = &ps->hist;
    bool rated = task == TASK_POINTWISE || ps->env.t->rated[task];
    int a = L->off[u], b = end >= 0 ? end : L->off[u + 1];
    int left_r = ps->history, left_l = ps->history, left_d = ps->max_dislikes;
    int n = 0;
    for (int j = b - 1; j >= a; j--) {
        bool skip = false;
        for (int k = 0; k < ne; k++)
            if (excl[k] == L->item[j]) skip = true;
        if (skip) continue;
        uint8_t kind;
        if (rated) {
            if (left_r <= 0) break;
            left_r--;
            kind = HIST_RATED;
        } else if (L->rating[j] >= ps->ia->like) {
            if (left_l <= 0) continue;
            left_l--;
            kind = HIST_LIKED;
        } else if (L->rating[j] <= ps->dislike) {
            if (left_d <= 0) continue;
            left_d--;
            kind = HIST_DISLIKED;
        } else {
            continue;
        }
        h[n++] = (hist_entry){L->item[j], L->rating[j], L->ts[j], kind};
    }
    for (int i = 0, j = n - 1; i < j; i++, j--) { hist_entry t = h[i]; h[i] = h[j]; h[j] = t; }
    return n;
}

static void finish_record(prompt_record *rec, prompt_task task, int32_t u, const prompt_query *q, const hist_entry *h,
                          int nh, int dropped, bool overlong) {
    rec->task = task;
    rec->user = u;
    rec->n_items = q->n_items;
    memcpy(rec->items, q->items, sizeof q->items[0] * (size_t)q->n_items);
    rec->n_history = nh - dropped;
    rec->history = xmalloc(sizeof *rec->history * (size_t)(rec->n_history + 1));
    for (int k = dropped; k < nh; k++) rec->history[k - dropped] = h[k].item;
    rec->dropped = dropped;
    rec->overlong = overlong;
}

static bool in_list(const int32_t *v, int n, int32_t x) {
    for (int k = 0; k < n; k++)
        if (v[k] == x) return true;
    return false;
}

/* A random item the user has no interaction with and that is not in taken[0..nt): from the
 * user's hard pool when there is one (falling back to the catalogue when the pool runs out). */
static int32_t draw_negative(const promptset *ps, rng_t *r, int32_t u, const int32_t *taken, int nt) {
    size_t ni = (size_t)ps->ia->n_items;
    if (ps->hard_pool) {
        const int32_t *pool = ps->hard_pool + (size_t)u * (size_t)ps->hard;
        int np = 0;
        while (np < ps->hard && pool[np] >= 0) np++;
        int free_n = 0;
        for (int k = 0; k < np; k++) free_n += !in_list(taken, nt, pool[k]);
        if (free_n > 0) {
            int pick = (int)rng_below(r, (uint64_t)free_n);
            for (int k = 0; k < np; k++)
                if (!in_list(taken, nt, pool[k]) && pick-- == 0) return pool[k];
        }
    }
    for (int tries = 0; tries < 1000000; tries++) {
        int32_t i = ps->neg_pool[rng_below(r, (uint64_t)ps->n_neg_pool)];
        if ((size_t)i < ni && ps->seen[(size_t)u * ni + i]) continue;
        if (!in_list(taken, nt, i)) return i;
    }
    die("user %d: no item left to draw as a negative", u);
}

typedef struct { int32_t item; float rating; int64_t ts; double score; } ranked;

static int cmp_answer(const void *a, const void *b) { /* rating desc, then more recent, then item id */
    const ranked *x = a, *y = b;
    if (x->rating != y->rating) return x->rating > y->rating ? -1 : 1;
    if (x->ts != y->ts) return x->ts > y->ts ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}
static int cmp_score(const void *a, const void *b) { /* score desc, then item id */
    const ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

typedef struct {
    const promptset *ps;
    const int32_t *draws;
    long first_draw;
    prompt_record *out; /* TASK_COUNT slots per draw */
} train_job;

static void train_one(void *vctx, int k, int worker) {
    (void)worker;
    train_job *J = vctx;
    const promptset *ps = J->ps;
    int32_t u = J->draws[k];
    rng_t r;
    rng_init(&r, ps->seed, 0x100000000ull + (uint64_t)(J->first_draw + k));
    const user_lists *L = &ps->hist;
    int a = L->off[u], n = L->off[u + 1] - a;
    hist_entry *h = xmalloc(sizeof *h * (size_t)(n + 1));
    int32_t *liked = xmalloc(sizeof *liked * (size_t)(n + 1));
    int nl = 0;
    for (int j = a; j < a + n; j++)
        if (L->rating[j] >= ps->ia->like) liked[nl++] = j;
    for (int t = 0; t < TASK_COUNT; t++) {
        prompt_record *rec = &J->out[(size_t)k * TASK_COUNT + t];
        memset(rec, 0, sizeof *rec);
        rec->pair = -1;
        /* every task draws from the rng whether it is asked for or not, so --tasks does not
         * change the other tasks' prompts */
        prompt_query q;
        memset(&q, 0, sizeof q);
        q.has_response = true;
        int nh = 0;
        bool ok = false;
        if (t == TASK_POINTWISE) {
            if (n >= 2) {
                /* next: a target with at least one entry before it, and only those shown */
                int j = ps->next ? a + 1 + (int)rng_below(&r, (uint64_t)(n - 1)) : a + (int)rng_below(&r, (uint64_t)n);
                q.items[0] = L->item[j];
                q.n_items = 1;
                q.hint_score = promptset_hint_rating(ps, u, L->item[j]);
                q.rating = (int)lround(L->rating[j]);
                nh = ps->next ? user_history(ps, TASK_POINTWISE, u, j, NULL, 0, h)
                              : user_history(ps, TASK_POINTWISE, u, -1, &L->item[j], 1, h);
                ok = true;
            }
        } else if (t == TASK_PAIRWISE) {
            if (nl >= 2) {
                int j = ps->next ? liked[1 + rng_below(&r, (uint64_t)(nl - 1))] : liked[rng_below(&r, (uint64_t)nl)];
                int32_t pos = L->item[j], neg = draw_negative(ps, &r, u, &pos, 1);
                bool first_pos = rng_below(&r, 2) == 0;
                q.items[0] = first_pos ? pos : neg;
                q.items[1] = first_pos ? neg : pos;
                q.n_items = 2;
                q.hint_yes = promptset_score(ps, u, q.items[0]) > promptset_score(ps, u, q.items[1]);
                q.answer_yes = first_pos;
                nh = ps->next ? user_history(ps, TASK_PAIRWISE, u, j, NULL, 0, h)
                              : user_history(ps, TASK_PAIRWISE, u, -1, &pos, 1, h);
                ok = true;
            }
        } else {
            if (nl >= PROMPT_TOP + 1) {
                /* PROMPT_TOP distinct liked items (partial Fisher-Yates over the liked list) */
                ranked pos[PROMPT_TOP], all[2 * PROMPT_TOP];
                int32_t held[PROMPT_TOP];
                int cut = -1; /* next: the liked items from liked[first] on, history before it */
                if (ps->next) {
                    int first = 1 + (int)rng_below(&r, (uint64_t)(nl - PROMPT_TOP));
                    cut = liked[first];
                    for (int s = 0; s < PROMPT_TOP; s++) {
                        int j = liked[first + s];
                        pos[s] = (ranked){L->item[j], L->rating[j], L->ts[j], 0};
                        held[s] = L->item[j];
                    }
                } else {
                    for (int s = 0; s < PROMPT_TOP; s++) {
                        int pick = s + (int)rng_below(&r, (uint64_t)(nl - s));
                        int32_t tmp = liked[s]; liked[s] = liked[pick]; liked[pick] = tmp;
                        int j = liked[s];
                        pos[s] = (ranked){L->item[j], L->rating[j], L->ts[j], 0};
                        held[s] = L->item[j];
                    }
                }
                int32_t cand[2 * PROMPT_TOP];
                for (int s = 0; s < PROMPT_TOP; s++) cand[s] = held[s];
                for (int s = 0; s < PROMPT_TOP; s++) cand[PROMPT_TOP + s] = draw_negative(ps, &r, u, cand, PROMPT_TOP + s);
                rng_shuffle_int(&r, cand, 2 * PROMPT_TOP);
                q.n_items = 2 * PROMPT_TOP;
                for (int s = 0; s < 2 * PROMPT_TOP; s++) {
                    q.items[s] = cand[s];
                    all[s] = (ranked){cand[s], 0, 0, promptset_score(ps, u, cand[s])};
                }
                qsort(all, 2 * PROMPT_TOP, sizeof all[0], cmp_score);
                q.n_hint_top = PROMPT_TOP;
                for (int s = 0; s < PROMPT_TOP; s++) q.hint_top[s] = all[s].item;
                if (ps->hints == HINTS_RECRANKER_LEAKY) q.n_hint_top = hint_top_leaky(ps, u, q.items, q.n_items, q.hint_top);
                /* random: best rated first (RecRanker); next: in the order they came */
                if (!ps->next) qsort(pos, PROMPT_TOP, sizeof pos[0], cmp_answer);
                q.n_answer = PROMPT_TOP;
                for (int s = 0; s < PROMPT_TOP; s++) q.answer[s] = pos[s].item;
                nh = ps->next ? user_history(ps, TASK_LISTWISE, u, cut, NULL, 0, h)
                              : user_history(ps, TASK_LISTWISE, u, -1, held, PROMPT_TOP, h);
                ok = true;
            }
        }
        if (!ok || !ps->tasks[t]) { rec->task = (prompt_task)t; rec->user = -1; continue; }
        bool overlong;
        int dropped = prompt_build(&ps->env, (prompt_task)t, h, nh, &q, 1, &rec->text, &overlong);
        finish_record(rec, (prompt_task)t, u, &q, h, nh, dropped, overlong);
    }
    free(liked);
    free(h);
}

prompt_record *promptset_train(const promptset *ps, const int32_t *draws, int n, long first_draw, int *n_out,
                               long skipped[TASK_COUNT]) {
    prompt_record *all = xcalloc((size_t)n * TASK_COUNT + 1, sizeof *all);
    train_job J = {ps, draws, first_draw, all};
    parallel_for(n, ps->threads, train_one, &J);
    int m = 0;
    for (int k = 0; k < n * TASK_COUNT; k++) {
        if (all[k].user < 0) {
            if (ps->tasks[all[k].task]) skipped[all[k].task]++;
            continue;
        }
        all[m++] = all[k];
    }
    *n_out = m;
    return all;
}

typedef struct {
    const promptset *ps;
    const cand_set *cs;
    const int32_t *users;
    prompt_record **out;
    int *n_out;
} eval_job;

static void eval_one(void *vctx, int k, int worker) {
    (void)worker;
    eval_job *J = vctx;
    const promptset *ps = J->ps;
    int32_t u = J->users[k];
    const int32_t *c = J->cs->items[u];
    int nc = J->cs->len[u];
    rng_t r;
    rng_init(&r, ps->seed, 0x200000000ull + (uint64_t)u);
    int n = ps->hist.off[u + 1] - ps->hist.off[u];
    hist_entry *h = xmalloc(sizeof *h * (size_t)(n + 1));
    prompt_record *out = xcalloc((size_t)2 * nc + 2, sizeof *out);
    prompt_query *q = xcalloc((size_t)nc + 1, sizeof *q);
    prompt_text *tx = xcalloc((size_t)nc + 1, sizeof *tx);
    int m = 0;
    /* the pairs are drawn whether pairwise is asked for or not */
    int32_t perm[PROMPT_MAX_ITEMS];
    for (int i = 0; i < nc; i++) perm[i] = i;
    rng_shuffle_int(&r, perm, (size_t)nc);
    for (int t = 0; t < TASK_COUNT; t++) {
        if (!ps->tasks[t] || nc == 0) continue;
        int nq = 0;
        int32_t ranks[PROMPT_MAX_ITEMS][PROMPT_MAX_ITEMS];
        int pair_of[PROMPT_MAX_ITEMS];
        bool swapped[PROMPT_MAX_ITEMS];
        memset(q, 0, sizeof *q * (size_t)(nc + 1));
        if (t == TASK_POINTWISE) {
            for (int i = 0; i < nc; i++) {
                q[nq].items[0] = c[i];
                q[nq].n_items = 1;
                q[nq].hint_score = promptset_hint_rating(ps, u, c[i]);
                ranks[nq][0] = i;
                pair_of[nq] = -1;
                swapped[nq] = false;
                nq++;
            }
        } else if (t == TASK_PAIRWISE) {
            for (int p = 0; p < nc / 2; p++) {
                int x = perm[2 * p], y = perm[2 * p + 1];
                for (int s = 0; s < 2; s++) {
                    int f = s ? y : x, g = s ? x : y;
                    q[nq].items[0] = c[f];
                    q[nq].items[1] = c[g];
                    q[nq].n_items = 2;
                    q[nq].hint_yes = f < g;
                    ranks[nq][0] = f;
                    ranks[nq][1] = g;
                    pair_of[nq] = p;
                    swapped[nq] = s == 1;
                    nq++;
                }
            }
        } else {
            q[0].n_items = nc;
            for (int i = 0; i < nc; i++) { q[0].items[i] = c[i]; ranks[0][i] = i; }
            q[0].n_hint_top = nc < PROMPT_TOP ? nc : PROMPT_TOP;
            for (int i = 0; i < q[0].n_hint_top; i++) q[0].hint_top[i] = c[i];
            if (ps->hints == HINTS_RECRANKER_LEAKY) q[0].n_hint_top = hint_top_leaky(ps, u, c, nc, q[0].hint_top);
            pair_of[0] = -1;
            swapped[0] = false;
            nq = 1;
        }
        if (nq == 0) continue;
        int nh = user_history(ps, (prompt_task)t, u, -1, NULL, 0, h);
        bool overlong;
        int dropped = prompt_build(&ps->env, (prompt_task)t, h, nh, q, nq, tx, &overlong);
        for (int i = 0; i < nq; i++) {
            prompt_record *rec = &out[m++];
            rec->text = tx[i];
            rec->pair = pair_of[i];
            rec->swapped = swapped[i];
            memcpy(rec->ranks, ranks[i], sizeof ranks[i][0] * (size_t)q[i].n_items);
            finish_record(rec, (prompt_task)t, u, &q[i], h, nh, dropped, overlong);
        }
    }
    J->out[k] = out;
    J->n_out[k] = m;
    free(q);
    free(tx);
    free(h);
}

prompt_record *promptset_eval(const promptset *ps, const cand_set *cs, const int32_t *users, int n, int *n_out) {
    prompt_record **per = xcalloc((size_t)n + 1, sizeof *per);
    int *cnt = xcalloc((size_t)n + 1, sizeof *cnt);
    eval_job J = {ps, cs, users, per, cnt};
    parallel_for(n, ps->threads, eval_one, &J);
    int total = 0;
    for (int k = 0; k < n; k++) total += cnt[k];
    prompt_record *all = xcalloc((size_t)total + 1, sizeof *all);
    int m = 0;
    for (int k = 0; k < n; k++) {
        memcpy(all + m, per[k], sizeof *all * (size_t)cnt[k]);
        m += cnt[k];
        free(per[k]);
    }
    free(per);
    free(cnt);
    *n_out = m;
    return all;
}

void prompt_records_free(prompt_record *r, int n) {
    for (int k = 0; k < n; k++) {
        prompt_text_free(&r[k].text);
        free(r[k].history);
    }
    free(r);
}
