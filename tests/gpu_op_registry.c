/* Every row of the op table (op_cases.c) on a GPU: the row's graph in f32, trained with SGD and
 * momentum (even rows) or Adam (odd rows), one GRAD run on the reference executor, then every op
 * it ran (forward, gradient, optimizer update) on its CUDA kernel against its CPU kernel on the
 * same inputs. A row whose op has no CUDA kernel fails. Skipped (77) in a build without CUDA or on
 * a machine without a GPU. */
#include <stdio.h>

#include "harness_gpu.h"
#include "op_cases.h"

/* The device, opened by the suite's fixture. */
static lt_gpu *gpu;

START_TEST(test_row_on_gpu)
{
    const lt_op_row *r = &lt_op_rows[_i];
    lt_case *c = lt_case_new();
    loom_tensor *out = r->build(c, &(lt_row_env){.dt = LOOM_F32, .split = -1});
    loom_graph *g = lt_graph(c);
    ck_assert_msg(loom_graph_status(g) == LOOM_OK, "%s: %s", r->name, loom_graph_error(g));
    int diff = (r->flags & LT_ROW_DIFF) != 0;
    loom_optimizer opt = _i % 2 ? loom_adam(0.01) : loom_sgd(0.1);
    opt.momentum = _i % 2 ? 0 : 0.9;
    loom_program *p = lt_compile_reference(c, diff ? lt_gpu_sq_loss(g, out) : NULL, diff ? &opt : NULL);
    loom_status s = loom_program_run(p, diff ? LOOM_RUN_GRAD : LOOM_RUN_FORWARD);
    ck_assert_msg(s == LOOM_OK, "%s: %s", r->name, loom_program_error(p));
    lt_gpu_check_program(gpu, p, lt_gpu_tol(LOOM_F32));
    lt_case_free(c);
}
END_TEST

/* The device is opened once for the whole suite, which runs unforked (see harness_gpu.h). */
static Suite *suite(void)
{
    Suite *s = suite_create("gpu_op_registry");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    lt_gpu_add_fixture(tc, &gpu);
    tcase_add_loop_test(tc, test_row_on_gpu, 0, lt_op_nrows);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lt_gpu_run(suite);
}
