/* Every op's SBP signatures (loom_op_def.sbp), proven on numbers.
 *
 * For each op of the registry (leaves and in-place updates aside) a few small cases with f64 data
 * are built; the logical output comes from one program on the whole inputs. Then, on n = 2 and
 * n = 3 devices (3 makes uneven parts of the 5s and 7s on split axes), for every signature the op
 * lists and the implied all-B one: each input is laid out per its SBP on the host (S: the part
 * loom_split_part gives device d; B: the whole; P: random addends that sum to the value), each
 * device runs the same op with the same attributes on its local inputs in a graph of its own,
 * and the local outputs are put together per the output's SBP (S: the parts concatenated; B:
 * device 0's, after checking every device agrees; P: their sum) and compared with the logical
 * output to 1e-10. An op without a case fails: adding an op means adding its case (in
 * sbp_sig_cases.c).
 *
 * Cases with a dynamic dim N check the rule that only axis 0 of a dynamic dim splits; their local
 * graphs use static local sizes (a dynamic dim split by whole graphs is the source's business). */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbp_sig_cases.h"
#include "runtime/comm/parts.h"
#include "graphs/session/program.h"

static const double TOL = 1e-10;

/* ---- laying values out on devices ---------------------------------------------------------------- */

static int64_t part_size(int64_t n, int ndev, int d)
{
    int64_t start, size;
    ck_assert_int_eq(loom_split_part(n, ndev, d, &start, &size), LOOM_OK);
    return size;
}

static int64_t part_start(int64_t n, int ndev, int d)
{
    int64_t start, size;
    ck_assert_int_eq(loom_split_part(n, ndev, d, &start, &size), LOOM_OK);
    return start;
}

/* Copies [start, start + size) of axis between a [.., n, ..] and b [.., size, ..] (to_part: a -> b). */
static void copy_part(loom_array *a, loom_array *b, int axis, int64_t start, int to_part)
{
    size_t es = loom_dtype_size(a->dtype);
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= a->shape[i];
    for (int i = axis + 1; i < a->ndim; i++)
        inner *= a->shape[i];
    size_t row = (size_t)(a->shape[axis] * inner) * es, blk = (size_t)(b->shape[axis] * inner) * es;
    size_t first = (size_t)(start * inner) * es;
    for (int64_t o = 0; o < outer && blk; o++) {
        char *pa = (char *)a->data + (size_t)o * row + first, *pb = (char *)b->data + (size_t)o * blk;
        if (to_part)
            memcpy(pb, pa, blk);
        else
            memcpy(pa, pb, blk);
    }
}

/* Device d's local value of v under s on ndev devices. P: addends from a seeded normal, the last
 * device taking the rest, so they sum to v up to rounding. */
static val local_value(const val *v, loom_sbp s, int ndev, int d, uint64_t seed)
{
    val l = {.csr = v->csr};
    if (v->csr) {
        const loom_csr *m = &v->m;
        int64_t r0 = 0, nr = m->nrows;
        ck_assert_msg(s.kind == LOOM_SBP_BROADCAST || (s.kind == LOOM_SBP_SPLIT && s.axis == 0),
                      "a CSR source is S(0) or B");
        if (s.kind == LOOM_SBP_SPLIT) {
            r0 = part_start(m->nrows, ndev, d);
            nr = part_size(m->nrows, ndev, d);
        }
        int64_t k0 = m->rowptr[r0], nnz = m->rowptr[r0 + nr] - k0;
        l.m = (loom_csr){.nrows = nr, .ncols = m->ncols, .nnz = nnz, .vdtype = LOOM_F64};
        l.m.rowptr = malloc((size_t)(nr + 1) * sizeof *l.m.rowptr);
        l.m.col = malloc((size_t)nnz * sizeof *l.m.col + 1);
        l.m.val = malloc((size_t)nnz * sizeof(double) + 1);
        ck_assert(l.m.rowptr && l.m.col && l.m.val);
        for (int64_t i = 0; i <= nr; i++)
            l.m.rowptr[i] = (int32_t)(m->rowptr[r0 + i] - k0);
        if (nnz) {
            memcpy(l.m.col, m->col + k0, (size_t)nnz * sizeof *l.m.col);
            memcpy(l.m.val, (double *)m->val + k0, (size_t)nnz * sizeof(double));
        }
        return l;
    }
    const loom_array *a = &v->a;
    int64_t shape[LOOM_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    if (s.kind == LOOM_SBP_SPLIT)
        shape[s.axis] = part_size(a->shape[s.axis], ndev, d);
    ck_assert_int_eq(loom_array_alloc(&l.a, a->dtype, a->ndim, shape), LOOM_OK);
    int64_t n = loom_array_numel(&l.a);
    if (s.kind == LOOM_SBP_SPLIT) {
        copy_part((loom_array *)a, &l.a, s.axis, part_start(a->shape[s.axis], ndev, d), 1);
    } else if (s.kind == LOOM_SBP_BROADCAST) {
        memcpy(l.a.data, a->data, (size_t)n * loom_dtype_size(a->dtype));
    } else {
        ck_assert_msg(a->dtype == LOOM_F64, "P of a %s source: only float values have addends",
                      loom_dtype_name(a->dtype));
        double *x = l.a.data;
        if (d < ndev - 1) {
            lt_fill_normal(x, n, seed * 31 + (uint64_t)d);
        } else { /* the value less the other devices' addends */
            double *r = malloc((size_t)n * sizeof *r + 1);
            ck_assert_ptr_nonnull(r);
            memcpy(x, a->data, (size_t)n * sizeof *x);
            for (int e = 0; e < ndev - 1; e++) {
                lt_fill_normal(r, n, seed * 31 + (uint64_t)e);
                for (int64_t i = 0; i < n; i++)
                    x[i] -= r[i];
            }
            free(r);
        }
    }
    return l;
}

/* ---- running one graph --------------------------------------------------------------------------- */

/* Runs t (on g, from sources src fed with vals) with the reference executor in training mode.
 * Returns its value as doubles (its shape in *shape), or NULL with the reason in why. */
static double *eval_op(loom_graph *g, loom_tensor *t, int nsrc, loom_tensor *const *src, const val *vals,
                       const loom__kctx *part, loom_array *shape, char *why, size_t len)
{
    loom_program *p;
    loom_train_opts opts = {.executor = LOOM_EXEC_REFERENCE};
    if (loom_compile(g, NULL, &opts, &p) != LOOM_OK) {
        snprintf(why, len, "compile: %s", loom_graph_error(g));
        return NULL;
    }
    if (part)
        p->part = *part; /* the op's kernel runs as this part, as a multi-device plan runs it */
    double *out = NULL;
    loom_array r;
    loom_status s = LOOM_OK;
    for (int k = 0; k < nsrc && s == LOOM_OK; k++)
        s = vals[k].csr ? loom_program_feed_csr(p, src[k], &vals[k].m) : loom_program_feed(p, src[k], &vals[k].a);
    if (s == LOOM_OK)
        s = loom_program_keep(p, t);
    if (s == LOOM_OK)
        s = loom_program_run(p, LOOM_RUN_FORWARD);
    if (s == LOOM_OK)
        s = loom_program_fetch(p, t, &r);
    if (s != LOOM_OK) {
        snprintf(why, len, "running the op failed: %s", loom_program_error(p));
    } else {
        int64_t n = loom_array_numel(&r);
        out = malloc((size_t)n * sizeof *out + 1);
        ck_assert_ptr_nonnull(out);
        for (int64_t i = 0; i < n; i++)
            out[i] = r.dtype == LOOM_F64 ? ((double *)r.data)[i]
                     : r.dtype == LOOM_U8 ? ((uint8_t *)r.data)[i]
                     : r.dtype == LOOM_I32 ? ((int32_t *)r.data)[i]
                                           : NAN;
        *shape = (loom_array){.dtype = LOOM_F64, .ndim = r.ndim};
        memcpy(shape->shape, r.shape, sizeof r.shape);
    }
    loom_program_free(p);
    return out;
}

/* ---- checking signatures ------------------------------------------------------------------------- */

static int sbp_ok(loom_sbp s, const loom_shape *shape)
{
    switch (s.kind) {
    case LOOM_SBP_SPLIT:
        return s.axis >= 0 && s.axis < shape->ndim && (s.axis == 0 || !loom_dim_is_dynamic(shape->d[s.axis]));
    case LOOM_SBP_BROADCAST:
    case LOOM_SBP_PARTIAL_SUM: return 1;
    default: return 0;
    }
}

/* The rules every listed signature keeps, whatever the numbers: SBPs that exist for their tensor
 * (a split axis in range; dynamic dims only on axis 0), CSR sources S(0) or B, no P of indices or
 * masks, no duplicate, and not the implied all-B one. */
static void check_sig_rules(const op_case *c, const loom_tensor *t, const loom__sbp_sig *sigs, int nsig)
{
    char b[160];
    for (int s = 0; s < nsig; s++) {
        const loom__sbp_sig *g = &sigs[s];
        int all_b = g->out.kind == LOOM_SBP_BROADCAST;
        case_sig_str(g, t->n_src, b, sizeof b);
        for (int k = 0; k < t->n_src; k++) {
            const loom_tensor *x = t->src[k];
            all_b &= g->in[k].kind == LOOM_SBP_BROADCAST;
            ck_assert_msg(sbp_ok(g->in[k], &x->shape), "%s: %s: source %d's SBP does not fit its shape", c->label, b,
                          k);
            ck_assert_msg(x->layout != LOOM__CSR || g->in[k].kind == LOOM_SBP_BROADCAST ||
                              (g->in[k].kind == LOOM_SBP_SPLIT && g->in[k].axis == 0),
                          "%s: %s: a CSR source is S(0) or B", c->label, b);
            ck_assert_msg(g->in[k].kind != LOOM_SBP_PARTIAL_SUM || loom_dtype_is_float(x->dtype),
                          "%s: %s: source %d is %s, which has no partial sums", c->label, b, k,
                          loom_dtype_name(x->dtype));
        }
        ck_assert_msg(sbp_ok(g->out, &t->shape), "%s: %s: the output's SBP does not fit its shape", c->label, b);
        ck_assert_msg(!all_b, "%s: lists the implied all-B signature", c->label);
        for (int o = 0; o < s; o++)
            ck_assert_msg(memcmp(&sigs[o], g, sizeof *g), "%s: %s listed twice", c->label, b);
    }
}

/* Device d's output under sig on ndev devices, or NULL with the reason in why. */
static double *run_device(const op_case *c, const loom_tensor *t, const loom__sbp_sig *sig, int ndev, int d,
                          const loom_array *wshape, loom_array *lshape, char *why, size_t len)
{
    val local[LOOM__MAX_SRC];
    for (int k = 0; k < c->n_src; k++)
        local[k] = local_value(&c->src[k].v, sig->in[k], ndev, d, 7919 * (uint64_t)(k + 1) + (uint64_t)ndev);
    /* Attributes that are sizes become the local ones, as the plan makes them: reshape's target is
     * the output's shape. A dynamic dim is its concrete size here. */
    loom__attrs a = t->a;
    if (c->op == LOOM_OP_RESHAPE) {
        for (int i = 0; i < wshape->ndim; i++)
            a.shape.d[i] = wshape->shape[i];
        if (sig->out.kind == LOOM_SBP_SPLIT)
            a.shape.d[sig->out.axis] = part_size(wshape->shape[sig->out.axis], ndev, d);
    }
    loom_graph *g;
    loom_tensor *src[LOOM__MAX_SRC];
    loom_tensor *lt = case_build(c, local, &a, 0, &g, src, why, len);
    int64_t shapes[LOOM__MAX_SRC][LOOM_MAX_DIMS] = {{0}};
    for (int k = 0; k < c->n_src; k++)
        for (int i = 0; i < LOOM_MAX_DIMS; i++)
            shapes[k][i] = c->src[k].v.csr ? (i == 0 ? c->src[k].v.m.nrows : c->src[k].v.m.ncols) : c->src[k].v.a.shape[i];
    loom__kctx part = {0};
    loom__part_offsets(sig, c->n_src, (const int64_t(*)[LOOM_MAX_DIMS])shapes, ndev, d, &part);
    double *y = lt ? eval_op(g, lt, c->n_src, src, local, &part, lshape, why, len) : NULL;
    loom_graph_free(g);
    for (int k = 0; k < c->n_src; k++)
        val_free(&local[k]);
    return y;
}

/* Runs the case per sig on ndev devices and compares the assembled output with want: 1 when the
 * signature holds, else 0 with the reason in why. */
static int check_sig(const op_case *c, const loom_tensor *t, const loom__sbp_sig *sig, int ndev, const double *want,
                     const loom_array *wshape, char *why, size_t len)
{
    const int64_t nw = loom_array_numel(wshape);
    double *got = calloc((size_t)nw + 1, sizeof *got), *dev0 = NULL;
    ck_assert_ptr_nonnull(got);
    int ok = 1;
    for (int d = 0; d < ndev && ok; d++) {
        loom_array lshape;
        double *y = run_device(c, t, sig, ndev, d, wshape, &lshape, why, len);
        if (!y) {
            ok = 0;
            break;
        }
        /* The local output must have the shape the output's SBP gives device d. */
        loom_array expect = *wshape;
        if (sig->out.kind == LOOM_SBP_SPLIT)
            expect.shape[sig->out.axis] = part_size(wshape->shape[sig->out.axis], ndev, d);
        ok = lshape.ndim == expect.ndim;
        for (int i = 0; ok && i < expect.ndim; i++)
            ok = lshape.shape[i] == expect.shape[i];
        if (!ok)
            snprintf(why, len, "device %d's output has the wrong shape", d);
        const int64_t nl = loom_array_numel(&lshape);
        if (ok && sig->out.kind == LOOM_SBP_SPLIT) {
            loom_array full = *wshape, part = lshape;
            full.data = got;
            part.data = y;
            copy_part(&full, &part, sig->out.axis, part_start(wshape->shape[sig->out.axis], ndev, d), 0);
        } else if (ok && sig->out.kind == LOOM_SBP_BROADCAST && !dev0) {
            memcpy(got, y, (size_t)nl * sizeof *got);
            dev0 = y;
            y = NULL;
        } else if (ok && sig->out.kind == LOOM_SBP_BROADCAST) {
            for (int64_t i = 0; i < nl && ok; i++)
                if (!(y[i] == dev0[i] || (isnan(y[i]) && isnan(dev0[i])))) {
                    snprintf(why, len, "device %d differs from device 0 at %" PRId64 " (%.17g, %.17g)", d, i, y[i],
                             dev0[i]);
                    ok = 0;
                }
        } else if (ok && sig->out.kind == LOOM_SBP_PARTIAL_SUM) {
            for (int64_t i = 0; i < nl; i++)
                got[i] += y[i];
        } else if (ok) {
            snprintf(why, len, "the output's SBP is unset");
            ok = 0;
        }
        free(y);
    }
    for (int64_t i = 0; i < nw && ok; i++)
        if (!(fabs(got[i] - want[i]) <= TOL * fmax(1, fabs(want[i])) || (isnan(got[i]) && isnan(want[i])))) {
            snprintf(why, len, "element %" PRId64 " is %.17g, the logical output %.17g", i, got[i], want[i]);
            ok = 0;
        }
    free(got);
    free(dev0);
    return ok;
}

/* The case's tensor (on *g) and its logical output (shape in *wshape). */
static loom_tensor *logical(const op_case *c, loom_graph **g, double **want, loom_array *wshape)
{
    val vals[LOOM__MAX_SRC];
    for (int k = 0; k < c->n_src; k++)
        vals[k] = c->src[k].v;
    char why[600];
    loom_tensor *src[LOOM__MAX_SRC];
    loom_tensor *t = case_build(c, vals, &c->a, 1, g, src, why, sizeof why);
    ck_assert_msg(t, "%s: %s", c->label, why);
    *want = eval_op(*g, t, c->n_src, src, vals, NULL, wshape, why, sizeof why);
    ck_assert_msg(*want, "%s: %s", c->label, why);
    return t;
}

static void run_case(const op_case *c)
{
    loom_graph *g;
    double *want;
    loom_array wshape;
    loom_tensor *t = logical(c, &g, &want, &wshape);
    const loom_op_def *def = loom__op_def(c->op);
    loom__sbp_sig sigs[LOOM__MAX_SIGS + 1];
    int nsig = def->sbp ? def->sbp(t, sigs, LOOM__MAX_SIGS) : 0;
    check_sig_rules(c, t, sigs, nsig);
    char b[160], why[600];
    /* the table of what each case lists is docs/sbp.md (tests/sbp_doc.c) */
    sigs[nsig] = (loom__sbp_sig){.out = loom_broadcast()}; /* the implied all-B signature */
    for (int k = 0; k < LOOM__MAX_SRC; k++)
        sigs[nsig].in[k] = loom_broadcast();
    for (int ndev = 2; ndev <= 3; ndev++)
        for (int s = 0; s <= nsig; s++)
            ck_assert_msg(check_sig(c, t, &sigs[s], ndev, want, &wshape, why, sizeof why), "%s on %d devices, %s: %s",
                          c->label, ndev, case_sig_str(&sigs[s], t->n_src, b, sizeof b), why);
    loom_graph_free(g);
    free(want);
}

/* One test per op of the registry (a loop test: the op is _i). */
START_TEST(test_op_signatures)
{
    const loom_op op = (loom_op)_i;
    const loom_op_def *def = loom__op_def(op);
    ck_assert_ptr_nonnull(def);
    op_case cs[MAX_CASES];
    int nc = make_cases(op, cs);
    if (def->flags & (LOOM__OPF_LEAF | LOOM__OPF_INPLACE) || op == LOOM_OP_MOVE) {
        /* a move takes any SBP on its destination (sbp/infer/infer.c; every pair in tests/test_parts.c) */
        ck_assert_msg(!def->sbp, "%s holds, updates or moves values; it has no signature list", def->name);
        return;
    }
    ck_assert_msg(nc > 0, "op %s has no case in tests/sbp_sig_cases.c: every op needs one", def->name);
    for (int i = 0; i < nc; i++) {
        run_case(&cs[i]);
        for (int k = 0; k < cs[i].n_src; k++)
            val_free(&cs[i].src[k].v);
    }
}
END_TEST

/* Signatures that are wrong for the kernels as they are, each with why: the checker must reject
 * every one on 2 or 3 devices, or it proves nothing. None of them may be listed. */
static const struct {
    loom_op op;
    const char *label, *sig;
} wrong[] = {
    {LOOM_OP_ADD, "add [5, 7] [5, 7]", "(P, B) -> P"},             /* b counted once per device */
    {LOOM_OP_BIAS_ADD, "bias_add [5, 7] [7]", "(P, B) -> P"},      /* the same */
    {LOOM_OP_MUL, "mul [5, 7] [5, 7]", "(P, P) -> P"},             /* a sum of products of parts */
    {LOOM_OP_DIV, "div [5, 7] [5, 7]", "(B, P) -> P"},             /* not linear in b */
    {LOOM_OP_RELU, "relu [5, 7]", "(P) -> P"},                     /* nonlinear */
    {LOOM_OP_FILL, "fill [5, 7]", "(P) -> P"},                     /* the constant n times */
    {LOOM_OP_LOG_SOFTMAX, "log_softmax [5, 7]", "(S(1)) -> S(1)"}, /* normalised per part */
    {LOOM_OP_MEAN, "mean [5, 7] axes 0x1 keepdims 0", "(S(0)) -> P"},  /* local means of uneven parts */
    {LOOM_OP_DROPOUT_MASK, "dropout_mask [5, 7]", "(S(1)) -> S(1)"},   /* offsets along axis 1 are not taken */
    {LOOM_OP_SOFTMAX_CE, "softmax_cross_entropy [7, 5] masked", "(S(0), S(0), S(0)) -> P"}, /* local counts */
    {LOOM_OP_SOFTMAX_CE_GRAD, "softmax_cross_entropy_grad [7, 5] masked", "(S(0), S(0), S(0), B) -> S(0)"},
    {LOOM_OP_GATHER_ROWS, "gather_rows [5, 4] at [7]", "(B, S(0)) -> P"}, /* every device gathers it all */
    {LOOM_OP_SCATTER, "scatter mode 1 [7, 4] to 5 rows", "(S(0), S(0)) -> P"}, /* mean: local counts */
    {LOOM_OP_SCATTER, "scatter mode 2 [7, 4] to 5 rows", "(P, B) -> P"},       /* max is not linear */
    {LOOM_OP_SCATTER_GRAD, "scatter_grad mode 1 [7, 4] from 5 rows", "(S(0), S(0), B, B) -> S(0)"},
    {LOOM_OP_EXPAND, "expand [1, 7] to [5, 7] scaled", "(B, S(0)) -> S(0)"}, /* scaled by local sizes */
    {LOOM_OP_RESHAPE, "reshape [5, 7] to [35]", "(S(0)) -> S(0)"},   /* 35 splits 12/12/11, not 14/14/7 */
    {LOOM_OP_CONCAT, "concat [5, 2] [5, 3] [5, 4] axis 1", "(S(1), S(1), S(1)) -> S(1)"},
    {LOOM_OP_SLICE, "slice [5, 7] axis 1 [2, 6)", "(S(1)) -> S(1)"}, /* start and end are absolute */
    {LOOM_OP_SPMM, "spmm [7, 5] x [5, 4]", "(S(0), S(0)) -> P"},     /* shapes do not even meet */
    /* a sum of products of parts */
    {LOOM_OP_CONV2D, "conv2d [N, 7, 5, 4] * [5, 7, 2, 3], stride 2x1, pad 0x1, dilation 1x2", "(P, P) -> P"},
    {LOOM_OP_CONV2D, "conv2d [5, 7, 4, 4] * [5, 7, 3, 3], pad 1 + b", "(P, B, B) -> P"}, /* b once per device */
    /* with groups, a device's filters are not the first of their groups */
    {LOOM_OP_CONV2D_GRAD_WEIGHT, "conv2d_grad_weight [7, 6, 4, 4] * [4, 3, 3, 3], pad 1, groups 2", "(B, S(1)) -> S(0)"},
    {LOOM_OP_MAX_POOL2D, "max_pool2d [5, 7, 5, 4] kernel 3x2 stride 2x1 pad 1x0", "(P) -> P"}, /* max is not linear */
    {LOOM_OP_BN_STATS, "batch_norm_stats [7, 5]", "(P) -> P"},                   /* the squares */
    {LOOM_OP_BATCH_NORM, "batch_norm [7, 5]", "(S(0), P, B, B, B, B) -> S(0)"},   /* a part's statistics */
    {LOOM_OP_LAYER_NORM, "layer_norm [5, 7, 3] axes 2", "(S(1), S(0), S(0)) -> S(1)"}, /* normalised per part */
    {LOOM_OP_SOFTMAX, "softmax [5, 7] axis 1", "(S(1)) -> S(1)"},                    /* normalised per part */
    {LOOM_OP_SOFTMAX, "softmax [5, 7] axis 0", "(S(0)) -> S(0)"},                    /* the same along axis 0 */
    {LOOM_OP_MAXIMUM, "maximum [5, 7] [5, 7]", "(P, P) -> P"},                       /* not linear */
    {LOOM_OP_WHERE, "where [5, 7] [5, 7] [5, 7]", "(B, P, B) -> P"},                 /* b counted once per device */
    {LOOM_OP_MINMAX_GRAD, "minmax_grad mode 0 [5, 7] [5, 7]", "(P, B, B) -> P"},     /* the shares of parts */
    /* a segment's rows split over devices: each normalises its own rows of it */
    {LOOM_OP_SEGMENT_SOFTMAX, "segment_softmax [7, 4] into 5 segments", "(S(0), S(0)) -> S(0)"},
    {LOOM_OP_ARGMAX, "argmax [5, 7] axis 1", "(S(1)) -> P"},                         /* local indices of parts */
};

/* "(S(0), B) -> P" into a signature (unnamed sources B). */
static loom__sbp_sig parse_sig(const char *str)
{
    loom__sbp_sig sig = {.out = loom_broadcast()};
    for (int k = 0; k < LOOM__MAX_SRC; k++)
        sig.in[k] = loom_broadcast();
    char buf[160];
    snprintf(buf, sizeof buf, "%s", str);
    char *arrow = strstr(buf, ") -> ");
    ck_assert_msg(buf[0] == '(' && arrow, "bad signature text '%s'", str);
    *arrow = 0;
    ck_assert_int_eq(loom_sbp_parse(arrow + 5, &sig.out, NULL), LOOM_OK);
    int k = 0;
    for (char *tok = buf + 1, *next; tok; tok = next, k++) {
        next = strstr(tok, ", ");
        if (next) {
            *next = 0;
            next += 2;
        }
        ck_assert_int_lt(k, LOOM__MAX_SRC);
        ck_assert_msg(loom_sbp_parse(tok, &sig.in[k], NULL) == LOOM_OK, "bad SBP '%s' in '%s'", tok, str);
    }
    return sig;
}

START_TEST(test_wrong_signatures_fail)
{
    for (size_t w = 0; w < sizeof wrong / sizeof wrong[0]; w++) {
        op_case cs[MAX_CASES];
        int nc = make_cases(wrong[w].op, cs), found = 0;
        for (int i = 0; i < nc; i++) {
            if (!strcmp(cs[i].label, wrong[w].label)) {
                loom_graph *g;
                double *want;
                loom_array wshape;
                loom_tensor *t = logical(&cs[i], &g, &want, &wshape);
                loom__sbp_sig sig = parse_sig(wrong[w].sig), listed[LOOM__MAX_SIGS];
                const loom_op_def *def = loom__op_def(wrong[w].op);
                int nl = def->sbp ? def->sbp(t, listed, LOOM__MAX_SIGS) : 0;
                for (int s = 0; s < nl; s++)
                    ck_assert_msg(memcmp(&listed[s], &sig, sizeof sig), "%s lists the wrong %s", cs[i].label,
                                  wrong[w].sig);
                char why[600];
                int holds = check_sig(&cs[i], t, &sig, 2, want, &wshape, why, sizeof why) &&
                            check_sig(&cs[i], t, &sig, 3, want, &wshape, why, sizeof why);
                ck_assert_msg(!holds, "%s: the wrong %s passed the check", cs[i].label, wrong[w].sig);
                loom_graph_free(g);
                free(want);
                found = 1;
            }
            for (int k = 0; k < cs[i].n_src; k++)
                val_free(&cs[i].src[k].v);
        }
        ck_assert_msg(found, "no case '%s'", wrong[w].label);
    }
}
END_TEST

/* The dynamic-dim rule by name, on the weight-gradient matmul of data parallelism and on a
 * transpose that would move a split of N off axis 0. */
START_TEST(test_dynamic_rule)
{
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 100);
    loom_tensor *x = loom_input(g, "x", LOOM_F64, loom_shape(N, 5));
    loom_tensor *gy = loom_input(g, "gy", LOOM_F64, loom_shape(N, 4));
    loom_tensor *w = loom_matmul_ex(g, x, gy, 1, 0);
    loom_tensor *xt = loom_transpose(g, x, NULL);
    loom__sbp_sig sigs[LOOM__MAX_SIGS];
    int n = loom__op_def(LOOM_OP_MATMUL)->sbp(w, sigs, LOOM__MAX_SIGS), found = 0;
    for (int i = 0; i < n; i++)
        found |= loom_sbp_equal(sigs[i].in[0], loom_split(0)) && loom_sbp_equal(sigs[i].in[1], loom_split(0)) &&
                 sigs[i].out.kind == LOOM_SBP_PARTIAL_SUM;
    ck_assert_msg(found, "X^T G over a split batch must give a partial weight gradient");
    n = loom__op_def(LOOM_OP_TRANSPOSE)->sbp(xt, sigs, LOOM__MAX_SIGS);
    for (int i = 0; i < n; i++)
        ck_assert_msg(!(sigs[i].out.kind == LOOM_SBP_SPLIT && sigs[i].out.axis == 1),
                      "[N, 5]^T may not split N on axis 1");
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sbp_sig");
    TCase *tc = tcase_create("ops");
    tcase_add_loop_test(tc, test_op_signatures, 0, LOOM_OP_COUNT);
    tcase_add_test(tc, test_dynamic_rule);
    tcase_add_test(tc, test_wrong_signatures_fail);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
