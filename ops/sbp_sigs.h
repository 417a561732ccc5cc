/* Helpers for the ops' SBP signature lists (loom_op_def.sbp, graphs/core/op.h): which axes may be split,
 * appending a signature, the partial-sum signatures of linear ops, and the splits of an
 * elementwise op under NumPy broadcasting, which most ops share.
 *
 * A signature is valid when the op's kernel, run on every device's local inputs (the parts of an
 * S, the whole of a B, the addends of a P), yields local outputs that represent the logical output
 * with the signature's output SBP. Kernels see no offsets, so a list holds only what is exact for
 * them as they are. tests/test_sbp_sig.c checks every listed signature numerically. */
#ifndef LOOM_OPS_SBP_SIGS_H
#define LOOM_OPS_SBP_SIGS_H

#include "graphs/core/op.h"

/* 1 when a tensor of shape s may be split along axis: the axis exists, and it is axis 0 or a
 * static dim. A dynamic dim is split by the source into whole graphs (not by loom_split_part), and
 * only a tensor's leading axis carries a batch that way. */
int loom__sbp_can_split(const loom_shape *s, int axis);

/* Appends in[0 .. nsrc - 1] -> out to sigs, which holds n of at most max; returns the new count
 * (n when full: a list is cut at max, as loom_op_def.sbp allows). */
int loom__sbp_add(loom__sbp_sig *sigs, int n, int max, int nsrc, const loom_sbp *in, loom_sbp out);

/* 1 when t may be a partial sum: a dense f32 or f64 tensor (parts are added in floating point;
 * integer and sparse values have no partial form). Lists may hold signatures with P elsewhere;
 * inference drops them (sbp/infer/infer.c). */
int loom__sbp_can_partial(const loom_tensor *t);

/* Appends the signature with P on the sources in pmask (bit i: source i), B on t's other sources,
 * and out: for an op linear in the P sources jointly, given the B ones (out P), or one that reads
 * only the shape of its P sources (out B). */
int loom__sbp_add_partial(const loom_tensor *t, uint32_t pmask, loom_sbp out, loom__sbp_sig *sigs, int n, int max);

/* Appends, for each axis i of t's output in axes (bit i) that may be split, the elementwise split
 * S(i) of the output: a dense source aligned from the right takes S(j) on its axis j that meets i
 * unstretched, and B where it lacks the axis or broadcasts a 1 along it. Valid for every op whose
 * output element depends only on the source elements broadcast to the same position. */
int loom__sbp_add_broadcast_splits(const loom_tensor *t, uint32_t axes, loom__sbp_sig *sigs, int n, int max);

#define LOOM__SBP_ALL_AXES ((UINT32_C(1) << LOOM_MAX_DIMS) - 1)

#endif
