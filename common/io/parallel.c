/* parallel.c - static-schedule parallel-for. */
#include "io/parallel.h"

#include "io/err.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int n_tasks, threads, worker;
    parallel_fn fn;
    void *ctx;
} job;

static void *run(void *arg) {
    job *j = arg;
    for (int k = j->worker; k < j->n_tasks; k += j->threads) j->fn(j->ctx, k, j->worker);
    return NULL;
}

void parallel_for(int n_tasks, int threads, parallel_fn fn, void *ctx) {
    if (threads < 1) threads = 1;
    if (threads > n_tasks) threads = n_tasks > 0 ? n_tasks : 1;
    if (threads == 1) {
        for (int k = 0; k < n_tasks; k++) fn(ctx, k, 0);
        return;
    }
    pthread_t *tid = xmalloc(sizeof *tid * (size_t)threads);
    job *jobs = xmalloc(sizeof *jobs * (size_t)threads);
    for (int w = 0; w < threads; w++) {
        jobs[w] = (job){n_tasks, threads, w, fn, ctx};
        if (w > 0 && pthread_create(&tid[w], NULL, run, &jobs[w]) != 0) die("cannot start a thread: %s", strerror(errno));
    }
    run(&jobs[0]);
    for (int w = 1; w < threads; w++) pthread_join(tid[w], NULL);
    free(tid);
    free(jobs);
}
