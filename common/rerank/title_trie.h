/* title_trie.h - constrained listwise decoding: a listwise answer may only name candidate
 * titles, each once, so greedy decoding is restricted to the tokens that continue a title not
 * yet chosen. A trie over the titles' token sequences says which tokens those are.
 */
#ifndef ITREK_RERANK_TITLE_TRIE_H
#define ITREK_RERANK_TITLE_TRIE_H

#include <stdbool.h>

#include "records/task.h"

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
    int chosen[RTASK_LIST_TOP];
} rank_list;
void rank_list_init(rank_list *l, const int *const *sep_seqs, const int *sep_lens, const int *const *eos_seqs,
                    const int *eos_lens, int n, int need);
void rank_list_free(rank_list *l);
/* The token to emit next given the model's logits (V). -1 when nothing can be emitted. */
int rank_list_choose(const rank_list *l, const float *logits, int V);
/* Advance by tok (which must be allowed); true once `need` titles are chosen. */
bool rank_list_push(rank_list *l, int tok);

#endif
