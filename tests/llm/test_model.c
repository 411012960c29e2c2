/* test_model.c - stories260K against run.c's reference (via the Hugging Face conversion,
 * GGUF and the llama2.c file), int8 tolerance, batching, prefix sharing, sampling and
 * continuation scoring. */
#include "../unit/harness.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llm/convert.h"
#include "llm/generate.h"
#include "llm/model.h"

static char dir[256], err[1024];
static const int REF[200] = {
    403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411,
    322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335,
    312, 432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310, 439, 419, 357, 336, 432, 313, 438, 310, 432, 278, 316,
    439, 419, 298, 414, 267, 265, 282, 295, 433, 426, 436, 317, 286, 296, 418, 269, 279, 292, 416, 439, 413, 409, 416, 327, 263,
    415, 294, 267, 400, 426, 338, 336, 432, 313, 442, 391, 267, 337, 335, 364, 420, 268, 388, 432, 398, 359, 280, 303, 439, 413,
    272, 417, 264, 312, 426, 436, 13,  438, 310, 286, 296, 418, 269, 279, 292, 416, 439, 413, 409, 416, 327, 263, 415, 294, 267,
    400, 426, 338, 336, 432, 313, 442, 439, 423, 262, 304, 420, 422, 432, 317, 426, 359, 279, 292, 416, 439, 413, 409, 416, 327,
    263, 415, 294, 267, 400, 426, 436, 13,  438, 310, 279, 292, 416, 439, 413, 391, 267, 281, 421, 427, 311, 357, 432, 384, 358};

#define V 512

static const char *shared_dir(void) { return getenv("SHARED") ? getenv("SHARED") : "/work/shared"; }

static llm_model *load(const char *path, int int8) {
    llm_load_opts o = {.int8 = int8, .threads = 2};
    llm_model *m = llm_load(path, &o, err, sizeof err);
    if (!m) printf("# load %s: %s\n", path, err);
    return m;
}

/* Teacher-forced logits of tokens (n) from scratch: out (n, V). */
static int logits_all(llm_model *m, const int *tok, int n, float *out) {
    llm_seq *s = llm_seq_new(m);
    llm_batch b = {s, tok, n, LLM_LOGITS_ALL, out};
    int rc = llm_forward(m, &b, 1, err, sizeof err);
    llm_seq_free(s);
    return rc;
}

static void check_reference(const char *name, llm_model *m) {
    char nm[128];
    float lg[2 * V];
    int in[2] = {1, 403};
    snprintf(nm, sizeof nm, "%s forward", name);
    CHECK(nm, m && logits_all(m, in, 2, lg) == 0);
    if (!m) return;
    const double p0[6] = {-6.222911, 8.404342, -6.223737, -6.222542, -6.221951, -6.222875};
    const double p1[6] = {-9.589458, 3.841276, -9.590532, -9.589193, -9.588642, -9.590147};
    double sum = 0, maxrel = 0;
    for (int i = 0; i < V; i++) sum += lg[i];
    for (int i = 0; i < 6; i++) {
        maxrel = fmax(maxrel, fabs(lg[i] - p0[i]) / fabs(p0[i]));
        maxrel = fmax(maxrel, fabs(lg[V + i] - p1[i]) / fabs(p1[i]));
    }
    maxrel = fmax(maxrel, fabs(lg[403] - 17.023516) / 17.023516);
    maxrel = fmax(maxrel, fabs(lg[V + 407] - 18.459986) / 18.459986);
    printf("# %s: max relative logit error vs run.c %.3g, sum %.6f (ref -1070.171674)\n", name, maxrel, sum);
    snprintf(nm, sizeof nm, "%s logits pos0/pos1 within 1e-4", name);
    CHECK(nm, maxrel < 1e-4);
    snprintf(nm, sizeof nm, "%s logit sum pos0", name);
    CHECK_NEAR(nm, sum, -1070.171674, 1e-5);
    int a0 = 0, a1 = 0;
    for (int i = 0; i < V; i++) { if (lg[i] > lg[a0]) a0 = i; if (lg[V + i] > lg[V + a1]) a1 = i; }
    snprintf(nm, sizeof nm, "%s argmax", name);
    CHECK(nm, a0 == 403 && a1 == 407);
    /* greedy 200 from BOS */
    llm_sampling s = llm_sampling_default();
    s.max_new = 200;
    s.stop_eos = 0;
    int bos = 1;
    llm_request r = {.prompt = &bos, .n_prompt = 1};
    snprintf(nm, sizeof nm, "%s greedy 200 ids", name);
    CHECK(nm, llm_generate(m, &r, 1, &s, 1, err, sizeof err) == 0 && r.n_out == 200 && memcmp(r.out, REF, sizeof REF) == 0);
    free(r.out);
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - b[i]));
    return d;
}

static void test_int8(llm_model *m, llm_model *q) {
    /* teacher-forced over BOS + the first 63 reference ids */
    int tok[64];
    tok[0] = 1;
    memcpy(tok + 1, REF, 63 * sizeof *tok);
    float *a = malloc(64 * V * sizeof *a), *b = malloc(64 * V * sizeof *b);
    CHECK("int8 forward", logits_all(m, tok, 64, a) == 0 && logits_all(q, tok, 64, b) == 0);
    double d = max_abs_diff(a, b, 64 * V), scale = 0, mean = 0;
    for (int i = 0; i < 64 * V; i++) mean += fabs((double)a[i] - b[i]) / (64 * V);
    int agree = 0;
    for (int t = 0; t < 64; t++) {
        int x = 0, y = 0;
        for (int i = 0; i < V; i++) { if (a[t * V + i] > a[t * V + x]) x = i; if (b[t * V + i] > b[t * V + y]) y = i; scale = fmax(scale, fabs(a[t * V + i])); }
        agree += x == y;
    }
    printf("# int8 vs fp32 over 64 positions: max |logit diff| %.4f, mean %.4f (max |logit| %.2f), argmax agrees %d/64\n",
           d, mean, scale, agree);
    CHECK("int8 logits within 0.4 absolute of fp32", d < 0.4);
    CHECK("int8 logits mean difference below 0.08", mean < 0.08);
    CHECK("int8 argmax agrees on >= 62/64 positions", agree >= 62);
    llm_sampling sg = llm_sampling_default();
    sg.max_new = 200;
    sg.stop_eos = 0;
    llm_request rq = {.prompt = tok, .n_prompt = 1};
    llm_generate(q, &rq, 1, &sg, 1, err, sizeof err);
    int same = 0;
    while (same < rq.n_out && rq.out[same] == REF[same]) same++;
    printf("# int8 greedy from BOS follows the fp32 reference for %d of 200 tokens\n", same);
    free(rq.out);
    /* int8 prefill (sgemm on dequantised blocks) and decode (dot products) agree */
    llm_seq *s = llm_seq_new(q);
    int ok = 1;
    for (int t = 0; t < 8; t++) {
        float lg[V];
        llm_batch bt = {s, tok + t, 1, LLM_LOGITS_LAST, lg};
        ok &= llm_forward(q, &bt, 1, err, sizeof err) == 0 && max_abs_diff(lg, b + t * V, V) < 1e-4;
    }
    CHECK("int8 decode equals int8 prefill", ok);
    llm_seq_free(s);
    free(a);
    free(b);
}

static void test_batch(llm_model *m) {
    /* three sequences of lengths 5, 17, 1 in one batch vs each alone */
    int lens[3] = {5, 17, 1}, offs[3] = {0, 40, 100};
    float *alone = malloc(23 * V * sizeof(float)), *tog = malloc(23 * V * sizeof(float));
    llm_seq *s[3];
    llm_batch b[3];
    int pos = 0;
    for (int i = 0; i < 3; i++) {
        logits_all(m, REF + offs[i], lens[i], alone + pos * V);
        s[i] = llm_seq_new(m);
        b[i] = (llm_batch){s[i], REF + offs[i], lens[i], LLM_LOGITS_ALL, tog + pos * V};
        pos += lens[i];
    }
    CHECK("batch forward", llm_forward(m, b, 3, err, sizeof err) == 0);
    double d = max_abs_diff(alone, tog, 23 * (size_t)V);
    printf("# batch of 3 vs alone: max |diff| %.3g\n", d);
    CHECK("batch of different lengths equals each alone", d < 1e-4);
    /* mixed step: seq0 decodes 1 token while a new seq prefills 9, vs alone */
    llm_seq *n = llm_seq_new(m);
    float l0[V], ln[9 * V], r0[V], rn[9 * V];
    llm_batch mb[2] = {{s[0], REF + 5, 1, LLM_LOGITS_LAST, l0}, {n, REF + 60, 9, LLM_LOGITS_ALL, ln}};
    CHECK("mixed prefill+decode forward", llm_forward(m, mb, 2, err, sizeof err) == 0);
    logits_all(m, REF + 60, 9, rn);
    float six[6 * V];
    logits_all(m, REF, 6, six);
    memcpy(r0, six + 5 * V, sizeof r0);
    CHECK("mixed batch equals alone", max_abs_diff(l0, r0, V) < 1e-4 && max_abs_diff(ln, rn, 9 * V) < 1e-4);
    CHECK("seq lengths", llm_seq_len(s[0]) == 6 && llm_seq_len(n) == 9 && llm_seq_len(s[2]) == 1);
    /* errors */
    int badtok = V;
    llm_batch e1 = {n, &badtok, 1, LLM_LOGITS_LAST, NULL};
    CHECK("bad token id rejected", llm_forward(m, &e1, 1, err, sizeof err) != 0 && strstr(err, "vocabulary"));
    llm_batch e2[2] = {{n, REF, 1, 0, NULL}, {n, REF, 1, 0, NULL}};
    CHECK("same sequence twice rejected", llm_forward(m, e2, 2, err, sizeof err) != 0);
    int *big = calloc(600, sizeof *big);
    llm_batch e3 = {n, big, 600, 0, NULL};
    CHECK("context overflow rejected", llm_forward(m, &e3, 1, err, sizeof err) != 0 && strstr(err, "context"));
    CHECK("failed forward leaves the sequence", llm_seq_len(n) == 9);
    free(big);
    for (int i = 0; i < 3; i++) llm_seq_free(s[i]);
    llm_seq_free(n);
    free(alone);
    free(tog);
}

static void test_prefix(llm_model *m) {
    /* prefix = BOS + 20 ids; children add 7 and 3 tokens; a grandchild adds 4 more */
    int full[40];
    full[0] = 1;
    memcpy(full + 1, REF, 39 * sizeof *full);
    float *ref = malloc(40 * V * sizeof *ref);
    logits_all(m, full, 32, ref);
    llm_seq *p = llm_seq_new(m);
    llm_batch pb = {p, full, 21, LLM_LOGITS_LAST, NULL};
    CHECK("prefix forward", llm_forward(m, &pb, 1, err, sizeof err) == 0);
    llm_seq *a = llm_seq_fork(p), *b = llm_seq_fork(p), *d = llm_seq_fork(p);
    float ld[11 * V];
    llm_batch db = {d, full + 21, 11, LLM_LOGITS_ALL, ld}; /* >= 8 tokens: the sgemm attention path over spans */
    CHECK("long child over shared prefix equals no sharing",
          llm_forward(m, &db, 1, err, sizeof err) == 0 && max_abs_diff(ld, ref + 21 * V, 11 * V) < 1e-4);
    llm_seq *e = llm_seq_fork(d);
    float le[8 * V];
    int f8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    llm_batch eb = {e, f8, 8, LLM_LOGITS_ALL, le};
    int fe[40];
    memcpy(fe, full, 32 * sizeof(int));
    memcpy(fe + 32, f8, sizeof f8);
    float *re = malloc(40 * V * sizeof *re);
    logits_all(m, fe, 40, re);
    CHECK("long grandchild over two spans equals no sharing",
          llm_forward(m, &eb, 1, err, sizeof err) == 0 && max_abs_diff(le, re + 32 * V, 8 * V) < 1e-4);
    free(re);
    llm_seq_free(e);
    llm_seq_free(d);
    CHECK("fork keeps prefix logits", llm_seq_logits(a) && max_abs_diff(llm_seq_logits(a), ref + 20 * V, V) < 1e-4);
    llm_seq_free(p); /* children keep it alive */
    float la[7 * V], lb[3 * V], lc[4 * V];
    int other[3] = {300, 301, 302};
    llm_batch cb[2] = {{a, full + 21, 7, LLM_LOGITS_ALL, la}, {b, other, 3, LLM_LOGITS_ALL, lb}};
    CHECK("children forward", llm_forward(m, cb, 2, err, sizeof err) == 0);
    CHECK("shared prefix equals no sharing", max_abs_diff(la, ref + 21 * V, 7 * V) < 1e-4);
    int fb[24];
    memcpy(fb, full, 21 * sizeof *fb);
    memcpy(fb + 21, other, sizeof other);
    float rb[24 * V];
    logits_all(m, fb, 24, rb);
    CHECK("second child independent of the first", max_abs_diff(lb, rb + 21 * V, 3 * V) < 1e-4);
    llm_seq *c = llm_seq_fork(a); /* grandchild: spans prefix, a's own, its own */
    llm_batch gb = {c, full + 28, 4, LLM_LOGITS_ALL, lc};
    CHECK("grandchild forward", llm_forward(m, &gb, 1, err, sizeof err) == 0 && llm_seq_len(c) == 32);
    CHECK("grandchild equals no sharing", max_abs_diff(lc, ref + 28 * V, 4 * V) < 1e-4);
    /* a parent that keeps growing after the fork does not disturb its child */
    llm_batch ga = {a, other, 2, LLM_LOGITS_NONE, NULL};
    llm_forward(m, &ga, 1, err, sizeof err);
    float lc2[V];
    int nxt = full[32];
    llm_batch gc = {c, &nxt, 1, LLM_LOGITS_LAST, lc2};
    float r33[33 * V];
    logits_all(m, full, 33, r33);
    CHECK("child unaffected by parent growth", llm_forward(m, &gc, 1, err, sizeof err) == 0 && max_abs_diff(lc2, r33 + 32 * V, V) < 1e-4);
    llm_seq_free(a);
    llm_seq_free(b);
    llm_seq_free(c);
    free(ref);
}

static void test_generate(llm_model *m) {
    llm_sampling s = llm_sampling_default();
    s.max_new = 20;
    /* 5 requests with prompts of different lengths: batch 2 (slots reused) vs one at a time */
    int lens[5] = {1, 4, 9, 2, 13};
    int prompts[5][16];
    llm_request r1[5], r2[5];
    for (int i = 0; i < 5; i++) {
        prompts[i][0] = 1;
        memcpy(prompts[i] + 1, REF + 10 * i, (size_t)(lens[i] - 1) * sizeof(int));
        r1[i] = r2[i] = (llm_request){.prompt = prompts[i], .n_prompt = lens[i]};
    }
    CHECK("generate batch 2", llm_generate(m, r1, 5, &s, 2, err, sizeof err) == 0);
    CHECK("generate one at a time", llm_generate(m, r2, 5, &s, 1, err, sizeof err) == 0);
    int same = 1;
    for (int i = 0; i < 5; i++) same &= r1[i].n_out == r2[i].n_out && memcmp(r1[i].out, r2[i].out, (size_t)r1[i].n_out * sizeof(int)) == 0;
    CHECK("batched greedy equals one at a time", same);
    CHECK("greedy from BOS equals reference", r1[0].n_out == 20 && memcmp(r1[0].out, REF, 20 * sizeof(int)) == 0);
    for (int i = 0; i < 5; i++) { free(r1[i].out); free(r2[i].out); }

    /* prefix sharing through llm_generate: prefix BOS+REF[0..9], prompts empty or 2 tokens */
    int pre[11];
    pre[0] = 1;
    memcpy(pre + 1, REF, 10 * sizeof(int));
    llm_seq *p = llm_seq_new(m);
    llm_batch pb = {p, pre, 11, LLM_LOGITS_LAST, NULL};
    llm_forward(m, &pb, 1, err, sizeof err);
    int suf[2] = {REF[10], REF[11]}, fullp[13];
    memcpy(fullp, pre, sizeof pre);
    memcpy(fullp + 11, suf, sizeof suf);
    llm_request a[2] = {{.prefix = p, .prompt = NULL, .n_prompt = 0}, {.prefix = p, .prompt = suf, .n_prompt = 2}};
    llm_request b[2] = {{.prompt = pre, .n_prompt = 11}, {.prompt = fullp, .n_prompt = 13}};
    CHECK("generate with prefix", llm_generate(m, a, 2, &s, 2, err, sizeof err) == 0);
    llm_generate(m, b, 2, &s, 2, err, sizeof err);
    CHECK("prefix generation equals full prompts", a[0].n_out == b[0].n_out && a[1].n_out == b[1].n_out &&
                                                       memcmp(a[0].out, b[0].out, (size_t)a[0].n_out * sizeof(int)) == 0 &&
                                                       memcmp(a[1].out, b[1].out, (size_t)a[1].n_out * sizeof(int)) == 0);
    CHECK("prefix generation continues the reference", memcmp(a[0].out, REF + 10, 10 * sizeof(int)) == 0);
    CHECK("prefix untouched", llm_seq_len(p) == 11);
    for (int i = 0; i < 2; i++) { free(a[i].out); free(b[i].out); }
    llm_seq_free(p);

    /* seeded sampling */
    s.temperature = 1.0f;
    s.top_k = 40;
    s.top_p = 0.95f;
    s.max_new = 40;
    s.seed = 7;
    int bos = 1;
    llm_request x[3] = {{.prompt = &bos, .n_prompt = 1}, {.prompt = &bos, .n_prompt = 1}, {.prompt = &bos, .n_prompt = 1}};
    llm_request y[3] = {{.prompt = &bos, .n_prompt = 1}, {.prompt = &bos, .n_prompt = 1}, {.prompt = &bos, .n_prompt = 1}};
    llm_generate(m, x, 3, &s, 3, err, sizeof err);
    llm_generate(m, y, 3, &s, 1, err, sizeof err);
    int rep = 1;
    for (int i = 0; i < 3; i++) rep &= x[i].n_out == y[i].n_out && memcmp(x[i].out, y[i].out, (size_t)x[i].n_out * sizeof(int)) == 0;
    CHECK("seeded sampling reproducible (any batch size)", rep);
    CHECK("streams differ between requests", x[0].n_out != x[1].n_out || memcmp(x[0].out, x[1].out, (size_t)x[0].n_out * sizeof(int)) != 0);
    s.seed = 8;
    llm_request z = {.prompt = &bos, .n_prompt = 1};
    llm_generate(m, &z, 1, &s, 1, err, sizeof err);
    CHECK("another seed gives another sample", z.n_out != x[0].n_out || memcmp(z.out, x[0].out, (size_t)z.n_out * sizeof(int)) != 0);
    free(z.out);
    for (int i = 0; i < 3; i++) { free(x[i].out); free(y[i].out); }
    /* max_new and EOS */
    s = llm_sampling_default();
    s.max_new = 3;
    llm_request w = {.prompt = &bos, .n_prompt = 1};
    llm_generate(m, &w, 1, &s, 1, err, sizeof err);
    CHECK("max_new respected", w.n_out == 3 && !w.stopped_eos);
    free(w.out);
}

static void test_sampler(void) {
    float lg[4] = {0.0f, 1.0f, 2.0f, 0.5f};
    llm_sampling s = llm_sampling_default();
    rng_t r;
    rng_init(&r, 1, 0);
    CHECK("sampler greedy", llm_sample(lg, 4, &s, &r) == 2);
    s.temperature = 1;
    s.top_k = 1;
    CHECK("sampler top-k 1 is greedy", llm_sample(lg, 4, &s, &r) == 2);
    s.top_k = 0;
    s.top_p = 0.01f;
    CHECK("sampler tiny top-p is greedy", llm_sample(lg, 4, &s, &r) == 2);
    s.top_p = 1;
    int cnt[4] = {0};
    for (int i = 0; i < 20000; i++) cnt[llm_sample(lg, 4, &s, &r)]++;
    double z = exp(0) + exp(1) + exp(2) + exp(0.5), ok = 1;
    for (int i = 0; i < 4; i++) ok = ok && fabs(cnt[i] / 20000.0 - exp(lg[i]) / z) < 0.015;
    CHECK("sampler frequencies follow softmax", ok);
    s.top_k = 2;
    int only = 1;
    for (int i = 0; i < 2000; i++) { int t = llm_sample(lg, 4, &s, &r); only &= t == 1 || t == 2; }
    CHECK("sampler top-k 2 keeps the two best", only);
    s.top_k = 0;
    s.top_p = 0.7f; /* p(2)=0.574, p(1)=0.211: the nucleus is {2, 1} */
    only = 1;
    for (int i = 0; i < 2000; i++) { int t = llm_sample(lg, 4, &s, &r); only &= t == 1 || t == 2; }
    CHECK("sampler top-p keeps the nucleus", only);
}

static void test_score(llm_model *m) {
    int prompt[6] = {1, 403, 407, 261, 378, 432};
    int c0[1] = {383}, c1[3] = {383, 286, 261}, c2[2] = {13, 2}, c3[1] = {0};
    const int *conts[5] = {c0, c1, c2, c3, c0};
    int ns[5] = {1, 3, 2, 1, 0};
    double lp[5];
    CHECK("score", llm_score(m, NULL, prompt, 6, conts, ns, 5, lp, err, sizeof err) == 0);
    /* reference: teacher-forced logits over prompt + continuation */
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        int seq[16];
        memcpy(seq, prompt, sizeof prompt);
        memcpy(seq + 6, conts[i], (size_t)ns[i] * sizeof(int));
        float *lg = malloc((size_t)(6 + ns[i]) * V * sizeof *lg);
        logits_all(m, seq, 6 + ns[i], lg);
        double want = 0;
        for (int j = 0; j < ns[i]; j++) want += llm_log_softmax_at(lg + (size_t)(5 + j) * V, V, conts[i][j]);
        if (fabs(want - lp[i]) > 1e-4 * fmax(1, fabs(want))) { ok = 0; printf("# score %d: %g vs %g\n", i, lp[i], want); }
        free(lg);
    }
    CHECK("score equals summed log-softmax of teacher-forced logits", ok);
    CHECK("score of empty continuation is 0", lp[4] == 0);
    CHECK("greedy continuation scores higher", lp[0] > lp[3]);
    /* with a shared prefix: prefix = first 4 tokens, prompt = last 2 */
    llm_seq *p = llm_seq_new(m);
    llm_batch pb = {p, prompt, 4, LLM_LOGITS_NONE, NULL};
    llm_forward(m, &pb, 1, err, sizeof err);
    double lq[5];
    CHECK("score with prefix", llm_score(m, p, prompt + 4, 2, conts, ns, 5, lq, err, sizeof err) == 0);
    double d = 0;
    for (int i = 0; i < 5; i++) d = fmax(d, fabs(lq[i] - lp[i]));
    CHECK("score with prefix equals without", d < 1e-4);
    CHECK("score leaves the prefix", llm_seq_len(p) == 4);
    int bad[1] = {9999};
    const int *bc[1] = {bad};
    int bn[1] = {1};
    CHECK("score rejects bad ids", llm_score(m, NULL, prompt, 6, bc, bn, 1, lq, err, sizeof err) != 0);
    llm_seq_free(p);
}

int main(void) {
    snprintf(dir, sizeof dir, "%s/llmmodel.XXXXXX", getenv("TMPROOT") ? getenv("TMPROOT") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    char bin[512], tok[512], gguf[512], hf[600];
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", shared_dir());
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", shared_dir());
    snprintf(gguf, sizeof gguf, "%s/models/stories260K-gguf/stories260K.gguf", shared_dir());
    snprintf(hf, sizeof hf, "%s/hf", dir);
    int conv = llm_convert_llama2c(bin, tok, hf, err, sizeof err);
    if (conv) printf("# convert: %s\n", err);
    CHECK("convert llama2c to Hugging Face", conv == 0);
    llm_model *m = load(hf, 0);
    CHECK("load HF", m != NULL);
    CHECK("HF has tokenizer", m && m->tok != NULL);
    check_reference("HF", m);
    llm_model *g = load(gguf, 0);
    check_reference("GGUF", g);
    llm_free(g);
    llm_model *l = load(bin, 0);
    check_reference("llama2c", l);
    llm_free(l);
    if (!m) return 1;
    llm_model *q = load(hf, 1);
    CHECK("load int8", q && q->int8);
    if (q) test_int8(m, q);
    llm_model *qg = load(gguf, 1);
    if (qg && q) {
        float a[V], b[V];
        int t1 = 1;
        logits_all(q, &t1, 1, a);
        logits_all(qg, &t1, 1, b);
        CHECK("int8 from GGUF equals int8 from HF", max_abs_diff(a, b, V) < 1e-4);
    }
    llm_free(qg);
    llm_free(q);
    test_batch(m);
    test_prefix(m);
    test_generate(m);
    test_sampler();
    test_score(m);
    llm_set_threads(m, 1);
    float a1[64 * V], a2[64 * V];
    int t64[64];
    t64[0] = 1;
    memcpy(t64 + 1, REF, 63 * sizeof(int));
    logits_all(m, t64, 64, a1);
    logits_all(m, t64, 64, a2);
    CHECK("forward deterministic", memcmp(a1, a2, sizeof a1) == 0);
    llm_free(m);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return 1;
    return 0;
}
