/* Models trained the same way on any placement, for the placement-equivalence tests (CPU devices
 * in test_sbp_equiv.c, a GPU in gpu_exec.c): seeded data, a few steps, losses and parameters. */
#ifndef LOOM_TESTS_EQUIV_H
#define LOOM_TESTS_EQUIV_H

#include "harness.h"

enum { LT_STEPS = 3 };
enum lt_mode { LT_DATA, LT_MODEL, LT_HYBRID, LT_MODE_COUNT };
extern const char *const lt_mode_name[LT_MODE_COUNT];

/* 0 by default: each mode's hints are single SBPs (on a mesh, the same on both levels). 1: on a
 * 2-D placement, hybrid parallelism takes batches (S(0), B) and split weights (B, S(i)): data
 * parallel over the mesh's rows, model parallel along each row. */
extern int lt_mesh_hybrid;

typedef struct lt_result {
    double loss[LT_STEPS];
    double params[256];
    int nparams;
} lt_result;

/* Builds a model on g (its inputs into in[0 .. *nin - 1]) and returns its loss; mode picks the
 * SBP hints of data, model or hybrid parallelism. */
typedef loom_tensor *(*lt_build_fn)(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin);

/* MLP 6 -> 5 -> 3 on a batch of 7, f32. */
loom_tensor *lt_model_mlp(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin);
/* 2-layer GCN on a fixed graph of 9 nodes, f64, no dropout. */
loom_tensor *lt_model_gcn(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin);
/* The same GCN with dropout 0.5 (masks must agree across devices bit for bit). */
loom_tensor *lt_model_gcn_dropout(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin);
/* 2-layer GAT on the same graph with a self loop per node, f64, dropout 0.3 (inputs and attention). */
loom_tensor *lt_model_gat(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin);
/* A two-stage pipeline: fc1 and tanh on the graph's placement, the hidden values moved
 * (loom_to_placement) to lt_stage2's placement, fc2 and the loss there; one placement when
 * lt_stage2 is NULL. Model parallelism splits fc2's weight, hybrid fc1's too. */
loom_tensor *lt_model_pipeline(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin);
extern const char *lt_stage2;
/* An embedding: rows of a [9, 4] table gathered at 7 indices, then a linear classifier; model and
 * hybrid parallelism split the table by rows (each device gathers the rows it holds). */
loom_tensor *lt_model_embedding(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin);
/* lt_random_graph's DAG of ops. */
loom_tensor *lt_model_random(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin);

typedef struct lt_train_opts {
    const char *placement;  /* "cpu:0", "cpu:0-3", "cuda:0" ... */
    loom_executor executor;
    int with_source;        /* feed every step through loom_program_set_source instead of loom_program_feed */
} lt_train_opts;

/* Trains LT_STEPS steps (Adam for odd seeds, SGD with momentum for even ones) and returns the
 * losses and every parameter's elements. Fails the test on any error. */
void lt_train(lt_build_fn build, uint64_t seed, enum lt_mode m, const lt_train_opts *o, lt_result *r);

/* Two-stage pipelines (lt_model_pipeline) on each pair of placements, each mode, seeds
 * [0, nseeds): the SBP reference executor against one device, the actor runtime (fed directly and
 * by a data source) against it bit for bit. Returns the cases run. */
int lt_check_pipelines(const char *const (*stages)[2], int nstages, int nseeds);
/* 1 when a and b are the same bits. */
int lt_results_same(const lt_result *a, const lt_result *b);
/* |a - b| <= tol * max(1, |b|) for every loss and parameter, naming the first that is not. */
void lt_assert_results_close(const lt_result *a, const lt_result *b, double tol, const char *what);

#endif
