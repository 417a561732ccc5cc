// The flat elementwise maps of the binary, unary, dropout and optimizer kernels (C++ only): a
// grid-stride loop over contiguous values in 16-byte vector accesses when every pointer is
// aligned for them (one value an access otherwise), then the tail past the last whole vector, one
// value a thread.
//
// Each kernel writes its two loops itself over a loom__cuda_flat partition: with the loops in the
// kernel's own body, nvcc unrolls them as it always has (a loop in a helper taking the body as a
// lambda compiles to other code).
// defines: loom__cuda_vec, loom__cuda_vload, loom__cuda_vstore, loom__cuda_flat,
//          loom__cuda_map_kernel, loom__cuda_launch_flat, loom__cuda_map
#ifndef LOOM_OPS_CUDA_FLAT_CUH
#define LOOM_OPS_CUDA_FLAT_CUH

#include "ops/cuda/common.cuh"

// V elements in one aligned access (16 bytes: 4 floats, 2 doubles; V bytes of a mask).
template <typename T, int V> struct alignas(sizeof(T) * V) loom__cuda_vec {
    T v[V];
};

// Vector k of p: elements k V to k V + V - 1, p aligned for the vector.
template <int V, typename T>
static __device__ __forceinline__ loom__cuda_vec<T, V> loom__cuda_vload(const T *p, int64_t k)
{
    return reinterpret_cast<const loom__cuda_vec<T, V> *>(p)[k];
}
template <int V, typename T>
static __device__ __forceinline__ void loom__cuda_vstore(T *p, int64_t k, const loom__cuda_vec<T, V> &v)
{
    reinterpret_cast<loom__cuda_vec<T, V> *>(p)[k] = v;
}

// This thread's share of a flat map over n values in vectors of V:
//     for (int64_t k = r.first; k < r.nv; k += r.stride) ... vector k ...
//     for (int64_t i = r.tail(); i < n; i += r.stride) ... value i ...
template <int V> struct loom__cuda_flat {
    int64_t stride, first, nv;
    __device__ __forceinline__ explicit loom__cuda_flat(int64_t n)
    {
        stride = (int64_t)gridDim.x * blockDim.x;
        first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
        nv = n / V;
    }
    // This thread's first value past the whole vectors.
    __device__ __forceinline__ int64_t tail() const { return nv * V + first; }
};

// y = f(x, p) elementwise (p the op's parameter, rounded to T by the launcher).
template <typename T, int V, typename F>
static __global__ void loom__cuda_map_kernel(T *y, const T *x, int64_t n, T p, F f)
{
    const loom__cuda_flat<V> r(n);
    for (int64_t k = r.first; k < r.nv; k += r.stride) {
        loom__cuda_vec<T, V> v = loom__cuda_vload<V>(x, k);
#pragma unroll
        for (int j = 0; j < V; j++)
            v.v[j] = f(v.v[j], p);
        loom__cuda_vstore<V>(y, k, v);
    }
    for (int64_t i = r.tail(); i < n; i += r.stride)
        y[i] = f(x[i], p);
}

// Launches a flat map of n values of T as launch(V, grid): V (a std::integral_constant) is the
// 16 / sizeof(T) values of one 16-byte access when vec (every pointer is aligned for it), else 1;
// grid is the blocks of `threads` for the map's ceil(n / V) vectors.
template <typename T, typename L> static inline void loom__cuda_launch_flat(int64_t n, bool vec, int threads, L launch)
{
    constexpr int V = 16 / sizeof(T);
    if (vec)
        launch(std::integral_constant<int, V>(), loom__cuda_grid(n / V + (n % V != 0), threads));
    else
        launch(std::integral_constant<int, 1>(), loom__cuda_grid(n, threads));
}

// out = f(x, p) elementwise for out's float dtype, in blocks of `threads`: loom__cuda_map_kernel on
// out's n values (x has as many), p rounded to the dtype first, as on the CPU.
template <typename F>
static inline loom_status loom__cuda_map(const loom__kctx *ctx, loom__value *out, const loom__value *x, double p, F f,
                                         int threads, const char *what)
{
    const int64_t n = loom__numel(out);
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        T *yd = (T *)out->data;
        const T *xd = (const T *)x->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        const bool vec = loom__cuda_aligned(yd, 16) && loom__cuda_aligned(xd, 16);
        loom__cuda_launch_flat<T>(n, vec, threads, [&](auto v, unsigned grid) {
            loom__cuda_map_kernel<T, decltype(v)::value><<<grid, threads, 0, st>>>(yd, xd, n, (T)p, f);
        });
        LOOM__CUDA_CHECK_LAUNCH(ctx, what);
        return LOOM_OK;
    });
}

#endif
