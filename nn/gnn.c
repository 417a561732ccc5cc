/* Graph networks for batches of graph samples: a multilayer perceptron, the interaction network
 * (edge classification) and GIN (graph classification), built from the public ops. On a graph
 * batch split by whole graphs over several devices, every gather, scatter and segment sum here
 * runs on each device's own graphs (the index inputs' (S(0), S(0)) -> S(0) signatures). */
#include <loom/nn.h>

#include <stdio.h>

loom_tensor *loom_nn_mlp(loom_graph *g, const char *name, loom_tensor *x, int depth, const int64_t *widths, loom_activation act)
{
    char ln[64];
    for (int i = 0; i < depth; i++) {
        snprintf(ln, sizeof ln, "%.50s.%d", name ? name : "mlp", i);
        x = loom_nn_linear(g, ln, x, widths[i], 1);
        if (i + 1 < depth)
            x = loom_activate(g, x, act);
    }
    return x;
}

/* A two-layer mlp to `out` features through `hidden`, named "<name>.<part>" or "<name>.<part>.<k>". */
static loom_tensor *mlp2(loom_graph *g, const char *name, const char *part, int k, loom_tensor *x, int64_t hidden,
                         int64_t out)
{
    char mn[64];
    if (k < 0)
        snprintf(mn, sizeof mn, "%.40s.%s", name, part);
    else
        snprintf(mn, sizeof mn, "%.40s.%s.%d", name, part, k);
    return loom_nn_mlp(g, mn, x, 2, (const int64_t[]){hidden, out}, LOOM_ACT_RELU);
}

/* mlp([h[src], h[dst], e]) of an edge's view of itself and its endpoints, without making the
 * view: the first layer's weight [3 hidden, hidden] is one parameter (as loom_nn_linear makes it,
 * so the function and its initialisation are the mlp's over the concatenation), whose slices
 * multiply h before the gathers and e itself: W [a; b; c] = gather(h Wa, src) + gather(h Wb, dst)
 * + e Wc. The products on nodes are the smaller ones, and the backward pass keeps e and the
 * hidden layer instead of the [E, 3 hidden] view (gathers keep only their indices). */
static loom_tensor *edge_mlp(loom_graph *g, const char *name, const char *part, int k, loom_tensor *h, loom_tensor *e,
                             loom_tensor *src, loom_tensor *dst, int64_t hidden, int64_t out)
{
    char mn[64], pn[80];
    if (k < 0)
        snprintf(mn, sizeof mn, "%.40s.%s", name, part);
    else
        snprintf(mn, sizeof mn, "%.40s.%s.%d", name, part, k);
    const int64_t fh = loom_tensor_dim(h, -1), fe = loom_tensor_dim(e, -1);
    const loom_dtype dt = loom_tensor_dtype(h);
    snprintf(pn, sizeof pn, "%s.0.weight", mn);
    loom_tensor *w = loom_param(g, pn, dt, loom_shape(2 * fh + fe, hidden), loom_init_glorot(0));
    snprintf(pn, sizeof pn, "%s.0.bias", mn);
    loom_tensor *b = loom_param(g, pn, dt, loom_shape(hidden), loom_init_zeros());
    loom_tensor *z = loom_add(g, loom_gather_rows(g, loom_matmul(g, h, loom_slice(g, w, 0, 0, fh)), src),
                              loom_gather_rows(g, loom_matmul(g, h, loom_slice(g, w, 0, fh, 2 * fh)), dst));
    z = loom_add(g, z, loom_matmul(g, e, loom_slice(g, w, 0, 2 * fh, 2 * fh + fe)));
    snprintf(pn, sizeof pn, "%s.1", mn);
    return loom_nn_linear(g, pn, loom_relu(g, loom_bias_add(g, z, b)), out, 1);
}

loom_tensor *loom_nn_interaction_network(loom_graph *g, const char *name, loom_tensor *x, loom_tensor *edge_attr,
                                         loom_tensor *src, loom_tensor *dst, int64_t hidden, int rounds)
{
    if (!name)
        name = "in";
    loom_dim n = loom_tensor_dim(x, 0);
    loom_tensor *h = loom_relu(g, mlp2(g, name, "node_enc", -1, x, hidden, hidden));
    /* an edge without features is encoded from its endpoints' */
    loom_tensor *e0 = edge_attr ? edge_attr
                                : loom_concat(g, (loom_tensor *[]){loom_gather_rows(g, h, src), loom_gather_rows(g, h, dst)}, 2, 1);
    loom_tensor *e = loom_relu(g, mlp2(g, name, "edge_enc", -1, e0, hidden, hidden));
    for (int r = 0; r < rounds; r++) {
        e = loom_add(g, e, edge_mlp(g, name, "edge", r, h, e, src, dst, hidden, hidden));
        loom_tensor *in = loom_scatter_add_rows(g, e, dst, n), *out = loom_scatter_add_rows(g, e, src, n);
        h = loom_add(g, h, mlp2(g, name, "node", r, loom_concat(g, (loom_tensor *[]){h, in, out}, 3, 1), hidden, hidden));
    }
    loom_tensor *logit = edge_mlp(g, name, "score", -1, h, e, src, dst, hidden, 1);
    return loom_reshape(g, logit, loom_shape(loom_tensor_dim(src, 0)));
}

loom_tensor *loom_nn_gin(loom_graph *g, const char *name, loom_tensor *x, loom_tensor *src, loom_tensor *dst,
                         loom_tensor *node_graph, loom_dim graphs, int64_t hidden, int layers, int64_t classes)
{
    if (!name)
        name = "gin";
    loom_dim n = loom_tensor_dim(x, 0);
    loom_tensor *h = x;
    for (int l = 0; l < layers; l++) {
        loom_tensor *agg = loom_scatter_add_rows(g, loom_gather_rows(g, h, src), dst, n);
        h = loom_relu(g, mlp2(g, name, "conv", l, loom_add(g, h, agg), hidden, hidden));
    }
    char ln[64];
    snprintf(ln, sizeof ln, "%.50s.head", name);
    return loom_nn_linear(g, ln, loom_segment_sum(g, h, node_graph, graphs), classes, 1);
}
