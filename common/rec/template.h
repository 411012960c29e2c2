/* template.h - the prompt template language: the keys a template file must give, parsing and
 * loading such a file, and rendering a template with its placeholders filled. It knows nothing
 * of what the prompts say (rec/prompt.h builds them from these templates) and is kept apart so
 * that the file format and its checks can be read, and changed, on their own. See
 * docs/prompts.md, "The template file".
 *
 * Template file (UTF-8): one `key = value` per line; blank lines and lines starting with '#'
 * are ignored; the value starts at the first non-blank after '=' and ends at the end of the line
 * (trailing blanks dropped); escapes: \n newline, \t tab, \s space, \\ backslash, and a
 * backslash at the very end of a line continues the value on the next line (whose leading
 * blanks are skipped). Placeholders are {name}; {{ and }} stand for literal braces. Every key
 * must be present exactly once, unknown keys and placeholders a key does not offer are errors.
 * pairwise.history and listwise.history show either the rated history ({history}, as pointwise
 * does) or the liked and disliked lists ({liked}, {disliked}); mixing the two is an error.
 */
#ifndef ITREK_REC_TEMPLATE_H
#define ITREK_REC_TEMPLATE_H

#include "records/task.h"

#include <stdbool.h>
#include <stddef.h>

/* RecRanker's three prompt tasks (records/task.h: ids, names); a template file words each of them. */
typedef rtask prompt_task;

typedef enum {
    T_WRAPPER, T_ITEM, T_RATED_ITEM, T_RATED_SEP, T_LIST_SEP, T_NONE, T_ANSWER_SEP,
    T_POINT_INSTR, T_POINT_HIST, T_POINT_QUERY, T_POINT_HINT, T_POINT_RESP,
    T_PAIR_INSTR, T_PAIR_HIST, T_PAIR_QUERY, T_PAIR_HINT, T_PAIR_YES, T_PAIR_NO, T_PAIR_RESP,
    T_LIST_INSTR, T_LIST_HIST, T_LIST_QUERY, T_LIST_HINT, T_LIST_RESP,
    T_COUNT
} template_key;

typedef struct {
    char *text[T_COUNT];
    char *source; /* file name */
    /* per task: its history is the rated list ({history}: the last `history` rated items in time
     * order, rated_item joined by rated_sep); otherwise liked and disliked lists ({liked},
     * {disliked}). Always true for pointwise; for pairwise and listwise, true when their history
     * template uses {history} (set by templates_parse). */
    bool rated[RTASK_COUNT];
} prompt_templates;

/* Parse template text (name for messages: "NAME:LINE: what"). Dies on any error. */
void templates_parse(prompt_templates *t, const char *text, size_t n, const char *name);
void templates_load(prompt_templates *t, const char *path);
void templates_free(prompt_templates *t);

/* A template with its placeholders filled: kv holds nkv (name, value) pairs; newly allocated. */
char *template_render(const char *tmpl, const char *const *kv, int nkv);

/* ---------- rendering into a growing string (what rec/prompt.c builds its prompts with) ---------- */

/* A NUL-terminated string of n bytes in a buffer of cap bytes; {0} is the empty one. */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

void sb_grow(sbuf *b, size_t extra); /* room for extra more bytes and the NUL */
void sb_add(sbuf *b, const char *s, size_t n);
void sb_str(sbuf *b, const char *s);
char *sb_take(sbuf *b); /* the string (never NULL); b is left empty */

/* template_render appending to b. When mark_name is given, *mark receives the offset in b where
 * the value of placeholder {mark_name} starts (its last occurrence). */
void template_render_to(sbuf *b, const char *tmpl, const char *const *kv, int nkv, const char *mark_name, size_t *mark);

#endif
