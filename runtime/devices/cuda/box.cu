// Boxes of dense tensors on the device: a box of one row-major tensor copied into a box of another
// (the slices, packs and unpacks of the boxing between GPUs, runtime/comm/nccl/).
// defines: loom__cuda_box_copy
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/devices/cuda/cuda_rt.h"

// ---- kernels --------------------------------------------------------------------------------------

struct box_geo {
    int nd;
    int64_t ext[LOOM_MAX_DIMS];
    int64_t dstride[LOOM_MAX_DIMS], sstride[LOOM_MAX_DIMS]; // elements, per dim
    int64_t dbase, sbase;                                   // the boxes' first elements
};

// One element per thread, a grid-stride loop over the box's elements in row-major order.
template <typename T>
static __global__ void box_copy(T *dst, const T *src, box_geo g, int64_t n)
{
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        int64_t rest = e, di = g.dbase, si = g.sbase;
        for (int i = g.nd - 1; i >= 0; i--) {
            int64_t k = rest % g.ext[i];
            rest /= g.ext[i];
            di += k * g.dstride[i];
            si += k * g.sstride[i];
        }
        dst[di] = src[si];
    }
}

// ---- launchers ------------------------------------------------------------------------------------

extern "C" loom_status loom__cuda_box_copy(void *dst, const int64_t *dshape, const int64_t *dat, const void *src,
                                           const int64_t *sshape, const int64_t *sat, const int64_t *ext, int nd, size_t es,
                                           void *stream, char *msg, size_t len)
{
    box_geo g = {};
    g.nd = nd;
    int64_t n = 1, ds = 1, ss = 1;
    for (int i = nd - 1; i >= 0; i--) {
        g.ext[i] = ext[i];
        g.dstride[i] = ds, g.sstride[i] = ss;
        g.dbase += dat[i] * ds, g.sbase += sat[i] * ss;
        ds *= dshape[i], ss *= sshape[i];
        n *= ext[i] > 0 ? ext[i] : 0;
    }
    if (n == 0)
        return LOOM_OK;
    const int threads = 256;
    int64_t blocks = (n + threads - 1) / threads;
    unsigned grid = (unsigned)(blocks < 65535 * 4 ? blocks : 65535 * 4);
    cudaStream_t s = (cudaStream_t)stream;
    switch (es) {
    case 1:
        box_copy<<<grid, threads, 0, s>>>((uint8_t *)dst, (const uint8_t *)src, g, n);
        break;
    case 4:
        box_copy<<<grid, threads, 0, s>>>((uint32_t *)dst, (const uint32_t *)src, g, n);
        break;
    case 8:
        box_copy<<<grid, threads, 0, s>>>((uint64_t *)dst, (const uint64_t *)src, g, n);
        break;
    default:
        snprintf(msg, len, "cuda: box copy of %zu-byte elements (internal error)", es);
        return LOOM_ERR_RUNTIME;
    }
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) {
        snprintf(msg, len, "cuda: box copy launch: %s", cudaGetErrorString(e));
        return LOOM_ERR_RUNTIME;
    }
    return LOOM_OK;
}
