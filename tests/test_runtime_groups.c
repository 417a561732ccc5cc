/* The runtime's groups of pieces (runtime/runtime.h: hold, group, gather, in_place): a training
 * cycle whose steps are cut into M micro-batches. The source emits pieces in groups of M; the
 * parameter holder emits each version M times (hold) and updates it in place only once every
 * reader of every copy has acked it; a gathering actor sums the M gradients of a step into one.
 *
 *     S (source, group M) -> A (reads x and the parameter) -> B (gradient, loss) -> G (gather M) -> H
 *     H (initial M, hold M, in place) -> A;  B -> K (loss sink)
 *
 * Every act checks what it reads: A that the parameter is the step's (a version updated before a
 * reader of the old one is done would show as the next step's value), H that the gradient is the
 * sum over the step's micro-batches, the sink that every piece comes once, in order. */
#include "rt_helpers.h"

enum { M = 4 };

typedef struct cyc {
    int64_t param;           /* the parameter: the number of updates so far */
    int64_t x[2 * M];        /* the source's register */
    int64_t a_out[2], grad[2], loss[2], acc;
    int64_t h_updates, h_initial, g_emits, k_next, a_acts;
    int64_t fail_b_at;       /* B fails at this piece (-1: never) */
    int64_t cancel_at;       /* the sink cancels the run once it has seen this many pieces (0: never) */
    loom__rt *rt;
    useconds_t a_sleep;      /* per act of A: lets a premature update show */
} cyc;

static loom_status src_act(void *ctx, loom__act *a)
{
    (void)ctx;
    *(int64_t *)a->out[0] = val(a->piece, 0);
    return LOOM_OK;
}

/* Emits the parameter at every act; updates it at the first act of each gradient version. */
static loom_status holder_act(void *ctx, loom__act *a)
{
    cyc *c = ctx;
    if (a->out[0] != &c->param)
        return check_fail(a, "holder writes a foreign buffer");
    if (a->initial) {
        c->h_initial++;
        return a->out_piece == a->piece && a->piece / M == c->param ? LOOM_OK
                                                                     : check_fail(a, "initial emit of piece %" PRId64 " with param %" PRId64, a->piece, c->param);
    }
    /* the gradient of step s (piece s*M, the group's first) emits pieces (s+1)*M + repeat */
    int64_t s = a->piece / M;
    if (a->piece % M || a->out_piece != (s + 1) * M + a->repeat)
        return check_fail(a, "holder: piece %" PRId64 ", out piece %" PRId64 ", repeat %d", a->piece, a->out_piece, a->repeat);
    if (a->repeat == 0) {
        int64_t want = 0;
        for (int i = 0; i < M; i++)
            want += val(s * M + i, 2);
        if (*(const int64_t *)a->in[0] != want || c->param != s)
            return check_fail(a, "holder at step %" PRId64 ": gradient %" PRId64 " (want %" PRId64 "), param %" PRId64, s,
                              *(const int64_t *)a->in[0], want, c->param);
        c->param = s + 1;
        c->h_updates++;
    }
    return LOOM_OK;
}

static loom_status user_act(void *ctx, loom__act *a)
{
    cyc *c = ctx;
    if (c->a_sleep)
        usleep(c->a_sleep);
    int64_t x = *(const int64_t *)a->in[0], p = *(const int64_t *)a->in[1];
    if (a->in_piece[0] != a->piece || a->in_piece[1] != a->piece || x != val(a->piece, 0) || p != a->piece / M)
        return check_fail(a, "A at piece %" PRId64 ": pieces %" PRId64 "/%" PRId64 ", x %" PRId64 ", param %" PRId64,
                          a->piece, a->in_piece[0], a->in_piece[1], x, p);
    *(int64_t *)a->out[0] = val(a->piece, 1);
    c->a_acts++;
    return LOOM_OK;
}

static loom_status grad_act(void *ctx, loom__act *a)
{
    cyc *c = ctx;
    if (a->piece == c->fail_b_at)
        return check_fail(a, "planned failure at %" PRId64, a->piece);
    if (*(const int64_t *)a->in[0] != val(a->piece, 1))
        return check_fail(a, "B: bad input at piece %" PRId64, a->piece);
    *(int64_t *)a->out[0] = val(a->piece, 2);
    *(int64_t *)a->out[1] = val(a->piece, 3);
    return LOOM_OK;
}

/* Sums a step's gradients in its one buffer, which stays its own between the acts of a group. */
static loom_status gather_act(void *ctx, loom__act *a)
{
    cyc *c = ctx;
    int64_t *acc = a->out[0], g = *(const int64_t *)a->in[0];
    if (acc != &c->acc)
        return check_fail(a, "gather writes a foreign buffer");
    *acc = a->piece % M == 0 ? g : *acc + g;
    if (a->piece % M == M - 1) {
        if (a->out_piece != a->piece + 1 - M)
            return check_fail(a, "gather at piece %" PRId64 " emits piece %" PRId64, a->piece, a->out_piece);
        c->g_emits++;
    }
    return LOOM_OK;
}

static loom_status sink_act(void *ctx, loom__act *a)
{
    cyc *c = ctx;
    if (a->piece != c->k_next || *(const int64_t *)a->in[0] != val(a->piece, 3))
        return check_fail(a, "K: piece %" PRId64 ", expected %" PRId64, a->piece, c->k_next);
    if (++c->k_next == c->cancel_at)
        loom__rt_cancel(c->rt);
    return LOOM_OK;
}

static loom__rt *cycle_new(cyc *c, int nthreads)
{
    loom__rt *rt = rt_new();
    int d = nthreads - 1;
    uint64_t S = loom__aid(0, LOOM__RT_DEV_CPU, 0, 1, 0), A = cpu_id(1 % nthreads, 0), B = cpu_id(2 % nthreads, 1),
             G = cpu_id(d, 2), H = cpu_id(d, 3), K = cpu_id(0, 4);
    void *xb[2 * M], *hb[M], *ab[2] = {&c->a_out[0], &c->a_out[1]}, *gb[1] = {&c->grad[0]},
         *lb[2] = {&c->loss[0], &c->loss[1]}, *accb[1] = {&c->acc};
    for (int i = 0; i < 2 * M; i++)
        xb[i] = &c->x[i];
    for (int i = 0; i < M; i++)
        hb[i] = &c->param; /* every copy of a version is the one parameter */
    loom__actor_desc descs[] = {
        {.id = S, .name = "S", .act = src_act, .ctx = c, .nout = 1, .out = (loom__regst_desc[]){{2 * M, xb}}, .group = M},
        {.id = H, .name = "H", .act = holder_act, .ctx = c, .nin = 1, .nout = 1, .out = (loom__regst_desc[]){{M, hb}},
         .initial_emits = M, .hold = M, .in_place = 1},
        {.id = A, .name = "A", .act = user_act, .ctx = c, .nin = 2, .nout = 1, .out = (loom__regst_desc[]){{2, ab}}},
        {.id = B, .name = "B", .act = grad_act, .ctx = c, .nin = 1, .nout = 2, .out = (loom__regst_desc[]){{1, gb}, {2, lb}}},
        {.id = G, .name = "G", .act = gather_act, .ctx = c, .nin = 1, .nout = 1, .out = (loom__regst_desc[]){{1, accb}},
         .group = M, .gather = 1},
        {.id = K, .name = "K", .act = sink_act, .ctx = c, .nin = 1},
    };
    for (size_t i = 0; i < sizeof descs / sizeof *descs; i++)
        ck_assert_int_eq(loom__rt_add_actor(rt, &descs[i]), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, S, 0, A, 0), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, H, 0, A, 1), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, A, 0, B, 0), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, B, 0, G, 0), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, G, 0, H, 0), LOOM_OK);
    ck_assert_int_eq(loom__rt_connect(rt, B, 1, K, 0), LOOM_OK);
    return rt;
}

static void run_groups(int nthreads, useconds_t a_sleep)
{
    cyc c = {.fail_b_at = -1, .a_sleep = a_sleep};
    loom__rt *rt = cycle_new(&c, nthreads);
    int64_t steps = a_sleep ? 20 : scaled(2000) / M;
    for (int run = 1; run <= 2; run++) { /* the second run goes on from the first's parameter */
        loom_status st = loom__rt_run(rt, steps * M);
        ck_assert_msg(st == LOOM_OK, "run %d: %s", run, loom__rt_error(rt));
        ck_assert_int_eq(c.param, run * steps);
        ck_assert_int_eq(c.h_updates, run * steps);
        ck_assert_int_eq(c.h_initial, run * M);
        ck_assert_int_eq(c.g_emits, run * steps);
        ck_assert_int_eq(c.a_acts, run * steps * M);
        ck_assert_int_eq(c.k_next, run * steps * M);
        /* in each run, every version served M acts of H: the initial M, then M per gradient */
        ck_assert_int_eq(loom__rt_actor_acts(rt, loom__aid(0, LOOM__RT_DEV_CPU, (unsigned)(nthreads - 1), 0, 3)), M + steps * M);
    }
    loom__rt_free(rt);
}

START_TEST(test_groups_1_thread) { run_groups(1, 0); }
END_TEST
START_TEST(test_groups_4_threads) { run_groups(4, 0); }
END_TEST
/* A slow reader: an update that did not wait for every copy's ack would show in A's check. */
START_TEST(test_groups_slow_reader) { run_groups(3, 200); }
END_TEST

/* A failure inside a step: its group is never gathered, so the parameter takes no part of that
 * step, every step before it is applied, and the sink saw exactly the pieces that did not need the
 * failed act. */
START_TEST(test_groups_failure_mid_step)
{
    cyc c = {.fail_b_at = 5 * M + 2};
    loom__rt *rt = cycle_new(&c, 4);
    loom_status st = loom__rt_run(rt, 40 * M);
    ck_assert_int_eq(st, LOOM_ERR_RUNTIME);
    ck_assert_msg(strstr(loom__rt_error(rt), "planned failure at 22") != NULL, "%s", loom__rt_error(rt));
    ck_assert_int_eq(c.param, 5);
    ck_assert_int_eq(c.h_updates, 5);
    ck_assert_int_eq(c.k_next, 5 * M + 2);
    loom__rt_free(rt);
}
END_TEST

/* A cancel drains at a step's end: the source completes the group it began. The sink cancels
 * inside a step (at no particular time: what is in flight then depends on the threads). */
START_TEST(test_groups_cancel_completes_step)
{
    cyc c = {.fail_b_at = -1, .cancel_at = 3 * M + 1};
    loom__rt *rt = c.rt = cycle_new(&c, 2);
    loom_status st = loom__rt_run(rt, 1000 * M);
    ck_assert_int_eq(st, LOOM_ERR_RUNTIME);
    ck_assert_str_eq(loom__rt_error(rt), "cancelled");
    ck_assert_int_ge(c.k_next, 4 * M);
    ck_assert_int_lt(c.k_next, 1000 * M);
    ck_assert_int_eq(c.k_next % M, 0); /* whole steps only */
    ck_assert_int_eq(c.param, c.k_next / M);
    ck_assert_int_eq(loom__rt_next_piece(rt) % M, 0);
    loom__rt_free(rt);
}
END_TEST

START_TEST(test_groups_refused)
{
    loom__rt *rt = rt_new();
    tact *t = tact_new(0);
    loom__regst_desc out = {.regst_num = 1, .bufs = t->ptr};
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "g", .act = stage_act, .ctx = t,
                                                                 .nout = 1, .out = &out, .gather = 1, .group = 2}),
                     LOOM_ERR_INVALID);
    ck_assert_msg(strstr(loom__rt_error(rt), "gather needs an input") != NULL, "%s", loom__rt_error(rt));
    loom__rt_free(rt);
    rt = rt_new();
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = cpu_id(0, 0), .name = "d", .act = stage_act, .ctx = t,
                                                                 .nin = 1, .nout = 1, .out = &out, .hold = 2, .max_deferred = 1}),
                     LOOM_ERR_INVALID);
    loom__rt_free(rt);
    /* another rank's actor acts there, its groups of pieces with it: here it has none */
    rt = rt_new();
    ck_assert_int_eq(loom__rt_add_actor(rt, &(loom__actor_desc){.id = loom__aid(1, 0, 0, 0, 0), .name = "far", .nin = 1, .nout = 1,
                                                                 .out = &out, .group = 2, .remote = 1}),
                     LOOM_ERR_INVALID);
    ck_assert_msg(strstr(loom__rt_error(rt), "far: a remote actor with hold 0, group 2") != NULL, "%s", loom__rt_error(rt));
    loom__rt_free(rt);
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runtime_groups");
    TCase *tc = tcase_create("groups");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_groups_1_thread);
    tcase_add_test(tc, test_groups_4_threads);
    tcase_add_test(tc, test_groups_slow_reader);
    tcase_add_test(tc, test_groups_failure_mid_step);
    tcase_add_test(tc, test_groups_cancel_completes_step);
    tcase_add_test(tc, test_groups_refused);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
