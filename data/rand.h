/* The counter-based generator the datasets and samplers draw from (internal to data/): value n of a
 * stream is rand64(key, n), which is loom__rand64 of graphs/core/op.h restated, since data/ builds
 * on the public headers only. The synthetic graphs' numpy copy (bench/peers/synthetic.py) and the
 * events' pinned checksums (tests/test_events.c) hold it to that formula. */
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

#endif
