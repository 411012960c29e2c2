/* vexp.h - a vectorisable expf for the CPU kernels (backend_cpu.c, train.c). Internal. */
#ifndef ITREK_LLM_VEXP_H
#define ITREK_LLM_VEXP_H

#include <stdint.h>

/* exp(x) without a library call, so that loops over it vectorise: Cephes' expf (range
 * reduction by ln 2 in two parts, degree-6 polynomial, 2^n through the exponent bits), within
 * 2 ulp of expf; x is clamped to [-87.3, 88] (exp(-87.3) ~ 1e-38 stands for 0). */
static inline float vexpf(float x) {
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.0f ? 88.0f : x;
    float t = x * 1.44269504088896341f;
    int n = (int)(t + (t < 0 ? -0.5f : 0.5f));
    float fn = (float)n, r = x - fn * 0.693359375f + fn * 2.12194440e-4f, z = r * r;
    float y = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
               1.6666665459e-1f) * r + 5.0000001201e-1f;
    y = y * z + r + 1.0f;
    union { int32_t i; float f; } b = {.i = (int32_t)((uint32_t)(n + 127) << 23)};
    return y * b.f;
}

#endif
