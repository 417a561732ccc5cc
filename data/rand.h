/* The counter-based generator the datasets and samplers draw from (internal to data/): value n of a
 * stream is rand64(key, n), which is loom__rand64 of graphs/core/op.h restated, since data/ builds
 * on the public headers only. The synthetic graphs' numpy copy (bench/peers/synthetic.py) and the
 * events' pinned checksums (tests/test_events.c) hold it to that formula. Bounded draws and
 * shuffles from it (loom__data_below, loom__data_shuffle) order the samplers' and the image source's
 * epochs. */
#ifndef LOOM_DATA_RAND_H
#define LOOM_DATA_RAND_H

#include <stdint.h>

static inline uint64_t loom__data_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static inline uint64_t loom__data_rand64(uint64_t key, uint64_t counter)
{
    return loom__data_mix64(loom__data_mix64(key + UINT64_C(0x9e3779b97f4a7c15)) ^ (counter * UINT64_C(0xd1b54a32d192ed03)));
}

/* floor(r * m / 2^64) for 0 < m < 2^63: one draw per value, with a bias of m / 2^64 at most, far
 * below anything an order of samples shows. The 128-bit product is made from 32-bit halves. */
static inline int64_t loom__data_below(uint64_t r, int64_t m)
{
    uint64_t b = (uint64_t)m, r0 = r & 0xffffffffu, r1 = r >> 32, b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t lo = r0 * b0, m0 = r0 * b1, m1 = r1 * b0;
    uint64_t mid = (lo >> 32) + (m0 & 0xffffffffu) + (m1 & 0xffffffffu);
    return (int64_t)(r1 * b1 + (m0 >> 32) + (m1 >> 32) + (mid >> 32));
}

/* Fisher-Yates: swaps v[i] with v[j], j drawn from value i of the stream keyed by key. */
static inline void loom__data_shuffle(int64_t *v, int64_t n, uint64_t key)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = loom__data_below(loom__data_rand64(key, (uint64_t)i), i + 1), t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

#endif
