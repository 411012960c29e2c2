/* rank - answer itrek.queries with a LLaMA model: itrek.answers (docs/rank.md). */
#include "io/cli.h"
#include "io/err.h"
#include "llm/backend_dnnl.h"
#include "rerank/rank.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: rank --model M [options] [QUERIES] [-o OUT]\n"
    "       rank --merge [-o OUT] ANSWERS...\n"
    "Answers every itrek.queries record with the model: generated text, or (--decode score)\n"
    "log-probabilities of the answer options and a listwise answer constrained to the titles.\n"
    "  --model PATH        Hugging Face directory, .gguf or llama2.c .bin (required)\n"
    "  --adapter DIR       LoRA adapter (PEFT layout)\n"
    "  --int8              hold the linear layers in int8\n"
    "  --decode MODE       generate (default) or score\n"
    "  --listwise ORDER    score mode, listwise: greedy (default; constrained decoding) or\n"
    "                      likelihood (every title by log p(title as the first item))\n"
    "  --temperature T     sampling temperature (default 0.1; 0: greedy)\n"
    "  --top-k K           keep the K most likely tokens (default 10; 0: all)\n"
    "  --top-p P           nucleus mass in (0, 1] (default 0.1)\n"
    "  --max-new N         new tokens at most per answer (default 300)\n"
    "  --batch N           queries decoded together; also users per window (default 16)\n"
    "  --no-prefix-sharing compute every prompt whole (for benchmarks)\n"
    "  -o, --output PATH   output (default stdout); a .zst name compresses; written as\n"
    "                      PATH.partial while running (flushed per user), renamed at the end\n"
    "  -z, --zstd          compress the output\n"
    "  --resume            keep the answers in PATH.partial (or PATH) and answer the rest\n"
    "  --shard I/N         only users with user mod N == I (join with --merge)\n"
    "  --max-users N       stop after N users (whole windows); PATH.partial keeps them\n"
    "  --item-format F     how a listwise answer shows a title (default: the queries header's\n"
    "                      params.format.item, else '\"{title}\"', as data/prompts/recranker.tmpl)\n"
    "  --answer-sep S      between the titles of a listwise answer (default '\\n'; \\n, \\t escapes)\n"
    "  --yes T, --no T     the pairwise answers (default 'Yes.' and 'No.')\n"
    "  --merge             concatenate shard outputs ANSWERS... (records sorted by id)\n"
    "  --device DEV        cpu (default) or cuda\n"
    "  --precision P       fp32 (default on the CPU) or bf16: the CPU's matrix products in bf16 with\n"
    "                      fp32 accumulation (oneDNN; fast with AMX or avx512_bf16); --device cuda\n"
    "                      always computes in bf16 (docs/rank.md, Precision)\n" CLI_COMMON_USAGE;

enum { O_MODEL = OPT_FIRST_STAGE, O_ADAPTER, O_INT8, O_DECODE, O_TEMP, O_TOPK, O_TOPP, O_MAXNEW, O_BATCH, O_NOSHARE,
       O_RESUME, O_SHARD, O_MAXUSERS, O_MERGE, O_DEVICE, O_ITEM, O_SEP, O_YES, O_NO, O_LISTWISE, O_PRECISION };

/* \n, \t and \\ escapes of an option value, in place. */
static char *unescape(char *s) {
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (r[0] == '\\' && (r[1] == 'n' || r[1] == 't' || r[1] == '\\')) { *w++ = r[1] == 'n' ? '\n' : r[1] == 't' ? '\t' : '\\'; r++; }
        else *w++ = *r;
    }
    *w = 0;
    return s;
}

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    rank_opts o;
    rank_opts_default(&o);
    bool merge = false;
    const char *device = "cpu", *precision = NULL;
    static const struct option opts[] = {
        {"model", 1, 0, O_MODEL},       {"adapter", 1, 0, O_ADAPTER},  {"int8", 0, 0, O_INT8},
        {"decode", 1, 0, O_DECODE},     {"temperature", 1, 0, O_TEMP}, {"top-k", 1, 0, O_TOPK},
        {"top-p", 1, 0, O_TOPP},        {"max-new", 1, 0, O_MAXNEW},   {"batch", 1, 0, O_BATCH},
        {"no-prefix-sharing", 0, 0, O_NOSHARE}, {"resume", 0, 0, O_RESUME}, {"shard", 1, 0, O_SHARD},
        {"max-users", 1, 0, O_MAXUSERS}, {"merge", 0, 0, O_MERGE},    {"device", 1, 0, O_DEVICE},
        {"item-format", 1, 0, O_ITEM},  {"answer-sep", 1, 0, O_SEP},   {"yes", 1, 0, O_YES},
        {"no", 1, 0, O_NO},             {"listwise", 1, 0, O_LISTWISE}, {"precision", 1, 0, O_PRECISION},
        {"output", 1, 0, 'o'},          {"zstd", 0, 0, 'z'},           CLI_COMMON_OPTIONS,
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":ho:z", opts, NULL)) != -1) {
        switch (c) {
        case O_MODEL: o.model = optarg; break;
        case O_ADAPTER: o.adapter = optarg; break;
        case O_INT8: o.int8 = true; break;
        case O_DECODE:
            if (strcmp(optarg, "generate") == 0) o.decode = RANK_GENERATE;
            else if (strcmp(optarg, "score") == 0) o.decode = RANK_SCORE;
            else die_usage(USAGE, "--decode: expected generate or score, got '%s'", optarg);
            break;
        case O_LISTWISE:
            if (strcmp(optarg, "greedy") == 0) o.list_likelihood = false;
            else if (strcmp(optarg, "likelihood") == 0) o.list_likelihood = true;
            else die_usage(USAGE, "--listwise: expected greedy or likelihood, got '%s'", optarg);
            break;
        case O_TEMP: o.temperature = cli_double("--temperature", optarg, 0, 100, USAGE); break;
        case O_TOPK: o.top_k = (int)cli_long("--top-k", optarg, 0, 1000000000, USAGE); break;
        case O_TOPP:
            o.top_p = cli_double("--top-p", optarg, 0, 1, USAGE);
            if (o.top_p <= 0) die_usage(USAGE, "--top-p: must be in (0, 1]");
            break;
        case O_MAXNEW: o.max_new = (int)cli_long("--max-new", optarg, 0, 1000000, USAGE); break;
        case O_BATCH: o.batch = (int)cli_long("--batch", optarg, 1, 4096, USAGE); break;
        case O_NOSHARE: o.prefix_sharing = false; break;
        case O_RESUME: o.resume = true; break;
        case O_SHARD: {
            int i, n, end = 0;
            if (sscanf(optarg, "%d/%d%n", &i, &n, &end) != 2 || optarg[end] || n < 1 || i < 0 || i >= n)
                die_usage(USAGE, "--shard: expected I/N with 0 <= I < N, got '%s'", optarg);
            o.shard_i = i; o.shard_n = n;
            break;
        }
        case O_MAXUSERS: o.max_users = cli_long("--max-users", optarg, 1, 1L << 40, USAGE); break;
        case O_MERGE: merge = true; break;
        case O_DEVICE: device = cli_device(optarg, USAGE); break;
        case O_PRECISION: precision = cli_precision(optarg, USAGE); break;
        case O_ITEM:
            if (!strstr(optarg, "{title}")) die_usage(USAGE, "--item-format: needs {title}");
            o.item_format = optarg;
            break;
        case O_SEP: o.answer_sep = unescape(optarg); break;
        case O_YES: o.yes = optarg; break;
        case O_NO: o.no = optarg; break;
        case 'o': o.output = optarg; break;
        case 'z': o.zstd = true; break;
        default: cli_common_opt(c, optarg, &cc, USAGE);
        }
    }
    o.seed = cc.seed;
    o.threads = cc.threads;
    o.quiet = cc.quiet;
    o.log_every = cc.log_every;
    bool to_file = o.output && strcmp(o.output, "-") != 0;

    if (merge) {
        if (optind >= argc) die_usage(USAGE, "--merge needs the answer files to join");
        rank_merge((const char *const *)argv + optind, argc - optind, o.output, o.zstd);
        close_stdout();
        return 0;
    }
    if (!o.model) die_usage(USAGE, "--model is required");
    if (argc - optind > 1) die_usage(USAGE, "at most one input file");
    if (o.resume && !to_file) die_usage(USAGE, "--resume needs -o OUT");
    if (o.max_users && !to_file) die_usage(USAGE, "--max-users needs -o OUT");
    if (o.list_likelihood && o.decode != RANK_SCORE) die_usage(USAGE, "--listwise likelihood needs --decode score");
    bool bf16 = cli_device_precision(device, precision, USAGE);
    if (bf16) { /* the CPU backend with bf16 products: llm_backend_named("cpu-bf16") */
        char err[1024];
        if (!llm_backend_cpu_bf16(err, sizeof err)) die("%s", err);
        if (llm_dnnl_isa_note() && !o.quiet) warnf("%s", llm_dnnl_isa_note());
        device = "cpu-bf16";
    }
    o.device = device;
    o.queries = optind < argc ? argv[optind] : NULL;
    rank_stats st;
    rank_run(&o, &st);
    llm_dnnl_stats ds;
    llm_dnnl_get_stats(&ds);
    if (bf16 && ds.products == 0 && !o.quiet) /* llm_load kept the fp32 backend for a host model */
        warnf("--precision bf16: no product ran in bf16 (the model was loaded on the fp32 backend)");
    close_stdout();
    return 0;
}
