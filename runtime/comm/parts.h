/* Parts of a tensor on n devices under an SBP, on host memory (internal): cutting a logical value
 * into device parts, assembling it again, and converting parts under one SBP into parts under
 * another (the boxing of CPU devices). Used by the SBP reference executor, the CPU boxing tasks and
 * the parameters' transfers between the program and the devices.
 *
 * A part of S(i) is the device's range of axis i (loom_split_part); a part of B is the whole
 * value; the parts of P have the whole shape and sum to the value. Sums of P parts are taken in
 * double, in device order, and rounded once, everywhere: so every path from the same parts gives
 * the same bits. Values are dense and contiguous unless a function says CSR; dims of `shape` are
 * the logical (concrete) ones. */
#ifndef LOOM_RUNTIME_COMM_PARTS_H
#define LOOM_RUNTIME_COMM_PARTS_H

#include "graphs/core/op.h"

/* Devices of one process's placement: the actor id holds 7 bits of device index. */
#define LOOM__MAX_DEVICES (LOOM_MAX_DEVICE_INDEX + 1)

/* The shape of device d's part of a logical shape under s. */
void loom__part_shape(const int64_t *shape, int ndim, loom_sbp s, int n, int d, int64_t *part);
/* Device d's region of the logical shape under s on n devices: start and size per dim (a split's
 * range, or everything). */
void loom__part_region(const int64_t *shape, int ndim, loom_sbp s, int n, int d, int64_t *start, int64_t *size);

/* For each source of an op run as part d of n under sig, the first index of the part along the
 * source's split axis and that axis's whole size, into ctx (the kctx's offsets); shapes[i] is
 * source i's logical shape. */
void loom__part_offsets(const loom__sbp_sig *sig, int nsrc, const int64_t (*shapes)[LOOM_MAX_DIMS], int n, int d,
                        loom__kctx *ctx);

/* The overlap of box a (start as, size asz) and box b: its extent, and where it starts in each;
 * 0 when it is empty. */
int loom__part_overlap(const int64_t *as, const int64_t *asz, const int64_t *bs, const int64_t *bsz, int nd, int64_t *ext,
                       int64_t *at_a, int64_t *at_b);
/* Writes device d's part under s of logical dense x into out, whose data has room for the part
 * (its dtype, ndim and shape are set): S slices, B copies, P puts x on device 0 and zeros on the
 * others. */
void loom__part_cut(const loom__value *x, loom_sbp s, int n, int d, loom__value *out);
/* Assembles the logical value into x (allocated with the logical shape) from the n parts under s. */
void loom__part_join(const loom__value *const *parts, loom_sbp s, int n, loom__value *x);
/* Part d under `to` (on n_to devices) of the logical value whose n_from parts under `from` are
 * given (on the same devices, or on another placement: a move), written into out (room for the
 * part; dtype, ndim and shape are set, the shape being part d's): the same bits as cutting the
 * joined value, without making it. Under to = S(i), part d starts at `first` along axis i. Parts
 * under S lie one after another in their own sizes (so do those of join), which is where
 * loom_split_part puts them, and where a graph batch fed by parts has them. */
void loom__part_convert(const loom__value *const *parts, loom_sbp from, int n_from, loom_sbp to, int n_to, int d,
                        int64_t first, const int64_t *shape, loom__value *out);

/* ---- A 2-D mesh (rows mesh[0], columns mesh[1]; device d at row d / mesh[1], column d % mesh[1])
 * under an SBP per level: level 0 lays the tensor over the rows, level 1 lays each row's share over
 * its columns (a split of a split is nested: loom_split_part of the level-0 part). A 1-level s on
 * mesh[0] devices is the 1-D case. ---- */

/* Device d's region of the logical shape under s: start and size per dim. */
void loom__nd_region(const int64_t *shape, int ndim, const loom_nd_sbp *s, const int *mesh, int d, int64_t *start,
                     int64_t *size);
/* 1 when device d is at coordinate 0 of every level of s that is `kind`: under P the one device of
 * its group that a cut gives the value (the others zeros); under B the one a join reads. */
int loom__nd_holds(const loom_nd_sbp *s, const int *mesh, int d, loom_sbp_kind kind);
/* The shape of device d's part. */
void loom__nd_part_shape(const int64_t *shape, int ndim, const loom_nd_sbp *s, const int *mesh, int d, int64_t *part);
/* Device d's part of logical dense x into out (room for it; dtype, ndim and shape set). */
void loom__nd_part_cut(const loom__value *x, const loom_nd_sbp *s, const int *mesh, int d, loom__value *out);
/* The logical value into x (allocated with the logical shape) from every device's part: P addends
 * summed in double in device order and rounded once. 0, or -1 out of memory. */
int loom__nd_part_join(const loom__value *const *parts, const loom_nd_sbp *s, const int *mesh, loom__value *x);
/* The signature a kernel sees of an op run on a mesh under sig[0] on level 0 and sig[1] on level 1,
 * into eff: one level's, the level that splits source 0 (along the lower axis when both do), else
 * one that splits anything, else level 0. A source split on the other level only is then seen
 * whole, as a B of that signature: its part is a share of the work, not a share of what the
 * kernel indexes (a row-split table's indices). */
void loom__nd_kernel_sig(const loom__sbp_sig *const sig[2], int nsrc, loom__sbp_sig *eff);
/* loom__part_offsets on device d of a mesh: for each source eff splits, the offset of d's block
 * along that axis and the axis's whole size; ctx->sig = eff (which must outlive the kernel call). */
void loom__nd_part_offsets(const loom__sbp_sig *const sig[2], const loom__sbp_sig *eff, int nsrc,
                           const int64_t (*shapes)[LOOM_MAX_DIMS], const int *mesh, int d, loom__kctx *ctx);

/* ---- Either: how a tensor's parts lie, 1-D (s.n 1 on n devices) or on a mesh (s.n 2) ---- */
typedef struct loom__lay {
    loom_nd_sbp s;
    int mesh[2]; /* a 2-D mesh's rows and columns; {n, 1} when 1-D */
    int n;       /* devices */
} loom__lay;

void loom__lay_shape(const int64_t *shape, int ndim, const loom__lay *l, int d, int64_t *part);
/* The axis l splits on every level (S(a) when 1-D, (S(a), S(a)) on a mesh), else -1. Such a layout
 * lays its parts along the axis in device order (row-major on a mesh), so they may be any sizes
 * that add up: a graph batch's parts fed by parts (loom_feeder_parts), whose sizes come with the
 * piece, take the place of the even split. */
int loom__lay_flat_axis(const loom__lay *l);
void loom__lay_cut(const loom__value *x, const loom__lay *l, int d, loom__value *out);
/* 0, or -1 out of memory (a partial sum on a mesh whose parts each cover only a box of the
 * output adds in a buffer of doubles; one whose parts each cover all of it, in blocks). */
int loom__lay_join(const loom__value *const *parts, const loom__lay *l, loom__value *x);
/* Part d under `to` from the parts under `from` (loom__part_convert when both are 1-D). On a mesh
 * the task reads, of the parts that overlap its own, one device per B level of `from` (its own
 * group's when both lie on one mesh), and sums the P ones as loom__nd_part_join does, so it gives
 * the bits of cutting the joined value. 0, or -1 out of memory. */
int loom__lay_convert(const loom__value *const *parts, const loom__lay *from, const loom__lay *to, int d, int64_t first,
                      const int64_t *shape, loom__value *out);
/* The same for a CSR value (S(0) and B levels): out has room for part d's rows and every entry. */
void loom__lay_csr_convert(const loom__value *const *parts, const loom__lay *from, const loom__lay *to, int d, loom__value *out);

/* CSR (row splits only, S(0) or B): rows [start, start + size) of x into out, whose rowptr, col and
 * data have room (nnz and shape set here), rowptr rebased to 0. */
void loom__csr_rows(const loom__value *x, int64_t start, int64_t size, loom__value *out);
/* The n row parts of a CSR value joined into out (room as above). */
void loom__csr_join(const loom__value *const *parts, int n, loom__value *out);

#endif
