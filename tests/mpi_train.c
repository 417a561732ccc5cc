/* Training over ranks (ctest label mpi; run by mpirun -np 2, or -np 4): every rank builds the same
 * model on a placement over the job's ranks, two CPU devices each (@0-(n-1)/cpu:0-1, rank-major as
 * one list of devices), trains it and checks the losses (and parameters, where the case has them)
 * against one device, on every rank: the MLP, GCN and embedding models in data, model and hybrid
 * parallelism, the event-graph GNN and GIN on balanced graph batches, the ConvNet. Each rank's
 * result is its own: the sinks of every rank assemble the whole loss. */
#include "batch_cases.h"
#include "cnn_cases.h"
#include "equiv.h"

#include <stdio.h>
#include <stdlib.h>

static char placement[64];

static void check_model(lt_build_fn build, const char *name, int nseeds, double tol)
{
    for (uint64_t seed = 0; seed < (uint64_t)nseeds; seed++)
        for (int m = 0; m < LT_MODE_COUNT; m++)
            for (int src = 0; src < 2; src++) {
                lt_result one, many;
                char what[160];
                lt_train(build, seed, (enum lt_mode)m, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_ACTORS}, &one);
                lt_train(build, seed, (enum lt_mode)m,
                         &(lt_train_opts){.placement = placement, .executor = LOOM_EXEC_ACTORS, .with_source = src}, &many);
                snprintf(what, sizeof what, "rank %d: %s seed %llu %s on %s%s", loom_dist_rank(), name, (unsigned long long)seed,
                         lt_mode_name[m], placement, src ? " with a data source" : "");
                lt_assert_results_close(&many, &one, tol, what);
            }
}

START_TEST(test_mlp_over_ranks) { check_model(lt_model_mlp, "mlp", 2, 1e-5); }
END_TEST

START_TEST(test_gcn_over_ranks) { check_model(lt_model_gcn, "gcn", 2, 1e-9); }
END_TEST

START_TEST(test_gcn_dropout_over_ranks) { check_model(lt_model_gcn_dropout, "gcn with dropout", 1, 1e-9); }
END_TEST

START_TEST(test_embedding_over_ranks) { check_model(lt_model_embedding, "embedding", 1, 1e-5); }
END_TEST

/* The event-graph GNN (the interaction network) and GIN on generated graph samples, the devices
 * sampler balancing each step's graphs over every device of every rank: the same losses as one
 * device fed each step's shares joined. */
START_TEST(test_event_gnn_over_ranks)
{
    lt_batch_equivalence(0, placement, 2 * loom_dist_size(), LOOM_SAMPLER_DEVICES);
    lt_batch_equivalence(1, placement, 2 * loom_dist_size(), LOOM_SAMPLER_DEVICES);
}
END_TEST

/* The ConvNet data parallel and with its first convolution split by output channels. */
START_TEST(test_convnet_over_ranks)
{
    lt_cnn_run one, many;
    lt_cnn_train(LT_CONVNET, NULL, NULL, &one);
    for (int split = 0; split < 2; split++) {
        lt_cnn_train(LT_CONVNET, placement, split ? "conv1.weight" : NULL, &many);
        char what[128];
        snprintf(what, sizeof what, "rank %d: ConvNet on %s%s, losses", loom_dist_rank(), placement, split ? ", conv1 split" : "");
        lt_assert_close(many.loss, one.loss, LT_CNN_STEPS, 1e-5, what);
    }
}
END_TEST

int main(void)
{
    loom_error e = LOOM_ERROR_INIT;
    if (loom_dist_init(&e) != LOOM_OK) {
        fprintf(stderr, "mpi_train: %s\n", e.msg);
        return 1;
    }
    snprintf(placement, sizeof placement, "@0-%d/cpu:0-1", loom_dist_size() - 1);
    Suite *s = suite_create("mpi_train");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_mlp_over_ranks);
    tcase_add_test(tc, test_gcn_over_ranks);
    tcase_add_test(tc, test_gcn_dropout_over_ranks);
    tcase_add_test(tc, test_embedding_over_ranks);
    tcase_add_test(tc, test_event_gnn_over_ranks);
    tcase_add_test(tc, test_convnet_over_ranks);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_set_fork_status(r, CK_NOFORK); /* one process per rank: MPI does not survive a fork */
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    loom_dist_finalize();
    return failed ? 1 : 0;
}
