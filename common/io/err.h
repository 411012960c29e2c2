/* err.h - the one way every ITREK program reports failure.
 *
 * Exit codes are fixed for all programs:
 *   0  success
 *   1  bad data or I/O failure:  "prog: error: FILE:RECORD: what"  (or "prog: error: FILE: what")
 *   2  usage error:              "prog: <reason>" then the usage text, on stderr
 *
 * Failing functions never return. Temporary outputs registered with
 * err_register_tmp() are removed on any exit that did not commit them, so a
 * failed run never leaves a plausible-looking artifact behind.
 */
#ifndef ITREK_IO_ERR_H
#define ITREK_IO_ERR_H

#include <stdarg.h>
#include <stddef.h>
#include <stdnoreturn.h>

enum { EXIT_OK = 0, EXIT_DATA = 1, EXIT_USAGE = 2 };

/* Set the program name printed before every message (basename of argv0). */
void err_set_prog(const char *argv0);
const char *err_prog(void);

/* Bad data at a record: "prog: error: FILE:RECORD: what". record < 0 omits it. */
noreturn void die_at(const char *file, long record, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Failure not tied to a file: "prog: error: what". */
noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error: "prog: reason", then usage on stderr, exit 2. */
noreturn void die_usage(const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A warning line: "prog: warning: what". */
void warnf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Temporary files that must vanish unless committed (see stream.h writer). */
void err_register_tmp(const char *path);
/* A temporary directory: removed with the plain files in it (io/atomic.h). */
void err_register_tmp_dir(const char *path);
void err_unregister_tmp(const char *path);

/* Checked allocation: dies with a clear message when memory runs out. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Flush and close stdout, dying on error (a full disk must not look like success). */
void close_stdout(void);

#endif
