/* The physical plan (internal): one task per (op, device) with its registers, the boxing tasks
 * that turn one SBP of a tensor into another, copies between host and GPU, and the static memory
 * plan of each device. Built from a compiled program for one run mode, it stands alone: it holds
 * its own table of the ops it runs (kinds, attributes, dtypes, shapes over the dynamic dims, the
 * user's names), every tensor's SBP and signature, and the sizes it was planned for, so that the
 * actors are built from it and never from the program, and it can be written out as JSON and read
 * back (graphs/plan/plan_json_write.c, plan_json_read.c).
 *
 * Devices are those of the graph's placements (one device when it has none), each once; a tensor's
 * parts are on its own placement's devices, in the placement's order. The host runs the source
 * (the inputs of a piece) and the sinks (values kept for the caller).
 *
 * The compute and boxing tasks of one device run as a chain in topological order, one piece after
 * another (the device's stream): a control edge from the last back to the first admits one piece
 * at a time. That order makes lifetimes known, so registers produced and consumed only inside one
 * chain share that device's memory by lifetime. With micro-batches and a backward pass a device
 * has two chains, the forward and the backward one, which interleave on its thread (a pipeline
 * stage works on the forward of one micro-batch and the backward of another): each has a block of
 * its own, and what the backward chain reads of the forward chain's has as many buffers as the
 * schedule keeps micro-batches in flight (loom__plan_stash). Everything else (the source's registers,
 * parameters, what other devices, copies and sinks read) has memory of its own, and the source may
 * run ahead of the chains by regst_num pieces: data loading overlaps compute.
 *
 * Boxing (docs/placement.md): where a consumer's signature wants a source in another SBP than
 * the source has, each device gets a boxing task, placed in its chain before the first such
 * consumer and shared by every consumer wanting the same SBP. On CPU devices (one shared memory)
 * the boxing task of device d reads every device's part of the source and writes d's part under
 * the wanted SBP; on GPUs it reads its own part and a collective moves the rest. */
#ifndef LOOM_GRAPHS_PLAN_H
#define LOOM_GRAPHS_PLAN_H

#include <stddef.h>
#include <stdio.h>

#include <loom/program.h>

#include "graphs/plan/numerics.h"
#include "runtime/comm/parts.h"
#include "sbp/infer/infer.h"

#define LOOM__MAX_DYN 16
#define LOOM__HOST (-1) /* the device of host tasks and the memory domain of host registers */
#define LOOM__PLAN_OVER SIZE_MAX /* a plan size over an int64 byte count (see plan_memory.c) */
#define LOOM__COPY_TRAILER 64 /* a copy back from a GPU brings the device's error record after the value */

typedef enum loom__task_kind {
    LOOM__TASK_SOURCE,   /* host: emits every input of a piece, one register per (input, device) */
    LOOM__TASK_VARIABLE, /* holds a parameter's part on a device: emits version t, then updates it with gradient t */
    LOOM__TASK_COMPUTE,  /* runs one op on one device */
    LOOM__TASK_BOXING,   /* makes one device's part of a tensor under another SBP */
    LOOM__TASK_MOVE,     /* makes one device's part of a moved tensor from its source's parts on another placement */
    LOOM__TASK_COPY,     /* GPU: an input's part from the host to a device, or a kept part back */
    LOOM__TASK_SINK,     /* host: assembles a kept value from its parts at each piece */
    LOOM__TASK_ACC,      /* sums a gradient's part over the micro-batches of a step, for its variable */
    LOOM__TASK_KIND_COUNT
} loom__task_kind;

typedef enum loom__mem_kind {
    LOOM__MEM_SHARED, /* the device's lifetime-shared block */
    LOOM__MEM_OWN,    /* memory of its own, regst_num buffers, in its domain */
    LOOM__MEM_PARAM,  /* the device's persistent parameters and optimizer state */
    LOOM__MEM_NONE,   /* points at the program's storage or at the fed data: no plan memory */
} loom__mem_kind;

enum { LOOM__H2D, LOOM__D2H };
enum { LOOM__CHAIN_FWD, LOOM__CHAIN_BWD, LOOM__NCHAINS };

/* A register: regst_num buffers of `bytes` each, written by one task. */
typedef struct loom__regst {
    int producer;     /* task */
    int tensor;       /* the tensor id whose value (or part) it holds */
    int dom;          /* memory domain: a device, or LOOM__HOST */
    int part;         /* which part it holds: a position in its tensor's placement */
    int nparts;       /* of its tensor's placement */
    loom_sbp sbp;     /* the part is part `part`'s share of the tensor under sbp (B with one device) */
    loom_sbp sbp1;    /* on a 2-D mesh (mesh[0] > 0): level 1's SBP, sbp being level 0's */
    int mesh[2];      /* its placement's mesh, {0, 0} when 1-D */
    size_t bytes;     /* one buffer, at the bounds of dynamic dims */
    int regst_num;
    loom__mem_kind mem;
    size_t offset;    /* of buffer 0 in its domain's block (shared, own or param area) */
    int first, last;  /* chain positions from its write to its last read (shared registers) */
    int nconsumers;
    int elsewhere;    /* in a plan of one rank: tasks of other ranks, which it leaves out, read it too */
} loom__regst;

typedef struct loom__task {
    loom__task_kind kind;
    int tensor;       /* in the plan's op table: compute: the op; variable: the parameter; boxing,
                         move, copy, sink: the tensor moved; the source: -1 */
    int update;       /* variable: the optimizer update op, or -1 */
    int device;       /* position in the placement, or LOOM__HOST */
    int chain_pos;    /* compute and boxing: position in its device's chain; -1 otherwise */
    int chain;        /* with micro-batches and a backward pass, which of its device's two chains:
                         LOOM__CHAIN_FWD (the model) or LOOM__CHAIN_BWD (gradients, updates); else 0 */
    int dir;          /* copy: LOOM__H2D or LOOM__D2H */
    int n_in;
    int *in;          /* registers read: a compute task's in the op's source order; a boxing task's
                         and a sink's by device (a GPU boxing task: its own part only) */
    int n_out;
    int *out;         /* registers written (one; the source: inputs x devices, input-major) */
} loom__task;

/* Memory of one device's plan, in bytes. */
typedef struct loom__dev_mem {
    size_t shared;   /* the lifetime-shared block */
    size_t unshared; /* what its registers would take without reuse */
    size_t own;      /* registers with memory of their own */
    size_t params;   /* parameters' and optimizer state's parts */
    size_t inputs;   /* fed data held on the device (GPU, without a data source) */
    size_t scratch;  /* GPU: kernels' and libraries' workspace, known once the plan is set up */
} loom__dev_mem;

typedef struct loom__plan {
    loom_run_mode mode;
    /* The plan's own op table: the program's tensors [0, g->n) copied (sources point inside it),
     * with the graph's dynamic dims and seed; tensor ids are the program's. */
    loom_graph *g;
    loom__passes passes;  /* where each tensor of g belongs (numerics messages) */
    int loss;             /* the loss's id, or -1 */
    int nlogical;         /* devices of the graph's first placement (1: no SBP) */
    loom_sbp *sbp;        /* by id, with nlogical > 1: the tensor's SBP; else NULL */
    loom__sbp_sig *sig;   /* by id, likewise: the op's signature */
    /* with a tensor on a 2-D mesh (else NULL), by id: level 1's SBP and signature (sbp and sig
     * holding level 0's), the mesh ({0, 0}: 1-D), and the signature its kernels see
     * (loom__nd_kernel_sig) */
    loom_sbp *sbp1;
    loom__sbp_sig *sig1, *ksig;
    int (*mesh)[2];
    int64_t *csr_rows, *csr_nnz; /* by id: a sparse input's size the plan was made for, else -1 */
    int source_regst_num; /* of the source's registers */
    /* Micro-batches (docs/placement.md): each step's batch cut into `micro` pieces along axis 0
     * of the inputs, which flow through the plan one after another (piece = step * micro + i).
     * The op table then computes one micro-batch: its batch axis is dynamic dim mb_dim (bound: a
     * micro-batch's rows), the seed of the backward pass is 1 / micro, and each step's gradients
     * are summed over its micro-batches (ACC tasks) before the one update. 1: no micro-batches. */
    int micro;
    loom_schedule schedule;
    int mb_dim;           /* the op table's dynamic dim of the batch, or -1 */
    int64_t mb_rows;      /* the whole batch's rows: its static size, or its dynamic dim's bound */
    int mb_static;        /* 1: the batch is static (fed data has exactly mb_rows rows) */
    int nchains;          /* chains per device: 2 with micro-batches and a backward pass, else 1 */
    int nstages;          /* pipeline stages (placements in the order their devices first appear) */
    int *stage;           /* by device: its stage, 0 .. nstages - 1 */
    int ndev;             /* devices: every placement's of the graph, once each (of its rank, in a plan of one rank) */
    int ndev_all;         /* devices of every rank: ndev, but in a plan of one rank */
    loom_device_kind kind; /* of every device */
    int *dev_index;       /* by device: its CUDA (or CPU) device index */
    int *dev_rank;        /* by device: the rank (process) it is on; 0 in a plan of one process */
    int nranks;           /* 1 + the largest rank of a device (1: one process) */
    int nplaces;          /* the graph's placements (one, the default, when it has none) */
    int *place_n;         /* by place: its devices */
    int **place_dev;      /* by place: the plan device at each of its positions (-1: another rank's,
                             in a plan of one rank) */
    int *place_per_rank;  /* by place: its devices on each of its ranks (place_n without ranks) */
    /* The rank whose tasks the plan holds, or -1: every rank's. A plan of one rank
     * (loom_train_opts.plan_only) has its devices alone, and of each placement the parts they
     * hold, positions place_lo .. place_hi - 1 (rank-major, so consecutive): its source, sinks
     * and boxing tasks read those parts only. Such a plan is read, never run. */
    int rank;
    int *place_lo, *place_hi; /* by place */
    int ntasks, nregst, cap_tasks, cap_regst;
    loom__task *task;
    loom__regst *regst;
    int *kept;            /* by tensor id: 1 when a sink copies it to the host */
    int *nchain;          /* by device: tasks in its chain */
    size_t *param_off;    /* by tensor id * ndev + device: a parameter's or state's offset in the
                             device's param area, (size_t)-1 when it lives in the program (one CPU device) */
    loom__dev_mem *mem;   /* by device */
    size_t host_bytes;    /* host registers of the plan (a data source's, copies back from GPUs) */
    size_t shared_bytes, own_bytes, unshared_bytes; /* sums over devices */
} loom__plan;

/* Builds the plan of p for mode: tasks [0, end) of the program's graph on every device, sources for
 * its inputs, variables for its parameters, sinks for the kept tensors (keep, by id; plus the loss
 * and every value nobody reads). Register sizes use dynamic dims' bounds; CSR inputs take the size
 * of the data fed now. Without a data source (loom_program_set_source) the source's registers
 * point at the fed data and take no memory of the plan (with micro-batches, they hold one each).
 * NULL with the program's error set and *status LOOM_ERR_SHAPE when the plan's memory is over an
 * int64 byte count (the builder keeps each tensor within one, not their sum), LOOM_ERR_INVALID when
 * micro-batches cannot cut the graph (plan_micro.c), else LOOM_ERR_RUNTIME. */
/* What a plan is made from: the compiled program's logical side, handed over by the session. */
typedef struct loom__plan_src {
    const loom_graph *g;
    int n, fwd_end, bwd_end;     /* the program's tensors and passes (see loom__passes) */
    loom_tensor *const *grad;    /* by id < fwd_end: d loss / d tensor, or NULL */
    const int *grad_of;          /* by id: the forward tensor whose gradient it is, or -1 */
    const uint8_t *dead;         /* by id: a gradient nothing needs */
    const loom_tensor *loss;     /* or NULL */
    int ndevices;                /* of the graph's first placement */
    int rank;                    /* the rank whose tasks to plan (a plan of one rank), or -1: all */
    const loom__sbp_plan *sbp;   /* with ndevices > 1 */
    const loom__cost_model *cost; /* how a CPU all-reduce runs (loom__all_reduce_two_phase); NULL: in one phase */
    const loom__value *val;      /* by id: sparse inputs' matrices fed (their sizes) */
    const uint8_t *ready;        /* by id: val holds one */
    int source;                  /* 1: a data source feeds the inputs */
    int micro;                   /* micro-batches per step (1: none) */
    loom_schedule schedule;      /* their schedule through a pipeline */
    char *err;                   /* a failure's message (err_size bytes) */
    size_t err_size;
} loom__plan_src;

loom__plan *loom__plan_build(const loom__plan_src *p, loom_run_mode mode, const uint8_t *keep, int source_regst_num,
                             loom_status *status);
void loom__plan_free(loom__plan *pl);
/* The tensor of task k in the plan's op table (its update op), or NULL. */
static inline const loom_tensor *loom__task_tensor(const loom__plan *pl, const loom__task *k)
{
    return k->tensor >= 0 ? pl->g->t[k->tensor] : NULL;
}
static inline const loom_tensor *loom__task_update(const loom__plan *pl, const loom__task *k)
{
    return k->update >= 0 ? pl->g->t[k->update] : NULL;
}
/* The plan as JSON: every field above, the op table with shapes written over the dynamic dims'
 * names (graphs/plan/plan_json_write.c). LOOM_ERR_IO when f cannot be written. */
loom_status loom__plan_write_json(const loom__plan *pl, FILE *f);
/* A plan read back from JSON text of len bytes; NULL with msg saying what is wrong and at which
 * byte offset (where names the text: a file's name; graphs/plan/plan_json_read.c). */
loom__plan *loom__plan_read_json(const char *text, size_t len, const char *where, char *msg, size_t msglen);
/* a + b for plan sizes: LOOM__PLAN_OVER when either is, or the sum is over an int64. */
size_t loom__bytes_add(size_t a, size_t b);
/* Bytes of a CSR value laid out in one register buffer: rowptr, col, values, each 64-aligned
 * (LOOM__PLAN_OVER when over an int64). */
size_t loom__csr_bytes(int64_t nrows, int64_t nnz, loom_dtype vdtype);
/* Bytes of device d's part of dense tensor t under s on n devices, at the bounds of its dims
 * (LOOM__PLAN_OVER when over an int64). */
size_t loom__part_bytes(const loom_graph *g, const loom_tensor *t, loom_sbp s, int n, int d);
/* Device `device`'s memory in the plan (LOOM_ALL_DEVICES: every device's summed, with the host's
 * registers in total), as loom_program_memory reports it. */
void loom__plan_memory_of(const loom__plan *pl, int device, loom_memory *out);
/* Buffers of a register of device d's forward chain that its backward chain reads (micro-batches):
 * how many micro-batches' activations its stage keeps at once, which is what the schedule chooses
 * (GPipe: all of a step's; 1F1B: S - k on stage k of S, at most all). */
int loom__plan_stash(const loom__plan *pl, int d);
/* 0 when every device meets the plan's collectives in one order: each device's chain reaches the
 * boxings (one collective per tensor and SBP, its tasks made together) in the order they were
 * made, so devices whose collectives each run on one stream (NCCL's) never wait on each other in a
 * cycle. Else -1 with msg naming the device and the tasks out of order, or a device with boxing in
 * both of its chains (micro-batches), whose order changes from run to run (graphs/plan/plan_collectives.c). */
int loom__plan_check_collectives(const loom__plan *pl, char *msg, size_t len);
/* The traffic of rank `rank`'s devices in the plan (loom_program_traffic), a boxing on a mesh taking
 * the route that cost chooses: 0, or -1 when the plan holds no device of the rank. */
int loom__plan_traffic(const loom__plan *pl, int rank, const loom__cost_model *cost, const loom_link_model *m, loom_traffic *out);
/* One line per task and register, and the memory of each device (for `loom plan` and the docs). */
void loom__plan_print(const loom__plan *pl, FILE *f);
/* The SBP of tensor id in the plan: its own on several devices, B on one. */
static inline loom_sbp loom__plan_sbp(const loom__plan *pl, int id) { return pl->sbp ? pl->sbp[id] : loom_broadcast(); }
/* How tensor id lies on its n devices: its SBP of one level, or two on a mesh. */
static inline loom__lay loom__plan_lay(const loom__plan *pl, int id, int n)
{
    if (pl->mesh && pl->mesh[id][0] > 0)
        return (loom__lay){.s = loom_nd_sbp_2d(pl->sbp[id], pl->sbp1[id]), .mesh = {pl->mesh[id][0], pl->mesh[id][1]}, .n = n};
    return (loom__lay){.s = loom_nd_sbp_1d(loom__plan_sbp(pl, id)), .mesh = {n, 1}, .n = n};
}
/* How a register's part lies. */
static inline loom__lay loom__regst_lay(const loom__regst *rg)
{
    if (rg->mesh[0] > 0)
        return (loom__lay){.s = loom_nd_sbp_2d(rg->sbp, rg->sbp1), .mesh = {rg->mesh[0], rg->mesh[1]}, .n = rg->nparts};
    return (loom__lay){.s = loom_nd_sbp_1d(rg->sbp), .mesh = {rg->nparts, 1}, .n = rg->nparts};
}
/* Bytes of device d's part of dense tensor t laid out as l, at the bounds of its dims
 * (loom__part_bytes when 1-D). */
size_t loom__lay_bytes(const loom_graph *g, const loom_tensor *t, const loom__lay *l, int d);
/* The rows device d's part holds of dynamic dim k, which l splits on every level (of n > 1
 * devices): its part bound (loom__dyn_part_bound, what a graph batch's part fed by parts may
 * hold); on a mesh, the nested even share of its bound when larger (a batch fed whole). */
int64_t loom__lay_part_rows(const loom_graph *g, int k, const loom__lay *l, int d);

#endif
