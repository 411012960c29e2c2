/* fuse.h - RecRanker's hybrid ranking: parse the pointwise, pairwise and listwise answers of
 * the language model and fuse them into one ranking per user (docs/DESIGN.md, 4 "RecRanker, as built"; the rules
 * and every decision are written out in docs/fuse.md).
 *
 * Candidates of a user are indexed by their 0-based base rank m (0 = the base model's best).
 * With n the user's candidate count:
 *   U_point = score + c1 * (n - m)
 *   U_pair  = per pair asked in both orders: c2 to the winner when both answers agree, else
 *             c2/2 to each (an unparsed answer counts as a disagreement)
 *   U_list  = c3 * (top - p) for a candidate at 0-based position p < top (= 5) of the answer
 *   U       = l1 U_point + l2 U_pair + l3 U_list
 * Each ranking sorts by its utility, descending; ties (utilities equal after rounding to
 * 1e-9) keep base order.
 */
#ifndef ITREK_REC_FUSE_H
#define ITREK_REC_FUSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "records/task.h"

typedef enum { FUSE_POINTWISE = 0, FUSE_PAIRWISE = 1, FUSE_LISTWISE = 2, FUSE_NTASKS = 3 } fuse_task;
typedef enum { FUSE_SCORE_EXPECTED = 0, FUSE_SCORE_ARGMAX = 1 } fuse_point_score;

/* Output methods, in the fixed record order. */
enum { FUSE_M_BASE, FUSE_M_POINTWISE, FUSE_M_PAIRWISE, FUSE_M_LISTWISE, FUSE_M_HYBRID, FUSE_NMETHODS };

#define FUSE_LIST_TOP RTASK_LIST_TOP /* positions of the listwise answer that earn utility */

typedef struct {
    double c1, c2, c3;
    double lambda[3];
    fuse_point_score point_score;
    bool allow_missing; /* a query without an answer counts as unparsed instead of an error */
    /* Output naming and selection, so that several fusions of one run sit in one table:
     * label (NULL: none) is prepended to each reranked method's name with a space ("zero-shot
     * hybrid"); base keeps its name. methods: bit (1 << FUSE_M_*) per method written; 0: all. */
    const char *label;
    unsigned methods;
} fuse_params;

/* c1 0.05, c2 0.5, c3 0.025, lambda 1/3 each, expected score, missing answers are errors. */
void fuse_params_default(fuse_params *p);
const char *fuse_method_name(int method);
const char *fuse_point_score_name(fuse_point_score s);

/* ---------- parsing one answer ---------- */

/* Pointwise text: the last integer (maximal run of ASCII digits) in s[0..n). True and *rating
 * when there is one and it lies in [lo, hi]; false otherwise (the caller falls back). */
bool fuse_parse_point_text(const char *s, size_t n, int lo, int hi, int *rating);
/* Pointwise log-probabilities logp[0..k) for the ratings lo..lo+k-1: the expected rating under
 * their softmax, or the most likely rating (ties: the lower one). False when no entry is
 * finite (every option impossible). -INFINITY entries are allowed. */
bool fuse_point_from_logp(const double *logp, int k, int lo, fuse_point_score mode, double *score);
/* Pairwise text: 1 when it contains the word "yes" (ASCII case-insensitive, not part of a
 * longer word), else 0 when it contains the word "no", else -1 (unparsed). */
int fuse_parse_pair_text(const char *s, size_t n);
/* Pairwise log-probabilities [logp Yes, logp No]: 1 (Yes) iff logp Yes > logp No, 0 (No)
 * otherwise; -1 when neither is finite. */
int fuse_pair_from_logp(const double logp[2]);
/* Listwise text: the candidates whose titles appear in s, as indices into titles[0..k), in
 * order of first appearance; returns how many (each candidate at most once). Matching is ASCII
 * case-insensitive and needs word boundaries where a title starts or ends with a letter or
 * digit; longer titles match first and consume their text, so a title inside another
 * candidate's title ("Heat (1995)" in "White Heat (1949)") does not match there. Candidates
 * with identical titles take that title's occurrences in turn. A title is matched without
 * surrounding white space and without one pair of surrounding quotes ("..." or '...'), as a
 * prompt template may quote it. Empty titles never match.
 * Text that names no candidate is ignored. order must hold k entries. */
int fuse_parse_list_text(const char *s, size_t n, const char *const *titles, const size_t *title_len, int k,
                         int *order);

/* ---------- fusing one user ---------- */

/* A pair of candidates (base ranks a, b) and its two answers: ab answers "prefer a over b?"
 * (the query showing a first), ba answers "prefer b over a?"; each 1 Yes, 0 No, -1 unparsed. */
typedef struct {
    int a, b;
    int ab, ba;
} fuse_pair;

typedef struct {
    double *point, *pair, *list, *hybrid; /* each [n], indexed by base rank */
    int pair_fallbacks; /* pairs split c2/2 because an answer was unparsed */
} fuse_utils;

/* Utilities of n candidates. score[m]: the pointwise score of candidate m, or score NULL when
 * there are no pointwise answers (U_point = 0). pairs[0..n_pairs). list[0..n_list): base ranks
 * in the listwise answer's order (only the first FUSE_LIST_TOP count). The arrays of u must
 * hold n entries each. */
void fuse_utilities(int n, const double *score, const fuse_pair *pairs, int n_pairs, const int *list, int n_list,
                    const fuse_params *p, fuse_utils *u);
/* order[0..n): base ranks sorted by u descending; ties (equal after rounding to 1e-9) keep
 * base order. */
void fuse_sort(int n, const double *u, int *order);

/* ---------- the fuse stage ---------- */

typedef struct {
    const char *queries;  /* itrek.queries path (required) */
    const char *answers;  /* itrek.answers path, NULL or "-": stdin */
    const char *output;   /* NULL or "-": stdout */
    bool zstd, quiet;
} fuse_io;

/* Reads both streams, checks that they belong together, parses every answer, writes
 * itrek.rankings and one parse summary line per task on stderr. Dies (exit 1) with
 * "fuse: error: FILE:RECORD: field 'F': what" on bad input; no output file is left behind. */
void fuse_run(const fuse_io *io, const fuse_params *p);

#endif
