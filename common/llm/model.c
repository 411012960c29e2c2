/* model.c - LLaMA weights, loaders and the forward pass (llama2.c style, batched). */
#include "llm/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/err.h"
#include "io/rng.h"
#include "llm/backend_cuda.h"
#include "llm/gguf.h"
#include "llm/lora.h"
#include "llm/safetensors.h"

/* ---------------------------------------------------------------- weights */

void llm_weight_quantize(llm_weight *w) {
    if (!w->f) return;
    size_t R = (size_t)w->rows, K = (size_t)w->cols;
    w->q = xmalloc(R * K);
    w->scale = xmalloc(R * sizeof *w->scale);
    for (size_t r = 0; r < R; r++) {
        const float *row = w->f + r * K;
        float amax = 0;
        for (size_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(row[k]));
        float s = amax / 127.0f, inv = s > 0 ? 1.0f / s : 0;
        w->scale[r] = s;
        for (size_t k = 0; k < K; k++) w->q[r * K + k] = (int8_t)lrintf(row[k] * inv);
    }
    free(w->f);
    w->f = NULL;
}

void llm_permute_meta_to_hf(float *w, int n_heads, int head_dim, int cols) {
    size_t rowb = (size_t)cols * sizeof *w;
    float *tmp = xmalloc((size_t)head_dim * rowb);
    for (int h = 0; h < n_heads; h++) {
        float *base = w + (size_t)h * head_dim * cols;
        for (int j = 0; j < head_dim / 2; j++) {
            memcpy(tmp + (size_t)j * cols, base + (size_t)(2 * j) * cols, rowb);
            memcpy(tmp + (size_t)(head_dim / 2 + j) * cols, base + (size_t)(2 * j + 1) * cols, rowb);
        }
        memcpy(base, tmp, (size_t)head_dim * rowb);
    }
    free(tmp);
}

static void workspace_free(const llm_model *m, llm_workspace *w);
static void lora_dev_free(llm_model *m);
static void dstep_drop_all(llm_model *m);
static void dstep_free(llm_model *m);

/* Free a tensor of the model: host memory, or the backend's on a device backend. */
static void mfree(const llm_model *m, void *p) {
    if (m->be->device) m->be->free(p);
    else free(p);
}

static void weight_free(const llm_model *m, llm_weight *w) {
    if (w->dev && m->be->weight_release) m->be->weight_release(w); /* cpu-bf16's blocked copy */
    llm_cpu_weight_release(w);                                     /* the CPU's packed copy */
    mfree(m, w->f);
    mfree(m, w->q);
    mfree(m, w->scale);
    memset(w, 0, sizeof *w);
}

static llm_model *model_alloc(const llm_config *c) {
    llm_model *m = xcalloc(1, sizeof *m);
    m->cfg = *c;
    m->be = llm_backend_cpu();
    m->layers = xcalloc((size_t)c->n_layers, sizeof *m->layers);
    return m;
}

/* After loading: tie lm_head, quantise, set threads. */
static void model_finish(llm_model *m, const llm_load_opts *o) {
    if (!m->lm_head.f) {
        m->lm_head = (llm_weight){.rows = m->cfg.vocab_size, .cols = m->cfg.dim, .f = m->embed};
        m->cfg.tie_embeddings = 1;
    }
    if (o && o->int8) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            llm_layer *L = &m->layers[l];
            llm_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (int i = 0; i < 7; i++) llm_weight_quantize(ws[i]);
        }
        m->int8 = 1; /* embeddings, norms and lm_head stay fp32 (as LLM.int8 leaves them) */
    }
    llm_set_threads(m, o && o->threads > 0 ? o->threads : 0);
}

void llm_set_threads(llm_model *m, int n) {
    if (n <= 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)c : 1;
    }
    m->threads = n;
    m->be->set_threads(n);
}

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
    llm_model *m = model_alloc(&c);
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
    model_finish(m, o);
    return m;
}

/* ---------------------------------------------------------------- tensor files */

typedef const llm_tensor *(*find_fn)(const void *file, const char *name);

/* Read tensor `name` of shape (rows, cols) (cols = 0: a vector of rows) as fp32. */
static float *load_f32(const void *file, find_fn find, const char *src, const char *name, int rows, int cols,
                       int required, char *err, size_t errlen, int *fail) {
    if (*fail) return NULL;
    const llm_tensor *t = find(file, name);
    if (!t) {
        if (required) { snprintf(err, errlen, "%s: tensor %s is missing", src, name); *fail = 1; }
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

static llm_weight load_w(const void *file, find_fn find, const char *src, const char *name, int rows, int cols,
                         int int8, char *err, size_t errlen, int *fail) {
    llm_weight w = {.rows = rows, .cols = cols};
    w.f = load_f32(file, find, src, name, rows, cols, 1, err, errlen, fail);
    if (w.f && int8) llm_weight_quantize(&w); /* quantise as we go: peak memory stays one fp32 tensor */
    return w;
}

static const llm_tensor *st_find_v(const void *f, const char *n) { return st_find(f, n); }
static const llm_tensor *gguf_find_v(const void *f, const char *n) { return gguf_find(f, n); }

static int has_suffix(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static llm_model *load_hf(const char *dir, const llm_load_opts *o, char *err, size_t errlen) {
    llm_config c;
    if (llm_config_load(dir, &c, err, errlen) != 0) return NULL;
    st_file *st = st_open(dir, err, errlen);
    if (!st) return NULL;
    llm_model *m = model_alloc(&c);
    int fail = 0, q8 = o && o->int8, C = c.dim, H = c.hidden_dim, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    char nm[256];
    m->embed = load_f32(st, st_find_v, dir, "model.embed_tokens.weight", c.vocab_size, C, 1, err, errlen, &fail);
    for (int l = 0; l < c.n_layers && !fail; l++) {
        llm_layer *Y = &m->layers[l];
#define W(field, sub, r, k) snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, sub); \
        Y->field = load_w(st, st_find_v, dir, nm, r, k, q8, err, errlen, &fail)
        W(wq, "self_attn.q_proj", qd, C);
        W(wk, "self_attn.k_proj", kvd, C);
        W(wv, "self_attn.v_proj", kvd, C);
        W(wo, "self_attn.o_proj", C, qd);
        W(w_gate, "mlp.gate_proj", H, C);
        W(w_up, "mlp.up_proj", H, C);
        W(w_down, "mlp.down_proj", C, H);
#undef W
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        Y->attn_norm = load_f32(st, st_find_v, dir, nm, C, 0, 1, err, errlen, &fail);
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        Y->ffn_norm = load_f32(st, st_find_v, dir, nm, C, 0, 1, err, errlen, &fail);
    }
    m->norm = load_f32(st, st_find_v, dir, "model.norm.weight", C, 0, 1, err, errlen, &fail);
    if (!c.tie_embeddings) {
        float *cls = load_f32(st, st_find_v, dir, "lm_head.weight", c.vocab_size, C, 1, err, errlen, &fail);
        m->lm_head = (llm_weight){.rows = c.vocab_size, .cols = C, .f = cls};
    }
    st_close(st);
    if (!fail) {
        char tp[4096];
        snprintf(tp, sizeof tp, "%s/tokenizer.model", dir);
        if (access(tp, F_OK) == 0) {
            char e2[512];
            m->tok = tok_load(tp, e2, sizeof e2);
            if (!m->tok) { snprintf(err, errlen, "%s", e2); fail = 1; }
        }
    }
    if (fail) { llm_free(m); return NULL; }
    model_finish(m, o);
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
    llm_model *m = model_alloc(&c);
    int q8 = o && o->int8, C = c.dim, H = c.hidden_dim, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    char nm[256];
    m->embed = load_f32(g, gguf_find_v, path, "token_embd.weight", c.vocab_size, C, 1, err, errlen, &fail);
    for (int l = 0; l < c.n_layers && !fail; l++) {
        llm_layer *Y = &m->layers[l];
#define W(field, sub, r, k) snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, sub); \
        Y->field = load_w(g, gguf_find_v, path, nm, r, k, 0, err, errlen, &fail)
        W(wq, "attn_q", qd, C);
        W(wk, "attn_k", kvd, C);
        W(wv, "attn_v", kvd, C);
        W(wo, "attn_output", C, qd);
        W(w_gate, "ffn_gate", H, C);
        W(w_up, "ffn_up", H, C);
        W(w_down, "ffn_down", C, H);
#undef W
        snprintf(nm, sizeof nm, "blk.%d.attn_norm.weight", l);
        Y->attn_norm = load_f32(g, gguf_find_v, path, nm, C, 0, 1, err, errlen, &fail);
        snprintf(nm, sizeof nm, "blk.%d.ffn_norm.weight", l);
        Y->ffn_norm = load_f32(g, gguf_find_v, path, nm, C, 0, 1, err, errlen, &fail);
        if (!fail) { /* GGUF keeps Meta's interleaved RoPE rows */
            llm_permute_meta_to_hf(Y->wq.f, c.n_heads, c.head_dim, C);
            llm_permute_meta_to_hf(Y->wk.f, c.n_kv_heads, c.head_dim, C);
            if (q8) {
                llm_weight *ws[] = {&Y->wq, &Y->wk, &Y->wv, &Y->wo, &Y->w_gate, &Y->w_up, &Y->w_down};
                for (int i = 0; i < 7; i++) llm_weight_quantize(ws[i]);
            }
        }
    }
    m->norm = load_f32(g, gguf_find_v, path, "output_norm.weight", C, 0, 1, err, errlen, &fail);
    if (!c.tie_embeddings) {
        float *cls = load_f32(g, gguf_find_v, path, "output.weight", c.vocab_size, C, 1, err, errlen, &fail);
        m->lm_head = (llm_weight){.rows = c.vocab_size, .cols = C, .f = cls};
    }
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
        if (access(tp, F_OK) == 0) {
            char e2[512];
            m->tok = tok_load(tp, e2, sizeof e2);
            if (!m->tok) { snprintf(err, errlen, "%s", e2); fail = 1; }
        }
    }
    if (fail) { llm_free(m); return NULL; }
    /* Already quantised per layer above; model_finish only ties and sets threads. */
    llm_load_opts o2 = o ? *o : (llm_load_opts){0};
    o2.int8 = 0;
    model_finish(m, &o2);
    m->int8 = q8;
    return m;
}

static llm_model *load_base(const char *path, const llm_load_opts *o, char *err, size_t errlen);

llm_weight *llm_layer_weight(llm_layer *Y, int mod) {
    llm_weight *ws[] = {&Y->wq, &Y->wk, &Y->wv, &Y->wo, &Y->w_gate, &Y->w_up, &Y->w_down};
    return mod >= 0 && mod < LLM_N_MODS ? ws[mod] : NULL;
}

int llm_set_adapter(llm_model *m, llm_lora *a, char *err, size_t errlen) {
    if (a) {
        if (a->n_layers != m->cfg.n_layers) {
            snprintf(err, errlen, "adapter has %d layers, the model %d", a->n_layers, m->cfg.n_layers);
            return -1;
        }
        for (int l = 0; l < a->n_layers; l++)
            for (int mod = 0; mod < LLM_N_MODS; mod++) {
                const llm_weight *w = llm_layer_weight(&m->layers[l], mod);
                const llm_lora_ab *p = llm_lora_at(a, l, mod);
                if (p->A && (p->in != w->cols || p->out != w->rows)) {
                    snprintf(err, errlen, "adapter layer %d %s is (%d, %d), the model's weight (%d, %d)", l,
                             llm_mod_name(mod), p->out, p->in, w->rows, w->cols);
                    return -1;
                }
            }
    }
    dstep_drop_all(m); /* graphs recorded the old adapter's products */
    lora_dev_free(m);
    if (m->lora && m->lora != a) llm_lora_free(m->lora);
    m->lora = a;
    if (a && m->be->device) { /* device copies of A and B for the on-the-fly products */
        const llm_backend *be = m->be;
        size_t n = (size_t)a->n_layers * LLM_N_MODS;
        m->lora_dev = xcalloc(2 * n, sizeof *m->lora_dev);
        for (size_t i = 0; i < n; i++) {
            const llm_lora_ab *p = &a->ab[i];
            if (!p->A) continue;
            size_t na = (size_t)a->r * p->in * sizeof(float), nb = (size_t)p->out * a->r * sizeof(float);
            m->lora_dev[2 * i] = be->alloc(na);
            m->lora_dev[2 * i + 1] = be->alloc(nb);
            be->upload(m->lora_dev[2 * i], p->A, na);
            be->upload(m->lora_dev[2 * i + 1], p->B, nb);
        }
    }
    return 0;
}

static void lora_dev_free(llm_model *m) {
    if (m->lora_dev && m->lora)
        for (size_t i = 0; i < 2 * (size_t)m->lora->n_layers * LLM_N_MODS; i++) m->be->free(m->lora_dev[i]);
    free(m->lora_dev);
    m->lora_dev = NULL;
    if (m->lora_scratch_dev) m->be->free(m->lora_scratch_dev);
    m->lora_scratch_dev = NULL;
    m->lora_scratch_dev_cap = 0;
}

/* ---------------------------------------------------------------- backends */

const llm_backend *llm_backend_named(const char *name, char *err, size_t errlen) {
    if (!name || strcmp(name, "cpu") == 0) return llm_backend_cpu();
    if (strcmp(name, "cpu-bf16") == 0) {
        char e2[512];
        const llm_backend *be = llm_backend_cpu_bf16(e2, sizeof e2);
        if (!be) snprintf(err, errlen, "%s", e2);
        return be;
    }
    if (strcmp(name, "cuda") == 0) {
        char e2[512];
        const llm_backend *be = llm_backend_cuda(e2, sizeof e2);
        if (!be) snprintf(err, errlen, "--device cuda: %s", e2);
        return be;
    }
    snprintf(err, errlen, "unknown device '%s' (expected cpu, cpu-bf16 or cuda)", name);
    return NULL;
}

/* A host array of n bytes into backend memory (the host copy is freed). */
static void *to_dev(const llm_backend *be, void *h, size_t n) {
    if (!h) return NULL;
    void *d = be->alloc(n);
    be->upload(d, h, n);
    free(h);
    return d;
}

static void weight_to_dev(const llm_backend *be, llm_weight *w) {
    size_t n = (size_t)w->rows * w->cols;
    w->f = to_dev(be, w->f, n * sizeof(float));
    w->q = to_dev(be, w->q, n);
    w->scale = to_dev(be, w->scale, (size_t)w->rows * sizeof(float));
}

int llm_model_to_backend(llm_model *m, const llm_backend *be, char *err, size_t errlen) {
    if (m->be == be) return 0;
    if (!be->device) { /* a host model onto another host backend (cpu-bf16): same memory */
        if (!m->be->device) { m->be = be; llm_set_threads(m, m->threads); }
        return 0;
    }
    if (m->be->device) { snprintf(err, errlen, "the model is already on the %s device", m->be->name); return -1; }
    size_t C = (size_t)m->cfg.dim, V = (size_t)m->cfg.vocab_size;
    workspace_free(m, m->ws);
    m->ws = NULL;
    int tied = m->lm_head.f == m->embed;
    llm_cpu_weight_release(&m->lm_head); /* host copies the device never reads */
    for (int l = 0; l < m->cfg.n_layers; l++) {
        llm_layer *Y = &m->layers[l];
        for (int mod = 0; mod < LLM_N_MODS; mod++) {
            llm_cpu_weight_release(llm_layer_weight(Y, mod));
            weight_to_dev(be, llm_layer_weight(Y, mod));
        }
        Y->attn_norm = to_dev(be, Y->attn_norm, C * sizeof(float));
        Y->ffn_norm = to_dev(be, Y->ffn_norm, C * sizeof(float));
    }
    m->embed = to_dev(be, m->embed, V * C * sizeof(float));
    m->norm = to_dev(be, m->norm, C * sizeof(float));
    if (tied) m->lm_head.f = m->embed;
    else weight_to_dev(be, &m->lm_head);
    m->be = be;
    llm_set_threads(m, m->threads);
    if (m->lora) { /* make the device copies of an attached adapter */
        llm_lora *a = m->lora;
        m->lora = NULL;
        if (llm_set_adapter(m, a, err, errlen) != 0) return -1;
    }
    return 0;
}

static llm_model *load_host(const char *path, const llm_load_opts *o, char *err, size_t errlen);

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

llm_model *llm_init_random_on(const llm_config *c, const llm_backend *be, int int8, float std, uint64_t seed, char *err,
                              size_t errlen) {
    if (!be->device || !be->randomize) {
        snprintf(err, errlen, "backend %s cannot make random weights in its own memory", be->name);
        return NULL;
    }
    if (llm_config_check(c, err, errlen) != 0) return NULL;
    llm_model *m = model_alloc(c);
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
    llm_model *m = model_alloc(c);
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
    model_finish(m, &o);
    return m;
}

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

void llm_free(llm_model *m) {
    if (!m) return;
    dstep_free(m);
    for (int l = 0; m->layers && l < m->cfg.n_layers; l++) {
        llm_layer *Y = &m->layers[l];
        llm_weight *ws[] = {&Y->wq, &Y->wk, &Y->wv, &Y->wo, &Y->w_gate, &Y->w_up, &Y->w_down};
        for (int i = 0; i < 7; i++) weight_free(m, ws[i]);
        mfree(m, Y->attn_norm);
        mfree(m, Y->ffn_norm);
    }
    free(m->layers);
    if (m->lm_head.f == m->embed) m->lm_head.f = NULL;
    weight_free(m, &m->lm_head);
    mfree(m, m->embed);
    mfree(m, m->norm);
    if (m->tok) tok_free(m->tok);
    lora_dev_free(m);
    llm_lora_free(m->lora);
    workspace_free(m, m->ws);
    free(m);
}

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
    ADD("model.embed_tokens.weight", m->embed, c->vocab_size, c->dim);
    int bad = 0;
    for (int l = 0; l < L; l++) {
        const llm_layer *Y = &m->layers[l];
        char nm[256];
        struct { const char *sub; const llm_weight *w; } lin[] = {
            {"self_attn.q_proj", &Y->wq}, {"self_attn.k_proj", &Y->wk}, {"self_attn.v_proj", &Y->wv},
            {"self_attn.o_proj", &Y->wo}, {"mlp.gate_proj", &Y->w_gate}, {"mlp.up_proj", &Y->w_up},
            {"mlp.down_proj", &Y->w_down}};
        snprintf(nm, sizeof nm, "model.layers.%d.input_layernorm.weight", l);
        ADD(nm, Y->attn_norm, c->dim, 0);
        for (int i = 0; i < 7; i++) {
            if (!lin[i].w->f) bad = 1;
            snprintf(nm, sizeof nm, "model.layers.%d.%s.weight", l, lin[i].sub);
            ADD(nm, lin[i].w->f, lin[i].w->rows, lin[i].w->cols);
        }
        snprintf(nm, sizeof nm, "model.layers.%d.post_attention_layernorm.weight", l);
        ADD(nm, Y->ffn_norm, c->dim, 0);
    }
    ADD("model.norm.weight", m->norm, c->dim, 0);
    if (m->lm_head.f != m->embed) ADD("lm_head.weight", m->lm_head.f, c->vocab_size, c->dim);
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

/* ---------------------------------------------------------------- sequences */

struct llm_seq {
    llm_model *m;
    llm_seq *parent; /* positions [0, start) are the parent's (and its ancestors') */
    int start;
    int n, cap;      /* own positions */
    void **k, **v;   /* per layer: (cap, kv_dim) activations (bf16 on CUDA: half the bytes) */
    float *logits;   /* (V) after the last position, or NULL */
    int refs;
};

llm_seq *llm_seq_new(llm_model *m) {
    llm_seq *s = xcalloc(1, sizeof *s);
    s->m = m;
    s->refs = 1;
    s->k = xcalloc((size_t)m->cfg.n_layers, sizeof *s->k);
    s->v = xcalloc((size_t)m->cfg.n_layers, sizeof *s->v);
    return s;
}

llm_seq *llm_seq_fork(llm_seq *parent) {
    llm_seq *s = llm_seq_new(parent->m);
    s->parent = parent;
    parent->refs++;
    s->start = parent->start + parent->n;
    if (parent->logits) {
        s->logits = xmalloc((size_t)parent->m->cfg.vocab_size * sizeof *s->logits);
        memcpy(s->logits, parent->logits, (size_t)parent->m->cfg.vocab_size * sizeof *s->logits);
    }
    return s;
}

void llm_seq_free(llm_seq *s) {
    while (s && --s->refs == 0) {
        llm_seq *p = s->parent;
        for (int l = 0; l < s->m->cfg.n_layers; l++) { mfree(s->m, s->k[l]); mfree(s->m, s->v[l]); }
        free(s->k);
        free(s->v);
        free(s->logits);
        free(s);
        s = p;
    }
}

int llm_seq_len(const llm_seq *s) { return s->start + s->n; }
const float *llm_seq_logits(const llm_seq *s) { return s->logits; }

/* Reallocate the own cache of s to cap positions (cap > s->cap), keeping those held. */
static void seq_realloc(llm_seq *s, int cap) {
    size_t kvd = (size_t)s->m->cfg.n_kv_heads * s->m->cfg.head_dim;
    const llm_backend *be = s->m->be;
    size_t row = llm_act_nbytes(be, kvd); /* one position of one layer's keys (or values) */
    for (int l = 0; l < s->m->cfg.n_layers; l++) {
        if (be->device) { /* no realloc in device memory: allocate, copy the positions held, free */
            void *k = be->alloc((size_t)cap * row), *v = be->alloc((size_t)cap * row);
            if (s->n) {
                be->copy(k, s->k[l], (size_t)s->n * row);
                be->copy(v, s->v[l], (size_t)s->n * row);
            }
            be->free(s->k[l]), be->free(s->v[l]);
            s->k[l] = k, s->v[l] = v;
            continue;
        }
        s->k[l] = xrealloc(s->k[l], (size_t)cap * row);
        s->v[l] = xrealloc(s->v[l], (size_t)cap * row);
    }
    s->cap = cap;
}

static void seq_reserve(llm_seq *s, int need) {
    if (need <= s->cap) return;
    int cap = s->cap ? s->cap : 16;
    while (cap < need) cap *= 2;
    seq_realloc(s, cap);
}

void llm_seq_reserve(llm_seq *s, int total) {
    int need = total - s->start;
    if (need > s->cap) seq_realloc(s, need);
}

/* Spans of layer l covering positions [0, limit) of s: ancestors first. */
static int seq_spans(const llm_seq *s, int l, int limit, llm_kv_span *out, int n) {
    if (s->parent) n = seq_spans(s->parent, l, s->start < limit ? s->start : limit, out, n);
    int own = limit - s->start;
    if (own > s->n) own = s->n;
    if (own > 0) out[n++] = (llm_kv_span){s->k[l], s->v[l], own};
    return n;
}

static int seq_depth(const llm_seq *s) { return s->parent ? 1 + seq_depth(s->parent) : 1; }

/* ---------------------------------------------------------------- forward */

struct llm_workspace {
    size_t cap_T, cap_R;
    float *x;                                 /* per token: the residual stream, fp32 (T,C) */
    llm_act xb, q, k, v, att, h1, h3;         /* per token: activations */
    int *tok, *pos;
    float *xs, *logits;                       /* per logits row: residual rows (R,C), logits (R,V) fp32 */
    llm_act xsn;                              /* per logits row: the final norm's output (R,C) */
    /* host copies on a device backend (else the same pointers as above) */
    int *tok_h, *pos_h;
    float *logits_h;
};

static void workspace_free(const llm_model *m, llm_workspace *w) {
    if (!w) return;
    mfree(m, w->x), mfree(m, w->xb), mfree(m, w->q), mfree(m, w->k), mfree(m, w->v), mfree(m, w->att);
    mfree(m, w->h1), mfree(m, w->h3), mfree(m, w->tok), mfree(m, w->pos), mfree(m, w->xs), mfree(m, w->logits);
    mfree(m, w->xsn);
    if (m->be->device) free(w->tok_h), free(w->pos_h), free(w->logits_h);
    free(w);
}

/* Grow a workspace buffer (contents not kept): host realloc, or the backend's memory. */
static void *ws_grow(const llm_model *m, void *p, size_t bytes) {
    if (!m->be->device) return xrealloc(p, bytes);
    m->be->free(p);
    return m->be->alloc(bytes);
}

/* The workspace *pw (created on first use) with room for T token rows and R logits rows. */
static llm_workspace *ws_get_in(llm_model *m, llm_workspace **pw, size_t T, size_t R) {
    if (!*pw) *pw = xcalloc(1, sizeof **pw);
    llm_workspace *w = *pw;
    const llm_config *c = &m->cfg;
    size_t C = (size_t)c->dim, qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim,
           H = (size_t)c->hidden_dim;
    int dev = m->be->device;
    size_t ab = (size_t)m->be->act_bytes;
    if (T > w->cap_T) {
        w->cap_T = T;
        w->x = ws_grow(m, w->x, T * C * 4), w->xb = ws_grow(m, w->xb, T * (C > qd ? C : qd) * ab);
        w->q = ws_grow(m, w->q, T * qd * ab), w->att = ws_grow(m, w->att, T * qd * ab);
        w->k = ws_grow(m, w->k, T * kvd * ab), w->v = ws_grow(m, w->v, T * kvd * ab);
        w->h1 = ws_grow(m, w->h1, T * H * ab), w->h3 = ws_grow(m, w->h3, T * H * ab);
        w->tok = ws_grow(m, w->tok, T * sizeof(int)), w->pos = ws_grow(m, w->pos, T * sizeof(int));
        if (dev) w->tok_h = xrealloc(w->tok_h, T * sizeof(int)), w->pos_h = xrealloc(w->pos_h, T * sizeof(int));
        else w->tok_h = w->tok, w->pos_h = w->pos;
    }
    if (R > w->cap_R) {
        w->cap_R = R;
        w->xs = ws_grow(m, w->xs, R * C * 4), w->xsn = ws_grow(m, w->xsn, R * C * ab);
        w->logits = ws_grow(m, w->logits, R * (size_t)c->vocab_size * 4);
        w->logits_h = dev ? xrealloc(w->logits_h, R * (size_t)c->vocab_size * 4) : w->logits;
    }
    return w;
}

static llm_workspace *ws_get(llm_model *m, size_t T, size_t R) { return ws_get_in(m, &m->ws, T, R); }

/* Room for T rows of the adapter's (T, r) product on the device (lin below). */
static void lora_scratch_reserve(llm_model *m, size_t T) {
    size_t need = T * (size_t)m->lora->r;
    if (need > m->lora_scratch_dev_cap) {
        m->be->free(m->lora_scratch_dev);
        m->lora_scratch_dev = m->be->alloc(need * sizeof(float));
        m->lora_scratch_dev_cap = need;
    }
}

/* y = x W^T, plus the adapter's s (x A^T) B^T when one is attached (one test when none). */
static inline void lin(llm_model *m, int l, int mod, llm_act y, llm_cact x, const llm_weight *W, int T) {
    llm_be_matmul_infer(m->be, y, x, W, T);
    if (!m->lora) return;
    if (!m->lora_dev) {
        llm_lora_apply(m->lora, m->be, l, mod, y, x, T);
        return;
    }
    /* device: llm_lora_apply's two products on the device copies of A and B */
    const llm_lora *a = m->lora;
    const llm_lora_ab *p = llm_lora_at(a, l, mod);
    size_t i = (size_t)l * LLM_N_MODS + (size_t)mod;
    if (!p->A || T <= 0) return;
    lora_scratch_reserve(m, (size_t)T);
    /* fp32 A, B and (T, r) product against activations x and y */
    llm_be_gemm_act(m->be, LLM_ACT_A, 0, 1, T, a->r, p->in, 1.0f, x, p->in, m->lora_dev[2 * i], p->in, 0.0f,
                    m->lora_scratch_dev, a->r);
    llm_be_gemm_act(m->be, LLM_ACT_C, 0, 1, T, p->out, a->r, a->scale, m->lora_scratch_dev, a->r,
                    m->lora_dev[2 * i + 1], a->r, 1.0f, y, p->out);
}

int llm_forward(llm_model *m, llm_batch *b, int nb, char *err, size_t errlen) {
    const llm_config *c = &m->cfg;
    const llm_backend *be = m->be;
    int C = c->dim, H = c->hidden_dim, V = c->vocab_size, hd = c->head_dim;
    int qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    size_t T = 0, R = 0;
    for (int i = 0; i < nb; i++) {
        if (!b[i].seq || b[i].n < 0 || (b[i].n > 0 && !b[i].tokens) || b[i].seq->m != m) { snprintf(err, errlen, "bad batch item %d", i); return -1; }
        for (int j = 0; j < i; j++)
            if (b[j].seq == b[i].seq) { snprintf(err, errlen, "sequence given twice in one batch"); return -1; }
        if (llm_seq_len(b[i].seq) + b[i].n > c->max_seq_len) {
            snprintf(err, errlen, "sequence of %d tokens exceeds the context of %d", llm_seq_len(b[i].seq) + b[i].n, c->max_seq_len);
            return -1;
        }
        for (int t = 0; t < b[i].n; t++)
            if (b[i].tokens[t] < 0 || b[i].tokens[t] >= V) {
                snprintf(err, errlen, "token id %d outside the vocabulary [0, %d)", b[i].tokens[t], V);
                return -1;
            }
        T += (size_t)b[i].n;
        if (b[i].n > 0) R += b[i].logits == LLM_LOGITS_ALL ? (size_t)b[i].n : b[i].logits == LLM_LOGITS_LAST ? 1 : 0;
    }
    if (T == 0) return 0;
    llm_workspace *w = ws_get(m, T, R);
    int max_spans = 0;
    size_t t0 = 0;
    for (int i = 0; i < nb; i++) {
        llm_seq *s = b[i].seq;
        seq_reserve(s, s->n + b[i].n);
        for (int t = 0; t < b[i].n; t++) {
            w->tok_h[t0 + (size_t)t] = b[i].tokens[t];
            w->pos_h[t0 + (size_t)t] = llm_seq_len(s) + t;
        }
        t0 += (size_t)b[i].n;
        int d = seq_depth(s);
        if (d > max_spans) max_spans = d;
    }
    llm_attn_item *items = xmalloc((size_t)nb * sizeof *items);
    llm_kv_span *spans = xmalloc((size_t)nb * (size_t)max_spans * sizeof *spans);
    int nT = (int)T;
    llm_be_upload(be, w->tok, w->tok_h, T * sizeof(int));
    llm_be_upload(be, w->pos, w->pos_h, T * sizeof(int));

    be->embed(w->x, m->embed, w->tok, nT, C); // x (T,C)
    for (int l = 0; l < c->n_layers; l++) {
        const llm_layer *Y = &m->layers[l];
        // attention block
        be->rmsnorm(w->xb, w->x, Y->attn_norm, nT, C, c->norm_eps); // xb (T,C)
        lin(m, l, LLM_MOD_Q, w->q, w->xb, &Y->wq, nT);             // q (T,qd)
        lin(m, l, LLM_MOD_K, w->k, w->xb, &Y->wk, nT);                       // k (T,kvd)
        lin(m, l, LLM_MOD_V, w->v, w->xb, &Y->wv, nT);                       // v (T,kvd)
        be->rope(w->q, w->pos, nT, c->n_heads, hd, c->rope_theta);
        be->rope(w->k, w->pos, nT, c->n_kv_heads, hd, c->rope_theta);
        t0 = 0;
        int ni = 0;
        for (int i = 0; i < nb; i++) {
            llm_seq *s = b[i].seq;
            if (b[i].n == 0) continue;
            // append this layer's keys and values to the sequence's cache
            size_t kvn = llm_act_nbytes(be, (size_t)b[i].n * kvd);
            llm_be_copy(be, llm_act_at(be, s->k[l], (size_t)s->n * kvd), llm_act_at(be, w->k, t0 * kvd), kvn);
            llm_be_copy(be, llm_act_at(be, s->v[l], (size_t)s->n * kvd), llm_act_at(be, w->v, t0 * kvd), kvn);
            s->n += b[i].n; /* visible to seq_spans; undone below until the last layer */
            llm_kv_span *sp = spans + (size_t)ni * max_spans;
            int ns = seq_spans(s, l, llm_seq_len(s), sp, 0);
            s->n -= b[i].n;
            items[ni++] = (llm_attn_item){.out = llm_act_at(be, w->att, t0 * qd), .q = llm_act_at(be, w->q, t0 * qd), .T = b[i].n,
                                          .pos = w->pos + t0, .spans = sp, .n_spans = ns};
            t0 += (size_t)b[i].n;
        }
        be->attention(items, ni, c->n_heads, c->n_kv_heads, hd); // att (T,qd)
        lin(m, l, LLM_MOD_O, w->xb, w->att, &Y->wo, nT);                 // xb (T,C)
        be->add(w->x, w->xb, T * (size_t)C);                     // residual
        // feed-forward block (SwiGLU)
        be->rmsnorm(w->xb, w->x, Y->ffn_norm, nT, C, c->norm_eps); // xb (T,C)
        lin(m, l, LLM_MOD_GATE, w->h1, w->xb, &Y->w_gate, nT);                  // h1 (T,H)
        lin(m, l, LLM_MOD_UP, w->h3, w->xb, &Y->w_up, nT);                    // h3 (T,H)
        be->swiglu(w->h1, w->h3, T * (size_t)H);                   // h1 = silu(h1) * h3
        lin(m, l, LLM_MOD_DOWN, w->xb, w->h1, &Y->w_down, nT);                  // xb (T,C)
        be->add(w->x, w->xb, T * (size_t)C);                       // residual
    }
    for (int i = 0; i < nb; i++) b[i].seq->n += b[i].n;
    free(items);
    free(spans);

    // final norm and classifier, only for the rows whose logits are wanted
    if (R > 0) {
        size_t r = 0;
        t0 = 0;
        for (int i = 0; i < nb; i++) {
            if (b[i].n > 0 && b[i].logits == LLM_LOGITS_ALL) { /* consecutive rows: one copy */
                llm_be_copy(be, w->xs + r * C, w->x + t0 * C, (size_t)b[i].n * C * 4);
                r += (size_t)b[i].n;
            } else if (b[i].n > 0 && b[i].logits == LLM_LOGITS_LAST)
                llm_be_copy(be, w->xs + r++ * C, w->x + (t0 + (size_t)b[i].n - 1) * C, (size_t)C * 4);
            t0 += (size_t)b[i].n;
        }
        be->rmsnorm(w->xsn, w->xs, m->norm, (int)R, C, c->norm_eps);        // xsn (R,C)
        if (be->matmul_infer) be->matmul_infer(w->logits, w->xsn, &m->lm_head, (int)R); // logits (R,V), fp32
        else llm_be_matmul_f32(be, w->logits, w->xsn, &m->lm_head, (int)R);
        llm_be_download(be, w->logits_h, w->logits, R * (size_t)V * 4);
        r = 0;
        for (int i = 0; i < nb; i++) {
            if (b[i].n == 0 || b[i].logits == LLM_LOGITS_NONE) continue;
            size_t rows = b[i].logits == LLM_LOGITS_ALL ? (size_t)b[i].n : 1;
            if (b[i].out) memcpy(b[i].out, w->logits_h + r * V, rows * V * 4);
            llm_seq *s = b[i].seq;
            if (!s->logits) s->logits = xmalloc((size_t)V * 4);
            memcpy(s->logits, w->logits_h + (r + rows - 1) * V, (size_t)V * 4);
            r += rows;
        }
    }
    for (int i = 0; i < nb; i++) /* logits not asked for: the old ones no longer follow the last position */
        if (b[i].n > 0 && b[i].logits == LLM_LOGITS_NONE && b[i].seq->logits) {
            free(b[i].seq->logits);
            b[i].seq->logits = NULL;
        }
    return 0;
}

/* ---------------------------------------------------------------- the decode step (graphs)
 *
 * llm_decode_step with graphs on: a step of B single-token sequences issues the launches of
 * llm_forward (same kernels, same order, T = B), with every pointer fixed for a given key so
 * that the launches can be captured once and replayed:
 *   - its own workspace d->w (llm_forward's may grow under it), reallocated only for a larger
 *     B (d->gen counts those; every graph is dropped then);
 *   - token ids and positions uploaded into w->tok / w->pos before the launch, not inside it;
 *   - the KV append a kernel (be->kv_append) writing row pos[b] - start[b] of each cache,
 *     instead of copies whose destination moves every step;
 *   - attention descriptors packed once (be->attn_pack) into a device buffer of the key; they
 *     do not change from step to step because the own span of each sequence is given with
 *     its capacity as length: the kernel stops at the query's position (read from w->pos),
 *     so it visits the same keys as llm_forward, whose span ends there;
 *   - no allocation inside: the adapter's scratch is reserved for B rows before, and the
 *     backend's scratch has its size from the run without a graph that precedes every
 *     capture (a capture that would still have to grow one fails and the step runs without).
 * The key is the host image of that device buffer (every cache pointer, capacity, the
 * parents' spans, the workspace rows) with B, d->gen and the adapter's pointers in front: a
 * step whose image equals a stored key replays its graph; otherwise it runs without one and
 * stores the key (the next equal step captures). A sequence that outgrows its capacity
 * (generate.c reserves prompt + max_new up front, so only callers that do not), a finished
 * sequence (B shrinks) or a new one gives a new key. The backend refuses a graph whose
 * scratch buffers were reallocated since (graph_launch -1): captured again. */

#define DG_MAX 4 /* keys kept per model, the least recently used one replaced */

typedef struct {
    long B, n_spans;
    unsigned long gen;
    const void *lora, *lora_dev, *lora_scratch;
    size_t lora_cap;
} dg_head;

typedef struct {
    int B, n_spans;             /* spans of one layer's descriptor (every layer has as many) */
    size_t att_stride;          /* layer l's attention descriptor at l * att_stride */
    size_t off_kv, kv_stride;   /* layer l's kdst[B], vdst[B] at off_kv + l * kv_stride */
    size_t off_start, n;        /* start[B] (int), the block's size */
} dg_layout;

typedef struct {
    unsigned char *key; /* dg_head (padded to 16 bytes), then the block as uploaded */
    size_t key_n;
    void *dev;          /* the block in device memory */
    void *exec;         /* the captured step; NULL: the key was seen once, not captured yet */
    unsigned long used;
} dg_entry;

struct llm_dstep {
    int on;
    llm_workspace *w;
    unsigned long gen, clock;
    dg_entry e[DG_MAX];
    unsigned char *key; /* the current step's key, built on the host */
    size_t key_cap;
    long n_eager, n_capture, n_replay;
};

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

static int graphs_supported(const llm_backend *be) {
    return be->device && be->graph_begin && be->graph_end && be->graph_launch && be->graph_free && be->kv_append &&
           be->attn_pack && be->attention_packed;
}

static struct llm_dstep *dstep_get(llm_model *m) {
    if (!m->dstep) {
        m->dstep = xcalloc(1, sizeof *m->dstep);
        const char *e = getenv("ITREK_CUDA_GRAPHS");
        m->dstep->on = e && strcmp(e, "1") == 0; /* off by default: not yet measured on a device */
    }
    return m->dstep;
}

static void dg_entry_drop(llm_model *m, dg_entry *e) {
    if (e->exec) m->be->graph_free(e->exec);
    if (e->dev) m->be->free(e->dev);
    free(e->key);
    memset(e, 0, sizeof *e);
}

static void dstep_drop_all(llm_model *m) {
    if (!m->dstep) return;
    for (int i = 0; i < DG_MAX; i++) dg_entry_drop(m, &m->dstep->e[i]);
}

static void dstep_free(llm_model *m) {
    if (!m->dstep) return;
    dstep_drop_all(m);
    workspace_free(m, m->dstep->w);
    free(m->dstep->key);
    free(m->dstep);
    m->dstep = NULL;
}

int llm_decode_graphs(llm_model *m, int on) {
    struct llm_dstep *d = dstep_get(m);
    if (on >= 0) d->on = on != 0;
    return d->on && graphs_supported(m->be);
}

void llm_decode_graph_stats(const llm_model *m, long *eager, long *captured, long *replayed) {
    const struct llm_dstep *d = m->dstep;
    if (eager) *eager = d ? d->n_eager : 0;
    if (captured) *captured = d ? d->n_capture : 0;
    if (replayed) *replayed = d ? d->n_replay : 0;
}

/* Layer l's attention items of the step: query row i of w, position w->pos[i], spans of the
 * ancestors as llm_forward gives them and the own span at its capacity (see above). sp holds
 * maxd spans per sequence. Returns the number of spans. */
static int dg_items(const llm_model *m, const llm_workspace *w, llm_seq *const *seqs, int B, int l, int maxd,
                    llm_attn_item *it, llm_kv_span *sp) {
    const llm_backend *be = m->be;
    size_t qd = (size_t)m->cfg.n_heads * m->cfg.head_dim;
    int ns = 0;
    for (int i = 0; i < B; i++) {
        const llm_seq *s = seqs[i];
        llm_kv_span *p = sp + (size_t)i * maxd;
        int n = s->parent ? seq_spans(s->parent, l, s->start, p, 0) : 0;
        p[n++] = (llm_kv_span){s->k[l], s->v[l], s->cap};
        it[i] = (llm_attn_item){.out = llm_act_at(be, w->att, (size_t)i * qd), .q = llm_act_at(be, w->q, (size_t)i * qd),
                                .T = 1, .pos = w->pos + i, .spans = p, .n_spans = n};
        ns += n;
    }
    return ns;
}

/* The step's launches (llm_forward's for T = B single tokens), reading tok / pos from w and
 * the descriptors from the device block dev. Nothing here uploads, downloads or allocates. */
static void decode_body(llm_model *m, const llm_workspace *w, const char *dev, const dg_layout *lay) {
    const llm_config *c = &m->cfg;
    const llm_backend *be = m->be;
    int B = lay->B, C = c->dim, H = c->hidden_dim, hd = c->head_dim, kvd = c->n_kv_heads * hd;
    size_t T = (size_t)B;
    be->embed(w->x, m->embed, w->tok, B, C);
    for (int l = 0; l < c->n_layers; l++) {
        const llm_layer *Y = &m->layers[l];
        be->rmsnorm(w->xb, w->x, Y->attn_norm, B, C, c->norm_eps);
        lin(m, l, LLM_MOD_Q, w->q, w->xb, &Y->wq, B);
        lin(m, l, LLM_MOD_K, w->k, w->xb, &Y->wk, B);
        lin(m, l, LLM_MOD_V, w->v, w->xb, &Y->wv, B);
        be->rope(w->q, w->pos, B, c->n_heads, hd, c->rope_theta);
        be->rope(w->k, w->pos, B, c->n_kv_heads, hd, c->rope_theta);
        void *const *kd = (void *const *)(dev + lay->off_kv + (size_t)l * lay->kv_stride); /* device addresses */
        be->kv_append(kd, kd + B, (const int *)(dev + lay->off_start), w->pos, w->k, w->v, B, kvd);
        be->attention_packed(dev + (size_t)l * lay->att_stride, B, lay->n_spans, B, c->n_heads, c->n_kv_heads, hd);
        lin(m, l, LLM_MOD_O, w->xb, w->att, &Y->wo, B);
        be->add(w->x, w->xb, T * (size_t)C);
        be->rmsnorm(w->xb, w->x, Y->ffn_norm, B, C, c->norm_eps);
        lin(m, l, LLM_MOD_GATE, w->h1, w->xb, &Y->w_gate, B);
        lin(m, l, LLM_MOD_UP, w->h3, w->xb, &Y->w_up, B);
        be->swiglu(w->h1, w->h3, T * (size_t)H);
        lin(m, l, LLM_MOD_DOWN, w->xb, w->h1, &Y->w_down, B);
        be->add(w->x, w->xb, T * (size_t)C);
    }
    /* every row wants logits: the final norm reads the residual rows in place (llm_forward
     * copies them into xs first; the same values) */
    be->rmsnorm(w->xsn, w->x, m->norm, B, C, c->norm_eps);
    llm_be_matmul_f32(be, w->logits, w->xsn, &m->lm_head, B);
}

static int decode_graphed(llm_model *m, llm_seq *const *seqs, const int *tok, int B, float *logits, char *err,
                          size_t errlen) {
    const llm_config *c = &m->cfg;
    const llm_backend *be = m->be;
    struct llm_dstep *d = m->dstep;
    int V = c->vocab_size, L = c->n_layers;
    for (int i = 0; i < B; i++) { /* llm_forward's checks */
        if (!seqs[i] || seqs[i]->m != m) { snprintf(err, errlen, "bad batch item %d", i); return -1; }
        for (int j = 0; j < i; j++)
            if (seqs[j] == seqs[i]) { snprintf(err, errlen, "sequence given twice in one batch"); return -1; }
        if (llm_seq_len(seqs[i]) + 1 > c->max_seq_len) {
            snprintf(err, errlen, "sequence of %d tokens exceeds the context of %d", llm_seq_len(seqs[i]) + 1,
                     c->max_seq_len);
            return -1;
        }
        if (tok[i] < 0 || tok[i] >= V) {
            snprintf(err, errlen, "token id %d outside the vocabulary [0, %d)", tok[i], V);
            return -1;
        }
    }
    /* Everything the launches point to, before the key is taken. */
    for (int i = 0; i < B; i++) seq_reserve(seqs[i], seqs[i]->n + 1);
    size_t capT = d->w ? d->w->cap_T : 0, capR = d->w ? d->w->cap_R : 0;
    llm_workspace *w = ws_get_in(m, &d->w, (size_t)B, (size_t)B);
    if (w->cap_T != capT || w->cap_R != capR) { /* reallocated: every graph points to the old buffers */
        d->gen++;
        dstep_drop_all(m);
    }
    if (m->lora && m->lora_dev) lora_scratch_reserve(m, (size_t)B);

    /* The key: the head, then the block the kernels read (attention descriptors per layer,
     * cache pointers per layer, starts). */
    int maxd = 1;
    for (int i = 0; i < B; i++) {
        int dd = seq_depth(seqs[i]);
        if (dd > maxd) maxd = dd;
    }
    llm_attn_item *it = xmalloc((size_t)B * sizeof *it);
    llm_kv_span *sp = xmalloc((size_t)B * (size_t)maxd * sizeof *sp);
    dg_layout lay = {.B = B};
    lay.n_spans = dg_items(m, w, seqs, B, 0, maxd, it, sp);
    lay.att_stride = round16(be->attn_pack(NULL, it, B));
    lay.off_kv = (size_t)L * lay.att_stride;
    lay.kv_stride = round16(2 * (size_t)B * sizeof(void *));
    lay.off_start = lay.off_kv + (size_t)L * lay.kv_stride;
    lay.n = lay.off_start + round16((size_t)B * sizeof(int));
    size_t head = round16(sizeof(dg_head)), key_n = head + lay.n;
    if (key_n > d->key_cap) {
        d->key = xrealloc(d->key, key_n);
        d->key_cap = key_n;
    }
    memset(d->key, 0, key_n); /* padding bytes too: keys are compared with memcmp */
    dg_head h;
    memset(&h, 0, sizeof h);
    h.B = B, h.n_spans = lay.n_spans, h.gen = d->gen;
    h.lora = m->lora, h.lora_dev = m->lora_dev, h.lora_scratch = m->lora_scratch_dev, h.lora_cap = m->lora_scratch_dev_cap;
    memcpy(d->key, &h, sizeof h);
    unsigned char *blk = d->key + head;
    for (int l = 0; l < L; l++) {
        if (dg_items(m, w, seqs, B, l, maxd, it, sp) != lay.n_spans) die("decode step: span count differs by layer");
        be->attn_pack(blk + (size_t)l * lay.att_stride, it, B);
        void **kd = (void **)(blk + lay.off_kv + (size_t)l * lay.kv_stride);
        for (int i = 0; i < B; i++) kd[i] = seqs[i]->k[l], kd[B + i] = seqs[i]->v[l];
    }
    int *st = (int *)(blk + lay.off_start);
    for (int i = 0; i < B; i++) st[i] = seqs[i]->start;
    free(it);
    free(sp);

    dg_entry *e = NULL;
    for (int k = 0; k < DG_MAX && !e; k++)
        if (d->e[k].key && d->e[k].key_n == key_n && memcmp(d->e[k].key, d->key, key_n) == 0) e = &d->e[k];

    /* this step's tokens and positions into the fixed buffers, ahead of the launches */
    for (int i = 0; i < B; i++) w->tok_h[i] = tok[i], w->pos_h[i] = llm_seq_len(seqs[i]);
    be->upload(w->tok, w->tok_h, (size_t)B * sizeof(int));
    be->upload(w->pos, w->pos_h, (size_t)B * sizeof(int));

    if (!e) { /* a new key: store it and run without a graph (this also sizes the backend's scratch) */
        e = &d->e[0];
        for (int k = 1; k < DG_MAX; k++)
            if (!d->e[k].key || (e->key && d->e[k].used < e->used)) e = &d->e[k];
        dg_entry_drop(m, e);
        e->key = xmalloc(key_n);
        memcpy(e->key, d->key, key_n);
        e->key_n = key_n;
        e->dev = be->alloc(lay.n);
        be->upload(e->dev, blk, lay.n);
        decode_body(m, w, e->dev, &lay);
        d->n_eager++;
    } else if (e->exec && be->graph_launch(e->exec) == 0) {
        d->n_replay++;
    } else { /* seen before (or its graph is stale): capture now, then launch */
        if (e->exec) be->graph_free(e->exec);
        be->graph_begin();
        decode_body(m, w, e->dev, &lay);
        e->exec = be->graph_end();
        if (e->exec && be->graph_launch(e->exec) == 0) d->n_capture++;
        else { /* the capture could not complete (nothing of it ran): run the step itself */
            decode_body(m, w, e->dev, &lay);
            d->n_eager++;
        }
    }
    e->used = ++d->clock;

    be->download(w->logits_h, w->logits, (size_t)B * V * sizeof(float));
    for (int i = 0; i < B; i++) {
        llm_seq *s = seqs[i];
        if (logits) memcpy(logits + (size_t)i * V, w->logits_h + (size_t)i * V, (size_t)V * sizeof(float));
        if (!s->logits) s->logits = xmalloc((size_t)V * sizeof(float));
        memcpy(s->logits, w->logits_h + (size_t)i * V, (size_t)V * sizeof(float));
        s->n++;
    }
    return 0;
}

int llm_decode_step(llm_model *m, llm_seq *const *seqs, const int *tok, int B, float *logits, char *err,
                    size_t errlen) {
    if (B <= 0) return 0;
    if (llm_decode_graphs(m, -1)) return decode_graphed(m, seqs, tok, B, logits, err, errlen);
    /* without graphs: llm_forward, one single-token item per sequence */
    int V = m->cfg.vocab_size;
    llm_batch *b = xmalloc((size_t)B * sizeof *b);
    for (int i = 0; i < B; i++)
        b[i] = (llm_batch){seqs[i], tok + i, 1, LLM_LOGITS_LAST, logits ? logits + (size_t)i * V : NULL};
    int rc = llm_forward(m, b, B, err, errlen);
    free(b);
    return rc;
}
