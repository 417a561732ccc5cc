// CUDA kernels of softmax_cross_entropy and its gradient (see ops/cuda/cuda.h for the contract;
// the meaning is ops/softmax.c's), on rows as ops/cuda/softmax.cuh reads them.
//
// The cross-entropy mean is two-level: each block sums the losses (in double) and counts the rows
// of its grid-stride share in a fixed order and writes one partial to the workspace; a one-block
// kernel adds the partials in a fixed order and divides. The count is the number of rows the mask
// keeps (all when there is none). A kept row whose label is outside [0, C) cannot fail the op from
// the device: it is recorded in the device error record (which the executor reports once the
// step reaches the host, as the CPU kernel fails the op) and adds nothing, its gradient row 0.
// defines: loom__cuda_register_softmax_ce
#include "ops/cuda/softmax.cuh"

#include <limits.h>

namespace {

constexpr int kMaxPartials = 1024; // blocks of the reductions that leave partials in the workspace

// ---- kernels ------------------------------------------------------------------------------------

// What a row of the cross entropy is: past the end, left out by the mask, kept, and kept with a
// label in range (only then is it read).
struct ce_row {
    bool live, kept, valid;
    int label;
};

__device__ __forceinline__ ce_row ce_classify(int64_t r, int64_t rows, const int32_t *labels, const uint8_t *mask, int c)
{
    ce_row w;
    w.live = r < rows;
    w.kept = w.live && (!mask || mask[r] != 0);
    w.label = w.kept ? labels[r] : 0;
    w.valid = w.kept && w.label >= 0 && w.label < c;
    return w;
}

// Per block: the sum of logsumexp(z[r]) - z[r, label] over its valid rows (double) and the count of
// its kept rows, into psum/pcnt[blockIdx.x].
template <typename T, int LANES, int ELEMS>
__global__ void __launch_bounds__(kRowThreads) ce_rows(const T *z, const int32_t *labels, const uint8_t *mask, int64_t rows, int c,
                                                     double *psum, long long *pcnt, loom__cuda_err *err, int tag)
{
    __shared__ double ssum[33];
    __shared__ long long scnt[33];
    const rowmap<LANES> rm;
    double acc = 0;
    long long cnt = 0;
    for (int64_t base = rm.first; base < rows; base += rm.step) {
        const int64_t r = base + rm.group;
        const ce_row w = ce_classify(r, rows, labels, mask, c);
        const T *zr = z + (w.valid ? r : 0) * (int64_t)c;
        T v[ELEMS];
        const T lse = row_lse<LANES>(v, zr, w.valid, rm.lane, c);
        if (rm.lane == 0) {
            cnt += w.kept;
            if (w.valid)
                acc += (double)lse - (double)zr[w.label];
            else if (w.kept)
                loom__cuda_record_err(err, LOOM__CUDA_ERR_LABEL, tag, w.label, c);
        }
    }
    acc = block_reduce<kRowThreads, false>(acc, ssum, 0.0);
    cnt = block_reduce<kRowThreads, false>(cnt, scnt, 0LL);
    if (threadIdx.x == 0) {
        psum[blockIdx.x] = acc;
        pcnt[blockIdx.x] = cnt;
    }
}

template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) ce_block(const T *z, const int32_t *labels, const uint8_t *mask, int64_t rows, int64_t c,
                                                  double *psum, long long *pcnt, loom__cuda_err *err, int tag)
{
    __shared__ T smem[33];
    double acc = 0; // thread 0's
    long long cnt = 0;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const ce_row w = ce_classify(r, rows, labels, mask, (int)c);
        if (!w.valid) { // the same for the whole block
            if (threadIdx.x == 0 && w.kept)
                loom__cuda_record_err(err, LOOM__CUDA_ERR_LABEL, tag, w.label, c);
            cnt += w.kept;
            continue;
        }
        const T *zr = z + r * c;
        const T lse = block_lse<BLOCK>(zr, c, smem);
        cnt++;
        if (threadIdx.x == 0)
            acc += (double)lse - (double)zr[w.label];
    }
    if (threadIdx.x == 0) {
        psum[blockIdx.x] = acc;
        pcnt[blockIdx.x] = cnt;
    }
}

// The mean: the partials of n blocks added in a fixed order by one block of kBlockThreads, over
// the kept rows, or over whole rows when whole > 0 (an unmasked part of row-split logits).
template <typename T>
__global__ void __launch_bounds__(kBlockThreads) ce_finish(T *loss, const double *psum, const long long *pcnt, int n, long long whole)
{
    __shared__ double ssum[33];
    __shared__ long long scnt[33];
    double s = 0;
    long long k = 0;
    for (int i = threadIdx.x; i < n; i += kBlockThreads) {
        s += psum[i];
        k += pcnt[i];
    }
    s = block_reduce<kBlockThreads, false>(s, ssum, 0.0);
    k = block_reduce<kBlockThreads, false>(k, scnt, 0LL);
    if (whole > 0)
        k = whole;
    if (threadIdx.x == 0)
        *loss = (T)(k ? s / (double)k : 0.0);
}

// Rows the mask keeps, per block into pcnt[blockIdx.x]; then their total into *total.
__global__ void __launch_bounds__(kBlockThreads) count_kept(const uint8_t *mask, int64_t rows, long long *pcnt)
{
    __shared__ long long scnt[33];
    long long k = 0;
    for (int64_t i = (int64_t)blockIdx.x * kBlockThreads + threadIdx.x; i < rows; i += (int64_t)gridDim.x * kBlockThreads)
        k += mask[i] != 0;
    k = block_reduce<kBlockThreads, false>(k, scnt, 0LL);
    if (threadIdx.x == 0)
        pcnt[blockIdx.x] = k;
}

__global__ void __launch_bounds__(kBlockThreads) count_finish(const long long *pcnt, int n, long long *total)
{
    __shared__ long long scnt[33];
    long long k = 0;
    for (int i = threadIdx.x; i < n; i += kBlockThreads)
        k += pcnt[i];
    k = block_reduce<kBlockThreads, false>(k, scnt, 0LL);
    if (threadIdx.x == 0)
        *total = k;
}

// The weight gout / count of every kept row's gradient; count from the device when a mask made it.
template <typename T> __device__ __forceinline__ T ce_weight(const T *gout, const long long *count_dev, long long count_host)
{
    const long long k = count_dev ? *count_dev : count_host;
    return (T)(k ? (double)*gout / (double)k : 0.0);
}

// gz[r] = (softmax(z[r]) - onehot(label)) * gout / count for valid rows, 0 for the others.
template <typename T, int LANES, int ELEMS>
__global__ void ce_grad_rows(T *gz, const T *z, const int32_t *labels, const uint8_t *mask, const T *gout,
                             const long long *count_dev, long long count_host, int64_t rows, int c, loom__cuda_err *err,
                             int tag)
{
    const T wt = ce_weight(gout, count_dev, count_host);
    const rowmap<LANES> rm;
    for (int64_t base = rm.first; base < rows; base += rm.step) {
        const int64_t r = base + rm.group;
        const ce_row w = ce_classify(r, rows, labels, mask, c);
        T v[ELEMS];
        const T lse = row_lse<LANES>(v, z + (w.valid ? r : 0) * (int64_t)c, w.valid, rm.lane, c);
        if (w.live) {
            T *gr = gz + r * (int64_t)c;
#pragma unroll
            for (int e = 0; e < ELEMS; e++) {
                const int j = rm.lane + e * LANES;
                if (j < c)
                    gr[j] = w.valid ? (exp_(v[e] - lse) - (j == w.label ? T(1) : T(0))) * wt : T(0);
            }
        }
        if (rm.lane == 0 && w.kept && !w.valid)
            loom__cuda_record_err(err, LOOM__CUDA_ERR_LABEL, tag, w.label, c);
    }
}

template <typename T, int BLOCK>
__global__ void __launch_bounds__(BLOCK) ce_grad_block(T *gz, const T *z, const int32_t *labels, const uint8_t *mask, const T *gout,
                                                       const long long *count_dev, long long count_host, int64_t rows,
                                                       int64_t c, loom__cuda_err *err, int tag)
{
    __shared__ T smem[33];
    const T wt = ce_weight(gout, count_dev, count_host);
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        const ce_row w = ce_classify(r, rows, labels, mask, (int)c);
        const T *zr = z + r * c;
        T *gr = gz + r * c;
        if (!w.valid) { // the same for the whole block
            if (threadIdx.x == 0 && w.kept)
                loom__cuda_record_err(err, LOOM__CUDA_ERR_LABEL, tag, w.label, c);
            for (int64_t j = threadIdx.x; j < c; j += BLOCK)
                gr[j] = T(0);
            continue;
        }
        const T lse = block_lse<BLOCK>(zr, c, smem);
        for (int64_t j = threadIdx.x; j < c; j += BLOCK)
            gr[j] = (exp_(zr[j] - lse) - (j == w.label ? T(1) : T(0))) * wt;
    }
}

} // namespace

// ---- launchers ----------------------------------------------------------------------------------

namespace {

// Partials of the CE mean for `rows` rows: at most one per row, at most kMaxPartials.
static int64_t ce_partials(int64_t rows) { return rows < kMaxPartials ? rows : kMaxPartials; }

template <typename T> struct ce_launch {
    const T *z;
    const int32_t *labels;
    const uint8_t *mask;
    int64_t rows, c;
    double *psum;
    long long *pcnt;
    loom__cuda_err *err;
    int tag;
    cudaStream_t st;
    unsigned *grid;
    template <int L, int E> loom_status go() const
    {
        *grid = row_grid<L>(rows, kMaxPartials);
        ce_rows<T, L, E><<<*grid, kRowThreads, 0, st>>>(z, labels, mask, rows, (int)c, psum, pcnt, err, tag);
        return LOOM_OK;
    }
};

template <typename T> struct ce_grad_launch {
    T *gz;
    const T *z;
    const int32_t *labels;
    const uint8_t *mask;
    const T *gout;
    const long long *count_dev;
    int64_t count_host, rows, c;
    loom__cuda_err *err;
    int tag;
    cudaStream_t st;
    template <int L, int E> loom_status go() const
    {
        ce_grad_rows<T, L, E><<<row_grid<L>(rows), kRowThreads, 0, st>>>(gz, z, labels, mask, gout, count_dev, count_host, rows,
                                                                          (int)c, err, tag);
        return LOOM_OK;
    }
};

// The CE ops' operands: logits [N, C] of the output's float dtype, labels [N] i32, mask [N] u8.
static loom_status ce_operands(const char *what, loom__value *const *src, int has_mask, loom_dtype dt, const loom__kctx *ctx)
{
    const loom__value *z = src[0], *l = src[1], *m = has_mask ? src[2] : NULL;
    if (z->ndim != 2 || z->dtype != dt)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: logits must be [N, C] %s", what, loom_dtype_name(dt));
    if (l->dtype != LOOM_I32 || loom__numel(l) != z->shape[0])
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: labels must be [N] i32", what);
    if (m && (m->dtype != LOOM_U8 || loom__numel(m) != z->shape[0]))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: the mask must be [N] u8", what);
    if (z->shape[1] > INT_MAX)
        return loom__kfail(ctx, LOOM_ERR_UNSUPPORTED, "%s: rows of %lld classes are too long", what, (long long)z->shape[1]);
    return LOOM_OK;
}

static loom_status need_workspace(const char *what, size_t bytes, const loom__kctx *ctx)
{
    if (bytes && (!ctx->cuda->workspace || ctx->cuda->workspace_bytes < bytes))
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: workspace of %zu bytes, %zu needed", what, ctx->cuda->workspace_bytes,
                           bytes);
    return LOOM_OK;
}

} // namespace

static loom_status cuda_softmax_ce(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const int has_mask = t->n_src == 3;
    loom_status s = ce_operands("softmax_cross_entropy", src, has_mask, out->dtype, ctx);
    if (s != LOOM_OK)
        return s;
    const int64_t rows = src[0]->shape[0], c = src[0]->shape[1];
    const int64_t parts = ce_partials(rows);
    s = need_workspace("softmax_cross_entropy", (size_t)parts * (sizeof(double) + sizeof(long long)), ctx);
    if (s != LOOM_OK)
        return s;
    double *psum = (double *)ctx->cuda->workspace;
    long long *pcnt = (long long *)(psum + parts);
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        cudaStream_t st = loom__cuda_stream(ctx);
        const T *z = (const T *)src[0]->data;
        const int32_t *labels = (const int32_t *)src[1]->data;
        const uint8_t *mask = has_mask ? (const uint8_t *)src[2]->data : nullptr;
        unsigned grid = 0;
        if (rows > 0) {
            if (c <= warp_max_c<T>()) {
                by_row_length<T>(c, ce_launch<T>{z, labels, mask, rows, c, psum, pcnt, ctx->cuda->err, ctx->cuda->tag, st, &grid});
            } else {
                grid = block_grid(rows, kMaxPartials);
                ce_block<T, kBlockThreads><<<grid, kBlockThreads, 0, st>>>(z, labels, mask, rows, c, psum, pcnt,
                                                                           ctx->cuda->err, ctx->cuda->tag);
            }
            LOOM__CUDA_CHECK_LAUNCH(ctx, "softmax_cross_entropy");
        }
        const long long whole = has_mask ? 0 : (long long)loom__ce_rows(rows, ctx);
        ce_finish<T><<<1, kBlockThreads, 0, st>>>((T *)out->data, psum, pcnt, (int)grid, whole);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "softmax_cross_entropy (mean)");
        return LOOM_OK;
    });
}

static loom_status cuda_softmax_ce_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                        const loom__kctx *ctx)
{
    const int has_mask = t->n_src == 4;
    loom_status s = ce_operands("softmax_cross_entropy_grad", src, has_mask, out->dtype, ctx);
    if (s != LOOM_OK)
        return s;
    const loom__value *gout = src[t->n_src - 1];
    if (gout->dtype != out->dtype || loom__numel(gout) != 1)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "softmax_cross_entropy_grad: gout must be a %s scalar",
                           loom_dtype_name(out->dtype));
    const int64_t rows = src[0]->shape[0], c = src[0]->shape[1];
    if (rows == 0)
        return LOOM_OK;
    // with a mask, the count of kept rows comes first: partials, then their total after them
    const unsigned cgrid = has_mask ? loom__cuda_grid(rows, kBlockThreads, kMaxPartials) : 0;
    s = need_workspace("softmax_cross_entropy_grad", has_mask ? (size_t)(cgrid + 1) * sizeof(long long) : 0, ctx);
    if (s != LOOM_OK)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        cudaStream_t st = loom__cuda_stream(ctx);
        T *gz = (T *)out->data;
        const T *z = (const T *)src[0]->data, *g = (const T *)gout->data;
        const int32_t *labels = (const int32_t *)src[1]->data;
        const uint8_t *mask = has_mask ? (const uint8_t *)src[2]->data : nullptr;
        const long long *count = nullptr;
        const int64_t count_rows = loom__ce_rows(rows, ctx); // unmasked: every row counts, or the whole logits'
        if (has_mask) {
            long long *pcnt = (long long *)ctx->cuda->workspace;
            count_kept<<<cgrid, kBlockThreads, 0, st>>>(mask, rows, pcnt);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "softmax_cross_entropy_grad (count)");
            count_finish<<<1, kBlockThreads, 0, st>>>(pcnt, (int)cgrid, pcnt + cgrid);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "softmax_cross_entropy_grad (count)");
            count = pcnt + cgrid;
        }
        if (c == 0) // no element to write, but kept rows still have their labels checked
            ce_grad_rows<T, 1, 1><<<row_grid<1>(rows), kRowThreads, 0, st>>>(gz, z, labels, mask, g, count, count_rows, rows, 0,
                                                                             ctx->cuda->err, ctx->cuda->tag);
        else if (c <= warp_max_c<T>())
            by_row_length<T>(c, ce_grad_launch<T>{gz, z, labels, mask, g, count, count_rows, rows, c, ctx->cuda->err, ctx->cuda->tag, st});
        else
            ce_grad_block<T, kBlockThreads><<<block_grid(rows), kBlockThreads, 0, st>>>(gz, z, labels, mask, g, count, count_rows,
                                                                                        rows, c, ctx->cuda->err,
                                                                                        ctx->cuda->tag);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "softmax_cross_entropy_grad");
        return LOOM_OK;
    });
}

// Scratch at the bounds: the CE mean's partials (a sum and a count per block), and the gradient's
// count of kept rows (a count per block and the total) when there is a mask.
static size_t ce_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *)
{
    (void)src_nnz;
    const int64_t rows = loom__dim_bound(t->graph, t->src[0]->shape.d[0]);
    return (size_t)ce_partials(rows) * (sizeof(double) + sizeof(long long));
}

static size_t ce_grad_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *)
{
    (void)src_nnz;
    if (t->n_src != 4)
        return 0;
    const int64_t rows = loom__dim_bound(t->graph, t->src[0]->shape.d[0]);
    return rows > 0 ? (size_t)(loom__cuda_grid(rows, kBlockThreads, kMaxPartials) + 1) * sizeof(long long) : 0;
}

extern "C" void loom__cuda_register_softmax_ce(loom__cuda_op *table)
{
    table[LOOM_OP_SOFTMAX_CE].run = cuda_softmax_ce;
    table[LOOM_OP_SOFTMAX_CE].workspace = ce_workspace;
    table[LOOM_OP_SOFTMAX_CE_GRAD].run = cuda_softmax_ce_grad;
    table[LOOM_OP_SOFTMAX_CE_GRAD].workspace = ce_grad_workspace;
}
