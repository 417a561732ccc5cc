/* spmm (CSR x dense and its transpose) and degree: forward values against dense references,
 * gradients, awkward shapes and bad calls. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A 4 x 5 CSR with unsorted and repeated columns and an empty row (row 1):
 *   row 0: (3, 0.5) (1, -1) (3, 2)      row 2: (0, 1.5) (4, 0.25)
 *   row 3: (2, -0.75) (2, 1) (0, 3)                                      */
static int32_t A_rowptr[] = {0, 3, 3, 5, 8};
static int32_t A_col[] = {3, 1, 3, 0, 4, 2, 2, 0};
static double A_val[] = {0.5, -1.0, 2.0, 1.5, 0.25, -0.75, 1.0, 3.0};
static float A_valf[] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f, 1.0f, 3.0f};
enum { AN = 4, AM = 5 };

static loom_csr csr_a(int f32)
{
    return (loom_csr){.nrows = AN, .ncols = AM, .nnz = 8, .vdtype = f32 ? LOOM_F32 : LOOM_F64,
                      .rowptr = A_rowptr, .col = A_col, .val = f32 ? (void *)A_valf : (void *)A_val};
}

/* The dense [nrows, ncols] matrix of m (repeated entries add up). */
static double *dense_of(const loom_csr *m)
{
    double *d = calloc((size_t)(m->nrows * m->ncols) + 1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    for (int64_t i = 0; i < m->nrows; i++)
        for (int32_t k = m->rowptr[i]; k < m->rowptr[i + 1]; k++)
            d[i * m->ncols + m->col[k]] +=
                m->vdtype == LOOM_F64 ? ((double *)m->val)[k] : (double)((float *)m->val)[k];
    return d;
}

/* y = D x (transpose 0, D [n, m], x [m, f]) or D^T x (x [n, f]). */
static void naive_spmm(const double *d, int64_t n, int64_t m, const double *x, int64_t f, int tr, double *y)
{
    int64_t rows = tr ? m : n, inner = tr ? n : m;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < f; j++) {
            double s = 0;
            for (int64_t k = 0; k < inner; k++)
                s += (tr ? d[k * m + i] : d[i * m + k]) * x[k * f + j];
            y[i * f + j] = s;
        }
}

static void to_double(const loom_array *a, double *out)
{
    int64_t n = loom_array_numel(a);
    for (int64_t i = 0; i < n; i++)
        out[i] = a->dtype == LOOM_F64 ? ((double *)a->data)[i] : (double)((float *)a->data)[i];
}

/* A random nrows x ncols CSR, about density of its entries set, with repeats and unsorted
 * columns (entries are drawn in random column order, some twice). Frees with free_csr. */
static loom_csr random_csr(int64_t nrows, int64_t ncols, double density, loom_dtype dt, uint64_t seed)
{
    int64_t cap = (int64_t)(nrows * ncols * density * 2) + nrows + 1;
    loom_csr m = {.nrows = nrows, .ncols = ncols, .vdtype = dt};
    m.rowptr = calloc((size_t)nrows + 1, sizeof *m.rowptr);
    m.col = calloc((size_t)cap, sizeof *m.col);
    m.val = calloc((size_t)cap, sizeof(double));
    double *v = malloc((size_t)cap * sizeof *v);
    int32_t *r = malloc((size_t)cap * 3 * sizeof *r);
    ck_assert(m.rowptr && m.col && m.val && v && r);
    lt_fill_normal(v, cap, seed);
    lt_fill_int(r, cap * 3, 1000, seed + 1);
    int64_t k = 0, ri = 0;
    for (int64_t i = 0; i < nrows; i++) {
        int64_t want = (int64_t)(ncols * density * (r[ri++] % 200) / 100.0);
        for (int64_t e = 0; e < want && k < cap; e++, k++) {
            m.col[k] = r[ri++ % (cap * 3)] % (int32_t)ncols;
            if (dt == LOOM_F64)
                ((double *)m.val)[k] = v[k];
            else
                ((float *)m.val)[k] = (float)v[k];
        }
        m.rowptr[i + 1] = (int32_t)k;
    }
    m.nnz = k;
    free(v);
    free(r);
    return m;
}

static void free_csr(loom_csr *m)
{
    free(m->rowptr);
    free(m->col);
    free(m->val);
}

/* ---- spmm forward ---------------------------------------------------------------------------- */

START_TEST(test_spmm_forward)
{
    for (int f32 = 0; f32 < 2; f32++)
        for (int tr = 0; tr < 2; tr++) {
            enum { F = 3 };
            const int64_t in_rows = tr ? AN : AM, out_rows = tr ? AM : AN;
            double x[AM * F], want[AM * F], got[AM * F];
            float xf[AM * F];
            lt_fill_normal(x, in_rows * F, 10 + tr);
            lt_as_dtype(x, xf, in_rows * F, f32);
            loom_csr m = csr_a(f32);
            double *d = dense_of(&m);
            lt_case *c = lt_case_new();
            loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
            loom_tensor *adj = lt_input_csr(c, "adj", AN, AM, &m);
            loom_tensor *X = lt_input_static(c, "x", dt, loom_shape(in_rows, F), f32 ? (void *)xf : x);
            loom_tensor *y = loom_spmm_ex(lt_graph(c), adj, X, tr);
            ck_assert_int_eq(loom_tensor_dim(y, 0), out_rows);
            ck_assert_int_eq(loom_tensor_dim(y, 1), F);
            ck_assert_int_eq(loom_tensor_dtype(y), dt);
            loom_array r = lt_eval(c, y);
            ck_assert_int_eq(r.ndim, 2);
            ck_assert_int_eq(r.shape[0], out_rows);
            ck_assert_int_eq(r.shape[1], F);
            naive_spmm(d, AN, AM, x, F, tr, want);
            to_double(&r, got);
            lt_assert_close(got, want, out_rows * F, f32 ? 1e-5 : 1e-12, tr ? "spmm^T" : "spmm");
            if (!tr) /* the empty row gives zeros */
                for (int j = 0; j < F; j++)
                    ck_assert(got[1 * F + j] == 0.0);
            free(d);
            lt_case_free(c);
        }
}
END_TEST

/* Larger random matrices, with feature widths around the kernel's blocks (of 32 and 8 floats,
 * 16 and 4 doubles, and axpy's 8: tails, exact blocks, several blocks, each kind after another),
 * and x with more than 2 dims (trailing dims flatten into features). */
START_TEST(test_spmm_random)
{
    const int64_t widths[] = {1, 7, 8, 9, 16, 21, 32, 45, 64};
    for (int w = 0; w < 9; w++)
        for (int f32 = 0; f32 < 2; f32++)
            for (int tr = 0; tr < 2; tr++) {
                const int64_t n = 23, m = 17, f = widths[w];
                loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
                loom_csr a = random_csr(n, m, 0.2, dt, (uint64_t)(100 + w));
                double *d = dense_of(&a);
                const int64_t in_rows = tr ? n : m, out_rows = tr ? m : n;
                double *x = malloc((size_t)(in_rows * f) * sizeof *x), *want = malloc((size_t)(out_rows * f) * sizeof *want);
                double *got = malloc((size_t)(out_rows * f) * sizeof *got);
                float *xf = malloc((size_t)(in_rows * f) * sizeof *xf);
                ck_assert(x && want && got && xf);
                lt_fill_normal(x, in_rows * f, (uint64_t)(7 + w));
                lt_as_dtype(x, xf, in_rows * f, f32);
                lt_case *c = lt_case_new();
                loom_tensor *adj = lt_input_csr(c, "adj", n, m, &a);
                /* f = 16 and 21 go in as [rows, 2, 8] and [rows, 3, 7] */
                loom_shape xs = f == 16 ? loom_shape(in_rows, 2, 8) : f == 21 ? loom_shape(in_rows, 3, 7) : loom_shape(in_rows, f);
                loom_tensor *X = lt_input_static(c, "x", dt, xs, f32 ? (void *)xf : x);
                loom_array r = lt_eval(c, loom_spmm_ex(lt_graph(c), adj, X, tr));
                ck_assert_int_eq(r.ndim, xs.ndim);
                ck_assert_int_eq(r.shape[0], out_rows);
                ck_assert_int_eq(loom_array_numel(&r), out_rows * f);
                naive_spmm(d, n, m, x, f, tr, want);
                to_double(&r, got);
                lt_assert_close(got, want, out_rows * f, f32 ? 1e-5 : 1e-12, tr ? "random spmm^T" : "random spmm");
                free(x);
                free(xf);
                free(want);
                free(got);
                free(d);
                free_csr(&a);
                lt_case_free(c);
            }
}
END_TEST

/* ---- spmm gradients -------------------------------------------------------------------------- */

START_TEST(test_spmm_grad)
{
    for (int tr = 0; tr < 2; tr++) {
        loom_csr m = csr_a(0);
        lt_case *c = lt_case_new();
        loom_tensor *adj = lt_input_csr(c, "adj", AN, AM, &m);
        loom_tensor *x = lt_param(c, "x", loom_shape(tr ? AN : AM, 3));
        lt_gradcheck(c, loom_spmm_ex(lt_graph(c), adj, x, tr), 1e-6);
        lt_case_free(c);
    }
    /* a chain through both: A^T (A x), x used twice */
    loom_csr m = csr_a(0);
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *adj = lt_input_csr(c, "adj", AN, AM, &m);
    loom_tensor *x = lt_param(c, "x", loom_shape(AM, 2));
    lt_gradcheck(c, loom_add(g, loom_spmm_ex(g, adj, loom_spmm(g, adj, x), 1), x), 1e-6);
    lt_case_free(c);
}
END_TEST

/* ---- degree ---------------------------------------------------------------------------------- */

START_TEST(test_degree)
{
    /* row sums of A: 1.5, 0 (empty row), 1.75, 3.25 */
    const double sums[AN] = {1.5, 0.0, 1.75, 3.25};
    const double powers[] = {-0.5, 1.0, -1.0, 2.0};
    for (int f32 = 0; f32 < 2; f32++)
        for (int self = 0; self < 2; self++)
            for (int p = 0; p < 4; p++) {
                loom_csr m = csr_a(f32);
                lt_case *c = lt_case_new();
                loom_tensor *adj = lt_input_csr(c, "adj", AN, AM, &m);
                loom_tensor *d = loom_degree(lt_graph(c), adj, self, powers[p]);
                ck_assert_int_eq(loom_tensor_ndim(d), 1);
                ck_assert_int_eq(loom_tensor_dim(d, 0), AN);
                ck_assert_int_eq(loom_tensor_dtype(d), f32 ? LOOM_F32 : LOOM_F64);
                loom_array r = lt_eval(c, d);
                double got[AN], want[AN];
                to_double(&r, got);
                for (int i = 0; i < AN; i++) {
                    double deg = sums[i] + self;
                    want[i] = deg == 0 ? 0 : pow(deg, powers[p]);
                    ck_assert(isfinite(got[i]));
                }
                lt_assert_close(got, want, AN, f32 ? 1e-6 : 1e-14, "degree");
                if (!self)
                    ck_assert(got[1] == 0.0); /* the isolated row: 0, not inf */
                lt_case_free(c);
            }
}
END_TEST

/* GCN's propagation D^-1/2 (A + I) D^-1/2 x, built as GCN layers build it (degree with self
 * loops, spmm of the scaled features plus the self term), matches the dense formula, and its
 * gradient checks. */
START_TEST(test_gcn_propagation)
{
    enum { N = 6, F = 3 };
    /* a symmetric 0/1 adjacency; node 5 is isolated */
    int32_t rowptr[] = {0, 2, 4, 6, 7, 8, 8};
    int32_t col[] = {2, 1, 0, 2, 1, 0, 4, 3};
    double val[] = {1, 1, 1, 1, 1, 1, 1, 1};
    loom_csr m = {.nrows = N, .ncols = N, .nnz = 8, .vdtype = LOOM_F64, .rowptr = rowptr, .col = col, .val = val};
    double x[N * F], want[N * F], got[N * F], dinv[N];
    lt_fill_normal(x, N * F, 5);
    double *d = dense_of(&m);
    for (int i = 0; i < N; i++) {
        double deg = 1;
        for (int j = 0; j < N; j++)
            deg += d[i * N + j];
        dinv[i] = 1 / sqrt(deg);
    }
    for (int i = 0; i < N; i++)
        for (int f = 0; f < F; f++) {
            double s = 0;
            for (int j = 0; j < N; j++)
                s += (d[i * N + j] + (i == j)) * dinv[j] * x[j * F + f];
            want[i * F + f] = dinv[i] * s;
        }
    free(d);

    for (int check = 0; check < 2; check++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *adj = lt_input_csr(c, "adj", N, N, &m);
        loom_tensor *X = check ? lt_param(c, "x", loom_shape(N, F)) : lt_input_static(c, "x", LOOM_F64, loom_shape(N, F), x);
        loom_tensor *dn = loom_reshape(g, loom_degree(g, adj, 1, -0.5), loom_shape(N, 1));
        loom_tensor *z = loom_mul(g, X, dn);
        loom_tensor *h = loom_mul(g, loom_add(g, loom_spmm(g, adj, z), z), dn);
        if (check) {
            lt_gradcheck(c, h, 1e-6);
        } else {
            loom_array r = lt_eval(c, h);
            to_double(&r, got);
            lt_assert_close(got, want, N * F, 1e-12, "gcn propagation");
            for (int f = 0; f < F; f++) /* the isolated node keeps its own features */
                ck_assert(fabs(got[5 * F + f] - x[5 * F + f]) < 1e-14);
        }
        lt_case_free(c);
    }
}
END_TEST

/* ---- awkward shapes -------------------------------------------------------------------------- */

START_TEST(test_sparse_awkward)
{
    /* 1 x 1 with one entry */
    int32_t rp1[] = {0, 1}, c1[] = {0};
    double v1[] = {2.5};
    loom_csr one = {.nrows = 1, .ncols = 1, .nnz = 1, .vdtype = LOOM_F64, .rowptr = rp1, .col = c1, .val = v1};
    for (int tr = 0; tr < 2; tr++) {
        lt_case *c = lt_case_new();
        loom_tensor *adj = lt_input_csr(c, "adj", 1, 1, &one);
        double x = -3.0;
        loom_tensor *X = lt_input_static(c, "x", LOOM_F64, loom_shape(1, 1), &x);
        loom_array r = lt_eval(c, loom_spmm_ex(lt_graph(c), adj, X, tr));
        ck_assert(((double *)r.data)[0] == -7.5);
        lt_case_free(c);
    }
    lt_case *c = lt_case_new();
    lt_gradcheck(c, loom_spmm(lt_graph(c), lt_input_csr(c, "adj", 1, 1, &one), lt_param(c, "x", loom_shape(1, 1))), 1e-6);
    lt_case_free(c);

    /* an empty dynamic batch: adj [N = 0, 5] */
    int32_t rp0[] = {0};
    loom_csr none = {.nrows = 0, .ncols = 5, .nnz = 0, .vdtype = LOOM_F64, .rowptr = rp0, .col = c1, .val = v1};
    c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *adj = lt_input_csr(c, "adj", N, 5, &none);
    double x5[10];
    lt_fill_normal(x5, 10, 3);
    loom_tensor *X = lt_input_static(c, "x", LOOM_F64, loom_shape(5, 2), x5);
    int64_t now[2] = {0, 2};
    loom_tensor *Xn = lt_input(c, "xn", LOOM_F64, loom_shape(N, 2), now, NULL);
    loom_tensor *y = loom_spmm(g, adj, X);            /* [N, 2] = [0, 2] */
    loom_tensor *yt = loom_spmm_ex(g, adj, Xn, 1);    /* [5, 2], all zeros */
    loom_tensor *deg = loom_degree(g, adj, 1, -0.5);  /* [N] = [0] */
    ck_assert(loom_tensor_dim(y, 0) == N);
    ck_assert(loom_tensor_dim(deg, 0) == N);
    loom_array r = lt_eval(c, y);
    ck_assert_int_eq(r.shape[0], 0);
    ck_assert_int_eq(r.shape[1], 2);
    r = lt_eval(c, yt);
    ck_assert_int_eq(r.shape[0], 5);
    for (int i = 0; i < 10; i++)
        ck_assert(((double *)r.data)[i] == 0.0);
    r = lt_eval(c, deg);
    ck_assert_int_eq(r.shape[0], 0);
    lt_case_free(c);

    /* features of width 0 */
    c = lt_case_new();
    loom_csr m = csr_a(0);
    adj = lt_input_csr(c, "adj", AN, AM, &m);
    r = lt_eval(c, loom_spmm(lt_graph(c), adj, lt_input_static(c, "x", LOOM_F64, loom_shape(AM, 0), NULL)));
    ck_assert_int_eq(r.shape[0], AN);
    ck_assert_int_eq(r.shape[1], 0);
    lt_case_free(c);
}
END_TEST

/* ---- bad calls ------------------------------------------------------------------------------- */

START_TEST(test_sparse_bad_calls)
{
    loom_graph *g = loom_graph_new();
    loom_spmm(g, loom_input(g, "a", LOOM_F32, loom_shape(3, 3)), loom_input(g, "x", LOOM_F32, loom_shape(3, 2)));
    lt_expect_error(g, "loom_spmm: adj must be a CSR matrix (loom_input_csr), got a dense f32 tensor");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_spmm(g, loom_input_csr(g, "a", LOOM_F32, 3, 4), loom_input(g, "x", LOOM_F32, loom_shape(3, 2)));
    lt_expect_error(g, "loom_spmm: inner dimensions differ: adj is [3, 4], x is [3, 2]");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_spmm_ex(g, loom_input_csr(g, "a", LOOM_F32, 3, 4), loom_input(g, "x", LOOM_F32, loom_shape(4, 2)), 1);
    lt_expect_error(g, "loom_spmm: inner dimensions differ: adj^T is [3, 4] (transposed), x is [4, 2]");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 10), M = loom_dim_dynamic(g, "M", 10);
    loom_spmm(g, loom_input_csr(g, "a", LOOM_F32, N, N), loom_input(g, "x", LOOM_F32, loom_shape(M, 2)));
    lt_expect_error(g, "inner dimensions differ: adj is [N, N], x is [M, 2]");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_spmm(g, loom_input_csr(g, "a", LOOM_F32, 3, 3), loom_input(g, "x", LOOM_F64, loom_shape(3, 2)));
    lt_expect_error(g, "loom_spmm: x is f64 but adj holds f32 values");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_spmm(g, loom_input_csr(g, "a", LOOM_F32, 3, 3), loom_input_csr(g, "x", LOOM_F32, 3, 3));
    lt_expect_error(g, "loom_spmm: x must be dense");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_spmm(g, NULL, loom_input(g, "x", LOOM_F32, loom_shape(3, 2)));
    lt_expect_error(g, "loom_spmm: tensor argument 1 is NULL");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_spmm(g, loom_input_csr(g, "a", LOOM_F32, 3, 3), NULL);
    lt_expect_error(g, "loom_spmm: tensor argument 2 is NULL");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_degree(g, loom_input(g, "a", LOOM_F64, loom_shape(3, 3)), 1, -0.5);
    lt_expect_error(g, "loom_degree: adj must be a CSR matrix");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_degree(g, NULL, 1, -0.5);
    lt_expect_error(g, "loom_degree: tensor argument 1 is NULL");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_degree(g, loom_input_csr(g, "a", LOOM_F64, 3, 3), 0, NAN);
    lt_expect_error(g, "loom_degree: power must be finite");
    loom_graph_free(g);

    /* the adjacency takes no gradient, and a graph whose loss reaches only it compiles */
    g = loom_graph_new();
    loom_tensor *adj = loom_input_csr(g, "a", LOOM_F64, 3, 3);
    loom_tensor *w = loom_param(g, "w", LOOM_F64, loom_shape(3), loom_init_constant(1.0));
    loom_tensor *loss = loom_sum(g, loom_mul(g, loom_degree(g, adj, 1, -0.5), w), LOOM_ALL_AXES, 0);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_ptr_nonnull(loom_program_grad(p, w));
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_sparse");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_spmm_forward);
    tcase_add_test(tc, test_spmm_random);
    tcase_add_test(tc, test_spmm_grad);
    tcase_add_test(tc, test_degree);
    tcase_add_test(tc, test_gcn_propagation);
    tcase_add_test(tc, test_sparse_awkward);
    tcase_add_test(tc, test_sparse_bad_calls);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
