/* trainrun.c - data preparation and the training loop (see trainrun.h). */
#include "llm/trainrun.h"

#include "io/atomic.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/err.h"
#include "io/progress.h"
#include "io/rng.h"
#include "llm/safetensors.h"

/* ---------------------------------------------------------------- data */

static int *encode(const llm_tokenizer *tok, const char *text, int bos, int eos, int *n) {
    int need = tok_encode(tok, text, bos, eos, NULL, 0);
    int *ids = xmalloc((size_t)(need > 0 ? need : 1) * sizeof *ids);
    *n = tok_encode(tok, text, bos, eos, ids, need);
    return ids;
}

static void ds_push(llm_dataset *d, const int *tok, int n, int loss_from) {
    if (d->n == d->cap) d->ex = xrealloc(d->ex, (size_t)(d->cap = d->cap ? 2 * d->cap : 256) * sizeof *d->ex);
    d->ex[d->n++] = (llm_example){tok, n, loss_from};
    d->tokens += n;
    d->targets += n - loss_from;
}

void llm_dataset_add_instruction(llm_dataset *d, const llm_tokenizer *tok, const char *prompt, const char *response,
                                 int ctx, int loss_on_all) {
    size_t lp = strlen(prompt), lr = strlen(response);
    char *full = xmalloc(lp + lr + 1);
    memcpy(full, prompt, lp);
    memcpy(full + lp, response, lr + 1);
    int n, np;
    int *ids = encode(tok, full, 1, 1, &n);
    free(encode(tok, prompt, 1, 0, &np));
    free(full);
    if (np > n) np = n;
    if (n > ctx && ctx >= 2) {
        int over = n - ctx, drop = over < np - 1 ? over : np - 1; /* from the left of the prompt, after BOS */
        memmove(ids + 1, ids + 1 + drop, (size_t)(n - 1 - drop) * sizeof *ids);
        n -= drop, np -= drop;
        if (n > ctx) n = ctx; /* the response alone is too long: cut its end */
        d->truncated++;
    }
    int from = loss_on_all ? 1 : np;
    if (from < 1) from = 1;
    if (from >= n) { d->dropped++; free(ids); return; }
    ds_push(d, ids, n, from);
}

void llm_text_append(int **stream, long *n, long *cap, const llm_tokenizer *tok, const char *text) {
    int k;
    int *ids = encode(tok, text, 1, 1, &k);
    if (*n + k > *cap) {
        while (*n + k > *cap) *cap = *cap ? 2 * *cap : 4096;
        *stream = xrealloc(*stream, (size_t)*cap * sizeof **stream);
    }
    memcpy(*stream + *n, ids, (size_t)k * sizeof *ids);
    *n += k;
    free(ids);
}

void llm_dataset_pack(llm_dataset *d, const int *stream, long n, int ctx) {
    for (long i = 0; i < n; i += ctx) {
        int k = n - i < ctx ? (int)(n - i) : ctx;
        if (k < 2) { d->dropped++; continue; }
        int *ids = xmalloc((size_t)k * sizeof *ids);
        memcpy(ids, stream + i, (size_t)k * sizeof *ids);
        ds_push(d, ids, k, 1);
    }
}

void llm_dataset_split(llm_dataset *all, llm_dataset *val, double val_frac, uint64_t seed) {
    memset(val, 0, sizeof *val);
    int nv = (int)floor(val_frac * all->n + 0.5);
    if (val_frac > 0 && nv < 1 && all->n >= 2) nv = 1;
    if (nv >= all->n) nv = all->n - 1;
    if (nv <= 0) return;
    int32_t *idx = xmalloc((size_t)all->n * sizeof *idx);
    for (int i = 0; i < all->n; i++) idx[i] = i;
    rng_t g;
    rng_init(&g, seed, 999);
    rng_shuffle_int(&g, idx, (size_t)all->n);
    char *is_val = xcalloc((size_t)all->n, 1);
    for (int i = 0; i < nv; i++) is_val[idx[i]] = 1;
    llm_dataset tr = {0};
    for (int i = 0; i < all->n; i++) ds_push(is_val[i] ? val : &tr, all->ex[i].tok, all->ex[i].n, all->ex[i].loss_from);
    tr.truncated = all->truncated, tr.dropped = all->dropped;
    free(all->ex);
    *all = tr;
    free(idx);
    free(is_val);
}

void llm_dataset_free(llm_dataset *d) {
    for (int i = 0; i < d->n; i++) free((void *)d->ex[i].tok);
    free(d->ex);
    memset(d, 0, sizeof *d);
}

/* ---------------------------------------------------------------- checkpoints */


typedef struct {
    long step, pos, micro;
} run_state;

static int save_checkpoint(llm_trainer *t, const llm_adamw *opt, const llm_run_opts *o, const run_state *s, int n_train,
                           char *path, size_t pathlen, char *err, size_t errlen) {
    char f[4400];
    snprintf(path, pathlen, "%s/checkpoint-%ld", o->out, s->step);
    char *tmp = atomic_dir_begin(path);
    if (!tmp) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return -1; }
    if (o->save(o->save_ctx, tmp, err, errlen) != 0) { free(tmp); return -1; }
    llm_param *p;
    int np = llm_trainer_params(t, &p);
    llm_tensor *ts = xcalloc((size_t)np * 3, sizeof *ts);
    char **names = xcalloc((size_t)np * 3, sizeof *names);
    for (int i = 0; i < np; i++)
        for (int j = 0; j < 3; j++) {
            const char *suf[] = {"", ".exp_avg", ".exp_avg_sq"};
            const float *src[] = {p[i].w, opt->m[i], opt->v[i]};
            size_t nl = strlen(p[i].name) + 16;
            names[3 * i + j] = xmalloc(nl);
            snprintf(names[3 * i + j], nl, "%s%s", p[i].name, suf[j]);
            ts[3 * i + j] = (llm_tensor){.name = names[3 * i + j], .dtype = LLM_F32, .ndim = p[i].ndim,
                                         .shape = {p[i].shape[0], p[i].shape[1]}, .data = src[j], .nbytes = p[i].n * 4};
        }
    char v[5][32];
    snprintf(v[0], sizeof v[0], "%ld", s->step);
    snprintf(v[1], sizeof v[1], "%ld", s->pos);
    snprintf(v[2], sizeof v[2], "%ld", s->micro);
    snprintf(v[3], sizeof v[3], "%llu", (unsigned long long)o->seed);
    snprintf(v[4], sizeof v[4], "%d", n_train);
    const char *meta[] = {"format", "itrek-trainer-state-1", "step", v[0], "examples_seen", v[1], "micro_batches", v[2],
                          "seed", v[3], "train_examples", v[4]};
    snprintf(f, sizeof f, "%s/trainer_state.safetensors", tmp);
    int rc = st_write(f, ts, 3 * np, meta, 6, err, errlen);
    for (int i = 0; i < 3 * np; i++) free(names[i]);
    free(names);
    free(ts);
    if (rc == 0 && atomic_dir_commit(tmp, path) != 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        rc = -1;
    }
    free(tmp);
    return rc;
}

static int meta_long(st_file *st, const char *key, long *out) {
    const char *v = st_metadata(st, key);
    if (!v) return -1;
    char *end;
    *out = strtol(v, &end, 10);
    return *end ? -1 : 0;
}

static int load_checkpoint(llm_trainer *t, llm_adamw *opt, const llm_run_opts *o, run_state *s, int n_train, char *err,
                           size_t errlen) {
    char f[4200];
    snprintf(f, sizeof f, "%s/trainer_state.safetensors", o->resume);
    st_file *st = st_open(f, err, errlen);
    if (!st) return -1;
    long seed, ntr;
    const char *fmt = st_metadata(st, "format");
    int rc = -1;
    if (!fmt || strcmp(fmt, "itrek-trainer-state-1") || meta_long(st, "step", &s->step) || meta_long(st, "examples_seen", &s->pos) ||
        meta_long(st, "micro_batches", &s->micro) || meta_long(st, "seed", &seed) || meta_long(st, "train_examples", &ntr)) {
        snprintf(err, errlen, "%s: not an ITREK trainer state (metadata missing)", f);
        goto out;
    }
    if ((uint64_t)seed != o->seed || ntr != n_train) {
        snprintf(err, errlen, "%s: checkpoint was made with seed %ld and %ld training examples, this run has seed %llu and %d",
                 f, seed, ntr, (unsigned long long)o->seed, n_train);
        goto out;
    }
    llm_param *p;
    int np = llm_trainer_params(t, &p);
    for (int i = 0; i < np; i++)
        for (int j = 0; j < 3; j++) {
            const char *suf[] = {"", ".exp_avg", ".exp_avg_sq"};
            float *dst[] = {p[i].w, opt->m[i], opt->v[i]};
            char nm[256];
            snprintf(nm, sizeof nm, "%s%s", p[i].name, suf[j]);
            const llm_tensor *x = st_find(st, nm);
            if (!x || x->dtype != LLM_F32 || x->nbytes != p[i].n * 4) {
                snprintf(err, errlen, "%s: tensor %s is missing or has the wrong size", f, nm);
                goto out;
            }
            memcpy(dst[j], x->data, x->nbytes);
        }
    if (st_count(st) != 3 * np) { snprintf(err, errlen, "%s: %d tensors, this run trains %d", f, st_count(st) / 3, np); goto out; }
    opt->step = s->step;
    rc = 0;
out:
    st_close(st);
    return rc;
}

/* ---------------------------------------------------------------- the loop */

static double eval_loss(llm_trainer *t, const llm_dataset *val, int batch, long *tokens, char *err, size_t errlen) {
    double sum = 0;
    long nt_all = 0;
    for (int i = 0; i < val->n; i += batch) {
        int nb = val->n - i < batch ? val->n - i : batch;
        double loss;
        long nt;
        if (llm_trainer_run(t, val->ex + i, nb, 0, 1.0f, 0, NULL, &loss, &nt, err, errlen) != 0) return NAN;
        sum += loss * (double)nt;
        nt_all += nt;
        for (int j = 0; j < nb; j++) *tokens += val->ex[i + j].n;
    }
    return nt_all ? sum / (double)nt_all : NAN;
}

static void log_json_num(FILE *fp, const char *key, double v) {
    if (isfinite(v)) fprintf(fp, ",\"%s\":%.9g", key, v);
    else fprintf(fp, ",\"%s\":null", key);
}

int llm_train_loop(llm_trainer *t, const llm_dataset *train, const llm_dataset *val, const llm_run_opts *o,
                   llm_run_result *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    res->last_loss = res->last_val_loss = NAN;
    if (train->n == 0) { snprintf(err, errlen, "no training examples"); return -1; }
    llm_param *p;
    int np = llm_trainer_params(t, &p), n = train->n, rc = -1;
    llm_adamw *opt = llm_adamw_new(p, np);
    run_state s = {0, 0, 0};
    if (o->resume && load_checkpoint(t, opt, o, &s, n, err, errlen) != 0) { llm_adamw_free(opt); return -1; }
    FILE *log = NULL;
    if (o->log_path && !(log = fopen(o->log_path, o->resume ? "a" : "w"))) {
        snprintf(err, errlen, "%s: %s", o->log_path, strerror(errno));
        llm_adamw_free(opt);
        return -1;
    }
    int32_t *perm = xmalloc((size_t)n * sizeof *perm);
    long perm_epoch = -1;
    llm_example *mb = xmalloc((size_t)o->batch * sizeof *mb);
    char **kept = xcalloc((size_t)(o->keep_ckpt > 0 ? o->keep_ckpt : 1), sizeof *kept);
    int n_kept = 0;
    progress pr;
    progress_start(&pr, "lora-train", (uint64_t)o->steps, o->quiet, o->log_every);
    double t_run = 0;
    long tok_run = 0;
    while (s.step < o->steps) {
        if (o->stop && *o->stop) {
            if (save_checkpoint(t, opt, o, &s, n, res->checkpoint, sizeof res->checkpoint, err, errlen) != 0) goto out;
            rc = 1;
            goto out;
        }
        double t0 = now_seconds(), loss = 0;
        long tokens = 0;
        llm_trainer_zero_grad(t);
        for (int a = 0; a < o->accum; a++) {
            for (int b = 0; b < o->batch; b++, s.pos++) {
                long epoch = s.pos / n;
                if (epoch != perm_epoch) {
                    for (int i = 0; i < n; i++) perm[i] = i;
                    rng_t g;
                    rng_init(&g, o->seed, 1000 + (uint64_t)epoch);
                    rng_shuffle_int(&g, perm, (size_t)n);
                    perm_epoch = epoch;
                }
                mb[b] = train->ex[perm[s.pos % n]];
                tokens += mb[b].n;
            }
            s.micro++;
            double l;
            long nt;
            if (llm_trainer_run(t, mb, o->batch, 1, 1.0f / (float)o->accum, (uint64_t)s.micro, NULL, &l, &nt, err, errlen) != 0)
                goto out;
            loss += l / o->accum;
        }
        double norm = llm_clip_grad(p, np, o->clip);
        float lr = llm_lr_cosine(s.step, o->lr, o->warmup, o->steps);
        llm_adamw_step(opt, p, np, &o->adam, lr);
        s.step++;
        double dt = now_seconds() - t0;
        t_run += dt;
        tok_run += tokens;
        res->last_loss = loss;
        double vl = NAN;
        int do_eval = val && val->n > 0 && ((o->eval_every > 0 && s.step % o->eval_every == 0) || s.step == o->steps);
        if (do_eval) {
            long vt = 0;
            vl = eval_loss(t, val, o->batch, &vt, err, errlen);
            if (isnan(vl)) goto out;
            res->last_val_loss = vl;
        }
        if (log) {
            fprintf(log, "{\"step\":%ld", s.step);
            log_json_num(log, "loss", loss);
            log_json_num(log, "lr", lr);
            log_json_num(log, "grad_norm", norm);
            fprintf(log, ",\"tokens\":%ld", tokens);
            log_json_num(log, "tokens_per_s", dt > 0 ? tokens / dt : 0);
            if (do_eval) log_json_num(log, "val_loss", vl);
            fputs("}\n", log);
            fflush(log);
        }
        char extra[160];
        snprintf(extra, sizeof extra, "loss %.4f lr %.3g %.0f tok/s%s", loss, lr, dt > 0 ? tokens / dt : 0.0, "");
        if (do_eval) snprintf(extra + strlen(extra), sizeof extra - strlen(extra), " val %.4f", vl);
        progress_update(&pr, (uint64_t)s.step, extra);
        if (o->ckpt_every > 0 && s.step % o->ckpt_every == 0) {
            if (save_checkpoint(t, opt, o, &s, n, res->checkpoint, sizeof res->checkpoint, err, errlen) != 0) goto out;
            if (o->keep_ckpt > 0) {
                if (n_kept == o->keep_ckpt) {
                    remove_flat_dir(kept[0]);
                    free(kept[0]);
                    memmove(kept, kept + 1, (size_t)(n_kept - 1) * sizeof *kept);
                    n_kept--;
                }
                kept[n_kept++] = xstrdup(res->checkpoint);
            }
        }
    }
    progress_done(&pr, (uint64_t)s.step, NULL);
    rc = 0;
out:
    res->steps_done = s.step;
    res->tokens_per_s = t_run > 0 ? tok_run / t_run : 0;
    if (log && fclose(log) != 0 && rc == 0) { snprintf(err, errlen, "%s: write failed", o->log_path); rc = -1; }
    for (int i = 0; i < n_kept; i++) free(kept[i]);
    free(kept);
    free(perm);
    free(mb);
    llm_adamw_free(opt);
    return rc;
}
