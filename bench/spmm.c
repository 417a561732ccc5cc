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
 * default algorithm). ms is the mean over reps launches timed with CUDA events; gflops counts
 * 2 E F; bytes_per_s counts what an SpMM must move: the CSR arrays read once, the output written
 * once and one feature row gathered per nonzero; frac_of_copy is that against the copy's bytes
 * (read + written) per second. checksum is the sum of the output in double.
 *
 *     spmm [--reps 20] [--warmup 3] [--dtype f32|f64] [--cases all|large|small] [--seed 1]
 *          [--placement cuda:0]
 *
 * Cases: N = M = 1M, E = 20M with F = 64 and 128 ("large"), and Cora's size, N = M = 2708,
 * E = 10556, F = 16 ("small"; reps x 50). A build without CUDA, or a machine without a GPU,
 * prints one line {"case":"spmm","skipped":"..."} and exits 0.
 *
 * The matrices, which bench/peers/spmm_torch.py makes identically in numpy:
 *   rand64(key, i)  = loom__rand64 of ops/op.h (splitmix64 over a key and a counter);
 *   rowptr[i]       = floor(i E / N) for i in [0, N]  (rows of E/N entries, within one);
 *   col[k]          = rand64(rand64(seed, 0), k) mod M;
 *   val[k]          = 1 / (degree of k's row), rounded once to the dtype;
 *   x[j]            = (rand64(rand64(seed, 1), j) >> 40) * 2^-24, j in [0, M F) row-major: exact
 *                     in both dtypes. */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef LOOM_HAVE_CUDA
int main(void)
{
    printf("{\"case\": \"spmm\", \"skipped\": \"this build has no CUDA\"}\n");
    return 0;
}
#else
#include <cuda_runtime.h>
#include <cusparse.h>
#include <math.h>

#include "graphs/core/op.h"
#include "runtime/devices/cuda/cuda_rt.h"
#include "ops/cuda/cuda.h" /* the repository root is on the benchmarks' include path */
#include "bench/spmm_problem.h"

static char msg[512];

/* A failed call: where, and why (fmt), on stderr; then exit 1. */
#define DIE(fmt, ...)                                                                                                  \
    do {                                                                                                               \
        fprintf(stderr, "spmm: %s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__);                                    \
        exit(1);                                                                                                       \
    } while (0)
/* CHECK: a Loom call, its message in msg; SPARSE: a cuSPARSE call. */
#define CHECK(call)                                                                                                    \
    do {                                                                                                               \
        if ((call) != LOOM_OK)                                                                                         \
            DIE("%s", msg);                                                                                            \
    } while (0)
#define SPARSE(call)                                                                                                   \
    do {                                                                                                               \
        cusparseStatus_t s_ = (call);                                                                                  \
        if (s_ != CUSPARSE_STATUS_SUCCESS)                                                                             \
            DIE("%s: %s", #call, cusparseGetErrorString(s_));                                                          \
    } while (0)

/* ---- timing ------------------------------------------------------------------------------------ */

typedef struct bench {
    loom__cuda_dev dev;
    void *stream, *t0, *t1;
    char gpu[256];
    int warmup, reps;
    double copy_bytes_per_s;
} bench;

typedef void (*launch_fn)(void *arg);

/* Mean milliseconds of fn over reps launches on the compute stream, after warmup launches. */
static double time_ms(bench *b, launch_fn fn, void *arg, int reps)
{
    for (int i = 0; i < b->warmup; i++)
        fn(arg);
    CHECK(loom__cuda_stream_sync(b->stream, msg, sizeof msg));
    CHECK(loom__cuda_event_record(b->t0, b->stream, msg, sizeof msg));
    for (int i = 0; i < reps; i++)
        fn(arg);
    CHECK(loom__cuda_event_record(b->t1, b->stream, msg, sizeof msg));
    float ms = 0;
    CHECK(loom__cuda_timer_elapsed(b->t0, b->t1, &ms, msg, sizeof msg));
    return (double)ms / reps;
}

typedef struct copy_arg {
    void *dst, *src;
    size_t n;
    void *stream;
} copy_arg;

static void copy_launch(void *arg)
{
    copy_arg *a = arg;
    CHECK(loom__cuda_copy_async(a->dst, a->src, a->n, a->stream, msg, sizeof msg));
}

/* The ceiling: a device-to-device copy of 1 GiB (less when memory is short), bytes read and
 * written per second. */
static void measure_copy(bench *b)
{
    size_t free_b = 0, total_b = 0;
    CHECK(loom__cuda_mem_info(b->dev.index, &free_b, &total_b, msg, sizeof msg));
    size_t n = (size_t)1 << 30;
    while (n > ((size_t)1 << 24) && 2 * n > free_b / 2)
        n /= 2;
    copy_arg a = {.n = n, .stream = b->stream};
    CHECK(loom__cuda_alloc(b->dev.index, n, &a.dst, msg, sizeof msg));
    CHECK(loom__cuda_alloc(b->dev.index, n, &a.src, msg, sizeof msg));
    CHECK(loom__cuda_zero_async(a.src, n, b->stream, msg, sizeof msg));
    const double ms = time_ms(b, copy_launch, &a, b->reps);
    b->copy_bytes_per_s = 2.0 * (double)n / (ms * 1e-3);
    printf("{\"case\": \"copy\", \"device\": \"cuda:%d\", \"gpu\": \"%s\", \"bytes\": %zu, \"reps\": %d, \"ms\": %.4f, "
           "\"bytes_per_s\": %.4g}\n",
           b->dev.index, b->gpu, n, b->reps, ms, b->copy_bytes_per_s);
    fflush(stdout);
    loom__cuda_free(a.dst);
    loom__cuda_free(a.src);
}

/* ---- Loom's kernel ----------------------------------------------------------------------------- */

typedef struct loom_arg {
    const loom__cuda_op *op;
    const loom_tensor *t;
    loom__value adj, x, y;
    loom__cuda_kctx cc;
    loom__kctx kc;
} loom_arg;

static void loom_launch(void *arg)
{
    loom_arg *a = arg;
    loom__value *src[2] = {&a->adj, &a->x};
    if (a->op->run(a->t, &a->y, src, &a->kc) != LOOM_OK) {
        fprintf(stderr, "spmm: Loom's kernel: %s\n", a->kc.msg);
        exit(1);
    }
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

static double checksum(const void *dev_y, int64_t count, loom_dtype dt, void **host_out)
{
    const size_t es = loom_dtype_size(dt);
    void *h = xmalloc((size_t)count * es);
    CHECK(loom__cuda_copy_sync(h, dev_y, (size_t)count * es, msg, sizeof msg));
    double s = 0;
    for (int64_t i = 0; i < count; i++)
        s += dt == LOOM_F32 ? (double)((float *)h)[i] : ((double *)h)[i];
    *host_out = h;
    return s;
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
           b->dev.index, b->gpu, loom_dtype_name(p->dt), (long long)p->n, (long long)p->m, (long long)p->e,
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
    const int idx = b->dev.index;
    void *d_rowptr, *d_col, *d_val, *d_x, *d_y, *d_ys;
    CHECK(loom__cuda_alloc(idx, (size_t)(n + 1) * 4, &d_rowptr, msg, sizeof msg));
    CHECK(loom__cuda_alloc(idx, (size_t)e * 4, &d_col, msg, sizeof msg));
    CHECK(loom__cuda_alloc(idx, (size_t)e * es, &d_val, msg, sizeof msg));
    CHECK(loom__cuda_alloc(idx, xbytes, &d_x, msg, sizeof msg));
    CHECK(loom__cuda_alloc(idx, ybytes, &d_y, msg, sizeof msg));
    CHECK(loom__cuda_alloc(idx, ybytes, &d_ys, msg, sizeof msg));
    CHECK(loom__cuda_copy_sync(d_rowptr, p.rowptr, (size_t)(n + 1) * 4, msg, sizeof msg));
    CHECK(loom__cuda_copy_sync(d_col, p.col, (size_t)e * 4, msg, sizeof msg));
    CHECK(loom__cuda_copy_sync(d_val, p.val, (size_t)e * es, msg, sizeof msg));
    CHECK(loom__cuda_copy_sync(d_x, p.x, xbytes, msg, sizeof msg));

    /* Loom: the op's tensors from the public builder, its kernel from the table */
    loom_graph *g = loom_graph_new();
    loom_tensor *adj = loom_input_csr(g, "adj", dt, n, m);
    loom_tensor *xin = loom_input(g, "x", dt, loom_shape(m, f));
    const loom_tensor *fwd = loom_spmm_ex(g, adj, xin, 0), *bwd = loom_spmm_ex(g, adj, xin, 1);
    if (loom_graph_status(g) != LOOM_OK) {
        fprintf(stderr, "spmm: %s\n", loom_graph_error(g));
        exit(1);
    }
    const loom__cuda_op *op = loom__cuda_op_get(LOOM_OP_SPMM);
    if (!op->run) {
        fprintf(stderr, "spmm: this build has no CUDA kernel for spmm\n");
        exit(1);
    }
    const int64_t nnz[2] = {e, 0};
    size_t ws = op->workspace ? op->workspace(bwd, nnz) : 0;
    const size_t ws_fwd = op->workspace ? op->workspace(fwd, nnz) : 0;
    if (ws_fwd > ws)
        ws = ws_fwd;
    void *d_ws = NULL;
    CHECK(loom__cuda_alloc(idx, ws, &d_ws, msg, sizeof msg));
    static char kmsg[512];
    loom_arg la = {.op = op, .t = fwd};
    la.adj = (loom__value){.dtype = dt, .ndim = 2, .shape = {n, m}, .data = d_val, .rowptr = d_rowptr, .col = d_col, .nnz = e};
    la.x = (loom__value){.dtype = dt, .ndim = 2, .shape = {m, f}, .data = d_x};
    la.y = (loom__value){.dtype = dt, .ndim = 2, .shape = {n, f}, .data = d_y};
    la.cc = (loom__cuda_kctx){.device = idx, .stream = b->stream, .blas = b->dev.blas, .sparse = b->dev.sparse,
                              .workspace = d_ws, .workspace_bytes = ws, .err = b->dev.err, .tag = fwd->id};
    la.kc = (loom__kctx){.msg = kmsg, .msglen = sizeof kmsg, .cuda = &la.cc};

    /* cuSPARSE on the same arrays and stream (its handle is bound to the compute stream) */
    sparse_arg sa = {.h = b->dev.sparse, .op = CUSPARSE_OPERATION_NON_TRANSPOSE, .type = dt == LOOM_F32 ? CUDA_R_32F : CUDA_R_64F,
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
    CHECK(loom__cuda_alloc(idx, sbytes, &sa.buffer, msg, sizeof msg));
    SPARSE(cusparseSpMM_preprocess(sa.h, sa.op, CUSPARSE_OPERATION_NON_TRANSPOSE, one, sa.a, sa.x, zero, sa.y, sa.type,
                                   sa.alg, sa.buffer));

    const double ms_s = time_ms(b, sparse_launch, &sa, reps);
    const double ms_l = time_ms(b, loom_launch, &la, reps);
    loom__cuda_err err;
    CHECK(loom__cuda_copy_sync(&err, b->dev.err, sizeof err, msg, sizeof msg));
    if (err.code) {
        fprintf(stderr, "spmm: Loom's kernel recorded device error %d (value %lld, bound %lld)\n", err.code, err.value,
                err.bound);
        exit(1);
    }
    void *hl, *hs;
    const double sum_l = checksum(d_y, n * f, dt, &hl), sum_s = checksum(d_ys, n * f, dt, &hs);
    const double diff = max_rel_diff(hl, hs, n * f, dt);
    print_line(b, &p, "spmm", "loom", NULL, reps, ms_l, sum_l, ms_s / ms_l, diff);
    print_line(b, &p, "spmm", "cusparse", "csr_alg2", reps, ms_s, sum_s, 0, -1);
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
        CHECK(loom__cuda_alloc(idx, tbytes, &st.buffer, msg, sizeof msg));
        ms_st = time_ms(b, sparse_launch, &st, reps);
    }
    void *hst = NULL;
    const double sum_st = ms_st > 0 ? checksum(d_ys, n * f, dt, &hst) : 0;
    if (ms_st > 0)
        print_line(b, &p, "spmm_t", "cusparse", "default", reps, ms_st, sum_st, 0, -1);
    for (int det = 0; det < 2; det++) {
        loom_arg lt = la;
        lt.t = bwd;
        lt.kc.cuda = &lt.cc;
        lt.cc.tag = bwd->id;
        lt.cc.deterministic = det;
        const double ms_t = time_ms(b, loom_launch, &lt, reps);
        void *ht;
        const double sum_t = checksum(d_y, n * f, dt, &ht);
        print_line(b, &p, "spmm_t", "loom", det ? "deterministic" : "default", reps, ms_t, sum_t,
                   ms_st > 0 ? ms_st / ms_t : 0, hst ? max_rel_diff(ht, hst, n * f, dt) : -1);
        free(ht);
    }
    free(hst);

    cusparseDestroySpMat(sa.a);
    cusparseDestroyDnMat(sa.x);
    cusparseDestroyDnMat(sa.y);
    loom__cuda_free(sa.buffer);
    loom__cuda_free(st.buffer);
    loom__cuda_free(d_ws);
    loom__cuda_free(d_rowptr);
    loom__cuda_free(d_col);
    loom__cuda_free(d_val);
    loom__cuda_free(d_x);
    loom__cuda_free(d_y);
    loom__cuda_free(d_ys);
    loom_graph_free(g);
    free_problem(&p);
}

int main(int argc, char **argv)
{
    spmm_opts o;
    int rc = spmm_parse(argc, argv, 1, &o);
    if (rc >= 0)
        return rc;
    const int reps = o.reps, warmup = o.warmup, device = o.device;
    const uint64_t seed = o.seed;
    const loom_dtype dt = o.dt;
    const char *cases = o.cases;
    loom_error why = {0};
    if (loom_cuda_device_count(&why) <= device) {
        printf("{\"case\": \"spmm\", \"skipped\": \"no CUDA device %d (%s)\"}\n", device, why.msg[0] ? why.msg : "none found");
        return 0;
    }
    bench b = {.warmup = warmup, .reps = reps};
    CHECK(loom__cuda_dev_open(device, &b.dev, msg, sizeof msg));
    b.stream = b.dev.stream[LOOM__CUDA_COMPUTE];
    CHECK(loom__cuda_timer_new(&b.t0, msg, sizeof msg));
    CHECK(loom__cuda_timer_new(&b.t1, msg, sizeof msg));
    struct cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) {
        for (size_t i = 0, o = 0; prop.name[i] && o + 1 < sizeof b.gpu; i++) /* JSON-safe */
            if (prop.name[i] != '"' && prop.name[i] != '\\')
                b.gpu[o++] = prop.name[i];
    }
    measure_copy(&b);
    if (strcmp(cases, "small")) {
        run_case(&b, 1000000, 20000000, 64, dt, seed, reps);
        run_case(&b, 1000000, 20000000, 128, dt, seed, reps);
    }
    if (strcmp(cases, "large"))
        run_case(&b, 2708, 10556, 16, dt, seed, reps * 50);
    loom__cuda_event_free(b.t0);
    loom__cuda_event_free(b.t1);
    loom__cuda_dev_close(&b.dev);
    return 0;
}
#endif
