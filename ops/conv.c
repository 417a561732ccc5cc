/* 2-D convolution (NCHW) and its gradient ops. Kernels live in ops/cpu/conv.c and
 * ops/cuda/conv.cu; the geometry all of them check is ops/shared/conv.c's.
 *
 *   conv2d(x, w[, b]):          x [N, C, H, W], w [K, C / G, R, S], b [K] -> y [N, K, P, Q] with
 *                               y[n, k, p, q] = b[k] + sum over c of group(k), r, s of
 *                               w[k, c - C/G group(k), r, s] x[n, c, p sh - ph + r dh, q sw - pw + s dw]
 *                               (x is 0 outside its H x W), group(k) = k / (K / G),
 *                               P = (H + 2 ph - dh (R - 1) - 1) / sh + 1 and likewise Q.
 *   conv2d_grad_input(dy, w):   dx [N, C, H, W] = the transpose of x -> y applied to dy; a.shape
 *                               holds (H, W), which stride > 1 leaves ambiguous in dy's P, Q.
 *   conv2d_grad_weight(x, dy):  dw [K, C / G, R, S], the sum over n, p, q of dy times the x
 *                               element w meets there; a.shape holds (R, S).
 *
 * Attributes (a.i, ops/shared/conv.h): stride (h, w), padding (h, w), dilation (h, w), groups G.
 * Only axis 0 (the batch) may be a dynamic dim. The bias's gradient is a sum of dy. */
#include <stdio.h>

#include "graphs/core/op.h"
#include "ops/cpu/conv.h"
#include "ops/sbp_sigs.h"
#include "ops/shared/conv.h"

/* Source i, called name: a dense 4-D tensor of the float dtype of source 0 (called first),
 * static but for its batch axis (0) when `batch`; what says how its axes are read
 * ("[N, C, H, W]"). */
static loom_status operand(const loom_tensor *t, int i, const char *name, const char *first, const char *what, int batch,
                           char *msg, size_t len)
{
    const loom_tensor *s = t->src[i];
    char b[160];
    if (s->layout != LOOM__DENSE)
        return snprintf(msg, len, "%s must be a dense tensor, got a CSR matrix", name), LOOM_ERR_INVALID;
    if (!loom_dtype_is_float(s->dtype))
        return snprintf(msg, len, "%s is %s; convolutions take f32 or f64", name, loom_dtype_name(s->dtype)), LOOM_ERR_DTYPE;
    if (s->dtype != t->src[0]->dtype)
        return snprintf(msg, len, "%s is %s but %s %s; every operand must be of one float dtype", name,
                        loom_dtype_name(s->dtype), first, loom_dtype_name(t->src[0]->dtype)),
               LOOM_ERR_DTYPE;
    if (s->shape.ndim != 4)
        return snprintf(msg, len, "%s must be 4-D %s, got %s", name, what, loom__shape_str(t->graph, &s->shape, b, sizeof b)),
               LOOM_ERR_SHAPE;
    for (int d = batch ? 1 : 0; d < 4; d++)
        if (loom_dim_is_dynamic(s->shape.d[d]))
            return snprintf(msg, len, "%s is %s: %s", name, loom__shape_str(t->graph, &s->shape, b, sizeof b),
                            batch ? "only its batch dim (0) may be dynamic" : "its dims must be static"),
                   LOOM_ERR_SHAPE;
    return LOOM_OK;
}

/* The spatial dims a gradient op keeps in a.shape: two static sizes. */
static loom_status kept_dims(const loom_tensor *t, int64_t *d0, int64_t *d1, char *msg, size_t len)
{
    const loom_shape *s = &t->a.shape;
    if (s->ndim != 2 || s->d[0] < 0 || s->d[1] < 0)
        return snprintf(msg, len, "the op keeps no spatial dims (internal error)"), LOOM_ERR_INVALID;
    *d0 = s->d[0];
    *d1 = s->d[1];
    return LOOM_OK;
}

/* dy [N, K, P, Q] against the geometry: its K, P, Q. */
static loom_status check_dy(const loom_tensor *t, const loom_tensor *dy, const loom__conv *cv, char *msg, size_t len)
{
    const loom_shape *s = &dy->shape;
    if (s->d[1] == cv->k && s->d[2] == cv->p && s->d[3] == cv->q)
        return LOOM_OK;
    char b[160];
    snprintf(msg, len, "dy is %s; expected [N, %lld, %lld, %lld] for a %lldx%lld input and a %lldx%lld kernel of %lld filters",
             loom__shape_str(t->graph, s, b, sizeof b), (long long)cv->k, (long long)cv->p, (long long)cv->q, (long long)cv->h,
             (long long)cv->w, (long long)cv->r, (long long)cv->s, (long long)cv->k);
    return LOOM_ERR_SHAPE;
}

static void set_dense(loom_tensor *t, loom_dim d0, int64_t d1, int64_t d2, int64_t d3)
{
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = (loom_shape){.ndim = 4, .d = {d0, d1, d2, d3}};
}

static int needs_grad(const loom_tensor *t, int i) { return (t->src[i]->flags & LOOM__T_NEEDS_GRAD) != 0; }

static int grouped(const loom_tensor *t) { return t->a.i[LOOM__CONV_GROUPS] != 1; }

/* ---- conv2d ------------------------------------------------------------------------------------ */

static loom_status conv_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = operand(t, 0, "x", "x", "[N, C, H, W]", 1, msg, len);
    if (s == LOOM_OK)
        s = operand(t, 1, "w", "x", "[K, C / groups, R, S]", 0, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_shape *x = &t->src[0]->shape, *w = &t->src[1]->shape;
    loom__conv cv = {.c = x->d[1], .h = x->d[2], .w = x->d[3], .k = w->d[0], .cg = w->d[1], .r = w->d[2], .s = w->d[3]};
    loom__conv_set_attrs(&cv, &t->a);
    if ((s = loom__conv_check(&cv, msg, len)) != LOOM_OK)
        return s;
    if (t->n_src > 2) {
        const loom_tensor *b = t->src[2];
        char bb[160];
        if (b->layout != LOOM__DENSE || b->dtype != t->src[0]->dtype)
            return snprintf(msg, len, "b is a %s %s; expected a dense %s tensor", b->layout == LOOM__CSR ? "CSR" : "dense",
                            loom_dtype_name(b->dtype), loom_dtype_name(t->src[0]->dtype)),
                   b->layout == LOOM__CSR ? LOOM_ERR_INVALID : LOOM_ERR_DTYPE;
        if (b->shape.ndim != 1 || b->shape.d[0] != cv.k)
            return snprintf(msg, len, "b is %s; expected [%lld] (one per output channel)",
                            loom__shape_str(t->graph, &b->shape, bb, sizeof bb), (long long)cv.k),
                   LOOM_ERR_SHAPE;
    }
    set_dense(t, x->d[0], cv.k, cv.p, cv.q);
    return LOOM_OK;
}

/* dx and dw from the transposed maps, each with the spatial dims it cannot read off dy; db sums dy
 * over all but the channel axis. */
static void conv_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *x = t->src[0], *w = t->src[1];
    loom__attrs a = t->a;
    if (needs_grad(t, 0)) {
        a.shape = (loom_shape){.ndim = 2, .d = {x->shape.d[2], x->shape.d[3]}};
        gsrc[0] = loom__node(g, "loom_conv2d (input gradient)", LOOM_OP_CONV2D_GRAD_INPUT, 2, (loom_tensor *[]){gout, w}, &a);
    }
    if (needs_grad(t, 1)) {
        a.shape = (loom_shape){.ndim = 2, .d = {w->shape.d[2], w->shape.d[3]}};
        gsrc[1] = loom__node(g, "loom_conv2d (weight gradient)", LOOM_OP_CONV2D_GRAD_WEIGHT, 2, (loom_tensor *[]){x, gout}, &a);
    }
    if (t->n_src > 2 && needs_grad(t, 2))
        gsrc[2] = loom_sum(g, gout, LOOM_AXIS(0) | LOOM_AXIS(2) | LOOM_AXIS(3), 0);
}

/* y [N, K, P, Q]. The batch splits with x (every image is its own). Without groups, w's filters
 * split y's channels (each filter reads all of x), and a split of the input channels on x and w
 * leaves each device a partial sum over its channels, to which one device's addend of the bias
 * belongs (b P). y is linear in x given w and in w given x, the bias added once (P). With groups a
 * device's filters or channels would not line up with the groups, so only the batch splits. */
static int conv_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *x = &t->src[0]->shape, *w = &t->src[1]->shape;
    const int ns = t->n_src;
    const uint32_t bias = ns > 2 ? 4 : 0;
    int n = 0;
    if (loom__sbp_can_split(x, 0))
        n = loom__sbp_add(sigs, n, max, ns, (loom_sbp[]){loom_split(0), loom_broadcast(), loom_broadcast()}, loom_split(0));
    if (!grouped(t)) {
        if (loom__sbp_can_split(w, 0) && loom__sbp_can_split(&t->shape, 1))
            n = loom__sbp_add(sigs, n, max, ns, (loom_sbp[]){loom_broadcast(), loom_split(0), loom_split(0)}, loom_split(1));
        if (loom__sbp_can_split(x, 1) && loom__sbp_can_split(w, 1))
            n = loom__sbp_add(sigs, n, max, ns, (loom_sbp[]){loom_split(1), loom_split(1), loom_partial_sum()},
                              loom_partial_sum());
    }
    n = loom__sbp_add_partial(t, 1 | bias, loom_partial_sum(), sigs, n, max);
    return loom__sbp_add_partial(t, 2 | bias, loom_partial_sum(), sigs, n, max);
}

/* 2 multiply-adds per weight element a channel of each output pixel meets: 2 |dy| |w| / C_out, for
 * the forward pass (dy the output) and both gradients alike. */
static double conv_flops_of(const loom_tensor *t, const loom_shape *dy, const loom_shape *w)
{
    double cout = (double)loom__dim_bound(t->graph, w->d[0]);
    return 2 * loom__shape_bound_elems(t->graph, dy) * loom__shape_bound_elems(t->graph, w) / (cout > 0 ? cout : 1);
}
static double conv_flops(const loom_tensor *t) { return conv_flops_of(t, &t->shape, &t->src[1]->shape); }
static double grad_input_flops(const loom_tensor *t) { return conv_flops_of(t, &t->src[0]->shape, &t->src[1]->shape); }
static double grad_weight_flops(const loom_tensor *t) { return conv_flops_of(t, &t->src[1]->shape, &t->shape); }

const loom_op_def loom__op_conv2d = {.name = "conv2d", .min_src = 2, .max_src = 3, .infer = conv_infer,
                                     .flags = LOOM__OPF_THREADED | LOOM__OPF_LIBRARY, .cpu = loom__cpu_conv, .grad = conv_grad, .diff_src = 7, .sbp = conv_sbp,
                                     .flops = conv_flops};

loom_tensor *loom_conv2d(loom_graph *g, loom_tensor *x, loom_tensor *w, loom_tensor *b, const loom_conv2d_opts *o)
{
    const loom_conv2d_opts d = LOOM_CONV2D_OPTS_INIT;
    if (!o)
        o = &d;
    loom__attrs a = {0};
    for (int i = 0; i < 2; i++) {
        a.i[LOOM__CONV_STRIDE + i] = o->stride[i];
        a.i[LOOM__CONV_PAD + i] = o->pad[i];
        a.i[LOOM__CONV_DIL + i] = o->dilation[i];
    }
    a.i[LOOM__CONV_GROUPS] = o->groups;
    loom_tensor *src[3] = {x, w, b};
    return loom__node(g, "loom_conv2d", LOOM_OP_CONV2D, b ? 3 : 2, src, &a);
}

/* ---- conv2d_grad_input ------------------------------------------------------------------------- */

static loom_status grad_input_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = operand(t, 0, "dy", "dy", "[N, K, P, Q]", 1, msg, len);
    if (s == LOOM_OK)
        s = operand(t, 1, "w", "dy", "[K, C / groups, R, S]", 0, msg, len);
    const loom_shape *dy = &t->src[0]->shape, *w = &t->src[1]->shape;
    loom__conv cv = {.k = w->d[0], .cg = w->d[1], .r = w->d[2], .s = w->d[3]};
    if (s == LOOM_OK)
        s = kept_dims(t, &cv.h, &cv.w, msg, len);
    if (s != LOOM_OK)
        return s;
    loom__conv_set_attrs(&cv, &t->a);
    if (cv.groups >= 1 && loom__mul_size(cv.cg, cv.groups, &cv.c))
        return snprintf(msg, len, "%lld groups of %lld channels overflow", (long long)cv.groups, (long long)cv.cg),
               LOOM_ERR_INVALID;
    if ((s = loom__conv_check(&cv, msg, len)) != LOOM_OK || (s = check_dy(t, t->src[0], &cv, msg, len)) != LOOM_OK)
        return s;
    set_dense(t, dy->d[0], cv.c, cv.h, cv.w);
    return LOOM_OK;
}

/* dx [N, C, H, W] from dy [N, K, P, Q] and w. The batch splits with dy. Without groups: filters
 * split on dy's channels and w leave a partial sum over them, and w's input channels split dx's;
 * linear in each source given the other. */
static int grad_input_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *dy = &t->src[0]->shape, *w = &t->src[1]->shape;
    int n = 0;
    if (loom__sbp_can_split(dy, 0))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(0), loom_broadcast()}, loom_split(0));
    if (!grouped(t)) {
        if (loom__sbp_can_split(dy, 1) && loom__sbp_can_split(w, 0))
            n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(1), loom_split(0)}, loom_partial_sum());
        if (loom__sbp_can_split(w, 1) && loom__sbp_can_split(&t->shape, 1))
            n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_broadcast(), loom_split(1)}, loom_split(1));
    }
    n = loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
    return loom__sbp_add_partial(t, 2, loom_partial_sum(), sigs, n, max);
}

/* No gradient: second derivatives of a convolution are not supported. */
const loom_op_def loom__op_conv2d_grad_input = {.name = "conv2d_grad_input", .min_src = 2, .max_src = 2,
                                                .infer = grad_input_infer, .flags = LOOM__OPF_THREADED | LOOM__OPF_LIBRARY, .cpu = loom__cpu_conv,
                                                .sbp = grad_input_sbp, .flops = grad_input_flops};

/* ---- conv2d_grad_weight ------------------------------------------------------------------------ */

static loom_status grad_weight_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = operand(t, 0, "x", "x", "[N, C, H, W]", 1, msg, len);
    if (s == LOOM_OK)
        s = operand(t, 1, "dy", "x", "[N, K, P, Q]", 1, msg, len);
    const loom_shape *x = &t->src[0]->shape, *dy = &t->src[1]->shape;
    loom__conv cv = {.c = x->d[1], .h = x->d[2], .w = x->d[3], .k = dy->d[1]};
    if (s == LOOM_OK)
        s = kept_dims(t, &cv.r, &cv.s, msg, len);
    if (s != LOOM_OK)
        return s;
    loom__conv_set_attrs(&cv, &t->a);
    cv.cg = cv.groups >= 1 ? cv.c / cv.groups : 0;
    if ((s = loom__conv_check(&cv, msg, len)) != LOOM_OK || (s = check_dy(t, t->src[1], &cv, msg, len)) != LOOM_OK)
        return s;
    if (!loom__dim_eq(x->d[0], dy->d[0])) {
        char b1[160], b2[160];
        return snprintf(msg, len, "x is %s but dy %s: their batches differ", loom__shape_str(t->graph, x, b1, sizeof b1),
                        loom__shape_str(t->graph, dy, b2, sizeof b2)),
               LOOM_ERR_SHAPE;
    }
    set_dense(t, cv.k, cv.cg, cv.r, cv.s);
    return LOOM_OK;
}

/* dw [K, C / G, R, S] from x and dy. A split batch leaves each device the sum over its images (P).
 * Without groups: dy's channels split dw's filters and x's channels dw's input channels. Linear in
 * each source given the other. */
static int grad_weight_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *x = &t->src[0]->shape, *dy = &t->src[1]->shape;
    int n = 0;
    if (loom__sbp_can_split(x, 0) && loom__sbp_can_split(dy, 0))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(0), loom_split(0)}, loom_partial_sum());
    if (!grouped(t)) {
        if (loom__sbp_can_split(dy, 1) && loom__sbp_can_split(&t->shape, 0))
            n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_broadcast(), loom_split(1)}, loom_split(0));
        if (loom__sbp_can_split(x, 1) && loom__sbp_can_split(&t->shape, 1))
            n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(1), loom_broadcast()}, loom_split(1));
    }
    n = loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
    return loom__sbp_add_partial(t, 2, loom_partial_sum(), sigs, n, max);
}

/* No gradient: second derivatives of a convolution are not supported. */
const loom_op_def loom__op_conv2d_grad_weight = {.name = "conv2d_grad_weight", .min_src = 2, .max_src = 2,
                                                 .infer = grad_weight_infer, .flags = LOOM__OPF_THREADED | LOOM__OPF_LIBRARY, .cpu = loom__cpu_conv,
                                                 .sbp = grad_weight_sbp, .flops = grad_weight_flops};
