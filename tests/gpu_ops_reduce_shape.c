/* The CUDA kernels of the reduction and shape op families (sum, mean, expand, reshape, transpose,
 * concat, slice, slice_grad), each checked against its CPU kernel on the values of a reference run:
 * every forward and backward op of small graphs, in the default mode and in deterministic mode,
 * both float dtypes, and bitwise repeatable in deterministic mode (gpu_families.h). Skipped (77)
 * in a build without CUDA or on a machine without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_gpu.h"

#include "gpu_families.h"

/* The device, opened by the suite's fixture (see suite). */
static lt_gpu *gpu;

/* ---- sum, mean, expand ------------------------------------------------------------------------- */

static const int64_t reduce_shapes[][5] = {{1, 7}, {2, 5, 6}, {3, 3, 4, 5}, {4, 2, 3, 4, 5}, {2, 1, 6}, {3, 4, 1, 3}};
enum { NREDUCE = sizeof reduce_shapes / sizeof reduce_shapes[0] };

/* _i: shape * 4 + (mean) * 2 + (f64). Every axis subset (the empty one too) with keepdims on and
 * off, in one graph; their gradients are expands (scaled for mean). */
START_TEST(test_reduce_every_mask)
{
    const int64_t *sh = reduce_shapes[_i / 4];
    const int nd = (int)sh[0], mean = (_i / 2) % 2;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = lt_gpu_param(c, "x", dt, lt_gpu_shape(nd, sh + 1)), *loss = NULL;
    for (uint32_t m = 0; m < (1u << nd); m++)
        for (int keep = 0; keep < 2; keep++)
            loss = lt_gpu_add_sq(g, loss, mean ? loom_mean(g, x, m, keep) : loom_sum(g, x, m, keep));
    check_all(gpu, c, loss, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* _i: case * 2 + (f64). Shapes whose few outputs of many terms split into chunks (two passes
 * through the workspace), both kernel shapes, long and short rows. */
START_TEST(test_reduce_large)
{
    static const struct {
        int nd;
        int64_t d[3];
        uint32_t mask;
        int mean;
    } cases[] = {
        {2, {3000, 40}, 1, 0},  /* the bias gradient: few columns of many rows */
        {2, {3000, 40}, 3, 1},  /* the mean of everything: one output */
        {2, {3000, 40}, 2, 0},  /* row sums */
        {3, {7, 3000, 3}, 2, 1}, /* a middle axis */
        {3, {7, 3000, 3}, 5, 0}, /* the outer and inner axes: strided rows */
        {1, {100003}, 1, 0},     /* a long vector */
        {2, {5, 70001}, 2, 0},   /* few long rows */
    };
    const int k = _i / 2;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = lt_gpu_param(c, "x", dt, lt_gpu_shape(cases[k].nd, cases[k].d));
    loom_tensor *y = cases[k].mean ? loom_mean(g, x, cases[k].mask, k % 2) : loom_sum(g, x, cases[k].mask, k % 2);
    check_all(gpu, c, lt_gpu_add_sq(g, NULL, y), lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* Empty operands: a sum over an empty axis is 0, a mean too; an empty output launches nothing. */
START_TEST(test_reduce_empty)
{
    for (int f64 = 0; f64 < 2; f64++) {
        const loom_dtype dt = f64 ? LOOM_F64 : LOOM_F32;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(0, 4)), *w = lt_gpu_param(c, "w", dt, loom_shape(3, 4));
        loom_tensor *loss = lt_gpu_add_sq(g, NULL, w);
        loss = lt_gpu_add_sq(g, loss, loom_sum(g, x, 2, 0));  /* [0] */
        loss = lt_gpu_add_sq(g, loss, loom_mean(g, x, 2, 1)); /* [0, 1] */
        /* [4] of zeros, added to a live term so that the backward pass runs through them */
        loss = lt_gpu_add_sq(g, loss, loom_add(g, loom_sum(g, x, 1 << 0, 0), loom_mean(g, w, 1, 0)));
        loss = lt_gpu_add_sq(g, loss, loom_add(g, loom_mean(g, x, 1 << 0, 1), loom_sum(g, w, 1, 1)));
        check_all(gpu, c, loss, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* ---- reshape, transpose ------------------------------------------------------------------------ */

static const struct {
    int nd;
    int64_t d[4];
    int perm[4];
} transposes[] = {
    {2, {5, 7}, {1, 0}},
    {2, {33, 65}, {1, 0}},          /* partial tiles on both sides */
    {2, {1, 9}, {1, 0}},            /* a copy once size-1 dims merge away */
    {3, {3, 4, 5}, {0, 1, 2}},      /* the identity */
    {3, {3, 4, 5}, {0, 2, 1}},
    {3, {3, 4, 5}, {1, 0, 2}},      /* the inner dim stays: rows move whole */
    {3, {3, 4, 5}, {1, 2, 0}},
    {3, {3, 4, 5}, {2, 0, 1}},
    {3, {3, 4, 5}, {2, 1, 0}},
    {3, {40, 3, 36}, {2, 1, 0}},    /* a batch of tiles */
    {4, {2, 3, 4, 5}, {3, 2, 1, 0}},
    {4, {2, 3, 4, 5}, {0, 2, 1, 3}},
    {4, {2, 3, 4, 8}, {1, 0, 2, 3}}, /* rows of 32 floats move as 16-byte units */
    {4, {2, 3, 4, 5}, {1, 3, 0, 2}},
    {4, {3, 1, 4, 2}, {2, 0, 3, 1}},
};
enum { NTRANSPOSE = sizeof transposes / sizeof transposes[0] };

/* _i: case * 2 + (f64). The gradient is the inverse transpose; a reshape follows each. */
START_TEST(test_transpose)
{
    const int k = _i / 2;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = lt_gpu_param(c, "x", dt, lt_gpu_shape(transposes[k].nd, transposes[k].d));
    loom_tensor *y = loom_transpose(g, x, transposes[k].perm);
    int64_t n = 1;
    for (int i = 0; i < transposes[k].nd; i++)
        n *= transposes[k].d[i];
    loom_tensor *loss = lt_gpu_add_sq(g, NULL, y);
    loss = lt_gpu_add_sq(g, loss, loom_mul(g, loom_reshape(g, y, loom_shape(n)), loom_reshape(g, x, loom_shape(n))));
    check_all(gpu, c, loss, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* Integer tensors move as well: an i32 index matrix transposed and flattened feeds a gather. */
START_TEST(test_transpose_int)
{
    int32_t idx[2 * 3] = {0, 4, 1, 3, 3, 2};
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *ix = lt_input_static(c, "idx", LOOM_I32, loom_shape(2, 3), idx);
    loom_tensor *flat = loom_reshape(g, loom_transpose(g, ix, NULL), loom_shape(6));
    loom_tensor *table = lt_gpu_param(c, "table", LOOM_F32, loom_shape(5, 4));
    check_all(gpu, c, lt_gpu_add_sq(g, NULL, loom_gather_rows(g, table, flat)), 1e-5);
    lt_case_free(c);
}
END_TEST

/* ---- concat, slice ----------------------------------------------------------------------------- */

/* _i: (3-D) * 4 + (3 sources) * 2 + (f64). 2 or 3 sources of lengths 1, 3 and 5 along each axis
 * of a 2-D or 3-D shape; the gradient slices gout back apart. */
START_TEST(test_concat)
{
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    const int nsrc = 2 + (_i / 2) % 2, nd = 2 + (_i / 4) % 2;
    static const int64_t base[3] = {3, 4, 5};
    for (int axis = 0; axis < nd; axis++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *xs[3];
        for (int k = 0; k < nsrc; k++) {
            int64_t d[3] = {base[0], base[1], base[2]};
            d[axis] = 1 + 2 * k; /* 1, 3, 5 along the axis */
            char name[8];
            snprintf(name, sizeof name, "x%d", k);
            xs[k] = lt_gpu_param(c, name, dt, lt_gpu_shape(nd, d));
        }
        loom_tensor *y = loom_concat(g, xs, nsrc, axis);
        check_all(gpu, c, lt_gpu_add_sq(g, NULL, y), lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* Wider rows (16-byte units), a negative axis and a source empty along the axis. */
START_TEST(test_concat_wide_and_empty)
{
    for (int f64 = 0; f64 < 2; f64++) {
        const loom_dtype dt = f64 ? LOOM_F64 : LOOM_F32;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *a = lt_gpu_param(c, "a", dt, loom_shape(300, 16));
        loom_tensor *b = lt_gpu_param(c, "b", dt, loom_shape(300, 8));
        loom_tensor *e = lt_gpu_param(c, "e", dt, loom_shape(300, 0));
        loom_tensor *d = lt_gpu_param(c, "d", dt, loom_shape(300, 3));
        loom_tensor *loss = lt_gpu_add_sq(g, NULL, loom_concat(g, (loom_tensor *[]){a, e, b}, 3, -1));
        loss = lt_gpu_add_sq(g, loss, loom_concat(g, (loom_tensor *[]){e, d, a}, 3, 1));
        check_all(gpu, c, loss, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* _i: (f64). Slices of each axis of [4, 6, 5]: inner, leading, whole, single and empty ranges;
 * their gradients are slice_grads. */
START_TEST(test_slice)
{
    static const int64_t ranges[][3] = {{0, 1, 3}, {0, 0, 4}, {0, 3, 4}, {1, 2, 5}, {1, 0, 6}, {1, 4, 4},
                                        {2, 1, 4}, {2, 4, 5}, {2, 0, 0}, {-1, 2, 3}, {1, 5, 6}};
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(4, 6, 5)), *loss = NULL;
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++)
        loss = lt_gpu_add_sq(g, loss, loom_slice(g, x, (int)ranges[k][0], ranges[k][1], ranges[k][2]));
    /* rows of 64 floats: 16-byte units */
    loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(9, 64));
    loss = lt_gpu_add_sq(g, loss, loom_slice(g, w, 0, 2, 7));
    loss = lt_gpu_add_sq(g, loss, loom_slice(g, w, 1, 8, 40));
    loss = lt_gpu_add_sq(g, loss, loom_slice(g, w, 1, 3, 4));
    check_all(gpu, c, loss, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* The device is opened once for the whole suite, which runs unforked (see harness_gpu.h). */
static Suite *suite(void)
{
    Suite *s = suite_create("gpu_ops_reduce_shape");
    TCase *tc = tcase_create("ops");
    lt_gpu_add_fixture(tc, &gpu);
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, test_reduce_every_mask, 0, NREDUCE * 4);
    tcase_add_loop_test(tc, test_reduce_large, 0, 14);
    tcase_add_test(tc, test_reduce_empty);
    tcase_add_loop_test(tc, test_transpose, 0, NTRANSPOSE * 2);
    tcase_add_test(tc, test_transpose_int);
    tcase_add_loop_test(tc, test_concat, 0, 8);
    tcase_add_test(tc, test_concat_wide_and_empty);
    tcase_add_loop_test(tc, test_slice, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lt_gpu_run(suite);
}
