/* SBP inference and the boxing planner (internal).
 *
 * Inference gives every tensor of a graph an SBP on its placement (of two levels on a 2-D mesh, a
 * 1-D signature of its op per level; docs/design.md): inputs and
 * parameters take the user's hint or a default (inputs S(0) along the batch, parameters B), and
 * every op takes, among its valid signatures (graphs/core/op.h) and the all-broadcast one, the one whose
 * boxing of its sources costs least, then a refinement pass reconsiders each op given its
 * consumers too. Each choice records why, so `loom plan` can print the reason. Boxing is the
 * collective a producer's SBP needs to become its consumer's. */
#ifndef LOOM_SBP_INFER_H
#define LOOM_SBP_INFER_H

#include <stdio.h>

#include "sbp/infer/cost.h"

typedef struct loom__sbp_plan {
    int n;             /* devices of the plan (every placement's, once each) */
    int *nparts;       /* by tensor id: devices of its placement, the parts of a split */
    int ntensors;
    loom_sbp *sbp;     /* by tensor id: its SBP */
    loom__sbp_sig *sig; /* by tensor id: the signature chosen (sources' wanted SBPs, output) */
    char (*cause)[48]; /* by tensor id: why */
    double box_bytes;  /* per step, summed over boxing edges: bytes each device moves */
    double box_seconds;
    const uint8_t *dead; /* by tensor id, or NULL: left out */
    /* On 2-D placements (meshes, docs/placement.md) sbp and sig hold level 0, and these level 1: */
    int (*mesh)[2];      /* by tensor id: its placement's mesh, {0, 0} on a 1-D one; NULL when no mesh */
    loom_sbp *sbp1;      /* by tensor id, with mesh: level 1's SBP */
    loom__sbp_sig *sig1; /* likewise, level 1's signature */
} loom__sbp_plan;

/* 1 when tensor id lies on a 2-D mesh. */
static inline int loom__sbp_plan_2d(const loom__sbp_plan *pl, int id) { return pl->mesh && pl->mesh[id][0] > 0; }
/* Tensor id's SBP, of one or two levels. */
static inline loom_nd_sbp loom__sbp_plan_nd(const loom__sbp_plan *pl, int id)
{
    return loom__sbp_plan_2d(pl, id) ? loom_nd_sbp_2d(pl->sbp[id], pl->sbp1[id]) : loom_nd_sbp_1d(pl->sbp[id]);
}
/* The SBP op id's signature wants of its source i (levels as the source's placement). */
static inline loom_nd_sbp loom__sbp_plan_want(const loom__sbp_plan *pl, const loom_tensor *t, int i)
{
    if (t->op == LOOM_OP_MOVE) /* a move reads its source as it is */
        return loom__sbp_plan_nd(pl, t->src[0]->id);
    return loom__sbp_plan_2d(pl, t->src[i]->id) ? loom_nd_sbp_2d(pl->sig[t->id].in[i], pl->sig1[t->id].in[i])
                                                : loom_nd_sbp_1d(pl->sig[t->id].in[i]);
}
/* The boxing of op t's source i into what its signature wants: the route's seconds, and the route
 * into *r (NULL: not wanted; a 1-D boxing is one step on level 0). */
double loom__sbp_plan_box(const loom__sbp_plan *pl, const loom_tensor *t, int i, const loom__cost_model *cm, loom__box_route *r);

/* Infers SBPs for tensors [0, end) of g, each on its placement's devices (n: the plan's, all
 * placements together); a move (loom_to_placement) may take any SBP on its destination; tensors with dead[id] set (NULL: none) never
 * run and are left out. On a hint no signature can meet, returns
 * LOOM_ERR_INVALID with a message naming the op, the tensor, its sources' SBPs and the signatures
 * that would have worked. */
loom_status loom__sbp_infer(loom_graph *g, int end, const uint8_t *dead, int n, const loom__cost_model *cm,
                            loom__sbp_plan *out, char *msg, size_t len);
void loom__sbp_plan_free(loom__sbp_plan *pl);

/* A plan's step time under the cost model: each op's seconds on its devices, each boxing's on its
 * consumer's (over ranks, on the devices of a placement's first rank, which every rank's run
 * alike); the step is the longer of the busiest device's sum (devices run their ops one at a
 * time) and the longest chain of ops and boxings (what waits for what), plus a step's own. With
 * micro-batches (micro > 1) g's shapes are a micro-batch's (the plan's op table) and the ops
 * before upd (the forward and backward passes) run once per micro-batch through the pipeline's
 * stages, those from upd on (the updates) once: the step of a pipeline (cost.h). */
typedef struct loom__prediction {
    double seconds;  /* the predicted step: the longer of busiest and chain, and step */
    double compute;  /* the busiest device's op seconds */
    double boxing;   /* the busiest device's boxing seconds */
    double busiest;  /* the busiest device's sum */
    double chain;    /* the longest chain */
    double step;     /* a step's own seconds (the busiest device kind's step latency) */
    loom_device_kind kind;              /* the busiest device's */
    double terms[LOOM__COST_TERMS];     /* the busiest device's terms, with one step */
    int micro, stages;  /* micro-batches (1: none) and the pipeline's stages they pass through */
    double fill;        /* with micro-batches: one micro-batch through every stage (the sum of the stages') */
    double period;      /* with micro-batches: a micro-batch's slowest stage (or the machine, shared) */
    double update;      /* with micro-batches: the busiest device's updates, once a step */
} loom__prediction;
void loom__sbp_plan_predict(const loom__sbp_plan *pl, loom_graph *g, int end, int micro, int upd,
                            const loom__cost_model *cm, loom__prediction *out);
/* Each op's signature and reason, its seconds and its sources' boxing seconds under cm, every
 * boxing with its bytes, and the totals with the predicted step. */
void loom__sbp_plan_print(const loom__sbp_plan *pl, loom_graph *g, int end, int micro, int upd, const loom__cost_model *cm,
                          FILE *f);
/* Graphviz: each device a cluster holding its instance of every op, boxing nodes in red between. */
void loom__sbp_plan_dot(const loom__sbp_plan *pl, loom_graph *g, int end, FILE *f);

#endif
