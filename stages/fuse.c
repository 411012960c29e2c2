/* fuse - RecRanker's hybrid ranking from the language model's answers: itrek.rankings. */
#include "io/cli.h"
#include "io/err.h"
#include "rec/fuse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: fuse --queries FILE [options] [ANSWERS] [-o OUT]\n"
    "Parses the pointwise, pairwise and listwise answers (itrek.answers, stdin or ANSWERS) to the\n"
    "queries (itrek.queries) and writes, for every user of the queries, the rankings base,\n"
    "pointwise, pairwise, listwise and hybrid (itrek.rankings). See docs/fuse.md.\n"
    "  --queries PATH       itrek.queries the answers answer (required)\n"
    "  --c1 X               pointwise base-rank bonus: U_point = score + c1 (n - m) (default 0.05)\n"
    "  --c2 X               pairwise: c2 to a consistent winner, c2/2 to each otherwise (default 0.5)\n"
    "  --c3 X               listwise: c3 (5 - p) at position p of the top five (default 0.025)\n"
    "  --lambda L1,L2,L3    hybrid weights of U_point, U_pair, U_list (default 1/3 each)\n"
    "  --point-score MODE   pointwise score from log-probabilities: expected (default) or argmax\n"
    "  --allow-missing      a query without an answer counts as unparsed (default: an error)\n"
    "  --label TEXT         prefix each reranked method's name with TEXT and a space (e.g.\n"
    "                       'zero-shot' writes 'zero-shot hybrid'); base keeps its name\n"
    "  --methods LIST       write only these methods (base,pointwise,pairwise,listwise,hybrid)\n"
    "  -o, --output PATH    output (default stdout); a .zst name compresses\n"
    "  -z, --zstd           compress the output\n" CLI_COMMON_USAGE;

enum { O_QUERIES = OPT_FIRST_STAGE, O_C1, O_C2, O_C3, O_LAMBDA, O_POINT_SCORE, O_ALLOW_MISSING, O_LABEL, O_METHODS };

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    fuse_params p;
    fuse_params_default(&p);
    fuse_io io = {0};
    static const struct option opts[] = {{"queries", 1, 0, O_QUERIES},
                                         {"c1", 1, 0, O_C1},
                                         {"c2", 1, 0, O_C2},
                                         {"c3", 1, 0, O_C3},
                                         {"lambda", 1, 0, O_LAMBDA},
                                         {"point-score", 1, 0, O_POINT_SCORE},
                                         {"allow-missing", 0, 0, O_ALLOW_MISSING},
                                         {"label", 1, 0, O_LABEL},
                                         {"methods", 1, 0, O_METHODS},
                                         {"output", 1, 0, 'o'},
                                         {"zstd", 0, 0, 'z'},
                                         CLI_COMMON_OPTIONS,
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":ho:z", opts, NULL)) != -1) {
        switch (c) {
        case O_QUERIES: io.queries = optarg; break;
        case O_C1: p.c1 = cli_double("--c1", optarg, -1e6, 1e6, USAGE); break;
        case O_C2: p.c2 = cli_double("--c2", optarg, -1e6, 1e6, USAGE); break;
        case O_C3: p.c3 = cli_double("--c3", optarg, -1e6, 1e6, USAGE); break;
        case O_LAMBDA:
            if (cli_doubles("--lambda", optarg, p.lambda, 3, USAGE) != 3)
                die_usage(USAGE, "--lambda: expected three weights L1,L2,L3, got '%s'", optarg);
            for (int k = 0; k < 3; k++)
                if (p.lambda[k] < -1e6 || p.lambda[k] > 1e6) die_usage(USAGE, "--lambda: weights must lie in [-1e6, 1e6]");
            break;
        case O_POINT_SCORE:
            if (strcmp(optarg, "expected") == 0) p.point_score = FUSE_SCORE_EXPECTED;
            else if (strcmp(optarg, "argmax") == 0) p.point_score = FUSE_SCORE_ARGMAX;
            else die_usage(USAGE, "--point-score: expected 'expected' or 'argmax', got '%s'", optarg);
            break;
        case O_ALLOW_MISSING: p.allow_missing = true; break;
        case O_LABEL:
            if (!optarg[0] || strlen(optarg) > 20) die_usage(USAGE, "--label: 1 to 20 bytes, got '%s'", optarg);
            p.label = optarg;
            break;
        case O_METHODS: {
            char *copy = xstrdup(optarg), *save = NULL;
            for (char *m = strtok_r(copy, ",", &save); m; m = strtok_r(NULL, ",", &save)) {
                int k = 0;
                while (k < FUSE_NMETHODS && strcmp(m, fuse_method_name(k)) != 0) k++;
                if (k == FUSE_NMETHODS)
                    die_usage(USAGE, "--methods: unknown method '%s' (base, pointwise, pairwise, listwise, hybrid)", m);
                p.methods |= 1u << k;
            }
            free(copy);
            if (!p.methods) die_usage(USAGE, "--methods: empty list");
            break;
        }
        case 'o': io.output = optarg; break;
        case 'z': io.zstd = true; break;
        default: cli_common_opt(c, optarg, &cc, USAGE);
        }
    }
    if (!io.queries) die_usage(USAGE, "--queries FILE is required");
    if (argc - optind > 1) die_usage(USAGE, "at most one answers file");
    io.answers = optind < argc ? argv[optind] : NULL;
    io.quiet = cc.quiet;
    fuse_run(&io, &p);
    close_stdout();
    return 0;
}
