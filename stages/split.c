/* split - ratings to an itrek.interactions stream (and the catalogue to itrek.items). */
#include "io/cli.h"
#include "io/err.h"
#include "io/stream.h"
#include "rec/split.h"

#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: split (--ml100k DIR | --ratings FILE) [options] [-o OUT]\n"
    "Splits ratings per user by time into train / valid / test; writes itrek.interactions.\n"
    "  --ml100k DIR       MovieLens-100K directory (u.data, u.item)\n"
    "  --ratings FILE     generic table: user item rating timestamp (tab, comma, ';' or '::')\n"
    "  --scheme S         ratio (default) or loo (RecRanker leave-one-out over liked ratings)\n"
    "  --ratio A,B,C      train,valid,test fractions for ratio (default 0.8,0.1,0.1)\n"
    "  --like R           ratings >= R are positives (default 4)\n"
    "  --dislike R        ratings <= R are dislikes, kept by loo when early (default 2)\n"
    "  --refit            valid ratings join train (empty valid part): the test run's split,\n"
    "                     once model selection on valid is done\n"
    "  --catalog FILE     also write the catalogue (itrek.items) to FILE (needs --ml100k)\n"
    "  -o, --output PATH  output (default stdout); a .zst name compresses\n"
    "  -z, --zstd         compress the output\n" CLI_COMMON_USAGE;

enum { OPT_ML100K = OPT_FIRST_STAGE, OPT_RATINGS, OPT_SCHEME, OPT_RATIO, OPT_LIKE, OPT_DISLIKE, OPT_CATALOG, OPT_REFIT };

static void write_catalog(const char *path, const char *dir, bool zstd) {
    catalog c;
    catalog_read_ml100k(&c, dir);
    items_write(path, zstd, &c, dir);
    catalog_free(&c);
}

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    const char *ml100k = NULL, *table = NULL, *out = NULL, *catalog_out = NULL;
    bool zstd = false;
    split_params p = {SPLIT_RATIO, {0.8, 0.1, 0.1}, 4, 2, false};
    static const struct option opts[] = {
        {"ml100k", required_argument, 0, OPT_ML100K}, {"ratings", required_argument, 0, OPT_RATINGS},
        {"scheme", required_argument, 0, OPT_SCHEME}, {"ratio", required_argument, 0, OPT_RATIO},
        {"like", required_argument, 0, OPT_LIKE},     {"dislike", required_argument, 0, OPT_DISLIKE},
        {"catalog", required_argument, 0, OPT_CATALOG}, {"refit", no_argument, 0, OPT_REFIT},
        {"output", required_argument, 0, 'o'},
        {"zstd", no_argument, 0, 'z'},                CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":ho:z", opts, NULL)) != -1) {
        switch (c) {
        case OPT_ML100K: ml100k = optarg; break;
        case OPT_RATINGS: table = optarg; break;
        case OPT_SCHEME:
            if (strcmp(optarg, "ratio") == 0) p.scheme = SPLIT_RATIO;
            else if (strcmp(optarg, "loo") == 0) p.scheme = SPLIT_LOO;
            else die_usage(USAGE, "--scheme: expected ratio or loo, got '%s'", optarg);
            break;
        case OPT_RATIO: {
            double r[3];
            if (cli_doubles("--ratio", optarg, r, 3, USAGE) != 3) die_usage(USAGE, "--ratio: expected three fractions");
            if (r[0] <= 0 || r[1] < 0 || r[2] < 0 || r[0] + r[1] + r[2] > 1 + 1e-9 || r[0] + r[1] + r[2] < 1 - 1e-9)
                die_usage(USAGE, "--ratio: fractions must be non-negative and sum to 1");
            memcpy(p.ratio, r, sizeof r);
            break;
        }
        case OPT_LIKE: p.like = cli_double("--like", optarg, -1e9, 1e9, USAGE); break;
        case OPT_DISLIKE: p.dislike = cli_double("--dislike", optarg, -1e9, 1e9, USAGE); break;
        case OPT_CATALOG: catalog_out = optarg; break;
        case OPT_REFIT: p.refit = true; break;
        case 'o': out = optarg; break;
        case 'z': zstd = true; break;
        default: cli_common_opt(c, optarg, &cc, USAGE);
        }
    }
    if (optind < argc) die_usage(USAGE, "unexpected argument '%s'", argv[optind]);
    if (!ml100k == !table) die_usage(USAGE, "give exactly one of --ml100k DIR and --ratings FILE");
    if (catalog_out && !ml100k) die_usage(USAGE, "--catalog needs --ml100k");
    if (p.dislike >= p.like) die_usage(USAGE, "--dislike must be below --like");

    ratings r;
    char source[4096];
    if (ml100k) { ratings_read_ml100k(&r, ml100k); snprintf(source, sizeof source, "%s/u.data", ml100k); }
    else { ratings_read_table(&r, table); snprintf(source, sizeof source, "%s", table); }
    uint8_t *part = xmalloc(r.n);
    split_stats st;
    split_assign(&r, &p, part, &st, source);

    if (catalog_out) write_catalog(catalog_out, ml100k, false);

    interactions_header h = {p.scheme == SPLIT_RATIO ? "ratio" : "loo", {p.ratio[0], p.ratio[1], p.ratio[2]}, p.like,
                             p.dislike, p.refit, source, {st.count[0], st.count[1], st.count[2]}, st.dropped, st.users,
                             st.users_with_test_pos};
    stream_writer *w = interactions_write_begin(out, zstd, &h);
    for (size_t k = 0; k < r.n; k++) {
        if (part[k] == PART_DROP) continue;
        const rating_row *x = &r.v[k];
        interactions_put(w, &(interaction){x->user, x->item, x->rating, x->ts, part[k]}, p.like);
    }
    sw_close(w);
    if (!cc.quiet)
        fprintf(stderr, "split: %s%s: %d users, %d items; train %zu, valid %zu, test %zu, dropped %zu; %d users with a test positive\n",
                p.scheme == SPLIT_RATIO ? "ratio" : "loo", p.refit ? " (refit)" : "", st.users, st.items, st.count[0], st.count[1], st.count[2],
                st.dropped, st.users_with_test_pos);
    free(part);
    ratings_free(&r);
    close_stdout();
    return 0;
}
