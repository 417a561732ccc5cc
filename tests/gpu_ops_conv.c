/* conv2d and its gradient ops on a GPU: each kernel against the CPU's on random shapes (strides
 * 1-3, padding 0-2, dilations 1-2, groups 1 and 2, batches 1-3) in f32 and f64, on cuDNN and on
 * the im2col path (no cuDNN handle), in deterministic mode twice over differently filled memory
 * for the same bits, and with TF32 allowed; ResNet's problems, which must run on cuDNN's graph
 * API; and a small CNN trained on cuda:0 with a dynamic batch fed at sizes below its bound
 * (problems the plan's workspace query did not see, replayed from a CUDA graph) against cpu:0.
 * Skipped (77) without CUDA or a GPU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness_gpu.h"

#include <loom/program.h>

static lt_gpu *gpu;

typedef struct geom {
    int64_t n, c, h, w, k, r, s;
    loom_conv2d_opts o;
} geom;

static uint64_t rng_state;
static int64_t rnd(int64_t lo, int64_t hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (int64_t)((rng_state >> 33) % (uint64_t)(hi - lo + 1));
}

/* A random geometry whose dilated kernel fits the padded input. */
static geom random_geom(void)
{
    for (;;) {
        geom g = {.n = rnd(1, 3), .r = rnd(1, 3), .s = rnd(1, 3), .h = rnd(1, 8), .w = rnd(1, 8)};
        g.o.groups = (int)rnd(1, 2);
        g.c = g.o.groups * rnd(1, 3);
        g.k = g.o.groups * rnd(1, 3);
        for (int i = 0; i < 2; i++) {
            g.o.stride[i] = (int)rnd(1, 3);
            g.o.pad[i] = (int)rnd(0, 2);
            g.o.dilation[i] = (int)rnd(1, 2);
        }
        if (g.o.dilation[0] * (g.r - 1) + 1 <= g.h + 2 * g.o.pad[0] && g.o.dilation[1] * (g.s - 1) + 1 <= g.w + 2 * g.o.pad[1])
            return g;
    }
}

static int is_conv(loom_op op) { return op == LOOM_OP_CONV2D || op == LOOM_OP_CONV2D_GRAD_INPUT || op == LOOM_OP_CONV2D_GRAD_WEIGHT; }

/* Every convolution kernel p ran: two deterministic runs over output and workspace memory filled
 * with different bytes, the same bits. Returns how many. */
static int check_bits(loom_program *p)
{
    int checked = 0;
    for (int id = 0; id < p->n; id++) {
        const loom_tensor *t = p->g->t[id];
        loom__value *src[LOOM__MAX_SRC];
        if (!is_conv(t->op) || p->dead[id] || !p->ready[id] || !lt_gpu_sources(p, t, src))
            continue;
        size_t n1, n2;
        void *a = lt_gpu_run_filled(gpu, t, &p->val[id], src, 0x00, &n1);
        void *b = lt_gpu_run_filled(gpu, t, &p->val[id], src, 0xff, &n2);
        ck_assert(n1 == n2);
        ck_assert_msg(!memcmp(a, b, n1), "%s '%s': two deterministic runs differ", loom__op_def(t->op)->name, t->name);
        free(a);
        free(b);
        checked++;
    }
    return checked;
}

/* Every convolution p ran (conv2d and both gradients: 3) chose cuDNN's graph API under the GPU's
 * present modes, where the build has cuDNN and the device a handle; else nothing to check. */
static void assert_engines(loom_program *p)
{
    const loom__cuda_kctx kc = lt_gpu_kctx(gpu);
    int convs = 0, cudnn = 0;
    for (int id = 0; id < p->n; id++) {
        const loom_tensor *t = p->g->t[id];
        if (!is_conv(t->op) || p->dead[id])
            continue;
        const int path = loom__cuda_conv_path(t, &kc, &cudnn);
        ck_assert_msg(!cudnn || !kc.dnn || path == LOOM__CONV_PATH_ENGINE,
                      "%s '%s' (%s, matmul %d, deterministic %d): path %d, not cuDNN's graph API (%d); LOOM_TRACE=1 "
                      "prints each choice",
                      loom__op_def(t->op)->name, t->name, loom_dtype_name(t->dtype), kc.matmul, kc.deterministic, path,
                      LOOM__CONV_PATH_ENGINE);
        convs++;
    }
    ck_assert_int_eq(convs, 3);
}

/* x, w (and b) parameters of g in dt, y = conv2d, loss sum(y * y): one GRAD run on the reference
 * executor, then every op of it on the GPU against the CPU, on cuDNN and without it, and the
 * convolutions' bits in deterministic mode. With engines, every convolution must have run on
 * cuDNN's graph API (see assert_engines), TF32 and deterministic ones too. */
static void check_geom_paths(const geom *g, loom_dtype dt, int bias, int index, double tol, int engines)
{
    lt_case *c = lt_case_new();
    loom_graph *gr = lt_graph(c);
    loom_tensor *x = lt_gpu_param(c, "x", dt, loom_shape(g->n, g->c, g->h, g->w));
    loom_tensor *w = lt_gpu_param(c, "w", dt, loom_shape(g->k, g->c / g->o.groups, g->r, g->s));
    loom_tensor *b = bias ? lt_gpu_param(c, "b", dt, loom_shape(g->k)) : NULL;
    loom_tensor *y = loom_conv2d(gr, x, w, b, &g->o);
    ck_assert_msg(loom_graph_status(gr) == LOOM_OK, "geometry %d: %s", index, loom_graph_error(gr));
    loom_program *p = lt_compile_reference(c, lt_gpu_sq_loss(gr, y), NULL);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_GRAD) == LOOM_OK, "%s", loom_program_error(p));
    for (int dnn = 1; dnn >= 0; dnn--) {
        lt_gpu_set_dnn(gpu, dnn);
        lt_gpu_check_program(gpu, p, tol);
        if (engines && dnn)
            assert_engines(p);
        lt_gpu_set_modes(gpu, 1, 0);
        ck_assert_int_ge(check_bits(p), 2);
        if (engines && dnn)
            assert_engines(p);
        lt_gpu_set_modes(gpu, 0, 0);
    }
    lt_gpu_set_dnn(gpu, 1);
    if (dt == LOOM_F32 && (tol == lt_gpu_tol(dt) || engines)) { /* TF32 products: 10-bit mantissas (the small
                                                                   shapes: long sums of TF32 products drift further) */
        lt_gpu_set_modes(gpu, 0, LOOM_MATMUL_TF32);
        lt_gpu_check_program(gpu, p, 2e-2);
        if (engines)
            assert_engines(p);
        lt_gpu_set_modes(gpu, 0, 0);
    }
    lt_case_free(c);
}

static void check_geom(const geom *g, loom_dtype dt, int bias, int index, double tol)
{
    check_geom_paths(g, dt, bias, index, tol, 0);
}

START_TEST(test_random_shapes_on_gpu)
{
    const loom_dtype dt = _i ? LOOM_F64 : LOOM_F32;
    rng_state = 777 + (uint64_t)_i;
    for (int k = 0; k < 24; k++) {
        const geom g = random_geom();
        check_geom(&g, dt, k % 2, k, lt_gpu_tol(dt));
    }
}
END_TEST

/* check_geom_paths on each of n geometries, with and without a bias, engines as it says. A weight
 * gradient of these sums 144 products of sums of 72 in f32, in another order than the CPU: its
 * elements that cancel to under 1 differ by 4e-5 on the legacy API's algorithms and by 1.01e-4 on
 * the graph API's engines (seen on an H100: 0.792099 against 0.791998, on FMA math); hence 30
 * times the tolerance. */
static void check_larger(const geom *gs, size_t n, loom_dtype dt, int engines)
{
    for (size_t i = 0; i < n; i++)
        check_geom_paths(&gs[i], dt, (int)(i % 2), (int)i, 30 * lt_gpu_tol(dt), engines);
}

/* A 1x1 kernel, a kernel as large as the padded input, many channels in groups, a long batch. */
START_TEST(test_larger_shapes_on_gpu)
{
    const loom_dtype dt = _i ? LOOM_F64 : LOOM_F32;
    static const geom gs[] = {
        {3, 4, 5, 6, 5, 1, 1, {{1, 1}, {0, 0}, {1, 1}, 1}},
        {2, 3, 4, 5, 2, 6, 7, {{1, 1}, {1, 1}, {1, 1}, 1}},
        {4, 32, 12, 12, 16, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 4}},
        {9, 8, 10, 7, 6, 3, 2, {{1, 2}, {2, 0}, {2, 1}, 2}},
    };
    check_larger(gs, sizeof gs / sizeof gs[0], dt, 0);
}
END_TEST

/* ResNet's problems in f32 run on cuDNN's graph API, not on its legacy API or im2col (which would
 * take them silently): a 3x3 convolution with padding 1, one with stride 2, a 1x1 one with stride 2
 * (the shortcut), and a grouped one; forward, input and weight gradients, on FMA math, TF32 and in
 * deterministic mode. Checked against the CPU as above. */
START_TEST(test_graph_api_on_gpu)
{
    static const geom gs[] = {
        {4, 16, 8, 8, 16, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 1}},
        {4, 16, 8, 8, 32, 3, 3, {{2, 2}, {1, 1}, {1, 1}, 1}},
        {4, 16, 8, 8, 32, 1, 1, {{2, 2}, {0, 0}, {1, 1}, 1}},
        {4, 16, 8, 8, 16, 3, 3, {{1, 1}, {1, 1}, {1, 1}, 4}},
    };
    check_larger(gs, sizeof gs / sizeof gs[0], LOOM_F32, 1);
}
END_TEST

/* ---- a CNN on cuda:0 against cpu:0 ------------------------------------------------------------------ */

enum { STEPS = 6, NB = 6 };

typedef struct cnn_result {
    double loss[STEPS];
    double *params; /* w1, b1, w2 */
    int64_t nparams;
} cnn_result;

/* x [N, 3, 9, 8] (N dynamic, bound 6) -> conv 3x3 pad 1 + b -> relu -> conv 3x3 stride 2 pad 1
 * groups 2 -> mean of squares; SGD, one step per batch of the sizes below. */
static void train_cnn(const char *placement, loom_executor ex, cnn_result *r)
{
    static const int64_t sizes[STEPS] = {6, 2, 5, 2, 2, 3};
    loom_graph *g = loom_graph_new();
    loom_error e = {0};
    loom_placement *pl = loom_placement_parse(placement, &e);
    ck_assert_msg(pl != NULL, "%s", e.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_dim N = loom_dim_dynamic(g, "N", NB);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 3, 9, 8));
    loom_tensor *w1 = loom_param(g, "w1", LOOM_F32, loom_shape(8, 3, 3, 3), loom_init_normal(0, 0.3, 1));
    loom_tensor *b1 = loom_param(g, "b1", LOOM_F32, loom_shape(8), loom_init_normal(0, 0.1, 2));
    loom_tensor *w2 = loom_param(g, "w2", LOOM_F32, loom_shape(4, 4, 3, 3), loom_init_normal(0, 0.3, 3));
    loom_conv2d_opts o1 = LOOM_CONV2D_OPTS_INIT, o2 = {.stride = {2, 2}, .pad = {1, 1}, .dilation = {1, 1}, .groups = 2};
    o1.pad[0] = o1.pad[1] = 1;
    loom_tensor *h = loom_relu(g, loom_conv2d(g, x, w1, b1, &o1));
    loom_tensor *y = loom_conv2d(g, h, w2, NULL, &o2);
    loom_tensor *loss = loom_mean(g, loom_mul(g, y, y), LOOM_ALL_AXES, 0);
    loom_program *p;
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_sgd(0.05);
    opts.executor = ex;
    ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
    float xv[NB * 3 * 9 * 8];
    double tmp[NB * 3 * 9 * 8];
    for (int s = 0; s < STEPS; s++) {
        const int64_t n = sizes[s] * 3 * 9 * 8;
        lt_fill_normal(tmp, n, 100 + (uint64_t)s);
        for (int64_t i = 0; i < n; i++)
            xv[i] = (float)tmp[i];
        loom_array a = {.dtype = LOOM_F32, .ndim = 4, .shape = {sizes[s], 3, 9, 8}, .data = xv};
        ck_assert_msg(loom_program_feed(p, x, &a) == LOOM_OK, "%s", loom_program_error(p));
        ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s on %s: %s", placement, "step", loom_program_error(p));
        loom_array l;
        ck_assert_int_eq(loom_program_fetch(p, loss, &l), LOOM_OK);
        r->loss[s] = ((float *)l.data)[0];
    }
    loom_tensor *params[3] = {w1, b1, w2};
    r->nparams = 8 * 27 + 8 + 4 * 36;
    r->params = malloc((size_t)r->nparams * sizeof *r->params);
    ck_assert_ptr_nonnull(r->params);
    int64_t at = 0;
    for (int k = 0; k < 3; k++) {
        loom_array v;
        ck_assert_int_eq(loom_program_fetch(p, params[k], &v), LOOM_OK);
        for (int64_t i = 0; i < loom_array_numel(&v); i++)
            r->params[at++] = ((float *)v.data)[i];
    }
    ck_assert_int_eq(at, r->nparams);
    loom_program_free(p);
    loom_graph_free(g);
}

START_TEST(test_cnn_on_gpu)
{
    cnn_result cpu, dev, again;
    train_cnn("cpu:0", LOOM_EXEC_REFERENCE, &cpu);
    train_cnn("cuda:0", LOOM_EXEC_ACTORS, &dev);
    lt_assert_close(dev.loss, cpu.loss, STEPS, 1e-4, "losses on cuda:0");
    lt_assert_close(dev.params, cpu.params, cpu.nparams, 1e-4, "parameters on cuda:0");
    /* LOOM_DETERMINISTIC=1: the same bits twice */
    setenv("LOOM_DETERMINISTIC", "1", 1);
    free(dev.params);
    train_cnn("cuda:0", LOOM_EXEC_ACTORS, &dev);
    train_cnn("cuda:0", LOOM_EXEC_ACTORS, &again);
    unsetenv("LOOM_DETERMINISTIC");
    ck_assert_msg(!memcmp(dev.loss, again.loss, sizeof dev.loss) &&
                      !memcmp(dev.params, again.params, (size_t)dev.nparams * sizeof *dev.params),
                  "two deterministic runs on cuda:0 differ");
    lt_assert_close(dev.params, cpu.params, cpu.nparams, 1e-4, "parameters on cuda:0, deterministic");
    free(cpu.params);
    free(dev.params);
    free(again.params);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("gpu_ops_conv");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    lt_gpu_add_fixture(tc, &gpu);
    tcase_add_loop_test(tc, test_random_shapes_on_gpu, 0, 2);
    tcase_add_loop_test(tc, test_larger_shapes_on_gpu, 0, 2);
    tcase_add_test(tc, test_graph_api_on_gpu);
    tcase_add_test(tc, test_cnn_on_gpu);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lt_gpu_run(suite);
}
