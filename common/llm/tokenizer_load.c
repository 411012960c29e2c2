/* tokenizer_load.c - making an llm_tokenizer (tokenizer.h): tok_load's choice by content
 * and name (GGUF, tokenizer.json, a directory, a SentencePiece tokenizer.model), the llama2.c
 * tok*.bin reader, the validation and lookup tables of a SentencePiece model (as its
 * ModelInterface::InitializePieces does), and tok_save_model. The byte-level BPE kind is
 * built by bpe_load.c and wrapped here.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/err.h"
#include "llm/gguf.h"
#include "llm/tok_common.h"
#include "llm/tokenizer.h"
#include "llm/tokenizer_impl.h"

/* ---------- loading ---------- */

static void tok_free_partial(llm_tokenizer *t) {
    if (!t) return;
    if (t->bpe) {
        bpe_free(t->bpe);
        free(t);
        return;
    }
    if (t->surface) for (int i = 0; i < t->n; i++) free(t->surface[i]);
    free(t->surface);
    free(t->normal.slot);
    free(t->reserved.slot);
    free(t->trie);
    spm_model_free(&t->m);
    free(t);
}

void tok_free(llm_tokenizer *t) { tok_free_partial(t); }

static int parse_byte_piece(const char *s, uint32_t len) {
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    const char *hi = memchr(hex, s[3], 16), *lo = memchr(hex, s[4], 16);
    if (!hi || !lo || !s[3] || !s[4]) return -1;
    return (int)((hi - hex) * 16 + (lo - hex));
}

static const char *model_type_name(int mt) {
    switch (mt) {
    case SPM_UNIGRAM: return "unigram";
    case SPM_BPE: return "bpe";
    case SPM_WORD: return "word";
    case SPM_CHAR: return "char";
    default: return "unknown";
    }
}

/* Validate t->m (as ModelInterface::InitializePieces does) and build the lookup tables. */
static int finish_init(llm_tokenizer *t, char *err, size_t errlen) {
    spm_model *m = &t->m;
    t->n = m->n_pieces;
    t->unk = -1;
    if (m->model_type != SPM_BPE) {
        tok_seterr(err, errlen, "unsupported SentencePiece model_type %s (only bpe is supported)",
               model_type_name(m->model_type));
        return -1;
    }
    if (m->treat_whitespace_as_suffix) {
        tok_seterr(err, errlen, "unsupported SentencePiece option treat_whitespace_as_suffix");
        return -1;
    }
    sp_map_init(&t->normal, t->n);
    sp_map_init(&t->reserved, t->n);
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    int n_bytes = 0;
    for (int i = 0; i < t->n; i++) {
        spm_piece *p = &m->pieces[i];
        if (p->len == 0) {
            tok_seterr(err, errlen, "piece %d is empty", i);
            return -1;
        }
        int normal;
        switch (p->type) {
        case SPM_NORMAL: case SPM_USER_DEFINED: case SPM_UNUSED: normal = 1; break;
        case SPM_UNKNOWN: case SPM_CONTROL: case SPM_BYTE: normal = 0; break;
        default:
            tok_seterr(err, errlen, "piece %d has unknown type %d", i, p->type);
            return -1;
        }
        if (sp_map_put(t, normal ? &t->normal : &t->reserved, i) < 0) {
            tok_seterr(err, errlen, "piece %d \"%.40s\" is defined twice", i, p->piece);
            return -1;
        }
        if (p->type == SPM_UNKNOWN) {
            if (t->unk >= 0) {
                tok_seterr(err, errlen, "more than one <unk> piece (%d and %d)", t->unk, i);
                return -1;
            }
            t->unk = i;
        } else if (p->type == SPM_USER_DEFINED) {
            t->n_user++;
            if (p->len > t->user_maxlen) t->user_maxlen = p->len;
            t->user_first[(uint8_t)p->piece[0]] = 1;
        } else if (p->type == SPM_UNUSED) {
            t->has_unused = 1;
        } else if (p->type == SPM_BYTE) {
            int b = parse_byte_piece(p->piece, p->len);
            if (b < 0) {
                tok_seterr(err, errlen, "byte piece %d \"%.40s\" is not of the form <0xNN>", i, p->piece);
                return -1;
            }
            if (!m->byte_fallback) {
                tok_seterr(err, errlen, "byte piece %d found but byte_fallback is off", i);
                return -1;
            }
            t->byte_id[b] = i;
            n_bytes++;
        }
    }
    if (t->unk < 0) {
        tok_seterr(err, errlen, "the vocabulary has no <unk> piece");
        return -1;
    }
    if (m->byte_fallback && n_bytes != 256) {
        tok_seterr(err, errlen, "byte_fallback is on but only %d of 256 byte pieces exist", n_bytes);
        return -1;
    }
    t->byte_fallback = m->byte_fallback;
    /* bos_id() etc. of SentencePieceProcessor: the named piece, if it is a control piece */
    int *dst[3] = { &t->bos, &t->eos, &t->pad };
    const char *name[3] = { m->bos_piece, m->eos_piece, m->pad_piece };
    for (int k = 0; k < 3; k++) {
        int id = sp_piece_to_id(t, name[k], strlen(name[k]));
        *dst[k] = m->pieces[id].type == SPM_CONTROL ? id : -1;
    }
    if (m->charsmap.len) {
        /* <uint32 trie size><double array (uint32 units)><replacement strings> */
        const uint8_t *cm = m->charsmap.data;
        size_t len = m->charsmap.len;
        uint32_t tsz = len > 4 ? (uint32_t)cm[0] | (uint32_t)cm[1] << 8 | (uint32_t)cm[2] << 16 | (uint32_t)cm[3] << 24 : 0;
        if (len <= 4 || tsz >= len - 4 || tsz < 4) {
            tok_seterr(err, errlen, "normalizer_spec.precompiled_charsmap is broken");
            return -1;
        }
        t->n_trie = tsz / 4;
        t->trie = xmalloc(t->n_trie * sizeof *t->trie);
        for (size_t i = 0; i < t->n_trie; i++) {
            const uint8_t *u = cm + 4 + 4 * i;
            t->trie[i] = (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
        }
        t->repl = (const char *)cm + 4 + tsz;
        t->repl_len = len - 4 - tsz;
    }
    t->surface = xcalloc((size_t)t->n, sizeof *t->surface);
    for (int i = 0; i < t->n; i++) t->surface[i] = sp_surface(m->pieces[i].piece, m->pieces[i].len);
    return 0;
}

static uint8_t *read_file(const char *path, size_t *n, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        tok_seterr(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    uint8_t *buf = xmalloc(cap);
    for (;;) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len < cap) break;
        cap *= 2;
        buf = xrealloc(buf, cap);
    }
    if (ferror(f)) {
        tok_seterr(err, errlen, "read error: %s", strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    *n = len;
    return buf;
}

static llm_tokenizer *wrap_bpe(bpe_tokenizer *b) {
    if (!b) return NULL;
    llm_tokenizer *t = xcalloc(1, sizeof *t);
    t->bpe = b;
    t->n = bpe_vocab_size(b);
    return t;
}

llm_tokenizer *tok_load_gguf(const gguf_file *g, const char *path, char *err, size_t errlen) {
    const char *model = gguf_get_str(g, "tokenizer.ggml.model");
    if (model && !strcmp(model, "llama")) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.model is \"llama\" (SentencePiece in GGUF): not supported yet; "
               "give its tokenizer.model instead", path);
        return NULL;
    }
    if (model && strcmp(model, "gpt2") != 0) {
        tok_seterr(err, errlen, "%s: tokenizer.ggml.model \"%s\" is not supported (gpt2: byte-level BPE)", path, model);
        return NULL;
    }
    return wrap_bpe(bpe_load_gguf(g, path, err, errlen));
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

llm_tokenizer *tok_load(const char *path, char *err, size_t errlen) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* a model directory: its SentencePiece tokenizer.model, else its tokenizer.json */
        size_t pl = strlen(path);
        char *p = xmalloc(pl + 32);
        snprintf(p, pl + 32, "%s/tokenizer.model", path);
        llm_tokenizer *t = NULL;
        if (access(p, F_OK) == 0) {
            t = tok_load(p, err, errlen);
        } else {
            snprintf(p, pl + 32, "%s/tokenizer.json", path);
            if (access(p, F_OK) == 0) t = wrap_bpe(bpe_load_json(p, err, errlen));
            else tok_seterr(err, errlen, "%s: a directory without tokenizer.model or tokenizer.json", path);
        }
        free(p);
        return t;
    }
    char magic[4] = { 0 };
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(magic, 1, 4, f) : 0;
    if (f) fclose(f);
    if (got == 4 && !memcmp(magic, "GGUF", 4)) {
        gguf_file *g = gguf_open(path, err, errlen);
        if (!g) return NULL;
        llm_tokenizer *t = tok_load_gguf(g, path, err, errlen);
        gguf_close(g);
        return t;
    }
    if (ends_with(path, ".json")) return wrap_bpe(bpe_load_json(path, err, errlen));
    size_t n;
    uint8_t *buf = read_file(path, &n, err, errlen);
    if (!buf) return NULL;
    llm_tokenizer *t = xcalloc(1, sizeof *t);
    int rc = spm_parse(&t->m, buf, n, err, errlen);
    free(buf);
    if (rc < 0 || finish_init(t, err, errlen) < 0) {
        tok_free_partial(t);
        return NULL;
    }
    return t;
}

/* llama2.c's export (tokenizer.py) wrote each SentencePiece piece with U+2581 replaced by
 * ' ', BOS/EOS as "\n<s>\n" / "\n</s>\n", and scores as they were. The piece types are not
 * stored; they are recovered from the conventions of that export: "<unk>" is UNKNOWN,
 * "<s>"/"</s>" CONTROL, "<0xNN>" BYTE when all 256 exist (then byte_fallback is on). */
llm_tokenizer *tok_load_llama2c(const char *path, int vocab_size, char *err, size_t errlen) {
    size_t n;
    uint8_t *buf = read_file(path, &n, err, errlen);
    if (!buf) return NULL;
    llm_tokenizer *t = xcalloc(1, sizeof *t);
    spm_model *m = &t->m;
    spm_model_init(m);
    size_t pos = 4;
    if (n < 4) {
        tok_seterr(err, errlen, "truncated llama2.c tokenizer: %zu bytes", n);
        goto fail;
    }
    int cap = vocab_size > 0 ? vocab_size : 1024;
    m->pieces = xcalloc((size_t)cap, sizeof *m->pieces);
    int nbyte = 0;
    while (vocab_size > 0 ? m->n_pieces < vocab_size : pos < n) {
        int i = m->n_pieces;
        if (n - pos < 8) {
            tok_seterr(err, errlen, "truncated llama2.c tokenizer at token %d", i);
            goto fail;
        }
        float score;
        uint32_t len;
        memcpy(&score, buf + pos, 4);
        len = (uint32_t)buf[pos + 4] | (uint32_t)buf[pos + 5] << 8 | (uint32_t)buf[pos + 6] << 16 | (uint32_t)buf[pos + 7] << 24;
        pos += 8;
        if (len == 0 || len > n - pos) {
            tok_seterr(err, errlen, "bad length %u of token %d", len, i);
            goto fail;
        }
        if (i == cap) {
            cap *= 2;
            m->pieces = xrealloc(m->pieces, (size_t)cap * sizeof *m->pieces);
        }
        const char *s = (const char *)buf + pos;
        pos += len;
        spm_piece *p = &m->pieces[m->n_pieces++];
        memset(p, 0, sizeof *p);
        p->score = score;
        p->type = SPM_NORMAL;
        if (len == 5 && !memcmp(s, "<unk>", 5)) {
            p->type = SPM_UNKNOWN;
            m->unk_id = i;
        } else if (len == 5 && !memcmp(s, "\n<s>\n", 5)) {
            s = "<s>", len = 3;
            p->type = SPM_CONTROL;
            m->bos_id = i;
        } else if (len == 6 && !memcmp(s, "\n</s>\n", 6)) {
            s = "</s>", len = 4;
            p->type = SPM_CONTROL;
            m->eos_id = i;
        } else if (parse_byte_piece(s, len) >= 0) {
            p->type = SPM_BYTE;
            nbyte++;
        }
        /* ' ' -> U+2581 */
        sbuf sb = { 0 };
        for (uint32_t k = 0; k < len; k++) {
            if (s[k] == ' ') sb_put(&sb, WS, WS_LEN);
            else sb_put(&sb, s + k, 1);
        }
        sb_put(&sb, "", 0);
        sb.p[sb.n] = 0;
        p->piece = sb.p;
        p->len = (uint32_t)sb.n;
    }
    if (nbyte == 256) {
        m->byte_fallback = 1;
    } else {   /* incomplete byte set: they are ordinary pieces then */
        for (int i = 0; i < m->n_pieces; i++)
            if (m->pieces[i].type == SPM_BYTE) m->pieces[i].type = SPM_NORMAL;
    }
    m->model_type = SPM_BPE;
    m->vocab_size = m->n_pieces;
    m->pad_id = -1;
    free(m->norm_name);
    m->norm_name = xstrdup("identity");
    m->add_dummy_prefix = 1;
    m->remove_extra_whitespaces = 0;   /* LLaMA's setting; llama2.c's encoder never collapses spaces */
    m->escape_whitespaces = 1;
    free(buf);
    buf = NULL;
    if (finish_init(t, err, errlen) < 0) goto fail;
    return t;
fail:
    free(buf);
    tok_free_partial(t);
    return NULL;
}

int tok_save_model(const llm_tokenizer *t, const char *path, char *err, size_t errlen) {
    if (t->bpe) {
        tok_seterr(err, errlen, "%s: a byte-level BPE tokenizer (%s) cannot be written as a SentencePiece model", path,
               bpe_pre_name(t->bpe));
        return -1;
    }
    size_t n;
    uint8_t *buf = spm_serialize(&t->m, &n);
    FILE *f = fopen(path, "wb");
    if (!f) {
        tok_seterr(err, errlen, "cannot create: %s", strerror(errno));
        free(buf);
        return -1;
    }
    int ok = fwrite(buf, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    free(buf);
    if (!ok) {
        tok_seterr(err, errlen, "write error: %s", strerror(errno));
        return -1;
    }
    return 0;
}
