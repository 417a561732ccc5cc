/* What a plan holds besides its tasks (see plan.h): its devices, a copy of the program's op table,
 * the passes, SBPs and sizes it was planned for; and freeing a plan, however it was made. */
#include "graphs/plan/plan_internal.h"

#include "runtime/comm/parts.h"

#include <stdlib.h>
#include <string.h>

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
    free(pl->sbp1);
    free(pl->sig1);
    free(pl->ksig);
    free(pl->mesh);
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
    free(pl->dev_rank);
    free(pl->stage);
    for (int k = 0; pl->place_dev && k < pl->nplaces; k++)
        free(pl->place_dev[k]);
    free(pl->place_dev);
    free(pl->place_n);
    free(pl->place_per_rank);
    free(pl->place_lo);
    free(pl->place_hi);
    free(pl);
}

int loom__plan_devices(loom__plan *pl, const loom_graph *g, int rank)
{
    pl->nplaces = g->nplaces ? g->nplaces : 1;
    pl->nranks = 1;
    pl->rank = rank;
    size_t np = (size_t)pl->nplaces;
    pl->place_n = calloc(np, sizeof *pl->place_n);
    pl->place_dev = calloc(np, sizeof *pl->place_dev);
    pl->place_per_rank = calloc(np, sizeof *pl->place_per_rank);
    pl->place_lo = calloc(np, sizeof *pl->place_lo);
    pl->place_hi = calloc(np, sizeof *pl->place_hi);
    pl->dev_index = calloc(LOOM__MAX_DEVICES, sizeof *pl->dev_index);
    pl->dev_rank = calloc(LOOM__MAX_DEVICES, sizeof *pl->dev_rank);
    if (!pl->place_n || !pl->place_dev || !pl->place_per_rank || !pl->place_lo || !pl->place_hi || !pl->dev_index || !pl->dev_rank)
        return -1;
    for (int k = 0; k < pl->nplaces; k++) {
        const loom_placement *q = k < g->nplaces ? g->places[k] : NULL;
        int n = q ? loom_placement_ndevices(q) : 1;
        pl->place_n[k] = n;
        pl->place_per_rank[k] = q && loom_placement_has_ranks(q) ? loom_placement_ndevices_per_rank(q) : n;
        pl->place_lo[k] = n;
        pl->place_dev[k] = malloc((size_t)n * sizeof **pl->place_dev);
        if (!pl->place_dev[k])
            return -1;
        for (int j = 0; j < n; j++) {
            int r = 0, dev = q ? loom_placement_device(q, j, &r) : 0, d = 0;
            if (r + 1 > pl->nranks)
                pl->nranks = r + 1;
            pl->place_dev[k][j] = -1;
            if (rank >= 0 && r != rank)
                continue; /* another rank's */
            while (d < pl->ndev && !(pl->dev_index[d] == dev && pl->dev_rank[d] == r))
                d++;
            if (d == pl->ndev) { /* loom_compile keeps the devices (of one rank: 128 indices) within LOOM__MAX_DEVICES */
                pl->dev_index[pl->ndev] = dev;
                pl->dev_rank[pl->ndev++] = r;
            }
            pl->place_dev[k][j] = d;
            pl->place_lo[k] = j < pl->place_lo[k] ? j : pl->place_lo[k];
            pl->place_hi[k] = j + 1;
        }
        if (pl->place_lo[k] > pl->place_hi[k])
            pl->place_lo[k] = pl->place_hi[k] = 0; /* none on this rank */
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

int loom__plan_program(loom__plan *pl, const loom__plan_src *p)
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
    if (p->ndevices > 1 && p->sbp->mesh) {
        pl->sbp1 = malloc(n * sizeof *pl->sbp1);
        pl->sig1 = malloc(n * sizeof *pl->sig1);
        pl->ksig = malloc(n * sizeof *pl->ksig);
        pl->mesh = malloc(n * sizeof *pl->mesh);
        if (!pl->sbp1 || !pl->sig1 || !pl->ksig || !pl->mesh)
            return -1;
        memcpy(pl->sbp1, p->sbp->sbp1, n * sizeof *pl->sbp1);
        memcpy(pl->sig1, p->sbp->sig1, n * sizeof *pl->sig1);
        memcpy(pl->mesh, p->sbp->mesh, n * sizeof *pl->mesh);
        for (size_t id = 0; id < n; id++) {
            const loom__sbp_sig *pair[2] = {&pl->sig[id], &pl->sig1[id]};
            loom__nd_kernel_sig(pair, p->g->t[id]->n_src, &pl->ksig[id]);
        }
    }
    return 0;
}
