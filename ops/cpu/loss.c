/* CPU kernels of binary cross entropy on logits (see ops/loss.c for the formulas). */
#include "ops/cpu/loss.h"

#include <math.h>

#include "ops/cpu/cpu.h"

/* Sum over n elements of (1 - y) z + l (log1p(exp(-|z|)) + max(-z, 0)), l = 1 + (w - 1) y. */
#define BCE(T, sfx)                                                                          \
    static void bce_##sfx(T *out, const T *z, const T *y, int64_t n, double w, int64_t count) \
    {                                                                                        \
        double s = 0;                                                                        \
        for (int64_t i = 0; i < n; i++) {                                                    \
            const double zi = z[i], yi = y[i], l = 1 + (w - 1) * yi;                         \
            s += (1 - yi) * zi + l * (log1p(exp(-fabs(zi))) + (zi < 0 ? -zi : 0));           \
        }                                                                                    \
        out[0] = (T)(count ? s / (double)count : 0.0);                                       \
    }
LOOM__FLOAT_TYPES(BCE)
#undef BCE

loom_status loom__cpu_bce_logits(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const int64_t n = loom__numel(src[0]);
    return LOOM__DISPATCH_FLOAT(out->dtype, bce, out->data, src[0]->data, src[1]->data, n, t->a.f[0],
                                loom__bce_count(src[0], ctx));
}

/* ((1 - y) - l sigmoid(-z)) * g / count per element; sigmoid(-z) from exp(-|z|) on the stable side. */
#define BCE_GRAD(T, sfx)                                                                        \
    static void bce_grad_##sfx(T *gz, const T *z, const T *y, int64_t n, double w, double scale) \
    {                                                                                           \
        for (int64_t i = 0; i < n; i++) {                                                       \
            const double zi = z[i], yi = y[i], l = 1 + (w - 1) * yi, e = exp(-fabs(zi));        \
            const double sneg = zi >= 0 ? e / (1 + e) : 1 / (1 + e);                            \
            gz[i] = (T)(((1 - yi) - l * sneg) * scale);                                         \
        }                                                                                       \
    }
LOOM__FLOAT_TYPES(BCE_GRAD)
#undef BCE_GRAD

loom_status loom__cpu_bce_logits_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx)
{
    const loom__value *gout = src[2];
    const double g = gout->dtype == LOOM_F64 ? *(const double *)gout->data : *(const float *)gout->data;
    const int64_t count = loom__bce_count(src[0], ctx);
    return LOOM__DISPATCH_FLOAT(out->dtype, bce_grad, out->data, src[0]->data, src[1]->data, loom__numel(src[0]),
                                t->a.f[0], count ? g / (double)count : 0.0);
}
