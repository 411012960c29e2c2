/* prompt_fixture.h - the small templates text (every key, short literal wording; pairwise and
 * listwise with liked/disliked lists) and the 12-item catalogue shared by test_prompt.c and
 * test_prompt_rated.c. Included by one test program each, hence the static definitions. */
#ifndef ITREK_TESTS_PROMPT_FIXTURE_H
#define ITREK_TESTS_PROMPT_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rec/prompt.h"

static const char PROMPT_TINY[] =
    "# a comment line, then a blank one\n"
    "\n"
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
    "pairwise.history = L[{liked}]D[{disliked}]\\n\n"
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

static inline catalog make_catalog(void) {
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

/* The path of a shipped templates file (data/prompts/NAME under $ITREK_ROOT, else the current
 * directory) in path; true when it can be read. */
static inline bool shipped_templates(const char *name, char *path, size_t n) {
    const char *root = getenv("ITREK_ROOT");
    snprintf(path, n, "%s/data/prompts/%s", root ? root : ".", name);
    return access(path, R_OK) == 0;
}

/* A pairwise query "a over b?" with the hint Yes and the training answer No. */
static inline prompt_query pairwise_query(int32_t a, int32_t b) {
    prompt_query q;
    memset(&q, 0, sizeof q);
    q.items[0] = a;
    q.items[1] = b;
    q.n_items = 2;
    q.hint_yes = true;
    q.has_response = true;
    q.answer_yes = false;
    return q;
}

/* base with key's line replaced by `line` (newly allocated). */
static inline char *with_line(const char *base, const char *key, const char *line) {
    const char *at = strstr(base, key), *end = strchr(at, '\n') + 1;
    size_t n = strlen(base) + strlen(line) + 2;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s\n%s", (int)(at - base), base, line, end);
    return s;
}

#endif
