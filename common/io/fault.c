/* fault.c - I/O fault injection and the retrying read/write the injection checks (fault.h). */
#include "io/fault.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool inited, active;
static long calls, fault_at;
static io_fault_kind fault_kind;
static int fault_errno;
static const char *count_path;

static void write_count(void) {
    FILE *fp = fopen(count_path, "a");
    if (fp) { fprintf(fp, "%ld\n", calls); fclose(fp); }
}

static void init(void) {
    inited = true;
    const char *spec = getenv("ITREK_FAULT");
    if (spec && *spec) {
        char *end;
        fault_at = strtol(spec, &end, 10);
        const char *kind = *end == ':' ? end + 1 : "";
        fault_kind = IO_FAIL;
        if (!strcmp(kind, "enospc")) fault_errno = ENOSPC;
        else if (!strcmp(kind, "eio")) fault_errno = EIO;
        else if (!strcmp(kind, "eintr")) fault_kind = IO_EINTR;
        else if (!strcmp(kind, "short")) fault_kind = IO_SHORT;
        else fault_at = 0; /* not a spec this code knows: no fault */
    }
    count_path = getenv("ITREK_FAULT_COUNT");
    if (count_path && *count_path) atexit(write_count);
    active = fault_at > 0 || (count_path && *count_path);
}

io_fault_kind io_fault(int *err) {
    if (!inited) init();
    if (!active) return IO_OK;
    if (++calls != fault_at) return IO_OK;
    if (fault_kind == IO_FAIL) *err = fault_errno;
    return fault_kind;
}

int io_gate(void) {
    for (;;) {
        int e = 0;
        io_fault_kind k = io_fault(&e);
        if (k == IO_EINTR) continue; /* interrupted before it did anything: again */
        if (k == IO_FAIL) { errno = e; return -1; }
        return 0;
    }
}

int io_write_all(FILE *fp, const void *p, size_t n) {
    const unsigned char *b = p;
    while (n > 0) {
        int e = 0;
        size_t want = n;
        io_fault_kind k = io_fault(&e);
        if (k == IO_EINTR) continue;
        if (k == IO_FAIL) { errno = e; return -1; }
        if (k == IO_SHORT && want > 1) want /= 2;
        size_t put = fwrite(b, 1, want, fp);
        if (put == 0) return -1;
        b += put;
        n -= put;
    }
    return 0;
}

size_t io_read(FILE *fp, void *buf, size_t cap, int *failed) {
    *failed = 0;
    for (;;) {
        int e = 0;
        size_t want = cap;
        io_fault_kind k = io_fault(&e);
        if (k == IO_EINTR) continue;
        if (k == IO_FAIL) { errno = e; *failed = 1; return 0; }
        if (k == IO_SHORT && want > 1) want /= 2;
        size_t n = fread(buf, 1, want, fp);
        if (n == 0 && ferror(fp)) *failed = 1;
        return n;
    }
}
