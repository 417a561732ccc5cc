/* log_softmax and softmax cross entropy: forward values against a naive reference (f32, f64,
 * large logits), numerical gradients with and without a mask, empty dynamic batches, bad labels
 * at run time and bad calls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* n values N(0, 1) * scale + shift. */
static double *data(int64_t n, uint64_t seed, double scale, double shift)
{
    double *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    lt_fill_normal(x, n, seed);
    for (int64_t i = 0; i < n; i++)
        x[i] = x[i] * scale + shift;
    return x;
}

/* An input holding x (rounded to f32 in place when dtype is f32, so the reference sees the same). */
static loom_tensor *input(lt_case *c, const char *name, loom_dtype dtype, loom_shape shape, const int64_t *now,
                          double *x)
{
    if (dtype == LOOM_F64)
        return lt_input(c, name, dtype, shape, now, x);
    int64_t k = lt_numel(shape.ndim, now);
    float *f = malloc((size_t)(k ? k : 1) * sizeof *f);
    ck_assert_ptr_nonnull(f);
    for (int64_t i = 0; i < k; i++)
        x[i] = f[i] = (float)x[i];
    loom_tensor *t = lt_input(c, name, dtype, shape, now, f);
    free(f);
    return t;
}

/* log(sum(exp(x))) of a row, the textbook way with the max taken out. */
static double ref_lse(const double *x, int64_t c)
{
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < c; j++)
        m = fmax(m, x[j]);
    for (int64_t j = 0; j < c; j++)
        s += exp(x[j] - m);
    return m + log(s);
}

/* ---- log_softmax ------------------------------------------------------------------------------- */

START_TEST(test_log_softmax_forward)
{
    loom_dtype dtype = _i ? LOOM_F64 : LOOM_F32;
    static const struct {
        int nd;
        int64_t d[3];
        double scale, shift;
    } lc[] = {{2, {3, 5}, 1, 0}, {3, {2, 3, 4}, 2, 0}, {1, {7}, 1, 0}, {2, {4, 1}, 1, 0},
              {2, {3, 6}, 30, 1000} /* large logits: exp would overflow without the max shift */,
              {2, {2, 300}, 1, -500}};
    for (size_t k = 0; k < sizeof lc / sizeof lc[0]; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        int64_t n = lt_numel(lc[k].nd, lc[k].d), C = lc[k].d[lc[k].nd - 1];
        double *x = data(n, 7 + k, lc[k].scale, lc[k].shift), *ref = malloc((size_t)n * sizeof *ref);
        loom_tensor *y = loom_log_softmax(g, input(c, "x", dtype, loom__shape_n(lc[k].nd, lc[k].d), lc[k].d, x));
        ck_assert_int_eq(loom_tensor_ndim(y), lc[k].nd);
        ck_assert_int_eq(loom_tensor_dtype(y), dtype);
        for (int64_t r = 0; r < n / C; r++) {
            double l = ref_lse(x + r * C, C);
            for (int64_t j = 0; j < C; j++)
                ref[r * C + j] = x[r * C + j] - l;
        }
        loom_array out = lt_eval(c, y);
        double *got = lt_to_double(&out);
        for (int64_t i = 0; i < n; i++)
            ck_assert(isfinite(got[i]));
        /* f32: relative to the magnitude of the shifted logits */
        lt_assert_close(got, ref, n, dtype == LOOM_F32 ? 2e-5 * (1 + lc[k].scale) : 1e-12, "loom_log_softmax");
        free(got);
        free(ref);
        free(x);
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_log_softmax_grad)
{
    static const loom_shape shapes[] = {{2, {3, 5}}, {3, {2, 3, 4}}, {2, {4, 1}}, {1, {6}}};
    for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        lt_gradcheck(c, loom_log_softmax(g, lt_param(c, "x", shapes[k])), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* [N, 4] with N = 0 and 3: forward, and the gradient of a parameter through it. */
START_TEST(test_log_softmax_dynamic)
{
    int64_t nnow = _i ? 3 : 0;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    double *x = data(nnow * 4, 2, 1, 0);
    loom_tensor *tx = lt_input(c, "x", LOOM_F64, loom_shape(N, 4), (int64_t[]){nnow, 4}, x);
    loom_array out = lt_eval(c, loom_log_softmax(g, tx));
    ck_assert_int_eq(out.shape[0], nnow);
    for (int64_t r = 0; r < nnow; r++) {
        double l = ref_lse(x + r * 4, 4);
        for (int j = 0; j < 4; j++)
            ck_assert_double_eq_tol(((double *)out.data)[r * 4 + j], x[r * 4 + j] - l, 1e-12);
    }
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    N = loom_dim_dynamic(g, "N", 8);
    tx = lt_input(c, "x", LOOM_F64, loom_shape(N, 4), (int64_t[]){nnow, 4}, x);
    lt_gradcheck(c, loom_log_softmax(g, loom_mul(g, tx, lt_param(c, "p", loom_shape(4)))), 1e-6);
    free(x);
    lt_case_free(c);
}
END_TEST

START_TEST(test_log_softmax_bad)
{
    for (int which = 0; which < 4; which++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *y = NULL;
        const char *what = NULL;
        switch (which) {
        case 0: y = loom_log_softmax(g, NULL), what = "tensor argument 1 is NULL"; break;
        case 1: y = loom_log_softmax(g, loom_input(g, "s", LOOM_F32, loom_shape())), what = "x is a scalar"; break;
        case 2: y = loom_log_softmax(g, loom_input(g, "i", LOOM_I32, loom_shape(2, 3))), what = "x is i32"; break;
        case 3: y = loom_log_softmax(g, loom_input_csr(g, "m", LOOM_F32, 3, 3)), what = "CSR"; break;
        }
        ck_assert(loom_tensor_is_poisoned(y));
        lt_expect_error(g, "loom_log_softmax: ");
        lt_expect_error(g, what);
        loom_graph_free(g);
    }
    ck_assert_ptr_null(loom_log_softmax(NULL, NULL));
}
END_TEST

/* ---- softmax_cross_entropy --------------------------------------------------------------------- */

static double ref_ce(const double *z, const int32_t *labels, const uint8_t *mask, int64_t n, int64_t C)
{
    double s = 0;
    int64_t count = 0;
    for (int64_t r = 0; r < n; r++)
        if (!mask || mask[r]) {
            s += ref_lse(z + r * C, C) - z[r * C + labels[r]];
            count++;
        }
    return count ? s / (double)count : 0;
}

/* _i: f64. No mask, a mask, a mask of all zeros, large logits. */
START_TEST(test_ce_forward)
{
    loom_dtype dtype = _i ? LOOM_F64 : LOOM_F32;
    enum { N = 6, C = 4 };
    int32_t labels[N];
    uint8_t masks[2][N] = {{1, 0, 1, 1, 0, 1}, {0}};
    lt_fill_int(labels, N, C, 3);
    for (int k = 0; k < 4; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        double *z = data(N * C, 11 + (uint64_t)k, k == 3 ? 40 : 1.5, k == 3 ? -300 : 0);
        loom_tensor *tz = input(c, "z", dtype, loom_shape(N, C), (int64_t[]){N, C}, z);
        loom_tensor *tl = lt_input_static(c, "labels", LOOM_I32, loom_shape(N), labels);
        const uint8_t *m = k == 1 ? masks[0] : k == 2 ? masks[1] : NULL;
        loom_tensor *tm = m ? lt_input_static(c, "mask", LOOM_U8, loom_shape(N), m) : NULL;
        loom_tensor *loss = loom_softmax_cross_entropy(g, tz, tl, tm);
        ck_assert_int_eq(loom_tensor_ndim(loss), 0);
        ck_assert_int_eq(loom_tensor_dtype(loss), dtype);
        loom_array out = lt_eval(c, loss);
        double *got = lt_to_double(&out), want = ref_ce(z, labels, m, N, C);
        if (k == 2)
            ck_assert(got[0] == 0);
        lt_assert_close(got, &want, 1, dtype == LOOM_F32 ? 1e-5 * (k == 3 ? 40 : 1) : 1e-13, "loom_softmax_cross_entropy");
        free(got);
        free(z);
        lt_case_free(c);
    }
}
END_TEST

/* _i: 0 no mask, 1 a mask, 2 a mask of all zeros (the gradient is 0). */
START_TEST(test_ce_grad)
{
    enum { N = 5, C = 4 };
    int32_t labels[N];
    uint8_t masks[2][N] = {{0, 1, 1, 0, 1}, {0}};
    lt_fill_int(labels, N, C, 8);
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *z = lt_param(c, "z", loom_shape(N, C));
    loom_tensor *tl = lt_input_static(c, "labels", LOOM_I32, loom_shape(N), labels);
    loom_tensor *tm = _i ? lt_input_static(c, "mask", LOOM_U8, loom_shape(N), masks[_i - 1]) : NULL;
    lt_gradcheck(c, loom_softmax_cross_entropy(g, z, tl, tm), 1e-6);
    lt_case_free(c);
}
END_TEST

/* Logits [N, 3] = x * p with N = 0 (the loss of no rows is 0, and so is its gradient) and N = 4,
 * with and without a mask. _i: 2 * (N = 4) + mask. */
START_TEST(test_ce_dynamic)
{
    int64_t nnow = _i / 2 ? 4 : 0;
    int with_mask = _i % 2;
    int32_t labels[4] = {2, 0, 1, 2};
    uint8_t mask[4] = {1, 0, 0, 1};
    double *x = data(nnow * 3, 5, 1, 0);
    for (int grad = 0; grad < 2; grad++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_dim N = loom_dim_dynamic(g, "N", 8);
        loom_tensor *tx = lt_input(c, "x", LOOM_F64, loom_shape(N, 3), (int64_t[]){nnow, 3}, x);
        loom_tensor *tl = lt_input(c, "labels", LOOM_I32, loom_shape(N), &nnow, labels);
        loom_tensor *tm = with_mask ? lt_input(c, "mask", LOOM_U8, loom_shape(N), &nnow, mask) : NULL;
        if (grad) {
            loom_tensor *p = lt_param(c, "p", loom_shape(3));
            lt_gradcheck(c, loom_softmax_cross_entropy(g, loom_mul(g, tx, p), tl, tm), 1e-6);
        } else {
            loom_array out = lt_eval(c, loom_softmax_cross_entropy(g, tx, tl, tm));
            ck_assert_int_eq(out.ndim, 0);
            double want = ref_ce(x, labels, with_mask ? mask : NULL, nnow, 3);
            ck_assert_double_eq_tol(((double *)out.data)[0], want, 1e-13);
            if (nnow == 0)
                ck_assert(((double *)out.data)[0] == 0);
        }
        lt_case_free(c);
    }
    free(x);
}
END_TEST

/* A label outside [0, C) fails the run with a message naming the row and the label; the labels of
 * rows the mask leaves out are not read. */
START_TEST(test_ce_bad_label_at_run_time)
{
    static const struct {
        int32_t bad;
        int masked, grad;
    } bc[] = {{4, 0, 0}, {-1, 0, 0}, {7, 1, 0}, {4, 0, 1}, {-3, 1, 1}};
    for (size_t k = 0; k < sizeof bc / sizeof bc[0]; k++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *z = loom_param(g, "z", LOOM_F64, loom_shape(3, 4), loom_init_normal(0, 1, 1));
        loom_tensor *l = loom_input(g, "labels", LOOM_I32, loom_shape(3));
        loom_tensor *m = loom_input(g, "mask", LOOM_U8, loom_shape(3));
        loom_tensor *loss = loom_softmax_cross_entropy(g, z, l, m);
        loom_program *p = NULL;
        ck_assert_int_eq(loom_compile(g, bc[k].grad ? loss : NULL, NULL, &p), LOOM_OK);
        int32_t labels[3] = {1, 0, bc[k].bad};
        uint8_t mask[3] = {1, 1, (uint8_t)!bc[k].masked};
        loom_array al = {.dtype = LOOM_I32, .ndim = 1, .shape = {3}, .data = labels};
        loom_array am = {.dtype = LOOM_U8, .ndim = 1, .shape = {3}, .data = mask};
        ck_assert_int_eq(loom_program_feed(p, l, &al), LOOM_OK);
        ck_assert_int_eq(loom_program_feed(p, m, &am), LOOM_OK);
        loom_status s = loom_program_run(p, bc[k].grad ? LOOM_RUN_GRAD : LOOM_RUN_FORWARD);
        if (bc[k].masked) {
            ck_assert_msg(s == LOOM_OK, "%s", loom_program_error(p));
        } else {
            char want[64];
            snprintf(want, sizeof want, "row 2 has label %d, outside [0, 4)", bc[k].bad);
            ck_assert_int_eq(s, LOOM_ERR_INVALID);
            ck_assert_msg(strstr(loom_program_error(p), want), "got '%s'", loom_program_error(p));
            ck_assert_msg(strstr(loom_program_error(p), "softmax_cross_entropy"), "got '%s'", loom_program_error(p));
        }
        loom_program_free(p);
        loom_graph_free(g);
    }
}
END_TEST

START_TEST(test_ce_bad_calls)
{
    for (int which = 0; which < 11; which++) {
        loom_graph *g = loom_graph_new();
        loom_dim N = loom_dim_dynamic(g, "N", 8), M = loom_dim_dynamic(g, "M", 8);
        loom_tensor *z = loom_input(g, "z", LOOM_F32, loom_shape(N, 10));
        loom_tensor *l = loom_input(g, "l", LOOM_I32, loom_shape(N)), *m = NULL;
        const char *what = NULL;
        switch (which) {
        case 0: z = NULL, what = "tensor argument 1 is NULL"; break;
        case 1: l = NULL, what = "tensor argument 2 is NULL"; break;
        case 2: l = loom_input(g, "lf", LOOM_F32, loom_shape(N)), what = "labels are f32; expected dense i32"; break;
        case 3: l = loom_input(g, "l2", LOOM_I32, loom_shape(N, 1)), what = "labels are [N, 1]; expected [N] for logits [N, 10]"; break;
        case 4: l = loom_input(g, "lm", LOOM_I32, loom_shape(M)), what = "labels are [M]; expected [N]"; break;
        case 5: m = loom_input(g, "m", LOOM_I32, loom_shape(N)), what = "mask is i32; expected dense u8"; break;
        case 6: m = loom_input(g, "m", LOOM_U8, loom_shape(3)), what = "mask is [3]; expected [N] for logits [N, 10]"; break;
        case 7: z = loom_input(g, "z3", LOOM_F32, loom_shape(N, 2, 5)), what = "logits are [N, 2, 5]; expected [N, C]"; break;
        case 8: z = loom_input(g, "zi", LOOM_I64, loom_shape(N, 10)), what = "logits are i64"; break;
        case 9: l = loom_input(g, "l64", LOOM_I64, loom_shape(N)), what = "labels are i64"; break;
        case 10: m = loom_input(g, "m", LOOM_U8, loom_shape(N, 1)), what = "mask is [N, 1]"; break;
        }
        loom_tensor *y = loom_softmax_cross_entropy(g, z, l, m);
        ck_assert(loom_tensor_is_poisoned(y));
        lt_expect_error(g, "loom_softmax_cross_entropy: ");
        lt_expect_error(g, what);
        loom_graph_free(g);
    }
    ck_assert_ptr_null(loom_softmax_cross_entropy(NULL, NULL, NULL, NULL));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_softmax");
    TCase *tc = tcase_create("log_softmax");
    tcase_add_loop_test(tc, test_log_softmax_forward, 0, 2);
    tcase_add_test(tc, test_log_softmax_grad);
    tcase_add_loop_test(tc, test_log_softmax_dynamic, 0, 2);
    tcase_add_test(tc, test_log_softmax_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("softmax_cross_entropy");
    tcase_add_loop_test(tc, test_ce_forward, 0, 2);
    tcase_add_loop_test(tc, test_ce_grad, 0, 3);
    tcase_add_loop_test(tc, test_ce_dynamic, 0, 4);
    tcase_add_test(tc, test_ce_bad_label_at_run_time);
    tcase_add_test(tc, test_ce_bad_calls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
