/* The physical plan and the static memory plan (see plan.h). */
#include "graphs/plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64
static size_t align_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* Bytes of a CSR value laid out in one buffer: rowptr, col, values, each aligned. */
size_t loom__csr_bytes(int64_t nrows, int64_t nnz, loom_dtype vdtype)
{
    return align_up((size_t)(nrows + 1) * sizeof(int32_t)) + align_up((size_t)nnz * sizeof(int32_t)) +
           align_up((size_t)nnz * loom_dtype_size(vdtype));
}

static size_t dense_bytes(const loom_program *p, const loom_tensor *t)
{
    size_t n = loom_dtype_size(t->dtype);
    for (int i = 0; i < t->shape.ndim; i++)
        n *= (size_t)loom__dim_bound(p->g, t->shape.d[i]);
    return align_up(n ? n : 1);
}

void loom__plan_free(loom__plan *pl)
{
    if (!pl)
        return;
    for (int i = 0; i < pl->ntasks; i++)
        free(pl->task[i].out);
    free(pl->task);
    free(pl->regst);
    free(pl->regst_of);
    free(pl->kept);
    free(pl);
}

static int add_task(loom__plan *pl, loom__task_kind kind, loom_tensor *t, int n_out)
{
    loom__task *k = &pl->task[pl->ntasks];
    *k = (loom__task){.kind = kind, .t = t, .chain_pos = -1, .n_out = n_out};
    k->out = calloc((size_t)(n_out ? n_out : 1), sizeof *k->out);
    return k->out ? pl->ntasks++ : -1;
}

static int add_regst(loom__plan *pl, int task, int tensor, size_t bytes, int regst_num)
{
    pl->regst[pl->nregst] = (loom__regst){.producer = task, .tensor = tensor, .bytes = bytes, .regst_num = regst_num};
    pl->regst_of[tensor] = pl->nregst;
    return pl->nregst++;
}

/* Places each shared register at the lowest offset free of every placed register whose lifetime
 * overlaps its own, largest first (greedy by size). Quadratic in the shared registers. */
static size_t place_shared(loom__plan *pl)
{
    int n = 0;
    int *order = malloc((size_t)(pl->nregst + 1) * sizeof *order);
    if (!order)
        return (size_t)-1;
    for (int r = 0; r < pl->nregst; r++)
        if (pl->regst[r].shared)
            order[n++] = r;
    for (int i = 1; i < n; i++) /* insertion sort by size, descending; ties by index */
        for (int j = i; j > 0 && pl->regst[order[j]].bytes > pl->regst[order[j - 1]].bytes; j--) {
            int tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    size_t top = 0;
    for (int i = 0; i < n; i++) {
        loom__regst *r = &pl->regst[order[i]];
        size_t off = 0;
        for (int again = 1; again;) {
            again = 0;
            for (int j = 0; j < i; j++) {
                const loom__regst *q = &pl->regst[order[j]];
                int overlap_life = q->first <= r->last && r->first <= q->last;
                int overlap_mem = q->offset < off + r->bytes && off < q->offset + q->bytes;
                if (overlap_life && overlap_mem) {
                    off = q->offset + q->bytes;
                    again = 1;
                }
            }
        }
        r->offset = off;
        if (off + r->bytes > top)
            top = off + r->bytes;
    }
    free(order);
    return top;
}

loom__plan *loom__plan_build(loom_program *p, loom_run_mode mode, const uint8_t *keep, int source_regst_num)
{
    loom_graph *g = p->g;
    int end = mode == LOOM_RUN_STEP ? p->n : mode == LOOM_RUN_GRAD ? p->bwd_end : p->fwd_end;
    loom__plan *pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    pl->mode = mode;
    /* at most: a source, one task per tensor, one sink per tensor */
    pl->task = calloc((size_t)(2 * p->n + 2), sizeof *pl->task);
    pl->regst = calloc((size_t)(p->n + 1), sizeof *pl->regst);
    pl->regst_of = malloc((size_t)(p->n + 1) * sizeof *pl->regst_of);
    pl->kept = calloc((size_t)(p->n + 1), sizeof *pl->kept);
    if (!pl->task || !pl->regst || !pl->regst_of || !pl->kept)
        goto nomem;
    for (int i = 0; i < p->n; i++)
        pl->regst_of[i] = -1;

    /* the source: one register per input, sized by the data fed now */
    int ninputs = 0;
    for (int id = 0; id < p->fwd_end; id++)
        ninputs += g->t[id]->op == LOOM_OP_INPUT;
    int src = add_task(pl, LOOM__TASK_SOURCE, NULL, ninputs);
    if (src < 0)
        goto nomem;
    for (int id = 0, k = 0; id < p->fwd_end; id++) {
        loom_tensor *t = g->t[id];
        if (t->op != LOOM_OP_INPUT)
            continue;
        const loom__value *v = &p->val[id];
        size_t bytes = t->layout == LOOM__CSR ? loom__csr_bytes(v->shape[0], v->nnz, t->dtype) : dense_bytes(p, t);
        pl->task[src].out[k++] = add_regst(pl, src, id, bytes, source_regst_num);
    }

    /* variables, each with the update op that changes it in this mode */
    for (int id = 0; id < p->fwd_end; id++) {
        loom_tensor *t = g->t[id];
        if (t->op != LOOM_OP_PARAM)
            continue;
        int k = add_task(pl, LOOM__TASK_VARIABLE, t, 1);
        if (k < 0)
            goto nomem;
        for (int u = p->bwd_end; mode == LOOM_RUN_STEP && u < p->n; u++)
            if ((loom__op_def(g->t[u]->op)->flags & LOOM__OPF_INPLACE) && g->t[u]->src[0] == t)
                pl->task[k].update = g->t[u];
        pl->task[k].out[0] = add_regst(pl, k, id, dense_bytes(p, t), 1);
    }

    /* compute tasks, in id order: the device chain */
    for (int id = 0; id < end; id++) {
        loom_tensor *t = g->t[id];
        const loom_op_def *def = loom__op_def(t->op);
        if ((def->flags & (LOOM__OPF_LEAF | LOOM__OPF_INPLACE)) || p->dead[id])
            continue;
        int k = add_task(pl, LOOM__TASK_COMPUTE, t, 1);
        if (k < 0)
            goto nomem;
        pl->task[k].chain_pos = pl->nchain++;
        pl->task[k].n_in = t->n_src;
        for (int i = 0; i < t->n_src; i++) {
            int r = pl->regst_of[t->src[i]->id];
            if (r < 0) {
                loom__program_fail(p, LOOM_ERR_GRAPH, "loom plan: %s '%s' reads '%s', which no task makes (internal error)",
                                   def->name, loom_tensor_name(t), loom_tensor_name(t->src[i]));
                loom__plan_free(pl);
                return NULL;
            }
            pl->task[k].in[i] = r;
            pl->regst[r].nconsumers++;
        }
        pl->task[k].out[0] = add_regst(pl, k, id, dense_bytes(p, t), 1);
    }

    /* variables read their gradient */
    for (int k = 0; k < pl->ntasks; k++) {
        loom__task *v = &pl->task[k];
        if (v->kind != LOOM__TASK_VARIABLE || !v->update)
            continue;
        int r = pl->regst_of[v->update->src[1]->id];
        v->in[v->n_in++] = r;
        pl->regst[r].nconsumers++;
    }

    /* sinks: the loss, what the caller keeps, and every computed value nobody reads */
    int ntasks_before_sinks = pl->ntasks;
    for (int k = 0; k < ntasks_before_sinks; k++) {
        if (pl->task[k].kind != LOOM__TASK_COMPUTE)
            continue;
        int id = pl->task[k].t->id, r = pl->task[k].out[0];
        int is_grad = 0; /* parameters' gradients stay fetchable (loom_program_grad) */
        for (int q = 0; mode >= LOOM_RUN_GRAD && q < p->fwd_end && !is_grad; q++)
            is_grad = p->grad[q] == pl->task[k].t && g->t[q]->op == LOOM_OP_PARAM;
        if (!(keep && keep[id]) && pl->task[k].t != p->loss && pl->regst[r].nconsumers && !is_grad)
            continue;
        int s = add_task(pl, LOOM__TASK_SINK, pl->task[k].t, 0);
        if (s < 0)
            goto nomem;
        pl->task[s].n_in = 1;
        pl->task[s].in[0] = r;
        pl->regst[r].nconsumers++;
        pl->kept[id] = 1;
    }

    /* memory: registers read only inside the chain share a block by lifetime */
    for (int r = 0; r < pl->nregst; r++) {
        loom__regst *rg = &pl->regst[r];
        const loom__task *prod = &pl->task[rg->producer];
        rg->shared = prod->kind == LOOM__TASK_COMPUTE;
        rg->first = rg->last = prod->chain_pos;
    }
    for (int k = 0; k < pl->ntasks; k++) {
        const loom__task *c = &pl->task[k];
        for (int i = 0; i < c->n_in; i++) {
            loom__regst *rg = &pl->regst[c->in[i]];
            if (c->kind != LOOM__TASK_COMPUTE)
                rg->shared = 0;
            else if (c->chain_pos > rg->last)
                rg->last = c->chain_pos;
        }
    }
    for (int r = 0; r < pl->nregst; r++)
        if (pl->regst[r].shared)
            pl->unshared_bytes += pl->regst[r].bytes;
    pl->shared_bytes = place_shared(pl);
    if (pl->shared_bytes == (size_t)-1)
        goto nomem;
    size_t off = pl->shared_bytes;
    for (int r = 0; r < pl->nregst; r++) {
        loom__regst *rg = &pl->regst[r];
        loom__task_kind pk = pl->task[rg->producer].kind;
        if (rg->shared || pk == LOOM__TASK_VARIABLE || (pk == LOOM__TASK_SOURCE && !p->source))
            continue; /* variables, and a source without a data source, expose the program's storage */
        rg->offset = off;
        off += rg->bytes * (size_t)rg->regst_num;
    }
    pl->own_bytes = off - pl->shared_bytes;
    return pl;

nomem:
    loom__program_fail(p, LOOM_ERR_NOMEM, "loom plan: out of memory");
    loom__plan_free(pl);
    return NULL;
}

static const char *const kind_name[LOOM__TASK_KIND_COUNT] = {"source", "variable", "compute", "sink"};

void loom__plan_print(const loom__plan *pl, const loom_program *p, FILE *f)
{
    char b[128];
    for (int k = 0; k < pl->ntasks; k++) {
        const loom__task *t = &pl->task[k];
        fprintf(f, "task %3d %-8s %-24s", k, kind_name[t->kind],
                t->t ? (t->kind == LOOM__TASK_COMPUTE ? loom__op_def(t->t->op)->name : loom_tensor_name(t->t)) : "inputs");
        if (t->t)
            fprintf(f, " %-20s %s", loom_tensor_name(t->t), loom__shape_str(p->g, &t->t->shape, b, sizeof b));
        fprintf(f, "\n");
    }
    for (int r = 0; r < pl->nregst; r++) {
        const loom__regst *rg = &pl->regst[r];
        fprintf(f, "regst %3d of task %3d: %zu bytes x %d, %s at %zu", r, rg->producer, rg->bytes, rg->regst_num,
                rg->shared ? "shared" : pl->task[rg->producer].kind == LOOM__TASK_VARIABLE ? "parameter" : "own",
                rg->offset);
        if (rg->shared)
            fprintf(f, ", live %d..%d", rg->first, rg->last);
        fprintf(f, "\n");
    }
    fprintf(f, "memory: %zu bytes shared by lifetime (%zu without reuse), %zu bytes of own registers\n", pl->shared_bytes,
            pl->unshared_bytes, pl->own_bytes);
}
