/* split.c - raw rating input, the ratio and loo schemes, the ML-100K catalogue. */
#include "rec/split.h"

#include "io/err.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------- ratings input ---------- */

static void push(ratings *r, size_t *cap, rating_row row) {
    if (r->n == *cap) r->v = xrealloc(r->v, (*cap = *cap ? *cap * 2 : 4096) * sizeof *r->v);
    r->v[r->n++] = row;
}

/* Parses one field as a number; dies naming file, line and column. */
static double field_num(const char *s, size_t n, const char *path, long line, const char *col) {
    char buf[64];
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n == 0 || n >= sizeof buf) die_at(path, line, "field '%s': empty or too long", col);
    memcpy(buf, s, n);
    buf[n] = 0;
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    if (errno || *end || !isfinite(v)) die_at(path, line, "field '%s': not a number: '%s'", col, buf);
    return v;
}

static const char *COLS[4] = {"user", "item", "rating", "ts"};

/* Splits line at sep into exactly 4 fields (more are ignored only for the generic reader). */
static int split_fields(const char *line, const char *sep, const char **f, size_t *fl, int max) {
    int k = 0;
    size_t sl = strlen(sep);
    const char *p = line;
    for (;;) {
        const char *q = strstr(p, sep);
        if (k == max) return k + 1;
        f[k] = p;
        fl[k] = q ? (size_t)(q - p) : strcspn(p, "\r\n");
        k++;
        if (!q) return k;
        p = q + sl;
    }
}

static void read_table(ratings *r, const char *path, const char *fixed_sep, bool allow_header) {
    FILE *fp = fopen(path, "r");
    if (!fp) die_at(path, -1, "cannot open: %s", strerror(errno));
    memset(r, 0, sizeof *r);
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    const char *sep = fixed_sep;
    while (getline(&line, &lcap, fp) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        if (!sep) {
            sep = strstr(line, "::") ? "::" : strchr(line, '\t') ? "\t" : strchr(line, ',') ? "," : strchr(line, ';') ? ";" : NULL;
            if (!sep) die_at(path, lineno, "no separator (tab, comma, ';' or '::') found");
        }
        const char *f[5];
        size_t fl[5];
        int nf = split_fields(line, sep, f, fl, 4);
        if (nf < 4) die_at(path, lineno, "field '%s': missing (expected user, item, rating, timestamp)", COLS[nf]);
        if (nf > 4 && fixed_sep) die_at(path, lineno, "more than 4 fields");
        if (allow_header && r->n == 0 && !isdigit((unsigned char)f[0][0])) { allow_header = false; continue; }
        rating_row row;
        double v[4];
        for (int c = 0; c < 4; c++) v[c] = field_num(f[c], fl[c], path, lineno, COLS[c]);
        if (v[0] != floor(v[0]) || v[0] < 0 || v[0] > 1e8) die_at(path, lineno, "field 'user': not an id in [0, 1e8]");
        if (v[1] != floor(v[1]) || v[1] < 0 || v[1] > 1e8) die_at(path, lineno, "field 'item': not an id in [0, 1e8]");
        row.user = (int32_t)v[0];
        row.item = (int32_t)v[1];
        row.rating = (float)v[2];
        row.ts = (int64_t)v[3];
        push(r, &cap, row);
    }
    if (ferror(fp)) die_at(path, -1, "read failed: %s", strerror(errno));
    free(line);
    fclose(fp);
    if (r->n == 0) die_at(path, -1, "no ratings");
}

void ratings_read_ml100k(ratings *r, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/u.data", dir);
    read_table(r, path, "\t", false);
}

void ratings_read_table(ratings *r, const char *path) { read_table(r, path, NULL, true); }

void ratings_free(ratings *r) {
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* ---------- splitting ---------- */

static int cmp_user_time_item(const void *a, const void *b) {
    const rating_row *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->ts != y->ts) return x->ts < y->ts ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

void split_assign(ratings *r, const split_params *p, uint8_t *part, split_stats *st, const char *source) {
    memset(st, 0, sizeof *st);
    qsort(r->v, r->n, sizeof *r->v, cmp_user_time_item);
    /* Duplicate (user, item) pairs: found with a per-user scratch marker over item ids. */
    int32_t max_item = 0;
    for (size_t k = 0; k < r->n; k++) if (r->v[k].item > max_item) max_item = r->v[k].item;
    int32_t *mark = xmalloc(((size_t)max_item + 1) * sizeof *mark);
    for (int32_t i = 0; i <= max_item; i++) mark[i] = -1;
    st->items = 0;
    for (size_t a = 0; a < r->n;) {
        size_t b = a;
        while (b < r->n && r->v[b].user == r->v[a].user) b++;
        int32_t u = r->v[a].user;
        for (size_t k = a; k < b; k++) {
            if (mark[r->v[k].item] == u)
                die_at(source, -1, "duplicate rating: user %d item %d rated twice", u, r->v[k].item);
            mark[r->v[k].item] = u;
        }
        st->users++;
        size_t n = b - a;
        if (p->scheme == SPLIT_RATIO) {
            size_t b1 = (size_t)llround(n * p->ratio[0]);
            size_t b2 = (size_t)llround(n * (p->ratio[0] + p->ratio[1]));
            if (b2 > n) b2 = n;
            if (p->refit) b1 = b2;
            for (size_t k = 0; k < n; k++) part[a + k] = k < b1 ? PART_TRAIN : k < b2 ? PART_VALID : PART_TEST;
        } else {
            /* Liked ratings in time order: last -> test, second last -> valid, rest -> train. */
            size_t liked = 0, last = (size_t)-1, second = (size_t)-1;
            for (size_t k = a; k < b; k++)
                if (r->v[k].rating >= p->like) { liked++; second = last; last = k; }
            if (p->refit) second = (size_t)-1; /* the valid item is a train item like the others */
            size_t cutoff = second != (size_t)-1 ? second : liked >= 1 ? last : b; /* first index a dislike may not reach */
            for (size_t k = a; k < b; k++) {
                float x = r->v[k].rating;
                if (x >= p->like) part[k] = k == last ? PART_TEST : k == second ? PART_VALID : PART_TRAIN;
                else if (x <= p->dislike && k < cutoff) part[k] = PART_TRAIN;
                else part[k] = PART_DROP;
            }
        }
        bool has_test_pos = false;
        for (size_t k = a; k < b; k++) {
            if (part[k] == PART_DROP) st->dropped++;
            else st->count[part[k]]++;
            if (part[k] == PART_TEST && r->v[k].rating >= p->like) has_test_pos = true;
        }
        st->users_with_test_pos += has_test_pos;
        a = b;
    }
    for (int32_t i = 0; i <= max_item; i++) if (mark[i] != -1) st->items++;
    free(mark);
}

/* ---------- ML-100K catalogue ---------- */

/* latin-1 to UTF-8: every byte >= 0x80 becomes two bytes. */
static char *latin1_to_utf8(const char *s, size_t n) {
    char *out = xmalloc(2 * n + 1), *o = out;
    for (size_t k = 0; k < n; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c < 0x80) *o++ = (char)c;
        else { *o++ = (char)(0xC0 | (c >> 6)); *o++ = (char)(0x80 | (c & 0x3F)); }
    }
    *o = 0;
    return out;
}

static const char *ML100K_GENRES[19] = {"unknown", "Action", "Adventure", "Animation", "Children's", "Comedy",
                                         "Crime", "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror",
                                         "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western"};

void catalog_read_ml100k(catalog *c, const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/u.item", dir);
    FILE *fp = fopen(path, "rb");
    if (!fp) die_at(path, -1, "cannot open: %s", strerror(errno));
    memset(c, 0, sizeof *c);
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    long lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, fp)) > 0) {
        lineno++;
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        const char *f[24];
        size_t fl[24];
        int nf = 0;
        for (char *p = line;; ) {
            char *q = strchr(p, '|');
            f[nf] = p;
            fl[nf] = q ? (size_t)(q - p) : strlen(p);
            nf++;
            if (!q || nf == 24) break;
            p = q + 1;
        }
        if (nf < 5 + 19) die_at(path, lineno, "field 'genres': expected 24 '|'-separated fields, got %d", nf);
        char *end;
        long id = strtol(f[0], &end, 10);
        if (end != f[0] + fl[0] || id < 0 || id > 100000000) die_at(path, lineno, "field 'item': not an id");
        item_info *it = catalog_slot(c, (int32_t)id, &cap);
        if (it->title) die_at(path, lineno, "field 'item': duplicate id %ld", id);
        it->id = (int32_t)id;
        it->title = latin1_to_utf8(f[1], fl[1]);
        /* The year in the title "(1994)" is the film's; the release date's year (u.item's third
         * field) can be a later re-release, so it is only the fallback. */
        it->year = 0;
        const char *lp = strrchr(it->title, '(');
        if (lp && isdigit((unsigned char)lp[1]) && strlen(lp) == 6 && lp[5] == ')') it->year = (int32_t)strtol(lp + 1, NULL, 10);
        if (!it->year && fl[2] >= 4) it->year = (int32_t)strtol(f[2] + fl[2] - 4, NULL, 10);
        it->genres = xcalloc(19, sizeof *it->genres);
        for (int g = 0; g < 19; g++) {
            if (fl[5 + g] != 1 || (f[5 + g][0] != '0' && f[5 + g][0] != '1'))
                die_at(path, lineno, "field 'genres': flag %d is not 0 or 1", g);
            if (f[5 + g][0] == '1') it->genres[it->n_genres++] = xstrdup(ML100K_GENRES[g]);
        }
        if (id + 1 > c->n_items) c->n_items = (int32_t)id + 1;
        c->count++;
    }
    free(line);
    fclose(fp);
    if (c->count == 0) die_at(path, -1, "no items");
}
