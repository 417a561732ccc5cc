/* The plan's byte counts and pass 5, its static memory plan (see plan.h): sizes of values and parts
 * that saturate at LOOM__PLAN_OVER, and each register placed in its domain's memory. */
#include "graphs/plan/plan_internal.h"

#include "graphs/plan/memplan.h"

#include <stdlib.h>

/* Every size and offset of a plan is a byte count within an int64, or LOOM__PLAN_OVER where one
 * would not be: sums and products that meet it stay it, so an overflow anywhere reaches the totals,
 * which loom__plan_memory checks. */
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
        int k = loom__dyn_index(g, t->shape.d[i]);
        shape[i] = b;
        if (s.kind == LOOM_SBP_SPLIT && s.axis == i) {
            if (k >= 0 && n > 1) /* a graph batch's parts are uneven: each is planned for its part bound */
                shape[i] = loom__dyn_part_bound(g, k, n, d);
            else
                loom_split_part(b, n, d, &start, &shape[i]);
        }
    }
    if (loom__dense_size(t->dtype, t->shape.ndim, shape, NULL, &bytes))
        return LOOM__PLAN_OVER;
    return align_up(bytes ? (size_t)bytes : 1);
}

size_t loom__lay_bytes(const loom_graph *g, const loom_tensor *t, const loom__lay *l, int d)
{
    if (l->s.n == 1)
        return loom__part_bytes(g, t, l->s.v[0], l->n, d);
    int64_t bound[LOOM_MAX_DIMS], shape[LOOM_MAX_DIMS], bytes;
    for (int i = 0; i < t->shape.ndim; i++)
        bound[i] = loom__dim_bound(g, t->shape.d[i]);
    loom__nd_part_shape(bound, t->shape.ndim, &l->s, l->mesh, d, shape);
    const int a = loom__lay_flat_axis(l), k = a >= 0 ? loom__dyn_index(g, t->shape.d[a]) : -1;
    if (k >= 0) /* a graph batch's parts may be uneven on a mesh too */
        shape[a] = loom__lay_part_rows(g, k, l, d);
    if (loom__dense_size(t->dtype, t->shape.ndim, shape, NULL, &bytes))
        return LOOM__PLAN_OVER;
    return align_up(bytes ? (size_t)bytes : 1);
}

int64_t loom__lay_part_rows(const loom_graph *g, int k, const loom__lay *l, int d)
{
    const int64_t most = loom__dyn_part_bound(g, k, l->n, d);
    if (l->s.n < 2)
        return most;
    const int a = loom__lay_flat_axis(l);
    int64_t bound[LOOM_MAX_DIMS] = {0}, part[LOOM_MAX_DIMS];
    bound[a] = g->dyn[k].bound;
    loom__nd_part_shape(bound, a + 1, &l->s, l->mesh, d, part);
    return part[a] > most ? part[a] : most;
}

/* Places each shared register of chain c of device d by lifetime (loom__memplan), from offset
 * base; returns the size of the chain's part of the device's shared block. */
static size_t place_shared(loom__plan *pl, int d, int c, size_t base)
{
    int n = 0;
    int *regs = malloc((size_t)(pl->nregst + 1) * sizeof *regs);
    loom__block *blk = malloc((size_t)(pl->nregst + 1) * sizeof *blk);
    size_t top = LOOM__MEMPLAN_NOMEM;
    if (regs && blk) {
        for (int r = 0; r < pl->nregst; r++)
            if (pl->regst[r].mem == LOOM__MEM_SHARED && pl->regst[r].dom == d && pl->task[pl->regst[r].producer].chain == c) {
                const loom__regst *rg = &pl->regst[r];
                blk[n] = (loom__block){.first = rg->first, .last = rg->last, .bytes = rg->bytes};
                regs[n++] = r;
            }
        top = loom__memplan(blk, n);
        for (int i = 0; i < n && top != LOOM__MEMPLAN_NOMEM; i++)
            pl->regst[regs[i]].offset = loom__bytes_add(base, blk[i].offset);
    }
    free(regs);
    free(blk);
    return top;
}

int loom__plan_stash(const loom__plan *pl, int d)
{
    int most = pl->nstages - pl->stage[d]; /* 1F1B: stage k of S keeps S - k */
    return pl->schedule == LOOM_SCHEDULE_GPIPE || most > pl->micro ? pl->micro : most;
}

int loom__plan_memory(loom__plan *pl, int source_regst_num)
{
    for (int r = 0; r < pl->nregst; r++) {
        loom__regst *rg = &pl->regst[r];
        const loom__task *prod = &pl->task[rg->producer];
        if (prod->chain_pos >= 0)
            rg->mem = rg->elsewhere ? LOOM__MEM_OWN : LOOM__MEM_SHARED; /* another rank's tasks read it */
        if (prod->chain_pos >= 0 && rg->elsewhere && pl->micro > 1 && rg->regst_num < 2)
            rg->regst_num = 2; /* as another device's stage takes it */
        rg->first = rg->last = prod->chain_pos;
    }
    for (int k = 0; k < pl->ntasks; k++) {
        const loom__task *c = &pl->task[k];
        for (int i = 0; i < c->n_in; i++) {
            loom__regst *rg = &pl->regst[c->in[i]];
            const loom__task *prod = &pl->task[rg->producer];
            if (prod->chain_pos < 0)
                continue;
            if (c->chain_pos < 0 || c->device != prod->device || c->chain != prod->chain) {
                rg->mem = LOOM__MEM_OWN; /* read by a variable, a copy, a sink, another device or chain */
                int want = rg->regst_num;
                if (c->kind == LOOM__TASK_COPY || c->kind == LOOM__TASK_SINK)
                    /* the chain goes on while the host takes it; with micro-batches, the host
                     * takes one micro-batch's while the chain makes the next (a weight
                     * gradient's sink would otherwise hold a step's worth of them) */
                    want = pl->micro > 1 ? 2 : source_regst_num;
                else if (pl->micro > 1 && c->chain_pos >= 0 && c->device != prod->device)
                    want = 2; /* a stage works on the next micro-batch while the next stage takes this one */
                else if (c->chain_pos >= 0 && c->chain != prod->chain)
                    want = loom__plan_stash(pl, prod->device); /* kept for the backward pass */
                rg->regst_num = want > rg->regst_num ? want : rg->regst_num;
            } else if (c->chain_pos > rg->last) {
                rg->last = c->chain_pos;
            }
        }
    }
    for (int d = 0; d < pl->ndev; d++) {
        for (int r = 0; r < pl->nregst; r++)
            if (pl->regst[r].mem == LOOM__MEM_SHARED && pl->regst[r].dom == d)
                pl->mem[d].unshared = loom__bytes_add(pl->mem[d].unshared, pl->regst[r].bytes);
        pl->mem[d].shared = 0;
        for (int c = 0; c < pl->nchains; c++) { /* two chains interleave: each has a block of its own */
            size_t top = place_shared(pl, d, c, pl->mem[d].shared);
            if (top == LOOM__MEMPLAN_NOMEM)
                return -1;
            pl->mem[d].shared = loom__bytes_add(pl->mem[d].shared, top);
        }
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

/* 1 when task k is of the backward pass: in its chain with two, else by its tensor (a boxing
 * task's is its source's, so one chain's boxing of a forward value counts as forward). */
static int backward_task(const loom__plan *pl, const loom__task *k)
{
    return k->chain_pos >= 0 && (pl->nchains > 1 ? k->chain == LOOM__CHAIN_BWD : k->tensor >= pl->passes.fwd_end);
}

void loom__plan_memory_of(const loom__plan *pl, int device, loom_memory *out)
{
    const int all = device == LOOM_ALL_DEVICES, first = all ? 0 : device, end = all ? pl->ndev : device + 1;
    *out = (loom_memory){.total = all ? pl->host_bytes : 0};
    uint8_t *read_back = calloc((size_t)pl->nregst + 1, 1); /* by register: a backward task reads it */
    for (int k = 0; read_back && k < pl->ntasks; k++)
        for (int i = 0; backward_task(pl, &pl->task[k]) && i < pl->task[k].n_in; i++)
            read_back[pl->task[k].in[i]] = 1;
    for (int r = 0; read_back && r < pl->nregst; r++) { /* (out of memory: no count of them) */
        const loom__regst *rg = &pl->regst[r];
        const loom__task *prod = &pl->task[rg->producer];
        if (read_back[r] && prod->chain_pos >= 0 && !backward_task(pl, prod) && rg->dom >= first && rg->dom < end)
            out->activations = loom__bytes_add(out->activations, mul_bytes(rg->bytes, rg->regst_num));
    }
    free(read_back);
    for (int d = first; d < end; d++) {
        const loom__dev_mem *m = &pl->mem[d];
        out->shared += m->shared;
        out->unshared += m->unshared;
        out->own += m->own;
        out->params += m->params;
        out->inputs += m->inputs;
        out->scratch += m->scratch;
        out->total += m->shared + m->own + m->params + m->inputs + m->scratch;
    }
}
