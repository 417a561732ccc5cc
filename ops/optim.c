/* Optimizer updates as ops: sgd_update(p, grad, buf) and adam_update(p, grad, m, v). They are
 * in-place (LOOM__OPF_INPLACE): the kernel rewrites the parameter and its state, and the tensor
 * itself has no value (shape ndim 0, dtype the parameter's). Kernels live in ops/cpu/optim.c.
 *
 *   sgd_update:  a.f = {lr, momentum, dampening, weight_decay}, a.i[0] = nesterov
 *   adam_update: a.f = {lr, beta1, beta2, eps, weight_decay},   a.i[0] = decoupled (AdamW)
 * and for both the schedule of the rate (ops/optim.h, loom__lr_at): a.i[1] the schedule, a.i[2]
 * total steps, a.i[3] warm-up steps, a.i[4] step size, a.f[5] gamma, a.f[6] min_lr. */
#include "ops/optim.h"

#include <math.h>
#include <stdio.h>

#include "ops/cpu/optim.h"

static const char *const role[2][4] = {{"param", "grad", "momentum buffer", ""}, {"param", "grad", "m", "v"}};

/* Every source is a dense float tensor of the parameter's dtype and shape. */
static loom_status update_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *p = t->src[0];
    const int adam = t->op == LOOM_OP_ADAM_UPDATE;
    char b1[160], b2[160];
    if (p->layout != LOOM__DENSE || !loom_dtype_is_float(p->dtype))
        return snprintf(msg, len, "the parameter must be a dense f32 or f64 tensor, got %s", loom_dtype_name(p->dtype)),
               LOOM_ERR_DTYPE;
    for (int k = 1; k < t->n_src; k++) {
        const loom_tensor *s = t->src[k];
        int same = s->layout == LOOM__DENSE && s->dtype == p->dtype && s->shape.ndim == p->shape.ndim;
        for (int i = 0; same && i < p->shape.ndim; i++)
            same = loom__dim_eq(s->shape.d[i], p->shape.d[i]);
        if (!same)
            return snprintf(msg, len, "%s is %s %s but the parameter is %s %s", role[adam][k], loom_dtype_name(s->dtype),
                            loom__shape_str(t->graph, &s->shape, b1, sizeof b1), loom_dtype_name(p->dtype),
                            loom__shape_str(t->graph, &p->shape, b2, sizeof b2)),
                   LOOM_ERR_SHAPE;
    }
    const double *f = t->a.f;
    for (int k = 0; k < (adam ? 5 : 4); k++)
        if (!isfinite(f[k]))
            return snprintf(msg, len, "optimizer settings must be finite (setting %d is %g)", k, f[k]), LOOM_ERR_INVALID;
    /* The checks torch.optim makes, with its wording. */
    if (f[0] < 0)
        return snprintf(msg, len, "invalid learning rate %g", f[0]), LOOM_ERR_INVALID;
    if (f[adam ? 4 : 3] < 0)
        return snprintf(msg, len, "invalid weight decay %g", f[adam ? 4 : 3]), LOOM_ERR_INVALID;
    const int64_t *i = t->a.i;
    if (i[1] < 0 || i[1] >= LOOM_LR_COUNT)
        return snprintf(msg, len, "invalid learning rate schedule %lld", (long long)i[1]), LOOM_ERR_INVALID;
    if (i[1] == LOOM_LR_COSINE && (i[2] <= 0 || !(f[6] >= 0) || !isfinite(f[6])))
        return snprintf(msg, len, "a cosine schedule needs total_steps > 0 and a finite min_lr >= 0 (got %lld, %g)",
                        (long long)i[2], f[6]),
               LOOM_ERR_INVALID;
    if (i[1] == LOOM_LR_STEP && (i[4] <= 0 || !(f[5] > 0) || !isfinite(f[5])))
        return snprintf(msg, len, "a step schedule needs step_size > 0 and a finite gamma > 0 (got %lld, %g)",
                        (long long)i[4], f[5]),
               LOOM_ERR_INVALID;
    if (i[3] < 0)
        return snprintf(msg, len, "invalid warm-up steps %lld", (long long)i[3]), LOOM_ERR_INVALID;
    if (adam) {
        for (int k = 1; k <= 2; k++)
            if (!(f[k] >= 0 && f[k] < 1))
                return snprintf(msg, len, "invalid beta%d %g, expected [0, 1)", k, f[k]), LOOM_ERR_INVALID;
        if (f[3] < 0)
            return snprintf(msg, len, "invalid epsilon %g", f[3]), LOOM_ERR_INVALID;
    } else {
        if (f[1] < 0)
            return snprintf(msg, len, "invalid momentum %g", f[1]), LOOM_ERR_INVALID;
        if (t->a.i[0] && (f[1] <= 0 || f[2] != 0))
            return snprintf(msg, len, "nesterov momentum requires a momentum > 0 and zero dampening (got %g, %g)", f[1],
                            f[2]),
                   LOOM_ERR_INVALID;
    }
    t->dtype = p->dtype;
    t->layout = LOOM__DENSE;
    t->shape = (loom_shape){.ndim = 0};
    return LOOM_OK;
}

const loom_op_def loom__op_sgd_update = {
    .name = "sgd_update",
    .min_src = 3,
    .max_src = 3,
    .flags = LOOM__OPF_INPLACE,
    .infer = update_infer,
    .cpu = loom__cpu_sgd_update,
};

const loom_op_def loom__op_adam_update = {
    .name = "adam_update",
    .min_src = 4,
    .max_src = 4,
    .flags = LOOM__OPF_INPLACE,
    .infer = update_infer,
    .cpu = loom__cpu_adam_update,
};

loom_tensor *loom__sgd_update(loom_graph *g, loom_tensor *p, loom_tensor *grad, loom_tensor *buf,
                              const loom_optimizer *o, double weight_decay)
{
    if (!o)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_compile (SGD update): no optimizer settings");
    loom_tensor *src[3] = {p, grad, buf};
    loom__attrs a = {.i = {!!o->nesterov, o->schedule, o->total_steps, o->warmup_steps, o->step_size},
                     .f = {o->lr, o->momentum, o->dampening, weight_decay, 0, o->gamma, o->min_lr}};
    return loom__node(g, "loom_compile (SGD update)", LOOM_OP_SGD_UPDATE, 3, src, &a);
}

loom_tensor *loom__adam_update(loom_graph *g, loom_tensor *p, loom_tensor *grad, loom_tensor *m, loom_tensor *v,
                               const loom_optimizer *o, double weight_decay)
{
    if (!o)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_compile (Adam update): no optimizer settings");
    loom_tensor *src[4] = {p, grad, m, v};
    loom__attrs a = {.i = {!!o->decoupled, o->schedule, o->total_steps, o->warmup_steps, o->step_size},
                     .f = {o->lr, o->beta1, o->beta2, o->eps, weight_decay, o->gamma, o->min_lr}};
    return loom__node(g, "loom_compile (Adam update)", LOOM_OP_ADAM_UPDATE, 4, src, &a);
}
