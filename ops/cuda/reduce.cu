// CUDA kernels of the reductions (see ops/cuda/cuda.h for the contract): sum and mean over an
// axis mask, and expand, the broadcast that is their gradient; argmax along an axis, a thread per
// output walking its column by the rule every device shares (loom__argmax, ops/shared/operands.h).
//
// The plan is the CPU kernel's (ops/cpu/reduce.c): x's dims become runs of merged dims, the kept
// runs numbering the outputs and the reduced runs numbering the terms of each output. Two kernels
// cover every mask, chosen by where x's contiguous dim went:
// - kept (the bias gradient [N, C] -> [C]): a thread per output column, the threads of a block
//   reading neighbouring columns of the same rows, their rows then added in shared memory;
// - reduced (a row sum [N, C] -> [N], the loss): a group of lanes per output reading along its
//   row, added by shuffles.
// Terms are added in double for both dtypes, as on the CPU. Outputs too few to fill the GPU split
// their terms into chunks: each chunk's sum goes to the workspace and a second kernel adds an
// output's chunks in order. There are no atomics anywhere: the order of every addition is fixed by
// the shapes alone, so each run gives the same bits.
// defines: loom__cuda_register_reduce
#include "ops/cuda/runs.cuh"
#include "ops/shared/operands.h"

namespace {

// Chunk sums kept in the workspace at most: enough to fill the GPU for a handful of outputs.
constexpr int64_t MAX_PARTS = 1 << 16;
// Threads wanted in flight before a reduction is worth splitting further.
constexpr int64_t WANT_THREADS = 1 << 17;
constexpr int BLOCK = 256;

// ---- kernels ------------------------------------------------------------------------------------

// x's innermost dim is kept: outputs [outer, K], unit u = (outer o, column tile, chunk c). Thread
// (tx, ty) adds rows ty, ty + TY, ... of the chunk for column tile * TX + tx; the TY sums of a
// column are then added in ty order. part NULL: the chunk is the whole sum, written as T.
template <typename T, typename I, int TX>
__global__ void __launch_bounds__(BLOCK)
    reduce_kept_inner(const T *__restrict__ x, T *__restrict__ y, double *__restrict__ part, loom__runs outer, I K,
                      loom__runs red, I nout, I count, I chunk, I nchunks, I ntile, I units, double div)
{
    constexpr int TY = BLOCK / TX;
    __shared__ double sh[TY][TX];
    const int tx = threadIdx.x % TX, ty = threadIdx.x / TX;
    for (I u = blockIdx.x; u < units; u += gridDim.x) {
        const I c = u % nchunks, rest = u / nchunks, tile = rest % ntile, o = rest / ntile;
        const I kc = tile * TX + tx;
        const I r0 = c * chunk, r1 = min(count, r0 + chunk);
        double acc = 0;
        if (kc < K) {
            const T *xb = x + loom__cuda_run_off(outer, o) + kc;
            for (I r = r0 + ty; r < r1; r += TY)
                acc += (double)xb[loom__cuda_run_off(red, r)];
        }
        sh[ty][tx] = acc;
        __syncthreads();
        if (ty == 0 && kc < K) {
            double s = 0;
            for (int j = 0; j < TY; j++)
                s += sh[j][tx];
            const I out = o * K + kc;
            if (part)
                part[(size_t)c * nout + out] = s;
            else
                y[out] = (T)(s / div);
        }
        __syncthreads();
    }
}

// x's innermost dim is reduced: a group of W lanes per unit u = (output o, chunk c), lane l adding
// terms l, l + W, ... of the chunk (neighbouring lanes, neighbouring elements), then a butterfly.
template <typename T, typename I, int W>
__global__ void __launch_bounds__(BLOCK)
    reduce_inner(const T *__restrict__ x, T *__restrict__ y, double *__restrict__ part, loom__runs kept,
                 loom__runs red, I nout, I count, I chunk, I nchunks, I units, double div)
{
    const int lane = threadIdx.x % W;
    // the group's lanes only: groups of one warp may run different numbers of units
    const unsigned mask = loom__cuda_group_mask<W>();
    const I groups = (I)gridDim.x * (BLOCK / W);
    for (I u = ((I)blockIdx.x * BLOCK + threadIdx.x) / W; u < units; u += groups) {
        const I c = u % nchunks, o = u / nchunks;
        const I r0 = c * chunk, r1 = min(count, r0 + chunk);
        const T *xb = x + loom__cuda_run_off(kept, o);
        double acc = 0;
        for (I r = r0 + lane; r < r1; r += W)
            acc += (double)xb[loom__cuda_run_off(red, r)];
        acc = loom__cuda_group_reduce<W>(acc, mask, [](double a, double b) { return a + b; });
        if (lane == 0) {
            if (part)
                part[(size_t)c * nout + o] = acc;
            else
                y[o] = (T)(acc / div);
        }
    }
}

// y[o] = the sum of o's nchunks partial sums, in chunk order.
template <typename T>
__global__ void reduce_finish(const double *__restrict__ part, T *__restrict__ y, int64_t nout, int64_t nchunks,
                              double div)
{
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < nout; o += (int64_t)gridDim.x * blockDim.x) {
        double s = 0;
        for (int64_t c = 0; c < nchunks; c++)
            s += part[c * nout + o];
        y[o] = (T)(s / div);
    }
}

// y[o] = x[off(o)] * scale, off walking w (y's dims with x's strides, 0 where stretched). The
// product is in double as on the CPU, so f32 rounds once, to the same value.
template <typename T, typename I>
__global__ void expand_kernel(const T *__restrict__ x, T *__restrict__ y, loom__runs w, I n, double scale)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (I)gridDim.x * blockDim.x) {
        const T v = x[loom__cuda_run_off(w, o)];
        y[o] = scale == 1.0 ? v : (T)((double)v * scale);
    }
}

__device__ __forceinline__ int64_t argmax_of(const float *x, int64_t c, int64_t stride)
{
    return loom__argmax_f32(x, c, stride);
}
__device__ __forceinline__ int64_t argmax_of(const double *x, int64_t c, int64_t stride)
{
    return loom__argmax_f64(x, c, stride);
}

// x as [outer, c, inner] -> y [outer, inner] i32; neighbouring threads read neighbouring columns.
template <typename T>
__global__ void argmax_kernel(const T *__restrict__ x, int32_t *__restrict__ y, int64_t outer, int64_t c, int64_t inner)
{
    const int64_t total = outer * inner, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < total; k += stride) {
        const int64_t o = k / inner, i = k - o * inner;
        y[k] = (int32_t)argmax_of(x + o * c * inner + i, c, inner);
    }
}

// ---- launchers ----------------------------------------------------------------------------------

// The number of chunks to split each output's count terms into, given units0 work units of
// `threads` threads each and a chunk at least min_chunk long; fewer when the workspace cannot hold
// the partial sums (never with the workspace reduce_workspace asks for).
int64_t pick_chunks(int64_t units0, int64_t threads, int64_t count, int64_t min_chunk, int64_t nout, size_t ws_bytes)
{
    if (units0 * threads >= WANT_THREADS || count < 2 * min_chunk)
        return 1;
    int64_t s = loom__cuda_ceil_div(WANT_THREADS, units0 * threads);
    s = s < count / min_chunk ? s : count / min_chunk;
    int64_t cap = (int64_t)(ws_bytes / sizeof(double)) / nout;
    cap = cap < MAX_PARTS / nout ? cap : MAX_PARTS / nout;
    s = s < cap ? s : cap;
    return s > 1 ? s : 1;
}

template <typename T, typename I>
loom_status reduce_typed(const loom__kctx *ctx, const T *x, T *y, const loom__runs &kept,
                         const loom__runs &red, int64_t nout, int64_t count, double div)
{
    cudaStream_t st = loom__cuda_stream(ctx);
    double *ws = (double *)ctx->cuda->workspace;
    const size_t ws_bytes = ws ? ctx->cuda->workspace_bytes : 0;
    int64_t nchunks;
    if (kept.nd > 0 && kept.s[kept.nd - 1] == 1) {
        loom__runs outer = kept;
        const int64_t K = outer.n[--outer.nd];
        const int tx = (int)loom__cuda_pow2_at_least(K, 32);
        if (tx < 2) // runs hold no dim of size 1
            return loom__kfail(ctx, LOOM_ERR_RUNTIME, "reduce: no kernel for a kept run of %lld (internal error)",
                               (long long)K);
        const int64_t ntile = loom__cuda_ceil_div(K, tx), units0 = (nout / K) * ntile;
        nchunks = pick_chunks(units0, BLOCK, count, 8 * (BLOCK / tx), nout, ws_bytes);
        const int64_t chunk = loom__cuda_ceil_div(count, nchunks), units = units0 * nchunks;
        double *part = nchunks > 1 ? ws : nullptr;
        const loom_status s = loom__cuda_with_pow2<2, 32>(tx, [&](auto tw) {
            reduce_kept_inner<T, I, decltype(tw)::value><<<loom__cuda_grid(units, 1), BLOCK, 0, st>>>(
                x, y, part, outer, (I)K, red, (I)nout, (I)count, (I)chunk, (I)nchunks, (I)ntile, (I)units, div);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "reduce (kept inner dim)");
            return LOOM_OK;
        });
        if (s != LOOM_OK)
            return s;
    } else {
        const int64_t inner = red.nd > 0 ? red.n[red.nd - 1] : 1;
        const int w = (int)loom__cuda_pow2_at_least(inner, 32);
        nchunks = pick_chunks(nout, w, count, 8 * w, nout, ws_bytes);
        const int64_t chunk = loom__cuda_ceil_div(count, nchunks), units = nout * nchunks;
        double *part = nchunks > 1 ? ws : nullptr;
        const loom_status s = loom__cuda_with_pow2<1, 32>(w, [&](auto ww) {
            reduce_inner<T, I, decltype(ww)::value><<<loom__cuda_grid(units * w, BLOCK), BLOCK, 0, st>>>(
                x, y, part, kept, red, (I)nout, (I)count, (I)chunk, (I)nchunks, (I)units, div);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "reduce (reduced inner dim)");
            return LOOM_OK;
        });
        if (s != LOOM_OK)
            return s;
    }
    if (nchunks > 1) {
        reduce_finish<T><<<loom__cuda_grid(nout, BLOCK), BLOCK, 0, st>>>(ws, y, nout, nchunks, div);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "reduce (adding the chunks)");
    }
    return LOOM_OK;
}

loom_status reduce_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx, int mean)
{
    const loom__value *x = src[0];
    const uint32_t mask = (uint32_t)t->a.i[0];
    int64_t stride[LOOM_MAX_DIMS], st = 1, count = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        stride[i] = st;
        st *= x->shape[i];
    }
    loom__runs kept = {}, red = {};
    for (int i = 0; i < x->ndim; i++) {
        if (mask >> i & 1) {
            loom__runs_push(&red, x->shape[i], stride[i]);
            count *= x->shape[i];
        } else {
            loom__runs_push(&kept, x->shape[i], stride[i]);
        }
    }
    const int64_t nout = loom__cuda_dense_numel(out);
    if (nout * count != loom__cuda_dense_numel(x))
        return loom__kfail(ctx, LOOM_ERR_SHAPE,
                           "output has %lld elements for %lld inputs reduced %lld to one (internal error)",
                           (long long)nout, (long long)loom__cuda_dense_numel(x), (long long)count);
    if (out->dtype != x->dtype)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "output is %s, the operand %s", loom_dtype_name(out->dtype),
                           loom_dtype_name(x->dtype));
    if (nout == 0)
        return LOOM_OK;
    if (count == 0) // an empty sum is 0, and so is (by Loom's convention) an empty mean
        return loom__cuda_memset(ctx, out->data, 0, (size_t)nout * loom_dtype_size(out->dtype), "reduce");
    const double div = mean ? (double)count : 1.0;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        return loom__cuda_with_index(loom__cuda_dense_numel(x), [&](auto zi) {
            using I = decltype(zi);
            return reduce_typed<T, I>(ctx, (const T *)x->data, (T *)out->data, kept, red, nout, count, div);
        });
    });
}

loom_status sum_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return reduce_run(t, out, src, ctx, 0);
}

loom_status mean_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return reduce_run(t, out, src, ctx, 1);
}

// Room for the most chunk sums the split takes, asked always: with it the number of chunks, and so
// the order of the additions, depends on the shapes alone, never on the workspace the plan happens
// to share with other ops.
size_t reduce_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *)
{
    (void)t;
    (void)src_nnz;
    return (size_t)MAX_PARTS * sizeof(double);
}

loom_status expand_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *x = src[0];
    loom__expand p;
    loom_status s = loom__expand_plan(&p, t, out, x, ctx);
    if (s != LOOM_OK || p.n == 0)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        return loom__cuda_with_index(p.n, [&](auto zi) {
            using I = decltype(zi);
            expand_kernel<T, I><<<loom__cuda_grid(p.n, BLOCK), BLOCK, 0, loom__cuda_stream(ctx)>>>(
                (const T *)x->data, (T *)out->data, p.w, (I)p.n, p.scale);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "expand");
            return LOOM_OK;
        });
    });
}

loom_status argmax_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t outer, c, inner;
    loom_status s = loom__argmax_operands(t, out, src[0], &outer, &c, &inner, ctx);
    if (s != LOOM_OK || outer * inner == 0)
        return s;
    return loom__cuda_float_dispatch(src[0]->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        argmax_kernel<T><<<loom__cuda_grid(outer * inner, BLOCK), BLOCK, 0, loom__cuda_stream(ctx)>>>(
            (const T *)src[0]->data, (int32_t *)out->data, outer, c, inner);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "argmax");
        return LOOM_OK;
    });
}

} // namespace

extern "C" void loom__cuda_register_reduce(loom__cuda_op *table)
{
    table[LOOM_OP_ARGMAX] = loom__cuda_op{argmax_run, nullptr};
    table[LOOM_OP_SUM] = loom__cuda_op{sum_run, reduce_workspace};
    table[LOOM_OP_MEAN] = loom__cuda_op{mean_run, reduce_workspace};
    table[LOOM_OP_EXPAND] = loom__cuda_op{expand_run, nullptr};
}
