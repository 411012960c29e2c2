/* mp2json - print any ITREK stream (plain or zstd) as JSON lines: the header first. */
#include "io/cli.h"
#include "io/err.h"
#include "io/jsonview.h"
#include "io/stream.h"

#include <stdio.h>
#include <stdlib.h>

static const char USAGE[] =
    "usage: mp2json [--schema NAME] [--head N] [FILE]\n"
    "Prints a stream as JSON lines (header first); bin values as {\"$bin\": base64}.\n"
    "  --schema NAME  require this schema\n"
    "  --head N       stop after N records (header not counted)\n" CLI_COMMON_USAGE;

static void print(const msgpack_object *o) {
    json_t *j = json_from_msgpack(o);
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII * 0 | JSON_REAL_PRECISION(17));
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
    json_decref(j);
}

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    const char *schema = NULL;
    long head = -1;
    static const struct option opts[] = {{"schema", required_argument, 0, 's'}, {"head", required_argument, 0, 'n'},
                                         CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (c == 's') schema = optarg;
        else if (c == 'n') head = cli_long("--head", optarg, 0, 1L << 62, USAGE);
        else cli_common_opt(c, optarg, &cc, USAGE);
    }
    if (argc - optind > 1) die_usage(USAGE, "at most one input file");
    stream_reader *r = sr_open(optind < argc ? argv[optind] : NULL, schema, 1);
    print(sr_header(r));
    const msgpack_object *o;
    for (long n = 0; (head < 0 || n < head) && (o = sr_next(r)); n++) print(o);
    sr_close(r);
    close_stdout();
    return 0;
}
