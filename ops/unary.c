/* Elementwise functions of one tensor: the activations (relu, leaky_relu, elu, sigmoid, tanh),
 * loom_activate, the maths (exp, log, sqrt, rsqrt, abs, pow_scalar, clamp), and act_grad, the one
 * internal op that carries every one's backward pass: act_grad(s, gout) = gout * f'(.), with s the
 * input x where f' needs x (leaky_relu, elu, log: 1 / x, abs: sign x, pow_scalar: p x^(p - 1),
 * clamp: 1 on [lo, hi]) and the output y where y gives it (relu: y > 0 exactly where x > 0;
 * sigmoid: y (1 - y); tanh: 1 - y^2; exp: y; sqrt: 1 / (2 y); rsqrt: -y^3 / 2). From y, the
 * backward pass keeps one tensor for a function and the layer after it (whose weight gradient
 * reads y too), not two.
 *
 * Parameters: a.f[0] is leaky_relu's slope, elu's alpha, pow_scalar's p and clamp's lo; a.f[1]
 * clamp's hi. act_grad carries its function in a.i[0] and the parameters in a.f[0 .. 1]. clamp's
 * gradient is 1 at the bounds (inside, as in PyTorch); pow_scalar's is 0 for p = 0 (PyTorch's
 * rule, also at x = 0). Kernels live in ops/cpu/unary.c and ops/cuda/unary.cu. */
#include <math.h>
#include <stdio.h>

#include "ops/cpu/binary.h"
#include "ops/cpu/unary.h"
#include "graphs/core/op.h"
#include "ops/sbp_sigs.h"

static const char *grad_api(loom_op op)
{
    switch (op) {
    case LOOM_OP_RELU: return "loom_relu (gradient)";
    case LOOM_OP_LEAKY_RELU: return "loom_leaky_relu (gradient)";
    case LOOM_OP_ELU: return "loom_elu (gradient)";
    case LOOM_OP_SIGMOID: return "loom_sigmoid (gradient)";
    case LOOM_OP_TANH: return "loom_tanh (gradient)";
    case LOOM_OP_EXP: return "loom_exp (gradient)";
    case LOOM_OP_LOG: return "loom_log (gradient)";
    case LOOM_OP_SQRT: return "loom_sqrt (gradient)";
    case LOOM_OP_RSQRT: return "loom_rsqrt (gradient)";
    case LOOM_OP_ABS: return "loom_abs (gradient)";
    case LOOM_OP_POW_SCALAR: return "loom_pow_scalar (gradient)";
    case LOOM_OP_CLAMP: return "loom_clamp (gradient)";
    default: return "activation gradient";
    }
}

static void act_grad_rule(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    int from_y = t->op == LOOM_OP_RELU || t->op == LOOM_OP_SIGMOID || t->op == LOOM_OP_TANH || t->op == LOOM_OP_EXP ||
                 t->op == LOOM_OP_SQRT || t->op == LOOM_OP_RSQRT;
    loom__attrs a = {.i = {t->op}, .f = {t->a.f[0], t->a.f[1]}};
    loom_tensor *src[2] = {from_y ? t : t->src[0], gout};
    gsrc[0] = loom__node(g, grad_api(t->op), LOOM_OP_ACT_GRAD, 2, src, &a);
}

/* Elementwise: any split passes through. Nonlinear, so never a partial sum. */
static int act_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    return loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
}

/* The parameters a function of the family takes (its op t->op, attributes t->a), checked: every
 * graph that makes the op passes here, not only the builders. */
static loom_status params_ok(const loom_tensor *t, char *msg, size_t len)
{
    const double p = t->a.f[0], q = t->a.f[1];
    switch (t->op) {
    case LOOM_OP_LEAKY_RELU:
    case LOOM_OP_ELU:
    case LOOM_OP_POW_SCALAR:
        if (!isfinite(p))
            return snprintf(msg, len, "%s must be finite, got %g",
                            t->op == LOOM_OP_LEAKY_RELU ? "slope" : t->op == LOOM_OP_ELU ? "alpha" : "p", p),
                   LOOM_ERR_INVALID;
        return LOOM_OK;
    case LOOM_OP_CLAMP: /* infinite bounds clamp one side only */
        if (isnan(p) || isnan(q))
            return snprintf(msg, len, "lo and hi must be numbers, got %g and %g", p, q), LOOM_ERR_INVALID;
        if (p > q)
            return snprintf(msg, len, "lo %g is above hi %g", p, q), LOOM_ERR_INVALID;
        return LOOM_OK;
    default:
        return LOOM_OK;
    }
}

static loom_status unary_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = params_ok(t, msg, len);
    return s != LOOM_OK ? s : loom__elem_unary_infer(t, msg, len);
}

#define ACT_DEF(n)                                                                                           \
    const loom_op_def loom__op_##n = {.name = #n, .min_src = 1, .max_src = 1, .infer = unary_infer,                       \
                                      .cpu = loom__cpu_##n, .grad = act_grad_rule, .diff_src = 1, .sbp = act_sbp};
ACT_DEF(relu)
ACT_DEF(leaky_relu)
ACT_DEF(elu)
ACT_DEF(sigmoid)
ACT_DEF(tanh)
ACT_DEF(exp)
ACT_DEF(log)
ACT_DEF(sqrt)
ACT_DEF(rsqrt)
ACT_DEF(abs)
ACT_DEF(pow_scalar)
ACT_DEF(clamp)
#undef ACT_DEF

/* act_grad(s, gout): s and gout the same dense float shape; a.i[0] names the function. */
static loom_status act_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = loom__elem_check(t, 2, msg, len);
    if (s != LOOM_OK)
        return s;
    switch (t->a.i[0]) {
    case LOOM_OP_RELU: case LOOM_OP_LEAKY_RELU: case LOOM_OP_ELU: case LOOM_OP_SIGMOID: case LOOM_OP_TANH:
    case LOOM_OP_EXP: case LOOM_OP_LOG: case LOOM_OP_SQRT: case LOOM_OP_RSQRT: case LOOM_OP_ABS:
    case LOOM_OP_POW_SCALAR: case LOOM_OP_CLAMP: break;
    default:
        snprintf(msg, len, "op %lld is not an activation (internal error)", (long long)t->a.i[0]);
        return LOOM_ERR_INVALID;
    }
    const loom_shape *a = &t->src[0]->shape, *b = &t->src[1]->shape;
    int same = a->ndim == b->ndim;
    for (int i = 0; same && i < a->ndim; i++)
        same = loom__dim_eq(a->d[i], b->d[i]);
    if (!same) {
        char b1[160], b2[160];
        snprintf(msg, len, "shapes %s and %s differ (internal error)", loom__shape_str(t->graph, a, b1, sizeof b1),
                 loom__shape_str(t->graph, b, b2, sizeof b2));
        return LOOM_ERR_SHAPE;
    }
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = *a;
    return LOOM_OK;
}

/* Elementwise splits; and gout * f'(s) is linear in gout given s, so (B, P) -> P. */
static int act_grad_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    return loom__sbp_add_partial(t, 2, loom_partial_sum(), sigs, n, max);
}

/* No gradient: second derivatives of activations are not supported. */
const loom_op_def loom__op_act_grad = {.name = "act_grad", .min_src = 2, .max_src = 2, .infer = act_grad_infer,
                                       .cpu = loom__cpu_act_grad, .sbp = act_grad_sbp};

/* ---- builders --------------------------------------------------------------------------------- */

static loom_tensor *act2(loom_graph *g, const char *api, loom_op op, loom_tensor *x, double p, double q)
{
    loom__attrs a = {.f = {p, q}};
    return loom__node(g, api, op, 1, &x, &a);
}

static loom_tensor *act(loom_graph *g, const char *api, loom_op op, loom_tensor *x, double p)
{
    return act2(g, api, op, x, p, 0);
}

loom_tensor *loom_relu(loom_graph *g, loom_tensor *x) { return act(g, "loom_relu", LOOM_OP_RELU, x, 0); }
loom_tensor *loom_sigmoid(loom_graph *g, loom_tensor *x) { return act(g, "loom_sigmoid", LOOM_OP_SIGMOID, x, 0); }
loom_tensor *loom_tanh(loom_graph *g, loom_tensor *x) { return act(g, "loom_tanh", LOOM_OP_TANH, x, 0); }
loom_tensor *loom_leaky_relu(loom_graph *g, loom_tensor *x, double slope)
{
    return act(g, "loom_leaky_relu", LOOM_OP_LEAKY_RELU, x, slope);
}
loom_tensor *loom_elu(loom_graph *g, loom_tensor *x, double alpha) { return act(g, "loom_elu", LOOM_OP_ELU, x, alpha); }
loom_tensor *loom_exp(loom_graph *g, loom_tensor *x) { return act(g, "loom_exp", LOOM_OP_EXP, x, 0); }
loom_tensor *loom_log(loom_graph *g, loom_tensor *x) { return act(g, "loom_log", LOOM_OP_LOG, x, 0); }
loom_tensor *loom_sqrt(loom_graph *g, loom_tensor *x) { return act(g, "loom_sqrt", LOOM_OP_SQRT, x, 0); }
loom_tensor *loom_rsqrt(loom_graph *g, loom_tensor *x) { return act(g, "loom_rsqrt", LOOM_OP_RSQRT, x, 0); }
loom_tensor *loom_abs(loom_graph *g, loom_tensor *x) { return act(g, "loom_abs", LOOM_OP_ABS, x, 0); }
loom_tensor *loom_pow_scalar(loom_graph *g, loom_tensor *x, double p)
{
    return act(g, "loom_pow_scalar", LOOM_OP_POW_SCALAR, x, p);
}
loom_tensor *loom_clamp(loom_graph *g, loom_tensor *x, double lo, double hi)
{
    return act2(g, "loom_clamp", LOOM_OP_CLAMP, x, lo, hi);
}

loom_tensor *loom_activate(loom_graph *g, loom_tensor *x, loom_activation a)
{
    switch (a) {
    case LOOM_ACT_NONE: return x;
    case LOOM_ACT_RELU: return act(g, "loom_activate (relu)", LOOM_OP_RELU, x, 0);
    case LOOM_ACT_SIGMOID: return act(g, "loom_activate (sigmoid)", LOOM_OP_SIGMOID, x, 0);
    case LOOM_ACT_TANH: return act(g, "loom_activate (tanh)", LOOM_OP_TANH, x, 0);
    case LOOM_ACT_ELU: return act(g, "loom_activate (elu)", LOOM_OP_ELU, x, 1.0);
    default: return loom__fail(g, LOOM_ERR_INVALID, "loom_activate: unknown activation %d", (int)a);
    }
}
