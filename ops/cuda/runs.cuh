// Strided walks over merged dims on the device, for the reduce and shape kernels: the runs of
// ops/runs.h (built on the host, passed by value), and a flat index's offset through them.
// defines: loom__cuda_run_off
#ifndef LOOM_OPS_CUDA_RUNS_CUH
#define LOOM_OPS_CUDA_RUNS_CUH

#include "ops/cuda/common.cuh"
#include "ops/shared/runs.h"

// Offset of flat index i (row-major over r's sizes) through r's strides.
template <typename I> static __device__ __forceinline__ I loom__cuda_run_off(const loom__runs &r, I i)
{
    I off = 0;
    for (int d = r.nd - 1; d > 0; d--) {
        const I n = (I)r.n[d];
        off += (i % n) * (I)r.s[d];
        i /= n;
    }
    if (r.nd > 0)
        off += i * (I)r.s[0];
    return off;
}

#endif
