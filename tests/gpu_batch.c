/* Graph batches on a GPU (cuda:0): the interaction network and GIN trained on the same steps of a
 * sampler, collated by the batch source and fed through the GPU's stage, give one CPU device's
 * losses; the plan sampler packs to a memory limit on the GPU's own memory and trains the epoch.
 * Skipped (exit 77) without a GPU or without CUDA. */
#ifndef LOOM_HAVE_CUDA
#include <stdio.h>
int main(void)
{
    puts("skipped: this build has no CUDA");
    return 77;
}
#else
#include "batch_cases.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Trains two epochs of a balance sampler over s on placement and returns the losses (malloc'd). */
static double *train(const loom_samples *s, const char *placement, int gin, int64_t *n)
{
    loom_error err = LOOM_ERROR_INIT;
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = LOOM_SAMPLER_BALANCE;
    o.batch = 12;
    o.seed = 9;
    loom_sampler *smp;
    ck_assert_msg(loom_sampler_new(s, NULL, s->count, &o, &smp, &err) == LOOM_OK, "%s", err.msg);
    lt_batch_model m;
    lt_batch_model_new(&m, s, placement, gin, 5);
    loom_batch_source *src;
    ck_assert_msg(loom_batch_source_new(m.p, s, smp, &m.in, &src, &err) == LOOM_OK, "%s", err.msg);
    for (int e = 0; e < 2; e++) {
        ck_assert_msg(loom_sampler_epoch(smp, e, &err) == LOOM_OK, "%s", err.msg);
        ck_assert_msg(loom_batch_plan_epoch(m.p, smp, &m.in, &err) == LOOM_OK, "%s", err.msg);
        loom_batch_source_rewind(src, 0);
        ck_assert_msg(loom_batch_run(src, LOOM_RUN_STEP, 0, &err) == LOOM_OK, "%s", err.msg);
    }
    const double *l = loom_program_losses(m.p, n);
    double *r = malloc((size_t)*n * sizeof *r + 1);
    memcpy(r, l, (size_t)*n * sizeof *r);
    loom_batch_source_free(src);
    lt_batch_model_free(&m);
    loom_sampler_free(smp);
    return r;
}

static void versus_cpu(int gin)
{
    loom_samples s;
    lt_make_samples(&s, 60, 4);
    int64_t ng, nc;
    double *g = train(&s, "cuda:0", gin, &ng), *c = train(&s, NULL, gin, &nc);
    ck_assert_int_eq(ng, nc);
    ck_assert_int_gt(ng, 6);
    /* f32 kernels that sum in another order (the GPU's scatters, its GEMMs) over 10 Adam steps */
    lt_assert_close(g, c, ng, 1e-4, gin ? "GIN on cuda:0, losses against cpu:0" : "interaction network on cuda:0, losses against cpu:0");
    free(g);
    free(c);
    loom_samples_free(&s);
}

START_TEST(test_interaction_network_on_gpu) { versus_cpu(0); }
END_TEST

START_TEST(test_gin_on_gpu) { versus_cpu(1); }
END_TEST

/* The plan sampler under a limit on the GPU's memory: every share fits, the epoch trains, and the
 * device's allocation stays under the limit. */
START_TEST(test_plan_sampler_on_gpu)
{
    loom_samples s;
    lt_make_samples(&s, 80, 6);
    loom_error err = LOOM_ERROR_INIT;
    lt_batch_model m;
    lt_batch_model_new(&m, &s, "cuda:0", 0, 2);
    loom_program_free(m.p);
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = loom_adam(0.01);
    t.memory_limit = 24 << 20;
    ck_assert_msg(loom_compile(m.g, m.loss, &t, &m.p) == LOOM_OK, "%s", loom_graph_error(m.g));
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = LOOM_SAMPLER_PLAN;
    ck_assert_msg(loom_batch_fit_plan(m.p, LOOM_RUN_STEP, &s, &m.in, &o, &err) == LOOM_OK, "%s", err.msg);
    loom_sampler *smp;
    loom_batch_source *src;
    ck_assert_msg(loom_sampler_new(&s, NULL, s.count, &o, &smp, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_msg(loom_batch_source_new(m.p, &s, smp, &m.in, &src, &err) == LOOM_OK, "%s", err.msg);
    ck_assert(loom_sampler_epoch(smp, 0, &err) == LOOM_OK);
    ck_assert_msg(loom_batch_plan_epoch(m.p, smp, &m.in, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_msg(loom_batch_run(src, LOOM_RUN_STEP, 0, &err) == LOOM_OK, "%s", err.msg);
    int64_t n;
    loom_program_losses(m.p, &n);
    ck_assert_int_eq(n, loom_sampler_steps(smp));
    loom_memory mm;
    ck_assert(loom_program_memory(m.p, LOOM_RUN_STEP, 0, &mm) == LOOM_OK);
    ck_assert_uint_le(mm.total - mm.scratch, 24u << 20); /* the limit bounds the plan; kernel scratch is sized at setup */
    loom_batch_source_free(src);
    loom_sampler_free(smp);
    lt_batch_model_free(&m);
    loom_samples_free(&s);
}
END_TEST

/* Data fed before loom_program_set_bounds lowered N: the device's copy of the fed data and the
 * registers are planned for the new bound, so the run refuses the data rather than copying it. */
START_TEST(test_bounds_lowered_under_fed_data_on_gpu)
{
    loom_graph *g = loom_graph_new();
    loom_error err = LOOM_ERROR_INIT;
    loom_placement *pl = loom_placement_parse("cuda:0", &err);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_dim N = loom_dim_dynamic(g, "N", 4096);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 64));
    loom_tensor *y = loom_scale(g, x, 2.0);
    loom_program *p;
    ck_assert_msg(loom_compile(g, NULL, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
    ck_assert(loom_program_keep(p, y) == LOOM_OK);
    float *data = calloc(4096 * 64, sizeof *data);
    loom_array a = {.dtype = LOOM_F32, .ndim = 2, .shape = {4096, 64}, .data = data};
    ck_assert(loom_program_feed(p, x, &a) == LOOM_OK);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_EVAL) == LOOM_OK, "%s", loom_program_error(p));
    loom_bound b = {N, 4, 0};
    ck_assert_msg(loom_program_set_bounds(p, &b, 1) == LOOM_OK, "%s", loom_program_error(p));
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_EVAL), LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(loom_program_error(p), "'x'") && strstr(loom_program_error(p), "bound of 4"), "%s", loom_program_error(p));
    free(data);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gpu_batch");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_interaction_network_on_gpu);
    tcase_add_test(tc, test_gin_on_gpu);
    tcase_add_test(tc, test_plan_sampler_on_gpu);
    tcase_add_test(tc, test_bounds_lowered_under_fed_data_on_gpu);
    suite_add_tcase(s, tc);
    return lt_run_gpu_suite(s);
}
#endif
