// Stable radix sorts of 32-bit (key, value) pairs by CCCL's cub, and the runs of equal keys they
// leave, for the deterministic paths of the index and sparse kernels (C++ only): scatter sorts its
// rows by target, the transposed spmm its entries by column.
// defines: loom__cuda_sort_pairs, loom__cuda_sort_scratch, loom__cuda_key_bits, loom__cuda_key_starts
#ifndef LOOM_OPS_CUDA_SORT_CUH
#define LOOM_OPS_CUDA_SORT_CUH

#include "ops/cuda/common.cuh"

#include <cub/device/device_radix_sort.cuh>

// n pairs sorted by the low `bits` bits of their keys, stably; with tmp NULL only *bytes is set,
// to the scratch the sort needs.
static inline cudaError_t loom__cuda_sort_pairs(void *tmp, size_t &bytes, const uint32_t *keys, uint32_t *keys_out,
                                                const uint32_t *vals, uint32_t *vals_out, int64_t n, int bits,
                                                cudaStream_t st)
{
    return cub::DeviceRadixSort::SortPairs(tmp, bytes, keys, keys_out, vals, vals_out, (int)n, 0, bits, st);
}

// Bytes of cub's scratch for a sort of `items` pairs on all 32 bits, for workspace queries.
static inline size_t loom__cuda_sort_scratch(int64_t items)
{
    size_t bytes = 0;
    cudaError_t e =
        loom__cuda_sort_pairs(nullptr, bytes, nullptr, nullptr, nullptr, nullptr, items, 32, (cudaStream_t)0);
    if (e != cudaSuccess) { // no device to ask: a generous guess (cub keeps double buffers and histograms)
        (void)cudaGetLastError();
        bytes = (size_t)items * 16 + ((size_t)1 << 20);
    }
    return bytes;
}

// The bits a sort needs for keys in [0, max_key], max_key >= 1.
static inline int loom__cuda_key_bits(int64_t max_key) { return 32 - __builtin_clz((unsigned)max_key); }

// off[s] = the first position of sorted (e keys in ascending order) whose key is >= s, for s in
// [0, n]: key s owns sorted positions [off[s], off[s + 1]).
template <typename P>
static __global__ void loom__cuda_key_starts(const uint32_t *__restrict__ sorted, int64_t e, P *__restrict__ off,
                                             int64_t n)
{
    for (int64_t s = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; s <= n; s += (int64_t)gridDim.x * blockDim.x) {
        int64_t lo = 0, hi = e;
        while (lo < hi) {
            const int64_t mid = (lo + hi) / 2;
            if (sorted[mid] < (uint64_t)s)
                lo = mid + 1;
            else
                hi = mid;
        }
        off[s] = (P)lo;
    }
}

#endif
