/* The plan of one rank of a job (loom_train_opts.plan_only): compiled without the job, on a machine
 * without GPUs, for placements of GPUs over many ranks; its tasks grow with the rank's devices, not
 * with the ranks; the traffic it predicts (loom_program_traffic) against the formulas worked by
 * hand; and what it refuses. */
#define _GNU_SOURCE /* open_memstream */
#include "harness.h"

#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/plan/plan.h"
#include "graphs/session/program.h"

/* A data-parallel linear classifier: x [65536, 16] split by rows, one weight [16, 4] (256 bytes
 * of f32) whose gradient is the step's one all-reduce; its loss. With a second stage (not NULL),
 * a pipeline: a hidden layer of 8 there, moved to the second stage for the weight [8, 4]. */
static loom_tensor *classifier(loom_graph *g, const loom_placement *stage2)
{
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(65536, 16));
    if (stage2) {
        x = loom_to_placement(g, loom_relu(g, loom_nn_linear(g, "hidden", x, 8, 1)), stage2);
        loom_graph_set_placement(g, stage2);
    }
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(65536));
    return loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc", x, 4, 0), y, NULL);
}

/* The classifier on placement ("A|B": a pipeline from A to B), compiled as rank `rank`
 * (plan_only), or to run (rank -1). */
static loom_status compile_as(loom_graph **gp, const char *placement, int rank, loom_program **p)
{
    char first[64];
    const char *bar = strchr(placement, '|');
    snprintf(first, sizeof first, "%.*s", bar ? (int)(bar - placement) : (int)strlen(placement), placement);
    loom_graph *g = *gp = lt_graph_on(first, 0);
    loom_placement *stage2 = bar ? loom_placement_parse(bar + 1, NULL) : NULL;
    ck_assert(!bar || stage2);
    loom_tensor *loss = classifier(g, stage2);
    loom_placement_free(stage2);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    o.plan_only = rank >= 0;
    o.plan_rank = rank;
    return loom_compile(g, loss, &o, p);
}

/* The traffic of rank `rank` compiled alone on placement. */
static loom_traffic traffic_of(const char *placement, int rank)
{
    loom_graph *g;
    loom_program *p = NULL;
    ck_assert_msg(compile_as(&g, placement, rank, &p) == LOOM_OK, "%s: %s", placement, loom_graph_error(g));
    loom_traffic t;
    ck_assert_msg(loom_program_traffic(p, rank, NULL, &t) == LOOM_OK, "%s", loom_program_error(p));
    loom_program_free(p);
    loom_graph_free(g);
    return t;
}

START_TEST(test_tasks_grow_with_the_rank_alone)
{
    loom_traffic a = traffic_of("@0-15/cuda:0-7", 5), b = traffic_of("@0-127/cuda:0-7", 5);
    ck_assert_int_eq(a.ndevices, 8);
    ck_assert_int_eq(b.ndevices, 8);
    ck_assert_int_eq(b.nodes, 128);
    ck_assert_int_eq(b.per_node, 8);
    ck_assert_int_eq(a.ntasks, b.ntasks); /* 16 ranks or 128: the same tasks on rank 5 */
    ck_assert_int_eq(traffic_of("@0-127/cuda:0-7", 127).ntasks, b.ntasks);
    /* linear in the rank's devices: the host's tasks, and as many for each device */
    int t2 = traffic_of("@0-127/cuda:0-1", 5).ntasks, t4 = traffic_of("@0-127/cuda:0-3", 5).ntasks;
    ck_assert_int_gt(t4, t2);
    ck_assert_int_eq(b.ntasks - t4, 2 * (t4 - t2));
}
END_TEST

/* The text of p's plan of a step (loom_program_write_plan), malloc'd. */
static char *plan_text(loom_program *p)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(loom_program_write_plan(p, LOOM_RUN_STEP, LOOM_PLAN_TEXT, f), LOOM_OK);
    fclose(f);
    return buf;
}

/* Where the job is one rank, the plan of that rank is the plan: the same tasks, registers and
 * memory, line for line, as a program compiled to run (1-D, and a 2-D placement over rank 0). */
START_TEST(test_one_rank_is_the_whole_plan)
{
    const char *placements[] = {"cpu:0-3", "@0/cpu:0-3", "cpu:0-3[2,2]"};
    for (size_t i = 0; i < sizeof placements / sizeof *placements; i++) {
        loom_graph *g, *g1;
        loom_program *p = NULL, *p1 = NULL;
        ck_assert_int_eq(compile_as(&g1, placements[i], 0, &p1), LOOM_OK);
        ck_assert_int_eq(compile_as(&g, placements[i], -1, &p), LOOM_OK);
        char *whole = plan_text(p), *one = plan_text(p1);
        ck_assert_msg(strlen(whole) > 1000 && !strcmp(whole, one), "%s: the plan of rank 0 differs:\n%s\n---\n%s", placements[i], one, whole);
        free(whole);
        free(one);
        loom_program_free(p);
        loom_program_free(p1);
        loom_graph_free(g);
        loom_graph_free(g1);
    }
}
END_TEST

/* The plan of every rank of p (a running program's plan, which a job of several ranks compiles on
 * each), built here from a program compiled as one rank. */
static loom__plan *whole_plan(loom_program *p)
{
    loom_status st;
    loom__plan_src src = loom__program_plan_src(p);
    src.rank = -1;
    loom__plan *pl = loom__plan_build(&src, LOOM_RUN_STEP, p->keep, p->regst_num, &st);
    ck_assert_msg(pl != NULL, "%s", loom_program_error(p));
    return pl;
}

/* The host tasks of the whole plan that a plan of rank r holds: the source, and the sinks of the
 * tensors with a part on r. */
static int host_on(const loom__plan *whole, int r)
{
    int n = 0;
    for (int k = 0; k < whole->ntasks; k++) {
        const loom__task *t = &whole->task[k];
        if (t->device != LOOM__HOST)
            continue;
        int here = t->kind == LOOM__TASK_SOURCE, place = t->tensor >= 0 ? whole->g->t[t->tensor]->place : 0;
        for (int j = 0; !here && j < whole->place_n[place]; j++)
            here = whole->dev_rank[whole->place_dev[place][j]] == r;
        n += here;
    }
    return n;
}

/* Over several ranks, the plan of rank r is the whole plan's tasks on r's devices, in its order:
 * the same kinds, tensors, devices, parts and register sizes, and each device's memory plan (and
 * on GPUs of one rank, which this machine need not have, the whole plan). */
START_TEST(test_each_rank_is_its_part_of_the_whole_plan)
{
    const char *placements[] = {"@0-2/cpu:0-1", "@0,3,5/cpu:1-2", "@0-3/cpu:0", "cuda:0-3", "@0-1/cpu:0-1|@2/cpu:0-2"};
    for (size_t i = 0; i < sizeof placements / sizeof *placements; i++) {
        loom_graph *g0;
        loom_program *p0 = NULL;
        ck_assert_int_eq(compile_as(&g0, placements[i], 0, &p0), LOOM_OK);
        loom__plan *whole = whole_plan(p0);
        const int nranks[] = {3, 6, 4, 1, 3};
        ck_assert_int_eq(whole->nranks, nranks[i]);
        int seen = 0, host = 0; /* device tasks of the whole plan seen in the ranks' plans; host tasks */
        for (int k = 0; k < whole->ntasks; k++)
            host += whole->task[k].device == LOOM__HOST;
        for (int r = 0; r < whole->nranks; r++) {
            int on = 0;
            for (int d = 0; d < whole->ndev; d++)
                on |= whole->dev_rank[d] == r;
            if (!on)
                continue;
            loom_graph *g;
            loom_program *p = NULL;
            ck_assert_int_eq(compile_as(&g, placements[i], r, &p), LOOM_OK);
            const loom__plan *pl = loom__program_plan_of(p, LOOM_RUN_STEP);
            ck_assert_ptr_nonnull(pl);
            int k = 0, own_host = 0;
            for (int j = 0; j < pl->ntasks; j++) {
                const loom__task *a = &pl->task[j];
                if (a->device == LOOM__HOST) {
                    own_host++;
                    continue;
                }
                while (k < whole->ntasks && (whole->task[k].device == LOOM__HOST || whole->dev_rank[whole->task[k].device] != r))
                    k++;
                ck_assert_msg(k < whole->ntasks, "%s rank %d: task %d is not in the whole plan", placements[i], r, j);
                const loom__task *b = &whole->task[k++];
                const loom__regst *ra = &pl->regst[a->out[0]], *rb = &whole->regst[b->out[0]];
                ck_assert_msg(a->kind == b->kind && a->tensor == b->tensor && pl->dev_index[a->device] == whole->dev_index[b->device] &&
                                  a->chain_pos == b->chain_pos && ra->part == rb->part && ra->bytes == rb->bytes,
                              "%s rank %d: task %d differs from the whole plan's %d", placements[i], r, j, k - 1);
                seen++;
            }
            ck_assert_int_eq(own_host, host_on(whole, r)); /* the source, the sinks of tensors with parts here */
            for (int d = 0; d < pl->ndev; d++) {
                int w = 0;
                while (!(whole->dev_rank[w] == r && whole->dev_index[w] == pl->dev_index[d]))
                    w++;
                const loom__dev_mem *ma = &pl->mem[d], *mb = &whole->mem[w];
                ck_assert_msg(!memcmp(ma, mb, sizeof *ma), "%s rank %d device %d: memory %zu %zu %zu %zu, the whole plan's %zu %zu %zu %zu",
                              placements[i], r, d, ma->shared, ma->unshared, ma->own, ma->params, mb->shared, mb->unshared, mb->own, mb->params);
            }
            loom_program_free(p);
            loom_graph_free(g);
        }
        ck_assert_int_eq(seen, whole->ntasks - host); /* every device task, on one rank */
        loom__plan_free(whole);
        loom_program_free(p0);
        loom_graph_free(g0);
    }
}
END_TEST

static void near(double got, double want) { ck_assert_msg(fabs(got - want) <= 1e-9 * fabs(want) + 1e-15, "%.12g, want %.12g", got, want); }

START_TEST(test_traffic_by_hand)
{
    const double T = 16 * 4 * 4; /* the weight's gradient, bytes */
    /* one node of 8 GPUs: a ring all-reduce, each device sending 2 (8-1)/8 T over 14 ring steps */
    loom_traffic t = traffic_of("cuda:0-7", 0);
    ck_assert_int_eq(t.count[LOOM_COLL_ALL_REDUCE], 1);
    near(t.gpu_bytes[LOOM_COLL_ALL_REDUCE], 8 * 2 * 7 / 8.0 * T);
    near(t.node_bytes[LOOM_COLL_ALL_REDUCE], 0);
    near(t.seconds[LOOM_COLL_ALL_REDUCE], 2 * 7 / 8.0 * T / 450e9 + 14 * 3e-6);
    for (int c = LOOM_COLL_ALL_GATHER; c < LOOM_COLL_COUNT; c++)
        ck_assert_int_eq(t.count[c], 0);
    ck_assert_int_eq(t.net_trees[LOOM_COLL_ALL_REDUCE] + t.net_rings[LOOM_COLL_ALL_REDUCE], 0); /* nothing between nodes */
    /* 128 nodes of 8: (P, P) -> (B, B) hierarchically (the route through S(0) on level 1): a
     * reduce-scatter in each node (7/8 T from a device, 7 steps), an all-reduce of its eighth
     * between the nodes, an all-gather in each node (7/8 T, 7 steps); one boxing, an all-reduce.
     * Between the nodes a tree: 2 T/8 from a device (the node's 8 at once on its 8 x 50 GB/s) and
     * 2 log2(128) = 14 steps, 0.14 ms, where a ring's 254 steps take 2.54 ms for 2 (127/128) T/8 */
    t = traffic_of("@0-127/cuda:0-7", 5);
    ck_assert_int_eq(t.count[LOOM_COLL_ALL_REDUCE], 1);
    ck_assert_int_eq(t.net_trees[LOOM_COLL_ALL_REDUCE], 1);
    ck_assert_int_eq(t.net_rings[LOOM_COLL_ALL_REDUCE], 0);
    const double in_node = 2 * 7 / 8.0 * T, out = 2 * T / 8, ring_out = 2 * 127 / 128.0 * T / 8; /* a device's */
    near(t.gpu_bytes[LOOM_COLL_ALL_REDUCE], 8 * in_node);
    near(t.node_bytes[LOOM_COLL_ALL_REDUCE], 8 * out);
    near(t.seconds[LOOM_COLL_ALL_REDUCE], in_node / 450e9 + 14 * 3e-6 + 8 * out / 400e9 + 14 * 10e-6);
    for (int c = LOOM_COLL_ALL_GATHER; c < LOOM_COLL_COUNT; c++)
        ck_assert_int_eq(t.count[c], 0);
    /* another link model: 4 x 200 Gb/s a node */
    loom_link_model m = LOOM_LINK_MODEL_INIT;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_link_model_parse("4x200Gb/s", "300GB/s", &m, &e), LOOM_OK);
    ck_assert_int_eq(m.node_links, 4);
    near(m.link_bw, 25e9);
    near(m.gpu_bw, 300e9);
    loom_graph *g;
    loom_program *p = NULL;
    ck_assert_int_eq(compile_as(&g, "@0-127/cuda:0-7", 5, &p), LOOM_OK);
    ck_assert_int_eq(loom_program_traffic(p, 5, &m, &t), LOOM_OK);
    near(t.seconds[LOOM_COLL_ALL_REDUCE], in_node / 300e9 + 14 * 3e-6 + 8 * out / 100e9 + 14 * 10e-6);
    /* no latency between the nodes: the ring, sending less, is the cheaper */
    m.node_latency = 0;
    ck_assert_int_eq(loom_program_traffic(p, 5, &m, &t), LOOM_OK);
    ck_assert_int_eq(t.net_trees[LOOM_COLL_ALL_REDUCE], 0);
    ck_assert_int_eq(t.net_rings[LOOM_COLL_ALL_REDUCE], 1);
    near(t.node_bytes[LOOM_COLL_ALL_REDUCE], 8 * ring_out);
    near(t.seconds[LOOM_COLL_ALL_REDUCE], in_node / 300e9 + 14 * 3e-6 + 8 * ring_out / 100e9);
    /* what it refuses: another rank's traffic, a bad model; running */
    ck_assert_int_eq(loom_program_traffic(p, 4, &m, &t), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(loom_program_error(p), "rank 4 holds no device of the plan"), "%s", loom_program_error(p));
    m.gpu_bw = 0;
    ck_assert_int_eq(loom_program_traffic(p, 5, &m, &t), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_STEP), LOOM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(loom_program_error(p), "plan of rank 5 alone"), "%s", loom_program_error(p));
    loom_program_free(p);
    loom_graph_free(g);
    ck_assert_int_eq(loom_link_model_parse("8x400Gbps", NULL, &m, &e), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(e.msg, "'8x400Gbps': expected [COUNTx]RATE"), "%s", e.msg);
    ck_assert_int_eq(loom_link_model_parse("0x400Gb/s", NULL, &m, &e), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_link_model_parse(NULL, "-1GB/s", &m, &e), LOOM_ERR_INVALID);
}
END_TEST

START_TEST(test_refusals)
{
    struct {
        const char *placement;
        int rank;
        loom_status st;
        const char *msg;
    } cases[] = {
        {"@0-15/cuda:0-7", 16, LOOM_ERR_INVALID, "plan_rank 16 holds no device of the graph's placements (the first: @0-15/cuda:0-7)"},
        {"@2,4/cuda:0-7", 3, LOOM_ERR_INVALID, "plan_rank 3 holds no device"},
        {"@0-1024/cuda:0-63", 0, LOOM_ERR_UNSUPPORTED, "a placement of 65600 devices; a graph's placements hold at most 65536"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        loom_graph *g;
        loom_program *p = NULL;
        ck_assert_int_eq(compile_as(&g, cases[i].placement, cases[i].rank, &p), cases[i].st);
        ck_assert_ptr_null(p);
        ck_assert_msg(strstr(loom_graph_error(g), cases[i].msg), "%s", loom_graph_error(g));
        loom_graph_free(g);
    }
    loom_graph *g = lt_graph_on("@0-15/cuda:0-7", 0);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    loom_program *p = NULL;
    o.plan_only = 1;
    o.plan_rank = -1;
    ck_assert_int_eq(loom_compile(g, classifier(g, NULL), &o, &p), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(loom_graph_error(g), "plan_rank -1 holds no device"), "%s", loom_graph_error(g));
    loom_graph_free(g);
    /* at the limit: 8,192 ranks of 8 GPUs, rank 8191's plan */
    loom_traffic t = traffic_of("@0-8191/cuda:0-7", 8191);
    ck_assert_int_eq(t.nodes, 8192);
    ck_assert_int_eq(t.ntasks, traffic_of("@0-15/cuda:0-7", 0).ntasks);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rank_plan");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_tasks_grow_with_the_rank_alone);
    tcase_add_test(tc, test_one_rank_is_the_whole_plan);
    tcase_add_test(tc, test_each_rank_is_its_part_of_the_whole_plan);
    tcase_add_test(tc, test_traffic_by_hand);
    tcase_add_test(tc, test_refusals);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
