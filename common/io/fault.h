/* fault.h - I/O fault injection, for the tests of issue 27's promise: a failed write leaves no
 * artifact, an interrupted or short one is simply continued. Off unless ITREK_FAULT is set.
 *
 * The I/O calls of ITREK's outputs and stream inputs pass through io_fault() first: opening,
 * writing, flushing, syncing, closing and renaming an output (io/atomic and the stream writer),
 * opening and reading a stream input (io/stream). With ITREK_FAULT=N:KIND the Nth such call of
 * the process (1-based) is disturbed:
 *   enospc, eio  it fails with that errno: the program must exit 1 with one line and leave
 *                nothing under its output's name (its temporary removed);
 *   eintr        it is interrupted before it did anything: the caller must retry it;
 *   short        a read or write moves only part of its bytes: the caller must go on.
 * ITREK_FAULT_COUNT=FILE appends the number of calls made to FILE at exit, so that a test can
 * sweep N over every call of a run (tests/cli/faults.sh). The counter is not thread-safe: only
 * the main thread does this I/O.
 */
#ifndef ITREK_IO_FAULT_H
#define ITREK_IO_FAULT_H

#include <stddef.h>
#include <stdio.h>

typedef enum { IO_OK = 0, IO_FAIL, IO_EINTR, IO_SHORT } io_fault_kind;

/* The disturbance for this call; IO_FAIL sets *err to the errno to fail with. */
io_fault_kind io_fault(int *err);

/* Runs the gate for a call that moves no bytes (open, flush, sync, close, rename): 0 to go
 * on (an injected EINTR is retried here), -1 with errno set for an injected failure. */
int io_gate(void);

/* fwrite of all N bytes, continuing after short writes and retrying interrupted ones. 0, or
 * -1 with errno set. */
int io_write_all(FILE *fp, const void *p, size_t n);

/* fread of up to CAP bytes (fewer at the end of the file); an injected short read returns
 * fewer, an injected EINTR is retried. Returns the count; 0 with ferror(fp) or errno set (and
 * *failed) on a failure. */
size_t io_read(FILE *fp, void *buf, size_t cap, int *failed);

#endif
