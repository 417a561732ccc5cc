/* The cases of test_sbp_sig (see sbp_sig_cases.h): each builds its sources' data, seeded, and
 * names the case by its op, shapes and attributes. */
#include "sbp_sig_cases.h"

#include "ops/cpu/index.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static uint64_t next_seed(void)
{
    static uint64_t s = 1000;
    return s++;
}

static op_case *new_case(op_case *cs, int *nc, loom_op op, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static op_case *new_case(op_case *cs, int *nc, loom_op op, const char *fmt, ...)
{
    ck_assert_int_lt(*nc, MAX_CASES);
    op_case *c = &cs[(*nc)++];
    *c = (op_case){.op = op};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->label, sizeof c->label, fmt, ap);
    va_end(ap);
    return c;
}

static src_spec *add_dense(op_case *c, loom_dtype dt, int ndim, const int64_t *shape)
{
    ck_assert_int_lt(c->n_src, LOOM__MAX_SRC);
    src_spec *s = &c->src[c->n_src++];
    ck_assert_int_eq(loom_array_alloc(&s->v.a, dt, ndim, shape), LOOM_OK);
    return s;
}

/* f64 N(0, 1). */
static src_spec *add_f64(op_case *c, int ndim, const int64_t *shape)
{
    src_spec *s = add_dense(c, LOOM_F64, ndim, shape);
    lt_fill_normal(s->v.a.data, loom_array_numel(&s->v.a), next_seed());
    return s;
}

/* f64 in [0.5, ...): denominators, degrees. */
static src_spec *add_pos(op_case *c, int ndim, const int64_t *shape)
{
    src_spec *s = add_f64(c, ndim, shape);
    double *x = s->v.a.data;
    for (int64_t i = 0; i < loom_array_numel(&s->v.a); i++)
        x[i] = 0.5 + fabs(x[i]);
    return s;
}

/* i32 [e] in [0, hi). */
static src_spec *add_idx(op_case *c, int64_t e, int32_t hi)
{
    src_spec *s = add_dense(c, LOOM_I32, 1, (int64_t[]){e});
    lt_fill_int(s->v.a.data, e, hi, next_seed());
    return s;
}

/* u8 0/1, about 70% ones, the first one set (a loss mask must count a row). */
static src_spec *add_mask(op_case *c, int ndim, const int64_t *shape)
{
    src_spec *s = add_dense(c, LOOM_U8, ndim, shape);
    int64_t n = loom_array_numel(&s->v.a);
    int32_t *r = malloc((size_t)n * sizeof *r + 1);
    ck_assert_ptr_nonnull(r);
    lt_fill_int(r, n, 10, next_seed());
    uint8_t *m = s->v.a.data;
    for (int64_t i = 0; i < n; i++)
        m[i] = i == 0 || r[i] < 7;
    free(r);
    return s;
}

/* A CSR [nrows, ncols] with positive f64 values, about 40% dense (a row may be empty). */
static src_spec *add_csr(op_case *c, int64_t nrows, int64_t ncols)
{
    ck_assert_int_lt(c->n_src, LOOM__MAX_SRC);
    src_spec *s = &c->src[c->n_src++];
    int32_t *r = malloc((size_t)(nrows * ncols) * sizeof *r + 1);
    ck_assert_ptr_nonnull(r);
    lt_fill_int(r, nrows * ncols, 10, next_seed());
    loom_csr *m = &s->v.m;
    *m = (loom_csr){.nrows = nrows, .ncols = ncols, .vdtype = LOOM_F64};
    m->rowptr = malloc((size_t)(nrows + 1) * sizeof *m->rowptr);
    m->col = malloc((size_t)(nrows * ncols) * sizeof *m->col + 1);
    double *v = malloc((size_t)(nrows * ncols) * sizeof *v + 1);
    ck_assert(m->rowptr && m->col && v);
    m->val = v;
    m->rowptr[0] = 0;
    for (int64_t i = 0; i < nrows; i++) {
        for (int64_t j = 0; j < ncols; j++)
            if (r[i * ncols + j] < 4) {
                m->col[m->nnz] = (int32_t)j;
                v[m->nnz++] = 0.5 + 0.1 * (double)r[i * ncols + j] + 0.01 * (double)(i + j);
            }
        m->rowptr[i + 1] = (int32_t)m->nnz;
    }
    free(r);
    s->v.csr = 1;
    return s;
}

/* y [n, f] = segment mean or max of x [e, f] by idx (0 for empty segments): scatter_grad's out. */
static src_spec *add_segment_result(op_case *c, const src_spec *x, const src_spec *idx, int64_t n, int mode)
{
    int64_t e = x->v.a.shape[0], f = loom_array_numel(&x->v.a) / e, shape[LOOM_MAX_DIMS];
    memcpy(shape, x->v.a.shape, sizeof shape);
    shape[0] = n;
    src_spec *s = add_dense(c, LOOM_F64, x->v.a.ndim, shape);
    const double *xv = x->v.a.data;
    const int32_t *iv = idx->v.a.data;
    double *y = s->v.a.data;
    for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < f; j++) {
            double acc = mode == LOOM__SCATTER_MAX ? -INFINITY : 0;
            int64_t cnt = 0;
            for (int64_t i = 0; i < e; i++)
                if (iv[i] == r) {
                    acc = mode == LOOM__SCATTER_MAX ? fmax(acc, xv[i * f + j]) : acc + xv[i * f + j];
                    cnt++;
                }
            y[r * f + j] = cnt == 0 ? 0 : mode == LOOM__SCATTER_MEAN ? acc / (double)cnt : acc;
        }
    return s;
}

/* A convolution's sizes and attributes: x [n, c, h, w] * w [k, c / groups, r, s] (+ b [k]). */
typedef struct conv_geom {
    const char *label;
    int64_t n, c, h, w, k, r, s;
    int64_t stride[2], pad[2], dil[2], groups;
    uint32_t dyn; /* the batch is the case's dynamic dim N */
    int bias; /* conv2d's case has b */
} conv_geom;

static const conv_geom conv_geoms[] = {
    {"[5, 7, 4, 4] * [5, 7, 3, 3], pad 1", 5, 7, 4, 4, 5, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1, 0, 1},
    {"[N, 7, 5, 4] * [5, 7, 2, 3], stride 2x1, pad 0x1, dilation 1x2", 7, 7, 5, 4, 5, 2, 3, {2, 1}, {0, 1}, {1, 2}, 1, 1, 0},
    {"[7, 6, 4, 4] * [4, 3, 3, 3], pad 1, groups 2", 7, 6, 4, 4, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2, 0, 1},
};

/* The case of op (conv2d: x, w[, b]; conv2d_grad_input: dy, w; conv2d_grad_weight: x, dy) on g. */
static void add_conv_case(op_case *cs, int *nc, loom_op op, const conv_geom *g)
{
    const int bias = op == LOOM_OP_CONV2D && g->bias;
    op_case *c = new_case(cs, nc, op, "%s %s%s", loom__op_def(op)->name, g->label, bias ? " + b" : "");
    const int64_t p = (g->h + 2 * g->pad[0] - g->dil[0] * (g->r - 1) - 1) / g->stride[0] + 1;
    const int64_t q = (g->w + 2 * g->pad[1] - g->dil[1] * (g->s - 1) - 1) / g->stride[1] + 1;
    for (int i = 0; i < 2; i++) {
        c->a.i[i] = g->stride[i];
        c->a.i[2 + i] = g->pad[i];
        c->a.i[4 + i] = g->dil[i];
    }
    c->a.i[6] = g->groups;
    if (op != LOOM_OP_CONV2D_GRAD_INPUT)
        add_f64(c, DIMS(g->n, g->c, g->h, g->w))->dyn = g->dyn;
    if (op == LOOM_OP_CONV2D_GRAD_INPUT)
        add_f64(c, DIMS(g->n, g->k, p, q))->dyn = g->dyn;
    if (op != LOOM_OP_CONV2D_GRAD_WEIGHT)
        add_f64(c, DIMS(g->k, g->c / g->groups, g->r, g->s));
    if (bias)
        add_f64(c, DIMS(g->k));
    if (op == LOOM_OP_CONV2D_GRAD_WEIGHT)
        add_f64(c, DIMS(g->n, g->k, p, q))->dyn = g->dyn;
    /* the spatial dims the gradient ops make */
    if (op == LOOM_OP_CONV2D_GRAD_INPUT)
        c->a.shape = (loom_shape){.ndim = 2, .d = {g->h, g->w}};
    if (op == LOOM_OP_CONV2D_GRAD_WEIGHT)
        c->a.shape = (loom_shape){.ndim = 2, .d = {g->r, g->s}};
}

/* The max pool of x [N, C, H, W] by a window of a (kh, kw, sh, sw, ph, pw): max_pool2d_grad's y. */
static src_spec *add_max_pool(op_case *c, const src_spec *x, const int64_t *a)
{
    const int64_t *d = x->v.a.shape, p = (d[2] + 2 * a[4] - a[0]) / a[2] + 1, q = (d[3] + 2 * a[5] - a[1]) / a[3] + 1;
    src_spec *s = add_dense(c, LOOM_F64, 4, (int64_t[]){d[0], d[1], p, q});
    const double *xv = x->v.a.data;
    double *y = s->v.a.data;
    for (int64_t pl = 0; pl < d[0] * d[1]; pl++)
        for (int64_t i = 0; i < p; i++)
            for (int64_t j = 0; j < q; j++) {
                double m = -INFINITY;
                for (int64_t u = i * a[2] - a[4]; u < i * a[2] - a[4] + a[0]; u++)
                    for (int64_t v = j * a[3] - a[5]; v < j * a[3] - a[5] + a[1]; v++)
                        if (u >= 0 && u < d[2] && v >= 0 && v < d[3])
                            m = fmax(m, xv[(pl * d[2] + u) * d[3] + v]);
                y[(pl * p + i) * q + j] = m;
            }
    return s;
}

/* Batch norm's statistics of x [N, C, ...]: f64 [C, 3], the sums of x and x^2 and the count. */
static src_spec *add_bn_stats(op_case *c, const src_spec *x)
{
    const int64_t n = x->v.a.shape[0], ch = x->v.a.shape[1], m = loom_array_numel(&x->v.a) / (n * ch);
    src_spec *s = add_dense(c, LOOM_F64, 2, (int64_t[]){ch, 3});
    const double *xv = x->v.a.data;
    double *st = s->v.a.data;
    for (int64_t k = 0; k < ch; k++) {
        st[3 * k] = st[3 * k + 1] = 0;
        st[3 * k + 2] = (double)(n * m);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < m; j++) {
                const double v = xv[(i * ch + k) * m + j];
                st[3 * k] += v;
                st[3 * k + 1] += v * v;
            }
    }
    return s;
}

/* 1 for the functions of ops/unary.c that take positive operands here (a log, roots, a fractional
 * power). */
static int positive_domain(loom_op op)
{
    return op == LOOM_OP_LOG || op == LOOM_OP_SQRT || op == LOOM_OP_RSQRT || op == LOOM_OP_POW_SCALAR;
}

/* The parameters of a function of ops/unary.c in its cases. */
static void act_params(loom_op op, loom__attrs *a)
{
    a->f[0] = op == LOOM_OP_LEAKY_RELU ? 0.1 : op == LOOM_OP_ELU ? 1.0 : op == LOOM_OP_POW_SCALAR ? 1.5
              : op == LOOM_OP_CLAMP    ? -0.5
                                       : 0;
    a->f[1] = op == LOOM_OP_CLAMP ? 0.7 : 0;
}

int make_cases(loom_op op, op_case *cs)
{
    int nc = 0;
    op_case *c;
    switch (op) {
    case LOOM_OP_INPUT:
    case LOOM_OP_PARAM:
    case LOOM_OP_STATE:
    case LOOM_OP_SGD_UPDATE:
    case LOOM_OP_ADAM_UPDATE:
    case LOOM_OP_RUNNING_STATS_UPDATE:
    case LOOM_OP_MOVE:
        break; /* leaves, in-place updates and moves (any SBP; tests/test_parts.c): no signatures */
    case LOOM_OP_FILL:
        c = new_case(cs, &nc, op, "fill [5, 7]");
        add_f64(c, DIMS(5, 7));
        c->a.f[0] = 2.5;
        break;
    case LOOM_OP_MATMUL:
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                c = new_case(cs, &nc, op, "matmul [5, 7] x [7, 4], trans_a %d, trans_b %d", ta, tb);
                add_f64(c, 2, ta ? (int64_t[]){7, 5} : (int64_t[]){5, 7});
                add_f64(c, 2, tb ? (int64_t[]){4, 7} : (int64_t[]){7, 4});
                c->a.i[0] = ta;
                c->a.i[1] = tb;
            }
        /* A [N, 7] B^T with B [N, 7]: the output [N, N] may not split its axis 1. */
        c = new_case(cs, &nc, op, "matmul [N, 7] x [N, 7]^T");
        add_f64(c, DIMS(7, 7))->dyn = 1;
        add_f64(c, DIMS(7, 7))->dyn = 1;
        c->a.i[1] = 1;
        /* X^T G over the batch: the weight gradient of data parallelism, (S(0), S(0)) -> P. */
        c = new_case(cs, &nc, op, "matmul [N, 5]^T x [N, 4]");
        add_f64(c, DIMS(7, 5))->dyn = 1;
        add_f64(c, DIMS(7, 4))->dyn = 1;
        c->a.i[0] = 1;
        break;
    case LOOM_OP_ADD:
    case LOOM_OP_SUB:
    case LOOM_OP_MUL:
    case LOOM_OP_DIV:
    case LOOM_OP_MINIMUM:
    case LOOM_OP_MAXIMUM: {
        const char *nm = loom__op_def(op)->name;
        src_spec *(*rhs)(op_case *, int, const int64_t *) = op == LOOM_OP_DIV ? add_pos : add_f64;
        c = new_case(cs, &nc, op, "%s [5, 7] [5, 7]", nm);
        add_f64(c, DIMS(5, 7));
        rhs(c, DIMS(5, 7));
        c = new_case(cs, &nc, op, "%s [5, 7] [7]", nm);
        add_f64(c, DIMS(5, 7));
        rhs(c, DIMS(7));
        c = new_case(cs, &nc, op, "%s [7] [5, 7]", nm);
        add_f64(c, DIMS(7));
        rhs(c, DIMS(5, 7));
        c = new_case(cs, &nc, op, "%s [5, 1] [1, 7]", nm);
        add_f64(c, DIMS(5, 1));
        rhs(c, DIMS(1, 7));
        c = new_case(cs, &nc, op, "%s [3, 5, 7] [5, 1]", nm);
        add_f64(c, DIMS(3, 5, 7));
        rhs(c, DIMS(5, 1));
        c = new_case(cs, &nc, op, "%s [N, 7] [7]", nm);
        add_f64(c, DIMS(7, 7))->dyn = 1;
        rhs(c, DIMS(7));
        break;
    }
    case LOOM_OP_MINMAX_GRAD:
        for (int k = 0; k < 4; k++) {
            c = new_case(cs, &nc, op, "minmax_grad mode %d [5, 7] [5, 7]", k);
            add_f64(c, DIMS(5, 7));
            add_f64(c, DIMS(5, 7));
            add_f64(c, DIMS(5, 7));
            c->a.i[0] = k;
        }
        c = new_case(cs, &nc, op, "minmax_grad mode 3 [5, 7] [7]");
        add_f64(c, DIMS(5, 7));
        add_f64(c, DIMS(7));
        add_f64(c, DIMS(5, 7));
        c->a.i[0] = 3;
        c = new_case(cs, &nc, op, "minmax_grad mode 1 of ties [5, 7] [5, 7]");
        {
            src_spec *a = add_f64(c, DIMS(5, 7)), *b = add_f64(c, DIMS(5, 7));
            memcpy(b->v.a.data, a->v.a.data, 35 * sizeof(double));
        }
        add_f64(c, DIMS(5, 7));
        c->a.i[0] = 1;
        break;
    case LOOM_OP_WHERE:
        c = new_case(cs, &nc, op, "where [5, 7] [5, 7] [5, 7]");
        add_mask(c, DIMS(5, 7));
        add_f64(c, DIMS(5, 7));
        add_f64(c, DIMS(5, 7));
        c = new_case(cs, &nc, op, "where [7] [5, 7] [5, 1]");
        add_mask(c, DIMS(7));
        add_f64(c, DIMS(5, 7));
        add_f64(c, DIMS(5, 1));
        c = new_case(cs, &nc, op, "where [N, 1] [N, 7] [7]");
        add_mask(c, DIMS(7, 1))->dyn = 1;
        add_f64(c, DIMS(7, 7))->dyn = 1;
        add_f64(c, DIMS(7));
        for (int k = 1; k <= 2; k++) {
            c = new_case(cs, &nc, op, "where [5, 7] [5, 7] keeping %s", k == 1 ? "where cond" : "where not");
            add_mask(c, DIMS(5, 7));
            add_f64(c, DIMS(5, 7));
            c->a.i[0] = k;
        }
        break;
    case LOOM_OP_SOFTMAX:
    case LOOM_OP_SOFTMAX_GRAD: {
        const int k = op == LOOM_OP_SOFTMAX ? 1 : 2;
        static const struct {
            int ndim, dyn, axis;
            int64_t d[3];
        } sm[] = {{2, 0, 1, {5, 7}}, {2, 0, 0, {5, 7}}, {3, 0, 1, {3, 5, 7}}, {2, 1, -1, {7, 5}}, {2, 1, 0, {7, 5}}};
        for (size_t j = 0; j < sizeof sm / sizeof sm[0]; j++) {
            c = new_case(cs, &nc, op, "%s [%s, %lld%s] axis %d", loom__op_def(op)->name,
                         sm[j].dyn ? "N" : sm[j].d[0] == 5 ? "5" : "3", (long long)sm[j].d[1], sm[j].ndim == 3 ? ", 7" : "",
                         sm[j].axis);
            for (int i = 0; i < k; i++)
                add_f64(c, sm[j].ndim, sm[j].d)->dyn = (uint32_t)sm[j].dyn;
            c->a.i[0] = sm[j].axis;
        }
        break;
    }
    case LOOM_OP_SEGMENT_SOFTMAX:
    case LOOM_OP_SEGMENT_SOFTMAX_GRAD: {
        static const int64_t shapes[3][3] = {{7, 4}, {7}, {7, 4, 3}};
        static const int nds[3] = {2, 1, 3};
        for (int k = 0; k < 3; k++) {
            c = new_case(cs, &nc, op, "%s %s into 5 segments", loom__op_def(op)->name,
                         k == 0 ? "[7, 4]" : k == 1 ? "[7]" : "[7, 4, 3]");
            add_f64(c, nds[k], shapes[k]);
            add_idx(c, 7, 5);
            if (op == LOOM_OP_SEGMENT_SOFTMAX_GRAD)
                add_f64(c, nds[k], shapes[k]);
            c->a.i[0] = 5;
        }
        break;
    }
    case LOOM_OP_ARGMAX:
        c = new_case(cs, &nc, op, "argmax [5, 7] axis 1");
        add_f64(c, DIMS(5, 7));
        c->a.i[0] = 1;
        c = new_case(cs, &nc, op, "argmax [5, 7] axis 0");
        add_f64(c, DIMS(5, 7));
        c = new_case(cs, &nc, op, "argmax [3, 5, 7] axis -2");
        add_f64(c, DIMS(3, 5, 7));
        c->a.i[0] = -2;
        c = new_case(cs, &nc, op, "argmax [N, 5] axis 1");
        add_f64(c, DIMS(7, 5))->dyn = 1;
        c->a.i[0] = 1;
        break;
    case LOOM_OP_ONE_HOT:
        c = new_case(cs, &nc, op, "one_hot [7] of 4 classes");
        add_idx(c, 7, 4);
        c->a.i[0] = 4, c->a.i[1] = LOOM_F64;
        c = new_case(cs, &nc, op, "one_hot [5, 3] of 4 classes");
        {
            src_spec *x = add_dense(c, LOOM_I32, 2, (int64_t[]){5, 3});
            lt_fill_int(x->v.a.data, 15, 4, next_seed());
        }
        c->a.i[0] = 4, c->a.i[1] = LOOM_F64;
        break;
    case LOOM_OP_SCALE:
        c = new_case(cs, &nc, op, "scale [5, 7]");
        add_f64(c, DIMS(5, 7));
        c->a.f[0] = -1.5;
        break;
    case LOOM_OP_BIAS_ADD:
        c = new_case(cs, &nc, op, "bias_add [5, 7] [7]");
        add_f64(c, DIMS(5, 7));
        add_f64(c, DIMS(7));
        c = new_case(cs, &nc, op, "bias_add [3, 5, 7] [7]");
        add_f64(c, DIMS(3, 5, 7));
        add_f64(c, DIMS(7));
        break;
    case LOOM_OP_RELU:
    case LOOM_OP_LEAKY_RELU:
    case LOOM_OP_ELU:
    case LOOM_OP_SIGMOID:
    case LOOM_OP_TANH:
    case LOOM_OP_EXP:
    case LOOM_OP_LOG:
    case LOOM_OP_SQRT:
    case LOOM_OP_RSQRT:
    case LOOM_OP_ABS:
    case LOOM_OP_POW_SCALAR:
    case LOOM_OP_CLAMP:
        for (int k = 0; k < 2; k++) {
            c = new_case(cs, &nc, op, "%s %s", loom__op_def(op)->name, k ? "[3, 5, 7]" : "[5, 7]");
            (positive_domain(op) ? add_pos : add_f64)(c, k ? 3 : 2, k ? (int64_t[]){3, 5, 7} : (int64_t[]){5, 7});
            act_params(op, &c->a);
        }
        break;
    case LOOM_OP_ACT_GRAD: {
        const loom_op acts[] = {LOOM_OP_RELU, LOOM_OP_LEAKY_RELU, LOOM_OP_ELU, LOOM_OP_SIGMOID, LOOM_OP_TANH,
                                LOOM_OP_EXP,  LOOM_OP_LOG,        LOOM_OP_SQRT, LOOM_OP_RSQRT, LOOM_OP_ABS,
                                LOOM_OP_POW_SCALAR, LOOM_OP_CLAMP};
        for (size_t k = 0; k < sizeof acts / sizeof acts[0]; k++) {
            c = new_case(cs, &nc, op, "act_grad of %s [5, 7]", loom__op_def(acts[k])->name);
            (positive_domain(acts[k]) ? add_pos : add_f64)(c, DIMS(5, 7));
            add_f64(c, DIMS(5, 7));
            act_params(acts[k], &c->a);
            c->a.i[0] = acts[k];
        }
        break;
    }
    case LOOM_OP_DROPOUT_MASK:
        c = new_case(cs, &nc, op, "dropout_mask [5, 7]");
        add_f64(c, DIMS(5, 7));
        c->a.f[0] = 0.3;
        break;
    case LOOM_OP_DROPOUT:
        c = new_case(cs, &nc, op, "dropout [5, 7]");
        add_f64(c, DIMS(5, 7));
        add_mask(c, DIMS(5, 7));
        c->a.f[0] = 0.3;
        break;
    case LOOM_OP_LOG_SOFTMAX:
    case LOOM_OP_LOG_SOFTMAX_GRAD: {
        int k = op == LOOM_OP_LOG_SOFTMAX ? 1 : 2;
        c = new_case(cs, &nc, op, "%s [5, 7]", loom__op_def(op)->name);
        for (int i = 0; i < k; i++)
            add_f64(c, DIMS(5, 7));
        c = new_case(cs, &nc, op, "%s [3, 5, 7]", loom__op_def(op)->name);
        for (int i = 0; i < k; i++)
            add_f64(c, DIMS(3, 5, 7));
        c = new_case(cs, &nc, op, "%s [N, 5]", loom__op_def(op)->name);
        for (int i = 0; i < k; i++)
            add_f64(c, DIMS(7, 5))->dyn = 1;
        break;
    }
    case LOOM_OP_SOFTMAX_CE:
    case LOOM_OP_SOFTMAX_CE_GRAD:
        for (int masked = 0; masked < 2; masked++) {
            c = new_case(cs, &nc, op, "%s [7, 5]%s", loom__op_def(op)->name, masked ? " masked" : "");
            add_f64(c, DIMS(7, 5));
            add_idx(c, 7, 5);
            if (masked)
                add_mask(c, DIMS(7));
            if (op == LOOM_OP_SOFTMAX_CE_GRAD)
                add_f64(c, 0, (int64_t[]){0}); /* gout: a scalar */
        }
        break;
    case LOOM_OP_BCE_LOGITS:
    case LOOM_OP_BCE_LOGITS_GRAD:
        for (int dyn = 0; dyn < 2; dyn++) {
            c = new_case(cs, &nc, op, "%s [%s, 5]", loom__op_def(op)->name, dyn ? "N" : "7");
            add_f64(c, DIMS(7, 5))->dyn = dyn;
            add_f64(c, DIMS(7, 5))->dyn = dyn;
            c->a.f[0] = 1.5;
            if (op == LOOM_OP_BCE_LOGITS_GRAD)
                add_f64(c, 0, (int64_t[]){0}); /* gout: a scalar */
        }
        break;
    case LOOM_OP_CONV2D:
    case LOOM_OP_CONV2D_GRAD_INPUT:
    case LOOM_OP_CONV2D_GRAD_WEIGHT:
        for (size_t k = 0; k < sizeof conv_geoms / sizeof conv_geoms[0]; k++)
            add_conv_case(cs, &nc, op, &conv_geoms[k]);
        break;
    case LOOM_OP_SUM:
    case LOOM_OP_MEAN: {
        const char *nm = loom__op_def(op)->name;
        for (uint32_t mask = 1; mask <= 3; mask++)
            for (int keep = 0; keep < 2; keep++) {
                c = new_case(cs, &nc, op, "%s [5, 7] axes %#x keepdims %d", nm, mask, keep);
                add_f64(c, DIMS(5, 7));
                c->a.i[0] = mask;
                c->a.i[1] = keep;
            }
        c = new_case(cs, &nc, op, "%s [3, 5, 7] axes 0x5", nm);
        add_f64(c, DIMS(3, 5, 7));
        c->a.i[0] = 5;
        c = new_case(cs, &nc, op, "%s [N, 5] axes 0x2", nm);
        add_f64(c, DIMS(7, 5))->dyn = 1;
        c->a.i[0] = 2;
        break;
    }
    case LOOM_OP_EXPAND:
        for (int scaled = 0; scaled < 2; scaled++) {
            const char *sc = scaled ? " scaled" : "";
            c = new_case(cs, &nc, op, "expand [1, 7] to [5, 7]%s", sc);
            add_f64(c, DIMS(1, 7));
            add_f64(c, DIMS(5, 7));
            c->a.i[0] = scaled;
            c = new_case(cs, &nc, op, "expand [7] to [5, 7]%s", sc);
            add_f64(c, DIMS(7));
            add_f64(c, DIMS(5, 7));
            c->a.i[0] = scaled;
            c = new_case(cs, &nc, op, "expand [5, 1] to [3, 5, 7]%s", sc);
            add_f64(c, DIMS(5, 1));
            add_f64(c, DIMS(3, 5, 7));
            c->a.i[0] = scaled;
        }
        break;
    case LOOM_OP_RESHAPE:
        c = new_case(cs, &nc, op, "reshape [3, 5, 7] to [15, 7]");
        add_f64(c, DIMS(3, 5, 7));
        c->a.shape = loom_shape(15, 7);
        c = new_case(cs, &nc, op, "reshape [5, 6] to [5, 2, 3]");
        add_f64(c, DIMS(5, 6));
        c->a.shape = loom_shape(5, 2, 3);
        c = new_case(cs, &nc, op, "reshape [5, 7] to [35]");
        add_f64(c, DIMS(5, 7));
        c->a.shape = loom_shape(35);
        c = new_case(cs, &nc, op, "reshape [5, 7] to [1, 5, 1, 7]");
        add_f64(c, DIMS(5, 7));
        c->a.shape = loom_shape(1, 5, 1, 7);
        c = new_case(cs, &nc, op, "reshape [N, 2, 3] to [N, 6]");
        add_f64(c, DIMS(7, 2, 3))->dyn = 1;
        c->a.shape = loom_shape(LOOM__DYN_BASE, 6); /* stands for the case graph's dynamic dim N (build_op) */
        break;
    case LOOM_OP_TRANSPOSE:
        c = new_case(cs, &nc, op, "transpose [3, 5, 7] perm (2, 0, 1)");
        add_f64(c, DIMS(3, 5, 7));
        c->a.i[0] = 2, c->a.i[1] = 0, c->a.i[2] = 1;
        c = new_case(cs, &nc, op, "transpose [N, 5] perm (1, 0)");
        add_f64(c, DIMS(7, 5))->dyn = 1;
        c->a.i[0] = 1, c->a.i[1] = 0;
        break;
    case LOOM_OP_CONCAT:
        c = new_case(cs, &nc, op, "concat [5, 2] [5, 3] [5, 4] axis 1");
        add_f64(c, DIMS(5, 2));
        add_f64(c, DIMS(5, 3));
        add_f64(c, DIMS(5, 4));
        c->a.i[0] = 1;
        c = new_case(cs, &nc, op, "concat [2, 7] [3, 7] axis 0");
        add_f64(c, DIMS(2, 7));
        add_f64(c, DIMS(3, 7));
        c = new_case(cs, &nc, op, "concat [N, 2] [N, 3] axis -1");
        add_f64(c, DIMS(7, 2))->dyn = 1;
        add_f64(c, DIMS(7, 3))->dyn = 1;
        c->a.i[0] = -1;
        break;
    case LOOM_OP_SLICE:
        c = new_case(cs, &nc, op, "slice [5, 7] axis 1 [2, 6)");
        add_f64(c, DIMS(5, 7));
        c->a.i[0] = 1, c->a.i[1] = 2, c->a.i[2] = 6;
        c = new_case(cs, &nc, op, "slice [7, 5] axis 0 [1, 4)");
        add_f64(c, DIMS(7, 5));
        c->a.i[0] = 0, c->a.i[1] = 1, c->a.i[2] = 4;
        break;
    case LOOM_OP_SLICE_GRAD:
        c = new_case(cs, &nc, op, "slice_grad [5, 4] into [5, 7] axis 1 [2, 6)");
        add_f64(c, DIMS(5, 4));
        add_f64(c, DIMS(5, 7));
        c->a.i[0] = 1, c->a.i[1] = 2, c->a.i[2] = 6;
        c = new_case(cs, &nc, op, "slice_grad [3, 5] into [7, 5] axis 0 [1, 4)");
        add_f64(c, DIMS(3, 5));
        add_f64(c, DIMS(7, 5));
        c->a.i[0] = 0, c->a.i[1] = 1, c->a.i[2] = 4;
        break;
    case LOOM_OP_SPMM:
        c = new_case(cs, &nc, op, "spmm [7, 5] x [5, 4]");
        add_csr(c, 7, 5);
        add_f64(c, DIMS(5, 4));
        c = new_case(cs, &nc, op, "spmm [7, 5]^T x [7, 4]");
        add_csr(c, 7, 5);
        add_f64(c, DIMS(7, 4));
        c->a.i[0] = 1;
        c = new_case(cs, &nc, op, "spmm [7, 5] x [5, 4, 3]");
        add_csr(c, 7, 5);
        add_f64(c, DIMS(5, 4, 3));
        c = new_case(cs, &nc, op, "spmm [N, N] x [N, 4]");
        add_csr(c, 7, 7)->dyn = 3;
        add_f64(c, DIMS(7, 4))->dyn = 1;
        c = new_case(cs, &nc, op, "spmm [N, N]^T x [N, 4]");
        add_csr(c, 7, 7)->dyn = 3;
        add_f64(c, DIMS(7, 4))->dyn = 1;
        c->a.i[0] = 1;
        break;
    case LOOM_OP_DEGREE:
        c = new_case(cs, &nc, op, "degree [7, 5] self loops, power -0.5");
        add_csr(c, 7, 5);
        c->a.i[0] = 1, c->a.f[0] = -0.5;
        c = new_case(cs, &nc, op, "degree [N, N] power 1");
        add_csr(c, 7, 7)->dyn = 3;
        c->a.f[0] = 1;
        break;
    case LOOM_OP_GATHER_ROWS:
        c = new_case(cs, &nc, op, "gather_rows [5, 4] at [7]");
        add_f64(c, DIMS(5, 4));
        add_idx(c, 7, 5);
        c = new_case(cs, &nc, op, "gather_rows [5, 4, 3] at [7]");
        add_f64(c, DIMS(5, 4, 3));
        add_idx(c, 7, 5);
        break;
    case LOOM_OP_SCATTER:
        for (int mode = 0; mode < LOOM__SCATTER_MODE_COUNT; mode++) {
            c = new_case(cs, &nc, op, "scatter mode %d [7, 4] to 5 rows", mode);
            add_f64(c, DIMS(7, 4));
            add_idx(c, 7, 5);
            c->a.i[0] = mode, c->a.i[1] = 5;
            c = new_case(cs, &nc, op, "scatter mode %d [7, 4, 3] to 5 rows", mode);
            add_f64(c, DIMS(7, 4, 3));
            add_idx(c, 7, 5);
            c->a.i[0] = mode, c->a.i[1] = 5;
        }
        break;
    case LOOM_OP_SCATTER_GRAD:
        for (int mode = LOOM__SCATTER_MEAN; mode <= LOOM__SCATTER_MAX; mode++) {
            c = new_case(cs, &nc, op, "scatter_grad mode %d [7, 4] from 5 rows", mode);
            src_spec *x = add_f64(c, DIMS(7, 4));
            src_spec *idx = add_idx(c, 7, 5);
            add_segment_result(c, x, idx, 5, mode);
            add_f64(c, DIMS(5, 4));
            c->a.i[0] = mode;
        }
        break;
    case LOOM_OP_MAX_POOL2D:
    case LOOM_OP_AVG_POOL2D:
    case LOOM_OP_MAX_POOL2D_GRAD:
    case LOOM_OP_AVG_POOL2D_GRAD: {
        static const int64_t win[2][6] = {{3, 2, 2, 1, 1, 0}, {2, 2, 2, 2, 0, 0}};
        for (int k = 0; k < 2; k++) {
            const int64_t *a = win[k];
            c = new_case(cs, &nc, op, "%s [%s, 7, 5, 4] kernel %lldx%lld stride %lldx%lld pad %lldx%lld", loom__op_def(op)->name,
                         k ? "N" : "5", (long long)a[0], (long long)a[1], (long long)a[2], (long long)a[3], (long long)a[4],
                         (long long)a[5]);
            for (int i = 0; i < 6; i++)
                c->a.i[i] = a[i];
            const int64_t p = (5 + 2 * a[4] - a[0]) / a[2] + 1, q = (4 + 2 * a[5] - a[1]) / a[3] + 1;
            if (op == LOOM_OP_AVG_POOL2D_GRAD)
                add_f64(c, DIMS(5, 7, p, q))->dyn = k;
            src_spec *x = add_f64(c, DIMS(5, 7, 5, 4));
            x->dyn = k;
            if (op == LOOM_OP_MAX_POOL2D_GRAD) {
                add_max_pool(c, x, a)->dyn = k;
                add_f64(c, DIMS(5, 7, p, q))->dyn = k;
            }
        }
        break;
    }
    case LOOM_OP_BN_STATS:
        c = new_case(cs, &nc, op, "batch_norm_stats [7, 5]");
        add_f64(c, DIMS(7, 5));
        c = new_case(cs, &nc, op, "batch_norm_stats [5, 7, 3, 2]");
        add_f64(c, DIMS(5, 7, 3, 2));
        c = new_case(cs, &nc, op, "batch_norm_stats [N, 5, 2]");
        add_f64(c, DIMS(7, 5, 2))->dyn = 1;
        break;
    case LOOM_OP_BATCH_NORM:
    case LOOM_OP_BN_RELU:
    case LOOM_OP_BN_GRAD_SUMS:
    case LOOM_OP_BATCH_NORM_GRAD:
        /* batch_norm_relu with a residual (extra), the gradient ops with a ReLU's output y */
        for (int k = 0; k < (op == LOOM_OP_BATCH_NORM ? 3 : 6); k++) {
            static const int64_t shapes[3][4] = {{7, 5}, {5, 7, 3, 2}, {7, 5, 2}};
            const int nd = k % 3 == 0 ? 2 : k % 3 == 1 ? 4 : 3, extra = k >= 3;
            const int64_t ch = shapes[k % 3][1];
            const int fwd = op == LOOM_OP_BATCH_NORM || op == LOOM_OP_BN_RELU;
            c = new_case(cs, &nc, op, "%s %s%s", loom__op_def(op)->name,
                         k % 3 == 0 ? "[7, 5]" : k % 3 == 1 ? "[5, 7, 3, 2]" : "[N, 5, 2]",
                         !extra ? "" : fwd ? " with a residual" : " with y");
            c->a.f[0] = 1e-5;
            c->a.f[1] = 0.1;
            if (!fwd)
                add_f64(c, nd, shapes[k % 3])->dyn = k % 3 == 2;
            src_spec *x = add_f64(c, nd, shapes[k % 3]);
            x->dyn = k % 3 == 2;
            add_bn_stats(c, x);
            if (fwd) {
                add_f64(c, 1, &ch);                       /* running_mean */
                add_pos(c, 1, &ch);                       /* running_var */
                add_f64(c, 1, &ch);                       /* weight */
                add_f64(c, 1, &ch);                       /* bias */
            } else if (op == LOOM_OP_BATCH_NORM_GRAD) {
                add_f64(c, 1, &ch);                       /* weight */
                add_f64(c, 2, (int64_t[]){ch, 2});        /* the sums */
            }
            if (extra)                                    /* the residual, or y */
                add_f64(c, nd, shapes[k % 3])->dyn = k % 3 == 2;
        }
        break;
    case LOOM_OP_LAYER_NORM:
    case LOOM_OP_LAYER_NORM_GRAD:
    case LOOM_OP_LN_GRAD_SUMS:
        for (int k = 0; k < 3; k++) {
            static const int64_t shapes[3][3] = {{5, 7, 3}, {5, 7, 3}, {7, 4}};
            const int nd = k == 2 ? 2 : 3, axes = k == 1 ? 2 : 1;
            c = new_case(cs, &nc, op, "%s %s axes %d", loom__op_def(op)->name, k == 2 ? "[N, 4]" : "[5, 7, 3]", axes);
            c->a.i[0] = axes;
            c->a.f[0] = 1e-5;
            if (op != LOOM_OP_LAYER_NORM)
                add_f64(c, nd, shapes[k])->dyn = k == 2;
            add_f64(c, nd, shapes[k])->dyn = k == 2;
            if (op != LOOM_OP_LN_GRAD_SUMS)
                add_f64(c, axes, shapes[k] + nd - axes); /* weight */
            if (op == LOOM_OP_LAYER_NORM)
                add_f64(c, axes, shapes[k] + nd - axes); /* bias */
        }
        break;
    case LOOM_OP_COUNT:
        break;
    }
    return nc;
}

/* ---- building a case's graph ---------------------------------------------------------------------- */

loom_tensor *case_build(const op_case *c, const val *vals, const loom__attrs *a, int dynamic, loom_graph **g,
                        loom_tensor **src, char *why, size_t len)
{
    *g = loom_graph_new();
    ck_assert_ptr_nonnull(*g);
    loom_dim N = 0;
    for (int k = 0; k < c->n_src; k++) {
        const val *v = &vals[k];
        const uint32_t dyn = dynamic ? c->src[k].dyn : 0;
        if (dyn && !N) /* N is the graph's first dynamic dim: reshape's target names it so */
            N = loom_dim_dynamic(*g, "N", v->csr ? v->m.nrows : v->a.shape[__builtin_ctz(dyn)]);
        char name[16];
        snprintf(name, sizeof name, "s%d", k);
        if (v->csr) {
            src[k] = loom_input_csr(*g, name, LOOM_F64, dyn & 1 ? N : v->m.nrows, dyn & 2 ? N : v->m.ncols);
        } else {
            loom_shape s = {.ndim = v->a.ndim};
            for (int i = 0; i < s.ndim; i++)
                s.d[i] = dyn >> i & 1 ? N : v->a.shape[i];
            src[k] = loom_input(*g, name, v->a.dtype, s);
        }
    }
    /* a dim handle is its graph's: LOOM__DYN_BASE in a target shape stands for this graph's N */
    loom__attrs own = *a;
    for (int i = 0; i < own.shape.ndim; i++)
        if (N && own.shape.d[i] == LOOM__DYN_BASE)
            own.shape.d[i] = N;
    loom_tensor *t = loom__node(*g, "test", c->op, c->n_src, src, &own);
    if (loom_tensor_is_poisoned(t)) {
        snprintf(why, len, "building the op failed: %s", loom_graph_error(*g));
        return NULL;
    }
    return t;
}

const char *case_sig_str(const loom__sbp_sig *s, int nsrc, char *buf, size_t len)
{
    size_t o = 0;
    char b[32];
    o += (size_t)snprintf(buf + o, len - o, "(");
    for (int k = 0; k < nsrc && o < len; k++) {
        loom_sbp_str(s->in[k], b, sizeof b);
        o += (size_t)snprintf(buf + o, len - o, "%s%s", k ? ", " : "", b);
    }
    loom_sbp_str(s->out, b, sizeof b);
    if (o < len)
        snprintf(buf + o, len - o, ") -> %s", b);
    return buf;
}
