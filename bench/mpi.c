/* Runs over several processes (build with MPI; run under mpirun, e.g. mpirun -np 2 build/bench/mpi).
 * Rank 0 prints one JSON line per case:
 *
 *   {"case":"allreduce","ranks":2,"devices_per_rank":1,"bytes":16777216,"per_step":1,"route":"one phase",
 *    "net_yield_us":0,"mpi_ms":..,"mpi_med_ms":..,"mpi_busbw_gbs":..,"mpi_k_ms":..,"mpi_k_med_ms":..,
 *    "loom_step_ms":..,"loom_local_step_ms":..,"loom_boxing_ms":..,"loom_boxing_med_ms":..,"loom_busbw_gbs":..,
 *    "ratio":..,"ratio_k":..}
 *
 *   The all-reduce of a partial sum between ranks through Loom's boxing, against MPI_Allreduce
 *   alone on buffers of the same size (bytes of floats). Loom's side is a forward step over
 *   per_step inputs x declared P on @0-(n-1)/cpu:0 (one device per rank; with --devices 2,
 *   @0-(n-1)/cpu:0-1; per_step = 16 MiB / bytes, 1 to 16, so that a small all-reduce is timed
 *   over 16 MiB of them, not lost in the noise of the step's fixed cost): each z = x, computed P
 *   on the devices (a fed input is every rank's own: only what devices compute crosses ranks),
 *   y = relu(z) is asked to be B, so the boxing of z is the all-reduce P -> B (its messages
 *   through the communication thread, the sum), then the first element of y (asked B too, so
 *   nothing else is boxed) is summed into the loss. The same step with the inputs declared B (no
 *   boxing) is timed too, and loom_boxing_ms is the difference over per_step: what both share is
 *   z and one pass of relu over each and the runtime's own cost. route: the all-reduce in one
 *   phase (every device reads every part whole), or as a ring (a reduce-scatter, of which only a
 *   device's range of another rank's part crosses, then an all-gather of the ranges:
 *   graphs/plan/plan.c), the route a cost model with a boxing latency of a second, and of a
 *   picosecond, chooses. MPI makes per_step calls a step, back to back, on one buffer (mpi_ms:
 *   hot in cache from 1 to 4 MiB) and on per_step buffers, one a call (mpi_k_ms: the same memory
 *   as the step's per_step tensors; ratio_k is against it). Steps of a run overlap as in training
 *   (a step's parts may travel while the step before computes): the figure is what the boxing
 *   adds to a step. mpi_ms, loom_step_ms and loom_local_step_ms are the best of the repetitions,
 *   and loom_boxing_ms comes from the best two; the *_med_ms fields are medians, to show the noise
 *   (a boxing lost in it is null). Bus bandwidth as NCCL counts it: 2 (n - 1) / n bytes per
 *   all-reduce over its time (n ranks); ratio is Loom's bus bandwidth over MPI's, from the best
 *   times (goal >= 0.9). Each size is timed with the communication thread's two settings
 *   (net_yield_us, see set_poll), one line each, against the same MPI times.
 *
 *   {"case":"hop","ranks":2,"net_yield_us":0,"loom_us":..,"loom_med_us":..,"mpi_us":..,"mpi_med_us":..,
 *    "mpi_thread_us":..,"mpi_thread_med_us":..}
 *
 *   One message between rank 0 and rank 1: Loom's is a move of one float to the other rank's
 *   device and a relu there (the difference of a run of one step of a chain of 130 such hops and
 *   one of 2, over 128: what a run costs besides its hops drops out), through both communication
 *   threads, under each setting of theirs; MPI's a ping-pong of 4 bytes (MPI_Send, MPI_Recv)
 *   from the main thread, and from a thread of its own (mpi_thread: what an actor's thread
 *   calling MPI itself under MPI_THREAD_MULTIPLE would see). Best of 9 and median.
 *
 *   {"case":"dp_step","placement":"cpu:0-1","ranks":1,"step_ms":..}
 *   {"case":"dp_step","placement":"@0-1/cpu:0","ranks":2,"net_yield_us":0,"step_ms":..}
 *
 *   A data-parallel MLP training step (Adam; batch 4096 of 256 features, 512 hidden, 10 classes),
 *   on one rank with two devices and on two ranks with one device each (there with each setting
 *   of the communication thread, interleaved: what its polling costs the ranks' compute).
 *
 * Usage: mpi [allreduce] [--devices 1|2] [MIB ...] (allreduce: those cases alone; CPU devices a
 * rank for the all-reduce, default 1; all-reduce sizes in MiB, default 1 4 16 64). All-reduce
 * times are of 9 repetitions of 10 steps (MPI: of 10 per_step calls) after a warm-up, MPI's and
 * the programs' of a size interleaved; the MLP's the best of 5. The bench sets LOOM_NET_YIELD_US itself. */
#define _POSIX_C_SOURCE 200809L /* setenv, mkdtemp, open_memstream */
#include <loom/loom.h>

#include <mpi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { REPS = 5, AR_REPS = 9, STEPS = 10, MAX_PER_STEP = 16 };

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

/* The forward step over k inputs of n floats each declared sbp on one device per rank (see the
 * top), compiled and fed (their data kept in *data). */
static loom_program *reduce_program(int64_t n, int k, loom_sbp sbp, int ranks, int per_rank, const char *cost, loom_graph **gp,
                                    float **data)
{
    char where[64];
    snprintf(where, sizeof where, "@0-%d/cpu:0%s", ranks - 1, per_rank > 1 ? "-1" : "");
    loom_graph *g = *gp = graph_on(where);
    loom_tensor *x[MAX_PER_STEP], *loss = NULL;
    for (int i = 0; i < k; i++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", i);
        x[i] = loom_input(g, name, LOOM_F32, loom_shape(n));
        loom_tensor_set_sbp(x[i], sbp);
        /* z = x on the devices: a fed input is every rank's own (its source's), only what the
         * devices compute crosses ranks */
        loom_tensor *z = loom_scale(g, x[i], 1.0);
        loom_tensor_set_sbp(z, sbp);
        loom_tensor *y = loom_relu(g, z), *first;
        loom_tensor_set_sbp(y, loom_broadcast()); /* P -> B before the relu: the whole all-reduce */
        first = loom_slice(g, y, 0, 0, 1);
        loom_tensor_set_sbp(first, loom_broadcast());
        loom_tensor *s = loom_sum(g, first, ~0u, 0);
        loss = loss ? loom_add(g, loss, s) : s;
    }
    loom_program *p;
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.cost_model = cost;
    if (loom_compile(g, loss, &opts, &p) != LOOM_OK) {
        fprintf(stderr, "mpi bench: %s\n", loom_graph_error(g));
        exit(1);
    }
    *data = malloc((size_t)n * sizeof **data);
    for (int64_t i = 0; i < n; i++)
        (*data)[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < k; i++)
        loom_program_feed(p, x[i], &(loom_array){.dtype = LOOM_F32, .ndim = 1, .shape = {n}, .data = *data});
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The best and the median of t[0..n). */
static void best_median(double *t, int n, double *best, double *med)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    *best = t[0];
    *med = t[n / 2];
}

/* The communication thread's settings compared (runtime/comm/mpi/mpi.c): LOOM_NET_YIELD_US 0, the
 * default (it sleeps as soon as it is idle), and 200 (it polls, yielding its core, for 200 us after
 * it last had work). */
enum { NPOLL = 2 };
static const char *const yield_us[NPOLL] = {"0", "200"};

static void set_poll(int k) { setenv("LOOM_NET_YIELD_US", yield_us[k], 1); }

/* The cost models that choose the all-reduce's route (graphs/plan/plan.c): one of a boxing latency
 * of a second keeps it in one phase, one of a picosecond makes it a ring wherever the model prefers
 * one (loom__all_reduce_ring: from 3 devices); each rank writes its own copy. */
static char model_dir[64], model[2][128];
static const char *const route_name[2] = {"one phase", "ring"};

static void write_models(void)
{
    static const char *const lat[2] = {"1", "1e-12"};
    snprintf(model_dir, sizeof model_dir, "/tmp/loom_bench_mpi_XXXXXX");
    if (!mkdtemp(model_dir)) {
        perror("mpi bench: mkdtemp");
        exit(1);
    }
    for (int i = 0; i < 2; i++) {
        snprintf(model[i], sizeof model[i], "%s/%s.json", model_dir, i ? "ring" : "one");
        FILE *f = fopen(model[i], "w");
        if (!f || fprintf(f,
                          "{\"format\": \"loom-cost-model\", \"version\": 1, \"devices\": {\"cpu\": {\"flops\": 1e11, "
                          "\"mem_bw\": 1e10, \"op_latency\": 1e-5, \"box_latency\": %s, \"box_bw\": 1e10, "
                          "\"step_latency\": 5e-5, \"shared\": true}}}\n",
                          lat[i]) < 0 ||
            fclose(f) != 0) {
            perror("mpi bench: writing a cost model");
            exit(1);
        }
    }
}

static void remove_models(void)
{
    for (int i = 0; i < 2; i++)
        unlink(model[i]);
    rmdir(model_dir);
}

/* 1 when p's plan boxes a partial sum into the ranges of an axis (the ring's reduce-scatter). */
static int has_ring(loom_program *p)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f || loom_program_write_plan(p, LOOM_RUN_EVAL, LOOM_PLAN_TEXT, f) != LOOM_OK) {
        fprintf(stderr, "mpi bench: cannot print the plan\n");
        exit(1);
    }
    fclose(f);
    int ring = strstr(text, "(P, P) -> S(") || strstr(text, "(P, B) -> S(");
    free(text);
    return ring;
}

/* Seconds per call of MPI_Allreduce on n floats, and per step of the programs under each setting
 * (the all-reduce in one phase, as a ring, and the inputs declared B), their repetitions
 * interleaved so that a busy spell of the machine falls on all alike. */
static void allreduce_case(int64_t bytes, int rank, int ranks, int per_rank)
{
    int64_t n = bytes / 4;
    /* k all-reduces a step, k * bytes at least 16 MiB: what they add is then not lost in the noise
     * of the step's fixed cost (the runtime's own round trips between ranks, bench/README.md) */
    int k = bytes >= (16 << 20) ? 1 : (int)((16 << 20) / bytes);
    k = k > MAX_PER_STEP ? MAX_PER_STEP : k;
    float *in = malloc((size_t)bytes), *out = malloc((size_t)bytes), *d[2], *dl;
    for (int64_t i = 0; i < n; i++)
        in[i] = (float)(i % 5);
    /* k buffers, as the step's k tensors: the same memory as Loom's inputs, not one buffer hot in
     * cache */
    float *ins[MAX_PER_STEP], *outs[MAX_PER_STEP];
    for (int c = 0; c < k; c++) {
        ins[c] = malloc((size_t)bytes), outs[c] = malloc((size_t)bytes);
        if (!ins[c] || !outs[c]) {
            fprintf(stderr, "mpi bench: out of memory\n");
            exit(1);
        }
        memcpy(ins[c], in, (size_t)bytes);
        memset(outs[c], 0, (size_t)bytes);
    }
    loom_graph *g[2], *gl;
    loom_program *with[2];
    for (int r = 0; r < 2; r++)
        with[r] = reduce_program(n, k, loom_partial_sum(), ranks, per_rank, model[r], &g[r], &d[r]);
    loom_program *local = reduce_program(n, k, loom_broadcast(), ranks, per_rank, NULL, &gl, &dl);
    const int ring = has_ring(with[1]), routes = ring ? 2 : 1; /* on 2 ranks the model keeps one phase */
    MPI_Allreduce(in, out, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
    for (int r = 0; r < routes; r++)
        loom_program_run_steps(with[r], LOOM_RUN_EVAL, 1);
    loom_program_run_steps(local, LOOM_RUN_EVAL, 1);
    double tm[AR_REPS], tk[AR_REPS], tw[NPOLL][2][AR_REPS], tl[NPOLL][AR_REPS];
    for (int r = 0; r < AR_REPS; r++) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = now_s();
        for (int c = 0; c < STEPS * k; c++)
            MPI_Allreduce(in, out, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        tm[r] = (now_s() - t0) / (STEPS * k);
        MPI_Barrier(MPI_COMM_WORLD);
        t0 = now_s();
        for (int c = 0; c < STEPS * k; c++)
            MPI_Allreduce(ins[c % k], outs[c % k], (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        tk[r] = (now_s() - t0) / (STEPS * k);
        for (int i = 0; i < NPOLL; i++) { /* in turns first */
            int y = (r + i) % NPOLL;
            set_poll(y);
            for (int j = 0; j < routes; j++) {
                int q = (r + j) % routes;
                tw[y][q][r] = time_steps(with[q], LOOM_RUN_EVAL);
            }
            tl[y][r] = time_steps(local, LOOM_RUN_EVAL);
        }
    }
    double mpi, mpi_med, mk, mk_med, bus = 2.0 * (ranks - 1) / ranks * (double)bytes;
    best_median(tm, AR_REPS, &mpi, &mpi_med);
    best_median(tk, AR_REPS, &mk, &mk_med);
    for (int y = 0; y < NPOLL; y++) {
        double l, l_med;
        best_median(tl[y], AR_REPS, &l, &l_med);
        for (int q = 0; q < routes; q++) {
            double w, w_med;
            best_median(tw[y][q], AR_REPS, &w, &w_med);
            double b = (w - l) / k, b_med = (w_med - l_med) / k;
            char boxed[240] = "\"loom_boxing_ms\":null,\"loom_boxing_med_ms\":null,\"loom_busbw_gbs\":null,\"ratio\":null,\"ratio_k\":null";
            if (b > 0 && b_med > 0) /* else lost in the noise */
                snprintf(boxed, sizeof boxed,
                         "\"loom_boxing_ms\":%.3f,\"loom_boxing_med_ms\":%.3f,\"loom_busbw_gbs\":%.3f,\"ratio\":%.3f,\"ratio_k\":%.3f",
                         b * 1e3, b_med * 1e3, bus / b / 1e9, mpi / b, mk / b);
            if (rank == 0)
                printf("{\"case\":\"allreduce\",\"ranks\":%d,\"devices_per_rank\":%d,\"bytes\":%lld,\"per_step\":%d,\"route\":\"%s\",\"net_yield_us\":%s,"
                       "\"mpi_ms\":%.3f,\"mpi_med_ms\":%.3f,\"mpi_busbw_gbs\":%.3f,\"mpi_k_ms\":%.3f,\"mpi_k_med_ms\":%.3f,"
                       "\"loom_step_ms\":%.3f,\"loom_local_step_ms\":%.3f,%s}\n",
                       ranks, per_rank, (long long)bytes, k, route_name[q], yield_us[y], mpi * 1e3, mpi_med * 1e3, bus / mpi / 1e9, mk * 1e3,
                       mk_med * 1e3, w * 1e3, l * 1e3, boxed);
        }
    }
    unsetenv("LOOM_NET_YIELD_US");
    fflush(stdout);
    for (int r = 0; r < 2; r++) {
        loom_program_free(with[r]);
        loom_graph_free(g[r]);
        free(d[r]);
    }
    loom_program_free(local);
    loom_graph_free(gl);
    for (int c = 0; c < k; c++)
        free(ins[c]), free(outs[c]);
    free(in), free(out), free(dl);
}

/* Seconds of a run of one step of p (evaluation), after a barrier. */
static double time_run(loom_program *p)
{
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now_s();
    if (loom_program_run_steps(p, LOOM_RUN_EVAL, 1) != LOOM_OK) {
        fprintf(stderr, "mpi bench: %s\n", loom_program_error(p));
        exit(1);
    }
    return now_s() - t0;
}

/* The forward step of a chain of `hops` moves of one float between rank 0 and rank 1 (each hop a
 * relu of the value moved to the other rank's device), compiled and fed. */
static loom_program *hop_program(int hops, loom_graph **gp)
{
    loom_placement *at[2] = {loom_placement_parse("@0/cpu:0", NULL), loom_placement_parse("@1/cpu:0", NULL)};
    loom_graph *g = *gp = loom_graph_new();
    loom_graph_set_placement(g, at[0]);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(1)), *v = x;
    for (int i = 0; i < hops; i++)
        v = loom_relu(g, loom_to_placement(g, v, at[(i + 1) % 2]));
    loom_tensor *loss = loom_sum(g, v, ~0u, 0);
    loom_placement_free(at[0]);
    loom_placement_free(at[1]);
    loom_program *p;
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    if (loom_compile(g, loss, &opts, &p) != LOOM_OK) {
        fprintf(stderr, "mpi bench: %s\n", loom_graph_error(g));
        exit(1);
    }
    static float one = 1.0f;
    loom_program_feed(p, x, &(loom_array){.dtype = LOOM_F32, .ndim = 1, .shape = {1}, .data = &one});
    return p;
}

/* Seconds of `hops` one-way messages of 4 bytes between ranks 0 and 1 (a ping-pong), MPI alone. */
static double mpi_hops(int hops, int rank)
{
    float v = 1.0f;
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now_s();
    for (int i = 0; i < hops && rank < 2; i++) {
        if (i % 2 == rank)
            MPI_Send(&v, 1, MPI_FLOAT, 1 - rank, 9, MPI_COMM_WORLD);
        else
            MPI_Recv(&v, 1, MPI_FLOAT, 1 - rank, 9, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    return now_s() - t0;
}

typedef struct hop_job {
    int hops, rank;
    double s;
} hop_job;

static void *mpi_hops_thread(void *arg)
{
    hop_job *j = arg;
    j->s = mpi_hops(j->hops, j->rank);
    return NULL;
}

/* One message between ranks: Loom's (a move between the ranks' devices, through the communication
 * threads: the difference of a run of one step of LONG hops and one of SHORT, over LONG - SHORT,
 * so that what a run costs besides its hops drops out), under each setting of the communication
 * thread, against MPI_Send/MPI_Recv alone, called from the main thread and from a thread of its
 * own (what an actor's thread calling MPI itself under MPI_THREAD_MULTIPLE would see). */
static void hop_case(int rank, int ranks)
{
    enum { SHORT = 2, LONG = 130 };
    loom_graph *gs, *gl;
    loom_program *ps = hop_program(SHORT, &gs), *pl = hop_program(LONG, &gl);
    double tl[NPOLL][AR_REPS], ts[NPOLL][AR_REPS], tm[AR_REPS], tt[AR_REPS];
    for (int r = -1; r < AR_REPS; r++) { /* r = -1: a warm-up */
        double m = mpi_hops(LONG - SHORT, rank);
        hop_job j = {.hops = LONG - SHORT, .rank = rank};
        pthread_t th;
        if (pthread_create(&th, NULL, mpi_hops_thread, &j) != 0 || pthread_join(th, NULL) != 0) {
            fprintf(stderr, "mpi bench: pthread_create failed\n");
            exit(1);
        }
        for (int i = 0; i < NPOLL; i++) {
            int y = (r + 1 + i) % NPOLL;
            set_poll(y);
            double a = time_run(pl), b = time_run(ps);
            if (r >= 0)
                tl[y][r] = a, ts[y][r] = b;
        }
        if (r >= 0)
            tm[r] = m, tt[r] = j.s;
    }
    unsetenv("LOOM_NET_YIELD_US");
    double m, m_med, t, t_med;
    best_median(tm, AR_REPS, &m, &m_med);
    best_median(tt, AR_REPS, &t, &t_med);
    for (int y = 0; y < NPOLL && rank == 0; y++) {
        double d[AR_REPS];
        for (int r = 0; r < AR_REPS; r++)
            d[r] = tl[y][r] - ts[y][r];
        double best, med;
        best_median(d, AR_REPS, &best, &med);
        const double n = LONG - SHORT;
        printf("{\"case\":\"hop\",\"ranks\":%d,\"net_yield_us\":%s,\"loom_us\":%.1f,\"loom_med_us\":%.1f,\"mpi_us\":%.1f,"
               "\"mpi_med_us\":%.1f,\"mpi_thread_us\":%.1f,\"mpi_thread_med_us\":%.1f}\n",
               ranks, yield_us[y], best / n * 1e6, med / n * 1e6, m / n * 1e6, m_med / n * 1e6, t / n * 1e6, t_med / n * 1e6);
    }
    fflush(stdout);
    loom_program_free(ps);
    loom_program_free(pl);
    loom_graph_free(gs);
    loom_graph_free(gl);
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
    double t[NPOLL] = {1e30, 1e30};
    loom_program_run_steps(p, LOOM_RUN_STEP, 1);
    for (int r = 0; r < REPS; r++)
        for (int i = 0; i < (spans ? NPOLL : 1); i++) {
            int k = (r + i) % (spans ? NPOLL : 1);
            set_poll(k);
            if (spans)
                MPI_Barrier(MPI_COMM_WORLD);
            double t0 = now_s();
            loom_program_run_steps(p, LOOM_RUN_STEP, STEPS);
            double s = (now_s() - t0) / STEPS;
            t[k] = s < t[k] ? s : t[k];
        }
    unsetenv("LOOM_NET_YIELD_US");
    for (int k = 0; rank == 0 && k < (spans ? NPOLL : 1); k++)
        if (spans)
            printf("{\"case\":\"dp_step\",\"placement\":\"%s\",\"ranks\":%d,\"net_yield_us\":%s,\"step_ms\":%.3f}\n", where,
                   ranks, yield_us[k], t[k] * 1e3);
        else
            printf("{\"case\":\"dp_step\",\"placement\":\"%s\",\"ranks\":1,\"step_ms\":%.3f}\n", where, t[0] * 1e3);
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
    int nmib = 4, first = 1, per_rank = 1, only = 0;
    if (argc > 1 && !strcmp(argv[1], "allreduce")) /* the all-reduces alone */
        only = 1, argv++, argc--;
    if (argc == 2 && !strcmp(argv[1], "hop")) { /* the messages alone */
        if (ranks >= 2)
            hop_case(rank, ranks);
        loom_dist_finalize();
        MPI_Finalize();
        return 0;
    }
    if (argc > 2 && !strcmp(argv[1], "--devices")) {
        per_rank = atoi(argv[2]);
        first = 3;
        if (per_rank != 1 && per_rank != 2) {
            fprintf(stderr, "mpi bench: --devices is 1 or 2 (CPU devices a rank), not '%s'\n", argv[2]);
            return 2;
        }
    }
    if (argc > first)
        for (nmib = 0; first + nmib < argc && nmib < 16; nmib++)
            mib[nmib] = atoll(argv[first + nmib]);
    write_models();
    for (int k = 0; k < nmib; k++)
        allreduce_case(mib[k] << 20, rank, ranks, per_rank);
    remove_models();
    if (only) {
        loom_dist_finalize();
        MPI_Finalize();
        return 0;
    }
    if (ranks >= 2)
        hop_case(rank, ranks);
    dp_case("cpu:0-1", rank, ranks, 0);
    char where[64];
    snprintf(where, sizeof where, "@0-%d/cpu:0", ranks - 1);
    dp_case(where, rank, ranks, 1);
    loom_dist_finalize();
    MPI_Finalize();
    return 0;
}
