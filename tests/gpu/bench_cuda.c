/* bench_cuda.c - the GPU benchmarks of test_cuda (train-bench, gen-bench, roofline; test_cuda.c
 * says what each measures). Built with test_cuda.c into one program by tests/gpu/run.sh. */
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
#include "test_cuda.h"

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


/* ---- where a training step's time goes (train-bench): PROF is a copy of the backend whose
 * compute members synchronise, time with the host clock and forward to the real ones. The
 * synchronisations add a few microseconds per call (a few percent of a 7B step, whose calls
 * take milliseconds); the table gives each operation's share and, for the products, the
 * rate it reached. */
enum { P_MATMUL, P_MATMUL_F32, P_MATMUL_DX, P_MATMUL_DX_F32, P_GEMM, P_GEMM_ACT, P_ATTN_TRAIN, P_ATTN_BWD,
       P_RMSNORM, P_RMSNORM_BWD, P_SWIGLU, P_SWIGLU_BWD, P_ROPE, P_ADD, P_ADD_ACT, P_F32_TO_ACT, P_XENT,
       P_DROPOUT, P_EMBED, P_COPY, P_ZERO, P_UPLOAD, P_DOWNLOAD, P_N };
static const char *const PNAME[P_N] = {
    "matmul (act out)", "matmul_f32 (logits)", "matmul_dx", "matmul_dx_f32 (classifier)", "gemm (fp32)",
    "gemm_act (LoRA)", "attention_train", "attention_backward", "rmsnorm", "rmsnorm_backward", "swiglu",
    "swiglu_backward", "rope", "add", "add_act", "f32_to_act", "xent", "dropout", "embed", "copy", "zero",
    "upload", "download"};
static double ptime[P_N], pflop[P_N];
static long pcalls[P_N];
static const llm_backend *PREAL;
static llm_backend PROF;
#define PB double pa_ = (PREAL->sync(), now())
#define PE(i, fl) (PREAL->sync(), ptime[i] += now() - pa_, pflop[i] += (fl), pcalls[i]++)
static double wflop(const llm_weight *w, int T) { return 2.0 * T * w->rows * w->cols; }
static void p_matmul(llm_act y, llm_cact x, const llm_weight *w, int T) { PB; PREAL->matmul(y, x, w, T); PE(P_MATMUL, wflop(w, T)); }
static void p_matmul_f32(float *y, llm_cact x, const llm_weight *w, int T) { PB; PREAL->matmul_f32(y, x, w, T); PE(P_MATMUL_F32, wflop(w, T)); }
static void p_matmul_dx(llm_act dx, llm_cact dy, const llm_weight *w, int T, int acc) { PB; PREAL->matmul_dx(dx, dy, w, T, acc); PE(P_MATMUL_DX, wflop(w, T)); }
static void p_matmul_dx_f32(float *dx, const float *dy, const llm_weight *w, int T, int acc) { PB; PREAL->matmul_dx_f32(dx, dy, w, T, acc); PE(P_MATMUL_DX_F32, wflop(w, T)); }
static void p_gemm(int ta, int tb, int M, int N, int K, float al, const float *A, int lda, const float *B, int ldb, float be,
                   float *C, int ldc) { PB; PREAL->gemm(ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc); PE(P_GEMM, 2.0 * M * N * K); }
static void p_gemm_act(int act, int ta, int tb, int M, int N, int K, float al, llm_cact A, int lda, llm_cact B, int ldb,
                       float be, llm_act C, int ldc) { PB; PREAL->gemm_act(act, ta, tb, M, N, K, al, A, lda, B, ldb, be, C, ldc); PE(P_GEMM_ACT, 2.0 * M * N * K); }
static void p_attn_train(const llm_train_attn *a) { PB; PREAL->attention_train(a); PE(P_ATTN_TRAIN, 0); }
static void p_attn_bwd(const llm_train_attn *a) { PB; PREAL->attention_backward(a); PE(P_ATTN_BWD, 0); }
static void p_rmsnorm(llm_act y, const float *x, const float *w, int T, int C, float eps) { PB; PREAL->rmsnorm(y, x, w, T, C, eps); PE(P_RMSNORM, 0); }
static void p_rmsnorm_bwd(float *dx, float *dw, llm_cact dy, const float *x, const float *w, int T, int C, float eps) { PB; PREAL->rmsnorm_backward(dx, dw, dy, x, w, T, C, eps); PE(P_RMSNORM_BWD, 0); }
static void p_swiglu(llm_act g, llm_cact u, size_t n) { PB; PREAL->swiglu(g, u, n); PE(P_SWIGLU, 0); }
static void p_swiglu_bwd(llm_act dg, llm_act du, llm_cact dh, llm_cact g, llm_cact u, size_t n) { PB; PREAL->swiglu_backward(dg, du, dh, g, u, n); PE(P_SWIGLU_BWD, 0); }
static void p_rope(llm_act x, const int *pos, int T, int nh, int hd, float th) { PB; PREAL->rope(x, pos, T, nh, hd, th); PE(P_ROPE, 0); }
static void p_add(float *y, llm_cact x, size_t n) { PB; PREAL->add(y, x, n); PE(P_ADD, 0); }
static void p_add_act(llm_act y, llm_cact x, size_t n) { PB; PREAL->add_act(y, x, n); PE(P_ADD_ACT, 0); }
static void p_f32_to_act(llm_act d, const float *s_, size_t n) { PB; PREAL->f32_to_act(d, s_, n); PE(P_F32_TO_ACT, 0); }
static void p_xent(float *lg, const int *tgt, int nr, int V, float gs, int bw, float *loss) { PB; PREAL->xent(lg, tgt, nr, V, gs, bw, loss); PE(P_XENT, 0); }
static void p_dropout(llm_act d, llm_cact s_, size_t n, float pr, uint64_t seed, uint64_t st) { PB; PREAL->dropout(d, s_, n, pr, seed, st); PE(P_DROPOUT, 0); }
static void p_embed(float *x, const float *tab, const int *tok, int T, int C) { PB; PREAL->embed(x, tab, tok, T, C); PE(P_EMBED, 0); }
static void p_copy(void *d, const void *s_, size_t n) { PB; PREAL->copy(d, s_, n); PE(P_COPY, 0); }
static void p_zero(void *d, size_t n) { PB; PREAL->zero(d, n); PE(P_ZERO, 0); }
static void p_upload(void *d, const void *s_, size_t n) { PB; PREAL->upload(d, s_, n); PE(P_UPLOAD, 0); }
static void p_download(void *d, const void *s_, size_t n) { PB; PREAL->download(d, s_, n); PE(P_DOWNLOAD, 0); }

static const llm_backend *prof_backend(const llm_backend *real) {
    PREAL = real;
    PROF = *real;
    PROF.matmul = p_matmul, PROF.matmul_f32 = p_matmul_f32, PROF.matmul_dx = p_matmul_dx;
    PROF.matmul_dx_f32 = p_matmul_dx_f32, PROF.gemm = p_gemm, PROF.gemm_act = p_gemm_act;
    PROF.attention_train = p_attn_train, PROF.attention_backward = p_attn_bwd, PROF.rmsnorm = p_rmsnorm;
    PROF.rmsnorm_backward = p_rmsnorm_bwd, PROF.swiglu = p_swiglu, PROF.swiglu_backward = p_swiglu_bwd;
    PROF.rope = p_rope, PROF.add = p_add, PROF.add_act = p_add_act, PROF.f32_to_act = p_f32_to_act;
    PROF.xent = p_xent, PROF.dropout = p_dropout, PROF.embed = p_embed, PROF.copy = p_copy, PROF.zero = p_zero;
    PROF.upload = p_upload, PROF.download = p_download;
    return &PROF;
}

static void prof_print(double step_s) {
    double sum = 0;
    for (int i = 0; i < P_N; i++) sum += ptime[i];
    printf("profile of one step (synchronised calls): %.3f s in the calls below, %.3f s in all\n", sum, step_s);
    printf("  %-28s %8s %7s %6s %8s\n", "operation", "calls", "s", "share", "TFLOP/s");
    for (int i = 0; i < P_N; i++) {
        if (!pcalls[i]) continue;
        char rate[32] = "";
        if (pflop[i] > 0) snprintf(rate, sizeof rate, "%.1f", pflop[i] / ptime[i] / 1e12);
        printf("  %-28s %8ld %7.3f %5.1f%% %8s\n", PNAME[i], pcalls[i], ptime[i], 100 * ptime[i] / step_s, rate);
        printf("RESULT prof op=%s calls=%ld s=%.4f\n", PNAME[i], pcalls[i], ptime[i]);
    }
}

void train_bench(int layers) {
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
    printf("RESULT %s layers=%d tokens_per_s=%.0f best_step_s=%.3f mean_step_s=%.3f fwdbwd_s=%.3f mfu=%.3f "
           "model_tflop=%.1f lora_params=%zu\n",
           llm_cuda_attention_path(-1) == 1 ? "train-warp" : "train", layers, T / best, best, sum / (steps - 1), fb, flops / best / pk, flops / 1e12, nlora);
    mem_line("peak of the step");
    size_t used, peak;
    llm_cuda_mem_stats(&used, &peak, NULL, NULL);
    printf("RESULT train_peak_gib=%.2f activation_bytes_host_formula=%.2f GiB\n", peak / 1073741824.0,
           llm_trainer_activation_bytes(t, (int)T) / 1073741824.0);
    llm_adamw_free(opt);
    llm_trainer_free(t);
    /* the profile: a trainer on the timing copy of the backend; one step to warm it, one timed */
    m->be = prof_backend(G);
    if (!(t = llm_trainer_new(m, lo, &o, err, sizeof err))) die("%s", err);
    for (int s = 0; s < 2; s++) {
        double loss;
        long ntg;
        memset(ptime, 0, sizeof ptime), memset(pflop, 0, sizeof pflop), memset(pcalls, 0, sizeof pcalls);
        G->sync();
        double a = now();
        llm_trainer_zero_grad(t);
        if (llm_trainer_run(t, ex, B, 1, 1.0f, 9, NULL, &loss, &ntg, err, sizeof err) != 0) die("%s", err);
        G->sync();
        if (s == 1) prof_print(now() - a);
    }
    llm_trainer_free(t);
    m->be = G;
    llm_lora_free(lo);
    free(tok);
    llm_free(m);
}

/* graphs: "off", "on" or "both" (llm_decode_step's CUDA graphs; "both" times each batch size
 * without and then with them, on the same model) */
void gen_bench(int layers, int prompt, int new_tokens, const char *list, const char *graphs) {
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
    int g0 = strcmp(graphs, "on") == 0, g1 = strcmp(graphs, "off") == 0 ? 0 : 1;
    if (!g0 && !g1 && strcmp(graphs, "off") != 0) die("gen-bench: graphs must be off, on or both, not %s", graphs);
    int nmode = g1 - g0 + 1;
    for (int job = 0; job < nbat * nmode; job++) { /* each batch size, graphs off then on */
        int nb = batches[job / nmode], gr = g0 + job % nmode;
        llm_decode_graphs(m, gr);
        long e0, c0, r0;
        llm_decode_graph_stats(m, &e0, &c0, &r0);
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
        long eager, capt, repl;
        llm_decode_graph_stats(m, &eager, &capt, &repl);
        printf("RESULT gen layers=%d batch=%d prompt=%d new=%d uploads=%s graphs=%s decode_tokens_per_s=%.1f "
               "total_s=%.2f prefill_and_first_s=%.2f graph_steps_eager=%ld captured=%ld replayed=%ld\n",
               layers, nb, prompt, new_tokens, upl, gr ? "on" : "off", dec > 0 ? (double)ntok / dec : 0, all, pf,
               eager - e0, capt - c0, repl - r0);
        mem_line("after generation");
        fflush(stdout);
        free(r), free(ids);
    }
    llm_free(m);
}

/* The two rates the floors in docs/gpu.md divide by: device-to-device copy bandwidth (bytes
 * read + written) and the product rate of the int8 -> bf16 tensor-core path (8192^3). */
void roofline(void) {
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
    void *x = G->alloc(llm_act_nbytes(G, (size_t)T * K)), *y = G->alloc(llm_act_nbytes(G, (size_t)T * N));
    G->randomize(x, (size_t)T * K, G->act_bytes, 1, 3); /* activations */
    G->matmul(y, x, &w, T);
    G->sync();
    t = now();
    for (int i = 0; i < 5; i++) G->matmul(y, x, &w, T);
    G->sync();
    double fl = 5.0 * 2 * (double)T * N * K / (now() - t);
    printf("RESULT roofline copy_bandwidth_gbs=%.0f int8_bf16_matmul_tflops=%.1f\n", bw / 1e9, fl / 1e12);
    G->free(w.q), G->free(w.scale), G->free(x), G->free(y);
}
