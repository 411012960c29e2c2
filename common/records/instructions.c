/* instructions.c - itrek.instructions writer and reader (see instructions.h). */
#include "records/instructions.h"

#include "io/err.h"
#include "records/fields.h"
#include "records/header.h"

#include <stdlib.h>
#include <string.h>

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
    sw_map_end(w, &h);
}

void instructions_write(stream_writer *w, const instruction_rec *r) {
    pk_map m;
    sw_map_begin(w, &m);
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
    sw_map_end(w, &m);
}

bool instructions_next_text(stream_reader *r, char **prompt, char **response) {
    const msgpack_object *rec = sr_next(r);
    if (!rec) return false;
    *prompt = sr_strdup(r, rec, "prompt");
    *response = sr_strdup(r, rec, "response");
    return true;
}

void instructions_header_read(stream_reader *r, instructions_header *h) {
    memset(h, 0, sizeof *h);
    h->source = xstrdup(sr_name(r));
    h->scheme = records_param_str(r, "scheme", false);
    h->leaky = records_param_leaky(r);
}

void instructions_header_free(instructions_header *h) {
    free(h->source);
    free(h->scheme);
    memset(h, 0, sizeof *h);
}

void instruction_read_free(instruction_read *t) {
    free(t->prompt);
    free(t->response);
    free(t->items);
    free(t->history);
    memset(t, 0, sizeof *t);
}

bool instructions_next(stream_reader *r, unsigned need, instruction_read *t) {
    instruction_read_free(t);
    const msgpack_object *rec = sr_next(r);
    if (!rec) return false;
    t->rec = sr_index(r);
    t->prefix_len = t->tokens = t->dropped = -1;
    t->id = sr_int(r, rec, "id");
    t->task = records_task(r, rec);
    t->user = sr_int(r, rec, "user");
    if ((need & IR_PROMPT) || sr_has(rec, "prompt")) {
        t->prompt = sr_strdup(r, rec, "prompt");
        t->prompt_len = strlen(t->prompt);
    }
    if (sr_has(rec, "prefix_len")) {
        t->prefix_len = sr_int(r, rec, "prefix_len");
        if (t->prefix_len < 0 || (uint64_t)t->prefix_len > t->prompt_len)
            sr_fail(r, "field 'prefix_len': %lld is outside the prompt's %zu bytes", (long long)t->prefix_len, t->prompt_len);
    }
    if ((need & IR_RESPONSE) || sr_has(rec, "response")) {
        t->response = sr_strdup(r, rec, "response");
        t->response_len = strlen(t->response);
    }
    if ((need & IR_ITEMS) || sr_has(rec, "items")) {
        const msgpack_object_array *a = sr_array(r, rec, "items");
        t->n_items = (int)a->size;
        t->items = records_item_ids(r, a, "items");
    }
    if ((need & IR_HISTORY) || sr_has(rec, "history")) {
        const msgpack_object_array *a = sr_array(r, rec, "history");
        t->n_history = (int)a->size;
        t->history = records_item_ids(r, a, "history");
    }
    if (sr_has(rec, "tokens")) t->tokens = sr_int(r, rec, "tokens");
    if (sr_has(rec, "dropped")) t->dropped = sr_int(r, rec, "dropped");
    return true;
}
