// The numerics check on GPUs (graphs/plan/numerics.c): a scan of an op's output for NaN and infinities,
// launched after the op's kernel on the same stream, so it is captured into a chain's CUDA graph
// with it. Kernels on one stream run in order: the record (first failure wins) names the first op
// whose output is not finite, and an element of it.
// defines: loom__cuda_check_finite
#include "ops/cuda/common.cuh"

// ---- kernels --------------------------------------------------------------------------------------

template <typename T> __global__ void nonfinite_scan(const T *x, int64_t n, loom__cuda_err *err, int tag)
{
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const T v = x[i];
        if (!isfinite(v)) {
            const int code = isnan(v) ? LOOM__CUDA_ERR_NAN : v > 0 ? LOOM__CUDA_ERR_INF : LOOM__CUDA_ERR_NEG_INF;
            loom__cuda_record_err(err, code, tag, (long long)i, (long long)n);
            return;
        }
    }
}

// ---- launchers ------------------------------------------------------------------------------------

extern "C" loom_status loom__cuda_check_finite(const loom__value *v, const loom__kctx *ctx)
{
    const int64_t n = loom__numel(v); // a CSR value: its entries
    if ((v->dtype != LOOM_F32 && v->dtype != LOOM_F64) || n <= 0 || !v->data)
        return LOOM_OK;
    const int threads = 256;
    const unsigned blocks = loom__cuda_grid(n, threads, 1024u);
    cudaStream_t stream = loom__cuda_stream(ctx);
    if (v->dtype == LOOM_F32)
        nonfinite_scan<float><<<blocks, threads, 0, stream>>>((const float *)v->data, n, ctx->cuda->err, ctx->cuda->tag);
    else
        nonfinite_scan<double><<<blocks, threads, 0, stream>>>((const double *)v->data, n, ctx->cuda->err, ctx->cuda->tag);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "the numerics check");
    return LOOM_OK;
}
