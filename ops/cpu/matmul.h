/* CPU matmul kernel (OpenBLAS). */
#ifndef LOOM_OPS_CPU_MATMUL_H
#define LOOM_OPS_CPU_MATMUL_H

#include "graphs/core/op.h"

loom_status loom__cpu_matmul(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
