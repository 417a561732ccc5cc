/* Programs that box one tensor from one SBP to another (see box_cases.h). */
#define _GNU_SOURCE /* open_memstream */
#include "box_cases.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lt_host_box(void *dst, const int64_t *ds, const int64_t *dat, const void *src, const int64_t *ss, const int64_t *sat,
                 const int64_t *ext, int nd, size_t es)
{
    int64_t n = 1, idx[LOOM_MAX_DIMS] = {0};
    for (int i = 0; i < nd; i++)
        n *= ext[i] > 0 ? ext[i] : 0;
    for (int64_t e = 0; e < n; e++) {
        int64_t so = 0, dof = 0;
        for (int i = 0; i < nd; i++) {
            so = so * ss[i] + sat[i] + idx[i];
            dof = dof * ds[i] + dat[i] + idx[i];
        }
        memcpy((char *)dst + dof * (int64_t)es, (const char *)src + so * (int64_t)es, es);
        for (int i = nd - 1; i >= 0; i--) {
            if (++idx[i] < ext[i])
                break;
            idx[i] = 0;
        }
    }
}

loom_sbp lt_box_sbp(int k) { return k < 2 ? loom_split(k) : k == 2 ? loom_broadcast() : loom_partial_sum(); }

/* The source under `from`: an input hinted so, or under P the product of a column-split input and
 * a row-split one (each device's product of its parts is an addend of the whole). The boxed value
 * is the source scaled by 2, hinted `to`: its signature reads the source under `to`. */
void lt_box_run(const char *place, int from, int to, int64_t rows, float *out, char *plan, size_t plan_len)
{
    lt_case *c = lt_case_new();
    loom_graph *g = lt_graph(c);
    loom_error err = {0};
    loom_placement *p = loom_placement_parse(place, &err);
    ck_assert_msg(p != NULL, "%s: %s", place, err.msg);
    loom_graph_set_placement(g, p);
    float *a = malloc((size_t)rows * 6 * sizeof *a), w[6 * 5];
    ck_assert_ptr_nonnull(a);
    for (int64_t i = 0; i < rows * 6; i++)
        a[i] = (float)((i * 7919) % 23) / 8.0f - 1.0f;
    for (int i = 0; i < 30; i++)
        w[i] = (float)((i * 31) % 11) / 4.0f - 1.25f;
    loom_tensor *src;
    if (lt_box_sbp(from).kind == LOOM_SBP_PARTIAL_SUM) {
        loom_tensor *x = lt_input_static(c, "a", LOOM_F32, loom_shape(rows, 6), a);
        loom_tensor *m = lt_input_static(c, "w", LOOM_F32, loom_shape(6, 5), w);
        loom_tensor_set_sbp(x, loom_split(1));
        loom_tensor_set_sbp(m, loom_split(0));
        src = loom_matmul(g, x, m);
    } else {
        float *x5 = malloc((size_t)rows * 5 * sizeof *x5);
        ck_assert_ptr_nonnull(x5);
        for (int64_t i = 0; i < rows * 5; i++)
            x5[i] = a[i];
        src = lt_input_static(c, "x", LOOM_F32, loom_shape(rows, 5), x5);
        free(x5);
    }
    loom_tensor_set_sbp(src, lt_box_sbp(from));
    loom_tensor *y = loom_scale(g, src, 2.0);
    loom_tensor_set_sbp(y, lt_box_sbp(to));
    float *r = NULL;
    if (lt_box_sbp(to).kind == LOOM_SBP_BROADCAST) {
        /* the fetch of a B value reads device 0's copy: out is then R y, R row-split, each device's
         * rows from its own copy of all of y (small integers times eighths: exact in any order) */
        r = malloc((size_t)rows * (size_t)rows * sizeof *r);
        ck_assert_ptr_nonnull(r);
        for (int64_t i = 0; i < rows * rows; i++)
            r[i] = (float)((i * 13) % 7 - 3);
        loom_tensor *rm = lt_input_static(c, "r", LOOM_F32, loom_shape(rows, rows), r);
        loom_tensor_set_sbp(rm, loom_split(0));
        y = loom_matmul(g, rm, y);
        loom_tensor_set_sbp(y, loom_split(0));
    }
    loom_array v = lt_eval(c, y);
    ck_assert_int_eq(v.ndim, 2);
    ck_assert_int_eq(v.shape[0], rows);
    ck_assert_int_eq(v.shape[1], 5);
    memcpy(out, v.data, (size_t)rows * 5 * sizeof *out);
    if (plan) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(loom_program_write_plan(lt_case_program(c), LOOM_RUN_FORWARD, LOOM_PLAN_TEXT, f), LOOM_OK);
        fclose(f);
        plan[0] = 0;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
            if (strstr(line, " boxing ") && strlen(plan) + strlen(line) + 2 < plan_len)
                strcat(strcat(plan, line), "\n");
        free(text);
    }
    free(a);
    free(r);
    loom_placement_free(p);
    lt_case_free(c);
}
