/* model_load.c - making a model: the loaders of a Hugging Face directory (config.json and
 * safetensors), a GGUF file and a llama2.c checkpoint, llm_load's choice among them and its
 * adapter handling, the random initialisers, and llm_save_hf. The Hugging Face and GGUF
 * loaders and the saver read one table of tensor names (tensor_names below), the two files
 * differing only in names and in GGUF's Meta-layout q/k rows. Whatever the file, the model
 * comes out in model.h's layout (HF names' row order, rotate-half RoPE).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/err.h"
#include "io/rng.h"
#include "llm/gguf.h"
#include "llm/lora.h"
#include "llm/model.h"
#include "llm/model_impl.h"
#include "llm/safetensors.h"

/* ---------------------------------------------------------------- llama2.c */

llm_model *llm_load_llama2c(const char *path, const llm_load_opts *o, char *err, size_t errlen) {
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
    int32_t h[7];
    struct stat sb;
    if (fread(h, sizeof h, 1, fp) != 1 || fstat(fileno(fp), &sb) != 0) {
        snprintf(err, errlen, "%s: truncated llama2.c checkpoint (no header)", path);
        fclose(fp);
        return NULL;
    }
    llm_config c = {.dim = h[0], .hidden_dim = h[1], .n_layers = h[2], .n_heads = h[3], .n_kv_heads = h[4],
                    .vocab_size = abs(h[5]), .max_seq_len = h[6], .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                    .tie_embeddings = h[5] > 0, .bos_id = 1, .eos_id = 2};
    c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
    if (c.dim > 1 << 16 || c.hidden_dim > 1 << 18 || c.n_layers > 1024 || c.vocab_size > 1 << 22 ||
        c.max_seq_len > 1 << 22 || llm_config_check(&c, err, errlen) != 0 || c.head_dim * c.n_heads != c.dim) {
        snprintf(err, errlen, "%s: not a llama2.c checkpoint (implausible header)", path);
        fclose(fp);
        return NULL;
    }
    size_t C = (size_t)c.dim, H = (size_t)c.hidden_dim, L = (size_t)c.n_layers, V = (size_t)c.vocab_size,
           kvd = (size_t)c.n_kv_heads * c.head_dim, hd = (size_t)c.head_dim;
    size_t n_float = V * C + L * C + L * C * C + 2 * L * kvd * C + L * C * C + L * C + 3 * L * H * C + C +
                     (size_t)c.max_seq_len * hd + (c.tie_embeddings ? 0 : V * C);
    if ((size_t)sb.st_size < 28 + 4 * n_float) {
        snprintf(err, errlen, "%s: truncated llama2.c checkpoint (%lld bytes, header needs %zu)", path,
                 (long long)sb.st_size, 28 + 4 * n_float);
        fclose(fp);
        return NULL;
    }
    llm_model *m = mdl_alloc(&c);
    int ok = 1;
#define RD(p, n) do { (p) = xmalloc((n) * sizeof(float)); ok = ok && fread((p), sizeof(float), (n), fp) == (n); } while (0)
    float *wq, *wk, *wv, *wo, *w1, *w2, *w3, *ra, *rf;
    RD(m->embed, V * C);
    RD(ra, L * C);
    RD(wq, L * C * C);
    RD(wk, L * kvd * C);
    RD(wv, L * kvd * C);
    RD(wo, L * C * C);
    RD(rf, L * C);
    RD(w1, L * H * C);
    RD(w2, L * C * H);
    RD(w3, L * H * C);
    RD(m->norm, C);
    if (!c.tie_embeddings) {
        ok = ok && fseek(fp, (long)((size_t)c.max_seq_len * hd * sizeof(float)), SEEK_CUR) == 0;
        float *cls;
        RD(cls, V * C);
        m->lm_head = (llm_weight){.rows = (int)V, .cols = (int)C, .f = cls};
    }
#undef RD
    fclose(fp);
    /* Split the stacked arrays into per-layer weights. */
    for (size_t l = 0; l < L; l++) {
        llm_layer *Y = &m->layers[l];
#define CUT(dst, src, r, k) do { (dst) = (llm_weight){.rows = (int)(r), .cols = (int)(k), .f = xmalloc((r) * (k) * sizeof(float))}; \
        memcpy((dst).f, (src) + l * (r) * (k), (r) * (k) * sizeof(float)); } while (0)
        CUT(Y->wq, wq, C, C);
        CUT(Y->wk, wk, kvd, C);
        CUT(Y->wv, wv, kvd, C);
        CUT(Y->wo, wo, C, C);
        CUT(Y->w_gate, w1, H, C);
        CUT(Y->w_down, w2, C, H);
        CUT(Y->w_up, w3, H, C);
#undef CUT
        Y->attn_norm = xmalloc(C * sizeof(float));
        Y->ffn_norm = xmalloc(C * sizeof(float));
        memcpy(Y->attn_norm, ra + l * C, C * sizeof(float));
        memcpy(Y->ffn_norm, rf + l * C, C * sizeof(float));
        llm_permute_meta_to_hf(Y->wq.f, c.n_heads, c.head_dim, (int)C);
        llm_permute_meta_to_hf(Y->wk.f, c.n_kv_heads, c.head_dim, (int)C);
    }
    free(wq), free(wk), free(wv), free(wo), free(w1), free(w2), free(w3), free(ra), free(rf);
    if (!ok) {
        snprintf(err, errlen, "%s: read error", path);
        llm_free(m);
        return NULL;
    }
    mdl_finish(m, o);
    return m;
}

/* ---------------------------------------------------------------- tensor files */

/* The names of a checkpoint's tensors: Hugging Face's (safetensors) or llama.cpp's (GGUF).
 * One table serves both loaders and llm_save_hf, so that they cannot drift apart. */
typedef struct {
    const char *embed, *norm, *lm_head; /* (V,C), (C), (V,C) */
    const char *layer;                  /* a block's tensor: format of the layer and the part */
    const char *mod[LLM_N_MODS];        /* the linear weights, in lora.h's LLM_MOD_* order */
    const char *attn_norm, *ffn_norm;   /* (C) each */
    int meta_rope;                      /* q/k rows in Meta's interleaved RoPE order */
} tensor_names;

static const tensor_names HF_NAMES = {
    "model.embed_tokens.weight", "model.norm.weight", "lm_head.weight", "model.layers.%d.%s.weight",
    {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
     "mlp.down_proj"},
    "input_layernorm", "post_attention_layernorm", 0};

/* GGUF keeps Meta's interleaved RoPE rows (llama.cpp's converters undo HF's permutation). */
static const tensor_names GGUF_NAMES = {
    "token_embd.weight", "output_norm.weight", "output.weight", "blk.%d.%s.weight",
    {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"},
    "attn_norm", "ffn_norm", 1};

typedef const llm_tensor *(*find_fn)(const void *file, const char *name);

/* Read tensor `name` of shape (rows, cols) (cols = 0: a vector of rows) as fp32. Nothing once
 * *fail is set; a missing or misshapen tensor sets it with the reason in err. */
static float *load_f32(const void *file, find_fn find, const char *src, const char *name, int rows, int cols,
                       char *err, size_t errlen, int *fail) {
    if (*fail) return NULL;
    const llm_tensor *t = find(file, name);
    if (!t) {
        snprintf(err, errlen, "%s: tensor %s is missing", src, name);
        *fail = 1;
        return NULL;
    }
    int ok = cols ? (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) : (t->ndim == 1 && t->shape[0] == rows);
    if (!ok) {
        char sh[128] = "";
        for (int i = 0; i < t->ndim; i++) snprintf(sh + strlen(sh), sizeof sh - strlen(sh), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        snprintf(err, errlen, "%s: tensor %s has shape [%s], expected [%d%s%.0d]", src, name, sh, rows, cols ? "," : "", cols);
        *fail = 1;
        return NULL;
    }
    uint64_t n = (uint64_t)rows * (uint64_t)(cols ? cols : 1);
    float *out = xmalloc(n * sizeof *out);
    char e2[512];
    if (llm_tensor_to_f32(t, out, n, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "%s: %s", src, e2);
        free(out);
        *fail = 1;
        return NULL;
    }
    return out;
}

static const llm_tensor *st_find_v(const void *f, const char *n) { return st_find(f, n); }
static const llm_tensor *gguf_find_v(const void *f, const char *n) { return gguf_find(f, n); }

/* Every tensor of m (its config set) from an open file, named by nm: the embedding, per block
 * the seven linear weights and the two norms, the final norm, lm_head when untied; the first
 * failure stops it. A linear weight is permuted to HF's row order (nm->meta_rope) and, with
 * int8, quantised as soon as it is read, so the peak memory stays one fp32 tensor over the
 * int8 model. 0, or -1 with the reason in err. */
static int load_tensors(llm_model *m, const void *file, find_fn find, const char *src, const tensor_names *nm, int int8,
                        char *err, size_t errlen) {
    const llm_config *c = &m->cfg;
    int fail = 0, C = c->dim;
    char name[256];
    m->embed = load_f32(file, find, src, nm->embed, c->vocab_size, C, err, errlen, &fail);
    for (int l = 0; l < c->n_layers && !fail; l++) {
        llm_layer *Y = &m->layers[l];
        for (int mod = 0; mod < LLM_N_MODS; mod++) {
            llm_weight *w = llm_layer_weight(Y, mod);
            llm_mod_shape(c, mod, &w->rows, &w->cols);
            snprintf(name, sizeof name, nm->layer, l, nm->mod[mod]);
            w->f = load_f32(file, find, src, name, w->rows, w->cols, err, errlen, &fail);
            if (!w->f) continue;
            if (nm->meta_rope && (mod == LLM_MOD_Q || mod == LLM_MOD_K))
                llm_permute_meta_to_hf(w->f, mod == LLM_MOD_Q ? c->n_heads : c->n_kv_heads, c->head_dim, C);
            if (int8) llm_weight_quantize(w);
        }
        snprintf(name, sizeof name, nm->layer, l, nm->attn_norm);
        Y->attn_norm = load_f32(file, find, src, name, C, 0, err, errlen, &fail);
        snprintf(name, sizeof name, nm->layer, l, nm->ffn_norm);
        Y->ffn_norm = load_f32(file, find, src, name, C, 0, err, errlen, &fail);
    }
    m->norm = load_f32(file, find, src, nm->norm, C, 0, err, errlen, &fail);
    if (!c->tie_embeddings) {
        float *cls = load_f32(file, find, src, nm->lm_head, c->vocab_size, C, err, errlen, &fail);
        m->lm_head = (llm_weight){.rows = c->vocab_size, .cols = C, .f = cls};
    }
    return fail ? -1 : 0;
}

/* The SentencePiece tokenizer.model at path into m->tok when the file exists (a checkpoint
 * need not carry one). 0, or -1 with the reason in err when it exists but does not load. */
static int tokenizer_model(llm_model *m, const char *path, char *err, size_t errlen) {
    if (access(path, F_OK) != 0) return 0;
    char e2[512];
    m->tok = tok_load(path, e2, sizeof e2);
    if (!m->tok) { snprintf(err, errlen, "%s", e2); return -1; }
    return 0;
}

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static llm_model *load_hf(const char *dir, const llm_load_opts *o, char *err, size_t errlen) {
    llm_config c;
    if (llm_config_load(dir, &c, err, errlen) != 0) return NULL;
    st_file *st = st_open(dir, err, errlen);
    if (!st) return NULL;
    llm_model *m = mdl_alloc(&c);
    int fail = load_tensors(m, st, st_find_v, dir, &HF_NAMES, o && o->int8, err, errlen) != 0;
    st_close(st);
    if (!fail) {
        char tp[4096];
        snprintf(tp, sizeof tp, "%s/tokenizer.model", dir);
        fail = tokenizer_model(m, tp, err, errlen) != 0;
    }
    if (fail) { llm_free(m); return NULL; }
    mdl_finish(m, o);
    return m;
}

static llm_model *load_gguf(const char *path, const llm_load_opts *o, char *err, size_t errlen) {
    gguf_file *g = gguf_open(path, err, errlen);
    if (!g) return NULL;
    const char *arch = gguf_get_str(g, "general.architecture");
    if (!arch || strcmp(arch, "llama") != 0) {
        snprintf(err, errlen, "%s: general.architecture is %s, only llama is supported", path, arch ? arch : "missing");
        gguf_close(g);
        return NULL;
    }
    int64_t v;
    double d;
    llm_config c = {.norm_eps = 1e-5f, .rope_theta = 10000.0f, .bos_id = -1, .eos_id = -1, .max_seq_len = 2048};
    int fail = 0;
#define GI(key, field, req) if (gguf_get_int(g, key, &v)) c.field = (int)v; else if (req) { snprintf(err, errlen, "%s: metadata %s is missing", path, key); fail = 1; }
    GI("llama.embedding_length", dim, 1);
    GI("llama.feed_forward_length", hidden_dim, 1);
    GI("llama.block_count", n_layers, 1);
    GI("llama.attention.head_count", n_heads, 1);
    GI("llama.context_length", max_seq_len, 0);
    GI("tokenizer.ggml.bos_token_id", bos_id, 0);
    GI("tokenizer.ggml.eos_token_id", eos_id, 0);
    c.n_kv_heads = c.n_heads;
    GI("llama.attention.head_count_kv", n_kv_heads, 0);
#undef GI
    if (gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &d)) c.norm_eps = (float)d;
    if (gguf_get_float(g, "llama.rope.freq_base", &d)) c.rope_theta = (float)d;
    const llm_tensor *emb = gguf_find(g, "token_embd.weight");
    if (!fail && (!emb || emb->ndim != 2)) { snprintf(err, errlen, "%s: tensor token_embd.weight is missing", path); fail = 1; }
    if (!fail) {
        c.vocab_size = (int)emb->shape[0];
        c.head_dim = c.n_heads > 0 ? c.dim / c.n_heads : 0;
        if (gguf_get_int(g, "llama.rope.dimension_count", &v) && v != c.head_dim) {
            snprintf(err, errlen, "%s: partial rotary embeddings are not supported", path);
            fail = 1;
        }
    }
    if (!fail && llm_config_check(&c, err, errlen) != 0) fail = 1;
    if (fail) { gguf_close(g); return NULL; }
    c.tie_embeddings = gguf_find(g, "output.weight") == NULL;
    llm_model *m = mdl_alloc(&c);
    fail = load_tensors(m, g, gguf_find_v, path, &GGUF_NAMES, o && o->int8, err, errlen) != 0;
    /* The tokenizer: the file's own metadata when it has some (tokenizer.ggml.model "gpt2":
     * byte-level BPE, as SmolLM2's), else a tokenizer.model beside the file. */
    if (!fail && gguf_get_str(g, "tokenizer.ggml.model") && strcmp(gguf_get_str(g, "tokenizer.ggml.model"), "llama") != 0) {
        char e2[512];
        m->tok = tok_load_gguf(g, path, e2, sizeof e2);
        if (!m->tok) { snprintf(err, errlen, "%s", e2); fail = 1; }
    }
    gguf_close(g);
    if (!fail && !m->tok) { /* tokenizer.model beside the file, when there is one */
        char tp[4096];
        snprintf(tp, sizeof tp, "%s", path);
        char *slash = strrchr(tp, '/');
        if (slash) snprintf(slash + 1, sizeof tp - (size_t)(slash + 1 - tp), "tokenizer.model");
        else snprintf(tp, sizeof tp, "tokenizer.model");
        fail = tokenizer_model(m, tp, err, errlen) != 0;
    }
    if (fail) { llm_free(m); return NULL; }
    mdl_finish(m, o);
    return m;
}

/* ---------------------------------------------------------------- llm_load */

/* The kind of path: a directory is a Hugging Face checkpoint, the magic tells GGUF, the
 * .bin suffix llama2.c's (which has no magic). */
static llm_model *load_base(const char *path, const llm_load_opts *o, char *err, size_t errlen) {
    struct stat sb;
    if (stat(path, &sb) != 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
    if (S_ISDIR(sb.st_mode)) return load_hf(path, o, err, errlen);
    char magic[4] = {0};
    FILE *fp = fopen(path, "rb");
    if (!fp) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
    size_t got = fread(magic, 1, 4, fp);
    fclose(fp);
    if (got == 4 && memcmp(magic, "GGUF", 4) == 0) return load_gguf(path, o, err, errlen);
    if (has_suffix(path, ".gguf")) { snprintf(err, errlen, "%s: not a GGUF file (bad magic)", path); return NULL; }
    if (has_suffix(path, ".bin")) return llm_load_llama2c(path, o, err, errlen);
    snprintf(err, errlen, "%s: not a model directory, .gguf file or llama2.c .bin checkpoint", path);
    return NULL;
}

/* load_base, then the adapter: attached for on-the-fly products, or merged into the fp32
 * weights (quantised after the merge when int8). */
static llm_model *load_host(const char *path, const llm_load_opts *o, char *err, size_t errlen) {
    if (!o || !o->adapter) return load_base(path, o, err, errlen);
    llm_load_opts o2 = *o;
    o2.adapter = NULL;
    if (o->merge) o2.int8 = 0; /* merge into fp32, then quantise */
    llm_model *m = load_base(path, &o2, err, errlen);
    if (!m) return NULL;
    char e2[1024];
    llm_lora *a = llm_lora_load(o->adapter, &m->cfg, e2, sizeof e2);
    if (!a) { snprintf(err, errlen, "%s", e2); llm_free(m); return NULL; }
    if (llm_set_adapter(m, a, e2, sizeof e2) != 0) {
        snprintf(err, errlen, "%s: %s", o->adapter, e2);
        llm_lora_free(a);
        llm_free(m);
        return NULL;
    }
    if (o->merge) {
        for (int l = 0; l < m->cfg.n_layers; l++)
            for (int mod = 0; mod < LLM_N_MODS; mod++) {
                llm_weight *w = llm_layer_weight(&m->layers[l], mod);
                llm_lora_merge_weight(a, l, mod, w);
                if (o->int8) llm_weight_quantize(w);
            }
        if (o->int8) m->int8 = 1;
        llm_set_adapter(m, NULL, e2, sizeof e2);
    }
    return m;
}

llm_model *llm_load(const char *path, const llm_load_opts *o, char *err, size_t errlen) {
    const llm_backend *be = llm_backend_named(o ? o->device : NULL, err, errlen); /* before reading any weight */
    if (!be) return NULL;
    llm_model *m = load_host(path, o, err, errlen);
    if (m && llm_model_to_backend(m, be, err, errlen) != 0) {
        llm_free(m);
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------- random weights */

llm_model *llm_init_random_on(const llm_config *c, const llm_backend *be, int int8, float std, uint64_t seed, char *err,
                              size_t errlen) {
    if (!be->device || !be->randomize) {
        snprintf(err, errlen, "backend %s cannot make random weights in its own memory", be->name);
        return NULL;
    }
    if (llm_config_check(c, err, errlen) != 0) return NULL;
    llm_model *m = mdl_alloc(c);
    m->be = be;
    size_t C = (size_t)c->dim, V = (size_t)c->vocab_size;
    uint64_t stream = seed * 1000003u;
    float *ones = xmalloc(C * sizeof *ones);
    for (size_t i = 0; i < C; i++) ones[i] = 1.0f;
    m->embed = be->alloc(V * C * sizeof(float));
    be->randomize(m->embed, V * C, 4, std, stream++);
    for (int l = 0; l < c->n_layers; l++) {
        llm_layer *Y = &m->layers[l];
        for (int mod = 0; mod < LLM_N_MODS; mod++) {
            llm_weight *w = llm_layer_weight(Y, mod);
            llm_mod_shape(c, mod, &w->rows, &w->cols);
            size_t n = (size_t)w->rows * w->cols;
            if (int8) {
                w->q = be->alloc(n);
                be->randomize(w->q, n, 1, 0, stream++);
                w->scale = be->alloc((size_t)w->rows * sizeof(float));
                float *sc = xmalloc((size_t)w->rows * sizeof *sc);
                for (int r = 0; r < w->rows; r++) sc[r] = std / 127.0f;
                be->upload(w->scale, sc, (size_t)w->rows * sizeof *sc);
                free(sc);
            } else {
                w->f = be->alloc(n * sizeof(float));
                be->randomize(w->f, n, 4, std, stream++);
            }
        }
        Y->attn_norm = be->alloc(C * sizeof(float));
        Y->ffn_norm = be->alloc(C * sizeof(float));
        be->upload(Y->attn_norm, ones, C * sizeof(float));
        be->upload(Y->ffn_norm, ones, C * sizeof(float));
    }
    m->norm = be->alloc(C * sizeof(float));
    be->upload(m->norm, ones, C * sizeof(float));
    free(ones);
    if (c->tie_embeddings) m->lm_head = (llm_weight){.rows = (int)V, .cols = (int)C, .f = m->embed};
    else {
        m->lm_head = (llm_weight){.rows = (int)V, .cols = (int)C, .f = be->alloc(V * C * sizeof(float))};
        be->randomize(m->lm_head.f, V * C, 4, std, stream++);
    }
    m->int8 = int8;
    m->threads = 1;
    return m;
}

llm_model *llm_init_random(const llm_config *c, float std, uint64_t seed, int threads) {
    llm_model *m = mdl_alloc(c);
    size_t C = (size_t)c->dim, V = (size_t)c->vocab_size;
    uint64_t stream = 0;
    rng_t g;
#define FILL(p, n) do { rng_init(&g, seed, stream++); for (size_t i_ = 0; i_ < (n); i_++) (p)[i_] = (float)(std * rng_normal(&g)); } while (0)
    m->embed = xmalloc(V * C * sizeof(float));
    FILL(m->embed, V * C);
    for (int l = 0; l < c->n_layers; l++) {
        llm_layer *Y = &m->layers[l];
        for (int mod = 0; mod < LLM_N_MODS; mod++) {
            llm_weight *w = llm_layer_weight(Y, mod);
            llm_mod_shape(c, mod, &w->rows, &w->cols);
            w->f = xmalloc((size_t)w->rows * w->cols * sizeof(float));
            FILL(w->f, (size_t)w->rows * w->cols);
        }
        Y->attn_norm = xmalloc(C * sizeof(float));
        Y->ffn_norm = xmalloc(C * sizeof(float));
        for (size_t i = 0; i < C; i++) Y->attn_norm[i] = Y->ffn_norm[i] = 1.0f;
    }
    m->norm = xmalloc(C * sizeof(float));
    for (size_t i = 0; i < C; i++) m->norm[i] = 1.0f;
    if (!c->tie_embeddings) {
        m->lm_head = (llm_weight){.rows = (int)V, .cols = (int)C, .f = xmalloc(V * C * sizeof(float))};
        FILL(m->lm_head.f, V * C);
    }
#undef FILL
    llm_load_opts o = {.threads = threads};
    mdl_finish(m, &o);
    return m;
}

/* ---------------------------------------------------------------- saving */

int llm_save_hf(const llm_model *m, const char *dir, char *err, size_t errlen) {
    const llm_config *c = &m->cfg;
    if (m->be->device) {
        snprintf(err, errlen, "%s: cannot save a model held on the %s device", dir, m->be->name);
        return -1;
    }
    char path[4096];
    int L = c->n_layers, n = 0, cap = 9 * L + 3;
    llm_tensor *ts = xcalloc((size_t)cap, sizeof *ts);
    char **names = xcalloc((size_t)cap, sizeof *names);
#define ADD(nm, ptr, r, k) do { names[n] = xstrdup(nm); ts[n] = (llm_tensor){.name = names[n], .dtype = LLM_F32, \
        .ndim = (k) ? 2 : 1, .shape = {(r), (k)}, .data = (ptr), .nbytes = (size_t)(r) * ((k) ? (size_t)(k) : 1) * 4}; n++; } while (0)
    const tensor_names *tn = &HF_NAMES;
    ADD(tn->embed, m->embed, c->vocab_size, c->dim);
    int bad = 0;
    for (int l = 0; l < L; l++) {
        llm_layer *Y = &m->layers[l];
        char nm[256];
        snprintf(nm, sizeof nm, tn->layer, l, tn->attn_norm);
        ADD(nm, Y->attn_norm, c->dim, 0);
        for (int mod = 0; mod < LLM_N_MODS; mod++) {
            const llm_weight *w = llm_layer_weight(Y, mod);
            if (!w->f) bad = 1;
            snprintf(nm, sizeof nm, tn->layer, l, tn->mod[mod]);
            ADD(nm, w->f, w->rows, w->cols);
        }
        snprintf(nm, sizeof nm, tn->layer, l, tn->ffn_norm);
        ADD(nm, Y->ffn_norm, c->dim, 0);
    }
    ADD(tn->norm, m->norm, c->dim, 0);
    if (m->lm_head.f != m->embed) ADD(tn->lm_head, m->lm_head.f, c->vocab_size, c->dim);
#undef ADD
    int rc = -1;
    const char *meta[] = {"format", "pt"};
    if (bad) snprintf(err, errlen, "%s: cannot save int8 weights as a Hugging Face checkpoint", dir);
    else {
        snprintf(path, sizeof path, "%s/config.json", dir);
        llm_config c2 = *c;
        c2.tie_embeddings = m->lm_head.f == m->embed;
        if (llm_config_save(path, &c2, err, errlen) == 0) {
            snprintf(path, sizeof path, "%s/model.safetensors", dir);
            rc = st_write(path, ts, n, meta, 1, err, errlen);
        }
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    free(ts);
    return rc;
}
