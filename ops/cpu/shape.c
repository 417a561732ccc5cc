/* CPU kernels of the shape ops. Elements are moved by size (1, 4 or 8 bytes), never read as
 * numbers, so one kernel serves every dtype. Concat, slice and slice_grad see their operands as
 * [outer, axis, inner] and copy contiguous blocks of axis * inner elements. */
#include "ops/cpu/shape.h"

#include <stdio.h>
#include <string.h>

#include "ops/cpu/cpu.h"


loom_status loom__cpu_reshape(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    int64_t n = loom__numel(out);
    if (loom__numel(src[0]) != n)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%lld elements cannot be reshaped to %lld (internal error)",
                     (long long)loom__numel(src[0]), (long long)n);
    memcpy(out->data, src[0]->data, (size_t)n * loom_dtype_size(out->dtype));
    return LOOM_OK;
}

/* ---- transpose: a strided gather ---------------------------------------------------------------- */

/* y[o] = x[off(o)] for the n elements of y in order, off walking w. */
#define WALK(T, sfx)                                                         \
    static void walk_##sfx(T *y, const T *x, int64_t n, const loom__runs *w) \
    {                                                                        \
        if (w->nd == 0) {                                                    \
            if (n)                                                           \
                y[0] = x[0];                                                 \
            return;                                                          \
        }                                                                    \
        const int64_t in_n = w->n[w->nd - 1], in_s = w->s[w->nd - 1];        \
        loom__runs outer = *w;                                               \
        outer.nd--;                                                          \
        int64_t idx[LOOM_MAX_DIMS] = {0}, off = 0;                           \
        for (int64_t o = 0; o < n; o += in_n) {                              \
            for (int64_t j = 0; j < in_n; j++)                               \
                y[o + j] = x[off + j * in_s];                                \
            loom__runs_next(&outer, idx, &off);                              \
        }                                                                    \
    }
WALK(uint8_t, 1)
WALK(uint32_t, 4)
WALK(uint64_t, 8)
#undef WALK

loom_status loom__cpu_transpose(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *x = src[0];
    int64_t stride[LOOM_MAX_DIMS], st = 1;
    if (x->ndim != out->ndim)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "rank %d transposed to rank %d (internal error)", x->ndim, out->ndim);
    for (int i = x->ndim - 1; i >= 0; i--) {
        stride[i] = st;
        st *= x->shape[i];
    }
    loom__runs w = {0};
    for (int i = 0; i < out->ndim; i++)
        loom__runs_push(&w, out->shape[i], stride[t->a.i[i]]);
    int64_t n = loom__numel(out);
    if (n == 0)
        return LOOM_OK;
    switch (loom_dtype_size(out->dtype)) {
    case 1: walk_1(out->data, x->data, n, &w); break;
    case 4: walk_4(out->data, x->data, n, &w); break;
    case 8: walk_8(out->data, x->data, n, &w); break;
    default: return loom__kfail(ctx, LOOM_ERR_DTYPE, "no transpose for dtype %s", loom_dtype_name(out->dtype));
    }
    return LOOM_OK;
}

/* ---- concat, slice, slice_grad: blocks along one axis ------------------------------------------- */

/* Product of v's dims before axis (*outer) and after it (*inner). */
static void split(const loom__value *v, int axis, int64_t *outer, int64_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= v->shape[i];
    for (int i = axis + 1; i < v->ndim; i++)
        *inner *= v->shape[i];
}

loom_status loom__cpu_concat(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int axis = (int)t->a.i[0];
    size_t es = loom_dtype_size(out->dtype);
    int64_t outer, inner, total = 0;
    split(out, axis, &outer, &inner);
    for (int k = 0; k < t->n_src; k++)
        total += src[k]->shape[axis];
    if (total != out->shape[axis])
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "sources add up to %lld along axis %d, output has %lld (internal error)",
                     (long long)total, axis, (long long)out->shape[axis]);
    char *y = out->data;
    size_t row = (size_t)(total * inner) * es; /* bytes of one outer index of out */
    size_t at = 0;
    for (int k = 0; k < t->n_src; k++) {
        size_t block = (size_t)(src[k]->shape[axis] * inner) * es;
        const char *x = src[k]->data;
        for (int64_t o = 0; o < outer && block; o++)
            memcpy(y + (size_t)o * row + at, x + (size_t)o * block, block);
        at += block;
    }
    return LOOM_OK;
}

loom_status loom__cpu_slice(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *x = src[0];
    int axis = (int)t->a.i[0];
    int64_t start = t->a.i[1], end = t->a.i[2], outer, inner;
    if (end > x->shape[axis] || out->shape[axis] != end - start)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "slice [%lld, %lld) of a dim of %lld (internal error)", (long long)start,
                     (long long)end, (long long)x->shape[axis]);
    size_t es = loom_dtype_size(out->dtype);
    split(x, axis, &outer, &inner);
    size_t row = (size_t)(x->shape[axis] * inner) * es, block = (size_t)((end - start) * inner) * es;
    size_t first = (size_t)(start * inner) * es;
    char *y = out->data;
    const char *xd = x->data;
    for (int64_t o = 0; o < outer && block; o++)
        memcpy(y + (size_t)o * block, xd + (size_t)o * row + first, block);
    return LOOM_OK;
}

loom_status loom__cpu_slice_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *g = src[0];
    int axis = (int)t->a.i[0];
    int64_t start = t->a.i[1], end = t->a.i[2], outer, inner;
    if (end > out->shape[axis] || g->shape[axis] != end - start)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "slice [%lld, %lld) of a dim of %lld (internal error)", (long long)start,
                     (long long)end, (long long)out->shape[axis]);
    size_t es = loom_dtype_size(out->dtype);
    split(out, axis, &outer, &inner);
    size_t row = (size_t)(out->shape[axis] * inner) * es, block = (size_t)((end - start) * inner) * es;
    size_t first = (size_t)(start * inner) * es;
    char *y = out->data;
    const char *gd = g->data;
    memset(y, 0, (size_t)(outer * out->shape[axis] * inner) * es); /* all-zero bytes are 0.0 and 0 */
    for (int64_t o = 0; o < outer && block; o++)
        memcpy(y + (size_t)o * row + first, gd + (size_t)o * block, block);
    return LOOM_OK;
}
