/* Compiling a graph into a program, and running it.
 *
 * loom_compile() differentiates the loss with respect to every parameter it depends on, appends
 * the optimizer's update ops, checks the graph, and returns a program holding the parameters and
 * optimizer state. A program is run on the host's CPU by the reference executor, which executes
 * the logical graph in topological order: it is the oracle every other runtime is checked
 * against. */
#ifndef LOOM_PROGRAM_H
#define LOOM_PROGRAM_H

#include "core.h"
#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum loom_optimizer_kind {
    LOOM_OPT_NONE, /* gradients are computed but parameters never change */
    LOOM_OPT_SGD,
    LOOM_OPT_ADAM,
    LOOM_OPT_KIND_COUNT
} loom_optimizer_kind;

/* SGD: v = momentum*v + (1-dampening)*(g + wd*p); p -= lr * (nesterov ? g + momentum*v : v)
 * (PyTorch's rule). Adam: L2 weight decay added to the gradient, or with decoupled (AdamW)
 * p -= lr*wd*p before the step. */
typedef struct loom_optimizer {
    loom_optimizer_kind kind;
    double lr;
    double momentum, dampening;
    int nesterov;
    double beta1, beta2, eps;
    double weight_decay;
    int decoupled;
} loom_optimizer;

#define loom_sgd(lr_) ((loom_optimizer){.kind = LOOM_OPT_SGD, .lr = (lr_)})
#define loom_adam(lr_) ((loom_optimizer){.kind = LOOM_OPT_ADAM, .lr = (lr_), .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8})
#define loom_adamw(lr_, wd_) \
    ((loom_optimizer){.kind = LOOM_OPT_ADAM, .lr = (lr_), .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = (wd_), .decoupled = 1})

typedef struct loom_train_opts {
    loom_optimizer optimizer;
} loom_train_opts;

typedef struct loom_program loom_program;

/* Compiles g for training loss (a scalar float tensor), or for inference when loss is NULL.
 * opts may be NULL (no optimizer). On failure returns the status and *out is NULL; the message is
 * loom_graph_error(g). Compiling adds the gradient and update tensors to g; the graph must outlive
 * the program, and tensors added to it later are not part of the program. */
loom_status loom_compile(loom_graph *g, loom_tensor *loss, const loom_train_opts *opts, loom_program **out);
void loom_program_free(loom_program *p);
/* The last error of a program call, or NULL. */
const char *loom_program_error(const loom_program *p);

/* Binds data to an input for the following runs. The data is copied; dynamic dims take their size
 * from it (and must not exceed their bounds, nor disagree between inputs). */
loom_status loom_program_feed(loom_program *p, loom_tensor *input, const loom_array *a);
loom_status loom_program_feed_csr(loom_program *p, loom_tensor *input, const loom_csr *m);

typedef enum loom_run_mode {
    LOOM_RUN_EVAL,    /* forward, dropout off */
    LOOM_RUN_FORWARD, /* forward in training mode (dropout on) */
    LOOM_RUN_GRAD,    /* forward and backward in training mode; parameters unchanged */
    LOOM_RUN_STEP,    /* forward, backward and optimizer update; then the step count advances */
    LOOM_RUN_MODE_COUNT
} loom_run_mode;

/* Runs the program once. Random masks depend on the step count, so runs between two STEPs see the
 * same masks. */
loom_status loom_program_run(loom_program *p, loom_run_mode mode);
/* Steps taken so far. */
int64_t loom_program_steps(const loom_program *p);

/* A view of t's value after the last run (or of a parameter at any time): out->data points into
 * the program and stays valid until the next run or feed. Writing a parameter's elements through it
 * sets the parameter. LOOM_ERR_NOT_FOUND when t was not computed by the last run. */
loom_status loom_program_fetch(loom_program *p, loom_tensor *t, loom_array *out);
/* The gradient tensor of a parameter (fetch it after a GRAD or STEP run), or NULL when the loss
 * does not depend on it. */
loom_tensor *loom_program_grad(loom_program *p, loom_tensor *param);

#ifdef __cplusplus
}
#endif
#endif
