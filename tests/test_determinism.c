/* Same seed, same losses, bit for bit: across runs, across OpenBLAS thread counts, and with
 * dropout on. A different seed must change them. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 300, F = 64, C = 5, STEPS = 8 };

static void losses(uint64_t seed, int threads, float out[STEPS])
{
    /* a random sparse graph (about 6 edges per node), features and labels, from fixed seeds */
    static int32_t rowptr[N + 1], col[N * 6], labels[N];
    static float val[N * 6], x[N * F];
    int32_t e = 0;
    int32_t pick[6];
    for (int i = 0; i < N; i++) {
        rowptr[i] = e;
        lt_fill_int(pick, 6, N, (uint64_t)i + 100);
        for (int k = 0; k < 6; k++) {
            col[e] = pick[k];
            val[e++] = 1.0f;
        }
    }
    rowptr[N] = e;
    double xd[N * F];
    lt_fill_normal(xd, N * F, 5);
    for (int i = 0; i < N * F; i++)
        x[i] = (float)xd[i];
    lt_fill_int(labels, N, C, 9);

    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, seed);
    loom_tensor *tx = loom_input(g, "x", LOOM_F32, loom_shape(N, F));
    loom_tensor *ta = loom_input_csr(g, "adj", LOOM_F32, N, N);
    loom_tensor *ty = loom_input(g, "y", LOOM_I32, loom_shape(N));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_gcn(g, ta, tx, 32, C, 0.5), ty, NULL);
    loom_program *p;
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_adam(0.01), .threads = threads}, &p) == LOOM_OK, "%s",
                  loom_graph_error(g));
    loom_array xa = {.dtype = LOOM_F32, .ndim = 2, .shape = {N, F}, .data = x};
    loom_array ya = {.dtype = LOOM_I32, .ndim = 1, .shape = {N}, .data = labels};
    loom_csr adj = {.nrows = N, .ncols = N, .nnz = e, .vdtype = LOOM_F32, .rowptr = rowptr, .col = col, .val = val};
    ck_assert_int_eq(loom_program_feed(p, tx, &xa), LOOM_OK);
    ck_assert_int_eq(loom_program_feed(p, ty, &ya), LOOM_OK);
    ck_assert_int_eq(loom_program_feed_csr(p, ta, &adj), LOOM_OK);
    for (int s = 0; s < STEPS; s++) {
        ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s", loom_program_error(p));
        loom_array l;
        ck_assert_int_eq(loom_program_fetch(p, loss, &l), LOOM_OK);
        out[s] = ((float *)l.data)[0];
    }
    double rec[STEPS];
    for (int s = 0; s < STEPS; s++)
        rec[s] = out[s];
    char what[64];
    snprintf(what, sizeof what, "determinism seed=%llu threads=%d", (unsigned long long)seed, threads);
    lt_record_results(what, rec, STEPS);
    loom_program_free(p);
    loom_graph_free(g);
}

START_TEST(test_same_seed_same_bits)
{
    float a[STEPS], b[STEPS], c[STEPS], d[STEPS];
    losses(42, 1, a);
    losses(42, 1, b);
    losses(42, 2, c);
    losses(43, 2, d);
    ck_assert_msg(!memcmp(a, b, sizeof a), "two runs differ");
    ck_assert_msg(!memcmp(a, c, sizeof a), "1 and 2 BLAS threads differ");
    ck_assert_msg(memcmp(a, d, sizeof a), "another seed gave the same losses");
    ck_assert_msg(a[STEPS - 1] < a[0], "the loss did not fall: %g -> %g", a[0], a[STEPS - 1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("determinism");
    TCase *tc = tcase_create("all");
    tcase_add_test(tc, test_same_seed_same_bits);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
