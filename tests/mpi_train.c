/* Training over ranks (ctest label mpi; run by mpirun -np 2, or -np 4): every rank builds the same
 * model on a placement over the job's ranks, two CPU devices each (@0-(n-1)/cpu:0-1, the mesh
 * [n, 2]), trains it and checks the losses (and parameters, where the case has them)
 * against one device, on every rank: the MLP, GCN and embedding models in data, model and hybrid
 * parallelism (and the MLP with two-level hints), the ConvNet, and the interaction network, GIN
 * and GAT on graph batches fed by parts. Each rank's result is its own: the sinks of every rank assemble the
 * whole loss. A placement over ranks is 2-D ([ranks, devices per rank], one-level SBPs holding on
 * both levels); what does not run over ranks is refused: an input fed by parts that is not split
 * on both levels. Micro-batches over ranks: tests/mpi_pipeline.c. */
#include "batch_cases.h"
#include "cnn_cases.h"
#include "equiv.h"

#include "runtime/runtime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* The MLP in hybrid parallelism with the mesh's own hints: (S(0), B) batches, split over the ranks
 * and repeated within each, and (B, S(1)) weights, split over each rank's devices. */
START_TEST(test_mlp_two_levels_over_ranks)
{
    lt_result one, many;
    char what[160];
    lt_train(lt_model_mlp, 0, LT_HYBRID, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_ACTORS}, &one);
    lt_mesh_hybrid = 1;
    for (int src = 0; src < 2; src++) {
        lt_train(lt_model_mlp, 0, LT_HYBRID, &(lt_train_opts){.placement = placement, .executor = LOOM_EXEC_ACTORS, .with_source = src},
                 &many);
        snprintf(what, sizeof what, "rank %d: mlp with (S(0), B) batches and (B, S(1)) weights on %s%s", loom_dist_rank(), placement,
                 src ? " with a data source" : "");
        lt_assert_results_close(&many, &one, 1e-5, what);
    }
    lt_mesh_hybrid = 0;
}
END_TEST

START_TEST(test_gcn_over_ranks) { check_model(lt_model_gcn, "gcn", 2, 1e-9); }
END_TEST

START_TEST(test_gcn_dropout_over_ranks) { check_model(lt_model_gcn_dropout, "gcn with dropout", 1, 1e-9); }
END_TEST

START_TEST(test_embedding_over_ranks) { check_model(lt_model_embedding, "embedding", 1, 1e-5); }
END_TEST

/* The event-graph GNN (the interaction network) on graph batches over the ranks: the devices
 * sampler deals each step's graphs over every device of every rank, each rank's batch source
 * collates its own devices' shares and feeds them by parts, (S(0), S(0)) in the mesh's row-major
 * order; the losses are one device's fed each step's shares joined. */
START_TEST(test_event_gnn_over_ranks)
{
    lt_batch_equivalence(LT_BATCH_IN, placement, 2 * loom_dist_size(), LOOM_SAMPLER_DEVICES);
}
END_TEST

/* GIN and GAT on graph batches fed by parts over the ranks: GAT's dropout masks are made whole
 * ((S(0), S(0)) -> (B, B), the parts read across ranks in device order) and cut back. */
START_TEST(test_graph_gnns_over_ranks)
{
    lt_batch_equivalence(LT_BATCH_GIN, placement, 2 * loom_dist_size(), LOOM_SAMPLER_DEVICES);
    lt_batch_equivalence(LT_BATCH_GAT, placement, 2 * loom_dist_size(), LOOM_SAMPLER_DEVICES);
}
END_TEST

/* Fed by parts, a graph batch's inputs must split both levels: the interaction network with its
 * node features laid (S(0), B) over the ranks is refused, on every rank, with that reason and
 * nothing run. */
START_TEST(test_event_gnn_split_over_ranks_only_refused)
{
    loom_samples s;
    loom_sampler *smp = lt_batch_sampler(&s, 2 * loom_dist_size(), LOOM_SAMPLER_DEVICES);
    loom_error err = LOOM_ERROR_INIT;
    loom_graph *g = lt_graph_on(placement, 11);
    loom_batch_inputs in;
    loom_batch_inputs_make(g, &s, 12, LOOM_TASK_EDGES, &in);
    loom_tensor_set_nd_sbp(in.x, loom_nd_sbp_2d(loom_split(0), loom_broadcast()));
    loom_tensor *out = loom_nn_interaction_network(g, "in", in.x, in.edge_attr, in.src, in.dst, 8, 2);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_adam(0.01);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loom_bce_with_logits(g, out, in.edge_y, 2.0), &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
    loom_batch_source *src = NULL;
    ck_assert_msg(loom_batch_source_new(p, &s, smp, &in, &src, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_msg(loom_sampler_epoch(smp, 0, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_msg(loom_batch_plan_epoch(p, smp, &in, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_int_eq(loom_batch_run(src, LOOM_RUN_STEP, 0, &err), LOOM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(err.msg, "loom_feeder_parts: input 'x' is (S(0), B) on its devices; feeding by parts needs it split "
                                  "(S(0), S(0)) along a dynamic dim") != NULL,
                  "rank %d: %s", loom_dist_rank(), err.msg);
    int64_t n = -1;
    loom_program_losses(p, &n);
    ck_assert_int_eq(n, 0);
    loom_batch_source_free(src);
    loom_program_free(p);
    loom_graph_free(g);
    loom_sampler_free(smp);
    loom_samples_free(&s);
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

/* The MLP's program on the placement, fed a fixed batch (its graph in *g). */
static loom_program *mlp_program(loom_graph **g)
{
    *g = lt_graph_on(placement, 5);
    loom_tensor *in[8];
    int nin = 0;
    loom_tensor *loss = lt_model_mlp(*g, 5, LT_DATA, in, &nin);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_adam(0.01);
    loom_program *p;
    ck_assert_msg(loom_compile(*g, loss, &o, &p) == LOOM_OK, "%s", loom_graph_error(*g));
    float x[7 * 6];
    double xd[7 * 6];
    int32_t y[7];
    lt_fill_normal(xd, 7 * 6, 9);
    for (int i = 0; i < 7 * 6; i++)
        x[i] = (float)xd[i];
    lt_fill_int(y, 7, 3, 10);
    ck_assert(loom_program_feed(p, in[0], &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {7, 6}, .data = x}) == LOOM_OK);
    ck_assert(loom_program_feed(p, in[1], &(loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {7}, .data = y}) == LOOM_OK);
    return p;
}

/* A plan over ranks written as JSON (with each device's rank) and read back trains alike. */
START_TEST(test_plan_json_over_ranks)
{
    loom_graph *g1, *g2;
    loom_program *a = mlp_program(&g1), *b = mlp_program(&g2);
    char path[64];
    snprintf(path, sizeof path, "/tmp/loom-mpi-plan-%d-%d.json", (int)getpid(), loom_dist_rank());
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert(loom_program_write_plan(a, LOOM_RUN_STEP, LOOM_PLAN_JSON, f) == LOOM_OK);
    fclose(f);
    ck_assert_msg(loom_program_read_plan(b, path) == LOOM_OK, "%s", loom_program_error(b));
    unlink(path);
    ck_assert_msg(loom_program_run_steps(a, LOOM_RUN_STEP, 3) == LOOM_OK, "%s", loom_program_error(a));
    ck_assert_msg(loom_program_run_steps(b, LOOM_RUN_STEP, 3) == LOOM_OK, "%s", loom_program_error(b));
    int64_t na, nb;
    const double *la = loom_program_losses(a, &na), *lb = loom_program_losses(b, &nb);
    ck_assert_int_eq(na, 3);
    ck_assert_int_eq(nb, 3);
    ck_assert_msg(!memcmp(la, lb, 3 * sizeof *la), "rank %d: %.17g from the plan read back, %.17g from the program's",
                  loom_dist_rank(), lb[2], la[2]);
    loom_program_free(a), loom_program_free(b);
    loom_graph_free(g1), loom_graph_free(g2);
}
END_TEST

/* Every rank agrees on an outcome (loom__net_all_ok, as the NCCL communicators' opening does):
 * all succeed; rank 1 fails, and every rank returns its status, the others naming it with its
 * message; with ranks 1 and 2 failing, the others take rank 1's; the job goes on afterwards. */
START_TEST(test_all_ok_over_ranks)
{
    const int me = loom_dist_rank();
    char msg[256] = "";
    ck_assert_int_eq(loom__net_all_ok(LOOM_OK, msg, sizeof msg), LOOM_OK);
    for (int nfail = 1; nfail <= (loom_dist_size() > 2 ? 2 : 1); nfail++) {
        const int fails = me >= 1 && me <= nfail;
        snprintf(msg, sizeof msg, "planned failure on rank %d", me);
        loom_status st = loom__net_all_ok(fails ? (me == 1 ? LOOM_ERR_IO : LOOM_ERR_SHAPE) : LOOM_OK, msg, sizeof msg);
        ck_assert_int_eq(st, fails && me != 1 ? LOOM_ERR_SHAPE : LOOM_ERR_IO);
        char want[256];
        snprintf(want, sizeof want, fails ? "planned failure on rank %d" : "rank 1: planned failure on rank 1", me);
        ck_assert_str_eq(msg, want);
    }
    ck_assert_int_eq(loom__net_all_ok(LOOM_OK, msg, sizeof msg), LOOM_OK);
}
END_TEST

int main(void)
{
    if (lt_mpi_init("mpi_train", placement, sizeof placement, "cpu:0-1"))
        return 1;
    Suite *s = suite_create("mpi_train");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_all_ok_over_ranks);
    tcase_add_test(tc, test_mlp_over_ranks);
    tcase_add_test(tc, test_mlp_two_levels_over_ranks);
    tcase_add_test(tc, test_gcn_over_ranks);
    tcase_add_test(tc, test_gcn_dropout_over_ranks);
    tcase_add_test(tc, test_embedding_over_ranks);
    tcase_add_test(tc, test_event_gnn_over_ranks);
    tcase_add_test(tc, test_graph_gnns_over_ranks);
    tcase_add_test(tc, test_event_gnn_split_over_ranks_only_refused);
    tcase_add_test(tc, test_convnet_over_ranks);
    tcase_add_test(tc, test_plan_json_over_ranks);
    suite_add_tcase(s, tc);
    return lt_run_mpi_suite(s);
}
