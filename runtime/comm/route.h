/* How one device makes its part of a tensor under another SBP when every device holds only its own
 * part (internal): the route of a boxing between devices with memories of their own (GPUs, through
 * NCCL). Pure arithmetic on shapes, the same on every device, so that what device q sends to d is
 * exactly what d receives from q, and tested on the host against loom__part_convert.
 *
 * Routes of a 1-D layout of n devices (parts where loom_split_part puts them):
 *   same SBP, or one device: LOCAL, the own part copied whole (the output is another buffer)
 *   B -> S(a)   LOCAL: the slice of the own part (no communication)
 *   B -> P      LOCAL: device 0 copies, the others zero
 *   P -> B      ALL_REDUCE over the whole value
 *   P -> S(0)   REDUCE_SCATTER when the rows split evenly; else (any axis, uneven)
 *   P -> S(a)   REDUCE_SLICE: an all-reduce into scratch, then the local slice
 *   S(0) -> B   ALL_GATHER when the rows split evenly
 *   S(a) -> *   EXCHANGE otherwise (S(i) -> S(j), uneven S -> B, S -> P): grouped point-to-point
 *               transfers, each the overlap of the sender's part with the receiver's, plus the
 *               overlap with its own part copied locally
 * A collective's count is elements of the own part (REDUCE_SCATTER: of the output part). */
#ifndef LOOM_RUNTIME_COMM_ROUTE_H
#define LOOM_RUNTIME_COMM_ROUTE_H

#include "runtime/comm/parts.h"

typedef enum loom__route_kind {
    LOOM__ROUTE_NONE,           /* nothing to move: an empty tensor */
    LOOM__ROUTE_LOCAL,          /* copy (box) and zeroing on the device only */
    LOOM__ROUTE_ALL_REDUCE,
    LOOM__ROUTE_REDUCE_SCATTER,
    LOOM__ROUTE_REDUCE_SLICE,   /* all-reduce into scratch of the whole shape, then copy (box) */
    LOOM__ROUTE_ALL_GATHER,
    LOOM__ROUTE_EXCHANGE,
    LOOM__ROUTE_KIND_COUNT
} loom__route_kind;

/* A box of a part: where it starts in the part and its extent; `peer` the device it goes to or
 * comes from. */
typedef struct loom__route_box {
    int peer;
    int64_t at[LOOM_MAX_DIMS], ext[LOOM_MAX_DIMS];
} loom__route_box;

typedef struct loom__own_route {
    loom__route_kind kind;
    int nd;
    int64_t in_shape[LOOM_MAX_DIMS], out_shape[LOOM_MAX_DIMS]; /* the own part under from and to */
    int zero;           /* 1: the output is zeroed first (a P part off device 0) */
    int copy;           /* 1: copy box `local` of the input (REDUCE_SLICE: of the whole value in
                           scratch) into the output at `local_to` */
    loom__route_box local;
    int64_t local_to[LOOM_MAX_DIMS];
    int nsend, nrecv;   /* EXCHANGE: in peer order */
    loom__route_box send[LOOM__MAX_DEVICES]; /* boxes of the input */
    loom__route_box recv[LOOM__MAX_DEVICES]; /* boxes of the output */
} loom__own_route;

/* The route of device d of n for a tensor of logical shape `shape` (nd dims) from SBP `from` to
 * `to`. Parts lie where loom_split_part puts them. */
void loom__own_route_make(const int64_t *shape, int nd, loom_sbp from, loom_sbp to, int n, int d, loom__own_route *r);
/* Device q's region of the logical shape under s on n devices (start and size per dim): a split's
 * range, or everything; holds 0 gives an empty region (a part under P, as an output off device 0,
 * holds nothing of the value). */
void loom__route_region(const int64_t *shape, int nd, loom_sbp s, int n, int q, int holds, int64_t *start, int64_t *size);
/* Elements of a box. */
int64_t loom__route_count(const int64_t *ext, int nd);
/* 1 when the box (at, ext) of a row-major tensor of `shape` is one contiguous range, its first
 * element's offset into *off. */
int loom__route_contiguous(const int64_t *shape, const int64_t *at, const int64_t *ext, int nd, int64_t *off);
extern const char *const loom__route_name[LOOM__ROUTE_KIND_COUNT];

#endif
