// CUDA kernels of the sparse ops (see ops/cuda/cuda.h for the contract): spmm (CSR x dense, and
// its transpose) and degree.
//
// spmm is the hot op of GCN training: every layer is A (X W), and its gradient A^T G. The kernel
// is row-parallel over the CSR: a group of G lanes (1 to 32, the fewest that cover a feature row
// in vectors) computes one output row. The group loads G entries (column, value) of its row at a
// time, one per lane, coalesced, and passes them round by shuffles; every lane then gathers its
// part of each named row of x as float4 / float2 / double2 vectors when the row width and both
// addresses allow. Several entries' rows are loaded before any is added, so each lane keeps a few
// independent loads in flight: the kernel is bound by those gathers (E * F values), which is what
// an SpMM must read. Feature rows wider than 32 lanes x 4 vectors take several passes over the row.
// Each output row is one group's sum in entry order, so the product is deterministic.
//
// The transpose A^T x scatters: row i of A adds x's row i, scaled, into the rows its columns name.
// For small matrices that is float atomics (red.global.add), fast but in any order. In deterministic
// mode, and from SORTED_FROM entries on, the transpose is built in the workspace instead (faster
// there than the atomics' contention): a stable radix sort (CCCL's cub) of the entries
// by column, carrying their positions, gives A^T in CSR form with each row's entries in A's row
// order, and the row-parallel kernel runs on it. Columns outside [0, ncols) (loom_csr_validate
// keeps them out of fed matrices) are recorded in the error record and skipped.
// defines: loom__cuda_register_sparse
#include "ops/cuda/sort.cuh"
#include "ops/shared/operands.h"

// Entries from which the transposed product sorts even when atomics are allowed (see spmm_run).
constexpr int64_t SORTED_FROM = INT64_C(1) << 20;

namespace {

constexpr int BLOCK = 256;

// ---- kernels ------------------------------------------------------------------------------------

template <typename T, int V> struct vec;
template <> struct vec<float, 1> {
    using type = float;
};
template <> struct vec<float, 2> {
    using type = float2;
};
template <> struct vec<float, 4> {
    using type = float4;
};
template <> struct vec<double, 1> {
    using type = double;
};
template <> struct vec<double, 2> {
    using type = double2;
};

// a += s * v, componentwise.
__device__ __forceinline__ void fma_v(float &a, float s, float v) { a = fmaf(s, v, a); }
__device__ __forceinline__ void fma_v(float2 &a, float s, float2 v)
{
    a.x = fmaf(s, v.x, a.x);
    a.y = fmaf(s, v.y, a.y);
}
__device__ __forceinline__ void fma_v(float4 &a, float s, float4 v)
{
    a.x = fmaf(s, v.x, a.x);
    a.y = fmaf(s, v.y, a.y);
    a.z = fmaf(s, v.z, a.z);
    a.w = fmaf(s, v.w, a.w);
}
__device__ __forceinline__ void fma_v(double &a, double s, double v) { a = fma(s, v, a); }
__device__ __forceinline__ void fma_v(double2 &a, double s, double2 v)
{
    a.x = fma(s, v.x, a.x);
    a.y = fma(s, v.y, a.y);
}

// y[0 .. V) += s * v by atomics (the result unused: red.global.add).
__device__ __forceinline__ void red_v(float *y, float s, float v) { atomicAdd(y, s * v); }
__device__ __forceinline__ void red_v(float *y, float s, float2 v)
{
    atomicAdd(y, s * v.x);
    atomicAdd(y + 1, s * v.y);
}
__device__ __forceinline__ void red_v(float *y, float s, float4 v)
{
    atomicAdd(y, s * v.x);
    atomicAdd(y + 1, s * v.y);
    atomicAdd(y + 2, s * v.z);
    atomicAdd(y + 3, s * v.w);
}
__device__ __forceinline__ void red_v(double *y, double s, double v) { atomicAdd(y, s * v); }
__device__ __forceinline__ void red_v(double *y, double s, double2 v)
{
    atomicAdd(y, s * v.x);
    atomicAdd(y + 1, s * v.y);
}

// y [nrows, fv] = A x, x [ncols, fv], in vectors of V values. Group g computes rows g, g + groups,
// ...; lane l holds vectors fb + l + q G (q < NV) of the pass starting at vector fb. U entries are
// gathered before they are added: the loads in flight per lane.
template <typename T, int V, int G, int NV>
__global__ void __launch_bounds__(BLOCK)
    spmm_rows(const int32_t *__restrict__ rowptr, const int32_t *__restrict__ col, const T *__restrict__ val,
              const typename vec<T, V>::type *__restrict__ x, typename vec<T, V>::type *__restrict__ y, int64_t nrows,
              int64_t ncols, int64_t fv, loom__cuda_err *err, int tag)
{
    using VT = typename vec<T, V>::type;
    constexpr int U = G == 1 ? 4 : (8 / NV < G ? 8 / NV : G); // divides G, so j + u below stays under G
    const int lane = threadIdx.x % G;
    const unsigned mask = loom__cuda_group_mask<G>();
    const int64_t groups = (int64_t)gridDim.x * (BLOCK / G);
    for (int64_t row = ((int64_t)blockIdx.x * BLOCK + threadIdx.x) / G; row < nrows; row += groups) {
        const int32_t start = rowptr[row], end = rowptr[row + 1];
        for (int64_t fb = 0; fb < fv; fb += (int64_t)G * NV) {
            VT acc[NV];
#pragma unroll
            for (int q = 0; q < NV; q++)
                acc[q] = VT{};
            if constexpr (G == 1) { // a thread per row (fv == 1): it reads its entries itself
                for (int32_t k0 = start; k0 < end; k0 += U) {
                    int32_t c[U];
                    T v[U];
                    VT xv[U];
#pragma unroll
                    for (int u = 0; u < U; u++) {
                        const bool in = k0 + u < end;
                        c[u] = in ? col[k0 + u] : -1;
                        v[u] = in ? val[k0 + u] : T(0);
                        if (in && (c[u] < 0 || c[u] >= ncols)) {
                            loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, c[u], ncols);
                            c[u] = -1;
                        }
                    }
#pragma unroll
                    for (int u = 0; u < U; u++)
                        xv[u] = c[u] >= 0 ? __ldg(x + (int64_t)c[u] * fv) : VT{};
#pragma unroll
                    for (int u = 0; u < U; u++)
                        if (c[u] >= 0)
                            fma_v(acc[0], v[u], xv[u]);
                }
            } else {
                for (int32_t k0 = start; k0 < end; k0 += G) {
                    const int32_t k = k0 + lane;
                    int32_t c = -1;
                    T v = 0;
                    if (k < end) {
                        c = col[k];
                        v = val[k];
                        if (c < 0 || c >= ncols) {
                            loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, c, ncols);
                            c = -1;
                        }
                    }
                    const int cnt = end - k0 < G ? end - k0 : G;
                    for (int j = 0; j < cnt; j += U) {
                        int32_t cj[U];
                        T vj[U];
                        VT xv[U][NV];
#pragma unroll
                        for (int u = 0; u < U; u++) {
                            cj[u] = __shfl_sync(mask, c, j + u, G);
                            vj[u] = __shfl_sync(mask, v, j + u, G);
                        }
#pragma unroll
                        for (int u = 0; u < U; u++)
#pragma unroll
                            for (int q = 0; q < NV; q++) {
                                const int64_t f = fb + lane + q * G;
                                xv[u][q] = j + u < cnt && cj[u] >= 0 && f < fv ? __ldg(x + (int64_t)cj[u] * fv + f) : VT{};
                            }
#pragma unroll
                        for (int u = 0; u < U; u++)
                            if (j + u < cnt && cj[u] >= 0)
#pragma unroll
                                for (int q = 0; q < NV; q++)
                                    fma_v(acc[q], vj[u], xv[u][q]);
                    }
                }
            }
#pragma unroll
            for (int q = 0; q < NV; q++) {
                const int64_t f = fb + lane + q * G;
                if (f < fv)
                    y[row * fv + f] = acc[q];
            }
        }
    }
}

// y [ncols, fv] += A^T x, x [nrows, fv]: the group of row i holds x's row i in registers and adds
// it, scaled by each entry, into the row that entry's column names. y starts at zero.
template <typename T, int V, int G, int NV>
__global__ void __launch_bounds__(BLOCK)
    spmm_t_atomic(const int32_t *__restrict__ rowptr, const int32_t *__restrict__ col, const T *__restrict__ val,
                  const typename vec<T, V>::type *__restrict__ x, T *__restrict__ y, int64_t nrows, int64_t ncols,
                  int64_t fv, loom__cuda_err *err, int tag)
{
    using VT = typename vec<T, V>::type;
    const int lane = threadIdx.x % G;
    const unsigned mask = loom__cuda_group_mask<G>();
    const int64_t groups = (int64_t)gridDim.x * (BLOCK / G);
    for (int64_t row = ((int64_t)blockIdx.x * BLOCK + threadIdx.x) / G; row < nrows; row += groups) {
        const int32_t start = rowptr[row], end = rowptr[row + 1];
        for (int64_t fb = 0; fb < fv && start < end; fb += (int64_t)G * NV) {
            VT xi[NV];
#pragma unroll
            for (int q = 0; q < NV; q++) {
                const int64_t f = fb + lane + q * G;
                xi[q] = f < fv ? __ldg(x + row * fv + f) : VT{};
            }
            for (int32_t k0 = start; k0 < end; k0 += G) {
                const int32_t k = k0 + lane;
                int32_t c = -1;
                T v = 0;
                if (k < end) {
                    c = col[k];
                    v = val[k];
                    if (c < 0 || c >= ncols) {
                        if (fb == 0)
                            loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, c, ncols);
                        c = -1;
                    }
                }
                const int cnt = end - k0 < G ? end - k0 : G;
                for (int j = 0; j < cnt; j++) {
                    const int32_t cj = __shfl_sync(mask, c, j, G);
                    const T vj = __shfl_sync(mask, v, j, G);
                    if (cj < 0)
                        continue;
#pragma unroll
                    for (int q = 0; q < NV; q++) {
                        const int64_t f = fb + lane + q * G;
                        if (f < fv)
                            red_v(y + ((int64_t)cj * fv + f) * V, vj, xi[q]);
                    }
                }
            }
        }
    }
}

// The deterministic transpose, step 1: for entry k of row i, rowid[k] = i, key[k] = its column (or
// ncols, sorted last and dropped, for a bad one) and pos[k] = k. A warp per row.
__global__ void csr_entries(const int32_t *__restrict__ rowptr, const int32_t *__restrict__ col, int64_t nrows,
                            int64_t ncols, uint32_t *__restrict__ rowid, uint32_t *__restrict__ key,
                            uint32_t *__restrict__ pos, loom__cuda_err *err, int tag)
{
    const int lane = threadIdx.x % 32;
    const int64_t warps = (int64_t)gridDim.x * (BLOCK / 32);
    for (int64_t row = ((int64_t)blockIdx.x * BLOCK + threadIdx.x) / 32; row < nrows; row += warps) {
        const int32_t end = rowptr[row + 1];
        for (int32_t k = rowptr[row] + lane; k < end; k += 32) {
            const int32_t c = col[k];
            const int bad = c < 0 || c >= ncols;
            if (bad)
                loom__cuda_record_err(err, LOOM__CUDA_ERR_INDEX, tag, c, ncols);
            rowid[k] = (uint32_t)row;
            key[k] = bad ? (uint32_t)ncols : (uint32_t)c;
            pos[k] = (uint32_t)k;
        }
    }
}

// Step 3 (after the sort): entry p of A^T is A's entry order[p], in row rowid[order[p]].
template <typename T>
__global__ void csc_gather(const uint32_t *__restrict__ order, const uint32_t *__restrict__ rowid,
                           const T *__restrict__ val, int64_t nnz, int32_t *__restrict__ t_col, T *__restrict__ t_val)
{
    for (int64_t p = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; p < nnz; p += (int64_t)gridDim.x * blockDim.x) {
        const uint32_t k = order[p];
        t_col[p] = (int32_t)rowid[k];
        t_val[p] = val[k];
    }
}

// (row sum + self loop) ^ power, a warp per row; the sum in double as on the CPU.
template <typename T>
__global__ void degree_kernel(const int32_t *__restrict__ rowptr, const T *__restrict__ val, T *__restrict__ y,
                              int64_t nrows, double self, double power)
{
    const int lane = threadIdx.x % 32;
    const int64_t warps = (int64_t)gridDim.x * (BLOCK / 32);
    for (int64_t row = ((int64_t)blockIdx.x * BLOCK + threadIdx.x) / 32; row < nrows; row += warps) {
        const int32_t end = rowptr[row + 1];
        double d = 0;
        for (int32_t k = rowptr[row] + lane; k < end; k += 32)
            d += (double)val[k];
        d = loom__cuda_group_reduce<32>(d, 0xffffffffu, [](double a, double b) { return a + b; });
        if (lane == 0) {
            d += self;
            y[row] = d == 0 ? T(0) : (T)pow(d, power); // an isolated node: 0, not inf
        }
    }
}

// ---- launchers ----------------------------------------------------------------------------------

// Values per vector: 16-byte loads where the width and both addresses allow, else 8, else 1 (the
// widest unit dividing the row's bytes and both addresses, in values, at least one).
template <typename T> int pick_vector(int64_t f, const void *x, const void *y)
{
    const int u = loom__cuda_unit_of((uint64_t)f * sizeof(T) | (uint64_t)(uintptr_t)x | (uint64_t)(uintptr_t)y);
    return u > (int)sizeof(T) ? u / (int)sizeof(T) : 1;
}

enum kind { ROWS, ATOMIC_T };

template <typename T, int V, int G, int NV>
loom_status launch(const loom__kctx *ctx, kind k, const int32_t *rowptr, const int32_t *col, const T *val, const void *x,
                   void *y, int64_t nrows, int64_t ncols, int64_t fv)
{
    using VT = typename vec<T, V>::type;
    const unsigned grid = loom__cuda_grid(nrows * G, BLOCK, 1u << 22);
    cudaStream_t st = loom__cuda_stream(ctx);
    if (k == ROWS)
        spmm_rows<T, V, G, NV><<<grid, BLOCK, 0, st>>>(rowptr, col, val, (const VT *)x, (VT *)y, nrows, ncols, fv,
                                                       ctx->cuda->err, ctx->cuda->tag);
    else
        spmm_t_atomic<T, V, G, NV><<<grid, BLOCK, 0, st>>>(rowptr, col, val, (const VT *)x, (T *)y, nrows, ncols, fv,
                                                           ctx->cuda->err, ctx->cuda->tag);
    LOOM__CUDA_CHECK_LAUNCH(ctx, k == ROWS ? "spmm" : "spmm (transposed, atomic)");
    return LOOM_OK;
}

// The group width: the fewest lanes (a power of 2, at most 32) that hold a row of fv vectors,
// and vectors per lane beyond 32 (at most 4 per pass).
template <typename T, int V>
loom_status launch_v(const loom__kctx *ctx, kind k, const int32_t *rowptr, const int32_t *col, const T *val,
                     const void *x, void *y, int64_t nrows, int64_t ncols, int64_t fv)
{
    if (fv > 32) {
        const int64_t nv = (fv + 31) / 32;
        switch (nv > 4 ? 4 : nv) {
        case 2: return launch<T, V, 32, 2>(ctx, k, rowptr, col, val, x, y, nrows, ncols, fv);
        case 3: return launch<T, V, 32, 3>(ctx, k, rowptr, col, val, x, y, nrows, ncols, fv);
        default: return launch<T, V, 32, 4>(ctx, k, rowptr, col, val, x, y, nrows, ncols, fv);
        }
    }
    return loom__cuda_with_pow2<1, 32>(fv, [&](auto g) {
        return launch<T, V, decltype(g)::value, 1>(ctx, k, rowptr, col, val, x, y, nrows, ncols, fv);
    });
}

// k over a CSR [nrows, ncols] with x and y rows of f values.
template <typename T>
loom_status launch_f(const loom__kctx *ctx, kind k, const int32_t *rowptr, const int32_t *col, const T *val,
                     const void *x, void *y, int64_t nrows, int64_t ncols, int64_t f)
{
    const int v = pick_vector<T>(f, x, y);
    if constexpr (sizeof(T) == 4)
        if (v == 4)
            return launch_v<T, 4>(ctx, k, rowptr, col, val, x, y, nrows, ncols, f / 4);
    if (v == 2)
        return launch_v<T, 2>(ctx, k, rowptr, col, val, x, y, nrows, ncols, f / 2);
    return launch_v<T, 1>(ctx, k, rowptr, col, val, x, y, nrows, ncols, f);
}

// A^T x through A^T built in the workspace (see the top of the file).
template <typename T>
loom_status spmm_t_sorted(const loom__kctx *ctx, const loom__value *adj, const void *x, void *y, int64_t f)
{
    cudaStream_t st = loom__cuda_stream(ctx);
    const int64_t nrows = adj->shape[0], ncols = adj->shape[1], nnz = adj->nnz;
    const int32_t *rowptr = adj->rowptr, *col = adj->col;
    loom__cuda_carver ws = loom__cuda_workspace(ctx);
    uint32_t *rowid = ws.take<uint32_t>(nnz), *key = ws.take<uint32_t>(nnz), *sorted = ws.take<uint32_t>(nnz);
    uint32_t *pos = ws.take<uint32_t>(nnz), *order = ws.take<uint32_t>(nnz);
    T *t_val = ws.take<T>(nnz);
    int32_t *t_ptr = ws.take<int32_t>(ncols + 1);
    const int bits = loom__cuda_key_bits(ncols); // keys lie in [0, ncols]
    size_t scratch = 0;
    cudaError_t e = loom__cuda_sort_pairs(nullptr, scratch, key, sorted, pos, order, nnz, bits, st);
    void *tmp = e == cudaSuccess ? ws.take<char>((int64_t)scratch) : nullptr;
    if (!rowid || !key || !sorted || !pos || !order || !t_val || !t_ptr || !tmp)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME,
                           "spmm: the workspace of %zu bytes is too small to transpose %lld entries deterministically",
                           ctx->cuda->workspace_bytes, (long long)nnz);
    csr_entries<<<loom__cuda_grid(nrows * 32, BLOCK), BLOCK, 0, st>>>(rowptr, col, nrows, ncols, rowid, key, pos,
                                                                      ctx->cuda->err, ctx->cuda->tag);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "spmm (transposed: entries)");
    e = loom__cuda_sort_pairs(tmp, scratch, key, sorted, pos, order, nnz, bits, st);
    if (e != cudaSuccess)
        return loom__kfail(ctx, LOOM_ERR_RUNTIME, "spmm: cub::DeviceRadixSort::SortPairs: %s", cudaGetErrorString(e));
    int32_t *t_col = (int32_t *)key; // the keys are spent once sorted
    csc_gather<T><<<loom__cuda_grid(nnz, BLOCK), BLOCK, 0, st>>>(order, rowid, (const T *)adj->data, nnz, t_col, t_val);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "spmm (transposed: gather)");
    // step 4: t_ptr[c] = the first sorted position whose column is >= c, for c in [0, ncols]
    loom__cuda_key_starts<int32_t><<<loom__cuda_grid(ncols + 1, BLOCK), BLOCK, 0, st>>>(sorted, nnz, t_ptr, ncols);
    LOOM__CUDA_CHECK_LAUNCH(ctx, "spmm (transposed: row pointers)");
    return launch_f<T>(ctx, ROWS, t_ptr, t_col, t_val, x, y, ncols, nrows, f);
}

loom_status spmm_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *adj = src[0], *x = src[1];
    const int transpose = (int)t->a.i[0];
    const int64_t nrows = adj->shape[0], ncols = adj->shape[1];
    int64_t f, out_rows;
    loom_status s = loom__spmm_operands(adj, x, out, transpose, &f, &out_rows, ctx);
    if (s != LOOM_OK)
        return s;
    if (adj->nnz > INT32_MAX)
        return loom__kfail(ctx, LOOM_ERR_UNSUPPORTED, "spmm: %lld entries; int32 row pointers hold at most 2^31 - 1",
                           (long long)adj->nnz);
    if (out_rows == 0 || f == 0)
        return LOOM_OK;
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        const T *val = (const T *)adj->data;
        if (!transpose)
            return launch_f<T>(ctx, ROWS, adj->rowptr, adj->col, val, x->data, out->data, nrows, ncols, f);
        /* the sorted transpose is also the faster one for big matrices (bench/spmm on an H200:
         * 2.8 ms against 7.3 ms for the atomic one at 20M entries and 64 columns, the other way
         * round at Cora's 10K), so atomics serve small ones only */
        if (adj->nnz == 0 || nrows == 0 || (!ctx->cuda->deterministic && adj->nnz < SORTED_FROM)) {
            loom_status s = loom__cuda_memset(ctx, out->data, 0, (size_t)(out_rows * f) * sizeof(T), "spmm");
            if (s != LOOM_OK || adj->nnz == 0 || nrows == 0)
                return s;
            return launch_f<T>(ctx, ATOMIC_T, adj->rowptr, adj->col, val, x->data, out->data, nrows, ncols, f);
        }
        return spmm_t_sorted<T>(ctx, adj, x->data, out->data, f);
    });
}

// The sorted transpose's arrays at the bounds (the atomic one needs none; the mode is the
// executor's choice at run time).
size_t spmm_workspace(const loom_tensor *t, const int64_t *src_nnz, const loom__cuda_kctx *)
{
    if (!t->a.i[0])
        return 0;
    const int64_t nnz = src_nnz[0], ncols = loom__dim_bound(t->graph, t->src[0]->shape.d[1]);
    const size_t vs = loom_dtype_size(t->src[0]->dtype);
    return (size_t)nnz * (5 * sizeof(uint32_t) + vs) + (size_t)(ncols + 1) * sizeof(int32_t) +
           loom__cuda_sort_scratch(nnz) + 8 * 256;
}

loom_status degree_run(const loom_tensor *t, loom__value *out, loom__value *const *src, const loom__kctx *ctx)
{
    const loom__value *adj = src[0];
    if (out->ndim != 1 || out->shape[0] != adj->shape[0])
        return loom__kfail(ctx, LOOM_ERR_SHAPE, "adj has %lld rows but the output %lld", (long long)adj->shape[0],
                           (long long)(out->ndim ? out->shape[0] : -1));
    if (out->dtype != adj->dtype)
        return loom__kfail(ctx, LOOM_ERR_DTYPE, "adj holds %s values, the output is %s", loom_dtype_name(adj->dtype),
                           loom_dtype_name(out->dtype));
    const int64_t nrows = adj->shape[0];
    if (nrows == 0)
        return LOOM_OK;
    const double self = t->a.i[0] ? 1.0 : 0.0, power = t->a.f[0];
    return loom__cuda_float_dispatch(out->dtype, ctx, [&](auto z) {
        using T = decltype(z);
        degree_kernel<T><<<loom__cuda_grid(nrows * 32, BLOCK), BLOCK, 0, loom__cuda_stream(ctx)>>>(
            adj->rowptr, (const T *)adj->data, (T *)out->data, nrows, self, power);
        LOOM__CUDA_CHECK_LAUNCH(ctx, "degree");
        return LOOM_OK;
    });
}

} // namespace

extern "C" void loom__cuda_register_sparse(loom__cuda_op *table)
{
    table[LOOM_OP_SPMM] = loom__cuda_op{spmm_run, spmm_workspace};
    table[LOOM_OP_DEGREE] = loom__cuda_op{degree_run, nullptr};
}
