/* Binary cross entropy on logits, with its gradient op (kernels in ops/cpu/loss.c and
 * ops/cuda/loss.cu); and the regression losses, built from other ops.
 *
 *   bce_with_logits(z, y; pos_weight a.f[0]):  a scalar, the mean over every element of
 *                 (1 - y) z + (1 + (w - 1) y) log(1 + exp(-z)) (PyTorch's rule), computed as
 *                 (1 - y) z + l (log1p(exp(-|z|)) + max(-z, 0)) so that exp never overflows;
 *                 z float of any shape, y its shape and dtype (targets in [0, 1]), w > 0.
 *   bce_with_logits_grad(z, y, gout):  z's shape, ((1 - y) - l sigmoid(-z)) * gout / count, with
 *                 l = 1 + (w - 1) y and count the elements of the whole z. */
#include <math.h>
#include <stdio.h>

#include "graphs/core/op.h"
#include "ops/cpu/loss.h"
#include "ops/sbp_sigs.h"

/* z and y: dense float tensors of one dtype and shape. */
static loom_status bce_operands(const loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *z = t->src[0], *y = t->src[1];
    char b1[160], b2[160];
    if (z->layout != LOOM__DENSE || y->layout != LOOM__DENSE)
        return snprintf(msg, len, "logits and targets must be dense tensors"), LOOM_ERR_INVALID;
    if (!loom_dtype_is_float(z->dtype))
        return snprintf(msg, len, "logits are %s; this op takes f32 or f64", loom_dtype_name(z->dtype)), LOOM_ERR_DTYPE;
    if (y->dtype != z->dtype)
        return snprintf(msg, len, "targets are %s but logits %s; they must be of one float dtype", loom_dtype_name(y->dtype),
                        loom_dtype_name(z->dtype)),
               LOOM_ERR_DTYPE;
    if (!loom__shape_eq(&z->shape, &y->shape))
        return snprintf(msg, len, "logits are %s but targets %s; they must have one shape",
                        loom__shape_str(t->graph, &z->shape, b1, sizeof b1), loom__shape_str(t->graph, &y->shape, b2, sizeof b2)),
               LOOM_ERR_SHAPE;
    if (!(t->a.f[0] > 0) || !isfinite(t->a.f[0]))
        return snprintf(msg, len, "pos_weight must be a finite number > 0, got %g", t->a.f[0]), LOOM_ERR_INVALID;
    return LOOM_OK;
}

static loom_status bce_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = bce_operands(t, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = (loom_shape){.ndim = 0};
    return LOOM_OK;
}

static void bce_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *src[3] = {t->src[0], t->src[1], gout};
    gsrc[0] = loom__node(g, "loom_bce_with_logits (gradient)", LOOM_OP_BCE_LOGITS_GRAD, 3, src, &t->a);
}

/* Rows split with their targets: each device sums its elements and divides by the whole count
 * (the kernel reads the whole rows from the kctx), so the parts add up to the mean: (S(0), S(0))
 * -> P, for a static or a dynamic axis 0 (a graph batch split by whole graphs). */
static int bce_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    if (!loom__sbp_can_split(&t->src[0]->shape, 0))
        return 0;
    return loom__sbp_add(sigs, 0, max, 2, (loom_sbp[]){loom_split(0), loom_split(0)}, loom_partial_sum());
}

const loom_op_def loom__op_bce_with_logits = {.name = "bce_with_logits", .min_src = 2, .max_src = 2, .infer = bce_infer,
                                              .cpu = loom__cpu_bce_logits, .grad = bce_grad, .diff_src = 1, .sbp = bce_sbp};

loom_tensor *loom_bce_with_logits(loom_graph *g, loom_tensor *logits, loom_tensor *targets, double pos_weight)
{
    loom_tensor *src[2] = {logits, targets};
    return loom__node(g, "loom_bce_with_logits", LOOM_OP_BCE_LOGITS, 2, src, &(loom__attrs){.f = {pos_weight}});
}

static loom_status bce_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = bce_operands(t, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_tensor *gout = t->src[2];
    if (gout->layout != LOOM__DENSE || gout->dtype != t->src[0]->dtype || gout->shape.ndim != 0) {
        char b[160];
        snprintf(msg, len, "gout is %s %s; expected a %s scalar (internal error)", loom_dtype_name(gout->dtype),
                 loom__shape_str(t->graph, &gout->shape, b, sizeof b), loom_dtype_name(t->src[0]->dtype));
        return LOOM_ERR_SHAPE;
    }
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = t->src[0]->shape;
    return LOOM_OK;
}

/* Rows split where the loss's are, gout whole; linear in gout given z and y: (B, B, P) -> P. */
static int bce_grad_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = 0;
    if (loom__sbp_can_split(&t->src[0]->shape, 0))
        n = loom__sbp_add(sigs, n, max, 3, (loom_sbp[]){loom_split(0), loom_split(0), loom_broadcast()}, loom_split(0));
    return loom__sbp_add_partial(t, 4, loom_partial_sum(), sigs, n, max);
}

/* No gradient: second derivatives of the loss are not supported. */
const loom_op_def loom__op_bce_with_logits_grad = {.name = "bce_with_logits_grad", .min_src = 3, .max_src = 3,
                                                   .infer = bce_grad_infer, .cpu = loom__cpu_bce_logits_grad,
                                                   .sbp = bce_grad_sbp};

/* ---- regression losses ------------------------------------------------------------------------- */

/* The mean over every element of the loss of each, composed: mean(d * d), mean(|d|), and Huber's
 * as mean(q (a - q / 2)) with a = |d| and q = clamp(a, 0, delta), which is a^2 / 2 where a <= delta
 * and delta (a - delta / 2) above, with the gradient d inside and delta sign(d) outside (clamp's
 * gradient passes at delta itself, where the two agree). Each is as exact as a fused kernel (the
 * mean sums in double), and the backward passes are the ops' own. */

/* pred - target when they are float tensors of one dtype and shape on g, else the poisoned tensor
 * with the error recorded, naming api (NULL for a NULL g). */
static loom_tensor *loss_diff(loom_graph *g, const char *api, loom_tensor *pred, loom_tensor *target)
{
    if (!g)
        return NULL;
    loom_tensor *src[2] = {pred, target};
    loom_tensor *bad = loom__refuse_sources(g, api, 2, src);
    if (bad)
        return bad;
    char b1[160], b2[160];
    if (pred->layout != LOOM__DENSE || !loom_dtype_is_float(pred->dtype) || target->dtype != pred->dtype ||
        target->layout != LOOM__DENSE)
        return loom__fail(g, LOOM_ERR_DTYPE, "%s: pred is %s and target %s; they must be dense tensors of one float dtype",
                          api, loom_dtype_name(pred->dtype), loom_dtype_name(target->dtype));
    if (!loom__shape_eq(&pred->shape, &target->shape))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s: pred is %s but target %s; they must have one shape", api,
                          loom__shape_str(g, &pred->shape, b1, sizeof b1), loom__shape_str(g, &target->shape, b2, sizeof b2));
    return loom_sub(g, pred, target);
}

/* A poisoned d passes through the ops below (the error is d's). */
loom_tensor *loom_mse_loss(loom_graph *g, loom_tensor *pred, loom_tensor *target)
{
    loom_tensor *d = loss_diff(g, "loom_mse_loss", pred, target);
    return loom_mean(g, loom_mul(g, d, d), LOOM_ALL_AXES, 0);
}

loom_tensor *loom_l1_loss(loom_graph *g, loom_tensor *pred, loom_tensor *target)
{
    return loom_mean(g, loom_abs(g, loss_diff(g, "loom_l1_loss", pred, target)), LOOM_ALL_AXES, 0);
}

loom_tensor *loom_huber_loss(loom_graph *g, loom_tensor *pred, loom_tensor *target, double delta)
{
    loom_tensor *a = loom_abs(g, loss_diff(g, "loom_huber_loss", pred, target));
    if (g && !(delta > 0 && isfinite(delta)))
        return loom__fail(g, LOOM_ERR_INVALID, "loom_huber_loss: delta must be a finite number > 0, got %g", delta);
    loom_tensor *q = loom_clamp(g, a, 0, delta);
    return loom_mean(g, loom_mul(g, q, loom_sub(g, a, loom_scale(g, q, 0.5))), LOOM_ALL_AXES, 0);
}
