/* atomic.h - the one way ITREK puts an output file or directory in place.
 *
 * An output is written under a temporary name beside it, PATH.tmp.PID (unique per process, so two
 * runs never write the same temporary), registered with err so that any exit or fatal signal that
 * did not commit it removes it; committing flushes, fsyncs, closes and renames it onto PATH. A
 * reader therefore sees either the previous file or the whole new one, never a half-written one.
 *
 * "-" (or NULL) means stdout: nothing to rename, and close_stdout() checks it at exit. A path that
 * exists and is not a regular file (/dev/null, a fifo) is written in place, never renamed over.
 *
 * Library code calls the forms returning 0 / -1 (errno set, temporary removed); stages call the
 * _or_die forms, which print "prog: error: PATH: what" and exit 1.
 */
#ifndef ITREK_IO_ATOMIC_H
#define ITREK_IO_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct atomic_file {
    char *path; /* the final name; NULL for stdout */
    char *tmp;  /* PATH.tmp.PID while open; NULL for stdout or a device */
    FILE *fp;
} atomic_file;

/* The temporary name for PATH: malloc'd "PATH.tmp.PID". */
char *atomic_tmp_name(const char *path);

int atomic_open(atomic_file *f, const char *path);
/* The name for messages: the final path, or "<stdout>". */
const char *atomic_name(const atomic_file *f);
int atomic_commit(atomic_file *f);
/* Close and remove the temporary (on a failed write). Safe on a closed file. */
void atomic_abort(atomic_file *f);

FILE *atomic_open_or_die(atomic_file *f, const char *path);
void atomic_commit_or_die(atomic_file *f);

/* json_dump_file through a temporary (jansson's flags). 0, or -1 with errno. */
struct json_t;
int json_dump_atomic(const struct json_t *j, const char *path, size_t flags);

/* Copies SRC to DST through a temporary. 0, or -1 with errno. */
int atomic_copy(const char *src, const char *dst);

/* A directory output: atomic_dir_begin makes PATH.tmp.PID (registered: removed with its files on
 * an exit that did not commit it) and returns its malloc'd name; atomic_dir_commit replaces PATH
 * (removing an old PATH directory's files first) by it. 0, or -1 with errno. */
char *atomic_dir_begin(const char *path);
int atomic_dir_commit(const char *tmp, const char *path);
/* Removes a directory and the plain files in it (checkpoints hold no subdirectories). */
void remove_flat_dir(const char *dir);

#endif
