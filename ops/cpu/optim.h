/* CPU kernels of the optimizer updates (ops/optim.c). They write their sources in place: the
 * parameter (src[0]) and the state (src[2], src[3]); out has no data. */
#ifndef LOOM_OPS_CPU_OPTIM_H
#define LOOM_OPS_CPU_OPTIM_H

#include "graphs/core/op.h"

/* sgd_update(p, grad, buf): a.f = {lr, momentum, dampening, weight_decay}, a.i[0] nesterov. */
loom_status loom__cpu_sgd_update(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* adam_update(p, grad, m, v): a.f = {lr, beta1, beta2, eps, weight_decay}, a.i[0] decoupled;
 * step ctx->step + 1. */
loom_status loom__cpu_adam_update(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
