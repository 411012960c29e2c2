/* records/mf.h - the itrek.mf stream (a trained matrix factorisation model, written by mf-train,
 * read by candgen and promptgen): the model and hyper-parameter types, the reader and the writer.
 *
 * Header: dim, users, items (array sizes: max id + 1), params (every hyper-parameter), valid
 * {best, best_epoch, epochs_run, metric}, inputs.interactions. Records: {user, vec, bias 0} for
 * every user id, then {item, vec, bias} for every item that exists; vec is dim float32 LE.
 * docs/formats.md is the reference; rec/mf.h trains and scores.
 */
#ifndef ITREK_RECORDS_MF_H
#define ITREK_RECORDS_MF_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { MF_METRIC_NDCG10 = 0, MF_METRIC_HR10 = 1 } mf_metric;

typedef struct {
    int dim;
    double lr, reg, reg_bias, init_std;
    int epochs, batch, negatives;
    int eval_every, patience;
    mf_metric metric;
    bool positives_all; /* positives: every train interaction (true) or liked ones only */
    double recency;       /* > 0: a positive's step is scaled by max(floor, exp(-age/recency)), age = the
                             number of the user's more recent train positives; 0: off */
    double recency_floor;
    uint64_t seed;
    int threads;
    bool quiet;
    double log_every;
} mf_params;

typedef struct {
    int dim;
    int32_t n_users, n_items;
    float *P;          /* (n_users, dim) */
    float *Q;          /* (n_items, dim) */
    float *bias;       /* (n_items) */
    uint8_t *has_item; /* (n_items): 1 for items that exist (appear in the interactions) */
    /* training report */
    int best_epoch, epochs_run;
    double best_valid;
    double train_seconds;
    long long triples;
} mf_model;

/* Write M (trained with P) as itrek.mf; INPUTS_NAME names the interactions in inputs. */
void mf_write(const mf_model *m, const mf_params *p, const char *path, bool zstd, const char *inputs_name);
/* Read an itrek.mf stream into M (arrays allocated; rec/mf.h's mf_free frees them). */
void mf_read(mf_model *m, const char *path);

#endif
