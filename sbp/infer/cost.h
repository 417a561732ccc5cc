/* The cost model (internal): what an op and a boxing cost on a kind of device, in seconds, and the
 * step time a plan predicts from them. SBP inference chooses signatures by it; `loom plan` prints
 * its table; `loom calibrate` fits its figures to steps measured on the machine
 * (graphs/session/calibrate.c).
 *
 * Every cost is a sum of terms, each a count of something times the seconds one of it takes on the
 * device kind (loom__cost_unit): ops (an act: its messages, a launch), library calls (what an op
 * whose kernel calls a math library, LOOM__OPF_LIBRARY: cuBLAS, cuDNN, a CBLAS, pays on top of an
 * op whatever its size), floating-point operations, bytes an op reads and writes, boxings, bytes a
 * boxing moves, and steps (what a step costs besides its ops: the data source, the sinks). Being
 * linear in the seconds of one of each is what lets a calibration fit them by least squares.
 *
 * An op counts one op (and a library op one library call) and the larger of its floating-point operations and its bytes at the
 * device's rates (a roofline), times the share of the work a device does: all of it when no
 * source and not the output is split (a replicated or partial result is computed whole on every
 * device), 1/n otherwise. Devices that share a machine (CPU devices: threads of one process on its
 * C cores, `cores`, whose rates the figures are, with T kernel threads, `threads`) divide its rates
 * among the n devices of the placement, which run at once: an op whose kernel splits its work
 * over the threads (LOOM__OPF_THREADED) gets its share of min(C, max(T, n)) cores (with T = C, a
 * split op then costs its whole work at the machine's rate, a replicated one n times that); any
 * other op runs on one thread, one core or C/n of one. A split op that gets c > 1 cores runs at
 * 1 + thread_gain (c - 1) of them: the pool's threads wake for each op and the op waits for its
 * slowest part, so on a machine whose other cores are busy (other processes) it gains less than
 * c, or nothing; devices, each on its own thread, do not wait so. Several devices running at once
 * share core_share C of the cores (at least one), as processes beside them take the rest. The acts of n devices on C cores queue
 * when n > C: an op counts n/C ops then. (n is the devices that run at once: the op's
 * placement's, or a pipeline's all, `running`.)
 *
 * A pipeline's step (micro-batches through stages, loom__sbp_plan_predict): with S stages and m
 * micro-batches, each op of the forward and backward passes acts once per micro-batch, priced on a
 * micro-batch's shapes (the plan's op table, whose batch is a micro-batch's rows: an op on
 * parameters alone, or a gradient's all-reduce, costs its whole each time), and the step is
 * about (m + S - 1) times the slowest stage's micro-batch, plus the updates once: precisely, the
 * fill (one micro-batch through every stage and back: the sum of the stages' micro-batch seconds,
 * each stage its busiest device's) and m - 1 micro-batches more at the period (the slowest
 * stage's micro-batch with every device of the pipeline running at once, which on devices sharing
 * a machine divides its rates among all of them), then the busiest device's updates and a step's
 * own seconds. Each micro-batch also sums each parameter's gradient into the step's on the devices
 * holding it (loom__acc_terms: an op reading and writing its bytes three times, on one thread).
 *
 * A boxing costs in one of two ways:
 *   - devices sharing one memory: each device's boxing task reads the parts where they lie and
 *     writes its own, once (one boxing; bytes: what the n tasks read and write together, at the
 *     machine's rate: P -> B reads every part whole on every device, or runs in two phases, see
 *     loom__all_reduce_two_phase);
 *   - devices on links (GPUs): ring collectives, one boxing a ring step (2(n-1) steps for an
 *     all-reduce, n-1 otherwise) and the bytes each device sends.
 *
 * Across ranks (the level 0 of a placement with ranks: a rank is a node, docs/placement.md) the
 * devices of any kind are on the network between the nodes: a step there is a collective over the
 * N nodes, one device of each, the G devices of a node in G such at once on the node's links: a
 * ring, or an all-reduce as a double binary tree when that is cheaper (loom__net_coll_of); it
 * counts net boxings (a step between two nodes each, at net_latency) and the bytes the node sends
 * (G times a device's, at net_bw). Within a rank (level 1) a step is priced as above by the device
 * kind's figures, on one node's machine. */
#ifndef LOOM_SBP_COST_H
#define LOOM_SBP_COST_H

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

/* One kind of device: the rates and latencies the terms are counted at. */
typedef struct loom__cost_dev {
    double flops;        /* floating-point operations per second (f32 matrix products); shared: the machine's */
    double mem_bw;       /* bytes per second ops read and write; shared: the machine's */
    double op_latency;   /* seconds an op takes whatever its size */
    double lib_latency;  /* seconds a library op (LOOM__OPF_LIBRARY) takes besides an op's */
    double box_latency;  /* seconds a boxing takes whatever its bytes (on links: per ring step) */
    double box_bw;       /* bytes per second a boxing moves; shared: the machine's */
    double step_latency; /* seconds a step takes besides its ops */
    double net_latency;  /* seconds of a step between nodes (ranks), of a ring or a tree */
    double net_bw;       /* bytes per second a node sends to the other nodes, all its links */
    double thread_gain;  /* shared: the share of a core each kernel thread past the first adds to an op
                          * split over the threads (1: they run at once on idle cores; 0: a split op
                          * runs no faster than on one thread, its other cores busy) */
    double core_share;   /* shared: the share of the machine's cores that several devices running at
                          * once get (1: every core; less where other processes hold some) */
    int shared;          /* 1: the devices share one machine (see above); 0: each its own, on links */
    int threads;         /* shared: the kernel threads the devices share (a program's, set when it
                          * compiles; 0: as many as cores); not read from or written to a calibration */
    int cores;           /* shared: the machine's cores (set when a program compiles; 0 counts as 1) */
    int running;         /* shared: the devices that run at once when more than an op's placement
                          * has (a pipeline's stages, all busy; 0: the placement's); not in a calibration */
} loom__cost_dev;

typedef enum loom__cost_term {
    LOOM__TERM_OPS,
    LOOM__TERM_LIBS,
    LOOM__TERM_FLOPS,
    LOOM__TERM_BYTES,
    LOOM__TERM_BOXES,
    LOOM__TERM_BOX_BYTES,
    LOOM__TERM_STEPS,
    LOOM__TERM_NET_BOXES, /* ring steps between nodes */
    LOOM__TERM_NET_BYTES, /* bytes a node sends to the other nodes */
    LOOM__COST_TERMS
} loom__cost_term;

/* Devices of one kind a process may hold (the actor id's 7 bits of device index). */
#define LOOM__COST_DEVICES (LOOM_MAX_DEVICE_INDEX + 1)

typedef struct loom__cost_model {
    loom__cost_dev dev[LOOM_DEVICE_KIND_COUNT];
    char source[160]; /* where the figures come from: "built-in" or the calibration file */
} loom__cost_model;

/* The built-in figures: a CPU device as a core of a small server, a GPU as an H100/H200 with
 * NVLink, nodes on 8 x 400 Gb/s of network (400 GB/s a node, 10 us a ring step, as
 * LOOM_LINK_MODEL_INIT). They order signatures sensibly; a calibration makes the predicted times
 * the machine's. */
void loom__cost_default(loom__cost_model *cm);

/* Reads a calibration (the JSON loom_calibrate writes; cost_file.c) of len bytes of text, read
 * from path, into *cm: 0, or -1 with msg naming path, the byte offset and what was expected (cm
 * unchanged). Device kinds the file leaves out keep the built-in figures, and so does lib_latency
 * in a file written before it was a figure. */
int loom__cost_parse(const char *text, size_t len, const char *path, loom__cost_model *cm, char *msg, size_t msglen);

/* The collective that turns `from` into `to`. */
loom__box_kind loom__boxing(loom_sbp from, loom_sbp to);
const char *loom__box_name(loom__box_kind k);
/* Bytes each device moves for a tensor of `bytes` logical bytes on n devices: on links, what it
 * sends (ring all-gather and reduce-scatter (n-1)/n, all-reduce 2(n-1)/n, all-to-all (n-1)/n^2
 * per pair, local ones 0); in shared memory, what its task reads and writes. */
double loom__box_bytes(loom__box_kind k, double bytes, int n, const loom__cost_dev *d);
/* 1 when a P -> B boxing of `bytes` on n devices sharing a machine costs less in two phases, each
 * device reducing its range of every part (P -> S) and then gathering the others' ranges
 * (S -> B), than in one, each device summing every part whole (from 3 devices, past some bytes).
 * The plan boxes it so when the tensor has an axis to split. */
int loom__all_reduce_two_phase(double bytes, int n, const loom__cost_dev *d);
/* 1 when a P -> B boxing of `bytes` on n CPU devices over ranks, per_rank of them on each rank,
 * costs less as a ring's reduce-scatter and all-gather, each device summing its 1/n range of every
 * part (of which only that range crosses ranks) and then gathering the others' ranges, than in
 * one phase, each device reading every part whole (a rank receives n - per_rank parts and each
 * device sums n). On 2 devices the same bytes cross either way, and the ring sums half as much but
 * gathers after. Assumes that what a rank receives from others costs as much a byte as what its
 * devices read and write (box_bw, shared by the rank's devices), that the gather reads its ranges
 * in cache (just written: by the sum, or by the transport), and that each of the ring's two
 * boxings, one after the other, costs a boxing latency (box_latency) as one phase's one does. The plan boxes it so
 * (graphs/plan/plan.c, two_phase_axis) when the tensor has a static axis whose ranges are
 * contiguous. */
int loom__all_reduce_ring(double bytes, int n, int per_rank, const loom__cost_dev *d);
/* Adds the terms of that boxing to terms. */
void loom__box_terms(loom__box_kind k, double bytes, int n, const loom__cost_dev *d, double *terms);
/* Seconds under the model. */
double loom__box_seconds(loom__box_kind k, double bytes, int n, const loom__cost_dev *d);

/* A ring collective of kind k on n devices holding a share of `bytes` each: the bytes a device
 * sends (as loom__box_bytes on links) and its ring steps (2 (n-1) for an all-reduce, n-1 for the
 * others, 0 for a local one). */
double loom__ring_bytes(loom__box_kind k, double bytes, int n);
int loom__ring_steps(loom__box_kind k, int n);
/* 1 for a boxing each device does on its own (a slice, zeroing): nothing moves between them. */
int loom__box_local(loom__box_kind k);

/* A collective between N nodes, one device of each holding its share `bytes` of the tensor,
 * per_node such collectives at once on each node's links (node_bw bytes per second in all),
 * `latency` seconds a step between two nodes: a ring (as above), or, for an all-reduce, a double
 * binary tree when that costs less, as NCCL's tuner chooses: 2 floor(log2 N) steps (up each tree
 * and down again) and 2 `bytes` sent from a device (each tree carries half of it; a node is inner
 * in one, sending both halves' up and down, a leaf in the other), where a ring sends
 * 2 (N-1)/N `bytes` over 2 (N-1) steps. The cost model and the traffic of a rank both take the
 * algorithm from here. */
typedef struct loom__net_coll {
    int tree;       /* 1: a double binary tree; 0: a ring */
    int steps;      /* latency steps between the nodes */
    double bytes;   /* a device sends to other nodes (and receives as much) */
    double seconds; /* steps latency + per_node bytes / node_bw */
} loom__net_coll;
loom__net_coll loom__net_coll_of(loom__box_kind k, double bytes, int N, int per_node, double latency, double node_bw);

/* 1 when t's placement lies over several ranks: its level 0 is then across the network. */
int loom__tensor_ranks(const loom_tensor *t);
/* Adds to terms the collective of `kind` between N nodes (loom__net_coll_of on d's net_latency
 * and net_bw): its steps (net boxings) and the bytes a node sends (per_node devices'); returns
 * it. */
loom__net_coll loom__net_terms(loom__box_kind k, double bytes, int N, int per_node, const loom__cost_dev *d, double *terms);
/* The share of a tensor of `bytes` that a flat step of kind k over N nodes boxes within each node
 * (it runs hierarchically, see loom__box_routes): an all-to-all's bytes / N^2, a local one's
 * bytes / N, the others' the whole. */
double loom__flat_node_share(loom__box_kind k, double bytes, int N);

/* A boxing on a 2-D mesh (cost_route.c): 1-D boxings along the levels, or one over the whole
 * mesh (flat). */
typedef struct loom__box_step {
    int level;          /* 0 (within each column), 1 (within each row), -1 (flat: every device) */
    loom_sbp from, to;  /* on that level (flat: on both) */
    loom__box_kind kind;
    int n;              /* devices of a group */
    int tree;           /* 1: its all-reduce between the nodes runs as a tree (loom__net_coll_of) */
    double bytes;       /* each device moves (loom__box_bytes of its group's share) */
    double share;       /* the logical bytes of its group's share of the tensor */
} loom__box_step;
typedef struct loom__box_route {
    int nsteps, flat;
    loom__box_step step[3];
    double terms[LOOM__COST_TERMS]; /* of every step, every group's tasks counted */
    double bytes;                   /* each device moves, over the steps */
    double seconds;
} loom__box_route;
/* Every route that makes the boxing, into c (at most LOOM__BOX_ROUTES), with its terms, bytes
 * and seconds: flat (when both are one value on both levels), level 1 then 0, level 0 then 1 (when
 * valid), through B on level 1 (always), and on devices with links or over ranks through S(axis)
 * on level 1 (axis >= 0, when valid; loom__route_axis). ranks: 1 when the mesh's rows are ranks
 * (loom__tensor_ranks), level 0 then on the network (see above) and a flat step hierarchical:
 * within each node on the device kind's figures, between the nodes on the network's, each device
 * carrying 1/mesh[1] of its node's share. Returns their number. */
#define LOOM__BOX_ROUTES 5
int loom__box_routes(const loom_nd_sbp *from, const loom_nd_sbp *to, const int mesh[2], double bytes, int axis, int ranks,
                     const loom__cost_dev *d, loom__box_route c[LOOM__BOX_ROUTES]);
/* The cheapest route from `from` to `to` (two levels each) for a tensor of `bytes` logical bytes on
 * a mesh of mesh[0] x mesh[1] devices of kind d, into *best; returns its seconds (0 and no steps
 * when they are equal). axis and ranks as loom__box_routes takes them. */
double loom__box_route_plan(const loom_nd_sbp *from, const loom_nd_sbp *to, const int mesh[2], double bytes, int axis, int ranks,
                            const loom__cost_dev *d, loom__box_route *best);
/* The first axis of dense tensor t that n devices can split (its bound at least n), or -1. */
int loom__route_axis(const loom_tensor *t, int n);
/* "all-gather S(0) -> B on level 1 (groups of 2), then ..." (snprintf-style). */
size_t loom__box_route_str(const loom__box_route *r, char *buf, size_t len);

/* A calibration's case: a step's terms and its measured seconds. */
typedef struct loom__cost_case {
    double terms[LOOM__COST_TERMS];
    double measured;
} loom__cost_case;
/* Fits the seconds of one of each term of d to the nr cases (cost_fit.c): least squares weighted
 * by each case's relative error, over the terms some case has (the others keep d's figures). A
 * latency (op, library, boxing, step) whose fit is below 0 is held at 0 and the others fitted
 * again, one at a time, the most negative first, so that a step whose own seconds are too few to
 * see does not take the op latency with it; a rate whose fit is not positive keeps d's figure.
 * Sets fitted[j] for every term fitted (at 0 included). */
void loom__cost_fit(const loom__cost_case *r, int nr, loom__cost_dev *d, int fitted[LOOM__COST_TERMS]);

/* The seconds one of each term takes on d. */
void loom__cost_unit(const loom__cost_dev *d, double unit[LOOM__COST_TERMS]);
/* The seconds of a sum of terms on d. */
double loom__terms_seconds(const double *terms, const loom__cost_dev *d);

/* The logical bytes of t at its bounds (a CSR structure: a row pointer and two entries per row). */
double loom__tensor_bytes(const loom_tensor *t);
/* The device kind of t's placement. */
loom_device_kind loom__tensor_kind(const loom_tensor *t);
/* Adds the terms of op t on one of its n devices under sig (NULL: the whole work; leaves none)
 * to terms, and returns its seconds. */
double loom__op_terms(const loom_tensor *t, const loom__sbp_sig *sig, int n, const loom__cost_model *cm, double *terms);
/* The same for an op on a 2-D mesh under sig[0] on level 0 and sig[1] on level 1: a device's
 * share is 1/mesh[l] for each level whose signature splits a source or the output. */
double loom__op_terms_nd(const loom_tensor *t, const loom__sbp_sig *const sig[2], const int mesh[2], const loom__cost_model *cm,
                         double *terms);
/* Adds the terms of summing one micro-batch's gradient of a parameter into the step's (the
 * accumulating task beside its variable: reads two, writes one) on one of its n devices, holding
 * `bytes` of it, to terms. */
void loom__acc_terms(double bytes, int n, const loom__cost_dev *d, double *terms);
/* Its seconds alone. */
double loom__op_seconds(const loom_tensor *t, const loom__sbp_sig *sig, int n, const loom__cost_model *cm);

#endif
