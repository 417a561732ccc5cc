/* The boxing between GPUs (NCCL) on every visible GPU, cuda:0-(n-1), against the same programs on
 * as many CPU devices: every kind of boxing (S(0), S(1), B and P to each other, rows that split
 * evenly and unevenly), and the placement-equivalence models trained data, model and hybrid
 * parallel. Moving a tensor between GPU placements is refused with a message. Skipped (exit 77)
 * with fewer than two GPUs, or without CUDA. */
#include "box_cases.h"
#include "equiv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int ngpu;
static char gpus[32], cpus[32];

START_TEST(test_every_kind)
{
    float cpu[64 * 5], gpu[64 * 5];
    char plan[8192], want[64], sf[16], st[16];
    const int64_t rows[] = {7, 8, 2 * ngpu + 1, 4 * ngpu};
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (int from = 0; from < LT_BOX_KINDS; from++)
            for (int to = 0; to < LT_BOX_KINDS; to++) {
                if (from == to)
                    continue;
                loom_sbp_str(lt_box_sbp(from), sf, sizeof sf);
                loom_sbp_str(lt_box_sbp(to), st, sizeof st);
                snprintf(want, sizeof want, "%s -> %s", sf, st);
                lt_box_run(cpus, from, to, rows[r], cpu, NULL, 0);
                lt_box_run(gpus, from, to, rows[r], gpu, plan, sizeof plan);
                ck_assert_msg(strstr(plan, want) != NULL, "%s: no boxing %s in the plan:\n%s", gpus, want, plan);
                for (int64_t i = 0; i < rows[r] * 5; i++)
                    ck_assert_msg(fabsf(cpu[i] - gpu[i]) <= 1e-5f * (1 + fabsf(cpu[i])), "%s, %s, %lld rows: element %lld: %g, on %s %g",
                                  gpus, want, (long long)rows[r], (long long)i, gpu[i], cpus, cpu[i]);
            }
}
END_TEST

/* Data parallelism's all-reduce of the gradients, model parallelism's gathers and
 * reduce-scatters, and both: losses and parameters as on CPU devices. */
START_TEST(test_models)
{
    for (int m = 0; m < LT_MODE_COUNT; m++)
        for (uint64_t seed = 0; seed < 2; seed++) {
            lt_result cpu, gpu;
            char what[96];
            lt_train(lt_model_mlp, seed, (enum lt_mode)m, &(lt_train_opts){.placement = cpus, .executor = LOOM_EXEC_ACTORS}, &cpu);
            lt_train(lt_model_mlp, seed, (enum lt_mode)m, &(lt_train_opts){.placement = gpus, .executor = LOOM_EXEC_ACTORS}, &gpu);
            snprintf(what, sizeof what, "MLP, %s, seed %llu on %s", lt_mode_name[m], (unsigned long long)seed, gpus);
            lt_assert_results_close(&gpu, &cpu, 1e-5, what);
        }
    for (uint64_t seed = 0; seed < 2; seed++) { /* the graph's rows split; its CSR adjacency is never boxed */
        lt_result cpu, gpu;
        char what[96];
        lt_train(lt_model_gcn, seed, LT_DATA, &(lt_train_opts){.placement = cpus, .executor = LOOM_EXEC_ACTORS}, &cpu);
        lt_train(lt_model_gcn, seed, LT_DATA, &(lt_train_opts){.placement = gpus, .executor = LOOM_EXEC_ACTORS, .with_source = 1},
                 &gpu);
        snprintf(what, sizeof what, "GCN, data parallel, seed %llu on %s with a data source", (unsigned long long)seed, gpus);
        lt_assert_results_close(&gpu, &cpu, 1e-9, what);
    }
}
END_TEST

/* docs/bad-inputs.md: a tensor moved from cuda:0 to cuda:1. */
START_TEST(test_move_refused)
{
    loom_error err = {0};
    loom_graph *g = loom_graph_new();
    loom_placement *p0 = loom_placement_parse("cuda:0", &err), *p1 = loom_placement_parse("cuda:1", &err);
    loom_graph_set_placement(g, p0);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(4, 3));
    loom_tensor *y = loom_scale(g, loom_to_placement(g, loom_relu(g, x), p1), 2.0);
    loom_program *prog = NULL;
    loom_status s = loom_compile(g, NULL, NULL, &prog);
    if (s == LOOM_OK) {
        loom_array a = {.dtype = LOOM_F32, .ndim = 2, .shape = {4, 3}, .data = (float[12]){0}};
        ck_assert_int_eq(loom_program_feed(prog, x, &a), LOOM_OK);
        ck_assert_int_eq(loom_program_keep(prog, y), LOOM_OK);
        s = loom_program_run(prog, LOOM_RUN_FORWARD);
        ck_assert_int_eq(s, LOOM_ERR_UNSUPPORTED);
        ck_assert_msg(strstr(loom_program_error(prog), "between GPU placements is not built yet") != NULL, "%s",
                      loom_program_error(prog));
    } else {
        ck_assert_msg(strstr(loom_graph_error(g), "between GPU placements is not built yet") != NULL, "%s", loom_graph_error(g));
    }
    loom_program_free(prog);
    loom_placement_free(p0);
    loom_placement_free(p1);
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    loom_error why = {0};
    ngpu = loom_cuda_device_count(&why);
    if (ngpu < 2) {
        printf("gpu_boxing: skipped: %d CUDA device(s) visible, the boxing between GPUs needs 2 or more%s%s\n", ngpu,
               why.msg[0] ? ": " : "", why.msg);
        return 77;
    }
    if (ngpu > 8)
        ngpu = 8;
    snprintf(gpus, sizeof gpus, "cuda:0-%d", ngpu - 1);
    snprintf(cpus, sizeof cpus, "cpu:0-%d", ngpu - 1);
    Suite *s = suite_create("gpu_boxing");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_every_kind);
    tcase_add_test(tc, test_models);
    tcase_add_test(tc, test_move_refused);
    suite_add_tcase(s, tc);
    return lt_run_gpu_suite(s);
}
