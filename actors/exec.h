/* Running a physical plan on the actor runtime: one actor per task, register buffers carved from
 * one arena per device, tokens that carry each value's real sizes.
 *
 * An executor is built from a plan and an environment, never from a program: the environment is
 * where values live between runs (fed data, parameters and optimizer state, kept values, by the
 * plan's tensor ids), the options of a run, and where results and failures go. The program fills
 * one with its own tables (graphs/session/run.c); a test may fill one with its own. */
#ifndef LOOM_ACTORS_EXEC_H
#define LOOM_ACTORS_EXEC_H

#include <loom/program.h>

#include "graphs/plan/plan.h"

typedef struct loom__exec loom__exec;

typedef struct loom__exec_env {
    loom__value *val;             /* by id: fed inputs, parameters' and state's values, kept values */
    uint8_t *ready;               /* by id: val holds a value (an executor clears what it keeps, then sets it) */
    const uint64_t *feed_version; /* by id: when an input was last fed (executors re-stage it after) */
    loom__exec **holder;          /* by id: the executor whose devices hold the newest value of a
                                     parameter or state, NULL when val's is the newest */
    int64_t step;                 /* optimizer steps taken before the run */
    loom_source_fn source;        /* a data source, or NULL: inputs come from val */
    void *source_ctx;
    const loom_graph *graph;      /* the graph whose input handles a source's feeder takes */
    struct loom__pool *pool;      /* the CPU kernels' threads, or NULL */
    loom_matmul_precision matmul;
    int check_numerics;
    int trace_record;             /* the runtime records every act (tests read them) */
    char *err;                    /* a failure's message goes here (err_size bytes) */
    size_t err_size;
    char *trace_err;              /* why the run's trace was not written, "" when it was */
    size_t trace_err_size;
    void *owner;                  /* given back to the two calls below */
    /* Makes val[id] a dense value of dtype and shape (reusing its storage); LOOM_ERR_NOMEM. */
    loom_status (*reserve)(void *owner, int id, loom_dtype dtype, int ndim, const int64_t *shape);
    /* A training step's loss reached the host; LOOM_ERR_NOMEM when it cannot be recorded. */
    loom_status (*loss)(void *owner, double value);
} loom__exec_env;

/* Builds the actors of plan pl (which the exec then owns) over env, which must outlive it. NULL
 * with env's err set. */
loom__exec *loom__exec_new(loom__plan *pl, loom__exec_env *env);
void loom__exec_free(loom__exec *x);
/* Runs `pieces` steps; kept values and parameters are in env's values afterwards. */
loom_status loom__exec_run(loom__exec *x, int64_t pieces);
const loom__plan *loom__exec_plan(const loom__exec *x);
/* Cancels the run in progress (any thread): it drains, see runtime/runtime.h. */
void loom__exec_cancel(loom__exec *x);
/* Takes back a cancel that came too late for the run it was meant for: 1 if there was one. */
int loom__exec_take_cancel(loom__exec *x);
/* Copies parameter or state id from the devices back into env's value and makes that the newest. */
loom_status loom__exec_pull(loom__exec *x, int id);
/* The runtime, for tests that read its trace. */
struct loom__rt *loom__exec_runtime(loom__exec *x);

#endif
