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

/* One loop per op and dtype: rows of the innermost dim, an odometer over the outer dims; OP(x, y)
 * is the op on two values. */
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
                    y[j] = OP(pa[j], pb[j]);                                                      \
            else if (ia) {                                                                      \
                const T vb = pb[0];                                                             \
                for (int64_t j = 0; j < inner; j++)                                             \
                    y[j] = OP(pa[j], vb);                                                            \
            } else if (ib) {                                                                    \
                const T va = pa[0];                                                             \
                for (int64_t j = 0; j < inner; j++)                                             \
                    y[j] = OP(va, pb[j]);                                                            \
            } else {                                                                            \
                const T v = OP(pa[0], pb[0]);                                                     \
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
#define ADD(x, y) ((x) + (y))
#define SUB(x, y) ((x) - (y))
#define MUL(x, y) ((x) * (y))
#define DIV(x, y) ((x) / (y))
#define MIN(x, y) (loom__minmax_picks((x), (y), 0) ? (x) : (y))
#define MAX(x, y) (loom__minmax_picks((x), (y), 1) ? (x) : (y))
BIN_DEF(add, ADD)
BIN_DEF(sub, SUB)
BIN_DEF(mul, MUL)
BIN_DEF(div, DIV)
BIN_DEF(minimum, MIN)
BIN_DEF(maximum, MAX)
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
BIN_KERNEL(minimum)
BIN_KERNEL(maximum)
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

/* ---- three operands: where and minmax_grad ------------------------------------------------------ */

/* y = EXPR(x = a's element, w = b's, z = c's; k the op's integer), the plan's odometer walking all
 * three. c is of type TC (where's u8 condition). */
#define TER_LOOP(name, T, sfx, TC, EXPR)                                                                      \
    static void name##_##sfx(T *y, const T *a, const T *b, const TC *c, const loom__bcast *p, int64_t k)       \
    {                                                                                                         \
        (void)k;                                                                                              \
        const int nd = p->nd;                                                                                 \
        const int64_t inner = p->n[nd - 1], ia = p->sa[nd - 1], ib = p->sb[nd - 1], ic = p->sc[nd - 1];       \
        const int64_t rows = p->total / inner;                                                                \
        int64_t idx[LOOM_MAX_DIMS] = {0}, oa = 0, ob = 0, oc = 0;                                             \
        for (int64_t r = 0; r < rows; r++, y += inner) {                                                      \
            for (int64_t j = 0; j < inner; j++) {                                                             \
                const T x = a[oa + j * ia], w = b[ob + j * ib];                                               \
                const TC z = c[oc + j * ic];                                                                  \
                y[j] = (EXPR);                                                                                \
            }                                                                                                 \
            for (int d = nd - 2; d >= 0; d--) {                                                               \
                oa += p->sa[d];                                                                               \
                ob += p->sb[d];                                                                               \
                oc += p->sc[d];                                                                               \
                if (++idx[d] < p->n[d])                                                                       \
                    break;                                                                                    \
                oa -= p->sa[d] * p->n[d];                                                                     \
                ob -= p->sb[d] * p->n[d];                                                                     \
                oc -= p->sc[d] * p->n[d];                                                                     \
                idx[d] = 0;                                                                                   \
            }                                                                                                 \
        }                                                                                                     \
    }
/* where(cond, a, b): a where cond, else b (k = 0); the two-source where(cond, x): x where cond (k
 * = 1) or where not (k = 2), else 0. */
#define WHERE(x, w, z, k) ((k) == 0 ? ((z) ? (x) : (w)) : ((z) != 0) == ((k) == 1) ? (x) : 0)
TER_LOOP(where, float, f32, uint8_t, WHERE(x, w, z, k))
TER_LOOP(where, double, f64, uint8_t, WHERE(x, w, z, k))
#undef WHERE
/* minmax_grad(a, b, gout): gout times the share of operand k & 1 (0: a, 1: b) of min or max (k & 2). */
#define SHARE(x, w, k) ((k) & 1 ? loom__minmax_share((w), (x), 0, (int)((k) >> 1)) : loom__minmax_share((x), (w), 1, (int)((k) >> 1)))
TER_LOOP(minmax_grad, float, f32, float, z * (float)SHARE(x, w, k))
TER_LOOP(minmax_grad, double, f64, double, z * SHARE(x, w, k))
#undef SHARE
#undef TER_LOOP

loom_status loom__cpu_where(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    loom__bcast p;
    loom_status s = loom__ternary_plan(&p, t, out, src, ctx);
    if (s != LOOM_OK || p.total == 0)
        return s;
    const void *b = (t->n_src == 3 ? src[2] : src[1])->data;
    return LOOM__DISPATCH_FLOAT(out->dtype, where, out->data, src[1]->data, b, src[0]->data, &p, t->a.i[0]);
}

loom_status loom__cpu_minmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    loom__bcast p;
    loom_status s = loom__ternary_plan(&p, t, out, src, ctx);
    if (s != LOOM_OK || p.total == 0)
        return s;
    return LOOM__DISPATCH_FLOAT(out->dtype, minmax_grad, out->data, src[0]->data, src[1]->data, src[2]->data, &p,
                                t->a.i[0]);
}
