/* CPU kernels of dropout (ops/dropout.c). */
#ifndef LOOM_OPS_CPU_DROPOUT_H
#define LOOM_OPS_CPU_DROPOUT_H

#include "graphs/core/op.h"

/* u8 keep mask shaped like its source (whose data it never reads): element i is dropped (0) with
 * probability a.f[0], drawn from (graph seed, mask tensor id, step, i); all ones in evaluation. */
loom_status loom__cpu_dropout_mask(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* dropout(x, mask): x * mask / (1 - a.f[0]) in training, x in evaluation. */
loom_status loom__cpu_dropout(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
