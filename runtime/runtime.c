/* The runtime: creating it, adding actors and edges (a building mistake is kept for the run to
 * return), and what it says of itself. Laying the plan out is layout.c's, the worker threads and
 * the run run.c's, the actor protocol actor.c's. */
#define LOOM__RT_PRIVATE
#include "runtime/runtime.h"

#include <hwloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LOOM__RT_DEFAULT_SPIN = 200 };

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
    if (rt->trace_path) { /* a bad pattern fails the first run, before it runs anything */
        char msg[sizeof rt->build_msg - 32];
        char *probe = loom__trace_path(rt->trace_path, 0, 0, msg, sizeof msg);
        if (!probe)
            loom__rt_build_fail(rt, LOOM_ERR_INVALID, "%s (%s)", msg, opts && opts->trace ? "opts.trace" : "LOOM_TRACE");
        free(probe);
    }
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
    atomic_init(&rt->hard, 0);
    atomic_init(&rt->quiesce, 0);
    atomic_init(&rt->quiet, 0);
    atomic_init(&rt->leftovers, 0);
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
    loom__net_free(rt);
    free(rt->threads);
    free(rt->actors);
    free(rt->edges);
    free(rt->trace_path);
    if (rt->topo)
        hwloc_topology_destroy((hwloc_topology_t)rt->topo);
    free(rt);
}

void loom__rt_set_wire(loom__rt *rt, const loom__rt_wire *w) { rt->wire = *w; }

void loom__rt_set_hooks(loom__rt *rt, const loom__rt_hooks *h) { rt->hooks = *h; }

loom_status loom__rt_build_fail(loom__rt *rt, loom_status st, const char *fmt, ...)
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
        return loom__rt_build_fail(rt, LOOM_ERR_INVALID, "loom__rt_add_actor: %s: the runtime has run already",
                          d->name ? d->name : "?");
    if (rt->nactors == rt->cap) {
        int cap = rt->cap ? 2 * rt->cap : 64;
        loom__actor **p = realloc(rt->actors, (size_t)cap * sizeof *p);
        if (!p)
            return loom__rt_build_fail(rt, LOOM_ERR_NOMEM, "loom__rt_add_actor: out of memory");
        rt->actors = p;
        rt->cap = cap;
    }
    char msg[256];
    loom__actor *a;
    loom_status st = loom__actor_new(d, &a, msg, sizeof msg);
    if (st != LOOM_OK)
        return loom__rt_build_fail(rt, st, "%s", msg);
    rt->actors[rt->nactors++] = a;
    return LOOM_OK;
}

loom_status loom__rt_connect(loom__rt *rt, uint64_t producer, int reg, uint64_t consumer, int slot)
{
    if (!rt)
        return LOOM_ERR_INVALID;
    if (rt->laid_out)
        return loom__rt_build_fail(rt, LOOM_ERR_INVALID, "loom__rt_connect: the runtime has run already");
    if (rt->nedges == rt->edge_cap) {
        int cap = rt->edge_cap ? 2 * rt->edge_cap : 64;
        struct loom__rt_edge *p = realloc(rt->edges, (size_t)cap * sizeof *p);
        if (!p)
            return loom__rt_build_fail(rt, LOOM_ERR_NOMEM, "loom__rt_connect: out of memory");
        rt->edges = p;
        rt->edge_cap = cap;
    }
    rt->edges[rt->nedges++] = (struct loom__rt_edge){.producer = producer, .consumer = consumer, .reg = reg, .slot = slot};
    return LOOM_OK;
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
    int k = loom__rt_find_actor(rt, actor);
    return k < 0 ? -1 : (int)rt->actors[k]->thread;
}

int64_t loom__rt_actor_acts(const loom__rt *rt, uint64_t actor)
{
    int k = loom__rt_find_actor(rt, actor);
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
