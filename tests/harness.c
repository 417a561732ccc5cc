/* The op test harness (see harness.h). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAX_FEEDS = 32 };

struct lt_case {
    loom_graph *g;
    loom_program *prog;
    loom_tensor *r; /* the gradcheck's random weights, when made */
    int nfeeds;
    struct {
        loom_tensor *t;
        loom_array a;
        loom_csr m;
        int csr;
    } feed[MAX_FEEDS];
};

lt_case *lt_case_new(void)
{
    lt_case *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->g = loom_graph_new();
    ck_assert_ptr_nonnull(c->g);
    return c;
}

void lt_case_free(lt_case *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nfeeds; i++) {
        loom_array_free(&c->feed[i].a);
        loom_csr_free(&c->feed[i].m);
    }
    loom_program_free(c->prog);
    loom_graph_free(c->g);
    free(c);
}

loom_graph *lt_graph(lt_case *c) { return c->g; }

loom_program *lt_case_program(lt_case *c) { return c->prog; }

loom_tensor *lt_input(lt_case *c, const char *name, loom_dtype dtype, loom_shape shape, const int64_t *shape_now,
                      const void *data)
{
    ck_assert_int_lt(c->nfeeds, MAX_FEEDS);
    loom_tensor *t = loom_input(c->g, name, dtype, shape);
    loom_array *a = &c->feed[c->nfeeds].a;
    ck_assert_int_eq(loom_array_alloc(a, dtype, shape.ndim, shape_now), LOOM_OK);
    if (data)
        memcpy(a->data, data, (size_t)loom_array_numel(a) * loom_dtype_size(dtype));
    c->feed[c->nfeeds++].t = t;
    return t;
}

loom_tensor *lt_input_static(lt_case *c, const char *name, loom_dtype dtype, loom_shape shape, const void *data)
{
    int64_t now[LOOM_MAX_DIMS];
    for (int i = 0; i < shape.ndim; i++)
        now[i] = shape.d[i];
    return lt_input(c, name, dtype, shape, now, data);
}

loom_tensor *lt_input_csr(lt_case *c, const char *name, loom_dim nrows, loom_dim ncols, const loom_csr *m)
{
    ck_assert_int_lt(c->nfeeds, MAX_FEEDS);
    loom_tensor *t = loom_input_csr(c->g, name, m->vdtype, nrows, ncols);
    loom_csr *d = &c->feed[c->nfeeds].m;
    size_t vs = loom_dtype_size(m->vdtype);
    *d = (loom_csr){.nrows = m->nrows, .ncols = m->ncols, .nnz = m->nnz, .vdtype = m->vdtype};
    d->rowptr = malloc((size_t)(m->nrows + 1) * sizeof *d->rowptr);
    d->col = malloc((size_t)m->nnz * sizeof *d->col + 1);
    d->val = malloc((size_t)m->nnz * vs + 1);
    ck_assert(d->rowptr && d->col && d->val);
    memcpy(d->rowptr, m->rowptr, (size_t)(m->nrows + 1) * sizeof *d->rowptr);
    if (m->nnz) {
        memcpy(d->col, m->col, (size_t)m->nnz * sizeof *d->col);
        memcpy(d->val, m->val, (size_t)m->nnz * vs);
    }
    c->feed[c->nfeeds].csr = 1;
    c->feed[c->nfeeds++].t = t;
    return t;
}

uint64_t lt_name_seed(const char *name)
{
    uint64_t seed = 0;
    for (const char *s = name; *s; s++)
        seed = seed * 131 + (uint8_t)*s;
    return seed;
}

loom_tensor *lt_param(lt_case *c, const char *name, loom_shape shape)
{
    return loom_param(c->g, name, LOOM_F64, shape, loom_init_normal(0.0, 1.0, lt_name_seed(name)));
}

static void compile_and_feed_opts(lt_case *c, loom_tensor *loss, const loom_train_opts *opts)
{
    if (c->prog)
        return;
    loom_status s = loom_compile(c->g, loss, opts, &c->prog);
    ck_assert_msg(s == LOOM_OK, "compile failed: %s", loom_graph_error(c->g));
    for (int i = 0; i < c->nfeeds; i++) {
        s = c->feed[i].csr ? loom_program_feed_csr(c->prog, c->feed[i].t, &c->feed[i].m)
                           : loom_program_feed(c->prog, c->feed[i].t, &c->feed[i].a);
        ck_assert_msg(s == LOOM_OK, "feed failed: %s", loom_program_error(c->prog));
    }
}

static void compile_and_feed(lt_case *c, loom_tensor *loss) { compile_and_feed_opts(c, loss, NULL); }

loom_program *lt_compile(lt_case *c, loom_tensor *loss, const loom_train_opts *opts)
{
    ck_assert_msg(loom_graph_status(c->g) == LOOM_OK, "graph error: %s", loom_graph_error(c->g));
    ck_assert_ptr_null(c->prog);
    compile_and_feed_opts(c, loss, opts);
    return c->prog;
}

loom_program *lt_compile_reference(lt_case *c, loom_tensor *loss, const loom_optimizer *opt)
{
    loom_train_opts o = {.executor = LOOM_EXEC_REFERENCE};
    if (opt)
        o.optimizer = *opt;
    return lt_compile(c, loss, &o);
}

loom_array lt_eval(lt_case *c, loom_tensor *t)
{
    ck_assert_msg(loom_graph_status(c->g) == LOOM_OK, "graph error: %s", loom_graph_error(c->g));
    compile_and_feed(c, NULL);
    loom_status s = loom_program_keep(c->prog, t);
    ck_assert_msg(s == LOOM_OK, "keep failed: %s", loom_program_error(c->prog));
    s = loom_program_run(c->prog, LOOM_RUN_FORWARD);
    ck_assert_msg(s == LOOM_OK, "run failed: %s", loom_program_error(c->prog));
    loom_array a;
    s = loom_program_fetch(c->prog, t, &a);
    ck_assert_msg(s == LOOM_OK, "fetch failed: %s", loom_program_error(c->prog));
    return a;
}

static double get(const loom_array *a, int64_t i)
{
    return a->dtype == LOOM_F64 ? ((double *)a->data)[i] : ((float *)a->data)[i];
}

static double loss_now(lt_case *c, loom_tensor *loss, loom_run_mode mode)
{
    loom_status s = loom_program_run(c->prog, mode);
    ck_assert_msg(s == LOOM_OK, "run failed: %s", loom_program_error(c->prog));
    loom_array a;
    ck_assert_int_eq(loom_program_fetch(c->prog, loss, &a), LOOM_OK);
    return get(&a, 0);
}

double lt_gradcheck(lt_case *c, loom_tensor *out, double tol)
{
    loom_graph *g = c->g;
    ck_assert_msg(loom_graph_status(g) == LOOM_OK, "graph error: %s", loom_graph_error(g));
    ck_assert_ptr_null(c->prog);
    /* R's concrete shape is out's, known only by running once: evaluate out in a program of its
     * own first, built on a copy of the feeds. */
    loom_tensor *r = loom_input(g, "__lt_r", loom_tensor_dtype(out), loom_tensor_shape(out));
    loom_tensor *loss = loom_sum(g, loom_mul(g, out, r), LOOM_ALL_AXES, 0);
    ck_assert_msg(loom_graph_status(g) == LOOM_OK, "graph error: %s", loom_graph_error(g));
    compile_and_feed(c, loss);

    /* R takes out's concrete shape: its dynamic dims are sized by the feeds that carry them. */
    loom_program *pr = c->prog;
    loom_array probe;
    loom_shape rs = loom_tensor_shape(out);
    int64_t shape[LOOM_MAX_DIMS];
    for (int i = 0; i < rs.ndim; i++) {
        shape[i] = rs.d[i];
        if (loom_dim_is_dynamic(rs.d[i])) {
            shape[i] = -1;
            for (int f = 0; f < c->nfeeds && shape[i] < 0; f++) {
                loom_shape fs = loom_tensor_shape(c->feed[f].t);
                for (int j = 0; j < fs.ndim; j++)
                    if (fs.d[j] == rs.d[i])
                        shape[i] = c->feed[f].csr ? (j ? c->feed[f].m.ncols : c->feed[f].m.nrows) : c->feed[f].a.shape[j];
            }
            ck_assert_msg(shape[i] >= 0, "gradcheck: no feed carries dynamic dim %d of the output", i);
        }
    }
    ck_assert_int_eq(loom_array_alloc(&probe, loom_tensor_dtype(out), rs.ndim, shape), LOOM_OK);
    int64_t n = loom_array_numel(&probe);
    for (int64_t i = 0; i < n; i++) {
        double v = sin(0.7 * (double)i + 0.3) + 0.5;
        if (probe.dtype == LOOM_F64)
            ((double *)probe.data)[i] = v;
        else
            ((float *)probe.data)[i] = (float)v;
    }
    ck_assert_msg(loom_program_feed(pr, r, &probe) == LOOM_OK, "feed R: %s", loom_program_error(pr));
    loom_array_free(&probe);

    (void)loss_now(c, loss, LOOM_RUN_GRAD);
    double worst = 0;
    int nparams = 0;
    for (int k = 0;; k++) {
        loom_tensor *p = loom_graph_param(g, k);
        if (!p)
            break;
        nparams++;
        loom_tensor *gp = loom_program_grad(pr, p);
        loom_array pv, gv;
        ck_assert_int_eq(loom_program_fetch(pr, p, &pv), LOOM_OK);
        int64_t np = loom_array_numel(&pv);
        double *analytic = calloc((size_t)np + 1, sizeof *analytic);
        ck_assert_ptr_nonnull(analytic);
        if (gp) {
            ck_assert_msg(loom_program_fetch(pr, gp, &gv) == LOOM_OK, "fetch grad: %s", loom_program_error(pr));
            for (int64_t i = 0; i < np; i++)
                analytic[i] = get(&gv, i);
        }
        for (int64_t i = 0; i < np; i++) {
            const double eps = pv.dtype == LOOM_F64 ? 1e-6 : 1e-3;
            double x0 = get(&pv, i);
            double *d64 = pv.data;
            float *d32 = pv.data;
            if (pv.dtype == LOOM_F64)
                d64[i] = x0 + eps;
            else
                d32[i] = (float)(x0 + eps);
            double lp = loss_now(c, loss, LOOM_RUN_FORWARD);
            if (pv.dtype == LOOM_F64)
                d64[i] = x0 - eps;
            else
                d32[i] = (float)(x0 - eps);
            double lm = loss_now(c, loss, LOOM_RUN_FORWARD);
            if (pv.dtype == LOOM_F64)
                d64[i] = x0;
            else
                d32[i] = (float)x0;
            double num = (lp - lm) / (2 * eps);
            double err = fabs(num - analytic[i]) / fmax(1.0, fmax(fabs(num), fabs(analytic[i])));
            if (err > worst)
                worst = err;
            ck_assert_msg(err <= tol, "gradcheck: d loss / d %s[%lld]: analytic %.10g, numeric %.10g (error %.3g > %.3g)",
                          loom_tensor_name(p), (long long)i, analytic[i], num, err, tol);
        }
        free(analytic);
    }
    ck_assert_msg(nparams > 0, "gradcheck: the graph has no parameters");
    return worst;
}

void lt_expect_error(loom_graph *g, const char *needle)
{
    const char *e = loom_graph_error(g);
    ck_assert_msg(e != NULL, "expected an error containing '%s', got none", needle);
    ck_assert_msg(strstr(e, needle) != NULL, "expected an error containing '%s', got '%s'", needle, e);
    loom_program *p = NULL;
    ck_assert_int_ne(loom_compile(g, NULL, NULL, &p), LOOM_OK);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(loom_graph_error(g), needle) != NULL, "compile reported '%s'", loom_graph_error(g));
}

void lt_assert_close(const double *a, const double *b, int64_t n, double tol, const char *what)
{
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(a[i] - b[i]) <= tol * fmax(1.0, fabs(b[i])), "%s[%lld]: got %.10g, expected %.10g", what,
                      (long long)i, a[i], b[i]);
}

loom_graph *lt_graph_on(const char *placement, uint64_t seed)
{
    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, seed);
    if (placement) {
        loom_placement *pl = lt_placement(placement);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    return g;
}

loom_placement *lt_placement(const char *s)
{
    loom_error err = LOOM_ERROR_INIT;
    loom_placement *pl = loom_placement_parse(s, &err);
    ck_assert_msg(pl != NULL, "%s", err.msg);
    return pl;
}

int lt_run_suite(Suite *s)
{
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}

int lt_run_gpu_suite(Suite *s)
{
    loom_error why = {0};
    if (loom_cuda_device_count(&why) < 1) {
        printf("skipped: no CUDA device (%s)\n", why.msg[0] ? why.msg : "none found");
        srunner_free(srunner_create(s)); /* frees the suite */
        return 77;
    }
    setenv("CK_FORK", "no", 1);
    return lt_run_suite(s);
}

int lt_mpi_init(const char *prog, char *placement, size_t len, const char *devices)
{
    loom_error e = LOOM_ERROR_INIT;
    if (loom_dist_init(&e) != LOOM_OK) {
        fprintf(stderr, "%s: %s\n", prog, e.msg);
        return -1;
    }
    snprintf(placement, len, "@0-%d/%s", loom_dist_size() - 1, devices);
    return 0;
}

int lt_run_mpi_suite(Suite *s)
{
    SRunner *r = srunner_create(s);
    srunner_set_fork_status(r, CK_NOFORK); /* one process per rank: MPI (and CUDA) do not survive a fork */
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    loom_dist_finalize();
    return failed ? 1 : 0;
}

void lt_record_results(const char *what, const double *v, int64_t n)
{
    const char *path = getenv("LOOM_TEST_RESULTS");
    if (!path || !*path)
        return;
    /* one write per line with O_APPEND: lines of parallel tests and forked cases stay whole */
    size_t cap = strlen(what) + 17 * (size_t)n + 2, len = 0;
    char *line = malloc(cap + 1);
    ck_assert(line != NULL);
    len += (size_t)snprintf(line, cap + 1, "%s", what);
    for (int64_t i = 0; i < n; i++) {
        uint64_t bits;
        memcpy(&bits, &v[i], sizeof bits);
        len += (size_t)snprintf(line + len, cap + 1 - len, " %016llx", (unsigned long long)bits);
    }
    line[len++] = '\n';
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    ck_assert_msg(fd >= 0, "LOOM_TEST_RESULTS=%s: %s", path, strerror(errno));
    ck_assert_msg(write(fd, line, len) == (ssize_t)len, "LOOM_TEST_RESULTS=%s: short write", path);
    close(fd);
    free(line);
}

double *lt_to_double(const loom_array *a)
{
    int64_t n = loom_array_numel(a);
    double *y = malloc((size_t)(n ? n : 1) * sizeof *y);
    ck_assert_ptr_nonnull(y);
    for (int64_t i = 0; i < n; i++)
        y[i] = get(a, i);
    return y;
}

int64_t lt_numel(int n, const int64_t *d)
{
    int64_t k = 1;
    for (int i = 0; i < n; i++)
        k *= d[i];
    return k;
}

static uint64_t lcg(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 11;
}

void lt_fill_normal(double *x, int64_t n, uint64_t seed)
{
    uint64_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < n; i++) {
        double u = ((double)lcg(&s) + 0.5) * 0x1.0p-53, v = (double)lcg(&s) * 0x1.0p-53;
        x[i] = sqrt(-2 * log(u)) * cos(2 * M_PI * v);
    }
}

/* One function in its own unit, not `xf[i] = (float)(x[i] = f32 ? (float)x[i] : x[i])` inline in
 * each test: gcc 12 and 13 at -O3 (SLP vectorisation) drop some of the rounded stores to x of that
 * loop (x[12] and x[13] of 15 doubles keep their unrounded values), which made test_gather_forward
 * expect unrounded values in the Release build. The loop below is not the pattern that trips it. */
void lt_as_dtype(double *x, float *xf, int64_t n, int f32)
{
    for (int64_t i = 0; i < n; i++) {
        if (f32)
            x[i] = (float)x[i];
        xf[i] = (float)x[i];
    }
}

void lt_fill_int(int32_t *x, int64_t n, int32_t hi, uint64_t seed)
{
    uint64_t s = seed * 2654435761u + 7;
    for (int64_t i = 0; i < n; i++)
        x[i] = (int32_t)(lcg(&s) % (uint64_t)hi);
}

static uint64_t graph_rng(uint64_t *s)
{
    *s = *s * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *s >> 33;
}


/* Builds a random DAG of ops on [R, C] float tensors (and some reshaped or reduced ones) from two
 * inputs and three parameters, and returns a scalar loss. The same seed builds the same graph. */
loom_tensor *lt_random_graph(loom_graph *g, uint64_t seed, loom_tensor **x_out, loom_tensor **idx_out, int64_t *rc)
{
    uint64_t s = seed * 7919 + 1;
    int64_t R = 1 + (int64_t)(graph_rng(&s) % 5), C = 1 + (int64_t)(graph_rng(&s) % 4);
    rc[0] = R;
    rc[1] = C;
    loom_dtype dt = graph_rng(&s) % 2 ? LOOM_F64 : LOOM_F32;
    loom_tensor *pool[24];
    int n = 0;
    loom_tensor *x = loom_input(g, "x", dt, loom_shape(R, C));
    loom_tensor *idx = loom_input(g, "idx", LOOM_I32, loom_shape(R));
    *x_out = x;
    *idx_out = idx;
    pool[n++] = x;
    pool[n++] = loom_param(g, "w0", dt, loom_shape(R, C), loom_init_normal(0, 1, seed));
    pool[n++] = loom_param(g, "w1", dt, loom_shape(R, C), loom_init_uniform(-1, 1, seed + 1));
    loom_tensor *sq = loom_param(g, "wc", dt, loom_shape(C, C), loom_init_glorot(seed + 2));
    int nops = 4 + (int)(graph_rng(&s) % 12);
    for (int k = 0; k < nops && n < 24; k++) {
        loom_tensor *a = pool[graph_rng(&s) % (uint64_t)n], *b = pool[graph_rng(&s) % (uint64_t)n], *y = NULL;
        switch (graph_rng(&s) % 14) {
        case 0: y = loom_add(g, a, b); break;
        case 1: y = loom_sub(g, a, b); break;
        case 2: y = loom_mul(g, a, b); break;
        case 3: y = loom_matmul(g, a, sq); break;
        case 4: y = loom_tanh(g, a); break;
        case 5: y = loom_sigmoid(g, a); break;
        case 6: y = loom_relu(g, a); break;
        case 7: y = loom_dropout(g, a, 0.25); break;
        case 8: y = loom_log_softmax(g, a); break;
        case 9: y = loom_bias_add(g, a, loom_sum(g, b, LOOM_AXIS(0), 0)); break;
        case 10: y = loom_gather_rows(g, a, idx); break;
        case 11: y = loom_reshape(g, loom_transpose(g, loom_reshape(g, a, loom_shape(R, C)), NULL), loom_shape(R, C)); break;
        case 12: y = loom_scale(g, loom_elu(g, a, 0.7), 0.5); break;
        default: {
            loom_tensor *both[2] = {a, b};
            int64_t at = (int64_t)(graph_rng(&s) % 2) * C;
            y = loom_slice(g, loom_concat(g, both, 2, 1), 1, at, at + C);
        }
        }
        pool[n++] = y;
    }
    /* the loss reads the last few tensors, so that most of the graph matters */
    loom_tensor *loss = loom_mean(g, pool[n - 1], LOOM_ALL_AXES, 0);
    for (int k = 2; k <= 3 && n - k >= 0; k++)
        loss = loom_add(g, loss, loom_mean(g, loom_mul(g, pool[n - k], pool[n - k]), LOOM_ALL_AXES, 0));
    return loss;
}


char *lt_plan_json(loom_program *p, char *path)
{
    strcpy(path, "/tmp/loom_test_plan_XXXXXX");
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w+");
    ck_assert_ptr_nonnull(f);
    ck_assert_msg(loom_program_write_plan(p, LOOM_RUN_STEP, LOOM_PLAN_JSON, f) == LOOM_OK, "%s", loom_program_error(p));
    long n = ftell(f);
    char *text = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(text);
    rewind(f);
    ck_assert_int_eq(fread(text, 1, (size_t)n, f), (size_t)n);
    text[n] = 0;
    fclose(f);
    return text;
}

void lt_write_file(const char *path, const char *text, size_t n)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(text, 1, n, f), n);
    fclose(f);
}
