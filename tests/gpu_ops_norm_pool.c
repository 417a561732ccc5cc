/* Pooling, batch norm (alone and fused with a ReLU and a residual add) and layer norm on a GPU: each
 * kernel against the CPU's on shapes that take every path of the per-channel sums (long spatial
 * runs, rows across many channels, several chunks a channel) and of the coefficients (in the
 * blocks, or by a kernel for more channels than a block's threads) in f32 and f64, a training
 * step's running-statistics update included, and in deterministic mode twice over differently filled memory for the same bits; and a small CNN
 * (conv, batch norm, relu, max pool, global average pool, layer norm, linear) trained on cuda:0
 * with a dynamic batch fed below its bound, against cpu:0: losses, parameters, running statistics
 * and an evaluation forward. Skipped (77) without CUDA or a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_gpu.h"

#include <loom/nn.h>
#include <loom/program.h>

static lt_gpu *gpu;

static int is_ours(loom_op op)
{
    switch (op) {
    case LOOM_OP_MAX_POOL2D:
    case LOOM_OP_MAX_POOL2D_GRAD:
    case LOOM_OP_AVG_POOL2D:
    case LOOM_OP_AVG_POOL2D_GRAD:
    case LOOM_OP_BN_STATS:
    case LOOM_OP_BATCH_NORM:
    case LOOM_OP_BN_RELU:
    case LOOM_OP_BATCH_NORM_GRAD:
    case LOOM_OP_BN_GRAD_SUMS:
    case LOOM_OP_LAYER_NORM:
    case LOOM_OP_LAYER_NORM_GRAD:
    case LOOM_OP_LN_GRAD_SUMS: return 1;
    default: return 0;
    }
}

typedef enum kind { BN, BN_RELU, BN_ADD_RELU, LN, MAX_POOL, AVG_POOL } kind;

typedef struct shape_case {
    kind k;
    int ndim;
    int64_t d[4];
    int arg; /* layer norm: axes; pooling: 1 for kernel 3, stride 2, pad 1 (windows overlap), 2 for kernel 2,
              * stride 3, pad 1 (gaps between windows), 0 for the defaults (kernel 2, stride 2) */
} shape_case;

/* x a parameter in dt, y the op, loss sum(y * y): one Adam step and a GRAD run on the reference
 * executor, then every op (the running statistics' update too) on the GPU against the CPU, and our
 * kernels' bits in deterministic mode. */
static void check_shape(const shape_case *sc, loom_dtype dt)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_shape s = {.ndim = sc->ndim};
    for (int i = 0; i < sc->ndim; i++)
        s.d[i] = sc->d[i];
    loom_tensor *x = lt_gpu_param(c, "x", dt, s), *y = NULL;
    const loom_pool2d_opts po = sc->arg == 1   ? (loom_pool2d_opts){{3, 3}, {2, 2}, {1, 1}}
                                : sc->arg == 2 ? (loom_pool2d_opts){{2, 2}, {3, 3}, {1, 1}}
                                               : LOOM_POOL2D_OPTS_INIT;
    switch (sc->k) {
    case BN: y = loom_batch_norm(g, "bn", x, 0.1, 1e-5); break;
    case BN_RELU: y = loom_batch_norm_relu(g, "bn", x, NULL, 0.1, 1e-5); break;
    case BN_ADD_RELU: y = loom_batch_norm_relu(g, "bn", x, lt_gpu_param(c, "r", dt, s), 0.1, 1e-5); break;
    case LN: y = loom_layer_norm(g, "ln", x, sc->arg, 1e-5); break;
    case MAX_POOL: y = loom_max_pool2d(g, x, &po); break;
    case AVG_POOL: y = loom_avg_pool2d(g, x, &po); break;
    }
    ck_assert_msg(loom_graph_status(g) == LOOM_OK, "%s", loom_graph_error(g));
    lt_gpu_check_case(gpu, c, lt_gpu_sq_loss(g, y), lt_gpu_adam(), 1, lt_gpu_tol(dt));
    ck_assert_int_ge(lt_gpu_check_bits(gpu, lt_case_program(c), is_ours), 2);
    lt_case_free(c);
}

START_TEST(test_shapes_on_gpu)
{
    const loom_dtype dt = _i ? LOOM_F64 : LOOM_F32;
    static const shape_case cs[] = {
        {BN, 4, {16, 8, 16, 16}, 0}, /* runs of 256: a block per channel and chunk, 4 chunks */
        {BN, 2, {512, 70}, 0},       /* [N, C]: blocks across 32 channels, 8 chunks */
        {BN, 3, {3, 5, 7}, 0},
        {BN, 4, {2, 3, 1, 1}, 0},
        {BN, 2, {6, 300}, 0}, /* more channels than a block's threads: coefficients by a kernel of their own */
        {BN_RELU, 4, {16, 8, 16, 16}, 0},
        {BN_RELU, 2, {512, 70}, 0},
        {BN_RELU, 2, {6, 300}, 0},
        {BN_ADD_RELU, 4, {16, 8, 16, 16}, 0},
        {BN_ADD_RELU, 3, {3, 5, 7}, 0},
        {BN_ADD_RELU, 2, {6, 300}, 0},
        {LN, 2, {300, 70}, 1}, /* the weight's sums over 300 rows in chunks */
        {LN, 3, {4, 6, 40}, 2},
        {LN, 4, {2, 3, 5, 7}, 3},
        {MAX_POOL, 4, {4, 8, 17, 15}, 1},
        {MAX_POOL, 4, {3, 5, 8, 6}, 0},
        {AVG_POOL, 4, {4, 8, 17, 15}, 1},
        {AVG_POOL, 4, {3, 5, 8, 6}, 0},
        {MAX_POOL, 4, {2, 3, 7, 9}, 0}, /* a row and a column past the last window */
        {AVG_POOL, 4, {2, 3, 7, 9}, 0},
        {MAX_POOL, 4, {2, 3, 10, 8}, 2}, /* gaps between windows */
        {AVG_POOL, 4, {2, 3, 10, 8}, 2},
    };
    for (size_t k = 0; k < sizeof cs / sizeof cs[0]; k++)
        check_shape(&cs[k], dt);
}
END_TEST

/* ---- a CNN on cuda:0 against cpu:0 ------------------------------------------------------------------ */

enum { STEPS = 4, NB = 8, XN = NB * 3 * 8 * 8 };

typedef struct cnn_result {
    double loss[STEPS];
    double *params; /* every parameter, in creation order, running statistics included */
    int64_t nparams;
    double eval[NB * 5];
    double eval2[NB * 5]; /* the same evaluation run again at once, in the same program */
} cnn_result;

/* x [N, 3, 8, 8] (N dynamic, bound 8) -> conv 3x3 pad 1 -> batch norm -> relu -> max pool 2 ->
 * global average pool [N, 6] -> layer norm -> linear [N, 5] -> mean of squares; SGD with
 * momentum, one step per batch of the sizes below; then an evaluation forward of 5 samples. */
static void train_cnn(const char *placement, loom_executor ex, cnn_result *r)
{
    static const int64_t sizes[STEPS] = {8, 3, 5, 2};
    loom_graph *g = loom_graph_new();
    loom_error e = {0};
    loom_placement *pl = loom_placement_parse(placement, &e);
    ck_assert_msg(pl != NULL, "%s", e.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_dim N = loom_dim_dynamic(g, "N", NB);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 3, 8, 8));
    loom_tensor *w1 = loom_param(g, "w1", LOOM_F32, loom_shape(6, 3, 3, 3), loom_init_normal(0, 0.3, 1));
    loom_conv2d_opts o1 = LOOM_CONV2D_OPTS_INIT;
    o1.pad[0] = o1.pad[1] = 1;
    loom_tensor *h = loom_relu(g, loom_batch_norm(g, "bn", loom_conv2d(g, x, w1, NULL, &o1), 0.1, 1e-5));
    h = loom_global_avg_pool(g, loom_max_pool2d(g, h, NULL));
    loom_tensor *y = loom_nn_linear(g, "fc", loom_layer_norm(g, "ln", h, 1, 1e-5), 5, 1);
    loom_tensor *loss = loom_mean(g, loom_mul(g, y, y), LOOM_ALL_AXES, 0);
    loom_program *p;
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_sgd(0.05);
    opts.optimizer.momentum = 0.9;
    opts.executor = ex;
    ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_int_eq(loom_program_keep(p, y), LOOM_OK);
    float xv[XN];
    double tmp[XN];
    for (int s = 0; s <= STEPS + 1; s++) {
        const int64_t n = s < STEPS ? sizes[s] : 5;
        const int same = s == STEPS + 1; /* the evaluation again: the same input, so fed as it is */
        lt_fill_normal(tmp, n * 3 * 8 * 8, 100 + (uint64_t)(same ? STEPS : s));
        for (int64_t i = 0; i < n * 3 * 8 * 8; i++)
            xv[i] = (float)(1 + 2 * tmp[i]);
        loom_array a = {.dtype = LOOM_F32, .ndim = 4, .shape = {n, 3, 8, 8}, .data = xv};
        ck_assert_msg(loom_program_feed(p, x, &a) == LOOM_OK, "%s", loom_program_error(p));
        ck_assert_msg(loom_program_run(p, s < STEPS ? LOOM_RUN_STEP : LOOM_RUN_EVAL) == LOOM_OK, "%s: %s", placement,
                      loom_program_error(p));
        loom_array l;
        ck_assert_int_eq(loom_program_fetch(p, s < STEPS ? loss : y, &l), LOOM_OK);
        if (s < STEPS)
            r->loss[s] = ((float *)l.data)[0];
        else
            for (int i = 0; i < 25; i++)
                (same ? r->eval2 : r->eval)[i] = ((float *)l.data)[i];
    }
    r->nparams = 0;
    r->params = NULL;
    for (int k = 0; loom_graph_param(g, k); k++) {
        loom_array v;
        ck_assert_int_eq(loom_program_fetch(p, loom_graph_param(g, k), &v), LOOM_OK);
        r->params = realloc(r->params, (size_t)(r->nparams + loom_array_numel(&v)) * sizeof *r->params);
        ck_assert_ptr_nonnull(r->params);
        for (int64_t i = 0; i < loom_array_numel(&v); i++)
            r->params[r->nparams++] = ((float *)v.data)[i];
    }
    loom_program_free(p);
    loom_graph_free(g);
}

/* The first index where a and b differ in their bits, or -1. */
static int64_t first_difference(const double *a, const double *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof a[i]))
            return i;
    return -1;
}

START_TEST(test_cnn_on_gpu)
{
    cnn_result cpu, dev, again;
    train_cnn("cpu:0", LOOM_EXEC_REFERENCE, &cpu);
    train_cnn("cuda:0", LOOM_EXEC_ACTORS, &dev);
    ck_assert_int_eq(dev.nparams, cpu.nparams);
    lt_assert_close(dev.loss, cpu.loss, STEPS, 1e-4, "losses on cuda:0");
    lt_assert_close(dev.params, cpu.params, cpu.nparams, 1e-4, "parameters and running statistics on cuda:0");
    lt_assert_close(dev.eval, cpu.eval, 25, 1e-4, "an evaluation forward on cuda:0");
    lt_assert_close(dev.eval2, cpu.eval, 25, 1e-4, "the evaluation forward again on cuda:0");
    /* LOOM_DETERMINISTIC=1: the same bits twice */
    setenv("LOOM_DETERMINISTIC", "1", 1);
    free(dev.params);
    train_cnn("cuda:0", LOOM_EXEC_ACTORS, &dev);
    train_cnn("cuda:0", LOOM_EXEC_ACTORS, &again);
    unsetenv("LOOM_DETERMINISTIC");
    const int64_t at = first_difference(dev.params, again.params, dev.nparams);
    const int64_t le = first_difference(dev.loss, again.loss, STEPS), ee = first_difference(dev.eval, again.eval, 25);
    const int64_t e1 = first_difference(dev.eval, dev.eval2, 25);
    ck_assert_msg(le < 0 && at < 0 && ee < 0 && e1 < 0,
                  "two deterministic runs on cuda:0 differ: losses %s (first at step %lld), parameters %s (first at %lld), "
                  "evaluation %s (first at %lld: %.9g and %.9g); an evaluation run twice in one program %s (first at %lld: "
                  "%.9g and %.9g)",
                  le < 0 ? "agree" : "differ", (long long)le, at < 0 ? "agree" : "differ", (long long)at,
                  ee < 0 ? "agrees" : "differs", (long long)ee, ee < 0 ? 0 : dev.eval[ee], ee < 0 ? 0 : again.eval[ee],
                  e1 < 0 ? "agrees" : "differs", (long long)e1, e1 < 0 ? 0 : dev.eval[e1], e1 < 0 ? 0 : dev.eval2[e1]);
    free(cpu.params);
    free(dev.params);
    free(again.params);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gpu_ops_norm_pool");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    lt_gpu_add_fixture(tc, &gpu);
    tcase_add_loop_test(tc, test_shapes_on_gpu, 0, 2);
    tcase_add_test(tc, test_cnn_on_gpu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lt_gpu_run(suite);
}
