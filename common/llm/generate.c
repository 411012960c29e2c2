/* generate.c - sampler, batched generation scheduler and continuation scoring. */
#include "llm/generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"

llm_sampling llm_sampling_default(void) {
    return (llm_sampling){.temperature = 0, .top_k = 0, .top_p = 1, .max_new = 128, .stop_eos = 1, .seed = 1};
}

double llm_log_softmax_at(const float *x, int V, int id) {
    float mx = x[0];
    for (int i = 1; i < V; i++) if (x[i] > mx) mx = x[i];
    double s = 0;
    for (int i = 0; i < V; i++) s += exp((double)x[i] - mx);
    return (double)x[id] - mx - log(s);
}

typedef struct { float p; int id; } cand;

static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id; /* ties: lower id first, so the order is total and portable */
}

int llm_sample(const float *logits, int V, const llm_sampling *s, rng_t *rng) {
    int best = 0;
    for (int i = 1; i < V; i++) if (logits[i] > logits[best]) best = i;
    if (s->temperature <= 0 || s->top_k == 1) return best;
    cand *c = xmalloc((size_t)V * sizeof *c);
    int n = V;
    if (s->top_k > 0 && s->top_k < V) n = s->top_k;
    if (n <= 256 && n < V) {
        /* partial selection of the n best (same total order as cand_cmp): insertion into c[0..n) */
        int have = 0;
        for (int i = 0; i < V; i++) {
            cand x = {(float)exp(((double)logits[i] - logits[best]) / s->temperature), i};
            if (have == n && cand_cmp(&x, &c[n - 1]) >= 0) continue;
            int j = have < n ? have++ : n - 1;
            while (j > 0 && cand_cmp(&x, &c[j - 1]) < 0) { c[j] = c[j - 1]; j--; }
            c[j] = x;
        }
    } else {
        for (int i = 0; i < V; i++) c[i] = (cand){(float)exp(((double)logits[i] - logits[best]) / s->temperature), i};
        qsort(c, (size_t)V, sizeof *c, cand_cmp); /* descending probability */
    }
    double kept = 0;
    for (int i = 0; i < n; i++) kept += c[i].p;
    if (s->top_p > 0 && s->top_p < 1) {
        double acc = 0;
        for (int i = 0; i < n; i++) {
            acc += c[i].p;
            if (acc >= s->top_p * kept) { n = i + 1; kept = acc; break; }
        }
    }
    double u = rng_uniform(rng) * kept, acc = 0;
    int id = c[n - 1].id;
    for (int i = 0; i < n; i++) {
        acc += c[i].p;
        if (u < acc) { id = c[i].id; break; }
    }
    free(c);
    return id;
}

typedef struct {
    int req;        /* request index, -1 when free */
    llm_seq *seq;
    const int *in;  /* tokens to feed next */
    int n_in;
    int last;       /* the last sampled token (fed on the next step) */
    int cap;
    rng_t rng;
} slot;

static void finish(slot *sl) {
    llm_seq_free(sl->seq);
    sl->seq = NULL;
    sl->req = -1;
}

int llm_generate(llm_model *m, llm_request *req, int n, const llm_sampling *s, int max_batch, char *err,
                 size_t errlen) {
    int V = m->cfg.vocab_size, eos = m->cfg.eos_id, rc = 0;
    if (max_batch < 1) max_batch = 1;
    for (int i = 0; i < n; i++) {
        req[i].out = NULL;
        req[i].n_out = 0;
        req[i].stopped_eos = 0;
        if ((req[i].prefix ? llm_seq_len(req[i].prefix) : 0) + req[i].n_prompt < 1) {
            snprintf(err, errlen, "request %d: empty prompt", i);
            return -1;
        }
        if (req[i].prefix && req[i].n_prompt == 0 && !llm_seq_logits(req[i].prefix)) {
            snprintf(err, errlen, "request %d: prefix has no logits and the prompt is empty", i);
            return -1;
        }
    }
    slot *sl = xcalloc((size_t)max_batch, sizeof *sl);
    for (int j = 0; j < max_batch; j++) sl[j].req = -1;
    llm_batch *b = xmalloc((size_t)max_batch * sizeof *b);
    int *who = xmalloc((size_t)max_batch * sizeof *who);
    float *logits = xmalloc((size_t)max_batch * V * sizeof *logits);
    /* Graphed decode steps (model.h's llm_decode_step; off unless ITREK_CUDA_GRAPHS=1 on a
     * backend with graphs): each cache is reserved once at its final length, so its buffers
     * stay put and a step's graph can be replayed until the batch changes. */
    int graphs = llm_decode_graphs(m, -1);
    llm_seq **dseq = xmalloc((size_t)max_batch * sizeof *dseq);
    int *dtok = xmalloc((size_t)max_batch * sizeof *dtok);
    int next = 0, active = 0;
    for (;;) {
        /* Fill free slots with waiting requests. */
        for (int j = 0; j < max_batch && next < n; j++) {
            if (sl[j].req >= 0) continue;
            llm_request *r = &req[next];
            sl[j] = (slot){.req = next, .seq = r->prefix ? llm_seq_fork(r->prefix) : llm_seq_new(m), .in = r->prompt,
                           .n_in = r->n_prompt, .cap = 16};
            rng_init(&sl[j].rng, s->seed, (uint64_t)next);
            r->out = xmalloc((size_t)sl[j].cap * sizeof *r->out);
            if (s->max_new <= 0) { finish(&sl[j]); next++; j--; continue; }
            if (graphs) { /* the prompt and every fed token (max_new - 1) fit, one spare */
                long total = (long)llm_seq_len(sl[j].seq) + r->n_prompt + s->max_new;
                llm_seq_reserve(sl[j].seq, total < m->cfg.max_seq_len ? (int)total : m->cfg.max_seq_len);
            }
            next++;
            active++;
        }
        if (active == 0) break;
        int nb = 0, single = 1;
        for (int j = 0; j < max_batch; j++) {
            if (sl[j].req < 0) continue;
            if (sl[j].n_in == 0) { /* forked from a prefix with logits: sample straight away */
                memcpy(logits + (size_t)nb * V, llm_seq_logits(sl[j].seq), (size_t)V * sizeof *logits);
                b[nb] = (llm_batch){.seq = sl[j].seq, .n = 0};
            } else
                b[nb] = (llm_batch){sl[j].seq, sl[j].in, sl[j].n_in, LLM_LOGITS_LAST, logits + (size_t)nb * V};
            if (sl[j].n_in != 1) single = 0;
            dseq[nb] = sl[j].seq, dtok[nb] = sl[j].n_in > 0 ? sl[j].in[0] : 0;
            who[nb++] = j;
        }
        if (graphs && single) { /* a pure decode step: the graphed path */
            if (llm_decode_step(m, dseq, dtok, nb, logits, err, errlen) != 0) { rc = -1; break; }
        } else if (llm_forward(m, b, nb, err, errlen) != 0) { rc = -1; break; }
        for (int k = 0; k < nb; k++) {
            slot *x = &sl[who[k]];
            llm_request *r = &req[x->req];
            int tok = llm_sample(logits + (size_t)k * V, V, s, &x->rng);
            if (r->n_out == x->cap) r->out = xrealloc(r->out, (size_t)(x->cap *= 2) * sizeof *r->out);
            r->out[r->n_out++] = tok;
            x->last = tok;
            x->in = &x->last;
            x->n_in = 1;
            int done = r->n_out >= s->max_new || llm_seq_len(x->seq) >= m->cfg.max_seq_len;
            if (s->stop_eos && tok == eos) { r->stopped_eos = 1; done = 1; }
            if (done) { finish(x); active--; }
        }
    }
    for (int j = 0; j < max_batch; j++) if (sl[j].req >= 0) finish(&sl[j]);
    free(sl);
    free(b);
    free(who);
    free(logits);
    free(dseq);
    free(dtok);
    return rc;
}

int llm_score(llm_model *m, llm_seq *prefix, const int *prompt, int n_prompt, const int *const *conts,
              const int *n_conts, int n_cont, double *logprob, char *err, size_t errlen) {
    int V = m->cfg.vocab_size, rc = -1;
    if ((prefix ? llm_seq_len(prefix) : 0) + n_prompt < 1) { snprintf(err, errlen, "empty prompt"); return -1; }
    for (int i = 0; i < n_cont; i++)
        for (int j = 0; j < n_conts[i]; j++)
            if (conts[i][j] < 0 || conts[i][j] >= V) {
                snprintf(err, errlen, "token id %d outside the vocabulary [0, %d)", conts[i][j], V);
                return -1;
            }
    llm_seq *base = prefix ? llm_seq_fork(prefix) : llm_seq_new(m);
    llm_seq **fk = xcalloc((size_t)(n_cont ? n_cont : 1), sizeof *fk);
    llm_batch *b = xmalloc((size_t)(n_cont ? n_cont : 1) * sizeof *b);
    float **out = xcalloc((size_t)(n_cont ? n_cont : 1), sizeof *out);
    if (n_prompt > 0) {
        llm_batch pb = {base, prompt, n_prompt, LLM_LOGITS_LAST, NULL};
        if (llm_forward(m, &pb, 1, err, errlen) != 0) goto done;
    }
    const float *first = llm_seq_logits(base);
    if (!first) { snprintf(err, errlen, "prefix has no logits and the prompt is empty"); goto done; }
    /* Continuation i feeds its tokens 0..n-2 and reads logits at every one of them. */
    int nb = 0;
    for (int i = 0; i < n_cont; i++) {
        if (n_conts[i] < 2) continue;
        fk[i] = llm_seq_fork(base);
        out[i] = xmalloc((size_t)(n_conts[i] - 1) * V * sizeof(float));
        b[nb++] = (llm_batch){fk[i], conts[i], n_conts[i] - 1, LLM_LOGITS_ALL, out[i]};
    }
    if (nb > 0 && llm_forward(m, b, nb, err, errlen) != 0) goto done;
    for (int i = 0; i < n_cont; i++) {
        double lp = 0;
        if (n_conts[i] > 0) lp = llm_log_softmax_at(first, V, conts[i][0]);
        for (int j = 1; j < n_conts[i]; j++) lp += llm_log_softmax_at(out[i] + (size_t)(j - 1) * V, V, conts[i][j]);
        logprob[i] = lp;
    }
    rc = 0;
done:
    for (int i = 0; i < n_cont; i++) { llm_seq_free(fk[i]); free(out[i]); }
    free(fk);
    free(b);
    free(out);
    llm_seq_free(base);
    return rc;
}
