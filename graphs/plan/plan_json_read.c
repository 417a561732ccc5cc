/* A plan read back from its JSON (see plan.h and plan_json_write.c). Reading checks every id,
 * count and offset against the rest of the plan, so that a plan read back can be run: a text that
 * is not such a plan is refused naming the byte offset of what is wrong. */
#include "graphs/plan/plan_json.h"

#include "runtime/comm/parts.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* An SBP of two levels (a mesh's) into *a and *b, or of one into *a when b is NULL. */
static int read_levels(loom__rd *r, int v, int two, loom_sbp *a, loom_sbp *b)
{
    loom_nd_sbp nd;
    if (loom__rd_nd_sbp_at(r, v, &nd))
        return -1;
    if (nd.n && nd.n != (two ? 2 : 1)) /* or "unset" (n 0): an op never run */
        return loom__rd_bad(r, v, "an SBP of %d level%s here, as its tensor's", two ? 2 : 1, two ? "s" : "");
    *a = nd.v[0];
    if (b)
        *b = nd.v[1];
    return 0;
}

/* The "mesh" [rows, columns] of object o over ndev devices into *rows and *cols. */
static int read_mesh_of(loom__rd *r, int o, int ndev, int *rows, int *cols)
{
    int *m = NULL, nm = 0;
    if (loom__rd_get_ints(r, o, "mesh", 1, LOOM__MAX_DEVICES, &m, &nm))
        return free(m), -1;
    int ok = nm == 2 && m[0] * m[1] == ndev;
    if (ok)
        *rows = m[0], *cols = m[1];
    free(m);
    return ok ? 0 : loom__rd_bad(r, loom__json_get(r->doc, o, "mesh"), "a mesh is [rows, columns] of its %d devices", ndev);
}

/* A tensor's mesh into the plan's by-id tables at id (made on the first mesh: alloc is then where
 * the table of meshes goes). */
static int read_mesh(loom__rd *r, loom__plan *pl, int o, int ndev, int (**alloc)[2], int id)
{
    if (alloc) {
        size_t n = (size_t)pl->g->n + 1;
        pl->sbp1 = calloc(n, sizeof *pl->sbp1);
        pl->sig1 = calloc(n, sizeof *pl->sig1);
        pl->ksig = calloc(n, sizeof *pl->ksig);
        *alloc = calloc(n, sizeof **alloc);
        if (!pl->sbp1 || !pl->sig1 || !pl->ksig || !*alloc)
            return loom__rd_bad(r, o, "out of memory");
    }
    return read_mesh_of(r, o, ndev, &pl->mesh[id][0], &pl->mesh[id][1]);
}

/* A register's SBP: of two levels with its "mesh", else one. */
static int read_regst_sbp(loom__rd *r, int o, loom__regst *rg)
{
    loom_nd_sbp nd;
    if (loom__rd_nd_sbp_at(r, loom__rd_member(r, o, "sbp", LOOM__JSON_STR), &nd))
        return -1;
    rg->sbp = nd.v[0];
    rg->sbp1 = nd.v[1];
    return nd.n < 2 ? 0 : read_mesh_of(r, o, rg->nparts, &rg->mesh[0], &rg->mesh[1]);
}

static int read_tensor(loom__rd *r, loom__plan *pl, int o, int id, int *grad_of)
{
    loom_graph *g = pl->g;
    loom_tensor *t = &g->chunk[id];
    static const char *const layouts[] = {"dense", "csr"};
    int op = 0, dtype = 0, layout = 0, idv = 0, kind = 0, *src = NULL, nsrc = 0;
    *t = (loom_tensor){.graph = g};
    if (loom__rd_get_i(r, o, "id", id, id, &idv) || loom__rd_get_name(r, o, "op", r->ops, LOOM_OP_COUNT, &op) ||
        loom__rd_get_name(r, o, "dtype", r->dtypes, LOOM_DTYPE_COUNT, &dtype) ||
        loom__rd_get_name(r, o, "layout", layouts, 2, &layout) || loom__rd_get_ints(r, o, "src", 0, id - 1, &src, &nsrc))
        return free(src), -1;
    t->id = id;
    t->op = (loom_op)op;
    t->dtype = (loom_dtype)dtype;
    t->layout = (loom__layout)layout;
    const loom_op_def *def = loom__op_def(t->op);
    if (nsrc > LOOM__MAX_SRC || nsrc < def->min_src || nsrc > def->max_src)
        return free(src), loom__rd_bad(r, o, "%s takes %d to %d sources, not %d", def->name, def->min_src, def->max_src, nsrc);
    t->n_src = nsrc;
    for (int i = 0; i < nsrc; i++)
        t->src[i] = &g->chunk[src[i]];
    free(src);
    int nm = loom__rd_member(r, o, "name", LOOM__JSON_STR);
    if (nm < 0)
        return -1;
    if (strlen(loom__rd_val(r, nm)->s) >= sizeof t->name)
        return loom__rd_bad(r, nm, "a name of more than %zu bytes", sizeof t->name - 1);
    snprintf(t->name, sizeof t->name, "%s", loom__rd_val(r, nm)->s);
    if (loom__rd_shape_at(r, loom__rd_member(r, o, "shape", LOOM__JSON_ARR), g, &t->shape) ||
        loom__rd_shape_at(r, loom__rd_member(r, o, "ashape", LOOM__JSON_ARR), g, &t->a.shape))
        return -1;
    int ai = loom__rd_member(r, o, "ai", LOOM__JSON_ARR), af = loom__rd_member(r, o, "af", LOOM__JSON_ARR);
    if (ai < 0 || af < 0)
        return -1;
    if (loom__rd_val(r, ai)->n != 8 || loom__rd_val(r, af)->n != 8)
        return loom__rd_bad(r, loom__rd_val(r, ai)->n != 8 ? ai : af,
                            "an op's attributes are 8 integers (\"ai\") and 8 reals (\"af\")");
    int i = 0;
    for (int c = loom__rd_val(r, ai)->first; c >= 0; c = loom__rd_val(r, c)->next, i++)
        if (loom__rd_int_at(r, c, "an integer attribute", INT64_MIN, INT64_MAX, &t->a.i[i]))
            return -1;
    i = 0;
    for (int c = loom__rd_val(r, af)->first; c >= 0; c = loom__rd_val(r, c)->next, i++)
        if (loom__rd_real_at(r, c, "a real attribute", &t->a.f[i]))
            return -1;
    int64_t flags = 0, seed = 0;
    int init = loom__rd_member(r, o, "init", LOOM__JSON_OBJ);
    if (init < 0 || loom__rd_get_int(r, o, "flags", 0, UINT32_MAX, &flags) ||
        loom__rd_get_i(r, init, "kind", 0, LOOM_INIT_KIND_COUNT - 1, &kind) ||
        loom__rd_get_int(r, init, "seed", INT64_MIN, INT64_MAX, &seed) ||
        loom__rd_real_at(r, loom__rd_any(r, init, "a"), "\"a\"", &t->init.a) ||
        loom__rd_real_at(r, loom__rd_any(r, init, "b"), "\"b\"", &t->init.b))
        return -1;
    t->flags = (uint32_t)flags;
    t->init.kind = (loom_init_kind)kind;
    t->init.seed = (uint64_t)seed;
    if (loom__rd_real_at(r, loom__rd_any(r, o, "weight_decay"), "\"weight_decay\"", &t->weight_decay) ||
        loom__rd_nd_sbp_at(r, loom__rd_any(r, o, "sbp_hint"), &t->sbp_hint) ||
        loom__rd_get_i(r, o, "place", 0, pl->nplaces - 1, &t->place) ||
        loom__rd_get_i(r, o, "grad_of", -1, id - 1 < 0 ? -1 : id - 1, &grad_of[id]))
        return -1;
    if (pl->sbp) {
        int s = loom__rd_member(r, o, "sig", LOOM__JSON_OBJ), in = s >= 0 ? loom__rd_member(r, s, "in", LOOM__JSON_ARR) : -1;
        int two = loom__json_get(r->doc, o, "mesh") >= 0; /* on a mesh: every SBP of two levels */
        if (s < 0 || in < 0 || (two && read_mesh(r, pl, o, pl->place_n[t->place], pl->mesh ? NULL : &pl->mesh, id)) ||
            read_levels(r, loom__rd_member(r, o, "sbp", LOOM__JSON_STR), two, &pl->sbp[id], two ? &pl->sbp1[id] : NULL))
            return -1;
        if (read_levels(r, loom__rd_member(r, s, "out", LOOM__JSON_STR), two, &pl->sig[id].out, two ? &pl->sig1[id].out : NULL))
            return -1;
        if (loom__rd_val(r, in)->n != nsrc)
            return loom__rd_bad(r, in, "a signature has one SBP per source (%d), not %d", nsrc, loom__rd_val(r, in)->n);
        i = 0;
        for (int c = loom__rd_val(r, in)->first; c >= 0; c = loom__rd_val(r, c)->next, i++)
            if (read_levels(r, c, two, &pl->sig[id].in[i], two ? &pl->sig1[id].in[i] : NULL))
                return -1;
    }
    int csr = loom__json_get(r->doc, o, "csr");
    pl->csr_rows[id] = pl->csr_nnz[id] = -1;
    if (csr >= 0) {
        if (loom__rd_val(r, csr)->kind != LOOM__JSON_ARR || loom__rd_val(r, csr)->n != 2 || t->layout != LOOM__CSR)
            return loom__rd_bad(r, csr, "\"csr\" is [rows, nnz] of a sparse tensor");
        int c = loom__rd_val(r, csr)->first;
        if (loom__rd_int_at(r, c, "the rows", 0, INT32_MAX, &pl->csr_rows[id]) ||
            loom__rd_int_at(r, loom__rd_val(r, c)->next, "nnz", 0, INT32_MAX, &pl->csr_nnz[id]))
            return -1;
    }
    return 0;
}

static int read_tasks(loom__rd *r, loom__plan *pl, int a)
{
    pl->ntasks = pl->cap_tasks = loom__rd_val(r, a)->n;
    pl->task = calloc((size_t)pl->ntasks + 1, sizeof *pl->task);
    if (!pl->task)
        return loom__rd_bad(r, a, "out of memory");
    int i = 0;
    for (int o = loom__rd_val(r, a)->first; o >= 0; o = loom__rd_val(r, o)->next, i++) {
        loom__task *k = &pl->task[i];
        int kind = 0;
        if (loom__rd_val(r, o)->kind != LOOM__JSON_OBJ)
            return loom__rd_bad(r, o, "a task must be an object");
        if (loom__rd_get_name(r, o, "kind", loom__plan_json_tasks, LOOM__TASK_KIND_COUNT, &kind) ||
            loom__rd_get_i(r, o, "tensor", -1, pl->g->n - 1, &k->tensor) ||
            loom__rd_get_i(r, o, "update", -1, pl->g->n - 1, &k->update) ||
            loom__rd_get_i(r, o, "device", LOOM__HOST, pl->ndev - 1, &k->device) ||
            loom__rd_get_i(r, o, "chain_pos", -1, INT32_MAX, &k->chain_pos) ||
            (loom__json_get(r->doc, o, "chain") >= 0 && loom__rd_get_i(r, o, "chain", 0, pl->nchains - 1, &k->chain)) ||
            loom__rd_get_i(r, o, "dir", LOOM__H2D, LOOM__D2H, &k->dir) || loom__rd_get_ints(r, o, "in", 0, INT32_MAX, &k->in, &k->n_in) ||
            loom__rd_get_ints(r, o, "out", 0, INT32_MAX, &k->out, &k->n_out))
            return -1;
        k->kind = (loom__task_kind)kind;
        int host = k->kind == LOOM__TASK_SOURCE || k->kind == LOOM__TASK_SINK;
        if ((i == 0) != (k->kind == LOOM__TASK_SOURCE))
            return loom__rd_bad(r, o, "the source is task 0, and the only one");
        if (host != (k->device == LOOM__HOST))
            return loom__rd_bad(r, o, "the source and the sinks run on the host (device -1), every other task on a device");
        if ((k->tensor < 0) != (k->kind == LOOM__TASK_SOURCE))
            return loom__rd_bad(r, o, "every task but the source names its tensor");
        if (k->update >= 0 && k->kind != LOOM__TASK_VARIABLE)
            return loom__rd_bad(r, o, "only a variable has an update op");
        int chained = k->kind == LOOM__TASK_COMPUTE || k->kind == LOOM__TASK_BOXING || k->kind == LOOM__TASK_MOVE;
        if (chained != (k->chain_pos >= 0))
            return loom__rd_bad(r, o, "compute, boxing and move tasks have a chain position, other tasks -1");
        if (!chained && k->chain != 0)
            return loom__rd_bad(r, o, "only compute, boxing and move tasks are in a chain other than 0");
        if ((k->kind == LOOM__TASK_ACC) != (pl->micro > 1 && k->kind == LOOM__TASK_ACC))
            return loom__rd_bad(r, o, "an acc task sums micro-batches, which this plan has not");
        const loom_tensor *t = k->tensor >= 0 ? pl->g->t[k->tensor] : NULL;
        uint32_t flags = t ? loom__op_def(t->op)->flags : 0;
        if (k->kind == LOOM__TASK_COMPUTE) {
            if (k->n_in != t->n_src || k->n_out != 1)
                return loom__rd_bad(r, o, "a compute task of %s reads its %d sources and writes one register", loom__op_def(t->op)->name,
                                    t->n_src);
            if (flags & (LOOM__OPF_LEAF | LOOM__OPF_INPLACE) || t->op == LOOM_OP_MOVE)
                return loom__rd_bad(r, o, "%s '%s' is not run by a compute task", loom__op_def(t->op)->name, t->name);
        } else if (k->kind == LOOM__TASK_VARIABLE &&
                   (t->op != LOOM_OP_PARAM ||
                    (k->update >= 0 && (!(loom__op_def(pl->g->t[k->update]->op)->flags & LOOM__OPF_INPLACE) ||
                                        pl->g->t[k->update]->src[0] != t || pl->g->t[k->update]->n_src < 2)))) {
            return loom__rd_bad(r, o, "a variable holds a parameter, updated by an in-place op of it and its gradient");
        } else if (k->kind == LOOM__TASK_MOVE && t->op != LOOM_OP_MOVE) {
            return loom__rd_bad(r, o, "a move task runs a move op");
        } else if (k->kind != LOOM__TASK_SOURCE && k->kind != LOOM__TASK_SINK && k->n_out != 1) {
            return loom__rd_bad(r, o, "a %s task writes one register", loom__plan_json_tasks[k->kind]);
        } else if (k->kind == LOOM__TASK_SINK && k->n_out != 0) {
            return loom__rd_bad(r, o, "a sink writes no register");
        }
        if (k->n_in > LOOM__MAX_DEVICES && k->kind != LOOM__TASK_COMPUTE)
            return loom__rd_bad(r, o, "a task reads at most %d registers", LOOM__MAX_DEVICES);
        if (k->n_in < 1 && k->kind != LOOM__TASK_COMPUTE && k->kind != LOOM__TASK_SOURCE && k->kind != LOOM__TASK_VARIABLE)
            return loom__rd_bad(r, o, "a %s task reads at least one register", loom__plan_json_tasks[k->kind]);
    }
    return 0;
}

/* Micro-batches and the pipeline's stages (absent from plans written before them: one piece a
 * step). */
static int read_micro(loom__rd *r, loom__plan *pl, int root)
{
    int sched = 0, *stages = NULL, n = 0;
    pl->micro = pl->nchains = pl->nstages = 1;
    pl->mb_dim = -1;
    pl->stage = calloc((size_t)pl->ndev, sizeof *pl->stage);
    if (!pl->stage)
        return loom__rd_bad(r, root, "out of memory");
    if (loom__json_get(r->doc, root, "micro") < 0)
        return 0;
    if (loom__rd_get_i(r, root, "micro", 1, LOOM_MAX_REGST_NUM, &pl->micro) ||
        loom__rd_get_name(r, root, "schedule", loom__plan_json_schedules, LOOM_SCHEDULE_COUNT, &sched) ||
        loom__rd_get_i(r, root, "mb_dim", pl->micro > 1 ? 0 : -1, pl->micro > 1 ? pl->g->ndyn - 1 : -1, &pl->mb_dim) ||
        loom__rd_get_int(r, root, "mb_rows", 0, INT64_MAX, &pl->mb_rows) || loom__rd_get_i(r, root, "mb_static", 0, 1, &pl->mb_static) ||
        loom__rd_get_i(r, root, "nchains", 1, pl->micro > 1 && pl->mode >= LOOM_RUN_GRAD ? LOOM__NCHAINS : 1, &pl->nchains) ||
        loom__rd_get_i(r, root, "nstages", 1, pl->ndev, &pl->nstages) ||
        loom__rd_get_ints(r, root, "stages", 0, pl->nstages - 1, &stages, &n))
        return free(stages), -1;
    pl->schedule = (loom_schedule)sched;
    if (n != pl->ndev)
        return free(stages), loom__rd_bad(r, loom__json_get(r->doc, root, "stages"), "the stage of each of the %d devices", pl->ndev);
    memcpy(pl->stage, stages, (size_t)n * sizeof *stages);
    free(stages);
    return 0;
}

/* With micro-batches, the buffers that let every micro-batch of a step be in flight where the
 * schedule has them (fewer would hang the run): the source's and each parameter version's hold a
 * step's micro-batches, and what a forward chain keeps for its backward chain holds what the
 * schedule keeps. */
static int check_micro_buffers(loom__rd *r, const loom__plan *pl, int a)
{
    if (pl->micro < 2)
        return 0;
    if (pl->source_regst_num < pl->micro)
        return loom__rd_bad(r, loom__json_get(r->doc, 0, "source_regst_num"), "the source has %d buffers, under the %d micro-batches of a step",
                            pl->source_regst_num, pl->micro);
    int *want = malloc((size_t)pl->nregst * sizeof *want + 1), i = 0;
    if (!want)
        return loom__rd_bad(r, a, "out of memory");
    for (int reg = 0; reg < pl->nregst; reg++)
        want[reg] = pl->task[pl->regst[reg].producer].kind == LOOM__TASK_VARIABLE ? pl->micro : 1;
    for (int k = 0; k < pl->ntasks; k++)
        for (int j = 0; j < pl->task[k].n_in; j++) {
            const loom__task *c = &pl->task[k], *prod = &pl->task[pl->regst[c->in[j]].producer];
            if (c->chain_pos >= 0 && prod->chain_pos >= 0 && c->device == prod->device && c->chain != prod->chain)
                want[c->in[j]] = loom__plan_stash(pl, prod->device);
        }
    for (int o = loom__rd_val(r, a)->first; o >= 0; o = loom__rd_val(r, o)->next, i++)
        if (pl->regst[i].regst_num < want[i]) {
            int n = pl->regst[i].regst_num, w = want[i];
            free(want);
            return loom__rd_bad(r, o, "register %d has %d buffers, under the %d micro-batches its readers may hold at once", i, n, w);
        }
    free(want);
    return 0;
}

/* Each chain's positions are 0, 1, ... in task order: the lifetimes of shared registers and the
 * chain's one-piece-at-a-time order depend on it. */
static int check_chains(loom__rd *r, loom__plan *pl, int a)
{
    int *next = calloc((size_t)pl->ndev + 1, sizeof *next), i = 0;
    if (!next)
        return loom__rd_bad(r, a, "out of memory");
    for (int o = loom__rd_val(r, a)->first; o >= 0; o = loom__rd_val(r, o)->next, i++) {
        const loom__task *k = &pl->task[i];
        if (k->chain_pos >= 0)
            pl->nchain[k->device]++;
        if (k->chain_pos >= 0 && k->chain_pos != next[k->device]++) {
            int want = next[k->device] - 1;
            free(next);
            return loom__rd_bad(r, o, "task %d is at position %d of its device's chain, where %d comes next", i, k->chain_pos, want);
        }
    }
    free(next);
    return 0;
}

/* Where a register's buffers end, against its domain's block: offsets that a plan read back can
 * trust. */
static int check_register(loom__rd *r, const loom__plan *pl, int o, const loom__regst *rg)
{
    size_t span = rg->bytes, end;
    if (rg->mem == LOOM__MEM_OWN && rg->bytes > (SIZE_MAX / 2) / (size_t)rg->regst_num)
        return loom__rd_bad(r, o, "a register of %d buffers of %zu bytes", rg->regst_num, rg->bytes);
    if (rg->mem == LOOM__MEM_OWN)
        span = rg->bytes * (size_t)rg->regst_num;
    if (span > SIZE_MAX / 2 || rg->offset > SIZE_MAX / 2)
        return loom__rd_bad(r, o, "a register over an int64 byte count");
    end = rg->offset + span;
    size_t limit = 0;
    const char *what = "";
    if (rg->mem == LOOM__MEM_SHARED && rg->dom >= 0)
        limit = pl->mem[rg->dom].shared, what = "the device's shared block";
    else if (rg->mem == LOOM__MEM_OWN && rg->dom == LOOM__HOST)
        limit = pl->host_bytes, what = "the host's registers";
    else if (rg->mem == LOOM__MEM_OWN)
        limit = pl->mem[rg->dom].shared + pl->mem[rg->dom].own, what = "the device's block";
    else if (rg->mem == LOOM__MEM_PARAM && rg->dom >= 0)
        limit = pl->mem[rg->dom].params, what = "the device's parameters";
    else if (rg->mem == LOOM__MEM_NONE)
        return 0;
    else
        return loom__rd_bad(r, o, "a register of the host in %s memory", loom__plan_json_mems[rg->mem]);
    if (end > limit)
        return loom__rd_bad(r, o, "the register ends at byte %zu of %s, which holds %zu", end, what, limit);
    return 0;
}

/* What each task reads is the tensor it works on (a compute task: its sources, in order), and
 * every dense register has room for its part at the bounds: a kernel never writes past it. */
static int check_reads(loom__rd *r, const loom__plan *pl, int a)
{
    int i = 0;
    for (int o = loom__rd_val(r, a)->first; o >= 0; o = loom__rd_val(r, o)->next, i++) {
        const loom__task *k = &pl->task[i];
        const loom_tensor *t = loom__task_tensor(pl, k);
        for (int j = 0; t && j < k->n_in; j++) {
            int want = k->kind == LOOM__TASK_COMPUTE ? t->src[j]->id
                       : k->kind == LOOM__TASK_MOVE  ? t->src[0]->id
                       : k->kind == LOOM__TASK_VARIABLE ? (k->update >= 0 ? pl->g->t[k->update]->src[1]->id : -1)
                                                       : t->id;
            if (pl->regst[k->in[j]].tensor != want)
                return loom__rd_bad(r, o, "task %d reads register %d, which holds tensor %d, not %d", i, k->in[j],
                                    pl->regst[k->in[j]].tensor, want);
        }
        for (int j = 0; j < k->n_out; j++) {
            const loom__regst *rg = &pl->regst[k->out[j]];
            const loom_tensor *rt = pl->g->t[rg->tensor];
            const loom__lay l = loom__regst_lay(rg);
            size_t need = rt->layout == LOOM__CSR ? 0 : loom__lay_bytes(pl->g, rt, &l, rg->part);
            if (rt->layout == LOOM__CSR && pl->csr_rows[rt->id] < 0)
                return loom__rd_bad(r, o, "sparse tensor %d has no size (\"csr\")", rt->id);
            if (rg->mem != LOOM__MEM_NONE && rg->bytes < need)
                return loom__rd_bad(r, o, "register %d holds %zu bytes, under the %zu of its part at the bounds", k->out[j], rg->bytes,
                                    need);
        }
    }
    return 0;
}

static int read_registers(loom__rd *r, loom__plan *pl, int a)
{
    pl->nregst = pl->cap_regst = loom__rd_val(r, a)->n;
    pl->regst = calloc((size_t)pl->nregst + 1, sizeof *pl->regst);
    if (!pl->regst)
        return loom__rd_bad(r, a, "out of memory");
    int i = 0;
    for (int o = loom__rd_val(r, a)->first; o >= 0; o = loom__rd_val(r, o)->next, i++) {
        loom__regst *rg = &pl->regst[i];
        int mem;
        if (loom__rd_val(r, o)->kind != LOOM__JSON_OBJ)
            return loom__rd_bad(r, o, "a register must be an object");
        if (loom__rd_get_i(r, o, "producer", 0, pl->ntasks - 1, &rg->producer) ||
            loom__rd_get_i(r, o, "tensor", 0, pl->g->n - 1, &rg->tensor) ||
            loom__rd_get_i(r, o, "dom", LOOM__HOST, pl->ndev - 1, &rg->dom) ||
            loom__rd_get_i(r, o, "nparts", 1, LOOM__MAX_DEVICES, &rg->nparts) ||
            loom__rd_get_i(r, o, "part", 0, rg->nparts - 1, &rg->part) ||
            read_regst_sbp(r, o, rg) || loom__rd_get_size(r, o, "bytes", &rg->bytes) ||
            loom__rd_get_i(r, o, "regst_num", 1, LOOM_MAX_REGST_NUM, &rg->regst_num) ||
            loom__rd_get_name(r, o, "mem", loom__plan_json_mems, LOOM__PLAN_JSON_NMEM, &mem) ||
            loom__rd_get_size(r, o, "offset", &rg->offset) ||
            loom__rd_get_i(r, o, "first", -1, INT32_MAX, &rg->first) || loom__rd_get_i(r, o, "last", -1, INT32_MAX, &rg->last) ||
            loom__rd_get_i(r, o, "nconsumers", 0, INT32_MAX, &rg->nconsumers))
            return -1;
        rg->mem = (loom__mem_kind)mem;
    }
    uint8_t *written = calloc((size_t)pl->nregst + 1, 1);
    if (!written)
        return loom__rd_bad(r, a, "out of memory");
    for (int t = 0; t < pl->ntasks; t++)
        for (int j = 0; j < pl->task[t].n_in + pl->task[t].n_out; j++) {
            int reg = j < pl->task[t].n_in ? pl->task[t].in[j] : pl->task[t].out[j - pl->task[t].n_in];
            if (reg >= pl->nregst)
                return free(written), loom__rd_bad(r, a, "task %d names register %d of %d", t, reg, pl->nregst);
            if (j >= pl->task[t].n_in && (pl->regst[reg].producer != t || written[reg]++))
                return free(written), loom__rd_bad(r, a, "task %d writes register %d, whose producer is task %d", t, reg,
                                                   pl->regst[reg].producer);
        }
    for (int reg = 0; reg < pl->nregst; reg++)
        if (!written[reg])
            return free(written), loom__rd_bad(r, a, "register %d is not among the outputs of its producer, task %d", reg,
                                               pl->regst[reg].producer);
    free(written);
    return 0;
}

static int read_devices(loom__rd *r, loom__plan *pl, int root)
{
    int *dev = NULL, n = 0;
    if (loom__rd_get_ints(r, root, "devices", 0, LOOM_MAX_DEVICE_INDEX, &dev, &n))
        return free(dev), -1;
    if (n < 1 || n > LOOM__MAX_DEVICES)
        return free(dev), loom__rd_bad(r, loom__json_get(r->doc, root, "devices"), "a plan has 1 to %d devices", LOOM__MAX_DEVICES);
    pl->ndev = pl->ndev_all = n;
    pl->dev_index = calloc(LOOM__MAX_DEVICES, sizeof *pl->dev_index);
    if (!pl->dev_index)
        return free(dev), loom__rd_bad(r, root, "out of memory");
    memcpy(pl->dev_index, dev, (size_t)n * sizeof *dev);
    free(dev);
    pl->nranks = 1;
    pl->dev_rank = calloc(LOOM__MAX_DEVICES, sizeof *pl->dev_rank);
    if (!pl->dev_rank)
        return loom__rd_bad(r, root, "out of memory");
    if (loom__json_get(r->doc, root, "ranks") >= 0) { /* a plan over several processes */
        if (loom__rd_get_ints(r, root, "ranks", 0, LOOM_MAX_RANK, &dev, &n))
            return free(dev), -1;
        if (n != pl->ndev)
            return free(dev), loom__rd_bad(r, loom__json_get(r->doc, root, "ranks"), "%d ranks for %d devices", n, pl->ndev);
        for (int d = 0; d < n; d++) {
            pl->dev_rank[d] = dev[d];
            if (dev[d] + 1 > pl->nranks)
                pl->nranks = dev[d] + 1;
        }
        free(dev);
    }
    int a = loom__rd_member(r, root, "places", LOOM__JSON_ARR);
    if (a < 0)
        return -1;
    pl->nplaces = loom__rd_val(r, a)->n;
    if (pl->nplaces < 1)
        return loom__rd_bad(r, a, "a plan has at least one placement");
    pl->rank = -1; /* a plan written as JSON holds every rank's tasks */
    pl->place_n = calloc((size_t)pl->nplaces, sizeof *pl->place_n);
    pl->place_dev = calloc((size_t)pl->nplaces, sizeof *pl->place_dev);
    pl->place_per_rank = calloc((size_t)pl->nplaces, sizeof *pl->place_per_rank);
    pl->place_lo = calloc((size_t)pl->nplaces, sizeof *pl->place_lo);
    pl->place_hi = calloc((size_t)pl->nplaces, sizeof *pl->place_hi);
    if (!pl->place_n || !pl->place_dev || !pl->place_per_rank || !pl->place_lo || !pl->place_hi)
        return loom__rd_bad(r, a, "out of memory");
    int k = 0;
    for (int c = loom__rd_val(r, a)->first; c >= 0; c = loom__rd_val(r, c)->next, k++) {
        if (loom__rd_val(r, c)->kind != LOOM__JSON_ARR)
            return loom__rd_bad(r, c, "a placement is an array of the plan's devices");
        pl->place_n[k] = pl->place_hi[k] = pl->place_per_rank[k] = loom__rd_val(r, c)->n;
        pl->place_dev[k] = calloc((size_t)pl->place_n[k] + 1, sizeof **pl->place_dev);
        if (!pl->place_dev[k])
            return loom__rd_bad(r, c, "out of memory");
        int j = 0;
        for (int e = loom__rd_val(r, c)->first; e >= 0; e = loom__rd_val(r, e)->next, j++) {
            int64_t d = 0;
            if (loom__rd_int_at(r, e, "a placement's device", 0, pl->ndev - 1, &d))
                return -1;
            pl->place_dev[k][j] = (int)d;
        }
        if (pl->place_n[k] < 1)
            return loom__rd_bad(r, c, "a placement has at least one device");
    }
    return 0;
}

static int read_ops(loom__rd *r, loom__plan *pl, int root)
{
    int64_t tag = 0, seed = 0;
    int a = loom__rd_member(r, root, "tensors", LOOM__JSON_ARR), dyn = loom__rd_member(r, root, "dyn", LOOM__JSON_ARR);
    if (a < 0 || dyn < 0 || loom__rd_get_int(r, root, "dyn_tag", 0, (INT64_C(1) << LOOM__DYN_TAG_BITS) - 1, &tag) ||
        loom__rd_get_int(r, root, "seed", INT64_MIN, INT64_MAX, &seed))
        return -1;
    int n = loom__rd_val(r, a)->n;
    loom_graph *g = pl->g = calloc(1, sizeof *g);
    if (!g)
        return loom__rd_bad(r, a, "out of memory");
    g->t = malloc(((size_t)n + 1) * sizeof *g->t);
    g->chunk = calloc((size_t)n + 1, sizeof *g->chunk);
    g->dyn = calloc((size_t)loom__rd_val(r, dyn)->n + 1, sizeof *g->dyn);
    int *grad_of = malloc(((size_t)n + 1) * sizeof *grad_of);
    pl->passes.grad_of = grad_of;
    pl->csr_rows = malloc(((size_t)n + 1) * sizeof *pl->csr_rows);
    pl->csr_nnz = malloc(((size_t)n + 1) * sizeof *pl->csr_nnz);
    if (!g->t || !g->chunk || !g->dyn || !grad_of || !pl->csr_rows || !pl->csr_nnz)
        return loom__rd_bad(r, a, "out of memory");
    g->n = g->cap = n;
    g->dyn_tag = tag;
    g->seed = (uint64_t)seed;
    g->names_cap = -1;
    if (loom__rd_val(r, dyn)->n > LOOM__MAX_DYN)
        return loom__rd_bad(r, dyn, "more than %d dynamic dims", LOOM__MAX_DYN);
    for (int c = loom__rd_val(r, dyn)->first; c >= 0; c = loom__rd_val(r, c)->next, g->ndyn++) {
        int nm = loom__rd_member(r, c, "name", LOOM__JSON_STR);
        if (nm < 0 || loom__rd_get_int(r, c, "bound", 0, INT64_MAX, &g->dyn[g->ndyn].bound))
            return -1;
        g->dyn[g->ndyn].part_bound = 0; /* written since graph batches split by parts: absent in older plans */
        if (loom__json_get(r->doc, c, "part_bound") >= 0 &&
            loom__rd_get_int(r, c, "part_bound", 0, INT64_MAX, &g->dyn[g->ndyn].part_bound))
            return -1;
        if (strlen(loom__rd_val(r, nm)->s) >= sizeof g->dyn->name)
            return loom__rd_bad(r, nm, "a dynamic dim's name of more than %zu bytes", sizeof g->dyn->name - 1);
        snprintf(g->dyn[g->ndyn].name, sizeof g->dyn->name, "%s", loom__rd_val(r, nm)->s);
    }
    if (loom__rd_get_i(r, root, "fwd_end", 0, n, &pl->passes.fwd_end) ||
        loom__rd_get_i(r, root, "bwd_end", pl->passes.fwd_end, n, &pl->passes.bwd_end) ||
        loom__rd_get_i(r, root, "loss", -1, n - 1, &pl->loss) || loom__rd_get_i(r, root, "nlogical", 1, LOOM__MAX_DEVICES, &pl->nlogical))
        return -1;
    pl->passes.g = g;
    if (pl->nlogical > 1) {
        pl->sbp = calloc((size_t)n + 1, sizeof *pl->sbp);
        pl->sig = calloc((size_t)n + 1, sizeof *pl->sig);
        if (!pl->sbp || !pl->sig)
            return loom__rd_bad(r, a, "out of memory");
    }
    int id = 0;
    for (int c = loom__rd_val(r, a)->first; c >= 0; c = loom__rd_val(r, c)->next, id++) {
        g->t[id] = &g->chunk[id];
        if (loom__rd_val(r, c)->kind != LOOM__JSON_OBJ)
            return loom__rd_bad(r, c, "a tensor must be an object");
        if (read_tensor(r, pl, c, id, grad_of))
            return -1;
    }
    for (int j = 0; pl->mesh && j < n; j++)
        if (pl->mesh[j][0] > 0) {
            const loom__sbp_sig *pair[2] = {&pl->sig[j], &pl->sig1[j]};
            loom__nd_kernel_sig(pair, g->t[j]->n_src, &pl->ksig[j]);
        }
    return 0;
}

/* The by-id tables: kept tensors, the parameters' offsets, the registers of each part. */
static int read_tables(loom__rd *r, loom__plan *pl, int root)
{
    size_t n = (size_t)pl->g->n, nd = (size_t)pl->ndev;
    pl->kept = calloc(n + 1, sizeof *pl->kept);
    pl->param_off = malloc(n * nd * sizeof *pl->param_off + 1);
    pl->mem = calloc(nd, sizeof *pl->mem);
    if (!pl->kept || !pl->param_off || !pl->mem)
        return loom__rd_bad(r, root, "out of memory");
    for (size_t i = 0; i < n * nd; i++)
        pl->param_off[i] = (size_t)-1;
    int *kept = NULL, nk = 0;
    if (loom__rd_get_ints(r, root, "kept", 0, (int)n - 1, &kept, &nk))
        return free(kept), -1;
    for (int i = 0; i < nk; i++)
        pl->kept[kept[i]] = 1;
    free(kept);
    int po = loom__rd_member(r, root, "param_off", LOOM__JSON_ARR), mem = loom__rd_member(r, root, "memory", LOOM__JSON_ARR);
    if (po < 0 || mem < 0)
        return -1;
    for (int c = loom__rd_val(r, po)->first; c >= 0; c = loom__rd_val(r, c)->next) {
        int64_t id = 0, d = 0, off = 0;
        int e = loom__rd_val(r, c)->first;
        if (loom__rd_val(r, c)->kind != LOOM__JSON_ARR || loom__rd_val(r, c)->n != 3)
            return loom__rd_bad(r, c, "a parameter's offset is [tensor, device, offset]");
        if (loom__rd_int_at(r, e, "the tensor", 0, (int64_t)n - 1, &id) ||
            loom__rd_int_at(r, loom__rd_val(r, e)->next, "the device", 0, (int64_t)nd - 1, &d) ||
            loom__rd_int_at(r, loom__rd_val(r, loom__rd_val(r, e)->next)->next, "the offset", 0, INT64_MAX, &off))
            return -1;
        pl->param_off[(size_t)id * nd + (size_t)d] = (size_t)off;
    }
    if (loom__rd_val(r, mem)->n != pl->ndev)
        return loom__rd_bad(r, mem, "the memory of each of the %d devices", pl->ndev);
    int d = 0;
    for (int c = loom__rd_val(r, mem)->first; c >= 0; c = loom__rd_val(r, c)->next, d++) {
        loom__dev_mem *m = &pl->mem[d];
        if (loom__rd_get_size(r, c, "shared", &m->shared) || loom__rd_get_size(r, c, "unshared", &m->unshared) ||
            loom__rd_get_size(r, c, "own", &m->own) || loom__rd_get_size(r, c, "params", &m->params) ||
            loom__rd_get_size(r, c, "inputs", &m->inputs))
            return -1;
        pl->shared_bytes += m->shared;
        pl->own_bytes += m->own;
        pl->unshared_bytes += m->unshared;
    }
    return loom__rd_get_size(r, root, "host_bytes", &pl->host_bytes);
}

loom__plan *loom__plan_read_json(const char *text, size_t len, const char *where, char *msg, size_t msglen)
{
    loom__json doc;
    char jm[200];
    if (loom__json_parse(text, len, &doc, jm, sizeof jm)) {
        snprintf(msg, msglen, "%s: %s", where, jm);
        return NULL;
    }
    loom__rd r = {.doc = &doc, .where = where, .msg = msg, .msglen = msglen};
    loom__plan *pl = calloc(1, sizeof *pl);
    int kind = 0, mode = 0, tasks, regs;
    int64_t version = 0;
    for (int i = 0; i < LOOM_OP_COUNT; i++)
        r.ops[i] = loom__op_def((loom_op)i)->name;
    for (int i = 0; i < LOOM_DTYPE_COUNT; i++)
        r.dtypes[i] = loom_dtype_name((loom_dtype)i);
    for (int i = 0; i < LOOM_DEVICE_KIND_COUNT; i++)
        r.kinds[i] = loom_device_kind_name((loom_device_kind)i);
    int ok = pl && doc.v[0].kind == LOOM__JSON_OBJ;
    if (!pl)
        loom__rd_bad(&r, 0, "out of memory");
    else if (!ok)
        loom__rd_bad(&r, 0, "a plan is a JSON object");
    if (ok && (loom__rd_get_int(&r, 0, "loom_plan", 1, INT64_MAX, &version) ||
               (version != LOOM__PLAN_JSON_VERSION &&
                loom__rd_bad(&r, loom__json_get(&doc, 0, "loom_plan"), "version %" PRId64 " of the plan format; this Loom reads version %d",
                             version, LOOM__PLAN_JSON_VERSION)) ||
               loom__rd_get_name(&r, 0, "mode", loom__plan_json_modes, LOOM_RUN_MODE_COUNT, &mode) ||
               loom__rd_get_name(&r, 0, "kind", r.kinds, LOOM_DEVICE_KIND_COUNT, &kind) ||
               loom__rd_get_i(&r, 0, "source_regst_num", 1, LOOM_MAX_REGST_NUM, &pl->source_regst_num) ||
               read_devices(&r, pl, 0)))
        ok = 0;
    if (ok) {
        pl->mode = (loom_run_mode)mode;
        pl->kind = (loom_device_kind)kind;
        pl->nchain = calloc((size_t)pl->ndev, sizeof *pl->nchain);
        ok = pl->nchain ? read_ops(&r, pl, 0) == 0 && read_tables(&r, pl, 0) == 0 && read_micro(&r, pl, 0) == 0
                        : loom__rd_bad(&r, 0, "out of memory") == 0;
    }
    if (ok && ((tasks = loom__rd_member(&r, 0, "tasks", LOOM__JSON_ARR)) < 0 || read_tasks(&r, pl, tasks) || check_chains(&r, pl, tasks) ||
               (regs = loom__rd_member(&r, 0, "registers", LOOM__JSON_ARR)) < 0 || read_registers(&r, pl, regs)))
        ok = 0;
    for (int i = 0, o = ok ? doc.v[regs].first : -1; ok && i < pl->nregst; i++, o = doc.v[o].next)
        if (check_register(&r, pl, o, &pl->regst[i]))
            ok = 0;
    if (ok && (check_reads(&r, pl, tasks) || check_micro_buffers(&r, pl, regs)))
        ok = 0;
    loom__json_free(&doc);
    if (!ok) {
        loom__plan_free(pl);
        return NULL;
    }
    return pl;
}
