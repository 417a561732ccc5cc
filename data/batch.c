/* Batches of graph samples as a program's data (include/loom/batch.h): collating each step's
 * shares block-diagonally into per-device parts on the source's thread, sizing the program for an
 * epoch's largest share, and the plan sampler's budget from the program's memory plan.
 *
 * A share's collation writes each input's part into a buffer of the source, grown to the largest
 * share seen so far; loom_feeder_parts then copies the parts into the step's registers. Samples keep their order inside a share, so the same share always gives the
 * same bytes. */
#include <loom/batch.h>

#include "data/sampler_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IN_X, IN_EDGE_ATTR, IN_SRC, IN_DST, IN_EDGE_Y, IN_NODE_GRAPH, IN_EDGE_GRAPH, IN_GRAPH_Y, IN_COUNT };
static const char *const in_names[IN_COUNT] = {"x", "edge_attr", "src", "dst", "edge_y", "node_graph", "edge_graph",
                                               "graph_y"};

struct loom_batch_source {
    loom_program *p;
    const loom_samples *s;
    const loom_sampler *smp;
    loom_batch_inputs in;
    loom_tensor *t[IN_COUNT];
    int ndev;
    int64_t next;                 /* the step fed next */
    loom_array *parts[IN_COUNT];  /* by input: ndev arrays, data owned here */
    int64_t *cap[IN_COUNT];       /* by input: the rows each device's buffer holds */
};

static loom_tensor *input_at(const loom_batch_inputs *in, int k)
{
    loom_tensor *const t[IN_COUNT] = {in->x, in->edge_attr, in->src, in->dst, in->edge_y, in->node_graph, in->edge_graph,
                                      in->graph_y};
    return t[k];
}

/* Rows of input k come from nodes, edges or graphs. */
static int64_t rows_of(int k, int64_t nodes, int64_t edges, int64_t graphs)
{
    switch (k) {
    case IN_X:
    case IN_NODE_GRAPH:
        return nodes;
    case IN_GRAPH_Y:
        return graphs;
    default:
        return edges;
    }
}

static loom_dim dim_of(const loom_batch_inputs *in, int k) { return rows_of(k, in->nodes, in->edges, in->graphs); }

/* Columns of input k's rows in the dataset, and its dtype. */
static int64_t cols_of(const loom_samples *s, int k) { return k == IN_X ? s->node_features : k == IN_EDGE_ATTR ? s->edge_features : 1; }
static loom_dtype dtype_of(int k) { return k == IN_X || k == IN_EDGE_ATTR || k == IN_EDGE_Y ? LOOM_F32 : LOOM_I32; }

/* Input k of the graph against what a collation makes: its dtype, axis 0 its dim, the rest the
 * dataset's columns; and the dataset holds what it needs. */
static loom_status check_input(const loom_samples *s, const loom_batch_inputs *in, int k, loom_error *err)
{
    const loom_tensor *t = input_at(in, k);
    const char *nm = in_names[k];
    if (loom_tensor_is_poisoned(t))
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_source_new: input %s is a poisoned tensor", nm);
    if (loom_tensor_dtype(t) != dtype_of(k))
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_source_new: input %s ('%s') is %s, a batch feeds it %s", nm,
                              loom_tensor_name(t), loom_dtype_name(loom_tensor_dtype(t)), loom_dtype_name(dtype_of(k)));
    int nd = loom_tensor_ndim(t);
    int64_t cols = 1;
    for (int i = 1; i < nd; i++)
        cols *= loom_tensor_dim(t, i);
    if (nd < 1 || loom_tensor_dim(t, 0) != dim_of(in, k) || !loom_dim_is_dynamic(dim_of(in, k)) || cols != cols_of(s, k) ||
        (k == IN_X && nd != 2) || (k == IN_EDGE_ATTR && nd != 2))
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "loom_batch_source_new: input %s ('%s') must have the batch's dynamic dim %s first and %" PRId64
                              " element%s per row",
                              nm, loom_tensor_name(t), k == IN_X || k == IN_NODE_GRAPH ? "nodes" : k == IN_GRAPH_Y ? "graphs" : "edges",
                              cols_of(s, k), cols_of(s, k) == 1 ? "" : "s");
    if ((k == IN_EDGE_ATTR && !s->edge_features) || (k == IN_EDGE_Y && !s->edge_y) || (k == IN_GRAPH_Y && !s->graph_y))
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_source_new: input %s is given but the dataset has no %s", nm,
                              k == IN_EDGE_ATTR ? "edge features" : k == IN_EDGE_Y ? "edge labels" : "graph labels");
    return LOOM_OK;
}

void loom_batch_dims(loom_graph *g, const loom_samples *s, int64_t batch, loom_batch_inputs *in)
{
    const int64_t count = s && s->count > 0 ? s->count : 1, nodes = s && s->count > 0 ? s->node_off[s->count] : 0,
                  edges = s && s->count > 0 ? s->edge_off[s->count] : 0;
    batch = batch > 0 ? batch : 1;
    in->nodes = loom_dim_dynamic(g, "N", nodes / count * batch + 1);
    in->edges = loom_dim_dynamic(g, "E", edges / count * batch + 1);
    in->graphs = loom_dim_dynamic(g, "G", batch);
}

void loom_batch_inputs_make(loom_graph *g, const loom_samples *s, int64_t batch, loom_batch_task task, loom_batch_inputs *in)
{
    *in = (loom_batch_inputs){0};
    loom_batch_dims(g, s, batch, in);
    const loom_dim N = in->nodes, E = in->edges, G = in->graphs;
    in->x = loom_input(g, "x", LOOM_F32, loom_shape(N, s ? s->node_features : 0));
    if (task == LOOM_TASK_EDGES && s && s->edge_features > 0)
        in->edge_attr = loom_input(g, "edge_attr", LOOM_F32, loom_shape(E, s->edge_features));
    in->src = loom_input_index(g, "src", loom_shape(E), N);
    in->dst = loom_input_index(g, "dst", loom_shape(E), N);
    if (task == LOOM_TASK_GRAPHS) {
        in->node_graph = loom_input_index(g, "node_graph", loom_shape(N), G);
        in->graph_y = loom_input(g, "graph_y", LOOM_I32, loom_shape(G));
    } else {
        in->edge_y = loom_input(g, "edge_y", LOOM_F32, loom_shape(E));
        in->graphs = 0; /* G is not fed */
    }
}

void loom_batch_source_free(loom_batch_source *b)
{
    if (!b)
        return;
    for (int k = 0; k < IN_COUNT; k++) {
        if (b->parts[k])
            for (int d = 0; d < b->ndev; d++)
                free(b->parts[k][d].data);
        free(b->parts[k]);
        free(b->cap[k]);
    }
    free(b);
}

loom_status loom_batch_source_new(loom_program *p, const loom_samples *s, const loom_sampler *smp,
                                  const loom_batch_inputs *in, loom_batch_source **out, loom_error *err)
{
    if (out)
        *out = NULL;
    if (!p || !s || !smp || !in || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_source_new: NULL argument");
    int ndev = loom_program_devices(p);
    const loom_sampler_opts *o = loom_sampler_options(smp);
    if (o->devices != ndev)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "loom_batch_source_new: the sampler deals %d share%s a step but the program runs on %d device%s",
                              o->devices, o->devices == 1 ? "" : "s", ndev, ndev == 1 ? "" : "s");
    int any = 0;
    for (int k = 0; k < IN_COUNT; k++)
        if (input_at(in, k)) {
            loom_status st = check_input(s, in, k, err);
            if (st != LOOM_OK)
                return st;
            any = 1;
        }
    if (!any)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_source_new: no input to feed");
    loom_batch_source *b = calloc(1, sizeof *b);
    if (!b)
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_batch_source_new: out of memory");
    *b = (loom_batch_source){.p = p, .s = s, .smp = smp, .in = *in, .ndev = ndev};
    for (int k = 0; k < IN_COUNT; k++) {
        b->t[k] = input_at(in, k);
        if (!b->t[k])
            continue;
        b->parts[k] = calloc((size_t)ndev, sizeof *b->parts[k]);
        b->cap[k] = calloc((size_t)ndev, sizeof *b->cap[k]);
        if (!b->parts[k] || !b->cap[k]) {
            loom_batch_source_free(b);
            return loom_error_set(err, LOOM_ERR_NOMEM, "loom_batch_source_new: out of memory");
        }
        for (int d = 0; d < ndev; d++)
            b->parts[k][d] = (loom_array){.dtype = dtype_of(k), .ndim = loom_tensor_ndim(b->t[k])};
    }
    *out = b;
    return LOOM_OK;
}

void loom_batch_source_rewind(loom_batch_source *b, int64_t k)
{
    if (b)
        b->next = k;
}

/* Room in device d's buffers for a share of that many nodes, edges and graphs. Sizes are those of
 * a loom_samples, which loom_samples_validate kept within an int64 product with its feature count. */
static loom_status grow(loom_batch_source *b, int d, int64_t nodes, int64_t edges, int64_t graphs)
{
    for (int k = 0; k < IN_COUNT; k++) {
        int64_t rows = rows_of(k, nodes, edges, graphs);
        if (!b->t[k] || rows <= b->cap[k][d])
            continue;
        rows += rows / 2; /* amortised: a few growths per run */
        void *p = realloc(b->parts[k][d].data, (size_t)rows * (size_t)cols_of(b->s, k) * 4);
        if (!p)
            return LOOM_ERR_NOMEM;
        b->parts[k][d].data = p;
        b->cap[k][d] = rows;
    }
    return LOOM_OK;
}

/* Device d's part of every input from the samples ids[0 .. n-1], one graph after another. */
static void collate(loom_batch_source *b, int d, const int64_t *ids, int64_t n)
{
    const loom_samples *s = b->s;
    int64_t nodes = 0, edges = 0;
    for (int64_t g = 0; g < n; g++) {
        const int64_t i = ids[g], n0 = s->node_off[i], e0 = s->edge_off[i];
        const int64_t nn = loom_samples_nodes(s, i), ne = loom_samples_edges(s, i);
        if (b->t[IN_X])
            memcpy((float *)b->parts[IN_X][d].data + nodes * s->node_features, s->x + n0 * s->node_features,
                   (size_t)(nn * s->node_features) * sizeof(float));
        if (b->t[IN_EDGE_ATTR])
            memcpy((float *)b->parts[IN_EDGE_ATTR][d].data + edges * s->edge_features, s->edge_attr + e0 * s->edge_features,
                   (size_t)(ne * s->edge_features) * sizeof(float));
        if (b->t[IN_EDGE_Y])
            memcpy((float *)b->parts[IN_EDGE_Y][d].data + edges, s->edge_y + e0, (size_t)ne * sizeof(float));
        for (int k = IN_SRC; k <= IN_DST; k++)
            if (b->t[k]) {
                int32_t *v = (int32_t *)b->parts[k][d].data + edges;
                const int32_t *from = (k == IN_SRC ? s->src : s->dst) + e0;
                for (int64_t e = 0; e < ne; e++)
                    v[e] = (int32_t)(from[e] + nodes);
            }
        if (b->t[IN_NODE_GRAPH])
            for (int64_t v = 0; v < nn; v++)
                ((int32_t *)b->parts[IN_NODE_GRAPH][d].data)[nodes + v] = (int32_t)g;
        if (b->t[IN_EDGE_GRAPH])
            for (int64_t e = 0; e < ne; e++)
                ((int32_t *)b->parts[IN_EDGE_GRAPH][d].data)[edges + e] = (int32_t)g;
        if (b->t[IN_GRAPH_Y])
            ((int32_t *)b->parts[IN_GRAPH_Y][d].data)[g] = s->graph_y[i];
        nodes += nn;
        edges += ne;
    }
    for (int k = 0; k < IN_COUNT; k++)
        if (b->t[k]) {
            loom_array *a = &b->parts[k][d];
            a->shape[0] = rows_of(k, nodes, edges, n);
            for (int i = 1; i < a->ndim; i++)
                a->shape[i] = loom_tensor_dim(b->t[k], i);
        }
}

loom_status loom_batch_source_fn(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen)
{
    (void)step;
    (void)msglen;
    (void)msg;
    loom_batch_source *b = ctx;
    if (b->next >= loom_sampler_steps(b->smp)) {
        *end = 1;
        return LOOM_OK;
    }
    for (int d = 0; d < b->ndev; d++) {
        int64_t n, nodes, edges;
        const int64_t *ids = loom_sampler_share(b->smp, b->next, d, &n);
        loom_sampler_share_size(b->smp, b->next, d, &nodes, &edges);
        if (grow(b, d, nodes, edges, n) != LOOM_OK)
            return snprintf(msg, msglen, "step %" PRId64 ", device %d: no memory to collate %" PRId64 " nodes and %" PRId64 " edges",
                            b->next, d, nodes, edges),
                   LOOM_ERR_NOMEM;
        collate(b, d, ids, n);
    }
    for (int k = 0; k < IN_COUNT; k++)
        if (b->t[k]) {
            loom_status s = loom_feeder_parts(f, b->t[k], b->ndev, b->parts[k]);
            if (s != LOOM_OK)
                return s; /* the feeder wrote why into msg */
        }
    b->next++;
    return LOOM_OK;
}

/* ---- sizing the program ------------------------------------------------------------------------ */

/* The bounds of the batch's dims for shares of at most (nodes, edges, graphs) on each of ndev
 * devices: each dim's part bound the share's, its bound ndev shares'. Dims that are not dynamic
 * (not used by the graph) are left out; returns the count. */
static int bounds_for(const loom_batch_inputs *in, int ndev, int64_t nodes, int64_t edges, int64_t graphs, loom_bound *b)
{
    const loom_dim dims[3] = {in->nodes, in->edges, in->graphs};
    const int64_t part[3] = {nodes, edges, graphs};
    int n = 0;
    for (int i = 0; i < 3; i++)
        if (loom_dim_is_dynamic(dims[i]))
            b[n++] = (loom_bound){.dim = dims[i], .bound = part[i] * ndev, .part_bound = part[i]};
    return n;
}

/* The smallest nonempty sample of s in nodes (1 when none has nodes). */
static int64_t smallest_nodes(const loom_samples *s)
{
    int64_t small = INT64_MAX;
    for (int64_t i = 0; i < s->count; i++) {
        const int64_t n = loom_samples_nodes(s, i);
        small = n > 0 && n < small ? n : small;
    }
    return small == INT64_MAX ? 1 : small;
}

/* The graphs a share of n nodes holds at most: n / small + 1 of the samples of s (whose smallest
 * nonempty one has small nodes), all of them at most. The plan sampler's budget in graphs, the
 * same in loom_batch_fit_plan and in the epochs it packs. */
static int64_t graphs_for(const loom_samples *s, int64_t small, int64_t n)
{
    return n / small + 1 < s->count ? n / small + 1 : s->count;
}

loom_status loom_batch_plan_epoch(loom_program *p, const loom_sampler *smp, const loom_batch_inputs *in, loom_error *err)
{
    if (!p || !smp || !in)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_plan_epoch: NULL argument");
    const int ndev = loom_sampler_options(smp)->devices;
    int64_t most[3] = {0, 0, 0}, at_step[3] = {0, 0, 0}, total[3] = {0, 0, 0};
    int at_dev[3] = {0, 0, 0};
    for (int64_t k = 0; k < loom_sampler_steps(smp); k++) {
        int64_t step[3] = {0, 0, 0};
        for (int d = 0; d < ndev; d++) {
            int64_t sz[3];
            loom_sampler_share(smp, k, d, &sz[2]);
            loom_sampler_share_size(smp, k, d, &sz[0], &sz[1]);
            for (int i = 0; i < 3; i++) {
                step[i] += sz[i];
                if (sz[i] > most[i])
                    most[i] = sz[i], at_step[i] = k, at_dev[i] = d;
            }
        }
        for (int i = 0; i < 3; i++)
            total[i] = step[i] > total[i] ? step[i] : total[i];
    }
    loom_program_set_source(p, loom_batch_source_fn, NULL); /* planned with its registers; loom_batch_run sets the context */
    loom_bound b[3];
    int nb = bounds_for(in, 1, most[0], most[1], most[2], b);
    for (int i = 0, j = 0; i < 3; i++) /* the bound of the whole: the largest step's sum */
        if (loom_dim_is_dynamic(i == 0 ? in->nodes : i == 1 ? in->edges : in->graphs))
            b[j++].bound = total[i];
    loom_status s = loom_program_set_bounds(p, b, nb);
    const loom_sampler_opts *o = loom_sampler_options(smp);
    const loom_samples *ss = loom__sampler_samples(smp);
    if (s == LOOM_ERR_NOMEM && o->kind == LOOM_SAMPLER_PLAN && o->max_nodes > 0 && o->max_edges > 0 && ss &&
        most[0] <= o->max_nodes && most[1] <= o->max_edges) {
        /* The plan's memory is not monotone in its bounds (the lifetime packing of the shared
         * block): shares smaller than the budget may not fit where the budget does. The budget's
         * own plan, which loom_batch_fit_plan found to fit, holds every share of its packing. */
        char why[512];
        snprintf(why, sizeof why, "%s", loom_program_error(p) ? loom_program_error(p) : "");
        const int64_t g = graphs_for(ss, smallest_nodes(ss), o->max_nodes);
        nb = bounds_for(in, ndev, o->max_nodes, o->max_edges, g > most[2] ? g : most[2], b);
        if (loom_program_set_bounds(p, b, nb) == LOOM_OK)
            return LOOM_OK;
        return loom_error_set(err, s,
                              "the epoch's largest shares, %" PRId64 " nodes (step %" PRId64 ", device %d) and %" PRId64
                              " edges (step %" PRId64 ", device %d), do not fit, nor does the plan sampler's budget of %" PRId64
                              " nodes and %" PRId64 " edges: %s",
                              most[0], at_step[0], at_dev[0], most[1], at_step[1], at_dev[1], o->max_nodes, o->max_edges, why);
    }
    if (s == LOOM_ERR_NOMEM)
        return loom_error_set(err, s,
                              "the epoch's largest shares, %" PRId64 " nodes (step %" PRId64 ", device %d) and %" PRId64
                              " edges (step %" PRId64 ", device %d), do not fit: %s",
                              most[0], at_step[0], at_dev[0], most[1], at_step[1], at_dev[1], loom_program_error(p));
    if (s != LOOM_OK)
        return loom_error_set(err, s, "%s", loom_program_error(p));
    return LOOM_OK;
}

loom_status loom_batch_run(loom_batch_source *b, loom_run_mode mode, int64_t steps, loom_error *err)
{
    if (!b)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_run: NULL source");
    int64_t left = loom_sampler_steps(b->smp) - b->next;
    if (steps <= 0 || steps > left)
        steps = left;
    if (steps <= 0)
        return LOOM_OK;
    loom_program_set_source(b->p, loom_batch_source_fn, b);
    loom_status s = loom_program_run_steps(b->p, mode, steps);
    if (s != LOOM_OK)
        return loom_error_set(err, s, "%s", loom_program_error(b->p));
    return LOOM_OK;
}

/* Whether the plan of mode for shares of (nodes, edges, graphs) fits the program's memory limit
 * (*ok), and the largest device's bytes (*need). */
static loom_status fits(loom_program *p, loom_run_mode mode, const loom_batch_inputs *in, int ndev, int64_t nodes,
                        int64_t edges, int64_t graphs, int *ok, size_t *need)
{
    loom_bound b[3];
    int nb = bounds_for(in, ndev, nodes, edges, graphs, b);
    *need = 0;
    *ok = 1;
    for (int d = 0; d < ndev; d++) {
        loom_memory m;
        loom_status s = loom_program_memory_at(p, mode, d, b, nb, &m);
        if (s != LOOM_OK && s != LOOM_ERR_NOMEM)
            return s;
        *ok &= s == LOOM_OK;
        *need = m.total > *need ? m.total : *need;
    }
    return LOOM_OK;
}

loom_status loom_batch_fit_plan(loom_program *p, loom_run_mode mode, const loom_samples *s, const loom_batch_inputs *in,
                                loom_sampler_opts *o, loom_error *err)
{
    if (!p || !s || !in || !o || s->count < 1)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_fit_plan: NULL argument or an empty dataset");
    const int ndev = loom_program_devices(p);
    loom_program_set_source(p, loom_batch_source_fn, NULL); /* planned with its registers; loom_batch_run sets the context */
    int64_t big_n = 0, big_e = 0, big_i = 0;
    for (int64_t i = 0; i < s->count; i++) {
        int64_t n = loom_samples_nodes(s, i), e = loom_samples_edges(s, i);
        if (n > big_n)
            big_n = n, big_i = i;
        big_e = e > big_e ? e : big_e;
    }
    const int64_t all_n = s->node_off[s->count], all_e = s->edge_off[s->count], small_n = smallest_nodes(s);
    const double ratio = all_n > 0 ? (double)all_e / (double)all_n : 0.0;
    /* a share of n nodes: the dataset's edges per node, at least the largest sample's edges; the
     * graphs of the most samples n nodes can hold */
#define EDGES_FOR(n) ((int64_t)((double)(n) * ratio + 1) > big_e ? (int64_t)((double)(n) * ratio + 1) : big_e)
#define GRAPHS_FOR(n) graphs_for(s, small_n, (n))
    int ok;
    size_t need;
    loom_status st = fits(p, mode, in, ndev, big_n, EDGES_FOR(big_n), GRAPHS_FOR(big_n), &ok, &need);
    if (st != LOOM_OK)
        return loom_error_set(err, st, "loom_batch_fit_plan: %s", loom_program_error(p));
    if (!ok)
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_batch_fit_plan: shares that hold the largest sample (%" PRId64 ", %" PRId64
                              " nodes) do not fit: %s", big_i, big_n, loom_program_error(p));
    int64_t lo = big_n, hi = all_n > big_n ? all_n : big_n; /* lo fits; find the largest n that does */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo + 1) / 2;
        st = fits(p, mode, in, ndev, mid, EDGES_FOR(mid), GRAPHS_FOR(mid), &ok, &need);
        if (st != LOOM_OK)
            return loom_error_set(err, st, "loom_batch_fit_plan: %s", loom_program_error(p));
        if (ok)
            lo = mid;
        else
            hi = mid - 1;
    }
    o->max_nodes = lo;
    o->max_edges = EDGES_FOR(lo);
#undef EDGES_FOR
#undef GRAPHS_FOR
    return LOOM_OK;
}

/* ---- evaluation ------------------------------------------------------------------------------- */

/* Runs mode over every sample of s once, in steps dealt by a sampler of options o, and hands each
 * step's fetched logits to score with the step's sampler (its shares say which samples they hold,
 * device after device, sample after sample). */
typedef void (*score_fn)(void *ctx, const loom_samples *s, const loom_sampler *smp, int64_t k, int ndev, const loom_array *z);

static loom_status score_steps(loom_program *p, loom_tensor *logits, const loom_samples *s, const loom_sampler_opts *o,
                               const loom_batch_inputs *in, loom_run_mode mode, score_fn score, void *ctx, loom_error *err)
{
    loom_sampler *smp = NULL;
    loom_batch_source *src = NULL;
    loom_status st = loom_program_keep(p, logits);
    if (st != LOOM_OK)
        return loom_error_set(err, st, "%s", loom_program_error(p));
    if ((st = loom_sampler_new(s, NULL, s->count, o, &smp, err)) != LOOM_OK || (st = loom_sampler_epoch(smp, 0, err)) != LOOM_OK ||
        (st = loom_batch_plan_epoch(p, smp, in, err)) != LOOM_OK || (st = loom_batch_source_new(p, s, smp, in, &src, err)) != LOOM_OK)
        goto done;
    for (int64_t k = 0; k < loom_sampler_steps(smp); k++) {
        loom_array z;
        if ((st = loom_batch_run(src, mode, 1, err)) != LOOM_OK)
            goto done;
        if ((st = loom_program_fetch(p, logits, &z)) != LOOM_OK) {
            loom_error_set(err, st, "%s", loom_program_error(p));
            goto done;
        }
        score(ctx, s, smp, k, o->devices, &z);
    }
done:
    loom_batch_source_free(src);
    loom_sampler_free(smp);
    return st;
}

/* the logits of a step are its shares' edges, device after device, sample after sample */
static void score_edges(void *ctx, const loom_samples *s, const loom_sampler *smp, int64_t k, int ndev, const loom_array *z)
{
    loom_edge_metrics *m = ctx;
    int64_t at = 0;
    for (int d = 0; d < ndev; d++) {
        int64_t n;
        const int64_t *ids = loom_sampler_share(smp, k, d, &n);
        for (int64_t i = 0; i < n; i++)
            for (int64_t e = s->edge_off[ids[i]]; e < s->edge_off[ids[i] + 1] && at < z->shape[0]; e++, at++) {
                int pred = ((const float *)z->data)[at] > 0, truth = s->edge_y[e] > 0.5f;
                m->tp += pred && truth;
                m->fp += pred && !truth;
                m->tn += !pred && !truth;
                m->fn += !pred && truth;
            }
    }
}

loom_status loom_batch_edge_metrics(loom_program *p, loom_tensor *logits, const loom_samples *s, const loom_sampler_opts *o,
                                    const loom_batch_inputs *in, loom_run_mode mode, loom_edge_metrics *out, loom_error *err)
{
    if (!p || !logits || !s || !o || !in || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_edge_metrics: NULL argument");
    if (!s->edge_y)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_edge_metrics: the dataset has no edge labels");
    loom_edge_metrics m = {0};
    loom_status st = score_steps(p, logits, s, o, in, mode, score_edges, &m, err);
    if (st != LOOM_OK)
        return st;
    m.precision = m.tp + m.fp ? (double)m.tp / (double)(m.tp + m.fp) : 0;
    m.recall = m.tp + m.fn ? (double)m.tp / (double)(m.tp + m.fn) : 0;
    m.accuracy = m.tp + m.fp + m.tn + m.fn ? (double)(m.tp + m.tn) / (double)(m.tp + m.fp + m.tn + m.fn) : 0;
    *out = m;
    return LOOM_OK;
}

typedef struct graph_hits {
    int64_t hit, count;
} graph_hits;

/* the logits of a step are its shares' graphs, device after device, sample after sample: a row each */
static void score_graphs(void *ctx, const loom_samples *s, const loom_sampler *smp, int64_t k, int ndev, const loom_array *z)
{
    graph_hits *h = ctx;
    const int64_t c = z->ndim == 2 ? z->shape[1] : 0;
    int64_t row = 0;
    for (int d = 0; d < ndev; d++) {
        int64_t n;
        const int64_t *ids = loom_sampler_share(smp, k, d, &n);
        for (int64_t i = 0; i < n && row < z->shape[0]; i++, row++) {
            const float *r = (const float *)z->data + row * c;
            int64_t best = 0;
            for (int64_t j = 1; j < c; j++)
                if (r[j] > r[best])
                    best = j;
            h->hit += c > 0 && best == s->graph_y[ids[i]];
            h->count++;
        }
    }
}

loom_status loom_batch_graph_accuracy(loom_program *p, loom_tensor *logits, const loom_samples *s, const loom_sampler_opts *o,
                                      const loom_batch_inputs *in, loom_run_mode mode, double *accuracy, loom_error *err)
{
    if (!p || !logits || !s || !o || !in || !accuracy)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_graph_accuracy: NULL argument");
    if (!s->graph_y)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_graph_accuracy: the dataset has no graph labels");
    if (loom_tensor_dtype(logits) != LOOM_F32 || loom_tensor_ndim(logits) != 2)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_batch_graph_accuracy: logits '%s' must be f32 [G, classes]",
                              loom_tensor_name(logits));
    graph_hits h = {0};
    loom_status st = score_steps(p, logits, s, o, in, mode, score_graphs, &h, err);
    if (st == LOOM_OK)
        *accuracy = h.count ? (double)h.hit / (double)h.count : 0;
    return st;
}
