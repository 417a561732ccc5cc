/* Strided walks over merged dims (internal), shared by the CPU kernels of the shape ops and the
 * reductions and by their CUDA kernels (which build runs on the host and pass them by value). */
#ifndef LOOM_OPS_RUNS_H
#define LOOM_OPS_RUNS_H

#include "graphs/core/op.h"

/* A walk over a dense output in row-major order, reading an operand through strides: runs of
 * merged dims, sizes n (outermost first) and element strides s into the operand (0 where the
 * operand is stretched). Size-1 dims are dropped and a dim is merged into the run before it
 * when the two walk as one (the outer stride is the inner stride times the inner size), so a
 * plain copy is a single run and [N, C] read as its transpose is two. */
typedef struct loom__runs {
    int nd;
    int64_t n[LOOM_MAX_DIMS], s[LOOM_MAX_DIMS];
} loom__runs;

/* Appends the next-inner dim (size n, stride s) to r. */
static inline void loom__runs_push(loom__runs *r, int64_t n, int64_t s)
{
    if (n == 1)
        return;
    if (r->nd > 0 && r->s[r->nd - 1] == s * n) {
        r->n[r->nd - 1] *= n;
        r->s[r->nd - 1] = s;
        return;
    }
    r->n[r->nd] = n;
    r->s[r->nd] = s;
    r->nd++;
}

/* Steps an odometer idx over r (last run fastest), keeping *off the operand offset of idx. */
static inline void loom__runs_next(const loom__runs *r, int64_t *idx, int64_t *off)
{
    for (int d = r->nd - 1; d >= 0; d--) {
        *off += r->s[d];
        if (++idx[d] < r->n[d])
            return;
        *off -= r->s[d] * r->n[d];
        idx[d] = 0;
    }
}

#endif
