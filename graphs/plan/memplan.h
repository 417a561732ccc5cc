/* Placing blocks by lifetime in one memory block (internal): the static memory plan of a device's
 * chain (graphs/plan/plan_memory.c). */
#ifndef LOOM_GRAPHS_MEMPLAN_H
#define LOOM_GRAPHS_MEMPLAN_H

#include <stddef.h>

/* A block live from chain position first to last (both included), bytes long (a plan size:
 * within an int64, or LOOM__PLAN_OVER); offset is what loom__memplan sets. */
typedef struct loom__block {
    int first, last;
    size_t bytes;
    size_t offset;
} loom__block;

#define LOOM__MEMPLAN_NOMEM ((size_t)-2) /* not a plan size: those are within an int64 or LOOM__PLAN_OVER */

/* Greedy by size: takes the blocks largest first (ties in index order) and puts each at the lowest
 * offset where it overlaps no block taken before whose lifetime meets its own. Two blocks whose
 * lifetimes meet never overlap. Returns the top of the block (the largest offset + bytes; 0 for
 * no blocks), LOOM__PLAN_OVER where a sum is over an int64, LOOM__MEMPLAN_NOMEM on out of memory.
 * O(n log n + P log n) for P pairs of blocks whose lifetimes meet: linear in n when the blocks
 * live at any one position are bounded. */
size_t loom__memplan(loom__block *b, int n);

#endif
