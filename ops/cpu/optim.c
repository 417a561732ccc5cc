/* CPU kernels of SGD and Adam: PyTorch's update rules (torch.optim.SGD, Adam, AdamW; single
 * tensor, no amsgrad, no maximize), elementwise over the parameter. */
#include "ops/cpu/optim.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

#include "ops/cpu/cpu.h"
#include "ops/optim.h"

/* d = g + wd p; with momentum, buf = d on the first step and momentum buf + (1 - dampening) d
 * after, and d = nesterov ? d + momentum buf : buf; then p -= lr d. PyTorch starts the buffer at
 * the first step's gradient; ours is a zeroed state tensor, so the first step is told by
 * ctx->step == 0 (every trained parameter is updated at every step). */
#define SGD(T, sfx)                                                                                   \
    static void sgd_##sfx(T *restrict p, const T *restrict g, T *restrict buf, int64_t n,              \
                          const loom__attrs *a, int64_t step)                                         \
    {                                                                                                 \
        const int first = step == 0;                                                                  \
        const T lr = (T)loom__lr_at(a, step), mom = (T)a->f[1], damp = (T)(1 - a->f[2]), wd = (T)a->f[3]; \
        const int nesterov = a->i[0] != 0, use_mom = a->f[1] != 0;                                    \
        for (int64_t i = 0; i < n; i++) {                                                             \
            T d = g[i];                                                                               \
            if (wd != 0)                                                                              \
                d += wd * p[i];                                                                       \
            if (use_mom) {                                                                            \
                const T b = first ? d : mom * buf[i] + damp * d;                                      \
                buf[i] = b;                                                                           \
                d = nesterov ? d + mom * b : b;                                                       \
            }                                                                                         \
            p[i] -= lr * d;                                                                           \
        }                                                                                             \
    }
LOOM__FLOAT_TYPES(SGD)
#undef SGD

/* With t = step + 1: g += wd p (Adam) or p *= 1 - lr wd (AdamW); m += (1 - beta1) (g - m) (PyTorch's
 * lerp); v = beta2 v + (1 - beta2) g^2; p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t)
 * + eps). The bias corrections are computed once, in double. */
#define ADAM(T, sfx)                                                                                  \
    static void adam_##sfx(T *restrict p, const T *restrict g, T *restrict m, T *restrict v, int64_t n, \
                           const loom__attrs *a, int64_t step)                                        \
    {                                                                                                 \
        const double t = (double)(step + 1);                                                          \
        const T b1 = (T)a->f[1], b2 = (T)a->f[2], eps = (T)a->f[3], wd = (T)a->f[4];                  \
        const double lr = loom__lr_at(a, step);                                                       \
        const T step_size = (T)(lr / (1 - pow(a->f[1], t)));                                          \
        const T bc2_sqrt = (T)sqrt(1 - pow(a->f[2], t));                                              \
        const T decay = (T)(1 - lr * a->f[4]);                                                        \
        const int decoupled = a->i[0] != 0;                                                           \
        for (int64_t i = 0; i < n; i++) {                                                             \
            T gi = g[i];                                                                              \
            if (decoupled)                                                                            \
                p[i] *= decay;                                                                        \
            else if (wd != 0)                                                                         \
                gi += wd * p[i];                                                                      \
            m[i] += (1 - b1) * (gi - m[i]);                                                           \
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;                                                    \
            const T denom = (T)sqrt(v[i]) / bc2_sqrt + eps;                                           \
            p[i] -= step_size * (m[i] / denom);                                                       \
        }                                                                                             \
    }
LOOM__FLOAT_TYPES(ADAM)
#undef ADAM

/* Every source is p's size: the graph guarantees it; this keeps a mismatch from writing past. */
static loom_status same_size(loom__value *const *src, int n, const loom__kctx *ctx)
{
    for (int k = 1; k < n; k++)
        if (loom__numel(src[k]) != loom__numel(src[0]) || src[k]->dtype != src[0]->dtype) {
            if (ctx->msg)
                snprintf(ctx->msg, ctx->msglen, "source %d has %" PRId64 " %s elements, the parameter %" PRId64 " %s",
                         k + 1, loom__numel(src[k]), loom_dtype_name(src[k]->dtype), loom__numel(src[0]),
                         loom_dtype_name(src[0]->dtype));
            return LOOM_ERR_SHAPE;
        }
    return LOOM_OK;
}

loom_status loom__cpu_sgd_update(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)out;
    loom_status s = same_size(src, 3, ctx);
    if (s != LOOM_OK)
        return s;
    return LOOM__DISPATCH_FLOAT(src[0]->dtype, sgd, src[0]->data, src[1]->data, src[2]->data, loom__numel(src[0]), &t->a,
                                ctx->step);
}

loom_status loom__cpu_adam_update(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)out;
    loom_status s = same_size(src, 4, ctx);
    if (s != LOOM_OK)
        return s;
    return LOOM__DISPATCH_FLOAT(src[0]->dtype, adam, src[0]->data, src[1]->data, src[2]->data, src[3]->data,
                                loom__numel(src[0]), &t->a, ctx->step);
}
