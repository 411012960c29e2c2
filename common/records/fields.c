/* fields.c - shared field readers (see fields.h). */
#include "records/fields.h"

#include "io/err.h"
#include "records/task.h"

#include <string.h>

char *records_strdup(const msgpack_object *o) {
    char *d = xmalloc(o->via.str.size + 1);
    memcpy(d, o->via.str.ptr, o->via.str.size);
    d[o->via.str.size] = 0;
    return d;
}

char *records_param_str(stream_reader *r, const char *key, bool required) {
    const msgpack_object *o = sr_header_param(r, key);
    if (!o) {
        if (required) die_at(sr_name(r), 0, "field 'params.%s': missing", key);
        return NULL;
    }
    if (o->type != MSGPACK_OBJECT_STR) die_at(sr_name(r), 0, "field 'params.%s': expected string", key);
    return records_strdup(o);
}

bool records_param_leaky(stream_reader *r) {
    const msgpack_object *lk = sr_header_param(r, "leaky");
    if (lk && lk->type != MSGPACK_OBJECT_BOOLEAN) die_at(sr_name(r), 0, "field 'params.leaky': expected a boolean");
    return lk && lk->via.boolean;
}

int records_task(stream_reader *r, const msgpack_object *rec) {
    uint32_t tl;
    const char *ts = sr_str(r, rec, "task", &tl);
    int task = rtask_from_name(ts, tl);
    if (task < 0)
        sr_fail(r, "field 'task': unknown task '%.*s' (expected pointwise, pairwise or listwise)", (int)(tl > 40 ? 40 : tl), ts);
    return task;
}

int32_t *records_item_ids(stream_reader *r, const msgpack_object_array *a, const char *key) {
    int32_t *v = xmalloc(sizeof *v * (a->size + 1));
    for (uint32_t i = 0; i < a->size; i++) {
        int64_t x = sr_elem_int(r, a, i, key);
        if (x < 0 || x > INT32_MAX) sr_fail(r, "field '%s[%u]': %lld is not an item id", key, i, (long long)x);
        v[i] = (int32_t)x;
    }
    return v;
}

int32_t *records_item_list(stream_reader *r, const msgpack_object_array *a, const char *key) {
    int32_t *v = records_item_ids(r, a, key);
    for (uint32_t i = 1; i < a->size; i++)
        for (uint32_t j = 0; j < i; j++)
            if (v[j] == v[i]) sr_fail(r, "field '%s[%u]': item %d appears twice", key, i, v[i]);
    return v;
}
