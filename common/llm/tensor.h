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

/* "F32", "F16", "BF16", ... as safetensors spells them; NULL for an unknown value. */
const char *llm_dtype_name(llm_dtype t);
/* Parse a safetensors dtype name; -1 when unknown. */
int llm_dtype_parse(const char *s);
/* Bytes for n elements of type t; 0 when n does not fit the type's blocks (Q8_0 needs n % 32 == 0). */
size_t llm_dtype_bytes(llm_dtype t, uint64_t n);

uint64_t llm_tensor_numel(const llm_tensor *t);
/* Convert a F32 / F16 / BF16 / Q8_0 tensor's n elements to fp32 into out (n must equal the
 * element count). Returns 0, or -1 with a reason in err. */
int llm_tensor_to_f32(const llm_tensor *t, float *out, uint64_t n, char *err, size_t errlen);

/* Scalar conversions (round to nearest even; NaN and infinities kept). */
float llm_f16_to_f32(uint16_t h);
float llm_bf16_to_f32(uint16_t h);
uint16_t llm_f32_to_f16(float f);
uint16_t llm_f32_to_bf16(float f);

#endif
