/* CPU kernels of the binary elementwise ops.
 *
 * Broadcasting goes through one plan: each operand gets a stride per output dim (0 where it is
 * stretched), dims of size 1 are dropped, and neighbouring dims that both operands walk
 * contiguously (or both broadcast) are merged. Same-shape operands collapse to one flat loop and
 * a row broadcast [R, C] op [C] to R rows of C, so the common cases need no special code: only the
 * innermost loop is specialised on its strides (each 0 or 1), which the compiler vectorises. */
#include "ops/cpu/binary.h"

#include <inttypes.h>
#include <stdio.h>

#include "ops/cpu/cpu.h"

typedef struct bplan {
    int nd;                    /* >= 1 */
    int64_t n[LOOM_MAX_DIMS];  /* sizes, outermost first */
    int64_t sa[LOOM_MAX_DIMS]; /* element strides of a and b per dim; 0 = broadcast */
    int64_t sb[LOOM_MAX_DIMS];
    int64_t total; /* output elements */
} bplan;


/* Strides of v aligned to out's nd dims (from the right); fails when a dim neither matches nor is 1. */
static int align_strides(const loom__value *v, int nd, const int64_t *oshape, int64_t *s)
{
    if (v->ndim > nd)
        return 0;
    int64_t st = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int j = i - (nd - v->ndim);
        if (j < 0) {
            s[i] = 0;
            continue;
        }
        if (v->shape[j] == oshape[i])
            s[i] = st;
        else if (v->shape[j] == 1)
            s[i] = 0;
        else
            return 0;
        st *= v->shape[j];
    }
    return 1;
}

static loom_status make_plan(bplan *p, const loom__value *out, const loom__value *a, const loom__value *b,
                             const loom__kctx *ctx)
{
    int nd = out->ndim;
    int64_t sa[LOOM_MAX_DIMS], sb[LOOM_MAX_DIMS];
    if (!align_strides(a, nd, out->shape, sa) || !align_strides(b, nd, out->shape, sb))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "operand shapes do not broadcast to the output's at run time");
    p->total = loom__numel(out);
    int k = 0;
    for (int i = 0; i < nd; i++) {
        int64_t n = out->shape[i];
        if (n == 1)
            continue;
        if (k > 0 && p->sa[k - 1] == sa[i] * n && p->sb[k - 1] == sb[i] * n) {
            p->n[k - 1] *= n;
            p->sa[k - 1] = sa[i];
            p->sb[k - 1] = sb[i];
        } else {
            p->n[k] = n;
            p->sa[k] = sa[i];
            p->sb[k] = sb[i];
            k++;
        }
    }
    if (k == 0) { /* every dim 1, or a scalar */
        p->n[0] = 1;
        p->sa[0] = p->sb[0] = 0;
        k = 1;
    }
    p->nd = k;
    return LOOM_OK;
}

/* One loop per op and dtype: rows of the innermost dim, an odometer over the outer dims. */
#define BIN_LOOP(name, T, sfx, OP)                                                              \
    static void name##_##sfx(T *y, const T *a, const T *b, const bplan *p)                      \
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
        bplan p;                                                                                                \
        loom_status s = make_plan(&p, out, src[0], src[1], ctx);                                                \
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
