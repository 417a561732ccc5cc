/* The executor on GPUs: device memory carved from one allocation per device, kernels launched on
 * the device's compute stream, copies on streams of their own (see exec_internal.h; a chain run
 * as one actor, replayed from CUDA graphs, is cuda_graphs.c's).
 *
 * Ordering without blocking: every chain task and variable of a device launches on its compute
 * stream, so stream order is their order and they complete at once (their REQs and ACKs go out
 * when the launch is queued). A copy to the device (a data source's piece) waits, on its own
 * stream, for the event its buffer's readers recorded after their launches, and completes when a
 * host function reports the copy done; a copy to the host waits for the event the buffer's writer
 * recorded and completes the same way, with the device's error record copied beside the value.
 * The worker threads never wait for a GPU. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actors/devices/cuda_internal.h"
#include "runtime/comm/nccl/nccl.h"

enum { BLAS_WORKSPACE = 32 << 20 };

static _Thread_local int current_device = -1;

loom_status loom__exec_cuda_on_device(int index, char *msg, size_t len)
{
    if (current_device == index)
        return LOOM_OK;
    loom_status s = loom__cuda_set_device(index, msg, len);
    if (s == LOOM_OK)
        current_device = index;
    return s;
}

void loom__exec_cuda_forget_device(void) { current_device = -1; }

static loom_status new_event(loom__exec_cuda *c, void **ev, char *msg, size_t len)
{
    if (c->nevents == c->cap_events) {
        int cap = c->cap_events ? 2 * c->cap_events : 64;
        void **e = realloc(c->events, (size_t)cap * sizeof *e);
        if (!e)
            return LOOM_ERR_NOMEM;
        c->events = e;
        c->cap_events = cap;
    }
    loom_status s = loom__cuda_event_new(ev, msg, len);
    if (s == LOOM_OK)
        c->events[c->nevents++] = *ev;
    return s;
}

/* ---- acts -------------------------------------------------------------------------------------- */

static void copy_done(void *arg)
{
    completion *c = arg;
    loom__rt_complete(c->rt, c->aid, LOOM_OK, NULL);
}

loom_status loom__exec_cuda_complete_after(loom__exec *x, loom__act *a, int task, void *stream)
{
    loom_status s = loom__act_defer(a);
    if (s != LOOM_OK)
        return s;
    x->cuda->done[task] = (completion){.rt = x->rt, .aid = a->id};
    s = loom__cuda_host_fn(stream, copy_done, &x->cuda->done[task], a->msg, a->msg_size);
    if (s != LOOM_OK) /* the act was deferred: its completion must still come */
        loom__rt_complete(x->rt, a->id, s, a->msg);
    return LOOM_OK;
}

loom__kctx loom__exec_cuda_kernel_ctx(const loom__exec *x, const loom__kctx *from, int task, loom__cuda_kctx *cc)
{
    *cc = x->cuda->d[x->pl->task[task].device].kc;
    cc->tag = task;
    loom__kctx kc = *from;
    kc.cuda = cc;
    return kc;
}

loom_status loom__exec_cuda_mark_events(loom__act *a, int nin, int nout, void *stream)
{
    for (int i = 0; i < nin; i++) {
        const token *in = a->in[i];
        if (in && in->ev_r && loom__cuda_event_record(in->ev_r, stream, a->msg, a->msg_size) != LOOM_OK)
            return LOOM_ERR_RUNTIME;
    }
    for (int j = 0; j < nout; j++) {
        const token *out = a->out[j];
        if (out->ev_w && loom__cuda_event_record(out->ev_w, stream, a->msg, a->msg_size) != LOOM_OK)
            return LOOM_ERR_RUNTIME;
    }
    return LOOM_OK;
}

/* Launches op t of a task on its device's compute stream with the numerics check after it (an
 * update's on the parameter it wrote, src[0]); a compute task or an update then marks the events
 * of its buffers that other streams (a copy, another device's move) use. */
static loom_status cuda_kernel(loom__exec *x, loom__act *a, int task, const loom_tensor *t, loom__value *out,
                               loom__value *const *src, const loom__kctx *from)
{
    const loom__task *k = &x->pl->task[task];
    loom_status s = loom__exec_cuda_on_device(x->pl->dev_index[k->device], a->msg, a->msg_size);
    if (s != LOOM_OK)
        return s;
    loom__cuda_kctx cc;
    loom__kctx kc = loom__exec_cuda_kernel_ctx(x, from, task, &cc);
    s = loom__cuda_op_get(t->op)->run(t, out, src, &kc);
    if (s == LOOM_OK && x->env->check_numerics)
        s = loom__cuda_check_finite(out ? out : src[0], &kc);
    if (s != LOOM_OK || (k->kind != LOOM__TASK_COMPUTE && k->kind != LOOM__TASK_VARIABLE))
        return s;
    return loom__exec_cuda_mark_events(a, k->n_in, k->n_out, cc.stream);
}

/* The bytes a token's value spans from its base: a CSR value's three parts, or a dense one. */
static size_t span(const token *k)
{
    if (k->v.rowptr)
        return loom__csr_bytes(k->v.shape[0], k->v.nnz, k->v.dtype);
    return (size_t)loom__numel(&k->v) * loom_dtype_size(k->v.dtype);
}

/* A value's metadata onto another buffer of the same layout. */
static void retarget(token *out, const token *in)
{
    char *base = out->base;
    void *ev_w = out->ev_w, *ev_r = out->ev_r;
    loom__cuda_err *err = out->err;
    *out = *in;
    out->base = base;
    out->ev_w = ev_w;
    out->ev_r = ev_r;
    out->err = err;
    if (in->v.rowptr)
        loom__exec_csr_layout(out, base, in->v.shape[0], in->v.nnz, in->v.dtype);
    else
        out->v.data = base;
}

static loom_status gpu_copy_act(void *vctx, loom__act *a)
{
    actor_ctx *c = vctx;
    loom__exec *x = c->x;
    const loom__task *k = &x->pl->task[c->task];
    dev_state *ds = &x->cuda->d[k->device];
    const token *in = a->in[0];
    token *out = a->out[0];
    if (k->dir == LOOM__D2H && !loom__exec_keeps(x, loom__task_tensor(x->pl, k), a->piece))
        return LOOM_OK; /* the sink takes nothing of this piece */
    loom_status s = loom__exec_cuda_on_device(ds->dev.index, a->msg, a->msg_size);
    if (s != LOOM_OK)
        return s;
    void *stream = ds->dev.stream[k->dir == LOOM__H2D ? LOOM__CUDA_H2D : LOOM__CUDA_D2H];
    /* to the device: the buffer's readers of the last piece are done; to the host: its writer is */
    void *wait = k->dir == LOOM__H2D ? out->ev_r : in->ev_w;
    if (wait && (s = loom__cuda_stream_wait(stream, wait, a->msg, a->msg_size)) != LOOM_OK)
        return s;
    if (in->v.rowptr && in->base != (char *)in->v.rowptr) {
        snprintf(a->msg, a->msg_size, "a sparse value outside its buffer (internal error)");
        return LOOM_ERR_RUNTIME;
    }
    retarget(out, in);
    s = loom__cuda_copy_async(out->base, in->base ? in->base : in->v.data, span(in), stream, a->msg, a->msg_size);
    if (s == LOOM_OK && k->dir == LOOM__D2H)
        s = loom__cuda_copy_async(out->err, ds->dev.err, sizeof *out->err, stream, a->msg, a->msg_size);
    if (s != LOOM_OK)
        return s;
    return loom__exec_cuda_complete_after(x, a, c->task, stream);
}


static loom__act_fn cuda_own_act(const loom__task *k)
{
    return k->kind == LOOM__TASK_COPY ? gpu_copy_act : k->kind == LOOM__TASK_MOVE ? loom__exec_cuda_move_act : NULL;
}

/* A copy, or a move from other GPUs, completes when its transfer is done (its buffers' writers may
 * overwrite them then). */
static int cuda_deferred(const loom__task *k) { return k->kind == LOOM__TASK_COPY || k->kind == LOOM__TASK_MOVE ? 8 : 0; }

/* Copies run on streams of their own: to the device on 1, to the host on 2. */
static unsigned cuda_stream_of(const loom__task *k)
{
    return k->kind == LOOM__TASK_COPY ? (k->dir == LOOM__H2D ? 1u : 2u) : 0u;
}

/* ---- setting up -------------------------------------------------------------------------------- */

/* Bytes of kernel scratch device d's tasks need at most, asked of each op with kc, the context its
 * kernels will run with (kernels that choose algorithms on the device's handles choose here). */
static size_t workspace_of(const loom__exec *x, int d, const loom__cuda_kctx *kc)
{
    const loom__plan *pl = x->pl;
    size_t most = 0;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        const loom_tensor *t = k->kind == LOOM__TASK_COMPUTE ? loom__task_tensor(pl, k) : loom__task_update(pl, k);
        if (!t || k->device != d || (k->kind != LOOM__TASK_COMPUTE && k->kind != LOOM__TASK_VARIABLE))
            continue;
        const loom__cuda_op *op = loom__cuda_op_get(t->op);
        int64_t nnz[LOOM__MAX_SRC] = {0};
        for (int s = 0; s < t->n_src; s++)
            nnz[s] = t->src[s]->layout == LOOM__CSR && pl->csr_nnz[t->src[s]->id] > 0 ? pl->csr_nnz[t->src[s]->id] : 0;
        size_t w = op->workspace ? op->workspace(t, nnz, kc) : 0;
        if (w > most)
            most = w;
    }
    return (most + 255) / 256 * 256;
}

/* Every op of the plan has a CUDA kernel, or the plan is refused naming the first that has none;
 * so is boxing the GPUs cannot do. */
static loom_status check_kernels(loom__exec *x)
{
    const loom__plan *pl = x->pl;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        const loom_tensor *t = k->kind == LOOM__TASK_COMPUTE    ? loom__task_tensor(pl, k)
                               : k->kind == LOOM__TASK_VARIABLE ? loom__task_update(pl, k)
                                                                : NULL;
        if (t && !loom__cuda_op_get(t->op)->run)
            return loom__exec_fail(x, LOOM_ERR_UNSUPPORTED, "loom_program_run: %s '%s' has no CUDA kernel yet",
                                      loom__op_def(t->op)->name, loom_tensor_name(t));
    }
    return loom__exec_cuda_check_boxing(x);
}

static loom_status cuda_open(loom__exec *x)
{
    const loom__plan *pl = x->pl;
    char msg[512];
    loom_status s = check_kernels(x);
    if (s != LOOM_OK)
        return s;
    loom__exec_cuda *c = calloc(1, sizeof *c);
    if (!c)
        return LOOM_ERR_NOMEM;
    x->cuda = c;
    const char *det = getenv("LOOM_DETERMINISTIC");
    c->deterministic = det && det[0] && strcmp(det, "0") != 0;
    c->d = calloc((size_t)x->n, sizeof *c->d);
    c->done = calloc((size_t)pl->ntasks + 1, sizeof *c->done);
    c->scratch = calloc((size_t)x->n, sizeof *c->scratch);
    c->scratch_bytes = calloc((size_t)x->n, sizeof *c->scratch_bytes);
    if (!c->d || !c->done || !c->scratch || !c->scratch_bytes)
        return LOOM_ERR_NOMEM;
    for (int d = 0; d < x->n; d++) {
        dev_state *ds = &c->d[d];
        const loom__dev_mem *m = &pl->mem[d];
        if (!loom__exec_dev_here(x, d))
            continue; /* another rank's */
        if ((s = loom__cuda_dev_open(pl->dev_index[d], &ds->dev, msg, sizeof msg)) != LOOM_OK)
            return loom__exec_fail(x, s, "loom_program_run: %s", msg);
        ds->kc = (loom__cuda_kctx){.device = ds->dev.index,
                                   .stream = ds->dev.stream[LOOM__CUDA_COMPUTE],
                                   .blas = ds->dev.blas,
                                   .sparse = ds->dev.sparse,
                                   .dnn = ds->dev.dnn,
                                   .err = ds->dev.err,
                                   .deterministic = c->deterministic,
                                   .matmul = x->env->matmul};
        size_t regs = m->shared + m->own, ws = workspace_of(x, d, &ds->kc), box = loom__exec_cuda_box_scratch(x, d);
        size_t total = loom__bytes_add(loom__bytes_add(regs + m->params + m->inputs, ws + BLAS_WORKSPACE + 6 * 256), box);
        if (total == LOOM__PLAN_OVER)
            return loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_run: the plan of cuda:%d is over an int64 byte count", ds->dev.index);
        x->pl->mem[d].scratch = ws + BLAS_WORKSPACE + box;
        size_t off_params = (regs + 255) / 256 * 256, off_inputs = off_params + (m->params + 255) / 256 * 256;
        size_t off_ws = off_inputs + (m->inputs + 255) / 256 * 256, off_blas = off_ws + ws;
        size_t off_box = off_blas + BLAS_WORKSPACE + 256; /* after the step's int64 */
        if ((s = loom__cuda_alloc(ds->dev.index, total, (void **)&ds->block, msg, sizeof msg)) != LOOM_OK)
            return loom__exec_fail(x, s, "loom_program_run: the plan of cuda:%d: %s", ds->dev.index, msg);
        if ((s = loom__cuda_dev_blas_workspace(&ds->dev, ds->block + off_blas, BLAS_WORKSPACE, msg, sizeof msg)) != LOOM_OK)
            return loom__exec_fail(x, s, "loom_program_run: %s", msg);
        x->dev_block[d] = ds->block;
        ds->step_dev = (int64_t *)(ds->block + off_blas + BLAS_WORKSPACE);
        x->param_block[d] = ds->block + off_params;
        ds->inputs = ds->block + off_inputs;
        ds->kc.workspace = ws ? ds->block + off_ws : NULL;
        ds->kc.workspace_bytes = ws;
        c->scratch[d] = box ? ds->block + off_box : NULL;
        c->scratch_bytes[d] = box;
        ds->input_off = calloc((size_t)pl->task[0].n_out + 1, sizeof *ds->input_off);
        if (!ds->input_off)
            return LOOM_ERR_NOMEM;
        size_t at = 0; /* each source output staged here whose part lives on this device */
        for (int o = 0; o < pl->task[0].n_out; o++) {
            const loom__regst *rg = &pl->regst[pl->task[0].out[o]];
            ds->input_off[o] = at;
            if (rg->dom == d)
                at += rg->bytes;
        }
    }
    if ((s = loom__cuda_host_alloc(pl->host_bytes, (void **)&x->host_block, msg, sizeof msg)) != LOOM_OK)
        return loom__exec_fail(x, s, "loom_program_run: pinned host memory of the plan: %s", msg);
    s = loom__exec_cuda_comm_open(x);
    loom__exec_cuda_forget_device(); /* set above without it */
    return s;
}

/* Events for the buffers that cross streams: written on the compute stream and read by a copy to
 * the host (ev_w), or written by a copy to the device and read on the compute stream (ev_r).
 * Called once the tokens exist. */
static loom_status make_events(loom__exec *x)
{
    const loom__plan *pl = x->pl;
    char msg[256];
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if ((k->kind != LOOM__TASK_COPY && k->kind != LOOM__TASK_MOVE) || !loom__exec_dev_here(x, k->device))
            continue;
        /* a move reads its sources' buffers written on their devices' compute streams */
        for (int s = 0; s < (k->kind == LOOM__TASK_MOVE ? k->n_in : 1); s++) {
            int r = k->kind == LOOM__TASK_MOVE ? k->in[s] : k->dir == LOOM__H2D ? k->out[0] : k->in[0];
            int dev = k->kind == LOOM__TASK_MOVE ? pl->regst[r].dom : k->device; /* an event belongs to a device */
            if (loom__exec_cuda_on_device(pl->dev_index[dev], msg, sizeof msg) != LOOM_OK)
                return loom__exec_fail(x, LOOM_ERR_RUNTIME, "loom_program_run: %s", msg);
            for (int b = 0; b < pl->regst[r].regst_num; b++) {
                token *t = &x->tok[r][b];
                void **ev = k->kind == LOOM__TASK_COPY && k->dir == LOOM__H2D ? &t->ev_r : &t->ev_w;
                if (!*ev && new_event(x->cuda, ev, msg, sizeof msg) != LOOM_OK)
                    return loom__exec_fail(x, LOOM_ERR_RUNTIME, "loom_program_run: %s", msg);
            }
        }
    }
    return LOOM_OK;
}

static void cuda_close(loom__exec *x)
{
    loom__exec_cuda *c = x->cuda;
    if (!c)
        return;
    for (int d = 0; x->fused && d < x->n; d++)
        if (x->fused[d])
            loom__exec_cuda_graphs_free(x->fused[d]);
    for (int d = 0; c->d && d < x->n; d++)
        loom__cuda_dev_close(&c->d[d].dev); /* waits for the streams */
    loom__exec_cuda_comm_close(x, c->comm_aborted);
    for (int d = 0; c->d && d < x->n; d++) {
        loom__cuda_free(c->d[d].block);
        free(c->d[d].input_off);
    }
    for (int i = 0; i < c->nevents; i++)
        loom__cuda_event_free(c->events[i]);
    loom__cuda_host_free(x->host_block);
    x->host_block = NULL;
    for (int i = 0; x->stat && i < x->pl->task[0].n_out; i++)
        x->stat[i] = (loom__value){0}; /* device memory of the block */
    free(c->events);
    free(c->done);
    free(c->comm);
    free(c->scratch);
    free(c->scratch_bytes);
    free(c->d);
    free(c);
    x->cuda = NULL;
}

/* ---- running ----------------------------------------------------------------------------------- */

static loom_status cuda_copy(loom__exec *x, void *dst, const void *src, size_t bytes)
{
    char msg[256];
    int d = 0;
    while (d < x->n - 1 && !loom__exec_dev_here(x, d))
        d++; /* any of this rank's devices: the copy goes by unified addresses */
    loom_status s = loom__exec_cuda_on_device(x->cuda->d[d].dev.index, msg, sizeof msg);
    if (s == LOOM_OK)
        s = loom__cuda_copy_sync(dst, src, bytes, msg, sizeof msg);
    return s == LOOM_OK ? s : loom__exec_fail(x, s, "loom_program_run: %s", msg);
}

/* Fed data onto the devices, again only where it was fed since: each part built on the host, then
 * copied into the device's input area, where the source's tokens point. */
static loom_status stage_inputs(loom__exec *x)
{
    loom__exec_env *e = x->env;
    char msg[256];
    if (e->source)
        return LOOM_OK;
    for (int k = 0; k < x->ninputs; k++) {
        int id = x->input_id[k];
        if (x->stat_version[k] == e->feed_version[id])
            continue;
        const loom__value *v = &e->val[id];
        size_t need = v->rowptr ? loom__csr_bytes(v->shape[0], v->nnz, v->dtype) : (size_t)loom__numel(v) * loom_dtype_size(v->dtype);
        token host = {.base = malloc(need + 64)};
        if (!host.base)
            return loom__exec_fail(x, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
        loom_status s = LOOM_OK;
        for (int j = 0; j < x->input_n[k] && s == LOOM_OK; j++) {
            int o = x->input_off[k] + j;
            if (!loom__exec_dev_here(x, x->pl->regst[x->pl->task[0].out[o]].dom))
                continue; /* its rank stages it */
            dev_state *ds = &x->cuda->d[x->pl->regst[x->pl->task[0].out[o]].dom];
            char *at = ds->inputs + ds->input_off[o];
            loom__exec_cut_input(x, v, k, j, &host);
            s = loom__exec_cuda_on_device(ds->dev.index, msg, sizeof msg);
            if (s == LOOM_OK)
                s = loom__cuda_copy_sync(at, host.base, span(&host), msg, sizeof msg);
            token dev = {.base = at};
            retarget(&dev, &host);
            x->stat[o] = dev.v;
        }
        free(host.base);
        if (s != LOOM_OK)
            return loom__exec_fail(x, s, "loom_program_run: input '%s' to the device: %s", x->pl->g->t[id]->name, msg);
        x->stat_version[k] = e->feed_version[id];
    }
    return LOOM_OK;
}

static loom_status cuda_run_begin(loom__exec *x)
{
    loom__exec_cuda *c = x->cuda;
    if (c->nevents == 0) {
        loom_status s = make_events(x);
        if (s != LOOM_OK)
            return s;
    }
    c->drain_ns = 0;
    if (c->comm_aborted) { /* a failed run aborted them */
        c->comm_aborted = 0;
        loom_status s = loom__exec_cuda_comm_open(x);
        if (s != LOOM_OK)
            return s;
    }
    char msg[256];
    static const char zero[LOOM__CUDA_ERR_BYTES];
    for (int d = 0; d < x->n; d++) {
        if (!loom__exec_dev_here(x, d))
            continue;
        loom_status s = loom__exec_cuda_on_device(c->d[d].dev.index, msg, sizeof msg);
        if (s == LOOM_OK)
            s = loom__cuda_copy_sync(c->d[d].dev.err, zero, sizeof zero, msg, sizeof msg);
        if (s != LOOM_OK)
            return loom__exec_fail(x, s, "loom_program_run: %s", msg);
    }
    return stage_inputs(x);
}

static loom_status cuda_err(const loom__exec *x, const loom__cuda_err *e, char *msg, size_t len)
{
    if (e->code == LOOM__CUDA_ERR_NONE)
        return LOOM_OK;
    const char *op = "?", *name = "?";
    const loom_tensor *t = NULL;
    if (e->tag >= 0 && e->tag < x->pl->ntasks) {
        const loom__task *k = &x->pl->task[e->tag];
        t = k->kind == LOOM__TASK_VARIABLE && k->update >= 0 ? loom__task_update(x->pl, k) : loom__task_tensor(x->pl, k);
        op = loom__op_def(t->op)->name;
        name = loom_tensor_name(t);
    }
    if (e->code >= LOOM__CUDA_ERR_NAN && e->code <= LOOM__CUDA_ERR_NEG_INF) {
        const char *what = e->code == LOOM__CUDA_ERR_NAN ? "nan" : e->code == LOOM__CUDA_ERR_INF ? "inf" : "-inf";
        if (t)
            return loom__numerics_fail(&x->pl->passes, t, e->value, e->bound, what, msg, len);
        snprintf(msg, len, "an op made %s (LOOM_CHECK_NUMERICS; task %d unknown)", what, e->tag);
        return LOOM_ERR_RUNTIME;
    }
    snprintf(msg, len, "%s '%s': %s %lld out of range [0, %lld)", op, name,
             e->code == LOOM__CUDA_ERR_LABEL ? "label" : "index", e->value, e->bound);
    return LOOM_ERR_INVALID;
}

static loom_status cuda_run_end(loom__exec *x, loom_status st)
{
    char msg[512];
    st = loom__exec_cuda_comm_end(x, st); /* first: no stream may wait for a collective that never comes */
    for (int d = 0; d < x->n; d++) {
        dev_state *ds = &x->cuda->d[d];
        if (!loom__exec_dev_here(x, d))
            continue;
        loom_status s = loom__exec_cuda_on_device(ds->dev.index, msg, sizeof msg);
        for (int r = 0; r < LOOM__CUDA_STREAM_COUNT && s == LOOM_OK; r++)
            s = loom__cuda_stream_sync(ds->dev.stream[r], msg, sizeof msg);
        if (s == LOOM_OK)
            s = loom__cuda_copy_sync(ds->dev.err_host, ds->dev.err, sizeof(loom__cuda_err), msg, sizeof msg);
        if (s == LOOM_OK)
            s = cuda_err(x, ds->dev.err_host, msg, sizeof msg);
        if (s != LOOM_OK && st == LOOM_OK)
            st = loom__exec_fail(x, s, "loom_program_run: %s", msg);
    }
    return st;
}

static loom_status cuda_value_err(const loom__exec *x, const token *in, char *msg, size_t len)
{
    return in->err ? cuda_err(x, in->err, msg, len) : LOOM_OK;
}

const loom__exec_device loom__exec_cuda_device = {
    .rt_kind = LOOM__RT_DEV_CUDA,
    .comm = &loom__comm_nccl,
    .box = loom__exec_cuda_box,
    .stream_of = cuda_stream_of,
    .open = cuda_open,
    .close = cuda_close,
    .own_act = cuda_own_act,
    .deferred = cuda_deferred,
    .fusable = loom__exec_cuda_fusable,
    .step_act = loom__exec_cuda_step_act,
    .kernel = cuda_kernel,
    .run_begin = cuda_run_begin,
    .stages_inputs = 1,
    .run_end = cuda_run_end,
    .copy = cuda_copy,
    .value_err = cuda_value_err,
};
