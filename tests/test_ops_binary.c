/* Binary elementwise ops: add, sub, mul, div (NumPy broadcasting), scale, bias_add. Forward values
 * against a naive reference, numerical gradients, awkward shapes and bad calls. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

enum { ADD, SUB, MUL, DIV, NOPS };
static const char *const op_api[NOPS] = {"loom_add", "loom_sub", "loom_mul", "loom_div"};

static loom_tensor *apply(loom_graph *g, int op, loom_tensor *a, loom_tensor *b)
{
    switch (op) {
    case ADD: return loom_add(g, a, b);
    case SUB: return loom_sub(g, a, b);
    case MUL: return loom_mul(g, a, b);
    default: return loom_div(g, a, b);
    }
}

static double ref_op(int op, double a, double b)
{
    switch (op) {
    case ADD: return a + b;
    case SUB: return a - b;
    case MUL: return a * b;
    default: return a / b;
    }
}

/* n values N(0, 1); for a divisor, pushed away from 0 so the quotient stays tame. */
static double *data(int64_t n, uint64_t seed, int divisor)
{
    double *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    lt_fill_normal(x, n, seed);
    if (divisor)
        for (int64_t i = 0; i < n; i++)
            x[i] = x[i] < 0 ? x[i] - 0.5 : x[i] + 0.5;
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
    for (int64_t i = 0; i < k; i++) {
        f[i] = (float)x[i];
        x[i] = f[i];
    }
    loom_tensor *t = lt_input_static(c, name, dtype, loom__shape_n(n, d), f);
    free(f);
    return t;
}

/* The naive reference: for each output index, the source indices NumPy broadcasting names. */
static void ref_broadcast(int op, const double *a, int an, const int64_t *as, const double *b, int bn,
                          const int64_t *bs, double *y, int *yn, int64_t *ys)
{
    int nd = an > bn ? an : bn;
    for (int i = 0; i < nd; i++) {
        int64_t da = i - (nd - an) >= 0 ? as[i - (nd - an)] : 1;
        int64_t db = i - (nd - bn) >= 0 ? bs[i - (nd - bn)] : 1;
        ck_assert(da == db || da == 1 || db == 1);
        ys[i] = da == 1 ? db : da;
    }
    *yn = nd;
    int64_t n = lt_numel(nd, ys);
    for (int64_t k = 0; k < n; k++) {
        int64_t idx[LOOM_MAX_DIMS], r = k;
        for (int i = nd - 1; i >= 0; i--) {
            idx[i] = r % ys[i];
            r /= ys[i];
        }
        int64_t ia = 0, ib = 0;
        for (int j = 0; j < an; j++)
            ia = ia * as[j] + (as[j] == 1 ? 0 : idx[j + nd - an]);
        for (int j = 0; j < bn; j++)
            ib = ib * bs[j] + (bs[j] == 1 ? 0 : idx[j + nd - bn]);
        y[k] = ref_op(op, a[ia], b[ib]);
    }
}

typedef struct bcase {
    int an;
    int64_t as[LOOM_MAX_DIMS];
    int bn;
    int64_t bs[LOOM_MAX_DIMS];
} bcase;

static const bcase cases[] = {
    {2, {2, 3}, 1, {3}},
    {1, {3}, 2, {2, 3}},
    {2, {2, 1}, 2, {1, 3}},
    {2, {1, 3}, 2, {2, 1}},
    {2, {2, 3}, 2, {2, 1}},
    {0, {0}, 2, {2, 3}},
    {1, {4}, 0, {0}},
    {0, {0}, 0, {0}},
    {2, {2, 3}, 2, {2, 3}},
    {1, {1}, 1, {1}},
    {2, {1, 1}, 1, {1}},
    {3, {3, 1, 4}, 2, {2, 1}},
    {3, {2, 3, 4}, 3, {2, 1, 4}},
    {4, {2, 3, 4, 5}, 3, {3, 1, 5}},
    {6, {2, 1, 2, 1, 2, 3}, 6, {1, 3, 1, 2, 1, 3}},
    {6, {1, 1, 1, 1, 1, 7}, 1, {7}},
    {2, {37, 19}, 1, {19}}, /* a row broadcast long enough to take vector loops */
};
enum { NCASES = sizeof cases / sizeof cases[0] };

static void check_forward(int op, loom_dtype dtype, const bcase *k, uint64_t seed)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    int64_t na = lt_numel(k->an, k->as), nb = lt_numel(k->bn, k->bs);
    double *a = data(na, seed, 0), *b = data(nb, seed + 1, op == DIV);
    loom_tensor *ta = input(c, "a", dtype, k->an, k->as, a);
    loom_tensor *tb = input(c, "b", dtype, k->bn, k->bs, b);
    loom_tensor *y = apply(g, op, ta, tb);
    ck_assert_int_eq(loom_tensor_dtype(y), dtype);

    double ref[4096];
    int yn;
    int64_t ys[LOOM_MAX_DIMS];
    ref_broadcast(op, a, k->an, k->as, b, k->bn, k->bs, ref, &yn, ys);
    ck_assert_int_eq(loom_tensor_ndim(y), yn);
    for (int i = 0; i < yn; i++)
        ck_assert_int_eq(loom_tensor_dim(y, i), ys[i]);

    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.dtype, dtype);
    ck_assert_int_eq(out.ndim, yn);
    for (int i = 0; i < yn; i++)
        ck_assert_int_eq(out.shape[i], ys[i]);
    double *got = lt_to_double(&out);
    lt_assert_close(got, ref, lt_numel(yn, ys), dtype == LOOM_F32 ? 1e-6 : 1e-14, op_api[op]);
    free(got);
    free(a);
    free(b);
    lt_case_free(c);
}

/* _i: op * 2 + (f64) */
START_TEST(test_forward_cases)
{
    int op = _i / 2;
    loom_dtype dtype = _i % 2 ? LOOM_F64 : LOOM_F32;
    for (int k = 0; k < NCASES; k++)
        check_forward(op, dtype, &cases[k], 100 + (uint64_t)k);
}
END_TEST

/* Random broadcast patterns of 0 to 6 dims: out dims of 1 to 3, each operand keeping a suffix of
 * them with some dims set to 1. */
START_TEST(test_forward_random_patterns)
{
    int op = _i / 2;
    loom_dtype dtype = _i % 2 ? LOOM_F64 : LOOM_F32;
    uint64_t s = 12345 + (uint64_t)_i;
    for (int rep = 0; rep < 60; rep++) {
        bcase k = {0};
        int32_t r[16];
        lt_fill_int(r, 16, 1000, s++);
        int nd = r[0] % (LOOM_MAX_DIMS + 1);
        int64_t d[LOOM_MAX_DIMS];
        for (int i = 0; i < nd; i++)
            d[i] = 1 + r[1 + i] % 3;
        k.an = nd - r[8] % (nd + 1);
        k.bn = nd - r[9] % (nd + 1);
        for (int i = 0; i < k.an; i++)
            k.as[i] = (r[10] >> i & 1) ? 1 : d[i + nd - k.an];
        for (int i = 0; i < k.bn; i++)
            k.bs[i] = (r[11] >> i & 1) ? 1 : d[i + nd - k.bn];
        check_forward(op, dtype, &k, s);
    }
}
END_TEST

START_TEST(test_grad_broadcast)
{
    int op = _i;
    static const bcase gcases[] = {
        {2, {2, 3}, 2, {2, 3}}, {2, {2, 3}, 1, {3}}, {1, {3}, 2, {2, 3}}, {2, {2, 1}, 2, {1, 3}},
        {0, {0}, 2, {2, 3}},    {2, {2, 3}, 0, {0}}, {3, {2, 1, 4}, 3, {1, 3, 1}}, {1, {1}, 1, {1}},
    };
    for (size_t k = 0; k < sizeof gcases / sizeof gcases[0]; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *a = lt_param(c, "a", loom__shape_n(gcases[k].an, gcases[k].as));
        /* a divisor well away from 0 */
        loom_tensor *b = op == DIV ? loom_param(g, "b", LOOM_F64, loom__shape_n(gcases[k].bn, gcases[k].bs),
                                                loom_init_uniform(0.5, 2.0, 7 + k))
                                   : lt_param(c, "b", loom__shape_n(gcases[k].bn, gcases[k].bs));
        lt_gradcheck(c, apply(g, op, a, b), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* One operand a parameter, the other an input; and one tensor used as both operands. */
START_TEST(test_grad_one_side_and_same_tensor)
{
    int op = _i;
    double xd[6] = {0.7, -1.3, 2.1, 0.9, -0.6, 1.4};
    for (int side = 0; side < 3; side++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *p = loom_param(g, "p", LOOM_F64, loom_shape(2, 3), loom_init_uniform(0.5, 2.0, 3));
        loom_tensor *x = lt_input_static(c, "x", LOOM_F64, loom_shape(3), xd);
        loom_tensor *y = side == 0 ? apply(g, op, p, x) : side == 1 ? apply(g, op, x, p) : apply(g, op, p, p);
        lt_gradcheck(c, y, 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* [N, 3] op [3], [N, 1] op [1, 3] and [N, 3] op [N, 3] with N = 0 (empty) and N = 5 (of 8). */
START_TEST(test_dynamic_batch)
{
    int op = _i / 2;
    int64_t nnow = _i % 2 ? 5 : 0;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    double *xd = data(nnow * 3, 1, op == DIV), *wd = data(3, 2, op == DIV), *ud = data(3, 3, op == DIV);
    loom_tensor *x = lt_input(c, "x", LOOM_F64, loom_shape(N, 3), (int64_t[]){nnow, 3}, xd);
    loom_tensor *x1 = lt_input(c, "x1", LOOM_F64, loom_shape(N, 1), (int64_t[]){nnow, 1}, xd);
    loom_tensor *w = lt_input_static(c, "w", LOOM_F64, loom_shape(3), wd);
    loom_tensor *u = lt_input_static(c, "u", LOOM_F64, loom_shape(1, 3), ud);
    loom_tensor *y[3] = {apply(g, op, x, w), apply(g, op, x1, u), apply(g, op, x, x)};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(loom_tensor_ndim(y[k]), 2);
        ck_assert(loom_tensor_dim(y[k], 0) == N);
        ck_assert_int_eq(loom_tensor_dim(y[k], 1), 3);
    }
    for (int k = 0; k < 3; k++) {
        loom_array out = lt_eval(c, y[k]);
        ck_assert_int_eq(out.ndim, 2);
        ck_assert_int_eq(out.shape[0], nnow);
        ck_assert_int_eq(out.shape[1], 3);
        const double *o = out.data;
        for (int64_t r = 0; r < nnow; r++)
            for (int j = 0; j < 3; j++) {
                double e = k == 0 ? ref_op(op, xd[r * 3 + j], wd[j])
                         : k == 1 ? ref_op(op, xd[r], ud[j])
                                  : ref_op(op, xd[r * 3 + j], xd[r * 3 + j]);
                ck_assert_double_eq_tol(o[r * 3 + j], e, 1e-14 * fmax(1, fabs(e)));
            }
    }
    free(xd);
    free(wd);
    free(ud);
    lt_case_free(c);
}
END_TEST

/* The gradient of a broadcast parameter through an empty batch is zero, and runs. */
START_TEST(test_grad_empty_batch)
{
    int op = _i;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *x = lt_input(c, "x", LOOM_F64, loom_shape(N, 3), (int64_t[]){0, 3}, NULL);
    loom_tensor *w = loom_param(g, "w", LOOM_F64, loom_shape(3), loom_init_uniform(0.5, 2.0, 1));
    lt_gradcheck(c, apply(g, op, x, w), 1e-6);
    lt_case_free(c);
}
END_TEST

static void expect_bad(int op, int which)
{
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *a = loom_input(g, "a", LOOM_F32, loom_shape(N, 16));
    loom_tensor *y = NULL;
    const char *what = op_api[op];
    switch (which) {
    case 0: y = apply(g, op, a, NULL); break;
    case 1: y = apply(g, op, NULL, a); break;
    case 2: y = apply(g, op, a, loom_input(g, "b", LOOM_F32, loom_shape(8))), what = "do not broadcast"; break;
    case 3: y = apply(g, op, a, loom_input(g, "b", LOOM_F32, loom_shape(8, 16))); break; /* N vs 8 */
    case 4: y = apply(g, op, a, loom_input(g, "b", LOOM_F64, loom_shape(16))), what = "f32 and f64"; break;
    case 5: y = apply(g, op, loom_input(g, "b", LOOM_I32, loom_shape(16)), a), what = "i32"; break;
    case 6: y = apply(g, op, a, loom_input(g, "b", LOOM_U8, loom_shape(N, 16))), what = "u8"; break;
    case 7: y = apply(g, op, loom_input_csr(g, "m", LOOM_F32, N, 16), a), what = "CSR"; break;
    case 8: y = apply(g, op, a, loom_input(g, "b", LOOM_F32, loom_shape(2, 1, 3))); break;
    }
    ck_assert(loom_tensor_is_poisoned(y));
    lt_expect_error(g, op_api[op]);
    lt_expect_error(g, what);
    /* the first error is the one kept; a poisoned operand poisons what uses it */
    loom_tensor *z = loom_add(g, y, a);
    ck_assert(loom_tensor_is_poisoned(z));
    lt_expect_error(g, op_api[op]);
    loom_graph_free(g);
}

START_TEST(test_bad_calls)
{
    for (int op = 0; op < NOPS; op++)
        for (int which = 0; which < 9; which++)
            expect_bad(op, which);
}
END_TEST

START_TEST(test_broadcast_shapes)
{
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 8), M = loom_dim_dynamic(g, "M", 8);
    loom_tensor *a = loom_input(g, "a", LOOM_F32, loom_shape(N, 1, 4));
    loom_tensor *b = loom_input(g, "b", LOOM_F32, loom_shape(3, 1));
    loom_tensor *y = loom_mul(g, a, b);
    ck_assert_int_eq(loom_tensor_ndim(y), 3);
    ck_assert(loom_tensor_dim(y, 0) == N);
    ck_assert_int_eq(loom_tensor_dim(y, 1), 3);
    ck_assert_int_eq(loom_tensor_dim(y, 2), 4);
    /* a static 1 stretches to a dynamic dim */
    loom_tensor *c = loom_input(g, "c", LOOM_F32, loom_shape(1, 3, 4));
    ck_assert(loom_tensor_dim(loom_add(g, c, a), 0) == N);
    ck_assert_ptr_null(loom_graph_error(g));
    /* two different dynamic dims do not broadcast */
    loom_tensor *d = loom_input(g, "d", LOOM_F32, loom_shape(M, 1, 4));
    ck_assert(loom_tensor_is_poisoned(loom_sub(g, a, d)));
    lt_expect_error(g, "loom_sub: shapes [N, 1, 4] and [M, 1, 4] do not broadcast");
    loom_graph_free(g);
    /* a NULL graph returns NULL without a crash */
    ck_assert_ptr_null(loom_add(NULL, NULL, NULL));
    ck_assert_ptr_null(loom_scale(NULL, NULL, 2.0));
    ck_assert_ptr_null(loom_bias_add(NULL, NULL, NULL));
}
END_TEST

/* ---- scale ------------------------------------------------------------------------------------ */

START_TEST(test_scale_forward)
{
    loom_dtype dtype = _i ? LOOM_F64 : LOOM_F32;
    static const double s[] = {2.5, -1.0, 0.0};
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    double *x = data(12, 9, 0);
    loom_tensor *t = input(c, "x", dtype, 3, (int64_t[]){2, 3, 2}, x);
    loom_tensor *y[3], *sc = input(c, "s", dtype, 0, NULL, (double[]){1.5});
    for (int k = 0; k < 3; k++)
        y[k] = loom_scale(g, t, s[k]);
    loom_tensor *ys = loom_scale(g, sc, -4.0); /* a scalar */
    for (int k = 0; k < 3; k++) {
        loom_array out = lt_eval(c, y[k]);
        ck_assert_int_eq(out.ndim, 3);
        double *got = lt_to_double(&out), ref[12];
        for (int i = 0; i < 12; i++)
            ref[i] = x[i] * s[k];
        lt_assert_close(got, ref, 12, dtype == LOOM_F32 ? 1e-6 : 1e-15, "loom_scale");
        free(got);
    }
    loom_array out = lt_eval(c, ys);
    ck_assert_int_eq(out.ndim, 0);
    double *got = lt_to_double(&out);
    ck_assert_double_eq_tol(got[0], -6.0, 1e-6);
    free(got);
    free(x);
    lt_case_free(c);
}
END_TEST

START_TEST(test_scale_grad_and_empty)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    lt_gradcheck(c, loom_scale(g, lt_param(c, "x", loom_shape(3, 4)), -1.75), 1e-6);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *x = lt_input(c, "x", LOOM_F32, loom_shape(N, 4), (int64_t[]){0, 4}, NULL);
    loom_array out = lt_eval(c, loom_scale(g, x, 3.0));
    ck_assert_int_eq(out.ndim, 2);
    ck_assert_int_eq(out.shape[0], 0);
    ck_assert_int_eq(out.shape[1], 4);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    lt_gradcheck(c, loom_scale(g, lt_param(c, "x", loom_shape(1)), 3.0), 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_scale_bad)
{
    for (int which = 0; which < 4; which++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", which == 1 ? LOOM_I32 : LOOM_F64, loom_shape(3));
        loom_tensor *y = which == 0 ? loom_scale(g, NULL, 1.0)
                       : which == 1 ? loom_scale(g, x, 1.0)
                       : which == 2 ? loom_scale(g, x, NAN)
                                    : loom_scale(g, x, INFINITY);
        ck_assert(loom_tensor_is_poisoned(y));
        lt_expect_error(g, "loom_scale");
        lt_expect_error(g, which == 0 ? "NULL" : which == 1 ? "i32" : "finite");
        loom_graph_free(g);
    }
}
END_TEST

/* ---- bias_add --------------------------------------------------------------------------------- */

START_TEST(test_bias_add_forward)
{
    loom_dtype dtype = _i ? LOOM_F64 : LOOM_F32;
    static const int nds[] = {1, 2, 3, 2};
    static const int64_t shapes[][3] = {{5}, {4, 5}, {2, 3, 5}, {40, 17}};
    for (int k = 0; k < 4; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        int64_t C = shapes[k][nds[k] - 1], n = lt_numel(nds[k], shapes[k]);
        double *x = data(n, 20 + (uint64_t)k, 0), *b = data(C, 30 + (uint64_t)k, 0);
        loom_tensor *tx = input(c, "x", dtype, nds[k], shapes[k], x);
        loom_tensor *tb = input(c, "b", dtype, 1, &C, b);
        loom_array out = lt_eval(c, loom_bias_add(g, tx, tb));
        ck_assert_int_eq(out.ndim, nds[k]);
        double *got = lt_to_double(&out), *ref = malloc((size_t)n * sizeof *ref);
        for (int64_t i = 0; i < n; i++)
            ref[i] = x[i] + b[i % C];
        lt_assert_close(got, ref, n, dtype == LOOM_F32 ? 1e-6 : 1e-15, "loom_bias_add");
        free(got);
        free(ref);
        free(x);
        free(b);
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_bias_add_grad)
{
    static const loom_shape xs[] = {{1, {4}}, {2, {3, 4}}, {3, {2, 3, 4}}, {2, {1, 1}}};
    for (int k = 0; k < 4; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *x = lt_param(c, "x", xs[k]);
        loom_tensor *b = lt_param(c, "b", loom_shape(xs[k].d[xs[k].ndim - 1]));
        lt_gradcheck(c, loom_bias_add(g, x, b), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_bias_add_empty_batch)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *x = lt_input(c, "x", LOOM_F64, loom_shape(N, 4), (int64_t[]){0, 4}, NULL);
    loom_tensor *b = lt_param(c, "b", loom_shape(4));
    loom_tensor *y = loom_bias_add(g, x, b);
    loom_array out = lt_eval(c, y);
    ck_assert_int_eq(out.ndim, 2);
    ck_assert_int_eq(out.shape[0], 0);
    ck_assert_int_eq(out.shape[1], 4);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    N = loom_dim_dynamic(g, "N", 8);
    x = lt_input(c, "x", LOOM_F64, loom_shape(N, 4), (int64_t[]){0, 4}, NULL);
    lt_gradcheck(c, loom_bias_add(g, x, lt_param(c, "b", loom_shape(4))), 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_bias_add_bad)
{
    for (int which = 0; which < 7; which++) {
        loom_graph *g = loom_graph_new();
        loom_dim N = loom_dim_dynamic(g, "N", 8);
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 4));
        loom_tensor *y = NULL;
        const char *what = "loom_bias_add";
        switch (which) {
        case 0: y = loom_bias_add(g, x, NULL); break;
        case 1: y = loom_bias_add(g, x, loom_input(g, "b", LOOM_F32, loom_shape(5))), what = "[5]"; break;
        case 2: y = loom_bias_add(g, x, loom_input(g, "b", LOOM_F32, loom_shape(1, 4))); break;
        case 3: /* a scalar x has no channel dim */
            y = loom_bias_add(g, loom_input(g, "s", LOOM_F32, loom_shape()), loom_input(g, "b", LOOM_F32, loom_shape(1)));
            break;
        case 4: y = loom_bias_add(g, x, loom_input(g, "b", LOOM_F64, loom_shape(4))), what = "f64"; break;
        case 5: y = loom_bias_add(g, loom_input(g, "i", LOOM_I32, loom_shape(3, 4)), x), what = "i32"; break;
        case 6: y = loom_bias_add(g, x, loom_input(g, "b", LOOM_F32, loom_shape(N))); break;
        }
        ck_assert(loom_tensor_is_poisoned(y));
        lt_expect_error(g, "loom_bias_add");
        lt_expect_error(g, what);
        loom_graph_free(g);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("ops_binary");
    TCase *tc = tcase_create("binary");
    tcase_add_loop_test(tc, test_forward_cases, 0, 2 * NOPS);
    tcase_add_loop_test(tc, test_forward_random_patterns, 0, 2 * NOPS);
    tcase_add_loop_test(tc, test_grad_broadcast, 0, NOPS);
    tcase_add_loop_test(tc, test_grad_one_side_and_same_tensor, 0, NOPS);
    tcase_add_loop_test(tc, test_dynamic_batch, 0, 2 * NOPS);
    tcase_add_loop_test(tc, test_grad_empty_batch, 0, NOPS);
    tcase_add_test(tc, test_bad_calls);
    tcase_add_test(tc, test_broadcast_shapes);
    suite_add_tcase(s, tc);

    tc = tcase_create("scale");
    tcase_add_loop_test(tc, test_scale_forward, 0, 2);
    tcase_add_test(tc, test_scale_grad_and_empty);
    tcase_add_test(tc, test_scale_bad);
    suite_add_tcase(s, tc);

    tc = tcase_create("bias_add");
    tcase_add_loop_test(tc, test_bias_add_forward, 0, 2);
    tcase_add_test(tc, test_bias_add_grad);
    tcase_add_test(tc, test_bias_add_empty_batch);
    tcase_add_test(tc, test_bias_add_bad);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
