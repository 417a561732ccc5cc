/* Shape ops: concat and slice (and slice_grad through slice's gradient), for every dtype. Forward
 * values against index maps computed naively here, numerical gradients, dynamic and empty batches,
 * slices of a transpose (non-contiguous), and bad calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "shape_helpers.h"

/* ---- concat ------------------------------------------------------------------------------------ */

/* n inputs [2, a_k, 3] (a = 1, 2, 3, ...) joined along `axis` of their 3 dims (the axis dim of
 * input k is k + 1 whatever the axis; the others 2 and 3). */
static void concat_case(loom_dtype dt, int n, int axis)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    int ax = axis < 0 ? axis + 3 : axis;
    loom_tensor *xs[8];
    void *xd[8];
    int64_t d[8][3] = {{0}}, yd[3], total = 0;
    for (int k = 0; k < n; k++) {
        int64_t o[2] = {2, 3};
        for (int i = 0, j = 0; i < 3; i++)
            d[k][i] = i == ax ? k + 1 : o[j++];
        char name[8] = {'x', (char)('0' + k)};
        xd[k] = make(dt, lt_numel(3, d[k]), 10 * k);
        xs[k] = lt_input_static(c, name, dt, loom__shape_n(3, d[k]), xd[k]);
        total += k + 1;
    }
    for (int i = 0; i < 3; i++)
        yd[i] = i == ax ? total : d[0][i];
    loom_tensor *y = loom_concat(g, xs, n, axis);
    ck_assert_msg(!loom_tensor_is_poisoned(y), "%s", loom_graph_error(g));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(loom_tensor_dim(y, i), yd[i]);
    loom_array out = lt_eval(c, y);
    int64_t ny = lt_numel(3, yd);
    for (int64_t o = 0; o < ny; o++) {
        int64_t idx[3];
        unravel(o, 3, yd, idx);
        /* idx[ax] < total, so the walk stops at the last input at the latest; the bound on k
         * says so to the compiler too (it cannot see that xd[k] is set otherwise) */
        int k = 0;
        while (k < n - 1 && idx[ax] >= d[k][ax])
            idx[ax] -= d[k++][ax];
        double want = get(xd[k], dt, ravel(3, d[k], idx));
        ck_assert_msg(get(out.data, dt, o) == want, "loom_concat (%s, axis %d) [%lld]", loom_dtype_name(dt), axis,
                      (long long)o);
    }
    for (int k = 0; k < n; k++)
        free(xd[k]);
    lt_case_free(c);
}

START_TEST(test_concat_forward)
{
    loom_dtype dt = all_dtypes[_i];
    concat_case(dt, 3, 1);
    concat_case(dt, 3, 0);
    concat_case(dt, 3, -1);
    concat_case(dt, 1, 2);
    concat_case(dt, 8, 1);
}
END_TEST

START_TEST(test_concat_grad)
{
    for (int axis = 0; axis < 3; axis++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *xs[3];
        for (int k = 0; k < 3; k++) {
            int64_t d[3] = {2, 3, 2};
            d[axis] = k + 1;
            char name[4] = {'p', (char)('0' + k)};
            xs[k] = lt_param(c, name, loom__shape_n(3, d));
        }
        lt_gradcheck(c, loom_concat(g, xs, 3, axis), 1e-6);
        lt_case_free(c);
    }
    /* an input among the parameters, and one parameter twice */
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *p = lt_param(c, "p", loom_shape(2, 2));
    loom_tensor *x = lt_input_static(c, "x", LOOM_F64, loom_shape(2, 1), (double[]){0.5, -2});
    lt_gradcheck(c, loom_concat(g, (loom_tensor *[]){p, x, p}, 3, -1), 1e-6);
    lt_case_free(c);
}
END_TEST

/* [N, 2] and [N, 3] along axis 1 with N = 0 and 4. */
START_TEST(test_concat_dynamic)
{
    int64_t nnow = _i ? 4 : 0;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    double *a = make(LOOM_F64, nnow * 2, 1), *b = make(LOOM_F64, nnow * 3, 2);
    loom_tensor *ta = lt_input(c, "a", LOOM_F64, loom_shape(N, 2), (int64_t[]){nnow, 2}, a);
    loom_tensor *tb = lt_input(c, "b", LOOM_F64, loom_shape(N, 3), (int64_t[]){nnow, 3}, b);
    loom_tensor *y = loom_concat(g, (loom_tensor *[]){ta, tb}, 2, 1);
    ck_assert(loom_tensor_dim(y, 0) == N);
    ck_assert_int_eq(loom_tensor_dim(y, 1), 5);
    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.shape[0], nnow);
    const double *o = out.data;
    for (int64_t r = 0; r < nnow; r++)
        for (int j = 0; j < 5; j++)
            ck_assert(o[r * 5 + j] == (j < 2 ? a[r * 2 + j] : b[r * 3 + j - 2]));
    free(a);
    free(b);
    lt_case_free(c);
}
END_TEST

START_TEST(test_concat_bad)
{
    for (int which = 0; which < 10; which++) {
        loom_graph *g = loom_graph_new();
        loom_dim N = loom_dim_dynamic(g, "N", 8);
        loom_tensor *a = loom_input(g, "a", LOOM_F32, loom_shape(N, 4));
        loom_tensor *b = loom_input(g, "b", LOOM_F32, loom_shape(N, 2));
        loom_tensor *xs[9] = {a, b, a, b, a, b, a, b, a}, *y = NULL;
        const char *what = NULL;
        switch (which) {
        case 0: y = loom_concat(g, NULL, 2, 1), what = "xs is NULL"; break;
        case 1: y = loom_concat(g, xs, 0, 1), what = "takes 1 to 8 tensors, got n = 0"; break;
        case 2: y = loom_concat(g, xs, 9, 1), what = "takes 1 to 8 tensors, got n = 9"; break;
        case 3: xs[1] = loom_input(g, "c", LOOM_F64, loom_shape(N, 2)), what = "operand 2 is f64, operand 1 f32"; break;
        case 4: xs[1] = loom_input(g, "c", LOOM_F32, loom_shape(3, 2)), what = "operand 2 is [3, 2], operand 1 [N, 4]"; break;
        case 5: xs[1] = loom_input(g, "c", LOOM_F32, loom_shape(N, 2, 1)), what = "all dims but axis 1 must match"; break;
        case 6: y = loom_concat(g, xs, 2, 2), what = "axis 2 out of range for [N, 4]"; break;
        case 7: xs[1] = a, y = loom_concat(g, xs, 2, 0), what = "the concat axis 0 must be static"; break;
        case 8: xs[1] = NULL, what = "tensor argument 2 is NULL"; break;
        case 9:
            xs[0] = loom_input(g, "s", LOOM_F32, loom_shape()), xs[1] = xs[0], what = "cannot concatenate scalars";
            break;
        }
        if (!y)
            y = loom_concat(g, xs, 2, 1);
        ck_assert(loom_tensor_is_poisoned(y));
        lt_expect_error(g, "loom_concat: ");
        lt_expect_error(g, what);
        loom_graph_free(g);
    }
    ck_assert_ptr_null(loom_concat(NULL, NULL, 1, 0));
}
END_TEST

/* ---- slice ------------------------------------------------------------------------------------- */

static void slice_case(loom_dtype dt, int nd, const int64_t *d, int axis, int64_t start, int64_t end)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    int ax = axis < 0 ? axis + nd : axis;
    int64_t n = lt_numel(nd, d), yd[LOOM_MAX_DIMS];
    void *x = make(dt, n, 9);
    loom_tensor *y = loom_slice(g, lt_input_static(c, "x", dt, loom__shape_n(nd, d), x), axis, start, end);
    ck_assert_msg(!loom_tensor_is_poisoned(y), "%s", loom_graph_error(g));
    memcpy(yd, d, (size_t)nd * sizeof *yd);
    yd[ax] = end - start;
    for (int i = 0; i < nd; i++)
        ck_assert_int_eq(loom_tensor_dim(y, i), yd[i]);
    int64_t ny = lt_numel(nd, yd), *map = malloc((size_t)(ny + 1) * sizeof *map);
    for (int64_t o = 0; o < ny; o++) {
        int64_t idx[LOOM_MAX_DIMS];
        unravel(o, nd, yd, idx);
        idx[ax] += start;
        map[o] = ravel(nd, d, idx);
    }
    loom_array out = lt_eval(c, y);
    check_map(&out, x, map, ny, "loom_slice");
    free(map);
    free(x);
    lt_case_free(c);
}

START_TEST(test_slice_forward)
{
    loom_dtype dt = all_dtypes[_i];
    int64_t d3[3] = {3, 4, 5}, d1[1] = {6}, d2[2] = {1, 7};
    slice_case(dt, 3, d3, 1, 1, 3);
    slice_case(dt, 3, d3, 0, 2, 3);
    slice_case(dt, 3, d3, -1, 0, 5);
    slice_case(dt, 3, d3, 2, 4, 5);
    slice_case(dt, 3, d3, 1, 2, 2); /* empty */
    slice_case(dt, 1, d1, 0, 1, 5);
    slice_case(dt, 2, d2, 1, 3, 7);
    slice_case(dt, 2, d2, 0, 0, 1);
}
END_TEST

START_TEST(test_slice_grad)
{
    static const struct {
        int nd;
        int64_t d[3];
        int axis;
        int64_t start, end;
    } sc[] = {{2, {3, 5}, 1, 1, 4}, {2, {3, 5}, 0, 0, 1}, {3, {2, 3, 4}, -1, 1, 3}, {3, {2, 3, 4}, 1, 0, 3},
              {1, {4}, 0, 2, 2}};
    for (size_t k = 0; k < sizeof sc / sizeof sc[0]; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *p = lt_param(c, "p", loom__shape_n(sc[k].nd, sc[k].d));
        loom_tensor *y = loom_slice(g, p, sc[k].axis, sc[k].start, sc[k].end);
        if (sc[k].start == sc[k].end) /* an empty slice: gradcheck a loss that still uses p */
            y = loom_concat(g, (loom_tensor *[]){y, p}, 2, 0);
        lt_gradcheck(c, y, 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* A slice of a transpose, and a transpose of a slice: strided reads in both directions. */
START_TEST(test_slice_of_transpose)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    int64_t d[3] = {3, 4, 5};
    double *x = make(LOOM_F64, 60, 4);
    loom_tensor *tx = lt_input_static(c, "x", LOOM_F64, loom__shape_n(3, d), x);
    static const int perm[3] = {2, 0, 1};
    loom_tensor *a = loom_slice(g, loom_transpose(g, tx, perm), 1, 1, 3); /* [5, 2, 4] */
    loom_tensor *b = loom_transpose(g, loom_slice(g, tx, 2, 1, 4), perm); /* [3, 3, 4] */
    loom_array out = lt_eval(c, a);
    for (int64_t o = 0; o < 40; o++) {
        int64_t i[3];
        unravel(o, 3, (int64_t[]){5, 2, 4}, i); /* (k, i0 - 1, j) */
        ck_assert(((double *)out.data)[o] == x[((i[1] + 1) * 4 + i[2]) * 5 + i[0]]);
    }
    out = lt_eval(c, b);
    for (int64_t o = 0; o < 36; o++) {
        int64_t i[3];
        unravel(o, 3, (int64_t[]){3, 3, 4}, i); /* (k - 1, i0, j) */
        ck_assert(((double *)out.data)[o] == x[(i[1] * 4 + i[2]) * 5 + i[0] + 1]);
    }
    free(x);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    loom_tensor *p = lt_param(c, "p", loom__shape_n(3, d));
    lt_gradcheck(c, loom_transpose(g, loom_slice(g, loom_transpose(g, p, perm), 1, 1, 3), NULL), 1e-6);
    lt_case_free(c);
}
END_TEST

/* [N, 5] sliced along its static axis with N = 0 and 3, forward and gradient. */
START_TEST(test_slice_dynamic)
{
    int64_t nnow = _i ? 3 : 0;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    double *x = make(LOOM_F64, nnow * 5, 1);
    loom_tensor *y = loom_slice(g, lt_input(c, "x", LOOM_F64, loom_shape(N, 5), (int64_t[]){nnow, 5}, x), 1, 1, 3);
    ck_assert(loom_tensor_dim(y, 0) == N);
    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.shape[0], nnow);
    ck_assert_int_eq(out.shape[1], 2);
    for (int64_t r = 0; r < nnow; r++)
        for (int j = 0; j < 2; j++)
            ck_assert(((double *)out.data)[r * 2 + j] == x[r * 5 + 1 + j]);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *tx = lt_input(c, "x", LOOM_F64, loom_shape(N, 5), (int64_t[]){nnow, 5}, x);
    loom_tensor *p = lt_param(c, "p", loom_shape(5));
    lt_gradcheck(c, loom_slice(g, loom_mul(g, tx, p), 1, 2, 5), 1e-6);
    free(x);
    lt_case_free(c);
}
END_TEST

START_TEST(test_slice_bad)
{
    for (int which = 0; which < 8; which++) {
        loom_graph *g = loom_graph_new();
        loom_dim N = loom_dim_dynamic(g, "N", 8);
        loom_tensor *x = loom_input(g, "x", LOOM_U8, loom_shape(N, 6)), *y = NULL;
        const char *what = NULL;
        switch (which) {
        case 0: y = loom_slice(g, NULL, 0, 0, 1), what = "tensor argument 1 is NULL"; break;
        case 1: y = loom_slice(g, x, 2, 0, 1), what = "axis 2 out of range for [N, 6]"; break;
        case 2: y = loom_slice(g, x, -3, 0, 1), what = "axis -3 out of range for [N, 6]"; break;
        case 3: y = loom_slice(g, x, 1, -1, 2), what = "range [-1, 2) out of range for axis 1 of [N, 6]"; break;
        case 4: y = loom_slice(g, x, 1, 2, 7), what = "range [2, 7) out of range"; break;
        case 5: y = loom_slice(g, x, 1, 4, 3), what = "range [4, 3) out of range"; break;
        case 6: y = loom_slice(g, x, 0, 0, 1), what = "axis 0 of [N, 6] is dynamic"; break;
        case 7: y = loom_slice(g, loom_input_csr(g, "m", LOOM_F32, 4, 4), 0, 0, 1), what = "CSR"; break;
        }
        ck_assert(loom_tensor_is_poisoned(y));
        lt_expect_error(g, "loom_slice: ");
        lt_expect_error(g, what);
        loom_graph_free(g);
    }
    ck_assert_ptr_null(loom_slice(NULL, NULL, 0, 0, 0));
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_concat_slice");
    TCase *tc = tcase_create("concat");
    tcase_add_loop_test(tc, test_concat_forward, 0, NDTYPES);
    tcase_add_test(tc, test_concat_grad);
    tcase_add_loop_test(tc, test_concat_dynamic, 0, 2);
    tcase_add_test(tc, test_concat_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("slice");
    tcase_add_loop_test(tc, test_slice_forward, 0, NDTYPES);
    tcase_add_test(tc, test_slice_grad);
    tcase_add_test(tc, test_slice_of_transpose);
    tcase_add_loop_test(tc, test_slice_dynamic, 0, 2);
    tcase_add_test(tc, test_slice_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
