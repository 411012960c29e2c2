/* scheduler.c - answering a window of users: one scheduler keeps up to `batch` queries running
 * in every forward pass, a query's prompt suffix prefilled in the same pass as the other
 * queries' decode steps; each user's answers go out once all of them are done (see internal.h).
 * Generation and scoring themselves are common/llm's (llm_forward, llm_sample,
 * llm_log_softmax_at); what is RecRanker's here is what each task's answer is made of. */
#include "rerank/internal.h"

#include "io/err.h"
#include "io/rng.h"
#include "rerank/title_trie.h"

#include <stdlib.h>
#include <string.h>

enum { PH_PROMPT, PH_STEP, PH_CONT };

typedef struct {
    int qi;       /* query index, -1 when the slot is free */
    query *q;
    int phase;
    bool ready;   /* logits already known (an empty suffix after a prefix) */
    llm_seq *seq;
    const int *in;
    int n_in, last;
    float *logits;
    rng_t rng;
    int *out, n_out, cap; /* generated tokens */
    rank_list list;
    int n_opt;
    llm_seq **fk;
    float **cl;
    double *lp;
} job;

/* Score mode: the token sequences a job scores (teacher-forced) and their lengths: the ratings
 * or Yes/No of its prompt tail, or with listwise likelihood every title as the first item of the
 * answer (title + separator; title + EOS when it is the only candidate). */
static void job_options(const rk *c, const job *j, const int *const **opt, const int **on) {
    const query *q = j->q;
    if (q->task == T_LIST) {
        *opt = (const int *const *)(q->n_titles > 1 ? q->tsep : q->teos);
        *on = q->n_titles > 1 ? q->nsep : q->neos;
    } else {
        *opt = (const int *const *)c->os[q->os].tok;
        *on = c->os[q->os].n;
    }
}

/* Listwise likelihood: the best min(5, n) titles by score, best first (ties: the lower index). */
static int top_titles(const double *lp, int n, int *best) {
    int k = n < RTASK_LIST_TOP ? n : RTASK_LIST_TOP;
    for (int r = 0; r < k; r++) {
        int b = -1;
        for (int i = 0; i < n; i++) {
            bool taken = false;
            for (int x = 0; x < r; x++) taken |= best[x] == i;
            if (!taken && (b < 0 || lp[i] > lp[b])) b = i;
        }
        best[r] = b;
    }
    return k;
}

static bool job_finish(rk *c, job *j) {
    answer *a = &c->ans[j->qi];
    const query *q = j->q;
    if (c->o->decode == RANK_GENERATE) {
        size_t need = tok_decode(c->m->tok, j->out, j->n_out, NULL, 0);
        a->text = xmalloc(need + 1);
        tok_decode(c->m->tok, j->out, j->n_out, a->text, need + 1);
    } else if (q->task == T_LIST) {
        int chosen[RTASK_LIST_TOP], n_chosen;
        if (c->o->list_likelihood) {
            n_chosen = top_titles(j->lp, j->n_opt, chosen);
            a->n_scores = j->n_opt;
            a->scores = xmalloc(sizeof *a->scores * (size_t)j->n_opt);
            memcpy(a->scores, j->lp, sizeof *a->scores * (size_t)j->n_opt);
            for (int v = 0; v < j->n_opt; v++) { llm_seq_free(j->fk[v]); free(j->cl[v]); }
            free(j->fk); free(j->cl); free(j->lp);
        } else {
            n_chosen = j->list.n_chosen;
            memcpy(chosen, j->list.chosen, sizeof chosen[0] * (size_t)n_chosen);
            rank_list_free(&j->list);
        }
        size_t L = 1;
        char *it[RTASK_LIST_TOP];
        for (int k = 0; k < n_chosen; k++) {
            it[k] = rerank_render_item(c, q->titles[chosen[k]]);
            L += strlen(it[k]) + strlen(c->sep);
        }
        a->text = xmalloc(L);
        a->text[0] = 0;
        for (int k = 0; k < n_chosen; k++) {
            if (k) strcat(a->text, c->sep);
            strcat(a->text, it[k]);
            free(it[k]);
        }
    } else {
        a->n_scores = j->n_opt;
        a->scores = xmalloc(sizeof *a->scores * (size_t)j->n_opt);
        memcpy(a->scores, j->lp, sizeof *a->scores * (size_t)j->n_opt);
        int best = 0;
        if (q->task == T_PAIR) best = j->lp[0] > j->lp[1] ? 0 : 1; /* fuse: Yes iff logp Yes > logp No */
        else for (int v = 1; v < j->n_opt; v++) if (j->lp[v] > j->lp[best]) best = v;
        a->text = xstrdup(c->opt_text[q->task][best]);
        for (int v = 0; v < j->n_opt; v++) { llm_seq_free(j->fk[v]); free(j->cl[v]); }
        free(j->fk); free(j->cl); free(j->lp);
    }
    a->done = true;
    llm_seq_free(j->seq);
    free(j->out);
    free(j->logits);
    j->qi = -1;
    c->done_q++;
    c->st->queries++;
    return true;
}

static void job_start(rk *c, job *j, int qi) {
    query *q = &c->q[qi];
    group *g = &c->g[q->group];
    char err[512];
    memset(j, 0, sizeof *j);
    j->qi = qi;
    j->q = q;
    int start = 0;
    if (c->o->prefix_sharing && g->n_shared > 0) {
        if (!g->seq) {
            g->seq = llm_seq_new(c->m);
            llm_batch b = {g->seq, g->toks, g->n_shared, LLM_LOGITS_LAST, NULL};
            if (llm_forward(c->m, &b, 1, err, sizeof err) != 0) die_at(c->qname, q->rec, "%s", err);
            c->st->computed_tokens += g->n_shared;
        }
        j->seq = llm_seq_fork(g->seq);
        start = g->n_shared;
    } else {
        j->seq = llm_seq_new(c->m);
    }
    if (++g->started == g->n_q && g->seq) { llm_seq_free(g->seq); g->seq = NULL; }
    j->in = q->toks + start;
    j->n_in = q->n_toks - start;
    c->st->prompt_tokens += q->n_toks;
    c->st->computed_tokens += j->n_in;
    j->logits = xmalloc(sizeof *j->logits * (size_t)c->V);
    j->phase = PH_PROMPT;
    if (j->n_in == 0) {
        memcpy(j->logits, llm_seq_logits(j->seq), sizeof *j->logits * (size_t)c->V);
        j->ready = true;
    }
    if (c->o->decode == RANK_GENERATE) {
        rng_init(&j->rng, c->o->seed, (uint64_t)q->id);
        j->cap = 16;
        j->out = xmalloc(sizeof *j->out * (size_t)j->cap);
    } else if (q->task == T_LIST && !c->o->list_likelihood) {
        rank_list_init(&j->list, (const int *const *)q->tsep, q->nsep, (const int *const *)q->teos, q->neos, q->n_titles,
                       RTASK_LIST_TOP);
    } else {
        j->n_opt = q->task == T_LIST ? q->n_titles : c->n_opt[q->task];
        j->fk = xcalloc((size_t)j->n_opt, sizeof *j->fk);
        j->cl = xcalloc((size_t)j->n_opt, sizeof *j->cl);
        j->lp = xcalloc((size_t)j->n_opt, sizeof *j->lp);
    }
}

/* After a forward: the job's logits are in j->logits (PH_PROMPT/PH_STEP) or its continuation
 * rows in j->cl (PH_CONT). Returns true when the job is finished. */
static bool job_advance(rk *c, job *j) {
    const rank_opts *o = c->o;
    int V = c->V;
    if (o->decode == RANK_GENERATE) {
        llm_sampling s = llm_sampling_default();
        s.temperature = (float)o->temperature; s.top_k = o->top_k; s.top_p = (float)o->top_p; s.max_new = o->max_new; s.seed = o->seed;
        int tok = llm_sample(j->logits, V, &s, &j->rng);
        c->st->generated_tokens++;
        if (tok == c->eos) return true;
        if (j->n_out == j->cap) j->out = xrealloc(j->out, sizeof *j->out * (size_t)(j->cap *= 2));
        j->out[j->n_out++] = tok;
        if (j->n_out >= o->max_new || llm_seq_len(j->seq) >= c->m->cfg.max_seq_len) return true;
        j->last = tok; j->in = &j->last; j->n_in = 1; j->phase = PH_STEP;
        return false;
    }
    const query *q = j->q;
    if (q->task == T_LIST && !o->list_likelihood) {
        int tok = rank_list_choose(&j->list, j->logits, V);
        if (tok < 0) return true; /* cannot happen: a live trie always has a way on */
        c->st->generated_tokens++;
        if (rank_list_push(&j->list, tok)) return true;
        j->last = tok; j->in = &j->last; j->n_in = 1; j->phase = PH_STEP;
        return false;
    }
    const int *const *opt, *on;
    job_options(c, j, &opt, &on);
    if (j->phase == PH_PROMPT) {
        bool more = false;
        for (int v = 0; v < j->n_opt; v++) {
            j->lp[v] = llm_log_softmax_at(j->logits, V, opt[v][0]);
            if (on[v] >= 2) {
                j->fk[v] = llm_seq_fork(j->seq);
                j->cl[v] = xmalloc(sizeof(float) * (size_t)(on[v] - 1) * V);
                more = true;
            }
        }
        j->phase = PH_CONT;
        return !more;
    }
    for (int v = 0; v < j->n_opt; v++)
        for (int k = 1; k < on[v]; k++) j->lp[v] += llm_log_softmax_at(j->cl[v] + (size_t)(k - 1) * V, V, opt[v][k]);
    return true;
}

void rerank_run_window(rk *c, const int *users, int nu) {
    const rank_opts *o = c->o;
    int B = o->batch > 0 ? o->batch : 1;
    /* the window's queries in order */
    int nq = 0;
    for (int k = 0; k < nu; k++) nq += c->u[users[k]].n_q;
    int *qs = xmalloc(sizeof *qs * (size_t)(nq ? nq : 1));
    nq = 0;
    for (int k = 0; k < nu; k++) {
        const user_ent *u = &c->u[users[k]];
        for (int j = 0; j < u->n_q; j++) { qs[nq++] = u->q[j]; c->ans[u->q[j]] = (answer){0}; }
        for (int j = 0; j < u->n_q; j++) c->g[c->q[u->q[j]].group].started = 0;
    }
    job *jobs = xmalloc(sizeof *jobs * (size_t)B);
    for (int s = 0; s < B; s++) jobs[s].qi = -1;
    int max_items = B * ((c->max_opts > MAX_SCALE ? c->max_opts : MAX_SCALE) + 1);
    llm_batch *b = xmalloc(sizeof *b * (size_t)max_items);
    int next = 0, active = 0, flushed = 0;
    char err[512], extra[96];
    for (;;) {
        /* start waiting queries in free slots, within the step's prompt-token budget */
        long step_tokens = 0;
        for (int s = 0; s < B && next < nq; s++) {
            if (jobs[s].qi >= 0) continue;
            const query *q = &c->q[qs[next]];
            if (active > 0 && step_tokens > 0 && step_tokens + q->n_toks > STEP_TOKENS) break;
            job_start(c, &jobs[s], qs[next++]);
            step_tokens += jobs[s].n_in;
            active++;
            if (o->decode == RANK_GENERATE && o->max_new <= 0) { job_finish(c, &jobs[s]); active--; s--; } /* empty answer */
        }
        if (active == 0 && next >= nq) break;
        int nb = 0;
        for (int s = 0; s < B; s++) {
            job *j = &jobs[s];
            if (j->qi < 0 || j->ready) continue;
            if (j->phase == PH_CONT) {
                const int *const *opt, *on;
                job_options(c, j, &opt, &on);
                for (int v = 0; v < j->n_opt; v++)
                    if (j->fk[v]) b[nb++] = (llm_batch){j->fk[v], opt[v], on[v] - 1, LLM_LOGITS_ALL, j->cl[v]};
            } else {
                b[nb++] = (llm_batch){j->seq, j->in, j->n_in, LLM_LOGITS_LAST, j->logits};
            }
        }
        if (nb > 0 && llm_forward(c->m, b, nb, err, sizeof err) != 0) die_at(c->qname, -1, "%s", err);
        for (int s = 0; s < B; s++) {
            job *j = &jobs[s];
            if (j->qi < 0) continue;
            if (j->phase == PH_CONT) {
                const int *const *opt, *on;
                job_options(c, j, &opt, &on);
                for (int v = 0; v < j->n_opt; v++) if (j->fk[v]) c->st->scored_tokens += on[v] - 1;
            }
            j->ready = false;
            if (job_advance(c, j)) { job_finish(c, j); active--; }
        }
        /* write the users whose queries are all answered, in order */
        while (flushed < nu) {
            const user_ent *u = &c->u[users[flushed]];
            bool all = true;
            for (int j = 0; j < u->n_q && all; j++) all = c->ans[u->q[j]].done;
            if (!all) break;
            rerank_emit_user(c, u);
            flushed++;
            c->st->users++;
        }
        double el = now_seconds() - c->t0;
        snprintf(extra, sizeof extra, "%.1f queries/s, %.0f tokens/s", el > 0 ? c->done_q / el : 0,
                 el > 0 ? (c->st->computed_tokens + c->st->generated_tokens + c->st->scored_tokens) / el : 0);
        progress_update(&c->pr, (uint64_t)c->done_q, extra);
    }
    while (flushed < nu) { rerank_emit_user(c, &c->u[users[flushed++]]); c->st->users++; }
    free(jobs); free(b); free(qs);
}
