/* CPU kernels of conv2d and its gradient ops (ops/conv.c): im2col and OpenBLAS GEMM. */
#ifndef LOOM_OPS_CPU_CONV_H
#define LOOM_OPS_CPU_CONV_H

#include "graphs/core/op.h"

/* (x, w[, b]) -> y. */
loom_status loom__cpu_conv2d(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (dy, w) -> dx. */
loom_status loom__cpu_conv2d_grad_input(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                        const loom__kctx *ctx);
/* (x, dy) -> dw. */
loom_status loom__cpu_conv2d_grad_weight(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                         const loom__kctx *ctx);

#endif
