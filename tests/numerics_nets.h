/* Shared by the numerics-check tests (test_numerics on CPU devices, gpu_numerics on cuda:0): small
 * programs whose forward pass, gradient or update makes a NaN or an infinity, and what the
 * failure's message must say. */
#ifndef LOOM_TESTS_NUMERICS_NETS_H
#define LOOM_TESTS_NUMERICS_NETS_H

#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct net {
    loom_graph *g;
    loom_tensor *x, *d, *w, *loss;
    loom_program *p;
} net;

static inline void place(loom_graph *g, const char *placement)
{
    if (!placement)
        return;
    loom_error e = {0};
    loom_placement *pl = loom_placement_parse(placement, &e);
    ck_assert_msg(pl != NULL, "%s", e.msg);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
}

static inline void compile(net *n, loom_optimizer opt, loom_executor ex, int check)
{
    loom_train_opts o = {.optimizer = opt, .executor = ex, .check_numerics = check};
    ck_assert_msg(loom_compile(n->g, n->loss, &o, &n->p) == LOOM_OK, "%s", loom_graph_error(n->g));
}

static inline void feed(net *n, loom_tensor *t, const float *v)
{
    loom_array a = {.dtype = LOOM_F32, .ndim = 1, .shape = {4}, .data = (void *)v};
    ck_assert_msg(loom_program_feed(n->p, t, &a) == LOOM_OK, "%s", loom_program_error(n->p));
}

/* loss = sum(w * (x / d)) with w = 1: the division makes the NaN or infinity. */
static inline net ratio_net(const char *placement, loom_executor ex, int check)
{
    net n = {.g = loom_graph_new()};
    place(n.g, placement);
    n.x = loom_input(n.g, "x", LOOM_F32, loom_shape(4));
    n.d = loom_input(n.g, "d", LOOM_F32, loom_shape(4));
    n.w = loom_param(n.g, "w", LOOM_F32, loom_shape(4), loom_init_constant(1.0));
    loom_tensor *r = loom_div(n.g, n.x, n.d);
    loom_tensor_set_name(r, "ratio");
    n.loss = loom_sum(n.g, loom_mul(n.g, r, n.w), LOOM_ALL_AXES, 0);
    compile(&n, loom_sgd(0.1), ex, check);
    return n;
}

static inline void net_free(net *n)
{
    loom_program_free(n->p);
    loom_graph_free(n->g);
}

static inline void expect_failure(net *n, const char *const *needles, int count)
{
    loom_status s = loom_program_run(n->p, LOOM_RUN_STEP);
    const char *m = loom_program_error(n->p);
    ck_assert_msg(s == LOOM_ERR_RUNTIME, "status %d: %s", s, m ? m : "(none)");
    for (int i = 0; i < count; i++)
        ck_assert_msg(strstr(m, needles[i]), "wanted '%s' in: %s", needles[i], m);
}

static inline float fetch_first(net *n, loom_tensor *t)
{
    loom_array a;
    ck_assert_int_eq(loom_program_fetch(n->p, t, &a), LOOM_OK);
    return ((const float *)a.data)[0];
}

/* y = x / w with w = 1e-20: y = 1e20 and the loss 4e20 are finite, but dL/dw = -x / w^2 = -1e40
 * is past f32's range. */
static inline net gradient_overflow_net(const char *placement, loom_executor ex, int check)
{
    net n = {.g = loom_graph_new()};
    place(n.g, placement);
    n.x = loom_input(n.g, "x", LOOM_F32, loom_shape(4));
    n.w = loom_param(n.g, "w", LOOM_F32, loom_shape(4), loom_init_constant(1e-20));
    loom_tensor *y = loom_div(n.g, n.x, n.w);
    loom_tensor_set_name(y, "y");
    n.loss = loom_sum(n.g, y, LOOM_ALL_AXES, 0);
    compile(&n, loom_sgd(0.1), ex, check);
    feed(&n, n.x, (const float[]){1, 1, 1, 1});
    return n;
}

/* w = 1, dL/dw = 2, lr 3e38: the update w - 6e38 is -inf in f32. */
static inline net update_overflow_net(const char *placement, loom_executor ex, int check)
{
    net n = {.g = loom_graph_new()};
    place(n.g, placement);
    n.w = loom_param(n.g, "w", LOOM_F32, loom_shape(4), loom_init_constant(1.0));
    n.loss = loom_sum(n.g, loom_scale(n.g, n.w, 2.0), LOOM_ALL_AXES, 0);
    compile(&n, loom_sgd(3e38), ex, check);
    return n;
}

/* Data whose ratio x / d is 0 / 0 at element 1, or -1 / 0 at element 2. */
static inline void feed_nan(net *n)
{
    feed(n, n->x, (const float[]){1, 0, 2, 3});
    feed(n, n->d, (const float[]){1, 0, 1, 1});
}

static inline void feed_neg_inf(net *n)
{
    feed(n, n->x, (const float[]){1, 1, -1, 1});
    feed(n, n->d, (const float[]){1, 1, 0, 1});
}

/* With the check off, the ratio net's 0 / 0 flows on to the loss and the run succeeds. */
static inline void nan_reaches_loss(const char *placement, loom_executor ex)
{
    net n = ratio_net(placement, ex, 0);
    feed_nan(&n);
    ck_assert_msg(loom_program_run(n.p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(n.p));
    int64_t nl = 0;
    const double *l = loom_program_losses(n.p, &nl);
    ck_assert_int_eq(nl, 1);
    ck_assert(isnan(l[0]));
    net_free(&n);
}

/* What each failure's message must hold. */
static const char *const nan_needles[] = {"div 'ratio'", "forward pass", "made nan at element 1", "LOOM_CHECK_NUMERICS"};
static const char *const inf_needles[] = {"div 'ratio'", "made -inf"};
static const char *const grad_needles[] = {"backward pass", "inf at element", "the first op whose output is not finite"};
static const char *const update_needles[] = {"sgd", "optimizer update of 'w'", "made -inf"};

/* 5 steps of finite training on the ratio net: its losses and final w. */
static inline void finite_training(const char *placement, loom_executor ex, int check, double *losses, float *w)
{
    net n = ratio_net(placement, ex, check);
    feed(&n, n.x, (const float[]){1, -2, 3, 0.5f});
    feed(&n, n.d, (const float[]){2, 4, -1, 0.25f});
    ck_assert_msg(loom_program_run_steps(n.p, LOOM_RUN_STEP, 5) == LOOM_OK, "%s", loom_program_error(n.p));
    int64_t nl = 0;
    const double *l = loom_program_losses(n.p, &nl);
    ck_assert_int_eq(nl, 5);
    memcpy(losses, l, 5 * sizeof *l);
    loom_array a;
    ck_assert_int_eq(loom_program_fetch(n.p, n.w, &a), LOOM_OK);
    memcpy(w, a.data, 4 * sizeof *w);
    net_free(&n);
}

#endif
