/** @file
 * Loom: train neural networks on graphs and images, on CPUs and GPUs, from C.
 *
 * A program starts by building a logical graph. Tensors are made by ops; nothing is computed yet.
 *
 *     loom_graph *g = loom_graph_new();
 *     loom_dim N = loom_dim_dynamic(g, "N", 4096);               // nodes per batch, upper bound
 *     loom_tensor *x   = loom_input(g, "x", LOOM_F32, loom_shape(N, 1433));
 *     loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F32, N, N);
 *     loom_tensor *y   = loom_input(g, "y", LOOM_I32, loom_shape(N));
 *     loom_tensor *out = loom_nn_gcn(g, adj, x, 16, 7, 0.5);       // nn/: built from ops
 *     loom_tensor *loss = loom_softmax_cross_entropy(g, out, y, NULL);
 *
 * Builder calls never abort and need no checks at each line: the first bad call is kept on the
 * graph and compiling reports it. Compiling differentiates the loss, adds the optimizer, and
 * returns a program:
 *
 *     loom_program *prog;
 *     loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;                // the defaults, named
 *     opts.optimizer = loom_adam(0.01);
 *     if (loom_compile(g, loss, &opts, &prog) != LOOM_OK)
 *         fprintf(stderr, "%s\n", loom_graph_error(g));
 *
 * Feed the inputs, run steps, and fetch any tensor or parameter:
 *
 *     loom_program_feed(prog, x, &features);                     // loom_array: dtype, shape, data
 *     loom_program_feed_csr(prog, adj, &dataset.adj);
 *     loom_program_feed(prog, y, &labels);
 *     for (int epoch = 0; epoch < 200; epoch++)
 *         if (loom_program_run(prog, LOOM_RUN_STEP) != LOOM_OK)
 *             fprintf(stderr, "%s\n", loom_program_error(prog));
 *     loom_array l;
 *     loom_program_fetch(prog, loss, &l);                          // a view, valid until next run
 *
 * A checkpoint (a safetensors file: parameters, optimizer state, step count) lets training go on
 * later, in a program built the same way, on any placement:
 *
 *     loom_program_save(prog, "mlp.safetensors");
 *     loom_program_load(prog2, "mlp.safetensors");                // then run prog2's steps
 *
 *     loom_program_free(prog);
 *     loom_graph_free(g);
 *
 * Where it runs: one CPU device by default. Before building, a placement puts the graph on a GPU
 * or on several devices, and Loom infers how each tensor is laid out on them (split, broadcast or
 * partial sum: SBP), inserting the communication itself:
 *
 *     loom_placement *p = loom_placement_parse("cuda:0", NULL);   // or "cpu:0-3"
 *     loom_graph_set_placement(g, p);
 *     loom_placement_free(p);
 *
 * Headers: core.h (status, dtypes, shapes, arrays), graph.h (builder and ops), program.h
 * (compile and run), data.h (npz, IDX files, Fashion-MNIST, Cora, splits, synthetic graphs),
 * images.h (batches of images, normalised and augmented, as a program's data), samples.h (datasets
 * of many small graphs: generated collider events, TU files), batch.h (samplers that deal them into
 * balanced batches), nn.h (layers and models), sbp.h (placements and SBP). */
#ifndef LOOM_LOOM_H
#define LOOM_LOOM_H

#include "batch.h"
#include "core.h"
#include "data.h"
#include "graph.h"
#include "images.h"
#include "nn.h"
#include "place.h"
#include "program.h"
#include "samples.h"
#include "sbp.h"

#endif
