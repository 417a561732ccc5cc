/** @file
 * Core types: status codes, dtypes, dimensions and shapes, host arrays and CSR matrices.
 *
 * Names: an enumerator is LOOM_<its type's short name>_<value> (LOOM_ACT_RELU of
 * loom_activation, LOOM_OPT_ADAM, LOOM_MATMUL_TF32, LOOM_EXEC_, LOOM_RUN_, LOOM_SBP_, LOOM_DEVICE_,
 * LOOM_INIT_), with a count after the last (LOOM_ACT_COUNT); the two a user writes most, dtypes
 * (LOOM_F32) and statuses (LOOM_OK, LOOM_ERR_<what>), drop the type's name; a struct's defaults
 * are LOOM_<STRUCT>_INIT. */
#ifndef LOOM_CORE_H
#define LOOM_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Status codes. Every call that can fail returns one; the message lives on the object that
 * failed (loom_graph_error, loom_program_error) or in a caller's loom_error.
 * ------------------------------------------------------------------------------------------- */
/** The status codes as X(name, code, text) entries, for tables indexed by status. */
#define LOOM_STATUS_LIST(X)                                                   \
    X(OK, 0, "ok")                                                            \
    X(ERR_INVALID, -1, "invalid argument")                                    \
    X(ERR_SHAPE, -2, "shape mismatch")                                        \
    X(ERR_DTYPE, -3, "dtype mismatch")                                        \
    X(ERR_NOMEM, -4, "out of memory")                                         \
    X(ERR_IO, -5, "input/output error")                                       \
    X(ERR_FORMAT, -6, "malformed data")                                       \
    X(ERR_NOT_FOUND, -7, "not found")                                         \
    X(ERR_UNSUPPORTED, -8, "unsupported")                                     \
    X(ERR_GRAPH, -9, "invalid graph")                                         \
    X(ERR_RUNTIME, -10, "runtime failure")

/** What a call returned: LOOM_OK (0), or a negative LOOM_ERR_<what> (LOOM_STATUS_LIST). */
typedef enum loom_status {
#define LOOM__STATUS_ENUM(name, code, text) LOOM_##name = code,
    LOOM_STATUS_LIST(LOOM__STATUS_ENUM)
#undef LOOM__STATUS_ENUM
} loom_status;

/** Short English text of a status ("shape mismatch"); never NULL. */
const char *loom_status_str(loom_status s);

/** A caller-owned error record for calls that have no object of their own to keep a message on
 * (file readers, parsers). Every such call accepts NULL when the caller needs only the status. */
typedef struct loom_error {
    loom_status status; /**< the call's status */
    char msg[512];      /**< what went wrong, "" when nothing did */
} loom_error;

/** An empty record to pass to such a call: loom_error e = LOOM_ERROR_INIT; */
#define LOOM_ERROR_INIT ((loom_error){.status = LOOM_OK, .msg = ""})

/** Fills err (when not NULL) with s and a printf-style message, and returns s: the one way code
 * reports through a loom_error. */
loom_status loom_error_set(loom_error *err, loom_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------------------------------------
 * Element types.
 * ------------------------------------------------------------------------------------------- */
/** The element type of a tensor or array. */
typedef enum loom_dtype {
    LOOM_F32,        /**< 32-bit float */
    LOOM_F64,        /**< 64-bit float */
    LOOM_I32,        /**< 32-bit signed integer (labels, indices) */
    LOOM_I64,        /**< 64-bit signed integer */
    LOOM_U8,         /**< byte (masks, pixels) */
    LOOM_DTYPE_COUNT /**< the number of dtypes */
} loom_dtype;

/** Bytes per element; 0 for an invalid dtype. */
size_t loom_dtype_size(loom_dtype t);
/** "f32", "f64", "i32", "i64", "u8"; "?" for an invalid dtype. */
const char *loom_dtype_name(loom_dtype t);
/** 1 for f32 and f64. */
int loom_dtype_is_float(loom_dtype t);

/* ---------------------------------------------------------------------------------------------
 * Dimensions and shapes.
 *
 * A loom_dim is a plain integer for a static size (0, 1, 2708 ...), or a handle made by
 * loom_dim_dynamic() for a named dynamic dimension with an upper bound (N nodes of a batch).
 * Memory is planned for the bound; the real size arrives with the data at run time.
 * ------------------------------------------------------------------------------------------- */
/** A dimension: a static size, or a dynamic dimension's handle (loom_dim_dynamic). */
typedef int64_t loom_dim;

/** The most dimensions a tensor has. */
#define LOOM_MAX_DIMS 6
/** A dynamic dim handle is LOOM__DYN_BASE + (graph tag << LOOM__DYN_INDEX_BITS) + index: negative,
 * so never a size, and carrying its graph's tag, so that a handle of one graph used in another is
 * refused instead of taken as that graph's dim of the same index. */
#define LOOM__DYN_BASE (-(INT64_C(1) << 62))
#define LOOM__DYN_INDEX_BITS 20
#define LOOM__DYN_TAG_BITS 40

/** 1 when d is a dynamic dimension handle (of some graph). */
static inline int loom_dim_is_dynamic(loom_dim d)
{
    return d >= LOOM__DYN_BASE && d < LOOM__DYN_BASE + (INT64_C(1) << (LOOM__DYN_INDEX_BITS + LOOM__DYN_TAG_BITS));
}

/** A tensor's shape: ndim dimensions, static sizes or dynamic handles. */
typedef struct loom_shape {
    int ndim;                  /**< the rank, 0 (a scalar) .. LOOM_MAX_DIMS */
    loom_dim d[LOOM_MAX_DIMS]; /**< the dimensions, outermost first */
} loom_shape;

loom_shape loom__shape_n(int n, const loom_dim *d);
/** loom_shape(N, 128) makes a shape from up to LOOM_MAX_DIMS dims; loom_shape() is a scalar. C11:
 * the dims follow a leading 0 in a compound literal, so none is allowed; sizeof counts them
 * without evaluating them (each is evaluated once), and more than LOOM_MAX_DIMS overflow the
 * second literal, which the compiler refuses. */
#define loom_shape(...)                                                                      \
    loom__shape_n((int)(sizeof((const loom_dim[]){0, __VA_ARGS__}) / sizeof(loom_dim)) - 1, \
                  (const loom_dim[LOOM_MAX_DIMS + 1]){0, __VA_ARGS__} + 1)

/* ---------------------------------------------------------------------------------------------
 * Host arrays: a dense, contiguous, row-major block of elements. Arrays filled by Loom own their
 * data (free with loom_array_free); an array a caller fills may point at any memory it keeps
 * alive for the call it is passed to.
 * ------------------------------------------------------------------------------------------- */
/** A host array: dtype, shape and a row-major block of elements. */
typedef struct loom_array {
    loom_dtype dtype;             /**< the element type */
    int ndim;                     /**< the rank, 0 .. LOOM_MAX_DIMS */
    int64_t shape[LOOM_MAX_DIMS]; /**< the sizes, outermost first */
    void *data;                   /**< the elements, row-major */
} loom_array;

/** A cleared array (no data), what loom_array_free leaves: loom_array a = LOOM_ARRAY_INIT; */
#define LOOM_ARRAY_INIT ((loom_array){.dtype = LOOM_F32, .ndim = 0, .shape = {0}, .data = NULL})

/** Number of elements (1 for a scalar); -1 when the rank is outside 0 .. LOOM_MAX_DIMS, a dim is
 * negative or the count is over an int64 (the dims are read only once the rank is checked). */
int64_t loom_array_numel(const loom_array *a);
/** Allocates zeroed data for the given dtype and shape; LOOM_ERR_NOMEM or LOOM_ERR_INVALID. */
loom_status loom_array_alloc(loom_array *a, loom_dtype dtype, int ndim, const int64_t *shape);
/** Frees data allocated by Loom and clears the array; safe on a cleared array. */
void loom_array_free(loom_array *a);

/** A compressed-sparse-row matrix. rowptr has nrows + 1 entries, col and val nnz each; val holds
 * f32 or f64 elements (vdtype). Column indices of a row need not be sorted. */
typedef struct loom_csr {
    int64_t nrows;     /**< rows */
    int64_t ncols;     /**< columns */
    int64_t nnz;       /**< stored entries */
    loom_dtype vdtype; /**< the values' type: LOOM_F32 or LOOM_F64 */
    int32_t *rowptr;   /**< nrows + 1 offsets into col and val, from 0 to nnz */
    int32_t *col;      /**< each entry's column */
    void *val;         /**< each entry's value */
} loom_csr;

/** A cleared matrix (no entries, nothing allocated), what loom_csr_free leaves. */
#define LOOM_CSR_INIT ((loom_csr){.nrows = 0, .ncols = 0, .nnz = 0, .vdtype = LOOM_F32, .rowptr = NULL, .col = NULL, .val = NULL})

/** Frees a CSR matrix that Loom allocated and clears it. */
void loom_csr_free(loom_csr *m);
/** Checks rowptr monotonicity and column bounds; LOOM_ERR_FORMAT with a message naming the first
 * bad row or entry. */
loom_status loom_csr_validate(const loom_csr *m, loom_error *err);

/** Number of CUDA devices this process can use: 0 when Loom was built without CUDA, when no driver
 * or device is present, or when the CUDA runtime fails (the reason goes to why, if not NULL). */
int loom_cuda_device_count(loom_error *why);
/** Bytes in use on CUDA device `device` (its total less its free memory, as the driver reports
 * them: every process's allocations and contexts), for measuring what a run took.
 * LOOM_ERR_UNSUPPORTED without CUDA, LOOM_ERR_RUNTIME with why's message when the runtime fails. */
loom_status loom_cuda_memory_used(int device, size_t *used, loom_error *why);

#ifdef __cplusplus
}
#endif
#endif
