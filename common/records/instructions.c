/* instructions.c - itrek.instructions writer and reader (see instructions.h). */
#include "records/instructions.h"

#include "records/header.h"

void instructions_write_header(stream_writer *w, const prompt_params *p, const instructions_sampling *s, prompt_token_stats *ts) {
    pk_map h, m, st, pu, pool, sk;
    records_header_begin(&h, sw_pk(w), INSTRUCTIONS_SCHEMA, 1);
    pkm_begin(&m, pkm_key(&h, "params"));
    prompt_params_pack(&m, p);
    pkm_str(&m, "sampling", s->uniform ? "uniform" : "adaptive");
    pkm_int(&m, "draws", s->draws);
    pkm_num(&m, "pool", s->pool);
    pkm_num(&m, "penalty", s->penalty);
    pkm_int(&m, "clusters", s->clusters);
    pkm_str(&m, "positives", s->next_positives ? "next" : "random");
    pkm_int(&m, "hard_negatives", s->hard_negatives);
    pkm_end(&m);
    prompt_inputs_pack(&h, p);
    pkm_begin(&st, pkm_key(&h, "stats"));
    pkm_int(&st, "records", s->records);
    pkm_int(&st, "eligible", s->eligible);
    pkm_int(&st, "draws", s->n_draws);
    pkm_int(&st, "distinct", s->distinct);
    pkm_begin(&pu, pkm_key(&st, "per_user"));
    pkm_int(&pu, "min", s->min_per_user);
    pkm_num(&pu, "mean", s->mean_per_user);
    pkm_int(&pu, "max", s->max_per_user);
    pkm_end(&pu);
    pkm_begin(&pool, pkm_key(&st, "pool"));
    pkm_int(&pool, "importance", s->n_importance);
    pkm_int(&pool, "cluster", s->n_cluster);
    pkm_int(&pool, "kmeans_iters", s->kmeans_iters);
    pkm_num(&pool, "kmeans_inertia", s->kmeans_inertia);
    msgpack_packer *cs = pkm_key(&pool, "cluster_sizes");
    msgpack_pack_array(cs, (size_t)s->n_cluster_sizes);
    for (int k = 0; k < s->n_cluster_sizes; k++) msgpack_pack_int(cs, s->cluster_sizes[k]);
    pkm_end(&pool);
    pkm_begin(&sk, pkm_key(&st, "skipped"));
    for (int t = 0; t < RTASK_COUNT; t++) pkm_int(&sk, rtask_name(t), s->skipped[t]);
    pkm_end(&sk);
    prompt_token_stats_pack(&st, ts, p->tokenizer);
    pkm_end(&st);
    pkm_end(&h);
    sw_end_record(w);
}

void instructions_write(stream_writer *w, const instruction_rec *r) {
    pk_map m;
    pkm_begin(&m, sw_pk(w));
    pkm_int(&m, "id", r->id);
    pkm_str(&m, "task", rtask_name(r->task));
    pkm_int(&m, "user", r->user);
    pkm_str(&m, "prompt", r->prompt);
    pkm_str(&m, "response", r->response);
    pkm_int(&m, "prefix_len", (int64_t)r->prefix_len);
    pkm_ints(&m, "items", r->items, (size_t)r->n_items);
    pkm_ints(&m, "history", r->history, (size_t)r->n_history);
    pkm_int(&m, "tokens", r->tokens);
    pkm_int(&m, "dropped", r->dropped);
    pkm_end(&m);
    sw_end_record(w);
}

bool instructions_next_text(stream_reader *r, char **prompt, char **response) {
    const msgpack_object *rec = sr_next(r);
    if (!rec) return false;
    *prompt = sr_strdup(r, rec, "prompt");
    *response = sr_strdup(r, rec, "response");
    return true;
}
