// CUDA kernels of log_softmax, softmax and their gradients (see ops/cuda/cuda.h for the contract;
// the meaning is ops/softmax.c's). Along the last axis they run on rows as ops/cuda/softmax.cuh
// reads them; softmax along another axis runs a thread per column of [outer, c, inner] (its
// threads read neighbouring columns, so each pass along c is coalesced), in double as on the CPU.
// defines: loom__cuda_register_softmax
#include "ops/cuda/softmax.cuh"
#include "ops/shared/operands.h"

namespace {

// ---- kernels ------------------------------------------------------------------------------------

template <typename T, int LANES, int ELEMS> __global__ void log_softmax_rows(T *y, const T *x, int64_t rows, int c)
{
    const rowmap<LANES> rm;
    for (int64_t base = rm.first; base < rows; base += rm.step) {
        const int64_t r = base + rm.group;
        const bool live = r < rows;
        T v[ELEMS];
        const T lse = row_lse<LANES>(v, x + (live ? r : 0) * (int64_t)c, live, rm.lane, c);
        if (live) {
            T *yr = y + r * (int64_t)c;
#pragma unroll
            for (int e = 0; e < ELEMS; e++) {
                const int j = rm.lane + e * LANES;
                if (j < c)
                    yr[j] = v[e] - lse;
            }
        }
    }
}

template <typename T, int BLOCK> __global__ void __launch_bounds__(BLOCK) log_softmax_block(T *y, const T *x, int64_t rows, int64_t c)
{
    __shared__ T smem[33];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * c;
        const T lse = block_lse<BLOCK>(xr, c, smem);
        T *yr = y + r * c;
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            yr[j] = xr[j] - lse;
    }
}

// gx = g - exp(y) * sum(g) per row.
template <typename T, int LANES, int ELEMS>
__global__ void log_softmax_grad_rows(T *gx, const T *y, const T *g, int64_t rows, int c)
{
    const rowmap<LANES> rm;
    for (int64_t base = rm.first; base < rows; base += rm.step) {
        const int64_t r = base + rm.group;
        const bool live = r < rows;
        const int64_t off = (live ? r : 0) * (int64_t)c;
        T vy[ELEMS], vg[ELEMS], s = 0;
#pragma unroll
        for (int e = 0; e < ELEMS; e++) {
            const int j = rm.lane + e * LANES;
            const bool in = live && j < c;
            vy[e] = in ? y[off + j] : T(0);
            vg[e] = in ? g[off + j] : T(0);
            s += vg[e];
        }
        s = group_sum<LANES>(s);
        if (live) {
#pragma unroll
            for (int e = 0; e < ELEMS; e++) {
                const int j = rm.lane + e * LANES;
                if (j < c)
                    gx[off + j] = vg[e] - exp_(vy[e]) * s;
            }
        }
    }
}

template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) log_softmax_grad_block(T *gx, const T *y, const T *g, int64_t rows, int64_t c)
{
    __shared__ T smem[33];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t off = r * c;
        T s = 0;
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            s += g[off + j];
        s = block_reduce<BLOCK, false>(s, smem, T(0));
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            gx[off + j] = g[off + j] - exp_(y[off + j]) * s;
    }
}

// softmax of rows of c: exp(v - max) / sum, the terms kept in registers between the passes.
template <typename T, int LANES, int ELEMS> __global__ void softmax_rows(T *y, const T *x, int64_t rows, int c)
{
    const rowmap<LANES> rm;
    for (int64_t base = rm.first; base < rows; base += rm.step) {
        const int64_t r = base + rm.group;
        const bool live = r < rows;
        const T *xr = x + (live ? r : 0) * (int64_t)c;
        T v[ELEMS], mx = neg_inf<T>(), s = 0;
#pragma unroll
        for (int e = 0; e < ELEMS; e++) {
            const int j = rm.lane + e * LANES;
            v[e] = live && j < c ? xr[j] : neg_inf<T>();
            mx = max_(mx, v[e]);
        }
        mx = group_max<LANES>(mx);
#pragma unroll
        for (int e = 0; e < ELEMS; e++) {
            v[e] = rm.lane + e * LANES < c ? exp_(v[e] - mx) : T(0);
            s += v[e];
        }
        s = group_sum<LANES>(s);
        if (live) {
            T *yr = y + r * (int64_t)c;
#pragma unroll
            for (int e = 0; e < ELEMS; e++) {
                const int j = rm.lane + e * LANES;
                if (j < c)
                    yr[j] = v[e] / s;
            }
        }
    }
}

template <typename T, int BLOCK> __global__ void __launch_bounds__(BLOCK) softmax_block(T *y, const T *x, int64_t rows, int64_t c)
{
    __shared__ T smem[33];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const T *xr = x + r * c;
        T mx = neg_inf<T>(), s = 0;
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            mx = max_(mx, xr[j]);
        mx = block_reduce<BLOCK, true>(mx, smem, neg_inf<T>());
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            s += exp_(xr[j] - mx);
        s = block_reduce<BLOCK, false>(s, smem, T(0));
        T *yr = y + r * c;
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            yr[j] = exp_(xr[j] - mx) / s;
    }
}

// gx = y * (g - sum(g * y)) per row.
template <typename T, int LANES, int ELEMS>
__global__ void softmax_grad_rows(T *gx, const T *y, const T *g, int64_t rows, int c)
{
    const rowmap<LANES> rm;
    for (int64_t base = rm.first; base < rows; base += rm.step) {
        const int64_t r = base + rm.group;
        const bool live = r < rows;
        const int64_t off = (live ? r : 0) * (int64_t)c;
        T vy[ELEMS], vg[ELEMS], s = 0;
#pragma unroll
        for (int e = 0; e < ELEMS; e++) {
            const int j = rm.lane + e * LANES;
            const bool in = live && j < c;
            vy[e] = in ? y[off + j] : T(0);
            vg[e] = in ? g[off + j] : T(0);
            s += vg[e] * vy[e];
        }
        s = group_sum<LANES>(s);
        if (live) {
#pragma unroll
            for (int e = 0; e < ELEMS; e++) {
                const int j = rm.lane + e * LANES;
                if (j < c)
                    gx[off + j] = vy[e] * (vg[e] - s);
            }
        }
    }
}

template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) softmax_grad_block(T *gx, const T *y, const T *g, int64_t rows, int64_t c)
{
    __shared__ T smem[33];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t off = r * c;
        T s = 0;
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            s += g[off + j] * y[off + j];
        s = block_reduce<BLOCK, false>(s, smem, T(0));
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            gx[off + j] = y[off + j] * (g[off + j] - s);
    }
}

// softmax along the middle axis of [outer, c, inner], a thread per column (o, i).
template <typename T> __global__ void softmax_cols(T *y, const T *x, int64_t outer, int64_t c, int64_t inner)
{
    const int64_t cols = outer * inner, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < cols; k += stride) {
        const int64_t o = k / inner, first = o * c * inner + (k - o * inner);
        double m = x[first], s = 0;
        for (int64_t j = 1; j < c; j++) {
            const double v = x[first + j * inner];
            m = v > m ? v : m;
        }
        for (int64_t j = 0; j < c; j++)
            s += exp((double)x[first + j * inner] - m);
        for (int64_t j = 0; j < c; j++)
            y[first + j * inner] = (T)(exp((double)x[first + j * inner] - m) / s);
    }
}

template <typename T>
__global__ void softmax_grad_cols(T *gx, const T *y, const T *g, int64_t outer, int64_t c, int64_t inner)
{
    const int64_t cols = outer * inner, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; k < cols; k += stride) {
        const int64_t o = k / inner, first = o * c * inner + (k - o * inner);
        double s = 0;
        for (int64_t j = 0; j < c; j++)
            s += (double)g[first + j * inner] * y[first + j * inner];
        for (int64_t j = 0; j < c; j++) {
            const int64_t q = first + j * inner;
            gx[q] = (T)(y[q] * (g[q] - s));
        }
    }
}

} // namespace

// ---- launchers ----------------------------------------------------------------------------------

namespace {

// Rows and row length of a value whose last axis is the softmax axis.
static void rows_of(const loom__value *v, int64_t *rows, int64_t *c)
{
    *c = v->ndim ? v->shape[v->ndim - 1] : 1;
    *rows = 1;
    for (int i = 0; i + 1 < v->ndim; i++)
        *rows *= v->shape[i];
}

template <typename T> struct lsm_launch {
    T *y;
    const T *x;
    int64_t rows, c;
    cudaStream_t st;
    template <int L, int E> loom_status go() const
    {
        log_softmax_rows<T, L, E><<<row_grid<L>(rows), kRowThreads, 0, st>>>(y, x, rows, (int)c);
        return LOOM_OK;
    }
};

template <typename T> struct lsm_grad_launch {
    T *gx;
    const T *y, *g;
    int64_t rows, c;
    cudaStream_t st;
    template <int L, int E> loom_status go() const
    {
        log_softmax_grad_rows<T, L, E><<<row_grid<L>(rows), kRowThreads, 0, st>>>(gx, y, g, rows, (int)c);
        return LOOM_OK;
    }
};

template <typename T> struct sm_launch {
    T *y;
    const T *x;
    int64_t rows, c;
    cudaStream_t st;
    template <int L, int E> loom_status go() const
    {
        softmax_rows<T, L, E><<<row_grid<L>(rows), kRowThreads, 0, st>>>(y, x, rows, (int)c);
        return LOOM_OK;
    }
};

template <typename T> struct sm_grad_launch {
    T *gx;
    const T *y, *g;
    int64_t rows, c;
    cudaStream_t st;
    template <int L, int E> loom_status go() const
    {
        softmax_grad_rows<T, L, E><<<row_grid<L>(rows), kRowThreads, 0, st>>>(gx, y, g, rows, (int)c);
        return LOOM_OK;
    }
};

constexpr int kColThreads = 256;

} // namespace

static loom_status cuda_log_softmax(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    int64_t rows, c;
    rows_of(src[0], &rows, &c);
    if (rows * c == 0)
        return LOOM_OK;
    if (src[0]->dtype != out->dtype || loom__numel(out) != rows * c)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "log_softmax: x differs from the output in size or dtype");
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        cudaStream_t st = loom__cuda_stream(ctx);
        T *y = (T *)out->data;
        const T *x = (const T *)src[0]->data;
        if (c <= warp_max_c<T>())
            by_row_length<T>(c, lsm_launch<T>{y, x, rows, c, st});
        else
            log_softmax_block<T, kBlockThreads><<<block_grid(rows), kBlockThreads, 0, st>>>(y, x, rows, c);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "log_softmax");
        return LOOM_OK;
    });
}

static loom_status cuda_log_softmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                         const loom__kctx *ctx)
{
    (void)t;
    int64_t rows, c;
    rows_of(src[0], &rows, &c);
    if (rows * c == 0)
        return LOOM_OK;
    if (src[0]->dtype != out->dtype || src[1]->dtype != out->dtype || loom__numel(out) != rows * c ||
        loom__numel(src[1]) != rows * c)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "log_softmax_grad: y, gout and the output differ in size or dtype");
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        cudaStream_t st = loom__cuda_stream(ctx);
        T *gx = (T *)out->data;
        const T *y = (const T *)src[0]->data, *g = (const T *)src[1]->data;
        if (c <= warp_max_c<T>())
            by_row_length<T>(c, lsm_grad_launch<T>{gx, y, g, rows, c, st});
        else
            log_softmax_grad_block<T, kBlockThreads><<<block_grid(rows), kBlockThreads, 0, st>>>(gx, y, g, rows, c);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "log_softmax_grad");
        return LOOM_OK;
    });
}

// softmax and softmax_grad (grad set): src[0] is x or y, src[1] gout; along the last axis by rows,
// else by columns.
static loom_status softmax_any(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx,
                               bool grad)
{
    const char *what = grad ? "softmax_grad" : "softmax";
    int64_t outer, c, inner;
    loom_status s = loom__axis_view(src[0], (int)t->a.i[0], &outer, &c, &inner, ctx);
    if (s != LOOM_OK)
        return s;
    const int64_t n = outer * c * inner;
    if (src[0]->dtype != out->dtype || loom__numel(out) != n ||
        (grad && (src[1]->dtype != out->dtype || loom__numel(src[1]) != n)))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: the operands differ from the output in size or dtype", what);
    if (n == 0)
        return LOOM_OK;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        cudaStream_t st = loom__cuda_stream(ctx);
        T *o = (T *)out->data;
        const T *a = (const T *)src[0]->data, *g = grad ? (const T *)src[1]->data : nullptr;
        const int64_t rows = outer;
        if (inner > 1) {
            const unsigned grid = loom__cuda_grid(outer * inner, kColThreads);
            if (grad)
                softmax_grad_cols<T><<<grid, kColThreads, 0, st>>>(o, a, g, outer, c, inner);
            else
                softmax_cols<T><<<grid, kColThreads, 0, st>>>(o, a, outer, c, inner);
        } else if (c <= warp_max_c<T>()) {
            if (grad)
                by_row_length<T>(c, sm_grad_launch<T>{o, a, g, rows, c, st});
            else
                by_row_length<T>(c, sm_launch<T>{o, a, rows, c, st});
        } else if (grad) {
            softmax_grad_block<T, kBlockThreads><<<block_grid(rows), kBlockThreads, 0, st>>>(o, a, g, rows, c);
        } else {
            softmax_block<T, kBlockThreads><<<block_grid(rows), kBlockThreads, 0, st>>>(o, a, rows, c);
        }
        LOOM__CUDA_CHECK_LAUNCH(ctx, what);
        return LOOM_OK;
    });
}

static loom_status cuda_softmax(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return softmax_any(t, out, src, ctx, false);
}

static loom_status cuda_softmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return softmax_any(t, out, src, ctx, true);
}

extern "C" void loom__cuda_register_softmax(loom__cuda_op *table)
{
    table[LOOM_OP_SOFTMAX].run = cuda_softmax;
    table[LOOM_OP_SOFTMAX_GRAD].run = cuda_softmax_grad;
    table[LOOM_OP_LOG_SOFTMAX].run = cuda_log_softmax;
    table[LOOM_OP_LOG_SOFTMAX_GRAD].run = cuda_log_softmax_grad;
}
