/* The CUDA kernels of the dense op families (binary, unary, matmul, dropout, softmax, optimizer
 * updates and fill), each checked against its CPU kernel on the values of a reference run: every
 * forward and backward op and every optimizer update of small training graphs, with broadcasting,
 * size-1 and empty dims, both float dtypes, rows short and long, masks, and the optimizers' every
 * setting; dropout masks must match bit for bit. Device-side label errors are checked through the
 * error record. Skipped (77) in a build without CUDA or on a machine without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_gpu.h"

#ifdef LOOM_HAVE_CUDA
#include "runtime/devices/cuda/cuda_rt.h"

/* The device, opened by the suite's fixture (see suite). */
static lt_gpu *gpu;

/* A static float input of N(0, 1) values in dt. */
static loom_tensor *input_normal(lt_case *c, const char *name, loom_dtype dt, loom_shape s, const int64_t *now,
                                 uint64_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++)
        n *= now ? now[i] : s.d[i];
    double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
    ck_assert(d && f);
    lt_fill_normal(d, n, seed);
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    loom_tensor *t = now ? lt_input(c, name, dt, s, now, dt == LOOM_F64 ? (void *)d : (void *)f)
                         : lt_input_static(c, name, dt, s, dt == LOOM_F64 ? (void *)d : (void *)f);
    free(d);
    free(f);
    return t;
}

/* Compiles loss with opt, takes `steps` optimizer steps, runs one GRAD step and checks every op
 * it ran, and every update, on the GPU. */
static double check_case(lt_case *c, loom_tensor *loss, loom_optimizer opt, int steps, double tol)
{
    loom_program *p = lt_compile_reference(c, loss, &opt);
    for (int s = 0; s < steps; s++) {
        loom_status st = loom_program_run(p, LOOM_RUN_STEP);
        ck_assert_msg(st == LOOM_OK, "step %d: %s", s, loom_program_error(p));
    }
    loom_status st = loom_program_run(p, LOOM_RUN_GRAD);
    ck_assert_msg(st == LOOM_OK, "grad run: %s", loom_program_error(p));
    return lt_gpu_check_program(gpu, p, tol);
}

static loom_optimizer adam(void) { return loom_adam(0.01); }

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
    check_case(c, lt_gpu_sq_loss(g, apply_binary(g, op, a, b)), adam(), 0, lt_gpu_tol(dt));
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
    loom_tensor *x = input_normal(c, "x", dt, loom_shape(N, 3), (int64_t[]){nnow, 3}, 1);
    loom_tensor *x1 = input_normal(c, "x1", dt, loom_shape(N, 1), (int64_t[]){nnow, 1}, 2);
    loom_tensor *w = lt_gpu_param_uniform(c, "w", dt, loom_shape(3), 0.5, 2.0);
    loom_tensor *u = lt_gpu_param_uniform(c, "u", dt, loom_shape(1, 3), 0.5, 2.0);
    loom_tensor *y = loom_add(g, apply_binary(g, op, x, w), apply_binary(g, op, x1, u));
    check_case(c, loom_add(g, lt_gpu_sq_loss(g, y), lt_gpu_sq_loss(g, w)), adam(), 0, lt_gpu_tol(dt));
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
    check_case(c, lt_gpu_sq_loss(g, y), adam(), 0, lt_gpu_tol(dt));
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
    check_case(c, lt_gpu_sq_loss(g, y), adam(), 0, lt_gpu_tol(dt));
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
        check_case(c, loss, adam(), 0, lt_gpu_tol(dt));
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
        check_case(c, lt_gpu_sq_loss(g, y), adam(), 0, lt_gpu_tol(dt));
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
    check_case(c, loom_add(g, lt_gpu_sq_loss(g, y), loom_add(g, lt_gpu_sq_loss(g, a), lt_gpu_sq_loss(g, b))), adam(), 0,
               lt_gpu_tol(dt));
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
        loom_tensor *x = input_normal(c, "x", dt, loom_shape(N, 6), (int64_t[]){nnow, 6}, 5);
        loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(6, 4));
        loom_tensor *b = lt_gpu_param(c, "b", dt, loom_shape(4));
        loom_tensor *y = loom_tanh(g, loom_bias_add(g, loom_matmul(g, x, w), b));
        check_case(c, loom_add(g, lt_gpu_sq_loss(g, y), lt_gpu_sq_loss(g, w)), adam(), 0, lt_gpu_tol(dt));
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
    check_case(c, loom_sum(g, loom_matmul(g, a, b), LOOM_ALL_AXES, 0), adam(), 0, modes[_i].tol);
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
        check_case(c, lt_gpu_sq_loss(g, y2), adam(), steps[k], lt_gpu_tol(dt));
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
            const loom_optimizer o = adam();
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
        loom_tensor *x = input_normal(c, "x", dt, loom_shape(N, 3), (int64_t[]){0, 3}, 3);
        loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(3));
        loom_tensor *y = loom_dropout(g, loom_mul(g, x, w), 0.5);
        check_case(c, loom_add(g, lt_gpu_sq_loss(g, y), lt_gpu_sq_loss(g, w)), adam(), 1, lt_gpu_tol(dt));
        lt_case_free(c);
    }
}
END_TEST

/* ---- captured steps ------------------------------------------------------------------------------ */

/* matmul, dropout_mask, dropout and softmax_cross_entropy launched inside a stream capture, as the
 * GPU executor runs a step, then replayed at other steps: no kernel may synchronise or allocate
 * while captured, and each replay's mask is drawn from the step in device memory (step_dev), not
 * from the step the capture froze. Each replay is checked against the CPU kernels at its step. */
START_TEST(test_graph_capture_replay)
{
    enum { R = 33, K = 5, C = 7, NOPS = 4 };
    char msg[256];
    loom__cuda_dev dev;
    ck_assert_msg(loom__cuda_dev_open(0, &dev, msg, sizeof msg) == LOOM_OK, "%s", msg);
    const size_t blas_bytes = (size_t)32 << 20;
    void *blas_ws = lt_gpu_alloc(dev.index, blas_bytes, NULL, -1);
    ck_assert_msg(loom__cuda_dev_blas_workspace(&dev, blas_ws, blas_bytes, msg, sizeof msg) == LOOM_OK, "%s", msg);

    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, 77);
    loom_tensor *at = loom_input(g, "a", LOOM_F32, loom_shape(R, K));
    loom_tensor *wt = loom_input(g, "w", LOOM_F32, loom_shape(K, C));
    loom_tensor *lt = loom_input(g, "l", LOOM_I32, loom_shape(R));
    loom_tensor *zt = loom_matmul(g, at, wt);
    loom_tensor *yt = loom_dropout(g, zt, 0.5);
    loom_tensor *losst = loom_softmax_cross_entropy(g, yt, lt, NULL);
    ck_assert_msg(loom_graph_status(g) == LOOM_OK, "%s", loom_graph_error(g));
    const loom_tensor *ops[NOPS] = {zt, yt->src[1], yt, losst};

    /* host values (the CPU side) and device copies, the op results in the same order */
    double tmp[R * K];
    float ha[R * K], hw[K * C], hz[R * C], hy[R * C], hloss;
    uint8_t hm[R * C];
    int32_t hl[R];
    lt_fill_normal(tmp, R * K, 1);
    for (int i = 0; i < R * K; i++)
        ha[i] = (float)tmp[i];
    lt_fill_normal(tmp, K * C, 2);
    for (int i = 0; i < K * C; i++)
        hw[i] = (float)tmp[i];
    lt_fill_int(hl, R, C, 3);
    loom__value h[7] = {
        {.dtype = LOOM_F32, .ndim = 2, .shape = {R, K}, .data = ha}, {.dtype = LOOM_F32, .ndim = 2, .shape = {K, C}, .data = hw},
        {.dtype = LOOM_I32, .ndim = 1, .shape = {R}, .data = hl},    {.dtype = LOOM_F32, .ndim = 2, .shape = {R, C}, .data = hz},
        {.dtype = LOOM_U8, .ndim = 2, .shape = {R, C}, .data = hm},  {.dtype = LOOM_F32, .ndim = 2, .shape = {R, C}, .data = hy},
        {.dtype = LOOM_F32, .ndim = 0, .data = &hloss},
    };
    loom__value d[7];
    for (int i = 0; i < 7; i++) {
        d[i] = h[i];
        d[i].data = lt_gpu_alloc(dev.index, (size_t)loom__numel(&h[i]) * loom_dtype_size(h[i].dtype),
                                 i < 3 ? h[i].data : NULL, -1);
    }
    /* sources and output of each op, as indices into h and d */
    static const int srcs[NOPS][3] = {{0, 1, -1}, {3, -1, -1}, {3, 4, -1}, {5, 2, -1}}, outs[NOPS] = {3, 4, 5, 6};
    int64_t nnz[LOOM__MAX_SRC] = {0};
    const loom__cuda_op *ce = loom__cuda_op_get(LOOM_OP_SOFTMAX_CE);
    ck_assert_ptr_nonnull(ce->run);
    const size_t ws = ce->workspace ? ce->workspace(losst, nnz) : 0;
    void *dws = ws ? lt_gpu_alloc(dev.index, ws, NULL, -1) : NULL;
    int64_t *dstep = lt_gpu_alloc(dev.index, sizeof(int64_t), NULL, -1);

    /* every kernel once, then captured; both with a kctx step (9) that is not the replayed one */
    void *exec = NULL;
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_msg(loom__cuda_set_i64(dstep, 0, dev.stream[LOOM__CUDA_COMPUTE], msg, sizeof msg) == LOOM_OK, "%s", msg);
        if (pass)
            ck_assert_msg(loom__cuda_capture_begin(dev.stream[LOOM__CUDA_COMPUTE], msg, sizeof msg) == LOOM_OK, "%s", msg);
        for (int k = 0; k < NOPS; k++) {
            const loom_tensor *t = ops[k];
            loom__cuda_kctx cc = {.device = dev.index, .stream = dev.stream[LOOM__CUDA_COMPUTE], .blas = dev.blas,
                                  .sparse = dev.sparse, .workspace = dws, .workspace_bytes = ws, .err = dev.err,
                                  .tag = t->id, .step_dev = dstep};
            loom__kctx kc = {.step = 9, .training = 1, .seed = 77, .msg = msg, .msglen = sizeof msg, .cuda = &cc};
            loom__value *src[LOOM__MAX_SRC];
            for (int i = 0; i < t->n_src; i++)
                src[i] = &d[srcs[k][i]];
            const loom__cuda_op *op = loom__cuda_op_get(t->op);
            ck_assert_ptr_nonnull(op->run);
            loom_status s = op->run(t, &d[outs[k]], src, &kc);
            ck_assert_msg(s == LOOM_OK, "%s: %s", loom__op_def(t->op)->name, msg);
        }
        if (pass)
            ck_assert_msg(loom__cuda_capture_end(dev.stream[LOOM__CUDA_COMPUTE], &exec, msg, sizeof msg) == LOOM_OK, "%s", msg);
        ck_assert_msg(loom__cuda_stream_sync(dev.stream[LOOM__CUDA_COMPUTE], msg, sizeof msg) == LOOM_OK, "%s", msg);
    }
    ck_assert_ptr_nonnull(exec);

    static const int64_t steps[] = {1, 4, 0, 2};
    for (size_t r = 0; r < sizeof steps / sizeof steps[0]; r++) {
        void *st = dev.stream[LOOM__CUDA_COMPUTE];
        ck_assert_msg(loom__cuda_set_i64(dstep, steps[r], st, msg, sizeof msg) == LOOM_OK, "%s", msg);
        ck_assert_msg(loom__cuda_graph_launch(exec, st, msg, sizeof msg) == LOOM_OK, "%s", msg);
        ck_assert_msg(loom__cuda_stream_sync(st, msg, sizeof msg) == LOOM_OK, "%s", msg);
        loom__cuda_err err;
        ck_assert_msg(loom__cuda_copy_sync(&err, dev.err, sizeof err, msg, sizeof msg) == LOOM_OK, "%s", msg);
        ck_assert_int_eq(err.code, 0);
        /* the CPU kernels at this step */
        for (int k = 0; k < NOPS; k++) {
            const loom_tensor *t = ops[k];
            loom__kctx kc = {.step = steps[r], .training = 1, .seed = 77, .msg = msg, .msglen = sizeof msg};
            loom__value *src[LOOM__MAX_SRC];
            for (int i = 0; i < t->n_src; i++)
                src[i] = &h[srcs[k][i]];
            ck_assert_msg(loom__op_def(t->op)->cpu(t, &h[outs[k]], src, &kc) == LOOM_OK, "%s", msg);
        }
        uint8_t gm[R * C];
        float gy[R * C], gloss;
        ck_assert(loom__cuda_copy_sync(gm, d[4].data, sizeof gm, msg, sizeof msg) == LOOM_OK);
        ck_assert(loom__cuda_copy_sync(gy, d[5].data, sizeof gy, msg, sizeof msg) == LOOM_OK);
        ck_assert(loom__cuda_copy_sync(&gloss, d[6].data, sizeof gloss, msg, sizeof msg) == LOOM_OK);
        ck_assert_msg(memcmp(gm, hm, sizeof gm) == 0, "replay at step %lld: the mask differs from the CPU's",
                      (long long)steps[r]);
        for (int i = 0; i < R * C; i++)
            ck_assert_msg(fabs(gy[i] - hy[i]) <= 1e-5 * fmax(1, fabs(hy[i])), "replay at step %lld: y[%d] is %g, not %g",
                          (long long)steps[r], i, gy[i], hy[i]);
        ck_assert_msg(fabs(gloss - hloss) <= 1e-5 * fmax(1, fabs(hloss)), "replay at step %lld: loss %g, not %g",
                      (long long)steps[r], gloss, hloss);
    }
    loom__cuda_graph_free(exec);
    for (int i = 0; i < 7; i++)
        loom__cuda_free(d[i].data);
    loom__cuda_free(dws);
    loom__cuda_free(dstep);
    loom__cuda_dev_close(&dev);
    loom__cuda_free(blas_ws);
    loom_graph_free(g);
}
END_TEST

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
    check_case(c, lt_gpu_sq_loss(g, loom_log_softmax(g, x)), adam(), 0, lt_gpu_tol(dt));
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
        loom_tensor *x = input_normal(c, "x", dt, loom_shape(N, 5), (int64_t[]){nnow, 5}, 41);
        loom_tensor *w = lt_gpu_param_uniform(c, "w", dt, loom_shape(5), 0.5, 2.0);
        loom_tensor *z = loom_bias_add(g, loom_mul(g, x, w), w);
        loom_tensor *ys[] = {loom_relu(g, z),       loom_leaky_relu(g, z, 0.1), loom_elu(g, z, 1.0),
                             loom_sigmoid(g, z),    loom_tanh(g, z),            loom_log_softmax(g, z),
                             loom_dropout(g, z, 0.5), loom_scale(g, loom_div(g, z, loom_add(g, loom_mul(g, w, w), w)), 2.0)};
        loom_tensor *loss = lt_gpu_sq_loss(g, w);
        for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++)
            loss = loom_add(g, loss, lt_gpu_sq_loss(g, ys[i]));
        check_case(c, loss, adam(), 1, lt_gpu_tol(dt));
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
    check_case(c, loom_softmax_cross_entropy(g, z, l, m), adam(), 0, lt_gpu_tol(dt));
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
        loom_tensor *x = input_normal(c, "x", dt, loom_shape(N, 5), (int64_t[]){nnow, 5}, 17);
        loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(5, 7));
        loom_tensor *l = labels_input(c, "l", N, nnow, 7, 19);
        loom_tensor *m = kind == 1 || kind == 3 ? mask_input(c, "m", N, nnow, kind == 3, 23) : NULL;
        loom_tensor *loss = loom_softmax_cross_entropy(g, loom_matmul(g, x, w), l, m);
        check_case(c, loom_add(g, loss, lt_gpu_sq_loss(g, w)), adam(), 0, lt_gpu_tol(dt));
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
        check_case(c, loss, o, steps[k], lt_gpu_tol(dt));
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
    const loom_optimizer o = adam();
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
    tcase_add_test(tc, test_graph_capture_replay);
    tcase_add_loop_test(tc, test_log_softmax, 0, 24);
    tcase_add_test(tc, test_empty_batch);
    tcase_add_loop_test(tc, test_softmax_ce, 0, 48);
    tcase_add_test(tc, test_softmax_ce_dynamic);
    tcase_add_test(tc, test_softmax_ce_bad_label);
    tcase_add_loop_test(tc, test_optimizers, 0, NOPT * 2);
    tcase_add_test(tc, test_fill);
    tcase_add_loop_test(tc, test_random_graphs, 0, 12);
    suite_add_tcase(s, tc);
    return s;
}

#endif

LT_GPU_MAIN(suite)
