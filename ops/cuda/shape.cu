// CUDA kernels of the shape ops (see ops/cuda/cuda.h for the contract): reshape, transpose,
// concat, slice and slice_grad.
//
// Like the CPU kernels they move elements by size, never reading them as numbers, so one kernel
// serves every dtype. Every copy moves the widest unit (up to 16 bytes) that divides each size,
// offset and address involved: a slice of rows of 64 floats moves uint4s, a slice of one byte per
// row moves bytes. Transpose walks the CPU's merged runs; when the output's contiguous dim is not
// x's, a 32 x 32 tile goes through shared memory so that both the reads and the writes are
// coalesced. Nothing here adds numbers, so every result is exact and repeatable.
// defines: loom__cuda_register_shape
#include "ops/cuda/runs.cuh"

namespace {

constexpr int BLOCK = 256;
constexpr int TILE = 32, TILE_ROWS = 8;

// The 2-D transpose inside a transpose: out run q (contiguous in out) reads x with stride sq, x's
// contiguous run p is written with stride op; the other runs are a batch, with a stride in each.
struct tplan {
    int nb;
    int64_t bn[LOOM_MAX_DIMS], bx[LOOM_MAX_DIMS], by[LOOM_MAX_DIMS];
    int64_t P, Q, sq, op, tp, tq;
};

// concat's sources: each is [rows, width[k]] units, placed at column at[k] of out's rows.
struct cat_plan {
    int n;
    const void *src[LOOM__MAX_SRC];
    int64_t at[LOOM__MAX_SRC], width[LOOM__MAX_SRC];
    int64_t rowlen;
};

// ---- kernels ------------------------------------------------------------------------------------

// y[o] = x[off(o)]: the output in order, so writes coalesce; reads do too when w's inner run has
// stride 1.
template <typename E, typename I>
__global__ void gather_kernel(const E *__restrict__ x, E *__restrict__ y, loom__runs w, I n)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (I)gridDim.x * blockDim.x)
        y[o] = x[loom__cuda_run_off(w, o)];
}

// One tile per block and step: read with threadIdx.x along x's contiguous run, write with it along
// out's. The padding column keeps the column reads of the tile off a single bank.
template <typename E, typename I>
__global__ void __launch_bounds__(TILE *TILE_ROWS) transpose_tiled(const E *__restrict__ x, E *__restrict__ y, tplan pl,
                                                                  I units)
{
    __shared__ E tile[TILE][TILE + 1];
    const int tx = threadIdx.x, ty = threadIdx.y;
    const I P = (I)pl.P, Q = (I)pl.Q;
    for (I u = blockIdx.x; u < units; u += gridDim.x) {
        const I tq = u % (I)pl.tq, rest = u / (I)pl.tq, tp = rest % (I)pl.tp;
        I b = rest / (I)pl.tp, xo = 0, yo = 0;
        for (int d = pl.nb - 1; d >= 0; d--) {
            const I i = b % (I)pl.bn[d];
            b /= (I)pl.bn[d];
            xo += i * (I)pl.bx[d];
            yo += i * (I)pl.by[d];
        }
        const I p0 = tp * TILE, q0 = tq * TILE;
        for (int j = ty; j < TILE; j += TILE_ROWS) {
            const I p = p0 + tx, q = q0 + j;
            if (p < P && q < Q)
                tile[j][tx] = x[xo + p + q * (I)pl.sq];
        }
        __syncthreads();
        for (int j = ty; j < TILE; j += TILE_ROWS) {
            const I p = p0 + j, q = q0 + tx;
            if (p < P && q < Q)
                y[yo + p * (I)pl.op + q] = tile[tx][j];
        }
        __syncthreads();
    }
}

template <typename U, typename I> __global__ void concat_kernel(U *__restrict__ y, cat_plan pl, I n)
{
    const I rowlen = (I)pl.rowlen;
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (I)gridDim.x * blockDim.x) {
        const I row = o / rowlen, c = o - row * rowlen;
        int k = 0;
        while (k + 1 < pl.n && c >= (I)pl.at[k + 1]) // empty sources share their successor's column
            k++;
        y[o] = ((const U *)pl.src[k])[row * (I)pl.width[k] + (c - (I)pl.at[k])];
    }
}

// slice: y [rows, width] = columns [first, first + width) of x [rows, rowlen].
template <typename U, typename I>
__global__ void slice_kernel(const U *__restrict__ x, U *__restrict__ y, I rowlen, I first, I width, I n)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (I)gridDim.x * blockDim.x) {
        const I row = o / width;
        y[o] = x[row * rowlen + first + (o - row * width)];
    }
}

// slice_grad: y [rows, rowlen] is zero but for columns [first, first + width), which are g.
template <typename U, typename I>
__global__ void slice_grad_kernel(const U *__restrict__ g, U *__restrict__ y, I rowlen, I first, I width, I n)
{
    for (I o = (I)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (I)gridDim.x * blockDim.x) {
        const I row = o / rowlen, c = o - row * rowlen;
        y[o] = c >= first && c - first < width ? g[row * width + (c - first)] : U();
    }
}

// ---- launchers ----------------------------------------------------------------------------------

loom_status reshape_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    const int64_t n = loom__cuda_dense_numel(out);
    if (loom__cuda_dense_numel(src[0]) != n || loom_dtype_size(src[0]->dtype) != loom_dtype_size(out->dtype))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%lld elements cannot be reshaped to %lld (internal error)",
                           (long long)loom__cuda_dense_numel(src[0]), (long long)n);
    return loom__cuda_copy(ctx, out->data, src[0]->data, (size_t)n * loom_dtype_size(out->dtype), "reshape");
}

// The general transpose: w over out's dims with x's strides; the inner run of w is x's
// contiguous one (or the tile kernel handles it).
template <typename E> loom_status transpose_typed(const loom__kctx *ctx, const E *x, E *y, loom__runs w, int64_t n)
{
    cudaStream_t st = loom__cuda_stream(ctx);
    int p = -1;
    for (int d = 0; d < w.nd; d++)
        if (w.s[d] == 1)
            p = d;
    const int q = w.nd - 1;
    if (p >= 0 && p != q) {
        tplan pl = {};
        int64_t ostride[LOOM_MAX_DIMS], os = 1;
        for (int d = w.nd - 1; d >= 0; d--) {
            ostride[d] = os;
            os *= w.n[d];
        }
        for (int d = 0; d < w.nd; d++)
            if (d != p && d != q) {
                pl.bn[pl.nb] = w.n[d];
                pl.bx[pl.nb] = w.s[d];
                pl.by[pl.nb] = ostride[d];
                pl.nb++;
            }
        pl.P = w.n[p];
        pl.Q = w.n[q];
        pl.sq = w.s[q];
        pl.op = ostride[p];
        pl.tp = loom__cuda_ceil_div(pl.P, TILE);
        pl.tq = loom__cuda_ceil_div(pl.Q, TILE);
        const int64_t units = n / (pl.P * pl.Q) * pl.tp * pl.tq;
        return loom__cuda_with_index(n, [&](auto zi) {
            using I = decltype(zi);
            transpose_tiled<E, I><<<loom__cuda_grid(units, 1), dim3(TILE, TILE_ROWS), 0, st>>>(x, y, pl, (I)units);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "transpose (tiled)");
            return LOOM_OK;
        });
    }
    return loom__cuda_with_index(n, [&](auto zi) {
        using I = decltype(zi);
        gather_kernel<E, I><<<loom__cuda_grid(n, BLOCK), BLOCK, 0, st>>>(x, y, w, (I)n);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "transpose");
        return LOOM_OK;
    });
}

loom_status transpose_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *x = src[0];
    const size_t es = loom_dtype_size(out->dtype);
    if (x->ndim != out->ndim)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "rank %d transposed to rank %d (internal error)", x->ndim, out->ndim);
    int64_t stride[LOOM_MAX_DIMS], st = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        stride[i] = st;
        st *= x->shape[i];
    }
    loom__runs w = {};
    for (int i = 0; i < out->ndim; i++)
        loom__runs_push(&w, out->shape[i], stride[t->a.i[i]]);
    const int64_t n = loom__cuda_dense_numel(out);
    if (n == 0)
        return LOOM_OK;
    if (w.nd == 0 || (w.nd == 1 && w.s[0] == 1)) // one element, or the identity after merging
        return loom__cuda_copy(ctx, out->data, x->data, (size_t)n * es, "transpose");
    // A contiguous inner run moves in wider units when its length, the other strides and both
    // addresses allow: [A, B, 64] f32 permuted (1, 0, 2) moves rows of 16 uint4s.
    if (w.s[w.nd - 1] == 1) {
        uint64_t bits = (uint64_t)(uintptr_t)x->data | (uint64_t)(uintptr_t)out->data |
                        (uint64_t)w.n[w.nd - 1] * es;
        for (int d = 0; d < w.nd - 1; d++)
            bits |= (uint64_t)w.s[d] * es;
        const int u = loom__cuda_unit_of(bits);
        if ((size_t)u > es) {
            const int64_t k = u / (int64_t)es;
            w.n[w.nd - 1] /= k;
            for (int d = 0; d < w.nd - 1; d++)
                w.s[d] /= k;
            return loom__cuda_with_unit(u, [&](auto zu) {
                using U = decltype(zu);
                return transpose_typed<U>(ctx, (const U *)x->data, (U *)out->data, w, n / k);
            });
        }
    }
    switch (es) {
    case 1: return transpose_typed<uint8_t>(ctx, (const uint8_t *)x->data, (uint8_t *)out->data, w, n);
    case 2: return transpose_typed<uint16_t>(ctx, (const uint16_t *)x->data, (uint16_t *)out->data, w, n);
    case 4: return transpose_typed<uint32_t>(ctx, (const uint32_t *)x->data, (uint32_t *)out->data, w, n);
    case 8: return transpose_typed<uint64_t>(ctx, (const uint64_t *)x->data, (uint64_t *)out->data, w, n);
    default: return loom__kfail(ctx, LOOM_ERR_DTYPE, "no transpose for dtype %s", loom_dtype_name(out->dtype));
    }
}

// Product of v's dims before axis (*outer) and after it (*inner).
void split(const loom__value *v, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= v->shape[i];
    for (int i = axis + 1; i < v->ndim; i++)
        *inner *= v->shape[i];
}

loom_status concat_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const int axis = (int)t->a.i[0];
    const int64_t es = (int64_t)loom_dtype_size(out->dtype);
    int64_t outer, inner, total = 0;
    split(out, axis, &outer, &inner);
    for (int k = 0; k < t->n_src; k++)
        total += src[k]->shape[axis];
    if (total != out->shape[axis] || t->n_src > LOOM__MAX_SRC)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "sources add up to %lld along axis %d, output has %lld (internal error)",
                           (long long)total, axis, (long long)out->shape[axis]);
    const int64_t n = loom__cuda_dense_numel(out);
    if (n == 0)
        return LOOM_OK;
    uint64_t bits = (uint64_t)(uintptr_t)out->data | (uint64_t)(total * inner * es);
    int64_t at = 0;
    for (int k = 0; k < t->n_src; k++) {
        const int64_t width = src[k]->shape[axis] * inner * es;
        bits |= (uint64_t)at | (uint64_t)width | (width ? (uint64_t)(uintptr_t)src[k]->data : 0);
        at += width;
    }
    const int u = loom__cuda_unit_of(bits);
    cat_plan pl = {};
    pl.n = t->n_src;
    pl.rowlen = total * inner * es / u;
    at = 0;
    for (int k = 0; k < t->n_src; k++) {
        pl.src[k] = src[k]->data;
        pl.at[k] = at;
        pl.width[k] = src[k]->shape[axis] * inner * es / u;
        at += pl.width[k];
    }
    const int64_t nu = n * es / u;
    return loom__cuda_with_unit(u, [&](auto zu) {
        using U = decltype(zu);
        return loom__cuda_with_index(nu, [&](auto zi) {
            using I = decltype(zi);
            concat_kernel<U, I><<<loom__cuda_grid(nu, BLOCK), BLOCK, 0, loom__cuda_stream(ctx)>>>((U *)out->data, pl,
                                                                                                 (I)nu);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "concat");
            return LOOM_OK;
        });
    });
}

// slice and slice_grad: the sliced value v [outer, (end - start) * inner] and the whole one
// [outer, axis * inner], as units.
loom_status slice_common(const loom_tensor *t, const loom__value *whole, const loom__value *part, void *y,
                         const void *from, int grad, const loom__kctx *ctx)
{
    const int axis = (int)t->a.i[0];
    const int64_t start = t->a.i[1], end = t->a.i[2], es = (int64_t)loom_dtype_size(whole->dtype);
    int64_t outer, inner;
    if (end > whole->shape[axis] || part->shape[axis] != end - start || start < 0)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "slice [%lld, %lld) of a dim of %lld (internal error)", (long long)start,
                           (long long)end, (long long)whole->shape[axis]);
    split(whole, axis, &outer, &inner);
    const int64_t row = whole->shape[axis] * inner * es, width = (end - start) * inner * es, first = start * inner * es;
    const int64_t n = grad ? outer * row : outer * width;
    if (n == 0)
        return LOOM_OK;
    const int u = loom__cuda_unit_of((uint64_t)row | (uint64_t)width | (uint64_t)first | (uint64_t)(uintptr_t)y |
                                     (width ? (uint64_t)(uintptr_t)from : 0));
    const int64_t nu = n / u;
    return loom__cuda_with_unit(u, [&](auto zu) {
        using U = decltype(zu);
        return loom__cuda_with_index(nu, [&](auto zi) {
            using I = decltype(zi);
            cudaStream_t st = loom__cuda_stream(ctx);
            if (grad)
                slice_grad_kernel<U, I><<<loom__cuda_grid(nu, BLOCK), BLOCK, 0, st>>>(
                    (const U *)from, (U *)y, (I)(row / u), (I)(first / u), (I)(width / u), (I)nu);
            else
                slice_kernel<U, I><<<loom__cuda_grid(nu, BLOCK), BLOCK, 0, st>>>(
                    (const U *)from, (U *)y, (I)(row / u), (I)(first / u), (I)(width / u), (I)nu);
            LOOM__CUDA_CHECK_LAUNCH(ctx, grad ? "slice_grad" : "slice");
            return LOOM_OK;
        });
    });
}

loom_status slice_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return slice_common(t, src[0], out, out->data, src[0]->data, 0, ctx);
}

loom_status slice_grad_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return slice_common(t, out, src[0], out->data, src[0]->data, 1, ctx);
}

} // namespace

extern "C" void loom__cuda_register_shape(loom__cuda_op *table)
{
    table[LOOM_OP_RESHAPE] = loom__cuda_op{reshape_run, nullptr};
    table[LOOM_OP_TRANSPOSE] = loom__cuda_op{transpose_run, nullptr};
    table[LOOM_OP_CONCAT] = loom__cuda_op{concat_run, nullptr};
    table[LOOM_OP_SLICE] = loom__cuda_op{slice_run, nullptr};
    table[LOOM_OP_SLICE_GRAD] = loom__cuda_op{slice_grad_run, nullptr};
}
