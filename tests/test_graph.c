/* The builder, compile, feeding, the reference executor's dims, autodiff accumulation, parameter
 * initialisers, and matmul (the op this part of the library owns). */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/core/op.h"

/* ---- matmul ---------------------------------------------------------------------------------- */

static void naive_matmul(const double *a, const double *b, double *c, int64_t m, int64_t n, int64_t k, int ta, int tb)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = 0;
            for (int64_t p = 0; p < k; p++)
                s += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
            c[i * n + j] = s;
        }
}

START_TEST(test_matmul_forward)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int f32 = 0; f32 < 2; f32++) {
                const int64_t m = 3, n = 5, k = 4;
                double a[12], b[20], want[15], got[15];
                lt_fill_normal(a, 12, 1);
                lt_fill_normal(b, 20, 2);
                float af[12], bf[20];
                for (int i = 0; i < 12; i++)
                    af[i] = (float)(a[i] = (float)a[i]);
                for (int i = 0; i < 20; i++)
                    bf[i] = (float)(b[i] = (float)b[i]);
                lt_case *c = lt_case_new();
                loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
                loom_tensor *A = lt_input_static(c, "a", dt, ta ? loom_shape(k, m) : loom_shape(m, k), f32 ? (void *)af : a);
                loom_tensor *B = lt_input_static(c, "b", dt, tb ? loom_shape(n, k) : loom_shape(k, n), f32 ? (void *)bf : b);
                loom_array r = lt_eval(c, loom_matmul_ex(lt_graph(c), A, B, ta, tb));
                ck_assert_int_eq(r.ndim, 2);
                ck_assert_int_eq(r.shape[0], m);
                ck_assert_int_eq(r.shape[1], n);
                naive_matmul(a, b, want, m, n, k, ta, tb);
                for (int i = 0; i < 15; i++)
                    got[i] = f32 ? ((float *)r.data)[i] : ((double *)r.data)[i];
                lt_assert_close(got, want, 15, f32 ? 1e-5 : 1e-12, "matmul");
                lt_case_free(c);
            }
}
END_TEST

START_TEST(test_matmul_grad)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            lt_case *c = lt_case_new();
            loom_tensor *a = lt_param(c, "a", ta ? loom_shape(4, 3) : loom_shape(3, 4));
            loom_tensor *b = lt_param(c, "b", tb ? loom_shape(2, 4) : loom_shape(4, 2));
            lt_gradcheck(c, loom_matmul_ex(lt_graph(c), a, b, ta, tb), 1e-6);
            lt_case_free(c);
        }
}
END_TEST

START_TEST(test_matmul_awkward)
{
    /* size-1 dims, and an empty dynamic batch: [N=0, 3] x [3, 2] -> [0, 2] */
    lt_case *c = lt_case_new();
    loom_dim N = loom_dim_dynamic(lt_graph(c), "N", 8);
    int64_t now[2] = {0, 3};
    loom_tensor *x = lt_input(c, "x", LOOM_F64, loom_shape(N, 3), now, NULL);
    loom_tensor *w = lt_param(c, "w", loom_shape(3, 2));
    loom_array r = lt_eval(c, loom_matmul(lt_graph(c), x, w));
    ck_assert_int_eq(r.shape[0], 0);
    ck_assert_int_eq(r.shape[1], 2);
    lt_case_free(c);

    c = lt_case_new();
    lt_gradcheck(c, loom_matmul(lt_graph(c), lt_param(c, "a", loom_shape(1, 1)), lt_param(c, "b", loom_shape(1, 1))), 1e-6);
    lt_case_free(c);

    /* inner dim 0: the product is all zeros */
    c = lt_case_new();
    loom_tensor *a = lt_input_static(c, "a", LOOM_F32, loom_shape(2, 0), NULL);
    loom_tensor *b = lt_input_static(c, "b", LOOM_F32, loom_shape(0, 3), NULL);
    r = lt_eval(c, loom_matmul(lt_graph(c), a, b));
    for (int i = 0; i < 6; i++)
        ck_assert(((float *)r.data)[i] == 0.0f);
    lt_case_free(c);
}
END_TEST

START_TEST(test_matmul_bad_calls)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *a = loom_input(g, "a", LOOM_F32, loom_shape(3, 4));
    loom_tensor *b = loom_input(g, "b", LOOM_F32, loom_shape(5, 2));
    loom_matmul(g, a, b);
    lt_expect_error(g, "loom_matmul: inner dimensions differ: a is [3, 4], b is [5, 2]");
    loom_graph_free(g);

    g = loom_graph_new();
    a = loom_input(g, "a", LOOM_F32, loom_shape(3, 4));
    loom_matmul(g, a, loom_input(g, "b", LOOM_F64, loom_shape(4, 2)));
    lt_expect_error(g, "loom_matmul: operands must be both f32 or both f64, got f32 and f64");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_matmul(g, loom_input(g, "a", LOOM_F32, loom_shape(3)), loom_input(g, "b", LOOM_F32, loom_shape(3, 2)));
    lt_expect_error(g, "loom_matmul: operands must be 2-D");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_matmul(g, NULL, loom_input(g, "b", LOOM_F32, loom_shape(3, 2)));
    lt_expect_error(g, "loom_matmul: tensor argument 1 is NULL");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_matmul(g, loom_input(g, "a", LOOM_I32, loom_shape(3, 3)), loom_input(g, "b", LOOM_I32, loom_shape(3, 3)));
    lt_expect_error(g, "got i32 and i32");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_matmul(g, loom_input_csr(g, "adj", LOOM_F32, 3, 3), loom_input(g, "b", LOOM_F32, loom_shape(3, 3)));
    lt_expect_error(g, "operands must be dense");
    loom_graph_free(g);
}
END_TEST

/* ---- builder entry points -------------------------------------------------------------------- */

START_TEST(test_builder_errors)
{
    loom_graph *g = loom_graph_new();
    loom_input(g, NULL, LOOM_F32, loom_shape(2));
    lt_expect_error(g, "loom_input: name must be 1 to");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_input(g, "x", LOOM_F32, loom_shape(2));
    loom_input(g, "x", LOOM_F32, loom_shape(2));
    lt_expect_error(g, "loom_input: a tensor named 'x' exists already");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_input(g, "x", LOOM_F32, loom_shape(2, -3));
    lt_expect_error(g, "loom_input 'x': invalid shape [2, -3]");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_input(g, "x", (loom_dtype)42, loom_shape(2));
    lt_expect_error(g, "loom_input 'x': invalid dtype 42");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_graph *other = loom_graph_new();
    loom_dim M = loom_dim_dynamic(other, "M", 4);
    loom_input(g, "x", LOOM_F32, loom_shape(M));
    lt_expect_error(g, "loom_input 'x': invalid shape [?]: dim 0 is a dynamic dim of another graph");
    loom_graph_free(g);
    loom_graph_free(other);

    g = loom_graph_new();
    loom_dim_dynamic(g, "N", -1);
    lt_expect_error(g, "loom_dim_dynamic: bound of 'N' is -1");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_dim_dynamic(g, "N", 4);
    loom_dim_dynamic(g, "N", 5);
    lt_expect_error(g, "a dynamic dim named 'N' exists already");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 4);
    loom_param(g, "w", LOOM_F32, loom_shape(N, 2), loom_init_zeros());
    lt_expect_error(g, "loom_param 'w': invalid shape [N, 2]: dim 0 is the dynamic dim N, where only static sizes are allowed");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_param(g, "w", LOOM_I32, loom_shape(2), loom_init_zeros());
    lt_expect_error(g, "loom_param 'w': parameters must be f32 or f64, got i32");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_param(g, "w", LOOM_F32, loom_shape(2), loom_init_uniform(1.0, -1.0, 0));
    lt_expect_error(g, "uniform bounds [1, -1) are empty");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_input_csr(g, "adj", LOOM_I32, 3, 3);
    lt_expect_error(g, "loom_input_csr 'adj': values must be f32 or f64, got i32");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_param_set_weight_decay(loom_input(g, "x", LOOM_F32, loom_shape(2)), 0.1);
    lt_expect_error(g, "loom_param_set_weight_decay: 'x' is not a parameter");
    loom_graph_free(g);

    /* a NULL graph is answered with NULL, never a crash */
    ck_assert_ptr_null(loom_input(NULL, "x", LOOM_F32, loom_shape(2)));
    ck_assert_ptr_null(loom_matmul(NULL, NULL, NULL));
    ck_assert_str_eq(loom_graph_error(NULL), "loom: graph is NULL");
}
END_TEST

/* Dim handles are per graph: graph a's first dynamic dim and graph b's have the same index, and a
 * handle of a used on b is refused wherever a dim enters b's builder, never taken for b's own. */
START_TEST(test_foreign_dims)
{
    loom_graph *a = loom_graph_new();
    loom_dim N = loom_dim_dynamic(a, "N", 4);
    for (int where = 0; where < 5; where++) {
        loom_graph *b = loom_graph_new();
        loom_dim M = loom_dim_dynamic(b, "M", 8);
        ck_assert(N != M);
        loom_tensor *x = loom_input(b, "x", LOOM_F32, loom_shape(M, 2));
        ck_assert_int_eq(loom_graph_status(b), LOOM_OK);
        const char *want = NULL;
        switch (where) {
        case 0:
            loom_input(b, "y", LOOM_F32, loom_shape(2, N));
            want = "loom_input 'y': invalid shape [2, ?]: dim 1 is a dynamic dim of another graph";
            break;
        case 1:
            loom_input_csr(b, "adj", LOOM_F32, M, N);
            want = "loom_input_csr 'adj': invalid shape [M, ?]: dim 1 is a dynamic dim of another graph";
            break;
        case 2:
            loom_param(b, "w", LOOM_F32, loom_shape(N), loom_init_zeros());
            want = "loom_param 'w': invalid shape [?]: dim 0 is a dynamic dim of another graph";
            break;
        case 3:
            loom_reshape(b, x, loom_shape(N, 2));
            want = "loom_reshape: target dim 0 is a dynamic dim of another graph";
            break;
        case 4:
            loom_segment_sum(b, x, loom_input(b, "seg", LOOM_I32, loom_shape(M)), N);
            want = "loom_segment_sum: n is a dynamic dim of another graph";
            break;
        }
        ck_assert_int_eq(loom_graph_status(b), LOOM_ERR_SHAPE);
        ck_assert_str_eq(loom_graph_error(b), want);
        loom_graph_free(b);
    }
    /* a handle-shaped value no graph made is refused the same way */
    loom_graph *b = loom_graph_new();
    loom_input(b, "x", LOOM_F32, loom_shape(LOOM__DYN_BASE + 5));
    ck_assert_int_eq(loom_graph_status(b), LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(loom_graph_error(b), "dim 0 is "), "%s", loom_graph_error(b));
    loom_graph_free(b);
    loom_graph_free(a);
}
END_TEST

START_TEST(test_first_error_kept)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *a = loom_input(g, "a", LOOM_F32, loom_shape(3, 4));
    loom_tensor *bad = loom_matmul(g, a, a); /* 4 != 3 */
    ck_assert(loom_tensor_is_poisoned(bad));
    ck_assert_int_eq(loom_tensor_ndim(bad), -1);
    loom_tensor *worse = loom_matmul(g, bad, loom_input(g, "b", LOOM_F64, loom_shape(9, 9)));
    ck_assert(loom_tensor_is_poisoned(worse));
    lt_expect_error(g, "loom_matmul: inner dimensions differ");
    ck_assert_int_eq(loom_graph_status(g), LOOM_ERR_SHAPE);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_compile_errors)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *w = loom_param(g, "w", LOOM_F32, loom_shape(2, 2), loom_init_zeros());
    loom_program *p = (loom_program *)1;
    ck_assert_int_eq(loom_compile(g, w, NULL, &p), LOOM_ERR_SHAPE);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(loom_graph_error(g), "loom_compile: the loss must be a float scalar, got f32 [2, 2]");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_param(g, "w", LOOM_F32, loom_shape(2), loom_init_zeros());
    ck_assert_int_eq(loom_compile(g, NULL, &(loom_train_opts){.optimizer = loom_sgd(0.1)}, &p), LOOM_ERR_INVALID);
    ck_assert_str_eq(loom_graph_error(g), "loom_compile: an optimizer needs a loss");
    loom_graph_free(g);
}
END_TEST

START_TEST(test_feed_errors)
{
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 4);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 2));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(N));
    loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F32, N, N);
    loom_tensor *w = loom_param(g, "w", LOOM_F32, loom_shape(2, 3), loom_init_glorot(1));
    loom_tensor *h = loom_matmul(g, x, w);
    loom_program *p;
    ck_assert_int_eq(loom_compile(g, NULL, NULL, &p), LOOM_OK);

    float xd[10] = {0};
    loom_array xa = {.dtype = LOOM_F32, .ndim = 2, .shape = {5, 2}, .data = xd};
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_ERR_SHAPE);
    ck_assert_str_eq(loom_program_error(p),
                     "loom_program_feed: input 'x' is [N, 2], data has size 5 in dim 0 (over N's bound of 4)");
    xa.shape[0] = 3;
    xa.dtype = LOOM_F64;
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_ERR_DTYPE);
    ck_assert_str_eq(loom_program_error(p), "loom_program_feed: input 'x' wants f32 data, got f64");
    xa.dtype = LOOM_F32;
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, w, &xa), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_program_feed(p, adj, &xa), LOOM_ERR_INVALID);
    ck_assert_str_eq(loom_program_error(p), "loom_program_feed: input 'adj' is sparse (use loom_program_feed_csr)");

    /* y not fed yet */
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_ERR_INVALID);
    ck_assert_str_eq(loom_program_error(p), "loom_program_run: input 'y' was not fed");

    int32_t yd[2] = {0, 1};
    loom_array ya = {.dtype = LOOM_I32, .ndim = 1, .shape = {2}, .data = yd};
    ck_assert_int_eq(loom_program_feed(p, y, &ya), LOOM_OK);
    int32_t rp[4] = {0, 1, 1, 2}, col[2] = {5, 0};
    float val[2] = {1, 1};
    loom_csr m = {.nrows = 3, .ncols = 3, .nnz = 2, .vdtype = LOOM_F32, .rowptr = rp, .col = col, .val = val};
    ck_assert_int_eq(loom_program_feed_csr(p, adj, &m), LOOM_ERR_FORMAT);
    ck_assert_str_eq(loom_program_error(p), "loom_program_feed_csr: input 'adj': csr: entry 0 has column 5, outside [0, 3)");
    /* an empty matrix still has rowptr[0]: a NULL rowptr is refused, not read */
    loom_csr empty = {.nrows = 0, .ncols = 0, .nnz = 0, .vdtype = LOOM_F32};
    ck_assert_int_eq(loom_program_feed_csr(p, adj, &empty), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(loom_program_error(p), "missing arrays"), "%s", loom_program_error(p));
    col[0] = 1;
    ck_assert_int_eq(loom_program_feed_csr(p, adj, &m), LOOM_OK);
    /* x says N = 3, y says N = 2 */
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_ERR_SHAPE);
    ck_assert_str_eq(loom_program_error(p), "loom_program_run: the data source (piece 0): dynamic dim N is 2 in input 'y' but 3 in input 'x'");
    int32_t y3[3] = {0, 1, 2};
    ya.shape[0] = 3;
    ya.data = y3;
    ck_assert_int_eq(loom_program_feed(p, y, &ya), LOOM_OK);
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_OK);
    loom_array ha;
    ck_assert_int_eq(loom_program_fetch(p, h, &ha), LOOM_OK);
    ck_assert_int_eq(ha.shape[0], 3);
    ck_assert_int_eq(ha.shape[1], 3);
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_STEP), LOOM_ERR_INVALID);
    ck_assert_str_eq(loom_program_error(p), "loom_program_run: the program was compiled without a loss");
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* ---- autodiff -------------------------------------------------------------------------------- */

START_TEST(test_grad_accumulates)
{
    /* w used twice, through two paths: d/dw sum((xw + xw) * R) = 2 x^T R */
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    double xd[6];
    lt_fill_normal(xd, 6, 3);
    loom_tensor *x = lt_input_static(c, "x", LOOM_F64, loom_shape(3, 2), xd);
    loom_tensor *w = lt_param(c, "w", loom_shape(2, 2));
    lt_gradcheck(c, loom_add(g, loom_matmul(g, x, w), loom_matmul(g, x, w)), 1e-6);
    lt_case_free(c);

    /* w twice in one op: d/dw sum(w^T w * R) */
    c = lt_case_new();
    g = lt_graph(c);
    w = lt_param(c, "w", loom_shape(3, 3));
    lt_gradcheck(c, loom_matmul_ex(g, w, w, 1, 0), 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_no_grad_for_unrelated_params)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *a = loom_param(g, "a", LOOM_F64, loom_shape(2, 2), loom_init_constant(1.0));
    loom_tensor *b = loom_param(g, "b", LOOM_F64, loom_shape(2, 2), loom_init_constant(2.0));
    loom_tensor *loss = loom_sum(g, loom_matmul(g, a, a), LOOM_ALL_AXES, 0);
    (void)b;
    loom_program *p;
    ck_assert_int_eq(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.5)}, &p), LOOM_OK);
    ck_assert_ptr_nonnull(loom_program_grad(p, a));
    ck_assert_ptr_null(loom_program_grad(p, b));
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_STEP), LOOM_OK);
    ck_assert_int_eq(loom_program_steps(p), 1);
    loom_array av, bv;
    ck_assert_int_eq(loom_program_fetch(p, a, &av), LOOM_OK);
    ck_assert_int_eq(loom_program_fetch(p, b, &bv), LOOM_OK);
    /* d/da sum(a a) = 1 1^T a^T + a^T 1 1^T = 4 everywhere for a = 1; a - 0.5 * 4 = -1 */
    for (int i = 0; i < 4; i++) {
        ck_assert_double_eq_tol(((double *)av.data)[i], -1.0, 1e-12);
        ck_assert(((double *)bv.data)[i] == 2.0);
    }
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* ---- initialisers ---------------------------------------------------------------------------- */

static loom_array init_values(uint64_t graph_seed, const char *name, loom_init init, loom_shape shape, loom_program **p,
                              loom_graph **g)
{
    *g = loom_graph_new();
    loom_graph_set_seed(*g, graph_seed);
    loom_tensor *w = loom_param(*g, name, LOOM_F64, shape, init);
    ck_assert_int_eq(loom_compile(*g, NULL, NULL, p), LOOM_OK);
    loom_array a;
    ck_assert_int_eq(loom_program_fetch(*p, w, &a), LOOM_OK);
    return a;
}

START_TEST(test_initialisers)
{
    loom_program *p, *q;
    loom_graph *g, *h;
    /* glorot: within +-sqrt(6/(fan_in+fan_out)), mean ~0, var ~ s^2/3 */
    loom_array a = init_values(0, "w", loom_init_glorot(0), loom_shape(200, 100), &p, &g);
    double s = sqrt(6.0 / 300), sum = 0, sum2 = 0;
    for (int i = 0; i < 20000; i++) {
        double v = ((double *)a.data)[i];
        ck_assert(v >= -s && v <= s);
        sum += v;
        sum2 += v * v;
    }
    ck_assert_double_le(fabs(sum / 20000), 0.01 * s * 3);
    ck_assert_double_le(fabs(sum2 / 20000 - s * s / 3) / (s * s / 3), 0.05);
    /* same seed and name: identical; another name or graph seed: different */
    loom_array b = init_values(0, "w", loom_init_glorot(0), loom_shape(200, 100), &q, &h);
    ck_assert(!memcmp(a.data, b.data, 20000 * sizeof(double)));
    loom_program_free(q);
    loom_graph_free(h);
    b = init_values(0, "v", loom_init_glorot(0), loom_shape(200, 100), &q, &h);
    ck_assert(memcmp(a.data, b.data, 20000 * sizeof(double)));
    loom_program_free(q);
    loom_graph_free(h);
    b = init_values(1, "w", loom_init_glorot(0), loom_shape(200, 100), &q, &h);
    ck_assert(memcmp(a.data, b.data, 20000 * sizeof(double)));
    loom_program_free(q);
    loom_graph_free(h);
    loom_program_free(p);
    loom_graph_free(g);

    /* normal and kaiming: mean and std */
    struct {
        loom_init init;
        double mean, std;
    } cases[] = {
        {loom_init_normal(1.0, 2.0, 5), 1.0, 2.0},
        {loom_init_kaiming(3), 0.0, sqrt(2.0 / 400)},
        {loom_init_uniform(-1.0, 3.0, 2), 1.0, 4.0 / sqrt(12.0)},
        {loom_init_constant(0.25), 0.25, 0.0},
        {loom_init_zeros(), 0.0, 0.0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        a = init_values(7, "w", cases[k].init, loom_shape(400, 100), &p, &g);
        sum = sum2 = 0;
        for (int i = 0; i < 40000; i++) {
            double v = ((double *)a.data)[i];
            sum += v;
            sum2 += v * v;
        }
        double mean = sum / 40000, sd = sqrt(fmax(0, sum2 / 40000 - mean * mean));
        ck_assert_msg(fabs(mean - cases[k].mean) <= 0.02 * fmax(cases[k].std, 1e-9) * 3 + 1e-12, "init %zu: mean %g", k, mean);
        ck_assert_msg(fabs(sd - cases[k].std) <= 0.03 * cases[k].std + 1e-12, "init %zu: std %g, expected %g", k, sd,
                      cases[k].std);
        loom_program_free(p);
        loom_graph_free(g);
    }
}
END_TEST

/* Every op of the enum has a definition linked in, with shape inference and, unless a leaf, a CPU
 * kernel (a definition lost at link time once left the builder with "op 0 is not built"). */
/* Names are found through the graph's table: after it grows many times, after renames (the old
 * name is free again, the new one taken), and a name in use is still refused. */
START_TEST(test_setter_given_a_wrong_name)
{
    /* loom_param_set_weight_decay(loom_graph_find(g, "misspelt"), 0) set nothing and said
     * nothing: through loom_graph_tensor the name is the graph's error, and compiling fails */
    loom_graph *g = loom_graph_new();
    loom_tensor *w = loom_param(g, "fc.weight", LOOM_F32, loom_shape(2, 2), loom_init_zeros());
    loom_tensor *loss = loom_sum(g, w, LOOM_ALL_AXES, 0);
    ck_assert_ptr_eq(loom_graph_tensor(g, "fc.weight"), w);
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);
    loom_tensor *t = loom_graph_tensor(g, "fc.weigth");
    ck_assert(loom_tensor_is_poisoned(t));
    loom_param_set_weight_decay(t, 0);
    loom_tensor_set_sbp(t, loom_split(0));
    loom_tensor_set_name(t, "other");
    ck_assert_int_eq(loom_graph_status(g), LOOM_ERR_NOT_FOUND);
    ck_assert_str_eq(loom_graph_error(g), "loom_graph_tensor: the graph has no tensor named 'fc.weigth'");
    loom_program *p = NULL;
    ck_assert_int_eq(loom_compile(g, loss, NULL, &p), LOOM_ERR_NOT_FOUND);
    ck_assert_ptr_null(p);
    ck_assert_ptr_null(loom_graph_find(g, "fc.weigth")); /* the query stays a query */
    loom_graph_free(g);
    g = loom_graph_new();
    loom_graph_tensor(g, NULL);
    ck_assert_int_eq(loom_graph_status(g), LOOM_ERR_INVALID);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_names)
{
    enum { N = 3000 };
    loom_graph *g = loom_graph_new();
    static loom_tensor *t[N];
    char name[32];
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof name, "p%d", i);
        t[i] = loom_param(g, name, LOOM_F32, loom_shape(2), loom_init_constant(1.0));
        if (i % 3 == 0)
            t[i] = loom_scale(g, t[i], 2.0); /* unnamed tensors between the named ones */
    }
    ck_assert_ptr_null(loom_graph_error(g));
    int wrong = -1;
    for (int i = 0; i < N && wrong < 0; i++) {
        snprintf(name, sizeof name, "p%d", i);
        loom_tensor *f = loom_graph_find(g, name);
        wrong = f && !strcmp(loom_tensor_name(f), name) && (i % 3 ? f == t[i] : f != t[i]) ? -1 : i;
    }
    ck_assert_msg(wrong < 0, "p%d not found", wrong);
    ck_assert_ptr_null(loom_graph_find(g, "p3000"));
    ck_assert_ptr_null(loom_graph_find(g, ""));
    for (int i = 1; i < N; i += 2) { /* rename half of the parameters */
        snprintf(name, sizeof name, "p%d", i);
        loom_tensor *f = loom_graph_find(g, name);
        snprintf(name, sizeof name, "q%d", i);
        loom_tensor_set_name(f, name);
    }
    for (int i = 0; i < N && wrong < 0; i++) {
        snprintf(name, sizeof name, "p%d", i);
        loom_tensor *p = loom_graph_find(g, name);
        snprintf(name, sizeof name, "q%d", i);
        loom_tensor *q = loom_graph_find(g, name);
        wrong = i % 2 ? (p || !q || strcmp(loom_tensor_name(q), name) ? i : -1) : (!p || q ? i : -1);
    }
    ck_assert_msg(wrong < 0, "tensor %d after the renames", wrong);
    ck_assert_ptr_null(loom_graph_error(g));
    loom_tensor *a = loom_graph_find(g, "p2"), *b = loom_graph_find(g, "q5");
    loom_tensor_set_name(a, "p1"); /* free again since p1 became q1 */
    ck_assert_ptr_eq(loom_graph_find(g, "p1"), a);
    ck_assert_ptr_null(loom_graph_find(g, "p2"));
    ck_assert_ptr_null(loom_graph_error(g));
    loom_tensor_set_name(b, "p4");
    ck_assert_ptr_nonnull(strstr(loom_graph_error(g), "a tensor named 'p4' exists already"));
    ck_assert_ptr_eq(loom_graph_find(g, "q5"), b);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_registry_complete)
{
    for (int op = 0; op < LOOM_OP_COUNT; op++) {
        const loom_op_def *d = loom__op_def((loom_op)op);
        ck_assert_msg(d && d->name && d->infer, "op %d has no definition", op);
        ck_assert_msg((d->flags & LOOM__OPF_LEAF) || d->cpu, "op %s has no CPU kernel", d->name);
        ck_assert_msg(!d->grad || d->diff_src, "op %s has a gradient rule but no differentiable source", d->name);
    }
    ck_assert_ptr_null(loom__op_def(LOOM_OP_COUNT));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_registry_complete);
    tcase_add_test(tc, test_setter_given_a_wrong_name);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_matmul_forward);
    tcase_add_test(tc, test_matmul_grad);
    tcase_add_test(tc, test_matmul_awkward);
    tcase_add_test(tc, test_matmul_bad_calls);
    tcase_add_test(tc, test_builder_errors);
    tcase_add_test(tc, test_foreign_dims);
    tcase_add_test(tc, test_first_error_kept);
    tcase_add_test(tc, test_compile_errors);
    tcase_add_test(tc, test_feed_errors);
    tcase_add_test(tc, test_grad_accumulates);
    tcase_add_test(tc, test_no_grad_for_unrelated_params);
    tcase_add_test(tc, test_initialisers);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
