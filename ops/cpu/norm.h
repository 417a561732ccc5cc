/* CPU kernels of batch and layer normalisation (ops/norm.c). Statistics and sums add in double, in
 * a fixed order per channel, row or element (rows, or batch then spatial index, ascending), the
 * same however the work is split over threads. */
#ifndef LOOM_OPS_CPU_NORM_H
#define LOOM_OPS_CPU_NORM_H

#include "graphs/core/op.h"

/* x [N, C, ...] -> f64 [C, 3]: per channel the sum of x, of x^2, and the count; zeros in evaluation.
 * Fails a training run of one value per channel. */
loom_status loom__cpu_bn_stats(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (x, stats, running_mean, running_var, weight, bias) -> x's shape, normalised by the batch
 * statistics (training) or the running ones; batch_norm_relu's too: relu of that plus its residual
 * (a 7th source) when it has one. */
loom_status loom__cpu_batch_norm(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (gout, x, stats[, y]) -> [C, 2]: per channel the sum of gout and of gout xhat, gout taken where
 * y > 0 only when y is given. */
loom_status loom__cpu_bn_grad_sums(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                   const loom__kctx *ctx);
/* (gout, x, stats, weight, sums[, y]) -> the gradient of x, gout masked by y > 0 as above. */
loom_status loom__cpu_batch_norm_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx);
/* (running [C], stats) in place: running = (1 - momentum) running + momentum stat. */
loom_status loom__cpu_running_stats_update(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                           const loom__kctx *ctx);
/* (x, weight, bias) -> x's shape, each row of the last a.i[0] axes normalised. */
loom_status loom__cpu_layer_norm(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (gout, x, weight) -> the gradient of x. */
loom_status loom__cpu_layer_norm_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx);
/* (gout, x) -> [F, 2]: per normalised element the sums over rows of gout and of gout xhat. */
loom_status loom__cpu_ln_grad_sums(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                   const loom__kctx *ctx);

#endif
