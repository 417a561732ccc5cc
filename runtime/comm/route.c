/* Routes of boxings between devices that hold only their own parts (see route.h). */
#include "runtime/comm/route.h"

#include <string.h>

const char *const loom__route_name[LOOM__ROUTE_KIND_COUNT] = {"none",           "local copy",   "all-reduce", "reduce-scatter",
                                                              "all-reduce and slice", "all-gather", "exchange"};

int64_t loom__route_count(const int64_t *ext, int nd)
{
    int64_t c = 1;
    for (int i = 0; i < nd; i++)
        c *= ext[i] > 0 ? ext[i] : 0;
    return c;
}

int loom__route_contiguous(const int64_t *shape, const int64_t *at, const int64_t *ext, int nd, int64_t *off)
{
    int64_t o = 0;
    for (int i = 0; i < nd; i++)
        o = o * shape[i] + at[i];
    *off = o;
    /* past the first dim with an extent over 1, every dim is whole */
    int i = 0;
    while (i < nd && ext[i] == 1)
        i++;
    for (i = i + 1; i < nd; i++)
        if (ext[i] != shape[i])
            return 0;
    return 1;
}

void loom__route_region(const int64_t *shape, int nd, loom_sbp s, int n, int q, int holds, int64_t *start, int64_t *size)
{
    if (holds) {
        loom__part_region(shape, nd, s, n, q, start, size);
        return;
    }
    for (int i = 0; i < nd; i++)
        start[i] = 0, size[i] = 0;
}

void loom__own_route_make(const int64_t *shape, int nd, loom_sbp from, loom_sbp to, int n, int d, loom__own_route *r)
{
    memset(r, 0, sizeof *r);
    r->nd = nd;
    loom__part_shape(shape, nd, from, n, d, r->in_shape);
    loom__part_shape(shape, nd, to, n, d, r->out_shape);
    const int64_t total = loom__route_count(shape, nd);
    if (total == 0)
        return; /* LOOM__ROUTE_NONE */
    if (n == 1 || loom_sbp_equal(from, to)) {
        /* the own part is already the output part (one device: the whole value; the same SBP: a
         * boxing on a mesh that changes only its level of one device), copied as it is */
        r->kind = LOOM__ROUTE_LOCAL;
        r->copy = 1;
        memcpy(r->local.ext, r->in_shape, (size_t)nd * sizeof *r->in_shape);
        return;
    }
    const int to_holds = to.kind != LOOM_SBP_PARTIAL_SUM || d == 0;
    int64_t ostart[LOOM_MAX_DIMS], osize[LOOM_MAX_DIMS];
    loom__route_region(shape, nd, to, n, d, to_holds, ostart, osize);
    r->zero = !to_holds;
    if (from.kind == LOOM_SBP_BROADCAST) { /* every device has the value: a slice, or device 0's copy */
        r->kind = LOOM__ROUTE_LOCAL;
        r->copy = to_holds;
        memcpy(r->local.at, ostart, sizeof ostart);
        memcpy(r->local.ext, osize, sizeof osize);
        return;
    }
    if (from.kind == LOOM_SBP_PARTIAL_SUM) {
        if (to.kind == LOOM_SBP_BROADCAST) {
            r->kind = LOOM__ROUTE_ALL_REDUCE;
        } else if (to.kind == LOOM_SBP_SPLIT && to.axis == 0 && shape[0] % n == 0) {
            r->kind = LOOM__ROUTE_REDUCE_SCATTER;
        } else { /* to S(a) unevenly or along another axis */
            r->kind = LOOM__ROUTE_REDUCE_SLICE;
            r->copy = 1;
            memcpy(r->local.at, ostart, sizeof ostart);
            memcpy(r->local.ext, osize, sizeof osize);
        }
        return;
    }
    /* from S(a) */
    if (to.kind == LOOM_SBP_BROADCAST && from.axis == 0 && shape[0] % n == 0) {
        r->kind = LOOM__ROUTE_ALL_GATHER;
        return;
    }
    r->kind = LOOM__ROUTE_EXCHANGE;
    int64_t istart[LOOM_MAX_DIMS], isize[LOOM_MAX_DIMS], ext[LOOM_MAX_DIMS], at_a[LOOM_MAX_DIMS], at_b[LOOM_MAX_DIMS];
    loom__route_region(shape, nd, from, n, d, 1, istart, isize);
    for (int q = 0; q < n; q++) {
        int64_t qs[LOOM_MAX_DIMS], qz[LOOM_MAX_DIMS];
        /* what d sends q: d's input within q's output region */
        loom__route_region(shape, nd, to, n, q, to.kind != LOOM_SBP_PARTIAL_SUM || q == 0, qs, qz);
        if (loom__part_overlap(istart, isize, qs, qz, nd, ext, at_a, at_b)) {
            if (q == d) {
                r->copy = 1;
                r->local.peer = d;
                memcpy(r->local.at, at_a, sizeof at_a);
                memcpy(r->local.ext, ext, sizeof ext);
                memcpy(r->local_to, at_b, sizeof at_b);
            } else {
                loom__route_box *b = &r->send[r->nsend++];
                b->peer = q;
                memcpy(b->at, at_a, sizeof at_a);
                memcpy(b->ext, ext, sizeof ext);
            }
        }
        /* what q sends d: q's input within d's output region */
        loom__route_region(shape, nd, from, n, q, 1, qs, qz);
        if (q != d && loom__part_overlap(qs, qz, ostart, osize, nd, ext, at_a, at_b)) {
            loom__route_box *b = &r->recv[r->nrecv++];
            b->peer = q;
            memcpy(b->at, at_b, sizeof at_b);
            memcpy(b->ext, ext, sizeof ext);
        }
    }
}
