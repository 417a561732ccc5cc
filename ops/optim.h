/* Optimizer update ops, made by loom_compile for each trained parameter (ops/optim.c). Both are
 * in-place: they update the parameter and their state tensors and have no value of their own. */
#ifndef LOOM_OPS_OPTIM_H
#define LOOM_OPS_OPTIM_H

#include <loom/program.h>

#include "graphs/core/op.h"

/* sgd_update(p, grad, buf): PyTorch's SGD step on p with momentum buffer buf (a zeroed state
 * tensor shaped like p; unused when o->momentum is 0). lr, momentum, dampening and nesterov come
 * from o, the weight decay from weight_decay (the parameter's own, or the optimizer's). */
loom_tensor *loom__sgd_update(loom_graph *g, loom_tensor *p, loom_tensor *grad, loom_tensor *buf,
                              const loom_optimizer *o, double weight_decay);
/* adam_update(p, grad, m, v): PyTorch's Adam (or AdamW when o->decoupled) step with first and
 * second moments m and v (zeroed state tensors shaped like p). */
loom_tensor *loom__adam_update(loom_graph *g, loom_tensor *p, loom_tensor *grad, loom_tensor *m, loom_tensor *v,
                               const loom_optimizer *o, double weight_decay);

#endif
