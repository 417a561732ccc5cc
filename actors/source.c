/* The source: each piece's inputs from the data last fed or from a data source's callback (through
 * a loom_feeder), cut into the parts the plan's registers hold, with the piece's dynamic dims
 * bound and stamped on every token (see exec_internal.h). */
#include "actors/exec_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>


/* The token a data source feeds input k into: the register itself on one CPU device, the host
 * stage otherwise (cut into parts after the callback; with micro-batches, into each micro-batch's
 * parts at its piece). */
static token *fed_token(const loom__exec *x, void *const *out, int k)
{
    return loom__exec_in_program(x) && x->pl->micro == 1 ? out[x->input_off[k]] : &x->stage[k];
}

/* The logical value of input k at this piece: with micro-batches, the piece's micro-batch of it. */
static const loom__value *logical_input(const loom__exec *x, void *const *out, int k)
{
    if (x->pl->micro > 1)
        return &x->micro_view[k];
    return x->env->source ? &fed_token(x, out, k)->v : &x->env->val[x->input_id[k]];
}

/* Micro-batch i of each input's step batch (fed whole: the data source's stage, or the data last
 * fed), as views: rows i * r .. (i + 1) * r of each, r its rows over micro (which divides them). */
static loom_status micro_views(loom__exec *x, int64_t i, loom__act *a)
{
    const int m = x->pl->micro;
    for (int k = 0; k < x->ninputs; k++) {
        const loom__value *v = x->env->source ? &x->stage[k].v : &x->env->val[x->input_id[k]];
        loom_status s = loom__exec_input_dims(x, x->pl->g->t[x->input_id[k]], v->ndim, v->shape, a->msg, a->msg_size);
        if (s != LOOM_OK)
            return s;
        loom__value *w = &x->micro_view[k];
        *w = *v;
        w->shape[0] = v->shape[0] / m;
        w->data = (char *)v->data + (size_t)(i * loom__numel(w)) * loom_dtype_size(v->dtype);
    }
    return LOOM_OK;
}

/* Refuses input k, fed whole (not by parts) on several devices, where its value cannot be cut
 * evenly: a batch index input (each part must index its own rows), or an input split along a dim
 * that other inputs of the piece gave by parts. */
static loom_status whole_feed_ok(const loom__exec *x, int k, const int64_t *by_parts, loom__act *a)
{
    const loom_graph *g = x->pl->g;
    const loom_tensor *t = g->t[x->input_id[k]];
    const loom__regst *rg = &x->pl->regst[x->pl->task[0].out[x->input_off[k]]];
    if (rg->nparts < 2)
        return LOOM_OK;
    /* its gathers and scatters run per device ((S(0), S(0)) -> S(0)) whatever its own SBP: fed
     * whole, its values index the whole range; split or broadcast, each device would read them as
     * its own part's */
    if (loom__batch_index(t))
        return snprintf(a->msg, a->msg_size,
                        "input '%s' indexes the rows of %s and is %s over %d devices: feed it by parts "
                        "(loom_feeder_parts), each device's part indexing its own rows",
                        t->name, g->dyn[loom__dyn_index(g, loom__index_range(t))].name,
                        rg->sbp.kind == LOOM_SBP_SPLIT ? "split" : "whole", rg->nparts),
               LOOM_ERR_INVALID;
    if (rg->sbp.kind != LOOM_SBP_SPLIT)
        return LOOM_OK;
    int d = loom__dyn_index(g, t->shape.d[rg->sbp.axis]);
    if (d >= 0 && by_parts[d] >= 0)
        return snprintf(a->msg, a->msg_size,
                        "input '%s' was fed whole but input '%s' by parts: feed every input split along %s by parts", t->name,
                        g->t[by_parts[d]]->name, g->dyn[d].name),
               LOOM_ERR_INVALID;
    return LOOM_OK;
}

int loom__exec_even_over(const loom__exec *x, int d, int64_t size, int *nparts, int64_t *part, int64_t *most)
{
    const loom__plan *pl = x->pl;
    const loom_graph *g = pl->g;
    if (g->dyn[d].part_bound <= 0 || size <= g->dyn[d].part_bound) /* every even part fits the part bound */
        return 0;
    for (int r = 0; r < pl->nregst; r++) {
        const loom__regst *rg = &pl->regst[r];
        if (rg->sbp.kind != LOOM_SBP_SPLIT || rg->nparts < 2 || rg->tensor < 0)
            continue;
        const loom_tensor *t = g->t[rg->tensor];
        if (t->layout == LOOM__CSR || loom__dyn_index(g, t->shape.d[rg->sbp.axis]) != d)
            continue;
        int64_t start, size_j, pb = loom__dyn_part_bound(g, d, rg->nparts, rg->part);
        loom_split_part(size, rg->nparts, rg->part, &start, &size_j);
        if (size_j > pb) {
            *nparts = rg->nparts, *part = size_j, *most = pb;
            return 1;
        }
    }
    return 0;
}

int loom__exec_even_msg(const loom__exec *x, int d, int64_t size, char *msg, size_t len)
{
    int n;
    int64_t part, most;
    if (!loom__exec_even_over(x, d, size, &n, &part, &most))
        return 0;
    snprintf(msg, len,
             "dynamic dim %s is %" PRId64 ", fed whole: its even split over %d devices gives a part of %" PRId64
             ", over its part bound of %" PRId64 " (loom_dim_set_part_bound, loom_program_set_bounds); feed its inputs by parts "
             "(loom_feeder_parts) or raise the part bound",
             x->pl->g->dyn[d].name, size, n, part, most);
    return 1;
}

/* Binds the dynamic dims of a step from its logical inputs (they must agree) and from the parts
 * of a graph batch, and stamps every token: each part's token with its own position's part of
 * each dim fed by parts. */
static loom_status stamp_dims(loom__exec *x, loom__act *a)
{
    const loom_graph *g = x->pl->g;
    int64_t dims[LOOM__MAX_DYN], by_parts[LOOM__MAX_DYN];
    int from[LOOM__MAX_DYN], split = 0;
    for (int k = 0; k < LOOM__MAX_DYN; k++) {
        dims[k] = -1, from[k] = -1, by_parts[k] = -1;
        if (x->n > 1 && x->pdims[0][k] >= 0) { /* the whole of a dim fed by parts: its parts' sum */
            dims[k] = 0;
            for (int j = 0; j < x->n; j++)
                dims[k] += x->pdims[j][k];
            split = 1;
            if (dims[k] > g->dyn[k].bound)
                return snprintf(a->msg, a->msg_size, "dynamic dim %s is %" PRId64 " in all (its parts summed), over its bound of %" PRId64,
                                g->dyn[k].name, dims[k], g->dyn[k].bound),
                       LOOM_ERR_SHAPE;
        }
    }
    for (int k = 0; k < x->ninputs; k++)
        if (x->by_parts[k]) {
            const loom_tensor *t = g->t[x->input_id[k]];
            int d = loom__dyn_index(g, t->shape.d[0]);
            by_parts[d] = from[d] = t->id;
        }
    for (int k = 0; k < x->ninputs; k++) {
        if (x->by_parts[k])
            continue;
        loom_status s = whole_feed_ok(x, k, by_parts, a);
        if (s != LOOM_OK)
            return s;
        const loom__value *v = logical_input(x, a->out, k);
        const loom_tensor *t = g->t[x->input_id[k]];
        for (int i = 0; i < t->shape.ndim; i++) {
            int d = loom__dyn_index(g, t->shape.d[i]);
            if (d < 0)
                continue;
            if (from[d] < 0) {
                from[d] = t->id;
                dims[d] = v->shape[i];
            } else if (dims[d] != v->shape[i]) {
                snprintf(a->msg, a->msg_size, "dynamic dim %s is %" PRId64 " in input '%s' but %" PRId64 " in input '%s'",
                         g->dyn[d].name, v->shape[i], t->name, dims[d], g->t[from[d]]->name);
                return LOOM_ERR_SHAPE;
            }
        }
    }
    for (int d = 0; d < g->ndyn; d++) /* a dim fed whole is cut evenly: its parts must fit the registers */
        if (x->n > 1 && x->pdims[0][d] < 0 && dims[d] >= 0 && loom__exec_even_msg(x, d, dims[d], a->msg, a->msg_size))
            return LOOM_ERR_SHAPE;
    for (int k = 0; k < x->ninputs; k++) { /* an index input by parts indexes its part of its range: given by parts too */
        const loom_tensor *t = g->t[x->input_id[k]];
        int r = x->by_parts[k] && loom__is_index_input(t) ? loom__dyn_index(g, loom__index_range(t)) : -1;
        if (r >= 0 && x->pdims[0][r] < 0)
            return snprintf(a->msg, a->msg_size,
                            "input '%s' was fed by parts, each part indexing its own device's rows of %s, but no input along %s "
                            "was: feed one by parts too (the rows of %s on each device)",
                            t->name, g->dyn[r].name, g->dyn[r].name, g->dyn[r].name),
                   LOOM_ERR_INVALID;
    }
    for (int k = 0; k < x->ninputs; k++)
        for (int j = 0; j < x->input_n[k]; j++) {
            token *tk = a->out[x->input_off[k] + j];
            tk->has_dims = 1;
            tk->split_parts = split;
            memcpy(tk->dims, dims, sizeof dims);
            for (int d = 0; split && d < LOOM__MAX_DYN; d++) {
                tk->pfirst[d] = 0;
                if (x->pdims[0][d] < 0) { /* not fed by parts: the layout's even split */
                    tk->pfirst[d] = tk->psize[d] = -1;
                    continue;
                }
                for (int q = 0; q < j; q++)
                    tk->pfirst[d] += x->pdims[q][d];
                tk->psize[d] = x->pdims[j][d];
            }
        }
    return LOOM_OK;
}

void loom__exec_cut_input(const loom__exec *x, const loom__value *v, int k, int j, token *out)
{
    const loom__regst *rg = &x->pl->regst[x->pl->task[0].out[x->input_off[k] + j]];
    const loom__lay l = loom__regst_lay(rg);
    if (v->rowptr) {
        int64_t start[2], size[2];
        loom__nd_region(v->shape, 2, &l.s, l.mesh, j, start, size);
        loom__exec_csr_layout(out, out->base, size[0], v->rowptr[start[0] + size[0]] - v->rowptr[start[0]], v->dtype);
        loom__csr_rows(v, start[0], size[0], &out->v);
        return;
    }
    out->v = (loom__value){.dtype = v->dtype, .ndim = v->ndim, .data = out->base};
    loom__lay_shape(v->shape, v->ndim, &l, j, out->v.shape);
    loom__lay_cut(v, &l, j, &out->v);
}

/* 1 when part j of input k is read on this rank: its device is here (in a run over ranks, every
 * rank's source makes the whole step, and each cuts and copies its own devices' parts only). */
static int part_here(const loom__exec *x, int k, int j)
{
    int dom = x->pl->regst[x->pl->task[0].out[x->input_off[k] + j]].dom;
    return dom < 0 || loom__exec_dev_here(x, dom);
}

loom_status loom__exec_source_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    loom__exec_env *e = x->env;
    const int64_t i = a->piece % x->pl->micro; /* a step's micro-batch: the source feeds the step at its first */
    memset(x->by_parts, 0, (size_t)x->ninputs);
    for (int j = 0; j < x->n; j++)
        for (int d = 0; d < LOOM__MAX_DYN; d++)
            x->pdims[j][d] = -1;
    if (e->source && i == 0) {
        loom_feeder f = {.x = x, .out = a->out, .step = a->piece, .msg = a->msg, .msg_size = a->msg_size};
        for (int k = 0; k < x->ninputs; k++)
            fed_token(x, a->out, k)->v.ndim = -1; /* not fed yet */
        int end = 0;
        loom_status s = e->source(e->source_ctx, loom__exec_step_of(x, a->piece), &f, &end, a->msg, a->msg_size);
        if (s != LOOM_OK)
            return s;
        if (end) {
            a->eod = 1;
            return LOOM_OK;
        }
        for (int k = 0; k < x->ninputs; k++)
            if (!x->by_parts[k] && fed_token(x, a->out, k)->v.ndim < 0) {
                snprintf(a->msg, a->msg_size, "the source fed no data to input '%s'", x->pl->g->t[x->input_id[k]]->name);
                return LOOM_ERR_INVALID;
            }
    } else if (x->pl->micro == 1) {
        /* the data last fed, or its parts staged at the start of the run: no copy */
        for (int k = 0; k < x->ninputs; k++)
            for (int j = 0; j < x->input_n[k]; j++)
                ((token *)a->out[x->input_off[k] + j])->v =
                    loom__exec_in_program(x) ? e->val[x->input_id[k]] : x->stat[x->input_off[k] + j];
    }
    loom_status s = x->pl->micro > 1 ? micro_views(x, i, a) : LOOM_OK;
    if (s == LOOM_OK)
        s = stamp_dims(x, a);
    if (s != LOOM_OK || ((!e->source || loom__exec_in_program(x)) && x->pl->micro == 1))
        return s;
    /* the parts of what the source fed whole, once the dims are known to fit the registers */
    for (int k = 0; k < x->ninputs; k++)
        for (int j = 0; !x->by_parts[k] && j < x->input_n[k]; j++)
            if (part_here(x, k, j))
                loom__exec_cut_input(x, logical_input(x, a->out, k), k, j, a->out[x->input_off[k] + j]);
    return LOOM_OK;
}


int loom_feeder_part_here(const loom_feeder *f, const loom_tensor *input, int j)
{
    const loom__exec *x = f ? f->x : NULL;
    if (!x || !input || input->graph != x->env->graph || input->id >= x->pl->passes.fwd_end || x->input_k[input->id] < 0)
        return 0;
    int k = x->input_k[input->id];
    return j >= 0 && j < x->input_n[k] && part_here(x, k, j);
}

/* The token to fill for input t and the bytes it holds; LOOM_ERR_INVALID for a tensor that is not
 * an input of the plan. */
static loom_status feeder_slot(loom_feeder *f, loom_tensor *t, loom__layout layout, token **k, size_t *cap)
{
    loom__exec *x = f->x;
    if (!t || t->graph != x->env->graph || t->id >= x->pl->passes.fwd_end || x->input_k[t->id] < 0 || t->layout != layout)
        return LOOM_ERR_INVALID;
    int j = x->input_k[t->id];
    *k = fed_token(x, f->out, j);
    int staged = x->stage && *k == &x->stage[j]; /* no stage area: never &x->stage[j] of a NULL */
    *cap = staged ? loom__exec_stage_bytes(x, t) : x->pl->regst[x->pl->task[0].out[j]].bytes;
    return LOOM_OK;
}

/* Records why a feed was refused in the source's message (the source may return the status as
 * it is) and returns s. */
static loom_status feed_fail(loom_feeder *f, loom_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static loom_status feed_fail(loom_feeder *f, loom_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (f->msg && f->msg_size)
        vsnprintf(f->msg, f->msg_size, fmt, ap);
    va_end(ap);
    return s;
}

/* The data's size against the register the plan reserved for input t: cap bytes. */
static loom_status feed_fits(loom_feeder *f, const char *api, const loom_tensor *t, size_t bytes, size_t cap)
{
    char b[2][32];
    if (bytes <= cap)
        return LOOM_OK;
    return feed_fail(f, LOOM_ERR_SHAPE, "%s: input '%s': data of %s is over the %s its register holds", api, t->name,
                     loom__bytes_str((double)bytes, b[0], sizeof b[0]), loom__bytes_str((double)cap, b[1], sizeof b[1]));
}

/* Checks dense data a against input t (its dtype, its dims and bounds, the cap bytes of its
 * register) and copies it into token k; `part` names a part in messages ("" for the whole). */
static loom_status copy_dense(loom_feeder *f, const char *api, const loom_tensor *t, const char *part, const loom_array *a,
                              token *k, size_t cap)
{
    char msg[256];
    if (a->dtype != t->dtype)
        return feed_fail(f, LOOM_ERR_DTYPE, "%s: input '%s'%s wants %s data, got %s", api, t->name, part,
                         loom_dtype_name(t->dtype), loom_dtype_name(a->dtype));
    if (loom__exec_input_dims(f->x, t, a->ndim, a->shape, msg, sizeof msg) != LOOM_OK)
        return feed_fail(f, LOOM_ERR_SHAPE, "%s:%s %s", api, part, msg);
    int64_t n, bytes; /* in an int64: each dim is within a bound the builder checked */
    if (loom__dense_size(a->dtype, a->ndim, a->shape, &n, &bytes))
        return feed_fail(f, LOOM_ERR_SHAPE, "%s: input '%s'%s: data over an int64 byte count", api, t->name, part);
    loom_status s = feed_fits(f, api, t, (size_t)bytes, cap);
    if (s != LOOM_OK)
        return s;
    if (bytes && !a->data)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: input '%s'%s: data is NULL for %" PRId64 " elements", api, t->name, part, n);
    k->v = (loom__value){.dtype = a->dtype, .data = k->base};
    if (bytes)
        memcpy(k->v.data, a->data, (size_t)bytes);
    k->v.ndim = a->ndim;
    memcpy(k->v.shape, a->shape, sizeof k->v.shape);
    return LOOM_OK;
}

loom_status loom_feeder_dense(loom_feeder *f, loom_tensor *input, const loom_array *a)
{
    static const char api[] = "loom_feeder_dense";
    token *k;
    size_t cap;
    if (!f)
        return LOOM_ERR_INVALID;
    if (!a)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: the array is NULL", api);
    if (feeder_slot(f, input, LOOM__DENSE, &k, &cap) != LOOM_OK)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: '%s' is not a dense input of this program", api, loom_tensor_name(input));
    return copy_dense(f, api, f->x->pl->g->t[input->id], "", a, k, cap);
}

loom_status loom_feeder_csr(loom_feeder *f, loom_tensor *input, const loom_csr *m)
{
    static const char api[] = "loom_feeder_csr";
    token *k;
    size_t cap;
    char msg[256];
    loom_error e = {0};
    if (!f)
        return LOOM_ERR_INVALID;
    if (!m)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: the matrix is NULL", api);
    if (feeder_slot(f, input, LOOM__CSR, &k, &cap) != LOOM_OK)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: '%s' is not a sparse input of this program", api, loom_tensor_name(input));
    if (m->vdtype != input->dtype)
        return feed_fail(f, LOOM_ERR_DTYPE, "%s: input '%s' wants %s values, got %s", api, input->name,
                         loom_dtype_name(input->dtype), loom_dtype_name(m->vdtype));
    if (loom_csr_validate(m, &e) != LOOM_OK)
        return feed_fail(f, LOOM_ERR_FORMAT, "%s: input '%s': %s", api, input->name, e.msg);
    int64_t shape[2] = {m->nrows, m->ncols};
    if (loom__exec_input_dims(f->x, f->x->pl->g->t[input->id], 2, shape, msg, sizeof msg) != LOOM_OK)
        return feed_fail(f, LOOM_ERR_SHAPE, "%s: %s", api, msg);
    loom_status s = feed_fits(f, api, input, loom__csr_bytes(m->nrows, m->nnz, m->vdtype), cap);
    if (s != LOOM_OK)
        return s;
    loom__exec_csr_layout(k, k->base, m->nrows, m->nnz, m->vdtype);
    memcpy(k->v.rowptr, m->rowptr, (size_t)(m->nrows + 1) * sizeof(int32_t));
    if (m->nnz) { /* validated: col and val are there */
        memcpy(k->v.col, m->col, (size_t)m->nnz * sizeof(int32_t));
        memcpy(k->v.data, m->val, (size_t)m->nnz * loom_dtype_size(m->vdtype));
    }
    k->v.ndim = 2;
    k->v.shape[0] = m->nrows;
    k->v.shape[1] = m->ncols;
    return LOOM_OK;
}

loom_status loom_feeder_parts(loom_feeder *f, loom_tensor *input, int n, const loom_array *parts)
{
    static const char api[] = "loom_feeder_parts";
    token *k;
    size_t cap;
    if (!f)
        return LOOM_ERR_INVALID;
    if (!parts || n < 1)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: no parts given", api);
    if (feeder_slot(f, input, LOOM__DENSE, &k, &cap) != LOOM_OK)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: '%s' is not a dense input of this program", api, loom_tensor_name(input));
    loom__exec *x = f->x;
    const loom_graph *g = x->pl->g;
    const loom_tensor *t = g->t[input->id];
    const int in = x->input_k[t->id], nparts = x->input_n[in];
    if (nparts == 1 && n == 1)
        return loom_feeder_dense(f, input, &parts[0]);
    if (n != nparts)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: input '%s' is on %d device%s, given %d part%s", api, t->name, nparts,
                         nparts == 1 ? "" : "s", n, n == 1 ? "" : "s");
    const loom__regst *rg0 = &x->pl->regst[x->pl->task[0].out[x->input_off[in]]];
    int d = loom__dyn_index(g, t->shape.d[0]);
    if (x->pl->nplaces > 1)
        return feed_fail(f, LOOM_ERR_UNSUPPORTED, "%s: a graph batch fed by parts needs a graph on one placement; this one has %d",
                         api, x->pl->nplaces);
    if (x->pl->micro > 1)
        return feed_fail(f, LOOM_ERR_UNSUPPORTED, "%s: a graph batch fed by parts is not cut into micro-batches; compile with "
                         "micro_batches 0 or 1", api);
    const loom__lay l0 = loom__regst_lay(rg0);
    if (loom__lay_flat_axis(&l0) != 0 || d < 0) {
        /* on a mesh, parts in device order are a split of both levels: (S(0), S(0)) */
        char sb[40];
        loom_nd_sbp_str(&l0.s, sb, sizeof sb);
        return feed_fail(f, rg0->mesh[0] > 0 && d >= 0 ? LOOM_ERR_UNSUPPORTED : LOOM_ERR_INVALID,
                         "%s: input '%s' is %s on its devices; feeding by parts needs it split %s along a dynamic dim", api, t->name, sb,
                         rg0->mesh[0] > 0 ? "(S(0), S(0))" : "S(0)");
    }
    for (int i = 1; i < t->shape.ndim; i++)
        if (loom_dim_is_dynamic(t->shape.d[i]))
            return feed_fail(f, LOOM_ERR_UNSUPPORTED, "%s: input '%s' has a dynamic dim past axis 0, which parts cannot carry", api,
                             t->name);
    for (int j = 0; j < n; j++) {
        const loom_array *p = &parts[j];
        char part[24];
        snprintf(part, sizeof part, " part %d", j);
        const int64_t most = loom__lay_part_rows(g, d, &l0, j);
        if (p->ndim >= 1 && p->shape[0] > most && p->shape[0] <= g->dyn[d].bound)
            return feed_fail(f, LOOM_ERR_SHAPE, "%s: input '%s',%s: %" PRId64 " rows, over %s's part bound of %" PRId64
                             " (loom_dim_set_part_bound, loom_program_set_bounds)",
                             api, t->name, part, p->shape[0], g->dyn[d].name, most);
        if (p->ndim >= 1 && x->pdims[j][d] >= 0 && x->pdims[j][d] != p->shape[0])
            return feed_fail(f, LOOM_ERR_SHAPE, "%s:%s: dynamic dim %s is %" PRId64 " in input '%s' but %" PRId64 " in another input's part",
                             api, part, g->dyn[d].name, p->shape[0], t->name, x->pdims[j][d]);
        const loom__regst *rg = &x->pl->regst[x->pl->task[0].out[x->input_off[in] + j]];
        if (!part_here(x, in, j))
            continue;
        loom_status s = copy_dense(f, api, t, part, p, f->out[x->input_off[in] + j], rg->bytes);
        if (s != LOOM_OK)
            return s;
    }
    for (int j = 0; j < n; j++)
        x->pdims[j][d] = parts[j].shape[0];
    x->by_parts[in] = 1;
    return LOOM_OK;
}
