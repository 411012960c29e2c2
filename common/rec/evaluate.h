/* evaluate.h - the metrics table: every method's ranking scored over every user with a
 * positive in the evaluated part, with paired bootstrap intervals against the base.
 *
 * A user missing from a method's ranking counts as a miss (all metrics 0), never dropped.
 */
#ifndef ITREK_REC_EVALUATE_H
#define ITREK_REC_EVALUATE_H

#include "rec/data.h"

#include <stdio.h>

enum { EVAL_MAX_K = 8, EVAL_MAX_METHODS = 32 };

typedef struct {
    char name[32];
    int32_t n_users;   /* size of the per-user arrays (max user id + 1 of the interactions) */
    int32_t **items;   /* per user: ranking best first, or NULL */
    int32_t *len;
    int32_t *from;     /* per user: which load call stored it (a later input may repeat it identically) */
    bool leaky;        /* from a stream with params.leaky (RecRanker's leaky hints: a diagnostic) */
} method_ranking;

typedef struct {
    int n_k;
    int ks[EVAL_MAX_K];
    int bootstrap;     /* resamples (0: no intervals) */
    uint64_t seed;
    char baseline[32]; /* method the intervals compare against ("base") */
} eval_params;

/* Metric columns per method: for each k: HR, NDCG, Recall; then MRR. */
typedef struct {
    eval_params p;
    int n_methods;
    method_ranking *methods;
    int n_users;          /* evaluated users */
    int n_cols;
    char (*col_names)[16];
    double *mean;         /* (n_methods, n_cols) */
    double *lo, *hi, *diff; /* (n_methods, n_cols): paired difference vs baseline and its interval */
    int baseline_index;   /* -1 when absent */
    char scheme[16], part[8];
    bool leaky;           /* a method is leaky: the title says LEAKY */
} eval_table;

/* Adds the rankings of an itrek.rankings stream (any number of methods) to ms. A stream whose
 * header says params.leaky marks its methods leaky and names every one but `base` with "LEAKY"
 * (prefixed unless the name has it already), so that no leaky row can pass for an honest one. */
void rankings_load(method_ranking **ms, int *n, const char *path, const interactions *ia);
/* Adds an itrek.candidates stream as the method `name` (base order). */
void candidates_load_as_method(method_ranking **ms, int *n, const char *path, const interactions *ia, const char *name);
void method_rankings_free(method_ranking *ms, int n);

void eval_compute(eval_table *t, const interactions *ia, part_t part, method_ranking *ms, int n, const eval_params *p);
void eval_write_md(const eval_table *t, FILE *out);
void eval_write_csv(const eval_table *t, FILE *out);
void eval_write_json(const eval_table *t, FILE *out);
void eval_free(eval_table *t);

#endif
