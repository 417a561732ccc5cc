// CUDA kernels of dropout (see ops/cuda/cuda.h for the contract; the meaning is ops/dropout.c's).
//
// The mask is the CPU kernel's bit for bit, in a part of a row-split mask too (loom__mask_base): the same key from (graph seed, mask tensor id, step)
// and draw j = loom__rand64(key, j) giving elements 2j (low 32 bits) and 2j + 1 (high 32 bits).
// The key's last hash, of the step, is taken on the device, from ctx->cuda->step_dev when it is
// set: a step replayed from a captured graph reads its step there, not the one frozen at capture.
// Each thread makes 8 mask bytes from 4 draws and stores them as one 8-byte word when the mask is
// 8-aligned, so the stores are coalesced and the hashing has no divergence.
// dropout itself is the CPU's y = x * ((T)m * keep) with keep rounded to T first, so it is exact.
// defines: loom__cuda_register_dropout
#include "ops/cuda/flat.cuh"

namespace {

// ---- kernels ------------------------------------------------------------------------------------

// A part of a row-split mask whose elements start at base (> 0) in the whole tensor: one element
// per thread, its draw base + i >> 1 and half base + i & 1.
__global__ void mask_part_kernel(uint8_t *m, int64_t n, int64_t base, uint64_t tensor_key, int64_t step, const int64_t *step_dev,
                                 uint64_t thr)
{
    const uint64_t key = loom__rand64(tensor_key, (uint64_t)(step_dev ? *step_dev : step));
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        const uint64_t g = (uint64_t)(base + i), r = loom__rand64(key, g >> 1);
        m[i] = (uint8_t)(((g & 1) ? r >> 32 : r & 0xffffffffu) >= thr);
    }
}

__global__ void mask_kernel(uint8_t *m, int64_t n, uint64_t tensor_key, int64_t step, const int64_t *step_dev, uint64_t thr)
{
    const uint64_t key = loom__rand64(tensor_key, (uint64_t)(step_dev ? *step_dev : step));
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    const int64_t groups = (n + 7) / 8;
    const bool word = loom__cuda_aligned(m, 8);
    for (int64_t g = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < groups; g += stride) {
        uint64_t w = 0;
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const uint64_t r = loom__rand64(key, (uint64_t)(4 * g + k));
            w |= (uint64_t)((r & 0xffffffffu) >= thr) << (16 * k);
            w |= (uint64_t)((r >> 32) >= thr) << (16 * k + 8);
        }
        const int64_t i = 8 * g;
        if (word && i + 8 <= n) {
            reinterpret_cast<uint64_t *>(m)[g] = w;
        } else {
            for (int b = 0; b < 8 && i + b < n; b++)
                m[i + b] = (uint8_t)(w >> (8 * b));
        }
    }
}

template <typename T, int V> __global__ void dropout_kernel(T *y, const T *x, const uint8_t *m, int64_t n, T keep)
{
    const loom__cuda_flat<V> r(n);
    for (int64_t k = r.first; k < r.nv; k += r.stride) {
        loom__cuda_vec<T, V> v = loom__cuda_vload<V>(x, k);
        const loom__cuda_vec<uint8_t, V> b = loom__cuda_vload<V>(m, k);
#pragma unroll
        for (int j = 0; j < V; j++)
            v.v[j] = v.v[j] * ((T)b.v[j] * keep);
        loom__cuda_vstore<V>(y, k, v);
    }
    for (int64_t i = r.tail(); i < n; i += r.stride)
        y[i] = x[i] * ((T)m[i] * keep);
}

} // namespace

// ---- launchers ----------------------------------------------------------------------------------

namespace {
constexpr int kThreads = 256;
}

static loom_status cuda_dropout_mask(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)src; // only its shape matters, and out has it
    if (out->dtype != LOOM_U8)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "dropout_mask: the output is %s, not u8", loom_dtype_name(out->dtype));
    const int64_t n = loom__numel(out);
    if (n == 0)
        return LOOM_OK;
    if (!ctx->training)
        return loom__cuda_memset(ctx, out->data, 1, (size_t)n, "dropout_mask");
    cudaStream_t st = loom__cuda_stream(ctx);
    const uint64_t thr = (uint64_t)(t->a.f[0] * 4294967296.0);
    const uint64_t tensor_key = loom__rand64(ctx->seed, (uint64_t)t->id);
    const int64_t base = loom__mask_base(out, ctx);
    if (base)
        mask_part_kernel<<<loom__cuda_grid(n, kThreads), kThreads, 0, st>>>((uint8_t *)out->data, n, base, tensor_key, ctx->step,
                                                                           ctx->cuda->step_dev, thr);
    else
        mask_kernel<<<loom__cuda_grid((n + 7) / 8, kThreads), kThreads, 0, st>>>((uint8_t *)out->data, n, tensor_key, ctx->step,
                                                                                ctx->cuda->step_dev, thr);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "dropout_mask");
    return LOOM_OK;
}

static loom_status cuda_dropout(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const int64_t n = loom__numel(out);
    if (loom__numel(src[0]) != n || src[0]->dtype != out->dtype)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "dropout: x differs from the output in size or dtype");
    if (n == 0)
        return LOOM_OK;
    if (!ctx->training) // the identity: a copy, or nothing in place
        return loom__cuda_copy(ctx, out->data, src[0]->data, (size_t)n * loom_dtype_size(out->dtype), "dropout");
    if (loom__numel(src[1]) != n || src[1]->dtype != LOOM_U8)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "dropout: the mask is not u8 of x's size");
    const double p = t->a.f[0];
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        T *y = (T *)out->data;
        const T *x = (const T *)src[0]->data;
        const uint8_t *m = (const uint8_t *)src[1]->data;
        const T keep = (T)(1 / (1 - p));
        cudaStream_t st = loom__cuda_stream(ctx);
        // a vector of V values takes V mask bytes, read in one access too
        const bool vec =
            loom__cuda_aligned(y, 16) && loom__cuda_aligned(x, 16) && loom__cuda_aligned(m, 16 / sizeof(T));
        loom__cuda_launch_flat<T>(n, vec, kThreads, [&](auto v, unsigned grid) {
            dropout_kernel<T, decltype(v)::value><<<grid, kThreads, 0, st>>>(y, x, m, n, keep);
        });
        LOOM__CUDA_CHECK_LAUNCH(ctx, "dropout");
        return LOOM_OK;
    });
}

extern "C" void loom__cuda_register_dropout(loom__cuda_op *table)
{
    table[LOOM_OP_DROPOUT_MASK].run = cuda_dropout_mask;
    table[LOOM_OP_DROPOUT].run = cuda_dropout;
}
