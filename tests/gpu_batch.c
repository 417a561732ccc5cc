/* Graph batches on a GPU (cuda:0): the interaction network, GIN and GAT trained on the same steps of a
 * sampler, collated by the batch source and fed through the GPU's stage, give one CPU device's
 * losses; the plan sampler packs to a memory limit on the GPU's own memory and trains the epoch.
 * Skipped (exit 77) without a GPU or without CUDA. */
#include "batch_cases.h"
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Trains two epochs of a balance sampler over s on placement and returns the losses (malloc'd). */
static double *train(const loom_samples *s, const char *placement, enum lt_batch_kind model, int64_t *n)
{
    loom_error err = LOOM_ERROR_INIT;
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = LOOM_SAMPLER_BALANCE;
    o.batch = 12;
    o.seed = 9;
    loom_sampler *smp;
    ck_assert_msg(loom_sampler_new(s, NULL, s->count, &o, &smp, &err) == LOOM_OK, "%s", err.msg);
    lt_batch_model m;
    lt_batch_model_new(&m, s, placement, model, 5);
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

static void versus_cpu(enum lt_batch_kind model)
{
    static const char *const what[] = {"interaction network on cuda:0, losses against cpu:0",
                                       "GIN on cuda:0, losses against cpu:0", "GAT on cuda:0, losses against cpu:0"};
    loom_samples s;
    lt_make_samples(&s, 60, 4);
    int64_t ng, nc;
    double *g = train(&s, "cuda:0", model, &ng), *c = train(&s, NULL, model, &nc);
    ck_assert_int_eq(ng, nc);
    ck_assert_int_gt(ng, 6);
    /* f32 kernels that sum in another order (the GPU's scatters, its GEMMs) over 10 Adam steps */
    lt_assert_close(g, c, ng, 1e-4, what[model]);
    free(g);
    free(c);
    loom_samples_free(&s);
}

START_TEST(test_interaction_network_on_gpu) { versus_cpu(LT_BATCH_IN); }
END_TEST

START_TEST(test_gin_on_gpu) { versus_cpu(LT_BATCH_GIN); }
END_TEST

START_TEST(test_gat_on_gpu) { versus_cpu(LT_BATCH_GAT); }
END_TEST

/* The plan sampler under a limit on the GPU's memory: every share fits, the epoch trains, and the
 * device's allocation stays under the limit. */
START_TEST(test_plan_sampler_on_gpu)
{
    loom_samples s;
    lt_make_samples(&s, 80, 6);
    loom_error err = LOOM_ERROR_INIT;
    lt_batch_model m;
    lt_batch_model_new(&m, &s, "cuda:0", LT_BATCH_IN, 2);
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

/* On two GPUs (forward only: boxing between GPUs is not built), a graph batch fed by parts: each
 * GPU's chain runs fused, and its kernels must still see their part's offsets and the whole
 * sizes, so the BCE's mean and a dropout mask are those of one device. */
typedef struct fwd_model {
    loom_graph *g;
    loom_program *p;
    loom_batch_inputs in;
    loom_tensor *bce, *drop;
} fwd_model;

static void fwd_model_new(fwd_model *m, const loom_samples *s, const char *placement)
{
    memset(m, 0, sizeof *m);
    m->g = loom_graph_new();
    loom_graph_set_seed(m->g, 5);
    if (placement) {
        loom_error err = LOOM_ERROR_INIT;
        loom_placement *pl = loom_placement_parse(placement, &err);
        ck_assert_msg(pl != NULL, "%s", err.msg);
        loom_graph_set_placement(m->g, pl);
        loom_placement_free(pl);
    }
    loom_batch_dims(m->g, s, 12, &m->in);
    m->in.graphs = 0;
    m->in.x = loom_input(m->g, "x", LOOM_F32, loom_shape(m->in.nodes, s->node_features));
    m->in.src = loom_input_index(m->g, "src", loom_shape(m->in.edges), m->in.nodes);
    m->in.dst = loom_input_index(m->g, "dst", loom_shape(m->in.edges), m->in.nodes);
    m->in.edge_attr = loom_input(m->g, "edge_attr", LOOM_F32, loom_shape(m->in.edges, s->edge_features));
    m->in.edge_y = loom_input(m->g, "edge_y", LOOM_F32, loom_shape(m->in.edges));
    loom_tensor *z = loom_nn_interaction_network(m->g, "in", m->in.x, m->in.edge_attr, m->in.src, m->in.dst, 8, 2);
    m->bce = loom_bce_with_logits(m->g, z, m->in.edge_y, 2.0);
    m->drop = loom_dropout(m->g, m->in.x, 0.5);
    ck_assert_msg(loom_compile(m->g, NULL, NULL, &m->p) == LOOM_OK, "%s", loom_graph_error(m->g));
    ck_assert(loom_program_keep(m->p, m->bce) == LOOM_OK);
    ck_assert(loom_program_keep(m->p, m->drop) == LOOM_OK);
}

START_TEST(test_two_gpus_forward_of_parts)
{
    loom_error why = LOOM_ERROR_INIT;
    if (loom_cuda_device_count(&why) < 2) {
        printf("test_two_gpus_forward_of_parts: one GPU, not run\n");
        return;
    }
    loom_samples s;
    lt_make_samples(&s, 40, 8);
    loom_error err = LOOM_ERROR_INIT;
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = LOOM_SAMPLER_DEVICES;
    o.batch = 8;
    o.devices = 2;
    loom_sampler *smp;
    ck_assert(loom_sampler_new(&s, NULL, s.count, &o, &smp, &err) == LOOM_OK);
    ck_assert(loom_sampler_epoch(smp, 0, &err) == LOOM_OK);
    fwd_model gm, cm;
    fwd_model_new(&gm, &s, "cuda:0-1");
    fwd_model_new(&cm, &s, NULL);
    ck_assert_msg(loom_batch_plan_epoch(gm.p, smp, &gm.in, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_msg(loom_batch_plan_epoch(cm.p, smp, &cm.in, &err) == LOOM_OK, "%s", err.msg);
    loom_batch_source *src;
    ck_assert(loom_batch_source_new(gm.p, &s, smp, &gm.in, &src, &err) == LOOM_OK);
    lt_joined_source js = {.s = &s, .smp = smp, .in = &cm.in};
    loom_program_set_source(cm.p, lt_joined_source_fn, &js);
    for (int64_t k = 0; k < loom_sampler_steps(smp); k++) {
        ck_assert_msg(loom_batch_run(src, LOOM_RUN_FORWARD, 1, &err) == LOOM_OK, "%s", err.msg);
        ck_assert_msg(loom_program_run_steps(cm.p, LOOM_RUN_FORWARD, 1) == LOOM_OK, "%s", loom_program_error(cm.p));
        loom_tensor *const outs[2] = {gm.bce, gm.drop}, *const want[2] = {cm.bce, cm.drop};
        for (int q = 0; q < 2; q++) {
            loom_array a, b;
            ck_assert(loom_program_fetch(gm.p, outs[q], &a) == LOOM_OK);
            ck_assert(loom_program_fetch(cm.p, want[q], &b) == LOOM_OK);
            int64_t n = 1;
            for (int i = 0; i < a.ndim; i++)
                n *= a.shape[i];
            double *va = lt_to_double(&a), *vb = lt_to_double(&b);
            char what[96];
            snprintf(what, sizeof what, "step %lld: %s on cuda:0-1 against cpu:0", (long long)k, q ? "dropout" : "the BCE");
            lt_assert_close(va, vb, n, 1e-5, what);
            free(va);
            free(vb);
        }
    }
    loom_batch_source_free(src);
    loom_program_free(gm.p);
    loom_graph_free(gm.g);
    loom_program_free(cm.p);
    loom_graph_free(cm.g);
    loom_sampler_free(smp);
    loom_samples_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gpu_batch");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_interaction_network_on_gpu);
    tcase_add_test(tc, test_gin_on_gpu);
    tcase_add_test(tc, test_gat_on_gpu);
    tcase_add_test(tc, test_plan_sampler_on_gpu);
    tcase_add_test(tc, test_bounds_lowered_under_fed_data_on_gpu);
    tcase_add_test(tc, test_two_gpus_forward_of_parts);
    suite_add_tcase(s, tc);
    return lt_run_gpu_suite(s);
}
