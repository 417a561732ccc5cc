/* The acts of a plan's tasks on CPU devices and the host (source, variable, compute, boxing, move
 * and sink), feeding from a data source, parameters between the program and the devices, and
 * running (see exec.h; building the actors is actors/build.c, the GPU's acts actors/devices/cuda.c).
 *
 * Threads: each device's chain and its variables run on the device's stream 0, the source on the
 * host's stream 1 (so loading overlaps compute), sinks on the host's stream 2; a GPU's copies to and
 * from the host have streams of their own. Each chain is closed by a token actor that hands the
 * last task's control output back to the first task one piece later: a device runs one piece at a
 * time, in the plan's order, which is what the lifetime-shared memory relies on. */
#include "actors/exec_internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const loom__plan *loom__exec_plan(const loom__exec *x) { return x->pl; }
void loom__exec_cancel(loom__exec *x) { loom__rt_cancel(x->rt); }
int loom__exec_take_cancel(loom__exec *x) { return loom__rt_take_cancel(x->rt); }
loom__rt *loom__exec_runtime(loom__exec *x) { return x->rt; }

static int in_program(const loom__exec *x) { return loom__exec_in_program(x); }

loom_status loom__exec_fail(const loom__exec *x, loom_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->env->err, x->env->err_size, fmt, ap);
    va_end(ap);
    return s;
}

size_t loom__exec_stage_bytes(const loom__exec *x, const loom_tensor *t)
{
    return t->layout == LOOM__CSR ? loom__csr_bytes(x->pl->csr_rows[t->id], x->pl->csr_nnz[t->id], t->dtype)
                                  : loom__part_bytes(x->pl->g, t, loom_broadcast(), 1, 0);
}

/* ---- values ------------------------------------------------------------------------------------ */

void loom__exec_csr_layout(token *k, char *base, int64_t nrows, int64_t nnz, loom_dtype vdtype)
{
    size_t a = ((size_t)(nrows + 1) * sizeof(int32_t) + 63) / 64 * 64, b = ((size_t)nnz * sizeof(int32_t) + 63) / 64 * 64;
    k->v.rowptr = (int32_t *)base;
    k->v.col = (int32_t *)(base + a);
    k->v.data = base + a + b;
    k->v.nnz = nnz;
    k->v.dtype = vdtype;
}

int loom__exec_resolve(const loom_graph *g, const loom_tensor *t, const token *dims_from, int64_t *shape)
{
    for (int i = 0; i < t->shape.ndim; i++) {
        int k = loom__dyn_index(g, t->shape.d[i]);
        if (k < 0)
            shape[i] = t->shape.d[i];
        else if (!dims_from || !dims_from->has_dims || dims_from->dims[k] < 0)
            return k;
        else
            shape[i] = dims_from->dims[k];
    }
    return -1;
}

char *loom__exec_buffer(const loom__exec *x, int r, int b)
{
    const loom__regst *rg = &x->pl->regst[r];
    switch (rg->mem) {
    case LOOM__MEM_SHARED:
        return x->dev_block[rg->dom] + rg->offset;
    case LOOM__MEM_OWN:
        return (rg->dom == LOOM__HOST ? x->host_block : x->dev_block[rg->dom]) + rg->offset + (size_t)b * rg->bytes;
    case LOOM__MEM_PARAM:
        return x->param_block[rg->dom] + rg->offset;
    case LOOM__MEM_NONE:
        break;
    }
    return NULL;
}

const token *loom__exec_dims_of(const loom__act *a, int nin)
{
    for (int i = 0; i < nin; i++)
        if (a->in[i] && ((const token *)a->in[i])->has_dims)
            return a->in[i];
    return NULL;
}

loom_status loom__exec_shape_out(const loom__exec *x, const loom_tensor *t, const loom__regst *rg, const token *dims,
                                 token *out, loom__act *a)
{
    int64_t shape[LOOM_MAX_DIMS] = {0};
    int unbound = loom__exec_resolve(x->pl->g, t, dims, shape);
    if (unbound >= 0) {
        snprintf(a->msg, a->msg_size, "needs dynamic dim %s, which no fed input carries", x->pl->g->dyn[unbound].name);
        return LOOM_ERR_SHAPE;
    }
    out->v.ndim = t->shape.ndim;
    loom__part_shape(shape, t->shape.ndim, rg->sbp, rg->nparts, rg->part, out->v.shape);
    out->has_dims = dims != NULL;
    if (dims)
        memcpy(out->dims, dims->dims, sizeof out->dims);
    return LOOM_OK;
}

/* ---- acts every device shares ----------------------------------------------------------------- */

loom__kctx loom__exec_kctx(const loom__exec *x, loom__act *a)
{
    return (loom__kctx){.step = x->pl->mode == LOOM_RUN_STEP ? a->piece : x->env->step,
                        .training = x->pl->mode != LOOM_RUN_EVAL,
                        .seed = x->pl->g->seed,
                        .msg = a->msg,
                        .msglen = a->msg_size};
}

static loom_status compute_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    const loom__task *k = &x->pl->task[c->task];
    const loom_tensor *t = loom__task_tensor(x->pl, k);
    loom__value *src[LOOM__MAX_SRC];
    for (int i = 0; i < t->n_src; i++)
        src[i] = &((token *)a->in[i])->v;
    token *out = a->out[0];
    loom_status s = loom__exec_shape_out(x, t, &x->pl->regst[k->out[0]], loom__exec_dims_of(a, t->n_src), out, a);
    if (s != LOOM_OK)
        return s;
    loom__kctx kc = loom__exec_kctx(x, a);
    if (x->pl->sig) { /* the part's offsets, for kernels whose signature needs them */
        const loom__regst *rg = &x->pl->regst[k->out[0]];
        int64_t shapes[LOOM__MAX_SRC][LOOM_MAX_DIMS] = {{0}};
        for (int i = 0; i < t->n_src; i++)
            loom__exec_resolve(x->pl->g, t->src[i], loom__exec_dims_of(a, t->n_src), shapes[i]);
        loom__part_offsets(&x->pl->sig[t->id], t->n_src, (const int64_t(*)[LOOM_MAX_DIMS])shapes, rg->nparts, rg->part, &kc);
    }
    return x->dev->kernel(x, a, c->task, t, &out->v, src, &kc);
}

/* This device's part under the wanted SBP from every part of the tensor, through the device's
 * communicator: the collective's share of the device (a boxing), or a transfer from another
 * placement (a move). */
static loom_status boxing_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    const loom__task *k = &x->pl->task[c->task];
    const loom__regst *from = &x->pl->regst[k->in[0]], *to = &x->pl->regst[k->out[0]];
    const loom_tensor *t = loom__task_tensor(x->pl, k);
    const loom__value *parts[LOOM__MAX_DEVICES];
    for (int j = 0; j < k->n_in; j++)
        parts[j] = &((const token *)a->in[j])->v;
    token *out = a->out[0];
    const token *dims = loom__exec_dims_of(a, k->n_in);
    int64_t logical[LOOM_MAX_DIMS] = {0};
    if (t->layout != LOOM__CSR) {
        loom_status s = loom__exec_shape_out(x, t, to, dims, out, a);
        if (s != LOOM_OK)
            return s;
        loom__exec_resolve(x->pl->g, t, dims, logical);
    } else {
        out->has_dims = dims != NULL;
        if (dims)
            memcpy(out->dims, dims->dims, sizeof out->dims);
    }
    loom__comm_box b = {.parts = parts, .from = from->sbp, .to = to->sbp, .n_from = from->nparts, .n_to = to->nparts,
                        .part = to->part, .logical = logical};
    return x->dev->comm->box(&b, &out->v, a->msg, a->msg_size);
}

/* The position of plan device d in placement `place`, or -1. */
static int part_at(const loom__plan *pl, int place, int d)
{
    for (int j = 0; j < pl->place_n[place]; j++)
        if (pl->place_dev[place][j] == d)
            return j;
    return -1;
}

loom__value loom__exec_param_part(const loom__exec *x, const loom_tensor *t, int d)
{
    loom__value v = {.dtype = t->dtype, .ndim = t->shape.ndim};
    int64_t shape[LOOM_MAX_DIMS];
    for (int i = 0; i < t->shape.ndim; i++)
        shape[i] = t->shape.d[i]; /* parameters and state are static */
    loom_sbp s = loom__plan_sbp(x->pl, t->id);
    loom__part_shape(shape, t->shape.ndim, s, x->pl->place_n[t->place], part_at(x->pl, t->place, d), v.shape);
    v.data = x->param_block[d] + x->pl->param_off[(size_t)t->id * x->n + d];
    return v;
}

static loom_status variable_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    const loom__task *k = &x->pl->task[c->task];
    loom__exec_env *e = x->env;
    token *out = a->out[0];
    int d = k->device;
    const loom_tensor *u = loom__task_update(x->pl, k);
    if (u && !a->initial) {
        /* version piece+1 = update(version piece, gradient of piece): every reader of the old
         * version has acked it, or the runtime would not have given this act a free buffer */
        loom__value parts[LOOM__MAX_SRC], *src[LOOM__MAX_SRC];
        for (int i = 0; i < u->n_src; i++) {
            if (i == 1) /* the gradient, from the chain */
                src[i] = &((token *)a->in[0])->v;
            else if (in_program(x))
                src[i] = &e->val[u->src[i]->id];
            else
                parts[i] = loom__exec_param_part(x, u->src[i], d), src[i] = &parts[i];
        }
        loom__kctx kc = loom__exec_kctx(x, a);
        kc.step = a->piece;
        kc.training = 1;
        loom_status s = x->dev->kernel(x, a, c->task, u, NULL, src, &kc);
        if (s != LOOM_OK)
            return s;
    }
    out->v = in_program(x) ? e->val[k->tensor] : loom__exec_param_part(x, loom__task_tensor(x->pl, k), d);
    out->has_dims = 0;
    return LOOM_OK;
}

/* ---- the source ------------------------------------------------------------------------------- */

/* The token a data source feeds input k into: the register itself on one CPU device, the host
 * stage otherwise (cut into parts after the callback). */
static token *fed_token(const loom__exec *x, void *const *out, int k)
{
    return in_program(x) ? out[x->input_off[k]] : &x->stage[k];
}

/* The logical value of input k at this piece. */
static const loom__value *logical_input(const loom__exec *x, void *const *out, int k)
{
    return x->env->source ? &fed_token(x, out, k)->v : &x->env->val[x->input_id[k]];
}

/* Binds the dynamic dims of a step from its logical inputs (they must agree) and stamps every
 * token. */
static loom_status stamp_dims(loom__exec *x, loom__act *a)
{
    const loom_graph *g = x->pl->g;
    int64_t dims[LOOM__MAX_DYN];
    int from[LOOM__MAX_DYN];
    for (int k = 0; k < LOOM__MAX_DYN; k++)
        dims[k] = -1, from[k] = -1;
    for (int k = 0; k < x->ninputs; k++) {
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
    for (int j = 0; j < x->pl->task[0].n_out; j++) { /* not the control output */
        token *k = a->out[j];
        k->has_dims = 1;
        memcpy(k->dims, dims, sizeof dims);
    }
    return LOOM_OK;
}

void loom__exec_cut_input(const loom__exec *x, const loom__value *v, int k, int j, token *out)
{
    const loom__regst *rg = &x->pl->regst[x->pl->task[0].out[x->input_off[k] + j]];
    if (v->rowptr) {
        int64_t start = 0, size = v->shape[0];
        if (rg->sbp.kind == LOOM_SBP_SPLIT)
            loom_split_part(v->shape[0], rg->nparts, j, &start, &size);
        loom__exec_csr_layout(out, out->base, size, v->rowptr[start + size] - v->rowptr[start], v->dtype);
        loom__csr_rows(v, start, size, &out->v);
        return;
    }
    out->v = (loom__value){.dtype = v->dtype, .ndim = v->ndim, .data = out->base};
    loom__part_shape(v->shape, v->ndim, rg->sbp, rg->nparts, j, out->v.shape);
    loom__part_cut(v, rg->sbp, rg->nparts, j, &out->v);
}

static loom_status source_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    loom__exec_env *e = x->env;
    if (e->source) {
        loom_feeder f = {.x = x, .out = a->out, .step = a->piece, .msg = a->msg, .msg_size = a->msg_size};
        for (int k = 0; k < x->ninputs; k++)
            fed_token(x, a->out, k)->v.ndim = -1; /* not fed yet */
        int end = 0;
        loom_status s = e->source(e->source_ctx, a->piece, &f, &end, a->msg, a->msg_size);
        if (s != LOOM_OK)
            return s;
        if (end) {
            a->eod = 1;
            return LOOM_OK;
        }
        for (int k = 0; k < x->ninputs; k++)
            if (fed_token(x, a->out, k)->v.ndim < 0) {
                snprintf(a->msg, a->msg_size, "the source fed no data to input '%s'", x->pl->g->t[x->input_id[k]]->name);
                return LOOM_ERR_INVALID;
            }
        if (!in_program(x))
            for (int k = 0; k < x->ninputs; k++)
                for (int j = 0; j < x->input_n[k]; j++)
                    loom__exec_cut_input(x, &x->stage[k].v, k, j, a->out[x->input_off[k] + j]);
    } else {
        /* the data last fed, or its parts staged at the start of the run: no copy */
        for (int k = 0; k < x->ninputs; k++)
            for (int j = 0; j < x->input_n[k]; j++)
                ((token *)a->out[x->input_off[k] + j])->v = in_program(x) ? e->val[x->input_id[k]] : x->stat[x->input_off[k] + j];
    }
    return stamp_dims(x, a);
}

int loom__exec_keeps(const loom__exec *x, const loom_tensor *t, int64_t piece)
{
    return (t->id == x->pl->loss && x->pl->mode == LOOM_RUN_STEP) || x->last_piece < 0 || piece == x->last_piece;
}

static loom_status sink_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    loom__exec_env *e = x->env;
    const loom__task *k = &x->pl->task[c->task];
    const loom_tensor *t = loom__task_tensor(x->pl, k);
    if (!loom__exec_keeps(x, t, a->piece))
        return LOOM_OK;
    const loom__value *parts[LOOM__MAX_DEVICES];
    for (int d = 0; d < k->n_in; d++) {
        const token *in = a->in[d];
        loom_status s = x->dev->value_err ? x->dev->value_err(x, in, a->msg, a->msg_size) : LOOM_OK;
        if (s != LOOM_OK)
            return s;
        parts[d] = &in->v;
    }
    int64_t shape[LOOM_MAX_DIMS] = {0};
    if (loom__exec_resolve(x->pl->g, t, a->in[0], shape) >= 0)
        memcpy(shape, parts[0]->shape, sizeof shape); /* one device: the part is the whole */
    loom_status s = e->reserve(e->owner, t->id, t->dtype, t->shape.ndim, shape);
    if (s != LOOM_OK) {
        snprintf(a->msg, a->msg_size, "no memory to keep '%s'", loom_tensor_name(t));
        return s;
    }
    loom__part_join(parts, x->pl->regst[k->in[0]].sbp, k->n_in, &e->val[t->id]);
    e->ready[t->id] = 1;
    if (t->id == x->pl->loss && x->pl->mode == LOOM_RUN_STEP) {
        const loom__value *v = &e->val[t->id];
        if (e->loss(e->owner, v->dtype == LOOM_F32 ? ((float *)v->data)[0] : ((double *)v->data)[0]) != LOOM_OK) {
            snprintf(a->msg, a->msg_size, "no memory for the loss history");
            return LOOM_ERR_NOMEM;
        }
    }
    return LOOM_OK;
}

loom__act_fn loom__exec_act(const loom__exec *x, const loom__task *k)
{
    loom__act_fn own = x->dev->own_act ? x->dev->own_act(k) : NULL;
    if (own)
        return own;
    switch (k->kind) {
    case LOOM__TASK_SOURCE:
        return source_act;
    case LOOM__TASK_VARIABLE:
        return variable_act;
    case LOOM__TASK_COMPUTE:
        return compute_act;
    case LOOM__TASK_BOXING:
    case LOOM__TASK_MOVE:
        return boxing_act;
    case LOOM__TASK_SINK:
        return sink_act;
    default:
        return NULL;
    }
}

/* ---- feeding from a source --------------------------------------------------------------------- */

/* The token to fill for input t and the bytes it holds; LOOM_ERR_INVALID for a tensor that is not
 * an input of the plan. */
static loom_status feeder_slot(loom_feeder *f, loom_tensor *t, loom__layout layout, token **k, size_t *cap)
{
    loom__exec *x = f->x;
    if (!t || t->graph != x->env->graph || t->id >= x->pl->passes.fwd_end || x->input_k[t->id] < 0 || t->layout != layout)
        return LOOM_ERR_INVALID;
    int j = x->input_k[t->id];
    *k = fed_token(x, f->out, j);
    *cap = in_program(x) ? x->pl->regst[x->pl->task[0].out[j]].bytes : loom__exec_stage_bytes(x, t);
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

loom_status loom_feeder_dense(loom_feeder *f, loom_tensor *input, const loom_array *a)
{
    static const char api[] = "loom_feeder_dense";
    token *k;
    size_t cap;
    char msg[256];
    if (!f)
        return LOOM_ERR_INVALID;
    if (!a)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: the array is NULL", api);
    if (feeder_slot(f, input, LOOM__DENSE, &k, &cap) != LOOM_OK)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: '%s' is not a dense input of this program", api, loom_tensor_name(input));
    if (a->dtype != input->dtype)
        return feed_fail(f, LOOM_ERR_DTYPE, "%s: input '%s' wants %s data, got %s", api, input->name,
                         loom_dtype_name(input->dtype), loom_dtype_name(a->dtype));
    if (loom__input_dims(f->x->pl->g, f->x->pl->g->t[input->id], a->ndim, a->shape, msg, sizeof msg) != LOOM_OK)
        return feed_fail(f, LOOM_ERR_SHAPE, "%s: %s", api, msg);
    int64_t n, bytes; /* in an int64: each dim is within a bound the builder checked */
    if (loom__dense_size(a->dtype, a->ndim, a->shape, &n, &bytes))
        return feed_fail(f, LOOM_ERR_SHAPE, "%s: input '%s': data over an int64 byte count", api, input->name);
    loom_status s = feed_fits(f, api, input, (size_t)bytes, cap);
    if (s != LOOM_OK)
        return s;
    if (bytes && !a->data)
        return feed_fail(f, LOOM_ERR_INVALID, "%s: input '%s': data is NULL for %" PRId64 " elements", api, input->name, n);
    k->v = (loom__value){.dtype = a->dtype, .data = k->base};
    if (bytes)
        memcpy(k->v.data, a->data, (size_t)bytes);
    k->v.ndim = a->ndim;
    memcpy(k->v.shape, a->shape, sizeof k->v.shape);
    return LOOM_OK;
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
    if (loom__input_dims(f->x->pl->g, f->x->pl->g->t[input->id], 2, shape, msg, sizeof msg) != LOOM_OK)
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

/* ---- parameters between the program and the devices -------------------------------------------- */

/* A part on the host with room for the part of t under the tensor's SBP on device d. */
static int host_part(const loom__exec *x, const loom_tensor *t, int d, loom__value *v)
{
    *v = loom__exec_param_part(x, t, d);
    v->data = malloc((size_t)loom__numel(v) * loom_dtype_size(v->dtype) + 1);
    return v->data ? 0 : -1;
}

/* Copies n bytes between the host and a device part. */
static loom_status part_copy(loom__exec *x, void *dst, const void *src, size_t n) { return x->dev->copy(x, dst, src, n); }

loom_status loom__exec_pull(loom__exec *x, int id)
{
    loom__exec_env *e = x->env;
    const loom_tensor *t = x->pl->g->t[id];
    int n = x->pl->place_n[t->place];
    loom__value host[LOOM__MAX_DEVICES];
    const loom__value *pp[LOOM__MAX_DEVICES] = {0};
    loom_status s = LOOM_OK;
    int made = 0;
    for (int j = 0; j < n && s == LOOM_OK; j++, made++) {
        int d = x->pl->place_dev[t->place][j];
        if (host_part(x, t, d, &host[j])) {
            s = loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_fetch: out of memory");
            break;
        }
        loom__value dev = loom__exec_param_part(x, t, d);
        s = part_copy(x, host[j].data, dev.data, (size_t)loom__numel(&dev) * loom_dtype_size(dev.dtype));
        pp[j] = &host[j];
    }
    if (s == LOOM_OK)
        loom__part_join(pp, loom__plan_sbp(x->pl, id), n, &e->val[id]);
    for (int j = 0; j < made; j++)
        free(host[j].data);
    if (s == LOOM_OK && e->holder[id] == x)
        e->holder[id] = NULL;
    return s;
}

/* Puts the newest value of every parameter and optimizer state onto this plan's devices. */
static loom_status push_params(loom__exec *x)
{
    loom__exec_env *e = x->env;
    if (in_program(x))
        return LOOM_OK;
    for (int id = 0; id < x->pl->g->n; id++) {
        const loom_tensor *t = x->pl->g->t[id];
        int n = x->pl->place_n[t->place];
        if (x->pl->param_off[(size_t)id * x->n + x->pl->place_dev[t->place][0]] == (size_t)-1 || e->holder[id] == x)
            continue;
        loom_status s = e->holder[id] ? loom__exec_pull(e->holder[id], id) : LOOM_OK;
        for (int j = 0; j < n && s == LOOM_OK; j++) {
            int d = x->pl->place_dev[t->place][j];
            loom__value h;
            if (host_part(x, t, d, &h))
                return loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
            loom__part_cut(&e->val[id], loom__plan_sbp(x->pl, id), n, j, &h);
            loom__value dev = loom__exec_param_part(x, t, d);
            s = part_copy(x, dev.data, h.data, (size_t)loom__numel(&h) * loom_dtype_size(h.dtype));
            free(h.data);
        }
        if (s != LOOM_OK)
            return s;
        e->holder[id] = x;
    }
    return LOOM_OK;
}

/* Cuts each fed input into its parts (several CPU devices; GPUs do it in run_begin), again only
 * when it was fed since. */
static loom_status stage_static(loom__exec *x)
{
    loom__exec_env *e = x->env;
    if (e->source || in_program(x) || x->dev->stages_inputs)
        return LOOM_OK;
    for (int k = 0; k < x->ninputs; k++) {
        int id = x->input_id[k];
        if (x->stat_version[k] == e->feed_version[id])
            continue;
        for (int j = 0; j < x->input_n[k]; j++) {
            loom__value *v = &x->stat[x->input_off[k] + j];
            size_t need = x->pl->g->t[id]->layout == LOOM__CSR ? loom__csr_bytes(e->val[id].shape[0], e->val[id].nnz, e->val[id].dtype)
                                                               : (size_t)loom__numel(&e->val[id]) * loom_dtype_size(e->val[id].dtype);
            token tk = {0};
            tk.base = realloc(v->data == NULL ? NULL : (v->rowptr ? (void *)v->rowptr : v->data), need + 64);
            if (!tk.base)
                return loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_run: no memory for the parts of input '%s'",
                                       x->pl->g->t[id]->name);
            loom__exec_cut_input(x, &e->val[id], k, j, &tk);
            *v = tk.v;
        }
        x->stat_version[k] = e->feed_version[id];
    }
    return LOOM_OK;
}

loom_status loom__exec_run(loom__exec *x, int64_t pieces)
{
    loom__exec_env *e = x->env;
    /* what this plan keeps is recomputed; values kept by other modes' runs stay, as with the
     * reference executor */
    for (int id = 0; id < x->pl->g->n; id++)
        if (x->pl->kept[id])
            e->ready[id] = 0;
    if (!e->source)
        for (int k = 0; k < x->ninputs; k++)
            if (!e->ready[x->input_id[k]])
                return loom__exec_fail(x, LOOM_ERR_INVALID, "loom_program_run: input '%s' was not fed",
                                       x->pl->g->t[x->input_id[k]]->name);
    for (int k = 0; !e->source && k < x->ninputs; k++) { /* registers and scratch are sized for it */
        const loom_tensor *t = x->pl->g->t[x->input_id[k]];
        const loom__value *v = &e->val[t->id];
        if (t->layout == LOOM__CSR && (v->shape[0] != x->pl->csr_rows[t->id] || v->nnz != x->pl->csr_nnz[t->id]))
            return loom__exec_fail(x, LOOM_ERR_SHAPE,
                                   "loom_program_run: sparse input '%s' is fed %" PRId64 " rows and %" PRId64
                                   " entries; its plan was made for %" PRId64 " and %" PRId64,
                                   t->name, v->shape[0], v->nnz, x->pl->csr_rows[t->id], x->pl->csr_nnz[t->id]);
    }
    loom_status s = push_params(x);
    if (s == LOOM_OK)
        s = stage_static(x);
    if (s == LOOM_OK && x->dev->run_begin)
        s = x->dev->run_begin(x);
    if (s != LOOM_OK)
        return s;
    /* a training step's piece is its step number (its random masks, the source's step): after a
     * failed run the steps it did not apply run again under the same numbers */
    if (x->pl->mode == LOOM_RUN_STEP)
        loom__rt_set_next_piece(x->rt, e->step);
    int64_t first = loom__rt_next_piece(x->rt);
    x->last_piece = e->source || pieces > INT64_MAX - first ? -1 : first + pieces - 1;
    s = loom__rt_run(x->rt, pieces);
    if (s != LOOM_OK)
        loom__exec_fail(x, s, "loom_program_run: %s", loom__rt_error(x->rt));
    const char *te = loom__rt_trace_error(x->rt);
    snprintf(e->trace_err, e->trace_err_size, "%s", te ? te : "");
    if (x->dev->run_end)
        s = x->dev->run_end(x, s);
    return s;
}

/* ---- CPU devices -------------------------------------------------------------------------------- */

static loom_status cpu_kernel(loom__exec *x, loom__act *a, int task, const loom_tensor *t, loom__value *out,
                              loom__value *const *src, const loom__kctx *kc)
{
    (void)task;
    loom__kctx k = *kc;
    k.pool = x->env->pool;
    loom_status s = loom__op_def(t->op)->cpu(t, out, src, &k);
    /* an update writes its parameter, src[0] */
    return s != LOOM_OK || !x->env->check_numerics ? s : loom__check_numerics(&x->pl->passes, t, out ? out : src[0], a->msg, a->msg_size);
}

static void cpu_close(loom__exec *x)
{
    for (int i = 0; x->stat && i < x->pl->task[0].n_out; i++) /* the parts stage_static cut */
        free(x->stat[i].rowptr ? (void *)x->stat[i].rowptr : x->stat[i].data);
    for (int d = 0; d < x->n; d++) {
        free(x->dev_block ? x->dev_block[d] : NULL);
        free(x->param_block ? x->param_block[d] : NULL);
    }
    free(x->host_block);
}

static loom_status cpu_copy(loom__exec *x, void *dst, const void *src, size_t n)
{
    (void)x;
    memcpy(dst, src, n);
    return LOOM_OK;
}

const loom__exec_device loom__exec_cpu_device = {
    .rt_kind = LOOM__RT_DEV_CPU,
    .comm = &loom__comm_shared,
    .open = loom__exec_cpu_blocks,
    .close = cpu_close,
    .kernel = cpu_kernel,
    .copy = cpu_copy,
};
