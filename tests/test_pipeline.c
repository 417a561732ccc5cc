/* Pipeline parallelism with micro-batches (loom_train_opts.micro_batches and .schedule,
 * docs/placement.md): an MLP of four layers, layer k on stage k of a pipeline over cpu:0-3, its
 * batch cut into micro-batches, trains to the losses and parameters of the same model on one device
 * with the whole batch (same seeds, same data) under both schedules, with data fed or from a data
 * source, with a static or a dynamic batch, with dropout, and with stages of two devices each; one
 * micro-batch is exactly the whole batch. The schedules show in the plan's memory and in the order
 * of each stage's acts; what micro-batches cannot cut is refused with a message
 * (docs/bad-inputs.md). */
#include "harness.h"
#include "pipe_cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actors/exec_internal.h"
#include "graphs/session/program.h"

enum { ROWS = LT_PIPE_ROWS, FEAT = LT_PIPE_FEAT, STEPS = LT_PIPE_STEPS };

static const lt_pipe_opts one_device = {.stage = {"cpu:0"}, .nstages = 1};
static const lt_pipe_opts four_stages = {.stage = {"cpu:0", "cpu:1", "cpu:2", "cpu:3"}, .nstages = 4};

/* The 4-stage pipeline with 8 micro-batches under both schedules, against one device and the whole
 * batch: fed and sourced data, SGD with momentum and Adam, a static and a dynamic batch. */
START_TEST(test_four_stages_match_one_device)
{
    for (int variant = 0; variant < 4; variant++) {
        lt_pipe_opts ref = one_device;
        ref.with_source = variant & 1;
        ref.adam = variant >> 1 & 1;
        ref.dynamic = variant == 3;
        lt_pipe_result want;
        lt_pipe_train(&ref, &want);
        for (int sched = 0; sched < LOOM_SCHEDULE_COUNT; sched++) {
            lt_pipe_opts o = four_stages;
            o.micro = 8;
            o.schedule = (loom_schedule)sched;
            o.with_source = ref.with_source;
            o.adam = ref.adam;
            o.dynamic = ref.dynamic;
            lt_pipe_result got;
            lt_pipe_train(&o, &got);
            char what[96];
            snprintf(what, sizeof what, "4 stages, 8 micro-batches, %s, variant %d", sched ? "GPipe" : "1F1B", variant);
            lt_pipe_assert_close(&got, &want, 1e-5, what);
        }
    }
}
END_TEST

/* One micro-batch is the whole batch: the same plan and the same bits as no micro-batches. */
START_TEST(test_one_micro_batch_is_the_whole_batch)
{
    for (int sched = 0; sched < LOOM_SCHEDULE_COUNT; sched++) {
        lt_pipe_opts o = four_stages, one = four_stages;
        o.with_source = one.with_source = sched;
        one.micro = 1;
        one.schedule = (loom_schedule)sched;
        lt_pipe_result a, b;
        lt_pipe_train(&o, &a);
        lt_pipe_train(&one, &b);
        ck_assert_int_eq(memcmp(a.loss, b.loss, sizeof a.loss), 0);
        ck_assert_int_eq(memcmp(a.param, b.param, sizeof a.param[0] * (size_t)a.nparam), 0);
        lt_pipe_model ma, mb;
        lt_pipe_compile(&ma, &o);
        lt_pipe_compile(&mb, &one);
        char *ta = NULL, *tb = NULL;
        size_t la = 0, lb = 0;
        FILE *fa = open_memstream(&ta, &la), *fb = open_memstream(&tb, &lb);
        ck_assert_int_eq(loom_program_write_plan(ma.p, LOOM_RUN_STEP, LOOM_PLAN_TEXT, fa), LOOM_OK);
        ck_assert_int_eq(loom_program_write_plan(mb.p, LOOM_RUN_STEP, LOOM_PLAN_TEXT, fb), LOOM_OK);
        fclose(fa);
        fclose(fb);
        ck_assert_str_eq(ta, tb);
        free(ta);
        free(tb);
        lt_pipe_model_free(&ma);
        lt_pipe_model_free(&mb);
    }
}
END_TEST

/* Micro-batches on one device (gradient accumulation), stages of several devices (each
 * micro-batch split, unevenly on three), and dropout: each micro-batch draws its rows of the whole
 * batch's mask, so the pipeline matches itself without micro-batches (a mask is keyed by its
 * tensor, and the moves make the pipeline's tensors other than one device's). */
START_TEST(test_other_pipelines_match_one_device)
{
    static const lt_pipe_opts cases[] = {
        {.stage = {"cpu:0"}, .nstages = 1, .micro = 4},
        {.stage = {"cpu:0"}, .nstages = 1, .micro = 8, .schedule = LOOM_SCHEDULE_GPIPE, .dynamic = 1, .with_source = 1},
        {.stage = {"cpu:0", "cpu:1", "cpu:2", "cpu:3"}, .nstages = 4, .micro = 4, .dropout = 0.3, .adam = 1},
        {.stage = {"cpu:0-1", "cpu:2-3"}, .nstages = 2, .micro = 4, .with_source = 1},
        {.stage = {"cpu:0-1", "cpu:2-3"}, .nstages = 2, .micro = 2, .schedule = LOOM_SCHEDULE_GPIPE, .dropout = 0.3},
        {.stage = {"cpu:0", "cpu:1-3"}, .nstages = 2, .micro = 8, .dynamic = 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        lt_pipe_opts ref = one_device;
        if (cases[c].dropout > 0)
            ref = cases[c], ref.micro = 0, ref.schedule = LOOM_SCHEDULE_1F1B;
        ref.adam = cases[c].adam;
        ref.with_source = cases[c].with_source;
        ref.dynamic = cases[c].dynamic;
        lt_pipe_result want, got;
        lt_pipe_train(&ref, &want);
        lt_pipe_train(&cases[c], &got);
        char what[96];
        snprintf(what, sizeof what, "case %zu: %d micro-batches over %d stages", c, cases[c].micro, cases[c].nstages);
        lt_pipe_assert_close(&got, &want, 1e-5, what);
    }
}
END_TEST

/* The other modes cut into micro-batches too: the gradients of a GRAD run are the step's (summed
 * over its micro-batches), the logits of an EVAL run the whole batch's (its micro-batches' rows one
 * after another). */
START_TEST(test_other_modes)
{
    lt_pipe_opts o = four_stages;
    o.micro = 8;
    lt_pipe_check_modes(&o);
}
END_TEST

/* Each stage keeps what its schedule says for the backward pass (loom_memory.activations): under
 * GPipe all 8 micro-batches, at least as much as the whole batch without micro-batches (each
 * micro-batch's register rounded up); under 1F1B stage k of 4 keeps 4 - k, so less on every stage. */
START_TEST(test_schedules_memory)
{
    loom_memory mem[LOOM_SCHEDULE_COUNT + 1][4];
    for (int c = 0; c <= LOOM_SCHEDULE_COUNT; c++) { /* 1F1B, GPipe, no micro-batches */
        lt_pipe_opts o = four_stages;
        o.micro = c < LOOM_SCHEDULE_COUNT ? 8 : 0;
        o.schedule = c < LOOM_SCHEDULE_COUNT ? (loom_schedule)c : LOOM_SCHEDULE_1F1B;
        lt_pipe_model m;
        lt_pipe_compile(&m, &o);
        for (int d = 0; d < 4; d++)
            ck_assert_int_eq(loom_program_memory(m.p, LOOM_RUN_STEP, d, &mem[c][d]), LOOM_OK);
        loom_memory bad, fwd;
        ck_assert_int_eq(loom_program_memory(m.p, LOOM_RUN_STEP, 4, &bad), LOOM_ERR_INVALID);
        ck_assert_msg(strstr(loom_program_error(m.p), "device 4 of a plan of 4"), "%s", loom_program_error(m.p));
        ck_assert_int_eq(loom_program_memory(m.p, LOOM_RUN_FORWARD, 0, &fwd), LOOM_OK);
        ck_assert_uint_eq(fwd.activations, 0); /* no backward pass: nothing kept for it */
        lt_pipe_model_free(&m);
    }
    for (int d = 0; d < 4; d++) {
        size_t f = mem[LOOM_SCHEDULE_1F1B][d].activations, gp = mem[LOOM_SCHEDULE_GPIPE][d].activations;
        size_t whole = mem[LOOM_SCHEDULE_COUNT][d].activations;
        ck_assert_msg(f > 0 && f < gp, "stage %d: 1F1B keeps %zu bytes of activations, GPipe %zu", d, f, gp);
        ck_assert_msg(gp >= whole, "stage %d: GPipe keeps %zu bytes, the whole batch %zu", d, gp, whole);
        ck_assert_msg(f <= mem[LOOM_SCHEDULE_1F1B][d].shared + mem[LOOM_SCHEDULE_1F1B][d].own, "stage %d", d);
        /* 4 - d of 8 micro-batches (the last stage also keeps the loss, which the seed of the
         * backward pass reads, in the two buffers the host takes it from) */
        if (d < 3)
            ck_assert_msg(f * 8 == gp * (size_t)(4 - d), "stage %d: 1F1B keeps %zu bytes, GPipe %zu", d, f, gp);
    }
}
END_TEST

/* The acts of each stage in time order (one thread per device): GPipe runs every forward act of a
 * step before any backward act of it; 1F1B ends the forward of micro-batch j on stage k of S only
 * after a backward act of micro-batch j - (S - k) began there (a warm-up of S - k, then one for
 * one): the forward's registers that its backward reads hold S - k micro-batches. */
START_TEST(test_schedules_order)
{
    for (int sched = 0; sched < LOOM_SCHEDULE_COUNT; sched++) {
        lt_pipe_opts o = four_stages;
        o.micro = 8;
        o.schedule = (loom_schedule)sched;
        o.trace = 1;
        o.with_source = 1;
        lt_pipe_model m;
        lt_pipe_compile(&m, &o);
        ck_assert_msg(loom_program_run_steps(m.p, LOOM_RUN_STEP, 3) == LOOM_OK, "%s", loom_program_error(m.p));
        const loom__exec *x = m.p->exec[LOOM_RUN_STEP];
        const loom__plan *pl = x->pl;
        loom__rt *rt = x->rt;
        enum { P = 3 * 8 };
        int64_t fwd_end[4][P], bwd_begin[4][P], head_begin[4][P];
        int head[4];
        for (int d = 0; d < 4; d++) {
            head[d] = -1;
            for (int i = 0; i < P; i++)
                fwd_end[d][i] = 0, bwd_begin[d][i] = INT64_MAX, head_begin[d][i] = -1;
        }
        for (int i = 0; i < pl->ntasks; i++)
            if (pl->task[i].chain_pos >= 0 && pl->task[i].chain == LOOM__CHAIN_FWD && head[pl->task[i].device] < 0)
                head[pl->task[i].device] = i;
        loom__rt_event e;
        for (size_t i = 0; loom__rt_trace_get(rt, i, &e); i++) {
            int t = 0;
            while (t < pl->ntasks && x->aid[t] != e.id)
                t++;
            if (t == pl->ntasks || pl->task[t].chain_pos < 0 || e.initial)
                continue;
            int d = pl->task[t].device;
            ck_assert_int_lt(e.piece, P);
            if (pl->task[t].chain == LOOM__CHAIN_FWD && e.end_ns > fwd_end[d][e.piece])
                fwd_end[d][e.piece] = e.end_ns;
            if (pl->task[t].chain == LOOM__CHAIN_BWD && e.begin_ns < bwd_begin[d][e.piece])
                bwd_begin[d][e.piece] = e.begin_ns;
            if (t == head[d])
                head_begin[d][e.piece] = e.begin_ns;
        }
        for (int d = 0; d < 4; d++)
            for (int s = 0; s < 3; s++)
                for (int i = 0; i < 8; i++) {
                    int64_t p = s * 8 + i;
                    ck_assert(head_begin[d][p] >= 0 && bwd_begin[d][p] < INT64_MAX);
                    if (sched == LOOM_SCHEDULE_GPIPE) {
                        for (int j = 0; j < 8; j++)
                            ck_assert_msg(fwd_end[d][s * 8 + j] <= bwd_begin[d][p],
                                          "GPipe, stage %d: forward of micro-batch %d ends after the backward of %d begins", d, j, i);
                    } else if (i >= 4 - d) {
                        ck_assert_msg(fwd_end[d][p] > bwd_begin[d][p - (4 - d)],
                                      "1F1B, stage %d: forward of micro-batch %d ended before any backward of %d began", d, i,
                                      i - (4 - d));
                    }
                }
        lt_pipe_model_free(&m);
    }
}
END_TEST

/* The pipeline's plan written as JSON and read back trains to the same bits; a plan whose buffers
 * could not hold what its schedule keeps in flight (which would hang the run) is refused, and so is
 * the plan of another micro-batch count. */
START_TEST(test_plan_json)
{
    lt_pipe_opts o = four_stages;
    o.micro = 8;
    o.schedule = LOOM_SCHEDULE_GPIPE;
    lt_pipe_model m;
    char path[64];
    char *text = lt_pipe_read_back(&o, &m, path);

    char *at = strstr(text, "\"regst_num\":8,\"mem\":\"own\""); /* a forward register the backward pass reads */
    ck_assert_ptr_nonnull(at);
    at[12] = '7';
    lt_write_file(path, text, strlen(text));
    ck_assert_int_eq(loom_program_read_plan(m.p, path), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(loom_program_error(m.p), "has 7 buffers, under the 8 micro-batches its readers may hold at once"), "%s",
                  loom_program_error(m.p));
    at[12] = '8';
    lt_write_file(path, text, strlen(text));
    lt_pipe_model_free(&m);
    o.micro = 4;
    lt_pipe_compile(&m, &o);
    ck_assert_int_eq(loom_program_read_plan(m.p, path), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(loom_program_error(m.p), "not a plan of this program"), "%s", loom_program_error(m.p));
    lt_pipe_model_free(&m);
    unlink(path);
    free(text);
}
END_TEST

static void expect_compile_error(const lt_pipe_opts *o, int micro_opt, loom_schedule sched, const char *needle)
{
    lt_pipe_model m;
    lt_pipe_build(&m, o);
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = loom_sgd(0.1);
    t.micro_batches = micro_opt;
    t.schedule = sched;
    ck_assert_int_ne(loom_compile(m.g, m.loss, &t, &m.p), LOOM_OK);
    ck_assert_msg(strstr(loom_graph_error(m.g), needle) != NULL, "'%s' not in: %s", needle, loom_graph_error(m.g));
    loom_graph_free(m.g);
}

START_TEST(test_bad_inputs)
{
    /* counts that do not divide the batch: a static one at compile time */
    expect_compile_error(&four_stages, 5, LOOM_SCHEDULE_1F1B,
                         "loom_compile: 5 micro-batches: they do not divide the batch of 32 rows (axis 0 of the inputs)");
    expect_compile_error(&four_stages, -1, LOOM_SCHEDULE_1F1B, "loom_compile: micro_batches -1 is outside 0 .. 1024");
    expect_compile_error(&four_stages, 2000, LOOM_SCHEDULE_1F1B, "loom_compile: micro_batches 2000 is outside 0 .. 1024");
    expect_compile_error(&four_stages, 4, (loom_schedule)7, "loom_compile: schedule 7 is not a loom_schedule");

    /* a dynamic one when fed, or when a data source feeds it */
    lt_pipe_opts o = four_stages;
    o.micro = 8;
    o.dynamic = 1;
    lt_pipe_model m;
    lt_pipe_compile(&m, &o);
    float x[30 * FEAT] = {0};
    loom_array ax = {.dtype = LOOM_F32, .ndim = 2, .shape = {30, FEAT}, .data = x};
    ck_assert_int_eq(loom_program_feed(m.p, m.x, &ax), LOOM_ERR_SHAPE);
    ck_assert_str_eq(loom_program_error(m.p), "loom_program_feed: input 'x' has 30 rows (axis 0: the batch), which 8 "
                                              "micro-batches do not divide (loom_train_opts.micro_batches): feed a multiple of 8 rows");
    lt_pipe_model_free(&m);
    o.micro = 32; /* the source's second step has 24 rows: the run stops there, the first step applied */
    o.with_source = 1;
    lt_pipe_compile(&m, &o);
    ck_assert_int_eq(loom_program_run_steps(m.p, LOOM_RUN_STEP, 4), LOOM_ERR_SHAPE);
    ck_assert_str_eq(loom_program_error(m.p), "loom_program_run: the data source (piece 32): loom_feeder_dense: input 'x' has 24 "
                                              "rows (axis 0: the batch), which 32 micro-batches do not divide "
                                              "(loom_train_opts.micro_batches): feed a multiple of 32 rows");
    ck_assert_int_eq(loom_program_steps(m.p), 1);
    lt_pipe_model_free(&m);

    /* inputs whose axis 0 differ, a batch norm, a sparse input */
    loom_graph *g = loom_graph_new();
    loom_tensor *a = loom_input(g, "a", LOOM_F32, loom_shape(8, 3)), *b = loom_input(g, "b", LOOM_F32, loom_shape(4, 3));
    loom_tensor *loss = loom_add(g, loom_sum(g, loom_nn_linear(g, "l", a, 2, 1), LOOM_ALL_AXES, 0), loom_sum(g, b, LOOM_ALL_AXES, 0));
    loom_program *p;
    ck_assert_int_ne(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1), .micro_batches = 2}, &p), LOOM_OK);
    ck_assert_str_eq(loom_graph_error(g), "loom_compile: 2 micro-batches: inputs 'a' [8, 3] and 'b' [4, 3] differ in axis 0; "
                                          "micro-batches cut axis 0 of every input, which must be the batch in each");
    loom_graph_free(g);
    g = loom_graph_new();
    a = loom_input(g, "a", LOOM_F32, loom_shape(8, 3, 4, 4));
    loss = loom_mean(g, loom_batch_norm(g, "bn", a, 0.1, 1e-5), LOOM_ALL_AXES, 0);
    ck_assert_int_ne(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1), .micro_batches = 2}, &p), LOOM_OK);
    ck_assert_str_eq(loom_graph_error(g), "loom_compile: 2 micro-batches: batch norm 'bn' of 'a' takes its statistics over the "
                                          "whole batch, which a micro-batch holds only part of; use layer norm");
    loom_graph_free(g);
    g = loom_graph_new();
    loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F32, 4, 4);
    a = loom_input(g, "a", LOOM_F32, loom_shape(4, 3));
    loss = loom_sum(g, loom_spmm(g, adj, loom_nn_linear(g, "l", a, 2, 1)), LOOM_ALL_AXES, 0);
    ck_assert_int_ne(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1), .micro_batches = 2}, &p), LOOM_OK);
    ck_assert_msg(strstr(loom_graph_error(g), "input 'adj' is sparse; micro-batches cut dense inputs along axis 0"), "%s",
                  loom_graph_error(g));
    loom_graph_free(g);

    /* a scalar input, an index into the batch's rows, a reshape that mixes the batch's rows */
    g = loom_graph_new();
    a = loom_input(g, "a", LOOM_F32, loom_shape(8, 3));
    b = loom_input(g, "scale", LOOM_F32, loom_shape());
    loss = loom_mul(g, loom_sum(g, loom_nn_linear(g, "l", a, 2, 1), LOOM_ALL_AXES, 0), b);
    ck_assert_int_ne(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1), .micro_batches = 2}, &p), LOOM_OK);
    ck_assert_str_eq(loom_graph_error(g), "loom_compile: 2 micro-batches: input 'scale' is a scalar; micro-batches cut every "
                                          "input along axis 0 (the batch)");
    loom_graph_free(g);
    g = loom_graph_new();
    loom_dim n = loom_dim_dynamic(g, "N", 40);
    a = loom_input(g, "a", LOOM_F32, loom_shape(n, 3));
    b = loom_input_index(g, "seg", loom_shape(n), n);
    loss = loom_sum(g, loom_nn_linear(g, "l", a, 2, 1), LOOM_ALL_AXES, 0);
    ck_assert_int_ne(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1), .micro_batches = 2}, &p), LOOM_OK);
    ck_assert_msg(strstr(loom_graph_error(g), "input 'seg' indexes the rows of the batch, which a micro-batch holds only some of"),
                  "%s", loom_graph_error(g));
    loom_graph_free(g);
    g = loom_graph_new();
    a = loom_input(g, "a", LOOM_F32, loom_shape(8, 3));
    loss = loom_sum(g, loom_nn_linear(g, "l", loom_reshape(g, a, loom_shape(4, 6)), 2, 1), LOOM_ALL_AXES, 0);
    ck_assert_int_ne(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1), .micro_batches = 2}, &p), LOOM_OK);
    ck_assert_msg(strstr(loom_graph_error(g), "loom_compile: 2 micro-batches: reshape 'reshape' cannot compute a part of the batch: "),
                  "%s", loom_graph_error(g));
    loom_graph_free(g);
}
END_TEST

/* A stage with no devices: more stages than devices. */
START_TEST(test_stage_without_devices)
{
    loom_placement *all = lt_placement("cpu:0-2");
    loom_error e = {0};
    ck_assert_ptr_null(loom_placement_stage(all, 3, 4, &e));
    ck_assert_int_eq(e.status, LOOM_ERR_INVALID);
    ck_assert_str_eq(e.msg, "loom_placement_stage: placement 'cpu:0-2' has 3 devices, too few for 4 pipeline stages: stage 3 "
                            "would have no devices");
    ck_assert_ptr_null(loom_placement_stage(all, 4, 4, &e));
    ck_assert_str_eq(e.msg, "loom_placement_stage: stage 4 of 4 pipeline stages (stages count from 0 to nstages - 1)");
    ck_assert_ptr_null(loom_placement_stage(NULL, 0, 1, &e));
    ck_assert_str_eq(e.msg, "loom_placement_stage: the placement is NULL");
    /* the stages of cpu:0-2 in 2: the first one device larger */
    const char *want[2] = {"cpu:0-1", "cpu:2"};
    for (int k = 0; k < 2; k++) {
        loom_placement *s = loom_placement_stage(all, k, 2, &e);
        ck_assert_msg(s != NULL, "%s", e.msg);
        char b[32];
        loom_placement_str(s, b, sizeof b);
        ck_assert_str_eq(b, want[k]);
        loom_placement_free(s);
    }
    loom_placement *r = lt_placement("@0-1/cuda:0-3"), *s = loom_placement_stage(r, 3, 4, &e);
    char b[32];
    loom_placement_str(s, b, sizeof b);
    ck_assert_str_eq(b, "@0-1/cuda:3");
    loom_placement_free(s);
    loom_placement_free(r);
    loom_placement_free(all);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipeline");
    TCase *tc = tcase_create("pipeline");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_four_stages_match_one_device);
    tcase_add_test(tc, test_one_micro_batch_is_the_whole_batch);
    tcase_add_test(tc, test_other_pipelines_match_one_device);
    tcase_add_test(tc, test_other_modes);
    tcase_add_test(tc, test_schedules_memory);
    tcase_add_test(tc, test_schedules_order);
    tcase_add_test(tc, test_plan_json);
    tcase_add_test(tc, test_bad_inputs);
    tcase_add_test(tc, test_stage_without_devices);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
