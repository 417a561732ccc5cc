/* Automatic placement (loom_place_search): the candidates of cpu:0-3, their order and the choice,
 * what a memory limit leaves out, measured steps, and every bad call. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

enum { B = 64, F = 32 };

typedef struct mlp_data {
    float x[B * F];
    int32_t y[B];
    int fail_build, fail_feed, builds, feeds;
} mlp_data;

static loom_tensor *build(loom_graph *g, void *user)
{
    mlp_data *d = user;
    d->builds++;
    if (d->fail_build)
        return loom_relu(g, NULL); /* a bad builder call: the graph's error */
    loom_graph_set_seed(g, 3);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(B, F));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(B));
    loom_tensor *h = loom_relu(g, loom_nn_linear(g, "fc1", x, 64, 1));
    return loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 8, 1), y, NULL);
}

/* The same model as a pipeline: fc1 on stage 0, fc2 and the loss on the last; NULL for more stages
 * than its 2 layers. */
static loom_tensor *build_stages(loom_graph *g, const loom_placement *const *stage, int nstages, void *user)
{
    (void)user;
    if (nstages > 2)
        return NULL;
    loom_graph_set_seed(g, 3);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(B, F));
    loom_tensor *h = loom_relu(g, loom_nn_linear(g, "fc1", x, 64, 1));
    if (nstages == 2) {
        h = loom_to_placement(g, h, stage[1]);
        loom_graph_set_placement(g, stage[1]);
    }
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(B));
    return loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 8, 1), y, NULL);
}

static loom_status feed(loom_program *p, loom_graph *g, void *user)
{
    mlp_data *d = user;
    d->feeds++;
    if (d->fail_feed)
        return loom_program_feed(p, loom_graph_find(g, "x"), &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {B + 1, F}, .data = d->x});
    loom_status s = loom_program_feed(p, loom_graph_find(g, "x"), &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {B, F}, .data = d->x});
    return s ? s : loom_program_feed(p, loom_graph_find(g, "y"), &(loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {B}, .data = d->y});
}

static mlp_data *data(void)
{
    mlp_data *d = calloc(1, sizeof *d);
    ck_assert(d != NULL);
    for (int i = 0; i < B * F; i++)
        d->x[i] = (float)((i * 37) % 101) / 101.0f - 0.5f;
    for (int i = 0; i < B; i++)
        d->y[i] = i % 8;
    return d;
}

/* The candidate of placement and strategy in r (a pipeline: of `stages` stages), or NULL. */
static const loom_place_candidate *find_stages(const loom_place_result *r, const char *placement, loom_place_strategy s,
                                               int stages)
{
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->cand[i].placement, placement) && r->cand[i].strategy == s && r->cand[i].stages == stages)
            return &r->cand[i];
    return NULL;
}

static const loom_place_candidate *find(const loom_place_result *r, const char *placement, loom_place_strategy s)
{
    return find_stages(r, placement, s, 1);
}

/* The predicted step of the model compiled on placement (its builds not counted). */
static double predicted_on(mlp_data *d, const loom_place_opts *o, const char *placement)
{
    loom_error e = LOOM_ERROR_INIT;
    loom_graph *g = loom_graph_new();
    loom_placement *pl = loom_placement_parse(placement, &e);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_tensor *loss = build(g, d);
    d->builds--;
    loom_program *p = NULL;
    ck_assert(loom_compile(g, loss, &o->train, &p) == LOOM_OK);
    const double s = loom_program_predicted_step(p);
    loom_program_free(p);
    loom_graph_free(g);
    return s;
}

START_TEST(test_candidates_ordered_and_measured)
{
    mlp_data *d = data();
    loom_place_opts o = LOOM_PLACE_OPTS_INIT;
    o.train.optimizer = loom_sgd(0.1);
    o.measure = 3;
    o.steps = 3;
    o.warmup = 1;
    loom_place_result r;
    loom_error e = LOOM_ERROR_INIT;
    /* compiled before any step runs, and again after the search's (below): the first steps may
     * pin this thread to one core (a library binding the thread that calls it), and the cost
     * model counted the cores this thread could use: a compile after them predicted with one */
    const double own = predicted_on(d, &o, "cpu:0-1");
    d->builds = 0;
    ck_assert_msg(loom_place_search(&(loom_place_model){.build = build, .feed = feed, .user = d}, &o, &r, &e) == LOOM_OK, "%s", e.msg);
    /* cpu:0 alone, then 2 and 4 devices each data, model and inferred, and 4 as a 2 x 2 mesh */
    ck_assert_int_eq(r.n, 8);
    ck_assert_ptr_nonnull(find(&r, "cpu:0-3[2,2]", LOOM_PLACE_MESH));
    ck_assert_ptr_nonnull(find(&r, "cpu:0", LOOM_PLACE_ONE_DEVICE));
    const char *pl[] = {"cpu:0-1", "cpu:0-3"};
    for (int k = 0; k < 2; k++)
        for (int s = LOOM_PLACE_DATA; s <= LOOM_PLACE_INFERRED; s++)
            ck_assert_msg(find(&r, pl[k], (loom_place_strategy)s) != NULL, "%s %s missing", pl[k],
                          loom_place_strategy_name((loom_place_strategy)s));
    ck_assert_int_eq(r.chosen, 0);
    for (int i = 0; i < r.n; i++) {
        const loom_place_candidate *c = &r.cand[i];
        ck_assert_msg(c->ok, "%s %s: %s", c->placement, loom_place_strategy_name(c->strategy), c->why);
        ck_assert(c->predicted_s > 0 && c->peak_bytes > 0);
        ck_assert(c->strategy != LOOM_PLACE_PIPELINE && c->stages == 1 && c->micro_batches == 1); /* no stage builder: no pipelines */
        if (i > 0)
            ck_assert(c->predicted_s >= r.cand[i - 1].predicted_s);
        ck_assert((c->measured_s > 0) == (i < 3));
    }
    ck_assert(r.best_measured >= 0 && r.best_measured < 3);
    for (int i = 0; i < 3; i++)
        ck_assert(r.cand[r.best_measured].measured_s <= r.cand[i].measured_s);
    ck_assert_int_eq(d->builds, 8 + 3);
    ck_assert_int_eq(d->feeds, 3);
    /* a model split puts a share of each matrix on each device: less than data parallelism's
     * replicas */
    ck_assert(find(&r, "cpu:0-3", LOOM_PLACE_MODEL)->peak_bytes < find(&r, "cpu:0-3", LOOM_PLACE_DATA)->peak_bytes);
    /* the prediction is the program's own, compiled before steps ran or after */
    ck_assert_msg(own == find(&r, "cpu:0-1", LOOM_PLACE_INFERRED)->predicted_s, "%g %g", own,
                  find(&r, "cpu:0-1", LOOM_PLACE_INFERRED)->predicted_s);
    const double after = predicted_on(d, &o, "cpu:0-1");
    ck_assert_msg(after == own, "compiled after the search's steps: %g, before: %g", after, own);
    loom_place_result_free(&r);
    ck_assert_ptr_null(r.cand);
    free(d);
}
END_TEST

START_TEST(test_memory_limit_leaves_candidates_out)
{
    mlp_data *d = data();
    loom_place_opts o = LOOM_PLACE_OPTS_INIT;
    o.train.optimizer = loom_adam(0.01);
    o.measure = 0;
    loom_place_result r;
    loom_error e = LOOM_ERROR_INIT;
    /* what the smallest candidate needs, from a search without a limit */
    ck_assert(loom_place_search(&(loom_place_model){.build = build, .feed = feed, .user = d}, &o, &r, &e) == LOOM_OK);
    int64_t least = INT64_MAX, most = 0;
    for (int i = 0; i < r.n; i++) {
        least = r.cand[i].peak_bytes < least ? r.cand[i].peak_bytes : least;
        most = r.cand[i].peak_bytes > most ? r.cand[i].peak_bytes : most;
        ck_assert(r.cand[i].measured_s < 0);
    }
    ck_assert(least < most);
    loom_place_result_free(&r);
    o.memory_limit = least;
    ck_assert_msg(loom_place_search(&(loom_place_model){.build = build, .feed = feed, .user = d}, &o, &r, &e) == LOOM_OK, "%s", e.msg);
    int ok = 0;
    for (int i = 0; i < r.n; i++) {
        const loom_place_candidate *c = &r.cand[i];
        ok += c->ok;
        ck_assert(!c->ok || ok == i + 1); /* the ones that fit first */
        if (!c->ok) {
            ck_assert_msg(strstr(c->why, "limit") != NULL, "%s", c->why);
        } else {
            ck_assert(c->peak_bytes <= least);
        }
    }
    ck_assert_msg(ok >= 1 && ok < r.n, "%d of %d fit %lld: first why %s", ok, r.n, (long long)least, r.cand[r.n - 1].why);
    ck_assert_int_eq(r.chosen, 0);
    loom_place_result_free(&r);
    o.memory_limit = 1024; /* nothing fits */
    ck_assert(loom_place_search(&(loom_place_model){.build = build, .feed = feed, .user = d}, &o, &r, &e) == LOOM_OK);
    ck_assert_int_eq(r.chosen, -1);
    ck_assert_int_eq(r.best_measured, -1);
    for (int i = 0; i < r.n; i++)
        ck_assert(!r.cand[i].ok);
    loom_place_result_free(&r);
    free(d);
}
END_TEST

static void refused(const loom_place_model *m, const loom_place_opts *o, loom_status want, const char *msg)
{
    loom_place_result r;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_place_search(m, o, &r, &e), want);
    ck_assert_msg(strstr(e.msg, msg) != NULL, "wanted '%s' in '%s'", msg, e.msg);
    loom_place_result_free(&r);
}

/* The program of the model built as `stages` stages of devices, compiled with o's train options and
 * micro-batches; its predicted step. */
static double pipeline_predicted(mlp_data *d, const loom_place_opts *o, const char *devices, int stages, int micro)
{
    loom_error e = LOOM_ERROR_INIT;
    loom_placement *all = loom_placement_parse(devices, &e), *st[2] = {NULL, NULL};
    ck_assert(all != NULL);
    for (int k = 0; k < stages; k++)
        ck_assert((st[k] = loom_placement_stage(all, k, stages, &e)) != NULL);
    loom_graph *g = loom_graph_new();
    loom_graph_set_placement(g, st[0]);
    loom_tensor *loss = build_stages(g, (const loom_placement *const *)st, stages, d);
    if (loom_placement_ndevices(all) > stages) /* data parallel within each stage, as the search hints */
        for (int i = 0; i < 2; i++)
            loom_tensor_set_sbp(loom_graph_find(g, i ? "y" : "x"), loom_split(0));
    loom_train_opts t = o->train;
    t.micro_batches = micro;
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &t, &p) == LOOM_OK, "%s", loom_graph_error(g));
    double s = loom_program_predicted_step(p);
    loom_program_free(p);
    loom_graph_free(g);
    for (int k = 0; k < stages; k++)
        loom_placement_free(st[k]);
    loom_placement_free(all);
    return s;
}

START_TEST(test_pipeline_candidates)
{
    mlp_data *d = data();
    loom_place_model m = {.build = build, .feed = feed, .user = d, .stages = build_stages};
    loom_place_opts o = LOOM_PLACE_OPTS_INIT;
    o.train.optimizer = loom_sgd(0.1);
    o.measure = 20; /* every candidate that fits */
    o.steps = 5;
    o.warmup = 1;
    loom_place_result r;
    loom_error e = LOOM_ERROR_INIT;
    /* the programs' own predictions, before any step runs (see above) */
    double two_own = pipeline_predicted(d, &o, "cpu:0-1", 2, 8), pairs_own = pipeline_predicted(d, &o, "cpu:0-3", 2, 8),
           whole = pipeline_predicted(d, &o, "cpu:0-1", 2, 1);
    ck_assert_msg(loom_place_search(&m, &o, &r, &e) == LOOM_OK, "%s", e.msg);
    /* the 8 of before, and pipelines: cpu:0-1 in 2 stages, cpu:0-3 in 4 (which the model refuses)
     * and in 2 of 2 devices each */
    ck_assert_int_eq(r.n, 11);
    const loom_place_candidate *two = find_stages(&r, "cpu:0-1", LOOM_PLACE_PIPELINE, 2),
                               *four = find_stages(&r, "cpu:0-3", LOOM_PLACE_PIPELINE, 4),
                               *pairs = find_stages(&r, "cpu:0-3", LOOM_PLACE_PIPELINE, 2);
    ck_assert(two && four && pairs);
    ck_assert_msg(two->ok && pairs->ok, "%s / %s", two->why, pairs->why);
    ck_assert_int_eq(two->micro_batches, 8); /* the largest of 8, 4, 2 that divides 64 */
    ck_assert_int_eq(pairs->micro_batches, 8);
    ck_assert(!four->ok && four->predicted_s == 0 && four->measured_s < 0);
    ck_assert_msg(strstr(four->why, "stage build (4 stages) failed") != NULL, "%s", four->why);
    ck_assert(&r.cand[r.n - 1] == four); /* not ok: last */
    for (int i = 0; i < r.n - 1; i++)
        ck_assert_msg(r.cand[i].ok && r.cand[i].measured_s > 0, "%s", r.cand[i].why);
    /* the prediction is the compiled program's own, and the micro-batches count in it */
    ck_assert_msg(two->predicted_s == two_own, "%g %g", two->predicted_s, two_own);
    ck_assert_msg(pairs->predicted_s == pairs_own, "%g %g", pairs->predicted_s, pairs_own);
    ck_assert(two_own != whole);
    ck_assert(two->peak_bytes > 0 && pairs->peak_bytes > 0);
    int64_t need = two->peak_bytes;
    loom_place_result_free(&r);

    /* the memory limit holds a pipeline as it holds the others */
    o.measure = 0;
    o.memory_limit = need;
    ck_assert(loom_place_search(&m, &o, &r, &e) == LOOM_OK);
    ck_assert(find_stages(&r, "cpu:0-1", LOOM_PLACE_PIPELINE, 2)->ok);
    loom_place_result_free(&r);
    o.memory_limit = need - 1;
    ck_assert(loom_place_search(&m, &o, &r, &e) == LOOM_OK);
    two = find_stages(&r, "cpu:0-1", LOOM_PLACE_PIPELINE, 2);
    ck_assert(!two->ok);
    ck_assert_msg(strstr(two->why, "limit") != NULL, "%s", two->why);
    loom_place_result_free(&r);

    /* micro-batches that do not divide the batch: the pipelines are not ok, with the compile's why */
    o.memory_limit = 0;
    o.micro_batches = 3;
    ck_assert(loom_place_search(&m, &o, &r, &e) == LOOM_OK);
    two = find_stages(&r, "cpu:0-1", LOOM_PLACE_PIPELINE, 2);
    ck_assert(!two->ok);
    ck_assert_msg(strstr(two->why, "do not divide the batch of 64 rows") != NULL, "%s", two->why);
    ck_assert(find(&r, "cpu:0-1", LOOM_PLACE_DATA)->ok); /* the others are as before */
    loom_place_result_free(&r);
    o.micro_batches = -1;
    refused(&m, &o, LOOM_ERR_INVALID, "must be >= 0");
    free(d);
}
END_TEST

START_TEST(test_bad_calls)
{
    mlp_data *d = data();
    loom_place_model m = {.build = build, .feed = feed, .user = d};
    loom_place_opts o = LOOM_PLACE_OPTS_INIT;
    o.train.optimizer = loom_sgd(0.1);
    o.steps = 3;
    o.measure = 1;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_place_search(&m, &o, NULL, &e), LOOM_ERR_INVALID);
    refused(&(loom_place_model){.feed = feed, .user = d}, &o, LOOM_ERR_INVALID, "build and feed");
    refused(&m, NULL, LOOM_ERR_INVALID, "options");
    loom_place_opts bad = o;
    bad.devices = "cpu:3-1";
    refused(&m, &bad, LOOM_ERR_INVALID, "cpu:3-1");
    bad = o;
    bad.devices = "@0-1/cpu:0-1";
    refused(&m, &bad, LOOM_ERR_UNSUPPORTED, "span ranks");
    bad = o;
    bad.measure = -1;
    refused(&m, &bad, LOOM_ERR_INVALID, "must be >= 0");
    bad = o;
    bad.steps = 0;
    refused(&m, &bad, LOOM_ERR_INVALID, "steps >= 1");
    d->fail_build = 1;
    refused(&m, &o, LOOM_ERR_INVALID, "on cpu:0, the model's build failed: loom_relu");
    d->fail_build = 0;
    d->fail_feed = 1;
    refused(&m, &o, LOOM_ERR_SHAPE, "the feed of cpu:");
    free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("place");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_candidates_ordered_and_measured);
    tcase_add_test(tc, test_memory_limit_leaves_candidates_out);
    tcase_add_test(tc, test_pipeline_candidates);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
