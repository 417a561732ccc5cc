/* What the files that build a plan share (internal to graphs/plan/): plan.c runs the passes, and
 * calls these for the parts of a plan that are not its tasks. */
#ifndef LOOM_GRAPHS_PLAN_INTERNAL_H
#define LOOM_GRAPHS_PLAN_INTERNAL_H

#include "graphs/plan/plan.h"

/* The plan's devices: each placement's (rank >= 0: those on that rank only), in the order they
 * first appear; place_dev maps every placement's positions onto them. -1 on out of memory
 * (plan_program.c). */
int loom__plan_devices(loom__plan *pl, const loom_graph *g, int rank);
/* What the plan holds of the program beyond its tasks: the op table, the passes, the loss, every
 * tensor's SBP and signature, the sparse inputs' sizes. -1 on out of memory (plan_program.c). */
int loom__plan_program(loom__plan *pl, const loom__plan_src *p);
/* 0. Micro-batches: refuses a graph whose batch they cannot cut (naming why), else makes the op
 * table compute one micro-batch (see loom__plan.micro). -4 with the message set, -1 on out of
 * memory (plan_micro.c). */
int loom__plan_micro(loom__plan *pl, const loom__plan_src *p);
/* 5. Memory: registers read only inside their device's chain share a block by lifetime; the rest
 * get regst_num buffers of their own, after it, source_regst_num of them for a chain's output that
 * the host reads. 0, -1 on out of memory, -3 when a size is over an int64 byte count
 * (plan_memory.c). */
int loom__plan_memory(loom__plan *pl, int source_regst_num);

#endif
