/* What every device's kernel of an op checks and plans on the host before it runs (internal): the
 * broadcast plan of the binary ops, the plan of expand (its stride walk and scale), the operands of
 * spmm. One definition each, used by the CPU kernels (ops/cpu/) and the CUDA launchers (ops/cuda/),
 * so the devices agree on what they accept, on the message when they refuse, and on the walk they
 * take. */
#ifndef LOOM_OPS_OPERANDS_H
#define LOOM_OPS_OPERANDS_H

#include <math.h>

#include "ops/shared/runs.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The merged broadcast plan of y = a op b (or of y = f(a, b, c), three operands): each operand gets
 * an element stride per output dim (0 where it is stretched), dims of size 1 are dropped, and
 * neighbouring dims that every operand walks as one are merged, innermost last. Same-shape
 * operands collapse to one flat dim, a row broadcast [R, C] op [C] to [R, C] with strides (C, 1)
 * and (0, 1). Dims from nd on are 1 with strides 0; sc is all 0 for two operands. */
typedef struct loom__bcast {
    int nd;                    /* >= 1 */
    int64_t n[LOOM_MAX_DIMS];  /* sizes, outermost first */
    int64_t sa[LOOM_MAX_DIMS]; /* element strides of a, b and c per dim; 0: broadcast */
    int64_t sb[LOOM_MAX_DIMS];
    int64_t sc[LOOM_MAX_DIMS];
    int64_t total;             /* output elements */
} loom__bcast;

/* The plan for out = a op b; LOOM_ERR_SHAPE (ctx's message) when a shape does not broadcast to out's. */
loom_status loom__bcast_plan(loom__bcast *p, const loom__value *out, const loom__value *a, const loom__value *b,
                             const loom__kctx *ctx);
/* The same for three operands (c NULL: two). */
loom_status loom__bcast_plan3(loom__bcast *p, const loom__value *out, const loom__value *a, const loom__value *b,
                              const loom__value *c, const loom__kctx *ctx);

/* The plan of a three-operand elementwise op t (where, minmax_grad: ops/binary.c) with its checks:
 * where(cond, a, b) plans (a, b, cond), cond u8 and a, b of out's dtype (the two-source where(cond, x)
 * plans (x, x, cond)); minmax_grad(a, b, gout)
 * plans (a, b, gout), all of out's dtype. LOOM_ERR_DTYPE or LOOM_ERR_SHAPE with ctx's message. */
loom_status loom__ternary_plan(loom__bcast *p, const loom_tensor *t, const loom__value *out, loom__value *const *src,
                               const loom__kctx *ctx);

/* minimum and maximum (max set) of u and o pick u: when u is NaN, or o is not and u <= o (min) or
 * u >= o (max). A NaN wins, as in PyTorch; a tie takes u (the same value). */
static inline LOOM__HD int loom__minmax_picks(double u, double o, int max)
{
    return u != u || (o == o && (max ? u >= o : u <= o));
}

/* The share of the gradient of minimum or maximum (max set) that goes to operand u against o (first:
 * u is the op's first operand): 1 where u alone gives the result, 0.5 each on a tie (PyTorch's
 * rule), 0 where o gives it. With NaNs the one the forward pass picked takes all of it. */
static inline LOOM__HD double loom__minmax_share(double u, double o, int first, int max)
{
    if (u != u || o != o)
        return (first ? loom__minmax_picks(u, o, max) : !loom__minmax_picks(o, u, max)) ? 1.0 : 0.0;
    return u == o ? 0.5 : (max ? u > o : u < o) ? 1.0 : 0.0;
}

/* The plan of expand (op t, out = x stretched to out's shape): the walk, out's dims reading x through
 * strides (0 where x is stretched, leading dims included); out's element count (0: nothing to run);
 * and the factor every element is scaled by, x's count over out's when t is scaled (the gradient of
 * a mean), else 1. LOOM_ERR_SHAPE or LOOM_ERR_DTYPE (ctx's message) when x is not a broadcast of out. */
typedef struct loom__expand {
    loom__runs w;
    int64_t n;
    double scale;
} loom__expand;
loom_status loom__expand_plan(loom__expand *p, const loom_tensor *t, const loom__value *out, const loom__value *x,
                              const loom__kctx *ctx);

/* A dense value viewed as [outer, c, inner] around its axis `axis` (softmax's and argmax's): c the
 * axis's size, outer and inner the products of the dims before and after it. LOOM_ERR_SHAPE with
 * ctx's message when axis is not one of v's. */
loom_status loom__axis_view(const loom__value *v, int axis, int64_t *outer, int64_t *c, int64_t *inner,
                            const loom__kctx *ctx);

/* The operands of argmax (op t) from x to out: x as [outer, c, inner] around t's axis, out i32 of
 * outer * inner elements, c >= 1 when there is an output. LOOM_ERR_SHAPE with ctx's message. */
loom_status loom__argmax_operands(const loom_tensor *t, const loom__value *out, const loom__value *x, int64_t *outer,
                                  int64_t *c, int64_t *inner, const loom__kctx *ctx);

/* The operands of segment_softmax (x, seg) or its gradient (y, seg, gout) for op t into out: rows
 * *e of *f elements each, every value of one float dtype, seg one i32 per row; *n the bound of the
 * segments (a.i[0], or its dynamic dim's bound). LOOM_ERR_SHAPE with ctx's message. */
loom_status loom__segment_softmax_operands(const loom_tensor *t, const loom__value *out, loom__value *const *src,
                                           int64_t *e, int64_t *f, int64_t *n, const loom__kctx *ctx);

/* The operands of one_hot (op t): idx i32, out of its elements times the classes (a.i[0]);
 * LOOM_ERR_SHAPE with ctx's message. */
loom_status loom__one_hot_operands(const loom_tensor *t, const loom__value *out, const loom__value *idx,
                                   const loom__kctx *ctx);

/* The index of the largest of c >= 1 values x[0], x[stride], ...: the first of ties, and the first
 * NaN where there is one (PyTorch's rule); argmax's kernels on every device. */
#define LOOM__ARGMAX(T, sfx)                                                                   \
    static inline LOOM__HD int64_t loom__argmax_##sfx(const T *x, int64_t c, int64_t stride) \
    {                                                                                        \
        int64_t best = 0;                                                                    \
        T bv = x[0];                                                                         \
        for (int64_t j = 1; j < c && bv == bv; j++) {                                        \
            const T v = x[j * stride];                                                       \
            if (v > bv || v != v) {                                                          \
                bv = v;                                                                      \
                best = j;                                                                    \
            }                                                                                \
        }                                                                                    \
        return best;                                                                         \
    }
LOOM__ARGMAX(float, f32)
LOOM__ARGMAX(double, f64)
#undef LOOM__ARGMAX

/* Elements per row of a dense value: the product of its dims after the first (1 when 1-D). */
int64_t loom__row_size(const loom__value *v);

/* The operands of spmm (adj CSR [R, C], x dense, transpose as the op's attribute): x has
 * transpose ? R : C rows, out R or C rows of x's row size, one float dtype throughout; *f gets
 * the row size, *out_rows the output's rows. LOOM_ERR_SHAPE / LOOM_ERR_DTYPE with ctx's message. */
loom_status loom__spmm_operands(const loom__value *adj, const loom__value *x, const loom__value *out, int transpose,
                                int64_t *f, int64_t *out_rows, const loom__kctx *ctx);

/* The geometry of a 2-D pooling (max_pool2d, avg_pool2d and their gradients, ops/pool.c): x
 * [N, C, H, W] read by windows of kh x kw at strides sh, sw, padded by ph, pw on each side, into
 * y [N, C, P, Q]; a plane is one (n, c). */
typedef struct loom__pool2d {
    int64_t planes, h, w, p, q;
    int64_t kh, kw, sh, sw, ph, pw;
} loom__pool2d;

/* The geometry of t's pooling (its attributes, a.i[0 .. 5] = kh, kw, sh, sw, ph, pw) between x,
 * shaped like the pooled input, and y, shaped like the pooled output; LOOM_ERR_SHAPE with ctx's
 * message when they do not fit each other. */
loom_status loom__pool2d_plan(loom__pool2d *g, const loom_tensor *t, const loom__value *x, const loom__value *y,
                              const loom__kctx *ctx);

/* The input rows [*lo, *hi) that output row p's window covers along an axis of n (padding left
 * out); never empty for the geometries shape inference admits (pad at most half the kernel). */
static inline LOOM__HD void loom__pool_window(int64_t p, int64_t k, int64_t s, int64_t pad, int64_t n, int64_t *lo,
                                              int64_t *hi)
{
    const int64_t a = p * s - pad, b = a + k;
    *lo = a > 0 ? a : 0;
    *hi = b < n ? b : n;
}

/* The output rows [*lo, *hi) of np whose windows cover input row i. */
static inline LOOM__HD void loom__pool_covering(int64_t i, int64_t k, int64_t s, int64_t pad, int64_t np, int64_t *lo,
                                                int64_t *hi)
{
    const int64_t first = i + pad - k + 1, last = (i + pad) / s + 1; /* p s <= i + pad */
    *lo = first <= 0 ? 0 : (first + s - 1) / s;
    *hi = last < np ? last : np;
}

/* 1 when v reaches m, the max of its window: the max pool's gradient goes to the window's first
 * element that does (a NaN max is reached by a NaN). */
static inline LOOM__HD int loom__pool_reaches(double v, double m) { return v >= m || (m != m && v != v); }

/* A batch norm's operand x viewed as [N, C, M] around its channel axis 1 (M the product of the
 * axes after it, 1 for [N, C]), with its statistics stats, f64 [C, 3] (per channel the sums of x
 * and x^2, and the count; ops/norm.c). LOOM_ERR_SHAPE with ctx's message when x has fewer than 2
 * axes or the statistics are not f64 [C, 3]. */
typedef struct loom__chan {
    int64_t n, c, m;
} loom__chan;
loom_status loom__bn_operands(loom__chan *v, const loom__value *x, const loom__value *stats, const loom__kctx *ctx);

/* LOOM_OK when the batch x of a training run (its part, with ctx's whole sizes) has more than one
 * value per channel, which batch statistics need (PyTorch's rule); else LOOM_ERR_SHAPE with ctx's
 * message. */
loom_status loom__bn_batch_check(const loom__value *x, const loom__kctx *ctx);

/* The mean and 1 / sqrt(var + eps) of a channel's statistics st (sum, sum of squares, count), var
 * the biased variance (0 where rounding makes it negative). */
static inline LOOM__HD void loom__bn_moments(const double *st, double eps, double *mean, double *rstd)
{
    const double m = st[0] / st[2], v = st[1] / st[2] - m * m;
    *mean = m;
    *rstd = 1 / sqrt((v > 0 ? v : 0) + eps);
}

/* A running statistic r after a step: (1 - momentum) r + momentum stat, stat the channel's mean or
 * (var set) its unbiased variance (the biased one for a count of 1). */
static inline LOOM__HD double loom__bn_running(double r, const double *st, int var, double momentum)
{
    const double n = st[2], m = st[0] / n, v = st[1] / n - m * m, b = v > 0 ? v : 0;
    const double stat = !var ? m : n > 1 ? b * n / (n - 1) : b;
    return (1 - momentum) * r + momentum * stat;
}

/* A layer norm's operand x as rows of f elements, the last `axes` axes normalised; LOOM_ERR_SHAPE
 * with ctx's message when x has fewer axes. */
loom_status loom__ln_rows(const loom__value *x, int axes, int64_t *rows, int64_t *f, const loom__kctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
