/* Activations: relu, leaky_relu, elu, sigmoid, tanh, loom_activate, and their gradients through
 * act_grad. Forward values against libm, analytic gradients in f32 and f64, numerical gradients,
 * awkward shapes and bad calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { RELU, LEAKY, ELU, SIGMOID, TANH, NACTS };
static const char *const act_api[NACTS] = {"loom_relu", "loom_leaky_relu", "loom_elu", "loom_sigmoid", "loom_tanh"};
static const double act_param[NACTS] = {0, 0.1, 0.7, 0, 0};

static loom_tensor *apply(loom_graph *g, int act, loom_tensor *x)
{
    switch (act) {
    case RELU: return loom_relu(g, x);
    case LEAKY: return loom_leaky_relu(g, x, act_param[LEAKY]);
    case ELU: return loom_elu(g, x, act_param[ELU]);
    case SIGMOID: return loom_sigmoid(g, x);
    default: return loom_tanh(g, x);
    }
}

static double ref_f(int act, double x)
{
    switch (act) {
    case RELU: return x > 0 ? x : 0;
    case LEAKY: return x > 0 ? x : act_param[LEAKY] * x;
    case ELU: return x > 0 ? x : act_param[ELU] * (exp(x) - 1);
    case SIGMOID: return 1 / (1 + exp(-x));
    default: return tanh(x);
    }
}

static double ref_df(int act, double x)
{
    switch (act) {
    case RELU: return x > 0 ? 1 : 0;
    case LEAKY: return x > 0 ? 1 : act_param[LEAKY];
    case ELU: return x > 0 ? 1 : act_param[ELU] * exp(x);
    case SIGMOID: return ref_f(SIGMOID, x) * (1 - ref_f(SIGMOID, x));
    default: return 1 - tanh(x) * tanh(x);
    }
}

enum { N = 40 };
/* Spread over both signs, with large magnitudes that would overflow a naive sigmoid. */
static void values(double *x, uint64_t seed)
{
    lt_fill_normal(x, N, seed);
    for (int i = 0; i < N; i++)
        x[i] *= 3;
    x[0] = 0.0;
    x[1] = -800.0;
    x[2] = 800.0;
    x[3] = -30.0;
    x[4] = 30.0;
    x[5] = -1e-3;
}

/* An input of shape [5, 8] holding x, rounded to f32 in place for an f32 input. */
static loom_tensor *input(lt_case *c, loom_dtype dtype, double *x)
{
    if (dtype == LOOM_F64)
        return lt_input_static(c, "x", dtype, loom_shape(5, 8), x);
    float f[N];
    for (int i = 0; i < N; i++)
        x[i] = f[i] = (float)x[i];
    return lt_input_static(c, "x", dtype, loom_shape(5, 8), f);
}

/* _i: act * 2 + (f64) */
START_TEST(test_forward)
{
    int act = _i / 2;
    loom_dtype dtype = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    double x[N], ref[N];
    values(x, 1 + (uint64_t)_i);
    loom_tensor *t = input(c, dtype, x);
    loom_tensor *y = apply(lt_graph(c), act, t);
    ck_assert_int_eq(loom_tensor_dtype(y), dtype);
    ck_assert_int_eq(loom_tensor_ndim(y), 2);
    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.dtype, dtype);
    ck_assert_int_eq(out.ndim, 2);
    ck_assert_int_eq(out.shape[0], 5);
    ck_assert_int_eq(out.shape[1], 8);
    for (int i = 0; i < N; i++)
        ref[i] = ref_f(act, x[i]);
    double *got = lt_to_double(&out);
    for (int i = 0; i < N; i++)
        ck_assert_msg(isfinite(got[i]), "%s(%g) is %g", act_api[act], x[i], got[i]);
    lt_assert_close(got, ref, N, dtype == LOOM_F32 ? 1e-6 : 1e-14, act_api[act]);
    free(got);
    lt_case_free(c);
}
END_TEST

/* d sum(act(x)) / dx through the backward pass equals f'(x), in both dtypes (act_grad's kernel). */
START_TEST(test_grad_values)
{
    int act = _i / 2;
    loom_dtype dtype = _i % 2 ? LOOM_F64 : LOOM_F32;
    loom_graph *g = loom_graph_new();
    loom_tensor *p = loom_param(g, "x", dtype, loom_shape(5, 8), loom_init_zeros());
    loom_tensor *loss = loom_sum(g, apply(g, act, p), LOOM_ALL_AXES, 0);
    loom_program *prog = NULL;
    ck_assert_msg(loom_compile(g, loss, NULL, &prog) == LOOM_OK, "%s", loom_graph_error(g));
    double x[N], ref[N];
    values(x, 50 + (uint64_t)_i);
    x[0] = 0.5; /* relu has no derivative at 0 */
    loom_array pv;
    ck_assert_int_eq(loom_program_fetch(prog, p, &pv), LOOM_OK);
    for (int i = 0; i < N; i++) {
        if (dtype == LOOM_F32)
            x[i] = ((float *)pv.data)[i] = (float)x[i];
        else
            ((double *)pv.data)[i] = x[i];
        ref[i] = ref_df(act, x[i]);
    }
    ck_assert_msg(loom_program_run(prog, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(prog));
    loom_tensor *gp = loom_program_grad(prog, p);
    ck_assert_ptr_nonnull(gp);
    loom_array gv;
    ck_assert_int_eq(loom_program_fetch(prog, gp, &gv), LOOM_OK);
    ck_assert_int_eq(gv.dtype, dtype);
    double *got = lt_to_double(&gv);
    /* sigmoid' and tanh' come from the rounded output: f32 is good to a few ulps of 1 */
    lt_assert_close(got, ref, N, dtype == LOOM_F32 ? 1e-6 : 1e-12, act_api[act]);
    free(got);
    loom_program_free(prog);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_gradcheck)
{
    int act = _i;
    static const loom_shape shapes[] = {{2, {3, 4}}, {0, {0}}, {1, {1}}, {3, {2, 1, 3}}};
    for (int k = 0; k < 4; k++) {
        lt_case *c = lt_case_new();
        lt_gradcheck(c, apply(lt_graph(c), act, lt_param(c, "x", shapes[k])), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* Activations inside a chain: the gradient of each flows through the next one's. */
START_TEST(test_gradcheck_chain)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = lt_param(c, "x", loom_shape(4, 3));
    loom_tensor *y = loom_tanh(g, loom_elu(g, loom_sigmoid(g, loom_leaky_relu(g, x, 0.2)), 1.0));
    loom_tensor *z = loom_relu(g, loom_scale(g, x, 2.0));
    lt_gradcheck(c, loom_add(g, y, z), 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_params)
{
    /* slope 0 is relu; a negative slope and alpha are allowed */
    static const double slopes[] = {0.0, -0.5, 2.0};
    for (int k = 0; k < 3; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        double x[4] = {-2, -0.5, 0.5, 3};
        loom_tensor *t = lt_input_static(c, "x", LOOM_F64, loom_shape(4), x);
        loom_tensor *a = loom_leaky_relu(g, t, slopes[k]), *b = loom_elu(g, t, slopes[k]);
        loom_array out = lt_eval(c, a);
        const double *o = out.data;
        for (int i = 0; i < 4; i++)
            ck_assert_double_eq_tol(o[i], x[i] > 0 ? x[i] : slopes[k] * x[i], 1e-15);
        out = lt_eval(c, b);
        o = out.data;
        for (int i = 0; i < 4; i++)
            ck_assert_double_eq_tol(o[i], x[i] > 0 ? x[i] : slopes[k] * expm1(x[i]), 1e-15);
        lt_case_free(c);

        c = lt_case_new();
        g = lt_graph(c);
        loom_tensor *p = lt_param(c, "x", loom_shape(6));
        lt_gradcheck(c, loom_add(g, loom_leaky_relu(g, p, slopes[k]), loom_elu(g, p, slopes[k])), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_empty_batch)
{
    int act = _i / 2;
    loom_dtype dtype = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim B = loom_dim_dynamic(g, "N", 8);
    loom_tensor *x = lt_input(c, "x", dtype, loom_shape(B, 16), (int64_t[]){0, 16}, NULL);
    loom_tensor *y = apply(g, act, x);
    ck_assert(loom_tensor_dim(y, 0) == B);
    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.ndim, 2);
    ck_assert_int_eq(out.shape[0], 0);
    ck_assert_int_eq(out.shape[1], 16);
    lt_case_free(c);

    /* and its backward pass, into a parameter through a broadcast */
    c = lt_case_new();
    g = lt_graph(c);
    B = loom_dim_dynamic(g, "N", 8);
    x = lt_input(c, "x", LOOM_F64, loom_shape(B, 3), (int64_t[]){0, 3}, NULL);
    lt_gradcheck(c, apply(g, act, loom_bias_add(g, x, lt_param(c, "b", loom_shape(3)))), 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_activate)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    double x[N];
    values(x, 77);
    loom_tensor *t = lt_input_static(c, "x", LOOM_F64, loom_shape(5, 8), x);
    ck_assert_ptr_eq(loom_activate(g, t, LOOM_ACT_NONE), t);
    static const loom_activation acts[] = {LOOM_ACT_RELU, LOOM_ACT_SIGMOID, LOOM_ACT_TANH, LOOM_ACT_ELU};
    static const int refs[] = {RELU, SIGMOID, TANH, ELU};
    loom_tensor *y[4];
    for (int k = 0; k < 4; k++)
        y[k] = loom_activate(g, t, acts[k]);
    for (int k = 0; k < 4; k++) {
        loom_array out = lt_eval(c, y[k]);
        const double *o = out.data;
        for (int i = 0; i < N; i++) {
            /* LOOM_ACT_ELU is elu with alpha 1 */
            double e = refs[k] == ELU ? (x[i] > 0 ? x[i] : expm1(x[i])) : ref_f(refs[k], x[i]);
            ck_assert_double_eq_tol(o[i], e, 1e-14 * fmax(1, fabs(e)));
        }
    }
    lt_case_free(c);

    loom_graph *g2 = loom_graph_new();
    loom_tensor *u = loom_input(g2, "x", LOOM_F32, loom_shape(3));
    ck_assert(loom_tensor_is_poisoned(loom_activate(g2, u, (loom_activation)99)));
    lt_expect_error(g2, "loom_activate");
    lt_expect_error(g2, "99");
    loom_graph_free(g2);

    g2 = loom_graph_new();
    ck_assert(loom_tensor_is_poisoned(loom_activate(g2, NULL, LOOM_ACT_TANH)));
    lt_expect_error(g2, "loom_activate");
    loom_graph_free(g2);

    g2 = loom_graph_new();
    u = loom_input(g2, "x", LOOM_I64, loom_shape(3));
    ck_assert(loom_tensor_is_poisoned(loom_activate(g2, u, LOOM_ACT_SIGMOID)));
    lt_expect_error(g2, "loom_activate");
    lt_expect_error(g2, "i64");
    loom_graph_free(g2);
    ck_assert_ptr_null(loom_activate(NULL, NULL, LOOM_ACT_RELU));
}
END_TEST

static void expect_bad(int act, int which)
{
    loom_graph *g = loom_graph_new();
    loom_dim B = loom_dim_dynamic(g, "N", 8);
    loom_tensor *x = NULL;
    const char *what = act_api[act];
    switch (which) {
    case 0: x = NULL, what = "NULL"; break;
    case 1: x = loom_input(g, "x", LOOM_I32, loom_shape(B, 4)), what = "i32"; break;
    case 2: x = loom_input(g, "x", LOOM_U8, loom_shape(4)), what = "u8"; break;
    case 3: x = loom_input_csr(g, "x", LOOM_F32, B, B), what = "CSR"; break;
    }
    loom_tensor *y = apply(g, act, x);
    ck_assert(loom_tensor_is_poisoned(y));
    lt_expect_error(g, act_api[act]);
    lt_expect_error(g, what);
    ck_assert(loom_tensor_is_poisoned(apply(g, act, y)));
    loom_graph_free(g);
}

START_TEST(test_bad_calls)
{
    for (int act = 0; act < NACTS; act++)
        for (int which = 0; which < 4; which++)
            expect_bad(act, which);
    static const double bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(4));
        ck_assert(loom_tensor_is_poisoned(loom_leaky_relu(g, x, bad[k])));
        lt_expect_error(g, "loom_leaky_relu: slope");
        loom_graph_free(g);
        g = loom_graph_new();
        x = loom_input(g, "x", LOOM_F64, loom_shape(4));
        ck_assert(loom_tensor_is_poisoned(loom_elu(g, x, bad[k])));
        lt_expect_error(g, "loom_elu: alpha");
        loom_graph_free(g);
    }
    ck_assert_ptr_null(loom_relu(NULL, NULL));
    ck_assert_ptr_null(loom_elu(NULL, NULL, NAN));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_unary");
    TCase *tc = tcase_create("unary");
    tcase_add_loop_test(tc, test_forward, 0, 2 * NACTS);
    tcase_add_loop_test(tc, test_grad_values, 0, 2 * NACTS);
    tcase_add_loop_test(tc, test_gradcheck, 0, NACTS);
    tcase_add_test(tc, test_gradcheck_chain);
    tcase_add_test(tc, test_params);
    tcase_add_loop_test(tc, test_empty_batch, 0, 2 * NACTS);
    tcase_add_test(tc, test_activate);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
