// Strided walks over merged dims, shared by the reduce and shape kernels (C++ only): the CPU's
// loom__runs of ops/cpu/shape.h, restated since that header is C and stays out of .cu files.
// Runs are sizes n (outermost first) and element strides s; size-1 dims are dropped and a dim is
// merged into the run before it when the two walk as one.
// defines: loom__cuda_runs, loom__cuda_runs_push, loom__cuda_run_off
#ifndef LOOM_OPS_CUDA_RUNS_CUH
#define LOOM_OPS_CUDA_RUNS_CUH

#include "ops/cuda/common.cuh"

// A walk over merged dims, outermost first; passed to kernels by value.
struct loom__cuda_runs {
    int nd;
    int64_t n[LOOM_MAX_DIMS], s[LOOM_MAX_DIMS];
};

// Appends the next-inner dim to r, merging it into the run before when they walk as one.
static inline void loom__cuda_runs_push(loom__cuda_runs *r, int64_t n, int64_t s)
{
    if (n == 1)
        return;
    if (r->nd > 0 && r->s[r->nd - 1] == s * n) {
        r->n[r->nd - 1] *= n;
        r->s[r->nd - 1] = s;
        return;
    }
    r->n[r->nd] = n;
    r->s[r->nd] = s;
    r->nd++;
}

// Offset of flat index i (row-major over r's sizes) through r's strides.
template <typename I> static __device__ __forceinline__ I loom__cuda_run_off(const loom__cuda_runs &r, I i)
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
