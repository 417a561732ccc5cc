/* CPU kernels of sum, mean and expand.
 *
 * Both walk their operand through runs of merged dims (ops/cpu/shape.h): [N, C] reduced over N is
 * one kept run of C (stride 1) and one reduced run of N (stride C), and expanding [C] to [N, C] is
 * a run of N with stride 0 around a run of C. */
#include "ops/cpu/reduce.h"

#include <stdio.h>

#include "ops/cpu/cpu.h"
#include "ops/cpu/shape.h"
#include "ops/shared/operands.h"


/* ---- sum, mean --------------------------------------------------------------------------------- */

/* y = sum (or mean) of x over the reduced runs. Outputs are made in blocks of up to BLOCK: when
 * x's innermost dim is kept (the bias gradient [N, C] -> [C]), a block is that many neighbouring
 * outputs, summed together so x is read along its rows rather than down its columns; otherwise a
 * block is one output. The last reduced run is the loop inside the block's rows. count > 0, and
 * every run has n > 1 or is the one padding run of red. */
enum { BLOCK = 64 };
#define REDUCE(T, sfx)                                                                                       \
    static void reduce_##sfx(T *y, const T *x, const loom__runs *kept, const loom__runs *red, int64_t count, \
                             int mean)                                                                       \
    {                                                                                                        \
        loom__runs ko = *kept, ro = *red; /* the runs outside the innermost kept / reduced one */            \
        const int64_t inner = ko.nd > 0 && ko.s[ko.nd - 1] == 1 ? ko.n[--ko.nd] : 1;                         \
        const int64_t in_n = ro.n[ro.nd - 1], in_s = ro.s[ro.nd - 1], rows = count / in_n;                   \
        ro.nd--;                                                                                             \
        int64_t nouter = 1;                                                                                  \
        for (int d = 0; d < ko.nd; d++)                                                                      \
            nouter *= ko.n[d];                                                                               \
        int64_t ki[LOOM_MAX_DIMS] = {0}, base = 0;                                                           \
        for (int64_t o = 0; o < nouter; o++, y += inner) {                                                   \
            for (int64_t j0 = 0; j0 < inner; j0 += BLOCK) {                                                  \
                const int64_t nb = inner - j0 < BLOCK ? inner - j0 : BLOCK;                                  \
                double acc[BLOCK] = {0};                                                                     \
                int64_t ri[LOOM_MAX_DIMS] = {0}, off = base + j0;                                            \
                for (int64_t r = 0; r < rows; r++) {                                                         \
                    for (int64_t i = 0; i < in_n; i++) {                                                     \
                        const T *p = x + off + i * in_s;                                                     \
                        for (int64_t j = 0; j < nb; j++)                                                     \
                            acc[j] += p[j];                                                                  \
                    }                                                                                        \
                    loom__runs_next(&ro, ri, &off);                                                          \
                }                                                                                            \
                for (int64_t j = 0; j < nb; j++)                                                             \
                    y[j0 + j] = (T)(mean ? acc[j] / (double)count : acc[j]);                                 \
            }                                                                                                \
            loom__runs_next(&ko, ki, &base);                                                                 \
        }                                                                                                    \
    }
LOOM__FLOAT_TYPES(REDUCE)
#undef REDUCE

#define ZERO(T, sfx)                        \
    static void zero_##sfx(T *y, int64_t n) \
    {                                       \
        for (int64_t i = 0; i < n; i++)     \
            y[i] = 0;                       \
    }
LOOM__FLOAT_TYPES(ZERO)
#undef ZERO

static loom_status reduce(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx,
                          int mean)
{
    const loom__value *x = src[0];
    uint32_t mask = (uint32_t)t->a.i[0];
    int64_t stride[LOOM_MAX_DIMS], st = 1, count = 1;
    for (int i = x->ndim - 1; i >= 0; i--) {
        stride[i] = st;
        st *= x->shape[i];
    }
    loom__runs kept = {0}, red = {0};
    for (int i = 0; i < x->ndim; i++) {
        if (mask >> i & 1) {
            loom__runs_push(&red, x->shape[i], stride[i]);
            count *= x->shape[i];
        } else {
            loom__runs_push(&kept, x->shape[i], stride[i]);
        }
    }
    int64_t nout = loom__numel(out);
    if (nout * count != loom__numel(x))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "output has %lld elements for %lld inputs reduced %lld to one (internal error)",
                     (long long)nout, (long long)loom__numel(x), (long long)count);
    if (nout == 0)
        return LOOM_OK;
    if (count == 0) /* an empty sum is 0, and so is (by Loom's convention) an empty mean */
        return LOOM__DISPATCH_FLOAT(out->dtype, zero, out->data, nout);
    if (red.nd == 0) { /* nothing to reduce: one padding run of a single element */
        red.n[0] = 1;
        red.s[0] = 0;
        red.nd = 1;
    }
    return LOOM__DISPATCH_FLOAT(out->dtype, reduce, out->data, x->data, &kept, &red, count, mean);
}

loom_status loom__cpu_sum(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return reduce(t, out, src, ctx, 0);
}

loom_status loom__cpu_mean(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return reduce(t, out, src, ctx, 1);
}

/* ---- expand ------------------------------------------------------------------------------------ */

/* y[o] = x[off(o)] * scale, off walking w (a plan over y's dims with x's strides, 0 = stretched). */
#define EXPAND(T, sfx)                                                                       \
    static void expand_##sfx(T *y, const T *x, int64_t n, const loom__runs *w, double scale) \
    {                                                                                        \
        if (w->nd == 0) {                                                                    \
            for (int64_t o = 0; o < n; o++)                                                  \
                y[o] = (T)(x[0] * scale);                                                    \
            return;                                                                          \
        }                                                                                    \
        const int64_t in_n = w->n[w->nd - 1], in_s = w->s[w->nd - 1];                        \
        loom__runs outer = *w;                                                               \
        outer.nd--;                                                                          \
        int64_t idx[LOOM_MAX_DIMS] = {0}, off = 0;                                           \
        for (int64_t o = 0; o < n; o += in_n) {                                              \
            for (int64_t j = 0; j < in_n; j++)                                               \
                y[o + j] = (T)(x[off + j * in_s] * scale);                                   \
            loom__runs_next(&outer, idx, &off);                                              \
        }                                                                                    \
    }
LOOM__FLOAT_TYPES(EXPAND)
#undef EXPAND

loom_status loom__cpu_expand(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *x = src[0];
    loom__expand p;
    loom_status s = loom__expand_plan(&p, t, out, x, ctx);
    if (s != LOOM_OK || p.n == 0)
        return s;
    return LOOM__DISPATCH_FLOAT(out->dtype, expand, out->data, x->data, p.n, &p.w, p.scale);
}

/* ---- argmax ------------------------------------------------------------------------------------ */

#define ARGMAX(T, sfx)                                                                              \
    static void argmax_##sfx(int32_t *y, const T *x, int64_t outer, int64_t c, int64_t inner)       \
    {                                                                                               \
        for (int64_t o = 0; o < outer; o++)                                                         \
            for (int64_t i = 0; i < inner; i++)                                                     \
                y[o * inner + i] = (int32_t)loom__argmax_##sfx(x + o * c * inner + i, c, inner);    \
    }
LOOM__FLOAT_TYPES(ARGMAX)
#undef ARGMAX

loom_status loom__cpu_argmax(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t outer, c, inner;
    loom_status s = loom__argmax_operands(t, out, src[0], &outer, &c, &inner, ctx);
    if (s != LOOM_OK || outer * inner == 0)
        return s;
    return LOOM__DISPATCH_FLOAT(src[0]->dtype, argmax, out->data, src[0]->data, outer, c, inner);
}
