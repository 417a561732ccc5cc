/* The numerics check (loom_train_opts.check_numerics, $LOOM_CHECK_NUMERICS): a NaN or infinity
 * made in the forward pass, in a gradient or by an update stops the run naming the first op that
 * made it, on both executors, on one and on two CPU devices; off (the default), nothing changes. */
#include "numerics_nets.h"

static const char *const placements[] = {NULL, "cpu:0-1"};

START_TEST(test_forward_nan_and_inf)
{
    for (int pl = 0; pl < 2; pl++)
        for (int ex = 0; ex < LOOM_EXEC_COUNT; ex++) {
            /* 0 / 0: nan at element 1 (on two devices, of device 0's part) */
            net n = ratio_net(placements[pl], ex, 1);
            feed_nan(&n);
            expect_failure(&n, nan_needles, 4);
            /* the run stopped before any update: nothing was applied or counted */
            ck_assert_int_eq(loom_program_steps(n.p), 0);
            ck_assert_float_eq(fetch_first(&n, n.w), 1.0f);
            net_free(&n);

            n = ratio_net(placements[pl], ex, 1);
            feed_neg_inf(&n);
            expect_failure(&n, inf_needles, 2);
            net_free(&n);
        }
}
END_TEST

START_TEST(test_gradient_overflow)
{
    for (int pl = 0; pl < 2; pl++)
        for (int ex = 0; ex < LOOM_EXEC_COUNT; ex++) {
            net n = gradient_overflow_net(placements[pl], ex, 1);
            expect_failure(&n, grad_needles, 3);
            ck_assert_msg(!strstr(loom_program_error(n.p), "forward pass"), "%s", loom_program_error(n.p));
            net_free(&n);
        }
}
END_TEST

START_TEST(test_update_overflow)
{
    for (int pl = 0; pl < 2; pl++)
        for (int ex = 0; ex < LOOM_EXEC_COUNT; ex++) {
            net n = update_overflow_net(placements[pl], ex, 1);
            expect_failure(&n, update_needles, 3);
            net_free(&n);
        }
}
END_TEST

START_TEST(test_off_by_default)
{
    for (int ex = 0; ex < LOOM_EXEC_COUNT; ex++)
        nan_reaches_loss(NULL, ex);

    /* finite training: the same losses and parameters, bit for bit, with the check and without */
    for (int pl = 0; pl < 2; pl++)
        for (int ex = 0; ex < LOOM_EXEC_COUNT; ex++) {
            double losses[2][5];
            float w[2][4];
            for (int check = 0; check < 2; check++)
                finite_training(placements[pl], ex, check, losses[check], w[check]);
            ck_assert(!memcmp(losses[0], losses[1], sizeof losses[0]));
            ck_assert(!memcmp(w[0], w[1], sizeof w[0]));
        }
}
END_TEST

START_TEST(test_environment_variable)
{
    const char *values[] = {"1", "0", ""};
    for (int k = 0; k < 3; k++) {
        ck_assert_int_eq(setenv("LOOM_CHECK_NUMERICS", values[k], 1), 0);
        net n = ratio_net(NULL, LOOM_EXEC_ACTORS, 0); /* read at compile */
        ck_assert_int_eq(unsetenv("LOOM_CHECK_NUMERICS"), 0);
        feed_nan(&n);
        loom_status s = loom_program_run(n.p, LOOM_RUN_STEP);
        ck_assert_msg(s == (k == 0 ? LOOM_ERR_RUNTIME : LOOM_OK), "LOOM_CHECK_NUMERICS='%s': status %d", values[k], s);
        net_free(&n);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("numerics");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_forward_nan_and_inf);
    tcase_add_test(tc, test_gradient_overflow);
    tcase_add_test(tc, test_update_overflow);
    tcase_add_test(tc, test_off_by_default);
    tcase_add_test(tc, test_environment_variable);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
