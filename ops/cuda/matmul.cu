// CUDA kernel of matmul (see ops/cuda/cuda.h for the contract): C [m, n] = op(A) op(B) through
// cuBLAS GEMM on the handle bound to the op's stream.
//
// cuBLAS is column-major; a row-major matrix is the column-major storage of its transpose, so the
// row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: the operands
// swap places, each keeps its own transpose flag and its row length as leading dimension, and
// nothing is ever transposed in memory. f32 runs with FP32 pedantic math (no TF32, no reduced
// precision reductions) unless the context asks for TF32 or BF16 tensor cores.
// defines: loom__cuda_register_matmul
#include "ops/cuda/common.cuh"

#include <loom/program.h> // loom_matmul_precision

#include <cublas_v2.h>
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
    // alpha and beta are host values: the handle may have been left in device pointer mode
    cublasStatus_t s = cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST);
    const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    const int lda = (int)a->shape[1], ldb = (int)b->shape[1], ldc = (int)n;
    if (s == CUBLAS_STATUS_SUCCESS) {
        if (out->dtype == LOOM_F32) {
            const float one = 1.0f, zero = 0.0f;
            const cublasComputeType_t ct = ctx->cuda->matmul == LOOM_MATMUL_TF32   ? CUBLAS_COMPUTE_32F_FAST_TF32
                                           : ctx->cuda->matmul == LOOM_MATMUL_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                                                   : CUBLAS_COMPUTE_32F_PEDANTIC;
            s = cublasGemmEx(h, opb, opa, (int)n, (int)m, (int)k, &one, b->data, CUDA_R_32F, ldb, a->data, CUDA_R_32F, lda,
                             &zero, out->data, CUDA_R_32F, ldc, ct, CUBLAS_GEMM_DEFAULT);
        } else {
            const double one = 1.0, zero = 0.0;
            s = cublasGemmEx(h, opb, opa, (int)n, (int)m, (int)k, &one, b->data, CUDA_R_64F, ldb, a->data, CUDA_R_64F, lda,
                             &zero, out->data, CUDA_R_64F, ldc, CUBLAS_COMPUTE_64F, CUBLAS_GEMM_DEFAULT);
        }
    }
    if (s != CUBLAS_STATUS_SUCCESS)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "matmul: cublasGemmEx (%lld x %lld x %lld, %s): %s", (long long)m,
                           (long long)n, (long long)k, loom_dtype_name(out->dtype), cublasGetStatusString(s));
    LOOM__CUDA_CHECK_LAUNCH(ctx, "matmul");
    return LOOM_OK;
}

extern "C" void loom__cuda_register_matmul(loom__cuda_op *table) { table[LOOM_OP_MATMUL].run = cuda_matmul; }
