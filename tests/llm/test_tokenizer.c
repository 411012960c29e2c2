/* test_tokenizer.c - unit tests for common/llm/tokenizer.c, and a small command-line front
 * end that tests/llm/tokenizer.sh uses to compare against spm_encode / spm_decode.
 *
 * No arguments (how tests/run.sh calls it): run the unit checks.
 * Otherwise MODEL is "path.model" (SentencePiece) or "path.bin:N" (llama2.c, N tokens):
 *   test_tokenizer encode MODEL      stdin lines -> one line of ids each (spm_encode --output_format=id)
 *   test_tokenizer pieces MODEL      stdin lines -> pieces (spm_encode --output_format=piece)
 *   test_tokenizer decode MODEL      stdin lines of ids -> text (spm_decode --input_format=id)
 *   test_tokenizer stream MODEL      like decode, but through tok_decode_piece
 *   test_tokenizer save MODEL OUT    write MODEL as a SentencePiece tokenizer.model
 *   test_tokenizer load MODEL        load only; on failure "error: MODEL: reason", exit 1
 */
#include "../unit/harness.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/err.h"
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

static int cli(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: test_tokenizer encode|pieces|decode|stream|save|load MODEL [OUT]\n");
        return 2;
    }
    const char *cmd = argv[1];
    llm_tokenizer *t = load_any(argv[2]);
    if (!t) {
        fprintf(stderr, "error: %s: %s\n", argv[2], errbuf);
        return 1;
    }
    int rc = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    if (!strcmp(cmd, "load")) {
        printf("vocab %d bos %d eos %d unk %d pad %d\n", tok_vocab_size(t), tok_bos(t), tok_eos(t),
               tok_unk(t), tok_pad(t));
    } else if (!strcmp(cmd, "save")) {
        if (argc < 4 || tok_save_model(t, argv[3], errbuf, sizeof errbuf) != 0) {
            fprintf(stderr, "error: %s: %s\n", argc < 4 ? "save" : argv[3], argc < 4 ? "no OUT" : errbuf);
            rc = 1;
        }
    } else if (!strcmp(cmd, "encode") || !strcmp(cmd, "pieces")) {
        int cap_ids = 0, *ids = NULL;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            if (len && line[len - 1] == '\n') line[--len] = 0;
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
    } else if (!strcmp(cmd, "decode") || !strcmp(cmd, "stream")) {
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
                fwrite(buf, 1, need, stdout);
                free(buf);
            } else {
                char scratch[8];
                for (int i = 0; i < n; i++) fputs(tok_decode_piece(t, i ? ids[i - 1] : -1, ids[i], scratch), stdout);
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

int main(int argc, char **argv) {
    if (argc > 1) return cli(argc, argv);
    test_llama();
    test_stories();
    test_errors();
    return 0;
}
