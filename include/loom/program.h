/** @file
 * Compiling a graph into a program, and running it.
 *
 * loom_compile() differentiates the loss with respect to every parameter it depends on, appends
 * the optimizer's update ops, checks the graph, and returns a program holding the parameters and
 * optimizer state. A program is run on the host's CPU by the reference executor, which executes
 * the logical graph in topological order: it is the oracle every other runtime is checked
 * against. */
#ifndef LOOM_PROGRAM_H
#define LOOM_PROGRAM_H

#include <stdio.h>

#include "core.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Which update a training step applies to the parameters. */
typedef enum loom_optimizer_kind {
    LOOM_OPT_NONE, /**< gradients are computed but parameters never change */
    LOOM_OPT_SGD,  /**< stochastic gradient descent, with momentum, Nesterov, weight decay */
    LOOM_OPT_ADAM, /**< Adam, or AdamW with decoupled weight decay */
    LOOM_OPT_KIND_COUNT /**< the number of kinds */
} loom_optimizer_kind;

/** How the learning rate of step t (the optimizer steps taken before it, from 0) follows from lr:
 * constant; step: lr * gamma^floor(t / step_size); cosine: min_lr + (lr - min_lr) (1 +
 * cos(pi min(t, total_steps) / total_steps)) / 2, as torch.optim.lr_scheduler.CosineAnnealingLR
 * stepped after every optimizer step. With warmup_steps > 0, steps t < warmup_steps take the
 * schedule's rate times (t + 1) / warmup_steps (a linear warm-up). */
typedef enum loom_lr_schedule {
    LOOM_LR_CONSTANT, /**< lr at every step */
    LOOM_LR_STEP,     /**< lr * gamma^floor(t / step_size) */
    LOOM_LR_COSINE,   /**< from lr down to min_lr over total_steps, along a half cosine */
    LOOM_LR_COUNT     /**< the number of schedules */
} loom_lr_schedule;

/** SGD: v = momentum*v + (1-dampening)*(g + wd*p); p -= lr * (nesterov ? g + momentum*v : v)
 * (PyTorch's rule). Adam: L2 weight decay added to the gradient, or with decoupled (AdamW)
 * p -= lr*wd*p before the step. lr is the rate of the schedule at each step (above). */
typedef struct loom_optimizer {
    loom_optimizer_kind kind; /**< the update */
    double lr;                /**< the learning rate (> 0), or the schedule's starting rate */
    double momentum;          /**< SGD: the momentum (0: none) */
    double dampening;         /**< SGD: the dampening of the momentum */
    int nesterov;             /**< SGD: 1 for Nesterov momentum */
    double beta1;             /**< Adam: the first moment's decay */
    double beta2;             /**< Adam: the second moment's decay */
    double eps;               /**< Adam: added to the second moment's root */
    double weight_decay;      /**< L2 penalty (or AdamW's decay), per parameter by loom_param_set_weight_decay */
    int decoupled;            /**< Adam: 1 for AdamW's decoupled weight decay */
    loom_lr_schedule schedule; /**< LOOM_LR_CONSTANT (0) by default */
    int64_t total_steps;       /**< cosine: the steps the rate anneals over (> 0) */
    int64_t step_size;         /**< step: steps between decays (> 0) */
    double gamma;              /**< step: the factor of each decay (> 0) */
    double min_lr;             /**< cosine: the rate it ends at (>= 0) */
    int64_t warmup_steps;      /**< >= 0 */
} loom_optimizer;

/** Plain SGD at rate lr_. */
#define loom_sgd(lr_) ((loom_optimizer){.kind = LOOM_OPT_SGD, .lr = (lr_)})
/** Adam at rate lr_ with PyTorch's defaults (betas 0.9, 0.999; eps 1e-8). */
#define loom_adam(lr_) ((loom_optimizer){.kind = LOOM_OPT_ADAM, .lr = (lr_), .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8})
/** AdamW at rate lr_ with decoupled weight decay wd_, PyTorch's defaults otherwise. */
#define loom_adamw(lr_, wd_) \
    ((loom_optimizer){.kind = LOOM_OPT_ADAM, .lr = (lr_), .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = (wd_), .decoupled = 1})

/** What runs a program. */
typedef enum loom_executor {
    LOOM_EXEC_ACTORS,    /**< the actor runtime: the default */
    LOOM_EXEC_REFERENCE, /**< the reference executor: the logical graph in order, every value kept */
    LOOM_EXEC_COUNT      /**< the number of executors */
} loom_executor;

/** How f32 matmuls may compute on GPUs (CPUs and f64 always use full precision). */
typedef enum loom_matmul_precision {
    LOOM_MATMUL_F32,  /**< f32 products and sums: the CPU's results up to rounding (the default) */
    LOOM_MATMUL_TF32, /**< TF32 tensor cores: products of 10-bit mantissas, f32 sums */
    LOOM_MATMUL_BF16, /**< BF16 tensor cores: products of 7-bit mantissas, f32 sums */
    LOOM_MATMUL_PRECISION_COUNT /**< the number of precisions */
} loom_matmul_precision;

/** The most buffers a register holds (the runtime's bound), so the largest regst_num. */
#define LOOM_MAX_REGST_NUM 1024

/** How the micro-batches of a step pass through a pipeline of stages (loom_train_opts.schedule;
 * docs/placement.md). Each stage's device runs its forward and its backward pass as two chains;
 * the schedule is how many micro-batches' activations a stage keeps for its backward pass, which
 * the plan's registers hold and loom_program_memory reports. */
typedef enum loom_schedule {
    LOOM_SCHEDULE_1F1B,  /**< one forward, one backward: stage k of S keeps at most S - k micro-batches
                              in flight (a warm-up of S - k forwards, then a backward for each
                              forward); the default */
    LOOM_SCHEDULE_GPIPE, /**< every forward of the step, then every backward: each stage keeps all of
                              the step's micro-batches */
    LOOM_SCHEDULE_COUNT  /**< the number of schedules */
} loom_schedule;

/** How loom_compile makes and runs a program; start from LOOM_TRAIN_OPTS_INIT. */
typedef struct loom_train_opts {
    loom_optimizer optimizer; /**< the update of each step (loom_sgd, loom_adam, loom_adamw) */
    loom_executor executor;   /**< the actor runtime (default) or the reference executor */
    int regst_num; /**< buffers of each input register, 0 .. LOOM_MAX_REGST_NUM (0 means 2): data loading
                        runs that many steps ahead */
    int64_t memory_limit; /**< bytes a plan may take (registers, parameters, optimizer state); 0 means
                               the machine's physical memory, and on a GPU whatever its memory holds.
                               The actors' plan of the program's own step (STEP with an optimizer,
                               GRAD with a loss, else FORWARD) is made by loom_compile, which fails
                               over it; other modes, and a program with a CSR input (sized by the
                               matrix fed), fail at their first run. On GPUs it bounds each device. */
    int threads;   /**< threads a CPU kernel may use (OpenBLAS GEMM), set at each run; 0: the cores
                        each of the process's devices gets, at least one (devices that take every
                        core gain nothing from a kernel's threads besides them). The runtime's own threads follow from the plan: one per
                        device stream, plus the source's and the host's. */
    loom_matmul_precision matmul; /**< GPUs: f32 matmuls on tensor cores (TF32, BF16), or not */
    int check_numerics; /**< 1: after every op, scan its output; the first op whose output holds a
                             NaN or an infinity stops the run with LOOM_ERR_RUNTIME, naming the op,
                             its tensor and its pass (forward, backward, update). Also on with
                             $LOOM_CHECK_NUMERICS=1. Costs a read of every output; on a GPU the
                             error comes when the step's results reach the host. */
    double clip_norm; /**< > 0: before the optimizer's updates, every trained parameter's gradient is
                           scaled by min(1, clip_norm / (norm + 1e-6)), norm the L2 norm of all of
                           them together, as torch.nn.utils.clip_grad_norm_; 0: no clipping.
                           loom_program_grad stays unclipped. */
    const char *cost_model; /**< a calibration written by loom_calibrate (`loom calibrate`): the
                                 figures SBP inference chooses signatures by, and the plan's
                                 predicted step time. NULL: the file $LOOM_COST_MODEL names, else the
                                 built-in figures. A file that cannot be read fails the compile,
                                 naming it. Ranks of one job must use the same file (or none), as
                                 their plans must be the same. */
    int micro_batches; /**< 0 or 1: each step runs its whole batch at once. m > 1 (at most
                            LOOM_MAX_REGST_NUM): the actor executor cuts the batch (axis 0 of every
                            input) into m equal micro-batches that flow through the plan one after
                            another, so that the stages of a pipeline (layers on different
                            placements) work on different micro-batches at once; the gradients of
                            the m are summed before the step's one update, so a step is the step of
                            the whole batch (its loss a mean over the batch: each micro-batch's
                            weighted 1/m). m must divide the batch (a static one at loom_compile, a
                            dynamic one when fed), on CPU devices; the reference executor runs the
                            whole batch. See docs/placement.md. */
    loom_schedule schedule; /**< of the micro-batches through the stages (1F1B by default) */
    int plan_only; /**< 1: compile the plan of one rank of a job for reading it (loom_program_print_plan,
                        loom_program_traffic), without running under the job's launcher: the
                        placements are not checked against this process's job and devices (GPUs
                        over many ranks may be planned on a machine without one), and the plan
                        holds only the tasks and memory of rank plan_rank's devices, so that it
                        grows with the devices of one rank, not with the job (docs/placement.md).
                        Such a program refuses to run. A placement may then hold up to
                        LOOM_MAX_PLAN_DEVICES devices; without plan_only, a graph's placements hold
                        at most 128 devices in all. */
    int plan_rank; /**< with plan_only: the rank whose plan is compiled; a rank of the placements */
    const struct loom_link_model *links; /**< the network between the ranks (nodes) that SBP inference
                                              prices the level of a placement across ranks with: a
                                              node's links and their latency a step (node_links,
                                              link_bw, node_latency; within a node the device
                                              kind's figures hold). NULL: the cost model's (built-in:
                                              8 x 400 Gb/s, 10 us; or the calibration's net_bw and
                                              net_latency). Ranks of one job must use the same. */
} loom_train_opts;

/** The most devices a placement may hold in a program compiled with loom_train_opts.plan_only. */
#define LOOM_MAX_PLAN_DEVICES 65536

/** The defaults, named: no optimizer, the actor executor, two buffers per input register, the
 * machine's memory, the library's threads, f32 matmuls, no numerics check, no clipping, the
 * default cost model and its network, no micro-batches. A zeroed struct means the same; start
 * from this and set what differs:
 *
 *     loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
 *     o.optimizer = loom_adam(0.01);                                                        */
#define LOOM_TRAIN_OPTS_INIT                                                                              \
    ((loom_train_opts){.optimizer = {.kind = LOOM_OPT_NONE}, .executor = LOOM_EXEC_ACTORS, .regst_num = 2, \
                       .memory_limit = 0, .threads = 0, .matmul = LOOM_MATMUL_F32, .check_numerics = 0,   \
                       .clip_norm = 0, .cost_model = NULL, .micro_batches = 0,                            \
                       .schedule = LOOM_SCHEDULE_1F1B, .plan_only = 0, .plan_rank = 0, .links = NULL})

/** A compiled graph (opaque): its plans, parameters, optimizer state and the data fed to it. */
typedef struct loom_program loom_program;

/** Compiles g for training loss (a scalar float tensor), or for inference when loss is NULL.
 * opts may be NULL (no optimizer). On failure returns the status and *out is NULL; the message is
 * loom_graph_error(g). Compiling adds the gradient and update tensors to g; the graph must outlive
 * the program, and tensors added to it later are not part of the program. */
loom_status loom_compile(loom_graph *g, loom_tensor *loss, const loom_train_opts *opts, loom_program **out);
/** Frees the program (not its graph). NULL is ignored. */
void loom_program_free(loom_program *p);
/** The last error of a program call, or NULL. */
const char *loom_program_error(const loom_program *p);

/** Binds data to an input for the following runs. The data is copied; dynamic dims take their size
 * from it (and must not exceed their bounds, nor disagree between inputs). */
loom_status loom_program_feed(loom_program *p, loom_tensor *input, const loom_array *a);
/** Binds a CSR matrix to a CSR input, as loom_program_feed does a dense one. */
loom_status loom_program_feed_csr(loom_program *p, loom_tensor *input, const loom_csr *m);

/** What a run computes. */
typedef enum loom_run_mode {
    LOOM_RUN_EVAL,    /**< forward, dropout off */
    LOOM_RUN_FORWARD, /**< forward in training mode (dropout on) */
    LOOM_RUN_GRAD,    /**< forward and backward in training mode; parameters unchanged */
    LOOM_RUN_STEP,    /**< forward, backward and optimizer update; then the step count advances */
    LOOM_RUN_MODE_COUNT /**< the number of modes */
} loom_run_mode;

/** What a data source feeds a step's inputs through (opaque; valid during the call only). */
typedef struct loom_feeder loom_feeder;
/** A data source for multi-step runs, called on the source thread once per step in order: it feeds
 * every input through loom_feeder_dense / loom_feeder_csr, or sets *end when no data is left. A
 * non-OK return fails the run with the message written to msg. Without a source, every step reads
 * the data last given to loom_program_feed. */
typedef loom_status (*loom_source_fn)(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen);
/** Makes fn (called with ctx) the program's data source for the following runs; fn NULL removes it. */
void loom_program_set_source(loom_program *p, loom_source_fn fn, void *ctx);
/** Copies data into the step's input register; the sizes must fit what the plan reserved (dynamic
 * dims at their bounds; a CSR input at the size of the matrix fed before the first run). */
loom_status loom_feeder_dense(loom_feeder *f, loom_tensor *input, const loom_array *a);
/** 1 when part j of input (position j of its placement) is read on this process: in a run over
 * several processes, a data source may leave out the data of the other parts given to
 * loom_feeder_parts (their shapes still count: a graph batch's offsets come from every part's
 * size), so that each rank loads only its own share. 1 in a run of one process; 0 for a bad
 * input or j. */
int loom_feeder_part_here(const loom_feeder *f, const loom_tensor *input, int j);
/** Copies a CSR matrix into the step's register of a CSR input, as loom_feeder_dense does. */
loom_status loom_feeder_csr(loom_feeder *f, loom_tensor *input, const loom_csr *m);
/** Feeds input by parts, one per device of its placement (n of them, in the placement's order):
 * a graph batch split by whole graphs, each device's part collated on its own (an index input's
 * values index its own part of their range). The input must be split S(0) along a dynamic dim,
 * (S(0), S(0)) on a 2-D placement (parts in its row-major device order), and the logical value
 * is the parts one after another; the parts of every input fed so in one step
 * must agree on each dynamic dim they share, and each fit the dim's part bound
 * (loom_dim_set_part_bound). With one device it is loom_feeder_dense of the one part.
 * LOOM_ERR_INVALID or LOOM_ERR_SHAPE with the source's message naming the input and the part;
 * LOOM_ERR_UNSUPPORTED for an input split otherwise on a mesh. */
loom_status loom_feeder_parts(loom_feeder *f, loom_tensor *input, int n, const loom_array *parts);

/** Keeps t's value of the last step fetchable (the actor executor reuses the memory of values
 * nobody asked for; the loss, parameters, inputs given to loom_program_feed and values no op reads
 * are always kept; an input a data source feeds is kept when asked for here). */
loom_status loom_program_keep(loom_program *p, loom_tensor *t);

/** Runs the program once. Random masks depend on the step count, so runs between two STEPs see the
 * same masks. */
loom_status loom_program_run(loom_program *p, loom_run_mode mode);
/** Runs `steps` steps in one go: the actor executor pipelines them (loading step t+1 while step t
 * computes). Returns early, with the status, on an error or when the source ends.
 * After a failed or cancelled run, the steps counted (loom_program_steps), the losses and the
 * parameters agree: each step is applied and counted, or neither. The actor executor drains: the
 * data source is asked for no new step, the steps begun complete wherever they do not need the
 * failed op, and a failure in training step k leaves exactly the steps before k applied; the next
 * run goes on from there. Three failures can still leave a step partly applied: one in an
 * optimizer update itself (the step's other updates may have run), one in an op that the loss
 * depends on and some parameter's update does not (a loss summed from independent parts), and a
 * GPU's device error (an index out of range, the numerics check), which stops the run at once: the
 * device skips every update after it, so no parameter takes the failing step's values, but an
 * earlier step whose update the device had not yet reached is then counted and not applied. */
loom_status loom_program_run_steps(loom_program *p, loom_run_mode mode, int64_t steps);
/** Ends the run in progress, from any thread, with LOOM_ERR_RUNTIME "cancelled": the actor
 * executor completes the steps it has begun (their data was read) and starts no other; the
 * reference executor stops before its next step. A cancel while no run is in progress ends the
 * next run (of any mode) at once, before it runs anything. Each cancel is consumed by exactly one
 * run; several before a run are one. */
void loom_program_cancel(loom_program *p);
/** With LOOM_TRACE=file set, each actor run writes a Chrome trace of its acts (docs/runtime.md).
 * The file is a pattern: %p is the process id, %n the run's number among the process's traced
 * runs (0, 1, ...), %% a '%' (LOOM_TRACE=trace-%p-%n.json keeps every run's trace); any other
 * '%' fails the run with LOOM_ERR_INVALID before it runs anything. A new or regular file is
 * replaced whole (via file.tmp and a rename), a character device or a
 * FIFO is written in place, and a symbolic link, a directory or another kind of file is refused
 * and left as it is. A trace that cannot be written does not change the run's status, since its
 * steps were run and counted: this returns why (NULL when the last run's trace was written or
 * none was asked for), and the first such failure is printed to stderr. */
const char *loom_program_trace_error(const loom_program *p);

/** The loss of each step run with LOOM_RUN_STEP so far (n of them), or NULL. */
const double *loom_program_losses(const loom_program *p, int64_t *n);

/** One device's memory in the actor executor's plan of a mode, in bytes. */
typedef struct loom_memory {
    size_t shared;   /**< registers shared by lifetime (one block) */
    size_t unshared; /**< what those registers would take without reuse */
    size_t own;      /**< registers with memory of their own */
    size_t params;   /**< the device's parts of the parameters and optimizer state (0 on one CPU
                          device: they are the program's, see loom_program_fetch) */
    size_t inputs;   /**< fed data held on the device (a GPU without a data source) */
    size_t scratch;  /**< a GPU's kernel and library workspace */
    size_t total;    /**< all of it: what the plan allocates for the device (on a GPU, its one
                          allocation; on a CPU device the program's own parameters come on top) */
    size_t activations; /**< of the registers above, those holding values of the forward pass that
                             the backward pass reads (layers' inputs, activations), every buffer:
                             what a training step keeps between its passes; with micro-batches, the
                             micro-batches its pipeline schedule keeps in flight. 0 without a
                             backward pass. */
} loom_memory;
/** For loom_program_memory: the whole plan, every device summed (and, in total, the host's
 * registers: a data source's, copies back from GPUs). */
#define LOOM_ALL_DEVICES (-1)
/** The actor executor's memory plan of mode, for device `device` of the plan or for
 * LOOM_ALL_DEVICES; the plan of the program's own step is made by loom_compile, another mode's here
 * if needed. The plan's devices are every placement's of the graph, once each: the positions of
 * the graph's placement (the first set; 0 without one), then the devices of the placements it moves
 * tensors to (a pipeline's later stages), in the order it first uses them. LOOM_ERR_INVALID for a
 * device out of range. */
loom_status loom_program_memory(loom_program *p, loom_run_mode mode, int device, loom_memory *out);

/** A dynamic dim's bounds, for loom_program_set_bounds and loom_program_memory_at. */
typedef struct loom_bound {
    loom_dim dim;       /**< the dynamic dim (its handle) */
    int64_t bound;      /**< its upper bound (>= 0) */
    int64_t part_bound; /**< each device's part's bound; 0: an even split of the bound */
} loom_bound;
/** New bounds for dynamic dims after compiling (a sampler's largest batch): for each of n entries,
 * dim's bound and part bound (0: an even split of the bound; see loom_dim_set_part_bound). The
 * plans are made again, and the memory limit checked, now: LOOM_ERR_NOMEM names the device, the
 * bytes needed and the limit, and leaves the bounds as they were. LOOM_ERR_INVALID for a dim that
 * is not one of the graph's dynamic dims, or a negative bound. Data fed before (loom_program_feed)
 * over a lowered bound is refused by the next run (LOOM_ERR_SHAPE): feed it again. */
loom_status loom_program_set_bounds(loom_program *p, const loom_bound *b, int n);
/** What loom_program_memory would report for mode and device if the n bounds of b were set, without
 * setting them (a plan is made and dropped): how a sampler packs batches to a memory limit. Also
 * LOOM_ERR_NOMEM, with out filled and the message naming the bytes and the limit, when that plan
 * would be over the program's memory limit (loom_train_opts.memory_limit). */
loom_status loom_program_memory_at(loom_program *p, loom_run_mode mode, int device, const loom_bound *b, int n,
                                   loom_memory *out);

/** Devices of the graph's placement (1 without one): the parts loom_feeder_parts takes. */
int loom_program_devices(const loom_program *p);
/** Steps taken so far. */
int64_t loom_program_steps(const loom_program *p);

/** A view of t's value after the last run (or of a parameter at any time): out->data points into
 * the program and stays valid until the next run or feed. Writing a parameter's elements through it
 * sets the parameter. LOOM_ERR_NOT_FOUND when t was not computed by the last run. */
loom_status loom_program_fetch(loom_program *p, loom_tensor *t, loom_array *out);
/** The gradient tensor of a parameter (fetch it after a GRAD or STEP run), or NULL when the loss
 * does not depend on it. */
loom_tensor *loom_program_grad(loom_program *p, loom_tensor *param);

/** Writes the program's parameters, optimizer state and step count to path in the safetensors format
 * (https://huggingface.co/docs/safetensors: an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {...}},
 * then the raw little-endian data), atomically: a temporary file beside it, fsync, rename, fsync of the
 * directory. The logical tensors are saved (whole, whatever the placement). Names: the parameters' own;
 * optimizer state as "<param>.<state>" (e.g. "fc.weight.momentum", "fc.weight.exp_avg", "fc.weight.exp_avg_sq",
 * as PyTorch names them); the step count and the optimizer kind in "__metadata__" (strings, as the format
 * wants: "step", and "optimizer" one of "none", "sgd", "adam"). LOOM_ERR_IO naming the path and the
 * system's reason (a failed save leaves no temporary file, and path as it was); LOOM_ERR_INVALID when
 * two tensors would share a name (a parameter named as another's state). */
loom_status loom_program_save(loom_program *p, const char *path);
/** Reads a checkpoint written by loom_program_save into p: every tensor of p's must be there with its
 * dtype and shape, and nothing else; the step count too (so schedules and Adam's bias correction go on
 * where they were). A file of another model is refused naming the first tensor that does not match (missing,
 * another shape or dtype, or one p does not have); a malformed file naming the file, the byte offset and what
 * was expected. The program may have another placement than the one that saved (the logical tensors are
 * saved). LOOM_ERR_FORMAT / LOOM_ERR_IO; on any failure p is unchanged. The loss history
 * (loom_program_losses) is not part of a checkpoint: it stays as it was. */
loom_status loom_program_load(loom_program *p, const char *path);

/** Measures this machine for the cost model: short runs (a few seconds in all) of designed graphs
 * of small ops, small and large matrix products, large elementwise ops, all-gathers and
 * all-reduces, on cpu:0 and on cpu:0-(k-1) (k the cores, 2 to 4), and on cuda:0 (and cuda:0-1)
 * when there are GPUs; the seconds of an op, a library call (a matrix product's or convolution's
 * call into cuBLAS, cuDNN or BLAS), a flop, a byte, a boxing, a boxing byte and a step are fitted to
 * them by least squares (a latency no lower than 0), and written to path as JSON (replaced whole,
 * atomically) with each case's measured and predicted step. Figures no case measures (boxing between GPUs on a machine of one) keep the
 * built-in ones, and the file says which were measured. log (NULL: none) gets a line per case.
 * Use the file with loom_train_opts.cost_model or $LOOM_COST_MODEL. LOOM_ERR_IO naming path. */
loom_status loom_calibrate(const char *path, FILE *log, loom_error *err);

/** The step time the cost model predicts for p's training step (seconds): each op's compute and
 * each boxing's transfer on its devices, the busiest device's sum or the longest chain of what
 * waits for what, whichever is longer, and a step's own cost (docs/design.md, "The cost model").
 * The figures are the program's cost model (loom_train_opts.cost_model); -1 when p is NULL or out
 * of memory. */
double loom_program_predicted_step(loom_program *p);

/** What a program is, written for its user (what `loom plan` prints): the counts of its tensors
 * and, on several devices, each op's SBP signature and why, every boxing op and the bytes it
 * moves per step. LOOM_ERR_IO when the stream reports a write error. */
loom_status loom_program_print_plan(loom_program *p, FILE *f);
/** The same plan as a Graphviz graph: a cluster per device, an edge per boxing op (on one device,
 * one cluster and no boxing). */
loom_status loom_program_write_dot(loom_program *p, FILE *f);

/** How the devices of a job are linked, for the traffic a plan predicts (loom_program_traffic;
 * docs/placement.md, "Traffic of one rank"): each rank of a placement is a node; its devices
 * reach one another over links of gpu_bw bytes per second each way (NVLink), and other nodes over
 * the node's network links, node_bw bytes per second in all each way. A ring step costs a latency. */
typedef struct loom_link_model {
    int node_links;      /**< network links of a node (8 in "8x400Gb/s"; 1 without a count) */
    double link_bw;      /**< bytes per second of each (400 Gb/s: 50e9) */
    double gpu_bw;       /**< bytes per second a device sends to the others of its node */
    double node_latency; /**< seconds of a step between nodes (of a ring or a tree) */
    double gpu_latency;  /**< seconds of a ring step within a node */
} loom_link_model;
/** The defaults: 8 links of 400 Gb/s a node, 450 GB/s of NVLink a GPU (an H100 SXM's 900 GB/s
 * both ways), 10 us a ring step between nodes and 3 us within one. */
#define LOOM_LINK_MODEL_INIT \
    ((loom_link_model){.node_links = 8, .link_bw = 50e9, .gpu_bw = 450e9, .node_latency = 10e-6, .gpu_latency = 3e-6})
/** Reads a bandwidth into m: net (NULL: unchanged) as [COUNTx]RATE for the network links of a node,
 * gpu (NULL: unchanged) as RATE for a device's links within its node; RATE is a number and a unit,
 * one of Mb/s, Gb/s, Tb/s (bits) or MB/s, GB/s, TB/s (bytes), as "8x400Gb/s" or "450GB/s".
 * LOOM_ERR_INVALID quoting the text and saying what was expected; m unchanged then. */
loom_status loom_link_model_parse(const char *net, const char *gpu, loom_link_model *m, loom_error *err);

/** The collectives boxing runs (docs/placement.md). */
typedef enum loom_collective {
    LOOM_COLL_ALL_REDUCE,     /**< P -> B */
    LOOM_COLL_ALL_GATHER,     /**< S -> B (and S -> P, which gathers and then zeroes) */
    LOOM_COLL_REDUCE_SCATTER, /**< P -> S */
    LOOM_COLL_ALL_TO_ALL,     /**< S(i) -> S(j) */
    LOOM_COLL_COUNT           /**< the number of kinds */
} loom_collective;
/** "all-reduce", "all-gather", "reduce-scatter", "all-to-all"; "?" out of range. */
const char *loom_collective_name(loom_collective c);

/** What one rank of a job does in a training step under a link model (loom_program_traffic):
 * its part of the plan, and the bytes its devices send, by the collective each boxing is (on a
 * 2-D placement, the first of its levels' in loom_collective's order: (P, P) -> (B, B) is an
 * all-reduce, whatever steps its route takes). Ring and tree collectives send and receive alike,
 * so what a rank receives is what it sends. */
typedef struct loom_traffic {
    int rank;      /**< the rank */
    int ndevices;  /**< of the rank, in the plan */
    int ntasks;    /**< of the plan (a plan of one rank: that rank's, with its host tasks) */
    int nodes;     /**< ranks of the largest placement (1: without ranks) */
    int per_node;  /**< its devices on each rank */
    int64_t count[LOOM_COLL_COUNT]; /**< collectives a step (each device of the rank joins each) */
    double gpu_bytes[LOOM_COLL_COUNT];  /**< bytes the rank's devices send within its node, a step */
    double node_bytes[LOOM_COLL_COUNT]; /**< bytes the rank sends to other nodes, a step */
    double seconds[LOOM_COLL_COUNT];    /**< predicted, one collective after another */
    int64_t net_trees[LOOM_COLL_COUNT]; /**< of count, those whose all-reduce between the nodes runs as
                                         * a double binary tree (cheaper than a ring there) */
    int64_t net_rings[LOOM_COLL_COUNT]; /**< of count, those whose step between the nodes runs as a ring */
} loom_traffic;
/** The traffic of rank `rank` in the plan of p's training step (its own mode) under links (NULL:
 * LOOM_LINK_MODEL_INIT): hierarchical collectives, within each node, then between nodes (rings,
 * or an all-reduce as a tree where that is cheaper), then within each node again, as
 * docs/placement.md states. The rank must hold devices in the plan (a
 * program compiled with plan_only: its plan_rank). LOOM_ERR_INVALID naming the rank, or the
 * plan's failure. */
loom_status loom_program_traffic(loom_program *p, int rank, const loom_link_model *links, loom_traffic *out);

/** The compiled plan of mode (made now when it is not yet), the one the actors run: each task (op,
 * device, registers read and written), each register (bytes, buffers, where in which device's
 * memory) and each device's memory, as text (LOOM_PLAN_TEXT, one line each), or as JSON
 * (LOOM_PLAN_JSON: the whole plan, with its own table of the ops it runs, which
 * loom_program_read_plan takes back). LOOM_ERR_IO when the stream reports a write error. */
typedef enum loom_plan_format {
    LOOM_PLAN_TEXT, /**< one line per task, register and device */
    LOOM_PLAN_JSON  /**< the whole plan, readable by loom_program_read_plan */
} loom_plan_format;
/** Writes the compiled plan of mode to f in format (see loom_plan_format). */
loom_status loom_program_write_plan(loom_program *p, loom_run_mode mode, loom_plan_format format, FILE *f);
/** Makes the plan in JSON file path (written by loom_program_write_plan) the plan its mode runs,
 * in place of the program's own, until a change that plans anew (a keep, a source, a sparse input
 * of another size). It must be a plan of this program: the same ops, shapes, names, placements
 * and SBPs; how it lays out memory and buffers may differ. Refused naming the file and the byte
 * offset of what is wrong, or the first tensor that differs (LOOM_ERR_FORMAT), or the memory
 * limit (LOOM_ERR_NOMEM); LOOM_ERR_IO when the file cannot be read. */
loom_status loom_program_read_plan(loom_program *p, const char *path);
/** Prints the plan in JSON file path as LOOM_PLAN_TEXT does, without its program (`loom plan
 * FILE.json`). LOOM_ERR_FORMAT (the file and byte offset in err) or LOOM_ERR_IO. */
loom_status loom_plan_file_print(const char *path, FILE *out, loom_error *err);

/** The op registry: ops 0 .. loom_op_count() - 1, each with its name, whether it has a gradient
 * rule and whether it is a leaf (an input, a parameter). */
typedef struct loom_op_about {
    const char *name; /**< the op's name ("matmul"), static */
    int has_grad;     /**< 1 when it has a gradient rule */
    int is_leaf;      /**< 1 for an input, a parameter or a state: it computes nothing */
} loom_op_about;
/** The number of ops in the registry. */
int loom_op_count(void);
/** Op number op's entry into *out; LOOM_ERR_INVALID when op is out of range. */
loom_status loom_op_info(int op, loom_op_about *out);

#ifdef __cplusplus
}
#endif
#endif
