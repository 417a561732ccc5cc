// CUDA kernel of matmul (see ops/cuda/cuda.h for the contract): C [m, n] = op(A) op(B) through
// cuBLAS GEMM on the handle bound to the op's stream.
//
// The row-major product and the compute type are gemm.cuh's: operands swapped for cuBLAS's
// column-major order, nothing transposed in memory; f32 on FP32 pedantic math unless the context
// asks for TF32 or BF16 tensor cores.
// defines: loom__cuda_register_matmul
#include "ops/cuda/gemm.cuh"

#include <limits.h>

// ---- kernels ------------------------------------------------------------------------------------
// (none: cuBLAS does the work, and an empty inner dim is a memset)

// ---- launchers ----------------------------------------------------------------------------------

static loom_status cuda_matmul(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *a = src[0], *b = src[1];
    const int ta = (int)t->a.i[0], tb = (int)t->a.i[1];
    if (a->ndim != 2 || b->ndim != 2 || out->ndim != 2)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "matmul: operands and output must be 2-D");
    const int64_t m = out->shape[0], n = out->shape[1], k = a->shape[!ta];
    if (a->shape[ta] != m || b->shape[tb] != k || b->shape[!tb] != n)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "matmul: [%lld, %lld]%s x [%lld, %lld]%s does not make [%lld, %lld]",
                           (long long)a->shape[0], (long long)a->shape[1], ta ? "^T" : "", (long long)b->shape[0],
                           (long long)b->shape[1], tb ? "^T" : "", (long long)m, (long long)n);
    if (a->dtype != out->dtype || b->dtype != out->dtype || (out->dtype != LOOM_F32 && out->dtype != LOOM_F64))
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "matmul: no CUDA kernel for %s x %s -> %s", loom_dtype_name(a->dtype),
                           loom_dtype_name(b->dtype), loom_dtype_name(out->dtype));
    if (m == 0 || n == 0)
        return LOOM_OK;
    if (k == 0) // an empty sum; cuBLAS would be asked for a leading dimension of 0
        return loom__cuda_memset(ctx, out->data, 0, (size_t)(m * n) * loom_dtype_size(out->dtype), "matmul");
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || a->shape[1] > INT_MAX || b->shape[1] > INT_MAX)
        return loom__kfail(ctx, LOOM_ERR_UNSUPPORTED, "matmul: a dimension exceeds cuBLAS's 32-bit sizes");

    cublasHandle_t h = (cublasHandle_t)ctx->cuda->blas;
    const cublasComputeType_t ct = loom__cuda_gemm_compute(out->dtype, ctx);
    const int lda = (int)a->shape[1], ldb = (int)b->shape[1], ldc = (int)n;
    const cublasStatus_t s =
        out->dtype == LOOM_F32
            ? loom__cuda_gemm_rm<float>(h, ta, tb, (int)m, (int)n, (int)k, (const float *)a->data, lda, 0,
                                        (const float *)b->data, ldb, 0, 0.0f, (float *)out->data, ldc, 0, 1, ct)
            : loom__cuda_gemm_rm<double>(h, ta, tb, (int)m, (int)n, (int)k, (const double *)a->data, lda, 0,
                                         (const double *)b->data, ldb, 0, 0.0, (double *)out->data, ldc, 0, 1, ct);
    if (s != CUBLAS_STATUS_SUCCESS)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "matmul: cublasGemmEx (%lld x %lld x %lld, %s): %s", (long long)m,
                           (long long)n, (long long)k, loom_dtype_name(out->dtype), cublasGetStatusString(s));
    LOOM__CUDA_CHECK_LAUNCH(ctx, "matmul");
    return LOOM_OK;
}

extern "C" void loom__cuda_register_matmul(loom__cuda_op *table) { table[LOOM_OP_MATMUL].run = cuda_matmul; }
