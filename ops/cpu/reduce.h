/* CPU kernels of the reductions (ops/reduce.c). */
#ifndef LOOM_OPS_CPU_REDUCE_H
#define LOOM_OPS_CPU_REDUCE_H

#include "graphs/core/op.h"

/* sum / mean of x over the axes in a.i[0] (bit i = axis i of x); out has the kept axes in order,
 * with or without the size-1 reduced ones, which does not change its layout. A mean over no
 * elements is 0. Accumulates in double. */
loom_status loom__cpu_sum(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_mean(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* expand(x, like): x broadcast to out (like's shape, NumPy rules); with a.i[0] = 1 every element
 * is divided by numel(out) / numel(x). */
loom_status loom__cpu_expand(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* argmax(x) along a.i[0] -> i32 (loom__argmax's rule). */
loom_status loom__cpu_argmax(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
