/* CPU kernels of log_softmax, softmax and softmax cross entropy (ops/softmax.c). Rows are the last
 * axis but for softmax, which runs along any; every sum runs in double. */
#ifndef LOOM_OPS_CPU_SOFTMAX_H
#define LOOM_OPS_CPU_SOFTMAX_H

#include "graphs/core/op.h"

/* y = x - max - log(sum(exp(x - max))) per row. */
loom_status loom__cpu_log_softmax(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (y, gout) -> gout - exp(y) * sum(gout) per row. */
loom_status loom__cpu_log_softmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                       const loom__kctx *ctx);
/* y = exp(x - max) / sum(exp(x - max)) along axis a.i[0]. */
loom_status loom__cpu_softmax(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (y, gout) -> y * (gout - sum(gout * y)) along axis a.i[0]. */
loom_status loom__cpu_softmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                   const loom__kctx *ctx);
/* (logits [N, C], labels [N] i32[, mask [N] u8]) -> the mean cross entropy of the rows with
 * mask != 0, 0 when none. A counted row whose label is outside [0, C) is LOOM_ERR_INVALID; the
 * labels of rows the mask leaves out are not read. */
loom_status loom__cpu_softmax_ce(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (logits, labels[, mask], gout scalar) -> (softmax - onehot) * mask / count * gout, [N, C]. */
loom_status loom__cpu_softmax_ce_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx);

#endif
