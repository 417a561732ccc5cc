/* Building the actors of a plan (see exec.h): register buffers as tokens in each device's memory,
 * one actor per task (or per fused GPU chain), the chains' control rings, the edges. */
#define _DEFAULT_SOURCE /* madvise */
#include "actors/exec_internal.h"
#include "runtime/comm/nccl/nccl.h"

#include <loom/dist.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* loom_compile admits regst_num up to the public bound; every such register must be one the
 * runtime takes. */
_Static_assert(LOOM_MAX_REGST_NUM <= LOOM__RT_MAX_REGST, "regst_num's public bound is over the runtime's");

void loom__exec_free(loom__exec *x)
{
    if (!x)
        return;
    /* parameters this plan holds go back to the program first */
    for (int id = 0; x->env->holder && id < x->pl->g->n; id++)
        if (x->env->holder[id] == x)
            loom__exec_pull(x, id);
    loom__rt_free(x->rt);
    if (x->dev && x->dev->close)
        x->dev->close(x);
    for (int r = 0; x->tok && r < x->pl->nregst; r++) {
        free(x->tok[r]);
        free(x->bufs[r]);
    }
    for (int r = 0; x->mirror && r < x->pl->nregst; r++)
        free(x->mirror[r]);
    free(x->mirror);
    free(x->window);
    free(x->tok);
    free(x->bufs);
    free(x->aid);
    free(x->ctx);
    free(x->input_k);
    free(x->input_id);
    free(x->input_off);
    free(x->input_n);
    free(x->stat);
    free(x->stat_version);
    free(x->stage);
    free(x->stage_block);
    free(x->micro_view);
    free(x->sink_scratch);
    free(x->by_parts);
    free(x->pdims);
    free(x->dev_block);
    free(x->param_block);
    for (int d = 0; x->fused && d < x->n; d++)
        if (x->fused[d]) {
            free(x->fused[d]->tasks);
            free(x->fused[d]->in);
            free(x->fused[d]->out);
            free(x->fused[d]);
        }
    free(x->fused);
    free(x->slot_of);
    free(x->outidx_of);
    loom__plan_free(x->pl);
    free(x);
}

static loom__exec *fail(loom__exec *x, loom_status s, const char *what)
{
    char why[512];
    snprintf(why, sizeof why, "%s", what); /* what may be the environment's message itself */
    loom__exec_fail(x, s, "loom_program_run: %s", why);
    loom__exec_free(x);
    return NULL;
}

/* A device's memory. One of 2 MiB or more is in huge pages where Linux gives them (transparent huge
 * pages, asked for by madvise): a pass over a register then misses the TLB 512 times less, and the
 * transport's copy between ranks (Open MPI's CMA pins the pages it copies) pins 512 times fewer
 * pages; measured, the all-reduce between 2 ranks took 20 to 30% less time (bench/README.md). */
static void *block(size_t n)
{
    enum { HUGE_PAGE = 2 << 20 };
    void *b = NULL;
    if (n >= HUGE_PAGE && n <= SIZE_MAX - HUGE_PAGE) {
        size_t whole = (n + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
        if (posix_memalign(&b, HUGE_PAGE, whole))
            return NULL;
        (void)madvise(b, whole, MADV_HUGEPAGE); /* a hint: without huge pages it is memory as any */
        return b;
    }
    return posix_memalign(&b, 64, n ? n : 64) ? NULL : b;
}

/* The host stage of a data source's inputs on several devices or a GPU: logical values at their
 * bounds (a CSR one at the size of the matrix fed now). */
static loom_status stage_blocks(loom__exec *x)
{
    const loom_graph *g = x->pl->g;
    if (!x->env->source || (loom__exec_in_program(x) && x->pl->micro == 1))
        return LOOM_OK;
    size_t total = 0, *off = calloc((size_t)x->ninputs + 1, sizeof *off);
    x->stage = calloc((size_t)x->ninputs + 1, sizeof *x->stage);
    if (!off || !x->stage) {
        free(off);
        return LOOM_ERR_NOMEM;
    }
    for (int k = 0; k < x->ninputs; k++) {
        off[k] = total;
        total = loom__bytes_add(total, loom__exec_stage_bytes(x, g->t[x->input_id[k]]));
    }
    x->stage_block = total == LOOM__PLAN_OVER ? NULL : block(total);
    for (int k = 0; x->stage_block && k < x->ninputs; k++)
        x->stage[k] = (token){.v = {.dtype = g->t[x->input_id[k]]->dtype}, .base = x->stage_block + off[k]};
    free(off);
    return x->stage_block ? LOOM_OK : LOOM_ERR_NOMEM;
}

/* CPU devices' memory: each device's block (shared, then own) and param area, the host's (freed
 * by the CPU device's close, actors/exec.c). */
loom_status loom__exec_cpu_blocks(loom__exec *x)
{
    const loom__plan *pl = x->pl;
    for (int d = 0; d < x->n; d++) {
        if (!loom__exec_dev_here(x, d))
            continue; /* another rank's: what is read of it here has mirrors */
        x->dev_block[d] = block(pl->mem[d].shared + pl->mem[d].own);
        x->param_block[d] = block(pl->mem[d].params);
        if (!x->dev_block[d] || !x->param_block[d])
            return LOOM_ERR_NOMEM;
    }
    x->host_block = block(pl->host_bytes);
    return x->host_block ? LOOM_OK : LOOM_ERR_NOMEM;
}

/* The actor id of a task: its device's rank and stream, task numbers dense per stream (counters:
 * by plan device, the host's last, three streams each). Every rank numbers every task alike, so
 * the ids of another rank's actors are known here. */
static uint64_t task_aid(const loom__exec *x, const loom__task *k, int *counters)
{
    unsigned kind = LOOM__RT_DEV_CPU, dev = 0, stream = STREAM_DEVICE, rank = (unsigned)x->rank;
    int slot = x->n;
    if (k->kind == LOOM__TASK_SOURCE) {
        stream = STREAM_SOURCE;
    } else if (k->kind == LOOM__TASK_SINK) {
        stream = STREAM_HOST;
    } else {
        dev = (unsigned)x->pl->dev_index[k->device];
        rank = (unsigned)x->pl->dev_rank[k->device];
        kind = (unsigned)x->dev->rt_kind;
        stream = x->dev->stream_of ? x->dev->stream_of(k) : STREAM_DEVICE;
        slot = k->device;
    }
    int *c = &counters[slot * 3 + (int)stream];
    return loom__aid(rank, kind, dev, stream, (unsigned)(*c)++);
}

/* The same actor's id on another rank (the host's tasks act on every rank). */
static uint64_t aid_on(uint64_t id, int rank)
{
    return loom__aid((unsigned)rank, loom__aid_kind(id), loom__aid_dev(id), loom__aid_stream(id), loom__aid_task(id));
}

/* 1 when task k acts on this rank: the host's tasks act on every rank (each its own source and
 * sinks), a device's on the device's rank. */
static int local_task(const loom__exec *x, const loom__task *k)
{
    return k->device == LOOM__HOST || loom__exec_dev_here(x, k->device);
}

/* 1 when edge producer -> consumer has an end on this rank and is run here: both ends here, or
 * one end here and the other a device task of another rank (the host's tasks of another rank feed
 * and read that rank's devices only). */
static int edge_here(const loom__exec *x, const loom__task *prod, const loom__task *cons)
{
    int lp = local_task(x, prod), lc = local_task(x, cons);
    return lc || (lp && prod->device != LOOM__HOST); /* a task of another rank is a device's */
}

/* The output register index of register r within its producer's outputs. */
static int out_index(const loom__plan *pl, int r)
{
    const loom__task *k = &pl->task[pl->regst[r].producer];
    for (int j = 0; j < k->n_out; j++)
        if (k->out[j] == r)
            return j;
    return -1;
}


/* Each device's chains (one, or with micro-batches and a backward pass the forward and the
 * backward chain, which interleave on the device's thread): first and last task, the token actor
 * that closes it, or the one actor that runs it whole (a fused chain, on GPUs: see
 * actors/devices/cuda_graphs.c). Chain c of device d is entry d * n + c. Under the GPipe schedule
 * a device's backward chain starts a step's micro-batches only once its forward chain has done
 * them all: its last task's control goes to a barrier that gathers the step's, and a gate that
 * hands it out again to each micro-batch of the backward chain. */
typedef struct chains {
    int n;
    int *first, *last;
    uint64_t *token_aid;
    uint64_t *barrier_aid, *gate_aid; /* by device: GPipe's, or 0 */
    int any;
} chains;

static int chain_of(const chains *ch, const loom__task *k) { return k->device * ch->n + k->chain; }

/* An actor's name, in what the user wrote: the op and its tensor's name, or what the task does
 * with which tensor, and the device when there are several ("relu 'act' on cpu:1"). Run-time
 * failures and the trace's boxes say it. */
static void actor_name(const loom__exec *x, const loom__task *k, char *name, size_t len)
{
    static const char *const kinds[LOOM__TASK_KIND_COUNT] = {"the data source", "parameter", "", "the boxing of", "the move of",
                                                             "the copy of", "the output of", "the micro-batches' sum of"};
    char dev[40] = "";
    if (k->device != LOOM__HOST && (x->n > 1 || x->pl->kind != LOOM_DEVICE_CPU))
        snprintf(dev, sizeof dev, " on %s:%d", x->pl->kind == LOOM_DEVICE_CUDA ? "cuda" : "cpu", x->pl->dev_index[k->device]);
    const loom_tensor *t = loom__task_tensor(x->pl, k);
    if (k->kind == LOOM__TASK_COMPUTE)
        snprintf(name, len, "%s '%s'%s", loom__op_def(t->op)->name, loom_tensor_name(t), dev);
    else if (t && k->kind != LOOM__TASK_SOURCE)
        snprintf(name, len, "%s '%s'%s", kinds[k->kind], loom_tensor_name(t), dev);
    else
        snprintf(name, len, "%s%s", kinds[k->kind], dev);
}

/* d made the stand-in of an actor of another rank: it never acts here, and its registers' buffers
 * here are the mirrors the transport fills. How it acts on its own rank (the groups of pieces of
 * micro-batches, initial emits, deferred acts) shows here only in the pieces its messages carry. */
static void as_remote(loom__actor_desc *d)
{
    d->act = NULL;
    d->remote = 1;
    d->initial_emits = d->max_deferred = d->hold = d->group = d->gather = d->in_place = 0;
}

/* The actor of every task not in a fused chain. */
static loom_status add_task_actors(loom__exec *x, const chains *ch, const uint8_t *ghost)
{
    const loom__plan *pl = x->pl;
    char name[128];
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if ((k->chain_pos >= 0 && x->fused[k->device]) || (!local_task(x, k) && !ghost[i]))
            continue;
        x->ctx[i] = (actor_ctx){.x = x, .task = i};
        /* chain tasks: + a control output to the next in the chain, + control input(s) from the
         * previous (the chain head: from the token and from the source, which drives the chain
         * even when no data flows from it); the source: + its control output */
        int chain = k->chain_pos >= 0 || (k->kind == LOOM__TASK_SOURCE && ch->any);
        int head = k->chain_pos >= 0 && ch->first[chain_of(ch, k)] == i;
        int gated = head && k->chain == LOOM__CHAIN_BWD && ch->gate_aid[k->device];
        int nout = k->n_out + chain, nin = k->n_in + (k->chain_pos >= 0) + head + gated;
        loom__regst_desc *outs = calloc((size_t)nout + 1, sizeof *outs);
        if (!outs)
            return LOOM_ERR_NOMEM;
        for (int j = 0; j < k->n_out; j++)
            outs[j] = (loom__regst_desc){.regst_num = pl->regst[k->out[j]].regst_num, .bufs = x->bufs[k->out[j]]};
        if (chain)
            outs[k->n_out] = (loom__regst_desc){.regst_num = k->kind == LOOM__TASK_SOURCE ? x->pl->source_regst_num : 1, .bufs = NULL};
        actor_name(x, k, name, sizeof name);
        loom__actor_desc d = {
            .id = x->aid[i],
            .name = name,
            .act = loom__exec_act(x, k),
            .ctx = &x->ctx[i],
            .nin = nin,
            .nout = nout,
            .out = outs,
            .max_deferred = x->dev->deferred ? x->dev->deferred(k) : 0,
            /* micro-batches: a step's pieces come in groups; a variable emits its version to each,
             * updating it once nobody reads any; an acc sums a step's gradients into one */
            .group = pl->micro,
        };
        if (k->kind == LOOM__TASK_VARIABLE && k->n_in > 0) {
            d.initial_emits = pl->micro;
            d.hold = pl->micro;
            d.in_place = 1;
        }
        d.gather = k->kind == LOOM__TASK_ACC;
        if (!local_task(x, k))
            as_remote(&d);
        loom_status st = loom__rt_add_actor(x->rt, &d);
        /* a sink reads every device: the other ranks' copies of it read this rank's devices */
        for (int r = 0; r < x->nranks && st == LOOM_OK && k->kind == LOOM__TASK_SINK; r++)
            if (r != x->rank) {
                loom__actor_desc g = d;
                g.id = aid_on(x->aid[i], r);
                as_remote(&g);
                st = loom__rt_add_actor(x->rt, &g);
            }
        free(outs);
        if (st != LOOM_OK)
            return st;
    }
    loom__regst_desc ctl = {.regst_num = 1, .bufs = NULL};
    for (int c = 0; c < x->n * ch->n; c++) {
        if (ch->first[c] < 0 || x->fused[c / ch->n] || !loom__exec_dev_here(x, c / ch->n))
            continue;
        if (ch->n > 1)
            snprintf(name, sizeof name, "the %s chain of device %d", c % ch->n == LOOM__CHAIN_FWD ? "forward" : "backward", c / ch->n);
        else
            snprintf(name, sizeof name, "the chain of device %d", c);
        loom__actor_desc desc = {.id = ch->token_aid[c], .name = name, .nin = 1, .nout = 1, .out = &ctl, .initial_emits = 1};
        loom_status st = loom__rt_add_actor(x->rt, &desc);
        if (st != LOOM_OK)
            return st;
    }
    for (int d = 0; d < x->n; d++) {
        if (!ch->gate_aid[d] || !loom__exec_dev_here(x, d))
            continue;
        snprintf(name, sizeof name, "the forward passes of a step on device %d", d);
        loom__actor_desc bar = {.id = ch->barrier_aid[d], .name = name, .nin = 1, .nout = 1, .out = &ctl, .group = pl->micro, .gather = 1};
        loom_status st = loom__rt_add_actor(x->rt, &bar);
        snprintf(name, sizeof name, "the backward passes of a step on device %d", d);
        loom__actor_desc gate = {.id = ch->gate_aid[d], .name = name, .nin = 1, .nout = 1, .out = &ctl, .hold = pl->micro};
        if (st == LOOM_OK)
            st = loom__rt_add_actor(x->rt, &gate);
        if (st != LOOM_OK)
            return st;
    }
    return LOOM_OK;
}

/* A fused chain's registers: those it reads from outside (one input slot each, then the control
 * slot) and those it writes that are read outside (its outputs). */
static loom_status fuse_chain(loom__exec *x, int d)
{
    const loom__plan *pl = x->pl;
    loom__fused *f = calloc(1, sizeof *f);
    if (!f)
        return LOOM_ERR_NOMEM;
    x->fused[d] = f;
    f->device = d;
    f->tasks = malloc((size_t)pl->nchain[d] * sizeof *f->tasks + 1);
    f->in = malloc((size_t)pl->nregst * sizeof *f->in + 1);
    f->out = malloc((size_t)pl->nregst * sizeof *f->out + 1);
    if (!f->tasks || !f->in || !f->out)
        return LOOM_ERR_NOMEM;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if (k->chain_pos < 0 || k->device != d)
            continue;
        f->tasks[f->ntasks++] = i;
        for (int s = 0; s < k->n_in; s++) {
            int r = k->in[s];
            const loom__task *prod = &pl->task[pl->regst[r].producer];
            if ((prod->chain_pos < 0 || prod->device != d) && x->slot_of[r] < 0) {
                x->slot_of[r] = f->nin;
                f->in[f->nin++] = r;
            }
        }
    }
    for (int r = 0; r < pl->nregst; r++) {
        const loom__task *prod = &pl->task[pl->regst[r].producer];
        if (prod->chain_pos >= 0 && prod->device == d && pl->regst[r].mem != LOOM__MEM_SHARED) {
            x->outidx_of[r] = f->nout;
            f->out[f->nout++] = r;
        }
    }
    return LOOM_OK;
}

static loom_status add_fused_actors(loom__exec *x, int *counters)
{
    char name[64];
    for (int d = 0; d < x->n; d++) {
        loom__fused *f = x->fused[d];
        if (!f)
            continue;
        f->aid = task_aid(x, &x->pl->task[f->tasks[0]], counters);
        if (!loom__exec_dev_here(x, d))
            continue; /* another rank's: its id counted alike, its actor there */
        loom__regst_desc *outs = calloc((size_t)f->nout + 1, sizeof *outs);
        if (!outs)
            return LOOM_ERR_NOMEM;
        for (int j = 0; j < f->nout; j++)
            outs[j] = (loom__regst_desc){.regst_num = x->pl->regst[f->out[j]].regst_num, .bufs = x->bufs[f->out[j]]};
        snprintf(name, sizeof name, "the step on cuda:%d", x->pl->dev_index[d]);
        f->ctx = (actor_ctx){.x = x, .task = -1 - d};
        loom__actor_desc desc = {.id = f->aid, .name = name, .act = x->dev->step_act, .ctx = &f->ctx,
                                 .nin = f->nin + 1, .nout = f->nout, .out = outs};
        loom_status st = loom__rt_add_actor(x->rt, &desc);
        free(outs);
        if (st != LOOM_OK)
            return st;
    }
    return LOOM_OK;
}

/* The producer end of register r: its task's actor and output index, or the fused chain's. */
static void producer_end(const loom__exec *x, int r, uint64_t *aid, int *reg)
{
    const loom__task *k = &x->pl->task[x->pl->regst[r].producer];
    if (k->chain_pos >= 0 && x->fused[k->device]) {
        *aid = x->fused[k->device]->aid;
        *reg = x->outidx_of[r];
    } else {
        *aid = x->aid[x->pl->regst[r].producer];
        *reg = out_index(x->pl, r);
    }
}

/* Data edges, then each chain's control ring (a fused chain: the source's control only). */
static loom_status connect_actors(loom__exec *x, const chains *ch)
{
    const loom__plan *pl = x->pl;
    uint64_t paid;
    int preg;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if (k->chain_pos >= 0 && x->fused[k->device])
            continue;
        for (int s = 0; s < k->n_in; s++) {
            const loom__task *prod = &pl->task[pl->regst[k->in[s]].producer];
            if (!edge_here(x, prod, k))
                continue;
            producer_end(x, k->in[s], &paid, &preg);
            loom__rt_connect(x->rt, paid, preg, x->aid[i], s);
            for (int r = 0; r < x->nranks && k->kind == LOOM__TASK_SINK && prod->device != LOOM__HOST && local_task(x, prod); r++)
                if (r != x->rank)
                    loom__rt_connect(x->rt, paid, preg, aid_on(x->aid[i], r), s);
        }
    }
    for (int d = 0; d < x->n; d++) {
        const loom__fused *f = loom__exec_dev_here(x, d) ? x->fused[d] : NULL;
        for (int s = 0; f && s < f->nin; s++) {
            producer_end(x, f->in[s], &paid, &preg);
            loom__rt_connect(x->rt, paid, preg, f->aid, s);
        }
        if (f)
            loom__rt_connect(x->rt, x->aid[0], pl->task[0].n_out, f->aid, f->nin);
    }
    int *prev = malloc((size_t)(x->n * ch->n) * sizeof *prev);
    if (!prev)
        return LOOM_ERR_NOMEM;
    for (int c = 0; c < x->n * ch->n; c++)
        prev[c] = -1;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if (k->chain_pos < 0 || x->fused[k->device] || !local_task(x, k))
            continue;
        int c = chain_of(ch, k), ctl_in = k->n_in;
        if (prev[c] < 0) {
            loom__rt_connect(x->rt, ch->token_aid[c], 0, x->aid[i], ctl_in);
            loom__rt_connect(x->rt, x->aid[0], pl->task[0].n_out, x->aid[i], ctl_in + 1);
            if (k->chain == LOOM__CHAIN_BWD && ch->gate_aid[k->device])
                loom__rt_connect(x->rt, ch->gate_aid[k->device], 0, x->aid[i], ctl_in + 2);
        } else {
            loom__rt_connect(x->rt, x->aid[prev[c]], pl->task[prev[c]].n_out, x->aid[i], ctl_in);
        }
        prev[c] = i;
    }
    free(prev);
    loom_status st = LOOM_OK;
    for (int c = 0; c < x->n * ch->n && st == LOOM_OK; c++)
        if (ch->last[c] >= 0 && !x->fused[c / ch->n] && loom__exec_dev_here(x, c / ch->n))
            st = loom__rt_connect(x->rt, x->aid[ch->last[c]], pl->task[ch->last[c]].n_out, ch->token_aid[c], 0);
    for (int d = 0; d < x->n && st == LOOM_OK; d++) /* GPipe: the forward chain's end, gathered, opens the backward chain */
        if (ch->gate_aid[d] && loom__exec_dev_here(x, d)) {
            int last = ch->last[d * ch->n + LOOM__CHAIN_FWD];
            loom__rt_connect(x->rt, x->aid[last], pl->task[last].n_out, ch->barrier_aid[d], 0);
            st = loom__rt_connect(x->rt, ch->barrier_aid[d], 0, ch->gate_aid[d], 0);
        }
    return st;
}

/* Actors: ids dense per stream, the tasks' actors, fused chains, the edges. */
static loom_status build_actors(loom__exec *x)
{
    const loom__plan *pl = x->pl;
    int *counters = calloc(((size_t)x->n + 1) * 3, sizeof *counters);
    uint8_t *ghost = calloc((size_t)pl->ntasks + 1, 1);
    const size_t nch = (size_t)x->n * (size_t)pl->nchains;
    chains ch = {.n = pl->nchains, .first = malloc(nch * sizeof *ch.first), .last = malloc(nch * sizeof *ch.last),
                 .token_aid = calloc(nch, sizeof *ch.token_aid), .barrier_aid = calloc((size_t)x->n, sizeof *ch.barrier_aid),
                 .gate_aid = calloc((size_t)x->n, sizeof *ch.gate_aid)};
    x->fused = calloc((size_t)x->n, sizeof *x->fused);
    x->slot_of = malloc((size_t)pl->nregst * sizeof *x->slot_of + 1);
    x->outidx_of = malloc((size_t)pl->nregst * sizeof *x->outidx_of + 1);
    loom_status st = LOOM_ERR_NOMEM;
    if (!counters || !ghost || !ch.first || !ch.last || !ch.token_aid || !ch.barrier_aid || !ch.gate_aid || !x->fused ||
        !x->slot_of || !x->outidx_of)
        goto out;
    /* the tasks of other ranks that this rank's edges reach stand here as remote actors */
    for (int i = 0; i < pl->ntasks; i++)
        for (int s = 0; s < pl->task[i].n_in; s++) {
            const loom__task *prod = &pl->task[pl->regst[pl->task[i].in[s]].producer];
            if (edge_here(x, prod, &pl->task[i])) {
                ghost[i] |= !local_task(x, &pl->task[i]);
                ghost[pl->regst[pl->task[i].in[s]].producer] |= !local_task(x, prod);
            }
        }
    for (int r = 0; r < pl->nregst; r++)
        x->slot_of[r] = x->outidx_of[r] = -1;
    for (size_t c = 0; c < nch; c++)
        ch.first[c] = ch.last[c] = -1;
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if (k->chain_pos >= 0) {
            if (ch.first[chain_of(&ch, k)] < 0)
                ch.first[chain_of(&ch, k)] = i;
            ch.last[chain_of(&ch, k)] = i;
        }
    }
    st = LOOM_OK;
    for (int d = 0; d < x->n && st == LOOM_OK; d++) { /* GPUs run one chain per device, fused */
        for (int c = 0; c < ch.n; c++)
            ch.any |= ch.first[d * ch.n + c] >= 0;
        if (ch.n == 1 && ch.first[d] >= 0 && x->dev->fusable && x->dev->fusable(x, d))
            st = fuse_chain(x, d);
    }
    for (int i = 0; i < pl->ntasks && st == LOOM_OK; i++)
        if (!(pl->task[i].chain_pos >= 0 && x->fused[pl->task[i].device]))
            x->aid[i] = task_aid(x, &pl->task[i], counters);
    for (size_t c = 0; c < nch && st == LOOM_OK; c++)
        if (ch.first[c] >= 0 && !x->fused[c / (size_t)ch.n])
            ch.token_aid[c] = task_aid(x, &pl->task[ch.first[c]], counters);
    for (int d = 0; d < x->n && st == LOOM_OK; d++)
        if (ch.n > 1 && pl->schedule == LOOM_SCHEDULE_GPIPE && ch.first[d * ch.n + LOOM__CHAIN_FWD] >= 0 &&
            ch.first[d * ch.n + LOOM__CHAIN_BWD] >= 0) {
            ch.barrier_aid[d] = task_aid(x, &pl->task[ch.first[d * ch.n]], counters);
            ch.gate_aid[d] = task_aid(x, &pl->task[ch.first[d * ch.n]], counters);
        }
    if (st == LOOM_OK)
        st = add_fused_actors(x, counters);
    if (st == LOOM_OK)
        st = add_task_actors(x, &ch, ghost);
    if (st == LOOM_OK)
        st = connect_actors(x, &ch);
out:
    free(counters), free(ghost), free(ch.first), free(ch.last), free(ch.token_aid), free(ch.barrier_aid), free(ch.gate_aid);
    return st;
}

loom__exec *loom__exec_new(loom__plan *pl, loom__exec_env *env)
{
    loom__exec *x = calloc(1, sizeof *x);
    if (!x) {
        loom__plan_free(pl);
        snprintf(env->err, env->err_size, "loom_program_run: out of memory");
        return NULL;
    }
    x->env = env;
    x->pl = pl;
    x->n = pl->ndev;
    x->dev = pl->kind == LOOM_DEVICE_CUDA ? &loom__exec_cuda_device : &loom__exec_cpu_device;
    x->rank = pl->nranks > 1 ? loom_dist_rank() : 0;
    x->nranks = pl->nranks > 1 ? loom_dist_size() : 1;
    if (pl->nranks > 1 && pl->kind == LOOM_DEVICE_CUDA && !loom__nccl_built)
        return fail(x, LOOM_ERR_UNSUPPORTED, "GPUs on several ranks need NCCL, and this build of Loom has none (placements over "
                                             "ranks run on CPU devices)");
    if (pl->nranks > loom_dist_size()) {
        char m[160];
        snprintf(m, sizeof m, "the plan spans %d ranks, this job has %d processes (run it under mpirun -np %d)", pl->nranks,
                 loom_dist_size(), pl->nranks);
        return fail(x, LOOM_ERR_INVALID, m);
    }
    const int ntensors = pl->g->n;
    if (pl->g->ndyn > LOOM__MAX_DYN)
        return fail(x, LOOM_ERR_UNSUPPORTED, "more than 16 dynamic dims in one graph");
    x->tok = calloc((size_t)pl->nregst + 1, sizeof *x->tok);
    x->bufs = calloc((size_t)pl->nregst + 1, sizeof *x->bufs);
    x->aid = calloc((size_t)pl->ntasks + 1, sizeof *x->aid);
    x->ctx = calloc((size_t)pl->ntasks + 1, sizeof *x->ctx);
    x->input_k = malloc((size_t)ntensors * sizeof *x->input_k + 1);
    x->input_id = calloc((size_t)ntensors + 1, sizeof *x->input_id);
    x->dev_block = calloc((size_t)x->n, sizeof *x->dev_block);
    x->param_block = calloc((size_t)x->n, sizeof *x->param_block);
    loom__rt_opts ro = LOOM__RT_OPTS_INIT;
    ro.trace_record = env->trace_record;
    ro.rank = x->rank;
    x->rt = loom__rt_new(&ro);
    if (!x->tok || !x->bufs || !x->aid || !x->ctx || !x->input_k || !x->input_id || !x->dev_block || !x->param_block || !x->rt)
        return fail(x, LOOM_ERR_NOMEM, "out of memory");
    for (int id = 0; id < ntensors; id++)
        x->input_k[id] = -1;
    x->input_off = calloc((size_t)ntensors + 1, sizeof *x->input_off);
    x->input_n = calloc((size_t)ntensors + 1, sizeof *x->input_n);
    if (!x->input_off || !x->input_n)
        return fail(x, LOOM_ERR_NOMEM, "out of memory");
    for (int j = 0; j < pl->task[0].n_out; j += pl->regst[pl->task[0].out[j]].nparts) {
        int id = pl->regst[pl->task[0].out[j]].tensor;
        x->input_k[id] = x->ninputs;
        x->input_off[x->ninputs] = j;
        x->input_n[x->ninputs] = pl->regst[pl->task[0].out[j]].nparts;
        x->input_id[x->ninputs++] = id;
    }
    x->micro_view = calloc((size_t)x->ninputs + 1, sizeof *x->micro_view);
    x->stat = calloc((size_t)pl->task[0].n_out + 1, sizeof *x->stat);
    x->stat_version = calloc((size_t)x->ninputs + 1, sizeof *x->stat_version);
    x->by_parts = calloc((size_t)x->ninputs + 1, sizeof *x->by_parts);
    x->pdims = calloc((size_t)x->n, sizeof *x->pdims);
    if (!x->stat || !x->stat_version || !x->by_parts || !x->pdims || !x->micro_view)
        return fail(x, LOOM_ERR_NOMEM, "out of memory");
    loom_status st = x->dev->open(x);
    if (st != LOOM_OK)
        return fail(x, st, env->err[0] ? env->err : "cannot set up the devices");
    if (stage_blocks(x) != LOOM_OK)
        return fail(x, LOOM_ERR_NOMEM, "no memory for the source's stage");

    /* mirrors: the registers of other ranks' devices that this rank's tasks read */
    if (pl->nranks > 1 && !(x->mirror = calloc((size_t)pl->nregst + 1, sizeof *x->mirror)))
        return fail(x, LOOM_ERR_NOMEM, "out of memory");
    for (int i = 0; x->mirror && i < pl->ntasks; i++)
        for (int s = 0; local_task(x, &pl->task[i]) && s < pl->task[i].n_in; s++) {
            int r = pl->task[i].in[s];
            const loom__regst *rg = &pl->regst[r];
            if (rg->dom < 0 || loom__exec_dev_here(x, rg->dom) || x->mirror[r])
                continue;
            size_t bytes = rg->bytes > SIZE_MAX / (size_t)rg->regst_num ? LOOM__PLAN_OVER : rg->bytes * (size_t)rg->regst_num;
            if (bytes == LOOM__PLAN_OVER || !(x->mirror[r] = block(bytes)))
                return fail(x, LOOM_ERR_NOMEM, "no memory for the copies of other ranks' parts");
        }

    /* register buffers: tokens pointing into the blocks */
    for (int r = 0; r < pl->nregst; r++) {
        const loom__regst *rg = &pl->regst[r];
        const loom_tensor *t = pl->g->t[rg->tensor];
        x->tok[r] = calloc((size_t)rg->regst_num, sizeof **x->tok);
        x->bufs[r] = calloc((size_t)rg->regst_num, sizeof **x->bufs);
        if (!x->tok[r] || !x->bufs[r])
            return fail(x, LOOM_ERR_NOMEM, "out of memory");
        for (int b = 0; b < rg->regst_num; b++) {
            token *k = &x->tok[r][b];
            char *base = loom__exec_buffer(x, r, b);
            k->v.dtype = t->dtype;
            k->base = base;
            k->bytes = base ? rg->bytes : 0;
            k->regst = r;
            if (t->layout == LOOM__CSR && base) {
                const loom__lay l = loom__regst_lay(rg);
                int64_t whole[2] = {pl->csr_rows[t->id], 0}, start[2], size[2];
                loom__nd_region(whole, 2, &l.s, l.mesh, rg->part, start, size);
                loom__exec_csr_layout(k, base, size[0], pl->csr_nnz[t->id], t->dtype);
            } else {
                k->v.data = base;
            }
            /* a copy back of another rank's device: that rank reads its device's error record */
            if (x->dev->value_err && base && pl->task[rg->producer].kind == LOOM__TASK_COPY && rg->dom == LOOM__HOST &&
                local_task(x, &pl->task[rg->producer]))
                k->err = (loom__cuda_err *)(base + rg->bytes - LOOM__COPY_TRAILER);
            x->bufs[r][b] = k;
        }
    }

    if (pl->nranks > 1) {
        loom_status hs = loom__exec_same_plan(x);
        if (hs != LOOM_OK)
            return fail(x, hs, env->err);
        if (loom__exec_wire_windows(x) != LOOM_OK)
            return fail(x, LOOM_ERR_NOMEM, "out of memory");
        loom__rt_set_wire(x->rt, &(loom__rt_wire){.ctx = x, .pack = loom__exec_wire.pack, .room = loom__exec_wire.room,
                                                  .unpack = loom__exec_wire.unpack});
    }
    loom_status bs = build_actors(x);
    if (bs != LOOM_OK)
        return fail(x, bs, bs == LOOM_ERR_NOMEM ? "out of memory" : loom__rt_error(x->rt));
    return x;
}

