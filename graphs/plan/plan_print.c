/* A plan in words (see plan.h): one line per task and register, and the memory of each device. */
#include "graphs/plan/plan.h"

#include <inttypes.h>
#include <stdio.h>

static const char *const kind_name[LOOM__TASK_KIND_COUNT] = {"source", "variable", "compute", "boxing", "move", "copy", "sink", "acc"};
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
        if (pl->nchains > 1 && t->chain_pos >= 0)
            fprintf(f, " (%s chain)", t->chain == LOOM__CHAIN_FWD ? "forward" : "backward");
        if (t->kind == LOOM__TASK_BOXING) {
            const loom__lay from = loom__regst_lay(&pl->regst[t->in[0]]), to = loom__regst_lay(&pl->regst[t->out[0]]);
            loom_nd_sbp_str(&from.s, b, sizeof b);
            loom_nd_sbp_str(&to.s, s1, sizeof s1);
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
    if (pl->micro > 1)
        fprintf(f, "micro-batches: %d per step of %" PRId64 " rows, %s schedule over %d stage%s\n", pl->micro, pl->mb_rows,
                pl->schedule == LOOM_SCHEDULE_GPIPE ? "GPipe" : "1F1B", pl->nstages, pl->nstages == 1 ? "" : "s");
    for (int d = 0; d < pl->ndev; d++)
        fprintf(f, "memory of %s:%d: %zu bytes shared by lifetime (%zu without reuse), %zu bytes of own registers, %zu bytes of parameters and optimizer state%s\n",
                loom_device_kind_name(pl->kind), pl->dev_index[d], pl->mem[d].shared, pl->mem[d].unshared, pl->mem[d].own,
                pl->mem[d].params, pl->ndev_all == 1 && pl->kind == LOOM_DEVICE_CPU ? " (held by the program)" : "");
    fprintf(f, "memory: %zu bytes shared by lifetime (%zu without reuse), %zu bytes of own registers, %zu bytes on the host\n",
            pl->shared_bytes, pl->unshared_bytes, pl->own_bytes, pl->host_bytes);
}
