// CUDA kernels of log_softmax and log_softmax_grad (see ops/cuda/cuda.h for the contract; the
// meaning is ops/softmax.c's), on rows as ops/cuda/softmax.cuh reads them.
// defines: loom__cuda_register_softmax
#include "ops/cuda/softmax.cuh"

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

extern "C" void loom__cuda_register_softmax(loom__cuda_op *table)
{
    table[LOOM_OP_LOG_SOFTMAX].run = cuda_log_softmax;
    table[LOOM_OP_LOG_SOFTMAX_GRAD].run = cuda_log_softmax_grad;
}
