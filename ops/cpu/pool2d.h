/* CPU kernels of 2-D pooling and its gradients (ops/pool.c). Averages and gradients add in double,
 * in row-major window order, the same however the planes are split over threads. */
#ifndef LOOM_OPS_CPU_POOL2D_H
#define LOOM_OPS_CPU_POOL2D_H

#include "graphs/core/op.h"

/* x [N, C, H, W] -> [N, C, P, Q]: the first max of each window (a NaN wins). */
loom_status loom__cpu_max_pool2d(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* x [N, C, H, W] -> [N, C, P, Q]: each window's sum over kh kw. */
loom_status loom__cpu_avg_pool2d(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (x, y, gout) -> x's shape: gout[o] on the first element of o's window that reaches y[o]. */
loom_status loom__cpu_max_pool2d_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx);
/* (gout, x) -> x's shape: the sum of gout over the windows that cover an element, over kh kw. */
loom_status loom__cpu_avg_pool2d_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx);

#endif
