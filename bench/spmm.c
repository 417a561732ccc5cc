/* SpMM speed on one GPU: Loom's spmm kernel (CSR [N, M] x dense [M, F]) against cuSPARSE
 * (cusparseSpMM, CSR_ALG2) on the same matrices in the same run, and a device-to-device copy as
 * the bandwidth ceiling. Prints one JSON line per case and implementation:
 *
 *   {"case":"copy","device":"cuda:0","gpu":"...","bytes":1073741824,"ms":0.71,"bytes_per_s":3.0e12}
 *   {"case":"spmm","impl":"loom","device":"cuda:0","gpu":"...","dtype":"f32","rows":1000000,
 *    "cols":1000000,"nnz":20000000,"features":64,"reps":20,"ms":2.1,"gflops":1219,
 *    "bytes_per_s":2.6e12,"frac_of_copy":0.87,"checksum":...,"vs_cusparse":1.3,"max_rel_diff":1e-7}
 *
 * then the same for "impl":"cusparse", and "case":"spmm_t" (A^T x) for Loom's two transposes
 * ("variant":"default": float atomics below 2^20 entries, a sorted transpose from there; and
 * "deterministic", always sorted) and cuSPARSE's (opA transposed, its
 * default algorithm). cuSPARSE's and the copy's ms is the mean over reps launches timed with CUDA
 * events; Loom's is taken through the public API: a program Y = loom_spmm(A, X) (loom_spmm_ex for
 * the transpose) compiled for placement cuda:N, fed once, timed with the wall clock as
 * (T(reps + 1 steps) - T(1 step)) / reps of loom_program_run_steps(LOOM_RUN_EVAL) (the output
 * reaches the host only at a run's last step, so the difference cancels that copy; it keeps the
 * actors' per-step cost, which shows at the small size); "deterministic" is a program run with
 * LOOM_DETERMINISTIC=1. gflops counts
 * 2 E F; bytes_per_s counts what an SpMM must move: the CSR arrays read once, the output written
 * once and one feature row gathered per nonzero; frac_of_copy is that against the copy's bytes
 * (read + written) per second. checksum is the sum of the output in double.
 *
 *     spmm [--reps 20] [--warmup 3] [--dtype f32|f64] [--cases all|large|small] [--seed 1]
 *          [--placement cuda:0]
 *
 * Cases: N = M = 1M, E = 20M with F = 64 and 128 ("large"), and Cora's size, N = M = 2708,
 * E = 10556, F = 16 ("small"; reps x 50). Built only when Loom is built with CUDA (CMake); a
 * machine without a GPU prints one line {"case":"spmm","skipped":"..."} and exits 0.
 *
 * The matrices, which bench/peers/spmm_torch.py makes identically in numpy:
 *   rand64(key, i)  = bench_rand64 of bench/spmm_problem.h (splitmix64 over a key and
 *                     a counter, Loom's generator);
 *   rowptr[i]       = floor(i E / N) for i in [0, N]  (rows of E/N entries, within one);
 *   col[k]          = rand64(rand64(seed, 0), k) mod M;
 *   val[k]          = 1 / (degree of k's row), rounded once to the dtype;
 *   x[j]            = (rand64(rand64(seed, 1), j) >> 40) * 2^-24, j in [0, M F) row-major: exact
 *                     in both dtypes. */
#define _POSIX_C_SOURCE 200809L
#include <loom/loom.h>

#include <cuda_runtime.h>
#include <cusparse.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/spmm_problem.h"

#define DIE(fmt, ...)                                                                                                  \
    do {                                                                                                               \
        fprintf(stderr, "spmm: %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);                                    \
        exit(1);                                                                                                       \
    } while (0)
#define CU(call)                                                                                                       \
    do {                                                                                                               \
        cudaError_t c_ = (call);                                                                                       \
        if (c_ != cudaSuccess)                                                                                         \
            DIE("%s: %s", #call, cudaGetErrorString(c_));                                                              \
    } while (0)
#define SPARSE(call)                                                                                                   \
    do {                                                                                                               \
        cusparseStatus_t s_ = (call);                                                                                  \
        if (s_ != CUSPARSE_STATUS_SUCCESS)                                                                             \
            DIE("%s: %s", #call, cusparseGetErrorString(s_));                                                          \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

typedef struct bench {
    int device;
    cudaStream_t stream;
    cudaEvent_t t0, t1;
    cusparseHandle_t sparse;
    char gpu[256];
    int warmup, reps;
    double copy_bytes_per_s;
} bench;

typedef void (*launch_fn)(void *arg);

/* Mean milliseconds of fn over reps launches on the stream, after warmup launches. */
static double time_ms(bench *b, launch_fn fn, void *arg, int reps)
{
    for (int i = 0; i < b->warmup; i++)
        fn(arg);
    CU(cudaStreamSynchronize(b->stream));
    CU(cudaEventRecord(b->t0, b->stream));
    for (int i = 0; i < reps; i++)
        fn(arg);
    CU(cudaEventRecord(b->t1, b->stream));
    CU(cudaEventSynchronize(b->t1));
    float ms = 0;
    CU(cudaEventElapsedTime(&ms, b->t0, b->t1));
    return (double)ms / reps;
}

typedef struct copy_arg {
    void *dst, *src;
    size_t n;
    cudaStream_t stream;
} copy_arg;

static void copy_launch(void *arg)
{
    copy_arg *a = arg;
    CU(cudaMemcpyAsync(a->dst, a->src, a->n, cudaMemcpyDeviceToDevice, a->stream));
}

/* The ceiling: a device-to-device copy of 1 GiB (less when memory is short), bytes read and
 * written per second. */
static void measure_copy(bench *b)
{
    size_t free_b = 0, total_b = 0;
    CU(cudaMemGetInfo(&free_b, &total_b));
    size_t n = (size_t)1 << 30;
    while (n > ((size_t)1 << 24) && 2 * n > free_b / 2)
        n /= 2;
    copy_arg a = {.n = n, .stream = b->stream};
    CU(cudaMalloc(&a.dst, n));
    CU(cudaMalloc(&a.src, n));
    CU(cudaMemsetAsync(a.src, 0, n, b->stream));
    const double ms = time_ms(b, copy_launch, &a, b->reps);
    b->copy_bytes_per_s = 2.0 * (double)n / (ms * 1e-3);
    printf("{\"case\": \"copy\", \"device\": \"cuda:%d\", \"gpu\": \"%s\", \"bytes\": %zu, \"reps\": %d, \"ms\": %.4f, "
           "\"bytes_per_s\": %.4g}\n",
           b->device, b->gpu, n, b->reps, ms, b->copy_bytes_per_s);
    fflush(stdout);
    CU(cudaFree(a.dst));
    CU(cudaFree(a.src));
}

/* ---- Loom, through the public API ------------------------------------------------------------ */

/* Loom's SpMM (transposed or not) on cuda:device over p: ms per step; the output copied into
 * *host_out (malloc'd). deterministic: the program runs with LOOM_DETERMINISTIC=1. */
static double loom_ms(const bench *b, const problem *pb, int transpose, int deterministic, int reps, void **host_out)
{
    loom_graph *g = loom_graph_new();
    char place[32];
    snprintf(place, sizeof place, "cuda:%d", b->device);
    loom_error err = LOOM_ERROR_INIT;
    loom_placement *pl = loom_placement_parse(place, &err);
    if (!pl)
        DIE("%s", err.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_tensor *a = loom_input_csr(g, "a", pb->dt, pb->n, pb->m);
    loom_tensor *x = loom_input(g, "x", pb->dt, loom_shape(transpose ? pb->n : pb->m, pb->f));
    loom_tensor *y = loom_spmm_ex(g, a, x, transpose);
    loom_program *p = NULL;
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    if (loom_compile(g, NULL, &o, &p) != LOOM_OK)
        DIE("loom_compile: %s", loom_graph_error(g));
    loom_csr m = {.nrows = pb->n, .ncols = pb->m, .nnz = pb->e, .vdtype = pb->dt, .rowptr = pb->rowptr, .col = pb->col,
                  .val = pb->val};
    loom_array xa = {.dtype = pb->dt, .ndim = 2, .shape = {transpose ? pb->n : pb->m, pb->f}, .data = pb->x};
    if (loom_program_feed_csr(p, a, &m) != LOOM_OK || loom_program_feed(p, x, &xa) != LOOM_OK ||
        loom_program_keep(p, y) != LOOM_OK)
        DIE("feed: %s", loom_program_error(p));
    if (deterministic)
        setenv("LOOM_DETERMINISTIC", "1", 1); /* read when the program's actors are built: its first run */
    for (int i = 0; i < b->warmup + 2; i++) /* the first runs build the plan and capture the step */
        if (loom_program_run_steps(p, LOOM_RUN_EVAL, 1) != LOOM_OK)
            DIE("loom_program_run_steps: %s", loom_program_error(p));
    if (deterministic)
        unsetenv("LOOM_DETERMINISTIC");
    double t = now_ms();
    if (loom_program_run_steps(p, LOOM_RUN_EVAL, 1) != LOOM_OK)
        DIE("loom_program_run_steps: %s", loom_program_error(p));
    const double one = now_ms() - t;
    t = now_ms();
    if (loom_program_run_steps(p, LOOM_RUN_EVAL, (int64_t)reps + 1) != LOOM_OK)
        DIE("loom_program_run_steps: %s", loom_program_error(p));
    const double many = now_ms() - t;
    loom_array out;
    if (loom_program_fetch(p, y, &out) != LOOM_OK)
        DIE("fetch: %s", loom_program_error(p));
    const size_t bytes = (size_t)loom_array_numel(&out) * loom_dtype_size(pb->dt);
    *host_out = xmalloc(bytes);
    memcpy(*host_out, out.data, bytes);
    loom_program_free(p);
    loom_graph_free(g);
    const double ms = (many - one) / reps;
    return ms > 0 ? ms : 1e-9;
}

/* ---- cuSPARSE ---------------------------------------------------------------------------------- */

typedef struct sparse_arg {
    cusparseHandle_t h;
    cusparseOperation_t op;
    cusparseSpMatDescr_t a;
    cusparseDnMatDescr_t x, y;
    cudaDataType type;
    cusparseSpMMAlg_t alg;
    void *buffer;
    double one, zero;
    float onef, zerof;
} sparse_arg;

static void sparse_launch(void *arg)
{
    sparse_arg *s = arg;
    const int f64 = s->type == CUDA_R_64F;
    SPARSE(cusparseSpMM(s->h, s->op, CUSPARSE_OPERATION_NON_TRANSPOSE, f64 ? (void *)&s->one : (void *)&s->onef, s->a,
                        s->x, f64 ? (void *)&s->zero : (void *)&s->zerof, s->y, s->type, s->alg, s->buffer));
}

/* ---- one case ---------------------------------------------------------------------------------- */

static double sum_of(const void *h, int64_t count, loom_dtype dt)
{
    double s = 0;
    for (int64_t i = 0; i < count; i++)
        s += dt == LOOM_F32 ? (double)((const float *)h)[i] : ((const double *)h)[i];
    return s;
}

static void *to_host(const void *dev_y, int64_t count, loom_dtype dt)
{
    const size_t bytes = (size_t)count * loom_dtype_size(dt);
    void *h = xmalloc(bytes);
    CU(cudaMemcpy(h, dev_y, bytes, cudaMemcpyDeviceToHost));
    return h;
}

static double max_rel_diff(const void *a, const void *b, int64_t count, loom_dtype dt)
{
    double w = 0;
    for (int64_t i = 0; i < count; i++) {
        const double u = dt == LOOM_F32 ? ((const float *)a)[i] : ((const double *)a)[i];
        const double v = dt == LOOM_F32 ? ((const float *)b)[i] : ((const double *)b)[i];
        const double d = fabs(u - v) / fmax(1e-30, fmax(fabs(u), fabs(v)));
        if (d > w)
            w = d;
    }
    return w;
}

static void print_line(const bench *b, const problem *p, const char *kase, const char *impl, const char *variant,
                       int reps, double ms, double sum, double vs, double diff)
{
    const double es = (double)loom_dtype_size(p->dt);
    const double bytes = (double)(p->n + 1) * 4 + (double)p->e * (4 + es) + (double)p->n * (double)p->f * es +
                         (double)p->e * (double)p->f * es;
    const double bps = bytes / (ms * 1e-3);
    printf("{\"case\": \"%s\", \"impl\": \"%s\"", kase, impl);
    if (variant)
        printf(", \"variant\": \"%s\"", variant);
    printf(", \"device\": \"cuda:%d\", \"gpu\": \"%s\", \"dtype\": \"%s\", \"rows\": %lld, \"cols\": %lld, \"nnz\": %lld, "
           "\"features\": %lld, \"reps\": %d, \"ms\": %.5f, \"gflops\": %.2f, \"bytes_per_s\": %.4g, \"frac_of_copy\": %.3f, "
           "\"checksum\": %.10g",
           b->device, b->gpu, loom_dtype_name(p->dt), (long long)p->n, (long long)p->m, (long long)p->e,
           (long long)p->f, reps, ms, 2.0 * (double)p->e * (double)p->f / (ms * 1e-3) / 1e9, bps,
           b->copy_bytes_per_s > 0 ? bps / b->copy_bytes_per_s : 0.0, sum);
    if (vs > 0)
        printf(", \"vs_cusparse\": %.3f", vs);
    if (diff >= 0)
        printf(", \"max_rel_diff\": %.3g", diff);
    printf("}\n");
    fflush(stdout);
}

static void run_case(bench *b, int64_t n, int64_t e, int64_t f, loom_dtype dt, uint64_t seed, int reps)
{
    const int64_t m = n; /* square, so that A^T x takes the same x */
    problem p = make_problem(n, m, e, f, dt, seed);
    const size_t es = loom_dtype_size(dt), xbytes = (size_t)(m * f) * es, ybytes = (size_t)(n * f) * es;
    void *d_rowptr, *d_col, *d_val, *d_x, *d_ys;
    CU(cudaMalloc(&d_rowptr, (size_t)(n + 1) * 4));
    CU(cudaMalloc(&d_col, (size_t)e * 4));
    CU(cudaMalloc(&d_val, (size_t)e * es));
    CU(cudaMalloc(&d_x, xbytes));
    CU(cudaMalloc(&d_ys, ybytes));
    CU(cudaMemcpy(d_rowptr, p.rowptr, (size_t)(n + 1) * 4, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(d_col, p.col, (size_t)e * 4, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(d_val, p.val, (size_t)e * es, cudaMemcpyHostToDevice));
    CU(cudaMemcpy(d_x, p.x, xbytes, cudaMemcpyHostToDevice));

    sparse_arg sa = {.h = b->sparse, .op = CUSPARSE_OPERATION_NON_TRANSPOSE, .type = dt == LOOM_F32 ? CUDA_R_32F : CUDA_R_64F,
                     .alg = CUSPARSE_SPMM_CSR_ALG2, .one = 1, .zero = 0, .onef = 1, .zerof = 0};
    SPARSE(cusparseCreateCsr(&sa.a, n, m, e, d_rowptr, d_col, d_val, CUSPARSE_INDEX_32I, CUSPARSE_INDEX_32I,
                             CUSPARSE_INDEX_BASE_ZERO, sa.type));
    SPARSE(cusparseCreateDnMat(&sa.x, m, f, f, d_x, sa.type, CUSPARSE_ORDER_ROW));
    SPARSE(cusparseCreateDnMat(&sa.y, n, f, f, d_ys, sa.type, CUSPARSE_ORDER_ROW));
    size_t sbytes = 0;
    const void *one = dt == LOOM_F32 ? (const void *)&sa.onef : (const void *)&sa.one;
    const void *zero = dt == LOOM_F32 ? (const void *)&sa.zerof : (const void *)&sa.zero;
    SPARSE(cusparseSpMM_bufferSize(sa.h, sa.op, CUSPARSE_OPERATION_NON_TRANSPOSE, one, sa.a, sa.x, zero, sa.y, sa.type,
                                   sa.alg, &sbytes));
    CU(cudaMalloc(&sa.buffer, sbytes ? sbytes : 1));
    SPARSE(cusparseSpMM_preprocess(sa.h, sa.op, CUSPARSE_OPERATION_NON_TRANSPOSE, one, sa.a, sa.x, zero, sa.y, sa.type,
                                   sa.alg, sa.buffer));

    const double ms_s = time_ms(b, sparse_launch, &sa, reps);
    void *hl, *hs = to_host(d_ys, n * f, dt);
    const double ms_l = loom_ms(b, &p, 0, 0, reps, &hl);
    print_line(b, &p, "spmm", "loom", NULL, reps, ms_l, sum_of(hl, n * f, dt), ms_s / ms_l, max_rel_diff(hl, hs, n * f, dt));
    print_line(b, &p, "spmm", "cusparse", "csr_alg2", reps, ms_s, sum_of(hs, n * f, dt), 0, -1);
    free(hl);
    free(hs);

    /* A^T x: cuSPARSE's transposed product (its default algorithm), then Loom's two */
    sparse_arg st = sa;
    st.op = CUSPARSE_OPERATION_TRANSPOSE;
    st.alg = CUSPARSE_SPMM_ALG_DEFAULT;
    st.buffer = NULL;
    size_t tbytes = 0;
    double ms_st = 0;
    if (cusparseSpMM_bufferSize(st.h, st.op, CUSPARSE_OPERATION_NON_TRANSPOSE, one, st.a, st.x, zero, st.y, st.type, st.alg,
                                &tbytes) == CUSPARSE_STATUS_SUCCESS) {
        CU(cudaMalloc(&st.buffer, tbytes ? tbytes : 1));
        ms_st = time_ms(b, sparse_launch, &st, reps);
    }
    void *hst = ms_st > 0 ? to_host(d_ys, n * f, dt) : NULL;
    if (hst)
        print_line(b, &p, "spmm_t", "cusparse", "default", reps, ms_st, sum_of(hst, n * f, dt), 0, -1);
    for (int det = 0; det < 2; det++) {
        void *ht;
        const double ms_t = loom_ms(b, &p, 1, det, reps, &ht);
        print_line(b, &p, "spmm_t", "loom", det ? "deterministic" : "default", reps, ms_t, sum_of(ht, n * f, dt),
                   ms_st > 0 ? ms_st / ms_t : 0, hst ? max_rel_diff(ht, hst, n * f, dt) : -1);
        free(ht);
    }
    free(hst);

    cusparseDestroySpMat(sa.a);
    cusparseDestroyDnMat(sa.x);
    cusparseDestroyDnMat(sa.y);
    cudaFree(sa.buffer);
    cudaFree(st.buffer);
    cudaFree(d_rowptr);
    cudaFree(d_col);
    cudaFree(d_val);
    cudaFree(d_x);
    cudaFree(d_ys);
    free_problem(&p);
}

int main(int argc, char **argv)
{
    spmm_opts o;
    int rc = spmm_parse(argc, argv, 1, &o);
    if (rc >= 0)
        return rc;
    loom_error why = LOOM_ERROR_INIT;
    if (loom_cuda_device_count(&why) <= o.device) {
        printf("{\"case\": \"spmm\", \"skipped\": \"no CUDA device %d (%s)\"}\n", o.device, why.msg[0] ? why.msg : "none found");
        return 0;
    }
    bench b = {.device = o.device, .warmup = o.warmup, .reps = o.reps};
    CU(cudaSetDevice(o.device));
    CU(cudaStreamCreateWithFlags(&b.stream, cudaStreamNonBlocking));
    CU(cudaEventCreate(&b.t0));
    CU(cudaEventCreate(&b.t1));
    SPARSE(cusparseCreate(&b.sparse));
    SPARSE(cusparseSetStream(b.sparse, b.stream));
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, o.device) == cudaSuccess) {
        for (size_t i = 0, k = 0; prop.name[i] && k + 1 < sizeof b.gpu; i++) /* JSON-safe */
            if (prop.name[i] != '"' && prop.name[i] != '\\')
                b.gpu[k++] = prop.name[i];
    }
    measure_copy(&b);
    if (strcmp(o.cases, "small")) {
        run_case(&b, 1000000, 20000000, 64, o.dt, o.seed, o.reps);
        run_case(&b, 1000000, 20000000, 128, o.dt, o.seed, o.reps);
    }
    if (strcmp(o.cases, "large"))
        run_case(&b, 2708, 10556, 16, o.dt, o.seed, o.reps * 50);
    cusparseDestroy(b.sparse);
    cudaEventDestroy(b.t0);
    cudaEventDestroy(b.t1);
    cudaStreamDestroy(b.stream);
    return 0;
}
