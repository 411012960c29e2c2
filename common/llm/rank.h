/* rank.h - the reranker: answers itrek.queries with a LLaMA model and writes itrek.answers.
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
 * Layering: llm layer; includes io/ and llm/ headers only (never rec/).
 */
#ifndef ITREK_LLM_RANK_H
#define ITREK_LLM_RANK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "llm/tokenizer.h"

#define RANK_LIST_TOP 5    /* titles a listwise answer names */

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

/* ---------- building blocks (tests/llm/test_rank.c) ---------- */

/* The tokens the model emits for `answer` right after `prompt`: encode(tail + answer) minus
 * encode(tail), where tail is the prompt's text after its last space (SentencePiece pieces do
 * not span a space, so this equals encode(prompt + answer) minus encode(prompt) and costs
 * little). *out is malloc'd. Returns the count, or -1 when the answer's first piece would
 * merge with the end of the prompt (no clean split; *out then holds the tokens after the
 * common prefix). */
int rank_answer_tokens(const llm_tokenizer *t, const char *prompt, size_t prompt_len, const char *answer, int **out);

/* A trie over token sequences (tokenised titles with their terminator). Sequences may repeat;
 * a removed ("chosen") sequence no longer counts: a node is live while a not-removed sequence
 * passes through it. Node 0 is the root. */
typedef struct rank_trie rank_trie;
rank_trie *rank_trie_new(const int *const *seqs, const int *lens, int n);
void rank_trie_free(rank_trie *t);
/* The live child of node for token tok, or -1. */
int rank_trie_child(const rank_trie *t, int node, int tok);
/* Tokens of the live children of node (ascending); returns the count (at most max written). */
int rank_trie_allowed(const rank_trie *t, int node, int *toks, int max);
/* The lowest-index live sequence that ends at node, or -1. */
int rank_trie_complete(const rank_trie *t, int node);
void rank_trie_remove(rank_trie *t, int seq);
int rank_trie_live(const rank_trie *t); /* live sequences */

/* Constrained listwise decoding: titles 0..n-1 with two token sequences each, title + separator
 * (used while more titles are to come) and title + EOS (the last one). Greedy: at each step
 * the most likely token that continues a not-yet-chosen title (lowest id on ties). */
typedef struct {
    rank_trie *mid, *last;
    int need, n_chosen, node;
    int chosen[RANK_LIST_TOP];
} rank_list;
void rank_list_init(rank_list *l, const int *const *sep_seqs, const int *sep_lens, const int *const *eos_seqs,
                    const int *eos_lens, int n, int need);
void rank_list_free(rank_list *l);
/* The token to emit next given the model's logits (V). -1 when nothing can be emitted. */
int rank_list_choose(const rank_list *l, const float *logits, int V);
/* Advance by tok (which must be allowed); true once `need` titles are chosen. */
bool rank_list_push(rank_list *l, int tok);

#endif
