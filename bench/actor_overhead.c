/* The actor executor's per-act cost through the public API: a program whose step is a chain of
 * `--ops` loom_scale ops on a [4] f32 input (scales of 2 and 0.5 alternating, so the value comes
 * back), run as loom_program_run_steps(p, LOOM_RUN_EVAL, pieces). On one CPU device ("cpu:0"),
 * and on cpu:0-1 / cpu:0-3 with the chain cut into stages by loom_to_placement (each stage on a
 * one-device placement cpu:k): "blocks" cuts it into as many equal stages as devices, "interleaved"
 * moves the value to the next device before every op. us_per_act = wall time / (pieces * ops),
 * the scale ops only ("moves" says how many loom_to_placement ops the step has on top). A warm-up
 * run of one step (plan and actors built) is not timed. Then the raw concurrencykit ring
 * (<ck_ring.h> used directly, 32-byte messages by value, MPSC enqueue and its single-consumer
 * dequeue). Prints JSON lines:
 *
 *   {"case":"chain","placement":"cpu:0-1","devices":2,"layout":"blocks","ops":100,"moves":1,
 *    "pieces":10000,"regst_num":2,"us_per_act":0.08}
 *   {"case":"ring","threads":1,"ns_per_op":12.4}
 *
 * Usage: actor_overhead [--ops N] [--pieces N] [--reps N] (--actors is taken for --ops). The
 * best of --reps runs is reported (default 3), since a shared machine adds noise only upwards.
 * Dropped with the move to the public API: --spin and --pin (runtime options that are not
 * public), the per-thread message and sleep counts of LOOM_BENCH_VERBOSE, the "threads" key (the
 * runtime's threads follow from the plan: one per device, plus the source's and the host's) and
 * the TSan annotations of the ring. Goal: <= 1 us per act. */
#include <loom/loom.h>

#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ck_pr.h>
#include <ck_ring.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static loom_placement *cpu(int k)
{
    char s[32];
    snprintf(s, sizeof s, "cpu:%d", k);
    return loom_placement_parse(s, NULL);
}

/* Best us per act over reps runs of `pieces` steps of the chain; -1 on failure. *moves gets the
 * step's loom_to_placement count. */
static double chain_us_per_act(int n, int64_t pieces, int ndev, int interleave, int reps, int *moves)
{
    loom_graph *g = loom_graph_new();
    loom_placement *pl[8] = {0};
    for (int d = 0; d < ndev; d++)
        pl[d] = cpu(d);
    loom_graph_set_placement(g, pl[0]);
    loom_tensor *in = loom_input(g, "x", LOOM_F32, loom_shape(4)), *x = in;
    int dev = 0;
    *moves = 0;
    for (int k = 0; k < n; k++) {
        int want = interleave ? k % ndev : (int)((int64_t)k * ndev / n);
        if (want != dev) {
            x = loom_to_placement(g, x, pl[want]);
            dev = want;
            ++*moves;
        }
        x = loom_scale(g, x, k % 2 ? 0.5 : 2.0);
    }
    double best = -1;
    loom_program *p = NULL;
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    if (loom_compile(g, NULL, &o, &p) != LOOM_OK) {
        fprintf(stderr, "actor_overhead: loom_compile: %s\n", loom_graph_error(g));
        goto out;
    }
    float v[4] = {1, 2, 3, 4};
    loom_array a = {.dtype = LOOM_F32, .ndim = 1, .shape = {4}, .data = v};
    if (loom_program_feed(p, in, &a) != LOOM_OK || loom_program_keep(p, x) != LOOM_OK ||
        loom_program_run_steps(p, LOOM_RUN_EVAL, 1) != LOOM_OK) {
        fprintf(stderr, "actor_overhead: %s\n", loom_program_error(p));
        goto out;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        loom_status st = loom_program_run_steps(p, LOOM_RUN_EVAL, pieces);
        double dt = now_s() - t0;
        if (st != LOOM_OK) {
            fprintf(stderr, "actor_overhead: %s\n", loom_program_error(p));
            best = -1;
            goto out;
        }
        double us = dt * 1e6 / ((double)n * (double)pieces);
        if (best < 0 || us < best)
            best = us;
    }
    loom_array y;
    if (loom_program_fetch(p, x, &y) != LOOM_OK || (n % 2 == 0 && ((float *)y.data)[3] != 4.0f))
        fprintf(stderr, "actor_overhead: the chain's output is wrong\n");
out:
    loom_program_free(p);
    loom_graph_free(g);
    for (int d = 0; d < ndev; d++)
        loom_placement_free(pl[d]);
    return best;
}

/* ---- the raw ring ---------------------------------------------------------------------------- */

typedef struct bench_msg {
    uint64_t dst, src;
    int64_t piece;
    uint32_t buf;
    uint16_t reg;
    uint8_t kind, pad_;
} bench_msg; /* the runtime's message size: 32 bytes */

CK_RING_PROTOTYPE(bench_msg, bench_msg)

enum { RING_SIZE = 1024 };

typedef struct ring {
    ck_ring_t ring;
    bench_msg *slots;
} ring;

static ring *ring_new(void)
{
    ring *r = aligned_alloc(64, (sizeof *r + 63) / 64 * 64);
    r->slots = aligned_alloc(64, RING_SIZE * sizeof(bench_msg));
    ck_ring_init(&r->ring, RING_SIZE);
    return r;
}

static void ring_free(ring *r)
{
    free(r->slots);
    free(r);
}

static bool push(ring *r, bench_msg *m) { return ck_ring_enqueue_mpsc_bench_msg(&r->ring, r->slots, m); }
static bool pop(ring *r, bench_msg *m) { return ck_ring_dequeue_mpsc_bench_msg(&r->ring, r->slots, m); }

/* One thread: enqueue a message and dequeue it again. */
static double ring_single_ns(int64_t ops)
{
    ring *r = ring_new();
    bench_msg m = {.kind = 1}, o;
    int64_t sum = 0;
    double t0 = now_s();
    for (int64_t i = 0; i < ops; i++) {
        m.piece = i;
        push(r, &m);
        pop(r, &o);
        sum += o.piece;
    }
    double dt = now_s() - t0;
    ring_free(r);
    if (sum != ops * (ops - 1) / 2)
        fprintf(stderr, "actor_overhead: ring lost messages\n");
    return dt * 1e9 / (double)ops;
}

/* Busy-poll, but let the other side run when both share a core. */
static void relax(int spins)
{
    if (spins < 1000)
        ck_pr_stall();
    else
        sched_yield();
}

typedef struct pc {
    ring *r;
    int64_t ops;
} pc;

static void *producer(void *arg)
{
    pc *p = arg;
    bench_msg m = {.kind = 1};
    for (int64_t i = 0; i < p->ops; i++) {
        m.piece = i;
        for (int spins = 0; !push(p->r, &m); spins++)
            relax(spins); /* full */
    }
    return NULL;
}

/* A producer thread and a consumer (this thread), both busy-polling: throughput per message. */
static double ring_pair_ns(int64_t ops)
{
    pc p = {.r = ring_new(), .ops = ops};
    pthread_t th;
    double t0 = now_s();
    if (pthread_create(&th, NULL, producer, &p) != 0)
        return -1;
    bench_msg o;
    int64_t next = 0;
    for (int spins = 0; next < ops;) {
        if (pop(p.r, &o)) {
            if (o.piece != next)
                fprintf(stderr, "actor_overhead: ring out of order\n");
            next++;
            spins = 0;
        } else {
            relax(spins++);
        }
    }
    double dt = now_s() - t0;
    pthread_join(th, NULL);
    ring_free(p.r);
    return dt * 1e9 / (double)ops;
}

int main(int argc, char **argv)
{
    int n = 100, reps = 3;
    int64_t pieces = 10000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--ops") || !strcmp(argv[i], "--actors"))
            n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--pieces"))
            pieces = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
    }
    if (n < 4 || pieces < 1 || reps < 1) {
        fprintf(stderr, "usage: actor_overhead [--ops N>=4] [--pieces N] [--reps N]\n");
        return 2;
    }
    struct {
        int devices, interleave;
    } cases[] = {{1, 0}, {2, 0}, {2, 1}, {4, 0}, {4, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int moves = 0;
        double best = chain_us_per_act(n, pieces, cases[c].devices, cases[c].interleave, reps, &moves);
        char place[32];
        snprintf(place, sizeof place, cases[c].devices > 1 ? "cpu:0-%d" : "cpu:0", cases[c].devices - 1);
        printf("{\"case\":\"chain\",\"placement\":\"%s\",\"devices\":%d,\"layout\":\"%s\",\"ops\":%d,\"moves\":%d,"
               "\"pieces\":%lld,\"regst_num\":2,\"us_per_act\":%.4f}\n",
               place, cases[c].devices, cases[c].devices == 1 ? "one_device" : cases[c].interleave ? "interleaved" : "blocks",
               n, moves, (long long)pieces, best);
        fflush(stdout);
    }
    int64_t ops = 10 * 1000 * 1000;
    double single = -1, pair = -1;
    for (int r = 0; r < reps; r++) {
        double s = ring_single_ns(ops), p = ring_pair_ns(ops);
        single = single < 0 || s < single ? s : single;
        pair = pair < 0 || (p >= 0 && p < pair) ? p : pair;
    }
    printf("{\"case\":\"ring\",\"threads\":1,\"ns_per_op\":%.2f}\n", single);
    printf("{\"case\":\"ring\",\"threads\":2,\"ns_per_op\":%.2f}\n", pair);
    return 0;
}
