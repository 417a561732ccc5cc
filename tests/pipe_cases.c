/* The pipeline model of the micro-batch tests (pipe_cases.h). */
#include "pipe_cases.h"

#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/session/program.h"

/* Layer k on stage k * nstages / LT_PIPE_LAYERS; the labels on the last stage. */
void lt_pipe_build(lt_pipe_model *m, const lt_pipe_opts *o)
{
    loom_graph *g = m->g = loom_graph_new();
    loom_graph_set_seed(g, 11);
    loom_placement *pl = lt_placement(o->stage[0]);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_dim b = o->dynamic ? loom_dim_dynamic(g, "N", 40) : LT_PIPE_ROWS;
    m->x = loom_input(g, "x", LOOM_F32, loom_shape(b, LT_PIPE_FEAT));
    loom_tensor *h = m->x;
    for (int k = 0, at = 0; k < LT_PIPE_LAYERS; k++) {
        int s = k * o->nstages / LT_PIPE_LAYERS;
        if (s != at) {
            pl = lt_placement(o->stage[s]);
            h = loom_to_placement(g, h, pl);
            loom_graph_set_placement(g, pl);
            loom_placement_free(pl);
            at = s;
        }
        char name[8];
        snprintf(name, sizeof name, "fc%d", k);
        h = loom_nn_linear(g, name, h, k == LT_PIPE_LAYERS - 1 ? 3 : 8, 1);
        if (k < LT_PIPE_LAYERS - 1)
            h = loom_tanh(g, h);
        if (k == 1 && o->dropout > 0)
            h = loom_dropout(g, h, o->dropout);
    }
    m->y = loom_input(g, "y", LOOM_I32, loom_shape(b));
    m->logits = h;
    m->loss = loom_softmax_cross_entropy(g, h, m->y, NULL);
    m->dynamic = o->dynamic;
}

/* Step s's batch (the same for every step without a source). */
static void batch(int64_t s, float *x, int32_t *y)
{
    double v[LT_PIPE_ROWS * LT_PIPE_FEAT];
    lt_fill_normal(v, LT_PIPE_ROWS * LT_PIPE_FEAT, 100 + (uint64_t)s);
    for (int i = 0; i < LT_PIPE_ROWS * LT_PIPE_FEAT; i++)
        x[i] = (float)v[i];
    lt_fill_int(y, LT_PIPE_ROWS, 3, 200 + (uint64_t)s);
}

/* A data source's step s: a dynamic batch has 32 rows and 24 in turn (8 micro-batches of 4 or 3). */
static loom_status source(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t len)
{
    (void)end, (void)msg, (void)len;
    lt_pipe_model *m = ctx;
    float x[LT_PIPE_ROWS * LT_PIPE_FEAT];
    int32_t y[LT_PIPE_ROWS];
    batch(step, x, y);
    int64_t rows = m->dynamic && step % 2 ? LT_PIPE_ROWS - 8 : LT_PIPE_ROWS;
    loom_array ax = {.dtype = LOOM_F32, .ndim = 2, .shape = {rows, LT_PIPE_FEAT}, .data = x};
    loom_array ay = {.dtype = LOOM_I32, .ndim = 1, .shape = {rows}, .data = y};
    loom_status s = loom_feeder_dense(f, m->x, &ax);
    return s != LOOM_OK ? s : loom_feeder_dense(f, m->y, &ay);
}

void lt_pipe_compile(lt_pipe_model *m, const lt_pipe_opts *o)
{
    lt_pipe_build(m, o);
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = o->adam ? loom_adam(0.02) : loom_sgd(0.1);
    t.optimizer.momentum = o->adam ? 0 : 0.9;
    t.micro_batches = o->micro;
    t.schedule = o->schedule;
    ck_assert_msg(loom_compile(m->g, m->loss, &t, &m->p) == LOOM_OK, "%s", loom_graph_error(m->g));
    m->p->trace_record = o->trace;
    float x[LT_PIPE_ROWS * LT_PIPE_FEAT];
    int32_t y[LT_PIPE_ROWS];
    batch(0, x, y);
    loom_array ax = {.dtype = LOOM_F32, .ndim = 2, .shape = {LT_PIPE_ROWS, LT_PIPE_FEAT}, .data = x};
    loom_array ay = {.dtype = LOOM_I32, .ndim = 1, .shape = {LT_PIPE_ROWS}, .data = y};
    ck_assert_msg(loom_program_feed(m->p, m->x, &ax) == LOOM_OK, "%s", loom_program_error(m->p));
    ck_assert_msg(loom_program_feed(m->p, m->y, &ay) == LOOM_OK, "%s", loom_program_error(m->p));
    if (o->with_source)
        loom_program_set_source(m->p, source, m);
}

void lt_pipe_model_free(lt_pipe_model *m)
{
    loom_program_free(m->p);
    loom_graph_free(m->g);
}

/* Trains LT_PIPE_STEPS steps (two runs: the second goes on from the first) and reads the losses and every
 * parameter. */
void lt_pipe_train(const lt_pipe_opts *o, lt_pipe_result *r)
{
    lt_pipe_model m;
    lt_pipe_compile(&m, o);
    for (int run = 0; run < 2; run++)
        ck_assert_msg(loom_program_run_steps(m.p, LOOM_RUN_STEP, LT_PIPE_STEPS / 2) == LOOM_OK, "%s", loom_program_error(m.p));
    int64_t n;
    const double *l = loom_program_losses(m.p, &n);
    ck_assert_int_eq(n, LT_PIPE_STEPS);
    ck_assert_int_eq(loom_program_steps(m.p), LT_PIPE_STEPS);
    memcpy(r->loss, l, sizeof r->loss);
    r->nparam = 0;
    for (int k = 0; loom_graph_param(m.g, k); k++) {
        loom_array w;
        ck_assert_msg(loom_program_fetch(m.p, loom_graph_param(m.g, k), &w) == LOOM_OK, "%s", loom_program_error(m.p));
        for (int64_t i = 0; i < loom_array_numel(&w); i++) {
            ck_assert_int_lt(r->nparam, LT_PIPE_MAXP);
            r->param[r->nparam++] = ((const float *)w.data)[i];
        }
    }
    /* the loss fetched is the step's, as recorded */
    loom_array la;
    ck_assert_msg(loom_program_fetch(m.p, m.loss, &la) == LOOM_OK, "%s", loom_program_error(m.p));
    ck_assert_msg(fabs(((const float *)la.data)[0] - r->loss[LT_PIPE_STEPS - 1]) <= 1e-6 * fmax(1, fabs(r->loss[LT_PIPE_STEPS - 1])),
                  "fetched loss %g, recorded %g", ((const float *)la.data)[0], r->loss[LT_PIPE_STEPS - 1]);
    lt_pipe_model_free(&m);
}

void lt_pipe_assert_close(const lt_pipe_result *a, const lt_pipe_result *b, double tol, const char *what)
{
    ck_assert_int_eq(a->nparam, b->nparam);
    lt_assert_close(a->loss, b->loss, LT_PIPE_STEPS, tol, what);
    lt_assert_close(a->param, b->param, a->nparam, tol, what);
    lt_record_results(what, a->loss, LT_PIPE_STEPS);
}

void lt_pipe_check_modes(const lt_pipe_opts *o)
{
    lt_pipe_model a, b;
    lt_pipe_compile(&a, &(lt_pipe_opts){.stage = {"cpu:0"}, .nstages = 1});
    lt_pipe_compile(&b, o);
    ck_assert_int_eq(loom_program_keep(a.p, a.logits), LOOM_OK);
    ck_assert_int_eq(loom_program_keep(b.p, b.logits), LOOM_OK);
    for (int mode = LOOM_RUN_EVAL; mode <= LOOM_RUN_GRAD; mode++) {
        ck_assert_msg(loom_program_run(a.p, (loom_run_mode)mode) == LOOM_OK, "%s", loom_program_error(a.p));
        ck_assert_msg(loom_program_run(b.p, (loom_run_mode)mode) == LOOM_OK, "%s", loom_program_error(b.p));
        loom_tensor *want[2 + 8], *got[2 + 8];
        int n = 0;
        want[n] = a.logits, got[n++] = b.logits;
        want[n] = a.loss, got[n++] = b.loss;
        for (int k = 0; mode == LOOM_RUN_GRAD && loom_graph_param(a.g, k); k++)
            want[n] = loom_program_grad(a.p, loom_graph_param(a.g, k)), got[n++] = loom_program_grad(b.p, loom_graph_param(b.g, k));
        for (int i = 0; i < n; i++) {
            loom_array wa, ga;
            ck_assert_msg(loom_program_fetch(a.p, want[i], &wa) == LOOM_OK, "%s", loom_program_error(a.p));
            ck_assert_msg(loom_program_fetch(b.p, got[i], &ga) == LOOM_OK, "%s", loom_program_error(b.p));
            ck_assert_int_eq(loom_array_numel(&wa), loom_array_numel(&ga));
            ck_assert_int_eq(memcmp(wa.shape, ga.shape, sizeof wa.shape), 0);
            double *dw = lt_to_double(&wa), *dg = lt_to_double(&ga);
            char what[64];
            snprintf(what, sizeof what, "mode %d, value %d", mode, i);
            lt_assert_close(dg, dw, loom_array_numel(&wa), 1e-5, what);
            free(dw);
            free(dg);
        }
    }
    lt_pipe_model_free(&a);
    lt_pipe_model_free(&b);
}

char *lt_pipe_read_back(const lt_pipe_opts *o, lt_pipe_model *m, char *path)
{
    lt_pipe_result own;
    lt_pipe_train(o, &own);
    lt_pipe_compile(m, o);
    char *text = lt_plan_json(m->p, path);
    ck_assert_msg(loom_program_read_plan(m->p, path) == LOOM_OK, "%s", loom_program_error(m->p));
    for (int run = 0; run < 2; run++)
        ck_assert_msg(loom_program_run_steps(m->p, LOOM_RUN_STEP, LT_PIPE_STEPS / 2) == LOOM_OK, "%s", loom_program_error(m->p));
    int64_t n;
    const double *back = loom_program_losses(m->p, &n);
    ck_assert_int_eq(n, LT_PIPE_STEPS);
    ck_assert_msg(!memcmp(back, own.loss, sizeof own.loss), "the plan read back trains to %.17g, its program to %.17g", back[n - 1],
                  own.loss[LT_PIPE_STEPS - 1]);
    return text;
}
