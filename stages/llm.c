/* llm - the LLM engine's command-line tool: convert, generate, logits, tokenize, bench. */
#include "io/atomic.h"
#include "io/cli.h"
#include "io/err.h"
#include "io/rng.h"
#include "llm/backend_dnnl.h"
#include "llm/convert.h"
#include "llm/generate.h"
#include "llm/model.h"
#include "llm/tokenizer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char USAGE[] =
    "usage: llm COMMAND [options]\n"
    "LLaMA inference engine (CPU backend, fp32 or bf16 products; CUDA with --device cuda).\n"
    "Commands:\n"
    "  convert-llama2c MODEL.bin TOKENIZER.bin OUTDIR\n"
    "                     write a Hugging Face directory (config.json, model.safetensors, tokenizer.model)\n"
    "  generate --model M (--prompt TEXT | --ids \"1 2 3\") [-n N] [sampling] [--print-ids]\n"
    "                     continue the prompt (--prompt adds BOS; --ids are used as given)\n"
    "  logits --model M (--ids \"...\" | --prompt TEXT)\n"
    "                     logits of the last position, one per line (%.9g)\n"
    "  tokenize --model M (--text TEXT | --file F) [--bos]\n"
    "                     token ids, one line per input line\n"
    "  bench --model M    prefill (128 and 512 tokens) and decode tokens/s, batch 1 and larger, with and\n"
    "                     without prefix sharing\n"
    "  init --config config.json [--tokenizer tokenizer.model] OUTDIR\n"
    "                     write a randomly initialised model (normal(0, --init-std 0.02), norms 1; --seed)\n"
    "Options:\n"
    "  --model M          Hugging Face directory, .gguf file or llama2.c .bin checkpoint\n"
    "  --adapter DIR      LoRA adapter (PEFT layout), applied on the fly\n"
    "  --merge            merge the adapter into the weights instead (before --int8 quantisation)\n"
    "  --int8             hold the linear layers as int8 (per-row absmax)\n"
    "  --device D         cpu (default) or cuda (generate, logits, bench; see docs/gpu.md)\n"
    "  --precision P      fp32 (default on the CPU) or bf16: the CPU's matrix products in bf16 with fp32\n"
    "                     accumulation (oneDNN; fast with AMX or avx512_bf16); --device cuda always\n"
    "                     computes in bf16 (docs/llm.md, Precision)\n"
    "  -n, --max-new N    new tokens at most (default 128)\n"
    "  --temperature T    0 = greedy (default 0)\n"
    "  --top-k K          keep the K most likely tokens (default 0 = all)\n"
    "  --top-p P          nucleus sampling (default 1 = off)\n"
    "  --no-stop          do not stop at EOS\n"
    "  --print-ids        print generated ids instead of text\n" CLI_COMMON_USAGE
    "Exit status: 0 success, 1 bad data or I/O failure, 2 usage error.\n";

enum { OPT_MODEL = OPT_FIRST_STAGE, OPT_PROMPT, OPT_IDS, OPT_TEMP, OPT_TOPK, OPT_TOPP, OPT_PRINT_IDS, OPT_INT8,
       OPT_TEXT, OPT_FILE, OPT_BOS, OPT_ADAPTER, OPT_NO_STOP, OPT_MERGE, OPT_CONFIG, OPT_TOKENIZER, OPT_INIT_STD,
       OPT_DEVICE, OPT_PRECISION };

typedef struct {
    const char *model, *prompt, *ids, *text, *file, *adapter, *config, *tokenizer, *device, *precision;
    int print_ids, int8, bos, merge;
    double init_std;
    llm_sampling s;
    cli_common cc;
} opts;

static int *parse_ids(const char *s, int *n) {
    int cap = 16, *v = xmalloc((size_t)cap * sizeof *v);
    *n = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 0x7fffffff) die_usage(USAGE, "--ids: not a list of token ids: '%s'", s);
        if (*n == cap) v = xrealloc(v, (size_t)(cap *= 2) * sizeof *v);
        v[(*n)++] = (int)x;
        p = end;
    }
    if (*n == 0) die_usage(USAGE, "--ids: no token ids");
    return v;
}

static llm_model *load(const opts *o) {
    if (!o->model) die_usage(USAGE, "--model is required");
    char err[1024];
    if (o->merge && !o->adapter) die_usage(USAGE, "--merge needs --adapter");
    llm_load_opts lo = {.int8 = o->int8, .threads = o->cc.threads, .adapter = o->adapter, .merge = o->merge,
                        .device = o->device};
    bool cpu_bf16 = cli_device_precision(o->device, o->precision, USAGE);
    const llm_backend *be16 = NULL;
    if (cpu_bf16) {
        if (!(be16 = llm_backend_cpu_bf16(err, sizeof err))) die("%s", err);
        if (llm_dnnl_isa_note() && !o->cc.quiet) warnf("%s", llm_dnnl_isa_note());
    }
    llm_model *m = llm_load(o->model, &lo, err, sizeof err);
    if (!m) die("%s", err);
    if (be16) { /* the same host model, with the bf16 products */
        m->be = be16;
        llm_set_threads(m, m->threads);
    }
    return m;
}

static int *encode(const llm_model *m, const opts *o, const char *text, int bos, int *n) {
    if (!m->tok) die_at(o->model, -1, "the model has no tokenizer.model; use --ids");
    int need = tok_encode(m->tok, text, bos, 0, NULL, 0);
    int *ids = xmalloc((size_t)(need > 0 ? need : 1) * sizeof *ids);
    *n = tok_encode(m->tok, text, bos, 0, ids, need);
    return ids;
}

static int *prompt_ids(const llm_model *m, const opts *o, int *n) {
    if (!!o->prompt + !!o->ids != 1) die_usage(USAGE, "give exactly one of --prompt and --ids");
    if (o->ids) {
        int *ids = parse_ids(o->ids, n);
        for (int i = 0; i < *n; i++)
            if (ids[i] >= m->cfg.vocab_size) die_usage(USAGE, "--ids: %d is outside the vocabulary of %d", ids[i], m->cfg.vocab_size);
        return ids;
    }
    return encode(m, o, o->prompt, 1, n);
}

static void cmd_generate(const opts *o) {
    llm_model *m = load(o);
    int n, *ids = prompt_ids(m, o, &n);
    llm_request r = {.prompt = ids, .n_prompt = n};
    char err[1024];
    if (llm_generate(m, &r, 1, &o->s, 1, err, sizeof err) != 0) die("%s", err);
    if (o->print_ids || !m->tok) {
        for (int i = 0; i < r.n_out; i++) printf("%s%d", i ? " " : "", r.out[i]);
        putchar('\n');
    } else {
        int prev = ids[n - 1];
        for (int i = 0; i < r.n_out; i++) {
            if (r.out[i] == m->cfg.eos_id) break;
            char scratch[8];
            fputs(tok_decode_piece(m->tok, prev, r.out[i], scratch), stdout);
            prev = r.out[i];
        }
        putchar('\n');
    }
    free(r.out);
    free(ids);
    llm_free(m);
}

static void cmd_logits(const opts *o) {
    llm_model *m = load(o);
    int n, *ids = prompt_ids(m, o, &n);
    llm_seq *s = llm_seq_new(m);
    float *lg = xmalloc((size_t)m->cfg.vocab_size * sizeof *lg);
    llm_batch b = {s, ids, n, LLM_LOGITS_LAST, lg};
    char err[1024];
    if (llm_forward(m, &b, 1, err, sizeof err) != 0) die("%s", err);
    for (int i = 0; i < m->cfg.vocab_size; i++) printf("%.9g\n", lg[i]);
    free(lg);
    free(ids);
    llm_seq_free(s);
    llm_free(m);
}

static void print_ids_line(const int *ids, int n) {
    for (int i = 0; i < n; i++) printf("%s%d", i ? " " : "", ids[i]);
    putchar('\n');
}

static void cmd_tokenize(const opts *o) {
    if (!!o->text + !!o->file != 1) die_usage(USAGE, "give exactly one of --text and --file");
    llm_model *m = load(o);
    if (o->text) {
        char *copy = xstrdup(o->text), *line = copy;
        for (;;) {
            char *nl = strchr(line, '\n');
            if (nl) *nl = 0;
            int n, *ids = encode(m, o, line, o->bos, &n);
            print_ids_line(ids, n);
            free(ids);
            if (!nl) break;
            line = nl + 1;
        }
        free(copy);
    } else {
        FILE *fp = strcmp(o->file, "-") == 0 ? stdin : fopen(o->file, "r");
        if (!fp) die_at(o->file, -1, "%s", strerror(errno));
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        while ((len = getline(&line, &cap, fp)) >= 0) {
            if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
            int n, *ids = encode(m, o, line, o->bos, &n);
            print_ids_line(ids, n);
            free(ids);
        }
        if (ferror(fp)) die_at(o->file, -1, "read error");
        free(line);
        if (fp != stdin) fclose(fp);
    }
    llm_free(m);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void bench_row(const char *what, int batch, long tokens, double sec) {
    printf("%-28s %6d %8ld %9.3f %11.1f\n", what, batch, tokens, sec, (double)tokens / sec);
}

static void cmd_bench(const opts *o) {
    llm_model *m = load(o);
    int V = m->cfg.vocab_size, ctx = m->cfg.max_seq_len;
    int P = ctx >= 256 ? 128 : ctx / 2, G = 32, S = 8, Q = 16;
    if (P + S + G > ctx) G = S = (ctx - P) / 2;
    int nt = P + Q * S > 512 ? P + Q * S : 512;
    rng_t r;
    rng_init(&r, o->cc.seed, 0);
    int *toks = xmalloc((size_t)nt * sizeof *toks);
    for (int i = 0; i < nt; i++) toks[i] = 3 + (int)rng_below(&r, (uint64_t)(V > 3 ? V - 3 : 1));
    char err[1024];
    llm_sampling s = llm_sampling_default();
    s.max_new = G;
    s.stop_eos = 0;
    printf("model %s: dim %d, layers %d, heads %d/%d, vocab %d, %s weights, %s device, %d threads\n", o->model, m->cfg.dim,
           m->cfg.n_layers, m->cfg.n_heads, m->cfg.n_kv_heads, V, m->int8 ? "int8" : "fp32", m->be->name, m->threads);
    printf("%-28s %6s %8s %9s %11s\n", "phase", "batch", "tokens", "seconds", "tokens/s");
    /* prefill: P tokens (and 512 where the context allows) in one forward (best of 3 runs,
     * after a warm-up) */
    double best = 1e30;
    int prefills[] = {P, 512};
    for (int pi = 0; pi < 2; pi++) {
        int n = prefills[pi];
        if (pi && (n == P || n > ctx)) continue;
        best = 1e30;
        for (int rep = 0; rep < 4; rep++) {
            llm_seq *q = llm_seq_new(m);
            double t = now();
            llm_batch b = {q, toks, n, LLM_LOGITS_LAST, NULL};
            if (llm_forward(m, &b, 1, err, sizeof err) != 0) die("%s", err);
            t = now() - t;
            if (rep && t < best) best = t;
            llm_seq_free(q);
        }
        bench_row("prefill", 1, n, best);
    }
    /* decode: batch B, one-token prompts, G new tokens each (best of 3) */
    int batches[] = {1, 4, 16, 64};
    for (int bi = 0; bi < 4; bi++) {
        int B = batches[bi];
        long n = 0;
        best = 1e30;
        for (int rep = 0; rep < 3; rep++) {
            llm_request *rq = xcalloc((size_t)B, sizeof *rq);
            for (int i = 0; i < B; i++) rq[i] = (llm_request){.prompt = toks + i % P, .n_prompt = 1};
            double t = now();
            if (llm_generate(m, rq, B, &s, B, err, sizeof err) != 0) die("%s", err);
            t = now() - t;
            if (t < best) best = t;
            n = 0;
            for (int i = 0; i < B; i++) { n += rq[i].n_out; free(rq[i].out); }
            free(rq);
        }
        bench_row("decode", B, n, best);
    }
    /* Q queries sharing a P-token prefix, each with S own tokens, G new tokens each */
    for (int shared = 0; shared < 2; shared++) {
      best = 1e30;
      long n = 0;
      for (int rep = 0; rep < 3; rep++) {
        llm_request *rq = xcalloc((size_t)Q, sizeof *rq);
        int **full = xcalloc((size_t)Q, sizeof *full);
        double t = now();
        llm_seq *pre = NULL;
        if (shared) {
            pre = llm_seq_new(m);
            llm_batch b = {pre, toks, P, LLM_LOGITS_NONE, NULL};
            if (llm_forward(m, &b, 1, err, sizeof err) != 0) die("%s", err);
        }
        for (int i = 0; i < Q; i++) {
            if (shared) rq[i] = (llm_request){.prefix = pre, .prompt = toks + P + i * S, .n_prompt = S};
            else {
                full[i] = xmalloc((size_t)(P + S) * sizeof(int));
                memcpy(full[i], toks, (size_t)P * sizeof(int));
                memcpy(full[i] + P, toks + P + i * S, (size_t)S * sizeof(int));
                rq[i] = (llm_request){.prompt = full[i], .n_prompt = P + S};
            }
        }
        if (llm_generate(m, rq, Q, &s, Q, err, sizeof err) != 0) die("%s", err);
        t = now() - t;
        if (t < best) best = t;
        n = 0;
        for (int i = 0; i < Q; i++) { n += rq[i].n_out; free(rq[i].out); free(full[i]); }
        llm_seq_free(pre);
        free(rq);
        free(full);
      }
      char what[64];
      snprintf(what, sizeof what, "%s (P=%d,S=%d)", shared ? "shared prefix" : "no sharing", P, S);
      bench_row(what, Q, n, best);
    }
    printf("(best of 3 runs; tokens = generated tokens, G=%d each; the prefix rows' time includes their prompts)\n", G);
    free(toks);
    llm_free(m);
}

static void cmd_init(const opts *o, const char *outdir) {
    if (!o->config) die_usage(USAGE, "init needs --config");
    char err[1024];
    llm_config c;
    if (llm_config_load(o->config, &c, err, sizeof err) != 0) die("%s", err);
    llm_tokenizer *t = NULL;
    if (o->tokenizer) {
        if (!(t = tok_load(o->tokenizer, err, sizeof err))) die("%s", err);
        if (tok_vocab_size(t) > c.vocab_size)
            die_at(o->tokenizer, -1, "%d tokens, the config's vocab_size is %d", tok_vocab_size(t), c.vocab_size);
        if (c.bos_id < 0 && tok_bos(t) >= 0) c.bos_id = tok_bos(t);
        if (c.eos_id < 0 && tok_eos(t) >= 0) c.eos_id = tok_eos(t);
    }
    llm_model *m = llm_init_random(&c, (float)o->init_std, o->cc.seed, o->cc.threads);
    if (mkdir(outdir, 0777) != 0 && errno != EEXIST) die_at(outdir, -1, "%s", strerror(errno));
    if (llm_save_hf(m, outdir, err, sizeof err) != 0) die("%s", err);
    if (t) {
        char path[4200];
        snprintf(path, sizeof path, "%s/tokenizer.model", outdir);
        if (atomic_copy(o->tokenizer, path) != 0) die_at(path, -1, "cannot copy %s: %s", o->tokenizer, strerror(errno));
        tok_free(t);
    }
    llm_free(m);
}

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    opts o = {.s = llm_sampling_default(), .init_std = 0.02};
    cli_common_init(&o.cc, argv);
    if (argc < 2) die_usage(USAGE, "missing command");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) { fputs(USAGE, stdout); close_stdout(); return 0; }
    if (strcmp(cmd, "--version") == 0) { printf("llm %s\n", ITREK_VERSION); close_stdout(); return 0; }
    static const struct option lopts[] = {
        {"model", required_argument, 0, OPT_MODEL},   {"prompt", required_argument, 0, OPT_PROMPT},
        {"ids", required_argument, 0, OPT_IDS},       {"max-new", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, OPT_TEMP}, {"top-k", required_argument, 0, OPT_TOPK},
        {"top-p", required_argument, 0, OPT_TOPP},    {"print-ids", no_argument, 0, OPT_PRINT_IDS},
        {"int8", no_argument, 0, OPT_INT8},           {"text", required_argument, 0, OPT_TEXT},
        {"file", required_argument, 0, OPT_FILE},     {"bos", no_argument, 0, OPT_BOS},
        {"adapter", required_argument, 0, OPT_ADAPTER}, {"no-stop", no_argument, 0, OPT_NO_STOP},
        {"merge", no_argument, 0, OPT_MERGE},         {"config", required_argument, 0, OPT_CONFIG},
        {"tokenizer", required_argument, 0, OPT_TOKENIZER}, {"init-std", required_argument, 0, OPT_INIT_STD},
        {"device", required_argument, 0, OPT_DEVICE}, {"precision", required_argument, 0, OPT_PRECISION},
        CLI_COMMON_OPTIONS,                           {0, 0, 0, 0}};
    int c;
    opterr = 0;
    optind = 2;
    while ((c = getopt_long(argc, argv, ":hn:", lopts, NULL)) != -1) {
        switch (c) {
        case OPT_MODEL: o.model = optarg; break;
        case OPT_PROMPT: o.prompt = optarg; break;
        case OPT_IDS: o.ids = optarg; break;
        case 'n': o.s.max_new = (int)cli_long("--max-new", optarg, 0, 1 << 24, USAGE); break;
        case OPT_TEMP: o.s.temperature = (float)cli_double("--temperature", optarg, 0, 100, USAGE); break;
        case OPT_TOPK: o.s.top_k = (int)cli_long("--top-k", optarg, 0, 1 << 24, USAGE); break;
        case OPT_TOPP:
            o.s.top_p = (float)cli_double("--top-p", optarg, 0, 1, USAGE);
            if (o.s.top_p <= 0) die_usage(USAGE, "--top-p: must be in (0, 1]");
            break;
        case OPT_PRINT_IDS: o.print_ids = 1; break;
        case OPT_INT8: o.int8 = 1; break;
        case OPT_TEXT: o.text = optarg; break;
        case OPT_FILE: o.file = optarg; break;
        case OPT_BOS: o.bos = 1; break;
        case OPT_ADAPTER: o.adapter = optarg; break;
        case OPT_NO_STOP: o.s.stop_eos = 0; break;
        case OPT_MERGE: o.merge = 1; break;
        case OPT_CONFIG: o.config = optarg; break;
        case OPT_TOKENIZER: o.tokenizer = optarg; break;
        case OPT_INIT_STD: o.init_std = cli_double("--init-std", optarg, 0, 10, USAGE); break;
        case OPT_DEVICE: o.device = cli_device(optarg, USAGE); break;
        case OPT_PRECISION: o.precision = cli_precision(optarg, USAGE); break;
        case ':': die_usage(USAGE, "option '%s' needs a value", argv[optind - 1]);
        case '?': die_usage(USAGE, "unknown option '%s'", argv[optind - 1]);
        default: cli_common_opt(c, optarg, &o.cc, USAGE);
        }
    }
    o.s.seed = o.cc.seed;
    if (strcmp(cmd, "convert-llama2c") == 0) {
        if (argc - optind != 3) die_usage(USAGE, "convert-llama2c takes MODEL.bin TOKENIZER.bin OUTDIR");
        char err[1024];
        if (llm_convert_llama2c(argv[optind], argv[optind + 1], argv[optind + 2], err, sizeof err) != 0) die("%s", err);
    } else if (strcmp(cmd, "init") == 0) {
        if (argc - optind != 1) die_usage(USAGE, "init takes OUTDIR");
        cmd_init(&o, argv[optind]);
    } else {
        if (optind < argc) die_usage(USAGE, "unexpected argument '%s'", argv[optind]);
        if (strcmp(cmd, "generate") == 0) cmd_generate(&o);
        else if (strcmp(cmd, "logits") == 0) cmd_logits(&o);
        else if (strcmp(cmd, "tokenize") == 0) cmd_tokenize(&o);
        else if (strcmp(cmd, "bench") == 0) cmd_bench(&o);
        else die_usage(USAGE, "unknown command '%s'", cmd);
    }
    close_stdout();
    return 0;
}
