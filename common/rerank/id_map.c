/* id_map.c - the id map (see id_map.h). */
#include "rerank/id_map.h"

#include "io/err.h"

#include <stdlib.h>

static uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL; x ^= x >> 33;
    return x;
}

void id_map_init(id_map *m) { m->cap = 64; m->n = 0; m->k = xmalloc(m->cap * sizeof *m->k); m->v = xmalloc(m->cap * sizeof *m->v); for (size_t i = 0; i < m->cap; i++) m->v[i] = -1; }
void id_map_free(id_map *m) { free(m->k); free(m->v); }
static int *id_map_slot(id_map *m, int64_t key) {
    size_t i = mix64((uint64_t)key) & (m->cap - 1);
    while (m->v[i] >= 0 && m->k[i] != key) i = (i + 1) & (m->cap - 1);
    m->k[i] = key;
    return &m->v[i];
}
int id_map_get(id_map *m, int64_t key) {
    size_t i = mix64((uint64_t)key) & (m->cap - 1);
    while (m->v[i] >= 0) {
        if (m->k[i] == key) return m->v[i];
        i = (i + 1) & (m->cap - 1);
    }
    return -1;
}
void id_map_put(id_map *m, int64_t key, int val) {
    if (2 * (m->n + 1) > m->cap) {
        id_map old = *m;
        m->cap *= 2; m->n = 0;
        m->k = xmalloc(m->cap * sizeof *m->k); m->v = xmalloc(m->cap * sizeof *m->v);
        for (size_t i = 0; i < m->cap; i++) m->v[i] = -1;
        for (size_t i = 0; i < old.cap; i++) if (old.v[i] >= 0) id_map_put(m, old.k[i], old.v[i]);
        id_map_free(&old);
    }
    int *s = id_map_slot(m, key);
    if (*s < 0) m->n++;
    *s = val;
}
