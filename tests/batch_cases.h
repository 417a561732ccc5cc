/* Graph batches for tests: seeded random graph samples, the interaction network and GIN built on
 * them, and a data source that feeds one device the shares of a several-device sampler joined, so
 * that a run on cpu:0-3 (split by whole graphs) and one on one device see the same logical batches. */
#ifndef LOOM_TESTS_BATCH_CASES_H
#define LOOM_TESTS_BATCH_CASES_H

#include <loom/loom.h>

/* count random graphs: 2 to 40 nodes (a heavy tail), about 2 edges per node inside each graph,
 * 5 node and 4 edge features N(0, 1), edge labels 0/1 (a function of the features, so that a
 * model can learn them), graph labels in [0, 3). */
void lt_make_samples(loom_samples *s, int64_t count, uint64_t seed);

typedef struct lt_batch_model {
    loom_graph *g;
    loom_program *p;
    loom_batch_inputs in;
    loom_tensor *out, *loss;
} lt_batch_model;

/* The models of lt_batch_model_new. */
enum lt_batch_kind { LT_BATCH_IN, LT_BATCH_GIN, LT_BATCH_GAT };

/* The interaction network (LT_BATCH_IN: hidden 8, 2 rounds) with BCE on the edge labels; GIN
 * (LT_BATCH_GIN: hidden 8, 2 layers) or GAT (LT_BATCH_GAT: 2 heads of 4, ELU, one head of 4,
 * dropout 0.2 on the attention, each graph's mean through a linear layer) with cross entropy on
 * the graph labels; on placement (NULL: one CPU device), compiled with Adam. Fails the test on
 * error. */
void lt_batch_model_new(lt_batch_model *m, const loom_samples *s, const char *placement, enum lt_batch_kind kind,
                        uint64_t seed);
void lt_batch_model_free(lt_batch_model *m);

/* A data source for a one-device program: step k feeds the shares of step k of smp (any number
 * of devices) joined in device order, as one part. */
typedef struct lt_joined_source {
    const loom_samples *s;
    const loom_sampler *smp;
    const loom_batch_inputs *in;
    int64_t next;
} lt_joined_source;
loom_status lt_joined_source_fn(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen);

/* Trains epochs of smp on m (its devices' shares fed by parts, loom_batch_source) and returns the
 * losses (malloc'd, *n of them). */
double *lt_batch_train_parts(lt_batch_model *m, const loom_samples *s, loom_sampler *smp, int epochs, int64_t *n);
/* 48 generated samples (seed 7) in *s and a sampler of `kind` over them for ndev devices: 12
 * samples a step, seed 5 (budgets of 60 nodes and 120 edges a share). */
loom_sampler *lt_batch_sampler(loom_samples *s, int ndev, loom_sampler_kind kind);
/* Trains 2 epochs of a sampler of `kind` over ndev devices on placement (its shares fed by parts)
 * and on one device (each step's shares joined), the model of that kind, and checks the losses
 * within 1e-5. Fails the test otherwise. */
void lt_batch_equivalence(enum lt_batch_kind model, const char *placement, int ndev, loom_sampler_kind kind);

#endif
