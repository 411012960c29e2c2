/* rank.c - the reranker (see rank.h and docs/rank.md).
 *
 * Flow: read and validate every query; keep the shard's users (first-appearance order, each
 * user's queries in file order); load the model; tokenise every prompt (checking it fits the
 * context with its answer); then answer window after window (`batch` users each) with one
 * scheduler that keeps up to `batch` queries running in every forward pass: a query's prompt
 * suffix is prefilled in the same pass as the other queries' decode steps. Answers go out user
 * by user, in order: to stdout, or appended (and flushed) to OUT.partial, which becomes OUT
 * (records in query order) once every query is answered.
 */
#include "llm/rank.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/err.h"
#include "io/progress.h"
#include "io/rng.h"
#include "io/stream.h"
#include "llm/generate.h"
#include "llm/model.h"

enum { T_POINT, T_PAIR, T_LIST, T_N };
static const char *const TASK_NAMES[T_N] = {"pointwise", "pairwise", "listwise"};

#define STEP_TOKENS 4096 /* prompt rows newly prefilled per forward pass (soft cap) */
#define MAX_SCALE 100    /* rating values on a pointwise scale, at most */

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

/* ======================================================================== small helpers */

/* int64 -> int open-addressing map (keys unique). */
typedef struct {
    int64_t *k;
    int *v;
    size_t cap, n;
} imap;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

static void imap_init(imap *m) { m->cap = 64; m->n = 0; m->k = xmalloc(m->cap * sizeof *m->k); m->v = xmalloc(m->cap * sizeof *m->v); for (size_t i = 0; i < m->cap; i++) m->v[i] = -1; }
static void imap_free(imap *m) { free(m->k); free(m->v); }
static int *imap_slot(imap *m, int64_t key) {
    size_t i = mix64((uint64_t)key) & (m->cap - 1);
    while (m->v[i] >= 0 && m->k[i] != key) i = (i + 1) & (m->cap - 1);
    m->k[i] = key;
    return &m->v[i];
}
static int imap_get(imap *m, int64_t key) {
    size_t i = mix64((uint64_t)key) & (m->cap - 1);
    while (m->v[i] >= 0) {
        if (m->k[i] == key) return m->v[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}
static void imap_put(imap *m, int64_t key, int val) {
    if (2 * (m->n + 1) > m->cap) {
        imap old = *m;
        m->cap *= 2; m->n = 0;
        m->k = xmalloc(m->cap * sizeof *m->k); m->v = xmalloc(m->cap * sizeof *m->v);
        for (size_t i = 0; i < m->cap; i++) m->v[i] = -1;
        for (size_t i = 0; i < old.cap; i++) if (old.v[i] >= 0) imap_put(m, old.k[i], old.v[i]);
        imap_free(&old);
    }
    int *s = imap_slot(m, key);
    if (*s < 0) m->n++;
    *s = val;
}

/* Encode with a growing buffer; *out malloc'd; returns the count. */
static int encode(const llm_tokenizer *t, const char *text, int bos, int **out) {
    int cap = 64 + (int)(strlen(text) / 2);
    int *ids = xmalloc(sizeof *ids * (size_t)cap);
    int n = tok_encode(t, text, bos, 0, ids, cap);
    if (n > cap) {
        ids = xrealloc(ids, sizeof *ids * (size_t)n);
        tok_encode(t, text, bos, 0, ids, n);
    }
    *out = ids;
    return n;
}

static int lcp(const int *a, int na, const int *b, int nb) {
    int i = 0;
    while (i < na && i < nb && a[i] == b[i]) i++;
    return i;
}

int rank_answer_tokens(const llm_tokenizer *t, const char *prompt, size_t prompt_len, const char *answer, int **out) {
    size_t s = prompt_len;
    while (s > 0 && prompt[s - 1] != ' ') s--;
    size_t tl = prompt_len - s, al = strlen(answer);
    char *buf = xmalloc(tl + al + 1);
    memcpy(buf, prompt + s, tl);
    buf[tl] = 0;
    int *a, *b;
    int na = encode(t, buf, 0, &a);
    memcpy(buf + tl, answer, al + 1);
    int nb = encode(t, buf, 0, &b);
    free(buf);
    int c = lcp(a, na, b, nb);
    int n = nb - c;
    int *r = xmalloc(sizeof *r * (size_t)(n ? n : 1));
    memcpy(r, b + c, sizeof *r * (size_t)n);
    free(a); free(b);
    *out = r;
    return c == na ? n : -1;
}

/* ======================================================================== trie */

typedef struct {
    int tok, child, next; /* first child, next sibling (-1 none) */
    int live;             /* live sequences through this node */
} tnode;

struct rank_trie {
    tnode *nd;
    int n_nodes, cap;
    int n_seq, n_live;
    int *end;          /* per sequence: its last node */
    bool *removed;
    int **seq; int *len;
};

static int trie_add_node(rank_trie *t, int tok) {
    if (t->n_nodes == t->cap) t->nd = xrealloc(t->nd, sizeof *t->nd * (size_t)(t->cap *= 2));
    t->nd[t->n_nodes] = (tnode){tok, -1, -1, 0};
    return t->n_nodes++;
}

rank_trie *rank_trie_new(const int *const *seqs, const int *lens, int n) {
    rank_trie *t = xcalloc(1, sizeof *t);
    t->cap = 16;
    t->nd = xmalloc(sizeof *t->nd * (size_t)t->cap);
    trie_add_node(t, -1);
    t->n_seq = t->n_live = n;
    t->end = xmalloc(sizeof *t->end * (size_t)(n ? n : 1));
    t->removed = xcalloc((size_t)(n ? n : 1), sizeof *t->removed);
    t->seq = xmalloc(sizeof *t->seq * (size_t)(n ? n : 1));
    t->len = xmalloc(sizeof *t->len * (size_t)(n ? n : 1));
    for (int s = 0; s < n; s++) {
        t->seq[s] = xmalloc(sizeof **t->seq * (size_t)(lens[s] ? lens[s] : 1));
        memcpy(t->seq[s], seqs[s], sizeof **t->seq * (size_t)lens[s]);
        t->len[s] = lens[s];
        int node = 0;
        t->nd[0].live++;
        for (int i = 0; i < lens[s]; i++) {
            int c = t->nd[node].child, prev = -1;
            while (c >= 0 && t->nd[c].tok < seqs[s][i]) { prev = c; c = t->nd[c].next; }
            if (c < 0 || t->nd[c].tok != seqs[s][i]) { /* insert, children kept sorted by token */
                int x = trie_add_node(t, seqs[s][i]);
                t->nd[x].next = c;
                if (prev < 0) t->nd[node].child = x; else t->nd[prev].next = x;
                c = x;
            }
            node = c;
            t->nd[node].live++;
        }
        t->end[s] = node;
    }
    return t;
}

void rank_trie_free(rank_trie *t) {
    if (!t) return;
    for (int s = 0; s < t->n_seq; s++) free(t->seq[s]);
    free(t->seq); free(t->len); free(t->end); free(t->removed); free(t->nd); free(t);
}

int rank_trie_child(const rank_trie *t, int node, int tok) {
    for (int c = t->nd[node].child; c >= 0; c = t->nd[c].next)
        if (t->nd[c].tok == tok) return t->nd[c].live > 0 ? c : -1;
    return -1;
}

int rank_trie_allowed(const rank_trie *t, int node, int *toks, int max) {
    int n = 0;
    for (int c = t->nd[node].child; c >= 0; c = t->nd[c].next)
        if (t->nd[c].live > 0) { if (n < max) toks[n] = t->nd[c].tok; n++; }
    return n;
}

int rank_trie_complete(const rank_trie *t, int node) {
    for (int s = 0; s < t->n_seq; s++) if (!t->removed[s] && t->end[s] == node) return s;
    return -1;
}

void rank_trie_remove(rank_trie *t, int s) {
    if (s < 0 || s >= t->n_seq || t->removed[s]) return;
    t->removed[s] = true;
    t->n_live--;
    int node = 0;
    t->nd[0].live--;
    for (int i = 0; i < t->len[s]; i++) {
        node = rank_trie_child(t, node, t->seq[s][i]);
        if (node < 0) break; /* cannot happen: the path is live until decremented */
        t->nd[node].live--;
    }
}

int rank_trie_live(const rank_trie *t) { return t->n_live; }

/* ======================================================================== constrained listwise */

void rank_list_init(rank_list *l, const int *const *sep_seqs, const int *sep_lens, const int *const *eos_seqs,
                    const int *eos_lens, int n, int need) {
    memset(l, 0, sizeof *l);
    l->mid = rank_trie_new(sep_seqs, sep_lens, n);
    l->last = rank_trie_new(eos_seqs, eos_lens, n);
    if (need > n) need = n;
    if (need > RANK_LIST_TOP) need = RANK_LIST_TOP;
    l->need = need;
}

void rank_list_free(rank_list *l) {
    rank_trie_free(l->mid);
    rank_trie_free(l->last);
    l->mid = l->last = NULL;
}

static const rank_trie *list_trie(const rank_list *l) { return l->n_chosen + 1 >= l->need ? l->last : l->mid; }

int rank_list_choose(const rank_list *l, const float *logits, int V) {
    const rank_trie *t = list_trie(l);
    int best = -1;
    for (int c = t->nd[l->node].child; c >= 0; c = t->nd[c].next) {
        int tok = t->nd[c].tok;
        if (t->nd[c].live <= 0 || tok < 0 || tok >= V) continue;
        if (best < 0 || logits[tok] > logits[best]) best = tok; /* children ascend: ties keep the lower id */
    }
    return best;
}

bool rank_list_push(rank_list *l, int tok) {
    if (l->n_chosen >= l->need) return true;
    const rank_trie *t = list_trie(l);
    int c = rank_trie_child(t, l->node, tok);
    if (c < 0) return false;
    l->node = c;
    int s = rank_trie_complete(t, c);
    if (s >= 0) {
        l->chosen[l->n_chosen++] = s;
        rank_trie_remove(l->mid, s);
        rank_trie_remove(l->last, s);
        l->node = 0;
    }
    return l->n_chosen >= l->need;
}

/* ======================================================================== queries */

typedef struct {
    int64_t id, user;
    int task;
    long rec;
    char *prompt;
    size_t plen, prefix_len;
    char **titles;
    int n_titles;
    /* after tokenisation */
    int *toks, n_toks;
    int group, os;
    int **tsep, **teos; /* listwise: per title, title + separator / title + EOS */
    int *nsep, *neos;
} query;

typedef struct {
    const int *toks; /* the shared tokens: the first query's prompt tokens [0, n_shared) */
    int n_shared, n_q, started;
    llm_seq *seq;
    int first_q;
} group;

typedef struct {
    int64_t user;
    int *q, n_q, cap;
} user_ent;

/* The answer options of a task (ratings or Yes./No.) tokenised after prompts that end with
 * `tail` (the text after the prompt's last space), EOS appended. */
typedef struct {
    int task;
    char *tail;
    int *tok[MAX_SCALE], n[MAX_SCALE];
} optset;

typedef struct {
    char *text;
    double *scores;
    int n_scores;
    bool done;
} answer;

/* Answer records as raw msgpack bytes (read back from a partial or complete output). */
typedef struct {
    unsigned char *buf;
    size_t len;
    unsigned char *hdr; size_t hdr_len;
    size_t *off, *rlen;
    int64_t *id;
    size_t n, cap;
} ans_set;

typedef struct {
    const rank_opts *o;
    const char *qname;
    query *q;
    size_t n_q;
    user_ent *u;
    size_t n_u;
    int *su; size_t n_su; /* shard users, in order */
    msgpack_object *scheme, *part; /* copies of the queries header's params, or NULL */
    bool leaky;                    /* the queries header's params.leaky (promptgen --hints recranker-leaky) */
    msgpack_zone zone;
    int scale_lo, scale_hi;
    long n_records;
    /* how answers are written (promptgen's templates): item, separator, yes, no */
    char *item_fmt, *sep, *yes, *no;
    /* model and derived */
    llm_model *m;
    int V, eos;
    group *g; size_t n_g;
    optset *os; size_t n_os; /* score mode: the options' tokens, per task and prompt tail */
    int n_opt[T_N];
    int max_opts; /* options of one query at most (ratings, or titles in listwise likelihood) */
    char opt_text[T_N][MAX_SCALE][64];
    /* output */
    unsigned char *hdr; size_t hdr_len;
    stream_writer *sw;        /* stdout mode */
    FILE *pf; char *ppath;    /* OUT.partial */
    answer *ans;              /* per query */
    rank_stats *st;
    progress pr;
    long todo, done_q;
    double t0;
} rk;

static int task_of(const char *s, uint32_t n) {
    for (int t = 0; t < T_N; t++) if (strlen(TASK_NAMES[t]) == n && memcmp(TASK_NAMES[t], s, n) == 0) return t;
    return -1;
}

static void read_queries(rk *c) {
    stream_reader *r = sr_open(c->o->queries, "itrek.queries", 1);
    c->qname = xstrdup(sr_name(r));
    msgpack_zone_init(&c->zone, 4096);
    const msgpack_object *sch = sr_header_param(r, "scheme"), *part = sr_header_param(r, "part");
    if (sch) { c->scheme = msgpack_zone_malloc(&c->zone, sizeof *c->scheme); *c->scheme = *sch; }
    if (part) { c->part = msgpack_zone_malloc(&c->zone, sizeof *c->part); *c->part = *part; }
    const msgpack_object *lk = sr_header_param(r, "leaky");
    if (lk && lk->type != MSGPACK_OBJECT_BOOLEAN) die_at(c->qname, 0, "field 'params.leaky': expected a boolean");
    c->leaky = lk && lk->via.boolean;
    /* deep copies: the header lives until sr_close, we keep the reader open until the end of this function */
    c->scale_lo = 1; c->scale_hi = 5;
    const msgpack_object *sc = sr_header_param(r, "scale");
    if (sc) {
        if (sc->type != MSGPACK_OBJECT_ARRAY || sc->via.array.size != 2 ||
            (sc->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER && sc->via.array.ptr[0].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
            (sc->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER && sc->via.array.ptr[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
            die_at(c->qname, 0, "field 'params.scale': expected [min, max] integers");
        c->scale_lo = (int)sc->via.array.ptr[0].via.i64;
        c->scale_hi = (int)sc->via.array.ptr[1].via.i64;
        if (c->scale_hi < c->scale_lo || c->scale_hi - c->scale_lo + 1 > MAX_SCALE || c->scale_lo < -1000000 || c->scale_hi > 1000000)
            die_at(c->qname, 0, "field 'params.scale': [%d, %d] is not a scale of 1 to %d values", c->scale_lo, c->scale_hi, MAX_SCALE);
    }
    /* answer format: the option, else the header's params.format, else recranker.tmpl's */
    const msgpack_object *fm = sr_header_param(r, "format");
    const char *dflt[4] = {"\"{title}\"", "\n", "Yes.", "No."}, *keys[4] = {"item", "sep", "yes", "no"};
    const char *given[4] = {c->o->item_format, c->o->answer_sep, c->o->yes, c->o->no};
    char **dst[4] = {&c->item_fmt, &c->sep, &c->yes, &c->no};
    for (int k = 0; k < 4; k++) {
        const msgpack_object *v = fm && fm->type == MSGPACK_OBJECT_MAP ? mp_find(fm, keys[k]) : NULL;
        if (given[k]) *dst[k] = xstrdup(given[k]);
        else if (v) {
            if (v->type != MSGPACK_OBJECT_STR || memchr(v->via.str.ptr, 0, v->via.str.size))
                die_at(c->qname, 0, "field 'params.format.%s': expected a string", keys[k]);
            *dst[k] = strndup(v->via.str.ptr, v->via.str.size);
            if (!*dst[k]) die("out of memory");
        } else *dst[k] = xstrdup(dflt[k]);
    }
    if (!strstr(c->item_fmt, "{title}")) die("item format '%s' has no {title}", c->item_fmt);
    imap ids, users;
    imap_init(&ids); imap_init(&users);
    size_t cap = 256;
    c->q = xmalloc(sizeof *c->q * cap);
    size_t ucap = 64;
    c->u = xmalloc(sizeof *c->u * ucap);
    const msgpack_object *rec;
    while ((rec = sr_next(r))) {
        query q = {0};
        q.rec = sr_index(r);
        q.id = sr_int(r, rec, "id");
        uint32_t tl;
        const char *ts = sr_str(r, rec, "task", &tl);
        q.task = task_of(ts, tl);
        if (q.task < 0) sr_fail(r, "field 'task': unknown task '%.*s' (expected pointwise, pairwise or listwise)", (int)(tl > 40 ? 40 : tl), ts);
        q.user = sr_int(r, rec, "user");
        q.prompt = sr_strdup(r, rec, "prompt");
        q.plen = strlen(q.prompt);
        int64_t pl = sr_int(r, rec, "prefix_len");
        if (pl < 0 || (uint64_t)pl > q.plen)
            sr_fail(r, "field 'prefix_len': %lld is outside the prompt's %zu bytes", (long long)pl, q.plen);
        q.prefix_len = (size_t)pl;
        if (q.task == T_LIST || sr_has(rec, "titles")) {
            const msgpack_object_array *a = sr_array(r, rec, "titles");
            if (q.task == T_LIST && a->size == 0) sr_fail(r, "field 'titles': a listwise query needs at least one title");
            q.n_titles = (int)a->size;
            q.titles = xmalloc(sizeof *q.titles * (a->size ? a->size : 1));
            for (uint32_t i = 0; i < a->size; i++) {
                const msgpack_object *e = &a->ptr[i];
                if (e->type != MSGPACK_OBJECT_STR) sr_fail(r, "field 'titles[%u]': expected string", i);
                if (memchr(e->via.str.ptr, 0, e->via.str.size)) sr_fail(r, "field 'titles[%u]': contains a NUL byte", i);
                q.titles[i] = xmalloc(e->via.str.size + 1);
                memcpy(q.titles[i], e->via.str.ptr, e->via.str.size);
                q.titles[i][e->via.str.size] = 0;
            }
        }
        int prev = imap_get(&ids, q.id);
        if (prev >= 0) sr_fail(r, "field 'id': %lld repeats the id of record %ld", (long long)q.id, c->q[prev].rec);
        if (c->n_q == cap) c->q = xrealloc(c->q, sizeof *c->q * (cap *= 2));
        imap_put(&ids, q.id, (int)c->n_q);
        int ui = imap_get(&users, q.user);
        if (ui < 0) {
            if (c->n_u == ucap) c->u = xrealloc(c->u, sizeof *c->u * (ucap *= 2));
            ui = (int)c->n_u++;
            c->u[ui] = (user_ent){q.user, NULL, 0, 0};
            imap_put(&users, q.user, ui);
        }
        user_ent *ue = &c->u[ui];
        if (ue->n_q == ue->cap) ue->q = xrealloc(ue->q, sizeof *ue->q * (size_t)(ue->cap = ue->cap ? 2 * ue->cap : 32));
        ue->q[ue->n_q++] = (int)c->n_q;
        c->q[c->n_q++] = q;
    }
    c->n_records = (long)c->n_q;
    /* keep scheme/part beyond the reader: deep-copy through a packed buffer */
    msgpack_object *keep[2] = {c->scheme, c->part};
    for (int k = 0; k < 2; k++) {
        if (!keep[k]) continue;
        msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
        msgpack_packer pk; msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_object(&pk, *keep[k]);
        char *copy = msgpack_zone_malloc(&c->zone, sb.size ? sb.size : 1);
        memcpy(copy, sb.data, sb.size);
        size_t off = 0;
        msgpack_unpack(copy, sb.size, &off, &c->zone, keep[k]);
        msgpack_sbuffer_destroy(&sb);
    }
    sr_close(r);
    imap_free(&ids); imap_free(&users);
    /* shard users */
    c->su = xmalloc(sizeof *c->su * (c->n_u ? c->n_u : 1));
    int n = c->o->shard_n, i = c->o->shard_i;
    for (size_t k = 0; k < c->n_u; k++) {
        int64_t m = c->u[k].user % n;
        if (m < 0) m += n;
        if (m == i) c->su[c->n_su++] = (int)k;
    }
}

/* ======================================================================== header */

static void pack_header(rk *c) {
    const rank_opts *o = c->o;
    msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
    msgpack_packer pk; msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, o->shard_n > 1 ? 7 : 6);
    char producer[128];
    snprintf(producer, sizeof producer, "%s %s", err_prog(), ITREK_VERSION);
    pk_kv_str(&pk, "schema", "itrek.answers");
    pk_kv_int(&pk, "version", 1);
    pk_kv_str(&pk, "producer", producer);
    pk_str(&pk, "params");
    msgpack_pack_map(&pk, 12);
    pk_kv_str(&pk, "decode", o->decode == RANK_SCORE ? "score" : "generate");
    pk_kv_str(&pk, "listwise", o->list_likelihood ? "likelihood" : "greedy");
    pk_kv_num(&pk, "temperature", o->temperature);
    pk_kv_int(&pk, "top_k", o->top_k);
    pk_kv_num(&pk, "top_p", o->top_p);
    pk_kv_int(&pk, "max_new", o->max_new);
    pk_kv_int(&pk, "seed", (int64_t)o->seed);
    pk_kv_str(&pk, "model", o->model);
    pk_str(&pk, "adapter");
    if (o->adapter) pk_str(&pk, o->adapter); else msgpack_pack_nil(&pk);
    pk_kv_bool(&pk, "int8", o->int8);
    pk_str(&pk, "scale");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, c->scale_lo);
    msgpack_pack_int(&pk, c->scale_hi);
    pk_str(&pk, "format");
    msgpack_pack_map(&pk, 4);
    pk_kv_str(&pk, "item", c->item_fmt);
    pk_kv_str(&pk, "sep", c->sep);
    pk_kv_str(&pk, "yes", c->yes);
    pk_kv_str(&pk, "no", c->no);
    pk_str(&pk, "inputs");
    msgpack_pack_map(&pk, 1);
    pk_kv_str(&pk, "queries", c->qname);
    pk_str(&pk, "queries");
    /* leaky only when set, so that honest answers keep their bytes */
    msgpack_pack_map(&pk, c->leaky ? 4 : 3);
    pk_str(&pk, "scheme");
    if (c->scheme) msgpack_pack_object(&pk, *c->scheme); else msgpack_pack_nil(&pk);
    pk_str(&pk, "part");
    if (c->part) msgpack_pack_object(&pk, *c->part); else msgpack_pack_nil(&pk);
    pk_kv_int(&pk, "count", c->n_records);
    if (c->leaky) pk_kv_bool(&pk, "leaky", true);
    if (o->shard_n > 1) {
        pk_str(&pk, "shard");
        msgpack_pack_map(&pk, 2);
        pk_kv_int(&pk, "i", o->shard_i);
        pk_kv_int(&pk, "n", o->shard_n);
    }
    c->hdr = xmalloc(sb.size);
    memcpy(c->hdr, sb.data, sb.size);
    c->hdr_len = sb.size;
    msgpack_sbuffer_destroy(&sb);
}

/* ======================================================================== tokenisation */

static void set_options(rk *c) {
    c->n_opt[T_POINT] = c->scale_hi - c->scale_lo + 1;
    for (int v = 0; v < c->n_opt[T_POINT]; v++) snprintf(c->opt_text[T_POINT][v], sizeof c->opt_text[T_POINT][v], "%d", c->scale_lo + v);
    c->n_opt[T_PAIR] = 2;
    if (strlen(c->yes) >= sizeof c->opt_text[T_PAIR][0] || strlen(c->no) >= sizeof c->opt_text[T_PAIR][0])
        die("--yes/--no: at most %zu bytes", sizeof c->opt_text[T_PAIR][0] - 1);
    strcpy(c->opt_text[T_PAIR][0], c->yes);
    strcpy(c->opt_text[T_PAIR][1], c->no);
}

/* An item as answers show it: the item format with {title} replaced. */
static char *render_item(const rk *c, const char *title) {
    size_t tl = strlen(title), n = 0, cap = strlen(c->item_fmt) + 1;
    for (const char *p = c->item_fmt; (p = strstr(p, "{title}")); p += 7) cap += tl;
    char *out = xmalloc(cap);
    for (const char *p = c->item_fmt; *p;) {
        if (strncmp(p, "{title}", 7) == 0) { memcpy(out + n, title, tl); n += tl; p += 7; }
        else out[n++] = *p++;
    }
    out[n] = 0;
    return out;
}

/* Tokens of answer after q's prompt, with EOS appended when eos. */
static int answer_toks(rk *c, const query *q, const char *answer, bool eos, int **out, long *merged) {
    int *a;
    int n = rank_answer_tokens(c->m->tok, q->prompt, q->plen, answer, &a);
    if (n < 0) { (*merged)++; n = 0; free(a); a = NULL; }
    if (n == 0) { /* merged with the prompt's end, or empty: the answer as it encodes on its own line */
        free(a);
        char *buf = xmalloc(strlen(answer) + 2);
        buf[0] = '\n';
        strcpy(buf + 1, answer);
        int *x, *y;
        int nx = encode(c->m->tok, "\n", 0, &x), ny = encode(c->m->tok, buf, 0, &y);
        int k = lcp(x, nx, y, ny);
        n = ny - k;
        a = xmalloc(sizeof *a * (size_t)(n + 2));
        memcpy(a, y + k, sizeof *a * (size_t)n);
        free(x); free(y); free(buf);
    } else {
        a = xrealloc(a, sizeof *a * (size_t)(n + 2));
    }
    if (eos) a[n++] = c->eos;
    *out = a;
    return n;
}

/* Tokenise every shard query; build the prefix groups; check every prompt fits the context. */
static void tokenise(rk *c) {
    const llm_tokenizer *t = c->m->tok;
    int ctx = c->m->cfg.max_seq_len;
    long merged = 0;
    size_t oscap = 0;
    size_t gcap = 64;
    c->g = xmalloc(sizeof *c->g * gcap);
    for (size_t k = 0; k < c->n_su; k++) {
        user_ent *u = &c->u[c->su[k]];
        size_t g0 = c->n_g;
        for (int j = 0; j < u->n_q; j++) {
            query *q = &c->q[u->q[j]];
            q->n_toks = encode(t, q->prompt, 1, &q->toks);
            /* the group: queries of this user with the same prefix bytes */
            int gi = -1;
            for (size_t x = g0; x < c->n_g && gi < 0; x++) {
                const query *f = &c->q[c->g[x].first_q];
                if (f->prefix_len == q->prefix_len && memcmp(f->prompt, q->prompt, q->prefix_len) == 0) gi = (int)x;
            }
            if (gi < 0) {
                if (c->n_g == gcap) c->g = xrealloc(c->g, sizeof *c->g * (gcap *= 2));
                gi = (int)c->n_g++;
                char *pre = xmalloc(q->prefix_len + 1);
                memcpy(pre, q->prompt, q->prefix_len);
                pre[q->prefix_len] = 0;
                int *pt;
                int np = encode(t, pre, 1, &pt);
                free(pre);
                /* the prefix's own encoding may end differently than inside the prompt: keep the common part */
                int n_shared = lcp(pt, np, q->toks, q->n_toks);
                free(pt);
                c->g[gi] = (group){q->toks, n_shared, 0, 0, NULL, u->q[j]};
            }
            group *g = &c->g[gi];
            g->n_shared = lcp(g->toks, g->n_shared, q->toks, q->n_toks);
            g->n_q++;
            q->group = gi;
            /* room for the answer */
            int need = 1;
            if (c->o->decode == RANK_SCORE && q->task != T_LIST) {
                const char *tail = q->prompt + q->plen;
                while (tail > q->prompt && tail[-1] != ' ') tail--;
                q->os = -1;
                for (size_t x = 0; x < c->n_os && q->os < 0; x++)
                    if (c->os[x].task == q->task && strcmp(c->os[x].tail, tail) == 0) q->os = (int)x;
                if (q->os < 0) {
                    if (c->n_os == oscap) c->os = xrealloc(c->os, sizeof *c->os * (oscap = oscap ? 2 * oscap : 4));
                    optset *o = &c->os[c->n_os];
                    memset(o, 0, sizeof *o);
                    o->task = q->task;
                    o->tail = xstrdup(tail);
                    for (int v = 0; v < c->n_opt[q->task]; v++)
                        o->n[v] = answer_toks(c, q, c->opt_text[q->task][v], true, &o->tok[v], &merged);
                    q->os = (int)c->n_os++;
                }
                const optset *os = &c->os[q->os];
                for (int v = 0; v < c->n_opt[q->task]; v++) if (os->n[v] > need) need = os->n[v];
                need -= 1;
            } else if (c->o->decode == RANK_SCORE && q->task == T_LIST) {
                int n = q->n_titles;
                q->tsep = xmalloc(sizeof *q->tsep * (size_t)n); q->teos = xmalloc(sizeof *q->teos * (size_t)n);
                q->nsep = xmalloc(sizeof *q->nsep * (size_t)n); q->neos = xmalloc(sizeof *q->neos * (size_t)n);
                int *lens = xmalloc(sizeof *lens * (size_t)n);
                for (int i = 0; i < n; i++) {
                    char *it = render_item(c, q->titles[i]);
                    size_t L = strlen(it);
                    char *s = xmalloc(L + strlen(c->sep) + 1);
                    memcpy(s, it, L);
                    strcpy(s + L, c->sep);
                    q->nsep[i] = answer_toks(c, q, s, false, &q->tsep[i], &merged);
                    q->neos[i] = answer_toks(c, q, it, true, &q->teos[i], &merged);
                    free(s); free(it);
                    lens[i] = q->nsep[i] > q->neos[i] ? q->nsep[i] : q->neos[i];
                }
                if (c->o->list_likelihood && n > c->max_opts) c->max_opts = n;
                /* the longest RANK_LIST_TOP titles must fit (likelihood: the longest one) */
                int top = n < RANK_LIST_TOP ? n : RANK_LIST_TOP;
                if (c->o->list_likelihood) top = 1;
                need = 0;
                for (int r = 0; r < top; r++) {
                    int b = 0;
                    for (int i = 1; i < n; i++) if (lens[i] > lens[b]) b = i;
                    need += lens[b];
                    lens[b] = -1;
                }
                free(lens);
            }
            if (q->n_toks + need > ctx)
                die_at(c->qname, q->rec, "field 'prompt': %d tokens and %d for the answer do not fit the model's context of %d",
                       q->n_toks, need, ctx);
        }
    }
    if (merged) warnf("%ld answer tokenisations merged with the end of their prompt; those answers were tokenised as after a newline", merged);
}

/* ======================================================================== answers out */

static void pack_answer(msgpack_packer *pk, const query *q, const answer *a) {
    msgpack_pack_map(pk, a->scores ? 5 : 4);
    pk_kv_int(pk, "id", q->id);
    pk_kv_str(pk, "task", TASK_NAMES[q->task]);
    pk_kv_int(pk, "user", q->user);
    pk_kv_str(pk, "text", a->text);
    if (a->scores) {
        pk_str(pk, "scores");
        msgpack_pack_array(pk, (size_t)a->n_scores);
        for (int i = 0; i < a->n_scores; i++) msgpack_pack_double(pk, a->scores[i]);
    }
}

static void sw_raw(stream_writer *w, const void *p, size_t n) {
    msgpack_packer *pk = sw_pk(w);
    pk->callback(pk->data, p, n);
    sw_end_record(w);
}

static void pf_write(rk *c, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, c->pf) != n) die_at(c->ppath, -1, "write failed: %s", strerror(errno));
}

static void pf_flush(rk *c) {
    if (fflush(c->pf) != 0 || ferror(c->pf)) die_at(c->ppath, -1, "write failed: %s", strerror(errno));
}

/* Write user k's answers (all done) and free them. */
static void emit_user(rk *c, const user_ent *u) {
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

/* ---------- reading answers back ---------- */

static void ans_push(ans_set *s, int64_t id, size_t off, size_t len) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->off = xrealloc(s->off, sizeof *s->off * s->cap);
        s->rlen = xrealloc(s->rlen, sizeof *s->rlen * s->cap);
        s->id = xrealloc(s->id, sizeof *s->id * s->cap);
    }
    s->off[s->n] = off; s->rlen[s->n] = len; s->id[s->n] = id; s->n++;
}

static void ans_free(ans_set *s) { free(s->buf); free(s->hdr); free(s->off); free(s->rlen); free(s->id); memset(s, 0, sizeof *s); }

static int64_t rec_id(const char *path, long rec, const msgpack_object *o) {
    const msgpack_object *id = o->type == MSGPACK_OBJECT_MAP ? mp_find(o, "id") : NULL;
    if (!id) die_at(path, rec, "missing field 'id'");
    if (id->type == MSGPACK_OBJECT_POSITIVE_INTEGER && id->via.u64 <= INT64_MAX) return (int64_t)id->via.u64;
    if (id->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return id->via.i64;
    die_at(path, rec, "field 'id': expected integer");
}

/* A partial answers file (plain msgpack, written by us): every complete record; a torn
 * record at the end (a run killed mid-write) is dropped. */
static void load_partial(const char *path, ans_set *s) {
    FILE *fp = fopen(path, "rb");
    if (!fp) die_at(path, -1, "cannot open: %s", strerror(errno));
    size_t cap = 1 << 16, len = 0;
    unsigned char *buf = xmalloc(cap);
    size_t k;
    while ((k = fread(buf + len, 1, cap - len, fp)) > 0) {
        len += k;
        if (len == cap) buf = xrealloc(buf, cap *= 2);
    }
    if (ferror(fp)) die_at(path, -1, "read error: %s", strerror(errno));
    fclose(fp);
    s->buf = buf; s->len = len;
    msgpack_unpacked res;
    msgpack_unpacked_init(&res);
    size_t off = 0;
    long rec = 0;
    for (;;) {
        size_t start = off;
        msgpack_unpack_return ret = msgpack_unpack_next(&res, (const char *)buf, len, &off);
        if (ret == MSGPACK_UNPACK_SUCCESS) {
            if (rec == 0) {
                const msgpack_object *sch = res.data.type == MSGPACK_OBJECT_MAP ? mp_find(&res.data, "schema") : NULL;
                if (!sch || sch->type != MSGPACK_OBJECT_STR || sch->via.str.size != 13 || memcmp(sch->via.str.ptr, "itrek.answers", 13) != 0)
                    die_at(path, 0, "not an itrek.answers stream");
                s->hdr = xmalloc(off - start); memcpy(s->hdr, buf + start, off - start); s->hdr_len = off - start;
            } else {
                ans_push(s, rec_id(path, rec, &res.data), start, off - start);
            }
            rec++;
            continue;
        }
        if (ret == MSGPACK_UNPACK_CONTINUE || ret == MSGPACK_UNPACK_EXTRA_BYTES) {
            if (start < len) warnf("%s: dropping %zu bytes of an unfinished record at the end", path, len - start);
            break;
        }
        if (ret == MSGPACK_UNPACK_PARSE_ERROR) die_at(path, rec, "not a msgpack record (corrupt stream)");
        if (ret == MSGPACK_UNPACK_NOMEM_ERROR) die("out of memory");
        break; /* MSGPACK_UNPACK_CONTINUE at a clean end */
    }
    msgpack_unpacked_destroy(&res);
    if (rec == 0) die_at(path, 0, "missing header");
}

/* A complete answers stream (plain or zstd), through the checked reader. */
static void load_stream(const char *path, ans_set *s, bool keep_header) {
    stream_reader *r = sr_open(path, "itrek.answers", 1);
    msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
    msgpack_packer pk; msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *sr_header(r));
    if (keep_header) { s->hdr = xmalloc(sb.size); memcpy(s->hdr, sb.data, sb.size); s->hdr_len = sb.size; }
    msgpack_sbuffer_clear(&sb);
    const msgpack_object *o;
    while ((o = sr_next(r))) {
        int64_t id = rec_id(sr_name(r), sr_index(r), o);
        size_t before = sb.size;
        msgpack_pack_object(&pk, *o);
        ans_push(s, id, before, sb.size - before);
    }
    sr_close(r);
    s->len = sb.size;
    s->buf = (unsigned char *)msgpack_sbuffer_release(&sb);
    msgpack_sbuffer_destroy(&sb);
}

/* ======================================================================== the scheduler */

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
    int k = n < RANK_LIST_TOP ? n : RANK_LIST_TOP;
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
        int chosen[RANK_LIST_TOP], n_chosen;
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
        char *it[RANK_LIST_TOP];
        for (int k = 0; k < n_chosen; k++) {
            it[k] = render_item(c, q->titles[chosen[k]]);
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
                       RANK_LIST_TOP);
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

static void run_window(rk *c, const int *users, int nu) {
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
            emit_user(c, u);
            flushed++;
            c->st->users++;
        }
        double el = now_seconds() - c->t0;
        snprintf(extra, sizeof extra, "%.1f queries/s, %.0f tokens/s", el > 0 ? c->done_q / el : 0,
                 el > 0 ? (c->st->computed_tokens + c->st->generated_tokens + c->st->scored_tokens) / el : 0);
        progress_update(&c->pr, (uint64_t)c->done_q, extra);
    }
    while (flushed < nu) { emit_user(c, &c->u[users[flushed++]]); c->st->users++; }
    free(jobs); free(b); free(qs);
}

/* ======================================================================== the stage */

static bool file_exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static void write_final(rk *c) {
    /* read back everything the partial holds (later records win), write OUT in query order */
    ans_set s = {0};
    load_partial(c->ppath, &s);
    imap at;
    imap_init(&at);
    for (size_t k = 0; k < s.n; k++) imap_put(&at, s.id[k], (int)k);
    stream_writer *w = sw_open(c->o->output, c->o->zstd);
    sw_raw(w, c->hdr, c->hdr_len);
    for (size_t k = 0; k < c->n_su; k++) {
        const user_ent *u = &c->u[c->su[k]];
        for (int j = 0; j < u->n_q; j++) {
            int x = imap_get(&at, c->q[u->q[j]].id);
            if (x < 0) die_at(c->ppath, -1, "internal: no answer for query %lld", (long long)c->q[u->q[j]].id);
            sw_raw(w, s.buf + s.off[x], s.rlen[x]);
        }
    }
    sw_close(w);
    imap_free(&at);
    ans_free(&s);
    if (unlink(c->ppath) != 0) warnf("%s: cannot remove: %s", c->ppath, strerror(errno));
}

void rank_run(const rank_opts *o, rank_stats *st) {
    rk cc = {0}, *c = &cc;
    c->o = o;
    memset(st, 0, sizeof *st);
    c->st = st;
    bool to_file = o->output && strcmp(o->output, "-") != 0;
    read_queries(c);

    char err[512];
    llm_load_opts lo = {.int8 = o->int8, .threads = o->threads, .adapter = o->adapter, .device = o->device};
    c->m = llm_load(o->model, &lo, err, sizeof err);
    if (!c->m) die("%s", err);
    if (!c->m->tok) die_at(o->model, -1, "the model has no tokenizer.model");
    c->V = c->m->cfg.vocab_size;
    c->eos = c->m->cfg.eos_id >= 0 ? c->m->cfg.eos_id : tok_eos(c->m->tok);
    if (c->eos < 0 || c->eos >= c->V) die_at(o->model, -1, "the model has no EOS token");
    set_options(c);
    tokenise(c);
    pack_header(c);
    c->ans = xcalloc(c->n_q ? c->n_q : 1, sizeof *c->ans);

    /* answers from an earlier run */
    imap have;
    imap_init(&have);
    ans_set old = {0};
    if (to_file) {
        size_t n = strlen(o->output) + 16;
        c->ppath = xmalloc(n);
        snprintf(c->ppath, n, "%s.partial", o->output);
        if (o->resume) {
            const char *src = NULL;
            if (file_exists(c->ppath)) { load_partial(c->ppath, &old); src = c->ppath; }
            else if (file_exists(o->output)) { load_stream(o->output, &old, true); src = o->output; }
            if (src && (old.hdr_len != c->hdr_len || memcmp(old.hdr, c->hdr, c->hdr_len) != 0))
                die_at(src, 0, "--resume: written with other parameters, model, shard or queries (its header differs)");
            imap ids;
            imap_init(&ids);
            for (size_t k = 0; k < c->n_su; k++) {
                const user_ent *u = &c->u[c->su[k]];
                for (int j = 0; j < u->n_q; j++) imap_put(&ids, c->q[u->q[j]].id, 1);
            }
            for (size_t k = 0; k < old.n; k++) {
                if (imap_get(&ids, old.id[k]) < 0)
                    die_at(src, (long)k + 1, "--resume: answer id %lld is not among this shard's queries", (long long)old.id[k]);
                imap_put(&have, old.id[k], 1);
            }
            imap_free(&ids);
        }
        /* a fresh partial: header and the kept records, then appended to */
        size_t tn = strlen(c->ppath) + 32;
        char *tmp = xmalloc(tn);
        snprintf(tmp, tn, "%s.tmp.%ld", c->ppath, (long)getpid());
        err_register_tmp(tmp);
        FILE *fp = fopen(tmp, "wb");
        if (!fp) die_at(tmp, -1, "cannot create: %s", strerror(errno));
        c->pf = fp;
        pf_write(c, c->hdr, c->hdr_len);
        for (size_t k = 0; k < old.n; k++) pf_write(c, old.buf + old.off[k], old.rlen[k]);
        pf_flush(c);
        if (rename(tmp, c->ppath) != 0) die_at(c->ppath, -1, "cannot rename into place: %s", strerror(errno));
        err_unregister_tmp(tmp);
        free(tmp);
        ans_free(&old);
    } else {
        c->sw = sw_open(NULL, o->zstd);
        sw_raw(c->sw, c->hdr, c->hdr_len);
    }

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
            for (int j = 0; j < u->n_q; j++) { nq++; kept += imap_get(&have, c->q[u->q[j]].id) >= 0; }
        }
        if (kept == nq) { st->skipped += nq; c->done_q += nq; continue; }
        if (o->max_users > 0 && st->users >= o->max_users) { stopped = true; break; }
        run_window(c, c->su + w0, nu);
    }
    st->seconds = now_seconds() - c->t0;
    double el = st->seconds;
    char extra[96];
    snprintf(extra, sizeof extra, "%.1f queries/s, %.0f tokens/s", el > 0 ? st->queries / el : 0,
             el > 0 ? (st->computed_tokens + st->generated_tokens + st->scored_tokens) / el : 0);
    progress_done(&c->pr, (uint64_t)c->done_q, extra);
    imap_free(&have);

    if (c->sw) {
        sw_close(c->sw);
        st->complete = true;
    } else {
        if (fsync(fileno(c->pf)) != 0 && errno != EINVAL) die_at(c->ppath, -1, "fsync failed: %s", strerror(errno));
        if (fclose(c->pf) != 0) die_at(c->ppath, -1, "write failed: %s", strerror(errno));
        c->pf = NULL;
        if (!stopped) { write_final(c); st->complete = true; }
    }
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

    /* cleanup */
    for (size_t i = 0; i < c->n_q; i++) {
        query *q = &c->q[i];
        free(q->prompt); free(q->toks);
        for (int k = 0; k < q->n_titles; k++) {
            free(q->titles[k]);
            if (q->tsep) { free(q->tsep[k]); free(q->teos[k]); }
        }
        free(q->titles); free(q->tsep); free(q->teos); free(q->nsep); free(q->neos);
    }
    for (size_t k = 0; k < c->n_os; k++) { free(c->os[k].tail); for (int v = 0; v < MAX_SCALE; v++) free(c->os[k].tok[v]); }
    free(c->os);
    for (size_t k = 0; k < c->n_u; k++) free(c->u[k].q);
    for (size_t k = 0; k < c->n_g; k++) llm_seq_free(c->g[k].seq);
    free(c->q); free(c->u); free(c->su); free(c->g); free(c->ans); free(c->hdr); free(c->ppath);
    free(c->item_fmt); free(c->sep); free(c->yes); free(c->no);
    free((char *)c->qname);
    msgpack_zone_destroy(&c->zone);
    llm_free(c->m);
}

/* ======================================================================== merge */

static int cmp_ref(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

void rank_merge(const char *const *inputs, int n, const char *output, bool zstd) {
    ans_set *s = xcalloc((size_t)n, sizeof *s);
    size_t total = 0;
    int shard_n = 0;
    bool *seen = NULL;
    unsigned char *hdr = NULL; size_t hdr_len = 0; /* header without shard */
    for (int i = 0; i < n; i++) {
        load_stream(inputs[i], &s[i], true);
        total += s[i].n;
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        msgpack_unpack_next(&u, (const char *)s[i].hdr, s[i].hdr_len, &off);
        const msgpack_object *h = &u.data;
        const msgpack_object *sh = mp_find(h, "shard");
        int si = 0, sn = 1;
        if (sh) {
            const msgpack_object *a = mp_find(sh, "i"), *b = mp_find(sh, "n");
            if (!a || !b || a->type != MSGPACK_OBJECT_POSITIVE_INTEGER || b->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
                b->via.u64 < 1 || b->via.u64 > 1000000 || a->via.u64 >= b->via.u64)
                die_at(inputs[i], 0, "field 'shard': expected {i, n} with 0 <= i < n");
            si = (int)a->via.u64; sn = (int)b->via.u64;
        }
        if (i == 0) { shard_n = sn; seen = xcalloc((size_t)sn, 1); }
        else if (sn != shard_n) die_at(inputs[i], 0, "field 'shard': a shard of %d, the first input is a shard of %d", sn, shard_n);
        if (seen[si]) die_at(inputs[i], 0, "field 'shard': shard %d/%d given twice", si, sn);
        seen[si] = 1;
        msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
        msgpack_packer pk; msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, h->via.map.size - (sh ? 1 : 0));
        for (uint32_t k = 0; k < h->via.map.size; k++) {
            const msgpack_object_kv *kv = &h->via.map.ptr[k];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 5 && memcmp(kv->key.via.str.ptr, "shard", 5) == 0) continue;
            msgpack_pack_object(&pk, kv->key);
            msgpack_pack_object(&pk, kv->val);
        }
        if (i == 0) { hdr = xmalloc(sb.size); memcpy(hdr, sb.data, sb.size); hdr_len = sb.size; }
        else if (sb.size != hdr_len || memcmp(sb.data, hdr, hdr_len) != 0)
            die_at(inputs[i], 0, "header differs from %s's (other parameters, model or queries)", inputs[0]);
        msgpack_sbuffer_destroy(&sb);
        msgpack_unpacked_destroy(&u);
    }
    for (int k = 0; k < shard_n; k++) if (!seen[k]) die("--merge: shard %d/%d is missing", k, shard_n);
    /* (id, input, record) sorted by id */
    int64_t *ref = xmalloc(sizeof *ref * 3 * (total ? total : 1));
    size_t m = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < s[i].n; k++) { ref[3 * m] = s[i].id[k]; ref[3 * m + 1] = i; ref[3 * m + 2] = (int64_t)k; m++; }
    qsort(ref, m, sizeof *ref * 3, cmp_ref);
    for (size_t k = 1; k < m; k++)
        if (ref[3 * k] == ref[3 * (k - 1)])
            die_at(inputs[ref[3 * k + 1]], (long)ref[3 * k + 2] + 1, "field 'id': %lld also answered in %s", (long long)ref[3 * k],
                   inputs[ref[3 * (k - 1) + 1]]);
    stream_writer *w = sw_open(output, zstd);
    sw_raw(w, hdr, hdr_len);
    for (size_t k = 0; k < m; k++) {
        const ans_set *a = &s[ref[3 * k + 1]];
        size_t r = (size_t)ref[3 * k + 2];
        sw_raw(w, a->buf + a->off[r], a->rlen[r]);
    }
    sw_close(w);
    for (int i = 0; i < n; i++) ans_free(&s[i]);
    free(s); free(ref); free(hdr); free(seen);
}
