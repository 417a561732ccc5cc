/* CPU kernels of gather_rows, scatter and scatter_grad. Every kernel checks its indices before it
 * writes anything: a bad index is a data error the caller must hear about, never a stray write. */
#include "ops/cpu/index.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/cpu.h"
#include "ops/shared/operands.h"

/* Every idx[0, e) must lie in [0, n); what names the range for the message. */
static loom_status check_idx(const int32_t *idx, int64_t e, int64_t n, const char *what, const loom__kctx *ctx)
{
    for (int64_t i = 0; i < e; i++)
        if (idx[i] < 0 || idx[i] >= n) {
            if (ctx->msg)
                snprintf(ctx->msg, ctx->msglen, "idx[%" PRId64 "] = %" PRId32 " is outside [0, %" PRId64 ") (%s)", i,
                         idx[i], n, what);
            return LOOM_ERR_INVALID;
        }
    return LOOM_OK;
}

loom_status loom__cpu_gather_rows(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *table = src[0], *idx = src[1];
    const int64_t e = idx->shape[0];
    int64_t v = table->shape[0], first = 0;
    (void)t;
    /* a part of a row-split table with idx whole ((S(0), B) -> P): indices are the whole table's,
     * rows elsewhere gather zeros; with idx split too, a graph batch's, they are the part's own */
    if (ctx->sig && ctx->nparts > 1 && ctx->sig->in[0].kind == LOOM_SBP_SPLIT && ctx->sig->in[0].axis == 0 &&
        ctx->sig->in[1].kind != LOOM_SBP_SPLIT) {
        v = ctx->whole[0];
        first = ctx->first[0];
    }
    const size_t row = (size_t)loom__row_size(table) * loom_dtype_size(table->dtype);
    if (out->shape[0] != e || loom__row_size(out) != loom__row_size(table))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "output, table and idx sizes disagree");
    loom_status s = check_idx(idx->data, e, v, "the table's rows", ctx);
    if (s != LOOM_OK || !row)
        return s;
    const int32_t *ix = idx->data;
    const char *from = table->data;
    char *to = out->data;
    for (int64_t i = 0; i < e; i++) {
        int64_t r = ix[i] - first;
        if (r >= 0 && r < table->shape[0])
            memcpy(to + (size_t)i * row, from + (size_t)r * row, row);
        else
            memset(to + (size_t)i * row, 0, row);
    }
    return LOOM_OK;
}

/* y [n, f] from x [e, f]: sum, mean or max per target row; cnt [n] counts the rows each receives. */
#define SCATTER(T, sfx)                                                                                  \
    static void scatter_##sfx(T *restrict y, const T *restrict x, const int32_t *restrict idx, int64_t e, \
                              int64_t n, int64_t f, int mode, int64_t *restrict cnt)                      \
    {                                                                                                    \
        for (int64_t j = 0; j < n * f; j++)                                                              \
            y[j] = 0;                                                                                    \
        if (mode == LOOM__SCATTER_SUM) {                                                                 \
            for (int64_t i = 0; i < e; i++) {                                                            \
                T *restrict yr = y + (int64_t)idx[i] * f;                                                \
                const T *restrict xr = x + i * f;                                                        \
                for (int64_t j = 0; j < f; j++)                                                          \
                    yr[j] += xr[j];                                                                      \
            }                                                                                            \
            return;                                                                                      \
        }                                                                                                \
        for (int64_t i = 0; i < e; i++) {                                                                \
            T *restrict yr = y + (int64_t)idx[i] * f;                                                    \
            const T *restrict xr = x + i * f;                                                            \
            if (mode == LOOM__SCATTER_MEAN)                                                              \
                for (int64_t j = 0; j < f; j++)                                                          \
                    yr[j] += xr[j];                                                                      \
            else if (cnt[idx[i]] == 0) /* max: the first row sets the start, so no -inf is needed */    \
                for (int64_t j = 0; j < f; j++)                                                          \
                    yr[j] = xr[j];                                                                       \
            else                                                                                         \
                for (int64_t j = 0; j < f; j++)                                                          \
                    if (xr[j] > yr[j] || xr[j] != xr[j]) /* NaN wins, as in PyTorch */                   \
                        yr[j] = xr[j];                                                                   \
            cnt[idx[i]]++;                                                                               \
        }                                                                                                \
        if (mode == LOOM__SCATTER_MEAN)                                                                  \
            for (int64_t s = 0; s < n; s++)                                                              \
                if (cnt[s] > 1)                                                                          \
                    for (int64_t j = 0; j < f; j++)                                                      \
                        y[s * f + j] /= (T)cnt[s];                                                       \
    }
LOOM__FLOAT_TYPES(SCATTER)
#undef SCATTER

loom_status loom__cpu_scatter(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *x = src[0], *idx = src[1];
    const int mode = (int)t->a.i[0];
    const int64_t e = x->shape[0], n = out->shape[0], f = loom__row_size(out);
    if (idx->shape[0] != e || loom__row_size(x) != f)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "src, idx and output sizes disagree");
    loom_status s = check_idx(idx->data, e, n, "the output's rows", ctx);
    if (s != LOOM_OK)
        return s;
    int64_t *cnt = NULL;
    if (mode != LOOM__SCATTER_SUM && !(cnt = calloc((size_t)n + 1, sizeof *cnt)))
        return LOOM_ERR_NOMEM;
    s = LOOM__DISPATCH_FLOAT(out->dtype, scatter, out->data, x->data, idx->data, e, n, f, mode, cnt);
    free(cnt);
    return s;
}

/* gx [e, f] from gy [n, f]. mean: gy[idx[i]] / cnt. max: gy[s, j] goes to the first row i (in
 * index order) of segment s whose x[i, j] equals the forward max y[s, j]; taken [n, f] marks the
 * (s, j) already routed, so ties send it once. */
#define SCATTER_GRAD(T, sfx)                                                                            \
    static void scatter_grad_##sfx(T *restrict gx, const T *restrict x, const int32_t *restrict idx,     \
                                   const T *restrict y, const T *restrict gy, int64_t e, int64_t n,      \
                                   int64_t f, int mode, int64_t *restrict cnt, uint8_t *restrict taken)  \
    {                                                                                                   \
        if (mode == LOOM__SCATTER_MEAN) {                                                               \
            for (int64_t i = 0; i < e; i++)                                                             \
                cnt[idx[i]]++;                                                                          \
            for (int64_t i = 0; i < e; i++) {                                                           \
                const T inv = (T)1 / (T)cnt[idx[i]];                                                    \
                const T *restrict gr = gy + (int64_t)idx[i] * f;                                        \
                for (int64_t j = 0; j < f; j++)                                                         \
                    gx[i * f + j] = gr[j] * inv;                                                        \
            }                                                                                           \
            return;                                                                                     \
        }                                                                                               \
        (void)n;                                                                                        \
        for (int64_t i = 0; i < e; i++) {                                                               \
            const int64_t s = (int64_t)idx[i] * f;                                                      \
            for (int64_t j = 0; j < f; j++) {                                                           \
                const int hit = !taken[s + j] && x[i * f + j] == y[s + j];                              \
                gx[i * f + j] = hit ? gy[s + j] : (T)0;                                                 \
                taken[s + j] |= (uint8_t)hit;                                                           \
            }                                                                                           \
        }                                                                                               \
    }
LOOM__FLOAT_TYPES(SCATTER_GRAD)
#undef SCATTER_GRAD

loom_status loom__cpu_scatter_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                   const loom__kctx *ctx)
{
    const loom__value *x = src[0], *idx = src[1], *y = src[2], *gy = src[3];
    const int mode = (int)t->a.i[0];
    const int64_t e = x->shape[0], n = y->shape[0], f = loom__row_size(x);
    if (out->shape[0] != e || idx->shape[0] != e || gy->shape[0] != n || loom__row_size(y) != f || loom__row_size(gy) != f ||
        loom__row_size(out) != f)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "src, idx, output and gradient sizes disagree");
    if (mode != LOOM__SCATTER_MEAN && mode != LOOM__SCATTER_MAX) {
        if (ctx->msg)
            snprintf(ctx->msg, ctx->msglen, "mode %d has no scatter_grad (internal error)", mode);
        return LOOM_ERR_INVALID;
    }
    loom_status s = check_idx(idx->data, e, n, "the output's rows", ctx);
    if (s != LOOM_OK)
        return s;
    int64_t *cnt = NULL;
    uint8_t *taken = NULL;
    if (mode == LOOM__SCATTER_MEAN ? !(cnt = calloc((size_t)n + 1, sizeof *cnt))
                                   : !(taken = calloc((size_t)(n * f) + 1, 1)))
        return LOOM_ERR_NOMEM;
    s = LOOM__DISPATCH_FLOAT(out->dtype, scatter_grad, out->data, x->data, idx->data, y->data, gy->data, e, n, f, mode,
                             cnt, taken);
    free(cnt);
    free(taken);
    return s;
}

/* ---- segment_softmax ----------------------------------------------------------------------------- */

/* Checks seg [e] against the segments' bound n and gives the segments it names (its largest + 1). */
static loom_status seg_count(const int32_t *seg, int64_t e, int64_t n, int64_t *nseg, const loom__kctx *ctx)
{
    loom_status s = check_idx(seg, e, n, "loom_segment_softmax's segments", ctx);
    int64_t top = -1;
    for (int64_t i = 0; s == LOOM_OK && i < e; i++)
        top = seg[i] > top ? seg[i] : top;
    *nseg = top + 1;
    return s;
}

/* m [nseg, f] the segments' maxima (a NaN never replaces one; -inf for a segment of -infs), s the
 * sums of exp(x - m), both over the segment's rows in order. */
#define SEG_SOFTMAX(T, sfx)                                                                                      \
    static void seg_softmax_##sfx(T *restrict y, const T *restrict x, const int32_t *restrict seg, int64_t e,      \
                                  int64_t f, int64_t nseg, double *restrict m, double *restrict s)                \
    {                                                                                                            \
        for (int64_t k = 0; k < nseg * f; k++) {                                                                 \
            m[k] = -INFINITY;                                                                                    \
            s[k] = 0;                                                                                            \
        }                                                                                                        \
        for (int64_t i = 0; i < e; i++)                                                                          \
            for (int64_t j = 0; j < f; j++) {                                                                    \
                double *mk = m + (int64_t)seg[i] * f + j;                                                        \
                *mk = x[i * f + j] > *mk ? x[i * f + j] : *mk;                                                   \
            }                                                                                                    \
        for (int64_t i = 0; i < e; i++)                                                                          \
            for (int64_t j = 0; j < f; j++) {                                                                    \
                const int64_t k = (int64_t)seg[i] * f + j;                                                       \
                s[k] += exp((double)x[i * f + j] - m[k]);                                                        \
            }                                                                                                    \
        for (int64_t i = 0; i < e; i++)                                                                          \
            for (int64_t j = 0; j < f; j++) {                                                                    \
                const int64_t k = (int64_t)seg[i] * f + j;                                                       \
                y[i * f + j] = (T)(exp((double)x[i * f + j] - m[k]) / s[k]);                                     \
            }                                                                                                    \
    }
LOOM__FLOAT_TYPES(SEG_SOFTMAX)
#undef SEG_SOFTMAX

/* d [nseg, f] the sums of g * y over each segment's rows in order; gx = y * (g - d). */
#define SEG_SOFTMAX_GRAD(T, sfx)                                                                                   \
    static void seg_softmax_grad_##sfx(T *restrict gx, const T *restrict y, const int32_t *restrict seg,             \
                                       const T *restrict g, int64_t e, int64_t f, int64_t nseg, double *restrict d) \
    {                                                                                                              \
        for (int64_t k = 0; k < nseg * f; k++)                                                                     \
            d[k] = 0;                                                                                              \
        for (int64_t i = 0; i < e; i++)                                                                            \
            for (int64_t j = 0; j < f; j++)                                                                        \
                d[(int64_t)seg[i] * f + j] += (double)g[i * f + j] * y[i * f + j];                                 \
        for (int64_t i = 0; i < e; i++)                                                                            \
            for (int64_t j = 0; j < f; j++)                                                                        \
                gx[i * f + j] = (T)(y[i * f + j] * (g[i * f + j] - d[(int64_t)seg[i] * f + j]));                    \
    }
LOOM__FLOAT_TYPES(SEG_SOFTMAX_GRAD)
#undef SEG_SOFTMAX_GRAD

/* segment_softmax (src x, seg) or its gradient (src y, seg, gout): scratch of the segments' rows,
 * m and s for the forward pass, d for the gradient. */
loom_status loom__cpu_segment_softmax(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx)
{
    const int grad = t->op == LOOM_OP_SEGMENT_SOFTMAX_GRAD;
    int64_t e, f, n, nseg;
    loom_status s = loom__segment_softmax_operands(t, out, src, &e, &f, &n, ctx);
    if (s == LOOM_OK)
        s = seg_count(src[1]->data, e, n, &nseg, ctx);
    if (s != LOOM_OK || e * f == 0)
        return s;
    double *w = malloc((size_t)(2 - grad) * (size_t)(nseg * f) * sizeof *w);
    if (!w)
        return LOOM_ERR_NOMEM;
    if (grad)
        s = LOOM__DISPATCH_FLOAT(out->dtype, seg_softmax_grad, out->data, src[0]->data, src[1]->data, src[2]->data, e, f,
                                 nseg, w);
    else
        s = LOOM__DISPATCH_FLOAT(out->dtype, seg_softmax, out->data, src[0]->data, src[1]->data, e, f, nseg, w,
                                 w + nseg * f);
    free(w);
    return s;
}

/* ---- one_hot --------------------------------------------------------------------------------------- */

#define ONE_HOT(T, sfx)                                                                   \
    static void one_hot_##sfx(T *y, const int32_t *idx, int64_t n, int64_t classes)     \
    {                                                                                     \
        for (int64_t i = 0; i < n; i++, y += classes)                                     \
            for (int64_t c = 0; c < classes; c++)                                         \
                y[c] = (T)(c == idx[i]);                                                  \
    }
LOOM__FLOAT_TYPES(ONE_HOT)
#undef ONE_HOT

loom_status loom__cpu_one_hot(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const int64_t n = loom__numel(src[0]), classes = t->a.i[0];
    loom_status s = loom__one_hot_operands(t, out, src[0], ctx);
    if (s == LOOM_OK)
        s = check_idx(src[0]->data, n, classes, "loom_one_hot's classes", ctx);
    if (s != LOOM_OK)
        return s;
    return LOOM__DISPATCH_FLOAT(out->dtype, one_hot, out->data, src[0]->data, n, classes);
}
