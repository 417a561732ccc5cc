// CUDA kernels of batch and layer normalisation (see ops/cuda/cuda.h for the contract; the meaning
// is ops/norm.c's).
//
// Per-channel sums (batch norm's statistics and gradient sums, layer norm's gradient sums per
// normalised element) view their operand as [N, C, M] and add two terms per element in double,
// in chunks of rows (n, m) of a fixed shape: with a long spatial run (M >= 32) a block per
// (chunk, channel) reads along the run; else a block per (chunk, 32 channels) reads across the
// channels, 8 rows at a time. A block's sums go to the workspace; a last kernel adds a channel's
// chunks in order. Layer norm's rows take a warp each, reduced by shuffles. Every reduction has a
// shape fixed by the operands' shapes alone and no atomics, so each run gives the same bits.
// Batch norm's gradient sums add gout and gout x, which the last kernel turns into gout xhat by the
// channel's moments (sum gout xhat = rstd (sum gout x - mean sum gout), in double). Batch norm's
// elementwise kernels compute the coefficients per channel (mean, rstd, ...) they need, in double
// with the CPU kernels' formulas (ops/shared/operands.h): each block into shared memory where the
// channels are at most a block's threads, else a kernel before them into the workspace.
// defines: loom__cuda_register_norm
#include "ops/cuda/common.cuh"
#include "ops/shared/operands.h"

#include <math.h>

namespace {

constexpr int kThreads = 256;
constexpr int kTileC = 32, kTileR = kThreads / kTileC; // the channel-across kernel's block
constexpr int64_t kWantBlocks = 1024;                   // blocks a reduction wants in flight
constexpr unsigned kFull = 0xffffffffu;

// ---- the per-channel reduction ------------------------------------------------------------------

// x's channel sums over rows (n, m): the terms of element e = (n C + c) M + m.
template <typename T> struct stats_terms {
    const T *x;
    __device__ __forceinline__ void operator()(int64_t, int64_t, int64_t e, double &a, double &b) const
    {
        const double v = (double)x[e];
        a += v;
        b += v * v;
    }
};

// gout and gout xhat, xhat from k: (mean, rstd) per channel (batch norm) or per row n (layer norm).
template <typename T, bool PER_ROW> struct grad_terms {
    const T *gy, *x;
    const double *k;
    __device__ __forceinline__ void operator()(int64_t n, int64_t c, int64_t e, double &a, double &b) const
    {
        const double *kk = k + 2 * (PER_ROW ? n : c), g = (double)gy[e];
        a += g;
        b += g * (((double)x[e] - kk[0]) * kk[1]);
    }
};

// Batch norm's gradient sums before the moments: gout and gout x, gout read where y > 0 only when
// y (a ReLU's output) is given.
template <typename T> struct bn_grad_terms {
    const T *gy, *x, *y;
    __device__ __forceinline__ void operator()(int64_t, int64_t, int64_t e, double &a, double &b) const
    {
        const double g = y && !(y[e] > 0) ? 0.0 : (double)gy[e];
        a += g;
        b += g * (double)x[e];
    }
};

// The rows of chunk `chunk` of rows rows.
__device__ __forceinline__ void chunk_rows(int64_t chunk, int64_t per, int64_t rows, int64_t *r0, int64_t *r1)
{
    *r0 = chunk * per;
    *r1 = *r0 + per < rows ? *r0 + per : rows;
}

// Long runs: block (chunk, c); thread t adds rows r0 + t, r0 + t + kThreads, ...; then a tree.
// Rows and elements are indexed in U (32-bit wherever the operand's indices fit).
template <typename U, typename F>
__global__ void __launch_bounds__(kThreads)
    chan_sums_along(F f, loom__chan v, int64_t per, int64_t nchunks, double *__restrict__ part)
{
    __shared__ double sa[kThreads], sb[kThreads];
    const int64_t rows = v.n * v.m;
    const U m_ = (U)v.m, c_ = (U)v.c;
    for (int64_t u = blockIdx.x; u < nchunks * v.c; u += gridDim.x) {
        const int64_t c = u % v.c, chunk = u / v.c;
        int64_t r0, r1;
        chunk_rows(chunk, per, rows, &r0, &r1);
        double a = 0, b = 0;
        for (U r = (U)r0 + threadIdx.x; r < (U)r1; r += kThreads) {
            const U n = r / m_;
            f((int64_t)n, c, (int64_t)((n * c_ + (U)c) * m_ + (r - n * m_)), a, b);
        }
        sa[threadIdx.x] = a;
        sb[threadIdx.x] = b;
        __syncthreads();
        for (int s = kThreads / 2; s > 0; s >>= 1) {
            if ((int)threadIdx.x < s) {
                sa[threadIdx.x] += sa[threadIdx.x + s];
                sb[threadIdx.x] += sb[threadIdx.x + s];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            part[(chunk * v.c + c) * 2] = sa[0];
            part[(chunk * v.c + c) * 2 + 1] = sb[0];
        }
        __syncthreads();
    }
}

// Short runs: block (chunk, tile of kTileC channels); thread (tx, ty) adds rows r0 + ty, r0 + ty
// + kTileR, ... of channel tile kTileC + tx (neighbouring threads, neighbouring channels); then
// each channel's kTileR sums in ty order.
template <typename F>
__global__ void __launch_bounds__(kThreads)
    chan_sums_across(F f, loom__chan v, int64_t per, int64_t nchunks, double *__restrict__ part)
{
    __shared__ double sa[kTileR][kTileC], sb[kTileR][kTileC];
    const int tx = threadIdx.x % kTileC, ty = threadIdx.x / kTileC;
    const int64_t rows = v.n * v.m, ntile = (v.c + kTileC - 1) / kTileC;
    for (int64_t u = blockIdx.x; u < nchunks * ntile; u += gridDim.x) {
        const int64_t tile = u % ntile, chunk = u / ntile, c = tile * kTileC + tx;
        int64_t r0, r1;
        chunk_rows(chunk, per, rows, &r0, &r1);
        double a = 0, b = 0;
        if (c < v.c)
            for (int64_t r = r0 + ty; r < r1; r += kTileR) {
                const int64_t n = r / v.m, m = r % v.m;
                f(n, c, (n * v.c + c) * v.m + m, a, b);
            }
        sa[ty][tx] = a;
        sb[ty][tx] = b;
        __syncthreads();
        if (ty == 0 && c < v.c) {
            double s = 0, q = 0;
            for (int k = 0; k < kTileR; k++) {
                s += sa[k][tx];
                q += sb[k][tx];
            }
            part[(chunk * v.c + c) * 2] = s;
            part[(chunk * v.c + c) * 2 + 1] = q;
        }
        __syncthreads();
    }
}

__device__ __forceinline__ double warp_sum(double v)
{
    return loom__cuda_group_reduce<32>(v, kFull, [](double a, double b) { return a + b; });
}

// Channel c's chunks added by a warp, lane l taking chunks l, l + 32, ... in order, then the lanes
// by a fixed tree: (sum, sum, count) f64 [C, 3] for the statistics (count the values of a channel),
// or the two sums as T [C, 2]; with st (batch norm's statistics), the second sum, of gout x, made
// that of gout xhat by the channel's moments.
template <typename T, bool STATS>
__global__ void chan_sums_finish(const double *__restrict__ part, int64_t nchunks, loom__chan v, void *out,
                                 const double *__restrict__ st, double eps)
{
    const int lane = threadIdx.x % 32;
    for (int64_t c = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32; c < v.c; c += (int64_t)gridDim.x * blockDim.x / 32) {
        double s = 0, q = 0;
        for (int64_t k = lane; k < nchunks; k += 32) {
            s += part[(k * v.c + c) * 2];
            q += part[(k * v.c + c) * 2 + 1];
        }
        s = warp_sum(s);
        q = warp_sum(q);
        if (lane)
            continue;
        if (st) {
            double mean, rstd;
            loom__bn_moments(st + 3 * c, eps, &mean, &rstd);
            q = rstd * (q - mean * s);
        }
        if (STATS) {
            double *o = (double *)out + 3 * c;
            o[0] = s;
            o[1] = q;
            o[2] = (double)(v.n * v.m);
        } else {
            T *o = (T *)out + 2 * c;
            o[0] = (T)s;
            o[1] = (T)q;
        }
    }
}

// Chunks of a channel's rows: enough blocks to fill the GPU, chunks of at least min_rows. Grows
// with the rows, so the count at the bounds of the dims is the most a run takes.
int64_t chunks_of(int64_t rows, int64_t units, int64_t min_rows)
{
    const int64_t want = loom__cuda_ceil_div(kWantBlocks, units > 0 ? units : 1), most = rows / min_rows;
    return want < most ? (want > 1 ? want : 1) : (most > 1 ? most : 1);
}

bool along(const loom__chan &v) { return v.m >= 32; }

int64_t chunks_for(const loom__chan &v)
{
    return along(v) ? chunks_of(v.n * v.m, v.c, 4 * kThreads) : chunks_of(v.n * v.m, loom__cuda_ceil_div(v.c, kTileC), 8 * kTileR);
}

// The partial sums' doubles a run over v takes.
int64_t part_doubles(const loom__chan &v) { return chunks_for(v) * v.c * 2; }

// The most partial sums any v of c channels takes, in either layout: fewer than kWantBlocks
// blocks' worth of chunks (a block covering kTileC channels at most) beside one chunk of each
// channel. A bound on the channels alone, so it holds for a device's part of them too.
int64_t part_doubles_most(int64_t c) { return 2 * (kWantBlocks * kTileC + c); }

// Sums of f over v into out (STATS: f64 [C, 3], else T [C, 2]) through part (part_doubles(v)); st
// and eps: chan_sums_finish's.
template <typename T, bool STATS, typename F>
loom_status chan_sums(const F &f, const loom__chan &v, double *part, void *out, const char *what, const loom__kctx *ctx,
                      const double *st = nullptr, double eps = 0)
{
    cudaStream_t stream = loom__cuda_stream(ctx);
    const int64_t nchunks = chunks_for(v), per = loom__cuda_ceil_div(v.n * v.m, nchunks);
    if (v.c == 0)
        return LOOM_OK;
    if (along(v))
        loom__cuda_with_index(v.n * v.c * v.m, [&](auto u) {
            chan_sums_along<decltype(u)><<<loom__cuda_grid(nchunks * v.c, 1), kThreads, 0, stream>>>(f, v, per, nchunks, part);
            return LOOM_OK;
        });
    else
        chan_sums_across<<<loom__cuda_grid(nchunks * loom__cuda_ceil_div(v.c, kTileC), 1), kThreads, 0, stream>>>(
            f, v, per, nchunks, part);
    LOOM__CUDA_CHECK_LAUNCH(ctx, what);
    chan_sums_finish<T, STATS><<<loom__cuda_grid(32 * v.c, kThreads), kThreads, 0, stream>>>(part, nchunks, v, out, st, eps);
    LOOM__CUDA_CHECK_LAUNCH(ctx, what);
    return LOOM_OK;
}

// ---- batch norm's elementwise kernels and coefficients ------------------------------------------

enum coef_kind { FWD_TRAIN, FWD_EVAL, DX };

// What a channel's coefficients are made of: the batch statistics st, or (FWD_EVAL) the running
// ones rm and rv; the weight w; DX: the gradient sums.
template <typename T> struct coef_in {
    int kind;
    const double *st;
    const T *rm, *rv, *w, *sums;
    double eps;
};

__host__ __device__ constexpr int coefs_per(int kind) { return kind == DX ? 5 : 2; }

// Channel c's coefficients into o: FWD_TRAIN, FWD_EVAL: (mean, weight rstd); DX: (mean, rstd,
// weight rstd, sum gout / n, sum gout xhat / n).
template <typename T> __device__ void coef_of(const coef_in<T> &in, int64_t c, double *o)
{
    double mean, rstd;
    if (in.kind == FWD_EVAL) {
        mean = (double)in.rm[c];
        rstd = 1 / sqrt((double)in.rv[c] + in.eps);
    } else {
        loom__bn_moments(in.st + 3 * c, in.eps, &mean, &rstd);
    }
    o[0] = mean;
    if (in.kind != DX) {
        o[1] = (double)in.w[c] * rstd;
        return;
    }
    const double n = in.st[3 * c + 2];
    o[1] = rstd;
    o[2] = (double)in.w[c] * rstd;
    o[3] = (double)in.sums[2 * c] / n;
    o[4] = (double)in.sums[2 * c + 1] / n;
}

// Every channel's coefficients into k, for the elementwise kernels of many channels.
template <typename T> __global__ void bn_coefs(double *__restrict__ k, coef_in<T> in, int64_t C)
{
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < C; c += (int64_t)gridDim.x * blockDim.x)
        coef_of(in, c, k + coefs_per(in.kind) * c);
}

// The coefficients an elementwise block reads: with k NULL (C at most the block's threads), its own,
// computed into shared memory; else bn_coefs's in k. Every thread of the block calls it.
template <typename T> __device__ const double *block_coefs(const coef_in<T> &in, const double *k, int64_t C)
{
    extern __shared__ double sk[];
    if (k)
        return k;
    for (int64_t c = threadIdx.x; c < C; c += blockDim.x)
        coef_of(in, c, sk + coefs_per(in.kind) * c);
    __syncthreads();
    return sk;
}

// y = (x - mean) weight rstd + bias [+ res], then relu (RELU).
template <typename T, typename U, bool RELU>
__global__ void bn_forward(T *__restrict__ y, const T *__restrict__ x, const T *__restrict__ bias, const T *__restrict__ res,
                           coef_in<T> in, const double *__restrict__ kg, U m, U C, U n)
{
    const double *k = block_coefs(in, kg, C);
    for (U e = (U)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (U)gridDim.x * blockDim.x) {
        const U c = e / m % C;
        double v = ((double)x[e] - k[2 * c]) * k[2 * c + 1] + (double)bias[c];
        if (RELU)
            v = res ? v + (double)res[e] : v;
        y[e] = (T)(RELU && !(v > 0) ? 0.0 : v);
    }
}

// The gradient of x, gout read where y > 0 only when y is given.
template <typename T, typename U>
__global__ void bn_dx(T *__restrict__ dx, const T *__restrict__ gy, const T *__restrict__ x, const T *__restrict__ y,
                      coef_in<T> in, const double *__restrict__ kg, U m, U C, U n)
{
    const double *k = block_coefs(in, kg, C);
    for (U e = (U)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (U)gridDim.x * blockDim.x) {
        const double *kk = k + 5 * (e / m % C);
        const double xh = ((double)x[e] - kk[0]) * kk[1], g = y && !(y[e] > 0) ? 0.0 : (double)gy[e];
        dx[e] = (T)(kk[2] * (g - kk[3] - xh * kk[4]));
    }
}

// As the optimizers': once the device has recorded a failure, the step's statistics may carry it.
__device__ __forceinline__ bool failed(const loom__cuda_err *err) { return err && err->code != LOOM__CUDA_ERR_NONE; }

template <typename T>
__global__ void running_update(T *__restrict__ r, const double *__restrict__ st, int64_t C, int var, double momentum,
                               const loom__cuda_err *err)
{
    if (failed(err))
        return;
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < C; c += (int64_t)gridDim.x * blockDim.x)
        r[c] = (T)loom__bn_running((double)r[c], st + 3 * c, var, momentum);
}

// ---- layer norm: a warp per row ------------------------------------------------------------------

// The mean and rstd of row x[0 .. f) on every lane of the warp: two passes.
template <typename T> __device__ void row_moments(const T *x, int64_t f, double eps, double *mean, double *rstd)
{
    const int lane = threadIdx.x % 32;
    double s = 0, q = 0;
    for (int64_t i = lane; i < f; i += 32)
        s += (double)x[i];
    const double m = warp_sum(s) / (double)f;
    for (int64_t i = lane; i < f; i += 32)
        q += ((double)x[i] - m) * ((double)x[i] - m);
    *mean = m;
    *rstd = 1 / sqrt(warp_sum(q) / (double)f + eps);
}

// Row loops step by whole warps, so every lane of a warp runs the same reductions.
#define ROWS_OF_WARPS(r, rows)                                                                                  \
    for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32; r < (rows);                          \
         r += (int64_t)gridDim.x * blockDim.x / 32)

template <typename T>
__global__ void ln_forward(T *__restrict__ y, const T *__restrict__ x, const T *__restrict__ w, const T *__restrict__ b,
                           int64_t rows, int64_t f, double eps)
{
    const int lane = threadIdx.x % 32;
    ROWS_OF_WARPS(r, rows)
    {
        const T *xr = x + r * f;
        double mean, rstd;
        row_moments(xr, f, eps, &mean, &rstd);
        for (int64_t i = lane; i < f; i += 32)
            y[r * f + i] = (T)(((double)xr[i] - mean) * rstd * (double)w[i] + (double)b[i]);
    }
}

template <typename T>
__global__ void ln_dx(T *__restrict__ dx, const T *__restrict__ gy, const T *__restrict__ x, const T *__restrict__ w,
                      int64_t rows, int64_t f, double eps)
{
    const int lane = threadIdx.x % 32;
    ROWS_OF_WARPS(r, rows)
    {
        const T *xr = x + r * f, *gr = gy + r * f;
        double mean, rstd, sg = 0, sgx = 0;
        row_moments(xr, f, eps, &mean, &rstd);
        for (int64_t i = lane; i < f; i += 32) {
            const double g = (double)gr[i] * (double)w[i];
            sg += g;
            sgx += g * (((double)xr[i] - mean) * rstd);
        }
        sg = warp_sum(sg);
        sgx = warp_sum(sgx);
        for (int64_t i = lane; i < f; i += 32) {
            const double g = (double)gr[i] * (double)w[i], xh = ((double)xr[i] - mean) * rstd;
            dx[r * f + i] = (T)(rstd * (g - sg / (double)f - xh * sgx / (double)f));
        }
    }
}

template <typename T> __global__ void ln_rows(double *__restrict__ k, const T *__restrict__ x, int64_t rows, int64_t f, double eps)
{
    const int lane = threadIdx.x % 32;
    ROWS_OF_WARPS(r, rows)
    {
        double mean, rstd;
        row_moments(x + r * f, f, eps, &mean, &rstd);
        if (lane == 0) {
            k[2 * r] = mean;
            k[2 * r + 1] = rstd;
        }
    }
}

#undef ROWS_OF_WARPS

// ---- launchers ----------------------------------------------------------------------------------

// Carves n doubles off ws, or fails naming what.
loom_status take(loom__cuda_carver &ws, int64_t n, double **p, const char *what, const loom__kctx *ctx)
{
    *p = ws.take<double>(n > 0 ? n : 1);
    if (*p)
        return LOOM_OK;
    return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: workspace of %zu bytes, %lld doubles more needed", what,
                       ctx->cuda->workspace_bytes, (long long)n);
}

// Every source of t but the statistics (index st, -1: none) is of t's dtype.
loom_status same_dtype(const loom_tensor *t, loom__value *const *src, loom_dtype dt, int st, const loom__kctx *ctx)
{
    for (int i = 0; i < t->n_src; i++)
        if (i != st && src[i]->dtype != dt)
            return loom__kfail(ctx, LOOM_ERR_DTYPE, "%s: operand %d is %s, expected %s", loom__op_def(t->op)->name, i + 1,
                               loom_dtype_name(src[i]->dtype), loom_dtype_name(dt));
    return LOOM_OK;
}

loom_status bn_stats_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    loom__chan v;
    loom_status s = loom__bn_operands(&v, src[0], out, ctx);
    if (s != LOOM_OK)
        return s;
    if (!ctx->training) // batch_norm reads the running statistics
        return loom__cuda_memset(ctx, out->data, 0, (size_t)(3 * v.c) * sizeof(double), "batch_norm_stats");
    if ((s = loom__bn_batch_check(src[0], ctx)) != LOOM_OK)
        return s;
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    double *part;
    if ((s = take(ws, part_doubles(v), &part, "batch_norm_stats", ctx)) != LOOM_OK)
        return s;
    return loom__cuda_float_dispatch(src[0]->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        return chan_sums<T, true>(stats_terms<T>{(const T *)src[0]->data}, v, part, out->data, "batch_norm_stats", ctx);
    });
}

loom_status bn_sums_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    loom__chan v;
    loom_status s = loom__bn_operands(&v, src[1], src[2], ctx);
    if (s == LOOM_OK)
        s = same_dtype(t, src, out->dtype, 2, ctx);
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    double *part = nullptr;
    if (s == LOOM_OK)
        s = take(ws, part_doubles(v), &part, "batch_norm_grad_sums", ctx);
    if (s != LOOM_OK || v.c == 0)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        const bn_grad_terms<T> f{(const T *)src[0]->data, (const T *)src[1]->data, t->n_src > 3 ? (const T *)src[3]->data : nullptr};
        return chan_sums<T, false>(f, v, part, out->data, "batch_norm_grad_sums", ctx, (const double *)src[2]->data, t->a.f[0]);
    });
}

// Whether an elementwise kernel over C channels computes their coefficients in its blocks.
bool coefs_in_blocks(int64_t C) { return C <= kThreads; }

// batch_norm(x, stats, running_mean, running_var, weight, bias), batch_norm_relu(the same[,
// residual]) and batch_norm_grad(gout, x, stats, weight, sums[, y]): a thread per element, the
// channels' coefficients computed by each block, or by a kernel before (many channels).
loom_status bn_map_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const bool dx = t->op == LOOM_OP_BATCH_NORM_GRAD, relu = t->op == LOOM_OP_BN_RELU;
    const int si = dx ? 2 : 1; // the statistics; x is just before them
    const char *what = loom__op_def(t->op)->name;
    loom__chan v;
    loom_status s = loom__bn_operands(&v, src[si - 1], src[si], ctx);
    if (s == LOOM_OK)
        s = same_dtype(t, src, out->dtype, si, ctx);
    const int kind = dx ? DX : ctx->training ? FWD_TRAIN : FWD_EVAL;
    const bool in_blocks = coefs_in_blocks(v.c);
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    double *k = nullptr;
    if (s == LOOM_OK && !in_blocks)
        s = take(ws, coefs_per(kind) * v.c, &k, what, ctx);
    const int64_t n = loom__cuda_dense_numel(out);
    if (s != LOOM_OK || n == 0)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        cudaStream_t st = loom__cuda_stream(ctx);
        const T *a = (const T *)src[0]->data, *b = (const T *)src[dx ? 1 : 5]->data;
        const T *extra = t->n_src > (dx ? 5 : 6) ? (const T *)src[dx ? 5 : 6]->data : nullptr; // y, or the residual
        const coef_in<T> in = {kind,
                               (const double *)src[si]->data,
                               dx ? nullptr : (const T *)src[2]->data,
                               dx ? nullptr : (const T *)src[3]->data,
                               (const T *)src[dx ? 3 : 4]->data,
                               dx ? (const T *)src[4]->data : nullptr,
                               t->a.f[0]};
        if (!in_blocks) {
            bn_coefs<T><<<loom__cuda_grid(v.c, kThreads), kThreads, 0, st>>>(k, in, v.c);
            LOOM__CUDA_CHECK_LAUNCH(ctx, what);
        }
        const size_t shared = in_blocks ? (size_t)(coefs_per(kind) * v.c) * sizeof(double) : 0;
        return loom__cuda_with_index(n, [&](auto u) {
            using U = decltype(u);
            const unsigned grid = loom__cuda_grid(n, kThreads);
            T *o = (T *)out->data;
            if (dx)
                bn_dx<T, U><<<grid, kThreads, shared, st>>>(o, a, b, extra, in, k, (U)v.m, (U)v.c, (U)n);
            else if (relu)
                bn_forward<T, U, true><<<grid, kThreads, shared, st>>>(o, a, b, extra, in, k, (U)v.m, (U)v.c, (U)n);
            else
                bn_forward<T, U, false><<<grid, kThreads, shared, st>>>(o, a, b, nullptr, in, k, (U)v.m, (U)v.c, (U)n);
            LOOM__CUDA_CHECK_LAUNCH(ctx, what);
            return LOOM_OK;
        });
    });
}

loom_status running_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)out;
    const loom__value *r = src[0], *st = src[1];
    if (r->ndim != 1 || st->dtype != LOOM_F64 || st->ndim != 2 || st->shape[0] != r->shape[0] || st->shape[1] != 3)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "running_stats_update: running statistics of %lld channels, batch statistics "
                                                "of %lld (internal error)",
                           (long long)(r->ndim ? r->shape[0] : 0), (long long)(st->ndim ? st->shape[0] : 0));
    const int64_t C = r->shape[0];
    if (C == 0)
        return LOOM_OK;
    return loom__cuda_float_dispatch(r->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        running_update<T><<<loom__cuda_grid(C, kThreads), kThreads, 0, loom__cuda_stream(ctx)>>>(
            (T *)r->data, (const double *)st->data, C, (int)t->a.i[0], t->a.f[0], ctx->cuda->err);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "running_stats_update");
        return LOOM_OK;
    });
}

// Rows and row length of t's x (source xi); rows of warps for the grid.
loom_status ln_shape(const loom_tensor *t, loom__value *const *src, int xi, loom_dtype dt, int64_t *rows, int64_t *f,
                     const loom__kctx *ctx)
{
    loom_status s = loom__ln_rows(src[xi], (int)t->a.i[0], rows, f, ctx);
    return s == LOOM_OK ? same_dtype(t, src, dt, -1, ctx) : s;
}

unsigned warp_grid(int64_t rows) { return loom__cuda_grid(rows * 32, kThreads); }

// layer_norm(x, weight, bias) and layer_norm_grad(gout, x, weight): a warp per row.
loom_status ln_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const bool fwd = t->op == LOOM_OP_LAYER_NORM;
    int64_t rows, f;
    loom_status s = ln_shape(t, src, fwd ? 0 : 1, out->dtype, &rows, &f, ctx);
    if (s != LOOM_OK || rows * f == 0)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        const T *a = (const T *)src[0]->data, *b = (const T *)src[1]->data, *c = (const T *)src[2]->data;
        if (fwd)
            ln_forward<T><<<warp_grid(rows), kThreads, 0, loom__cuda_stream(ctx)>>>((T *)out->data, a, b, c, rows, f, t->a.f[0]);
        else
            ln_dx<T><<<warp_grid(rows), kThreads, 0, loom__cuda_stream(ctx)>>>((T *)out->data, a, b, c, rows, f, t->a.f[0]);
        LOOM__CUDA_CHECK_LAUNCH(ctx, loom__op_def(t->op)->name);
        return LOOM_OK;
    });
}

loom_status ln_sums_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t rows, f;
    loom_status s = ln_shape(t, src, 1, out->dtype, &rows, &f, ctx);
    if (s != LOOM_OK || f == 0)
        return s;
    const loom__chan v = {rows, f, 1};
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    double *k = nullptr, *part = nullptr;
    if ((s = take(ws, 2 * rows, &k, "layer_norm_grad_sums", ctx)) != LOOM_OK ||
        (s = take(ws, part_doubles(v), &part, "layer_norm_grad_sums", ctx)) != LOOM_OK)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        if (rows > 0) {
            ln_rows<T><<<warp_grid(rows), kThreads, 0, loom__cuda_stream(ctx)>>>(k, (const T *)src[1]->data, rows, f,
                                                                                 t->a.f[0]);
            LOOM__CUDA_CHECK_LAUNCH(ctx, "layer_norm_grad_sums (rows)");
        }
        const grad_terms<T, true> g{(const T *)src[0]->data, (const T *)src[1]->data, k};
        return chan_sums<T, false>(g, v, part, out->data, "layer_norm_grad_sums", ctx);
    });
}

// ---- workspace queries, at the bounds of the dims -------------------------------------------------

int64_t bound(const loom_tensor *t, int i) { return loom__dim_bound(t->graph, t->shape.d[i]); }

// Batch norm's x (source xi) as [N, C, M] at the bounds.
loom__chan chan_bound(const loom_tensor *t, int xi)
{
    const loom_tensor *x = t->src[xi];
    loom__chan v = {bound(x, 0), bound(x, 1), 1};
    for (int i = 2; i < x->shape.ndim; i++)
        v.m *= bound(x, i);
    return v;
}

// n doubles carved after others, with the carver's alignment.
size_t doubles(int64_t n) { return (size_t)(n > 0 ? n : 1) * sizeof(double) + 256; }

size_t bn_stats_ws(const loom_tensor *t, const int64_t *nnz, const loom__cuda_kctx *)
{
    (void)nnz;
    return doubles(part_doubles_most(chan_bound(t, 0).c));
}

// The channels are static: a device's part of them (a channel split) never takes more.
size_t bn_map_ws(const loom_tensor *t, const int64_t *nnz, const loom__cuda_kctx *)
{
    (void)nnz;
    const bool dx = t->op == LOOM_OP_BATCH_NORM_GRAD;
    const int64_t c = chan_bound(t, dx ? 1 : 0).c;
    return coefs_in_blocks(c) ? 0 : doubles(coefs_per(dx ? DX : FWD_TRAIN) * c);
}

size_t bn_sums_ws(const loom_tensor *t, const int64_t *nnz, const loom__cuda_kctx *)
{
    (void)nnz;
    return doubles(part_doubles_most(chan_bound(t, 1).c));
}

size_t ln_sums_ws(const loom_tensor *t, const int64_t *nnz, const loom__cuda_kctx *)
{
    (void)nnz;
    const loom_tensor *x = t->src[1];
    const int axes = (int)t->a.i[0];
    loom__chan v = {1, 1, 1};
    for (int i = 0; i < x->shape.ndim; i++)
        *(i < x->shape.ndim - axes ? &v.n : &v.c) *= bound(x, i);
    return doubles(2 * v.n) + doubles(part_doubles_most(v.c));
}

} // namespace

extern "C" void loom__cuda_register_norm(loom__cuda_op *table)
{
    table[LOOM_OP_BN_STATS] = loom__cuda_op{bn_stats_run, bn_stats_ws};
    table[LOOM_OP_BATCH_NORM] = loom__cuda_op{bn_map_run, bn_map_ws};
    table[LOOM_OP_BN_RELU] = loom__cuda_op{bn_map_run, bn_map_ws};
    table[LOOM_OP_BN_GRAD_SUMS] = loom__cuda_op{bn_sums_run, bn_sums_ws};
    table[LOOM_OP_BATCH_NORM_GRAD] = loom__cuda_op{bn_map_run, bn_map_ws};
    table[LOOM_OP_RUNNING_STATS_UPDATE] = loom__cuda_op{running_run, nullptr};
    table[LOOM_OP_LAYER_NORM] = loom__cuda_op{ln_run, nullptr};
    table[LOOM_OP_LAYER_NORM_GRAD] = loom__cuda_op{ln_run, nullptr};
    table[LOOM_OP_LN_GRAD_SUMS] = loom__cuda_op{ln_sums_run, ln_sums_ws};
}
