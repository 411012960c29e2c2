/* mf-train - BPR matrix factorisation on the train part, early-stopped on valid. */
#include "io/cli.h"
#include "io/err.h"
#include "io/stream.h"
#include "rec/mf.h"

#include <stdio.h>
#include <string.h>

static const char USAGE[] =
    "usage: mf-train [options] [INTERACTIONS] [-o OUT]\n"
    "Trains BPR-MF on the train part of an itrek.interactions stream (stdin by default),\n"
    "early-stopped on the valid part (without one, e.g. after split --refit, exactly --epochs\n"
    "epochs, the last kept); writes itrek.mf.\n"
    "  --dim N            latent dimension (default 64)\n"
    "  --lr X             SGD learning rate (default 0.1)\n"
    "  --reg X            L2 on user and item vectors (default 0.01)\n"
    "  --reg-bias X       L2 on item biases (default 0.01)\n"
    "  --init-std X       initial vector entries ~ N(0, X^2) (default 0.1)\n"
    "  --epochs N         at most N epochs (default 200)\n"
    "  --batch N          triples per mini-batch (default 1: plain SGD)\n"
    "  --negatives N      negatives per positive (default 4)\n"
    "  --eval-every N     evaluate on valid every N epochs (default 5)\n"
    "  --patience N       stop after N evaluations without improvement (default 4)\n"
    "  --metric M         ndcg10 (default) or hr10, on valid\n"
    "  --positives P      liked (default: ratings >= like) or all train interactions\n"
    "  --recency TAU      weight a positive's step by max(FLOOR, exp(-age/TAU)), age = number of\n"
    "                     the user's more recent train positives (default 5; 0: off)\n"
    "  --recency-floor F  the smallest weight (default 0.05)\n"
    "  -o, --output PATH  output (default stdout); a .zst name compresses\n"
    "  -z, --zstd         compress the output\n" CLI_COMMON_USAGE;

enum { O_DIM = OPT_FIRST_STAGE, O_LR, O_REG, O_REGB, O_INIT, O_EPOCHS, O_BATCH, O_NEG, O_EVAL, O_PAT, O_METRIC, O_POS, O_REC, O_RECF };

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    mf_params p;
    mf_params_default(&p);
    const char *out = NULL;
    bool zstd = false;
    static const struct option opts[] = {
        {"dim", 1, 0, O_DIM},       {"lr", 1, 0, O_LR},           {"reg", 1, 0, O_REG},
        {"reg-bias", 1, 0, O_REGB}, {"init-std", 1, 0, O_INIT},   {"epochs", 1, 0, O_EPOCHS},
        {"batch", 1, 0, O_BATCH},   {"negatives", 1, 0, O_NEG},   {"eval-every", 1, 0, O_EVAL},
        {"patience", 1, 0, O_PAT},  {"metric", 1, 0, O_METRIC},   {"positives", 1, 0, O_POS},
        {"recency", 1, 0, O_REC},   {"recency-floor", 1, 0, O_RECF},
        {"output", 1, 0, 'o'},      {"zstd", 0, 0, 'z'},          CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":ho:z", opts, NULL)) != -1) {
        switch (c) {
        case O_DIM: p.dim = (int)cli_long("--dim", optarg, 1, 4096, USAGE); break;
        case O_LR: p.lr = cli_double("--lr", optarg, 0, 100, USAGE); break;
        case O_REG: p.reg = cli_double("--reg", optarg, 0, 100, USAGE); break;
        case O_REGB: p.reg_bias = cli_double("--reg-bias", optarg, 0, 100, USAGE); break;
        case O_INIT: p.init_std = cli_double("--init-std", optarg, 0, 10, USAGE); break;
        case O_EPOCHS: p.epochs = (int)cli_long("--epochs", optarg, 1, 100000, USAGE); break;
        case O_BATCH: p.batch = (int)cli_long("--batch", optarg, 1, 1 << 20, USAGE); break;
        case O_NEG: p.negatives = (int)cli_long("--negatives", optarg, 1, 1000, USAGE); break;
        case O_EVAL: p.eval_every = (int)cli_long("--eval-every", optarg, 1, 100000, USAGE); break;
        case O_PAT: p.patience = (int)cli_long("--patience", optarg, 1, 100000, USAGE); break;
        case O_METRIC:
            if (strcmp(optarg, "ndcg10") == 0) p.metric = MF_METRIC_NDCG10;
            else if (strcmp(optarg, "hr10") == 0) p.metric = MF_METRIC_HR10;
            else die_usage(USAGE, "--metric: expected ndcg10 or hr10, got '%s'", optarg);
            break;
        case O_POS:
            if (strcmp(optarg, "liked") == 0) p.positives_all = false;
            else if (strcmp(optarg, "all") == 0) p.positives_all = true;
            else die_usage(USAGE, "--positives: expected liked or all, got '%s'", optarg);
            break;
        case O_REC: p.recency = cli_double("--recency", optarg, 0, 1e9, USAGE); break;
        case O_RECF: p.recency_floor = cli_double("--recency-floor", optarg, 0, 1, USAGE); break;
        case 'o': out = optarg; break;
        case 'z': zstd = true; break;
        default: cli_common_opt(c, optarg, &cc, USAGE);
        }
    }
    if (argc - optind > 1) die_usage(USAGE, "at most one input file");
    p.seed = cc.seed;
    p.threads = cc.threads;
    p.quiet = cc.quiet;
    p.log_every = cc.log_every;

    interactions ia;
    interactions_load(&ia, optind < argc ? argv[optind] : NULL);
    size_t n_train = 0;
    for (size_t k = 0; k < ia.n; k++) n_train += ia.v[k].part == PART_TRAIN;
    if (n_train == 0) die_at(ia.source, -1, "no train interactions to learn from");
    mf_model m;
    mf_train(&m, &ia, &p);
    mf_write(&m, &p, out, zstd, ia.source);
    if (!cc.quiet)
    {
        if (m.best_epoch > 0)
            fprintf(stderr, "mf-train: %d epochs, best epoch %d, valid %s %.5f, %.2f s, %.0f triples/s\n", m.epochs_run,
                    m.best_epoch, p.metric == MF_METRIC_HR10 ? "HR@10" : "NDCG@10", m.best_valid, m.train_seconds,
                    m.train_seconds > 0 ? m.triples / m.train_seconds : 0);
        else
            fprintf(stderr, "mf-train: %d epochs, no valid part (last epoch kept), %.2f s, %.0f triples/s\n", m.epochs_run,
                    m.train_seconds, m.train_seconds > 0 ? m.triples / m.train_seconds : 0);
    }
    mf_free(&m);
    interactions_free(&ia);
    close_stdout();
    return 0;
}
