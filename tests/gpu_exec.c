/* The actor runtime on a GPU (cuda:0) against one CPU device: the placement-equivalence models
 * (MLP, GCN with and without dropout, random graphs of ops) train to the same losses and
 * parameters, fed once or by a data source; a step replayed from a CUDA graph gives the same bits
 * as its kernels launched one by one; LOOM_DETERMINISTIC=1 repeats bit for bit; a bad index seen
 * only by the device fails the run with a message naming the op; the memory plan is reported;
 * micro-batches are refused. Skipped (exit 77) without a GPU or without CUDA. */
#include "equiv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int same(const lt_result *a, const lt_result *b)
{
    return !memcmp(a->loss, b->loss, sizeof a->loss) && a->nparams == b->nparams &&
           !memcmp(a->params, b->params, (size_t)a->nparams * sizeof *a->params);
}

static void versus_cpu(lt_build_fn build, uint64_t seed, double tol)
{
    lt_result cpu, gpu;
    char what[96];
    lt_train(build, seed, LT_DATA, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_REFERENCE}, &cpu);
    for (int src = 0; src < 2; src++) {
        lt_train(build, seed, LT_DATA, &(lt_train_opts){.placement = "cuda:0", .executor = LOOM_EXEC_ACTORS, .with_source = src},
                 &gpu);
        snprintf(what, sizeof what, "seed %llu on cuda:0%s", (unsigned long long)seed, src ? " with a data source" : "");
        lt_assert_results_close(&gpu, &cpu, tol, what);
    }
}

START_TEST(test_mlp_on_gpu)
{
    for (uint64_t seed = 0; seed < 4; seed++)
        versus_cpu(lt_model_mlp, seed, 1e-5);
}
END_TEST

START_TEST(test_gcn_on_gpu)
{
    for (uint64_t seed = 0; seed < 2; seed++) {
        versus_cpu(lt_model_gcn, seed, 1e-9);
        versus_cpu(lt_model_gcn_dropout, seed, 1e-9);
    }
}
END_TEST

START_TEST(test_gat_on_gpu)
{
    for (uint64_t seed = 0; seed < 2; seed++)
        versus_cpu(lt_model_gat, seed, 1e-9);
}
END_TEST

START_TEST(test_random_graphs_on_gpu)
{
    for (uint64_t seed = 0; seed < 40; seed++)
        versus_cpu(lt_model_random, seed, 1e-5);
}
END_TEST

/* Deterministic kernels: a graph replay and one-by-one launches agree bit for bit, and so do two
 * runs. */
START_TEST(test_graphs_and_determinism)
{
    setenv("LOOM_DETERMINISTIC", "1", 1);
    lt_build_fn models[] = {lt_model_gcn_dropout, lt_model_mlp, lt_model_random};
    for (size_t k = 0; k < sizeof models / sizeof models[0]; k++)
        for (uint64_t seed = 0; seed < 3; seed++) {
            lt_result graph, again, eager;
            lt_train_opts o = {.placement = "cuda:0", .executor = LOOM_EXEC_ACTORS};
            unsetenv("LOOM_CUDA_GRAPHS");
            lt_train(models[k], seed, LT_DATA, &o, &graph);
            lt_train(models[k], seed, LT_DATA, &o, &again);
            setenv("LOOM_CUDA_GRAPHS", "0", 1);
            lt_train(models[k], seed, LT_DATA, &o, &eager);
            ck_assert_msg(same(&graph, &again), "model %zu seed %llu: two deterministic runs differ", k, (unsigned long long)seed);
            ck_assert_msg(same(&graph, &eager), "model %zu seed %llu: graph replay and one-by-one launches differ (loss %.17g, %.17g)",
                          k, (unsigned long long)seed, graph.loss[LT_STEPS - 1], eager.loss[LT_STEPS - 1]);
        }
    unsetenv("LOOM_CUDA_GRAPHS");
    unsetenv("LOOM_DETERMINISTIC");
}
END_TEST

static loom_graph *on_cuda(void)
{
    loom_graph *g = loom_graph_new();
    loom_error e;
    loom_placement *pl = loom_placement_parse("cuda:0", &e);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    return g;
}

/* Indices are checked on the device: a bad one fails the run, naming the op and the index. */
START_TEST(test_bad_index_on_device)
{
    loom_graph *g = on_cuda();
    loom_tensor *idx = loom_input(g, "idx", LOOM_I32, loom_shape(3));
    loom_tensor *w = loom_param(g, "w", LOOM_F32, loom_shape(5, 2), loom_init_normal(0, 1, 1));
    loom_tensor *rows = loom_gather_rows(g, w, idx);
    loom_tensor_set_name(rows, "picked");
    loom_tensor *loss = loom_sum(g, rows, LOOM_ALL_AXES, 0);
    loom_program *p;
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1)}, &p) == LOOM_OK, "%s", loom_graph_error(g));
    int32_t bad[3] = {1, 9, 2};
    loom_array a = {.dtype = LOOM_I32, .ndim = 1, .shape = {3}, .data = bad};
    ck_assert_int_eq(loom_program_feed(p, idx, &a), LOOM_OK);
    ck_assert_int_ne(loom_program_run(p, LOOM_RUN_STEP), LOOM_OK);
    const char *m = loom_program_error(p);
    ck_assert_msg(strstr(m, "gather_rows 'picked'") && strstr(m, "index 9 out of range [0, 5)"), "%s", m);
    /* and with good indices the same program runs */
    int32_t good[3] = {1, 4, 2};
    a.data = good;
    ck_assert_int_eq(loom_program_feed(p, idx, &a), LOOM_OK);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* A linear classifier of 64 rows of 32 features on cuda:0, fed zeros, compiled with a memory limit
 * (0: none). */
static loom_program *linear_on_gpu(loom_graph *g, int64_t limit)
{
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(64, 32));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(64));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc", x, 10, 1), y, NULL);
    loom_program *p;
    ck_assert_int_eq(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_adam(0.01), .memory_limit = limit}, &p), LOOM_OK);
    static float xv[64 * 32];
    static int32_t yv[64];
    loom_array xa = {.dtype = LOOM_F32, .ndim = 2, .shape = {64, 32}, .data = xv}, ya = {.dtype = LOOM_I32, .ndim = 1, .shape = {64}, .data = yv};
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, y, &ya), LOOM_OK);
    return p;
}

START_TEST(test_memory_plan_on_gpu)
{
    loom_graph *g = on_cuda();
    loom_program *p = linear_on_gpu(g, 0);
    loom_memory m;
    ck_assert_msg(loom_program_memory(p, LOOM_RUN_STEP, 0, &m) == LOOM_OK, "%s", loom_program_error(p));
    /* weight [32, 10] and bias [10], each with Adam's two moments, on the device */
    ck_assert_uint_eq(m.params, 3 * (32 * 10 * 4 + 64));
    ck_assert_uint_eq(m.inputs, 64 * 32 * 4 + 256);
    ck_assert_uint_gt(m.shared, 0);
    ck_assert_uint_eq(m.total, m.shared + m.own + m.params + m.inputs + m.scratch);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
    loom_program_free(p);
    loom_graph_free(g);

    /* a given limit bounds each GPU's plan, refused by loom_compile, naming the device */
    g = on_cuda();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(64, 32));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(64));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc", x, 10, 1), y, NULL);
    p = NULL;
    ck_assert_int_eq(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_adam(0.01), .memory_limit = 4096}, &p),
                     LOOM_ERR_NOMEM);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(loom_graph_error(g), "loom_compile: the plan of a step on cuda:0 needs") &&
                      strstr(loom_graph_error(g), "over the limit of 4.0 KiB"),
                  "%s", loom_graph_error(g));
    loom_graph_free(g);
}
END_TEST

/* Micro-batches run on CPU devices: a GPU's program with them is refused at compile time
 * (docs/bad-inputs.md). */
START_TEST(test_micro_batches_refused_on_gpu)
{
    loom_graph *g = on_cuda();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(8, 3));
    loom_tensor *loss = loom_sum(g, loom_nn_linear(g, "l", x, 2, 1), LOOM_ALL_AXES, 0);
    loom_program *p = NULL;
    ck_assert_int_eq(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1), .micro_batches = 2}, &p), LOOM_ERR_INVALID);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(loom_graph_error(g), "loom_compile: 2 micro-batches: they run on CPU devices; this graph is on cuda devices");
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gpu_exec");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_mlp_on_gpu);
    tcase_add_test(tc, test_gcn_on_gpu);
    tcase_add_test(tc, test_gat_on_gpu);
    tcase_add_test(tc, test_random_graphs_on_gpu);
    tcase_add_test(tc, test_graphs_and_determinism);
    tcase_add_test(tc, test_bad_index_on_device);
    tcase_add_test(tc, test_memory_plan_on_gpu);
    tcase_add_test(tc, test_micro_batches_refused_on_gpu);
    suite_add_tcase(s, tc);
    return lt_run_gpu_suite(s);
}
