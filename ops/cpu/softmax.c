/* CPU kernels of log_softmax and softmax cross entropy. A row is the last axis; each is shifted
 * by its max before exp, so exp never overflows and the largest term is exactly 1. */
#include "ops/cpu/softmax.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ops/cpu/cpu.h"
#include "ops/shared/operands.h"


/* log(sum(exp(x[j]))) over a row of c > 0 elements. */
#define LSE(T, sfx)                                                     \
    static double lse_##sfx(const T *x, int64_t c)                      \
    {                                                                   \
        double m = x[0], s = 0;                                         \
        for (int64_t j = 1; j < c; j++)                                 \
            m = x[j] > m ? x[j] : m;                                    \
        if (isinf(m))                                                   \
            return m; /* all -inf (the row is empty of mass) or +inf */ \
        for (int64_t j = 0; j < c; j++)                                 \
            s += exp((double)x[j] - m);                                 \
        return m + log(s);                                              \
    }
LOOM__FLOAT_TYPES(LSE)
#undef LSE

/* ---- log_softmax ------------------------------------------------------------------------------- */

#define LOG_SOFTMAX(T, sfx)                                                  \
    static void log_softmax_##sfx(T *y, const T *x, int64_t rows, int64_t c) \
    {                                                                        \
        for (int64_t r = 0; r < rows; r++, x += c, y += c) {                 \
            const double l = lse_##sfx(x, c);                                \
            for (int64_t j = 0; j < c; j++)                                  \
                y[j] = (T)((double)x[j] - l);                                \
        }                                                                    \
    }
LOOM__FLOAT_TYPES(LOG_SOFTMAX)
#undef LOG_SOFTMAX

/* Rows and row length of a value whose last axis is the softmax axis. */
static void rows_of(const loom__value *v, int64_t *rows, int64_t *c)
{
    *c = v->ndim ? v->shape[v->ndim - 1] : 1;
    *rows = 1;
    for (int i = 0; i + 1 < v->ndim; i++)
        *rows *= v->shape[i];
}

loom_status loom__cpu_log_softmax(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    (void)ctx;
    int64_t rows, c;
    rows_of(src[0], &rows, &c);
    if (rows * c == 0)
        return LOOM_OK;
    return LOOM__DISPATCH_FLOAT(out->dtype, log_softmax, out->data, src[0]->data, rows, c);
}

#define LOG_SOFTMAX_GRAD(T, sfx)                                                               \
    static void log_softmax_grad_##sfx(T *gx, const T *y, const T *g, int64_t rows, int64_t c) \
    {                                                                                          \
        for (int64_t r = 0; r < rows; r++, gx += c, y += c, g += c) {                          \
            double s = 0;                                                                      \
            for (int64_t j = 0; j < c; j++)                                                    \
                s += g[j];                                                                     \
            for (int64_t j = 0; j < c; j++)                                                    \
                gx[j] = (T)(g[j] - exp((double)y[j]) * s);                                     \
        }                                                                                      \
    }
LOOM__FLOAT_TYPES(LOG_SOFTMAX_GRAD)
#undef LOG_SOFTMAX_GRAD

loom_status loom__cpu_log_softmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                       const loom__kctx *ctx)
{
    (void)t;
    (void)ctx;
    int64_t rows, c;
    rows_of(src[0], &rows, &c);
    if (rows * c == 0)
        return LOOM_OK;
    return LOOM__DISPATCH_FLOAT(out->dtype, log_softmax_grad, out->data, src[0]->data, src[1]->data, rows, c);
}

/* ---- softmax along an axis --------------------------------------------------------------------- */

/* x viewed as [outer, c, inner] around the axis: each (o, i) is a column of c elements at stride
 * inner. The columns of one o run side by side (inner at a time), so that every pass reads rows
 * of inner contiguous values; m and s hold their max and sum. exp is taken twice (for the sum, then
 * for the value) rather than kept in T, so that the quotient is of double terms. */
#define SOFTMAX(T, sfx)                                                                                     \
    static void softmax_##sfx(T *y, const T *x, int64_t outer, int64_t c, int64_t inner, double *m, double *s) \
    {                                                                                                       \
        for (int64_t o = 0; o < outer; o++, x += c * inner, y += c * inner) {                               \
            for (int64_t i = 0; i < inner; i++) {                                                           \
                m[i] = x[i];                                                                                \
                s[i] = 0;                                                                                   \
            }                                                                                               \
            for (int64_t j = 1; j < c; j++)                                                                 \
                for (int64_t i = 0; i < inner; i++)                                                         \
                    m[i] = x[j * inner + i] > m[i] ? x[j * inner + i] : m[i]; /* a NaN never replaces */    \
            for (int64_t j = 0; j < c; j++)                                                                 \
                for (int64_t i = 0; i < inner; i++)                                                         \
                    s[i] += exp((double)x[j * inner + i] - m[i]);                                           \
            for (int64_t j = 0; j < c; j++)                                                                 \
                for (int64_t i = 0; i < inner; i++)                                                         \
                    y[j * inner + i] = (T)(exp((double)x[j * inner + i] - m[i]) / s[i]);                    \
        }                                                                                                   \
    }
LOOM__FLOAT_TYPES(SOFTMAX)
#undef SOFTMAX

/* gx = y * (g - d) per column, d = sum(g * y) over it (in s). */
#define SOFTMAX_GRAD(T, sfx)                                                                                     \
    static void softmax_grad_##sfx(T *gx, const T *y, const T *g, int64_t outer, int64_t c, int64_t inner, double *s) \
    {                                                                                                            \
        for (int64_t o = 0; o < outer; o++, y += c * inner, g += c * inner, gx += c * inner) {                   \
            for (int64_t i = 0; i < inner; i++)                                                                  \
                s[i] = 0;                                                                                        \
            for (int64_t j = 0; j < c; j++)                                                                      \
                for (int64_t i = 0; i < inner; i++)                                                              \
                    s[i] += (double)g[j * inner + i] * y[j * inner + i];                                         \
            for (int64_t j = 0; j < c; j++)                                                                      \
                for (int64_t i = 0; i < inner; i++)                                                              \
                    gx[j * inner + i] = (T)(y[j * inner + i] * (g[j * inner + i] - s[i]));                       \
        }                                                                                                        \
    }
LOOM__FLOAT_TYPES(SOFTMAX_GRAD)
#undef SOFTMAX_GRAD

loom_status loom__cpu_softmax(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t outer, c, inner;
    loom_status s = loom__axis_view(src[0], (int)t->a.i[0], &outer, &c, &inner, ctx);
    if (s != LOOM_OK || outer * c * inner == 0)
        return s;
    double *m = malloc(2 * (size_t)inner * sizeof *m);
    if (!m)
        return LOOM_ERR_NOMEM;
    s = LOOM__DISPATCH_FLOAT(out->dtype, softmax, out->data, src[0]->data, outer, c, inner, m, m + inner);
    free(m);
    return s;
}

loom_status loom__cpu_softmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t outer, c, inner;
    loom_status s = loom__axis_view(src[0], (int)t->a.i[0], &outer, &c, &inner, ctx);
    if (s != LOOM_OK || outer * c * inner == 0)
        return s;
    double *d = malloc((size_t)inner * sizeof *d);
    if (!d)
        return LOOM_ERR_NOMEM;
    s = LOOM__DISPATCH_FLOAT(out->dtype, softmax_grad, out->data, src[0]->data, src[1]->data, outer, c, inner, d);
    free(d);
    return s;
}

/* ---- softmax_cross_entropy --------------------------------------------------------------------- */

/* The rows that count (mask NULL: all) and their number; a counted row's label must be in [0, c). */
static loom_status count_rows(const int32_t *labels, const uint8_t *mask, int64_t n, int64_t c, int64_t *count,
                              const loom__kctx *ctx)
{
    *count = 0;
    for (int64_t r = 0; r < n; r++) {
        if (mask && !mask[r])
            continue;
        if (labels[r] < 0 || labels[r] >= c)
            return loom__kfail(ctx, LOOM_ERR_INVALID, "row %lld has label %d, outside [0, %lld)", (long long)r, (int)labels[r],
                         (long long)c);
        ++*count;
    }
    return LOOM_OK;
}

#define CE(T, sfx)                                                                                   \
    static void ce_##sfx(T *loss, const T *z, const int32_t *labels, const uint8_t *mask, int64_t n, \
                         int64_t c, int64_t count)                                                   \
    {                                                                                                \
        double s = 0;                                                                                \
        for (int64_t r = 0; r < n; r++)                                                              \
            if (!mask || mask[r])                                                                    \
                s += lse_##sfx(z + r * c, c) - (double)z[r * c + labels[r]];                         \
        *loss = (T)(count ? s / (double)count : 0.0);                                                \
    }
LOOM__FLOAT_TYPES(CE)
#undef CE

loom_status loom__cpu_softmax_ce(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *z = src[0];
    const uint8_t *mask = t->n_src == 3 ? src[2]->data : NULL;
    int64_t n = z->shape[0], c = z->shape[1], count;
    loom_status s = count_rows(src[1]->data, mask, n, c, &count, ctx);
    if (s != LOOM_OK)
        return s;
    if (!mask)
        count = loom__ce_rows(count, ctx);
    return LOOM__DISPATCH_FLOAT(out->dtype, ce, out->data, z->data, src[1]->data, mask, n, c, count);
}

/* Row r of the gradient: (softmax(z[r]) - onehot(label)) * w with w = gout / count, 0 when the
 * row does not count. */
#define CE_GRAD(T, sfx)                                                                                 \
    static void ce_grad_##sfx(T *gz, const T *z, const int32_t *labels, const uint8_t *mask, int64_t n, \
                              int64_t c, double w)                                                      \
    {                                                                                                   \
        for (int64_t r = 0; r < n; r++, z += c, gz += c) {                                              \
            if (mask && !mask[r]) {                                                                     \
                for (int64_t j = 0; j < c; j++)                                                         \
                    gz[j] = 0;                                                                          \
                continue;                                                                               \
            }                                                                                           \
            const double l = lse_##sfx(z, c);                                                           \
            for (int64_t j = 0; j < c; j++)                                                             \
                gz[j] = (T)((exp((double)z[j] - l) - (j == labels[r])) * w);                            \
        }                                                                                               \
    }
LOOM__FLOAT_TYPES(CE_GRAD)
#undef CE_GRAD

loom_status loom__cpu_softmax_ce_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx)
{
    const loom__value *z = src[0], *gout = src[t->n_src - 1];
    const uint8_t *mask = t->n_src == 4 ? src[2]->data : NULL;
    int64_t n = z->shape[0], c = z->shape[1], count;
    loom_status s = count_rows(src[1]->data, mask, n, c, &count, ctx);
    if (s != LOOM_OK)
        return s;
    if (!mask)
        count = loom__ce_rows(count, ctx);
    double g = gout->dtype == LOOM_F64 ? *(const double *)gout->data : *(const float *)gout->data;
    double w = count ? g / (double)count : 0.0;
    return LOOM__DISPATCH_FLOAT(out->dtype, ce_grad, out->data, z->data, src[1]->data, mask, n, c, w);
}
