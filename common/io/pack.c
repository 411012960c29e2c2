/* pack.c - msgpack packing helpers and counted maps (pack.h says why). */
#include "io/pack.h"

#include <string.h>

/* ---------- packing helpers ---------- */

void pk_strn(msgpack_packer *pk, const char *s, size_t n) {
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}
void pk_str(msgpack_packer *pk, const char *s) { pk_strn(pk, s, strlen(s)); }
void pk_kv_int(msgpack_packer *pk, const char *key, int64_t v) { pk_str(pk, key); msgpack_pack_int64(pk, v); }
void pk_kv_num(msgpack_packer *pk, const char *key, double v) { pk_str(pk, key); msgpack_pack_double(pk, v); }
void pk_kv_str(msgpack_packer *pk, const char *key, const char *v) { pk_str(pk, key); pk_str(pk, v); }
void pk_kv_bool(msgpack_packer *pk, const char *key, bool v) {
    pk_str(pk, key);
    if (v) msgpack_pack_true(pk); else msgpack_pack_false(pk);
}
void pk_kv_ints(msgpack_packer *pk, const char *key, const int32_t *v, size_t n) {
    pk_str(pk, key);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) msgpack_pack_int32(pk, v[i]);
}
void pk_kv_floats(msgpack_packer *pk, const char *key, const float *v, size_t n) {
    pk_str(pk, key);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) msgpack_pack_float(pk, v[i]);
}
void pk_kv_f32bin(msgpack_packer *pk, const char *key, const float *v, size_t n) {
    pk_str(pk, key);
    msgpack_pack_bin(pk, n * 4);
    /* float32 little-endian; x86-64 and aarch64 are little-endian, checked at build time. */
    _Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "float32 LE packing assumes a little-endian host");
    msgpack_pack_bin_body(pk, v, n * 4);
}

/* ---------- counted maps ---------- */

void pkm_begin(pk_map *m, msgpack_packer *parent) {
    m->parent = parent;
    m->n = 0;
    msgpack_sbuffer_init(&m->buf);
    msgpack_packer_init(&m->pk, &m->buf, msgpack_sbuffer_write);
}

msgpack_packer *pkm_key(pk_map *m, const char *key) {
    m->n++;
    pk_str(&m->pk, key);
    return &m->pk;
}

void pkm_end(pk_map *m) {
    msgpack_pack_map(m->parent, m->n);
    /* the entries' bytes as they are: what packing them straight into the parent would give */
    if (m->buf.size) m->parent->callback(m->parent->data, m->buf.data, m->buf.size);
    msgpack_sbuffer_destroy(&m->buf);
}

void pkm_int(pk_map *m, const char *key, int64_t v) { msgpack_pack_int64(pkm_key(m, key), v); }
void pkm_num(pk_map *m, const char *key, double v) { msgpack_pack_double(pkm_key(m, key), v); }
void pkm_str(pk_map *m, const char *key, const char *v) { pk_str(pkm_key(m, key), v); }
void pkm_bool(pk_map *m, const char *key, bool v) { pk_kv_bool(&m->pk, key, v); m->n++; }
void pkm_ints(pk_map *m, const char *key, const int32_t *v, size_t n) { pk_kv_ints(&m->pk, key, v, n); m->n++; }
void pkm_floats(pk_map *m, const char *key, const float *v, size_t n) { pk_kv_floats(&m->pk, key, v, n); m->n++; }
void pkm_f32bin(pk_map *m, const char *key, const float *v, size_t n) { pk_kv_f32bin(&m->pk, key, v, n); m->n++; }

void pkm_str_map(pk_map *m, const char *key, const char *k1, const char *v1) {
    pk_map in;
    pkm_begin(&in, pkm_key(m, key));
    pkm_str(&in, k1, v1);
    pkm_end(&in);
}
