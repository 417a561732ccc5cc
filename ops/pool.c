/* 2-D pooling over NCHW tensors, with its gradient ops; global average pooling and flatten, which
 * are builders over existing ops. Kernels live in ops/cpu/pool2d.c and ops/cuda/pool2d.cu.
 *
 *   max_pool2d(x), avg_pool2d(x):  x [N, C, H, W] float -> [N, C, P, Q], P = (H + 2 ph - kh) / sh
 *                     + 1 (Q likewise); a.i[0 .. 5] = kh, kw, sh, sw, ph, pw. Padding never wins a
 *                     max; an average divides by kh kw, padding counted (PyTorch's default
 *                     count_include_pad=True).
 *   max_pool2d_grad(x, y, gout):  x's shape: each output's gradient goes to the first element of
 *                     its window in row-major order that reaches y (the forward's first max).
 *   avg_pool2d_grad(gout, x):     x's shape: gout / (kh kw) spread over each window; x's data is
 *                     never read. */
#include <stdio.h>

#include "graphs/core/op.h"
#include "ops/cpu/pool2d.h"
#include "ops/sbp_sigs.h"

static const char *const axis_name[2] = {"H", "W"};

/* x: a dense float [N, C, H, W] with static H and W; the window of t's attributes fits it. Sets
 * the pooled shape [N, C, P, Q] into *y. */
static loom_status pool_geometry(const loom_tensor *t, const loom_tensor *x, loom_shape *y, char *msg, size_t len)
{
    const int64_t *a = t->a.i;
    char b[160];
    if (x->layout != LOOM__DENSE)
        return snprintf(msg, len, "x is a CSR matrix; pooling takes a dense [N, C, H, W] tensor"), LOOM_ERR_INVALID;
    if (!loom_dtype_is_float(x->dtype))
        return snprintf(msg, len, "x is %s; pooling takes f32 or f64", loom_dtype_name(x->dtype)), LOOM_ERR_DTYPE;
    if (x->shape.ndim != 4)
        return snprintf(msg, len, "x is %s; pooling takes [N, C, H, W]", loom__shape_str(t->graph, &x->shape, b, sizeof b)),
               LOOM_ERR_SHAPE;
    if (loom_dim_is_dynamic(x->shape.d[2]) || loom_dim_is_dynamic(x->shape.d[3]))
        return snprintf(msg, len, "x is %s; H and W (axes 2 and 3) must be static",
                        loom__shape_str(t->graph, &x->shape, b, sizeof b)),
               LOOM_ERR_SHAPE;
    if (a[0] < 1 || a[1] < 1 || a[2] < 1 || a[3] < 1)
        return snprintf(msg, len, "kernel %lldx%lld and stride %lldx%lld must be positive", (long long)a[0], (long long)a[1],
                        (long long)a[2], (long long)a[3]),
               LOOM_ERR_INVALID;
    *y = x->shape;
    for (int k = 0; k < 2; k++) {
        const int64_t n = x->shape.d[2 + k], ker = a[k], str = a[2 + k], pad = a[4 + k];
        /* PyTorch's rule: a window of padding alone would have no max */
        if (pad < 0 || pad > ker / 2)
            return snprintf(msg, len, "pad %lld along %s must be in [0, %lld], half the kernel %lld", (long long)pad,
                            axis_name[k], (long long)(ker / 2), (long long)ker),
                   LOOM_ERR_INVALID;
        if (ker > n + 2 * pad) /* n and pad are small: no overflow */
            return snprintf(msg, len, "kernel %lld along %s is larger than the padded input (%lld + 2 x %lld) of x %s",
                            (long long)ker, axis_name[k], (long long)n, (long long)pad,
                            loom__shape_str(t->graph, &x->shape, b, sizeof b)),
                   LOOM_ERR_SHAPE;
        y->d[2 + k] = (n + 2 * pad - ker) / str + 1;
    }
    return LOOM_OK;
}

/* g is a dense tensor of x's dtype and the pooled shape; what names it. */
static loom_status pooled_operand(const loom_tensor *t, const loom_tensor *g, const char *what, const loom_tensor *x,
                                  const loom_shape *y, char *msg, size_t len)
{
    if (g->layout == LOOM__DENSE && g->dtype == x->dtype && loom__shape_eq(&g->shape, y))
        return LOOM_OK;
    char b1[160], b2[160];
    snprintf(msg, len, "%s is %s %s; expected %s %s (internal error)", what, loom_dtype_name(g->dtype),
             loom__shape_str(t->graph, &g->shape, b1, sizeof b1), loom_dtype_name(x->dtype),
             loom__shape_str(t->graph, y, b2, sizeof b2));
    return LOOM_ERR_SHAPE;
}

static loom_status pool_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_shape y;
    loom_status s = pool_geometry(t, t->src[0], &y, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = y;
    return LOOM_OK;
}

/* max_pool2d_grad(x, y, gout), avg_pool2d_grad(gout, x): the gradient is x's shape. */
static loom_status pool_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    const int max = t->op == LOOM_OP_MAX_POOL2D_GRAD;
    const loom_tensor *x = t->src[max ? 0 : 1];
    loom_shape y;
    loom_status s = pool_geometry(t, x, &y, msg, len);
    if (s == LOOM_OK && max)
        s = pooled_operand(t, t->src[1], "y", x, &y, msg, len);
    if (s == LOOM_OK)
        s = pooled_operand(t, t->src[max ? 2 : 0], "gout", x, &y, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = x->dtype;
    t->layout = LOOM__DENSE;
    t->shape = x->shape;
    return LOOM_OK;
}

static void max_pool_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *src[3] = {t->src[0], t, gout};
    gsrc[0] = loom__node(g, "loom_max_pool2d (gradient)", LOOM_OP_MAX_POOL2D_GRAD, 3, src, &t->a);
}

static void avg_pool_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *src[2] = {gout, t->src[0]};
    gsrc[0] = loom__node(g, "loom_avg_pool2d (gradient)", LOOM_OP_AVG_POOL2D_GRAD, 2, src, &t->a);
}

/* Planes are independent: every source and the output split along N (the batch) or C alike; H and
 * W are windowed, so not split. The average and both gradients are linear in the pooled or
 * gradient operand (the max's gradient given x and y); avg_pool2d_grad reads only x's shape. */
static int pool_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM_AXIS(0) | LOOM_AXIS(1), sigs, 0, max);
    switch (t->op) {
    case LOOM_OP_AVG_POOL2D:
        return loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
    case LOOM_OP_MAX_POOL2D_GRAD:
        return loom__sbp_add_partial(t, 4, loom_partial_sum(), sigs, n, max);
    case LOOM_OP_AVG_POOL2D_GRAD:
        n = loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
        return loom__sbp_add_partial(t, 3, loom_partial_sum(), sigs, n, max);
    default:
        return n;
    }
}

const loom_op_def loom__op_max_pool2d = {.name = "max_pool2d", .min_src = 1, .max_src = 1, .infer = pool_infer,
                                         .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_max_pool2d, .grad = max_pool_grad, .diff_src = 1,
                                         .sbp = pool_sbp};
const loom_op_def loom__op_avg_pool2d = {.name = "avg_pool2d", .min_src = 1, .max_src = 1, .infer = pool_infer,
                                         .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_avg_pool2d, .grad = avg_pool_grad, .diff_src = 1,
                                         .sbp = pool_sbp};
/* No gradients: second derivatives of pooling are not supported. */
const loom_op_def loom__op_max_pool2d_grad = {.name = "max_pool2d_grad", .min_src = 3, .max_src = 3,
                                              .infer = pool_grad_infer, .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_max_pool2d_grad,
                                              .sbp = pool_sbp};
const loom_op_def loom__op_avg_pool2d_grad = {.name = "avg_pool2d_grad", .min_src = 2, .max_src = 2,
                                              .infer = pool_grad_infer, .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_avg_pool2d_grad,
                                              .sbp = pool_sbp};

static loom_tensor *pool(loom_graph *g, const char *api, loom_op op, loom_tensor *x, const loom_pool2d_opts *o)
{
    const loom_pool2d_opts d = LOOM_POOL2D_OPTS_INIT;
    if (!o)
        o = &d;
    loom__attrs a = {.i = {o->kernel[0], o->kernel[1], o->stride[0], o->stride[1], o->pad[0], o->pad[1]}};
    return loom__node(g, api, op, 1, &x, &a);
}

loom_tensor *loom_max_pool2d(loom_graph *g, loom_tensor *x, const loom_pool2d_opts *o)
{
    return pool(g, "loom_max_pool2d", LOOM_OP_MAX_POOL2D, x, o);
}

loom_tensor *loom_avg_pool2d(loom_graph *g, loom_tensor *x, const loom_pool2d_opts *o)
{
    return pool(g, "loom_avg_pool2d", LOOM_OP_AVG_POOL2D, x, o);
}

/* ---- builders over existing ops ----------------------------------------------------------------- */

/* The mean over H and W: the reduction (mean over axes 2 and 3) is one read of x, its SBP splits
 * N or C, and its gradient the scaled expand. */
loom_tensor *loom_global_avg_pool(loom_graph *g, loom_tensor *x)
{
    if (!g)
        return NULL;
    loom_tensor *bad = loom__refuse_sources(g, "loom_global_avg_pool", 1, &x);
    if (bad)
        return bad;
    if (x->shape.ndim != 4) {
        char b[160];
        return loom__fail(g, LOOM_ERR_SHAPE, "loom_global_avg_pool: x is %s; it takes [N, C, H, W]",
                          loom__shape_str(g, &x->shape, b, sizeof b));
    }
    loom__attrs a = {.i = {LOOM_AXIS(2) | LOOM_AXIS(3), 0}};
    return loom__node(g, "loom_global_avg_pool", LOOM_OP_MEAN, 1, &x, &a);
}

/* [N, ...] -> [N, F], F the product of the other dims (each static): a reshape. */
loom_tensor *loom_flatten(loom_graph *g, loom_tensor *x)
{
    if (!g)
        return NULL;
    loom_tensor *bad = loom__refuse_sources(g, "loom_flatten", 1, &x);
    if (bad)
        return bad;
    char b[160];
    int64_t f = 1;
    if (x->shape.ndim < 1)
        return loom__fail(g, LOOM_ERR_SHAPE, "loom_flatten: x is a scalar; it takes [N, ...]");
    for (int i = 1; i < x->shape.ndim; i++)
        if (loom_dim_is_dynamic(x->shape.d[i]) || loom__mul_size(f, x->shape.d[i], &f))
            return loom__fail(g, LOOM_ERR_SHAPE, "loom_flatten: x is %s; the dims after the first must be static",
                              loom__shape_str(g, &x->shape, b, sizeof b));
    loom__attrs a = {.shape = {.ndim = 2, .d = {x->shape.d[0], f}}};
    return loom__node(g, "loom_flatten", LOOM_OP_RESHAPE, 1, &x, &a);
}
