/* atomic.c - outputs written under PATH.tmp.PID and renamed into place (atomic.h says why). */
#include "io/atomic.h"

#include "io/err.h"
#include "io/fault.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *atomic_tmp_name(const char *path) {
    size_t n = strlen(path) + 32;
    char *t = xmalloc(n);
    snprintf(t, n, "%s.tmp.%ld", path, (long)getpid());
    return t;
}

static bool is_regular_or_absent(const char *path) {
    struct stat st;
    return stat(path, &st) != 0 || S_ISREG(st.st_mode);
}

int atomic_open(atomic_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    if (!path || strcmp(path, "-") == 0) { f->fp = stdout; return 0; }
    f->path = xstrdup(path);
    if (!is_regular_or_absent(path)) {
        f->fp = io_gate() == 0 ? fopen(path, "wb") : NULL;
    } else {
        f->tmp = atomic_tmp_name(path);
        err_register_tmp(f->tmp);
        f->fp = io_gate() == 0 ? fopen(f->tmp, "wb") : NULL;
    }
    if (!f->fp) {
        int e = errno;
        atomic_abort(f);
        errno = e;
        return -1;
    }
    return 0;
}

const char *atomic_name(const atomic_file *f) { return f->path ? f->path : "<stdout>"; }

static void release(atomic_file *f) {
    if (f->tmp) { err_unregister_tmp(f->tmp); free(f->tmp); }
    free(f->path);
    f->tmp = f->path = NULL;
    f->fp = NULL;
}

int atomic_commit(atomic_file *f) {
    if (f->fp == stdout) { f->fp = NULL; return 0; } /* close_stdout() checks stdout */
    int ok = io_gate() == 0 && fflush(f->fp) == 0 && !ferror(f->fp);
    /* fsync before the rename, so a crash cannot leave PATH naming unwritten blocks; a device
     * (EINVAL) cannot be synced and need not be */
    if (ok && f->tmp && (io_gate() != 0 || (fsync(fileno(f->fp)) != 0 && errno != EINVAL))) ok = 0;
    int e = errno;
    int closed = io_gate() == 0; /* an injected failure still closes the file */
    if (fclose(f->fp) != 0) closed = 0;
    if (!closed && ok) { ok = 0; e = errno; }
    f->fp = NULL;
    if (ok && f->tmp && (io_gate() != 0 || rename(f->tmp, f->path) != 0)) { ok = 0; e = errno; }
    if (!ok) {
        atomic_abort(f);
        errno = e;
        return -1;
    }
    release(f);
    return 0;
}

void atomic_abort(atomic_file *f) {
    if (f->fp && f->fp != stdout) fclose(f->fp);
    if (f->tmp) unlink(f->tmp);
    release(f);
}

FILE *atomic_open_or_die(atomic_file *f, const char *path) {
    if (atomic_open(f, path) != 0) die_at(path, -1, "cannot create: %s", strerror(errno));
    return f->fp;
}

void atomic_commit_or_die(atomic_file *f) {
    char *name = f->path ? xstrdup(f->path) : NULL;
    if (atomic_commit(f) != 0) die_at(name ? name : "<stdout>", -1, "write failed: %s", strerror(errno));
    free(name);
}

int atomic_copy(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) return -1;
    atomic_file f;
    if (atomic_open(&f, dst) != 0) { int e = errno; fclose(in); errno = e; return -1; }
    char buf[1 << 16];
    size_t n;
    int ok = 1;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0) ok = io_write_all(f.fp, buf, n) == 0;
    if (ferror(in)) ok = 0;
    int e = errno;
    fclose(in);
    if (!ok) { atomic_abort(&f); errno = e ? e : EIO; return -1; }
    return atomic_commit(&f);
}

int json_dump_atomic(const json_t *j, const char *path, size_t flags) {
    atomic_file f;
    if (atomic_open(&f, path) != 0) return -1;
    if (json_dumpf(j, f.fp, flags) != 0) { atomic_abort(&f); errno = EIO; return -1; }
    return atomic_commit(&f);
}

void remove_flat_dir(const char *dir) {
    DIR *dp = opendir(dir);
    if (!dp) return;
    struct dirent *e;
    size_t dl = strlen(dir);
    while ((e = readdir(dp))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = dl + strlen(e->d_name) + 2;
        char *p = xmalloc(n);
        snprintf(p, n, "%s/%s", dir, e->d_name);
        unlink(p);
        free(p);
    }
    closedir(dp);
    rmdir(dir);
}

char *atomic_dir_begin(const char *path) {
    char *tmp = atomic_tmp_name(path);
    remove_flat_dir(tmp); /* a leftover of a process that had this PID */
    if (mkdir(tmp, 0777) != 0) { int e = errno; free(tmp); errno = e; return NULL; }
    err_register_tmp_dir(tmp);
    return tmp;
}

int atomic_dir_commit(const char *tmp, const char *path) {
    remove_flat_dir(path);
    if (rename(tmp, path) != 0) return -1;
    err_unregister_tmp(tmp);
    return 0;
}
