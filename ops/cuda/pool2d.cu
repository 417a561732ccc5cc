// CUDA kernels of 2-D pooling and its gradients (see ops/cuda/cuda.h for the contract; the meaning
// is ops/pool.c's).
//
// A thread per output element for the forward ops and per input element for the gradients, which
// gather: each input element adds, in double and in row-major order of the outputs, the outputs
// whose windows cover it (for the max, those whose first element reaching their max it is). The
// arithmetic and its order are the CPU kernel's (ops/cpu/pool2d.c), with no atomics: the same bits
// on every run.
// defines: loom__cuda_register_pool2d
#include "ops/cuda/common.cuh"
#include "ops/shared/operands.h"

namespace {

constexpr int kThreads = 256;

// ---- kernels ------------------------------------------------------------------------------------

template <typename T> __device__ __forceinline__ bool isnan_(T v) { return v != v; }

// Output o: its window's first max (max) or its sum over kh kw.
template <typename T>
__global__ void pool_fwd(T *__restrict__ y, const T *__restrict__ x, loom__pool2d g, int64_t n, bool max)
{
    const double area = (double)(g.kh * g.kw);
    for (int64_t o = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; o < n; o += (int64_t)gridDim.x * blockDim.x) {
        const int64_t q = o % g.q, p = o / g.q % g.p, pl = o / (g.p * g.q);
        const T *xp = x + pl * g.h * g.w;
        int64_t i0, i1, j0, j1;
        loom__pool_window(p, g.kh, g.sh, g.ph, g.h, &i0, &i1);
        loom__pool_window(q, g.kw, g.sw, g.pw, g.w, &j0, &j1);
        T m = xp[i0 * g.w + j0];
        double s = 0;
        for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++) {
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
template <typename T>
__device__ bool first_reach(const loom__pool2d &g, const T *xp, int64_t p, int64_t q, int64_t i, int64_t j, T m)
{
    int64_t i0, i1, j0, j1;
    loom__pool_window(p, g.kh, g.sh, g.ph, g.h, &i0, &i1);
    loom__pool_window(q, g.kw, g.sw, g.pw, g.w, &j0, &j1);
    for (int64_t a = i0; a <= i; a++)
        for (int64_t b = j0; b < (a == i ? j : j1); b++)
            if (loom__pool_reaches((double)xp[a * g.w + b], (double)m))
                return false;
    return true;
}

// Input element e: gy of the outputs whose windows cover it (max: whose first max it is), over
// kh kw for the average. x and y are read for the max only.
template <typename T>
__global__ void pool_grad(T *__restrict__ gx, const T *__restrict__ x, const T *__restrict__ y,
                          const T *__restrict__ gy, loom__pool2d g, int64_t n, bool max)
{
    const double area = max ? 1.0 : (double)(g.kh * g.kw);
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
        const int64_t j = e % g.w, i = e / g.w % g.h, pl = e / (g.h * g.w);
        const T *xp = max ? x + pl * g.h * g.w : nullptr, *yp = max ? y + pl * g.p * g.q : nullptr;
        const T *gp = gy + pl * g.p * g.q;
        int64_t p0, p1, q0, q1;
        loom__pool_covering(i, g.kh, g.sh, g.ph, g.p, &p0, &p1);
        loom__pool_covering(j, g.kw, g.sw, g.pw, g.q, &q0, &q1);
        double acc = 0;
        for (int64_t p = p0; p < p1; p++)
            for (int64_t q = q0; q < q1; q++)
                if (!max || (loom__pool_reaches((double)xp[i * g.w + j], (double)yp[p * g.q + q]) &&
                             first_reach(g, xp, p, q, i, j, yp[p * g.q + q])))
                    acc += (double)gp[p * g.q + q];
        gx[e] = (T)(acc / area);
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
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        const unsigned grid = loom__cuda_grid(n, kThreads);
        cudaStream_t st = loom__cuda_stream(ctx);
        if (fwd)
            pool_fwd<T><<<grid, kThreads, 0, st>>>((T *)out->data, (const T *)src[0]->data, g, n, max);
        else if (max)
            pool_grad<T><<<grid, kThreads, 0, st>>>((T *)out->data, (const T *)src[0]->data, (const T *)src[1]->data,
                                                    (const T *)src[2]->data, g, n, true);
        else
            pool_grad<T><<<grid, kThreads, 0, st>>>((T *)out->data, nullptr, nullptr, (const T *)src[0]->data, g, n,
                                                    false);
        LOOM__CUDA_CHECK_LAUNCH(ctx, what);
        return LOOM_OK;
    });
}

} // namespace

extern "C" void loom__cuda_register_pool2d(loom__cuda_op *table)
{
    for (loom_op op : {LOOM_OP_MAX_POOL2D, LOOM_OP_AVG_POOL2D, LOOM_OP_MAX_POOL2D_GRAD, LOOM_OP_AVG_POOL2D_GRAD})
        table[op].run = pool_run;
}
