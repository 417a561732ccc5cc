/* Inverted dropout as two nodes: mask = dropout_mask(x) (u8, shaped like x, drawn per step) and
 * out = dropout(x, mask). Keeping the mask a tensor of its own lets the backward pass reuse it:
 * the gradient of dropout(x, mask) is dropout(gout, mask). Kernels live in ops/cpu/dropout.c. */
#include <stdio.h>

#include "ops/cpu/binary.h"
#include "ops/cpu/dropout.h"
#include "graphs/core/op.h"
#include "ops/sbp_sigs.h"

/* dropout_mask(x): u8 of x's shape; x must be a dense float tensor (the one dropped). */
static loom_status mask_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = loom__elem_check(t, 1, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = LOOM_U8;
    t->layout = LOOM__DENSE;
    t->shape = t->src[0]->shape;
    return LOOM_OK;
}

/* The kernels draw each element from its index in the whole tensor (loom__mask_base gives a
 * part's first), so a mask split along a static axis 0 is drawn in parts, each device only its
 * own rows: no all-gather of x (which would be read for its shape alone) and no whole mask per
 * device. A dynamic axis 0 is split by the source into whole graphs, not at loom_split_part's
 * offsets, so it stays all-B there (made whole on every device, identical everywhere). */
static int mask_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    if (t->shape.ndim < 1 || !loom__sbp_can_split(&t->shape, 0) || loom_dim_is_dynamic(t->shape.d[0]))
        return 0;
    return loom__sbp_add(sigs, 0, max, 1, (loom_sbp[]){loom_split(0)}, loom_split(0));
}

/* For the cost model: half a splitmix64 draw per element, about ten scalar integer operations,
 * which run at about a sixth of the rate of a matrix product's vector multiply-adds (measured on a
 * CPU: 0.7 G elements/s a core), so counted as 64 of those. */
static double mask_flops(const loom_tensor *t) { return 64 * loom__shape_bound_elems(t->graph, &t->shape); }

const loom_op_def loom__op_dropout_mask = {.name = "dropout_mask", .min_src = 1, .max_src = 1,
                                           .flags = LOOM__OPF_RANDOM | LOOM__OPF_THREADED, .infer = mask_infer,
                                           .cpu = loom__cpu_dropout_mask, .sbp = mask_sbp, .flops = mask_flops};

/* dropout(x, mask): x dense float, mask u8 of x's shape. */
static loom_status dropout_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = loom__elem_check(t, 1, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_tensor *x = t->src[0], *m = t->src[1];
    int same = m->layout == LOOM__DENSE && m->dtype == LOOM_U8 && m->shape.ndim == x->shape.ndim;
    for (int i = 0; same && i < x->shape.ndim; i++)
        same = loom__dim_eq(m->shape.d[i], x->shape.d[i]);
    if (!same) {
        char b1[160], b2[160];
        snprintf(msg, len, "mask must be u8 %s like x, got %s %s (internal error)",
                 loom__shape_str(t->graph, &x->shape, b1, sizeof b1), loom_dtype_name(m->dtype),
                 loom__shape_str(t->graph, &m->shape, b2, sizeof b2));
        return LOOM_ERR_SHAPE;
    }
    if (!(t->a.f[0] >= 0 && t->a.f[0] < 1)) {
        snprintf(msg, len, "p must be in [0, 1), got %g", t->a.f[0]);
        return LOOM_ERR_INVALID;
    }
    t->dtype = x->dtype;
    t->layout = LOOM__DENSE;
    t->shape = x->shape;
    return LOOM_OK;
}

static void dropout_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *src[2] = {gout, t->src[1]};
    gsrc[0] = loom__node(g, "loom_dropout (gradient)", LOOM_OP_DROPOUT, 2, src, &t->a);
}

/* Given the mask, dropout is x * m * keep (training) or x (evaluation): elementwise, and linear in
 * x, so the mask's and x's splits go together and a partial x stays partial with the mask B. */
static int dropout_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    return loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
}

const loom_op_def loom__op_dropout = {.name = "dropout", .min_src = 2, .max_src = 2, .infer = dropout_infer,
                                      .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_dropout, .grad = dropout_grad, .diff_src = 1,
                                      .sbp = dropout_sbp};

/* The checks loom__node makes, for p == 0, where dropout is x itself and makes no node. */
static loom_tensor *identity(loom_graph *g, loom_tensor *x)
{
    loom_tensor *bad = loom__refuse_sources(g, "loom_dropout", 1, &x);
    if (bad)
        return bad;
    loom_tensor tmp = {.n_src = 1, .src = {x}, .graph = g};
    char msg[256];
    loom_status s = loom__elem_check(&tmp, 1, msg, sizeof msg);
    return s == LOOM_OK ? x : loom__fail(g, s, "loom_dropout: %s", msg);
}

loom_tensor *loom_dropout(loom_graph *g, loom_tensor *x, double p)
{
    if (!g)
        return NULL;
    if (!(p >= 0 && p < 1))
        return loom__fail(g, LOOM_ERR_INVALID, "loom_dropout: p must be in [0, 1), got %g", p);
    if (p == 0)
        return identity(g, x);
    loom__attrs a = {.f = {p}};
    loom_tensor *mask = loom__node(g, "loom_dropout", LOOM_OP_DROPOUT_MASK, 1, &x, &a);
    return loom__node(g, "loom_dropout", LOOM_OP_DROPOUT, 2, (loom_tensor *[]){x, mask}, &a);
}
