/* json2mp - JSON lines (header first) back into an ITREK stream; the way back from mp2json. */
#include "io/cli.h"
#include "io/err.h"
#include "io/jsonview.h"
#include "io/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: json2mp [-o OUT] [-z] [FILE]\n"
    "Reads JSON lines (one object per line, the header first) and writes a stream.\n"
    "  -o, --output PATH  output (default stdout); a .zst name compresses\n"
    "  -z, --zstd         compress\n" CLI_COMMON_USAGE;

int main(int argc, char **argv) {
    err_set_prog(argv[0]);
    cli_common cc;
    cli_common_init(&cc, argv);
    const char *out = NULL;
    bool zstd = false;
    static const struct option opts[] = {{"output", required_argument, 0, 'o'}, {"zstd", no_argument, 0, 'z'},
                                         CLI_COMMON_OPTIONS, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":ho:z", opts, NULL)) != -1) {
        if (c == 'o') out = optarg;
        else if (c == 'z') zstd = true;
        else cli_common_opt(c, optarg, &cc, USAGE);
    }
    if (argc - optind > 1) die_usage(USAGE, "at most one input file");
    const char *name = optind < argc ? argv[optind] : "<stdin>";
    FILE *in = optind < argc ? fopen(argv[optind], "r") : stdin;
    if (!in) die_at(name, -1, "cannot open: %s", strerror(errno));
    stream_writer *w = sw_open(out, zstd);
    char *line = NULL;
    size_t cap = 0;
    long rec = 0;
    while (getline(&line, &cap, in) > 0) {
        if (line[strspn(line, " \t\r\n")] == 0) continue;
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (!j) die_at(name, rec, "not JSON: %s", je.text);
        if (!json_is_object(j)) die_at(name, rec, "a record must be a JSON object");
        if (rec == 0) {
            json_t *s = json_object_get(j, "schema"), *v = json_object_get(j, "version");
            if (!json_is_string(s)) die_at(name, 0, "missing header: field 'schema' absent or not a string");
            if (!json_is_integer(v)) die_at(name, 0, "field 'version': absent or not an integer");
        }
        char err[256];
        if (json_to_msgpack(sw_pk(w), j, err, sizeof err)) die_at(name, rec, "%s", err);
        sw_end_record(w);
        json_decref(j);
        rec++;
    }
    if (ferror(in)) die_at(name, -1, "read failed: %s", strerror(errno));
    if (rec == 0) die_at(name, 0, "empty input: no header line");
    free(line);
    if (in != stdin) fclose(in);
    sw_close(w);
    close_stdout();
    return 0;
}
