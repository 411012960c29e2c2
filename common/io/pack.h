/* pack.h - msgpack packing helpers shared by every stream writer, and counted maps.
 *
 * A msgpack map states its entry count before its entries. Counting by hand
 * (`msgpack_pack_map(pk, 17 + ...)`) breaks silently when a key is added under a condition, so
 * every header and record in ITREK is packed as a *counted map*: the entries go into a side
 * buffer and are counted as they are added; pkm_end writes the map header with the true count and
 * then the entries. The bytes are exactly those of a hand-counted map with the same keys in the
 * same order. Counted maps nest: a value packed through pkm_key may itself be a counted map.
 *
 *     pk_map h;
 *     pkm_begin(&h, sw_pk(w));
 *     pkm_str(&h, "schema", "itrek.items");
 *     pk_map p; pkm_begin(&p, pkm_key(&h, "params")); pkm_int(&p, "n", 10); pkm_end(&p);
 *     pkm_end(&h);
 */
#ifndef ITREK_IO_PACK_H
#define ITREK_IO_PACK_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Plain helpers: a string, or a string key followed by a value, into any packer. */
void pk_str(msgpack_packer *pk, const char *s);
void pk_strn(msgpack_packer *pk, const char *s, size_t n);
void pk_kv_int(msgpack_packer *pk, const char *key, int64_t v);
void pk_kv_num(msgpack_packer *pk, const char *key, double v);
void pk_kv_str(msgpack_packer *pk, const char *key, const char *v);
void pk_kv_bool(msgpack_packer *pk, const char *key, bool v);
void pk_kv_ints(msgpack_packer *pk, const char *key, const int32_t *v, size_t n);
void pk_kv_floats(msgpack_packer *pk, const char *key, const float *v, size_t n);
void pk_kv_f32bin(msgpack_packer *pk, const char *key, const float *v, size_t n); /* float32 LE */

/* ---------- counted maps ---------- */

typedef struct pk_map {
    msgpack_packer *parent; /* where the finished map goes */
    msgpack_sbuffer buf;    /* the entries so far */
    msgpack_packer pk;      /* packs into buf */
    uint32_t n;             /* entries so far */
} pk_map;

void pkm_begin(pk_map *m, msgpack_packer *parent);
/* Packs KEY and counts the entry; returns the packer for exactly one value. */
msgpack_packer *pkm_key(pk_map *m, const char *key);
/* Writes the map (count, then entries) to the parent packer and frees the buffer. */
void pkm_end(pk_map *m);

void pkm_int(pk_map *m, const char *key, int64_t v);
void pkm_num(pk_map *m, const char *key, double v);
void pkm_str(pk_map *m, const char *key, const char *v);
void pkm_bool(pk_map *m, const char *key, bool v);
void pkm_ints(pk_map *m, const char *key, const int32_t *v, size_t n);
void pkm_floats(pk_map *m, const char *key, const float *v, size_t n);
/* KEY: {K1: V1}, a one-entry map of a string (e.g. inputs: {interactions: NAME}). */
void pkm_str_map(pk_map *m, const char *key, const char *k1, const char *v1);
void pkm_f32bin(pk_map *m, const char *key, const float *v, size_t n);

#endif
