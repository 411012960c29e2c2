/* stream.c - msgpack record streams over plain or zstd-compressed files and pipes. */
#include "io/stream.h"

#include "io/atomic.h"
#include "io/err.h"
#include "io/fault.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

static const unsigned char ZSTD_MAGIC[4] = {0x28, 0xB5, 0x2F, 0xFD};
static size_t default_max_record = STREAM_DEFAULT_MAX_RECORD;

bool is_zstd_magic(const unsigned char b[4]) { return memcmp(b, ZSTD_MAGIC, 4) == 0; }


/* ======================================================================== reader */

struct stream_reader {
    char *name;
    FILE *fp;
    bool own_fp;
    /* Bytes sniffed for the magic number, handed to the decoder before anything else. */
    unsigned char sniff[4];
    size_t nsniff, sniff_pos;
    /* zstd state */
    bool zstd;
    ZSTD_DCtx *dctx;
    unsigned char *zin;
    size_t zin_cap;
    ZSTD_inBuffer zib;
    size_t zlast;  /* last ZSTD_decompressStream return: 0 means at a frame boundary */
    bool in_eof;
    /* msgpack state */
    msgpack_unpacker unp;
    msgpack_unpacked header_res, res;
    const msgpack_object *header;
    char *schema;
    long index;
    size_t max_record;
    bool done;
};

void sr_fail(const stream_reader *r, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    die_at(r->name, r->index, "%s", msg);
}

/* Raw bytes from the file, sniffed bytes first. Returns 0 at end of file. */
static size_t read_raw(stream_reader *r, unsigned char *buf, size_t cap) {
    if (r->sniff_pos < r->nsniff) {
        size_t n = r->nsniff - r->sniff_pos;
        if (n > cap) n = cap;
        memcpy(buf, r->sniff + r->sniff_pos, n);
        r->sniff_pos += n;
        return n;
    }
    int failed;
    size_t n = io_read(r->fp, buf, cap, &failed);
    if (failed) die_at(r->name, -1, "read failed: %s", strerror(errno));
    return n;
}

/* Decoded bytes (decompressed when zstd). Returns 0 only at end of input. */
static size_t read_decoded(stream_reader *r, unsigned char *buf, size_t cap) {
    if (!r->zstd) return read_raw(r, buf, cap);
    ZSTD_outBuffer out = {buf, cap, 0};
    while (out.pos == 0) {
        if (r->zib.pos == r->zib.size && !r->in_eof) {
            size_t n = read_raw(r, r->zin, r->zin_cap);
            if (n == 0) r->in_eof = true;
            r->zib = (ZSTD_inBuffer){r->zin, n, 0};
        }
        if (r->in_eof && r->zib.pos == r->zib.size && r->zlast == 0) break;
        size_t before_in = r->zib.pos;
        size_t ret = ZSTD_decompressStream(r->dctx, &out, &r->zib);
        if (ZSTD_isError(ret))
            die_at(r->name, r->index + 1, "corrupt zstd data: %s", ZSTD_getErrorName(ret));
        r->zlast = ret;
        /* Input exhausted, frame unfinished and nothing more produced: truncated. */
        if (r->in_eof && out.pos == 0 && r->zib.pos == before_in) break;
    }
    return out.pos;
}

static const msgpack_object *next_object(stream_reader *r, msgpack_unpacked *res) {
    for (;;) {
        /* msgpack_unpacker_next() spelled out, so the record's size can be checked before
         * the unpacker forgets it (a record that arrived in one read never reports CONTINUE). */
        msgpack_unpacked_destroy(res);
        int ret = msgpack_unpacker_execute(&r->unp);
        if (ret > 0) {
            size_t size = msgpack_unpacker_parsed_size(&r->unp);
            res->zone = msgpack_unpacker_release_zone(&r->unp);
            res->data = msgpack_unpacker_data(&r->unp);
            msgpack_unpacker_reset(&r->unp);
            if (size > r->max_record)
                die_at(r->name, r->index + 1, "record over the size cap of %zu bytes", r->max_record);
            r->index++;
            if (res->data.type != MSGPACK_OBJECT_MAP) sr_fail(r, "record is not a map");
            return &res->data;
        }
        if (ret == MSGPACK_UNPACK_PARSE_ERROR)
            die_at(r->name, r->index + 1, "not a msgpack record (corrupt stream)");
        if (ret < 0)
            die_at(r->name, r->index + 1, "record too large to decode (out of memory)");
        /* CONTINUE: the current record is incomplete. */
        if (msgpack_unpacker_message_size(&r->unp) > r->max_record)
            die_at(r->name, r->index + 1, "record over the size cap of %zu bytes", r->max_record);
        if (!msgpack_unpacker_reserve_buffer(&r->unp, 64 * 1024)) die("out of memory");
        size_t n = read_decoded(r, (unsigned char *)msgpack_unpacker_buffer(&r->unp),
                                msgpack_unpacker_buffer_capacity(&r->unp));
        if (n == 0) {
            if (r->zstd && r->zlast != 0)
                die_at(r->name, r->index + 1, "truncated stream (zstd frame unfinished)");
            if (msgpack_unpacker_message_size(&r->unp) > 0)
                die_at(r->name, r->index + 1, "truncated stream (%zu bytes of an unfinished record at end of file)",
                       msgpack_unpacker_message_size(&r->unp));
            return NULL;
        }
        msgpack_unpacker_buffer_consumed(&r->unp, n);
    }
}

stream_reader *sr_open(const char *path, const char *schema, int major) {
    stream_reader *r = xcalloc(1, sizeof *r);
    if (!path || strcmp(path, "-") == 0) {
        r->name = xstrdup("<stdin>");
        r->fp = stdin;
    } else {
        r->name = xstrdup(path);
        r->fp = io_gate() == 0 ? fopen(path, "rb") : NULL;
        if (!r->fp) die_at(path, -1, "cannot open: %s", strerror(errno));
        r->own_fp = true;
    }
    const char *cap = getenv("ITREK_MAX_RECORD");
    r->max_record = cap && *cap ? strtoull(cap, NULL, 10) : default_max_record;
    r->index = -1; /* the header is record 0 */
    int failed;
    r->nsniff = io_read(r->fp, r->sniff, 4, &failed);
    if (failed) die_at(r->name, -1, "read failed: %s", strerror(errno));
    if (r->nsniff == 4 && is_zstd_magic(r->sniff)) {
        r->zstd = true;
        r->dctx = ZSTD_createDCtx();
        r->zin_cap = ZSTD_DStreamInSize();
        r->zin = xmalloc(r->zin_cap);
        if (!r->dctx) die("out of memory");
    }
    if (!msgpack_unpacker_init(&r->unp, MSGPACK_UNPACKER_INIT_BUFFER_SIZE)) die("out of memory");
    msgpack_unpacked_init(&r->header_res);
    msgpack_unpacked_init(&r->res);

    r->header = next_object(r, &r->header_res);
    if (!r->header) die_at(r->name, 0, "empty stream: no header record");
    const msgpack_object *s = mp_find(r->header, "schema");
    if (!s || s->type != MSGPACK_OBJECT_STR)
        die_at(r->name, 0, "missing header: field 'schema' absent or not a string");
    r->schema = xmalloc(s->via.str.size + 1);
    memcpy(r->schema, s->via.str.ptr, s->via.str.size);
    r->schema[s->via.str.size] = 0;
    if (schema && strcmp(schema, r->schema) != 0)
        die_at(r->name, 0, "field 'schema': expected %s, got %s", schema, r->schema);
    const msgpack_object *v = mp_find(r->header, "version");
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        die_at(r->name, 0, "field 'version': absent or not a positive integer");
    if ((int64_t)v->via.u64 != major)
        die_at(r->name, 0, "field 'version': unsupported major version %llu of %s (this program reads %d)",
               (unsigned long long)v->via.u64, r->schema, major);
    return r;
}

const msgpack_object *sr_next(stream_reader *r) {
    if (r->done) return NULL;
    const msgpack_object *o = next_object(r, &r->res);
    if (!o) r->done = true;
    return o;
}

const msgpack_object *sr_header(const stream_reader *r) { return r->header; }
const char *sr_schema(const stream_reader *r) { return r->schema; }
long sr_index(const stream_reader *r) { return r->index; }
const char *sr_name(const stream_reader *r) { return r->name; }

void sr_close(stream_reader *r) {
    if (!r) return;
    msgpack_unpacked_destroy(&r->res);
    msgpack_unpacked_destroy(&r->header_res);
    msgpack_unpacker_destroy(&r->unp);
    if (r->dctx) ZSTD_freeDCtx(r->dctx);
    free(r->zin);
    if (r->own_fp) fclose(r->fp);
    free(r->schema);
    free(r->name);
    free(r);
}

/* ---------- field access ---------- */

const msgpack_object *mp_find(const msgpack_object *map, const char *key) {
    if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen && memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

bool sr_has(const msgpack_object *map, const char *key) { return mp_find(map, key) != NULL; }

static const char *type_name(msgpack_object_type t) {
    switch (t) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "float";
    case MSGPACK_OBJECT_STR: return "string";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "bin";
    default: return "ext";
    }
}

static const msgpack_object *need(const stream_reader *r, const msgpack_object *map, const char *key) {
    const msgpack_object *o = mp_find(map, key);
    if (!o) sr_fail(r, "missing field '%s'", key);
    return o;
}

static int64_t as_int(const stream_reader *r, const msgpack_object *o, const char *key) {
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX) sr_fail(r, "field '%s': integer out of range", key);
        return (int64_t)o->via.u64;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) return o->via.i64;
    sr_fail(r, "field '%s': expected integer, got %s", key, type_name(o->type));
}

static double as_num(const stream_reader *r, const msgpack_object *o, const char *key) {
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) sr_fail(r, "field '%s': not a finite number", key);
        return o->via.f64;
    default: sr_fail(r, "field '%s': expected number, got %s", key, type_name(o->type));
    }
}

int64_t sr_int(const stream_reader *r, const msgpack_object *map, const char *key) {
    return as_int(r, need(r, map, key), key);
}

double sr_num(const stream_reader *r, const msgpack_object *map, const char *key) {
    return as_num(r, need(r, map, key), key);
}

const char *sr_str(const stream_reader *r, const msgpack_object *map, const char *key, uint32_t *len) {
    const msgpack_object *o = need(r, map, key);
    if (o->type != MSGPACK_OBJECT_STR) sr_fail(r, "field '%s': expected string, got %s", key, type_name(o->type));
    *len = o->via.str.size;
    return o->via.str.ptr;
}

char *sr_strdup(const stream_reader *r, const msgpack_object *map, const char *key) {
    uint32_t n;
    const char *s = sr_str(r, map, key, &n);
    if (memchr(s, 0, n)) sr_fail(r, "field '%s': string contains a NUL byte", key);
    char *d = xmalloc((size_t)n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

const msgpack_object_array *sr_array(const stream_reader *r, const msgpack_object *map, const char *key) {
    const msgpack_object *o = need(r, map, key);
    if (o->type != MSGPACK_OBJECT_ARRAY) sr_fail(r, "field '%s': expected array, got %s", key, type_name(o->type));
    return &o->via.array;
}

const msgpack_object_bin *sr_bin(const stream_reader *r, const msgpack_object *map, const char *key) {
    const msgpack_object *o = need(r, map, key);
    if (o->type != MSGPACK_OBJECT_BIN) sr_fail(r, "field '%s': expected bin, got %s", key, type_name(o->type));
    return &o->via.bin;
}

int64_t sr_elem_int(const stream_reader *r, const msgpack_object_array *a, uint32_t i, const char *key) {
    char k[96];
    snprintf(k, sizeof k, "%s[%u]", key, i);
    return as_int(r, &a->ptr[i], k);
}


int64_t sr_header_int(const stream_reader *r, const char *key, int64_t dflt) {
    const msgpack_object *o = mp_find(r->header, key);
    if (!o) return dflt;
    stream_reader tmp = *r;
    tmp.index = 0;
    return as_int(&tmp, o, key);
}



const msgpack_object *sr_header_param(const stream_reader *r, const char *key) {
    return mp_find(mp_find(r->header, "params"), key);
}

/* ======================================================================== writer */

struct stream_writer {
    atomic_file out; /* PATH.tmp.PID renamed into place at sw_close (io/atomic.h) */
    const char *name; /* for messages */
    FILE *fp;
    bool zstd;
    ZSTD_CCtx *cctx;
    unsigned char *zout;
    size_t zout_cap;
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    long records; /* maps written, header included */
};

static void write_all(stream_writer *w, const void *p, size_t n) {
    if (io_write_all(w->fp, p, n) != 0) die_at(w->name, -1, "write failed: %s", strerror(errno));
}

/* Push n bytes through the compressor (or straight out). end: finish the frame. */
static void emit(stream_writer *w, const void *p, size_t n, bool end) {
    if (!w->zstd) { write_all(w, p, n); return; }
    ZSTD_inBuffer in = {p, n, 0};
    ZSTD_EndDirective mode = end ? ZSTD_e_end : ZSTD_e_continue;
    for (;;) {
        ZSTD_outBuffer out = {w->zout, w->zout_cap, 0};
        size_t left = ZSTD_compressStream2(w->cctx, &out, &in, mode);
        if (ZSTD_isError(left)) die("zstd compression failed: %s", ZSTD_getErrorName(left));
        write_all(w, w->zout, out.pos);
        if (end ? left == 0 : in.pos == in.size) break;
    }
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

stream_writer *sw_open(const char *path, bool compress) {
    stream_writer *w = xcalloc(1, sizeof *w);
    w->fp = atomic_open_or_die(&w->out, path);
    w->name = w->out.path ? w->out.path : "<stdout>";
    if (w->out.tmp && ends_with(path, ".zst")) compress = true;
    w->zstd = compress;
    if (compress) {
        w->cctx = ZSTD_createCCtx();
        if (!w->cctx) die("out of memory");
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, 3);
        ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_checksumFlag, 1);
        w->zout_cap = ZSTD_CStreamOutSize();
        w->zout = xmalloc(w->zout_cap);
    }
    msgpack_sbuffer_init(&w->sbuf);
    msgpack_packer_init(&w->pk, &w->sbuf, msgpack_sbuffer_write);
    return w;
}

msgpack_packer *sw_pk(stream_writer *w) { return &w->pk; }

void sw_end_record(stream_writer *w) {
    emit(w, w->sbuf.data, w->sbuf.size, false);
    msgpack_sbuffer_clear(&w->sbuf);
    w->records++;
}




void sw_map_begin(stream_writer *w, pk_map *m) { pkm_begin(m, &w->pk); }

void sw_map_end(stream_writer *w, pk_map *m) {
    pkm_end(m);
    sw_end_record(w);
}

void sw_raw_record(stream_writer *w, const void *p, size_t n) {
    if (w->sbuf.size) die("internal: record packed but not ended");
    emit(w, p, n, false);
    w->records++;
}

void sw_close(stream_writer *w) {
    if (w->sbuf.size) die("internal: record packed but not ended");
    if (w->zstd) emit(w, NULL, 0, true);
    atomic_commit_or_die(&w->out);
    msgpack_sbuffer_destroy(&w->sbuf);
    if (w->cctx) ZSTD_freeCCtx(w->cctx);
    free(w->zout);
    free(w);
}
