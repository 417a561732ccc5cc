/* Shape ops: reshape, transpose, concat and slice (and slice_grad through slice's gradient), for
 * every dtype. Forward values against index maps computed naively here, numerical gradients,
 * dynamic and empty batches, non-contiguous compositions, and bad calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const loom_dtype all_dtypes[] = {LOOM_F32, LOOM_F64, LOOM_I32, LOOM_I64, LOOM_U8};
enum { NDTYPES = sizeof all_dtypes / sizeof all_dtypes[0] };

/* n distinct-ish elements of dtype: element i is (i * 7 + seed) % 251, so u8 holds them too. */
static void *make(loom_dtype dt, int64_t n, int seed)
{
    void *p = malloc((size_t)(n ? n : 1) * loom_dtype_size(dt));
    ck_assert_ptr_nonnull(p);
    for (int64_t i = 0; i < n; i++) {
        int v = (int)((i * 7 + seed) % 251);
        switch (dt) {
        case LOOM_F32: ((float *)p)[i] = (float)v + 0.25f; break;
        case LOOM_F64: ((double *)p)[i] = v - 0.125; break;
        case LOOM_I32: ((int32_t *)p)[i] = -v; break;
        case LOOM_I64: ((int64_t *)p)[i] = (int64_t)v << 33; break;
        default: ((uint8_t *)p)[i] = (uint8_t)v; break;
        }
    }
    return p;
}

static double get(const void *p, loom_dtype dt, int64_t i)
{
    switch (dt) {
    case LOOM_F32: return ((const float *)p)[i];
    case LOOM_F64: return ((const double *)p)[i];
    case LOOM_I32: return ((const int32_t *)p)[i];
    case LOOM_I64: return (double)((const int64_t *)p)[i];
    default: return ((const uint8_t *)p)[i];
    }
}

/* out element k must be in element map[k] (-1: must be 0). */
static void check_map(const loom_array *out, const void *in, const int64_t *map, int64_t n, const char *what)
{
    ck_assert_int_eq(loom_array_numel(out), n);
    for (int64_t k = 0; k < n; k++) {
        double want = map[k] < 0 ? 0 : get(in, out->dtype, map[k]);
        ck_assert_msg(get(out->data, out->dtype, k) == want, "%s (%s) [%lld]: got %g, expected %g", what,
                      loom_dtype_name(out->dtype), (long long)k, get(out->data, out->dtype, k), want);
    }
}

static void unravel(int64_t k, int nd, const int64_t *d, int64_t *idx)
{
    for (int i = nd - 1; i >= 0; i--) {
        idx[i] = k % d[i];
        k /= d[i];
    }
}

static int64_t ravel(int nd, const int64_t *d, const int64_t *idx)
{
    int64_t k = 0;
    for (int i = 0; i < nd; i++)
        k = k * d[i] + idx[i];
    return k;
}

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

    tc = tcase_create("concat");
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
