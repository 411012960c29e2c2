/* test_tokenizer.c - unit tests for common/llm/tokenizer.c, and a small command-line front
 * end that tests/llm/tokenizer.sh uses to compare against spm_encode / spm_decode.
 *
 * No arguments (how tests/run.sh calls it): run the unit checks.
 * Otherwise MODEL is anything tok_load reads ("path.model" SentencePiece, a .gguf, a
 * tokenizer.json or a directory) or "path.bin:N" (llama2.c, N tokens):
 *   test_tokenizer encode MODEL      stdin lines -> one line of ids each (spm_encode --output_format=id)
 *   test_tokenizer pieces MODEL      stdin lines -> pieces (spm_encode --output_format=piece)
 *   test_tokenizer decode MODEL      stdin lines of ids -> text (spm_decode --input_format=id)
 *   test_tokenizer stream MODEL      like decode, but through tok_decode_piece
 *   test_tokenizer save MODEL OUT    write MODEL as a SentencePiece tokenizer.model
 *   test_tokenizer load MODEL        load only; on failure "error: MODEL: reason", exit 1
 *   encode-escaped, decode-escaped, stream-escaped: the same with the text lines escaped
 *                                    (\n newline, \t tab, \r CR, \\ backslash), as
 *                                    tests/llm/fixtures/bpe/prompts.txt and decode.txt are
 * Byte-level BPE only (tests/llm/bpe.sh):
 *   test_tokenizer pretok MODEL      stdin lines -> the pre-tokens (byte-level spelling),
 *                                    space-separated (HF's pre_tokenize_str)
 *   test_tokenizer gguf-tok IN OUT [EDIT...]   write OUT, a GGUF with no tensors and only the
 *                                    tokenizer keys of IN, edited: pre=NAME, model=NAME,
 *                                    merge0=STRING (the first merge), drop=KEY (leave a
 *                                    tokenizer.ggml.KEY out), types=N (keep only N token types)
 */
#include "../unit/harness.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/err.h"
#include "llm/bpe.h"
#include "llm/gguf.h"
#include "llm/tokenizer.h"

static char errbuf[256];

static llm_tokenizer *load_any(const char *spec) {
    const char *colon = strrchr(spec, ':');
    size_t n = strlen(spec);
    if (colon && n > 4 && colon - spec > 4 && !memcmp(colon - 4, ".bin", 4)) {
        char *path = strndup(spec, (size_t)(colon - spec));
        llm_tokenizer *t = tok_load_llama2c(path, atoi(colon + 1), errbuf, sizeof errbuf);
        free(path);
        return t;
    }
    return tok_load(spec, errbuf, sizeof errbuf);
}

/* ---------- command-line mode ---------- */

/* In place: \n \t \r \\ -> the characters; other backslashes stay. */
static void unescape(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (s[0] == '\\' && s[1] && strchr("ntr\\", s[1])) {
            s++;
            *o++ = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s == 'r' ? '\r' : '\\';
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

static void put_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (s[i]) {
        case '\n': fputs("\\n", stdout); break;
        case '\t': fputs("\\t", stdout); break;
        case '\r': fputs("\\r", stdout); break;
        case '\\': fputs("\\\\", stdout); break;
        default: putchar(s[i]);
        }
    }
}

/* error: SPEC: reason (without SPEC twice when the reason already names the file) */
static void print_err(const char *spec) {
    size_t k = strlen(spec);
    if (!strncmp(errbuf, spec, k) && errbuf[k] == ':') fprintf(stderr, "error: %s\n", errbuf);
    else fprintf(stderr, "error: %s: %s\n", spec, errbuf);
}

static void pretok_sink(void *ctx, const char *s, size_t n) {
    int *first = ctx;
    char *u = xmalloc(2 * n + 1);
    bpe_bytes_to_unicode(s, n, u);
    printf(*first ? "%s" : " %s", u);
    *first = 0;
    free(u);
}

/* The byte-level BPE tokenizer of a GGUF file. */
static bpe_tokenizer *load_gguf_bpe(const char *path, char *err, size_t errlen) {
    gguf_file *g = gguf_open(path, err, errlen);
    if (!g) return NULL;
    bpe_tokenizer *b = bpe_load_gguf(g, path, err, errlen);
    gguf_close(g);
    return b;
}

static int cli_pretok(const char *spec) {
    size_t n = strlen(spec);
    bpe_tokenizer *b = n > 5 && !strcmp(spec + n - 5, ".json") ? bpe_load_json(spec, errbuf, sizeof errbuf)
                                                               : load_gguf_bpe(spec, errbuf, sizeof errbuf);
    if (!b) {
        print_err(spec);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (len && line[len - 1] == '\n') line[--len] = 0;
        int first = 1;
        bpe_pretokenize(b, line, pretok_sink, &first);
        putchar('\n');
    }
    free(line);
    bpe_free(b);
    return 0;
}

/* ---- a minimal GGUF writer for gguf-tok ---- */

static void w_u32(FILE *f, uint32_t v) { fwrite(&v, 4, 1, f); }
static void w_u64(FILE *f, uint64_t v) { fwrite(&v, 8, 1, f); }
static void w_str(FILE *f, const char *s, size_t n) { w_u64(f, n); fwrite(s, 1, n, f); }
static void w_key(FILE *f, const char *k, uint32_t type) { w_str(f, k, strlen(k)); w_u32(f, type); }

static const char *edit_of(int nedit, char **edit, const char *name) {
    size_t k = strlen(name);
    for (int i = 0; i < nedit; i++)
        if (!strncmp(edit[i], name, k) && edit[i][k] == '=') return edit[i] + k + 1;
    return NULL;
}

static int dropped(int nedit, char **edit, const char *key) {
    for (int i = 0; i < nedit; i++)
        if (!strncmp(edit[i], "drop=", 5) && !strcmp(edit[i] + 5, key + strlen("tokenizer.ggml."))) return 1;
    return 0;
}

static int cli_gguf_tok(const char *in, const char *out, int nedit, char **edit) {
    gguf_file *g = gguf_open(in, errbuf, sizeof errbuf);
    if (!g) {
        fprintf(stderr, "error: %s\n", errbuf);
        return 1;
    }
    static const char *skeys[2] = { "tokenizer.ggml.model", "tokenizer.ggml.pre" };
    static const char *akeys[2] = { "tokenizer.ggml.tokens", "tokenizer.ggml.merges" };
    static const char *ikeys[4] = { "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                                    "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id" };
    const char *sval[2];
    int nkv = 0;
    for (int k = 0; k < 2; k++) {
        sval[k] = edit_of(nedit, edit, k ? "pre" : "model");
        if (!sval[k]) sval[k] = gguf_get_str(g, skeys[k]);
        nkv += sval[k] && !dropped(nedit, edit, skeys[k]);
    }
    long alen[2];
    for (int k = 0; k < 2; k++) {
        alen[k] = gguf_get_arr_len(g, akeys[k]);
        nkv += alen[k] >= 0 && !dropped(nedit, edit, akeys[k]);
    }
    long ntype = gguf_get_arr_len(g, "tokenizer.ggml.token_type");
    const char *types = edit_of(nedit, edit, "types");
    if (types && atol(types) < ntype) ntype = atol(types);
    nkv += ntype >= 0 && !dropped(nedit, edit, "tokenizer.ggml.token_type");
    int64_t ival[4];
    int have[4];
    for (int k = 0; k < 4; k++) {
        have[k] = gguf_get_int(g, ikeys[k], &ival[k]) && !dropped(nedit, edit, ikeys[k]);
        nkv += have[k];
    }
    int64_t add_bos = 0;
    int have_ab = gguf_get_int(g, "tokenizer.ggml.add_bos_token", &add_bos) &&
                  !dropped(nedit, edit, "tokenizer.ggml.add_bos_token");
    nkv += have_ab;
    FILE *f = fopen(out, "wb");
    if (!f) {
        fprintf(stderr, "error: %s: cannot create\n", out);
        gguf_close(g);
        return 1;
    }
    fwrite("GGUF", 1, 4, f);
    w_u32(f, 3);
    w_u64(f, 0);
    w_u64(f, (uint64_t)nkv);
    for (int k = 0; k < 2; k++) {
        if (!sval[k] || dropped(nedit, edit, skeys[k])) continue;
        w_key(f, skeys[k], 8);
        w_str(f, sval[k], strlen(sval[k]));
    }
    long big = alen[0] > alen[1] ? alen[0] : alen[1];
    const char **s = xmalloc((size_t)(big > 0 ? big : 1) * sizeof *s);
    size_t *len = xmalloc((size_t)(big > 0 ? big : 1) * sizeof *len);
    for (int k = 0; k < 2; k++) {
        if (alen[k] < 0 || dropped(nedit, edit, akeys[k])) continue;
        gguf_get_arr_strs(g, akeys[k], s, len, alen[k]);
        w_key(f, akeys[k], 9);
        w_u32(f, 8);
        w_u64(f, (uint64_t)alen[k]);
        const char *m0 = k == 1 ? edit_of(nedit, edit, "merge0") : NULL;
        for (long i = 0; i < alen[k]; i++) {
            if (i == 0 && m0) w_str(f, m0, strlen(m0));
            else w_str(f, s[i], len[i]);
        }
    }
    if (ntype >= 0 && !dropped(nedit, edit, "tokenizer.ggml.token_type")) {
        double *tt = xmalloc((size_t)(ntype > 0 ? ntype : 1) * sizeof *tt);
        gguf_get_arr_f64(g, "tokenizer.ggml.token_type", tt, ntype);
        w_key(f, "tokenizer.ggml.token_type", 9);
        w_u32(f, 5);
        w_u64(f, (uint64_t)ntype);
        for (long i = 0; i < ntype; i++) w_u32(f, (uint32_t)(int32_t)tt[i]);
        free(tt);
    }
    for (int k = 0; k < 4; k++) {
        if (!have[k]) continue;
        w_key(f, ikeys[k], 4);
        w_u32(f, (uint32_t)ival[k]);
    }
    if (have_ab) {
        w_key(f, "tokenizer.ggml.add_bos_token", 7);
        fputc(add_bos != 0, f);
    }
    free(s);
    free(len);
    gguf_close(g);
    return fclose(f) == 0 ? 0 : 1;
}

static int cli(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_tokenizer encode|pieces|decode|stream|save|load|pretok MODEL [OUT]\n"
                        "       test_tokenizer gguf-tok IN OUT [EDIT...]\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "pretok")) return cli_pretok(argv[2]);
    if (!strcmp(cmd, "gguf-tok")) return argc < 4 ? 2 : cli_gguf_tok(argv[2], argv[3], argc - 4, argv + 4);
    int escaped = strstr(cmd, "-escaped") != NULL;
    llm_tokenizer *t = load_any(argv[2]);
    if (!t) {
        print_err(argv[2]);
        return 1;
    }
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (!strcmp(cmd, "load")) {
        printf("vocab %d bos %d eos %d unk %d pad %d add_bos %d kind %s\n", tok_vocab_size(t), tok_bos(t), tok_eos(t),
               tok_unk(t), tok_pad(t), tok_add_bos(t), tok_is_bpe(t) ? "bpe" : "spm");
    } else if (!strcmp(cmd, "save")) {
        if (argc < 4 || tok_save_model(t, argv[3], errbuf, sizeof errbuf) != 0) {
            if (argc < 4) fprintf(stderr, "error: save: no OUT\n");
            else print_err(argv[3]);
            rc = 1;
        }
    } else if (!strcmp(cmd, "encode") || !strcmp(cmd, "pieces") || !strcmp(cmd, "encode-escaped")) {
        int cap_ids = 0, *ids = NULL;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            if (len && line[len - 1] == '\n') line[--len] = 0;
            if (escaped) unescape(line);
            int n = tok_encode(t, line, 0, 0, ids, cap_ids);
            if (n > cap_ids) {
                cap_ids = n;
                ids = xrealloc(ids, (size_t)n * sizeof *ids);
                tok_encode(t, line, 0, 0, ids, cap_ids);
            }
            for (int i = 0; i < n; i++) {
                if (cmd[0] == 'e') printf(i ? " %d" : "%d", ids[i]);
                else printf(i ? " %s" : "%s", tok_piece(t, ids[i]));
            }
            putchar('\n');
        }
        free(ids);
    } else if (!strcmp(cmd, "decode") || !strcmp(cmd, "stream") || !strcmp(cmd, "decode-escaped") ||
               !strcmp(cmd, "stream-escaped")) {
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            int n = 0, *ids = xmalloc(((size_t)len + 1) * sizeof *ids);
            char *p = line, *end;
            for (;;) {
                long v = strtol(p, &end, 10);
                if (end == p) break;
                ids[n++] = (int)v;
                p = end;
            }
            if (cmd[0] == 'd') {
                size_t need = tok_decode(t, ids, n, NULL, 0);
                char *buf = xmalloc(need + 1);
                tok_decode(t, ids, n, buf, need + 1);
                if (escaped) put_escaped(buf, need);
                else fwrite(buf, 1, need, stdout);
                free(buf);
            } else {
                char scratch[8];
                for (int i = 0; i < n; i++) {
                    const char *p = tok_decode_piece(t, i ? ids[i - 1] : -1, ids[i], scratch);
                    if (escaped) put_escaped(p, strlen(p));
                    else fputs(p, stdout);
                }
            }
            putchar('\n');
            free(ids);
        }
    } else {
        fprintf(stderr, "unknown command %s\n", cmd);
        rc = 2;
    }
    free(line);
    tok_free(t);
    return rc;
}

/* ---------- unit checks ---------- */

static const char *shared_dir(void) {
    const char *s = getenv("SHARED");
    return s && *s ? s : "/work/shared";
}

static char *path_in(const char *rel) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", shared_dir(), rel);
    return buf[k];
}

static int ids_equal(const llm_tokenizer *t, const char *text, int bos, const int *want, int nwant) {
    int got[512];
    int n = tok_encode(t, text, bos, 0, got, 512);
    if (n != nwant) {
        printf("# '%s': got %d ids, want %d:", text, n, nwant);
        for (int i = 0; i < n && i < 512; i++) printf(" %d", got[i]);
        printf("\n");
        return 0;
    }
    for (int i = 0; i < n; i++)
        if (got[i] != want[i]) {
            printf("# '%s': id %d is %d, want %d\n", text, i, got[i], want[i]);
            return 0;
        }
    return 1;
}

/* Same ids from two tokenizers on text. */
static int same_ids(const llm_tokenizer *a, const llm_tokenizer *b, const char *text) {
    int x[4096], y[4096];
    int nx = tok_encode(a, text, 1, 1, x, 4096), ny = tok_encode(b, text, 1, 1, y, 4096);
    if (nx != ny || nx > 4096) return 0;
    return memcmp(x, y, (size_t)nx * sizeof *x) == 0;
}

static const char *samples[] = {
    "",
    "Hello world",
    "  two  leading, two  inner, trailing  ",
    "Toy Story (1995)",
    "Shawshank Redemption, The (1994)",
    "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80 emoji",
    "tab\there\nnewline\r\n",
    "\xff\xfe invalid utf8 \xc3",
    "<s> not a control token </s>",
    "1234567890 3.14159 $100,000",
};
#define NSAMPLES (int)(sizeof samples / sizeof *samples)

static void test_llama(void) {
    llm_tokenizer *t = tok_load(path_in("models/llama2-tokenizer/tokenizer.model"), errbuf, sizeof errbuf);
    CHECK("llama model loads", t != NULL);
    if (!t) { printf("# %s\n", errbuf); return; }
    CHECK("llama vocab 32000", tok_vocab_size(t) == 32000);
    CHECK("llama bos/eos/unk/pad", tok_bos(t) == 1 && tok_eos(t) == 2 && tok_unk(t) == 0 && tok_pad(t) == -1);
    CHECK("llama piece_id <s>", tok_piece_id(t, "<s>") == 1);
    CHECK("llama piece_id \xe2\x96\x81Yes", tok_piece_id(t, "\xe2\x96\x81Yes") == 3869);
    CHECK("llama piece_id missing", tok_piece_id(t, "no-such-piece-xyz") == -1);
    CHECK("llama piece 13 is <0x0A>", tok_piece(t, 13) && !strcmp(tok_piece(t, 13), "<0x0A>"));
    CHECK("llama piece out of range", tok_piece(t, 32000) == NULL && tok_piece(t, -1) == NULL);

    /* expected ids from llama2.c test.c (Meta's reference tokenisation) */
    int e0[] = { 1 };
    int e1[] = { 1, 306, 4658, 278, 6593, 310, 2834, 338 };
    int e2[] = { 1, 3439, 17632, 1925, 29892, 278, 6368, 310, 14215, 537, 5922, 393, 29871 };
    int e3[] = { 1, 319, 11473, 2643, 378, 629, 271, 18099, 278, 3815, 373, 278, 6826, 29901, 13, 13,
                 4706, 6324, 14332, 29892, 13, 13, 4706, 306, 925, 29871 };
    int e4[] = { 1, 4103, 9632, 4223, 304, 5176, 29901, 13, 13, 4706, 7205, 4932, 357, 1149, 301, 449,
                 276, 316, 2778, 13, 4706, 1236, 407, 837, 524, 1149, 6042, 354, 772, 440, 29878, 1318,
                 13, 4706, 715, 1878, 330, 3055, 1725, 1149, 330, 3055, 1725, 4639, 28754, 13, 4706, 923,
                 968, 1149 };
    CHECK("llama encode empty", ids_equal(t, "", 1, e0, 1));
    CHECK("llama encode meaning of life", ids_equal(t, "I believe the meaning of life is", 1, e1, 8));
    CHECK("llama encode relativity", ids_equal(t, "Simply put, the theory of relativity states that ", 1, e2, 13));
    CHECK("llama encode multi-line", ids_equal(t, "A brief message congratulating the team on the launch:\n\n        Hi everyone,\n\n        I just ", 1, e3, 26));
    CHECK("llama encode translate", ids_equal(t, "Translate English to French:\n\n        sea otter => loutre de mer\n        peppermint => menthe poivr\xc3\xa9" "e\n        plush girafe => girafe peluche\n        cheese =>", 1, e4, (int)(sizeof e4 / sizeof *e4)));
    /* from spm_encode: emoji needs byte fallback, CJK are single pieces */
    int e5[] = { 15043, 29871, 30793, 30967, 29871, 243, 162, 155, 131 };
    CHECK("llama encode cjk+emoji", ids_equal(t, "Hello \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80", 0, e5, 9));

    /* bos/eos flags and the buffer protocol */
    int ids[64];
    int n = tok_encode(t, "Hello", 1, 1, ids, 64);
    CHECK("llama bos+eos", n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 2);
    ids[0] = -7;
    n = tok_encode(t, "I believe the meaning of life is", 1, 0, ids, 0);
    CHECK("encode max_ids 0 returns count", n == 8 && ids[0] == -7);
    n = tok_encode(t, "I believe the meaning of life is", 1, 0, NULL, 0);
    CHECK("encode NULL buffer returns count", n == 8);
    n = tok_encode(t, "I believe the meaning of life is", 1, 0, ids, 3);
    CHECK("encode truncates", n == 8 && ids[0] == 1 && ids[1] == 306 && ids[2] == 4658);

    /* decode round trip, truncation, and streaming == whole decode */
    for (int i = 0; i < NSAMPLES; i++) {
        const char *s = samples[i];
        if (s[0] == ' ' || strchr(s, '\xff')) continue;   /* leading space / invalid bytes do not round-trip */
        int x[1024];
        int nx = tok_encode(t, s, 1, 1, x, 1024);
        char buf[2048], name[96];
        size_t need = tok_decode(t, x, nx, buf, sizeof buf);
        snprintf(name, sizeof name, "llama decode round trip %d", i);
        CHECK(name, need == strlen(s) && !strcmp(buf, s));
        char stream[2048] = "", scratch[8];
        for (int k = 0; k < nx; k++) strcat(stream, tok_decode_piece(t, k ? x[k - 1] : -1, x[k], scratch));
        snprintf(name, sizeof name, "llama stream decode %d", i);
        CHECK(name, !strcmp(stream, s));
    }
    int hi[] = { 1, 15043, 3186 };   /* "Hello world" */
    char small[6];
    size_t need = tok_decode(t, hi, 3, small, sizeof small);
    CHECK("decode truncates", need == 11 && !strcmp(small, "Hello"));
    int odd[] = { 0, 0, 15043, 233, 13, 29871, -5, 99999 };
    char buf[64];
    tok_decode(t, odd, 8, buf, sizeof buf);
    CHECK("decode unk, stray byte, bad ids", !strcmp(buf, " \xe2\x81\x87  \xe2\x81\x87  Hello\xef\xbf\xbd\n "));

    /* the llama2.c export of the same tokenizer gives the same ids */
    llm_tokenizer *b = tok_load_llama2c(path_in("models/llama2-tokenizer/tokenizer.bin"), 32000, errbuf, sizeof errbuf);
    CHECK("llama tokenizer.bin loads", b != NULL);
    if (b) {
        int ok = 1;
        for (int i = 0; i < NSAMPLES; i++) ok &= same_ids(t, b, samples[i]);
        CHECK("tokenizer.bin == tokenizer.model on samples", ok);
        CHECK("tokenizer.bin special ids", tok_bos(b) == 1 && tok_eos(b) == 2 && tok_unk(b) == 0);
        int same_pieces = 1;
        for (int i = 0; i < 32000; i++) same_pieces &= !strcmp(tok_piece(t, i), tok_piece(b, i));
        CHECK("tokenizer.bin pieces == tokenizer.model pieces", same_pieces);
        tok_free(b);
    }

    /* performance: ~4,000-character prompts are encoded by the thousands */
    char *big = xmalloc(4200);
    big[0] = 0;
    while (strlen(big) < 4000) strcat(big, "User 42 watched Star Wars (1977), Fargo (1996) and Contact (1997); next? ");
    clock_t c0 = clock();
    long total = 0;
    for (int i = 0; i < 200; i++) total += tok_encode(t, big, 1, 0, NULL, 0);
    double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("# 200 encodes of %zu chars: %.3f s (%ld ids)\n", strlen(big), sec, total);
    CHECK("encode speed (200 x 4000 chars < 5 s)", sec < 5.0);
    /* no quadratic blow-up: one long run of a single character */
    char *run = xmalloc(100001);
    memset(run, 'a', 100000);
    run[100000] = 0;
    c0 = clock();
    n = tok_encode(t, run, 0, 0, NULL, 0);
    sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("# 100000 x 'a': %.3f s (%d ids)\n", sec, n);
    CHECK("encode 100k 'a' fast", n > 0 && sec < 2.0);
    free(run);
    free(big);
    tok_free(t);
}

static void test_stories(void) {
    llm_tokenizer *t = tok_load_llama2c(path_in("models/stories260K/tok512.bin"), 512, errbuf, sizeof errbuf);
    CHECK("tok512.bin loads", t != NULL);
    if (!t) { printf("# %s\n", errbuf); return; }
    CHECK("tok512 vocab/bos/eos", tok_vocab_size(t) == 512 && tok_bos(t) == 1 && tok_eos(t) == 2 && tok_unk(t) == 0);
    /* the greedy continuation in SOURCE.txt starts "Once upon a time, there was a little girl";
     * its first 11 ids end inside "girl" */
    int x[64];
    int n = tok_encode(t, "Once upon a time", 1, 0, x, 64);
    char buf[256];
    tok_decode(t, x, n, buf, sizeof buf);
    CHECK("tok512 round trip", !strcmp(buf, "Once upon a time"));
    int gen[] = { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315 };
    tok_decode(t, gen, 12, buf, sizeof buf);
    CHECK("tok512 decodes reference ids", !strcmp(buf, "Once upon a time, there was a little gir"));
    int ids2[64];
    int n2 = tok_encode(t, buf, 1, 0, ids2, 64);
    CHECK("tok512 re-encodes reference text", n2 == 12 && !memcmp(ids2, gen, sizeof gen));

    /* save as tokenizer.model, load back: same ids */
    const char *tmp = getenv("TMPDIR");
    char out[1024];
    snprintf(out, sizeof out, "%s/test_tokenizer.%d.model", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    CHECK("tok512 save", tok_save_model(t, out, errbuf, sizeof errbuf) == 0);
    llm_tokenizer *r = tok_load(out, errbuf, sizeof errbuf);
    CHECK("tok512 saved model loads", r != NULL);
    if (r) {
        int ok = tok_vocab_size(r) == 512;
        for (int i = 0; i < NSAMPLES; i++) ok &= same_ids(t, r, samples[i]);
        CHECK("tok512 saved model: same ids", ok);
        tok_free(r);
    }
    remove(out);
    CHECK("save to bad path fails", tok_save_model(t, "/nonexistent-dir/x.model", errbuf, sizeof errbuf) != 0 && errbuf[0]);
    tok_free(t);
}

static void test_errors(void) {
    errbuf[0] = 0;
    CHECK("missing file", tok_load("/nonexistent/tokenizer.model", errbuf, sizeof errbuf) == NULL && errbuf[0]);
    errbuf[0] = 0;
    CHECK("missing llama2c file", tok_load_llama2c("/nonexistent/tok.bin", 32000, errbuf, sizeof errbuf) == NULL && errbuf[0]);
    /* truncated and corrupted copies of the LLaMA model must fail cleanly or load, never crash */
    const char *src = path_in("models/llama2-tokenizer/tokenizer.model");
    FILE *f = fopen(src, "rb");
    if (!f) { CHECK("read llama model", 0); return; }
    static unsigned char data[600000];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    const char *tmp = getenv("TMPDIR");
    char out[1024];
    snprintf(out, sizeof out, "%s/test_tokenizer.%d.trunc", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    size_t cuts[] = { 0, 1, 2, 7, 100, 1000, 250000, n / 2 + 3, n - 3000, n - 1 };
    int all_fail = 1, all_msg = 1;
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        FILE *g = fopen(out, "wb");
        fwrite(data, 1, cuts[k], g);
        fclose(g);
        errbuf[0] = 0;
        llm_tokenizer *t = tok_load(out, errbuf, sizeof errbuf);
        if (t) { all_fail = 0; printf("# truncated at %zu loaded\n", cuts[k]); tok_free(t); }
        else if (!errbuf[0] || strchr(errbuf, '\n')) all_msg = 0;
    }
    CHECK("truncated model rejected", all_fail);
    CHECK("truncated model: one-line reason", all_msg);
    printf("# e.g. %s\n", errbuf);
    /* random corruption: flip bytes; loading may succeed or fail but must not crash */
    unsigned seed = 12345;
    int survived = 1;
    for (int round = 0; round < 20; round++) {
        static unsigned char bad[600000];
        memcpy(bad, data, n);
        for (int j = 0; j < 50; j++) {
            seed = seed * 1103515245u + 12345u;
            bad[(seed >> 8) % n] = (unsigned char)(seed >> 24);
        }
        FILE *g = fopen(out, "wb");
        fwrite(bad, 1, n, g);
        fclose(g);
        llm_tokenizer *t = tok_load(out, errbuf, sizeof errbuf);
        if (t) {   /* loaded: it must still encode and decode without crashing */
            int ids[256];
            int m = tok_encode(t, "corrupted \xe4\xb8\xad model test", 1, 1, ids, 256);
            char buf[512];
            tok_decode(t, ids, m < 256 ? m : 256, buf, sizeof buf);
            tok_free(t);
        }
    }
    CHECK("corrupted models do not crash", survived);
    /* garbage that is not protobuf at all */
    FILE *g = fopen(out, "wb");
    fputs("this is not a protobuf file\n", g);
    fclose(g);
    errbuf[0] = 0;
    CHECK("text file rejected", tok_load(out, errbuf, sizeof errbuf) == NULL && errbuf[0]);
    /* llama2.c file truncated */
    f = fopen(path_in("models/stories260K/tok512.bin"), "rb");
    n = f ? fread(data, 1, sizeof data, f) : 0;
    if (f) fclose(f);
    g = fopen(out, "wb");
    fwrite(data, 1, n / 2, g);
    fclose(g);
    errbuf[0] = 0;
    CHECK("truncated llama2c rejected", tok_load_llama2c(out, 512, errbuf, sizeof errbuf) == NULL && errbuf[0]);
    remove(out);
}

/* ---------- byte-level BPE (SmolLM2's GGUF); the corpora are in tests/llm/bpe.sh ---------- */

typedef struct {
    const llm_tokenizer *t;
    const char *text;
    int ids[4096], n;
} enc_job;

static void *enc_thread(void *arg) {
    enc_job *j = arg;
    for (int r = 0; r < 50; r++) j->n = tok_encode(j->t, j->text, 0, 0, j->ids, 4096);
    return NULL;
}

static void test_bpe(void) {
    const char *path = path_in("models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf");
    llm_tokenizer *t = tok_load(path, errbuf, sizeof errbuf);
    CHECK("smollm2 gguf tokenizer loads", t != NULL);
    if (!t) { printf("# %s\n", errbuf); return; }
    CHECK("smollm2 is bpe, 49152 tokens", tok_is_bpe(t) && tok_vocab_size(t) == 49152);
    CHECK("smollm2 bos/eos/unk/pad 1/2/0/2", tok_bos(t) == 1 && tok_eos(t) == 2 && tok_unk(t) == 0 && tok_pad(t) == 2);
    CHECK("smollm2 add_bos_token false", tok_add_bos(t) == 0);
    CHECK("smollm2 pieces", !strcmp(tok_piece(t, 68), "T") && !strcmp(tok_piece(t, 10124), "\xc4\xa0Story") &&
                                !strcmp(tok_piece(t, 1), "<|im_start|>") && tok_piece(t, 49152) == NULL);
    CHECK("smollm2 piece ids", tok_piece_id(t, "<|im_end|>") == 2 && tok_piece_id(t, "\xc4\xa0Story") == 10124 &&
                                   tok_piece_id(t, "no such token") == -1);
    int want[] = { 68, 922, 10124, 365, 33, 41, 41, 37, 25 };
    CHECK("Toy Story (1995), add_bos ignored (add_bos_token false)", ids_equal(t, "Toy Story (1995)", 1, want, 9));
    int ids[64];
    int n = tok_encode(t, "Toy Story (1995)", 1, 1, ids, 64);
    CHECK("add_eos appends <|im_end|>", n == 10 && ids[9] == 2 && ids[0] == 68);
    CHECK("encode NULL buffer returns count", tok_encode(t, "Toy Story (1995)", 0, 0, NULL, 0) == 9);
    ids[0] = -7;
    n = tok_encode(t, "Toy Story (1995)", 0, 0, ids, 3);
    CHECK("encode truncates", n == 9 && ids[0] == 68 && ids[1] == 922 && ids[2] == 10124);
    int sp[] = { 1, 4093, 198 };   /* <|im_start|> user \n, as in SOURCE.txt's prompt */
    n = tok_encode(t, "<|im_start|>user\n", 0, 0, ids, 64);
    CHECK("special tokens are single ids", n == 3 && ids[0] == sp[0] && ids[1] == sp[1] && ids[2] == sp[2]);
    n = tok_encode(t, "<|im_start|><|im_end|><|im_sta", 0, 0, ids, 64);
    CHECK("adjacent specials and a partial one", n > 3 && ids[0] == 1 && ids[1] == 2 && ids[2] != 1);
    /* invalid UTF-8 reads as U+FFFD per malformed part */
    int a[64], b[64];
    int na = tok_encode(t, "x\xff\xfe y\xe4\xb8", 0, 0, a, 64);
    int nb = tok_encode(t, "x\xef\xbf\xbd\xef\xbf\xbd y\xef\xbf\xbd", 0, 0, b, 64);
    CHECK("invalid utf-8 == U+FFFD", na == nb && !memcmp(a, b, (size_t)na * sizeof *a));

    /* decoding: whole, truncated, streamed byte by byte */
    const char *txt = "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac <|im_end|> 3.14\t end  ";
    int x[256];
    int nx = tok_encode(t, txt, 0, 0, x, 256);
    char buf[512];
    size_t need = tok_decode(t, x, nx, buf, sizeof buf);
    CHECK("decode round trip", need == strlen(txt) && !strcmp(buf, txt));
    char small[6];
    need = tok_decode(t, x, nx, small, sizeof small);
    CHECK("decode truncates", need == strlen(txt) && !strcmp(small, "caf\xc3\xa9"));
    char stream[512] = "", scratch[8];
    for (int k = 0; k < nx; k++) strcat(stream, tok_decode_piece(t, k ? x[k - 1] : -1, x[k], scratch));
    CHECK("streamed decode == text", !strcmp(stream, txt));
    int odd[] = { 68, -1, 49152, 1 };
    tok_decode(t, odd, 4, buf, sizeof buf);
    CHECK("decode skips bad ids, shows specials", !strcmp(buf, "T<|im_start|>"));
    int ebyte = tok_piece_id(t, "\xc3\xa4");   /* byte-level character of byte 0xE4 */
    int half[] = { 68, ebyte };
    tok_decode(t, half, 2, buf, sizeof buf);
    CHECK("decode: a lone lead byte -> U+FFFD", ebyte >= 0 && !strcmp(buf, "T\xef\xbf\xbd"));
    /* bytes whose byte-level character is not a token are dropped (HF and llama.cpp) */
    na = tok_encode(t, "a\x13" "b\x04", 0, 0, a, 64);
    nb = tok_encode(t, "a", 0, 0, b, 64);
    CHECK("bytes without a token are dropped", na == 2 && a[0] == b[0] && a[1] == tok_piece_id(t, "b"));
    CHECK("tok_save_model refused", tok_save_model(t, "/tmp/never-written.model", errbuf, sizeof errbuf) == -1 &&
                                        strstr(errbuf, "cannot be written"));

    /* random texts from troublesome fragments and stray bytes: decode(encode(x)) is x, or x
     * with each malformed UTF-8 part as U+FFFD */
    static const char *frag[] = { " ", "  ", "\t", "\n", "\r\n", "a", "Toy", " Story", "(1995)", "12345",
                                  "'s", "'T", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "<|im_start|>",
                                  "<|im_end|>", "<|im", "|>", "\xc2\xa0", "\xe2\x80\xa8", "\xc2\x85", "!!", "..." };
    unsigned seed = 4321;
    int rt_valid = 1, rt_invalid = 1;
    for (int r = 0; r < 4000; r++) {
        int with_bytes = r % 2;   /* odd rounds: random bytes too, mostly malformed UTF-8 */
        char in[600] = "";
        seed = seed * 1103515245u + 12345u;
        int nf = (int)(seed >> 16) % 24;
        for (int f = 0; f < nf; f++) {
            seed = seed * 1103515245u + 12345u;
            if (with_bytes && (seed >> 16) % 6 == 0) {
                /* continuation bytes and lead bytes SmolLM2 has tokens for: malformed parts,
                 * or now and then a well-formed character */
                static const uint8_t lead[3] = { 0xC3, 0xE4, 0xF0 };
                unsigned v = (seed >> 8) % 67;
                size_t l = strlen(in);
                in[l] = (char)(v < 64 ? 0x80 + v : lead[v - 64]);
                in[l + 1] = 0;
            } else {
                strcat(in, frag[(seed >> 16) % (sizeof frag / sizeof *frag)]);
            }
        }
        int y[2048], z[2048];
        int ny = tok_encode(t, in, 0, 0, y, 2048);
        char out[4000];
        tok_decode(t, y, ny, out, sizeof out);
        if (!with_bytes) {
            rt_valid &= !strcmp(out, in);
        } else {   /* the decoded text is the input with U+FFFD for malformed parts: same ids */
            int nz = tok_encode(t, out, 0, 0, z, 2048);
            rt_invalid &= nz == ny && !memcmp(y, z, (size_t)ny * sizeof *y);
        }
    }
    CHECK("random valid texts: decode(encode(x)) == x", rt_valid);
    CHECK("random texts with stray bytes: decode(encode(x)) encodes to the same ids", rt_invalid);

    /* tok_load_gguf on an open file == tok_load */
    gguf_file *g = gguf_open(path, errbuf, sizeof errbuf);
    llm_tokenizer *t2 = g ? tok_load_gguf(g, path, errbuf, sizeof errbuf) : NULL;
    if (g) gguf_close(g);
    CHECK("tok_load_gguf", t2 && tok_vocab_size(t2) == 49152);
    if (t2) {
        int ok = 1;
        for (int i = 0; i < NSAMPLES; i++) ok &= same_ids(t, t2, samples[i]);
        CHECK("tok_load_gguf == tok_load on samples", ok);
        tok_free(t2);
    }

    /* speed and no quadratic blow-up */
    char *big = xmalloc(4200);
    big[0] = 0;
    while (strlen(big) < 4000) strcat(big, "User 42 watched \"Star Wars (1977)\": 5; \"Fargo (1996)\": 4; next? ");
    clock_t c0 = clock();
    long total = 0;
    for (int i = 0; i < 200; i++) total += tok_encode(t, big, 0, 0, NULL, 0);
    double sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("# bpe: 200 encodes of %zu chars: %.3f s (%ld ids)\n", strlen(big), sec, total);
    CHECK("bpe encode speed (200 x 4000 chars < 5 s)", sec < 5.0);
    char *run = xmalloc(100001);
    const char fill[] = "a 1\t";
    for (int k = 0; k < 4; k++) {
        memset(run, fill[k], 100000);
        run[100000] = 0;
        c0 = clock();
        n = tok_encode(t, run, 0, 0, NULL, 0);
        sec = (double)(clock() - c0) / CLOCKS_PER_SEC;
        char name[64];
        snprintf(name, sizeof name, "bpe: 100000 x '%s' fast", fill[k] == '\t' ? "\\t" : (char[]){ fill[k], 0 });
        printf("# %s: %.3f s, %d ids\n", name, sec, n);
        CHECK(name, n > 0 && sec < 2.0);
    }
    free(run);

    /* two threads on one tokenizer give the one-thread ids */
    enc_job j[2] = { { .t = t, .text = big }, { .t = t, .text = txt } };
    pthread_t th[2];
    for (int k = 0; k < 2; k++) pthread_create(&th[k], NULL, enc_thread, &j[k]);
    for (int k = 0; k < 2; k++) pthread_join(th[k], NULL);
    int solo[4096];
    int ns0 = tok_encode(t, big, 0, 0, solo, 4096);
    int ok = ns0 == j[0].n && !memcmp(solo, j[0].ids, (size_t)ns0 * sizeof *solo) && j[1].n == nx &&
             !memcmp(x, j[1].ids, (size_t)nx * sizeof *x);
    CHECK("bpe: concurrent encodes", ok);
    free(big);
    tok_free(t);
}

int main(int argc, char **argv) {
    if (argc > 1) return cli(argc, argv);
    test_llama();
    test_stories();
    test_errors();
    test_bpe();
    return 0;
}
