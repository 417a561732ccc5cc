/* Automatic placement (loom_place_search) of three models on the given devices: every candidate's
 * predicted step, the best few measured, and the choice checked against them. One JSON line per
 * candidate, then one per model: the chosen candidate, the best measured one, the chosen's
 * measured step over the best's (goal <= 1.10) and its predicted over its measured (goal within
 * 0.75 .. 1.25).
 *
 *     place [--devices cpu:0-3] [--models gcn,mlp,in] [--measure 4] [--steps 30] [--warmup 5]
 *           [--memory-limit BYTES] [--cost FILE] [--threads 0]
 *
 * The models: gcn, two GCN layers (hidden 16) on a seeded random graph of Cora's size (2,708
 * nodes, 10,556 edges, 1,433 features, 7 classes: loom_synthetic_graph); mlp, 784-256-256-10 with
 * ReLU on a batch of 512, which also builds itself as a pipeline of up to 3 stages (its pipeline
 * candidates: 8 micro-batches, 1F1B; "stages" and "micro_batches" in each line); in, the
 * interaction network (hidden 32, 3 rounds) on 16 generated events joined into one graph. Adam
 * (lr 0.01) for all. --cost takes a calibration (loom
 * calibrate); without it $LOOM_COST_MODEL, else the built-in figures. */
#include <loom/loom.h>

#include "bench/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct model {
    const char *name;
    loom_node_dataset graph;                   /* gcn */
    float *x;                                  /* mlp: [512, 784] */
    int32_t *y;                                /* mlp: [512] */
    loom_samples ev;                           /* in */
    int32_t *src, *dst;                        /* in: the joined graph's endpoints */
} model;

enum { MLP_BATCH = 512, MLP_LAYERS = 3 };
static const int64_t mlp_widths[MLP_LAYERS] = {256, 256, 10};

static loom_tensor *build(loom_graph *g, void *user)
{
    model *m = user;
    loom_graph_set_seed(g, 1);
    if (!strcmp(m->name, "gcn")) {
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(m->graph.num_nodes, m->graph.num_features));
        loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F32, m->graph.num_nodes, m->graph.num_nodes);
        loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(m->graph.num_nodes));
        return loom_softmax_cross_entropy(g, loom_nn_gcn(g, adj, x, 16, m->graph.num_classes, 0.5), y, NULL);
    }
    if (!strcmp(m->name, "mlp")) {
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(MLP_BATCH, 784));
        loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(MLP_BATCH));
            return loom_softmax_cross_entropy(g, loom_nn_mlp(g, "mlp", x, MLP_LAYERS, mlp_widths, LOOM_ACT_RELU), y, NULL);
    }
    int64_t n = m->ev.node_off[m->ev.count], e = m->ev.edge_off[m->ev.count];
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(n, m->ev.node_features));
    loom_tensor *ea = loom_input(g, "edge_attr", LOOM_F32, loom_shape(e, m->ev.edge_features));
    loom_tensor *src = loom_input_index(g, "src", loom_shape(e), n);
    loom_tensor *dst = loom_input_index(g, "dst", loom_shape(e), n);
    loom_tensor *y = loom_input(g, "edge_y", LOOM_F32, loom_shape(e));
    return loom_bce_with_logits(g, loom_nn_interaction_network(g, "in", x, ea, src, dst, 32, 3), y, 1.0);
}

/* The MLP as a pipeline: layer l on stage (l S + S - 1) / L of S (the first, the largest, alone
 * on 2 stages), named as loom_nn_mlp names them; NULL for more stages than layers. The GCN and the
 * interaction network have none: micro-batches take neither a sparse input nor an index into the
 * batch's rows (docs/placement.md). */
static loom_tensor *build_stages(loom_graph *g, const loom_placement *const *stage, int nstages, void *user)
{
    model *m = user;
    if (strcmp(m->name, "mlp") || nstages > MLP_LAYERS)
        return NULL;
    loom_graph_set_seed(g, 1);
    loom_tensor *h = loom_input(g, "x", LOOM_F32, loom_shape(MLP_BATCH, 784));
    for (int l = 0, at = 0; l < MLP_LAYERS; l++) {
        int k = (l * nstages + nstages - 1) / MLP_LAYERS;
        if (k != at) { /* the activation to the next stage, and its layers there */
            h = loom_to_placement(g, h, stage[k]);
            loom_graph_set_placement(g, stage[k]);
            at = k;
        }
        char name[16];
        snprintf(name, sizeof name, "mlp.%d", l);
        h = loom_nn_linear(g, name, h, mlp_widths[l], 1);
        if (l + 1 < MLP_LAYERS)
            h = loom_relu(g, h);
    }
    return loom_softmax_cross_entropy(g, h, loom_input(g, "y", LOOM_I32, loom_shape(MLP_BATCH)), NULL);
}

static loom_status feed_array(loom_program *p, loom_graph *g, const char *name, loom_dtype dt, int nd, int64_t d0,
                              int64_t d1, void *data)
{
    loom_array a = {.dtype = dt, .ndim = nd, .shape = {d0, d1}, .data = data};
    return loom_program_feed(p, loom_graph_find(g, name), &a);
}

static loom_status feed(loom_program *p, loom_graph *g, void *user)
{
    model *m = user;
    loom_status s;
    if (!strcmp(m->name, "gcn")) {
        if ((s = loom_program_feed(p, loom_graph_find(g, "x"), &m->graph.x)) != LOOM_OK ||
            (s = loom_program_feed_csr(p, loom_graph_find(g, "adj"), &m->graph.adj)) != LOOM_OK)
            return s;
        return loom_program_feed(p, loom_graph_find(g, "y"), &m->graph.labels);
    }
    if (!strcmp(m->name, "mlp")) {
        if ((s = feed_array(p, g, "x", LOOM_F32, 2, MLP_BATCH, 784, m->x)) != LOOM_OK)
            return s;
        return feed_array(p, g, "y", LOOM_I32, 1, MLP_BATCH, 0, m->y);
    }
    int64_t n = m->ev.node_off[m->ev.count], e = m->ev.edge_off[m->ev.count];
    if ((s = feed_array(p, g, "x", LOOM_F32, 2, n, m->ev.node_features, m->ev.x)) != LOOM_OK ||
        (s = feed_array(p, g, "edge_attr", LOOM_F32, 2, e, m->ev.edge_features, m->ev.edge_attr)) != LOOM_OK ||
        (s = feed_array(p, g, "src", LOOM_I32, 1, e, 0, m->src)) != LOOM_OK ||
        (s = feed_array(p, g, "dst", LOOM_I32, 1, e, 0, m->dst)) != LOOM_OK)
        return s;
    return feed_array(p, g, "edge_y", LOOM_F32, 1, e, 0, m->ev.edge_y);
}

/* The model's data; 0, or -1 with a message. */
static int prepare(model *m)
{
    loom_error err = LOOM_ERROR_INIT;
    if (!strcmp(m->name, "gcn")) {
        if (loom_synthetic_graph(2708, 10556, 1433, 7, 1, &m->graph, &err) != LOOM_OK)
            return fprintf(stderr, "place: %s\n", err.msg), -1;
        return 0;
    }
    if (!strcmp(m->name, "mlp")) {
        m->x = malloc(sizeof *m->x * MLP_BATCH * 784);
        m->y = malloc(sizeof *m->y * MLP_BATCH);
        if (!m->x || !m->y)
            return fprintf(stderr, "place: out of memory\n"), -1;
        for (int64_t i = 0; i < MLP_BATCH * 784; i++)
            m->x[i] = (float)((uint32_t)(i * 2654435761u) % 1000) / 1000.0f;
        for (int i = 0; i < MLP_BATCH; i++)
            m->y[i] = i % 10;
        return 0;
    }
    if (!strcmp(m->name, "in")) {
        loom_event_opts eo = LOOM_EVENT_OPTS_INIT;
        eo.events = 16;
        if (loom_events_generate(&eo, &m->ev, &err) != LOOM_OK)
            return fprintf(stderr, "place: %s\n", err.msg), -1;
        int64_t e = m->ev.edge_off[m->ev.count];
        m->src = malloc(sizeof *m->src * (size_t)e);
        m->dst = malloc(sizeof *m->dst * (size_t)e);
        if (!m->src || !m->dst)
            return fprintf(stderr, "place: out of memory\n"), -1;
        for (int64_t i = 0; i < m->ev.count; i++) /* each event's nodes after the ones before it */
            for (int64_t k = m->ev.edge_off[i]; k < m->ev.edge_off[i + 1]; k++) {
                m->src[k] = (int32_t)(m->ev.src[k] + m->ev.node_off[i]);
                m->dst[k] = (int32_t)(m->ev.dst[k] + m->ev.node_off[i]);
            }
        return 0;
    }
    return fprintf(stderr, "place: unknown model '%s' (gcn, mlp, in)\n", m->name), -1;
}

static void release(model *m)
{
    if (m->graph.x.data)
        loom_node_dataset_free(&m->graph);
    loom_samples_free(&m->ev);
    free(m->x);
    free(m->y);
    free(m->src);
    free(m->dst);
}

/* "cpu:0-1 data", "cpu:0-3 pipeline 2x8" (stages x micro-batches). */
static const char *label(const loom_place_candidate *c, char *buf, size_t len)
{
    if (c->strategy == LOOM_PLACE_PIPELINE)
        snprintf(buf, len, "%s pipeline %dx%d", c->placement, c->stages, c->micro_batches);
    else
        snprintf(buf, len, "%s %s", c->placement, loom_place_strategy_name(c->strategy));
    return buf;
}

static int search(model *m, const loom_place_opts *o)
{
    loom_place_result r;
    loom_error err = LOOM_ERROR_INIT;
    loom_place_model pm = {.build = build, .feed = feed, .user = m, .stages = !strcmp(m->name, "mlp") ? build_stages : NULL};
    loom_status s = loom_place_search(&pm, o, &r, &err);
    char msg[600];
    if (s != LOOM_OK) {
        printf("{\"case\": \"place\", \"model\": \"%s\", \"devices\": \"%s\", \"error\": %s}\n", m->name, o->devices,
               json_str(err.msg, msg, sizeof msg));
        loom_place_result_free(&r);
        return 1;
    }
    for (int i = 0; i < r.n; i++) {
        const loom_place_candidate *c = &r.cand[i];
        char measured[32] = "null";
        if (c->measured_s >= 0)
            snprintf(measured, sizeof measured, "%.4f", c->measured_s * 1e3);
        printf("{\"case\": \"place_candidate\", \"model\": \"%s\", \"placement\": \"%s\", \"strategy\": \"%s\", \"stages\": %d, "
               "\"micro_batches\": %d, \"ok\": %s, \"predicted_ms\": %.4f, \"measured_ms\": %s, \"peak_bytes\": %lld, \"chosen\": %s, "
               "\"why\": %s}\n",
               m->name, c->placement, loom_place_strategy_name(c->strategy), c->stages, c->micro_batches, c->ok ? "true" : "false",
               c->predicted_s * 1e3,
               measured, (long long)c->peak_bytes, i == r.chosen ? "true" : "false",
               json_str(c->why, msg, sizeof msg));
    }
    if (r.chosen >= 0 && r.best_measured >= 0) {
        const loom_place_candidate *c = &r.cand[r.chosen], *b = &r.cand[r.best_measured];
        char cl[128], bl[128];
        printf("{\"case\": \"place\", \"model\": \"%s\", \"devices\": \"%s\", \"candidates\": %d, \"chosen\": \"%s\", "
               "\"best_measured\": \"%s\", \"chosen_over_best\": %.3f, \"predicted_over_measured\": %.3f}\n",
               m->name, o->devices, r.n, label(c, cl, sizeof cl), label(b, bl, sizeof bl), c->measured_s / b->measured_s,
               c->predicted_s / c->measured_s);
    }
    loom_place_result_free(&r);
    return 0;
}

int main(int argc, char **argv)
{
    loom_place_opts o = LOOM_PLACE_OPTS_INIT;
    o.train.optimizer = loom_adam(0.01);
    o.log = stderr;
    char models[256] = "gcn,mlp,in";
    for (int i = 1; i < argc; i += 2) { /* each option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return fprintf(stderr, "place: %s needs a value\n", a), 2;
        if (!strcmp(a, "--devices"))
            o.devices = v;
        else if (!strcmp(a, "--models"))
            snprintf(models, sizeof models, "%s", v);
        else if (!strcmp(a, "--measure"))
            o.measure = atoi(v);
        else if (!strcmp(a, "--steps"))
            o.steps = atoi(v);
        else if (!strcmp(a, "--warmup"))
            o.warmup = atoi(v);
        else if (!strcmp(a, "--memory-limit"))
            o.memory_limit = strtoll(v, NULL, 10);
        else if (!strcmp(a, "--cost"))
            o.train.cost_model = v;
        else if (!strcmp(a, "--threads"))
            o.train.threads = atoi(v);
        else
            return fprintf(stderr, "place: unknown option %s (see the top of bench/place.c)\n", a), 2;
    }
    int failed = 0;
    for (char *name = strtok(models, ","); name; name = strtok(NULL, ",")) {
        model m = {.name = name, .ev = LOOM_SAMPLES_INIT};
        if (prepare(&m) != 0)
            failed = 1;
        else
            failed |= search(&m, &o);
        release(&m);
    }
    return failed;
}
