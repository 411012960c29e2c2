/* test_dnnl.c - the cpu-bf16 backend (backend_dnnl.c) against the fp32 CPU backend: each
 * product on random shapes (odd sizes, row counts across the block boundaries, transposes,
 * alpha / beta, strided outputs, fp32 and int8 weights), then whole passes of a small random
 * LLaMA with grouped-query attention (9 heads, 3 KV heads): forward logits, decode logits,
 * a LoRA step's gradients and a full-parameter step's gradients; and the weight cache.
 *
 * Bounds, as relative errors max|bf16 - fp32| / max|fp32| over an output:
 *   - one product: 1e-2. Both inputs are rounded to bf16 (relative error up to 2^-9 each), the
 *     sum is fp32: the error of a dot product is about 2^-9 sqrt(2/3) = 1.6e-3 of its typical
 *     size; measured 1e-3 .. 4e-3.
 *   - whole passes (logits; every LoRA gradient tensor, every full-training gradient tensor,
 *     the loss): 1e-2, as the CUDA checks (tests/gpu/test_cuda.c) state for single operations.
 *     Activations stay fp32 here, so a pass rounds only each product's inputs.
 * On a CPU where oneDNN has no bf16 (no AVX-512) every check is replaced by one PASS that
 * the backend refuses with a reason. */
#include "../unit/harness.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/rng.h"
#include "llm/backend_dnnl.h"
#include "llm/lora.h"
#include "llm/model.h"
#include "llm/train.h"

static char err[1024];
static const llm_backend *CPU, *BF;
static double worst_product, worst_pass;

static double max_rel(const float *got, const float *want, size_t n) {
    double mx = 0, scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)got[i] - want[i]));
    return mx / fmax(scale, 1e-30);
}

/* ---- an emulation of cpu-bf16 on the fp32 backend: every product's inputs rounded to bf16
 * (nearest even), then the fp32 product. cpu-bf16 must match it up to summation order. ---- */

static float rbf(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

static float *rounded(const float *x, size_t n) {
    float *r = malloc((n ? n : 1) * sizeof *r);
    for (size_t i = 0; i < n; i++) r[i] = rbf(x[i]);
    return r;
}

static llm_weight rounded_weight(const llm_weight *w) {
    size_t n = (size_t)w->rows * w->cols;
    llm_weight r = {.rows = w->rows, .cols = w->cols, .f = malloc(n * sizeof(float))};
    for (size_t i = 0; i < n; i++) r.f[i] = rbf(w->f ? w->f[i] : (float)w->q[i] * w->scale[i / (size_t)w->cols]);
    return r;
}

static void emu_matmul(llm_act y, llm_cact x, const llm_weight *w, int T) {
    llm_weight r = rounded_weight(w);
    float *xr = rounded(x, (size_t)T * w->cols);
    CPU->matmul(y, xr, &r, T);
    free(xr), free(r.f);
}

static void emu_matmul_dx(llm_act dx, llm_cact dy, const llm_weight *w, int T, int acc) {
    llm_weight r = rounded_weight(w);
    float *dr = rounded(dy, (size_t)T * w->rows);
    CPU->matmul_dx(dx, dr, &r, T, acc);
    free(dr), free(r.f);
}

static void emu_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                     float beta, float *C, int ldc) {
    if (M < 64 || N < 64 || K < 64) { CPU->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); return; }
    float *Ar = rounded(A, (size_t)(ta ? K : M) * lda), *Br = rounded(B, (size_t)(tb ? N : K) * ldb);
    CPU->gemm(ta, tb, M, N, K, alpha, Ar, lda, Br, ldb, beta, C, ldc);
    free(Ar), free(Br);
}

static llm_backend EMU;

static float *rnd(rng_t *g, size_t n, float s) {
    float *p = malloc((n ? n : 1) * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)((2 * rng_uniform(g) - 1) * s);
    return p;
}

static void check_rel(const char *nm, double e, double bound, double *worst) {
    char line[300];
    snprintf(line, sizeof line, "%s: relative error %.2e <= %.0e", nm, e, bound);
    if (e > *worst) *worst = e;
    CHECK(line, e <= bound);
}

/* ---- products ---- */

static double worst_emu;

/* got against the emulation (same roundings: 1e-4, summation order only) and fp32 (1e-2) */
static void check2(const char *nm, const float *got, const float *emu, const float *f32, size_t n) {
    char line[300];
    double e = max_rel(got, emu, n);
    if (e > worst_emu) worst_emu = e;
    snprintf(line, sizeof line, "%s: vs emulated bf16 %.2e <= 1e-4", nm, e);
    CHECK(line, e <= 1e-4);
    snprintf(line, sizeof line, "%s: vs fp32", nm);
    check_rel(line, max_rel(got, f32, n), 1e-2, &worst_product);
}

static void test_matmul(void) {
    rng_t g;
    rng_init(&g, 5, 0);
    int shapes[][2] = {{37, 29}, {64, 96}, {200, 130}, {96, 576}}; /* (rows = out, cols = in) */
    int Ts[] = {1, 3, 16, 17, 100, 530};
    for (int s = 0; s < 4; s++)
        for (int q8 = 0; q8 < 2; q8++) {
            int N = shapes[s][0], K = shapes[s][1];
            char nm0[100];
            llm_weight w = {.rows = N, .cols = K, .f = rnd(&g, (size_t)N * K, 1)};
            if (q8) llm_weight_quantize(&w);
            for (int ti = 0; ti < 6; ti++) {
                int T = Ts[ti];
                float *x = rnd(&g, (size_t)T * K, 1), *y0 = malloc((size_t)T * N * 4), *y1 = malloc((size_t)T * N * 4);
                float *dy = rnd(&g, (size_t)T * N, 1), *d0 = rnd(&g, (size_t)T * K, 1), *d1 = malloc((size_t)T * K * 4);
                char nm[200];
                float *ye = malloc((size_t)T * N * 4), *de = malloc((size_t)T * K * 4);
                CPU->matmul(y0, x, &w, T);
                BF->matmul(y1, x, &w, T);
                EMU.matmul(ye, x, &w, T);
                snprintf(nm, sizeof nm, "matmul %s T=%d N=%d K=%d", q8 ? "int8" : "fp32", T, N, K);
                check2(nm, y1, ye, y0, (size_t)T * N);
                for (int acc = 0; acc < 2; acc++) {
                    memcpy(d1, d0, (size_t)T * K * 4);
                    memcpy(de, d0, (size_t)T * K * 4);
                    CPU->matmul_dx(d0, dy, &w, T, acc);
                    BF->matmul_dx(d1, dy, &w, T, acc);
                    EMU.matmul_dx(de, dy, &w, T, acc);
                    snprintf(nm, sizeof nm, "matmul_dx%s %s T=%d N=%d K=%d", acc ? " accumulate" : "", q8 ? "int8" : "fp32",
                             T, N, K);
                    check2(nm, d1, de, d0, (size_t)T * K);
                }
                free(ye), free(de);
                free(x), free(y0), free(y1), free(dy), free(d0), free(d1);
            }
            BF->weight_release(&w);
            snprintf(nm0, sizeof nm0, "weight_release clears w->dev (%s %dx%d)", q8 ? "int8" : "fp32", N, K);
            CHECK(nm0, w.dev == NULL);
            free(w.f), free(w.q), free(w.scale);
        }
}

static void test_gemm(void) {
    rng_t g;
    rng_init(&g, 6, 0);
    int shapes[][3] = {{70, 65, 64}, {130, 96, 200}, {600, 80, 77}, {20, 100, 100}, {64, 576, 1000}}; /* M N K */
    float ab[][2] = {{1, 0}, {0.5f, 1}, {1, 0.25f}};
    for (int s = 0; s < 5; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int k = 0; k < 3; k++) {
                    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
                    int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 5;
                    float alpha = ab[k][0], beta = ab[k][1];
                    float *A = rnd(&g, (size_t)(ta ? K : M) * lda, 1), *B = rnd(&g, (size_t)(tb ? N : K) * ldb, 1);
                    float *C0 = rnd(&g, (size_t)M * ldc, 1), *C1 = malloc((size_t)M * ldc * 4), *Ce = malloc((size_t)M * ldc * 4);
                    memcpy(C1, C0, (size_t)M * ldc * 4);
                    memcpy(Ce, C0, (size_t)M * ldc * 4);
                    CPU->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C0, ldc);
                    BF->gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C1, ldc);
                    EMU.gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Ce, ldc);
                    char nm[200];
                    snprintf(nm, sizeof nm, "gemm ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g", ta, tb, M, N, K, alpha, beta);
                    check2(nm, C1, Ce, C0, (size_t)M * ldc);
                    free(A), free(B), free(C0), free(C1), free(Ce);
                }
}

/* ---- attention: training forward and backward, prefill over cache spans ---- */

static void test_attention(void) {
    rng_t g;
    rng_init(&g, 7, 0);
    int nh = 9, nkv = 3, hd = 16, qd = nh * hd, kvd = nkv * hd, off[2] = {0, 70}, len[2] = {70, 33}, T = 103;
    float *q = rnd(&g, (size_t)T * qd, 1), *k = rnd(&g, (size_t)T * kvd, 1), *v = rnd(&g, (size_t)T * kvd, 1);
    float *dout = rnd(&g, (size_t)T * qd, 1);
    float *o0 = malloc((size_t)T * qd * 4), *o1 = malloc((size_t)T * qd * 4), *l0 = malloc((size_t)T * nh * 4),
          *l1 = malloc((size_t)T * nh * 4);
    float *g0[3], *g1[3];
    size_t gn[3] = {(size_t)T * qd, (size_t)T * kvd, (size_t)T * kvd};
    for (int i = 0; i < 3; i++) g0[i] = malloc(gn[i] * 4), g1[i] = malloc(gn[i] * 4);
    llm_train_attn a = {2, off, len, nh, nkv, hd, q, k, v, o0, l0, dout, g0[0], g0[1], g0[2]};
    CPU->attention_train(&a);
    CPU->attention_backward(&a);
    llm_train_attn b = {2, off, len, nh, nkv, hd, q, k, v, o1, l1, dout, g1[0], g1[1], g1[2]};
    BF->attention_train(&b);
    b.out = o0, b.lse = l0; /* the backward from the same forward results as the CPU's */
    BF->attention_backward(&b);
    check_rel("training attention, 2 sequences (70, 33), 9/3 heads: output", max_rel(o1, o0, (size_t)T * qd), 1e-2,
              &worst_product);
    check_rel("training attention: log-sum-exp", max_rel(l1, l0, (size_t)T * nh), 1e-2, &worst_product);
    const char *gnm[3] = {"training attention backward: dq", "training attention backward: dk", "training attention backward: dv"};
    for (int i = 0; i < 3; i++) check_rel(gnm[i], max_rel(g1[i], g0[i], gn[i]), 1e-2, &worst_product);
    /* prefill: 20 new tokens at positions 30..49 over a 30-row prefix span and their own span,
     * beside a 1-token decode item (fp32 path) */
    int pos[20], pos1[1] = {29};
    for (int t = 0; t < 20; t++) pos[t] = 30 + t;
    llm_kv_span sp[2] = {{k, v, 30}, {k + (size_t)30 * kvd, v + (size_t)30 * kvd, 20}};
    float *p0 = malloc((size_t)21 * qd * 4), *p1 = malloc((size_t)21 * qd * 4);
    llm_attn_item it0[2] = {{p0, q, 20, pos, sp, 2}, {p0 + (size_t)20 * qd, q + (size_t)20 * qd, 1, pos1, sp, 1}};
    llm_attn_item it1[2] = {{p1, q, 20, pos, sp, 2}, {p1 + (size_t)20 * qd, q + (size_t)20 * qd, 1, pos1, sp, 1}};
    CPU->attention(it0, 2, nh, nkv, hd);
    BF->attention(it1, 2, nh, nkv, hd);
    check_rel("prefill attention over two cache spans (+ a decode item)", max_rel(p1, p0, (size_t)21 * qd), 1e-2,
              &worst_product);
    free(q), free(k), free(v), free(dout), free(o0), free(o1), free(l0), free(l1), free(p0), free(p1);
    for (int i = 0; i < 3; i++) free(g0[i]), free(g1[i]);
}

/* ---- whole passes ---- */

static llm_config gqa_cfg(void) {
    return (llm_config){.dim = 144, .hidden_dim = 384, .n_layers = 2, .n_heads = 9, .n_kv_heads = 3, .head_dim = 16,
                        .vocab_size = 300, .max_seq_len = 128, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                        .tie_embeddings = 1, .bos_id = 1, .eos_id = 2};
}

static int TOK[80];

/* A whole pass: against the emulation (1e-2: the same roundings, but a last-bit difference in
 * fp32 can round an input of a later product the other way) and against fp32 (bound). */
static void pass2(const char *nm, double e_emu, double e_f32, double bound, double emu_f32) {
    char line[400];
    snprintf(line, sizeof line, "%s: vs emulated bf16 %.2e <= 1e-2", nm, e_emu);
    CHECK(line, e_emu <= 1e-2);
    snprintf(line, sizeof line, "%s: vs fp32 (the emulation itself: %.2e)", nm, emu_f32);
    check_rel(line, e_f32, bound, &worst_pass);
}

/* Logits of the 80 tokens (all rows) then of one decoded token, on backend be. */
static void logits(llm_model *m, const llm_backend *be, float *all, float *dec) {
    m->be = be;
    llm_set_threads(m, 2);
    llm_seq *s = llm_seq_new(m);
    llm_batch b = {s, TOK, 80, LLM_LOGITS_ALL, all};
    if (llm_forward(m, &b, 1, err, sizeof err) != 0) printf("# %s\n", err);
    int t = 7;
    llm_batch d = {s, &t, 1, LLM_LOGITS_LAST, dec};
    if (llm_forward(m, &d, 1, err, sizeof err) != 0) printf("# %s\n", err);
    llm_seq_free(s);
}

static void release_all(llm_model *m) {
    for (int l = 0; l < m->cfg.n_layers; l++)
        for (int mod = 0; mod < LLM_N_MODS; mod++) BF->weight_release(llm_layer_weight(&m->layers[l], mod));
    BF->weight_release(&m->lm_head);
}

static void test_forward(int int8) {
    llm_config c = gqa_cfg();
    llm_model *m = llm_init_random(&c, 0.05f, 3, 2);
    if (int8) {
        for (int l = 0; l < c.n_layers; l++)
            for (int mod = 0; mod < LLM_N_MODS; mod++) llm_weight_quantize(llm_layer_weight(&m->layers[l], mod));
        m->int8 = 1;
    }
    size_t V = (size_t)c.vocab_size;
    float *a0 = malloc(80 * V * 4), *a1 = malloc(80 * V * 4), *d0 = malloc(V * 4), *d1 = malloc(V * 4);
    float *ae = malloc(80 * V * 4), *dE = malloc(V * 4);
    logits(m, CPU, a0, d0);
    logits(m, BF, a1, d1);
    logits(m, &EMU, ae, dE);
    char nm[200];
    snprintf(nm, sizeof nm, "forward logits, 80 tokens, GQA 9/3, %s weights", int8 ? "int8" : "fp32");
    pass2(nm, max_rel(a1, ae, 80 * V), max_rel(a1, a0, 80 * V), 1e-2, max_rel(ae, a0, 80 * V));
    snprintf(nm, sizeof nm, "decode logits, 1 token, %s weights", int8 ? "int8" : "fp32");
    pass2(nm, max_rel(d1, dE, V), max_rel(d1, d0, V), 1e-2, max_rel(dE, d0, V));
    free(ae), free(dE);
    if (!int8) {
        /* the cached copies give the same bytes again; a weight changed in place is seen */
        float *a2 = malloc(80 * V * 4);
        llm_dnnl_stats s0, s1;
        llm_dnnl_get_stats(&s0);
        logits(m, BF, a2, d1);
        llm_dnnl_get_stats(&s1);
        CHECK("second bf16 forward: identical logits, no weight converted again",
              memcmp(a1, a2, 80 * V * 4) == 0 && s1.conversions == s0.conversions);
        llm_weight *wq = &m->layers[0].wq;
        for (size_t i = 0; i < (size_t)wq->rows * wq->cols; i++) wq->f[i] *= 1.5f;
        logits(m, CPU, a0, d0);
        logits(m, BF, a2, d1);
        check_rel("weight rewritten in place: the copy is remade", max_rel(a2, a0, 80 * V), 1e-2, &worst_pass);
        llm_dnnl_set_weight_cache(0);
        llm_dnnl_get_stats(&s0);
        logits(m, BF, a2, d1);
        llm_dnnl_get_stats(&s1);
        CHECK("cache off: every product converts its weight",
              s1.products > s0.products && s1.conversions - s0.conversions == s1.products - s0.products);
        check_rel("cache off: same logits", max_rel(a2, a0, 80 * V), 1e-2, &worst_pass);
        llm_dnnl_set_weight_cache(1);
        free(a2);
    }
    release_all(m);
    CHECK("weight_release frees every copy", m->layers[0].wq.dev == NULL && m->lm_head.dev == NULL);
    m->be = CPU;
    llm_free(m);
    free(a0), free(a1), free(d0), free(d1);
}

/* All gradients of one micro-batch (two packed examples, 80 + 50 tokens) on backend be. */
static float *step(llm_model *m, llm_lora *a, int full, const llm_backend *be, double *loss, size_t *len, char names[][200],
                   size_t *off, int *np_out) {
    static int tok2[50];
    for (int i = 0; i < 50; i++) tok2[i] = 3 + (i * 37) % 290;
    tok2[0] = 1;
    m->be = be;
    llm_set_threads(m, 2);
    llm_dnnl_set_weight_cache(!full);
    llm_trainer_opts o = {.full = full, .seed = 4};
    llm_trainer *t = llm_trainer_new(m, a, &o, err, sizeof err);
    if (!t) { printf("# %s\n", err); return NULL; }
    llm_example ex[2] = {{TOK, 80, 20}, {tok2, 50, 1}};
    long nt;
    llm_trainer_zero_grad(t);
    if (llm_trainer_run(t, ex, 2, 1, 1.0f, 0, NULL, loss, &nt, err, sizeof err) != 0) printf("# %s\n", err);
    llm_param *p;
    int np = llm_trainer_params(t, &p);
    size_t tot = 0;
    for (int i = 0; i < np; i++) tot += p[i].n;
    float *g = malloc(tot * sizeof *g);
    tot = 0;
    for (int i = 0; i < np; i++) {
        memcpy(g + tot, p[i].g, p[i].n * sizeof *g);
        if (names) snprintf(names[i], 200, "%s", p[i].name);
        off[i] = tot;
        tot += p[i].n;
    }
    off[np] = tot;
    *len = tot;
    *np_out = np;
    llm_trainer_free(t);
    llm_dnnl_set_weight_cache(1);
    return g;
}

static void test_train(int full) {
    llm_config c = gqa_cfg();
    c.tie_embeddings = 0;
    llm_model *m = llm_init_random(&c, 0.05f, 8, 2);
    llm_lora *a = NULL;
    if (!full) {
        a = llm_lora_new(&c, 16, 32.0f, 0.0f, LLM_MODS_ATTN, 9);
        rng_t g;
        rng_init(&g, 12, 0);
        for (int i = 0; i < a->n_layers * LLM_N_MODS; i++)
            if (a->ab[i].B)
                for (int k = 0; k < a->ab[i].out * a->r; k++) a->ab[i].B[k] = (float)(0.05 * rng_normal(&g));
    }
    static char names[64][200];
    size_t off0[65], off1[65], n0, n1;
    int np0, np1;
    double l0, l1;
    float *g0 = step(m, a, full, CPU, &l0, &n0, names, off0, &np0), *g1 = step(m, a, full, BF, &l1, &n1, NULL, off1, &np1);
    double le;
    float *ge = step(m, a, full, &EMU, &le, &n1, NULL, off1, &np1);
    char nm[300];
    snprintf(nm, sizeof nm, "%s step: loss %.6f vs %.6f", full ? "full-parameter" : "LoRA q,k,v,o r16", l1, l0);
    pass2(nm, fabs(l1 - le) / fabs(le), fabs(l1 - l0) / fabs(l0), 1e-2, fabs(le - l0) / fabs(l0));
    CHECK("same parameters", g0 && g1 && ge && n0 == n1 && np0 == np1);
    if (g0 && g1 && ge && n0 == n1) {
        double we = 0, wf = 0, wr = 0;
        const char *wn = "";
        for (int i = 0; i < np0; i++) {
            size_t o = off0[i], n = off0[i + 1] - off0[i];
            double e = max_rel(g1 + o, g0 + o, n);
            if (e > wf) wf = e, wn = names[i];
            we = fmax(we, max_rel(g1 + o, ge + o, n));
            wr = fmax(wr, max_rel(ge + o, g0 + o, n));
        }
        snprintf(nm, sizeof nm, "%s step: every gradient tensor (%d; worst against fp32: %.100s)",
                 full ? "full-parameter" : "LoRA q,k,v,o r16", np0, wn);
        pass2(nm, we, wf, 3e-2, wr);
    }
    free(ge);
    free(g0), free(g1);
    release_all(m);
    m->be = CPU;
    llm_lora_free(a);
    llm_free(m);
}

int main(void) {
    CPU = llm_backend_cpu();
    BF = llm_backend_cpu_bf16(err, sizeof err);
    if (!BF) {
        printf("# cpu-bf16 unavailable here: %s\n", err);
        CHECK("cpu-bf16 refused with a reason", err[0] != 0);
        return 0;
    }
    const char *note = llm_dnnl_isa_note();
    printf("# %s\n", note ? note : "cpu-bf16: bf16 in hardware (avx512_bf16 or AMX)");
    CHECK("llm_backend_named(\"cpu-bf16\")", llm_backend_named("cpu-bf16", err, sizeof err) == BF);
    BF->set_threads(2);
    EMU = *CPU;
    EMU.matmul = emu_matmul;
    EMU.matmul_dx = emu_matmul_dx;
    EMU.gemm = emu_gemm;
    EMU.attention = BF->attention; /* the emulation is of the products; attention is cpu-bf16's */
    EMU.attention_train = BF->attention_train;
    EMU.attention_backward = BF->attention_backward;
    rng_t g;
    rng_init(&g, 2, 0);
    for (int i = 0; i < 80; i++) TOK[i] = 3 + (int)rng_below(&g, 297);
    TOK[0] = 1;
    test_matmul();
    test_gemm();
    test_attention();
    test_forward(0);
    test_forward(1);
    test_train(0);
    test_train(1);
    llm_dnnl_stats s;
    llm_dnnl_get_stats(&s);
    printf("# worst relative error: single products %.2e (against the emulation %.2e), whole passes %.2e\n", worst_product,
           worst_emu, worst_pass);
    printf("# %ld bf16 products, %ld attention calls, %ld fp32 (small gemm), %ld fallbacks, %ld weight conversions, %ld "
           "primitives\n", s.products, s.attention, s.fp32, s.fallbacks, s.conversions, s.primitives);
    CHECK("products and attention ran on oneDNN, none fell back", s.products > 0 && s.attention > 0 && s.fallbacks == 0);
    return 0;
}
