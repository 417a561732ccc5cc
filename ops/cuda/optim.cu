// CUDA kernels of the optimizer updates (sgd_update, adam_update: PyTorch's rules, in place on the
// parameter and its state) and of fill, the constant that seeds the backward pass (see
// ops/cuda/cuda.h for the contract; the meaning is ops/optim.c's and ops/leaf.c's).
//
// Each update is one fused elementwise pass over the parameter, its gradient and its state:
// everything is read and written once, with 16-byte vector accesses when every pointer is
// aligned. The settings are rounded to T and Adam's bias corrections computed in double on the
// host exactly as the CPU kernel (ops/cpu/optim.c) does, so both run the same arithmetic per
// element.
// defines: loom__cuda_register_optim
#include "ops/cuda/flat.cuh"
#include "ops/optim.h"

#include <math.h>

namespace {

// ---- kernels ------------------------------------------------------------------------------------

__device__ __forceinline__ float sqrt_(float v) { return sqrtf(v); }
__device__ __forceinline__ double sqrt_(double v) { return sqrt(v); }

template <typename T> struct sgd_args {
    T lr, mom, damp, wd; // damp is 1 - dampening
    int nesterov, use_mom, first;
};

template <typename T> __device__ __forceinline__ void sgd1(T &p, T g, T &buf, const sgd_args<T> &a)
{
    T d = g;
    if (a.wd != 0)
        d += a.wd * p;
    if (a.use_mom) {
        const T b = a.first ? d : a.mom * buf + a.damp * d;
        buf = b;
        d = a.nesterov ? d + a.mom * b : b;
    }
    p -= a.lr * d;
}

// An update leaves its parameter as it was once the device has recorded a failure (an index out
// of range, a non-finite output under the numerics check): the failing step's values would carry
// it into the parameter, and the run fails at that step.
__device__ __forceinline__ bool failed(const loom__cuda_err *err) { return err && err->code != LOOM__CUDA_ERR_NONE; }

template <typename T, int V>
__global__ void sgd_kernel(T *p, const T *g, T *buf, int64_t n, sgd_args<T> a, const loom__cuda_err *err)
{
    if (failed(err))
        return;
    const loom__cuda_flat<V> r(n);
    for (int64_t k = r.first; k < r.nv; k += r.stride) {
        loom__cuda_vec<T, V> vp = loom__cuda_vload<V>(p, k);
        const loom__cuda_vec<T, V> vg = loom__cuda_vload<V>(g, k);
        loom__cuda_vec<T, V> vb = {};
        if (a.use_mom && !a.first)
            vb = loom__cuda_vload<V>(buf, k);
#pragma unroll
        for (int j = 0; j < V; j++)
            sgd1(vp.v[j], vg.v[j], vb.v[j], a);
        loom__cuda_vstore<V>(p, k, vp);
        if (a.use_mom)
            loom__cuda_vstore<V>(buf, k, vb);
    }
    for (int64_t i = r.tail(); i < n; i += r.stride) {
        T b = a.use_mom && !a.first ? buf[i] : T(0);
        sgd1(p[i], g[i], b, a);
        if (a.use_mom)
            buf[i] = b;
    }
}

template <typename T> struct adam_args {
    T b1, b2, eps, wd, step_size, bc2_sqrt, decay;
    int decoupled;
};

template <typename T> __device__ __forceinline__ void adam1(T &p, T g, T &m, T &v, const adam_args<T> &a)
{
    if (a.decoupled)
        p *= a.decay;
    else if (a.wd != 0)
        g += a.wd * p;
    m += (1 - a.b1) * (g - m);
    v = a.b2 * v + (1 - a.b2) * g * g;
    const T denom = sqrt_(v) / a.bc2_sqrt + a.eps;
    p -= a.step_size * (m / denom);
}

template <typename T, int V>
__global__ void adam_kernel(T *p, const T *g, T *m, T *v, int64_t n, adam_args<T> a, const loom__cuda_err *err)
{
    if (failed(err))
        return;
    const loom__cuda_flat<V> r(n);
    for (int64_t k = r.first; k < r.nv; k += r.stride) {
        loom__cuda_vec<T, V> vp = loom__cuda_vload<V>(p, k);
        const loom__cuda_vec<T, V> vg = loom__cuda_vload<V>(g, k);
        loom__cuda_vec<T, V> vm = loom__cuda_vload<V>(m, k);
        loom__cuda_vec<T, V> vv = loom__cuda_vload<V>(v, k);
#pragma unroll
        for (int j = 0; j < V; j++)
            adam1(vp.v[j], vg.v[j], vm.v[j], vv.v[j], a);
        loom__cuda_vstore<V>(p, k, vp);
        loom__cuda_vstore<V>(m, k, vm);
        loom__cuda_vstore<V>(v, k, vv);
    }
    for (int64_t i = r.tail(); i < n; i += r.stride)
        adam1(p[i], g[i], m[i], v[i], a);
}

template <typename T, int V> __global__ void fill_kernel(T *y, int64_t n, T value)
{
    const loom__cuda_flat<V> r(n);
    loom__cuda_vec<T, V> w;
#pragma unroll
    for (int j = 0; j < V; j++)
        w.v[j] = value;
    for (int64_t k = r.first; k < r.nv; k += r.stride)
        loom__cuda_vstore<V>(y, k, w);
    for (int64_t i = r.tail(); i < n; i += r.stride)
        y[i] = value;
}

} // namespace

// ---- launchers ----------------------------------------------------------------------------------

namespace {

constexpr int kThreads = 256;

// Every source is the parameter's size and dtype (as the CPU kernel checks).
static loom_status same_size(const char *what, loom__value *const *src, int n, const loom__kctx *ctx)
{
    for (int k = 1; k < n; k++)
        if (loom__numel(src[k]) != loom__numel(src[0]) || src[k]->dtype != src[0]->dtype)
            return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: source %d has %lld %s elements, the parameter %lld %s", what, k + 1,
                               (long long)loom__numel(src[k]), loom_dtype_name(src[k]->dtype),
                               (long long)loom__numel(src[0]), loom_dtype_name(src[0]->dtype));
    return LOOM_OK;
}

// An update in place of the parameter src[0] and the nsrc - 1 sources after it: f(T(0), n), T the
// parameter's float dtype and n its size, once every source has been checked and when there is one.
template <typename F>
static loom_status update(const char *what, loom__value *const *src, int nsrc, const loom__kctx *ctx, F f)
{
    loom_status s = same_size(what, src, nsrc, ctx);
    const int64_t n = loom__numel(src[0]);
    if (s != LOOM_OK || n == 0)
        return s;
    return loom__cuda_float_dispatch(src[0]->dtype, ctx, [&](auto zero) { return f(zero, n); });
}

} // namespace

static loom_status cuda_sgd_update(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)out;
    const loom__attrs *at = &t->a;
    return update("sgd_update", src, 3, ctx, [&](auto zero, int64_t n) {
        using T = decltype(zero);
        sgd_args<T> a;
        a.lr = (T)loom__lr_at(at, ctx->step);
        a.mom = (T)at->f[1];
        a.damp = (T)(1 - at->f[2]);
        a.wd = (T)at->f[3];
        a.nesterov = at->i[0] != 0;
        a.use_mom = at->f[1] != 0;
        a.first = ctx->step == 0;
        T *p = (T *)src[0]->data, *buf = (T *)src[2]->data;
        const T *g = (const T *)src[1]->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        const bool vec = loom__cuda_aligned(p, 16) && loom__cuda_aligned(g, 16) && loom__cuda_aligned(buf, 16);
        loom__cuda_launch_flat<T>(n, vec, kThreads, [&](auto v, unsigned grid) {
            sgd_kernel<T, decltype(v)::value><<<grid, kThreads, 0, st>>>(p, g, buf, n, a, ctx->cuda->err);
        });
        LOOM__CUDA_CHECK_LAUNCH(ctx, "sgd_update");
        return LOOM_OK;
    });
}

static loom_status cuda_adam_update(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)out;
    const loom__attrs *at = &t->a;
    return update("adam_update", src, 4, ctx, [&](auto zero, int64_t n) {
        using T = decltype(zero);
        const double step = (double)(ctx->step + 1), lr = loom__lr_at(at, ctx->step);
        adam_args<T> a;
        a.b1 = (T)at->f[1];
        a.b2 = (T)at->f[2];
        a.eps = (T)at->f[3];
        a.wd = (T)at->f[4];
        a.step_size = (T)(lr / (1 - pow(at->f[1], step)));
        a.bc2_sqrt = (T)sqrt(1 - pow(at->f[2], step));
        a.decay = (T)(1 - lr * at->f[4]);
        a.decoupled = at->i[0] != 0;
        T *p = (T *)src[0]->data, *m = (T *)src[2]->data, *v = (T *)src[3]->data;
        const T *g = (const T *)src[1]->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        const bool vec = loom__cuda_aligned(p, 16) && loom__cuda_aligned(g, 16) && loom__cuda_aligned(m, 16) &&
                         loom__cuda_aligned(v, 16);
        loom__cuda_launch_flat<T>(n, vec, kThreads, [&](auto w, unsigned grid) {
            adam_kernel<T, decltype(w)::value><<<grid, kThreads, 0, st>>>(p, g, m, v, n, a, ctx->cuda->err);
        });
        LOOM__CUDA_CHECK_LAUNCH(ctx, "adam_update");
        return LOOM_OK;
    });
}

static loom_status cuda_fill(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)src;
    const int64_t n = loom__numel(out);
    if (n == 0)
        return LOOM_OK;
    const double value = t->a.f[0];
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        T *y = (T *)out->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        loom__cuda_launch_flat<T>(n, loom__cuda_aligned(y, 16), kThreads, [&](auto v, unsigned grid) {
            fill_kernel<T, decltype(v)::value><<<grid, kThreads, 0, st>>>(y, n, (T)value);
        });
        LOOM__CUDA_CHECK_LAUNCH(ctx, "fill");
        return LOOM_OK;
    });
}

extern "C" void loom__cuda_register_optim(loom__cuda_op *table)
{
    table[LOOM_OP_SGD_UPDATE].run = cuda_sgd_update;
    table[LOOM_OP_ADAM_UPDATE].run = cuda_adam_update;
    table[LOOM_OP_FILL].run = cuda_fill;
}
