/* task.c - task names (see task.h). */
#include "records/task.h"

#include <string.h>

static const char *const NAMES[RTASK_COUNT] = {"pointwise", "pairwise", "listwise"};

const char *rtask_name(int task) { return task >= 0 && task < RTASK_COUNT ? NAMES[task] : "?"; }

int rtask_from_name(const char *s, size_t n) {
    for (int t = 0; t < RTASK_COUNT; t++)
        if (strlen(NAMES[t]) == n && memcmp(NAMES[t], s, n) == 0) return t;
    return -1;
}
