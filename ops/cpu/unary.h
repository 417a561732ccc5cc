/* CPU kernels of the elementwise functions and their shared gradient op (ops/unary.c). */
#ifndef LOOM_OPS_CPU_UNARY_H
#define LOOM_OPS_CPU_UNARY_H

#include "graphs/core/op.h"

loom_status loom__cpu_relu(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* slope a.f[0] */
loom_status loom__cpu_leaky_relu(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* alpha a.f[0] */
loom_status loom__cpu_elu(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_sigmoid(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_tanh(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_exp(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_log(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_sqrt(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_rsqrt(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_abs(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* x^p, p a.f[0] */
loom_status loom__cpu_pow_scalar(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* x within [lo a.f[0], hi a.f[1]] */
loom_status loom__cpu_clamp(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* act_grad(s, gout): gout * f'(.), function a.i[0], its parameters a.f[0 .. 1]; s is the input x
 * or the output y as ops/unary.c says. */
loom_status loom__cpu_act_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
