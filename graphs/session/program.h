/* A compiled program (internal): the graph's ranges per run mode, and the values the reference
 * executor keeps between runs. */
#ifndef LOOM_GRAPHS_PROGRAM_H
#define LOOM_GRAPHS_PROGRAM_H

#include <loom/program.h>

#include <pthread.h>

#include "actors/exec.h"
#include "graphs/builder/graph.h"
#include "graphs/plan/numerics.h"
#include "sbp/infer/infer.h"

struct loom_program {
    loom_graph *g;
    loom_tensor *loss;
    loom_optimizer opt;
    int n;       /* tensors [0, n) belong to the program */
    int fwd_end; /* [0, fwd_end): the model as the user built it */
    int bwd_end; /* [fwd_end, bwd_end): gradients; [bwd_end, n): optimizer updates */
    loom_tensor **grad; /* by id, [0, fwd_end): d loss / d tensor, NULL where none flows */
    int *grad_of;       /* by id: the forward tensor whose gradient it is, or -1 */
    loom__passes passes; /* over g, with grad_of */
    uint8_t *dead;      /* by id: a gradient node no parameter's gradient needs (grad rules build
                           the gradients of every source; those of inputs are never run) */
    loom__value *val;   /* by id */
    size_t *cap;        /* bytes allocated for val[i].data (dense values the program owns) */
    uint8_t *ready;     /* by id: val[i] holds a value (fed, initialised, or computed by the last run) */
    int64_t *dims;      /* by dynamic dim: its size in the current run */
    int64_t step;
    char err[1024];
    loom_executor executor;
    int regst_num;
    int micro;              /* micro-batches per step of the actor executor (1: none) */
    loom_schedule schedule; /* of micro-batches through a pipeline */
    int threads; /* kernel threads: loom_train_opts.threads, or the cores (loom__pool_cores) */
    struct loom__pool *pool; /* the CPU kernels' threads, made at the first run; NULL: one thread */
    int pool_made;
    loom_matmul_precision matmul;
    int check_numerics; /* stop at the first op whose output is not finite (graphs/plan/numerics.c) */
    int64_t memory_limit; /* bytes a plan may take */
    int memory_limit_given; /* by the caller (else the host's memory) */
    uint8_t *keep;              /* by id: kept by request */
    struct loom__exec *exec[LOOM_RUN_MODE_COUNT]; /* built at a mode's first run */
    struct loom__plan *plan[LOOM_RUN_MODE_COUNT]; /* a mode's plan before its executor takes it */
    /* loom_program_cancel comes from any thread: it reads only these two, under the lock */
    pthread_mutex_t run_lock;
    struct loom__exec *running; /* the actor plan of the run in progress, or NULL */
    int cancel_pending;         /* a cancel no run has consumed yet: the next run ends at once */
    loom_source_fn source;
    void *source_ctx;
    double *losses;
    int64_t nlosses, losses_cap;
    int trace_record; /* the runtimes record every act (tests read them) */
    char trace_err[512]; /* why the last run's trace ($LOOM_TRACE) was not written, "" when it was */
    int ndevices;        /* of the graph's placement */
    int local_devices;   /* of them, this process's (its rank's; plan_only: plan_rank's) */
    int plan_only;       /* compiled for the plan of rank plan_rank alone (loom_train_opts.plan_only): not run */
    int plan_rank;
    loom__sbp_plan sbp;  /* with more than one device: every tensor's SBP */
    loom__cost_model cost; /* what SBP inference chose by, and `loom plan` prints */
    uint64_t *feed_version; /* by id: the feed count when an input was last fed (plans re-stage it) */
    uint64_t feeds;
    /* by id: the actor plan whose devices hold the newest value of a parameter or optimizer
     * state, or NULL when the program's own value is the newest (one CPU device: always) */
    struct loom__exec **holder;
    /* For the signature tests: with part.sig set, the one-device reference executor runs every op
     * as that part (the kctx's sig, part, nparts and offsets). */
    loom__kctx part;
    /* what the actor plans see of the program: its values, options and where their results go */
    loom__exec_env env;
};

/* Builds gradient nodes of loss for every tensor it depends on through differentiable edges;
 * grads (indexed by id, loss->id + 1 entries, zeroed by the caller) receives them. */
loom_status loom__autodiff(loom_graph *g, loom_tensor *loss, loom_tensor **grads);

/* Reads the calibration at path into *cm (graphs/session/calibrate.c): LOOM_ERR_IO or
 * LOOM_ERR_FORMAT with the message naming path (and the byte offset), cm unchanged. */
loom_status loom__cost_load(const char *path, loom__cost_model *cm, loom_error *err);
/* 1 when m's figures can price anything: a link at least, bandwidths positive, latencies not
 * below 0, all finite (graphs/session/traffic.c). */
int loom__link_model_ok(const loom_link_model *m);
/* The program's SBP plan: its own with several devices, else the one-device plan (every tensor B)
 * made in *one, which the caller frees when that is what it got; NULL when out of memory. */
const loom__sbp_plan *loom__program_sbp_view(const loom_program *p, loom__sbp_plan *one);
/* The step p's plan predicts under cm (its one-device view too) into *out; -1 when out of memory. */
int loom__program_predict(const loom_program *p, const loom__cost_model *cm, loom__prediction *out);
/* Makes mode's plan and checks it against the memory limit (a refusal names api). */
loom_status loom__program_plan(loom_program *p, loom_run_mode mode, const char *api);
/* The program's own step: the mode loom_compile plans (bounds.c). */
loom_run_mode loom__program_own_mode(const loom_program *p);
/* The program's logical side as a plan is made from it (its error buffer for messages). */
loom__plan_src loom__program_plan_src(loom_program *p);
/* LOOM_OK when plan pl fits the program's memory limit, else LOOM_ERR_NOMEM with the refusal
 * (naming api, the device, the bytes needed and the limit). */
loom_status loom__program_plan_fits(loom_program *p, const struct loom__plan *pl, const char *api);
/* The bytes plan pl is held to the memory limit by: on CPU devices the whole step with the
 * program's own parameters and optimizer state (they share the host's memory), on GPUs the
 * largest device's; INT64_MAX past an int64. */
int64_t loom__program_plan_needs(loom_program *p, const struct loom__plan *pl);
/* Makes pl the plan of its mode (the program's), replacing that mode's plan and actors. */
void loom__program_set_plan(loom_program *p, struct loom__plan *pl);
/* Mode's plan as made so far (its executor's, or the one made before it), or NULL. */
const struct loom__plan *loom__program_plan_of(const loom_program *p, loom_run_mode mode);
/* Records a program error (printf style) and returns s. */
loom_status loom__program_fail(loom_program *p, loom_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Allocates (or reuses) val[id]'s dense storage for a concrete shape; LOOM_ERR_NOMEM, or
 * LOOM_ERR_SHAPE when its byte count is over an int64. */
loom_status loom__value_reserve(loom_program *p, int id, loom_dtype dtype, int ndim, const int64_t *shape);
/* Makes the program's value of parameter or state id the newest (copied back from the devices
 * that hold it); a caller may then read or write it. */
loom_status loom__program_pull(loom_program *p, int id);

/* Makes room for `more` losses in the loss history; LOOM_ERR_NOMEM (the history unchanged). */
loom_status loom__losses_reserve(loom_program *p, int64_t more);

/* Frees the actor plans (after a change that they depend on: kept tensors, input sizes). */
void loom__program_drop_plans(loom_program *p);

/* Takes every dynamic dim's size (p->dims) from the inputs of [0, end) that carry it; they must
 * agree, and every input must be fed. */
loom_status loom__bind_dims(loom_program *p, int end);
/* The reference executor of an SBP plan on p->ndevices devices (graphs/session/sbp_reference.c): tensors
 * [0, end) in id order, each op once per device on local values, boxing on the host. */
loom_status loom__sbp_reference_run(loom_program *p, int end, int training);

/* The reference executor: runs tensors [begin, end) in id order on the host. */
loom_status loom__reference_run(loom_program *p, int begin, int end, int training);

#endif
