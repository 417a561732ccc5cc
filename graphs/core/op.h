/* The op contract: what an op is to the passes (shape inference, gradient rule) and to the
 * executors (a CPU kernel on concrete values).
 *
 * A tensor of the logical graph is the node that makes it: op, sources and attributes. Ops see
 * tensors through this header only; the graph that owns them is opaque here. */
#ifndef LOOM_OPS_OP_H
#define LOOM_OPS_OP_H

#include <loom/graph.h>
#include <loom/sbp.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Functions that CUDA kernels share with the host (the counter-based generator below). */
#ifdef __CUDACC__
#define LOOM__HD __host__ __device__
#else
#define LOOM__HD
#endif

#define LOOM__MAX_SRC 8

typedef enum loom_op {
#define X(e, n) LOOM_OP_##e,
#include "graphs/core/ops.def"
#undef X
    LOOM_OP_COUNT
} loom_op;

typedef enum loom__layout { LOOM__DENSE, LOOM__CSR } loom__layout;

enum loom__tensor_flags {
    LOOM__T_POISON = 1u << 0,
    LOOM__T_NEEDS_GRAD = 1u << 1, /* depends on a parameter */
};

/* Op attributes: integers, reals and a shape, meaning what each op says. */
typedef struct loom__attrs {
    int64_t i[8];
    double f[8];
    loom_shape shape;
} loom__attrs;

struct loom_tensor {
    int id; /* index in the graph, also a topological order */
    loom_op op;
    int n_src;
    loom_tensor *src[LOOM__MAX_SRC];
    loom__attrs a;
    loom_dtype dtype;  /* the value dtype for CSR */
    loom__layout layout;
    loom_shape shape;  /* [nrows, ncols] for CSR; ndim 0 and no value for in-place ops */
    uint32_t flags;
    loom_graph *graph;
    char name[64];
    loom_init init;      /* parameters */
    loom_nd_sbp sbp_hint; /* the user's SBP for it (n 0: unset; n 1 on a mesh: that SBP on every level) */
    int place;           /* its placement: an index into the graph's places (0: the graph's own) */
    double weight_decay; /* parameters: NaN means the optimizer's */
};

/* A concrete value: dense contiguous row-major data, or CSR (rowptr, col, nnz; data = values). */
typedef struct loom__value {
    loom_dtype dtype;
    int ndim;
    int64_t shape[LOOM_MAX_DIMS];
    void *data;
    int32_t *rowptr, *col;
    int64_t nnz;
} loom__value;

/* What a kernel may know beyond its operands. */
typedef struct loom__kctx {
    int64_t step;   /* optimizer steps taken before this run; Adam uses step + 1 */
    int training;   /* dropout on */
    uint64_t seed;  /* the graph's seed */
    char *msg;      /* a failing kernel writes why here */
    size_t msglen;
    /* CUDA kernels only (ops/cuda/cuda.h): the device's stream, library handles, scratch and error
     * record; NULL for CPU kernels. */
    const struct loom__cuda_kctx *cuda;
    /* On several devices: the signature the op runs under (NULL on one device), which part of it
     * this device holds (part of nparts), and for each source split under it, the first index of
     * this part along the split axis and that axis's whole size (0 and the size when not split).
     * Kernels whose signatures need offsets read them (a gather from a row-split table). */
    const struct loom__sbp_sig *sig;
    int part, nparts;
    int64_t first[LOOM__MAX_SRC], whole[LOOM__MAX_SRC];
    /* CPU kernels: the program's kernel threads (ops/cpu/pool.h); NULL runs them on the caller. */
    struct loom__pool *pool;
    /* With micro-batches, where this micro-batch starts in its step's batch, in rows of axis 0 of
     * the op's output (0 otherwise): a dropout mask draws the rows of the step's whole mask. */
    int64_t row0;
} loom__kctx;

/* A kernel's failure, on any device: writes the message into ctx->msg and returns s. */
loom_status loom__kfail(const loom__kctx *ctx, loom_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* One valid SBP signature of an op on a 1-D placement: an SBP per source, and the output's. */
typedef struct loom__sbp_sig {
    loom_sbp in[LOOM__MAX_SRC];
    loom_sbp out;
} loom__sbp_sig;
#define LOOM__MAX_SIGS 32

typedef struct loom_op_def {
    const char *name;
    int min_src, max_src;
    uint32_t flags;
    /* Sets t->dtype, t->layout and t->shape from t->src and t->a; on a bad call writes a message
     * (without the op name) and returns the status. */
    loom_status (*infer)(loom_tensor *t, char *msg, size_t len);
    /* Computes out from src on the CPU. out is allocated for the resolved shape of t. */
    loom_status (*cpu)(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx);
    /* Builds the gradient of each differentiable source from gout (the gradient of t) into gsrc[i];
     * NULL when no source is differentiable. */
    void (*grad)(loom_graph *g, loom_tensor *t, loom_tensor *gout, loom_tensor **gsrc);
    uint32_t diff_src; /* bit i: source i takes a gradient */
    /* Writes t's valid signatures (at most max) into sigs and returns their number, given its
     * sources' shapes and attributes; the all-broadcast signature (B, ..., B) -> B, valid for every
     * deterministic op, need not be listed. NULL: that signature only. */
    int (*sbp)(const loom_tensor *t, loom__sbp_sig *sigs, int max);
    /* Builds the in-place updates that a training step makes from t besides the optimizer's (batch
     * norm's running statistics, from its batch statistics). loom_compile calls it for every tensor
     * of the model when it compiles a loss, after the optimizer's updates, so they run in STEP runs
     * only, once the backward pass is done. NULL: none. */
    void (*step_update)(loom_graph *g, loom_tensor *t);
    /* Floating-point operations of the whole op at its shapes' bounds, for the cost model
     * (sbp/infer/cost.h); NULL (optional): one per output element. */
    double (*flops)(const loom_tensor *t);
} loom_op_def;

enum loom__op_flags {
    LOOM__OPF_LEAF = 1u << 0,    /* input, parameter, state: holds a value, computes nothing */
    LOOM__OPF_INPLACE = 1u << 1, /* updates its sources, has no value of its own */
    LOOM__OPF_RANDOM = 1u << 2,  /* depends on the step and training flag */
    /* its CPU kernel splits its work over the program's threads (ops/cpu/pool.h); the others run
     * on one thread, which the cost model counts (sbp/infer/cost.h) */
    LOOM__OPF_THREADED = 1u << 3,
    /* its kernels call a math library (cuBLAS or cuDNN on a GPU, a CBLAS on the CPU), whose call
     * costs a fixed time besides an op's, which the cost model counts (lib_latency) */
    LOOM__OPF_LIBRARY = 1u << 4,
};

/* An index input (loom_input_index): an i32 input (a.i[0] dtype, a.i[1] layout) with a.i[2] set,
 * whose values index the rows of dim a.i[3]. */
static inline int loom__is_index_input(const loom_tensor *t) { return t->op == LOOM_OP_INPUT && t->a.i[2] == 1; }
static inline loom_dim loom__index_range(const loom_tensor *t) { return (loom_dim)t->a.i[3]; }
/* 1 for an index input of a graph batch: over a dynamic dim, and of a dynamic length itself, so
 * that it can be fed by parts (loom_feeder_parts). One of a static length (a fixed number of
 * picked rows) indexes the whole of its range, like any i32 input. */
static inline int loom__batch_index(const loom_tensor *t)
{
    return loom__is_index_input(t) && loom_dim_is_dynamic(loom__index_range(t)) && t->shape.ndim >= 1 &&
           loom_dim_is_dynamic(t->shape.d[0]);
}
/* 1 when idx is a batch index (loom__batch_index) over the dim that is dim 0 of rows: on a graph
 * batch split by whole graphs, each device's part of idx indexes its own part of rows. */
static inline int loom__local_index(const loom_tensor *idx, const loom_shape *rows)
{
    return loom__batch_index(idx) && rows->ndim >= 1 && rows->d[0] == loom__index_range(idx);
}
/* 1 when t reads its source i as row indices into its own part of a table, rows or output: the
 * idx of gather_rows, scatter and scatter_grad, and the seg of segment_softmax and its gradient
 * (over a.i[0] segments), when it is a local index. On several devices every
 * signature of t must keep that source split S(0) as it was fed: gathered whole (B, or the
 * all-broadcast signature), a device would read the other devices' indices as its own rows. */
static inline int loom__reads_local_index(const loom_tensor *t, int i)
{
    if (i != 1 || t->n_src < 2)
        return 0;
    switch (t->op) {
    case LOOM_OP_GATHER_ROWS:
        return loom__local_index(t->src[1], &t->src[0]->shape);
    case LOOM_OP_SCATTER:
        return loom__local_index(t->src[1], &t->shape);
    case LOOM_OP_SCATTER_GRAD:
        return t->n_src > 2 && loom__local_index(t->src[1], &t->src[2]->shape);
    case LOOM_OP_SEGMENT_SOFTMAX:
    case LOOM_OP_SEGMENT_SOFTMAX_GRAD:
        return loom__batch_index(t->src[1]) && loom__index_range(t->src[1]) == (loom_dim)t->a.i[0];
    default:
        return 0;
    }
}

/* The definition of op; never NULL for a valid op. */
const loom_op_def *loom__op_def(loom_op op);

/* ---- Services the graph gives ops (implemented in graphs/builder/builder.c and dims.c). ---- */

/* Makes a tensor of op on g from n sources and attributes a (NULL: none), inferring its shape. A
 * failure records "<api>: <message>" as the graph's error (when it is the first) and returns the
 * graph's poisoned tensor; a poisoned or NULL source does the same. */
loom_tensor *loom__node(loom_graph *g, const char *api, loom_op op, int n, loom_tensor *const *src, const loom__attrs *a);
/* The checks loom__node makes of its n sources, for builders that read a source before making a
 * node: NULL when every source is a tensor of g that is not poisoned, else the graph's poisoned
 * tensor, with "<api>: tensor argument 2 is NULL" (or "belongs to another graph") recorded. */
loom_tensor *loom__refuse_sources(loom_graph *g, const char *api, int n, loom_tensor *const *src);
/* Records a builder error on g (kept only when it is the first) and returns the poisoned tensor. */
loom_tensor *loom__fail(loom_graph *g, loom_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes a shape as "[N, 128]" (dynamic dims by name). */
const char *loom__shape_str(const loom_graph *g, const loom_shape *s, char *buf, size_t len);
/* 1 when two shapes have the same rank and dims. */
int loom__shape_eq(const loom_shape *a, const loom_shape *b);
/* 1 when two dims are the same (equal sizes, or the same dynamic dim). */
int loom__dim_eq(loom_dim a, loom_dim b);
/* The upper bound of a dim (its size when static). */
int64_t loom__dim_bound(const loom_graph *g, loom_dim d);
/* 1 when d may be a dim on g: a size >= 0, or (allow_dynamic) one of g's dynamic dims. Else 0 with
 * why, e.g. "<what> is a dynamic dim of another graph": every dim a caller gives the builder
 * passes here, so that a handle of another graph is never taken for one of g's. */
int loom__dim_ok(const loom_graph *g, loom_dim d, int allow_dynamic, const char *what, char *why, size_t len);
/* Elements of a shape at its bounds, as a double (a cost, not a size: no overflow to check). */
double loom__shape_bound_elems(const loom_graph *g, const loom_shape *s);
/* Normalises a possibly negative axis against ndim; -1 when out of range. */
int loom__axis(int axis, int ndim);

/* Sums x over the dims that broadcasting stretched, to `target` (the shape of a source of a
 * broadcasting op): the gradient of a broadcast. Returns x itself when the shapes are equal.
 * (ops/reduce.c) */
loom_tensor *loom__sum_to(loom_graph *g, loom_tensor *x, const loom_shape *target);

/* Element count of a concrete value (1 for a scalar; nnz values for CSR); -1 when over an int64,
 * which a value of a program never is (the builder and the feeds refuse such shapes). */
int64_t loom__numel(const loom__value *v);

/* Checked size arithmetic: every element count, byte count and offset computed from a caller's
 * shapes goes through these. Each returns 0 and sets *out when the operands are >= 0 and the
 * result fits an int64 (the largest count or byte size Loom handles), else -1 with *out as it
 * was. */
int loom__mul_size(int64_t a, int64_t b, int64_t *out);
int loom__add_size(int64_t a, int64_t b, int64_t *out);
/* Elements and bytes (either may be NULL) of a dense value of dtype and concrete shape; -1 when
 * the rank or dtype is invalid, a dim is negative, or either count is over an int64. */
int loom__dense_size(loom_dtype dtype, int ndim, const int64_t *shape, int64_t *numel, int64_t *bytes);
/* A byte count as every message writes one: "512 bytes" under 1 KiB, else one decimal of the
 * largest unit it reaches ("1.5 KiB", "3.2 MiB", "2.0 GiB", up to TiB). Returns buf. */
const char *loom__bytes_str(double bytes, char *buf, size_t len);

/* Counter-based random bits for (key, counter): the same everywhere, in any order. The
 * splitmix64 finaliser over a combined key is cheap, stateless and well mixed, which is what a
 * counter-based generator needs; inline, since masks draw one per element or two. */
static inline LOOM__HD uint64_t loom__mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}
static inline LOOM__HD uint64_t loom__rand64(uint64_t key, uint64_t counter)
{
    return loom__mix64(loom__mix64(key + UINT64_C(0x9e3779b97f4a7c15)) ^ (counter * UINT64_C(0xd1b54a32d192ed03)));
}
/* 1 when a kernel runs on a device's part of source 0 split along axis 0 (its signature's in[0]
 * S(0), on several devices): ctx->first[0] and ctx->whole[0] are then that part's first row and
 * the whole tensor's rows. */
static inline int loom__row_part(const loom__kctx *ctx)
{
    return ctx->sig && ctx->nparts > 1 && ctx->sig->in[0].kind == LOOM_SBP_SPLIT && ctx->sig->in[0].axis == 0;
}
/* The index in the whole tensor of a dropout mask part's element 0: first[0] rows in for a
 * device's part of a row-split mask ((S(0)) -> S(0)), plus a micro-batch's first row (row0). */
static inline int64_t loom__mask_base(const loom__value *out, const loom__kctx *ctx)
{
    int64_t row = ctx->row0 + (loom__row_part(ctx) ? ctx->first[0] : 0);
    if (!row || out->ndim < 1 || out->shape[0] == 0)
        return 0;
    return row * (loom__numel(out) / out->shape[0]);
}
/* The rows an unmasked softmax cross-entropy's mean divides by: the whole logits' for a device's
 * part of row-split logits (the loss's (S(0), S(0)) -> P, the gradient's (S(0), S(0), B) -> S(0)),
 * else the local rows. */
static inline int64_t loom__ce_rows(int64_t rows, const loom__kctx *ctx) { return loom__row_part(ctx) ? ctx->whole[0] : rows; }
/* The elements a binary cross entropy's mean divides by: the whole logits' (the whole rows times
 * a row's elements) for a device's part of row-split logits, else the local ones. */
static inline int64_t loom__bce_count(const loom__value *z, const loom__kctx *ctx)
{
    int64_t inner = 1;
    for (int i = 1; i < z->ndim; i++)
        inner *= z->shape[i];
    return z->ndim >= 1 && loom__row_part(ctx) ? ctx->whole[0] * inner : loom__numel(z);
}
/* Uniform in [0, 1) with 53 random bits. */
static inline LOOM__HD double loom__rand_unit(uint64_t key, uint64_t counter) { return (double)(loom__rand64(key, counter) >> 11) * 0x1.0p-53; }

#ifdef __cplusplus
}
#endif
#endif
