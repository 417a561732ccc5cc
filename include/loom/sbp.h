/** @file
 * Placements (which devices hold a tensor) and SBP values (how a tensor is laid out on them).
 *
 *     loom_error err;
 *     loom_placement *p = loom_placement_parse("cuda:0-1", &err);    // NULL and err.msg on error
 *     loom_nd_sbp sbp;
 *     loom_nd_sbp_parse("S(0)", &sbp, &err);                       // or loom_nd_sbp_1d(loom_split(0))
 *     char buf[64];
 *     loom_placement_str(p, buf, sizeof buf);                        // "cuda:0-1"
 *     loom_placement_free(p);
 *
 * Syntax, canonical forms and every error message: docs/placement.md. */
#ifndef LOOM_SBP_H
#define LOOM_SBP_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Placements.
 *
 *   cpu:0-3          four logical CPU devices (worker threads) of this process; hierarchy [4]
 *   cpu:0-3[2,2]     the same four as a 2-D mesh of 2 rows and 2 columns; hierarchy [2, 2]
 *   cuda:0,2,5       three GPUs of this process; hierarchy [3]
 *   @0-1/cuda:0-3    ranks 0 and 1, GPUs 0-3 on each; hierarchy [2, 4]
 *
 * A placement has one device kind. Without "@" it is on rank 0 (the one process of a
 * single-process run) and its hierarchy is 1-D, or the 2-D mesh written after the list (device i
 * at row i / columns, column i % columns); with "@" its hierarchy is [ranks, devices per rank],
 * also when either is 1. Device and rank lists are strictly increasing; the position of a device
 * in the placement (rank-major) is the part of a split it holds. A tensor on a 2-D hierarchy has
 * an SBP per level (loom_nd_sbp, loom_tensor_set_nd_sbp).
 * ------------------------------------------------------------------------------------------- */
/** The kind of a placement's devices. */
typedef enum loom_device_kind {
    LOOM_DEVICE_CPU,       /**< logical CPU devices: worker threads, each with its own memory */
    LOOM_DEVICE_CUDA,      /**< CUDA GPUs */
    LOOM_DEVICE_KIND_COUNT /**< the number of kinds */
} loom_device_kind;

/** The largest device index: the actor id holds 7 bits of device index and 16 bits of rank. */
#define LOOM_MAX_DEVICE_INDEX 127
/** The largest rank (see LOOM_MAX_DEVICE_INDEX). */
#define LOOM_MAX_RANK 65535

/** A placement (opaque): devices of one kind, on one or more ranks. */
typedef struct loom_placement loom_placement;

/** Parses s (see docs/placement.md). Returns a new placement, or NULL with LOOM_ERR_INVALID and a
 * message that quotes s and gives the offset of the offending character. */
loom_placement *loom_placement_parse(const char *s, loom_error *err);
/** Makes a placement from lists: ndev strictly increasing device indices, and nranks strictly
 * increasing ranks, or ranks NULL (and nranks 0) for a placement without "@". NULL with
 * LOOM_ERR_INVALID on an empty, unordered or out-of-range list. */
loom_placement *loom_placement_new(loom_device_kind kind, int nranks, const int *ranks, int ndev, const int *devs,
                                   loom_error *err);
/** A copy of p seen as a 2-D mesh of rows x cols devices, as "cpu:0-3[2,2]" is "cpu:0-3" seen as
 * 2 x 2 (device i of p at row i / cols, column i % cols). NULL with LOOM_ERR_INVALID when rows x
 * cols is not p's device count or p has ranks (its hierarchy is [ranks, devices per rank]). */
loom_placement *loom_placement_mesh(const loom_placement *p, int rows, int cols, loom_error *err);
/** A copy of p (NULL on out of memory). */
loom_placement *loom_placement_copy(const loom_placement *p);
/** Stage `stage` of a pipeline of nstages over p's devices: p's device list cut into nstages
 * consecutive groups as loom_split_part cuts a dim (the first ndev % nstages one device larger;
 * a placement with "@" keeps its ranks, each cut alike), e.g. stage 1 of 2 on "cpu:0-3" is
 * "cpu:2-3". A new placement, or NULL with LOOM_ERR_INVALID for a NULL p, nstages < 1, a stage
 * outside 0 .. nstages - 1, or a stage that would have no devices (more stages than devices). */
loom_placement *loom_placement_stage(const loom_placement *p, int stage, int nstages, loom_error *err);
/** Frees the placement; safe on NULL. */
void loom_placement_free(loom_placement *p);

/** Writes the canonical form ("cuda:0-3", "cpu:0-1,3", "@0-1/cuda:0-3", "cpu:0-3[2,2]": runs of two
 * or more collapsed into ranges) into buf, truncated to len - 1 characters and always NUL-terminated when
 * len > 0. Returns the length of the whole form, as snprintf does. */
size_t loom_placement_str(const loom_placement *p, char *buf, size_t len);

/** The devices' kind; LOOM_DEVICE_KIND_COUNT on NULL (the accessors below give 0 or -1 on NULL). */
loom_device_kind loom_placement_kind(const loom_placement *p);
/** "cpu" or "cuda"; "?" for an invalid kind. */
const char *loom_device_kind_name(loom_device_kind k);
/** 1 when written with "@" (then the hierarchy is 2-D). */
int loom_placement_has_ranks(const loom_placement *p);
/** Number of devices in all: ranks x devices per rank. */
int loom_placement_ndevices(const loom_placement *p);
/** Number of ranks (1 for a placement without "@"). */
int loom_placement_nranks(const loom_placement *p);
/** Number of devices on each rank. */
int loom_placement_ndevices_per_rank(const loom_placement *p);
/** The r-th rank (0 for a placement without "@"); -1 when r is out of range. */
int loom_placement_rank(const loom_placement *p, int r);
/** The j-th device index of each rank; -1 when j is out of range. */
int loom_placement_local_index(const loom_placement *p, int j);
/** Writes the hierarchy into dims and returns its number of dims: 1 ([ndev]), or 2 ([nranks, ndev]
 * with ranks, [rows, columns] for a mesh). */
int loom_placement_hierarchy(const loom_placement *p, int dims[2]);
/** Device i of the placement, rank-major: its device index, and its rank in *rank (when not NULL);
 * -1 when i is out of range. */
int loom_placement_device(const loom_placement *p, int i, int *rank);
/** The position of device (rank, index) in the placement, or -1 when it is not there. */
int loom_placement_find(const loom_placement *p, int rank, int index);

/** 1 when a and b are the same placement (same kind, ranks, devices and hierarchy): "cpu:0-3",
 * "cpu:0-3[2,2]" and "@0/cpu:0-3" are not equal (hierarchies [4], [2, 2] and [1, 4]) but they
 * overlap. */
int loom_placement_equal(const loom_placement *a, const loom_placement *b);
/** 1 when a and b share at least one device (same kind, rank and index). */
int loom_placement_overlaps(const loom_placement *a, const loom_placement *b);

/** Checks that p fits the run: a rank below nranks (the processes of the run, 1 for a
 * single-process run) and, for CUDA, a device index below ncuda (loom_cuda_device_count()).
 * CPU devices are threads, so any index parse accepts is fine. LOOM_ERR_NOT_FOUND with a message
 * such as "placement 'cuda:0-3' needs 4 CUDA devices (up to cuda:3), this machine has 1". */
loom_status loom_placement_check(const loom_placement *p, int nranks, int ncuda, loom_error *err);

/* ---------------------------------------------------------------------------------------------
 * SBP values: S(i) split along axis i, B broadcast, P partial sum. A loom_sbp is a small value; a
 * zeroed one is LOOM_SBP_UNSET (no choice made: inference picks), never silently S(0).
 * Split axes count from 0; negative axes are rejected, not counted from the end.
 * ------------------------------------------------------------------------------------------- */
/** How a tensor lies on a placement's devices. */
typedef enum loom_sbp_kind {
    LOOM_SBP_UNSET,       /**< no choice made: inference picks */
    LOOM_SBP_SPLIT,       /**< S(axis): each device holds its part along axis */
    LOOM_SBP_BROADCAST,   /**< B: every device holds the whole tensor */
    LOOM_SBP_PARTIAL_SUM, /**< P: every device holds a tensor of the whole shape; the value is their sum */
    LOOM_SBP_KIND_COUNT   /**< the number of kinds */
} loom_sbp_kind;

/** An SBP value: a kind, and the axis of a split. */
typedef struct loom_sbp {
    loom_sbp_kind kind; /**< split, broadcast, partial sum or unset */
    int axis; /**< LOOM_SBP_SPLIT only; 0 otherwise */
} loom_sbp;

/** S(axis). This and the constructors below use plain initialisers rather than compound literals,
 * so that C++ can include this header. */
static inline loom_sbp loom_split(int axis)
{
    loom_sbp s = {LOOM_SBP_SPLIT, axis};
    return s;
}
/** B. */
static inline loom_sbp loom_broadcast(void)
{
    loom_sbp s = {LOOM_SBP_BROADCAST, 0};
    return s;
}
/** P. */
static inline loom_sbp loom_partial_sum(void)
{
    loom_sbp s = {LOOM_SBP_PARTIAL_SUM, 0};
    return s;
}

/** The most levels of a placement's hierarchy. */
#define LOOM_SBP_MAX_LEVELS 2
/** An SBP per level of a placement's hierarchy: n is 1 or 2 (0: unset). */
typedef struct loom_nd_sbp {
    int n;                           /**< the levels: 1 or 2, 0 when unset */
    loom_sbp v[LOOM_SBP_MAX_LEVELS]; /**< the SBP of each level, outermost first */
} loom_nd_sbp;

/** One level: a. */
static inline loom_nd_sbp loom_nd_sbp_1d(loom_sbp a)
{
    loom_nd_sbp s = {1, {a, {LOOM_SBP_UNSET, 0}}};
    return s;
}
/** Two levels: a over the ranks, b over each rank's devices. */
static inline loom_nd_sbp loom_nd_sbp_2d(loom_sbp a, loom_sbp b)
{
    loom_nd_sbp s = {2, {a, b}};
    return s;
}

/** Parses one value: "S(0)" (also "S0"), "B", "P", "P(sum)". LOOM_ERR_INVALID with a message that
 * quotes s and gives the offset of the offending character. */
loom_status loom_sbp_parse(const char *s, loom_sbp *out, loom_error *err);
/** Parses one value, or two in brackets: "(S(0), B)" or "[S(0), B]", with spaces allowed between
 * the tokens inside the brackets and nowhere else. */
loom_status loom_nd_sbp_parse(const char *s, loom_nd_sbp *out, loom_error *err);

/** Canonical forms: "S(0)", "B", "P"; "(S(0), B)" for two levels, the single value for one;
 * "unset" for an unset value (which does not parse). snprintf-style, like loom_placement_str. */
size_t loom_sbp_str(loom_sbp s, char *buf, size_t len);
/** The canonical form of every level (see loom_sbp_str). */
size_t loom_nd_sbp_str(const loom_nd_sbp *s, char *buf, size_t len);

/** 1 when a and b are the same value (a split's axis counts). */
int loom_sbp_equal(loom_sbp a, loom_sbp b);
/** 1 when a and b have the same levels, each equal. */
int loom_nd_sbp_equal(const loom_nd_sbp *a, const loom_nd_sbp *b);

/** Checks s for a tensor of ndim dims: "S(3) splits axis 3 of a 2-D tensor". An unset value is an
 * error here; a caller that allows "no choice" tests kind first. LOOM_ERR_INVALID. */
loom_status loom_sbp_check(loom_sbp s, int ndim, loom_error *err);
/** Checks every level, and that the number of levels is the placement's hierarchy's. */
loom_status loom_nd_sbp_check(const loom_nd_sbp *s, const loom_placement *p, int ndim, loom_error *err);

/* ---------------------------------------------------------------------------------------------
 * Split arithmetic shared by all SBP code: a static dim of size n split over k devices gives part
 * j the size n/k + (j < n%k), starting at j*(n/k) + min(j, n%k): the first n%k parts one larger.
 * LOOM_ERR_INVALID (outputs untouched) unless n >= 0, k >= 1 and 0 <= j < k.
 * ------------------------------------------------------------------------------------------- */
/** Part j of a static dim of size n split over k devices: *start and *size as above. */
loom_status loom_split_part(int64_t n, int k, int j, int64_t *start, int64_t *size);

#ifdef __cplusplus
}
#endif
#endif
