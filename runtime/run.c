/* Running the runtime: the worker threads (each drains its FIFO and ring, spins a little, then
 * sleeps on its event count, woken through futexes), pinning, stopping, errors, cancel, and a run
 * from start to join. */
#define _GNU_SOURCE /* pthread_setname_np */
#define LOOM__RT_PRIVATE
#include "runtime/runtime.h"

#include <errno.h>
#include <hwloc.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { LOOM__RT_RING_BATCH = 64 };

/* ---- futex ops for ck_ec ------------------------------------------------------------------- */

static int ec_gettime(const struct ck_ec_ops *ops, struct timespec *out)
{
    (void)ops;
    return clock_gettime(CLOCK_MONOTONIC, out);
}

/* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, which is what ck_ec passes. */
static void ec_wait32(const struct ck_ec_wait_state *ws, const uint32_t *addr, uint32_t expected,
                      const struct timespec *deadline)
{
    (void)ws;
    syscall(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected, deadline, NULL,
            FUTEX_BITSET_MATCH_ANY);
}

static void ec_wait64(const struct ck_ec_wait_state *ws, const uint64_t *addr, uint64_t expected,
                      const struct timespec *deadline)
{
    ec_wait32(ws, (const uint32_t *)addr, (uint32_t)expected, deadline); /* low half, little endian */
}

static void ec_wake32(const struct ck_ec_ops *ops, const uint32_t *addr)
{
    (void)ops;
    syscall(SYS_futex, addr, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, INT_MAX, NULL, NULL, 0);
}

static void ec_wake64(const struct ck_ec_ops *ops, const uint64_t *addr) { ec_wake32(ops, (const uint32_t *)addr); }

static const struct ck_ec_ops loom__ec_ops = {
    /* .gettime = */ ec_gettime,
    /* .wait32 = */ ec_wait32,
    /* .wait64 = */ ec_wait64,
    /* .wake32 = */ ec_wake32,
    /* .wake64 = */ ec_wake64,
    /* .busy_loop_iter = */ 32, /* our own spin (rt->spin) ran already */
    /* .initial_wait_ns = */ 0,
    /* .wait_scale_factor = */ 0,
    /* .wait_shift_count = */ 0,
};

const struct ck_ec_mode loom__ec_mode = {.ops = &loom__ec_ops, .single_producer = false};

/* ck_ec's predicate, before each step of its backoff: the step ends by the deadline (data), and
 * the wait once the deadline has passed. */
static int until_deadline(const struct ck_ec_wait_state *ws, struct timespec *step)
{
    const struct timespec *dl = ws->data;
    if (!loom__ts_before(&ws->now, dl))
        return 1;
    if (loom__ts_before(dl, step))
        *step = *dl;
    return 0;
}

void loom__ec_wait_until(struct ck_ec32 *ec, const struct ck_ec_mode *mode, uint32_t v, const struct timespec *dl)
{
    ck_ec32_wait_pred(ec, mode, v, until_deadline, (void *)dl, dl);
}

/* ---- worker threads ------------------------------------------------------------------------ */

static void deliver(loom__rt_thread *t, const loom__rt_msg *m)
{
    uint32_t task = loom__aid_task(m->dst);
    assert(task < t->ntask && t->by_task[task] && t->by_task[task]->id == m->dst && "message routed to a wrong thread");
    loom__actor_on_msg(t, t->by_task[task], m);
}

/* A short bounded spin on the ring, then sleep on the event count until a producer bumps it. */
static void idle(loom__rt_thread *t)
{
    loom__rt *rt = t->rt;
    for (int i = 0; i < rt->spin; i++) {
        if (!loom__ring_empty(&t->ring) || atomic_load(&rt->stop))
            return;
        ck_pr_stall();
    }
    uint32_t v = ck_ec32_value(&t->ec);
    if (!loom__ring_empty(&t->ring) || atomic_load(&rt->stop))
        return;
    t->sleeps++;
    ck_ec32_wait(&t->ec, &loom__ec_mode, v, NULL);
}

static void *worker(void *arg)
{
    loom__rt_thread *t = arg;
    loom__rt *rt = t->rt;
    for (int k = 0; k < t->nactors; k++)
        loom__actor_start(t, t->actors[k]);
    loom__rt_msg m;
    int64_t msgs = 0;
    while (!loom__rt_stopping(rt)) {
        int64_t got = 0;
        while (loom__fifo_pop(&t->fifo, &m)) {
            deliver(t, &m);
            got++;
            if (loom__rt_stopping(rt))
                break;
        }
        for (int k = 0; k < LOOM__RT_RING_BATCH && loom__ring_pop(&t->ring, &m); k++) {
            deliver(t, &m);
            got++;
        }
        msgs += got;
        if (!got)
            idle(t);
    }
    t->msgs = msgs;
    return NULL;
}

/* Binds thread ti round-robin over the cores; warns once when the system refuses. Runs on the
 * calling thread, so hwloc's topology is never used concurrently. */
static void pin(loom__rt *rt, int ti)
{
    if (!rt->opts.pin)
        return;
    loom__rt_thread *t = &rt->threads[ti];
    const char *why = "no core found in the hwloc topology";
    int core = -1;
    if (rt->topo && rt->ncores > 0) {
        hwloc_topology_t topo = rt->topo;
        core = ti % rt->ncores;
        hwloc_obj_t obj = hwloc_get_obj_by_type(topo, HWLOC_OBJ_CORE, (unsigned)core);
        if (!obj)
            obj = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, (unsigned)core);
        if (obj && hwloc_set_thread_cpubind(topo, t->pth, obj->cpuset, 0) == 0)
            return;
        why = obj ? strerror(errno) : why;
    }
    if (atomic_exchange(&rt->pin_warned, 1) == 0)
        fprintf(stderr, "loom: warning: could not pin runtime thread %s to core %d (%s); threads run unpinned\n",
                t->name, core, why);
}

static void load_topology(loom__rt *rt)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0)
        return;
    if (hwloc_topology_load(topo) != 0) {
        hwloc_topology_destroy(topo);
        return;
    }
    rt->topo = topo;
    rt->ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
    if (rt->ncores <= 0)
        rt->ncores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
}

/* ---- running ------------------------------------------------------------------------------- */

void loom__rt_stop(loom__rt *rt)
{
    atomic_store(&rt->stop, 1);
    int n = atomic_load(&rt->nthreads_live);
    for (int k = 0; k < n; k++)
        ck_ec32_inc(&rt->threads[k].ec, &loom__ec_mode);
}

void loom__rt_actor_done(loom__rt *rt)
{
    if (atomic_fetch_sub(&rt->live, 1) == 1)
        loom__rt_stop(rt);
}

/* Keeps the first error of a run: the message buffer is claimed by one thread only. */
static void record_error(loom__rt *rt, loom_status st, const char *fmt, va_list ap)
{
    int expect = 0;
    if (atomic_compare_exchange_strong(&rt->err_state, &expect, 1)) {
        vsnprintf(rt->msg, sizeof rt->msg, fmt, ap);
        rt->status = st;
        atomic_store_explicit(&rt->err_state, 2, memory_order_release);
    }
}

loom_status loom__rt_failv(loom__rt *rt, loom_status st, const char *fmt, va_list ap)
{
    record_error(rt, st, fmt, ap);
    atomic_store(&rt->hard, 1);
    loom__rt_stop(rt);
    return st;
}

loom_status loom__rt_drain(loom__rt *rt, loom_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    record_error(rt, st, fmt, ap);
    va_end(ap);
    atomic_store_explicit(&rt->draining, 1, memory_order_relaxed);
    return st;
}

loom_status loom__rt_fail(loom__rt *rt, loom_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    loom__rt_failv(rt, st, fmt, ap);
    va_end(ap);
    return st;
}

void loom__rt_cancel(loom__rt *rt)
{
    if (!rt)
        return;
    /* one store: the sources read it as the end of their data (the run drains), and the run's
     * start and end consume it */
    atomic_store(&rt->cancel_req, 1);
}

int loom__rt_take_cancel(loom__rt *rt) { return atomic_exchange(&rt->cancel_req, 0); }

void loom__rt_set_next_piece(loom__rt *rt, int64_t piece) { rt->next_piece = piece; }

void loom__rt_post(loom__rt *rt, uint32_t thread, const loom__rt_msg *m)
{
    loom__rt_thread *t = &rt->threads[thread];
    loom__ring_push(&t->ring, m);
    ck_ec32_inc(&t->ec, &loom__ec_mode);
}

void loom__rt_complete(loom__rt *rt, uint64_t actor, loom_status st, const char *msg)
{
    int ti = loom__rt_thread_of(rt, actor);
    if (st != LOOM_OK)
        loom__rt_fail(rt, st, "%s", msg ? msg : loom_status_str(st));
    if (ti >= 0) {
        loom__rt_thread *t = &rt->threads[ti];
        loom__rt_msg m = {.dst = actor, .kind = LOOM__MSG_DONE};
        loom__ring_push(&t->ring, &m);
        ck_ec32_inc(&t->ec, &loom__ec_mode);
    }
    atomic_fetch_sub(&rt->deferred, 1); /* last: loom__rt_run returns only after this */
}

static void reset_run(loom__rt *rt)
{
    for (int k = 0; k < rt->nactors; k++)
        loom__actor_reset(rt->actors[k], rt->next_piece);
    for (int ti = 0; ti < rt->nthreads; ti++) {
        loom__rt_thread *t = &rt->threads[ti];
        ck_ring_init(&t->ring.ring, t->ring.ring.size);
        t->fifo.head = t->fifo.tail = 0;
        t->trace.n = t->trace.lost = 0;
        t->msgs = t->sleeps = 0;
        t->started = 0;
    }
    atomic_store(&rt->live, rt->nlocal);
    atomic_store(&rt->err_state, 0);
    atomic_store(&rt->draining, 0);
    atomic_store(&rt->deferred, 0);
    atomic_store(&rt->hard, 0);
    atomic_store(&rt->quiesce, 0);
    atomic_store(&rt->quiet, 0);
    atomic_store(&rt->leftovers, 0);
    rt->runs++;
    rt->status = LOOM_OK;
    rt->msg[0] = 0;
}

/* The workers have ended; REQs from other ranks may still sit in their queues, and their
 * producers wait for the ACKs to end their own run. Once the communication thread posts no more
 * (quiet), each such REQ is acked through it; from then on it acks them itself. */
static void ack_leftovers(loom__rt *rt)
{
    atomic_store(&rt->quiesce, 1);
    ck_ec32_inc(&rt->threads[rt->nthreads - 1].ec, &loom__ec_mode);
    while (!atomic_load(&rt->quiet))
        nanosleep(&(struct timespec){.tv_nsec = 20000}, NULL);
    uint32_t net = (uint32_t)rt->nthreads - 1;
    loom__rt_msg m;
    for (uint32_t ti = 0; ti < net; ti++) {
        loom__rt_thread *t = &rt->threads[ti];
        while (loom__ring_pop(&t->ring, &m))
            if (m.kind == LOOM__MSG_REQ && loom__aid_rank(m.src) != (unsigned)rt->opts.rank) {
                const loom__actor *c = t->by_task[loom__aid_task(m.dst)];
                loom__rt_msg ack = {.dst = m.src, .src = m.dst, .piece = m.piece, .buf = m.buf,
                                    .reg = c->in[m.reg].producer.reg, .kind = LOOM__MSG_ACK};
                loom__ring_push(&rt->threads[net].ring, &ack);
            }
    }
    atomic_store(&rt->leftovers, 1);
    ck_ec32_inc(&rt->threads[net].ec, &loom__ec_mode);
}

enum { POLL_NS = 100000000 }; /* how often a waiting run asks its hooks' poll */

/* Asks the hooks' poll; a failure stops the run at once (a first error recorded stays the run's). */
static void poll_hook(loom__rt *rt)
{
    char msg[sizeof rt->msg] = "";
    loom_status st = rt->hooks.poll(rt->hooks.ctx, loom__rt_draining(rt), msg, sizeof msg);
    if (st != LOOM_OK)
        loom__rt_fail(rt, st, "%s", msg[0] ? msg : loom_status_str(st));
}

/* Joins a thread of the run; with a poll hook, polls every POLL_NS until it has ended. */
static void join(loom__rt *rt, pthread_t th)
{
    if (!rt->hooks.poll) {
        pthread_join(th, NULL);
        return;
    }
    for (;;) {
        const struct timespec dl = loom__deadline_after(CLOCK_REALTIME, POLL_NS); /* pthread_timedjoin_np's clock */
        if (pthread_timedjoin_np(th, NULL, &dl) != ETIMEDOUT)
            return;
        poll_hook(rt);
    }
}

loom_status loom__rt_run(loom__rt *rt, int64_t max_pieces)
{
    if (!rt)
        return LOOM_ERR_INVALID;
    if (max_pieces < 0) {
        snprintf(rt->msg, sizeof rt->msg, "loom__rt_run: max_pieces is %" PRId64, max_pieces);
        return LOOM_ERR_INVALID;
    }
    if (rt->build_status == LOOM_OK && !rt->laid_out)
        loom__rt_layout(rt);
    if (rt->build_status != LOOM_OK) {
        snprintf(rt->msg, sizeof rt->msg, "%s", rt->build_msg);
        return rt->build_status;
    }
    reset_run(rt);
    atomic_store(&rt->stop, 0);
    if (atomic_exchange(&rt->cancel_req, 0)) {
        snprintf(rt->msg, sizeof rt->msg, "cancelled");
        return LOOM_ERR_RUNTIME;
    }
    rt->run_first = rt->next_piece;
    rt->run_end = max_pieces > 0 && rt->next_piece <= INT64_MAX - max_pieces ? rt->next_piece + max_pieces : INT64_MAX;
    if (rt->nactors == 0)
        return LOOM_OK;
    if (rt->opts.pin && !rt->topo)
        load_topology(rt);

    rt->t0_ns = loom__now_ns();
    for (int ti = 0; ti < rt->nthreads; ti++) {
        loom__rt_thread *t = &rt->threads[ti];
        int e = pthread_create(&t->pth, NULL, t->net ? loom__net_main : worker, t);
        if (e != 0) {
            loom__rt_fail(rt, LOOM_ERR_RUNTIME, "cannot start runtime thread %s: %s", t->name, strerror(e));
            break;
        }
        t->started = 1;
        char tname[16]; /* the kernel's limit, with the NUL */
        snprintf(tname, sizeof tname, "loom %.10s", t->name);
        pthread_setname_np(t->pth, tname);
        if (!t->net)
            pin(rt, ti);
    }
    for (int ti = 0; ti < rt->nthreads; ti++)
        if (rt->threads[ti].started && !rt->threads[ti].net)
            join(rt, rt->threads[ti].pth);
    if (rt->net && rt->threads[rt->nthreads - 1].started) {
        ack_leftovers(rt);
        join(rt, rt->threads[rt->nthreads - 1].pth);
    }
    /* A deferred act's completion may still be on its way (a device callback): wait for it, since
     * it posts into our rings and its buffers are still in use. After a failure or a cancel, the
     * devices' work that waits for a device that stopped is ended first (hooks.stopped). */
    int stopped = 0;
    for (int64_t polled = loom__now_ns();;) {
        if (!stopped && rt->hooks.stopped && (atomic_load(&rt->err_state) != 0 || atomic_load(&rt->cancel_req))) {
            stopped = 1;
            rt->hooks.stopped(rt->hooks.ctx);
        }
        if (atomic_load(&rt->deferred) <= 0)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);
        if (rt->hooks.poll && loom__now_ns() - polled > POLL_NS) {
            polled = loom__now_ns();
            poll_hook(rt);
        }
    }

    for (int k = 0; k < rt->nactors; k++)
        if (rt->actors[k]->nin == 0 && rt->actors[k]->next_piece > rt->next_piece)
            rt->next_piece = rt->actors[k]->next_piece;

    loom_status st = LOOM_OK;
    int cancelled = atomic_exchange(&rt->cancel_req, 0); /* consumed by this run in any case */
    if (atomic_load(&rt->err_state) != 0) {
        while (atomic_load_explicit(&rt->err_state, memory_order_acquire) != 2)
            sched_yield(); /* the first failure is still writing its message */
        st = rt->status;
    } else if (cancelled) {
        snprintf(rt->msg, sizeof rt->msg, "cancelled");
        st = LOOM_ERR_RUNTIME;
    }
    /* The trace is not the run: a run that did its pieces returns OK however its trace went (a
     * caller that retried on an error would run them twice); the failure is kept apart. */
    rt->trace_msg[0] = 0;
    if (rt->trace_path) {
        char keep[sizeof rt->msg];
        memcpy(keep, rt->msg, sizeof keep);
        char *path = loom__trace_path(rt->trace_path, (long)getpid(), loom__trace_next_run(), rt->msg, sizeof rt->msg);
        if (!path || loom__rt_trace_write(rt, path) != LOOM_OK) {
            memcpy(rt->trace_msg, rt->msg, sizeof rt->trace_msg);
            if (atomic_exchange(&rt->trace_warned, 1) == 0)
                fprintf(stderr, "loom: warning: %s; the runs go on without it\n", rt->trace_msg);
        }
        free(path);
        memcpy(rt->msg, keep, sizeof keep);
    }
    return st;
}
