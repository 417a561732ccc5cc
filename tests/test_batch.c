/* Graph batches end to end: the interaction network and GIN trained on cpu:0-3 and cpu:0-1, each
 * step's batch split by whole graphs (loom_feeder_parts through the batch source), against one
 * device fed the same batches joined; packing to a memory limit (random fails before its first
 * step naming the batch, plan trains the epoch); and the feeder's refusals. */
#include "batch_cases.h"
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_interaction_network_cpu4)
{
    lt_batch_equivalence(LT_BATCH_IN, "cpu:0-3", 4, LOOM_SAMPLER_DEVICES);
    lt_batch_equivalence(LT_BATCH_IN, "cpu:0-3", 4, LOOM_SAMPLER_BUDGET);
}
END_TEST

/* On a mesh, parts in device order split both levels ((S(0), S(0)), rows part j on device j,
 * row-major): the interaction network, GIN and GAT (its dropout masks made whole, (B, B), and cut
 * back) give one device's losses. */
START_TEST(test_graph_batches_on_meshes)
{
    lt_batch_equivalence(LT_BATCH_IN, "cpu:0-3[2,2]", 4, LOOM_SAMPLER_DEVICES);
    lt_batch_equivalence(LT_BATCH_IN, "@0/cpu:0-2", 3, LOOM_SAMPLER_BUDGET);
    lt_batch_equivalence(LT_BATCH_GIN, "cpu:0-3[2,2]", 4, LOOM_SAMPLER_DEVICES);
    lt_batch_equivalence(LT_BATCH_GAT, "cpu:0-5[3,2]", 6, LOOM_SAMPLER_BUDGET);
}
END_TEST

START_TEST(test_interaction_network_cpu2_balance)
{
    lt_batch_equivalence(LT_BATCH_IN, "cpu:0-1", 2, LOOM_SAMPLER_BALANCE);
}
END_TEST

START_TEST(test_gin_cpu2)
{
    lt_batch_equivalence(LT_BATCH_GIN, "cpu:0-1", 2, LOOM_SAMPLER_DEVICES);
}
END_TEST

/* GAT split by whole graphs: its gathers, edge softmax, attention dropout and scatters each on its
 * device's own graphs. */
START_TEST(test_gat_cpu2)
{
    lt_batch_equivalence(LT_BATCH_GAT, "cpu:0-1", 2, LOOM_SAMPLER_DEVICES);
    lt_batch_equivalence(LT_BATCH_GAT, "cpu:0-3", 4, LOOM_SAMPLER_BUDGET);
}
END_TEST

/* Under a memory limit that the random sampler's largest share exceeds, random fails before its
 * first step, naming the share, its sizes and the limit; the plan sampler packs under the same
 * limit and trains the whole epoch. */
START_TEST(test_memory_limit_random_fails_plan_trains)
{
    loom_samples s;
    lt_make_samples(&s, 120, 3);
    loom_error err = LOOM_ERROR_INIT;
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = LOOM_SAMPLER_RANDOM;
    o.batch = 24;
    o.devices = 2;
    loom_sampler *rnd;
    ck_assert(loom_sampler_new(&s, NULL, s.count, &o, &rnd, &err) == LOOM_OK);
    ck_assert(loom_sampler_epoch(rnd, 0, &err) == LOOM_OK);
    int64_t most_n, most_e, at;
    int dev;
    loom_sampler_largest(rnd, &most_n, &most_e, &at, &dev);
    /* the limit: 85% of what the plan for the random epoch's largest shares holds (CPU devices
     * share the host's memory: the limit bounds the whole plan) */
    lt_batch_model probe;
    lt_batch_model_new(&probe, &s, "cpu:0-1", LT_BATCH_IN, 1);
    loom_bound b[2] = {{probe.in.nodes, 2 * most_n, most_n}, {probe.in.edges, 2 * most_e, most_e}};
    loom_memory mem;
    loom_program_set_source(probe.p, loom_batch_source_fn, NULL);
    ck_assert_msg(loom_program_memory_at(probe.p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, b, 2, &mem) == LOOM_OK, "%s", loom_program_error(probe.p));
    const int64_t limit = (int64_t)((double)mem.total * 0.85);
    lt_batch_model_free(&probe);

    lt_batch_model m;
    lt_batch_model_new(&m, &s, "cpu:0-1", LT_BATCH_IN, 1);
    loom_program_free(m.p); /* the same model under the limit */
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = loom_adam(0.01);
    t.memory_limit = limit;
    ck_assert_msg(loom_compile(m.g, m.loss, &t, &m.p) == LOOM_OK, "%s", loom_graph_error(m.g));
    ck_assert_int_eq(loom_batch_plan_epoch(m.p, rnd, &m.in, &err), LOOM_ERR_NOMEM);
    ck_assert_msg(strstr(err.msg, "largest shares") && strstr(err.msg, "nodes (step") && strstr(err.msg, "edges (step") &&
                      strstr(err.msg, "limit"),
                  "%s", err.msg);
    int64_t before;
    loom_program_losses(m.p, &before);
    ck_assert_int_eq(before, 0); /* nothing ran */

    loom_sampler_opts po = o;
    po.kind = LOOM_SAMPLER_PLAN;
    ck_assert_msg(loom_batch_fit_plan(m.p, LOOM_RUN_STEP, &s, &m.in, &po, &err) == LOOM_OK, "%s", err.msg);
    ck_assert(po.max_nodes > 0 && po.max_nodes < most_n);
    loom_sampler *plan;
    ck_assert_msg(loom_sampler_new(&s, NULL, s.count, &po, &plan, &err) == LOOM_OK, "%s", err.msg);
    int64_t n;
    double *l = lt_batch_train_parts(&m, &s, plan, 1, &n);
    ck_assert_int_eq(n, loom_sampler_steps(plan));
    loom_memory mm;
    ck_assert(loom_program_memory(m.p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &mm) == LOOM_OK);
    ck_assert_uint_le(mm.total, (uint64_t)limit);
    free(l);
    loom_sampler_free(plan);
    loom_sampler_free(rnd);
    lt_batch_model_free(&m);
    loom_samples_free(&s);
}
END_TEST

/* A source that feeds what its test case says, to see the feeder refuse it. */
typedef struct bad_feed {
    lt_batch_model *m;
    int mode;
} bad_feed;

static loom_status bad_source(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen)
{
    (void)msg;
    (void)msglen;
    bad_feed *b = ctx;
    if (step > 0) {
        *end = 1;
        return LOOM_OK;
    }
    static float x[2][4 * 5], ea[2][6 * 4], ey[2][6];
    static int32_t idx[2][6];
    loom_array xs[2], eas[2], eys[2], is[2];
    for (int d = 0; d < 2; d++) {
        xs[d] = (loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {4, 5}, .data = x[d]};
        eas[d] = (loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {6, 4}, .data = ea[d]};
        eys[d] = (loom_array){.dtype = LOOM_F32, .ndim = 1, .shape = {6}, .data = ey[d]};
        is[d] = (loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {6}, .data = idx[d]};
    }
    const loom_batch_inputs *in = &b->m->in;
    loom_status s;
    switch (b->mode) {
    case 0: /* the index inputs fed whole */
        if ((s = loom_feeder_parts(f, in->x, 2, xs)) || (s = loom_feeder_parts(f, in->edge_attr, 2, eas)) ||
            (s = loom_feeder_parts(f, in->edge_y, 2, eys)))
            return s;
        is[0].shape[0] = 12;
        if ((s = loom_feeder_dense(f, in->src, &is[0])))
            return s;
        return loom_feeder_dense(f, in->dst, &is[0]);
    case 1: /* three parts for two devices */
        return loom_feeder_parts(f, in->x, 3, (loom_array[]){xs[0], xs[1], xs[1]});
    case 2: /* a part over the part bound */
        xs[1].shape[0] = 10;
        return loom_feeder_parts(f, in->x, 2, xs);
    default: /* parts that disagree on N */
        if ((s = loom_feeder_parts(f, in->x, 2, xs)))
            return s;
        is[1].shape[0] = 6;
        eys[1].shape[0] = 5;
        if ((s = loom_feeder_parts(f, in->edge_attr, 2, eas)))
            return s;
        return loom_feeder_parts(f, in->edge_y, 2, eys);
    }
}

START_TEST(test_feeder_refusals)
{
    loom_samples s;
    lt_make_samples(&s, 8, 1);
    const char *want[] = {"input 'src' indexes the rows of N and is split over 2 devices: feed it by parts",
                          "input 'x' is on 2 devices, given 3 parts", "part 1: 10 rows, over N's part bound of 8",
                          "part 1: dynamic dim E is 5 in input 'edge_y' but 6 in another input's part"};
    for (int mode = 0; mode < 4; mode++) {
        lt_batch_model m;
        lt_batch_model_new(&m, &s, "cpu:0-1", LT_BATCH_IN, 1);
        loom_bound b[2] = {{m.in.nodes, 16, 8}, {m.in.edges, 24, 12}};
        ck_assert(loom_program_set_bounds(m.p, b, 2) == LOOM_OK);
        bad_feed bf = {.m = &m, .mode = mode};
        loom_program_set_source(m.p, bad_source, &bf);
        ck_assert(loom_program_run_steps(m.p, LOOM_RUN_STEP, 1) != LOOM_OK);
        ck_assert_msg(strstr(loom_program_error(m.p), want[mode]), "mode %d: %s", mode, loom_program_error(m.p));
        int64_t n;
        loom_program_losses(m.p, &n);
        ck_assert_int_eq(n, 0);
        lt_batch_model_free(&m);
    }
    loom_samples_free(&s);
}
END_TEST

/* The batch source and the plan sampler refuse what cannot work, naming it. */
START_TEST(test_batch_refusals)
{
    loom_samples s;
    lt_make_samples(&s, 20, 2);
    loom_error err = LOOM_ERROR_INIT;
    lt_batch_model m;
    lt_batch_model_new(&m, &s, "cpu:0-1", LT_BATCH_IN, 1);
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT; /* one share a step */
    loom_sampler *smp;
    loom_batch_source *src = NULL;
    ck_assert(loom_sampler_new(&s, NULL, s.count, &o, &smp, &err) == LOOM_OK);
    ck_assert_int_eq(loom_batch_source_new(m.p, &s, smp, &m.in, &src, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "the sampler deals 1 share a step but the program runs on 2 devices"), "%s", err.msg);
    ck_assert_ptr_null(src);
    loom_sampler_free(smp);
    o.devices = 2;
    ck_assert(loom_sampler_new(&s, NULL, s.count, &o, &smp, &err) == LOOM_OK);
    loom_batch_inputs bad = m.in;
    bad.edge_y = m.in.src; /* i32 where f32 labels belong */
    ck_assert_int_eq(loom_batch_source_new(m.p, &s, smp, &bad, &src, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "input edge_y ('src') is i32, a batch feeds it f32"), "%s", err.msg);
    loom_sampler_free(smp);
    lt_batch_model_free(&m);

    /* a limit that not even the largest sample's shares fit */
    lt_batch_model_new(&m, &s, "cpu:0-1", LT_BATCH_IN, 1);
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = loom_adam(0.01);
    loom_bound tiny[2] = {{m.in.nodes, 2, 1}, {m.in.edges, 2, 1}};
    ck_assert(loom_program_set_bounds(m.p, tiny, 2) == LOOM_OK);
    loom_memory need;
    ck_assert(loom_program_memory(m.p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &need) == LOOM_OK);
    loom_program_free(m.p);
    /* room for shares of a node (with the program's own copies of the parameters, which the limit
     * counts on CPU devices), not for those of the largest sample */
    t.memory_limit = (int64_t)need.total * 9 / 4;
    ck_assert_msg(loom_compile(m.g, m.loss, &t, &m.p) == LOOM_OK, "%s", loom_graph_error(m.g)); /* the graph keeps the bounds set */
    o.kind = LOOM_SAMPLER_PLAN;
    ck_assert_int_eq(loom_batch_fit_plan(m.p, LOOM_RUN_STEP, &s, &m.in, &o, &err), LOOM_ERR_NOMEM);
    ck_assert_msg(strstr(err.msg, "loom_batch_fit_plan: shares that hold the largest sample (") && strstr(err.msg, "do not fit"),
                  "%s", err.msg);
    lt_batch_model_free(&m);
    loom_samples_free(&s);
}
END_TEST

/* An input a data source feeds is fetchable once kept: after a step, x is that step's shares'
 * node features, device after device (on one device, on two, and on a mesh of four: row-major). */
START_TEST(test_fed_input_kept)
{
    loom_samples s;
    lt_make_samples(&s, 16, 8);
    loom_error err = LOOM_ERROR_INIT;
    static const char *const on[] = {NULL, "cpu:0-1", "cpu:0-3[2,2]"};
    static const int devices[] = {1, 2, 4};
    for (int c = 0; c < 3; c++) {
        const int ndev = devices[c];
        lt_batch_model m;
        lt_batch_model_new(&m, &s, on[c], LT_BATCH_IN, 1);
        ck_assert(loom_program_keep(m.p, m.in.x) == LOOM_OK);
        loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
        o.batch = 5;
        o.devices = ndev;
        loom_sampler *smp;
        loom_batch_source *src;
        ck_assert(loom_sampler_new(&s, NULL, s.count, &o, &smp, &err) == LOOM_OK);
        ck_assert(loom_sampler_epoch(smp, 0, &err) == LOOM_OK);
        ck_assert_msg(loom_batch_plan_epoch(m.p, smp, &m.in, &err) == LOOM_OK, "%s", err.msg);
        ck_assert(loom_batch_source_new(m.p, &s, smp, &m.in, &src, &err) == LOOM_OK);
        loom_batch_source_rewind(src, 1);
        ck_assert_msg(loom_batch_run(src, LOOM_RUN_STEP, 1, &err) == LOOM_OK, "%s", err.msg);
        loom_array x;
        ck_assert_msg(loom_program_fetch(m.p, m.in.x, &x) == LOOM_OK, "%s", loom_program_error(m.p));
        int64_t row = 0;
        for (int d = 0; d < ndev; d++) {
            int64_t n;
            const int64_t *ids = loom_sampler_share(smp, 1, d, &n);
            for (int64_t q = 0; q < n; q++)
                for (int64_t v = s.node_off[ids[q]]; v < s.node_off[ids[q] + 1]; v++, row++)
                    ck_assert(!memcmp((const float *)x.data + row * 5, s.x + v * 5, 5 * sizeof(float)));
        }
        ck_assert_int_eq(x.shape[0], row);
        loom_batch_source_free(src);
        loom_sampler_free(smp);
        lt_batch_model_free(&m);
    }
    loom_samples_free(&s);
}
END_TEST

/* loom_batch_inputs_make's inputs for each task, and loom_batch_graph_accuracy on one and two
 * devices against the host: the logits of a graph are the sums over its nodes of their first three
 * features, so its prediction is the argmax of those sums. */
START_TEST(test_inputs_make_and_graph_accuracy)
{
    loom_samples s;
    lt_make_samples(&s, 40, 5);
    loom_error err = LOOM_ERROR_INIT;
    /* what the host predicts */
    int64_t hits = 0;
    for (int64_t i = 0; i < s.count; i++) {
        double sum[3] = {0, 0, 0};
        for (int64_t v = s.node_off[i]; v < s.node_off[i + 1]; v++)
            for (int c = 0; c < 3; c++)
                sum[c] += s.x[v * 5 + c];
        int best = sum[1] > sum[0] ? 1 : 0;
        best = sum[2] > sum[best] ? 2 : best;
        hits += best == s.graph_y[i];
    }
    const double want = (double)hits / (double)s.count;
    ck_assert(want > 0 && want < 1); /* a measure that can be wrong both ways */
    for (int ndev = 1; ndev <= 2; ndev++) {
        loom_graph *g = loom_graph_new();
        if (ndev == 2) {
            loom_placement *pl = loom_placement_parse("cpu:0-1", &err);
            loom_graph_set_placement(g, pl);
            loom_placement_free(pl);
        }
        loom_batch_inputs in;
        loom_batch_inputs_make(g, &s, 6, LOOM_TASK_GRAPHS, &in);
        ck_assert(in.x && in.src && in.dst && in.node_graph && in.graph_y && !in.edge_attr && !in.edge_y && !in.edge_graph);
        ck_assert_str_eq(loom_tensor_name(in.graph_y), "graph_y");
        ck_assert_int_eq(loom_tensor_dim(in.x, 1), 5);
        loom_tensor *logits = loom_segment_sum(g, loom_slice(g, in.x, 1, 0, 3), in.node_graph, in.graphs);
        loom_tensor *loss = loom_softmax_cross_entropy(g, logits, in.graph_y, NULL);
        loom_program *p = NULL;
        ck_assert_msg(loom_compile(g, loss, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
        loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
        o.batch = 6;
        o.devices = ndev;
        double acc = -1;
        ck_assert_msg(loom_batch_graph_accuracy(p, logits, &s, &o, &in, LOOM_RUN_EVAL, &acc, &err) == LOOM_OK, "%s", err.msg);
        ck_assert_msg(fabs(acc - want) < 1e-12, "%d devices: accuracy %g, the host's %g", ndev, acc, want);
        loom_program_free(p);
        loom_graph_free(g);

        /* the edge task's inputs: features and labels of edges, no graphs */
        g = loom_graph_new();
        loom_batch_inputs_make(g, &s, 6, LOOM_TASK_EDGES, &in);
        ck_assert(in.x && in.edge_attr && in.src && in.dst && in.edge_y && !in.node_graph && !in.graph_y && in.graphs == 0);
        ck_assert_int_eq(loom_tensor_dim(in.edge_attr, 1), 4);
        loom_graph_free(g);
    }
    /* a dataset without graph labels is refused */
    int32_t *gy = s.graph_y;
    s.graph_y = NULL;
    loom_graph *g = loom_graph_new();
    loom_batch_inputs in;
    loom_batch_inputs_make(g, &s, 6, LOOM_TASK_EDGES, &in);
    loom_program *p = NULL;
    ck_assert(loom_compile(g, loom_bce_with_logits(g, loom_reshape(g, loom_slice(g, in.edge_attr, 1, 0, 1), loom_shape(in.edges)),
                                                   in.edge_y, 1.0), NULL, &p) == LOOM_OK);
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    double acc;
    ck_assert(loom_batch_graph_accuracy(p, in.x, &s, &o, &in, LOOM_RUN_EVAL, &acc, &err) == LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "no graph labels") != NULL, "%s", err.msg);
    loom_program_free(p);
    loom_graph_free(g);
    s.graph_y = gy;
    loom_samples_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_interaction_network_cpu4);
    tcase_add_test(tc, test_graph_batches_on_meshes);
    tcase_add_test(tc, test_interaction_network_cpu2_balance);
    tcase_add_test(tc, test_gin_cpu2);
    tcase_add_test(tc, test_gat_cpu2);
    tcase_add_test(tc, test_memory_limit_random_fails_plan_trains);
    tcase_add_test(tc, test_feeder_refusals);
    tcase_add_test(tc, test_batch_refusals);
    tcase_add_test(tc, test_fed_input_kept);
    tcase_add_test(tc, test_inputs_make_and_graph_accuracy);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
