/* The physical plan and the static memory plan (see plan.h). */
#include "graphs/plan/plan.h"

#include "graphs/plan/memplan.h"
#include "runtime/comm/parts.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every size and offset of a plan is a byte count within an int64, or LOOM__PLAN_OVER where one
 * would not be: sums and products that meet it stay it, so an overflow anywhere reaches the totals,
 * which plan_memory checks. */
size_t loom__bytes_add(size_t a, size_t b)
{
    int64_t r;
    return a <= INT64_MAX && b <= INT64_MAX && !loom__add_size((int64_t)a, (int64_t)b, &r) ? (size_t)r : LOOM__PLAN_OVER;
}
static size_t mul_bytes(size_t a, int64_t k)
{
    int64_t r;
    return a <= INT64_MAX && !loom__mul_size((int64_t)a, k, &r) ? (size_t)r : LOOM__PLAN_OVER;
}

#define ALIGN 64
static size_t align_up(size_t n)
{
    size_t m = loom__bytes_add(n, ALIGN - 1);
    return m == LOOM__PLAN_OVER ? m : m / ALIGN * ALIGN;
}

size_t loom__csr_bytes(int64_t nrows, int64_t nnz, loom_dtype vdtype)
{
    int64_t rows;
    if (loom__add_size(nrows, 1, &rows))
        return LOOM__PLAN_OVER;
    return loom__bytes_add(loom__bytes_add(align_up(mul_bytes(sizeof(int32_t), rows)), align_up(mul_bytes(sizeof(int32_t), nnz))),
                     align_up(mul_bytes(loom_dtype_size(vdtype), nnz)));
}

size_t loom__part_bytes(const loom_graph *g, const loom_tensor *t, loom_sbp s, int n, int d)
{
    int64_t shape[LOOM_MAX_DIMS], bytes;
    for (int i = 0; i < t->shape.ndim; i++) {
        int64_t b = loom__dim_bound(g, t->shape.d[i]), start;
        shape[i] = b;
        if (s.kind == LOOM_SBP_SPLIT && s.axis == i)
            loom_split_part(b, n, d, &start, &shape[i]);
    }
    if (loom__dense_size(t->dtype, t->shape.ndim, shape, NULL, &bytes))
        return LOOM__PLAN_OVER;
    return align_up(bytes ? (size_t)bytes : 1);
}

/* A CSR input's part: its rows under s, with room for every entry (a part of a matrix fed later
 * by a data source may hold more than its share of this one's). */
static size_t csr_part_bytes(const loom__value *fed, loom_sbp s, int n, int d)
{
    int64_t start, rows = fed->shape[0];
    if (s.kind == LOOM_SBP_SPLIT)
        loom_split_part(fed->shape[0], n, d, &start, &rows);
    return loom__csr_bytes(rows, fed->nnz, fed->dtype);
}

/* The plan's op table, freed with it. */
static void ops_free(loom_graph *g)
{
    if (!g)
        return;
    free(g->t);
    free(g->chunk);
    free(g->dyn);
    free(g);
}

void loom__plan_free(loom__plan *pl)
{
    if (!pl)
        return;
    ops_free(pl->g);
    free((void *)pl->passes.grad_of);
    free(pl->sbp);
    free(pl->sig);
    free(pl->csr_rows);
    free(pl->csr_nnz);
    for (int i = 0; i < pl->ntasks; i++) {
        free(pl->task[i].in);
        free(pl->task[i].out);
    }
    free(pl->task);
    free(pl->regst);
    free(pl->kept);
    free(pl->nchain);
    free(pl->param_off);
    free(pl->mem);
    free(pl->dev_index);
    for (int k = 0; pl->place_dev && k < pl->nplaces; k++)
        free(pl->place_dev[k]);
    free(pl->place_dev);
    free(pl->place_n);
    free(pl);
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

static int add_task(loom__plan *pl, loom__task_kind kind, const loom_tensor *t, int device, int n_in, int n_out)
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
    if (kind == LOOM__TASK_COMPUTE || kind == LOOM__TASK_BOXING || kind == LOOM__TASK_MOVE)
        k->chain_pos = pl->nchain[device]++;
    return pl->ntasks++;
}

static int add_regst(loom__plan *pl, int task, int tensor, int dom, int part, int nparts, loom_sbp sbp, size_t bytes,
                     int regst_num)
{
    if (grow((void **)&pl->regst, &pl->cap_regst, pl->nregst + 1, sizeof *pl->regst))
        return -1;
    pl->regst[pl->nregst] = (loom__regst){.producer = task, .tensor = tensor, .dom = dom, .part = part, .nparts = nparts,
                                          .sbp = sbp, .bytes = bytes, .regst_num = regst_num, .mem = LOOM__MEM_OWN};
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
    loom_sbp want;
    int base;
    int next; /* the tensor's next boxed form, or -1 */
} boxed;

typedef struct builder {
    const loom__plan_src *p;
    loom__plan *pl;
    boxed *box;
    int nbox, cap_box;
    int *box_head;           /* by tensor id: its first boxed form in box, or -1 */
    int regst_num;           /* of the source's registers, and of chain outputs the host reads */
    loom_tensor **update_of; /* by parameter id: the update op that changes it in this mode, or NULL */
    uint8_t *is_grad;        /* by id: a parameter's gradient (in modes with gradients) */
    int *regst_of;           /* by tensor id * ndev + device: the register of its part there, or -1 */
} builder;

/* The builder's tables by tensor id; -1 on out of memory. */
static int builder_tables(builder *b)
{
    const loom__plan_src *p = b->p;
    b->box_head = malloc(((size_t)p->n + 1) * sizeof *b->box_head);
    b->update_of = calloc((size_t)p->n + 1, sizeof *b->update_of);
    b->is_grad = calloc((size_t)p->n + 1, sizeof *b->is_grad);
    if (!b->box_head || !b->update_of || !b->is_grad)
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
}

/* The sbp of tensor id: inference's on several devices, B on one. */
static loom_sbp sbp_of(const builder *b, int id) { return b->p->ndevices > 1 ? b->p->sbp->sbp[id] : loom_broadcast(); }
/* Parts of t (its placement's devices), and the plan device that holds part j. */
static int nparts(const builder *b, const loom_tensor *t) { return b->pl->place_n[t->place]; }
static int dev_of(const builder *b, const loom_tensor *t, int j) { return b->pl->place_dev[t->place][j]; }
/* The register of part j of t as it is (its own SBP). */
static int *part_reg(const builder *b, const loom_tensor *t, int j)
{
    return &b->regst_of[(size_t)t->id * b->pl->ndev + dev_of(b, t, j)];
}

/* Fills regs[j] with the register of part j of src under `want`, making the boxing tasks on
 * first need (in each device's chain at this point); -1 on out of memory. One part is the same
 * value under any SBP. */
static int parts_as(builder *b, const loom_tensor *src, loom_sbp want, int *regs)
{
    loom__plan *pl = b->pl;
    int n = nparts(b, src);
    if (n == 1 || loom_sbp_equal(sbp_of(b, src->id), want)) {
        for (int j = 0; j < n; j++)
            regs[j] = *part_reg(b, src, j);
        return 0;
    }
    for (int i = b->box_head[src->id]; i >= 0; i = b->box[i].next)
        if (loom_sbp_equal(b->box[i].want, want)) {
            for (int j = 0; j < n; j++)
                regs[j] = b->box[i].base + j;
            return 0;
        }
    if (grow((void **)&b->box, &b->cap_box, b->nbox + 1, sizeof *b->box))
        return -1;
    int gpu = pl->kind == LOOM_DEVICE_CUDA;
    for (int j = 0; j < n; j++) {
        int d = dev_of(b, src, j);
        size_t bytes = src->layout == LOOM__CSR ? csr_part_bytes(&b->p->val[src->id], want, n, j)
                                                : loom__part_bytes(b->p->g, src, want, n, j);
        int k = add_task(pl, LOOM__TASK_BOXING, src, d, gpu ? 1 : n, 1);
        if (k < 0)
            return -1;
        int r = add_regst(pl, k, src->id, d, j, n, want, bytes, 1);
        if (r < 0)
            return -1;
        pl->task[k].out[0] = r;
        regs[j] = r; /* consecutive: regs[0] + j */
        if (gpu)
            add_input(pl, k, *part_reg(b, src, j));
        else
            for (int i = 0; i < n; i++)
                add_input(pl, k, *part_reg(b, src, i));
    }
    b->box[b->nbox] = (boxed){.want = want, .base = regs[0], .next = b->box_head[src->id]};
    b->box_head[src->id] = b->nbox++;
    return 0;
}

/* Places each shared register of device d by lifetime (loom__memplan); returns the size of the
 * device's shared block. */
static size_t place_shared(loom__plan *pl, int d)
{
    int n = 0;
    int *regs = malloc((size_t)(pl->nregst + 1) * sizeof *regs);
    loom__block *blk = malloc((size_t)(pl->nregst + 1) * sizeof *blk);
    size_t top = LOOM__MEMPLAN_NOMEM;
    if (regs && blk) {
        for (int r = 0; r < pl->nregst; r++)
            if (pl->regst[r].mem == LOOM__MEM_SHARED && pl->regst[r].dom == d) {
                const loom__regst *rg = &pl->regst[r];
                blk[n] = (loom__block){.first = rg->first, .last = rg->last, .bytes = rg->bytes};
                regs[n++] = r;
            }
        top = loom__memplan(blk, n);
        for (int i = 0; i < n && top != LOOM__MEMPLAN_NOMEM; i++)
            pl->regst[regs[i]].offset = blk[i].offset;
    }
    free(regs);
    free(blk);
    return top;
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
            nout += nparts(b, p->g->t[id]);
    int src = add_task(pl, LOOM__TASK_SOURCE, NULL, LOOM__HOST, 0, nout);
    if (src < 0)
        return -1;
    for (int id = 0, o = 0; id < p->fwd_end; id++) {
        loom_tensor *t = p->g->t[id];
        if (t->op != LOOM_OP_INPUT)
            continue;
        loom_sbp s = sbp_of(b, id);
        int n = nparts(b, t);
        for (int j = 0; j < n; j++, o++) {
            int d = dev_of(b, t, j);
            size_t bytes = t->layout == LOOM__CSR ? csr_part_bytes(&p->val[id], s, n, j) : loom__part_bytes(p->g, t, s, n, j);
            /* fed data is staged once per run on its device; a data source's piece lands on the host */
            int dom = gpu && !p->source ? d : LOOM__HOST;
            int r = add_regst(pl, src, id, dom, j, n, s, bytes, source_regst_num);
            if (r < 0)
                return -1;
            pl->regst[r].mem = p->source ? LOOM__MEM_OWN : LOOM__MEM_NONE;
            pl->task[src].out[o] = r;
            *part_reg(b, t, j) = r;
            if (gpu && p->source) {
                int c = add_task(pl, LOOM__TASK_COPY, t, d, 1, 1);
                if (c < 0)
                    return -1;
                pl->task[c].dir = LOOM__H2D;
                add_input(pl, c, r);
                int rd = add_regst(pl, c, id, d, j, n, s, bytes, source_regst_num);
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
    int in_program = pl->ndev == 1 && pl->kind == LOOM_DEVICE_CPU;
    for (int id = 0; id < p->n; id++) {
        loom_tensor *t = p->g->t[id];
        if (t->op != LOOM_OP_PARAM && (t->op != LOOM_OP_STATE || pl->mode != LOOM_RUN_STEP))
            continue;
        int n = nparts(b, t);
        for (int j = 0; j < n && !in_program; j++) {
            int d = dev_of(b, t, j);
            pl->param_off[(size_t)id * pl->ndev + d] = pl->mem[d].params;
            pl->mem[d].params = loom__bytes_add(pl->mem[d].params, loom__part_bytes(p->g, t, sbp_of(b, id), n, j));
        }
        if (t->op != LOOM_OP_PARAM || id >= p->fwd_end)
            continue;
        loom_tensor *update = b->update_of[id];
        for (int j = 0; j < n; j++) {
            int d = dev_of(b, t, j);
            int k = add_task(pl, LOOM__TASK_VARIABLE, t, d, 1, 1);
            if (k < 0)
                return -1;
            pl->task[k].update = update ? update->id : -1;
            int r = add_regst(pl, k, id, d, j, n, sbp_of(b, id), loom__part_bytes(p->g, t, sbp_of(b, id), n, j), 1);
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
    int regs[LOOM__MAX_SRC][LOOM__MAX_DEVICES];
    for (int id = 0; id < end; id++) {
        loom_tensor *t = p->g->t[id];
        const loom_op_def *def = loom__op_def(t->op);
        if (def->flags & LOOM__OPF_LEAF || p->dead[id])
            continue;
        if (def->flags & LOOM__OPF_INPLACE) { /* the variable runs it: its gradient comes boxed */
            if (t->n_src > 1 && pl->mode == LOOM_RUN_STEP && parts_as(b, t->src[1], sbp_of(b, t->src[0]->id), regs[0]) < 0)
                return -1;
            continue;
        }
        for (int i = 0; i < t->n_src; i++) {
            if (*part_reg(b, t->src[i], 0) < 0) {
                plan_fail(p, "loom plan: %s '%s' reads '%s', which no task makes (internal error)",
                                   def->name, loom_tensor_name(t), loom_tensor_name(t->src[i]));
                return -2;
            }
            loom_sbp want = p->ndevices > 1 ? p->sbp->sig[id].in[i] : loom_broadcast();
            if (parts_as(b, t->src[i], want, regs[i]) < 0)
                return -1;
        }
        int n = nparts(b, t), move = t->op == LOOM_OP_MOVE, nsrc = move ? nparts(b, t->src[0]) : 0;
        for (int j = 0; j < n; j++) {
            int d = dev_of(b, t, j);
            int k = add_task(pl, move ? LOOM__TASK_MOVE : LOOM__TASK_COMPUTE, t, d, move ? nsrc : t->n_src, 1);
            if (k < 0)
                return -1;
            if (move) /* every part of the source, as it is */
                for (int i = 0; i < nsrc; i++)
                    add_input(pl, k, regs[0][i]);
            else
                for (int i = 0; i < t->n_src; i++)
                    add_input(pl, k, regs[i][j]);
            int r = add_regst(pl, k, id, d, j, n, sbp_of(b, id), loom__part_bytes(p->g, t, sbp_of(b, id), n, j), 1);
            if (r < 0)
                return -1;
            pl->task[k].out[0] = r;
            *part_reg(b, t, j) = r;
        }
    }
    for (int k = 0; k < pl->ntasks; k++) {
        loom__task *v = &pl->task[k];
        if (v->kind != LOOM__TASK_VARIABLE || v->update < 0)
            continue;
        if (parts_as(b, p->g->t[v->update]->src[1], sbp_of(b, v->tensor), regs[0]) < 0)
            return -1;
        add_input(pl, k, regs[0][pl->regst[v->out[0]].part]);
    }
    return 0;
}

/* 4. Sinks: the loss, what the caller keeps, parameters' gradients, and every computed value
 * nobody reads; each reads every part (through a copy back from a GPU). */
static int plan_sinks(builder *b, const uint8_t *keep)
{
    const loom__plan_src *p = b->p;
    loom__plan *pl = b->pl;
    int gpu = pl->kind == LOOM_DEVICE_CUDA;
    int ntasks = pl->ntasks;
    for (int k = 0; k < ntasks; k++) {
        const loom__task *tk = &pl->task[k];
        if ((tk->kind != LOOM__TASK_COMPUTE && tk->kind != LOOM__TASK_MOVE) || pl->regst[tk->out[0]].part != 0)
            continue; /* one sink per tensor, found at its part 0 */
        loom_tensor *t = p->g->t[tk->tensor];
        int id = t->id, r0 = tk->out[0], n = nparts(b, t);
        if (!(keep && keep[id]) && t != p->loss && pl->regst[r0].nconsumers && !b->is_grad[id]) /* parameters' gradients stay fetchable (loom_program_grad) */
            continue;
        int s = add_task(pl, LOOM__TASK_SINK, t, LOOM__HOST, n, 0);
        if (s < 0)
            return -1;
        for (int j = 0; j < n; j++) {
            int r = *part_reg(b, t, j);
            if (gpu) {
                int c = add_task(pl, LOOM__TASK_COPY, t, dev_of(b, t, j), 1, 1);
                if (c < 0)
                    return -1;
                pl->task[c].dir = LOOM__D2H;
                add_input(pl, c, r);
                int rh = add_regst(pl, c, id, LOOM__HOST, j, n, pl->regst[r].sbp, loom__bytes_add(pl->regst[r].bytes, LOOM__COPY_TRAILER), 1);
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

/* 5. Memory: registers read only inside their device's chain share a block by lifetime; the rest
 * get regst_num buffers of their own, after it. */
static int plan_memory(builder *b)
{
    loom__plan *pl = b->pl;
    for (int r = 0; r < pl->nregst; r++) {
        loom__regst *rg = &pl->regst[r];
        const loom__task *prod = &pl->task[rg->producer];
        if (prod->chain_pos >= 0)
            rg->mem = LOOM__MEM_SHARED;
        rg->first = rg->last = prod->chain_pos;
    }
    for (int k = 0; k < pl->ntasks; k++) {
        const loom__task *c = &pl->task[k];
        for (int i = 0; i < c->n_in; i++) {
            loom__regst *rg = &pl->regst[c->in[i]];
            const loom__task *prod = &pl->task[rg->producer];
            if (prod->chain_pos < 0)
                continue;
            if (c->chain_pos < 0 || c->device != prod->device) {
                rg->mem = LOOM__MEM_OWN; /* read by a variable, a copy, a sink or another device */
                if (c->kind == LOOM__TASK_COPY || c->kind == LOOM__TASK_SINK)
                    rg->regst_num = b->regst_num; /* the chain goes on while the host takes it */
            } else if (c->chain_pos > rg->last) {
                rg->last = c->chain_pos;
            }
        }
    }
    for (int d = 0; d < pl->ndev; d++) {
        for (int r = 0; r < pl->nregst; r++)
            if (pl->regst[r].mem == LOOM__MEM_SHARED && pl->regst[r].dom == d)
                pl->mem[d].unshared = loom__bytes_add(pl->mem[d].unshared, pl->regst[r].bytes);
        pl->mem[d].shared = place_shared(pl, d);
        if (pl->mem[d].shared == LOOM__MEMPLAN_NOMEM)
            return -1;
        pl->mem[d].own = 0;
    }
    for (int r = 0; r < pl->nregst; r++) {
        loom__regst *rg = &pl->regst[r];
        size_t size = mul_bytes(rg->bytes, rg->regst_num);
        if (rg->mem == LOOM__MEM_OWN && rg->dom == LOOM__HOST) {
            rg->offset = pl->host_bytes;
            pl->host_bytes = loom__bytes_add(pl->host_bytes, size);
        } else if (rg->mem == LOOM__MEM_OWN) {
            rg->offset = loom__bytes_add(pl->mem[rg->dom].shared, pl->mem[rg->dom].own);
            pl->mem[rg->dom].own = loom__bytes_add(pl->mem[rg->dom].own, size);
        } else if (rg->mem == LOOM__MEM_NONE && rg->dom >= 0 && pl->task[rg->producer].kind == LOOM__TASK_SOURCE) {
            pl->mem[rg->dom].inputs = loom__bytes_add(pl->mem[rg->dom].inputs, rg->bytes); /* fed data staged on the device, one copy */
        }
    }
    size_t all = pl->host_bytes;
    for (int r = 0; r < pl->nregst; r++) /* a register without plan memory still sizes copies of it */
        all = pl->regst[r].bytes == LOOM__PLAN_OVER ? LOOM__PLAN_OVER : all;
    for (int d = 0; d < pl->ndev; d++) {
        const loom__dev_mem *m = &pl->mem[d];
        pl->shared_bytes = loom__bytes_add(pl->shared_bytes, m->shared);
        pl->own_bytes = loom__bytes_add(pl->own_bytes, m->own);
        pl->unshared_bytes = loom__bytes_add(pl->unshared_bytes, m->unshared);
        all = loom__bytes_add(all, loom__bytes_add(loom__bytes_add(m->shared, m->own), loom__bytes_add(m->params, m->inputs)));
    }
    return all == LOOM__PLAN_OVER || pl->unshared_bytes == LOOM__PLAN_OVER ? -3 : 0;
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

/* The plan's devices: each placement's, in the order they first appear; place_dev maps every
 * placement's positions onto them. */
static int plan_devices(loom__plan *pl, const loom_graph *g)
{
    pl->nplaces = g->nplaces ? g->nplaces : 1;
    pl->place_n = calloc((size_t)pl->nplaces, sizeof *pl->place_n);
    pl->place_dev = calloc((size_t)pl->nplaces, sizeof *pl->place_dev);
    pl->dev_index = calloc(LOOM__MAX_DEVICES, sizeof *pl->dev_index);
    if (!pl->place_n || !pl->place_dev || !pl->dev_index)
        return -1;
    int d_of[LOOM__MAX_DEVICES];
    for (int i = 0; i < LOOM__MAX_DEVICES; i++)
        d_of[i] = -1;
    for (int k = 0; k < pl->nplaces; k++) {
        const loom_placement *q = k < g->nplaces ? g->places[k] : NULL;
        int n = q ? loom_placement_ndevices(q) : 1;
        pl->place_n[k] = n;
        pl->place_dev[k] = malloc((size_t)n * sizeof **pl->place_dev);
        if (!pl->place_dev[k])
            return -1;
        for (int j = 0; j < n; j++) {
            int dev = q ? loom_placement_device(q, j, NULL) : 0;
            if (d_of[dev] < 0) {
                d_of[dev] = pl->ndev;
                pl->dev_index[pl->ndev++] = dev;
            }
            pl->place_dev[k][j] = d_of[dev];
        }
    }
    return 0;
}

/* The plan's op table: the program's tensors copied, their sources pointing inside the copy, with
 * the dynamic dims (their handles stay valid: same tag) and the seed. Names are searched there,
 * not hashed. */
static loom_graph *ops_copy(const loom_graph *g, int n)
{
    loom_graph *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->t = malloc(((size_t)n + 1) * sizeof *o->t);
    o->chunk = malloc(((size_t)n + 1) * sizeof *o->chunk);
    o->dyn = malloc(((size_t)g->ndyn + 1) * sizeof *o->dyn);
    if (!o->t || !o->chunk || !o->dyn) {
        ops_free(o);
        return NULL;
    }
    o->n = o->cap = n;
    o->ndyn = g->ndyn;
    if (g->ndyn) /* a graph without dynamic dims has no table */
        memcpy(o->dyn, g->dyn, (size_t)g->ndyn * sizeof *o->dyn);
    o->dyn_tag = g->dyn_tag;
    o->seed = g->seed;
    o->names_cap = -1;
    for (int id = 0; id < n; id++) {
        o->chunk[id] = *g->t[id];
        o->chunk[id].graph = o;
        o->t[id] = &o->chunk[id];
        for (int i = 0; i < o->chunk[id].n_src; i++)
            o->chunk[id].src[i] = &o->chunk[g->t[id]->src[i]->id];
    }
    return o;
}

/* What the plan holds of the program beyond its tasks: the op table, the passes, the loss, every
 * tensor's SBP and signature, the sparse inputs' sizes. -1 on out of memory. */
static int plan_program(loom__plan *pl, const loom__plan_src *p)
{
    size_t n = (size_t)p->n;
    pl->g = ops_copy(p->g, p->n);
    int *grad_of = malloc((n + 1) * sizeof *grad_of);
    pl->csr_rows = malloc((n + 1) * sizeof *pl->csr_rows);
    pl->csr_nnz = malloc((n + 1) * sizeof *pl->csr_nnz);
    pl->passes = (loom__passes){.g = pl->g, .fwd_end = p->fwd_end, .bwd_end = p->bwd_end, .grad_of = grad_of};
    if (!pl->g || !grad_of || !pl->csr_rows || !pl->csr_nnz)
        return -1;
    memcpy(grad_of, p->grad_of, n * sizeof *grad_of);
    for (size_t id = 0; id < n; id++) {
        /* a sparse input not fed yet: planned as an empty matrix (a feed plans again) */
        int sparse = p->g->t[id]->layout == LOOM__CSR, fed = sparse && p->ready[id];
        pl->csr_rows[id] = fed ? p->val[id].shape[0] : sparse ? 0 : -1;
        pl->csr_nnz[id] = fed ? p->val[id].nnz : sparse ? 0 : -1;
    }
    pl->loss = p->loss ? p->loss->id : -1;
    pl->nlogical = p->ndevices;
    if (p->ndevices > 1) {
        pl->sbp = malloc(n * sizeof *pl->sbp);
        pl->sig = malloc(n * sizeof *pl->sig);
        if (!pl->sbp || !pl->sig)
            return -1;
        memcpy(pl->sbp, p->sbp->sbp, n * sizeof *pl->sbp);
        memcpy(pl->sig, p->sbp->sig, n * sizeof *pl->sig);
    }
    return 0;
}

loom__plan *loom__plan_build(const loom__plan_src *p, loom_run_mode mode, const uint8_t *keep, int source_regst_num, loom_status *status)
{
    const loom_graph *g = p->g;
    int end = mode == LOOM_RUN_STEP ? p->n : mode == LOOM_RUN_GRAD ? p->bwd_end : p->fwd_end;
    loom__plan *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    builder b = {.p = p, .pl = pl, .regst_num = source_regst_num};
    pl->mode = mode;
    pl->source_regst_num = source_regst_num;
    pl->kind = g->placement ? loom_placement_kind(g->placement) : LOOM_DEVICE_CPU;
    int st = -1;
    if (plan_devices(pl, g) || plan_program(pl, p))
        goto out;
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
    if (builder_tables(&b) || plan_source(&b, source_regst_num) || plan_variables(&b) || (st = plan_compute(&b, end)) != 0 ||
        (st = -1, plan_sinks(&b, keep)) || (st = plan_memory(&b)) != 0)
        goto out;
    builder_free(&b);
    *status = LOOM_OK;
    return pl;

out:
    builder_free(&b);
    *status = st == -3 ? LOOM_ERR_SHAPE : LOOM_ERR_RUNTIME;
    if (st == -3)
        fail_over(p, pl);
    else if (st != -2) /* -2: the message is set already */
        plan_fail(p, "loom plan: out of memory");
    loom__plan_free(pl);
    return NULL;
}

static const char *const kind_name[LOOM__TASK_KIND_COUNT] = {"source", "variable", "compute", "boxing", "move", "copy", "sink"};
static const char *const mem_name[] = {"shared", "own", "param", "program"};

void loom__plan_print(const loom__plan *pl, FILE *f)
{
    char b[128], s1[32];
    for (int k = 0; k < pl->ntasks; k++) {
        const loom__task *t = &pl->task[k];
        const loom_tensor *tt = loom__task_tensor(pl, t);
        const char *what = tt ? (t->kind == LOOM__TASK_COMPUTE ? loom__op_def(tt->op)->name : loom_tensor_name(tt)) : "inputs";
        if (t->device == LOOM__HOST)
            snprintf(s1, sizeof s1, "host");
        else
            snprintf(s1, sizeof s1, "%s:%d", loom_device_kind_name(pl->kind), pl->dev_index[t->device]);
        fprintf(f, "task %3d %-8s %-8s %-24s", k, kind_name[t->kind], s1, what);
        if (t->kind == LOOM__TASK_COPY)
            fprintf(f, " %s", t->dir == LOOM__H2D ? "to the device" : "to the host");
        if (tt && t->kind != LOOM__TASK_SOURCE)
            fprintf(f, " %-20s %s", loom_tensor_name(tt), loom__shape_str(pl->g, &tt->shape, b, sizeof b));
        if (t->kind == LOOM__TASK_BOXING) {
            loom_sbp_str(pl->regst[t->in[0]].sbp, b, sizeof b);
            loom_sbp_str(pl->regst[t->out[0]].sbp, s1, sizeof s1);
            fprintf(f, " %s -> %s", b, s1);
        }
        fprintf(f, "\n");
    }
    for (int r = 0; r < pl->nregst; r++) {
        const loom__regst *rg = &pl->regst[r];
        if (rg->dom == LOOM__HOST)
            snprintf(s1, sizeof s1, "host");
        else
            snprintf(s1, sizeof s1, "%s:%d", loom_device_kind_name(pl->kind), pl->dev_index[rg->dom]);
        fprintf(f, "regst %3d of task %3d: %zu bytes x %d, %s %s at %zu", r, rg->producer, rg->bytes, rg->regst_num, s1,
                mem_name[rg->mem], rg->offset);
        if (rg->mem == LOOM__MEM_SHARED)
            fprintf(f, ", live %d..%d", rg->first, rg->last);
        fprintf(f, "\n");
    }
    for (int d = 0; d < pl->ndev; d++)
        fprintf(f, "memory of %s:%d: %zu bytes shared by lifetime (%zu without reuse), %zu bytes of own registers, %zu bytes of parameters and optimizer state%s\n",
                loom_device_kind_name(pl->kind), pl->dev_index[d], pl->mem[d].shared, pl->mem[d].unshared, pl->mem[d].own,
                pl->mem[d].params, pl->ndev == 1 && pl->kind == LOOM_DEVICE_CPU ? " (held by the program)" : "");
    fprintf(f, "memory: %zu bytes shared by lifetime (%zu without reuse), %zu bytes of own registers, %zu bytes on the host\n",
            pl->shared_bytes, pl->unshared_bytes, pl->own_bytes, pl->host_bytes);
}
