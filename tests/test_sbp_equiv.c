/* The placement-equivalence property: training on cpu:0-1, cpu:0-2 (uneven splits) and cpu:0-3
 * under data parallelism, model parallelism (weights split) and both gives the losses and the
 * parameters of one device. Each multi-device case runs twice: on the SBP reference executor (each
 * op once per device on its local values, boxing on the host) and on the actor runtime (a chain of
 * tasks per device thread, boxing tasks between them), which must agree bit for bit; the actor
 * runtime runs once more fed by a data source, which cuts each step's inputs into parts. */
#include "equiv.h"

#include <stdio.h>
#include <string.h>

static const char *const placements[] = {"cpu:0", "cpu:0-1", "cpu:0-2", "cpu:0-3"};

static void check_equivalent(lt_build_fn build, uint64_t seed, double tol, int *cases)
{
    lt_result one, many, actors;
    lt_train(build, seed, LT_DATA, &(lt_train_opts){.placement = placements[0], .executor = LOOM_EXEC_REFERENCE}, &one);
    for (int m = 0; m < LT_MODE_COUNT; m++)
        for (int k = 1; k < 4; k++) {
            char what[128];
            snprintf(what, sizeof what, "seed %llu %s on %s", (unsigned long long)seed, lt_mode_name[m], placements[k]);
            lt_train(build, seed, (enum lt_mode)m, &(lt_train_opts){.placement = placements[k], .executor = LOOM_EXEC_REFERENCE},
                     &many);
            lt_assert_results_close(&many, &one, tol, what);
            for (int src = 0; src < 2; src++) {
                lt_train(build, seed, (enum lt_mode)m,
                         &(lt_train_opts){.placement = placements[k], .executor = LOOM_EXEC_ACTORS, .with_source = src}, &actors);
                ck_assert_msg(lt_results_same(&actors, &many),
                              "%s%s: the actor runtime differs from the SBP reference executor (loss %.17g, %.17g)", what,
                              src ? " with a data source" : "", actors.loss[LT_STEPS - 1], many.loss[LT_STEPS - 1]);
            }
            (*cases)++;
        }
}

/* Every case of seeds [0, nseeds) of a model: each placement and parallelism against one device. */
static int check_seeds(lt_build_fn build, int nseeds, double tol)
{
    int cases = 0;
    for (uint64_t seed = 0; seed < (uint64_t)nseeds; seed++)
        check_equivalent(build, seed, tol, &cases);
    return cases;
}

START_TEST(test_mlp_equivalent) { ck_assert_int_eq(check_seeds(lt_model_mlp, 4, 1e-5), 36); }
END_TEST

START_TEST(test_gcn_equivalent) { ck_assert_int_eq(check_seeds(lt_model_gcn, 2, 1e-9), 18); }
END_TEST

START_TEST(test_gcn_dropout_equivalent) { ck_assert_int_eq(check_seeds(lt_model_gcn_dropout, 2, 1e-9), 18); }
END_TEST

START_TEST(test_gat_equivalent) { ck_assert_int_eq(check_seeds(lt_model_gat, 2, 1e-9), 18); }
END_TEST

/* Pipelines: two stages on two placements (of 1 to 3 devices, disjoint or sharing one), the
 * hidden values moved between them and their gradient moved back. */
START_TEST(test_pipelines_equivalent)
{
    static const char *const stages[][2] = {{"cpu:0", "cpu:1"},   {"cpu:0-1", "cpu:2-3"}, {"cpu:0", "cpu:1-3"},
                                            {"cpu:0-2", "cpu:3"}, {"cpu:0-1", "cpu:1-2"}, {"cpu:1-3", "cpu:0"}};
    ck_assert_int_eq(lt_check_pipelines(stages, 6, 3), 3 * 6 * 3);
}
END_TEST

START_TEST(test_embedding_equivalent) { ck_assert_int_eq(check_seeds(lt_model_embedding, 3, 1e-5), 27); }
END_TEST

START_TEST(test_random_graphs_equivalent) { ck_assert_int_ge(check_seeds(lt_model_random, 12, 1e-5), 100); }
END_TEST

int main(void)
{
    Suite *s = suite_create("sbp_equiv");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_mlp_equivalent);
    tcase_add_test(tc, test_gcn_equivalent);
    tcase_add_test(tc, test_gcn_dropout_equivalent);
    tcase_add_test(tc, test_gat_equivalent);
    tcase_add_test(tc, test_random_graphs_equivalent);
    tcase_add_test(tc, test_embedding_equivalent);
    tcase_add_test(tc, test_pipelines_equivalent);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
