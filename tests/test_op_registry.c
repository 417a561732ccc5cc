/* Every op of the registry through one table (op_cases.c): for each row, the builder's shape
 * against the evaluated value's and a bad call refused with LOOM_ERR_SHAPE naming the builder;
 * gradients against central differences (f64); and the row's forward values and parameter
 * gradients on cpu:0-3, under inference's own layout and with every leaf hinted S(0) or S(1),
 * against one device (1e-9; the actor runtime must then give the reference executor's bits). An
 * op of graphs/core/ops.def with neither a row nor an exemption fails; so does an exempt op that no row's
 * training program contains. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/session/program.h"
#include "op_cases.h"

static const lt_row_env f64_env = {.dt = LOOM_F64, .split = -1};

static lt_case *row_case(const lt_op_row *r, const char *placement, const lt_row_env *e, loom_tensor **out)
{
    lt_case *c = lt_case_new();
    if (placement) {
        loom_error err = {0};
        loom_placement *p = loom_placement_parse(placement, &err);
        ck_assert_msg(p != NULL, "%s", err.msg);
        loom_graph_set_placement(lt_graph(c), p);
        loom_placement_free(p);
    }
    *out = r->build(c, e);
    ck_assert_msg(loom_graph_status(lt_graph(c)) == LOOM_OK, "%s: %s", r->name, loom_graph_error(lt_graph(c)));
    return c;
}

/* ---- shapes -------------------------------------------------------------------------------------- */

START_TEST(test_row_shapes)
{
    const lt_op_row *r = &lt_op_rows[_i];
    loom_tensor *out;
    lt_case *c = row_case(r, NULL, &f64_env, &out);
    ck_assert_msg(out->op == r->op, "%s: the row builds a %s, not a %s", r->name, loom__op_def(out->op)->name,
                  loom__op_def(r->op)->name);
    loom_shape s = loom_tensor_shape(out);
    ck_assert_msg(s.ndim == r->ndim, "%s: inferred rank %d, expected %d", r->name, s.ndim, r->ndim);
    loom_array a = lt_eval(c, out);
    ck_assert_msg(a.ndim == r->ndim, "%s: evaluated rank %d, expected %d", r->name, a.ndim, r->ndim);
    for (int i = 0; i < r->ndim; i++) {
        ck_assert_msg(s.d[i] == r->shape[i], "%s: inferred dim %d is %lld, expected %lld", r->name, i, (long long)s.d[i],
                      (long long)r->shape[i]);
        ck_assert_msg(a.shape[i] == r->shape[i], "%s: evaluated dim %d is %lld, expected %lld", r->name, i,
                      (long long)a.shape[i], (long long)r->shape[i]);
    }
    lt_case_free(c);
    if (r->bad) {
        c = lt_case_new();
        r->bad(c, &f64_env);
        ck_assert_msg(loom_graph_status(lt_graph(c)) == LOOM_ERR_SHAPE, "%s: the bad call gave %s (%s)", r->name,
                      loom_status_str(loom_graph_status(lt_graph(c))), loom_graph_error(lt_graph(c)));
        lt_expect_error(lt_graph(c), r->api);
        lt_case_free(c);
    }
}
END_TEST

/* ---- gradients ------------------------------------------------------------------------------------ */

START_TEST(test_row_gradients)
{
    const lt_op_row *r = &lt_op_rows[_i];
    if (!(r->flags & LT_ROW_DIFF))
        return;
    loom_tensor *out;
    lt_case *c = row_case(r, NULL, &f64_env, &out);
    lt_gradcheck(c, out, 1e-6);
    lt_case_free(c);
}
END_TEST

/* ---- placements ----------------------------------------------------------------------------------- */

typedef struct row_values {
    int64_t n;
    double v[1024];
} row_values;

static void append(row_values *rv, const loom_array *a)
{
    double *d = lt_to_double(a);
    int64_t n = loom_array_numel(a);
    ck_assert_int_le(rv->n + n, (int64_t)(sizeof rv->v / sizeof rv->v[0]));
    memcpy(rv->v + rv->n, d, (size_t)n * sizeof *d);
    rv->n += n;
    free(d);
}

/* The row's output and every parameter's gradient of sum(out * out), one GRAD run (a FORWARD
 * run for rows without gradients). */
static void row_values_on(const lt_op_row *r, const char *placement, int split, loom_executor ex, row_values *rv)
{
    loom_tensor *out, *keep[LOOM__MAX_SRC + 1];
    lt_row_env e = {.dt = LOOM_F64, .split = split};
    lt_case *c = row_case(r, placement, &e, &out);
    loom_graph *g = lt_graph(c);
    int diff = (r->flags & LT_ROW_DIFF) != 0, nkeep = 0;
    loom_tensor *loss = diff ? loom_sum(g, loom_mul(g, out, out), LOOM_ALL_AXES, 0) : NULL;
    loom_program *p = lt_compile(c, loss, &(loom_train_opts){.executor = ex});
    keep[nkeep++] = out;
    for (int k = 0; diff && loom_graph_param(g, k); k++) /* running statistics take no gradient */
        if (loom_program_grad(p, loom_graph_param(g, k)))
            keep[nkeep++] = loom_program_grad(p, loom_graph_param(g, k));
    for (int k = 0; k < nkeep; k++)
        ck_assert_msg(loom_program_keep(p, keep[k]) == LOOM_OK, "%s: %s", r->name, loom_program_error(p));
    ck_assert_msg(loom_program_run(p, diff ? LOOM_RUN_GRAD : LOOM_RUN_FORWARD) == LOOM_OK, "%s on %s: %s", r->name,
                  placement, loom_program_error(p));
    rv->n = 0;
    for (int k = 0; k < nkeep; k++) {
        loom_array a;
        ck_assert_msg(loom_program_fetch(p, keep[k], &a) == LOOM_OK, "%s: %s", r->name, loom_program_error(p));
        append(rv, &a);
    }
    lt_case_free(c);
}

START_TEST(test_row_placements)
{
    static const char *const hints[] = {"inferred", "S(0) hints", "S(1) hints"};
    const lt_op_row *r = &lt_op_rows[_i];
    row_values one, ref, actors;
    row_values_on(r, "cpu:0", -1, LOOM_EXEC_REFERENCE, &one);
    for (int split = -1; split <= 1; split++) {
        char what[128];
        snprintf(what, sizeof what, "%s on cpu:0-3, %s", r->name, hints[split + 1]);
        row_values_on(r, "cpu:0-3", split, LOOM_EXEC_REFERENCE, &ref);
        ck_assert_int_eq(ref.n, one.n);
        lt_assert_close(ref.v, one.v, one.n, 1e-9, what);
        row_values_on(r, "cpu:0-3", split, LOOM_EXEC_ACTORS, &actors);
        ck_assert_msg(actors.n == ref.n && !memcmp(actors.v, ref.v, (size_t)ref.n * sizeof *ref.v),
                      "%s: the actor runtime differs from the SBP reference executor", what);
    }
}
END_TEST

/* ---- coverage ------------------------------------------------------------------------------------- */

START_TEST(test_every_op_has_a_row)
{
    loom_op missing[LOOM_OP_COUNT];
    int n = lt_op_missing(lt_op_rows, lt_op_nrows, lt_op_exempt, lt_op_nexempt, missing);
    for (int i = 0; i < n; i++)
        fprintf(stderr, "op '%s' has no row in tests/op_cases.c and no exemption\n", loom__op_def(missing[i])->name);
    ck_assert_msg(n == 0, "%d op(s) of the registry have no row, the first '%s'", n, n ? loom__op_def(missing[0])->name : "");
}
END_TEST

/* The check above on a table that lacks a row: the op is reported. */
START_TEST(test_a_missing_row_is_reported)
{
    lt_op_row rows[128];
    int n = 0;
    for (int i = 0; i < lt_op_nrows; i++)
        if (lt_op_rows[i].op != LOOM_OP_MATMUL)
            rows[n++] = lt_op_rows[i];
    loom_op missing[LOOM_OP_COUNT];
    ck_assert_int_eq(lt_op_missing(rows, n, lt_op_exempt, lt_op_nexempt, missing), 1);
    ck_assert_int_eq(missing[0], LOOM_OP_MATMUL);
    ck_assert_int_eq(lt_op_missing(lt_op_rows, lt_op_nrows, lt_op_exempt, lt_op_nexempt - 1, missing), 1);
    ck_assert_int_eq(missing[0], lt_op_exempt[lt_op_nexempt - 1].op);
}
END_TEST

/* Every exempt op marked reached is in some row's training program: with SGD and momentum for
 * even rows, Adam for odd ones. */
START_TEST(test_exempt_ops_are_reached)
{
    int seen[LOOM_OP_COUNT] = {0};
    for (int i = 0; i < lt_op_nrows; i++) {
        const lt_op_row *r = &lt_op_rows[i];
        loom_tensor *out;
        lt_case *c = row_case(r, NULL, &f64_env, &out);
        loom_graph *g = lt_graph(c);
        loom_optimizer opt = i % 2 ? loom_adam(0.01) : loom_sgd(0.1);
        opt.momentum = i % 2 ? 0 : 0.9;
        loom_tensor *loss = r->flags & LT_ROW_DIFF ? loom_sum(g, loom_mul(g, out, out), LOOM_ALL_AXES, 0) : NULL;
        loom_program *p = lt_compile_reference(c, loss, loss ? &opt : NULL);
        for (int id = 0; id < p->n; id++)
            seen[p->g->t[id]->op] = 1;
        lt_case_free(c);
    }
    for (int k = 0; k < lt_op_nexempt; k++)
        ck_assert_msg(!lt_op_exempt[k].reached || seen[lt_op_exempt[k].op], "exempt op '%s' (%s) is in no row's training program",
                      loom__op_def(lt_op_exempt[k].op)->name, lt_op_exempt[k].why);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("op_registry");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_every_op_has_a_row);
    tcase_add_test(tc, test_a_missing_row_is_reported);
    tcase_add_test(tc, test_exempt_ops_are_reached);
    tcase_add_loop_test(tc, test_row_shapes, 0, lt_op_nrows);
    tcase_add_loop_test(tc, test_row_gradients, 0, lt_op_nrows);
    tcase_add_loop_test(tc, test_row_placements, 0, lt_op_nrows);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
