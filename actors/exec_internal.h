/* The executor's state (internal to actors/): what exec.c, build.c, source.c, run.c and the GPU part
 * (actors/devices/) share. */
#ifndef LOOM_ACTORS_EXEC_INTERNAL_H
#define LOOM_ACTORS_EXEC_INTERNAL_H

#include "actors/exec.h"
#include "runtime/comm/comm.h"
#include "runtime/comm/parts.h"
#include "ops/cuda/cuda.h"
#include "runtime/runtime.h"

enum { STREAM_DEVICE = 0, STREAM_SOURCE = 1, STREAM_HOST = 2 }; /* of CPU actor ids */

/* What travels in a register buffer: the value's real sizes and where its data lives. */
typedef struct token {
    loom__value v;
    char *base;   /* the buffer (a source fed from the program points v elsewhere) */
    size_t bytes; /* its size: the register's at the bounds */
    int regst;    /* the plan's register it is a buffer of */
    int has_dims; /* the piece's dynamic dims (logical sizes), from the source */
    int64_t dims[LOOM__MAX_DYN];
    /* A graph batch fed by parts (loom_feeder_parts) splits its dynamic dims unevenly: each dim's
     * part on this token's device, its first index and size (-1 for a dim fed whole). Else
     * (split_parts 0, or psize -1) a split dim's parts are its layout's even split
     * (loom_split_part; nested on a mesh). */
    int split_parts;
    int64_t pfirst[LOOM__MAX_DYN], psize[LOOM__MAX_DYN];
    loom__cuda_err *err; /* a copy back from a GPU: the device's error record, after the value in
                            the pinned buffer (LOOM__COPY_TRAILER) */
    /* GPU buffers read on another stream than the one that writes them: recorded after the
     * writer's work (ev_w) and after the readers' (ev_r), waited for by the other side */
    void *ev_w, *ev_r;
} token;

typedef struct actor_ctx {
    struct loom__exec *x;
    int task;
} actor_ctx;

struct loom_feeder {
    struct loom__exec *x;
    void *const *out; /* the source's output tokens, inputs x devices */
    int64_t step;
    char *msg; /* the source's message buffer: a refused feed says why there */
    size_t msg_size;
};

typedef struct loom__exec_cuda loom__exec_cuda;
typedef struct loom__exec_device loom__exec_device;

/* A device chain run by one actor (GPUs: each piece's kernels replayed as one CUDA graph). */
typedef struct loom__fused {
    int device;
    int *tasks, ntasks; /* the chain, in order */
    int *in, nin;       /* registers it reads from outside, one input slot each (the control slot follows) */
    int *out, nout;     /* registers it writes that are read outside it, its outputs in this order */
    uint64_t aid;
    actor_ctx ctx;
    void *graphs;       /* the GPU part's captured steps */
} loom__fused;

struct loom__exec {
    loom__exec_env *env;
    loom__plan *pl;
    loom__rt *rt;
    int n;              /* devices */
    int rank;           /* this process's rank: its devices' tasks and the host's act here */
    int nranks;         /* the job's processes, each with the host's tasks (1: a plan of one process) */
    char **dev_block;   /* by device: its shared block, then its own registers */
    char **param_block; /* by device: parameters' and optimizer state's parts */
    char *host_block;   /* host registers */
    char **mirror;      /* by register of another rank's device that this rank reads: its buffers here
                           (regst_num of them, filled by the communication thread), else NULL; the
                           other ranks' devices have no memory here */
    /* by register * nranks + rank, of a register of this rank's devices (else NULL): the window of
     * its bytes that rank's actors read, {first, count}, or {0, -1}: all (actors/wire.c) */
    int64_t (*window)[2];
    token **tok;        /* by register: regst_num tokens */
    void ***bufs;       /* by register: pointers to its tokens, as the runtime takes them */
    uint64_t *aid;      /* by task */
    actor_ctx *ctx;     /* by task */
    int *input_k;       /* by tensor id: the input's index among the source's inputs, or -1 */
    int ninputs;
    int *input_id;      /* by input index: its tensor id */
    int *input_off;     /* by input index: its first part among the source's outputs (its parts follow) */
    int *input_n;       /* by input index: its parts */
    /* Without a data source on several devices or a GPU: each input's parts of the fed data, by
     * source output (on the device for GPUs), cut again when the data is fed anew. */
    loom__value *stat;
    uint64_t *stat_version;
    /* With a data source on several devices or a GPU: each input's logical value, staged on the
     * host before the source cuts it into parts. */
    token *stage;
    char *stage_block;
    /* A graph batch fed by parts (loom_feeder_parts), per piece: which inputs were (by input
     * index), and each dynamic dim's size on each position of the placement (by position, -1
     * where no part said). */
    uint8_t *by_parts;
    int64_t (*pdims)[LOOM__MAX_DYN];
    const loom__exec_device *dev; /* the kind of its devices */
    loom__exec_cuda *cuda; /* GPU state; NULL on CPU devices */
    loom__fused **fused;   /* by device: its chain fused into one actor, or NULL */
    int *slot_of;          /* by register: its input slot in the fused chain that reads it, or -1 */
    int *outidx_of;        /* by register: its output index in the fused chain that writes it, or -1 */
    int64_t last_piece;    /* the last piece of the run in progress, or -1 when a data source decides */
    /* With micro-batches: by input index, the micro-batch of the piece being cut (a view of the
     * step's batch); the loss's sum over the step's micro-batches so far. */
    loom__value *micro_view;
    double loss_sum;
    void *sink_scratch; /* the host's sinks' (one thread): a micro-batch's value joined */
    size_t sink_cap;
};

/* 1 when the sink of kept tensor t copies piece `piece` to the host: the loss of every training
 * step (the loss history), and the rest only at the run's last piece, which is all a fetch can
 * see (every piece when a data source may end the run early). */
int loom__exec_keeps(const loom__exec *x, const loom_tensor *t, int64_t piece);
/* Records a failure in the environment's message (printf style) and returns s. */
loom_status loom__exec_fail(const loom__exec *x, loom_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Bytes of the host stage of input t: its logical value at its bounds (the whole batch of a step
 * cut into micro-batches), a sparse one at the size the plan was made for. */
size_t loom__exec_stage_bytes(const loom__exec *x, const loom_tensor *t);
/* loom__input_dims for data fed to input t of the plan: with micro-batches, the data is the
 * step's whole batch (its rows checked against the batch's, and that micro-batches divide them),
 * of which the plan's op table holds one micro-batch. */
loom_status loom__exec_input_dims(const loom__exec *x, const loom_tensor *t, int ndim, const int64_t *shape, char *msg, size_t len);
/* The step of a piece: with micro-batches, pieces step * micro .. step * micro + micro - 1. */
static inline int64_t loom__exec_step_of(const loom__exec *x, int64_t piece) { return piece / x->pl->micro; }

static inline int loom__exec_on_gpu(const loom__exec *x) { return x->pl->kind == LOOM_DEVICE_CUDA; }
/* 1 when device d is this rank's (its memory and its tasks are here). */
static inline int loom__exec_dev_here(const loom__exec *x, int d) { return x->pl->dev_rank[d] == x->rank; }
/* One CPU device: parameters, fed data and kept values are the program's own storage. */
static inline int loom__exec_in_program(const loom__exec *x) { return x->n == 1 && !loom__exec_on_gpu(x); }
/* The act of a task: the device's own for what only it has, else the one every device shares. */
loom__act_fn loom__exec_act(const loom__exec *x, const loom__task *k);
/* The source's act (source.c): the piece's inputs, from the data last fed or from a data source. */
loom_status loom__exec_source_act(void *vctx, loom__act *a);
/* The kernel context every device's kernels start from: the act's step, mode and message. */
loom__kctx loom__exec_kctx(const loom__exec *x, loom__act *a);
/* Adds to kc the signature of t and its part's offsets on several devices (the first row and the
 * whole rows of each split source at the piece dims carries, a graph batch's uneven parts
 * included), for the kernels that read them: dropout masks, the means of the losses, row-split
 * gathers. rg is the register of t's output on this device. */
void loom__exec_part_kctx(const loom__exec *x, const loom_tensor *t, const loom__regst *rg, const token *dims, loom__kctx *kc);

/* The concrete logical shape of t at a piece whose dims dims_from carries (NULL: none); -1, or the
 * index of a dynamic dim that nothing binds. */
int loom__exec_resolve(const loom_graph *g, const loom_tensor *t, const token *dims_from, int64_t *shape);
/* The first of an act's nin input tokens that carries the piece's dims, or NULL. */
const token *loom__exec_dims_of(const loom__act *a, int nin);
/* The first index and size of part `part` of `nparts` along axis `axis` of t, whose whole size
 * there is `whole`, at the piece dims carries: the fed part of a dynamic dim of a graph batch fed
 * by parts, else the even split. */
void loom__exec_part_range(const loom_graph *g, const loom_tensor *t, int axis, const token *dims, int nparts, int part,
                           int64_t whole, int64_t *first, int64_t *size);
/* 1 when an even split of dynamic dim d at `size` (d fed whole) gives some device more than the
 * part bound its registers split along d were planned for (loom_dim_set_part_bound): that part's
 * placement size in *nparts, its size in *part and the part bound in *most. */
int loom__exec_even_over(const loom__exec *x, int d, int64_t size, int *nparts, int64_t *part, int64_t *most);
/* The same, writing why into msg. */
int loom__exec_even_msg(const loom__exec *x, int d, int64_t size, char *msg, size_t len);
/* Carries the piece's dims (and a batch's parts) from `from` (NULL: none) to `to`. */
void loom__exec_copy_dims(token *to, const token *from);
/* Sets out's shape to its register's part of t at this piece (the logical shape from the dims,
 * cut by the register's SBP) and carries the dims on; LOOM_ERR_SHAPE naming a dim nothing binds. */
loom_status loom__exec_shape_out(const loom__exec *x, const loom_tensor *t, const loom__regst *rg, const token *dims,
                                 token *out, loom__act *a);
/* Points a CSR token at its three parts inside the buffer at base, for nrows rows and nnz entries. */
void loom__exec_csr_layout(token *k, char *base, int64_t nrows, int64_t nnz, loom_dtype vdtype);
/* The base pointer of buffer b of register r, NULL for registers without plan memory. */
char *loom__exec_buffer(const loom__exec *x, int r, int b);
/* A parameter's or optimizer state's part on device d, in the plan's param area (device memory on
 * a GPU). */
loom__value loom__exec_param_part(const loom__exec *x, const loom_tensor *t, int d);
/* Part j of logical input k (its value v) under the input's SBP, into token out, whose base is
 * host memory with room for it. */
void loom__exec_cut_input(const loom__exec *x, const loom__value *v, int k, int j, token *out);

/* A kind of device as the executor sees it: one table per kind (CPU devices here, GPUs in
 * actors/devices/cuda.c), so the acts are written once and reach a device only through it. NULL
 * entries are what a kind does not need. */
struct loom__exec_device {
    int rt_kind; /* enum loom__rt_dev_kind: of the actor ids of its tasks */
    /* How its devices exchange parts (boxing and moves); NULL: the plan may hold no boxing task. */
    const loom__comm_ops *comm;
    /* Runs a boxing task's b through comm on its device (its state as b's ctx), or NULL: comm's
     * box is called as it is. */
    loom_status (*box)(loom__exec *x, loom__act *a, int task, loom__comm_box *b, loom__value *out);
    /* The runtime stream of a task on it (a kind's chain runs on stream 0). */
    unsigned (*stream_of)(const loom__task *k);
    /* Its memory (the plan's blocks), streams and events for x's plan; their release. */
    loom_status (*open)(loom__exec *x);
    void (*close)(loom__exec *x);
    /* The act of a task kind that only this device has (a copy to or from a GPU), else NULL. */
    loom__act_fn (*own_act)(const loom__task *k);
    int (*deferred)(const loom__task *k); /* acts of k it defers at most at once */
    /* 1: run device d's chain as one actor, with step_act as its act. */
    int (*fusable)(const loom__exec *x, int d);
    loom__act_fn step_act;
    /* Runs op t of task `task` on its device: out from src (out NULL for an update, which writes
     * src[0]), then, when the numerics check is on, the check of what it wrote. */
    loom_status (*kernel)(loom__exec *x, loom__act *a, int task, const loom_tensor *t, loom__value *out,
                          loom__value *const *src, const loom__kctx *kc);
    /* Fed data and the step onto the devices before a run; after it, waits for them and returns
     * their errors (st: the run's status so far). */
    loom_status (*run_begin)(loom__exec *x);
    int stages_inputs; /* 1: run_begin puts fed data onto the devices itself (else the CPU cut does) */
    loom_status (*run_end)(loom__exec *x, loom_status st);
    /* Copies a parameter's or state's part between the host and its device. */
    loom_status (*copy)(loom__exec *x, void *dst, const void *src, size_t bytes);
    /* The failure a value copied back from the device reports (its error record), LOOM_OK if none. */
    loom_status (*value_err)(const loom__exec *x, const token *in, char *msg, size_t len);
};

extern const loom__exec_device loom__exec_cpu_device;
/* GPUs (actors/devices/cuda.c; in a build without CUDA, actors/devices/absent.c, whose open refuses). */
extern const loom__exec_device loom__exec_cuda_device;

/* How register tokens travel to another rank's mirror of them (actors/wire.c). */
extern const loom__rt_wire loom__exec_wire;
/* The windows of the registers of this rank's devices that other ranks read (x->window): a
 * rank whose every reader of a dense register of static shape is a boxing or a move task reads of
 * it only the bytes that overlap the parts those tasks write (from the first to the last, in
 * row-major order), and only those cross. LOOM_OK, or LOOM_ERR_NOMEM. */
loom_status loom__exec_wire_windows(loom__exec *x);
/* Every rank's plan is this one, by a hash of its JSON (actors/wire.c); a refusal says which rank's
 * differs. */
loom_status loom__exec_same_plan(loom__exec *x);

/* The CPU devices' and the host's plan blocks (actors/build.c). */
loom_status loom__exec_cpu_blocks(loom__exec *x);

#endif
