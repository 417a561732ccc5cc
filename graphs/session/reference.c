/* The reference executor: runs the logical graph on the host, one tensor at a time in id
 * (topological) order, every value kept until the next run. It is deliberately plain: it is the
 * oracle that every runtime and placement is checked against. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/session/program.h"

loom_status loom__value_reserve(loom_program *p, int id, loom_dtype dtype, int ndim, const int64_t *shape)
{
    loom__value *v = &p->val[id];
    int64_t bytes;
    if (loom__dense_size(dtype, ndim, shape, NULL, &bytes))
        return LOOM_ERR_SHAPE; /* never for a shape the builder and the feeds let through */
    if ((size_t)bytes > p->cap[id] || !v->data) {
        /* 64-byte aligned for vector loads; never size 0, so data is never NULL */
        size_t want = bytes < 64 ? 64 : (size_t)bytes;
        void *d = NULL;
        if (posix_memalign(&d, 64, want))
            return LOOM_ERR_NOMEM;
        free(v->data);
        v->data = d;
        p->cap[id] = want;
    }
    v->dtype = dtype;
    v->ndim = ndim;
    memset(v->shape, 0, sizeof v->shape);
    for (int i = 0; i < ndim; i++)
        v->shape[i] = shape[i];
    return LOOM_OK;
}

loom_status loom__bind_dims(loom_program *p, int end)
{
    loom_graph *g = p->g;
    int *from = calloc((size_t)g->ndyn + 1, sizeof *from);
    if (!from)
        return loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
    for (int k = 0; k < g->ndyn; k++)
        from[k] = -1;
    loom_status s = LOOM_OK;
    for (int id = 0; id < end && s == LOOM_OK; id++) {
        loom_tensor *t = g->t[id];
        if (t->op != LOOM_OP_INPUT)
            continue;
        if (!p->ready[id]) {
            s = loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_run: input '%s' was not fed", t->name);
            break;
        }
        for (int i = 0; i < t->shape.ndim; i++) {
            int k = loom__dyn_index(g, t->shape.d[i]);
            if (k < 0)
                continue;
            int64_t n = p->val[id].shape[i];
            if (from[k] < 0) {
                from[k] = id;
                p->dims[k] = n;
            } else if (p->dims[k] != n) {
                s = loom__program_fail(p, LOOM_ERR_SHAPE,
                                       "loom_program_run: dynamic dim %s is %" PRId64 " in input '%s' but %" PRId64
                                       " in input '%s'",
                                       g->dyn[k].name, n, t->name, p->dims[k], g->t[from[k]]->name);
                break;
            }
        }
    }
    for (int k = 0; k < g->ndyn && s == LOOM_OK; k++)
        if (from[k] < 0)
            p->dims[k] = -1; /* used by no input: an error only if a tensor needs it */
    free(from);
    return s;
}

loom_status loom__reference_run(loom_program *p, int begin, int end, int training)
{
    loom_graph *g = p->g;
    loom_status s = loom__bind_dims(p, p->fwd_end);
    if (s != LOOM_OK)
        return s;
    for (int id = begin; id < end; id++)
        if (loom__op_def(g->t[id]->op)->flags & LOOM__OPF_LEAF)
            continue;
        else
            p->ready[id] = 0;
    char msg[512];
    loom__kctx ctx = p->part; /* NULL sig: the whole, as one device runs it */
    ctx.step = p->step;
    ctx.training = training;
    ctx.seed = g->seed;
    ctx.msg = msg;
    ctx.msglen = sizeof msg;
    ctx.pool = p->pool;
    for (int id = begin; id < end; id++) {
        loom_tensor *t = g->t[id];
        const loom_op_def *def = loom__op_def(t->op);
        if ((def->flags & LOOM__OPF_LEAF) || p->dead[id])
            continue;
        int64_t shape[LOOM_MAX_DIMS] = {0};
        for (int i = 0; i < t->shape.ndim; i++) {
            int k = loom__dyn_index(g, t->shape.d[i]);
            shape[i] = k >= 0 ? p->dims[k] : t->shape.d[i];
            if (shape[i] < 0)
                return loom__program_fail(p, LOOM_ERR_SHAPE,
                                          "loom_program_run: %s '%s' needs dynamic dim %s, which no fed input carries",
                                          def->name, loom_tensor_name(t), g->dyn[k].name);
        }
        loom__value *src[LOOM__MAX_SRC];
        for (int i = 0; i < t->n_src; i++) {
            src[i] = &p->val[t->src[i]->id];
            if (!p->ready[t->src[i]->id])
                return loom__program_fail(p, LOOM_ERR_RUNTIME, "loom_program_run: %s '%s': source %d has no value (internal error)",
                                          def->name, loom_tensor_name(t), i + 1);
        }
        loom__value none = {.dtype = t->dtype}, *out = &none;
        if (!(def->flags & LOOM__OPF_INPLACE)) {
            if (loom__value_reserve(p, id, t->dtype, t->shape.ndim, shape) != LOOM_OK)
                return loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: no memory for %s '%s'", def->name,
                                          loom_tensor_name(t));
            out = &p->val[id];
        }
        msg[0] = 0;
        s = def->cpu(t, out, src, &ctx);
        if (s != LOOM_OK)
            return loom__program_fail(p, s, "loom_program_run: %s '%s' (tensor %d): %s", def->name, loom_tensor_name(t), id,
                                      msg[0] ? msg : loom_status_str(s));
        if (p->check_numerics &&
                 (s = loom__check_numerics(&p->passes, t, out == &none ? src[0] : out, msg, sizeof msg)) != LOOM_OK)
            return loom__program_fail(p, s, "loom_program_run: %s", msg);
        p->ready[id] = !(def->flags & LOOM__OPF_INPLACE);
    }
    return LOOM_OK;
}
