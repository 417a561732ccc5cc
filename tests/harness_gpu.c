/* The GPU side of the op harness (see harness_gpu.h). */
#include "harness_gpu.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/devices/cuda/cuda_rt.h"

struct lt_gpu {
    loom__cuda_dev dev;
    int deterministic, matmul;
    int no_dnn; /* kernels run without the cuDNN handle */
};

lt_gpu *lt_gpu_open_or_skip(void)
{
    loom_error why = {0};
    if (loom_cuda_device_count(&why) < 1) {
        printf("skipped: no CUDA device (%s)\n", why.msg[0] ? why.msg : "none found");
        exit(77);
    }
    lt_gpu *g = calloc(1, sizeof *g);
    ck_assert_ptr_nonnull(g);
    char msg[256];
    loom_status s = loom__cuda_dev_open(0, &g->dev, msg, sizeof msg);
    ck_assert_msg(s == LOOM_OK, "%s", msg);
    return g;
}

void lt_gpu_close(lt_gpu *g)
{
    if (!g)
        return;
    loom__cuda_dev_close(&g->dev);
    free(g);
}

void lt_gpu_set_modes(lt_gpu *g, int deterministic, int matmul)
{
    g->deterministic = deterministic;
    g->matmul = matmul;
}

void lt_gpu_set_dnn(lt_gpu *g, int on) { g->no_dnn = !on; }

loom__cuda_kctx lt_gpu_kctx(lt_gpu *g)
{
    return (loom__cuda_kctx){.device = g->dev.index,
                             .stream = g->dev.stream[LOOM__CUDA_COMPUTE],
                             .blas = g->dev.blas,
                             .sparse = g->dev.sparse,
                             .dnn = g->no_dnn ? NULL : g->dev.dnn,
                             .deterministic = g->deterministic,
                             .matmul = g->matmul};
}

/* The suite's slot for the device, for the fixture's functions (which take no arguments). */
static lt_gpu **fixture_gpu;

static void fixture_open(void) { *fixture_gpu = lt_gpu_open_or_skip(); }

static void fixture_close(void)
{
    lt_gpu_close(*fixture_gpu);
    *fixture_gpu = NULL;
}

void lt_gpu_add_fixture(TCase *tc, lt_gpu **gpu)
{
    fixture_gpu = gpu;
    tcase_add_unchecked_fixture(tc, fixture_open, fixture_close);
}

int lt_gpu_run(Suite *(*suite)(void))
{
    loom_error why = {0};
    if (loom_cuda_device_count(&why) < 1) {
        printf("skipped: no CUDA device (%s)\n", why.msg[0] ? why.msg : "none found");
        return 77;
    }
    setenv("CK_FORK", "no", 1);
    return lt_run_suite(suite());
}

void *lt_gpu_alloc(int index, size_t n, const void *from, int fill)
{
    const size_t bytes = n ? n : 64;
    char msg[256];
    void *d = NULL;
    loom_status s = loom__cuda_alloc(index, bytes, &d, msg, sizeof msg);
    ck_assert_msg(s == LOOM_OK, "%s", msg);
    if (from && n) {
        s = loom__cuda_copy_sync(d, from, n, msg, sizeof msg);
        ck_assert_msg(s == LOOM_OK, "%s", msg);
    } else if (fill >= 0) {
        void *h = malloc(bytes);
        ck_assert_ptr_nonnull(h);
        memset(h, fill, bytes);
        s = loom__cuda_copy_sync(d, h, bytes, msg, sizeof msg);
        ck_assert_msg(s == LOOM_OK, "%s", msg);
        free(h);
    }
    return d;
}

static size_t dense_bytes(const loom__value *v) { return (size_t)loom__numel(v) * loom_dtype_size(v->dtype); }

/* A value's parts: data (dense or CSR values), rowptr and col, with their byte sizes. */
static void parts(const loom__value *v, void **p[3], size_t n[3], loom__value *w)
{
    p[0] = &w->data;
    p[1] = (void **)&w->rowptr;
    p[2] = (void **)&w->col;
    n[0] = dense_bytes(v);
    n[1] = v->rowptr ? (size_t)(v->shape[0] + 1) * sizeof(int32_t) : 0;
    n[2] = v->rowptr ? (size_t)v->nnz * sizeof(int32_t) : 0;
}

static void *host_copy(const void *src, size_t n)
{
    void *d = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(d);
    if (n)
        memcpy(d, src, n);
    return d;
}

/* A host value with copies of v's arrays. */
static loom__value host_dup(const loom__value *v)
{
    loom__value w = *v;
    void **p[3];
    size_t n[3];
    parts(v, p, n, &w);
    const void *from[3] = {v->data, v->rowptr, v->col};
    for (int i = 0; i < 3; i++)
        if (from[i] || n[i])
            *p[i] = host_copy(from[i], n[i]);
    return w;
}

static void host_release(loom__value *w)
{
    free(w->data);
    free(w->rowptr);
    free(w->col);
}

/* A device value with copies of v's arrays (when v's data is NULL: every byte of the data `fill`,
 * uninitialised for fill < 0). */
static loom__value dev_dup(lt_gpu *g, const loom__value *v, int fill)
{
    loom__value w = *v;
    void **p[3];
    size_t n[3];
    parts(v, p, n, &w);
    const void *from[3] = {v->data, v->rowptr, v->col};
    for (int i = 0; i < 3; i++) {
        *p[i] = NULL;
        if (!n[i] && !(i == 0 && from[0]))
            continue;
        *p[i] = lt_gpu_alloc(g->dev.index, n[i], from[i], i == 0 ? fill : -1);
    }
    return w;
}

static void dev_release(loom__value *w)
{
    loom__cuda_free(w->data);
    loom__cuda_free(w->rowptr);
    loom__cuda_free(w->col);
}

/* The device value's data back on the host (a new malloc'd block of dense_bytes). */
static void *to_host(const loom__value *dev, size_t n)
{
    void *h = malloc(n ? n : 1);
    char msg[256];
    ck_assert_ptr_nonnull(h);
    loom_status s = loom__cuda_copy_sync(h, dev->data, n, msg, sizeof msg);
    ck_assert_msg(s == LOOM_OK, "%s", msg);
    return h;
}

static double elem(loom_dtype dt, const void *p, int64_t i)
{
    switch (dt) {
    case LOOM_F32:
        return ((const float *)p)[i];
    case LOOM_F64:
        return ((const double *)p)[i];
    case LOOM_I32:
        return ((const int32_t *)p)[i];
    case LOOM_I64:
        return (double)((const int64_t *)p)[i];
    default:
        return ((const uint8_t *)p)[i];
    }
}

/* Worst relative difference of two host arrays; NaN where only one is NaN counts as infinite. */
static double compare(const char *what, const loom_tensor *t, loom_dtype dt, const void *cuda, const void *cpu, int64_t n,
                      double tol)
{
    double worst = 0;
    int exact = !loom_dtype_is_float(dt);
    for (int64_t i = 0; i < n; i++) {
        double a = elem(dt, cuda, i), b = elem(dt, cpu, i);
        double e = (isnan(a) && isnan(b)) ? 0 : fabs(a - b) / fmax(1.0, fabs(b));
        if (isnan(e))
            e = INFINITY;
        if (exact ? a != b : !(e <= tol)) /* asserting every element would cost a pipe write each */
            ck_abort_msg("%s of %s '%s': element %lld is %.9g on CUDA, %.9g on the CPU (error %.3g, tol %.3g)", what,
                         loom__op_def(t->op)->name, t->name, (long long)i, a, b, e, exact ? 0.0 : tol);
        if (e > worst)
            worst = e;
    }
    return worst;
}

/* The kernel of t with g's modes on device values (the workspace's bytes `fill` ^ 0x5a when fill
 * >= 0); *err gets the device error record, which is then cleared. */
static loom_status run_cuda(lt_gpu *g, const loom_tensor *t, loom__value *out, loom__value *const *dsrc, int64_t step,
                            int training, int fill, loom__cuda_err *err, char *msg, size_t len)
{
    const loom__cuda_op *op = loom__cuda_op_get(t->op);
    if (!op->run) {
        snprintf(msg, len, "%s has no CUDA kernel", loom__op_def(t->op)->name);
        return LOOM_ERR_UNSUPPORTED;
    }
    int64_t nnz[LOOM__MAX_SRC] = {0};
    for (int i = 0; i < t->n_src; i++)
        nnz[i] = dsrc[i]->rowptr ? dsrc[i]->nnz : 0;
    loom__cuda_kctx cc = lt_gpu_kctx(g);
    cc.err = g->dev.err;
    cc.tag = t->id;
    size_t ws = op->workspace ? op->workspace(t, nnz, &cc) : 0;
    void *wsp = NULL;
    loom_status s;
    if (ws && fill >= 0) {
        wsp = lt_gpu_alloc(g->dev.index, ws, NULL, fill ^ 0x5a);
    } else {
        s = loom__cuda_alloc(g->dev.index, ws, &wsp, msg, len);
        if (s != LOOM_OK)
            return s;
    }
    cc.workspace = wsp;
    cc.workspace_bytes = ws;
    msg[0] = 0;
    loom__kctx kc = {.step = step, .training = training, .seed = t->graph->seed, .msg = msg, .msglen = len, .cuda = &cc};
    s = op->run(t, out, dsrc, &kc);
    char m2[256];
    loom_status s2 = loom__cuda_stream_sync(g->dev.stream[LOOM__CUDA_COMPUTE], m2, sizeof m2);
    if (s == LOOM_OK && s2 != LOOM_OK) {
        snprintf(msg, len, "%s", m2);
        s = s2;
    }
    loom_status s3 = loom__cuda_copy_sync(err, g->dev.err, sizeof *err, m2, sizeof m2);
    ck_assert_msg(s3 == LOOM_OK, "%s", m2);
    static const char zero[LOOM__CUDA_ERR_BYTES];
    loom__cuda_copy_sync(g->dev.err, zero, sizeof zero, m2, sizeof m2);
    loom__cuda_free(wsp);
    return s;
}

/* Runs the CUDA kernel of t on device copies of src; fills dout (device, its bytes `fill` before
 * the run when fill >= 0, as is the workspace) and dsrc (device copies, updated for in-place ops). */
static loom_status run_on_device(lt_gpu *g, const loom_tensor *t, const loom__value *out_like, loom__value *const *src,
                                 int64_t step, int training, int fill, loom__value *dout, loom__value *dsrc,
                                 loom__cuda_err *err, char *msg, size_t len)
{
    loom__value *dp[LOOM__MAX_SRC];
    for (int i = 0; i < t->n_src; i++) {
        dsrc[i] = dev_dup(g, src[i], -1);
        dp[i] = &dsrc[i];
    }
    loom__value shape = *out_like;
    shape.data = NULL;
    shape.rowptr = NULL;
    shape.col = NULL;
    *dout = dev_dup(g, &shape, fill);
    return run_cuda(g, t, dout, dp, step, training, fill, err, msg, len);
}

static void release_all(const loom_tensor *t, loom__value *dout, loom__value *dsrc)
{
    for (int i = 0; i < t->n_src; i++)
        dev_release(&dsrc[i]);
    dev_release(dout);
}

loom_status lt_gpu_run_op(lt_gpu *g, const loom_tensor *t, const loom__value *out_like, loom__value *const *src,
                          loom__cuda_err *err, char *msg, size_t len)
{
    loom__value dout, dsrc[LOOM__MAX_SRC];
    loom_status s = run_on_device(g, t, out_like, src, 0, 1, -1, &dout, dsrc, err, msg, len);
    release_all(t, &dout, dsrc);
    return s;
}

void *lt_gpu_run_filled(lt_gpu *g, const loom_tensor *t, const loom__value *out_like, loom__value *const *src, int fill,
                        size_t *n)
{
    loom__value dout, dsrc[LOOM__MAX_SRC];
    loom__cuda_err err;
    char msg[512];
    loom_status s = run_on_device(g, t, out_like, src, 0, 1, fill, &dout, dsrc, &err, msg, sizeof msg);
    ck_assert_msg(s == LOOM_OK, "%s '%s': %s", loom__op_def(t->op)->name, t->name, msg);
    ck_assert_msg(err.code == 0, "%s '%s': device error %d", loom__op_def(t->op)->name, t->name, err.code);
    *n = dense_bytes(out_like);
    void *h = to_host(&dout, *n);
    release_all(t, &dout, dsrc);
    return h;
}

int lt_gpu_sources(loom_program *p, const loom_tensor *t, loom__value **src)
{
    int ok = 1;
    for (int i = 0; i < t->n_src; i++) {
        src[i] = &p->val[t->src[i]->id];
        ok &= p->ready[t->src[i]->id];
    }
    return ok;
}

double lt_gpu_check_op(lt_gpu *g, const loom_tensor *t, const loom__value *out_like, loom__value *const *src,
                       int64_t step, int training, double tol)
{
    const loom_op_def *def = loom__op_def(t->op);
    int inplace = (def->flags & LOOM__OPF_INPLACE) != 0;
    char msg[512];

    /* the CPU kernel on host copies */
    loom__value hsrc[LOOM__MAX_SRC], *hp[LOOM__MAX_SRC];
    for (int i = 0; i < t->n_src; i++) {
        hsrc[i] = host_dup(src[i]);
        hp[i] = &hsrc[i];
    }
    loom__value hout = {.dtype = out_like->dtype, .ndim = out_like->ndim};
    memcpy(hout.shape, out_like->shape, sizeof hout.shape);
    if (!inplace)
        hout.data = calloc(dense_bytes(&hout) + 1, 1);
    msg[0] = 0;
    loom__kctx kc = {.step = step, .training = training, .seed = t->graph->seed, .msg = msg, .msglen = sizeof msg};
    loom_status s = def->cpu(t, inplace ? NULL : &hout, hp, &kc);
    ck_assert_msg(s == LOOM_OK, "CPU kernel of %s '%s': %s", def->name, t->name, msg);

    /* the CUDA kernel on device copies */
    loom__value dout, dsrc[LOOM__MAX_SRC];
    loom__cuda_err err;
    s = run_on_device(g, t, &hout, src, step, training, -1, &dout, dsrc, &err, msg, sizeof msg);
    ck_assert_msg(s == LOOM_OK, "CUDA kernel of %s '%s': %s", def->name, t->name, msg);
    ck_assert_msg(err.code == 0, "CUDA kernel of %s '%s' recorded device error %d (value %lld, bound %lld)", def->name,
                  t->name, err.code, err.value, err.bound);

    double worst = 0;
    if (!inplace) {
        size_t n = dense_bytes(&hout);
        void *back = to_host(&dout, n);
        worst = compare("output", t, hout.dtype, back, hout.data, loom__numel(&hout), tol);
        free(back);
    } else {
        for (int i = 0; i < t->n_src; i++) {
            if (hsrc[i].rowptr)
                continue;
            size_t n = dense_bytes(&hsrc[i]);
            void *back = to_host(&dsrc[i], n);
            double w = compare("updated source", t, hsrc[i].dtype, back, hsrc[i].data, loom__numel(&hsrc[i]), tol);
            worst = fmax(worst, w);
            free(back);
        }
    }
    for (int i = 0; i < t->n_src; i++)
        host_release(&hsrc[i]);
    release_all(t, &dout, dsrc);
    free(hout.data);
    return worst;
}

int lt_gpu_check_bits(lt_gpu *g, loom_program *p, int (*pick)(loom_op op))
{
    int checked = 0;
    lt_gpu_set_modes(g, 1, 0);
    for (int id = 0; id < p->n; id++) {
        const loom_tensor *t = p->g->t[id];
        loom__value *src[LOOM__MAX_SRC];
        if (!pick(t->op) || p->dead[id] || !p->ready[id] || !lt_gpu_sources(p, t, src))
            continue;
        size_t n1, n2;
        void *a = lt_gpu_run_filled(g, t, &p->val[id], src, 0x00, &n1);
        void *b = lt_gpu_run_filled(g, t, &p->val[id], src, 0xff, &n2);
        ck_assert(n1 == n2);
        ck_assert_msg(!memcmp(a, b, n1), "%s '%s' (id %d): two deterministic runs differ", loom__op_def(t->op)->name,
                      t->name, id);
        free(a);
        free(b);
        checked++;
    }
    lt_gpu_set_modes(g, 0, 0);
    return checked;
}

double lt_gpu_check_program(lt_gpu *g, loom_program *p, double tol)
{
    double worst = 0;
    int checked = 0;
    for (int id = 0; id < p->n; id++) {
        const loom_tensor *t = p->g->t[id];
        const loom_op_def *def = loom__op_def(t->op);
        if ((def->flags & LOOM__OPF_LEAF) || p->dead[id])
            continue;
        int inplace = (def->flags & LOOM__OPF_INPLACE) != 0;
        if (!inplace && !p->ready[id])
            continue; /* not run by the last run's mode */
        loom__value *src[LOOM__MAX_SRC];
        if (!lt_gpu_sources(p, t, src))
            continue;
        loom__value none = {.dtype = t->dtype};
        double w = lt_gpu_check_op(g, t, inplace ? &none : &p->val[id], src, p->step, 1, tol);
        if (!inplace) {
            /* and against the value the reference executor computed */
            const loom__value *v = &p->val[id];
            loom__value dout, dsrc[LOOM__MAX_SRC];
            loom__cuda_err err;
            char msg[512];
            loom_status s = run_on_device(g, t, v, src, p->step, 1, -1, &dout, dsrc, &err, msg, sizeof msg);
            ck_assert_msg(s == LOOM_OK, "%s", msg);
            void *back = to_host(&dout, dense_bytes(v));
            w = fmax(w, compare("output (against the reference run)", t, v->dtype, back, v->data, loom__numel(v), tol));
            free(back);
            release_all(t, &dout, dsrc);
        }
        worst = fmax(worst, w);
        checked++;
    }
    ck_assert_msg(checked > 0, "lt_gpu_check_program: no op was checked (run the program in GRAD mode first)");
    return worst;
}

/* ---- cases for the kernel tests ------------------------------------------------------------------ */

double lt_gpu_tol(loom_dtype dt) { return dt == LOOM_F64 ? 1e-9 : 1e-5; }

loom_tensor *lt_gpu_param(lt_case *c, const char *name, loom_dtype dt, loom_shape s)
{
    if (dt == LOOM_F64)
        return lt_param(c, name, s);
    return loom_param(lt_graph(c), name, dt, s, loom_init_normal(0.0, 1.0, lt_name_seed(name)));
}

loom_tensor *lt_gpu_param_uniform(lt_case *c, const char *name, loom_dtype dt, loom_shape s, double lo, double hi)
{
    return loom_param(lt_graph(c), name, dt, s, loom_init_uniform(lo, hi, lt_name_seed(name)));
}

loom_shape lt_gpu_shape(int n, const int64_t *d)
{
    loom_shape s = {.ndim = n};
    for (int i = 0; i < n; i++)
        s.d[i] = d[i];
    return s;
}

loom_tensor *lt_gpu_sq_loss(loom_graph *g, loom_tensor *y) { return loom_sum(g, loom_mul(g, y, y), LOOM_ALL_AXES, 0); }

loom_tensor *lt_gpu_add_sq(loom_graph *g, loom_tensor *acc, loom_tensor *y)
{
    loom_tensor *t = lt_gpu_sq_loss(g, y);
    return acc ? loom_add(g, acc, t) : t;
}

loom_tensor *lt_gpu_input_normal(lt_case *c, const char *name, loom_dtype dt, loom_shape s, const int64_t *now,
                                 uint64_t seed)
{
    int64_t n = 1;
    for (int i = 0; i < s.ndim; i++)
        n *= now ? now[i] : s.d[i];
    double *d = malloc((size_t)(n ? n : 1) * sizeof *d);
    float *f = malloc((size_t)(n ? n : 1) * sizeof *f);
    ck_assert(d && f);
    lt_fill_normal(d, n, seed);
    for (int64_t i = 0; i < n; i++)
        f[i] = (float)d[i];
    loom_tensor *t = now ? lt_input(c, name, dt, s, now, dt == LOOM_F64 ? (void *)d : (void *)f)
                         : lt_input_static(c, name, dt, s, dt == LOOM_F64 ? (void *)d : (void *)f);
    free(d);
    free(f);
    return t;
}

loom_optimizer lt_gpu_adam(void) { return loom_adam(0.01); }

double lt_gpu_check_case(lt_gpu *g, lt_case *c, loom_tensor *loss, loom_optimizer opt, int steps, double tol)
{
    loom_program *p = lt_compile_reference(c, loss, &opt);
    for (int s = 0; s < steps; s++) {
        loom_status st = loom_program_run(p, LOOM_RUN_STEP);
        ck_assert_msg(st == LOOM_OK, "step %d: %s", s, loom_program_error(p));
    }
    loom_status st = loom_program_run(p, LOOM_RUN_GRAD);
    ck_assert_msg(st == LOOM_OK, "grad run: %s", loom_program_error(p));
    return lt_gpu_check_program(g, p, tol);
}
