/* The pipeline model of the micro-batch tests: an MLP of LT_PIPE_LAYERS layers, layer k on stage
 * k * nstages / LT_PIPE_LAYERS of a pipeline (each stage a placement, on one process or over ranks),
 * trained LT_PIPE_STEPS steps on seeded batches with or without micro-batches, so that any pipeline
 * can be compared with the same model on one device (same seeds, same data). */
#ifndef LOOM_TESTS_PIPE_CASES_H
#define LOOM_TESTS_PIPE_CASES_H

#include <loom/loom.h>

enum { LT_PIPE_ROWS = 32, LT_PIPE_FEAT = 6, LT_PIPE_STEPS = 4, LT_PIPE_LAYERS = 4, LT_PIPE_MAXP = 512 };

typedef struct lt_pipe_opts {
    const char *stage[LT_PIPE_LAYERS]; /* the placement of each stage; nstages of them */
    int nstages;
    int micro;
    loom_schedule schedule;
    int dynamic;     /* the batch is a dynamic dim N (bound 40), else a static 32 */
    double dropout;  /* after layer 1 */
    int with_source; /* a data source feeds each step's own batch, else one batch fed for every step */
    int adam;
    int trace;
} lt_pipe_opts;

typedef struct lt_pipe_result {
    double loss[LT_PIPE_STEPS];
    double param[LT_PIPE_MAXP];
    int nparam;
} lt_pipe_result;

typedef struct lt_pipe_model {
    loom_graph *g;
    loom_tensor *x, *y, *logits, *loss;
    loom_program *p;
    int dynamic;
} lt_pipe_model;

/* Builds the model's graph in m (not compiled). */
void lt_pipe_build(lt_pipe_model *m, const lt_pipe_opts *o);
/* Builds and compiles it, feeds step 0's batch and sets the data source when o asks for one. */
void lt_pipe_compile(lt_pipe_model *m, const lt_pipe_opts *o);
void lt_pipe_model_free(lt_pipe_model *m);
/* Trains LT_PIPE_STEPS steps (two runs: the second goes on from the first) and reads the losses and
 * every parameter into r. Fails the test on any error. */
void lt_pipe_train(const lt_pipe_opts *o, lt_pipe_result *r);
/* o's EVAL and GRAD runs (its logits, loss and parameters' gradients) against one device's with
 * the whole batch, within 1e-5: a step's values joined or summed from its micro-batches. */
void lt_pipe_check_modes(const lt_pipe_opts *o);
/* Trains o, then compiles it into m, writes m's plan as JSON to path (a new temporary file),
 * reads it back into m and trains m: the same losses bit for bit. Returns the JSON text (the
 * caller frees it and unlinks path; m stays compiled, its plan the one read back). */
char *lt_pipe_read_back(const lt_pipe_opts *o, lt_pipe_model *m, char *path);
/* Losses and parameters of a and b within tol (relative above 1); records a's losses. */
void lt_pipe_assert_close(const lt_pipe_result *a, const lt_pipe_result *b, double tol, const char *what);

#endif
