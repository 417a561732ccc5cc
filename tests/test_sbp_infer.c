/* SBP inference and the boxing planner: the collective for each pair of SBPs and its bytes; data
 * parallelism inserting the weight-gradient all-reduce by itself; a split weight (model
 * parallelism) honoured; a hint no signature meets refused with the candidates. */
#include "harness.h"

#include <string.h>

#include "actors/exec.h"
#include "graphs/session/program.h"
#include "ops/sbp_sigs.h"

START_TEST(test_boxing_table)
{
    loom_sbp s0 = loom_split(0), s1 = loom_split(1), b = loom_broadcast(), p = loom_partial_sum();
    ck_assert_int_eq(loom__boxing(s0, s0), LOOM__BOX_NONE);
    ck_assert_int_eq(loom__boxing(s0, b), LOOM__BOX_ALL_GATHER);
    ck_assert_int_eq(loom__boxing(p, b), LOOM__BOX_ALL_REDUCE);
    ck_assert_int_eq(loom__boxing(p, s1), LOOM__BOX_REDUCE_SCATTER);
    ck_assert_int_eq(loom__boxing(s0, s1), LOOM__BOX_ALL_TO_ALL);
    ck_assert_int_eq(loom__boxing(b, s1), LOOM__BOX_SLICE);
    ck_assert_int_eq(loom__boxing(b, p), LOOM__BOX_LOCAL_ZERO);
    ck_assert_int_eq(loom__boxing(s1, p), LOOM__BOX_GATHER_ZERO);
    loom__cost_model cm;
    loom__cost_default(&cm);
    const loom__cost_dev *ring = &cm.dev[LOOM_DEVICE_CUDA], *shared = &cm.dev[LOOM_DEVICE_CPU];
    ck_assert(!ring->shared && shared->shared);
    /* ring collectives on 4 devices of a 1 MB tensor: bytes each device sends */
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_ALL_GATHER, 1e6, 4, ring), 0.75e6, 1e-6);
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_REDUCE_SCATTER, 1e6, 4, ring), 0.75e6, 1e-6);
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_ALL_REDUCE, 1e6, 4, ring), 1.5e6, 1e-6);
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_SLICE, 1e6, 4, ring), 0, 1e-12);
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_ALL_REDUCE, 1e6, 1, ring), 0, 1e-12);
    ck_assert(loom__box_seconds(LOOM__BOX_ALL_REDUCE, 1e6, 4, ring) > loom__box_seconds(LOOM__BOX_ALL_GATHER, 1e6, 4, ring));
    /* in shared memory, what each device's task reads and writes: P -> B reads the 4 parts whole,
     * or, past some bytes, in two phases its quarter of each part, then the others' quarters */
    ck_assert(!loom__all_reduce_two_phase(1e3, 4, shared) && loom__all_reduce_two_phase(1e6, 4, shared));
    ck_assert(!loom__all_reduce_two_phase(1e9, 2, shared) && !loom__all_reduce_two_phase(1e9, 4, ring));
    /* over ranks, a ring past some bytes (4 ranks of 1 device: 3.75 T against 8 T at 10 GB/s, past
     * 20 us, from about 50 KB; 2 ranks of 1: 3.5 T against 4 T, from 400 KB); never on one rank's */
    ck_assert(!loom__all_reduce_ring(1e4, 4, 1, shared) && loom__all_reduce_ring(1e5, 4, 1, shared));
    ck_assert(loom__all_reduce_ring(1e6, 4, 2, shared) && loom__all_reduce_ring(1e6, 8, 2, shared));
    ck_assert(!loom__all_reduce_ring(3e5, 2, 1, shared) && loom__all_reduce_ring(5e5, 2, 1, shared));
    ck_assert(!loom__all_reduce_ring(1e9, 4, 4, shared) && !loom__all_reduce_ring(1e9, 1, 1, shared));
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_ALL_REDUCE, 1e3, 4, shared), 5e3, 1e-9);
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_ALL_REDUCE, 1e6, 4, shared), 3.25e6, 1e-6);
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_ALL_GATHER, 1e6, 4, shared), 2e6, 1e-6);
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_ALL_TO_ALL, 1e6, 4, shared), 0.5e6, 1e-6);
    ck_assert_double_eq_tol(loom__box_bytes(LOOM__BOX_NONE, 1e6, 4, shared), 0, 1e-12);
    /* one latency whatever the device count, against one per ring step */
    ck_assert_double_eq_tol(loom__box_seconds(LOOM__BOX_ALL_REDUCE, 0.001, 8, shared) -
                                loom__box_seconds(LOOM__BOX_ALL_REDUCE, 0.001, 2, shared),
                            0, 1e-9);
    ck_assert(loom__box_seconds(LOOM__BOX_ALL_REDUCE, 0.001, 8, ring) > 7 * ring->box_latency);
}
END_TEST

/* An MLP's training step on `placement`, with optional SBPs for the input and the first weight. */
static loom_program *mlp(loom_graph *g, const char *placement, loom_sbp x_sbp, loom_sbp w1_sbp)
{
    loom_error e = {0};
    loom_placement *pl = loom_placement_parse(placement, &e);
    ck_assert_msg(pl != NULL, "%s", e.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_dim N = loom_dim_dynamic(g, "N", 512);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 256));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(N));
    if (x_sbp.kind != LOOM_SBP_UNSET)
        loom_tensor_set_sbp(x, x_sbp);
    loom_tensor *h = loom_relu(g, loom_nn_linear(g, "fc1", x, 128, 0));
    if (w1_sbp.kind != LOOM_SBP_UNSET)
        loom_tensor_set_sbp(loom_graph_find(g, "fc1.weight"), w1_sbp);
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 10, 0), y, NULL);
    loom_program *p = NULL;
    loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1)}, &p);
    return p;
}

/* The SBP the update of parameter `name` reads its gradient with, and what the gradient is. */
static void grad_boxing(loom_program *p, const char *name, loom_sbp *grad_sbp, loom_sbp *wanted)
{
    loom_graph *g = p->g;
    loom_tensor *w = loom_graph_find(g, name);
    for (int id = p->bwd_end; id < p->n; id++)
        if (g->t[id]->src[0] == w) {
            *grad_sbp = p->sbp.sbp[g->t[id]->src[1]->id];
            *wanted = p->sbp.sig[id].in[1];
            return;
        }
    ck_abort_msg("no update for %s", name);
}

START_TEST(test_data_parallel_inserts_all_reduce)
{
    loom_graph *g = loom_graph_new();
    loom_program *p = mlp(g, "cpu:0-3", (loom_sbp){0}, (loom_sbp){0});
    ck_assert_msg(p != NULL, "%s", loom_graph_error(g));
    ck_assert_int_eq(p->ndevices, 4);
    /* activations follow the batch split; weights stay whole; their gradients come out partial and
     * the update, which wants them whole, gets an all-reduce the user never wrote */
    ck_assert_int_eq(p->sbp.sbp[loom_graph_find(g, "x")->id].kind, LOOM_SBP_SPLIT);
    ck_assert_int_eq(p->sbp.sbp[loom_graph_find(g, "fc1.weight")->id].kind, LOOM_SBP_BROADCAST);
    for (int k = 0; k < 2; k++) {
        loom_sbp have, want;
        grad_boxing(p, k ? "fc2.weight" : "fc1.weight", &have, &want);
        ck_assert_int_eq(have.kind, LOOM_SBP_PARTIAL_SUM);
        ck_assert_int_eq(want.kind, LOOM_SBP_BROADCAST);
        ck_assert_int_eq(loom__boxing(have, want), LOOM__BOX_ALL_REDUCE);
    }
    /* and the physical plan gives every device a boxing task for each: fc2's gradient (5 KB) from
     * P to B, fc1's (128 KB) in two phases, P to S(0) and S(0) to B (see loom__all_reduce_two_phase) */
    loom_memory m;
    ck_assert_msg(loom_program_memory(p, LOOM_RUN_STEP, 0, &m) == LOOM_OK, "%s", loom_program_error(p));
    const loom__plan *pl = loom__program_plan_of(p, LOOM_RUN_STEP);
    int one[4] = {0}, reduce[4] = {0}, gather[4] = {0};
    for (int k = 0; k < pl->ntasks; k++) {
        const loom__task *t = &pl->task[k];
        if (t->kind != LOOM__TASK_BOXING)
            continue;
        loom_sbp from = pl->regst[t->in[0]].sbp, to = pl->regst[t->out[0]].sbp;
        ck_assert_int_eq(t->n_in, 4); /* every device's part, in shared memory */
        if (from.kind == LOOM_SBP_PARTIAL_SUM)
            (to.kind == LOOM_SBP_BROADCAST ? one : reduce)[t->device]++;
        else if (from.kind == LOOM_SBP_SPLIT && to.kind == LOOM_SBP_BROADCAST)
            gather[t->device]++;
    }
    for (int d = 0; d < 4; d++)
        ck_assert_msg(one[d] == 1 && reduce[d] == 1 && gather[d] == 1, "device %d: %d, %d, %d", d, one[d], reduce[d], gather[d]);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_model_parallel_weight)
{
    /* every device sees the whole batch and holds a quarter of fc1.weight (its columns): the
     * matmul keeps the split instead of gathering the weight */
    loom_graph *g = loom_graph_new();
    loom_program *p = mlp(g, "cpu:0-3", loom_broadcast(), loom_split(1));
    ck_assert_msg(p != NULL, "%s", loom_graph_error(g));
    loom_tensor *w = loom_graph_find(g, "fc1.weight");
    ck_assert(loom_sbp_equal(p->sbp.sbp[w->id], loom_split(1)));
    /* its update runs on the quarters too: the gradient arrives split like the weight */
    loom_sbp have, want;
    grad_boxing(p, "fc1.weight", &have, &want);
    ck_assert(loom_sbp_equal(want, loom_split(1)));
    for (int id = p->bwd_end; id < p->n; id++) /* and its Adam moments are quarters as well */
        if (g->t[id]->src[0] == w)
            for (int i = 2; i < g->t[id]->n_src; i++)
                ck_assert(loom_sbp_equal(p->sbp.sbp[g->t[id]->src[i]->id], loom_split(1)));
    for (int id = w->id + 1; id < p->fwd_end; id++)
        if (g->t[id]->op == LOOM_OP_MATMUL && g->t[id]->src[1] == w) {
            ck_assert(loom_sbp_equal(p->sbp.sig[id].in[1], loom_split(1)));
            ck_assert_int_eq(p->sbp.sbp[id].kind, LOOM_SBP_SPLIT);
        }
    /* the memory plan: each device holds a quarter of fc1.weight [256, 128] and of its momentum
     * buffer, and the whole fc2.weight [128, 10] and its buffer, all f32 */
    for (int d = 0; d < 4; d++) {
        loom_memory m;
        ck_assert_msg(loom_program_memory(p, LOOM_RUN_STEP, d, &m) == LOOM_OK, "%s", loom_program_error(p));
        ck_assert_uint_eq(m.params, 2 * (256 * 128 / 4 * 4) + 2 * (128 * 10 * 4));
    }
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_moves_between_placements)
{
    loom_error e = {0};
    loom_placement *a = loom_placement_parse("cpu:0-1", &e), *b = loom_placement_parse("cpu:2-3", &e);
    /* an op whose sources are on two placements is refused, naming both and the way out */
    loom_graph *g = loom_graph_new();
    loom_graph_set_placement(g, a);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(8, 4));
    loom_graph_set_placement(g, b);
    loom_tensor *w = loom_param(g, "w", LOOM_F32, loom_shape(4, 3), loom_init_glorot(1));
    ck_assert(loom_tensor_is_poisoned(loom_matmul(g, x, w)));
    lt_expect_error(g, "loom_matmul: tensor argument 1 is on cpu:0-1 but argument 2 on cpu:2-3; move one with loom_to_placement");
    loom_graph_free(g);

    /* moved, it runs where it was moved: the move's tasks are on the destination's devices and
     * read every part of the source */
    g = loom_graph_new();
    loom_graph_set_placement(g, a);
    x = loom_input(g, "x", LOOM_F32, loom_shape(8, 4));
    ck_assert_ptr_eq(loom_to_placement(g, x, a), x); /* already there: no move */
    loom_tensor *xm = loom_to_placement(g, x, b);
    loom_graph_set_placement(g, b);
    w = loom_param(g, "w", LOOM_F32, loom_shape(4, 3), loom_init_glorot(1));
    loom_tensor *loss = loom_sum(g, loom_matmul(g, xm, w), LOOM_ALL_AXES, 0);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1)}, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_int_eq(p->ndevices, 4);
    loom_memory m;
    ck_assert_msg(loom_program_memory(p, LOOM_RUN_STEP, 0, &m) == LOOM_OK, "%s", loom_program_error(p));
    const loom__plan *pl = loom__program_plan_of(p, LOOM_RUN_STEP);
    int moves = 0;
    for (int k = 0; k < pl->ntasks; k++)
        if (pl->task[k].kind == LOOM__TASK_MOVE) {
            ck_assert_int_ge(pl->dev_index[pl->task[k].device], 2);
            ck_assert_int_eq(pl->task[k].n_in, 2);
            moves++;
        }
    ck_assert_int_eq(moves, 2);
    loom_program_free(p);
    loom_graph_free(g);

    /* sparse tensors do not move yet, nor do tensors between device kinds */
    g = loom_graph_new();
    loom_graph_set_placement(g, a);
    ck_assert(loom_tensor_is_poisoned(loom_to_placement(g, loom_input_csr(g, "adj", LOOM_F32, 4, 4), b)));
    lt_expect_error(g, "loom_to_placement: sparse tensors cannot move between placements yet");
    loom_graph_free(g);
    loom_placement *c = loom_placement_parse("cuda:0", &e);
    g = loom_graph_new();
    loom_graph_set_placement(g, a);
    x = loom_input(g, "x", LOOM_F32, loom_shape(8, 4));
    ck_assert_int_ne(loom_compile(g, loom_sum(g, loom_to_placement(g, x, c), LOOM_ALL_AXES, 0), NULL, &p), LOOM_OK);
    ck_assert_msg(strstr(loom_graph_error(g), "moves between device kinds are not built yet"), "%s", loom_graph_error(g));
    loom_graph_free(g);
    loom_placement_free(a);
    loom_placement_free(b);
    loom_placement_free(c);
}
END_TEST

START_TEST(test_hint_refused_with_candidates)
{
    /* relu cannot produce a partial sum: the message names the op, the tensor, its sources' SBPs
     * and the signatures that exist */
    loom_graph *g = loom_graph_new();
    loom_error e = {0};
    loom_placement *pl = loom_placement_parse("cpu:0-1", &e);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(8, 4));
    loom_tensor *r = loom_relu(g, x);
    loom_tensor_set_name(r, "act");
    loom_tensor_set_sbp(r, loom_partial_sum());
    loom_program *p = NULL;
    ck_assert_int_eq(loom_compile(g, loom_sum(g, r, LOOM_ALL_AXES, 0), NULL, &p), LOOM_ERR_INVALID);
    const char *m = loom_graph_error(g);
    ck_assert_msg(strstr(m, "relu 'act': no signature gives the requested P (its sources are S(0)); valid: "), "%s", m);
    ck_assert_msg(strstr(m, "(B) -> B"), "%s", m);
    loom_graph_free(g);

    /* a hint that does not fit the tensor is refused at once */
    g = loom_graph_new();
    loom_tensor_set_sbp(loom_input(g, "x", LOOM_F32, loom_shape(8, 4)), loom_split(3));
    lt_expect_error(g, "loom_tensor_set_sbp 'x': ");
    lt_expect_error(g, "S(3)");
    loom_graph_free(g);
}
END_TEST

START_TEST(test_more_devices_than_exist)
{
    /* this process is rank 0 alone, and has as many GPUs as it has: asking for more fails at compile */
    loom_error e = {0};
    const char *cases[] = {"@0-1/cpu:0-1", "cuda:0-127"};
    const char *want[] = {"rank", "CUDA devices"};
    for (int k = 0; k < 2; k++) {
        loom_graph *g = loom_graph_new();
        loom_placement *pl = loom_placement_parse(cases[k], &e);
        ck_assert_msg(pl != NULL, "%s", e.msg);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(8, 4));
        loom_program *p = NULL;
        ck_assert_int_eq(loom_compile(g, loom_sum(g, x, LOOM_ALL_AXES, 0), NULL, &p), LOOM_ERR_NOT_FOUND);
        ck_assert_msg(strstr(loom_graph_error(g), "loom_compile: placement"), "%s", loom_graph_error(g));
        ck_assert_msg(strstr(loom_graph_error(g), want[k]), "%s", loom_graph_error(g));
        loom_graph_free(g);
    }
}
END_TEST

/* Parts of a partial sum are added in floating point: no integer (or sparse) tensor is ever a P.
 * A u8 scalar moved through transposes on two devices once became P (transpose is linear), and
 * joining its parts read and wrote it as doubles: 8 bytes of a 1-byte value. */
START_TEST(test_partial_sums_only_for_floats)
{
    for (int ex = 0; ex < LOOM_EXEC_COUNT; ex++) {
        loom_graph *g = loom_graph_new();
        loom_error e = {0};
        loom_placement *pl = loom_placement_parse("cpu:0-1", &e);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
        loom_tensor *flag = loom_input(g, "flag", LOOM_U8, loom_shape());
        loom_tensor *t = loom_transpose(g, loom_transpose(g, flag, NULL), NULL);
        loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(64));
        loom_program *p = NULL;
        ck_assert_int_eq(loom_compile(g, loom_sum(g, x, LOOM_ALL_AXES, 0), &(loom_train_opts){.executor = ex}, &p), LOOM_OK);
        for (int id = 0; id < p->n; id++)
            if (!loom__sbp_can_partial(g->t[id]))
                ck_assert_msg(p->sbp.sbp[id].kind != LOOM_SBP_PARTIAL_SUM, "%s '%s' is P", loom_dtype_name(g->t[id]->dtype),
                              loom_tensor_name(g->t[id]));
        ck_assert_int_eq(loom_program_keep(p, t), LOOM_OK);
        uint8_t seven = 7;
        double xs[64] = {0};
        ck_assert_int_eq(loom_program_feed(p, flag, &(loom_array){.dtype = LOOM_U8, .ndim = 0, .data = &seven}), LOOM_OK);
        ck_assert_int_eq(loom_program_feed(p, x, &(loom_array){.dtype = LOOM_F64, .ndim = 1, .shape = {64}, .data = xs}), LOOM_OK);
        ck_assert_msg(loom_program_run(p, LOOM_RUN_FORWARD) == LOOM_OK, "%s", loom_program_error(p));
        loom_array a;
        ck_assert_int_eq(loom_program_fetch(p, t, &a), LOOM_OK);
        ck_assert_int_eq(((const uint8_t *)a.data)[0], 7);
        loom_program_free(p);
        loom_graph_free(g);
    }

    /* nor may a hint make one */
    loom_graph *g = loom_graph_new();
    loom_tensor_set_sbp(loom_input(g, "label", LOOM_I32, loom_shape(8)), loom_partial_sum());
    lt_expect_error(g, "loom_tensor_set_sbp 'label': a partial sum (P) needs a dense f32 or f64 tensor; it is i32");
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sbp_infer");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_boxing_table);
    tcase_add_test(tc, test_data_parallel_inserts_all_reduce);
    tcase_add_test(tc, test_model_parallel_weight);
    tcase_add_test(tc, test_hint_refused_with_candidates);
    tcase_add_test(tc, test_moves_between_placements);
    tcase_add_test(tc, test_more_devices_than_exist);
    tcase_add_test(tc, test_partial_sums_only_for_floats);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
