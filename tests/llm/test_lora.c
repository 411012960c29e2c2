/* test_lora.c - the training backward against finite differences (LoRA on fp32 and int8
 * bases, full-parameter mode), against the PyTorch/PEFT reference fixture, activation
 * recomputation, packing, and adapters at inference (on the fly = merged = trainer logits;
 * PEFT save/load round trip). */
#include "../unit/harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/rng.h"
#include "llm/convert.h"
#include "llm/lora.h"
#include "llm/model.h"
#include "llm/safetensors.h"
#include "llm/train.h"

static char err[1024];

static llm_config tiny_cfg(void) {
    return (llm_config){.dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2, .head_dim = 4,
                        .vocab_size = 37, .max_seq_len = 64, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                        .tie_embeddings = 0, .bos_id = 1, .eos_id = 2};
}

/* Random model with non-trivial norms (so their gradients matter too). */
static llm_model *tiny_model(int tied, uint64_t seed) {
    llm_config c = tiny_cfg();
    c.tie_embeddings = tied;
    llm_model *m = llm_init_random(&c, 0.3f, seed, 1);
    rng_t g;
    rng_init(&g, seed, 999);
    for (int l = 0; l < c.n_layers; l++)
        for (int i = 0; i < c.dim; i++) {
            m->layers[l].attn_norm[i] = (float)(1 + 0.2 * rng_normal(&g));
            m->layers[l].ffn_norm[i] = (float)(1 + 0.2 * rng_normal(&g));
        }
    for (int i = 0; i < c.dim; i++) m->norm[i] = (float)(1 + 0.2 * rng_normal(&g));
    return m;
}

static llm_lora *tiny_lora(const llm_config *c, unsigned targets, float dropout) {
    llm_lora *a = llm_lora_new(c, 4, 8.0f, dropout, targets, 7);
    rng_t g;
    rng_init(&g, 11, 0);
    for (int i = 0; i < a->n_layers * LLM_N_MODS; i++)
        if (a->ab[i].B)
            for (int k = 0; k < a->ab[i].out * a->r; k++) a->ab[i].B[k] = (float)(0.2 * rng_normal(&g));
    return a;
}

static int TOK_A[13] = {1, 5, 9, 30, 2, 17, 17, 4, 36, 0, 12, 8, 3};
static int TOK_B[7] = {1, 22, 6, 6, 31, 14, 2};

static void examples(llm_example ex[2]) {
    ex[0] = (llm_example){TOK_A, 13, 5};
    ex[1] = (llm_example){TOK_B, 7, 1};
}

static double loss_of(llm_trainer *t, uint64_t stream) {
    llm_example ex[2];
    examples(ex);
    double loss;
    long nt;
    if (llm_trainer_run(t, ex, 2, 0, 1.0f, stream, NULL, &loss, &nt, err, sizeof err) != 0) printf("# %s\n", err);
    return loss;
}

/* Directional finite differences: for each parameter tensor, a random direction d,
 * (L(w + e d) - L(w - e d)) / 2e at e = 0.004 and 0.008 combined by Richardson extrapolation,
 * against g . d; the losses in fp32 (summed in double). */
static void fd_check(const char *what, llm_model *m, llm_lora *a, int full, uint64_t stream, double tol) {
    llm_trainer_opts o = {.full = full, .seed = 3};
    llm_trainer *t = llm_trainer_new(m, a, &o, err, sizeof err);
    char nm[256];
    snprintf(nm, sizeof nm, "%s trainer", what);
    CHECK(nm, t != NULL);
    if (!t) { printf("# %s\n", err); return; }
    llm_example ex[2];
    examples(ex);
    double loss;
    long nt;
    llm_trainer_zero_grad(t);
    llm_trainer_run(t, ex, 2, 1, 1.0f, stream, NULL, &loss, &nt, err, sizeof err);
    llm_param *p;
    int np = llm_trainer_params(t, &p);
    double worst = 0, worst_abs = 0;
    const char *worst_name = "";
    rng_t g;
    rng_init(&g, 5, 0);
    for (int i = 0; i < np; i++) {
        float *d = malloc(p[i].n * sizeof *d), *w0 = malloc(p[i].n * sizeof *w0);
        memcpy(w0, p[i].w, p[i].n * sizeof *w0);
        double an = 0, gn = 0;
        for (size_t k = 0; k < p[i].n; k++) {
            d[k] = (float)rng_normal(&g);
            an += (double)d[k] * p[i].g[k];
            gn += (double)p[i].g[k] * p[i].g[k];
        }
        double fds[2];
        for (int h = 0; h < 2; h++) { /* central differences at e and 2e, then Richardson: error O(e^4) */
            double e = 4e-3 * (h + 1);
            for (size_t k = 0; k < p[i].n; k++) p[i].w[k] = w0[k] + (float)e * d[k];
            double lp = loss_of(t, stream);
            for (size_t k = 0; k < p[i].n; k++) p[i].w[k] = w0[k] - (float)e * d[k];
            double lm = loss_of(t, stream);
            fds[h] = (lp - lm) / (2 * e);
        }
        memcpy(p[i].w, w0, p[i].n * sizeof *w0);
        double fd = (4 * fds[0] - fds[1]) / 3, rel = fabs(fd - an) / fmax(fabs(an), sqrt(gn));
        if (rel > worst) { worst = rel; worst_abs = fabs(fd - an); worst_name = p[i].name; }
        free(d);
        free(w0);
    }
    printf("# %s: %d tensors, loss %.6f over %ld targets, worst directional error %.3g relative to max(|g.d|, |g|) (%.3g absolute, %s)\n",
           what, np, loss, nt, worst, worst_abs, worst_name);
    snprintf(nm, sizeof nm, "%s finite differences within %.0e", what, tol);
    CHECK(nm, worst < tol);
    llm_trainer_free(t);
}

static void test_fd(void) {
    llm_model *m = tiny_model(0, 1);
    llm_lora *a = tiny_lora(&m->cfg, LLM_MODS_ALL, 0.0f);
    fd_check("lora fp32 all modules", m, a, 0, 0, 2e-3);
    llm_lora_free(a);
    a = tiny_lora(&m->cfg, LLM_MODS_ATTN, 0.25f);
    fd_check("lora fp32 dropout 0.25", m, a, 0, 77, 2e-3);
    llm_lora_free(a);
    fd_check("full fp32 untied", m, NULL, 1, 0, 2e-3);
    llm_free(m);
    m = tiny_model(1, 2);
    fd_check("full fp32 tied", m, NULL, 1, 0, 2e-3);
    llm_free(m);
    m = tiny_model(0, 1);
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int mod = 0; mod < LLM_N_MODS; mod++) llm_weight_quantize(llm_layer_weight(&m->layers[l], mod));
    m->int8 = 1;
    a = tiny_lora(&m->cfg, LLM_MODS_ALL, 0.0f);
    fd_check("lora int8 base", m, a, 0, 0, 2e-3);
    llm_lora_free(a);
    llm_free(m);
}

/* Gradients of every parameter, concatenated. */
static float *grads(llm_trainer *t, const llm_example *ex, int n, float scale, int zero, size_t *len) {
    double loss;
    long nt;
    if (zero) llm_trainer_zero_grad(t);
    llm_trainer_run(t, ex, n, 1, scale, 9, NULL, &loss, &nt, err, sizeof err);
    llm_param *p;
    int np = llm_trainer_params(t, &p);
    size_t tot = 0;
    for (int i = 0; i < np; i++) tot += p[i].n;
    float *g = malloc(tot * sizeof *g);
    tot = 0;
    for (int i = 0; i < np; i++) { memcpy(g + tot, p[i].g, p[i].n * sizeof *g); tot += p[i].n; }
    *len = tot;
    return g;
}

static double max_rel(const float *a, const float *b, size_t n) {
    double mx = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(a[i] - b[i]));
    return mx / fmax(scale, 1e-30);
}

static void test_recompute_and_packing(void) {
    llm_model *m = tiny_model(0, 1);
    llm_lora *a = tiny_lora(&m->cfg, LLM_MODS_ALL, 0.1f);
    llm_trainer_opts o = {.seed = 3}, orc = {.seed = 3, .recompute = 1};
    llm_trainer *t = llm_trainer_new(m, a, &o, err, sizeof err), *tr = llm_trainer_new(m, a, &orc, err, sizeof err);
    llm_example ex[2];
    examples(ex);
    size_t n1, n2;
    float *g1 = grads(t, ex, 2, 1.0f, 1, &n1), *g2 = grads(tr, ex, 2, 1.0f, 1, &n2);
    CHECK("recompute gives identical gradients", n1 == n2 && memcmp(g1, g2, n1 * sizeof *g1) == 0);
    free(g2);
    /* packing: the two examples alone, weighted by their target counts, sum to the batch */
    int na = 13 - 5, nb = 6;
    float *ga, *gb;
    llm_trainer_opts o0 = {.seed = 3};
    llm_trainer *t0 = llm_trainer_new(m, a, &o0, err, sizeof err);
    free(grads(t0, NULL, 0, 1, 1, &n2));
    ga = grads(t0, &ex[0], 1, (float)na / (na + nb), 1, &n2);
    free(ga);
    ga = grads(t0, &ex[1], 1, (float)nb / (na + nb), 0, &n2); /* accumulated: a + b */
    llm_trainer_free(t0);
    /* dropout streams differ per micro-batch call here, so compare without dropout */
    llm_lora_free(a);
    a = tiny_lora(&m->cfg, LLM_MODS_ALL, 0.0f);
    t0 = llm_trainer_new(m, a, &o0, err, sizeof err);
    float *gab = grads(t0, ex, 2, 1.0f, 1, &n1);
    free(grads(t0, &ex[0], 1, (float)na / (na + nb), 1, &n2));
    gb = grads(t0, &ex[1], 1, (float)nb / (na + nb), 0, &n2);
    double e = max_rel(gb, gab, n1);
    printf("# packed batch vs one example at a time: max gradient difference %.3g relative\n", e);
    CHECK("packing = separate examples (1e-5)", e < 1e-5);
    free(ga), free(gb), free(gab), free(g1);
    llm_trainer_free(t0);
    llm_trainer_free(t);
    llm_trainer_free(tr);
    llm_lora_free(a);
    llm_free(m);
}

static void test_inference(void) {
    llm_model *m = tiny_model(0, 4);
    llm_lora *a = tiny_lora(&m->cfg, LLM_MODS_ALL, 0.05f);
    int V = m->cfg.vocab_size, n = 13;
    float *lt = malloc((size_t)n * V * sizeof *lt), *lf = malloc((size_t)n * V * sizeof *lf), *lm = malloc((size_t)n * V * sizeof *lm);
    llm_trainer_opts o = {.seed = 1};
    llm_trainer *t = llm_trainer_new(m, a, &o, err, sizeof err);
    llm_example ex = {TOK_A, n, 1};
    double loss;
    long nt;
    llm_trainer_run(t, &ex, 1, 0, 1, 0, lt, &loss, &nt, err, sizeof err);
    llm_trainer_free(t);
    /* save, load, attach: on the fly */
    char dir[] = "/tmp/itrek-lora-XXXXXX";
    CHECK("mkdtemp", mkdtemp(dir) != NULL);
    a->base_model = strdup("tiny");
    CHECK("save PEFT adapter", llm_lora_save(a, dir, err, sizeof err) == 0);
    llm_lora *b = llm_lora_load(dir, &m->cfg, err, sizeof err);
    CHECK("load PEFT adapter", b != NULL);
    if (!b) { printf("# %s\n", err); return; }
    int same = b->r == a->r && b->alpha == a->alpha && b->targets == a->targets && fabsf(b->dropout - 0.05f) < 1e-7;
    for (int i = 0; i < a->n_layers * LLM_N_MODS && same; i++)
        if (a->ab[i].A)
            same = memcmp(a->ab[i].A, b->ab[i].A, (size_t)a->r * a->ab[i].in * 4) == 0 &&
                   memcmp(a->ab[i].B, b->ab[i].B, (size_t)a->r * a->ab[i].out * 4) == 0;
    CHECK("PEFT round trip exact", same);
    char path[512];
    snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
    st_file *st = st_open(path, err, sizeof err);
    const llm_tensor *ta = st ? st_find(st, "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight") : NULL;
    const llm_tensor *tb = st ? st_find(st, "base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight") : NULL;
    CHECK("PEFT key names and shapes", ta && tb && ta->shape[0] == 4 && ta->shape[1] == 24 && tb->shape[0] == 8 && tb->shape[1] == 4);
    if (st) st_close(st);
    CHECK("attach adapter", llm_set_adapter(m, b, err, sizeof err) == 0);
    llm_seq *s = llm_seq_new(m);
    llm_batch bt = {s, TOK_A, n, LLM_LOGITS_ALL, lf};
    CHECK("forward with adapter", llm_forward(m, &bt, 1, err, sizeof err) == 0);
    llm_seq_free(s);
    double e1 = max_rel(lf, lt, (size_t)n * V);
    /* merged */
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int mod = 0; mod < LLM_N_MODS; mod++) llm_lora_merge_weight(b, l, mod, llm_layer_weight(&m->layers[l], mod));
    llm_set_adapter(m, NULL, err, sizeof err);
    s = llm_seq_new(m);
    bt = (llm_batch){s, TOK_A, n, LLM_LOGITS_ALL, lm};
    llm_forward(m, &bt, 1, err, sizeof err);
    llm_seq_free(s);
    double e2 = max_rel(lm, lf, (size_t)n * V);
    printf("# logits: trainer vs on-the-fly adapter %.3g, merged vs on-the-fly %.3g (relative to max |logit|)\n", e1, e2);
    CHECK("trainer logits = inference with adapter (1e-5)", e1 < 1e-5);
    CHECK("merged = on the fly (1e-5)", e2 < 1e-5);
    /* a wrong-shaped adapter is refused */
    llm_config c2 = m->cfg;
    c2.hidden_dim = 32;
    llm_lora *bad = llm_lora_load(dir, &c2, err, sizeof err);
    CHECK("adapter for another shape refused", bad == NULL && strstr(err, "shape"));
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK("cleanup", system(path) == 0);
    free(lt), free(lf), free(lm);
    llm_lora_free(a);
    llm_free(m);
}


/* ---------------------------------------------------------------- the PyTorch/PEFT reference */

static const char *fixture_path(void) {
    static char p[1024];
    const char *root = getenv("ITREK_ROOT");
    snprintf(p, sizeof p, "%s/tests/llm/fixtures/lora_ref.safetensors", root ? root : ".");
    return p;
}

/* Compare one fixture case: loss, logits (1e-4 relative to max |logit|) and every LoRA gradient
 * (1e-3 relative to the tensor's max |gradient|). */
static void ref_case(st_file *st, const char *pre, llm_model *m, unsigned targets, int r, float alpha, double tol_logit,
                     double tol_grad) {
    char nm[512], key[400];
    llm_lora *a = llm_lora_new(&m->cfg, r, alpha, 0.0f, targets, 1);
    int ok = 1;
    for (int l = 0; l < a->n_layers; l++)
        for (int mod = 0; mod < LLM_N_MODS; mod++) {
            llm_lora_ab *p = llm_lora_at(a, l, mod);
            if (!p->A) continue;
            for (int ab = 0; ab < 2; ab++) {
                snprintf(nm, sizeof nm, "%s.base_model.model.model.layers.%d.%s.lora_%c.weight", pre, l, llm_mod_path(mod), "AB"[ab]);
                const llm_tensor *x = st_find(st, nm);
                size_t n = ab ? (size_t)p->out * r : (size_t)r * p->in;
                if (!x || x->nbytes != n * 4) { ok = 0; continue; }
                memcpy(ab ? p->B : p->A, x->data, n * 4);
            }
        }
    snprintf(nm, sizeof nm, "%s: fixture adapter read", pre);
    CHECK(nm, ok);
    snprintf(key, sizeof key, "%s.tokens", pre);
    const llm_tensor *tk = st_find(st, key);
    snprintf(key, sizeof key, "%s.loss_from", pre);
    const llm_tensor *lf = st_find(st, key);
    snprintf(key, sizeof key, "%s.loss", pre);
    const llm_tensor *ls = st_find(st, key);
    snprintf(key, sizeof key, "%s.logits", pre);
    const llm_tensor *lg = st_find(st, key);
    if (!ok || !tk || !lf || !ls || !lg) { llm_lora_free(a); return; }
    int n = (int)tk->shape[0], V = m->cfg.vocab_size;
    llm_example ex = {(const int *)tk->data, n, ((const int *)lf->data)[0]};
    llm_trainer_opts o = {.seed = 1};
    llm_trainer *t = llm_trainer_new(m, a, &o, err, sizeof err);
    float *logits = malloc((size_t)n * V * sizeof *logits);
    double loss;
    long nt;
    llm_trainer_zero_grad(t);
    llm_trainer_run(t, &ex, 1, 1, 1.0f, 0, logits, &loss, &nt, err, sizeof err);
    double want = ((const double *)ls->data)[0];
    double e_logit = max_rel(logits, (const float *)lg->data, (size_t)n * V), e_grad = 0;
    const char *worst = "";
    llm_param *p;
    int np = llm_trainer_params(t, &p), found = 0;
    for (int i = 0; i < np; i++) {
        snprintf(nm, sizeof nm, "%s.grad.%s", pre, p[i].name);
        const llm_tensor *g = st_find(st, nm);
        if (!g || g->nbytes != p[i].n * 4) continue;
        found++;
        double e = max_rel(p[i].g, (const float *)g->data, p[i].n);
        if (e > e_grad) { e_grad = e; worst = p[i].name; }
    }
    printf("# %s vs PyTorch/PEFT (float64): loss %.9f vs %.9f, logits %.3g, LoRA gradients worst %.3g (%s)\n", pre, loss,
           want, e_logit, e_grad, worst);
    snprintf(nm, sizeof nm, "%s: loss matches reference", pre);
    CHECK_NEAR(nm, loss, want, 1e-5);
    snprintf(nm, sizeof nm, "%s: logits within %.0e", pre, tol_logit);
    CHECK(nm, e_logit < tol_logit);
    snprintf(nm, sizeof nm, "%s: all %d LoRA gradients within %.0e", pre, np, tol_grad);
    CHECK(nm, found == np && e_grad < tol_grad);
    free(logits);
    llm_trainer_free(t);
    llm_lora_free(a);
}

static void test_reference(void) {
    char e2[1024];
    st_file *st = st_open(fixture_path(), e2, sizeof e2);
    CHECK("reference fixture present", st != NULL);
    if (!st) { printf("# %s\n", e2); return; }
    char dir[] = "/tmp/itrek-loraref-XXXXXX", path[512];
    CHECK("mkdtemp", mkdtemp(dir) != NULL);
    /* the tiny model: its config and weights from the fixture */
    llm_config c = tiny_cfg();
    snprintf(path, sizeof path, "%s/config.json", dir);
    llm_config_save(path, &c, err, sizeof err);
    llm_tensor *ts = calloc((size_t)st_count(st), sizeof *ts);
    int n = 0;
    for (int i = 0; i < st_count(st); i++)
        if (strncmp(st_at(st, i)->name, "tiny.base.", 10) == 0) {
            ts[n] = *st_at(st, i);
            ts[n].name += 10;
            n++;
        }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    CHECK("write tiny base", st_write(path, ts, n, NULL, 0, err, sizeof err) == 0);
    free(ts);
    llm_load_opts lo = {.threads = 1};
    llm_model *m = llm_load(dir, &lo, err, sizeof err);
    CHECK("load tiny base", m != NULL);
    if (m) ref_case(st, "tiny", m, LLM_MODS_ALL, 4, 8.0f, 1e-4, 1e-3);
    llm_free(m);
    lo.int8 = 1;
    m = llm_load(dir, &lo, err, sizeof err);
    if (m) ref_case(st, "tiny8", m, LLM_MODS_ALL, 4, 8.0f, 1e-4, 1e-3);
    llm_free(m);
    /* stories260K in Hugging Face layout */
    const char *sh = getenv("SHARED") ? getenv("SHARED") : "/work/shared";
    char bin[512], tok[512], hf[600];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", sh);
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", sh);
    snprintf(hf, sizeof hf, "%s/s260k", dir);
    if (llm_convert_llama2c(bin, tok, hf, err, sizeof err) == 0) {
        lo.int8 = 0;
        m = llm_load(hf, &lo, err, sizeof err);
        if (m) ref_case(st, "s260k", m, LLM_MODS_ATTN, 4, 16.0f, 1e-4, 1e-3);
        llm_free(m);
    } else printf("# stories260K not available: %s\n", err);
    st_close(st);
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CHECK("cleanup reference dir", system(path) == 0);
}

int main(void) {
    test_reference();
    test_fd();
    test_recompute_and_packing();
    test_inference();
    return 0;
}
