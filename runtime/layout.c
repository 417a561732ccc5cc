/* Laying the runtime out at its first run: actors sorted by id and grouped into threads, edges
 * resolved into routes, the graph checked (every cycle live, every actor fed by a source), and each
 * thread's queues sized so that a message can always be queued. */
#define LOOM__RT_PRIVATE
#include "runtime/runtime.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LOOM__RT_TRACE_INIT = 1024 };

static int cmp_actor_id(const void *x, const void *y)
{
    uint64_t a = (*(loom__actor *const *)x)->id, b = (*(loom__actor *const *)y)->id;
    return a < b ? -1 : a > b;
}

int loom__rt_find_actor(const loom__rt *rt, uint64_t id)
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
    const int n = rt->nactors;
    const size_t nsz = n > 0 ? (size_t)n : 0; /* a count of actors: never negative, said so for the compiler */
    int *deg = calloc(nsz + 1, sizeof *deg), *queue = malloc((nsz + 1) * sizeof *queue);
    int *first = malloc((nsz + 1) * sizeof *first), *adj = malloc(((size_t)rt->nedges + 1) * sizeof *adj);
    char *seen = calloc(nsz + 1, 1);
    loom_status st = LOOM_OK;
    if (!deg || !queue || !first || !adj || !seen) {
        st = loom__rt_build_fail(rt, LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
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
    memset(deg, 0, nsz * sizeof *deg);

    /* remote actors: this rank sees only its end of their edges; the plan every rank shares was
     * checked whole where it was made */
    for (int e = 0; e < rt->nedges; e++)
        if (rt->actors[ep[e]]->initial_emits == 0 && !rt->actors[ep[e]]->remote && !rt->actors[ec[e]]->remote)
            deg[ec[e]]++;
    int qn = 0, visited = 0;
    for (int k = 0; k < n; k++)
        if (deg[k] == 0)
            queue[qn++] = k;
    for (int h = 0; h < qn; h++, visited++) {
        int p = queue[h];
        if (rt->actors[p]->initial_emits || rt->actors[p]->remote)
            continue;
        for (int x = first[p]; x < first[p + 1]; x++)
            if (--deg[adj[x]] == 0)
                queue[qn++] = adj[x];
    }
    if (visited < n) {
        for (int k = 0; k < n; k++)
            if (deg[k] > 0) {
                st = loom__rt_build_fail(rt, LOOM_ERR_INVALID,
                                "loom__rt_run: %s is on a cycle with no initial emits: it could never act",
                                rt->actors[k]->name);
                goto out;
            }
    }

    qn = 0;
    for (int k = 0; k < n; k++)
        if (rt->actors[k]->nin == 0 || rt->actors[k]->remote) {
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
            st = loom__rt_build_fail(rt, LOOM_ERR_INVALID, "loom__rt_run: no source feeds %s: its run could never end",
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

loom_status loom__rt_layout(loom__rt *rt)
{
    int n = rt->nactors;
    int *ep = NULL, *ec = NULL;
    uint64_t *ring = NULL, *fifo = NULL;
    loom_status st = LOOM_OK;
#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        st = loom__rt_build_fail(rt, __VA_ARGS__);                                                                     \
        goto out;                                                                                                      \
    } while (0)

    if (n > 0)
        qsort(rt->actors, (size_t)n, sizeof *rt->actors, cmp_actor_id);
    rt->laid_out = 1; /* ids are sorted from here on: loom__rt_find_actor bisects */
    for (int k = 0; k < n; k++) {
        loom__actor *a = rt->actors[k];
        a->index = (uint32_t)k;
        if (k > 0 && rt->actors[k - 1]->id == a->id)
            FAIL(LOOM_ERR_INVALID, "loom__rt_run: %s and %s have the same id %#" PRIx64, rt->actors[k - 1]->name,
                 a->name, a->id);
        if ((loom__aid_rank(a->id) != (unsigned)rt->opts.rank) != !!a->remote)
            FAIL(LOOM_ERR_INVALID, "loom__rt_run: %s is on rank %u, this runtime is rank %d, and it is %s", a->name,
                 loom__aid_rank(a->id), rt->opts.rank, a->remote ? "remote" : "not remote");
        rt->nlocal += !a->remote;
    }

    /* threads: actors are sorted by id, hence grouped by stream key, this rank's together; the
     * communication thread last, when any actor is remote */
    int nth = 0, nremote = n - rt->nlocal;
    for (int k = 0, prev = -1; k < n; k++)
        if (!rt->actors[k]->remote) {
            if (prev < 0 || loom__aid_stream_key(rt->actors[k]->id) != loom__aid_stream_key(rt->actors[prev]->id))
                nth++;
            prev = k;
        }
    int nworkers = nth;
    nth += nremote > 0;
    size_t tsize = (size_t)nth * sizeof *rt->threads;
    rt->threads = aligned_alloc(64, (tsize + 63) / 64 * 64 + 64);
    if (!rt->threads)
        FAIL(LOOM_ERR_NOMEM, "loom__rt_run: out of memory");
    memset(rt->threads, 0, tsize);
    rt->nthreads = nth;
    for (int k = 0, ti = -1; k < n; k++) {
        loom__actor *a = rt->actors[k];
        if (a->remote) {
            a->thread = (uint32_t)nworkers;
            continue;
        }
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
    if (nremote > 0) {
        loom__rt_thread *t = &rt->threads[nworkers];
        t->rt = rt;
        t->index = (uint32_t)nworkers;
        t->net = 1;
        snprintf(t->name, sizeof t->name, "net");
    }
    for (int ti = 0; ti < nworkers; ti++) {
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
        int pi = loom__rt_find_actor(rt, E->producer), ci = loom__rt_find_actor(rt, E->consumer);
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
        for (int i = 0; i < a->nin && !a->remote; i++)
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
    /* a register's buffer goes to another rank once, with the REQ of its first consumer there */
    for (int k = 0; k < n; k++) {
        loom__actor *p = rt->actors[k];
        for (int j = 0; j < p->nout && !p->remote; j++)
            for (uint32_t c = 0; c < p->out[j].ncons; c++) {
                const loom__rt_peer *cc = &p->out[j].cons[c];
                if (cc->thread != (uint32_t)nworkers || nremote == 0)
                    continue;
                int first = 1;
                for (uint32_t b = 0; b < c && first; b++)
                    first = !(p->out[j].cons[b].thread == cc->thread && loom__aid_rank(p->out[j].cons[b].id) == loom__aid_rank(cc->id));
                rt->actors[loom__rt_find_actor(rt, cc->id)]->in[cc->reg].with_data = first;
            }
    }
    if ((st = check_graph(rt, ep, ec)) != LOOM_OK)
        goto out;
    if (nremote > 0 && (st = loom__net_layout(rt)) != LOOM_OK)
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
