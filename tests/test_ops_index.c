/* gather_rows, scatter_add_rows and the segment ops (sum, mean, max): forward values against
 * naive references, gradients, empty batches, run-time index errors and bad calls. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void to_double(const loom_array *a, double *out)
{
    int64_t n = loom_array_numel(a);
    for (int64_t i = 0; i < n; i++)
        out[i] = a->dtype == LOOM_F64 ? ((double *)a->data)[i] : (double)((float *)a->data)[i];
}

enum { SUM, MEAN, MAX };

/* y [n, f] from x [e, f] by idx: sum, mean or max; 0 for rows that receive nothing. */
static void naive_scatter(const double *x, const int32_t *idx, int64_t e, int64_t n, int64_t f, int mode, double *y)
{
    for (int64_t s = 0; s < n; s++)
        for (int64_t j = 0; j < f; j++) {
            double acc = mode == MAX ? -INFINITY : 0;
            int64_t cnt = 0;
            for (int64_t i = 0; i < e; i++)
                if (idx[i] == s) {
                    double v = x[i * f + j];
                    acc = mode == MAX ? fmax(acc, v) : acc + v;
                    cnt++;
                }
            y[s * f + j] = cnt == 0 ? 0 : mode == MEAN ? acc / (double)cnt : acc;
        }
}

static loom_tensor *segment(loom_graph *g, int mode, loom_tensor *x, loom_tensor *seg, loom_dim n)
{
    return mode == SUM ? loom_segment_sum(g, x, seg, n) : mode == MEAN ? loom_segment_mean(g, x, seg, n)
                                                                        : loom_segment_max(g, x, seg, n);
}

/* ---- gather_rows ----------------------------------------------------------------------------- */

START_TEST(test_gather_forward)
{
    enum { V = 5, F = 3, E = 7 };
    const int32_t idx[E] = {4, 0, 0, 2, 4, 1, 4};
    /* float types */
    for (int f32 = 0; f32 < 2; f32++) {
        double t[V * F], got[E * F];
        float tf[V * F];
        lt_fill_normal(t, V * F, 1);
        lt_as_dtype(t, tf, V * F, f32);
        lt_case *c = lt_case_new();
        loom_tensor *T = lt_input_static(c, "t", f32 ? LOOM_F32 : LOOM_F64, loom_shape(V, F), f32 ? (void *)tf : t);
        loom_tensor *I = lt_input_static(c, "i", LOOM_I32, loom_shape(E), idx);
        loom_tensor *y = loom_gather_rows(lt_graph(c), T, I);
        ck_assert_int_eq(loom_tensor_dim(y, 0), E);
        ck_assert_int_eq(loom_tensor_dim(y, 1), F);
        loom_array r = lt_eval(c, y);
        to_double(&r, got);
        for (int e = 0; e < E; e++)
            for (int j = 0; j < F; j++)
                ck_assert(got[e * F + j] == t[idx[e] * F + j]);
        lt_case_free(c);
    }
    /* any dtype, and tables of more than 2 dims: an i32 [V, 2, 2] table */
    int32_t ti[V * 4];
    for (int i = 0; i < V * 4; i++)
        ti[i] = 100 * (i / 4) + i % 4;
    lt_case *c = lt_case_new();
    loom_tensor *T = lt_input_static(c, "t", LOOM_I32, loom_shape(V, 2, 2), ti);
    loom_tensor *I = lt_input_static(c, "i", LOOM_I32, loom_shape(E), idx);
    loom_array r = lt_eval(c, loom_gather_rows(lt_graph(c), T, I));
    ck_assert_int_eq(r.ndim, 3);
    ck_assert_int_eq(r.dtype, LOOM_I32);
    for (int e = 0; e < E; e++)
        for (int j = 0; j < 4; j++)
            ck_assert_int_eq(((int32_t *)r.data)[e * 4 + j], 100 * idx[e] + j);
    lt_case_free(c);
    /* a 1-D u8 table */
    uint8_t tb[V] = {10, 11, 12, 13, 14};
    c = lt_case_new();
    r = lt_eval(c, loom_gather_rows(lt_graph(c), lt_input_static(c, "t", LOOM_U8, loom_shape(V), tb),
                                    lt_input_static(c, "i", LOOM_I32, loom_shape(E), idx)));
    ck_assert_int_eq(r.ndim, 1);
    for (int e = 0; e < E; e++)
        ck_assert_int_eq(((uint8_t *)r.data)[e], 10 + idx[e]);
    lt_case_free(c);
}
END_TEST

START_TEST(test_gather_grad)
{
    /* repeated indices and a row never gathered (3) */
    const int32_t idx[6] = {1, 4, 1, 0, 2, 1};
    lt_case *c = lt_case_new();
    loom_tensor *t = lt_param(c, "t", loom_shape(5, 3));
    loom_tensor *i = lt_input_static(c, "i", LOOM_I32, loom_shape(6), idx);
    lt_gradcheck(c, loom_gather_rows(lt_graph(c), t, i), 1e-6);
    lt_case_free(c);

    /* a 3-D table and a 1-D one */
    c = lt_case_new();
    lt_gradcheck(c, loom_gather_rows(lt_graph(c), lt_param(c, "t", loom_shape(5, 2, 2)),
                                     lt_input_static(c, "i", LOOM_I32, loom_shape(6), idx)),
                 1e-6);
    lt_case_free(c);
    c = lt_case_new();
    lt_gradcheck(c, loom_gather_rows(lt_graph(c), lt_param(c, "t", loom_shape(5)),
                                     lt_input_static(c, "i", LOOM_I32, loom_shape(6), idx)),
                 1e-6);
    lt_case_free(c);
}
END_TEST

/* A table of dynamic length V: its gradient scatters into V rows, V known only at run time. */
START_TEST(test_gather_dynamic_table)
{
    const int32_t idx[4] = {2, 0, 2, 1};
    double tv[3 * 2] = {1, 2, 3, 4, 5, 6};
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim V = loom_dim_dynamic(g, "V", 10);
    int64_t now[2] = {3, 2};
    loom_tensor *tin = lt_input(c, "t", LOOM_F64, loom_shape(V, 2), now, tv);
    loom_tensor *w = lt_param(c, "w", loom_shape(2));
    loom_tensor *t = loom_mul(g, tin, w); /* [V, 2], needs a gradient */
    loom_tensor *i = lt_input_static(c, "i", LOOM_I32, loom_shape(4), idx);
    lt_gradcheck(c, loom_gather_rows(g, t, i), 1e-6);
    lt_case_free(c);
}
END_TEST

/* ---- scatter and segments -------------------------------------------------------------------- */

START_TEST(test_scatter_forward)
{
    enum { E = 9, F = 4, N = 5 };
    /* segment 3 is empty; 0 and 4 get several rows, in no order */
    const int32_t idx[E] = {4, 0, 2, 0, 4, 1, 0, 4, 2};
    double x[E * F], want[N * F], got[N * F];
    lt_fill_normal(x, E * F, 3);
    for (int mode = 0; mode < 3; mode++)
        for (int f32 = 0; f32 < 2; f32++)
            for (int api = 0; api < 2; api++) {
                if (api && mode != SUM)
                    continue;
                float xf[E * F];
                double xs[E * F];
                memcpy(xs, x, sizeof xs);
                lt_as_dtype(xs, xf, E * F, f32);
                lt_case *c = lt_case_new();
                loom_graph *g = lt_graph(c);
                loom_tensor *X = lt_input_static(c, "x", f32 ? LOOM_F32 : LOOM_F64, loom_shape(E, F), f32 ? (void *)xf : xs);
                loom_tensor *I = lt_input_static(c, "i", LOOM_I32, loom_shape(E), idx);
                loom_tensor *y = api ? loom_scatter_add_rows(g, X, I, N) : segment(g, mode, X, I, N);
                ck_assert_int_eq(loom_tensor_dim(y, 0), N);
                ck_assert_int_eq(loom_tensor_dim(y, 1), F);
                loom_array r = lt_eval(c, y);
                naive_scatter(xs, idx, E, N, F, mode, want);
                to_double(&r, got);
                lt_assert_close(got, want, N * F, f32 ? 1e-6 : 1e-14, "scatter");
                for (int j = 0; j < F; j++)
                    ck_assert(got[3 * F + j] == 0.0);
                lt_case_free(c);
            }
}
END_TEST

/* Max over rows that are all negative (no -inf or 0 leaks in), ties in the forward value, 1-D
 * and 3-D sources, and NaN-free output where a segment is empty. */
START_TEST(test_scatter_max_details)
{
    const int32_t idx[4] = {1, 1, 0, 1};
    double x[4] = {-5, -2, -7, -3};
    lt_case *c = lt_case_new();
    loom_array r = lt_eval(c, loom_segment_max(lt_graph(c), lt_input_static(c, "x", LOOM_F64, loom_shape(4), x),
                                               lt_input_static(c, "i", LOOM_I32, loom_shape(4), idx), 3));
    ck_assert_int_eq(r.ndim, 1);
    ck_assert(((double *)r.data)[0] == -7);
    ck_assert(((double *)r.data)[1] == -2);
    ck_assert(((double *)r.data)[2] == 0);
    lt_case_free(c);

    enum { E = 6, N = 3 };
    const int32_t id3[E] = {2, 0, 2, 2, 1, 0};
    double x3[E * 6], want[N * 6], got[N * 6];
    lt_fill_normal(x3, E * 6, 8);
    for (int mode = 0; mode < 3; mode++) {
        c = lt_case_new();
        loom_tensor *y = segment(lt_graph(c), mode, lt_input_static(c, "x", LOOM_F64, loom_shape(E, 2, 3), x3),
                                 lt_input_static(c, "i", LOOM_I32, loom_shape(E), id3), N);
        ck_assert_int_eq(loom_tensor_ndim(y), 3);
        r = lt_eval(c, y);
        naive_scatter(x3, id3, E, N, 6, mode, want);
        to_double(&r, got);
        lt_assert_close(got, want, N * 6, 1e-14, "3-D segment");
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_scatter_grad)
{
    enum { E = 8, F = 3, N = 4 };
    /* segment 2 empty, segment 0 with one row; random normal values: no ties */
    const int32_t idx[E] = {3, 1, 3, 0, 1, 3, 1, 1};
    for (int mode = 0; mode < 3; mode++)
        for (int api = 0; api < 2; api++) {
            if (api && mode != SUM)
                continue;
            lt_case *c = lt_case_new();
            loom_graph *g = lt_graph(c);
            loom_tensor *x = lt_param(c, "x", loom_shape(E, F));
            loom_tensor *i = lt_input_static(c, "i", LOOM_I32, loom_shape(E), idx);
            lt_gradcheck(c, api ? loom_scatter_add_rows(g, x, i, N) : segment(g, mode, x, i, N), 1e-6);
            lt_case_free(c);
        }
    /* 1-D and 3-D sources */
    for (int mode = 0; mode < 3; mode++) {
        lt_case *c = lt_case_new();
        loom_tensor *i = lt_input_static(c, "i", LOOM_I32, loom_shape(E), idx);
        lt_gradcheck(c, segment(lt_graph(c), mode, lt_param(c, "x", loom_shape(E)), i, N), 1e-6);
        lt_case_free(c);
        c = lt_case_new();
        i = lt_input_static(c, "i", LOOM_I32, loom_shape(E), idx);
        lt_gradcheck(c, segment(lt_graph(c), mode, lt_param(c, "x", loom_shape(E, 2, 2)), i, N), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* With ties the max gradient goes to the first row (lowest index) attaining the max, per column. */
START_TEST(test_scatter_max_ties)
{
    /* segment 0 gets rows 0, 2, 3; column 0 ties between rows 2 and 3, column 1 between 0 and 3 */
    const int32_t idx[4] = {0, 1, 0, 0};
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = loom_param(g, "x", LOOM_F64, loom_shape(4, 2), loom_init_zeros());
    loom_tensor *i = lt_input_static(c, "i", LOOM_I32, loom_shape(4), idx);
    double gy[4] = {10, 20, 30, 40};
    loom_tensor *w = lt_input_static(c, "w", LOOM_F64, loom_shape(2, 2), gy);
    loom_tensor *loss = loom_sum(g, loom_mul(g, loom_segment_max(g, x, i, 2), w), LOOM_ALL_AXES, 0);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    loom_array xv;
    ck_assert_int_eq(loom_program_fetch(p, x, &xv), LOOM_OK);
    const double xs[8] = {1, 5, 0, 0, 3, 2, 3, 5};
    memcpy(xv.data, xs, sizeof xs);
    loom_array wa = {.dtype = LOOM_F64, .ndim = 2, .shape = {2, 2}, .data = gy};
    ck_assert_int_eq(loom_program_feed(p, w, &wa), LOOM_OK);
    loom_array ia = {.dtype = LOOM_I32, .ndim = 1, .shape = {4}, .data = (void *)idx};
    ck_assert_int_eq(loom_program_feed(p, i, &ia), LOOM_OK);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(p));
    loom_array gv;
    ck_assert_int_eq(loom_program_fetch(p, loom_program_grad(p, x), &gv), LOOM_OK);
    const double want[8] = {0, 20, 30, 40, 10, 0, 0, 0};
    lt_assert_close(gv.data, want, 8, 0, "max gradient with ties");
    loom_program_free(p);
    lt_case_free(c);
}
END_TEST

/* ---- awkward shapes -------------------------------------------------------------------------- */

START_TEST(test_index_awkward)
{
    /* E = 0: gathering nothing from a [4, 3] table */
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim E = loom_dim_dynamic(g, "E", 16);
    int64_t e0[1] = {0};
    loom_tensor *i = lt_input(c, "i", LOOM_I32, loom_shape(E), e0, NULL);
    loom_tensor *t = lt_param(c, "t", loom_shape(4, 3));
    loom_tensor *y = loom_gather_rows(g, t, i);
    ck_assert(loom_tensor_dim(y, 0) == E);
    loom_array r = lt_eval(c, y);
    ck_assert_int_eq(r.shape[0], 0);
    ck_assert_int_eq(r.shape[1], 3);
    lt_case_free(c);

    /* ... and its gradient is zero */
    c = lt_case_new();
    g = lt_graph(c);
    E = loom_dim_dynamic(g, "E", 16);
    i = lt_input(c, "i", LOOM_I32, loom_shape(E), e0, NULL);
    lt_gradcheck(c, loom_gather_rows(g, lt_param(c, "t", loom_shape(4, 3)), i), 1e-6);
    lt_case_free(c);

    /* N = 0 rows into 3 segments: zeros, every mode */
    for (int mode = 0; mode < 3; mode++) {
        c = lt_case_new();
        g = lt_graph(c);
        loom_dim N = loom_dim_dynamic(g, "N", 16);
        int64_t now[2] = {0, 2};
        loom_tensor *x = lt_input(c, "x", LOOM_F64, loom_shape(N, 2), now, NULL);
        loom_tensor *seg = lt_input(c, "seg", LOOM_I32, loom_shape(N), now, NULL);
        r = lt_eval(c, segment(g, mode, x, seg, 3));
        ck_assert_int_eq(r.shape[0], 3);
        ck_assert_int_eq(r.shape[1], 2);
        for (int k = 0; k < 6; k++)
            ck_assert(((double *)r.data)[k] == 0.0);
        lt_case_free(c);
    }

    /* n = 0 with E = 0 too; and n dynamic, sized by another input */
    c = lt_case_new();
    g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 16), B = loom_dim_dynamic(g, "B", 4);
    int64_t now[2] = {5, 2}, bnow[1] = {2};
    double xv[10];
    lt_fill_normal(xv, 10, 4);
    const int32_t sv[5] = {1, 0, 1, 1, 0};
    loom_tensor *x = lt_input(c, "x", LOOM_F64, loom_shape(N, 2), now, xv);
    loom_tensor *seg = lt_input(c, "seg", LOOM_I32, loom_shape(N), now, sv);
    loom_tensor *bsz = lt_input(c, "b", LOOM_F64, loom_shape(B), bnow, NULL); /* carries B = 2 */
    (void)bsz;
    y = loom_segment_mean(g, x, seg, B);
    ck_assert(loom_tensor_dim(y, 0) == B);
    r = lt_eval(c, y);
    ck_assert_int_eq(r.shape[0], 2);
    double want[4], got[4];
    naive_scatter(xv, sv, 5, 2, 2, MEAN, want);
    to_double(&r, got);
    lt_assert_close(got, want, 4, 1e-14, "segment mean into a dynamic n");
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    r = lt_eval(c, loom_segment_sum(g, lt_input_static(c, "x", LOOM_F64, loom_shape(0, 2), NULL),
                                    lt_input_static(c, "i", LOOM_I32, loom_shape(0), NULL), 0));
    ck_assert_int_eq(r.shape[0], 0);
    lt_case_free(c);

    /* size 1 everywhere */
    for (int mode = 0; mode < 3; mode++) {
        c = lt_case_new();
        const int32_t z = 0;
        lt_gradcheck(c, segment(lt_graph(c), mode, lt_param(c, "x", loom_shape(1, 1)),
                                lt_input_static(c, "i", LOOM_I32, loom_shape(1), &z), 1),
                     1e-6);
        lt_case_free(c);
    }
    c = lt_case_new();
    const int32_t z = 0;
    lt_gradcheck(c, loom_gather_rows(lt_graph(c), lt_param(c, "t", loom_shape(1, 1)),
                                     lt_input_static(c, "i", LOOM_I32, loom_shape(1), &z)),
                 1e-6);
    lt_case_free(c);
}
END_TEST

/* ---- run-time index errors ------------------------------------------------------------------- */

/* Runs a one-op inference program through the public API: gather_rows from x [4, 2] at idx [3],
 * or segment_sum of x [4, 2] by idx [4] into 3 rows; idx[pos] is bad. The run must fail with
 * LOOM_ERR_INVALID and an error containing needle. */
static void expect_run_error(int gather, int pos, int32_t bad, const char *needle)
{
    const int64_t e = gather ? 3 : 4;
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(4, 2));
    loom_tensor *i = loom_input(g, "i", LOOM_I32, loom_shape(e));
    if (gather)
        loom_gather_rows(g, x, i);
    else
        loom_segment_sum(g, x, i, 3);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, NULL, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    double xv[8] = {0};
    int32_t iv[4] = {0, 1, 2, 0};
    iv[pos] = bad;
    loom_array xa = {.dtype = LOOM_F64, .ndim = 2, .shape = {4, 2}, .data = xv};
    loom_array ia = {.dtype = LOOM_I32, .ndim = 1, .shape = {e}, .data = iv};
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, i, &ia), LOOM_OK);
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_ERR_INVALID);
    const char *err = loom_program_error(p);
    ck_assert_ptr_nonnull(err);
    ck_assert_msg(strstr(err, needle) != NULL, "expected '%s' in '%s'", needle, err);
    loom_program_free(p);
    loom_graph_free(g);
}

START_TEST(test_index_runtime_errors)
{
    expect_run_error(1, 2, 7, "idx[2] = 7 is outside [0, 4)");
    expect_run_error(1, 0, -1, "idx[0] = -1 is outside [0, 4)");
    expect_run_error(1, 2, 4, "idx[2] = 4 is outside [0, 4)");
    expect_run_error(1, 1, 9, "gather_rows");
    expect_run_error(0, 3, 3, "idx[3] = 3 is outside [0, 3)");
    expect_run_error(0, 3, -2, "idx[3] = -2 is outside [0, 3)");
    expect_run_error(0, 0, 100, "scatter");
}
END_TEST

/* ---- bad calls ------------------------------------------------------------------------------- */

START_TEST(test_index_bad_calls)
{
    loom_graph *g = loom_graph_new();
    loom_gather_rows(g, NULL, loom_input(g, "i", LOOM_I32, loom_shape(3)));
    lt_expect_error(g, "loom_gather_rows: tensor argument 1 is NULL");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_gather_rows(g, loom_input(g, "t", LOOM_F32, loom_shape(4, 2)), loom_input(g, "i", LOOM_I64, loom_shape(3)));
    lt_expect_error(g, "loom_gather_rows: idx must be a dense i32 tensor, got i64");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_gather_rows(g, loom_input(g, "t", LOOM_F32, loom_shape(4, 2)), loom_input(g, "i", LOOM_I32, loom_shape(3, 1)));
    lt_expect_error(g, "loom_gather_rows: idx must be 1-D, got [3, 1]");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_gather_rows(g, loom_input(g, "t", LOOM_F32, loom_shape()), loom_input(g, "i", LOOM_I32, loom_shape(3)));
    lt_expect_error(g, "loom_gather_rows: table must have at least 1 dim");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_gather_rows(g, loom_input_csr(g, "t", LOOM_F32, 4, 4), loom_input(g, "i", LOOM_I32, loom_shape(3)));
    lt_expect_error(g, "loom_gather_rows: table must be dense");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_segment_sum(g, loom_input(g, "x", LOOM_F32, loom_shape(5, 2)), loom_input(g, "s", LOOM_I32, loom_shape(4)), 3);
    lt_expect_error(g, "loom_segment_sum: idx is [4] but src is [5, 2]");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_segment_mean(g, loom_input(g, "x", LOOM_F32, loom_shape(N, 2)), loom_input(g, "s", LOOM_I32, loom_shape(8)), 3);
    lt_expect_error(g, "loom_segment_mean: idx is [8] but src is [N, 2]");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_segment_max(g, loom_input(g, "x", LOOM_F32, loom_shape(5, 2)), loom_input(g, "s", LOOM_F32, loom_shape(5)), 3);
    lt_expect_error(g, "loom_segment_max: idx must be a dense i32 tensor, got f32");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_scatter_add_rows(g, loom_input(g, "x", LOOM_I32, loom_shape(5, 2)), loom_input(g, "s", LOOM_I32, loom_shape(5)), 3);
    lt_expect_error(g, "loom_scatter_add_rows: src must be a dense f32 or f64 tensor, got i32");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_scatter_add_rows(g, loom_input(g, "x", LOOM_F64, loom_shape(5, 2)), loom_input(g, "s", LOOM_I32, loom_shape(5)), -2);
    lt_expect_error(g, "loom_scatter_add_rows: n is -2 (a size must be >= 0)");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_graph *other = loom_graph_new();
    loom_dim_dynamic(other, "A", 3);
    loom_dim_dynamic(other, "B", 3);
    loom_dim foreign = loom_dim_dynamic(other, "C", 3);
    loom_segment_sum(g, loom_input(g, "x", LOOM_F64, loom_shape(5, 2)), loom_input(g, "s", LOOM_I32, loom_shape(5)), foreign);
    lt_expect_error(g, "loom_segment_sum: n is a dynamic dim of another graph");
    loom_graph_free(g);
    loom_graph_free(other);

    g = loom_graph_new();
    loom_segment_sum(g, loom_input(g, "x", LOOM_F64, loom_shape(5, 2)), NULL, 3);
    lt_expect_error(g, "loom_segment_sum: tensor argument 2 is NULL");
    loom_graph_free(g);

    g = loom_graph_new();
    loom_segment_sum(g, loom_input(g, "x", LOOM_F64, loom_shape()), loom_input(g, "s", LOOM_I32, loom_shape(5)), 3);
    lt_expect_error(g, "loom_segment_sum: src must have at least 1 dim");
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_index");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_gather_forward);
    tcase_add_test(tc, test_gather_grad);
    tcase_add_test(tc, test_gather_dynamic_table);
    tcase_add_test(tc, test_scatter_forward);
    tcase_add_test(tc, test_scatter_max_details);
    tcase_add_test(tc, test_scatter_grad);
    tcase_add_test(tc, test_scatter_max_ties);
    tcase_add_test(tc, test_index_awkward);
    tcase_add_test(tc, test_index_runtime_errors);
    tcase_add_test(tc, test_index_bad_calls);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
