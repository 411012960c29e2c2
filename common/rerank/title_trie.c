/* title_trie.c - the constrained listwise decoder (see title_trie.h). */
#include "rerank/title_trie.h"

#include "io/err.h"

#include <stdlib.h>
#include <string.h>

/* ======================================================================== trie */

typedef struct {
    int tok, child, next; /* first child, next sibling (-1 none) */
    int live;             /* live sequences through this node */
} tnode;

struct rank_trie {
    tnode *nd;
    int n_nodes, cap;
    int n_seq, n_live;
    int *end;          /* per sequence: its last node */
    bool *removed;
    int **seq; int *len;
};

static int trie_add_node(rank_trie *t, int tok) {
    if (t->n_nodes == t->cap) t->nd = xrealloc(t->nd, sizeof *t->nd * (size_t)(t->cap *= 2));
    t->nd[t->n_nodes] = (tnode){tok, -1, -1, 0};
    return t->n_nodes++;
}

rank_trie *rank_trie_new(const int *const *seqs, const int *lens, int n) {
    rank_trie *t = xcalloc(1, sizeof *t);
    t->cap = 16;
    t->nd = xmalloc(sizeof *t->nd * (size_t)t->cap);
    trie_add_node(t, -1);
    t->n_seq = t->n_live = n;
    t->end = xmalloc(sizeof *t->end * (size_t)(n ? n : 1));
    t->removed = xcalloc((size_t)(n ? n : 1), sizeof *t->removed);
    t->seq = xmalloc(sizeof *t->seq * (size_t)(n ? n : 1));
    t->len = xmalloc(sizeof *t->len * (size_t)(n ? n : 1));
    for (int s = 0; s < n; s++) {
        t->seq[s] = xmalloc(sizeof **t->seq * (size_t)(lens[s] ? lens[s] : 1));
        memcpy(t->seq[s], seqs[s], sizeof **t->seq * (size_t)lens[s]);
        t->len[s] = lens[s];
        int node = 0;
        t->nd[0].live++;
        for (int i = 0; i < lens[s]; i++) {
            int c = t->nd[node].child, prev = -1;
            while (c >= 0 && t->nd[c].tok < seqs[s][i]) { prev = c; c = t->nd[c].next; }
            if (c < 0 || t->nd[c].tok != seqs[s][i]) { /* insert, children kept sorted by token */
                int x = trie_add_node(t, seqs[s][i]);
                t->nd[x].next = c;
                if (prev < 0) t->nd[node].child = x; else t->nd[prev].next = x;
                c = x;
            }
            node = c;
            t->nd[node].live++;
        }
        t->end[s] = node;
    }
    return t;
}

void rank_trie_free(rank_trie *t) {
    if (!t) return;
    for (int s = 0; s < t->n_seq; s++) free(t->seq[s]);
    free(t->seq); free(t->len); free(t->end); free(t->removed); free(t->nd); free(t);
}

int rank_trie_child(const rank_trie *t, int node, int tok) {
    for (int c = t->nd[node].child; c >= 0; c = t->nd[c].next)
        if (t->nd[c].tok == tok) return t->nd[c].live > 0 ? c : -1;
    return -1;
}

int rank_trie_allowed(const rank_trie *t, int node, int *toks, int max) {
    int n = 0;
    for (int c = t->nd[node].child; c >= 0; c = t->nd[c].next)
        if (t->nd[c].live > 0) { if (n < max) toks[n] = t->nd[c].tok; n++; }
    return n;
}

int rank_trie_complete(const rank_trie *t, int node) {
    for (int s = 0; s < t->n_seq; s++) if (!t->removed[s] && t->end[s] == node) return s;
    return -1;
}

void rank_trie_remove(rank_trie *t, int s) {
    if (s < 0 || s >= t->n_seq || t->removed[s]) return;
    t->removed[s] = true;
    t->n_live--;
    int node = 0;
    t->nd[0].live--;
    for (int i = 0; i < t->len[s]; i++) {
        node = rank_trie_child(t, node, t->seq[s][i]);
        if (node < 0) break; /* cannot happen: the path is live until decremented */
        t->nd[node].live--;
    }
}

int rank_trie_live(const rank_trie *t) { return t->n_live; }

/* ======================================================================== constrained listwise */

void rank_list_init(rank_list *l, const int *const *sep_seqs, const int *sep_lens, const int *const *eos_seqs,
                    const int *eos_lens, int n, int need) {
    memset(l, 0, sizeof *l);
    l->mid = rank_trie_new(sep_seqs, sep_lens, n);
    l->last = rank_trie_new(eos_seqs, eos_lens, n);
    if (need > n) need = n;
    if (need > RTASK_LIST_TOP) need = RTASK_LIST_TOP;
    l->need = need;
}

void rank_list_free(rank_list *l) {
    rank_trie_free(l->mid);
    rank_trie_free(l->last);
    l->mid = l->last = NULL;
}

static const rank_trie *list_trie(const rank_list *l) { return l->n_chosen + 1 >= l->need ? l->last : l->mid; }

int rank_list_choose(const rank_list *l, const float *logits, int V) {
    const rank_trie *t = list_trie(l);
    int best = -1;
    for (int c = t->nd[l->node].child; c >= 0; c = t->nd[c].next) {
        int tok = t->nd[c].tok;
        if (t->nd[c].live <= 0 || tok < 0 || tok >= V) continue;
        if (best < 0 || logits[tok] > logits[best]) best = tok; /* children ascend: ties keep the lower id */
    }
    return best;
}

bool rank_list_push(rank_list *l, int tok) {
    if (l->n_chosen >= l->need) return true;
    const rank_trie *t = list_trie(l);
    int c = rank_trie_child(t, l->node, tok);
    if (c < 0) return false;
    l->node = c;
    int s = rank_trie_complete(t, c);
    if (s >= 0) {
        l->chosen[l->n_chosen++] = s;
        rank_trie_remove(l->mid, s);
        rank_trie_remove(l->last, s);
        l->node = 0;
    }
    return l->n_chosen >= l->need;
}
