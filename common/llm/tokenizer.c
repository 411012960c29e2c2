/* tokenizer.c - SentencePiece BPE tokenizer, bit-compatible with `spm_encode --output_format=id`
 * (SentencePiece 0.1.97, Debian) for BPE models. See docs/tokenizer.md.
 *
 * Encoding follows SentencePiece's own pipeline:
 *   1. normalise (normalizer.cc): optional precompiled character map (NFKC etc.), user-defined
 *      symbols copied verbatim, invalid UTF-8 bytes -> U+FFFD, optional removal of leading,
 *      trailing and repeated spaces, a dummy-prefix space, ' ' -> U+2581;
 *   2. split into characters, except that user-defined symbols are matched (longest first)
 *      and frozen (bpe_model.cc);
 *   3. repeatedly merge the adjacent pair whose concatenation is the vocabulary piece with the
 *      highest score, the leftmost on ties (a max-heap of candidate pairs over a linked list;
 *      stale candidates are skipped when popped, exactly as SentencePiece does);
 *   4. pieces not in the vocabulary become <unk>, or their UTF-8 bytes <0xNN> when the model
 *      has byte_fallback; consecutive <unk>s collapse into one.
 * Every step mirrors the reference code closely because "almost the same ids" is a bug:
 * the model was trained on the reference tokenisation.
 * Loading (and the byte-level BPE kind's wrapping) is in tokenizer_load.c, the struct in
 * tokenizer_impl.h; every tok_* function here defers to bpe.c for the byte-level kind.
 */
#include "llm/tokenizer.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "llm/bpe.h"
#include "llm/spm_proto.h"
#include "llm/tok_common.h"
#include "llm/tokenizer_impl.h"

/* ---------- piece map ---------- */

void sp_map_init(piece_map *pm, int n) {
    uint32_t cap = 16;
    while (cap < (uint32_t)n * 2 + 16) cap <<= 1;
    pm->slot = xcalloc(cap, sizeof *pm->slot);
    pm->mask = cap - 1;
}

/* The id of piece s[0..n) whose tok_fnv1a is hash, or -1. */
static int map_get_hashed(const llm_tokenizer *t, const piece_map *pm, const char *s, size_t n, uint32_t hash) {
    for (uint32_t h = hash & pm->mask;; h = (h + 1) & pm->mask) {
        int v = pm->slot[h];
        if (!v) return -1;
        const spm_piece *p = &t->m.pieces[v - 1];
        if (p->len == n && memcmp(p->piece, s, n) == 0) return v - 1;
    }
}

static int map_get(const llm_tokenizer *t, const piece_map *pm, const char *s, size_t n) {
    return map_get_hashed(t, pm, s, n, tok_fnv1a(s, n));
}

int sp_map_put(llm_tokenizer *t, piece_map *pm, int id) {
    const spm_piece *p = &t->m.pieces[id];
    if (map_get(t, pm, p->piece, p->len) >= 0) return -1;
    uint32_t h = tok_fnv1a(p->piece, p->len) & pm->mask;
    while (pm->slot[h]) h = (h + 1) & pm->mask;
    pm->slot[h] = id + 1;
    return 0;
}

int sp_piece_to_id(const llm_tokenizer *t, const char *s, size_t n) {
    int id = map_get(t, &t->reserved, s, n);
    if (id < 0) id = map_get(t, &t->normal, s, n);
    return id < 0 ? t->unk : id;
}

/* ---------- UTF-8 helpers (util.h of SentencePiece) ---------- */

/* Length of the UTF-8 character starting with byte c, judged by its first byte only. */
static size_t one_char_len(uint8_t c) {
    static const uint8_t len[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return len[c >> 4];
}

static int trail(uint8_t c) { return (c & 0xC0) == 0x80; }
static int valid_cp(uint32_t c) { return c < 0xD800 || (c >= 0xE000 && c <= 0x10FFFF); }

/* IsValidDecodeUTF8: 1 and the character length when s starts with a well-formed UTF-8
 * character (shortest form, no surrogates); 0 and length 1 otherwise. */
static int valid_utf8(const uint8_t *s, size_t n, size_t *len) {
    uint32_t cp;
    *len = 1;
    if (s[0] < 0x80) return 1;
    if (n >= 2 && (s[0] & 0xE0) == 0xC0 && trail(s[1])) {
        cp = (uint32_t)(s[0] & 0x1F) << 6 | (s[1] & 0x3F);
        if (cp >= 0x80) { *len = 2; return 1; }
    } else if (n >= 3 && (s[0] & 0xF0) == 0xE0 && trail(s[1]) && trail(s[2])) {
        cp = (uint32_t)(s[0] & 0x0F) << 12 | (uint32_t)(s[1] & 0x3F) << 6 | (s[2] & 0x3F);
        if (cp >= 0x800 && valid_cp(cp)) { *len = 3; return 1; }
    } else if (n >= 4 && (s[0] & 0xF8) == 0xF0 && trail(s[1]) && trail(s[2]) && trail(s[3])) {
        cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3F) << 12 |
             (uint32_t)(s[2] & 0x3F) << 6 | (s[3] & 0x3F);
        if (cp >= 0x10000 && valid_cp(cp)) { *len = 4; return 1; }
    }
    return 0;
}
/* ---------- normalisation ---------- */

/* Longest user-defined symbol at the start of s (0 when none). The hashes of all prefixes come
 * from one pass (FNV-1a extends byte by byte), so trying every length from the longest symbol's
 * down costs one probe each, not one hash of k bytes each: ITREK's item symbols all start with
 * '"' and run to 80 bytes, and hashing every prefix anew took a quarter of a short pretraining
 * run's time (perf, 2026-11-27). */
static size_t user_match(const llm_tokenizer *t, const char *s, size_t n) {
    if (!t->n_user || !n || !t->user_first[(uint8_t)s[0]]) return 0;
    size_t kmax = n < t->user_maxlen ? n : t->user_maxlen;
    uint32_t stack_hash[256], *hash = kmax <= 256 ? stack_hash : xmalloc(kmax * sizeof *hash);
    uint32_t h = 2166136261u; /* hash_bytes, one byte at a time: hash[k - 1] is that of s[0..k) */
    for (size_t i = 0; i < kmax; i++) hash[i] = h = (h ^ (uint8_t)s[i]) * 16777619u;
    size_t found = 0;
    for (size_t k = kmax; k > 0 && !found; k--) {
        int id = map_get_hashed(t, &t->normal, s, k, hash[k - 1]);
        if (id >= 0 && t->m.pieces[id].type == SPM_USER_DEFINED) found = k;
    }
    if (hash != stack_hash) free(hash);
    return found;
}

/* darts-clone DoubleArray::commonPrefixSearch, keeping the longest hit. Returns the matched
 * length (0: none) and the offset of the replacement string in *value. Every index is
 * bounds-checked, so a corrupt charsmap gives wrong text, never a crash. */
static size_t trie_longest(const llm_tokenizer *t, const uint8_t *s, size_t n, uint32_t *value) {
    const uint32_t *a = t->trie;
    size_t best = 0, pos = 0;
#define UNIT_OFFSET(u) (((u) >> 10) << (((u) & (1u << 9)) >> 6))
#define UNIT_LABEL(u) ((u) & ((1u << 31) | 0xFFu))
#define UNIT_HAS_LEAF(u) (((u) >> 8) & 1u)
    pos ^= UNIT_OFFSET(a[0]);
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= t->n_trie) break;
        uint32_t u = a[pos];
        if (UNIT_LABEL(u) != s[i]) break;
        pos ^= UNIT_OFFSET(u);
        if (UNIT_HAS_LEAF(u)) {
            if (pos >= t->n_trie) break;
            *value = a[pos] & 0x7FFFFFFFu;
            best = i + 1;
        }
    }
    return best;
}

/* NormalizePrefix: how many input bytes the next unit consumes, and its normalised text. */
static size_t norm_prefix(const llm_tokenizer *t, const char *s, size_t n, const char **out, size_t *outlen) {
    size_t k = user_match(t, s, n);
    if (k) { *out = s; *outlen = k; return k; }
    if (t->trie) {
        uint32_t v = 0;
        k = trie_longest(t, (const uint8_t *)s, n, &v);
        if (k) {
            if (v < t->repl_len) {
                const char *r = t->repl + v;
                const char *z = memchr(r, 0, t->repl_len - v);
                *out = r;
                *outlen = z ? (size_t)(z - r) : t->repl_len - v;
            } else {
                *out = "";
                *outlen = 0;
            }
            return k;
        }
    }
    if (!valid_utf8((const uint8_t *)s, n, &k)) {
        *out = "\xEF\xBF\xBD";   /* U+FFFD for each malformed byte */
        *outlen = 3;
        return 1;
    }
    *out = s;
    *outlen = k;
    return k;
}

static void add_ws(const llm_tokenizer *t, sbuf *b) {
    if (t->m.escape_whitespaces) sb_put(b, WS, WS_LEN);
    else sb_put(b, " ", 1);
}

/* Normalizer::Normalize into b (b->n = 0 on entry). */
static void normalize(const llm_tokenizer *t, const char *s, size_t n, sbuf *b) {
    const int rm = t->m.remove_extra_whitespaces;
    const char *p;
    size_t plen, k;
    if (rm) {   /* leading spaces (after normalisation) are dropped */
        while (n) {
            k = norm_prefix(t, s, n, &p, &plen);
            if (!(plen == 1 && p[0] == ' ')) break;
            s += k; n -= k;
        }
    }
    if (!n) return;   /* empty or all spaces: no dummy prefix either */
    if (t->m.add_dummy_prefix) add_ws(t, b);
    int prev_space = rm;
    while (n) {
        k = norm_prefix(t, s, n, &p, &plen);
        while (prev_space && plen && p[0] == ' ') p++, plen--;
        if (plen) {
            for (size_t i = 0; i < plen; i++) {
                if (t->m.escape_whitespaces && p[i] == ' ') sb_put(b, WS, WS_LEN);
                else sb_put(b, p + i, 1);
            }
            prev_space = p[plen - 1] == ' ';
        }
        s += k; n -= k;
        if (!rm) prev_space = 0;
    }
    if (rm) {   /* trailing spaces */
        const char *sp = t->m.escape_whitespaces ? WS : " ";
        size_t sl = t->m.escape_whitespaces ? WS_LEN : 1;
        while (b->n >= sl && memcmp(b->p + b->n - sl, sp, sl) == 0) b->n -= sl;
    }
}

/* ---------- BPE ---------- */

typedef struct {
    float score;
    int left, right;
    uint32_t size;       /* byte length of the merged piece, to detect stale entries */
} pair;

/* heap order: higher score first, then smaller left index (SymbolPairComparator) */
static int pair_before(const void *x, const void *y) {
    const pair *a = x, *b = y;
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct {
    const llm_tokenizer *t;
    const char *s;           /* normalised text */
    uint32_t *start, *len;
    int *prev, *next;
    uint8_t *freeze;
    tok_heap heap;           /* of pair, by pair_before */
    /* rev_merge for UNUSED pieces: (id, left length), latest wins */
    int *rev_id;
    uint32_t *rev_left;
    size_t nrev, caprev;
    /* output */
    int *ids;
    int max_ids, count;
    int prev_unk;
} bpe_ctx;

/* MaybeAddNewSymbolPair */
static void maybe_add(bpe_ctx *c, int left, int right) {
    if (left < 0 || right < 0 || c->freeze[left] || c->freeze[right]) return;
    uint32_t size = c->len[left] + c->len[right];
    int id = map_get(c->t, &c->t->normal, c->s + c->start[left], size);
    if (id < 0) return;
    pair p = { c->t->m.pieces[id].score, left, right, size };
    tok_heap_push(&c->heap, &p);
    if (c->t->m.pieces[id].type == SPM_UNUSED) {
        if (c->nrev == c->caprev) {
            c->caprev = c->caprev * 2 + 8;
            c->rev_id = xrealloc(c->rev_id, c->caprev * sizeof *c->rev_id);
            c->rev_left = xrealloc(c->rev_left, c->caprev * sizeof *c->rev_left);
        }
        c->rev_id[c->nrev] = id;
        c->rev_left[c->nrev++] = c->len[left];
    }
}

static void emit_id(bpe_ctx *c, int id) {
    if (c->count < c->max_ids) c->ids[c->count] = id;
    c->count++;
}

/* One final piece -> ids (PopulateSentencePieceText): byte fallback or merged <unk>s. */
static void emit_piece(bpe_ctx *c, const char *w, size_t n) {
    const llm_tokenizer *t = c->t;
    int id = sp_piece_to_id(t, w, n);
    int is_unk = t->m.pieces[id].type == SPM_UNKNOWN;
    if (is_unk && t->byte_fallback) {
        for (size_t i = 0; i < n; i++) emit_id(c, t->byte_id[(uint8_t)w[i]]);
    } else if (!(is_unk && c->prev_unk)) {
        emit_id(c, id);
    }
    c->prev_unk = is_unk;
}

/* resegment: an UNUSED piece is split back into the two parts it was merged from. */
static void resegment(bpe_ctx *c, const char *w, size_t n, int depth) {
    int id = sp_piece_to_id(c->t, w, n);
    if (c->t->m.pieces[id].type == SPM_UNUSED && depth < 64) {
        for (size_t r = c->nrev; r-- > 0;) {
            if (c->rev_id[r] != id) continue;
            size_t l = c->rev_left[r];
            resegment(c, w, l, depth + 1);
            resegment(c, w + l, n - l, depth + 1);
            return;
        }
    }
    emit_piece(c, w, n);
}

static void bpe(bpe_ctx *c, size_t n) {
    const llm_tokenizer *t = c->t;
    const char *s = c->s;
    int ns = 0;
    c->start = xmalloc((n + 1) * sizeof *c->start);
    c->len = xmalloc((n + 1) * sizeof *c->len);
    c->prev = xmalloc((n + 1) * sizeof *c->prev);
    c->next = xmalloc((n + 1) * sizeof *c->next);
    c->freeze = xmalloc(n + 1);
    for (size_t pos = 0; pos < n; ns++) {
        size_t k = user_match(t, s + pos, n - pos);
        c->freeze[ns] = k > 0;
        if (!k) {
            k = one_char_len((uint8_t)s[pos]);
            if (k > n - pos) k = n - pos;
        }
        c->start[ns] = (uint32_t)pos;
        c->len[ns] = (uint32_t)k;
        c->prev[ns] = ns - 1;
        pos += k;
        c->next[ns] = pos < n ? ns + 1 : -1;
    }
    for (int i = 1; i < ns; i++) maybe_add(c, i - 1, i);
    while (c->heap.n) {
        pair top;
        tok_heap_pop(&c->heap, &top);
        int l = top.left, r = top.right;
        if (!c->len[l] || !c->len[r] || c->len[l] + c->len[r] != top.size) continue;  /* stale */
        c->len[l] += c->len[r];
        c->next[l] = c->next[r];
        if (c->next[r] >= 0) c->prev[c->next[r]] = l;
        c->len[r] = 0;
        maybe_add(c, c->prev[l], l);
        maybe_add(c, l, c->next[l]);
    }
    for (int i = ns ? 0 : -1; i != -1; i = c->next[i]) {
        if (t->has_unused) resegment(c, s + c->start[i], c->len[i], 0);
        else emit_piece(c, s + c->start[i], c->len[i]);
    }
    free(c->start); free(c->len); free(c->prev); free(c->next); free(c->freeze);
    tok_heap_free(&c->heap); free(c->rev_id); free(c->rev_left);
}

int tok_encode(const llm_tokenizer *t, const char *text, int add_bos, int add_eos,
               int *ids, int max_ids) {
    if (t->bpe) return bpe_encode(t->bpe, text, add_bos, add_eos, ids, max_ids);
    bpe_ctx c = {.t = t, .ids = ids, .max_ids = ids ? max_ids : 0};
    tok_heap_init(&c.heap, sizeof(pair), pair_before);
    if (add_bos && t->bos >= 0) emit_id(&c, t->bos);
    size_t n = text ? strlen(text) : 0;
    sbuf b = { 0 };
    b.cap = 3 * n + 16;
    b.p = xmalloc(b.cap);
    normalize(t, text ? text : "", n, &b);
    c.s = b.p;
    bpe(&c, b.n);
    free(b.p);
    if (add_eos && t->eos >= 0) emit_id(&c, t->eos);
    return c.count;
}

/* ---------- decoding ---------- */

typedef struct {
    char *buf;
    size_t cap, n;   /* n counts every byte, also those that did not fit */
} out_t;

static void out_put(out_t *o, const char *s, size_t n) {
    if (o->cap && o->n < o->cap - 1) {
        size_t room = o->cap - 1 - o->n;
        memcpy(o->buf + o->n, s, n < room ? n : room);
    }
    o->n += n;
}

/* A run of byte pieces -> UTF-8; each byte that does not start a well-formed character
 * becomes U+FFFD (ProcessBytePieces). */
static void flush_bytes(out_t *o, const uint8_t *bytes, size_t nb) {
    size_t off = 0, k;
    while (off < nb) {
        if (valid_utf8(bytes + off, nb - off, &k)) out_put(o, (const char *)bytes + off, k);
        else out_put(o, "\xEF\xBF\xBD", 3);
        off += k;
    }
}

/* Append piece text with U+2581 -> ' '. */
static void put_unescaped(out_t *o, const char *p, size_t n) {
    size_t i = 0, run = 0;
    while (i < n) {
        if (n - i >= WS_LEN && memcmp(p + i, WS, WS_LEN) == 0) {
            out_put(o, p + run, i - run);
            out_put(o, " ", 1);
            i += WS_LEN;
            run = i;
        } else {
            i++;
        }
    }
    out_put(o, p + run, n - run);
}

char *sp_surface(const char *p, size_t n) {
    out_t o = { NULL, 0, 0 };
    put_unescaped(&o, p, n);   /* measure */
    char *s = xmalloc(o.n + 1);
    out_t w = { s, o.n + 1, 0 };
    put_unescaped(&w, p, n);
    s[o.n] = 0;
    return s;
}

size_t tok_decode(const llm_tokenizer *t, const int *ids, int n, char *buf, size_t buflen) {
    if (t->bpe) return bpe_decode(t->bpe, ids, n, buf, buflen);
    out_t o = { buf, buflen, 0 };
    uint8_t *bytes = xmalloc((size_t)(n > 0 ? n : 1));
    size_t nb = 0;
    int is_bos_ws = 1, bos_ws_seen = 0;
    for (int i = 0; i < n; i++) {
        int id = ids[i];
        if (id < 0 || id >= t->n) continue;   /* spm_decode refuses these; we skip them */
        const spm_piece *sp = &t->m.pieces[id];
        if (sp->type == SPM_BYTE) {
            bytes[nb++] = (uint8_t)strtol(sp->piece + 3, NULL, 16);
            continue;
        }
        flush_bytes(&o, bytes, nb);
        nb = 0;
        if (bos_ws_seen || o.n > 0) is_bos_ws = 0;
        bos_ws_seen = 0;
        if (sp->type == SPM_CONTROL) continue;            /* <s>, </s>: invisible */
        if (sp->type == SPM_UNKNOWN) {
            out_put(&o, t->m.unk_surface, strlen(t->m.unk_surface));
            continue;
        }
        const char *p = sp->piece;
        size_t len = sp->len;
        if (is_bos_ws && (t->m.add_dummy_prefix || t->m.remove_extra_whitespaces) &&
            len >= WS_LEN && memcmp(p, WS, WS_LEN) == 0) {
            p += WS_LEN;
            len -= WS_LEN;
            /* with remove_extra_whitespaces every leading space goes, not just one */
            bos_ws_seen = !t->m.remove_extra_whitespaces;
        }
        put_unescaped(&o, p, len);
    }
    flush_bytes(&o, bytes, nb);
    free(bytes);
    if (buflen) buf[o.n < buflen - 1 ? o.n : buflen - 1] = 0;
    return o.n;
}

const char *tok_decode_piece(const llm_tokenizer *t, int prev, int id, char scratch[8]) {
    if (t->bpe) return bpe_decode_piece(t->bpe, id);
    if (id < 0 || id >= t->n) return "";
    const spm_piece *sp = &t->m.pieces[id];
    switch (sp->type) {
    case SPM_CONTROL:
        return "";
    case SPM_UNKNOWN:
        return t->m.unk_surface;
    case SPM_BYTE:   /* raw byte: consecutive calls reassemble multi-byte characters */
        scratch[0] = (char)strtol(sp->piece + 3, NULL, 16);
        scratch[1] = 0;
        return scratch;
    default: {
        const char *s = t->surface[id];
        /* the dummy-prefix space of the first word is not part of the text */
        if ((prev < 0 || prev == t->bos) && t->m.add_dummy_prefix && s[0] == ' ') s++;
        return s;
    }
    }
}
/* ---------- accessors ---------- */

int tok_vocab_size(const llm_tokenizer *t) { return t->bpe ? bpe_vocab_size(t->bpe) : t->n; }
int tok_bos(const llm_tokenizer *t) { return t->bpe ? bpe_bos(t->bpe) : t->bos; }
int tok_eos(const llm_tokenizer *t) { return t->bpe ? bpe_eos(t->bpe) : t->eos; }
int tok_unk(const llm_tokenizer *t) { return t->bpe ? bpe_unk(t->bpe) : t->unk; }
int tok_pad(const llm_tokenizer *t) { return t->bpe ? bpe_pad(t->bpe) : t->pad; }
int tok_is_bpe(const llm_tokenizer *t) { return t->bpe != NULL; }
int tok_add_bos(const llm_tokenizer *t) { return t->bpe ? bpe_add_bos(t->bpe) : t->bos >= 0; }

int tok_piece_id(const llm_tokenizer *t, const char *piece) {
    if (t->bpe) return bpe_piece_id(t->bpe, piece);
    size_t n = strlen(piece);
    int id = map_get(t, &t->reserved, piece, n);
    return id >= 0 ? id : map_get(t, &t->normal, piece, n);
}

const char *tok_piece(const llm_tokenizer *t, int id) {
    if (t->bpe) return bpe_piece(t->bpe, id);
    return id >= 0 && id < t->n ? t->m.pieces[id].piece : NULL;
}
