/* rank.c - the reranker stage (see rank.h and docs/rank.md).
 *
 * Flow: read and validate every query; keep the shard's users (first-appearance order, each
 * user's queries in file order); load the model; tokenise every prompt (checking it fits the
 * context with its answer); then answer window after window (`batch` users each) with the
 * scheduler. Answers go out user by user, in order: to stdout, or appended (and flushed) to
 * OUT.partial, which becomes OUT (records in query order) once every query is answered.
 */
#include "rerank/internal.h"

#include "io/err.h"

#include <stdlib.h>
#include <string.h>

void rank_opts_default(rank_opts *o) {
    memset(o, 0, sizeof *o);
    o->decode = RANK_GENERATE;
    o->temperature = 0.1;
    o->top_k = 10;
    o->top_p = 0.1;
    o->max_new = 300;
    o->seed = 1;
    o->batch = 16;
    o->prefix_sharing = true;
    o->shard_n = 1;
    o->log_every = 10;
}

void rank_run(const rank_opts *o, rank_stats *st) {
    rk cc = {0}, *c = &cc;
    c->o = o;
    memset(st, 0, sizeof *st);
    c->st = st;
    bool to_file = o->output && strcmp(o->output, "-") != 0;
    rerank_read_queries(c);

    char err[512];
    llm_load_opts lo = {.int8 = o->int8, .threads = o->threads, .adapter = o->adapter, .device = o->device};
    c->m = llm_load(o->model, &lo, err, sizeof err);
    if (!c->m) die("%s", err);
    if (!c->m->tok) die_at(o->model, -1, "the model has no tokenizer.model");
    c->V = c->m->cfg.vocab_size;
    c->eos = c->m->cfg.eos_id >= 0 ? c->m->cfg.eos_id : tok_eos(c->m->tok);
    if (c->eos < 0 || c->eos >= c->V) die_at(o->model, -1, "the model has no EOS token");
    rerank_set_options(c);
    rerank_tokenise(c);
    rerank_pack_header(c);
    c->ans = xcalloc(c->n_q ? c->n_q : 1, sizeof *c->ans);

    /* answers from an earlier run */
    id_map have;
    id_map_init(&have);
    rerank_open_output(c, to_file, &have);

    /* windows of `batch` users; a window with every answer kept is skipped */
    int W = o->batch > 0 ? o->batch : 1;
    long todo = 0;
    for (size_t k = 0; k < c->n_su; k++) todo += c->u[c->su[k]].n_q;
    c->t0 = now_seconds();
    progress_start(&c->pr, "rank", (uint64_t)todo, o->quiet, o->log_every);
    bool stopped = false;
    for (size_t w0 = 0; w0 < c->n_su; w0 += (size_t)W) {
        int nu = (int)((c->n_su - w0) < (size_t)W ? c->n_su - w0 : (size_t)W);
        long nq = 0, kept = 0;
        for (int k = 0; k < nu; k++) {
            const user_ent *u = &c->u[c->su[w0 + (size_t)k]];
            for (int j = 0; j < u->n_q; j++) { nq++; kept += id_map_get(&have, c->q[u->q[j]].id) >= 0; }
        }
        if (kept == nq) { st->skipped += nq; c->done_q += nq; continue; }
        if (o->max_users > 0 && st->users >= o->max_users) { stopped = true; break; }
        rerank_run_window(c, c->su + w0, nu);
    }
    st->seconds = now_seconds() - c->t0;
    double el = st->seconds;
    char extra[96];
    snprintf(extra, sizeof extra, "%.1f queries/s, %.0f tokens/s", el > 0 ? st->queries / el : 0,
             el > 0 ? (st->computed_tokens + st->generated_tokens + st->scored_tokens) / el : 0);
    progress_done(&c->pr, (uint64_t)c->done_q, extra);
    id_map_free(&have);
    rerank_close_output(c, stopped);
    if (!o->quiet) {
        long tok = st->computed_tokens + st->generated_tokens + st->scored_tokens;
        fprintf(stderr,
                "%s: %ld queries (%ld users, %ld kept from an earlier run), prompt tokens %ld (computed %ld), "
                "generated %ld, scored %ld, %.2f s, %.2f queries/s, %.1f tokens/s\n",
                err_prog(), st->queries, st->users, st->skipped, st->prompt_tokens, st->computed_tokens,
                st->generated_tokens, st->scored_tokens, el, el > 0 ? st->queries / el : 0, el > 0 ? tok / el : 0);
        if (stopped)
            fprintf(stderr, "%s: stopped after %ld users (--max-users); %s holds the answers so far: rerun with --resume\n",
                    err_prog(), st->users, c->ppath);
    }

    rerank_free_queries(c);
    free(c->ans); free(c->hdr); free(c->ppath);
    llm_free(c->m);
}
