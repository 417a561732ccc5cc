// The row reductions the softmax kernels share (C++ only): softmax.cu (log_softmax and its
// gradient) and softmax_ce.cu (the cross entropy and its gradient) read rows through them.
//
// A row is the last axis. Short rows (the usual case: 7 or 16 classes) take a group of LANES
// threads per row, LANES the power of two that covers the row, up to a warp; rows of up to 1024
// (f32) or 512 (f64) elements take a warp each, every lane keeping its ELEMS elements in registers
// so that the row is read once. Longer rows take a block each and are read again per pass (max,
// sum, write). Reductions are shuffle and shared-memory trees of a fixed shape, so results are
// bitwise repeatable; no atomics but the error record's.
//
// Shuffles use the full warp mask, so every lane of a warp runs every reduction: the row loop is
// uniform per warp (it steps by rows of whole warps), and lanes whose row is past the end, masked
// out or labelled out of range load neutral values and discard their results.
// defines, in an unnamed namespace (each of the two files has its own): kFull, kRowThreads,
//          kBlockThreads, exp_, log_, neg_inf, max_, group_max, group_sum, block_reduce, lse_of,
//          row_lse, block_lse, rowmap, warp_max_c, by_row_length, row_grid, block_grid
#ifndef LOOM_OPS_CUDA_SOFTMAX_CUH
#define LOOM_OPS_CUDA_SOFTMAX_CUH

#include "ops/cuda/common.cuh"

#include <math.h>

namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kRowThreads = 256;   // blocks of the group-per-row kernels
constexpr int kBlockThreads = 256; // blocks of the block-per-row kernels

// ---- on the device ------------------------------------------------------------------------------

__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }
__device__ __forceinline__ float log_(float v) { return logf(v); }
__device__ __forceinline__ double log_(double v) { return log(v); }

template <typename T> __device__ __forceinline__ T neg_inf() { return -(T)INFINITY; }
// As the CPU's max: a NaN never replaces the running max (the sum then turns NaN anyway).
template <typename T> __device__ __forceinline__ T max_(T a, T b) { return b > a ? b : a; }

// Butterfly reductions over aligned groups of LANES lanes; every lane gets the same result. Every
// lane of the warp runs them (kFull), shuffling at the warp's width.
template <int LANES, typename T> __device__ __forceinline__ T group_max(T v)
{
    return loom__cuda_group_reduce<LANES>(v, kFull, [](T a, T b) { return max_(a, b); }, 32);
}
template <int LANES, typename T> __device__ __forceinline__ T group_sum(T v)
{
    return loom__cuda_group_reduce<LANES>(v, kFull, [](T a, T b) { return a + b; }, 32);
}

// A block-wide reduction (BLOCK a multiple of 32, at most 1024) returned to every thread; smem
// holds 33 values. Called by every thread of the block.
template <int BLOCK, bool MAX, typename T> __device__ T block_reduce(T v, T *smem, T identity)
{
    constexpr int NW = BLOCK / 32;
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    v = MAX ? group_max<32>(v) : group_sum<32>(v);
    if (l == 0)
        smem[w] = v;
    __syncthreads();
    if (w == 0) {
        T u = l < NW ? smem[l] : identity;
        u = MAX ? group_max<32>(u) : group_sum<32>(u);
        if (l == 0)
            smem[32] = u;
    }
    __syncthreads();
    const T r = smem[32];
    __syncthreads(); // smem is free for the next call
    return r;
}

// log(sum(exp(row))) from a lane's share of a max and of sum(exp(v - max)): the CPU's rule, the
// max itself when it is infinite. s is computed whatever mx is (NaN when infinite, then unused),
// so that every lane runs the same shuffles.
template <typename T> __device__ __forceinline__ T lse_of(T mx, T s) { return isinf(mx) ? mx : mx + log_(s); }

// logsumexp of a row of c values xr[0 .. c) held by a group of LANES lanes, lane l keeping values
// l, l + LANES, ... in v[0 .. ELEMS) (-inf past c, and everywhere when the row is not read).
template <int LANES, int ELEMS, typename T>
__device__ __forceinline__ T row_lse(T (&v)[ELEMS], const T *xr, bool read, int lane, int c)
{
    T mx = neg_inf<T>();
#pragma unroll
    for (int e = 0; e < ELEMS; e++) {
        const int j = lane + e * LANES;
        v[e] = read && j < c ? xr[j] : neg_inf<T>();
        mx = max_(mx, v[e]);
    }
    mx = group_max<LANES>(mx);
    T s = 0;
#pragma unroll
    for (int e = 0; e < ELEMS; e++)
        if (lane + e * LANES < c)
            s += exp_(v[e] - mx);
    return lse_of(mx, group_sum<LANES>(s));
}

// logsumexp of a row xr[0 .. c) read by a block of BLOCK threads (twice: for the max, then the
// sum); called by every thread of the block.
template <int BLOCK, typename T> __device__ __forceinline__ T block_lse(const T *xr, int64_t c, T *smem)
{
    T mx = neg_inf<T>();
    for (int64_t j = threadIdx.x; j < c; j += BLOCK)
        mx = max_(mx, xr[j]);
    mx = block_reduce<BLOCK, true>(mx, smem, neg_inf<T>());
    T s = 0;
    for (int64_t j = threadIdx.x; j < c; j += BLOCK)
        s += exp_(xr[j] - mx);
    return lse_of(mx, block_reduce<BLOCK, false>(s, smem, T(0)));
}

// Indexing of the group-per-row kernels: which row of the warp's GROUPS rows a lane works on.
template <int LANES> struct rowmap {
    static constexpr int GROUPS = 32 / LANES;
    int lane, group;
    int64_t first, step;
    __device__ rowmap()
    {
        lane = threadIdx.x & (LANES - 1);
        group = (threadIdx.x & 31) / LANES;
        const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
        first = warp * GROUPS;
        step = (((int64_t)gridDim.x * blockDim.x) >> 5) * GROUPS;
    }
};

// ---- on the host --------------------------------------------------------------------------------

// The longest row a warp keeps in registers: 32 lanes of 32 floats or 16 doubles.
template <typename T> constexpr int64_t warp_max_c() { return 32 * 32 * 4 / (int64_t)sizeof(T); }

// Calls f.template go<LANES, ELEMS>() for a row of c <= warp_max_c<T>() elements: the fewest lanes
// (a power of two) that cover the row, then a warp and the fewest elements a lane (a power of two,
// up to warp_max_c's) that do.
template <typename T, typename F> static loom_status by_row_length(int64_t c, const F &f)
{
    if (c <= 32)
        return loom__cuda_with_pow2<1, 32>(c, [&](auto lanes) { return f.template go<decltype(lanes)::value, 1>(); });
    return loom__cuda_with_pow2<2, warp_max_c<T>() / 32>(
        loom__cuda_ceil_div(c, 32), [&](auto elems) { return f.template go<32, decltype(elems)::value>(); });
}

// Blocks of kRowThreads for rows handled LANES lanes each, at most cap.
template <int LANES> static unsigned row_grid(int64_t rows, unsigned cap = 65535u * 4u)
{
    return loom__cuda_grid(rows, (kRowThreads / 32) * (32 / LANES), cap);
}

// A block per row, at most cap.
static unsigned block_grid(int64_t rows, unsigned cap = 65535u * 4u) { return loom__cuda_grid(rows, 1, cap); }

} // namespace

#endif
