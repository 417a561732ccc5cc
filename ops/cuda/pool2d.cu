// CUDA kernels of 2-D pooling and its gradients (see ops/cuda/cuda.h for the contract; the meaning
// is ops/pool.c's).
//
// A thread per output element for the forward ops and per input element for the gradients, which
// gather: each input element adds, in double and in row-major order of the outputs, the outputs
// whose windows cover it (for the max, those whose first element reaching their max it is). The
// arithmetic and its order are the CPU kernel's (ops/cpu/pool2d.c), with no atomics: the same bits
// on every run. Where windows never overlap (strides at least the kernel, as in the 2x2 pooling of
// CNNs) the gradient takes a thread per output instead, which writes its own window's elements.
// Indices are 32-bit wherever they fit.
// defines: loom__cuda_register_pool2d
#include "ops/cuda/common.cuh"
#include "ops/shared/operands.h"

namespace {

constexpr int kThreads = 256;

// ---- kernels ------------------------------------------------------------------------------------

template <typename T> __device__ __forceinline__ bool isnan_(T v) { return v != v; }

// The geometry in the kernels' index type S (signed: windows start before the input under padding),
// 32-bit wherever every index of x and y fits.
template <typename S> struct geom {
    S h, w, p, q, kh, kw, sh, sw, ph, pw;
};

template <typename S> geom<S> geom_of(const loom__pool2d &g)
{
    return geom<S>{(S)g.h, (S)g.w, (S)g.p, (S)g.q, (S)g.kh, (S)g.kw, (S)g.sh, (S)g.sw, (S)g.ph, (S)g.pw};
}

// Output o's window: its plane's first input element *base and the input rows [*i0, *i1) and
// columns [*j0, *j1) it covers (loom__pool_window's rule).
template <typename U, typename S>
__device__ __forceinline__ void out_window(U o, const geom<S> &g, U *base, S *i0, S *i1, S *j0, S *j1)
{
    const U r = o / (U)g.q, pl = r / (U)g.p;
    int64_t lo, hi;
    loom__pool_window((int64_t)(r - pl * (U)g.p), g.kh, g.sh, g.ph, g.h, &lo, &hi);
    *i0 = (S)lo, *i1 = (S)hi;
    loom__pool_window((int64_t)(o - r * (U)g.q), g.kw, g.sw, g.pw, g.w, &lo, &hi);
    *j0 = (S)lo, *j1 = (S)hi;
    *base = pl * (U)g.h * (U)g.w;
}

// Output o: its window's first max (max) or its sum over kh kw.
template <typename T, typename U, typename S>
__global__ void pool_fwd(T *__restrict__ y, const T *__restrict__ x, geom<S> g, U n, bool max)
{
    const double area = (double)(g.kh * g.kw);
    for (U o = (U)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (U)gridDim.x * blockDim.x) {
        U base;
        S i0, i1, j0, j1;
        out_window(o, g, &base, &i0, &i1, &j0, &j1);
        const T *xp = x + base;
        T m = xp[i0 * g.w + j0];
        double s = 0;
        for (S i = i0; i < i1; i++)
            for (S j = j0; j < j1; j++) {
                const T v = xp[i * g.w + j];
                if (!max)
                    s += (double)v;
                else if (v > m || (isnan_(v) && !isnan_(m)))
                    m = v;
            }
        y[o] = max ? m : (T)(s / area);
    }
}

// 1 when (i, j) is the first element of output (p, q)'s window that reaches m.
template <typename T, typename S>
__device__ bool first_reach(const geom<S> &g, const T *xp, S p, S q, S i, S j, T m)
{
    int64_t i0, i1, j0, j1;
    loom__pool_window(p, g.kh, g.sh, g.ph, g.h, &i0, &i1);
    loom__pool_window(q, g.kw, g.sw, g.pw, g.w, &j0, &j1);
    for (S a = (S)i0; a <= i; a++)
        for (S b = (S)j0; b < (a == i ? j : (S)j1); b++)
            if (loom__pool_reaches((double)xp[a * g.w + b], (double)m))
                return false;
    return true;
}

// Input element e: gy of the outputs whose windows cover it (max: whose first max it is), over
// kh kw for the average. x and y are read for the max only.
template <typename T, typename U, typename S>
__global__ void pool_grad(T *__restrict__ gx, const T *__restrict__ x, const T *__restrict__ y,
                          const T *__restrict__ gy, geom<S> g, U n, bool max)
{
    const double area = max ? 1.0 : (double)(g.kh * g.kw);
    for (U e = (U)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (U)gridDim.x * blockDim.x) {
        const U r = e / (U)g.w, pl = r / (U)g.h;
        const S j = (S)(e - r * (U)g.w), i = (S)(r - pl * (U)g.h);
        const T *xp = max ? x + pl * (U)g.h * (U)g.w : nullptr, *yp = max ? y + pl * (U)g.p * (U)g.q : nullptr;
        const T *gp = gy + pl * (U)g.p * (U)g.q;
        int64_t p0, p1, q0, q1;
        loom__pool_covering(i, g.kh, g.sh, g.ph, g.p, &p0, &p1);
        loom__pool_covering(j, g.kw, g.sw, g.pw, g.q, &q0, &q1);
        double acc = 0;
        for (S p = (S)p0; p < (S)p1; p++)
            for (S q = (S)q0; q < (S)q1; q++)
                if (!max || (loom__pool_reaches((double)xp[i * g.w + j], (double)yp[p * g.q + q]) &&
                             first_reach(g, xp, p, q, i, j, yp[p * g.q + q])))
                    acc += (double)gp[p * g.q + q];
        gx[e] = (T)(acc / area);
    }
}

// The gradient where no two windows overlap (strides at least the kernel), a thread per output o:
// it writes its window, gy at the window's first max (max) or gy / (kh kw) everywhere (average),
// each computed as pool_grad's sum of one term, so the bits are the same. Elements no window covers
// are left as they are (zeroed before when there are any).
template <typename T, typename U, typename S>
__global__ void pool_grad_disjoint(T *__restrict__ gx, const T *__restrict__ x, const T *__restrict__ y,
                                   const T *__restrict__ gy, geom<S> g, U n, bool max)
{
    const double area = max ? 1.0 : (double)(g.kh * g.kw);
    for (U o = (U)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (U)gridDim.x * blockDim.x) {
        U base;
        S i0, i1, j0, j1;
        out_window(o, g, &base, &i0, &i1, &j0, &j1);
        const T v = (T)((0.0 + (double)gy[o]) / area), m = max ? y[o] : T(0);
        bool open = max; // the first max is still to come
        for (S i = i0; i < i1; i++)
            for (S j = j0; j < j1; j++) {
                const U e = base + (U)(i * g.w + j);
                if (!max)
                    gx[e] = v;
                else if (open && loom__pool_reaches((double)x[e], (double)m)) {
                    gx[e] = v;
                    open = false;
                } else
                    gx[e] = T(0);
            }
    }
}

// ---- launchers ----------------------------------------------------------------------------------

// Every pooling op: the sources in its order (ops/pool.c), every one of the output's dtype.
loom_status pool_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const bool max = t->op == LOOM_OP_MAX_POOL2D || t->op == LOOM_OP_MAX_POOL2D_GRAD;
    const bool fwd = t->op == LOOM_OP_MAX_POOL2D || t->op == LOOM_OP_AVG_POOL2D;
    const char *what = loom__op_def(t->op)->name;
    for (int i = 0; i < t->n_src; i++)
        if (src[i]->dtype != out->dtype)
            return loom__kfail(ctx, LOOM_ERR_DTYPE, "%s: operand %d is %s, the output %s", what, i + 1,
                               loom_dtype_name(src[i]->dtype), loom_dtype_name(out->dtype));
    // the pooled input x and the pooled output's shape: out or a source
    const loom__value *xv = fwd ? src[0] : out, *yv = fwd ? out : src[max ? 2 : 0];
    loom__pool2d g;
    loom_status s = loom__pool2d_plan(&g, t, xv, yv, ctx);
    if (s == LOOM_OK && max && !fwd && loom__cuda_dense_numel(src[1]) != loom__cuda_dense_numel(src[2]))
        s = loom__kfail(ctx, LOOM_ERR_SHAPE, "%s: y and gout differ in size (internal error)", what);
    const int64_t n = loom__cuda_dense_numel(out);
    if (s != LOOM_OK || n == 0)
        return s;
    // windows that never overlap: a thread per output writing its window; the input is zeroed first
    // where some of it lies outside every window (gaps between windows, or past the last one)
    const bool disjoint = !fwd && g.sh >= g.kh && g.sw >= g.kw;
    const bool gaps = disjoint && (g.sh > g.kh || g.sw > g.kw || (g.p - 1) * g.sh - g.ph + g.kh < g.h ||
                                   (g.q - 1) * g.sw - g.pw + g.kw < g.w);
    const int64_t nx = g.planes * g.h * g.w, ny = g.planes * g.p * g.q;
    if (gaps && (s = loom__cuda_memset(ctx, out->data, 0, (size_t)nx * loom_dtype_size(out->dtype), what)) != LOOM_OK)
        return s;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        return loom__cuda_with_index(nx > ny ? nx : ny, [&](auto u) {
            using U = decltype(u);
            using S = std::make_signed_t<U>;
            const geom<S> gs = geom_of<S>(g);
            const T *x = max && !fwd ? (const T *)src[0]->data : nullptr, *y = max && !fwd ? (const T *)src[1]->data : nullptr;
            const T *gy = fwd ? nullptr : (const T *)src[max ? 2 : 0]->data;
            const int64_t threads = fwd || disjoint ? ny : nx;
            const unsigned grid = loom__cuda_grid(threads, kThreads);
            cudaStream_t st = loom__cuda_stream(ctx);
            if (fwd)
                pool_fwd<T, U, S><<<grid, kThreads, 0, st>>>((T *)out->data, (const T *)src[0]->data, gs, (U)n, max);
            else if (disjoint)
                pool_grad_disjoint<T, U, S><<<grid, kThreads, 0, st>>>((T *)out->data, x, y, gy, gs, (U)ny, max);
            else
                pool_grad<T, U, S><<<grid, kThreads, 0, st>>>((T *)out->data, x, y, gy, gs, (U)n, max);
            LOOM__CUDA_CHECK_LAUNCH(ctx, what);
            return LOOM_OK;
        });
    });
}

} // namespace

extern "C" void loom__cuda_register_pool2d(loom__cuda_op *table)
{
    for (loom_op op : {LOOM_OP_MAX_POOL2D, LOOM_OP_AVG_POOL2D, LOOM_OP_MAX_POOL2D_GRAD, LOOM_OP_AVG_POOL2D_GRAD})
        table[op].run = pool_run;
}
