/* lora-train - LoRA instruction tuning (or full-parameter training) of a LLaMA model on the CPU. */
#include "io/atomic.h"
#include "io/cli.h"
#include "io/err.h"
#include "io/stream.h"
#include "records/instructions.h"
#include "llm/backend_dnnl.h"
#include "llm/embedinit.h"
#include "llm/lora.h"
#include "llm/model.h"
#include "llm/trainrun.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char USAGE[] =
    "usage: lora-train --model DIR --out DIR [options] [INSTRUCTIONS]\n"
    "       lora-train --full (--model DIR | --init CONFIG --tokenizer FILE) --out DIR [options] (--text FILE [INSTRUCTIONS] | INSTRUCTIONS)\n"
    "Trains a LoRA adapter (PEFT layout: adapter_config.json + adapter_model.safetensors) on\n"
    "itrek.instructions (stdin or a path): loss on the response tokens; or with --full every weight\n"
    "of the model (writes a Hugging Face directory), from a checkpoint or a random initialisation.\n"
    "  --model DIR        base model (Hugging Face directory, .gguf or llama2.c .bin)\n"
    "  --out DIR          output directory (created); checkpoints go to DIR/checkpoint-STEP\n"
    "  --full             train all parameters in fp32 instead of an adapter\n"
    "  --init CONFIG      with --full: start from random weights for this config.json\n"
    "  --init-std S       standard deviation of the random weights (default 0.02)\n"
    "  --tokenizer FILE   tokenizer.model (with --init; default: the model's)\n"
    "  --init-embeddings F  with --init: itrek.itemvecs (promptgen --item-vectors); each vector,\n"
    "                     rescaled, becomes the first entries of its symbol's token embedding\n"
    "  --init-embeddings-std S  standard deviation of those vectors (default 0.05)\n"
    "  --text FILE        plain text, one document per line, packed into --ctx chunks (loss on all);\n"
    "                     an INSTRUCTIONS file beside it adds each record (prompt + response) as a document\n"
    "  --int8             hold the frozen base's linear layers in int8 (LoRA only)\n"
    "  --device D         cpu (default) or cuda (LoRA only; see docs/gpu.md)\n"
    "  --precision P      fp32 (default on the CPU) or bf16: the CPU's matrix products in bf16 with\n"
    "                     fp32 accumulation (oneDNN; fast with AMX or avx512_bf16); --device cuda\n"
    "                     always computes in bf16 (docs/lora-train.md, Precision)\n"
    "  --targets LIST     adapted modules (default q_proj,k_proj,v_proj,o_proj; 'all' = + gate,up,down)\n"
    "  --rank R           LoRA rank (default 16)\n"
    "  --alpha A          LoRA alpha, scale alpha/r (default 16)\n"
    "  --dropout P        dropout on the LoRA input (default 0.05)\n"
    "  --lr LR            peak learning rate (default 1e-5)\n"
    "  --warmup N         linear warm-up updates (default 50), then cosine decay to 0\n"
    "  --steps N          optimiser updates (default 6000)\n"
    "  --batch N          examples per micro-batch (default 4)\n"
    "  --accum N          micro-batches per update (default 2)\n"
    "  --ctx N            context length (default 1024; at most the model's)\n"
    "  --loss-on WHAT     response (default) or all (the whole sequence, as TALLRec's code)\n"
    "  --weight-decay W   AdamW weight decay (default 0; never on norms)\n"
    "  --clip N           global gradient-norm clipping (default 1.0; 0 = off)\n"
    "  --recompute        recompute activations in the backward (less memory, ~1/3 more time)\n"
    "  --val-frac F       held-out share for validation loss (default 0.02)\n"
    "  --eval-every N     updates between validation losses (default 200; also at the end)\n"
    "  --ckpt-every N     updates between checkpoints (default 500; 0 = only on SIGINT/SIGTERM)\n"
    "  --keep N           checkpoints kept (default 2)\n"
    "  --resume DIR       continue from a checkpoint directory (same data, seed and options)\n"
    "  --log FILE         JSON lines per update: step, loss, lr, grad_norm, tokens, tokens_per_s, val_loss\n" CLI_COMMON_USAGE
    "Exit status: 0 success, 1 bad data, I/O failure or interrupted (checkpoint written), 2 usage error.\n";

enum { O_MODEL = OPT_FIRST_STAGE, O_OUT, O_FULL, O_INIT, O_INIT_STD, O_TOK, O_TEXT, O_INT8, O_TARGETS, O_RANK, O_ALPHA,
       O_DROPOUT, O_LR, O_WARMUP, O_STEPS, O_BATCH, O_ACCUM, O_CTX, O_LOSS_ON, O_WD, O_CLIP, O_RECOMPUTE, O_VAL_FRAC,
       O_EVAL_EVERY, O_CKPT_EVERY, O_KEEP, O_RESUME, O_LOG, O_DEVICE, O_INIT_EMB, O_INIT_EMB_STD, O_PRECISION };

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { stop_flag = sig; }

typedef struct {
    llm_model *m;
    llm_lora *lora;
    const char *tok_src; /* tokenizer.model to copy beside a full checkpoint */
} save_ctx;

static int copy_file(const char *src, const char *dst, char *err, size_t errlen) {
    if (atomic_copy(src, dst) == 0) return 0;
    snprintf(err, errlen, "%s: cannot copy %s: %s", dst, src, strerror(errno));
    return -1;
}

static int save_model(void *vctx, const char *dir, char *err, size_t errlen) {
    save_ctx *c = vctx;
    if (c->lora) return llm_lora_save(c->lora, dir, err, errlen);
    if (llm_save_hf(c->m, dir, err, errlen) != 0) return -1;
    if (!c->tok_src) return 0;
    char dst[4200];
    snprintf(dst, sizeof dst, "%s/tokenizer.model", dir);
    return copy_file(c->tok_src, dst, err, errlen);
}

/* The training examples: with --text, the text file's lines (and an optional instructions
 * stream, prompt and answer as one document) packed into ctx-token rows for pretraining;
 * otherwise the instructions, one example each, the loss on the response (or on all tokens). */
static void load_examples(llm_dataset *all, const char *text, const char *in, const llm_tokenizer *tok, int ctx, int loss_all) {
    if (text) {
        FILE *fp = strcmp(text, "-") == 0 ? stdin : fopen(text, "r");
        if (!fp) die_at(text, -1, "%s", strerror(errno));
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int *stream = NULL;
        long n = 0, scap = 0;
        while ((len = getline(&line, &cap, fp)) >= 0) {
            if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
            if (len == 0) continue;
            llm_text_append(&stream, &n, &scap, tok, line);
        }
        if (ferror(fp)) die_at(text, -1, "read error");
        if (fp != stdin) fclose(fp);
        free(line);
        if (in) {
            /* instructions as pretraining documents: the prompt formats with their answers, so
               the backbone learns what follows "### Response:" (docs/backbone.md) */
            stream_reader *r = sr_open(in, INSTRUCTIONS_SCHEMA, 1);
            char *p, *resp;
            while (instructions_next_text(r, &p, &resp)) {
                size_t lp = strlen(p), lr = strlen(resp);
                char *doc = xmalloc(lp + lr + 1);
                memcpy(doc, p, lp);
                memcpy(doc + lp, resp, lr + 1);
                llm_text_append(&stream, &n, &scap, tok, doc);
                free(doc);
                free(p);
                free(resp);
            }
            sr_close(r);
        }
        llm_dataset_pack(all, stream, n, ctx);
        free(stream);
    } else {
        stream_reader *r = sr_open(in, INSTRUCTIONS_SCHEMA, 1);
        char *p, *resp;
        while (instructions_next_text(r, &p, &resp)) {
            llm_dataset_add_instruction(all, tok, p, resp, ctx, loss_all);
            free(p);
            free(resp);
        }
        sr_close(r);
    }
}

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    const char *model = NULL, *out = NULL, *init = NULL, *tokf = NULL, *text = NULL, *targets_s = "q_proj,k_proj,v_proj,o_proj";
    const char *device = NULL, *init_emb = NULL, *precision = NULL;
    double init_emb_std = 0.05;
    int full = 0, int8 = 0, rank = 16, loss_all = 0, recompute = 0, ctx = 1024;
    float alpha = 16, dropout = 0.05f, init_std = 0.02f;
    double val_frac = 0.02;
    llm_run_opts ro = {.batch = 4, .accum = 2, .steps = 6000, .warmup = 50, .lr = 1e-5f, .clip = 1.0f,
                       .adam = {0.9f, 0.999f, 1e-8f, 0.0f}, .eval_every = 200, .ckpt_every = 500, .keep_ckpt = 2};
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL},     {"out", 1, 0, O_OUT},         {"full", 0, 0, O_FULL},
        {"init", 1, 0, O_INIT},       {"init-std", 1, 0, O_INIT_STD}, {"tokenizer", 1, 0, O_TOK},
        {"init-embeddings", 1, 0, O_INIT_EMB}, {"init-embeddings-std", 1, 0, O_INIT_EMB_STD},
        {"text", 1, 0, O_TEXT},       {"int8", 0, 0, O_INT8},       {"targets", 1, 0, O_TARGETS},
        {"rank", 1, 0, O_RANK},       {"alpha", 1, 0, O_ALPHA},     {"dropout", 1, 0, O_DROPOUT},
        {"lr", 1, 0, O_LR},           {"warmup", 1, 0, O_WARMUP},   {"steps", 1, 0, O_STEPS},
        {"batch", 1, 0, O_BATCH},     {"accum", 1, 0, O_ACCUM},     {"ctx", 1, 0, O_CTX},
        {"loss-on", 1, 0, O_LOSS_ON}, {"weight-decay", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP},
        {"recompute", 0, 0, O_RECOMPUTE}, {"val-frac", 1, 0, O_VAL_FRAC}, {"eval-every", 1, 0, O_EVAL_EVERY},
        {"ckpt-every", 1, 0, O_CKPT_EVERY}, {"keep", 1, 0, O_KEEP}, {"resume", 1, 0, O_RESUME},
        {"log", 1, 0, O_LOG},         {"device", 1, 0, O_DEVICE},   {"precision", 1, 0, O_PRECISION},
        CLI_COMMON_OPTIONS,
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_OUT: out = optarg; break;
        case O_FULL: full = 1; break;
        case O_INIT: init = optarg; break;
        case O_INIT_STD: init_std = (float)cli_double("--init-std", optarg, 0, 10, USAGE); break;
        case O_INIT_EMB: init_emb = optarg; break;
        case O_INIT_EMB_STD: init_emb_std = cli_double("--init-embeddings-std", optarg, 0, 10, USAGE); break;
        case O_TOK: tokf = optarg; break;
        case O_TEXT: text = optarg; break;
        case O_INT8: int8 = 1; break;
        case O_TARGETS: targets_s = optarg; break;
        case O_RANK: rank = (int)cli_long("--rank", optarg, 1, 4096, USAGE); break;
        case O_ALPHA: alpha = (float)cli_double("--alpha", optarg, 0, 1e6, USAGE); break;
        case O_DROPOUT:
            dropout = (float)cli_double("--dropout", optarg, 0, 1, USAGE);
            if (dropout >= 1) die_usage(USAGE, "--dropout: must be below 1");
            break;
        case O_LR: ro.lr = (float)cli_double("--lr", optarg, 0, 10, USAGE); break;
        case O_WARMUP: ro.warmup = cli_long("--warmup", optarg, 0, 1L << 40, USAGE); break;
        case O_STEPS: ro.steps = cli_long("--steps", optarg, 0, 1L << 40, USAGE); break;
        case O_BATCH: ro.batch = (int)cli_long("--batch", optarg, 1, 1 << 16, USAGE); break;
        case O_ACCUM: ro.accum = (int)cli_long("--accum", optarg, 1, 1 << 16, USAGE); break;
        case O_CTX: ctx = (int)cli_long("--ctx", optarg, 2, 1 << 22, USAGE); break;
        case O_LOSS_ON:
            if (strcmp(optarg, "response") == 0) loss_all = 0;
            else if (strcmp(optarg, "all") == 0) loss_all = 1;
            else die_usage(USAGE, "--loss-on: expected response or all, got '%s'", optarg);
            break;
        case O_WD: ro.adam.weight_decay = (float)cli_double("--weight-decay", optarg, 0, 10, USAGE); break;
        case O_CLIP: ro.clip = (float)cli_double("--clip", optarg, 0, 1e9, USAGE); break;
        case O_RECOMPUTE: recompute = 1; break;
        case O_VAL_FRAC: val_frac = cli_double("--val-frac", optarg, 0, 0.9, USAGE); break;
        case O_EVAL_EVERY: ro.eval_every = cli_long("--eval-every", optarg, 0, 1L << 40, USAGE); break;
        case O_CKPT_EVERY: ro.ckpt_every = cli_long("--ckpt-every", optarg, 0, 1L << 40, USAGE); break;
        case O_KEEP: ro.keep_ckpt = (int)cli_long("--keep", optarg, 0, 1 << 20, USAGE); break;
        case O_RESUME: ro.resume = optarg; break;
        case O_LOG: ro.log_path = optarg; break;
        case O_DEVICE: device = cli_device(optarg, USAGE); break;
        case O_PRECISION: precision = cli_precision(optarg, USAGE); break;
        default: cli_common_opt(c, optarg, &cc, USAGE);
        }
    }
    if (!out) die_usage(USAGE, "--out DIR is required");
    if (!!model + !!init != 1) die_usage(USAGE, "give exactly one of --model and --init");
    if (init && !full) die_usage(USAGE, "--init needs --full");
    if (init && !tokf) die_usage(USAGE, "--init needs --tokenizer");
    if (init_emb && !init) die_usage(USAGE, "--init-embeddings needs --init (a fresh model)");
    if (full && int8) die_usage(USAGE, "--full trains fp32 weights; --int8 is for a frozen LoRA base");
    if (full && device && strcmp(device, "cuda") == 0) die_usage(USAGE, "--full runs on the CPU only; --device cuda is for LoRA");
    if (text && !full) die_usage(USAGE, "--text is for --full (pretraining); LoRA tuning reads itrek.instructions");
    const llm_backend *be16 = NULL; /* --precision bf16 on the CPU */
    char err[1024];
    if (cli_device_precision(device, precision, USAGE)) {
        if (!(be16 = llm_backend_cpu_bf16(err, sizeof err))) die("%s", err);
        if (llm_dnnl_isa_note() && !cc.quiet) warnf("%s", llm_dnnl_isa_note());
        llm_dnnl_set_weight_cache(!full); /* full training rewrites the weights after every update */
    }
    if (argc - optind > 1) die_usage(USAGE, "at most one input file");
    unsigned targets = 0;
    if (!full && llm_lora_parse_targets(targets_s, &targets, err, sizeof err) != 0) die_usage(USAGE, "--targets: %s", err);

    /* the model */
    llm_model *m;
    if (init) {
        llm_config cfg;
        if (llm_config_load(init, &cfg, err, sizeof err) != 0) die("%s", err);
        m = llm_init_random(&cfg, init_std, cc.seed, cc.threads);
    } else {
        llm_load_opts lo = {.int8 = int8, .threads = cc.threads, .device = device};
        if (!(m = llm_load(model, &lo, err, sizeof err))) die("%s", err);
    }
    char tok_path[4200] = "";
    llm_tokenizer *tok = m->tok;
    if (tokf) {
        if (!(tok = tok_load(tokf, err, sizeof err))) die("%s", err);
        snprintf(tok_path, sizeof tok_path, "%s", tokf);
        if (tok_vocab_size(tok) > m->cfg.vocab_size)
            die_at(tokf, -1, "%d tokens, the model's vocabulary has %d", tok_vocab_size(tok), m->cfg.vocab_size);
    } else if (model) {
        struct stat sb;
        snprintf(tok_path, sizeof tok_path, "%s/tokenizer.model", model);
        if (stat(model, &sb) != 0 || !S_ISDIR(sb.st_mode)) tok_path[0] = 0;
    }
    if (!tok) die_at(model, -1, "the model has no tokenizer.model (give --tokenizer)");
    if (init_emb) {
        long rows = llm_init_embeddings(m, tok, init_emb, init_emb_std);
        if (!cc.quiet) fprintf(stderr, "lora-train: %ld token embeddings from %s (std %g)\n", rows, init_emb, init_emb_std);
    }
    if (be16) { /* the same host model, with the bf16 products */
        m->be = be16;
        llm_set_threads(m, m->threads);
    }
    if (ctx > m->cfg.max_seq_len) ctx = m->cfg.max_seq_len;

    /* the data */
    llm_dataset all = {0}, val;
    load_examples(&all, text, optind < argc ? argv[optind] : NULL, tok, ctx, loss_all);
    llm_dataset_split(&all, &val, val_frac, cc.seed);
    if (all.n == 0) die_at(text ? text : optind < argc ? argv[optind] : "-", -1, "no training examples");
    if (!cc.quiet)
        fprintf(stderr, "lora-train: %d training examples (%ld tokens, %ld targets), %d validation; %ld truncated to %d tokens, %ld skipped\n",
                all.n, all.tokens, all.targets, val.n, all.truncated, ctx, all.dropped);

    /* train */
    if (mkdir(out, 0777) != 0 && errno != EEXIST) die_at(out, -1, "%s", strerror(errno));
    llm_lora *lora = NULL;
    if (!full) {
        lora = llm_lora_new(&m->cfg, rank, alpha, dropout, targets, cc.seed);
        lora->base_model = xstrdup(model);
    }
    llm_trainer_opts to = {.full = full, .recompute = recompute, .seed = cc.seed};
    llm_trainer *t = llm_trainer_new(m, lora, &to, err, sizeof err);
    if (!t) die("%s", err);
    save_ctx sc = {m, lora, tok_path[0] ? tok_path : NULL};
    ro.seed = cc.seed;
    ro.out = out;
    ro.quiet = cc.quiet;
    ro.log_every = cc.log_every;
    ro.stop = &stop_flag;
    ro.save = save_model;
    ro.save_ctx = &sc;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    /* restart interrupted system calls: stdio does not retry a write that fails with EINTR, so
     * a signal arriving while a checkpoint or the log is written would fail that write */
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    llm_run_result res;
    int rc = llm_train_loop(t, &all, &val, &ro, &res, err, sizeof err);
    if (rc < 0) die("%s", err);
    if (rc == 1) die("interrupted by signal %d after %ld updates; checkpoint written to %s (continue with --resume)", (int)stop_flag,
                     res.steps_done, res.checkpoint);
    if (save_model(&sc, out, err, sizeof err) != 0) die("%s", err);
    if (!cc.quiet)
        fprintf(stderr, "lora-train: %ld updates, last loss %.4f, validation loss %.4f%s, %.0f tokens/s; wrote %s\n",
                res.steps_done, res.last_loss, isnan(res.last_val_loss) ? 0.0 : res.last_val_loss,
                isnan(res.last_val_loss) ? " (no validation set)" : "", res.tokens_per_s, out);
    llm_trainer_free(t);
    llm_lora_free(lora);
    if (tok != m->tok) tok_free(tok);
    llm_free(m);
    llm_dataset_free(&all);
    llm_dataset_free(&val);
    close_stdout();
    return 0;
}
