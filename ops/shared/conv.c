/* The geometry of a 2-D convolution (ops/shared/conv.h). */
#include "ops/shared/conv.h"

#include <stdio.h>

void loom__conv_set_attrs(loom__conv *cv, const loom__attrs *a)
{
    for (int i = 0; i < 2; i++) {
        cv->stride[i] = a->i[LOOM__CONV_STRIDE + i];
        cv->pad[i] = a->i[LOOM__CONV_PAD + i];
        cv->dil[i] = a->i[LOOM__CONV_DIL + i];
    }
    cv->groups = a->i[LOOM__CONV_GROUPS];
}

static const char *pair_str(const int64_t *v, char *buf, size_t len)
{
    if (v[0] == v[1])
        snprintf(buf, len, "%lld", (long long)v[0]);
    else
        snprintf(buf, len, "%lldx%lld", (long long)v[0], (long long)v[1]);
    return buf;
}

loom_status loom__conv_check(loom__conv *cv, char *msg, size_t len)
{
    if (cv->groups < 1)
        return snprintf(msg, len, "groups is %lld; expected 1 or more", (long long)cv->groups), LOOM_ERR_INVALID;
    if (cv->stride[0] < 1 || cv->stride[1] < 1)
        return snprintf(msg, len, "stride %lldx%lld: strides must be 1 or more", (long long)cv->stride[0],
                        (long long)cv->stride[1]),
               LOOM_ERR_INVALID;
    if (cv->dil[0] < 1 || cv->dil[1] < 1)
        return snprintf(msg, len, "dilation %lldx%lld: dilations must be 1 or more", (long long)cv->dil[0],
                        (long long)cv->dil[1]),
               LOOM_ERR_INVALID;
    if (cv->pad[0] < 0 || cv->pad[1] < 0)
        return snprintf(msg, len, "padding %lldx%lld: padding must be 0 or more", (long long)cv->pad[0],
                        (long long)cv->pad[1]),
               LOOM_ERR_INVALID;
    if (cv->c % cv->groups)
        return snprintf(msg, len, "x has %lld channels, which %lld groups do not divide", (long long)cv->c,
                        (long long)cv->groups),
               LOOM_ERR_SHAPE;
    if (cv->k % cv->groups)
        return snprintf(msg, len, "w has %lld output channels, which %lld groups do not divide", (long long)cv->k,
                        (long long)cv->groups),
               LOOM_ERR_SHAPE;
    if (cv->cg != cv->c / cv->groups)
        return snprintf(msg, len, "w takes %lld input channels per group, but x has %lld channels in %lld group%s (%lld per group)",
                        (long long)cv->cg, (long long)cv->c, (long long)cv->groups, cv->groups > 1 ? "s" : "",
                        (long long)(cv->c / cv->groups)),
               LOOM_ERR_SHAPE;
    if (cv->r < 1 || cv->s < 1)
        return snprintf(msg, len, "the kernel is %lldx%lld; it must be at least 1x1", (long long)cv->r, (long long)cv->s),
               LOOM_ERR_SHAPE;
    const int64_t in[2] = {cv->h, cv->w}, ker[2] = {cv->r, cv->s};
    int64_t padded[2], extent[2], out[2];
    char b1[48], b2[48];
    for (int i = 0; i < 2; i++) {
        int64_t two_pad, span;
        if (loom__mul_size(cv->pad[i], 2, &two_pad) || loom__add_size(in[i], two_pad, &padded[i]) ||
            loom__mul_size(cv->dil[i], ker[i] - 1, &span) || loom__add_size(span, 1, &extent[i]))
            return snprintf(msg, len, "padding %s and dilation %s overflow the sizes of a %lldx%lld input and a %lldx%lld kernel",
                            pair_str(cv->pad, b1, sizeof b1), pair_str(cv->dil, b2, sizeof b2), (long long)cv->h,
                            (long long)cv->w, (long long)cv->r, (long long)cv->s),
                   LOOM_ERR_INVALID;
    }
    if (extent[0] > padded[0] || extent[1] > padded[1])
        return snprintf(msg, len, "kernel %lldx%lld (dilation %s) is larger than the padded input %lldx%lld", (long long)cv->r,
                        (long long)cv->s, pair_str(cv->dil, b1, sizeof b1), (long long)padded[0], (long long)padded[1]),
               LOOM_ERR_SHAPE;
    for (int i = 0; i < 2; i++)
        out[i] = (padded[i] - extent[i]) / cv->stride[i] + 1;
    cv->p = out[0];
    cv->q = out[1];
    cv->kg = cv->k / cv->groups;
    return LOOM_OK;
}

int64_t loom__conv_cols(const loom__conv *cv)
{
    int64_t n = cv->cg;
    const int64_t f[4] = {cv->r, cv->s, cv->p, cv->q};
    for (int i = 0; i < 4; i++)
        if (loom__mul_size(n, f[i], &n))
            return -1;
    return n;
}

loom__conv_work loom__conv_work_of(const loom__conv *cv, loom_op op)
{
    const int no_pixels = cv->h == 0 || cv->w == 0;
    switch (op) {
    case LOOM_OP_CONV2D:
        return cv->n == 0 || cv->k == 0 ? LOOM__CONV_EMPTY : cv->cg == 0 || no_pixels ? LOOM__CONV_ZERO : LOOM__CONV_RUN;
    case LOOM_OP_CONV2D_GRAD_INPUT:
        return cv->n == 0 || cv->cg == 0 || no_pixels ? LOOM__CONV_EMPTY : cv->kg == 0 ? LOOM__CONV_ZERO : LOOM__CONV_RUN;
    default:
        return cv->k == 0 || cv->cg == 0 ? LOOM__CONV_EMPTY : cv->n == 0 || no_pixels ? LOOM__CONV_ZERO : LOOM__CONV_RUN;
    }
}

static const char *value_str(const loom__value *v, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < v->ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? ", " : "", (long long)v->shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, "]");
    return buf;
}

/* 1 when v is [d0, d1, d2, d3]. */
static int is_4d(const loom__value *v, int64_t d0, int64_t d1, int64_t d2, int64_t d3)
{
    return v->ndim == 4 && v->shape[0] == d0 && v->shape[1] == d1 && v->shape[2] == d2 && v->shape[3] == d3;
}

loom_status loom__conv_operands(loom__conv *cv, const loom_tensor *t, const loom__value *out, loom__value *const *src,
                                const loom__kctx *ctx)
{
    const char *op = loom__op_def(t->op)->name;
    /* the values that give x's, w's and y's sizes: sources or the output, by op */
    const loom__value *x = src[0], *w = src[1], *y = out, *b = NULL;
    if (t->op == LOOM_OP_CONV2D) {
        b = t->n_src > 2 ? src[2] : NULL;
    } else if (t->op == LOOM_OP_CONV2D_GRAD_INPUT) {
        y = src[0];
        x = out;
    } else if (t->op == LOOM_OP_CONV2D_GRAD_WEIGHT) {
        y = src[1];
        w = out;
    } else {
        return loom__kfail(ctx, LOOM_ERR_INVALID, "%s is not a convolution (internal error)", op);
    }
    char bx[96], bw[96], by[96], why[256];
    if (!loom_dtype_is_float(out->dtype) || x->dtype != out->dtype || w->dtype != out->dtype || y->dtype != out->dtype ||
        (b && b->dtype != out->dtype))
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "%s: x is %s, w %s and y %s%s%s; expected one float dtype", op,
                           loom_dtype_name(x->dtype), loom_dtype_name(w->dtype), loom_dtype_name(y->dtype),
                           b ? ", b " : "", b ? loom_dtype_name(b->dtype) : "");
    if (x->ndim != 4 || w->ndim != 4 || y->ndim != 4)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: x %s, w %s and y %s must be 4-D", op, value_str(x, bx, sizeof bx),
                           value_str(w, bw, sizeof bw), value_str(y, by, sizeof by));
    *cv = (loom__conv){.n = x->shape[0], .c = x->shape[1], .h = x->shape[2], .w = x->shape[3],
                       .k = w->shape[0], .cg = w->shape[1], .r = w->shape[2], .s = w->shape[3]};
    loom__conv_set_attrs(cv, &t->a);
    if (loom__conv_check(cv, why, sizeof why) != LOOM_OK)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: x %s and w %s: %s", op, value_str(x, bx, sizeof bx),
                           value_str(w, bw, sizeof bw), why);
    if (!is_4d(y, cv->n, cv->k, cv->p, cv->q) || (b && !(b->ndim == 1 && b->shape[0] == cv->k)))
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: x %s and w %s make [%lld, %lld, %lld, %lld], but y is %s%s", op,
                           value_str(x, bx, sizeof bx), value_str(w, bw, sizeof bw), (long long)cv->n, (long long)cv->k,
                           (long long)cv->p, (long long)cv->q, value_str(y, by, sizeof by),
                           b && !(b->ndim == 1 && b->shape[0] == cv->k) ? " (or b is not [K])" : "");
    return LOOM_OK;
}
