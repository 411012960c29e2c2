/* prompt_params.c - the shared part of the prompt streams' headers (see prompt_params.h). */
#include "records/prompt_params.h"

#include <stdlib.h>

static int cmp_int(const void *a, const void *b) { return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b); }

void prompt_params_pack(pk_map *m, const prompt_params *p) {
    pkm_str(m, "scheme", p->scheme);
    if (p->part) pkm_str(m, "part", p->part);
    msgpack_packer *pk = pkm_key(m, "scale");
    msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, p->scale[0]);
    msgpack_pack_int(pk, p->scale[1]);
    pk = pkm_key(m, "tasks");
    msgpack_pack_array(pk, (size_t)(p->tasks[0] + p->tasks[1] + p->tasks[2]));
    for (int t = 0; t < RTASK_COUNT; t++)
        if (p->tasks[t]) pk_str(pk, rtask_name(t));
    pkm_bool(m, "hint", p->hint);
    pkm_int(m, "history", p->history);
    pkm_int(m, "max_dislikes", p->max_dislikes);
    pkm_num(m, "like", p->like);
    pkm_num(m, "dislike", p->dislike);
    pkm_int(m, "context", p->context);
    pkm_int(m, "reserve", p->reserve);
    pkm_str(m, "tokens", p->tokenizer ? "tokenizer" : "estimate: 1 + bytes/2");
    pkm_int(m, "top", RTASK_LIST_TOP);
    pkm_str(m, "history_order", "oldest first");
    /* leaky only when set, so that honest streams keep their bytes */
    if (p->leaky) {
        pkm_bool(m, "leaky", true);
        pkm_str(m, "hint_rating", "RecRanker's rating matrix: the user's rating in train, valid or test, 0 when unrated, "
                                  "1 decimal (LEAKS held-out ratings; listwise: top by it; pairwise: base)");
    } else
        pkm_str(m, "hint_rating", "least-squares line rating = a + b * MF score on train, clamped, 1 decimal");
    pk_map c;
    pkm_begin(&c, pkm_key(m, "calibration"));
    pkm_num(&c, "a", p->cal_a);
    pkm_num(&c, "b", p->cal_b);
    pkm_int(&c, "n", p->cal_n);
    pkm_end(&c);
    pkm_int(m, "seed", (int64_t)p->seed);
    /* how answers look, for the rank and fuse stages (from the templates) */
    pk_map f;
    pkm_begin(&f, pkm_key(m, "format"));
    pkm_str(&f, "item", p->item);
    pkm_str(&f, "sep", p->sep);
    pkm_str(&f, "yes", p->yes);
    pkm_str(&f, "no", p->no);
    pkm_end(&f);
}

void prompt_inputs_pack(pk_map *h, const prompt_params *p) {
    pk_map in;
    pkm_begin(&in, pkm_key(h, "inputs"));
    pkm_str(&in, "interactions", p->interactions);
    pkm_str(&in, "catalog", p->catalog);
    pkm_str(&in, "mf", p->mf);
    if (p->candidates) pkm_str(&in, "candidates", p->candidates);
    pkm_str(&in, "templates", p->templates);
    pkm_str(&in, "tokenizer", p->tokenizer_path ? p->tokenizer_path : "");
    pkm_end(&in);
}

void prompt_token_stats_pack(pk_map *m, prompt_token_stats *s, bool tokenizer) {
    pkm_int(m, "shortened", s->shortened);
    pkm_int(m, "overlong", s->overlong);
    pk_map pt;
    pkm_begin(&pt, pkm_key(m, "per_task"));
    for (int t = 0; t < RTASK_COUNT; t++) pkm_int(&pt, rtask_name(t), s->per_task[t]);
    pkm_end(&pt);
    qsort(s->tokens, s->n_tokens, sizeof *s->tokens, cmp_int);
    size_t n = s->n_tokens;
    pk_map tk;
    pkm_begin(&tk, pkm_key(m, "tokens"));
    pkm_str(&tk, "from", tokenizer ? "tokenizer" : "estimate");
    pkm_int(&tk, "min", n ? s->tokens[0] : 0);
    pkm_int(&tk, "median", n ? s->tokens[n / 2] : 0);
    pkm_int(&tk, "p90", n ? s->tokens[(n * 9) / 10] : 0);
    pkm_int(&tk, "max", n ? s->tokens[n - 1] : 0);
    pkm_end(&tk);
}
