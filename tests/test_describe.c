/* The public calls that describe a program (loom_program_print_plan, loom_program_write_dot,
 * the op registry), on a graph a user builds: what `loom plan` prints for the built-in models
 * holds for any graph. */
#define _GNU_SOURCE /* open_memstream */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static loom_program *user_program(loom_graph *g, const char *placement)
{
    loom_placement *pl = loom_placement_parse(placement, NULL);
    ck_assert_ptr_nonnull(pl);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_tensor *x = loom_input(g, "pixels", LOOM_F32, loom_shape(8, 5));
    loom_tensor *y = loom_input(g, "digit", LOOM_I32, loom_shape(8));
    loom_tensor *h = loom_tanh(g, loom_nn_linear(g, "hidden", x, 4, 1));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "out", h, 3, 1), y, NULL);
    loom_program *p;
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.1);
    ck_assert_msg(loom_compile(g, loss, &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
    return p;
}

/* What a describe call writes, as a malloc'd string. */
static char *described(loom_program *p, loom_status (*call)(loom_program *, FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(call(p, f), LOOM_OK);
    fclose(f);
    return buf;
}

START_TEST(test_plan_of_a_user_graph)
{
    loom_graph *g = loom_graph_new();
    loom_program *p = user_program(g, "cpu:0-1");
    char *text = described(p, loom_program_print_plan);
    ck_assert_msg(strstr(text, "on 2 devices") && strstr(text, "hidden.weight") && strstr(text, "all-reduce"), "%.300s", text);
    free(text);
    char *dot = described(p, loom_program_write_dot);
    ck_assert_msg(strncmp(dot, "digraph", 7) == 0 && strstr(dot, "pixels"), "%.300s", dot);
    free(dot);
    loom_program_free(p);
    loom_graph_free(g);

    g = loom_graph_new();
    p = user_program(g, "cpu:0");
    text = described(p, loom_program_print_plan);
    ck_assert_msg(strstr(text, "one device: every tensor is whole there"), "%.300s", text);
    free(text);
    dot = described(p, loom_program_write_dot); /* one cluster, nothing boxed */
    ck_assert_msg(strncmp(dot, "digraph", 7) == 0 && !strstr(dot, "all-reduce"), "%.300s", dot);
    free(dot);

    /* a stream that cannot be written, and none */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        setvbuf(full, NULL, _IONBF, 0);
        ck_assert_int_eq(loom_program_print_plan(p, full), LOOM_ERR_IO);
        ck_assert_str_eq(loom_program_error(p), "loom_program_print_plan: the stream reports a write error");
        fclose(full);
    }
    ck_assert_int_eq(loom_program_write_dot(p, NULL), LOOM_ERR_INVALID);
    ck_assert_str_eq(loom_program_error(p), "loom_program_write_dot: the stream is NULL");
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

START_TEST(test_op_registry)
{
    ck_assert_int_gt(loom_op_count(), 30);
    loom_op_about a;
    int matmul = 0;
    for (int i = 0; i < loom_op_count(); i++) {
        ck_assert_int_eq(loom_op_info(i, &a), LOOM_OK);
        ck_assert(a.name && a.name[0]);
        matmul |= !strcmp(a.name, "matmul") && a.has_grad && !a.is_leaf;
    }
    ck_assert(matmul);
    ck_assert_int_eq(loom_op_info(loom_op_count(), &a), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_op_info(-1, &a), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_op_info(0, NULL), LOOM_ERR_INVALID);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("describe");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_plan_of_a_user_graph);
    tcase_add_test(tc, test_op_registry);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
