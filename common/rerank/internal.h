/* internal.h - the reranker's shared state, between the files of common/rerank/.
 *
 * One run (`rk`) holds the queries of the shard, grouped by user and by shared prompt prefix,
 * the model, the answer options of each task, and the output (stdout or OUT.partial). The
 * files split it by concern: queries.c (reading, shards, tokenising, RecRanker's options),
 * scheduler.c (batched decoding and scoring), output.c (answers, resume), rank.c (the stage).
 */
#ifndef ITREK_RERANK_INTERNAL_H
#define ITREK_RERANK_INTERNAL_H

#include "io/progress.h"
#include "io/stream.h"
#include "llm/generate.h"
#include "llm/model.h"
#include "records/task.h"
#include "rerank/id_map.h"
#include "rerank/rank.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { T_POINT = RTASK_POINTWISE, T_PAIR = RTASK_PAIRWISE, T_LIST = RTASK_LISTWISE, T_N = RTASK_COUNT };

#define STEP_TOKENS 4096 /* prompt rows newly prefilled per forward pass (soft cap) */
#define MAX_SCALE 100    /* rating values on a pointwise scale, at most */

typedef struct {
    int64_t id, user;
    int task;
    long rec;
    char *prompt;
    size_t plen, prefix_len;
    char **titles;
    int n_titles;
    /* after tokenisation */
    int *toks, n_toks;
    int group, os;
    int **tsep, **teos; /* listwise: per title, title + separator / title + EOS */
    int *nsep, *neos;
} query;

typedef struct {
    const int *toks; /* the shared tokens: the first query's prompt tokens [0, n_shared) */
    int n_shared, n_q, started;
    llm_seq *seq;
    int first_q;
} group;

typedef struct {
    int64_t user;
    int *q, n_q, cap;
} user_ent;

/* The answer options of a task (ratings or Yes./No.) tokenised after prompts that end with
 * `tail` (the text after the prompt's last space), EOS appended. */
typedef struct {
    int task;
    char *tail;
    int *tok[MAX_SCALE], n[MAX_SCALE];
} optset;

typedef struct {
    char *text;
    double *scores;
    int n_scores;
    bool done;
} answer;


typedef struct {
    const rank_opts *o;
    const char *qname;
    query *q;
    size_t n_q;
    user_ent *u;
    size_t n_u;
    int *su; size_t n_su; /* shard users, in order */
    char *scheme, *part;           /* the queries header's params.scheme / part, or NULL */
    bool leaky;                    /* the queries header's params.leaky (promptgen --hints recranker-leaky) */
    int scale_lo, scale_hi;
    long n_records;
    /* how answers are written (promptgen's templates): item, separator, yes, no */
    char *item_fmt, *sep, *yes, *no;
    /* model and derived */
    llm_model *m;
    int V, eos;
    group *g; size_t n_g;
    optset *os; size_t n_os; /* score mode: the options' tokens, per task and prompt tail */
    int n_opt[T_N];
    int max_opts; /* options of one query at most (ratings, or titles in listwise likelihood) */
    char opt_text[T_N][MAX_SCALE][64];
    /* output */
    unsigned char *hdr; size_t hdr_len;
    stream_writer *sw;        /* stdout mode */
    FILE *pf; char *ppath;    /* OUT.partial (appended to) */
    answer *ans;              /* per query */
    rank_stats *st;
    progress pr;
    long todo, done_q;
    double t0;
} rk;

/* queries.c */
void rerank_read_queries(rk *c);      /* the queries, the answer format, the shard's users */
void rerank_set_options(rk *c);       /* the options pointwise and pairwise answers choose from */
void rerank_tokenise(rk *c);          /* prompts, prefix groups, option tokens; checks the context */
char *rerank_render_item(const rk *c, const char *title); /* a title as answers show it */
void rerank_free_queries(rk *c);
/* scheduler.c: answers the queries of users[0..nu), writing each user's answers once all are done */
void rerank_run_window(rk *c, const int *users, int nu);
/* output.c */
void rerank_pack_header(rk *c);       /* c->hdr: the answers header */
void rerank_open_output(rk *c, bool to_file, id_map *have); /* stdout, or OUT.partial (resume: *have) */
void rerank_emit_user(rk *c, const user_ent *u);
void rerank_close_output(rk *c, bool stopped);

#endif
