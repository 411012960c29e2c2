/* test_cuda.c - the CUDA backend against the CPU backend (the reference), kernel by kernel and
 * for whole passes, on random inputs; and the GPU benchmarks. Built and run by tests/gpu/run.sh
 * (not by `make test`); without a usable GPU every mode prints "SKIP no GPU: reason", exits 0.
 *
 *   test_cuda check                      PASS/FAIL lines: relative error = max|gpu - cpu| / max|cpu|
 *   test_cuda train-bench [LAYERS]       LoRA step, LLaMA-7B shape, int8 base, 4 x 1024, recompute
 *   test_cuda gen-bench [LAYERS [PROMPT [NEW [BATCH,...]]]]   batched greedy decoding tokens/s at batch 1, 32, 128
 *                                        (or the listed batch sizes)
 *   test_cuda roofline                   measured copy bandwidth and bf16 product rate
 *
 * Bounds: fp32 kernels 1e-4 (different summation orders only); products that round their
 * inputs to bf16 (int8 weights with more than 8 rows) 1e-2, as every pass that contains one. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "io/err.h"
#include "io/rng.h"
#include "llm/backend_cuda.h"
#include "llm/generate.h"
#include "llm/lora.h"
#include "llm/model.h"
#include "llm/optim.h"
#include "llm/train.h"

static const llm_backend *G, *H; /* GPU, host (CPU) */
static int n_fail;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *rnd(size_t n, uint64_t seed, float sc) {
    float *x = xmalloc((n ? n : 1) * sizeof *x);
    rng_t g;
    rng_init(&g, seed, 7);
    for (size_t i = 0; i < n; i++) x[i] = (float)(sc * rng_normal(&g));
    return x;
}
static void *up(const void *h, size_t bytes) {
    void *d = G->alloc(bytes);
    G->upload(d, h, bytes);
    return d;
}
static float *down(const float *d, size_t n) {
    float *h = xmalloc((n ? n : 1) * sizeof *h);
    G->download(h, d, n * sizeof *h);
    return h;
}
static double rel(const float *ref, const float *x, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)ref[i] - x[i]);
        if (!(d <= md)) md = d; /* NaN propagates */
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return mr > 0 ? md / mr : md;
}
static void check(const char *name, double err, double bound) {
    int ok = err <= bound;
    if (!ok) n_fail++;
    printf("%s %-40s rel %.3e (bound %.0e)\n", ok ? "PASS" : "FAIL", name, err, bound);
    fflush(stdout);
}
/* Compare a device result with the host one (frees the downloaded copy). */
static void cmp(const char *name, const float *ref, const float *dev, size_t n, double bound) {
    float *h = down(dev, n);
    check(name, rel(ref, h, n), bound);
    free(h);
}

static llm_weight mkweight(int rows, int cols, int int8, uint64_t seed, llm_weight *dev) {
    llm_weight w = {.rows = rows, .cols = cols, .f = rnd((size_t)rows * cols, seed, 0.05f)};
    if (int8) llm_weight_quantize(&w);
    *dev = w;
    size_t n = (size_t)rows * cols;
    if (w.f) dev->f = up(w.f, n * 4);
    else dev->q = up(w.q, n), dev->scale = up(w.scale, (size_t)rows * 4);
    return w;
}

/* ---------------------------------------------------------------- kernels */

static void check_kernels(void) {
    char nm[128];
    { /* embed */
        int V = 1000, C = 256, T = 37;
        float *tab = rnd((size_t)V * C, 1, 1), *x = xmalloc((size_t)T * C * 4);
        int tok[37];
        for (int t = 0; t < T; t++) tok[t] = (t * 131) % V;
        H->embed(x, tab, tok, T, C);
        float *dt = up(tab, (size_t)V * C * 4), *dx = G->alloc((size_t)T * C * 4);
        int *dk = up(tok, sizeof tok);
        G->embed(dx, dt, dk, T, C);
        cmp("embed", x, dx, (size_t)T * C, 0);
        G->free(dt), G->free(dx), G->free(dk), free(tab), free(x);
    }
    { /* rmsnorm (and in place), rmsnorm_backward, swiglu, add, swiglu_backward, rope */
        int T = 37, C = 256;
        size_t n = (size_t)T * C;
        float *x = rnd(n, 2, 1), *w = rnd((size_t)C, 3, 1), *y = xmalloc(n * 4), *dy = rnd(n, 4, 1);
        float *dx = rnd(n, 5, 1), *dw = rnd((size_t)C, 6, 1);
        float *gx = up(x, n * 4), *gw = up(w, (size_t)C * 4), *gy = G->alloc(n * 4), *gdy = up(dy, n * 4);
        float *gdx = up(dx, n * 4), *gdw = up(dw, (size_t)C * 4);
        H->rmsnorm(y, x, w, T, C, 1e-5f);
        G->rmsnorm(gy, gx, gw, T, C, 1e-5f);
        cmp("rmsnorm", y, gy, n, 1e-5);
        G->rmsnorm(gx, gx, gw, T, C, 1e-5f);
        cmp("rmsnorm-in-place", y, gx, n, 1e-5);
        G->upload(gx, x, n * 4);
        H->rmsnorm_backward(dx, dw, dy, x, w, T, C, 1e-5f);
        G->rmsnorm_backward(gdx, gdw, gdy, gx, gw, T, C, 1e-5f);
        cmp("rmsnorm_backward-dx", dx, gdx, n, 1e-4);
        cmp("rmsnorm_backward-dw", dw, gdw, (size_t)C, 1e-4);
        H->rmsnorm_backward(dx, NULL, dy, x, w, T, C, 1e-5f);
        G->rmsnorm_backward(gdx, NULL, gdy, gx, gw, T, C, 1e-5f);
        cmp("rmsnorm_backward-nodw", dx, gdx, n, 1e-4);
        float *u = rnd(n, 8, 1), *gu = up(u, n * 4);
        H->swiglu_backward(dx, dw = xmalloc(n * 4), dy, x, u, n);
        G->swiglu_backward(gdx, gdw = G->alloc(n * 4), gdy, gx, gu, n);
        cmp("swiglu_backward-dg", dx, gdx, n, 1e-5);
        cmp("swiglu_backward-du", dw, gdw, n, 1e-5);
        H->swiglu(x, u, n);
        G->swiglu(gx, gu, n);
        cmp("swiglu", x, gx, n, 1e-5);
        H->add(x, u, n);
        G->add(gx, gu, n);
        cmp("add", x, gx, n, 1e-6);
        int nh = 8, hd = 32, pos[37];
        for (int t = 0; t < T; t++) pos[t] = (t * 97) % 1500 - (t % 5 == 0 ? 1500 : 0); /* negative: the backward */
        int *gp = up(pos, sizeof pos);
        H->rope(x, pos, T, nh, hd, 10000.0f);
        G->rope(gx, gp, T, nh, hd, 10000.0f);
        cmp("rope", x, gx, n, 1e-5);
        G->free(gp), G->free(gx), G->free(gw), G->free(gy), G->free(gdy), G->free(gdx), G->free(gdw), G->free(gu);
        free(x), free(w), free(y), free(dy), free(dx), free(dw), free(u);
    }
    /* matmul / matmul_dx: fp32 and int8 weights, decode and prefill row counts, K % 4 != 0 */
    int Ts[] = {1, 3, 8, 9, 64}, Ks[] = {256, 172};
    for (int ki = 0; ki < 2; ki++)
        for (int q8 = 0; q8 < 2; q8++)
            for (int ti = 0; ti < 5; ti++) {
                int T = Ts[ti], K = Ks[ki], N = 300;
                llm_weight dw, w = mkweight(N, K, q8, 10 + (uint64_t)K, &dw);
                float *x = rnd((size_t)T * K, 11, 1), *y = xmalloc((size_t)T * N * 4), *gx = up(x, (size_t)T * K * 4);
                float *gy = G->alloc((size_t)T * N * 4);
                double b = q8 && T > 8 ? 1e-2 : 1e-4;
                H->matmul(y, x, &w, T);
                G->matmul(gy, gx, &dw, T);
                snprintf(nm, sizeof nm, "matmul-%s-T%d-K%d", q8 ? "int8" : "fp32", T, K);
                cmp(nm, y, gy, (size_t)T * N, b);
                float *dy = rnd((size_t)T * N, 12, 1), *dx = rnd((size_t)T * K, 13, 1);
                float *gdy = up(dy, (size_t)T * N * 4), *gdx = up(dx, (size_t)T * K * 4);
                for (int acc = 0; acc < 2; acc++) {
                    H->matmul_dx(dx, dy, &w, T, acc);
                    G->matmul_dx(gdx, gdy, &dw, T, acc);
                    snprintf(nm, sizeof nm, "matmul_dx-%s-T%d-K%d-acc%d", q8 ? "int8" : "fp32", T, K, acc);
                    cmp(nm, dx, gdx, (size_t)T * K, q8 ? 1e-2 : 1e-4);
                }
                G->free(gx), G->free(gy), G->free(gdy), G->free(gdx), G->free(dw.f), G->free(dw.q), G->free(dw.scale);
                free(x), free(y), free(dy), free(dx), free(w.f), free(w.q), free(w.scale);
            }
    for (int ta = 0; ta < 2; ta++) /* gemm, every transpose, beta 0.5, K = 0 */
        for (int tb = 0; tb < 2; tb++)
            for (int kz = 0; kz < 2; kz++) {
                int M = 33, N = 47, K = kz ? 0 : 29, lda = ta ? M : (K ? K : 1), ldb = tb ? (K ? K : 1) : N;
                size_t na = (size_t)(ta ? (K ? K : 1) : M) * lda, nb = (size_t)(tb ? N : (K ? K : 1)) * ldb, nc = (size_t)M * N;
                float *A = rnd(na, 20, 1), *B = rnd(nb, 21, 1), *Cm = rnd(nc, 22, 1);
                float *gA = up(A, na * 4), *gB = up(B, nb * 4), *gC = up(Cm, nc * 4);
                H->gemm(ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.5f, Cm, N);
                G->gemm(ta, tb, M, N, K, 0.7f, gA, lda, gB, ldb, 0.5f, gC, N);
                snprintf(nm, sizeof nm, "gemm-ta%d-tb%d-K%d", ta, tb, K);
                cmp(nm, Cm, gC, nc, 1e-5);
                G->free(gA), G->free(gB), G->free(gC), free(A), free(B), free(Cm);
            }
    { /* attention over the KV cache: a decode step with a shared prefix (2 spans) and a prefill */
        int nh = 8, nkv = 2, hd = 64, qd = nh * hd, kvd = nkv * hd;
        int plen = 20, own = 11, pre = 16;
        float *kp = rnd((size_t)plen * kvd, 30, 1), *vp = rnd((size_t)plen * kvd, 31, 1);
        float *ko = rnd((size_t)own * kvd, 32, 1), *vo = rnd((size_t)own * kvd, 33, 1);
        float *k2 = rnd((size_t)pre * kvd, 34, 1), *v2 = rnd((size_t)pre * kvd, 35, 1);
        int T = 2 + pre;
        float *q = rnd((size_t)T * qd, 36, 1), *out = xmalloc((size_t)T * qd * 4);
        int pos[18];
        pos[0] = plen + own - 2, pos[1] = plen + own - 1;
        for (int t = 0; t < pre; t++) pos[2 + t] = t;
        llm_kv_span hs[3] = {{kp, vp, plen}, {ko, vo, own}, {k2, v2, pre}};
        llm_attn_item hi[2] = {{out, q, 2, pos, hs, 2}, {out + 2 * qd, q + 2 * qd, pre, pos + 2, hs + 2, 1}};
        H->attention(hi, 2, nh, nkv, hd);
        float *gq = up(q, (size_t)T * qd * 4), *go = G->alloc((size_t)T * qd * 4);
        int *gp = up(pos, sizeof pos);
        llm_kv_span gs[3] = {{up(kp, (size_t)plen * kvd * 4), up(vp, (size_t)plen * kvd * 4), plen},
                             {up(ko, (size_t)own * kvd * 4), up(vo, (size_t)own * kvd * 4), own},
                             {up(k2, (size_t)pre * kvd * 4), up(v2, (size_t)pre * kvd * 4), pre}};
        llm_attn_item gi[2] = {{go, gq, 2, gp, gs, 2}, {go + 2 * qd, gq + 2 * qd, pre, gp + 2, gs + 2, 1}};
        G->attention(gi, 2, nh, nkv, hd);
        cmp("attention-kv-cache", out, go, (size_t)T * qd, 1e-5);
        for (int s = 0; s < 3; s++) G->free((void *)gs[s].k), G->free((void *)gs[s].v);
        G->free(gq), G->free(go), G->free(gp);
        free(kp), free(vp), free(ko), free(vo), free(k2), free(v2), free(q), free(out);
    }
    { /* training attention and its backward: 3 packed sequences, grouped-query heads */
        int nh = 8, nkv = 4, hd = 64, qd = nh * hd, kvd = nkv * hd, off[3] = {0, 17, 57}, len[3] = {17, 40, 5}, T = 62;
        float *q = rnd((size_t)T * qd, 40, 1), *k = rnd((size_t)T * kvd, 41, 1), *v = rnd((size_t)T * kvd, 42, 1);
        float *dout = rnd((size_t)T * qd, 43, 1), *out = xmalloc((size_t)T * qd * 4), *lse = xmalloc((size_t)T * nh * 4);
        float *dq = xmalloc((size_t)T * qd * 4), *dk = xmalloc((size_t)T * kvd * 4), *dv = xmalloc((size_t)T * kvd * 4);
        llm_train_attn a = {3, off, len, nh, nkv, hd, q, k, v, out, lse, dout, dq, dk, dv};
        H->attention_train(&a);
        H->attention_backward(&a);
        llm_train_attn g = {3, off, len, nh, nkv, hd, up(q, (size_t)T * qd * 4), up(k, (size_t)T * kvd * 4),
                            up(v, (size_t)T * kvd * 4), G->alloc((size_t)T * qd * 4), G->alloc((size_t)T * nh * 4),
                            up(dout, (size_t)T * qd * 4), G->alloc((size_t)T * qd * 4), G->alloc((size_t)T * kvd * 4),
                            G->alloc((size_t)T * kvd * 4)};
        G->attention_train(&g);
        G->attention_backward(&g);
        cmp("attention_train-out", out, g.out, (size_t)T * qd, 1e-5);
        cmp("attention_train-lse", lse, g.lse, (size_t)T * nh, 1e-5);
        cmp("attention_backward-dq", dq, g.dq, (size_t)T * qd, 1e-4);
        cmp("attention_backward-dk", dk, g.dk, (size_t)T * kvd, 1e-4);
        cmp("attention_backward-dv", dv, g.dv, (size_t)T * kvd, 1e-4);
        G->free((void *)g.q), G->free((void *)g.k), G->free((void *)g.v), G->free(g.out), G->free(g.lse);
        G->free((void *)g.dout), G->free(g.dq), G->free(g.dk), G->free(g.dv);
        free(q), free(k), free(v), free(dout), free(out), free(lse), free(dq), free(dk), free(dv);
    }
    { /* cross-entropy: loss per row and dlogits, rows without target zeroed */
        int nr = 10, V = 1000, tgt[10];
        for (int i = 0; i < nr; i++) tgt[i] = i % 4 == 3 ? -1 : (i * 37) % V;
        float *lg = rnd((size_t)nr * V, 50, 3), *ref = xmalloc((size_t)nr * V * 4), loss[10];
        float gs = 0.25f;
        for (int i = 0; i < nr; i++) {
            const float *r = lg + (size_t)i * V;
            float *o = ref + (size_t)i * V;
            if (tgt[i] < 0) { memset(o, 0, (size_t)V * 4); loss[i] = 0; continue; }
            double mx = r[0], s = 0;
            for (int j = 1; j < V; j++) if (r[j] > mx) mx = r[j];
            for (int j = 0; j < V; j++) s += exp(r[j] - mx);
            double l = mx + log(s);
            loss[i] = (float)(l - r[tgt[i]]);
            for (int j = 0; j < V; j++) o[j] = (float)(exp(r[j] - l) * gs - (j == tgt[i] ? gs : 0));
        }
        float *glg = up(lg, (size_t)nr * V * 4), *gl = G->alloc(nr * 4);
        int *gt = up(tgt, sizeof tgt);
        G->xent(glg, gt, nr, V, gs, 1, gl);
        cmp("xent-loss", loss, gl, (size_t)nr, 1e-5);
        cmp("xent-dlogits", ref, glg, (size_t)nr * V, 1e-5);
        G->free(glg), G->free(gl), G->free(gt), free(lg), free(ref);
    }
    { /* AdamW: the kernel against optim.c's host update, bit for bit (bound 0): two tensors
       * (weight decay on and off, as LoRA A/B and norms), 12 updates with a new gradient each
       * and optim.c's warm-up + cosine learning rate; the host computes decay, step_size and
       * bc2s exactly as llm_adamw_step does. */
        size_t n[2] = {5000, 777};
        float *w[2], *g[2], *gw[2], *gg[2], *gm[2], *gv[2];
        llm_param p[2];
        for (int i = 0; i < 2; i++) {
            w[i] = rnd(n[i], 60 + (uint64_t)i, 1), g[i] = rnd(n[i], 62 + (uint64_t)i, 1);
            gw[i] = up(w[i], n[i] * 4), gg[i] = G->alloc(n[i] * 4), gm[i] = G->alloc(n[i] * 4), gv[i] = G->alloc(n[i] * 4);
            G->zero(gm[i], n[i] * 4), G->zero(gv[i], n[i] * 4);
            p[i] = (llm_param){.w = w[i], .g = g[i], .n = n[i], .decay = i == 0};
        }
        llm_adamw *o = llm_adamw_new(p, 2);
        llm_adamw_opts h = {0.9f, 0.999f, 1e-8f, 0.01f};
        for (int s = 0; s < 12; s++) {
            float lr = llm_lr_cosine(s, 2e-3f, 3, 12);
            for (int i = 0; i < 2; i++) { /* a new gradient per update, small and large values */
                float *ng = rnd(n[i], 100 + (uint64_t)(s * 2 + i), s % 3 == 2 ? 1e-4f : 1.0f);
                memcpy(g[i], ng, n[i] * 4);
                G->upload(gg[i], ng, n[i] * 4);
                free(ng);
            }
            llm_adamw_step(o, p, 2, &h, lr);
            double bc1 = 1.0 - pow(h.beta1, (double)(s + 1)), bc2 = 1.0 - pow(h.beta2, (double)(s + 1));
            for (int i = 0; i < 2; i++)
                G->adamw(gw[i], gg[i], gm[i], gv[i], n[i], p[i].decay ? 1.0f - lr * h.weight_decay : 1.0f, h.beta1,
                         h.beta2, h.eps, (float)(lr / bc1), (float)sqrt(bc2));
        }
        cmp("adamw-12-steps-decay-exact", w[0], gw[0], n[0], 0);
        cmp("adamw-12-steps-nodecay-exact", w[1], gw[1], n[1], 0);
        cmp("adamw-moment-m-exact", o->m[0], gm[0], n[0], 0);
        cmp("adamw-moment-v-exact", o->v[1], gv[1], n[1], 0);
        llm_adamw_free(o);
        for (int i = 0; i < 2; i++) G->free(gw[i]), G->free(gg[i]), G->free(gm[i]), G->free(gv[i]), free(w[i]), free(g[i]);
    }
    { /* uploads through the pinned staging ring: the host buffer is overwritten right after each
       * upload (asynchronous copies must have taken their own copy), more uploads than ring
       * slots, sizes that grow a slot (64 KiB -> 1 MiB) and one above the staging limit */
        size_t sizes[] = {16, 4096, 70000, 1 << 20, (1 << 20) + 4, 333, 65536, 200000, 8, 1000, 123457, 5};
        int nu = (int)(sizeof sizes / sizeof *sizes);
        size_t mx = (1 << 20) + 4;
        float *hb = xmalloc(mx), *back = xmalloc(mx);
        void *d[12];
        size_t bad = 0;
        for (int r = 0; r < 2; r++) {
            for (int i = 0; i < nu; i++) {
                d[i] = G->alloc(sizes[i]);
                memset(hb, 0x11 * (i + 1) + r, sizes[i]);
                G->upload(d[i], hb, sizes[i]);
                memset(hb, 0xEE, mx); /* what a pending copy must not see */
            }
            for (int i = 0; i < nu; i++) {
                G->download(back, d[i], sizes[i]);
                for (size_t k = 0; k < sizes[i]; k++) bad += ((unsigned char *)back)[k] != (unsigned char)(0x11 * (i + 1) + r);
                G->free(d[i]);
            }
        }
        check("upload-staging-ring-bytes", (double)bad, 0);
        free(hb), free(back);
    }
    { /* dropout: share dropped, scaling, the same mask twice */
        size_t n = 1 << 20;
        float *ones = xmalloc(n * 4);
        for (size_t i = 0; i < n; i++) ones[i] = 1;
        float *a = up(ones, n * 4), *b = G->alloc(n * 4);
        G->dropout(b, a, n, 0.05f, 7, 99);
        G->dropout(a, a, n, 0.05f, 7, 99);
        float *ha = down(a, n), *hb = down(b, n);
        size_t zeros = 0, bad = 0;
        for (size_t i = 0; i < n; i++) {
            zeros += ha[i] == 0;
            bad += ha[i] != hb[i] || (ha[i] != 0 && fabsf(ha[i] - 1.0f / 0.95f) > 1e-6f);
        }
        double frac = (double)zeros / (double)n;
        check("dropout-share-0.05", fabs(frac - 0.05), 2e-3);
        check("dropout-same-mask-and-scale", (double)bad, 0);
        G->free(a), G->free(b), free(ones), free(ha), free(hb);
    }
}

/* ---------------------------------------------------------------- whole passes */

static llm_config small_cfg(void) {
    return (llm_config){.dim = 256, .hidden_dim = 688, .n_layers = 3, .n_heads = 8, .n_kv_heads = 4, .head_dim = 32,
                        .vocab_size = 1000, .max_seq_len = 512, .norm_eps = 1e-5f, .rope_theta = 10000.0f,
                        .bos_id = 1, .eos_id = 2};
}

static llm_model *small_model(int int8, int on_gpu) {
    llm_config c = small_cfg();
    llm_model *m = llm_init_random(&c, 0.05f, 5, 2);
    if (int8) {
        for (int l = 0; l < c.n_layers; l++)
            for (int mod = 0; mod < LLM_N_MODS; mod++) llm_weight_quantize(llm_layer_weight(&m->layers[l], mod));
        m->int8 = 1;
    }
    char err[256];
    if (on_gpu && llm_model_to_backend(m, G, err, sizeof err) != 0) die("%s", err);
    return m;
}

/* Logits of a batch mixing a prefill, a fork of it and a decode step: CPU vs GPU. */
static void check_forward(int int8) {
    llm_model *m[2] = {small_model(int8, 0), small_model(int8, 1)};
    int V = 1000, ids[40];
    for (int i = 0; i < 40; i++) ids[i] = (i * 53 + 7) % V;
    float *lg[2];
    for (int d = 0; d < 2; d++) {
        char err[256];
        llm_seq *a = llm_seq_new(m[d]), *b = llm_seq_new(m[d]);
        llm_batch b1[2] = {{a, ids, 30, LLM_LOGITS_NONE, NULL}, {b, ids + 30, 5, LLM_LOGITS_NONE, NULL}};
        if (llm_forward(m[d], b1, 2, err, sizeof err) != 0) die("%s", err);
        llm_seq *f = llm_seq_fork(a);
        lg[d] = xmalloc((size_t)(1 + 6 + 1) * V * 4);
        llm_batch b2[3] = {{a, ids + 35, 1, LLM_LOGITS_LAST, lg[d]},
                           {f, ids + 31, 6, LLM_LOGITS_ALL, lg[d] + V},
                           {b, ids + 36, 1, LLM_LOGITS_LAST, lg[d] + 7 * V}};
        if (llm_forward(m[d], b2, 3, err, sizeof err) != 0) die("%s", err);
        llm_seq_free(f), llm_seq_free(a), llm_seq_free(b);
    }
    check(int8 ? "forward-logits-int8" : "forward-logits-fp32", rel(lg[0], lg[1], (size_t)8 * V), int8 ? 1e-2 : 1e-4);
    /* greedy generation: the same tokens on both (fp32 only: bf16 rounding may flip near ties) */
    if (!int8) {
        llm_sampling s = llm_sampling_default();
        s.max_new = 16, s.stop_eos = 0;
        int out[2][16];
        for (int d = 0; d < 2; d++) {
            char err[256];
            llm_request r = {.prompt = ids, .n_prompt = 8};
            if (llm_generate(m[d], &r, 1, &s, 4, err, sizeof err) != 0) die("%s", err);
            memcpy(out[d], r.out, sizeof out[d]);
            free(r.out);
        }
        check("generate-greedy-same-tokens", memcmp(out[0], out[1], sizeof out[0]) != 0, 0);
    }
    free(lg[0]), free(lg[1]);
    llm_free(m[0]), llm_free(m[1]);
}

/* One LoRA training micro-batch (loss and every adapter gradient): CPU vs GPU. */
static void check_train(int int8) {
    llm_model *m[2] = {small_model(int8, 0), small_model(int8, 1)};
    int n = 3, lens[3] = {40, 17, 64};
    int *tok[3];
    llm_example ex[3];
    for (int i = 0; i < n; i++) {
        tok[i] = xmalloc((size_t)lens[i] * sizeof(int));
        for (int j = 0; j < lens[i]; j++) tok[i][j] = (i * 101 + j * 37 + 1) % 1000;
        ex[i] = (llm_example){tok[i], lens[i], i == 1 ? 1 : lens[i] / 2};
    }
    double loss[2];
    float *grads[2];
    size_t total = 0;
    for (int d = 0; d < 2; d++) {
        llm_config c = small_cfg();
        llm_lora *lo = llm_lora_new(&c, 16, 16, 0.0f, LLM_MODS_ATTN, 3); /* dropout 0: masks differ by design */
        for (int i = 0; i < c.n_layers * LLM_N_MODS; i++) /* B != 0, so that A gets a gradient */
            if (lo->ab[i].B) {
                float *b = rnd((size_t)lo->ab[i].out * 16, 70 + (uint64_t)i, 0.05f);
                memcpy(lo->ab[i].B, b, (size_t)lo->ab[i].out * 16 * 4);
                free(b);
            }
        char err[256];
        llm_trainer_opts o = {.recompute = d, .seed = 1}; /* the GPU with recomputation, the CPU without */
        llm_trainer *t = llm_trainer_new(m[d], lo, &o, err, sizeof err);
        if (!t) die("%s", err);
        llm_trainer_zero_grad(t);
        long ntg;
        if (llm_trainer_run(t, ex, n, 1, 1.0f, 0, NULL, &loss[d], &ntg, err, sizeof err) != 0) die("%s", err);
        llm_param *p;
        int np = llm_trainer_params(t, &p);
        total = 0;
        for (int i = 0; i < np; i++) total += p[i].n;
        grads[d] = xmalloc(total * 4);
        for (int i = 0, k = 0; i < np; k += (int)p[i].n, i++) memcpy(grads[d] + k, p[i].g, p[i].n * 4);
        llm_trainer_free(t);
        llm_lora_free(lo);
    }
    float l0 = (float)loss[0], l1 = (float)loss[1];
    check(int8 ? "train-step-loss-int8" : "train-step-loss-fp32", rel(&l0, &l1, 1), int8 ? 1e-2 : 1e-5);
    check(int8 ? "train-step-grads-int8" : "train-step-grads-fp32", rel(grads[0], grads[1], total), int8 ? 1e-2 : 1e-4);
    free(grads[0]), free(grads[1]);
    for (int i = 0; i < n; i++) free(tok[i]);
    llm_free(m[0]), llm_free(m[1]);
}

/* ---------------------------------------------------------------- benchmarks */

static llm_config cfg_7b(int layers) {
    return (llm_config){.dim = 4096, .hidden_dim = 11008, .n_layers = layers, .n_heads = 32, .n_kv_heads = 32,
                        .head_dim = 128, .vocab_size = 32000, .max_seq_len = 2048, .norm_eps = 1e-6f,
                        .rope_theta = 10000.0f, .bos_id = 1, .eos_id = 2};
}

static double peak_flops(void) { /* dense bf16 tensor-core peak of the card, for MFU */
    char name[256];
    llm_cuda_device_name(name, sizeof name);
    if (strstr(name, "H100") && strstr(name, "PCIe")) return 756e12;
    if (strstr(name, "H100") || strstr(name, "H200") || strstr(name, "H800")) return 989.4e12;
    if (strstr(name, "A100")) return 312e12;
    return 989.4e12;
}

static void mem_line(const char *what) {
    size_t used, peak, fr, tot;
    llm_cuda_mem_stats(&used, &peak, &fr, &tot);
    printf("memory %s: pool in use %.2f GiB, pool peak %.2f GiB, device used %.2f of %.2f GiB\n", what,
           used / 1073741824.0, peak / 1073741824.0, (tot - fr) / 1073741824.0, tot / 1073741824.0);
}

static void train_bench(int layers) {
    llm_config c = cfg_7b(layers);
    char err[256];
    double t0 = now();
    llm_model *m = llm_init_random_on(&c, G, 1, 0.02f, 1, err, sizeof err);
    if (!m) die("%s", err);
    G->sync();
    printf("model: %d layers, int8 random weights made on the GPU in %.1f s\n", layers, now() - t0);
    mem_line("after weights");
    llm_lora *lo = llm_lora_new(&c, 16, 16, 0.05f, LLM_MODS_ATTN, 1);
    llm_trainer_opts o = {.recompute = 1, .seed = 1};
    llm_trainer *t = llm_trainer_new(m, lo, &o, err, sizeof err);
    if (!t) die("%s", err);
    int B = 4, L = 1024;
    int *tok = xmalloc((size_t)B * L * sizeof *tok);
    rng_t g;
    rng_init(&g, 1, 1);
    for (int i = 0; i < B * L; i++) tok[i] = 3 + (int)rng_below(&g, 31000);
    llm_example ex[4];
    for (int i = 0; i < B; i++) ex[i] = (llm_example){tok + (size_t)i * L, L, 1}; /* loss on every token */
    llm_param *p;
    int np = llm_trainer_params(t, &p);
    size_t nlora = 0;
    for (int i = 0; i < np; i++) nlora += p[i].n;
    llm_adamw *opt = llm_adamw_new(p, np);
    llm_adamw_opts h = {0.9f, 0.999f, 1e-8f, 0};
    llm_cuda_reset_peak();
    double best = 1e30, fb = 1e30, sum = 0;
    int steps = 4;
    for (int s = 0; s < steps; s++) {
        double loss;
        long ntg;
        G->sync();
        double a = now();
        llm_trainer_zero_grad(t);
        if (llm_trainer_run(t, ex, B, 1, 1.0f, (uint64_t)s + 1, NULL, &loss, &ntg, err, sizeof err) != 0) die("%s", err);
        G->sync();
        double b = now();
        llm_clip_grad(p, np, 1.0);
        llm_adamw_step(opt, p, np, &h, 1e-5f);
        double e = now();
        printf("step %d: loss %.4f, fwd+bwd %.3f s, optimiser (host) %.3f s\n", s, loss, b - a, e - b);
        fflush(stdout);
        if (s > 0) { /* the first step warms cuBLAS and the pool */
            if (e - a < best) best = e - a;
            if (b - a < fb) fb = b - a;
            sum += e - a;
        }
    }
    double T = (double)B * L, N = 0;
    for (int l = 0; l < layers; l++)
        for (int mod = 0; mod < LLM_N_MODS; mod++) {
            llm_weight *w = llm_layer_weight(&m->layers[l], mod);
            N += (double)w->rows * w->cols;
        }
    /* model FLOPs of a LoRA step: forward 2NT and input gradient 2NT through the frozen
     * linears, the classifier 4VCT, attention 6 L^2 C per sequence and layer (causal products
     * counted in full, as MFU conventions do); recomputation is not counted. */
    double flops = 4 * N * T + 4.0 * c.vocab_size * c.dim * T + 6.0 * L * L * c.dim * B * layers;
    double pk = peak_flops();
    printf("RESULT train layers=%d tokens_per_s=%.0f best_step_s=%.3f mean_step_s=%.3f fwdbwd_s=%.3f mfu=%.3f "
           "model_tflop=%.1f lora_params=%zu\n",
           layers, T / best, best, sum / (steps - 1), fb, flops / best / pk, flops / 1e12, nlora);
    mem_line("peak of the step");
    size_t used, peak;
    llm_cuda_mem_stats(&used, &peak, NULL, NULL);
    printf("RESULT train_peak_gib=%.2f activation_bytes_host_formula=%.2f GiB\n", peak / 1073741824.0,
           llm_trainer_activation_bytes(t, (int)T) / 1073741824.0);
    llm_adamw_free(opt);
    llm_trainer_free(t);
    llm_lora_free(lo);
    free(tok);
    llm_free(m);
}

static void gen_bench(int layers, int prompt, int new_tokens, const char *list) {
    llm_config c = cfg_7b(layers);
    char err[256];
    llm_model *m = llm_init_random_on(&c, G, 1, 0.02f, 2, err, sizeof err);
    if (!m) die("%s", err);
    int batches[16] = {1, 32, 128}, nbat = 3;
    if (list) { /* "1,32" */
        nbat = 0;
        for (const char *q = list; *q && nbat < 16; q += strcspn(q, ","), q += *q == ',') {
            batches[nbat] = atoi(q);
            if (batches[nbat] <= 0) die("gen-bench: bad batch list %s", list);
            nbat++;
        }
    }
    const char *su = getenv("ITREK_CUDA_SYNC_UPLOAD");
    const char *upl = su && su[0] && strcmp(su, "0") != 0 ? "sync" : "staged";
    for (int bi = 0; bi < nbat; bi++) {
        int nb = batches[bi];
        llm_request *r = xcalloc((size_t)nb, sizeof *r);
        int *ids = xmalloc((size_t)nb * prompt * sizeof *ids);
        for (int i = 0; i < nb * prompt; i++) ids[i] = 3 + (i * 7919) % 31000;
        for (int i = 0; i < nb; i++) r[i] = (llm_request){.prompt = ids + (size_t)i * prompt, .n_prompt = prompt};
        llm_sampling s = llm_sampling_default();
        s.stop_eos = 0;
        /* generate 1 token (prefill + one step), then new_tokens: the difference is the decode time */
        double tt[2];
        for (int k = 0; k < 2; k++) {
            s.max_new = k ? new_tokens : 1;
            if (k) for (int i = 0; i < nb; i++) free(r[i].out);
            G->sync();
            double a = now();
            if (llm_generate(m, r, nb, &s, nb, err, sizeof err) != 0) die("%s", err);
            G->sync();
            tt[k] = now() - a;
        }
        double all = tt[1], pf = tt[0], dec = all - pf;
        long ntok = 0;
        for (int i = 0; i < nb; i++) ntok += r[i].n_out - 1, free(r[i].out);
        printf("RESULT gen layers=%d batch=%d prompt=%d new=%d uploads=%s decode_tokens_per_s=%.1f total_s=%.2f "
               "prefill_and_first_s=%.2f\n",
               layers, nb, prompt, new_tokens, upl, dec > 0 ? (double)ntok / dec : 0, all, pf);
        mem_line("after generation");
        fflush(stdout);
        free(r), free(ids);
    }
    llm_free(m);
}

/* The two rates the floors in docs/gpu.md divide by: device-to-device copy bandwidth (bytes
 * read + written) and the product rate of the int8 -> bf16 tensor-core path (8192^3). */
static void roofline(void) {
    size_t n = (size_t)2 << 30;
    void *a = G->alloc(n), *b = G->alloc(n);
    G->zero(a, n);
    G->copy(b, a, n);
    G->sync();
    double t = now();
    for (int i = 0; i < 5; i++) G->copy(b, a, n);
    G->sync();
    double bw = 5.0 * 2 * (double)n / (now() - t);
    G->free(a), G->free(b);
    int K = 8192, N = 8192, T = 8192;
    llm_weight w = {.rows = N, .cols = K, .q = G->alloc((size_t)N * K), .scale = G->alloc((size_t)N * 4)};
    G->randomize(w.q, (size_t)N * K, 1, 0, 1);
    G->randomize(w.scale, (size_t)N, 4, 1e-3f, 2);
    float *x = G->alloc((size_t)T * K * 4), *y = G->alloc((size_t)T * N * 4);
    G->randomize(x, (size_t)T * K, 4, 1, 3);
    G->matmul(y, x, &w, T);
    G->sync();
    t = now();
    for (int i = 0; i < 5; i++) G->matmul(y, x, &w, T);
    G->sync();
    double fl = 5.0 * 2 * (double)T * N * K / (now() - t);
    printf("RESULT roofline copy_bandwidth_gbs=%.0f int8_bf16_matmul_tflops=%.1f\n", bw / 1e9, fl / 1e12);
    G->free(w.q), G->free(w.scale), G->free(x), G->free(y);
}

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    const char *mode = argc > 1 ? argv[1] : "check";
    char err[512];
    H = llm_backend_cpu();
    H->set_threads(4);
    G = llm_backend_cuda(err, sizeof err);
    if (!G) {
        printf("SKIP no GPU: %s\n", err);
        return 0;
    }
    char name[256];
    llm_cuda_device_name(name, sizeof name);
    printf("device: %s\n", name);
    if (strcmp(mode, "check") == 0) {
        check_kernels();
        check_forward(0);
        check_forward(1);
        check_train(0);
        check_train(1);
        printf("%s: %d failed\n", n_fail ? "FAILED" : "ALL PASSED", n_fail);
        return n_fail ? 1 : 0;
    }
    int layers = argc > 2 ? atoi(argv[2]) : 32;
    if (strcmp(mode, "roofline") == 0) roofline();
    else if (strcmp(mode, "train-bench") == 0) train_bench(layers);
    else if (strcmp(mode, "gen-bench") == 0)
        gen_bench(layers, argc > 3 ? atoi(argv[3]) : 128, argc > 4 ? atoi(argv[4]) : 128, argc > 5 ? argv[5] : NULL);
    else die("unknown mode %s", mode);
    return 0;
}
