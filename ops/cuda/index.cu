// CUDA kernels of the index ops (see ops/cuda/cuda.h for the contract): gather_rows, scatter
// (scatter_add_rows and segment sum, mean and max) and scatter_grad (the backward pass of segment
// mean and max).
//
// An index outside its range is recorded in the device's error record and its row skipped (a
// gathered row reads as zeros, a scattered one is dropped): the host hears of it when the step's
// results arrive, and nothing is ever read or written out of bounds.
//
// scatter adds rows with float atomics by default, fast and in any order. In deterministic mode
// it sorts the row indices instead (a stable radix sort, CCCL's cub, of (target, position) pairs
// in the workspace), finds each target's run of sorted rows by binary search, and reduces each
// output element over its run in index order: the CPU kernel's order, so the results equal its
// bits. scatter_grad needs no sort in either mode: segment sizes are integer counts, and the max's
// gradient goes to the first row reaching the max, found with an integer atomicMin over row
// numbers, which is the same whatever the order.
// defines: loom__cuda_register_index
#include "ops/cuda/sort.cuh"
#include "ops/shared/operands.h"

namespace {

// The reductions of scatter's a.i[0]: enum loom__scatter_mode of ops/cpu/index.h, restated since
// .cu files take Loom's C headers through common.cuh only.
enum { LOOM__SCATTER_SUM, LOOM__SCATTER_MEAN, LOOM__SCATTER_MAX, LOOM__SCATTER_MODE_COUNT };

constexpr int BLOCK = 256;

// ---- kernels ------------------------------------------------------------------------------------

template <typename U, typename I>
__global__ void gather_rows_kernel(const U *__restrict__ table, const int32_t *__restrict__ idx, U *__restrict__ y,
                                   I rowlen, I n, int64_t nrows, loom__cuda_err *err, int tag)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (I)gridDim.x * blockDim.x) {
        const I i = o / rowlen, c = o - i * rowlen;
        const int32_t j = idx[i];
        if (j < 0 || j >= nrows) {
            if (c == 0)
                loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, j, nrows);
            y[o] = U();
            continue;
        }
        y[o] = table[(I)j * rowlen + c];
    }
}

template <typename T> __global__ void fill_kernel(T *__restrict__ y, int64_t n, T v)
{
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x)
        y[o] = v;
}

// y = max(y, v) with NaN winning (the CPU's rule), by compare-and-swap on the bits.
__device__ __forceinline__ void atomic_max_nan(float *a, float v)
{
    unsigned *p = (unsigned *)a, old = *p;
    for (;;) {
        const float cur = __uint_as_float(old);
        if (cur != cur || (!(v > cur) && v == v))
            return;
        const unsigned prev = atomicCAS(p, old, __float_as_uint(v));
        if (prev == old)
            return;
        old = prev;
    }
}

__device__ __forceinline__ void atomic_max_nan(double *a, double v)
{
    unsigned long long *p = (unsigned long long *)a, old = *p;
    for (;;) {
        const double cur = __longlong_as_double((long long)old);
        if (cur != cur || (!(v > cur) && v == v))
            return;
        const unsigned long long prev = atomicCAS(p, old, (unsigned long long)__double_as_longlong(v));
        if (prev == old)
            return;
        old = prev;
    }
}

// The atomic scatter: element o of x [e, f] goes to row idx[o / f] of y [n, f]; cnt (mean, max)
// counts each target's rows.
template <typename T, typename I>
__global__ void scatter_atomic(const T *__restrict__ x, const int32_t *__restrict__ idx, T *__restrict__ y,
                               unsigned *__restrict__ cnt, I total, I f, int64_t n, int mode, loom__cuda_err *err,
                               int tag)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (I)gridDim.x * blockDim.x) {
        const I i = o / f, j = o - i * f;
        const int32_t s = idx[i];
        if (s < 0 || s >= n) {
            if (j == 0)
                loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, s, n);
            continue;
        }
        T *to = y + (I)s * f + j;
        if (mode == LOOM__SCATTER_MAX)
            atomic_max_nan(to, x[o]);
        else
            atomicAdd(to, x[o]);
        if (cnt && j == 0)
            atomicAdd(cnt + s, 1u);
    }
}

// After the atomic scatter: a mean divides by its count (when above 1, as on the CPU), and a max
// of no rows is 0.
template <typename T, typename I>
__global__ void scatter_finish(T *__restrict__ y, const unsigned *__restrict__ cnt, I total, I f, int mode)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (I)gridDim.x * blockDim.x) {
        const unsigned c = cnt[o / f];
        if (mode == LOOM__SCATTER_MEAN && c > 1)
            y[o] /= (T)c;
        else if (mode == LOOM__SCATTER_MAX && c == 0)
            y[o] = T(0);
    }
}

// Sort keys for the deterministic scatter: a row's target, or n (sorted last, never reduced) for
// a bad one; values are row numbers.
__global__ void scatter_keys(const int32_t *__restrict__ idx, uint32_t *__restrict__ keys, uint32_t *__restrict__ rows,
                             int64_t e, int64_t n, loom__cuda_err *err, int tag)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < e; i += (int64_t)gridDim.x * blockDim.x) {
        const int32_t s = idx[i];
        const int bad = s < 0 || s >= n;
        if (bad)
            loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, s, n);
        keys[i] = bad ? (uint32_t)n : (uint32_t)s;
        rows[i] = (uint32_t)i;
    }
}

// The deterministic scatter: y[s, j] reduces x[rows[p], j] over p in [off[s], off[s + 1]) in
// order, in T, as the CPU kernel does.
template <typename T, typename I>
__global__ void scatter_sorted(const T *__restrict__ x, const uint32_t *__restrict__ rows,
                               const uint32_t *__restrict__ off, T *__restrict__ y, I total, I f, int mode)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (I)gridDim.x * blockDim.x) {
        const I s = o / f, j = o - s * f;
        const uint32_t p0 = off[s], p1 = off[s + 1];
        T acc = 0;
        if (mode == LOOM__SCATTER_MAX) {
            if (p1 > p0)
                acc = x[(I)rows[p0] * f + j];
            for (uint32_t p = p0 + 1; p < p1; p++) {
                const T v = x[(I)rows[p] * f + j];
                if (v > acc || v != v)
                    acc = v;
            }
        } else {
            for (uint32_t p = p0; p < p1; p++)
                acc += x[(I)rows[p] * f + j];
            if (mode == LOOM__SCATTER_MEAN && p1 - p0 > 1)
                acc /= (T)(p1 - p0);
        }
        y[o] = acc;
    }
}

__global__ void count_rows(const int32_t *__restrict__ idx, unsigned *__restrict__ cnt, int64_t e, int64_t n,
                           loom__cuda_err *err, int tag)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < e; i += (int64_t)gridDim.x * blockDim.x) {
        const int32_t s = idx[i];
        if (s < 0 || s >= n)
            loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, s, n);
        else
            atomicAdd(cnt + s, 1u);
    }
}

// mean's gradient: gx[i, j] = gy[idx[i], j] / count (the CPU's multiply by the reciprocal).
template <typename T, typename I>
__global__ void mean_grad(const int32_t *__restrict__ idx, const unsigned *__restrict__ cnt, const T *__restrict__ gy,
                          T *__restrict__ gx, I total, I f, int64_t n)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (I)gridDim.x * blockDim.x) {
        const I i = o / f, j = o - i * f;
        const int32_t s = idx[i];
        gx[o] = s < 0 || s >= n ? T(0) : gy[(I)s * f + j] * ((T)1 / (T)cnt[s]);
    }
}

// max's gradient, first pass: first[s, j] = the least row i of segment s with x[i, j] == y[s, j].
template <typename T, typename I>
__global__ void max_first(const T *__restrict__ x, const int32_t *__restrict__ idx, const T *__restrict__ y,
                          unsigned *__restrict__ first, I total, I f, int64_t n, loom__cuda_err *err, int tag)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (I)gridDim.x * blockDim.x) {
        const I i = o / f, j = o - i * f;
        const int32_t s = idx[i];
        if (s < 0 || s >= n) {
            if (j == 0)
                loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, s, n);
            continue;
        }
        const I at = (I)s * f + j;
        if (x[o] == y[at])
            atomicMin(first + at, (unsigned)i);
    }
}

// Second pass: the gradient goes to that row alone.
template <typename T, typename I>
__global__ void max_grad(const int32_t *__restrict__ idx, const unsigned *__restrict__ first, const T *__restrict__ gy,
                         T *__restrict__ gx, I total, I f, int64_t n)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (I)gridDim.x * blockDim.x) {
        const I i = o / f, j = o - i * f;
        const int32_t s = idx[i];
        const I at = s < 0 || s >= n ? 0 : (I)s * f + j;
        gx[o] = s >= 0 && s < n && first[at] == (unsigned)i ? gy[at] : T(0);
    }
}

// segment_softmax (grad false: y = exp(x - m) / s) and its gradient (grad: y = a * (g - d), a the
// softmax output) over segments [0, n] of f features: rows order[p] for p in [off[s], off[s + 1]).
// Segment n holds the rows of bad ids, whose outputs are 0.
template <typename T, typename I, bool GRAD>
__global__ void segment_softmax_kernel(const T *__restrict__ a, const T *__restrict__ g, const uint32_t *__restrict__ order,
                                       const uint32_t *__restrict__ off, T *__restrict__ y, I total, I f, int64_t n)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (I)gridDim.x * blockDim.x) {
        const I s = o / f, j = o - s * f;
        const uint32_t p0 = off[s], p1 = off[s + 1];
        if ((int64_t)s == n) {
            for (uint32_t p = p0; p < p1; p++)
                y[(I)order[p] * f + j] = T(0);
            continue;
        }
        if (GRAD) {
            double d = 0;
            for (uint32_t p = p0; p < p1; p++) {
                const I q = (I)order[p] * f + j;
                d += (double)g[q] * a[q];
            }
            for (uint32_t p = p0; p < p1; p++) {
                const I q = (I)order[p] * f + j;
                y[q] = (T)(a[q] * (g[q] - d));
            }
            continue;
        }
        double m = -INFINITY, sum = 0;
        for (uint32_t p = p0; p < p1; p++) {
            const double v = a[(I)order[p] * f + j];
            m = v > m ? v : m;
        }
        for (uint32_t p = p0; p < p1; p++)
            sum += exp((double)a[(I)order[p] * f + j] - m);
        for (uint32_t p = p0; p < p1; p++) {
            const I q = (I)order[p] * f + j;
            y[q] = (T)(exp((double)a[q] - m) / sum);
        }
    }
}

// y [n, classes] from idx [n]: 1 at idx, 0 elsewhere; a bad index is recorded and its row is 0.
template <typename T, typename I>
__global__ void one_hot_kernel(const int32_t *__restrict__ idx, T *__restrict__ y, I total, I classes,
                               loom__cuda_err *err, int tag)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < total; o += (I)gridDim.x * blockDim.x) {
        const I i = o / classes, c = o - i * classes;
        const int32_t k = idx[i];
        if ((k < 0 || k >= (int64_t)classes) && c == 0)
            loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, k, (long long)classes);
        y[o] = T((int64_t)c == k);
    }
}

// ---- launchers ----------------------------------------------------------------------------------

// The bound of t's elements after dim 0 (a row), and of dim 0.
int64_t row_bound(const loom_tensor *t)
{
    int64_t f = 1;
    for (int i = 1; i < t->shape.ndim; i++)
        f *= loom__dim_bound(t->graph, t->shape.d[i]);
    return f;
}

loom_status gather_rows_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    const loom__value *table = src[0], *idx = src[1];
    const int64_t e = idx->shape[0], v = table->shape[0];
    const int64_t row = loom__row_size(table) * (int64_t)loom_dtype_size(table->dtype);
    if (out->shape[0] != e || loom__row_size(out) != loom__row_size(table) || out->dtype != table->dtype)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "output, table and idx sizes disagree");
    if (e == 0 || row == 0)
        return LOOM_OK;
    const int u = loom__cuda_unit_of((uint64_t)row | (uint64_t)(uintptr_t)out->data | (uint64_t)(uintptr_t)table->data);
    const int64_t rowlen = row / u, n = e * rowlen, span = n > v * rowlen ? n : v * rowlen;
    return loom__cuda_with_unit(u, [&](auto zu) {
        using U = decltype(zu);
        return loom__cuda_with_index(span, [&](auto zi) {
            using I = decltype(zi);
            gather_rows_kernel<U, I><<<loom__cuda_grid(n, BLOCK), BLOCK, 0, loom__cuda_stream(ctx)>>>(
                (const U *)table->data, (const int32_t *)idx->data, (U *)out->data, (I)rowlen, (I)n, v,
                ctx->cuda->err, ctx->cuda->tag);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "gather_rows");
            return LOOM_OK;
        });
    });
}

template <typename T, typename I>
loom_status scatter_typed(const loom__kctx *ctx, int mode, const T *x, const int32_t *idx, T *y, int64_t e, int64_t n,
                          int64_t f)
{
    cudaStream_t st = loom__cuda_stream(ctx);
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    const int64_t total_in = e * f, total_out = n * f;
    loom__cuda_err *err = ctx->cuda->err;
    const int tag = ctx->cuda->tag;
    if (!ctx->cuda->deterministic) {
        unsigned *cnt = nullptr;
        if (mode != LOOM__SCATTER_SUM) {
            if (!(cnt = ws.take<unsigned>(n)))
                return loom__kfail(ctx, LOOM_ERR_RUNTIME, "scatter: the workspace is too small for %lld counts",
                                   (long long)n);
            loom_status s = loom__cuda_memset(ctx, cnt, 0, (size_t)n * sizeof *cnt, "scatter");
            if (s != LOOM_OK)
                return s;
        }
        if (mode == LOOM__SCATTER_MAX) {
            fill_kernel<T><<<loom__cuda_grid(total_out, BLOCK), BLOCK, 0, st>>>(y, total_out, -(T)INFINITY);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter (max: start)");
        } else {
            loom_status s = loom__cuda_memset(ctx, y, 0, (size_t)total_out * sizeof(T), "scatter");
            if (s != LOOM_OK)
                return s;
        }
        scatter_atomic<T, I><<<loom__cuda_grid(total_in, BLOCK), BLOCK, 0, st>>>(x, idx, y, cnt, (I)total_in, (I)f, n,
                                                                                mode, err, tag);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter");
        if (cnt) {
            scatter_finish<T, I><<<loom__cuda_grid(total_out, BLOCK), BLOCK, 0, st>>>(y, cnt, (I)total_out, (I)f, mode);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter (finish)");
        }
        return LOOM_OK;
    }
    if (e >= INT32_MAX || n >= INT32_MAX)
        return loom__kfail(ctx, LOOM_ERR_UNSUPPORTED, "deterministic scatter of %lld rows into %lld: at most 2^31 - 1 each",
                           (long long)e, (long long)n);
    uint32_t *keys = ws.take<uint32_t>(e), *sorted = ws.take<uint32_t>(e), *rows = ws.take<uint32_t>(e),
             *order = ws.take<uint32_t>(e), *off = ws.take<uint32_t>(n + 1);
    size_t scratch = 0;
    const int bits = loom__cuda_key_bits(n); // keys lie in [0, n]
    cudaError_t ce = loom__cuda_sort_pairs(nullptr, scratch, keys, sorted, rows, order, e, bits, st);
    void *tmp = ce == cudaSuccess ? ws.take<char>((int64_t)scratch) : nullptr;
    if (!keys || !sorted || !rows || !order || !off || !tmp)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "scatter: the workspace of %zu bytes is too small to sort %lld rows",
                           ctx->cuda->workspace_bytes, (long long)e);
    scatter_keys<<<loom__cuda_grid(e, BLOCK), BLOCK, 0, st>>>(idx, keys, rows, e, n, err, tag);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter (keys)");
    ce = loom__cuda_sort_pairs(tmp, scratch, keys, sorted, rows, order, e, bits, st);
    if (ce != cudaSuccess)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "scatter: cub::DeviceRadixSort::SortPairs: %s", cudaGetErrorString(ce));
    // target s owns sorted positions [off[s], off[s + 1])
    loom__cuda_key_starts<uint32_t><<<loom__cuda_grid(n + 1, BLOCK), BLOCK, 0, st>>>(sorted, e, off, n);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter (segments)");
    scatter_sorted<T, I><<<loom__cuda_grid(total_out, BLOCK), BLOCK, 0, st>>>(x, order, off, y, (I)total_out, (I)f, mode);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter (sorted)");
    return LOOM_OK;
}

loom_status scatter_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *x = src[0], *idx = src[1];
    const int mode = (int)t->a.i[0];
    const int64_t e = x->shape[0], n = out->shape[0], f = loom__row_size(out);
    if (idx->shape[0] != e || loom__row_size(x) != f || out->dtype != x->dtype)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "src, idx and output sizes disagree");
    if (mode < 0 || mode >= LOOM__SCATTER_MODE_COUNT)
        return loom__kfail(ctx, LOOM_ERR_INVALID, "unknown reduction %d (internal error)", mode);
    if (n == 0 || f == 0)
        return LOOM_OK;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        if (e == 0) // every row receives none: 0 in every mode
            return loom__cuda_memset(ctx, out->data, 0, (size_t)(n * f) * sizeof(T), "scatter");
        return loom__cuda_with_index(e * f > n * f ? e * f : n * f, [&](auto zi) {
            using I = decltype(zi);
            return scatter_typed<T, I>(ctx, mode, (const T *)x->data, (const int32_t *)idx->data, (T *)out->data, e, n, f);
        });
    });
}

// The larger of the two paths' needs, since the mode is the executor's choice at run time.
size_t scatter_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *)
{
    (void)src_nnz;
    const int64_t e = loom__dim_bound(t->graph, t->src[0]->shape.d[0]);
    const int64_t n = loom__dim_bound(t->graph, t->shape.d[0]);
    const size_t atomic = t->a.i[0] == LOOM__SCATTER_SUM ? 0 : (size_t)n * sizeof(unsigned) + 256;
    const size_t sorted = (size_t)(4 * e + n + 1) * sizeof(uint32_t) + loom__cuda_sort_scratch(e) + 6 * 256;
    return atomic > sorted ? atomic : sorted;
}

template <typename T, typename I>
loom_status scatter_grad_typed(const loom__kctx *ctx, int mode, const T *x, const int32_t *idx, const T *y, const T *gy,
                               T *gx, int64_t e, int64_t n, int64_t f)
{
    cudaStream_t st = loom__cuda_stream(ctx);
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    const int64_t total = e * f;
    if (mode == LOOM__SCATTER_MEAN) {
        unsigned *cnt = ws.take<unsigned>(n);
        if (n && !cnt)
            return loom__kfail(ctx, LOOM_ERR_RUNTIME, "scatter_grad: the workspace is too small for %lld counts",
                               (long long)n);
        loom_status s = loom__cuda_memset(ctx, cnt, 0, (size_t)n * sizeof(unsigned), "scatter_grad");
        if (s != LOOM_OK)
            return s;
        count_rows<<<loom__cuda_grid(e, BLOCK), BLOCK, 0, st>>>(idx, cnt, e, n, ctx->cuda->err, ctx->cuda->tag);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter_grad (counts)");
        mean_grad<T, I><<<loom__cuda_grid(total, BLOCK), BLOCK, 0, st>>>(idx, cnt, gy, gx, (I)total, (I)f, n);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter_grad (mean)");
        return LOOM_OK;
    }
    if (e >= (int64_t)UINT32_MAX)
        return loom__kfail(ctx, LOOM_ERR_UNSUPPORTED, "segment max gradient of %lld rows: at most 2^32 - 2", (long long)e);
    unsigned *first = ws.take<unsigned>(n * f);
    if (n * f > 0 && !first)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "scatter_grad: the workspace is too small for %lld row numbers",
                           (long long)(n * f));
    loom_status s = loom__cuda_memset(ctx, first, 0xff, (size_t)(n * f) * sizeof(unsigned), "scatter_grad");
    if (s != LOOM_OK)
        return s;
    max_first<T, I><<<loom__cuda_grid(total, BLOCK), BLOCK, 0, st>>>(x, idx, y, first, (I)total, (I)f, n, ctx->cuda->err,
                                                                    ctx->cuda->tag);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter_grad (max: first rows)");
    max_grad<T, I><<<loom__cuda_grid(total, BLOCK), BLOCK, 0, st>>>(idx, first, gy, gx, (I)total, (I)f, n);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "scatter_grad (max)");
    return LOOM_OK;
}

loom_status scatter_grad_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *x = src[0], *idx = src[1], *y = src[2], *gy = src[3];
    const int mode = (int)t->a.i[0];
    const int64_t e = x->shape[0], n = y->shape[0], f = loom__row_size(x);
    if (out->shape[0] != e || idx->shape[0] != e || gy->shape[0] != n || loom__row_size(y) != f ||
        loom__row_size(gy) != f || loom__row_size(out) != f)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "src, idx, output and gradient sizes disagree");
    if (mode != LOOM__SCATTER_MEAN && mode != LOOM__SCATTER_MAX)
        return loom__kfail(ctx, LOOM_ERR_INVALID, "mode %d has no scatter_grad (internal error)", mode);
    if (e == 0 || f == 0)
        return LOOM_OK;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        return loom__cuda_with_index(e * f > n * f ? e * f : n * f, [&](auto zi) {
            using I = decltype(zi);
            return scatter_grad_typed<T, I>(ctx, mode, (const T *)x->data, (const int32_t *)idx->data,
                                            (const T *)y->data, (const T *)gy->data, (T *)out->data, e, n, f);
        });
    });
}

size_t scatter_grad_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *)
{
    (void)src_nnz;
    const int64_t n = loom__dim_bound(t->graph, t->src[2]->shape.d[0]);
    const int64_t f = row_bound(t->src[0]);
    return (size_t)(t->a.i[0] == LOOM__SCATTER_MEAN ? n : n * f) * sizeof(unsigned) + 256;
}

// segment_softmax (src x, seg) and its gradient (src y, seg, gout): the rows sorted by segment in
// the workspace, then a thread per segment (n the segments' bound, and one for bad ids) and feature.
loom_status segment_softmax_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const bool grad = t->op == LOOM_OP_SEGMENT_SOFTMAX_GRAD;
    const char *what = grad ? "segment_softmax_grad" : "segment_softmax";
    const loom__value *a = src[0], *seg = src[1], *g = grad ? src[2] : nullptr;
    int64_t e, f, n;
    loom_status s = loom__segment_softmax_operands(t, out, src, &e, &f, &n, ctx);
    if (s != LOOM_OK || e == 0 || f == 0)
        return s;
    if (e >= INT32_MAX || n >= INT32_MAX - 1)
        return loom__kfail(ctx, LOOM_ERR_UNSUPPORTED, "%s of %lld rows into %lld segments: at most 2^31 - 2 each", what,
                           (long long)e, (long long)n);
    cudaStream_t st = loom__cuda_stream(ctx);
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    uint32_t *keys = ws.take<uint32_t>(e), *sorted = ws.take<uint32_t>(e), *rows = ws.take<uint32_t>(e),
             *order = ws.take<uint32_t>(e), *off = ws.take<uint32_t>(n + 2);
    size_t scratch = 0;
    const int bits = loom__cuda_key_bits(n > 1 ? n : 1); // keys lie in [0, n]
    cudaError_t ce = loom__cuda_sort_pairs(nullptr, scratch, keys, sorted, rows, order, e, bits, st);
    void *tmp = ce == cudaSuccess ? ws.take<char>((int64_t)scratch) : nullptr;
    if (!keys || !sorted || !rows || !order || !off || !tmp)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: the workspace of %zu bytes is too small to sort %lld rows", what,
                           ctx->cuda->workspace_bytes, (long long)e);
    scatter_keys<<<loom__cuda_grid(e, BLOCK), BLOCK, 0, st>>>((const int32_t *)seg->data, keys, rows, e, n,
                                                              ctx->cuda->err, ctx->cuda->tag);
    LOOM__CUDA_CHECK_LAUNCH(ctx, what);
    ce = loom__cuda_sort_pairs(tmp, scratch, keys, sorted, rows, order, e, bits, st);
    if (ce != cudaSuccess)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: cub::DeviceRadixSort::SortPairs: %s", what, cudaGetErrorString(ce));
    // segment s owns sorted positions [off[s], off[s + 1]); segment n, the bad ids, ends at e
    loom__cuda_key_starts<uint32_t><<<loom__cuda_grid(n + 2, BLOCK), BLOCK, 0, st>>>(sorted, e, off, n + 1);
    LOOM__CUDA_CHECK_LAUNCH(ctx, what);
    const int64_t total = (n + 1) * f;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        return loom__cuda_with_index(total > e * f ? total : e * f, [&](auto zi) {
            using I = decltype(zi);
            const T *ad = (const T *)a->data, *gd = g ? (const T *)g->data : nullptr;
            const unsigned grid = loom__cuda_grid(total, BLOCK);
            if (grad)
                segment_softmax_kernel<T, I, true><<<grid, BLOCK, 0, st>>>(ad, gd, order, off, (T *)out->data, (I)total,
                                                                           (I)f, n);
            else
                segment_softmax_kernel<T, I, false><<<grid, BLOCK, 0, st>>>(ad, gd, order, off, (T *)out->data, (I)total,
                                                                            (I)f, n);
            LOOM__CUDA_CHECK_LAUNCH(ctx, what);
            return LOOM_OK;
        });
    });
}

// The sort's arrays and scratch, at the bounds of the rows and the segments.
size_t segment_softmax_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *)
{
    (void)src_nnz;
    const int64_t e = loom__dim_bound(t->graph, t->src[0]->shape.d[0]);
    const int64_t n = loom__dim_bound(t->graph, (loom_dim)t->a.i[0]);
    return (size_t)(4 * e + n + 2) * sizeof(uint32_t) + loom__cuda_sort_scratch(e) + 6 * 256;
}

loom_status one_hot_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const int64_t n = loom__numel(src[0]), classes = t->a.i[0], total = n * classes;
    loom_status s = loom__one_hot_operands(t, out, src[0], ctx);
    if (s != LOOM_OK || total == 0)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        return loom__cuda_with_index(total, [&](auto zi) {
            using I = decltype(zi);
            one_hot_kernel<T, I><<<loom__cuda_grid(total, BLOCK), BLOCK, 0, loom__cuda_stream(ctx)>>>(
                (const int32_t *)src[0]->data, (T *)out->data, (I)total, (I)classes, ctx->cuda->err, ctx->cuda->tag);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "one_hot");
            return LOOM_OK;
        });
    });
}

} // namespace

extern "C" void loom__cuda_register_index(loom__cuda_op *table)
{
    table[LOOM_OP_SEGMENT_SOFTMAX] = loom__cuda_op{segment_softmax_run, segment_softmax_workspace};
    table[LOOM_OP_SEGMENT_SOFTMAX_GRAD] = loom__cuda_op{segment_softmax_run, segment_softmax_workspace};
    table[LOOM_OP_ONE_HOT] = loom__cuda_op{one_hot_run, nullptr};
    table[LOOM_OP_GATHER_ROWS] = loom__cuda_op{gather_rows_run, nullptr};
    table[LOOM_OP_SCATTER] = loom__cuda_op{scatter_run, scatter_workspace};
    table[LOOM_OP_SCATTER_GRAD] = loom__cuda_op{scatter_grad_run, scatter_grad_workspace};
}
