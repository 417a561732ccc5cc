/* The CUDA kernels of the index and sparse op families (gather_rows, scatter, scatter_grad, spmm,
 * degree), each checked against its CPU kernel on the values of a reference run: every forward and
 * backward op of small graphs, in the default mode and in deterministic mode, both float dtypes,
 * and bitwise repeatable in deterministic mode (gpu_families.h); the sorted scatter must also equal
 * the CPU kernel bit for bit. Indices out of range must reach the device's error record. Skipped
 * (77) in a build without CUDA or on a machine without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_gpu.h"

#include "gpu_families.h"

/* The device, opened by the suite's fixture (see suite). */
static lt_gpu *gpu;

/* ---- gather_rows, scatter, scatter_grad -------------------------------------------------------- */

/* _i: mode (0 sum, 1 mean, 2 max, 3 gather) * 8 + width * 2 + (f64). Repeated targets, empty
 * segments (1 and 4 receive nothing), and exact ties for max: x's rows are two copies of one
 * parameter, both copies of a row sent to the same segment, so only the first copy may get the
 * gradient. */
START_TEST(test_index_small)
{
    static const int64_t widths[][3] = {{1, 1}, {1, 3}, {1, 16}, {2, 2, 3}};
    const int mode = _i / 8;
    const int64_t *w = widths[(_i / 2) % 4];
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    enum { E = 5, N = 6 };
    static const int32_t half[E] = {3, 0, 3, 5, 2};
    int32_t idx[2 * E];
    for (int i = 0; i < E; i++)
        idx[i] = idx[i + E] = half[i];
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    int64_t rd[3] = {E, w[1], w[2]};
    loom_tensor *p = lt_gpu_param(c, "p", dt, lt_gpu_shape((int)w[0] + 1, rd));
    loom_tensor *ix = lt_input_static(c, "idx", LOOM_I32, loom_shape(2 * E), idx);
    loom_tensor *x = loom_concat(g, (loom_tensor *[]){p, p}, 2, 0); /* [2E, ...]: ties */
    loom_tensor *y;
    switch (mode) {
    case 0: y = loom_segment_sum(g, x, ix, N); break;
    case 1: y = loom_segment_mean(g, x, ix, N); break;
    case 2: y = loom_segment_max(g, x, ix, N); break;
    default: y = loom_gather_rows(g, x, loom_slice(g, ix, 0, 2, 2 * E)); break; /* an i32 slice feeds it */
    }
    loom_program *prog = check_all(gpu, c, lt_gpu_add_sq(g, NULL, y), lt_gpu_tol(dt));
    if (mode < 3) { /* the sorted scatter is the CPU kernel's order: the same bits */
        lt_gpu_set_modes(gpu, 1, 0);
        check_one(gpu, prog, y, 0.0);
        lt_gpu_set_modes(gpu, 0, 0);
    }
    lt_case_free(c);
}
END_TEST

/* _i: mode (0 sum, 1 mean, 2 max, 3 gather) * 2 + (f64). More rows than a block, many segments
 * (some empty) and a hub segment taking a fifth of the rows: atomics collide, the sort sorts. */
START_TEST(test_index_large)
{
    const int mode = _i / 2;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    enum { E = 3000, N = 500, F = 16 };
    static int32_t idx[E];
    lt_fill_int(idx, E, N - 100, 77); /* segments N - 100 .. N - 1 stay empty */
    for (int i = 0; i < E; i += 5)
        idx[i] = 7;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    /* scaled so that the hub's sum stays near 1, where reordered f32 adds differ far below tol */
    loom_tensor *x = loom_scale(g, lt_gpu_param(c, "x", dt, loom_shape(E, F)), 0.05);
    loom_tensor *ix = lt_input_static(c, "idx", LOOM_I32, loom_shape(E), idx);
    loom_tensor *y = mode == 0 ? loom_segment_sum(g, x, ix, N)
                     : mode == 1 ? loom_segment_mean(g, x, ix, N)
                     : mode == 2 ? loom_segment_max(g, x, ix, N)
                                 : loom_gather_rows(g, loom_reshape(g, x, loom_shape(E / 2, 2 * F)), ix);
    loom_program *p = check_all(gpu, c, lt_gpu_add_sq(g, NULL, y), lt_gpu_tol(dt));
    if (mode < 3) {
        lt_gpu_set_modes(gpu, 1, 0);
        check_one(gpu, p, y, 0.0);
        lt_gpu_set_modes(gpu, 0, 0);
    }
    lt_case_free(c);
}
END_TEST

/* No rows at all: every segment is empty, so 0 in every mode. */
START_TEST(test_index_empty)
{
    for (int mode = 0; mode < 3; mode++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *x = lt_gpu_param(c, "x", LOOM_F64, loom_shape(0, 3));
        loom_tensor *w = lt_gpu_param(c, "w", LOOM_F64, loom_shape(4, 3));
        loom_tensor *ix = lt_input_static(c, "idx", LOOM_I32, loom_shape(0), NULL);
        loom_tensor *y = mode == 0 ? loom_segment_sum(g, x, ix, 4)
                         : mode == 1 ? loom_segment_mean(g, x, ix, 4)
                                     : loom_segment_max(g, x, ix, 4);
        check_all(gpu, c, lt_gpu_add_sq(g, NULL, loom_add(g, y, w)), 1e-9);
        lt_case_free(c);
    }
}
END_TEST

/* ---- spmm, degree ------------------------------------------------------------------------------ */

/* A random CSR [nrows, ncols]: rows 0, 1, 6, 9, ... empty, row 2 with `heavy` entries, the others
 * 1 to 7, uniform columns (some repeated, unsorted), values N(0, 1) / sqrt(the row's degree) as a
 * GCN's normalisation makes them: the sums of long rows stay near 1, where f32's rounding, which
 * FMA and atomics reorder, stays far below the tolerance. Free with free_csr. */
static loom_csr make_csr(int64_t nrows, int64_t ncols, int heavy, loom_dtype dt, uint64_t seed)
{
    int32_t *deg = malloc((size_t)nrows * sizeof *deg);
    ck_assert_ptr_nonnull(deg);
    lt_fill_int(deg, nrows, 7, seed);
    int64_t nnz = 0;
    for (int64_t r = 0; r < nrows; r++) {
        deg[r] = r % 5 == 1 || r % 9 == 0 ? 0 : r == 2 ? heavy : deg[r] + 1;
        nnz += deg[r];
    }
    loom_csr m = {.nrows = nrows, .ncols = ncols, .nnz = nnz, .vdtype = dt};
    m.rowptr = malloc((size_t)(nrows + 1) * sizeof *m.rowptr);
    m.col = malloc((size_t)(nnz ? nnz : 1) * sizeof *m.col);
    m.val = malloc((size_t)(nnz ? nnz : 1) * sizeof(double));
    double *v = malloc((size_t)(nnz ? nnz : 1) * sizeof *v);
    ck_assert(m.rowptr && m.col && m.val && v);
    lt_fill_int(m.col, nnz, (int32_t)ncols, seed + 1);
    lt_fill_normal(v, nnz, seed + 2);
    m.rowptr[0] = 0;
    for (int64_t r = 0; r < nrows; r++) {
        m.rowptr[r + 1] = m.rowptr[r] + deg[r];
        for (int32_t k = m.rowptr[r]; k < m.rowptr[r + 1]; k++)
            if (dt == LOOM_F64)
                ((double *)m.val)[k] = v[k] / sqrt((double)deg[r]);
            else
                ((float *)m.val)[k] = (float)(v[k] / sqrt((double)deg[r]));
    }
    free(v);
    free(deg);
    return m;
}

static void free_csr(loom_csr *m)
{
    free(m->rowptr);
    free(m->col);
    free(m->val);
}

/* _i: width * 4 + (transpose) * 2 + (f64). x a parameter, so the backward pass runs the other
 * product: each case checks spmm and its transpose. Widths cover every group width, the vector
 * widths 1, 2 and 4, several vectors per lane (130) and several passes (600); 16 also as [M, 2, 8]. */
START_TEST(test_spmm)
{
    static const int64_t widths[] = {1, 2, 3, 4, 16, 64, 130, 600, -16};
    const int64_t fw = widths[_i / 4], f = fw < 0 ? -fw : fw;
    const int tr = (_i / 2) % 2;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    const int64_t nrows = 40, ncols = 250;
    loom_csr m = make_csr(nrows, ncols, 200, dt, (uint64_t)(10 + _i));
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *adj = lt_input_csr(c, "adj", nrows, ncols, &m);
    const int64_t in_rows = tr ? nrows : ncols;
    loom_tensor *x = lt_gpu_param(c, "x", dt, fw < 0 ? loom_shape(in_rows, 2, 8) : loom_shape(in_rows, f));
    check_all(gpu, c, lt_gpu_add_sq(g, NULL, loom_spmm_ex(g, adj, x, tr)), lt_gpu_tol(dt));
    free_csr(&m);
    lt_case_free(c);
}
END_TEST

/* A bigger graph (many blocks, a hub row of 2000 entries), a matrix with no entries, and the GCN
 * chain A (A x) with degree scaling. */
START_TEST(test_spmm_shapes)
{
    for (int f64 = 0; f64 < 2; f64++) {
        const loom_dtype dt = f64 ? LOOM_F64 : LOOM_F32;
        {
            loom_csr m = make_csr(3000, 2000, 2000, dt, 5 + f64);
            lt_case *c = lt_case_new();
            loom_graph *g = lt_graph(c);
            loom_tensor *adj = lt_input_csr(c, "adj", 3000, 2000, &m);
            loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(2000, 64));
            check_all(gpu, c, lt_gpu_add_sq(g, NULL, loom_spmm_ex(g, adj, x, 0)), lt_gpu_tol(dt));
            free_csr(&m);
            lt_case_free(c);
        }
        {
            loom_csr m = {.nrows = 5, .ncols = 4, .nnz = 0, .vdtype = dt, .rowptr = (int32_t[6]){0}, .col = NULL,
                          .val = NULL};
            lt_case *c = lt_case_new();
            loom_graph *g = lt_graph(c);
            loom_tensor *adj = lt_input_csr(c, "adj", 5, 4, &m);
            loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(4, 8));
            loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(5, 8));
            check_all(gpu, c, lt_gpu_add_sq(g, NULL, loom_add(g, loom_spmm_ex(g, adj, x, 0), w)), lt_gpu_tol(dt));
            lt_case_free(c);
        }
        {
            loom_csr m = make_csr(30, 30, 25, dt, 9 + f64);
            lt_case *c = lt_case_new();
            loom_graph *g = lt_graph(c);
            loom_tensor *adj = lt_input_csr(c, "adj", 30, 30, &m);
            loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(30, 16));
            loom_tensor *d = loom_reshape(g, loom_degree(g, adj, 1, -0.5), loom_shape(30, 1));
            loom_tensor *h = loom_mul(g, d, loom_spmm(g, adj, loom_mul(g, d, x)));
            check_all(gpu, c, lt_gpu_add_sq(g, NULL, loom_spmm(g, adj, h)), lt_gpu_tol(dt));
            free_csr(&m);
            lt_case_free(c);
        }
    }
}
END_TEST

/* _i: setting * 2 + (f64). Degrees with and without self loops and several powers; rows without
 * entries give 0 without a self loop. The values are kept positive (degrees are row sums). */
START_TEST(test_degree)
{
    static const struct {
        int self;
        double power;
    } settings[] = {{1, -0.5}, {0, -0.5}, {1, 1.0}, {0, -1.0}, {1, 2.0}};
    const int k = _i / 2;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    loom_csr m = make_csr(70, 60, 45, dt, 31);
    for (int64_t e = 0; e < m.nnz; e++)
        if (dt == LOOM_F64)
            ((double *)m.val)[e] = fabs(((double *)m.val)[e]) + 0.25;
        else
            ((float *)m.val)[e] = fabsf(((float *)m.val)[e]) + 0.25f;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *adj = lt_input_csr(c, "adj", 70, 60, &m);
    loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(70, 3));
    loom_tensor *d = loom_reshape(g, loom_degree(g, adj, settings[k].self, settings[k].power), loom_shape(70, 1));
    check_all(gpu, c, lt_gpu_add_sq(g, NULL, loom_mul(g, d, w)), lt_gpu_tol(dt));
    free_csr(&m);
    lt_case_free(c);
}
END_TEST

/* _i: (f64). A dynamic row count (bound 64, 40 at run time): workspaces are sized at the bounds
 * and used at the run's sizes. A (A^T)-chain, a segment max over the dynamic rows, a column sum. */
START_TEST(test_dynamic_rows)
{
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    enum { NOW = 40, M = 50, F = 16, SEG = 10 };
    loom_csr m = make_csr(NOW, M, 30, dt, 41);
    int32_t idx[NOW];
    lt_fill_int(idx, NOW, SEG - 2, 42); /* the last two segments stay empty */
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim n = loom_dim_dynamic(g, "N", 64);
    loom_tensor *adj = lt_input_csr(c, "adj", n, M, &m);
    loom_tensor *ix = lt_input(c, "idx", LOOM_I32, loom_shape(n), (int64_t[]){NOW}, idx);
    loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(M, F));
    loom_tensor *y = loom_spmm(g, adj, x); /* [N, F] */
    loom_tensor *loss = lt_gpu_add_sq(g, NULL, loom_spmm_ex(g, adj, y, 1));
    loss = lt_gpu_add_sq(g, loss, loom_segment_max(g, y, ix, SEG));
    loss = lt_gpu_add_sq(g, loss, loom_segment_mean(g, y, ix, SEG));
    loss = lt_gpu_add_sq(g, loss, loom_sum(g, y, 1, 0));
    check_all(gpu, c, loss, lt_gpu_tol(dt));
    free_csr(&m);
    lt_case_free(c);
}
END_TEST

/* ---- indices out of range reach the error record ----------------------------------------------- */

/* Runs t's kernel (deterministic or not) and expects one INDEX record naming value and bound. */
static void expect_index_error(const loom_tensor *t, const loom__value *out_like, loom__value *const *src, int det,
                               long long value, long long bound)
{
    loom__cuda_err err;
    char msg[256] = "";
    memset(&err, 0xff, sizeof err);
    lt_gpu_set_modes(gpu, det, 0);
    loom_status s = lt_gpu_run_op(gpu, t, out_like, src, &err, msg, sizeof msg);
    lt_gpu_set_modes(gpu, 0, 0);
    ck_assert_msg(s == LOOM_OK, "%s: %s", loom__op_def(t->op)->name, msg);
    ck_assert_msg(err.code == LOOM__CUDA_ERR_INDEX, "%s (deterministic %d): error code %d", loom__op_def(t->op)->name, det,
                  err.code);
    ck_assert_int_eq(err.tag, t->id);
    ck_assert_int_eq(err.value, value);
    ck_assert_int_eq(err.bound, bound);
}

START_TEST(test_bad_index)
{
    enum { V = 5, E = 4, F = 3 };
    double table[V * F], x[E * F], y[V * F], gy[V * F];
    lt_fill_normal(table, V * F, 1);
    lt_fill_normal(x, E * F, 2);
    lt_fill_normal(y, V * F, 3);
    lt_fill_normal(gy, V * F, 4);
    const int32_t good[E] = {0, 1, 2, 3};
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *tt = lt_input_static(c, "table", LOOM_F64, loom_shape(V, F), table);
    loom_tensor *xt = lt_input_static(c, "x", LOOM_F64, loom_shape(E, F), x);
    loom_tensor *it = lt_input_static(c, "idx", LOOM_I32, loom_shape(E), good);
    loom_tensor *gather = loom_gather_rows(g, tt, it);
    loom_tensor *scat[3] = {loom_segment_sum(g, xt, it, V), loom_segment_mean(g, xt, it, V), loom_segment_max(g, xt, it, V)};
    loom_tensor *yt = lt_input_static(c, "y", LOOM_F64, loom_shape(V, F), y);
    loom_tensor *gt = lt_input_static(c, "gy", LOOM_F64, loom_shape(V, F), gy);
    loom_tensor *sgrad[2];
    for (int k = 0; k < 2; k++)
        sgrad[k] = loom__node(g, "test", LOOM_OP_SCATTER_GRAD, 4, (loom_tensor *[]){xt, it, yt, gt},
                              &(loom__attrs){.i = {k + 1}});
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);

    static const int32_t bad_values[2] = {7, -1};
    for (int b = 0; b < 2; b++) {
        int32_t bad[E] = {0, 1, 2, 3};
        bad[2] = bad_values[b];
        loom__value tv = {.dtype = LOOM_F64, .ndim = 2, .shape = {V, F}, .data = table};
        loom__value xv = {.dtype = LOOM_F64, .ndim = 2, .shape = {E, F}, .data = x};
        loom__value iv = {.dtype = LOOM_I32, .ndim = 1, .shape = {E}, .data = bad};
        loom__value yv = {.dtype = LOOM_F64, .ndim = 2, .shape = {V, F}, .data = y};
        loom__value gv = {.dtype = LOOM_F64, .ndim = 2, .shape = {V, F}, .data = gy};
        loom__value rows_out = {.dtype = LOOM_F64, .ndim = 2, .shape = {E, F}};
        loom__value seg_out = {.dtype = LOOM_F64, .ndim = 2, .shape = {V, F}};
        for (int det = 0; det < 2; det++) {
            expect_index_error(gather, &rows_out, (loom__value *[]){&tv, &iv}, det, bad[2], V);
            for (int k = 0; k < 3; k++)
                expect_index_error(scat[k], &seg_out, (loom__value *[]){&xv, &iv}, det, bad[2], V);
            for (int k = 0; k < 2; k++)
                expect_index_error(sgrad[k], &rows_out, (loom__value *[]){&xv, &iv, &yv, &gv}, det, bad[2], V);
        }
    }

    /* a column out of range in a CSR (never fed: loom_csr_validate would refuse it) */
    int32_t rowptr[3] = {0, 2, 3}, col[3] = {1, 9, 0};
    double val[3] = {1.0, 2.0, 3.0}, xs[4 * F];
    lt_fill_normal(xs, 4 * F, 5);
    loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F64, 2, 4);
    loom_tensor *x4 = lt_input_static(c, "x4", LOOM_F64, loom_shape(4, F), xs);
    loom_tensor *x2 = lt_input_static(c, "x2", LOOM_F64, loom_shape(2, F), xs);
    loom_tensor *fwd = loom_spmm_ex(g, adj, x4, 0), *bwd = loom_spmm_ex(g, adj, x2, 1);
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);
    loom__value av = {.dtype = LOOM_F64, .ndim = 2, .shape = {2, 4}, .data = val, .rowptr = rowptr, .col = col, .nnz = 3};
    loom__value x4v = {.dtype = LOOM_F64, .ndim = 2, .shape = {4, F}, .data = xs};
    loom__value x2v = {.dtype = LOOM_F64, .ndim = 2, .shape = {2, F}, .data = xs};
    loom__value o2 = {.dtype = LOOM_F64, .ndim = 2, .shape = {2, F}}, o4 = {.dtype = LOOM_F64, .ndim = 2, .shape = {4, F}};
    for (int det = 0; det < 2; det++) {
        expect_index_error(fwd, &o2, (loom__value *[]){&av, &x4v}, det, 9, 4);
        expect_index_error(bwd, &o4, (loom__value *[]){&av, &x2v}, det, 9, 4);
    }
    lt_case_free(c);
}
END_TEST

/* The device is opened once for the whole suite, which runs unforked (see harness_gpu.h). */
static Suite *suite(void)
{
    Suite *s = suite_create("gpu_ops_sparse");
    TCase *tc = tcase_create("ops");
    lt_gpu_add_fixture(tc, &gpu);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_index_small, 0, 32);
    tcase_add_loop_test(tc, test_index_large, 0, 8);
    tcase_add_test(tc, test_index_empty);
    tcase_add_loop_test(tc, test_spmm, 0, 9 * 4);
    tcase_add_test(tc, test_spmm_shapes);
    tcase_add_loop_test(tc, test_degree, 0, 10);
    tcase_add_loop_test(tc, test_dynamic_rows, 0, 2);
    tcase_add_test(tc, test_bad_index);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lt_gpu_run(suite);
}
