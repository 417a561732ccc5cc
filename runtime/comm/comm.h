/* Communicators (internal): how the devices of a placement exchange the parts of a tensor. The
 * actors call one through this table and never the transport itself, so a transport is one more
 * implementation: in-process for CPU devices (here), NCCL for GPUs (nccl/nccl.h).
 *
 * One call makes one device's part of a tensor under another SBP from the parts under its own:
 * S -> B all-gather, P -> B all-reduce, P -> S reduce-scatter, S(i) -> S(j) all-to-all, B -> S a
 * local slice, B -> P a local zeroing, and a move from one placement to another (n_from and n_to
 * devices). Every device of the placement makes the same call for its own part. */
#ifndef LOOM_RUNTIME_COMM_COMM_H
#define LOOM_RUNTIME_COMM_COMM_H

#include "graphs/core/op.h"
#include "runtime/comm/parts.h"

typedef struct loom__comm_box {
    const loom__value *const *parts; /* the tensor's parts under from, as this transport reaches them */
    loom_sbp from, to;
    int n_from, n_to;
    int part;                        /* the part to make: of n_to under to */
    int64_t first;                   /* under S(i): the part's first index along axis i (its size is
                                        the output's); parts under from carry their own sizes */
    const int64_t *logical;          /* the tensor's logical shape at this piece (dense values) */
    const loom__lay *lay_from, *lay_to; /* the same with two levels on a mesh (parts.h) */
    void *ctx;                       /* the transport's state for the calling device (NCCL's:
                                        nccl/nccl.h), NULL for shared memory */
} loom__comm_box;

typedef struct loom__comm_ops {
    const char *name;
    /* Writes part b->part under b->to into out (room for it at the bounds; dtype set, ndim and
     * shape set here for CSR); LOOM_OK, or a status with msg. */
    loom_status (*box)(const loom__comm_box *b, loom__value *out, char *msg, size_t len);
} loom__comm_ops;

/* CPU devices of one process: every part is in the host's shared memory, so a device reads all of
 * them and writes its own (partial sums in double, in device order, rounded once: the same bits on
 * every path). CSR values split by rows only (S(0) and B). */
extern const loom__comm_ops loom__comm_shared;

#endif
