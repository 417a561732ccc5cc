/* matmul on the CPU through OpenBLAS GEMM. */
#include "ops/cpu/matmul.h"

#include <cblas.h>
#include <string.h>

loom_status loom__cpu_matmul(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)ctx;
    const loom__value *a = src[0], *b = src[1];
    int ta = (int)t->a.i[0], tb = (int)t->a.i[1];
    int64_t m = out->shape[0], n = out->shape[1], k = a->shape[!ta];
    if (m == 0 || n == 0)
        return LOOM_OK;
    if (k == 0) { /* an empty sum: BLAS would be asked for lda = 0 */
        memset(out->data, 0, (size_t)(m * n) * loom_dtype_size(out->dtype));
        return LOOM_OK;
    }
    enum CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans, opb = tb ? CblasTrans : CblasNoTrans;
    int lda = (int)a->shape[1], ldb = (int)b->shape[1], ldc = (int)n;
    if (out->dtype == LOOM_F32)
        cblas_sgemm(CblasRowMajor, opa, opb, (int)m, (int)n, (int)k, 1.0f, a->data, lda, b->data, ldb, 0.0f,
                    out->data, ldc);
    else
        cblas_dgemm(CblasRowMajor, opa, opb, (int)m, (int)n, (int)k, 1.0, a->data, lda, b->data, ldb, 0.0,
                    out->data, ldc);
    return LOOM_OK;
}
