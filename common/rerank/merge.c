/* merge.c - rank --merge: the answer streams of one run's shards into one (see rank.h). */
#include "rerank/rank.h"

#include "io/err.h"
#include "io/stream.h"
#include "records/answers.h"

#include <stdlib.h>
#include <string.h>

static int cmp_ref(const void *a, const void *b) {
    const int64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

void rank_merge(const char *const *inputs, int n, const char *output, bool zstd) {
    answers_raw *s = xcalloc((size_t)n, sizeof *s);
    size_t total = 0;
    int shard_n = 0;
    bool *seen = NULL;
    unsigned char *hdr = NULL; size_t hdr_len = 0; /* header without shard */
    for (int i = 0; i < n; i++) {
        answers_raw_load(&s[i], inputs[i]);
        total += s[i].n;
        msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
        int si, sn;
        answers_raw_header_unsharded(&s[i], inputs[i], &sb, &si, &sn);
        if (i == 0) { shard_n = sn; seen = xcalloc((size_t)sn, 1); }
        else if (sn != shard_n) die_at(inputs[i], 0, "field 'shard': a shard of %d, the first input is a shard of %d", sn, shard_n);
        if (seen[si]) die_at(inputs[i], 0, "field 'shard': shard %d/%d given twice", si, sn);
        seen[si] = 1;
        if (i == 0) { hdr = xmalloc(sb.size); memcpy(hdr, sb.data, sb.size); hdr_len = sb.size; }
        else if (sb.size != hdr_len || memcmp(sb.data, hdr, hdr_len) != 0)
            die_at(inputs[i], 0, "header differs from %s's (other parameters, model or queries)", inputs[0]);
        msgpack_sbuffer_destroy(&sb);
    }
    for (int k = 0; k < shard_n; k++) if (!seen[k]) die("--merge: shard %d/%d is missing", k, shard_n);
    /* (id, input, record) sorted by id */
    int64_t *ref = xmalloc(sizeof *ref * 3 * (total ? total : 1));
    size_t m = 0;
    for (int i = 0; i < n; i++)
        for (size_t k = 0; k < s[i].n; k++) { ref[3 * m] = s[i].id[k]; ref[3 * m + 1] = i; ref[3 * m + 2] = (int64_t)k; m++; }
    qsort(ref, m, sizeof *ref * 3, cmp_ref);
    for (size_t k = 1; k < m; k++)
        if (ref[3 * k] == ref[3 * (k - 1)])
            die_at(inputs[ref[3 * k + 1]], (long)ref[3 * k + 2] + 1, "field 'id': %lld also answered in %s", (long long)ref[3 * k],
                   inputs[ref[3 * (k - 1) + 1]]);
    stream_writer *w = sw_open(output, zstd);
    sw_raw_record(w, hdr, hdr_len);
    for (size_t k = 0; k < m; k++) {
        const answers_raw *a = &s[ref[3 * k + 1]];
        size_t r = (size_t)ref[3 * k + 2];
        sw_raw_record(w, a->buf + a->off[r], a->rlen[r]);
    }
    sw_close(w);
    for (int i = 0; i < n; i++) answers_raw_free(&s[i]);
    free(s); free(ref); free(hdr); free(seen);
}
