// CUDA kernels of conv2d and its gradient ops (see ops/cuda/cuda.h for the contract; the meaning
// is ops/conv.c's, the operand checks ops/shared/conv.c's). Three ways to run a problem, each the
// fallback of the one before:
//
// cuDNN's graph API (builds with cuDNN, and a handle in the context; conv_engine.cu): an engine
// of cuDNN's heuristics finalized into an execution plan, run by cudnnBackendExecute. This API
// exposes engines the legacy one does not, and is the one PyTorch's cudnn.benchmark chooses
// through. Each problem's engine is chosen once, not per step: the op's workspace query,
// called when a plan is set up, takes the heuristics' candidates for the problem at the plan's
// bounds whose notes fit the math and whose workspace fits WS_CAP, runs and times them (as
// PyTorch's cudnn.benchmark does) and keeps the fastest; under LOOM_DETERMINISTIC it times
// nothing and takes the first deterministic one in the heuristics' order, so that every process
// picks the same. The choice (its execution plan) goes into a small table (keyed by op, device,
// dtype, math, determinism, whether a cuDNN handle is given, the tensors' alignment and every
// size; behind a mutex) and its workspace is returned. A kernel finds its problem there, without
// asking cuDNN again. A problem the query did not see (a dynamic batch below its bound, a
// device's part of a split, tensors less aligned than the query assumed) is chosen on its first
// call by the heuristics alone (no launch, no allocation: the call may be inside a CUDA graph's
// capture), within the workspace the kernel was given, and recorded. f32 runs on FMA math (no
// TF32) unless the context asks for TF32 or BF16 matmuls.
//
// cuDNN's legacy API, where the graph API has no engine for a problem (f64 ones may have none):
// the same choice among cudnnConvolutionForward, BackwardData and BackwardFilter's algorithms
// (cudnnFindConvolution*Algorithm timed, or cudnnGetConvolution*Algorithm_v7's order), on
// descriptors made per call.
//
// With LOOM_TRACE set, each choice recorded is printed on stderr, one line per problem.
//
// im2col and cuBLAS (builds without cuDNN, or a problem cuDNN has no algorithm for, such as some
// f64 ones): image by image, an im2col kernel and one strided batched GEMM over the groups; the
// input gradient folds its columns back with a gather over the taps that reach each pixel, the
// weight gradient adds image after image into dw. No atomics: deterministic.
// defines: loom__cuda_register_conv
#include "ops/cuda/conv_engine.cuh"
#include "ops/cuda/gemm.cuh"
#include "ops/shared/conv.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <initializer_list>
#include <mutex>

#ifdef LOOM_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace {

constexpr int kThreads = 256;

// ---- kernels ------------------------------------------------------------------------------------

// cols [C R S, P Q] of one image x [C, H, W]: row (c R + i) S + j, column oh Q + ow holds
// x[c, oh sh - ph + i dh, ow sw - pw + j dw], 0 in the padding.
template <typename T> __global__ void im2col(loom__conv g, const T *x, T *cols)
{
    const int64_t pq = g.p * g.q, total = g.c * g.r * g.s * pq;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t col = e % pq, row = e / pq;
        const int64_t j = row % g.s, i = row / g.s % g.r, c = row / (g.r * g.s);
        const int64_t ih = col / g.q * g.stride[0] - g.pad[0] + i * g.dil[0];
        const int64_t iw = col % g.q * g.stride[1] - g.pad[1] + j * g.dil[1];
        cols[e] = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w ? x[(c * g.h + ih) * g.w + iw] : T(0);
    }
}

// dx [C, H, W] of one image from its columns dcols [C R S, P Q]: each pixel sums, taps in order,
// the columns whose window reads it.
template <typename T> __global__ void col2im(loom__conv g, const T *dcols, T *dx)
{
    const int64_t pq = g.p * g.q, total = g.c * g.h * g.w;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t iw = e % g.w, ih = e / g.w % g.h, c = e / (g.h * g.w);
        T acc = 0;
        for (int64_t i = 0; i < g.r; i++) {
            const int64_t th = ih + g.pad[0] - i * g.dil[0];
            if (th < 0 || th % g.stride[0] || th / g.stride[0] >= g.p)
                continue;
            for (int64_t j = 0; j < g.s; j++) {
                const int64_t tw = iw + g.pad[1] - j * g.dil[1];
                if (tw < 0 || tw % g.stride[1] || tw / g.stride[1] >= g.q)
                    continue;
                acc += dcols[((c * g.r + i) * g.s + j) * pq + th / g.stride[0] * g.q + tw / g.stride[1]];
            }
        }
        dx[e] = acc;
    }
}

// y [N, K, P Q] += b[k], in index type U (32-bit wherever y's indices fit).
template <typename T, typename U> __global__ void add_bias(T *y, const T *b, U total, U k, U pq)
{
    for (U e = (U)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (U)gridDim.x * blockDim.x)
        y[e] += b[e / pq % k];
}

// ---- the choice of algorithm --------------------------------------------------------------------

// Workspace an algorithm may take at most when the plan is set up.
constexpr size_t WS_CAP = (size_t)256 << 20;

// Alignment in bytes the workspace query assumes of the tensors (the plan's buffers have more).
constexpr int64_t ALIGN = 16;

struct conv_key {
    int op, device, dtype, math, det, dnn;
    int64_t size[10]; // n c h w k cg r s, then groups, and 0
    int64_t attr[6];  // stride, padding, dilation
    int64_t align;    // of the tensors' addresses, at most ALIGN
};

struct conv_choice {
    loom__conv_path kind = LOOM__CONV_PATH_IM2COL;
    int algo = 0; // LOOM__CONV_PATH_LEGACY: a cuDNN algorithm of the op
    int math = 0; // LOOM__CONV_PATH_LEGACY: cudnnMathType_t
    size_t bytes = 0;
#ifdef LOOM_HAVE_CUDNN
    loom__conv_plan_ref plan; // LOOM__CONV_PATH_ENGINE
#endif
};

// The chosen algorithms: a ring of the last TABLE problems. Made once and never torn down (its
// execution plans live as long as the process: destroying cuDNN's plans at exit can crash).
constexpr int TABLE = 256;
struct conv_table {
    std::mutex mu;
    conv_key key[TABLE];
    conv_choice choice[TABLE];
    int n = 0, next = 0;
};
conv_table &chosen = *new conv_table;

// f32 without tensor cores unless the context allows TF32 or BF16 matmuls.
bool strict_math(loom_dtype dt, const loom__cuda_kctx *dev) { return dt == LOOM_F32 && dev->matmul == LOOM_MATMUL_F32; }

conv_key key_of(loom_op op, const loom__conv *cv, loom_dtype dt, const loom__cuda_kctx *dev, int64_t align)
{
    conv_key k;
    memset(&k, 0, sizeof k); // compared with memcmp: no stray padding bytes
    k.op = (int)op;
    k.device = dev->device;
    k.dtype = (int)dt;
    k.math = strict_math(dt, dev);
    k.det = dev->deterministic != 0;
    k.dnn = dev->dnn != nullptr;
    const int64_t size[9] = {cv->n, cv->c, cv->h, cv->w, cv->k, cv->cg, cv->r, cv->s, cv->groups};
    memcpy(k.size, size, sizeof size);
    for (int i = 0; i < 2; i++) {
        k.attr[i] = cv->stride[i];
        k.attr[2 + i] = cv->pad[i];
        k.attr[4 + i] = cv->dil[i];
    }
    k.align = align;
    return k;
}

bool find_choice(const conv_key &k, conv_choice *c)
{
    std::lock_guard<std::mutex> lock(chosen.mu);
    for (int i = 0; i < chosen.n; i++)
        if (!memcmp(&chosen.key[i], &k, sizeof k)) {
            *c = chosen.choice[i];
            return true;
        }
    return false;
}

void record_choice(const conv_key &k, const conv_choice &c)
{
    std::lock_guard<std::mutex> lock(chosen.mu);
    for (int i = 0; i < chosen.n; i++)
        if (!memcmp(&chosen.key[i], &k, sizeof k)) {
            chosen.choice[i] = c;
            return;
        }
    const int at = chosen.n < TABLE ? chosen.n++ : chosen.next;
    chosen.next = (at + 1) % TABLE;
    chosen.key[at] = k;
    chosen.choice[at] = c;
}

// Bytes of the im2col path: one image's columns (all groups).
size_t im2col_bytes(const loom__conv *cv, loom_dtype dt)
{
    const int64_t cols = loom__conv_cols(cv);
    int64_t bytes;
    if (cols < 0 || loom__mul_size(cols, cv->groups, &bytes) || loom__mul_size(bytes, (int64_t)loom_dtype_size(dt), &bytes))
        return SIZE_MAX;
    return (size_t)bytes + 256;
}

// Every size fits the int of cuDNN's descriptors and cuBLAS's calls, an image's output positions
// and a group's im2col rows too.
bool int_sizes(const loom__conv *cv)
{
    const int64_t v[] = {cv->n, cv->c, cv->h, cv->w, cv->k, cv->cg, cv->r, cv->s, cv->p, cv->q,
                         cv->stride[0], cv->stride[1], cv->pad[0], cv->pad[1], cv->dil[0], cv->dil[1]};
    for (int64_t x : v)
        if (x > INT_MAX)
            return false;
    int64_t pq, crs;
    return !loom__mul_size(cv->p, cv->q, &pq) && pq <= INT_MAX && !loom__mul_size(cv->cg * cv->r, cv->s, &crs) && crs <= INT_MAX;
}

#ifdef LOOM_HAVE_CUDNN

// The descriptors of one problem, made per call and freed with it.
struct conv_descs {
    cudnnTensorDescriptor_t x = nullptr, y = nullptr;
    cudnnFilterDescriptor_t w = nullptr;
    cudnnConvolutionDescriptor_t c = nullptr;
    conv_descs() = default;
    conv_descs(const conv_descs &) = delete;
    conv_descs &operator=(const conv_descs &) = delete;
    ~conv_descs()
    {
        if (x)
            cudnnDestroyTensorDescriptor(x);
        if (y)
            cudnnDestroyTensorDescriptor(y);
        if (w)
            cudnnDestroyFilterDescriptor(w);
        if (c)
            cudnnDestroyConvolutionDescriptor(c);
    }
};

cudnnStatus_t make_descs(conv_descs *d, const loom__conv *cv, loom_dtype dt, bool strict)
{
    const cudnnDataType_t t = dt == LOOM_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    cudnnStatus_t s = cudnnCreateTensorDescriptor(&d->x);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetTensor4dDescriptor(d->x, CUDNN_TENSOR_NCHW, t, (int)cv->n, (int)cv->c, (int)cv->h, (int)cv->w);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnCreateFilterDescriptor(&d->w);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetFilter4dDescriptor(d->w, t, CUDNN_TENSOR_NCHW, (int)cv->k, (int)cv->cg, (int)cv->r, (int)cv->s);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnCreateConvolutionDescriptor(&d->c);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetConvolution2dDescriptor(d->c, (int)cv->pad[0], (int)cv->pad[1], (int)cv->stride[0], (int)cv->stride[1],
                                            (int)cv->dil[0], (int)cv->dil[1], CUDNN_CROSS_CORRELATION, t);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetConvolutionGroupCount(d->c, (int)cv->groups);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetConvolutionMathType(d->c, strict ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnCreateTensorDescriptor(&d->y);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetTensor4dDescriptor(d->y, CUDNN_TENSOR_NCHW, t, (int)cv->n, (int)cv->k, (int)cv->p, (int)cv->q);
    return s;
}

// The first of n heuristic results that succeeds, is deterministic when det, runs on FMA math
// when strict, and whose workspace (size_of(algo, &bytes), under the result's math) is at most
// limit. Leaves the descriptor's math as it found it.
template <typename Perf, typename SizeOf>
bool first_fit(const Perf *perf, int n, cudnnConvolutionDescriptor_t cd, bool det, bool strict, size_t limit,
               SizeOf size_of, conv_choice *out)
{
    cudnnMathType_t was;
    if (cudnnGetConvolutionMathType(cd, &was) != CUDNN_STATUS_SUCCESS)
        return false;
    bool found = false;
    for (int i = 0; i < n && !found; i++) {
        const Perf &p = perf[i];
        if (p.status != CUDNN_STATUS_SUCCESS || (det && p.determinism != CUDNN_DETERMINISTIC))
            continue;
        if (strict && (p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION))
            continue;
        const cudnnMathType_t math = strict ? CUDNN_FMA_MATH : p.mathType;
        size_t bytes = 0;
        if (cudnnSetConvolutionMathType(cd, math) != CUDNN_STATUS_SUCCESS || size_of(p.algo, &bytes) != CUDNN_STATUS_SUCCESS ||
            bytes > limit)
            continue;
        out->kind = LOOM__CONV_PATH_LEGACY;
        out->algo = (int)p.algo;
        out->math = (int)math;
        out->bytes = bytes;
        found = true;
    }
    cudnnSetConvolutionMathType(cd, was);
    return found;
}

// The first of N results that fits (first_fit): of find (cuDNN's algorithms run and timed,
// fastest first) when measure and it succeeds and one fits, else of guess (its heuristics' order).
template <typename Perf, int N, typename Find, typename Guess, typename SizeOf>
bool find_or_guess(bool measure, Find find, Guess guess, SizeOf size_of, cudnnConvolutionDescriptor_t cd, bool det, bool strict,
                   size_t limit, conv_choice *out)
{
    Perf perf[N];
    int n = 0;
    if (measure && find(N, &n, perf) == CUDNN_STATUS_SUCCESS && first_fit(perf, n, cd, det, strict, limit, size_of, out))
        return true;
    return guess(N, &n, perf) == CUDNN_STATUS_SUCCESS && first_fit(perf, n, cd, det, strict, limit, size_of, out);
}

// cuDNN's choice for op on d within limit bytes; false when none fits. With measure, its
// algorithms are run and timed (cudnnFind*, as PyTorch's cudnn.benchmark does: launches and a
// synchronisation, so only where a plan is set up, never in a step or a capture) and the fastest
// that fits taken; else, or when that fails, its heuristics' order (no launch, no allocation).
bool pick_cudnn(loom_op op, cudnnHandle_t h, const conv_descs &d, bool det, bool strict, size_t limit, bool measure,
                conv_choice *out)
{
    if (op == LOOM_OP_CONV2D) {
        using P = cudnnConvolutionFwdAlgoPerf_t;
        return find_or_guess<P, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(
            measure, [&](int m, int *n, P *p) { return cudnnFindConvolutionForwardAlgorithm(h, d.x, d.w, d.c, d.y, m, n, p); },
            [&](int m, int *n, P *p) { return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.c, d.y, m, n, p); },
            [&](cudnnConvolutionFwdAlgo_t a, size_t *b) { return cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.c, d.y, a, b); },
            d.c, det, strict, limit, out);
    }
    if (op == LOOM_OP_CONV2D_GRAD_INPUT) {
        using P = cudnnConvolutionBwdDataAlgoPerf_t;
        return find_or_guess<P, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(
            measure, [&](int m, int *n, P *p) { return cudnnFindConvolutionBackwardDataAlgorithm(h, d.w, d.y, d.c, d.x, m, n, p); },
            [&](int m, int *n, P *p) { return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.c, d.x, m, n, p); },
            [&](cudnnConvolutionBwdDataAlgo_t a, size_t *b) {
                return cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.c, d.x, a, b);
            },
            d.c, det, strict, limit, out);
    }
    using P = cudnnConvolutionBwdFilterAlgoPerf_t;
    return find_or_guess<P, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
        measure, [&](int m, int *n, P *p) { return cudnnFindConvolutionBackwardFilterAlgorithm(h, d.x, d.y, d.c, d.w, m, n, p); },
        [&](int m, int *n, P *p) { return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.c, d.w, m, n, p); },
        [&](cudnnConvolutionBwdFilterAlgo_t a, size_t *b) {
            return cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.c, d.w, a, b);
        },
        d.c, det, strict, limit, out);
}

#endif // LOOM_HAVE_CUDNN

// The lowest of the alignments of a, b and c, at most ALIGN.
int64_t align_of(const void *a, const void *b, const void *c)
{
    const uintptr_t bits = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | (uintptr_t)ALIGN;
    return (int64_t)(bits & (~bits + 1));
}

// With LOOM_TRACE set: the choice c for op on cv, one line on stderr.
void trace_choice(loom_op op, const loom__conv *cv, loom_dtype dt, const loom__cuda_kctx *dev, int64_t align,
                  const conv_choice &c)
{
    const char *trace = getenv("LOOM_TRACE");
    if (!trace || !*trace)
        return;
    char how[400];
#ifdef LOOM_HAVE_CUDNN
    if (c.kind == LOOM__CONV_PATH_ENGINE) {
        int at = snprintf(how, sizeof how, "cuDNN graph API, ");
        loom__conv_engine_describe(*c.plan, how + at, sizeof how - (size_t)at);
    } else
#endif
        if (c.kind == LOOM__CONV_PATH_LEGACY)
        snprintf(how, sizeof how, "cuDNN legacy API, algorithm %d, math type %d, workspace %zu B", c.algo, c.math, c.bytes);
    else
        snprintf(how, sizeof how, "im2col and cuBLAS, workspace %zu B", c.bytes);
    fprintf(stderr,
            "loom: cuda:%d %s %s x [%lld, %lld, %lld, %lld] w [%lld, %lld, %lld, %lld] stride %lldx%lld padding %lldx%lld "
            "dilation %lldx%lld groups %lld%s%s, aligned to %lld B: %s\n",
            dev->device, loom__op_def(op)->name, loom_dtype_name(dt), (long long)cv->n, (long long)cv->c, (long long)cv->h,
            (long long)cv->w, (long long)cv->k, (long long)cv->cg, (long long)cv->r, (long long)cv->s,
            (long long)cv->stride[0], (long long)cv->stride[1], (long long)cv->pad[0], (long long)cv->pad[1],
            (long long)cv->dil[0], (long long)cv->dil[1], (long long)cv->groups,
            dt == LOOM_F64 ? "" : strict_math(dt, dev) ? ", FMA math" : ", TF32 allowed", dev->deterministic ? ", deterministic" : "",
            (long long)align, how);
}

// The choice for op on cv (its tensors aligned to align bytes): the table's when it has one that
// fits limit, else, within limit, cuDNN's graph API's (measured with measure, see
// conv_engine.cuh), else its legacy API's (see pick_cudnn), else the im2col path (also when the
// build has no cuDNN); recorded. False when nothing fits.
bool choose(loom_op op, const loom__conv *cv, loom_dtype dt, const loom__cuda_kctx *dev, int64_t align, size_t limit,
            bool measure, conv_choice *out)
{
    const conv_key k = key_of(op, cv, dt, dev, align);
    if (find_choice(k, out) && out->bytes <= limit)
        return true;
    *out = conv_choice{};
    bool found = false;
#ifdef LOOM_HAVE_CUDNN
    if (dev->dnn) {
        const bool det = dev->deterministic != 0, strict = strict_math(dt, dev);
        const loom__conv_engine_ask a = {(cudnnHandle_t)dev->dnn, dev->device, op, cv, dt, align, strict, det, measure,
                                         measure && !det, limit};
        out->plan = loom__conv_engine_pick(a, &out->bytes);
        out->kind = out->plan ? LOOM__CONV_PATH_ENGINE : LOOM__CONV_PATH_IM2COL;
        found = out->plan != nullptr;
        conv_descs d;
        if (!found && make_descs(&d, cv, dt, strict) == CUDNN_STATUS_SUCCESS)
            found = pick_cudnn(op, (cudnnHandle_t)dev->dnn, d, det, strict, limit, measure && !det, out);
    }
#endif
    if (!found) {
        out->kind = LOOM__CONV_PATH_IM2COL;
        out->bytes = im2col_bytes(cv, dt);
        found = out->bytes <= limit;
    }
    if (found) {
        record_choice(k, *out);
        trace_choice(op, cv, dt, dev, align, *out);
    }
    return found;
}

// ---- launchers ----------------------------------------------------------------------------------

#ifdef LOOM_HAVE_CUDNN

// cuDNN refused the problem before launching anything (a status of the NOT_SUPPORTED or BAD_PARAM
// families): the im2col path can take it instead.
bool refused(cudnnStatus_t s)
{
    return (s >= CUDNN_STATUS_NOT_SUPPORTED && s < CUDNN_STATUS_NOT_SUPPORTED + 1000) ||
           (s >= CUDNN_STATUS_BAD_PARAM && s < CUDNN_STATUS_BAD_PARAM + 1000);
}

// Runs the chosen cuDNN algorithm.
cudnnStatus_t run_cudnn(const loom_tensor *t, const loom__conv *cv, loom_dtype dt, const conv_choice &c, loom__value *out,
                        loom__value *const *src, const loom__kctx *ctx)
{
    conv_descs d;
    cudnnStatus_t s = make_descs(&d, cv, dt, strict_math(dt, ctx->cuda));
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnSetConvolutionMathType(d.c, (cudnnMathType_t)c.math);
    if (s != CUDNN_STATUS_SUCCESS)
        return s;
    cudnnHandle_t h = (cudnnHandle_t)ctx->cuda->dnn;
    const float one_f = 1, zero_f = 0;
    const double one_d = 1, zero_d = 0;
    const void *one = dt == LOOM_F64 ? (const void *)&one_d : (const void *)&one_f;
    const void *zero = dt == LOOM_F64 ? (const void *)&zero_d : (const void *)&zero_f;
    void *ws = c.bytes ? ctx->cuda->workspace : nullptr;
    if (t->op == LOOM_OP_CONV2D)
        return cudnnConvolutionForward(h, one, d.x, src[0]->data, d.w, src[1]->data, d.c, (cudnnConvolutionFwdAlgo_t)c.algo,
                                       ws, c.bytes, zero, d.y, out->data);
    if (t->op == LOOM_OP_CONV2D_GRAD_INPUT)
        return cudnnConvolutionBackwardData(h, one, d.w, src[1]->data, d.y, src[0]->data, d.c,
                                            (cudnnConvolutionBwdDataAlgo_t)c.algo, ws, c.bytes, zero, d.x, out->data);
    return cudnnConvolutionBackwardFilter(h, one, d.x, src[0]->data, d.y, src[1]->data, d.c,
                                          (cudnnConvolutionBwdFilterAlgo_t)c.algo, ws, c.bytes, zero, d.w, out->data);
}

#endif // LOOM_HAVE_CUDNN

// The im2col path, image by image (see the top).
template <typename T>
loom_status run_im2col(const loom_tensor *t, const loom__conv *cv, loom__value *out, loom__value *const *src,
                       const loom__kctx *ctx)
{
    const char *what = loom__op_def(t->op)->name;
    const int64_t pq = cv->p * cv->q, crs = cv->cg * cv->r * cv->s, hw = cv->h * cv->w;
    loom__cuda_carver wsc = loom__cuda_workspace(ctx);
    T *cols = wsc.take<T>(crs * cv->groups * pq);
    if (!cols)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: workspace of %zu bytes, %zu needed", what, ctx->cuda->workspace_bytes,
                           im2col_bytes(cv, out->dtype));
    cublasHandle_t h = (cublasHandle_t)ctx->cuda->blas;
    const cublasComputeType_t ct = loom__cuda_gemm_compute(out->dtype, ctx);
    cudaStream_t st = loom__cuda_stream(ctx);
    const unsigned grid_cols = loom__cuda_grid(crs * cv->groups * pq, kThreads);
    const int kg = (int)cv->kg, ncrs = (int)crs, npq = (int)pq, g = (int)cv->groups;
    for (int64_t n = 0; n < cv->n; n++) {
        cublasStatus_t s;
        if (t->op == LOOM_OP_CONV2D) {
            const T *x = (const T *)src[0]->data + n * cv->c * hw;
            im2col<T><<<grid_cols, kThreads, 0, st>>>(*cv, x, cols);
            LOOM__CUDA_CHECK_LAUNCH(ctx, what);
            T *y = (T *)out->data + n * cv->k * pq;
            s = loom__cuda_gemm_rm<T>(h, false, false, kg, npq, ncrs, (const T *)src[1]->data, ncrs, (long long)kg * crs, cols,
                                      npq, (long long)crs * pq, T(0), y, npq, (long long)kg * pq, g, ct);
        } else if (t->op == LOOM_OP_CONV2D_GRAD_INPUT) {
            const T *dy = (const T *)src[0]->data + n * cv->k * pq;
            s = loom__cuda_gemm_rm<T>(h, true, false, ncrs, npq, kg, (const T *)src[1]->data, ncrs, (long long)kg * crs, dy, npq,
                                      (long long)kg * pq, T(0), cols, npq, (long long)crs * pq, g, ct);
            if (s == CUBLAS_STATUS_SUCCESS) {
                col2im<T><<<loom__cuda_grid(cv->c * hw, kThreads), kThreads, 0, st>>>(*cv, cols, (T *)out->data + n * cv->c * hw);
                LOOM__CUDA_CHECK_LAUNCH(ctx, what);
            }
        } else {
            const T *x = (const T *)src[0]->data + n * cv->c * hw, *dy = (const T *)src[1]->data + n * cv->k * pq;
            im2col<T><<<grid_cols, kThreads, 0, st>>>(*cv, x, cols);
            LOOM__CUDA_CHECK_LAUNCH(ctx, what);
            s = loom__cuda_gemm_rm<T>(h, false, true, kg, ncrs, npq, dy, npq, (long long)kg * pq, cols, npq, (long long)crs * pq,
                                      T(n ? 1 : 0), (T *)out->data, ncrs, (long long)kg * crs, g, ct);
        }
        if (s != CUBLAS_STATUS_SUCCESS)
            return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: cublasGemmStridedBatchedEx (image %lld): %s", what, (long long)n,
                               cublasGetStatusString(s));
    }
    LOOM__CUDA_CHECK_LAUNCH(ctx, what);
    return LOOM_OK;
}

// y += b, when conv2d has a bias.
loom_status bias(const loom_tensor *t, const loom__conv *cv, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    if (t->op != LOOM_OP_CONV2D || t->n_src < 3)
        return LOOM_OK;
    const int64_t total = cv->n * cv->k * cv->p * cv->q;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        return loom__cuda_with_index(total, [&](auto u) {
            using U = decltype(u);
            add_bias<T, U><<<loom__cuda_grid(total, kThreads), kThreads, 0, loom__cuda_stream(ctx)>>>(
                (T *)out->data, (const T *)src[2]->data, (U)total, (U)cv->k, (U)(cv->p * cv->q));
            LOOM__CUDA_CHECK_LAUNCH(ctx, "conv2d (bias)");
            return LOOM_OK;
        });
    });
}

// The value of t and its sources at the bounds of their dims (no data): the problem the plan sizes.
bool geometry_at_bounds(const loom_tensor *t, loom__conv *cv)
{
    loom__value v[LOOM__MAX_SRC + 1];
    loom__value *src[LOOM__MAX_SRC];
    for (int k = 0; k <= t->n_src; k++) {
        const loom_tensor *u = k < t->n_src ? t->src[k] : t;
        v[k] = loom__value{};
        v[k].dtype = u->dtype;
        v[k].ndim = u->shape.ndim;
        for (int i = 0; i < u->shape.ndim; i++)
            v[k].shape[i] = loom__dim_bound(t->graph, u->shape.d[i]);
        if (k < t->n_src)
            src[k] = &v[k];
    }
    return loom__conv_operands(cv, t, &v[t->n_src], src, nullptr) == LOOM_OK;
}

} // namespace

static loom_status cuda_conv(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const char *what = loom__op_def(t->op)->name;
    loom__conv cv;
    loom_status s = loom__conv_operands(&cv, t, out, src, ctx);
    if (s != LOOM_OK)
        return s;
    const loom__conv_work work = loom__conv_work_of(&cv, t->op);
    if (work == LOOM__CONV_EMPTY)
        return LOOM_OK;
    if (work == LOOM__CONV_ZERO) { // no image, channel or pixel reaches the output (a device's part): 0, or the bias
        s = loom__cuda_memset(ctx, out->data, 0, (size_t)loom__cuda_dense_numel(out) * loom_dtype_size(out->dtype), what);
        return s == LOOM_OK ? bias(t, &cv, out, src, ctx) : s;
    }
    if (!int_sizes(&cv))
        return loom__kfail(ctx, LOOM_ERR_UNSUPPORTED, "%s: a size exceeds the 32-bit sizes of cuDNN and cuBLAS", what);
    // x, w and y as the op reads and writes them: conv2d x, w -> y; grad_input dy, w -> dx; grad_weight x, dy -> dw
    void *x = t->op == LOOM_OP_CONV2D_GRAD_INPUT ? out->data : src[0]->data;
    void *w = t->op == LOOM_OP_CONV2D_GRAD_WEIGHT ? out->data : src[1]->data;
    void *y = t->op == LOOM_OP_CONV2D ? out->data : t->op == LOOM_OP_CONV2D_GRAD_INPUT ? src[0]->data : src[1]->data;
    const int64_t align = align_of(x, w, y);
    conv_choice c;
    if (!choose(t->op, &cv, out->dtype, ctx->cuda, align, ctx->cuda->workspace ? ctx->cuda->workspace_bytes : 0, false, &c))
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: no algorithm fits the workspace of %zu bytes (im2col needs %zu)", what,
                           ctx->cuda->workspace_bytes, im2col_bytes(&cv, out->dtype));
#ifdef LOOM_HAVE_CUDNN
    if (c.kind != LOOM__CONV_PATH_IM2COL) {
        const cudnnStatus_t ds =
            c.kind == LOOM__CONV_PATH_ENGINE
                ? loom__conv_engine_run(*c.plan, (cudnnHandle_t)ctx->cuda->dnn, x, w, y, ctx->cuda->workspace)
                : run_cudnn(t, &cv, out->dtype, c, out, src, ctx);
        if (ds == CUDNN_STATUS_SUCCESS) {
            LOOM__CUDA_CHECK_LAUNCH(ctx, what);
            return bias(t, &cv, out, src, ctx);
        }
        // refused after all: the im2col path from now on, where it fits
        conv_choice im;
        im.bytes = im2col_bytes(&cv, out->dtype);
        if (!refused(ds) || im.bytes > ctx->cuda->workspace_bytes) {
            char how[320];
            if (c.kind == LOOM__CONV_PATH_ENGINE)
                loom__conv_engine_describe(*c.plan, how, sizeof how);
            else
                snprintf(how, sizeof how, "legacy algorithm %d", c.algo);
            return loom__kfail(ctx, LOOM_ERR_RUNTIME, "%s: cuDNN %s: %s", what, how, cudnnGetErrorString(ds));
        }
        record_choice(key_of(t->op, &cv, out->dtype, ctx->cuda, align), im);
        trace_choice(t->op, &cv, out->dtype, ctx->cuda, align, im);
    }
#endif
    s = loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        return run_im2col<T>(t, &cv, out, src, ctx);
    });
    return s == LOOM_OK ? bias(t, &cv, out, src, ctx) : s;
}

// Scratch at the bounds: the chosen engine's or algorithm's (which the query chooses, measuring
// cuDNN's candidates, and records here).
static size_t conv_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *dev)
{
    (void)src_nnz;
    loom__conv cv;
    if (!geometry_at_bounds(t, &cv) || loom__conv_work_of(&cv, t->op) != LOOM__CONV_RUN || !int_sizes(&cv))
        return 0;
    conv_choice c;
    if (dev && choose(t->op, &cv, t->dtype, dev, ALIGN, WS_CAP, true, &c))
        return c.bytes;
    const size_t im = im2col_bytes(&cv, t->dtype);
    return im == SIZE_MAX ? 0 : im;
}

extern "C" int loom__cuda_conv_path(const loom_tensor *t, const loom__cuda_kctx *dev, int *cudnn)
{
#ifdef LOOM_HAVE_CUDNN
    *cudnn = 1;
#else
    *cudnn = 0;
#endif
    loom__conv cv;
    conv_choice c;
    if (!geometry_at_bounds(t, &cv) || !find_choice(key_of(t->op, &cv, t->dtype, dev, ALIGN), &c))
        return -1;
    return (int)c.kind;
}

extern "C" void loom__cuda_register_conv(loom__cuda_op *table)
{
    for (loom_op op : {LOOM_OP_CONV2D, LOOM_OP_CONV2D_GRAD_INPUT, LOOM_OP_CONV2D_GRAD_WEIGHT})
        table[op] = loom__cuda_op{cuda_conv, conv_workspace};
}
