/* tensor.c - element types and their conversion to fp32 (the GGML block types through quant.c). */
#include "llm/tensor.h"

#include "llm/quant.h"

#include <stdio.h>
#include <string.h>

/* size: bytes per block of `block` values (block 1 for the plain types); deq: the block
 * dequantiser of a quantised type (quant.c). */
static const struct {
    const char *name;
    size_t size;
    int block;
    void (*deq)(const void *, float *, size_t);
} dtypes[LLM_DTYPE_COUNT] = {
    [LLM_F32] = {"F32", 4, 1, NULL},     [LLM_F16] = {"F16", 2, 1, NULL},   [LLM_BF16] = {"BF16", 2, 1, NULL},
    [LLM_F64] = {"F64", 8, 1, NULL},     [LLM_I8] = {"I8", 1, 1, NULL},     [LLM_U8] = {"U8", 1, 1, NULL},
    [LLM_I16] = {"I16", 2, 1, NULL},     [LLM_I32] = {"I32", 4, 1, NULL},   [LLM_I64] = {"I64", 8, 1, NULL},
    [LLM_BOOL] = {"BOOL", 1, 1, NULL},
    [LLM_Q8_0] = {"Q8_0", 34, 32, llm_dequant_q8_0},
    [LLM_Q4_0] = {"Q4_0", 18, 32, llm_dequant_q4_0},   [LLM_Q4_1] = {"Q4_1", 20, 32, llm_dequant_q4_1},
    [LLM_Q5_0] = {"Q5_0", 22, 32, llm_dequant_q5_0},   [LLM_Q5_1] = {"Q5_1", 24, 32, llm_dequant_q5_1},
    [LLM_Q2_K] = {"Q2_K", 84, 256, llm_dequant_q2_k},  [LLM_Q3_K] = {"Q3_K", 110, 256, llm_dequant_q3_k},
    [LLM_Q4_K] = {"Q4_K", 144, 256, llm_dequant_q4_k}, [LLM_Q5_K] = {"Q5_K", 176, 256, llm_dequant_q5_k},
    [LLM_Q6_K] = {"Q6_K", 210, 256, llm_dequant_q6_k},
};

const char *llm_dtype_name(llm_dtype t) { return (unsigned)t < LLM_DTYPE_COUNT ? dtypes[t].name : NULL; }

int llm_dtype_parse(const char *s) {
    for (int i = 0; i < LLM_DTYPE_COUNT; i++)
        if (dtypes[i].block == 1 && strcmp(s, dtypes[i].name) == 0) return i;
    return -1;
}

int llm_dtype_block(llm_dtype t) { return (unsigned)t < LLM_DTYPE_COUNT ? dtypes[t].block : 0; }

size_t llm_dtype_bytes(llm_dtype t, uint64_t n) {
    if ((unsigned)t >= LLM_DTYPE_COUNT) return 0;
    uint64_t b = (uint64_t)dtypes[t].block;
    if (n % b) return 0;
    return (size_t)(n / b * dtypes[t].size);
}

uint64_t llm_tensor_numel(const llm_tensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (uint64_t)t->shape[i];
    return n;
}

static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

float llm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf / nan */
    if (exp == 0) {                                                     /* zero / subnormal */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

float llm_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t llm_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet nan */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

uint16_t llm_f32_to_f16(float f) {
    uint32_t u = f32_bits(f), sign = (u >> 16) & 0x8000, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00);      /* nan */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00);     /* overflow (>= 65520) -> inf */
    if (a < 0x38800000u) {                                      /* below 2^-14: subnormal or zero */
        float v = bits_f32(a) * 0x1p24f;                         /* in units of 2^-24 */
        uint32_t m = (uint32_t)v;
        float r = v - (float)m;
        if (r > 0.5f || (r == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t e = (a >> 23) - 112, m = a & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13), rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

int llm_tensor_to_f32(const llm_tensor *t, float *out, uint64_t n, char *err, size_t errlen) {
    if (llm_tensor_numel(t) != n) {
        snprintf(err, errlen, "tensor %s: %llu elements, expected %llu", t->name,
                 (unsigned long long)llm_tensor_numel(t), (unsigned long long)n);
        return -1;
    }
    if (t->nbytes != llm_dtype_bytes(t->dtype, n)) {
        snprintf(err, errlen, "tensor %s: %zu bytes do not hold %llu %s values", t->name, t->nbytes,
                 (unsigned long long)n, llm_dtype_name(t->dtype) ? llm_dtype_name(t->dtype) : "?");
        return -1;
    }
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case LLM_F32: memcpy(out, p, n * 4); return 0;
    case LLM_F16:
        for (uint64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = llm_f16_to_f32(h); }
        return 0;
    case LLM_BF16:
        for (uint64_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, p + 2 * i, 2); out[i] = llm_bf16_to_f32(h); }
        return 0;
    default:
        if ((unsigned)t->dtype < LLM_DTYPE_COUNT && dtypes[t->dtype].deq) {
            dtypes[t->dtype].deq(p, out, (size_t)n);
            return 0;
        }
        snprintf(err, errlen, "tensor %s: element type %s cannot be read as floating point", t->name,
                 llm_dtype_name(t->dtype) ? llm_dtype_name(t->dtype) : "?");
        return -1;
    }
}
