/* The numerics check (loom_train_opts.check_numerics, $LOOM_CHECK_NUMERICS=1): right after each
 * op's kernel its output is scanned for NaN and infinities, and the first op that makes one stops
 * the run, named with its tensor and the pass it belongs to. */
#ifndef LOOM_GRAPHS_NUMERICS_H
#define LOOM_GRAPHS_NUMERICS_H

#include "graphs/builder/graph.h"

/* Where the tensors of a graph belong: [0, fwd_end) the model as the user built it, [fwd_end,
 * bwd_end) gradients, [bwd_end, ...) optimizer updates; grad_of (by id, NULL without gradients):
 * the forward tensor whose gradient it is, or -1. */
typedef struct loom__passes {
    const loom_graph *g;
    int fwd_end, bwd_end;
    const int *grad_of;
} loom__passes;

/* $LOOM_CHECK_NUMERICS turns it on (1, not 0 or empty). */
int loom__numerics_env(void);
/* The index of v's first NaN or infinity (its value in *bad), or -1; integer values: -1. */
int64_t loom__first_nonfinite(const loom__value *v, double *bad);
/* The message of op t having made `what` ("nan", "inf", "-inf") at element at of n, naming the op,
 * its tensor and its pass; returns LOOM_ERR_RUNTIME. */
loom_status loom__numerics_fail(const loom__passes *ps, const loom_tensor *t, int64_t at, int64_t n, const char *what,
                                char *msg, size_t len);
/* LOOM_ERR_RUNTIME and that message when v, made by t (for an in-place update: the parameter it
 * updated), is not finite; LOOM_OK otherwise. */
loom_status loom__check_numerics(const loom__passes *ps, const loom_tensor *t, const loom__value *v, char *msg, size_t len);

#endif
