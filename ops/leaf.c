/* Leaf ops: inputs, parameters, optimizer state (values held by the program, computed by no
 * kernel), and fill, a constant shaped like another tensor (the seed of the backward pass). */
#include "graphs/core/op.h"

#include "ops/cpu/cpu.h"
#include "ops/sbp_sigs.h"

/* a.i[0] dtype, a.i[1] layout, a.shape: checked by the builder before it gets here. */
static loom_status leaf_infer(loom_tensor *t, char *msg, size_t len)
{
    (void)msg;
    (void)len;
    t->dtype = (loom_dtype)t->a.i[0];
    t->layout = (loom__layout)t->a.i[1];
    t->shape = t->a.shape;
    return LOOM_OK;
}

/* No signatures (sbp NULL): a leaf's SBP is the user's hint or inference's default. */
const loom_op_def loom__op_input = {.name = "input", .flags = LOOM__OPF_LEAF, .infer = leaf_infer};
const loom_op_def loom__op_param = {.name = "param", .flags = LOOM__OPF_LEAF, .infer = leaf_infer};
const loom_op_def loom__op_state = {.name = "state", .flags = LOOM__OPF_LEAF, .infer = leaf_infer};

/* fill(like): like's dtype and shape, every element a.f[0]. */
static loom_status fill_infer(loom_tensor *t, char *msg, size_t len)
{
    (void)msg;
    (void)len;
    if (t->src[0]->layout != LOOM__DENSE || !loom_dtype_is_float(t->src[0]->dtype))
        return LOOM_ERR_DTYPE;
    t->dtype = t->src[0]->dtype;
    t->shape = t->src[0]->shape;
    return LOOM_OK;
}

#define FILL(T, sfx)                                  \
    static void fill_##sfx(T *y, int64_t n, double v) \
    {                                                 \
        for (int64_t i = 0; i < n; i++)               \
            y[i] = (T)v;                              \
    }
LOOM__FLOAT_TYPES(FILL)
#undef FILL

static loom_status fill_cpu(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)src;
    (void)ctx;
    return LOOM__DISPATCH_FLOAT(out->dtype, fill, out->data, loom__numel(out), t->a.f[0]);
}

/* fill reads only like's shape: a split like gives the parts of the constant, and a P like (which
 * holds the whole shape on every device) gives all of it on each: (P) -> B, the seed of the
 * backward pass of a partial loss. */
static int fill_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES, sigs, 0, max);
    return loom__sbp_add_partial(t, 1, loom_broadcast(), sigs, n, max);
}

const loom_op_def loom__op_fill = {.name = "fill", .min_src = 1, .max_src = 1, .infer = fill_infer, .cpu = fill_cpu,
                                   .sbp = fill_sbp};
