/* The placement-equivalence property: training on cpu:0-1, cpu:0-2 (uneven splits) and cpu:0-3
 * under data parallelism, model parallelism (weights split) and both gives the losses and the
 * parameters of one device. Each multi-device case runs twice: on the SBP reference executor (each
 * op once per device on its local values, boxing on the host) and on the actor runtime (a chain of
 * tasks per device thread, boxing tasks between them), which must agree bit for bit. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

enum { STEPS = 3 };
enum mode { DATA, MODEL, HYBRID, MODE_COUNT };
static const char *const mode_name[MODE_COUNT] = {"data parallel", "model parallel", "hybrid"};
static const char *const placements[] = {"cpu:0", "cpu:0-1", "cpu:0-2", "cpu:0-3"};

typedef struct run_result {
    double loss[STEPS];
    double params[256];
    int nparams;
} run_result;

/* Feeds every input of a built graph from seeded data and trains it; returns losses and params. */
typedef loom_tensor *(*build_fn)(loom_graph *g, uint64_t seed, enum mode m, loom_tensor **in, int *nin);

static void place(loom_graph *g, const char *placement)
{
    loom_error e = {0};
    loom_placement *pl = loom_placement_parse(placement, &e);
    ck_assert_msg(pl != NULL, "%s", e.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
}

static void train(build_fn build, uint64_t seed, enum mode m, const char *placement, loom_executor exec, run_result *r)
{
    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, seed);
    place(g, placement);
    loom_tensor *in[8];
    int nin = 0;
    loom_tensor *loss = build(g, seed, m, in, &nin);
    loom_program *p = NULL;
    loom_optimizer opt = seed % 2 ? loom_adam(0.05) : loom_sgd(0.1);
    opt.momentum = seed % 2 ? 0 : 0.9;
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = opt, .executor = exec}, &p) == LOOM_OK,
                  "seed %llu %s on %s: %s", (unsigned long long)seed, mode_name[m], placement, loom_graph_error(g));
    for (int k = 0; k < nin; k++) {
        if (!strcmp(loom_tensor_name(in[k]), "adj")) { /* a ring of 9 nodes with a few chords */
            int32_t rowptr[10], col[36];
            double val[36];
            int e = 0;
            for (int r = 0; r < 9; r++) {
                rowptr[r] = e;
                int nb[3] = {(r + 8) % 9, (r + 1) % 9, (r * 4 + 1) % 9};
                for (int j = 0; j < 3; j++)
                    if (nb[j] != r && (j < 2 || (nb[j] != (r + 8) % 9 && nb[j] != (r + 1) % 9)))
                        col[e] = nb[j], val[e++] = 1.0;
            }
            rowptr[9] = e;
            loom_csr m = {.nrows = 9, .ncols = 9, .nnz = e, .vdtype = LOOM_F64, .rowptr = rowptr, .col = col, .val = val};
            ck_assert_msg(loom_program_feed_csr(p, in[k], &m) == LOOM_OK, "%s", loom_program_error(p));
            continue;
        }
        loom_shape s = loom_tensor_shape(in[k]);
        int64_t shape[LOOM_MAX_DIMS];
        for (int i = 0; i < s.ndim; i++)
            shape[i] = s.d[i];
        loom_array a;
        ck_assert_int_eq(loom_array_alloc(&a, loom_tensor_dtype(in[k]), s.ndim, shape), LOOM_OK);
        int64_t n = loom_array_numel(&a);
        double v[1024];
        ck_assert_int_le(n, 1024);
        lt_fill_normal(v, n, seed * 31 + (uint64_t)k);
        for (int64_t i = 0; i < n; i++) {
            if (a.dtype == LOOM_F32)
                ((float *)a.data)[i] = (float)v[i];
            else if (a.dtype == LOOM_F64)
                ((double *)a.data)[i] = v[i];
            else /* row indices in [0, rows), labels in [0, 3) */
                ((int32_t *)a.data)[i] = (int32_t)((uint64_t)(fabs(v[i]) * 1000) %
                                                   (uint64_t)(!strcmp(loom_tensor_name(in[k]), "idx") ? shape[0] : 3));
        }
        ck_assert_msg(loom_program_feed(p, in[k], &a) == LOOM_OK, "%s", loom_program_error(p));
        loom_array_free(&a);
    }
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, STEPS) == LOOM_OK, "seed %llu %s on %s: %s",
                  (unsigned long long)seed, mode_name[m], placement, loom_program_error(p));
    int64_t n;
    const double *l = loom_program_losses(p, &n);
    ck_assert_int_eq(n, STEPS);
    memcpy(r->loss, l, sizeof r->loss);
    r->nparams = 0;
    for (int k = 0; loom_graph_param(g, k); k++) {
        loom_array w;
        ck_assert_int_eq(loom_program_fetch(p, loom_graph_param(g, k), &w), LOOM_OK);
        for (int64_t i = 0; i < loom_array_numel(&w) && r->nparams < 256; i++)
            r->params[r->nparams++] = w.dtype == LOOM_F32 ? ((float *)w.data)[i] : ((double *)w.data)[i];
    }
    loom_program_free(p);
    loom_graph_free(g);
}

static void check_equivalent(build_fn build, uint64_t seed, double tol, int *cases)
{
    run_result one, many, actors;
    train(build, seed, DATA, placements[0], LOOM_EXEC_REFERENCE, &one);
    for (int m = 0; m < MODE_COUNT; m++)
        for (int k = 1; k < 4; k++) {
            train(build, seed, (enum mode)m, placements[k], LOOM_EXEC_REFERENCE, &many);
            train(build, seed, (enum mode)m, placements[k], LOOM_EXEC_ACTORS, &actors);
            ck_assert_msg(!memcmp(actors.loss, many.loss, sizeof many.loss) && actors.nparams == many.nparams &&
                              !memcmp(actors.params, many.params, (size_t)many.nparams * sizeof *many.params),
                          "seed %llu %s on %s: the actor runtime differs from the SBP reference executor (loss %.17g, %.17g)",
                          (unsigned long long)seed, mode_name[m], placements[k], actors.loss[STEPS - 1], many.loss[STEPS - 1]);
            for (int s = 0; s < STEPS; s++)
                ck_assert_msg(fabs(many.loss[s] - one.loss[s]) <= tol * fmax(1, fabs(one.loss[s])),
                              "seed %llu %s on %s: step %d loss %.10g, one device %.10g", (unsigned long long)seed,
                              mode_name[m], placements[k], s, many.loss[s], one.loss[s]);
            ck_assert_int_eq(many.nparams, one.nparams);
            for (int i = 0; i < one.nparams; i++)
                ck_assert_msg(fabs(many.params[i] - one.params[i]) <= tol * fmax(1, fabs(one.params[i])),
                              "seed %llu %s on %s: parameter element %d is %.10g, one device %.10g", (unsigned long long)seed,
                              mode_name[m], placements[k], i, many.params[i], one.params[i]);
            (*cases)++;
        }
}

/* ---- models ----------------------------------------------------------------------------------- */

/* MLP 6 -> 5 -> 3 on a batch of 7 (uneven on 2 and 3 devices... and 4). Model parallelism splits
 * the hidden layer's weight by columns with the whole batch everywhere; hybrid splits both. */
static loom_tensor *mlp(loom_graph *g, uint64_t seed, enum mode m, loom_tensor **in, int *nin)
{
    (void)seed;
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(7, 6));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(7));
    in[0] = x, in[1] = y, *nin = 2;
    if (m == MODEL)
        loom_tensor_set_sbp(x, loom_broadcast());
    loom_tensor *h = loom_tanh(g, loom_nn_linear(g, "fc1", x, 5, 1));
    if (m != DATA)
        loom_tensor_set_sbp(loom_graph_find(g, "fc1.weight"), loom_split(1));
    return loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 3, 1), y, NULL);
}

/* GCN (2 layers, no dropout) on a fixed random graph of 9 nodes, adjacency split by rows. */
static loom_tensor *gcn(loom_graph *g, uint64_t seed, enum mode m, loom_tensor **in, int *nin)
{
    (void)seed;
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(9, 4));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(9));
    in[0] = x, in[1] = y, *nin = 2;
    loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F64, 9, 9);
    in[2] = adj, *nin = 3;
    if (m == MODEL)
        loom_tensor_set_sbp(adj, loom_broadcast());
    loom_tensor *logits = loom_nn_gcn(g, adj, x, 5, 3, 0.0);
    if (m != DATA)
        loom_tensor_set_sbp(loom_graph_find(g, "gcn1.weight"), loom_split(1));
    return loom_softmax_cross_entropy(g, logits, y, NULL);
}

static loom_tensor *random_dag(loom_graph *g, uint64_t seed, enum mode m, loom_tensor **in, int *nin)
{
    int64_t rc[2];
    loom_tensor *x, *idx;
    loom_tensor *loss = lt_random_graph(g, seed, &x, &idx, rc);
    in[0] = x, in[1] = idx, *nin = 2;
    if (m == MODEL)
        loom_tensor_set_sbp(x, loom_broadcast());
    if (m != DATA)
        loom_tensor_set_sbp(loom_graph_find(g, "wc"), loom_split(1));
    return loss;
}

/* Every case of seeds [0, nseeds) of a model: each placement and parallelism against one device. */
static int check_seeds(build_fn build, int nseeds, double tol)
{
    int cases = 0;
    for (uint64_t seed = 0; seed < (uint64_t)nseeds; seed++)
        check_equivalent(build, seed, tol, &cases);
    return cases;
}

START_TEST(test_mlp_equivalent) { ck_assert_int_eq(check_seeds(mlp, 4, 1e-5), 36); }
END_TEST

START_TEST(test_gcn_equivalent) { ck_assert_int_eq(check_seeds(gcn, 2, 1e-9), 18); }
END_TEST

START_TEST(test_random_graphs_equivalent) { ck_assert_int_ge(check_seeds(random_dag, 12, 1e-5), 100); }
END_TEST

int main(void)
{
    Suite *s = suite_create("sbp_equiv");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_mlp_equivalent);
    tcase_add_test(tc, test_gcn_equivalent);
    tcase_add_test(tc, test_random_graphs_equivalent);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
