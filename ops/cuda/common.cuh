// Shared by the CUDA kernels (C++ only): launch checks, grid sizes, dtype dispatch, the device
// error record. Each .cu file of ops/cuda holds a "kernels" section and a "launchers" section;
// launchers have the C signature of ops/cuda/cuda.h.
// defines: LOOM__CUDA_CHECK_LAUNCH, loom__cuda_stream, loom__cuda_grid, loom__cuda_float_dispatch,
//          loom__cuda_record_err
#ifndef LOOM_OPS_CUDA_COMMON_CUH
#define LOOM_OPS_CUDA_COMMON_CUH

#include <cuda_runtime.h>
#include <stdint.h>

#include "ops/cpu/cpu.h" // loom__kfail
#include "ops/cuda/cuda.h"

static inline cudaStream_t loom__cuda_stream(const loom__kctx *ctx) { return (cudaStream_t)ctx->cuda->stream; }

// After a launch: LOOM_ERR_RUNTIME naming what failed, or nothing.
#define LOOM__CUDA_CHECK_LAUNCH(ctx, what)                                                              \
    do {                                                                                                \
        cudaError_t e_ = cudaGetLastError();                                                            \
        if (e_ != cudaSuccess)                                                                          \
            return loom__kfail((ctx), LOOM_ERR_RUNTIME, "%s: %s", (what), cudaGetErrorString(e_));       \
    } while (0)

// Blocks of `threads` for n elements of a grid-stride loop, at most `cap` (enough to fill the GPU).
static inline unsigned loom__cuda_grid(int64_t n, int threads, unsigned cap = 65535u * 4u)
{
    int64_t b = (n + threads - 1) / threads;
    if (b < 1)
        b = 1;
    return (unsigned)(b > (int64_t)cap ? cap : b);
}

// Calls f((float)0) or f((double)0) for a float dtype; LOOM_ERR_DTYPE (with a message) otherwise.
template <typename F> static inline loom_status loom__cuda_float_dispatch(loom_dtype dt, const loom__kctx *ctx, F f)
{
    if (dt == LOOM_F32)
        return f(float(0));
    if (dt == LOOM_F64)
        return f(double(0));
    return loom__kfail(ctx, LOOM_ERR_DTYPE, "no CUDA kernel for %s", loom_dtype_name(dt));
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
