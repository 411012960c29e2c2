/* rank.h - the reranker (RecRanker's tasks on a LLaMA model): answers
 * itrek.queries with a LLaMA model and writes itrek.answers.
 *
 * Two decode modes (docs/rank.md):
 *   generate  sampling (temperature, top-k, top-p, max_new, seed); the decoded text is the answer.
 *   score     no sampling. pointwise: log p(rating + EOS) for every rating on the scale;
 *             pairwise: log p("Yes." + EOS), log p("No." + EOS); listwise: greedy decoding
 *             constrained by a trie to the candidate titles (each title once), so every answer
 *             names min(5, candidates) distinct candidates; or (list_likelihood) every candidate
 *             scored by log p(title + separator) as the answer's first item, the answer naming
 *             the five best by that score.
 *
 * The queries of one user share a prompt prefix (`prefix_len`); it is computed once per user
 * and forked for every query. Work is done in windows of users; a window's answers depend only
 * on the window's queries, the model, the seed and the thread count, so a resumed run writes
 * the same bytes as an uninterrupted one. Sampling draws from one generator per query,
 * seeded by (seed, query id).
 *
 * Layering: rerank sits above rec and llm: it uses records/ for the streams and llm/ for the
 * model, generation and scoring; common/llm knows nothing of queries, answers or tasks. Files:
 * queries.c (reading, shards, tokenising, the tasks' answer options), scheduler.c (batched
 * decoding), output.c (answers, OUT.partial, --resume), merge.c (--merge), title_trie.c
 * (constrained listwise decoding), answer_tokens.c, id_map.c, rank.c (the stage).
 */
#ifndef ITREK_RERANK_RANK_H
#define ITREK_RERANK_RANK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { RANK_GENERATE = 0, RANK_SCORE = 1 } rank_decode;

typedef struct {
    const char *queries; /* itrek.queries path; NULL or "-": stdin */
    const char *output;  /* NULL or "-": stdout */
    bool zstd;
    const char *model, *adapter;
    const char *device; /* "cpu" (NULL: the same) or "cuda", as llm_load_opts.device */
    bool int8;
    int threads;
    rank_decode decode;
    bool list_likelihood; /* score mode, listwise: rank titles by log p(title as the first item)
                           * instead of constrained greedy decoding */
    double temperature; /* generate mode: 0.1, top-k 10, top-p 0.1, 300 new tokens */
    int top_k;
    double top_p;
    int max_new;
    uint64_t seed;
    int batch;           /* sequences decoded together; also users per window */
    bool prefix_sharing; /* compute each user's prefix once (default on) */
    bool resume;         /* with output: keep the answers already in OUT.partial / OUT */
    int shard_i, shard_n;
    long max_users;      /* > 0: stop after this many users (whole windows), keep OUT.partial */
    /* How answers are written, as promptgen's templates write training responses; NULL: the
     * queries header's params.format.{item, sep, yes, no}, else "\"{title}\"", "\n", "Yes.", "No.". */
    const char *item_format, *answer_sep, *yes, *no;
    bool quiet;
    double log_every;
} rank_opts;

void rank_opts_default(rank_opts *o);

typedef struct {
    long queries;          /* answered in this run */
    long skipped;          /* already answered (resume) */
    long users;            /* answered in this run */
    long prompt_tokens;    /* tokens of the prompts answered (as if unshared) */
    long computed_tokens;  /* prompt tokens actually run through the model */
    long generated_tokens; /* sampled or constrained-decoded tokens */
    long scored_tokens;    /* teacher-forced continuation tokens (score mode) */
    double seconds;        /* wall time of the model work */
    bool complete;         /* every query of the shard is answered (output written) */
} rank_stats;

/* Runs the stage; dies with "rank: error: FILE:RECORD: ..." on bad input or I/O failure. */
void rank_run(const rank_opts *o, rank_stats *st);

/* Concatenates answer streams of one run's shards into one, records sorted by id. The
 * headers must agree (apart from `shard`); shards must be 0..n-1 of one n, each once; ids
 * must not repeat. */
void rank_merge(const char *const *inputs, int n, const char *output, bool zstd);

#endif
