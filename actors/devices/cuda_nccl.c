/* The boxing between GPUs in the executor: NCCL communicators made when a plan opens (one per
 * device of each GPU placement that boxes, bootstrapped over MPI across ranks), destroyed when it
 * closes, and each boxing task run through the NCCL communicator (runtime/comm/nccl/) on its
 * device's compute stream. Stream order is chain order, and every device's chain meets the
 * plan's collectives in one order (loom__plan_check_collectives), so the collectives of a step
 * pair up across devices without waiting on each other, and no worker thread waits for a GPU. */
#include <stdio.h>
#include <stdlib.h>

#include "actors/devices/cuda_internal.h"
#include "runtime/comm/nccl/nccl.h"
#include "runtime/trace.h" /* loom__now_ns */

loom_status loom__exec_cuda_check_boxing(loom__exec *x)
{
    const loom__plan *pl = x->pl;
    int any = 0;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if (k->kind != LOOM__TASK_BOXING && k->kind != LOOM__TASK_MOVE)
            continue;
        const loom_tensor *t = loom__task_tensor(pl, k);
        const loom__regst *from = &pl->regst[k->in[0]], *to = &pl->regst[k->out[0]];
        if (k->kind == LOOM__TASK_MOVE) {
            int other_rank = 0, partial = 0;
            for (int s = 0; s < k->n_in; s++)
                other_rank |= pl->dev_rank[pl->regst[k->in[s]].dom] != pl->dev_rank[k->device];
            const loom__lay lf = loom__regst_lay(from); /* either level (a mesh of one rank: [1, n]) */
            for (int l = 0; l < lf.s.n; l++)
                partial |= lf.s.v[l].kind == LOOM_SBP_PARTIAL_SUM;
            const char *why = other_rank ? "between GPUs of different ranks"
                              : t->layout == LOOM__CSR ? "of a sparse (CSR) value between GPU placements"
                              : (from->mesh[0] > 1 && from->mesh[1] > 1) || (to->mesh[0] > 1 && to->mesh[1] > 1)
                                  ? "from or to a 2-D mesh of GPUs"
                              : partial ? "of a partial sum (P) between GPU placements"
                                        : NULL;
            if (why)
                return loom__exec_fail(x, LOOM_ERR_UNSUPPORTED,
                                       "loom_program_run: moving '%s' %s is not built yet; keep the program on one placement, or "
                                       "run it on CPU devices",
                                       loom_tensor_name(t), why);
            continue;
        }
        if (!loom__nccl_built)
            return loom__exec_fail(x, LOOM_ERR_UNSUPPORTED,
                                   "loom_program_run: boxing '%s' between GPUs needs NCCL, and this build of Loom has none (the "
                                   "CUDA toolkit's, or one CMAKE_LIBRARY_PATH points at); run on one GPU or on CPU devices",
                                   loom_tensor_name(t));
        if (t->layout == LOOM__CSR)
            return loom__exec_fail(x, LOOM_ERR_UNSUPPORTED,
                                   "loom_program_run: boxing sparse '%s' between GPUs is not built yet; split it as its readers "
                                   "want it, or run on CPU devices",
                                   loom_tensor_name(t));
        if (from->mesh[0] > 1 && from->mesh[1] > 1)
            return loom__exec_fail(x, LOOM_ERR_UNSUPPORTED,
                                   "loom_program_run: boxing '%s' on a %dx%d mesh of GPUs is not built yet (1-D GPU placements, "
                                   "and meshes with one device on a level, are)",
                                   loom_tensor_name(t), from->mesh[0], from->mesh[1]);
        any = 1;
    }
    char msg[400];
    if (any && loom__plan_check_collectives(pl, msg, sizeof msg))
        return loom__exec_fail(x, LOOM_ERR_UNSUPPORTED, "loom_program_run: the boxing between GPUs: %s", msg);
    return LOOM_OK;
}

size_t loom__exec_cuda_box_scratch(const loom__exec *x, int d)
{
    const loom__plan *pl = x->pl;
    size_t most = 0;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if ((k->kind != LOOM__TASK_BOXING && k->kind != LOOM__TASK_MOVE) || k->device != d)
            continue;
        const loom__regst *from = &pl->regst[k->in[0]], *to = &pl->regst[k->out[0]];
        size_t need = k->kind == LOOM__TASK_BOXING ? loom__nccl_scratch(from->bytes, to->bytes, to->nparts) : 0;
        for (int s = 0; k->kind == LOOM__TASK_MOVE && s < k->n_in; s++) /* a source part, whole */
            need = pl->regst[k->in[s]].bytes > need ? pl->regst[k->in[s]].bytes : need;
        if (need > most)
            most = need;
    }
    return most > SIZE_MAX - 255 ? SIZE_MAX : (most + 255) / 256 * 256;
}

/* The first asynchronous error of the communicators (a peer gone, a network failure) as
 * "cuda:<index>: <NCCL's message>", or LOOM_OK. */
static loom_status comm_errors(const loom__exec *x, char *msg, size_t len)
{
    const loom__exec_cuda *c = x->cuda;
    char m[400];
    for (int p = 0; c->comm && p < x->pl->nplaces; p++)
        for (int j = 0; c->comm[p] && j < x->pl->place_n[p]; j++)
            if (loom__nccl_error(c->comm[p][j], m, sizeof m) != LOOM_OK) {
                snprintf(msg, len, "cuda:%d: %s", x->pl->dev_index[x->pl->place_dev[p][j]], m);
                return LOOM_ERR_RUNTIME;
            }
    return LOOM_OK;
}

/* Aborts the communicators: NCCL's kernels in flight return, so the streams that wait for them
 * drain; the next run makes them anew. After the run's threads have ended only (none calls them). */
static void comm_abort(void *ctx)
{
    loom__exec *x = ctx;
    loom__exec_cuda_comm_close(x, 1);
    x->cuda->comm_aborted = 1;
    loom__exec_cuda_forget_device();
}

/* The run's wait (runtime/run.c) asks this every 100 ms: an asynchronous error fails the run; so
 * does a drain still going after LOOM_NET_TIMEOUT: a device that stopped before its side of a
 * collective leaves its peers' streams, and the copies behind them, waiting for it, which only an
 * abort ends. */
static loom_status comm_poll(void *ctx, int draining, char *msg, size_t len)
{
    loom__exec *x = ctx;
    loom__exec_cuda *c = x->cuda;
    if (comm_errors(x, msg, len) != LOOM_OK)
        return LOOM_ERR_RUNTIME;
    if (!draining)
        return LOOM_OK;
    const int64_t now = loom__now_ns(), limit = loom__net_timeout_ns();
    if (!c->drain_ns)
        c->drain_ns = now;
    if (now - c->drain_ns <= limit)
        return LOOM_OK;
    snprintf(msg, len, "the run has drained for %.0f s and the GPUs' work has not ended: a device stopped before its side of a "
             "collective; its peers' were stopped (LOOM_NET_TIMEOUT)", (double)limit / 1e9);
    return LOOM_ERR_RUNTIME;
}

/* 1 when placement `place` gets communicators: it boxes, or the job was started over MPI (a
 * placement written with "@", of one rank too: its bootstrap runs as it would over several). */
static int needs_comm(const loom__plan *pl, int place)
{
    if (loom__net_ready())
        return 1;
    for (int i = 0; i < pl->ntasks; i++)
        if (pl->task[i].kind == LOOM__TASK_BOXING && loom__task_tensor(pl, &pl->task[i])->place == place)
            return 1;
    return 0;
}

loom_status loom__exec_cuda_comm_open(loom__exec *x)
{
    const loom__plan *pl = x->pl;
    loom__exec_cuda *c = x->cuda;
    char msg[400];
    if (!loom__nccl_built)
        return LOOM_OK; /* nothing boxes (loom__exec_cuda_check_boxing) */
    if (!c->comm && !(c->comm = calloc((size_t)pl->nplaces, sizeof *c->comm)))
        return LOOM_ERR_NOMEM;
    loom_status s = LOOM_OK;
    int any = 0;
    for (int p = 0; p < pl->nplaces && s == LOOM_OK; p++) {
        const int n = pl->place_n[p];
        if (!needs_comm(pl, p))
            continue;
        int *rank = malloc((size_t)n * sizeof *rank), *cuda = malloc((size_t)n * sizeof *cuda);
        if (!c->comm[p])
            c->comm[p] = calloc((size_t)n, sizeof *c->comm[p]);
        if (!rank || !cuda || !c->comm[p]) {
            free(rank), free(cuda);
            return LOOM_ERR_NOMEM;
        }
        for (int j = 0; j < n; j++) {
            rank[j] = pl->dev_rank[pl->place_dev[p][j]];
            cuda[j] = pl->dev_index[pl->place_dev[p][j]];
        }
        s = loom__nccl_open(n, rank, cuda, x->rank, pl->nranks > 1, c->comm[p], msg, sizeof msg);
        any = 1;
        if (s != LOOM_OK)
            loom__exec_fail(x, s, "loom_program_run: the NCCL communicator of the placement of %d GPU%s (cuda:%d first, rank %d): %s",
                            n, n > 1 ? "s" : "", cuda[0], rank[0], msg);
        free(rank), free(cuda);
    }
    loom__exec_cuda_forget_device();
    if (any) /* the runs' waits watch the communicators */
        loom__rt_set_hooks(x->rt, &(loom__rt_hooks){.ctx = x, .poll = comm_poll, .stopped = comm_abort});
    return s;
}

void loom__exec_cuda_comm_close(loom__exec *x, int abort)
{
    loom__exec_cuda *c = x->cuda;
    for (int p = 0; c->comm && p < x->pl->nplaces; p++) {
        for (int j = 0; c->comm[p] && j < x->pl->place_n[p]; j++)
            loom__nccl_close(c->comm[p][j], abort);
        free(c->comm[p]);
        c->comm[p] = NULL;
    }
}

loom_status loom__exec_cuda_comm_end(loom__exec *x, loom_status st)
{
    loom__exec_cuda *c = x->cuda;
    char msg[400];
    if (!c->comm)
        return st;
    if (st == LOOM_OK && comm_errors(x, msg, sizeof msg) != LOOM_OK)
        st = loom__exec_fail(x, LOOM_ERR_RUNTIME, "loom_program_run: %s", msg);
    if (st != LOOM_OK)
        comm_abort(x); /* a broken communicator is not used again */
    return st;
}

loom_status loom__exec_cuda_box(loom__exec *x, loom__act *a, int task, loom__comm_box *b, loom__value *out)
{
    const loom__task *k = &x->pl->task[task];
    const loom_tensor *t = loom__task_tensor(x->pl, k);
    const token *in = a->in[0];
    dev_state *ds = &x->cuda->d[k->device];
    if (in->split_parts) {
        snprintf(a->msg, a->msg_size, "'%s' belongs to a graph batch fed by parts, whose uneven parts the boxing between GPUs "
                 "does not carry yet", loom_tensor_name(t));
        return LOOM_ERR_UNSUPPORTED;
    }
    void **comm = x->cuda->comm ? x->cuda->comm[t->place] : NULL;
    if (!comm || !comm[b->part]) {
        snprintf(a->msg, a->msg_size, "no NCCL communicator for the boxing of '%s' (internal error)", loom_tensor_name(t));
        return LOOM_ERR_RUNTIME;
    }
    loom_status s = loom__exec_cuda_on_device(ds->dev.index, a->msg, a->msg_size);
    if (s != LOOM_OK)
        return s;
    loom__nccl_ctx ctx = {.comm = comm[b->part],
                          .stream = ds->dev.stream[LOOM__CUDA_COMPUTE],
                          .scratch = x->cuda->scratch[k->device],
                          .scratch_bytes = x->cuda->scratch_bytes[k->device]};
    b->ctx = &ctx;
    s = loom__comm_nccl.box(b, out, a->msg, a->msg_size);
    /* its input may be a copy's to the device, whose next copy waits for this read */
    return s != LOOM_OK ? s : loom__exec_cuda_mark_events(a, 1, 1, ctx.stream);
}
