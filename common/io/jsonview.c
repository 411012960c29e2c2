/* jsonview.c - msgpack <-> JSON through jansson, with base64 for bin values. */
#include "io/jsonview.h"

#include "io/err.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64(const unsigned char *p, size_t n) {
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        *o++ = B64[v >> 18 & 63];
        *o++ = B64[v >> 12 & 63];
        *o++ = i + 1 < n ? B64[v >> 6 & 63] : '=';
        *o++ = i + 2 < n ? B64[v & 63] : '=';
    }
    *o = 0;
    return out;
}

static int unbase64(const char *s, unsigned char **out, size_t *n) {
    size_t len = strlen(s);
    if (len % 4) return -1;
    unsigned char *buf = xmalloc(len / 4 * 3 + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            const char *c = s[i + j] == '=' ? NULL : strchr(B64, s[i + j]);
            if (s[i + j] == '=') { if (i + 4 != len || j < 2) { free(buf); return -1; } pad++; }
            else if (!c || !s[i + j] || pad) { free(buf); return -1; }
            v = v << 6 | (c ? (uint32_t)(c - B64) : 0);
        }
        buf[k++] = v >> 16 & 255;
        if (pad < 2) buf[k++] = v >> 8 & 255;
        if (pad < 1) buf[k++] = v & 255;
    }
    *out = buf;
    *n = k;
    return 0;
}

json_t *json_from_msgpack(const msgpack_object *o) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR: return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        char *b = base64((const unsigned char *)o->via.bin.ptr, o->via.bin.size);
        json_t *j = json_pack("{s:s}", "$bin", b);
        free(b);
        return j;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++) json_array_append_new(a, json_from_msgpack(&o->via.array.ptr[i]));
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char key[256];
            if (k->type == MSGPACK_OBJECT_STR)
                snprintf(key, sizeof key, "%.*s", (int)k->via.str.size, k->via.str.ptr);
            else if (k->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                snprintf(key, sizeof key, "%llu", (unsigned long long)k->via.u64);
            else snprintf(key, sizeof key, "?");
            json_object_set_new(m, key, json_from_msgpack(&o->via.map.ptr[i].val));
        }
        return m;
    }
    default: return json_null();
    }
}

int json_to_msgpack(msgpack_packer *pk, const json_t *j, char *err, size_t errlen) {
    switch (json_typeof(j)) {
    case JSON_NULL: msgpack_pack_nil(pk); return 0;
    case JSON_TRUE: msgpack_pack_true(pk); return 0;
    case JSON_FALSE: msgpack_pack_false(pk); return 0;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(j)); return 0;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(j)); return 0;
    case JSON_STRING: {
        size_t n = json_string_length(j);
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, json_string_value(j), n);
        return 0;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            if (json_to_msgpack(pk, json_array_get(j, i), err, errlen)) return -1;
        return 0;
    }
    case JSON_OBJECT: {
        json_t *b = json_object_get(j, "$bin");
        if (b && json_object_size(j) == 1) {
            unsigned char *buf;
            size_t n;
            if (!json_is_string(b) || unbase64(json_string_value(b), &buf, &n)) {
                snprintf(err, errlen, "field '$bin': not valid base64");
                return -1;
            }
            msgpack_pack_bin(pk, n);
            msgpack_pack_bin_body(pk, buf, n);
            free(buf);
            return 0;
        }
        msgpack_pack_map(pk, json_object_size(j));
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v) {
            size_t n = strlen(key);
            msgpack_pack_str(pk, n);
            msgpack_pack_str_body(pk, key, n);
            if (json_to_msgpack(pk, v, err, errlen)) return -1;
        }
        return 0;
    }
    }
    snprintf(err, errlen, "unsupported JSON value");
    return -1;
}

json_t *json_f32_real(float f) {
    char buf[64];
    for (int p = 6; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, (double)f);
        if ((float)strtod(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

json_t *json_f32_number(float f) {
    if (f == (float)(long)f && fabsf(f) < 1e9f) return json_integer((json_int_t)f);
    return json_f32_real(f);
}
