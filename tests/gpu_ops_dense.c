/* The CUDA kernels of the dense op families (binary, unary, matmul, dropout, optimizer updates and
 * fill), each checked against its CPU kernel on the values of a reference run: every forward and
 * backward op and every optimizer update of small training graphs, with broadcasting, size-1 and
 * empty dims, both float dtypes, and the optimizers' every setting; dropout masks must match bit
 * for bit. The softmax family is gpu_ops_softmax.c's, a captured step's gpu_graph_capture.c's.
 * Skipped (77) in a build without CUDA or on a machine without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_gpu.h"

#include "runtime/devices/cuda/cuda_rt.h"

/* The device, opened by the suite's fixture (see suite). */
static lt_gpu *gpu;


/* ---- binary ops with broadcasting -------------------------------------------------------------- */

typedef struct bshape {
    int na;
    int64_t a[4];
    int nb;
    int64_t b[4];
} bshape;

static const bshape bshapes[] = {
    {2, {4, 5}, 2, {4, 5}},       /* same shape: the flat loop */
    {2, {4, 5}, 1, {5}},          /* a row broadcast */
    {2, {4, 5}, 2, {4, 1}},       /* a column broadcast */
    {2, {4, 5}, 2, {1, 5}},       /* a row broadcast, 2-D */
    {2, {4, 5}, 0, {0}},          /* a scalar on the right */
    {0, {0}, 2, {3, 2}},          /* and on the left */
    {3, {2, 3, 4}, 2, {3, 1}},    /* 3-D with a middle broadcast */
    {3, {2, 1, 4}, 2, {3, 1}},    /* both stretched */
    {3, {3, 1, 5}, 3, {1, 4, 1}}, /* outer product like */
    {2, {1, 1}, 1, {1}},          /* every dim 1 */
    {1, {1}, 3, {2, 1, 3}},       /* a one-element operand */
    {4, {2, 3, 1, 5}, 4, {2, 1, 4, 5}},
    {1, {1003}, 1, {1003}},       /* not a multiple of the vector width */
    {2, {129, 33}, 1, {33}},      /* several blocks */
    {2, {129, 33}, 2, {129, 1}},
};
enum { NBSHAPES = sizeof bshapes / sizeof bshapes[0] };

static loom_tensor *apply_binary(loom_graph *g, int op, loom_tensor *a, loom_tensor *b)
{
    switch (op) {
    case 0: return loom_add(g, a, b);
    case 1: return loom_sub(g, a, b);
    case 2: return loom_mul(g, a, b);
    default: return loom_div(g, a, b);
    }
}

/* _i: shape * 8 + op * 2 + (f64). Both operands are parameters, so the gradients reduce the
 * broadcast back (through sum) and every binary op appears in the backward pass too. */
START_TEST(test_binary_broadcast)
{
    const bshape *s = &bshapes[_i / 8];
    const int op = (_i / 2) % 4;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *a = lt_gpu_param(c, "a", dt, lt_gpu_shape(s->na, s->a));
    loom_tensor *b = op == 3 ? lt_gpu_param_uniform(c, "b", dt, lt_gpu_shape(s->nb, s->b), 0.5, 2.0)
                             : lt_gpu_param(c, "b", dt, lt_gpu_shape(s->nb, s->b));
    lt_gpu_check_case(gpu, c, lt_gpu_sq_loss(g, apply_binary(g, op, a, b)), lt_gpu_adam(), 0, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* _i: (N now is 5) * 8 + op * 2 + (f64). A dynamic batch of bound 8, empty or of 5 rows, against
 * a broadcast parameter: [N, 3] op [3] and [N, 1] op [1, 3]. */
START_TEST(test_binary_dynamic_batch)
{
    const int64_t nnow = _i / 8 ? 5 : 0;
    const int op = (_i / 2) % 4;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_dim N = loom_dim_dynamic(g, "N", 8);
    loom_tensor *x = lt_gpu_input_normal(c, "x", dt, loom_shape(N, 3), (int64_t[]){nnow, 3}, 1);
    loom_tensor *x1 = lt_gpu_input_normal(c, "x1", dt, loom_shape(N, 1), (int64_t[]){nnow, 1}, 2);
    loom_tensor *w = lt_gpu_param_uniform(c, "w", dt, loom_shape(3), 0.5, 2.0);
    loom_tensor *u = lt_gpu_param_uniform(c, "u", dt, loom_shape(1, 3), 0.5, 2.0);
    loom_tensor *y = loom_add(g, apply_binary(g, op, x, w), apply_binary(g, op, x1, u));
    lt_gpu_check_case(gpu, c, loom_add(g, lt_gpu_sq_loss(g, y), lt_gpu_sq_loss(g, w)), lt_gpu_adam(), 0, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* _i: (f64) + 2 * shape. scale by a negative factor, and bias_add on 2-D, 3-D, 1-D and long rows. */
START_TEST(test_scale_bias_add)
{
    static const int64_t xs[][4] = {{2, 4, 7}, {3, 2, 3, 4}, {1, 6}, {2, 5, 1030}, {2, 1, 1}};
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    const int64_t *x = xs[_i / 2];
    const int nd = (int)x[0];
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *xp = lt_gpu_param(c, "x", dt, lt_gpu_shape(nd, x + 1));
    loom_tensor *b = lt_gpu_param(c, "b", dt, loom_shape(x[nd]));
    loom_tensor *y = loom_scale(g, loom_bias_add(g, xp, b), -1.75);
    lt_gpu_check_case(gpu, c, lt_gpu_sq_loss(g, y), lt_gpu_adam(), 0, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* ---- activations ---------------------------------------------------------------------------------- */

/* _i: activation * 2 + (f64). Inputs scaled by 4 reach the saturated tails of sigmoid, tanh and
 * elu; the backward pass runs act_grad. An odd element count leaves a vector tail. */
START_TEST(test_activations)
{
    const int act = _i / 2;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = loom_scale(g, lt_gpu_param(c, "x", dt, loom_shape(37, 9)), 4.0);
    loom_tensor *y = NULL;
    switch (act) {
    case 0: y = loom_relu(g, x); break;
    case 1: y = loom_leaky_relu(g, x, 0.1); break;
    case 2: y = loom_elu(g, x, 0.7); break;
    case 3: y = loom_sigmoid(g, x); break;
    case 4: y = loom_tanh(g, x); break;
    default: y = loom_leaky_relu(g, x, -0.3); break;
    }
    lt_gpu_check_case(gpu, c, lt_gpu_sq_loss(g, y), lt_gpu_adam(), 0, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* Zeros (exactly at the kinks of relu and leaky_relu) and large magnitudes: x * 0 then + values. */
START_TEST(test_activations_special_values)
{
    static const double v[] = {0.0, -0.0, 1e-30, -1e-30, 30.0, -30.0, 100.0, -100.0, 700.0, -700.0, 0.5, -0.5};
    enum { NV = sizeof v / sizeof v[0] };
    for (int k = 0; k < 2; k++) {
        const loom_dtype dt = k ? LOOM_F64 : LOOM_F32;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        float vf[NV];
        for (int i = 0; i < NV; i++)
            vf[i] = (float)v[i];
        loom_tensor *x = lt_input_static(c, "x", dt, loom_shape(NV), dt == LOOM_F64 ? (const void *)v : (const void *)vf);
        loom_tensor *w = lt_gpu_param_uniform(c, "w", dt, loom_shape(NV), 1.0, 1.0 + 1e-9);
        loom_tensor *xw = loom_mul(g, x, w);
        loom_tensor *ys[6] = {loom_relu(g, xw), loom_leaky_relu(g, xw, 0.2), loom_elu(g, xw, 1.0), loom_sigmoid(g, xw),
                              loom_tanh(g, xw), loom_elu(g, xw, 0.3)};
        loom_tensor *loss = NULL;
        for (int i = 0; i < 6; i++) {
            loom_tensor *l = loom_sum(g, ys[i], LOOM_ALL_AXES, 0);
            loss = loss ? loom_add(g, loss, l) : l;
        }
        lt_gpu_check_case(gpu, c, loss, lt_gpu_adam(), 0, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* ---- matmul -------------------------------------------------------------------------------------- */

/* _i: (ta, tb) * 2 + (f64) for [5, 7] x [7, 3], then [64, 48] x [48, 33]. TF32 off: FP32. */
START_TEST(test_matmul)
{
    const int ta = (_i / 4) & 1, tb = (_i / 2) & 1;
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    for (int big = 0; big < 2; big++) {
        const int64_t m = big ? 64 : 5, k = big ? 48 : 7, n = big ? 33 : 3;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *a = lt_gpu_param(c, "a", dt, ta ? loom_shape(k, m) : loom_shape(m, k));
        loom_tensor *b = lt_gpu_param(c, "b", dt, tb ? loom_shape(n, k) : loom_shape(k, n));
        /* scaled to values of about 1, so that f32 sums stay within the tolerance in either order */
        loom_tensor *y = loom_scale(g, loom_matmul_ex(g, a, b, ta, tb), 1.0 / sqrt((double)k));
        lt_gpu_check_case(gpu, c, lt_gpu_sq_loss(g, y), lt_gpu_adam(), 0, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* _i: (f64) + 2 * case. Empty dims: k = 0 writes zeros, m = 0 and n = 0 write nothing. */
START_TEST(test_matmul_empty)
{
    static const int64_t mkn[][3] = {{4, 0, 3}, {0, 5, 3}, {4, 5, 0}, {1, 1, 1}, {1, 9, 1}};
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    const int64_t *s = mkn[_i / 2];
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *a = lt_gpu_param(c, "a", dt, loom_shape(s[0], s[1]));
    loom_tensor *b = lt_gpu_param(c, "b", dt, loom_shape(s[1], s[2]));
    loom_tensor *y = loom_matmul(g, a, b);
    lt_gpu_check_case(gpu, c, loom_add(g, lt_gpu_sq_loss(g, y), loom_add(g, lt_gpu_sq_loss(g, a), lt_gpu_sq_loss(g, b))),
                      lt_gpu_adam(), 0, lt_gpu_tol(dt));
    lt_case_free(c);
}
END_TEST

/* A dynamic batch through a linear layer: x [N, 6] (N = 37 of 64, then 0) times W [6, 4]. */
START_TEST(test_matmul_dynamic)
{
    for (int k = 0; k < 4; k++) {
        const loom_dtype dt = k % 2 ? LOOM_F64 : LOOM_F32;
        const int64_t nnow = k / 2 ? 0 : 37;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_dim N = loom_dim_dynamic(g, "N", 64);
        loom_tensor *x = lt_gpu_input_normal(c, "x", dt, loom_shape(N, 6), (int64_t[]){nnow, 6}, 5);
        loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(6, 4));
        loom_tensor *b = lt_gpu_param(c, "b", dt, loom_shape(4));
        loom_tensor *y = loom_tanh(g, loom_bias_add(g, loom_matmul(g, x, w), b));
        lt_gpu_check_case(gpu, c, loom_add(g, lt_gpu_sq_loss(g, y), lt_gpu_sq_loss(g, w)), lt_gpu_adam(), 0, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* Tensor cores for f32 (_i: TF32, BF16): products within the format's mantissa, relative to
 * max(1, |value|) over 24 products of N(0, 1) values: TF32 keeps 10 bits (about 2^-10 each), BF16
 * 8 (about 2^-8 each). */
START_TEST(test_matmul_tensor_cores)
{
    static const struct {
        loom_matmul_precision precision;
        double tol;
    } modes[] = {{LOOM_MATMUL_TF32, 2e-2}, {LOOM_MATMUL_BF16, 1e-1}};
    lt_gpu_set_modes(gpu, 0, modes[_i].precision);
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *a = lt_gpu_param(c, "a", LOOM_F32, loom_shape(32, 24));
    loom_tensor *b = lt_gpu_param(c, "b", LOOM_F32, loom_shape(24, 16));
    lt_gpu_check_case(gpu, c, loom_sum(g, loom_matmul(g, a, b), LOOM_ALL_AXES, 0), lt_gpu_adam(), 0, modes[_i].tol);
    lt_gpu_set_modes(gpu, 0, LOOM_MATMUL_F32);
    lt_case_free(c);
}
END_TEST

/* ---- dropout ------------------------------------------------------------------------------------- */

/* _i: (f64) + 2 * shape. Training mode at steps 0, 1 and 3: the mask (u8) must match the CPU's
 * exactly, forward and backward (dropout of the gradient with the same mask). */
START_TEST(test_dropout_steps)
{
    static const int64_t shapes[][2] = {{37, 11}, {1, 1}, {1, 7}, {70, 33}};
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    const int64_t *s = shapes[_i / 2];
    static const int steps[] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_graph_set_seed(g, 1234 + (uint64_t)_i);
        loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(s[0], s[1]));
        loom_tensor *y = loom_dropout(g, loom_tanh(g, x), 0.3);
        loom_tensor *y2 = loom_dropout(g, y, 0.75);
        lt_gpu_check_case(gpu, c, lt_gpu_sq_loss(g, y2), lt_gpu_adam(), steps[k], lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* Evaluation mode, checked op by op: a mask of ones and dropout the identity. Then the training
 * mask of an empty tensor and of one whose size is not a multiple of 8 (the word stores). */
START_TEST(test_dropout_eval_and_sizes)
{
    static const int64_t sizes[] = {1, 7, 8, 9, 15, 16, 17, 1001, 4096 + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        for (int d = 0; d < 2; d++) {
            const loom_dtype dt = d ? LOOM_F64 : LOOM_F32;
            lt_case *c = lt_case_new();
            loom_graph *g = lt_graph(c);
            loom_graph_set_seed(g, 99 + k);
            loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(sizes[k]));
            loom_tensor *y = loom_dropout(g, x, 0.5);
            const loom_optimizer o = lt_gpu_adam();
            loom_program *p = lt_compile_reference(c, lt_gpu_sq_loss(g, y), &o);
            ck_assert_int_eq(loom_program_run(p, LOOM_RUN_GRAD), LOOM_OK);
            lt_gpu_check_program(gpu, p, lt_gpu_tol(dt));
            /* evaluation: both ops on the values of the training run */
            loom_tensor *mask = y->src[1];
            loom__value *src[2] = {&p->val[x->id], &p->val[mask->id]};
            lt_gpu_check_op(gpu, mask, &p->val[mask->id], src, p->step, 0, 0);
            lt_gpu_check_op(gpu, y, &p->val[y->id], src, p->step, 0, lt_gpu_tol(dt));
            lt_case_free(c);
        }
    }
    /* an empty batch */
    for (int d = 0; d < 2; d++) {
        const loom_dtype dt = d ? LOOM_F64 : LOOM_F32;
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_dim N = loom_dim_dynamic(g, "N", 16);
        loom_tensor *x = lt_gpu_input_normal(c, "x", dt, loom_shape(N, 3), (int64_t[]){0, 3}, 3);
        loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(3));
        loom_tensor *y = loom_dropout(g, loom_mul(g, x, w), 0.5);
        lt_gpu_check_case(gpu, c, loom_add(g, lt_gpu_sq_loss(g, y), lt_gpu_sq_loss(g, w)), lt_gpu_adam(), 1, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* ---- optimizers ---------------------------------------------------------------------------------- */

static loom_optimizer optimizer(int k)
{
    loom_optimizer o;
    switch (k) {
    case 0: o = loom_sgd(0.1); break;
    case 1: o = loom_sgd(0.1), o.momentum = 0.9; break;
    case 2: o = loom_sgd(0.05), o.momentum = 0.8, o.dampening = 0.25; break;
    case 3: o = loom_sgd(0.1), o.momentum = 0.9, o.nesterov = 1; break;
    case 4: o = loom_sgd(0.1), o.momentum = 0.9, o.weight_decay = 0.01; break;
    case 5: o = loom_sgd(0.1), o.weight_decay = 0.05; break;
    case 6: o = loom_sgd(0.1), o.momentum = 0.5, o.nesterov = 1, o.weight_decay = 0.02; break;
    case 7: o = loom_adam(0.01); break;
    case 8: o = loom_adam(0.01), o.weight_decay = 0.1; break;
    case 9: o = loom_adamw(0.01, 0.1); break;
    default: o = loom_adam(0.003), o.beta1 = 0.5, o.beta2 = 0.9, o.eps = 1e-6; break;
    }
    return o;
}
enum { NOPT = 11 };

/* _i: optimizer * 2 + (f64). Every update checked at step 0 (SGD's first step starts its buffer,
 * Adam's bias corrections are largest) and after 1 and 3 steps (buffers and moments in use);
 * one parameter has a weight decay of its own. Sizes leave vector tails. */
START_TEST(test_optimizers)
{
    const loom_optimizer o = optimizer(_i / 2);
    const loom_dtype dt = _i % 2 ? LOOM_F64 : LOOM_F32;
    static const int steps[] = {0, 1, 3};
    for (int k = 0; k < 3; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(13, 7));
        loom_tensor *b = lt_gpu_param(c, "b", dt, loom_shape(7));
        loom_tensor *s = lt_gpu_param(c, "s", dt, loom_shape(1));
        loom_tensor *big = lt_gpu_param(c, "big", dt, loom_shape(1029));
        loom_param_set_weight_decay(b, 0.3);
        loom_tensor *y = loom_mul(g, loom_tanh(g, loom_bias_add(g, w, b)), s);
        loom_tensor *loss = loom_add(g, lt_gpu_sq_loss(g, y), lt_gpu_sq_loss(g, loom_sigmoid(g, big)));
        lt_gpu_check_case(gpu, c, loss, o, steps[k], lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* fill: the seed of every backward pass above; here over larger shapes and both dtypes. */
START_TEST(test_fill)
{
    static const int64_t sizes[] = {1, 3, 4, 5, 1000, 4097};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
        for (int d = 0; d < 2; d++) {
            const loom_dtype dt = d ? LOOM_F64 : LOOM_F32;
            loom_graph *g = loom_graph_new();
            loom_tensor *x = loom_input(g, "x", dt, loom_shape(sizes[k]));
            loom__attrs a = {.f = {-2.625}};
            loom_tensor *f = loom__node(g, "test", LOOM_OP_FILL, 1, &x, &a);
            ck_assert_msg(loom_graph_status(g) == LOOM_OK, "%s", loom_graph_error(g));
            void *data = calloc((size_t)sizes[k], loom_dtype_size(dt));
            ck_assert_ptr_nonnull(data);
            loom__value xv = {.dtype = dt, .ndim = 1, .shape = {sizes[k]}, .data = data};
            loom__value *src[1] = {&xv};
            lt_gpu_check_op(gpu, f, &xv, src, 0, 1, 0);
            free(data);
            loom_graph_free(g);
        }
}
END_TEST

/* ---- random graphs ------------------------------------------------------------------------------- */

/* _i: seed. lt_random_graph mixes most of these ops (and a few of other families) on small
 * shapes; every op of a GRAD run and every Adam update is checked, half of the seeds with the
 * kernels' deterministic mode on. */
START_TEST(test_random_graphs)
{
    const uint64_t seed = (uint64_t)_i;
    lt_gpu_set_modes(gpu, _i % 2, 0);
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_graph_set_seed(g, 1000 + seed);
    loom_tensor *x, *idx;
    int64_t rc[2];
    loom_tensor *loss = lt_random_graph(g, seed, &x, &idx, rc);
    const loom_optimizer o = lt_gpu_adam();
    loom_program *p = lt_compile_reference(c, loss, &o);
    loom_array xa, ia;
    ck_assert_int_eq(loom_array_alloc(&xa, loom_tensor_dtype(x), 2, rc), LOOM_OK);
    ck_assert_int_eq(loom_array_alloc(&ia, LOOM_I32, 1, rc), LOOM_OK);
    double *xd = malloc((size_t)(rc[0] * rc[1]) * sizeof *xd);
    ck_assert_ptr_nonnull(xd);
    lt_fill_normal(xd, rc[0] * rc[1], 31 + seed);
    for (int64_t i = 0; i < rc[0] * rc[1]; i++) {
        if (xa.dtype == LOOM_F64)
            ((double *)xa.data)[i] = xd[i];
        else
            ((float *)xa.data)[i] = (float)xd[i];
    }
    lt_fill_int(ia.data, rc[0], (int32_t)rc[0], 37 + seed);
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, idx, &ia), LOOM_OK);
    for (int s = 0; s < 2; s++)
        ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
    ck_assert_msg(loom_program_run(p, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(p));
    lt_gpu_check_program(gpu, p, lt_gpu_tol(xa.dtype));
    free(xd);
    loom_array_free(&xa);
    loom_array_free(&ia);
    lt_case_free(c);
    lt_gpu_set_modes(gpu, 0, 0);
}
END_TEST

/* The device is opened once for the whole suite, which runs unforked (see harness_gpu.h). */
static Suite *suite(void)
{
    Suite *s = suite_create("gpu_ops_dense");
    TCase *tc = tcase_create("ops");
    lt_gpu_add_fixture(tc, &gpu);
    tcase_add_loop_test(tc, test_binary_broadcast, 0, NBSHAPES * 8);
    tcase_add_loop_test(tc, test_binary_dynamic_batch, 0, 16);
    tcase_add_loop_test(tc, test_scale_bias_add, 0, 10);
    tcase_add_loop_test(tc, test_activations, 0, 12);
    tcase_add_test(tc, test_activations_special_values);
    tcase_add_loop_test(tc, test_matmul, 0, 8);
    tcase_add_loop_test(tc, test_matmul_empty, 0, 10);
    tcase_add_test(tc, test_matmul_dynamic);
    tcase_add_loop_test(tc, test_matmul_tensor_cores, 0, 2);
    tcase_add_loop_test(tc, test_dropout_steps, 0, 8);
    tcase_add_test(tc, test_dropout_eval_and_sizes);
    tcase_add_loop_test(tc, test_optimizers, 0, NOPT * 2);
    tcase_add_test(tc, test_fill);
    tcase_add_loop_test(tc, test_random_graphs, 0, 12);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lt_gpu_run(suite);
}
