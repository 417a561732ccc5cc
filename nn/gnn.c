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

/* [h[src], h[dst], e]: an edge's view of itself and its endpoints. */
static loom_tensor *edge_view(loom_graph *g, loom_tensor *h, loom_tensor *e, loom_tensor *src, loom_tensor *dst)
{
    loom_tensor *parts[3] = {loom_gather_rows(g, h, src), loom_gather_rows(g, h, dst), e};
    return loom_concat(g, parts, 3, 1);
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
        e = loom_add(g, e, mlp2(g, name, "edge", r, edge_view(g, h, e, src, dst), hidden, hidden));
        loom_tensor *in = loom_scatter_add_rows(g, e, dst, n), *out = loom_scatter_add_rows(g, e, src, n);
        h = loom_add(g, h, mlp2(g, name, "node", r, loom_concat(g, (loom_tensor *[]){h, in, out}, 3, 1), hidden, hidden));
    }
    loom_tensor *logit = mlp2(g, name, "score", -1, edge_view(g, h, e, src, dst), hidden, 1);
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
