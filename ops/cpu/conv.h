/* CPU kernels of conv2d and its gradient ops (ops/conv.c): im2col and OpenBLAS GEMM. */
#ifndef LOOM_OPS_CPU_CONV_H
#define LOOM_OPS_CPU_CONV_H

#include "graphs/core/op.h"

/* The kernel of the three ops, by t's op: conv2d (x, w[, b]) -> y, conv2d_grad_input (dy, w) -> dx,
 * conv2d_grad_weight (x, dy) -> dw. */
loom_status loom__cpu_conv(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
