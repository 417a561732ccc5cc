/* The boxing planner: which collective turns one SBP into another, and what it costs. */
#include "sbp/infer/infer.h"

loom__box_kind loom__boxing(loom_sbp from, loom_sbp to)
{
    if (loom_sbp_equal(from, to))
        return LOOM__BOX_NONE;
    switch (from.kind) {
    case LOOM_SBP_SPLIT:
        return to.kind == LOOM_SBP_BROADCAST ? LOOM__BOX_ALL_GATHER
               : to.kind == LOOM_SBP_SPLIT  ? LOOM__BOX_ALL_TO_ALL
                                            : LOOM__BOX_GATHER_ZERO;
    case LOOM_SBP_PARTIAL_SUM:
        return to.kind == LOOM_SBP_BROADCAST ? LOOM__BOX_ALL_REDUCE : LOOM__BOX_REDUCE_SCATTER;
    case LOOM_SBP_BROADCAST:
        return to.kind == LOOM_SBP_SPLIT ? LOOM__BOX_SLICE : LOOM__BOX_LOCAL_ZERO;
    default:
        return LOOM__BOX_NONE;
    }
}

const char *loom__box_name(loom__box_kind k)
{
    static const char *const names[LOOM__BOX_KIND_COUNT] = {
        [LOOM__BOX_NONE] = "none",
        [LOOM__BOX_ALL_GATHER] = "all-gather",
        [LOOM__BOX_ALL_REDUCE] = "all-reduce",
        [LOOM__BOX_REDUCE_SCATTER] = "reduce-scatter",
        [LOOM__BOX_ALL_TO_ALL] = "all-to-all",
        [LOOM__BOX_SLICE] = "slice",
        [LOOM__BOX_LOCAL_ZERO] = "local (zero but one)",
        [LOOM__BOX_GATHER_ZERO] = "all-gather, zero but one",
    };
    return (unsigned)k < LOOM__BOX_KIND_COUNT ? names[k] : "?";
}

double loom__box_bytes(loom__box_kind k, double bytes, int n)
{
    if (n <= 1)
        return 0;
    double f = (double)(n - 1) / n;
    switch (k) {
    case LOOM__BOX_ALL_GATHER:
    case LOOM__BOX_REDUCE_SCATTER:
    case LOOM__BOX_GATHER_ZERO:
        return f * bytes;
    case LOOM__BOX_ALL_REDUCE:
        return 2 * f * bytes;
    case LOOM__BOX_ALL_TO_ALL:
        return f * bytes / n; /* each device keeps 1/n of its 1/n part and sends the rest */
    default:
        return 0; /* slices and zeroing are local */
    }
}

double loom__box_seconds(loom__box_kind k, double bytes, int n, const loom__cost_model *cm)
{
    double b = loom__box_bytes(k, bytes, n);
    if (b == 0)
        return 0;
    int steps = k == LOOM__BOX_ALL_REDUCE ? 2 * (n - 1) : n - 1; /* ring collectives */
    return cm->latency * steps + b / cm->bandwidth;
}
