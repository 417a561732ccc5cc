/* matmul: [m, k] x [k, n] -> [m, n], either operand possibly transposed. */
#include "ops/cpu/matmul.h"
#include "ops/sbp_sigs.h"

#include <stdio.h>

static loom_status matmul_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *a = t->src[0], *b = t->src[1];
    int ta = (int)t->a.i[0], tb = (int)t->a.i[1];
    char s1[96], s2[96];
    if (a->layout != LOOM__DENSE || b->layout != LOOM__DENSE)
        return snprintf(msg, len, "operands must be dense (use loom_spmm for a sparse one)"), LOOM_ERR_INVALID;
    if (!loom_dtype_is_float(a->dtype) || a->dtype != b->dtype)
        return snprintf(msg, len, "operands must be both f32 or both f64, got %s and %s", loom_dtype_name(a->dtype),
                        loom_dtype_name(b->dtype)),
               LOOM_ERR_DTYPE;
    if (a->shape.ndim != 2 || b->shape.ndim != 2)
        return snprintf(msg, len, "operands must be 2-D, got %s and %s", loom__shape_str(t->graph, &a->shape, s1, sizeof s1),
                        loom__shape_str(t->graph, &b->shape, s2, sizeof s2)),
               LOOM_ERR_SHAPE;
    loom_dim m = a->shape.d[ta], ka = a->shape.d[!ta], kb = b->shape.d[tb], n = b->shape.d[!tb];
    if (!loom__dim_eq(ka, kb))
        return snprintf(msg, len, "inner dimensions differ: a%s is %s, b%s is %s", ta ? "^T" : "",
                        loom__shape_str(t->graph, &a->shape, s1, sizeof s1), tb ? "^T" : "",
                        loom__shape_str(t->graph, &b->shape, s2, sizeof s2)),
               LOOM_ERR_SHAPE;
    t->dtype = a->dtype;
    t->layout = LOOM__DENSE;
    t->shape = loom_shape(m, n);
    return LOOM_OK;
}

/* With C = op(A) op(B): dA and dB are products of gout with the other operand, the transposes
 * chosen so that no transpose is ever materialised. */
static void matmul_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom_tensor *a = t->src[0], *b = t->src[1];
    int ta = (int)t->a.i[0], tb = (int)t->a.i[1];
    if (!ta)
        gsrc[0] = tb ? loom_matmul_ex(g, gout, b, 0, 0) : loom_matmul_ex(g, gout, b, 0, 1);
    else
        gsrc[0] = tb ? loom_matmul_ex(g, b, gout, 1, 1) : loom_matmul_ex(g, b, gout, 0, 1);
    if (!tb)
        gsrc[1] = ta ? loom_matmul_ex(g, a, gout, 0, 0) : loom_matmul_ex(g, a, gout, 1, 0);
    else
        gsrc[1] = ta ? loom_matmul_ex(g, gout, a, 1, 1) : loom_matmul_ex(g, gout, a, 1, 0);
}

/* C [m, n] = op(A) op(B): rows of op(A) give rows of C, columns of op(B) columns of C, and a
 * split of the inner dim k on both sides leaves each device a partial product over its k-range.
 * C is bilinear, so a partial operand times a whole one stays partial. The axes name the
 * operands as stored: with trans_a, op(A)'s rows are A's axis 1. */
static int matmul_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *a = &t->src[0]->shape, *b = &t->src[1]->shape;
    const int am = (int)t->a.i[0], ak = !am, bk = (int)t->a.i[1], bn = !bk;
    int n = 0;
    if (loom__sbp_can_split(a, am) && loom__sbp_can_split(&t->shape, 0))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(am), loom_broadcast()}, loom_split(0));
    if (loom__sbp_can_split(b, bn) && loom__sbp_can_split(&t->shape, 1))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_broadcast(), loom_split(bn)}, loom_split(1));
    if (loom__sbp_can_split(a, ak) && loom__sbp_can_split(b, bk))
        n = loom__sbp_add(sigs, n, max, 2, (loom_sbp[]){loom_split(ak), loom_split(bk)}, loom_partial_sum());
    n = loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
    return loom__sbp_add_partial(t, 2, loom_partial_sum(), sigs, n, max);
}

/* 2 m n k: each output element a dot product over k; for the cost model, each of m and n at least
 * GEMM_TILE: a GEMM kernel computes register tiles of the output, and a product narrower than one
 * (a GCN's 16 hidden columns) pays for the whole tile anyway (measured: a [2708, 1433] x [1433, 16]
 * product runs at a third of a square one's rate). The sum over k is not padded: a short one runs
 * at the square rate ([6400, 32] x [32, 32] and [2708, 16] x [16, 48] at 100 and 106 GFLOP/s on
 * one core of this machine, where [512, 256] x [256, 256] ran at 94 to 101). */
#define GEMM_TILE 48
static double matmul_flops(const loom_tensor *t)
{
    const loom_graph *g = t->graph;
    const double m = (double)loom__dim_bound(g, t->shape.d[0]), n = (double)loom__dim_bound(g, t->shape.d[1]);
    const double k = (double)loom__dim_bound(g, t->src[0]->shape.d[!t->a.i[0]]);
    return 2 * (m > GEMM_TILE ? m : GEMM_TILE) * (n > GEMM_TILE ? n : GEMM_TILE) * k;
}

const loom_op_def loom__op_matmul = {
    .name = "matmul",
    .min_src = 2,
    .max_src = 2,
    .infer = matmul_infer,
    .flags = LOOM__OPF_THREADED | LOOM__OPF_LIBRARY, .cpu = loom__cpu_matmul,
    .grad = matmul_grad,
    .diff_src = 3,
    .sbp = matmul_sbp,
    .flops = matmul_flops,
};

loom_tensor *loom_matmul_ex(loom_graph *g, loom_tensor *a, loom_tensor *b, int trans_a, int trans_b)
{
    loom_tensor *src[2] = {a, b};
    return loom__node(g, "loom_matmul", LOOM_OP_MATMUL, 2, src, &(loom__attrs){.i = {!!trans_a, !!trans_b}});
}
