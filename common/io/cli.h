/* cli.h - option conventions shared by every program (docs/DESIGN.md, 7 "Conventions for every program").
 *
 * Every program takes --help (usage to stdout, exit 0), --version, --seed N, --threads N
 * (default: all cores), --quiet and --log-every SECONDS. Stages use getopt_long with
 * CLI_COMMON_OPTIONS appended to their own table and pass unknown codes to cli_common_opt().
 */
#ifndef ITREK_IO_CLI_H
#define ITREK_IO_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    uint64_t seed;
    int threads;
    bool quiet;
    double log_every;
} cli_common;

enum { OPT_HELP = 'h', OPT_VERSION = 0x1000, OPT_SEED, OPT_THREADS, OPT_QUIET, OPT_LOG_EVERY, OPT_FIRST_STAGE = 0x1100 };

#define CLI_COMMON_OPTIONS                                                                   \
    {"help", no_argument, 0, OPT_HELP}, {"version", no_argument, 0, OPT_VERSION},            \
    {"seed", required_argument, 0, OPT_SEED}, {"threads", required_argument, 0, OPT_THREADS}, \
    {"quiet", no_argument, 0, OPT_QUIET}, {"log-every", required_argument, 0, OPT_LOG_EVERY}

#define CLI_COMMON_USAGE                                                                    \
    "Common options:\n"                                                                     \
    "  --seed N          seed for every random choice (default 1)\n"                        \
    "  --threads N       worker threads (default: all cores)\n"                             \
    "  --quiet           no progress output\n"                                              \
    "  --log-every S     seconds between progress lines when stderr is not a terminal (10)\n" \
    "  --help, --version\n"

/* Defaults; ARGV is kept to name a bad option. Stages pass getopt_long an option string that
 * starts with ':' so that getopt prints nothing and a missing value comes back as ':'. */
void cli_common_init(cli_common *c, char **argv);
/* Handles a common option (exits for --help/--version, and with one line naming the option on
 * '?' (unknown) and ':' (value missing)); false if not common. */
bool cli_common_opt(int opt, const char *arg, cli_common *c, const char *usage);
/* --device (cpu or cuda) and --precision (fp32 or bf16): the value, or a usage error. */
const char *cli_device(const char *arg, const char *usage);
const char *cli_precision(const char *arg, const char *usage);
/* The pair together: cuda computes in bf16, so --precision fp32 there is a usage error. True
 * when the CPU's bf16 products are asked for (device cpu or NULL, precision bf16). */
bool cli_device_precision(const char *device, const char *precision, const char *usage);
long cli_long(const char *name, const char *arg, long min, long max, const char *usage);
double cli_double(const char *name, const char *arg, double min, double max, const char *usage);
/* Comma-separated numbers into out[max]; returns the count. */
int cli_doubles(const char *name, const char *arg, double *out, int max, const char *usage);
int cli_ints(const char *name, const char *arg, int *out, int max, const char *usage);

#endif
