/* task.h - RecRanker's three prompt tasks, defined once for every stream that names them.
 *
 * itrek.instructions, itrek.queries and itrek.answers records carry `task` as one of the names
 * below; the rank and fuse stages and the leakage check look the name up here, so a task added
 * or renamed cannot disagree between writer and readers. The ids are the order of the names;
 * rec/template.h's prompt_task is this type.
 */
#ifndef ITREK_RECORDS_TASK_H
#define ITREK_RECORDS_TASK_H

#include <stddef.h>

typedef enum { RTASK_POINTWISE = 0, RTASK_PAIRWISE = 1, RTASK_LISTWISE = 2, RTASK_COUNT = 3 } rtask;

/* Titles a listwise answer names (and listwise fusion rewards): the "top 5" of the prompts. */
#define RTASK_LIST_TOP 5

/* "pointwise", "pairwise", "listwise"; "?" for anything else. */
const char *rtask_name(int task);
/* The task named by s[0..n), or -1. */
int rtask_from_name(const char *s, size_t n);

#endif
