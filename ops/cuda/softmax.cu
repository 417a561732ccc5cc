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

// The gradients per row, given y the forward output: of log_softmax (SOFT false), gx = g - exp(y)
// sum(g); of softmax (SOFT), gx = y (g - sum(g y)).
template <bool SOFT, typename T> __device__ __forceinline__ T grad_term(T y, T g) { return SOFT ? g * y : g; }
template <bool SOFT, typename T> __device__ __forceinline__ T grad_of(T y, T g, T s)
{
    return SOFT ? y * (g - s) : g - exp_(y) * s;
}

template <typename T, int LANES, int ELEMS, bool SOFT>
__global__ void grad_rows(T *gx, const T *y, const T *g, int64_t rows, int c)
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
            s += grad_term<SOFT>(vy[e], vg[e]);
        }
        s = group_sum<LANES>(s);
        if (live) {
#pragma unroll
            for (int e = 0; e < ELEMS; e++) {
                const int j = rm.lane + e * LANES;
                if (j < c)
                    gx[off + j] = grad_of<SOFT>(vy[e], vg[e], s);
            }
        }
    }
}

template <typename T, int BLOCK, bool SOFT>
__global__ void __launch_bounds__(BLOCK) grad_block(T *gx, const T *y, const T *g, int64_t rows, int64_t c)
{
    __shared__ T smem[33];
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const int64_t off = r * c;
        T s = 0;
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            s += grad_term<SOFT>(y[off + j], g[off + j]);
        s = block_reduce<BLOCK, false>(s, smem, T(0));
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            gx[off + j] = grad_of<SOFT>(y[off + j], g[off + j], s);
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

// The four kernels of the family: log_softmax and softmax, forward and backward.
enum kind { LOG_FWD, LOG_GRAD, SOFT_FWD, SOFT_GRAD };
constexpr const char *kind_name[4] = {"log_softmax", "log_softmax_grad", "softmax", "softmax_grad"};
constexpr int kColThreads = 256;

// A launch of kind K on rows of c <= warp_max_c<T>() (by_row_length's f): out from a (x or y) and g.
template <typename T, int K> struct rows_launch {
    T *out;
    const T *a, *g;
    int64_t rows, c;
    cudaStream_t st;
    template <int L, int E> loom_status go() const
    {
        const unsigned grid = row_grid<L>(rows);
        if constexpr (K == LOG_FWD)
            log_softmax_rows<T, L, E><<<grid, kRowThreads, 0, st>>>(out, a, rows, (int)c);
        else if constexpr (K == SOFT_FWD)
            softmax_rows<T, L, E><<<grid, kRowThreads, 0, st>>>(out, a, rows, (int)c);
        else
            grad_rows<T, L, E, K == SOFT_GRAD><<<grid, kRowThreads, 0, st>>>(out, a, g, rows, (int)c);
        return LOOM_OK;
    }
};

// Kind K along axis of src[0] (x, or y with gout src[1] for the gradients): by rows when the axis
// is the last, by groups or blocks as the rows' length asks; else (softmax only) by columns.
template <int K>
loom_status run_kind(loom__value *out, loom__value *const *src, int axis, const loom__kctx *ctx)
{
    constexpr bool grad = K == LOG_GRAD || K == SOFT_GRAD;
    const char *what = kind_name[K];
    int64_t outer, c, inner;
    loom_status s = loom__axis_view(src[0], axis, &outer, &c, &inner, ctx);
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
            by_row_length<T>(c, rows_launch<T, K>{o, a, g, rows, c, st});
        } else {
            const unsigned grid = block_grid(rows);
            if constexpr (K == LOG_FWD)
                log_softmax_block<T, kBlockThreads><<<grid, kBlockThreads, 0, st>>>(o, a, rows, c);
            else if constexpr (K == SOFT_FWD)
                softmax_block<T, kBlockThreads><<<grid, kBlockThreads, 0, st>>>(o, a, rows, c);
            else
                grad_block<T, kBlockThreads, K == SOFT_GRAD><<<grid, kBlockThreads, 0, st>>>(o, a, g, rows, c);
        }
        LOOM__CUDA_CHECK_LAUNCH(ctx, what);
        return LOOM_OK;
    });
}

// log_softmax runs along the last axis, softmax along a.i[0].
template <int K>
loom_status run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const int axis = K == LOG_FWD || K == LOG_GRAD ? src[0]->ndim - 1 : (int)t->a.i[0];
    return run_kind<K>(out, src, axis, ctx);
}

} // namespace

extern "C" void loom__cuda_register_softmax(loom__cuda_op *table)
{
    table[LOOM_OP_LOG_SOFTMAX].run = run<LOG_FWD>;
    table[LOOM_OP_LOG_SOFTMAX_GRAD].run = run<LOG_GRAD>;
    table[LOOM_OP_SOFTMAX].run = run<SOFT_FWD>;
    table[LOOM_OP_SOFTMAX_GRAD].run = run<SOFT_GRAD>;
}
