/* CPU kernels of binary cross entropy on logits (ops/loss.c). Sums run in double. */
#ifndef LOOM_OPS_CPU_LOSS_H
#define LOOM_OPS_CPU_LOSS_H

#include "graphs/core/op.h"

/* (logits, targets) -> the mean over the whole logits' elements (loom__bce_count) of the loss. */
loom_status loom__cpu_bce_logits(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (logits, targets, gout scalar) -> ((1 - y) - l sigmoid(-z)) * gout / count, the logits' shape. */
loom_status loom__cpu_bce_logits_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx);

#endif
