/* Synthetic graphs (loom_synthetic_graph): a valid CSR whose row is the destination, the same
 * bytes for the same seed, the generator of graphs/core/op.h, bad arguments, and the exact values of
 * bench/peers/synthetic.py, the numpy generator the peers train on. */
#include <check.h>
#include <loom/loom.h>

#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "graphs/core/op.h"

/* A graph that the figures of bench/peers/synthetic.py describe in full:
 *     python3 bench/peers/synthetic.py --nodes 10 --edges 40 --features 3 --classes 4 --seed 7 --show 40 */
enum { S_N = 10, S_E = 40, S_F = 3, S_C = 4, S_SEED = 7 };
static const int32_t s_src[S_E] = {1, 5, 0, 0, 2, 4, 1, 5, 7, 3, 4, 7, 5, 2, 1, 7, 5, 3, 8, 8,
                                   5, 4, 2, 5, 1, 2, 0, 3, 6, 2, 1, 6, 9, 2, 1, 1, 3, 3, 7, 8};
static const int32_t s_dst[S_E] = {0, 0, 3, 8, 6, 4, 0, 7, 8, 6, 4, 7, 9, 7, 3, 8, 0, 2, 4, 7,
                                   2, 9, 8, 8, 7, 6, 2, 3, 8, 9, 2, 3, 8, 2, 8, 1, 9, 9, 6, 0};
static const int32_t s_rowptr[S_N + 1] = {0, 5, 6, 11, 15, 18, 18, 22, 27, 35, 40};
static const int32_t s_col[S_E] = {1, 5, 1, 5, 8, 1, 3, 5, 0, 1, 2, 0, 1, 3, 6, 4, 4, 8, 2, 3,
                                   2, 7, 5, 7, 2, 8, 1, 0, 7, 7, 2, 5, 6, 9, 1, 5, 4, 2, 3, 3};
static const int32_t s_y[S_N] = {2, 3, 1, 1, 1, 3, 2, 1, 0, 2};
/* x (row-major, all 30 elements) times 2^24: the features are exact multiples of 2^-24 */
static const int32_t s_x24[S_N * S_F] = {13189484, 15471667, 661740,   11067431, 6050767,  8335471,  1638590,  15980273,
                                         5214323,  7961150,  3509725,  249090,   6388361,  6885577,  11210440, 3243211,
                                         1435855,  6556085,  3726754,  5108150,  13035389, 5241884,  642255,   10055738,
                                         14201180, 1843409,  10602965, 12236530, 9435133,  9854405};

static loom_node_dataset make(int64_t n, int64_t e, int64_t f, int64_t c, uint64_t seed)
{
    loom_node_dataset d;
    loom_error err = {0};
    ck_assert_msg(loom_synthetic_graph(n, e, f, c, seed, &d, &err) == LOOM_OK, "%s", err.msg);
    return d;
}

/* The whole-array checksum bench/peers/synthetic.py's figures below were made with: sum of
 * a[k] * (k + 1) over the 32-bit words of an array, modulo 2^64. */
static uint64_t checksum(const void *p, int64_t n)
{
    const uint32_t *w = p;
    uint64_t s = 0;
    for (int64_t k = 0; k < n; k++)
        s += (uint64_t)w[k] * (uint64_t)(k + 1);
    return s;
}

START_TEST(test_valid_csr)
{
    loom_node_dataset d = make(300, 5000, 4, 6, 1);
    loom_error err = {0};
    ck_assert_msg(loom_csr_validate(&d.adj, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_int_eq(d.num_nodes, 300);
    ck_assert_int_eq(d.num_features, 4);
    ck_assert_int_eq(d.num_classes, 6);
    ck_assert_int_eq(d.adj.nrows, 300);
    ck_assert_int_eq(d.adj.ncols, 300);
    ck_assert_int_eq(d.adj.nnz, 5000);
    ck_assert_int_eq(d.adj.vdtype, LOOM_F32);
    ck_assert_int_eq(d.x.dtype, LOOM_F32);
    ck_assert_int_eq(d.x.ndim, 2);
    ck_assert_int_eq(d.x.shape[0], 300);
    ck_assert_int_eq(d.x.shape[1], 4);
    ck_assert_int_eq(d.labels.dtype, LOOM_I32);
    ck_assert_int_eq(d.labels.ndim, 1);
    ck_assert_int_eq(d.labels.shape[0], 300);
    int64_t bad = 0, seen[6] = {0};
    for (int64_t k = 0; k < 5000; k++)
        bad += ((const float *)d.adj.val)[k] != 1.0f;
    for (int64_t i = 0; i < 1200; i++) {
        float v = ((const float *)d.x.data)[i];
        bad += !(v >= 0.0f && v < 1.0f);
    }
    for (int64_t i = 0; i < 300; i++) {
        int32_t l = ((const int32_t *)d.labels.data)[i];
        if (l >= 0 && l < 6)
            seen[l]++;
        else
            bad++;
    }
    ck_assert_int_eq(bad, 0);
    for (int c = 0; c < 6; c++) /* 50 expected of each: uniform, not stuck */
        ck_assert_msg(seen[c] > 20, "class %d has %lld of 300 labels", c, (long long)seen[c]);
    loom_node_dataset_free(&d);
    ck_assert_ptr_null(d.adj.col);

    /* No edges is a graph too. */
    d = make(5, 0, 1, 1, 0);
    ck_assert_int_eq(loom_csr_validate(&d.adj, &err), LOOM_OK);
    ck_assert_int_eq(d.adj.nnz, 0);
    ck_assert_int_eq(d.adj.rowptr[5], 0);
    loom_node_dataset_free(&d);
}
END_TEST

static int same_bytes(const loom_node_dataset *a, const loom_node_dataset *b)
{
    size_t n = (size_t)a->num_nodes, e = (size_t)a->adj.nnz, nx = (size_t)loom_array_numel(&a->x);
    return !memcmp(a->adj.rowptr, b->adj.rowptr, (n + 1) * 4) && !memcmp(a->adj.col, b->adj.col, e * 4) &&
           !memcmp(a->adj.val, b->adj.val, e * 4) && !memcmp(a->x.data, b->x.data, nx * 4) &&
           !memcmp(a->labels.data, b->labels.data, n * 4);
}

START_TEST(test_deterministic)
{
    /* Big enough to be built on several threads where the machine has several CPUs. */
    loom_node_dataset a = make(20000, 1 << 22, 3, 5, 99), b = make(20000, 1 << 22, 3, 5, 99);
    loom_node_dataset c = make(20000, 1 << 22, 3, 5, 100);
    ck_assert_msg(same_bytes(&a, &b), "the same seed gave different graphs");
    ck_assert_msg(memcmp(a.adj.col, c.adj.col, 1000 * 4) != 0, "seeds 99 and 100 gave the same columns");
    ck_assert_msg(memcmp(a.x.data, c.x.data, 1000 * 4) != 0, "seeds 99 and 100 gave the same features");
    ck_assert_msg(memcmp(a.labels.data, c.labels.data, 1000 * 4) != 0, "seeds 99 and 100 gave the same labels");
    loom_node_dataset_free(&a);
    loom_node_dataset_free(&b);
    loom_node_dataset_free(&c);
}
END_TEST

START_TEST(test_row_is_destination)
{
    /* Edge e goes from s_src[e] to s_dst[e]: row d must list the sources of the edges into d, in
     * edge order. */
    loom_node_dataset d = make(S_N, S_E, S_F, S_C, S_SEED);
    int32_t fill[S_N], col[S_E];
    for (int r = 0; r < S_N; r++)
        fill[r] = s_rowptr[r];
    for (int e = 0; e < S_E; e++)
        col[fill[s_dst[e]]++] = s_src[e];
    for (int r = 0; r < S_N; r++)
        ck_assert_int_eq(fill[r], s_rowptr[r + 1]);
    ck_assert_int_eq(memcmp(col, s_col, sizeof col), 0);
    ck_assert_int_eq(memcmp(d.adj.rowptr, s_rowptr, sizeof s_rowptr), 0);
    ck_assert_int_eq(memcmp(d.adj.col, col, sizeof col), 0);
    /* Row 0: the edges 1->0, 5->0, 1->0, 5->0, 8->0 (edges 0, 1, 6, 16 and 39). */
    ck_assert_int_eq(d.adj.rowptr[1], 5);
    ck_assert_int_eq(d.adj.col[0], 1);
    ck_assert_int_eq(d.adj.col[4], 8);
    loom_node_dataset_free(&d);
}
END_TEST

/* floor(r * n / 2^64), the bounded draw of data/synthetic.c, here with a 128-bit product. */
static uint32_t below128(uint64_t r, uint64_t n) { return (uint32_t)(((unsigned __int128)r * n) >> 64); }

START_TEST(test_generator_is_loom_rand64)
{
    /* Rebuilt serially from loom__rand64 (graphs/core/op.h) and a plain stable bucket sort: the threaded
     * counting sort and the local copy of the generator give the same graph. */
    enum { N = 20000, F = 3, C = 5 };
    const int64_t E = 1 << 22;
    const uint64_t seed = 12345;
    loom_node_dataset d = make(N, E, F, C, seed);
    uint64_t ks = loom__rand64(seed, 0), kd = loom__rand64(seed, 1), kx = loom__rand64(seed, 2), ky = loom__rand64(seed, 3);
    int32_t *rowptr = calloc(N + 1, sizeof *rowptr), *fill = malloc(N * sizeof *fill), *col = malloc((size_t)E * sizeof *col);
    ck_assert(rowptr && fill && col);
    for (int64_t e = 0; e < E; e++)
        rowptr[below128(loom__rand64(kd, (uint64_t)e), N) + 1]++;
    for (int r = 0; r < N; r++) {
        rowptr[r + 1] += rowptr[r];
        fill[r] = rowptr[r];
    }
    for (int64_t e = 0; e < E; e++)
        col[fill[below128(loom__rand64(kd, (uint64_t)e), N)]++] = (int32_t)below128(loom__rand64(ks, (uint64_t)e), N);
    ck_assert_int_eq(memcmp(d.adj.rowptr, rowptr, (N + 1) * sizeof *rowptr), 0);
    ck_assert_int_eq(memcmp(d.adj.col, col, (size_t)E * sizeof *col), 0);
    int64_t bad = 0;
    for (int64_t i = 0; i < N * F; i++) {
        /* the top 24 of loom__rand_unit's 53 bits */
        float want = (float)((double)(int64_t)(loom__rand_unit(kx, (uint64_t)i) * 0x1.0p24) * 0x1.0p-24);
        bad += ((const float *)d.x.data)[i] != want;
    }
    for (int64_t i = 0; i < N; i++)
        bad += ((const int32_t *)d.labels.data)[i] != (int32_t)below128(loom__rand64(ky, (uint64_t)i), C);
    ck_assert_int_eq(bad, 0);
    free(rowptr);
    free(fill);
    free(col);

    /* The same graph, whole, against bench/peers/synthetic.py (checksums as in checksum() above):
     *     g = synthetic.graph(20000, 1 << 22, 3, 5, 12345); rowptr, col = synthetic.csr(20000, g["edge_index"]) */
    ck_assert_uint_eq(checksum(d.adj.rowptr, N + 1), UINT64_C(0x1fcb96998c8aa));
    ck_assert_uint_eq(checksum(d.adj.col, E), UINT64_C(0x13865f3763dc8c7));
    ck_assert_uint_eq(checksum(d.x.data, N * F), UINT64_C(0x1a4bf20cb46aa925));
    ck_assert_uint_eq(checksum(d.labels.data, N), UINT64_C(0x17fabc92));
    ck_assert_int_eq(d.adj.rowptr[1], 215);
    ck_assert_int_eq(d.adj.rowptr[N - 1], 4194097);
    ck_assert_int_eq(d.adj.col[0], 2908);
    ck_assert_int_eq(d.adj.col[E - 1], 19834);
    loom_node_dataset_free(&d);
}
END_TEST

START_TEST(test_matches_numpy)
{
    /* Values from bench/peers/synthetic.py (the command at the top of this file). */
    loom_node_dataset d = make(S_N, S_E, S_F, S_C, S_SEED);
    ck_assert_int_eq(memcmp(d.adj.rowptr, s_rowptr, sizeof s_rowptr), 0);
    ck_assert_int_eq(memcmp(d.adj.col, s_col, sizeof s_col), 0);
    ck_assert_int_eq(memcmp(d.labels.data, s_y, sizeof s_y), 0);
    for (int i = 0; i < S_N * S_F; i++)
        ck_assert_msg(((const float *)d.x.data)[i] == (float)s_x24[i] * 0x1.0p-24f, "x[%d] is %.9g, numpy has %.9g", i,
                      ((const float *)d.x.data)[i], (float)s_x24[i] * 0x1.0p-24f);
    ck_assert_float_eq(((const float *)d.x.data)[0], 0.7861545085906982f);
    loom_node_dataset_free(&d);
}
END_TEST

static void expect_invalid(int64_t n, int64_t e, int64_t f, int64_t c, const char *needle)
{
    loom_node_dataset d;
    memset(&d, 0xab, sizeof d);
    loom_error err = {0};
    ck_assert_int_eq(loom_synthetic_graph(n, e, f, c, 0, &d, &err), LOOM_ERR_INVALID);
    ck_assert_int_eq(err.status, LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_msg(strstr(err.msg, "loom_synthetic_graph: "), "message '%s' does not name the call", err.msg);
    ck_assert_ptr_null(d.adj.rowptr); /* cleared, so freeing it is safe */
    ck_assert_ptr_null(d.x.data);
    loom_node_dataset_free(&d);
}

START_TEST(test_bad_arguments)
{
    expect_invalid(0, 10, 4, 2, "nodes is 0: expected 1 to 2^31 - 1");
    expect_invalid(-5, 10, 4, 2, "nodes is -5");
    expect_invalid(INT64_C(1) << 31, 10, 4, 2, "nodes is 2147483648: expected 1 to 2^31 - 1 (int32 CSR indices)");
    expect_invalid(10, -1, 4, 2, "edges is -1: expected 0 to 2^31 - 1");
    expect_invalid(10, INT64_C(3) << 31, 4, 2, "edges is 6442450944");
    expect_invalid(10, 10, 0, 2, "features is 0: expected 1 to");
    expect_invalid(10, 10, -3, 2, "features is -3");
    expect_invalid(INT32_MAX, 10, INT64_C(1) << 40, 2, "nodes x features must fit an array");
    expect_invalid(10, 10, 4, 0, "classes is 0: expected 1 to 2^31 - 1 (i32 labels)");
    expect_invalid(10, 10, 4, -2, "classes is -2");
    expect_invalid(10, 10, 4, INT64_C(1) << 31, "classes is 2147483648");
    loom_error err = {0};
    ck_assert_int_eq(loom_synthetic_graph(10, 10, 4, 2, 0, NULL, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "NULL output"), "%s", err.msg);
    ck_assert_int_eq(loom_synthetic_graph(0, 10, 4, 2, 0, NULL, NULL), LOOM_ERR_INVALID); /* err may be NULL */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("synthetic");
    TCase *tc = tcase_create("synthetic");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_valid_csr);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_row_is_destination);
    tcase_add_test(tc, test_generator_is_loom_rand64);
    tcase_add_test(tc, test_matches_numpy);
    tcase_add_test(tc, test_bad_arguments);
    suite_add_tcase(s, tc);
    return lt_run_suite(s) ? 1 : 0;
}
