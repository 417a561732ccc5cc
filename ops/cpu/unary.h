/* CPU kernels of the activations and their shared gradient op (ops/unary.c). */
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
/* act_grad(s, gout): gout * f'(.), activation a.i[0], its parameter a.f[0]; s is the input x for
 * relu, leaky_relu and elu and the output y for sigmoid and tanh. */
loom_status loom__cpu_act_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
