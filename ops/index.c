/* Index ops: gather_rows, and scatter with its reductions (sum, mean, max) behind
 * loom_scatter_add_rows and the segment ops, plus scatter_grad, the backward pass of mean and max;
 * the segment softmax and its gradient; one_hot. Builders, shape inference and gradient rules;
 * kernels live in ops/cpu/index.c and ops/cuda/index.cu.
 *
 *   gather_rows(table [V, F...], idx [E] i32)                      -> [E, F...]
 *   scatter(src [E, F...], idx [E] i32; mode a.i[0], n a.i[1])      -> [n, F...]
 *   scatter_grad(src [E, F...], idx [E], out [n, F...], gout [n, F...]) -> [E, F...]
 *   segment_softmax(x [E, F...], seg [E] i32; n a.i[0])             -> [E, F...]
 *   segment_softmax_grad(y [E, F...], seg [E], gout [E, F...]; n)   -> [E, F...],
 *                 y * (gout - d[seg]) with d[s] the sum of gout * y over segment s
 *   one_hot(idx [...] i32; classes a.i[0], dtype a.i[1])            -> [..., classes]
 *
 * gather_rows and a sum scatter are each other's gradients. n is a loom_dim (a size or a dynamic
 * dim's handle) so that the gradient of a gather from a table of dynamic length V scatters into
 * V rows. */
#include <inttypes.h>
#include <stdio.h>

#include "ops/cpu/index.h"
#include "graphs/core/op.h"
#include "ops/sbp_sigs.h"

/* idx must be a dense i32 vector as long as dim 0 of src (named what). */
static loom_status check_idx(const loom_tensor *t, const loom_tensor *src, const loom_tensor *idx, const char *what,
                             char *msg, size_t len)
{
    char b1[160], b2[160];
    if (idx->layout != LOOM__DENSE || idx->dtype != LOOM_I32)
        return snprintf(msg, len, "idx must be a dense i32 tensor, got %s%s", idx->layout == LOOM__CSR ? "a CSR " : "",
                        loom_dtype_name(idx->dtype)),
               LOOM_ERR_DTYPE;
    if (idx->shape.ndim != 1)
        return snprintf(msg, len, "idx must be 1-D, got %s", loom__shape_str(t->graph, &idx->shape, b1, sizeof b1)),
               LOOM_ERR_SHAPE;
    if (src->shape.ndim < 1)
        return snprintf(msg, len, "%s must have at least 1 dim, got a scalar", what), LOOM_ERR_SHAPE;
    if (!loom__dim_eq(idx->shape.d[0], src->shape.d[0]))
        return snprintf(msg, len, "idx is %s but %s is %s; idx needs one entry per row of %s",
                        loom__shape_str(t->graph, &idx->shape, b1, sizeof b1), what,
                        loom__shape_str(t->graph, &src->shape, b2, sizeof b2), what),
               LOOM_ERR_SHAPE;
    return LOOM_OK;
}

/* ---- gather_rows ------------------------------------------------------------------------------ */

static loom_status gather_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *table = t->src[0], *idx = t->src[1];
    char b[160];
    if (table->layout != LOOM__DENSE)
        return snprintf(msg, len, "table must be dense, got a CSR matrix"), LOOM_ERR_INVALID;
    if (table->shape.ndim < 1)
        return snprintf(msg, len, "table must have at least 1 dim, got a scalar"), LOOM_ERR_SHAPE;
    if (idx->layout != LOOM__DENSE || idx->dtype != LOOM_I32)
        return snprintf(msg, len, "idx must be a dense i32 tensor, got %s%s", idx->layout == LOOM__CSR ? "a CSR " : "",
                        loom_dtype_name(idx->dtype)),
               LOOM_ERR_DTYPE;
    if (idx->shape.ndim != 1)
        return snprintf(msg, len, "idx must be 1-D, got %s", loom__shape_str(t->graph, &idx->shape, b, sizeof b)),
               LOOM_ERR_SHAPE;
    t->dtype = table->dtype;
    t->layout = LOOM__DENSE;
    t->shape = table->shape;
    t->shape.d[0] = idx->shape.d[0];
    return LOOM_OK;
}

/* The rows gathered flow back to where they came from; repeated indices add up. */
static void gather_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *src[2] = {gout, t->src[1]};
    loom__attrs a = {.i = {LOOM__SCATTER_SUM, t->src[0]->shape.d[0]}};
    gsrc[0] = loom__node(g, "loom_gather_rows (gradient)", LOOM_OP_SCATTER, 2, src, &a);
}

/* idx indexes the whole table, so the table is whole wherever idx is split: (B, S(0)) -> S(0). A
 * row-split table would need each device to shift idx by its part's first row and drop the rest,
 * which the kernel does not do (it rejects indices past its part), so (S(0), B) -> P is not listed.
 * Feature axes split through with idx whole; the output is linear in the table. */
/* A row-split table (S(0), B) -> P: each device gathers the rows it holds and zeros for the
 * others, which sum to the whole gather. Its kernel reads its part's first row from the kctx, so
 * the table's row count must be static. */
/* An index input over the table's rows (loom__local_index: a graph batch split by whole graphs)
 * indexes each device's own rows: (S(0), S(0)) -> S(0), and its parts never index a whole table. */
static int gather_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *table = &t->src[0]->shape;
    const int local = loom__local_index(t->src[1], table);
    int n = 0;
    if (local)
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(0), loom_split(0)}, loom_split(0));
    if (loom__sbp_can_split(table, 0) && !loom_dim_is_dynamic(table->d[0]) && loom_dtype_is_float(t->dtype))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(0), loom_broadcast()}, loom_partial_sum());
    if (!local && loom__sbp_can_split(&t->src[1]->shape, 0) && loom__sbp_can_split(&t->shape, 0))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_broadcast(), loom_split(0)}, loom_split(0));
    for (int i = 1; i < table->ndim; i++)
        if (loom__sbp_can_split(table, i) && loom__sbp_can_split(&t->shape, i))
            n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(i), loom_broadcast()}, loom_split(i));
    return loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
}

const loom_op_def loom__op_gather_rows = {
    .name = "gather_rows",
    .min_src = 2,
    .max_src = 2,
    .infer = gather_infer,
    .cpu = loom__cpu_gather_rows,
    .grad = gather_grad,
    .diff_src = 1,
    .sbp = gather_sbp,
};

/* ---- scatter ---------------------------------------------------------------------------------- */

static loom_status scatter_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *src = t->src[0], *idx = t->src[1];
    const loom_dim n = (loom_dim)t->a.i[1];
    if (src->layout != LOOM__DENSE || !loom_dtype_is_float(src->dtype))
        return snprintf(msg, len, "src must be a dense f32 or f64 tensor, got %s%s",
                        src->layout == LOOM__CSR ? "a CSR " : "", loom_dtype_name(src->dtype)),
               LOOM_ERR_DTYPE;
    loom_status s = check_idx(t, src, idx, "src", msg, len);
    if (s != LOOM_OK)
        return s;
    if (t->a.i[0] < 0 || t->a.i[0] >= LOOM__SCATTER_MODE_COUNT)
        return snprintf(msg, len, "unknown reduction %" PRId64 " (internal error)", t->a.i[0]), LOOM_ERR_INVALID;
    if (!loom__dim_ok(t->graph, n, 1, "n", msg, len))
        return LOOM_ERR_SHAPE;
    t->dtype = src->dtype;
    t->layout = LOOM__DENSE;
    t->shape = src->shape;
    t->shape.d[0] = n;
    return LOOM_OK;
}

/* sum: each source row received gout at its target, so it gets that row back. mean and max need
 * the counts or the argmax, which scatter_grad recomputes from src, idx and the forward output. */
static void scatter_grad_rule(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    if (t->a.i[0] == LOOM__SCATTER_SUM) {
        loom_tensor *src[2] = {gout, t->src[1]};
        gsrc[0] = loom__node(g, "loom_scatter_add_rows (gradient)", LOOM_OP_GATHER_ROWS, 2, src, NULL);
        return;
    }
    loom_tensor *src[4] = {t->src[0], t->src[1], t, gout};
    gsrc[0] = loom__node(g, t->a.i[0] == LOOM__SCATTER_MEAN ? "loom_segment_mean (gradient)" : "loom_segment_max (gradient)",
                         LOOM_OP_SCATTER_GRAD, 4, src, &(loom__attrs){.i = {t->a.i[0]}});
}

/* Rows of src split with their idx: each device sums its rows into all n outputs, and the sums
 * add up (P) for the sum mode only; a device's mean divides by its own counts and a max of maxima
 * is not a sum. Feature axes split through in every mode (idx whole: the same counts and the same
 * rows everywhere). sum and mean are linear in src given idx: (P, B) -> P. */
/* An index input over the output's rows (a graph batch split by whole graphs) sends each device's
 * rows to its own part of the output, in every mode: (S(0), S(0)) -> S(0). */
static int scatter_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *src = &t->src[0]->shape;
    const int64_t mode = t->a.i[0];
    const int local = loom__local_index(t->src[1], &t->shape);
    int n = 0;
    if (local)
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(0), loom_split(0)}, loom_split(0));
    if (!local && mode == LOOM__SCATTER_SUM && loom__sbp_can_split(src, 0) && loom__sbp_can_split(&t->src[1]->shape, 0))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(0), loom_split(0)}, loom_partial_sum());
    for (int i = 1; i < src->ndim; i++)
        if (loom__sbp_can_split(src, i) && loom__sbp_can_split(&t->shape, i))
            n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(i), loom_broadcast()}, loom_split(i));
    if (mode == LOOM__SCATTER_SUM || mode == LOOM__SCATTER_MEAN)
        n = loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
    return n;
}

const loom_op_def loom__op_scatter = {
    .name = "scatter",
    .min_src = 2,
    .max_src = 2,
    .infer = scatter_infer,
    .cpu = loom__cpu_scatter,
    .grad = scatter_grad_rule,
    .diff_src = 1,
    .sbp = scatter_sbp,
};

/* scatter_grad(src, idx, out, gout): made by the rule above only, so a mismatch is internal. */
static loom_status scatter_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *src = t->src[0], *idx = t->src[1], *out = t->src[2], *gout = t->src[3];
    loom_status s = check_idx(t, src, idx, "src", msg, len);
    if (s != LOOM_OK)
        return s;
    if (t->a.i[0] != LOOM__SCATTER_MEAN && t->a.i[0] != LOOM__SCATTER_MAX)
        return snprintf(msg, len, "reduction %" PRId64 " has no scatter_grad (internal error)", t->a.i[0]),
               LOOM_ERR_INVALID;
    int ok = loom_dtype_is_float(src->dtype) && src->layout == LOOM__DENSE;
    const loom_tensor *same[2] = {out, gout};
    for (int k = 0; k < 2 && ok; k++) {
        ok = same[k]->layout == LOOM__DENSE && same[k]->dtype == src->dtype && same[k]->shape.ndim == src->shape.ndim &&
             loom__dim_eq(same[k]->shape.d[0], out->shape.d[0]);
        for (int i = 1; ok && i < src->shape.ndim; i++)
            ok = loom__dim_eq(same[k]->shape.d[i], src->shape.d[i]);
    }
    if (!ok) {
        char b1[160], b2[160], b3[160];
        return snprintf(msg, len, "src %s %s, out %s and gout %s do not match (internal error)", loom_dtype_name(src->dtype),
                        loom__shape_str(t->graph, &src->shape, b1, sizeof b1),
                        loom__shape_str(t->graph, &out->shape, b2, sizeof b2),
                        loom__shape_str(t->graph, &gout->shape, b3, sizeof b3)),
               LOOM_ERR_SHAPE;
    }
    t->dtype = src->dtype;
    t->layout = LOOM__DENSE;
    t->shape = src->shape;
    return LOOM_OK;
}

/* Feature axes split through (src, out and gout alike; idx whole). Rows of src and idx split
 * would count each segment's rows per device (mean) or route a tied max once per device (max), so
 * they are not listed. Given src, idx and out, the gradient is linear in gout. */
static int scatter_grad_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *src = &t->src[0]->shape;
    int n = 0;
    if (loom__local_index(t->src[1], &t->src[2]->shape)) /* each device's graphs alone, as the forward scatter */
        n = loom__sbp_add(sigs, n, max, 4, (loom_sbp[]){loom_split(0), loom_split(0), loom_split(0), loom_split(0)},
                          loom_split(0));
    for (int i = 1; i < src->ndim; i++)
        if (loom__sbp_can_split(src, i) && loom__sbp_can_split(&t->src[2]->shape, i) &&
            loom__sbp_can_split(&t->src[3]->shape, i) && loom__sbp_can_split(&t->shape, i))
            n = loom__sbp_add(sigs, n, max, 4, (loom_sbp[]){loom_split(i), loom_broadcast(), loom_split(i), loom_split(i)},
                              loom_split(i));
    return loom__sbp_add_partial(t, 8, loom_partial_sum(), sigs, n, max);
}

/* No gradient: second derivatives of segment mean and max are not supported. */
const loom_op_def loom__op_scatter_grad = {
    .name = "scatter_grad",
    .min_src = 4,
    .max_src = 4,
    .infer = scatter_grad_infer,
    .cpu = loom__cpu_scatter_grad,
    .sbp = scatter_grad_sbp,
};

/* ---- segment_softmax ---------------------------------------------------------------------------- */

/* x (y for the gradient, whose gout must match it): a dense float tensor of 1 or more dims, seg an
 * i32 vector as long, n (a.i[0]) a size or a dynamic dim of the graph. */
static loom_status segment_softmax_infer(loom_tensor *t, char *msg, size_t len)
{
    const int grad = t->op == LOOM_OP_SEGMENT_SOFTMAX_GRAD;
    const loom_tensor *x = t->src[0], *seg = t->src[1];
    const char *what = grad ? "y" : "x";
    if (x->layout != LOOM__DENSE || !loom_dtype_is_float(x->dtype))
        return snprintf(msg, len, "%s must be a dense f32 or f64 tensor, got %s%s", what,
                        x->layout == LOOM__CSR ? "a CSR " : "", loom_dtype_name(x->dtype)),
               LOOM_ERR_DTYPE;
    loom_status s = check_idx(t, x, seg, what, msg, len);
    if (s != LOOM_OK)
        return s;
    if (grad && (t->src[2]->layout != LOOM__DENSE || t->src[2]->dtype != x->dtype ||
                 !loom__shape_eq(&t->src[2]->shape, &x->shape)))
        return snprintf(msg, len, "gout does not match y (internal error)"), LOOM_ERR_SHAPE;
    if (!loom__dim_ok(t->graph, (loom_dim)t->a.i[0], 1, "n", msg, len))
        return LOOM_ERR_SHAPE;
    t->dtype = x->dtype;
    t->layout = LOOM__DENSE;
    t->shape = x->shape;
    return LOOM_OK;
}

static void segment_softmax_grad_rule(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *src[3] = {t, t->src[1], gout};
    gsrc[0] = loom__node(g, "loom_segment_softmax (gradient)", LOOM_OP_SEGMENT_SOFTMAX_GRAD, 3, src, &t->a);
}

/* A batch index over n (a graph batch split by whole graphs) holds each device's own segments, so
 * the rows split with it: (S(0), S(0)) -> S(0), and nothing else (loom__reads_local_index). Else a
 * segment's rows may lie on any device: feature axes split, seg whole. The gradient is linear in
 * gout given y and seg: (B, B, P) -> P. */
static int segment_softmax_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const int grad = t->op == LOOM_OP_SEGMENT_SOFTMAX_GRAD;
    const loom_shape *x = &t->src[0]->shape;
    const loom_sbp S0 = loom_split(0), B = loom_broadcast();
    if (loom__reads_local_index(t, 1))
        return loom__sbp_add(sigs, 0, max, 2 + grad, (loom_sbp[]){S0, S0, S0}, S0);
    int n = 0;
    for (int i = 1; i < x->ndim; i++)
        if (loom__sbp_can_split(x, i))
            n = loom__sbp_add(sigs, n, max, 2 + grad, (loom_sbp[]){loom_split(i), B, loom_split(i)}, loom_split(i));
    return grad ? loom__sbp_add_partial(t, 4, loom_partial_sum(), sigs, n, max) : n;
}

const loom_op_def loom__op_segment_softmax = {.name = "segment_softmax", .min_src = 2, .max_src = 2,
                                              .infer = segment_softmax_infer, .cpu = loom__cpu_segment_softmax,
                                              .grad = segment_softmax_grad_rule, .diff_src = 1,
                                              .sbp = segment_softmax_sbp};

/* No gradient: second derivatives of the segment softmax are not supported. */
const loom_op_def loom__op_segment_softmax_grad = {.name = "segment_softmax_grad", .min_src = 3, .max_src = 3,
                                                   .infer = segment_softmax_infer,
                                                   .cpu = loom__cpu_segment_softmax, .sbp = segment_softmax_sbp};

/* ---- one_hot ------------------------------------------------------------------------------------ */

static loom_status one_hot_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *idx = t->src[0];
    const loom_dtype dt = (loom_dtype)t->a.i[1];
    if (idx->layout != LOOM__DENSE || idx->dtype != LOOM_I32)
        return snprintf(msg, len, "idx must be a dense i32 tensor, got %s%s", idx->layout == LOOM__CSR ? "a CSR " : "",
                        loom_dtype_name(idx->dtype)),
               LOOM_ERR_DTYPE;
    if (dt != LOOM_F32 && dt != LOOM_F64)
        return snprintf(msg, len, "dtype is %s; one-hot rows are f32 or f64",
                        (unsigned)dt < LOOM_DTYPE_COUNT ? loom_dtype_name(dt) : "invalid"),
               LOOM_ERR_DTYPE;
    if (t->a.i[0] < 1)
        return snprintf(msg, len, "classes must be 1 or more, got %lld", (long long)t->a.i[0]), LOOM_ERR_INVALID;
    if (idx->shape.ndim >= LOOM_MAX_DIMS) {
        char b[160];
        return snprintf(msg, len, "idx is %s; the output would have more than %d dims",
                        loom__shape_str(t->graph, &idx->shape, b, sizeof b), LOOM_MAX_DIMS),
               LOOM_ERR_SHAPE;
    }
    t->dtype = dt;
    t->layout = LOOM__DENSE;
    t->shape = idx->shape;
    t->shape.d[t->shape.ndim++] = t->a.i[0];
    return LOOM_OK;
}

/* Elementwise in idx: its splits pass through (the classes axis whole). */
static int one_hot_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *idx = &t->src[0]->shape;
    int n = 0;
    for (int i = 0; i < idx->ndim; i++)
        if (loom__sbp_can_split(idx, i))
            n = loom__sbp_add(sigs, n, max, 1, (loom_sbp[]){loom_split(i)}, loom_split(i));
    return n;
}

const loom_op_def loom__op_one_hot = {.name = "one_hot", .min_src = 1, .max_src = 1, .infer = one_hot_infer,
                                      .cpu = loom__cpu_one_hot, .sbp = one_hot_sbp};

/* ---- builders --------------------------------------------------------------------------------- */

loom_tensor *loom_gather_rows(loom_graph *g, loom_tensor *table, loom_tensor *idx)
{
    loom_tensor *src[2] = {table, idx};
    return loom__node(g, "loom_gather_rows", LOOM_OP_GATHER_ROWS, 2, src, NULL);
}

static loom_tensor *scatter(loom_graph *g, const char *api, int mode, loom_tensor *x, loom_tensor *idx, loom_dim n)
{
    loom_tensor *src[2] = {x, idx};
    return loom__node(g, api, LOOM_OP_SCATTER, 2, src, &(loom__attrs){.i = {mode, n}});
}

loom_tensor *loom_scatter_add_rows(loom_graph *g, loom_tensor *src, loom_tensor *idx, loom_dim n)
{
    return scatter(g, "loom_scatter_add_rows", LOOM__SCATTER_SUM, src, idx, n);
}

loom_tensor *loom_segment_sum(loom_graph *g, loom_tensor *x, loom_tensor *seg, loom_dim n)
{
    return scatter(g, "loom_segment_sum", LOOM__SCATTER_SUM, x, seg, n);
}

loom_tensor *loom_segment_mean(loom_graph *g, loom_tensor *x, loom_tensor *seg, loom_dim n)
{
    return scatter(g, "loom_segment_mean", LOOM__SCATTER_MEAN, x, seg, n);
}

loom_tensor *loom_segment_max(loom_graph *g, loom_tensor *x, loom_tensor *seg, loom_dim n)
{
    return scatter(g, "loom_segment_max", LOOM__SCATTER_MAX, x, seg, n);
}

loom_tensor *loom_segment_softmax(loom_graph *g, loom_tensor *x, loom_tensor *seg, loom_dim n)
{
    loom_tensor *src[2] = {x, seg};
    return loom__node(g, "loom_segment_softmax", LOOM_OP_SEGMENT_SOFTMAX, 2, src, &(loom__attrs){.i = {n}});
}

loom_tensor *loom_one_hot(loom_graph *g, loom_tensor *idx, int64_t classes, loom_dtype dtype)
{
    return loom__node(g, "loom_one_hot", LOOM_OP_ONE_HOT, 1, &idx, &(loom__attrs){.i = {classes, dtype}});
}
