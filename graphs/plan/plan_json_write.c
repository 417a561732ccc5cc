/* A plan as JSON (see plan.h): the text is the plan itself, one object per tensor of its op table,
 * task and register, with shapes written over the dynamic dims' names, SBPs as "S(0)", "B", "P",
 * and reals exactly (17 significant digits; "nan", "inf", "-inf" as strings). plan_json_read.c
 * reads it back. */
#include "graphs/plan/plan_json.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>

const char *const loom__plan_json_modes[LOOM_RUN_MODE_COUNT] = {"eval", "forward", "grad", "step"};
const char *const loom__plan_json_tasks[LOOM__TASK_KIND_COUNT] = {"source", "variable", "compute", "boxing",
                                                                    "move",   "copy",     "sink",    "acc"};
const char *const loom__plan_json_schedules[LOOM_SCHEDULE_COUNT] = {"1f1b", "gpipe"};
const char *const loom__plan_json_mems[LOOM__PLAN_JSON_NMEM] = {"shared", "own", "param", "none"};

static void put_real(FILE *f, double v)
{
    if (isnan(v))
        fputs("\"nan\"", f);
    else if (isinf(v))
        fputs(v > 0 ? "\"inf\"" : "\"-inf\"", f);
    else
        fprintf(f, "%.17g", v);
}


static void put_nd_sbp(FILE *f, const loom_nd_sbp *s)
{
    char b[80];
    loom_nd_sbp_str(s, b, sizeof b);
    loom__json_put_str(f, b);
}

/* a, or (a, *b) when b is not NULL (a mesh's two levels); "unset" when a is (an op never run) */
static void put_levels(FILE *f, loom_sbp a, const loom_sbp *b)
{
    loom_nd_sbp s = a.kind == LOOM_SBP_UNSET ? (loom_nd_sbp){0} : b ? loom_nd_sbp_2d(a, *b) : loom_nd_sbp_1d(a);
    put_nd_sbp(f, &s);
}

static void put_ints(FILE *f, const int *v, int n)
{
    fputc('[', f);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s%d", i ? "," : "", v[i]);
    fputc(']', f);
}

static void put_shape(FILE *f, const loom_graph *g, const loom_shape *s)
{
    fputc('[', f);
    for (int i = 0; i < s->ndim; i++) {
        int k = loom__dyn_index(g, s->d[i]);
        if (i)
            fputc(',', f);
        if (k >= 0)
            loom__json_put_str(f, g->dyn[k].name);
        else
            fprintf(f, "%" PRId64, s->d[i]);
    }
    fputc(']', f);
}

/* A plan size: -1 for "none" (size_t)-1, else the count. */
static void put_size(FILE *f, size_t v)
{
    if (v == (size_t)-1)
        fputs("-1", f);
    else
        fprintf(f, "%zu", v);
}

static void put_tensor(FILE *f, const loom__plan *pl, const loom_tensor *t)
{
    const loom_graph *g = pl->g;
    fprintf(f, "    {\"id\":%d,\"op\":", t->id);
    loom__json_put_str(f, loom__op_def(t->op)->name);
    fputs(",\"name\":", f);
    loom__json_put_str(f, t->name);
    fprintf(f, ",\"dtype\":\"%s\",\"layout\":\"%s\",\"shape\":", loom_dtype_name(t->dtype), t->layout == LOOM__CSR ? "csr" : "dense");
    put_shape(f, g, &t->shape);
    int src[LOOM__MAX_SRC];
    for (int i = 0; i < t->n_src; i++)
        src[i] = t->src[i]->id;
    fputs(",\"src\":", f);
    put_ints(f, src, t->n_src);
    fputs(",\"ai\":[", f);
    for (int i = 0; i < 8; i++)
        fprintf(f, "%s%" PRId64, i ? "," : "", t->a.i[i]);
    fputs("],\"af\":[", f);
    for (int i = 0; i < 8; i++) {
        if (i)
            fputc(',', f);
        put_real(f, t->a.f[i]);
    }
    fputs("],\"ashape\":", f);
    put_shape(f, g, &t->a.shape);
    fprintf(f, ",\"flags\":%" PRIu32 ",\"init\":{\"kind\":%d,\"a\":", t->flags, (int)t->init.kind);
    put_real(f, t->init.a);
    fputs(",\"b\":", f);
    put_real(f, t->init.b);
    fprintf(f, ",\"seed\":%" PRIu64 "},\"sbp_hint\":", t->init.seed);
    put_nd_sbp(f, &t->sbp_hint);
    fprintf(f, ",\"place\":%d,\"weight_decay\":", t->place);
    put_real(f, t->weight_decay);
    fprintf(f, ",\"grad_of\":%d", pl->passes.grad_of[t->id]);
    if (pl->sbp) { /* on a mesh, every SBP of two levels, and the mesh */
        const int two = pl->mesh && pl->mesh[t->id][0] > 0;
        const loom__sbp_sig *s1 = two ? &pl->sig1[t->id] : NULL;
        fputs(",\"sbp\":", f);
        put_levels(f, pl->sbp[t->id], two ? &pl->sbp1[t->id] : NULL);
        fputs(",\"sig\":{\"in\":[", f);
        for (int i = 0; i < t->n_src; i++) {
            if (i)
                fputc(',', f);
            put_levels(f, pl->sig[t->id].in[i], s1 ? &s1->in[i] : NULL);
        }
        fputs("],\"out\":", f);
        put_levels(f, pl->sig[t->id].out, s1 ? &s1->out : NULL);
        fputc('}', f);
        if (two)
            fprintf(f, ",\"mesh\":[%d,%d]", pl->mesh[t->id][0], pl->mesh[t->id][1]);
    }
    if (pl->csr_rows[t->id] >= 0)
        fprintf(f, ",\"csr\":[%" PRId64 ",%" PRId64 "]", pl->csr_rows[t->id], pl->csr_nnz[t->id]);
    fputc('}', f);
}

loom_status loom__plan_write_json(const loom__plan *pl, FILE *f)
{
    const loom_graph *g = pl->g;
    fprintf(f, "{\"loom_plan\":%d,\"mode\":\"%s\",\"kind\":\"%s\",\"source_regst_num\":%d,\"loss\":%d,\"nlogical\":%d,\n",
            LOOM__PLAN_JSON_VERSION, loom__plan_json_modes[pl->mode], loom_device_kind_name(pl->kind), pl->source_regst_num, pl->loss, pl->nlogical);
    fprintf(f, " \"seed\":%" PRIu64 ",\"dyn_tag\":%" PRId64 ",\"fwd_end\":%d,\"bwd_end\":%d,\n \"dyn\":[", g->seed, g->dyn_tag,
            pl->passes.fwd_end, pl->passes.bwd_end);
    for (int k = 0; k < g->ndyn; k++) {
        fputs(k ? ",{\"name\":" : "{\"name\":", f);
        loom__json_put_str(f, g->dyn[k].name);
        fprintf(f, ",\"bound\":%" PRId64 ",\"part_bound\":%" PRId64 "}", g->dyn[k].bound, g->dyn[k].part_bound);
    }
    fputs("],\n \"devices\":", f);
    put_ints(f, pl->dev_index, pl->ndev);
    if (pl->nranks > 1) {
        fputs(",\n \"ranks\":", f);
        put_ints(f, pl->dev_rank, pl->ndev);
    }
    fprintf(f, ",\n \"micro\":%d,\"schedule\":\"%s\",\"mb_dim\":%d,\"mb_rows\":%" PRId64 ",\"mb_static\":%d,\"nchains\":%d,"
               "\"nstages\":%d,\"stages\":",
            pl->micro, loom__plan_json_schedules[pl->schedule], pl->mb_dim, pl->mb_rows, pl->mb_static, pl->nchains, pl->nstages);
    put_ints(f, pl->stage, pl->ndev);
    fputs(",\n \"places\":[", f);
    for (int k = 0; k < pl->nplaces; k++) {
        if (k)
            fputc(',', f);
        put_ints(f, pl->place_dev[k], pl->place_n[k]);
    }
    fputs("],\n \"tensors\":[\n", f);
    for (int id = 0; id < g->n; id++) {
        put_tensor(f, pl, g->t[id]);
        fputs(id + 1 < g->n ? ",\n" : "\n", f);
    }
    fputs(" ],\n \"tasks\":[\n", f);
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        fprintf(f, "    {\"kind\":\"%s\",\"tensor\":%d,\"update\":%d,\"device\":%d,\"chain_pos\":%d,\"chain\":%d,\"dir\":%d,\"in\":",
                loom__plan_json_tasks[k->kind], k->tensor, k->update, k->device, k->chain_pos, k->chain, k->dir);
        put_ints(f, k->in, k->n_in);
        fputs(",\"out\":", f);
        put_ints(f, k->out, k->n_out);
        fputs(i + 1 < pl->ntasks ? "},\n" : "}\n", f);
    }
    fputs(" ],\n \"registers\":[\n", f);
    for (int r = 0; r < pl->nregst; r++) {
        const loom__regst *rg = &pl->regst[r];
        fprintf(f, "    {\"producer\":%d,\"tensor\":%d,\"dom\":%d,\"part\":%d,\"nparts\":%d,\"sbp\":", rg->producer, rg->tensor,
                rg->dom, rg->part, rg->nparts);
        put_levels(f, rg->sbp, rg->mesh[0] > 0 ? &rg->sbp1 : NULL);
        if (rg->mesh[0] > 0)
            fprintf(f, ",\"mesh\":[%d,%d]", rg->mesh[0], rg->mesh[1]);
        fprintf(f, ",\"bytes\":%zu,\"regst_num\":%d,\"mem\":\"%s\",\"offset\":%zu,\"first\":%d,\"last\":%d,\"nconsumers\":%d}%s\n",
                rg->bytes, rg->regst_num, loom__plan_json_mems[rg->mem], rg->offset, rg->first, rg->last, rg->nconsumers,
                r + 1 < pl->nregst ? "," : "");
    }
    fputs(" ],\n \"kept\":[", f);
    for (int id = 0, first = 1; id < g->n; id++)
        if (pl->kept[id]) {
            fprintf(f, "%s%d", first ? "" : ",", id);
            first = 0;
        }
    fputs("],\n \"param_off\":[", f);
    for (int id = 0, first = 1; id < g->n; id++)
        for (int d = 0; d < pl->ndev; d++)
            if (pl->param_off[(size_t)id * pl->ndev + d] != (size_t)-1) {
                fprintf(f, "%s[%d,%d,", first ? "" : ",", id, d);
                put_size(f, pl->param_off[(size_t)id * pl->ndev + d]);
                fputc(']', f);
                first = 0;
            }
    fputs("],\n \"memory\":[", f);
    for (int d = 0; d < pl->ndev; d++) {
        const loom__dev_mem *m = &pl->mem[d];
        fprintf(f, "%s{\"shared\":%zu,\"unshared\":%zu,\"own\":%zu,\"params\":%zu,\"inputs\":%zu}", d ? "," : "", m->shared,
                m->unshared, m->own, m->params, m->inputs);
    }
    fprintf(f, "],\n \"host_bytes\":%zu}\n", pl->host_bytes);
    return ferror(f) ? LOOM_ERR_IO : LOOM_OK;
}
