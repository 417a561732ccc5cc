/* A compiled program described for its user (the public calls behind `loom plan` and `loom ops`):
 * the SBP plan as text or Graphviz, and the op registry. */
#include <stdio.h>
#include <stdlib.h>

#include "graphs/plan/plan.h"
#include "graphs/session/program.h"
#include "graphs/core/op.h"

/* Compile keeps no SBP plan for one device; the one it would be: every tensor whole there (B) and
 * wanted whole by its consumers, so nothing is boxed. */
static loom_status one_device_plan(const loom_program *p, loom__sbp_plan *pl)
{
    *pl = (loom__sbp_plan){.n = 1, .ntensors = p->n, .dead = p->dead};
    pl->nparts = calloc((size_t)p->n + 1, sizeof *pl->nparts);
    pl->sbp = calloc((size_t)p->n + 1, sizeof *pl->sbp);
    pl->sig = calloc((size_t)p->n + 1, sizeof *pl->sig);
    if (!pl->nparts || !pl->sbp || !pl->sig)
        return LOOM_ERR_NOMEM;
    for (int id = 0; id < p->n; id++) {
        pl->nparts[id] = 1;
        pl->sbp[id] = pl->sig[id].out = loom_broadcast();
        for (int i = 0; i < LOOM__MAX_SRC; i++)
            pl->sig[id].in[i] = loom_broadcast();
    }
    return LOOM_OK;
}

const loom__sbp_plan *loom__program_sbp_view(const loom_program *p, loom__sbp_plan *one)
{
    if (p->ndevices > 1)
        return &p->sbp;
    if (one_device_plan(p, one) == LOOM_OK)
        return one;
    loom__sbp_plan_free(one);
    return NULL;
}

/* The graph a step of p is priced on, and its micro-batches into *micro: with micro-batches (the
 * actor executor's; the reference executor runs the whole batch at once), the plan's op table,
 * whose shapes are a micro-batch's (plan_micro.c), seen with the program's placements in *view;
 * else the program's graph. */
static loom_graph *priced(const loom_program *p, loom_graph *view, int *micro)
{
    const loom__plan *pl = p->executor == LOOM_EXEC_ACTORS && p->micro > 1 ? loom__program_plan_of(p, LOOM_RUN_STEP) : NULL;
    *micro = pl && pl->micro > 1 ? pl->micro : 1;
    if (*micro == 1)
        return p->g;
    *view = *pl->g;
    view->places = p->g->places;
    view->nplaces = p->g->nplaces;
    return view;
}

int loom__program_predict(const loom_program *p, const loom__cost_model *cm, loom__prediction *out)
{
    loom__sbp_plan one = {0};
    const loom__sbp_plan *pl = loom__program_sbp_view(p, &one);
    loom__cost_model m = *cm; /* the figures of cm, the threads and cores of p (compile set them) */
    for (int k = 0; k < LOOM_DEVICE_KIND_COUNT; k++)
        m.dev[k].threads = p->cost.dev[k].threads, m.dev[k].cores = p->cost.dev[k].cores;
    loom_graph view;
    int micro;
    loom_graph *g = priced(p, &view, &micro);
    if (pl)
        loom__sbp_plan_predict(pl, g, p->n, micro, p->bwd_end, &m, out);
    if (pl == &one)
        loom__sbp_plan_free(&one);
    return pl ? 0 : -1;
}

double loom_program_predicted_step(loom_program *p)
{
    loom__prediction pr;
    return p && loom__program_predict(p, &p->cost, &pr) == 0 ? pr.seconds : -1;
}

/* The status of a describe call api once it has written to f: LOOM_ERR_IO when f reports a write error. */
static loom_status written(loom_program *p, const char *api, FILE *f)
{
    if (ferror(f))
        return loom__program_fail(p, LOOM_ERR_IO, "%s: the stream reports a write error", api);
    return LOOM_OK;
}

loom_status loom_program_print_plan(loom_program *p, FILE *f)
{
    if (!p)
        return LOOM_ERR_INVALID;
    if (!f)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_print_plan: the stream is NULL");
    fprintf(f, "%d tensors (forward %d, backward %d, updates %d) on %d device%s\n\n", p->n, p->fwd_end,
            p->bwd_end - p->fwd_end, p->n - p->bwd_end, p->ndevices, p->ndevices == 1 ? "" : "s");
    loom__sbp_plan one = {0};
    const loom__sbp_plan *pl = loom__program_sbp_view(p, &one);
    if (pl) {
        if (p->ndevices == 1)
            fprintf(f, "one device: every tensor is whole there, nothing to box\n\n");
        loom_graph view;
        int micro;
        loom_graph *g = priced(p, &view, &micro);
        loom__sbp_plan_print(pl, g, p->n, micro, p->bwd_end, &p->cost, f);
    }
    if (pl == &one)
        loom__sbp_plan_free(&one);
    return !pl ? loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_print_plan: out of memory") : written(p, "loom_program_print_plan", f);
}

loom_status loom_program_write_dot(loom_program *p, FILE *f)
{
    if (!p)
        return LOOM_ERR_INVALID;
    if (!f)
        return loom__program_fail(p, LOOM_ERR_INVALID, "loom_program_write_dot: the stream is NULL");
    loom__sbp_plan one = {0};
    const loom__sbp_plan *pl = loom__program_sbp_view(p, &one);
    if (pl)
        loom__sbp_plan_dot(pl, p->g, p->n, f);
    if (pl == &one)
        loom__sbp_plan_free(&one);
    return !pl ? loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_write_dot: out of memory") : written(p, "loom_program_write_dot", f);
}

int loom_op_count(void) { return LOOM_OP_COUNT; }

loom_status loom_op_info(int op, loom_op_about *out)
{
    const loom_op_def *d = op >= 0 && op < LOOM_OP_COUNT ? loom__op_def((loom_op)op) : NULL;
    if (!d || !out)
        return LOOM_ERR_INVALID;
    *out = (loom_op_about){.name = d->name, .has_grad = d->grad != NULL, .is_leaf = (d->flags & LOOM__OPF_LEAF) != 0};
    return LOOM_OK;
}
