/* log_softmax over the last axis, softmax along any axis and softmax cross entropy, with their
 * gradient ops. Kernels live in ops/cpu/softmax.c and ops/cuda/softmax.cu.
 *
 *   log_softmax(x):                     x's shape.
 *   log_softmax_grad(y, gout):          gout - exp(y) * sum(gout over the last axis), y the output.
 *   softmax(x; axis a.i[0]):            x's shape, exp(x - max) / sum(exp(x - max)) along the axis.
 *   softmax_grad(y, gout; axis):        y * (gout - sum(gout * y along the axis)), y the output.
 *   softmax_cross_entropy(z, l[, m]):   a scalar: logits z [N, C] float, labels l [N] i32, mask m
 *                                       [N] u8; the mean over rows with m != 0 of
 *                                       logsumexp(z[r]) - z[r, l[r]], 0 when no row counts.
 *   softmax_cross_entropy_grad(z, l[, m], gout): [N, C], (softmax(z) - onehot(l)) * m / count * gout
 *                                       with gout the loss's scalar gradient. */
#include <stdio.h>

#include "ops/cpu/softmax.h"
#include "graphs/core/op.h"
#include "ops/sbp_sigs.h"

/* what names the operand with its verb ("x is", "logits are"). */
static loom_status float_operand(const loom_tensor *t, int i, const char *what, char *msg, size_t len)
{
    const loom_tensor *s = t->src[i];
    if (s->layout != LOOM__DENSE) {
        snprintf(msg, len, "%s a CSR matrix; this op takes dense tensors", what);
        return LOOM_ERR_INVALID;
    }
    if (!loom_dtype_is_float(s->dtype)) {
        snprintf(msg, len, "%s %s; this op takes f32 or f64", what, loom_dtype_name(s->dtype));
        return LOOM_ERR_DTYPE;
    }
    return LOOM_OK;
}

/* ---- log_softmax ------------------------------------------------------------------------------- */

static loom_status log_softmax_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = float_operand(t, 0, "x is", msg, len);
    if (s != LOOM_OK)
        return s;
    if (t->src[0]->shape.ndim < 1) {
        snprintf(msg, len, "x is a scalar; log_softmax runs over the last axis of a tensor of 1 or more dims");
        return LOOM_ERR_SHAPE;
    }
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = t->src[0]->shape;
    return LOOM_OK;
}

static void log_softmax_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    gsrc[0] = loom__node(g, "loom_log_softmax (gradient)", LOOM_OP_LOG_SOFTMAX_GRAD, 2, (loom_tensor *[]){t, gout}, NULL);
}

/* Rows are independent: any axis but the last (the one normalised over) may be split, in y and
 * gout alike for the gradient. log_softmax is not linear; its gradient gout - exp(y) sum(gout) is
 * linear in gout given y, so (B, P) -> P. */
static int log_softmax_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    uint32_t rows = LOOM__SBP_ALL_AXES & ~(UINT32_C(1) << (t->shape.ndim - 1));
    int n = loom__sbp_add_broadcast_splits(t, rows, sigs, 0, max);
    if (t->op == LOOM_OP_LOG_SOFTMAX_GRAD)
        n = loom__sbp_add_partial(t, 2, loom_partial_sum(), sigs, n, max);
    return n;
}

const loom_op_def loom__op_log_softmax = {.name = "log_softmax", .min_src = 1, .max_src = 1, .infer = log_softmax_infer,
                                          .cpu = loom__cpu_log_softmax, .grad = log_softmax_grad, .diff_src = 1,
                                          .sbp = log_softmax_sbp};

loom_tensor *loom_log_softmax(loom_graph *g, loom_tensor *x)
{
    return loom__node(g, "loom_log_softmax", LOOM_OP_LOG_SOFTMAX, 1, &x, NULL);
}

/* log_softmax_grad(y, gout): both one float shape and dtype. */
static loom_status log_softmax_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = float_operand(t, 0, "y is", msg, len);
    if (s == LOOM_OK)
        s = float_operand(t, 1, "gout is", msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_tensor *y = t->src[0], *gout = t->src[1];
    if (y->dtype != gout->dtype || !loom__shape_eq(&y->shape, &gout->shape) || y->shape.ndim < 1) {
        char b1[160], b2[160];
        snprintf(msg, len, "y is %s %s, gout %s %s; they must match (internal error)", loom_dtype_name(y->dtype),
                 loom__shape_str(t->graph, &y->shape, b1, sizeof b1), loom_dtype_name(gout->dtype),
                 loom__shape_str(t->graph, &gout->shape, b2, sizeof b2));
        return LOOM_ERR_SHAPE;
    }
    t->dtype = y->dtype;
    t->layout = LOOM__DENSE;
    t->shape = y->shape;
    return LOOM_OK;
}

/* No gradient: second derivatives of log_softmax are not supported. */
const loom_op_def loom__op_log_softmax_grad = {.name = "log_softmax_grad", .min_src = 2, .max_src = 2,
                                               .infer = log_softmax_grad_infer, .cpu = loom__cpu_log_softmax_grad,
                                               .sbp = log_softmax_sbp};

/* ---- softmax ----------------------------------------------------------------------------------- */

/* x (and for the gradient, gout of x's shape and dtype): a dense float tensor of 1 or more dims;
 * a.i[0] an axis of it, normalised here (negative counts from the end). */
static loom_status softmax_infer(loom_tensor *t, char *msg, size_t len)
{
    const int grad = t->op == LOOM_OP_SOFTMAX_GRAD;
    loom_status s = float_operand(t, 0, grad ? "y is" : "x is", msg, len);
    if (s == LOOM_OK && grad)
        s = float_operand(t, 1, "gout is", msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_tensor *x = t->src[0];
    char b1[160], b2[160];
    if (grad && (t->src[1]->dtype != x->dtype || !loom__shape_eq(&x->shape, &t->src[1]->shape)))
        return snprintf(msg, len, "y is %s %s, gout %s %s; they must match (internal error)", loom_dtype_name(x->dtype),
                        loom__shape_str(t->graph, &x->shape, b1, sizeof b1), loom_dtype_name(t->src[1]->dtype),
                        loom__shape_str(t->graph, &t->src[1]->shape, b2, sizeof b2)),
               LOOM_ERR_SHAPE;
    const int axis = loom__axis((int)t->a.i[0], x->shape.ndim);
    if (axis < 0)
        return snprintf(msg, len, "axis %lld out of range for %s", (long long)t->a.i[0],
                        loom__shape_str(t->graph, &x->shape, b1, sizeof b1)),
               LOOM_ERR_SHAPE;
    t->a.i[0] = axis;
    t->dtype = x->dtype;
    t->layout = LOOM__DENSE;
    t->shape = x->shape;
    return LOOM_OK;
}

static void softmax_grad_rule(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    gsrc[0] = loom__node(g, "loom_softmax (gradient)", LOOM_OP_SOFTMAX_GRAD, 2, (loom_tensor *[]){t, gout}, &t->a);
}

/* Every axis but the one normalised along may be split (in y and gout alike for the gradient).
 * softmax is not linear; its gradient is linear in gout given y: (B, P) -> P. */
static int softmax_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    uint32_t others = LOOM__SBP_ALL_AXES & ~(UINT32_C(1) << t->a.i[0]);
    int n = loom__sbp_add_broadcast_splits(t, others, sigs, 0, max);
    if (t->op == LOOM_OP_SOFTMAX_GRAD)
        n = loom__sbp_add_partial(t, 2, loom_partial_sum(), sigs, n, max);
    return n;
}

const loom_op_def loom__op_softmax = {.name = "softmax", .min_src = 1, .max_src = 1, .infer = softmax_infer,
                                      .cpu = loom__cpu_softmax, .grad = softmax_grad_rule, .diff_src = 1,
                                      .sbp = softmax_sbp};

/* No gradient: second derivatives of softmax are not supported. */
const loom_op_def loom__op_softmax_grad = {.name = "softmax_grad", .min_src = 2, .max_src = 2, .infer = softmax_infer,
                                           .cpu = loom__cpu_softmax_grad, .sbp = softmax_sbp};

loom_tensor *loom_softmax(loom_graph *g, loom_tensor *x, int axis)
{
    return loom__node(g, "loom_softmax", LOOM_OP_SOFTMAX, 1, &x, &(loom__attrs){.i = {axis}});
}

/* ---- softmax_cross_entropy --------------------------------------------------------------------- */

/* Checks logits [N, C] float, labels [N] i32 and, when has_mask, mask [N] u8 (sources 0, 1, 2). */
static loom_status ce_check(const loom_tensor *t, int has_mask, char *msg, size_t len)
{
    loom_status s = float_operand(t, 0, "logits are", msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_tensor *z = t->src[0], *l = t->src[1], *m = has_mask ? t->src[2] : NULL;
    char b1[160], b2[160];
    if (z->shape.ndim != 2) {
        snprintf(msg, len, "logits are %s; expected [N, C]", loom__shape_str(t->graph, &z->shape, b1, sizeof b1));
        return LOOM_ERR_SHAPE;
    }
    for (int k = 1; k < 2 + has_mask; k++) {
        const loom_tensor *v = k == 1 ? l : m;
        const char *what = k == 1 ? "labels are" : "mask is";
        loom_dtype want = k == 1 ? LOOM_I32 : LOOM_U8;
        if (v->layout != LOOM__DENSE || v->dtype != want) {
            snprintf(msg, len, "%s %s%s; expected dense %s", what, v->layout != LOOM__DENSE ? "CSR " : "",
                     loom_dtype_name(v->dtype), loom_dtype_name(want));
            return LOOM_ERR_DTYPE;
        }
        if (v->shape.ndim != 1 || !loom__dim_eq(v->shape.d[0], z->shape.d[0])) {
            snprintf(msg, len, "%s %s; expected [N] for logits %s", what,
                     loom__shape_str(t->graph, &v->shape, b1, sizeof b1),
                     loom__shape_str(t->graph, &z->shape, b2, sizeof b2));
            return LOOM_ERR_SHAPE;
        }
    }
    return LOOM_OK;
}

static loom_status ce_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = ce_check(t, t->n_src == 3, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = (loom_shape){.ndim = 0};
    return LOOM_OK;
}

/* Only the logits take a gradient; the gradient op gets the loss's sources and gout after them. */
static void ce_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *src[4] = {t->src[0], t->src[1], t->src[2], NULL};
    src[t->n_src] = gout;
    gsrc[0] = loom__node(g, "loom_softmax_cross_entropy (gradient)", LOOM_OP_SOFTMAX_CE_GRAD, t->n_src + 1, src, NULL);
}

/* Unmasked: the rows split, each device's sum over its rows divided by the whole logits' row
 * count (loom__ce_rows: the kctx's whole rows, which a dynamic axis 0 takes from the piece's
 * stamp, a graph batch's uneven parts included), partial sums of the mean. With a mask the count
 * is of the kept rows, which no device knows alone (local counts would not add up): all-B then. */
static int ce_rows_split(const loom_tensor *z, int has_mask)
{
    return !has_mask && loom__sbp_can_split(&z->shape, 0);
}

static int ce_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    if (!ce_rows_split(t->src[0], t->n_src == 3))
        return 0;
    return loom__sbp_add(sigs, 0, max, 2, (loom_sbp[]){loom_split(0), loom_split(0)}, loom_partial_sum());
}

const loom_op_def loom__op_softmax_cross_entropy = {.name = "softmax_cross_entropy", .min_src = 2, .max_src = 3,
                                                    .infer = ce_infer, .cpu = loom__cpu_softmax_ce, .grad = ce_grad, .sbp = ce_sbp,
                                                    .diff_src = 1};

loom_tensor *loom_softmax_cross_entropy(loom_graph *g, loom_tensor *logits, loom_tensor *labels, loom_tensor *mask)
{
    loom_tensor *src[3] = {logits, labels, mask};
    return loom__node(g, "loom_softmax_cross_entropy", LOOM_OP_SOFTMAX_CE, mask ? 3 : 2, src, NULL);
}

/* softmax_cross_entropy_grad(logits, labels, [mask,] gout): gout a scalar of the logits' dtype. */
static loom_status ce_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = ce_check(t, t->n_src == 4, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_tensor *z = t->src[0], *gout = t->src[t->n_src - 1];
    if (gout->layout != LOOM__DENSE || gout->dtype != z->dtype || gout->shape.ndim != 0) {
        char b[160];
        snprintf(msg, len, "gout is %s %s; expected a %s scalar (internal error)", loom_dtype_name(gout->dtype),
                 loom__shape_str(t->graph, &gout->shape, b, sizeof b), loom_dtype_name(z->dtype));
        return LOOM_ERR_SHAPE;
    }
    t->dtype = z->dtype;
    t->layout = LOOM__DENSE;
    t->shape = z->shape;
    return LOOM_OK;
}

/* Rows split where the loss's are (ce_rows_split: unmasked, the whole row count), gout whole. The
 * gradient is linear in gout given the rest, so a partial gout gives a partial gradient. */
static int ce_grad_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = 0;
    if (ce_rows_split(t->src[0], t->n_src == 4))
        n = loom__sbp_add(sigs, n, max, 3, (loom_sbp[]){loom_split(0), loom_split(0), loom_broadcast()}, loom_split(0));
    return loom__sbp_add_partial(t, UINT32_C(1) << (t->n_src - 1), loom_partial_sum(), sigs, n, max);
}

/* No gradient: second derivatives of the loss are not supported. */

const loom_op_def loom__op_softmax_cross_entropy_grad = {.name = "softmax_cross_entropy_grad", .min_src = 3,
                                                         .max_src = 4, .infer = ce_grad_infer,
                                                         .cpu = loom__cpu_softmax_ce_grad, .sbp = ce_grad_sbp};
