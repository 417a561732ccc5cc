/* The actors of a plan: source, variable, compute and sink tasks on the runtime (see exec.h).
 *
 * Threads: the compute chain and the variables run on the device's stream 0, the source on
 * stream 1 (so loading overlaps compute), sinks on stream 2. The chain is closed by a token actor
 * that hands the last task's control output back to the first task one piece later: a device runs
 * one piece at a time, in the plan's order, which is what the lifetime-shared memory relies on. */
#include "actors/exec.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

enum { STREAM_DEVICE = 0, STREAM_SOURCE = 1, STREAM_HOST = 2 };

/* What travels in a register buffer: the value's real sizes and where its data lives. */
typedef struct token {
    loom__value v;
    char *base; /* the buffer in the arena (a source fed from the program points v elsewhere) */
    int has_dims;
    int64_t dims[LOOM__MAX_DYN];
} token;

typedef struct actor_ctx {
    struct loom__exec *x;
    int task;
} actor_ctx;

struct loom_feeder {
    struct loom__exec *x;
    void *const *out; /* the source's output tokens, one per input */
    int64_t step;
};

struct loom__exec {
    loom_program *p;
    loom__plan *pl;
    loom__rt *rt;
    void *arena;
    token **tok;      /* by register: regst_num tokens */
    void ***bufs;     /* by register: pointers to its tokens, as the runtime takes them */
    uint64_t *aid;    /* by task */
    actor_ctx *ctx;   /* by task */
    int *input_task;  /* by tensor id: the source output index of an input, or -1 */
};

const loom__plan *loom__exec_plan(const loom__exec *x) { return x->pl; }
void loom__exec_cancel(loom__exec *x) { loom__rt_cancel(x->rt); }
loom__rt *loom__exec_runtime(loom__exec *x) { return x->rt; }

/* ---- values ------------------------------------------------------------------------------------ */

/* Points a token of a CSR register at its three parts inside the buffer. */
static void csr_layout(token *k, char *base, int64_t nrows, int64_t nnz, loom_dtype vdtype)
{
    size_t a = ((size_t)(nrows + 1) * sizeof(int32_t) + 63) / 64 * 64, b = ((size_t)nnz * sizeof(int32_t) + 63) / 64 * 64;
    k->v.rowptr = (int32_t *)base;
    k->v.col = (int32_t *)(base + a);
    k->v.data = base + a + b;
    k->v.nnz = nnz;
    k->v.dtype = vdtype;
}

/* The concrete shape of t given a piece's dims; -1 in bad with the dim when one is unbound. */
static int resolve(const loom_graph *g, const loom_tensor *t, const token *dims_from, int64_t *shape)
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

/* ---- acts -------------------------------------------------------------------------------------- */

static loom_status compute_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    const loom__task *k = &x->pl->task[c->task];
    const loom_tensor *t = k->t;
    const loom_op_def *def = loom__op_def(t->op);
    loom__value *src[LOOM__MAX_SRC];
    const token *dims = NULL;
    for (int i = 0; i < t->n_src; i++) {
        token *in = a->in[i];
        src[i] = &in->v;
        if (!dims && in->has_dims)
            dims = in;
    }
    token *out = a->out[0];
    int64_t shape[LOOM_MAX_DIMS] = {0};
    int unbound = resolve(x->p->g, t, dims, shape);
    if (unbound >= 0) {
        snprintf(a->msg, a->msg_size, "needs dynamic dim %s, which no fed input carries", x->p->g->dyn[unbound].name);
        return LOOM_ERR_SHAPE;
    }
    out->v.ndim = t->shape.ndim;
    memcpy(out->v.shape, shape, sizeof shape);
    out->has_dims = dims != NULL;
    if (dims)
        memcpy(out->dims, dims->dims, sizeof out->dims);
    loom__kctx kc = {.step = x->pl->mode == LOOM_RUN_STEP ? a->piece : x->p->step,
                     .training = x->pl->mode != LOOM_RUN_EVAL,
                     .seed = x->p->g->seed,
                     .msg = a->msg,
                     .msglen = a->msg_size};
    return def->cpu(t, &out->v, src, &kc);
}

static loom_status variable_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    const loom__task *k = &x->pl->task[c->task];
    loom_program *p = x->p;
    token *out = a->out[0];
    if (k->update && !a->initial) {
        /* version piece+1 = update(version piece, gradient of piece): every reader of the old
         * version has acked it, or the runtime would not have given this act a free buffer */
        const loom_tensor *u = k->update;
        loom__value *src[LOOM__MAX_SRC];
        for (int i = 0; i < u->n_src; i++)
            src[i] = &p->val[u->src[i]->id];
        src[1] = &((token *)a->in[0])->v;
        loom__kctx kc = {.step = a->piece, .training = 1, .seed = p->g->seed, .msg = a->msg, .msglen = a->msg_size};
        loom_status s = loom__op_def(u->op)->cpu(u, NULL, src, &kc);
        if (s != LOOM_OK)
            return s;
    }
    out->v = p->val[k->t->id];
    out->has_dims = 0;
    return LOOM_OK;
}

/* Fills the step's input tokens from the data last fed (no copy: the tokens point at it). */
static loom_status source_static(loom__exec *x, loom__act *a)
{
    loom_program *p = x->p;
    for (int id = 0, j = 0; id < p->fwd_end; id++) {
        if (x->input_task[id] < 0)
            continue;
        token *k = a->out[j++];
        k->v = p->val[id];
    }
    return LOOM_OK;
}

/* Binds the dynamic dims of a step from its inputs (they must agree) and stamps every token. */
static loom_status stamp_dims(loom__exec *x, loom__act *a)
{
    loom_graph *g = x->p->g;
    int64_t dims[LOOM__MAX_DYN];
    int from[LOOM__MAX_DYN];
    for (int k = 0; k < LOOM__MAX_DYN; k++)
        dims[k] = -1, from[k] = -1;
    for (int id = 0, j = 0; id < x->p->fwd_end; id++) {
        if (x->input_task[id] < 0)
            continue;
        const token *k = a->out[j++];
        const loom_tensor *t = g->t[id];
        for (int i = 0; i < t->shape.ndim; i++) {
            int d = loom__dyn_index(g, t->shape.d[i]);
            if (d < 0)
                continue;
            if (from[d] < 0) {
                from[d] = id;
                dims[d] = k->v.shape[i];
            } else if (dims[d] != k->v.shape[i]) {
                snprintf(a->msg, a->msg_size, "dynamic dim %s is %" PRId64 " in input '%s' but %" PRId64 " in input '%s'",
                         g->dyn[d].name, k->v.shape[i], t->name, dims[d], g->t[from[d]]->name);
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

static loom_status source_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    loom_program *p = x->p;
    loom_status s;
    if (p->source) {
        loom_feeder f = {.x = x, .out = a->out, .step = a->piece};
        for (int j = 0; j < x->pl->task[0].n_out; j++)
            ((token *)a->out[j])->v.ndim = -1; /* not fed yet */
        int end = 0;
        s = p->source(p->source_ctx, a->piece, &f, &end, a->msg, a->msg_size);
        if (s != LOOM_OK)
            return s;
        if (end) {
            a->eod = 1;
            return LOOM_OK;
        }
        for (int id = 0, j = 0; id < p->fwd_end; id++)
            if (x->input_task[id] >= 0 && ((token *)a->out[j++])->v.ndim < 0) {
                snprintf(a->msg, a->msg_size, "the source fed no data to input '%s'", p->g->t[id]->name);
                return LOOM_ERR_INVALID;
            }
    } else {
        s = source_static(x, a);
        if (s != LOOM_OK)
            return s;
    }
    return stamp_dims(x, a);
}

static loom_status sink_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    loom_program *p = x->p;
    const loom_tensor *t = x->pl->task[c->task].t;
    const token *in = a->in[0];
    loom_status s = loom__value_reserve(p, t->id, in->v.dtype, in->v.ndim, in->v.shape);
    if (s != LOOM_OK) {
        snprintf(a->msg, a->msg_size, "no memory to keep '%s'", loom_tensor_name(t));
        return s;
    }
    memcpy(p->val[t->id].data, in->v.data, (size_t)loom__numel(&in->v) * loom_dtype_size(in->v.dtype));
    p->ready[t->id] = 1;
    if (t == p->loss && x->pl->mode == LOOM_RUN_STEP) {
        if (p->nlosses == p->losses_cap) {
            int64_t cap = p->losses_cap ? 2 * p->losses_cap : 256;
            double *l = realloc(p->losses, (size_t)cap * sizeof *l);
            if (!l) {
                snprintf(a->msg, a->msg_size, "no memory for the loss history");
                return LOOM_ERR_NOMEM;
            }
            p->losses = l;
            p->losses_cap = cap;
        }
        p->losses[p->nlosses++] = in->v.dtype == LOOM_F32 ? ((float *)in->v.data)[0] : ((double *)in->v.data)[0];
    }
    return LOOM_OK;
}

/* ---- feeding from a source --------------------------------------------------------------------- */

static loom_status feeder_slot(loom_feeder *f, loom_tensor *t, loom__layout layout, token **k, loom__regst **rg)
{
    loom__exec *x = f->x;
    if (!t || t->graph != x->p->g || t->id >= x->p->fwd_end || x->input_task[t->id] < 0 || t->layout != layout)
        return LOOM_ERR_INVALID;
    int j = x->input_task[t->id];
    *k = f->out[j];
    *rg = &x->pl->regst[x->pl->task[0].out[j]];
    return LOOM_OK;
}

loom_status loom_feeder_dense(loom_feeder *f, loom_tensor *input, const loom_array *a)
{
    token *k;
    loom__regst *rg;
    if (!f || !a || feeder_slot(f, input, LOOM__DENSE, &k, &rg) != LOOM_OK || a->dtype != input->dtype ||
        a->ndim != input->shape.ndim)
        return LOOM_ERR_INVALID;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] < 0 || a->shape[i] > loom__dim_bound(f->x->p->g, input->shape.d[i]) ||
            (loom__dyn_index(f->x->p->g, input->shape.d[i]) < 0 && a->shape[i] != input->shape.d[i]))
            return LOOM_ERR_SHAPE;
    size_t bytes = (size_t)loom_array_numel(a) * loom_dtype_size(a->dtype);
    if (bytes > rg->bytes)
        return LOOM_ERR_SHAPE;
    k->v = (loom__value){.dtype = a->dtype, .data = k->base};
    memcpy(k->v.data, a->data, bytes);
    k->v.ndim = a->ndim;
    memcpy(k->v.shape, a->shape, sizeof k->v.shape);
    return LOOM_OK;
}

loom_status loom_feeder_csr(loom_feeder *f, loom_tensor *input, const loom_csr *m)
{
    token *k;
    loom__regst *rg;
    if (!f || !m || feeder_slot(f, input, LOOM__CSR, &k, &rg) != LOOM_OK || m->vdtype != input->dtype)
        return LOOM_ERR_INVALID;
    if (loom_csr_validate(m, NULL) != LOOM_OK)
        return LOOM_ERR_FORMAT;
    if (loom__csr_bytes(m->nrows, m->nnz, m->vdtype) > rg->bytes || m->nrows > loom__dim_bound(f->x->p->g, input->shape.d[0]) ||
        m->ncols > loom__dim_bound(f->x->p->g, input->shape.d[1]))
        return LOOM_ERR_SHAPE;
    csr_layout(k, k->base, m->nrows, m->nnz, m->vdtype);
    memcpy(k->v.rowptr, m->rowptr, (size_t)(m->nrows + 1) * sizeof(int32_t));
    memcpy(k->v.col, m->col, (size_t)m->nnz * sizeof(int32_t));
    memcpy(k->v.data, m->val, (size_t)m->nnz * loom_dtype_size(m->vdtype));
    k->v.ndim = 2;
    k->v.shape[0] = m->nrows;
    k->v.shape[1] = m->ncols;
    return LOOM_OK;
}

/* ---- building ---------------------------------------------------------------------------------- */

void loom__exec_free(loom__exec *x)
{
    if (!x)
        return;
    loom__rt_free(x->rt);
    for (int r = 0; x->tok && r < x->pl->nregst; r++) {
        free(x->tok[r]);
        free(x->bufs[r]);
    }
    free(x->tok);
    free(x->bufs);
    free(x->aid);
    free(x->ctx);
    free(x->input_task);
    free(x->arena);
    loom__plan_free(x->pl);
    free(x);
}

static loom__exec *fail(loom__exec *x, loom_status s, const char *what)
{
    loom__program_fail(x->p, s, "loom_program_run: %s", what);
    loom__exec_free(x);
    return NULL;
}

loom__exec *loom__exec_new(loom_program *p, loom__plan *pl)
{
    loom__exec *x = calloc(1, sizeof *x);
    if (!x) {
        loom__plan_free(pl);
        loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
        return NULL;
    }
    x->p = p;
    x->pl = pl;
    if (p->g->ndyn > LOOM__MAX_DYN)
        return fail(x, LOOM_ERR_UNSUPPORTED, "more than 16 dynamic dims in one graph");
    size_t arena = pl->shared_bytes + pl->own_bytes;
    if (posix_memalign(&x->arena, 64, arena ? arena : 64))
        return x->arena = NULL, fail(x, LOOM_ERR_NOMEM, "no memory for the plan's registers");
    x->tok = calloc((size_t)pl->nregst + 1, sizeof *x->tok);
    x->bufs = calloc((size_t)pl->nregst + 1, sizeof *x->bufs);
    x->aid = calloc((size_t)pl->ntasks + 1, sizeof *x->aid);
    x->ctx = calloc((size_t)pl->ntasks + 1, sizeof *x->ctx);
    x->input_task = malloc((size_t)p->n * sizeof *x->input_task);
    loom__rt_opts ro = LOOM__RT_OPTS_INIT;
    ro.trace_record = p->trace_record;
    x->rt = loom__rt_new(&ro);
    if (!x->tok || !x->bufs || !x->aid || !x->ctx || !x->input_task || !x->rt)
        return fail(x, LOOM_ERR_NOMEM, "out of memory");
    for (int id = 0; id < p->n; id++)
        x->input_task[id] = -1;
    for (int j = 0; j < pl->task[0].n_out; j++)
        x->input_task[pl->regst[pl->task[0].out[j]].tensor] = j;

    /* register buffers: tokens pointing into the arena */
    for (int r = 0; r < pl->nregst; r++) {
        const loom__regst *rg = &pl->regst[r];
        const loom_tensor *t = p->g->t[rg->tensor];
        x->tok[r] = calloc((size_t)rg->regst_num, sizeof **x->tok);
        x->bufs[r] = calloc((size_t)rg->regst_num, sizeof **x->bufs);
        if (!x->tok[r] || !x->bufs[r])
            return fail(x, LOOM_ERR_NOMEM, "out of memory");
        for (int b = 0; b < rg->regst_num; b++) {
            token *k = &x->tok[r][b];
            char *base = (char *)x->arena + rg->offset + (rg->shared ? 0 : (size_t)b * rg->bytes);
            k->v.dtype = t->dtype;
            k->base = base;
            if (t->layout == LOOM__CSR)
                csr_layout(k, base, p->val[t->id].shape[0], p->val[t->id].nnz, t->dtype);
            else
                k->v.data = base;
            x->bufs[r][b] = k;
        }
    }

    /* actors: ids dense per stream */
    int ntask_stream[3] = {0, 0, 0};
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        int stream = k->kind == LOOM__TASK_SOURCE ? STREAM_SOURCE : k->kind == LOOM__TASK_SINK ? STREAM_HOST : STREAM_DEVICE;
        x->aid[i] = loom__aid(0, LOOM__RT_DEV_CPU, 0, (unsigned)stream, (unsigned)ntask_stream[stream]++);
    }
    uint64_t token_aid = loom__aid(0, LOOM__RT_DEV_CPU, 0, STREAM_DEVICE, (unsigned)ntask_stream[STREAM_DEVICE]++);
    int first = -1, last = -1;
    for (int i = 0; i < pl->ntasks; i++)
        if (pl->task[i].kind == LOOM__TASK_COMPUTE) {
            if (first < 0)
                first = i;
            last = i;
        }

    char name[96];
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        x->ctx[i] = (actor_ctx){.x = x, .task = i};
        /* compute tasks: + a control output to the next in the chain, + control input(s) from the
         * previous (the chain head: from the token and from the source, which drives the chain
         * even when no data flows from it); the source: + its control output */
        int chain = k->kind == LOOM__TASK_COMPUTE || (k->kind == LOOM__TASK_SOURCE && first >= 0);
        int nout = k->n_out + chain, nin = k->n_in + (k->kind == LOOM__TASK_COMPUTE) + (i == first);
        loom__regst_desc *outs = calloc((size_t)nout + 1, sizeof *outs);
        if (!outs)
            return fail(x, LOOM_ERR_NOMEM, "out of memory");
        for (int j = 0; j < k->n_out; j++)
            outs[j] = (loom__regst_desc){.regst_num = pl->regst[k->out[j]].regst_num, .bufs = x->bufs[k->out[j]]};
        if (chain)
            outs[k->n_out] = (loom__regst_desc){.regst_num = k->kind == LOOM__TASK_SOURCE ? p->regst_num : 1, .bufs = NULL};
        static const char *const kinds[] = {"source", "variable", "", "sink"};
        if (k->kind == LOOM__TASK_COMPUTE)
            snprintf(name, sizeof name, "%s %s", loom__op_def(k->t->op)->name, loom_tensor_name(k->t));
        else
            snprintf(name, sizeof name, "%s%s%s", kinds[k->kind], k->t ? " " : "", k->t ? loom_tensor_name(k->t) : "");
        loom__actor_desc d = {
            .id = x->aid[i],
            .name = name,
            .act = k->kind == LOOM__TASK_SOURCE     ? source_act
                   : k->kind == LOOM__TASK_VARIABLE ? variable_act
                   : k->kind == LOOM__TASK_COMPUTE  ? compute_act
                                                    : sink_act,
            .ctx = &x->ctx[i],
            .nin = nin,
            .nout = nout,
            .out = outs,
            .initial_emits = k->kind == LOOM__TASK_VARIABLE && k->n_in > 0,
        };
        loom_status s = loom__rt_add_actor(x->rt, &d);
        free(outs);
        if (s != LOOM_OK)
            return fail(x, s, loom__rt_error(x->rt));
    }
    if (first >= 0) {
        loom__regst_desc ctl = {.regst_num = 1, .bufs = NULL};
        loom__actor_desc d = {.id = token_aid, .name = "chain token", .nin = 1, .nout = 1, .out = &ctl, .initial_emits = 1};
        if (loom__rt_add_actor(x->rt, &d) != LOOM_OK)
            return fail(x, LOOM_ERR_RUNTIME, loom__rt_error(x->rt));
    }

    /* edges: data, then the chain's control ring */
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        for (int s = 0; s < k->n_in; s++) {
            int r = k->in[s], prod = pl->regst[r].producer, reg = -1;
            for (int j = 0; j < pl->task[prod].n_out; j++)
                if (pl->task[prod].out[j] == r)
                    reg = j;
            loom__rt_connect(x->rt, x->aid[prod], reg, x->aid[i], s);
        }
    }
    int prev = -1;
    for (int i = 0; i < pl->ntasks; i++) {
        if (pl->task[i].kind != LOOM__TASK_COMPUTE)
            continue;
        int ctl_in = pl->task[i].n_in;
        if (prev < 0) {
            loom__rt_connect(x->rt, token_aid, 0, x->aid[i], ctl_in);
            loom__rt_connect(x->rt, x->aid[0], pl->task[0].n_out, x->aid[i], ctl_in + 1);
        }
        else
            loom__rt_connect(x->rt, x->aid[prev], pl->task[prev].n_out, x->aid[i], ctl_in);
        prev = i;
    }
    if (last >= 0 && loom__rt_connect(x->rt, x->aid[last], pl->task[last].n_out, token_aid, 0) != LOOM_OK)
        return fail(x, LOOM_ERR_RUNTIME, loom__rt_error(x->rt));
    return x;
}

loom_status loom__exec_run(loom__exec *x, int64_t pieces)
{
    loom_program *p = x->p;
    /* what this plan keeps is recomputed; values kept by other modes' runs stay, as with the
     * reference executor */
    for (int id = 0; id < p->n; id++)
        if (x->pl->kept[id])
            p->ready[id] = 0;
    if (!p->source)
        for (int id = 0; id < p->fwd_end; id++)
            if (x->input_task[id] >= 0 && !p->ready[id])
                return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_run: input '%s' was not fed", p->g->t[id]->name);
    loom_status s = loom__rt_run(x->rt, pieces);
    if (s != LOOM_OK)
        return loom__program_fail(p, s, "loom_program_run: %s", loom__rt_error(x->rt));
    return LOOM_OK;
}
