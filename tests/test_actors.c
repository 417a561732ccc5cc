/* Programs on the actor runtime: the same results as the reference executor (random graphs and
 * GCN training), pipelining seen in the trace, memory reuse, a failing source, cancel. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actors/exec.h"
#include "graphs/session/program.h"
#include "runtime/runtime.h"

/* ---- random graphs (lt_random_graph) ---------------------------------------------------------- */

/* Trains the random graph `seed` for a few steps on one executor; returns losses and final w0. */
static void train_random(uint64_t seed, loom_executor exec, int regst_num, double *losses, double *w0, int steps)
{
    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, seed);
    loom_tensor *x, *idx;
    int64_t rc[2];
    loom_tensor *loss = lt_random_graph(g, seed, &x, &idx, rc);
    loom_program *p;
    loom_optimizer opt = seed % 3 ? loom_adam(0.05) : loom_sgd(0.1);
    if (seed % 3 == 2)
        opt.momentum = 0.9;
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = opt, .executor = exec, .regst_num = regst_num}, &p) ==
                      LOOM_OK,
                  "seed %llu: %s", (unsigned long long)seed, loom_graph_error(g));
    double xd[32];
    lt_fill_normal(xd, rc[0] * rc[1], seed);
    float xf[32];
    for (int i = 0; i < rc[0] * rc[1]; i++)
        xf[i] = (float)xd[i];
    int32_t id[8];
    lt_fill_int(id, rc[0], (int32_t)rc[0], seed);
    loom_array xa = {.dtype = loom_tensor_dtype(x), .ndim = 2, .shape = {rc[0], rc[1]}};
    xa.data = xa.dtype == LOOM_F32 ? (void *)xf : (void *)xd;
    loom_array ia = {.dtype = LOOM_I32, .ndim = 1, .shape = {rc[0]}, .data = id};
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, idx, &ia), LOOM_OK);
    /* half the seeds step one run at a time, half in one pipelined run */
    if (seed % 2)
        ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, steps) == LOOM_OK, "%s", loom_program_error(p));
    else
        for (int k = 0; k < steps; k++)
            ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
    int64_t n;
    const double *l = loom_program_losses(p, &n);
    ck_assert_int_eq(n, steps);
    memcpy(losses, l, (size_t)steps * sizeof *losses);
    loom_array w;
    ck_assert_int_eq(loom_program_fetch(p, loom_graph_find(g, "w0"), &w), LOOM_OK);
    for (int64_t i = 0; i < loom_array_numel(&w); i++)
        w0[i] = w.dtype == LOOM_F32 ? ((float *)w.data)[i] : ((double *)w.data)[i];
    loom_program_free(p);
    loom_graph_free(g);
}

START_TEST(test_random_graphs_match_reference)
{
    /* the same kernels in the same order: the results must be identical, bit for bit */
    enum { STEPS = 3 };
    for (uint64_t seed = 0; seed < 220; seed++) {
        double l_ref[STEPS], l_act[STEPS], w_ref[32] = {0}, w_act[32] = {0};
        train_random(seed, LOOM_EXEC_REFERENCE, 0, l_ref, w_ref, STEPS);
        train_random(seed, LOOM_EXEC_ACTORS, 1 + (int)(seed % 4), l_act, w_act, STEPS);
        for (int k = 0; k < STEPS; k++)
            ck_assert_msg(l_ref[k] == l_act[k] || (isnan(l_ref[k]) && isnan(l_act[k])),
                          "seed %llu step %d: reference loss %.17g, actors %.17g", (unsigned long long)seed, k, l_ref[k],
                          l_act[k]);
        ck_assert_msg(!memcmp(w_ref, w_act, sizeof w_ref), "seed %llu: parameters differ", (unsigned long long)seed);
    }
}
END_TEST

/* ---- a data source ---------------------------------------------------------------------------- */

typedef struct feed_state {
    loom_tensor *x;
    int64_t fail_at, cancel_at, end_at;
    loom_program *p;
    int sleep_ms;
} feed_state;

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static loom_status feed(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen)
{
    feed_state *st = ctx;
    if (st->sleep_ms)
        sleep_ms(st->sleep_ms);
    if (step == st->fail_at) {
        snprintf(msg, msglen, "bad record at step %lld", (long long)step);
        return LOOM_ERR_FORMAT;
    }
    if (step == st->cancel_at)
        loom_program_cancel(st->p);
    if (step == st->end_at) {
        *end = 1;
        return LOOM_OK;
    }
    static double data[64 * 64];
    for (int i = 0; i < 64 * 64; i++)
        data[i] = (double)((i + step) % 7) / 7.0;
    loom_array a = {.dtype = LOOM_F64, .ndim = 2, .shape = {64, 64}, .data = data};
    return loom_feeder_dense(f, st->x, &a);
}

/* loss = mean(tanh(x w) w^T ...): a few matmuls on the input, enough work to see in a trace */
static loom_program *sourced_program(loom_graph *g, feed_state *st, int regst_num, loom_tensor **first_op)
{
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(64, 64));
    loom_tensor *w = loom_param(g, "w", LOOM_F64, loom_shape(64, 64), loom_init_glorot(1));
    loom_tensor *h = loom_matmul(g, x, w);
    loom_tensor_set_name(h, "xw");
    for (int k = 0; k < 4; k++)
        h = loom_matmul(g, loom_tanh(g, h), w);
    loom_tensor *loss = loom_mean(g, h, LOOM_ALL_AXES, 0);
    loom_program *p;
    ck_assert_int_eq(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.01), .regst_num = regst_num}, &p),
                     LOOM_OK);
    st->x = x;
    st->p = p;
    loom_program_set_source(p, feed, st);
    *first_op = loom_graph_find(g, "xw");
    return p;
}

START_TEST(test_pipelining)
{
    /* with 2 buffers the source loads step t+1 while the first op computes step t; with 1 it
     * waits until that op has released step t's buffer */
    for (int regst_num = 1; regst_num <= 2; regst_num++) {
        loom_graph *g = loom_graph_new();
        feed_state st = {.fail_at = -1, .cancel_at = -1, .end_at = -1, .sleep_ms = 3};
        loom_tensor *first;
        loom_program *p = sourced_program(g, &st, regst_num, &first);
        p->trace_record = 1;
        ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, 12) == LOOM_OK, "%s", loom_program_error(p));
        loom__rt *rt = loom__exec_runtime(p->exec[LOOM_RUN_STEP]);
        int overlaps = 0;
        for (int64_t t = 0; t + 1 < 12; t++) {
            loom__rt_event src, op;
            ck_assert(loom__rt_trace_find(rt, "the data source", t + 1, &src));
            ck_assert(loom__rt_trace_find(rt, "matmul 'xw'", t, &op));
            if (regst_num == 1)
                ck_assert_msg(src.begin_ns >= op.end_ns, "step %lld: the source began %lld ns before the op ended",
                              (long long)t, (long long)(op.end_ns - src.begin_ns));
            overlaps += src.begin_ns < op.end_ns;
        }
        if (regst_num == 2)
            ck_assert_msg(overlaps > 0, "no step of the source overlapped the compute of the step before");
        int64_t n;
        loom_program_losses(p, &n);
        ck_assert_int_eq(n, 12);
        ck_assert_int_eq(loom_program_steps(p), 12);
        loom_program_free(p);
        loom_graph_free(g);
    }
}
END_TEST

START_TEST(test_source_end_fail_cancel)
{
    /* the source ends after 5 steps: the run stops there, cleanly */
    loom_graph *g = loom_graph_new();
    feed_state st = {.fail_at = -1, .cancel_at = -1, .end_at = 5};
    loom_tensor *first;
    loom_program *p = sourced_program(g, &st, 2, &first);
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, 100) == LOOM_OK, "%s", loom_program_error(p));
    ck_assert_int_eq(loom_program_steps(p), 5);
    loom_program_free(p);
    loom_graph_free(g);

    /* zero steps of an endless source run nothing and return at once (the runtime's 0 pieces
     * would mean "until the source ends") */
    g = loom_graph_new();
    st = (feed_state){.fail_at = -1, .cancel_at = -1, .end_at = -1};
    p = sourced_program(g, &st, 2, &first);
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, 0) == LOOM_OK, "%s", loom_program_error(p));
    ck_assert_int_eq(loom_program_steps(p), 0);
    loom_program_free(p);
    loom_graph_free(g);

    /* a bad record mid-run: the run returns its error, naming the source and the step */
    g = loom_graph_new();
    st = (feed_state){.fail_at = 7, .cancel_at = -1, .end_at = -1};
    p = sourced_program(g, &st, 2, &first);
    ck_assert_int_eq(loom_program_run_steps(p, LOOM_RUN_STEP, 100), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(loom_program_error(p), "bad record at step 7"), "%s", loom_program_error(p));
    ck_assert_msg(strstr(loom_program_error(p), "source"), "%s", loom_program_error(p));
    ck_assert_int_le(loom_program_steps(p), 7);
    loom_program_free(p);
    loom_graph_free(g);

    /* a cancel from another thread (the source's) ends an endless run */
    g = loom_graph_new();
    st = (feed_state){.fail_at = -1, .cancel_at = 20, .end_at = -1};
    p = sourced_program(g, &st, 2, &first);
    ck_assert_int_eq(loom_program_run_steps(p, LOOM_RUN_STEP, INT64_MAX / 2), LOOM_ERR_RUNTIME);
    ck_assert_msg(strstr(loom_program_error(p), "cancelled"), "%s", loom_program_error(p));
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_memory_reuse)
{
    /* a chain of wide ops: without reuse every value has its own buffer; with it, a few do */
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(256, 256));
    loom_tensor *h = x;
    for (int k = 0; k < 16; k++)
        h = loom_tanh(g, loom_scale(g, h, 0.9));
    loom_program *p;
    ck_assert_int_eq(loom_compile(g, loom_sum(g, h, LOOM_ALL_AXES, 0), NULL, &p), LOOM_OK);
    loom_memory m;
    ck_assert_int_eq(loom_program_memory(p, LOOM_RUN_EVAL, LOOM_ALL_DEVICES, &m), LOOM_OK);
    ck_assert_uint_eq(m.unshared, 32 * (size_t)256 * 256 * 4);
    ck_assert_uint_le(m.shared, 2 * (size_t)256 * 256 * 4 + 64);
    /* and it still computes the same value */
    static float xd[256 * 256];
    for (int i = 0; i < 256 * 256; i++)
        xd[i] = (float)(i % 13) / 13.0f;
    loom_array xa = {.dtype = LOOM_F32, .ndim = 2, .shape = {256, 256}, .data = xd};
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_keep(p, h), LOOM_OK);
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_OK);
    loom_array ha;
    ck_assert_int_eq(loom_program_fetch(p, h, &ha), LOOM_OK);
    for (int i = 0; i < 256 * 256; i += 997) {
        float v = xd[i];
        for (int k = 0; k < 16; k++)
            v = tanhf(v * 0.9f);
        ck_assert_msg(fabsf(((float *)ha.data)[i] - v) < 1e-5f, "element %d: %g, expected %g", i, ((float *)ha.data)[i], v);
    }
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_out_of_memory_at_plan_time)
{
    /* a step that needs more than the limit fails at compile time, saying what it needs; the plan
     * is there right after compiling */
    for (int fits = 0; fits < 2; fits++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(1024, 1024));
        loom_tensor *w = loom_param(g, "w", LOOM_F32, loom_shape(1024, 1024), loom_init_glorot(1));
        loom_tensor *loss = loom_sum(g, loom_tanh(g, loom_matmul(g, x, w)), LOOM_ALL_AXES, 0);
        loom_program *p = NULL;
        const int64_t limit = fits ? INT64_C(64) << 20 : 8 << 20;
        loom_status s = loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_adam(0.1), .memory_limit = limit}, &p);
        if (!fits) {
            ck_assert_int_eq(s, LOOM_ERR_NOMEM);
            ck_assert_ptr_null(p);
            ck_assert_msg(strstr(loom_graph_error(g), "loom_compile: the plan of a step needs"), "%s", loom_graph_error(g));
            ck_assert_msg(strstr(loom_graph_error(g), "over the limit of 8.0 MiB"), "%s", loom_graph_error(g));
        } else {
            ck_assert_msg(s == LOOM_OK, "%s", loom_graph_error(g));
            loom_memory m;
            ck_assert_int_eq(loom_program_memory(p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &m), LOOM_OK);
            ck_assert_uint_gt(m.total, 8 << 20);
            ck_assert_int_eq(loom_program_memory(p, LOOM_RUN_STEP, 1, &m), LOOM_ERR_INVALID);
            ck_assert_ptr_null(p->exec[LOOM_RUN_STEP]); /* planned, no executor built yet */
            loom_program_free(p);
        }
        loom_graph_free(g);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("actors");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_random_graphs_match_reference);
    tcase_add_test(tc, test_pipelining);
    tcase_add_test(tc, test_source_end_fail_cancel);
    tcase_add_test(tc, test_memory_reuse);
    tcase_add_test(tc, test_out_of_memory_at_plan_time);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
