/* Graph samples held compactly (loom_samples): freeing, a sample's size in a batch, and the check
 * that every reader and generator runs on what it returns, so that a collation can trust offsets
 * and endpoints without checking them again at every step. */
#include <loom/samples.h>

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void loom_samples_free(loom_samples *s)
{
    if (!s)
        return;
    free(s->node_off);
    free(s->edge_off);
    free(s->src);
    free(s->dst);
    free(s->x);
    free(s->edge_attr);
    free(s->edge_y);
    free(s->graph_y);
    *s = LOOM_SAMPLES_INIT;
}

int64_t loom_samples_bytes(const loom_samples *s, int64_t i)
{
    int64_t n = loom_samples_nodes(s, i), e = loom_samples_edges(s, i);
    int64_t node = s->node_features * 4 + 4;                                           /* x, segment id */
    int64_t edge = s->edge_features * 4 + 2 * 4 + 4 + (s->edge_y ? 4 : 0);              /* attr, src, dst, segment, label */
    return n * node + e * edge + (s->graph_y ? 4 : 0);
}

static loom_status bad(loom_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static loom_status bad(loom_error *err, const char *fmt, ...)
{
    if (!err)
        return LOOM_ERR_FORMAT;
    va_list ap;
    va_start(ap, fmt);
    char what[sizeof err->msg];
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return loom_error_set(err, LOOM_ERR_FORMAT, "samples: %s", what);
}

/* 1 when every one of n floats is finite; *at the first that is not. */
static int all_finite(const float *v, int64_t n, int64_t *at)
{
    for (int64_t k = 0; k < n; k++)
        if (!isfinite(v[k])) {
            *at = k;
            return 0;
        }
    return 1;
}

loom_status loom_samples_validate(const loom_samples *s, loom_error *err)
{
    if (!s)
        return bad(err, "NULL set");
    if (s->count < 0 || s->node_features < 1 || s->edge_features < 0 || s->num_classes < 0)
        return bad(err, "bad header: %" PRId64 " samples, %" PRId64 " node features, %" PRId64 " edge features, %" PRId64
                        " classes",
                   s->count, s->node_features, s->edge_features, s->num_classes);
    if (!s->node_off || !s->edge_off)
        return bad(err, "no offsets");
    if (s->node_off[0] != 0 || s->edge_off[0] != 0)
        return bad(err, "offsets start at %" PRId64 " nodes and %" PRId64 " edges, expected 0", s->node_off[0], s->edge_off[0]);
    for (int64_t i = 0; i < s->count; i++) {
        if (s->node_off[i + 1] < s->node_off[i] || s->edge_off[i + 1] < s->edge_off[i])
            return bad(err, "sample %" PRId64 ": offsets decrease (nodes %" PRId64 " -> %" PRId64 ", edges %" PRId64 " -> %" PRId64 ")",
                       i, s->node_off[i], s->node_off[i + 1], s->edge_off[i], s->edge_off[i + 1]);
        if (loom_samples_nodes(s, i) > INT32_MAX)
            return bad(err, "sample %" PRId64 " has %" PRId64 " nodes, over an i32 index", i, loom_samples_nodes(s, i));
    }
    int64_t nodes = s->node_off[s->count], edges = s->edge_off[s->count];
    if (nodes > INT64_MAX / s->node_features || edges > INT64_MAX / (s->edge_features ? s->edge_features : 1))
        return bad(err, "%" PRId64 " nodes and %" PRId64 " edges: feature counts overflow", nodes, edges);
    if ((nodes && !s->x) || (edges && (!s->src || !s->dst)) || (s->edge_features && edges && !s->edge_attr))
        return bad(err, "arrays missing for %" PRId64 " nodes and %" PRId64 " edges", nodes, edges);
    if (s->num_classes && s->count && !s->graph_y)
        return bad(err, "%" PRId64 " classes but no graph labels", s->num_classes);
    for (int64_t i = 0; i < s->count; i++) {
        int64_t n = loom_samples_nodes(s, i);
        for (int64_t e = s->edge_off[i]; e < s->edge_off[i + 1]; e++)
            if (s->src[e] < 0 || s->src[e] >= n || s->dst[e] < 0 || s->dst[e] >= n)
                return bad(err, "sample %" PRId64 ", edge %" PRId64 ": endpoints (%" PRId32 ", %" PRId32 ") outside its %" PRId64 " nodes",
                           i, e - s->edge_off[i], s->src[e], s->dst[e], n);
        if (s->graph_y && (s->graph_y[i] < 0 || s->graph_y[i] >= s->num_classes))
            return bad(err, "sample %" PRId64 ": graph label %" PRId32 " outside [0, %" PRId64 ")", i, s->graph_y[i], s->num_classes);
    }
    int64_t at;
    if (!all_finite(s->x, nodes * s->node_features, &at))
        return bad(err, "node %" PRId64 ", feature %" PRId64 " is not finite", at / s->node_features, at % s->node_features);
    if (s->edge_attr && !all_finite(s->edge_attr, edges * s->edge_features, &at))
        return bad(err, "edge %" PRId64 ", feature %" PRId64 " is not finite", at / s->edge_features, at % s->edge_features);
    if (s->edge_y)
        for (int64_t e = 0; e < edges; e++)
            if (s->edge_y[e] != 0.0f && s->edge_y[e] != 1.0f)
                return bad(err, "edge %" PRId64 ": label %g, expected 0 or 1", e, (double)s->edge_y[e]);
    return LOOM_OK;
}
