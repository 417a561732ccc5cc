/* Dropout: values and drop rate in training, identity in evaluation, masks fixed by (seed, tensor,
 * step), the backward pass reusing the forward mask, numerical gradients, awkward shapes and bad
 * calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { R = 100, C = 100, NX = R * C };

/* x [R, C], N(0, 1) but never 0 (so a 0 in the output is a dropped element), rounded to the dtype. */
static loom_tensor *input(lt_case *c, loom_dtype dtype, double *x, uint64_t seed)
{
    lt_fill_normal(x, NX, seed);
    for (int i = 0; i < NX; i++)
        if (fabs(x[i]) < 1e-3)
            x[i] = 1.0;
    if (dtype == LOOM_F64)
        return lt_input_static(c, "x", dtype, loom_shape(R, C), x);
    float *f = malloc(NX * sizeof *f);
    for (int i = 0; i < NX; i++)
        x[i] = f[i] = (float)x[i];
    loom_tensor *t = lt_input_static(c, "x", dtype, loom_shape(R, C), f);
    free(f);
    return t;
}

/* _i: p index * 2 + (f64). Every element is 0 or x / (1 - p), and about p of them are 0. */
START_TEST(test_training_values)
{
    static const double ps[] = {0.1, 0.5, 0.9};
    double p = ps[_i / 2];
    loom_dtype dtype = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph_set_seed(lt_graph(c), 7);
    double *x = malloc(NX * sizeof *x);
    loom_tensor *y = loom_dropout(lt_graph(c), input(c, dtype, x, 3), p);
    ck_assert_int_eq(loom_tensor_dtype(y), dtype);
    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.dtype, dtype);
    ck_assert_int_eq(out.ndim, 2);
    ck_assert_int_eq(out.shape[0], R);
    ck_assert_int_eq(out.shape[1], C);
    double *o = lt_to_double(&out);
    int dropped = 0;
    for (int i = 0; i < NX; i++) {
        if (o[i] == 0) {
            dropped++;
            continue;
        }
        double e = x[i] / (1 - p);
        ck_assert_msg(fabs(o[i] - e) <= (dtype == LOOM_F32 ? 1e-6 : 1e-15) * fmax(1, fabs(e)),
                      "element %d: %g, expected 0 or %g", i, o[i], e);
    }
    /* binomial: the standard deviation of the rate is at most 0.005 here */
    double rate = (double)dropped / NX;
    ck_assert_msg(fabs(rate - p) < 0.025, "dropped %.4f of the elements with p = %g", rate, p);
    free(o);
    free(x);
    lt_case_free(c);
}
END_TEST

/* Masks of one run, as 0/1 per element: out != 0. */
static void mask_of(lt_case *c, loom_tensor *y, uint8_t *m)
{
    loom_array out = lt_eval(c, y);
    double *o = lt_to_double(&out);
    for (int i = 0; i < NX; i++)
        m[i] = o[i] != 0;
    free(o);
}

static int differ(const uint8_t *a, const uint8_t *b)
{
    int n = 0;
    for (int i = 0; i < NX; i++)
        n += a[i] != b[i];
    return n;
}

/* The same graph and seed give the same mask, run after run and program after program; another
 * seed, or another dropout of the same tensor, another. */
START_TEST(test_deterministic)
{
    static uint8_t m[5][NX];
    double *x = malloc(NX * sizeof *x);
    lt_case *cs[3];
    loom_tensor *y[3], *y2 = NULL;
    for (int k = 0; k < 3; k++) {
        cs[k] = lt_case_new();
        loom_graph *g = lt_graph(cs[k]);
        loom_graph_set_seed(g, k == 2 ? 43 : 42);
        loom_tensor *t = input(cs[k], LOOM_F32, x, 11);
        y[k] = loom_dropout(g, t, 0.5);
        if (k == 0)
            y2 = loom_dropout(g, t, 0.5);
    }
    mask_of(cs[0], y[0], m[0]);
    mask_of(cs[0], y[0], m[1]);
    mask_of(cs[1], y[1], m[2]);
    mask_of(cs[2], y[2], m[3]);
    mask_of(cs[0], y2, m[4]);
    ck_assert_int_eq(differ(m[0], m[1]), 0);
    ck_assert_int_eq(differ(m[0], m[2]), 0);
    /* independent masks at p = 0.5 differ in about half of the elements */
    ck_assert_int_gt(differ(m[0], m[3]), NX / 4);
    ck_assert_int_gt(differ(m[0], m[4]), NX / 4);
    for (int k = 0; k < 3; k++)
        lt_case_free(cs[k]);
    free(x);
}
END_TEST

/* A training program: runs between steps share a mask, a step draws a new one; the gradient of
 * w (all ones) is mask / (1 - p), the very mask of the forward pass. */
START_TEST(test_steps_and_backward_mask)
{
    enum { n = 2000 };
    const double p = 0.3;
    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, 5);
    loom_tensor *w = loom_param(g, "w", LOOM_F64, loom_shape(n), loom_init_constant(1.0));
    loom_tensor *y = loom_dropout(g, w, p);
    loom_tensor *loss = loom_sum(g, y, LOOM_ALL_AXES, 0);
    loom_program *prog = NULL;
    ck_assert_msg(loom_compile(g, loss, NULL, &prog) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_int_eq(loom_program_keep(prog, y), LOOM_OK);
    static double v[4][n];
    loom_array a;
    for (int k = 0; k < 4; k++) {
        loom_run_mode mode = k == 2 ? LOOM_RUN_STEP : k == 3 ? LOOM_RUN_GRAD : LOOM_RUN_FORWARD;
        ck_assert_msg(loom_program_run(prog, mode) == LOOM_OK, "%s", loom_program_error(prog));
        ck_assert_int_eq(loom_program_fetch(prog, y, &a), LOOM_OK);
        memcpy(v[k], a.data, sizeof v[k]);
    }
    ck_assert_int_eq(loom_program_steps(prog), 1);
    int same01 = 0, diff23 = 0;
    for (int i = 0; i < n; i++) {
        same01 += v[0][i] == v[1][i];
        diff23 += v[2][i] != v[3][i];
        ck_assert(v[0][i] == 0 || fabs(v[0][i] - 1 / (1 - p)) < 1e-15);
    }
    ck_assert_int_eq(same01, n);
    ck_assert_int_gt(diff23, n / 5); /* step 0 vs step 1: 2 p (1 - p) = 42% differ */

    /* the last run was GRAD at step 1: the gradient is that run's y, element for element */
    loom_tensor *gw = loom_program_grad(prog, w);
    ck_assert_ptr_nonnull(gw);
    ck_assert_int_eq(loom_program_fetch(prog, gw, &a), LOOM_OK);
    const double *gv = a.data;
    for (int i = 0; i < n; i++)
        ck_assert_msg(gv[i] == v[3][i], "grad[%d] = %g, y = %g", i, gv[i], v[3][i]);
    loom_program_free(prog);
    loom_graph_free(g);
}
END_TEST

/* Evaluation mode: dropout is the identity, exactly. */
START_TEST(test_eval_identity)
{
    loom_dtype dtype = _i ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new(); /* only to make the input's data */
    double *x = malloc(NX * sizeof *x);
    loom_graph *g = lt_graph(c);
    loom_tensor *t = input(c, dtype, x, 21);
    loom_tensor *y = loom_dropout(g, t, 0.6);
    loom_program *prog = NULL;
    ck_assert_msg(loom_compile(g, NULL, NULL, &prog) == LOOM_OK, "%s", loom_graph_error(g));
    loom_array in = {.dtype = dtype, .ndim = 2, .shape = {R, C}};
    float *f = malloc(NX * sizeof *f);
    for (int i = 0; i < NX; i++)
        f[i] = (float)x[i];
    in.data = dtype == LOOM_F64 ? (void *)x : (void *)f;
    ck_assert_int_eq(loom_program_feed(prog, t, &in), LOOM_OK);
    for (int k = 0; k < 2; k++) {
        ck_assert_msg(loom_program_run(prog, k ? LOOM_RUN_FORWARD : LOOM_RUN_EVAL) == LOOM_OK, "%s",
                      loom_program_error(prog));
        loom_array out;
        ck_assert_int_eq(loom_program_fetch(prog, y, &out), LOOM_OK);
        double *o = lt_to_double(&out);
        int same = 0;
        for (int i = 0; i < NX; i++)
            same += o[i] == x[i];
        if (k == 0)
            ck_assert_int_eq(same, NX);
        else /* training again: about 60% dropped, the rest scaled by 2.5 */
            ck_assert_int_lt(same, NX / 10);
        free(o);
    }
    loom_program_free(prog);
    free(f);
    free(x);
    lt_case_free(c);
}
END_TEST

/* p == 0 is x itself: no node, no error. */
START_TEST(test_p_zero)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(3, 4));
    ck_assert_ptr_eq(loom_dropout(g, x, 0.0), x);
    ck_assert_ptr_null(loom_graph_error(g));
    loom_graph_free(g);

    lt_case *c = lt_case_new();
    lt_gradcheck(c, loom_dropout(lt_graph(c), lt_param(c, "x", loom_shape(3, 2)), 0.0), 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_gradcheck)
{
    static const loom_shape shapes[] = {{2, {4, 5}}, {0, {0}}, {1, {1}}, {3, {3, 1, 7}}};
    static const double ps[] = {0.4, 0.5, 0.2, 0.7};
    for (int k = 0; k < 4; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_graph_set_seed(g, 100 + (uint64_t)k);
        lt_gradcheck(c, loom_dropout(g, lt_param(c, "x", shapes[k]), ps[k]), 1e-6);
        lt_case_free(c);
    }
    /* inside a network: dropout of an activation, then of a broadcast sum */
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = lt_param(c, "x", loom_shape(6, 4)), *b = lt_param(c, "b", loom_shape(4));
    loom_tensor *h = loom_dropout(g, loom_tanh(g, loom_bias_add(g, x, b)), 0.5);
    lt_gradcheck(c, loom_dropout(g, loom_mul(g, h, b), 0.3), 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_empty_batch)
{
    loom_dtype dtype = _i ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *x = lt_input(c, "x", dtype, loom_shape(N, 16), (int64_t[]){0, 16}, NULL);
    loom_tensor *y = loom_dropout(g, x, 0.5);
    ck_assert(loom_tensor_dim(y, 0) == N);
    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.ndim, 2);
    ck_assert_int_eq(out.shape[0], 0);
    ck_assert_int_eq(out.shape[1], 16);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    N = loom_dim_dynamic(g, "N", 8);
    x = lt_input(c, "x", LOOM_F64, loom_shape(N, 3), (int64_t[]){0, 3}, NULL);
    lt_gradcheck(c, loom_dropout(g, loom_bias_add(g, x, lt_param(c, "b", loom_shape(3))), 0.5), 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_bad_calls)
{
    static const double bad_p[] = {1.5, 1.0, -0.1, NAN, INFINITY};
    for (int k = 0; k < 5; k++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(4));
        ck_assert(loom_tensor_is_poisoned(loom_dropout(g, x, bad_p[k])));
        lt_expect_error(g, "loom_dropout: p must be in [0, 1)");
        loom_graph_free(g);
    }
    loom_graph *g = loom_graph_new();
    ck_assert(loom_tensor_is_poisoned(loom_dropout(g, loom_input(g, "x", LOOM_F32, loom_shape(4)), 1.5)));
    lt_expect_error(g, "loom_dropout: p must be in [0, 1), got 1.5");
    loom_graph_free(g);

    /* each at p = 0.5 and at p = 0, which makes no node but checks x all the same */
    for (int zero = 0; zero < 2; zero++)
        for (int which = 0; which < 5; which++) {
            g = loom_graph_new();
            loom_dim N = loom_dim_dynamic(g, "N", 8);
            loom_tensor *x = NULL;
            const char *what = "NULL";
            switch (which) {
            case 1: x = loom_input(g, "x", LOOM_I32, loom_shape(N, 4)), what = "i32"; break;
            case 2: x = loom_input(g, "x", LOOM_U8, loom_shape(4)), what = "u8"; break;
            case 3: x = loom_input_csr(g, "x", LOOM_F64, N, N), what = "CSR"; break;
            case 4: { /* a tensor of another graph */
                loom_graph *h = loom_graph_new();
                x = loom_input(h, "x", LOOM_F32, loom_shape(4));
                ck_assert(loom_tensor_is_poisoned(loom_dropout(g, x, zero ? 0.0 : 0.5)));
                loom_graph_free(h);
                what = "another graph";
                x = NULL;
                break;
            }
            }
            if (which != 4)
                ck_assert(loom_tensor_is_poisoned(loom_dropout(g, x, zero ? 0.0 : 0.5)));
            lt_expect_error(g, "loom_dropout");
            lt_expect_error(g, what);
            /* a poisoned tensor stays poisoned, and the first error stays */
            ck_assert(loom_tensor_is_poisoned(loom_dropout(g, loom_relu(g, x), 0.0)));
            lt_expect_error(g, what);
            loom_graph_free(g);
        }
    ck_assert_ptr_null(loom_dropout(NULL, NULL, 0.5));
    ck_assert_ptr_null(loom_dropout(NULL, NULL, 0.0));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_dropout");
    TCase *tc = tcase_create("dropout");
    tcase_add_loop_test(tc, test_training_values, 0, 6);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_steps_and_backward_mask);
    tcase_add_loop_test(tc, test_eval_identity, 0, 2);
    tcase_add_test(tc, test_p_zero);
    tcase_add_test(tc, test_gradcheck);
    tcase_add_loop_test(tc, test_empty_batch, 0, 2);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
