/* The graph attention layer (loom_nn_gat_layer): its values against a direct computation of GAT's
 * formulas, its gradients by central differences (f64) with and without attention dropout, heads
 * concatenated and averaged; its refusals; and loom_csr_edges, which gives it a CSR graph's edges
 * with self loops. Its training on several devices is checked with the other models
 * (test_sbp_equiv: one graph on cpu:0-1..3; test_batch: graph batches split by whole graphs). */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A graph of 5 nodes: node 4 has no in-edge, node 0 three, one edge repeated (1 -> 2 twice). */
enum { N = 5, E = 9, F = 3 };
static const int32_t src5[E] = {1, 2, 3, 0, 1, 1, 3, 0, 2};
static const int32_t dst5[E] = {0, 0, 0, 1, 2, 2, 2, 3, 3};

static double at(const loom_array *a, int64_t i)
{
    return a->dtype == LOOM_F64 ? ((const double *)a->data)[i] : ((const float *)a->data)[i];
}

/* The layer's output computed from its definition, from x and the fetched parameters (bias NULL:
 * none): y [N, heads * c] (concat) or [N, c]. */
static void direct_gat(const double *x, const loom_array *w, const loom_array *as, const loom_array *ad, const loom_array *b,
                       int64_t heads, int64_t c, int concat, double slope, double *y)
{
    double h[N][4][4], sc[E], alpha[E];
    ck_assert(heads <= 4 && c <= 4);
    for (int i = 0; i < N; i++)
        for (int k = 0; k < heads; k++)
            for (int j = 0; j < c; j++) {
                double v = 0;
                for (int f = 0; f < F; f++)
                    v += x[i * F + f] * at(w, f * heads * c + k * c + j);
                h[i][k][j] = v;
            }
    const int64_t width = concat ? heads * c : c;
    memset(y, 0, sizeof(double) * N * (size_t)width);
    for (int k = 0; k < heads; k++) {
        for (int e = 0; e < E; e++) {
            double s = 0;
            for (int j = 0; j < c; j++)
                s += at(as, k * c + j) * h[src5[e]][k][j] + at(ad, k * c + j) * h[dst5[e]][k][j];
            sc[e] = s > 0 ? s : slope * s;
        }
        double m[N], z[N];
        for (int i = 0; i < N; i++)
            m[i] = -INFINITY, z[i] = 0;
        for (int e = 0; e < E; e++)
            m[dst5[e]] = fmax(m[dst5[e]], sc[e]);
        for (int e = 0; e < E; e++)
            z[dst5[e]] += exp(sc[e] - m[dst5[e]]);
        for (int e = 0; e < E; e++)
            alpha[e] = exp(sc[e] - m[dst5[e]]) / z[dst5[e]];
        for (int e = 0; e < E; e++)
            for (int j = 0; j < c; j++) {
                double v = alpha[e] * h[src5[e]][k][j];
                if (concat)
                    y[dst5[e] * width + k * c + j] += v;
                else
                    y[dst5[e] * width + j] += v / (double)heads;
            }
    }
    for (int i = 0; b && i < N; i++)
        for (int j = 0; j < width; j++)
            y[i * width + j] += at(b, j);
}

static loom_array fetch(lt_case *c, const char *name)
{
    loom_array a;
    loom_program *p = lt_case_program(c);
    ck_assert_msg(loom_program_fetch(p, loom_graph_tensor(lt_graph(c), name), &a) == LOOM_OK, "%s", loom_program_error(p));
    return a;
}

/* The layer (x a parameter, f64) on the 5-node graph with opts. */
static loom_tensor *layer5(lt_case *c, int64_t out, const loom_gat_opts *o)
{
    loom_tensor *x = lt_param(c, "x", loom_shape(N, F));
    loom_tensor *s = lt_input_static(c, "src", LOOM_I32, loom_shape(E), src5);
    loom_tensor *d = lt_input_static(c, "dst", LOOM_I32, loom_shape(E), dst5);
    return loom_nn_gat_layer(lt_graph(c), "gat", x, s, d, out, o);
}

/* A layer's shape and options, as the cases below list them. */
typedef struct gat_case {
    int64_t heads, out;
    int concat, bias;
    double slope, dropout;
} gat_case;

static loom_gat_opts opts_of(const gat_case *k)
{
    loom_gat_opts o = LOOM_GAT_OPTS_INIT;
    o.heads = k->heads;
    o.concat = k->concat;
    o.bias = k->bias;
    o.negative_slope = k->slope;
    o.dropout = k->dropout;
    return o;
}

START_TEST(test_gat_values)
{
    const gat_case cases[] = {{2, 3, 1, 1, 0.2, 0}, {3, 2, 0, 1, 0.2, 0}, {1, 4, 1, 0, 0.05, 0}, {4, 1, 0, 0, 0.2, 0}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lt_case *c = lt_case_new();
        const loom_gat_opts o = opts_of(&cases[k]);
        loom_tensor *y = layer5(c, cases[k].out, &o);
        const int64_t width = o.concat ? o.heads * cases[k].out : cases[k].out;
        ck_assert_int_eq(loom_tensor_ndim(y), 2);
        ck_assert_int_eq(loom_tensor_dim(y, 1), width);
        loom_array r = lt_eval(c, y);
        if (o.bias) {
            /* zeros at first: give it values that show */
            loom_array b0 = fetch(c, "gat.bias");
            for (int64_t j = 0; j < width; j++)
                ((double *)b0.data)[j] = 0.1 * (double)(j + 1);
            r = lt_eval(c, y);
        } else
            ck_assert_ptr_null(loom_graph_find(lt_graph(c), "gat.bias"));
        loom_array x = fetch(c, "x"), w = fetch(c, "gat.lin.weight"), as = fetch(c, "gat.att_src"),
                   ad = fetch(c, "gat.att_dst"), b = o.bias ? fetch(c, "gat.bias") : x;
        double want[N * 16];
        direct_gat(x.data, &w, &as, &ad, o.bias ? &b : NULL, o.heads, cases[k].out, o.concat, o.negative_slope, want);
        for (int64_t i = 0; i < N * width; i++)
            ck_assert_msg(fabs(at(&r, i) - want[i]) < 1e-12, "case %zu element %lld: %.15g, expected %.15g", k, (long long)i,
                          at(&r, i), want[i]);
        /* node 4 has no in-edge: the bias alone */
        for (int64_t j = 0; j < width; j++)
            ck_assert(fabs(at(&r, 4 * width + j) - (o.bias ? 0.1 * (double)(j + 1) : 0)) < 1e-15);
        lt_case_free(c);
    }
}
END_TEST

START_TEST(test_gat_gradients)
{
    const gat_case cases[] = {{2, 3, 1, 1, 0.2, 0}, {3, 2, 0, 0, 0.2, 0}, {2, 2, 1, 1, 0.2, 0.4}, {3, 2, 0, 1, 0.1, 0.5}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        lt_case *c = lt_case_new();
        const loom_gat_opts o = opts_of(&cases[k]);
        lt_gradcheck(c, layer5(c, cases[k].out, &o), 1e-6);
        lt_case_free(c);
    }
}
END_TEST

/* Two layers as loom_nn_gat stacks them (dropout on the inputs, ELU), through their gradients. */
START_TEST(test_gat_model_gradients)
{
    lt_case *c = lt_case_new();
    loom_tensor *x = lt_param(c, "x", loom_shape(N, F));
    loom_tensor *s = lt_input_static(c, "src", LOOM_I32, loom_shape(E), src5);
    loom_tensor *d = lt_input_static(c, "dst", LOOM_I32, loom_shape(E), dst5);
    loom_tensor *y = loom_nn_gat(lt_graph(c), x, s, d, 2, 3, 4, 0.3);
    ck_assert_int_eq(loom_tensor_dim(y, 1), 4);
    ck_assert_ptr_nonnull(loom_graph_find(lt_graph(c), "gat2.att_dst"));
    lt_gradcheck(c, y, 1e-6);
    lt_case_free(c);
}
END_TEST

START_TEST(test_gat_dropout_in_eval)
{
    /* attention dropout acts in training only: evaluation gives the layer without it */
    lt_case *c = lt_case_new();
    loom_gat_opts o = LOOM_GAT_OPTS_INIT;
    o.heads = 2;
    o.dropout = 0.5;
    loom_tensor *y = layer5(c, 3, &o);
    loom_tensor *loss = loom_sum(lt_graph(c), y, LOOM_ALL_AXES, 0);
    loom_program *p = lt_compile(c, loss, NULL);
    ck_assert_msg(loom_program_keep(p, y) == LOOM_OK, "%s", loom_program_error(p));
    ck_assert_msg(loom_program_run(p, LOOM_RUN_EVAL) == LOOM_OK, "%s", loom_program_error(p));
    loom_array r;
    ck_assert_int_eq(loom_program_fetch(p, y, &r), LOOM_OK);
    loom_array x, w, as, ad;
    loom_tensor *t[4] = {loom_graph_tensor(lt_graph(c), "x"), loom_graph_tensor(lt_graph(c), "gat.lin.weight"),
                         loom_graph_tensor(lt_graph(c), "gat.att_src"), loom_graph_tensor(lt_graph(c), "gat.att_dst")};
    loom_array *a[4] = {&x, &w, &as, &ad};
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(loom_program_fetch(p, t[k], a[k]), LOOM_OK);
    double want[N * 6];
    direct_gat(x.data, &w, &as, &ad, NULL, 2, 3, 1, 0.2, want); /* the bias is still zeros */
    for (int64_t i = 0; i < N * 6; i++)
        ck_assert_msg(fabs(at(&r, i) - want[i]) < 1e-12, "element %lld: %.15g, expected %.15g", (long long)i, at(&r, i), want[i]);
    /* and a training step's forward pass drops some: the values differ */
    ck_assert_msg(loom_program_run(p, LOOM_RUN_FORWARD) == LOOM_OK, "%s", loom_program_error(p));
    ck_assert_int_eq(loom_program_fetch(p, y, &r), LOOM_OK);
    int differ = 0;
    for (int64_t i = 0; i < N * 6; i++)
        differ += fabs(at(&r, i) - want[i]) > 1e-9;
    ck_assert_int_gt(differ, 0);
    lt_case_free(c);
}
END_TEST

START_TEST(test_gat_bad_calls)
{
    const struct {
        int what; /* 0 heads, 1 out, 2 dropout, 3 slope, 4 x 3-D, 5 x i32, 6 src f32, 7 lengths, 8 NULL dst */
        loom_status s;
        const char *msg;
    } cases[] = {
        {0, LOOM_ERR_INVALID, "loom_nn_gat_layer 'g': 0 heads of 4 features; expected at least 1 of each, at most 2147483647 in all"},
        {1, LOOM_ERR_INVALID, "loom_nn_gat_layer 'g': 2 heads of 0 features; expected at least 1 of each"},
        {2, LOOM_ERR_INVALID, "loom_nn_gat_layer 'g': attention dropout 1 and negative slope 0.2; expected a dropout in [0, 1)"},
        {3, LOOM_ERR_INVALID, "attention dropout 0 and negative slope -1; expected a dropout in [0, 1) and a finite slope >= 0"},
        {4, LOOM_ERR_SHAPE, "loom_nn_gat_layer 'g': x 'x' is dense f32 [5, 3, 2]; expected dense f32 or f64 [N, features]"},
        {5, LOOM_ERR_SHAPE, "loom_nn_gat_layer 'g': x 'x' is dense i32 [5, 3]; expected dense f32 or f64 [N, features]"},
        {6, LOOM_ERR_SHAPE, "loom_nn_gat_layer 'g': src 'src' is f32 [9]; expected an i32 index [E] (loom_input_index)"},
        {7, LOOM_ERR_SHAPE, "loom_nn_gat_layer 'g': src is [9] and dst [8]; expected one of each per edge"},
        {8, LOOM_ERR_INVALID, "loom_nn_gat_layer: tensor argument 3 is NULL"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const int w = cases[k].what;
        loom_graph *g = loom_graph_new();
        loom_tensor *x = w == 4   ? loom_input(g, "x", LOOM_F32, loom_shape(5, 3, 2))
                         : w == 5 ? loom_input(g, "x", LOOM_I32, loom_shape(5, 3))
                                  : loom_input(g, "x", LOOM_F32, loom_shape(5, 3));
        loom_tensor *src = w == 6 ? loom_input(g, "src", LOOM_F32, loom_shape(9)) : loom_input_index(g, "src", loom_shape(9), 5);
        loom_tensor *dst = w == 8 ? NULL : loom_input_index(g, "dst", loom_shape(w == 7 ? 8 : 9), 5);
        loom_gat_opts o = LOOM_GAT_OPTS_INIT;
        o.heads = w == 0 ? 0 : 2;
        o.dropout = w == 2 ? 1.0 : 0.0;
        o.negative_slope = w == 3 ? -1.0 : 0.2;
        loom_tensor *y = loom_nn_gat_layer(g, "g", x, src, dst, w == 1 ? 0 : 4, &o);
        ck_assert(loom_tensor_is_poisoned(y));
        ck_assert_int_eq(loom_graph_status(g), cases[k].s);
        ck_assert_msg(strstr(loom_graph_error(g), cases[k].msg), "case %zu: %s", k, loom_graph_error(g));
        ck_assert_int_eq(loom_graph_find(g, "g.lin.weight") == NULL, 1); /* nothing was built */
        loom_graph_free(g);
    }
    /* the model names its layer; a poisoned input passes through without a second error */
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(5, 3));
    loom_tensor *i = loom_input_index(g, "i", loom_shape(9), 5);
    loom_tensor *y = loom_nn_gat(g, x, i, i, 0, 8, 3, 0.6);
    ck_assert(loom_tensor_is_poisoned(y));
    ck_assert_msg(strstr(loom_graph_error(g), "loom_nn_gat_layer 'gat1': 0 heads"), "%s", loom_graph_error(g));
    loom_graph_free(g);
    ck_assert_ptr_null(loom_nn_gat_layer(NULL, "g", NULL, NULL, NULL, 4, NULL));
}
END_TEST

START_TEST(test_csr_edges)
{
    /* rows are destinations; row 1 holds a self loop, row 2 is empty */
    int32_t rowptr[4] = {0, 2, 4, 4}, col[4] = {1, 2, 0, 1};
    float val[4] = {1, 1, 1, 1};
    loom_csr m = {.nrows = 3, .ncols = 3, .nnz = 4, .vdtype = LOOM_F32, .rowptr = rowptr, .col = col, .val = val};
    loom_array s, d;
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_csr_edges(&m, 0, &s, &d, &err) == LOOM_OK, "%s", err.msg);
    const int32_t s0[] = {1, 2, 0, 1}, d0[] = {0, 0, 1, 1};
    ck_assert_int_eq(s.dtype, LOOM_I32);
    ck_assert_int_eq(s.ndim, 1);
    ck_assert_int_eq(s.shape[0], 4);
    ck_assert_int_eq(d.shape[0], 4);
    ck_assert(!memcmp(s.data, s0, sizeof s0) && !memcmp(d.data, d0, sizeof d0));
    loom_array_free(&s);
    loom_array_free(&d);
    /* with self loops: the diagonal entry dropped, one loop per node first in its row */
    ck_assert_msg(loom_csr_edges(&m, 1, &s, &d, &err) == LOOM_OK, "%s", err.msg);
    const int32_t s1[] = {0, 1, 2, 1, 0, 2}, d1[] = {0, 0, 0, 1, 1, 2};
    ck_assert_int_eq(s.shape[0], 6);
    ck_assert(!memcmp(s.data, s1, sizeof s1) && !memcmp(d.data, d1, sizeof d1));
    loom_array_free(&s);
    loom_array_free(&d);

    /* refusals: a non-square matrix with self loops, a bad one, missing outputs */
    m.ncols = 4;
    ck_assert_int_eq(loom_csr_edges(&m, 1, &s, &d, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "needs a square adjacency; it is 3 x 4"), "%s", err.msg);
    ck_assert_ptr_null(s.data);
    ck_assert_int_eq(loom_csr_edges(&m, 0, &s, &d, &err), LOOM_OK); /* without loops it is fine */
    loom_array_free(&s);
    loom_array_free(&d);
    m.ncols = 3;
    col[1] = 3;
    ck_assert_int_eq(loom_csr_edges(&m, 0, &s, &d, &err), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(err.msg, "entry 1 has column 3, outside [0, 3)"), "%s", err.msg);
    ck_assert_int_eq(loom_csr_edges(&m, 0, &s, NULL, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "loom_csr_edges: the adjacency and both outputs are required"), "%s", err.msg);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gat");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gat_values);
    tcase_add_test(tc, test_gat_gradients);
    tcase_add_test(tc, test_gat_model_gradients);
    tcase_add_test(tc, test_gat_dropout_in_eval);
    tcase_add_test(tc, test_gat_bad_calls);
    tcase_add_test(tc, test_csr_edges);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
