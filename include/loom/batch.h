/* Batches of graph samples: samplers that deal a dataset's samples into steps, each step one share
 * per data-parallel device.
 *
 * Every sampler visits every sample of its list exactly once per epoch, and an epoch's steps
 * depend on (seed, epoch) alone. Sizes are measured in nodes, edges, or the bytes of a sample's
 * tensors in a batch (loom_samples_bytes). A step holds one share per device (opts.devices, 1 by
 * default); shares of one step may be empty when there are fewer samples than devices. Ties in
 * size are broken by id, so that the steps are deterministic. */
#ifndef LOOM_BATCH_H
#define LOOM_BATCH_H

#include "samples.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum loom_sampler_kind {
    LOOM_SAMPLER_RANDOM,  /* shuffled, `batch` samples a step: the baseline */
    LOOM_SAMPLER_BALANCE, /* the largest `fraction` of the samples dealt round-robin over the
                             epoch's steps (in a shuffled order of steps, passing over the short
                             last step once it is full), the rest shuffled in (Lee et al., 2024);
                             a step lists its large samples first */
    LOOM_SAMPLER_OUTLIER, /* stress case: the largest samples one per step, the rest shuffled in */
    LOOM_SAMPLER_SKEW,    /* stress case: steps of the largest samples together, in size order;
                             the full steps in a shuffled order, the short one last */
    LOOM_SAMPLER_BUDGET,  /* greedy packing under max_nodes and max_edges per share (shuffled, or
                             largest first with `sort`, then the steps in a shuffled order): each
                             sample into the least loaded share of the step that fits it; one that
                             fits none closes the step */
    LOOM_SAMPLER_DEVICES, /* `batch` samples a step, dealt over the devices largest first into the
                             least loaded share, so that the largest share is as small as possible */
    LOOM_SAMPLER_PLAN,    /* budget packing to a device memory limit: the budget comes from the
                             program's memory plan (loom_batch_fit_plan) */
    LOOM_SAMPLER_KIND_COUNT
} loom_sampler_kind;

typedef enum loom_size_kind {
    LOOM_SIZE_BYTES, /* loom_samples_bytes */
    LOOM_SIZE_NODES,
    LOOM_SIZE_EDGES,
    LOOM_SIZE_KIND_COUNT
} loom_size_kind;

typedef struct loom_sampler_opts {
    loom_sampler_kind kind;
    int64_t batch;        /* samples per step (random, balance, outlier, skew, devices); >= 1 */
    int devices;          /* shares per step (1 to 1024); a step's samples are dealt over them: in
                             order, its j-th sample to device j % devices (random, balance, outlier,
                             skew), by size (devices), or packed under the budget (budget, plan) */
    loom_size_kind size;  /* what "largest" means */
    double fraction;      /* balance: in (0, 1] */
    int64_t max_nodes, max_edges; /* budget and plan: per share; 0 is no bound on that measure */
    int sort;             /* budget and plan: largest first instead of shuffled */
    uint64_t seed;
} loom_sampler_opts;

/* The defaults: random, 32 samples a step, one device, sizes in bytes, fraction 0.1, no budget. */
#define LOOM_SAMPLER_OPTS_INIT                                                                            \
    ((loom_sampler_opts){.kind = LOOM_SAMPLER_RANDOM, .batch = 32, .devices = 1, .size = LOOM_SIZE_BYTES, \
                         .fraction = 0.1, .max_nodes = 0, .max_edges = 0, .sort = 0, .seed = 0})

/* "random", "balance", ... as the kinds are named above; NULL for a bad kind. */
const char *loom_sampler_kind_name(loom_sampler_kind k);
/* The kind named `name`; LOOM_ERR_INVALID (listing the names) when there is none. */
loom_status loom_sampler_kind_parse(const char *name, loom_sampler_kind *out, loom_error *err);

typedef struct loom_sampler loom_sampler;

/* A sampler over samples ids[0 .. n-1] of s (ids NULL: all of them, in order, and n is s->count);
 * s must outlive it. LOOM_ERR_INVALID names a bad option or id, or a sample larger than the whole
 * budget (naming it and its sizes); an empty list and a repeated id are LOOM_ERR_INVALID too.
 * batch, fraction and the budget are checked only for the kinds that use them. */
loom_status loom_sampler_new(const loom_samples *s, const int64_t *ids, int64_t n, const loom_sampler_opts *o,
                             loom_sampler **out, loom_error *err);
void loom_sampler_free(loom_sampler *smp);
/* Deals the steps of epoch `epoch` (>= 0); the queries below describe them until the next call. */
loom_status loom_sampler_epoch(loom_sampler *smp, int64_t epoch, loom_error *err);
/* Steps of the epoch dealt last (0 before the first). */
int64_t loom_sampler_steps(const loom_sampler *smp);
/* The sample ids of device d's share of step k; *n of them (0 and NULL for an empty share, or a
 * step or device out of range). */
const int64_t *loom_sampler_share(const loom_sampler *smp, int64_t k, int d, int64_t *n);
/* Nodes and edges of device d's share of step k. */
void loom_sampler_share_size(const loom_sampler *smp, int64_t k, int d, int64_t *nodes, int64_t *edges);
/* The largest share of the epoch in nodes and in edges (each the maximum over all shares), and the
 * step and device of the share with the most bytes (the first such); 0, 0, -1 and -1 before the
 * first epoch. Any output may be NULL. */
void loom_sampler_largest(const loom_sampler *smp, int64_t *nodes, int64_t *edges, int64_t *step, int *device);
const loom_sampler_opts *loom_sampler_options(const loom_sampler *smp);

#ifdef __cplusplus
}
#endif
#endif
