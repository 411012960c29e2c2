/* test_stream.c - stream writer/reader round trips (plain, zstd, many records, big records)
 * and the RNG's reproducibility. Rejections are tested through the CLI (tests/cli/streams.sh),
 * since a rejection ends the process. Also: a counted map (io/pack.h) packs the same bytes as
 * the hand-counted map it replaced, nested maps included. */
#include "../unit/harness.h"
#include "io/err.h"
#include "io/rng.h"
#include "io/stream.h"
#include "records/header.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static void write_file(const char *path, bool zstd, int n, int payload) {
    stream_writer *w = sw_open(path, zstd);
    msgpack_packer *pk = sw_pk(w);
    pk_map h;
    records_header_begin(&h, pk, "itrek.test", 1);
    pkm_int(&h, "n", n);
    pkm_end(&h);
    sw_end_record(w);
    char *big = malloc((size_t)payload + 1);
    memset(big, 'x', (size_t)payload);
    big[payload] = 0;
    for (int i = 0; i < n; i++) {
        float v[3] = {(float)i, -1.5f, 1e30f};
        msgpack_pack_map(pk, 4);
        pk_kv_int(pk, "i", i - n / 2);
        pk_kv_f32bin(pk, "vec", v, 3);
        pk_kv_str(pk, "s", i == n - 1 ? big : "é");
        pk_kv_num(pk, "x", i * 0.5);
        sw_end_record(w);
    }
    free(big);
    sw_close(w);
}

static int read_file(const char *path, int n, int payload) {
    stream_reader *r = sr_open(path, "itrek.test", 1);
    if (sr_header_int(r, "n", -1) != n) return 0;
    const msgpack_object *o;
    int i = 0, ok = 1;
    while ((o = sr_next(r))) {
        if (sr_int(r, o, "i") != i - n / 2) ok = 0;
        if (sr_num(r, o, "x") != i * 0.5) ok = 0;
        const msgpack_object_bin *b = sr_bin(r, o, "vec");
        float v[3];
        memcpy(v, b->ptr, 12);
        if (b->size != 12 || v[0] != (float)i || v[2] != 1e30f) ok = 0;
        uint32_t len;
        sr_str(r, o, "s", &len);
        if (i == n - 1 && len != (uint32_t)payload) ok = 0;
        if (sr_index(r) != i + 1) ok = 0;
        i++;
    }
    sr_close(r);
    return ok && i == n;
}

/* The same map, hand-counted and counted: {"a": 1, "m": {"x": "y", "f": [1.5]}, "b": true}. */
static bool counted_map_bytes_equal(void) {
    msgpack_sbuffer s1, s2;
    msgpack_sbuffer_init(&s1);
    msgpack_sbuffer_init(&s2);
    msgpack_packer p1, p2;
    msgpack_packer_init(&p1, &s1, msgpack_sbuffer_write);
    msgpack_packer_init(&p2, &s2, msgpack_sbuffer_write);
    float f = 1.5f;
    msgpack_pack_map(&p1, 3);
    pk_kv_int(&p1, "a", 1);
    pk_str(&p1, "m");
    msgpack_pack_map(&p1, 2);
    pk_kv_str(&p1, "x", "y");
    pk_kv_floats(&p1, "f", &f, 1);
    pk_kv_bool(&p1, "b", true);
    pk_map m, inner;
    pkm_begin(&m, &p2);
    pkm_int(&m, "a", 1);
    pkm_begin(&inner, pkm_key(&m, "m"));
    pkm_str(&inner, "x", "y");
    pkm_floats(&inner, "f", &f, 1);
    pkm_end(&inner);
    pkm_bool(&m, "b", true);
    pkm_end(&m);
    bool same = s1.size == s2.size && memcmp(s1.data, s2.data, s1.size) == 0;
    msgpack_sbuffer_destroy(&s1);
    msgpack_sbuffer_destroy(&s2);
    return same;
}

int main(void) {
    err_set_prog("test_stream");
    snprintf(dir, sizeof dir, "%s/stream.XXXXXX", getenv("TMPROOT") ? getenv("TMPROOT") : "/tmp");
    if (!mkdtemp(dir)) return 1;
    char p1[300], p2[300], p3[300];
    snprintf(p1, sizeof p1, "%s/a.mp", dir);
    snprintf(p2, sizeof p2, "%s/a.mp.zst", dir);
    snprintf(p3, sizeof p3, "%s/b.mp", dir);
    write_file(p1, false, 1000, 10);
    CHECK("counted map = hand-counted map, byte for byte", counted_map_bytes_equal());
    CHECK("plain round trip", read_file(p1, 1000, 10));
    write_file(p2, false, 1000, 10);
    FILE *f = fopen(p2, "rb");
    unsigned char m[4] = {0};
    if (f) { if (fread(m, 1, 4, f) != 4) m[0] = 0; fclose(f); }
    CHECK("zst name compresses", is_zstd_magic(m));
    CHECK("zstd round trip", read_file(p2, 1000, 10));
    /* A record far bigger than the reader's buffers and zstd's blocks. */
    write_file(p3, true, 3, 5 << 20);
    CHECK("zstd 5 MiB record", read_file(p3, 3, 5 << 20));
    write_file(p3, false, 0, 1);
    CHECK("header only", read_file(p3, 0, 1));
    CHECK("no temp file left", access(p1, F_OK) == 0);

    rng_t a, b;
    rng_init(&a, 42, 0);
    rng_init(&b, 42, 0);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= rng_u64(&a) == rng_u64(&b);
    CHECK("rng reproducible", same);
    rng_init(&b, 42, 1);
    CHECK("rng streams differ", rng_u64(&a) != rng_u64(&b));
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[rng_below(&a, 7)]++;
    int flat = 1;
    for (int k = 0; k < 7; k++) flat &= counts[k] > 9400 && counts[k] < 10600;
    CHECK("rng_below uniform", flat);
    double s = 0, s2 = 0;
    for (int i = 0; i < 100000; i++) { double x = rng_normal(&a); s += x; s2 += x * x; }
    CHECK_NEAR("rng_normal mean", s / 100000, 0, 0.02);
    CHECK_NEAR("rng_normal var", s2 / 100000, 1, 0.03);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) return 1;
    return 0;
}
