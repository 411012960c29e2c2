/* bpe.c - byte-level BPE tokenizer (GPT-2 family), bit-compatible with Hugging Face
 * `tokenizers` (checked against 0.23.3: tests/llm/bpe.sh) for the pre-tokenizers of
 * bpe_load.c's PRE[]: GPT-2's byte <-> character tables, UTF-8, the lookups, pre-tokenisation,
 * encoding and decoding. Loading is in bpe_load.c, the struct in bpe_impl.h.
 * See bpe.h for the pipeline and docs/tokenizer.md, "Byte-level BPE".
 *
 * Data layout: token strings in one arena (NUL-terminated), an open-addressing map from
 * string to id, a map from a pair of ids to (rank, merged id), and per token its decoded
 * bytes ("surface"). Merging works on ids, never on strings: a merge "a b" is stored as
 * (id(a), id(b)) -> (rank, id(ab)), as HF's BPE model does.
 */
#include "llm/bpe.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "llm/bpe_impl.h"
#include "llm/tok_common.h"

/* ---------- byte <-> unicode (GPT-2's bytes_to_unicode) ---------- */

static uint32_t byte_cp[256];
static int16_t cp_byte[324];   /* code point -> byte; -1 when not a byte-level character */

static void init_tables_once(void) {
    int k = 0;
    for (int cp = 0; cp < 324; cp++) cp_byte[cp] = -1;
    for (int b = 0; b < 256; b++) {
        int self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
        byte_cp[b] = self ? (uint32_t)b : (uint32_t)(256 + k++);
        cp_byte[byte_cp[b]] = (int16_t)b;
    }
}

void bpe_init_tables(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_tables_once);
}

size_t bpe_bytes_to_unicode(const char *s, size_t n, char *out) {
    bpe_init_tables();
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = byte_cp[(uint8_t)s[i]];
        if (cp < 0x80) {
            out[o++] = (char)cp;
        } else {
            out[o++] = (char)(0xC0 | (cp >> 6));
            out[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    out[o] = 0;
    return o;
}

int bpe_cp_byte(uint32_t cp) { return cp < 324 ? cp_byte[cp] : -1; }

/* ---------- UTF-8 ---------- */

/* 1 and the length when s starts with a well-formed character; else 0 and the length of the
 * maximal malformed part (Unicode's "maximal subpart", what from_utf8_lossy replaces). */
int bpe_utf8_char(const uint8_t *s, size_t n, size_t *len) {
    uint8_t c = s[0], lo = 0x80, hi = 0xBF;
    size_t need;
    *len = 1;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 1;
    else if (c == 0xE0) need = 2, lo = 0xA0;
    else if (c == 0xED) need = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) need = 2;
    else if (c == 0xF0) need = 3, lo = 0x90;
    else if (c == 0xF4) need = 3, hi = 0x8F;
    else if (c >= 0xF1 && c <= 0xF3) need = 3;
    else return 0;
    if (n < 2 || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i <= need; i++) {
        if (i >= n || (s[i] & 0xC0) != 0x80) { *len = i; return 0; }
    }
    *len = need + 1;
    return 1;
}

/* A copy of s with each malformed part replaced by U+FFFD, or NULL when s is valid. */
static char *utf8_clean(const char *s, size_t n, size_t *outn) {
    size_t i = 0, k;
    while (i < n && bpe_utf8_char((const uint8_t *)s + i, n - i, &k)) i += k;
    if (i == n) return NULL;
    char *o = xmalloc(3 * n + 1);
    memcpy(o, s, i);
    size_t m = i;
    while (i < n) {
        if (bpe_utf8_char((const uint8_t *)s + i, n - i, &k)) {
            memcpy(o + m, s + i, k);
            m += k;
        } else {
            memcpy(o + m, "\xEF\xBF\xBD", 3);
            m += 3;
        }
        i += k;
    }
    o[m] = 0;
    *outn = m;
    return o;
}

/* ---------- maps ---------- */

int bpe_str_get(const bpe_tokenizer *b, const char *s, size_t n) {
    for (uint32_t h = tok_fnv1a(s, n) & b->map.mask;; h = (h + 1) & b->map.mask) {
        int v = b->map.slot[h];
        if (!v) return -1;
        if (b->len[v - 1] == n && memcmp(b->arena + b->off[v - 1], s, n) == 0) return v - 1;
    }
}

/* rank of merging ids a, b (and the merged id), or -1 */
static int pair_get(const pairmap *pm, int a, int b, int *merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (uint64_t h = bpe_mix64(key) & pm->mask;; h = (h + 1) & pm->mask) {
        if (pm->key[h] == UINT64_MAX) return -1;
        if (pm->key[h] == key) {
            *merged = pm->merged[h];
            return pm->rank[h];
        }
    }
}

/* ---------- accessors ---------- */

const char *bpe_pre_name(const bpe_tokenizer *b) { return b->pre->name; }
int bpe_vocab_size(const bpe_tokenizer *b) { return b->n; }
int bpe_bos(const bpe_tokenizer *b) { return b->bos; }
int bpe_eos(const bpe_tokenizer *b) { return b->eos; }
int bpe_unk(const bpe_tokenizer *b) { return b->unk; }
int bpe_pad(const bpe_tokenizer *b) { return b->pad; }
int bpe_add_bos(const bpe_tokenizer *b) { return b->add_bos; }
int bpe_piece_id(const bpe_tokenizer *b, const char *piece) { return bpe_str_get(b, piece, strlen(piece)); }
const char *bpe_piece(const bpe_tokenizer *b, int id) { return id >= 0 && id < b->n ? b->arena + b->off[id] : NULL; }

/* ---------- pre-tokenisation ---------- */

typedef void (*sink_fn)(void *ctx, const char *s, size_t n);

static int re_match(const bpe_tokenizer *b, int r, const char *s, size_t n, size_t off, pcre2_match_data *md) {
    int rc;
    if (b->jit[r]) {
        rc = pcre2_jit_match(b->re[r], (PCRE2_SPTR)s, n, off, 0, md, NULL);
        if (rc != PCRE2_ERROR_JIT_STACKLIMIT) return rc;
    }
    return pcre2_match(b->re[r], (PCRE2_SPTR)s, n, off, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, md, NULL);
}

/* Stage r of the pre-tokenizer on s[0..n): matches and the text between them, in order, each
 * passed on to the next stage (HF's Split with behaviour Isolated). */
static void split(const bpe_tokenizer *b, int r, pcre2_match_data *md, const char *s, size_t n, sink_fn fn, void *ctx) {
    if (!n) return;
    if (r == b->pre->nre) {
        fn(ctx, s, n);
        return;
    }
    size_t last = 0, off = 0;
    while (off < n) {
        if (re_match(b, r, s, n, off, md) < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t ms = ov[0], me = ov[1];
        if (me <= ms) {   /* an empty match (none of PRE's regexes has one): move on a character */
            size_t k;
            bpe_utf8_char((const uint8_t *)s + ms, n - ms, &k);
            off = ms + (ms < n ? k : 1);
            continue;
        }
        if (ms > last) split(b, r + 1, md, s + last, ms - last, fn, ctx);
        split(b, r + 1, md, s + ms, me - ms, fn, ctx);
        last = off = me;
    }
    if (last < n) split(b, r + 1, md, s + last, n - last, fn, ctx);
}

void bpe_pretokenize(const bpe_tokenizer *b, const char *text, void (*fn)(void *ctx, const char *s, size_t n), void *ctx) {
    size_t n = text ? strlen(text) : 0, cn;
    char *clean = utf8_clean(text ? text : "", n, &cn);
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    split(b, 0, md, clean ? clean : text, clean ? cn : n, fn, ctx);
    pcre2_match_data_free(md);
    free(clean);
}

/* ---------- BPE ---------- */

typedef struct {
    int rank, pos, merged;
} merge_cand;

typedef struct {
    const bpe_tokenizer *b;
    int *ids;
    int max_ids, count;
    /* per pre-token work space, grown as needed */
    int *sym, *prev, *next;
    size_t cap;
    tok_heap heap;   /* of merge_cand, by cand_before */
    char *ubuf;
    size_t ucap;
} enc_ctx;

static void emit(enc_ctx *c, int id) {
    if (c->count < c->max_ids) c->ids[c->count] = id;
    c->count++;
}

static int cand_before(const void *a, const void *b) {
    const merge_cand *x = a, *y = b;
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void push_pair(enc_ctx *c, int pos) {
    int nx = c->next[pos], merged;
    if (nx < 0) return;
    int rank = pair_get(&c->b->merges, c->sym[pos], c->sym[nx], &merged);
    if (rank >= 0) tok_heap_push(&c->heap, &(merge_cand){ rank, pos, merged });
}

/* One pre-token (raw bytes) -> ids: HF's BPE::merge_word with its priority queue. */
static void bpe_word(void *ctx, const char *s, size_t n) {
    enc_ctx *c = ctx;
    const bpe_tokenizer *b = c->b;
    if (b->ignore_merges) {
        if (c->ucap < 2 * n + 1) {
            c->ucap = 2 * n + 1;
            c->ubuf = xrealloc(c->ubuf, c->ucap);
        }
        size_t k = bpe_bytes_to_unicode(s, n, c->ubuf);
        int id = bpe_str_get(b, c->ubuf, k);
        if (id >= 0) {
            emit(c, id);
            return;
        }
    }
    if (c->cap < n) {
        c->cap = n * 2;
        c->sym = xrealloc(c->sym, c->cap * sizeof *c->sym);
        c->prev = xrealloc(c->prev, c->cap * sizeof *c->prev);
        c->next = xrealloc(c->next, c->cap * sizeof *c->next);
    }
    int ns = 0;
    for (size_t i = 0; i < n; i++) {
        /* a byte whose character is not a token (SmolLM2 has none for 0x04, 0x13, ...) is
         * dropped, as HF's BPE does without a model.unk_token and llama.cpp does for GGUF */
        int id = b->byte_id[(uint8_t)s[i]];
        if (id < 0) id = b->word_unk;
        if (id < 0) continue;
        c->sym[ns] = id;
        c->prev[ns] = ns - 1;
        c->next[ns] = ns + 1;
        ns++;
    }
    if (!ns) return;
    c->next[ns - 1] = -1;
    c->heap.n = 0;
    for (int i = 0; i + 1 < ns; i++) push_pair(c, i);
    while (c->heap.n) {
        merge_cand m;
        tok_heap_pop(&c->heap, &m);
        int pos = m.pos;
        if (c->sym[pos] < 0) continue;              /* merged into its left neighbour */
        int nx = c->next[pos], merged;
        if (nx < 0) continue;
        if (pair_get(&b->merges, c->sym[pos], c->sym[nx], &merged) != m.rank) continue;   /* stale */
        c->sym[pos] = merged;
        c->sym[nx] = -1;
        c->next[pos] = c->next[nx];
        if (c->next[nx] >= 0) c->prev[c->next[nx]] = pos;
        if (c->prev[pos] >= 0) push_pair(c, c->prev[pos]);
        push_pair(c, pos);
    }
    for (int i = 0; i >= 0; i = c->next[i]) emit(c, c->sym[i]);
}

/* The longest control / user-defined token at the start of s, or -1. */
static int special_at(const bpe_tokenizer *b, const char *s, size_t n) {
    if (!b->spec_first[(uint8_t)s[0]]) return -1;
    for (int k = 0; k < b->n_spec; k++) {
        int id = b->spec[k];
        if (b->len[id] <= n && memcmp(s, b->arena + b->off[id], b->len[id]) == 0) return id;
    }
    return -1;
}

int bpe_encode(const bpe_tokenizer *b, const char *text, int add_bos, int add_eos, int *ids, int max_ids) {
    enc_ctx c = {.b = b, .ids = ids, .max_ids = ids ? max_ids : 0};
    tok_heap_init(&c.heap, sizeof(merge_cand), cand_before);
    if (add_bos && b->add_bos && b->bos >= 0) emit(&c, b->bos);
    size_t n = text ? strlen(text) : 0, cn;
    char *clean = utf8_clean(text ? text : "", n, &cn);
    const char *s = clean ? clean : text;
    if (clean) n = cn;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    size_t seg = 0;
    for (size_t i = 0; i < n;) {
        int id = b->n_spec ? special_at(b, s + i, n - i) : -1;
        if (id < 0) {
            i++;
            continue;
        }
        split(b, 0, md, s + seg, i - seg, bpe_word, &c);
        emit(&c, id);
        i += b->len[id];
        seg = i;
    }
    split(b, 0, md, s + seg, n - seg, bpe_word, &c);
    if (add_eos && b->eos >= 0) emit(&c, b->eos);
    pcre2_match_data_free(md);
    free(clean);
    free(c.sym);
    free(c.prev);
    free(c.next);
    tok_heap_free(&c.heap);
    free(c.ubuf);
    return c.count;
}

/* ---------- decoding ---------- */

size_t bpe_decode(const bpe_tokenizer *b, const int *ids, int n, char *buf, size_t buflen) {
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < b->n) total += b->slen[ids[i]];
    uint8_t *raw = xmalloc(total + 1);
    size_t nb = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= b->n) continue;   /* HF skips ids it does not know */
        memcpy(raw + nb, b->sarena + b->soff[ids[i]], b->slen[ids[i]]);
        nb += b->slen[ids[i]];
    }
    size_t o = 0, k;
    for (size_t i = 0; i < nb; i += k) {
        int ok = bpe_utf8_char(raw + i, nb - i, &k);
        const char *p = ok ? (const char *)raw + i : "\xEF\xBF\xBD";
        size_t m = ok ? k : 3;
        if (buflen && o < buflen - 1) memcpy(buf + o, p, m < buflen - 1 - o ? m : buflen - 1 - o);
        o += m;
    }
    if (buflen) buf[o < buflen - 1 ? o : buflen - 1] = 0;
    free(raw);
    return o;
}

const char *bpe_decode_piece(const bpe_tokenizer *b, int id) {
    return id >= 0 && id < b->n ? b->sarena + b->soff[id] : "";
}
