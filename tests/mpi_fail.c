/* Failures over ranks (ctest label mpi, through tests/mpi_fail.sh): every rank trains one MLP on
 * @0-(n-1)/cpu:0-1 through a data source, and rank 1 breaks the run as argv[1] says:
 *   source  its source fails at step 3 (LOOM_ERR_IO): every rank's run must end with that message
 *           and that status, the other ranks' naming rank 1;
 *   plan    it builds a wider model: every rank must refuse to run, naming rank 1;
 *   kill    it dies (SIGKILL) at step 50: every other rank's run must end with an error naming
 *           rank 1 within 30 s;
 *   cancel  it cancels its run at step 3 (loom_program_cancel): every rank's run must end
 *           cancelled, the other ranks' naming rank 1;
 *   yield   its LOOM_NET_YIELD_US is not a number: every rank's run must end with LOOM_ERR_INVALID
 *           naming the variable, the other ranks' naming rank 1;
 *   kill_yield  kill, with every rank's communication thread polling (LOOM_NET_YIELD_US=200);
 *   timeout its LOOM_NET_TIMEOUT is not a number of seconds: every rank's run must end with
 *           LOOM_ERR_INVALID naming the variable, the other ranks' naming rank 1;
 *   fetch   the run of 5 steps succeeds; rank 0 fetches a parameter and rank 1 does not (its
 *           program went another way): rank 0's fetch, a collective of every rank, must fail naming
 *           rank 1 within three times LOOM_NET_TIMEOUT (the script sets 3 s) instead of waiting for
 *           it forever.
 * With micro-batches (4 a step), the model a pipeline of two stages, the first on rank 1 and the
 * second on rank 0 (on 4 ranks, ranks 2 and 3 hold no stage), each rank's groups of pieces in
 * flight when the failure comes:
 *   source_pipe   source, under 1F1B;
 *   cancel_pipe   cancel, under GPipe;
 *   numerics_pipe rank 1's data holds an infinity in micro-batch 1 of step 3, and the numerics
 *           check stops its first layer's act there, in the middle of the step's group: every
 *           rank's run must end with LOOM_ERR_RUNTIME naming the op and the piece.
 *   These print the steps each rank applied, which the script checks are the same on every rank
 *   (a step is applied whole or not at all, on every rank alike).
 * Each rank that sees what it must prints "ok: rank R ..." and exits 0, else it says why and exits
 * 1. The script counts the ok lines (a killed rank prints none, and mpirun's status is then not
 * the test's). */
#include <loom/loom.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { STEPS = 2000, BREAK_AT = 3, KILL_AT = 50, ROWS = 8, MICRO = 4 };

static const char *mode;
static int in_pipeline; /* a *_pipe case: micro-batches through a pipeline */
static float xs[ROWS * 6];
static int32_t ys[ROWS];
static loom_tensor *x, *y;
static loom_program *prog;

static loom_status source(void *ctx, int64_t step, loom_feeder *fd, int *end, char *msg, size_t len)
{
    (void)ctx, (void)end;
    if (loom_dist_rank() == 1 && step == KILL_AT && !strcmp(mode, "kill"))
        raise(SIGKILL); /* well into the run: the ranks have talked */
    if (loom_dist_rank() == 1 && step == BREAK_AT) {
        if (!strcmp(mode, "cancel"))
            loom_program_cancel(prog);
        if (!strcmp(mode, "source")) {
            snprintf(msg, len, "planned failure at step %d", BREAK_AT);
            return LOOM_ERR_IO;
        }
    }
    float step_x[ROWS * 6];
    memcpy(step_x, xs, sizeof xs);
    if (loom_dist_rank() == 1 && step == BREAK_AT && !strcmp(mode, "numerics"))
        step_x[(ROWS / MICRO) * 6] = INFINITY; /* the first row of micro-batch 1 */
    loom_array a = {.dtype = LOOM_F32, .ndim = 2, .shape = {ROWS, 6}, .data = step_x};
    loom_array b = {.dtype = LOOM_I32, .ndim = 1, .shape = {ROWS}, .data = ys};
    loom_status s = loom_feeder_dense(fd, x, &a);
    return s == LOOM_OK ? loom_feeder_dense(fd, y, &b) : s;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    mode = argc > 1 ? argv[1] : "source";
    static char base[32];
    const char *suffix = strstr(mode, "_pipe");
    if (suffix && !suffix[5]) {
        in_pipeline = 1;
        snprintf(base, sizeof base, "%.*s", (int)(suffix - mode), mode);
        mode = base;
    }
    if (!strcmp(mode, "kill_yield")) {
        setenv("LOOM_NET_YIELD_US", "200", 1);
        mode = "kill";
    }
    loom_error e = LOOM_ERROR_INIT;
    if (loom_dist_init(&e) != LOOM_OK) {
        fprintf(stderr, "mpi_fail: %s\n", e.msg);
        return 1;
    }
    int rank = loom_dist_rank();
    char where[64];
    snprintf(where, sizeof where, "@0-%d/cpu:0-1", loom_dist_size() - 1);
    for (int i = 0; i < ROWS * 6; i++)
        xs[i] = (float)((i * 37) % 11) / 11.0f - 0.5f;
    for (int i = 0; i < ROWS; i++)
        ys[i] = i % 3;

    loom_graph *g = loom_graph_new();
    loom_placement *pl = loom_placement_parse(in_pipeline ? "@1/cpu:0" : where, &e);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    x = loom_input(g, "x", LOOM_F32, loom_shape(ROWS, 6));
    int hidden = !strcmp(mode, "plan") && rank == 1 ? 6 : 5;
    loom_tensor *h = loom_tanh(g, loom_nn_linear(g, "fc1", x, hidden, 1));
    if (in_pipeline) { /* the second stage on rank 0 */
        pl = loom_placement_parse("@0/cpu:0", &e);
        h = loom_to_placement(g, h, pl);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    y = loom_input(g, "y", LOOM_I32, loom_shape(ROWS));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 3, 1), y, NULL);
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_sgd(0.01);
    opts.micro_batches = in_pipeline ? MICRO : 0;
    opts.schedule = !strcmp(mode, "cancel") ? LOOM_SCHEDULE_GPIPE : LOOM_SCHEDULE_1F1B;
    opts.check_numerics = !strcmp(mode, "numerics");
    loom_program *p;
    if (loom_compile(g, loss, &opts, &p) != LOOM_OK) {
        printf("rank %d: cannot compile: %s\n", rank, loom_graph_error(g));
        return 1;
    }
    prog = p;
    loom_program_set_source(p, source, NULL);
    if (!strcmp(mode, "yield") && rank == 1)
        setenv("LOOM_NET_YIELD_US", "fast", 1);
    if (!strcmp(mode, "timeout") && rank == 1)
        setenv("LOOM_NET_TIMEOUT", "ten", 1);
    double t0 = seconds();
    const int fetch = !strcmp(mode, "fetch");
    loom_status st = loom_program_run_steps(p, LOOM_RUN_STEP, fetch ? 5 : STEPS);
    double took = seconds() - t0;
    const char *msg = loom_program_error(p);
    if (fetch) {
        int ok = st == LOOM_OK;
        loom_array w;
        if (ok && rank == 0) {
            t0 = seconds();
            st = loom_program_fetch(p, loom_graph_find(g, "fc1.weight"), &w);
            took = seconds() - t0;
            msg = loom_program_error(p);
            ok = st == LOOM_ERR_RUNTIME && strstr(msg, "rank 1: nothing came from it") && took < 15.0;
        }
        printf("%s: rank %d after %.1f s: %s\n", ok ? "ok" : "FAILED", rank, took, st == LOOM_OK ? "ran as it must" : msg);
        fflush(stdout);
        if (rank != 0)
            sleep(12); /* rank 0 waits for it (alive, not at the fetch) and reports first */
        loom_program_free(p);
        loom_graph_free(g);
        loom_dist_finalize();
        return ok ? 0 : 1;
    }
    const char *want = !strcmp(mode, "plan")     ? "the plan of rank 1 differs from rank 0's"
                       : !strcmp(mode, "source") ? "planned failure at step 3"
                       : !strcmp(mode, "numerics") ? "matmul 'matmul' on cpu:0 (piece 13): "
                       : !strcmp(mode, "cancel") ? "cancelled"
                       : !strcmp(mode, "yield")  ? "LOOM_NET_YIELD_US is 'fast'"
                       : !strcmp(mode, "timeout") ? "LOOM_NET_TIMEOUT is 'ten'"
                                                 : "rank 1";
    /* every rank returns the status the failure began with: the source's own on every rank */
    const loom_status want_st = !strcmp(mode, "source")                             ? LOOM_ERR_IO
                                : !strcmp(mode, "yield") || !strcmp(mode, "timeout") ? LOOM_ERR_INVALID
                                                                                     : LOOM_ERR_RUNTIME;
    int ok = st == want_st && strstr(msg, want) && (rank == 1 || strstr(msg, "rank 1")) && took <= 30.0;
    int64_t nloss = 0;
    loom_program_losses(p, &nloss);
    ok &= nloss <= (!strcmp(mode, "kill") ? KILL_AT : !strcmp(mode, "cancel") ? BREAK_AT + 1 : BREAK_AT);
    printf("%s: rank %d after %.1f s: %s (%s, %s expected), steps %lld\n", ok ? "ok" : "FAILED", rank, took,
           st == LOOM_OK ? "the run succeeded" : msg, loom_status_str(st), loom_status_str(want_st), (long long)nloss);
    fflush(stdout);
    loom_program_free(p);
    loom_graph_free(g);
    if (strcmp(mode, "kill") != 0)
        loom_dist_finalize();
    else /* a dead rank takes no part in MPI_Finalize, and mpirun ends the job when one rank exits
            without it: the others are given the time to report first */
        sleep(5);
    return ok ? 0 : 1;
}
