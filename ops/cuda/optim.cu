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
#include "ops/cuda/common.cuh"

#include <math.h>

namespace {

// ---- kernels ------------------------------------------------------------------------------------

template <typename T, int V> struct alignas(sizeof(T) * V) vec_t {
    T v[V];
};

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

template <typename T, int V> __global__ void sgd_kernel(T *p, const T *g, T *buf, int64_t n, sgd_args<T> a)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nv = n / V;
    for (int64_t k = first; k < nv; k += stride) {
        vec_t<T, V> vp = reinterpret_cast<const vec_t<T, V> *>(p)[k];
        const vec_t<T, V> vg = reinterpret_cast<const vec_t<T, V> *>(g)[k];
        vec_t<T, V> vb = {};
        if (a.use_mom && !a.first)
            vb = reinterpret_cast<const vec_t<T, V> *>(buf)[k];
#pragma unroll
        for (int j = 0; j < V; j++)
            sgd1(vp.v[j], vg.v[j], vb.v[j], a);
        reinterpret_cast<vec_t<T, V> *>(p)[k] = vp;
        if (a.use_mom)
            reinterpret_cast<vec_t<T, V> *>(buf)[k] = vb;
    }
    for (int64_t i = nv * V + first; i < n; i += stride) {
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

template <typename T, int V> __global__ void adam_kernel(T *p, const T *g, T *m, T *v, int64_t n, adam_args<T> a)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nv = n / V;
    for (int64_t k = first; k < nv; k += stride) {
        vec_t<T, V> vp = reinterpret_cast<const vec_t<T, V> *>(p)[k];
        const vec_t<T, V> vg = reinterpret_cast<const vec_t<T, V> *>(g)[k];
        vec_t<T, V> vm = reinterpret_cast<const vec_t<T, V> *>(m)[k];
        vec_t<T, V> vv = reinterpret_cast<const vec_t<T, V> *>(v)[k];
#pragma unroll
        for (int j = 0; j < V; j++)
            adam1(vp.v[j], vg.v[j], vm.v[j], vv.v[j], a);
        reinterpret_cast<vec_t<T, V> *>(p)[k] = vp;
        reinterpret_cast<vec_t<T, V> *>(m)[k] = vm;
        reinterpret_cast<vec_t<T, V> *>(v)[k] = vv;
    }
    for (int64_t i = nv * V + first; i < n; i += stride)
        adam1(p[i], g[i], m[i], v[i], a);
}

template <typename T, int V> __global__ void fill_kernel(T *y, int64_t n, T value)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    const int64_t first = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    const int64_t nv = n / V;
    vec_t<T, V> w;
#pragma unroll
    for (int j = 0; j < V; j++)
        w.v[j] = value;
    for (int64_t k = first; k < nv; k += stride)
        reinterpret_cast<vec_t<T, V> *>(y)[k] = w;
    for (int64_t i = nv * V + first; i < n; i += stride)
        y[i] = value;
}

} // namespace

// ---- launchers ----------------------------------------------------------------------------------

namespace {

constexpr int kThreads = 256;

static bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

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

} // namespace

static loom_status cuda_sgd_update(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)out;
    loom_status s = same_size("sgd_update", src, 3, ctx);
    const int64_t n = loom__numel(src[0]);
    if (s != LOOM_OK || n == 0)
        return s;
    const loom__attrs *at = &t->a;
    return loom__cuda_float_dispatch(src[0]->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        constexpr int V = 16 / sizeof(T);
        sgd_args<T> a;
        a.lr = (T)at->f[0];
        a.mom = (T)at->f[1];
        a.damp = (T)(1 - at->f[2]);
        a.wd = (T)at->f[3];
        a.nesterov = at->i[0] != 0;
        a.use_mom = at->f[1] != 0;
        a.first = ctx->step == 0;
        T *p = (T *)src[0]->data, *buf = (T *)src[2]->data;
        const T *g = (const T *)src[1]->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        if (aligned16(p) && aligned16(g) && aligned16(buf))
            sgd_kernel<T, V><<<loom__cuda_grid(n / V + (n % V != 0), kThreads), kThreads, 0, st>>>(p, g, buf, n, a);
        else
            sgd_kernel<T, 1><<<loom__cuda_grid(n, kThreads), kThreads, 0, st>>>(p, g, buf, n, a);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "sgd_update");
        return LOOM_OK;
    });
}

static loom_status cuda_adam_update(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)out;
    loom_status s = same_size("adam_update", src, 4, ctx);
    const int64_t n = loom__numel(src[0]);
    if (s != LOOM_OK || n == 0)
        return s;
    const loom__attrs *at = &t->a;
    return loom__cuda_float_dispatch(src[0]->dtype, ctx, [&](auto zero) {
        using T = decltype(zero);
        constexpr int V = 16 / sizeof(T);
        const double step = (double)(ctx->step + 1);
        adam_args<T> a;
        a.b1 = (T)at->f[1];
        a.b2 = (T)at->f[2];
        a.eps = (T)at->f[3];
        a.wd = (T)at->f[4];
        a.step_size = (T)(at->f[0] / (1 - pow(at->f[1], step)));
        a.bc2_sqrt = (T)sqrt(1 - pow(at->f[2], step));
        a.decay = (T)(1 - at->f[0] * at->f[4]);
        a.decoupled = at->i[0] != 0;
        T *p = (T *)src[0]->data, *m = (T *)src[2]->data, *v = (T *)src[3]->data;
        const T *g = (const T *)src[1]->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        if (aligned16(p) && aligned16(g) && aligned16(m) && aligned16(v))
            adam_kernel<T, V><<<loom__cuda_grid(n / V + (n % V != 0), kThreads), kThreads, 0, st>>>(p, g, m, v, n, a);
        else
            adam_kernel<T, 1><<<loom__cuda_grid(n, kThreads), kThreads, 0, st>>>(p, g, m, v, n, a);
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
        constexpr int V = 16 / sizeof(T);
        T *y = (T *)out->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        if (aligned16(y))
            fill_kernel<T, V><<<loom__cuda_grid(n / V + (n % V != 0), kThreads), kThreads, 0, st>>>(y, n, (T)value);
        else
            fill_kernel<T, 1><<<loom__cuda_grid(n, kThreads), kThreads, 0, st>>>(y, n, (T)value);
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
