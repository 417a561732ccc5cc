/** @file
 * The graph builder: a logical graph of tensors, each made by one op from its sources.
 *
 * Builder calls compute nothing: they check their arguments, infer the result's dtype and shape,
 * and record a node. They never abort and return no status to check at each line: the first bad
 * call (NULL argument, shape mismatch, bad axis, wrong dtype) records an error on the graph, naming
 * the op, and returns a poisoned tensor; every call given a poisoned tensor returns one too, and
 * loom_compile() fails with the recorded message (also readable with loom_graph_error()). */
#ifndef LOOM_GRAPH_H
#define LOOM_GRAPH_H

#include "core.h"
#include "sbp.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A logical graph (opaque): the tensors made on it and the first error of its builder calls. */
typedef struct loom_graph loom_graph;
/** A tensor of a graph (opaque): made by one op from its sources, owned by the graph. */
typedef struct loom_tensor loom_tensor;

/** A new empty graph; NULL only when out of memory. The graph owns every tensor made on it. */
loom_graph *loom_graph_new(void);
/** Frees the graph and every tensor on it. NULL is ignored. */
void loom_graph_free(loom_graph *g);
/** The first error recorded on the graph, or NULL when there is none. */
const char *loom_graph_error(const loom_graph *g);
/** LOOM_OK, or the status of the first error recorded. */
loom_status loom_graph_status(const loom_graph *g);
/** Sets the seed that random initialisers and dropout masks derive from (default 0). */
void loom_graph_set_seed(loom_graph *g, uint64_t seed);

/** Places the graph on p (copied): every tensor lives on its devices, and loom_compile infers an
 * SBP for each (docs/placement.md). A placement of one device is the default. A later call with
 * another placement puts the inputs and parameters made after it there (a pipeline's next stage);
 * an op runs where its sources are, which must then be one placement. */
void loom_graph_set_placement(loom_graph *g, const loom_placement *p);
/** x on placement p (copied): the same value, moved between the placements' devices (send/recv
 * boxing); x itself when it is on p already. Its SBP on p is inferred like any other, or set with
 * loom_tensor_set_sbp; its gradient moves back. CPU devices or GPUs of one process (on GPUs, not
 * a partial sum); dense tensors. */
loom_tensor *loom_to_placement(loom_graph *g, loom_tensor *x, const loom_placement *p);
/** Asks for t to have SBP s on its placement; compiling honours it or fails naming the op,
 * the tensor and the signatures that would have worked. On a 2-D placement (a mesh such as
 * "cpu:0-3[2,2]") s applies on both levels: S(0) asks for (S(0), S(0)), B for (B, B). */
void loom_tensor_set_sbp(loom_tensor *t, loom_sbp s);
/** Asks for t to have the SBP s, one value per level of its placement's hierarchy: (S(0), B) on a
 * 2-D mesh splits the rows over the mesh's rows and broadcasts along each row. A tuple whose length
 * is not the placement's number of levels, or a bad axis, is recorded as the graph's error
 * ("SBP (S(0), B) has 2 levels but placement 'cpu:0-3' has a 1-D hierarchy [4]"). */
void loom_tensor_set_nd_sbp(loom_tensor *t, loom_nd_sbp s);

/** A named dynamic dimension with an upper bound (bound >= 0). The name must be unique. */
loom_dim loom_dim_dynamic(loom_graph *g, const char *name, int64_t bound);
/** On a placement of several devices that splits dim d (a dynamic dim) along it, each device's part
 * is planned for at most part_bound (>= 0); 0, the default, plans each for its share of an even
 * split of the bound. A graph batch split by whole graphs (loom_feeder_parts) gives devices
 * uneven parts: its sampler's largest share is the part bound (loom_program_set_bounds changes
 * both after compiling). */
void loom_dim_set_part_bound(loom_graph *g, loom_dim d, int64_t part_bound);

/** The tensor's element type. */
loom_dtype loom_tensor_dtype(const loom_tensor *t);
/** The tensor's rank; a poisoned tensor reports -1. */
int loom_tensor_ndim(const loom_tensor *t);
/** Dim i (negative counts from the end); a dynamic dim returns its handle. */
loom_dim loom_tensor_dim(const loom_tensor *t, int i);
/** The tensor's shape, dynamic dims as their handles. */
loom_shape loom_tensor_shape(const loom_tensor *t);
/** The tensor's name (loom_tensor_set_name, or the one Loom gave it), owned by the graph. */
const char *loom_tensor_name(const loom_tensor *t);
/** 1 when t is the result of a bad builder call (or of one given such a result). */
int loom_tensor_is_poisoned(const loom_tensor *t);
/** The tensor named `name` (an input or parameter), or NULL: a query, for asking whether it exists. */
loom_tensor *loom_graph_find(loom_graph *g, const char *name);
/** The tensor named `name`, for passing on (to a setter, an op): a name the graph does not hold is
 * the graph's error, naming it, and the result a poisoned handle, so that
 * loom_param_set_weight_decay(loom_graph_tensor(g, "fc.weigth"), 0) fails loom_compile instead
 * of setting nothing. */
loom_tensor *loom_graph_tensor(loom_graph *g, const char *name);
/** Names a tensor (unique on the graph) so loom_graph_find, errors and traces can refer to it. */
void loom_tensor_set_name(loom_tensor *t, const char *name);
/** The k-th parameter in creation order, or NULL when there are k or fewer (batch norm's running
 * statistics among them: parameters that take no gradient). */
loom_tensor *loom_graph_param(loom_graph *g, int k);

/* ---------------------------------------------------------------------------------------------
 * Inputs and parameters.
 * ------------------------------------------------------------------------------------------- */

/** A dense input fed before each run. Names are unique among inputs and parameters. */
loom_tensor *loom_input(loom_graph *g, const char *name, loom_dtype dtype, loom_shape shape);
/** An i32 input whose values index the rows of dim `range` (the nodes N of a graph batch, its
 * graphs G): what gathers, scatters and segment ops take as idx on a graph batch. Where range is a
 * dynamic dim split by whole graphs over several devices (loom_feeder_parts) and the input's own
 * length (shape's dim 0) is dynamic too, each device's part holds indices into its own part of
 * range, so gathers and scatters run on each device alone ((S(0), S(0)) -> S(0)); such an input
 * must be fed by parts there (fed whole on several devices, a run refuses it). One of a static
 * length indexes the whole range, like any i32 input. */
loom_tensor *loom_input_index(loom_graph *g, const char *name, loom_shape shape, loom_dim range);
/** A sparse CSR input of nrows x ncols with f32 or f64 values. CSR tensors are operands of spmm and
 * degree; they are not differentiable. */
loom_tensor *loom_input_csr(loom_graph *g, const char *name, loom_dtype vdtype, loom_dim nrows, loom_dim ncols);

/** How a parameter's elements are drawn (loom_init's a and b below). */
typedef enum loom_init_kind {
    LOOM_INIT_ZEROS,      /**< 0 */
    LOOM_INIT_CONSTANT,   /**< a */
    LOOM_INIT_UNIFORM,    /**< U(a, b) */
    LOOM_INIT_NORMAL,     /**< N(a, b^2): mean a, std b */
    LOOM_INIT_GLOROT,     /**< U(-s, s), s = gain a * sqrt(6 / (fan_in + fan_out)); a = 0 means 1 */
    LOOM_INIT_KAIMING,    /**< N(0, (gain a)^2 / fan_in), a = 0 means sqrt(2) */
    LOOM_INIT_KIND_COUNT  /**< the number of kinds */
} loom_init_kind;

/** How a parameter starts. Random kinds draw element i from a counter-based generator keyed by
 * (graph seed, seed, i), so a value never depends on how the tensor is later placed. fan_in is
 * dim 0 and fan_out the last dim (a [in, out] weight). */
typedef struct loom_init {
    loom_init_kind kind; /**< the distribution */
    double a;            /**< its first argument (see loom_init_kind) */
    double b;            /**< its second argument */
    uint64_t seed;       /**< with the graph's seed, what random kinds draw from */
} loom_init;

/** Every element 0. */
#define loom_init_zeros() ((loom_init){.kind = LOOM_INIT_ZEROS})
/** Every element v. */
#define loom_init_constant(v) ((loom_init){.kind = LOOM_INIT_CONSTANT, .a = (v)})
/** Uniform in [lo, hi), drawn with seed s. */
#define loom_init_uniform(lo, hi, s) ((loom_init){.kind = LOOM_INIT_UNIFORM, .a = (lo), .b = (hi), .seed = (s)})
/** Normal of mean and std, drawn with seed s. */
#define loom_init_normal(mean, std, s) ((loom_init){.kind = LOOM_INIT_NORMAL, .a = (mean), .b = (std), .seed = (s)})
/** Glorot (Xavier) uniform, gain 1, drawn with seed s. */
#define loom_init_glorot(s) ((loom_init){.kind = LOOM_INIT_GLOROT, .seed = (s)})
/** Kaiming (He) normal, gain sqrt(2), drawn with seed s. */
#define loom_init_kaiming(s) ((loom_init){.kind = LOOM_INIT_KAIMING, .seed = (s)})

/** A trainable parameter with a static shape (f32 or f64). */
loom_tensor *loom_param(loom_graph *g, const char *name, loom_dtype dtype, loom_shape shape, loom_init init);
/** Overrides the optimizer's weight decay for one parameter (e.g. 0 for biases). */
void loom_param_set_weight_decay(loom_tensor *param, double weight_decay);
/** Freezes a parameter (trainable 0) or thaws it (1, the default): a frozen parameter takes no
 * gradient and no optimizer update, and the backward pass leaves out what only it needed. Call it
 * before loom_compile; it holds for the programs compiled after it. */
void loom_param_set_trainable(loom_tensor *param, int trainable);

/* ---------------------------------------------------------------------------------------------
 * Ops. Float ops take f32 or f64 and keep the dtype; mixed dtypes are an error.
 * ------------------------------------------------------------------------------------------- */

/** [m, k] x [k, n] -> [m, n]; trans_a / trans_b use the transpose of a or b. */
loom_tensor *loom_matmul_ex(loom_graph *g, loom_tensor *a, loom_tensor *b, int trans_a, int trans_b);
/** [m, k] x [k, n] -> [m, n]: loom_matmul_ex without transposes. */
#define loom_matmul(g, a, b) loom_matmul_ex((g), (a), (b), 0, 0)

/** @{ */
/** Elementwise with NumPy broadcasting (dims align from the right; 1 stretches). */
loom_tensor *loom_add(loom_graph *g, loom_tensor *a, loom_tensor *b);
loom_tensor *loom_sub(loom_graph *g, loom_tensor *a, loom_tensor *b);
loom_tensor *loom_mul(loom_graph *g, loom_tensor *a, loom_tensor *b);
loom_tensor *loom_div(loom_graph *g, loom_tensor *a, loom_tensor *b);
/** @} */
/** x * s, a scalar constant. */
loom_tensor *loom_scale(loom_graph *g, loom_tensor *x, double s);
/** x [..., C] + b [C]. */
loom_tensor *loom_bias_add(loom_graph *g, loom_tensor *x, loom_tensor *b);
/** @{ */
/** The elementwise minimum and maximum, broadcast. A NaN wins; the gradient goes to the operand that
 * gives the result, half and half on a tie (PyTorch's rule). */
loom_tensor *loom_minimum(loom_graph *g, loom_tensor *a, loom_tensor *b);
loom_tensor *loom_maximum(loom_graph *g, loom_tensor *a, loom_tensor *b);
/** @} */
/** a where cond != 0, else b: cond u8, a and b of one float dtype, all three broadcast. The gradient
 * goes to a where cond, to b elsewhere; cond takes none. */
loom_tensor *loom_where(loom_graph *g, loom_tensor *cond, loom_tensor *a, loom_tensor *b);

/** @{ */
/** Elementwise maths. exp, the natural log, sqrt, 1 / sqrt and |x| (its gradient sign x, 0 at 0);
 * x^p for a finite constant p (x < 0 with a fractional p gives NaN, as C's pow; the gradient
 * p x^(p - 1), 0 for p = 0); x clamped to [lo, hi] (lo <= hi, neither NaN; an infinite bound
 * leaves that side open; the gradient passes where lo <= x <= hi, at the bounds too, as in
 * PyTorch, and is 0 elsewhere). */
loom_tensor *loom_exp(loom_graph *g, loom_tensor *x);
loom_tensor *loom_log(loom_graph *g, loom_tensor *x);
loom_tensor *loom_sqrt(loom_graph *g, loom_tensor *x);
loom_tensor *loom_rsqrt(loom_graph *g, loom_tensor *x);
loom_tensor *loom_abs(loom_graph *g, loom_tensor *x);
loom_tensor *loom_pow_scalar(loom_graph *g, loom_tensor *x, double p);
loom_tensor *loom_clamp(loom_graph *g, loom_tensor *x, double lo, double hi);
/** @} */

/** @{ */
/** Activations, elementwise: relu max(x, 0); leaky_relu x, or slope x below 0; elu x, or
 * alpha (e^x - 1) below 0; sigmoid 1 / (1 + e^-x); tanh. */
loom_tensor *loom_relu(loom_graph *g, loom_tensor *x);
loom_tensor *loom_leaky_relu(loom_graph *g, loom_tensor *x, double slope);
loom_tensor *loom_elu(loom_graph *g, loom_tensor *x, double alpha);
loom_tensor *loom_sigmoid(loom_graph *g, loom_tensor *x);
loom_tensor *loom_tanh(loom_graph *g, loom_tensor *x);
/** @} */

/** An activation named by value, for layers that take one (loom_activate). */
typedef enum loom_activation {
    LOOM_ACT_NONE,    /**< the identity */
    LOOM_ACT_RELU,    /**< loom_relu */
    LOOM_ACT_SIGMOID, /**< loom_sigmoid */
    LOOM_ACT_TANH,    /**< loom_tanh */
    LOOM_ACT_ELU,     /**< loom_elu with alpha 1 */
    LOOM_ACT_COUNT    /**< the number of activations */
} loom_activation;
/** Applies act (LOOM_ACT_NONE returns x itself). */
loom_tensor *loom_activate(loom_graph *g, loom_tensor *x, loom_activation act);

/** Inverted dropout with drop probability p in [0, 1): in training each element is zeroed with
 * probability p and the rest scaled by 1/(1-p); in evaluation it is the identity. The mask is a
 * tensor of its own, drawn per step from (graph seed, tensor, step, element), and the backward
 * pass reuses it. */
loom_tensor *loom_dropout(loom_graph *g, loom_tensor *x, double p);

/** log(softmax(x)) over the last axis. */
loom_tensor *loom_log_softmax(loom_graph *g, loom_tensor *x);
/** softmax(x) along axis (negative counts from the end): exp(x - max) / sum(exp(x - max)). */
loom_tensor *loom_softmax(loom_graph *g, loom_tensor *x, int axis);
/** The softmax of x [E] or [E, F...] within segments (a graph attention's edge softmax): seg [E] i32
 * names each row's segment (its destination node) in [0, n) (for a dynamic n: below its bound),
 * and each element is normalised over the rows of its segment, feature by feature, max-subtracted.
 * Where seg is an index input of a graph batch over n (loom_input_index), each device runs its
 * own graphs' edges. */
loom_tensor *loom_segment_softmax(loom_graph *g, loom_tensor *x, loom_tensor *seg, loom_dim n);
/** The index of the largest element along axis, i32, the axis removed; the first of ties, and the
 * first NaN where there is one (PyTorch's rule). No gradient. */
loom_tensor *loom_argmax(loom_graph *g, loom_tensor *x, int axis);
/** idx (i32, any shape) -> idx's shape + [classes] of dtype (f32 or f64): 1 at each index, 0
 * elsewhere; classes >= 1, and an index outside [0, classes) fails the run. No gradient. */
loom_tensor *loom_one_hot(loom_graph *g, loom_tensor *idx, int64_t classes, loom_dtype dtype);
/** Mean over rows of -log_softmax(logits)[label]: logits [N, C] float, labels [N] i32 in [0, C),
 * mask NULL or [N] u8 (rows with 0 are left out; the mean is over the rest, 0 when none). */
loom_tensor *loom_softmax_cross_entropy(loom_graph *g, loom_tensor *logits, loom_tensor *labels, loom_tensor *mask);
/** Mean over every element of the binary cross entropy of sigmoid(logits) against targets, computed
 * on the logits (stable for any z): logits float of any shape, targets of its shape and dtype in
 * [0, 1]; pos_weight (> 0, 1 for none) weighs the positive term, as PyTorch's
 * BCEWithLogitsLoss(pos_weight) does. */
loom_tensor *loom_bce_with_logits(loom_graph *g, loom_tensor *logits, loom_tensor *targets, double pos_weight);
/** @{ */
/** Regression losses, the mean over every element (PyTorch's defaults) of pred and target, float
 * tensors of one dtype and shape: (pred - target)^2; |pred - target|; and Huber's, 0.5 d^2 where
 * |d| < delta, else delta (|d| - 0.5 delta), delta > 0 and finite. Built from the ops above. */
loom_tensor *loom_mse_loss(loom_graph *g, loom_tensor *pred, loom_tensor *target);
loom_tensor *loom_l1_loss(loom_graph *g, loom_tensor *pred, loom_tensor *target);
loom_tensor *loom_huber_loss(loom_graph *g, loom_tensor *pred, loom_tensor *target, double delta);
/** @} */

/** @{ */
/** Reductions over the axes set in axis_mask (bit i = axis i); keepdims keeps them as size 1. */
loom_tensor *loom_sum(loom_graph *g, loom_tensor *x, uint32_t axis_mask, int keepdims);
loom_tensor *loom_mean(loom_graph *g, loom_tensor *x, uint32_t axis_mask, int keepdims);
/** @} */
/** The axis_mask bit of axis i. */
#define LOOM_AXIS(i) (UINT32_C(1) << (i))
/** An axis_mask of every axis. */
#define LOOM_ALL_AXES UINT32_C(0xffffffff)

/** @{ */
/** Shape ops. reshape keeps the element count (dynamic dims must appear on both sides); transpose
 * permutes axes (perm NULL reverses them); concat joins n tensors along axis; slice keeps
 * [start, end) of a static axis. Negative axes count from the end. */
loom_tensor *loom_reshape(loom_graph *g, loom_tensor *x, loom_shape shape);
loom_tensor *loom_transpose(loom_graph *g, loom_tensor *x, const int *perm);
loom_tensor *loom_concat(loom_graph *g, loom_tensor *const *xs, int n, int axis);
loom_tensor *loom_slice(loom_graph *g, loom_tensor *x, int axis, int64_t start, int64_t end);
/** @} */

/** Sparse-dense product: adj [N, M] CSR times x [M, F] -> [N, F]; with transpose, adj^T times
 * x [N, F] -> [M, F]. Differentiable in x. */
loom_tensor *loom_spmm_ex(loom_graph *g, loom_tensor *adj, loom_tensor *x, int transpose);
/** adj [N, M] CSR times x [M, F] -> [N, F]: loom_spmm_ex without the transpose. */
#define loom_spmm(g, adj, x) loom_spmm_ex((g), (adj), (x), 0)
/** Per-row degree of a CSR adjacency (sum of its values, +1 with self_loops) raised to power;
 * 0 where the degree is 0. [N], the dtype of the CSR values. GCN uses power -0.5. */
loom_tensor *loom_degree(loom_graph *g, loom_tensor *adj, int self_loops, double power);

/** Rows of table [V, F...] at idx [E] (i32, each in [0, V)) -> [E, F...]. */
loom_tensor *loom_gather_rows(loom_graph *g, loom_tensor *table, loom_tensor *idx);
/** out [n, F...] with out[idx[e]] += src[e]: src [E, F...], idx [E] i32 in [0, n). */
loom_tensor *loom_scatter_add_rows(loom_graph *g, loom_tensor *src, loom_tensor *idx, loom_dim n);
/** @{ */
/** Graph pooling: x [N, F...] rows grouped by segment id seg [N] (i32 in [0, n), any order) ->
 * [n, F...]. Empty segments give 0. max routes the gradient to the first row reaching the max. */
loom_tensor *loom_segment_sum(loom_graph *g, loom_tensor *x, loom_tensor *seg, loom_dim n);
loom_tensor *loom_segment_mean(loom_graph *g, loom_tensor *x, loom_tensor *seg, loom_dim n);
loom_tensor *loom_segment_max(loom_graph *g, loom_tensor *x, loom_tensor *seg, loom_dim n);
/** @} */

/* ---------------------------------------------------------------------------------------------
 * Convolutional ops. Images are NCHW: [batch, channels, height, width]; the batch may be a
 * dynamic dim, the other dims are static.
 * ------------------------------------------------------------------------------------------- */

/** Strides, zero padding on each side and dilations as (height, width) pairs, and the number of
 * groups: the input channels and the filters split into that many groups, each filter seeing
 * only its group's channels. */
typedef struct loom_conv2d_opts {
    int stride[2];   /**< steps of the window along H and W (>= 1) */
    int pad[2];      /**< zeros added on each side along H and W (>= 0) */
    int dilation[2]; /**< spacing of the filter's taps along H and W (>= 1) */
    int groups;      /**< channel groups (>= 1, dividing the channels and the filters) */
} loom_conv2d_opts;
/** Stride 1, no padding, no dilation, one group. */
#define LOOM_CONV2D_OPTS_INIT ((loom_conv2d_opts){.stride = {1, 1}, .pad = {0, 0}, .dilation = {1, 1}, .groups = 1})

/** y = conv2d(x, w) [+ b] (a cross-correlation, as in PyTorch): x [N, C, H, W], w [K, C / groups,
 * R, S], b [K] or NULL -> y [N, K, P, Q] with P = (H + 2 pad_h - dil_h (R - 1) - 1) / stride_h + 1
 * and likewise Q. o NULL means LOOM_CONV2D_OPTS_INIT. Differentiable in x, w and b. */
loom_tensor *loom_conv2d(loom_graph *g, loom_tensor *x, loom_tensor *w, loom_tensor *b, const loom_conv2d_opts *o);

/* ---------------------------------------------------------------------------------------------
 * Convolutional network ops besides convolution: pooling (NCHW, static H and W), flattening and
 * normalisation.
 * ------------------------------------------------------------------------------------------- */

/** A pooling window: kernel, stride and padding along H and W (index 0 and 1). The output is
 * [N, C, P, Q] with P = (H + 2 pad[0] - kernel[0]) / stride[0] + 1, Q likewise. kernel and stride
 * must be >= 1, pad in [0, kernel / 2] (PyTorch's rule), and the kernel no larger than the padded
 * input. */
typedef struct loom_pool2d_opts {
    int kernel[2]; /**< the window's height and width */
    int stride[2]; /**< its steps along H and W */
    int pad[2];    /**< padding on each side along H and W */
} loom_pool2d_opts;
/** Kernel 2x2, stride 2, no padding. */
#define LOOM_POOL2D_OPTS_INIT ((loom_pool2d_opts){.kernel = {2, 2}, .stride = {2, 2}, .pad = {0, 0}})

/** The max of each window (padding never wins); the gradient goes to the window's first max in
 * row-major order. o NULL: LOOM_POOL2D_OPTS_INIT. */
loom_tensor *loom_max_pool2d(loom_graph *g, loom_tensor *x, const loom_pool2d_opts *o);
/** The mean of each window, padding counted as zeros (PyTorch's count_include_pad=True). */
loom_tensor *loom_avg_pool2d(loom_graph *g, loom_tensor *x, const loom_pool2d_opts *o);
/** [N, C, H, W] -> [N, C]: the mean over H and W. */
loom_tensor *loom_global_avg_pool(loom_graph *g, loom_tensor *x);
/** [N, d1, ...] -> [N, d1 x ...]: a reshape (the dims after the first static). */
loom_tensor *loom_flatten(loom_graph *g, loom_tensor *x);

/** Batch normalisation of x [N, C] or [N, C, ...] over every axis but the channels (axis 1), as
 * PyTorch's BatchNorm1d / BatchNorm2d (momentum 0.1, eps 1e-5 there): y = (x - mean) /
 * sqrt(var + eps) * weight + bias per channel. In training runs (every mode but LOOM_RUN_EVAL) mean
 * and var are the batch's (var biased), over the whole batch on every device: under data
 * parallelism the statistics are summed across devices (sync-BN); in evaluation they are the
 * running statistics. Each STEP run then updates running = (1 - momentum) running + momentum
 * batch, the variance unbiased. Parameters "<name>.weight" (ones) and "<name>.bias" (zeros) of
 * [C]; "<name>.running_mean" (zeros) and "<name>.running_var" (ones), [C], are parameters that take
 * no gradient (never trained, updated by the steps only; loom_program_fetch reads them). C must be
 * static; momentum in [0, 1], eps >= 0. A training run of a batch of one value per channel fails. */
loom_tensor *loom_batch_norm(loom_graph *g, const char *name, loom_tensor *x, double momentum, double eps);
/** relu(loom_batch_norm(x) + residual), or relu(loom_batch_norm(x)) when residual is NULL, as one
 * op: batch norm's epilogue fused, the tail of a ResNet block in one pass over x (and one over the
 * gradient, whose ReLU mask is read from the output). The same parameters, names, statistics and
 * errors as loom_batch_norm; the residual must have x's dtype and shape. */
loom_tensor *loom_batch_norm_relu(loom_graph *g, const char *name, loom_tensor *x, loom_tensor *residual, double momentum,
                                  double eps);
/** Layer normalisation of x over its last `axes` axes (1 .. its rank, each static), as PyTorch's
 * LayerNorm(x.shape[-axes:]): y = (x - mean) / sqrt(var + eps) * weight + bias with mean and the
 * biased var of each row (the normalised elements). Parameters "<name>.weight" (ones) and
 * "<name>.bias" (zeros) of the normalised shape; eps >= 0. */
loom_tensor *loom_layer_norm(loom_graph *g, const char *name, loom_tensor *x, int axes, double eps);

#ifdef __cplusplus
}
#endif
#endif
