/* Shape ops: reshape, transpose, concat, slice, and slice_grad (slice's gradient). They move
 * elements without reading them, so every dtype is accepted. Kernels live in ops/cpu/shape.c.
 *
 *   reshape(x):        a.shape the target.
 *   transpose(x):      a.i[0 .. ndim-1] the permutation: out dim i is x's dim a.i[i].
 *   concat(x1 .. xn):  a.i[0] the axis (normalised by infer); it is static in every source.
 *   slice(x):          a.i[0] axis (normalised by infer, static in x), a.i[1] start, a.i[2] end.
 *   slice_grad(g, x):  x's shape, zeros but for g in [start, end) of the axis; a as slice's. */
#include <inttypes.h>
#include <stdio.h>

#include "ops/cpu/shape.h"
#include "graphs/core/op.h"
#include "ops/sbp_sigs.h"

static loom_status dense_operand(const loom_tensor *t, int i, char *msg, size_t len)
{
    if (t->src[i]->layout != LOOM__DENSE) {
        snprintf(msg, len, "operand %d is a CSR matrix; this op takes dense tensors", i + 1);
        return LOOM_ERR_INVALID;
    }
    return LOOM_OK;
}

static int needs_grad(const loom_tensor *t, int i) { return (t->src[i]->flags & LOOM__T_NEEDS_GRAD) != 0; }

/* ---- reshape ----------------------------------------------------------------------------------- */

/* Occurrences of dim d (a dynamic handle) in s. */
static int count_dim(const loom_shape *s, loom_dim d)
{
    int k = 0;
    for (int i = 0; i < s->ndim; i++)
        k += loom__dim_eq(s->d[i], d);
    return k;
}

/* Product of the static dims of s into *p; 0 on overflow. */
static int static_numel(const loom_shape *s, int64_t *p)
{
    *p = 1;
    for (int i = 0; i < s->ndim; i++)
        if (!loom_dim_is_dynamic(s->d[i]) && __builtin_mul_overflow(*p, s->d[i], p))
            return 0;
    return 1;
}

/* The element counts agree at every run-time binding of the dynamic dims when each dynamic dim
 * appears as often on both sides and the static products are equal. */
static loom_status reshape_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = dense_operand(t, 0, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_shape *x = &t->src[0]->shape, *to = &t->a.shape;
    if (to->ndim < 0 || to->ndim > LOOM_MAX_DIMS) {
        snprintf(msg, len, "target shape has %d dims; 0 to %d allowed", to->ndim, LOOM_MAX_DIMS);
        return LOOM_ERR_SHAPE;
    }
    for (int i = 0; i < to->ndim; i++) {
        char what[24];
        snprintf(what, sizeof what, "target dim %d", i);
        if (!loom__dim_ok(t->graph, to->d[i], 1, what, msg, len))
            return LOOM_ERR_SHAPE;
    }
    char b1[160], b2[160];
    for (int side = 0; side < 2; side++) {
        const loom_shape *a = side ? to : x;
        for (int i = 0; i < a->ndim; i++)
            if (loom_dim_is_dynamic(a->d[i]) && count_dim(x, a->d[i]) != count_dim(to, a->d[i])) {
                loom_shape one = {.ndim = 1, .d = {a->d[i]}};
                char bd[64];
                snprintf(msg, len, "cannot reshape %s to %s: dynamic dim %s must appear as often in both",
                         loom__shape_str(t->graph, x, b1, sizeof b1), loom__shape_str(t->graph, to, b2, sizeof b2),
                         loom__shape_str(t->graph, &one, bd, sizeof bd));
                return LOOM_ERR_SHAPE;
            }
    }
    int64_t nx, nt;
    if (!static_numel(x, &nx) || !static_numel(to, &nt) || nx != nt) {
        snprintf(msg, len, "cannot reshape %s to %s: element counts differ", loom__shape_str(t->graph, x, b1, sizeof b1),
                 loom__shape_str(t->graph, to, b2, sizeof b2));
        return LOOM_ERR_SHAPE;
    }
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = *to;
    return LOOM_OK;
}

static void reshape_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom__attrs a = {.shape = t->src[0]->shape};
    gsrc[0] = loom__node(g, "loom_reshape (gradient)", LOOM_OP_RESHAPE, 1, &gout, &a);
}

/* 1 when x's dims before axis i and y's dims before axis k hold as many elements at every binding
 * of the dynamic dims (the rule of reshape_infer, on the prefixes). */
static int same_prefix(const loom_shape *x, int i, const loom_shape *y, int k)
{
    loom_shape a = *x, b = *y;
    a.ndim = i;
    b.ndim = k;
    int64_t na, nb;
    if (!static_numel(&a, &na) || !static_numel(&b, &nb) || na != nb)
        return 0;
    for (int side = 0; side < 2; side++) {
        const loom_shape *s = side ? &b : &a;
        for (int j = 0; j < s->ndim; j++)
            if (loom_dim_is_dynamic(s->d[j]) && count_dim(&a, s->d[j]) != count_dim(&b, s->d[j]))
                return 0;
    }
    return 1;
}

/* Row-major x is [A, d, B] around its axis i; when the output is [A, d, B'] around an axis k (the
 * same elements before it, the same dim), part j of x along i is, byte for byte, part j of the
 * output along k: S(i) -> S(k). Where the split axis merges with others or is cut up, the parts
 * of the merged dim are not the merged parts (7 x 2 over 3 devices: 5, 5, 4 rows of the product
 * against 3, 2, 2 of 7), so no split. The local op's target shape is the output's local shape
 * (a.shape with d[k] the part): the plan writes it, as the test does. Linear: P -> P. */
static int reshape_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    const loom_shape *x = &t->src[0]->shape, *y = &t->shape;
    int n = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (!loom__sbp_can_split(x, i))
            continue;
        for (int k = 0; k < y->ndim; k++)
            if (loom__dim_eq(x->d[i], y->d[k]) && loom__sbp_can_split(y, k) && same_prefix(x, i, y, k)) {
                n = loom__sbp_add(sigs, n, max, 1, (loom_sbp[]){loom_split(i)}, loom_split(k));
                break;
            }
    }
    return loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
}

const loom_op_def loom__op_reshape = {.name = "reshape", .min_src = 1, .max_src = 1, .infer = reshape_infer,
                                      .cpu = loom__cpu_reshape, .grad = reshape_grad, .diff_src = 1,
                                      .sbp = reshape_sbp};

loom_tensor *loom_reshape(loom_graph *g, loom_tensor *x, loom_shape shape)
{
    loom__attrs a = {.shape = shape};
    return loom__node(g, "loom_reshape", LOOM_OP_RESHAPE, 1, &x, &a);
}

/* ---- transpose --------------------------------------------------------------------------------- */

static loom_status transpose_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = dense_operand(t, 0, msg, len);
    if (s != LOOM_OK)
        return s;
    const loom_shape *x = &t->src[0]->shape;
    int seen = 0, ok = 1;
    for (int i = 0; i < x->ndim; i++) {
        int64_t p = t->a.i[i];
        ok &= p >= 0 && p < x->ndim && !(seen >> p & 1);
        if (ok)
            seen |= 1 << p;
    }
    if (!ok) {
        char b[160], bp[96];
        size_t o = 0;
        for (int i = 0; i < x->ndim; i++)
            o += (size_t)snprintf(bp + o, o < sizeof bp ? sizeof bp - o : 0, "%s%" PRId64, i ? ", " : "", t->a.i[i]);
        snprintf(msg, len, "perm [%s] is not a permutation of 0..%d for %s", bp, x->ndim - 1,
                 loom__shape_str(t->graph, x, b, sizeof b));
        return LOOM_ERR_INVALID;
    }
    loom_shape r = {.ndim = x->ndim};
    for (int i = 0; i < x->ndim; i++)
        r.d[i] = x->d[t->a.i[i]];
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = r;
    return LOOM_OK;
}

/* Out dim i is x's dim p[i], so x's dim p[i] is gout's dim i: the inverse permutation. */
static void transpose_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    loom__attrs a = {0};
    for (int i = 0; i < t->shape.ndim; i++)
        a.i[t->a.i[i]] = i;
    gsrc[0] = loom__node(g, "loom_transpose (gradient)", LOOM_OP_TRANSPOSE, 1, &gout, &a);
}

/* Output axis k is x's axis perm[k]: a split moves with its axis. Linear: P -> P. */
static int transpose_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = 0;
    for (int k = 0; k < t->shape.ndim; k++) {
        int i = (int)t->a.i[k];
        if (loom__sbp_can_split(&t->src[0]->shape, i) && loom__sbp_can_split(&t->shape, k))
            n = loom__sbp_add(sigs, n, max, 1, (loom_sbp[]){loom_split(i)}, loom_split(k));
    }
    return loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
}

const loom_op_def loom__op_transpose = {.name = "transpose", .min_src = 1, .max_src = 1, .infer = transpose_infer,
                                        .cpu = loom__cpu_transpose, .grad = transpose_grad, .diff_src = 1,
                                        .sbp = transpose_sbp};

loom_tensor *loom_transpose(loom_graph *g, loom_tensor *x, const int *perm)
{
    loom__attrs a = {0};
    if (x && !(x->flags & LOOM__T_POISON)) /* else loom__node reports it */
        for (int i = 0, nd = x->shape.ndim; i < nd; i++)
            a.i[i] = perm ? perm[i] : nd - 1 - i;
    return loom__node(g, "loom_transpose", LOOM_OP_TRANSPOSE, 1, &x, &a);
}

/* ---- concat ------------------------------------------------------------------------------------ */

static loom_status concat_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *x0 = t->src[0];
    int nd = x0->shape.ndim, axis = loom__axis((int)t->a.i[0], nd);
    char b1[160], b2[160];
    if (nd == 0) {
        snprintf(msg, len, "cannot concatenate scalars");
        return LOOM_ERR_SHAPE;
    }
    if (axis < 0) {
        snprintf(msg, len, "axis %d out of range for %s", (int)t->a.i[0],
                 loom__shape_str(t->graph, &x0->shape, b1, sizeof b1));
        return LOOM_ERR_SHAPE;
    }
    loom_shape r = x0->shape;
    r.d[axis] = 0;
    for (int k = 0; k < t->n_src; k++) {
        const loom_tensor *x = t->src[k];
        loom_status s = dense_operand(t, k, msg, len);
        if (s != LOOM_OK)
            return s;
        if (x->dtype != x0->dtype) {
            snprintf(msg, len, "operand %d is %s, operand 1 %s; all must have the same dtype", k + 1,
                     loom_dtype_name(x->dtype), loom_dtype_name(x0->dtype));
            return LOOM_ERR_DTYPE;
        }
        int ok = x->shape.ndim == nd;
        for (int i = 0; ok && i < nd; i++)
            ok = i == axis || loom__dim_eq(x->shape.d[i], x0->shape.d[i]);
        if (!ok) {
            snprintf(msg, len, "operand %d is %s, operand 1 %s; all dims but axis %d must match", k + 1,
                     loom__shape_str(t->graph, &x->shape, b1, sizeof b1),
                     loom__shape_str(t->graph, &x0->shape, b2, sizeof b2), axis);
            return LOOM_ERR_SHAPE;
        }
        if (loom_dim_is_dynamic(x->shape.d[axis])) {
            snprintf(msg, len, "operand %d is %s: the concat axis %d must be static", k + 1,
                     loom__shape_str(t->graph, &x->shape, b1, sizeof b1), axis);
            return LOOM_ERR_SHAPE;
        }
        if (loom__add_size(r.d[axis], x->shape.d[axis], &r.d[axis])) {
            snprintf(msg, len, "the sizes of axis %d sum to more than an int64 holds (operand %d is %s)", axis, k + 1,
                     loom__shape_str(t->graph, &x->shape, b1, sizeof b1));
            return LOOM_ERR_SHAPE;
        }
    }
    t->a.i[0] = axis;
    t->dtype = x0->dtype;
    t->layout = LOOM__DENSE;
    t->shape = r;
    return LOOM_OK;
}

/* Each source's gradient is its stretch of gout along the axis. */
static void concat_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    int axis = (int)t->a.i[0];
    int64_t at = 0;
    for (int k = 0; k < t->n_src; k++) {
        int64_t d = t->src[k]->shape.d[axis];
        if (needs_grad(t, k)) {
            loom__attrs a = {.i = {axis, at, at + d}};
            gsrc[k] = loom__node(g, "loom_concat (gradient)", LOOM_OP_SLICE, 1, &gout, &a);
        }
        at += d;
    }
}

/* Splits of the other axes pass through (every source split alike: their dims there are equal).
 * Splitting the concat axis itself would interleave the sources' parts. Linear: all P -> P. */
static int concat_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = 0;
    for (int i = 0; i < t->shape.ndim; i++) {
        int ok = i != t->a.i[0] && loom__sbp_can_split(&t->shape, i);
        loom_sbp in[LOOM__MAX_SRC];
        for (int k = 0; k < t->n_src && ok; k++) {
            ok = loom__sbp_can_split(&t->src[k]->shape, i);
            in[k] = loom_split(i);
        }
        if (ok)
            n = loom__sbp_add(sigs, n, max, t->n_src, in, loom_split(i));
    }
    return loom__sbp_add_partial(t, (UINT32_C(1) << t->n_src) - 1, loom_partial_sum(), sigs, n, max);
}

const loom_op_def loom__op_concat = {.name = "concat", .min_src = 1, .max_src = LOOM__MAX_SRC, .infer = concat_infer,
                                     .cpu = loom__cpu_concat, .grad = concat_grad,
                                     .diff_src = (UINT32_C(1) << LOOM__MAX_SRC) - 1, .sbp = concat_sbp};

loom_tensor *loom_concat(loom_graph *g, loom_tensor *const *xs, int n, int axis)
{
    if (!g)
        return NULL;
    if (!xs)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_concat: xs is NULL");
    if (n < 1 || n > LOOM__MAX_SRC)
        return loom__fail(g, LOOM_ERR_INVALID, "loom_concat: takes 1 to %d tensors, got n = %d", LOOM__MAX_SRC, n);
    loom__attrs a = {.i = {axis}};
    return loom__node(g, "loom_concat", LOOM_OP_CONCAT, n, xs, &a);
}

/* ---- slice, slice_grad ------------------------------------------------------------------------- */

/* Checks a slice's axis and range against x's shape and normalises the axis in a. */
static loom_status slice_check(const loom_tensor *t, const loom_shape *x, loom__attrs *a, char *msg, size_t len)
{
    int axis = loom__axis((int)a->i[0], x->ndim);
    char b[160];
    if (axis < 0) {
        snprintf(msg, len, "axis %d out of range for %s", (int)a->i[0], loom__shape_str(t->graph, x, b, sizeof b));
        return LOOM_ERR_SHAPE;
    }
    if (loom_dim_is_dynamic(x->d[axis])) {
        snprintf(msg, len, "axis %d of %s is dynamic; slices take a static axis", axis,
                 loom__shape_str(t->graph, x, b, sizeof b));
        return LOOM_ERR_SHAPE;
    }
    if (!(0 <= a->i[1] && a->i[1] <= a->i[2] && a->i[2] <= x->d[axis])) {
        snprintf(msg, len, "range [%" PRId64 ", %" PRId64 ") out of range for axis %d of %s"
                 " (need 0 <= start <= end <= %" PRId64 ")",
                 a->i[1], a->i[2], axis, loom__shape_str(t->graph, x, b, sizeof b), x->d[axis]);
        return LOOM_ERR_SHAPE;
    }
    a->i[0] = axis;
    return LOOM_OK;
}

static loom_status slice_infer(loom_tensor *t, char *msg, size_t len)
{
    loom_status s = dense_operand(t, 0, msg, len);
    if (s == LOOM_OK)
        s = slice_check(t, &t->src[0]->shape, &t->a, msg, len);
    if (s != LOOM_OK)
        return s;
    t->dtype = t->src[0]->dtype;
    t->layout = LOOM__DENSE;
    t->shape = t->src[0]->shape;
    t->shape.d[t->a.i[0]] = t->a.i[2] - t->a.i[1];
    return LOOM_OK;
}

static void slice_grad(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc)
{
    gsrc[0] = loom__node(g, "loom_slice (gradient)", LOOM_OP_SLICE_GRAD, 2, (loom_tensor *[]){gout, t->src[0]}, &t->a);
}

/* Splits of the axes not sliced pass through (slice_grad: of gout and x together); the sliced
 * axis is cut by absolute [start, end), which a part would not contain. Linear: P -> P for slice;
 * slice_grad reads only x's shape, so x may be B or P beside a P gout. */
static int slice_sbp(const loom_tensor *t, loom__sbp_sig *sigs, int max)
{
    int n = loom__sbp_add_broadcast_splits(t, LOOM__SBP_ALL_AXES & ~(UINT32_C(1) << t->a.i[0]), sigs, 0, max);
    n = loom__sbp_add_partial(t, 1, loom_partial_sum(), sigs, n, max);
    if (t->op == LOOM_OP_SLICE_GRAD)
        n = loom__sbp_add_partial(t, 3, loom_partial_sum(), sigs, n, max);
    return n;
}

const loom_op_def loom__op_slice = {.name = "slice", .min_src = 1, .max_src = 1, .infer = slice_infer,
                                    .cpu = loom__cpu_slice, .grad = slice_grad, .diff_src = 1, .sbp = slice_sbp};

loom_tensor *loom_slice(loom_graph *g, loom_tensor *x, int axis, int64_t start, int64_t end)
{
    loom__attrs a = {.i = {axis, start, end}};
    return loom__node(g, "loom_slice", LOOM_OP_SLICE, 1, &x, &a);
}

/* slice_grad(gout, x): gout must be x's shape with the axis cut to end - start. */
static loom_status slice_grad_infer(loom_tensor *t, char *msg, size_t len)
{
    const loom_tensor *gout = t->src[0], *x = t->src[1];
    loom_status s = dense_operand(t, 0, msg, len);
    if (s == LOOM_OK)
        s = dense_operand(t, 1, msg, len);
    if (s == LOOM_OK)
        s = slice_check(t, &x->shape, &t->a, msg, len);
    if (s != LOOM_OK)
        return s;
    loom_shape want = x->shape;
    want.d[t->a.i[0]] = t->a.i[2] - t->a.i[1];
    int ok = gout->shape.ndim == want.ndim && gout->dtype == x->dtype;
    for (int i = 0; ok && i < want.ndim; i++)
        ok = loom__dim_eq(gout->shape.d[i], want.d[i]);
    if (!ok) {
        char b1[160], b2[160];
        snprintf(msg, len, "gradient is %s %s, expected %s %s (internal error)", loom_dtype_name(gout->dtype),
                 loom__shape_str(t->graph, &gout->shape, b1, sizeof b1), loom_dtype_name(x->dtype),
                 loom__shape_str(t->graph, &want, b2, sizeof b2));
        return LOOM_ERR_SHAPE;
    }
    t->dtype = x->dtype;
    t->layout = LOOM__DENSE;
    t->shape = x->shape;
    return LOOM_OK;
}

/* No gradient of its own: second derivatives through slices are not supported. */
const loom_op_def loom__op_slice_grad = {.name = "slice_grad", .min_src = 2, .max_src = 2, .infer = slice_grad_infer,
                                         .cpu = loom__cpu_slice_grad, .sbp = slice_sbp};
