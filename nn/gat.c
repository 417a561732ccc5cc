/* Graph attention (GAT, Velickovic et al. 2018) from the public ops, computed as PyG's GATConv:
 * per head, an edge's score from its endpoints' projected features, an edge softmax over each
 * node's in-edges (loom_segment_softmax), dropout on the coefficients, and a weighted sum of the
 * sources' features (gather, multiply, scatter-add). On a graph batch split by whole graphs every
 * gather, scatter and softmax here runs on each device's own graphs; on one whole graph over
 * several devices the heads axis may split (model parallel): each head's attention is its own. */
#include <loom/nn.h>

#include <math.h>
#include <stdio.h>

#include "graphs/builder/graph.h"

/* 1 when the layer's arguments fit; else 0 with the error recorded on g naming the layer. */
static int gat_args_ok(loom_graph *g, const char *api, const char *layer, loom_tensor *x, loom_tensor *src,
                       loom_tensor *dst, int64_t out_features, const loom_gat_opts *o)
{
    char b1[96], b2[96];
    int64_t width;
    if (loom__refuse_sources(g, api, 3, (loom_tensor *[]){x, src, dst}))
        return 0;
    if (o->heads < 1 || out_features < 1 || loom__mul_size(o->heads, out_features, &width) || width > INT32_MAX) {
        loom__fail(g, LOOM_ERR_INVALID, "%s '%s': %lld heads of %lld features; expected at least 1 of each, at most %d in all",
                   api, layer, (long long)o->heads, (long long)out_features, INT32_MAX);
        return 0;
    }
    if (!(o->dropout >= 0 && o->dropout < 1) || !(o->negative_slope >= 0 && isfinite(o->negative_slope))) {
        loom__fail(g, LOOM_ERR_INVALID, "%s '%s': attention dropout %g and negative slope %g; expected a dropout in [0, 1) "
                   "and a finite slope >= 0", api, layer, o->dropout, o->negative_slope);
        return 0;
    }
    if (x->layout != LOOM__DENSE || !loom_dtype_is_float(x->dtype) || x->shape.ndim != 2) {
        loom__fail(g, LOOM_ERR_SHAPE, "%s '%s': x '%s' is %s %s %s; expected dense f32 or f64 [N, features]", api, layer,
                   loom_tensor_name(x), x->layout == LOOM__CSR ? "CSR" : "dense", loom_dtype_name(x->dtype),
                   loom__shape_str(g, &x->shape, b1, sizeof b1));
        return 0;
    }
    const loom_tensor *idx[2] = {src, dst};
    for (int k = 0; k < 2; k++)
        if (idx[k]->layout != LOOM__DENSE || idx[k]->dtype != LOOM_I32 || idx[k]->shape.ndim != 1) {
            loom__fail(g, LOOM_ERR_SHAPE, "%s '%s': %s '%s' is %s %s; expected an i32 index [E] (loom_input_index)", api, layer,
                       k ? "dst" : "src", loom_tensor_name(idx[k]), loom_dtype_name(idx[k]->dtype),
                       loom__shape_str(g, &idx[k]->shape, b1, sizeof b1));
            return 0;
        }
    if (!loom__dim_eq(src->shape.d[0], dst->shape.d[0])) {
        loom__fail(g, LOOM_ERR_SHAPE, "%s '%s': src is %s and dst %s; expected one of each per edge", api, layer,
                   loom__shape_str(g, &src->shape, b1, sizeof b1), loom__shape_str(g, &dst->shape, b2, sizeof b2));
        return 0;
    }
    return 1;
}

/* a [N, H, C] scored against att [H, C]: the dot product per node and head, [N, H]. */
static loom_tensor *head_dot(loom_graph *g, loom_tensor *h, loom_tensor *att)
{
    return loom_sum(g, loom_mul(g, h, att), LOOM_AXIS(2), 0);
}

loom_tensor *loom_nn_gat_layer(loom_graph *g, const char *name, loom_tensor *x, loom_tensor *src, loom_tensor *dst,
                               int64_t out_features, const loom_gat_opts *opts)
{
    const loom_gat_opts o = opts ? *opts : LOOM_GAT_OPTS_INIT;
    if (!name)
        name = "gat";
    if (!g)
        return NULL;
    if (!gat_args_ok(g, "loom_nn_gat_layer", name, x, src, dst, out_features, &o))
        return &g->poison;
    const loom_dim n = loom_tensor_dim(x, 0), e = loom_tensor_dim(src, 0);
    const int64_t heads = o.heads;
    const loom_dtype dt = loom_tensor_dtype(x);
    char pn[80];
    snprintf(pn, sizeof pn, "%.60s.lin", name);
    loom_tensor *h = loom_reshape(g, loom_nn_linear(g, pn, x, heads * out_features, 0), loom_shape(n, heads, out_features));
    snprintf(pn, sizeof pn, "%.60s.att_src", name);
    loom_tensor *att_src = loom_param(g, pn, dt, loom_shape(heads, out_features), loom_init_glorot(0));
    snprintf(pn, sizeof pn, "%.60s.att_dst", name);
    loom_tensor *att_dst = loom_param(g, pn, dt, loom_shape(heads, out_features), loom_init_glorot(0));
    /* the two halves of a . [h[j], h[i]] on nodes, then gathered to the edges: [E, heads] */
    loom_tensor *score = loom_add(g, loom_gather_rows(g, head_dot(g, h, att_src), src),
                                  loom_gather_rows(g, head_dot(g, h, att_dst), dst));
    loom_tensor *alpha = loom_segment_softmax(g, loom_leaky_relu(g, score, o.negative_slope), dst, n);
    alpha = loom_reshape(g, loom_dropout(g, alpha, o.dropout), loom_shape(e, heads, 1));
    loom_tensor *y = loom_scatter_add_rows(g, loom_mul(g, loom_gather_rows(g, h, src), alpha), dst, n); /* [N, heads, out] */
    y = o.concat ? loom_reshape(g, y, loom_shape(n, heads * out_features)) : loom_mean(g, y, LOOM_AXIS(1), 0);
    if (!o.bias)
        return y;
    snprintf(pn, sizeof pn, "%.60s.bias", name);
    loom_tensor *b = loom_param(g, pn, dt, loom_shape(o.concat ? heads * out_features : out_features), loom_init_zeros());
    return loom_bias_add(g, y, b);
}

loom_tensor *loom_nn_gat(loom_graph *g, loom_tensor *x, loom_tensor *src, loom_tensor *dst, int64_t heads, int64_t hidden,
                         int64_t classes, double dropout)
{
    loom_gat_opts o = LOOM_GAT_OPTS_INIT;
    o.heads = heads;
    o.dropout = dropout;
    loom_tensor *h = loom_nn_gat_layer(g, "gat1", loom_dropout(g, x, dropout), src, dst, hidden, &o);
    o.heads = 1;
    o.concat = 0;
    h = loom_dropout(g, loom_elu(g, h, 1.0), dropout);
    return loom_nn_gat_layer(g, "gat2", h, src, dst, classes, &o);
}
