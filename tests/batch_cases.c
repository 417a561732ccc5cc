/* Graph batches for tests (see batch_cases.h). The joined source collates on its own, written
 * apart from data/batch.c on purpose: it is the oracle the library's per-device collation is
 * checked against. */
#include "batch_cases.h"
#include "harness.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t mix(uint64_t z)
{
    z += UINT64_C(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}
static double unit(uint64_t *st) { return (double)(mix((*st)++) >> 11) * 0x1.0p-53; }
static double normal(uint64_t *st)
{
    double u = unit(st), v = unit(st);
    return sqrt(-2 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

void lt_make_samples(loom_samples *s, int64_t count, uint64_t seed)
{
    uint64_t st = seed * 1000003u + 17;
    *s = LOOM_SAMPLES_INIT;
    s->count = count;
    s->node_features = 5;
    s->edge_features = 4;
    s->num_classes = 3;
    s->node_off = calloc((size_t)count + 1, sizeof *s->node_off);
    s->edge_off = calloc((size_t)count + 1, sizeof *s->edge_off);
    s->graph_y = calloc((size_t)count, sizeof *s->graph_y);
    for (int64_t i = 0; i < count; i++) {
        int64_t n = 2 + (int64_t)(38 * pow(unit(&st), 3)); /* mostly small, a few large */
        s->node_off[i + 1] = s->node_off[i] + n;
        s->edge_off[i + 1] = s->edge_off[i] + 2 * n;
        s->graph_y[i] = (int32_t)(mix(st++) % 3);
    }
    int64_t nodes = s->node_off[count], edges = s->edge_off[count];
    s->x = malloc((size_t)nodes * 5 * sizeof(float));
    s->edge_attr = malloc((size_t)edges * 4 * sizeof(float));
    s->src = malloc((size_t)edges * sizeof(int32_t));
    s->dst = malloc((size_t)edges * sizeof(int32_t));
    s->edge_y = malloc((size_t)edges * sizeof(float));
    for (int64_t v = 0; v < nodes * 5; v++)
        s->x[v] = (float)normal(&st);
    for (int64_t i = 0; i < count; i++) {
        int64_t n = s->node_off[i + 1] - s->node_off[i];
        for (int64_t e = s->edge_off[i]; e < s->edge_off[i + 1]; e++) {
            s->src[e] = (int32_t)(mix(st++) % (uint64_t)n);
            s->dst[e] = (int32_t)(mix(st++) % (uint64_t)n);
            for (int k = 0; k < 4; k++)
                s->edge_attr[e * 4 + k] = (float)normal(&st);
            const float *a = s->x + (s->node_off[i] + s->src[e]) * 5, *b = s->x + (s->node_off[i] + s->dst[e]) * 5;
            s->edge_y[e] = a[0] * b[0] + s->edge_attr[e * 4] > 0 ? 1.0f : 0.0f;
        }
    }
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_samples_validate(s, &err) == LOOM_OK, "%s", err.msg);
}

void lt_batch_model_new(lt_batch_model *m, const loom_samples *s, const char *placement, enum lt_batch_kind kind,
                        uint64_t seed)
{
    const int graphs = kind != LT_BATCH_IN;
    memset(m, 0, sizeof *m);
    loom_graph *g = m->g = lt_graph_on(placement, seed);
    loom_batch_inputs *in = &m->in;
    *in = (loom_batch_inputs){0};
    loom_batch_dims(g, s, 12, in);
    const loom_dim N = in->nodes, E = in->edges, G = in->graphs;
    if (!graphs)
        in->graphs = 0; /* G is not fed */
    in->x = loom_input(g, "x", LOOM_F32, loom_shape(N, s->node_features));
    in->src = loom_input_index(g, "src", loom_shape(E), N);
    in->dst = loom_input_index(g, "dst", loom_shape(E), N);
    if (graphs) {
        in->node_graph = loom_input_index(g, "node_graph", loom_shape(N), G);
        in->graph_y = loom_input(g, "graph_y", LOOM_I32, loom_shape(G));
        if (kind == LT_BATCH_GIN)
            m->out = loom_nn_gin(g, "gin", in->x, in->src, in->dst, in->node_graph, G, 8, 2, s->num_classes);
        else {
            loom_gat_opts o = LOOM_GAT_OPTS_INIT;
            o.heads = 2;
            o.dropout = 0.2;
            loom_tensor *h = loom_elu(g, loom_nn_gat_layer(g, "gat1", in->x, in->src, in->dst, 4, &o), 1.0);
            o.heads = 1;
            o.concat = 0;
            h = loom_nn_gat_layer(g, "gat2", h, in->src, in->dst, 4, &o);
            m->out = loom_nn_linear(g, "head", loom_segment_mean(g, h, in->node_graph, G), s->num_classes, 1);
        }
        m->loss = loom_softmax_cross_entropy(g, m->out, in->graph_y, NULL);
    } else {
        in->edge_attr = loom_input(g, "edge_attr", LOOM_F32, loom_shape(E, s->edge_features));
        in->edge_y = loom_input(g, "edge_y", LOOM_F32, loom_shape(E));
        m->out = loom_nn_interaction_network(g, "in", in->x, in->edge_attr, in->src, in->dst, 8, 2);
        m->loss = loom_bce_with_logits(g, m->out, in->edge_y, 2.0);
    }
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_adam(0.01);
    ck_assert_msg(loom_compile(g, m->loss, &o, &m->p) == LOOM_OK, "%s", loom_graph_error(g));
}

void lt_batch_model_free(lt_batch_model *m)
{
    loom_program_free(m->p);
    loom_graph_free(m->g);
}

typedef struct joined {
    int64_t nodes, edges, graphs;
    float *x, *ea, *ey;
    int32_t *src, *dst, *ng, *gy;
} joined;

static void join(const loom_samples *s, const loom_sampler *smp, int64_t k, joined *j)
{
    const loom_sampler_opts *o = loom_sampler_options(smp);
    int64_t nodes = 0, edges = 0, graphs = 0;
    for (int d = 0; d < o->devices; d++) {
        int64_t n;
        const int64_t *ids = loom_sampler_share(smp, k, d, &n);
        for (int64_t q = 0; q < n; q++) {
            nodes += loom_samples_nodes(s, ids[q]);
            edges += loom_samples_edges(s, ids[q]);
        }
        graphs += n;
    }
    *j = (joined){.x = malloc((size_t)(nodes + 1) * 5 * sizeof(float)), .ea = malloc((size_t)(edges + 1) * 4 * sizeof(float)),
                  .ey = malloc((size_t)(edges + 1) * sizeof(float)), .src = malloc((size_t)(edges + 1) * sizeof(int32_t)),
                  .dst = malloc((size_t)(edges + 1) * sizeof(int32_t)), .ng = malloc((size_t)(nodes + 1) * sizeof(int32_t)),
                  .gy = malloc((size_t)(graphs + 1) * sizeof(int32_t))};
    for (int d = 0; d < o->devices; d++) {
        int64_t n;
        const int64_t *ids = loom_sampler_share(smp, k, d, &n);
        for (int64_t q = 0; q < n; q++) {
            const int64_t i = ids[q];
            for (int64_t v = s->node_off[i]; v < s->node_off[i + 1]; v++, j->nodes++) {
                memcpy(j->x + j->nodes * 5, s->x + v * 5, 5 * sizeof(float));
                j->ng[j->nodes] = (int32_t)j->graphs;
            }
            for (int64_t e = s->edge_off[i]; e < s->edge_off[i + 1]; e++, j->edges++) {
                memcpy(j->ea + j->edges * 4, s->edge_attr + e * 4, 4 * sizeof(float));
                j->ey[j->edges] = s->edge_y[e];
                j->src[j->edges] = (int32_t)(s->src[e] + j->nodes - loom_samples_nodes(s, i));
                j->dst[j->edges] = (int32_t)(s->dst[e] + j->nodes - loom_samples_nodes(s, i));
            }
            j->gy[j->graphs++] = s->graph_y[i];
        }
    }
}

static loom_status feed1(loom_feeder *f, loom_tensor *t, loom_dtype dt, int64_t rows, int64_t cols, void *data)
{
    if (!t)
        return LOOM_OK;
    loom_array a = {.dtype = dt, .ndim = loom_tensor_ndim(t), .shape = {rows, cols}, .data = data};
    return loom_feeder_dense(f, t, &a);
}

loom_status lt_joined_source_fn(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t msglen)
{
    (void)step;
    (void)msg;
    (void)msglen;
    lt_joined_source *js = ctx;
    if (js->next >= loom_sampler_steps(js->smp)) {
        *end = 1;
        return LOOM_OK;
    }
    joined j;
    join(js->s, js->smp, js->next++, &j);
    const loom_batch_inputs *in = js->in;
    loom_status st = feed1(f, in->x, LOOM_F32, j.nodes, 5, j.x);
    if (st == LOOM_OK)
        st = feed1(f, in->edge_attr, LOOM_F32, j.edges, 4, j.ea);
    if (st == LOOM_OK)
        st = feed1(f, in->edge_y, LOOM_F32, j.edges, 1, j.ey);
    if (st == LOOM_OK)
        st = feed1(f, in->src, LOOM_I32, j.edges, 1, j.src);
    if (st == LOOM_OK)
        st = feed1(f, in->dst, LOOM_I32, j.edges, 1, j.dst);
    if (st == LOOM_OK)
        st = feed1(f, in->node_graph, LOOM_I32, j.nodes, 1, j.ng);
    if (st == LOOM_OK)
        st = feed1(f, in->graph_y, LOOM_I32, j.graphs, 1, j.gy);
    free(j.x);
    free(j.ea);
    free(j.ey);
    free(j.src);
    free(j.dst);
    free(j.ng);
    free(j.gy);
    return st;
}

double *lt_batch_train_parts(lt_batch_model *m, const loom_samples *s, loom_sampler *smp, int epochs, int64_t *n)
{
    loom_error err = LOOM_ERROR_INIT;
    loom_batch_source *src = NULL;
    ck_assert_msg(loom_batch_source_new(m->p, s, smp, &m->in, &src, &err) == LOOM_OK, "%s", err.msg);
    for (int e = 0; e < epochs; e++) {
        ck_assert_msg(loom_sampler_epoch(smp, e, &err) == LOOM_OK, "%s", err.msg);
        ck_assert_msg(loom_batch_plan_epoch(m->p, smp, &m->in, &err) == LOOM_OK, "%s", err.msg);
        loom_batch_source_rewind(src, 0);
        ck_assert_msg(loom_batch_run(src, LOOM_RUN_STEP, 0, &err) == LOOM_OK, "%s", err.msg);
    }
    loom_batch_source_free(src);
    const double *l = loom_program_losses(m->p, n);
    double *r = malloc((size_t)*n * sizeof *r + 1);
    memcpy(r, l, (size_t)*n * sizeof *r);
    return r;
}

/* The same epochs on one device, each step's shares joined into one part. */
static double *train_joined(lt_batch_model *m, const loom_samples *s, loom_sampler *smp, int epochs, int64_t *n)
{
    loom_error err = LOOM_ERROR_INIT;
    for (int e = 0; e < epochs; e++) {
        ck_assert_msg(loom_sampler_epoch(smp, e, &err) == LOOM_OK, "%s", err.msg);
        ck_assert_msg(loom_batch_plan_epoch(m->p, smp, &m->in, &err) == LOOM_OK, "%s", err.msg);
        lt_joined_source js = {.s = s, .smp = smp, .in = &m->in};
        loom_program_set_source(m->p, lt_joined_source_fn, &js);
        ck_assert_msg(loom_program_run_steps(m->p, LOOM_RUN_STEP, loom_sampler_steps(smp)) == LOOM_OK, "%s",
                      loom_program_error(m->p));
    }
    const double *l = loom_program_losses(m->p, n);
    double *r = malloc((size_t)*n * sizeof *r + 1);
    memcpy(r, l, (size_t)*n * sizeof *r);
    return r;
}

loom_sampler *lt_batch_sampler(loom_samples *s, int ndev, loom_sampler_kind kind)
{
    lt_make_samples(s, 48, 7);
    loom_error err = LOOM_ERROR_INIT;
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = kind;
    o.batch = 12;
    o.devices = ndev;
    o.seed = 5;
    o.max_nodes = 60; /* budget kinds: several steps an epoch */
    o.max_edges = 120;
    loom_sampler *smp;
    ck_assert_msg(loom_sampler_new(s, NULL, s->count, &o, &smp, &err) == LOOM_OK, "%s", err.msg);
    return smp;
}

void lt_batch_equivalence(enum lt_batch_kind model, const char *placement, int ndev, loom_sampler_kind kind)
{
    loom_samples s;
    loom_sampler *smp = lt_batch_sampler(&s, ndev, kind);
    lt_batch_model many, one;
    lt_batch_model_new(&many, &s, placement, model, 11);
    lt_batch_model_new(&one, &s, NULL, model, 11);
    int64_t na, nb;
    double *a = lt_batch_train_parts(&many, &s, smp, 2, &na), *b = train_joined(&one, &s, smp, 2, &nb);
    ck_assert_int_eq(na, nb);
    ck_assert_int_gt(na, 4);
    char what[96];
    static const char *const names[] = {"interaction network", "GIN", "GAT"};
    snprintf(what, sizeof what, "%s on %s (%s), losses against one device", names[model], placement,
             loom_sampler_kind_name(kind));
    lt_assert_close(a, b, na, 1e-5, what);
    lt_record_results(what, a, na);
    free(a);
    free(b);
    lt_batch_model_free(&many);
    lt_batch_model_free(&one);
    loom_sampler_free(smp);
    loom_samples_free(&s);
}
