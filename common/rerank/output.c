/* output.c - the reranker's answers out: the header, each user's answers as they are done (to
 * stdout, or appended and flushed to OUT.partial), --resume from OUT.partial or OUT, and OUT
 * itself (records in query order) once every query of the shard is answered (see internal.h). */
#include "rerank/internal.h"

#include "io/atomic.h"
#include "io/err.h"
#include "records/answers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void rerank_pack_header(rk *c) {
    const rank_opts *o = c->o;
    answers_params p = {
        .score = o->decode == RANK_SCORE, .likelihood = o->list_likelihood, .temperature = o->temperature,
        .top_p = o->top_p, .top_k = o->top_k, .max_new = o->max_new, .seed = o->seed, .model = o->model,
        .adapter = o->adapter, .int8 = o->int8, .scale_lo = c->scale_lo, .scale_hi = c->scale_hi, .item = c->item_fmt,
        .sep = c->sep, .yes = c->yes, .no = c->no, .queries_path = c->qname, .scheme = c->scheme, .part = c->part,
        .count = c->n_records, .leaky = c->leaky, .shard_i = o->shard_i, .shard_n = o->shard_n};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    answers_pack_header(&sb, &p);
    c->hdr = xmalloc(sb.size);
    memcpy(c->hdr, sb.data, sb.size);
    c->hdr_len = sb.size;
    msgpack_sbuffer_destroy(&sb);
}

static void pack_answer(msgpack_packer *pk, const query *q, const answer *a) {
    answer_rec r = {.id = q->id, .user = q->user, .task = q->task, .text = a->text, .scores = a->scores, .n_scores = a->n_scores};
    answers_pack(pk, &r);
}

static void pf_write(rk *c, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, c->pf) != n) die_at(c->ppath, -1, "write failed: %s", strerror(errno));
}

static void pf_flush(rk *c) {
    if (fflush(c->pf) != 0 || ferror(c->pf)) die_at(c->ppath, -1, "write failed: %s", strerror(errno));
}

void rerank_emit_user(rk *c, const user_ent *u) {
    msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
    msgpack_packer pk; msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (int j = 0; j < u->n_q; j++) {
        const query *q = &c->q[u->q[j]];
        answer *a = &c->ans[u->q[j]];
        if (c->sw) {
            pack_answer(sw_pk(c->sw), q, a);
            sw_end_record(c->sw);
        } else {
            pack_answer(&pk, q, a);
        }
        free(a->text); free(a->scores);
        a->text = NULL; a->scores = NULL;
    }
    if (!c->sw) { pf_write(c, sb.data, sb.size); pf_flush(c); }
    msgpack_sbuffer_destroy(&sb);
}

static bool file_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

/* --resume: the answers of an earlier run (OUT.partial, else a complete OUT), which must have
 * this run's header and only this shard's query ids; their ids go into *have. */
static void load_earlier(rk *c, answers_raw *old, id_map *have) {
    const rank_opts *o = c->o;
    const char *src = NULL;
    if (file_exists(c->ppath)) { answers_raw_load_partial(old, c->ppath); src = c->ppath; }
    else if (file_exists(o->output)) { answers_raw_load(old, o->output); src = o->output; }
    if (src && (old->hdr_len != c->hdr_len || memcmp(old->hdr, c->hdr, c->hdr_len) != 0))
        die_at(src, 0, "--resume: written with other parameters, model, shard or queries (its header differs)");
    id_map ids;
    id_map_init(&ids);
    for (size_t k = 0; k < c->n_su; k++) {
        const user_ent *u = &c->u[c->su[k]];
        for (int j = 0; j < u->n_q; j++) id_map_put(&ids, c->q[u->q[j]].id, 1);
    }
    for (size_t k = 0; k < old->n; k++) {
        if (id_map_get(&ids, old->id[k]) < 0)
            die_at(src, (long)k + 1, "--resume: answer id %lld is not among this shard's queries", (long long)old->id[k]);
        id_map_put(have, old->id[k], 1);
    }
    id_map_free(&ids);
}

void rerank_open_output(rk *c, bool to_file, id_map *have) {
    const rank_opts *o = c->o;
    if (!to_file) {
        c->sw = sw_open(NULL, o->zstd);
        sw_raw_record(c->sw, c->hdr, c->hdr_len);
        return;
    }
    size_t n = strlen(o->output) + 16;
    c->ppath = xmalloc(n);
    snprintf(c->ppath, n, "%s.partial", o->output);
    answers_raw old = {0};
    if (o->resume) load_earlier(c, &old, have);
    /* a fresh partial (header and the kept records) put in place whole, then appended to */
    atomic_file f;
    c->pf = atomic_open_or_die(&f, c->ppath);
    pf_write(c, c->hdr, c->hdr_len);
    for (size_t k = 0; k < old.n; k++) pf_write(c, old.buf + old.off[k], old.rlen[k]);
    atomic_commit_or_die(&f);
    answers_raw_free(&old);
    c->pf = fopen(c->ppath, "ab");
    if (!c->pf) die_at(c->ppath, -1, "cannot open: %s", strerror(errno));
}

/* OUT from the partial (later records win), in query order; the partial is removed. */
static void write_final(rk *c) {
    answers_raw s = {0};
    answers_raw_load_partial(&s, c->ppath);
    id_map at;
    id_map_init(&at);
    for (size_t k = 0; k < s.n; k++) id_map_put(&at, s.id[k], (int)k);
    stream_writer *w = sw_open(c->o->output, c->o->zstd);
    sw_raw_record(w, c->hdr, c->hdr_len);
    for (size_t k = 0; k < c->n_su; k++) {
        const user_ent *u = &c->u[c->su[k]];
        for (int j = 0; j < u->n_q; j++) {
            int x = id_map_get(&at, c->q[u->q[j]].id);
            if (x < 0) die_at(c->ppath, -1, "internal: no answer for query %lld", (long long)c->q[u->q[j]].id);
            sw_raw_record(w, s.buf + s.off[x], s.rlen[x]);
        }
    }
    sw_close(w);
    id_map_free(&at);
    answers_raw_free(&s);
    if (unlink(c->ppath) != 0) warnf("%s: cannot remove: %s", c->ppath, strerror(errno));
}

void rerank_close_output(rk *c, bool stopped) {
    if (c->sw) {
        sw_close(c->sw);
        c->st->complete = true;
        return;
    }
    if (fsync(fileno(c->pf)) != 0 && errno != EINVAL) die_at(c->ppath, -1, "fsync failed: %s", strerror(errno));
    if (fclose(c->pf) != 0) die_at(c->ppath, -1, "write failed: %s", strerror(errno));
    c->pf = NULL;
    if (!stopped) { write_final(c); c->st->complete = true; }
}
