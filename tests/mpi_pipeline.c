/* Micro-batches over ranks (ctest label mpi; run by mpirun -np 2, or -np 4): the MLP of
 * tests/pipe_cases.c trains to the losses and parameters of the same model on one device with the
 * whole batch (within 1e-5), on every rank, under both schedules, fed or from a data source, SGD
 * with momentum or Adam, a static or a dynamic batch, in
 *   - a pipeline of 2 stages, one a rank (@0/cpu:0, @1/cpu:0), 4 micro-batches;
 *   - a pipeline of 4 stages, 8 micro-batches: one a rank on 4 ranks, two a rank on 2;
 *   - data parallelism over every rank (one and two devices a rank) with micro-batches: gradient
 *     accumulation, then the sum over the devices; on 4 ranks also 2 stages of 2 ranks each.
 * The 2-stage pipeline's EVAL and GRAD runs match one device's too, and its plan written as JSON
 * and read back trains to the same bits; a parameter of rank 0's stage read on rank 1 trains to one
 * device's.
 * The groups of pieces of a step (the parameters' copies, the gradients' sums, GPipe's barrier
 * and gate) act on their own ranks; what crosses them is micro-batches, their gradients and the
 * sums of a step's gradients. */
#include "harness.h"
#include "pipe_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const lt_pipe_opts one_device = {.stage = {"cpu:0"}, .nstages = 1};

/* o trained against one device with the whole batch, its data and optimizer varied as variant
 * says (bit 0: a data source, bit 1: Adam, bit 2: a dynamic batch). */
static void check(lt_pipe_opts o, int variant, const char *what)
{
    lt_pipe_opts ref = one_device;
    ref.with_source = o.with_source = variant & 1;
    ref.adam = o.adam = variant >> 1 & 1;
    ref.dynamic = o.dynamic = variant >> 2 & 1;
    lt_pipe_result want, got;
    lt_pipe_train(&ref, &want);
    lt_pipe_train(&o, &got);
    char msg[160];
    snprintf(msg, sizeof msg, "rank %d: %s, %d micro-batches, %s, variant %d", loom_dist_rank(), what, o.micro,
             o.schedule == LOOM_SCHEDULE_GPIPE ? "GPipe" : "1F1B", variant);
    lt_pipe_assert_close(&got, &want, 1e-5, msg);
}

static char placement[64]; /* every rank of the job, cpu:0 on each */

/* Each case under both schedules and every variant. */
static void check_all(lt_pipe_opts o, const char *what)
{
    for (int sched = 0; sched < LOOM_SCHEDULE_COUNT; sched++)
        for (int variant = 0; variant < 8; variant++) {
            o.schedule = (loom_schedule)sched;
            check(o, variant, what);
        }
}

/* Two stages, one a rank (ranks 0 and 1; on a job of four, ranks 2 and 3 hold no stage and still
 * run their source and sinks), 4 micro-batches. */
START_TEST(test_two_stages_over_ranks)
{
    check_all((lt_pipe_opts){.stage = {"@0/cpu:0", "@1/cpu:0"}, .nstages = 2, .micro = 4}, "2 stages on ranks 0 and 1");
}
END_TEST

/* The 2-stage pipeline over ranks in EVAL and GRAD runs (the logits joined from the micro-batches
 * of the last stage's rank on every rank, the gradients summed), and its plan written as JSON and
 * read back on every rank, which trains to the same bits. */
START_TEST(test_modes_and_plan_json_over_ranks)
{
    lt_pipe_opts o = {.stage = {"@0/cpu:0", "@1/cpu:0"}, .nstages = 2, .micro = 4};
    lt_pipe_check_modes(&o);
    o.schedule = LOOM_SCHEDULE_GPIPE;
    lt_pipe_model m;
    char path[64];
    free(lt_pipe_read_back(&o, &m, path));
    unlink(path);
    lt_pipe_model_free(&m);
}
END_TEST

/* Four stages: one a rank on four ranks; on two, two a rank (on its devices cpu:0 and cpu:1), so
 * that a rank's stages talk within it and across. 8 micro-batches. */
START_TEST(test_four_stages_over_ranks)
{
    lt_pipe_opts o = {.stage = {"@0/cpu:0", "@0/cpu:1", "@1/cpu:0", "@1/cpu:1"}, .nstages = 4, .micro = 8};
    if (loom_dist_size() >= 4)
        o = (lt_pipe_opts){.stage = {"@0/cpu:0", "@1/cpu:0", "@2/cpu:0", "@3/cpu:0"}, .nstages = 4, .micro = 8};
    check_all(o, loom_dist_size() >= 4 ? "4 stages on 4 ranks" : "4 stages on 2 ranks");
}
END_TEST

/* Data parallelism over every rank with micro-batches (gradient accumulation): each micro-batch
 * split over the ranks (and over two devices a rank), the gradients summed over the micro-batches
 * on each device, then over the devices. On four ranks, also two stages of two ranks each. */
START_TEST(test_data_parallel_micro_over_ranks)
{
    char two[sizeof placement + 8];
    snprintf(two, sizeof two, "%s-1", placement); /* @0-(n-1)/cpu:0-1 */
    check_all((lt_pipe_opts){.stage = {placement}, .nstages = 1, .micro = 4}, placement);
    check_all((lt_pipe_opts){.stage = {two}, .nstages = 1, .micro = 2}, two);
    if (loom_dist_size() >= 4)
        check_all((lt_pipe_opts){.stage = {"@0-1/cpu:0", "@2-3/cpu:0"}, .nstages = 2, .micro = 4}, "2 stages of 2 ranks each");
}
END_TEST

/* A parameter of stage 0 that stage 1 reads too (moved to it at each micro-batch): the variable
 * on rank 0 emits each version once per micro-batch to a reader on rank 1, and updates it in
 * place once the copies of both ranks are done with. Losses and the parameter against one device. */
static void shared_parameter(const char *s0, const char *s1, int micro, loom_schedule sched, double *loss, double *w)
{
    loom_graph *g = lt_graph_on(s0, 3);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(8, 4));
    loom_tensor *wt = loom_param(g, "w", LOOM_F32, loom_shape(4, 4), loom_init_normal(0, 0.5, 1));
    loom_tensor *h = loom_tanh(g, loom_matmul(g, x, wt));
    loom_placement *p1 = lt_placement(s1);
    h = loom_matmul(g, loom_to_placement(g, h, p1), loom_to_placement(g, wt, p1));
    loom_graph_set_placement(g, p1);
    loom_placement_free(p1);
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(8));
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    o.micro_batches = micro;
    o.schedule = sched;
    loom_program *p;
    ck_assert_msg(loom_compile(g, loom_softmax_cross_entropy(g, h, y, NULL), &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
    float xs[8 * 4];
    int32_t ys[8];
    for (int i = 0; i < 8 * 4; i++)
        xs[i] = (float)((i * 7) % 5) - 2;
    for (int i = 0; i < 8; i++)
        ys[i] = i % 4;
    ck_assert(loom_program_feed(p, x, &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {8, 4}, .data = xs}) == LOOM_OK);
    ck_assert(loom_program_feed(p, y, &(loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {8}, .data = ys}) == LOOM_OK);
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, 5) == LOOM_OK, "%s", loom_program_error(p));
    int64_t n;
    const double *l = loom_program_losses(p, &n);
    ck_assert_int_eq(n, 5);
    memcpy(loss, l, 5 * sizeof *l);
    loom_array a;
    ck_assert_msg(loom_program_fetch(p, wt, &a) == LOOM_OK, "%s", loom_program_error(p));
    for (int i = 0; i < 16; i++)
        w[i] = ((const float *)a.data)[i];
    loom_program_free(p);
    loom_graph_free(g);
}

START_TEST(test_shared_parameter_over_ranks)
{
    double want[5], got[5], wwant[16], wgot[16];
    shared_parameter("cpu:0", "cpu:0", 0, LOOM_SCHEDULE_1F1B, want, wwant);
    for (int sched = 0; sched < LOOM_SCHEDULE_COUNT; sched++) {
        shared_parameter("@0/cpu:0", "@1/cpu:0", 4, (loom_schedule)sched, got, wgot);
        char what[96];
        snprintf(what, sizeof what, "rank %d: a parameter of rank 0 read on rank 1, %s", loom_dist_rank(), sched ? "GPipe" : "1F1B");
        lt_assert_close(got, want, 5, 1e-5, what);
        lt_assert_close(wgot, wwant, 16, 1e-5, what);
    }
}
END_TEST

int main(void)
{
    if (lt_mpi_init("mpi_pipeline", placement, sizeof placement, "cpu:0"))
        return 1;
    const TTest *cases[] = {test_two_stages_over_ranks, test_modes_and_plan_json_over_ranks, test_four_stages_over_ranks,
                            test_data_parallel_micro_over_ranks, test_shared_parameter_over_ranks};
    TCase *tc = tcase_create("micro-batches over ranks");
    tcase_set_timeout(tc, 240);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        tcase_add_test(tc, cases[i]);
    Suite *s = suite_create("mpi_pipeline");
    suite_add_tcase(s, tc);
    return lt_run_mpi_suite(s);
}
