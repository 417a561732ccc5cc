/* Batch and layer normalisation, with their gradient ops and the running statistics' update.
 * Kernels live in ops/cpu/norm.c and ops/cuda/norm.cu.
 *
 * Batch norm is built so that data parallelism needs no special case: the batch statistics are a
 * reduction whose parts add up, so a batch split across devices gives partial sums (P) that the
 * consumers' all-reduce makes whole, and every device normalises by the whole batch's statistics
 * (sync-BN). x is [N, C, ...], a channel c's values every (n, c, ...):
 *
 *   batch_norm_stats(x):  f64 [C, 3], per channel the sum of x, the sum of x^2 and the count of
 *                 values; (S(0)) -> P like any sum (the count too), zeros in evaluation. A training run
 *                 of one value per channel (over the whole batch) fails here, as PyTorch's does.
 *   batch_norm(x, stats, running_mean, running_var, weight, bias; eps a.f[0], momentum a.f[1]):
 *                 x's shape, (x - mean) / sqrt(var + eps) * weight + bias per channel, mean and
 *                 the biased var from stats in training and the running ones in evaluation.
 *   batch_norm_relu(x, stats, running_mean, running_var, weight, bias[, residual]; eps, momentum):
 *                 relu(batch_norm(...) + residual), the residual (x's dtype and shape) optional:
 *                 batch norm's epilogue in one pass over x, as the tail of a residual block.
 *   batch_norm_grad_sums(gout, x, stats[, y]; eps):  x's dtype [C, 2], per channel the sums of gout
 *                 and of gout xhat (xhat = (x - mean) / sqrt(var + eps)): the bias and weight
 *                 gradients, and what the gradient of x needs of the whole batch.
 *   batch_norm_grad(gout, x, stats, weight, sums[, y]; eps):  the gradient of x through the batch
 *                 statistics too, weight rstd (gout - sums[c, 0] / n - xhat sums[c, 1] / n).
 *                 With y, a batch_norm_relu's output, both read gout where y > 0 and 0 elsewhere:
 *                 the ReLU's gradient from the output, with no tensor of its own.
 *   running_stats_update(running, stats; which a.i[0], momentum a.f[0]):  in place, running =
 *                 (1 - momentum) running + momentum stat, stat the mean (which 0) or the unbiased
 *                 variance (which 1) of stats. Made by loom_compile (step_update): a STEP runs it
 *                 after the backward pass.
 *
 * Layer norm normalises each row of the last `axes` axes (a.i[0]) on its own, so rows split freely:
 *
 *   layer_norm(x, weight, bias; axes, eps a.f[0]):  x's shape.
 *   layer_norm_grad(gout, x, weight; axes, eps):    the gradient of x.
 *   layer_norm_grad_sums(gout, x; axes, eps):       x's dtype [F, 2], F the normalised elements:
 *                 per element the sums over rows of gout and of gout xhat (bias and weight
 *                 gradients, flattened); (S(0), S(0)) -> P. */
#include <math.h>
#include <stdio.h>

#include "graphs/core/op.h"
#include "ops/cpu/norm.h"
#include "ops/sbp_sigs.h"

/* ---- operands ------------------------------------------------------------------------------------ */

/* x: a dense float tensor of 2 or more axes with a static channel axis 1. */
static loom_status chan_operand(const loom_tensor *t, const loom_tensor *x, char *msg, size_t len)
{
    char b[160];
    if (x->layout != LOOM__DENSE || !loom_dtype_is_float(x->dtype))
        return snprintf(msg, len, "x is %s%s; batch norm takes a dense f32 or f64 tensor",
                        x->layout == LOOM__DENSE ? "" : "a CSR matrix of ", loom_dtype_name(x->dtype)),
               LOOM_ERR_DTYPE;
    if (x->shape.ndim < 2 || loom_dim_is_dynamic(x->shape.d[1]))
        return snprintf(msg, len, "x is %s; batch norm takes [N, C] or [N, C, ...] with a static C",
                        loom__shape_str(t->graph, &x->shape, b, sizeof b)),
               LOOM_ERR_SHAPE;
    return LOOM_OK;
}

/* v is a dense tensor of dtype dt and shape s; what names it. The builders make these operands, so
 * a mismatch is the library's error. */
static loom_status same_as(const loom_tensor *t, const loom_tensor *v, const char *what, loom_dtype dt, const loom_shape *s,
                           char *msg, size_t len)
{
    if (v->layout == LOOM__DENSE && v->dtype == dt && loom__shape_eq(&v->shape, s))
        return LOOM_OK;
    char b1[160], b2[160];
    snprintf(msg, len, "%s is %s %s; expected %s %s (internal error)", what, loom_dtype_name(v->dtype),
             loom__shape_str(t->graph, &v->shape, b1, sizeof b1), loom_dtype_name(dt),
             loom__shape_str(t->graph, s, b2, sizeof b2));
    return LOOM_ERR_SHAPE;
}

static loom_status eps_ok(double eps, char *msg, size_t len)
{
    if (eps >= 0 && isfinite(eps))
        return LOOM_OK;
    snprintf(msg, len, "eps must be a finite number >= 0, got %g", eps);
    return LOOM_ERR_INVALID;
}

static loom_status momentum_ok(double m, char *msg, size_t len)
{
    if (m >= 0 && m <= 1)
        return LOOM_OK;
    snprintf(msg, len, "momentum must be in [0, 1], got %g", m);
    return LOOM_ERR_INVALID;
}

/* The end of the normalisations' shape inference: with s OK, eps (a.f[0]) checked, then t is a
 * dense tensor of x's dtype and the shape given. */
static loom_status infer_done(loom_tensor *t, loom_status s, const loom_tensor *x, loom_shape shape, char *msg, size_t len)
{
    if (s == LOOM_OK)
        s = eps_ok(t->a.f[0], msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = x->dtype;
    t->layout = LOOM__DENSE;
    t->shape = shape;
    return LOOM_OK;
}

static loom_shape chan_shape(const loom_tensor *x, int64_t k)
{
    return k ? (loom_shape){.ndim = 2, .d = {x->shape.d[1], k}} : (loom_shape){.ndim = 1, .d = {x->shape.d[1]}};
}

/* Column `col` of sums [K, 2] as shape s (a parameter's): a gradient out of the sums. */
static loom_tensor *sums_column(loom_graph *g, const char *api, loom_tensor *sums, int col, const loom_shape *s)
{
    loom__attrs cut = {.i = {1, col, col + 1}}, to = {.shape = *s};
    loom_tensor *c = loom__node(g, api, LOOM_OP_SLICE, 1, &sums, &cut);
    return loom__node(g, api, LOOM_OP_RESHAPE, 1, &c, &to);
}

/* ---- batch norm ---------------------------------------------------------------------------------- */

static loom_status bn_stats_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = chan_operand(t, t->src[0], msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = LOOM_F64;
    t->layout = LOOM__DENSE;
    t->shape = chan_shape(t->src[0], 3);
    return LOOM_OK;
}

/* Sums over every axis but the channels: split along one of them, each device sums its part, the
 * count included (S(k)) -> P; split along the channels, each device has its channels' sums whole,
 * (S(1)) -> S(0). Not linear in x (the squares): no P in. */
static int bn_stats_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *x = &t->src[0]->shape;
    int n = 0;
    for (int k = 0; k < x->ndim; k++)
        if (loom__sbp_can_split(x, k))
            n = loom__sbp_add(sigs, n, max, 1, (loom_sbp[]){loom_split(k)}, k == 1 ? loom_split(0) : loom_partial_sum());
    return n;
}

const loom_op_def loom__op_batch_norm_stats = {.name = "batch_norm_stats", .min_src = 1, .max_src = 1,
                                               .infer = bn_stats_infer, .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_bn_stats, .sbp = bn_stats_sbp};

/* batch_norm(x, stats, running_mean, running_var, weight, bias) and batch_norm_relu(the same[,
 * residual]). The residual is the caller's: a mismatch is their error. */
static loom_status bn_infer(loom_tensor *t, char *msg, size_t len)
{
    static const char *const role[] = {"x", "stats", "running_mean", "running_var", "weight", "bias"};
    const loom_tensor *x = t->src[0], *r = t->n_src > 6 ? t->src[6] : NULL;
    loom_status s = chan_operand(t, x, msg, len);
    const loom_shape st = chan_shape(x, 3), c = chan_shape(x, 0);
    if (s == LOOM_OK)
        s = same_as(t, t->src[1], role[1], LOOM_F64, &st, msg, len);
    for (int k = 2; k < 6 && s == LOOM_OK; k++)
        s = same_as(t, t->src[k], role[k], x->dtype, &c, msg, len);
    if (s == LOOM_OK)
        s = momentum_ok(t->a.f[1], msg, len);
    if (s == LOOM_OK && r && (r->layout != LOOM__DENSE || r->dtype != x->dtype || !loom__shape_eq(&r->shape, &x->shape))) {
        char b1[160], b2[160];
        snprintf(msg, len, "residual is %s%s %s; expected x's %s %s", r->layout == LOOM__DENSE ? "" : "a CSR matrix of ",
                 loom_dtype_name(r->dtype), loom__shape_str(t->graph, &r->shape, b1, sizeof b1), loom_dtype_name(x->dtype),
                 loom__shape_str(t->graph, &x->shape, b2, sizeof b2));
        s = r->dtype != x->dtype ? LOOM_ERR_DTYPE : LOOM_ERR_SHAPE;
    }
    return infer_done(t, s, x, x->shape, msg, len);
}

/* The gradients of x (through the batch statistics as well: stats are batch_norm_stats(x), which
 * the builder guarantees, so stats take no gradient of their own), of the weight and of the bias
 * from gout, read where y > 0 only when y (a batch_norm_relu's output) is given; the running
 * statistics take none. */
static void bn_backward(loom_graph *g, const char *api, loom_tensor *t, loom_tensor *gout, loom_tensor *y, loom_tensor **gsrc)
{
    loom_tensor *x = t->src[0], *stats = t->src[1], *w = t->src[4];
    const loom__attrs a = {.f = {t->a.f[0]}};
    const int m = y != NULL;
    loom_tensor *sums = loom__node(g, api, LOOM_OP_BN_GRAD_SUMS, 3 + m, (loom_tensor *[]){gout, x, stats, y}, &a);
    gsrc[0] = loom__node(g, api, LOOM_OP_BATCH_NORM_GRAD, 5 + m, (loom_tensor *[]){gout, x, stats, w, sums, y}, &a);
    gsrc[4] = sums_column(g, api, sums, 1, &w->shape);
    gsrc[5] = sums_column(g, api, sums, 0, &w->shape);
}

static void bn_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    bn_backward(g, "loom_batch_norm (gradient)", t, gout, NULL, gsrc);
}

/* batch_norm_relu's: batch_norm's with gout masked by the output (t itself). Without a residual
 * the mask is read inside the gradient ops; with one, the residual needs the masked gout as a
 * tensor anyway (the add passes it through), so it is made once (act_grad, as relu's gradient)
 * and the gradient ops read it instead of reading gout and y twice each. */
static void bn_relu_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    const char *api = "loom_batch_norm_relu (gradient)";
    if (t->n_src < 7) {
        bn_backward(g, api, t, gout, t, gsrc);
        return;
    }
    gsrc[6] = loom__node(g, api, LOOM_OP_ACT_GRAD, 2, (loom_tensor *[]){t, gout}, &(loom__attrs){.i = {LOOM_OP_RELU}});
    bn_backward(g, api, t, gsrc[6], NULL, gsrc);
}

/* Per channel: with x split along any axis but the channels, every device needs the whole
 * statistics and parameters; split along the channels, each takes its channels of them. A
 * residual splits as x does. */
static int bn_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *x = &t->src[0]->shape;
    int n = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (!loom__sbp_can_split(x, k))
            continue;
        const loom_sbp s = loom_split(k), c = k == 1 ? loom_split(0) : loom_broadcast();
        n = loom__sbp_add(sigs, n, max, t->n_src, (loom_sbp[]){s, c, c, c, c, c, s}, s);
    }
    return n;
}

/* The running statistics' updates of a training step, from the batch statistics. */
static void bn_step_update(loom_graph *g, loom_tensor *t)
{
    for (int k = 0; k < 2; k++) {
        const loom__attrs a = {.i = {k}, .f = {t->a.f[1]}};
        loom__node(g, "loom_batch_norm (running statistics)", LOOM_OP_RUNNING_STATS_UPDATE, 2,
                   (loom_tensor *[]){t->src[2 + k], t->src[1]}, &a);
    }
}

const loom_op_def loom__op_batch_norm = {.name = "batch_norm", .min_src = 6, .max_src = 6, .infer = bn_infer,
                                         .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_batch_norm, .grad = bn_grad,
                                         .diff_src = 1u << 0 | 1u << 4 | 1u << 5, .sbp = bn_sbp,
                                         .step_update = bn_step_update};
const loom_op_def loom__op_batch_norm_relu = {.name = "batch_norm_relu", .min_src = 6, .max_src = 7, .infer = bn_infer,
                                              .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_batch_norm, .grad = bn_relu_grad,
                                              .diff_src = 1u << 0 | 1u << 4 | 1u << 5 | 1u << 6, .sbp = bn_sbp,
                                              .step_update = bn_step_update};

/* The index of the ReLU's output y among a batch norm gradient op's sources, -1 when it has none. */
static int bn_grad_mask(const loom_tensor *t)
{
    const int y = t->op == LOOM_OP_BATCH_NORM_GRAD ? 5 : 3;
    return t->n_src > y ? y : -1;
}

/* batch_norm_grad_sums(gout, x, stats[, y]), batch_norm_grad(gout, x, stats, weight, sums[, y]). */
static loom_status bn_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *x = t->src[1];
    loom_status s = chan_operand(t, x, msg, len);
    const loom_shape st = chan_shape(x, 3), c = chan_shape(x, 0), sums = chan_shape(x, 2);
    if (s == LOOM_OK)
        s = same_as(t, t->src[0], "gout", x->dtype, &x->shape, msg, len);
    if (s == LOOM_OK && bn_grad_mask(t) >= 0)
        s = same_as(t, t->src[bn_grad_mask(t)], "y", x->dtype, &x->shape, msg, len);
    if (s == LOOM_OK)
        s = same_as(t, t->src[2], "stats", LOOM_F64, &st, msg, len);
    if (s == LOOM_OK && t->op == LOOM_OP_BATCH_NORM_GRAD)
        s = same_as(t, t->src[3], "weight", x->dtype, &c, msg, len);
    if (s == LOOM_OK && t->op == LOOM_OP_BATCH_NORM_GRAD)
        s = same_as(t, t->src[4], "sums", x->dtype, &sums, msg, len);
    return infer_done(t, s, x, t->op == LOOM_OP_BATCH_NORM_GRAD ? x->shape : sums, msg, len);
}

/* As the forward's, gout, x (and y) split together; the sums add up over a split batch like the
 * statistics. Both are linear in gout (the gradient jointly in gout and the sums) given the rest,
 * the mask y > 0 included. */
static int bn_grad_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *x = &t->src[1]->shape;
    const int dx = t->op == LOOM_OP_BATCH_NORM_GRAD, y = bn_grad_mask(t);
    int n = 0;
    for (int k = 0; k < x->ndim; k++) {
        if (!loom__sbp_can_split(x, k))
            continue;
        const loom_sbp c = k == 1 ? loom_split(0) : loom_broadcast();
        const loom_sbp out = dx ? loom_split(k) : k == 1 ? loom_split(0) : loom_partial_sum();
        loom_sbp in[LOOM__MAX_SRC];
        for (int i = 0; i < t->n_src; i++)
            in[i] = i < 2 || i == y ? loom_split(k) : c;
        n = loom__sbp_add(sigs, n, max, t->n_src, in, out);
    }
    return loom__sbp_add_partial(t, dx ? 1u | 1u << 4 : 1u, loom_partial_sum(), sigs, n, max);
}

/* No gradients: second derivatives of batch norm are not supported. */
const loom_op_def loom__op_batch_norm_grad_sums = {.name = "batch_norm_grad_sums", .min_src = 3, .max_src = 4,
                                                   .infer = bn_grad_infer, .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_bn_grad_sums,
                                                   .sbp = bn_grad_sbp};
const loom_op_def loom__op_batch_norm_grad = {.name = "batch_norm_grad", .min_src = 5, .max_src = 6,
                                              .infer = bn_grad_infer, .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_batch_norm_grad,
                                              .sbp = bn_grad_sbp};

/* running_stats_update(running [C], stats f64 [C, 3]). In place: inference gives both sources the
 * running statistic's SBP, and [C, 3] splits along the channels as [C] does. */
static loom_status running_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *r = t->src[0];
    char b[160];
    if (r->layout != LOOM__DENSE || !loom_dtype_is_float(r->dtype) || r->shape.ndim != 1)
        return snprintf(msg, len, "the running statistic is %s %s; expected a float [C] (internal error)",
                        loom_dtype_name(r->dtype), loom__shape_str(t->graph, &r->shape, b, sizeof b)),
               LOOM_ERR_SHAPE;
    const loom_shape st = {.ndim = 2, .d = {r->shape.d[0], 3}};
    loom_status s = same_as(t, t->src[1], "stats", LOOM_F64, &st, msg, len);
    if (s == LOOM_OK && (t->a.i[0] < 0 || t->a.i[0] > 1))
        s = (snprintf(msg, len, "statistic %lld is neither the mean (0) nor the variance (1) (internal error)",
                      (long long)t->a.i[0]),
             LOOM_ERR_INVALID);
    if (s == LOOM_OK)
        s = momentum_ok(t->a.f[0], msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = r->dtype;
    t->layout = LOOM__DENSE;
    t->shape = (loom_shape){.ndim = 0};
    return LOOM_OK;
}

const loom_op_def loom__op_running_stats_update = {.name = "running_stats_update", .min_src = 2, .max_src = 2,
                                                   .flags = LOOM__OPF_INPLACE, .infer = running_infer,
                                                   .cpu = loom__cpu_running_stats_update};

/* ---- layer norm ---------------------------------------------------------------------------------- */

/* x: a dense float tensor whose last `axes` axes (1 .. its rank) are static; *f gets their shape. */
static loom_status ln_operand(const loom_tensor *t, const loom_tensor *x, loom_shape *f, char *msg, size_t len)
{
    const int axes = (int)t->a.i[0], nd = x->shape.ndim;
    char b[160];
    if (x->layout != LOOM__DENSE || !loom_dtype_is_float(x->dtype))
        return snprintf(msg, len, "x is %s%s; layer norm takes a dense f32 or f64 tensor",
                        x->layout == LOOM__DENSE ? "" : "a CSR matrix of ", loom_dtype_name(x->dtype)),
               LOOM_ERR_DTYPE;
    if (axes < 1 || axes > nd)
        return snprintf(msg, len, "axes is %d; x %s has %d to normalise over (1 .. %d)", axes,
                        loom__shape_str(t->graph, &x->shape, b, sizeof b), nd, nd),
               LOOM_ERR_SHAPE;
    *f = (loom_shape){.ndim = axes};
    for (int i = 0; i < axes; i++)
        if (loom_dim_is_dynamic(f->d[i] = x->shape.d[nd - axes + i]))
            return snprintf(msg, len, "x is %s; the %d normalised axes must be static", loom__shape_str(t->graph, &x->shape, b, sizeof b),
                            axes),
                   LOOM_ERR_SHAPE;
    return LOOM_OK;
}

/* The normalised elements' count, flattened: [F]. */
static int64_t ln_features(const loom_shape *f)
{
    int64_t n = 1;
    for (int i = 0; i < f->ndim; i++)
        n *= f->d[i]; /* within an int64: x's size was checked */
    return n;
}

/* layer_norm(x, weight, bias), layer_norm_grad(gout, x, weight), layer_norm_grad_sums(gout, x). */
static loom_status ln_infer(loom_tensor *t, char *msg, size_t len)
{
    const int fwd = t->op == LOOM_OP_LAYER_NORM;
    const loom_tensor *x = t->src[fwd ? 0 : 1];
    loom_shape f;
    loom_status s = ln_operand(t, x, &f, msg, len);
    if (s == LOOM_OK && !fwd)
        s = same_as(t, t->src[0], "gout", x->dtype, &x->shape, msg, len);
    if (s == LOOM_OK && t->op != LOOM_OP_LN_GRAD_SUMS)
        s = same_as(t, t->src[fwd ? 1 : 2], "weight", x->dtype, &f, msg, len);
    if (s == LOOM_OK && fwd)
        s = same_as(t, t->src[2], "bias", x->dtype, &f, msg, len);
    const loom_shape sums = {.ndim = 2, .d = {s == LOOM_OK ? ln_features(&f) : 0, 2}};
    return infer_done(t, s, x, t->op == LOOM_OP_LN_GRAD_SUMS ? sums : x->shape, msg, len);
}

static void ln_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    const char *api = "loom_layer_norm (gradient)";
    loom_tensor *x = t->src[0], *w = t->src[1];
    gsrc[0] = loom__node(g, api, LOOM_OP_LAYER_NORM_GRAD, 3, (loom_tensor *[]){gout, x, w}, &t->a);
    loom_tensor *sums = loom__node(g, api, LOOM_OP_LN_GRAD_SUMS, 2, (loom_tensor *[]){gout, x}, &t->a);
    gsrc[1] = sums_column(g, api, sums, 1, &w->shape);
    gsrc[2] = sums_column(g, api, sums, 0, &w->shape);
}

/* Rows are independent: an axis before the normalised ones splits x, gout and the output alike
 * (the sums add up: P); the weight and bias are whole. The gradient and the sums are linear in
 * gout given x. */
static int ln_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const int fwd = t->op == LOOM_OP_LAYER_NORM;
    const loom_shape *x = &t->src[fwd ? 0 : 1]->shape;
    int n = 0;
    for (int k = 0; k < x->ndim - (int)t->a.i[0]; k++) {
        if (!loom__sbp_can_split(x, k))
            continue;
        const loom_sbp s = loom_split(k), b = loom_broadcast();
        const loom_sbp out = t->op == LOOM_OP_LN_GRAD_SUMS ? loom_partial_sum() : s;
        n = loom__sbp_add(sigs, n, max, t->n_src, fwd ? (loom_sbp[]){s, b, b} : (loom_sbp[]){s, s, b}, out);
    }
    return fwd ? n : loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
}

const loom_op_def loom__op_layer_norm = {.name = "layer_norm", .min_src = 3, .max_src = 3, .infer = ln_infer,
                                         .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_layer_norm, .grad = ln_grad, .diff_src = 7, .sbp = ln_sbp};
/* No gradients: second derivatives of layer norm are not supported. */
const loom_op_def loom__op_layer_norm_grad = {.name = "layer_norm_grad", .min_src = 3, .max_src = 3, .infer = ln_infer,
                                              .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_layer_norm_grad, .sbp = ln_sbp};
const loom_op_def loom__op_layer_norm_grad_sums = {.name = "layer_norm_grad_sums", .min_src = 2, .max_src = 2,
                                                   .infer = ln_infer, .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_ln_grad_sums, .sbp = ln_sbp};

/* ---- builders ------------------------------------------------------------------------------------ */

/* A parameter of x's dtype named "<name>.<what>"; running statistics take no gradient. */
static loom_tensor *norm_param(loom_graph *g, const char *name, const char *what, const loom_tensor *x, loom_shape s,
                               double v, int trained)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", name, what);
    loom_tensor *p = loom_param(g, full, x->dtype, s, v ? loom_init_constant(v) : loom_init_zeros());
    if (!trained && !loom_tensor_is_poisoned(p))
        p->flags &= ~(uint32_t)LOOM__T_NEEDS_GRAD;
    return p;
}

/* The checks of a normalisation builder before it makes its parameters, whose shape (*ps) it reads
 * from x: batch norm's, or layer norm's over `axes` (layer set). NULL when x and name may be used,
 * else the poisoned tensor with the error recorded. */
static loom_tensor *norm_refuse(loom_graph *g, const char *api, loom_tensor *x, const char *name, int layer, int axes,
                                loom_shape *ps)
{
    loom_tensor *bad = loom__refuse_sources(g, api, 1, &x);
    if (bad)
        return bad;
    if (!name)
        return loom__fail(g, LOOM_ERR_INVALID, "%s: name is NULL", api);
    char msg[256];
    const loom_tensor probe = {.graph = g, .a = {.i = {axes}}};
    loom_status s = layer ? ln_operand(&probe, x, ps, msg, sizeof msg) : chan_operand(&probe, x, msg, sizeof msg);
    if (s != LOOM_OK)
        return loom__fail(g, s, "%s: %s", api, msg);
    if (!layer)
        *ps = chan_shape(x, 0);
    return NULL;
}

/* batch_norm (op BATCH_NORM) or batch_norm_relu (op BN_RELU, with the residual r or none). */
static loom_tensor *batch_norm(loom_graph *g, const char *api, loom_op op, const char *name, loom_tensor *x, loom_tensor *r,
                               double momentum, double eps)
{
    loom_shape c;
    if (!g)
        return NULL;
    loom_tensor *bad = norm_refuse(g, api, x, name, 0, 0, &c);
    if (!bad && r) /* the residual is the builder's second tensor argument */
        bad = loom__refuse_sources(g, api, 2, (loom_tensor *[]){x, r});
    if (bad)
        return bad;
    loom_tensor *src[7] = {x};
    src[1] = loom__node(g, api, LOOM_OP_BN_STATS, 1, &x, NULL);
    src[2] = norm_param(g, name, "running_mean", x, c, 0, 0);
    src[3] = norm_param(g, name, "running_var", x, c, 1, 0);
    src[4] = norm_param(g, name, "weight", x, c, 1, 1);
    src[5] = norm_param(g, name, "bias", x, c, 0, 1);
    src[6] = r;
    return loom__node(g, api, op, r ? 7 : 6, src, &(loom__attrs){.f = {eps, momentum}});
}

loom_tensor *loom_batch_norm(loom_graph *g, const char *name, loom_tensor *x, double momentum, double eps)
{
    return batch_norm(g, "loom_batch_norm", LOOM_OP_BATCH_NORM, name, x, NULL, momentum, eps);
}

loom_tensor *loom_batch_norm_relu(loom_graph *g, const char *name, loom_tensor *x, loom_tensor *residual, double momentum,
                                  double eps)
{
    return batch_norm(g, "loom_batch_norm_relu", LOOM_OP_BN_RELU, name, x, residual, momentum, eps);
}

loom_tensor *loom_layer_norm(loom_graph *g, const char *name, loom_tensor *x, int axes, double eps)
{
    const char *api = "loom_layer_norm";
    loom_shape f;
    if (!g)
        return NULL;
    loom_tensor *bad = norm_refuse(g, api, x, name, 1, axes, &f);
    if (bad)
        return bad;
    loom_tensor *src[3] = {x};
    src[1] = norm_param(g, name, "weight", x, f, 1, 1);
    src[2] = norm_param(g, name, "bias", x, f, 0, 1);
    return loom__node(g, api, LOOM_OP_LAYER_NORM, 3, src, &(loom__attrs){.i = {axes}, .f = {eps}});
}
