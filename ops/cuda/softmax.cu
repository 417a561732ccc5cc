// CUDA kernels of log_softmax, log_softmax_grad, softmax_cross_entropy and its gradient (see
// ops/cuda/cuda.h for the contract; the meaning is ops/softmax.c's).
//
// A row is the last axis. Short rows (the usual case: 7 or 16 classes) take a group of LANES
// threads per row, LANES the power of two that covers the row, up to a warp; rows of up to 1024
// (f32) or 512 (f64) elements take a warp each, every lane keeping its ELEMS elements in registers
// so that the row is read once. Longer rows take a block each and are read again per pass (max,
// sum, write). Reductions are shuffle and shared-memory trees of a fixed shape, so results are
// bitwise repeatable; no atomics but the error record's.
//
// Shuffles use the full warp mask, so every lane of a warp runs every reduction: the row loop is
// uniform per warp (it steps by rows of whole warps), and lanes whose row is past the end, masked
// out or labelled out of range load neutral values and discard their results.
//
// The cross-entropy mean is two-level: each block sums the losses (in double) and counts the rows
// of its grid-stride share in a fixed order and writes one partial to the workspace; a one-block
// kernel adds the partials in a fixed order and divides. The count is the number of rows the mask
// keeps (all when there is none). A kept row whose label is outside [0, C) cannot fail the op from
// the device: it is recorded in the device error record (which the executor reports once the
// step reaches the host, as the CPU kernel fails the op) and adds nothing, its gradient row 0.
// defines: loom__cuda_register_softmax
#include "ops/cuda/common.cuh"

#include <limits.h>
#include <math.h>

namespace {

constexpr unsigned kFull = 0xffffffffu;
constexpr int kRowThreads = 256;   // blocks of the group-per-row kernels
constexpr int kBlockThreads = 256; // blocks of the block-per-row kernels
constexpr int kMaxPartials = 1024; // blocks of the reductions that leave partials in the workspace

// ---- kernels ------------------------------------------------------------------------------------

__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }
__device__ __forceinline__ float log_(float v) { return logf(v); }
__device__ __forceinline__ double log_(double v) { return log(v); }

template <typename T> __device__ __forceinline__ T neg_inf() { return -(T)INFINITY; }
// As the CPU's max: a NaN never replaces the running max (the sum then turns NaN anyway).
template <typename T> __device__ __forceinline__ T max_(T a, T b) { return b > a ? b : a; }

// Butterfly reductions over aligned groups of LANES lanes; every lane gets the same result. Every
// lane of the warp runs them (kFull), shuffling at the warp's width.
template <int LANES, typename T> __device__ __forceinline__ T group_max(T v)
{
    return loom__cuda_group_reduce<LANES>(v, kFull, [](T a, T b) { return max_(a, b); }, 32);
}
template <int LANES, typename T> __device__ __forceinline__ T group_sum(T v)
{
    return loom__cuda_group_reduce<LANES>(v, kFull, [](T a, T b) { return a + b; }, 32);
}

// A block-wide reduction (BLOCK a multiple of 32, at most 1024) returned to every thread; smem
// holds 33 values. Called by every thread of the block.
template <int BLOCK, bool MAX, typename T> __device__ T block_reduce(T v, T *smem, T identity)
{
    constexpr int NW = BLOCK / 32;
    const int w = threadIdx.x >> 5, l = threadIdx.x & 31;
    v = MAX ? group_max<32>(v) : group_sum<32>(v);
    if (l == 0)
        smem[w] = v;
    __syncthreads();
    if (w == 0) {
        T u = l < NW ? smem[l] : identity;
        u = MAX ? group_max<32>(u) : group_sum<32>(u);
        if (l == 0)
            smem[32] = u;
    }
    __syncthreads();
    const T r = smem[32];
    __syncthreads(); // smem is free for the next call
    return r;
}

// log(sum(exp(row))) from a lane's share of a max and of sum(exp(v - max)): the CPU's rule, the
// max itself when it is infinite. s is computed whatever mx is (NaN when infinite, then unused),
// so that every lane runs the same shuffles.
template <typename T> __device__ __forceinline__ T lse_of(T mx, T s) { return isinf(mx) ? mx : mx + log_(s); }

// logsumexp of a row of c values xr[0 .. c) held by a group of LANES lanes, lane l keeping values
// l, l + LANES, ... in v[0 .. ELEMS) (-inf past c, and everywhere when the row is not read).
template <int LANES, int ELEMS, typename T>
__device__ __forceinline__ T row_lse(T (&v)[ELEMS], const T *xr, bool read, int lane, int c)
{
    T mx = neg_inf<T>();
#pragma unroll
    for (int e = 0; e < ELEMS; e++) {
        const int j = lane + e * LANES;
        v[e] = read && j < c ? xr[j] : neg_inf<T>();
        mx = max_(mx, v[e]);
    }
    mx = group_max<LANES>(mx);
    T s = 0;
#pragma unroll
    for (int e = 0; e < ELEMS; e++)
        if (lane + e * LANES < c)
            s += exp_(v[e] - mx);
    return lse_of(mx, group_sum<LANES>(s));
}

// logsumexp of a row xr[0 .. c) read by a block of BLOCK threads (twice: for the max, then the
// sum); called by every thread of the block.
template <int BLOCK, typename T> __device__ __forceinline__ T block_lse(const T *xr, int64_t c, T *smem)
{
    T mx = neg_inf<T>();
    for (int64_t j = threadIdx.x; j < c; j += BLOCK)
        mx = max_(mx, xr[j]);
    mx = block_reduce<BLOCK, true>(mx, smem, neg_inf<T>());
    T s = 0;
    for (int64_t j = threadIdx.x; j < c; j += BLOCK)
        s += exp_(xr[j] - mx);
    return lse_of(mx, block_reduce<BLOCK, false>(s, smem, T(0)));
}

// Indexing of the group-per-row kernels: which row of the warp's GROUPS rows a lane works on.
template <int LANES> struct rowmap {
    static constexpr int GROUPS = 32 / LANES;
    int lane, group;
    int64_t first, step;
    __device__ rowmap()
    {
        lane = threadIdx.x & (LANES - 1);
        group = (threadIdx.x & 31) / LANES;
        const int64_t warp = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5;
        first = warp * GROUPS;
        step = (((int64_t)gridDim.x * blockDim.x) >> 5) * GROUPS;
    }
};

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

// The longest row a warp keeps in registers: 32 lanes of 32 floats or 16 doubles.
template <typename T> constexpr int64_t warp_max_c() { return 32 * 32 * 4 / (int64_t)sizeof(T); }

// Calls f.template go<LANES, ELEMS>() for a row of c <= warp_max_c<T>() elements: the fewest lanes
// (a power of two) that cover the row, then a warp and the fewest elements a lane (a power of two,
// up to warp_max_c's) that do.
template <typename T, typename F> static loom_status by_row_length(int64_t c, const F &f)
{
    if (c <= 32)
        return loom__cuda_with_pow2<1, 32>(c, [&](auto lanes) { return f.template go<decltype(lanes)::value, 1>(); });
    return loom__cuda_with_pow2<2, warp_max_c<T>() / 32>(
        loom__cuda_ceil_div(c, 32), [&](auto elems) { return f.template go<32, decltype(elems)::value>(); });
}

// Blocks of kRowThreads for rows handled LANES lanes each, at most cap.
template <int LANES> static unsigned row_grid(int64_t rows, unsigned cap = 65535u * 4u)
{
    return loom__cuda_grid(rows, (kRowThreads / 32) * (32 / LANES), cap);
}

// A block per row, at most cap.
static unsigned block_grid(int64_t rows, unsigned cap = 65535u * 4u) { return loom__cuda_grid(rows, 1, cap); }

// Rows and row length of a value whose last axis is the softmax axis.
static void rows_of(const loom__value *v, int64_t *rows, int64_t *c)
{
    *c = v->ndim ? v->shape[v->ndim - 1] : 1;
    *rows = 1;
    for (int i = 0; i + 1 < v->ndim; i++)
        *rows *= v->shape[i];
}

// Partials of the CE mean for `rows` rows: at most one per row, at most kMaxPartials.
static int64_t ce_partials(int64_t rows) { return rows < kMaxPartials ? rows : kMaxPartials; }

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
static size_t ce_workspace(const loom_tensor *t, const int64_t *src_nnz)
{
    (void)src_nnz;
    const int64_t rows = loom__dim_bound(t->graph, t->src[0]->shape.d[0]);
    return (size_t)ce_partials(rows) * (sizeof(double) + sizeof(long long));
}

static size_t ce_grad_workspace(const loom_tensor *t, const int64_t *src_nnz)
{
    (void)src_nnz;
    if (t->n_src != 4)
        return 0;
    const int64_t rows = loom__dim_bound(t->graph, t->src[0]->shape.d[0]);
    return rows > 0 ? (size_t)(loom__cuda_grid(rows, kBlockThreads, kMaxPartials) + 1) * sizeof(long long) : 0;
}

extern "C" void loom__cuda_register_softmax(loom__cuda_op *table)
{
    table[LOOM_OP_LOG_SOFTMAX].run = cuda_log_softmax;
    table[LOOM_OP_LOG_SOFTMAX_GRAD].run = cuda_log_softmax_grad;
    table[LOOM_OP_SOFTMAX_CE].run = cuda_softmax_ce;
    table[LOOM_OP_SOFTMAX_CE].workspace = ce_workspace;
    table[LOOM_OP_SOFTMAX_CE_GRAD].run = cuda_softmax_ce_grad;
    table[LOOM_OP_SOFTMAX_CE_GRAD].workspace = ce_grad_workspace;
}
