/* CPU kernels of the index ops (ops/index.c): row gathers and scatters by an i32 index. */
#ifndef LOOM_OPS_CPU_INDEX_H
#define LOOM_OPS_CPU_INDEX_H

#include "graphs/core/op.h"

/* Scatter reductions, a.i[0] of SCATTER and SCATTER_GRAD. */
enum loom__scatter_mode { LOOM__SCATTER_SUM, LOOM__SCATTER_MEAN, LOOM__SCATTER_MAX, LOOM__SCATTER_MODE_COUNT };

/* gather_rows(table [V, F...], idx [E]) -> [E, F...], any dtype; an index outside [0, V) fails
 * with LOOM_ERR_INVALID naming its position and value. */
loom_status loom__cpu_gather_rows(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* scatter(src [E, F...], idx [E]) -> out [n, F...] (n = out->shape[0]): the sum, mean or max
 * (a.i[0]) of the rows of src sent to each row; 0 for rows that receive none. */
loom_status loom__cpu_scatter(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* scatter_grad(src [E, F...], idx [E], out [n, F...], gout [n, F...]) -> [E, F...]: the gradient of
 * a mean (gout[idx[e]] / count) or max (gout to the first row attaining the max) scatter. */
loom_status loom__cpu_scatter_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                   const loom__kctx *ctx);
/* segment_softmax(x [E, F...], seg [E]) -> [E, F...]: per segment and feature, exp(x - max) / sum;
 * and (t a segment_softmax_grad) segment_softmax_grad(y, seg, gout) -> y * (gout - d[seg]), d the
 * segment sums of gout * y. Sums in double over each segment's rows in row order; a seg value
 * outside [0, n) (n a.i[0], or its bound when dynamic) fails with LOOM_ERR_INVALID. */
loom_status loom__cpu_segment_softmax(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx);
/* one_hot(idx) -> [..., classes] of 0s and 1s; an index outside [0, classes) fails with
 * LOOM_ERR_INVALID. */
loom_status loom__cpu_one_hot(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
