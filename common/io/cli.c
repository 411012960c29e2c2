/* cli.c - parsing of the options every program shares, and checked number parsing. */
#include "io/cli.h"

#include "io/err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char **cli_argv;

void cli_common_init(cli_common *c, char **argv) {
    cli_argv = argv;
    c->seed = 1;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = n > 0 ? (int)n : 1;
    c->quiet = false;
    c->log_every = 10;
}

bool cli_common_opt(int opt, const char *arg, cli_common *c, const char *usage) {
    switch (opt) {
    case OPT_HELP:
        fputs(usage, stdout);
        close_stdout();
        exit(0);
    case OPT_VERSION:
        printf("%s %s\n", err_prog(), ITREK_VERSION);
        close_stdout();
        exit(0);
    case OPT_SEED: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        if (errno || end == arg || *end || arg[0] == '-') die_usage(usage, "--seed: not a non-negative integer: '%s'", arg);
        c->seed = v;
        return true;
    }
    case OPT_THREADS: c->threads = (int)cli_long("--threads", arg, 1, 1024, usage); return true;
    case OPT_QUIET: c->quiet = true; return true;
    case OPT_LOG_EVERY: c->log_every = cli_double("--log-every", arg, 0, 1e9, usage); return true;
    /* getopt leaves the offending word at argv[optind - 1] */
    case '?': die_usage(usage, "unknown option '%s'", cli_argv && optind > 0 ? cli_argv[optind - 1] : "?");
    case ':': die_usage(usage, "option '%s' needs a value", cli_argv && optind > 0 ? cli_argv[optind - 1] : "?");
    default: return false;
    }
}

const char *cli_device(const char *arg, const char *usage) {
    if (strcmp(arg, "cpu") != 0 && strcmp(arg, "cuda") != 0) die_usage(usage, "--device: expected cpu or cuda, not '%s'", arg);
    return arg;
}

const char *cli_precision(const char *arg, const char *usage) {
    if (strcmp(arg, "fp32") != 0 && strcmp(arg, "bf16") != 0) die_usage(usage, "--precision: expected fp32 or bf16, not '%s'", arg);
    return arg;
}

bool cli_device_precision(const char *device, const char *precision, const char *usage) {
    bool cuda = device && strcmp(device, "cuda") == 0;
    if (cuda && precision && strcmp(precision, "fp32") == 0)
        die_usage(usage, "--precision fp32: --device cuda computes in bf16 (docs/gpu.md); fp32 is the CPU's");
    return !cuda && precision && strcmp(precision, "bf16") == 0;
}

long cli_long(const char *name, const char *arg, long min, long max, const char *usage) {
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end) die_usage(usage, "%s: not an integer: '%s'", name, arg);
    if (v < min || v > max) die_usage(usage, "%s: %ld is outside [%ld, %ld]", name, v, min, max);
    return v;
}

double cli_double(const char *name, const char *arg, double min, double max, const char *usage) {
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno || end == arg || *end || !isfinite(v)) die_usage(usage, "%s: not a number: '%s'", name, arg);
    if (v < min || v > max) die_usage(usage, "%s: %g is outside [%g, %g]", name, v, min, max);
    return v;
}

int cli_doubles(const char *name, const char *arg, double *out, int max, const char *usage) {
    int n = 0;
    char *copy = xstrdup(arg), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max) die_usage(usage, "%s: more than %d values", name, max);
        out[n++] = cli_double(name, tok, -1e300, 1e300, usage);
    }
    free(copy);
    if (n == 0) die_usage(usage, "%s: no values", name);
    return n;
}

int cli_ints(const char *name, const char *arg, int *out, int max, const char *usage) {
    int n = 0;
    char *copy = xstrdup(arg), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (n == max) die_usage(usage, "%s: more than %d values", name, max);
        out[n++] = (int)cli_long(name, tok, -2147483647L, 2147483647L, usage);
    }
    free(copy);
    if (n == 0) die_usage(usage, "%s: no values", name);
    return n;
}
