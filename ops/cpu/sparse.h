/* CPU kernels of the sparse ops (ops/sparse.c): CSR x dense products and CSR row degrees. */
#ifndef LOOM_OPS_CPU_SPARSE_H
#define LOOM_OPS_CPU_SPARSE_H

#include "graphs/core/op.h"

/* spmm(adj CSR [N, M], x [M, F...]) -> [N, F...]; with a.i[0] (transpose) x is [N, F...] and the
 * result adj^T x, [M, F...]. */
loom_status loom__cpu_spmm(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
/* degree(adj CSR [N, N']) -> [N]: (row sum + a.i[0]) ^ a.f[0], 0 where the degree is 0. */
loom_status loom__cpu_degree(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

#endif
