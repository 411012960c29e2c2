/* gguf.c - GGUF reader. */
#include "llm/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

enum { G_U8, G_I8, G_U16, G_I16, G_U32, G_I32, G_F32, G_BOOL, G_STR, G_ARR, G_U64, G_I64, G_F64 };
static const int g_size[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

typedef struct {
    char *key;
    int type;
    int64_t i;
    double f;
    char *s;
    int arr_type;
    uint64_t arr_len;
    size_t arr_pos; /* offset of the array's first element in the file */
} gguf_kv;

struct gguf_file {
    void *map;
    size_t size;
    gguf_kv *kv;
    uint64_t n_kv;
    llm_tensor *t;
    char **names;
    uint64_t n_t;
};

typedef struct {
    const unsigned char *p;
    size_t pos, size;
    int bad;
} rd;

static int need(rd *r, size_t n) {
    if (r->bad || n > r->size - r->pos) { r->bad = 1; return 0; }
    return 1;
}
static uint64_t rd_u(rd *r, int n) {
    if (!need(r, (size_t)n)) return 0;
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | r->p[r->pos + (size_t)i];
    r->pos += (size_t)n;
    return v;
}
static char *rd_str(rd *r) {
    uint64_t n = rd_u(r, 8);
    if (r->bad || n > (1u << 30) || !need(r, (size_t)n)) { r->bad = 1; return NULL; }
    char *s = malloc((size_t)n + 1);
    memcpy(s, r->p + r->pos, (size_t)n);
    s[n] = 0;
    r->pos += (size_t)n;
    return s;
}
/* Read a scalar of type t into kv (i / f / s). */
static void rd_scalar(rd *r, int t, gguf_kv *kv) {
    uint64_t u;
    switch (t) {
    case G_U8: case G_U16: case G_U32: case G_U64: case G_BOOL:
        kv->i = (int64_t)rd_u(r, g_size[t]); kv->f = (double)kv->i; break;
    case G_I8: kv->i = (int8_t)rd_u(r, 1); kv->f = (double)kv->i; break;
    case G_I16: kv->i = (int16_t)rd_u(r, 2); kv->f = (double)kv->i; break;
    case G_I32: kv->i = (int32_t)rd_u(r, 4); kv->f = (double)kv->i; break;
    case G_I64: kv->i = (int64_t)rd_u(r, 8); kv->f = (double)kv->i; break;
    case G_F32: { uint32_t b = (uint32_t)rd_u(r, 4); float x; memcpy(&x, &b, 4); kv->f = x; break; }
    case G_F64: { u = rd_u(r, 8); double x; memcpy(&x, &u, 8); kv->f = x; break; }
    case G_STR: kv->s = rd_str(r); break;
    default: r->bad = 1;
    }
}

/* GGUF (GGML) tensor type codes: the ones read here, and names for the rest (for messages). */
static const struct { uint32_t code; int dtype; } gguf_types[] = {
    {0, LLM_F32},   {1, LLM_F16},   {30, LLM_BF16}, {2, LLM_Q4_0},  {3, LLM_Q4_1},  {6, LLM_Q5_0},  {7, LLM_Q5_1},
    {8, LLM_Q8_0},  {10, LLM_Q2_K}, {11, LLM_Q3_K}, {12, LLM_Q4_K}, {13, LLM_Q5_K}, {14, LLM_Q6_K},
};
static const char *const ggml_names[] = {
    [0] = "F32",      [1] = "F16",      [2] = "Q4_0",     [3] = "Q4_1",     [4] = "Q4_2",     [5] = "Q4_3",
    [6] = "Q5_0",     [7] = "Q5_1",     [8] = "Q8_0",     [9] = "Q8_1",     [10] = "Q2_K",    [11] = "Q3_K",
    [12] = "Q4_K",    [13] = "Q5_K",    [14] = "Q6_K",    [15] = "Q8_K",    [16] = "IQ2_XXS", [17] = "IQ2_XS",
    [18] = "IQ3_XXS", [19] = "IQ1_S",   [20] = "IQ4_NL",  [21] = "IQ3_S",   [22] = "IQ2_S",   [23] = "IQ4_XS",
    [24] = "I8",      [25] = "I16",     [26] = "I32",     [27] = "I64",     [28] = "F64",     [29] = "IQ1_M",
    [30] = "BF16",    [31] = "Q4_0_4_4", [32] = "Q4_0_4_8", [33] = "Q4_0_8_8", [34] = "TQ1_0", [35] = "TQ2_0",
    [36] = "IQ4_NL_4_4", [37] = "IQ4_NL_4_8", [38] = "IQ4_NL_8_8", [39] = "MXFP4", [40] = "NVFP4", [41] = "Q1_0",
};

static int gguf_dtype(uint32_t code) {
    for (size_t i = 0; i < sizeof gguf_types / sizeof *gguf_types; i++)
        if (gguf_types[i].code == code) return gguf_types[i].dtype;
    return -1;
}

static const char *ggml_type_name(uint32_t code) {
    return code < sizeof ggml_names / sizeof *ggml_names ? ggml_names[code] : NULL;
}

/* "F32, F16, BF16, Q4_0, ..." */
static void supported_list(char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (size_t i = 0; i < sizeof gguf_types / sizeof *gguf_types && len < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? ", " : "", llm_dtype_name((llm_dtype)gguf_types[i].dtype));
}

gguf_file *gguf_open(const char *path, char *err, size_t errlen) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) { snprintf(err, errlen, "%s: %s", path, strerror(errno)); return NULL; }
    struct stat sb;
    fstat(fd, &sb);
    size_t size = (size_t)sb.st_size;
    if (size < 24) { close(fd); snprintf(err, errlen, "%s: not a GGUF file (too short)", path); return NULL; }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) { snprintf(err, errlen, "%s: mmap: %s", path, strerror(errno)); return NULL; }
    gguf_file *g = calloc(1, sizeof *g);
    g->map = map;
    g->size = size;
    rd r = {map, 0, size, 0};
    if (memcmp(map, "GGUF", 4) != 0) { snprintf(err, errlen, "%s: not a GGUF file (bad magic)", path); goto fail; }
    r.pos = 4;
    uint32_t version = (uint32_t)rd_u(&r, 4);
    if (version != 2 && version != 3) { snprintf(err, errlen, "%s: GGUF version %u not supported", path, version); goto fail; }
    g->n_t = rd_u(&r, 8);
    g->n_kv = rd_u(&r, 8);
    if (g->n_t > (1u << 20) || g->n_kv > (1u << 20)) { snprintf(err, errlen, "%s: implausible tensor or key count", path); goto fail; }
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    for (uint64_t i = 0; i < g->n_kv && !r.bad; i++) {
        gguf_kv *kv = &g->kv[i];
        kv->key = rd_str(&r);
        kv->type = (int)rd_u(&r, 4);
        if (kv->type == G_ARR) {
            kv->arr_type = (int)rd_u(&r, 4);
            kv->arr_len = rd_u(&r, 8);
            kv->arr_pos = r.pos;
            if (kv->arr_type == G_STR) {
                for (uint64_t j = 0; j < kv->arr_len && !r.bad; j++) {
                    uint64_t n = rd_u(&r, 8);
                    if (need(&r, n)) r.pos += n;
                }
            } else if (kv->arr_type >= 0 && kv->arr_type <= G_F64 && g_size[kv->arr_type] > 0) {
                if (kv->arr_len > size || !need(&r, kv->arr_len * (uint64_t)g_size[kv->arr_type])) r.bad = 1;
                else r.pos += kv->arr_len * (uint64_t)g_size[kv->arr_type];
            } else r.bad = 1; /* nested arrays: not used by LLaMA files */
        } else rd_scalar(&r, kv->type, kv);
    }
    if (r.bad) { snprintf(err, errlen, "%s: truncated or corrupt GGUF metadata", path); goto fail; }
    int64_t align = 32;
    gguf_get_int(g, "general.alignment", &align);
    if (align <= 0 || align > 65536) { snprintf(err, errlen, "%s: bad general.alignment", path); goto fail; }
    g->t = calloc(g->n_t ? g->n_t : 1, sizeof *g->t);
    g->names = calloc(g->n_t ? g->n_t : 1, sizeof *g->names);
    uint64_t *offs = calloc(g->n_t ? g->n_t : 1, sizeof *offs);
    for (uint64_t i = 0; i < g->n_t && !r.bad; i++) {
        llm_tensor *t = &g->t[i];
        g->names[i] = rd_str(&r);
        t->name = g->names[i];
        uint32_t nd = (uint32_t)rd_u(&r, 4);
        if (nd > LLM_MAX_DIMS) { r.bad = 1; break; }
        t->ndim = (int)nd;
        for (uint32_t d = 0; d < nd; d++) t->shape[nd - 1 - d] = (int64_t)rd_u(&r, 8);
        uint32_t type = (uint32_t)rd_u(&r, 4);
        if (r.bad) break;
        int dt = gguf_dtype(type);
        if (dt < 0) {
            char sup[160];
            supported_list(sup, sizeof sup);
            const char *tn = ggml_type_name(type);
            snprintf(err, errlen, "%s: tensor %s: GGUF type %u%s%s%s is not supported; supported: %s", path, t->name, type,
                     tn ? " (" : "", tn ? tn : "", tn ? ")" : "", sup);
            free(offs);
            goto fail;
        }
        t->dtype = (llm_dtype)dt;
        int64_t inner = nd ? t->shape[nd - 1] : 1, blk = llm_dtype_block(t->dtype);
        if (blk > 1 && inner % blk) {
            snprintf(err, errlen, "%s: tensor %s: innermost dimension %lld is not a multiple of the %s block size (%lld)",
                     path, t->name, (long long)inner, llm_dtype_name(t->dtype), (long long)blk);
            free(offs);
            goto fail;
        }
        offs[i] = rd_u(&r, 8);
    }
    if (r.bad) { free(offs); snprintf(err, errlen, "%s: truncated or corrupt GGUF tensor list", path); goto fail; }
    size_t data = (r.pos + (size_t)align - 1) / (size_t)align * (size_t)align;
    for (uint64_t i = 0; i < g->n_t; i++) {
        llm_tensor *t = &g->t[i];
        uint64_t n = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || t->shape[d] > (1ll << 40)) n = 1ull << 62;
            else n *= (uint64_t)t->shape[d];
            if (n > (1ull << 40)) break;
        }
        size_t nb = n > (1ull << 40) ? 0 : llm_dtype_bytes(t->dtype, n);
        if ((nb == 0 && n != 0) || data > size || offs[i] > size - data || nb > size - data - offs[i]) {
            snprintf(err, errlen, "%s: tensor %s: data beyond the end of the file (truncated?)", path, t->name);
            free(offs);
            goto fail;
        }
        t->data = (const unsigned char *)map + data + offs[i];
        t->nbytes = nb;
    }
    free(offs);
    return g;
fail:
    gguf_close(g);
    return NULL;
}

void gguf_close(gguf_file *g) {
    if (!g) return;
    for (uint64_t i = 0; g->kv && i < g->n_kv; i++) { free(g->kv[i].key); free(g->kv[i].s); }
    for (uint64_t i = 0; g->names && i < g->n_t; i++) free(g->names[i]);
    free(g->kv);
    free(g->names);
    free(g->t);
    munmap(g->map, g->size);
    free(g);
}

int gguf_count(const gguf_file *g) { return (int)g->n_t; }
const llm_tensor *gguf_find(const gguf_file *g, const char *name) {
    for (uint64_t i = 0; i < g->n_t; i++)
        if (g->t[i].name && strcmp(g->t[i].name, name) == 0) return &g->t[i];
    return NULL;
}

static const gguf_kv *find_kv(const gguf_file *g, const char *key) {
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key && strcmp(g->kv[i].key, key) == 0) return &g->kv[i];
    return NULL;
}

int gguf_get_int(const gguf_file *g, const char *key, int64_t *out) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type == G_STR || kv->type == G_ARR || kv->type == G_F32 || kv->type == G_F64) return 0;
    *out = kv->i;
    return 1;
}

int gguf_get_float(const gguf_file *g, const char *key, double *out) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type == G_STR || kv->type == G_ARR) return 0;
    *out = kv->f;
    return 1;
}

const char *gguf_get_str(const gguf_file *g, const char *key) {
    const gguf_kv *kv = find_kv(g, key);
    return kv && kv->type == G_STR ? kv->s : NULL;
}

long gguf_get_arr_len(const gguf_file *g, const char *key) {
    const gguf_kv *kv = find_kv(g, key);
    return kv && kv->type == G_ARR ? (long)kv->arr_len : -1;
}

int gguf_get_arr_type(const gguf_file *g, const char *key) {
    const gguf_kv *kv = find_kv(g, key);
    return kv && kv->type == G_ARR ? kv->arr_type : -1;
}

long gguf_get_arr_strs(const gguf_file *g, const char *key, const char **s, size_t *len, long n) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != G_ARR || kv->arr_type != G_STR) return -1;
    /* the lengths were checked against the file when it was opened */
    rd r = {g->map, kv->arr_pos, g->size, 0};
    long i = 0;
    for (; i < (long)kv->arr_len && i < n && !r.bad; i++) {
        uint64_t m = rd_u(&r, 8);
        if (!need(&r, (size_t)m)) break;
        s[i] = (const char *)r.p + r.pos;
        len[i] = (size_t)m;
        r.pos += (size_t)m;
    }
    return r.bad ? -1 : i;
}

long gguf_get_arr_f64(const gguf_file *g, const char *key, double *out, long n) {
    const gguf_kv *kv = find_kv(g, key);
    if (!kv || kv->type != G_ARR || kv->arr_type == G_STR || kv->arr_type == G_ARR)
        return -1;
    rd r = {g->map, kv->arr_pos, g->size, 0};
    long i = 0;
    for (; i < (long)kv->arr_len && i < n && !r.bad; i++) {
        gguf_kv e = {0};
        rd_scalar(&r, kv->arr_type, &e);
        out[i] = kv->arr_type == G_F32 || kv->arr_type == G_F64 ? e.f : (double)e.i;
    }
    return r.bad ? -1 : i;
}
