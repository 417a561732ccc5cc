/* Shared by the CPU kernels: dtype dispatch and small helpers. */
#ifndef LOOM_OPS_CPU_CPU_H
#define LOOM_OPS_CPU_CPU_H

#include "graphs/core/op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Instantiates a kernel body for both float types: LOOM__FLOAT_TYPES(DEFINE) with
 * DEFINE(T, sfx) defining e.g. relu_fwd_##sfx on T. */
#define LOOM__FLOAT_TYPES(X) X(float, f32) X(double, f64)

/* Calls name##_f32 or name##_f64 with args for a float dtype; LOOM_ERR_DTYPE otherwise. */
#define LOOM__DISPATCH_FLOAT(dtype, name, ...)                                   \
    ((dtype) == LOOM_F32   ? (name##_f32(__VA_ARGS__), LOOM_OK)                   \
     : (dtype) == LOOM_F64 ? (name##_f64(__VA_ARGS__), LOOM_OK)                   \
                           : LOOM_ERR_DTYPE)

#ifdef __cplusplus
}
#endif

#endif
