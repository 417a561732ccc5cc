/* conv2d and its gradient ops on the CPU: each kernel against a naive 7-loop reference on random
 * shapes (strides 1-3, padding 0-2, dilations 1-2, groups 1 and 2, batches 1-3) in f32 and f64,
 * shapes that take the blocked im2col and the chunked weight gradient, the same bits with and
 * without the kernel threads, an empty batch, a dynamic batch fed at several sizes through a
 * program (forward and gradients), and the builder's refusals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "graphs/core/op.h"
#include "ops/cpu/pool.h"

typedef struct geom {
    int64_t n, c, h, w, k, r, s;
    int stride[2], pad[2], dil[2], groups;
} geom;

static int64_t out_len(int64_t in, int64_t k, int stride, int pad, int dil)
{
    return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/* ---- naive references (double) ------------------------------------------------------------------ */

/* The x index an output position and tap read, or -1 outside x (the padding). */
static int64_t x_at(const geom *g, int64_t n, int64_t c, int64_t p, int64_t q, int64_t r, int64_t s)
{
    const int64_t ih = p * g->stride[0] - g->pad[0] + r * g->dil[0], iw = q * g->stride[1] - g->pad[1] + s * g->dil[1];
    if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
        return -1;
    return ((n * g->c + c) * g->h + ih) * g->w + iw;
}

/* Calls f(xi, wi, yi) for every (image, filter, output position, channel of its group, tap) whose
 * x element is inside x: the seven loops every reference walks. */
#define FOR_TERMS(g, P, Q, BODY)                                                                        \
    do {                                                                                                \
        const int64_t cg_ = (g)->c / (g)->groups, kg_ = (g)->k / (g)->groups;                           \
        for (int64_t n = 0; n < (g)->n; n++)                                                            \
            for (int64_t k = 0; k < (g)->k; k++)                                                        \
                for (int64_t p = 0; p < (P); p++)                                                       \
                    for (int64_t q = 0; q < (Q); q++)                                                   \
                        for (int64_t cc = 0; cc < cg_; cc++)                                            \
                            for (int64_t r = 0; r < (g)->r; r++)                                        \
                                for (int64_t s = 0; s < (g)->s; s++) {                                  \
                                    const int64_t xi = x_at((g), n, k / kg_ * cg_ + cc, p, q, r, s);    \
                                    const int64_t wi = ((k * cg_ + cc) * (g)->r + r) * (g)->s + s;      \
                                    const int64_t yi = ((n * (g)->k + k) * (P) + p) * (Q) + q;          \
                                    if (xi >= 0) {                                                      \
                                        BODY;                                                           \
                                    }                                                                   \
                                }                                                                       \
    } while (0)

static void ref_forward(const geom *g, const double *x, const double *w, const double *b, double *y)
{
    const int64_t P = out_len(g->h, g->r, g->stride[0], g->pad[0], g->dil[0]);
    const int64_t Q = out_len(g->w, g->s, g->stride[1], g->pad[1], g->dil[1]);
    for (int64_t i = 0; i < g->n * g->k * P * Q; i++)
        y[i] = b ? b[i / (P * Q) % g->k] : 0;
    FOR_TERMS(g, P, Q, y[yi] += w[wi] * x[xi]);
}

static void ref_grad_input(const geom *g, const double *dy, const double *w, double *dx)
{
    const int64_t P = out_len(g->h, g->r, g->stride[0], g->pad[0], g->dil[0]);
    const int64_t Q = out_len(g->w, g->s, g->stride[1], g->pad[1], g->dil[1]);
    memset(dx, 0, (size_t)(g->n * g->c * g->h * g->w) * sizeof *dx);
    FOR_TERMS(g, P, Q, dx[xi] += w[wi] * dy[yi]);
}

static void ref_grad_weight(const geom *g, const double *x, const double *dy, double *dw)
{
    const int64_t P = out_len(g->h, g->r, g->stride[0], g->pad[0], g->dil[0]);
    const int64_t Q = out_len(g->w, g->s, g->stride[1], g->pad[1], g->dil[1]);
    memset(dw, 0, (size_t)(g->k * (g->c / g->groups) * g->r * g->s) * sizeof *dw);
    FOR_TERMS(g, P, Q, dw[wi] += dy[yi] * x[xi]);
}

/* ---- running a kernel directly ------------------------------------------------------------------ */

/* n values N(0, 1), rounded to f32 when dt is (so the reference sees what the kernel does); the
 * kernel's copy in dt. */
typedef struct buf {
    int64_t n;
    double *d;
    void *v;
} buf;

static buf make_buf(int64_t n, loom_dtype dt, uint64_t seed)
{
    buf b = {.n = n, .d = malloc((size_t)n * sizeof(double) + 8), .v = malloc((size_t)n * loom_dtype_size(dt) + 8)};
    ck_assert(b.d && b.v);
    lt_fill_normal(b.d, n, seed);
    if (dt == LOOM_F32)
        lt_as_dtype(b.d, b.v, n, 1);
    else
        memcpy(b.v, b.d, (size_t)n * sizeof(double));
    return b;
}

static void free_buf(buf *b)
{
    free(b->d);
    free(b->v);
}

static loom__value value(loom_dtype dt, int ndim, const int64_t *shape, void *data)
{
    loom__value v = {.dtype = dt, .ndim = ndim, .data = data};
    memcpy(v.shape, shape, (size_t)ndim * sizeof *shape);
    return v;
}

/* Runs t's CPU kernel on src into a fresh output of t's (static) shape, with pool (NULL: none);
 * returns the output's data (malloc'd). */
static void *run_kernel(const loom_tensor *t, loom__value *const *src, loom__pool *pool)
{
    int64_t shape[4], n = 1;
    for (int i = 0; i < 4; i++)
        n *= shape[i] = t->shape.d[i];
    void *data = malloc((size_t)n * loom_dtype_size(t->dtype) + 8);
    ck_assert_ptr_nonnull(data);
    memset(data, 0xa5, (size_t)n * loom_dtype_size(t->dtype)); /* every element must be written */
    loom__value out = value(t->dtype, 4, shape, data);
    char msg[256] = "";
    loom__kctx ctx = {.msg = msg, .msglen = sizeof msg, .pool = pool};
    loom_status s = loom__op_def(t->op)->cpu(t, &out, src, &ctx);
    ck_assert_msg(s == LOOM_OK, "%s: %s", loom__op_def(t->op)->name, msg);
    return data;
}

static void check_close(const void *got, loom_dtype dt, const double *want, int64_t n, const char *what)
{
    double *g = malloc((size_t)n * sizeof *g + 8);
    ck_assert_ptr_nonnull(g);
    for (int64_t i = 0; i < n; i++)
        g[i] = dt == LOOM_F32 ? ((const float *)got)[i] : ((const double *)got)[i];
    lt_assert_close(g, want, n, dt == LOOM_F32 ? 1e-4 : 1e-11, what);
    free(g);
}

/* The three kernels of g in dt against the references, each also run on a pool of 3 threads,
 * which must give the same bits. */
static void check_geom(const geom *g, loom_dtype dt, int bias, uint64_t seed, loom__pool *pool)
{
    const int64_t P = out_len(g->h, g->r, g->stride[0], g->pad[0], g->dil[0]);
    const int64_t Q = out_len(g->w, g->s, g->stride[1], g->pad[1], g->dil[1]);
    const int64_t cg = g->c / g->groups;
    const int64_t xs[4] = {g->n, g->c, g->h, g->w}, ws[4] = {g->k, cg, g->r, g->s}, ys[4] = {g->n, g->k, P, Q};
    buf x = make_buf(xs[0] * xs[1] * xs[2] * xs[3], dt, seed), w = make_buf(ws[0] * ws[1] * ws[2] * ws[3], dt, seed + 1);
    buf b = make_buf(g->k, dt, seed + 2), dy = make_buf(ys[0] * ys[1] * ys[2] * ys[3], dt, seed + 3);
    char what[200];
    snprintf(what, sizeof what, "%s x [%lld, %lld, %lld, %lld] w [%lld, %lld, %lld, %lld]%s stride %dx%d pad %dx%d dilation %dx%d groups %d",
             loom_dtype_name(dt), (long long)xs[0], (long long)xs[1], (long long)xs[2], (long long)xs[3], (long long)ws[0],
             (long long)ws[1], (long long)ws[2], (long long)ws[3], bias ? " + b" : "", g->stride[0], g->stride[1], g->pad[0],
             g->pad[1], g->dil[0], g->dil[1], g->groups);

    loom_graph *gr = loom_graph_new();
    loom_tensor *tx = loom_input(gr, "x", dt, loom_shape(xs[0], xs[1], xs[2], xs[3]));
    loom_tensor *tw = loom_input(gr, "w", dt, loom_shape(ws[0], ws[1], ws[2], ws[3]));
    loom_tensor *tb = bias ? loom_input(gr, "b", dt, loom_shape(g->k)) : NULL;
    loom_tensor *tdy = loom_input(gr, "dy", dt, loom_shape(ys[0], ys[1], ys[2], ys[3]));
    loom_conv2d_opts o = {.stride = {g->stride[0], g->stride[1]}, .pad = {g->pad[0], g->pad[1]},
                          .dilation = {g->dil[0], g->dil[1]}, .groups = g->groups};
    loom_tensor *ty = loom_conv2d(gr, tx, tw, tb, &o);
    loom__attrs a = ty->a;
    a.shape = (loom_shape){.ndim = 2, .d = {g->h, g->w}};
    loom_tensor *tdx = loom__node(gr, "test", LOOM_OP_CONV2D_GRAD_INPUT, 2, (loom_tensor *[]){tdy, tw}, &a);
    a.shape = (loom_shape){.ndim = 2, .d = {g->r, g->s}};
    loom_tensor *tdw = loom__node(gr, "test", LOOM_OP_CONV2D_GRAD_WEIGHT, 2, (loom_tensor *[]){tx, tdy}, &a);
    ck_assert_msg(loom_graph_status(gr) == LOOM_OK, "%s: %s", what, loom_graph_error(gr));
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(ty->shape.d[i], ys[i]);

    loom__value vx = value(dt, 4, xs, x.v), vw = value(dt, 4, ws, w.v), vb = value(dt, 1, &g->k, b.v), vdy = value(dt, 4, ys, dy.v);
    loom__value *fs[3] = {&vx, &vw, &vb}, *gis[2] = {&vdy, &vw}, *gws[2] = {&vx, &vdy};
    const loom_tensor *ts[3] = {ty, tdx, tdw};
    loom__value **srcs[3] = {fs, gis, gws};
    const int64_t counts[3] = {dy.n, x.n, w.n};
    double *want[3];
    for (int k = 0; k < 3; k++) {
        want[k] = malloc((size_t)counts[k] * sizeof(double) + 8);
        ck_assert_ptr_nonnull(want[k]);
    }
    ref_forward(g, x.d, w.d, bias ? b.d : NULL, want[0]);
    ref_grad_input(g, dy.d, w.d, want[1]);
    ref_grad_weight(g, x.d, dy.d, want[2]);
    static const char *const names[3] = {"conv2d", "conv2d_grad_input", "conv2d_grad_weight"};
    for (int k = 0; k < 3; k++) {
        char w2[260];
        snprintf(w2, sizeof w2, "%s, %s", names[k], what);
        void *one = run_kernel(ts[k], srcs[k], NULL);
        check_close(one, dt, want[k], counts[k], w2);
        void *many = run_kernel(ts[k], srcs[k], pool);
        ck_assert_msg(!memcmp(one, many, (size_t)counts[k] * loom_dtype_size(dt)), "%s: other bits on 3 threads", w2);
        free(one);
        free(many);
        free(want[k]);
    }
    loom_graph_free(gr);
    free_buf(&x);
    free_buf(&w);
    free_buf(&b);
    free_buf(&dy);
}

/* ---- tests ---------------------------------------------------------------------------------------- */

static uint64_t rng_state;
static int64_t rnd(int64_t lo, int64_t hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (int64_t)((rng_state >> 33) % (uint64_t)(hi - lo + 1));
}

/* Random geometries whose dilated kernel fits the padded input. */
START_TEST(test_random_shapes)
{
    const loom_dtype dt = _i ? LOOM_F64 : LOOM_F32;
    loom__pool *pool = loom__pool_new(3);
    ck_assert_ptr_nonnull(pool);
    rng_state = 12345 + (uint64_t)_i;
    int done = 0;
    while (done < 60) {
        geom g = {.n = rnd(1, 3), .r = rnd(1, 3), .s = rnd(1, 3), .groups = (int)rnd(1, 2)};
        g.c = g.groups * rnd(1, 3);
        g.k = g.groups * rnd(1, 3);
        for (int i = 0; i < 2; i++) {
            g.stride[i] = (int)rnd(1, 3);
            g.pad[i] = (int)rnd(0, 2);
            g.dil[i] = (int)rnd(1, 2);
        }
        g.h = rnd(1, 8);
        g.w = rnd(1, 8);
        if (g.dil[0] * (g.r - 1) + 1 > g.h + 2 * g.pad[0] || g.dil[1] * (g.s - 1) + 1 > g.w + 2 * g.pad[1])
            continue;
        check_geom(&g, dt, done % 2, 100 + (uint64_t)done, pool);
        done++;
    }
    loom__pool_free(pool);
}
END_TEST

/* Shapes past the simple paths: a 1x1 kernel (x read as it is), an im2col matrix over the block
 * size (several blocks), more images than the weight gradient's chunks, a kernel as large as the
 * padded input, an input smaller than the kernel but for the padding. */
START_TEST(test_larger_shapes)
{
    const loom_dtype dt = _i ? LOOM_F64 : LOOM_F32;
    loom__pool *pool = loom__pool_new(3);
    ck_assert_ptr_nonnull(pool);
    static const geom gs[] = {
        {3, 4, 5, 6, 5, 1, 1, {1, 1}, {0, 0}, {1, 1}, 1},
        {2, 6, 5, 6, 4, 1, 1, {1, 1}, {0, 0}, {1, 1}, 2},
        {2, 64, 64, 64, 4, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1},
        {20, 16, 16, 16, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},
        {2, 3, 4, 5, 2, 6, 7, {1, 1}, {1, 1}, {1, 1}, 1},
        {2, 2, 1, 2, 3, 3, 3, {2, 1}, {1, 2}, {1, 2}, 1},
    };
    for (size_t i = 0; i < sizeof gs / sizeof gs[0]; i++)
        check_geom(&gs[i], dt, (int)(i % 2), 900 + i, pool);
    loom__pool_free(pool);
}
END_TEST

/* An empty batch: y and dx empty, dw zero. */
START_TEST(test_empty_batch)
{
    const geom g = {0, 2, 4, 4, 3, 3, 3, {1, 1}, {1, 1}, {1, 1}, 1};
    check_geom(&g, LOOM_F64, 1, 7, NULL);
}
END_TEST

/* x [N, 3, 6, 5] with N dynamic (bound 5), fed at several sizes to one program: y and the
 * gradients of w and b of sum(y * R) against the references. */
START_TEST(test_dynamic_batch)
{
    const loom_dtype dt = _i ? LOOM_F64 : LOOM_F32;
    const geom base = {0, 3, 6, 5, 4, 3, 2, {2, 1}, {1, 0}, {1, 2}, 1};
    const int64_t P = out_len(base.h, base.r, 2, 1, 1), Q = out_len(base.w, base.s, 1, 0, 2);
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 5);
    loom_tensor *x = loom_input(g, "x", dt, loom_shape(N, base.c, base.h, base.w));
    loom_tensor *rt = loom_input(g, "r", dt, loom_shape(N, base.k, P, Q));
    loom_tensor *w = loom_param(g, "w", dt, loom_shape(base.k, base.c, base.r, base.s), loom_init_normal(0, 1, 3));
    loom_tensor *b = loom_param(g, "b", dt, loom_shape(base.k), loom_init_normal(0, 1, 4));
    loom_conv2d_opts o = {.stride = {2, 1}, .pad = {1, 0}, .dilation = {1, 2}, .groups = 1};
    loom_tensor *y = loom_conv2d(g, x, w, b, &o);
    loom_tensor *loss = loom_sum(g, loom_mul(g, y, rt), LOOM_ALL_AXES, 0);
    ck_assert_msg(loom_graph_status(g) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert(loom_tensor_dim(y, 0) == N);
    loom_program *p;
    ck_assert_msg(loom_compile(g, loss, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    loom_tensor *gw = loom_program_grad(p, w), *gb = loom_program_grad(p, b);
    ck_assert(loom_program_keep(p, y) == LOOM_OK && loom_program_keep(p, gw) == LOOM_OK && loom_program_keep(p, gb) == LOOM_OK);
    static const int64_t sizes[] = {3, 1, 5, 0, 2};
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        geom gm = base;
        gm.n = sizes[t];
        buf bx = make_buf(gm.n * gm.c * gm.h * gm.w, dt, 50 + t), br = make_buf(gm.n * gm.k * P * Q, dt, 60 + t);
        loom_array ax = {.dtype = dt, .ndim = 4, .shape = {gm.n, gm.c, gm.h, gm.w}, .data = bx.v};
        loom_array ar = {.dtype = dt, .ndim = 4, .shape = {gm.n, gm.k, P, Q}, .data = br.v};
        ck_assert_msg(loom_program_feed(p, x, &ax) == LOOM_OK && loom_program_feed(p, rt, &ar) == LOOM_OK, "%s",
                      loom_program_error(p));
        ck_assert_msg(loom_program_run(p, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(p));
        loom_array vy, vw, vb, vgw, vgb;
        ck_assert(loom_program_fetch(p, y, &vy) == LOOM_OK && loom_program_fetch(p, w, &vw) == LOOM_OK &&
                  loom_program_fetch(p, b, &vb) == LOOM_OK && loom_program_fetch(p, gw, &vgw) == LOOM_OK &&
                  loom_program_fetch(p, gb, &vgb) == LOOM_OK);
        ck_assert_int_eq(vy.shape[0], gm.n);
        double *wd = lt_to_double(&vw), *bd = lt_to_double(&vb);
        const int64_t ny = gm.n * gm.k * P * Q, nw = loom_array_numel(&vw);
        double *want = malloc((size_t)(ny + nw) * sizeof *want + 8), dbw[4] = {0};
        ck_assert_ptr_nonnull(want);
        char what[96];
        snprintf(what, sizeof what, "%s, N = %lld", loom_dtype_name(dt), (long long)gm.n);
        ref_forward(&gm, bx.d, wd, bd, want);
        check_close(vy.data, dt, want, ny, what);
        ref_grad_weight(&gm, bx.d, br.d, want);
        check_close(vgw.data, dt, want, nw, what);
        for (int64_t i = 0; i < ny; i++)
            dbw[i / (P * Q) % gm.k] += br.d[i];
        check_close(vgb.data, dt, dbw, gm.k, what);
        free(want);
        free(wd);
        free(bd);
        free_buf(&bx);
        free_buf(&br);
    }
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* ---- refusals ---------------------------------------------------------------------------------------- */

static void expect_refusal(loom_status want, const char *needle, loom_shape xs, loom_dtype xdt, loom_shape ws, loom_dtype wdt,
                           const loom_shape *bs, const loom_conv2d_opts *o)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = loom_input(g, "x", xdt, xs), *w = loom_input(g, "w", wdt, ws);
    loom_tensor *b = bs ? loom_input(g, "b", wdt, *bs) : NULL;
    loom_tensor *y = loom_conv2d(g, x, w, b, o);
    ck_assert(loom_tensor_is_poisoned(y));
    ck_assert_msg(loom_graph_status(g) == want, "'%s': got %s (%s)", needle, loom_status_str(loom_graph_status(g)),
                  loom_graph_error(g));
    lt_expect_error(g, needle);
    lt_case_free(c);
}

START_TEST(test_bad_calls)
{
    const loom_shape x = loom_shape(2, 4, 5, 5), w = loom_shape(6, 4, 3, 3), b6 = loom_shape(6), b5 = loom_shape(5);
    loom_conv2d_opts o = LOOM_CONV2D_OPTS_INIT;
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: kernel 5x5 (dilation 1) is larger than the padded input 3x3",
                   loom_shape(1, 2, 3, 3), LOOM_F32, loom_shape(2, 2, 5, 5), LOOM_F32, NULL, NULL);
    o.dilation[0] = 2; /* 3 taps at dilation 2 span 5 rows, over 4 + 0 */
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: kernel 3x3 (dilation 2x1) is larger than the padded input 4x5",
                   loom_shape(1, 4, 4, 5), LOOM_F32, w, LOOM_F32, NULL, &o);
    o = LOOM_CONV2D_OPTS_INIT;
    o.groups = 3;
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: x has 4 channels, which 3 groups do not divide", x, LOOM_F32, w, LOOM_F32,
                   NULL, &o);
    o.groups = 2;
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: w takes 4 input channels per group, but x has 4 channels in 2 groups (2 per group)",
                   x, LOOM_F32, w, LOOM_F32, NULL, &o);
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: w has 5 output channels, which 2 groups do not divide", x, LOOM_F32,
                   loom_shape(5, 2, 3, 3), LOOM_F32, NULL, &o);
    o = LOOM_CONV2D_OPTS_INIT;
    o.groups = 0;
    expect_refusal(LOOM_ERR_INVALID, "loom_conv2d: groups is 0", x, LOOM_F32, w, LOOM_F32, NULL, &o);
    o = LOOM_CONV2D_OPTS_INIT;
    o.stride[1] = 0;
    expect_refusal(LOOM_ERR_INVALID, "loom_conv2d: stride 1x0: strides must be 1 or more", x, LOOM_F32, w, LOOM_F32, NULL, &o);
    o = LOOM_CONV2D_OPTS_INIT;
    o.dilation[0] = -1;
    expect_refusal(LOOM_ERR_INVALID, "loom_conv2d: dilation -1x1: dilations must be 1 or more", x, LOOM_F32, w, LOOM_F32, NULL, &o);
    o = LOOM_CONV2D_OPTS_INIT;
    o.pad[0] = -1;
    expect_refusal(LOOM_ERR_INVALID, "loom_conv2d: padding -1x0: padding must be 0 or more", x, LOOM_F32, w, LOOM_F32, NULL, &o);
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: b is [5]; expected [6] (one per output channel)", x, LOOM_F32, w, LOOM_F32,
                   &b5, NULL);
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: x must be 4-D [N, C, H, W], got [4, 5, 5]", loom_shape(4, 5, 5), LOOM_F32, w,
                   LOOM_F32, NULL, NULL);
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: w must be 4-D [K, C / groups, R, S], got [6, 4, 3]", x, LOOM_F32,
                   loom_shape(6, 4, 3), LOOM_F32, NULL, NULL);
    expect_refusal(LOOM_ERR_DTYPE, "loom_conv2d: w is f64 but x f32; every operand must be of one float dtype", x, LOOM_F32, w,
                   LOOM_F64, &b6, NULL);
    expect_refusal(LOOM_ERR_DTYPE, "loom_conv2d: x is i32; convolutions take f32 or f64", x, LOOM_I32, w, LOOM_I32, NULL, NULL);
    o = LOOM_CONV2D_OPTS_INIT;
    o.dilation[0] = 1 << 30;
    expect_refusal(LOOM_ERR_SHAPE, "loom_conv2d: kernel 3x3 (dilation 1073741824x1) is larger than the padded input 5x5",
                   x, LOOM_F32, loom_shape(6, 4, 3, 3), LOOM_F32, NULL, &o);

    /* a dynamic dim other than the batch; a NULL x */
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim H = loom_dim_dynamic(g, "H", 8);
    loom_tensor *y = loom_conv2d(g, loom_input(g, "x", LOOM_F32, loom_shape(2, 4, H, 5)), loom_input(g, "w", LOOM_F32, w), NULL, NULL);
    ck_assert(loom_tensor_is_poisoned(y));
    ck_assert_int_eq(loom_graph_status(g), LOOM_ERR_SHAPE);
    lt_expect_error(g, "loom_conv2d: x is [2, 4, H, 5]: only its batch dim (0) may be dynamic");
    lt_case_free(c);
    c = lt_case_new();
    g = lt_graph(c);
    ck_assert(loom_tensor_is_poisoned(loom_conv2d(g, NULL, loom_input(g, "w", LOOM_F32, w), NULL, NULL)));
    lt_expect_error(g, "loom_conv2d: tensor argument 1 is NULL");
    lt_case_free(c);
}
END_TEST

/* The kernels refuse operands that do not agree with the op (a caller that binds the wrong sizes),
 * with the op's name, rather than read past them. */
START_TEST(test_kernel_refuses_mismatch)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(1, 2, 4, 4)), *w = loom_input(g, "w", LOOM_F64, loom_shape(3, 2, 3, 3));
    loom_tensor *y = loom_conv2d(g, x, w, NULL, NULL);
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);
    double xv[32] = {0}, wv[54] = {0}, yv[16];
    const int64_t xs[4] = {1, 2, 4, 4}, ws_bad[4] = {3, 2, 2, 3}, ys[4] = {1, 3, 2, 2};
    loom__value vx = value(LOOM_F64, 4, xs, xv), vw = value(LOOM_F64, 4, ws_bad, wv), vy = value(LOOM_F64, 4, ys, yv);
    loom__value *src[2] = {&vx, &vw};
    char msg[256] = "";
    loom__kctx ctx = {.msg = msg, .msglen = sizeof msg};
    ck_assert_int_eq(loom__op_def(LOOM_OP_CONV2D)->cpu(y, &vy, src, &ctx), LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(msg, "conv2d: x [1, 2, 4, 4] and w [3, 2, 2, 3] make [1, 3, 3, 2], but y is [1, 3, 2, 2]"), "%s", msg);
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_conv");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_random_shapes, 0, 2);
    tcase_add_loop_test(tc, test_larger_shapes, 0, 2);
    tcase_add_test(tc, test_empty_batch);
    tcase_add_loop_test(tc, test_dynamic_batch, 0, 2);
    tcase_add_test(tc, test_bad_calls);
    tcase_add_test(tc, test_kernel_refuses_mismatch);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
