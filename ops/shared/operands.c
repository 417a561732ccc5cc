/* The host-side checks and plans that every device's kernels share (ops/shared/operands.h). */
#include "ops/shared/operands.h"

#include <stdarg.h>
#include <stdio.h>

loom_status loom__kfail(const loom__kctx *ctx, loom_status s, const char *fmt, ...)
{
    if (ctx && ctx->msg && ctx->msglen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->msg, ctx->msglen, fmt, ap);
        va_end(ap);
    }
    return s;
}

/* Strides of an operand of shape (ndv, shape) aligned to the output's nd dims from the right; 0
 * when a dim neither matches nor is 1. */
static int align_strides(int ndv, const int64_t *shape, int nd, const int64_t *oshape, int64_t *s)
{
    if (ndv > nd)
        return 0;
    int64_t st = 1;
    for (int i = nd - 1; i >= 0; i--) {
        int j = i - (nd - ndv);
        if (j < 0) {
            s[i] = 0;
            continue;
        }
        if (shape[j] == oshape[i])
            s[i] = st;
        else if (shape[j] == 1)
            s[i] = 0;
        else
            return 0;
        st *= shape[j];
    }
    return 1;
}

loom_status loom__bcast_plan3(loom__bcast *p, const loom__value *out, const loom__value *a, const loom__value *b,
                              const loom__value *c, const loom__kctx *ctx)
{
    const int nd = out->ndim;
    int64_t sa[LOOM_MAX_DIMS], sb[LOOM_MAX_DIMS], sc[LOOM_MAX_DIMS] = {0};
    if (!align_strides(a->ndim, a->shape, nd, out->shape, sa) || !align_strides(b->ndim, b->shape, nd, out->shape, sb) ||
        (c && !align_strides(c->ndim, c->shape, nd, out->shape, sc)))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "operand shapes do not broadcast to the output's at run time");
    p->total = loom__numel(out);
    int k = 0;
    for (int i = 0; i < nd; i++) {
        const int64_t n = out->shape[i];
        if (n == 1)
            continue;
        if (k > 0 && p->sa[k - 1] == sa[i] * n && p->sb[k - 1] == sb[i] * n && p->sc[k - 1] == sc[i] * n) {
            p->n[k - 1] *= n;
            p->sa[k - 1] = sa[i];
            p->sb[k - 1] = sb[i];
            p->sc[k - 1] = sc[i];
        } else {
            p->n[k] = n;
            p->sa[k] = sa[i];
            p->sb[k] = sb[i];
            p->sc[k] = sc[i];
            k++;
        }
    }
    if (k == 0) { /* every dim 1, or a scalar */
        p->n[0] = 1;
        p->sa[0] = p->sb[0] = p->sc[0] = 0;
        k = 1;
    }
    p->nd = k;
    for (int i = k; i < LOOM_MAX_DIMS; i++) {
        p->n[i] = 1;
        p->sa[i] = p->sb[i] = p->sc[i] = 0;
    }
    return LOOM_OK;
}

loom_status loom__bcast_plan(loom__bcast *p, const loom__value *out, const loom__value *a, const loom__value *b,
                             const loom__kctx *ctx)
{
    return loom__bcast_plan3(p, out, a, b, NULL, ctx);
}

loom_status loom__ternary_plan(loom__bcast *p, const loom_tensor *t, const loom__value *out, loom__value *const *src,
                               const loom__kctx *ctx)
{
    const int where = t->op == LOOM_OP_WHERE;
    /* the two-source where(cond, x) reads x as both a and b (its kernels use the one) */
    const loom__value *a = src[where], *b = src[where && t->n_src == 2 ? 1 : where + 1], *c = src[where ? 0 : 2];
    if (where && c->dtype != LOOM_U8)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "where: cond is %s; it must be u8", loom_dtype_name(c->dtype));
    if (a->dtype != out->dtype || b->dtype != out->dtype || (!where && c->dtype != out->dtype))
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "%s: operands are %s and %s, the output %s", where ? "where" : "minmax_grad",
                           loom_dtype_name(a->dtype), loom_dtype_name(b->dtype), loom_dtype_name(out->dtype));
    return loom__bcast_plan3(p, out, a, b, c, ctx);
}

/* The walk of expand; LOOM_ERR_SHAPE or LOOM_ERR_DTYPE when x is not a broadcast of out. */
static loom_status expand_runs(const loom__value *out, const loom__value *x, loom__runs *w, const loom__kctx *ctx)
{
    const int lead = out->ndim - x->ndim;
    int64_t s[LOOM_MAX_DIMS] = {0}, st = 1;
    if (lead < 0)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "source has more dims than the output (internal error)");
    for (int i = x->ndim - 1; i >= 0; i--) {
        if (x->shape[i] == out->shape[lead + i])
            s[lead + i] = st;
        else if (x->shape[i] != 1)
            return loom__kfail(ctx, LOOM_ERR_SHAPE, "source dim %d has size %lld, output %lld: not a broadcast", i,
                               (long long)x->shape[i], (long long)out->shape[lead + i]);
        st *= x->shape[i];
    }
    if (out->dtype != x->dtype)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "output is %s, the operand %s", loom_dtype_name(out->dtype),
                           loom_dtype_name(x->dtype));
    *w = (loom__runs){0};
    for (int i = 0; i < out->ndim; i++)
        loom__runs_push(w, out->shape[i], s[i]);
    return LOOM_OK;
}

loom_status loom__expand_plan(loom__expand *p, const loom_tensor *t, const loom__value *out, const loom__value *x,
                              const loom__kctx *ctx)
{
    loom_status s = expand_runs(out, x, &p->w, ctx);
    if (s != LOOM_OK)
        return s;
    int64_t nx = loom__numel(x);
    p->n = loom__numel(out);
    p->scale = t->a.i[0] && nx > 0 && p->n > 0 ? (double)nx / (double)p->n : 1.0;
    return LOOM_OK;
}

loom_status loom__axis_view(const loom__value *v, int axis, int64_t *outer, int64_t *c, int64_t *inner,
                            const loom__kctx *ctx)
{
    if (axis < 0 || axis >= v->ndim)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "axis %d of a value of %d dims (internal error)", axis, v->ndim);
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= v->shape[i];
    for (int i = axis + 1; i < v->ndim; i++)
        *inner *= v->shape[i];
    *c = v->shape[axis];
    return LOOM_OK;
}

loom_status loom__argmax_operands(const loom_tensor *t, const loom__value *out, const loom__value *x, int64_t *outer,
                                  int64_t *c, int64_t *inner, const loom__kctx *ctx)
{
    loom_status s = loom__axis_view(x, (int)t->a.i[0], outer, c, inner, ctx);
    if (s != LOOM_OK)
        return s;
    if (out->dtype != LOOM_I32 || loom__numel(out) != *outer * *inner)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "argmax: the output is not i32 of x's shape without the axis");
    if (*c == 0 && *outer * *inner > 0)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "argmax along an empty axis: it has no largest element");
    return LOOM_OK;
}

loom_status loom__segment_softmax_operands(const loom_tensor *t, const loom__value *out, loom__value *const *src,
                                           int64_t *e, int64_t *f, int64_t *n, const loom__kctx *ctx)
{
    const loom__value *a = src[0], *seg = src[1], *g = t->n_src > 2 ? src[2] : NULL;
    *e = a->ndim >= 1 ? a->shape[0] : 0;
    *f = loom__row_size(a);
    *n = loom__dim_bound(t->graph, (loom_dim)t->a.i[0]);
    if (a->ndim < 1 || seg->dtype != LOOM_I32 || seg->ndim != 1 || seg->shape[0] != *e || loom__numel(out) != *e * *f ||
        out->dtype != a->dtype || (g && (loom__numel(g) != *e * *f || g->dtype != a->dtype)))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: operand and output sizes disagree", loom__op_def(t->op)->name);
    return LOOM_OK;
}

loom_status loom__one_hot_operands(const loom_tensor *t, const loom__value *out, const loom__value *idx,
                                   const loom__kctx *ctx)
{
    if (idx->dtype != LOOM_I32 || loom__numel(out) != loom__numel(idx) * t->a.i[0])
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "one_hot: idx and output sizes disagree");
    return LOOM_OK;
}

int64_t loom__row_size(const loom__value *v)
{
    int64_t f = 1;
    for (int i = 1; i < v->ndim; i++)
        f *= v->shape[i];
    return f;
}

loom_status loom__spmm_operands(const loom__value *adj, const loom__value *x, const loom__value *out, int transpose,
                                int64_t *f, int64_t *out_rows, const loom__kctx *ctx)
{
    const int64_t nrows = adj->shape[0], ncols = adj->shape[1];
    const int64_t in_rows = transpose ? nrows : ncols;
    *out_rows = transpose ? ncols : nrows;
    *f = loom__row_size(x);
    /* the executor binds dims consistently; this guards the kernels against a caller that does not */
    if (x->ndim < 1 || x->shape[0] != in_rows || out->ndim < 1 || out->shape[0] != *out_rows || loom__row_size(out) != *f)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "adj is %lld x %lld but x has %lld rows and the output %lld (transpose %d)",
                           (long long)nrows, (long long)ncols, (long long)(x->ndim ? x->shape[0] : -1),
                           (long long)(out->ndim ? out->shape[0] : -1), transpose);
    if (out->dtype != adj->dtype || x->dtype != adj->dtype)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "adj holds %s values, x is %s and the output %s",
                           loom_dtype_name(adj->dtype), loom_dtype_name(x->dtype), loom_dtype_name(out->dtype));
    return LOOM_OK;
}

loom_status loom__pool2d_plan(loom__pool2d *g, const loom_tensor *t, const loom__value *x, const loom__value *y,
                              const loom__kctx *ctx)
{
    const int64_t *a = t->a.i;
    *g = (loom__pool2d){.kh = a[0], .kw = a[1], .sh = a[2], .sw = a[3], .ph = a[4], .pw = a[5]};
    if (x->ndim != 4 || y->ndim != 4 || x->shape[0] != y->shape[0] || x->shape[1] != y->shape[1])
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "pooling needs [N, C, H, W] and [N, C, P, Q] of one N and C at run time");
    g->planes = x->shape[0] * x->shape[1];
    g->h = x->shape[2];
    g->w = x->shape[3];
    g->p = y->shape[2];
    g->q = y->shape[3];
    if (g->kh < 1 || g->kw < 1 || g->sh < 1 || g->sw < 1 || g->h + 2 * g->ph < g->kh || g->w + 2 * g->pw < g->kw ||
        g->p != (g->h + 2 * g->ph - g->kh) / g->sh + 1 || g->q != (g->w + 2 * g->pw - g->kw) / g->sw + 1)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "a pooled [%lld, %lld] from [%lld, %lld] does not fit the op's window (internal error)",
                           (long long)g->p, (long long)g->q, (long long)g->h, (long long)g->w);
    return LOOM_OK;
}

loom_status loom__bn_operands(loom__chan *v, const loom__value *x, const loom__value *stats, const loom__kctx *ctx)
{
    if (x->ndim < 2)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "batch norm needs x of 2 or more axes at run time (internal error)");
    v->n = x->shape[0];
    v->c = x->shape[1];
    v->m = 1;
    for (int i = 2; i < x->ndim; i++)
        v->m *= x->shape[i];
    if (stats->dtype != LOOM_F64 || stats->ndim != 2 || stats->shape[0] != v->c || stats->shape[1] != 3)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "batch statistics must be f64 [%lld, 3] at run time (internal error)",
                           (long long)v->c);
    return LOOM_OK;
}

/* The values per channel (axis 1) that a batch norm's statistics of x cover: the product of every
 * other axis, with the whole size of the axis x's part is split along on several devices. */
static int64_t norm_count(const loom__value *x, const loom__kctx *ctx)
{
    const int split = ctx->sig && ctx->nparts > 1 && ctx->sig->in[0].kind == LOOM_SBP_SPLIT ? ctx->sig->in[0].axis : -1;
    int64_t n = 1;
    for (int i = 0; i < x->ndim; i++)
        if (i != 1)
            n *= i == split ? ctx->whole[0] : x->shape[i];
    return n;
}

loom_status loom__bn_batch_check(const loom__value *x, const loom__kctx *ctx)
{
    const int64_t n = norm_count(x, ctx);
    if (n > 1)
        return LOOM_OK;
    return loom__kfail(ctx, LOOM_ERR_SHAPE, "a training run needs more than 1 value per channel, got %lld (x of [%lld, %lld, ...])",
                       (long long)n, (long long)x->shape[0], (long long)x->shape[1]);
}

loom_status loom__ln_rows(const loom__value *x, int axes, int64_t *rows, int64_t *f, const loom__kctx *ctx)
{
    if (axes < 1 || axes > x->ndim)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "layer norm over %d axes of a value of %d (internal error)", axes, x->ndim);
    *rows = 1;
    *f = 1;
    for (int i = 0; i < x->ndim; i++)
        *(i < x->ndim - axes ? rows : f) *= x->shape[i];
    return LOOM_OK;
}
