/* spm_proto.h - a minimal reader/writer for SentencePiece's ModelProto (tokenizer.model).
 *
 * Written by hand on purpose: Debian ships no C protobuf library with this schema, and
 * pulling in protobuf-c plus a generated file for one message type is not worth the
 * dependency. Only the fields that change how text is encoded or decoded are parsed;
 * the trainer/normalizer/denormalizer sub-messages are also kept as raw bytes so that a
 * model read from disk can be written back without losing fields this reader ignores.
 *
 * Schema (sentencepiece_model.proto, proto2), the parts used here:
 *   ModelProto      1 pieces (repeated SentencePiece), 2 trainer_spec, 3 normalizer_spec,
 *                   5 denormalizer_spec
 *   SentencePiece   1 piece (string), 2 score (float), 3 type (enum, default NORMAL)
 *   TrainerSpec     3 model_type (default UNIGRAM), 4 vocab_size, 24 treat_whitespace_as_suffix,
 *                   35 byte_fallback, 40..43 unk/bos/eos/pad_id, 44 unk_surface,
 *                   45..48 unk/bos/eos/pad_piece
 *   NormalizerSpec  1 name, 2 precompiled_charsmap, 3 add_dummy_prefix (default true),
 *                   4 remove_extra_whitespaces (default true), 5 escape_whitespaces (default true)
 *
 * The parser never reads outside the buffer: truncated or garbage input gives an error.
 */
#ifndef ITREK_LLM_SPM_PROTO_H
#define ITREK_LLM_SPM_PROTO_H

#include <stddef.h>
#include <stdint.h>

enum { SPM_NORMAL = 1, SPM_UNKNOWN = 2, SPM_CONTROL = 3, SPM_USER_DEFINED = 4,
       SPM_UNUSED = 5, SPM_BYTE = 6 };
enum { SPM_UNIGRAM = 1, SPM_BPE = 2, SPM_WORD = 3, SPM_CHAR = 4 };

typedef struct {
    char *piece;        /* NUL-terminated copy (pieces never contain NUL in practice) */
    uint32_t len;
    float score;
    int type;           /* SPM_NORMAL ... */
} spm_piece;

typedef struct {          /* a borrowed or owned byte string */
    uint8_t *data;
    size_t len;
} spm_bytes;

typedef struct {
    spm_piece *pieces;
    int n_pieces;
    /* trainer_spec */
    int model_type;
    int vocab_size;
    int byte_fallback;
    int treat_whitespace_as_suffix;
    int unk_id, bos_id, eos_id, pad_id;
    char *unk_piece, *bos_piece, *eos_piece, *pad_piece; /* never NULL after parse */
    char *unk_surface;                                   /* never NULL after parse */
    /* normalizer_spec */
    char *norm_name;                                     /* never NULL after parse */
    spm_bytes charsmap;                                  /* empty: identity */
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    /* raw sub-messages (data NULL when absent); written back verbatim by spm_serialize */
    spm_bytes raw_trainer, raw_normalizer, raw_denormalizer;
} spm_model;

/* Fill m with proto2 defaults (no pieces; every string set). */
void spm_model_init(spm_model *m);
/* Parse a serialized ModelProto. 0 on success; -1 with a one-line reason in err.
 * On failure m is left freed (spm_model_free is still safe to call). */
int spm_parse(spm_model *m, const uint8_t *buf, size_t n, char *err, size_t errlen);
/* Serialize. Sub-messages with raw bytes are copied verbatim, the others are synthesised
 * from the fields above. Returns a malloc'd buffer and its length in *len. */
uint8_t *spm_serialize(const spm_model *m, size_t *len);
void spm_model_free(spm_model *m);

#endif
