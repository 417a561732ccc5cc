/* Reductions: sum and mean over axis sets (with and without keepdims), expand (their gradient)
 * and loom__sum_to (the gradient of a broadcast). Forward values against a naive reference,
 * numerical gradients, empty dynamic batches and bad calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "graphs/core/op.h" /* loom__sum_to and the internal expand op */

static double *data(int64_t n, uint64_t seed)
{
    double *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    lt_fill_normal(x, n, seed);
    return x;
}

/* An input holding x (rounded to f32 in place when dtype is f32, so the reference sees the same). */
static loom_tensor *input(lt_case *c, const char *name, loom_dtype dtype, int n, const int64_t *d, double *x)
{
    int64_t k = lt_numel(n, d);
    if (dtype == LOOM_F64)
        return lt_input_static(c, name, dtype, loom__shape_n(n, d), x);
    float *f = malloc((size_t)(k ? k : 1) * sizeof *f);
    ck_assert_ptr_nonnull(f);
    for (int64_t i = 0; i < k; i++)
        x[i] = f[i] = (float)x[i];
    loom_tensor *t = lt_input_static(c, name, dtype, loom__shape_n(n, d), f);
    free(f);
    return t;
}

/* The naive reference: every element of x added to the output element its kept indices name.
 * Returns the output's element count. */
static int64_t ref_reduce(const double *x, int nd, const int64_t *xs, uint32_t mask, int mean, double *y)
{
    int64_t n = lt_numel(nd, xs), nout = 1, count = 1;
    for (int i = 0; i < nd; i++)
        if (mask >> i & 1)
            count *= xs[i];
        else
            nout *= xs[i];
    for (int64_t o = 0; o < nout; o++)
        y[o] = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t idx[LOOM_MAX_DIMS], r = k, o = 0;
        for (int i = nd - 1; i >= 0; i--) {
            idx[i] = r % xs[i];
            r /= xs[i];
        }
        for (int i = 0; i < nd; i++)
            if (!(mask >> i & 1))
                o = o * xs[i] + idx[i];
        y[o] += x[k];
    }
    for (int64_t o = 0; mean && o < nout; o++)
        y[o] = count ? y[o] / (double)count : 0;
    return nout;
}

typedef struct rcase {
    int nd;
    int64_t d[LOOM_MAX_DIMS];
} rcase;

static const rcase shapes[] = {
    {0, {0}},          {1, {5}},          {2, {3, 4}},          {3, {2, 3, 4}},
    {3, {1, 5, 1}},    {3, {3, 1, 2}},    {4, {2, 1, 3, 2}},    {6, {2, 1, 2, 3, 1, 2}},
    {2, {41, 13}}, /* long enough rows for the inner loops to matter */
    {2, {5, 150}},     {3, {3, 2, 70}}, /* kept rows longer than the kernel's block of outputs */
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0] };

/* _i: 2 * mean + f64. Every axis subset of each shape, keepdims on and off, and LOOM_ALL_AXES. */
START_TEST(test_forward)
{
    int mean = _i / 2;
    loom_dtype dtype = _i % 2 ? LOOM_F64 : LOOM_F32;
    const char *api = mean ? "loom_mean" : "loom_sum";
    for (int k = 0; k < NSHAPES; k++) {
        const rcase *sc = &shapes[k];
        int64_t n = lt_numel(sc->nd, sc->d);
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        double *x = data(n, 10 + (uint64_t)k), *ref = malloc((size_t)(n ? n : 1) * sizeof *ref);
        loom_tensor *tx = input(c, "x", dtype, sc->nd, sc->d, x);
        /* build every reduction first: the program is compiled at the first evaluation */
        uint32_t nmasks = UINT32_C(1) << sc->nd;
        loom_tensor *y[2 * (1 << LOOM_MAX_DIMS) + 2];
        for (uint32_t m = 0; m <= nmasks; m++)
            for (int keep = 0; keep < 2; keep++) {
                uint32_t mask = m == nmasks ? LOOM_ALL_AXES : m;
                y[2 * m + keep] = mean ? loom_mean(g, tx, mask, keep) : loom_sum(g, tx, mask, keep);
            }
        for (uint32_t m = 0; m <= nmasks; m++) {
            uint32_t eff = m == nmasks ? nmasks - 1 : m;
            for (int keep = 0; keep < 2; keep++) {
                loom_tensor *t = y[2 * m + keep];
                ck_assert_msg(!loom_tensor_is_poisoned(t), "%s", loom_graph_error(g));
                ck_assert_int_eq(loom_tensor_dtype(t), dtype);
                int yn = 0;
                for (int i = 0; i < sc->nd; i++)
                    if (!(eff >> i & 1) || keep)
                        ck_assert_int_eq(loom_tensor_dim(t, yn++), eff >> i & 1 ? 1 : sc->d[i]);
                ck_assert_int_eq(loom_tensor_ndim(t), yn);
                loom_array out = lt_eval(c, t);
                ck_assert_int_eq(out.ndim, yn);
                int64_t nout = ref_reduce(x, sc->nd, sc->d, eff, mean, ref);
                ck_assert_int_eq(loom_array_numel(&out), nout);
                double *got = lt_to_double(&out);
                lt_assert_close(got, ref, nout, dtype == LOOM_F32 ? 1e-5 : 1e-13, api);
                free(got);
            }
        }
        free(x);
        free(ref);
        lt_case_free(c);
    }
}
END_TEST

typedef struct gcase {
    rcase x;
    uint32_t mask;
    int keep, mean;
} gcase;

START_TEST(test_grad)
{
    static const gcase gc[] = {
        {{3, {2, 3, 4}}, LOOM_AXIS(0) | LOOM_AXIS(2), 0, 0}, /* several axes */
        {{3, {2, 3, 4}}, LOOM_AXIS(1), 1, 0},                /* keepdims */
        {{3, {2, 3, 4}}, LOOM_AXIS(1), 0, 1},
        {{3, {2, 3, 4}}, LOOM_AXIS(0) | LOOM_AXIS(2), 1, 1},
        {{2, {2, 3}}, LOOM_ALL_AXES, 0, 0},
        {{2, {2, 3}}, LOOM_ALL_AXES, 1, 1},
        {{2, {2, 3}}, 0, 0, 1},                      /* nothing reduced */
        {{3, {3, 1, 4}}, LOOM_AXIS(1), 0, 0},        /* a size-1 axis */
        {{3, {3, 1, 4}}, LOOM_AXIS(0) | LOOM_AXIS(1), 0, 1},
        {{0, {0}}, LOOM_ALL_AXES, 0, 1},             /* a scalar */
        {{4, {2, 3, 1, 2}}, LOOM_AXIS(1) | LOOM_AXIS(3), 0, 1},
    };
    for (size_t k = 0; k < sizeof gc / sizeof gc[0]; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *p = lt_param(c, "p", loom__shape_n(gc[k].x.nd, gc[k].x.d));
        loom_tensor *y = gc[k].mean ? loom_mean(g, p, gc[k].mask, gc[k].keep) : loom_sum(g, p, gc[k].mask, gc[k].keep);
        lt_gradcheck(c, y, 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* [N, 3] with N dynamic: N = 0 (empty: sums are 0, means 0 rather than NaN) and N = 5 of 8. */
START_TEST(test_dynamic_batch)
{
    int64_t nnow = _i ? 5 : 0;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    double *xd = data(nnow * 3, 3), ref[24];
    int64_t xs[2] = {nnow, 3};
    loom_tensor *x = lt_input(c, "x", LOOM_F64, loom_shape(N, 3), xs, xd);
    static const struct {
        uint32_t mask;
        int keep, mean;
    } rc[] = {{LOOM_AXIS(0), 0, 0}, {LOOM_AXIS(0), 0, 1}, {LOOM_AXIS(0), 1, 1}, {LOOM_ALL_AXES, 0, 1},
              {LOOM_ALL_AXES, 0, 0}, {LOOM_AXIS(1), 0, 1}, {LOOM_AXIS(1), 1, 0}};
    enum { NR = sizeof rc / sizeof rc[0] };
    loom_tensor *y[NR];
    for (size_t k = 0; k < NR; k++) {
        y[k] = rc[k].mean ? loom_mean(g, x, rc[k].mask, rc[k].keep) : loom_sum(g, x, rc[k].mask, rc[k].keep);
        if (rc[k].mask == LOOM_AXIS(1))
            ck_assert(loom_tensor_dim(y[k], 0) == N);
    }
    for (size_t k = 0; k < NR; k++) {
        loom_array out = lt_eval(c, y[k]);
        uint32_t eff = rc[k].mask == LOOM_ALL_AXES ? 3 : rc[k].mask;
        int64_t nout = ref_reduce(xd, 2, xs, eff, rc[k].mean, ref);
        ck_assert_int_eq(loom_array_numel(&out), nout);
        double *got = lt_to_double(&out);
        for (int64_t i = 0; i < nout; i++)
            ck_assert(!isnan(got[i]));
        lt_assert_close(got, ref, nout, 1e-14, rc[k].mean ? "loom_mean" : "loom_sum");
        free(got);
    }
    free(xd);
    lt_case_free(c);
}
END_TEST

/* Gradients through a dynamic batch: mean over N divides by the run-time N (expand's scaled
 * form), and the broadcast of p over N is undone by loom__sum_to. Also with N = 0. */
START_TEST(test_dynamic_grad)
{
    int64_t nnow = _i % 2 ? 5 : 0;
    int kind = _i / 2;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    double *xd = data(nnow * 3, 4);
    loom_tensor *x = lt_input(c, "x", LOOM_F64, loom_shape(N, 3), (int64_t[]){nnow, 3}, xd);
    loom_tensor *p = lt_param(c, "p", loom_shape(3));
    loom_tensor *y = kind == 0   ? loom_mean(g, loom_mul(g, x, p), LOOM_AXIS(0), 0)
                     : kind == 1 ? loom_mean(g, loom_add(g, x, p), LOOM_ALL_AXES, 1)
                                 : loom_sum(g, loom_mul(g, x, p), LOOM_AXIS(1), 1);
    lt_gradcheck(c, y, 1e-6);
    free(xd);
    lt_case_free(c);
}
END_TEST

/* ---- loom__sum_to ------------------------------------------------------------------------------ */

START_TEST(test_sum_to)
{
    static const struct {
        rcase x, target;
    } sc[] = {
        {{3, {2, 3, 4}}, {2, {1, 4}}}, {{3, {2, 3, 4}}, {2, {3, 1}}}, {{3, {2, 3, 4}}, {1, {4}}},
        {{2, {2, 3}}, {0, {0}}},       {{3, {2, 3, 4}}, {3, {1, 3, 1}}}, {{2, {3, 1}}, {2, {1, 1}}},
    };
    for (size_t k = 0; k < sizeof sc / sizeof sc[0]; k++) {
        /* forward: the reference sums the leading axes and the stretched ones */
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        int64_t n = lt_numel(sc[k].x.nd, sc[k].x.d);
        double *x = data(n, 40 + k), ref[64];
        loom_tensor *tx = input(c, "x", LOOM_F64, sc[k].x.nd, sc[k].x.d, x);
        loom_shape target = loom__shape_n(sc[k].target.nd, sc[k].target.d);
        loom_tensor *y = loom__sum_to(g, tx, &target);
        ck_assert_int_eq(loom_tensor_ndim(y), target.ndim);
        for (int i = 0; i < target.ndim; i++)
            ck_assert_int_eq(loom_tensor_dim(y, i), target.d[i]);
        int lead = sc[k].x.nd - target.ndim;
        uint32_t mask = 0;
        for (int i = 0; i < sc[k].x.nd; i++)
            if (i < lead || (target.d[i - lead] == 1 && sc[k].x.d[i] != 1))
                mask |= UINT32_C(1) << i;
        int64_t nout = ref_reduce(x, sc[k].x.nd, sc[k].x.d, mask, 0, ref);
        loom_array out = lt_eval(c, y);
        ck_assert_int_eq(loom_array_numel(&out), nout);
        lt_assert_close(out.data, ref, nout, 1e-14, "loom__sum_to");
        free(x);
        lt_case_free(c);

        c = lt_case_new();
        g = lt_graph(c);
        loom_tensor *p = lt_param(c, "p", loom__shape_n(sc[k].x.nd, sc[k].x.d));
        lt_gradcheck(c, loom__sum_to(g, p, &target), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_sum_to_identity_and_bad)
{
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(N, 3));
    loom_shape same = loom_shape(N, 3), row = loom_shape(1, 3), col = loom_shape(3);
    ck_assert_ptr_eq(loom__sum_to(g, x, &same), x);
    ck_assert(loom_tensor_dim(loom__sum_to(g, x, &row), 0) == 1);
    ck_assert_int_eq(loom_tensor_ndim(loom__sum_to(g, x, &col)), 1);
    ck_assert_ptr_null(loom_graph_error(g));
    loom_shape bad = loom_shape(4);
    ck_assert(loom_tensor_is_poisoned(loom__sum_to(g, x, &bad)));
    lt_expect_error(g, "loom__sum_to: [4] does not broadcast to [N, 3]");
    loom_graph_free(g);
}
END_TEST

/* ---- expand ------------------------------------------------------------------------------------ */

static loom_tensor *expand(loom_graph *g, loom_tensor *x, loom_tensor *like, int scaled)
{
    loom__attrs a = {.i = {scaled}};
    return loom__node(g, "expand", LOOM_OP_EXPAND, 2, (loom_tensor *[]){x, like}, &a);
}

/* _i: 2 * scaled + f64. [3, 1] and [1] expanded to [2, 3, 4]. */
START_TEST(test_expand_forward)
{
    int scaled = _i / 2;
    loom_dtype dtype = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    double *x = data(3, 5), one[1] = {1.75};
    loom_tensor *tx = input(c, "x", dtype, 2, (int64_t[]){3, 1}, x);
    loom_tensor *t1 = input(c, "one", dtype, 1, (int64_t[]){1}, one);
    loom_tensor *likef = lt_input_static(c, "like", LOOM_U8, loom_shape(2, 3, 4), NULL); /* any dtype: not read */
    loom_tensor *y = expand(g, tx, likef, scaled), *y1 = expand(g, t1, likef, scaled);
    ck_assert_int_eq(loom_tensor_ndim(y), 3);
    double got[24];
    loom_array out = lt_eval(c, y);
    double *d = lt_to_double(&out);
    for (int i = 0; i < 24; i++)
        got[i] = x[(i / 4) % 3] / (scaled ? 8.0 : 1.0);
    lt_assert_close(d, got, 24, 1e-6, "expand");
    free(d);
    out = lt_eval(c, y1);
    d = lt_to_double(&out);
    for (int i = 0; i < 24; i++)
        got[i] = one[0] / (scaled ? 24.0 : 1.0);
    lt_assert_close(d, got, 24, 1e-6, "expand");
    free(d);
    free(x);
    lt_case_free(c);
}
END_TEST

/* Expand's own gradient: the sum (or, scaled, the mean) over the stretched axes. */
START_TEST(test_expand_grad)
{
    for (int scaled = 0; scaled < 2; scaled++)
        for (int k = 0; k < 2; k++) {
            lt_case *c = lt_case_new();
            loom_graph *g = lt_graph(c);
            loom_tensor *like = lt_input_static(c, "like", LOOM_F64, loom_shape(2, 3, 4), NULL);
            loom_tensor *p = lt_param(c, "p", k ? loom_shape(3, 1) : loom_shape(2, 1, 4));
            lt_gradcheck(c, expand(g, p, like, scaled), 1e-6);
            lt_case_free(c);
        }
}
END_TEST

START_TEST(test_expand_empty_and_bad)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *like = lt_input(c, "like", LOOM_F64, loom_shape(N, 3), (int64_t[]){0, 3}, NULL);
    loom_tensor *x = lt_input_static(c, "x", LOOM_F64, loom_shape(1, 3), (double[]){1, 2, 3});
    loom_array out = lt_eval(c, expand(g, x, like, 1));
    ck_assert_int_eq(out.shape[0], 0);
    lt_case_free(c);

    g = loom_graph_new();
    ck_assert(loom_tensor_is_poisoned(
        expand(g, loom_input(g, "a", LOOM_F64, loom_shape(3)), loom_input(g, "b", LOOM_F64, loom_shape(4)), 0)));
    lt_expect_error(g, "[3] does not broadcast to [4]");
    loom_graph_free(g);
}
END_TEST

/* ---- bad calls --------------------------------------------------------------------------------- */

START_TEST(test_bad_calls)
{
    for (int mean = 0; mean < 2; mean++)
        for (int which = 0; which < 6; which++) {
            loom_graph *g = loom_graph_new();
            loom_dim N = loom_dim_dynamic(g, "N", 8);
            loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 16));
            loom_tensor *arg = x;
            uint32_t mask = LOOM_AXIS(0);
            const char *what = NULL;
            switch (which) {
            case 0: arg = NULL, what = "tensor argument 1 is NULL"; break;
            case 1: mask = LOOM_AXIS(3), what = "axis 3 out of range for [N, 16]"; break;
            case 2: mask = LOOM_AXIS(0) | LOOM_AXIS(2), what = "axis 2 out of range for [N, 16]"; break;
            case 3: arg = loom_input(g, "i", LOOM_I32, loom_shape(4)), what = "i32"; break;
            case 4: arg = loom_input_csr(g, "m", LOOM_F32, N, 16), what = "CSR"; break;
            case 5: arg = loom_input(g, "s", LOOM_F32, loom_shape()), mask = LOOM_AXIS(0), what = "axis 0 out of range for []";
                break;
            }
            loom_tensor *y = mean ? loom_mean(g, arg, mask, 0) : loom_sum(g, arg, mask, 1);
            ck_assert(loom_tensor_is_poisoned(y));
            lt_expect_error(g, mean ? "loom_mean: " : "loom_sum: ");
            lt_expect_error(g, what);
            ck_assert(loom_tensor_is_poisoned(loom_sum(g, y, LOOM_ALL_AXES, 0)));
            lt_expect_error(g, what); /* the first error is kept */
            loom_graph_free(g);
        }
    ck_assert_ptr_null(loom_sum(NULL, NULL, LOOM_ALL_AXES, 0));
    ck_assert_ptr_null(loom_mean(NULL, NULL, LOOM_ALL_AXES, 0));
    /* LOOM_ALL_AXES of a scalar is the scalar; bits beyond the rank are ignored only for it */
    loom_graph *g = loom_graph_new();
    loom_tensor *s = loom_sum(g, loom_input(g, "s", LOOM_F64, loom_shape()), LOOM_ALL_AXES, 1);
    ck_assert_int_eq(loom_tensor_ndim(s), 0);
    ck_assert_ptr_null(loom_graph_error(g));
    loom_graph_free(g);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_reduce");
    TCase *tc = tcase_create("reduce");
    tcase_add_loop_test(tc, test_forward, 0, 4);
    tcase_add_test(tc, test_grad);
    tcase_add_loop_test(tc, test_dynamic_batch, 0, 2);
    tcase_add_loop_test(tc, test_dynamic_grad, 0, 6);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);

    tc = tcase_create("sum_to");
    tcase_add_test(tc, test_sum_to);
    tcase_add_test(tc, test_sum_to_identity_and_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("expand");
    tcase_add_loop_test(tc, test_expand_forward, 0, 4);
    tcase_add_test(tc, test_expand_grad);
    tcase_add_test(tc, test_expand_empty_and_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
