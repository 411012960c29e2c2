/* test_formats.c - safetensors (round trip, F16/BF16, shards, bad files), config.json,
 * GGUF (stories260K, a synthetic F16/Q8_0 file, truncation) and the RoPE row permutation. */
#include "../unit/harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/config.h"
#include "llm/gguf.h"
#include "llm/model.h"
#include "llm/safetensors.h"
#include "llm/tensor.h"

static char dir[256];
static char err[1024];

static const char *shared_dir(void) {
    const char *s = getenv("SHARED");
    return s ? s : "/work/shared";
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
}

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

static void test_scalars(void) {
    CHECK("f16 one", llm_f16_to_f32(0x3c00) == 1.0f);
    CHECK("f16 -2.5", llm_f16_to_f32(0xc100) == -2.5f);
    CHECK("f16 max", llm_f16_to_f32(0x7bff) == 65504.0f);
    CHECK("f16 subnormal", llm_f16_to_f32(0x0001) == 0x1p-24f);
    CHECK("f16 inf", llm_f16_to_f32(0x7c00) > 1e38f);
    CHECK("f32->f16 one", llm_f32_to_f16(1.0f) == 0x3c00);
    CHECK("f32->f16 overflow", llm_f32_to_f16(70000.0f) == 0x7c00);
    CHECK("f32->f16 subnormal", llm_f32_to_f16(0x1p-24f) == 0x0001);
    CHECK("f32->f16 round even", llm_f32_to_f16(1.0f + 0x1p-11f) == 0x3c00 && llm_f32_to_f16(1.0f + 3 * 0x1p-11f) == 0x3c02);
    CHECK("bf16 one", llm_bf16_to_f32(0x3f80) == 1.0f && llm_f32_to_bf16(1.0f) == 0x3f80);
    CHECK("bf16 round even", llm_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80 && llm_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82);
    int ok = 1;
    for (int i = 0; i < 0x7c00; i++) ok &= llm_f32_to_f16(llm_f16_to_f32((uint16_t)i)) == i;
    CHECK("f16 exact round trip of every finite value", ok);
}

static void test_safetensors(void) {
    float a[6] = {1, -2, 3.5f, 0.25f, -1e-3f, 1000};
    uint16_t h[6], bf[6];
    for (int i = 0; i < 6; i++) h[i] = llm_f32_to_f16(a[i]), bf[i] = llm_f32_to_bf16(a[i]);
    int32_t ints[3] = {7, 8, 9};
    llm_tensor ts[] = {
        {.name = "a.f32", .dtype = LLM_F32, .ndim = 2, .shape = {2, 3}, .data = a, .nbytes = sizeof a},
        {.name = "b.f16", .dtype = LLM_F16, .ndim = 1, .shape = {6}, .data = h, .nbytes = sizeof h},
        {.name = "c.bf16", .dtype = LLM_BF16, .ndim = 3, .shape = {1, 2, 3}, .data = bf, .nbytes = sizeof bf},
        {.name = "d.i32", .dtype = LLM_I32, .ndim = 1, .shape = {3}, .data = ints, .nbytes = sizeof ints},
        {.name = "e.empty", .dtype = LLM_F32, .ndim = 2, .shape = {0, 4}, .data = NULL, .nbytes = 0},
    };
    const char *meta[] = {"format", "pt", "note", "x"};
    char path[512];
    snprintf(path, sizeof path, "%s/t.safetensors", dir);
    CHECK("st write", st_write(path, ts, 5, meta, 2, err, sizeof err) == 0);
    st_file *f = st_open(path, err, sizeof err);
    CHECK("st open", f != NULL);
    if (!f) { printf("# %s\n", err); return; }
    CHECK("st count", st_count(f) == 5);
    CHECK("st metadata", st_metadata(f, "format") && strcmp(st_metadata(f, "format"), "pt") == 0);
    const llm_tensor *t = st_find(f, "a.f32");
    CHECK("st f32 shape", t && t->dtype == LLM_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3);
    CHECK("st f32 data", t && memcmp(t->data, a, sizeof a) == 0);
    float out[6];
    t = st_find(f, "b.f16");
    CHECK("st f16 convert", t && llm_tensor_to_f32(t, out, 6, err, sizeof err) == 0);
    int ok = 1;
    for (int i = 0; i < 6; i++) ok &= fabsf(out[i] - a[i]) <= 1e-3f * fabsf(a[i]);
    CHECK("st f16 values", ok);
    t = st_find(f, "c.bf16");
    CHECK("st bf16 convert", t && llm_tensor_to_f32(t, out, 6, err, sizeof err) == 0);
    ok = 1;
    for (int i = 0; i < 6; i++) ok &= fabsf(out[i] - a[i]) <= 4e-3f * fabsf(a[i]);
    CHECK("st bf16 values", ok);
    t = st_find(f, "d.i32");
    CHECK("st i32 kept", t && t->dtype == LLM_I32 && memcmp(t->data, ints, sizeof ints) == 0);
    CHECK("st i32 not float", t && llm_tensor_to_f32(t, out, 3, err, sizeof err) != 0);
    CHECK("st wrong count", llm_tensor_to_f32(st_find(f, "a.f32"), out, 5, err, sizeof err) != 0);
    CHECK("st empty tensor", st_find(f, "e.empty") && st_find(f, "e.empty")->nbytes == 0);
    CHECK("st missing name", st_find(f, "nope") == NULL);
    st_close(f);

    /* Header alignment: data must start at a multiple of 8. */
    size_t n;
    unsigned char *raw = read_file(path, &n);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | raw[i];
    CHECK("st header padded to 8", hl % 8 == 0);

    /* Truncations at every length up to the header and some in the data: errors, never crashes. */
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    int all_fail = 1, named = 1;
    size_t cuts[] = {0, 3, 7, 8, 9, 20, 8 + hl / 2, 8 + hl, 8 + hl + 5, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        write_file(bad, raw, cuts[i]);
        st_file *g = st_open(bad, err, sizeof err);
        if (g) { all_fail = 0; st_close(g); }
        else named &= strstr(err, "bad.safetensors") != NULL;
    }
    CHECK("st truncated files rejected", all_fail);
    CHECK("st errors name the file", named);
    write_file(bad, raw, n - 1);
    st_file *g = st_open(bad, err, sizeof err);
    CHECK("st truncated data message", !g && strstr(err, "truncated"));
    /* Garbage: random bytes, a huge header length, valid length with non-JSON. */
    unsigned char junk[4096];
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < sizeof junk; i++) { x ^= x << 13; x ^= x >> 7; x ^= x << 17; junk[i] = (unsigned char)x; }
    write_file(bad, junk, sizeof junk);
    g = st_open(bad, err, sizeof err);
    CHECK("st random bytes rejected", g == NULL);
    unsigned char hdr[64] = {40, 0, 0, 0, 0, 0, 0, 0};
    memcpy(hdr + 8, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}", 40);
    write_file(bad, hdr, 48);
    g = st_open(bad, err, sizeof err);
    CHECK("st bad JSON rejected", g == NULL && strstr(err, "header"));
    const char *cases[] = {
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}",  /* size mismatch */
        "{\"a\": {\"dtype\": \"Q9\", \"shape\": [2], \"data_offsets\": [0, 8]}}",   /* unknown dtype */
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [-2], \"data_offsets\": [0, 8]}}", /* negative dim */
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 0]}}",  /* reversed */
        "{\"a\": {\"dtype\": \"F32\", \"shape\": [2]}}",                            /* no offsets */
        "[1, 2]",                                                                   /* not an object */
    };
    int rej = 1;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t L = strlen(cases[i]);
        unsigned char buf[256] = {0};
        buf[0] = (unsigned char)L;
        memcpy(buf + 8, cases[i], L);
        write_file(bad, buf, 8 + L + 8);
        g = st_open(bad, err, sizeof err);
        if (g) { rej = 0; st_close(g); printf("# accepted: %s\n", cases[i]); }
    }
    CHECK("st malformed entries rejected", rej);
    free(raw);

    /* Shards through model.safetensors.index.json. */
    char sd[512], p1[600], p2[600], idx[600];
    snprintf(sd, sizeof sd, "%s/sharded", dir);
    mkdir(sd, 0777);
    snprintf(p1, sizeof p1, "%s/model-00001-of-00002.safetensors", sd);
    snprintf(p2, sizeof p2, "%s/model-00002-of-00002.safetensors", sd);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", sd);
    st_write(p1, ts, 2, NULL, 0, err, sizeof err);
    st_write(p2, ts + 2, 1, NULL, 0, err, sizeof err);
    const char *js = "{\"metadata\": {}, \"weight_map\": {\"a.f32\": \"model-00001-of-00002.safetensors\", "
                     "\"b.f16\": \"model-00001-of-00002.safetensors\", \"c.bf16\": \"model-00002-of-00002.safetensors\"}}";
    write_file(idx, js, strlen(js));
    f = st_open(sd, err, sizeof err);
    CHECK("st sharded open", f && st_count(f) == 3);
    CHECK("st sharded find", f && st_find(f, "c.bf16") && st_find(f, "a.f32") &&
                                 memcmp(st_find(f, "a.f32")->data, a, sizeof a) == 0);
    st_close(f);
    js = "{\"weight_map\": {\"a.f32\": \"model-00001-of-00002.safetensors\", \"zz\": \"model-00002-of-00002.safetensors\"}}";
    write_file(idx, js, strlen(js));
    f = st_open(sd, err, sizeof err);
    CHECK("st sharded missing tensor", f == NULL && strstr(err, "zz"));
    js = "{\"weight_map\": {\"a.f32\": \"nothere.safetensors\"}}";
    write_file(idx, js, strlen(js));
    f = st_open(sd, err, sizeof err);
    CHECK("st sharded missing shard", f == NULL && strstr(err, "nothere"));
    f = st_open(dir, err, sizeof err);
    CHECK("st empty dir", f == NULL && strstr(err, "no model.safetensors"));
}

static void test_config(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/config.json", dir);
    llm_config c = {.dim = 64, .hidden_dim = 172, .n_layers = 5, .n_heads = 8, .n_kv_heads = 4, .head_dim = 8,
                    .vocab_size = 512, .max_seq_len = 512, .norm_eps = 1e-5f, .rope_theta = 10000,
                    .tie_embeddings = 1, .bos_id = 1, .eos_id = 2};
    CHECK("config save", llm_config_save(p, &c, err, sizeof err) == 0);
    llm_config d;
    CHECK("config load", llm_config_load(dir, &d, err, sizeof err) == 0);
    CHECK("config round trip", memcmp(&c, &d, sizeof c) == 0);
    struct { const char *js, *want; } bad[] = {
        {"{\"hidden_size\": 64", "bad JSON"},
        {"", "bad JSON"},
        {"[]", "not a JSON object"},
        {"{\"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 10}", "hidden_size"},
        {"{\"hidden_size\": \"64\", \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 10}", "hidden_size"},
        {"{\"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"num_key_value_heads\": 3, \"vocab_size\": 10}", "multiple"},
        {"{\"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 0, \"num_attention_heads\": 2, \"vocab_size\": 10}", "positive"},
        {"{\"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 10, \"rope_scaling\": {\"type\": \"linear\"}}", "rope_scaling"},
        {"{\"model_type\": \"gpt2\"}", "model_type"},
        {"{\"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2, \"vocab_size\": 10, \"rms_norm_eps\": \"x\"}", "rms_norm_eps"},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_file(p, bad[i].js, strlen(bad[i].js));
        if (llm_config_load(p, &d, err, sizeof err) == 0 || !strstr(err, bad[i].want) || !strstr(err, "config.json")) {
            ok = 0;
            printf("# config case %zu: %s\n", i, err);
        }
    }
    CHECK("config bad files rejected with reasons", ok);
    const char *good = "{\"hidden_size\": 8, \"intermediate_size\": 8, \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
                       " \"vocab_size\": 10, \"eos_token_id\": [2, 3], \"rope_scaling\": null}";
    write_file(p, good, strlen(good));
    CHECK("config defaults", llm_config_load(p, &d, err, sizeof err) == 0 && d.n_kv_heads == 2 && d.head_dim == 4 &&
                                 d.eos_id == 2 && d.bos_id == -1 && d.tie_embeddings == 0 && d.rope_theta == 10000.0f);
    CHECK("config missing file", llm_config_load("/nonexistent/x", &d, err, sizeof err) != 0 && strstr(err, "/nonexistent/x"));
}

/* A minimal GGUF writer for the synthetic test file. */
static void put(FILE *f, uint64_t v, int n) { for (int i = 0; i < n; i++) fputc((int)(v >> (8 * i)) & 0xff, f); }
static void put_str(FILE *f, const char *s) { put(f, strlen(s), 8); fputs(s, f); }

static void test_gguf(void) {
    char p[512];
    snprintf(p, sizeof p, "%s/models/stories260K-gguf/stories260K.gguf", shared_dir());
    gguf_file *g = gguf_open(p, err, sizeof err);
    CHECK("gguf open stories260K", g != NULL);
    if (g) {
        int64_t v = 0;
        double d = 0;
        CHECK("gguf tensor count", gguf_count(g) == 48);
        CHECK("gguf arch", gguf_get_str(g, "general.architecture") && strcmp(gguf_get_str(g, "general.architecture"), "llama") == 0);
        CHECK("gguf int", gguf_get_int(g, "llama.block_count", &v) && v == 5);
        CHECK("gguf float", gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &d) && fabs(d - 1e-5) < 1e-9);
        CHECK("gguf array", gguf_get_arr_len(g, "tokenizer.ggml.tokens") == 512);
        const llm_tensor *t = gguf_find(g, "blk.0.attn_k.weight");
        CHECK("gguf shape reversed", t && t->ndim == 2 && t->shape[0] == 32 && t->shape[1] == 64 && t->dtype == LLM_F32);
        CHECK("gguf missing", gguf_find(g, "nope") == NULL);
        gguf_close(g);
    } else printf("# %s\n", err);
    /* Truncated copies. */
    size_t n;
    unsigned char *raw = read_file(p, &n);
    char bad[512];
    snprintf(bad, sizeof bad, "%s/bad.gguf", dir);
    int ok = 1;
    size_t cuts[] = {0, 4, 23, 100, 5000, 14176, n / 2, n - 1};
    for (size_t i = 0; raw && i < sizeof cuts / sizeof *cuts; i++) {
        write_file(bad, raw, cuts[i]);
        g = gguf_open(bad, err, sizeof err);
        if (g) { ok = 0; gguf_close(g); }
    }
    CHECK("gguf truncated rejected", raw && ok);
    free(raw);

    /* Synthetic: one F16 (2,32) and one Q8_0 (2,32) tensor, alignment 32. */
    float want[64];
    for (int i = 0; i < 64; i++) want[i] = (float)(i - 30) / 8.0f;
    snprintf(p, sizeof p, "%s/syn.gguf", dir);
    FILE *f = fopen(p, "wb");
    fputs("GGUF", f);
    put(f, 3, 4);
    put(f, 2, 8); /* tensors */
    put(f, 1, 8); /* kv */
    put_str(f, "general.architecture");
    put(f, 8, 4);
    put_str(f, "llama");
    put_str(f, "h");
    put(f, 2, 4), put(f, 32, 8), put(f, 2, 8), put(f, 1, 4), put(f, 0, 8);
    put_str(f, "q");
    put(f, 2, 4), put(f, 32, 8), put(f, 2, 8), put(f, 8, 4), put(f, 128, 8);
    long pos = ftell(f);
    while (pos % 32) fputc(0, f), pos++;
    for (int i = 0; i < 64; i++) put(f, llm_f32_to_f16(want[i]), 2);
    for (int b = 0; b < 2; b++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(want[b * 32 + j]));
        float dlt = amax / 127;
        put(f, llm_f32_to_f16(dlt), 2);
        float dd = llm_f16_to_f32(llm_f32_to_f16(dlt));
        for (int j = 0; j < 32; j++) fputc((int8_t)lrintf(want[b * 32 + j] / dd) & 0xff, f);
    }
    fclose(f);
    g = gguf_open(p, err, sizeof err);
    CHECK("gguf synthetic open", g != NULL);
    if (!g) { printf("# %s\n", err); return; }
    float out[64];
    const llm_tensor *t = gguf_find(g, "h");
    CHECK("gguf f16 tensor", t && t->dtype == LLM_F16 && llm_tensor_to_f32(t, out, 64, err, sizeof err) == 0 &&
                                 out[0] == want[0] && out[63] == want[63]);
    t = gguf_find(g, "q");
    int okq = t && t->dtype == LLM_Q8_0 && t->nbytes == 68 && llm_tensor_to_f32(t, out, 64, err, sizeof err) == 0;
    for (int i = 0; okq && i < 64; i++) okq = fabsf(out[i] - want[i]) <= 0.02f;
    CHECK("gguf q8_0 tensor", okq);
    gguf_close(g);
}

static void test_permute(void) {
    /* 2 heads of head_dim 4, 1 column: rows 0..7 -> per head [0,2,1,3]. */
    float w[8] = {0, 1, 2, 3, 4, 5, 6, 7}, want[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    llm_permute_meta_to_hf(w, 2, 4, 1);
    CHECK("permute meta->hf", memcmp(w, want, sizeof w) == 0);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/llmfmt.XXXXXX", getenv("TMPROOT") ? getenv("TMPROOT") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    test_scalars();
    test_safetensors();
    test_config();
    test_gguf();
    test_permute();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return 0;
}
