/* test_quant.c - GGUF block-quantised types (Q4_0 ... Q8_0, Q2_K ... Q6_K): the committed fixture
 * tests/llm/fixtures/quant/quant.gguf dequantised by llm_tensor_to_f32 against gguf.quants'
 * reference values (quant-ref.f32, made by dev/fixtures/gen_quant.py), bit for bit; bad files
 * (an unsupported type code, a truncated file, a row length that is not a multiple of the
 * block); and the real SmolLM2-135M-Instruct Q4_1 file in $SHARED when it is there.
 *
 * Exact equality is expected everywhere: both sides decode the same f16 scales exactly and do
 * the same fp32 multiplications and additions in the same order, each correctly rounded. */
#include "../unit/harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/gguf.h"
#include "llm/tensor.h"

#define ROWS 4
#define COLS 512
#define NVAL (ROWS * COLS)

static const char *types[] = {"F32", "F16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"};
#define NTYPES (int)(sizeof types / sizeof *types)

static char dir[256];
static char err[1024];

static const char *root_dir(void) { return getenv("ITREK_ROOT") ? getenv("ITREK_ROOT") : "."; }
static const char *shared_dir(void) { return getenv("SHARED") ? getenv("SHARED") : "/work/shared"; }

static unsigned char *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n ? *n : 1);
    if (fread(b, 1, *n, f) != *n) { free(b); b = NULL; }
    fclose(f);
    return b;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void fixture_path(char *p, size_t n, const char *file) {
    snprintf(p, n, "%s/tests/llm/fixtures/quant/%s", root_dir(), file);
}

/* Index of the first float whose bits differ, or -1. */
static long first_diff(const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof *a) != 0) return (long)i;
    return -1;
}

static void test_dtypes(void) {
    CHECK("dtype names", strcmp(llm_dtype_name(LLM_Q4_0), "Q4_0") == 0 && strcmp(llm_dtype_name(LLM_Q6_K), "Q6_K") == 0 &&
                             strcmp(llm_dtype_name(LLM_Q8_0), "Q8_0") == 0 && llm_dtype_name(LLM_DTYPE_COUNT) == NULL);
    CHECK("dtype blocks", llm_dtype_block(LLM_F32) == 1 && llm_dtype_block(LLM_Q5_1) == 32 && llm_dtype_block(LLM_Q3_K) == 256);
    size_t want[][2] = {{LLM_Q4_0, 18}, {LLM_Q4_1, 20}, {LLM_Q5_0, 22}, {LLM_Q5_1, 24}, {LLM_Q8_0, 34},
                        {LLM_Q2_K, 84}, {LLM_Q3_K, 110}, {LLM_Q4_K, 144}, {LLM_Q5_K, 176}, {LLM_Q6_K, 210}};
    int ok = 1;
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        llm_dtype t = (llm_dtype)want[i][0];
        uint64_t b = (uint64_t)llm_dtype_block(t);
        ok &= llm_dtype_bytes(t, 3 * b) == 3 * want[i][1] && llm_dtype_bytes(t, 3 * b + 1) == 0 &&
              llm_dtype_bytes(t, b - 1) == 0 && llm_dtype_bytes(t, 0) == 0;
    }
    CHECK("dtype bytes per block, 0 off the block", ok);
    CHECK("safetensors parser ignores block types", llm_dtype_parse("Q4_K") == -1 && llm_dtype_parse("Q8_0") == -1 &&
                                                      llm_dtype_parse("F16") == LLM_F16 && llm_dtype_parse("BOOL") == LLM_BOOL);

    /* Two hand-built blocks, independent of the Python reference. Q4_0: d = 0.5, codes 0..15
     * then 15..0 -> 0.5 * (code - 8). */
    unsigned char q40[18] = {0x00, 0x38}; /* f16 0.5 */
    for (int j = 0; j < 16; j++) q40[2 + j] = (unsigned char)(j | (15 - j) << 4);
    float out[32];
    llm_tensor t = {.name = "h.q4_0", .dtype = LLM_Q4_0, .ndim = 1, .shape = {32}, .data = q40, .nbytes = 18};
    ok = llm_tensor_to_f32(&t, out, 32, err, sizeof err) == 0;
    for (int j = 0; ok && j < 16; j++) ok = out[j] == 0.5f * (float)(j - 8) && out[16 + j] == 0.5f * (float)(7 - j);
    CHECK("q4_0 hand block", ok);
    /* Q5_1: d = 1, m = -2, qh = bit k set for odd k, low nibbles = k % 16 -> code k%16 + 16*(k odd). */
    unsigned char q51[24] = {0x00, 0x3c, 0x00, 0xc0, 0xaa, 0xaa, 0xaa, 0xaa};
    for (int j = 0; j < 16; j++) q51[8 + j] = (unsigned char)(j | j << 4);
    t = (llm_tensor){.name = "h.q5_1", .dtype = LLM_Q5_1, .ndim = 1, .shape = {32}, .data = q51, .nbytes = 24};
    ok = llm_tensor_to_f32(&t, out, 32, err, sizeof err) == 0;
    for (int k = 0; ok && k < 32; k++) ok = out[k] == (float)(k % 16 + 16 * (k & 1)) - 2.0f;
    CHECK("q5_1 hand block", ok);
    t.nbytes = 23;
    CHECK("wrong byte count refused", llm_tensor_to_f32(&t, out, 32, err, sizeof err) != 0 && strstr(err, "h.q5_1") &&
                                          strstr(err, "Q5_1"));
}

static void test_fixture(void) {
    char p[512];
    size_t nref = 0;
    fixture_path(p, sizeof p, "quant-ref.f32");
    float *ref = (float *)read_file(p, &nref);
    CHECK("fixture reference present", ref && nref == (size_t)NTYPES * NVAL * 4);
    fixture_path(p, sizeof p, "quant.gguf");
    gguf_file *g = gguf_open(p, err, sizeof err);
    CHECK("fixture gguf opens", g != NULL);
    if (!g || !ref || nref != (size_t)NTYPES * NVAL * 4) {
        if (!g) printf("# %s\n", err);
        free(ref);
        gguf_close(g);
        return;
    }
    CHECK("fixture tensor count", gguf_count(g) == NTYPES);
    float *out = malloc(NVAL * sizeof *out);
    for (int i = 0; i < NTYPES; i++) {
        char name[32], label[128];
        snprintf(name, sizeof name, "quant.%s", types[i]);
        const llm_tensor *t = gguf_find(g, name);
        snprintf(label, sizeof label, "%s type and shape", name);
        CHECK(label, t && strcmp(llm_dtype_name(t->dtype), types[i]) == 0 && t->ndim == 2 && t->shape[0] == ROWS &&
                         t->shape[1] == COLS && t->nbytes == llm_dtype_bytes(t->dtype, NVAL));
        if (!t) continue;
        memset(out, 0xff, NVAL * sizeof *out);
        int rc = llm_tensor_to_f32(t, out, NVAL, err, sizeof err);
        if (rc) printf("# %s\n", err);
        long d = rc ? 0 : first_diff(out, ref + (size_t)i * NVAL, NVAL);
        if (d >= 0) printf("# %s: value %ld is %.9g, gguf.quants gives %.9g\n", name, d, out[d], ref[(size_t)i * NVAL + d]);
        snprintf(label, sizeof label, "%s dequantised equals gguf.quants (bit-exact)", name);
        CHECK(label, rc == 0 && d < 0);
    }
    free(out);
    free(ref);
    gguf_close(g);
}

/* Offset in the file of the tensor-info record that follows the (length-prefixed) name. */
static size_t info_after_name(const unsigned char *raw, size_t n, const char *name) {
    size_t len = strlen(name);
    for (size_t i = 0; i + 8 + len <= n; i++) {
        uint64_t l = 0;
        for (int k = 7; k >= 0; k--) l = l << 8 | raw[i + (size_t)k];
        if (l == len && memcmp(raw + i + 8, name, len) == 0) return i + 8 + len;
    }
    return 0;
}

static void put_le(unsigned char *p, uint64_t v, int n) { for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i)); }

/* Open a patched copy; 1 when it is refused with a message containing every string of want. */
static int refused(const unsigned char *raw, size_t n, const char *const *want, int nwant) {
    char p[512];
    snprintf(p, sizeof p, "%s/bad.gguf", dir);
    write_file(p, raw, n);
    gguf_file *g = gguf_open(p, err, sizeof err);
    if (g) { gguf_close(g); printf("# patched copy was accepted\n"); return 0; }
    int ok = strchr(err, '\n') == NULL;
    for (int i = 0; i < nwant; i++) ok &= strstr(err, want[i]) != NULL;
    if (!ok) printf("# message: %s\n", err);
    return ok;
}

static void test_bad_files(void) {
    char p[512];
    size_t n = 0;
    fixture_path(p, sizeof p, "quant.gguf");
    unsigned char *raw = read_file(p, &n);
    CHECK("bad files: fixture read", raw != NULL);
    if (!raw) return;
    unsigned char *cp = malloc(n);
    /* record after the name: u32 ndim (2) | u64 ne0 (512) | u64 ne1 (4) | u32 type | u64 offset */
    size_t k4 = info_after_name(raw, n, "quant.Q4_K"), q40 = info_after_name(raw, n, "quant.Q4_0");
    CHECK("bad files: tensor records found", k4 && q40 && raw[k4] == 2 && raw[k4 + 20] == 12 && raw[q40 + 20] == 2);
    if (!k4 || !q40) { free(cp); free(raw); return; }

    memcpy(cp, raw, n);
    put_le(cp + k4 + 20, 16, 4);
    const char *w1[] = {"quant.Q4_K", "GGUF type 16 (IQ2_XXS) is not supported", "supported: F32, F16, BF16, Q4_0", "Q6_K"};
    CHECK("unsupported type: code, name and tensor", refused(cp, n, w1, 4));
    put_le(cp + k4 + 20, 200, 4);
    const char *w2[] = {"quant.Q4_K", "GGUF type 200 is not supported"};
    CHECK("unknown type code: code and tensor", refused(cp, n, w2, 2));

    memcpy(cp, raw, n);
    put_le(cp + k4 + 4, 384, 8), put_le(cp + k4 + 12, 3, 8); /* 384 x 3 = 1152 values: whole blocks, ragged rows */
    const char *w3[] = {"quant.Q4_K", "innermost dimension 384 is not a multiple of the Q4_K block size (256)"};
    CHECK("Q4_K row not a multiple of 256", refused(cp, n, w3, 2));
    memcpy(cp, raw, n);
    put_le(cp + q40 + 4, 500, 8);
    const char *w4[] = {"quant.Q4_0", "innermost dimension 500 is not a multiple of the Q4_0 block size (32)"};
    CHECK("Q4_0 row not a multiple of 32", refused(cp, n, w4, 2));

    /* Truncations: where the data of a tensor lies, found by its bytes in the intact file. */
    gguf_file *g = gguf_open(p, err, sizeof err);
    const llm_tensor *a = g ? gguf_find(g, "quant.Q4_0") : NULL, *b = g ? gguf_find(g, "quant.Q6_K") : NULL;
    unsigned char *pa = a ? memmem(raw, n, a->data, a->nbytes) : NULL, *pb = b ? memmem(raw, n, b->data, b->nbytes) : NULL;
    CHECK("truncation: tensor data located", pa && pb);
    if (pa && pb) {
        const char *w5[] = {"quant.Q4_0", "beyond the end of the file"};
        CHECK("truncated in Q4_0 data", refused(raw, (size_t)(pa - raw) + 100, w5, 2));
        const char *w6[] = {"quant.Q6_K", "beyond the end of the file"};
        CHECK("truncated in the last tensor's data", refused(raw, (size_t)(pb - raw) + b->nbytes - 1, w6, 2));
        const char *w7[] = {"truncated or corrupt GGUF"};
        CHECK("truncated in the tensor list", refused(raw, k4 + 10, w7, 1));
    }
    gguf_close(g);
    free(cp);
    free(raw);
}

static void test_smollm2(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/models/smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf", shared_dir());
    if (access(p, R_OK) != 0) {
        printf("# %s absent: SmolLM2 Q4_1 checks skipped\n", p);
        return;
    }
    gguf_file *g = gguf_open(p, err, sizeof err);
    CHECK("smollm2 Q4_1 opens", g != NULL);
    if (!g) { printf("# %s\n", err); return; }
    /* every tensor by name: the embedding, the final norm, 9 per block (30 blocks; tied lm_head) */
    static const char *blk[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
                                "attn_norm", "ffn_norm"};
    int n_t = gguf_count(g), ok = 1, n_q41 = 0, n_q80 = 0, n_f32 = 0, n_named = 2 + 30 * 9;
    for (int i = 0; i < n_named; i++) {
        char name[64];
        if (i < 2) snprintf(name, sizeof name, "%s", i ? "output_norm.weight" : "token_embd.weight");
        else snprintf(name, sizeof name, "blk.%d.%s.weight", (i - 2) / 9, blk[(i - 2) % 9]);
        const llm_tensor *t = gguf_find(g, name);
        if (!t) { ok = 0; printf("# %s missing\n", name); continue; }
        uint64_t n = llm_tensor_numel(t);
        float *out = malloc(n * sizeof *out);
        if (llm_tensor_to_f32(t, out, n, err, sizeof err) != 0) { ok = 0; printf("# %s\n", err); }
        else
            for (uint64_t j = 0; j < n; j++)
                if (!isfinite(out[j])) { ok = 0; printf("# %s: value %llu not finite\n", t->name, (unsigned long long)j); break; }
        free(out);
        n_q41 += t->dtype == LLM_Q4_1, n_q80 += t->dtype == LLM_Q8_0, n_f32 += t->dtype == LLM_F32;
    }
    CHECK("smollm2 every tensor converts to finite values", ok && n_t == 272 && n_named == 272);
    CHECK("smollm2 types Q4_1 x210, F32 x61, Q8_0 x1", n_q41 == 210 && n_f32 == 61 && n_q80 == 1);

    fixture_path(p, sizeof p, "smollm2-ref.txt");
    FILE *f = fopen(p, "r");
    CHECK("smollm2 reference values present", f != NULL);
    if (!f) { gguf_close(g); return; }
    char line[4096], cur[128] = "";
    float *vals = NULL;
    int lines = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        char name[128], type[16];
        unsigned long long off;
        int used = 0;
        if (sscanf(line, "%127s %15s %llu%n", name, type, &off, &used) != 3) continue;
        const llm_tensor *t = gguf_find(g, name);
        char label[200];
        snprintf(label, sizeof label, "smollm2 %s@%llu equals gguf.quants", name, off);
        if (!t) { CHECK(label, 0); continue; }
        uint64_t n = llm_tensor_numel(t);
        if (strcmp(cur, name) != 0) {
            free(vals);
            vals = malloc(n * sizeof *vals);
            if (llm_tensor_to_f32(t, vals, n, err, sizeof err) != 0) { free(vals); vals = NULL; }
            snprintf(cur, sizeof cur, "%s", name);
        }
        int good = vals && strcmp(llm_dtype_name(t->dtype), type) == 0, cnt = 0;
        char *s = line + used, *e;
        for (float v = strtof(s, &e); e != s && good; s = e, v = strtof(s, &e), cnt++) {
            good = off + (uint64_t)cnt < n && memcmp(&vals[off + (uint64_t)cnt], &v, sizeof v) == 0;
            if (!good) printf("# %s[%llu]: %.9g, want %.9g\n", name, off + (unsigned long long)cnt,
                              off + (uint64_t)cnt < n && vals ? vals[off + (uint64_t)cnt] : 0.0f, v);
        }
        CHECK(label, good && cnt > 0);
        lines++;
    }
    fclose(f);
    free(vals);
    CHECK("smollm2 reference lines", lines >= 3);
    gguf_close(g);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/llmquant.XXXXXX", getenv("TMPROOT") ? getenv("TMPROOT") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_dtypes();
    test_fixture();
    test_bad_files();
    test_smollm2();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return 0;
}
