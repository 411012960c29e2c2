/* tensor.h - the tensor description shared by the weight-file formats (safetensors, GGUF)
 * and the element-type conversions to fp32.
 *
 * A tensor here is a view: a name, an element type, a row-major shape (outermost dimension
 * first, as PyTorch and safetensors write it) and a pointer to its bytes, which usually lie
 * in a memory-mapped file. GGUF lists dimensions innermost first; its reader reverses them so
 * that every llm_tensor reads the same way.
 */
#ifndef ITREK_LLM_TENSOR_H
#define ITREK_LLM_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define LLM_MAX_DIMS 8

typedef enum {
    LLM_F32 = 0,
    LLM_F16,
    LLM_BF16,
    LLM_F64,
    LLM_I8,
    LLM_U8,
    LLM_I16,
    LLM_I32,
    LLM_I64,
    LLM_BOOL,
    LLM_Q8_0, /* GGUF: blocks of 32 values, an f16 scale then 32 int8 (34 bytes) */
    /* GGUF (GGML) block-quantised types, dequantised by quant.c; layouts in quant.h / quant.c.
     * Like Q8_0 they are never read from or written to safetensors. */
    LLM_Q4_0, /* 32 values, 18 bytes */
    LLM_Q4_1, /* 32 values, 20 bytes */
    LLM_Q5_0, /* 32 values, 22 bytes */
    LLM_Q5_1, /* 32 values, 24 bytes */
    LLM_Q2_K, /* 256 values, 84 bytes */
    LLM_Q3_K, /* 256 values, 110 bytes */
    LLM_Q4_K, /* 256 values, 144 bytes */
    LLM_Q5_K, /* 256 values, 176 bytes */
    LLM_Q6_K, /* 256 values, 210 bytes */
    LLM_DTYPE_COUNT
} llm_dtype;

typedef struct {
    const char *name;
    llm_dtype dtype;
    int ndim;
    int64_t shape[LLM_MAX_DIMS]; /* row-major, outermost first */
    const void *data;
    size_t nbytes;
} llm_tensor;

/* "F32", "F16", "BF16", ... as safetensors spells them, "Q4_0" ... "Q6_K" as GGML does; NULL
 * for an unknown value. */
const char *llm_dtype_name(llm_dtype t);
/* Parse a safetensors dtype name; -1 when unknown (the GGUF-only block types are not parsed). */
int llm_dtype_parse(const char *s);
/* Values per block: 1 for the plain types, 32 for Q4_0 ... Q8_0, 256 for the K types; 0 for an
 * unknown value. */
int llm_dtype_block(llm_dtype t);
/* Bytes for n elements of type t; 0 when n is not a multiple of the type's block (e.g. Q8_0 needs
 * n % 32 == 0, Q4_K n % 256 == 0) or t is unknown. */
size_t llm_dtype_bytes(llm_dtype t, uint64_t n);

uint64_t llm_tensor_numel(const llm_tensor *t);
/* Convert a F32 / F16 / BF16 tensor's, or a block-quantised one's (Q4_0 ... Q6_K, exactly as
 * GGML dequantises them), n elements to fp32 into out (n must equal the element count).
 * Returns 0, or -1 with a reason in err. */
int llm_tensor_to_f32(const llm_tensor *t, float *out, uint64_t n, char *err, size_t errlen);

/* Scalar conversions (round to nearest even; NaN and infinities kept). */
float llm_f16_to_f32(uint16_t h);
float llm_bf16_to_f32(uint16_t h);
uint16_t llm_f32_to_f16(float f);
uint16_t llm_f32_to_bf16(float f);

#endif
