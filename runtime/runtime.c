/* The runtime: building and laying out the plan (threads, routes, queue bounds), worker threads,
 * wake-ups, running, stopping, errors and cancel. The actor protocol itself is in actor.c. */
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

enum { LOOM__RT_DEFAULT_SPIN = 200, LOOM__RT_RING_BATCH = 64, LOOM__RT_TRACE_INIT = 1024 };

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

/* ---- creating and building ----------------------------------------------------------------- */

loom__rt *loom__rt_new(const loom__rt_opts *opts)
{
    loom__rt *rt = calloc(1, sizeof *rt);
    if (!rt)
        return NULL;
    rt->opts = opts ? *opts : (loom__rt_opts)LOOM__RT_OPTS_INIT;
    const char *path = rt->opts.trace ? rt->opts.trace : getenv("LOOM_TRACE");
    if (path && *path && !(rt->trace_path = strdup(path))) {
        free(rt);
        return NULL;
    }
    rt->opts.trace = rt->trace_path;
    rt->tracing = rt->trace_path != NULL || rt->opts.trace_record;
    rt->spin = rt->opts.spin < 0 ? LOOM__RT_DEFAULT_SPIN : rt->opts.spin;
    atomic_init(&rt->nthreads_live, 0);
    atomic_init(&rt->stop, 0);
    atomic_init(&rt->live, 0);
    atomic_init(&rt->err_state, 0);
    atomic_init(&rt->cancel_req, 0);
    atomic_init(&rt->draining, 0);
    atomic_init(&rt->deferred, 0);
    atomic_init(&rt->pin_warned, 0);
    atomic_init(&rt->trace_warned, 0);
    return rt;
}

void loom__rt_free(loom__rt *rt)
{
    if (!rt)
        return;
    for (int k = 0; k < rt->nactors; k++)
        loom__actor_free(rt->actors[k]);
    for (int k = 0; k < rt->nthreads; k++) {
        loom__rt_thread *t = &rt->threads[k];
        free(t->ring.slots);
        free(t->fifo.slots);
        free(t->by_task);
        loom__trace_free(&t->trace);
    }
    free(rt->threads);
    free(rt->actors);
    free(rt->edges);
    free(rt->trace_path);
    if (rt->topo)
        hwloc_topology_destroy((hwloc_topology_t)rt->topo);
    free(rt);
}

/* Keeps the first building mistake; loom__rt_run returns it. */
static loom_status build_fail(loom__rt *rt, loom_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static loom_status build_fail(loom__rt *rt, loom_status st, const char *fmt, ...)
{
    if (rt->build_status == LOOM_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rt->build_msg, sizeof rt->build_msg, fmt, ap);
        va_end(ap);
        rt->build_status = st;
        snprintf(rt->msg, sizeof rt->msg, "%s", rt->build_msg); /* loom__rt_error has it at once */
    }
    return st;
}

loom_status loom__rt_add_actor(loom__rt *rt, const loom__actor_desc *d)
{
    if (!rt || !d)
        return LOOM_ERR_INVALID;
    if (rt->laid_out)
        return build_fail(rt, LOOM_ERR_INVALID, "loom__rt_add_actor: %s: the runtime has run already",
                          d->name ? d->name : "?");
    if (rt->nactors == rt->cap) {
        int cap = rt->cap ? 2 * rt->cap : 64;
        loom__actor **p = realloc(rt->actors, (size_t)cap * sizeof *p);
        if (!p)
            return build_fail(rt, LOOM_ERR_NOMEM, "loom__rt_add_actor: out of memory");
        rt->actors = p;
        rt->cap = cap;
    }
    char msg[256];
    loom__actor *a;
    loom_status st = loom__actor_new(d, &a, msg, sizeof msg);
    if (st != LOOM_OK)
        return build_fail(rt, st, "%s", msg);
    rt->actors[rt->nactors++] = a;
    return LOOM_OK;
}

loom_status loom__rt_connect(loom__rt *rt, uint64_t producer, int reg, uint64_t consumer, int slot)
{
    if (!rt)
        return LOOM_ERR_INVALID;
    if (rt->laid_out)
        return build_fail(rt, LOOM_ERR_INVALID, "loom__rt_connect: the runtime has run already");
    if (rt->nedges == rt->edge_cap) {
        int cap = rt->edge_cap ? 2 * rt->edge_cap : 64;
        struct loom__rt_edge *p = realloc(rt->edges, (size_t)cap * sizeof *p);
        if (!p)
            return build_fail(rt, LOOM_ERR_NOMEM, "loom__rt_connect: out of memory");
        rt->edges = p;
        rt->edge_cap = cap;
    }
    rt->edges[rt->nedges++] = (struct loom__rt_edge){.producer = producer, .consumer = consumer, .reg = reg, .slot = slot};
    return LOOM_OK;
}

/* ---- layout: the plan checked, threads and queue bounds computed ---------------------------- */

static int cmp_actor_id(const void *x, const void *y)
{
    uint64_t a = (*(loom__actor *const *)x)->id, b = (*(loom__actor *const *)y)->id;
    return a < b ? -1 : a > b;
}

/* Index of the actor with this id in the sorted array, or -1. */
static int find_actor(const loom__rt *rt, uint64_t id)
{
    if (!rt->laid_out) {
        for (int k = 0; k < rt->nactors; k++)
            if (rt->actors[k]->id == id)
                return k;
        return -1;
    }
    int lo = 0, hi = rt->nactors - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        uint64_t m = rt->actors[mid]->id;
        if (m == id)
            return mid;
        if (m < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

static uint32_t pow2_at_least(uint64_t n)
{
    uint32_t p = 8;
    while (p < n)
        p <<= 1;
    return p;
}

static const char *kind_name(unsigned kind)
{
    static const char *names[LOOM__RT_DEV_KIND_COUNT] = {[LOOM__RT_DEV_CPU] = "cpu", [LOOM__RT_DEV_CUDA] = "cuda"};
    return kind < LOOM__RT_DEV_KIND_COUNT ? names[kind] : "dev";
}

/* Cycles are live only if they hold a token at the start, i.e. pass through an actor with initial
 * emits; and an actor that no source reaches would never see EOD. Kahn's algorithm over the
 * edges not leaving initial emitters, then a walk over all edges from the sources. */
static loom_status check_graph(loom__rt *rt, const int *ep, const int *ec)
{
    int n = rt->nactors;
    int *deg = calloc((size_t)n, sizeof *deg), *queue = malloc((size_t)n * sizeof *queue);
    int *first = malloc(((size_t)n + 1) * sizeof *first), *adj = malloc(((size_t)rt->nedges + 1) * sizeof *adj);
    char *seen = calloc((size_t)n, 1);
    loom_status st = LOOM_OK;
    if (!deg || !queue || !first || !adj || !seen) {
        st = build_fail(rt, LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
        goto out;
    }
    /* adjacency by producer (CSR) */
    for (int k = 0; k <= n; k++)
        first[k] = 0;
    for (int e = 0; e < rt->nedges; e++)
        first[ep[e] + 1]++;
    for (int k = 0; k < n; k++)
        first[k + 1] += first[k];
    int *fill = deg; /* borrowed for the fill, cleared below */
    for (int e = 0; e < rt->nedges; e++)
        adj[first[ep[e]] + fill[ep[e]]++] = ec[e];
    memset(deg, 0, (size_t)n * sizeof *deg);

    for (int e = 0; e < rt->nedges; e++)
        if (rt->actors[ep[e]]->initial_emits == 0)
            deg[ec[e]]++;
    int qn = 0, visited = 0;
    for (int k = 0; k < n; k++)
        if (deg[k] == 0)
            queue[qn++] = k;
    for (int h = 0; h < qn; h++, visited++) {
        int p = queue[h];
        if (rt->actors[p]->initial_emits)
            continue;
        for (int x = first[p]; x < first[p + 1]; x++)
            if (--deg[adj[x]] == 0)
                queue[qn++] = adj[x];
    }
    if (visited < n) {
        for (int k = 0; k < n; k++)
            if (deg[k] > 0) {
                st = build_fail(rt, LOOM_ERR_INVALID,
                                "loom__rt_run: %s is on a cycle with no initial emits: it could never act",
                                rt->actors[k]->name);
                goto out;
            }
    }

    qn = 0;
    for (int k = 0; k < n; k++)
        if (rt->actors[k]->nin == 0) {
            seen[k] = 1;
            queue[qn++] = k;
        }
    for (int h = 0; h < qn; h++)
        for (int x = first[queue[h]]; x < first[queue[h] + 1]; x++)
            if (!seen[adj[x]]) {
                seen[adj[x]] = 1;
                queue[qn++] = adj[x];
            }
    for (int k = 0; k < n; k++)
        if (!seen[k]) {
            st = build_fail(rt, LOOM_ERR_INVALID, "loom__rt_run: no source feeds %s: its run could never end",
                            rt->actors[k]->name);
            goto out;
        }
out:
    free(deg);
    free(queue);
    free(first);
    free(adj);
    free(seen);
    return st;
}

/* Bounds on the messages that can be queued for each thread at once, ring (from other threads) and
 * local FIFO (from its own). Per edge from a register of R buffers: at most R REQs are unacked,
 * whether in flight or queued at the consumer, plus one EOD; at most R ACKs are in flight back,
 * since a buffer is not sent again before every consumer acked it. Each deferred act may add one
 * DONE from any thread. A thread whose actors are done keeps draining, so the bound holds for the
 * whole run; every run starts with empty queues. */
static void plan_queues(loom__rt *rt, uint64_t *ring, uint64_t *fifo)
{
    for (int k = 0; k < rt->nactors; k++) {
        loom__actor *c = rt->actors[k];
        for (int i = 0; i < c->nin; i++) {
            loom__rt_in *in = &c->in[i];
            int local = in->producer.thread == c->thread;
            (local ? fifo : ring)[c->thread] += in->cap + 1;             /* REQs + EOD to c */
            (local ? fifo : ring)[in->producer.thread] += in->cap;       /* ACKs to the producer */
        }
        ring[c->thread] += (uint64_t)c->max_deferred;                    /* DONEs */
    }
}

static loom_status layout(loom__rt *rt)
{
    int n = rt->nactors;
    int *ep = NULL, *ec = NULL;
    uint64_t *ring = NULL, *fifo = NULL;
    loom_status st = LOOM_OK;
#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        st = build_fail(rt, __VA_ARGS__);                                                                              \
        goto out;                                                                                                      \
    } while (0)

    if (n > 0)
        qsort(rt->actors, (size_t)n, sizeof *rt->actors, cmp_actor_id);
    rt->laid_out = 1; /* ids are sorted from here on: find_actor bisects */
    for (int k = 0; k < n; k++) {
        loom__actor *a = rt->actors[k];
        a->index = (uint32_t)k;
        if (k > 0 && rt->actors[k - 1]->id == a->id)
            FAIL(LOOM_ERR_INVALID, "loom__rt_run: %s and %s have the same id %#" PRIx64, rt->actors[k - 1]->name,
                 a->name, a->id);
        if (loom__aid_rank(a->id) != (unsigned)rt->opts.rank)
            FAIL(LOOM_ERR_UNSUPPORTED,
                 "loom__rt_run: %s is on rank %u, this runtime is rank %d (messages between processes are not "
                 "supported yet)",
                 a->name, loom__aid_rank(a->id), rt->opts.rank);
    }

    /* threads: actors are sorted by id, hence grouped by stream key */
    int nth = 0;
    for (int k = 0; k < n; k++)
        if (k == 0 || loom__aid_stream_key(rt->actors[k]->id) != loom__aid_stream_key(rt->actors[k - 1]->id))
            nth++;
    size_t tsize = (size_t)nth * sizeof *rt->threads;
    rt->threads = aligned_alloc(64, (tsize + 63) / 64 * 64 + 64);
    if (!rt->threads)
        FAIL(LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
    memset(rt->threads, 0, tsize);
    rt->nthreads = nth;
    for (int k = 0, ti = -1; k < n; k++) {
        loom__actor *a = rt->actors[k];
        if (ti < 0 || loom__aid_stream_key(a->id) != rt->threads[ti].key) {
            loom__rt_thread *t = &rt->threads[++ti];
            t->rt = rt;
            t->index = (uint32_t)ti;
            t->key = loom__aid_stream_key(a->id);
            t->actors = &rt->actors[k];
            snprintf(t->name, sizeof t->name, "%s:%u/s%u", kind_name(loom__aid_kind(a->id)), loom__aid_dev(a->id),
                     loom__aid_stream(a->id));
        }
        loom__rt_thread *t = &rt->threads[ti];
        t->nactors++;
        a->thread = t->index;
        if (loom__aid_task(a->id) + 1 > t->ntask)
            t->ntask = loom__aid_task(a->id) + 1;
    }
    for (int ti = 0; ti < nth; ti++) {
        loom__rt_thread *t = &rt->threads[ti];
        if (!(t->by_task = calloc(t->ntask, sizeof *t->by_task)))
            FAIL(LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
        for (int k = 0; k < t->nactors; k++)
            t->by_task[loom__aid_task(t->actors[k]->id)] = t->actors[k];
    }

    /* edges */
    ep = malloc(((size_t)rt->nedges + 1) * sizeof *ep);
    ec = malloc(((size_t)rt->nedges + 1) * sizeof *ec);
    if (!ep || !ec)
        FAIL(LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
    for (int e = 0; e < rt->nedges; e++) {
        struct loom__rt_edge *E = &rt->edges[e];
        int pi = find_actor(rt, E->producer), ci = find_actor(rt, E->consumer);
        if (pi < 0 || ci < 0)
            FAIL(LOOM_ERR_INVALID, "loom__rt_connect: no actor has id %#" PRIx64, pi < 0 ? E->producer : E->consumer);
        loom__actor *p = rt->actors[pi], *c = rt->actors[ci];
        if (E->reg < 0 || E->reg >= p->nout)
            FAIL(LOOM_ERR_INVALID, "loom__rt_connect: %s has no output register %d (it has %d)", p->name, E->reg, p->nout);
        if (E->slot < 0 || E->slot >= c->nin)
            FAIL(LOOM_ERR_INVALID, "loom__rt_connect: %s has no input slot %d (it has %d)", c->name, E->slot, c->nin);
        loom__rt_in *in = &c->in[E->slot];
        if (in->cap)
            FAIL(LOOM_ERR_INVALID, "loom__rt_connect: input %d of %s is connected twice", E->slot, c->name);
        loom__rt_out *o = &p->out[E->reg];
        in->producer = (loom__rt_peer){.id = p->id, .thread = p->thread, .reg = (uint16_t)E->reg};
        in->bufs = o->bufs;
        in->cap = o->regst_num;
        o->ncons++;
        ep[e] = pi;
        ec[e] = ci;
    }
    for (int k = 0; k < n; k++) {
        loom__actor *a = rt->actors[k];
        for (int i = 0; i < a->nin; i++)
            if (!a->in[i].cap)
                FAIL(LOOM_ERR_INVALID, "loom__rt_run: input %d of %s is not connected", i, a->name);
        for (int j = 0; j < a->nout; j++) {
            if (a->out[j].ncons && !(a->out[j].cons = calloc(a->out[j].ncons, sizeof *a->out[j].cons)))
                FAIL(LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
            a->out[j].ncons = 0; /* refilled below in edge order */
        }
    }
    for (int e = 0; e < rt->nedges; e++) {
        loom__actor *p = rt->actors[ep[e]], *c = rt->actors[ec[e]];
        loom__rt_out *o = &p->out[rt->edges[e].reg];
        o->cons[o->ncons++] = (loom__rt_peer){.id = c->id, .thread = c->thread, .reg = (uint16_t)rt->edges[e].slot};
    }
    if ((st = check_graph(rt, ep, ec)) != LOOM_OK)
        goto out;

    /* queues */
    ring = calloc((size_t)nth, sizeof *ring);
    fifo = calloc((size_t)nth, sizeof *fifo);
    if (!ring || !fifo)
        FAIL(LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
    plan_queues(rt, ring, fifo);
    for (int ti = 0; ti < nth; ti++) {
        loom__rt_thread *t = &rt->threads[ti];
        if (ring[ti] >= UINT32_MAX / 2 || fifo[ti] >= UINT32_MAX / 2)
            FAIL(LOOM_ERR_UNSUPPORTED, "loom__rt_run: thread %s would need queues of %" PRIu64 " messages", t->name,
                 ring[ti] + fifo[ti]);
        uint32_t rs = pow2_at_least(ring[ti] + 1), fs = pow2_at_least(fifo[ti]); /* a ck ring holds size - 1 */
        t->ring.slots = aligned_alloc(64, (size_t)rs * sizeof(loom__rt_msg));
        t->fifo.slots = malloc((size_t)fs * sizeof(loom__rt_msg));
        t->trace.cap = rt->tracing ? LOOM__RT_TRACE_INIT : 0;
        t->trace.rec = rt->tracing ? malloc(t->trace.cap * sizeof *t->trace.rec) : NULL;
        if (!t->ring.slots || !t->fifo.slots || (rt->tracing && !t->trace.rec))
            FAIL(LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
        ck_ring_init(&t->ring.ring, rs);
        t->fifo.mask = fs - 1;
        ck_ec32_init(&t->ec, 0);
    }
    for (int k = 0; k < n; k++)
        if (loom__actor_layout(rt->actors[k]) != LOOM_OK)
            FAIL(LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
    atomic_store(&rt->nthreads_live, nth);
#undef FAIL
out:
    free(ep);
    free(ec);
    free(ring);
    free(fifo);
    return st;
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
    atomic_store(&rt->live, rt->nactors);
    atomic_store(&rt->err_state, 0);
    atomic_store(&rt->draining, 0);
    atomic_store(&rt->deferred, 0);
    rt->status = LOOM_OK;
    rt->msg[0] = 0;
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
        layout(rt);
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
        int e = pthread_create(&t->pth, NULL, worker, t);
        if (e != 0) {
            loom__rt_fail(rt, LOOM_ERR_RUNTIME, "cannot start runtime thread %s: %s", t->name, strerror(e));
            break;
        }
        t->started = 1;
        char tname[16]; /* the kernel's limit, with the NUL */
        snprintf(tname, sizeof tname, "loom %.10s", t->name);
        pthread_setname_np(t->pth, tname);
        pin(rt, ti);
    }
    for (int ti = 0; ti < rt->nthreads; ti++)
        if (rt->threads[ti].started)
            pthread_join(rt->threads[ti].pth, NULL);
    /* A deferred act's completion may still be on its way (a device callback): wait for it, since
     * it posts into our rings and its buffers are still in use. */
    while (atomic_load(&rt->deferred) > 0)
        nanosleep(&(struct timespec){.tv_nsec = 50000}, NULL);

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
        if (loom__rt_trace_write(rt, rt->trace_path) != LOOM_OK) {
            memcpy(rt->trace_msg, rt->msg, sizeof rt->trace_msg);
            if (atomic_exchange(&rt->trace_warned, 1) == 0)
                fprintf(stderr, "loom: warning: %s; the runs go on without it\n", rt->trace_msg);
        }
        memcpy(rt->msg, keep, sizeof keep);
    }
    return st;
}

/* ---- queries ------------------------------------------------------------------------------- */

const char *loom__rt_error(const loom__rt *rt) { return rt ? rt->msg : "no runtime"; }

const char *loom__rt_trace_error(const loom__rt *rt) { return rt && rt->trace_msg[0] ? rt->trace_msg : NULL; }

int64_t loom__rt_next_piece(const loom__rt *rt) { return rt->next_piece; }

int loom__rt_thread_count(const loom__rt *rt) { return rt->laid_out ? rt->nthreads : 0; }

int loom__rt_thread_of(const loom__rt *rt, uint64_t actor)
{
    if (!rt->laid_out)
        return -1;
    int k = find_actor(rt, actor);
    return k < 0 ? -1 : (int)rt->actors[k]->thread;
}

int64_t loom__rt_actor_acts(const loom__rt *rt, uint64_t actor)
{
    int k = find_actor(rt, actor);
    return k < 0 ? -1 : rt->actors[k]->acts;
}

int loom__rt_thread_stats(const loom__rt *rt, int ti, int64_t *msgs, int64_t *sleeps, const char **name)
{
    if (!rt->laid_out || ti < 0 || ti >= rt->nthreads)
        return 0;
    const loom__rt_thread *t = &rt->threads[ti];
    if (msgs)
        *msgs = t->msgs;
    if (sleeps)
        *sleeps = t->sleeps;
    if (name)
        *name = t->name;
    return 1;
}
