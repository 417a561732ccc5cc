/* Size arithmetic: shapes whose element or byte counts do not fit an int64 are refused by the
 * builder with the tensor and its shape named; plans whose memory sums past an int64 are refused
 * before anything is allocated; feeds read a fed array's dims only up to its checked rank, and
 * say what is wrong with NULL data and negative sizes. */
#include "harness.h"

#include <stdio.h>
#include <string.h>

#include "graphs/core/op.h"

#define P2(k) (INT64_C(1) << (k))

static void expect_status(loom_graph *g, loom_status s, const char *msg)
{
    ck_assert_int_eq(loom_graph_status(g), s);
    ck_assert_str_eq(loom_graph_error(g), msg);
    loom_program *p = NULL;
    ck_assert_int_eq(loom_compile(g, NULL, NULL, &p), s);
    ck_assert_ptr_null(p);
}

START_TEST(test_checked_helpers)
{
    int64_t r = 7;
    ck_assert_int_eq(loom__mul_size(P2(31), P2(31), &r), 0);
    ck_assert_int_eq(r, P2(62));
    ck_assert_int_eq(loom__mul_size(P2(32), P2(31), &r), -1);
    ck_assert_int_eq(r, P2(62)); /* left as it was */
    ck_assert_int_eq(loom__mul_size(-1, 2, &r), -1);
    ck_assert_int_eq(loom__add_size(INT64_MAX, 1, &r), -1);
    ck_assert_int_eq(loom__add_size(INT64_MAX - 1, 1, &r), 0);
    ck_assert_int_eq(r, INT64_MAX);

    int64_t n, b, big[2] = {P2(40), P2(40)}, edge[1] = {P2(61) - 1}, over[1] = {P2(61)};
    ck_assert_int_eq(loom__dense_size(LOOM_F32, 2, big, &n, &b), -1);
    ck_assert_int_eq(loom__dense_size(LOOM_F32, 1, edge, &n, &b), 0);
    ck_assert_int_eq(b, INT64_MAX - 3);
    ck_assert_int_eq(loom__dense_size(LOOM_F32, 1, over, &n, &b), -1); /* 2^63 bytes */
    ck_assert_int_eq(loom__dense_size(LOOM_U8, 1, over, &n, &b), 0);
    ck_assert_int_eq(loom__dense_size(LOOM_F32, 7, over, &n, &b), -1);

    /* a value's count: [2^40, 2^40] used to wrap to 0 */
    loom__value v = {.dtype = LOOM_F32, .ndim = 2, .shape = {P2(40), P2(40)}};
    ck_assert_int_eq(loom__numel(&v), -1);
    v.shape[1] = 3;
    ck_assert_int_eq(loom__numel(&v), 3 * P2(40));
}
END_TEST

START_TEST(test_builder_refuses_huge_shapes)
{
    /* [2^31, 2^31] f32: 2^64 bytes, which wrapped to 0 and let 2^62 floats be written into 64 */
    loom_graph *g = loom_graph_new();
    loom_param(g, "w", LOOM_F32, loom_shape(P2(31), P2(31)), loom_init_glorot(1));
    expect_status(g, LOOM_ERR_SHAPE,
                  "loom_param 'w': shape [2147483648, 2147483648] of f32 is 2^64 bytes, over what an int64 byte count holds");
    loom_graph_free(g);

    /* [2^40, 2^40]: the element count itself is over an int64 (it compiled, with status 0) */
    g = loom_graph_new();
    loom_input(g, "x", LOOM_F32, loom_shape(P2(40), P2(40)));
    expect_status(g, LOOM_ERR_SHAPE,
                  "loom_input 'x': shape [1099511627776, 1099511627776] of f32 is 2^82 bytes, over what an int64 byte count holds");
    loom_graph_free(g);

    /* the edge: 2^63 - 4 bytes is a byte count, 2^63 is not */
    g = loom_graph_new();
    loom_input(g, "ok", LOOM_F32, loom_shape(P2(61) - 1));
    loom_input(g, "ok8", LOOM_U8, loom_shape(INT64_MAX, 1));
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);
    loom_input(g, "x", LOOM_F32, loom_shape(P2(61)));
    expect_status(g, LOOM_ERR_SHAPE, "loom_input 'x': shape [2305843009213693952] of f32 is 2^63 bytes, over what an int64 byte count holds");
    loom_graph_free(g);

    /* a dynamic dim at its bound: 2^62 + 4 rows of 4 floats wrapped to a 960-byte plan block */
    g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", P2(62) + 4);
    loom_input(g, "x", LOOM_F32, loom_shape(N, 4));
    expect_status(g, LOOM_ERR_SHAPE,
                  "loom_input 'x': shape [N, 4] of f32 is 2^66 bytes at the bounds of its dynamic dims, over what an int64 byte "
                  "count holds");
    loom_graph_free(g);

    /* a CSR matrix's row pointer is sized by its rows */
    g = loom_graph_new();
    N = loom_dim_dynamic(g, "N", INT64_MAX);
    loom_input_csr(g, "adj", LOOM_F32, N, 3);
    expect_status(g, LOOM_ERR_SHAPE,
                  "loom_input_csr 'adj': shape [N, 3] of f32 has a row pointer of 2^65 bytes at the bounds of its dynamic dims, "
                  "over what an int64 byte count holds");
    loom_graph_free(g);
}
END_TEST

START_TEST(test_builder_refuses_huge_results)
{
    /* each operand fits; the product of their dims does not */
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", P2(32)), M = loom_dim_dynamic(g, "M", P2(32));
    loom_tensor *a = loom_input(g, "a", LOOM_F32, loom_shape(N, 1)), *b = loom_input(g, "b", LOOM_F32, loom_shape(1, M));
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);
    loom_tensor *c = loom_matmul(g, a, b);
    ck_assert(loom_tensor_is_poisoned(c));
    expect_status(g, LOOM_ERR_SHAPE,
                  "loom_matmul: result [N, M] of f32 is 2^66 bytes at the bounds of its dynamic dims, over what an int64 byte "
                  "count holds");
    loom_graph_free(g);

    g = loom_graph_new();
    a = loom_input(g, "a", LOOM_F32, loom_shape(P2(31), 1));
    b = loom_input(g, "b", LOOM_F32, loom_shape(1, P2(31)));
    loom_add(g, a, b);
    expect_status(g, LOOM_ERR_SHAPE,
                  "loom_add: result [2147483648, 2147483648] of f32 is 2^64 bytes, over what an int64 byte count holds");
    loom_graph_free(g);

    /* the concat axis's sizes sum past an int64 (signed overflow before) */
    g = loom_graph_new();
    a = loom_input(g, "a", LOOM_U8, loom_shape(INT64_MAX));
    b = loom_input(g, "b", LOOM_U8, loom_shape(1));
    loom_concat(g, (loom_tensor *[]){a, b}, 2, 0);
    expect_status(g, LOOM_ERR_SHAPE, "loom_concat: the sizes of axis 0 sum to more than an int64 holds (operand 2 is [1])");
    loom_graph_free(g);
}
END_TEST

/* x [N] of dtype with N's bound as given, through two ops whose results are both live, fed 4
 * elements; returns the status of a forward run with the actors. */
static loom_status run_at_bound(loom_dtype dtype, int64_t bound, int64_t limit, char *msg, size_t len)
{
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", bound);
    loom_tensor *x = loom_input(g, "x", dtype, loom_shape(N));
    loom_tensor *y = dtype == LOOM_U8 ? loom_reshape(g, x, loom_shape(N)) : loom_relu(g, x);
    loom_tensor *z = dtype == LOOM_U8 ? loom_reshape(g, y, loom_shape(N)) : loom_add(g, y, loom_relu(g, y));
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);
    loom_program *p;
    loom_status s = loom_compile(g, NULL, &(loom_train_opts){.memory_limit = limit}, &p);
    if (s != LOOM_OK) { /* the plan of the forward step is made at compile time */
        snprintf(msg, len, "%s", loom_graph_error(g));
        loom_graph_free(g);
        return s;
    }
    ck_assert_int_eq(loom_program_keep(p, z), LOOM_OK);
    double d[4] = {1, 2, 3, 4};
    loom_array a = {.dtype = dtype, .ndim = 1, .shape = {4}, .data = d};
    ck_assert_int_eq(loom_program_feed(p, x, &a), LOOM_OK);
    s = loom_program_run(p, LOOM_RUN_FORWARD);
    snprintf(msg, len, "%s", s == LOOM_OK ? "" : loom_program_error(p));
    loom_memory m;
    ck_assert_int_eq(loom_program_memory(p, LOOM_RUN_FORWARD, LOOM_ALL_DEVICES, &m), s);
    loom_program_free(p);
    loom_graph_free(g);
    return s;
}

START_TEST(test_plan_over_int64)
{
    char msg[1024];
    /* three f32 registers of 2^62 bytes live at once: their sum wrapped, the plan "fit" */
    ck_assert_int_eq(run_at_bound(LOOM_F32, P2(60), 0, msg, sizeof msg), LOOM_ERR_SHAPE);
    ck_assert_str_eq(msg, "loom plan: the memory of a step is over what an int64 byte count holds; its largest register holds "
                          "'x' [N] of f32 (at the bounds of its dims)");
    /* one u8 register of INT64_MAX bytes: 2^63 once aligned */
    ck_assert_int_eq(run_at_bound(LOOM_U8, INT64_MAX, 0, msg, sizeof msg), LOOM_ERR_SHAPE);
    ck_assert_msg(strstr(msg, "over what an int64 byte count holds"), "%s", msg);
    /* within an int64 but over the host's memory: the limit holds, compared without a wrap */
    ck_assert_int_eq(run_at_bound(LOOM_F32, P2(58), 0, msg, sizeof msg), LOOM_ERR_NOMEM);
    ck_assert_msg(strstr(msg, "the plan of a step needs"), "%s", msg);
    ck_assert_int_eq(run_at_bound(LOOM_F32, P2(20), 1 << 20, msg, sizeof msg), LOOM_ERR_NOMEM);
    ck_assert_msg(strstr(msg, "over the limit of 1.0 MiB"), "%s", msg);
    ck_assert_int_eq(run_at_bound(LOOM_F32, 64, 1 << 20, msg, sizeof msg), LOOM_OK);
}
END_TEST

START_TEST(test_array_numel)
{
    loom_array a = {.dtype = LOOM_F32, .ndim = 2, .shape = {2, 3}};
    ck_assert_int_eq(loom_array_numel(&a), 6);
    a.shape[0] = INT64_MAX;
    a.shape[1] = 4;
    ck_assert_int_eq(loom_array_numel(&a), -1);
    a.shape[0] = -2;
    ck_assert_int_eq(loom_array_numel(&a), -1);
    a.ndim = 1000; /* never read past shape[LOOM_MAX_DIMS] */
    ck_assert_int_eq(loom_array_numel(&a), -1);
    a.ndim = -1;
    ck_assert_int_eq(loom_array_numel(&a), -1);
    ck_assert_int_eq(loom_array_numel(NULL), -1);

    loom_array b;
    ck_assert_int_eq(loom_array_alloc(&b, LOOM_F32, 2, (int64_t[]){P2(31), P2(31)}), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_array_alloc(&b, LOOM_F32, 2, (int64_t[]){0, P2(40)}), LOOM_OK);
    ck_assert_int_eq(loom_array_numel(&b), 0);
    loom_array_free(&b);
}
END_TEST

START_TEST(test_feed_sizes)
{
    loom_graph *g = loom_graph_new();
    loom_dim N = loom_dim_dynamic(g, "N", 4);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 2));
    loom_tensor *y = loom_sum(g, x, LOOM_ALL_AXES, 0);
    loom_program *p;
    ck_assert_int_eq(loom_compile(g, NULL, &(loom_train_opts){.executor = LOOM_EXEC_REFERENCE}, &p), LOOM_OK);

    float d[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    loom_array a = {.dtype = LOOM_F32, .ndim = 1000, .shape = {2, 2}, .data = d};
    ck_assert_int_eq(loom_program_feed(p, x, &a), LOOM_ERR_SHAPE);
    ck_assert_str_eq(loom_program_error(p), "loom_program_feed: input 'x' is [N, 2], data has 1000 dims");

    a.ndim = 2;
    a.shape[0] = INT64_MAX;
    a.shape[1] = 4; /* its element count overflowed before the dims were checked */
    ck_assert_int_eq(loom_program_feed(p, x, &a), LOOM_ERR_SHAPE);
    ck_assert_str_eq(loom_program_error(p),
                     "loom_program_feed: input 'x' is [N, 2], data has size 9223372036854775807 in dim 0 (over N's bound of 4)");

    a.shape[0] = -3;
    a.shape[1] = 2;
    ck_assert_int_eq(loom_program_feed(p, x, &a), LOOM_ERR_SHAPE);
    ck_assert_str_eq(loom_program_error(p), "loom_program_feed: input 'x' is [N, 2], data has size -3 in dim 0 (a size must be >= 0)");

    a.shape[0] = 2;
    a.data = NULL;
    ck_assert_int_eq(loom_program_feed(p, x, &a), LOOM_ERR_INVALID);
    ck_assert_str_eq(loom_program_error(p), "loom_program_feed: input 'x': data is NULL for 4 elements");
    ck_assert_int_eq(loom_program_feed(p, x, NULL), LOOM_ERR_INVALID);
    ck_assert_str_eq(loom_program_error(p), "loom_program_feed: input 'x': the array is NULL");

    /* no elements: NULL data is fine, and nothing is copied from it */
    a.shape[0] = 0;
    ck_assert_int_eq(loom_program_feed(p, x, &a), LOOM_OK);
    ck_assert_ptr_null(loom_program_error(p)); /* the last call succeeded: no old message */
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_FORWARD), LOOM_OK);
    loom_array out;
    ck_assert_int_eq(loom_program_fetch(p, y, &out), LOOM_OK);
    ck_assert_float_eq(((float *)out.data)[0], 0);

    a.shape[0] = 4;
    a.data = d;
    ck_assert_int_eq(loom_program_fetch(p, x, NULL), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_program_fetch(p, NULL, &out), LOOM_ERR_NOT_FOUND);
    ck_assert_int_eq(loom_program_feed(p, x, &a), LOOM_OK);
    ck_assert_ptr_null(loom_program_error(p));
    ck_assert_int_eq(loom_program_run(p, LOOM_RUN_FORWARD), LOOM_OK);
    ck_assert_int_eq(loom_program_fetch(p, y, &out), LOOM_OK);
    ck_assert_float_eq(((float *)out.data)[0], 36);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* An empty tensor with huge other dims: [0, 16, 2^61] has 0 bytes, but its strides multiply 16 and
 * 2^61 (the sum kernel overflowed computing them, found by the builder fuzzer), and [2^61, 16, 0]
 * was refused while [0, 16, 2^61] was taken: either order is refused now, and small empty tensors
 * stay fine. */
START_TEST(test_empty_with_huge_dims)
{
    const char *want = "loom_param 'w': shape [%s] of f64 has strides of 2^68 bytes (its dims but the zeros), over what an int64 byte count holds";
    const char *dims[] = {"0, 16, 2305843009213693952", "2305843009213693952, 16, 0"};
    for (int k = 0; k < 2; k++) {
        loom_graph *g = loom_graph_new();
        loom_shape s = k ? loom_shape(P2(61), 16, 0) : loom_shape(0, 16, P2(61));
        loom_param(g, "w", LOOM_F64, s, loom_init_uniform(-1, 1, 1));
        char m[256];
        snprintf(m, sizeof m, want, dims[k]);
        expect_status(g, LOOM_ERR_SHAPE, m);
        loom_graph_free(g);
    }
    loom_graph *g = loom_graph_new();
    loom_input(g, "wide", LOOM_F32, loom_shape(0, P2(60))); /* 2^62-byte strides fit */
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);
    loom_graph_free(g);
    g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(0, 4));
    loom_program *p = NULL;
    ck_assert_int_eq(loom_compile(g, loom_sum(g, x, LOOM_ALL_AXES, 0), NULL, &p), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, x, &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {0, 4}}), LOOM_OK);
    ck_assert_msg(loom_program_run(p, LOOM_RUN_FORWARD) == LOOM_OK, "%s", loom_program_error(p));
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sizes");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_checked_helpers);
    tcase_add_test(tc, test_builder_refuses_huge_shapes);
    tcase_add_test(tc, test_builder_refuses_huge_results);
    tcase_add_test(tc, test_plan_over_int64);
    tcase_add_test(tc, test_array_numel);
    tcase_add_test(tc, test_feed_sizes);
    tcase_add_test(tc, test_empty_with_huge_dims);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
