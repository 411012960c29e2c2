/* test_train.c - optimiser, schedule, clipping, data preparation (truncation, loss masks,
 * packing, validation split) and a short training run whose loss must fall. */
#include "../unit/harness.h"

#include <stdlib.h>
#include <string.h>

#include "llm/convert.h"
#include "llm/optim.h"
#include "llm/trainrun.h"

static char err[1024];

static void test_adamw(void) {
    /* two parameters, two steps, against torch.optim.AdamW's formulas computed by hand */
    float w[2] = {1.0f, -2.0f}, g[2] = {0.5f, -0.25f}, wn[1] = {3.0f}, gn[1] = {1.0f};
    llm_param p[2] = {{.w = w, .g = g, .n = 2, .decay = 1}, {.w = wn, .g = gn, .n = 1, .decay = 0}};
    llm_adamw *o = llm_adamw_new(p, 2);
    llm_adamw_opts h = {0.9f, 0.999f, 1e-8f, 0.1f};
    llm_adamw_step(o, p, 2, &h, 0.01f);
    /* step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2: w -= lr (1 + ...) sign(g) after decay */
    CHECK_NEAR("adamw step 1 decayed", w[0], 1.0 * (1 - 0.01 * 0.1) - 0.01 * 0.5 / (0.5 + 1e-8), 1e-6);
    CHECK_NEAR("adamw step 1 no decay on norms", wn[0], 3.0 - 0.01, 1e-6);
    g[0] = -0.5f;
    llm_adamw_step(o, p, 2, &h, 0.01f);
    double m = 0.9 * 0.05 + 0.1 * -0.5, v = 0.999 * 0.00025 + 0.001 * 0.25;
    double w1 = 1.0 * (1 - 0.001) - 0.01, w2 = w1 * (1 - 0.001) - 0.01 / (1 - 0.81) * m / (sqrt(v) / sqrt(1 - 0.998001) + 1e-8);
    CHECK_NEAR("adamw step 2 with bias correction", w[0], w2, 1e-6);
    llm_adamw_free(o);
}

static void test_schedule(void) {
    CHECK_NEAR("lr warm-up start", llm_lr_cosine(0, 1e-3f, 50, 6000), 0, 1e-12);
    CHECK_NEAR("lr warm-up middle", llm_lr_cosine(25, 1e-3f, 50, 6000), 5e-4, 1e-9);
    CHECK_NEAR("lr peak", llm_lr_cosine(50, 1e-3f, 50, 6000), 1e-3, 1e-9);
    CHECK_NEAR("lr cosine half", llm_lr_cosine(50 + 2975, 1e-3f, 50, 6000), 5e-4, 1e-8);
    CHECK_NEAR("lr end", llm_lr_cosine(6000, 1e-3f, 50, 6000), 0, 1e-12);
    float g[2] = {3, 4}, w[2] = {0, 0};
    llm_param p = {.w = w, .g = g, .n = 2};
    double n = llm_clip_grad(&p, 1, 1.0);
    CHECK_NEAR("clip returns the norm", n, 5, 1e-12);
    CHECK_NEAR("clip scales to max_norm", sqrt(g[0] * g[0] + g[1] * g[1]), 1.0, 1e-6);
    g[0] = 0.3f, g[1] = 0.4f;
    llm_clip_grad(&p, 1, 1.0);
    CHECK("clip leaves small gradients", g[0] == 0.3f && g[1] == 0.4f);
}

static void test_data_and_run(void) {
    const char *sh = getenv("SHARED") ? getenv("SHARED") : "/work/shared";
    char bin[512], tok[512], dir[] = "/tmp/itrek-train-XXXXXX";
    snprintf(bin, sizeof bin, "%s/models/stories260K/stories260K.bin", sh);
    snprintf(tok, sizeof tok, "%s/models/stories260K/tok512.bin", sh);
    CHECK("mkdtemp", mkdtemp(dir) != NULL);
    if (llm_convert_llama2c(bin, tok, dir, err, sizeof err) != 0) { printf("# %s\n", err); return; }
    llm_load_opts lo = {.threads = 2};
    llm_model *m = llm_load(dir, &lo, err, sizeof err);
    CHECK("load stories260K", m && m->tok);
    if (!m) return;
    const char *prompt = "### Instruction:\nOnce upon a time there was a girl.\n\n### Response:\n";
    llm_dataset d = {0};
    llm_dataset_add_instruction(&d, m->tok, prompt, "Yes", 512, 0);
    int np = tok_encode(m->tok, prompt, 1, 0, NULL, 0);
    CHECK("example: BOS first, EOS last", d.n == 1 && d.ex[0].tok[0] == 1 && d.ex[0].tok[d.ex[0].n - 1] == 2);
    CHECK("example: targets from the prompt's length", d.ex[0].loss_from == np && d.ex[0].n > np);
    llm_dataset_add_instruction(&d, m->tok, prompt, "Yes", 512, 1);
    CHECK("--loss-on all: targets from 1", d.ex[1].loss_from == 1);
    int full = d.ex[0].n;
    llm_dataset_add_instruction(&d, m->tok, prompt, "Yes", 12, 0);
    CHECK("truncated from the left of the prompt", d.truncated == 1 && d.ex[2].n == 12 && d.ex[2].tok[0] == 1 &&
                                                       memcmp(d.ex[2].tok + 1, d.ex[0].tok + full - 11, 11 * sizeof(int)) == 0 &&
                                                       d.ex[2].loss_from == 12 - (full - np));
    int *stream = NULL;
    long n = 0, cap = 0;
    for (int i = 0; i < 10; i++) llm_text_append(&stream, &n, &cap, m->tok, "Lily saw a big dog.");
    llm_dataset txt = {0};
    llm_dataset_pack(&txt, stream, n, 32);
    CHECK("packing into context chunks", txt.n == (int)((n + 31) / 32) && txt.ex[0].n == 32 && txt.ex[0].loss_from == 1);
    free(stream);
    llm_dataset val;
    llm_dataset_split(&txt, &val, 0.25, 1);
    CHECK("validation split", val.n >= 1 && val.n + txt.n == (int)((n + 31) / 32));
    /* a short full run on the packed text: the loss falls */
    llm_trainer_opts to = {.full = 1, .seed = 1};
    llm_trainer *t = llm_trainer_new(m, NULL, &to, err, sizeof err);
    llm_run_opts ro = {.batch = 2, .accum = 1, .steps = 15, .warmup = 1, .lr = 2e-3f, .clip = 1.0f,
                       .adam = {0.9f, 0.999f, 1e-8f, 0}, .seed = 1, .out = dir, .quiet = 1};
    llm_run_result res;
    double before;
    long nt;
    llm_trainer_run(t, val.ex, val.n, 0, 1, 0, NULL, &before, &nt, err, sizeof err);
    int rc = llm_train_loop(t, &txt, &val, &ro, &res, err, sizeof err);
    printf("# full training of stories260K on packed text: val loss %.4f -> %.4f in %ld updates (%.0f tokens/s)\n", before,
           res.last_val_loss, res.steps_done, res.tokens_per_s);
    CHECK("training loop runs", rc == 0 && res.steps_done == 15);
    CHECK("validation loss falls", res.last_val_loss < before);
    llm_trainer_free(t);
    llm_dataset_free(&d);
    llm_dataset_free(&txt);
    llm_dataset_free(&val);
    llm_free(m);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK("cleanup", system(cmd) == 0);
}

int main(void) {
    test_adamw();
    test_schedule();
    test_data_and_run();
    return 0;
}
