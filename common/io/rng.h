/* rng.h - the one random number generator of ITREK.
 *
 * xoshiro256** (Blackman & Vigna 2018), seeded through splitmix64 from a 64-bit seed and a
 * stream number. Every random choice in ITREK draws from an rng built from the program's
 * --seed; parallel workers use stream = worker index, so results depend only on the seed and
 * the thread count. Written here (20 lines) rather than taken from a library because the exact
 * sequence is part of the reproducibility contract and must not change with a library version.
 */
#ifndef ITREK_IO_RNG_H
#define ITREK_IO_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct { uint64_t s[4]; } rng_t;

void rng_init(rng_t *r, uint64_t seed, uint64_t stream);
uint64_t rng_u64(rng_t *r);
double rng_uniform(rng_t *r);               /* [0, 1), 53 bits */
uint64_t rng_below(rng_t *r, uint64_t n);   /* uniform in [0, n), unbiased; n > 0 */
double rng_normal(rng_t *r);                /* standard normal (Box-Muller) */
void rng_shuffle_int(rng_t *r, int32_t *a, size_t n); /* Fisher-Yates */

#endif
