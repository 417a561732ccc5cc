/* Building the physical plan (see plan.h): passes 1 to 4 make its tasks and registers, the boxing
 * tasks on first need; pass 5, the memory plan, is in plan_memory.c, and what the plan holds of the
 * program in plan_program.c. */
#include "graphs/plan/plan_internal.h"

#include "ops/sbp_sigs.h"
#include "runtime/comm/parts.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A CSR input's part: its rows under s, with room for every entry (a part of a matrix fed later
 * by a data source may hold more than its share of this one's). */
static size_t csr_part_bytes(const loom__value *fed, const loom__lay *l, int d)
{
    int64_t start[2], size[2];
    loom__nd_region(fed->shape, 2, &l->s, l->mesh, d, start, size);
    return loom__csr_bytes(size[0], fed->nnz, fed->dtype);
}

/* Writes a failure's message into the source's error buffer. */
static void plan_fail(const loom__plan_src *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void plan_fail(const loom__plan_src *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, p->err_size, fmt, ap);
    va_end(ap);
}

/* ---- building blocks ------------------------------------------------------------------------- */

static int grow(void **a, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return 0;
    int c = *cap ? *cap : 64;
    while (c < need)
        c *= 2;
    void *b = realloc(*a, (size_t)c * elem);
    if (!b)
        return -1;
    memset((char *)b + (size_t)*cap * elem, 0, (size_t)(c - *cap) * elem);
    *a = b;
    *cap = c;
    return 0;
}

/* A task; a compute, boxing or move task joins its device's chain `chain` (see loom__task). */
static int add_task(loom__plan *pl, loom__task_kind kind, const loom_tensor *t, int device, int n_in, int n_out, int chain)
{
    if (grow((void **)&pl->task, &pl->cap_tasks, pl->ntasks + 1, sizeof *pl->task))
        return -1;
    loom__task *k = &pl->task[pl->ntasks];
    *k = (loom__task){.kind = kind, .tensor = t ? t->id : -1, .update = -1, .device = device, .chain_pos = -1, .n_in = 0,
                      .n_out = n_out};
    k->in = calloc((size_t)(n_in ? n_in : 1), sizeof *k->in);
    k->out = calloc((size_t)(n_out ? n_out : 1), sizeof *k->out);
    if (!k->in || !k->out) {
        free(k->in);
        free(k->out);
        return -1;
    }
    if (kind == LOOM__TASK_COMPUTE || kind == LOOM__TASK_BOXING || kind == LOOM__TASK_MOVE) {
        k->chain_pos = pl->nchain[device]++;
        k->chain = pl->nchains > 1 ? chain : LOOM__CHAIN_FWD;
    }
    return pl->ntasks++;
}

static int add_regst(loom__plan *pl, int task, int tensor, int dom, int part, const loom__lay *l, size_t bytes, int regst_num)
{
    if (grow((void **)&pl->regst, &pl->cap_regst, pl->nregst + 1, sizeof *pl->regst))
        return -1;
    pl->regst[pl->nregst] = (loom__regst){.producer = task, .tensor = tensor, .dom = dom, .part = part, .nparts = l->n,
                                          .sbp = l->s.v[0], .bytes = bytes, .regst_num = regst_num, .mem = LOOM__MEM_OWN};
    if (l->s.n > 1) {
        pl->regst[pl->nregst].sbp1 = l->s.v[1];
        memcpy(pl->regst[pl->nregst].mesh, l->mesh, sizeof l->mesh);
    }
    return pl->nregst++;
}

static void add_input(loom__plan *pl, int task, int r)
{
    loom__task *k = &pl->task[task];
    k->in[k->n_in++] = r;
    pl->regst[r].nconsumers++;
}

/* A boxed form of a tensor: its parts under `want`, registers base .. base + nparts - 1. */
typedef struct boxed {
    loom_nd_sbp want;
    int base;
    int next; /* the tensor's next boxed form, or -1 */
} boxed;

typedef struct builder {
    const loom__plan_src *p;
    loom__plan *pl;
    boxed *box;
    int nbox, cap_box;
    int *box_head;           /* by tensor id: its first boxed form in box, or -1 */
    loom_tensor **update_of; /* by parameter id: the update op that changes it in this mode, or NULL */
    uint8_t *is_grad;        /* by id: a parameter's gradient (in modes with gradients) */
    int *regst_of;           /* by tensor id * ndev + device: the register of its part there, or -1 */
    int chain;               /* the chain that the tasks made now join */
    int most;                /* parts of the largest placement */
    int *regs;               /* LOOM__MAX_SRC rows of `most`: the registers of a compute task's sources, by part */
} builder;

/* The builder's tables by tensor id; -1 on out of memory. */
static int builder_tables(builder *b)
{
    const loom__plan_src *p = b->p;
    for (int k = 0; k < b->pl->nplaces; k++)
        b->most = b->pl->place_n[k] > b->most ? b->pl->place_n[k] : b->most;
    b->regs = malloc((size_t)LOOM__MAX_SRC * (size_t)b->most * sizeof *b->regs);
    b->box_head = malloc(((size_t)p->n + 1) * sizeof *b->box_head);
    b->update_of = calloc((size_t)p->n + 1, sizeof *b->update_of);
    b->is_grad = calloc((size_t)p->n + 1, sizeof *b->is_grad);
    if (!b->regs || !b->box_head || !b->update_of || !b->is_grad)
        return -1;
    for (int id = 0; id < p->n; id++)
        b->box_head[id] = -1;
    for (int u = p->bwd_end; b->pl->mode == LOOM_RUN_STEP && u < p->n; u++) /* the last one, should there be several */
        if (loom__op_def(p->g->t[u]->op)->flags & LOOM__OPF_INPLACE)
            b->update_of[p->g->t[u]->src[0]->id] = p->g->t[u];
    for (int q = 0; b->pl->mode >= LOOM_RUN_GRAD && q < p->fwd_end; q++)
        if (p->g->t[q]->op == LOOM_OP_PARAM && p->grad[q])
            b->is_grad[p->grad[q]->id] = 1;
    return 0;
}

static void builder_free(builder *b)
{
    free(b->box);
    free(b->box_head);
    free(b->update_of);
    free(b->is_grad);
    free(b->regst_of);
    free(b->regs);
}

/* The sbp of tensor id: inference's on several devices, B on one; of one level, or two on a mesh. */
static loom_nd_sbp sbp_of(const builder *b, int id)
{
    return b->p->ndevices > 1 ? loom__sbp_plan_nd(b->p->sbp, id) : loom_nd_sbp_1d(loom_broadcast());
}
/* Parts of t (its placement's devices), and the plan device that holds part j. */
static int nparts(const builder *b, const loom_tensor *t) { return b->pl->place_n[t->place]; }
/* How t's parts lie under s. */
static loom__lay lay_of(const builder *b, const loom_tensor *t, loom_nd_sbp s)
{
    loom__lay l = {.s = s, .mesh = {nparts(b, t), 1}, .n = nparts(b, t)};
    if (s.n > 1)
        memcpy(l.mesh, b->p->sbp->mesh[t->id], sizeof l.mesh);
    return l;
}
/* Bytes of part j of t laid out as l, as the plan's op table has it (with micro-batches, a
 * micro-batch's: see loom__plan.micro). */
static size_t part_bytes(const builder *b, const loom_tensor *t, const loom__lay *l, int j)
{
    return t->layout == LOOM__CSR ? csr_part_bytes(&b->p->val[t->id], l, j)
                                  : loom__lay_bytes(b->pl->g, b->pl->g->t[t->id], l, j);
}
static int dev_of(const builder *b, const loom_tensor *t, int j) { return b->pl->place_dev[t->place][j]; }
/* The parts of t this plan holds, lo .. hi - 1: every part, or those of its rank's devices. */
static int lo_of(const builder *b, const loom_tensor *t) { return b->pl->place_lo[t->place]; }
static int hi_of(const builder *b, const loom_tensor *t) { return b->pl->place_hi[t->place]; }
/* The register of part j of t as it is (its own SBP). */
static int *part_reg(const builder *b, const loom_tensor *t, int j)
{
    return &b->regst_of[(size_t)t->id * b->pl->ndev + dev_of(b, t, j)];
}

/* Over ranks, the axis a two-phase all-reduce of src (a ring: loom__all_reduce_ring) splits on,
 * or -1 for one phase: a dense tensor of static shape, from P to B on every level of more than
 * one device (every device sums every part, in device order, as one phase does), on an axis whose
 * ranges are contiguous (every dim before it is 1), so that only a device's range of another
 * rank's part crosses to it (actors/wire.c). */
static int ring_axis(const builder *b, const loom_tensor *src, loom_nd_sbp from, loom_nd_sbp want, int n)
{
    const loom__lay l = lay_of(b, src, from);
    int any = 0, axis = loom__route_axis(src, n);
    if (from.n != want.n || axis < 0)
        return -1;
    for (int k = 0; k < from.n; k++) {
        if (l.mesh[k] == 1)
            continue;
        if (from.v[k].kind != LOOM_SBP_PARTIAL_SUM || want.v[k].kind != LOOM_SBP_BROADCAST)
            return -1;
        any = 1;
    }
    for (int a = 0; a < src->shape.ndim; a++)
        if (loom_dim_is_dynamic(src->shape.d[a]) || (a < axis && src->shape.d[a] != 1))
            return -1;
    int per_rank = b->pl->place_per_rank[src->place];
    return any && loom__all_reduce_ring(loom__tensor_bytes(src), n, per_rank, &b->p->cost->dev[LOOM_DEVICE_CPU]) ? axis : -1;
}

/* The axis a two-phase all-reduce of src splits on (loom__all_reduce_two_phase, or over ranks
 * ring_axis), or -1 for one phase: CPU devices only (the shared-memory boxing), the first axis it
 * can split. */
static int two_phase_axis(const builder *b, const loom_tensor *src, loom_nd_sbp from_nd, loom_nd_sbp want_nd, int n)
{
    if (b->pl->kind != LOOM_DEVICE_CPU || !b->p->cost || src->layout != LOOM__DENSE)
        return -1;
    if (b->pl->place_per_rank[src->place] < n)
        return ring_axis(b, src, from_nd, want_nd, n);
    if (from_nd.n > 1) /* a mesh of one rank boxes in one task per device (loom__lay_convert) */
        return -1;
    loom_sbp from = from_nd.v[0], want = want_nd.v[0];
    if (from.kind != LOOM_SBP_PARTIAL_SUM || want.kind != LOOM_SBP_BROADCAST ||
        !loom__all_reduce_two_phase(loom__tensor_bytes(src), n, &b->p->cost->dev[LOOM_DEVICE_CPU]))
        return -1;
    return loom__route_axis(src, n);
}

/* Fills regs[j] with the register of part j of src under `want`, making the boxing tasks on
 * first need (in each device's chain at this point); -1 on out of memory. One part is the same
 * value under any SBP. A boxing task on a GPU reads its own part (the collective joins the
 * others); on the CPU it reads every part where it lies: of src as it is, or, for the second phase
 * of a two-phase all-reduce, of src reduced into the ranges of an axis. */
static int parts_as(builder *b, const loom_tensor *src, loom_nd_sbp want, int *regs)
{
    loom__plan *pl = b->pl;
    const int n = nparts(b, src), lo = lo_of(b, src), hi = hi_of(b, src);
    loom_nd_sbp from = sbp_of(b, src->id);
    if (n == 1 || loom_nd_sbp_equal(&from, &want)) {
        for (int j = lo; j < hi; j++)
            regs[j] = *part_reg(b, src, j);
        return 0;
    }
    for (int i = b->box_head[src->id]; i >= 0; i = b->box[i].next)
        if (loom_nd_sbp_equal(&b->box[i].want, &want)) {
            for (int j = lo; j < hi; j++)
                regs[j] = b->box[i].base + j - lo;
            return 0;
        }
    int *in = malloc((size_t)n * sizeof *in), axis = two_phase_axis(b, src, from, want, n);
    if (!in || (axis >= 0 && parts_as(b, src, loom_nd_sbp_1d(loom_split(axis)), in) < 0) ||
        grow((void **)&b->box, &b->cap_box, b->nbox + 1, sizeof *b->box))
        return free(in), -1;
    for (int j = lo; axis < 0 && j < hi; j++)
        in[j] = *part_reg(b, src, j);
    int gpu = pl->kind == LOOM_DEVICE_CUDA;
    const loom__lay l = lay_of(b, src, want);
    for (int j = lo; j < hi; j++) {
        int d = dev_of(b, src, j);
        int k = add_task(pl, LOOM__TASK_BOXING, src, d, gpu ? 1 : hi - lo, 1, b->chain);
        int r = k < 0 ? -1 : add_regst(pl, k, src->id, d, j, &l, part_bytes(b, src, &l, j), 1);
        if (r < 0)
            return free(in), -1;
        pl->task[k].out[0] = r;
        regs[j] = r; /* consecutive: regs[lo] + j - lo */
        if (gpu)
            add_input(pl, k, in[j]);
        else
            for (int i = lo; i < hi; i++)
                add_input(pl, k, in[i]);
    }
    for (int j = lo; !gpu && hi - lo < n && j < hi; j++)
        pl->regst[in[j]].elsewhere = 1; /* the boxing tasks of the other ranks' devices read it too */
    free(in);
    b->box[b->nbox] = (boxed){.want = want, .base = hi > lo ? regs[lo] : -1, .next = b->box_head[src->id]};
    b->box_head[src->id] = b->nbox++;
    return 0;
}

/* ---- passes ---------------------------------------------------------------------------------- */

/* 1. The source: one register per (input, part), holding the part's share of the piece's input
 * (the source's outputs: each input's parts in turn); on GPUs fed by a data source, a copy task
 * per part brings it over. */
static int plan_source(builder *b, int source_regst_num)
{
    const loom__plan_src *p = b->p;
    loom__plan *pl = b->pl;
    int gpu = pl->kind == LOOM_DEVICE_CUDA, nout = 0;
    for (int id = 0; id < p->fwd_end; id++)
        if (p->g->t[id]->op == LOOM_OP_INPUT)
            nout += hi_of(b, p->g->t[id]) - lo_of(b, p->g->t[id]);
    int src = add_task(pl, LOOM__TASK_SOURCE, NULL, LOOM__HOST, 0, nout, 0);
    if (src < 0)
        return -1;
    for (int id = 0, o = 0; id < p->fwd_end; id++) {
        loom_tensor *t = p->g->t[id];
        if (t->op != LOOM_OP_INPUT)
            continue;
        const loom__lay l = lay_of(b, t, sbp_of(b, id));
        for (int j = lo_of(b, t); j < hi_of(b, t); j++, o++) {
            int d = dev_of(b, t, j);
            size_t bytes = part_bytes(b, t, &l, j);
            /* fed data is staged once per run on its device; a data source's piece lands on the host */
            int dom = gpu && !p->source ? d : LOOM__HOST;
            int r = add_regst(pl, src, id, dom, j, &l, bytes, source_regst_num);
            if (r < 0)
                return -1;
            pl->regst[r].mem = p->source || pl->micro > 1 ? LOOM__MEM_OWN : LOOM__MEM_NONE; /* a micro-batch is copied in */
            pl->task[src].out[o] = r;
            *part_reg(b, t, j) = r;
            if (gpu && p->source) {
                int c = add_task(pl, LOOM__TASK_COPY, t, d, 1, 1, 0);
                if (c < 0)
                    return -1;
                pl->task[c].dir = LOOM__H2D;
                add_input(pl, c, r);
                int rd = add_regst(pl, c, id, d, j, &l, bytes, source_regst_num);
                if (rd < 0)
                    return -1;
                pl->task[c].out[0] = rd;
                *part_reg(b, t, j) = rd;
            }
        }
    }
    return 0;
}

/* 2. Variables: a parameter's part on each device of its placement, with the update op that
 * changes it in this mode. One CPU device keeps parameters in the program's storage; otherwise
 * every device holds its parts of the parameters and of their optimizer state in a persistent
 * area. */
static int plan_variables(builder *b)
{
    const loom__plan_src *p = b->p;
    loom__plan *pl = b->pl;
    int in_program = pl->ndev_all == 1 && pl->kind == LOOM_DEVICE_CPU;
    for (int id = 0; id < p->n; id++) {
        loom_tensor *t = p->g->t[id];
        if (t->op != LOOM_OP_PARAM && (t->op != LOOM_OP_STATE || pl->mode != LOOM_RUN_STEP))
            continue;
        const int lo = lo_of(b, t), hi = hi_of(b, t);
        const loom__lay l = lay_of(b, t, sbp_of(b, id));
        for (int j = lo; j < hi && !in_program; j++) {
            int d = dev_of(b, t, j);
            pl->param_off[(size_t)id * pl->ndev + d] = pl->mem[d].params;
            pl->mem[d].params = loom__bytes_add(pl->mem[d].params, part_bytes(b, t, &l, j));
        }
        if (t->op != LOOM_OP_PARAM || id >= p->fwd_end)
            continue;
        loom_tensor *update = b->update_of[id];
        for (int j = lo; j < hi; j++) {
            int d = dev_of(b, t, j);
            int k = add_task(pl, LOOM__TASK_VARIABLE, t, d, 1, 1, 0);
            if (k < 0)
                return -1;
            pl->task[k].update = update ? update->id : -1;
            /* with micro-batches a version is read by each of the step's micro-batches: as many
             * buffers, each the parameter itself */
            int r = add_regst(pl, k, id, d, j, &l, part_bytes(b, t, &l, j), pl->micro);
            if (r < 0)
                return -1;
            pl->regst[r].mem = in_program ? LOOM__MEM_NONE : LOOM__MEM_PARAM;
            pl->regst[r].offset = in_program ? 0 : pl->param_off[(size_t)id * pl->ndev + d];
            pl->task[k].out[0] = r;
            *part_reg(b, t, j) = r;
        }
    }
    return 0;
}

/* 3. Compute tasks in id order on their placement's devices, each source boxed to the SBP the
 * op's signature wants (a move reads every part of its source, wherever that is); then each
 * variable reads its gradient boxed to the parameter's SBP. */
static int plan_compute(builder *b, int end)
{
    const loom__plan_src *p = b->p;
    loom__plan *pl = b->pl;
    int *regs[LOOM__MAX_SRC];
    for (int i = 0; i < LOOM__MAX_SRC; i++)
        regs[i] = b->regs + (size_t)i * b->most;
    for (int id = 0; id < end; id++) {
        loom_tensor *t = p->g->t[id];
        const loom_op_def *def = loom__op_def(t->op);
        if (def->flags & LOOM__OPF_LEAF || p->dead[id])
            continue;
        b->chain = id < p->fwd_end ? LOOM__CHAIN_FWD : LOOM__CHAIN_BWD;
        if (def->flags & LOOM__OPF_INPLACE) { /* the variable runs it: its gradient comes boxed */
            if (t->n_src > 1 && pl->mode == LOOM_RUN_STEP && parts_as(b, t->src[1], sbp_of(b, t->src[0]->id), regs[0]) < 0)
                return -1;
            continue;
        }
        for (int i = 0; i < t->n_src; i++) {
            if (hi_of(b, t->src[i]) > lo_of(b, t->src[i]) && *part_reg(b, t->src[i], lo_of(b, t->src[i])) < 0) {
                plan_fail(p, "loom plan: %s '%s' reads '%s', which no task makes (internal error)",
                                   def->name, loom_tensor_name(t), loom_tensor_name(t->src[i]));
                return -2;
            }
            loom_nd_sbp want = p->ndevices > 1 ? loom__sbp_plan_want(p->sbp, t, i) : loom_nd_sbp_1d(loom_broadcast());
            if (parts_as(b, t->src[i], want, regs[i]) < 0)
                return -1;
        }
        int move = t->op == LOOM_OP_MOVE, slo = move ? lo_of(b, t->src[0]) : 0, shi = move ? hi_of(b, t->src[0]) : 0;
        const loom__lay l = lay_of(b, t, sbp_of(b, id));
        for (int j = lo_of(b, t); j < hi_of(b, t); j++) {
            int d = dev_of(b, t, j);
            int k = add_task(pl, move ? LOOM__TASK_MOVE : LOOM__TASK_COMPUTE, t, d, move ? shi - slo : t->n_src, 1, b->chain);
            if (k < 0)
                return -1;
            if (move) /* every part of the source (this plan holds), as it is */
                for (int i = slo; i < shi; i++)
                    add_input(pl, k, regs[0][i]);
            else
                for (int i = 0; i < t->n_src; i++)
                    add_input(pl, k, regs[i][j]);
            int r = add_regst(pl, k, id, d, j, &l, part_bytes(b, t, &l, j), 1);
            if (r < 0)
                return -1;
            pl->task[k].out[0] = r;
            *part_reg(b, t, j) = r;
        }
        for (int i = slo; move && hi_of(b, t) - lo_of(b, t) < nparts(b, t) && i < shi; i++)
            pl->regst[regs[0][i]].elsewhere = 1; /* the move tasks of the other ranks' devices read it too */
    }
    b->chain = LOOM__CHAIN_BWD;
    for (int k = 0; k < pl->ntasks; k++) {
        if (pl->task[k].kind != LOOM__TASK_VARIABLE || pl->task[k].update < 0)
            continue;
        const loom_tensor *grad = p->g->t[pl->task[k].update]->src[1];
        if (parts_as(b, grad, sbp_of(b, pl->task[k].tensor), regs[0]) < 0)
            return -1;
        int r = regs[0][pl->regst[pl->task[k].out[0]].part];
        if (pl->micro > 1) { /* the step's gradient: its micro-batches' summed */
            int a = add_task(pl, LOOM__TASK_ACC, grad, pl->task[k].device, 1, 1, 0);
            if (a < 0)
                return -1;
            add_input(pl, a, r);
            const loom__regst *g = &pl->regst[r];
            const loom__lay gl = lay_of(b, grad, sbp_of(b, pl->task[k].tensor));
            int ra = add_regst(pl, a, g->tensor, g->dom, g->part, &gl, g->bytes, 1);
            if (ra < 0)
                return -1;
            pl->task[a].out[0] = r = ra;
        }
        add_input(pl, k, r);
    }
    return 0;
}

/* Pipeline stages: the placements in the order the model first reaches them, a placement whose
 * devices all belong to earlier stages adding none; each device in the stage of the first that
 * holds it. -1 on out of memory. */
static int plan_stages(builder *b)
{
    const loom__plan_src *p = b->p;
    loom__plan *pl = b->pl;
    pl->stage = calloc((size_t)pl->ndev, sizeof *pl->stage);
    uint8_t *seen = calloc((size_t)pl->nplaces, 1);
    if (!pl->stage || !seen) {
        free(seen);
        return -1;
    }
    for (int d = 0; d < pl->ndev; d++)
        pl->stage[d] = -1;
    for (int id = 0; id < p->fwd_end; id++) {
        int k = p->g->t[id]->place, added = 0;
        if (seen[k])
            continue;
        seen[k] = 1;
        for (int j = pl->place_lo[k]; j < pl->place_hi[k]; j++)
            if (pl->stage[pl->place_dev[k][j]] < 0)
                pl->stage[pl->place_dev[k][j]] = pl->nstages, added = 1;
        pl->nstages += added;
    }
    for (int d = 0; d < pl->ndev; d++) /* a device no forward tensor is on */
        pl->stage[d] = pl->stage[d] < 0 ? 0 : pl->stage[d];
    pl->nstages = pl->nstages ? pl->nstages : 1;
    free(seen);
    return 0;
}

/* 4. Sinks: the loss, what the caller keeps, parameters' gradients, and every computed value
 * nobody reads; each reads every part (through a copy back from a GPU). An input a data source
 * feeds is kept when the caller asks: its sink reads the source's own registers, on the host. */
static int plan_sinks(builder *b, const uint8_t *keep)
{
    const loom__plan_src *p = b->p;
    loom__plan *pl = b->pl;
    int gpu = pl->kind == LOOM_DEVICE_CUDA;
    for (int o = 0; p->source && keep && o < pl->task[0].n_out;) { /* task 0, the source (add_task may move the table) */
        const loom__regst *rg = &pl->regst[pl->task[0].out[o]];
        const int id = rg->tensor, n = hi_of(b, p->g->t[id]) - lo_of(b, p->g->t[id]);
        if (keep[id]) {
            int s = add_task(pl, LOOM__TASK_SINK, p->g->t[id], LOOM__HOST, n, 0, 0);
            if (s < 0)
                return -1;
            for (int j = 0; j < n; j++)
                add_input(pl, s, pl->task[0].out[o + j]);
            pl->kept[id] = 1;
        }
        o += n;
    }
    int ntasks = pl->ntasks;
    for (int k = 0; k < ntasks; k++) {
        const loom__task *tk = &pl->task[k];
        if (tk->kind != LOOM__TASK_COMPUTE && tk->kind != LOOM__TASK_MOVE)
            continue;
        loom_tensor *t = p->g->t[tk->tensor];
        if (pl->regst[tk->out[0]].part != lo_of(b, t))
            continue; /* one sink per tensor, found at its first part here */
        int id = t->id, r0 = tk->out[0], lo = lo_of(b, t), n = hi_of(b, t) - lo;
        if (!(keep && keep[id]) && t != p->loss && (pl->regst[r0].nconsumers || pl->regst[r0].elsewhere) && !b->is_grad[id]) /* parameters' gradients stay fetchable (loom_program_grad) */
            continue;
        int s = add_task(pl, LOOM__TASK_SINK, t, LOOM__HOST, n, 0, 0);
        if (s < 0)
            return -1;
        for (int j = lo; j < lo + n; j++) {
            int r = *part_reg(b, t, j);
            if (gpu) {
                int c = add_task(pl, LOOM__TASK_COPY, t, dev_of(b, t, j), 1, 1, 0);
                if (c < 0)
                    return -1;
                pl->task[c].dir = LOOM__D2H;
                add_input(pl, c, r);
                const loom__lay l = loom__regst_lay(&pl->regst[r]);
                int rh = add_regst(pl, c, id, LOOM__HOST, j, &l, loom__bytes_add(pl->regst[r].bytes, LOOM__COPY_TRAILER), 1);
                if (rh < 0)
                    return -1;
                pl->task[c].out[0] = rh;
                r = rh;
            }
            add_input(pl, s, r);
        }
        pl->kept[id] = 1;
    }
    return 0;
}

/* The message of a plan over an int64 byte count: its largest register, which is what to shrink. */
static void fail_over(const loom__plan_src *p, const loom__plan *pl)
{
    const loom__regst *big = NULL;
    for (int r = 0; r < pl->nregst; r++)
        if (!big || pl->regst[r].bytes > big->bytes)
            big = &pl->regst[r];
    char b[128];
    const loom_tensor *t = big ? p->g->t[big->tensor] : NULL;
    plan_fail(p, "loom plan: the memory of a step is over what an int64 byte count holds; its largest register "
                       "holds '%s' %s of %s (at the bounds of its dims)",
                       t ? loom_tensor_name(t) : "?", t ? loom__shape_str(p->g, &t->shape, b, sizeof b) : "[]",
                       t ? loom_dtype_name(t->dtype) : "?");
}

loom__plan *loom__plan_build(const loom__plan_src *p, loom_run_mode mode, const uint8_t *keep, int source_regst_num, loom_status *status)
{
    const loom_graph *g = p->g;
    int end = mode == LOOM_RUN_STEP ? p->n : mode == LOOM_RUN_GRAD ? p->bwd_end : p->fwd_end;
    loom__plan *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    builder b = {.p = p, .pl = pl};
    pl->mode = mode;
    pl->kind = g->placement ? loom_placement_kind(g->placement) : LOOM_DEVICE_CPU;
    int st = -1;
    if (p->ndevices > 1 && p->sbp->mesh && pl->kind != LOOM_DEVICE_CPU && p->rank < 0) { /* boxing on a mesh: in shared memory */
        plan_fail(p, "loom plan: the actor runtime runs 2-D placements on CPU devices only, not %s; run it with the SBP reference "
                     "executor (LOOM_EXEC_REFERENCE) or on a 1-D placement", loom_device_kind_name(pl->kind));
        st = -2;
        goto out;
    }
    if (loom__plan_devices(pl, g, p->rank) || loom__plan_program(pl, p) || (st = loom__plan_micro(pl, p)) != 0)
        goto out;
    st = -1;
    pl->ndev_all = p->rank >= 0 ? p->ndevices : pl->ndev;
    pl->schedule = p->schedule;
    pl->nchains = pl->micro > 1 && mode >= LOOM_RUN_GRAD ? LOOM__NCHAINS : 1;
    if (pl->micro > 1) /* data loading runs regst_num steps ahead, as without micro-batches */
        source_regst_num = (int)(source_regst_num * (int64_t)pl->micro > LOOM_MAX_REGST_NUM ? LOOM_MAX_REGST_NUM
                                                                                            : source_regst_num * pl->micro);
    pl->source_regst_num = source_regst_num;
    size_t n = (size_t)pl->ndev;
    b.regst_of = malloc((size_t)p->n * n * sizeof *b.regst_of + 1);
    pl->param_off = malloc((size_t)p->n * n * sizeof *pl->param_off + 1);
    pl->kept = calloc((size_t)(p->n + 1), sizeof *pl->kept);
    pl->nchain = calloc(n, sizeof *pl->nchain);
    pl->mem = calloc(n, sizeof *pl->mem);
    if (!b.regst_of || !pl->param_off || !pl->kept || !pl->nchain || !pl->mem)
        goto out;
    for (size_t i = 0; i < (size_t)p->n * n; i++) {
        b.regst_of[i] = -1;
        pl->param_off[i] = (size_t)-1;
    }
    if (builder_tables(&b) || plan_stages(&b) || plan_source(&b, source_regst_num) || plan_variables(&b) ||
        (st = plan_compute(&b, end)) != 0 || (st = -1, plan_sinks(&b, keep)) || (st = loom__plan_memory(pl, source_regst_num)) != 0)
        goto out;
    builder_free(&b);
    *status = LOOM_OK;
    return pl;

out:
    builder_free(&b);
    *status = st == -3 ? LOOM_ERR_SHAPE : st == -4 ? LOOM_ERR_INVALID : LOOM_ERR_RUNTIME;
    if (st == -3)
        fail_over(p, pl);
    else if (st != -2 && st != -4) /* -2, -4 (a graph refused): the message is set already */
        plan_fail(p, "loom plan: out of memory");
    loom__plan_free(pl);
    return NULL;
}
