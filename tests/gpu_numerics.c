/* The numerics check on a GPU (cuda:0): a NaN or infinity made in the forward pass, in a gradient
 * or by an update fails the run naming the op, through the device's error record, with the
 * chain's kernels launched one by one and replayed from a captured CUDA graph; the same program
 * runs again once the data is good; off, the NaN reaches the loss, and finite training gives the
 * same bits with the check and without. Skipped (exit 77) without a GPU or without CUDA. */
#include "numerics_nets.h"

static const char *const graphs_env[] = {"0", NULL}; /* kernels one by one; captured graphs */

static void set_graphs(int k)
{
    if (graphs_env[k])
        setenv("LOOM_CUDA_GRAPHS", graphs_env[k], 1);
    else
        unsetenv("LOOM_CUDA_GRAPHS");
}

static void good_data(net *n)
{
    feed(n, n->x, (const float[]){1, -2, 3, 0.5f});
    feed(n, n->d, (const float[]){2, 4, -1, 0.25f});
}

static void fetch4(net *n, float *w)
{
    loom_array a;
    ck_assert_int_eq(loom_program_fetch(n->p, n->w, &a), LOOM_OK);
    memcpy(w, a.data, 4 * sizeof *w);
}

START_TEST(test_forward_on_gpu)
{
    for (int k = 0; k < 2; k++) {
        set_graphs(k);
        net n = ratio_net("cuda:0", LOOM_EXEC_ACTORS, 1);
        /* finite steps first: with graphs on, the second is captured (the check inside) and the
         * third replayed */
        good_data(&n);
        ck_assert_msg(loom_program_run_steps(n.p, LOOM_RUN_STEP, 3) == LOOM_OK, "%s", loom_program_error(n.p));
        float w[4];
        fetch4(&n, w);
        feed_nan(&n);
        expect_failure(&n, nan_needles, 4);
        feed_neg_inf(&n);
        expect_failure(&n, inf_needles, 2);
        /* the device skipped the failing steps' updates: the parameter took no NaN */
        float after[4];
        fetch4(&n, after);
        ck_assert(!memcmp(w, after, sizeof w) && isfinite(after[1]));
        ck_assert_int_eq(loom_program_steps(n.p), 3);
        good_data(&n);
        ck_assert_msg(loom_program_run(n.p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(n.p));
        net_free(&n);
    }
    unsetenv("LOOM_CUDA_GRAPHS");
}
END_TEST

START_TEST(test_gradient_and_update_on_gpu)
{
    for (int k = 0; k < 2; k++) {
        set_graphs(k);
        net n = gradient_overflow_net("cuda:0", LOOM_EXEC_ACTORS, 1);
        expect_failure(&n, grad_needles, 3);
        ck_assert_msg(!strstr(loom_program_error(n.p), "forward pass"), "%s", loom_program_error(n.p));
        net_free(&n);
        n = update_overflow_net("cuda:0", LOOM_EXEC_ACTORS, 1);
        expect_failure(&n, update_needles, 3);
        net_free(&n);
    }
    unsetenv("LOOM_CUDA_GRAPHS");
}
END_TEST

START_TEST(test_off_on_gpu)
{
    nan_reaches_loss("cuda:0", LOOM_EXEC_ACTORS);

    setenv("LOOM_DETERMINISTIC", "1", 1);
    double losses[2][5];
    float w[2][4];
    for (int check = 0; check < 2; check++)
        finite_training("cuda:0", LOOM_EXEC_ACTORS, check, losses[check], w[check]);
    unsetenv("LOOM_DETERMINISTIC");
    ck_assert(!memcmp(losses[0], losses[1], sizeof losses[0]));
    ck_assert(!memcmp(w[0], w[1], sizeof w[0]));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gpu_numerics");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_forward_on_gpu);
    tcase_add_test(tc, test_gradient_and_update_on_gpu);
    tcase_add_test(tc, test_off_on_gpu);
    suite_add_tcase(s, tc);
    return lt_run_gpu_suite(s);
}
