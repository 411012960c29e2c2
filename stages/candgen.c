/* candgen - the MF model's top-N unseen items per user: itrek.candidates. */
#include "io/cli.h"
#include "io/err.h"
#include "io/stream.h"
#include "records/candidates.h"
#include "rec/mf.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char USAGE[] =
    "usage: candgen --mf MODEL [options] [INTERACTIONS] [-o OUT]\n"
    "Scores every item for every user with the MF model and keeps the top N among items the\n"
    "user has not interacted with in train (nor valid, when ranking for test).\n"
    "  --mf PATH          itrek.mf model (required)\n"
    "  --for PART         test (default) or valid\n"
    "  -n, --top N        candidates per user (default 10)\n"
    "  --users WHICH      all (default) or eval: only users with a positive in the --for part\n"
    "  -o, --output PATH  output (default stdout); a .zst name compresses\n"
    "  -z, --zstd         compress the output\n" CLI_COMMON_USAGE;

enum { O_MF = OPT_FIRST_STAGE, O_FOR, O_USERS };

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    const char *mf_path = NULL, *out = NULL;
    part_t target = PART_TEST;
    int n = 10;
    bool zstd = false, eval_only = false;
    static const struct option opts[] = {{"mf", 1, 0, O_MF},      {"for", 1, 0, O_FOR},    {"top", 1, 0, 'n'},
                                         {"users", 1, 0, O_USERS}, {"output", 1, 0, 'o'}, {"zstd", 0, 0, 'z'},
                                         CLI_COMMON_OPTIONS,       {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":hn:o:z", opts, NULL)) != -1) {
        switch (c) {
        case O_MF: mf_path = optarg; break;
        case O_FOR:
            if (strcmp(optarg, "test") == 0) target = PART_TEST;
            else if (strcmp(optarg, "valid") == 0) target = PART_VALID;
            else die_usage(USAGE, "--for: expected test or valid, got '%s'", optarg);
            break;
        case 'n': n = (int)cli_long("--top", optarg, 1, 100000, USAGE); break;
        case O_USERS:
            if (strcmp(optarg, "all") == 0) eval_only = false;
            else if (strcmp(optarg, "eval") == 0) eval_only = true;
            else die_usage(USAGE, "--users: expected all or eval, got '%s'", optarg);
            break;
        case 'o': out = optarg; break;
        case 'z': zstd = true; break;
        default: cli_common_opt(c, optarg, &cc, USAGE);
        }
    }
    if (!mf_path) die_usage(USAGE, "--mf MODEL is required");
    if (argc - optind > 1) die_usage(USAGE, "at most one input file");

    interactions ia;
    interactions_load(&ia, optind < argc ? argv[optind] : NULL);
    if (ia.n == 0) die_at(ia.source, -1, "no interactions");
    mf_model m;
    mf_read(&m, mf_path);
    if (ia.n_users > m.n_users || ia.n_items > m.n_items)
        die_at(mf_path, 0, "field 'users'/'items': the model covers %d users and %d items, the interactions need %d and %d",
               m.n_users, m.n_items, ia.n_users, ia.n_items);

    user_lists train, valid, target_pos;
    user_lists_build(&train, &ia, PART_BIT(PART_TRAIN), -INFINITY);
    user_lists_build(&valid, &ia, PART_BIT(PART_VALID), -INFINITY);
    user_lists_build(&target_pos, &ia, PART_BIT(target), ia.like);
    const user_lists *excl[2] = {&train, &valid};
    int n_excl = target == PART_TEST ? 2 : 1;

    /* Users: every user with any interaction (or, with --users eval, a positive to find). */
    int32_t *users = xmalloc(sizeof *users * (size_t)(ia.n_users + 1));
    uint8_t *active = xcalloc((size_t)ia.n_users + 1, 1);
    for (size_t k = 0; k < ia.n; k++) active[ia.v[k].user] = 1;
    int nu = 0;
    for (int32_t u = 0; u < ia.n_users; u++)
        if (eval_only ? ul_len(&target_pos, u) > 0 : active[u]) users[nu++] = u;
    int32_t *items = xmalloc(sizeof *items * (size_t)nu * n);
    float *scores = xmalloc(sizeof *scores * (size_t)nu * n);
    mf_topn(&m, users, nu, excl, n_excl, n, cc.threads, items, scores);

    candidates_header h = {part_name(target), n, eval_only, ia.scheme, ia.source, mf_path, nu};
    stream_writer *w = candidates_write_begin(out, zstd, &h);
    for (int k = 0; k < nu; k++) {
        int have = 0;
        while (have < n && items[(size_t)k * n + have] >= 0) have++;
        candidates_put(w, users[k], items + (size_t)k * n, scores + (size_t)k * n, have);
    }
    sw_close(w);
    free(users); free(active); free(items); free(scores);
    user_lists_free(&train); user_lists_free(&valid); user_lists_free(&target_pos);
    mf_free(&m);
    interactions_free(&ia);
    close_stdout();
    return 0;
}
