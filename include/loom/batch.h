/** @file
 * Batches of graph samples: samplers that deal a dataset's samples into steps, each step one share
 * per data-parallel device.
 *
 * Every sampler visits every sample of its list exactly once per epoch, and an epoch's steps
 * depend on (seed, epoch) alone. Sizes are measured in nodes, edges, or the bytes of a sample's
 * tensors in a batch (loom_samples_bytes). A step holds one share per device (opts.devices, 1 by
 * default); shares of one step may be empty when there are fewer samples than devices. Ties in
 * size are broken by id, so that the steps are deterministic. */
#ifndef LOOM_BATCH_H
#define LOOM_BATCH_H

#include "program.h"
#include "samples.h"

#ifdef __cplusplus
extern "C" {
#endif

/** How a sampler deals an epoch's samples into steps and each step over the devices. */
typedef enum loom_sampler_kind {
    LOOM_SAMPLER_RANDOM,  /**< shuffled, `batch` samples a step: the baseline */
    LOOM_SAMPLER_BALANCE, /**< the largest `fraction` of the samples dealt round-robin over the
                               epoch's steps (in a shuffled order of steps, passing over the short
                               last step once it is full), the rest shuffled in (Lee et al., 2024);
                               a step lists its large samples first */
    LOOM_SAMPLER_OUTLIER, /**< stress case: the largest samples one per step, the rest shuffled in */
    LOOM_SAMPLER_SKEW,    /**< stress case: steps of the largest samples together, in size order;
                               the full steps in a shuffled order, the short one last */
    LOOM_SAMPLER_BUDGET,  /**< greedy packing under max_nodes and max_edges per share (shuffled, or
                               largest first with `sort`, then the steps in a shuffled order): each
                               sample into the least loaded share of the step that fits it; one that
                               fits none closes the step */
    LOOM_SAMPLER_DEVICES, /**< `batch` samples a step, dealt over the devices largest first into the
                               least loaded share, so that the largest share is as small as possible */
    LOOM_SAMPLER_PLAN,    /**< budget packing to a device memory limit: the budget comes from the
                               program's memory plan (loom_batch_fit_plan) */
    LOOM_SAMPLER_KIND_COUNT /**< the number of kinds */
} loom_sampler_kind;

/** What a sample's size is, where a sampler compares sizes. */
typedef enum loom_size_kind {
    LOOM_SIZE_BYTES, /**< loom_samples_bytes */
    LOOM_SIZE_NODES, /**< its nodes */
    LOOM_SIZE_EDGES, /**< its edges */
    LOOM_SIZE_KIND_COUNT /**< the number of kinds */
} loom_size_kind;

/** A sampler's options; start from LOOM_SAMPLER_OPTS_INIT. */
typedef struct loom_sampler_opts {
    loom_sampler_kind kind; /**< how it deals (see loom_sampler_kind) */
    int64_t batch;        /**< samples per step (random, balance, outlier, skew, devices); >= 1 */
    int devices;          /**< shares per step (1 to 1024); a step's samples are dealt over them: in
                               order, its j-th sample to device j % devices (random, balance, outlier,
                               skew), by size (devices), or packed under the budget (budget, plan) */
    loom_size_kind size;  /**< what "largest" means */
    double fraction;      /**< balance: in (0, 1] */
    int64_t max_nodes;    /**< budget and plan: nodes per share; 0 is no bound */
    int64_t max_edges;    /**< budget and plan: edges per share; 0 is no bound */
    int sort;             /**< budget and plan: largest first instead of shuffled */
    uint64_t seed;        /**< what the shuffles draw from (with the epoch) */
} loom_sampler_opts;

/** The defaults: random, 32 samples a step, one device, sizes in bytes, fraction 0.1, no budget. */
#define LOOM_SAMPLER_OPTS_INIT                                                                            \
    ((loom_sampler_opts){.kind = LOOM_SAMPLER_RANDOM, .batch = 32, .devices = 1, .size = LOOM_SIZE_BYTES, \
                         .fraction = 0.1, .max_nodes = 0, .max_edges = 0, .sort = 0, .seed = 0})

/** "random", "balance", ... as the kinds are named above; NULL for a bad kind. */
const char *loom_sampler_kind_name(loom_sampler_kind k);
/** The kind named `name`; LOOM_ERR_INVALID (listing the names) when there is none. */
loom_status loom_sampler_kind_parse(const char *name, loom_sampler_kind *out, loom_error *err);

/** Sets o->max_nodes and o->max_edges to the budget of o->batch mean samples of s a step, split
 * over o->devices shares, and never below the largest sample of s (which must fit a share). */
void loom_sampler_mean_budget(const loom_samples *s, loom_sampler_opts *o);

/** A sampler (opaque): the steps of an epoch of a dataset's samples, dealt over devices. */
typedef struct loom_sampler loom_sampler;

/** A sampler over samples ids[0 .. n-1] of s (ids NULL: all of them, in order, and n is s->count);
 * s must outlive it. LOOM_ERR_INVALID names a bad option or id, or a sample larger than the whole
 * budget (naming it and its sizes); an empty list and a repeated id are LOOM_ERR_INVALID too.
 * batch, fraction and the budget are checked only for the kinds that use them. */
loom_status loom_sampler_new(const loom_samples *s, const int64_t *ids, int64_t n, const loom_sampler_opts *o,
                             loom_sampler **out, loom_error *err);
/** Frees the sampler. NULL is ignored. */
void loom_sampler_free(loom_sampler *smp);
/** Deals the steps of epoch `epoch` (>= 0); the queries below describe them until the next call. */
loom_status loom_sampler_epoch(loom_sampler *smp, int64_t epoch, loom_error *err);
/** Steps of the epoch dealt last (0 before the first). */
int64_t loom_sampler_steps(const loom_sampler *smp);
/** The sample ids of device d's share of step k; *n of them (0 and NULL for an empty share, or a
 * step or device out of range). */
const int64_t *loom_sampler_share(const loom_sampler *smp, int64_t k, int d, int64_t *n);
/** Nodes and edges of device d's share of step k. */
void loom_sampler_share_size(const loom_sampler *smp, int64_t k, int d, int64_t *nodes, int64_t *edges);
/** The largest share of the epoch in nodes and in edges (each the maximum over all shares), and the
 * step and device of the share with the most bytes (the first such); 0, 0, -1 and -1 before the
 * first epoch. Any output may be NULL. */
void loom_sampler_largest(const loom_sampler *smp, int64_t *nodes, int64_t *edges, int64_t *step, int *device);
/** The options the sampler was made with (kept by it). */
const loom_sampler_opts *loom_sampler_options(const loom_sampler *smp);

/* ---------------------------------------------------------------------------------------------
 * Batches as a program's data: each step's shares collated block-diagonally (one graph after
 * another: features stacked, endpoints renumbered, a segment id per node and per edge naming its
 * graph within the share) and fed by parts, one per device, from the program's data source, so
 * that collation runs on the source's thread ahead of compute.
 * ------------------------------------------------------------------------------------------- */

/** The graph's inputs a batch feeds (NULL: not fed) and its dynamic dims. */
typedef struct loom_batch_inputs {
    loom_dim nodes;                /**< N: the nodes of a share, a dynamic dim */
    loom_dim edges;                /**< E: its edges, a dynamic dim */
    loom_dim graphs;               /**< G: its graphs, a dynamic dim */
    loom_tensor *x;                /**< [N, node_features] f32 */
    loom_tensor *edge_attr;        /**< [E, edge_features] f32 */
    loom_tensor *src;              /**< [E] index input over N (loom_input_index): each edge's source */
    loom_tensor *dst;              /**< [E] index input over N: each edge's destination */
    loom_tensor *edge_y;           /**< [E] or [E, 1] f32 edge labels */
    loom_tensor *node_graph;       /**< [N] index input over G: each node's graph in the share */
    loom_tensor *edge_graph;       /**< [E] index input over G */
    loom_tensor *graph_y;          /**< [G] i32 graph labels */
} loom_batch_inputs;

/** Makes the dynamic dims of a graph batch on g into in (nodes N, edges E, graphs G) with the bounds
 * of `batch` mean samples of s: the sizes SBP inference weighs when loom_compile chooses each op's
 * signature (bounds far below the batches to come would have it gather activations rather than
 * reduce gradients). loom_batch_plan_epoch sets the real bounds of each epoch. */
void loom_batch_dims(loom_graph *g, const loom_samples *s, int64_t batch, loom_batch_inputs *in);

/** What a graph batch's labels are for: which inputs loom_batch_inputs_make makes. */
typedef enum loom_batch_task {
    LOOM_TASK_EDGES,  /**< edge classification: edge_y [E], and edge_attr where the dataset has edge features */
    LOOM_TASK_GRAPHS, /**< graph classification: node_graph [N] over G and graph_y [G] */
    LOOM_TASK_COUNT   /**< the number of tasks */
} loom_batch_task;

/** Makes the dims (loom_batch_dims) and the inputs of a graph batch of s on g for task, into in:
 * x [N, node_features] f32 ("x"), the index inputs src and dst [E] over N ("src", "dst"), then for
 * LOOM_TASK_EDGES edge_attr [E, edge_features] f32 ("edge_attr", when s has edge features) and
 * edge_y [E] f32 ("edge_y"), for LOOM_TASK_GRAPHS node_graph [N] over G ("node_graph") and
 * graph_y [G] i32 ("graph_y"); every other member NULL, and in->graphs 0 for edges (G is not fed).
 * Errors are the builder's, kept on g. */
void loom_batch_inputs_make(loom_graph *g, const loom_samples *s, int64_t batch, loom_batch_task task, loom_batch_inputs *in);

/** A batch source (opaque): a data source that collates a sampler's steps. */
typedef struct loom_batch_source loom_batch_source;

/** A data source for p that collates the sampler's steps, from the first step of its current epoch
 * on (loom_batch_source_rewind), each share into its device's part. The sampler's devices must be
 * the program's (loom_program_devices); every input given must have the shape above and the
 * dataset the arrays it needs. s and smp must outlive it. LOOM_ERR_INVALID naming what does not
 * fit. It does not set itself as p's source: loom_batch_run does. */
loom_status loom_batch_source_new(loom_program *p, const loom_samples *s, const loom_sampler *smp,
                                  const loom_batch_inputs *in, loom_batch_source **out, loom_error *err);
/** Frees the batch source. NULL is ignored. */
void loom_batch_source_free(loom_batch_source *b);
/** The next step it feeds is step k of the sampler's current epoch. */
void loom_batch_source_rewind(loom_batch_source *b, int64_t k);
/** The loom_source_fn of a batch source (ctx: the loom_batch_source): feeds the next step, or ends
 * the run after the epoch's last step. */
loom_status loom_batch_source_fn(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen);

/** Sizes the program for the sampler's current epoch: the largest share (in nodes, edges and
 * graphs) becomes each dim's part bound and the largest step its bound (loom_program_set_bounds).
 * A plan sampler whose epoch's plan is over the memory limit (the plan's memory is not monotone in
 * its bounds) is sized for its budget instead, the plan loom_batch_fit_plan found to fit. When the
 * plan is over the program's memory limit, nothing runs: LOOM_ERR_NOMEM naming the largest shares
 * (their step, device and sizes), the bytes needed and the limit. It sets the program's data
 * source to loom_batch_source_fn, whose registers the plan holds. */
loom_status loom_batch_plan_epoch(loom_program *p, const loom_sampler *smp, const loom_batch_inputs *in, loom_error *err);
/** Runs `steps` steps of mode (0: to the epoch's end) from the source's next step, with it as the
 * program's data source; the program's message is copied into err on failure. */
loom_status loom_batch_run(loom_batch_source *b, loom_run_mode mode, int64_t steps, loom_error *err);

/** The plan sampler's budget: the largest share per device (max_nodes, max_edges, with the
 * dataset's edges per node) whose plan of mode fits the program's memory limit
 * (loom_train_opts.memory_limit), written into o->max_nodes and o->max_edges. LOOM_ERR_NOMEM when
 * shares that hold the dataset's largest sample do not fit, naming it and the bytes needed. Like
 * loom_batch_plan_epoch it sets the program's data source to loom_batch_source_fn (loom_batch_run
 * gives it its context), since the source's registers are part of the plan. */
loom_status loom_batch_fit_plan(loom_program *p, loom_run_mode mode, const loom_samples *s, const loom_batch_inputs *in,
                                loom_sampler_opts *o, loom_error *err);

/** The counts and scores of edge classification (loom_batch_edge_metrics). */
typedef struct loom_edge_metrics {
    int64_t tp;        /**< true positives */
    int64_t fp;        /**< false positives */
    int64_t tn;        /**< true negatives */
    int64_t fn;        /**< false negatives */
    double precision;  /**< tp / (tp + fp), 0 when that is 0 */
    double recall;     /**< tp / (tp + fn), 0 when that is 0 */
    double accuracy;   /**< (tp + tn) / all edges, 0 when there are none */
} loom_edge_metrics;
/** Edge classification measured on a dataset: runs mode (LOOM_RUN_EVAL for held-out data) over
 * every sample of s once, in steps dealt by a sampler of options o (devices: the program's), and
 * scores each edge at 0.5 (logits > 0) against the samples' edge labels. logits [E] is the
 * model's output; it is kept (loom_program_keep). The program's bounds are left sized for these
 * steps. */
loom_status loom_batch_edge_metrics(loom_program *p, loom_tensor *logits, const loom_samples *s, const loom_sampler_opts *o,
                                    const loom_batch_inputs *in, loom_run_mode mode, loom_edge_metrics *out, loom_error *err);

/** Graph classification measured on a dataset, as loom_batch_edge_metrics measures edges: runs
 * mode over every sample of s once, in steps dealt by a sampler of options o, and writes to
 * *accuracy the fraction of samples whose largest logit (of logits [G, classes], kept) is their
 * graph label. LOOM_ERR_INVALID when s has no graph labels. */
loom_status loom_batch_graph_accuracy(loom_program *p, loom_tensor *logits, const loom_samples *s, const loom_sampler_opts *o,
                                      const loom_batch_inputs *in, loom_run_mode mode, double *accuracy, loom_error *err);

#ifdef __cplusplus
}
#endif
#endif
