// CUDA kernels of the binary ops (see ops/cuda/cuda.h for the contract): add, sub, mul, div,
// minimum, maximum with NumPy broadcasting, scale and bias_add; and the three-operand where and
// minmax_grad.
//
// Broadcasting takes the plan every device shares (loom__bcast_plan, ops/shared/operands.h), so the
// common shapes collapse to one or two dims. Same-shape
// operands (and an operand that is one scalar) take a flat, vectorised loop; anything else maps
// each output element to its operands' offsets with divisions by the dims, done by multiplication
// (magic numbers) when the tensor fits 31-bit indices. bias_add is the broadcast x [R, C] + b [C].
// The three-operand ops take the plan of three (loom__ternary_plan, with the CPU's checks) and the
// general walk only, which for same-shape operands is one flat dim.
// defines: loom__cuda_register_binary
#include "ops/cuda/flat.cuh"
#include "ops/shared/operands.h"

#include <limits.h>

namespace {

// ---- kernels ------------------------------------------------------------------------------------

struct op_add {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
struct op_sub {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a - b; }
};
struct op_mul {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a * b; }
};
struct op_div {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return a / b; }
};
// minimum and maximum by the rule the CPU shares (ops/shared/operands.h).
struct op_minimum {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return loom__minmax_picks(a, b, 0) ? a : b; }
};
struct op_maximum {
    template <typename T> __device__ __forceinline__ T operator()(T a, T b) const { return loom__minmax_picks(a, b, 1) ? a : b; }
};
// where's map of (a, b, cond), mode k as ops/binary.c says.
struct op_where {
    long long k;
    template <typename T> __device__ __forceinline__ T operator()(T x, T w, uint8_t z) const
    {
        return k == 0 ? (z ? x : w) : (z != 0) == (k == 1) ? x : T(0);
    }
};
// minmax_grad's map of (a, b, gout): gout times the share of operand k & 1 of max (k & 2) or min.
struct op_minmax_grad {
    int k;
    template <typename T> __device__ __forceinline__ T operator()(T x, T w, T z) const
    {
        const double share = k & 1 ? loom__minmax_share(w, x, 0, k >> 1) : loom__minmax_share(x, w, 1, k >> 1);
        return z * (T)share;
    }
};
// scale's map: y = x * s (loom__cuda_map_kernel's f).
struct op_scale {
    template <typename T> __device__ __forceinline__ T operator()(T x, T s) const { return x * s; }
};

// Unsigned division by a fixed d by a multiply-high and a shift (d and the dividends below 2^31),
// as in Granlund and Montgomery: one integer division per element would cost more than the loads.
struct divmod32 {
    uint32_t d, m, s;
    __device__ __forceinline__ uint32_t div(uint32_t n) const { return (__umulhi(n, m) + n) >> s; }
};

static divmod32 make_divmod32(uint32_t d)
{
    divmod32 r;
    r.d = d;
    uint32_t s = 0;
    while (s < 31 && (UINT32_C(1) << s) < d)
        s++;
    r.s = s;
    r.m = (uint32_t)((((uint64_t)1 << 32) * (((uint64_t)1 << s) - d)) / d + 1);
    return r;
}

// The broadcast plan every device shares (ops/shared/operands.h), with the divisors of its dims for
// 32-bit index arithmetic; passed by value (kernel parameter space).
struct bplan : loom__bcast {
    divmod32 dm[LOOM_MAX_DIMS];
};

// y = a op b elementwise, both operands of y's size, or one of them a single value (SA or SB 0).
template <typename T, int V, int SA, int SB, typename F>
__global__ void flat_kernel(T *y, const T *a, const T *b, int64_t n, F f)
{
    const loom__cuda_flat<V> r(n);
    const T a0 = SA ? T(0) : a[0], b0 = SB ? T(0) : b[0];
    for (int64_t k = r.first; k < r.nv; k += r.stride) {
        loom__cuda_vec<T, V> va, vb, vy;
        if (SA)
            va = loom__cuda_vload<V>(a, k);
        if (SB)
            vb = loom__cuda_vload<V>(b, k);
#pragma unroll
        for (int j = 0; j < V; j++)
            vy.v[j] = f(SA ? va.v[j] : a0, SB ? vb.v[j] : b0);
        loom__cuda_vstore<V>(y, k, vy);
    }
    for (int64_t i = r.tail(); i < n; i += r.stride)
        y[i] = f(SA ? a[i] : a0, SB ? b[i] : b0);
}

// The offsets into a, b and c of output element i: the output is contiguous, so they are found by
// peeling dims off i from the innermost outwards, with 32-bit indices by multiplications (p.dm),
// else by divisions. A kernel of two operands leaves oc unused, and its arithmetic goes with it.
__device__ __forceinline__ void offsets32(uint32_t i, const bplan &p, uint32_t &oa, uint32_t &ob, uint32_t &oc)
{
    uint32_t rest = i;
    oa = ob = oc = 0;
#pragma unroll
    for (int d = LOOM_MAX_DIMS - 1; d >= 1; d--) {
        if (d >= p.nd)
            continue;
        const uint32_t q = p.dm[d].div(rest), r = rest - q * p.dm[d].d;
        oa += r * (uint32_t)p.sa[d];
        ob += r * (uint32_t)p.sb[d];
        oc += r * (uint32_t)p.sc[d];
        rest = q;
    }
    oa += rest * (uint32_t)p.sa[0];
    ob += rest * (uint32_t)p.sb[0];
    oc += rest * (uint32_t)p.sc[0];
}

__device__ __forceinline__ void offsets64(int64_t i, const bplan &p, int64_t &oa, int64_t &ob, int64_t &oc)
{
    int64_t rest = i;
    oa = ob = oc = 0;
    for (int d = p.nd - 1; d >= 1; d--) {
        const int64_t q = rest / p.n[d], r = rest - q * p.n[d];
        oa += r * p.sa[d];
        ob += r * p.sb[d];
        oc += r * p.sc[d];
        rest = q;
    }
    oa += rest * p.sa[0];
    ob += rest * p.sb[0];
    oc += rest * p.sc[0];
}

// General broadcast with 32-bit indices.
template <typename T, typename F> __global__ void bcast32_kernel(T *y, const T *a, const T *b, bplan p, F f)
{
    const uint32_t total = (uint32_t)p.total;
    const uint32_t stride = gridDim.x * blockDim.x;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        uint32_t oa, ob, oc;
        offsets32(i, p, oa, ob, oc);
        y[i] = f(a[oa], b[ob]);
    }
}

// The same with 64-bit indices, for tensors of 2^31 elements or more.
template <typename T, typename F> __global__ void bcast64_kernel(T *y, const T *a, const T *b, bplan p, F f)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.total; i += stride) {
        int64_t oa, ob, oc;
        offsets64(i, p, oa, ob, oc);
        y[i] = f(a[oa], b[ob]);
    }
}

// y = f(a, b, c) with three operands.
template <typename T, typename C, typename F>
__global__ void ternary32_kernel(T *y, const T *a, const T *b, const C *c, bplan p, F f)
{
    const uint32_t total = (uint32_t)p.total;
    const uint32_t stride = gridDim.x * blockDim.x;
    for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < total; i += stride) {
        uint32_t oa, ob, oc;
        offsets32(i, p, oa, ob, oc);
        y[i] = f(a[oa], b[ob], c[oc]);
    }
}

template <typename T, typename C, typename F>
__global__ void ternary64_kernel(T *y, const T *a, const T *b, const C *c, bplan p, F f)
{
    const int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < p.total; i += stride) {
        int64_t oa, ob, oc;
        offsets64(i, p, oa, ob, oc);
        y[i] = f(a[oa], b[ob], c[oc]);
    }
}

} // namespace

// ---- launchers ----------------------------------------------------------------------------------

namespace {

constexpr int kThreads = 256;

template <typename T, typename F>
static loom_status launch_plan(const bplan &p, T *y, const T *a, const T *b, F f, const loom__kctx *ctx, const char *what)
{
    if (p.total == 0)
        return LOOM_OK;
    cudaStream_t st = loom__cuda_stream(ctx);
    if (p.nd == 1 && (p.sa[0] | p.sb[0]) != 0) {
        // one flat loop: both operands walk with y, or one of them is a single value
        const bool sa = p.sa[0] != 0, sb = p.sb[0] != 0;
        const bool vec =
            loom__cuda_aligned(y, 16) && (!sa || loom__cuda_aligned(a, 16)) && (!sb || loom__cuda_aligned(b, 16));
        const int64_t n = p.total;
        loom__cuda_launch_flat<T>(n, vec, kThreads, [&](auto v, unsigned grid) {
            constexpr int V = decltype(v)::value;
            if (sa && sb)
                flat_kernel<T, V, 1, 1><<<grid, kThreads, 0, st>>>(y, a, b, n, f);
            else if (sa)
                flat_kernel<T, V, 1, 0><<<grid, kThreads, 0, st>>>(y, a, b, n, f);
            else
                flat_kernel<T, V, 0, 1><<<grid, kThreads, 0, st>>>(y, a, b, n, f);
        });
    } else if (p.nd == 1) {
        // a single element on both sides (every dim 1, or scalars): a broadcast of one value
        flat_kernel<T, 1, 0, 0><<<loom__cuda_grid(p.total, kThreads), kThreads, 0, st>>>(y, a, b, p.total, f);
    } else if (p.total <= INT32_MAX) {
        bplan q = p;
        for (int d = 0; d < q.nd; d++)
            q.dm[d] = make_divmod32((uint32_t)q.n[d]);
        bcast32_kernel<T><<<loom__cuda_grid(p.total, kThreads), kThreads, 0, st>>>(y, a, b, q, f);
    } else {
        bcast64_kernel<T><<<loom__cuda_grid(p.total, kThreads), kThreads, 0, st>>>(y, a, b, p, f);
    }
    LOOM__CUDA_CHECK_LAUNCH(ctx, what);
    return LOOM_OK;
}

template <typename F>
static loom_status binary(const char *what, loom__value *out, loom__value *const *src, const loom__kctx *ctx, F f)
{
    const loom__value *a = src[0], *b = src[1];
    if (a->dtype != out->dtype || b->dtype != out->dtype)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "%s: operands are %s and %s, the output %s", what, loom_dtype_name(a->dtype),
                           loom_dtype_name(b->dtype), loom_dtype_name(out->dtype));
    bplan p;
    loom_status s = loom__bcast_plan(&p, out, a, b, ctx);
    if (s != LOOM_OK || p.total == 0)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        return launch_plan<T>(p, (T *)out->data, (const T *)a->data, (const T *)b->data, f, ctx, what);
    });
}

// A three-operand op t (where, minmax_grad) on the plan's walk; c is cond (u8) or gout (T).
template <typename C, typename F>
static loom_status ternary(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx, F f,
                           const char *what)
{
    bplan p;
    loom_status s = loom__ternary_plan(&p, t, out, src, ctx);
    if (s != LOOM_OK || p.total == 0)
        return s;
    const int where = t->op == LOOM_OP_WHERE;
    const loom__value *a = src[where], *b = src[where && t->n_src == 2 ? 1 : where + 1], *c = src[where ? 0 : 2];
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        using CT = typename std::conditional<std::is_same<C, void>::value, T, C>::type;
        T *y = (T *)out->data;
        const T *ad = (const T *)a->data, *bd = (const T *)b->data;
        const CT *cd = (const CT *)c->data;
        cudaStream_t st = loom__cuda_stream(ctx);
        if (p.total <= INT32_MAX) {
            for (int d = 0; d < p.nd; d++)
                p.dm[d] = make_divmod32((uint32_t)p.n[d]);
            ternary32_kernel<T><<<loom__cuda_grid(p.total, kThreads), kThreads, 0, st>>>(y, ad, bd, cd, p, f);
        } else {
            ternary64_kernel<T><<<loom__cuda_grid(p.total, kThreads), kThreads, 0, st>>>(y, ad, bd, cd, p, f);
        }
        LOOM__CUDA_CHECK_LAUNCH(ctx, what);
        return LOOM_OK;
    });
}

} // namespace

// A broadcasting binary op of map F (add, sub, mul, div, minimum, maximum), named by the op's name.
template <typename F>
static loom_status cuda_binary(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return binary(loom__op_def(t->op)->name, out, src, ctx, F());
}

static loom_status cuda_where(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return ternary<uint8_t>(t, out, src, ctx, op_where{(long long)t->a.i[0]}, "where");
}

// c is gout, of the output's type (void: T).
static loom_status cuda_minmax_grad(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    return ternary<void>(t, out, src, ctx, op_minmax_grad{(int)t->a.i[0]}, "minmax_grad");
}

// The factor is rounded to T first, as on the CPU, so f32 results match it bit for bit.
static loom_status cuda_scale(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    if (loom__numel(out) == 0)
        return LOOM_OK;
    return loom__cuda_map(ctx, out, src[0], t->a.f[0], op_scale(), kThreads, "scale");
}

// x [..., C] + b [C]: the broadcast plan of x with b aligned to its last axis ([R, C] + [C] after
// merging), so it shares add's kernels.
static loom_status cuda_bias_add(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    (void)t;
    const loom__value *x = src[0], *b = src[1];
    const int64_t c = b->ndim == 1 ? b->shape[0] : -1;
    if (x->ndim < 1 || c != x->shape[x->ndim - 1])
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "bias of %lld elements does not match the last dim of x",
                           (long long)loom__numel(b));
    return binary("bias_add", out, src, ctx, op_add());
}

extern "C" void loom__cuda_register_binary(loom__cuda_op *table)
{
    table[LOOM_OP_ADD].run = cuda_binary<op_add>;
    table[LOOM_OP_SUB].run = cuda_binary<op_sub>;
    table[LOOM_OP_MUL].run = cuda_binary<op_mul>;
    table[LOOM_OP_DIV].run = cuda_binary<op_div>;
    table[LOOM_OP_MINIMUM].run = cuda_binary<op_minimum>;
    table[LOOM_OP_MAXIMUM].run = cuda_binary<op_maximum>;
    table[LOOM_OP_WHERE].run = cuda_where;
    table[LOOM_OP_MINMAX_GRAD].run = cuda_minmax_grad;
    table[LOOM_OP_SCALE].run = cuda_scale;
    table[LOOM_OP_BIAS_ADD].run = cuda_bias_add;
}
