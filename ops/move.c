/* move: a tensor onto another placement (loom_to_placement, graphs/builder/builder.c). The value is the
 * same; where it lives changes. The executors turn it into a transfer between the placements'
 * devices; on one device it is a copy. */
#include <stdio.h>
#include <string.h>

#include "graphs/core/op.h"

static loom_status move_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *x = t->src[0];
    if (x->layout != LOOM__DENSE)
        return snprintf(msg, len, "sparse tensors cannot move between placements yet"), LOOM_ERR_UNSUPPORTED;
    t->dtype = x->dtype;
    t->layout = LOOM__DENSE;
    t->shape = x->shape;
    return LOOM_OK;
}

static loom_status move_cpu(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t, (void)ctx;
    size_t n = (size_t)loom__numel(out) * loom_dtype_size(out->dtype);
    if (n)
        memcpy(out->data, src[0]->data, n);
    return LOOM_OK;
}

/* The gradient moves back to where the source is. */
static void move_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    gsrc[0] = loom__node(g, "loom_to_placement (gradient)", LOOM_OP_MOVE, 1, &gout, &(loom__attrs){.i = {t->src[0]->place}});
}

/* No signature list: SBP inference gives a move any SBP on its destination (sbp/infer/infer.c). */
const loom_op_def loom__op_move = {
    .name = "move",
    .min_src = 1,
    .max_src = 1,
    .infer = move_infer,
    .cpu = move_cpu,
    .grad = move_grad,
    .diff_src = 1,
};
