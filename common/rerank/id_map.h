/* id_map.h - int64 -> int open-addressing map, for query ids and users (keys unique).
 *
 * The reranker looks answers up by query id (resume, the final output in query order) and
 * queries by user; a hash map keeps that linear in the number of queries.
 */
#ifndef ITREK_RERANK_ID_MAP_H
#define ITREK_RERANK_ID_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t *k;
    int *v;
    size_t cap, n;
} id_map;

void id_map_init(id_map *m);
void id_map_free(id_map *m);
/* The value of key, or -1. */
int id_map_get(id_map *m, int64_t key);
/* Sets key's value (val >= 0). */
void id_map_put(id_map *m, int64_t key, int val);

#endif
