/* The actor runtime (runtime/runtime.h): chains and fan-out/fan-in graphs on 1, 2 and 4 threads
 * with data and piece checks in every act, the parameter-holder cycle, errors, cancel, repeated
 * runs and deferred completion. Tracing and plan validation: tests/test_runtime_trace.c.
 *
 * Act callbacks never call ck_assert (they run on worker threads): a failed check returns an
 * error with a message, which fails the run, and the test asserts the run's status. Piece counts
 * shrink under ThreadSanitizer, or by $LOOM_RT_TEST_SCALE (a divisor). */
#include "rt_helpers.h"
#include "runtime/ring.h" /* loom__ec_wait_until */

#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

START_TEST(test_actor_ids)
{
    uint64_t id = loom__aid(65535, 31, 127, 32767, 2097151);
    ck_assert_uint_eq(id, UINT64_MAX);
    id = loom__aid(3, LOOM__RT_DEV_CUDA, 5, 7, 11);
    ck_assert_uint_eq(loom__aid_rank(id), 3);
    ck_assert_uint_eq(loom__aid_kind(id), LOOM__RT_DEV_CUDA);
    ck_assert_uint_eq(loom__aid_dev(id), 5);
    ck_assert_uint_eq(loom__aid_stream(id), 7);
    ck_assert_uint_eq(loom__aid_task(id), 11);
    ck_assert_uint_eq(loom__aid_stream_key(id), loom__aid_stream_key(loom__aid(3, LOOM__RT_DEV_CUDA, 5, 7, 99)));
    ck_assert_uint_ne(loom__aid_stream_key(id), loom__aid_stream_key(loom__aid(3, LOOM__RT_DEV_CUDA, 5, 8, 11)));
    ck_assert_int_eq(sizeof(loom__rt_msg), 32);
}
END_TEST

/* ---- a chain of n actors -------------------------------------------------------------------- */

typedef struct chain {
    loom__rt *rt;
    int n;
    tact **c;
    uint64_t *id;
} chain;

/* Actor k runs on thread k * nthreads / n (contiguous blocks), or k % nthreads when interleaved. */
static chain chain_new(int n, int nthreads, int interleave, int regst_num)
{
    chain ch = {.rt = rt_new(), .n = n, .c = calloc((size_t)n, sizeof(tact *)), .id = calloc((size_t)n, sizeof(uint64_t))};
    ck_assert(ch.c && ch.id);
    int task[8] = {0};
    for (int k = 0; k < n; k++) {
        int dev = interleave ? k % nthreads : k * nthreads / n;
        ch.id[k] = cpu_id(dev, task[dev]++);
        ch.c[k] = tact_new(k);
        ch.c[k]->expect_k[0] = k - 1;
        char name[32];
        snprintf(name, sizeof name, "a%d", k);
        add(ch.rt, ch.id[k], name, ch.c[k], k > 0, k < n - 1, regst_num);
        if (k > 0)
            ck_assert_int_eq(loom__rt_connect(ch.rt, ch.id[k - 1], 0, ch.id[k], 0), LOOM_OK);
    }
    return ch;
}

static void chain_free(chain *ch)
{
    loom__rt_free(ch->rt);
    for (int k = 0; k < ch->n; k++)
        free(ch->c[k]);
    free(ch->c);
    free(ch->id);
}

static void run_chain(int nthreads, int interleave)
{
    int64_t pieces = scaled(10000);
    chain ch = chain_new(100, nthreads, interleave, 2);
    loom_status st = loom__rt_run(ch.rt, pieces);
    ck_assert_msg(st == LOOM_OK, "run: %s", loom__rt_error(ch.rt));
    ck_assert_int_eq(loom__rt_thread_count(ch.rt), nthreads);
    for (int k = 0; k < ch.n; k++) {
        ck_assert_int_eq(ch.c[k]->count, pieces);
        ck_assert_int_eq(loom__rt_actor_acts(ch.rt, ch.id[k]), pieces);
    }
    ck_assert_int_eq(ch.c[ch.n - 1]->next, pieces);
    ck_assert_int_eq(loom__rt_next_piece(ch.rt), pieces);
    chain_free(&ch);
}

START_TEST(test_chain_1_thread) { run_chain(1, 0); }
END_TEST
START_TEST(test_chain_2_threads) { run_chain(2, 0); }
END_TEST
START_TEST(test_chain_4_threads) { run_chain(4, 0); }
END_TEST
START_TEST(test_chain_4_threads_interleaved) { run_chain(4, 1); }
END_TEST

/* ---- fan-out / fan-in ----------------------------------------------------------------------- */

static void run_fan(int nthreads, uint64_t seed)
{
    enum { M = 16 };
    int64_t pieces = scaled(5000);
    loom__rt *rt = rt_new();
    srand((unsigned)seed);
    tact *src = tact_new(0), *mid[M], *join = tact_new(100), *sink = tact_new(200);
    int task[4] = {0};
    uint64_t src_id = cpu_id(0, task[0]++);
    add(rt, src_id, "source", src, 0, 1, 1 + rand() % 4);
    uint64_t mid_id[M];
    for (int m = 0; m < M; m++) {
        int dev = m % nthreads;
        mid_id[m] = cpu_id(dev, task[dev]++);
        mid[m] = tact_new(m + 1);
        mid[m]->expect_k[0] = 0;
        char name[32];
        snprintf(name, sizeof name, "mid%d", m);
        add(rt, mid_id[m], name, mid[m], 1, 1, 1 + rand() % 4);
        ck_assert_int_eq(loom__rt_connect(rt, src_id, 0, mid_id[m], 0), LOOM_OK);
    }
    int jdev = (nthreads - 1) % nthreads;
    uint64_t join_id = cpu_id(jdev, task[jdev]++);
    add(rt, join_id, "join", join, M, 1, 1 + rand() % 4);
    for (int m = 0; m < M; m++) {
        join->expect_k[m] = m + 1;
        ck_assert_int_eq(loom__rt_connect(rt, mid_id[m], 0, join_id, m), LOOM_OK);
    }
    int sdev = nthreads > 1 ? 1 : 0;
    uint64_t sink_id = cpu_id(sdev, task[sdev]++);
    sink->expect_k[0] = 100;
    add(rt, sink_id, "sink", sink, 1, 0, 0);
    ck_assert_int_eq(loom__rt_connect(rt, join_id, 0, sink_id, 0), LOOM_OK);

    loom_status st = loom__rt_run(rt, pieces);
    ck_assert_msg(st == LOOM_OK, "run: %s", loom__rt_error(rt));
    ck_assert_int_eq(sink->count, pieces);
    ck_assert_int_eq(sink->next, pieces);
    ck_assert_int_eq(join->count, pieces);
    for (int m = 0; m < M; m++)
        ck_assert_int_eq(mid[m]->count, pieces);
    loom__rt_free(rt);
    free(src);
    free(join);
    free(sink);
    for (int m = 0; m < M; m++)
        free(mid[m]);
}

START_TEST(test_fan_1_thread) { run_fan(1, 1); }
END_TEST
START_TEST(test_fan_2_threads) { run_fan(2, 2); }
END_TEST
START_TEST(test_fan_4_threads)
{
    for (uint64_t seed = 3; seed < 6; seed++)
        run_fan(4, seed);
}
END_TEST

/* ---- the parameter-holder cycle: S -> A <- H, A -> B, B -> H (gradient), B -> K (sink) ------- */

typedef struct cyc {
    int64_t param;          /* H's one buffer: the parameter version */
    int64_t a_out[2], b_grad, b_loss[2];
    int64_t h_acts, h_initial, a_acts, k_next;
} cyc;

static loom_status holder_act(void *ctx, loom__act *a)
{
    cyc *c = ctx;
    int64_t *p = a->out[0];
    if (p != &c->param)
        return check_fail(a, "holder writes a foreign buffer");
    if (a->initial) {
        c->h_initial++;
        if (a->out_piece != a->piece || *p != a->piece)
            return check_fail(a, "initial emit: piece %" PRId64 ", param %" PRId64, a->piece, *p);
        return LOOM_OK;
    }
    /* consumed the gradient of piece t, emits version t + 1, updating in place: every consumer has
     * acked version t, else this act could not run (one buffer) */
    int64_t g = *(const int64_t *)a->in[0];
    if (a->out_piece != a->piece + 1 || g != val(a->piece, 2) || *p != a->piece)
        return check_fail(a, "holder at piece %" PRId64 ": out piece %" PRId64 ", grad %" PRId64 ", param %" PRId64,
                          a->piece, a->out_piece, g, *p);
    *p = a->piece + 1;
    c->h_acts++;
    return LOOM_OK;
}

static loom_status user_act(void *ctx, loom__act *a) /* A: data and parameter version of one piece */
{
    cyc *c = ctx;
    int64_t x = *(const int64_t *)a->in[0], p = *(const int64_t *)a->in[1];
    if (a->in_piece[0] != a->piece || a->in_piece[1] != a->piece || x != val(a->piece, 0) || p != a->piece)
        return check_fail(a, "A at piece %" PRId64 ": pieces %" PRId64 "/%" PRId64 ", x %" PRId64 ", param %" PRId64,
                          a->piece, a->in_piece[0], a->in_piece[1], x, p);
    *(int64_t *)a->out[0] = val(a->piece, 1);
    c->a_acts++;
    return LOOM_OK;
}

static loom_status grad_act(void *ctx, loom__act *a) /* B: gradient to H, loss to K */
{
    (void)ctx;
    if (*(const int64_t *)a->in[0] != val(a->piece, 1))
        return check_fail(a, "B: bad input at piece %" PRId64, a->piece);
    *(int64_t *)a->out[0] = val(a->piece, 2);
    *(int64_t *)a->out[1] = val(a->piece, 3);
    return LOOM_OK;
}

static loom_status loss_sink_act(void *ctx, loom__act *a)
{
    cyc *c = ctx;
    if (a->piece != c->k_next || *(const int64_t *)a->in[0] != val(a->piece, 3))
        return check_fail(a, "K: piece %" PRId64 ", expected %" PRId64, a->piece, c->k_next);
    c->k_next++;
    return LOOM_OK;
}

static void run_cycle(int nthreads)
{
    loom__rt *rt = rt_new();
    cyc c = {0};
    tact *src = tact_new(0);
    int d = nthreads - 1;
    uint64_t S = cpu_id(0, 0), A = cpu_id(1 % nthreads, 1), B = cpu_id(2 % nthreads, 2), H = cpu_id(d, 3),
             K = cpu_id(0, 4);
    add(rt, S, "S", src, 0, 1, 2);
    void *hb[1] = {&c.param}, *ab[2] = {&c.a_out[0], &c.a_out[1]}, *bg[1] = {&c.b_grad},
         *bl[2] = {&c.b_loss[0], &c.b_loss[1]};
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = H, .name = "H", .act = holder_act, .ctx = &c,
                                                                 .nin = 1, .nout = 1, .initial_emits = 1,
                                                                 .out = (loom__regst_desc[]){{1, hb}}}),
                     LOOM_OK);
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = A, .name = "A", .act = user_act, .ctx = &c,
                                                                 .nin = 2, .nout = 1,
                                                                 .out = (loom__regst_desc[]){{2, ab}}}),
                     LOOM_OK);
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = B, .name = "B", .act = grad_act, .ctx = &c,
                                                                 .nin = 1, .nout = 2,
                                                                 .out = (loom__regst_desc[]){{1, bg}, {2, bl}}}),
                     LOOM_OK);
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = K, .name = "K", .act = loss_sink_act,
                                                                 .ctx = &c, .nin = 1}),
                     LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, S, 0, A, 0), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, H, 0, A, 1), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, A, 0, B, 0), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, B, 0, H, 0), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, B, 1, K, 0), LOOM_OK);

    int64_t n = scaled(2000);
    for (int run = 1; run <= 2; run++) { /* the second run continues from the parameter's version */
        loom_status st = loom__rt_run(rt, n);
        ck_assert_msg(st == LOOM_OK, "run %d: %s", run, loom__rt_error(rt));
        ck_assert_int_eq(c.param, run * n); /* every gradient applied before the run returned */
        ck_assert_int_eq(c.h_acts, run * n);
        ck_assert_int_eq(c.h_initial, run);
        ck_assert_int_eq(c.a_acts, run * n);
        ck_assert_int_eq(c.k_next, run * n);
    }
    loom__rt_free(rt);
    free(src);
}

START_TEST(test_cycle_1_thread) { run_cycle(1); }
END_TEST
START_TEST(test_cycle_2_threads) { run_cycle(2); }
END_TEST
START_TEST(test_cycle_4_threads) { run_cycle(4); }
END_TEST

/* ---- errors, cancel, repeated runs ---------------------------------------------------------- */

static void run_error(int nthreads)
{
    chain ch = chain_new(20, nthreads, 1, 2);
    ch.c[7]->fail_at = 500;
    ch.c[7]->fail_st = LOOM_ERR_SHAPE;
    loom_status st = loom__rt_run(ch.rt, 5000);
    ck_assert_int_eq(st, LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(loom__rt_error(ch.rt), "planned failure at 500") != NULL, "%s", loom__rt_error(ch.rt));
    ck_assert_msg(strstr(loom__rt_error(ch.rt), "a7") != NULL, "%s", loom__rt_error(ch.rt));
    /* the run drained: every piece before the failure reached the sink, none after it */
    ck_assert_int_eq(ch.c[ch.n - 1]->count, 500);

    /* the runtime is usable again: pieces continue after the failed run's last source piece */
    ch.c[7]->fail_at = -1;
    int64_t first = loom__rt_next_piece(ch.rt);
    ck_assert_int_ge(first, 500);
    for (int k = 0; k < ch.n; k++)
        ch.c[k]->count = 0;
    ch.c[ch.n - 1]->next = first;
    st = loom__rt_run(ch.rt, 100);
    ck_assert_msg(st == LOOM_OK, "second run: %s", loom__rt_error(ch.rt));
    ck_assert_str_eq(loom__rt_error(ch.rt), "");
    ck_assert_int_eq(ch.c[ch.n - 1]->count, 100);
    chain_free(&ch);
}

START_TEST(test_error_stops_run_1_thread) { run_error(1); }
END_TEST
START_TEST(test_error_stops_run_4_threads) { run_error(4); }
END_TEST

START_TEST(test_failing_source)
{
    chain ch = chain_new(10, 2, 0, 2);
    ch.c[0]->fail_at = 300;
    ch.c[0]->fail_st = LOOM_ERR_IO;
    loom_status st = loom__rt_run(ch.rt, 0); /* sources would run forever */
    ck_assert_int_eq(st, LOOM_ERR_IO);
    ck_assert_msg(strstr(loom__rt_error(ch.rt), "a0 (piece 300): planned failure at 300") != NULL, "%s",
                  loom__rt_error(ch.rt));
    ck_assert_int_eq(ch.c[ch.n - 1]->count, 300); /* drained: every piece before the failure */
    chain_free(&ch);
}
END_TEST

typedef struct canceller {
    loom__rt *rt;
    tact *sink;
} canceller;

static void *cancel_later(void *arg)
{
    canceller *c = arg;
    usleep(50 * 1000);
    loom__rt_cancel(c->rt);
    return NULL;
}

START_TEST(test_cancel_from_other_thread)
{
    for (int nthreads = 1; nthreads <= 4; nthreads *= 2) {
        chain ch = chain_new(8, nthreads, 1, 2);
        ch.c[3]->sleep_us = 100; /* slow enough that cancel lands mid-run */
        canceller cc = {.rt = ch.rt};
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, cancel_later, &cc), 0);
        loom_status st = loom__rt_run(ch.rt, 0); /* unbounded: only cancel ends it */
        pthread_join(th, NULL);
        ck_assert_int_eq(st, LOOM_ERR_RUNTIME);
        ck_assert_str_eq(loom__rt_error(ch.rt), "cancelled");
        /* drained: every piece the source produced reached the sink (however early it came) */
        ck_assert_int_eq(ch.c[ch.n - 1]->count, ch.c[0]->count);
        ck_assert_int_eq(ch.c[ch.n - 1]->count, loom__rt_next_piece(ch.rt));

        /* a cancel between runs ends the next one at once; the one after runs */
        loom__rt_cancel(ch.rt);
        ck_assert_int_eq(loom__rt_run(ch.rt, 10), LOOM_ERR_RUNTIME);
        ch.c[3]->sleep_us = 0;
        ch.c[ch.n - 1]->next = loom__rt_next_piece(ch.rt);
        st = loom__rt_run(ch.rt, 10);
        ck_assert_msg(st == LOOM_OK, "%s", loom__rt_error(ch.rt));
        chain_free(&ch);
    }
}
END_TEST

START_TEST(test_run_twice)
{
    chain ch = chain_new(10, 2, 1, 2);
    ck_assert_int_eq(loom__rt_run(ch.rt, -1), LOOM_ERR_INVALID); /* a bad argument spoils nothing */
    ck_assert_int_eq(loom__rt_run(ch.rt, 100), LOOM_OK);
    ck_assert_int_eq(loom__rt_next_piece(ch.rt), 100);
    ck_assert_int_eq(loom__rt_run(ch.rt, 150), LOOM_OK);
    ck_assert_int_eq(loom__rt_next_piece(ch.rt), 250);
    ck_assert_int_eq(ch.c[ch.n - 1]->next, 250); /* pieces 0 .. 249 reached the sink once each, in order */
    ck_assert_int_eq(ch.c[ch.n - 1]->count, 250);
    chain_free(&ch);
}
END_TEST

START_TEST(test_free_without_run)
{
    loom__rt_free(NULL);
    loom__rt_free(rt_new());
    chain ch = chain_new(10, 4, 1, 3);
    chain_free(&ch);
    loom__rt *rt = rt_new(); /* an empty plan runs and ends at once */
    ck_assert_int_eq(loom__rt_run(rt, 5), LOOM_OK);
    loom__rt_free(rt);
}
END_TEST

START_TEST(test_source_ends_data)
{
    chain ch = chain_new(5, 2, 1, 1);
    ch.c[0]->eod_at = 37;
    ck_assert_int_eq(loom__rt_run(ch.rt, 0), LOOM_OK);
    ck_assert_int_eq(ch.c[ch.n - 1]->count, 37);
    ck_assert_int_eq(loom__rt_next_piece(ch.rt), 37);
    chain_free(&ch);
}
END_TEST

/* Two sources of different lengths into one join: the join ends with the shorter one and hands
 * back what the longer one still sends, so the longer source can finish. */
START_TEST(test_sources_of_different_lengths)
{
    for (int nthreads = 1; nthreads <= 2; nthreads++) {
        loom__rt *rt = rt_new();
        tact *s1 = tact_new(0), *s2 = tact_new(1), *j = tact_new(2), *k = tact_new(3);
        s1->eod_at = 10;
        s2->eod_at = 200;
        j->expect_k[0] = 0;
        j->expect_k[1] = 1;
        k->expect_k[0] = 2;
        uint64_t S1 = cpu_id(0, 0), S2 = cpu_id(nthreads - 1, 1), J = cpu_id(0, 2), K = cpu_id(nthreads - 1, 3);
        add(rt, S1, "s1", s1, 0, 1, 2);
        add(rt, S2, "s2", s2, 0, 1, 1);
        add(rt, J, "j", j, 2, 1, 2);
        add(rt, K, "k", k, 1, 0, 0);
        loom__rt_connect(rt, S1, 0, J, 0);
        loom__rt_connect(rt, S2, 0, J, 1);
        loom__rt_connect(rt, J, 0, K, 0);
        ck_assert_msg(loom__rt_run(rt, 0) == LOOM_OK, "%s", loom__rt_error(rt));
        ck_assert_int_eq(k->count, 10);
        ck_assert_int_eq(s2->count, 200);
        loom__rt_free(rt);
        free(s1);
        free(s2);
        free(j);
        free(k);
    }
}
END_TEST

/* ---- deferred acts: a "device" thread completes them later, in order ------------------------ */

typedef struct device {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    loom__rt *rt;
    uint64_t actor;
    int64_t queued, stop;
    int64_t *out;           /* written on the device thread, as a kernel would */
    int64_t vals[64];
} device;

static void *device_main(void *arg)
{
    device *d = arg;
    int64_t done = 0;
    pthread_mutex_lock(&d->mu);
    for (;;) {
        while (done == d->queued && !d->stop)
            pthread_cond_wait(&d->cv, &d->mu);
        if (done == d->queued)
            break;
        int64_t v = d->vals[done % 64];
        int64_t *out = (int64_t *)(intptr_t)d->vals[(done + 32) % 64];
        done++;
        pthread_mutex_unlock(&d->mu);
        *out = v; /* the "kernel" */
        loom__rt_complete(d->rt, d->actor, LOOM_OK, NULL);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static loom_status deferred_act(void *ctx, loom__act *a)
{
    device *d = ctx;
    if (*(const int64_t *)a->in[0] != val(a->piece, 0))
        return check_fail(a, "deferred: bad input");
    if (loom__act_defer(a) != LOOM_OK)
        return check_fail(a, "cannot defer");
    pthread_mutex_lock(&d->mu);
    d->vals[d->queued % 64] = val(a->piece, 1);
    d->vals[(d->queued + 32) % 64] = (int64_t)(intptr_t)a->out[0];
    d->queued++;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return LOOM_OK;
}

START_TEST(test_deferred_completion)
{
    for (int nthreads = 1; nthreads <= 2; nthreads++) {
        loom__rt *rt = rt_new();
        device d = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .rt = rt};
        tact *s = tact_new(0), *k = tact_new(2), *g = tact_new(1);
        k->expect_k[0] = 1;
        uint64_t S = cpu_id(0, 0), G = loom__aid(0, LOOM__RT_DEV_CUDA, 0, 0, 0), K = cpu_id(nthreads - 1, 1);
        d.actor = G;
        add(rt, S, "src", s, 0, 1, 2);
        ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = G, .name = "gpu", .act = deferred_act,
                                                                     .ctx = &d, .nin = 1, .nout = 1, .max_deferred = 3,
                                                                     .out = (loom__regst_desc[]){{4, g->ptr}}}),
                         LOOM_OK);
        add(rt, K, "sink", k, 1, 0, 0);
        loom__rt_connect(rt, S, 0, G, 0);
        loom__rt_connect(rt, G, 0, K, 0);
        pthread_t th;
        ck_assert_int_eq(pthread_create(&th, NULL, device_main, &d), 0);
        int64_t n = scaled(3000);
        loom_status st = loom__rt_run(rt, n);
        pthread_mutex_lock(&d.mu);
        d.stop = 1;
        pthread_cond_signal(&d.cv);
        pthread_mutex_unlock(&d.mu);
        pthread_join(th, NULL);
        ck_assert_msg(st == LOOM_OK, "%s", loom__rt_error(rt));
        ck_assert_int_eq(k->count, n);
        ck_assert_int_eq(d.queued, n);
        ck_assert_int_eq(loom__rt_thread_count(rt), nthreads + 1);
        loom__rt_free(rt);
        free(s);
        free(k);
        free(g);
    }
}
END_TEST

static loom_status defer_without_room(void *ctx, loom__act *a)
{
    (void)ctx;
    return loom__act_defer(a) == LOOM_ERR_INVALID ? LOOM_OK : check_fail(a, "defer allowed");
}

START_TEST(test_defer_needs_room)
{
    loom__rt *rt = rt_new();
    uint64_t S = cpu_id(0, 0), K = cpu_id(0, 1);
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = S, .name = "s", .act = defer_without_room, .nout = 1});
    loom__rt_add_actor(rt, &(loom__actor_desc){.id = K, .name = "k", .nin = 1});
    loom__rt_connect(rt, S, 0, K, 0);
    ck_assert_msg(loom__rt_run(rt, 20) == LOOM_OK, "%s", loom__rt_error(rt));
    ck_assert_int_eq(loom__rt_actor_acts(rt, K), 20);
    loom__rt_free(rt);
}
END_TEST

/* ---- hooks: a device whose work never ends until the run stops it ---------------------------- */

static char stuck_msg[600];

typedef struct stuck {
    loom__rt *rt;
    uint64_t actor;
    _Atomic int queued;           /* deferred acts its "device" holds, never completed by itself */
    _Atomic int polls, draining_polls, stops;
    int fail_after;               /* the poll fails after this many polls (-1: never) */
    int fail_draining;            /* the poll fails once the run drains */
} stuck;

static loom_status stuck_act(void *ctx, loom__act *a)
{
    stuck *d = ctx;
    if (loom__act_defer(a) != LOOM_OK)
        return check_fail(a, "cannot defer");
    atomic_fetch_add(&d->queued, 1);
    return LOOM_OK;
}

static loom_status stuck_poll(void *ctx, int draining, char *msg, size_t len)
{
    stuck *d = ctx;
    int n = atomic_fetch_add(&d->polls, 1) + 1;
    if (draining)
        atomic_fetch_add(&d->draining_polls, 1);
    if ((d->fail_after >= 0 && n > d->fail_after) || (d->fail_draining && draining)) {
        snprintf(msg, len, "the device hangs (poll %d)", n);
        return LOOM_ERR_RUNTIME;
    }
    return LOOM_OK;
}

/* As an abort of the device's work: every deferred act it held completes. */
static void stuck_stopped(void *ctx)
{
    stuck *d = ctx;
    atomic_fetch_add(&d->stops, 1);
    for (int n = atomic_exchange(&d->queued, 0); n > 0; n--)
        loom__rt_complete(d->rt, d->actor, LOOM_OK, NULL);
}

/* src -> stuck device -> sink, and with `failing`, src -> f -> sink2 where f fails at piece 1 (the
 * run drains, waiting for the device's acts). The device's acts never complete by themselves: only
 * the hooks end the run. */
static loom_status run_stuck(stuck *d, int failing, int fail_after, int fail_draining)
{
    loom__rt *rt = rt_new();
    *d = (stuck){.rt = rt, .fail_after = fail_after, .fail_draining = fail_draining};
    tact *s = tact_new(0), *g = tact_new(1), *k = tact_new(2), *f = tact_new(3), *k2 = tact_new(4);
    k->expect_k[0] = 1;
    k2->expect_k[0] = 3;
    f->expect_k[0] = 0;
    f->fail_at = 1;
    f->fail_st = LOOM_ERR_SHAPE;
    uint64_t S = cpu_id(0, 0), G = loom__aid(0, LOOM__RT_DEV_CUDA, 0, 0, 0), K = cpu_id(1, 1), F = cpu_id(1, 2), K2 = cpu_id(0, 3);
    d->actor = G;
    add(rt, S, "src", s, 0, 1, 2);
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = G, .name = "gpu", .act = stuck_act, .ctx = d, .nin = 1,
                                                                 .nout = 1, .max_deferred = 2,
                                                                 .out = (loom__regst_desc[]){{2, g->ptr}}}),
                     LOOM_OK);
    add(rt, K, "sink", k, 1, 0, 0);
    loom__rt_connect(rt, S, 0, G, 0);
    loom__rt_connect(rt, G, 0, K, 0);
    if (failing) {
        add(rt, F, "f", f, 1, 1, 2);
        add(rt, K2, "sink2", k2, 1, 0, 0);
        loom__rt_connect(rt, S, 0, F, 0);
        loom__rt_connect(rt, F, 0, K2, 0);
    }
    loom__rt_set_hooks(rt, &(loom__rt_hooks){.ctx = d, .poll = stuck_poll, .stopped = stuck_stopped});
    loom_status st = loom__rt_run(rt, 50);
    char *msg = strdup(loom__rt_error(rt));
    ck_assert_int_eq(atomic_load(&d->queued), 0);
    loom__rt_free(rt);
    free(s), free(g), free(k), free(f), free(k2);
    d->rt = NULL;
    ck_assert_msg(st == LOOM_OK || msg[0], "a failed run without a message");
    snprintf(stuck_msg, sizeof stuck_msg, "%s", msg);
    free(msg);
    return st;
}

/* A device that never finishes: the poll's failure stops the run at once, and the stopped hook,
 * called once after the threads end, makes the deferred completions come, so the run returns. */
START_TEST(test_hooks_end_a_hung_device)
{
    stuck d;
    loom_status st = run_stuck(&d, 0, 2, 0);
    ck_assert_int_eq(st, LOOM_ERR_RUNTIME);
    ck_assert_msg(strstr(stuck_msg, "the device hangs (poll 3)") != NULL, "%s", stuck_msg);
    ck_assert_int_eq(atomic_load(&d.stops), 1);
    ck_assert_int_ge(atomic_load(&d.polls), 3);
    ck_assert_int_eq(atomic_load(&d.draining_polls), 0);
}
END_TEST

/* A failed act drains the run, which then waits for the device forever: the poll sees the drain
 * and stops the run; the run returns the act's failure (the first), not the poll's. */
START_TEST(test_hooks_end_a_drain_stuck_on_a_device)
{
    stuck d;
    loom_status st = run_stuck(&d, 1, -1, 1);
    ck_assert_int_eq(st, LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(stuck_msg, "f (piece 1): planned failure at 1") != NULL, "%s", stuck_msg);
    ck_assert_int_eq(atomic_load(&d.stops), 1);
    ck_assert_int_ge(atomic_load(&d.draining_polls), 1);
}
END_TEST

/* A run that succeeds with hooks set: stopped is not called. */
START_TEST(test_hooks_quiet_on_success)
{
    chain ch = chain_new(4, 2, 0, 2);
    stuck d = {.fail_after = -1};
    loom__rt_set_hooks(ch.rt, &(loom__rt_hooks){.ctx = &d, .poll = stuck_poll, .stopped = stuck_stopped});
    loom_status st = loom__rt_run(ch.rt, 200);
    ck_assert_msg(st == LOOM_OK, "%s", loom__rt_error(ch.rt));
    ck_assert_int_eq(ch.c[ch.n - 1]->count, 200);
    ck_assert_int_eq(atomic_load(&d.stops), 0);
    chain_free(&ch);
}
END_TEST

/* ---- tracing -------------------------------------------------------------------------------- */

/* loom__ec_wait_until never hands the futex a later deadline than its own. ck_ec's timed wait gave
 * it the end of its first backoff step, 2 ms on, so the communication thread's sleeps of 4 to
 * 100 us lasted 2 ms and every message from another rank waited about that long. A clock of the
 * test's own: a wait "sleeps" to the deadline it is given. */
static struct timespec fake_now, latest;

static int fake_time(const struct ck_ec_ops *ops, struct timespec *out)
{
    (void)ops;
    *out = fake_now;
    return 0;
}

static void fake_wait32(const struct ck_ec_wait_state *ws, const uint32_t *addr, uint32_t expected, const struct timespec *dl)
{
    (void)ws, (void)addr, (void)expected;
    ck_assert_ptr_nonnull(dl);
    fake_now = *dl;
    if (loom__ts_before(&latest, dl))
        latest = *dl;
}

static void fake_wait64(const struct ck_ec_wait_state *ws, const uint64_t *addr, uint64_t expected, const struct timespec *dl)
{
    fake_wait32(ws, (const uint32_t *)addr, (uint32_t)expected, dl);
}

static void fake_wake32(const struct ck_ec_ops *ops, const uint32_t *addr) { (void)ops, (void)addr; }

static void fake_wake64(const struct ck_ec_ops *ops, const uint64_t *addr) { (void)ops, (void)addr; }

START_TEST(test_timed_wait_ends_by_its_deadline)
{
    static const struct ck_ec_ops ops = {
        .gettime = fake_time, .wait32 = fake_wait32, .wait64 = fake_wait64, .wake32 = fake_wake32, .wake64 = fake_wake64};
    const struct ck_ec_mode mode = {.ops = &ops, .single_producer = false};
    const long waits_ns[] = {4000, 100000, 999999999};
    for (size_t i = 0; i < sizeof waits_ns / sizeof *waits_ns; i++) {
        struct ck_ec32 ec = CK_EC_INITIALIZER;
        fake_now = latest = (struct timespec){.tv_sec = 100};
        const struct timespec dl = {.tv_sec = 100, .tv_nsec = waits_ns[i]};
        loom__ec_wait_until(&ec, &mode, ck_ec32_value(&ec), &dl);
        ck_assert_msg(!loom__ts_before(&dl, &latest), "a wait of %ld ns slept to %lld.%09ld s, past its deadline %lld.%09ld s", waits_ns[i],
                      (long long)latest.tv_sec, latest.tv_nsec, (long long)dl.tv_sec, dl.tv_nsec);
        ck_assert_msg(!loom__ts_before(&fake_now, &dl), "a wait of %ld ns returned before its deadline", waits_ns[i]);
    }
}
END_TEST

static Suite *runtime_suite(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_actor_ids);
    tcase_add_test(tc, test_chain_1_thread);
    tcase_add_test(tc, test_chain_2_threads);
    tcase_add_test(tc, test_chain_4_threads);
    tcase_add_test(tc, test_chain_4_threads_interleaved);
    tcase_add_test(tc, test_fan_1_thread);
    tcase_add_test(tc, test_fan_2_threads);
    tcase_add_test(tc, test_fan_4_threads);
    tcase_add_test(tc, test_cycle_1_thread);
    tcase_add_test(tc, test_cycle_2_threads);
    tcase_add_test(tc, test_cycle_4_threads);
    tcase_add_test(tc, test_error_stops_run_1_thread);
    tcase_add_test(tc, test_error_stops_run_4_threads);
    tcase_add_test(tc, test_failing_source);
    tcase_add_test(tc, test_cancel_from_other_thread);
    tcase_add_test(tc, test_run_twice);
    tcase_add_test(tc, test_free_without_run);
    tcase_add_test(tc, test_source_ends_data);
    tcase_add_test(tc, test_sources_of_different_lengths);
    tcase_add_test(tc, test_deferred_completion);
    tcase_add_test(tc, test_defer_needs_room);
    tcase_add_test(tc, test_hooks_end_a_hung_device);
    tcase_add_test(tc, test_hooks_end_a_drain_stuck_on_a_device);
    tcase_add_test(tc, test_hooks_quiet_on_success);
    tcase_add_test(tc, test_timed_wait_ends_by_its_deadline);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return lt_run_suite(runtime_suite()); }
