/* metrics - HR@K, NDCG@K, Recall@K, MRR of rankings, with bootstrap intervals against base. */
#include "io/atomic.h"
#include "io/cli.h"
#include "io/err.h"
#include "rec/evaluate.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: metrics --interactions FILE [--candidates FILE] [options] [RANKINGS...]\n"
    "Scores rankings (itrek.rankings streams; the candidates count as method 'base') over every\n"
    "user with a positive in the evaluated part; a user missing from a ranking is a miss.\n"
    "  --interactions PATH itrek.interactions (required)\n"
    "  --candidates PATH   itrek.candidates, evaluated as method 'base' in base order\n"
    "  --part PART         test (default) or valid\n"
    "  --k LIST            cut-offs (default 3,5,10)\n"
    "  --format F          md (default), csv or json\n"
    "  --bootstrap N       resamples for the 95% intervals against base (default 1000; 0: none)\n"
    "  --baseline NAME     method the intervals compare against (default base)\n"
    "  -o, --output PATH   output file (default stdout), written atomically\n" CLI_COMMON_USAGE;

enum { O_IA = OPT_FIRST_STAGE, O_CAND, O_PART, O_K, O_FORMAT, O_BOOT, O_BASELINE };

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    const char *ia_path = NULL, *cand = NULL, *format = "md", *out = NULL;
    part_t part = PART_TEST;
    bool baseline_given = false;
    eval_params p = {.n_k = 3, .ks = {3, 5, 10}, .bootstrap = 1000, .baseline = "base"};
    static const struct option opts[] = {
        {"interactions", 1, 0, O_IA}, {"candidates", 1, 0, O_CAND}, {"part", 1, 0, O_PART},
        {"k", 1, 0, O_K},             {"format", 1, 0, O_FORMAT},   {"bootstrap", 1, 0, O_BOOT},
        {"baseline", 1, 0, O_BASELINE}, {"output", 1, 0, 'o'},     CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case O_IA: ia_path = optarg; break;
        case O_CAND: cand = optarg; break;
        case O_PART:
            if (strcmp(optarg, "test") == 0) part = PART_TEST;
            else if (strcmp(optarg, "valid") == 0) part = PART_VALID;
            else die_usage(USAGE, "--part: expected test or valid, got '%s'", optarg);
            break;
        case O_K:
            p.n_k = cli_ints("--k", optarg, p.ks, EVAL_MAX_K, USAGE);
            for (int k = 0; k < p.n_k; k++)
                if (p.ks[k] < 1) die_usage(USAGE, "--k: cut-offs must be positive");
            break;
        case O_FORMAT:
            if (strcmp(optarg, "md") && strcmp(optarg, "csv") && strcmp(optarg, "json"))
                die_usage(USAGE, "--format: expected md, csv or json, got '%s'", optarg);
            format = optarg;
            break;
        case O_BOOT: p.bootstrap = (int)cli_long("--bootstrap", optarg, 0, 1000000, USAGE); break;
        case O_BASELINE:
            snprintf(p.baseline, sizeof p.baseline, "%s", optarg);
            baseline_given = true;
            break;
        case 'o': out = optarg; break;
        default: cli_common_opt(c, optarg, &cc, USAGE);
        }
    }
    if (!ia_path) die_usage(USAGE, "--interactions FILE is required");
    if (!cand && optind == argc) die_usage(USAGE, "nothing to evaluate: give --candidates and/or rankings files");
    p.seed = cc.seed;

    interactions ia;
    interactions_load(&ia, ia_path);
    method_ranking *ms = NULL;
    int n = 0;
    if (cand) candidates_load_as_method(&ms, &n, cand, &ia, "base");
    for (int k = optind; k < argc; k++) rankings_load(&ms, &n, argv[k], &ia);
    /* the default baseline may be absent (no intervals then); a named one must exist */
    bool found = false;
    for (int k = 0; k < n; k++) found |= strcmp(ms[k].name, p.baseline) == 0;
    if (baseline_given && !found) die("--baseline %s: no method of that name in the inputs", p.baseline);
    eval_table t;
    eval_compute(&t, &ia, part, ms, n, &p);

    atomic_file af;
    FILE *fp = atomic_open_or_die(&af, out);
    if (strcmp(format, "md") == 0) eval_write_md(&t, fp);
    else if (strcmp(format, "csv") == 0) eval_write_csv(&t, fp);
    else eval_write_json(&t, fp);
    atomic_commit_or_die(&af);
    eval_free(&t);
    method_rankings_free(ms, n);
    interactions_free(&ia);
    close_stdout();
    return 0;
}
