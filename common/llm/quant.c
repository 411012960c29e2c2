/* quant.c - GGML block formats to fp32 (see quant.h).
 *
 * Notation in the layout comments: f16 = IEEE half, little-endian; "code" = the unsigned small
 * integer stored for one value; value k of a block is out[k]. Every product and sum below is a
 * separate fp32 operation in the order GGML writes it ((d * sc) * code - (dmin * m)); the build's
 * -std=c11 keeps GCC from contracting them into fused multiply-adds, and the fixture test
 * (tests/llm/test_quant.c) checks bit equality with gguf.quants.dequantize.
 */
#include "llm/quant.h"

#include <stdint.h>

#include "llm/tensor.h"

static float f16_at(const uint8_t *p) { return llm_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Q4_0, 32 values in 18 bytes: f16 d | 16 bytes of 4-bit codes. Byte j holds value j in its low
 * nibble and value j + 16 in its high nibble. value = d * (code - 8). */
void llm_dequant_q4_0(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 32; i++, b += 18, out += 32) {
        const float d = f16_at(b);
        const uint8_t *qs = b + 2;
        for (int j = 0; j < 16; j++) {
            out[j] = d * (float)((qs[j] & 0x0f) - 8);
            out[j + 16] = d * (float)((qs[j] >> 4) - 8);
        }
    }
}

/* Q4_1, 32 values in 20 bytes: f16 d | f16 m | 16 bytes of 4-bit codes, nibbles as Q4_0.
 * value = d * code + m. */
void llm_dequant_q4_1(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 32; i++, b += 20, out += 32) {
        const float d = f16_at(b), m = f16_at(b + 2);
        const uint8_t *qs = b + 4;
        for (int j = 0; j < 16; j++) {
            float lo = d * (float)(qs[j] & 0x0f), hi = d * (float)(qs[j] >> 4);
            out[j] = lo + m;
            out[j + 16] = hi + m;
        }
    }
}

/* Q5_0, 32 values in 22 bytes: f16 d | u32 qh (little-endian) | 16 bytes of low nibbles as Q4_0.
 * Bit k of qh is bit 4 of value k's 5-bit code. value = d * (code - 16). */
void llm_dequant_q5_0(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 32; i++, b += 22, out += 32) {
        const float d = f16_at(b);
        const uint32_t qh = (uint32_t)b[2] | (uint32_t)b[3] << 8 | (uint32_t)b[4] << 16 | (uint32_t)b[5] << 24;
        const uint8_t *qs = b + 6;
        for (int j = 0; j < 16; j++) {
            int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            out[j] = d * (float)(lo - 16);
            out[j + 16] = d * (float)(hi - 16);
        }
    }
}

/* Q5_1, 32 values in 24 bytes: f16 d | f16 m | u32 qh | 16 bytes of low nibbles; codes as Q5_0.
 * value = d * code + m. */
void llm_dequant_q5_1(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 32; i++, b += 24, out += 32) {
        const float d = f16_at(b), m = f16_at(b + 2);
        const uint32_t qh = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
        const uint8_t *qs = b + 8;
        for (int j = 0; j < 16; j++) {
            int lo = (qs[j] & 0x0f) | (int)((qh >> j) & 1) << 4;
            int hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            float a = d * (float)lo, c = d * (float)hi;
            out[j] = a + m;
            out[j + 16] = c + m;
        }
    }
}

/* Q8_0, 32 values in 34 bytes: f16 d | 32 int8 codes, value k from byte k. value = d * code. */
void llm_dequant_q8_0(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 32; i++, b += 34, out += 32) {
        const float d = f16_at(b);
        for (int j = 0; j < 32; j++) out[j] = d * (float)(int8_t)b[2 + j];
    }
}

/* Q2_K, 256 values in 84 bytes: 16 bytes of scales | 64 bytes of 2-bit codes | f16 d | f16 dmin.
 * The block has 16 groups of 16 values; scale byte g (group g) holds a 4-bit scale in its low
 * nibble and a 4-bit min in its high nibble. Codes: the block's two halves of 128 values use 32
 * bytes each; value 128h + 32s + l (s, the 2-bit slot, 0..3; l < 32) is bits 2s..2s+1 of byte
 * 32h + l. value = (d * scale) * code - (dmin * min). */
void llm_dequant_q2_k(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 256; i++, b += 84, out += 256) {
        const uint8_t *sc = b, *qs = b + 16;
        const float d = f16_at(b + 80), dmin = f16_at(b + 82);
        for (int k = 0; k < 256; k++) {
            int h = k >> 7, s = (k >> 5) & 3, l = k & 31, g = k >> 4;
            float dl = d * (float)(sc[g] & 0x0f), ml = dmin * (float)(sc[g] >> 4);
            float x = dl * (float)((qs[32 * h + l] >> (2 * s)) & 3);
            out[k] = x - ml;
        }
    }
}

/* Q3_K, 256 values in 110 bytes: 32 bytes hmask | 64 bytes of 2-bit low codes | 12 bytes of
 * scales | f16 d. Low 2 bits of value 128h + 32s + l as Q2_K; its high bit is bit 4h + s of
 * hmask byte l, and it is inverted: code = low - (bit ? 0 : 4), in -4..3. Sixteen signed 6-bit
 * scales, one per group of 16 values: scale g's low 4 bits are the low nibble of byte g (g < 8)
 * or the high nibble of byte g - 8 (g >= 8); its high 2 bits are bits 2(g / 4)..2(g / 4) + 1 of
 * byte 8 + g % 4; the scale is that 6-bit number minus 32. value = (d * scale) * code. */
void llm_dequant_q3_k(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 256; i++, b += 110, out += 256) {
        const uint8_t *hm = b, *qs = b + 32, *sb = b + 96;
        const float d = f16_at(b + 108);
        float dl[16];
        for (int g = 0; g < 16; g++) {
            int lo = g < 8 ? sb[g] & 0x0f : sb[g - 8] >> 4;
            int hi = (sb[8 + g % 4] >> (2 * (g / 4))) & 3;
            dl[g] = d * (float)((lo | hi << 4) - 32);
        }
        for (int k = 0; k < 256; k++) {
            int h = k >> 7, s = (k >> 5) & 3, l = k & 31;
            int low = (qs[32 * h + l] >> (2 * s)) & 3;
            int high = (hm[l] >> (4 * h + s)) & 1;
            out[k] = dl[k >> 4] * (float)(low - (high ? 0 : 4));
        }
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K / Q5_K block, packed in 12 bytes:
 * bytes 0-3 hold scales 0-3 (low 6 bits) and the top 2 bits of scales 4-7; bytes 4-7 hold mins
 * 0-3 and the top 2 bits of mins 4-7; bytes 8-11 hold the low 4 bits of scales 4-7 (low nibble)
 * and of mins 4-7 (high nibble). */
static void k4_scale_min(const uint8_t *q, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4;
        *m = (q[j + 4] >> 4) | (q[j] >> 6) << 4;
    }
}

/* Q4_K, 256 values in 144 bytes: f16 d | f16 dmin | 12 bytes of scales and mins (k4_scale_min)
 * | 128 bytes of 4-bit codes. Eight sub-blocks of 32 values; codes come in four chunks of 32
 * bytes: chunk c holds sub-block 2c in its low nibbles and 2c + 1 in its high nibbles (value
 * 64c + l and 64c + 32 + l from byte 32c + l). value = (d * scale) * code - (dmin * min). */
void llm_dequant_q4_k(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 256; i++, b += 144, out += 256) {
        const float d = f16_at(b), dmin = f16_at(b + 2);
        const uint8_t *qs = b + 16;
        for (int c = 0; c < 4; c++) {
            int s0, m0, s1, m1;
            k4_scale_min(b + 4, 2 * c, &s0, &m0);
            k4_scale_min(b + 4, 2 * c + 1, &s1, &m1);
            float d0 = d * (float)s0, n0 = dmin * (float)m0, d1 = d * (float)s1, n1 = dmin * (float)m1;
            for (int l = 0; l < 32; l++) {
                float x0 = d0 * (float)(qs[32 * c + l] & 0x0f), x1 = d1 * (float)(qs[32 * c + l] >> 4);
                out[64 * c + l] = x0 - n0;
                out[64 * c + 32 + l] = x1 - n1;
            }
        }
    }
}

/* Q5_K, 256 values in 176 bytes: f16 d | f16 dmin | 12 bytes of scales and mins (as Q4_K) |
 * 32 bytes qh | 128 bytes of low nibbles (as Q4_K). Bit 4 of the code of value 32j + l
 * (sub-block j) is bit j of qh byte l. value = (d * scale) * code - (dmin * min). */
void llm_dequant_q5_k(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 256; i++, b += 176, out += 256) {
        const float d = f16_at(b), dmin = f16_at(b + 2);
        const uint8_t *qh = b + 16, *qs = b + 48;
        for (int c = 0; c < 4; c++) {
            int s0, m0, s1, m1;
            k4_scale_min(b + 4, 2 * c, &s0, &m0);
            k4_scale_min(b + 4, 2 * c + 1, &s1, &m1);
            float d0 = d * (float)s0, n0 = dmin * (float)m0, d1 = d * (float)s1, n1 = dmin * (float)m1;
            for (int l = 0; l < 32; l++) {
                int q0 = (qs[32 * c + l] & 0x0f) | ((qh[l] >> (2 * c)) & 1) << 4;
                int q1 = (qs[32 * c + l] >> 4) | ((qh[l] >> (2 * c + 1)) & 1) << 4;
                float x0 = d0 * (float)q0, x1 = d1 * (float)q1;
                out[64 * c + l] = x0 - n0;
                out[64 * c + 32 + l] = x1 - n1;
            }
        }
    }
}

/* Q6_K, 256 values in 210 bytes: 128 bytes ql (low 4 bits) | 64 bytes qh (high 2 bits) | 16 int8
 * scales | f16 d. Two halves of 128 values, each with 64 ql bytes and 32 qh bytes; in half h,
 * value 128h + 32s + l (s = 0..3, l < 32) takes its low 4 bits from ql byte 64h + l (s = 0, 2)
 * or 64h + 32 + l (s = 1, 3), low nibble for s < 2 and high nibble for s >= 2, and its high 2
 * bits from bits 2s..2s+1 of qh byte 32h + l. Scale k / 16 (groups of 16 values).
 * value = (d * scale) * (code - 32). */
void llm_dequant_q6_k(const void *blocks, float *out, size_t n) {
    const uint8_t *b = blocks;
    for (size_t i = 0; i < n / 256; i++, b += 210, out += 256) {
        const uint8_t *ql = b, *qh = b + 128;
        const int8_t *sc = (const int8_t *)(b + 192);
        const float d = f16_at(b + 208);
        for (int k = 0; k < 256; k++) {
            int h = k >> 7, s = (k >> 5) & 3, l = k & 31;
            uint8_t lb = ql[64 * h + 32 * (s & 1) + l];
            int low = s < 2 ? lb & 0x0f : lb >> 4;
            int high = (qh[32 * h + l] >> (2 * s)) & 3;
            float ds = d * (float)sc[k >> 4];
            out[k] = ds * (float)((low | high << 4) - 32);
        }
    }
}
