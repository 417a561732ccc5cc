/* Sparse ops on CSR adjacencies: spmm (CSR x dense, or its transpose) and degree. Builders, shape
 * inference and gradient rules; kernels live in ops/cpu/sparse.c.
 *
 *   spmm(adj [N, M] CSR, x [M, F...], transpose 0) -> [N, F...]
 *   spmm(adj [N, M] CSR, x [N, F...], transpose 1) -> [M, F...]    (adj^T x)
 *   degree(adj [N, N'] CSR)                        -> [N]          (row sum + self loop) ^ power
 *
 * A CSR tensor is never differentiable: the gradient flows to x only. */
#include <math.h>
#include <stdio.h>

#include "ops/cpu/sparse.h"
#include "graphs/core/op.h"
#include "ops/sbp_sigs.h"

/* src[0] must be a CSR matrix: the message names the argument and how to make one. */
static loom_status need_csr(const loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *adj = t->src[0];
    if (adj->layout != LOOM__CSR)
        return snprintf(msg, len, "adj must be a CSR matrix (loom_input_csr), got a dense %s tensor",
                        loom_dtype_name(adj->dtype)),
               LOOM_ERR_INVALID;
    if (!loom_dtype_is_float(adj->dtype) || adj->shape.ndim != 2)
        return snprintf(msg, len, "adj must hold f32 or f64 values in 2 dims, got %s in %d", loom_dtype_name(adj->dtype),
                        adj->shape.ndim),
               LOOM_ERR_DTYPE;
    return LOOM_OK;
}

static loom_status spmm_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = need_csr(t, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_tensor *adj = t->src[0], *x = t->src[1];
    const int tr = (int)t->a.i[0];
    char b1[160], b2[160];
    if (x->layout != LOOM__DENSE)
        return snprintf(msg, len, "x must be dense, got a CSR matrix"), LOOM_ERR_INVALID;
    if (x->dtype != adj->dtype)
        return snprintf(msg, len, "x is %s but adj holds %s values; they must match", loom_dtype_name(x->dtype),
                        loom_dtype_name(adj->dtype)),
               LOOM_ERR_DTYPE;
    if (x->shape.ndim < 1)
        return snprintf(msg, len, "x must have at least 1 dim, got a scalar"), LOOM_ERR_SHAPE;
    /* adj [N, M]: x's rows pair with adj's columns, or with its rows for adj^T. */
    if (!loom__dim_eq(adj->shape.d[!tr], x->shape.d[0]))
        return snprintf(msg, len, "inner dimensions differ: adj%s is %s%s, x is %s", tr ? "^T" : "",
                        loom__shape_str(t->graph, &adj->shape, b1, sizeof b1), tr ? " (transposed)" : "",
                        loom__shape_str(t->graph, &x->shape, b2, sizeof b2)),
               LOOM_ERR_SHAPE;
    t->dtype = adj->dtype;
    t->layout = LOOM__DENSE;
    t->shape = x->shape;
    t->shape.d[0] = adj->shape.d[tr];
    return LOOM_OK;
}

/* y = A x gives dx = A^T gy, and y = A^T x gives dx = A gy: the same op with the flag flipped. */
static void spmm_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *src[2] = {t->src[0], gout};
    gsrc[1] = loom__node(g, "loom_spmm (gradient)", LOOM_OP_SPMM, 2, src, &(loom__attrs){.i = {!t->a.i[0]}});
}

/* adj is split by rows (S(0): each device a block of rows, every column, row pointers from 0) or
 * whole; never P. y = A x: a block of A's rows gives that block of y's rows. y = A^T x: a block of
 * rows of A meets the same block of x's rows and gives all of y, partially: the sum over blocks
 * is A^T x. Either way x's feature axes split through, and y is linear in x given A. */
static int spmm_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *adj = &t->src[0]->shape, *x = &t->src[1]->shape;
    int n = 0;
    if (!t->a.i[0] && loom__sbp_can_split(adj, 0) && loom__sbp_can_split(&t->shape, 0))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(0), loom_broadcast()}, loom_split(0));
    if (t->a.i[0] && loom__sbp_can_split(adj, 0) && loom__sbp_can_split(x, 0))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(0), loom_split(0)}, loom_partial_sum());
    for (int i = 1; i < x->ndim; i++)
        if (loom__sbp_can_split(x, i) && loom__sbp_can_split(&t->shape, i))
            n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_broadcast(), loom_split(i)}, loom_split(i));
    return loom__sbp_add_partial(t, 2, loom_partial_sum(), sigs, n, max);
}

/* 2 nnz f, the nonzeros taken as two a row (the bound tensor_bytes assumes; a CSR input's count is
 * known only when fed). */
static double spmm_flops(const loom_tensor *t)
{
    const loom_shape *adj = &t->src[0]->shape;
    double rows = (double)loom__dim_bound(t->graph, adj->d[0]), out_rows = (double)loom__dim_bound(t->graph, t->shape.d[0]);
    return 2 * 2 * rows * (loom__shape_bound_elems(t->graph, &t->shape) / (out_rows > 0 ? out_rows : 1));
}

const loom_op_def loom__op_spmm = {
    .name = "spmm",
    .min_src = 2,
    .max_src = 2,
    .infer = spmm_infer,
    .flags = LOOM__OPF_THREADED, .cpu = loom__cpu_spmm,
    .grad = spmm_grad,
    .diff_src = 2,
    .sbp = spmm_sbp,
    .flops = spmm_flops,
};

static loom_status degree_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = need_csr(t, msg, len);
    if (s != LOOM_OK)
        return s;
    if (!isfinite(t->a.f[0]))
        return snprintf(msg, len, "power must be finite, got %g", t->a.f[0]), LOOM_ERR_INVALID;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = loom_shape(t->src[0]->shape.d[0]);
    return LOOM_OK;
}

/* One output per row of adj, from that row alone: rows split through. */
static int degree_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    if (!loom__sbp_can_split(&t->src[0]->shape, 0) || !loom__sbp_can_split(&t->shape, 0))
        return 0;
    return loom__sbp_add(sigs, 0, max, 1, (loom_sbp[]){loom_split(0)}, loom_split(0));
}

/* Not differentiable: its only source is a CSR matrix. */
const loom_op_def loom__op_degree = {
    .name = "degree",
    .min_src = 1,
    .max_src = 1,
    .infer = degree_infer,
    .cpu = loom__cpu_degree,
    .sbp = degree_sbp,
};

/* ---- builders --------------------------------------------------------------------------------- */

loom_tensor *loom_spmm_ex(loom_graph *g, loom_tensor *adj, loom_tensor *x, int transpose)
{
    loom_tensor *src[2] = {adj, x};
    return loom__node(g, "loom_spmm", LOOM_OP_SPMM, 2, src, &(loom__attrs){.i = {!!transpose}});
}

loom_tensor *loom_degree(loom_graph *g, loom_tensor *adj, int self_loops, double power)
{
    return loom__node(g, "loom_degree", LOOM_OP_DEGREE, 1, &adj, &(loom__attrs){.i = {!!self_loops}, .f = {power}});
}
