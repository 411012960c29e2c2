/* progress.c - terminal bar or periodic log lines. */
#include "io/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void progress_start(progress *p, const char *what, uint64_t total, bool quiet, double log_every) {
    memset(p, 0, sizeof *p);
    snprintf(p->what, sizeof p->what, "%s", what);
    p->total = total;
    p->t0 = p->last = now_seconds();
    p->every = log_every;
    p->quiet = quiet;
    p->tty = isatty(2);
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) { snprintf(buf, n, "?"); return; }
    int h = (int)(s / 3600), m = (int)(s / 60) % 60, sec = (int)s % 60;
    if (h) snprintf(buf, n, "%d:%02d:%02d", h, m, sec);
    else snprintf(buf, n, "%d:%02d", m, sec);
}

static void draw(progress *p, uint64_t done, const char *extra, bool final) {
    double t = now_seconds(), el = t - p->t0;
    double rate = el > 0 ? done / el : 0;
    char eta[32] = "", elapsed[32];
    fmt_time(elapsed, sizeof elapsed, el);
    if (p->total && rate > 0 && !final) fmt_time(eta, sizeof eta, (p->total - done) / rate);
    if (p->tty) {
        char bar[31];
        int fill = p->total ? (int)(30.0 * done / p->total) : 0;
        if (fill > 30) fill = 30;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        if (p->total)
            fprintf(stderr, "\r%s [%s] %llu/%llu %.1f/s %s%s%s %s\033[K", p->what, bar, (unsigned long long)done,
                    (unsigned long long)p->total, rate, final ? "in " : "eta ", final ? elapsed : eta, "",
                    extra ? extra : "");
        else
            fprintf(stderr, "\r%s %llu %.1f/s %s %s\033[K", p->what, (unsigned long long)done, rate, elapsed,
                    extra ? extra : "");
        if (final) fputc('\n', stderr);
    } else {
        if (p->total)
            fprintf(stderr, "%s: %llu/%llu (%.1f%%) %.1f/s elapsed %s%s%s%s%s\n", p->what, (unsigned long long)done,
                    (unsigned long long)p->total, 100.0 * done / p->total, rate, elapsed, final ? "" : " eta ",
                    final ? "" : eta, extra ? " " : "", extra ? extra : "");
        else
            fprintf(stderr, "%s: %llu %.1f/s elapsed %s%s%s\n", p->what, (unsigned long long)done, rate, elapsed,
                    extra ? " " : "", extra ? extra : "");
    }
    p->drawn = true;
}

void progress_update(progress *p, uint64_t done, const char *extra) {
    if (p->quiet) return;
    double t = now_seconds();
    double gap = p->tty ? 0.2 : p->every;
    if (t - p->last < gap) return;
    p->last = t;
    draw(p, done, extra, false);
}

void progress_done(progress *p, uint64_t done, const char *extra) {
    if (p->quiet) return;
    if (p->tty || p->drawn || now_seconds() - p->t0 >= 1.0) draw(p, done, extra, true);
}
