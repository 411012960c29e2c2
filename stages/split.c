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
    stream_writer *w = sw_open(path, zstd);
    msgpack_packer *pk = sw_pk(w);
    msgpack_pack_map(pk, 5);
    sw_header_common(w, "itrek.items", 1);
    pk_kv_int(pk, "items", c.count);
    pk_str(pk, "inputs");
    msgpack_pack_map(pk, 1);
    pk_kv_str(pk, "ml100k", dir);
    sw_end_record(w);
    for (int32_t i = 0; i < c.n_items; i++) {
        const item_info *it = &c.by_id[i];
        if (!it->title) continue;
        msgpack_pack_map(pk, 4);
        pk_kv_int(pk, "item", it->id);
        pk_kv_str(pk, "title", it->title);
        pk_kv_int(pk, "year", it->year);
        pk_str(pk, "genres");
        msgpack_pack_array(pk, it->n_genres);
        for (int g = 0; g < it->n_genres; g++) pk_str(pk, it->genres[g]);
        sw_end_record(w);
    }
    sw_close(w);
    catalog_free(&c);
}

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc);
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
    while ((c = getopt_long(argc, argv, "ho:z", opts, NULL)) != -1) {
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

    stream_writer *w = sw_open(out, zstd);
    msgpack_packer *pk = sw_pk(w);
    msgpack_pack_map(pk, 7);
    sw_header_common(w, "itrek.interactions", 1);
    pk_str(pk, "params");
    msgpack_pack_map(pk, p.refit ? 5 : 4); /* "refit" only when set: older streams stay byte-identical */
    pk_kv_str(pk, "scheme", p.scheme == SPLIT_RATIO ? "ratio" : "loo");
    pk_str(pk, "ratio");
    msgpack_pack_array(pk, 3);
    for (int k = 0; k < 3; k++) msgpack_pack_double(pk, p.ratio[k]);
    pk_kv_num(pk, "like", p.like);
    pk_kv_num(pk, "dislike", p.dislike);
    if (p.refit) pk_kv_bool(pk, "refit", true);
    pk_str(pk, "inputs");
    msgpack_pack_map(pk, 1);
    pk_kv_str(pk, "ratings", source);
    pk_str(pk, "counts");
    msgpack_pack_map(pk, 4);
    for (int k = 0; k < 3; k++) pk_kv_int(pk, part_name((part_t)k), (int64_t)st.count[k]);
    pk_kv_int(pk, "dropped", (int64_t)st.dropped);
    pk_str(pk, "users");
    msgpack_pack_map(pk, 2);
    pk_kv_int(pk, "all", st.users);
    pk_kv_int(pk, "with_test_positive", st.users_with_test_pos);
    sw_end_record(w);
    for (size_t k = 0; k < r.n; k++) {
        if (part[k] == PART_DROP) continue;
        const rating_row *x = &r.v[k];
        msgpack_pack_map(pk, 6);
        pk_kv_int(pk, "user", x->user);
        pk_kv_int(pk, "item", x->item);
        pk_kv_num(pk, "rating", x->rating);
        pk_kv_int(pk, "ts", x->ts);
        pk_kv_str(pk, "part", part_name((part_t)part[k]));
        pk_kv_bool(pk, "liked", x->rating >= p.like);
        sw_end_record(w);
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
