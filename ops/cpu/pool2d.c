/* CPU kernels of 2-D pooling and its gradients (see ops/pool.c for the meaning). The work is split
 * over the program's threads by planes (one (n, c) each); the gradients gather, each input element
 * adding the outputs whose windows cover it in row-major order, so nothing is written twice. */
#include "ops/cpu/pool2d.h"

#include <math.h>

#include "ops/cpu/cpu.h"
#include "ops/cpu/pool.h"
#include "ops/shared/operands.h"

enum pool_kind { MAX, AVG, MAX_GRAD, AVG_GRAD };

typedef struct pool_job {
    loom__pool2d g;
    enum pool_kind kind;
    loom_dtype dt;
    void *out;
    const void *x, *y, *gout; /* as each kind has them: x and y for MAX_GRAD, gout for the gradients */
} pool_job;

#define POOL(T, sfx)                                                                                               \
    /* y for planes [lo, hi): each window's first max (max) or its sum over kh kw. */                              \
    static void fwd_##sfx(const loom__pool2d *g, int max, T *y, const T *x, int64_t lo, int64_t hi)                \
    {                                                                                                              \
        const double area = (double)(g->kh * g->kw);                                                               \
        for (int64_t pl = lo; pl < hi; pl++) {                                                                     \
            const T *xp = x + pl * g->h * g->w;                                                                    \
            T *yp = y + pl * g->p * g->q;                                                                          \
            for (int64_t p = 0; p < g->p; p++) {                                                                   \
                int64_t i0, i1, j0, j1;                                                                            \
                loom__pool_window(p, g->kh, g->sh, g->ph, g->h, &i0, &i1);                                         \
                for (int64_t q = 0; q < g->q; q++) {                                                               \
                    loom__pool_window(q, g->kw, g->sw, g->pw, g->w, &j0, &j1);                                     \
                    T m = xp[i0 * g->w + j0];                                                                      \
                    double s = 0;                                                                                  \
                    for (int64_t i = i0; i < i1; i++)                                                              \
                        for (int64_t j = j0; j < j1; j++) {                                                        \
                            const T v = xp[i * g->w + j];                                                          \
                            if (!max)                                                                              \
                                s += v;                                                                            \
                            else if (v > m || (isnan(v) && !isnan(m)))                                             \
                                m = v;                                                                             \
                        }                                                                                          \
                    yp[p * g->q + q] = max ? m : (T)(s / area);                                                    \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
    }                                                                                                              \
    /* 1 when (i, j) is the first element of output (p, q)'s window that reaches m. */                           \
    static int first_reach_##sfx(const loom__pool2d *g, const T *xp, int64_t p, int64_t q, int64_t i, int64_t j,   \
                                 T m)                                                                              \
    {                                                                                                              \
        int64_t i0, i1, j0, j1;                                                                                    \
        loom__pool_window(p, g->kh, g->sh, g->ph, g->h, &i0, &i1);                                                 \
        loom__pool_window(q, g->kw, g->sw, g->pw, g->w, &j0, &j1);                                                 \
        for (int64_t a = i0; a <= i; a++)                                                                          \
            for (int64_t b = j0; b < (a == i ? j : j1); b++)                                                       \
                if (loom__pool_reaches(xp[a * g->w + b], m))                                                       \
                    return 0;                                                                                      \
        return 1;                                                                                                  \
    }                                                                                                              \
    /* gx for planes [lo, hi): each element adds gy of the outputs whose windows cover it (max: whose              \
     * first max it is), over kh kw for the average. */                                                            \
    static void grad_##sfx(const loom__pool2d *g, int max, T *gx, const T *x, const T *y, const T *gy, int64_t lo, \
                           int64_t hi)                                                                             \
    {                                                                                                              \
        const double area = max ? 1.0 : (double)(g->kh * g->kw);                                                   \
        for (int64_t pl = lo; pl < hi; pl++) {                                                                     \
            const T *xp = max ? x + pl * g->h * g->w : NULL, *yp = max ? y + pl * g->p * g->q : NULL;              \
            const T *gp = gy + pl * g->p * g->q;                                                                   \
            T *gxp = gx + pl * g->h * g->w;                                                                        \
            for (int64_t i = 0; i < g->h; i++) {                                                                   \
                int64_t p0, p1, q0, q1;                                                                            \
                loom__pool_covering(i, g->kh, g->sh, g->ph, g->p, &p0, &p1);                                       \
                for (int64_t j = 0; j < g->w; j++) {                                                               \
                    loom__pool_covering(j, g->kw, g->sw, g->pw, g->q, &q0, &q1);                                   \
                    double acc = 0;                                                                                \
                    for (int64_t p = p0; p < p1; p++)                                                              \
                        for (int64_t q = q0; q < q1; q++)                                                          \
                            if (!max || (loom__pool_reaches(xp[i * g->w + j], yp[p * g->q + q]) &&                 \
                                         first_reach_##sfx(g, xp, p, q, i, j, yp[p * g->q + q])))                   \
                                acc += gp[p * g->q + q];                                                           \
                    gxp[i * g->w + j] = (T)(acc / area);                                                           \
                }                                                                                                  \
            }                                                                                                      \
        }                                                                                                          \
    }                                                                                                              \
    static void run_##sfx(const pool_job *jb, int64_t lo, int64_t hi)                                              \
    {                                                                                                              \
        const int max = jb->kind == MAX || jb->kind == MAX_GRAD;                                                   \
        if (jb->kind == MAX || jb->kind == AVG)                                                                    \
            fwd_##sfx(&jb->g, max, jb->out, jb->x, lo, hi);                                                        \
        else                                                                                                       \
            grad_##sfx(&jb->g, max, jb->out, jb->x, jb->y, jb->gout, lo, hi);                                      \
    }
LOOM__FLOAT_TYPES(POOL)
#undef POOL

static void pool_part(void *arg, int part, int nparts)
{
    const pool_job *jb = arg;
    int64_t lo, hi;
    loom__pool_split(jb->g.planes, part, nparts, &lo, &hi);
    (void)LOOM__DISPATCH_FLOAT(jb->dt, run, jb, lo, hi);
}

/* Runs kind over x-shaped xv and y-shaped yv (t's geometry), splitting the planes. */
static loom_status pool_run(const loom_tensor *t, pool_job *jb, const loom__value *xv, const loom__value *yv,
                            const loom__kctx *ctx)
{
    loom_status s = loom__pool2d_plan(&jb->g, t, xv, yv, ctx);
    if (s != LOOM_OK)
        return s;
    if (jb->dt != LOOM_F32 && jb->dt != LOOM_F64)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "no pooling kernel for %s", loom_dtype_name(jb->dt));
    const loom__pool2d *g = &jb->g;
    /* work: every output reads its window; a max's gradient may scan a window per covering output */
    const double work = (double)g->planes * (double)(g->p * g->q + g->h * g->w) * (double)(g->kh * g->kw);
    if (g->planes > 0)
        loom__pool_run(ctx->pool, loom__pool_parts(ctx->pool, work), pool_part, jb);
    return LOOM_OK;
}

loom_status loom__cpu_max_pool2d(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    pool_job jb = {.kind = MAX, .dt = out->dtype, .out = out->data, .x = src[0]->data};
    return pool_run(t, &jb, src[0], out, ctx);
}

loom_status loom__cpu_avg_pool2d(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    pool_job jb = {.kind = AVG, .dt = out->dtype, .out = out->data, .x = src[0]->data};
    return pool_run(t, &jb, src[0], out, ctx);
}

loom_status loom__cpu_max_pool2d_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx)
{
    pool_job jb = {.kind = MAX_GRAD, .dt = out->dtype, .out = out->data, .x = src[0]->data, .y = src[1]->data,
                   .gout = src[2]->data};
    return pool_run(t, &jb, src[0], src[2], ctx);
}

loom_status loom__cpu_avg_pool2d_grad(const loom_tensor *t, loom__value *out, loom__value *const *src,
                                      const loom__kctx *ctx)
{
    pool_job jb = {.kind = AVG_GRAD, .dt = out->dtype, .out = out->data, .gout = src[0]->data};
    return pool_run(t, &jb, out, src[0], ctx);
}
