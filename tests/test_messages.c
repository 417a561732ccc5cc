/* What a user reads when a call is refused: each case checks the status and the whole message, so
 * that a message naming nothing (or one found only at run time) is caught. */
#include "harness.h"

#include <stdio.h>
#include <string.h>

#include "graphs/core/op.h"

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* x [N, 2] (N up to 4) -> sum: a scalar loss with one parameter, for compile and run cases. */
typedef struct {
    loom_graph *g;
    loom_tensor *x, *loss;
} small;

static small small_new(void)
{
    small m = {.g = loom_graph_new()};
    loom_dim N = loom_dim_dynamic(m.g, "N", 4);
    m.x = loom_input(m.g, "x", LOOM_F32, loom_shape(N, 2));
    loom_tensor *w = loom_param(m.g, "w", LOOM_F32, loom_shape(2), loom_init_constant(0.5));
    m.loss = loom_sum(m.g, loom_mul(m.g, m.x, w), LOOM_ALL_AXES, 0);
    ck_assert_int_eq(loom_graph_status(m.g), LOOM_OK);
    return m;
}

START_TEST(test_compile_null_arguments)
{
    small m = small_new();
    /* loom_compile(g, loss, NULL, NULL) returned -1 with no message */
    ck_assert_int_eq(loom_compile(m.g, m.loss, NULL, NULL), LOOM_ERR_INVALID);
    ck_assert_str_eq(loom_graph_error(m.g), "loom_compile: the program pointer (out, the last argument) is NULL");
    loom_program *p = (loom_program *)&m; /* set to NULL on failure */
    ck_assert_int_eq(loom_compile(NULL, m.loss, NULL, &p), LOOM_ERR_INVALID);
    ck_assert_ptr_null(p);
    loom_graph_free(m.g);
}
END_TEST

START_TEST(test_regst_num_at_compile)
{
    /* regst_num = 1000000 compiled and failed only at the first run (a failed compile is the
     * graph's error, so each case has its graph) */
    loom_program *p = NULL;
    const loom_train_opts bad[] = {{.regst_num = 1000000}, {.regst_num = -1}, {.regst_num = LOOM_MAX_REGST_NUM + 1}};
    const int given[] = {1000000, -1, LOOM_MAX_REGST_NUM + 1};
    for (int k = 0; k < 3; k++) {
        small m = small_new();
        ck_assert_int_eq(loom_compile(m.g, m.loss, &bad[k], &p), LOOM_ERR_INVALID);
        ck_assert_ptr_null(p);
        char want[160];
        snprintf(want, sizeof want,
                 "loom_compile: regst_num %d is outside 0 .. %d (buffers of each input register; 0 means 2)", given[k],
                 LOOM_MAX_REGST_NUM);
        ck_assert_str_eq(loom_graph_error(m.g), want);
        loom_graph_free(m.g);
    }
    /* the bound itself runs */
    small m = small_new();
    ck_assert_int_eq(loom_compile(m.g, m.loss, &(loom_train_opts){.regst_num = LOOM_MAX_REGST_NUM}, &p), LOOM_OK);
    float d[4] = {1, 2, 3, 4};
    ck_assert_int_eq(loom_program_feed(p, m.x, &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {2, 2}, .data = d}),
                     LOOM_OK);
    ck_assert_int_eq(loom_program_run_steps(p, LOOM_RUN_STEP, 3), LOOM_OK);
    ck_assert_int_eq(loom_program_steps(p), 3);
    loom_program_free(p);
    loom_graph_free(m.g);
}
END_TEST

/* The status of one forward run of the small graph under executor and memory limit; msg gets the
 * program's message. */
static loom_status run_with_limit(loom_executor e, int64_t limit, char *msg, size_t len)
{
    small m = small_new();
    loom_program *p;
    loom_status s = loom_compile(m.g, m.loss, &(loom_train_opts){.executor = e, .memory_limit = limit}, &p);
    if (s != LOOM_OK) { /* the actors' plan is made at compile time */
        snprintf(msg, len, "%s", loom_graph_error(m.g));
        loom_graph_free(m.g);
        return s;
    }
    float d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert_int_eq(loom_program_feed(p, m.x, &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {4, 2}, .data = d}),
                     LOOM_OK);
    s = loom_program_run(p, LOOM_RUN_FORWARD);
    snprintf(msg, len, "%s", s == LOOM_OK ? "" : loom_program_error(p));
    if (s == LOOM_OK) {
        loom_array out;
        ck_assert_int_eq(loom_program_fetch(p, m.loss, &out), LOOM_OK);
        ck_assert_float_eq(((float *)out.data)[0], 18); /* (1+3+5+7 + 2+4+6+8) / 2 */
    }
    loom_program_free(p);
    loom_graph_free(m.g);
    return s;
}

START_TEST(test_reference_memory_limit)
{
    /* the reference executor ignored memory_limit */
    char msg[512];
    ck_assert_int_eq(run_with_limit(LOOM_EXEC_REFERENCE, 16, msg, sizeof msg), LOOM_ERR_NOMEM);
    ck_assert_msg(starts_with(msg, "loom_program_run: the reference executor's step needs "), "%s", msg);
    ck_assert_msg(strstr(msg, "bytes of parameters and optimizer state), over the limit of 16 bytes"), "%s", msg);
    ck_assert_int_eq(run_with_limit(LOOM_EXEC_REFERENCE, 1 << 20, msg, sizeof msg), LOOM_OK);
    ck_assert_int_eq(run_with_limit(LOOM_EXEC_REFERENCE, 0, msg, sizeof msg), LOOM_OK); /* 0: no limit */
}
END_TEST

START_TEST(test_small_limit_in_bytes)
{
    /* "needs 0.0 MiB ... over the limit of 0.0 MiB": small sizes are bytes (the actors' plan is
     * checked by loom_compile) */
    char msg[512];
    ck_assert_int_eq(run_with_limit(LOOM_EXEC_ACTORS, 100, msg, sizeof msg), LOOM_ERR_NOMEM);
    ck_assert_msg(starts_with(msg, "loom_compile: the plan of a step needs "), "%s", msg);
    ck_assert_msg(strstr(msg, " bytes (") && strstr(msg, "over the limit of 100 bytes"), "%s", msg);
    ck_assert_msg(!strstr(msg, "0.0 MiB"), "%s", msg);
    ck_assert_int_eq(run_with_limit(LOOM_EXEC_ACTORS, 1 << 20, msg, sizeof msg), LOOM_OK);
}
END_TEST

START_TEST(test_bytes_str)
{
    char b[32];
    ck_assert_str_eq(loom__bytes_str(0, b, sizeof b), "0 bytes");
    ck_assert_str_eq(loom__bytes_str(1, b, sizeof b), "1 byte");
    ck_assert_str_eq(loom__bytes_str(1023, b, sizeof b), "1023 bytes");
    ck_assert_str_eq(loom__bytes_str(1024, b, sizeof b), "1.0 KiB");
    ck_assert_str_eq(loom__bytes_str(1536.0 * 1024, b, sizeof b), "1.5 MiB");
    ck_assert_str_eq(loom__bytes_str(3.0 * (1 << 30), b, sizeof b), "3.0 GiB");
}
END_TEST

/* Feeds rows rows of x from the source at every step. */
static loom_status feed_rows(void *ctx, int64_t step, loom_feeder *f, int *end, char *msg, size_t len)
{
    (void)step, (void)end, (void)msg, (void)len;
    small *m = ctx;
    static float d[10];
    return loom_feeder_dense(f, m->x, &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {5, 2}, .data = d});
}

START_TEST(test_source_over_bound)
{
    /* "source (piece 0): shape mismatch": now the input, its shape, the dim, the size and the bound */
    small m = small_new();
    loom_program *p;
    ck_assert_int_eq(loom_compile(m.g, m.loss, NULL, &p), LOOM_OK);
    loom_program_set_source(p, feed_rows, &m);
    ck_assert_int_eq(loom_program_run_steps(p, LOOM_RUN_STEP, 4), LOOM_ERR_SHAPE);
    ck_assert_str_eq(loom_program_error(p), "loom_program_run: the data source (piece 0): loom_feeder_dense: input 'x' is [N, 2], data "
                                            "has size 5 in dim 0 (over N's bound of 4)");
    ck_assert_int_eq(loom_program_steps(p), 0);
    loom_program_free(p);
    loom_graph_free(m.g);
}
END_TEST

START_TEST(test_gcn_adjacency)
{
    /* a 3x4 adjacency failed inside loom_mul, naming neither the GCN nor the adjacency */
    const struct {
        int csr, layer;
        int64_t rows, cols, xrows;
        loom_status s;
        const char *msg;
    } cases[] = {
        {1, 0, 3, 4, 3, LOOM_ERR_SHAPE,
         "loom_nn_gcn 'gcn1': the adjacency 'adj' is a CSR f32 [3, 4]; expected a square CSR matrix [N, N] (loom_input_csr)"},
        {0, 0, 3, 3, 3, LOOM_ERR_INVALID,
         "loom_nn_gcn 'gcn1': the adjacency 'adj' is a dense f32 [3, 3]; expected a square CSR matrix [N, N] (loom_input_csr)"},
        {1, 1, 3, 3, 4, LOOM_ERR_SHAPE,
         "loom_nn_gcn_layer 'layer': x 'x' is [4, 5]; expected [N, features] with N the adjacency's size (it is [3, 3])"},
        {1, 0, 3, 3, 3, LOOM_OK, NULL}, /* the square one builds */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *adj = cases[k].csr ? loom_input_csr(g, "adj", LOOM_F32, cases[k].rows, cases[k].cols)
                                        : loom_input(g, "adj", LOOM_F32, loom_shape(cases[k].rows, cases[k].cols));
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(cases[k].xrows, 5));
        loom_tensor *y = cases[k].layer ? loom_nn_gcn_layer(g, "layer", adj, x, 8, LOOM_ACT_RELU) : loom_nn_gcn(g, adj, x, 8, 2, 0.5);
        ck_assert_int_eq(loom_tensor_is_poisoned(y), cases[k].s != LOOM_OK);
        ck_assert_int_eq(loom_graph_status(g), cases[k].s);
        if (cases[k].msg)
            ck_assert_str_eq(loom_graph_error(g), cases[k].msg);
        loom_graph_free(g);
    }
}
END_TEST

START_TEST(test_runtime_failure_names_the_op)
{
    /* a kernel failing at run time is named as the user wrote it, with its device ("scatter
     * scatter (piece 0)" before: the op and an unquoted tensor name) */
    for (int two = 0; two < 2; two++) {
        loom_graph *g = loom_graph_new();
        if (two) {
            loom_placement *pl = loom_placement_parse("cpu:0-1", NULL);
            loom_graph_set_placement(g, pl);
            loom_placement_free(pl);
        }
        loom_tensor *table = loom_param(g, "table", LOOM_F32, loom_shape(4, 2), loom_init_constant(1));
        loom_tensor *idx = loom_input(g, "idx", LOOM_I32, loom_shape(2));
        loom_tensor *rows = loom_gather_rows(g, table, idx);
        loom_tensor_set_name(rows, "picked");
        loom_tensor *loss = loom_sum(g, rows, LOOM_ALL_AXES, 0);
        loom_program *p;
        ck_assert_msg(loom_compile(g, loss, NULL, &p) == LOOM_OK, "%s", loom_graph_error(g));
        int32_t bad[2] = {1, 7};
        ck_assert_int_eq(loom_program_feed(p, idx, &(loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {2}, .data = bad}),
                         LOOM_OK);
        ck_assert_int_eq(loom_program_run(p, LOOM_RUN_FORWARD), LOOM_ERR_INVALID);
        const char *m = loom_program_error(p);
        ck_assert_msg(starts_with(m, two ? "loom_program_run: gather_rows 'picked' on cpu:" : "loom_program_run: gather_rows 'picked' (piece 0): "),
                      "%s", m);
        ck_assert_msg(strstr(m, "7"), "%s", m);
        loom_program_free(p);
        loom_graph_free(g);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("messages");
    TCase *tc = tcase_create("messages");
    tcase_add_test(tc, test_compile_null_arguments);
    tcase_add_test(tc, test_regst_num_at_compile);
    tcase_add_test(tc, test_reference_memory_limit);
    tcase_add_test(tc, test_small_limit_in_bytes);
    tcase_add_test(tc, test_bytes_str);
    tcase_add_test(tc, test_source_over_bound);
    tcase_add_test(tc, test_gcn_adjacency);
    tcase_add_test(tc, test_runtime_failure_names_the_op);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
