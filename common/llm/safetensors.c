/* safetensors.c - safetensors reader (mmap, sharded) and writer. */
#include "llm/safetensors.h"

#include "io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (256u << 20)

typedef struct {
    void *map;
    size_t size;
} st_map;

struct st_file {
    st_map *maps;
    int n_maps;
    llm_tensor *t;
    int n, cap;
    json_t **headers; /* one per map, for __metadata__ */
};

static void st_add(st_file *f, const llm_tensor *t) {
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 64;
        f->t = realloc(f->t, (size_t)f->cap * sizeof *f->t);
    }
    f->t[f->n++] = *t;
}

/* Parse one file into f; returns 0 or -1 with err set. */
static int st_open_one(st_file *f, const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return -1; }
    struct stat sb;
    if (fstat(fd, &sb) != 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); close(fd); return -1; }
    size_t size = (size_t)sb.st_size;
    if (size < 8) { snprintf(err, errlen, "%s: truncated safetensors file (%zu bytes, no header)", path, size); close(fd); return -1; }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno)); return -1; }
    f->maps = realloc(f->maps, (size_t)(f->n_maps + 1) * sizeof *f->maps);
    f->headers = realloc(f->headers, (size_t)(f->n_maps + 1) * sizeof *f->headers);
    f->maps[f->n_maps] = (st_map){map, size};
    f->headers[f->n_maps] = NULL;
    f->n_maps++;

    const unsigned char *p = map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > ST_MAX_HEADER || hlen > size - 8) {
        snprintf(err, errlen, "%s: not a safetensors file or truncated (header length %llu, file %zu bytes)", path,
                 (unsigned long long)hlen, size);
        return -1;
    }
    json_error_t je;
    json_t *h = json_loadb((const char *)p + 8, hlen, 0, &je);
    if (!h || !json_is_object(h)) {
        snprintf(err, errlen, "%s: bad safetensors header: %s", path, h ? "not a JSON object" : je.text);
        json_decref(h);
        return -1;
    }
    f->headers[f->n_maps - 1] = h;
    const unsigned char *data = p + 8 + hlen;
    size_t dsize = size - 8 - hlen;
    const char *key;
    json_t *v;
    json_object_foreach(h, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        llm_tensor t = {.name = key};
        json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
               *off = json_object_get(v, "data_offsets");
        if (!json_is_object(v) || !json_is_string(dt) || !json_is_array(sh) || !json_is_array(off) ||
            json_array_size(off) != 2) {
            snprintf(err, errlen, "%s: tensor %s: entry needs dtype, shape and data_offsets", path, key);
            return -1;
        }
        int d = llm_dtype_parse(json_string_value(dt));
        if (d < 0) { snprintf(err, errlen, "%s: tensor %s: unknown dtype %s", path, key, json_string_value(dt)); return -1; }
        t.dtype = (llm_dtype)d;
        if (json_array_size(sh) > LLM_MAX_DIMS) { snprintf(err, errlen, "%s: tensor %s: too many dimensions", path, key); return -1; }
        t.ndim = (int)json_array_size(sh);
        uint64_t numel = 1;
        for (int i = 0; i < t.ndim; i++) {
            json_t *x = json_array_get(sh, (size_t)i);
            if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > (1ll << 40)) {
                snprintf(err, errlen, "%s: tensor %s: bad shape", path, key);
                return -1;
            }
            t.shape[i] = json_integer_value(x);
            numel *= (uint64_t)t.shape[i];
            if (numel > (1ull << 40)) { snprintf(err, errlen, "%s: tensor %s: shape too large", path, key); return -1; }
        }
        json_t *b = json_array_get(off, 0), *e = json_array_get(off, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b)) {
            snprintf(err, errlen, "%s: tensor %s: bad data_offsets", path, key);
            return -1;
        }
        uint64_t ob = (uint64_t)json_integer_value(b), oe = (uint64_t)json_integer_value(e);
        if (oe > dsize) {
            snprintf(err, errlen, "%s: tensor %s: data [%llu, %llu) beyond the end of the file (truncated?)", path, key,
                     (unsigned long long)ob, (unsigned long long)oe);
            return -1;
        }
        if (oe - ob != llm_dtype_bytes(t.dtype, numel)) {
            snprintf(err, errlen, "%s: tensor %s: %llu bytes do not match %s x %llu elements", path, key,
                     (unsigned long long)(oe - ob), json_string_value(dt), (unsigned long long)numel);
            return -1;
        }
        t.data = data + ob;
        t.nbytes = (size_t)(oe - ob);
        st_add(f, &t);
    }
    return 0;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

st_file *st_open(const char *path, char *err, size_t errlen) {
    st_file *f = calloc(1, sizeof *f);
    char buf[4096];
    int rc = 0;
    if (!is_dir(path)) {
        rc = st_open_one(f, path, err, errlen);
    } else {
        snprintf(buf, sizeof buf, "%s/model.safetensors", path);
        if (exists(buf)) {
            rc = st_open_one(f, buf, err, errlen);
        } else {
            snprintf(buf, sizeof buf, "%s/model.safetensors.index.json", path);
            json_error_t je;
            json_t *idx = json_load_file(buf, 0, &je);
            json_t *wm = idx ? json_object_get(idx, "weight_map") : NULL;
            if (!idx) {
                if (exists(buf)) snprintf(err, errlen, "%s:%d: %s", buf, je.line, je.text);
                else snprintf(err, errlen, "%s: no model.safetensors or model.safetensors.index.json", path);
                rc = -1;
            } else if (!json_is_object(wm)) {
                snprintf(err, errlen, "%s: no \"weight_map\" object", buf);
                rc = -1;
            } else {
                /* Open each distinct shard once, in order of first mention. */
                const char **seen = NULL;
                int n_seen = 0;
                const char *key;
                json_t *v;
                json_object_foreach(wm, key, v) {
                    if (!json_is_string(v) || strchr(json_string_value(v), '/')) {
                        snprintf(err, errlen, "%s: weight_map[%s]: not a file name", buf, key);
                        rc = -1;
                        break;
                    }
                    int dup = 0;
                    for (int i = 0; i < n_seen; i++) dup |= strcmp(seen[i], json_string_value(v)) == 0;
                    if (dup) continue;
                    seen = realloc(seen, (size_t)(n_seen + 1) * sizeof *seen);
                    seen[n_seen++] = json_string_value(v);
                    char shard[4096];
                    snprintf(shard, sizeof shard, "%s/%s", path, json_string_value(v));
                    if ((rc = st_open_one(f, shard, err, errlen)) != 0) break;
                }
                if (rc == 0) /* every mapped name must be present */
                    json_object_foreach(wm, key, v) if (!st_find(f, key)) {
                        snprintf(err, errlen, "%s: tensor %s is missing from shard %s", buf, key, json_string_value(v));
                        rc = -1;
                        break;
                    }
                free(seen);
            }
            /* Tensor names point into the shard headers, so the index can go. */
            json_decref(idx);
        }
    }
    if (rc != 0) { st_close(f); return NULL; }
    return f;
}

void st_close(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n_maps; i++) {
        munmap(f->maps[i].map, f->maps[i].size);
        json_decref(f->headers[i]);
    }
    free(f->maps);
    free(f->headers);
    free(f->t);
    free(f);
}

int st_count(const st_file *f) { return f->n; }
const llm_tensor *st_at(const st_file *f, int i) { return i >= 0 && i < f->n ? &f->t[i] : NULL; }

const llm_tensor *st_find(const st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key) {
    for (int i = 0; i < f->n_maps; i++) {
        json_t *m = json_object_get(f->headers[i], "__metadata__");
        json_t *v = m ? json_object_get(m, key) : NULL;
        if (json_is_string(v)) return json_string_value(v);
    }
    return NULL;
}

int st_write(const char *path, const llm_tensor *ts, int n, const char *const *meta, int n_meta, char *err,
             size_t errlen) {
    json_t *h = json_object();
    if (n_meta > 0) {
        json_t *m = json_object();
        for (int i = 0; i < n_meta; i++) json_object_set_new(m, meta[2 * i], json_string(meta[2 * i + 1]));
        json_object_set_new(h, "__metadata__", m);
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        const llm_tensor *t = &ts[i];
        const char *dn = llm_dtype_name(t->dtype);
        if (!dn || llm_dtype_block(t->dtype) != 1 || t->nbytes != llm_dtype_bytes(t->dtype, llm_tensor_numel(t))) {
            snprintf(err, errlen, "%s: tensor %s: bad dtype or size", path, t->name);
            json_decref(h);
            return -1;
        }
        if (json_object_get(h, t->name)) {
            snprintf(err, errlen, "%s: tensor %s given twice", path, t->name);
            json_decref(h);
            return -1;
        }
        json_t *sh = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(sh, json_integer(t->shape[d]));
        json_object_set_new(h, t->name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", dn, "shape", sh, "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + t->nbytes)));
        off += t->nbytes;
    }
    /* Keys in insertion order, compact; pad with spaces so the data starts 8-byte aligned. */
    char *js = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    size_t jl = strlen(js), pad = (8 - jl % 8) % 8;
    atomic_file af;
    if (atomic_open(&af, path) != 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); free(js); return -1; }
    FILE *fp = af.fp;
    unsigned char len8[8];
    uint64_t hl = jl + pad;
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(hl >> (8 * i));
    int ok = fwrite(len8, 8, 1, fp) == 1 && fwrite(js, 1, jl, fp) == jl;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', fp) != EOF;
    for (int i = 0; ok && i < n; i++) ok = ts[i].nbytes == 0 || fwrite(ts[i].data, 1, ts[i].nbytes, fp) == ts[i].nbytes;
    free(js);
    if (!ok) atomic_abort(&af);
    if (!ok || atomic_commit(&af) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
