/* Models trained the same way on any placement (see equiv.h). */
#include "equiv.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

const char *const lt_mode_name[LT_MODE_COUNT] = {"data parallel", "model parallel", "hybrid"};

int lt_mesh_hybrid;

/* A batch input's hint under mode m: B for model parallelism; under hybrid with lt_mesh_hybrid,
 * (S(0), B) (the batch over the mesh's rows); none otherwise. */
static void hint_batch(loom_tensor *x, enum lt_mode m)
{
    if (m == LT_MODEL)
        loom_tensor_set_sbp(x, loom_broadcast());
    else if (m == LT_HYBRID && lt_mesh_hybrid)
        loom_tensor_set_nd_sbp(x, loom_nd_sbp_2d(loom_split(0), loom_broadcast()));
}

/* A weight's hint under mode m: split along axis (S(axis)) for model and hybrid parallelism;
 * under hybrid with lt_mesh_hybrid, (B, S(axis)) (split along each row of the mesh). */
static void hint_weight(loom_tensor *w, enum lt_mode m, int axis)
{
    if (m == LT_HYBRID && lt_mesh_hybrid)
        loom_tensor_set_nd_sbp(w, loom_nd_sbp_2d(loom_broadcast(), loom_split(axis)));
    else if (m != LT_DATA)
        loom_tensor_set_sbp(w, loom_split(axis));
}

/* ---- models ----------------------------------------------------------------------------------- */

static void ring9(loom_csr *m);

/* ring9's edges with a self loop per node (loom_csr_edges); E when the arrays are NULL. */
static int64_t ring9_edges(loom_array *src, loom_array *dst)
{
    loom_csr m;
    loom_array a, b;
    loom_error e = LOOM_ERROR_INIT;
    ring9(&m);
    ck_assert_msg(loom_csr_edges(&m, 1, src ? src : &a, dst ? dst : &b, &e) == LOOM_OK, "%s", e.msg);
    int64_t n = (src ? src : &a)->shape[0];
    if (!src) {
        loom_array_free(&a);
        loom_array_free(&b);
    }
    return n;
}

/* MLP 6 -> 5 -> 3 on a batch of 7 (uneven on 2 and 3 devices... and 4). Model parallelism splits
 * the hidden layer's weight by columns with the whole batch everywhere; hybrid splits both. */
loom_tensor *lt_model_mlp(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    (void)seed;
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(7, 6));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(7));
    in[0] = x, in[1] = y, *nin = 2;
    hint_batch(x, m);
    loom_tensor *h = loom_tanh(g, loom_nn_linear(g, "fc1", x, 5, 1));
    hint_weight(loom_graph_tensor(g, "fc1.weight"), m, 1);
    return loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 3, 1), y, NULL);
}

loom_tensor *lt_model_embedding(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    loom_tensor *idx = loom_input(g, "idx", LOOM_I32, loom_shape(7));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(7));
    in[0] = idx, in[1] = y, *nin = 2;
    loom_tensor *table = loom_param(g, "table", LOOM_F32, loom_shape(9, 4), loom_init_normal(0, 1, seed));
    hint_weight(table, m, 0);
    hint_batch(idx, m);
    loom_tensor *h = loom_tanh(g, loom_gather_rows(g, table, idx));
    return loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc", h, 3, 1), y, NULL);
}

const char *lt_stage2;

loom_tensor *lt_model_pipeline(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    (void)seed;
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(7, 6));
    in[0] = x, *nin = 1;
    loom_tensor *h = loom_tanh(g, loom_nn_linear(g, "fc1", x, 5, 1));
    if (m == LT_HYBRID)
        loom_tensor_set_sbp(loom_graph_tensor(g, "fc1.weight"), loom_split(1));
    if (lt_stage2) {
        loom_error e = {0};
        loom_placement *p2 = loom_placement_parse(lt_stage2, &e);
        ck_assert_msg(p2 != NULL, "%s", e.msg);
        h = loom_to_placement(g, h, p2);
        loom_graph_set_placement(g, p2); /* the next stage's inputs and parameters */
        loom_placement_free(p2);
    }
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(7));
    in[1] = y, *nin = 2;
    loom_tensor *logits = loom_nn_linear(g, "fc2", h, 3, 1);
    if (m != LT_DATA)
        loom_tensor_set_sbp(loom_graph_tensor(g, "fc2.weight"), loom_split(1));
    return loom_softmax_cross_entropy(g, logits, y, NULL);
}

static loom_tensor *gcn(loom_graph *g, enum lt_mode m, loom_tensor **in, int *nin, double dropout)
{
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(9, 4));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(9));
    in[0] = x, in[1] = y, *nin = 2;
    loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F64, 9, 9);
    in[2] = adj, *nin = 3;
    hint_batch(adj, m);
    loom_tensor *logits = loom_nn_gcn(g, adj, x, 5, 3, dropout);
    hint_weight(loom_graph_tensor(g, "gcn1.weight"), m, 1);
    return loom_softmax_cross_entropy(g, logits, y, NULL);
}

/* GCN (2 layers) on a fixed random graph of 9 nodes, adjacency split by rows. */
loom_tensor *lt_model_gcn(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    (void)seed;
    return gcn(g, m, in, nin, 0.0);
}

loom_tensor *lt_model_gcn_dropout(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    (void)seed;
    return gcn(g, m, in, nin, 0.5);
}

/* GAT (loom_nn_gat: 4 heads of 3, then 3 classes) on ring9 with self loops, dropout 0.3 on the
 * inputs and the attention. Model parallelism keeps x whole and splits the first projection by
 * columns, hybrid splits it with x split by rows. */
loom_tensor *lt_model_gat(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    (void)seed;
    const int64_t e = ring9_edges(NULL, NULL);
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(9, 4));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(9));
    loom_tensor *src = loom_input_index(g, "src", loom_shape(e), 9), *dst = loom_input_index(g, "dst", loom_shape(e), 9);
    in[0] = x, in[1] = y, in[2] = src, in[3] = dst, *nin = 4;
    hint_batch(x, m);
    loom_tensor *logits = loom_nn_gat(g, x, src, dst, 4, 3, 3, 0.3);
    hint_weight(loom_graph_tensor(g, "gat1.lin.weight"), m, 1);
    return loom_softmax_cross_entropy(g, logits, y, NULL);
}

loom_tensor *lt_model_random(loom_graph *g, uint64_t seed, enum lt_mode m, loom_tensor **in, int *nin)
{
    int64_t rc[2];
    loom_tensor *x, *idx;
    loom_tensor *loss = lt_random_graph(g, seed, &x, &idx, rc);
    in[0] = x, in[1] = idx, *nin = 2;
    hint_batch(x, m);
    hint_weight(loom_graph_tensor(g, "wc"), m, 1);
    return loss;
}

/* ---- data ------------------------------------------------------------------------------------- */

typedef struct feeds {
    int n;
    loom_tensor *t[8];
    loom_array a[8];
    loom_csr m[8];
    int csr[8];
} feeds;

/* A ring of 9 nodes with a few chords. */
static void ring9(loom_csr *m)
{
    static int32_t rowptr[10], col[36];
    static double val[36];
    int e = 0;
    for (int r = 0; r < 9; r++) {
        rowptr[r] = e;
        int nb[3] = {(r + 8) % 9, (r + 1) % 9, (r * 4 + 1) % 9};
        for (int j = 0; j < 3; j++)
            if (nb[j] != r && (j < 2 || (nb[j] != (r + 8) % 9 && nb[j] != (r + 1) % 9)))
                col[e] = nb[j], val[e++] = 1.0;
    }
    rowptr[9] = e;
    *m = (loom_csr){.nrows = 9, .ncols = 9, .nnz = e, .vdtype = LOOM_F64, .rowptr = rowptr, .col = col, .val = val};
}

/* Indices index the graph's table when it has one, else the rows; labels are in [0, 3). */
static uint64_t index_bound(loom_graph *g, loom_tensor *t, int64_t rows)
{
    if (strcmp(loom_tensor_name(t), "idx"))
        return 3;
    loom_tensor *table = loom_graph_find(g, "table");
    return table ? (uint64_t)loom_tensor_dim(table, 0) : (uint64_t)rows;
}

/* Seeded data for every input: normal floats, row indices in [0, rows), labels in [0, 3). */
static void make_feeds(feeds *f, loom_graph *g, loom_tensor **in, int nin, uint64_t seed)
{
    f->n = nin;
    for (int k = 0; k < nin; k++) {
        f->t[k] = in[k];
        f->csr[k] = !strcmp(loom_tensor_name(in[k]), "adj");
        if (f->csr[k]) {
            ring9(&f->m[k]);
            continue;
        }
        if (!strcmp(loom_tensor_name(in[k]), "src") && k + 1 < nin && !strcmp(loom_tensor_name(in[k + 1]), "dst")) {
            ring9_edges(&f->a[k], &f->a[k + 1]);
            f->t[k + 1] = in[k + 1];
            k++;
            continue;
        }
        loom_shape s = loom_tensor_shape(in[k]);
        int64_t shape[LOOM_MAX_DIMS];
        for (int i = 0; i < s.ndim; i++)
            shape[i] = s.d[i];
        loom_array *a = &f->a[k];
        ck_assert_int_eq(loom_array_alloc(a, loom_tensor_dtype(in[k]), s.ndim, shape), LOOM_OK);
        int64_t n = loom_array_numel(a);
        double v[1024];
        ck_assert_int_le(n, 1024);
        lt_fill_normal(v, n, seed * 31 + (uint64_t)k);
        for (int64_t i = 0; i < n; i++) {
            if (a->dtype == LOOM_F32)
                ((float *)a->data)[i] = (float)v[i];
            else if (a->dtype == LOOM_F64)
                ((double *)a->data)[i] = v[i];
            else
                ((int32_t *)a->data)[i] = (int32_t)((uint64_t)(fabs(v[i]) * 1000) % index_bound(g, in[k], shape[0]));
        }
    }
}

static void free_feeds(feeds *f)
{
    for (int k = 0; k < f->n; k++)
        if (!f->csr[k])
            loom_array_free(&f->a[k]);
}

/* The same data every step, through a data source. */
static loom_status feed_source(void *ctx, int64_t step, loom_feeder *fd, int *end, char *msg, size_t len)
{
    (void)step, (void)end;
    feeds *f = ctx;
    for (int k = 0; k < f->n; k++) {
        loom_status s = f->csr[k] ? loom_feeder_csr(fd, f->t[k], &f->m[k]) : loom_feeder_dense(fd, f->t[k], &f->a[k]);
        if (s != LOOM_OK) {
            snprintf(msg, len, "feeding '%s': %s", loom_tensor_name(f->t[k]), loom_status_str(s));
            return s;
        }
    }
    return LOOM_OK;
}

void lt_train(lt_build_fn build, uint64_t seed, enum lt_mode m, const lt_train_opts *o, lt_result *r)
{
    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, seed);
    loom_error e = {0};
    loom_placement *pl = loom_placement_parse(o->placement, &e);
    ck_assert_msg(pl != NULL, "%s", e.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_tensor *in[8];
    int nin = 0;
    loom_tensor *loss = build(g, seed, m, in, &nin);
    loom_program *p = NULL;
    loom_optimizer opt = seed % 2 ? loom_adam(0.05) : loom_sgd(0.1);
    opt.momentum = seed % 2 ? 0 : 0.9;
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = opt, .executor = o->executor}, &p) == LOOM_OK,
                  "seed %llu %s on %s: %s", (unsigned long long)seed, lt_mode_name[m], o->placement, loom_graph_error(g));
    feeds f = {0};
    make_feeds(&f, g, in, nin, seed);
    for (int k = 0; k < nin; k++) { /* fed once either way: a source's registers are sized by it */
        loom_status s = f.csr[k] ? loom_program_feed_csr(p, in[k], &f.m[k]) : loom_program_feed(p, in[k], &f.a[k]);
        ck_assert_msg(s == LOOM_OK, "%s", loom_program_error(p));
    }
    if (o->with_source)
        loom_program_set_source(p, feed_source, &f);
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, LT_STEPS) == LOOM_OK, "seed %llu %s on %s: %s",
                  (unsigned long long)seed, lt_mode_name[m], o->placement, loom_program_error(p));
    int64_t n;
    const double *l = loom_program_losses(p, &n);
    ck_assert_int_eq(n, LT_STEPS);
    memcpy(r->loss, l, sizeof r->loss);
    r->nparams = 0;
    for (int k = 0; loom_graph_param(g, k); k++) {
        loom_array w;
        ck_assert_msg(loom_program_fetch(p, loom_graph_param(g, k), &w) == LOOM_OK, "%s", loom_program_error(p));
        for (int64_t i = 0; i < loom_array_numel(&w) && r->nparams < 256; i++)
            r->params[r->nparams++] = w.dtype == LOOM_F32 ? ((float *)w.data)[i] : ((double *)w.data)[i];
    }
    char what[160];
    snprintf(what, sizeof what, "%s seed=%llu %s exec=%d source=%d", o->placement, (unsigned long long)seed,
             lt_mode_name[m], (int)o->executor, o->with_source);
    lt_record_results(what, r->loss, LT_STEPS);
    lt_record_results(what, r->params, r->nparams);
    loom_program_free(p);
    free_feeds(&f);
    loom_graph_free(g);
}

int lt_results_same(const lt_result *a, const lt_result *b)
{
    return !memcmp(a->loss, b->loss, sizeof a->loss) && a->nparams == b->nparams &&
           !memcmp(a->params, b->params, (size_t)a->nparams * sizeof *a->params);
}

int lt_check_pipelines(const char *const (*stages)[2], int nstages, int nseeds)
{
    int cases = 0;
    for (uint64_t seed = 0; seed < (uint64_t)nseeds; seed++) {
        lt_result one, ref, actors;
        lt_stage2 = NULL;
        lt_train(lt_model_pipeline, seed, LT_DATA, &(lt_train_opts){.placement = "cpu:0", .executor = LOOM_EXEC_REFERENCE}, &one);
        for (int k = 0; k < nstages; k++)
            for (int m = 0; m < LT_MODE_COUNT; m++) {
                char what[160];
                snprintf(what, sizeof what, "seed %llu %s, stages %s and %s", (unsigned long long)seed, lt_mode_name[m], stages[k][0],
                         stages[k][1]);
                lt_stage2 = stages[k][1];
                lt_train(lt_model_pipeline, seed, (enum lt_mode)m,
                         &(lt_train_opts){.placement = stages[k][0], .executor = LOOM_EXEC_REFERENCE}, &ref);
                lt_assert_results_close(&ref, &one, 1e-5, what);
                for (int src = 0; src < 2; src++) {
                    lt_train(lt_model_pipeline, seed, (enum lt_mode)m,
                             &(lt_train_opts){.placement = stages[k][0], .executor = LOOM_EXEC_ACTORS, .with_source = src}, &actors);
                    ck_assert_msg(lt_results_same(&actors, &ref), "%s%s: the actor runtime differs from the SBP reference executor", what,
                                  src ? " with a data source" : "");
                }
                cases++;
            }
    }
    lt_stage2 = NULL;
    return cases;
}

void lt_assert_results_close(const lt_result *a, const lt_result *b, double tol, const char *what)
{
    for (int s = 0; s < LT_STEPS; s++)
        ck_assert_msg(fabs(a->loss[s] - b->loss[s]) <= tol * fmax(1, fabs(b->loss[s])), "%s: step %d loss %.10g, against %.10g",
                      what, s, a->loss[s], b->loss[s]);
    ck_assert_int_eq(a->nparams, b->nparams);
    for (int i = 0; i < b->nparams; i++)
        ck_assert_msg(fabs(a->params[i] - b->params[i]) <= tol * fmax(1, fabs(b->params[i])),
                      "%s: parameter element %d is %.10g, against %.10g", what, i, a->params[i], b->params[i]);
}
