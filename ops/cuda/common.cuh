// Shared by the CUDA kernels (C++ only): launch checks, grid sizes, dtype, index-width and
// vector-width dispatch, workspace carving, async memsets and copies, group shuffles, the device
// error record. Each .cu file of ops/cuda holds a "kernels" section and a "launchers" section;
// launchers have the C signature of ops/cuda/cuda.h. Family headers beside it: flat.cuh (the
// flat elementwise maps), runs.cuh (strided walks over merged dims), sort.cuh (radix sorts),
// softmax.cuh (the softmax kernels' row reductions).
// defines: LOOM__CUDA_CHECK_LAUNCH, loom__cuda_stream, loom__cuda_grid, loom__cuda_ceil_div,
//          loom__cuda_float_dispatch, loom__cuda_with_index, loom__cuda_unit_of,
//          loom__cuda_with_unit, loom__cuda_pow2_at_least, loom__cuda_with_pow2,
//          loom__cuda_aligned, loom__cuda_dense_numel, loom__cuda_carver,
//          loom__cuda_workspace, loom__cuda_memset, loom__cuda_copy, loom__cuda_group_mask,
//          loom__cuda_group_reduce, loom__cuda_record_err
#ifndef LOOM_OPS_CUDA_COMMON_CUH
#define LOOM_OPS_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include <type_traits>

#include "graphs/core/op.h" // loom__kfail
#include "ops/cuda/cuda.h"

static inline cudaStream_t loom__cuda_stream(const loom__kctx *ctx) { return (cudaStream_t)ctx->cuda->stream; }

// After a launch: LOOM_ERR_RUNTIME naming what failed, or nothing.
#define LOOM__CUDA_CHECK_LAUNCH(ctx, what)                                                              \
    do {                                                                                                \
        cudaError_t e_ = cudaGetLastError();                                                            \
        if (e_ != cudaSuccess)                                                                          \
            return loom__kfail((ctx), LOOM_ERR_RUNTIME, "%s: %s", (what), cudaGetErrorString(e_));       \
    } while (0)

// ---- grids ----------------------------------------------------------------------------------------

// Blocks of `threads` for n elements of a grid-stride loop, at most `cap` (enough to fill the GPU).
static inline unsigned loom__cuda_grid(int64_t n, int threads, unsigned cap = 65535u * 4u)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1)
        b = 1;
    return (unsigned)(b > (int64_t)cap ? cap : b);
}

static inline int64_t loom__cuda_ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// ---- dispatch: dtype, index width, unit width, powers of two ------------------------------------

// Calls f((float)0) or f((double)0) for a float dtype; LOOM_ERR_DTYPE (with a message) otherwise.
template <typename F> static inline loom_status loom__cuda_float_dispatch(loom_dtype dt, const loom__kctx *ctx, F f)
{
    if (dt == LOOM_F32)
        return f(float(0));
    if (dt == LOOM_F64)
        return f(double(0));
    return loom__kfail(ctx, LOOM_ERR_DTYPE, "no CUDA kernel for %s", loom_dtype_name(dt));
}

// Calls f(uint32_t) when every index below n fits 31 bits (cheaper division, and a chunk's end past
// the last term cannot wrap), f(uint64_t) otherwise.
template <typename F> static inline loom_status loom__cuda_with_index(int64_t n, F f)
{
    if (n < (int64_t)INT32_MAX)
        return f(uint32_t(0));
    return f(uint64_t(0));
}

// The widest unit (16, 8, 4, 2 or 1 bytes) dividing every byte count and address OR-ed into bits.
static inline int loom__cuda_unit_of(uint64_t bits)
{
    int u = 16;
    while (u > 1 && (bits & (uint64_t)(u - 1)))
        u /= 2;
    return u;
}

// Calls f(U()) with U an unsigned type of u bytes.
template <typename F> static inline loom_status loom__cuda_with_unit(int u, F f)
{
    switch (u) {
    case 16: return f(uint4());
    case 8: return f(uint2());
    case 4: return f(uint32_t());
    case 2: return f(uint16_t());
    default: return f(uint8_t());
    }
}

// The least power of two >= v, at most cap.
static inline int64_t loom__cuda_pow2_at_least(int64_t v, int64_t cap)
{
    int64_t p = 1;
    while (p < v && p < cap)
        p *= 2;
    return p;
}

// Calls f(std::integral_constant<int, P>()) with P the least power of two >= v, kept within
// [LO, HI] (both powers of two): a count known at run time (lanes, elements per lane) as a
// template argument.
template <int LO, int HI, typename F> static inline auto loom__cuda_with_pow2(int64_t v, F f)
{
    if constexpr (LO >= HI) {
        return f(std::integral_constant<int, HI>());
    } else {
        if (v <= LO)
            return f(std::integral_constant<int, LO>());
        return loom__cuda_with_pow2<2 * LO, HI>(v, f);
    }
}

// ---- operands -------------------------------------------------------------------------------------

// p is a multiple of a bytes (a a power of two).
static __host__ __device__ __forceinline__ bool loom__cuda_aligned(const void *p, size_t a)
{
    return ((uintptr_t)p & (a - 1)) == 0;
}

// The product of v's dims (loom__numel counts a CSR value's entries instead).
static inline int64_t loom__cuda_dense_numel(const loom__value *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->ndim; i++)
        n *= v->shape[i];
    return n;
}

// ---- the workspace, memsets and copies ------------------------------------------------------------

// Carves aligned arrays off the front of the workspace; NULL once it runs out.
struct loom__cuda_carver {
    char *p;
    size_t left;
    template <typename X> X *take(int64_t n)
    {
        const size_t pad = (size_t)(-(uintptr_t)p & 255), bytes = (size_t)n * sizeof(X);
        if (!p || pad + bytes > left)
            return nullptr;
        X *r = (X *)(p + pad);
        p += pad + bytes;
        left -= pad + bytes;
        return r;
    }
};

// A carver over the kernel's whole workspace (none when there is none).
static inline loom__cuda_carver loom__cuda_workspace(const loom__kctx *ctx)
{
    return loom__cuda_carver{(char *)ctx->cuda->workspace, ctx->cuda->workspace ? ctx->cuda->workspace_bytes : 0};
}

// n bytes of p set to v on the kernel's stream; LOOM_ERR_RUNTIME naming what on failure.
static inline loom_status loom__cuda_memset(const loom__kctx *ctx, void *p, int v, size_t n, const char *what)
{
    if (!n)
        return LOOM_OK;
    cudaError_t e = cudaMemsetAsync(p, v, n, loom__cuda_stream(ctx));
    if (e != cudaSuccess)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: cudaMemsetAsync: %s", what, cudaGetErrorString(e));
    return LOOM_OK;
}

// n bytes from src to dst (device memory, nothing when they are one) on the kernel's stream.
static inline loom_status loom__cuda_copy(const loom__kctx *ctx, void *dst, const void *src, size_t n, const char *what)
{
    if (!n || dst == src)
        return LOOM_OK;
    cudaError_t e = cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, loom__cuda_stream(ctx));
    if (e != cudaSuccess)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: cudaMemcpyAsync: %s", what, cudaGetErrorString(e));
    return LOOM_OK;
}

// ---- device side ----------------------------------------------------------------------------------

// The lanes of this thread's group of G (groups never straddle a warp: G divides 32).
template <int G> static __device__ __forceinline__ unsigned loom__cuda_group_mask()
{
    return G == 32 ? 0xffffffffu : ((1u << (G % 32)) - 1) << (threadIdx.x % 32 / G * G);
}

// v = op(v, the value of lane ^ off) for off = G / 2, ..., 1: a butterfly over aligned groups of G
// lanes, so every lane of a group gets the same result, reduced in a fixed order. mask names the
// lanes that run it (at least the group's); width is the shuffle's (G, or a multiple of G up to
// 32: the lanes read are the same, since lane ^ off never leaves the group).
template <int G, typename T, typename Op>
static __device__ __forceinline__ T loom__cuda_group_reduce(T v, unsigned mask, Op op, int width = G)
{
#pragma unroll
    for (int off = G / 2; off > 0; off /= 2)
        v = op(v, __shfl_xor_sync(mask, v, off, width));
    return v;
}

// Records the first device-side failure; later ones are dropped.
static __device__ __forceinline__ void loom__cuda_record_err(loom__cuda_err *e, int code, int tag, long long value,
                                                             long long bound)
{
    if (e && atomicCAS(&e->code, 0, code) == 0) {
        e->tag = tag;
        e->value = value;
        e->bound = bound;
    }
}

#endif
