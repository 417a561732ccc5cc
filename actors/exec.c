/* The acts of a plan's tasks on CPU devices and the host (variable, compute, boxing, move and sink;
 * the source's is actors/source.c), and the CPU devices (see exec.h; building the actors is
 * actors/build.c, running them actors/run.c, the GPU's acts actors/devices/cuda.c).
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
    if (t->layout == LOOM__CSR)
        return loom__csr_bytes(x->pl->csr_rows[t->id], x->pl->csr_nnz[t->id], t->dtype);
    size_t one = loom__part_bytes(x->pl->g, t, loom_broadcast(), 1, 0), all = 0;
    for (int i = 0; i < x->pl->micro; i++) /* a step's micro-batches, each at its bound */
        all = loom__bytes_add(all, one);
    return all;
}

loom_status loom__exec_input_dims(const loom__exec *x, const loom_tensor *t, int ndim, const int64_t *shape, char *msg, size_t len)
{
    const loom__plan *pl = x->pl;
    if (pl->micro <= 1 || ndim != t->shape.ndim || ndim < 1 || shape[0] < 0)
        return loom__input_dims(pl->g, t, ndim, shape, msg, len);
    if (pl->mb_static ? shape[0] != pl->mb_rows : shape[0] > pl->mb_rows)
        return snprintf(msg, len, "input '%s' has %" PRId64 " rows (axis 0: the batch), %s %" PRId64, t->name, shape[0],
                        pl->mb_static ? "the batch has" : "over the batch's bound of", pl->mb_rows),
               LOOM_ERR_SHAPE;
    loom_status s = loom__micro_rows(t, ndim, shape, pl->micro, msg, len);
    if (s != LOOM_OK)
        return s;
    int64_t one[LOOM_MAX_DIMS];
    memcpy(one, shape, (size_t)ndim * sizeof *one);
    one[0] /= pl->micro;
    return loom__input_dims(pl->g, t, ndim, one, msg, len);
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
    if (rg->dom >= 0 && !loom__exec_dev_here(x, rg->dom))
        return x->mirror && x->mirror[r] ? x->mirror[r] + (size_t)b * rg->bytes : NULL;
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

/* 1 when axis a of t is a dim the piece's source fed by parts (its parts' sizes come with dims). */
static int fed_dim(const loom_graph *g, const loom_tensor *t, int a, const token *dims)
{
    const int k = loom__dyn_index(g, t->shape.d[a]);
    return k >= 0 && dims && dims->split_parts && dims->psize[k] >= 0;
}

/* The axis along which t's part under l is the range loom__exec_part_range gives, else -1: a split
 * of one level; on a mesh, a split of both levels along a dim fed by parts. A mesh's even split
 * is nested, the region of l. */
static int ranged_axis(const loom_graph *g, const loom_tensor *t, const loom__lay *l, const token *dims)
{
    const int a = loom__lay_flat_axis(l);
    if (a < 0 || l->s.n < 2)
        return a;
    return fed_dim(g, t, a, dims) ? a : -1;
}

/* 1 when l splits a dim of t fed by parts on some level. */
static int splits_fed(const loom_graph *g, const loom_tensor *t, const loom__lay *l, const token *dims)
{
    for (int i = 0; i < l->s.n; i++)
        if (l->s.v[i].kind == LOOM_SBP_SPLIT && fed_dim(g, t, l->s.v[i].axis, dims))
            return 1;
    return 0;
}

/* Mesh layout l of t as the 1-D layout it is over the devices in row-major order: (S(a), S(a))
 * along a dim fed by parts is S(a) (the parts one after another, of the sizes dims gives), (B, B)
 * is B and (P, P) is P. 0, or -1 for any other layout (a split of one level, or along a dim split
 * evenly, is nested). */
static int flat_lay(const loom_graph *g, const loom_tensor *t, const token *dims, loom__lay *l)
{
    const loom_sbp v = l->s.v[0];
    if (l->s.n > 1 && !loom_sbp_equal(v, l->s.v[1]))
        return -1;
    if (v.kind == LOOM_SBP_SPLIT && !fed_dim(g, t, v.axis, dims))
        return -1;
    *l = (loom__lay){.s = loom_nd_sbp_1d(v), .mesh = {l->n, 1}, .n = l->n};
    return 0;
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
    const loom__lay l = loom__regst_lay(rg);
    loom__lay_shape(shape, t->shape.ndim, &l, rg->part, out->v.shape);
    const int ax = ranged_axis(x->pl->g, t, &l, dims);
    if (ax >= 0) {
        int64_t first;
        loom__exec_part_range(x->pl->g, t, ax, dims, rg->nparts, rg->part, shape[ax], &first, &out->v.shape[ax]);
    }
    loom__exec_copy_dims(out, dims);
    return LOOM_OK;
}

void loom__exec_part_range(const loom_graph *g, const loom_tensor *t, int axis, const token *dims, int nparts, int part,
                           int64_t whole, int64_t *first, int64_t *size)
{
    int k = loom__dyn_index(g, t->shape.d[axis]);
    if (k >= 0 && nparts > 1 && dims && dims->split_parts && dims->psize[k] >= 0) {
        *first = dims->pfirst[k];
        *size = dims->psize[k];
        return;
    }
    loom_split_part(whole, nparts, part, first, size);
}

void loom__exec_copy_dims(token *to, const token *from)
{
    to->has_dims = from != NULL && from->has_dims;
    to->split_parts = to->has_dims && from->split_parts;
    if (!to->has_dims)
        return;
    memcpy(to->dims, from->dims, sizeof to->dims);
    if (to->split_parts) {
        memcpy(to->pfirst, from->pfirst, sizeof to->pfirst);
        memcpy(to->psize, from->psize, sizeof to->psize);
    }
}

/* ---- acts every device shares ----------------------------------------------------------------- */

loom__kctx loom__exec_kctx(const loom__exec *x, loom__act *a)
{
    return (loom__kctx){.step = x->pl->mode == LOOM_RUN_STEP ? loom__exec_step_of(x, a->piece) : x->env->step,
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
    loom__exec_part_kctx(x, t, &x->pl->regst[k->out[0]], loom__exec_dims_of(a, t->n_src), &kc);
    if (x->pl->micro > 1 && t->shape.ndim >= 1 && loom__dyn_index(x->pl->g, t->shape.d[0]) == x->pl->mb_dim &&
        out->has_dims) /* a micro-batch's rows are rows of its step's batch */
        kc.row0 = a->piece % x->pl->micro * out->dims[x->pl->mb_dim];
    return x->dev->kernel(x, a, c->task, t, &out->v, src, &kc);
}

void loom__exec_part_kctx(const loom__exec *x, const loom_tensor *t, const loom__regst *rg, const token *dims, loom__kctx *kc)
{
    if (!x->pl->sig) /* one device: no parts */
        return;
    const loom__sbp_sig *sig = &x->pl->sig[t->id];
    int64_t shapes[LOOM__MAX_SRC][LOOM_MAX_DIMS] = {{0}}, size;
    for (int i = 0; i < t->n_src; i++)
        loom__exec_resolve(x->pl->g, t->src[i], dims, shapes[i]);
    if (rg->mesh[0] > 0) { /* what the kernels see of the two levels */
        const loom__sbp_sig *pair[2] = {sig, &x->pl->sig1[t->id]};
        loom__nd_part_offsets(pair, &x->pl->ksig[t->id], t->n_src, (const int64_t(*)[LOOM_MAX_DIMS])shapes, rg->mesh, rg->part,
                              kc);
        for (int i = 0; i < t->n_src; i++) { /* a graph batch's parts fed by parts: their first rows come with the piece */
            const loom__lay l = {.s = loom_nd_sbp_2d(sig->in[i], pair[1]->in[i]), .mesh = {rg->mesh[0], rg->mesh[1]}, .n = rg->nparts};
            const int ax = ranged_axis(x->pl->g, t->src[i], &l, dims);
            if (ax >= 0)
                loom__exec_part_range(x->pl->g, t->src[i], ax, dims, rg->nparts, rg->part, kc->whole[i], &kc->first[i], &size);
        }
        return;
    }
    loom__part_offsets(sig, t->n_src, (const int64_t(*)[LOOM_MAX_DIMS])shapes, rg->nparts, rg->part, kc);
    for (int i = 0; i < t->n_src; i++) /* a graph batch's parts are uneven: their first rows come with the piece */
        if (sig->in[i].kind == LOOM_SBP_SPLIT)
            loom__exec_part_range(x->pl->g, t->src[i], sig->in[i].axis, dims, rg->nparts, rg->part, kc->whole[i], &kc->first[i],
                                  &size);
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
    /* the piece's dims as this device sees them: its own part's, which carries its share of a
     * graph batch fed by parts (a move to another placement has no such part) */
    const token *dims = k->n_in == to->nparts && to->part < k->n_in && ((const token *)a->in[to->part])->has_dims
                            ? a->in[to->part]
                            : loom__exec_dims_of(a, k->n_in);
    if (dims && dims->split_parts && from->nparts != to->nparts) {
        snprintf(a->msg, a->msg_size, "'%s' belongs to a graph batch fed by parts, which cannot move to another placement",
                 loom_tensor_name(t));
        return LOOM_ERR_UNSUPPORTED;
    }
    /* on a mesh, a piece fed by parts boxes a tensor split along a fed dim through the 1-D
     * layouts its layouts are (flat_lay): nothing else carries its uneven parts' sizes */
    loom__lay lfrom = loom__regst_lay(from), lto = loom__regst_lay(to);
    if (dims && dims->split_parts && (from->mesh[0] > 0 || to->mesh[0] > 0) &&
        (splits_fed(x->pl->g, t, &lfrom, dims) || splits_fed(x->pl->g, t, &lto, dims))) {
        loom__lay f1 = lfrom, t1 = lto;
        if (t->layout == LOOM__CSR || flat_lay(x->pl->g, t, dims, &f1) || flat_lay(x->pl->g, t, dims, &t1)) {
            char sf[40], st[40];
            loom_nd_sbp_str(&lfrom.s, sf, sizeof sf);
            loom_nd_sbp_str(&lto.s, st, sizeof st);
            snprintf(a->msg, a->msg_size,
                     "'%s' belongs to a graph batch fed by parts, whose uneven parts a boxing on a 2-D placement carries only "
                     "between (S(0), S(0)), (B, B) and (P, P), not %s -> %s",
                     loom_tensor_name(t), sf, st);
            return LOOM_ERR_UNSUPPORTED;
        }
        lfrom = f1, lto = t1;
    }
    int64_t logical[LOOM_MAX_DIMS] = {0}, first = 0, size;
    if (t->layout != LOOM__CSR) {
        loom_status s = loom__exec_shape_out(x, t, to, dims, out, a);
        if (s != LOOM_OK)
            return s;
        loom__exec_resolve(x->pl->g, t, dims, logical);
        if (lto.s.n == 1 && lto.s.v[0].kind == LOOM_SBP_SPLIT)
            loom__exec_part_range(x->pl->g, t, lto.s.v[0].axis, dims, to->nparts, to->part, logical[lto.s.v[0].axis], &first,
                                  &size);
    } else {
        loom__exec_copy_dims(out, dims);
    }
    loom__comm_box b = {.parts = parts, .from = lfrom.s.v[0], .to = lto.s.v[0], .n_from = from->nparts, .n_to = to->nparts,
                        .part = to->part, .first = first, .logical = logical, .lay_from = &lfrom, .lay_to = &lto};
    return x->dev->box ? x->dev->box(x, a, c->task, &b, &out->v) : x->dev->comm->box(&b, &out->v, a->msg, a->msg_size);
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
    const loom__lay l = loom__plan_lay(x->pl, t->id, x->pl->place_n[t->place]);
    loom__lay_shape(shape, t->shape.ndim, &l, part_at(x->pl, t->place, d), v.shape);
    v.data = loom__exec_dev_here(x, d) ? x->param_block[d] + x->pl->param_off[(size_t)t->id * x->n + d] : NULL;
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
    if (u && !a->initial && a->repeat == 0) { /* a version's later micro-batches read it as it is */
        /* version piece+1 = update(version piece, gradient of piece): every reader of the old
         * version has acked it, or the runtime would not have given this act a free buffer */
        loom__value parts[LOOM__MAX_SRC], *src[LOOM__MAX_SRC];
        for (int i = 0; i < u->n_src; i++) {
            if (i == 1) /* the gradient, from the chain */
                src[i] = &((token *)a->in[0])->v;
            else if (loom__exec_in_program(x))
                src[i] = &e->val[u->src[i]->id];
            else
                parts[i] = loom__exec_param_part(x, u->src[i], d), src[i] = &parts[i];
        }
        loom__kctx kc = loom__exec_kctx(x, a);
        kc.step = loom__exec_step_of(x, a->piece);
        kc.training = 1;
        loom_status s = x->dev->kernel(x, a, c->task, u, NULL, src, &kc);
        if (s != LOOM_OK)
            return s;
    }
    out->v = loom__exec_in_program(x) ? e->val[k->tensor] : loom__exec_param_part(x, loom__task_tensor(x->pl, k), d);
    out->has_dims = 0;
    return LOOM_OK;
}

/* v += w, elementwise, in place, by the add op's CPU kernel (micro-batches run on CPU devices);
 * t names the value in a failure's message. */
static loom_status add_into(const loom__exec *x, loom__act *a, const loom_tensor *t, loom__value *v, const loom__value *w)
{
    loom__value *src[2] = {v, (loom__value *)w};
    loom__kctx kc = loom__exec_kctx(x, a);
    return loom__op_def(LOOM_OP_ADD)->cpu(t, v, src, &kc);
}

/* Sums a gradient's part over the micro-batches of a step into the task's one buffer: the first
 * copied, the others added; the runtime sends the sum to the variable after the step's last (a
 * gathering actor). */
static loom_status acc_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    const token *in = a->in[0];
    token *out = a->out[0];
    if (a->piece % x->pl->micro == 0) {
        out->v = in->v;
        out->v.data = out->base;
        memcpy(out->base, in->v.data, (size_t)loom__numel(&in->v) * loom_dtype_size(in->v.dtype));
        loom__exec_copy_dims(out, in);
        return LOOM_OK;
    }
    return add_into(x, a, loom__task_tensor(x->pl, &x->pl->task[c->task]), &out->v, &in->v);
}

int loom__exec_keeps(const loom__exec *x, const loom_tensor *t, int64_t piece)
{
    return (t->id == x->pl->loss && x->pl->mode == LOOM_RUN_STEP) || x->last_piece < 0 ||
           loom__exec_step_of(x, piece) == loom__exec_step_of(x, x->last_piece);
}

/* Copies value v into block i along axis ax of whole (whose axis ax holds the blocks one after
 * another, each as long as v's). */
static void put_block(loom__value *whole, const loom__value *v, int ax, int64_t i)
{
    int64_t outer = 1, inner = (int64_t)loom_dtype_size(v->dtype), n = v->shape[ax];
    for (int d = 0; d < ax; d++)
        outer *= v->shape[d];
    for (int d = ax + 1; d < v->ndim; d++)
        inner *= v->shape[d];
    for (int64_t o = 0; o < outer; o++)
        memcpy((char *)whole->data + (o * whole->shape[ax] + i * n) * inner, (const char *)v->data + o * n * inner,
               (size_t)(n * inner));
}

/* A kept value at a piece of a step cut into micro-batches, from the piece's parts (shape: the
 * micro-batch's logical shape): a value along the batch is the step's micro-batches one after
 * another; a float one without it is the mean of the micro-batches' in the forward pass (the loss:
 * a mean over the batch) and their sum in the backward pass (gradients, seeded with 1 / m); any
 * other is the last micro-batch's. The loss history takes the step's loss after its last one.
 * Parts are joined into the host's scratch (sinks share the host's one thread) unless they can go
 * in place. */
static loom_status sink_micro(loom__exec *x, loom__act *a, const loom__task *k, const loom_tensor *t,
                              const loom__value *const *parts, const int64_t *shape)
{
    loom__exec_env *e = x->env;
    const loom__plan *pl = x->pl;
    const int m = pl->micro, i = (int)(a->piece % m), flt = t->dtype == LOOM_F32 || t->dtype == LOOM_F64;
    int ax = -1;
    for (int d = 0; d < t->shape.ndim && ax < 0; d++)
        if (loom__dyn_index(pl->g, t->shape.d[d]) == pl->mb_dim)
            ax = d;
    int64_t whole[LOOM_MAX_DIMS];
    memcpy(whole, shape, sizeof whole);
    if (ax >= 0)
        whole[ax] *= m;
    if (i == 0) {
        loom_status s = e->reserve(e->owner, t->id, t->dtype, t->shape.ndim, whole);
        if (s != LOOM_OK)
            return snprintf(a->msg, a->msg_size, "no memory to keep '%s'", loom_tensor_name(t)), s;
    }
    loom__value *v = &e->val[t->id], one = {.dtype = t->dtype, .ndim = t->shape.ndim};
    memcpy(one.shape, shape, sizeof one.shape);
    const size_t bytes = (size_t)loom__numel(&one) * loom_dtype_size(t->dtype);
    if (ax == 0) /* rows i * r .. of the step's */
        one.data = (char *)v->data + (size_t)i * bytes;
    else if (ax < 0 && (i == 0 || !flt))
        one.data = v->data;
    else if (bytes > x->sink_cap) {
        void *b = realloc(x->sink_scratch, bytes);
        if (!b)
            return snprintf(a->msg, a->msg_size, "no memory to keep '%s'", loom_tensor_name(t)), LOOM_ERR_NOMEM;
        x->sink_scratch = b, x->sink_cap = bytes;
    }
    if (!one.data)
        one.data = x->sink_scratch;
    loom__part_join(parts, pl->regst[k->in[0]].sbp, k->n_in, &one);
    if (ax > 0)
        put_block(v, &one, ax, i);
    else if (ax < 0 && flt && i > 0) {
        loom_status s = add_into(x, a, t, v, &one);
        if (s != LOOM_OK)
            return s;
    }
    const int loss = t->id == pl->loss && pl->mode == LOOM_RUN_STEP;
    if (loss) {
        double l = t->dtype == LOOM_F32 ? ((const float *)one.data)[0] : ((const double *)one.data)[0];
        x->loss_sum = i == 0 ? l : x->loss_sum + l;
    }
    if (i < m - 1)
        return LOOM_OK;
    if (ax < 0 && flt && t->id < pl->passes.fwd_end) { /* a mean over the step's micro-batches */
        for (int64_t j = 0, n = loom__numel(v); j < n; j++) {
            if (t->dtype == LOOM_F32)
                ((float *)v->data)[j] /= (float)m;
            else
                ((double *)v->data)[j] /= m;
        }
    }
    e->ready[t->id] = 1;
    if (loss) {
        double l = x->loss_sum / m;
        if (t->dtype == LOOM_F32)
            ((float *)v->data)[0] = (float)l;
        else
            ((double *)v->data)[0] = l;
        if (e->loss(e->owner, l) != LOOM_OK)
            return snprintf(a->msg, a->msg_size, "no memory for the loss history"), LOOM_ERR_NOMEM;
    }
    return LOOM_OK;
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
    if (x->pl->micro > 1)
        return sink_micro(x, a, k, t, parts, shape);
    loom_status s = e->reserve(e->owner, t->id, t->dtype, t->shape.ndim, shape);
    if (s != LOOM_OK) {
        snprintf(a->msg, a->msg_size, "no memory to keep '%s'", loom_tensor_name(t));
        return s;
    }
    loom__lay l = loom__regst_lay(&x->pl->regst[k->in[0]]);
    if (l.s.n > 1 && ranged_axis(x->pl->g, t, &l, a->in[0]) >= 0) /* parts fed by parts: one after another */
        flat_lay(x->pl->g, t, a->in[0], &l);
    if (loom__lay_join(parts, &l, &e->val[t->id])) {
        snprintf(a->msg, a->msg_size, "no memory to keep '%s'", loom_tensor_name(t));
        return LOOM_ERR_NOMEM;
    }
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
        return loom__exec_source_act;
    case LOOM__TASK_VARIABLE:
        return variable_act;
    case LOOM__TASK_COMPUTE:
        return compute_act;
    case LOOM__TASK_BOXING:
    case LOOM__TASK_MOVE:
        return boxing_act;
    case LOOM__TASK_SINK:
        return sink_act;
    case LOOM__TASK_ACC:
        return acc_act;
    default:
        return NULL;
    }
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
