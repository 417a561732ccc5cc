/* Pass 0 of a plan with micro-batches (see plan.h, loom__plan.micro): the graphs whose batch can
 * be cut, and the op table made to compute one micro-batch.
 *
 * The batch is axis 0 of the inputs, the same dim in every one (a static size or a dynamic dim).
 * In the plan's op table it becomes a dynamic dim whose bound is one micro-batch's rows (a static
 * batch gets a dynamic dim of its own), and every shape is inferred again from the inputs, so that
 * each task computes a micro-batch and each register holds one. The source cuts the fed batch into
 * micro-batches and stamps each with its rows, as it stamps a graph batch's sizes. A loss that is
 * a mean over the batch is then the mean of the micro-batches' (they are equal: m must divide the
 * batch), so the backward pass is seeded with 1 / m and the micro-batches' gradients are summed. */
#include "graphs/plan/plan_internal.h"

#include "graphs/builder/builder_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int refuse(const loom__plan_src *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int refuse(const loom__plan_src *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(p->err, p->err_size, "loom_compile: %d micro-batches: ", p->micro);
    if (n > 0 && (size_t)n < p->err_size)
        vsnprintf(p->err + n, p->err_size - (size_t)n, fmt, ap);
    va_end(ap);
    return -4;
}

/* The batch: axis 0 of every input, the same dim in each. -4 (refused) when there is none. */
static int find_batch(const loom__plan_src *p, const loom_graph *g, loom_dim *batch)
{
    const loom_tensor *first = NULL;
    char b1[96], b2[96];
    for (int id = 0; id < p->fwd_end; id++) {
        const loom_tensor *t = g->t[id];
        if (t->op != LOOM_OP_INPUT)
            continue;
        if (t->layout == LOOM__CSR)
            return refuse(p, "input '%s' is sparse; micro-batches cut dense inputs along axis 0", t->name);
        if (t->shape.ndim == 0)
            return refuse(p, "input '%s' is a scalar; micro-batches cut every input along axis 0 (the batch)", t->name);
        if (!first) {
            first = t;
            *batch = t->shape.d[0];
        } else if (t->shape.d[0] != *batch) {
            return refuse(p, "inputs '%s' %s and '%s' %s differ in axis 0; micro-batches cut axis 0 of every input, "
                             "which must be the batch in each",
                          first->name, loom__shape_str(g, &first->shape, b1, sizeof b1), t->name,
                          loom__shape_str(g, &t->shape, b2, sizeof b2));
        }
    }
    if (!first)
        return refuse(p, "the graph has no input to cut");
    return 0;
}

/* What micro-batches cannot cut: a batch they do not divide, an index into the batch's rows
 * (a graph batch), batch statistics, GPUs. */
static int check_graph(const loom__plan_src *p, const loom__plan *pl, loom_dim batch)
{
    const loom_graph *g = p->g;
    if (pl->kind != LOOM_DEVICE_CPU)
        return refuse(p, "they run on CPU devices; this graph is on %s devices", loom_device_kind_name(pl->kind));
    int k = loom__dyn_index(g, batch);
    if (k < 0 && batch % p->micro != 0)
        return refuse(p, "they do not divide the batch of %" PRId64 " rows (axis 0 of the inputs); use a count that divides it",
                      (int64_t)batch);
    for (int id = 0; id < p->fwd_end; id++) {
        const loom_tensor *t = g->t[id];
        if (loom__is_index_input(t) && loom__index_range(t) == batch)
            return refuse(p, "input '%s' indexes the rows of the batch, which a micro-batch holds only some of "
                             "(a graph batch is cut by whole graphs, into devices' parts)",
                          t->name);
        if (t->op == LOOM_OP_BATCH_NORM || t->op == LOOM_OP_BN_RELU) { /* named by its layer: its weight's name up to ".weight" */
            const char *w = t->src[4]->name, *dot = strrchr(w, '.');
            return refuse(p, "batch norm '%.*s' of '%s' takes its statistics over the whole batch, which a micro-batch holds "
                             "only part of; use layer norm",
                          dot ? (int)(dot - w) : (int)strlen(w), w, loom_tensor_name(t->src[0]));
        }
    }
    if (k < 0 && g->ndyn + 1 > LOOM__MAX_DYN)
        return refuse(p, "the batch would be a dynamic dim of the plan, which holds at most %d and the graph has %d",
                      LOOM__MAX_DYN, g->ndyn);
    return 0;
}

/* The op table's dim of the batch: the batch's dynamic dim, or a new one for a static batch, its
 * bound a micro-batch's rows. */
static int batch_dim(loom__plan *pl, loom_dim batch)
{
    loom_graph *g = pl->g;
    int k = loom__dyn_index(g, batch);
    pl->mb_static = k < 0;
    if (k < 0) {
        loom__dyn_dim *d = realloc(g->dyn, ((size_t)g->ndyn + 1) * sizeof *d);
        if (!d)
            return -1;
        g->dyn = d;
        k = g->ndyn++;
        char name[sizeof d->name];
        snprintf(name, sizeof name, "micro-batch");
        for (int i = 0, n = 2; i < k; i++) /* a name of its own */
            if (!strcmp(d[i].name, name))
                snprintf(name, sizeof name, "micro-batch%d", n++), i = -1;
        memcpy(d[k].name, name, sizeof name);
        d[k].bound = batch;
    }
    pl->mb_dim = k;
    pl->mb_rows = g->dyn[k].bound;
    g->dyn[k].bound = (g->dyn[k].bound + pl->micro - 1) / pl->micro;
    g->dyn[k].part_bound = 0; /* the source cuts a micro-batch evenly over a stage's devices */
    return 0;
}

int loom__plan_micro(loom__plan *pl, const loom__plan_src *p)
{
    pl->micro = 1;
    pl->mb_dim = -1;
    if (p->micro <= 1)
        return 0;
    loom_dim batch = 0;
    int st = find_batch(p, p->g, &batch);
    if (st == 0)
        st = check_graph(p, pl, batch);
    if (st != 0)
        return st;
    pl->micro = p->micro;
    if (batch_dim(pl, batch))
        return -1;
    loom_graph *g = pl->g;
    const loom_dim mb = LOOM__DYN_BASE + (g->dyn_tag << LOOM__DYN_INDEX_BITS) + pl->mb_dim;
    char msg[400], why[256];
    for (int id = 0; id < g->n; id++) {
        loom_tensor *t = g->t[id];
        if (t->op == LOOM_OP_INPUT) {
            t->shape.d[0] = mb;
            continue;
        }
        if (loom__op_def(t->op)->flags & LOOM__OPF_LEAF)
            continue;
        /* a reshape that keeps the batch in axis 0 (a flatten, its gradient) keeps a micro-batch */
        if (t->op == LOOM_OP_RESHAPE && t->a.shape.ndim >= 1 && t->a.shape.d[0] == batch && t->src[0]->shape.ndim >= 1 &&
            t->src[0]->shape.d[0] == mb)
            t->a.shape.d[0] = mb;
        msg[0] = 0;
        loom_status s = loom__op_def(t->op)->infer(t, msg, sizeof msg);
        if (s == LOOM_OK && !loom__shape_ok(g, &t->shape, 1, why, sizeof why))
            snprintf(msg, sizeof msg, "%s", why), s = LOOM_ERR_SHAPE;
        if (s != LOOM_OK)
            return refuse(p, "%s '%s' cannot compute a part of the batch: %s", loom__op_def(t->op)->name, loom_tensor_name(t),
                          msg[0] ? msg : loom_status_str(s));
    }
    /* a mean over the batch is the mean of the micro-batches' means */
    if (p->loss && p->grad[p->loss->id] && p->grad[p->loss->id]->op == LOOM_OP_FILL)
        g->t[p->grad[p->loss->id]->id]->a.f[0] /= pl->micro;
    return 0;
}
