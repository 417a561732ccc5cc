/* Runs over several processes (build with MPI; run under mpirun, e.g. mpirun -np 2 build/bench/mpi).
 * Rank 0 prints one JSON line per case:
 *
 *   {"case":"allreduce","ranks":2,"bytes":16777216,"mpi_ms":..,"mpi_busbw_gbs":..,
 *    "loom_step_ms":..,"loom_local_step_ms":..,"loom_boxing_ms":..,"loom_busbw_gbs":..,"ratio":..}
 *
 *   The all-reduce of a partial sum between ranks through Loom's boxing, against MPI_Allreduce
 *   alone on buffers of the same size. Loom's side is a step that reads an input declared P on
 *   @0-(n-1)/cpu:0 (one device per rank) through relu and sums it (forward only): the boxing P -> B
 *   is the only communication. The same step with the input declared B (no boxing) is timed too,
 *   and loom_boxing_ms is the difference, so that the compute both share is left out (null when
 *   the difference is lost in the machine's noise: the figures are then not a measurement). Bus
 *   bandwidth as NCCL counts it: 2 (n - 1) / n bytes per all-reduce over its time; ratio is
 *   Loom's bus bandwidth over MPI's (goal >= 0.9).
 *
 *   {"case":"dp_step","placement":"cpu:0-1","ranks":1,"step_ms":..}
 *   {"case":"dp_step","placement":"@0-1/cpu:0","ranks":2,"step_ms":..}
 *
 *   A data-parallel MLP training step (Adam; batch 4096 of 256 features, 512 hidden, 10 classes),
 *   on one rank with two devices and on two ranks with one device each.
 *
 * Usage: mpi [MIB ...] (all-reduce sizes in MiB; default 1 4 16 64). Times are the best of 5
 * repetitions of 10 steps (MPI: of 10 calls) after a warm-up, the three of a size interleaved. */
#include <loom/loom.h>

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { REPS = 5, STEPS = 10 };

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static loom_graph *graph_on(const char *where)
{
    loom_graph *g = loom_graph_new();
    loom_placement *pl = loom_placement_parse(where, NULL);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    return g;
}

/* Seconds per step of STEPS steps of p in mode, after a barrier; every rank runs it (a rank not
 * on the placement too: it runs the host's part). */
static double time_steps(loom_program *p, loom_run_mode mode)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now_s();
    if (loom_program_run_steps(p, mode, STEPS) != LOOM_OK) {
        fprintf(stderr, "mpi bench: %s\n", loom_program_error(p));
        exit(1);
    }
    return (now_s() - t0) / STEPS;
}

/* The forward step over an input of n floats declared sbp on one device per rank, compiled and
 * fed (its data kept in *data). */
static loom_program *reduce_program(int64_t n, loom_sbp sbp, int ranks, loom_graph **gp, float **data)
{
    char where[64];
    snprintf(where, sizeof where, "@0-%d/cpu:0", ranks - 1);
    loom_graph *g = *gp = graph_on(where);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(n));
    loom_tensor_set_sbp(x, sbp);
    loom_tensor *loss = loom_sum(g, loom_relu(g, x), ~0u, 0);
    loom_program *p;
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    if (loom_compile(g, loss, &opts, &p) != LOOM_OK) {
        fprintf(stderr, "mpi bench: %s\n", loom_graph_error(g));
        exit(1);
    }
    *data = malloc((size_t)n * sizeof **data);
    for (int64_t i = 0; i < n; i++)
        (*data)[i] = (float)(i % 7) - 3.0f;
    loom_program_feed(p, x, &(loom_array){.dtype = LOOM_F32, .ndim = 1, .shape = {n}, .data = *data});
    return p;
}

/* Best seconds per call of MPI_Allreduce on n floats, and per step of the two programs, their
 * repetitions interleaved so that a busy spell of the machine falls on all three alike. */
static void allreduce_case(int64_t bytes, int rank, int ranks)
{
    int64_t n = bytes / 4;
    float *in = malloc((size_t)bytes), *out = malloc((size_t)bytes), *d1, *d2;
    for (int64_t i = 0; i < n; i++)
        in[i] = (float)(i % 5);
    loom_graph *g1, *g2;
    loom_program *with = reduce_program(n, loom_partial_sum(), ranks, &g1, &d1);
    loom_program *local = reduce_program(n, loom_broadcast(), ranks, &g2, &d2);
    MPI_Allreduce(in, out, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
    loom_program_run_steps(with, LOOM_RUN_EVAL, 1);
    loom_program_run_steps(local, LOOM_RUN_EVAL, 1);
    double mpi = 1e30, tw = 1e30, tl = 1e30;
    for (int r = 0; r < REPS; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now_s();
        for (int k = 0; k < STEPS; k++)
            MPI_Allreduce(in, out, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        double t = (now_s() - t0) / STEPS;
        mpi = t < mpi ? t : mpi;
        t = time_steps(with, LOOM_RUN_EVAL);
        tw = t < tw ? t : tw;
        t = time_steps(local, LOOM_RUN_EVAL);
        tl = t < tl ? t : tl;
    }
    double box = tw - tl, bus = 2.0 * (ranks - 1) / ranks * (double)bytes;
    char boxed[160] = "\"loom_boxing_ms\":null,\"loom_busbw_gbs\":null,\"ratio\":null"; /* lost in the noise */
    if (box > 0)
        snprintf(boxed, sizeof boxed, "\"loom_boxing_ms\":%.3f,\"loom_busbw_gbs\":%.3f,\"ratio\":%.3f", box * 1e3,
                 bus / box / 1e9, mpi / box);
    if (rank == 0)
        printf("{\"case\":\"allreduce\",\"ranks\":%d,\"bytes\":%lld,\"mpi_ms\":%.3f,\"mpi_busbw_gbs\":%.3f,"
               "\"loom_step_ms\":%.3f,\"loom_local_step_ms\":%.3f,%s}\n",
               ranks, (long long)bytes, mpi * 1e3, bus / mpi / 1e9, tw * 1e3, tl * 1e3, boxed);
    fflush(stdout);
    loom_program_free(with);
    loom_program_free(local);
    loom_graph_free(g1);
    loom_graph_free(g2);
    free(in), free(out), free(d1), free(d2);
}

/* A barrier that does not spin: a rank that waits here leaves its core to the others (MPI's own
 * barrier polls). */
static void quiet_barrier(void)
{
    MPI_Request r;
    int done = 0;
    MPI_Ibarrier(MPI_COMM_WORLD, &r);
    while (MPI_Test(&r, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done)
        nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
}

/* The data-parallel MLP's training step on `where` (every rank compiles it; a plan of one process
 * runs on rank 0 only). */
static void dp_case(const char *where, int rank, int ranks, int spans)
{
    if (!spans && rank != 0) {
        quiet_barrier();
        return;
    }
    enum { B = 4096, F = 256, H = 512, C = 10 };
    loom_graph *g = graph_on(where);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(B, F));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(B));
    loom_tensor_set_sbp(x, loom_split(0));
    loom_tensor_set_sbp(y, loom_split(0));
    loom_tensor *h = loom_tanh(g, loom_nn_linear(g, "fc1", x, H, 1));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, C, 1), y, NULL);
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_adam(0.001);
    loom_program *p;
    if (loom_compile(g, loss, &opts, &p) != LOOM_OK) {
        fprintf(stderr, "mpi bench: %s\n", loom_graph_error(g));
        exit(1);
    }
    float *xs = malloc(sizeof(float) * B * F);
    int32_t *ys = malloc(sizeof(int32_t) * B);
    for (int i = 0; i < B * F; i++)
        xs[i] = (float)((i * 31) % 17) / 17.0f - 0.5f;
    for (int i = 0; i < B; i++)
        ys[i] = i % C;
    loom_program_feed(p, x, &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {B, F}, .data = xs});
    loom_program_feed(p, y, &(loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {B}, .data = ys});
    double t = 1e30;
    loom_program_run_steps(p, LOOM_RUN_STEP, 1);
    for (int r = 0; r < REPS; r++) {
        double t0 = now_s();
        if (spans)
            MPI_Barrier(MPI_COMM_WORLD);
        loom_program_run_steps(p, LOOM_RUN_STEP, STEPS);
        double s = (now_s() - t0) / STEPS;
        t = s < t ? s : t;
    }
    if (rank == 0)
        printf("{\"case\":\"dp_step\",\"placement\":\"%s\",\"ranks\":%d,\"step_ms\":%.3f}\n", where, spans ? ranks : 1, t * 1e3);
    fflush(stdout);
    loom_program_free(p);
    loom_graph_free(g);
    free(xs);
    free(ys);
    if (!spans)
        quiet_barrier();
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
    loom_error e = LOOM_ERROR_INIT;
    if (loom_dist_init(&e) != LOOM_OK) {
        fprintf(stderr, "mpi bench: %s\n", e.msg);
        return 1;
    }
    int rank = loom_dist_rank(), ranks = loom_dist_size();
    int64_t mib[16] = {1, 4, 16, 64};
    int nmib = 4;
    if (argc > 1)
        for (nmib = 0; nmib + 1 < argc && nmib < 16; nmib++)
            mib[nmib] = atoll(argv[nmib + 1]);
    for (int k = 0; k < nmib; k++)
        allreduce_case(mib[k] << 20, rank, ranks);
    dp_case("cpu:0-1", rank, ranks, 0);
    char where[64];
    snprintf(where, sizeof where, "@0-%d/cpu:0", ranks - 1);
    dp_case(where, rank, ranks, 1);
    loom_dist_finalize();
    MPI_Finalize();
    return 0;
}
