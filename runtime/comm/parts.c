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

void loom__part_region(const int64_t *shape, int ndim, loom_sbp s, int n, int d, int64_t *start, int64_t *size)
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

int loom__part_overlap(const int64_t *as, const int64_t *asz, const int64_t *bs, const int64_t *bsz, int nd, int64_t *ext,
                   int64_t *at_a, int64_t *at_b)
{
    int empty = 0;
    for (int i = 0; i < nd; i++) {
        int64_t lo = as[i] > bs[i] ? as[i] : bs[i], hi_a = as[i] + asz[i], hi_b = bs[i] + bsz[i];
        ext[i] = (hi_a < hi_b ? hi_a : hi_b) - lo;
        at_a[i] = lo - as[i];
        at_b[i] = lo - bs[i];
        empty |= ext[i] <= 0;
    }
    return !empty;
}

/* out[0..len) = the sum of the k <= 2 runs s[j] in device order from 0, in out's own type: the
 * same bits as in double rounded once (one or two float addends: their double sum rounded to float
 * is their float sum, as double has more than 2 * 24 + 2 bits), 0 + a turning -0 into +0 alike. */
static void sum_two(void *out, const void *const *s, int k, int f32, int64_t len)
{
    if (f32) {
        float *o = out;
        const float *a = s[0], *b = s[1];
        for (int64_t i = 0; i < len; i++)
            o[i] = k == 0 ? 0.0f : k == 1 ? 0.0f + a[i] : (0.0f + a[i]) + b[i];
    } else {
        double *o = out;
        const double *a = s[0], *b = s[1];
        for (int64_t i = 0; i < len; i++)
            o[i] = k == 0 ? 0.0 : k == 1 ? 0.0 + a[i] : (0.0 + a[i]) + b[i];
    }
}

/* The element of a tensor of `shape` (nd dims) where the run along the last dim of the box at `at`
 * starts whose other indices within the box are idx. */
static int64_t run_start(const int64_t *shape, const int64_t *at, const int64_t *idx, int nd)
{
    int64_t si = 0;
    for (int i = 0; i < nd; i++)
        si = si * shape[i] + at[i] + (i == nd - 1 ? 0 : idx[i]);
    return si;
}

/* out = the sum of the k boxes of extent out->shape, box j at offset at[j] of src[j] (whose shape is
 * shape[j]), in double, in the order of j, rounded once. Runs along the last dim, in blocks that
 * stay in cache, so the adds vectorise and no buffer of doubles the size of out is needed. */
static void sum_boxes(loom__value *out, const loom__value *const *src, const int64_t *const *shape, const int64_t *const *at, int k)
{
    enum { BLOCK = 512 };
    int nd = out->ndim, f32 = out->dtype == LOOM_F32;
    size_t es = f32 ? sizeof(float) : sizeof(double);
    if (loom__numel(out) <= 0)
        return;
    int64_t run = nd ? out->shape[nd - 1] : 1, idx[LOOM_MAX_DIMS] = {0}, e = 0;
    double acc[BLOCK];
    for (;;) {
        const void *two[2] = {0};
        for (int j = 0; j < k && k <= 2; j++)
            two[j] = (const char *)src[j]->data + (size_t)run_start(shape[j], at[j], idx, nd) * es;
        if (k <= 2)
            sum_two((char *)out->data + (size_t)e * es, two, k, f32, run);
        for (int64_t c = 0; c < run && k > 2; c += BLOCK) {
            int64_t len = run - c < BLOCK ? run - c : BLOCK;
            for (int64_t i = 0; i < len; i++)
                acc[i] = 0;
            for (int j = 0; j < k; j++) {
                const int64_t si = run_start(shape[j], at[j], idx, nd) + c;
                if (f32) {
                    const float *s = (const float *)src[j]->data + si;
                    for (int64_t i = 0; i < len; i++)
                        acc[i] += s[i];
                } else {
                    const double *s = (const double *)src[j]->data + si;
                    for (int64_t i = 0; i < len; i++)
                        acc[i] += s[i];
                }
            }
            if (f32) {
                float *o = (float *)out->data + e + c;
                for (int64_t i = 0; i < len; i++)
                    o[i] = (float)acc[i];
            } else {
                memcpy((double *)out->data + e + c, acc, (size_t)len * sizeof *acc);
            }
        }
        e += run;
        int i = nd - 2;
        for (; i >= 0; i--) {
            if (++idx[i] < out->shape[i])
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
    const int64_t *shapes[LOOM__MAX_DEVICES], *ats[LOOM__MAX_DEVICES];
    for (int j = 0; j < n; j++)
        shapes[j] = shape, ats[j] = at;
    sum_boxes(out, parts, shapes, ats, n);
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
    loom__part_region(x->shape, x->ndim, s, n, d, start, size);
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
    loom__part_region(shape, nd, to.kind == LOOM_SBP_PARTIAL_SUM ? loom_broadcast() : to, n_to, d, ostart, osize);
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
            int64_t jstart[LOOM_MAX_DIMS], jsize[LOOM_MAX_DIMS], ext[LOOM_MAX_DIMS], at_src[LOOM_MAX_DIMS], at_dst[LOOM_MAX_DIMS];
            split_region(parts, j, shape, nd, from.axis, jstart, jsize);
            loom__part_overlap(jstart, jsize, ostart, osize, nd, ext, at_src, at_dst);
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
    /* the whole value is device 0's part under (B, B) */
    const loom__lay from = {.s = *s, .mesh = {mesh[0], mesh[1]}, .n = mesh[0] * mesh[1]},
                    to = {.s = loom_nd_sbp_2d(loom_broadcast(), loom_broadcast()), .mesh = {mesh[0], mesh[1]}, .n = from.n};
    return loom__lay_convert(parts, &from, &to, 0, 0, x->shape, x);
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

void loom__nd_kernel_sig(const loom__sbp_sig *const sig[2], int nsrc, loom__sbp_sig *eff) { *eff = *sig[kernel_level(sig, nsrc)]; }

void loom__nd_part_offsets(const loom__sbp_sig *const sig[2], const loom__sbp_sig *eff, int nsrc,
                           const int64_t (*shapes)[LOOM_MAX_DIMS], const int *mesh, int d, loom__kctx *ctx)
{
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

/* ---- either: a layout ---------------------------------------------------------------------- */

void loom__lay_shape(const int64_t *shape, int ndim, const loom__lay *l, int d, int64_t *part)
{
    if (l->s.n > 1)
        loom__nd_part_shape(shape, ndim, &l->s, l->mesh, d, part);
    else
        loom__part_shape(shape, ndim, l->s.v[0], l->n, d, part);
}

int loom__lay_flat_axis(const loom__lay *l)
{
    if (l->s.n < 1)
        return -1;
    for (int i = 0; i < l->s.n; i++)
        if (l->s.v[i].kind != LOOM_SBP_SPLIT || l->s.v[i].axis != l->s.v[0].axis)
            return -1;
    return l->s.v[0].axis;
}

void loom__lay_cut(const loom__value *x, const loom__lay *l, int d, loom__value *out)
{
    if (l->s.n > 1)
        loom__nd_part_cut(x, &l->s, l->mesh, d, out);
    else
        loom__part_cut(x, l->s.v[0], l->n, d, out);
}

int loom__lay_join(const loom__value *const *parts, const loom__lay *l, loom__value *x)
{
    if (l->s.n > 1)
        return loom__nd_part_join(parts, &l->s, l->mesh, x);
    loom__part_join(parts, l->s.v[0], l->n, x);
    return 0;
}

/* 1 when a conversion from l reads device q: on each B level of l, the device at coordinate want. */
static int lay_reads(const loom__lay *l, int q, const int want[2])
{
    for (int k = 0; k < l->s.n; k++)
        if (l->s.v[k].kind == LOOM_SBP_BROADCAST && mesh_coord(&l->s, l->mesh, q, k) != want[k])
            return 0;
    return 1;
}

/* out (the box at ostart of the logical shape) = the sum of the parts of `from` a conversion reads
 * (lay_reads), when each of them covers all of it (an all-reduce's or a reduce-scatter's parts):
 * 1 when done, 0 when some part covers it only in part (the caller adds box by box), -1 out of
 * memory. */
static int sum_whole(const loom__value *const *parts, const loom__lay *from, const int want[2], const int64_t *shape,
                     const int64_t *ostart, loom__value *out)
{
    int nd = out->ndim, k = 0, whole = 1;
    const loom__value **src = malloc((size_t)from->n * sizeof *src);
    const int64_t **shapes = malloc((size_t)from->n * sizeof *shapes);
    int64_t(*at)[LOOM_MAX_DIMS] = malloc((size_t)from->n * sizeof *at);
    const int64_t **ats = malloc((size_t)from->n * sizeof *ats);
    if (!src || !shapes || !at || !ats) {
        free(src), free(shapes), free(at), free(ats);
        return -1;
    }
    int64_t osize[LOOM_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        osize[i] = out->shape[i];
    for (int q = 0; q < from->n && whole; q++) {
        int64_t qstart[LOOM_MAX_DIMS], qsize[LOOM_MAX_DIMS], ext[LOOM_MAX_DIMS], at_dst[LOOM_MAX_DIMS];
        if (!lay_reads(from, q, want))
            continue;
        loom__nd_region(shape, nd, &from->s, from->mesh, q, qstart, qsize);
        if (!loom__part_overlap(qstart, qsize, ostart, osize, nd, ext, at[k], at_dst))
            continue;
        for (int i = 0; i < nd; i++)
            whole &= ext[i] == osize[i] && at_dst[i] == 0;
        src[k] = parts[q], shapes[k] = parts[q]->shape, ats[k] = at[k];
        k++;
    }
    if (whole) /* with no part read (k = 0): zeros */
        sum_boxes(out, src, shapes, ats, k);
    free(src), free(shapes), free(at), free(ats);
    return whole;
}

int loom__lay_convert(const loom__value *const *parts, const loom__lay *from, const loom__lay *to, int d, int64_t first,
                      const int64_t *shape, loom__value *out)
{
    if (from->s.n == 1 && to->s.n == 1) {
        loom__part_convert(parts, from->s.v[0], from->n, to->s.v[0], to->n, d, first, shape, out);
        return 0;
    }
    int nd = out->ndim;
    size_t es = loom_dtype_size(out->dtype);
    if (!loom__nd_holds(&to->s, to->mesh, d, LOOM_SBP_PARTIAL_SUM)) {
        memset(out->data, 0, value_bytes(out));
        return 0;
    }
    int64_t ostart[LOOM_MAX_DIMS], osize[LOOM_MAX_DIMS];
    loom__nd_region(shape, nd, &to->s, to->mesh, d, ostart, osize);
    /* the sources read: on each B level of from, the device at d's coordinate when both lie on
     * one mesh (d's own group: the hierarchical route's reads), else coordinate 0 */
    int same = from->s.n == to->s.n && from->mesh[0] == to->mesh[0] && from->mesh[1] == to->mesh[1], partial = 0;
    int want[2] = {0, 0};
    for (int l = 0; l < from->s.n; l++) {
        partial |= from->s.v[l].kind == LOOM_SBP_PARTIAL_SUM;
        if (same)
            want[l] = mesh_coord(&from->s, from->mesh, d, l);
    }
    if (partial) {
        int whole = sum_whole(parts, from, want, shape, ostart, out);
        if (whole != 0)
            return whole < 0 ? -1 : 0;
    }
    int64_t m = loom__numel(out);
    double *acc = partial ? calloc((size_t)(m > 0 ? m : 1), sizeof *acc) : NULL;
    if (partial && !acc)
        return -1;
    for (int q = 0; q < from->n; q++) {
        int64_t qstart[LOOM_MAX_DIMS], qsize[LOOM_MAX_DIMS], ext[LOOM_MAX_DIMS], at_src[LOOM_MAX_DIMS], at_dst[LOOM_MAX_DIMS];
        if (!lay_reads(from, q, want))
            continue;
        loom__nd_region(shape, nd, &from->s, from->mesh, q, qstart, qsize);
        if (!loom__part_overlap(qstart, qsize, ostart, osize, nd, ext, at_src, at_dst))
            continue;
        if (!partial) {
            box_copy(out->data, out->shape, at_dst, parts[q]->data, parts[q]->shape, at_src, ext, nd, es);
            continue;
        }
        int64_t k = 1, idx[LOOM_MAX_DIMS] = {0};
        for (int i = 0; i < nd; i++)
            k *= ext[i];
        for (int64_t e = 0; e < k; e++) {
            int64_t si = 0, di = 0;
            for (int i = 0; i < nd; i++) {
                si = si * parts[q]->shape[i] + at_src[i] + idx[i];
                di = di * out->shape[i] + at_dst[i] + idx[i];
            }
            acc[di] += out->dtype == LOOM_F32 ? ((const float *)parts[q]->data)[si] : ((const double *)parts[q]->data)[si];
            for (int i = nd - 1; i >= 0; i--) {
                if (++idx[i] < ext[i])
                    break;
                idx[i] = 0;
            }
        }
    }
    for (int64_t e = 0; partial && e < m; e++)
        if (out->dtype == LOOM_F32)
            ((float *)out->data)[e] = (float)acc[e];
        else
            ((double *)out->data)[e] = acc[e];
    free(acc);
    return 0;
}

void loom__lay_csr_convert(const loom__value *const *parts, const loom__lay *from, const loom__lay *to, int d, loom__value *out)
{
    int same = from->s.n == to->s.n && from->mesh[0] == to->mesh[0] && from->mesh[1] == to->mesh[1];
    int want[2] = {0, 0};
    for (int l = 0; same && l < from->s.n; l++)
        want[l] = mesh_coord(&from->s, from->mesh, d, l);
    /* the rows each device of `from` holds: B levels at d's coordinates cover them once, in order */
    int64_t whole[2] = {0, parts[0]->shape[1]}, ostart[2], osize[2], rows = 0, nnz = 0;
    for (int q = 0; q < from->n; q++)
        whole[0] += lay_reads(from, q, want) ? parts[q]->shape[0] : 0;
    loom__nd_region(whole, 2, &to->s, to->mesh, d, ostart, osize);
    size_t vs = loom_dtype_size(parts[0]->dtype);
    out->rowptr[0] = 0;
    int64_t first = 0;
    for (int q = 0; q < from->n; q++) {
        if (!lay_reads(from, q, want))
            continue;
        const loom__value *x = parts[q];
        int64_t lo = ostart[0] > first ? ostart[0] : first, hi = ostart[0] + osize[0];
        if (first + x->shape[0] < hi)
            hi = first + x->shape[0];
        for (int64_t r = lo; r < hi; r++) {
            int32_t a = x->rowptr[r - first], b = x->rowptr[r - first + 1];
            if (b > a) {
                memcpy(out->col + nnz, x->col + a, (size_t)(b - a) * sizeof(int32_t));
                memcpy((char *)out->data + (size_t)nnz * vs, (const char *)x->data + (size_t)a * vs, (size_t)(b - a) * vs);
            }
            nnz += b - a;
            out->rowptr[++rows] = (int32_t)nnz;
        }
        first += x->shape[0];
    }
    out->dtype = parts[0]->dtype;
    out->ndim = 2;
    out->shape[0] = rows;
    out->shape[1] = whole[1];
    out->nnz = nnz;
}
