/* bpe.c - byte-level BPE tokenizer (GPT-2 family), bit-compatible with Hugging Face
 * `tokenizers` (checked against 0.23.3: tests/llm/bpe.sh) for the pre-tokenizers in PRE[].
 * See bpe.h for the pipeline and docs/tokenizer.md, "Byte-level BPE".
 *
 * Data layout: token strings in one arena (NUL-terminated), an open-addressing map from
 * string to id, a map from a pair of ids to (rank, merged id), and per token its decoded
 * bytes ("surface"). Merging works on ids, never on strings: a merge "a b" is stored as
 * (id(a), id(b)) -> (rank, id(ab)), as HF's BPE model does.
 */
#include "llm/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/err.h"
#include "llm/gguf.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

/* ---------- pre-tokenizers ---------- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" \
                  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" \
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

typedef struct {
    const char *name;
    const char *alias[3];
    const char *re[2];      /* applied in order; each splits every fragment of the last */
    int nre;
    int gguf_ignore_merges; /* llama.cpp sets ignore_merges for Llama 3's pre-tokenizer */
} pre_def;

static const pre_def PRE[] = {
    { "gpt2", { "gpt-2", NULL, NULL }, { RE_GPT2, NULL }, 1, 0 },
    { "smollm", { NULL, NULL, NULL }, { "\\p{N}", RE_GPT2 }, 2, 0 },
    { "llama-bpe", { "llama3", "llama-v3", NULL }, { RE_LLAMA3, NULL }, 1, 1 },
    { "qwen2", { NULL, NULL, NULL }, { RE_QWEN2, NULL }, 1, 0 },
};
#define NPRE (int)(sizeof PRE / sizeof *PRE)

const char *bpe_known_pre(void) { return "gpt2 (gpt-2), smollm, llama-bpe (llama3, llama-v3), qwen2"; }

static const pre_def *find_pre(const char *name) {
    for (int i = 0; i < NPRE; i++) {
        if (!strcmp(PRE[i].name, name)) return &PRE[i];
        for (int k = 0; k < 3 && PRE[i].alias[k]; k++)
            if (!strcmp(PRE[i].alias[k], name)) return &PRE[i];
    }
    return NULL;
}

/* ---------- the tokenizer ---------- */

typedef struct {
    int *slot;   /* id + 1; 0 = empty */
    uint32_t mask;
} strmap;

typedef struct {
    uint64_t *key;   /* left << 32 | right; UINT64_MAX = empty */
    int *rank, *merged;
    uint64_t mask;
} pairmap;

struct bpe_tokenizer {
    int n;
    char *arena;            /* token strings, NUL-terminated */
    size_t *off;
    uint32_t *len;
    uint8_t *type;
    strmap map;
    int byte_id[256];       /* token of the byte-level character of each byte, -1 if none */
    pairmap merges;
    long n_merges;
    int *spec;              /* control / user-defined tokens, longest first */
    int n_spec;
    uint8_t spec_first[256];
    char *sarena;           /* decoded bytes of each token, NUL-terminated */
    size_t *soff;
    uint32_t *slen;
    int bos, eos, unk, pad, add_bos, ignore_merges;
    int word_unk;           /* model.unk_token: what a byte without a token becomes; -1: dropped */
    const pre_def *pre;
    pcre2_code *re[2];
    int jit[2];
};

static void seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

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

static void init_tables(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_tables_once);
}

size_t bpe_bytes_to_unicode(const char *s, size_t n, char *out) {
    init_tables();
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

/* ---------- UTF-8 ---------- */

/* 1 and the length when s starts with a well-formed character; else 0 and the length of the
 * maximal malformed part (Unicode's "maximal subpart", what from_utf8_lossy replaces). */
static int utf8_char(const uint8_t *s, size_t n, size_t *len) {
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
    while (i < n && utf8_char((const uint8_t *)s + i, n - i, &k)) i += k;
    if (i == n) return NULL;
    char *o = xmalloc(3 * n + 1);
    memcpy(o, s, i);
    size_t m = i;
    while (i < n) {
        if (utf8_char((const uint8_t *)s + i, n - i, &k)) {
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

static uint32_t fnv(const char *s, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static int str_get(const bpe_tokenizer *b, const char *s, size_t n) {
    for (uint32_t h = fnv(s, n) & b->map.mask;; h = (h + 1) & b->map.mask) {
        int v = b->map.slot[h];
        if (!v) return -1;
        if (b->len[v - 1] == n && memcmp(b->arena + b->off[v - 1], s, n) == 0) return v - 1;
    }
}

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* rank of merging ids a, b (and the merged id), or -1 */
static int pair_get(const pairmap *pm, int a, int b, int *merged) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    for (uint64_t h = mix64(key) & pm->mask;; h = (h + 1) & pm->mask) {
        if (pm->key[h] == UINT64_MAX) return -1;
        if (pm->key[h] == key) {
            *merged = pm->merged[h];
            return pm->rank[h];
        }
    }
}

/* ---------- construction ---------- */

static bpe_tokenizer *bpe_new(int n) {
    init_tables();
    bpe_tokenizer *b = xcalloc(1, sizeof *b);
    b->n = n;
    b->off = xcalloc((size_t)n, sizeof *b->off);
    b->len = xcalloc((size_t)n, sizeof *b->len);
    b->type = xcalloc((size_t)n, 1);
    b->bos = b->eos = b->unk = b->pad = b->word_unk = -1;
    return b;
}

void bpe_free(bpe_tokenizer *b) {
    if (!b) return;
    free(b->arena);
    free(b->off);
    free(b->len);
    free(b->type);
    free(b->map.slot);
    free(b->merges.key);
    free(b->merges.rank);
    free(b->merges.merged);
    free(b->spec);
    free(b->sarena);
    free(b->soff);
    free(b->slen);
    for (int i = 0; i < 2; i++)
        if (b->re[i]) pcre2_code_free(b->re[i]);
    free(b);
}

/* Token strings: set every one (s[i], len[i]; s[i] NULL = hole) and build the map.
 * A string that appears twice keeps its first id in the map (as llama.cpp's vocabularies
 * with duplicate padding tokens need); both ids still decode. */
static int set_tokens(bpe_tokenizer *b, const char *const *s, const size_t *len, const char *path,
                      const char *field, char *err, size_t errlen) {
    size_t total = 0;
    for (int i = 0; i < b->n; i++) {
        if (!s[i]) {
            seterr(err, errlen, "%s: %s: no token has id %d", path, field, i);
            return -1;
        }
        if (len[i] > 65536) {
            seterr(err, errlen, "%s: %s[%d]: token of %zu bytes", path, field, i, len[i]);
            return -1;
        }
        total += len[i] + 1;
    }
    b->arena = xmalloc(total ? total : 1);
    size_t o = 0;
    for (int i = 0; i < b->n; i++) {
        memcpy(b->arena + o, s[i], len[i]);
        b->arena[o + len[i]] = 0;
        b->off[i] = o;
        b->len[i] = (uint32_t)len[i];
        o += len[i] + 1;
    }
    uint32_t cap = 16;
    while (cap < (uint32_t)b->n * 2 + 16) cap <<= 1;
    b->map.slot = xcalloc(cap, sizeof *b->map.slot);
    b->map.mask = cap - 1;
    for (int i = 0; i < b->n; i++) {
        const char *p = b->arena + b->off[i];
        if (str_get(b, p, b->len[i]) >= 0) continue;
        uint32_t h = fnv(p, b->len[i]) & b->map.mask;
        while (b->map.slot[h]) h = (h + 1) & b->map.mask;
        b->map.slot[h] = i + 1;
    }
    for (int c = 0; c < 256; c++) {
        char u[3];
        size_t k = bpe_bytes_to_unicode((const char *)&(uint8_t){ (uint8_t)c }, 1, u);
        b->byte_id[c] = str_get(b, u, k);
    }
    return 0;
}

static void merges_init(bpe_tokenizer *b, long n) {
    uint64_t cap = 16;
    while (cap < (uint64_t)n * 2 + 16) cap <<= 1;
    b->merges.key = xmalloc(cap * sizeof *b->merges.key);
    for (uint64_t i = 0; i < cap; i++) b->merges.key[i] = UINT64_MAX;
    b->merges.rank = xmalloc(cap * sizeof *b->merges.rank);
    b->merges.merged = xmalloc(cap * sizeof *b->merges.merged);
    b->merges.mask = cap - 1;
}

/* Merge number `rank`: tokens l and r (their strings) -> the token l + r. A pair listed twice
 * keeps its first (lowest) rank. */
static int add_merge(bpe_tokenizer *b, long rank, const char *l, size_t ll, const char *r, size_t rl,
                     const char *path, const char *field, char *err, size_t errlen) {
    int a = str_get(b, l, ll), c = str_get(b, r, rl);
    if (a < 0 || c < 0) {
        const char *bad = a < 0 ? l : r;
        int badn = (int)(a < 0 ? ll : rl);
        seterr(err, errlen, "%s: %s[%ld] \"%.*s %.*s\": unknown token \"%.*s\"", path, field, rank,
               (int)ll, l, (int)rl, r, badn, bad);
        return -1;
    }
    char stack[256], *cat = ll + rl <= sizeof stack ? stack : xmalloc(ll + rl);
    memcpy(cat, l, ll);
    memcpy(cat + ll, r, rl);
    int m = str_get(b, cat, ll + rl);
    if (cat != stack) free(cat);
    if (m < 0) {
        seterr(err, errlen, "%s: %s[%ld] \"%.*s %.*s\": the merged token is not in the vocabulary", path,
               field, rank, (int)ll, l, (int)rl, r);
        return -1;
    }
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)c;
    uint64_t h = mix64(key) & b->merges.mask;
    while (b->merges.key[h] != UINT64_MAX) {
        if (b->merges.key[h] == key) return 0;
        h = (h + 1) & b->merges.mask;
    }
    b->merges.key[h] = key;
    b->merges.rank[h] = (int)rank;
    b->merges.merged[h] = m;
    b->n_merges++;
    return 0;
}

/* "a b" (GGUF and older tokenizer.json): split at the first space after the first byte. */
static int add_merge_str(bpe_tokenizer *b, long rank, const char *s, size_t n, const char *path,
                         const char *field, char *err, size_t errlen) {
    const char *sp = n > 1 ? memchr(s + 1, ' ', n - 1) : NULL;
    if (!sp) {
        seterr(err, errlen, "%s: %s[%ld] \"%.*s\": not two tokens separated by a space", path, field, rank,
               (int)(n > 80 ? 80 : n), s);
        return -1;
    }
    return add_merge(b, rank, s, (size_t)(sp - s), sp + 1, n - (size_t)(sp - s) - 1, path, field, err, errlen);
}

static int cmp_spec_len(const void *x, const void *y, void *ctx) {
    const bpe_tokenizer *b = ctx;
    int i = *(const int *)x, j = *(const int *)y;
    if (b->len[i] != b->len[j]) return b->len[i] > b->len[j] ? -1 : 1;
    return i < j ? -1 : i > j;
}

/* Specials, surfaces, the pre-tokenizer's regexes. */
static int finish(bpe_tokenizer *b, const pre_def *pre, const char *path, char *err, size_t errlen) {
    b->pre = pre;
    b->spec = xmalloc(((size_t)b->n + 1) * sizeof *b->spec);
    for (int i = 0; i < b->n; i++) {
        if ((b->type[i] == TT_CONTROL || b->type[i] == TT_USER) && b->len[i] > 0) {
            b->spec[b->n_spec++] = i;
            b->spec_first[(uint8_t)b->arena[b->off[i]]] = 1;
        }
    }
    qsort_r(b->spec, (size_t)b->n_spec, sizeof *b->spec, cmp_spec_len, b);
    /* surfaces: byte-level characters back to bytes; a token with any other character is
     * its own UTF-8 bytes (HF's ByteLevel decoder does the same) */
    size_t total = 0;
    for (int i = 0; i < b->n; i++) total += b->len[i] + 1;
    b->sarena = xmalloc(total);
    b->soff = xmalloc((size_t)b->n * sizeof *b->soff);
    b->slen = xmalloc((size_t)b->n * sizeof *b->slen);
    size_t o = 0;
    for (int i = 0; i < b->n; i++) {
        const uint8_t *s = (const uint8_t *)b->arena + b->off[i];
        size_t n = b->len[i], k, m = 0;
        int all = 1;
        for (size_t j = 0; j < n && all; j += k) {
            if (!utf8_char(s + j, n - j, &k)) { all = 0; break; }
            uint32_t cp = k == 1 ? s[j] : k == 2 ? (uint32_t)(s[j] & 0x1F) << 6 | (s[j + 1] & 0x3F) : 0xFFFF;
            if (cp >= 324 || cp_byte[cp] < 0) all = 0;
            else b->sarena[o + m++] = (char)cp_byte[cp];
        }
        if (!all) {
            memcpy(b->sarena + o, s, n);
            m = n;
        }
        b->sarena[o + m] = 0;
        b->soff[i] = o;
        b->slen[i] = (uint32_t)m;
        o += m + 1;
    }
    for (int r = 0; r < pre->nre; r++) {
        int ec;
        PCRE2_SIZE eo;
        b->re[r] = pcre2_compile((PCRE2_SPTR)pre->re[r], PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
        if (!b->re[r]) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            seterr(err, errlen, "%s: pre-tokenizer %s: PCRE2 cannot compile its regex: %s", path, pre->name, (char *)msg);
            return -1;
        }
        b->jit[r] = pcre2_jit_compile(b->re[r], PCRE2_JIT_COMPLETE) == 0;
    }
    return 0;
}

static int check_id(long v, int n, const char *path, const char *key, int *out, char *err, size_t errlen) {
    if (v < 0 || v >= n) {
        seterr(err, errlen, "%s: %s is %ld, outside the vocabulary of %d tokens", path, key, v, n);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* ---------- GGUF ---------- */

bpe_tokenizer *bpe_load_gguf(const gguf_file *g, const char *path, char *err, size_t errlen) {
    const char *model = gguf_get_str(g, "tokenizer.ggml.model");
    if (!model) {
        seterr(err, errlen, "%s: tokenizer.ggml.model is missing (no tokenizer in this GGUF file)", path);
        return NULL;
    }
    if (strcmp(model, "gpt2") != 0) {
        seterr(err, errlen, "%s: tokenizer.ggml.model is \"%s\"; the byte-level BPE tokenizer reads \"gpt2\"", path, model);
        return NULL;
    }
    const char *pre_name = gguf_get_str(g, "tokenizer.ggml.pre");
    if (!pre_name) {
        seterr(err, errlen, "%s: tokenizer.ggml.pre is missing (known pre-tokenizers: %s)", path, bpe_known_pre());
        return NULL;
    }
    const pre_def *pre = find_pre(pre_name);
    if (!pre) {
        seterr(err, errlen, "%s: tokenizer.ggml.pre \"%s\" is not a known pre-tokenizer (known: %s)", path,
               pre_name, bpe_known_pre());
        return NULL;
    }
    long n = gguf_get_arr_len(g, "tokenizer.ggml.tokens");
    if (n < 0 || gguf_get_arr_type(g, "tokenizer.ggml.tokens") != 8) {
        seterr(err, errlen, "%s: tokenizer.ggml.tokens is %s", path, n < 0 ? "missing" : "not an array of strings");
        return NULL;
    }
    if (n == 0 || n > (1 << 24)) {
        seterr(err, errlen, "%s: tokenizer.ggml.tokens has %ld entries", path, n);
        return NULL;
    }
    long nm = gguf_get_arr_len(g, "tokenizer.ggml.merges");
    if (nm < 0 || gguf_get_arr_type(g, "tokenizer.ggml.merges") != 8) {
        seterr(err, errlen, "%s: tokenizer.ggml.merges is %s", path, nm < 0 ? "missing" : "not an array of strings");
        return NULL;
    }
    long nt = gguf_get_arr_len(g, "tokenizer.ggml.token_type");
    if (nt >= 0 && nt != n) {
        seterr(err, errlen, "%s: tokenizer.ggml.token_type has %ld entries, tokenizer.ggml.tokens %ld", path, nt, n);
        return NULL;
    }
    long big = n > nm ? n : nm;
    const char **s = xmalloc((size_t)big * sizeof *s);
    size_t *len = xmalloc((size_t)big * sizeof *len);
    double *tt = NULL;
    bpe_tokenizer *b = bpe_new((int)n);
    if (gguf_get_arr_strs(g, "tokenizer.ggml.tokens", s, len, n) != n) {
        seterr(err, errlen, "%s: tokenizer.ggml.tokens: cannot read %ld strings (truncated?)", path, n);
        goto fail;
    }
    if (set_tokens(b, s, len, path, "tokenizer.ggml.tokens", err, errlen) < 0) goto fail;
    if (nt >= 0) {
        tt = xmalloc((size_t)n * sizeof *tt);
        if (gguf_get_arr_f64(g, "tokenizer.ggml.token_type", tt, n) != n) {
            seterr(err, errlen, "%s: tokenizer.ggml.token_type is not a numeric array of %ld entries", path, n);
            goto fail;
        }
        for (long i = 0; i < n; i++) {
            if (tt[i] != (int)tt[i] || tt[i] < 1 || tt[i] > 6) {
                seterr(err, errlen, "%s: tokenizer.ggml.token_type[%ld] is %g, not 1-6", path, i, tt[i]);
                goto fail;
            }
            b->type[i] = (uint8_t)tt[i];
        }
    } else {
        memset(b->type, TT_NORMAL, (size_t)n);
    }
    if (nm > 0 && gguf_get_arr_strs(g, "tokenizer.ggml.merges", s, len, nm) != nm) {
        seterr(err, errlen, "%s: tokenizer.ggml.merges: cannot read %ld strings (truncated?)", path, nm);
        goto fail;
    }
    merges_init(b, nm);
    for (long i = 0; i < nm; i++)
        if (add_merge_str(b, i, s[i], len[i], path, "tokenizer.ggml.merges", err, errlen) < 0) goto fail;
    static const char *idkey[4] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id" };
    int *dst[4] = { &b->bos, &b->eos, &b->unk, &b->pad };
    for (int k = 0; k < 4; k++) {
        int64_t v;
        if (gguf_get_int(g, idkey[k], &v) && check_id((long)v, b->n, path, idkey[k], dst[k], err, errlen) < 0) goto fail;
    }
    int64_t v = 0;
    b->add_bos = gguf_get_int(g, "tokenizer.ggml.add_bos_token", &v) && v != 0;
    if (gguf_get_int(g, "tokenizer.ggml.add_space_prefix", &v) && v) {
        seterr(err, errlen, "%s: tokenizer.ggml.add_space_prefix is true: not supported by the byte-level BPE tokenizer", path);
        goto fail;
    }
    b->ignore_merges = pre->gguf_ignore_merges;
    if (finish(b, pre, path, err, errlen) < 0) goto fail;
    free(s);
    free(len);
    free(tt);
    return b;
fail:
    free(s);
    free(len);
    free(tt);
    bpe_free(b);
    return NULL;
}

bpe_tokenizer *bpe_load_gguf_path(const char *path, char *err, size_t errlen) {
    gguf_file *g = gguf_open(path, err, errlen);
    if (!g) return NULL;
    bpe_tokenizer *b = bpe_load_gguf(g, path, err, errlen);
    gguf_close(g);
    return b;
}

/* ---------- tokenizer.json ---------- */

static const char *jtype(json_t *o) {
    json_t *t = json_object_get(o, "type");
    return json_is_string(t) ? json_string_value(t) : "?";
}

static int jbool(json_t *o, const char *k, int dflt) {
    json_t *v = json_object_get(o, k);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* A short description of a pre_tokenizer for error messages. */
static void describe_pre(json_t *pt, char *buf, size_t n) {
    if (!json_is_object(pt)) {
        snprintf(buf, n, "%s", json_is_null(pt) || !pt ? "null" : "(not an object)");
        return;
    }
    const char *t = jtype(pt);
    json_t *list = json_object_get(pt, "pretokenizers");
    if (!strcmp(t, "Sequence") && json_is_array(list)) {
        size_t o = (size_t)snprintf(buf, n, "Sequence[");
        for (size_t i = 0; i < json_array_size(list) && o < n; i++) {
            json_t *e = json_array_get(list, i);
            o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? ", " : "", jtype(e));
            json_t *pat = json_object_get(json_object_get(e, "pattern"), "Regex");
            if (json_is_string(pat) && o < n) o += (size_t)snprintf(buf + o, n - o, "(%.40s...)", json_string_value(pat));
        }
        if (o < n) snprintf(buf + o, n - o, "]");
    } else {
        snprintf(buf, n, "%s", t);
    }
}

/* The known pre-tokenizer a tokenizer.json pre_tokenizer is, or NULL. */
static const pre_def *json_pre(json_t *pt, const char **why) {
    *why = NULL;
    if (!json_is_object(pt)) return NULL;
    json_t *list = json_object_get(pt, "pretokenizers");
    json_t *e[2] = { pt, NULL };
    size_t ne = 1;
    if (!strcmp(jtype(pt), "Sequence")) {
        if (!json_is_array(list) || json_array_size(list) < 1 || json_array_size(list) > 2) return NULL;
        ne = json_array_size(list);
        e[0] = json_array_get(list, 0);
        e[1] = ne > 1 ? json_array_get(list, 1) : NULL;
    }
    json_t *last = e[ne - 1];
    if (!json_is_object(last) || strcmp(jtype(last), "ByteLevel") != 0) return NULL;
    if (jbool(last, "add_prefix_space", 0)) {
        *why = "ByteLevel add_prefix_space is true (not supported)";
        return NULL;
    }
    int use_regex = jbool(last, "use_regex", 1);
    if (ne == 1) return use_regex ? find_pre("gpt2") : NULL;
    json_t *first = e[0];
    if (!json_is_object(first)) return NULL;
    if (!strcmp(jtype(first), "Digits")) {
        return use_regex && jbool(first, "individual_digits", 0) ? find_pre("smollm") : NULL;
    }
    if (!strcmp(jtype(first), "Split") && !use_regex) {
        json_t *beh = json_object_get(first, "behavior");
        json_t *rx = json_object_get(json_object_get(first, "pattern"), "Regex");
        if (!json_is_string(rx) || !json_is_string(beh) || strcmp(json_string_value(beh), "Isolated") != 0 ||
            jbool(first, "invert", 0))
            return NULL;
        for (int i = 0; i < NPRE; i++)
            if (PRE[i].nre == 1 && !strcmp(PRE[i].re[0], json_string_value(rx))) return &PRE[i];
    }
    return NULL;
}

/* A special-token field of tokenizer_config.json: "text", {"content": "text"} or null. */
static int config_token(bpe_tokenizer *b, json_t *cfg, const char *key, int *dst, const char *cpath, char *err,
                        size_t errlen) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        seterr(err, errlen, "%s: %s is not a string", cpath, key);
        return -1;
    }
    int id = str_get(b, json_string_value(v), json_string_length(v));
    if (id < 0) {
        seterr(err, errlen, "%s: %s \"%s\" is not a token of the vocabulary", cpath, key, json_string_value(v));
        return -1;
    }
    *dst = id;
    return 0;
}

bpe_tokenizer *bpe_load_json(const char *path, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        else {
            fclose(f);
            seterr(err, errlen, "%s: line %d: not JSON: %s", path, je.line, je.text);
        }
        return NULL;
    }
    bpe_tokenizer *b = NULL;
    const char **s = NULL;
    size_t *len = NULL;
    uint8_t *types = NULL;
    char *cpath = NULL;
    json_t *cfg = NULL;
    json_t *model = json_object_get(root, "model");
    if (!json_is_object(model)) {
        seterr(err, errlen, "%s: model is missing or not an object", path);
        goto fail;
    }
    if (strcmp(jtype(model), "BPE") != 0) {
        seterr(err, errlen, "%s: model.type is \"%s\"; only BPE is supported", path, jtype(model));
        goto fail;
    }
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        seterr(err, errlen, "%s: normalizer %s is not supported (byte-level BPE without a normalizer only)", path, jtype(norm));
        goto fail;
    }
    json_t *dec = json_object_get(root, "decoder");
    if (!json_is_object(dec) || strcmp(jtype(dec), "ByteLevel") != 0) {
        seterr(err, errlen, "%s: decoder is %s; only ByteLevel is supported", path, json_is_object(dec) ? jtype(dec) : "missing");
        goto fail;
    }
    if (jbool(model, "byte_fallback", 0)) {
        seterr(err, errlen, "%s: model.byte_fallback is true: not supported (byte-level BPE needs none)", path);
        goto fail;
    }
    static const char *affix[2] = { "continuing_subword_prefix", "end_of_word_suffix" };
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(model, affix[k]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0)) {
            seterr(err, errlen, "%s: model.%s is set: not supported", path, affix[k]);
            goto fail;
        }
    }
    json_t *drop = json_object_get(model, "dropout");
    if (drop && !json_is_null(drop)) {
        seterr(err, errlen, "%s: model.dropout is set: not supported", path);
        goto fail;
    }
    json_t *pt = json_object_get(root, "pre_tokenizer");
    const char *why;
    const pre_def *pre = json_pre(pt, &why);
    if (!pre) {
        char desc[256];
        describe_pre(pt, desc, sizeof desc);
        if (why) seterr(err, errlen, "%s: pre_tokenizer: %s", path, why);
        else seterr(err, errlen, "%s: pre_tokenizer %s is not a known pre-tokenizer (known: %s)", path, desc, bpe_known_pre());
        goto fail;
    }
    json_t *vocab = json_object_get(model, "vocab");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab)) {
        seterr(err, errlen, "%s: model.vocab is missing or not an object", path);
        goto fail;
    }
    if (added && !json_is_null(added) && !json_is_array(added)) {
        seterr(err, errlen, "%s: added_tokens is not an array", path);
        goto fail;
    }
    long n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 24)) {
            seterr(err, errlen, "%s: model.vocab[\"%.60s\"] is not an id in 0..2^24", path, key);
            goto fail;
        }
        if (json_integer_value(val) >= n) n = (long)json_integer_value(val) + 1;
    }
    size_t ia;
    json_array_foreach(added, ia, val) {
        json_t *id = json_object_get(val, "id"), *c = json_object_get(val, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 24) || !json_is_string(c)) {
            seterr(err, errlen, "%s: added_tokens[%zu] has no valid id and content", path, ia);
            goto fail;
        }
        if (json_integer_value(id) >= n) n = (long)json_integer_value(id) + 1;
    }
    if (n == 0) {
        seterr(err, errlen, "%s: model.vocab is empty", path);
        goto fail;
    }
    s = xcalloc((size_t)n, sizeof *s);
    len = xcalloc((size_t)n, sizeof *len);
    types = xcalloc((size_t)n, 1);
    json_object_foreach(vocab, key, val) {
        long id = (long)json_integer_value(val);
        if (s[id]) {
            seterr(err, errlen, "%s: model.vocab: id %ld is given to \"%.60s\" and \"%.60s\"", path, id, s[id], key);
            goto fail;
        }
        s[id] = key;
        len[id] = strlen(key);
        types[id] = TT_NORMAL;
    }
    json_array_foreach(added, ia, val) {
        long id = (long)json_integer_value(json_object_get(val, "id"));
        json_t *c = json_object_get(val, "content");
        if (s[id] && (len[id] != json_string_length(c) || memcmp(s[id], json_string_value(c), len[id]) != 0)) {
            seterr(err, errlen, "%s: added_tokens[%zu]: id %ld is \"%.60s\", but \"%.60s\" in model.vocab", path, ia,
                   id, json_string_value(c), s[id]);
            goto fail;
        }
        s[id] = json_string_value(c);
        len[id] = json_string_length(c);
        types[id] = jbool(val, "special", 0) ? TT_CONTROL : TT_USER;
    }
    b = bpe_new((int)n);
    if (set_tokens(b, s, len, path, "model.vocab", err, errlen) < 0) goto fail;
    memcpy(b->type, types, (size_t)n);
    json_t *merges = json_object_get(model, "merges");
    if (!json_is_array(merges)) {
        seterr(err, errlen, "%s: model.merges is missing or not an array", path);
        goto fail;
    }
    merges_init(b, (long)json_array_size(merges));
    json_array_foreach(merges, ia, val) {
        int rc;
        if (json_is_string(val)) {
            rc = add_merge_str(b, (long)ia, json_string_value(val), json_string_length(val), path, "model.merges", err, errlen);
        } else if (json_is_array(val) && json_array_size(val) == 2 && json_is_string(json_array_get(val, 0)) &&
                   json_is_string(json_array_get(val, 1))) {
            json_t *l = json_array_get(val, 0), *r = json_array_get(val, 1);
            rc = add_merge(b, (long)ia, json_string_value(l), json_string_length(l), json_string_value(r),
                           json_string_length(r), path, "model.merges", err, errlen);
        } else {
            seterr(err, errlen, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, ia);
            rc = -1;
        }
        if (rc < 0) goto fail;
    }
    b->ignore_merges = jbool(model, "ignore_merges", 0);
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) {
        b->unk = b->word_unk = str_get(b, json_string_value(unk), json_string_length(unk));
        if (b->unk < 0) {
            seterr(err, errlen, "%s: model.unk_token \"%s\" is not in the vocabulary", path, json_string_value(unk));
            goto fail;
        }
    }
    /* tokenizer_config.json beside it: .../NAMEtokenizer.json -> .../NAMEtokenizer_config.json */
    size_t pl = strlen(path);
    if (pl >= 14 && !strcmp(path + pl - 14, "tokenizer.json")) {
        cpath = xmalloc(pl + 8);
        memcpy(cpath, path, pl - 5);
        strcpy(cpath + pl - 5, "_config.json");
        if (access(cpath, F_OK) == 0) {
            cfg = json_load_file(cpath, 0, &je);
            if (!json_is_object(cfg)) {
                seterr(err, errlen, "%s: line %d: not a JSON object: %s", cpath, je.line, cfg ? "" : je.text);
                goto fail;
            }
            if (config_token(b, cfg, "bos_token", &b->bos, cpath, err, errlen) < 0 ||
                config_token(b, cfg, "eos_token", &b->eos, cpath, err, errlen) < 0 ||
                config_token(b, cfg, "unk_token", &b->unk, cpath, err, errlen) < 0 ||
                config_token(b, cfg, "pad_token", &b->pad, cpath, err, errlen) < 0)
                goto fail;
            b->add_bos = jbool(cfg, "add_bos_token", 0);
        }
    }
    if (finish(b, pre, path, err, errlen) < 0) goto fail;
    free(s);
    free(len);
    free(types);
    free(cpath);
    json_decref(cfg);
    json_decref(root);
    return b;
fail:
    free(s);
    free(len);
    free(types);
    free(cpath);
    json_decref(cfg);
    json_decref(root);
    bpe_free(b);
    return NULL;
}

/* ---------- accessors ---------- */

const char *bpe_pre_name(const bpe_tokenizer *b) { return b->pre->name; }
int bpe_vocab_size(const bpe_tokenizer *b) { return b->n; }
int bpe_bos(const bpe_tokenizer *b) { return b->bos; }
int bpe_eos(const bpe_tokenizer *b) { return b->eos; }
int bpe_unk(const bpe_tokenizer *b) { return b->unk; }
int bpe_pad(const bpe_tokenizer *b) { return b->pad; }
int bpe_add_bos(const bpe_tokenizer *b) { return b->add_bos; }
int bpe_piece_id(const bpe_tokenizer *b, const char *piece) { return str_get(b, piece, strlen(piece)); }
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
            utf8_char((const uint8_t *)s + ms, n - ms, &k);
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
    merge_cand *heap;
    size_t nheap, capheap;
    char *ubuf;
    size_t ucap;
} enc_ctx;

static void emit(enc_ctx *c, int id) {
    if (c->count < c->max_ids) c->ids[c->count] = id;
    c->count++;
}

static int cand_before(const merge_cand *x, const merge_cand *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(enc_ctx *c, merge_cand m) {
    if (c->nheap == c->capheap) {
        c->capheap = c->capheap * 2 + 32;
        c->heap = xrealloc(c->heap, c->capheap * sizeof *c->heap);
    }
    size_t i = c->nheap++;
    while (i > 0) {
        size_t up = (i - 1) / 2;
        if (!cand_before(&m, &c->heap[up])) break;
        c->heap[i] = c->heap[up];
        i = up;
    }
    c->heap[i] = m;
}

static merge_cand heap_pop(enc_ctx *c) {
    merge_cand top = c->heap[0], last = c->heap[--c->nheap];
    size_t i = 0, n = c->nheap;
    for (;;) {
        size_t l = 2 * i + 1, best = i;
        const merge_cand *bp = &last;
        if (l < n && cand_before(&c->heap[l], bp)) best = l, bp = &c->heap[l];
        if (l + 1 < n && cand_before(&c->heap[l + 1], bp)) best = l + 1;
        if (best == i) break;
        c->heap[i] = c->heap[best];
        i = best;
    }
    if (n) c->heap[i] = last;
    return top;
}

static void push_pair(enc_ctx *c, int pos) {
    int nx = c->next[pos], merged;
    if (nx < 0) return;
    int rank = pair_get(&c->b->merges, c->sym[pos], c->sym[nx], &merged);
    if (rank >= 0) heap_push(c, (merge_cand){ rank, pos, merged });
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
        int id = str_get(b, c->ubuf, k);
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
    c->nheap = 0;
    for (int i = 0; i + 1 < ns; i++) push_pair(c, i);
    while (c->nheap) {
        merge_cand m = heap_pop(c);
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
    enc_ctx c;
    memset(&c, 0, sizeof c);
    c.b = b;
    c.ids = ids;
    c.max_ids = ids ? max_ids : 0;
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
    free(c.heap);
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
        int ok = utf8_char(raw + i, nb - i, &k);
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
