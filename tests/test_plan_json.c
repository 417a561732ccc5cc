/* A compiled plan stands alone: written as JSON, read back into a fresh program of the same model
 * and run, it gives the same losses bit for bit as the program's own plan (on one device, and on
 * cpu:0-3 with boxing); written again it is the same text. A plan that is not one, or not this
 * program's, is refused naming the file, the byte offset or the first tensor that differs. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { STEPS = 6, N = 120, F = 16, C = 4, DEG = 5 };

typedef struct model {
    loom_graph *g;
    loom_program *p;
    loom_tensor *loss;
} model;

/* A GCN with dropout (so that the plan's seed matters) on a random graph, fed, with Adam. */
static model build(const char *placement, int hidden)
{
    static int32_t rowptr[N + 1], col[N * DEG], labels[N];
    static float val[N * DEG], x[N * F];
    double xd[N * F];
    int32_t pick[DEG];
    for (int i = 0, e = 0; i < N; i++) {
        rowptr[i] = e;
        lt_fill_int(pick, DEG, N, (uint64_t)i + 7);
        for (int k = 0; k < DEG; k++, e++)
            col[e] = pick[k], val[e] = 0.2f;
        rowptr[i + 1] = e;
    }
    lt_fill_normal(xd, N * F, 3);
    for (int i = 0; i < N * F; i++)
        x[i] = (float)xd[i];
    lt_fill_int(labels, N, C, 4);
    model m = {.g = loom_graph_new()};
    loom_graph_set_seed(m.g, 11);
    if (placement) {
        loom_error e = LOOM_ERROR_INIT;
        loom_placement *pl = loom_placement_parse(placement, &e);
        ck_assert_msg(pl != NULL, "%s", e.msg);
        loom_graph_set_placement(m.g, pl);
        loom_placement_free(pl);
    }
    loom_tensor *tx = loom_input(m.g, "x", LOOM_F32, loom_shape(N, F));
    loom_tensor *ta = loom_input_csr(m.g, "adj", LOOM_F32, N, N);
    loom_tensor *ty = loom_input(m.g, "y", LOOM_I32, loom_shape(N));
    m.loss = loom_softmax_cross_entropy(m.g, loom_nn_gcn(m.g, ta, tx, hidden, C, 0.5), ty, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_adam(0.01);
    ck_assert_msg(loom_compile(m.g, m.loss, &o, &m.p) == LOOM_OK, "%s", loom_graph_error(m.g));
    loom_array xa = {.dtype = LOOM_F32, .ndim = 2, .shape = {N, F}, .data = x};
    loom_array ya = {.dtype = LOOM_I32, .ndim = 1, .shape = {N}, .data = labels};
    loom_csr adj = {.nrows = N, .ncols = N, .nnz = N * DEG, .vdtype = LOOM_F32, .rowptr = rowptr, .col = col, .val = val};
    ck_assert_int_eq(loom_program_feed(m.p, tx, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(m.p, ty, &ya), LOOM_OK);
    ck_assert_int_eq(loom_program_feed_csr(m.p, ta, &adj), LOOM_OK);
    return m;
}

static void drop(model *m)
{
    loom_program_free(m->p);
    loom_graph_free(m->g);
}

static void run(model *m, double *losses)
{
    ck_assert_msg(loom_program_run_steps(m->p, LOOM_RUN_STEP, STEPS) == LOOM_OK, "%s", loom_program_error(m->p));
    int64_t n;
    const double *l = loom_program_losses(m->p, &n);
    ck_assert_int_eq(n, STEPS);
    memcpy(losses, l, STEPS * sizeof *losses);
}

static void round_trip(const char *placement)
{
    double own[STEPS], back[STEPS];
    model a = build(placement, 8);
    run(&a, own);
    drop(&a);

    model b = build(placement, 8);
    char path[64], again_path[64];
    char *text = lt_plan_json(b.p, path);
    drop(&b);

    model c = build(placement, 8);
    ck_assert_msg(loom_program_read_plan(c.p, path) == LOOM_OK, "%s", loom_program_error(c.p));
    char *again = lt_plan_json(c.p, again_path); /* the plan read back, written again: the same text */
    ck_assert_str_eq(again, text);
    run(&c, back);
    for (int s = 0; s < STEPS; s++)
        ck_assert_msg(memcmp(&own[s], &back[s], sizeof own[s]) == 0, "%s step %d: %.17g from the program's plan, %.17g from the plan read back",
                      placement ? placement : "one device", s, own[s], back[s]);
    char what[64];
    snprintf(what, sizeof what, "plan_json %s", placement ? placement : "one device");
    lt_record_results(what, back, STEPS);
    drop(&c);
    unlink(path);
    unlink(again_path);
    free(text);
    free(again);
}

START_TEST(test_round_trip_one_device) { round_trip(NULL); }
END_TEST

START_TEST(test_round_trip_four_devices) { round_trip("cpu:0-3"); }
END_TEST

/* A mesh: two-level SBPs and signatures, registers' meshes, the kernels' signatures rebuilt. */
START_TEST(test_round_trip_mesh) { round_trip("cpu:0-3[2,2]"); }
END_TEST

START_TEST(test_bad_plans_are_refused)
{
    model a = build(NULL, 8);
    char path[64];
    char *text = lt_plan_json(a.p, path);
    size_t n = strlen(text);

    /* cut short: the byte where the text ends */
    lt_write_file(path, text, n / 2);
    ck_assert_int_eq(loom_program_read_plan(a.p, path), LOOM_ERR_FORMAT);
    const char *e = loom_program_error(a.p);
    ck_assert_msg(strstr(e, path) && strstr(e, "byte "), "%s", e);

    /* a register past the end of its block */
    char *edit = strdup(text), *at = strstr(edit, "\"mem\":\"shared\",\"offset\":");
    ck_assert_ptr_nonnull(at);
    at += strlen("\"mem\":\"shared\",\"offset\":");
    char *end = at + strspn(at, "0123456789");
    char *bigger = malloc(n + 32);
    snprintf(bigger, n + 32, "%.*s987654321%s", (int)(at - edit), edit, end);
    lt_write_file(path, bigger, strlen(bigger));
    ck_assert_int_eq(loom_program_read_plan(a.p, path), LOOM_ERR_FORMAT);
    e = loom_program_error(a.p);
    ck_assert_msg(strstr(e, "ends at byte") && strstr(e, "shared block"), "%s", e);
    free(bigger);
    free(edit);

    /* another version of the format */
    char *v = strstr(text, "\"loom_plan\":1,");
    ck_assert_ptr_nonnull(v);
    v[12] = '9';
    lt_write_file(path, text, n);
    v[12] = '1';
    ck_assert_int_eq(loom_program_read_plan(a.p, path), LOOM_ERR_FORMAT);
    e = loom_program_error(a.p);
    ck_assert_msg(strstr(e, "version 9 of the plan format") && strstr(e, path), "%s", e);

    /* a lone low surrogate in a name: not text */
    const char *lone = "{\"loom_plan\": 1, \"name\": \"\\udc00\"}";
    lt_write_file(path, lone, strlen(lone));
    ck_assert_int_eq(loom_program_read_plan(a.p, path), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(loom_program_error(a.p), "low surrogate"), "%s", loom_program_error(a.p));

    /* not a JSON document at all */
    lt_write_file(path, "{\"loom_plan\": 1,, }", 19);
    ck_assert_int_eq(loom_program_read_plan(a.p, path), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(loom_program_error(a.p), "byte 16"), "%s", loom_program_error(a.p));

    /* the plan of another model: another hidden width */
    lt_write_file(path, text, n);
    model other = build(NULL, 12);
    ck_assert_int_eq(loom_program_read_plan(other.p, path), LOOM_ERR_FORMAT);
    e = loom_program_error(other.p);
    ck_assert_msg(strstr(e, "not a plan of this program") && strstr(e, "tensor "), "%s", e);
    drop(&other);

    /* a file that is not there */
    ck_assert_int_eq(loom_program_read_plan(a.p, "/nonexistent/plan.json"), LOOM_ERR_IO);
    ck_assert_msg(strstr(loom_program_error(a.p), "/nonexistent/plan.json"), "%s", loom_program_error(a.p));

    /* after all that, the program still runs its own plan */
    double l[STEPS];
    run(&a, l);
    drop(&a);
    unlink(path);
    free(text);
}
END_TEST

/* A plan made before its sparse input is fed (what `loom plan` writes for a model) is written
 * with the empty matrix it was sized for, and reads back: it once lacked the sparse size and was
 * refused by its own reader. */
START_TEST(test_a_plan_before_the_feed_reads_back)
{
    char path[64];
    for (int k = 0; k < 2; k++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, F));
        loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F32, N, N);
        loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(N));
        loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_gcn(g, adj, x, 8, C, 0.5), y, NULL);
        loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
        o.optimizer = loom_adam(0.01);
        model m = {.g = g, .loss = loss};
        ck_assert_int_eq(loom_compile(g, loss, &o, &m.p), LOOM_OK);
        if (k == 0) {
            free(lt_plan_json(m.p, path));
        } else {
            ck_assert_msg(loom_program_read_plan(m.p, path) == LOOM_OK, "%s", loom_program_error(m.p));
            unlink(path);
        }
        drop(&m);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("plan_json");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_round_trip_one_device);
    tcase_add_test(tc, test_round_trip_four_devices);
    tcase_add_test(tc, test_round_trip_mesh);
    tcase_add_test(tc, test_bad_plans_are_refused);
    tcase_add_test(tc, test_a_plan_before_the_feed_reads_back);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
