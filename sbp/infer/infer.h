/* SBP inference and the boxing planner (internal).
 *
 * Inference gives every tensor of a graph an SBP on a 1-D placement of n devices: inputs and
 * parameters take the user's hint or a default (inputs S(0) along the batch, parameters B), and
 * every op takes, among its valid signatures (graphs/core/op.h) and the all-broadcast one, the one whose
 * boxing of its sources costs least, then a refinement pass reconsiders each op given its
 * consumers too. Each choice records why, so `loom plan` can print the reason. Boxing is the
 * collective a producer's SBP needs to become its consumer's. */
#ifndef LOOM_SBP_INFER_H
#define LOOM_SBP_INFER_H

#include <stdio.h>

#include "graphs/core/op.h"

typedef enum loom__box_kind {
    LOOM__BOX_NONE,
    LOOM__BOX_ALL_GATHER,     /* S(i) -> B */
    LOOM__BOX_ALL_REDUCE,     /* P -> B */
    LOOM__BOX_REDUCE_SCATTER, /* P -> S(i) */
    LOOM__BOX_ALL_TO_ALL,     /* S(i) -> S(j) */
    LOOM__BOX_SLICE,          /* B -> S(i): local */
    LOOM__BOX_LOCAL_ZERO,     /* B -> P: local, zero on all but device 0 */
    LOOM__BOX_GATHER_ZERO,    /* S(i) -> P: all-gather, then zero on all but device 0 */
    LOOM__BOX_KIND_COUNT
} loom__box_kind;

/* A link's cost: seconds = latency * (collective steps) + bytes / bandwidth. The defaults describe
 * logical CPU devices sharing one memory; a measured device profile replaces them. */
typedef struct loom__cost_model {
    double bandwidth; /* bytes per second per device */
    double latency;   /* seconds per collective step */
} loom__cost_model;
#define LOOM__COST_CPU ((loom__cost_model){.bandwidth = 10e9, .latency = 5e-6})

/* The collective that turns `from` into `to`. */
loom__box_kind loom__boxing(loom_sbp from, loom_sbp to);
const char *loom__box_name(loom__box_kind k);
/* Bytes each device sends for a tensor of `bytes` logical bytes on n devices (ring algorithms:
 * all-gather and reduce-scatter (n-1)/n, all-reduce 2(n-1)/n, all-to-all (n-1)/n^2 per pair). */
double loom__box_bytes(loom__box_kind k, double bytes, int n);
/* Seconds under the model. */
double loom__box_seconds(loom__box_kind k, double bytes, int n, const loom__cost_model *cm);

typedef struct loom__sbp_plan {
    int n;             /* devices of the plan (every placement's, once each) */
    int *nparts;       /* by tensor id: devices of its placement, the parts of a split */
    int ntensors;
    loom_sbp *sbp;     /* by tensor id: its SBP */
    loom__sbp_sig *sig; /* by tensor id: the signature chosen (sources' wanted SBPs, output) */
    char (*cause)[48]; /* by tensor id: why */
    double box_bytes;  /* per step, summed over boxing edges: bytes each device sends */
    double box_seconds;
    const uint8_t *dead; /* by tensor id, or NULL: left out */
} loom__sbp_plan;

/* Infers SBPs for tensors [0, end) of g, each on its placement's devices (n: the plan's, all
 * placements together); a move (loom_to_placement) may take any SBP on its destination; tensors with dead[id] set (NULL: none) never
 * run and are left out. On a hint no signature can meet, returns
 * LOOM_ERR_INVALID with a message naming the op, the tensor, its sources' SBPs and the signatures
 * that would have worked. */
loom_status loom__sbp_infer(loom_graph *g, int end, const uint8_t *dead, int n, const loom__cost_model *cm,
                            loom__sbp_plan *out, char *msg, size_t len);
void loom__sbp_plan_free(loom__sbp_plan *pl);
/* Each op's signature and reason, every boxing with its bytes, and the totals. */
void loom__sbp_plan_print(const loom__sbp_plan *pl, loom_graph *g, int end, FILE *f);
/* Graphviz: each device a cluster holding its instance of every op, boxing nodes in red between. */
void loom__sbp_plan_dot(const loom__sbp_plan *pl, loom_graph *g, int end, FILE *f);

#endif
