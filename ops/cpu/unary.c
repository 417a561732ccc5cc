/* CPU kernels of the activations and act_grad: flat loops over contiguous values of one shape. */
#include "ops/cpu/unary.h"

#include <math.h>
#include <stdio.h>

#include "ops/cpu/cpu.h"

/* The float or double libm function for x's type. */
#define EXP(x) _Generic((x), float: expf, default: exp)(x)
#define EXPM1(x) _Generic((x), float: expm1f, default: expm1)(x)

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

/* y[i] = EXPR(v = x[i], p = the op's parameter) */
#define UNARY(name, EXPR)                                                   \
    static void name##_f32(float *y, const float *x, int64_t n, double pd) \
    {                                                                       \
        const float p = (float)pd;                                          \
        (void)p;                                                            \
        for (int64_t i = 0; i < n; i++) {                                   \
            const float v = x[i];                                           \
            y[i] = (EXPR);                                                  \
        }                                                                   \
    }                                                                       \
    static void name##_f64(double *y, const double *x, int64_t n, double p) \
    {                                                                       \
        (void)p;                                                            \
        for (int64_t i = 0; i < n; i++) {                                   \
            const double v = x[i];                                          \
            y[i] = (EXPR);                                                  \
        }                                                                   \
    }                                                                       \
    loom_status loom__cpu_##name(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx) \
    {                                                                       \
        (void)ctx;                                                          \
        return LOOM__DISPATCH_FLOAT(out->dtype, name, out->data, src[0]->data, loom__numel(out), t->a.f[0]); \
    }

UNARY(relu, v > 0 ? v : 0)
UNARY(leaky_relu, v > 0 ? v : v * p)
UNARY(elu, v > 0 ? v : p * EXPM1(v))
UNARY(sigmoid, SIGMOID(v))
UNARY(tanh, TANH(v))
#undef UNARY

/* out[i] = g[i] * f'(s[i]); s is x or y as ops/unary.c says. */
#define ACT_GRAD(name, EXPR)                                                                    \
    static void name##_f32(float *out, const float *s, const float *g, int64_t n, double pd)   \
    {                                                                                           \
        const float p = (float)pd;                                                              \
        (void)p;                                                                                \
        for (int64_t i = 0; i < n; i++) {                                                       \
            const float v = s[i], gv = g[i];                                                    \
            out[i] = (EXPR);                                                                    \
        }                                                                                       \
    }                                                                                           \
    static void name##_f64(double *out, const double *s, const double *g, int64_t n, double p) \
    {                                                                                           \
        (void)p;                                                                                \
        for (int64_t i = 0; i < n; i++) {                                                       \
            const double v = s[i], gv = g[i];                                                   \
            out[i] = (EXPR);                                                                    \
        }                                                                                       \
    }

ACT_GRAD(relu_grad, v > 0 ? gv : 0)
ACT_GRAD(leaky_relu_grad, v > 0 ? gv : gv * p)
ACT_GRAD(elu_grad, v > 0 ? gv : gv * p * EXP(v))
ACT_GRAD(sigmoid_grad, gv * v * (1 - v))
ACT_GRAD(tanh_grad, gv * (1 - v * v))
#undef ACT_GRAD

loom_status loom__cpu_act_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t n = loom__numel(out);
    if (loom__numel(src[0]) != n || loom__numel(src[1]) != n) {
        if (ctx->msg)
            snprintf(ctx->msg, ctx->msglen, "operands of act_grad differ in size");
        return LOOM_ERR_SHAPE;
    }
    const void *s = src[0]->data, *g = src[1]->data;
    double p = t->a.f[0];
    switch (t->a.i[0]) {
    case LOOM_OP_RELU: return LOOM__DISPATCH_FLOAT(out->dtype, relu_grad, out->data, s, g, n, p);
    case LOOM_OP_LEAKY_RELU: return LOOM__DISPATCH_FLOAT(out->dtype, leaky_relu_grad, out->data, s, g, n, p);
    case LOOM_OP_ELU: return LOOM__DISPATCH_FLOAT(out->dtype, elu_grad, out->data, s, g, n, p);
    case LOOM_OP_SIGMOID: return LOOM__DISPATCH_FLOAT(out->dtype, sigmoid_grad, out->data, s, g, n, p);
    case LOOM_OP_TANH: return LOOM__DISPATCH_FLOAT(out->dtype, tanh_grad, out->data, s, g, n, p);
    default:
        if (ctx->msg)
            snprintf(ctx->msg, ctx->msglen, "op %lld is not an activation", (long long)t->a.i[0]);
        return LOOM_ERR_INVALID;
    }
}
