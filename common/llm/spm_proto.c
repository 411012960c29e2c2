/* spm_proto.c - hand-written protobuf (wire format) reader/writer for SentencePiece
 * ModelProto. See spm_proto.h for why there is no library and which fields matter.
 *
 * Wire format recap: a message is a sequence of (tag varint = field << 3 | wire type,
 * value). Wire types: 0 varint, 1 fixed 8 bytes, 2 length-delimited (strings, bytes,
 * sub-messages), 5 fixed 4 bytes (float). 3/4 are the obsolete groups: rejected.
 * int32 fields are sign-extended to 64 bits before varint encoding, so -1 takes 10 bytes.
 */
#include "llm/spm_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/err.h"
#include "llm/tok_common.h"

#define DEFAULT_UNK_SURFACE " \xE2\x81\x87 "   /* " ⁇ ", as spm_decode prints <unk> */

/* ---------- reading ---------- */

typedef struct {
    const uint8_t *p, *end;
} pb_reader;

typedef struct {
    uint32_t field;
    int wire;
    uint64_t v;            /* wire 0, 1, 5 */
    const uint8_t *data;   /* wire 2 */
    size_t len;
} pb_field;

static int rd_varint(pb_reader *r, uint64_t *out) {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end) return -1;
        uint8_t b = *r->p++;
        if (shift < 64) v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) { *out = v; return 0; }
    }
    return -1; /* more than 10 bytes: not a varint */
}

/* Next field of the message in r: 1 when one was read, 0 at the end, -1 on bad data. */
static int rd_field(pb_reader *r, pb_field *f) {
    if (r->p == r->end) return 0;
    uint64_t tag;
    if (rd_varint(r, &tag) < 0 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) return -1;
    f->field = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    size_t left;
    switch (f->wire) {
    case 0:
        return rd_varint(r, &f->v) < 0 ? -1 : 1;
    case 1:
    case 5: {
        size_t n = f->wire == 1 ? 8 : 4;
        if ((size_t)(r->end - r->p) < n) return -1;
        f->v = 0;
        for (size_t i = 0; i < n; i++) f->v |= (uint64_t)r->p[i] << (8 * i);
        r->p += n;
        return 1;
    }
    case 2:
        if (rd_varint(r, &f->v) < 0) return -1;
        left = (size_t)(r->end - r->p);
        if (f->v > left) return -1;
        f->data = r->p;
        f->len = (size_t)f->v;
        r->p += f->len;
        return 1;
    default:
        return -1;
    }
}

static float u32_to_float(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static char *dup_bytes(const uint8_t *p, size_t n) {
    char *s = xmalloc(n + 1);
    if (n) memcpy(s, p, n);
    s[n] = 0;
    return s;
}

static void set_str(char **dst, const uint8_t *p, size_t n) {
    free(*dst);
    *dst = dup_bytes(p, n);
}

static void set_bytes(spm_bytes *b, const uint8_t *p, size_t n) {
    free(b->data);
    b->data = xmalloc(n ? n : 1);
    if (n) memcpy(b->data, p, n);
    b->len = n;
}

void spm_model_init(spm_model *m) {
    memset(m, 0, sizeof *m);
    m->model_type = SPM_UNIGRAM;
    m->vocab_size = 8000;
    m->unk_id = 0; m->bos_id = 1; m->eos_id = 2; m->pad_id = -1;
    m->unk_piece = xstrdup("<unk>");
    m->bos_piece = xstrdup("<s>");
    m->eos_piece = xstrdup("</s>");
    m->pad_piece = xstrdup("<pad>");
    m->unk_surface = xstrdup(DEFAULT_UNK_SURFACE);
    m->norm_name = xstrdup("");
    m->add_dummy_prefix = m->remove_extra_whitespaces = m->escape_whitespaces = 1;
}

void spm_model_free(spm_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_pieces; i++) free(m->pieces[i].piece);
    free(m->pieces);
    free(m->unk_piece); free(m->bos_piece); free(m->eos_piece); free(m->pad_piece);
    free(m->unk_surface); free(m->norm_name);
    free(m->charsmap.data);
    free(m->raw_trainer.data); free(m->raw_normalizer.data); free(m->raw_denormalizer.data);
    memset(m, 0, sizeof *m);
}

static int parse_piece(spm_piece *sp, const uint8_t *buf, size_t n) {
    pb_reader r = { buf, buf + n };
    pb_field f;
    int rc;
    sp->type = SPM_NORMAL;
    sp->score = 0;
    while ((rc = rd_field(&r, &f)) > 0) {
        if (f.field == 1 && f.wire == 2) {
            free(sp->piece);
            sp->piece = dup_bytes(f.data, f.len);
            sp->len = (uint32_t)f.len;
        } else if (f.field == 2 && f.wire == 5) {
            sp->score = u32_to_float((uint32_t)f.v);
        } else if (f.field == 3 && f.wire == 0) {
            sp->type = (int)(int32_t)f.v;
        }
    }
    return rc;
}

static int parse_trainer(spm_model *m, const uint8_t *buf, size_t n) {
    pb_reader r = { buf, buf + n };
    pb_field f;
    int rc;
    while ((rc = rd_field(&r, &f)) > 0) {
        int32_t iv = (int32_t)(uint32_t)f.v;   /* int32 fields: low 32 bits of the varint */
        if (f.wire == 0) {
            switch (f.field) {
            case 3: m->model_type = iv; break;
            case 4: m->vocab_size = iv; break;
            case 24: m->treat_whitespace_as_suffix = f.v != 0; break;
            case 35: m->byte_fallback = f.v != 0; break;
            case 40: m->unk_id = iv; break;
            case 41: m->bos_id = iv; break;
            case 42: m->eos_id = iv; break;
            case 43: m->pad_id = iv; break;
            }
        } else if (f.wire == 2) {
            switch (f.field) {
            case 44: set_str(&m->unk_surface, f.data, f.len); break;
            case 45: set_str(&m->unk_piece, f.data, f.len); break;
            case 46: set_str(&m->bos_piece, f.data, f.len); break;
            case 47: set_str(&m->eos_piece, f.data, f.len); break;
            case 48: set_str(&m->pad_piece, f.data, f.len); break;
            }
        }
    }
    return rc;
}

static int parse_normalizer(spm_model *m, const uint8_t *buf, size_t n) {
    pb_reader r = { buf, buf + n };
    pb_field f;
    int rc;
    while ((rc = rd_field(&r, &f)) > 0) {
        if (f.wire == 2 && f.field == 1) set_str(&m->norm_name, f.data, f.len);
        else if (f.wire == 2 && f.field == 2) set_bytes(&m->charsmap, f.data, f.len);
        else if (f.wire == 0 && f.field == 3) m->add_dummy_prefix = f.v != 0;
        else if (f.wire == 0 && f.field == 4) m->remove_extra_whitespaces = f.v != 0;
        else if (f.wire == 0 && f.field == 5) m->escape_whitespaces = f.v != 0;
    }
    return rc;
}

int spm_parse(spm_model *m, const uint8_t *buf, size_t n, char *err, size_t errlen) {
    spm_model_init(m);
    pb_reader r = { buf, buf + n };
    pb_field f;
    int rc, cap = 0;
    while ((rc = rd_field(&r, &f)) > 0) {
        if (f.wire != 2) continue;
        if (f.field == 1) {
            if (m->n_pieces == cap) {
                cap = cap ? 2 * cap : 1024;
                m->pieces = xrealloc(m->pieces, (size_t)cap * sizeof *m->pieces);
            }
            spm_piece *sp = &m->pieces[m->n_pieces++];
            memset(sp, 0, sizeof *sp);
            if (parse_piece(sp, f.data, f.len) < 0) {
                tok_seterr(err, errlen, "bad protobuf in piece %d", m->n_pieces - 1);
                goto fail;
            }
            if (!sp->piece) {
                tok_seterr(err, errlen, "piece %d has no text", m->n_pieces - 1);
                goto fail;
            }
        } else if (f.field == 2) {
            set_bytes(&m->raw_trainer, f.data, f.len);
            if (parse_trainer(m, f.data, f.len) < 0) {
                tok_seterr(err, errlen, "bad protobuf in trainer_spec");
                goto fail;
            }
        } else if (f.field == 3) {
            set_bytes(&m->raw_normalizer, f.data, f.len);
            if (parse_normalizer(m, f.data, f.len) < 0) {
                tok_seterr(err, errlen, "bad protobuf in normalizer_spec");
                goto fail;
            }
        } else if (f.field == 5) {
            set_bytes(&m->raw_denormalizer, f.data, f.len);
        }
    }
    if (rc < 0) {
        tok_seterr(err, errlen, "not a SentencePiece model: bad protobuf at byte %zu of %zu",
               (size_t)(r.p - buf), n);
        goto fail;
    }
    if (m->n_pieces == 0) {
        tok_seterr(err, errlen, "not a SentencePiece model: no pieces");
        goto fail;
    }
    return 0;
fail:
    spm_model_free(m);
    return -1;
}

/* ---------- writing ---------- */

typedef struct {
    uint8_t *p;
    size_t n, cap;
} pb_buf;

static void put(pb_buf *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 256;
        b->p = xrealloc(b->p, b->cap);
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put_varint(pb_buf *b, uint64_t v) {
    uint8_t tmp[10];
    int k = 0;
    do {
        tmp[k] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) tmp[k] |= 0x80;
        k++;
    } while (v);
    put(b, tmp, (size_t)k);
}

static void put_tag(pb_buf *b, uint32_t field, int wire) { put_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }
static void put_int32(pb_buf *b, uint32_t field, int32_t v) { put_tag(b, field, 0); put_varint(b, (uint64_t)(int64_t)v); }
static void put_lenbytes(pb_buf *b, uint32_t field, const void *p, size_t n) {
    put_tag(b, field, 2);
    put_varint(b, n);
    put(b, p, n);
}
static void put_str(pb_buf *b, uint32_t field, const char *s) { put_lenbytes(b, field, s, strlen(s)); }
static void put_float(pb_buf *b, uint32_t field, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t le[4] = { (uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24) };
    put_tag(b, field, 5);
    put(b, le, 4);
}

uint8_t *spm_serialize(const spm_model *m, size_t *len) {
    pb_buf out = { 0 }, sub = { 0 };
    for (int i = 0; i < m->n_pieces; i++) {
        const spm_piece *sp = &m->pieces[i];
        sub.n = 0;
        put_lenbytes(&sub, 1, sp->piece, sp->len);
        put_float(&sub, 2, sp->score);
        if (sp->type != SPM_NORMAL) put_int32(&sub, 3, sp->type);
        put_lenbytes(&out, 1, sub.p, sub.n);
    }
    if (m->raw_trainer.data) {
        put_lenbytes(&out, 2, m->raw_trainer.data, m->raw_trainer.len);
    } else {
        sub.n = 0;
        put_int32(&sub, 3, m->model_type);
        put_int32(&sub, 4, m->vocab_size);
        if (m->treat_whitespace_as_suffix) put_int32(&sub, 24, 1);
        put_int32(&sub, 35, m->byte_fallback != 0);
        put_int32(&sub, 40, m->unk_id);
        put_int32(&sub, 41, m->bos_id);
        put_int32(&sub, 42, m->eos_id);
        put_int32(&sub, 43, m->pad_id);
        if (strcmp(m->unk_surface, DEFAULT_UNK_SURFACE) != 0) put_str(&sub, 44, m->unk_surface);
        put_str(&sub, 45, m->unk_piece);
        put_str(&sub, 46, m->bos_piece);
        put_str(&sub, 47, m->eos_piece);
        put_str(&sub, 48, m->pad_piece);
        put_lenbytes(&out, 2, sub.p, sub.n);
    }
    if (m->raw_normalizer.data) {
        put_lenbytes(&out, 3, m->raw_normalizer.data, m->raw_normalizer.len);
    } else {
        sub.n = 0;
        put_str(&sub, 1, m->norm_name);
        if (m->charsmap.len) put_lenbytes(&sub, 2, m->charsmap.data, m->charsmap.len);
        put_int32(&sub, 3, m->add_dummy_prefix != 0);
        put_int32(&sub, 4, m->remove_extra_whitespaces != 0);
        put_int32(&sub, 5, m->escape_whitespaces != 0);
        put_lenbytes(&out, 3, sub.p, sub.n);
    }
    if (m->raw_denormalizer.data)
        put_lenbytes(&out, 5, m->raw_denormalizer.data, m->raw_denormalizer.len);
    free(sub.p);
    *len = out.n;
    return out.p ? out.p : xmalloc(1);
}
