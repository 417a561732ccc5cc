/* Batch norm and layer norm: training values, the weight and bias trained and the running
 * statistics updated over three steps against a reference computed here as PyTorch's BatchNorm2d /
 * BatchNorm1d computes them, then an evaluation forward on the running statistics; gradients by
 * central differences; data parallelism on cpu:0-1 and cpu:0-3, the batch split S(0), giving one
 * device's losses, parameters and running statistics (sync-BN: the statistics are partial sums
 * made whole by an all-reduce); and the bad calls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/session/program.h"
#include "harness.h"

enum { STEPS = 3, MAXX = 6 * 3 * 2 * 3 };

static const double MOMENTUM = 0.1, EPS = 1e-5, LR = 0.1;

/* ---- the reference ------------------------------------------------------------------------------- */

/* x [n, c, m]'s per-channel mean and biased variance. */
static void ref_moments(const double *x, int n, int c, int m, double *mean, double *var)
{
    for (int k = 0; k < c; k++) {
        double s = 0, q = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
                s += x[(i * c + k) * m + j];
        mean[k] = s / (n * m);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
                q += (x[(i * c + k) * m + j] - mean[k]) * (x[(i * c + k) * m + j] - mean[k]);
        var[k] = q / (n * m);
    }
}

typedef struct bn_state {
    double w[3], b[3], rm[3], rv[3];
} bn_state;

/* One training step of y = bn(x), loss = sum(y * r), SGD on the weight and bias: returns the loss
 * (at the weights before the step) and updates st as PyTorch's BatchNorm in train() mode and
 * torch.optim.SGD would. */
static double ref_step(bn_state *st, const double *x, const double *r, int n, int c, int m)
{
    double mean[3], var[3], loss = 0;
    ref_moments(x, n, c, m, mean, var);
    for (int k = 0; k < c; k++) {
        const double rstd = 1 / sqrt(var[k] + EPS);
        double dw = 0, db = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) {
                const int e = (i * c + k) * m + j;
                const double xh = (x[e] - mean[k]) * rstd;
                loss += (xh * st->w[k] + st->b[k]) * r[e];
                dw += r[e] * xh;
                db += r[e];
            }
        st->w[k] -= LR * dw;
        st->b[k] -= LR * db;
        st->rm[k] = (1 - MOMENTUM) * st->rm[k] + MOMENTUM * mean[k];
        st->rv[k] = (1 - MOMENTUM) * st->rv[k] + MOMENTUM * var[k] * (n * m) / (n * m - 1);
    }
    return loss;
}

/* y = bn(x) in evaluation: the running statistics. */
static void ref_eval(const bn_state *st, const double *x, int n, int c, int m, double *y)
{
    for (int i = 0; i < n; i++)
        for (int k = 0; k < c; k++)
            for (int j = 0; j < m; j++) {
                const int e = (i * c + k) * m + j;
                y[e] = (x[e] - st->rm[k]) / sqrt(st->rv[k] + EPS) * st->w[k] + st->b[k];
            }
}

/* ---- helpers --------------------------------------------------------------------------------------- */

static loom_array array_of(loom_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    loom_array a;
    ck_assert_int_eq(loom_array_alloc(&a, dt, ndim, shape), LOOM_OK);
    for (int64_t i = 0; i < loom_array_numel(&a); i++)
        if (dt == LOOM_F64)
            ((double *)a.data)[i] = v[i];
        else
            ((float *)a.data)[i] = (float)v[i];
    return a;
}

static void fetch(loom_program *p, loom_tensor *t, double *out, int64_t n)
{
    loom_array a;
    ck_assert_msg(loom_program_fetch(p, t, &a) == LOOM_OK, "%s", loom_program_error(p));
    ck_assert_int_eq(loom_array_numel(&a), n);
    double *d = lt_to_double(&a);
    memcpy(out, d, (size_t)n * sizeof *d);
    free(d);
}

static void feed(loom_program *p, loom_tensor *t, loom_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    loom_array a = array_of(dt, ndim, shape, v);
    ck_assert_msg(loom_program_feed(p, t, &a) == LOOM_OK, "%s", loom_program_error(p));
    loom_array_free(&a);
}

static loom_tensor *param(loom_graph *g, const char *name)
{
    loom_tensor *t = loom_graph_find(g, name);
    ck_assert_msg(t != NULL, "no tensor '%s'", name);
    return t;
}

/* The weight, bias and running statistics of the batch norm "bn", c channels. */
static void fetch_bn(loom_program *p, loom_graph *g, double *w, double *b, double *rm, double *rv, int64_t c)
{
    fetch(p, param(g, "bn.weight"), w, c);
    fetch(p, param(g, "bn.bias"), b, c);
    fetch(p, param(g, "bn.running_mean"), rm, c);
    fetch(p, param(g, "bn.running_var"), rv, c);
}

static void set_placement(loom_graph *g, const char *placement)
{
    if (!placement)
        return;
    loom_error err = {0};
    loom_placement *pl = loom_placement_parse(placement, &err);
    ck_assert_msg(pl != NULL, "%s", err.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
}

/* ---- values, running statistics, evaluation ----------------------------------------------------- */

/* _i: (f64) + 2 ([N, C] rather than [N, C, H, W]). Three STEP runs of y = bn(x), loss = sum(y r),
 * on three batches: the losses, weight, bias and running statistics against the reference; a
 * FORWARD and a GRAD run leave the running statistics as they are; then an EVAL run's y. */
START_TEST(test_steps_against_reference)
{
    const loom_dtype dt = _i & 1 ? LOOM_F64 : LOOM_F32;
    const int flat = _i & 2, n = flat ? 6 : 4, c = 3, m = flat ? 1 : 6, nx = n * c * m;
    const int64_t shape4[] = {n, c, 2, 3}, shape2[] = {n, c};
    const int ndim = flat ? 2 : 4;
    const int64_t *shape = flat ? shape2 : shape4;
    const double tol = dt == LOOM_F64 ? 1e-10 : 2e-5;
    double x[STEPS][MAXX], r[MAXX];
    for (int s = 0; s < STEPS; s++) {
        lt_fill_normal(x[s], nx, 40 + (uint64_t)s);
        for (int e = 0; e < nx; e++) /* a mean and scale of its own per channel */
            x[s][e] = 2.0 + 3.0 * x[s][e] + (e / m % c);
    }
    lt_fill_normal(r, nx, 77);
    if (dt == LOOM_F32)
        for (int e = 0; e < nx; e++) {
            r[e] = (float)r[e];
            for (int s = 0; s < STEPS; s++)
                x[s][e] = (float)x[s][e];
        }

    lt_case *lc = lt_case_new();
    loom_graph *g = lt_graph(lc);
    loom_shape xs = {.ndim = ndim};
    for (int i = 0; i < ndim; i++)
        xs.d[i] = shape[i];
    loom_tensor *xt = loom_input(g, "x", dt, xs), *rt = loom_input(g, "r", dt, xs);
    loom_tensor *y = loom_batch_norm(g, "bn", xt, MOMENTUM, EPS);
    loom_tensor *loss = loom_sum(g, loom_mul(g, y, rt), LOOM_ALL_AXES, 0);
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_sgd(LR);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_ptr_null(loom_program_grad(p, param(g, "bn.running_mean")));
    ck_assert_ptr_null(loom_program_grad(p, param(g, "bn.running_var")));
    ck_assert_int_eq(loom_program_keep(p, y), LOOM_OK);
    feed(p, rt, dt, ndim, shape, r);

    bn_state ref = {.w = {1, 1, 1}, .rv = {1, 1, 1}};
    double got[MAXX], want[MAXX];
    for (int s = 0; s < STEPS; s++) {
        feed(p, xt, dt, ndim, shape, x[s]);
        ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
        const double l = ref_step(&ref, x[s], r, n, c, m);
        int64_t nl;
        const double *ls = loom_program_losses(p, &nl);
        lt_assert_close(&ls[s], &l, 1, tol, "the step's loss");
    }
    fetch(p, param(g, "bn.weight"), got, c);
    lt_assert_close(got, ref.w, c, tol, "bn.weight after 3 steps");
    fetch(p, param(g, "bn.bias"), got, c);
    lt_assert_close(got, ref.b, c, tol, "bn.bias after 3 steps");
    fetch(p, param(g, "bn.running_mean"), got, c);
    lt_assert_close(got, ref.rm, c, tol, "bn.running_mean after 3 steps");
    fetch(p, param(g, "bn.running_var"), got, c);
    lt_assert_close(got, ref.rv, c, tol, "bn.running_var after 3 steps");

    /* training mode without a step: the batch's statistics, and no update */
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_FORWARD), LOOM_OK);
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_GRAD), LOOM_OK);
    fetch(p, y, got, nx);
    bn_state batch = ref;
    double mean[3], var[3];
    ref_moments(x[STEPS - 1], n, c, m, mean, var);
    for (int k = 0; k < c; k++)
        batch.rm[k] = mean[k], batch.rv[k] = var[k];
    ref_eval(&batch, x[STEPS - 1], n, c, m, want);
    lt_assert_close(got, want, nx, tol, "y of a training forward run (the batch's statistics)");
    fetch(p, param(g, "bn.running_var"), got, c);
    lt_assert_close(got, ref.rv, c, tol, "bn.running_var after FORWARD and GRAD runs");

    /* evaluation: the running statistics, on a batch of its own */
    double xe[MAXX];
    lt_fill_normal(xe, nx, 91);
    if (dt == LOOM_F32)
        for (int e = 0; e < nx; e++)
            xe[e] = (float)xe[e];
    feed(p, xt, dt, ndim, shape, xe);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_EVAL) == LOOM_OK, "%s", loom_program_error(p));
    fetch(p, y, got, nx);
    ref_eval(&ref, xe, n, c, m, want);
    lt_assert_close(got, want, nx, tol, "y of an evaluation run (the running statistics)");
    fetch(p, param(g, "bn.running_mean"), got, c);
    lt_assert_close(got, ref.rm, c, tol, "bn.running_mean after an EVAL run");
    loom_program_free(p);
    lt_case_free(lc);
}
END_TEST

/* ---- gradients ----------------------------------------------------------------------------------- */

/* d loss / d (x, s, weight, bias) of bn(tanh(x s)) and of layer_norm(tanh(x s)) by central
 * differences: the gradient of x runs through the batch statistics. */
START_TEST(test_gradients)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_tensor *x = lt_param(c, "x", loom_shape(3, 2, 2, 3));
    loom_tensor *s = loom_param(g, "s", LOOM_F64, loom_shape(2, 1, 1), loom_init_uniform(0.5, 1.5, 4));
    loom_tensor *h = loom_tanh(g, loom_mul(g, x, s));
    lt_gradcheck(c, loom_batch_norm(g, "bn", h, 0.1, 1e-5), 1e-6);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    x = lt_param(c, "x", loom_shape(5, 3));
    s = loom_param(g, "s", LOOM_F64, loom_shape(3), loom_init_uniform(0.5, 1.5, 4));
    loom_tensor *y = loom_batch_norm(g, "bn", loom_tanh(g, loom_mul(g, x, s)), 0.1, 1e-5);
    lt_gradcheck(c, loom_batch_norm(g, "bn2", y, 0.1, 1e-3), 1e-6);
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    x = lt_param(c, "x", loom_shape(3, 2, 4));
    s = loom_param(g, "s", LOOM_F64, loom_shape(2, 4), loom_init_uniform(0.5, 1.5, 4));
    lt_gradcheck(c, loom_layer_norm(g, "ln", loom_tanh(g, loom_mul(g, x, s)), 2, 1e-5), 1e-6);
    lt_case_free(c);
}
END_TEST

/* ---- batch_norm_relu against the ops it fuses --------------------------------------------------------- */

enum { FN = 4, FC = 3, FM = 5, FX = FN * FC * FM };

typedef struct fused_result {
    double loss[STEPS], x[FX], r[FX], r0[FX], w[FC], b[FC], rm[FC], rv[FC], eval[FX];
} fused_result;

/* x and r parameters [4, 3, 5] (r unused without res), y = relu(bn(x) + r) built as one op (fused)
 * or three, loss = sum(y q) for a fixed q; on placement (NULL: one device), three SGD steps, then an
 * EVAL run's y, in dt. */
static void run_fused(int fused, int res, const char *placement, loom_dtype dt, fused_result *out)
{
    loom_graph *g = loom_graph_new();
    set_placement(g, placement);
    const loom_shape sh = loom_shape(FN, FC, FM);
    loom_tensor *x = loom_param(g, "x", dt, sh, loom_init_normal(0, 1, 3));
    loom_tensor *r = loom_param(g, "r", dt, sh, loom_init_normal(0, 1, 5));
    loom_tensor *q = loom_input(g, "q", dt, sh);
    loom_tensor *y = fused ? loom_batch_norm_relu(g, "bn", x, res ? r : NULL, MOMENTUM, EPS)
                           : loom_relu(g, res ? loom_add(g, loom_batch_norm(g, "bn", x, MOMENTUM, EPS), r)
                                              : loom_batch_norm(g, "bn", x, MOMENTUM, EPS));
    loom_tensor *loss = loom_sum(g, loom_mul(g, y, q), LOOM_ALL_AXES, 0);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(LR);
    loom_program *p;
    ck_assert_msg(loom_compile(g, loss, &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_int_eq(loom_program_keep(p, y), LOOM_OK);
    double qv[FX];
    lt_fill_normal(qv, FX, 11);
    feed(p, q, dt, 3, (int64_t[]){FN, FC, FM}, qv);
    fetch(p, r, out->r0, FX);
    for (int k = 0; k < STEPS; k++) {
        ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
        fetch(p, loss, &out->loss[k], 1);
    }
    fetch(p, x, out->x, FX);
    fetch(p, r, out->r, FX);
    fetch_bn(p, g, out->w, out->b, out->rm, out->rv, FC);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_EVAL) == LOOM_OK, "%s", loom_program_error(p));
    fetch(p, y, out->eval, FX);
    loom_program_free(p);
    loom_graph_free(g);
}

/* _i: bit 0 the residual, bit 1 on cpu:0-3 (the batch split), bit 2 f32. The fused op trains as
 * relu(batch_norm(x) [+ r]): the same losses, gradients (through the trained x, r, weight and
 * bias), running statistics and evaluation. */
START_TEST(test_fused_relu_is_composed)
{
    const int res = _i & 1;
    const char *pl = _i & 2 ? "cpu:0-3" : NULL;
    const loom_dtype dt = _i & 4 ? LOOM_F32 : LOOM_F64;
    const double tol = dt == LOOM_F64 ? 1e-12 : 1e-5;
    fused_result *a = calloc(2, sizeof *a);
    ck_assert_ptr_nonnull(a);
    run_fused(0, res, NULL, dt, &a[0]);
    run_fused(1, res, pl, dt, &a[1]);
    lt_assert_close(a[1].loss, a[0].loss, STEPS, tol, "losses");
    lt_assert_close(a[1].x, a[0].x, FX, tol, "x");
    lt_assert_close(a[1].r, a[0].r, FX, tol, "r");
    lt_assert_close(a[1].w, a[0].w, FC, tol, "weight");
    lt_assert_close(a[1].b, a[0].b, FC, tol, "bias");
    lt_assert_close(a[1].rm, a[0].rm, FC, tol, "running mean");
    lt_assert_close(a[1].rv, a[0].rv, FC, tol, "running var");
    lt_assert_close(a[1].eval, a[0].eval, FX, tol, "evaluation");
    int zeros = 0, moved = 0; /* the ReLU cut some values; r trained through the residual only */
    for (int i = 0; i < FX; i++) {
        zeros += a[1].eval[i] == 0;
        moved += a[1].r[i] != a[1].r0[i];
    }
    ck_assert_int_gt(zeros, 0);
    ck_assert_int_eq(moved > 0, res);
    free(a);
}
END_TEST

/* ---- data parallelism ------------------------------------------------------------------------------- */

typedef struct run_result {
    double losses[STEPS], s[3], w[3], b[3], rm[3], rv[3], eval[MAXX];
} run_result;

/* A small net, h = tanh(x s) with s [C, 1, 1] trained, y = bn(h), loss = sum(tanh(y) r), trained
 * three steps with SGD and momentum on x [6, 3, 2, 3] (N dynamic when dyn), then evaluated; on
 * placement (NULL: one device), the batch split there. Layer norm (ln) instead normalises each
 * sample's [C, 2, 3]. */
static void run_net(const char *placement, int dyn, int ln, run_result *out)
{
    enum { N = 6, C = 3, NX = N * C * 6 };
    lt_case *lc = lt_case_new();
    loom_graph *g = lt_graph(lc);
    set_placement(g, placement);
    const loom_dim nd = dyn ? loom_dim_dynamic(g, "N", 8) : N;
    loom_tensor *xt = loom_input(g, "x", LOOM_F64, loom_shape(nd, C, 2, 3));
    loom_tensor *rt = loom_input(g, "r", LOOM_F64, loom_shape(nd, C, 2, 3));
    loom_tensor *s = loom_param(g, "s", LOOM_F64, loom_shape(C, 1, 1), loom_init_uniform(0.5, 1.5, 4));
    loom_tensor *h = loom_tanh(g, loom_mul(g, xt, s));
    loom_tensor *y = ln ? loom_layer_norm(g, "bn", h, 3, EPS) : loom_batch_norm(g, "bn", h, MOMENTUM, EPS);
    loom_tensor *loss = loom_sum(g, loom_mul(g, loom_tanh(g, y), rt), LOOM_ALL_AXES, 0);
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_sgd(LR);
    opts.optimizer.momentum = 0.9;
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_int_eq(loom_program_keep(p, y), LOOM_OK);
    const int64_t shape[] = {N, C, 2, 3};
    double x[NX], r[NX];
    lt_fill_normal(r, NX, 12);
    feed(p, rt, LOOM_F64, 4, shape, r);
    for (int st = 0; st < STEPS; st++) {
        lt_fill_normal(x, NX, 30 + (uint64_t)st);
        for (int e = 0; e < NX; e++)
            x[e] = 0.5 + 1.5 * x[e];
        feed(p, xt, LOOM_F64, 4, shape, x);
        ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
    }
    int64_t nl;
    memcpy(out->losses, loom_program_losses(p, &nl), STEPS * sizeof(double));
    ck_assert_int_eq(nl, STEPS);
    fetch(p, s, out->s, C);
    if (ln) {
        fetch(p, param(g, "bn.weight"), out->eval, C * 6);
    } else {
        fetch_bn(p, g, out->w, out->b, out->rm, out->rv, C);
        ck_assert_msg(loom_program_run(p, LOOM_RUN_EVAL) == LOOM_OK, "%s", loom_program_error(p));
        fetch(p, y, out->eval, NX);
    }
    loom_program_free(p);
    lt_case_free(lc);
}

static void assert_same(const run_result *a, const run_result *one, const char *what)
{
    char w[160];
    const double tol = 1e-9;
    snprintf(w, sizeof w, "%s: losses", what);
    lt_assert_close(a->losses, one->losses, STEPS, tol, w);
    snprintf(w, sizeof w, "%s: s", what);
    lt_assert_close(a->s, one->s, 3, tol, w);
    snprintf(w, sizeof w, "%s: weight", what);
    lt_assert_close(a->w, one->w, 3, tol, w);
    snprintf(w, sizeof w, "%s: bias", what);
    lt_assert_close(a->b, one->b, 3, tol, w);
    snprintf(w, sizeof w, "%s: running_mean", what);
    lt_assert_close(a->rm, one->rm, 3, tol, w);
    snprintf(w, sizeof w, "%s: running_var", what);
    lt_assert_close(a->rv, one->rv, 3, tol, w);
    snprintf(w, sizeof w, "%s: evaluation y (or layer norm's weight)", what);
    lt_assert_close(a->eval, one->eval, MAXX, tol, w);
}

/* The layout inference gives a batch norm of activations of realistic size on cpu:0-3: the batch
 * split, the statistics and the gradient sums partial sums that an all-reduce makes whole for
 * their consumers, the running statistics' updates on whole statistics. (Activations of a few
 * kilobytes are cheaper to all-gather than their statistics to all-reduce, whose ring takes twice
 * the steps: inference then gathers them, which is sync-BN as well.) */
START_TEST(test_statistics_are_partial_sums)
{
    lt_case *lc = lt_case_new();
    loom_graph *g = lt_graph(lc);
    set_placement(g, "cpu:0-3");
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(32, 16, 16, 16));
    loom_tensor *s = loom_param(g, "s", LOOM_F32, loom_shape(16, 1, 1), loom_init_uniform(0.5, 1.5, 4));
    loom_tensor *y = loom_batch_norm(g, "bn", loom_tanh(g, loom_mul(g, x, s)), MOMENTUM, EPS);
    loom_tensor *loss = loom_sum(g, loom_mul(g, y, y), LOOM_ALL_AXES, 0);
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_sgd(LR);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
    const loom__sbp_plan *pl = &p->sbp;
    ck_assert(loom_sbp_equal(pl->sbp[x->id], loom_split(0)));
    ck_assert_msg(pl->sbp[y->src[1]->id].kind == LOOM_SBP_PARTIAL_SUM, "the batch statistics are not partial sums");
    ck_assert(loom_sbp_equal(pl->sig[y->id].in[1], loom_broadcast())); /* all-reduced for the normalisation */
    ck_assert(loom_sbp_equal(pl->sbp[y->id], loom_split(0)));
    int updates = 0;
    for (int id = 0; id < p->n; id++) {
        const loom_tensor *t = p->g->t[id];
        if (t->op == LOOM_OP_BN_GRAD_SUMS)
            ck_assert_msg(pl->sbp[id].kind == LOOM_SBP_PARTIAL_SUM, "the gradient sums are not partial sums");
        if (t->op == LOOM_OP_RUNNING_STATS_UPDATE) {
            ck_assert(id >= p->bwd_end); /* after the backward pass, with the optimizer's */
            ck_assert(loom_sbp_equal(pl->sig[id].in[1], loom_broadcast()));
            updates++;
        }
    }
    ck_assert_int_eq(updates, 2);
    loom_program_free(p);
    lt_case_free(lc);
}
END_TEST

/* _i: dyn (1) + layer norm (2). */
START_TEST(test_data_parallel_is_one_device)
{
    const int dyn = _i & 1, ln = _i & 2;
    run_result one = {0}, two = {0}, four = {0};
    run_net(NULL, dyn, ln, &one);
    run_net("cpu:0-1", dyn, ln, &two);
    run_net("cpu:0-3", dyn, ln, &four);
    char what[64];
    snprintf(what, sizeof what, "%s%s on cpu:0-1", ln ? "layer norm" : "batch norm", dyn ? " (dynamic N)" : "");
    assert_same(&two, &one, what);
    snprintf(what, sizeof what, "%s%s on cpu:0-3", ln ? "layer norm" : "batch norm", dyn ? " (dynamic N)" : "");
    assert_same(&four, &one, what);
    if (!ln) { /* the running statistics moved: the steps updated them */
        ck_assert(fabs(one.rm[0]) > 1e-3);
        ck_assert(fabs(one.rv[0] - 1) > 1e-3);
    }
}
END_TEST

/* ---- layer norm values ------------------------------------------------------------------------------ */

/* _i: f64. y = layer_norm(x) over the last 2 axes with weight 1 + a ramp and a bias: per row
 * against the reference, training and evaluation alike. */
START_TEST(test_layer_norm_values)
{
    const loom_dtype dt = _i ? LOOM_F64 : LOOM_F32;
    enum { R = 4, F = 6 };
    double x[R * F], want[R * F], got[R * F];
    lt_fill_normal(x, R * F, 5);
    for (int e = 0; e < R * F; e++)
        x[e] = dt == LOOM_F32 ? (float)(3 + 2 * x[e]) : 3 + 2 * x[e];
    lt_case *lc = lt_case_new();
    loom_graph *g = lt_graph(lc);
    loom_tensor *xt = loom_input(g, "x", dt, loom_shape(R, 2, 3));
    loom_tensor *y = loom_layer_norm(g, "ln", xt, 2, EPS);
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, NULL, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    double w[F], b[F];
    for (int i = 0; i < F; i++)
        w[i] = 1 + 0.25 * i, b[i] = 0.5 - 0.1 * i;
    loom_array wa, ba;
    ck_assert_int_eq(loom_program_fetch(p, param(g, "ln.weight"), &wa), LOOM_OK);
    ck_assert_int_eq(loom_program_fetch(p, param(g, "ln.bias"), &ba), LOOM_OK);
    for (int i = 0; i < F; i++) {
        ck_assert_double_eq(dt == LOOM_F64 ? ((double *)wa.data)[i] : ((float *)wa.data)[i], 1);
        ck_assert_double_eq(dt == LOOM_F64 ? ((double *)ba.data)[i] : ((float *)ba.data)[i], 0);
        if (dt == LOOM_F64)
            ((double *)wa.data)[i] = w[i], ((double *)ba.data)[i] = b[i];
        else
            ((float *)wa.data)[i] = (float)w[i], ((float *)ba.data)[i] = (float)b[i];
    }
    for (int i = 0; i < R; i++) {
        double s = 0, q = 0;
        for (int j = 0; j < F; j++)
            s += x[i * F + j];
        for (int j = 0; j < F; j++)
            q += (x[i * F + j] - s / F) * (x[i * F + j] - s / F);
        for (int j = 0; j < F; j++)
            want[i * F + j] = (x[i * F + j] - s / F) / sqrt(q / F + EPS) * (dt == LOOM_F32 ? (float)w[j] : w[j]) +
                              (dt == LOOM_F32 ? (float)b[j] : b[j]);
    }
    feed(p, xt, dt, 3, (int64_t[]){R, 2, 3}, x);
    for (int mode = 0; mode < 2; mode++) {
        ck_assert_int_eq(loom_program_run(p, mode ? LOOM_RUN_FORWARD : LOOM_RUN_EVAL), LOOM_OK);
        fetch(p, y, got, R * F);
        lt_assert_close(got, want, R * F, dt == LOOM_F64 ? 1e-12 : 1e-5, "layer_norm");
    }
    loom_program_free(p);
    lt_case_free(lc);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------------------- */

/* A training run of one value per channel fails (PyTorch's rule); evaluation takes it. */
START_TEST(test_one_value_per_channel)
{
    lt_case *lc = lt_case_new();
    loom_graph *g = lt_graph(lc);
    loom_dim nd = loom_dim_dynamic(g, "N", 4);
    loom_tensor *xt = loom_input(g, "x", LOOM_F64, loom_shape(nd, 3));
    loom_tensor *y = loom_batch_norm(g, "bn", xt, MOMENTUM, EPS);
    loom_program *p = NULL;
    ck_assert_int_eq(loom_compile(g, NULL, NULL, &p), LOOM_OK);
    feed(p, xt, LOOM_F64, 2, (int64_t[]){1, 3}, (double[]){1, 2, 3});
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_FORWARD), LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(loom_program_error(p), "batch_norm") &&
                      strstr(loom_program_error(p), "a training run needs more than 1 value per channel, got 1"),
                  "%s", loom_program_error(p));
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_OK);
    double got[3];
    fetch(p, y, got, 3);
    for (int k = 0; k < 3; k++) /* the running statistics of a new norm: mean 0, var 1 */
        ck_assert_double_eq_tol(got[k], (k + 1) / sqrt(1 + EPS), 1e-12);
    feed(p, xt, LOOM_F64, 2, (int64_t[]){2, 3}, (double[]){1, 2, 3, 3, 2, 1});
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_FORWARD), LOOM_OK);
    loom_program_free(p);
    lt_case_free(lc);
}
END_TEST

static void expect_refusal(loom_graph *g, loom_status s, const char *msg)
{
    ck_assert_msg(loom_graph_status(g) == s, "status %s for '%s'", loom_status_str(loom_graph_status(g)), loom_graph_error(g));
    lt_expect_error(g, msg);
}

START_TEST(test_bad_calls)
{
    static const struct {
        int ndim;
        int64_t d[4];
        int dyn_c;
        double momentum, eps;
        const char *name;
        loom_status s;
        const char *msg;
    } bad[] = {
        {1, {4}, 0, 0.1, 1e-5, "bn", LOOM_ERR_SHAPE, "loom_batch_norm: x is [4]; batch norm takes [N, C] or [N, C, ...] with a static C"},
        {2, {4, 0}, 1, 0.1, 1e-5, "bn", LOOM_ERR_SHAPE, "loom_batch_norm: x is [4, C]; batch norm takes"},
        {2, {4, 3}, 0, 1.5, 1e-5, "bn", LOOM_ERR_INVALID, "loom_batch_norm: momentum must be in [0, 1], got 1.5"},
        {2, {4, 3}, 0, NAN, 1e-5, "bn", LOOM_ERR_INVALID, "loom_batch_norm: momentum must be in [0, 1], got nan"},
        {2, {4, 3}, 0, 0.1, -1, "bn", LOOM_ERR_INVALID, "loom_batch_norm: eps must be a finite number >= 0, got -1"},
        {2, {4, 3}, 0, 0.1, 1e-5, NULL, LOOM_ERR_INVALID, "loom_batch_norm: name is NULL"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        lt_case *c = lt_case_new();
        loom_graph *g = lt_graph(c);
        loom_shape s = {.ndim = bad[k].ndim};
        for (int i = 0; i < s.ndim; i++)
            s.d[i] = bad[k].d[i];
        if (bad[k].dyn_c)
            s.d[1] = loom_dim_dynamic(g, "C", 8);
        loom_batch_norm(g, bad[k].name, loom_input(g, "x", LOOM_F32, s), bad[k].momentum, bad[k].eps);
        expect_refusal(g, bad[k].s, bad[k].msg);
        lt_case_free(c);
    }
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_batch_norm(g, "bn", loom_input(g, "x", LOOM_I32, loom_shape(4, 3)), 0.1, 1e-5);
    expect_refusal(g, LOOM_ERR_DTYPE, "loom_batch_norm: x is i32; batch norm takes a dense f32 or f64 tensor");
    lt_case_free(c);

    static const struct {
        loom_dtype dt;
        int64_t c;
        loom_status s;
        const char *msg;
    } res[] = {
        {LOOM_F32, 2, LOOM_ERR_SHAPE, "loom_batch_norm_relu: residual is f32 [4, 2]; expected x's f32 [4, 3]"},
        {LOOM_F64, 3, LOOM_ERR_DTYPE, "loom_batch_norm_relu: residual is f64 [4, 3]; expected x's f32 [4, 3]"},
    };
    for (size_t k = 0; k < sizeof res / sizeof res[0]; k++) {
        c = lt_case_new();
        g = lt_graph(c);
        loom_batch_norm_relu(g, "bn", loom_input(g, "x", LOOM_F32, loom_shape(4, 3)),
                             loom_input(g, "r", res[k].dt, loom_shape(4, res[k].c)), 0.1, 1e-5);
        expect_refusal(g, res[k].s, res[k].msg);
        lt_case_free(c);
    }
    c = lt_case_new();
    g = lt_graph(c);
    loom_batch_norm_relu(g, NULL, loom_input(g, "x", LOOM_F32, loom_shape(4, 3)), NULL, 0.1, 1e-5);
    expect_refusal(g, LOOM_ERR_INVALID, "loom_batch_norm_relu: name is NULL");
    lt_case_free(c);
    c = lt_case_new();
    g = lt_graph(c);
    loom_batch_norm_relu(g, "bn", loom_input(g, "x", LOOM_F32, loom_shape(4, 3)), NULL, 2, 1e-5);
    expect_refusal(g, LOOM_ERR_INVALID, "loom_batch_norm_relu: momentum must be in [0, 1], got 2");
    lt_case_free(c);
    c = lt_case_new();
    g = lt_graph(c);
    loom_graph *other = loom_graph_new();
    loom_batch_norm_relu(g, "bn", loom_input(g, "x", LOOM_F32, loom_shape(4, 3)), loom_input(other, "r", LOOM_F32, loom_shape(4, 3)),
                         0.1, 1e-5);
    expect_refusal(g, LOOM_ERR_INVALID, "loom_batch_norm_relu: tensor argument 2 belongs to another graph");
    loom_graph_free(other);
    lt_case_free(c);

    c = lt_case_new(); /* the parameters' names are taken */
    g = lt_graph(c);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(4, 3));
    loom_batch_norm(g, "bn", loom_batch_norm(g, "bn", x, 0.1, 1e-5), 0.1, 1e-5);
    expect_refusal(g, LOOM_ERR_INVALID, "'bn.running_mean' exists already");
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    loom_layer_norm(g, "ln", loom_input(g, "x", LOOM_F32, loom_shape(4, 3)), 3, 1e-5);
    expect_refusal(g, LOOM_ERR_SHAPE, "loom_layer_norm: axes is 3; x [4, 3] has 2 to normalise over (1 .. 2)");
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    loom_layer_norm(g, "ln", loom_input(g, "x", LOOM_F32, loom_shape(4, 3)), 0, 1e-5);
    expect_refusal(g, LOOM_ERR_SHAPE, "loom_layer_norm: axes is 0");
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    loom_dim d = loom_dim_dynamic(g, "N", 8);
    loom_layer_norm(g, "ln", loom_input(g, "x", LOOM_F32, loom_shape(d, 3)), 2, 1e-5);
    expect_refusal(g, LOOM_ERR_SHAPE, "loom_layer_norm: x is [N, 3]; the 2 normalised axes must be static");
    lt_case_free(c);

    c = lt_case_new();
    g = lt_graph(c);
    loom_layer_norm(g, "ln", loom_input(g, "x", LOOM_F32, loom_shape(4, 3)), 1, INFINITY);
    expect_refusal(g, LOOM_ERR_INVALID, "loom_layer_norm: eps must be a finite number >= 0, got inf");
    lt_case_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("batch_norm");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_steps_against_reference, 0, 4);
    tcase_add_test(tc, test_gradients);
    tcase_add_loop_test(tc, test_fused_relu_is_composed, 0, 8);
    tcase_add_test(tc, test_statistics_are_partial_sums);
    tcase_add_loop_test(tc, test_data_parallel_is_one_device, 0, 4);
    tcase_add_loop_test(tc, test_layer_norm_values, 0, 2);
    tcase_add_test(tc, test_one_value_per_channel);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
