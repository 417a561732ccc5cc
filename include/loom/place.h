/** @file
 * Automatic placement: given devices and a memory limit per device, the placements and SBPs a
 * model could train with are compiled, priced by the cost model, and the fastest predicted that
 * fits is chosen; the best few are run and timed, so the choice can be checked against what was
 * measured (docs/placement.md, "Automatic placement").
 *
 *     loom_place_opts o = LOOM_PLACE_OPTS_INIT;
 *     o.devices = "cpu:0-3";
 *     o.train.optimizer = loom_sgd(0.05);
 *     loom_place_result r;
 *     if (loom_place_search(&(loom_place_model){build, feed, &data}, &o, &r, &err) == LOOM_OK)
 *         printf("%s %s\n", r.cand[r.chosen].placement, loom_place_strategy_name(r.cand[r.chosen].strategy));
 *     loom_place_result_free(&r);
 */
#ifndef LOOM_PLACE_H
#define LOOM_PLACE_H

#include "program.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What a model is to the search: build makes it on a new graph that is already placed (inputs,
 * parameters, ops) and returns its loss, or NULL with the graph's error; feed gives a program
 * compiled from that graph one step's inputs (as loom_program_feed does; the steps timed run on
 * what it fed). Both are called once per candidate, with user.
 *
 * stages (optional) makes the same model as a pipeline: its layers cut into nstages consecutive
 * groups, group k on stage[k] (set with loom_graph_set_placement, the value between two stages
 * moved with loom_to_placement; the graph starts placed on stage[0]), its loss returned, or NULL
 * with the graph's error (a model of fewer layers than stages). Without it the search has no
 * pipeline candidates. */
typedef struct loom_place_model {
    loom_tensor *(*build)(loom_graph *g, void *user); /**< builds the model; returns the loss */
    loom_status (*feed)(loom_program *p, loom_graph *g, void *user); /**< feeds one step's inputs */
    void *user;                                                     /**< passed to all three */
    loom_tensor *(*stages)(loom_graph *g, const loom_placement *const *stage, int nstages,
                           void *user); /**< (optional) builds the model as a pipeline; returns the loss */
} loom_place_model;

/** How a candidate places the model on its devices. */
typedef enum loom_place_strategy {
    LOOM_PLACE_ONE_DEVICE, /**< everything on one device */
    LOOM_PLACE_DATA,       /**< inputs split by rows (S(0)), parameters whole on every device (B) */
    LOOM_PLACE_MODEL,      /**< matrix parameters split by columns (S(1)) and the products x W by them, inputs whole (B) */
    LOOM_PLACE_INFERRED,   /**< no hints: SBP inference chooses every tensor's SBP (a hybrid) */
    LOOM_PLACE_MESH,       /**< CPU devices as a mesh of 2 rows: inputs (S(0), B), matrix parameters
                                (B, S(1)) and their products (S(0), S(1)): data parallel across the
                                rows, model parallel within each */
    LOOM_PLACE_PIPELINE,   /**< the model's stages (loom_place_model.stages) on consecutive groups of
                                the devices, data parallel within a group of several, the batch cut
                                into micro-batches (loom_place_candidate.stages, .micro_batches) */
    LOOM_PLACE_STRATEGY_COUNT /**< the number of strategies */
} loom_place_strategy;

/** The strategy's name: "one device", "data", "model", "inferred", "2-D hybrid", "pipeline". */
const char *loom_place_strategy_name(loom_place_strategy s);

/** One candidate: a placement and a strategy, what it was predicted and measured to take. */
typedef struct loom_place_candidate {
    char placement[64];           /**< the devices, as loom_placement_parse takes them */
    loom_place_strategy strategy; /**< how the model was placed on them */
    int stages;                   /**< a pipeline's stages, each of the placement's devices / stages
                                       devices (loom_placement_stage); 1 for the other strategies */
    int micro_batches;            /**< a pipeline's micro-batches a step (0 when none of 8, 4, 2 divides
                                       the batch); 1 for the other strategies */
    int ok;                       /**< 1: compiled and fits; 0: see why */
    double predicted_s;           /**< the cost model's step time; 0 when not ok */
    double measured_s;            /**< seconds a step, the fastest of the timed rounds; -1 when not measured */
    int64_t peak_bytes;           /**< what the memory limit is compared with: on CPU devices the
                                       whole step (they share the host's memory), with the program's
                                       parameters and optimizer state; on GPUs the largest device's */
    char why[256];                /**< when not ok: the compile's message (over the memory limit,
                                       no signature for a hint, micro-batches that do not divide the
                                       batch), or the stage builder's */
} loom_place_candidate;

/** A search's candidates, fastest predicted first (those not ok last), and its choice. */
typedef struct loom_place_result {
    loom_place_candidate *cand; /**< n candidates */
    int n;                      /**< how many */
    int chosen;                 /**< the index of the lowest predicted step that fits (0 when any
                                     fits; -1 when none does) */
    int best_measured;          /**< the index of the lowest measured step; -1 when none measured */
} loom_place_result;

/** How to search. */
typedef struct loom_place_opts {
    const char *devices; /**< the devices the search may use, e.g. "cpu:0-3" or "cuda:0" (a
                              placement); candidates take its first k devices, k = 1, 2, 4, ...
                              and all of them */
    int64_t memory_limit; /**< bytes a GPU may hold, or CPU devices together (they share the host's
                               memory), as loom_train_opts.memory_limit (0: the machine's); a
                               candidate over it is not ok */
    loom_train_opts train; /**< how each candidate is compiled (optimizer, cost model, ...); its
                                memory_limit is the one above */
    int measure; /**< how many of the fastest predicted candidates are run and timed (0: none) */
    int warmup;  /**< steps run before timing each */
    int steps;   /**< steps timed, in 5 rounds of steps / 5, the candidates' rounds interleaved (the fastest kept) */
    int micro_batches; /**< of the pipeline candidates (0: the largest of 8, 4 and 2 that divides
                            the batch, axis 0 of the first input); their schedule is train.schedule
                            (1F1B by default). The others run as train says. */
    FILE *log;   /**< a line per candidate as it is priced and timed; NULL: none */
} loom_place_opts;

/** The defaults: cpu:0-3, no memory limit, LOOM_TRAIN_OPTS_INIT, the best 4 measured over 30 steps
 * after 5 of warm-up, micro-batches chosen by the batch, no log. */
#define LOOM_PLACE_OPTS_INIT                                                                           \
    ((loom_place_opts){.devices = "cpu:0-3", .memory_limit = 0, .train = LOOM_TRAIN_OPTS_INIT, .measure = 4, \
                       .warmup = 5, .steps = 30, .micro_batches = 0, .log = NULL})

/** Searches the placements of m over o->devices: each candidate's graph is built, placed, given the
 * strategy's SBP hints and compiled (with m->stages, pipelines too: on k devices, k / s stages of
 * s devices each for s = 1, 2, 4, ... dividing k, two stages at least); those that compile within
 * the memory limit are priced by the cost model (loom_program_predicted_step), the o->measure
 * fastest predicted are run and timed. out is filled (free it with loom_place_result_free) even
 * when no candidate fits; a stage builder that fails or micro-batches that do not divide the batch
 * leave that candidate not ok, with why. LOOM_ERR_INVALID for bad options (devices that do not
 * parse, measure, warmup, steps, memory_limit or micro_batches negative), the status of a build,
 * feed or run that fails (naming the candidate); LOOM_ERR_NOMEM. */
loom_status loom_place_search(const loom_place_model *m, const loom_place_opts *o, loom_place_result *out,
                              loom_error *err);
/** Frees what a search filled in; a zeroed result is fine. */
void loom_place_result_free(loom_place_result *r);

#ifdef __cplusplus
}
#endif

#endif
