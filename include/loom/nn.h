/* Layers and models built from the public ops. */
#ifndef LOOM_NN_H
#define LOOM_NN_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/* y = x w + b: x [..., in], w [in, out] (Glorot), b [out] (zeros). Parameters are named
 * "<name>.weight" and "<name>.bias"; bias 0 leaves it out. */
loom_tensor *loom_nn_linear(loom_graph *g, const char *name, loom_tensor *x, int64_t out_features, int bias);

/* One graph convolution (Kipf & Welling): act(D^-1/2 (A + I) D^-1/2 x w + b) with adj [N, N] CSR
 * without self loops and x [N, in]. The degree normalisation of adj is computed once per graph and
 * shared by every layer on the same adjacency. Parameters "<name>.weight", "<name>.bias". */
loom_tensor *loom_nn_gcn_layer(loom_graph *g, const char *name, loom_tensor *adj, loom_tensor *x, int64_t out_features,
                               loom_activation act);

/* Two-layer GCN for node classification: dropout, gcn(hidden, relu), dropout, gcn(classes).
 * Returns logits [N, classes]. Layers are named "gcn1" and "gcn2". */
loom_tensor *loom_nn_gcn(loom_graph *g, loom_tensor *adj, loom_tensor *x, int64_t hidden, int64_t classes, double dropout);

/* Fraction of rows (with mask[i] != 0; all rows when mask is NULL) whose largest logit is at the
 * label: logits [N, C] f32 or f64, labels [N] i32, mask [N] u8. 0 when no row counts; -1 when the
 * arrays do not fit together. */
double loom_accuracy(const loom_array *logits, const loom_array *labels, const loom_array *mask);

#ifdef __cplusplus
}
#endif
#endif
