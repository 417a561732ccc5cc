/* Binary elementwise ops: add, sub, mul, div, minimum, maximum with NumPy broadcasting, scale by a
 * constant, bias_add (x [..., C] + b [C]), and the three-operand where and minmax_grad. Builders,
 * shape inference and gradient rules; kernels live in ops/cpu/binary.c and ops/cuda/binary.cu.
 *
 *   minimum(a, b), maximum(a, b): a NaN wins (PyTorch's rule). The gradient goes to the operand
 *                 that gives the result, split half and half on a tie (PyTorch's rule too), through
 *   minmax_grad(a, b, gout):  the output's shape; gout times that share for operand a.i[0] & 1
 *                 (0: a, 1: b) of maximum (a.i[0] & 2) or minimum.
 *   where(cond, a, b):  a where cond != 0, else b; cond u8, a and b of one float dtype, all three
 *                 broadcast. Its gradient is where(cond, gout) of two sources, which keeps gout
 *                 where cond (a.i[0] = 1) or where not (a.i[0] = 2) and is 0 elsewhere; a.i[0] is
 *                 0 with three sources. */
#include <math.h>
#include <stdio.h>

#include "ops/cpu/binary.h"
#include "graphs/core/op.h"
#include "ops/sbp_sigs.h"

loom_status loom__elem_check(const loom_tensor *t, int nfloat, char *msg, size_t len)
{
    for (int i = 0; i < nfloat && i < t->n_src; i++) {
        const loom_tensor *s = t->src[i];
        if (s->layout != LOOM__DENSE) {
            snprintf(msg, len, "operand %d is a CSR matrix; this op takes dense tensors", i + 1);
            return LOOM_ERR_INVALID;
        }
        if (!loom_dtype_is_float(s->dtype)) {
            snprintf(msg, len, "operand %d is %s; this op takes f32 or f64", i + 1, loom_dtype_name(s->dtype));
            return LOOM_ERR_DTYPE;
        }
        if (s->dtype != t->src[0]->dtype) {
            snprintf(msg, len, "operands are %s and %s; both must have the same dtype", loom_dtype_name(t->src[0]->dtype),
                     loom_dtype_name(s->dtype));
            return LOOM_ERR_DTYPE;
        }
    }
    return LOOM_OK;
}

/* NumPy broadcasting of a and b into *r: align from the right; equal dims (the same size or the
 * same dynamic dim) stay, a static 1 stretches to the other. A dynamic dim never meets a different
 * static size: its run-time size is unknown here. */
static loom_status broadcast2(const loom_graph *g, const loom_shape *a, const loom_shape *b, loom_shape *r, char *msg,
                              size_t len)
{
    int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
    loom_shape o = {.ndim = nd};
    for (int i = 1; i <= nd; i++) {
        loom_dim da = i <= a->ndim ? a->d[a->ndim - i] : 1;
        loom_dim db = i <= b->ndim ? b->d[b->ndim - i] : 1;
        if (loom__dim_eq(da, db) || db == 1) {
            o.d[nd - i] = da;
        } else if (da == 1) {
            o.d[nd - i] = db;
        } else {
            char b1[160], b2[160];
            snprintf(msg, len, "shapes %s and %s do not broadcast (axis %d)", loom__shape_str(g, a, b1, sizeof b1),
                     loom__shape_str(g, b, b2, sizeof b2), -i);
            return LOOM_ERR_SHAPE;
        }
    }
    *r = o;
    return LOOM_OK;
}

static loom_status broadcast_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = loom__elem_check(t, 2, msg, len);
    if (s == LOOM_OK)
        s = broadcast2(t->graph, &t->src[0]->shape, &t->src[1]->shape, &t->shape, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    return LOOM_OK;
}

static int needs_grad(const loom_tensor *t, int i) { return (t->src[i]->flags & LOOM__T_NEEDS_GRAD) != 0; }

/* Reduces a gradient shaped like t back to source i's shape. */
static loom_tensor *to_src(loom_graph *g, loom_tensor *t, int i, loom_tensor *x)
{
    return loom__sum_to(g, x, &t->src[i]->shape);
}

static void add_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    for (int i = 0; i < 2; i++)
        if (needs_grad(t, i))
            gsrc[i] = to_src(g, t, i, gout);
}

static void sub_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    if (needs_grad(t, 0))
        gsrc[0] = to_src(g, t, 0, gout);
    if (needs_grad(t, 1))
        gsrc[1] = to_src(g, t, 1, loom_scale(g, gout, -1.0));
}

static void mul_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    if (needs_grad(t, 0))
        gsrc[0] = to_src(g, t, 0, loom_mul(g, gout, t->src[1]));
    if (needs_grad(t, 1))
        gsrc[1] = to_src(g, t, 1, loom_mul(g, gout, t->src[0]));
}

/* t = a / b: ga = gout / b, gb = -gout * a / b^2 = -(gout * t) / b. */
static void div_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *b = t->src[1];
    if (needs_grad(t, 0))
        gsrc[0] = to_src(g, t, 0, loom_div(g, gout, b));
    if (needs_grad(t, 1))
        gsrc[1] = to_src(g, t, 1, loom_scale(g, loom_div(g, loom_mul(g, gout, t), b), -1.0));
}

/* Splits follow the broadcast (a stretched or missing operand is B). Partial sums pass through
 * linear maps only: a + b and a - b of addends add up, so (P, P) -> P, but (P, B) would count b
 * once per device. a * b and a / b are linear in a given b (and a * b in b given a); with P on
 * both sides the sum of local products is not the product of sums. */
static int add_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    return loom__sbp_add_partial(t, 3, loom_partial_sum(), sigs, n, max);
}

static int mul_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    n = loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
    return loom__sbp_add_partial(t, 2, loom_partial_sum(), sigs, n, max);
}

/* Linear in source 0 given the others: div, and scale (its only source). */
static int linear0_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    return loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
}

/* Elementwise and nonlinear: splits through the broadcast, never a partial sum. */
static int elem_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    return loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
}

const loom_op_def loom__op_add = {.name = "add", .min_src = 2, .max_src = 2, .infer = broadcast_infer,
                                  .cpu = loom__cpu_add, .grad = add_grad, .diff_src = 3, .sbp = add_sbp};
const loom_op_def loom__op_sub = {.name = "sub", .min_src = 2, .max_src = 2, .infer = broadcast_infer,
                                  .cpu = loom__cpu_sub, .grad = sub_grad, .diff_src = 3, .sbp = add_sbp};
const loom_op_def loom__op_mul = {.name = "mul", .min_src = 2, .max_src = 2, .infer = broadcast_infer,
                                  .cpu = loom__cpu_mul, .grad = mul_grad, .diff_src = 3, .sbp = mul_sbp};
const loom_op_def loom__op_div = {.name = "div", .min_src = 2, .max_src = 2, .infer = broadcast_infer,
                                  .cpu = loom__cpu_div, .grad = div_grad, .diff_src = 3, .sbp = linear0_sbp};

/* ---- minimum, maximum and minmax_grad ---------------------------------------------------------- */

static void minmax_grad_rule(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    const int max = t->op == LOOM_OP_MAXIMUM;
    for (int i = 0; i < 2; i++)
        if (needs_grad(t, i)) {
            loom__attrs a = {.i = {i | max << 1}};
            loom_tensor *src[3] = {t->src[0], t->src[1], gout};
            gsrc[i] = to_src(g, t, i,
                             loom__node(g, max ? "loom_maximum (gradient)" : "loom_minimum (gradient)", LOOM_OP_MINMAX_GRAD,
                                        3, src, &a));
        }
}

const loom_op_def loom__op_minimum = {.name = "minimum", .min_src = 2, .max_src = 2, .infer = broadcast_infer,
                                      .cpu = loom__cpu_minimum, .grad = minmax_grad_rule, .diff_src = 3, .sbp = elem_sbp};
const loom_op_def loom__op_maximum = {.name = "maximum", .min_src = 2, .max_src = 2, .infer = broadcast_infer,
                                      .cpu = loom__cpu_maximum, .grad = minmax_grad_rule, .diff_src = 3, .sbp = elem_sbp};

/* minmax_grad(a, b, gout): made by the rule above only, so a mismatch is internal. */
static loom_status minmax_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = loom__elem_check(t, 3, msg, len);
    loom_shape r;
    if (s == LOOM_OK)
        s = broadcast2(t->graph, &t->src[0]->shape, &t->src[1]->shape, &r, msg, len);
    if (s != LOOM_OK)
        return s;
    if (!loom__shape_eq(&r, &t->src[2]->shape) || t->a.i[0] < 0 || t->a.i[0] > 3) {
        char b1[160], b2[160];
        snprintf(msg, len, "operands broadcast to %s but gout is %s, or the mode %lld is not 0 .. 3 (internal error)",
                 loom__shape_str(t->graph, &r, b1, sizeof b1), loom__shape_str(t->graph, &t->src[2]->shape, b2, sizeof b2),
                 (long long)t->a.i[0]);
        return LOOM_ERR_SHAPE;
    }
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = r;
    return LOOM_OK;
}

/* Splits through the broadcast; linear in gout given a and b: (B, B, P) -> P. */
static int minmax_grad_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    return loom__sbp_add_partial(t, 4, loom_partial_sum(), sigs, n, max);
}

/* No gradient: second derivatives of minimum and maximum are not supported. */
const loom_op_def loom__op_minmax_grad = {.name = "minmax_grad", .min_src = 3, .max_src = 3, .infer = minmax_grad_infer,
                                          .cpu = loom__cpu_minmax_grad, .sbp = minmax_grad_sbp};

/* ---- where ------------------------------------------------------------------------------------- */

static loom_status where_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *cond = t->src[0];
    const int three = t->n_src == 3;
    if (cond->layout != LOOM__DENSE || cond->dtype != LOOM_U8)
        return snprintf(msg, len, "cond is %s%s; it must be a dense u8 tensor", cond->layout != LOOM__DENSE ? "a CSR " : "",
                        loom_dtype_name(cond->dtype)),
               LOOM_ERR_DTYPE;
    for (int i = 1; i < t->n_src; i++) {
        const loom_tensor *v = t->src[i];
        const char *what = i == 1 ? "a" : "b";
        if (v->layout != LOOM__DENSE || !loom_dtype_is_float(v->dtype))
            return snprintf(msg, len, "%s is %s%s; where takes dense f32 or f64 values", what,
                            v->layout != LOOM__DENSE ? "a CSR " : "", loom_dtype_name(v->dtype)),
                   LOOM_ERR_DTYPE;
        if (v->dtype != t->src[1]->dtype)
            return snprintf(msg, len, "a is %s but b %s; they must be of one dtype", loom_dtype_name(t->src[1]->dtype),
                            loom_dtype_name(v->dtype)),
                   LOOM_ERR_DTYPE;
    }
    if (three ? t->a.i[0] != 0 : t->a.i[0] != 1 && t->a.i[0] != 2)
        return snprintf(msg, len, "mode %lld with %d sources (internal error)", (long long)t->a.i[0], t->n_src),
               LOOM_ERR_INVALID;
    loom_shape r;
    loom_status s = broadcast2(t->graph, &t->src[1]->shape, &cond->shape, &r, msg, len);
    if (s == LOOM_OK && three)
        s = broadcast2(t->graph, &r, &t->src[2]->shape, &r, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = t->src[1]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = r;
    return LOOM_OK;
}

/* a's gradient is gout where cond, b's gout elsewhere, each summed back to its operand's shape. */
static void where_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    for (int i = 1; i < t->n_src; i++)
        if (needs_grad(t, i)) {
            loom__attrs a = {.i = {t->n_src == 3 ? i : t->a.i[0]}};
            loom_tensor *src[2] = {t->src[0], gout};
            gsrc[i] = to_src(g, t, i, loom__node(g, "loom_where (gradient)", LOOM_OP_WHERE, 2, src, &a));
        }
}

/* Splits through the broadcast (cond's too); linear in a and b jointly given cond: (B, P, P) -> P,
 * and (B, P) -> P for the two-source form. */
static int where_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    return loom__sbp_add_partial(t, 6, loom_partial_sum(), sigs, n, max);
}

const loom_op_def loom__op_where = {.name = "where", .min_src = 2, .max_src = 3, .infer = where_infer,
                                    .cpu = loom__cpu_where, .grad = where_grad, .diff_src = 6, .sbp = where_sbp};

/* ---- builders ----------------------------------------------------------------------------------- */

loom_tensor *loom_minimum(loom_graph *g, loom_tensor *a, loom_tensor *b)
{
    return loom__node(g, "loom_minimum", LOOM_OP_MINIMUM, 2, (loom_tensor *[]){a, b}, NULL);
}

loom_tensor *loom_maximum(loom_graph *g, loom_tensor *a, loom_tensor *b)
{
    return loom__node(g, "loom_maximum", LOOM_OP_MAXIMUM, 2, (loom_tensor *[]){a, b}, NULL);
}

loom_tensor *loom_where(loom_graph *g, loom_tensor *cond, loom_tensor *a, loom_tensor *b)
{
    return loom__node(g, "loom_where", LOOM_OP_WHERE, 3, (loom_tensor *[]){cond, a, b}, NULL);
}

loom_tensor *loom_add(loom_graph *g, loom_tensor *a, loom_tensor *b)
{
    return loom__node(g, "loom_add", LOOM_OP_ADD, 2, (loom_tensor *[]){a, b}, NULL);
}

loom_tensor *loom_sub(loom_graph *g, loom_tensor *a, loom_tensor *b)
{
    return loom__node(g, "loom_sub", LOOM_OP_SUB, 2, (loom_tensor *[]){a, b}, NULL);
}

loom_tensor *loom_mul(loom_graph *g, loom_tensor *a, loom_tensor *b)
{
    return loom__node(g, "loom_mul", LOOM_OP_MUL, 2, (loom_tensor *[]){a, b}, NULL);
}

loom_tensor *loom_div(loom_graph *g, loom_tensor *a, loom_tensor *b)
{
    return loom__node(g, "loom_div", LOOM_OP_DIV, 2, (loom_tensor *[]){a, b}, NULL);
}

/* ---- scale: x * a.f[0] ------------------------------------------------------------------------ */

loom_status loom__elem_unary_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = loom__elem_check(t, 1, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = t->src[0]->shape;
    return LOOM_OK;
}

static void scale_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    gsrc[0] = loom_scale(g, gout, t->a.f[0]);
}

const loom_op_def loom__op_scale = {.name = "scale", .min_src = 1, .max_src = 1, .infer = loom__elem_unary_infer,
                                    .cpu = loom__cpu_scale, .grad = scale_grad, .diff_src = 1, .sbp = linear0_sbp};

loom_tensor *loom_scale(loom_graph *g, loom_tensor *x, double s)
{
    if (g && !isfinite(s))
        return loom__fail(g, LOOM_ERR_INVALID, "loom_scale: s must be finite, got %g", s);
    loom__attrs a = {.f = {s}};
    return loom__node(g, "loom_scale", LOOM_OP_SCALE, 1, &x, &a);
}

/* ---- bias_add: x [..., C] + b [C] ------------------------------------------------------------- */

static loom_status bias_add_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = loom__elem_check(t, 2, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_shape *x = &t->src[0]->shape, *b = &t->src[1]->shape;
    if (x->ndim < 1 || b->ndim != 1 || !loom__dim_eq(x->d[x->ndim - 1], b->d[0])) {
        char b1[160], b2[160];
        snprintf(msg, len, "bias %s must be [C] for x %s of shape [..., C]", loom__shape_str(t->graph, b, b2, sizeof b2),
                 loom__shape_str(t->graph, x, b1, sizeof b1));
        return LOOM_ERR_SHAPE;
    }
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = *x;
    return LOOM_OK;
}

/* gx = gout; gb = gout summed over every axis but the last. */
static void bias_add_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    if (needs_grad(t, 0))
        gsrc[0] = gout;
    if (needs_grad(t, 1)) {
        int nd = gout->shape.ndim;
        gsrc[1] = nd == 1 ? gout : loom_sum(g, gout, (UINT32_C(1) << (nd - 1)) - 1, 0);
    }
}

/* b [C] aligns with x's last axis, so it is the broadcast case: S(i) of x with b B for the leading
 * axes, S(last) of x with S(0) of b; (P, P) -> P as for add. */
const loom_op_def loom__op_bias_add = {.name = "bias_add", .min_src = 2, .max_src = 2, .infer = bias_add_infer,
                                       .cpu = loom__cpu_bias_add, .grad = bias_add_grad, .diff_src = 3,
                                       .sbp = add_sbp};

loom_tensor *loom_bias_add(loom_graph *g, loom_tensor *x, loom_tensor *b)
{
    return loom__node(g, "loom_bias_add", LOOM_OP_BIAS_ADD, 2, (loom_tensor *[]){x, b}, NULL);
}
