/* Layers built from the public ops: linear and graph convolution. */
#include <loom/nn.h>

#include <stdio.h>

#include "graphs/builder/graph.h"

loom_tensor *loom_nn_linear(loom_graph *g, const char *name, loom_tensor *x, int64_t out_features, int bias)
{
    char pn[64];
    int64_t in = loom_tensor_ndim(x) > 0 ? loom_tensor_dim(x, -1) : 0;
    snprintf(pn, sizeof pn, "%s.weight", name ? name : "linear");
    loom_tensor *w = loom_param(g, pn, loom_tensor_dtype(x), loom_shape(in, out_features), loom_init_glorot(0));
    loom_tensor *y = loom_matmul(g, x, w);
    if (!bias)
        return y;
    snprintf(pn, sizeof pn, "%s.bias", name ? name : "linear");
    return loom_bias_add(g, y, loom_param(g, pn, loom_tensor_dtype(x), loom_shape(out_features), loom_init_zeros()));
}

/* D^-1/2 of A + I as a column [N, 1], made once per adjacency and found again by name. */
static loom_tensor *gcn_norm(loom_graph *g, loom_tensor *adj)
{
    char nn[64];
    snprintf(nn, sizeof nn, "%.40s.gcn_norm", loom_tensor_name(adj));
    loom_tensor *d = loom_graph_find(g, nn);
    if (d)
        return d;
    d = loom_reshape(g, loom_degree(g, adj, 1, -0.5), loom_shape(loom_tensor_dim(adj, 0), 1));
    loom_tensor_set_name(d, nn);
    return d;
}

/* 1 when adj is a square CSR matrix [N, N] of g and x is [N, features]; else 0 with the error
 * recorded on g, naming the layer, what was given and what a GCN takes (the ops inside would
 * fail too, but naming neither the layer nor the adjacency). */
static int gcn_args_ok(loom_graph *g, const char *api, const char *layer, const loom_tensor *adj, const loom_tensor *x)
{
    char sa[96], sx[96];
    if (!g)
        return 0;
    if (!adj || !x) {
        loom__fail(g, LOOM_ERR_INVALID, "%s '%s': the %s is NULL", api, layer, adj ? "input x" : "adjacency");
        return 0;
    }
    if ((adj->flags | x->flags) & LOOM__T_POISON)
        return 0; /* the error that poisoned it is recorded */
    if (adj->graph != g || x->graph != g) {
        loom__fail(g, LOOM_ERR_INVALID, "%s '%s': the %s belongs to another graph", api, layer,
                   adj->graph != g ? "adjacency" : "input x");
        return 0;
    }
    loom__shape_str(g, &adj->shape, sa, sizeof sa);
    loom__shape_str(g, &x->shape, sx, sizeof sx);
    if (adj->layout != LOOM__CSR || adj->shape.ndim != 2 || !loom__dim_eq(adj->shape.d[0], adj->shape.d[1])) {
        loom__fail(g, adj->layout != LOOM__CSR ? LOOM_ERR_INVALID : LOOM_ERR_SHAPE,
                   "%s '%s': the adjacency '%s' is a %s %s %s; expected a square CSR matrix [N, N] (loom_input_csr)", api,
                   layer, loom_tensor_name(adj), adj->layout == LOOM__CSR ? "CSR" : "dense", loom_dtype_name(adj->dtype), sa);
        return 0;
    }
    if (x->shape.ndim != 2 || !loom__dim_eq(x->shape.d[0], adj->shape.d[0])) {
        loom__fail(g, LOOM_ERR_SHAPE, "%s '%s': x '%s' is %s; expected [N, features] with N the adjacency's size (it is %s)",
                   api, layer, loom_tensor_name(x), sx, sa);
        return 0;
    }
    return 1;
}

loom_tensor *loom_nn_gcn_layer(loom_graph *g, const char *name, loom_tensor *adj, loom_tensor *x, int64_t out_features,
                               loom_activation act)
{
    if (!gcn_args_ok(g, "loom_nn_gcn_layer", name ? name : "gcn", adj, x))
        return g ? &g->poison : NULL;
    /* (A + I) z = A z + z keeps the adjacency as given: no self loops are added to the matrix. The
     * sparse product runs on the narrower side of the weight: after it when the layer narrows
     * (in_features > out_features), before it when it widens, since D^-1/2 (A + I) D^-1/2 commutes
     * with the product by w. */
    loom_tensor *d = gcn_norm(g, adj);
    int64_t in = loom_tensor_ndim(x) > 0 ? loom_tensor_dim(x, -1) : 0;
    loom_tensor *h;
    if (in > out_features) {
        loom_tensor *z = loom_mul(g, loom_nn_linear(g, name, x, out_features, 0), d);
        h = loom_mul(g, loom_add(g, loom_spmm(g, adj, z), z), d);
    } else {
        loom_tensor *z = loom_mul(g, x, d);
        h = loom_nn_linear(g, name, loom_mul(g, loom_add(g, loom_spmm(g, adj, z), z), d), out_features, 0);
    }
    char pn[64];
    snprintf(pn, sizeof pn, "%s.bias", name ? name : "gcn");
    loom_tensor *b = loom_param(g, pn, loom_tensor_dtype(x), loom_shape(out_features), loom_init_zeros());
    return loom_activate(g, loom_bias_add(g, h, b), act);
}

loom_tensor *loom_nn_gcn(loom_graph *g, loom_tensor *adj, loom_tensor *x, int64_t hidden, int64_t classes, double dropout)
{
    if (!gcn_args_ok(g, "loom_nn_gcn", "gcn1", adj, x))
        return g ? &g->poison : NULL;
    loom_tensor *h = loom_nn_gcn_layer(g, "gcn1", adj, loom_dropout(g, x, dropout), hidden, LOOM_ACT_RELU);
    return loom_nn_gcn_layer(g, "gcn2", adj, loom_dropout(g, h, dropout), classes, LOOM_ACT_NONE);
}
