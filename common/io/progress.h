/* progress.h - progress on stderr: a bar with rate and ETA on a terminal, otherwise a
 * plain line every --log-every seconds; --quiet silences both. */
#ifndef ITREK_IO_PROGRESS_H
#define ITREK_IO_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char what[48];
    uint64_t total;      /* 0 when unknown */
    double t0, last;
    double every;
    bool tty, quiet, drawn;
} progress;

void progress_start(progress *p, const char *what, uint64_t total, bool quiet, double log_every);
/* extra: a short status (e.g. "loss 0.31"), may be NULL. Cheap when nothing is printed. */
void progress_update(progress *p, uint64_t done, const char *extra);
void progress_done(progress *p, uint64_t done, const char *extra);
double now_seconds(void); /* monotonic clock */

#endif
