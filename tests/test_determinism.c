/* Same seed, same losses, bit for bit: across runs, across kernel thread counts (at sizes where
 * the kernels split over the pool), and with dropout on. A different seed must change them. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/cpu/pool.h"

enum { STEPS = 8, DEG = 6 };

typedef struct sizes {
    int n, f, hidden, classes;
} sizes;

static const sizes SMALL = {300, 64, 32, 5};

/* STEPS Adam steps of a GCN with dropout on a random graph of z.n nodes (about DEG edges each),
 * features and labels from fixed seeds; the losses, and the first layer's weights when w is given. */
static void losses(uint64_t seed, int threads, sizes z, float out[STEPS], loom_array *w)
{
    const int n = z.n, F = z.f, C = z.classes;
    int32_t *rowptr = malloc((size_t)(n + 1) * sizeof *rowptr), *col = malloc((size_t)n * DEG * sizeof *col);
    int32_t *labels = malloc((size_t)n * sizeof *labels);
    float *val = malloc((size_t)n * DEG * sizeof *val), *x = malloc((size_t)n * F * sizeof *x);
    double *xd = malloc((size_t)n * F * sizeof *xd);
    ck_assert(rowptr && col && labels && val && x && xd);
    int32_t e = 0;
    int32_t pick[DEG];
    for (int i = 0; i < n; i++) {
        rowptr[i] = e;
        lt_fill_int(pick, DEG, n, (uint64_t)i + 100);
        for (int k = 0; k < DEG; k++) {
            col[e] = pick[k];
            val[e++] = 1.0f;
        }
    }
    rowptr[n] = e;
    lt_fill_normal(xd, (int64_t)n * F, 5);
    for (int64_t i = 0; i < (int64_t)n * F; i++)
        x[i] = (float)xd[i];
    lt_fill_int(labels, n, C, 9);

    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, seed);
    loom_tensor *tx = loom_input(g, "x", LOOM_F32, loom_shape(n, F));
    loom_tensor *ta = loom_input_csr(g, "adj", LOOM_F32, n, n);
    loom_tensor *ty = loom_input(g, "y", LOOM_I32, loom_shape(n));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_gcn(g, ta, tx, z.hidden, C, 0.5), ty, NULL);
    loom_program *p;
    ck_assert_msg(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_adam(0.01), .threads = threads}, &p) == LOOM_OK, "%s",
                  loom_graph_error(g));
    loom_array xa = {.dtype = LOOM_F32, .ndim = 2, .shape = {n, F}, .data = x};
    loom_array ya = {.dtype = LOOM_I32, .ndim = 1, .shape = {n}, .data = labels};
    loom_csr adj = {.nrows = n, .ncols = n, .nnz = e, .vdtype = LOOM_F32, .rowptr = rowptr, .col = col, .val = val};
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
    snprintf(what, sizeof what, n == SMALL.n ? "determinism seed=%llu threads=%d" : "determinism seed=%llu threads=%d n=%d",
             (unsigned long long)seed, threads, n);
    lt_record_results(what, rec, STEPS);
    if (w) {
        loom_array wv;
        ck_assert_int_eq(loom_program_fetch(p, loom_graph_find(g, "gcn1.weight"), &wv), LOOM_OK);
        ck_assert_int_eq(loom_array_alloc(w, wv.dtype, wv.ndim, wv.shape), LOOM_OK);
        memcpy(w->data, wv.data, (size_t)loom_array_numel(&wv) * loom_dtype_size(wv.dtype));
    }
    loom_program_free(p);
    loom_graph_free(g);
    free(rowptr);
    free(col);
    free(labels);
    free(val);
    free(x);
    free(xd);
}

START_TEST(test_same_seed_same_bits)
{
    float a[STEPS], b[STEPS], c[STEPS], d[STEPS];
    losses(42, 1, SMALL, a, NULL);
    losses(42, 1, SMALL, b, NULL);
    losses(42, 2, SMALL, c, NULL);
    losses(43, 2, SMALL, d, NULL);
    ck_assert_msg(!memcmp(a, b, sizeof a), "two runs differ");
    ck_assert_msg(!memcmp(a, c, sizeof a), "1 and 2 BLAS threads differ");
    ck_assert_msg(memcmp(a, d, sizeof a), "another seed gave the same losses");
    ck_assert_msg(a[STEPS - 1] < a[0], "the loss did not fall: %g -> %g", a[0], a[STEPS - 1]);
}
END_TEST

START_TEST(test_same_bits_any_threads)
{
    /* 4000 nodes: the GEMMs and the SpMMs split over 2 and 3 kernel threads (the pool's threshold
     * is checked here, so that this test stays one that can fail). With 7 classes, OpenBLAS
     * computes [2000, 64] x [64, 7] with another order of the sum than [4000, 64] x [64, 7]: a
     * split of the GEMM must not follow the thread count. */
    const sizes big = {4000, 96, 64, 7};
    loom__pool *pool = loom__pool_new(3);
    ck_assert_int_eq(loom__pool_parts(pool, (double)big.n * (big.f + big.hidden) * 4 + 2.0 * big.n * big.hidden * big.f / 8), 3);
    ck_assert_int_eq(loom__pool_parts(pool, (double)big.n * DEG * big.hidden * 4), 3);
    loom__pool_free(pool);
    float l[3][STEPS];
    loom_array w[3];
    for (int t = 0; t < 3; t++)
        losses(42, t + 1, big, l[t], &w[t]);
    size_t bytes = (size_t)loom_array_numel(&w[0]) * loom_dtype_size(w[0].dtype);
    for (int t = 1; t < 3; t++) {
        ck_assert_msg(!memcmp(l[0], l[t], sizeof l[0]), "losses differ on 1 and %d kernel threads", t + 1);
        ck_assert_msg(!memcmp(w[0].data, w[t].data, bytes), "weights differ on 1 and %d kernel threads", t + 1);
    }
    for (int t = 0; t < 3; t++)
        loom_array_free(&w[t]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("determinism");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_same_seed_same_bits);
    tcase_add_test(tc, test_same_bits_any_threads);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
