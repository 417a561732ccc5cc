/* Pooling: max_pool2d and avg_pool2d against a naive reference (values and gradients, f32 and f64)
 * over kernels 1 to 3, strides 1 to 3, pads 0 and 1, on odd sizes; the max's gradient on ties (the
 * first max in window order); global average pooling and flatten; the same on a batch split over
 * devices; and the bad calls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { N = 2, C = 3, H = 5, W = 7, NX = N * C * H * W };

typedef struct win {
    int kh, kw, sh, sw, ph, pw;
} win;

static int64_t out_size(int n, int k, int s, int p) { return (n + 2 * p - k) / s + 1; }

/* y and, for the loss sum(y * r), gx: the naive forward and backward of one pooling over x
 * [N, C, H, W]; the max's gradient goes to the first max in row-major window order. */
static void naive(const win *w, int max, const double *x, const double *r, double *y, double *gx)
{
    const int64_t P = out_size(H, w->kh, w->sh, w->ph), Q = out_size(W, w->kw, w->sw, w->pw);
    memset(gx, 0, NX * sizeof *gx);
    for (int64_t pl = 0; pl < N * C; pl++)
        for (int64_t p = 0; p < P; p++)
            for (int64_t q = 0; q < Q; q++) {
                double acc = 0, m = -INFINITY;
                int64_t at = -1;
                for (int64_t i = p * w->sh - w->ph; i < p * w->sh - w->ph + w->kh; i++)
                    for (int64_t j = q * w->sw - w->pw; j < q * w->sw - w->pw + w->kw; j++) {
                        if (i < 0 || i >= H || j < 0 || j >= W)
                            continue; /* padding: 0 in the average, never the max */
                        const int64_t e = (pl * H + i) * W + j;
                        acc += x[e];
                        if (x[e] > m)
                            m = x[e], at = e;
                    }
                const int64_t o = (pl * P + p) * Q + q;
                y[o] = max ? m : acc / (w->kh * w->kw);
                for (int64_t i = p * w->sh - w->ph; i < p * w->sh - w->ph + w->kh; i++)
                    for (int64_t j = q * w->sw - w->pw; j < q * w->sw - w->pw + w->kw; j++) {
                        const int64_t e = (pl * H + i) * W + j;
                        if (i >= 0 && i < H && j >= 0 && j < W && (max ? e == at : 1))
                            gx[e] += max ? r[o] : r[o] / (w->kh * w->kw);
                    }
            }
}

/* Runs one pooling of x (a parameter fed with xv) in dtype, with loss sum(y * r); y and x's
 * gradient against the naive ones. */
static void check(const win *w, int max, loom_dtype dt, const double *xv)
{
    const int64_t P = out_size(H, w->kh, w->sh, w->ph), Q = out_size(W, w->kw, w->sw, w->pw), ny = N * C * P * Q;
    double *x = malloc(NX * sizeof *x), *r = malloc((size_t)ny * sizeof *r), *y = malloc((size_t)ny * sizeof *y);
    double *gx = malloc(NX * sizeof *gx);
    float *f = malloc(NX * sizeof *f), *rf = malloc((size_t)ny * sizeof *rf);
    memcpy(x, xv, NX * sizeof *x);
    lt_as_dtype(x, f, NX, dt == LOOM_F32);
    lt_fill_normal(r, ny, 99);
    lt_as_dtype(r, rf, ny, dt == LOOM_F32);
    naive(w, max, x, r, y, gx);

    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *xt = loom_param(g, "x", dt, loom_shape(N, C, H, W), loom_init_zeros());
    loom_tensor *rt = lt_input_static(c, "r", dt, loom_shape(N, C, P, Q), dt == LOOM_F64 ? (void *)r : (void *)rf);
    const loom_pool2d_opts o = {.kernel = {w->kh, w->kw}, .stride = {w->sh, w->sw}, .pad = {w->ph, w->pw}};
    loom_tensor *yt = max ? loom_max_pool2d(g, xt, &o) : loom_avg_pool2d(g, xt, &o);
    loom_tensor *loss = loom_sum(g, loom_mul(g, yt, rt), LOOM_ALL_AXES, 0);
    loom_program *p = lt_compile(c, loss, NULL);
    ck_assert_int_eq(loom_program_keep(p, yt), LOOM_OK);
    loom_array xa;
    ck_assert_int_eq(loom_program_fetch(p, xt, &xa), LOOM_OK);
    memcpy(xa.data, dt == LOOM_F64 ? (void *)x : (void *)f, NX * loom_dtype_size(dt));
    ck_assert_msg(loom_program_run(p, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(p));

    char what[160];
    snprintf(what, sizeof what, "%s %s kernel %dx%d stride %dx%d pad %dx%d", max ? "max_pool2d" : "avg_pool2d",
             loom_dtype_name(dt), w->kh, w->kw, w->sh, w->sw, w->ph, w->pw);
    const double tol = dt == LOOM_F64 ? 1e-14 : 1e-6;
    loom_array ya, ga;
    ck_assert_int_eq(loom_program_fetch(p, yt, &ya), LOOM_OK);
    ck_assert_msg(ya.ndim == 4 && ya.shape[2] == P && ya.shape[3] == Q, "%s: output [.., %lld, %lld]", what,
                  (long long)ya.shape[2], (long long)ya.shape[3]);
    double *got = lt_to_double(&ya);
    lt_assert_close(got, y, ny, tol, what);
    free(got);
    ck_assert_int_eq(loom_program_fetch(p, loom_program_grad(p, xt), &ga), LOOM_OK);
    got = lt_to_double(&ga);
    strcat(what, " (gradient)");
    lt_assert_close(got, gx, NX, tol, what);
    free(got);
    lt_case_free(c);
    free(x), free(r), free(y), free(gx), free(f), free(rf);
}

/* _i: max (1) or avg (0) x f64 (2) x f32. Every window of kernels 1 to 3, strides 1 to 3 and pads
 * 0 and 1 (where PyTorch allows them: at most half the kernel). */
START_TEST(test_against_naive)
{
    const int max = _i & 1;
    const loom_dtype dt = _i & 2 ? LOOM_F64 : LOOM_F32;
    double x[NX];
    lt_fill_normal(x, NX, 5);
    int n = 0;
    for (int kh = 1; kh <= 3; kh++)
        for (int kw = 1; kw <= 3; kw++)
            for (int s = 1; s <= 3; s++)
                for (int pad = 0; pad <= 1; pad++) {
                    const win w = {kh, kw, s, 4 - s, pad <= kh / 2 ? pad : 0, pad <= kw / 2 ? pad : 0};
                    check(&w, max, dt, x);
                    n++;
                }
    ck_assert_int_eq(n, 54);
}
END_TEST

/* Ties: on a constant x every max is a tie; each output's gradient goes to its window's first
 * element (padding left out), so overlapping windows pile up on the shared first elements. */
START_TEST(test_max_ties_go_to_the_first)
{
    double x[NX];
    for (int i = 0; i < NX; i++)
        x[i] = 0.5;
    const win ws[] = {{2, 2, 1, 1, 0, 0}, {3, 3, 2, 2, 1, 1}, {3, 2, 1, 2, 1, 0}};
    for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++) {
        check(&ws[k], 1, LOOM_F64, x);
        check(&ws[k], 1, LOOM_F32, x);
    }
    /* integer values: ties between some elements of a window, not all */
    for (int i = 0; i < NX; i++)
        x[i] = (double)((i * 7) % 4);
    for (size_t k = 0; k < sizeof ws / sizeof ws[0]; k++)
        check(&ws[k], 1, LOOM_F64, x);
}
END_TEST

/* global_avg_pool is the mean over H and W; flatten a reshape to [N, C H W]. */
START_TEST(test_global_avg_pool_and_flatten)
{
    double x[NX];
    lt_fill_normal(x, NX, 8);
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *xt = lt_input_static(c, "x", LOOM_F64, loom_shape(N, C, H, W), x);
    loom_tensor *m = loom_global_avg_pool(g, xt), *f = loom_flatten(g, xt);
    ck_assert_int_eq(loom_tensor_ndim(m), 2);
    ck_assert_int_eq(loom_tensor_dim(f, 1), C * H * W);
    loom_array a = lt_eval(c, m);
    ck_assert_int_eq(a.shape[0], N);
    ck_assert_int_eq(a.shape[1], C);
    for (int pl = 0; pl < N * C; pl++) {
        double s = 0;
        for (int e = 0; e < H * W; e++)
            s += x[pl * H * W + e];
        ck_assert_double_eq_tol(((double *)a.data)[pl], s / (H * W), 1e-14);
    }
    a = lt_eval(c, f);
    ck_assert_int_eq(a.shape[0], N);
    ck_assert_int_eq(a.shape[1], C * H * W);
    ck_assert_int_eq(memcmp(a.data, x, sizeof x), 0);
    lt_case_free(c);
}
END_TEST

/* A net of every pooling op over a dynamic batch N, trained two steps on cpu:0-2 (the batch split
 * S(0), 5 rows over 3 devices) and on one device: the same losses and parameters. */
static void pool_net(const char *placement, double *losses, double *w_out)
{
    enum { B = 5 };
    double x[B * C * H * W];
    lt_fill_normal(x, B * C * H * W, 21);
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    if (placement) {
        loom_error err = {0};
        loom_placement *pl = loom_placement_parse(placement, &err);
        ck_assert_msg(pl != NULL, "%s", err.msg);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    loom_dim n = loom_dim_dynamic(g, "N", 8);
    loom_tensor *xt = lt_input(c, "x", LOOM_F64, loom_shape(n, C, H, W), (int64_t[]){B, C, H, W}, x);
    loom_tensor *w = loom_param(g, "w", LOOM_F64, loom_shape(C * 2 * 2, 2), loom_init_normal(0, 1, 3));
    const loom_pool2d_opts o = {.kernel = {3, 3}, .stride = {1, 2}, .pad = {1, 1}};
    loom_tensor *h = loom_avg_pool2d(g, loom_max_pool2d(g, xt, &o), NULL);
    loom_tensor *y = loom_add(g, loom_matmul(g, loom_flatten(g, h), w), loom_global_avg_pool(g, loom_slice(g, h, 1, 0, 2)));
    loom_tensor *loss = loom_sum(g, loom_mul(g, y, y), LOOM_ALL_AXES, 0);
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_sgd(0.01);
    loom_program *p = lt_compile(c, loss, &opts);
    for (int s = 0; s < 2; s++)
        ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
    int64_t nl;
    const double *l = loom_program_losses(p, &nl);
    ck_assert_int_eq(nl, 2);
    memcpy(losses, l, 2 * sizeof *l);
    loom_array wa;
    ck_assert_int_eq(loom_program_fetch(p, w, &wa), LOOM_OK);
    memcpy(w_out, wa.data, C * 2 * 2 * 2 * sizeof *w_out);
    lt_case_free(c);
}

START_TEST(test_split_batch)
{
    double l1[2], lk[2], w1[24], wk[24];
    pool_net(NULL, l1, w1);
    pool_net("cpu:0-2", lk, wk);
    lt_assert_close(lk, l1, 2, 1e-12, "losses on cpu:0-2");
    lt_assert_close(wk, w1, 24, 1e-12, "w on cpu:0-2");
}
END_TEST

static void pool_3d(loom_graph *g) { loom_avg_pool2d(g, loom_input(g, "x", LOOM_F32, loom_shape(N, C, H)), NULL); }
static void pool_dynamic_h(loom_graph *g)
{
    loom_avg_pool2d(g, loom_input(g, "x", LOOM_F32, loom_shape(N, C, loom_dim_dynamic(g, "S", 9), W)), NULL);
}
static void pool_i32(loom_graph *g) { loom_max_pool2d(g, loom_input(g, "x", LOOM_I32, loom_shape(N, C, H, W)), NULL); }
static void global_2d(loom_graph *g) { loom_global_avg_pool(g, loom_input(g, "x", LOOM_F32, loom_shape(N, C))); }
static void flatten_dynamic(loom_graph *g)
{
    loom_flatten(g, loom_input(g, "x", LOOM_F32, loom_shape(N, loom_dim_dynamic(g, "S", 9))));
}
static void flatten_null(loom_graph *g) { loom_flatten(g, NULL); }

static const struct {
    void (*build)(loom_graph *g);
    loom_status s;
    const char *msg;
} refusals[] = {
    {pool_3d, LOOM_ERR_SHAPE, "loom_avg_pool2d: x is [2, 3, 5]; pooling takes [N, C, H, W]"},
    {pool_dynamic_h, LOOM_ERR_SHAPE, "loom_avg_pool2d: x is [2, 3, S, 7]; H and W (axes 2 and 3) must be static"},
    {pool_i32, LOOM_ERR_DTYPE, "loom_max_pool2d: x is i32; pooling takes f32 or f64"},
    {global_2d, LOOM_ERR_SHAPE, "loom_global_avg_pool: x is [2, 3]; it takes [N, C, H, W]"},
    {flatten_dynamic, LOOM_ERR_SHAPE, "loom_flatten: x is [2, S]; the dims after the first must be static"},
    {flatten_null, LOOM_ERR_INVALID, "loom_flatten: tensor argument 1 is NULL"},
};

/* Every refusal names the builder, with its status. */
START_TEST(test_bad_calls)
{
    static const struct {
        int kh, kw, sh, sw, ph, pw;
        loom_status s;
        const char *msg;
    } bad[] = {
        {6, 2, 1, 1, 0, 0, LOOM_ERR_SHAPE, "loom_max_pool2d: kernel 6 along H is larger than the padded input (5 + 2 x 0)"},
        {3, 8, 1, 1, 1, 0, LOOM_ERR_SHAPE, "kernel 8 along W is larger than the padded input (7 + 2 x 0)"},
        {3, 3, 1, 1, 2, 0, LOOM_ERR_INVALID, "loom_max_pool2d: pad 2 along H must be in [0, 1], half the kernel 3"},
        {2, 2, 1, 1, 0, -1, LOOM_ERR_INVALID, "pad -1 along W must be in [0, 1]"},
        {0, 2, 1, 1, 0, 0, LOOM_ERR_INVALID, "loom_max_pool2d: kernel 0x2 and stride 1x1 must be positive"},
        {2, 2, 1, 0, 0, 0, LOOM_ERR_INVALID, "kernel 2x2 and stride 1x0 must be positive"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        const loom_pool2d_opts o = {{bad[k].kh, bad[k].kw}, {bad[k].sh, bad[k].sw}, {bad[k].ph, bad[k].pw}};
        loom_max_pool2d(g, loom_input(g, "x", LOOM_F32, loom_shape(N, C, H, W)), &o);
        ck_assert_int_eq(loom_graph_status(g), bad[k].s);
        lt_expect_error(g, bad[k].msg);
        lt_case_free(c);
    }
    for (size_t k = 0; k < sizeof refusals / sizeof refusals[0]; k++) {
        lt_case *c = lt_case_new();
        refusals[k].build(lt_graph(c));
        ck_assert_int_eq(loom_graph_status(lt_graph(c)), refusals[k].s);
        lt_expect_error(lt_graph(c), refusals[k].msg);
        lt_case_free(c);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_pool");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_against_naive, 0, 4);
    tcase_add_test(tc, test_max_ties_go_to_the_first);
    tcase_add_test(tc, test_global_avg_pool_and_flatten);
    tcase_add_test(tc, test_split_batch);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
