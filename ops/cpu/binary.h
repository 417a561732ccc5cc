/* CPU kernels of the binary elementwise ops (ops/binary.c), and the operand check that the whole
 * elementwise family (binary, unary, dropout) shares in its shape inference. */
#ifndef LOOM_OPS_CPU_BINARY_H
#define LOOM_OPS_CPU_BINARY_H

#include "graphs/core/op.h"

/* Every source of t (up to nfloat of them, the leading ones) must be a dense f32/f64 tensor, all of
 * one dtype. Writes "operand 2 is i32; this op takes f32 or f64" style messages. (ops/binary.c) */
loom_status loom__elem_check(const loom_tensor *t, int nfloat, char *msg, size_t len);
/* Shape inference of an elementwise op of one float source: t is shaped and typed like it. */
loom_status loom__elem_unary_infer(loom_tensor *t, char *msg, size_t len);

/* a, b broadcast (NumPy rules) to out. */
loom_status loom__cpu_add(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_sub(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_mul(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_div(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_minimum(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
loom_status loom__cpu_maximum(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (cond u8, a, b) broadcast to out: a where cond != 0, else b. */
loom_status loom__cpu_where(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* (a, b, gout) broadcast to out: gout times the share of min or max's gradient of operand a or b
 * (a.i[0], ops/binary.c). */
loom_status loom__cpu_minmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* x * a.f[0]. */
loom_status loom__cpu_scale(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* x [..., C] + b [C]. */
loom_status loom__cpu_bias_add(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
