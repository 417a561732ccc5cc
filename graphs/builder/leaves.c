/* The graph's leaves: inputs (dense or CSR, over dynamic dims) and parameters (with their
 * initialisers and weight decay), named on creation; and the check that fed data fits an input. */
#include "graphs/builder/builder_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static loom_tensor *leaf(loom_graph *g, const char *api, loom_op op, const char *name, loom_dtype dtype,
                         loom__layout layout, loom_shape shape)
{
    if (!g)
        return NULL;
    if (!loom__name_ok(g, api, name))
        return &g->poison;
    if ((unsigned)dtype >= LOOM_DTYPE_COUNT)
        return loom__fail(g, LOOM_ERR_DTYPE, "%s '%s': invalid dtype %d", api, name, (int)dtype);
    char buf[128], why[256];
    if (!loom__shape_ok(g, &shape, op == LOOM_OP_INPUT, why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s '%s': invalid shape %s: %s", api, name,
                          shape.ndim >= 0 && shape.ndim <= LOOM_MAX_DIMS ? loom__shape_str(g, &shape, buf, sizeof buf)
                                                                          : "(bad rank)",
                          why);
    if (!loom__size_fits(g, dtype, layout, &shape, why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "%s '%s': shape %s", api, name, why);
    loom__attrs a = {.i = {dtype, layout}, .shape = shape};
    loom_tensor *t = loom__node(g, api, op, 0, NULL, &a);
    if (!(t->flags & LOOM__T_POISON))
        loom__set_name(g, t, name);
    return t;
}

loom_tensor *loom_input(loom_graph *g, const char *name, loom_dtype dtype, loom_shape shape)
{
    return leaf(g, "loom_input", LOOM_OP_INPUT, name, dtype, LOOM__DENSE, shape);
}

loom_tensor *loom_input_csr(loom_graph *g, const char *name, loom_dtype vdtype, loom_dim nrows, loom_dim ncols)
{
    if (g && vdtype != LOOM_F32 && vdtype != LOOM_F64)
        return loom__fail(g, LOOM_ERR_DTYPE, "loom_input_csr '%s': values must be f32 or f64, got %s",
                          name ? name : "?", loom_dtype_name(vdtype));
    return leaf(g, "loom_input_csr", LOOM_OP_INPUT, name, vdtype, LOOM__CSR, loom_shape(nrows, ncols));
}

loom_tensor *loom_param(loom_graph *g, const char *name, loom_dtype dtype, loom_shape shape, loom_init init)
{
    if (g && !loom_dtype_is_float(dtype))
        return loom__fail(g, LOOM_ERR_DTYPE, "loom_param '%s': parameters must be f32 or f64, got %s", name ? name : "?",
                          loom_dtype_name(dtype));
    if (g && (unsigned)init.kind >= LOOM_INIT_KIND_COUNT)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_param '%s': invalid initialiser kind %d", name ? name : "?",
                          (int)init.kind);
    if (g && init.kind == LOOM_INIT_UNIFORM && !(init.a <= init.b))
        return loom__fail(g, LOOM_ERR_INVALID, "loom_param '%s': uniform bounds [%g, %g) are empty", name ? name : "?",
                          init.a, init.b);
    if (g && init.kind == LOOM_INIT_NORMAL && !(init.b >= 0))
        return loom__fail(g, LOOM_ERR_INVALID, "loom_param '%s': normal std %g is negative", name ? name : "?", init.b);
    loom_tensor *t = leaf(g, "loom_param", LOOM_OP_PARAM, name, dtype, LOOM__DENSE, shape);
    if (t && !(t->flags & LOOM__T_POISON)) {
        t->init = init;
        t->flags |= LOOM__T_NEEDS_GRAD;
    }
    return t;
}

void loom_param_set_weight_decay(loom_tensor *param, double weight_decay)
{
    if (!param || (param->flags & LOOM__T_POISON))
        return;
    if (param->op != LOOM_OP_PARAM || !(weight_decay >= 0)) {
        loom__fail(param->graph, LOOM_ERR_INVALID, "loom_param_set_weight_decay: '%s' %s", loom_tensor_name(param),
                   param->op != LOOM_OP_PARAM ? "is not a parameter" : "needs a weight decay >= 0");
        return;
    }
    param->weight_decay = weight_decay;
}

void loom_param_set_trainable(loom_tensor *param, int trainable)
{
    if (!param || (param->flags & LOOM__T_POISON))
        return;
    loom_graph *g = param->graph;
    if (param->op != LOOM_OP_PARAM) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_param_set_trainable: '%s' is not a parameter", loom_tensor_name(param));
        return;
    }
    if (trainable)
        param->flags |= LOOM__T_NEEDS_GRAD;
    else
        param->flags &= ~(uint32_t)LOOM__T_NEEDS_GRAD;
    /* What depends on a parameter was marked when it was made (loom__node); mark again what the
     * graph made since this one, in id order (a topological order), from the sources' marks. */
    for (int id = param->id + 1; id < g->n; id++) {
        loom_tensor *t = g->t[id];
        const loom_op_def *def = loom__op_def(t->op);
        if (def->flags & LOOM__OPF_LEAF)
            continue;
        t->flags &= ~(uint32_t)LOOM__T_NEEDS_GRAD;
        for (int i = 0; i < t->n_src; i++)
            if ((def->diff_src >> i & 1) && (t->src[i]->flags & LOOM__T_NEEDS_GRAD))
                t->flags |= LOOM__T_NEEDS_GRAD;
    }
}

loom_status loom__input_dims(const loom_graph *g, const loom_tensor *t, int ndim, const int64_t *shape, char *msg, size_t len)
{
    char b[128];
    if (ndim != t->shape.ndim) {
        snprintf(msg, len, "input '%s' is %s, data has %d dims", t->name, loom__shape_str(g, &t->shape, b, sizeof b), ndim);
        return LOOM_ERR_SHAPE;
    }
    for (int i = 0; i < ndim; i++) {
        int64_t bound = loom__dim_bound(g, t->shape.d[i]);
        int k = loom__dyn_index(g, t->shape.d[i]);
        if (shape[i] >= 0 && (k >= 0 ? shape[i] <= bound : shape[i] == bound))
            continue;
        char why[96];
        if (shape[i] < 0)
            snprintf(why, sizeof why, "a size must be >= 0");
        else if (k >= 0)
            snprintf(why, sizeof why, "over %s's bound of %" PRId64, g->dyn[k].name, bound);
        else
            snprintf(why, sizeof why, "the input's is %" PRId64, bound);
        snprintf(msg, len, "input '%s' is %s, data has size %" PRId64 " in dim %d (%s)", t->name,
                 loom__shape_str(g, &t->shape, b, sizeof b), shape[i], i, why);
        return LOOM_ERR_SHAPE;
    }
    return LOOM_OK;
}

loom_status loom__micro_rows(const loom_tensor *t, int ndim, const int64_t *shape, int micro, char *msg, size_t len)
{
    if (micro <= 1 || ndim < 1 || shape[0] < 0 || shape[0] % micro == 0)
        return LOOM_OK;
    snprintf(msg, len, "input '%s' has %" PRId64 " rows (axis 0: the batch), which %d micro-batches do not divide "
             "(loom_train_opts.micro_batches): feed a multiple of %d rows",
             t->name, shape[0], micro, micro);
    return LOOM_ERR_SHAPE;
}
