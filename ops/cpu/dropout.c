/* CPU kernels of dropout. The mask is counter-based: element i of the mask tensor t at step s
 * draws from key(seed, t, s) and counter i, so it is the same however the work is split. */
#include "ops/cpu/dropout.h"

#include <string.h>

#include "ops/cpu/cpu.h"

loom_status loom__cpu_dropout_mask(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)src; /* only its shape matters, and out has it */
    uint8_t *m = out->data;
    int64_t n = loom__numel(out);
    if (n == 0)
        return LOOM_OK;
    if (!ctx->training) {
        memset(m, 1, (size_t)n);
        return LOOM_OK;
    }
    /* Elements 2j and 2j+1 take the low and high 32 bits of draw j: half the hashing, and p is
     * honoured to 2^-32. Keyed by the element index, so any split of the tensor draws the same. */
    const uint64_t thr = (uint64_t)(t->a.f[0] * 4294967296.0);
    const uint64_t key = loom__rand64(loom__rand64(ctx->seed, (uint64_t)t->id), (uint64_t)ctx->step);
    for (int64_t i = 0; i < n; i += 2) {
        uint64_t r = loom__rand64(key, (uint64_t)i >> 1);
        m[i] = (r & 0xffffffffu) >= thr;
        if (i + 1 < n)
            m[i + 1] = (r >> 32) >= thr;
    }
    return LOOM_OK;
}

#define DROPOUT(T, sfx)                                                                 \
    static void dropout_##sfx(T *y, const T *x, const uint8_t *m, int64_t n, double p) \
    {                                                                                   \
        const T keep = (T)(1 / (1 - p));                                                \
        for (int64_t i = 0; i < n; i++) /* branch-free: the mask is random */          \
            y[i] = x[i] * ((T)m[i] * keep);                                             \
    }
LOOM__FLOAT_TYPES(DROPOUT)
#undef DROPOUT

loom_status loom__cpu_dropout(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t n = loom__numel(out);
    if (!ctx->training) {
        if (n)
            memcpy(out->data, src[0]->data, (size_t)n * loom_dtype_size(out->dtype));
        return LOOM_OK;
    }
    return LOOM__DISPATCH_FLOAT(out->dtype, dropout, out->data, src[0]->data, src[1]->data, n, t->a.f[0]);
}
