/* CPU kernels of the shape ops (ops/shape.c), and the strided walk they share with the reductions.
 * Every kernel copies elements by size, so it serves every dtype. */
#ifndef LOOM_OPS_CPU_SHAPE_H
#define LOOM_OPS_CPU_SHAPE_H

#include "graphs/core/op.h"
#include "ops/shared/runs.h"

/* reshape: a copy of the elements (the layout of a dense value does not depend on its shape). */
loom_status loom__cpu_reshape(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* transpose: out dim i is x's dim a.i[i]. */
loom_status loom__cpu_transpose(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* concat of every source along axis a.i[0]. */
loom_status loom__cpu_concat(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* slice: [a.i[1], a.i[2]) of axis a.i[0]. */
loom_status loom__cpu_slice(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* slice_grad(gout, x): zeros shaped like x with gout written into [a.i[1], a.i[2]) of axis a.i[0]. */
loom_status loom__cpu_slice_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
