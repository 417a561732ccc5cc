/* The op table (see op_cases.h). Shapes are tiny (a handful of elements): each row is checked by
 * central differences, on four CPU devices under three hint layouts, and on a GPU. */
#include "op_cases.h"

#include <stdlib.h>

/* ---- leaves ------------------------------------------------------------------------------------ */

static loom_tensor *hint(const lt_row_env *e, loom_tensor *t)
{
    if (e->split >= 0 && loom_tensor_shape(t).ndim > e->split)
        loom_tensor_set_sbp(t, loom_split(e->split));
    return t;
}

/* A parameter N(0, 1), seeded by its name (lt_param's values for f64). */
static loom_tensor *x_param(lt_case *c, const lt_row_env *e, const char *name, loom_shape s)
{
    return hint(e, loom_param(lt_graph(c), name, e->dt, s, loom_init_normal(0.0, 1.0, lt_name_seed(name))));
}

/* A parameter uniform in [0.5, 1.5): a divisor kept away from 0. */
static loom_tensor *pos_param(lt_case *c, const lt_row_env *e, const char *name, loom_shape s)
{
    return hint(e, loom_param(lt_graph(c), name, e->dt, s, loom_init_uniform(0.5, 1.5, lt_name_seed(name))));
}

/* An i32 input [n] of values in [0, hi). */
static loom_tensor *idx_input(lt_case *c, const lt_row_env *e, const char *name, int64_t n, int32_t hi)
{
    int32_t v[16];
    lt_fill_int(v, n, hi, lt_name_seed(name));
    return hint(e, lt_input_static(c, name, LOOM_I32, loom_shape(n), v));
}

/* A fixed CSR [4, 5] with an empty row and a row of three. */
static loom_tensor *adj_input(lt_case *c, const lt_row_env *e)
{
    static int32_t rowptr[] = {0, 2, 3, 3, 6}, col[] = {0, 3, 1, 0, 2, 4};
    static const double v64[] = {0.5, -1.25, 2.0, 1.0, 0.75, -0.5};
    float v32[6];
    for (int i = 0; i < 6; i++)
        v32[i] = (float)v64[i];
    loom_csr m = {.nrows = 4, .ncols = 5, .nnz = 6, .vdtype = e->dt, .rowptr = rowptr, .col = col,
                  .val = e->dt == LOOM_F64 ? (void *)v64 : (void *)v32};
    loom_tensor *t = lt_input_csr(c, "adj", 4, 5, &m);
    if (e->split == 0)
        loom_tensor_set_sbp(t, loom_split(0));
    return t;
}

#define G lt_graph(c)

/* ---- rows: dense ------------------------------------------------------------------------------- */

static loom_tensor *matmul(lt_case *c, const lt_row_env *e)
{
    return loom_matmul(G, x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(4, 2)));
}
static loom_tensor *matmul_bad(lt_case *c, const lt_row_env *e)
{
    return loom_matmul(G, x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(3, 2)));
}
static loom_tensor *matmul_tt(lt_case *c, const lt_row_env *e)
{
    return loom_matmul_ex(G, x_param(c, e, "a", loom_shape(4, 3)), x_param(c, e, "b", loom_shape(2, 4)), 1, 1);
}

static loom_tensor *add(lt_case *c, const lt_row_env *e)
{
    return loom_add(G, x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(4)));
}
static loom_tensor *add_bad(lt_case *c, const lt_row_env *e)
{
    return loom_add(G, x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(3)));
}
static loom_tensor *sub(lt_case *c, const lt_row_env *e)
{
    return loom_sub(G, x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(3, 1)));
}
static loom_tensor *mul(lt_case *c, const lt_row_env *e)
{
    return loom_mul(G, x_param(c, e, "a", loom_shape(2, 3)), x_param(c, e, "b", loom_shape(2, 3)));
}
static loom_tensor *mul_bad(lt_case *c, const lt_row_env *e)
{
    return loom_mul(G, x_param(c, e, "a", loom_shape(2, 3)), x_param(c, e, "b", loom_shape(2, 2)));
}
static loom_tensor *div_(lt_case *c, const lt_row_env *e)
{
    return loom_div(G, x_param(c, e, "a", loom_shape(3, 2)), pos_param(c, e, "b", loom_shape(3, 2)));
}
static loom_tensor *scale(lt_case *c, const lt_row_env *e) { return loom_scale(G, x_param(c, e, "x", loom_shape(3, 4)), -0.5); }
static loom_tensor *bias_add(lt_case *c, const lt_row_env *e)
{
    return loom_bias_add(G, x_param(c, e, "x", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(4)));
}
static loom_tensor *bias_add_bad(lt_case *c, const lt_row_env *e)
{
    return loom_bias_add(G, x_param(c, e, "x", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(3)));
}

static loom_tensor *relu(lt_case *c, const lt_row_env *e) { return loom_relu(G, x_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *leaky_relu(lt_case *c, const lt_row_env *e) { return loom_leaky_relu(G, x_param(c, e, "x", loom_shape(3, 4)), 0.1); }
static loom_tensor *elu(lt_case *c, const lt_row_env *e) { return loom_elu(G, x_param(c, e, "x", loom_shape(3, 4)), 0.7); }
static loom_tensor *sigmoid(lt_case *c, const lt_row_env *e) { return loom_sigmoid(G, x_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *tanh_(lt_case *c, const lt_row_env *e) { return loom_tanh(G, x_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *exp_(lt_case *c, const lt_row_env *e) { return loom_exp(G, x_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *log_(lt_case *c, const lt_row_env *e) { return loom_log(G, pos_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *sqrt_(lt_case *c, const lt_row_env *e) { return loom_sqrt(G, pos_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *rsqrt(lt_case *c, const lt_row_env *e) { return loom_rsqrt(G, pos_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *abs_(lt_case *c, const lt_row_env *e) { return loom_abs(G, x_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *pow_scalar(lt_case *c, const lt_row_env *e)
{
    return loom_pow_scalar(G, pos_param(c, e, "x", loom_shape(3, 4)), 2.5);
}
static loom_tensor *pow_scalar_int(lt_case *c, const lt_row_env *e)
{
    return loom_pow_scalar(G, x_param(c, e, "x", loom_shape(3, 4)), 3);
}
static loom_tensor *clamp(lt_case *c, const lt_row_env *e)
{
    return loom_clamp(G, x_param(c, e, "x", loom_shape(3, 4)), -0.5, 0.7);
}
static loom_tensor *minimum(lt_case *c, const lt_row_env *e)
{
    return loom_minimum(G, x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(4)));
}
static loom_tensor *maximum(lt_case *c, const lt_row_env *e)
{
    return loom_maximum(G, x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(3, 1)));
}
static loom_tensor *maximum_bad(lt_case *c, const lt_row_env *e)
{
    return loom_maximum(G, x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(3)));
}
/* A u8 condition [rows, 4] (rows 3 or 1) with both values in each row and column. */
static loom_tensor *cond_input(lt_case *c, const lt_row_env *e, int64_t rows)
{
    static const uint8_t m[12] = {1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0};
    return hint(e, lt_input_static(c, "cond", LOOM_U8, loom_shape(rows, 4), m));
}
static loom_tensor *where(lt_case *c, const lt_row_env *e)
{
    return loom_where(G, cond_input(c, e, 3), x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(4)));
}
static loom_tensor *where_bad(lt_case *c, const lt_row_env *e)
{
    return loom_where(G, cond_input(c, e, 1), x_param(c, e, "a", loom_shape(3, 4)), x_param(c, e, "b", loom_shape(2, 4)));
}
static loom_tensor *dropout(lt_case *c, const lt_row_env *e) { return loom_dropout(G, x_param(c, e, "x", loom_shape(4, 3)), 0.5); }

static loom_tensor *log_softmax(lt_case *c, const lt_row_env *e) { return loom_log_softmax(G, x_param(c, e, "x", loom_shape(3, 4))); }
static loom_tensor *softmax0(lt_case *c, const lt_row_env *e) { return loom_softmax(G, x_param(c, e, "x", loom_shape(3, 4)), 0); }
static loom_tensor *softmax_last(lt_case *c, const lt_row_env *e)
{
    return loom_softmax(G, x_param(c, e, "x", loom_shape(2, 3, 4)), -1);
}
static loom_tensor *softmax_mid(lt_case *c, const lt_row_env *e)
{
    return loom_softmax(G, x_param(c, e, "x", loom_shape(2, 3, 4)), 1);
}
static loom_tensor *softmax_bad(lt_case *c, const lt_row_env *e) { return loom_softmax(G, x_param(c, e, "x", loom_shape(3, 4)), 2); }
static loom_tensor *softmax_ce(lt_case *c, const lt_row_env *e)
{
    return loom_softmax_cross_entropy(G, x_param(c, e, "logits", loom_shape(4, 3)), idx_input(c, e, "labels", 4, 3), NULL);
}
static loom_tensor *softmax_ce_bad(lt_case *c, const lt_row_env *e)
{
    return loom_softmax_cross_entropy(G, x_param(c, e, "logits", loom_shape(4, 3)), idx_input(c, e, "labels", 3, 3), NULL);
}
/* Targets [4, 3] in [0, 1] (hard labels and two soft ones), in the row's dtype. */
static loom_tensor *bce_targets(lt_case *c, const lt_row_env *e, int64_t rows)
{
    static const double v[12] = {1, 0, 0, 0, 1, 1, 0.25, 0, 1, 0, 0.75, 1};
    float f[12];
    for (int i = 0; i < 12; i++)
        f[i] = (float)v[i];
    return hint(e, lt_input_static(c, "targets", e->dt, loom_shape(rows, 3), e->dt == LOOM_F64 ? (const void *)v : (const void *)f));
}
static loom_tensor *bce(lt_case *c, const lt_row_env *e)
{
    return loom_bce_with_logits(G, x_param(c, e, "logits", loom_shape(4, 3)), bce_targets(c, e, 4), 1.0);
}
static loom_tensor *bce_weighted(lt_case *c, const lt_row_env *e)
{
    return loom_bce_with_logits(G, x_param(c, e, "logits", loom_shape(4, 3)), bce_targets(c, e, 4), 2.5);
}
static loom_tensor *bce_bad(lt_case *c, const lt_row_env *e)
{
    return loom_bce_with_logits(G, x_param(c, e, "logits", loom_shape(4, 3)), bce_targets(c, e, 3), 1.0);
}
/* Targets of the regression losses: bce's [rows, 3] values. */
static loom_tensor *mse(lt_case *c, const lt_row_env *e)
{
    return loom_mse_loss(G, x_param(c, e, "pred", loom_shape(4, 3)), bce_targets(c, e, 4));
}
static loom_tensor *mse_bad(lt_case *c, const lt_row_env *e)
{
    return loom_mse_loss(G, x_param(c, e, "pred", loom_shape(4, 3)), bce_targets(c, e, 3));
}
static loom_tensor *l1(lt_case *c, const lt_row_env *e)
{
    return loom_l1_loss(G, x_param(c, e, "pred", loom_shape(4, 3)), bce_targets(c, e, 4));
}
static loom_tensor *l1_bad(lt_case *c, const lt_row_env *e)
{
    return loom_l1_loss(G, x_param(c, e, "pred", loom_shape(4, 3)), bce_targets(c, e, 3));
}
static loom_tensor *huber(lt_case *c, const lt_row_env *e)
{
    return loom_huber_loss(G, x_param(c, e, "pred", loom_shape(4, 3)), bce_targets(c, e, 4), 0.6);
}
static loom_tensor *huber_bad(lt_case *c, const lt_row_env *e)
{
    return loom_huber_loss(G, x_param(c, e, "pred", loom_shape(4, 3)), bce_targets(c, e, 3), 0.6);
}
static loom_tensor *softmax_ce_masked(lt_case *c, const lt_row_env *e)
{
    static const uint8_t mask[] = {1, 0, 1, 1};
    loom_tensor *m = hint(e, lt_input_static(c, "mask", LOOM_U8, loom_shape(4), mask));
    return loom_softmax_cross_entropy(G, x_param(c, e, "logits", loom_shape(4, 3)), idx_input(c, e, "labels", 4, 3), m);
}

static loom_tensor *argmax(lt_case *c, const lt_row_env *e) { return loom_argmax(G, x_param(c, e, "x", loom_shape(3, 4)), 1); }
static loom_tensor *argmax_bad(lt_case *c, const lt_row_env *e) { return loom_argmax(G, x_param(c, e, "x", loom_shape(3, 4)), -3); }
static loom_tensor *sum(lt_case *c, const lt_row_env *e) { return loom_sum(G, x_param(c, e, "x", loom_shape(3, 4)), LOOM_AXIS(0), 0); }
static loom_tensor *mean(lt_case *c, const lt_row_env *e)
{
    return loom_mean(G, x_param(c, e, "x", loom_shape(3, 4)), LOOM_ALL_AXES, 1);
}

/* ---- rows: shape ------------------------------------------------------------------------------- */

static loom_tensor *reshape(lt_case *c, const lt_row_env *e) { return loom_reshape(G, x_param(c, e, "x", loom_shape(3, 4)), loom_shape(2, 6)); }
static loom_tensor *reshape_bad(lt_case *c, const lt_row_env *e)
{
    return loom_reshape(G, x_param(c, e, "x", loom_shape(3, 4)), loom_shape(5, 2));
}
static loom_tensor *transpose(lt_case *c, const lt_row_env *e)
{
    static const int perm[] = {2, 0, 1};
    return loom_transpose(G, x_param(c, e, "x", loom_shape(2, 3, 4)), perm);
}
static loom_tensor *concat(lt_case *c, const lt_row_env *e)
{
    loom_tensor *xs[] = {x_param(c, e, "a", loom_shape(2, 3)), x_param(c, e, "b", loom_shape(2, 2))};
    return loom_concat(G, xs, 2, 1);
}
static loom_tensor *concat_bad(lt_case *c, const lt_row_env *e)
{
    loom_tensor *xs[] = {x_param(c, e, "a", loom_shape(2, 3)), x_param(c, e, "b", loom_shape(3, 2))};
    return loom_concat(G, xs, 2, 1);
}
static loom_tensor *slice(lt_case *c, const lt_row_env *e) { return loom_slice(G, x_param(c, e, "x", loom_shape(4, 3)), 0, 1, 3); }

/* ---- rows: sparse and index -------------------------------------------------------------------- */

static loom_tensor *spmm(lt_case *c, const lt_row_env *e) { return loom_spmm(G, adj_input(c, e), x_param(c, e, "x", loom_shape(5, 3))); }
static loom_tensor *spmm_bad(lt_case *c, const lt_row_env *e)
{
    return loom_spmm(G, adj_input(c, e), x_param(c, e, "x", loom_shape(4, 3)));
}
static loom_tensor *spmm_t(lt_case *c, const lt_row_env *e)
{
    return loom_spmm_ex(G, adj_input(c, e), x_param(c, e, "x", loom_shape(4, 3)), 1);
}
static loom_tensor *degree(lt_case *c, const lt_row_env *e) { return loom_degree(G, adj_input(c, e), 1, -0.5); }

static loom_tensor *gather(lt_case *c, const lt_row_env *e)
{
    return loom_gather_rows(G, x_param(c, e, "table", loom_shape(5, 3)), idx_input(c, e, "idx", 4, 5));
}
static loom_tensor *scatter_add(lt_case *c, const lt_row_env *e)
{
    return loom_scatter_add_rows(G, x_param(c, e, "x", loom_shape(4, 3)), idx_input(c, e, "idx", 4, 3), 3);
}
static loom_tensor *scatter_add_bad(lt_case *c, const lt_row_env *e)
{
    return loom_scatter_add_rows(G, x_param(c, e, "x", loom_shape(4, 3)), idx_input(c, e, "idx", 5, 3), 3);
}
static loom_tensor *segment_mean(lt_case *c, const lt_row_env *e)
{
    return loom_segment_mean(G, x_param(c, e, "x", loom_shape(5, 2)), idx_input(c, e, "seg", 5, 3), 3);
}
static loom_tensor *segment_max(lt_case *c, const lt_row_env *e)
{
    return loom_segment_max(G, x_param(c, e, "x", loom_shape(5, 2)), idx_input(c, e, "seg", 5, 3), 3);
}

static loom_tensor *segment_softmax(lt_case *c, const lt_row_env *e)
{
    return loom_segment_softmax(G, x_param(c, e, "x", loom_shape(5, 2)), idx_input(c, e, "seg", 5, 3), 3);
}
static loom_tensor *segment_softmax_1d(lt_case *c, const lt_row_env *e)
{
    return loom_segment_softmax(G, x_param(c, e, "x", loom_shape(6)), idx_input(c, e, "seg", 6, 4), 4);
}
static loom_tensor *segment_softmax_bad(lt_case *c, const lt_row_env *e)
{
    return loom_segment_softmax(G, x_param(c, e, "x", loom_shape(5, 2)), idx_input(c, e, "seg", 4, 3), 3);
}
static loom_tensor *one_hot(lt_case *c, const lt_row_env *e) { return loom_one_hot(G, idx_input(c, e, "idx", 4, 3), 3, e->dt); }

/* ---- rows: convolution ------------------------------------------------------------------------- */

static loom_tensor *conv2d(lt_case *c, const lt_row_env *e)
{
    loom_conv2d_opts o = {.stride = {2, 2}, .pad = {1, 1}, .dilation = {1, 1}, .groups = 1};
    return loom_conv2d(G, x_param(c, e, "x", loom_shape(2, 3, 5, 4)), x_param(c, e, "w", loom_shape(4, 3, 3, 2)),
                       x_param(c, e, "b", loom_shape(4)), &o);
}
static loom_tensor *conv2d_bad(lt_case *c, const lt_row_env *e)
{
    return loom_conv2d(G, x_param(c, e, "x", loom_shape(1, 2, 3, 3)), x_param(c, e, "w", loom_shape(2, 2, 5, 5)), NULL, NULL);
}
static loom_tensor *conv2d_grouped(lt_case *c, const lt_row_env *e)
{
    loom_conv2d_opts o = {.stride = {1, 2}, .pad = {1, 1}, .dilation = {1, 1}, .groups = 2};
    return loom_conv2d(G, x_param(c, e, "x", loom_shape(2, 4, 4, 3)), x_param(c, e, "w", loom_shape(6, 2, 3, 3)), NULL, &o);
}
static loom_tensor *conv2d_dilated(lt_case *c, const lt_row_env *e)
{
    loom_conv2d_opts o = {.stride = {1, 1}, .pad = {0, 1}, .dilation = {2, 2}, .groups = 1};
    return loom_conv2d(G, x_param(c, e, "x", loom_shape(1, 2, 6, 5)), x_param(c, e, "w", loom_shape(3, 2, 2, 2)),
                       x_param(c, e, "b", loom_shape(3)), &o);
}
static loom_tensor *conv2d_1x1(lt_case *c, const lt_row_env *e)
{
    return loom_conv2d(G, x_param(c, e, "x", loom_shape(2, 3, 3, 2)), x_param(c, e, "w", loom_shape(4, 3, 1, 1)), NULL, NULL);
}

/* ---- rows: pooling and normalisation ----------------------------------------------------------- */

static loom_tensor *max_pool(lt_case *c, const lt_row_env *e)
{
    const loom_pool2d_opts o = {.kernel = {3, 2}, .stride = {2, 1}, .pad = {1, 0}};
    return loom_max_pool2d(G, x_param(c, e, "x", loom_shape(2, 3, 5, 4)), &o);
}
static loom_tensor *max_pool_bad(lt_case *c, const lt_row_env *e)
{
    const loom_pool2d_opts o = {.kernel = {3, 6}, .stride = {1, 1}, .pad = {1, 0}};
    return loom_max_pool2d(G, x_param(c, e, "x", loom_shape(2, 3, 5, 4)), &o);
}
static loom_tensor *avg_pool(lt_case *c, const lt_row_env *e)
{
    const loom_pool2d_opts o = {.kernel = {2, 2}, .stride = {2, 2}, .pad = {1, 1}};
    return loom_avg_pool2d(G, x_param(c, e, "x", loom_shape(2, 3, 5, 4)), &o);
}
static loom_tensor *avg_pool_bad(lt_case *c, const lt_row_env *e)
{
    return loom_avg_pool2d(G, x_param(c, e, "x", loom_shape(2, 3, 5)), NULL);
}
static loom_tensor *global_avg_pool(lt_case *c, const lt_row_env *e)
{
    return loom_global_avg_pool(G, x_param(c, e, "x", loom_shape(2, 3, 4, 5)));
}
static loom_tensor *global_avg_pool_bad(lt_case *c, const lt_row_env *e)
{
    return loom_global_avg_pool(G, x_param(c, e, "x", loom_shape(2, 3, 4)));
}
static loom_tensor *flatten(lt_case *c, const lt_row_env *e) { return loom_flatten(G, x_param(c, e, "x", loom_shape(2, 3, 2, 2))); }
static loom_tensor *flatten_bad(lt_case *c, const lt_row_env *e) { return loom_flatten(G, x_param(c, e, "x", loom_shape())); }
static loom_tensor *batch_norm(lt_case *c, const lt_row_env *e)
{
    return loom_batch_norm(G, "bn", x_param(c, e, "x", loom_shape(2, 3, 2, 2)), 0.1, 1e-5);
}
static loom_tensor *batch_norm_1d(lt_case *c, const lt_row_env *e)
{
    return loom_batch_norm(G, "bn", x_param(c, e, "x", loom_shape(4, 3)), 0.1, 1e-5);
}
static loom_tensor *batch_norm_bad(lt_case *c, const lt_row_env *e)
{
    return loom_batch_norm(G, "bn", x_param(c, e, "x", loom_shape(4)), 0.1, 1e-5);
}
static loom_tensor *batch_norm_relu(lt_case *c, const lt_row_env *e)
{
    return loom_batch_norm_relu(G, "bn", x_param(c, e, "x", loom_shape(2, 3, 2, 2)), NULL, 0.1, 1e-5);
}
static loom_tensor *batch_norm_add_relu(lt_case *c, const lt_row_env *e)
{
    return loom_batch_norm_relu(G, "bn", x_param(c, e, "x", loom_shape(2, 3, 2, 2)), x_param(c, e, "r", loom_shape(2, 3, 2, 2)),
                                0.1, 1e-5);
}
static loom_tensor *batch_norm_add_relu_1d(lt_case *c, const lt_row_env *e)
{
    return loom_batch_norm_relu(G, "bn", x_param(c, e, "x", loom_shape(4, 3)), x_param(c, e, "r", loom_shape(4, 3)), 0.1, 1e-5);
}
static loom_tensor *batch_norm_add_relu_bad(lt_case *c, const lt_row_env *e)
{
    return loom_batch_norm_relu(G, "bn", x_param(c, e, "x", loom_shape(4, 3)), x_param(c, e, "r", loom_shape(4, 2)), 0.1, 1e-5);
}
static loom_tensor *layer_norm(lt_case *c, const lt_row_env *e)
{
    return loom_layer_norm(G, "ln", x_param(c, e, "x", loom_shape(3, 4)), 1, 1e-5);
}
static loom_tensor *layer_norm_2(lt_case *c, const lt_row_env *e)
{
    return loom_layer_norm(G, "ln", x_param(c, e, "x", loom_shape(2, 3, 2)), 2, 1e-5);
}
static loom_tensor *layer_norm_bad(lt_case *c, const lt_row_env *e)
{
    return loom_layer_norm(G, "ln", x_param(c, e, "x", loom_shape(3, 4)), 3, 1e-5);
}

#undef G

/* ---- the table --------------------------------------------------------------------------------- */

#define D LT_ROW_DIFF
const lt_op_row lt_op_rows[] = {
    {"matmul", LOOM_OP_MATMUL, matmul, 2, {3, 2}, D, matmul_bad, "loom_matmul"},
    {"matmul (both transposed)", LOOM_OP_MATMUL, matmul_tt, 2, {3, 2}, D, NULL, NULL},
    {"add (row broadcast)", LOOM_OP_ADD, add, 2, {3, 4}, D, add_bad, "loom_add"},
    {"sub (column broadcast)", LOOM_OP_SUB, sub, 2, {3, 4}, D, NULL, NULL},
    {"mul", LOOM_OP_MUL, mul, 2, {2, 3}, D, mul_bad, "loom_mul"},
    {"div", LOOM_OP_DIV, div_, 2, {3, 2}, D, NULL, NULL},
    {"scale", LOOM_OP_SCALE, scale, 2, {3, 4}, D, NULL, NULL},
    {"bias_add", LOOM_OP_BIAS_ADD, bias_add, 2, {3, 4}, D, bias_add_bad, "loom_bias_add"},
    {"relu", LOOM_OP_RELU, relu, 2, {3, 4}, D, NULL, NULL},
    {"leaky_relu", LOOM_OP_LEAKY_RELU, leaky_relu, 2, {3, 4}, D, NULL, NULL},
    {"elu", LOOM_OP_ELU, elu, 2, {3, 4}, D, NULL, NULL},
    {"sigmoid", LOOM_OP_SIGMOID, sigmoid, 2, {3, 4}, D, NULL, NULL},
    {"tanh", LOOM_OP_TANH, tanh_, 2, {3, 4}, D, NULL, NULL},
    {"exp", LOOM_OP_EXP, exp_, 2, {3, 4}, D, NULL, NULL},
    {"log", LOOM_OP_LOG, log_, 2, {3, 4}, D, NULL, NULL},
    {"sqrt", LOOM_OP_SQRT, sqrt_, 2, {3, 4}, D, NULL, NULL},
    {"rsqrt", LOOM_OP_RSQRT, rsqrt, 2, {3, 4}, D, NULL, NULL},
    {"abs", LOOM_OP_ABS, abs_, 2, {3, 4}, D, NULL, NULL},
    {"pow_scalar (p 2.5)", LOOM_OP_POW_SCALAR, pow_scalar, 2, {3, 4}, D, NULL, NULL},
    {"pow_scalar (p 3)", LOOM_OP_POW_SCALAR, pow_scalar_int, 2, {3, 4}, D, NULL, NULL},
    {"clamp", LOOM_OP_CLAMP, clamp, 2, {3, 4}, D, NULL, NULL},
    {"minimum (row broadcast)", LOOM_OP_MINIMUM, minimum, 2, {3, 4}, D, NULL, NULL},
    {"maximum (column broadcast)", LOOM_OP_MAXIMUM, maximum, 2, {3, 4}, D, maximum_bad, "loom_maximum"},
    {"where", LOOM_OP_WHERE, where, 2, {3, 4}, D, where_bad, "loom_where"},
    {"dropout", LOOM_OP_DROPOUT, dropout, 2, {4, 3}, D, NULL, NULL},
    {"log_softmax", LOOM_OP_LOG_SOFTMAX, log_softmax, 2, {3, 4}, D, NULL, NULL},
    {"softmax (axis 0)", LOOM_OP_SOFTMAX, softmax0, 2, {3, 4}, D, softmax_bad, "loom_softmax"},
    {"softmax (axis -1)", LOOM_OP_SOFTMAX, softmax_last, 3, {2, 3, 4}, D, NULL, NULL},
    {"softmax (axis 1 of 3)", LOOM_OP_SOFTMAX, softmax_mid, 3, {2, 3, 4}, D, NULL, NULL},
    {"softmax_cross_entropy", LOOM_OP_SOFTMAX_CE, softmax_ce, 0, {0}, D, softmax_ce_bad, "loom_softmax_cross_entropy"},
    {"softmax_cross_entropy (masked)", LOOM_OP_SOFTMAX_CE, softmax_ce_masked, 0, {0}, D, NULL, NULL},
    {"bce_with_logits", LOOM_OP_BCE_LOGITS, bce, 0, {0}, D, bce_bad, "loom_bce_with_logits"},
    {"bce_with_logits (pos_weight 2.5)", LOOM_OP_BCE_LOGITS, bce_weighted, 0, {0}, D, NULL, NULL},
    /* the regression losses: means of other ops */
    {"mse_loss", LOOM_OP_MEAN, mse, 0, {0}, D, mse_bad, "loom_mse_loss"},
    {"l1_loss", LOOM_OP_MEAN, l1, 0, {0}, D, l1_bad, "loom_l1_loss"},
    {"huber_loss (delta 0.6)", LOOM_OP_MEAN, huber, 0, {0}, D, huber_bad, "loom_huber_loss"},
    {"conv2d (stride 2, pad 1, bias)", LOOM_OP_CONV2D, conv2d, 4, {2, 4, 3, 3}, D, conv2d_bad, "loom_conv2d"},
    {"conv2d (groups 2, stride 1x2)", LOOM_OP_CONV2D, conv2d_grouped, 4, {2, 6, 4, 2}, D, NULL, NULL},
    {"conv2d (dilation 2, pad 0x1, bias)", LOOM_OP_CONV2D, conv2d_dilated, 4, {1, 3, 4, 5}, D, NULL, NULL},
    {"conv2d (1x1)", LOOM_OP_CONV2D, conv2d_1x1, 4, {2, 4, 3, 2}, D, NULL, NULL},
    {"sum (axis 0)", LOOM_OP_SUM, sum, 1, {4}, D, NULL, NULL},
    {"mean (all, keepdims)", LOOM_OP_MEAN, mean, 2, {1, 1}, D, NULL, NULL},
    {"argmax (axis 1)", LOOM_OP_ARGMAX, argmax, 1, {3}, 0, argmax_bad, "loom_argmax"},
    {"reshape", LOOM_OP_RESHAPE, reshape, 2, {2, 6}, D, reshape_bad, "loom_reshape"},
    {"transpose", LOOM_OP_TRANSPOSE, transpose, 3, {4, 2, 3}, D, NULL, NULL},
    {"concat", LOOM_OP_CONCAT, concat, 2, {2, 5}, D, concat_bad, "loom_concat"},
    {"slice", LOOM_OP_SLICE, slice, 2, {2, 3}, D, NULL, NULL},
    {"spmm", LOOM_OP_SPMM, spmm, 2, {4, 3}, D, spmm_bad, "loom_spmm"},
    {"spmm (transposed)", LOOM_OP_SPMM, spmm_t, 2, {5, 3}, D, NULL, NULL},
    {"degree", LOOM_OP_DEGREE, degree, 1, {4}, 0, NULL, NULL},
    {"gather_rows", LOOM_OP_GATHER_ROWS, gather, 2, {4, 3}, D, NULL, NULL},
    {"scatter_add_rows", LOOM_OP_SCATTER, scatter_add, 2, {3, 3}, D, scatter_add_bad, "loom_scatter_add_rows"},
    /* loom_segment_sum builds the op and mode of scatter_add_rows */
    {"segment_mean", LOOM_OP_SCATTER, segment_mean, 2, {3, 2}, D, NULL, NULL},
    {"segment_max", LOOM_OP_SCATTER, segment_max, 2, {3, 2}, D, NULL, NULL},
    {"segment_softmax", LOOM_OP_SEGMENT_SOFTMAX, segment_softmax, 2, {5, 2}, D, segment_softmax_bad, "loom_segment_softmax"},
    {"segment_softmax ([E])", LOOM_OP_SEGMENT_SOFTMAX, segment_softmax_1d, 1, {6}, D, NULL, NULL},
    {"one_hot", LOOM_OP_ONE_HOT, one_hot, 2, {4, 3}, 0, NULL, NULL},
    {"max_pool2d", LOOM_OP_MAX_POOL2D, max_pool, 4, {2, 3, 3, 3}, D, max_pool_bad, "loom_max_pool2d"},
    {"avg_pool2d", LOOM_OP_AVG_POOL2D, avg_pool, 4, {2, 3, 3, 3}, D, avg_pool_bad, "loom_avg_pool2d"},
    /* the mean over axes 2 and 3 */
    {"global_avg_pool", LOOM_OP_MEAN, global_avg_pool, 2, {2, 3}, D, global_avg_pool_bad, "loom_global_avg_pool"},
    /* a reshape */
    {"flatten", LOOM_OP_RESHAPE, flatten, 2, {2, 12}, D, flatten_bad, "loom_flatten"},
    {"batch_norm", LOOM_OP_BATCH_NORM, batch_norm, 4, {2, 3, 2, 2}, D, batch_norm_bad, "loom_batch_norm"},
    {"batch_norm ([N, C])", LOOM_OP_BATCH_NORM, batch_norm_1d, 2, {4, 3}, D, NULL, NULL},
    {"batch_norm_relu", LOOM_OP_BN_RELU, batch_norm_relu, 4, {2, 3, 2, 2}, D, NULL, NULL},
    {"batch_norm_relu (residual)", LOOM_OP_BN_RELU, batch_norm_add_relu, 4, {2, 3, 2, 2}, D, batch_norm_add_relu_bad,
     "loom_batch_norm_relu"},
    {"batch_norm_relu ([N, C], residual)", LOOM_OP_BN_RELU, batch_norm_add_relu_1d, 2, {4, 3}, D, NULL, NULL},
    {"layer_norm", LOOM_OP_LAYER_NORM, layer_norm, 2, {3, 4}, D, layer_norm_bad, "loom_layer_norm"},
    {"layer_norm (2 axes)", LOOM_OP_LAYER_NORM, layer_norm_2, 3, {2, 3, 2}, D, NULL, NULL},
};
#undef D
const int lt_op_nrows = (int)(sizeof lt_op_rows / sizeof lt_op_rows[0]);

/* Ops without a row: leaves, and ops only the library builds. reached = 1: a row's training
 * program (its gradient, or the optimizer test_op_registry compiles it with) contains the op. */
const lt_op_exemption lt_op_exempt[] = {
    {LOOM_OP_INPUT, 1, "a leaf: the rows' inputs"},
    {LOOM_OP_PARAM, 1, "a leaf: the rows' parameters"},
    {LOOM_OP_STATE, 1, "optimizer state (momentum, Adam moments), made by loom_compile"},
    {LOOM_OP_FILL, 1, "the loss's gradient (1), made by autodiff"},
    {LOOM_OP_ACT_GRAD, 1, "the gradient of the activations and the elementwise maths (ops/unary.c)"},
    {LOOM_OP_MINMAX_GRAD, 1, "the gradient of minimum and maximum"},
    {LOOM_OP_SOFTMAX_GRAD, 1, "the gradient of softmax"},
    {LOOM_OP_SEGMENT_SOFTMAX_GRAD, 1, "the gradient of segment_softmax"},
    {LOOM_OP_DROPOUT_MASK, 1, "made by loom_dropout with the dropout op (row dropout)"},
    {LOOM_OP_LOG_SOFTMAX_GRAD, 1, "the gradient of log_softmax"},
    {LOOM_OP_SOFTMAX_CE_GRAD, 1, "the gradient of softmax_cross_entropy"},
    {LOOM_OP_BCE_LOGITS_GRAD, 1, "the gradient of bce_with_logits"},
    {LOOM_OP_CONV2D_GRAD_INPUT, 1, "the gradient of conv2d in x"},
    {LOOM_OP_CONV2D_GRAD_WEIGHT, 1, "the gradient of conv2d in w"},
    {LOOM_OP_EXPAND, 1, "the gradient of sum and mean"},
    {LOOM_OP_SLICE_GRAD, 1, "the gradient of slice"},
    {LOOM_OP_SCATTER_GRAD, 1, "the gradient of segment_max"},
    {LOOM_OP_SGD_UPDATE, 1, "the SGD optimizer's update"},
    {LOOM_OP_ADAM_UPDATE, 1, "the Adam optimizer's update"},
    {LOOM_OP_MAX_POOL2D_GRAD, 1, "the gradient of max_pool2d"},
    {LOOM_OP_AVG_POOL2D_GRAD, 1, "the gradient of avg_pool2d"},
    {LOOM_OP_BN_STATS, 1, "made by loom_batch_norm with the batch_norm op (row batch_norm)"},
    {LOOM_OP_BATCH_NORM_GRAD, 1, "the gradient of batch_norm and batch_norm_relu"},
    {LOOM_OP_BN_GRAD_SUMS, 1, "the gradient of batch_norm and batch_norm_relu"},
    {LOOM_OP_RUNNING_STATS_UPDATE, 1, "batch norm's running statistics, updated by a training step (row batch_norm)"},
    {LOOM_OP_LAYER_NORM_GRAD, 1, "the gradient of layer_norm"},
    {LOOM_OP_LN_GRAD_SUMS, 1, "the gradient of layer_norm"},
    /* loom_to_placement needs a second placement, which a row of one placement has not; the
     * pipelines of test_sbp_equiv and gpu_exec move values between placements */
    {LOOM_OP_MOVE, 0, "loom_to_placement: test_sbp_equiv's pipelines"},
};
const int lt_op_nexempt = (int)(sizeof lt_op_exempt / sizeof lt_op_exempt[0]);

int lt_op_missing(const lt_op_row *rows, int nrows, const lt_op_exemption *ex, int nex, loom_op *missing)
{
    int n = 0;
    for (int op = 0; op < LOOM_OP_COUNT; op++) {
        int found = 0;
        for (int i = 0; i < nrows && !found; i++)
            found = rows[i].op == (loom_op)op;
        for (int i = 0; i < nex && !found; i++)
            found = ex[i].op == (loom_op)op;
        if (!found)
            missing[n++] = (loom_op)op;
    }
    return n;
}
