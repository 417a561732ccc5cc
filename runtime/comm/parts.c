/* Parts of a tensor on n devices (see parts.h). */
#include "runtime/comm/parts.h"

#include <stdlib.h>
#include <string.h>

void loom__part_shape(const int64_t *shape, int ndim, loom_sbp s, int n, int d, int64_t *part)
{
    for (int i = 0; i < ndim; i++)
        part[i] = shape[i];
    if (s.kind == LOOM_SBP_SPLIT) {
        int64_t start;
        loom_split_part(shape[s.axis], n, d, &start, &part[s.axis]);
    }
}

/* Device d's region of the logical shape under s: start and size per dim. */
static void region(const int64_t *shape, int ndim, loom_sbp s, int n, int d, int64_t *start, int64_t *size)
{
    for (int i = 0; i < ndim; i++)
        start[i] = 0, size[i] = shape[i];
    if (s.kind == LOOM_SBP_SPLIT)
        loom_split_part(shape[s.axis], n, d, &start[s.axis], &size[s.axis]);
}

static size_t value_bytes(const loom__value *v) { return (size_t)loom__numel(v) * loom_dtype_size(v->dtype); }

/* Copies the box of extent ext at offset so of src (shape ss) to offset dof of dst (shape ds):
 * contiguous runs along the last dim, an odometer over the others. */
static void box_copy(char *dst, const int64_t *ds, const int64_t *dof, const char *src, const int64_t *ss, const int64_t *so,
                     const int64_t *ext, int ndim, size_t es)
{
    for (int i = 0; i < ndim; i++)
        if (ext[i] <= 0)
            return;
    if (ndim == 0) {
        memcpy(dst, src, es);
        return;
    }
    size_t run = (size_t)ext[ndim - 1] * es;
    int64_t idx[LOOM_MAX_DIMS] = {0};
    for (;;) {
        int64_t od = 0, os = 0;
        for (int i = 0; i < ndim; i++) {
            int64_t k = i == ndim - 1 ? 0 : idx[i];
            od = od * ds[i] + dof[i] + k;
            os = os * ss[i] + so[i] + k;
        }
        memcpy(dst + (size_t)od * es, src + (size_t)os * es, run);
        int i = ndim - 2;
        for (; i >= 0; i--) {
            if (++idx[i] < ext[i])
                break;
            idx[i] = 0;
        }
        if (i < 0)
            return;
    }
}

/* out (the box at offset `at` of the logical shape, extent out->shape) = the sum of the n parts,
 * each of the logical shape, in double and device order. */
static void box_sum(loom__value *out, const loom__value *const *parts, int n, const int64_t *shape, const int64_t *at)
{
    int nd = out->ndim;
    int64_t m = loom__numel(out), idx[LOOM_MAX_DIMS] = {0};
    for (int64_t e = 0; e < m; e++) {
        int64_t li = 0;
        for (int i = 0; i < nd; i++)
            li = li * shape[i] + at[i] + idx[i];
        double sum = 0;
        for (int j = 0; j < n; j++)
            sum += out->dtype == LOOM_F32 ? ((const float *)parts[j]->data)[li] : ((const double *)parts[j]->data)[li];
        if (out->dtype == LOOM_F32)
            ((float *)out->data)[e] = (float)sum;
        else
            ((double *)out->data)[e] = sum;
        for (int i = nd - 1; i >= 0; i--) {
            if (++idx[i] < out->shape[i])
                break;
            idx[i] = 0;
        }
    }
}

void loom__part_offsets(const loom__sbp_sig *sig, int nsrc, const int64_t (*shapes)[LOOM_MAX_DIMS], int n, int d,
                        loom__kctx *ctx)
{
    ctx->sig = sig;
    ctx->part = d;
    ctx->nparts = n;
    for (int i = 0; i < nsrc; i++) {
        ctx->first[i] = 0;
        ctx->whole[i] = 0;
        if (sig->in[i].kind == LOOM_SBP_SPLIT) {
            int64_t size;
            ctx->whole[i] = shapes[i][sig->in[i].axis];
            loom_split_part(ctx->whole[i], n, d, &ctx->first[i], &size);
        }
    }
}

void loom__part_cut(const loom__value *x, loom_sbp s, int n, int d, loom__value *out)
{
    int64_t start[LOOM_MAX_DIMS], size[LOOM_MAX_DIMS], zero[LOOM_MAX_DIMS] = {0};
    if (s.kind == LOOM_SBP_PARTIAL_SUM && d != 0) {
        memset(out->data, 0, value_bytes(out));
        return;
    }
    region(x->shape, x->ndim, s, n, d, start, size);
    box_copy(out->data, out->shape, zero, x->data, x->shape, start, size, x->ndim, loom_dtype_size(x->dtype));
}

/* Part j's region of the logical shape under S: its own extent along the split axis, after the
 * parts before it (an even split's parts are where loom_split_part puts them; a graph batch's
 * parts, fed unevenly, are where their sizes put them). */
static void split_region(const loom__value *const *parts, int j, const int64_t *shape, int ndim, int axis, int64_t *start,
                         int64_t *size)
{
    for (int i = 0; i < ndim; i++)
        start[i] = 0, size[i] = shape[i];
    for (int q = 0; q < j; q++)
        start[axis] += parts[q]->shape[axis];
    size[axis] = parts[j]->shape[axis];
}

void loom__part_join(const loom__value *const *parts, loom_sbp s, int n, loom__value *x)
{
    int64_t start[LOOM_MAX_DIMS], size[LOOM_MAX_DIMS], zero[LOOM_MAX_DIMS] = {0};
    if (s.kind == LOOM_SBP_PARTIAL_SUM) {
        box_sum(x, parts, n, x->shape, zero);
        return;
    }
    if (s.kind != LOOM_SBP_SPLIT) {
        memcpy(x->data, parts[0]->data, value_bytes(x));
        return;
    }
    for (int j = 0; j < n; j++) {
        split_region(parts, j, x->shape, x->ndim, s.axis, start, size);
        box_copy(x->data, x->shape, start, parts[j]->data, parts[j]->shape, zero, size, x->ndim, loom_dtype_size(x->dtype));
    }
}

void loom__part_convert(const loom__value *const *parts, loom_sbp from, int n_from, loom_sbp to, int n_to, int d,
                        int64_t first, const int64_t *shape, loom__value *out)
{
    int nd = out->ndim;
    size_t es = loom_dtype_size(out->dtype);
    int64_t ostart[LOOM_MAX_DIMS], osize[LOOM_MAX_DIMS], zero[LOOM_MAX_DIMS] = {0};
    if (to.kind == LOOM_SBP_PARTIAL_SUM && d != 0) {
        memset(out->data, 0, value_bytes(out));
        return;
    }
    /* to P on device 0 holds the whole value, like B */
    region(shape, nd, to.kind == LOOM_SBP_PARTIAL_SUM ? loom_broadcast() : to, n_to, d, ostart, osize);
    if (to.kind == LOOM_SBP_SPLIT) {
        ostart[to.axis] = first;
        osize[to.axis] = out->shape[to.axis];
    }
    if (from.kind == LOOM_SBP_PARTIAL_SUM) {
        box_sum(out, parts, n_from, shape, ostart);
    } else if (from.kind != LOOM_SBP_SPLIT) {
        /* every part is whole: this device's own when the placement is the same, else the first */
        box_copy(out->data, out->shape, zero, parts[n_from == n_to ? d : 0]->data, shape, ostart, osize, nd, es);
    } else {
        for (int j = 0; j < n_from; j++) { /* the intersection of part j's region with ours */
            int64_t jstart[LOOM_MAX_DIMS], jsize[LOOM_MAX_DIMS], lo[LOOM_MAX_DIMS], ext[LOOM_MAX_DIMS], at_src[LOOM_MAX_DIMS],
                at_dst[LOOM_MAX_DIMS];
            split_region(parts, j, shape, nd, from.axis, jstart, jsize);
            for (int i = 0; i < nd; i++) {
                lo[i] = jstart[i] > ostart[i] ? jstart[i] : ostart[i];
                int64_t hi_j = jstart[i] + jsize[i], hi_o = ostart[i] + osize[i];
                ext[i] = (hi_j < hi_o ? hi_j : hi_o) - lo[i];
                at_src[i] = lo[i] - jstart[i];
                at_dst[i] = lo[i] - ostart[i];
            }
            box_copy(out->data, out->shape, at_dst, parts[j]->data, parts[j]->shape, at_src, ext, nd, es);
        }
    }
}

void loom__csr_rows(const loom__value *x, int64_t start, int64_t size, loom__value *out)
{
    int32_t base = x->rowptr[start];
    int64_t nnz = x->rowptr[start + size] - base;
    size_t vs = loom_dtype_size(x->dtype);
    for (int64_t r = 0; r <= size; r++)
        out->rowptr[r] = x->rowptr[start + r] - base;
    if (nnz) {
        memcpy(out->col, x->col + base, (size_t)nnz * sizeof(int32_t));
        memcpy(out->data, (const char *)x->data + (size_t)base * vs, (size_t)nnz * vs);
    }
    out->dtype = x->dtype;
    out->ndim = 2;
    out->shape[0] = size;
    out->shape[1] = x->shape[1];
    out->nnz = nnz;
}

void loom__csr_join(const loom__value *const *parts, int n, loom__value *out)
{
    int64_t rows = 0, nnz = 0;
    size_t vs = loom_dtype_size(parts[0]->dtype);
    out->rowptr[0] = 0;
    for (int j = 0; j < n; j++) {
        const loom__value *q = parts[j];
        for (int64_t r = 1; r <= q->shape[0]; r++)
            out->rowptr[rows + r] = (int32_t)(nnz + q->rowptr[r]);
        if (q->nnz) {
            memcpy(out->col + nnz, q->col, (size_t)q->nnz * sizeof(int32_t));
            memcpy((char *)out->data + (size_t)nnz * vs, q->data, (size_t)q->nnz * vs);
        }
        rows += q->shape[0];
        nnz += q->nnz;
    }
    out->dtype = parts[0]->dtype;
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = parts[0]->shape[1];
    out->nnz = nnz;
}

/* ---- parts on a 2-D mesh ------------------------------------------------------------------- */

/* Device d's coordinate on level l of s (row-major on a 2-D mesh). */
static int mesh_coord(const loom_nd_sbp *s, const int *mesh, int d, int l)
{
    return s->n < 2 ? d : l == 0 ? d / mesh[1] : d % mesh[1];
}

void loom__nd_region(const int64_t *shape, int ndim, const loom_nd_sbp *s, const int *mesh, int d, int64_t *start,
                     int64_t *size)
{
    for (int i = 0; i < ndim; i++)
        start[i] = 0, size[i] = shape[i];
    for (int l = 0; l < s->n; l++)
        if (s->v[l].kind == LOOM_SBP_SPLIT) {
            int a = s->v[l].axis;
            int64_t sub;
            loom_split_part(size[a], mesh[l], mesh_coord(s, mesh, d, l), &sub, &size[a]);
            start[a] += sub;
        }
}

int loom__nd_holds(const loom_nd_sbp *s, const int *mesh, int d, loom_sbp_kind kind)
{
    for (int l = 0; l < s->n; l++)
        if (s->v[l].kind == kind && mesh_coord(s, mesh, d, l) != 0)
            return 0;
    return 1;
}

void loom__nd_part_shape(const int64_t *shape, int ndim, const loom_nd_sbp *s, const int *mesh, int d, int64_t *part)
{
    int64_t start[LOOM_MAX_DIMS];
    loom__nd_region(shape, ndim, s, mesh, d, start, part);
}

void loom__nd_part_cut(const loom__value *x, const loom_nd_sbp *s, const int *mesh, int d, loom__value *out)
{
    int64_t start[LOOM_MAX_DIMS], size[LOOM_MAX_DIMS], zero[LOOM_MAX_DIMS] = {0};
    if (!loom__nd_holds(s, mesh, d, LOOM_SBP_PARTIAL_SUM)) { /* P holds the value on coordinate 0 of its level */
        memset(out->data, 0, value_bytes(out));
        return;
    }
    loom__nd_region(x->shape, x->ndim, s, mesh, d, start, size);
    box_copy(out->data, out->shape, zero, x->data, x->shape, start, size, x->ndim, loom_dtype_size(x->dtype));
}

int loom__nd_part_join(const loom__value *const *parts, const loom_nd_sbp *s, const int *mesh, loom__value *x)
{
    int64_t start[LOOM_MAX_DIMS], size[LOOM_MAX_DIMS], zero[LOOM_MAX_DIMS] = {0};
    int n = s->n < 2 ? mesh[0] : mesh[0] * mesh[1], partial = 0;
    for (int l = 0; l < s->n; l++)
        partial |= s->v[l].kind == LOOM_SBP_PARTIAL_SUM;
    if (!partial) { /* each element once: from the devices at coordinate 0 of every B level */
        for (int d = 0; d < n; d++)
            if (loom__nd_holds(s, mesh, d, LOOM_SBP_BROADCAST)) {
                loom__nd_region(x->shape, x->ndim, s, mesh, d, start, size);
                box_copy(x->data, x->shape, start, parts[d]->data, parts[d]->shape, zero, size, x->ndim, loom_dtype_size(x->dtype));
            }
        return 0;
    }
    /* the addends summed in double, in device order, and rounded once */
    int64_t m = loom__numel(x);
    double *acc = calloc((size_t)(m > 0 ? m : 1), sizeof *acc);
    if (!acc)
        return -1;
    for (int d = 0; d < n; d++) {
        if (!loom__nd_holds(s, mesh, d, LOOM_SBP_BROADCAST))
            continue;
        loom__nd_region(x->shape, x->ndim, s, mesh, d, start, size);
        int64_t k = loom__numel(parts[d]), idx[LOOM_MAX_DIMS] = {0};
        for (int64_t e = 0; e < k; e++) {
            int64_t li = 0;
            for (int i = 0; i < x->ndim; i++)
                li = li * x->shape[i] + start[i] + idx[i];
            acc[li] += x->dtype == LOOM_F32 ? ((const float *)parts[d]->data)[e] : ((const double *)parts[d]->data)[e];
            for (int i = x->ndim - 1; i >= 0; i--) {
                if (++idx[i] < size[i])
                    break;
                idx[i] = 0;
            }
        }
    }
    for (int64_t e = 0; e < m; e++)
        if (x->dtype == LOOM_F32)
            ((float *)x->data)[e] = (float)acc[e];
        else
            ((double *)x->data)[e] = acc[e];
    free(acc);
    return 0;
}

/* The level whose signature a kernel sees: the one that splits source 0 (along the lower axis when
 * both do), else one that splits anything, else level 0. */
static int kernel_level(const loom__sbp_sig *const sig[2], int nsrc)
{
    int best = -1;
    for (int l = 0; l < 2; l++)
        if (nsrc > 0 && sig[l]->in[0].kind == LOOM_SBP_SPLIT && (best < 0 || sig[l]->in[0].axis < sig[best]->in[0].axis))
            best = l;
    for (int l = 0; l < 2 && best < 0; l++)
        for (int i = 0; i <= nsrc && best < 0; i++)
            if ((i < nsrc ? sig[l]->in[i] : sig[l]->out).kind == LOOM_SBP_SPLIT)
                best = l;
    return best < 0 ? 0 : best;
}

void loom__nd_part_offsets(const loom__sbp_sig *const sig[2], int nsrc, const int64_t (*shapes)[LOOM_MAX_DIMS], const int *mesh,
                           int d, loom__sbp_sig *eff, loom__kctx *ctx)
{
    *eff = *sig[kernel_level(sig, nsrc)];
    for (int i = 0; i < nsrc; i++) {
        ctx->first[i] = ctx->whole[i] = 0;
        if (eff->in[i].kind == LOOM_SBP_SPLIT) {
            loom_nd_sbp s = loom_nd_sbp_2d(sig[0]->in[i], sig[1]->in[i]);
            int64_t start[LOOM_MAX_DIMS], size[LOOM_MAX_DIMS];
            loom__nd_region(shapes[i], LOOM_MAX_DIMS, &s, mesh, d, start, size); /* dims past the rank are 0 */
            ctx->first[i] = start[eff->in[i].axis];
            ctx->whole[i] = shapes[i][eff->in[i].axis];
        }
    }
    ctx->sig = eff;
    ctx->part = d;
    ctx->nparts = mesh[0] * mesh[1];
}
