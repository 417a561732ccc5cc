/** @file
 * Layers and models built from the public ops. */
#ifndef LOOM_NN_H
#define LOOM_NN_H

#include "graph.h"

#ifdef __cplusplus
extern "C" {
#endif

/** y = x w + b: x [..., in], w [in, out] (Glorot), b [out] (zeros). Parameters are named
 * "<name>.weight" and "<name>.bias"; bias 0 leaves it out. */
loom_tensor *loom_nn_linear(loom_graph *g, const char *name, loom_tensor *x, int64_t out_features, int bias);

/** One graph convolution (Kipf & Welling): act(D^-1/2 (A + I) D^-1/2 x w + b) with adj [N, N] CSR
 * without self loops and x [N, in]. The degree normalisation of adj is computed once per graph and
 * shared by every layer on the same adjacency. Parameters "<name>.weight", "<name>.bias". */
loom_tensor *loom_nn_gcn_layer(loom_graph *g, const char *name, loom_tensor *adj, loom_tensor *x, int64_t out_features,
                               loom_activation act);

/** Two-layer GCN for node classification: dropout, gcn(hidden, relu), dropout, gcn(classes).
 * Returns logits [N, classes]. Layers are named "gcn1" and "gcn2". */
loom_tensor *loom_nn_gcn(loom_graph *g, loom_tensor *adj, loom_tensor *x, int64_t hidden, int64_t classes, double dropout);

/** Options of a graph attention layer (loom_nn_gat_layer); start from LOOM_GAT_OPTS_INIT. */
typedef struct loom_gat_opts {
    int64_t heads;         /**< attention heads, each with its own weights and attention (>= 1) */
    int concat;            /**< 1: the heads' outputs side by side [N, heads * out]; 0: their mean [N, out] */
    double negative_slope; /**< leaky ReLU of the attention scores (>= 0) */
    double dropout;        /**< dropout on the attention coefficients in training, in [0, 1) */
    int bias;              /**< 1: a bias [heads * out] (concat) or [out] (mean) added last; 0: none */
} loom_gat_opts;

/** One head, concatenated, slope 0.2, no attention dropout, a bias: PyG's GATConv defaults. */
#define LOOM_GAT_OPTS_INIT \
    ((loom_gat_opts){.heads = 1, .concat = 1, .negative_slope = 0.2, .dropout = 0.0, .bias = 1})

/** One graph attention layer (Velickovic et al. 2018, as PyG's GATConv computes it). x [N, in] is
 * projected per head, h = x W ([in, heads * out], Glorot, "<name>.lin.weight") viewed [N, heads,
 * out]. Each edge j -> i (src [E] and dst [E] i32 index inputs over N, e.g. loom_input_index or
 * loom_csr_edges' arrays) scores leaky_relu(a_src . h[j] + a_dst . h[i]) per head (a_src, a_dst
 * [heads, out], Glorot, "<name>.att_src", "<name>.att_dst"); the scores are normalised over each
 * node's in-edges by loom_segment_softmax, dropped out with opts->dropout in training (per edge and
 * head), and node i receives the sum over its in-edges of coefficient times h[j]. The heads are
 * concatenated or averaged (opts->concat), then the bias ("<name>.bias", zeros) added; no
 * activation. Self loops are not added here: PyG adds one per node, and so should the edges given
 * (loom_csr_edges with self_loops); a node without in-edges gets the bias alone. opts NULL:
 * LOOM_GAT_OPTS_INIT. A bad argument is recorded on the graph naming the layer. */
loom_tensor *loom_nn_gat_layer(loom_graph *g, const char *name, loom_tensor *x, loom_tensor *src, loom_tensor *dst,
                               int64_t out_features, const loom_gat_opts *opts);

/** Two-layer GAT for node classification, PyG's example for Cora: dropout, gat(hidden per head,
 * heads, concatenated, attention dropout), ELU, dropout, gat(classes, one head, attention
 * dropout), every dropout of rate `dropout`. Returns logits [N, classes]. Layers are named "gat1"
 * and "gat2". */
loom_tensor *loom_nn_gat(loom_graph *g, loom_tensor *x, loom_tensor *src, loom_tensor *dst, int64_t heads, int64_t hidden,
                         int64_t classes, double dropout);

/** A multilayer perceptron: depth linear layers (with biases) of widths[0 .. depth-1] features, act
 * between them and none after the last. Layers are named "<name>.0", "<name>.1", ... */
loom_tensor *loom_nn_mlp(loom_graph *g, const char *name, loom_tensor *x, int depth, const int64_t *widths, loom_activation act);

/** An interaction network for edge classification on a graph batch (Battaglia et al. 2016, as the
 * Exa.TrkX track finders use it): x [N, F] node features, edge_attr [E, Fe] edge features (or
 * NULL), src and dst [E] index inputs over N (loom_input_index). Nodes and edges are encoded to
 * `hidden` features; then, `rounds` times, each edge is updated from its endpoints and itself
 * (e += mlp([h[src], h[dst], e])) and each node from the sum of its edges' messages in and out
 * (h += mlp([h, sum_in e, sum_out e])); a last mlp scores each edge. Every mlp has two layers with
 * ReLU. Returns the edge logits [E]: train with loom_bce_with_logits. Parameters are named
 * "<name>.node_enc.0", "<name>.edge.<round>.1", ... */
loom_tensor *loom_nn_interaction_network(loom_graph *g, const char *name, loom_tensor *x, loom_tensor *edge_attr,
                                         loom_tensor *src, loom_tensor *dst, int64_t hidden, int rounds);

/** A graph isomorphism network for graph classification (Xu et al. 2019, GIN-0): `layers` rounds of
 * h = mlp(h + sum of h over in-edges) with src, dst [E] index inputs over N, each mlp two layers
 * of `hidden` with ReLU; then the sum of each graph's nodes (node_graph [N], an index input over
 * the graphs dim G) through a linear layer to `classes` logits [G, classes]. */
loom_tensor *loom_nn_gin(loom_graph *g, const char *name, loom_tensor *x, loom_tensor *src, loom_tensor *dst,
                         loom_tensor *node_graph, loom_dim graphs, int64_t hidden, int layers, int64_t classes);

/** A 2-D convolution layer: weight [out, in, kernel, kernel] and bias [out] drawn from
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in * kernel^2 (PyTorch's Conv2d default), named
 * "<name>.weight" and "<name>.bias"; bias 0 leaves it out. x [N, in, H, W]. */
loom_tensor *loom_nn_conv2d(loom_graph *g, const char *name, loom_tensor *x, int64_t out_channels, int kernel, int stride,
                            int pad, int bias);

/** @{ */
/** CNNs for [N, C, H, W] images (28x28 Fashion-MNIST and the like), returning logits [N, classes]:
 * LeNet-5 (conv 6 5x5 pad 2, ReLU, max pool 2; conv 16 5x5, ReLU, max pool 2; fc 120, 84, classes
 * with ReLU between); the ConvNet (conv 64 3x3 pad 1, ReLU, max pool 2; conv 128 3x3 pad 1, ReLU,
 * max pool 2; fc 256, ReLU, fc classes); ResNet-20 (He et al. 2016: conv 16 3x3 with batch norm,
 * three stages of three basic blocks of 16, 32 and 64 channels, the second and third halving the
 * size with a 1x1 convolution and batch norm on the shortcut, global average pooling, fc; each
 * batch norm followed by a ReLU, with the residual add where there is one, is one fused op,
 * loom_batch_norm_relu). */
loom_tensor *loom_nn_lenet5(loom_graph *g, loom_tensor *x, int64_t classes);
loom_tensor *loom_nn_convnet(loom_graph *g, loom_tensor *x, int64_t classes);
loom_tensor *loom_nn_resnet20(loom_graph *g, loom_tensor *x, int64_t classes);
/** @} */

/** Fraction of rows (with mask[i] != 0; all rows when mask is NULL) whose largest logit is at the
 * label: logits [N, C] f32 or f64, labels [N] i32, mask [N] u8. 0 when no row counts; -1 when the
 * arrays do not fit together. */
double loom_accuracy(const loom_array *logits, const loom_array *labels, const loom_array *mask);

#ifdef __cplusplus
}
#endif
#endif
