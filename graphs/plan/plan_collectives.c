/* The order in which a plan's devices meet in collectives (see plan.h). */
#include "graphs/plan/plan.h"

#include <stdio.h>
#include <stdlib.h>

/* The collective of boxing task i: the first of the tasks made together for its tensor and SBP,
 * one per part in part order (graphs/plan/plan.c, parts_as). */
static int collective_of(const loom__plan *pl, int i) { return i - pl->regst[pl->task[i].out[0]].part; }

int loom__plan_check_collectives(const loom__plan *pl, char *msg, size_t len)
{
    int *last = malloc(((size_t)pl->ndev + 1) * 2 * sizeof *last); /* by device: the last collective met, and its task */
    int *pos = malloc(((size_t)pl->ndev + 1) * sizeof *pos);
    if (!last || !pos) {
        free(last), free(pos);
        snprintf(msg, len, "out of memory");
        return -1;
    }
    int bad = 0;
    for (int d = 0; d < pl->ndev; d++)
        last[2 * d] = last[2 * d + 1] = pos[d] = -1;
    /* each device's boxing tasks in chain order: a chain is in task order when the plan is built,
     * but a plan read back from JSON says its own positions */
    for (int d = 0; d < pl->ndev && !bad; d++) {
        int chains_used = 0;
        for (;;) {
            int next = -1;
            for (int i = 0; i < pl->ntasks; i++) {
                const loom__task *k = &pl->task[i];
                if (k->kind != LOOM__TASK_BOXING || k->device != d || k->chain_pos <= pos[d])
                    continue;
                if (next < 0 || k->chain_pos < pl->task[next].chain_pos)
                    next = i;
            }
            if (next < 0)
                break;
            pos[d] = pl->task[next].chain_pos;
            chains_used |= 1 << pl->task[next].chain;
            int c = collective_of(pl, next);
            if (chains_used == 3) {
                snprintf(msg, len, "device %d has boxing tasks in both its forward and its backward chain, which interleave "
                         "from one run to the next: its collectives would meet the other devices' in another order",
                         d);
                bad = 1;
                break;
            }
            if (c <= last[2 * d]) {
                snprintf(msg, len, "device %d reaches the boxing of task %d (chain position %d) after that of task %d, the other "
                         "devices in the opposite order: its collectives would wait on each other",
                         d, next, pl->task[next].chain_pos, last[2 * d + 1]);
                bad = 1;
                break;
            }
            last[2 * d] = c;
            last[2 * d + 1] = next;
        }
    }
    free(last), free(pos);
    return bad ? -1 : 0;
}
