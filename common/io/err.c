/* err.c - error reporting, temp-file cleanup and checked allocation. */
#include "io/err.h"

#include "io/atomic.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *prog_name = "itrek";
static pthread_t main_thread;
static bool have_main_thread;

/* Registered temporary files. A handful at most per process, so a small fixed table. */
#define MAX_TMP 16
static char *tmp_paths[MAX_TMP];
static bool tmp_is_dir[MAX_TMP];

static void cleanup_tmp(void) {
    for (int i = 0; i < MAX_TMP; i++)
        if (tmp_paths[i]) {
            if (tmp_is_dir[i]) remove_flat_dir(tmp_paths[i]);
            else unlink(tmp_paths[i]);
            free(tmp_paths[i]);
            tmp_paths[i] = NULL;
        }
}

static void on_signal(int sig) {
    /* unlink and rmdir are async-signal-safe; the table is only read here. A directory whose
     * files were already committed into it stays (opendir is not safe in a handler); its name
     * PATH.tmp.PID says what it is, and the next atomic_dir_begin of that PID clears it. */
    for (int i = 0; i < MAX_TMP; i++)
        if (tmp_paths[i]) { if (tmp_is_dir[i]) rmdir(tmp_paths[i]); else unlink(tmp_paths[i]); }
    signal(sig, SIG_DFL);
    raise(sig);
}

void err_set_prog(const char *argv0) {
    const char *slash = argv0 ? strrchr(argv0, '/') : NULL;
    prog_name = slash ? slash + 1 : (argv0 ? argv0 : "itrek");
    if (strncmp(prog_name, "itrek-", 6) == 0) prog_name += 6;
    main_thread = pthread_self();
    have_main_thread = true;
    atexit(cleanup_tmp);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, on_signal);
}

const char *err_prog(void) { return prog_name; }

static void register_tmp(const char *path, bool dir) {
    for (int i = 0; i < MAX_TMP; i++)
        if (!tmp_paths[i]) { tmp_is_dir[i] = dir; tmp_paths[i] = xstrdup(path); return; }
    die("too many open temporary outputs");
}
void err_register_tmp(const char *path) { register_tmp(path, false); }
void err_register_tmp_dir(const char *path) { register_tmp(path, true); }

void err_unregister_tmp(const char *path) {
    for (int i = 0; i < MAX_TMP; i++)
        if (tmp_paths[i] && strcmp(tmp_paths[i], path) == 0) { free(tmp_paths[i]); tmp_paths[i] = NULL; }
}

/* The end of every failure. From a worker thread (an allocation failing inside a parallel
 * region) exit() would run the atexit handlers while the other workers and the pool wait on
 * each other, and could hang; so a worker removes the temporaries itself and ends the process
 * at once. */
static noreturn void leave(int code) {
    if (have_main_thread && !pthread_equal(pthread_self(), main_thread)) {
        cleanup_tmp();
        _exit(code);
    }
    exit(code);
}

void die_at(const char *file, long record, const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    if (record >= 0) fprintf(stderr, "%s: error: %s:%ld: ", prog_name, file, record);
    else fprintf(stderr, "%s: error: %s: ", prog_name, file);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    leave(EXIT_DATA);
}

void die(const char *fmt, ...) {
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "%s: error: ", prog_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    leave(EXIT_DATA);
}

void die_usage(const char *usage, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (usage) fputs(usage, stderr);
    leave(EXIT_USAGE);
}

void warnf(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: warning: ", prog_name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) die("out of memory (%zu bytes)", n);
    return p;
}

char *xstrdup(const char *s) {
    char *d = strdup(s);
    if (!d) die("out of memory");
    return d;
}

void close_stdout(void) {
    if (fflush(stdout) != 0 || ferror(stdout) || fclose(stdout) != 0)
        die("<stdout>: write failed: %s", strerror(errno));
}
