/* CPU kernels of spmm and degree. Column indices of a CSR row may be unsorted and repeated: each
 * entry is simply another term of the sum, so neither kernel cares. Columns are in range: feeding
 * a CSR input validates it (loom_csr_validate). */
#include "ops/cpu/sparse.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "ops/cpu/cpu.h"
#include "ops/cpu/pool.h"
#include "ops/shared/operands.h"


/* y[0, f) += a x[0, f). Blocks of 8 with a fixed-count inner loop: GCC vectorises those at -O2
 * (straight-line SLP), where its -O2 cost model leaves a loop of unknown length scalar. */
#define AXPY(T, sfx)                                                                              \
    static inline void axpy_##sfx(T *restrict y, T a, const T *restrict x, int64_t f)            \
    {                                                                                             \
        int64_t j = 0;                                                                            \
        for (; j + 8 <= f; j += 8)                                                                \
            for (int u = 0; u < 8; u++)                                                           \
                y[j + u] += a * x[j + u];                                                         \
        for (; j < f; j++)                                                                        \
            y[j] += a * x[j];                                                                     \
    }
LOOM__FLOAT_TYPES(AXPY)
#undef AXPY

/* y [nrows, f] = A x with x [ncols, f], rows [lo, hi). One output row at a time, in blocks of
 * its columns held in registers while the row's entries add scaled rows of x to them (each
 * element's sum in the order of the entries, from 0: the bits of a plain loop): blocks of 128
 * bytes, then of 64 and 32, then what is left through axpy. Where x is large, the rows of x that
 * the entries SPMM_AHEAD on need are fetched ahead (a gather from a table larger than the caches
 * waits on memory otherwise). restrict: y never aliases x or the values. */
#define SPMM_AHEAD 8
#define SPMM(T, sfx)                                                                                      \
    static inline __attribute__((always_inline)) void spmm_block_##sfx(                                   \
        T *restrict yi, const int32_t *restrict col, const T *restrict val, const T *restrict x, int32_t k0, \
        int32_t k1, int32_t end, int64_t f, int64_t j0, const int w)                                      \
    {                                                                                                     \
        T acc[128 / sizeof(T)];                                                                           \
        for (int u = 0; u < w; u++)                                                                       \
            acc[u] = 0;                                                                                   \
        for (int32_t k = k0; k < k1; k++) {                                                               \
            if (j0 == 0 && k + SPMM_AHEAD < end)                                                          \
                for (int64_t b = 0; b < f; b += 64 / (int64_t)sizeof(T))                                  \
                    __builtin_prefetch(x + (int64_t)col[k + SPMM_AHEAD] * f + b);                         \
            const T v = val[k];                                                                           \
            const T *restrict xr = x + (int64_t)col[k] * f + j0;                                          \
            for (int u = 0; u < w; u++)                                                                   \
                acc[u] += v * xr[u];                                                                      \
        }                                                                                                 \
        for (int u = 0; u < w; u++)                                                                       \
            yi[j0 + u] = acc[u];                                                                          \
    }                                                                                                     \
    static void spmm_##sfx(T *restrict y, const int32_t *restrict rowptr, const int32_t *restrict col,      \
                           const T *restrict val, const T *restrict x, int64_t lo, int64_t hi, int64_t f,   \
                           int ahead)                                                                   \
    {                                                                                                     \
        enum { WIDE = 128 / sizeof(T), MID = 64 / sizeof(T), NARROW = 32 / sizeof(T) };                   \
        const int32_t end = ahead ? rowptr[hi] : 0; /* 0: no entry fetches ahead */                      \
        for (int64_t i = lo; i < hi; i++) {                                                               \
            T *restrict yi = y + i * f;                                                                   \
            const int32_t k0 = rowptr[i], k1 = rowptr[i + 1];                                             \
            int64_t j0 = 0;                                                                               \
            for (; j0 + WIDE <= f; j0 += WIDE)                                                            \
                spmm_block_##sfx(yi, col, val, x, k0, k1, end, f, j0, WIDE);                              \
            for (; j0 + MID <= f; j0 += MID)                                                              \
                spmm_block_##sfx(yi, col, val, x, k0, k1, end, f, j0, MID);                               \
            for (; j0 + NARROW <= f; j0 += NARROW)                                                        \
                spmm_block_##sfx(yi, col, val, x, k0, k1, end, f, j0, NARROW);                            \
            if (j0 < f) {                                                                                 \
                for (int64_t j = j0; j < f; j++)                                                          \
                    yi[j] = 0;                                                                            \
                for (int32_t k = k0; k < k1; k++)                                                         \
                    axpy_##sfx(yi + j0, val[k], x + (int64_t)col[k] * f + j0, f - j0);                    \
            }                                                                                             \
        }                                                                                                 \
    }                                                                                                     \
    /* y [ncols, f] = A^T x with x [nrows, f], output rows [lo, hi), without forming A^T: row i of A  \
     * scatters x's row i, scaled by each entry, into the output rows its columns name. Each part     \
     * walks every entry and takes those whose column it owns, so output row c still sums its terms  \
     * in the order of i and k however the columns are split. */                                       \
    static void spmm_t_##sfx(T *restrict y, const int32_t *restrict rowptr, const int32_t *restrict col,    \
                             const T *restrict val, const T *restrict x, int64_t nrows, int64_t lo,         \
                             int64_t hi, int64_t f)                                                       \
    {                                                                                                     \
        for (int64_t j = lo * f; j < hi * f; j++)                                                         \
            y[j] = 0;                                                                                     \
        for (int64_t i = 0; i < nrows; i++)                                                               \
            for (int32_t k = rowptr[i]; k < rowptr[i + 1]; k++)                                           \
                if (col[k] >= lo && col[k] < hi)                                                          \
                    axpy_##sfx(y + (int64_t)col[k] * f, val[k], x + i * f, f);                            \
    }
LOOM__FLOAT_TYPES(SPMM)
#undef SPMM

typedef struct spmm_job {
    const loom__value *adj, *x;
    loom__value *out;
    int transpose;
    int64_t f;
} spmm_job;

/* A's rows split by nonzeros (A x), or the output's rows evenly (A^T x). */
static void spmm_part(void *arg, int part, int nparts)
{
    const spmm_job *j = arg;
    const loom__value *adj = j->adj;
    int64_t lo, hi;
    if (j->transpose) {
        loom__pool_split(adj->shape[1], part, nparts, &lo, &hi);
        (void)LOOM__DISPATCH_FLOAT(j->out->dtype, spmm_t, j->out->data, adj->rowptr, adj->col, adj->data, j->x->data,
                                   adj->shape[0], lo, hi, j->f);
    } else {
        loom__pool_split_csr(adj->rowptr, adj->shape[0], part, nparts, &lo, &hi);
        /* fetching ahead pays where x is larger than the caches hold close */
        const int ahead = (double)j->x->shape[0] * (double)j->f * (double)loom_dtype_size(j->x->dtype) > (double)(1 << 20);
        (void)LOOM__DISPATCH_FLOAT(j->out->dtype, spmm, j->out->data, adj->rowptr, adj->col, adj->data, j->x->data, lo,
                                   hi, j->f, ahead);
    }
}

loom_status loom__cpu_spmm(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *adj = src[0], *x = src[1];
    const int transpose = (int)t->a.i[0];
    int64_t f, out_rows;
    loom_status s = loom__spmm_operands(adj, x, out, transpose, &f, &out_rows, ctx);
    if (s != LOOM_OK)
        return s;
    const int64_t nrows = adj->shape[0];
    spmm_job j = {.adj = adj, .x = x, .out = out, .transpose = transpose, .f = f};
    /* work: a gathered (or scattered) row of f values per entry, and the output once */
    const double es = (double)loom_dtype_size(out->dtype);
    int parts = loom__pool_parts(ctx->pool, ((double)adj->rowptr[nrows] + (double)out_rows) * (double)f * es);
    if (parts > out_rows)
        parts = out_rows > 0 ? (int)out_rows : 1;
    loom__pool_run(ctx->pool, parts, spmm_part, &j);
    return LOOM_OK;
}

/* The row sum is accumulated in double for both value types: degrees are usually counts, which it
 * keeps exact. */
#define DEGREE(T, sfx)                                                                                \
    static void degree_##sfx(T *restrict y, const int32_t *restrict rowptr, const T *restrict val,     \
                             int64_t nrows, double self, double power)                                \
    {                                                                                                 \
        for (int64_t i = 0; i < nrows; i++) {                                                         \
            double d = self;                                                                          \
            for (int32_t k = rowptr[i]; k < rowptr[i + 1]; k++)                                       \
                d += (double)val[k];                                                                  \
            y[i] = d == 0 ? (T)0 : (T)pow(d, power); /* an isolated node: 0, not inf */               \
        }                                                                                             \
    }
LOOM__FLOAT_TYPES(DEGREE)
#undef DEGREE

loom_status loom__cpu_degree(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *adj = src[0];
    if (out->ndim != 1 || out->shape[0] != adj->shape[0]) {
        if (ctx->msg)
            snprintf(ctx->msg, ctx->msglen, "adj has %" PRId64 " rows but the output %" PRId64, adj->shape[0],
                     out->ndim ? out->shape[0] : -1);
        return LOOM_ERR_SHAPE;
    }
    if (out->dtype != adj->dtype)
        return LOOM_ERR_DTYPE;
    return LOOM__DISPATCH_FLOAT(out->dtype, degree, out->data, adj->rowptr, adj->data, adj->shape[0],
                                t->a.i[0] ? 1.0 : 0.0, t->a.f[0]);
}
