/* bpe_load.c - building a byte-level BPE tokenizer (bpe.h): its vocabulary, merges and
 * special tokens from GGUF's tokenizer.ggml.* keys or a Hugging Face tokenizer.json (with the
 * tokenizer_config.json beside it), the table of known pre-tokenizers and the recognition of
 * a tokenizer.json's pre_tokenizer as one of them. What is built here is read-only after;
 * bpe.c encodes and decodes with it.
 */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/err.h"
#include "llm/bpe.h"
#include "llm/bpe_impl.h"
#include "llm/gguf.h"
#include "llm/tok_common.h"

/* ---------- pre-tokenizers ---------- */

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" \
                  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
#define RE_QWEN2 "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*" \
                 "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"


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

/* ---------- construction ---------- */

static bpe_tokenizer *bpe_new(int n) {
    bpe_init_tables();
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
            tok_seterr(err, errlen, "%s: %s: no token has id %d", path, field, i);
            return -1;
        }
        if (len[i] > 65536) {
            tok_seterr(err, errlen, "%s: %s[%d]: token of %zu bytes", path, field, i, len[i]);
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
        if (bpe_str_get(b, p, b->len[i]) >= 0) continue;
        uint32_t h = tok_fnv1a(p, b->len[i]) & b->map.mask;
        while (b->map.slot[h]) h = (h + 1) & b->map.mask;
        b->map.slot[h] = i + 1;
    }
    for (int c = 0; c < 256; c++) {
        char u[3];
        size_t k = bpe_bytes_to_unicode((const char *)&(uint8_t){ (uint8_t)c }, 1, u);
        b->byte_id[c] = bpe_str_get(b, u, k);
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
    int a = bpe_str_get(b, l, ll), c = bpe_str_get(b, r, rl);
    if (a < 0 || c < 0) {
        const char *bad = a < 0 ? l : r;
        int badn = (int)(a < 0 ? ll : rl);
        tok_seterr(err, errlen, "%s: %s[%ld] \"%.*s %.*s\": unknown token \"%.*s\"", path, field, rank,
               (int)ll, l, (int)rl, r, badn, bad);
        return -1;
    }
    char stack[256], *cat = ll + rl <= sizeof stack ? stack : xmalloc(ll + rl);
    memcpy(cat, l, ll);
    memcpy(cat + ll, r, rl);
    int m = bpe_str_get(b, cat, ll + rl);
    if (cat != stack) free(cat);
    if (m < 0) {
        tok_seterr(err, errlen, "%s: %s[%ld] \"%.*s %.*s\": the merged token is not in the vocabulary", path,
               field, rank, (int)ll, l, (int)rl, r);
        return -1;
    }
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)c;
    uint64_t h = bpe_mix64(key) & b->merges.mask;
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
        tok_seterr(err, errlen, "%s: %s[%ld] \"%.*s\": not two tokens separated by a space", path, field, rank,
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
            if (!bpe_utf8_char(s + j, n - j, &k)) { all = 0; break; }
            uint32_t cp = k == 1 ? s[j] : k == 2 ? (uint32_t)(s[j] & 0x1F) << 6 | (s[j + 1] & 0x3F) : 0xFFFF;
            int byte = bpe_cp_byte(cp);
            if (byte < 0) all = 0;
            else b->sarena[o + m++] = (char)byte;
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
            tok_seterr(err, errlen, "%s: pre-tokenizer %s: PCRE2 cannot compile its regex: %s", path, pre->name, (char *)msg);
            return -1;
        }
        b->jit[r] = pcre2_jit_compile(b->re[r], PCRE2_JIT_COMPLETE) == 0;
    }
    return 0;
}

static int check_id(long v, int n, const char *path, const char *key, int *out, char *err, size_t errlen) {
    if (v < 0 || v >= n) {
        tok_seterr(err, errlen, "%s: %s is %ld, outside the vocabulary of %d tokens", path, key, v, n);
        return -1;
    }
    *out = (int)v;
    return 0;
}

/* ---------- GGUF ---------- */

bpe_tokenizer *bpe_load_gguf(const gguf_file *g, const char *path, char *err, size_t errlen) {
    const char *model = gguf_get_str(g, "tokenizer.ggml.model");
    if (!model) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.model is missing (no tokenizer in this GGUF file)", path);
        return NULL;
    }
    if (strcmp(model, "gpt2") != 0) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.model is \"%s\"; the byte-level BPE tokenizer reads \"gpt2\"", path, model);
        return NULL;
    }
    const char *pre_name = gguf_get_str(g, "tokenizer.ggml.pre");
    if (!pre_name) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.pre is missing (known pre-tokenizers: %s)", path, bpe_known_pre());
        return NULL;
    }
    const pre_def *pre = find_pre(pre_name);
    if (!pre) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.pre \"%s\" is not a known pre-tokenizer (known: %s)", path,
               pre_name, bpe_known_pre());
        return NULL;
    }
    long n = gguf_get_arr_len(g, "tokenizer.ggml.tokens");
    if (n < 0 || gguf_get_arr_type(g, "tokenizer.ggml.tokens") != 8) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.tokens is %s", path, n < 0 ? "missing" : "not an array of strings");
        return NULL;
    }
    if (n == 0 || n > (1 << 24)) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.tokens has %ld entries", path, n);
        return NULL;
    }
    long nm = gguf_get_arr_len(g, "tokenizer.ggml.merges");
    if (nm < 0 || gguf_get_arr_type(g, "tokenizer.ggml.merges") != 8) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.merges is %s", path, nm < 0 ? "missing" : "not an array of strings");
        return NULL;
    }
    long nt = gguf_get_arr_len(g, "tokenizer.ggml.token_type");
    if (nt >= 0 && nt != n) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.token_type has %ld entries, tokenizer.ggml.tokens %ld", path, nt, n);
        return NULL;
    }
    long big = n > nm ? n : nm;
    const char **s = xmalloc((size_t)big * sizeof *s);
    size_t *len = xmalloc((size_t)big * sizeof *len);
    double *tt = NULL;
    bpe_tokenizer *b = bpe_new((int)n);
    if (gguf_get_arr_strs(g, "tokenizer.ggml.tokens", s, len, n) != n) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.tokens: cannot read %ld strings (truncated?)", path, n);
        goto fail;
    }
    if (set_tokens(b, s, len, path, "tokenizer.ggml.tokens", err, errlen) < 0) goto fail;
    if (nt >= 0) {
        tt = xmalloc((size_t)n * sizeof *tt);
        if (gguf_get_arr_f64(g, "tokenizer.ggml.token_type", tt, n) != n) {
            tok_seterr(err, errlen, "%s: tokenizer.ggml.token_type is not a numeric array of %ld entries", path, n);
            goto fail;
        }
        for (long i = 0; i < n; i++) {
            if (tt[i] != (int)tt[i] || tt[i] < 1 || tt[i] > 6) {
                tok_seterr(err, errlen, "%s: tokenizer.ggml.token_type[%ld] is %g, not 1-6", path, i, tt[i]);
                goto fail;
            }
            b->type[i] = (uint8_t)tt[i];
        }
    } else {
        memset(b->type, TT_NORMAL, (size_t)n);
    }
    if (nm > 0 && gguf_get_arr_strs(g, "tokenizer.ggml.merges", s, len, nm) != nm) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.merges: cannot read %ld strings (truncated?)", path, nm);
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
        tok_seterr(err, errlen, "%s: tokenizer.ggml.add_space_prefix is true: not supported by the byte-level BPE tokenizer", path);
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
        tok_seterr(err, errlen, "%s: %s is not a string", cpath, key);
        return -1;
    }
    int id = bpe_str_get(b, json_string_value(v), json_string_length(v));
    if (id < 0) {
        tok_seterr(err, errlen, "%s: %s \"%s\" is not a token of the vocabulary", cpath, key, json_string_value(v));
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
        if (!f) tok_seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        else {
            fclose(f);
            tok_seterr(err, errlen, "%s: line %d: not JSON: %s", path, je.line, je.text);
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
        tok_seterr(err, errlen, "%s: model is missing or not an object", path);
        goto fail;
    }
    if (strcmp(jtype(model), "BPE") != 0) {
        tok_seterr(err, errlen, "%s: model.type is \"%s\"; only BPE is supported", path, jtype(model));
        goto fail;
    }
    json_t *norm = json_object_get(root, "normalizer");
    if (norm && !json_is_null(norm)) {
        tok_seterr(err, errlen, "%s: normalizer %s is not supported (byte-level BPE without a normalizer only)", path, jtype(norm));
        goto fail;
    }
    json_t *dec = json_object_get(root, "decoder");
    if (!json_is_object(dec) || strcmp(jtype(dec), "ByteLevel") != 0) {
        tok_seterr(err, errlen, "%s: decoder is %s; only ByteLevel is supported", path, json_is_object(dec) ? jtype(dec) : "missing");
        goto fail;
    }
    if (jbool(model, "byte_fallback", 0)) {
        tok_seterr(err, errlen, "%s: model.byte_fallback is true: not supported (byte-level BPE needs none)", path);
        goto fail;
    }
    static const char *affix[2] = { "continuing_subword_prefix", "end_of_word_suffix" };
    for (int k = 0; k < 2; k++) {
        json_t *v = json_object_get(model, affix[k]);
        if (v && !json_is_null(v) && !(json_is_string(v) && json_string_length(v) == 0)) {
            tok_seterr(err, errlen, "%s: model.%s is set: not supported", path, affix[k]);
            goto fail;
        }
    }
    json_t *drop = json_object_get(model, "dropout");
    if (drop && !json_is_null(drop)) {
        tok_seterr(err, errlen, "%s: model.dropout is set: not supported", path);
        goto fail;
    }
    json_t *pt = json_object_get(root, "pre_tokenizer");
    const char *why;
    const pre_def *pre = json_pre(pt, &why);
    if (!pre) {
        char desc[256];
        describe_pre(pt, desc, sizeof desc);
        if (why) tok_seterr(err, errlen, "%s: pre_tokenizer: %s", path, why);
        else tok_seterr(err, errlen, "%s: pre_tokenizer %s is not a known pre-tokenizer (known: %s)", path, desc, bpe_known_pre());
        goto fail;
    }
    json_t *vocab = json_object_get(model, "vocab");
    json_t *added = json_object_get(root, "added_tokens");
    if (!json_is_object(vocab)) {
        tok_seterr(err, errlen, "%s: model.vocab is missing or not an object", path);
        goto fail;
    }
    if (added && !json_is_null(added) && !json_is_array(added)) {
        tok_seterr(err, errlen, "%s: added_tokens is not an array", path);
        goto fail;
    }
    long n = 0;
    const char *key;
    json_t *val;
    json_object_foreach(vocab, key, val) {
        if (!json_is_integer(val) || json_integer_value(val) < 0 || json_integer_value(val) >= (1 << 24)) {
            tok_seterr(err, errlen, "%s: model.vocab[\"%.60s\"] is not an id in 0..2^24", path, key);
            goto fail;
        }
        if (json_integer_value(val) >= n) n = (long)json_integer_value(val) + 1;
    }
    size_t ia;
    json_array_foreach(added, ia, val) {
        json_t *id = json_object_get(val, "id"), *c = json_object_get(val, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 24) || !json_is_string(c)) {
            tok_seterr(err, errlen, "%s: added_tokens[%zu] has no valid id and content", path, ia);
            goto fail;
        }
        if (json_integer_value(id) >= n) n = (long)json_integer_value(id) + 1;
    }
    if (n == 0) {
        tok_seterr(err, errlen, "%s: model.vocab is empty", path);
        goto fail;
    }
    s = xcalloc((size_t)n, sizeof *s);
    len = xcalloc((size_t)n, sizeof *len);
    types = xcalloc((size_t)n, 1);
    json_object_foreach(vocab, key, val) {
        long id = (long)json_integer_value(val);
        if (s[id]) {
            tok_seterr(err, errlen, "%s: model.vocab: id %ld is given to \"%.60s\" and \"%.60s\"", path, id, s[id], key);
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
            tok_seterr(err, errlen, "%s: added_tokens[%zu]: id %ld is \"%.60s\", but \"%.60s\" in model.vocab", path, ia,
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
        tok_seterr(err, errlen, "%s: model.merges is missing or not an array", path);
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
            tok_seterr(err, errlen, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, ia);
            rc = -1;
        }
        if (rc < 0) goto fail;
    }
    b->ignore_merges = jbool(model, "ignore_merges", 0);
    json_t *unk = json_object_get(model, "unk_token");
    if (json_is_string(unk)) {
        b->unk = b->word_unk = bpe_str_get(b, json_string_value(unk), json_string_length(unk));
        if (b->unk < 0) {
            tok_seterr(err, errlen, "%s: model.unk_token \"%s\" is not in the vocabulary", path, json_string_value(unk));
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
                tok_seterr(err, errlen, "%s: line %d: not a JSON object: %s", cpath, je.line, cfg ? "" : je.text);
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
    if (finish(b, pre, path, err, errlen) == 0) goto done;
fail:
    bpe_free(b);
    b = NULL;
done:
    free(s);
    free(len);
    free(types);
    free(cpath);
    json_decref(cfg);
    json_decref(root);
    return b;
}
