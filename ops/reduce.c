/* Reductions: sum and mean over a set of axes, and expand, their gradient (broadcast a tensor to
 * another's shape); argmax along an axis. Also loom__sum_to, the gradient of every broadcasting op.
 * Kernels live in ops/cpu/reduce.c and ops/cuda/reduce.cu.
 *
 *   sum/mean(x):     a.i[0] axis mask (bit i = reduce axis i; LOOM_ALL_AXES is narrowed to x's
 *                    axes by infer), a.i[1] keepdims.
 *   expand(x, like): x broadcast (NumPy rules) to like's shape; like's data is never read.
 *                    a.i[0] = 1 divides by the run-time expansion factor (mean's gradient). */
#include <stdint.h>
#include <stdio.h>

#include "ops/cpu/reduce.h"
#include "graphs/core/op.h"
#include "ops/sbp_sigs.h"

static loom_status float_operand(const loom_tensor *t, int i, char *msg, size_t len)
{
    const loom_tensor *s = t->src[i];
    if (s->layout != LOOM__DENSE) {
        snprintf(msg, len, "operand %d is a CSR matrix; this op takes dense tensors", i + 1);
        return LOOM_ERR_INVALID;
    }
    if (!loom_dtype_is_float(s->dtype)) {
        snprintf(msg, len, "operand %d is %s; this op takes f32 or f64", i + 1, loom_dtype_name(s->dtype));
        return LOOM_ERR_DTYPE;
    }
    return LOOM_OK;
}

/* ---- sum, mean --------------------------------------------------------------------------------- */

static loom_status reduce_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = float_operand(t, 0, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_shape *x = &t->src[0]->shape;
    uint32_t mask = (uint32_t)t->a.i[0];
    uint32_t all = (UINT32_C(1) << x->ndim) - 1; /* ndim <= LOOM_MAX_DIMS */
    if (mask == LOOM_ALL_AXES) {
        mask = all;
    } else if (mask & ~all) {
        int bad = x->ndim;
        while (!(mask >> bad & 1))
            bad++;
        char b[160];
        snprintf(msg, len, "axis %d out of range for %s", bad, loom__shape_str(t->graph, x, b, sizeof b));
        return LOOM_ERR_SHAPE;
    }
    int keep = t->a.i[1] != 0;
    t->a.i[0] = mask; /* kernels and the gradient see the axes of x only */
    t->a.i[1] = keep;
    loom_shape r = {0};
    for (int i = 0; i < x->ndim; i++)
        if (!(mask >> i & 1))
            r.d[r.ndim++] = x->d[i];
        else if (keep)
            r.d[r.ndim++] = 1;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = r;
    return LOOM_OK;
}

/* gx = expand(gout with the reduced axes put back as size 1, x); mean divides by their count. */
static void reduce_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *x = t->src[0];
    int mean = t->op == LOOM_OP_MEAN;
    const char *api = mean ? "loom_mean (gradient)" : "loom_sum (gradient)";
    if (!t->a.i[1]) {
        loom_shape k = x->shape;
        for (int i = 0; i < k.ndim; i++)
            if (t->a.i[0] >> i & 1)
                k.d[i] = 1;
        if (!loom__shape_eq(&k, &gout->shape))
            gout = loom_reshape(g, gout, k);
    }
    loom__attrs a = {.i = {mean}};
    gsrc[0] = loom__node(g, api, LOOM_OP_EXPAND, 2, (loom_tensor *[]){gout, x}, &a);
}

/* A kept axis stays split (as output axis k, counting the reduced axes only with keepdims). A
 * reduced axis split gives each device the sum over its part: P for sum. Not for mean: each
 * device divides by its own part's length, and with uneven parts (7 over 3 devices: 3, 2, 2) the
 * local means do not add up to the mean. Both are linear, so P -> P. */
static int reduce_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *x = &t->src[0]->shape;
    const uint32_t mask = (uint32_t)t->a.i[0];
    int n = 0;
    for (int i = 0, k = 0; i < x->ndim; i++) {
        const int red = mask >> i & 1;
        if (!red && loom__sbp_can_split(x, i) && loom__sbp_can_split(&t->shape, k))
            n = loom__sbp_add(sigs, n, max, 1, (loom_sbp[]){loom_split(i)}, loom_split(k));
        else if (red && t->op == LOOM_OP_SUM && loom__sbp_can_split(x, i))
            n = loom__sbp_add(sigs, n, max, 1, (loom_sbp[]){loom_split(i)}, loom_partial_sum());
        k += !red || t->a.i[1];
    }
    return loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
}

const loom_op_def loom__op_sum = {.name = "sum", .min_src = 1, .max_src = 1, .infer = reduce_infer,
                                  .cpu = loom__cpu_sum, .grad = reduce_grad, .diff_src = 1, .sbp = reduce_sbp};
const loom_op_def loom__op_mean = {.name = "mean", .min_src = 1, .max_src = 1, .infer = reduce_infer,
                                   .cpu = loom__cpu_mean, .grad = reduce_grad, .diff_src = 1, .sbp = reduce_sbp};

loom_tensor *loom_sum(loom_graph *g, loom_tensor *x, uint32_t axis_mask, int keepdims)
{
    loom__attrs a = {.i = {axis_mask, keepdims != 0}};
    return loom__node(g, "loom_sum", LOOM_OP_SUM, 1, &x, &a);
}

loom_tensor *loom_mean(loom_graph *g, loom_tensor *x, uint32_t axis_mask, int keepdims)
{
    loom__attrs a = {.i = {axis_mask, keepdims != 0}};
    return loom__node(g, "loom_mean", LOOM_OP_MEAN, 1, &x, &a);
}

/* ---- sum_to: the reduction that undoes a broadcast --------------------------------------------- */

/* Reduces x over the axes that broadcasting x's target stretched: x's leading axes beyond target's
 * rank, and axes where target has a static 1 and x does not. Sums, or averages when mean. */
static loom_tensor *reduce_to(loom_graph *g, const char *api, loom_tensor *x, const loom_shape *target, int mean)
{
    if (!g)
        return NULL;
    if (!target)
        return loom__fail(g, LOOM_ERR_INVALID, "%s: target shape is NULL", api);
    if (!x || (x->flags & LOOM__T_POISON))
        return loom__node(g, api, LOOM_OP_SUM, 1, &x, NULL); /* records the NULL, passes the poison */
    const loom_shape *xs = &x->shape;
    int lead = xs->ndim - target->ndim;
    uint32_t mask = 0;
    int ok = lead >= 0;
    for (int i = 0; ok && i < xs->ndim; i++) {
        if (i < lead)
            mask |= UINT32_C(1) << i;
        else if (loom__dim_eq(xs->d[i], target->d[i - lead]))
            continue;
        else if (target->d[i - lead] == 1)
            mask |= UINT32_C(1) << i;
        else
            ok = 0;
    }
    if (!ok) {
        char b1[160], b2[160];
        return loom__fail(g, LOOM_ERR_SHAPE, "%s: %s does not broadcast to %s (internal error)", api,
                          loom__shape_str(g, target, b2, sizeof b2), loom__shape_str(g, xs, b1, sizeof b1));
    }
    if (!mask)
        return x;
    loom_tensor *r = mean ? loom_mean(g, x, mask, 1) : loom_sum(g, x, mask, 1);
    return lead > 0 ? loom_reshape(g, r, *target) : r;
}

loom_tensor *loom__sum_to(loom_graph *g, loom_tensor *x, const loom_shape *target)
{
    return reduce_to(g, "loom__sum_to", x, target, 0);
}

/* ---- expand ------------------------------------------------------------------------------------ */

static loom_status expand_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = float_operand(t, 0, msg, len);
    if (s != LOOM_OK)
        return s;
    if (t->src[1]->layout != LOOM__DENSE) {
        snprintf(msg, len, "operand 2 is a CSR matrix; this op takes dense tensors");
        return LOOM_ERR_INVALID;
    }
    const loom_shape *x = &t->src[0]->shape, *like = &t->src[1]->shape;
    int lead = like->ndim - x->ndim, ok = lead >= 0;
    for (int i = 0; ok && i < x->ndim; i++)
        ok = loom__dim_eq(x->d[i], like->d[lead + i]) || x->d[i] == 1;
    if (!ok) {
        char b1[160], b2[160];
        snprintf(msg, len, "%s does not broadcast to %s", loom__shape_str(t->graph, x, b1, sizeof b1),
                 loom__shape_str(t->graph, like, b2, sizeof b2));
        return LOOM_ERR_SHAPE;
    }
    t->a.i[0] = t->a.i[0] != 0;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = *like;
    return LOOM_OK;
}

/* The adjoint of a broadcast is a sum over the stretched axes; of the scaled broadcast, the mean
 * over them (the factor divided by is the count of elements summed). */
static void expand_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    gsrc[0] = reduce_to(g, "expand (gradient)", gout, &t->src[0]->shape, (int)t->a.i[0]);
}

/* The output takes like's shape, so like splits with it; x splits where it meets the axis
 * unstretched and is B where it is stretched. The scaled form multiplies by numel(x) / numel(out)
 * of the local values, which is the logical factor only when x is split along with the output:
 * a whole x against a part of the output would scale by n / (its part) instead. like's data is
 * never read, so a P like holds the whole shape as well as a B one does; x enters linearly. */
static int expand_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    if (t->a.i[0]) {
        int kept = 0;
        for (int i = 0; i < n; i++)
            if (sigs[i].in[0].kind == LOOM_SBP_SPLIT)
                sigs[kept++] = sigs[i];
        n = kept;
    }
    n = loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
    n = loom__sbp_add_partial(t, 3, loom_partial_sum(), sigs, n, max);
    return loom__sbp_add_partial(t, 2, loom_broadcast(), sigs, n, max);
}

const loom_op_def loom__op_expand = {.name = "expand", .min_src = 2, .max_src = 2, .infer = expand_infer,
                                     .cpu = loom__cpu_expand, .grad = expand_grad, .diff_src = 1, .sbp = expand_sbp};

/* ---- argmax ------------------------------------------------------------------------------------ */

/* argmax(x; axis a.i[0], normalised here): i32, x's shape without the axis, which must not be a
 * static 0 (an empty axis has no largest element) nor longer than an i32 counts. */
static loom_status argmax_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = float_operand(t, 0, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_shape *x = &t->src[0]->shape;
    const int axis = loom__axis((int)t->a.i[0], x->ndim);
    char b[160];
    if (axis < 0)
        return snprintf(msg, len, "axis %lld out of range for %s", (long long)t->a.i[0],
                        loom__shape_str(t->graph, x, b, sizeof b)),
               LOOM_ERR_SHAPE;
    if (x->d[axis] == 0)
        return snprintf(msg, len, "axis %d of %s is empty: it has no largest element", axis,
                        loom__shape_str(t->graph, x, b, sizeof b)),
               LOOM_ERR_SHAPE;
    if (loom__dim_bound(t->graph, x->d[axis]) > INT32_MAX)
        return snprintf(msg, len, "axis %d of %s is longer than the i32 indices hold", axis,
                        loom__shape_str(t->graph, x, b, sizeof b)),
               LOOM_ERR_SHAPE;
    t->a.i[0] = axis;
    t->dtype = LOOM_I32;
    t->layout = LOOM__DENSE;
    t->shape = (loom_shape){.ndim = x->ndim - 1};
    for (int i = 0, k = 0; i < x->ndim; i++)
        if (i != axis)
            t->shape.d[k++] = x->d[i];
    return LOOM_OK;
}

/* Any other axis splits through, as the output axis it becomes. */
static int argmax_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *x = &t->src[0]->shape;
    const int axis = (int)t->a.i[0];
    int n = 0;
    for (int i = 0; i < x->ndim; i++) {
        const int k = i < axis ? i : i - 1;
        if (i != axis && loom__sbp_can_split(x, i) && loom__sbp_can_split(&t->shape, k))
            n = loom__sbp_add(sigs, n, max, 1, (loom_sbp[]){loom_split(i)}, loom_split(k));
    }
    return n;
}

const loom_op_def loom__op_argmax = {.name = "argmax", .min_src = 1, .max_src = 1, .infer = argmax_infer,
                                     .cpu = loom__cpu_argmax, .sbp = argmax_sbp};

loom_tensor *loom_argmax(loom_graph *g, loom_tensor *x, int axis)
{
    return loom__node(g, "loom_argmax", LOOM_OP_ARGMAX, 1, &x, &(loom__attrs){.i = {axis}});
}
