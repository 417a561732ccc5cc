/* CPU kernels of the binary elementwise ops.
 *
 * Broadcasting goes through the plan every device shares (loom__bcast_plan, ops/shared/operands.h):
 * same-shape operands collapse to one flat loop and a row broadcast [R, C] op [C] to R rows of C,
 * so the common cases need no special code: only the innermost loop is specialised on its strides
 * (each 0 or 1), which the compiler vectorises. */
#include "ops/cpu/binary.h"

#include <inttypes.h>
#include <stdio.h>

#include "ops/cpu/cpu.h"
#include "ops/shared/operands.h"

/* One loop per op and dtype: rows of the innermost dim, an odometer over the outer dims. */
#define BIN_LOOP(name, T, sfx, OP)                                                              \
    static void name##_##sfx(T *y, const T *a, const T *b, const loom__bcast *p)                      \
    {                                                                                           \
        const int nd = p->nd;                                                                   \
        const int64_t inner = p->n[nd - 1], ia = p->sa[nd - 1], ib = p->sb[nd - 1];             \
        const int64_t rows = p->total / inner;                                                  \
        int64_t idx[LOOM_MAX_DIMS] = {0}, oa = 0, ob = 0;                                       \
        for (int64_t r = 0; r < rows; r++, y += inner) {                                        \
            const T *pa = a + oa, *pb = b + ob;                                                 \
            if (ia && ib)                                                                       \
                for (int64_t j = 0; j < inner; j++)                                             \
                    y[j] = pa[j] OP pb[j];                                                      \
            else if (ia) {                                                                      \
                const T vb = pb[0];                                                             \
                for (int64_t j = 0; j < inner; j++)                                             \
                    y[j] = pa[j] OP vb;                                                         \
            } else if (ib) {                                                                    \
                const T va = pa[0];                                                             \
                for (int64_t j = 0; j < inner; j++)                                             \
                    y[j] = va OP pb[j];                                                         \
            } else {                                                                            \
                const T v = pa[0] OP pb[0];                                                     \
                for (int64_t j = 0; j < inner; j++)                                             \
                    y[j] = v;                                                                   \
            }                                                                                   \
            for (int d = nd - 2; d >= 0; d--) {                                                 \
                oa += p->sa[d];                                                                 \
                ob += p->sb[d];                                                                 \
                if (++idx[d] < p->n[d])                                                         \
                    break;                                                                      \
                oa -= p->sa[d] * p->n[d];                                                       \
                ob -= p->sb[d] * p->n[d];                                                       \
                idx[d] = 0;                                                                     \
            }                                                                                   \
        }                                                                                       \
    }
#define BIN_DEF(name, OP) BIN_LOOP(name, float, f32, OP) BIN_LOOP(name, double, f64, OP)
BIN_DEF(add, +)
BIN_DEF(sub, -)
BIN_DEF(mul, *)
BIN_DEF(div, /)
#undef BIN_DEF
#undef BIN_LOOP

#define BIN_KERNEL(name)                                                                                        \
    loom_status loom__cpu_##name(const loom_tensor *t, loom__value *out, loom__value *const *src,               \
                                 const loom__kctx *ctx)                                                         \
    {                                                                                                           \
        (void)t;                                                                                                \
        loom__bcast p;                                                                                                \
        loom_status s = loom__bcast_plan(&p, out, src[0], src[1], ctx);                                                \
        if (s != LOOM_OK || p.total == 0)                                                                       \
            return s;                                                                                           \
        return LOOM__DISPATCH_FLOAT(out->dtype, name, out->data, src[0]->data, src[1]->data, &p);               \
    }
BIN_KERNEL(add)
BIN_KERNEL(sub)
BIN_KERNEL(mul)
BIN_KERNEL(div)
#undef BIN_KERNEL

/* ---- scale and bias_add ----------------------------------------------------------------------- */

#define SCALE(T, sfx)                                                  \
    static void scale_##sfx(T *y, const T *x, int64_t n, double s)     \
    {                                                                  \
        const T v = (T)s;                                              \
        for (int64_t i = 0; i < n; i++)                                \
            y[i] = x[i] * v;                                           \
    }
LOOM__FLOAT_TYPES(SCALE)
#undef SCALE

loom_status loom__cpu_scale(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)ctx;
    return LOOM__DISPATCH_FLOAT(out->dtype, scale, out->data, src[0]->data, loom__numel(out), t->a.f[0]);
}

/* y [rows, c] = x [rows, c] + b [c] */
#define BIAS(T, sfx)                                                         \
    static void bias_##sfx(T *y, const T *x, const T *b, int64_t rows, int64_t c) \
    {                                                                        \
        for (int64_t r = 0; r < rows; r++, x += c, y += c)                   \
            for (int64_t j = 0; j < c; j++)                                  \
                y[j] = x[j] + b[j];                                          \
    }
LOOM__FLOAT_TYPES(BIAS)
#undef BIAS

loom_status loom__cpu_bias_add(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    const loom__value *x = src[0], *b = src[1];
    int64_t n = loom__numel(x), c = b->ndim == 1 ? b->shape[0] : -1;
    if (x->ndim < 1 || c != x->shape[x->ndim - 1])
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "bias of %" PRId64 " elements does not match the last dim of x", loom__numel(b));
    if (n == 0 || c == 0)
        return LOOM_OK;
    return LOOM__DISPATCH_FLOAT(out->dtype, bias, out->data, x->data, b->data, n / c, c);
}
