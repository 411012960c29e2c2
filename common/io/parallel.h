/* parallel.h - a tiny deterministic parallel-for over pthreads.
 *
 * Tasks 0..n_tasks-1 are handed to `threads` workers in a fixed static interleave
 * (task k runs on worker k % threads), so which worker runs which task, and so every
 * per-worker random stream, depends only on n_tasks and threads: results are reproducible
 * for a given --threads. Tasks must write to disjoint outputs. */
#ifndef ITREK_IO_PARALLEL_H
#define ITREK_IO_PARALLEL_H

typedef void (*parallel_fn)(void *ctx, int task, int worker);

void parallel_for(int n_tasks, int threads, parallel_fn fn, void *ctx);

#endif
