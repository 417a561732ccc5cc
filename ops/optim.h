/* Optimizer update ops, made by loom_compile for each trained parameter (ops/optim.c). Both are
 * in-place: they update the parameter and their state tensors and have no value of their own. */
#ifndef LOOM_OPS_OPTIM_H
#define LOOM_OPS_OPTIM_H

#include <loom/program.h>

#include "graphs/core/op.h"

#include <math.h>

/* sgd_update(p, grad, buf): PyTorch's SGD step on p with momentum buffer buf (a zeroed state
 * tensor shaped like p; unused when o->momentum is 0). lr, momentum, dampening and nesterov come
 * from o, the weight decay from weight_decay (the parameter's own, or the optimizer's). */
loom_tensor *loom__sgd_update(loom_graph *g, loom_tensor *p, loom_tensor *grad, loom_tensor *buf,
                              const loom_optimizer *o, double weight_decay);
/* adam_update(p, grad, m, v): PyTorch's Adam (or AdamW when o->decoupled) step with first and
 * second moments m and v (zeroed state tensors shaped like p). */
loom_tensor *loom__adam_update(loom_graph *g, loom_tensor *p, loom_tensor *grad, loom_tensor *m, loom_tensor *v,
                               const loom_optimizer *o, double weight_decay);

/* The learning rate an update op (its attributes a, made from a loom_optimizer) uses at step
 * `step` (the optimizer steps taken before it): a.f[0] under the schedule of a.i[1] (total steps
 * a.i[2], warm-up steps a.i[3], step size a.i[4], gamma a.f[5], min_lr a.f[6]); see
 * loom_lr_schedule. Computed in double on the host, once per update. */
static inline double loom__lr_at(const loom__attrs *a, int64_t step)
{
    double lr = a->f[0];
    if (a->i[1] == LOOM_LR_STEP && a->i[4] > 0)
        lr *= pow(a->f[5], (double)(step / a->i[4]));
    else if (a->i[1] == LOOM_LR_COSINE && a->i[2] > 0) {
        const double t = (double)(step < a->i[2] ? step : a->i[2]) / (double)a->i[2];
        lr = a->f[6] + (lr - a->f[6]) * (1 + cos(3.14159265358979323846 * t)) / 2;
    }
    if (step < a->i[3])
        lr *= (double)(step + 1) / (double)a->i[3];
    return lr;
}

#endif
