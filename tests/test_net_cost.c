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
    /* a gradient's all-reduce over every device: within each node, then between the nodes with
     * each device carrying an eighth */
    loom__box_route c[LOOM__BOX_ROUTES];
    int nc = loom__box_routes(&PP, &BB, mesh, T, 0, 1, d, c);
    ck_assert_int_ge(nc, 1);
    ck_assert_int_eq(c[0].flat, 1);
    near(c[0].terms[LOOM__TERM_BOXES], 14);
    near(c[0].terms[LOOM__TERM_BOX_BYTES], 2 * 7 / 8.0 * T);
    near(c[0].terms[LOOM__TERM_NET_BOXES], 254);
    near(c[0].terms[LOOM__TERM_NET_BYTES], 8 * 2 * 127 / 128.0 * T / 8);
    /* the link model's network replaces the figures: 4 x 100 Gb/s, 20 us a step */
    loom__cost_dev slow = *d;
    slow.net_bw = 4 * 12.5e9;
    slow.net_latency = 20e-6;
    near(loom__box_route_plan(&S0B, &BB, mesh, T, 0, 1, &slow, &r), 127 * 20e-6 + 8 * 127 / 128.0 * T / 50e9);
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

/* A wide hidden layer on @0-127/cuda:0-7 (plan of rank 5): x [524288, 16] split by rows over every
 * device, hidden.bias's gradient the sum over the rows of a [524288, 512] f32 activation gradient
 * (1 GiB). Returns the program; *g its graph. */
static loom_program *wide(loom_graph **g, const loom_link_model *links)
{
    *g = lt_graph_on("@0-127/cuda:0-7", 3);
    loom_tensor *x = loom_input(*g, "x", LOOM_F32, loom_shape(524288, 16));
    loom_tensor *y = loom_input(*g, "y", LOOM_I32, loom_shape(524288));
    loom_tensor *h = loom_relu(*g, loom_nn_linear(*g, "hidden", x, 512, 1));
    loom_tensor *loss = loom_softmax_cross_entropy(*g, loom_nn_linear(*g, "fc", h, 4, 1), y, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    o.plan_only = 1;
    o.plan_rank = 5;
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

/* The bias gradient is summed where its activation lies and all-reduced; gathering the activation
 * between the nodes (1 GiB, each node sending 8 x 127/128 of an eighth of it, 2.7 ms on 400 GB/s
 * and 127 ring steps) costs more than the all-reduce's 254 ring steps of a few bytes. Priced on
 * the device's own links (150 GB/s each, the gather 2.2 ms), it was gathered: (B, S(0)). */
START_TEST(test_bias_gradient_all_reduced)
{
    loom_graph *g;
    loom_program *p = wide(&g, NULL);
    loom_nd_sbp s = grad_sbp(p, g, "hidden.bias");
    char b[64];
    loom_nd_sbp_str(&s, b, sizeof b);
    ck_assert_msg(s.v[0].kind == LOOM_SBP_PARTIAL_SUM, "hidden.bias's gradient is %s", b);
    loom_traffic t;
    ck_assert_int_eq(loom_program_traffic(p, 5, NULL, &t), LOOM_OK);
    ck_assert_int_ge(t.count[LOOM_COLL_ALL_REDUCE], 3); /* hidden.weight, hidden.bias, fc.weight */
    /* the node no longer sends the activation's 8 x 127/128 x 1/8 of 1 GiB (1.07 GB) */
    ck_assert_double_lt(t.node_bytes[LOOM_COLL_ALL_GATHER], 0.2e9);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* loom_train_opts.links is the network inference prices: with 80 us a ring step between the nodes,
 * the all-reduce's 254 steps (20 ms) cost more than gathering the activation (127 steps and
 * 1.07 GB: 13 ms), and the gradient is gathered whole on level 0. A bad model is refused. */
START_TEST(test_links_priced)
{
    loom_link_model m = LOOM_LINK_MODEL_INIT;
    m.node_latency = 80e-6;
    loom_graph *g;
    loom_program *p = wide(&g, &m);
    loom_nd_sbp s = grad_sbp(p, g, "hidden.bias");
    char b[64];
    loom_nd_sbp_str(&s, b, sizeof b);
    ck_assert_msg(s.v[0].kind == LOOM_SBP_BROADCAST, "hidden.bias's gradient is %s", b);
    ck_assert_double_eq(p->cost.dev[LOOM_DEVICE_CUDA].net_latency, 80e-6);
    ck_assert_double_eq(p->cost.dev[LOOM_DEVICE_CPU].net_bw, 400e9);
    loom_program_free(p);
    loom_graph_free(g);
    m = LOOM_LINK_MODEL_INIT;
    m.node_links = 0;
    g = lt_graph_on("@0-1/cuda:0-1", 3);
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
    tcase_add_test(tc, test_cpu_over_ranks);
    tcase_add_test(tc, test_bias_gradient_all_reduced);
    tcase_add_test(tc, test_links_priced);
    tcase_add_test(tc, test_predicted_step_is_a_ranks);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
