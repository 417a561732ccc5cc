/* The CUDA kernel contract (C; included by the .c and .cu files of ops/cuda/).
 *
 * A CUDA kernel of an op has the CPU kernel's signature (graphs/core/op.h) and the same meaning, on device
 * memory:
 *
 *     loom_status fn(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
 *
 * - Every data pointer of out and src (data, rowptr, col) is device memory of ctx->cuda->device;
 *   shapes and nnz are on the host and concrete. out is allocated for t's resolved shape.
 * - The kernel launches its work on ctx->cuda->stream and returns: it never synchronises, never
 *   allocates (no cudaMalloc: scratch is ctx->cuda->workspace, sized by the op's workspace query
 *   at the plan's bounds), never copies to or from the host, so a whole step can be captured as a
 *   CUDA graph.
 * - A bad launch (cudaGetLastError after it) returns LOOM_ERR_RUNTIME with a message through
 *   loom__kfail. Bad data that only the device sees (an index out of range) cannot be returned:
 *   the kernel records it in ctx->cuda->err (first failure wins) and the executor reports it,
 *   naming the op, when the step's results reach the host.
 * - Results equal the CPU kernel's up to rounding; dropout masks and anything else drawn from
 *   loom__rand64 equal it bit for bit. With ctx->cuda->deterministic, the same inputs give the
 *   same bits on every run (no floating-point atomics).
 * - In-place ops (optimizer updates) update their sources in device memory as the CPU kernel does.
 *
 * Adding a CUDA kernel: define it in the family's .cu file and set it in that file's registration
 * function (loom__cuda_register_<family>, called once by ops/cuda/table.c). */
#ifndef LOOM_OPS_CUDA_CUDA_H
#define LOOM_OPS_CUDA_CUDA_H

#include "graphs/core/op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A failure that only the device sees, recorded by the first kernel that meets one (atomicCAS on
 * code from 0). The host formats it as "<op> '<tensor>': index <value> out of range [0, <bound>)". */
typedef struct loom__cuda_err {
    int code;          /* enum loom__cuda_err_code; 0: none */
    int tag;           /* ctx->cuda->tag of the kernel that failed */
    long long value;   /* the offending value (an index) */
    long long bound;   /* the bound it broke */
} loom__cuda_err;

enum loom__cuda_err_code {
    LOOM__CUDA_ERR_NONE = 0,
    LOOM__CUDA_ERR_INDEX = 1, /* value not in [0, bound) */
    LOOM__CUDA_ERR_LABEL = 2, /* a class label not in [0, bound) */
    /* the numerics check: element `value` of the `bound` of an op's output is NaN, +inf, -inf */
    LOOM__CUDA_ERR_NAN = 3,
    LOOM__CUDA_ERR_INF = 4,
    LOOM__CUDA_ERR_NEG_INF = 5,
};

typedef struct loom__cuda_kctx {
    int device;             /* CUDA device index */
    void *stream;           /* cudaStream_t: all work of the kernel goes here */
    void *blas;             /* cublasHandle_t bound to stream */
    void *sparse;           /* cusparseHandle_t bound to stream */
    void *dnn;              /* cudnnHandle_t bound to stream; NULL without cuDNN (convolutions run im2col) */
    void *workspace;        /* device scratch of workspace_bytes (the op's workspace query) */
    size_t workspace_bytes;
    loom__cuda_err *err;    /* device memory */
    int tag;                /* identifies the task in err records */
    int deterministic;      /* LOOM_DETERMINISTIC=1: bitwise repeatable, no float atomics */
    /* A step replayed from a captured graph: random kernels (dropout masks) read the step there
     * (device memory, set before each replay) instead of the kctx's, which the graph froze. NULL
     * when kernels are launched one by one. */
    const int64_t *step_dev;
    int matmul;             /* loom_matmul_precision: f32 matmuls on TF32 or BF16 tensor cores, or not */
} loom__cuda_kctx;

typedef loom_status (*loom__kernel_fn)(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);

typedef struct loom__cuda_op {
    loom__kernel_fn run; /* NULL: the op has no CUDA kernel */
    /* (optional) Bytes of scratch the kernel needs for t at the bounds of its dims; src_nnz[i] is
     * the nnz bound of CSR source i (0 for dense ones); dev is the context the kernel will run
     * with on its device (handles and modes; its workspace not yet set). Called when a plan is set
     * up, never inside a step: a kernel that chooses among library algorithms (cuDNN's
     * convolutions) chooses there, on dev's handle. NULL: none. */
    size_t (*workspace)(const loom_tensor *t, const int64_t *src_nnz, const struct loom__cuda_kctx *dev);
} loom__cuda_op;

/* The numerics check of an op's output v (device memory, f32 or f64; other dtypes pass): launches
 * a scan on ctx's stream that records a non-finite element in ctx->cuda->err (ops/cuda/numerics.cu). */
loom_status loom__cuda_check_finite(const loom__value *v, const loom__kctx *ctx);

/* The CUDA kernel of op (run NULL when it has none); never NULL for a valid op. */
const loom__cuda_op *loom__cuda_op_get(loom_op op);

/* Each family's .cu file sets its ops' entries of the table (indexed by loom_op). */
void loom__cuda_register_binary(loom__cuda_op *table);
void loom__cuda_register_unary(loom__cuda_op *table);
void loom__cuda_register_matmul(loom__cuda_op *table);
void loom__cuda_register_dropout(loom__cuda_op *table);
void loom__cuda_register_softmax(loom__cuda_op *table);
void loom__cuda_register_softmax_ce(loom__cuda_op *table);
void loom__cuda_register_optim(loom__cuda_op *table);
void loom__cuda_register_reduce(loom__cuda_op *table);
void loom__cuda_register_shape(loom__cuda_op *table);
void loom__cuda_register_index(loom__cuda_op *table);
void loom__cuda_register_sparse(loom__cuda_op *table);
void loom__cuda_register_loss(loom__cuda_op *table);
void loom__cuda_register_conv(loom__cuda_op *table);
void loom__cuda_register_pool2d(loom__cuda_op *table);
void loom__cuda_register_norm(loom__cuda_op *table);

/* How a convolution problem runs (ops/cuda/conv.cu): an engine of cuDNN's graph API, an
 * algorithm of its legacy API, or im2col and cuBLAS. */
typedef enum loom__conv_path {
    LOOM__CONV_PATH_IM2COL,
    LOOM__CONV_PATH_ENGINE,
    LOOM__CONV_PATH_LEGACY,
    LOOM__CONV_PATH_COUNT
} loom__conv_path;

/* The path chosen for the convolution t (conv2d or a gradient op) at the bounds of its dims, with
 * dev's device, modes and handle (or none), its tensors as aligned as the plan's buffers; -1 when
 * no choice is recorded. *cudnn gets whether the build has cuDNN. For tests. */
int loom__cuda_conv_path(const loom_tensor *t, const struct loom__cuda_kctx *dev, int *cudnn);

#ifdef __cplusplus
}
#endif
#endif
