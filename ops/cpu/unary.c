/* CPU kernels of the elementwise functions of ops/unary.c and act_grad: flat loops over contiguous
 * values of one shape. Parameters are rounded to the values' type first, as on the GPU. */
#include "ops/cpu/unary.h"

#include <math.h>
#include <stdio.h>

#include "ops/cpu/cpu.h"

/* The float or double libm function for x's type. */
#define EXP(x) _Generic((x), float: expf, default: exp)(x)
#define EXPM1(x) _Generic((x), float: expm1f, default: expm1)(x)
#define LOG(x) _Generic((x), float: logf, default: log)(x)
#define SQRT(x) _Generic((x), float: sqrtf, default: sqrt)(x)
#define FABS(x) _Generic((x), float: fabsf, default: fabs)(x)
#define POW(x, y) _Generic((x), float: powf, default: pow)(x, y)

/* One exp each, of -|v| so it never overflows. sigmoid: with e = e^-|v|, 1 / (1 + e) for v >= 0
 * and e / (1 + e) below. tanh: with m = e^-2|v| - 1 (expm1: no cancellation near 0),
 * tanh |v| = -m / (2 + m), signed like v; a third of libm's tanhf time. */
#define ACT_HELPERS(T, sfx)                                      \
    static inline T sigmoid1_##sfx(T v)                          \
    {                                                            \
        const T e = EXP(v < 0 ? v : -v);                         \
        return (v >= 0 ? 1 : e) / (1 + e);                       \
    }                                                            \
    static inline T tanh1_##sfx(T v)                             \
    {                                                            \
        const T m = EXPM1(2 * (v < 0 ? v : -v));                 \
        const T a = -m / (2 + m);                                \
        return v < 0 ? -a : a;                                   \
    }
LOOM__FLOAT_TYPES(ACT_HELPERS)
#undef ACT_HELPERS
#define SIGMOID(x) _Generic((x), float: sigmoid1_f32, default: sigmoid1_f64)(x)
#define TANH(x) _Generic((x), float: tanh1_f32, default: tanh1_f64)(x)

/* y[i] = EXPR(v = x[i], p and q = the op's parameters a.f[0] and a.f[1]) */
#define UNARY_T(name, T, sfx, EXPR)                                                  \
    static void name##_##sfx(T *y, const T *x, int64_t n, double pd, double qd)     \
    {                                                                               \
        const T p = (T)pd, q = (T)qd;                                               \
        (void)p;                                                                    \
        (void)q;                                                                    \
        for (int64_t i = 0; i < n; i++) {                                           \
            const T v = x[i];                                                       \
            y[i] = (EXPR);                                                          \
        }                                                                           \
    }
#define UNARY(name, EXPR)                                                                                           \
    UNARY_T(name, float, f32, EXPR)                                                                                 \
    UNARY_T(name, double, f64, EXPR)                                                                                \
    loom_status loom__cpu_##name(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx) \
    {                                                                                                               \
        (void)ctx;                                                                                                  \
        return LOOM__DISPATCH_FLOAT(out->dtype, name, out->data, src[0]->data, loom__numel(out), t->a.f[0], t->a.f[1]); \
    }

UNARY(relu, v > 0 ? v : 0)
UNARY(leaky_relu, v > 0 ? v : v * p)
UNARY(elu, v > 0 ? v : p * EXPM1(v))
UNARY(sigmoid, SIGMOID(v))
UNARY(tanh, TANH(v))
UNARY(exp, EXP(v))
UNARY(log, LOG(v))
UNARY(sqrt, SQRT(v))
UNARY(rsqrt, 1 / SQRT(v))
UNARY(abs, FABS(v))
UNARY(pow_scalar, POW(v, p))
UNARY(clamp, v < p ? p : v > q ? q : v) /* a NaN passes through, as in PyTorch */
#undef UNARY
#undef UNARY_T

/* out[i] = g[i] * f'(s[i]); s is x or y as ops/unary.c says. */
#define ACT_GRAD_T(name, T, sfx, EXPR)                                                      \
    static void name##_##sfx(T *out, const T *s, const T *g, int64_t n, double pd, double qd) \
    {                                                                                       \
        const T p = (T)pd, q = (T)qd;                                                       \
        (void)p;                                                                            \
        (void)q;                                                                            \
        for (int64_t i = 0; i < n; i++) {                                                   \
            const T v = s[i], gv = g[i];                                                    \
            out[i] = (EXPR);                                                                \
        }                                                                                   \
    }
#define ACT_GRAD(name, EXPR) ACT_GRAD_T(name, float, f32, EXPR) ACT_GRAD_T(name, double, f64, EXPR)

ACT_GRAD(relu_grad, v > 0 ? gv : 0)
ACT_GRAD(leaky_relu_grad, v > 0 ? gv : gv * p)
ACT_GRAD(elu_grad, v > 0 ? gv : gv * p * EXP(v))
ACT_GRAD(sigmoid_grad, gv * v * (1 - v))
ACT_GRAD(tanh_grad, gv * (1 - v * v))
ACT_GRAD(exp_grad, gv * v)
ACT_GRAD(log_grad, gv / v)
ACT_GRAD(sqrt_grad, gv / (2 * v))
ACT_GRAD(rsqrt_grad, -(gv * v * v * v) / 2)
ACT_GRAD(abs_grad, v > 0 ? gv : v < 0 ? -gv : 0)
ACT_GRAD(pow_scalar_grad, p == 0 ? 0 : gv * p * POW(v, p - 1))
ACT_GRAD(clamp_grad, v >= p && v <= q ? gv : 0)
#undef ACT_GRAD
#undef ACT_GRAD_T

loom_status loom__cpu_act_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t n = loom__numel(out);
    if (loom__numel(src[0]) != n || loom__numel(src[1]) != n) {
        if (ctx->msg)
            snprintf(ctx->msg, ctx->msglen, "operands of act_grad differ in size");
        return LOOM_ERR_SHAPE;
    }
    const void *s = src[0]->data, *g = src[1]->data;
    const double p = t->a.f[0], q = t->a.f[1];
    switch (t->a.i[0]) {
#define CASE(OP, name) \
    case OP: return LOOM__DISPATCH_FLOAT(out->dtype, name##_grad, out->data, s, g, n, p, q);
        CASE(LOOM_OP_RELU, relu)
        CASE(LOOM_OP_LEAKY_RELU, leaky_relu)
        CASE(LOOM_OP_ELU, elu)
        CASE(LOOM_OP_SIGMOID, sigmoid)
        CASE(LOOM_OP_TANH, tanh)
        CASE(LOOM_OP_EXP, exp)
        CASE(LOOM_OP_LOG, log)
        CASE(LOOM_OP_SQRT, sqrt)
        CASE(LOOM_OP_RSQRT, rsqrt)
        CASE(LOOM_OP_ABS, abs)
        CASE(LOOM_OP_POW_SCALAR, pow_scalar)
        CASE(LOOM_OP_CLAMP, clamp)
#undef CASE
    default:
        if (ctx->msg)
            snprintf(ctx->msg, ctx->msglen, "op %lld is not an activation", (long long)t->a.i[0]);
        return LOOM_ERR_INVALID;
    }
}
