/* Shape ops: reshape and transpose, for every dtype. Forward values against index maps computed
 * naively here, numerical gradients, dynamic and empty batches, and bad calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shape_helpers.h"

/* ---- reshape ----------------------------------------------------------------------------------- */

START_TEST(test_reshape_forward)
{
    loom_dtype dt = all_dtypes[_i];
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    void *x = make(dt, 24, 3), *one = make(dt, 1, 5);
    loom_tensor *tx = lt_input_static(c, "x", dt, loom_shape(2, 3, 4), x);
    loom_tensor *t1 = lt_input_static(c, "one", dt, loom_shape(1, 1), one);
    loom_tensor *y[5] = {loom_reshape(g, tx, loom_shape(4, 6)), loom_reshape(g, tx, loom_shape(24)),
                         loom_reshape(g, tx, loom_shape(2, 12, 1)), loom_reshape(g, tx, loom_shape(1, 2, 1, 3, 4, 1)),
                         loom_reshape(g, t1, loom_shape())};
    ck_assert_int_eq(loom_tensor_ndim(y[3]), 6);
    ck_assert_int_eq(loom_tensor_dim(y[0], 1), 6);
    ck_assert_int_eq(loom_tensor_ndim(y[4]), 0);
    int64_t map[24];
    for (int k = 0; k < 24; k++)
        map[k] = k;
    for (int k = 0; k < 4; k++) {
        loom_array out = lt_eval(c, y[k]);
        ck_assert_int_eq(out.dtype, dt);
        check_map(&out, x, map, 24, "loom_reshape");
    }
    loom_array out = lt_eval(c, y[4]);
    ck_assert_int_eq(out.ndim, 0);
    check_map(&out, one, map, 1, "loom_reshape");
    free(x);
    free(one);
    lt_case_free(c);
}
END_TEST

START_TEST(test_reshape_grad)
{
    static const struct {
        int xn, yn;
        int64_t x[LOOM_MAX_DIMS], y[LOOM_MAX_DIMS];
    } rc[] = {{3, 2, {2, 3, 4}, {6, 4}}, {1, 0, {1}, {0}}, {2, 3, {4, 3}, {2, 1, 6}}};
    for (size_t k = 0; k < sizeof rc / sizeof rc[0]; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *p = lt_param(c, "p", loom__shape_n(rc[k].xn, rc[k].x));
        lt_gradcheck(c, loom_reshape(g, p, loom__shape_n(rc[k].yn, rc[k].y)), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* [N, 16] -> [N, 4, 4] and [4, N, 4] with N = 0 and 3 of 8; and a gradient through them. */
START_TEST(test_reshape_dynamic)
{
    int64_t nnow = _i ? 3 : 0;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    void *x = make(LOOM_F64, nnow * 16, 1);
    loom_tensor *tx = lt_input(c, "x", LOOM_F64, loom_shape(N, 16), (int64_t[]){nnow, 16}, x);
    loom_tensor *a = loom_reshape(g, tx, loom_shape(N, 4, 4)), *b = loom_reshape(g, tx, loom_shape(4, N, 4));
    ck_assert(loom_tensor_dim(b, 1) == N);
    int64_t map[48];
    for (int k = 0; k < 48; k++)
        map[k] = k;
    loom_array out = lt_eval(c, a);
    ck_assert_int_eq(out.shape[0], nnow);
    check_map(&out, x, map, nnow * 16, "loom_reshape");
    out = lt_eval(c, b);
    ck_assert_int_eq(out.shape[1], nnow);
    check_map(&out, x, map, nnow * 16, "loom_reshape");
    free(x);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    N = loom_dim_dynamic(g, "N", 8);
    x = make(LOOM_F64, nnow * 4, 2);
    tx = lt_input(c, "x", LOOM_F64, loom_shape(N, 4), (int64_t[]){nnow, 4}, x);
    loom_tensor *p = lt_param(c, "p", loom_shape(2, 2));
    lt_gradcheck(c, loom_reshape(g, loom_mul(g, tx, loom_reshape(g, p, loom_shape(4))), loom_shape(2, N, 2)), 1e-6);
    free(x);
    lt_case_free(c);
}
END_TEST

START_TEST(test_reshape_bad)
{
    for (int which = 0; which < 8; which++) {
        loom_graph *g = loom_graph_new();
        loom_dim N = loom_dim_dynamic(g, "N", 8);
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 16)), *y = NULL;
        loom_tensor *s = loom_input(g, "s", LOOM_I32, loom_shape(2, 3));
        loom_shape seven = {.ndim = 7, .d = {1, 1, 1, 1, 1, 1}};
        const char *what = NULL;
        switch (which) {
        case 0: y = loom_reshape(g, NULL, loom_shape(2)), what = "tensor argument 1 is NULL"; break;
        case 1: y = loom_reshape(g, s, loom_shape(4, 2)), what = "cannot reshape [2, 3] to [4, 2]: element counts differ"; break;
        case 2: y = loom_reshape(g, x, loom_shape(16, 8)), what = "dynamic dim [N] must appear as often in both"; break;
        case 3: y = loom_reshape(g, x, loom_shape(N, N, 16)), what = "cannot reshape [N, 16] to [N, N, 16]"; break;
        case 4: y = loom_reshape(g, x, loom_shape(N, 8)), what = "element counts differ"; break;
        case 5: y = loom_reshape(g, s, loom_shape(-6)), what = "target dim 0 is -6"; break;
        case 6: y = loom_reshape(g, loom_input(g, "one", LOOM_F32, loom_shape(1)), seven), what = "7 dims"; break;
        case 7: y = loom_reshape(g, loom_input_csr(g, "m", LOOM_F32, 4, 4), loom_shape(16)), what = "CSR"; break;
        }
        ck_assert(loom_tensor_is_poisoned(y));
        lt_expect_error(g, "loom_reshape: ");
        lt_expect_error(g, what);
        loom_graph_free(g);
    }
    ck_assert_ptr_null(loom_reshape(NULL, NULL, loom_shape(1)));
}
END_TEST

/* ---- transpose --------------------------------------------------------------------------------- */

typedef struct tcase_ {
    int nd;
    int64_t d[LOOM_MAX_DIMS];
    int perm[LOOM_MAX_DIMS];
    int reverse; /* perm NULL */
} tcase_;

static const tcase_ tcases[] = {
    {2, {3, 4}, {0}, 1},
    {3, {2, 3, 4}, {1, 2, 0}, 0},
    {3, {2, 3, 4}, {2, 0, 1}, 0},
    {3, {2, 3, 4}, {0, 2, 1}, 0},
    {3, {2, 3, 4}, {0, 1, 2}, 0},
    {3, {2, 3, 4}, {0}, 1},
    {4, {2, 1, 3, 2}, {3, 1, 0, 2}, 0},
    {3, {1, 5, 1}, {2, 0, 1}, 0},
    {6, {2, 1, 2, 3, 1, 2}, {5, 3, 1, 0, 4, 2}, 0},
    {1, {7}, {0}, 0},
    {0, {0}, {0}, 1},
    {2, {33, 17}, {1, 0}, 0},
};
enum { NTCASES = sizeof tcases / sizeof tcases[0] };

static int64_t *transpose_map(const tcase_ *k, int64_t *yd)
{
    int perm[LOOM_MAX_DIMS];
    for (int i = 0; i < k->nd; i++) {
        perm[i] = k->reverse ? k->nd - 1 - i : k->perm[i];
        yd[i] = k->d[perm[i]];
    }
    int64_t n = lt_numel(k->nd, k->d), *map = malloc((size_t)n * sizeof *map);
    ck_assert_ptr_nonnull(map);
    for (int64_t o = 0; o < n; o++) {
        int64_t oi[LOOM_MAX_DIMS], xi[LOOM_MAX_DIMS];
        unravel(o, k->nd, yd, oi);
        for (int i = 0; i < k->nd; i++)
            xi[perm[i]] = oi[i];
        map[o] = ravel(k->nd, k->d, xi);
    }
    return map;
}

START_TEST(test_transpose_forward)
{
    loom_dtype dt = all_dtypes[_i];
    for (int k = 0; k < NTCASES; k++) {
        const tcase_ *tk = &tcases[k];
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        int64_t n = lt_numel(tk->nd, tk->d), yd[LOOM_MAX_DIMS];
        void *x = make(dt, n, k);
        loom_tensor *y = loom_transpose(g, lt_input_static(c, "x", dt, loom__shape_n(tk->nd, tk->d), x), tk->reverse ? NULL : tk->perm);
        int64_t *map = transpose_map(tk, yd);
        ck_assert_int_eq(loom_tensor_ndim(y), tk->nd);
        for (int i = 0; i < tk->nd; i++)
            ck_assert_int_eq(loom_tensor_dim(y, i), yd[i]);
        loom_array out = lt_eval(c, y);
        for (int i = 0; i < tk->nd; i++)
            ck_assert_int_eq(out.shape[i], yd[i]);
        check_map(&out, x, map, n, "loom_transpose");
        free(map);
        free(x);
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_transpose_grad)
{
    static const int cases[] = {1, 2, 5, 6, 8};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const tcase_ *tk = &tcases[cases[k]];
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *p = lt_param(c, "p", loom__shape_n(tk->nd, tk->d));
        lt_gradcheck(c, loom_transpose(g, p, tk->reverse ? NULL : tk->perm), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_transpose_dynamic)
{
    int64_t nnow = _i ? 4 : 0;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    void *x = make(LOOM_F32, nnow * 3, 1);
    loom_tensor *y = loom_transpose(g, lt_input(c, "x", LOOM_F32, loom_shape(N, 3), (int64_t[]){nnow, 3}, x), NULL);
    ck_assert_int_eq(loom_tensor_dim(y, 0), 3);
    ck_assert(loom_tensor_dim(y, 1) == N);
    tcase_ tk = {2, {nnow, 3}, {0}, 1};
    int64_t yd[2], *map = transpose_map(&tk, yd);
    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.shape[1], nnow);
    check_map(&out, x, map, nnow * 3, "loom_transpose");
    free(map);
    free(x);
    lt_case_free(c);
}
END_TEST

START_TEST(test_transpose_bad)
{
    static const int perms[][3] = {{0, 0, 2}, {0, 1, 3}, {-1, 0, 1}, {2, 1, 1}};
    for (int which = 0; which < 6; which++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(2, 3, 4)), *y;
        const char *what = "is not a permutation of 0..2 for [2, 3, 4]";
        if (which < 4)
            y = loom_transpose(g, x, perms[which]);
        else if (which == 4)
            y = loom_transpose(g, NULL, NULL), what = "tensor argument 1 is NULL";
        else
            y = loom_transpose(g, loom_input_csr(g, "m", LOOM_F32, 4, 4), NULL), what = "CSR";
        ck_assert(loom_tensor_is_poisoned(y));
        lt_expect_error(g, "loom_transpose: ");
        lt_expect_error(g, what);
        if (which == 0)
            lt_expect_error(g, "perm [0, 0, 2]");
        loom_graph_free(g);
    }
    ck_assert_ptr_null(loom_transpose(NULL, NULL, NULL));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_shape");
    TCase *tc = tcase_create("reshape");
    tcase_add_loop_test(tc, test_reshape_forward, 0, NDTYPES);
    tcase_add_test(tc, test_reshape_grad);
    tcase_add_loop_test(tc, test_reshape_dynamic, 0, 2);
    tcase_add_test(tc, test_reshape_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("transpose");
    tcase_add_loop_test(tc, test_transpose_forward, 0, NDTYPES);
    tcase_add_test(tc, test_transpose_grad);
    tcase_add_loop_test(tc, test_transpose_dynamic, 0, 2);
    tcase_add_test(tc, test_transpose_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
