/* The CUDA kernels of the softmax family (log_softmax, softmax_cross_entropy and their gradients),
 * each checked against its CPU kernel on the values of a reference run of small training graphs:
 * both float dtypes, rows short and long, empty and dynamic batches, masks. Device-side label
 * errors are checked through the error record. Skipped (77) in a build without CUDA or on a
 * machine without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_gpu.h"

/* The device, opened by the suite's fixture (see suite). */
static lt_gpu *gpu;

/* ---- log_softmax --------------------------------------------------------------------------------- */

/* _i: (f64) + 2 * shape. Rows short (1, 7, 16 classes: groups of lanes), a warp's worth and more
 * (in registers up to 1024 f32 / 512 f64), and long (a block per row), in 2-D and 3-D. */
START_TEST(test_log_softmax)
{
    static const int64_t shapes[][4] = {
        {2, 5, 7, 0},   {2, 3, 16, 0}, {2, 4, 1, 0},   {3, 2, 3, 33}, {2, 1, 5, 0},    {2, 70, 3, 0},
        {2, 3, 100, 0}, {2, 2, 512, 0}, {2, 2, 513, 0}, {2, 2, 1024, 0}, {2, 3, 1500, 0}, {3, 2, 2, 2100},
    };
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    const int64_t *s = shapes[_i / 2];
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = loom_scale(g, lt_gpu_param(c, "x", dt, lt_gpu_shape((int)s[0], s + 1)), 3.0);
    lt_gpu_check_case(gpu, c, lt_gpu_sq_loss(g, loom_log_softmax(g, x)), lt_gpu_adam(), 0, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* Every elementwise and row op on a dynamic batch (bound 16) that is empty, then of 3 rows. */
START_TEST(test_empty_batch)
{
    for (int k = 0; k < 4; k++) {
        const loom_dtype dt = k % 2 ? LOOM_F64 : LOOM_F32;
        const int64_t nnow = k / 2 ? 3 : 0;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_graph_set_seed(g, 5);
        loom_dim N = loom_dim_dynamic(g, "N", 16);
        loom_tensor *x = lt_gpu_input_normal(c, "x", dt, loom_shape(N, 5), (int64_t[]){nnow, 5}, 41);
        loom_tensor *w = lt_gpu_param_uniform(c, "w", dt, loom_shape(5), 0.5, 2.0);
        loom_tensor *z = loom_bias_add(g, loom_mul(g, x, w), w);
        loom_tensor *ys[] = {loom_relu(g, z),       loom_leaky_relu(g, z, 0.1), loom_elu(g, z, 1.0),
                             loom_sigmoid(g, z),    loom_tanh(g, z),            loom_log_softmax(g, z),
                             loom_dropout(g, z, 0.5), loom_scale(g, loom_div(g, z, loom_add(g, loom_mul(g, w, w), w)), 2.0)};
        loom_tensor *loss = lt_gpu_sq_loss(g, w);
        for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++)
            loss = loom_add(g, loss, lt_gpu_sq_loss(g, ys[i]));
        lt_gpu_check_case(gpu, c, loss, lt_gpu_adam(), 1, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* ---- softmax cross entropy ----------------------------------------------------------------------- */

/* Labels in [0, C) and a mask keeping about two rows in three, from a seed. */
static loom_tensor *labels_input(lt_case *c, const char *name, loom_dim n, int64_t nnow, int64_t classes, uint64_t seed)
{
    int32_t *l = malloc((size_t)(nnow ? nnow : 1) * sizeof *l);
    ck_assert_ptr_nonnull(l);
    lt_fill_int(l, nnow, (int32_t)(classes ? classes : 1), seed);
    loom_tensor *t = lt_input(c, name, LOOM_I32, loom_shape(n), (int64_t[]){nnow}, l);
    free(l);
    return t;
}

static loom_tensor *mask_input(lt_case *c, const char *name, loom_dim n, int64_t nnow, int keep_none, uint64_t seed)
{
    int32_t *r = malloc((size_t)(nnow ? nnow : 1) * sizeof *r);
    uint8_t *m = malloc((size_t)(nnow ? nnow : 1));
    ck_assert(r && m);
    lt_fill_int(r, nnow, 3, seed);
    for (int64_t i = 0; i < nnow; i++)
        m[i] = keep_none ? 0 : r[i] != 0 ? (uint8_t)(1 + r[i]) : 0; /* any nonzero byte keeps */
    loom_tensor *t = lt_input(c, name, LOOM_U8, loom_shape(n), (int64_t[]){nnow}, m);
    free(r);
    free(m);
    return t;
}

/* _i: (f64) + 2 * (masked) + 4 * shape. Logits are a parameter [N, C] scaled by 2; the loss is the
 * cross entropy itself, so its backward pass is fill then softmax_cross_entropy_grad. */
START_TEST(test_softmax_ce)
{
    static const int64_t nc[][2] = {{6, 7},  {6, 16},  {5, 1},    {9, 3},   {4, 40},    {3, 600},
                                    {3, 1100}, {2, 2500}, {1500, 7}, {2100, 1}, {1, 1}, {40, 513}};
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    const int masked = (_i / 2) % 2;
    const int64_t n = nc[_i / 4][0], classes = nc[_i / 4][1];
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *z = loom_scale(g, lt_gpu_param(c, "z", dt, loom_shape(n, classes)), 2.0);
    loom_tensor *l = labels_input(c, "l", n, n, classes, 7 + (uint64_t)_i);
    loom_tensor *m = masked ? mask_input(c, "m", n, n, 0, 11 + (uint64_t)_i) : NULL;
    lt_gpu_check_case(gpu, c, loom_softmax_cross_entropy(g, z, l, m), lt_gpu_adam(), 0, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* Dynamic batches (bound 64): 37 rows, no row (the loss is 0), and a mask keeping none (count 0),
 * through a linear layer so that matmul's gradient takes the CE gradient. */
START_TEST(test_softmax_ce_dynamic)
{
    for (int k = 0; k < 8; k++) {
        const loom_dtype dt = k % 2 ? LOOM_F64 : LOOM_F32;
        const int kind = k / 2; /* 0: 37 rows, 1: 37 rows with a mask, 2: 0 rows, 3: a mask keeping none */
        const int64_t nnow = kind == 2 ? 0 : 37;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_dim N = loom_dim_dynamic(g, "N", 64);
        loom_tensor *x = lt_gpu_input_normal(c, "x", dt, loom_shape(N, 5), (int64_t[]){nnow, 5}, 17);
        loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(5, 7));
        loom_tensor *l = labels_input(c, "l", N, nnow, 7, 19);
        loom_tensor *m = kind == 1 || kind == 3 ? mask_input(c, "m", N, nnow, kind == 3, 23) : NULL;
        loom_tensor *loss = loom_softmax_cross_entropy(g, loom_matmul(g, x, w), l, m);
        lt_gpu_check_case(gpu, c, loom_add(g, loss, lt_gpu_sq_loss(g, w)), lt_gpu_adam(), 0, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* A label outside [0, C) of a kept row is recorded in the device error record (code, the task's
 * tag, the label, C), by the loss and by its gradient; one in a row the mask leaves out is never
 * read. */
START_TEST(test_softmax_ce_bad_label)
{
    enum { N = 4, C = 3 };
    static const int32_t bad[][N] = {{0, 2, 5, 1}, {-1, 0, 1, 2}, {0, 1, 2, 3}};
    static const uint8_t keep[N] = {1, 1, 0, 1};
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 3; k++)
            for (int masked = 0; masked < 2; masked++) {
                const loom_dtype dt = d ? LOOM_F64 : LOOM_F32;
                loom_graph *g = loom_graph_new();
                loom_tensor *zt = loom_input(g, "z", dt, loom_shape(N, C));
                loom_tensor *lt = loom_input(g, "l", LOOM_I32, loom_shape(N));
                loom_tensor *mt = masked ? loom_input(g, "m", LOOM_U8, loom_shape(N)) : NULL;
                loom_tensor *gt = loom_input(g, "gout", dt, loom_shape());
                loom_tensor *loss = loom_softmax_cross_entropy(g, zt, lt, mt);
                loom_tensor *grad = loom__node(g, "test", LOOM_OP_SOFTMAX_CE_GRAD, masked ? 4 : 3,
                                               masked ? (loom_tensor *[]){zt, lt, mt, gt} : (loom_tensor *[]){zt, lt, gt},
                                               NULL);
                ck_assert_msg(loom_graph_status(g) == LOOM_OK, "%s", loom_graph_error(g));

                double z64[N * C], one64 = 1.0;
                float z32[N * C], one32 = 1.0f;
                lt_fill_normal(z64, N * C, 3);
                for (int i = 0; i < N * C; i++)
                    z32[i] = (float)z64[i];
                loom__value z = {.dtype = dt, .ndim = 2, .shape = {N, C}, .data = d ? (void *)z64 : (void *)z32};
                loom__value l = {.dtype = LOOM_I32, .ndim = 1, .shape = {N}, .data = (void *)bad[k]};
                loom__value m = {.dtype = LOOM_U8, .ndim = 1, .shape = {N}, .data = (void *)keep};
                loom__value go = {.dtype = dt, .ndim = 0, .data = d ? (void *)&one64 : (void *)&one32};
                loom__value out_loss = {.dtype = dt, .ndim = 0};
                loom__value out_grad = {.dtype = dt, .ndim = 2, .shape = {N, C}};
                loom__value *src_loss[3] = {&z, &l, &m};
                loom__value *src_grad[4] = {&z, &l, masked ? &m : &go, &go};

                /* the bad row: k = 0 has label 5 in row 2, which the mask leaves out */
                const int expect = !(masked && k == 0);
                const long long value = k == 0 ? 5 : k == 1 ? -1 : 3;
                for (int which = 0; which < 2; which++) {
                    const loom_tensor *t = which ? grad : loss;
                    loom__cuda_err err;
                    char msg[256];
                    memset(&err, 0xff, sizeof err);
                    loom_status s = lt_gpu_run_op(gpu, t, which ? &out_grad : &out_loss, which ? src_grad : src_loss,
                                                  &err, msg, sizeof msg);
                    ck_assert_msg(s == LOOM_OK, "%s: %s", loom__op_def(t->op)->name, msg);
                    if (expect) {
                        ck_assert_int_eq(err.code, LOOM__CUDA_ERR_LABEL);
                        ck_assert_int_eq(err.tag, t->id);
                        ck_assert_int_eq(err.value, value);
                        ck_assert_int_eq(err.bound, C);
                    } else {
                        ck_assert_int_eq(err.code, LOOM__CUDA_ERR_NONE);
                    }
                }
                if (!expect) { /* then both agree with the CPU kernels, which pass too */
                    lt_gpu_check_op(gpu, loss, &out_loss, src_loss, 0, 1, lt_gpu_tol(dt));
                    lt_gpu_check_op(gpu, grad, &out_grad, src_grad, 0, 1, lt_gpu_tol(dt));
                }
                loom_graph_free(g);
            }
}
END_TEST

/* The device is opened once for the whole suite, which runs unforked (see harness_gpu.h). */
static Suite *suite(void)
{
    Suite *s = suite_create("gpu_ops_softmax");
    TCase *tc = tcase_create("ops");
    lt_gpu_add_fixture(tc, &gpu);
    tcase_add_loop_test(tc, test_log_softmax, 0, 24);
    tcase_add_test(tc, test_empty_batch);
    tcase_add_loop_test(tc, test_softmax_ce, 0, 48);
    tcase_add_test(tc, test_softmax_ce_dynamic);
    tcase_add_test(tc, test_softmax_ce_bad_label);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lt_gpu_run(suite);
}
