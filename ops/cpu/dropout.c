/* CPU kernels of dropout. The mask is counter-based: element i of the mask tensor t at step s
 * draws from key(seed, t, s) and counter i, so it is the same however the work is split. */
#include "ops/cpu/dropout.h"

#include <string.h>

#include "ops/cpu/cpu.h"
#include "ops/cpu/pool.h"

typedef struct mask_job {
    uint8_t *m;
    int64_t n, base; /* m holds elements [base, base + n) of the whole mask */
    uint64_t key, thr;
} mask_job;

/* Elements 2j and 2j+1 take the low and high 32 bits of draw j: half the hashing, and p is
 * honoured to 2^-32. Keyed by the element's index in the whole tensor, so any split of it draws
 * the same: a part of the pool, or a device's part of a row-split mask (base), whose first
 * element may be the high half of a draw. */
static void mask_part(void *arg, int part, int nparts)
{
    const mask_job *jb = arg;
    uint8_t *restrict m = jb->m - jb->base; /* indexed by the whole tensor's element */
    const uint64_t key = jb->key, thr = jb->thr;
    int64_t lo, hi;
    loom__pool_split(jb->n, part, nparts, &lo, &hi);
    int64_t g = jb->base + lo;
    const int64_t end = jb->base + hi;
    if (g < end && (g & 1)) {
        m[g] = (loom__rand64(key, (uint64_t)g >> 1) >> 32) >= thr;
        g++;
    }
    for (; g + 1 < end; g += 2) {
        uint64_t r = loom__rand64(key, (uint64_t)g >> 1);
        m[g] = (r & 0xffffffffu) >= thr;
        m[g + 1] = (r >> 32) >= thr;
    }
    if (g < end) /* the low half of the last draw */
        m[g] = (loom__rand64(key, (uint64_t)g >> 1) & 0xffffffffu) >= thr;
}

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
    mask_job jb = {.m = m, .n = n, .base = loom__mask_base(out, ctx), .thr = (uint64_t)(t->a.f[0] * 4294967296.0),
                   .key = loom__rand64(loom__rand64(ctx->seed, (uint64_t)t->id), (uint64_t)ctx->step)};
    /* work: a draw costs about as much as streaming 8 bytes */
    loom__pool_run(ctx->pool, loom__pool_parts(ctx->pool, (double)n * 4), mask_part, &jb);
    return LOOM_OK;
}

#define DROPOUT(T, sfx)                                                                                    \
    static void dropout_##sfx(T *restrict y, const T *restrict x, const uint8_t *restrict m, int64_t lo,  \
                              int64_t hi, double p)                                                        \
    {                                                                                                      \
        const T keep = (T)(1 / (1 - p));                                                                   \
        for (int64_t i = lo; i < hi; i++) /* branch-free: the mask is random */                           \
            y[i] = x[i] * ((T)m[i] * keep);                                                                \
    }
LOOM__FLOAT_TYPES(DROPOUT)
#undef DROPOUT

typedef struct dropout_job {
    loom__value *out;
    const loom__value *x, *m;
    int64_t n;
    double p;
} dropout_job;

static void dropout_part(void *arg, int part, int nparts)
{
    const dropout_job *jb = arg;
    int64_t lo, hi;
    loom__pool_split(jb->n, part, nparts, &lo, &hi);
    (void)LOOM__DISPATCH_FLOAT(jb->out->dtype, dropout, jb->out->data, jb->x->data, jb->m->data, lo, hi, jb->p);
}

loom_status loom__cpu_dropout(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    int64_t n = loom__numel(out);
    if (!ctx->training) {
        if (n)
            memcpy(out->data, src[0]->data, (size_t)n * loom_dtype_size(out->dtype));
        return LOOM_OK;
    }
    if (out->dtype != LOOM_F32 && out->dtype != LOOM_F64)
        return LOOM_ERR_DTYPE;
    dropout_job jb = {.out = out, .x = src[0], .m = src[1], .n = n, .p = t->a.f[0]};
    const double es = (double)loom_dtype_size(out->dtype);
    loom__pool_run(ctx->pool, loom__pool_parts(ctx->pool, (double)n * (2 * es + 1)), dropout_part, &jb);
    return LOOM_OK;
}
