// cuBLAS GEMM as the kernels use it (C++ only): the compute type a context asks for, and row-major
// strided batched products. Included by matmul.cu and conv.cu.
// defines: loom__cuda_gemm_compute, loom__cuda_gemm_rm
#ifndef LOOM_OPS_CUDA_GEMM_CUH
#define LOOM_OPS_CUDA_GEMM_CUH

#include <cublas_v2.h>

#include <loom/program.h> // loom_matmul_precision

#include "ops/cuda/common.cuh"

// f64: 64F. f32: FP32 pedantic math (no TF32, no reduced precision reductions) unless the context
// asks for TF32 or BF16 tensor cores.
static inline cublasComputeType_t loom__cuda_gemm_compute(loom_dtype dt, const loom__kctx *ctx)
{
    if (dt == LOOM_F64)
        return CUBLAS_COMPUTE_64F;
    return ctx->cuda->matmul == LOOM_MATMUL_TF32   ? CUBLAS_COMPUTE_32F_FAST_TF32
           : ctx->cuda->matmul == LOOM_MATMUL_BF16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                   : CUBLAS_COMPUTE_32F_PEDANTIC;
}

// Row-major C_i [m, n] = op(A_i) op(B_i) + beta C_i for i < batch, every matrix T (float or
// double) with its row length as leading dimension and the stride (in elements) between the
// batch's matrices. cuBLAS is column-major and a row-major matrix is the column-major storage of
// its transpose, so it computes C^T = op(B)^T op(A)^T: the operands swap places, each keeps its own
// transpose flag, and nothing is transposed in memory. alpha and beta are host values (the handle
// is put in host pointer mode).
template <typename T>
static inline cublasStatus_t loom__cuda_gemm_rm(cublasHandle_t h, bool ta, bool tb, int m, int n, int k, const T *a, int lda,
                                                long long sa, const T *b, int ldb, long long sb, T beta, T *c, int ldc,
                                                long long sc, int batch, cublasComputeType_t ct)
{
    const cudaDataType_t dt = sizeof(T) == 8 ? CUDA_R_64F : CUDA_R_32F;
    const T one = 1;
    cublasStatus_t s = cublasSetPointerMode(h, CUBLAS_POINTER_MODE_HOST);
    if (s != CUBLAS_STATUS_SUCCESS)
        return s;
    if (batch == 1)
        return cublasGemmEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &one, b, dt, ldb, a,
                            dt, lda, &beta, c, dt, ldc, ct, CUBLAS_GEMM_DEFAULT);
    return cublasGemmStridedBatchedEx(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &one, b, dt,
                                      ldb, sb, a, dt, lda, sa, &beta, c, dt, ldc, sc, batch, ct, CUBLAS_GEMM_DEFAULT);
}

#endif
