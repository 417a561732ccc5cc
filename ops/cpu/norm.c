/* CPU kernels of batch and layer normalisation (see ops/norm.c for the meaning). Batch norm views x
 * as [N, C, M]; a channel's sums add its values batch first, then spatial index, ascending, keeping
 * a block of channels' sums while it reads the rows of x once. Layer norm views x as rows of F
 * elements. Per-channel or per-row coefficients are computed once, in double, before the threads
 * split the elementwise passes. */
#include "ops/cpu/norm.h"

#include <stdlib.h>
#include <string.h>

#include "ops/cpu/cpu.h"
#include "ops/cpu/pool.h"
#include "ops/shared/operands.h"

enum { BLK = 64 }; /* channels (or normalised elements) whose sums one pass over the rows keeps */

enum norm_kind { BN_STATS, BN_FWD, BN_SUMS, BN_DX, LN_FWD, LN_DX, LN_ROWS, LN_SUMS };

typedef struct norm_job {
    enum norm_kind kind;
    loom_dtype dt;
    void *out;
    const void *a, *b, *c; /* the kind's operands, in its order below */
    const void *y;         /* BN_SUMS, BN_DX: a ReLU's output, gout read where y > 0 only; or NULL */
    int relu;              /* BN_FWD: relu of the result */
    const double *k;       /* per channel or per row coefficients, or the kind's output */
    double *kout;
    loom__chan v;          /* batch norm's [N, C, M]; layer norm's rows (n) of m elements */
    double eps;
    int64_t items;         /* what the threads split: channels, rows or element blocks */
} norm_job;

/* v where keep, else +0: a ReLU's mask without a branch (a random mask mispredicts one at every
 * other element), and 0 for a NaN or infinite v masked off, as the ReLU's own gradient gives. */
static inline double keep_if(double v, int keep)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    b &= -(uint64_t)(keep != 0);
    memcpy(&v, &b, sizeof v);
    return v;
}

#define KERNELS(T, sfx)                                                                                           \
    /* Channels [lo, hi) of BN_STATS (a: x; out f64 [C, 3]: the sums of x and x^2, the count) or     \
     * BN_SUMS (a: gout, b: x, k: (mean, rstd) per channel; out [C, 2]: the sums of gout, gout xhat). */         \
    static void bn_sums_##sfx(const norm_job *j, int64_t lo, int64_t hi)                                           \
    {                                                                                                             \
        const int stats = j->kind == BN_STATS;                                                                    \
        const T *gy = j->a, *x = stats ? j->a : j->b;                                                             \
        for (int64_t c0 = lo; c0 < hi; c0 += BLK) {                                                               \
            const int64_t nc = hi - c0 < BLK ? hi - c0 : BLK;                                                     \
            double s[BLK] = {0}, q[BLK] = {0};                                                                    \
            for (int64_t n = 0; n < j->v.n; n++)                                                                  \
                for (int64_t c = 0; c < nc; c++) {                                                                \
                    const int64_t off = (n * j->v.c + c0 + c) * j->v.m;                                           \
                    double a = s[c], b = q[c];                                                                    \
                    if (stats) {                                                                                  \
                        for (int64_t m = off; m < off + j->v.m; m++) {                                            \
                            const double e = x[m];                                                                \
                            a += e;                                                                               \
                            b += e * e;                                                                           \
                        }                                                                                         \
                    } else {                                                                                      \
                        const double mean = j->k[2 * (c0 + c)], rstd = j->k[2 * (c0 + c) + 1];                    \
                        const T *mk = j->y; /* loops apart, so that each is branch-free */                        \
                        if (mk)                                                                                   \
                            for (int64_t m = off; m < off + j->v.m; m++) {                                        \
                                const double g = keep_if(gy[m], mk[m] > 0);                                       \
                                a += g;                                                                           \
                                b += g * (((double)x[m] - mean) * rstd);                                          \
                            }                                                                                     \
                        else                                                                                      \
                            for (int64_t m = off; m < off + j->v.m; m++) {                                        \
                                const double g = gy[m];                                                           \
                                a += g;                                                                           \
                                b += g * (((double)x[m] - mean) * rstd);                                          \
                            }                                                                                     \
                    }                                                                                             \
                    s[c] = a, q[c] = b;                                                                           \
                }                                                                                                 \
            for (int64_t c = 0; c < nc; c++) {                                                                    \
                if (stats) {                                                                                      \
                    double *o = (double *)j->out + 3 * (c0 + c);                                                  \
                    o[0] = s[c], o[1] = q[c], o[2] = (double)(j->v.n * j->v.m);                                   \
                } else {                                                                                          \
                    T *o = (T *)j->out + 2 * (c0 + c);                                                            \
                    o[0] = (T)s[c], o[1] = (T)q[c];                                                               \
                }                                                                                                 \
            }                                                                                                     \
        }                                                                                                         \
    }                                                                                                             \
    /* Rows (n, c) [lo, hi) of BN_FWD (a: x, b: bias, c: a residual added or NULL, relu; k: (mean,          \
     * weight rstd) per channel) or BN_DX (a: gout, b: x, y; k: (mean, rstd, weight rstd, sum gout / n,           \
     * sum gout xhat / n) per channel). */                                                                        \
    static void bn_map_##sfx(const norm_job *j, int64_t lo, int64_t hi)                                            \
    {                                                                                                             \
        const T *a = j->a, *b = j->b, *res = j->c, *mk = j->y;                                                    \
        T *out = j->out;                                                                                          \
        for (int64_t r = lo; r < hi; r++) {                                                                       \
            const int64_t c = r % j->v.c, m0 = r * j->v.m, m1 = m0 + j->v.m;                                      \
            if (j->kind == BN_FWD && !res && !j->relu) {                                                          \
                const double mean = j->k[2 * c], sc = j->k[2 * c + 1], bias = b[c];                               \
                for (int64_t m = m0; m < m1; m++)                                                                 \
                    out[m] = (T)(((double)a[m] - mean) * sc + bias);                                              \
            } else if (j->kind == BN_FWD) { /* relu; the loops apart, so that each is branch-free */              \
                const double mean = j->k[2 * c], sc = j->k[2 * c + 1], bias = b[c];                               \
                if (res)                                                                                          \
                    for (int64_t m = m0; m < m1; m++) {                                                           \
                        const T v = (T)(((double)a[m] - mean) * sc + bias + (double)res[m]);                      \
                        out[m] = v > 0 ? v : (T)0; /* in T: a select that vectorises */                          \
                    }                                                                                             \
                else                                                                                              \
                    for (int64_t m = m0; m < m1; m++) {                                                           \
                        const T v = (T)(((double)a[m] - mean) * sc + bias);                                       \
                        out[m] = v > 0 ? v : (T)0;                                                                \
                    }                                                                                             \
            } else {                                                                                              \
                const double *k = j->k + 5 * c;                                                                   \
                if (mk)                                                                                           \
                    for (int64_t m = m0; m < m1; m++)                                                             \
                        out[m] = (T)(k[2] * (keep_if(a[m], mk[m] > 0) - k[3] - ((double)b[m] - k[0]) * k[1] * k[4])); \
                else                                                                                              \
                    for (int64_t m = m0; m < m1; m++)                                                             \
                        out[m] = (T)(k[2] * ((double)a[m] - k[3] - ((double)b[m] - k[0]) * k[1] * k[4]));         \
            }                                                                                                     \
        }                                                                                                         \
    }                                                                                                             \
    /* The mean and rstd of row x[0 .. f): two passes. */                                                         \
    static void ln_row_##sfx(const T *x, int64_t f, double eps, double *mean, double *rstd)                        \
    {                                                                                                             \
        double s = 0, q = 0;                                                                                      \
        for (int64_t i = 0; i < f; i++)                                                                           \
            s += x[i];                                                                                            \
        const double m = s / (double)f;                                                                           \
        for (int64_t i = 0; i < f; i++)                                                                           \
            q += ((double)x[i] - m) * ((double)x[i] - m);                                                         \
        *mean = m;                                                                                                \
        *rstd = 1 / sqrt(q / (double)f + eps);                                                                    \
    }                                                                                                             \
    /* y for rows [lo, hi): a: x, b: weight, c: bias. */                                                          \
    static void ln_fwd_##sfx(const norm_job *j, int64_t lo, int64_t hi)                                            \
    {                                                                                                             \
        const T *w = j->b, *bias = j->c;                                                                          \
        const int64_t f = j->v.m;                                                                                 \
        for (int64_t r = lo; r < hi; r++) {                                                                       \
            const T *x = (const T *)j->a + r * f;                                                                 \
            T *y = (T *)j->out + r * f;                                                                           \
            double mean, rstd;                                                                                    \
            ln_row_##sfx(x, f, j->eps, &mean, &rstd);                                                             \
            for (int64_t i = 0; i < f; i++)                                                                       \
                y[i] = (T)(((double)x[i] - mean) * rstd * (double)w[i] + (double)bias[i]);                        \
        }                                                                                                         \
    }                                                                                                             \
    /* dx for rows [lo, hi): a: gout, b: x, c: weight. */                                                         \
    static void ln_dx_##sfx(const norm_job *j, int64_t lo, int64_t hi)                                             \
    {                                                                                                             \
        const T *w = j->c;                                                                                        \
        const int64_t f = j->v.m;                                                                                 \
        for (int64_t r = lo; r < hi; r++) {                                                                       \
            const T *gy = (const T *)j->a + r * f, *x = (const T *)j->b + r * f;                                  \
            T *dx = (T *)j->out + r * f;                                                                          \
            double mean, rstd, sg = 0, sgx = 0;                                                                   \
            ln_row_##sfx(x, f, j->eps, &mean, &rstd);                                                             \
            for (int64_t i = 0; i < f; i++) {                                                                     \
                const double g = (double)gy[i] * (double)w[i];                                                    \
                sg += g;                                                                                          \
                sgx += g * (((double)x[i] - mean) * rstd);                                                        \
            }                                                                                                     \
            for (int64_t i = 0; i < f; i++) {                                                                     \
                const double g = (double)gy[i] * (double)w[i], xh = ((double)x[i] - mean) * rstd;                \
                dx[i] = (T)(rstd * (g - sg / (double)f - xh * sgx / (double)f));                                  \
            }                                                                                                     \
        }                                                                                                         \
    }                                                                                                             \
    /* kout: (mean, rstd) of rows [lo, hi) of b: x. */                                                            \
    static void ln_rows_##sfx(const norm_job *j, int64_t lo, int64_t hi)                                           \
    {                                                                                                             \
        for (int64_t r = lo; r < hi; r++)                                                                         \
            ln_row_##sfx((const T *)j->b + r * j->v.m, j->v.m, j->eps, &j->kout[2 * r], &j->kout[2 * r + 1]);     \
    }                                                                                                             \
    /* out [F, 2] for elements [lo, hi) (blocks of BLK): a: gout, b: x; k: (mean, rstd) per row. */               \
    static void ln_sums_##sfx(const norm_job *j, int64_t lo, int64_t hi)                                           \
    {                                                                                                             \
        const T *gy = j->a, *x = j->b;                                                                            \
        T *out = j->out;                                                                                          \
        const int64_t f = j->v.m;                                                                                 \
        for (int64_t e0 = lo * BLK; e0 < hi * BLK && e0 < f; e0 += BLK) {                                         \
            const int64_t ne = f - e0 < BLK ? f - e0 : BLK;                                                       \
            double s[BLK] = {0}, q[BLK] = {0};                                                                    \
            for (int64_t r = 0; r < j->v.n; r++) {                                                                \
                const double mean = j->k[2 * r], rstd = j->k[2 * r + 1];                                          \
                for (int64_t e = 0; e < ne; e++) {                                                                \
                    const double g = gy[r * f + e0 + e];                                                          \
                    s[e] += g;                                                                                    \
                    q[e] += g * (((double)x[r * f + e0 + e] - mean) * rstd);                                      \
                }                                                                                                 \
            }                                                                                                     \
            for (int64_t e = 0; e < ne; e++) {                                                                    \
                out[(e0 + e) * 2] = (T)s[e];                                                                      \
                out[(e0 + e) * 2 + 1] = (T)q[e];                                                                  \
            }                                                                                                     \
        }                                                                                                         \
    }                                                                                                             \
    static void run_##sfx(const norm_job *j, int64_t lo, int64_t hi)                                               \
    {                                                                                                             \
        static void (*const fn[])(const norm_job *, int64_t, int64_t) = {                                         \
            [BN_STATS] = bn_sums_##sfx,  [BN_FWD] = bn_map_##sfx,  [BN_SUMS] = bn_sums_##sfx,                     \
            [BN_DX] = bn_map_##sfx,      [LN_FWD] = ln_fwd_##sfx,  [LN_DX] = ln_dx_##sfx,                         \
            [LN_ROWS] = ln_rows_##sfx,   [LN_SUMS] = ln_sums_##sfx};                                              \
        fn[j->kind](j, lo, hi);                                                                                   \
    }
LOOM__FLOAT_TYPES(KERNELS)
#undef KERNELS

static void norm_part(void *arg, int part, int nparts)
{
    const norm_job *j = arg;
    int64_t lo, hi;
    loom__pool_split(j->items, part, nparts, &lo, &hi);
    (void)LOOM__DISPATCH_FLOAT(j->dt, run, j, lo, hi);
}

/* Runs j over its items on the pool; work: about the elements read. */
static loom_status norm_run(norm_job *j, double work, const loom__kctx *ctx)
{
    if (j->dt != LOOM_F32 && j->dt != LOOM_F64)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "no normalisation kernel for %s", loom_dtype_name(j->dt));
    if (j->items > 0)
        loom__pool_run(ctx->pool, loom__pool_parts(ctx->pool, work), norm_part, j);
    return LOOM_OK;
}

static double elem(const loom__value *v, int64_t i)
{
    return v->dtype == LOOM_F64 ? ((const double *)v->data)[i] : (double)((const float *)v->data)[i];
}

/* c doubles of coefficients per channel of v, or NULL with the kernel's failure in *s. */
static double *coefs(const loom__chan *v, int per, loom_status *s, const loom__kctx *ctx)
{
    double *k = malloc((size_t)(v->c * per) * sizeof *k + 1);
    *s = k ? LOOM_OK : loom__kfail(ctx, LOOM_ERR_NOMEM, "no memory for %lld channels' coefficients", (long long)v->c);
    return k;
}

/* ---- batch norm ---------------------------------------------------------------------------------- */

loom_status loom__cpu_bn_stats(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    norm_job j = {.kind = BN_STATS, .dt = src[0]->dtype, .out = out->data, .a = src[0]->data};
    loom_status s = loom__bn_operands(&j.v, src[0], out, ctx);
    if (s != LOOM_OK)
        return s;
    if (!ctx->training) { /* batch_norm reads the running statistics */
        for (int64_t i = 0; i < 3 * j.v.c; i++)
            ((double *)out->data)[i] = 0;
        return LOOM_OK;
    }
    if ((s = loom__bn_batch_check(src[0], ctx)) != LOOM_OK)
        return s;
    j.items = j.v.c;
    return norm_run(&j, (double)loom__numel(src[0]), ctx);
}

loom_status loom__cpu_batch_norm(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    norm_job j = {.kind = BN_FWD, .dt = out->dtype, .out = out->data, .a = src[0]->data, .b = src[5]->data,
                  .c = t->n_src > 6 ? src[6]->data : NULL, .relu = t->op == LOOM_OP_BN_RELU};
    loom_status s = loom__bn_operands(&j.v, src[0], src[1], ctx);
    double *k = s == LOOM_OK ? coefs(&j.v, 2, &s, ctx) : NULL;
    if (s != LOOM_OK)
        return s;
    for (int64_t c = 0; c < j.v.c; c++) {
        double mean, rstd;
        if (ctx->training) {
            loom__bn_moments((const double *)src[1]->data + 3 * c, t->a.f[0], &mean, &rstd);
        } else {
            mean = elem(src[2], c);
            rstd = 1 / sqrt(elem(src[3], c) + t->a.f[0]);
        }
        k[2 * c] = mean;
        k[2 * c + 1] = elem(src[4], c) * rstd;
    }
    j.k = k;
    j.items = j.v.n * j.v.c;
    s = norm_run(&j, 2.0 * (double)loom__numel(out), ctx);
    free(k);
    return s;
}

/* k: (mean, rstd) per channel of the batch statistics. */
static void batch_coefs(double *k, int per, const loom__chan *v, const loom__value *stats, double eps)
{
    for (int64_t c = 0; c < v->c; c++)
        loom__bn_moments((const double *)stats->data + 3 * c, eps, &k[per * c], &k[per * c + 1]);
}

loom_status loom__cpu_bn_grad_sums(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                   const loom__kctx *ctx)
{
    norm_job j = {.kind = BN_SUMS, .dt = out->dtype, .out = out->data, .a = src[0]->data, .b = src[1]->data,
                  .y = t->n_src > 3 ? src[3]->data : NULL};
    loom_status s = loom__bn_operands(&j.v, src[1], src[2], ctx);
    double *k = s == LOOM_OK ? coefs(&j.v, 2, &s, ctx) : NULL;
    if (s != LOOM_OK)
        return s;
    batch_coefs(k, 2, &j.v, src[2], t->a.f[0]);
    j.k = k;
    j.items = j.v.c;
    s = norm_run(&j, 2.0 * (double)loom__numel(src[1]), ctx);
    free(k);
    return s;
}

loom_status loom__cpu_batch_norm_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx)
{
    norm_job j = {.kind = BN_DX, .dt = out->dtype, .out = out->data, .a = src[0]->data, .b = src[1]->data,
                  .y = t->n_src > 5 ? src[5]->data : NULL};
    loom_status s = loom__bn_operands(&j.v, src[1], src[2], ctx);
    double *k = s == LOOM_OK ? coefs(&j.v, 5, &s, ctx) : NULL;
    if (s != LOOM_OK)
        return s;
    batch_coefs(k, 5, &j.v, src[2], t->a.f[0]);
    for (int64_t c = 0; c < j.v.c; c++) {
        const double n = ((const double *)src[2]->data)[3 * c + 2];
        k[5 * c + 2] = elem(src[3], c) * k[5 * c + 1];
        k[5 * c + 3] = elem(src[4], 2 * c) / n;
        k[5 * c + 4] = elem(src[4], 2 * c + 1) / n;
    }
    j.k = k;
    j.items = j.v.n * j.v.c;
    s = norm_run(&j, 3.0 * (double)loom__numel(out), ctx);
    free(k);
    return s;
}

#define RUNNING(T, sfx)                                                                                      \
    static void running_##sfx(T *r, const double *st, int64_t c, int var, double momentum)                    \
    {                                                                                                         \
        for (int64_t i = 0; i < c; i++)                                                                       \
            r[i] = (T)loom__bn_running(r[i], st + 3 * i, var, momentum);                                      \
    }
LOOM__FLOAT_TYPES(RUNNING)
#undef RUNNING

loom_status loom__cpu_running_stats_update(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                           const loom__kctx *ctx)
{
    (void)out;
    const loom__value *r = src[0], *st = src[1];
    if (r->ndim != 1 || st->dtype != LOOM_F64 || st->ndim != 2 || st->shape[0] != r->shape[0] || st->shape[1] != 3)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "running statistics of %lld channels, batch statistics of %lld (internal error)",
                           (long long)(r->ndim ? r->shape[0] : 0), (long long)(st->ndim ? st->shape[0] : 0));
    return LOOM__DISPATCH_FLOAT(r->dtype, running, r->data, st->data, r->shape[0], (int)t->a.i[0], t->a.f[0]);
}

/* ---- layer norm ---------------------------------------------------------------------------------- */

/* A layer norm job of kind over the rows of x = src[xi] (its last a.i[0] axes normalised), the
 * sources in the op's order. */
static loom_status ln_job(norm_job *j, enum norm_kind kind, const loom_tensor *t, loom__value *out,
                          loom__value *const *src, int xi, const loom__kctx *ctx)
{
    *j = (norm_job){.kind = kind, .dt = out->dtype, .out = out->data, .a = src[0]->data, .b = src[1]->data,
                    .c = t->n_src > 2 ? src[2]->data : NULL, .eps = t->a.f[0]};
    loom_status s = loom__ln_rows(src[xi], (int)t->a.i[0], &j->v.n, &j->v.m, ctx);
    j->items = j->v.m ? j->v.n : 0;
    return s;
}

loom_status loom__cpu_layer_norm(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    norm_job j;
    loom_status s = ln_job(&j, LN_FWD, t, out, src, 0, ctx);
    return s != LOOM_OK ? s : norm_run(&j, 3.0 * (double)loom__numel(out), ctx);
}

loom_status loom__cpu_layer_norm_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx)
{
    norm_job j;
    loom_status s = ln_job(&j, LN_DX, t, out, src, 1, ctx);
    return s != LOOM_OK ? s : norm_run(&j, 5.0 * (double)loom__numel(out), ctx);
}

loom_status loom__cpu_ln_grad_sums(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                   const loom__kctx *ctx)
{
    norm_job j;
    loom_status s = ln_job(&j, LN_ROWS, t, out, src, 1, ctx);
    if (s != LOOM_OK)
        return s;
    double *k = malloc((size_t)(2 * j.v.n) * sizeof *k + 1);
    if (!k)
        return loom__kfail(ctx, LOOM_ERR_NOMEM, "no memory for %lld rows' statistics", (long long)j.v.n);
    j.kout = k;
    s = norm_run(&j, 2.0 * (double)loom__numel(src[1]), ctx);
    if (s == LOOM_OK) {
        j.kind = LN_SUMS;
        j.k = k;
        j.items = (j.v.m + BLK - 1) / BLK;
        s = norm_run(&j, 2.0 * (double)loom__numel(src[1]), ctx);
    }
    free(k);
    return s;
}
