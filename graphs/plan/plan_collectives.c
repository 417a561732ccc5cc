/* The order in which a plan's devices meet in collectives (see plan.h). */
#include "graphs/plan/plan.h"

#include <stdio.h>
#include <stdlib.h>

/* The collective of boxing task i: the first of the tasks made together for its tensor and SBP,
 * one per part in part order (graphs/plan/plan.c, parts_as). */
static int collective_of(const loom__plan *pl, int i) { return i - pl->regst[pl->task[i].out[0]].part; }

typedef struct boxing_at {
    int device, chain_pos, task;
} boxing_at;

static int by_device_then_position(const void *a, const void *b)
{
    const boxing_at *x = a, *y = b;
    if (x->device != y->device)
        return x->device < y->device ? -1 : 1;
    if (x->chain_pos != y->chain_pos)
        return x->chain_pos < y->chain_pos ? -1 : 1;
    return (x->task > y->task) - (x->task < y->task);
}

int loom__plan_check_collectives(const loom__plan *pl, char *msg, size_t len)
{
    int n = 0;
    for (int i = 0; i < pl->ntasks; i++)
        n += pl->task[i].kind == LOOM__TASK_BOXING;
    boxing_at *at = malloc(((size_t)n + 1) * sizeof *at);
    if (!at) {
        snprintf(msg, len, "out of memory");
        return -1;
    }
    n = 0;
    for (int i = 0; i < pl->ntasks; i++)
        if (pl->task[i].kind == LOOM__TASK_BOXING)
            at[n++] = (boxing_at){pl->task[i].device, pl->task[i].chain_pos, i};
    /* each device's boxing tasks in chain order: a chain is in task order when the plan is built,
     * but a plan read back from JSON says its own positions */
    qsort(at, (size_t)n, sizeof *at, by_device_then_position);
    int bad = 0;
    for (int s = 0; s < n && !bad;) {
        const int d = at[s].device;
        int chains_used = 0, last = -1, last_task = -1;
        for (; s < n && at[s].device == d; s++) {
            if (s > 0 && at[s - 1].device == d && at[s - 1].chain_pos == at[s].chain_pos)
                continue; /* one task per position: the first */
            const int next = at[s].task, c = collective_of(pl, next);
            chains_used |= 1 << pl->task[next].chain;
            if (chains_used == 3) {
                snprintf(msg, len, "device %d has boxing tasks in both its forward and its backward chain, which interleave "
                         "from one run to the next: its collectives would meet the other devices' in another order",
                         d);
                bad = 1;
                break;
            }
            if (c <= last) {
                snprintf(msg, len, "device %d reaches the boxing of task %d (chain position %d) after that of task %d, the other "
                         "devices in the opposite order: its collectives would wait on each other",
                         d, next, pl->task[next].chain_pos, last_task);
                bad = 1;
                break;
            }
            last = c;
            last_task = next;
        }
    }
    free(at);
    return bad ? -1 : 0;
}
