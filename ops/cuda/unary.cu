// CUDA kernels of the elementwise functions (relu, leaky_relu, elu, sigmoid, tanh, exp, log, sqrt,
// rsqrt, abs, pow_scalar, clamp) and act_grad, their shared backward op (see ops/cuda/cuda.h for
// the contract; the meaning is ops/unary.c's).
//
// All are flat maps over contiguous values (ops/cuda/flat.cuh): a grid-stride loop of 16-byte
// vector accesses when every pointer is aligned, scalar ones otherwise. The formulas are the CPU
// kernel's (ops/cpu/unary.c), including its parameters rounded to T and its exp-of-minus-|v| forms
// of sigmoid and tanh, so f32 and f64 results agree with it to an ulp or two. A second parameter
// (clamp's hi) rides in the map's functor.
// defines: loom__cuda_register_unary
#include "ops/cuda/flat.cuh"

namespace {

// ---- kernels ------------------------------------------------------------------------------------

__device__ __forceinline__ float exp_(float v) { return expf(v); }
__device__ __forceinline__ double exp_(double v) { return exp(v); }
__device__ __forceinline__ float expm1_(float v) { return expm1f(v); }
__device__ __forceinline__ double expm1_(double v) { return expm1(v); }
__device__ __forceinline__ float log_(float v) { return logf(v); }
__device__ __forceinline__ double log_(double v) { return log(v); }
__device__ __forceinline__ float sqrt_(float v) { return sqrtf(v); }
__device__ __forceinline__ double sqrt_(double v) { return sqrt(v); }
__device__ __forceinline__ float fabs_(float v) { return fabsf(v); }
__device__ __forceinline__ double fabs_(double v) { return fabs(v); }
__device__ __forceinline__ float pow_(float v, float p) { return powf(v, p); }
__device__ __forceinline__ double pow_(double v, double p) { return pow(v, p); }

// A product rounded before what follows it, as on the CPU: where 1 - v * v cancels, a fused
// multiply-add (which nvcc would make) rounds differently by far more than the values' precision.
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }

// One exp of -|v| each, so neither overflows (as on the CPU).
template <typename T> __device__ __forceinline__ T sigmoid1(T v)
{
    const T e = exp_(v < 0 ? v : -v);
    return (v >= 0 ? T(1) : e) / (1 + e);
}
template <typename T> __device__ __forceinline__ T tanh1(T v)
{
    const T m = expm1_(2 * (v < 0 ? v : -v));
    const T a = -m / (2 + m);
    return v < 0 ? -a : a;
}

// Forward maps y = f(v) (loom__cuda_map_kernel's f); p is the activation's parameter.
struct f_relu {
    template <typename T> __device__ __forceinline__ T operator()(T v, T) const { return v > 0 ? v : T(0); }
};
struct f_leaky_relu {
    template <typename T> __device__ __forceinline__ T operator()(T v, T p) const { return v > 0 ? v : v * p; }
};
struct f_elu {
    template <typename T> __device__ __forceinline__ T operator()(T v, T p) const { return v > 0 ? v : p * expm1_(v); }
};
struct f_sigmoid {
    template <typename T> __device__ __forceinline__ T operator()(T v, T) const { return sigmoid1(v); }
};
struct f_tanh {
    template <typename T> __device__ __forceinline__ T operator()(T v, T) const { return tanh1(v); }
};
struct f_exp {
    template <typename T> __device__ __forceinline__ T operator()(T v, T) const { return exp_(v); }
};
struct f_log {
    template <typename T> __device__ __forceinline__ T operator()(T v, T) const { return log_(v); }
};
struct f_sqrt {
    template <typename T> __device__ __forceinline__ T operator()(T v, T) const { return sqrt_(v); }
};
struct f_rsqrt { // a correctly rounded quotient of a correctly rounded root, as on the CPU (not rsqrt)
    template <typename T> __device__ __forceinline__ T operator()(T v, T) const { return T(1) / sqrt_(v); }
};
struct f_abs {
    template <typename T> __device__ __forceinline__ T operator()(T v, T) const { return fabs_(v); }
};
struct f_pow_scalar {
    template <typename T> __device__ __forceinline__ T operator()(T v, T p) const { return pow_(v, p); }
};
// p is lo; hi, rounded to T at each use (one conversion), rides here.
struct f_clamp {
    double hi;
    template <typename T> __device__ __forceinline__ T operator()(T v, T p) const
    {
        const T q = (T)hi;
        return v < p ? p : v > q ? q : v;
    }
};

// Backward maps out = g * f'(.) of s (x or y, as ops/unary.c says) and g.
struct g_relu {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T) const { return v > 0 ? g : T(0); }
};
struct g_leaky_relu {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T p) const { return v > 0 ? g : g * p; }
};
struct g_elu {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T p) const { return v > 0 ? g : g * p * exp_(v); }
};
struct g_sigmoid {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T) const { return g * v * (1 - v); }
};
struct g_tanh {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T) const { return g * (1 - mul_rn(v, v)); }
};
struct g_exp {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T) const { return g * v; }
};
struct g_log {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T) const { return g / v; }
};
struct g_sqrt {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T) const { return g / (2 * v); }
};
struct g_rsqrt {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T) const { return -(g * v * v * v) / 2; }
};
struct g_abs {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T) const { return v > 0 ? g : v < 0 ? -g : T(0); }
};
struct g_pow_scalar {
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T p) const
    {
        return p == 0 ? T(0) : g * p * pow_(v, p - 1);
    }
};
struct g_clamp {
    double hi;
    template <typename T> __device__ __forceinline__ T operator()(T v, T g, T p) const
    {
        return v >= p && v <= (T)hi ? g : T(0);
    }
};

template <typename T, int V, typename F> __global__ void act_grad_kernel(T *out, const T *s, const T *g, int64_t n, T p, F f)
{
    const loom__cuda_flat<V> r(n);
    for (int64_t k = r.first; k < r.nv; k += r.stride) {
        const loom__cuda_vec<T, V> vs = loom__cuda_vload<V>(s, k);
        loom__cuda_vec<T, V> vg = loom__cuda_vload<V>(g, k);
#pragma unroll
        for (int j = 0; j < V; j++)
            vg.v[j] = f(vs.v[j], vg.v[j], p);
        loom__cuda_vstore<V>(out, k, vg);
    }
    for (int64_t i = r.tail(); i < n; i += r.stride)
        out[i] = f(s[i], g[i], p);
}

} // namespace

// ---- launchers ----------------------------------------------------------------------------------

namespace {

constexpr int kThreads = 256;

template <typename F>
static loom_status act(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx, F f,
                       const char *what)
{
    const int64_t n = loom__numel(out);
    if (loom__numel(src[0]) != n || src[0]->dtype != out->dtype)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: the operand differs from the output in size or dtype", what);
    if (n == 0)
        return LOOM_OK;
    return loom__cuda_map(ctx, out, src[0], t->a.f[0], f, kThreads, what);
}

template <typename F>
static loom_status act_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx, F f)
{
    const int64_t n = loom__numel(out);
    if (loom__numel(src[0]) != n || loom__numel(src[1]) != n)
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "operands of act_grad differ in size");
    if (src[0]->dtype != out->dtype || src[1]->dtype != out->dtype)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "operands of act_grad differ in dtype");
    if (n == 0)
        return LOOM_OK;
    const double p = t->a.f[0];
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        T *o = (T *)out->data;
        const T *s = (const T *)src[0]->data, *g = (const T *)src[1]->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        const bool vec = loom__cuda_aligned(o, 16) && loom__cuda_aligned(s, 16) && loom__cuda_aligned(g, 16);
        loom__cuda_launch_flat<T>(n, vec, kThreads, [&](auto v, unsigned grid) {
            act_grad_kernel<T, decltype(v)::value><<<grid, kThreads, 0, st>>>(o, s, g, n, (T)p, f);
        });
        LOOM__CUDA_CHECK_LAUNCH(ctx, "act_grad");
        return LOOM_OK;
    });
}

} // namespace

static loom_status cuda_relu(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_relu(), "relu");
}

static loom_status cuda_leaky_relu(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_leaky_relu(), "leaky_relu");
}

static loom_status cuda_elu(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_elu(), "elu");
}

static loom_status cuda_sigmoid(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_sigmoid(), "sigmoid");
}

static loom_status cuda_tanh(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_tanh(), "tanh");
}

static loom_status cuda_exp(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_exp(), "exp");
}

static loom_status cuda_log(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_log(), "log");
}

static loom_status cuda_sqrt(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_sqrt(), "sqrt");
}

static loom_status cuda_rsqrt(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_rsqrt(), "rsqrt");
}

static loom_status cuda_abs(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_abs(), "abs");
}

static loom_status cuda_pow_scalar(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_pow_scalar(), "pow_scalar");
}

static loom_status cuda_clamp(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return act(t, out, src, ctx, f_clamp{t->a.f[1]}, "clamp");
}

static loom_status cuda_act_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    switch (t->a.i[0]) {
    case LOOM_OP_RELU: return act_grad(t, out, src, ctx, g_relu());
    case LOOM_OP_LEAKY_RELU: return act_grad(t, out, src, ctx, g_leaky_relu());
    case LOOM_OP_ELU: return act_grad(t, out, src, ctx, g_elu());
    case LOOM_OP_SIGMOID: return act_grad(t, out, src, ctx, g_sigmoid());
    case LOOM_OP_TANH: return act_grad(t, out, src, ctx, g_tanh());
    case LOOM_OP_EXP: return act_grad(t, out, src, ctx, g_exp());
    case LOOM_OP_LOG: return act_grad(t, out, src, ctx, g_log());
    case LOOM_OP_SQRT: return act_grad(t, out, src, ctx, g_sqrt());
    case LOOM_OP_RSQRT: return act_grad(t, out, src, ctx, g_rsqrt());
    case LOOM_OP_ABS: return act_grad(t, out, src, ctx, g_abs());
    case LOOM_OP_POW_SCALAR: return act_grad(t, out, src, ctx, g_pow_scalar());
    case LOOM_OP_CLAMP: return act_grad(t, out, src, ctx, g_clamp{t->a.f[1]});
    default: return loom__kfail(ctx, LOOM_ERR_INVALID, "op %lld is not an activation", (long long)t->a.i[0]);
    }
}

extern "C" void loom__cuda_register_unary(loom__cuda_op *table)
{
    table[LOOM_OP_RELU].run = cuda_relu;
    table[LOOM_OP_LEAKY_RELU].run = cuda_leaky_relu;
    table[LOOM_OP_ELU].run = cuda_elu;
    table[LOOM_OP_SIGMOID].run = cuda_sigmoid;
    table[LOOM_OP_TANH].run = cuda_tanh;
    table[LOOM_OP_EXP].run = cuda_exp;
    table[LOOM_OP_LOG].run = cuda_log;
    table[LOOM_OP_SQRT].run = cuda_sqrt;
    table[LOOM_OP_RSQRT].run = cuda_rsqrt;
    table[LOOM_OP_ABS].run = cuda_abs;
    table[LOOM_OP_POW_SCALAR].run = cuda_pow_scalar;
    table[LOOM_OP_CLAMP].run = cuda_clamp;
    table[LOOM_OP_ACT_GRAD].run = cuda_act_grad;
}
