// CUDA kernels of bce_with_logits and its gradient (see ops/cuda/cuda.h for the contract; the
// meaning is ops/loss.c's).
//
// The mean is two-level and of a fixed shape, so it repeats bit for bit: each block sums (in
// double) its grid-stride share of the elements and writes one partial to the workspace; a
// one-block kernel adds the partials in a fixed order and divides by the count. The grid depends
// on the element count alone.
// defines: loom__cuda_register_loss
#include "ops/cuda/common.cuh"

#include <math.h>

namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxPartials = 1024;

// ---- kernels ------------------------------------------------------------------------------------

template <typename T> __device__ __forceinline__ double bce_term(T z, T y, double w)
{
    const double zi = (double)z, yi = (double)y, l = 1 + (w - 1) * yi;
    return (1 - yi) * zi + l * (log1p(exp(-fabs(zi))) + (zi < 0 ? -zi : 0));
}

// A block's sum of v, in a fixed tree; returned to thread 0.
__device__ double block_sum(double v, double *smem)
{
    smem[threadIdx.x] = v;
    __syncthreads();
    for (int s = kThreads / 2; s > 0; s >>= 1) {
        if ((int)threadIdx.x < s)
            smem[threadIdx.x] += smem[threadIdx.x + s];
        __syncthreads();
    }
    return smem[0];
}

template <typename T> __global__ void bce_partials(const T *z, const T *y, int64_t n, double w, double *psum)
{
    __shared__ double smem[kThreads];
    double s = 0;
    for (int64_t i = (int64_t)blockIdx.x * kThreads + threadIdx.x; i < n; i += (int64_t)gridDim.x * kThreads)
        s += bce_term(z[i], y[i], w);
    s = block_sum(s, smem);
    if (threadIdx.x == 0)
        psum[blockIdx.x] = s;
}

template <typename T> __global__ void bce_finish(T *out, const double *psum, int nparts, long long count)
{
    __shared__ double smem[kThreads];
    double s = 0;
    for (int i = threadIdx.x; i < nparts; i += kThreads)
        s += psum[i];
    s = block_sum(s, smem);
    if (threadIdx.x == 0)
        out[0] = (T)(count ? s / (double)count : 0.0);
}

template <typename T>
__global__ void bce_grad(T *gz, const T *z, const T *y, const T *gout, int64_t n, double w, long long count)
{
    const double scale = count ? (double)gout[0] / (double)count : 0.0;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const double zi = (double)z[i], yi = (double)y[i], l = 1 + (w - 1) * yi, e = exp(-fabs(zi));
        const double sneg = zi >= 0 ? e / (1 + e) : 1 / (1 + e);
        gz[i] = (T)(((1 - yi) - l * sneg) * scale);
    }
}

// ---- launchers ----------------------------------------------------------------------------------

static unsigned partials(int64_t n) { return loom__cuda_grid(n, kThreads, kMaxPartials); }

static loom_status operands(const char *what, loom__value *const *src, loom_dtype dt, const loom__kctx *ctx)
{
    if (src[0]->dtype != dt || src[1]->dtype != dt || loom__numel(src[0]) != loom__numel(src[1]))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: logits and targets must be %s of one shape", what, loom_dtype_name(dt));
    return LOOM_OK;
}

} // namespace

static loom_status cuda_bce(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    loom_status s = operands("bce_with_logits", src, out->dtype, ctx);
    if (s != LOOM_OK)
        return s;
    const int64_t n = loom__numel(src[0]);
    const unsigned grid = partials(n);
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    double *psum = ws.take<double>((size_t)grid);
    if (!psum)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "bce_with_logits: workspace of %zu bytes, %zu needed",
                           ctx->cuda->workspace_bytes, (size_t)grid * sizeof(double));
    const long long count = (long long)loom__bce_count(src[0], ctx);
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        cudaStream_t st = loom__cuda_stream(ctx);
        bce_partials<T><<<grid, kThreads, 0, st>>>((const T *)src[0]->data, (const T *)src[1]->data, n, t->a.f[0], psum);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "bce_with_logits");
        bce_finish<T><<<1, kThreads, 0, st>>>((T *)out->data, psum, (int)grid, count);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "bce_with_logits (mean)");
        return LOOM_OK;
    });
}

static loom_status cuda_bce_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    loom_status s = operands("bce_with_logits_grad", src, out->dtype, ctx);
    if (s != LOOM_OK)
        return s;
    if (src[2]->dtype != out->dtype || loom__numel(src[2]) != 1)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "bce_with_logits_grad: gout must be a %s scalar", loom_dtype_name(out->dtype));
    const int64_t n = loom__numel(src[0]);
    if (n == 0)
        return LOOM_OK;
    const long long count = (long long)loom__bce_count(src[0], ctx);
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        bce_grad<T><<<loom__cuda_grid(n, kThreads), kThreads, 0, loom__cuda_stream(ctx)>>>(
            (T *)out->data, (const T *)src[0]->data, (const T *)src[1]->data, (const T *)src[2]->data, n, t->a.f[0], count);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "bce_with_logits_grad");
        return LOOM_OK;
    });
}

// Scratch at the bounds: one partial sum per block of the mean.
static size_t bce_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *)
{
    (void)src_nnz;
    int64_t n = 1;
    for (int i = 0; i < t->src[0]->shape.ndim; i++)
        n *= loom__dim_bound(t->graph, t->src[0]->shape.d[i]);
    return (size_t)partials(n) * sizeof(double) + 256;
}

extern "C" void loom__cuda_register_loss(loom__cuda_op *table)
{
    table[LOOM_OP_BCE_LOGITS].run = cuda_bce;
    table[LOOM_OP_BCE_LOGITS].workspace = bce_workspace;
    table[LOOM_OP_BCE_LOGITS_GRAD].run = cuda_bce_grad;
}
