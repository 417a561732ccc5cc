/* The cost model over ranks: the level of a placement across ranks (nodes) priced on the network
 * between them, the level within a rank on the device kind's figures; worked by hand on routes,
 * and seen in what SBP inference chooses for a bias gradient on 128 nodes of 8 GPUs (an
 * all-reduce of its partial sums, where the pricing of one bandwidth per device kind gathered the
 * activations it sums), under the built-in network and under one given by loom_train_opts.links. */
#include "harness.h"

#include <math.h>
#include <string.h>

#include "graphs/session/program.h"

static void near(double got, double want) { ck_assert_msg(fabs(got - want) <= 1e-9 * fabs(want) + 1e-15, "%.12g, want %.12g", got, want); }

static const loom_nd_sbp S0B = {.n = 2, .v = {{.kind = LOOM_SBP_SPLIT, .axis = 0}, {.kind = LOOM_SBP_BROADCAST}}};
static const loom_nd_sbp BB = {.n = 2, .v = {{.kind = LOOM_SBP_BROADCAST}, {.kind = LOOM_SBP_BROADCAST}}};
static const loom_nd_sbp PP = {.n = 2, .v = {{.kind = LOOM_SBP_PARTIAL_SUM}, {.kind = LOOM_SBP_PARTIAL_SUM}}};
static const loom_nd_sbp S0S0 = {.n = 2, .v = {{.kind = LOOM_SBP_SPLIT, .axis = 0}, {.kind = LOOM_SBP_SPLIT, .axis = 0}}};

/* GPUs, 128 nodes of 8: gathering over the nodes is a ring of 127 steps at the network's latency,
 * the node's 8 devices sending at once on its links; without ranks the same mesh is priced on the
 * device's own links, as before. */
START_TEST(test_level_across_ranks_on_the_network)
{
    loom__cost_model cm;
    loom__cost_default(&cm);
    const loom__cost_dev *d = &cm.dev[LOOM_DEVICE_CUDA];
    ck_assert_double_eq(d->net_bw, 400e9);
    ck_assert_double_eq(d->net_latency, 10e-6);
    const int mesh[2] = {128, 8};
    const double T = 1 << 30;
    loom__box_route r;
    double s = loom__box_route_plan(&S0B, &BB, mesh, T, 0, 1, d, &r);
    ck_assert_int_eq(r.nsteps, 1);
    ck_assert_int_eq(r.step[0].level, 0);
    ck_assert_int_eq(r.step[0].kind, LOOM__BOX_ALL_GATHER);
    near(r.terms[LOOM__TERM_NET_BOXES], 127);
    near(r.terms[LOOM__TERM_NET_BYTES], 8 * 127 / 128.0 * T);
    ck_assert_double_eq(r.terms[LOOM__TERM_BOXES], 0);
    near(s, 127 * 10e-6 + 8 * 127 / 128.0 * T / 400e9);
    s = loom__box_route_plan(&S0B, &BB, mesh, T, 0, 0, d, &r); /* a mesh of one process */
    ck_assert_double_eq(r.terms[LOOM__TERM_NET_BYTES], 0);
    near(s, 127 * 10e-6 + 127 / 128.0 * T / 150e9);
    /* a gradient's all-reduce over every device: a ring all-reduce within each node, then one
     * between the nodes with each device carrying an eighth, as a tree: 2 log2(128) = 14 steps
     * and 2 T/8 from a device (0.14 ms + 5.37 ms), where a ring's 254 steps and 2 (127/128) T/8
     * take 2.54 ms + 5.33 ms */
    loom__box_route c[LOOM__BOX_ROUTES];
    int nc = loom__box_routes(&PP, &BB, mesh, T, 0, 1, d, c);
    ck_assert_int_ge(nc, 1);
    ck_assert_int_eq(c[0].flat, 1);
    ck_assert_int_eq(c[0].step[0].tree, 1);
    near(c[0].terms[LOOM__TERM_BOXES], 14);
    near(c[0].terms[LOOM__TERM_BOX_BYTES], 2 * 7 / 8.0 * T);
    near(c[0].terms[LOOM__TERM_NET_BOXES], 14);
    near(c[0].terms[LOOM__TERM_NET_BYTES], 8 * 2 * T / 8);
    near(c[0].seconds, 14 * 10e-6 + 2 * 7 / 8.0 * T / 150e9 + 14 * 10e-6 + 2 * T / 400e9);
    char str[256];
    loom__box_route_str(&c[0], str, sizeof str);
    ck_assert_str_eq(str, "all-reduce P -> B over all 1024 devices, a tree between the nodes");
    /* on 4 nodes a tree saves 2 of 6 steps, and a ring's bytes win past 2 MB a device */
    nc = loom__box_routes(&PP, &BB, (const int[2]){4, 8}, T, 0, 1, d, c);
    ck_assert_int_eq(c[0].step[0].tree, 0);
    near(c[0].terms[LOOM__TERM_NET_BOXES], 6);
    near(c[0].terms[LOOM__TERM_NET_BYTES], 8 * 2 * 3 / 4.0 * T / 8);
    /* the link model's network replaces the figures: 4 x 100 Gb/s, 20 us a step */
    loom__cost_dev slow = *d;
    slow.net_bw = 4 * 12.5e9;
    slow.net_latency = 20e-6;
    near(loom__box_route_plan(&S0B, &BB, mesh, T, 0, 1, &slow, &r), 127 * 20e-6 + 8 * 127 / 128.0 * T / 50e9);
}
END_TEST

/* Between N nodes an all-reduce is a ring (2 (N-1) steps, 2 (N-1)/N S from a device) or a double
 * binary tree (2 floor(log2 N) steps, 2 S), whichever takes less; the other collectives are rings.
 * Here 8 devices a node at once on 400 GB/s, 10 us a step. */
START_TEST(test_tree_or_ring)
{
    const double a = 10e-6, bw = 400e9;
    loom__net_coll c = loom__net_coll_of(LOOM__BOX_ALL_REDUCE, 1000, 128, 8, a, bw);
    ck_assert_int_eq(c.tree, 1);
    ck_assert_int_eq(c.steps, 14);
    near(c.bytes, 2000);
    near(c.seconds, 14 * a + 8 * 2000 / bw);
    /* 4 nodes: the tree's 4 steps against the ring's 6 save 2 a = 20 us; its bytes, 2 S against
     * 1.5 S, cost 8 x 0.5 S / bw more: equal at S = 2 MB */
    c = loom__net_coll_of(LOOM__BOX_ALL_REDUCE, 1.9e6, 4, 8, a, bw);
    ck_assert_int_eq(c.tree, 1);
    ck_assert_int_eq(c.steps, 4);
    near(c.seconds, 4 * a + 8 * 2 * 1.9e6 / bw);
    c = loom__net_coll_of(LOOM__BOX_ALL_REDUCE, 2.1e6, 4, 8, a, bw);
    ck_assert_int_eq(c.tree, 0);
    ck_assert_int_eq(c.steps, 6);
    near(c.bytes, 1.5 * 2.1e6);
    near(c.seconds, 6 * a + 8 * 1.5 * 2.1e6 / bw);
    /* 3 nodes: a tree of depth 1, 2 steps; 2 nodes: the ring's 2 steps and half the bytes */
    ck_assert_int_eq(loom__net_coll_of(LOOM__BOX_ALL_REDUCE, 1000, 3, 8, a, bw).steps, 2);
    c = loom__net_coll_of(LOOM__BOX_ALL_REDUCE, 1, 2, 8, a, bw);
    ck_assert_int_eq(c.tree, 0);
    ck_assert_int_eq(c.steps, 2);
    near(c.bytes, 1);
    /* no latency: the ring; a gather: a ring of 127 steps; one node: nothing */
    ck_assert_int_eq(loom__net_coll_of(LOOM__BOX_ALL_REDUCE, 1000, 128, 8, 0, bw).tree, 0);
    c = loom__net_coll_of(LOOM__BOX_ALL_GATHER, 1000, 128, 8, a, bw);
    ck_assert_int_eq(c.tree, 0);
    ck_assert_int_eq(c.steps, 127);
    c = loom__net_coll_of(LOOM__BOX_ALL_REDUCE, 1000, 1, 8, a, bw);
    ck_assert_int_eq(c.steps, 0);
    ck_assert_double_eq(c.seconds, 0);
}
END_TEST

/* CPU devices over ranks share no memory across them: the level across is on the network too, and
 * a step within a rank is one machine's row alone. */
START_TEST(test_cpu_over_ranks)
{
    loom__cost_model cm;
    loom__cost_default(&cm);
    const loom__cost_dev *d = &cm.dev[LOOM_DEVICE_CPU];
    const int mesh[2] = {2, 2};
    const double T = 1 << 20;
    loom__box_route r;
    loom__box_route_plan(&S0B, &BB, mesh, T, 0, 1, d, &r);
    ck_assert_int_eq(r.nsteps, 1);
    near(r.terms[LOOM__TERM_NET_BOXES], 1);
    near(r.terms[LOOM__TERM_NET_BYTES], 2 * T / 2);
    ck_assert_double_eq(r.terms[LOOM__TERM_BOX_BYTES], 0);
    loom__box_route_plan(&S0B, &BB, mesh, T, 0, 0, d, &r); /* one process: shared memory */
    ck_assert_double_eq(r.terms[LOOM__TERM_NET_BYTES], 0);
    ck_assert_double_gt(r.terms[LOOM__TERM_BOX_BYTES], 0);
    /* (S(0), S(0)) -> (S(0), B): an all-gather within each row; a machine holds one row over
     * ranks, both rows in one process */
    const loom_nd_sbp from = S0S0;
    double one = loom__box_bytes(LOOM__BOX_ALL_GATHER, T / 2, 2, d);
    loom__box_route_plan(&from, &S0B, mesh, T, 0, 1, d, &r);
    near(r.terms[LOOM__TERM_BOX_BYTES], 2 * one);
    loom__box_route_plan(&from, &S0B, mesh, T, 0, 0, d, &r);
    near(r.terms[LOOM__TERM_BOX_BYTES], 2 * 2 * one);
}
END_TEST

/* A wide hidden layer on `place` (plan of rank 1): x [rows, 16] split by rows over every device,
 * hidden.bias's gradient the sum over the rows of a [rows, 512] f32 activation gradient, fc.bias's
 * of a [rows, 4] one. Returns the program; *g its graph. */
static loom_program *wide(loom_graph **g, const char *place, int64_t rows, const loom_link_model *links)
{
    *g = lt_graph_on(place, 3);
    loom_tensor *x = loom_input(*g, "x", LOOM_F32, loom_shape(rows, 16));
    loom_tensor *y = loom_input(*g, "y", LOOM_I32, loom_shape(rows));
    loom_tensor *h = loom_relu(*g, loom_nn_linear(*g, "hidden", x, 512, 1));
    loom_tensor *loss = loom_softmax_cross_entropy(*g, loom_nn_linear(*g, "fc", h, 4, 1), y, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    o.plan_only = 1;
    o.plan_rank = 1;
    o.links = links;
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(*g, loss, &o, &p) == LOOM_OK, "%s", loom_graph_error(*g));
    return p;
}

/* The SBP of the gradient the update of parameter `name` applies. */
static loom_nd_sbp grad_sbp(loom_program *p, loom_graph *g, const char *name)
{
    const loom_tensor *w = loom_graph_find(g, name);
    for (int id = 0; w && id < p->n; id++)
        if (g->t[id]->op == LOOM_OP_SGD_UPDATE && g->t[id]->src[0] == w)
            return loom__sbp_plan_nd(&p->sbp, g->t[id]->src[1]->id);
    ck_abort_msg("no update of %s", name);
    return (loom_nd_sbp){0};
}

/* On @0-127/cuda:0-7 (rows 524288) a bias gradient is summed where its activation lies and
 * all-reduced, between the nodes as a tree of 14 steps (0.14 ms at 10 us) of a few bytes. Gathering
 * the activation between the nodes costs 127 ring steps (1.27 ms) and its bytes: for hidden.bias
 * 1 GiB (each node sending 8 x 127/128 x 1/8 of it: 2.7 ms on 400 GB/s), which priced on the
 * device's own links (150 GB/s each, the gather 2.2 ms) was chosen; for fc.bias 8 MB (20 us),
 * which against a ring all-reduce's 254 steps (2.54 ms) was chosen. */
START_TEST(test_bias_gradient_all_reduced)
{
    loom_graph *g;
    loom_program *p = wide(&g, "@0-127/cuda:0-7", 524288, NULL);
    const char *bias[] = {"hidden.bias", "fc.bias"};
    for (int i = 0; i < 2; i++) {
        loom_nd_sbp s = grad_sbp(p, g, bias[i]);
        char b[64];
        loom_nd_sbp_str(&s, b, sizeof b);
        ck_assert_msg(s.v[0].kind == LOOM_SBP_PARTIAL_SUM, "%s's gradient is %s", bias[i], b);
    }
    loom_traffic t;
    ck_assert_int_eq(loom_program_traffic(p, 1, NULL, &t), LOOM_OK);
    ck_assert_int_eq(t.count[LOOM_COLL_ALL_REDUCE], 4); /* the weights' and biases' gradients */
    ck_assert_int_eq(t.net_trees[LOOM_COLL_ALL_REDUCE], 4);
    /* the node sends neither activation (1.07 GB, 8.3 MB) */
    ck_assert_double_eq(t.node_bytes[LOOM_COLL_ALL_GATHER], 0);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* loom_train_opts.links is the network inference prices. On 2 nodes (rows 16384, hidden.bias's
 * activation gradient 32 MB) an all-reduce takes 2 ring steps between the nodes and gathering the
 * activation 1, plus the 16 MB each node sends (40 us on 400 GB/s): at 10 us a step the gradient
 * is all-reduced, at 80 us the activation is gathered, the gradient whole on level 0. A bad model
 * is refused. */
START_TEST(test_links_priced)
{
    loom_link_model m = LOOM_LINK_MODEL_INIT;
    for (int k = 0; k < 2; k++) {
        m.node_latency = k ? 80e-6 : 10e-6;
        loom_graph *g;
        loom_program *p = wide(&g, "@0-1/cuda:0-7", 16384, &m);
        loom_nd_sbp s = grad_sbp(p, g, "hidden.bias");
        char b[64];
        loom_nd_sbp_str(&s, b, sizeof b);
        ck_assert_msg(s.v[0].kind == (k ? LOOM_SBP_BROADCAST : LOOM_SBP_PARTIAL_SUM), "at %g s a step hidden.bias's gradient is %s",
                      m.node_latency, b);
        ck_assert_double_eq(p->cost.dev[LOOM_DEVICE_CUDA].net_latency, m.node_latency);
        ck_assert_double_eq(p->cost.dev[LOOM_DEVICE_CPU].net_bw, 400e9);
        loom_program_free(p);
        loom_graph_free(g);
    }
    m = LOOM_LINK_MODEL_INIT;
    m.node_links = 0;
    loom_graph *g = lt_graph_on("@0-1/cuda:0-1", 3);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(64, 4));
    loom_tensor *loss = loom_mean(g, loom_nn_linear(g, "fc", x, 2, 1), 3u, 0);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    o.plan_only = 1;
    o.links = &m;
    loom_program *q = NULL;
    ck_assert_int_eq(loom_compile(g, loss, &o, &q), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(loom_graph_error(g), "loom_compile: links: 0 of a node"), "%s", loom_graph_error(g));
    loom_graph_free(g);
}
END_TEST

/* The predicted step over ranks is a rank's: its devices run alike with every other rank's, so a
 * device acts as often on 128 ranks as on 2 (counted over every rank, 64 times as often). */
START_TEST(test_predicted_step_is_a_ranks)
{
    double ops[2], step[2];
    const char *place[2] = {"@0-1/cuda:0-7", "@0-127/cuda:0-7"};
    for (int k = 0; k < 2; k++) {
        loom_graph *g = lt_graph_on(place[k], 3);
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(65536, 16));
        loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(65536));
        loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc", x, 4, 1), y, NULL);
        loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
        o.optimizer = loom_sgd(0.1);
        o.plan_only = 1;
        loom_program *p = NULL;
        ck_assert_msg(loom_compile(g, loss, &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
        loom__prediction pr;
        ck_assert_int_eq(loom__program_predict(p, &p->cost, &pr), 0);
        ops[k] = pr.terms[LOOM__TERM_OPS];
        step[k] = pr.seconds;
        loom_program_free(p);
        loom_graph_free(g);
    }
    ck_assert_double_gt(ops[0], 0);
    ck_assert_double_eq(ops[1], ops[0]);
    ck_assert_double_lt(step[1], 0.1); /* a few ring all-reduces over 128 nodes, not seconds */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("net_cost");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_level_across_ranks_on_the_network);
    tcase_add_test(tc, test_tree_or_ring);
    tcase_add_test(tc, test_cpu_over_ranks);
    tcase_add_test(tc, test_bias_gradient_all_reduced);
    tcase_add_test(tc, test_links_priced);
    tcase_add_test(tc, test_predicted_step_is_a_ranks);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
