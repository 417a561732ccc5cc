/* The reference executor of an SBP plan: the logical graph in id order, every op run once per
 * device on that device's local values, every boxing done on the host by assembling the logical
 * value and handing each device its part. It is slow and plain on purpose: it is the oracle for
 * the placement-equivalence property (a step's result never depends on the placement), against
 * which multi-device runtimes are checked. Every value is also assembled into the program, so
 * everything stays fetchable as with the one-device reference executor. */
#include <stdlib.h>
#include <string.h>

#include "runtime/comm/parts.h"
#include "graphs/session/program.h"

typedef struct dev_values {
    loom__value *v; /* [n] local values, NULL until computed */
} dev_values;

static int value_alloc(loom__value *v, loom_dtype dt, int ndim, const int64_t *shape)
{
    *v = (loom__value){.dtype = dt, .ndim = ndim};
    size_t n = loom_dtype_size(dt);
    for (int i = 0; i < ndim; i++)
        n *= (size_t)(v->shape[i] = shape[i]);
    v->data = calloc(n ? n : 1, 1);
    return v->data ? 0 : -1;
}

static void value_free(loom__value *v)
{
    free(v->data);
    free(v->rowptr);
    free(v->col);
    *v = (loom__value){0};
}

static loom__lay layout_of(const loom__sbp_plan *pl, int id, loom_nd_sbp s)
{
    loom__lay l = {.s = s, .mesh = {pl->nparts[id], 1}, .n = pl->nparts[id]};
    if (loom__sbp_plan_2d(pl, id))
        memcpy(l.mesh, pl->mesh[id], sizeof l.mesh);
    return l;
}

/* Device d's part of a logical dense value. */
static int to_local(const loom__value *x, const loom__lay *l, int d, loom__value *out)
{
    int64_t shape[LOOM_MAX_DIMS];
    loom__lay_shape(x->shape, x->ndim, l, d, shape);
    if (value_alloc(out, x->dtype, x->ndim, shape))
        return -1;
    loom__lay_cut(x, l, d, out);
    return 0;
}

/* Device d's rows of a logical CSR value (S(0) or B on each level). */
static int to_local_csr(const loom__value *x, const loom__lay *l, int d, loom__value *out)
{
    int64_t start[2], size[2];
    loom__nd_region(x->shape, 2, &l->s, l->mesh, d, start, size);
    int64_t nnz = x->rowptr[start[0] + size[0]] - x->rowptr[start[0]];
    size_t vs = loom_dtype_size(x->dtype);
    *out = (loom__value){.dtype = x->dtype};
    out->rowptr = malloc((size_t)(size[0] + 1) * sizeof(int32_t));
    out->col = malloc((size_t)nnz * sizeof(int32_t) + 1);
    out->data = malloc((size_t)nnz * vs + 1);
    if (!out->rowptr || !out->col || !out->data)
        return -1;
    loom__csr_rows(x, start[0], size[0], out);
    return 0;
}

static int to_local_any(const loom_tensor *t, const loom__value *x, const loom__lay *l, int d, loom__value *out)
{
    return (t->layout == LOOM__CSR ? to_local_csr : to_local)(x, l, d, out);
}

/* The logical value of the local parts, into x (allocated for the logical shape); 0, or -1 out of
 * memory. */
static int to_logical(const loom__value *parts, const loom__lay *l, loom__value *x)
{
    const loom__value *pp[LOOM__MAX_DEVICES];
    for (int d = 0; d < l->n; d++)
        pp[d] = &parts[d];
    return loom__lay_join(pp, l, x);
}

static int concrete_shape(loom_program *p, const loom_tensor *t, int64_t *shape)
{
    for (int i = 0; i < t->shape.ndim; i++) {
        int k = loom__dyn_index(p->g, t->shape.d[i]);
        shape[i] = k >= 0 ? p->dims[k] : t->shape.d[i];
        if (shape[i] < 0)
            return k;
    }
    return -1;
}

loom_status loom__sbp_reference_run(loom_program *p, int end, int training)
{
    loom_graph *g = p->g;
    const loom__sbp_plan *pl = &p->sbp;
    int n = p->ndevices;
    loom_status s = loom__bind_dims(p, p->fwd_end);
    if (s != LOOM_OK)
        return s;
    for (int id = 0; id < end; id++)
        if (!(loom__op_def(g->t[id]->op)->flags & LOOM__OPF_LEAF))
            p->ready[id] = 0;
    dev_values *dv = calloc((size_t)end + 1, sizeof *dv);
    loom__value *scratch = calloc((size_t)n * (LOOM__MAX_SRC + 1), sizeof *scratch);
    char msg[512];
    loom__sbp_sig eff; /* what kernels see of a 2-D signature */
    loom__kctx ctx = {.step = p->step, .training = training, .seed = g->seed, .msg = msg, .msglen = sizeof msg, .pool = p->pool};
    if (!dv || !scratch) {
        s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
        goto out;
    }
    /* leaves: each device's part of the fed data, parameters and state */
    for (int id = 0; id < end && s == LOOM_OK; id++) {
        loom_tensor *t = g->t[id];
        if (!(loom__op_def(t->op)->flags & LOOM__OPF_LEAF))
            continue;
        if (!(dv[id].v = calloc((size_t)n, sizeof *dv[id].v)))
            s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
        const loom__lay l = layout_of(pl, id, loom__sbp_plan_nd(pl, id));
        for (int d = 0; d < l.n && s == LOOM_OK; d++)
            if (to_local_any(t, &p->val[id], &l, d, &dv[id].v[d]))
                s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
    }
    for (int id = 0; id < end && s == LOOM_OK; id++) {
        loom_tensor *t = g->t[id];
        const loom_op_def *def = loom__op_def(t->op);
        if ((def->flags & LOOM__OPF_LEAF) || p->dead[id])
            continue;
        int64_t shape[LOOM_MAX_DIMS] = {0};
        int unbound = concrete_shape(p, t, shape);
        if (unbound >= 0) {
            s = loom__program_fail(p, LOOM_ERR_SHAPE, "loom_program_run: %s '%s' needs dynamic dim %s, which no fed input carries",
                                   def->name, loom_tensor_name(t), g->dyn[unbound].name);
            break;
        }
        const int nt = pl->nparts[id]; /* the op's placement; its sources are there too, but a move's */
        const loom__lay ol = layout_of(pl, id, loom__sbp_plan_nd(pl, id));
        if (t->op == LOOM_OP_MOVE) { /* the logical value, cut for the destination's devices */
            if (!(dv[id].v = calloc((size_t)n, sizeof *dv[id].v)))
                s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
            for (int d = 0; d < nt && s == LOOM_OK; d++)
                if (to_local(&p->val[t->src[0]->id], &ol, d, &dv[id].v[d]))
                    s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
            if (s == LOOM_OK && loom__value_reserve(p, id, t->dtype, t->shape.ndim, shape) != LOOM_OK)
                s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
            if (s == LOOM_OK) {
                memcpy(p->val[id].data, p->val[t->src[0]->id].data,
                       (size_t)loom__numel(&p->val[id]) * loom_dtype_size(t->dtype));
                p->ready[id] = 1;
            }
            continue;
        }
        int64_t src_shapes[LOOM__MAX_SRC][LOOM_MAX_DIMS] = {{0}};
        for (int i = 0; i < t->n_src; i++)
            memcpy(src_shapes[i], p->val[t->src[i]->id].shape, sizeof src_shapes[i]);
        /* boxing: each source as this op's signature wants it, on every device */
        for (int i = 0; i < t->n_src && s == LOOM_OK; i++) {
            const loom_tensor *src = t->src[i];
            loom_nd_sbp have = loom__sbp_plan_nd(pl, src->id);
            const loom__lay want = layout_of(pl, src->id, loom__sbp_plan_want(pl, t, i));
            loom__value *out = &scratch[(size_t)i * n];
            for (int d = 0; d < n; d++)
                value_free(&out[d]);
            if (loom_nd_sbp_equal(&have, &want.s)) {
                for (int d = 0; d < nt; d++)
                    out[d] = dv[src->id].v[d]; /* borrowed, not freed below */
                continue;
            }
            const loom__value *logical = &p->val[src->id];
            for (int d = 0; d < nt && s == LOOM_OK; d++)
                if (to_local_any(src, logical, &want, d, &out[d]))
                    s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
        }
        if (s != LOOM_OK)
            break;
        if (!(dv[id].v = calloc((size_t)n, sizeof *dv[id].v))) {
            s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
            break;
        }
        for (int d = 0; d < nt && s == LOOM_OK; d++) {
            loom__value *src[LOOM__MAX_SRC];
            for (int i = 0; i < t->n_src; i++)
                src[i] = &scratch[(size_t)i * n + d];
            loom__value none = {.dtype = t->dtype}, *out = &none;
            if (!(def->flags & LOOM__OPF_INPLACE)) {
                int64_t local[LOOM_MAX_DIMS], start[LOOM_MAX_DIMS];
                loom__nd_region(shape, t->shape.ndim, &ol.s, ol.mesh, d, start, local);
                if (value_alloc(&dv[id].v[d], t->dtype, t->shape.ndim, local)) {
                    s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
                    break;
                }
                out = &dv[id].v[d];
            }
            msg[0] = 0;
            if (ol.s.n > 1) {
                const loom__sbp_sig *pair[2] = {&pl->sig[id], &pl->sig1[id]};
                loom__nd_kernel_sig(pair, t->n_src, &eff);
                loom__nd_part_offsets(pair, &eff, t->n_src, (const int64_t(*)[LOOM_MAX_DIMS])src_shapes, ol.mesh, d, &ctx);
            } else
                loom__part_offsets(&pl->sig[id], t->n_src, (const int64_t(*)[LOOM_MAX_DIMS])src_shapes, nt, d, &ctx);
            s = def->cpu(t, out, src, &ctx);
            if (s != LOOM_OK)
                s = loom__program_fail(p, s, "loom_program_run: %s '%s' (tensor %d) on device %d: %s", def->name,
                                       loom_tensor_name(t), id, d, msg[0] ? msg : loom_status_str(s));
            else if (p->check_numerics &&
                 (s = loom__check_numerics(&p->passes, t, out == &none ? src[0] : out, msg, sizeof msg)) != LOOM_OK)
                s = loom__program_fail(p, s, "loom_program_run: %s, on device %d", msg, d);
        }
        /* borrowed sources are not the scratch's to free */
        for (int i = 0; i < t->n_src; i++) {
            loom_nd_sbp have = loom__sbp_plan_nd(pl, t->src[i]->id), want = loom__sbp_plan_want(pl, t, i);
            if (loom_nd_sbp_equal(&have, &want))
                memset(&scratch[(size_t)i * n], 0, (size_t)n * sizeof *scratch);
        }
        if (s != LOOM_OK || (def->flags & LOOM__OPF_INPLACE))
            continue;
        /* the logical value, for consumers that box it and for fetching */
        if (loom__value_reserve(p, id, t->dtype, t->shape.ndim, shape) != LOOM_OK) {
            s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
            break;
        }
        if (to_logical(dv[id].v, &ol, &p->val[id])) {
            s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
            break;
        }
        p->ready[id] = 1;
    }
    /* parameters and optimizer state were updated in their parts: make them whole again */
    for (int id = 0; id < end && s == LOOM_OK; id++) {
        loom_tensor *t = g->t[id];
        if ((t->op == LOOM_OP_PARAM || t->op == LOOM_OP_STATE) && dv[id].v) {
            const loom__lay l = layout_of(pl, id, loom__sbp_plan_nd(pl, id));
            if (to_logical(dv[id].v, &l, &p->val[id]))
                s = loom__program_fail(p, LOOM_ERR_NOMEM, "loom_program_run: out of memory");
        }
    }
out:
    for (int i = 0; scratch && i < n * (LOOM__MAX_SRC + 1); i++)
        value_free(&scratch[i]);
    free(scratch);
    for (int id = 0; dv && id < end; id++) {
        for (int d = 0; dv[id].v && d < n; d++)
            value_free(&dv[id].v[d]);
        free(dv[id].v);
    }
    free(dv);
    return s;
}
