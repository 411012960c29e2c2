/* template.c - the template language (see template.h, docs/prompts.md): the keys and the
 * placeholders each offers, parsing and loading template files with their checks, and rendering.
 * The string builder lives here because rendering is what it is for; rec/prompt.c uses both to
 * build the prompts' text. */
#include "rec/template.h"

#include "io/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- string builder ---------- */

void sb_grow(sbuf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}
void sb_add(sbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}
void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
char *sb_take(sbuf *b) {
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

void template_render_to(sbuf *b, const char *tmpl, const char *const *kv, int nkv, const char *mark_name, size_t *mark) {
    char err[16];
    scan(tmpl, b, kv, nkv, NULL, mark_name, mark, err, sizeof err);
}

char *template_render(const char *tmpl, const char *const *kv, int nkv) {
    sbuf b = {0};
    template_render_to(&b, tmpl, kv, nkv, NULL, NULL);
    return sb_take(&b);
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

/* The physical line at *pos in text[0..n), without its "\n" or "\r\n": its start, its length in
 * *len; *pos moves to the next line. */
static const char *next_line(const char *text, size_t n, size_t *pos, size_t *len) {
    size_t e = *pos;
    while (e < n && text[e] != '\n') e++;
    const char *l = text + *pos;
    *len = e - *pos;
    *pos = e < n ? e + 1 : e;
    if (*len && l[*len - 1] == '\r') (*len)--;
    return l;
}

static void no_nul(const char *name, long line_no, const char *l, size_t len) {
    for (size_t k = 0; k < len; k++)
        if (l[k] == 0) die_at(name, line_no, "a NUL byte in the template");
}

void templates_parse(prompt_templates *t, const char *text, size_t n, const char *name) {
    memset(t, 0, sizeof *t);
    t->source = xstrdup(name);
    long line_no = 0;
    size_t pos = 0;
    while (pos < n) {
        size_t len;
        const char *l = next_line(text, n, &pos, &len);
        long key_line = ++line_no; /* the line the key is on, for messages */
        size_t i = 0;
        while (i < len && (l[i] == ' ' || l[i] == '\t')) i++;
        if (i == len || l[i] == '#') continue;
        no_nul(name, key_line, l, len);
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
            l = next_line(text, n, &pos, &len);
            line_no++;
            no_nul(name, line_no, l, len);
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
            t->rated[key == T_PAIR_HIST ? RTASK_PAIRWISE : RTASK_LISTWISE] = rated;
        }
    }
    for (int k = 0; k < T_COUNT; k++)
        if (!t->text[k]) die_at(name, -1, "key '%s' is missing", KEYS[k].name);
    t->rated[RTASK_POINTWISE] = true;
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
