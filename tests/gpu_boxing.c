/* The boxing between GPUs (NCCL) on every visible GPU, cuda:0-(n-1), against the same programs on
 * as many CPU devices: every kind of boxing (S(0), S(1), B and P to each other, rows that split
 * evenly and unevenly), and the placement-equivalence models trained data, model and hybrid
 * parallel, and two-stage pipelines whose values move between GPU placements. Skipped (exit 77)
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

/* Two-stage pipelines between GPU placements (the hidden values moved by loom_to_placement, and
 * their gradients back): as between CPU devices, in each mode. */
START_TEST(test_moves)
{
    static const char *const pairs[][4] = {{"cuda:0", "cuda:1", "cpu:0", "cpu:1"},
                                           {"cuda:1", "cuda:0", "cpu:1", "cpu:0"},
                                           {"cuda:0-1", "cuda:1", "cpu:0-1", "cpu:1"},
                                           {"cuda:0-1", "cuda:2-3", "cpu:0-1", "cpu:2-3"}};
    const int npairs = ngpu >= 4 ? 4 : 3;
    for (int q = 0; q < npairs; q++)
        for (int m = 0; m < LT_MODE_COUNT; m++) {
            lt_result cpu, gpu;
            char what[128];
            lt_stage2 = pairs[q][3];
            lt_train(lt_model_pipeline, 1, (enum lt_mode)m, &(lt_train_opts){.placement = pairs[q][2], .executor = LOOM_EXEC_ACTORS},
                     &cpu);
            lt_stage2 = pairs[q][1];
            lt_train(lt_model_pipeline, 1, (enum lt_mode)m, &(lt_train_opts){.placement = pairs[q][0], .executor = LOOM_EXEC_ACTORS},
                     &gpu);
            snprintf(what, sizeof what, "%s then %s, %s", pairs[q][0], pairs[q][1], lt_mode_name[m]);
            lt_assert_results_close(&gpu, &cpu, 1e-5, what);
        }
    lt_stage2 = NULL;
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
    tcase_add_test(tc, test_moves);
    suite_add_tcase(s, tc);
    return lt_run_gpu_suite(s);
}
