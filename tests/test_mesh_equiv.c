/* The placement-equivalence property on 2-D placements (meshes): training on cpu:0-3 seen as 2x2,
 * 1x4 and 4x1, cpu:0-1 as 2x1 and 1x2, cpu:0-2 as 1x3 and 3x1, and cpu:0-5 as 2x3 and 3x2
 * (uneven splits of the batch of 7 and of the 9-node graph), under data, model and hybrid
 * parallelism, with every hint on both levels and, for hybrid, the mesh's own (S(0), B) batches
 * and (B, S(i)) weights, gives the losses and parameters of one device on the SBP reference
 * executor; the actor runtime (boxing tasks in shared memory), fed directly and by a data source,
 * gives the reference executor's bits. */
#include "equiv.h"

#include <stdio.h>
#include <string.h>

static const char *const meshes[] = {"cpu:0-3[2,2]", "cpu:0-3[1,4]", "cpu:0-3[4,1]", "cpu:0-1[2,1]", "cpu:0-1[1,2]",
                                     "cpu:0-2[1,3]", "cpu:0-2[3,1]", "cpu:0-5[2,3]", "cpu:0-5[3,2]"};
enum { NMESH = sizeof meshes / sizeof meshes[0] };

/* Each mode, and hybrid once more with the mesh's own hints, on every mesh against one device. */
static int check_seeds(lt_build_fn build, int nseeds, double tol)
{
    int cases = 0;
    for (uint64_t seed = 0; seed < (uint64_t)nseeds; seed++) {
        lt_result one, many, actors;
        lt_mesh_hybrid = 0;
        lt_train(build, seed, LT_DATA, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_REFERENCE}, &one);
        for (int k = 0; k < NMESH; k++)
            for (int m = 0; m <= LT_MODE_COUNT; m++) {
                enum lt_mode mode = m == LT_MODE_COUNT ? LT_HYBRID : (enum lt_mode)m;
                char what[160];
                lt_mesh_hybrid = m == LT_MODE_COUNT;
                snprintf(what, sizeof what, "seed %llu %s%s on %s", (unsigned long long)seed, lt_mode_name[mode],
                         lt_mesh_hybrid ? " ((S(0), B) batches, (B, S(i)) weights)" : "", meshes[k]);
                lt_train(build, seed, mode, &(lt_train_opts){.placement = meshes[k], .executor = LOOM_EXEC_REFERENCE}, &many);
                lt_assert_results_close(&many, &one, tol, what);
                for (int src = 0; src < 2; src++) {
                    lt_train(build, seed, mode,
                             &(lt_train_opts){.placement = meshes[k], .executor = LOOM_EXEC_ACTORS, .with_source = src}, &actors);
                    ck_assert_msg(lt_results_same(&actors, &many),
                                  "%s%s: the actor runtime differs from the SBP reference executor (loss %.17g, %.17g)", what,
                                  src ? " with a data source" : "", actors.loss[LT_STEPS - 1], many.loss[LT_STEPS - 1]);
                }
                cases++;
            }
    }
    lt_mesh_hybrid = 0;
    return cases;
}

START_TEST(test_mlp_mesh) { ck_assert_int_eq(check_seeds(lt_model_mlp, 4, 1e-5), 4 * NMESH * 4); }
END_TEST

START_TEST(test_gcn_mesh) { ck_assert_int_eq(check_seeds(lt_model_gcn, 2, 1e-9), 2 * NMESH * 4); }
END_TEST

START_TEST(test_gcn_dropout_mesh) { ck_assert_int_eq(check_seeds(lt_model_gcn_dropout, 2, 1e-9), 2 * NMESH * 4); }
END_TEST

START_TEST(test_embedding_mesh) { ck_assert_int_eq(check_seeds(lt_model_embedding, 3, 1e-5), 3 * NMESH * 4); }
END_TEST

START_TEST(test_random_graphs_mesh) { ck_assert_int_eq(check_seeds(lt_model_random, 12, 1e-5), 12 * NMESH * 4); }
END_TEST

/* Pipelines through meshes: two stages, either or both on a 2-D placement, the hidden values
 * moved between them (a move task reads every part of the source mesh) and their gradient back. */
START_TEST(test_pipelines_mesh)
{
    static const char *const stages[][2] = {
        {"cpu:0-3[2,2]", "cpu:4-5"}, {"cpu:0-1", "cpu:2-5[2,2]"}, {"cpu:0-3[2,2]", "cpu:2-5[1,4]"}, {"cpu:0-5[2,3]", "cpu:0"}};
    ck_assert_int_eq(lt_check_pipelines(stages, 4, 2), 2 * 4 * LT_MODE_COUNT);
}
END_TEST

/* A hint whose levels are not its placement's, or that does not fit the tensor, is the graph's
 * error, which loom_compile returns. */
static void check_bad_hint(const char *placement, loom_nd_sbp hint, int i32, const char *want)
{
    loom_graph *g = loom_graph_new();
    loom_error e = {0};
    loom_placement *p = loom_placement_parse(placement, &e);
    ck_assert_msg(p != NULL, "%s", e.msg);
    loom_graph_set_placement(g, p);
    loom_placement_free(p);
    loom_tensor *x = loom_input(g, "x", i32 ? LOOM_I32 : LOOM_F32, loom_shape(8, 4)), *y = loom_input(g, "y", LOOM_F32, loom_shape(8));
    loom_tensor_set_nd_sbp(x, hint);
    ck_assert_int_eq(loom_graph_status(g), LOOM_ERR_INVALID);
    ck_assert_msg(!strcmp(loom_graph_error(g), want), "got '%s', expected '%s'", loom_graph_error(g), want);
    loom_program *prog = NULL;
    ck_assert_int_eq(loom_compile(g, loom_sum(g, y, 1, 0), NULL, &prog), LOOM_ERR_INVALID);
    ck_assert_ptr_null(prog);
    loom_graph_free(g);
}

START_TEST(test_mesh_bad_hints)
{
    check_bad_hint("cpu:0-3[2,2]", loom_nd_sbp_1d(loom_split(0)), 0,
                   "loom_tensor_set_nd_sbp 'x': SBP S(0) has 1 level but placement 'cpu:0-3[2,2]' has a 2-D hierarchy [2, 2]");
    check_bad_hint("cpu:0-3", loom_nd_sbp_2d(loom_split(0), loom_broadcast()), 0,
                   "loom_tensor_set_nd_sbp 'x': SBP (S(0), B) has 2 levels but placement 'cpu:0-3' has a 1-D hierarchy [4]");
    check_bad_hint("cpu:0-3[2,2]", loom_nd_sbp_2d(loom_broadcast(), loom_split(2)), 0,
                   "loom_tensor_set_nd_sbp 'x': level 1 of (B, S(2)) on 'cpu:0-3[2,2]': S(2) splits axis 2 of a 2-D tensor");
    check_bad_hint("cpu:0-3[2,2]", loom_nd_sbp_2d(loom_partial_sum(), loom_broadcast()), 1,
                   "loom_tensor_set_nd_sbp 'x': a partial sum (P) needs a dense f32 or f64 tensor; it is i32");
    check_bad_hint("cpu:0", loom_nd_sbp_2d(loom_broadcast(), loom_broadcast()), 0,
                   "loom_tensor_set_nd_sbp 'x': SBP (B, B) has 2 levels but placement 'cpu:0' has a 1-D hierarchy [1]");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mesh_equiv");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_mlp_mesh);
    tcase_add_test(tc, test_gcn_mesh);
    tcase_add_test(tc, test_gcn_dropout_mesh);
    tcase_add_test(tc, test_embedding_mesh);
    tcase_add_test(tc, test_random_graphs_mesh);
    tcase_add_test(tc, test_pipelines_mesh);
    tcase_add_test(tc, test_mesh_bad_hints);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
