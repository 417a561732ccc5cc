/* SGD and Adam/AdamW update ops against PyTorch's rules computed by hand: a parameter p trained
 * on loss = sum(c * p * p) (gradient 2 c p, so it changes with p) for a few steps. Also what
 * loom_compile makes around them: frozen parameters and gradient clipping by the global norm. */
#include "harness.h"
#include "graphs/session/program.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { N = 5, STEPS = 4 };

static const double C[N] = {0.5, -1.5, 2.0, 0.25, 1.0};

/* The rate of step `step` as PyTorch's schedulers give it, stepped once per optimizer step:
 * StepLR, CosineAnnealingLR (held at eta_min past T_max), and a LinearLR warm-up from 1/w. */
static double ref_lr(const loom_optimizer *o, int step)
{
    double lr = o->lr;
    if (o->schedule == LOOM_LR_STEP)
        for (int k = 0; k < step / o->step_size; k++)
            lr *= o->gamma;
    if (o->schedule == LOOM_LR_COSINE) {
        const int t = step < o->total_steps ? step : (int)o->total_steps;
        lr = o->min_lr + (o->lr - o->min_lr) * (1 + cos(M_PI * t / (double)o->total_steps)) / 2;
    }
    if (step < o->warmup_steps)
        lr = lr * (step + 1) / (double)o->warmup_steps;
    return lr;
}

/* torch.optim.SGD.step on one tensor: buf is None before the first step. */
static void ref_sgd(double *p, double *buf, int step, const loom_optimizer *o, double wd)
{
    for (int i = 0; i < N; i++) {
        double d = 2 * C[i] * p[i];
        if (wd != 0)
            d += wd * p[i];
        if (o->momentum != 0) {
            buf[i] = step == 0 ? d : o->momentum * buf[i] + (1 - o->dampening) * d;
            d = o->nesterov ? d + o->momentum * buf[i] : buf[i];
        }
        p[i] -= ref_lr(o, step) * d;
    }
}

/* torch.optim.Adam / AdamW (decoupled) step number step + 1. */
static void ref_adam(double *p, double *m, double *v, int step, const loom_optimizer *o, double wd)
{
    const double t = step + 1;
    for (int i = 0; i < N; i++) {
        double g = 2 * C[i] * p[i];
        if (o->decoupled)
            p[i] *= 1 - ref_lr(o, step) * wd;
        else if (wd != 0)
            g += wd * p[i];
        m[i] = o->beta1 * m[i] + (1 - o->beta1) * g;
        v[i] = o->beta2 * v[i] + (1 - o->beta2) * g * g;
        double mhat = m[i] / (1 - pow(o->beta1, t)), denom = sqrt(v[i]) / sqrt(1 - pow(o->beta2, t)) + o->eps;
        p[i] -= ref_lr(o, step) * mhat / denom;
    }
}

static void get(const loom_array *a, double *out)
{
    for (int i = 0; i < N; i++)
        out[i] = a->dtype == LOOM_F64 ? ((double *)a->data)[i] : (double)((float *)a->data)[i];
}

/* Trains p (dtype dt) with o for STEPS steps, comparing p with the reference after each; when
 * param_wd >= 0 it overrides the optimizer's weight decay for p. */
static void run_case(const loom_optimizer *o, loom_dtype dt, double param_wd, double tol, const char *what)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *p = loom_param(g, "p", dt, loom_shape(N), loom_init_normal(0.0, 1.0, 42));
    if (param_wd >= 0)
        loom_param_set_weight_decay(p, param_wd);
    loom_tensor *c = loom_input(g, "c", dt, loom_shape(N));
    loom_tensor *loss = loom_sum(g, loom_mul(g, loom_mul(g, p, p), c), LOOM_ALL_AXES, 0);
    loom_program *prog = NULL;
    loom_train_opts opts = {.optimizer = *o};
    ck_assert_msg(loom_compile(g, loss, &opts, &prog) == LOOM_OK, "%s: %s", what, loom_graph_error(g));
    float cf[N];
    for (int i = 0; i < N; i++)
        cf[i] = (float)C[i];
    loom_array ca = {.dtype = dt, .ndim = 1, .shape = {N}, .data = dt == LOOM_F64 ? (void *)C : (void *)cf};
    ck_assert_int_eq(loom_program_feed(prog, c, &ca), LOOM_OK);

    loom_array pa;
    ck_assert_int_eq(loom_program_fetch(prog, p, &pa), LOOM_OK);
    double want[N], got[N], s1[N] = {0}, s2[N] = {0};
    get(&pa, want);
    const double wd = param_wd >= 0 ? param_wd : o->weight_decay;
    for (int step = 0; step < STEPS; step++) {
        ck_assert_msg(loom_program_run(prog, LOOM_RUN_STEP) == LOOM_OK, "%s: %s", what, loom_program_error(prog));
        ck_assert_int_eq(loom_program_steps(prog), step + 1);
        if (o->kind == LOOM_OPT_SGD)
            ref_sgd(want, s1, step, o, wd);
        else
            ref_adam(want, s1, s2, step, o, wd);
        ck_assert_int_eq(loom_program_fetch(prog, p, &pa), LOOM_OK);
        get(&pa, got);
        lt_assert_close(got, want, N, tol, what);
    }
    /* the parameter moved */
    ck_assert_int_eq(loom_program_fetch(prog, p, &pa), LOOM_OK);
    loom_program_free(prog);
    loom_graph_free(g);
}

START_TEST(test_sgd)
{
    loom_optimizer plain = loom_sgd(0.1);
    loom_optimizer mom = plain;
    mom.momentum = 0.9;
    loom_optimizer damp = mom;
    damp.dampening = 0.3;
    loom_optimizer nest = mom;
    nest.nesterov = 1;
    loom_optimizer wd = plain;
    wd.weight_decay = 0.05;
    loom_optimizer wd_mom = damp;
    wd_mom.weight_decay = 0.05;
    loom_optimizer wd_nest = nest;
    wd_nest.weight_decay = 0.05;
    for (int f32 = 0; f32 < 2; f32++) {
        loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
        double tol = f32 ? 1e-5 : 1e-13;
        run_case(&plain, dt, -1, tol, "sgd");
        run_case(&mom, dt, -1, tol, "sgd momentum");
        run_case(&damp, dt, -1, tol, "sgd momentum + dampening");
        run_case(&nest, dt, -1, tol, "sgd nesterov");
        run_case(&wd, dt, -1, tol, "sgd weight decay");
        run_case(&wd_mom, dt, -1, tol, "sgd weight decay + momentum + dampening");
        run_case(&wd_nest, dt, -1, tol, "sgd weight decay + nesterov");
        run_case(&wd_mom, dt, 0.0, tol, "sgd with the parameter's weight decay 0");
        run_case(&mom, dt, 0.2, tol, "sgd with the parameter's weight decay 0.2");
    }
}
END_TEST

START_TEST(test_adam)
{
    loom_optimizer adam = loom_adam(0.05);
    loom_optimizer adam_l2 = adam;
    adam_l2.weight_decay = 0.1;
    loom_optimizer adamw = loom_adamw(0.05, 0.1);
    loom_optimizer betas = loom_adam(0.01);
    betas.beta1 = 0.5;
    betas.beta2 = 0.9;
    betas.eps = 1e-3;
    loom_optimizer betas_w = betas;
    betas_w.weight_decay = 0.2;
    betas_w.decoupled = 1;
    for (int f32 = 0; f32 < 2; f32++) {
        loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
        double tol = f32 ? 1e-5 : 1e-12;
        run_case(&adam, dt, -1, tol, "adam");
        run_case(&adam_l2, dt, -1, tol, "adam with L2 weight decay");
        run_case(&adamw, dt, -1, tol, "adamw");
        run_case(&betas, dt, -1, tol, "adam with other betas and eps");
        run_case(&betas_w, dt, -1, tol, "adamw with other betas and eps");
        run_case(&adamw, dt, 0.0, tol, "adamw with the parameter's weight decay 0");
    }
}
END_TEST

/* lr 0 leaves p alone (and the state still moves, invisible here); an empty parameter works. */
START_TEST(test_optim_awkward)
{
    loom_optimizer zero = loom_adam(0.0);
    run_case(&zero, LOOM_F64, -1, 0, "adam lr 0");
    loom_optimizer sz = loom_sgd(0.0);
    sz.momentum = 0.9;
    run_case(&sz, LOOM_F64, -1, 0, "sgd lr 0");

    for (int adam = 0; adam < 2; adam++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *p = loom_param(g, "p", LOOM_F64, loom_shape(0, 3), loom_init_zeros());
        loom_tensor *q = loom_param(g, "q", LOOM_F64, loom_shape(1), loom_init_constant(2.0));
        loom_tensor *loss = loom_add(g, loom_sum(g, p, LOOM_ALL_AXES, 0), loom_sum(g, q, LOOM_ALL_AXES, 0));
        loom_train_opts opts = {.optimizer = adam ? loom_adam(0.1) : loom_sgd(0.1)};
        loom_program *prog = NULL;
        ck_assert_msg(loom_compile(g, loss, &opts, &prog) == LOOM_OK, "%s", loom_graph_error(g));
        ck_assert_msg(loom_program_run(prog, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(prog));
        loom_array qa;
        ck_assert_int_eq(loom_program_fetch(prog, q, &qa), LOOM_OK);
        /* gradient 1: SGD 2 - 0.1; Adam's first step moves by lr (1 - tiny eps effect) */
        ck_assert(fabs(((double *)qa.data)[0] - 1.9) < 1e-7);
        loom_program_free(prog);
        loom_graph_free(g);
    }
}
END_TEST

/* Settings torch.optim rejects are compile errors naming the setting. */
static void expect_compile_error(const loom_optimizer *o, const char *needle)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *p = loom_param(g, "p", LOOM_F64, loom_shape(2), loom_init_zeros());
    loom_tensor *loss = loom_sum(g, p, LOOM_ALL_AXES, 0);
    loom_train_opts opts = {.optimizer = *o};
    loom_program *prog = NULL;
    ck_assert_int_ne(loom_compile(g, loss, &opts, &prog), LOOM_OK);
    ck_assert_ptr_null(prog);
    const char *e = loom_graph_error(g);
    ck_assert_msg(e && strstr(e, needle), "expected '%s', got '%s'", needle, e ? e : "(none)");
    loom_graph_free(g);
}

START_TEST(test_schedules)
{
    loom_optimizer sgd = loom_sgd(0.1);
    sgd.momentum = 0.9;
    loom_optimizer step = sgd;
    step.schedule = LOOM_LR_STEP;
    step.step_size = 2;
    step.gamma = 0.5;
    loom_optimizer cosine = sgd;
    cosine.schedule = LOOM_LR_COSINE;
    cosine.total_steps = 3; /* the fourth step is past it: held at min_lr */
    cosine.min_lr = 0.01;
    loom_optimizer warm = cosine;
    warm.warmup_steps = 2;
    loom_optimizer adamw = loom_adamw(0.05, 0.1);
    adamw.schedule = LOOM_LR_COSINE;
    adamw.total_steps = 4;
    loom_optimizer adam_warm = loom_adam(0.05);
    adam_warm.warmup_steps = 3;
    for (int f32 = 0; f32 < 2; f32++) {
        loom_dtype dt = f32 ? LOOM_F32 : LOOM_F64;
        double tol = f32 ? 1e-5 : 1e-13;
        run_case(&step, dt, -1, tol, "sgd, step schedule");
        run_case(&cosine, dt, -1, tol, "sgd, cosine schedule");
        run_case(&warm, dt, -1, tol, "sgd, warm-up then cosine");
        run_case(&adamw, dt, -1, tol, "adamw, cosine schedule");
        run_case(&adam_warm, dt, -1, tol, "adam, warm-up");
    }
}
END_TEST

START_TEST(test_optim_bad_settings)
{
    loom_optimizer o = loom_sgd(0.1);
    o.nesterov = 1;
    expect_compile_error(&o, "nesterov momentum requires a momentum > 0 and zero dampening");
    o.momentum = 0.9;
    o.dampening = 0.1;
    expect_compile_error(&o, "nesterov momentum requires");
    o = loom_sgd(0.1);
    o.momentum = -0.5;
    expect_compile_error(&o, "invalid momentum -0.5");
    o = loom_adam(0.1);
    o.beta1 = 1.0;
    expect_compile_error(&o, "invalid beta1 1");
    o = loom_adam(0.1);
    o.beta2 = -0.1;
    expect_compile_error(&o, "invalid beta2 -0.1");
    o = loom_adam(0.1);
    o.eps = -1;
    expect_compile_error(&o, "invalid epsilon -1");
    o = loom_adam(0.1);
    o.beta1 = NAN;
    expect_compile_error(&o, "must be finite");
    o = loom_sgd(0.1);
    o.schedule = LOOM_LR_COSINE;
    expect_compile_error(&o, "a cosine schedule needs total_steps > 0 and a finite min_lr >= 0 (got 0, 0)");
    o.total_steps = 10;
    o.min_lr = -1;
    expect_compile_error(&o, "a cosine schedule needs total_steps > 0");
    o = loom_sgd(0.1);
    o.schedule = LOOM_LR_STEP;
    o.step_size = 5;
    expect_compile_error(&o, "a step schedule needs step_size > 0 and a finite gamma > 0 (got 5, 0)");
    o = loom_sgd(0.1);
    o.schedule = (loom_lr_schedule)7;
    expect_compile_error(&o, "invalid learning rate schedule 7");
    o = loom_sgd(0.1);
    o.warmup_steps = -2;
    expect_compile_error(&o, "invalid warm-up steps -2");
}
END_TEST

/* ---- frozen parameters -------------------------------------------------------------------------- */

/* The values of t (a parameter) as doubles, malloc'd. */
static double *param_values(loom_program *p, loom_tensor *t, int64_t *n)
{
    loom_array a;
    ck_assert_int_eq(loom_program_fetch(p, t, &a), LOOM_OK);
    *n = loom_array_numel(&a);
    return lt_to_double(&a);
}

/* A two-layer network x [8, 4] -> relu(x w1) [8, 5] -> (.) w2 [5, 3], mean squared error against
 * fixed targets, on placement (NULL: one device); h gets the hidden layer's pre-activation. */
static loom_tensor *mlp(loom_graph *g, loom_dtype dt, loom_tensor **w1, loom_tensor **w2, loom_tensor **x,
                        loom_tensor **y, loom_tensor **h)
{
    *w1 = loom_param(g, "w1", dt, loom_shape(4, 5), loom_init_normal(0.0, 0.5, 1));
    *w2 = loom_param(g, "w2", dt, loom_shape(5, 3), loom_init_normal(0.0, 0.5, 2));
    *x = loom_input(g, "x", dt, loom_shape(8, 4));
    *y = loom_input(g, "y", dt, loom_shape(8, 3));
    *h = loom_matmul(g, *x, *w1);
    return loom_mse_loss(g, loom_matmul(g, loom_relu(g, *h), *w2), *y);
}

static void feed_mlp(loom_program *p, loom_dtype dt, loom_tensor *x, loom_tensor *y)
{
    double xv[32], yv[24];
    float xf[32], yf[24];
    lt_fill_normal(xv, 32, 5);
    lt_fill_normal(yv, 24, 6);
    lt_as_dtype(xv, xf, 32, dt == LOOM_F32);
    lt_as_dtype(yv, yf, 24, dt == LOOM_F32);
    loom_array xa = {.dtype = dt, .ndim = 2, .shape = {8, 4}, .data = dt == LOOM_F64 ? (void *)xv : (void *)xf};
    loom_array ya = {.dtype = dt, .ndim = 2, .shape = {8, 3}, .data = dt == LOOM_F64 ? (void *)yv : (void *)yf};
    ck_assert_int_eq(loom_program_feed(p, x, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, y, &ya), LOOM_OK);
}

/* The first layer frozen: its weights are bit-equal after steps of SGD with momentum and of Adam
 * (with weight decay, which would move them even without a gradient), the second layer's move, and
 * the backward pass stops at the hidden layer: nothing computes the gradient of x w1. */
START_TEST(test_frozen_layer)
{
    for (int k = 0; k < 4; k++) {
        const loom_dtype dt = k & 1 ? LOOM_F32 : LOOM_F64;
        loom_graph *g = loom_graph_new();
        loom_tensor *w1, *w2, *x, *y, *h;
        loom_tensor *loss = mlp(g, dt, &w1, &w2, &x, &y, &h);
        loom_param_set_trainable(w1, 0);
        loom_optimizer o = k & 2 ? loom_adamw(0.05, 0.1) : loom_sgd(0.1);
        o.momentum = k & 2 ? 0 : 0.9;
        o.weight_decay = 0.1;
        loom_program *p = NULL;
        loom_train_opts opts = {.optimizer = o};
        ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
        ck_assert_ptr_null(loom_program_grad(p, w1));
        ck_assert_ptr_nonnull(loom_program_grad(p, w2));
        ck_assert_msg(!p->grad[h->id], "the gradient of the frozen layer's output is computed");
        feed_mlp(p, dt, x, y);
        int64_t n1, n2;
        double *w1_0 = param_values(p, w1, &n1), *w2_0 = param_values(p, w2, &n2);
        for (int step = 0; step < 3; step++)
            ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
        double *w1_1 = param_values(p, w1, &n1), *w2_1 = param_values(p, w2, &n2);
        ck_assert_msg(!memcmp(w1_0, w1_1, (size_t)n1 * sizeof *w1_0), "the frozen layer moved");
        int moved = 0;
        for (int64_t i = 0; i < n2; i++)
            moved += w2_0[i] != w2_1[i];
        ck_assert_int_eq(moved, n2);
        free(w1_0);
        free(w1_1);
        free(w2_0);
        free(w2_1);
        loom_program_free(p);
        loom_graph_free(g);
    }
}
END_TEST

/* Frozen and thawed again before compiling, a parameter trains; a frozen one on several devices
 * keeps its bits too. A tensor that is not a parameter, or a misspelt name, is an error. */
START_TEST(test_trainable_calls)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *w1, *w2, *x, *y, *h;
    loom_tensor *loss = mlp(g, LOOM_F64, &w1, &w2, &x, &y, &h);
    loom_param_set_trainable(w1, 0);
    loom_param_set_trainable(w1, 1);
    loom_param_set_trainable(w2, 0);
    loom_program *p = NULL;
    loom_train_opts opts = {.optimizer = loom_sgd(0.1)};
    ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert_ptr_nonnull(loom_program_grad(p, w1));
    ck_assert_ptr_null(loom_program_grad(p, w2));
    loom_program_free(p);
    loom_graph_free(g);

    g = loom_graph_new();
    loom_error err = {0};
    loom_placement *pl = loom_placement_parse("cpu:0-1", &err);
    ck_assert_ptr_nonnull(pl);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loss = mlp(g, LOOM_F64, &w1, &w2, &x, &y, &h);
    loom_tensor_set_sbp(x, loom_split(0));
    loom_param_set_trainable(w2, 0);
    opts.optimizer = loom_adam(0.05);
    ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
    feed_mlp(p, LOOM_F64, x, y);
    int64_t n;
    double *before = param_values(p, w2, &n);
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, 2) == LOOM_OK, "%s", loom_program_error(p));
    double *after = param_values(p, w2, &n);
    ck_assert_msg(!memcmp(before, after, (size_t)n * sizeof *before), "the frozen layer moved on cpu:0-1");
    free(before);
    free(after);
    loom_program_free(p);
    loom_graph_free(g);

    g = loom_graph_new();
    loom_param_set_trainable(loom_input(g, "x", LOOM_F64, loom_shape(2)), 0);
    lt_expect_error(g, "loom_param_set_trainable: 'x' is not a parameter");
    loom_graph_free(g);
    g = loom_graph_new();
    loom_param(g, "w", LOOM_F64, loom_shape(2), loom_init_zeros());
    loom_param_set_trainable(loom_graph_tensor(g, "v"), 0);
    lt_expect_error(g, "loom_graph_tensor: the graph has no tensor named 'v'");
    loom_graph_free(g);
}
END_TEST

/* ---- gradient clipping ------------------------------------------------------------------------- */

/* Parameters p [N] and q [3] on loss = sum(c p p) + sum(d q q), clipped to clip and stepped by SGD
 * (lr 0.5, no momentum) for a few steps, against torch.nn.utils.clip_grad_norm_ by hand: gradients
 * 2 c p and 2 d q, scaled by min(1, clip / (norm + 1e-6)). */
static void clip_case(double clip, loom_dtype dt, double tol)
{
    static const double D[3] = {-0.75, 3.0, 1.25};
    loom_graph *g = loom_graph_new();
    loom_tensor *p = loom_param(g, "p", dt, loom_shape(N), loom_init_normal(0.0, 1.0, 42));
    loom_tensor *q = loom_param(g, "q", dt, loom_shape(3), loom_init_normal(0.0, 1.0, 43));
    loom_tensor *c = loom_input(g, "c", dt, loom_shape(N)), *d = loom_input(g, "d", dt, loom_shape(3));
    loom_tensor *loss = loom_add(g, loom_sum(g, loom_mul(g, loom_mul(g, p, p), c), LOOM_ALL_AXES, 0),
                                 loom_sum(g, loom_mul(g, loom_mul(g, q, q), d), LOOM_ALL_AXES, 0));
    loom_program *prog = NULL;
    loom_train_opts opts = {.optimizer = loom_sgd(0.5), .clip_norm = clip};
    ck_assert_msg(loom_compile(g, loss, &opts, &prog) == LOOM_OK, "%s", loom_graph_error(g));
    double cv[N + 3];
    float cf[N + 3];
    memcpy(cv, C, sizeof C);
    memcpy(cv + N, D, sizeof D);
    lt_as_dtype(cv, cf, N + 3, dt == LOOM_F32);
    loom_array ca = {.dtype = dt, .ndim = 1, .shape = {N}, .data = dt == LOOM_F64 ? (void *)cv : (void *)cf};
    loom_array da = {.dtype = dt, .ndim = 1, .shape = {3}, .data = dt == LOOM_F64 ? (void *)(cv + N) : (void *)(cf + N)};
    ck_assert_int_eq(loom_program_feed(prog, c, &ca), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(prog, d, &da), LOOM_OK);
    int64_t n;
    double *pv = param_values(prog, p, &n), *qv = param_values(prog, q, &n), w[N + 3], gr[N + 3];
    memcpy(w, pv, N * sizeof *w);
    memcpy(w + N, qv, 3 * sizeof *w);
    free(pv);
    free(qv);
    int clipped = 0;
    for (int step = 0; step < 3; step++) {
        ck_assert_msg(loom_program_run(prog, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(prog));
        double sq = 0;
        for (int i = 0; i < N + 3; i++) {
            gr[i] = 2 * cv[i] * w[i];
            sq += gr[i] * gr[i];
        }
        const double coef = clip / (sqrt(sq) + 1e-6), f = coef < 1 ? coef : 1;
        clipped |= coef < 1;
        for (int i = 0; i < N + 3; i++)
            w[i] -= 0.5 * f * gr[i];
        pv = param_values(prog, p, &n);
        qv = param_values(prog, q, &n);
        lt_assert_close(pv, w, N, tol, "p after clipped steps");
        lt_assert_close(qv, w + N, 3, tol, "q after clipped steps");
        free(pv);
        free(qv);
    }
    ck_assert_int_eq(clipped, clip < 1); /* a small clip bites, a large one leaves SGD as it is */
    loom_program_free(prog);
    loom_graph_free(g);
}

START_TEST(test_clip_norm)
{
    for (int f32 = 0; f32 < 2; f32++) {
        clip_case(0.3, f32 ? LOOM_F32 : LOOM_F64, f32 ? 1e-5 : 1e-12);
        clip_case(1e6, f32 ? LOOM_F32 : LOOM_F64, f32 ? 1e-5 : 1e-12);
    }
}
END_TEST

/* The norm of gradients that are partial sums or splits on two devices is the whole one: the MLP
 * trained with its batch split over cpu:0-1, clipped, gives one device's parameters. */
START_TEST(test_clip_norm_placements)
{
    double *want[2] = {0}, *got[2] = {0};
    for (int several = 0; several < 2; several++) {
        for (int ex = 0; ex < (several ? 2 : 1); ex++) {
            loom_graph *g = loom_graph_new();
            if (several) {
                loom_error err = {0};
                loom_placement *pl = loom_placement_parse("cpu:0-1", &err);
                loom_graph_set_placement(g, pl);
                loom_placement_free(pl);
            }
            loom_tensor *w1, *w2, *x, *y, *h;
            loom_tensor *loss = mlp(g, LOOM_F64, &w1, &w2, &x, &y, &h);
            if (several)
                loom_tensor_set_sbp(x, loom_split(0));
            loom_program *p = NULL;
            loom_train_opts opts = {.optimizer = loom_adam(0.05), .clip_norm = 0.05,
                                    .executor = ex ? LOOM_EXEC_REFERENCE : LOOM_EXEC_ACTORS};
            ck_assert_msg(loom_compile(g, loss, &opts, &p) == LOOM_OK, "%s", loom_graph_error(g));
            feed_mlp(p, LOOM_F64, x, y);
            for (int step = 0; step < 3; step++)
                ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
            int64_t n;
            double **out = several ? got : want;
            free(out[0]);
            free(out[1]);
            out[0] = param_values(p, w1, &n);
            out[1] = param_values(p, w2, &n);
            if (several) {
                lt_assert_close(got[0], want[0], 20, 1e-12, "w1 on cpu:0-1 against one device");
                lt_assert_close(got[1], want[1], 15, 1e-12, "w2 on cpu:0-1 against one device");
            }
            loom_program_free(p);
            loom_graph_free(g);
        }
    }
    for (int k = 0; k < 2; k++) {
        free(want[k]);
        free(got[k]);
    }
}
END_TEST

START_TEST(test_clip_norm_bad)
{
    const double bad[3] = {-1, NAN, INFINITY};
    for (int k = 0; k < 3; k++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *p = loom_param(g, "p", LOOM_F64, loom_shape(2), loom_init_zeros());
        loom_train_opts opts = {.optimizer = loom_sgd(0.1), .clip_norm = bad[k]};
        loom_program *prog = NULL;
        ck_assert_int_eq(loom_compile(g, loom_sum(g, p, LOOM_ALL_AXES, 0), &opts, &prog), LOOM_ERR_INVALID);
        lt_expect_error(g, "loom_compile: clip_norm must be a finite number >= 0 (0: no clipping)");
        loom_graph_free(g);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ops_optim");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_sgd);
    tcase_add_test(tc, test_adam);
    tcase_add_test(tc, test_optim_awkward);
    tcase_add_test(tc, test_schedules);
    tcase_add_test(tc, test_optim_bad_settings);
    tcase_add_test(tc, test_frozen_layer);
    tcase_add_test(tc, test_trainable_calls);
    tcase_add_test(tc, test_clip_norm);
    tcase_add_test(tc, test_clip_norm_placements);
    tcase_add_test(tc, test_clip_norm_bad);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
