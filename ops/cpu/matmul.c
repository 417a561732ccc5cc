/* matmul on the CPU through OpenBLAS GEMM, called single-threaded: the kernel pool splits the
 * output's rows (pool.h), so OpenBLAS's own threads never wait, spinning, beside the pool's. */
#include "ops/cpu/matmul.h"

#include <cblas.h>
#include <string.h>

#include "ops/cpu/pool.h"

/* The output's rows go to GEMM in chunks of this many, one call each, whatever the thread count:
 * OpenBLAS's result for a row depends on the call's shape (it picks other kernels, with another
 * order of the sum over k, for small calls), so the chunks are fixed and the threads only decide
 * who computes which. Packing B again per chunk costs k n of the chunk's ROW_CHUNK k n work. */
#define ROW_CHUNK 128

typedef struct gemm_job {
    enum CBLAS_TRANSPOSE opa, opb;
    int64_t m, n, k;
    int lda, ldb, ldc;
    loom_dtype dtype;
    const void *a, *b;
    void *c;
} gemm_job;

static void gemm_part(void *arg, int part, int nparts)
{
    const gemm_job *j = arg;
    int64_t chunks = (j->m + ROW_CHUNK - 1) / ROW_CHUNK, lo, hi;
    loom__pool_split(chunks, part, nparts, &lo, &hi);
    const size_t es = loom_dtype_size(j->dtype);
    for (int64_t ch = lo; ch < hi; ch++) {
        const int64_t r0 = ch * ROW_CHUNK, rows = j->m - r0 < ROW_CHUNK ? j->m - r0 : ROW_CHUNK;
        /* row r of op(A) starts at a + r lda untransposed, at column r (a + r) transposed */
        const char *a = (const char *)j->a + (size_t)r0 * (j->opa == CblasNoTrans ? (size_t)j->lda : 1) * es;
        char *c = (char *)j->c + (size_t)r0 * (size_t)j->ldc * es;
        if (j->dtype == LOOM_F32)
            cblas_sgemm(CblasRowMajor, j->opa, j->opb, (int)rows, (int)j->n, (int)j->k, 1.0f, (const float *)a, j->lda,
                        j->b, j->ldb, 0.0f, (float *)c, j->ldc);
        else
            cblas_dgemm(CblasRowMajor, j->opa, j->opb, (int)rows, (int)j->n, (int)j->k, 1.0, (const double *)a, j->lda,
                        j->b, j->ldb, 0.0, (double *)c, j->ldc);
    }
}

loom_status loom__cpu_matmul(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *a = src[0], *b = src[1];
    int ta = (int)t->a.i[0], tb = (int)t->a.i[1];
    int64_t m = out->shape[0], n = out->shape[1], k = a->shape[!ta];
    if (m == 0 || n == 0)
        return LOOM_OK;
    if (k == 0) { /* an empty sum: BLAS would be asked for lda = 0 */
        memset(out->data, 0, (size_t)(m * n) * loom_dtype_size(out->dtype));
        return LOOM_OK;
    }
    gemm_job j = {.opa = ta ? CblasTrans : CblasNoTrans, .opb = tb ? CblasTrans : CblasNoTrans, .m = m, .n = n, .k = k,
                  .lda = (int)a->shape[1], .ldb = (int)b->shape[1], .ldc = (int)n, .dtype = out->dtype,
                  .a = a->data, .b = b->data, .c = out->data};
    /* work: the bytes of A and C each part streams, plus the flops at about 8 per byte */
    const double es = (double)loom_dtype_size(out->dtype);
    int parts = loom__pool_parts(ctx->pool, (double)m * (double)(k + n) * es + 2.0 * (double)m * (double)n * (double)k / 8);
    const int64_t chunks = (m + ROW_CHUNK - 1) / ROW_CHUNK;
    if (parts > chunks)
        parts = (int)chunks;
    loom__pool_run(ctx->pool, parts, gemm_part, &j);
    return LOOM_OK;
}
