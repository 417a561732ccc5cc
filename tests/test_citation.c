/* Citation graphs: the real Cora (found through $LOOM_DATA or the cache; never downloaded here),
 * a small synthetic graph whose loaded form is known exactly, broken files, loom_data_find, and
 * seeded splits. Without Cora the other tests still run and the program exits 77 (skipped). */
#include <check.h>
#include <loom/loom.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "npz_build.h"

static char cora[4096]; /* the file's path, empty when it was not found */
static char tmpdir[] = "/tmp/loom_test_citation_XXXXXX";

/* ---------------------------------------------------------------------------------------------
 * Cora.
 * ------------------------------------------------------------------------------------------- */

static int has_edge(const loom_csr *m, int32_t r, int32_t c)
{
    int32_t lo = m->rowptr[r], hi = m->rowptr[r + 1];
    while (lo < hi) {
        int32_t mid = lo + (hi - lo) / 2;
        if (m->col[mid] == c)
            return 1;
        if (m->col[mid] < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    return 0;
}

START_TEST(test_cora_load)
{
    loom_node_dataset d;
    loom_error e = {0};
    ck_assert_msg(loom_citation_load(cora, &d, &e) == LOOM_OK, "%s", e.msg);
    ck_assert_int_eq(d.num_nodes, 2708);
    ck_assert_int_eq(d.num_features, 1433);
    ck_assert_int_eq(d.num_classes, 7);
    /* The file holds 5429 directed entries; A + A^T without self loops or repeats has 10556
     * (measured independently with Python's zipfile on the same file). */
    ck_assert_int_eq(d.adj.nnz, 10556);
    ck_assert_int_eq(d.adj.nrows, 2708);
    ck_assert_int_eq(d.adj.ncols, 2708);
    ck_assert_int_eq(d.adj.vdtype, LOOM_F32);
    ck_assert_int_eq(loom_csr_validate(&d.adj, &e), LOOM_OK);
    /* Checked with plain loops and asserted once: a ck_assert per element writes to Check's pipe
     * each time, which takes seconds over four million elements. */
    int32_t maxdeg = 0, isolated = 0;
    int64_t bad_edges = 0, first_bad = -1;
    for (int32_t r = 0; r < 2708; r++) {
        int32_t deg = d.adj.rowptr[r + 1] - d.adj.rowptr[r];
        maxdeg = deg > maxdeg ? deg : maxdeg;
        isolated += deg == 0;
        for (int32_t k = d.adj.rowptr[r]; k < d.adj.rowptr[r + 1]; k++) {
            int32_t c = d.adj.col[k];
            int ok = c != r && (k == d.adj.rowptr[r] || d.adj.col[k - 1] < c) && has_edge(&d.adj, c, r) &&
                     ((float *)d.adj.val)[k] == 1.0f;
            if (!ok && bad_edges++ == 0)
                first_bad = k;
        }
    }
    ck_assert_msg(bad_edges == 0, "%lld entries are self loops, unsorted, repeated, unmatched or not 1 (first: %lld)",
                  (long long)bad_edges, (long long)first_bad);
    ck_assert_int_eq(maxdeg, 168);
    ck_assert_int_eq(isolated, 0);
    ck_assert_int_eq(d.adj.rowptr[1] - d.adj.rowptr[0], 5);
    /* Features: every Cora row has words, so every row sums to 1; row 0 has 24 words. */
    ck_assert_int_eq(d.x.dtype, LOOM_F32);
    ck_assert_int_eq(d.x.ndim, 2);
    const float *x = d.x.data;
    int64_t bad_rows = 0, negative = 0;
    for (int64_t i = 0; i < 2708; i++) {
        double s = 0;
        for (int64_t j = 0; j < 1433; j++) {
            negative += x[i * 1433 + j] < 0;
            s += x[i * 1433 + j];
        }
        bad_rows += fabs(s - 1) >= 1e-5;
    }
    ck_assert_int_eq(negative, 0);
    ck_assert_msg(bad_rows == 0, "%lld rows do not sum to 1", (long long)bad_rows);
    int nz0 = 0;
    for (int j = 0; j < 1433; j++)
        if (x[j] != 0) {
            nz0++;
            ck_assert(fabsf(x[j] - 1.0f / 24) < 1e-7f);
        }
    ck_assert_int_eq(nz0, 24);
    /* Labels, counted per class with Python on the same file. */
    static const int counts[7] = {298, 418, 818, 426, 217, 180, 351};
    int got[7] = {0};
    ck_assert_int_eq(d.labels.dtype, LOOM_I32);
    int out_of_range = 0;
    for (int i = 0; i < 2708; i++) {
        int32_t l = ((int32_t *)d.labels.data)[i];
        if (l >= 0 && l < 7)
            got[l]++;
        else
            out_of_range++;
    }
    ck_assert_int_eq(out_of_range, 0);
    for (int c = 0; c < 7; c++)
        ck_assert_int_eq(got[c], counts[c]);
    loom_node_dataset_free(&d);
    ck_assert_ptr_null(d.x.data);
    ck_assert_ptr_null(d.adj.col);
}
END_TEST

START_TEST(test_cora_load_via_find)
{
    /* loom_data_find found the file without a URL, so loom_cora_load finds it the same way and
     * never reaches its download. */
    loom_node_dataset d;
    loom_error e = {0};
    ck_assert_msg(loom_cora_load(&d, &e) == LOOM_OK, "%s", e.msg);
    ck_assert_int_eq(d.num_nodes, 2708);
    ck_assert_int_eq(d.adj.nnz, 10556);
    loom_node_dataset_free(&d);
}
END_TEST

START_TEST(test_cora_npz_members)
{
    loom_npz *z;
    loom_error e = {0};
    ck_assert_msg(loom_npz_open(cora, &z, &e) == LOOM_OK, "%s", e.msg);
    ck_assert_int_eq(loom_npz_count(z), 11);
    static const char *names[] = {"adj_data",     "adj_indices", "adj_indptr", "adj_shape",  "attr_data",  "attr_indices",
                                  "attr_indptr",  "attr_shape",  "labels",     "node_names", "class_names"};
    for (int i = 0; i < 11; i++)
        ck_assert_str_eq(loom_npz_name(z, i), names[i]);
    loom_array a;
    /* labels are '|i1': readable as any integer or float dtype. */
    loom_dtype all[] = {LOOM_U8, LOOM_I32, LOOM_I64, LOOM_F32, LOOM_F64};
    for (int t = 0; t < 5; t++) {
        ck_assert_msg(loom_npz_read(z, "labels", all[t], &a, &e) == LOOM_OK, "%s", e.msg);
        ck_assert(a.ndim == 1 && a.shape[0] == 2708);
        loom_array_free(&a);
    }
    expect_fail(loom_npz_read(z, "node_names", LOOM_F64, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "'<U7'", "node_names");
    expect_fail(loom_npz_read(z, "class_names", LOOM_F64, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "'<U22'", "class_names");
    expect_fail(loom_npz_read(z, "adj_data", LOOM_I32, &a, &e), LOOM_ERR_DTYPE, &e, "adj_data.npy", "adj_data as i32");
    ck_assert_int_eq(loom_npz_read(z, "adj_shape", LOOM_I64, &a, &e), LOOM_OK);
    ck_assert(((int64_t *)a.data)[0] == 2708 && ((int64_t *)a.data)[1] == 2708);
    loom_array_free(&a);
    loom_npz_close(z);
}
END_TEST

static int count(const loom_array *m)
{
    int n = 0;
    for (int64_t i = 0; i < m->shape[0]; i++)
        n += ((uint8_t *)m->data)[i];
    return n;
}

START_TEST(test_cora_split)
{
    loom_node_dataset d;
    loom_error e = {0};
    ck_assert_msg(loom_citation_load(cora, &d, &e) == LOOM_OK, "%s", e.msg);
    loom_node_split s0, s0b, s1;
    ck_assert_msg(loom_split_per_class(&d.labels, d.num_classes, 20, 500, 1000, 0, &s0, &e) == LOOM_OK, "%s", e.msg);
    ck_assert_int_eq(loom_split_per_class(&d.labels, d.num_classes, 20, 500, 1000, 0, &s0b, &e), LOOM_OK);
    ck_assert_int_eq(loom_split_per_class(&d.labels, d.num_classes, 20, 500, 1000, 1, &s1, &e), LOOM_OK);
    ck_assert_int_eq(count(&s0.train), 140);
    ck_assert_int_eq(count(&s0.val), 500);
    ck_assert_int_eq(count(&s0.test), 1000);
    int per[7] = {0};
    const uint8_t *tr = s0.train.data, *va = s0.val.data, *te = s0.test.data;
    int overlaps = 0;
    for (int i = 0; i < 2708; i++) {
        overlaps += tr[i] + va[i] + te[i] > 1;
        if (tr[i])
            per[((int32_t *)d.labels.data)[i]]++;
    }
    ck_assert_int_eq(overlaps, 0);
    for (int c = 0; c < 7; c++)
        ck_assert_int_eq(per[c], 20);
    ck_assert(!memcmp(s0.train.data, s0b.train.data, 2708) && !memcmp(s0.val.data, s0b.val.data, 2708) &&
              !memcmp(s0.test.data, s0b.test.data, 2708));
    ck_assert(memcmp(s0.train.data, s1.train.data, 2708) && memcmp(s0.val.data, s1.val.data, 2708) &&
              memcmp(s0.test.data, s1.test.data, 2708));
    loom_node_split_free(&s0);
    loom_node_split_free(&s0b);
    loom_node_split_free(&s1);
    loom_node_dataset_free(&d);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * A synthetic graph: 4 nodes, 3 features, 3 classes.
 *   adj (directed): 0->1 twice, 0->0, 1->2, 2->3 stored as an explicit 0, 3->0 with value 2
 *     -> undirected {0-1, 1-2, 0-3}: rows [1 3], [0 2], [1], [0]
 *   attr: row 0 {0: 1, 2: 3}, row 1 {1: 2, 1: 2} (a repeat, summed), row 2 empty, row 3 {0: 5}
 *     -> normalised [.25 0 .75], [0 1 0], [0 0 0], [1 0 0]
 * ------------------------------------------------------------------------------------------- */

static const int32_t g_adj_indptr[5] = {0, 3, 4, 5, 6}, g_adj_indices[6] = {1, 1, 0, 2, 3, 0};
static const float g_adj_data[6] = {1, 1, 1, 1, 0, 2};
static const int64_t g_adj_shape[2] = {4, 4}, g_attr_shape[2] = {4, 3};
static const int32_t g_attr_indptr[5] = {0, 2, 4, 4, 5}, g_attr_indices[5] = {0, 2, 1, 1, 0};
static const double g_attr_data[5] = {1, 3, 2, 2, 5};
static const float g_attr_dense[12] = {1, 0, 3, 0, 4, 0, 0, 0, 0, 5, 0, 0};
static const int8_t g_labels[4] = {0, 2, 1, 2};

typedef struct {
    const char *name, *descr, *shape;
    const void *data;
    size_t bytes;
} arr;

/* Writes the synthetic graph to dir/file, leaving out the member named omit and replacing any
 * member named like one of repl (or adding it); returns the path (static). */
static const char *write_graph(const char *file, const char *omit, int dense, const arr *repl, int nrepl)
{
    arr base[] = {
        {"adj_data", "<f4", "(6,)", g_adj_data, sizeof g_adj_data},
        {"adj_indices", "<i4", "(6,)", g_adj_indices, sizeof g_adj_indices},
        {"adj_indptr", "<i4", "(5,)", g_adj_indptr, sizeof g_adj_indptr},
        {"adj_shape", "<i8", "(2,)", g_adj_shape, sizeof g_adj_shape},
        {"attr_data", "<f8", "(5,)", g_attr_data, sizeof g_attr_data},
        {"attr_indices", "<i4", "(5,)", g_attr_indices, sizeof g_attr_indices},
        {"attr_indptr", "<i4", "(5,)", g_attr_indptr, sizeof g_attr_indptr},
        {"attr_shape", "<i8", "(2,)", g_attr_shape, sizeof g_attr_shape},
        {"labels", "|i1", "(4,)", g_labels, sizeof g_labels},
        {"attr_matrix", "<f4", "(4, 3)", g_attr_dense, sizeof g_attr_dense},
    };
    enum { NB = sizeof base / sizeof *base };
    arr all[NB + 8];
    int n = 0;
    for (int i = 0; i < NB; i++) {
        int is_attr = !strncmp(base[i].name, "attr_", 5), is_dense = !strcmp(base[i].name, "attr_matrix");
        if ((omit && !strcmp(base[i].name, omit)) || (is_attr && dense != is_dense))
            continue;
        all[n++] = base[i];
    }
    for (int r = 0; r < nrepl; r++) {
        int k = 0;
        while (k < n && strcmp(all[k].name, repl[r].name))
            k++;
        all[k] = repl[r];
        n += k == n;
    }
    nb_buf npy[NB + 8];
    nb_member m[NB + 8];
    char names[NB + 8][64];
    for (int i = 0; i < n; i++) {
        npy[i] = nb_npy(all[i].descr, all[i].shape, all[i].data, all[i].bytes);
        snprintf(names[i], sizeof names[i], "%s.npy", all[i].name);
        m[i] = (nb_member){names[i], npy[i].p, npy[i].n, i % 2, 1, 0};
    }
    nb_buf z = nb_zip(m, n, NULL);
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmpdir, file);
    ck_assert_int_eq(nb_write(path, &z), 0);
    nb_free(&z);
    for (int i = 0; i < n; i++)
        nb_free(&npy[i]);
    return path;
}

static void check_synthetic(const loom_node_dataset *d)
{
    ck_assert_int_eq(d->num_nodes, 4);
    ck_assert_int_eq(d->num_features, 3);
    ck_assert_int_eq(d->num_classes, 3);
    static const int32_t rowptr[5] = {0, 2, 4, 5, 6}, col[6] = {1, 3, 0, 2, 1, 0};
    ck_assert_int_eq(d->adj.nnz, 6);
    ck_assert(!memcmp(d->adj.rowptr, rowptr, sizeof rowptr) && !memcmp(d->adj.col, col, sizeof col));
    for (int k = 0; k < 6; k++)
        ck_assert(((float *)d->adj.val)[k] == 1.0f);
    static const float x[12] = {0.25f, 0, 0.75f, 0, 1, 0, 0, 0, 0, 1, 0, 0};
    for (int i = 0; i < 12; i++)
        ck_assert_msg(((float *)d->x.data)[i] == x[i], "x[%d] = %g, expected %g", i, ((float *)d->x.data)[i], x[i]);
    static const int32_t labels[4] = {0, 2, 1, 2};
    ck_assert(!memcmp(d->labels.data, labels, sizeof labels));
}

START_TEST(test_synthetic_sparse_and_dense)
{
    for (int dense = 0; dense < 2; dense++) {
        loom_node_dataset d;
        loom_error e = {0};
        const char *p = write_graph(dense ? "dense.npz" : "sparse.npz", NULL, dense, NULL, 0);
        ck_assert_msg(loom_citation_load(p, &d, &e) == LOOM_OK, "%s", e.msg);
        check_synthetic(&d);
        loom_node_dataset_free(&d);
    }
}
END_TEST

START_TEST(test_synthetic_errors)
{
    static const int32_t ptr_decr[5] = {0, 3, 2, 5, 6}, ptr_first[5] = {1, 3, 4, 5, 6}, ptr_last[5] = {0, 3, 4, 5, 5},
                         ind_big[6] = {1, 1, 0, 2, 3, 4}, ind_neg[6] = {1, -1, 0, 2, 3, 0}, attr_big[5] = {0, 2, 1, 1, 3};
    static const int64_t shape_rect[2] = {4, 5}, shape_neg[2] = {-4, -4}, attr_rows[2] = {5, 3};
    static const int8_t lab_neg[4] = {0, -1, 1, 2};
    static const float lab_float[4] = {0, 1, 1, 2}, data_nan[6] = {1, 1, 1, NAN, 0, 2};
    static const struct {
        arr a;
        const char *omit;
        loom_status want;
        const char *needle;
    } cases[] = {
        {{"adj_indptr", "<i4", "(5,)", ptr_decr, 20}, NULL, LOOM_ERR_FORMAT, "adj_indptr decreases at row 1"},
        {{"adj_indptr", "<i4", "(5,)", ptr_first, 20}, NULL, LOOM_ERR_FORMAT, "adj_indptr[0] is 1"},
        {{"adj_indptr", "<i4", "(5,)", ptr_last, 20}, NULL, LOOM_ERR_FORMAT, "adj_indptr[4] is 5: expected the length"},
        {{"adj_indptr", "<i4", "(4,)", ptr_decr, 16}, NULL, LOOM_ERR_FORMAT, "adj_indptr has shape [4]: expected [5]"},
        {{"adj_indices", "<i4", "(6,)", ind_big, 24}, NULL, LOOM_ERR_FORMAT, "adj_indices[5] is 4"},
        {{"adj_indices", "<i4", "(6,)", ind_neg, 24}, NULL, LOOM_ERR_FORMAT, "adj_indices[1] is -1"},
        {{"adj_data", "<f4", "(5,)", g_adj_data, 20}, NULL, LOOM_ERR_FORMAT, "adj_data has shape [5]: expected [6]"},
        {{"adj_data", "<f4", "(6,)", data_nan, 24}, NULL, LOOM_ERR_FORMAT, "adj_data[3] is not finite"},
        {{"adj_shape", "<i8", "(2,)", shape_rect, 16}, NULL, LOOM_ERR_FORMAT, "adj_shape is (4, 5): expected a square"},
        {{"adj_shape", "<i8", "(2,)", shape_neg, 16}, NULL, LOOM_ERR_FORMAT, "adj_shape is (-4, -4)"},
        {{"adj_shape", "<i8", "(1, 2)", shape_rect, 16}, NULL, LOOM_ERR_FORMAT, "adj_shape has shape [1, 2]"},
        {{"attr_shape", "<i8", "(2,)", attr_rows, 16}, NULL, LOOM_ERR_FORMAT, "attr_shape is (5, 3): expected 4 rows"},
        {{"attr_indices", "<i4", "(5,)", attr_big, 20}, NULL, LOOM_ERR_FORMAT, "attr_indices[4] is 3"},
        {{"labels", "|i1", "(4,)", lab_neg, 4}, NULL, LOOM_ERR_FORMAT, "labels[1] is -1"},
        {{"labels", "|i1", "(3,)", lab_neg, 3}, NULL, LOOM_ERR_FORMAT, "labels has shape [3]: expected [4]"},
        {{"labels", "|i1", "(2, 2)", lab_neg, 4}, NULL, LOOM_ERR_FORMAT, "labels has shape [2, 2]"},
        {{"labels", "<f4", "(4,)", lab_float, 16}, NULL, LOOM_ERR_DTYPE, "labels.npy"},
        {{"labels", "<U7", "(4,)", lab_float, 16}, NULL, LOOM_ERR_UNSUPPORTED, "'<U7'"},
        {{"extra", "|i1", "(4,)", lab_neg, 4}, "labels", LOOM_ERR_NOT_FOUND, "no member 'labels'"},
        {{"extra", "|i1", "(4,)", lab_neg, 4}, "attr_data", LOOM_ERR_NOT_FOUND, "no member 'attr_data'"},
        {{"extra", "|i1", "(4,)", lab_neg, 4}, "adj_indices", LOOM_ERR_NOT_FOUND, "no member 'adj_indices'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *p = write_graph("bad.npz", cases[c].omit, 0, &cases[c].a, 1);
        loom_node_dataset d;
        loom_error e = {0};
        expect_fail(loom_citation_load(p, &d, &e), cases[c].want, &e, cases[c].needle, cases[c].needle);
        ck_assert_msg(strstr(e.msg, p), "message '%s' does not name the file", e.msg);
        ck_assert(d.x.data == NULL && d.adj.rowptr == NULL && d.labels.data == NULL && d.num_nodes == 0);
        loom_node_dataset_free(&d);
    }
    /* Not an archive, and no file at all. */
    char path[4200];
    snprintf(path, sizeof path, "%s/text.npz", tmpdir);
    nb_buf t = {0};
    nb_put(&t, "hello, this is not a zip archive", 32);
    ck_assert_int_eq(nb_write(path, &t), 0);
    nb_free(&t);
    loom_node_dataset d;
    loom_error e = {0};
    expect_fail(loom_citation_load(path, &d, &e), LOOM_ERR_FORMAT, &e, path, "text");
    snprintf(path, sizeof path, "%s/absent.npz", tmpdir);
    expect_fail(loom_citation_load(path, &d, &e), LOOM_ERR_NOT_FOUND, &e, path, "absent");
    ck_assert_int_eq(loom_citation_load(NULL, &d, NULL), LOOM_ERR_INVALID);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * loom_data_find: environment variables are set per test (Check forks each test by default; the
 * values are restored at the end so CK_FORK=no runs work too).
 * ------------------------------------------------------------------------------------------- */

static char *saved(const char *name)
{
    const char *v = getenv(name);
    return v ? strdup(v) : NULL;
}

static void restore(const char *name, char *v)
{
    if (v)
        setenv(name, v, 1);
    else
        unsetenv(name);
    free(v);
}

START_TEST(test_data_find)
{
    char *old_data = saved("LOOM_DATA"), *old_xdg = saved("XDG_CACHE_HOME"), *old_home = saved("HOME");
    char dir[512], path[4200], p2[4200];
    loom_error e = {0};
    write_graph("g.npz", NULL, 0, NULL, 0);

    setenv("LOOM_DATA", tmpdir, 1);
    ck_assert_msg(loom_data_find("g.npz", NULL, path, sizeof path, &e) == LOOM_OK, "%s", e.msg);
    snprintf(p2, sizeof p2, "%s/g.npz", tmpdir);
    ck_assert_str_eq(path, p2);
    expect_fail(loom_data_find("g.npz", NULL, path, 5, &e), LOOM_ERR_INVALID, &e, "path buffer", "small buffer");

    /* The cache: $XDG_CACHE_HOME/loom. */
    snprintf(dir, sizeof dir, "%s/xdg", tmpdir);
    mkdir(dir, 0755);
    snprintf(dir, sizeof dir, "%s/xdg/loom", tmpdir);
    mkdir(dir, 0755);
    snprintf(p2, sizeof p2, "%s/xdg/loom/cached.npz", tmpdir);
    rename(write_graph("cached.npz", NULL, 0, NULL, 0), p2);
    snprintf(dir, sizeof dir, "%s/xdg", tmpdir);
    setenv("XDG_CACHE_HOME", dir, 1);
    ck_assert_msg(loom_data_find("cached.npz", NULL, path, sizeof path, &e) == LOOM_OK, "%s", e.msg);
    ck_assert_str_eq(path, p2);

    /* Nowhere: the message lists where it looked and what to do. */
    expect_fail(loom_data_find("cora_absent.npz", NULL, path, sizeof path, &e), LOOM_ERR_NOT_FOUND, &e,
                "Set LOOM_DATA to a directory holding cora_absent.npz, or put it in", "absent");
    snprintf(p2, sizeof p2, "%s/cora_absent.npz", tmpdir);
    ck_assert_msg(strstr(e.msg, p2), "'%s' lacks %s", e.msg, p2);
    snprintf(p2, sizeof p2, "%s/xdg/loom", tmpdir);
    ck_assert_msg(strstr(e.msg, p2), "'%s' lacks %s", e.msg, p2);

    /* Without XDG_CACHE_HOME: $HOME/.cache/loom. */
    unsetenv("XDG_CACHE_HOME");
    unsetenv("LOOM_DATA");
    setenv("HOME", tmpdir, 1);
    expect_fail(loom_data_find("cora_absent.npz", NULL, path, sizeof path, &e), LOOM_ERR_NOT_FOUND, &e,
                "$LOOM_DATA (unset)", "home");
    snprintf(p2, sizeof p2, "%s/.cache/loom/cora_absent.npz", tmpdir);
    ck_assert_msg(strstr(e.msg, p2), "'%s' lacks %s", e.msg, p2);

    expect_fail(loom_data_find("a/b.npz", NULL, path, sizeof path, &e), LOOM_ERR_INVALID, &e, NULL, "slash");
    expect_fail(loom_data_find("..", NULL, path, sizeof path, &e), LOOM_ERR_INVALID, &e, NULL, "dotdot");
    expect_fail(loom_data_find("", NULL, path, sizeof path, &e), LOOM_ERR_INVALID, &e, NULL, "empty");

    /* The download path, run against a file:// URL so no network is touched: curl copies it into
     * the cache under a part name, which is renamed into place; a failed fetch leaves nothing. */
    if (system("command -v curl >/dev/null 2>&1") == 0) {
        setenv("XDG_CACHE_HOME", dir, 1);
        char url[4300];
        snprintf(url, sizeof url, "file://%s/g.npz", tmpdir);
        ck_assert_msg(loom_data_find("fetched.npz", url, path, sizeof path, &e) == LOOM_OK, "%s", e.msg);
        snprintf(p2, sizeof p2, "%s/loom/fetched.npz", dir);
        ck_assert_str_eq(path, p2);
        loom_node_dataset d;
        ck_assert_msg(loom_citation_load(path, &d, &e) == LOOM_OK, "%s", e.msg);
        check_synthetic(&d);
        loom_node_dataset_free(&d);
        snprintf(url, sizeof url, "file://%s/no_such_file.npz", tmpdir);
        expect_fail(loom_data_find("never.npz", url, path, sizeof path, &e), LOOM_ERR_NOT_FOUND, &e, "curl", "bad url");
        /* Only the one fetched file is in the cache: no part files left behind. */
        snprintf(p2, sizeof p2, "ls -A '%s/loom' | grep -q part", dir);
        ck_assert_int_ne(system(p2), 0);
        snprintf(p2, sizeof p2, "%s/loom/fetched.npz", dir);
        unlink(p2);
    } else {
        printf("test_citation: no curl on PATH; the download path is not tested\n");
    }
    restore("LOOM_DATA", old_data);
    restore("XDG_CACHE_HOME", old_xdg);
    restore("HOME", old_home);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * Splits on synthetic labels.
 * ------------------------------------------------------------------------------------------- */

START_TEST(test_split_synthetic)
{
    enum { N = 100 };
    int32_t lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = i % 4; /* 25 nodes per class */
    loom_array labels = {.dtype = LOOM_I32, .ndim = 1, .shape = {N}, .data = lab};
    loom_node_split s;
    loom_error e = {0};
    ck_assert_msg(loom_split_per_class(&labels, 4, 5, 30, 50, 42, &s, &e) == LOOM_OK, "%s", e.msg);
    ck_assert_int_eq(count(&s.train), 20);
    ck_assert_int_eq(count(&s.val), 30);
    ck_assert_int_eq(count(&s.test), 50);
    loom_node_split_free(&s);
    /* Exactly all nodes used. */
    ck_assert_int_eq(loom_split_per_class(&labels, 4, 25, 0, 0, 1, &s, &e), LOOM_OK);
    ck_assert_int_eq(count(&s.train), 100);
    loom_node_split_free(&s);
    ck_assert_int_eq(loom_split_per_class(&labels, 4, 5, 80, 0, 1, &s, &e), LOOM_OK);
    loom_node_split_free(&s);

    expect_fail(loom_split_per_class(&labels, 4, 26, 0, 0, 1, &s, &e), LOOM_ERR_INVALID, &e,
                "class 0 has 25 nodes, fewer than per_class 26", "too few in class");
    ck_assert_ptr_null(s.train.data);
    expect_fail(loom_split_per_class(&labels, 4, 5, 80, 1, 1, &s, &e), LOOM_ERR_INVALID, &e,
                "80 nodes remain after training, fewer than num_val 80 + num_test 1", "too few left");
    expect_fail(loom_split_per_class(&labels, 3, 5, 1, 1, 1, &s, &e), LOOM_ERR_INVALID, &e, "label 3 of node 3", "range");
    expect_fail(loom_split_per_class(&labels, 4, -1, 1, 1, 1, &s, &e), LOOM_ERR_INVALID, &e, "per_class -1", "neg");
    /* A class with no nodes at all cannot give per_class of them. */
    expect_fail(loom_split_per_class(&labels, 5, 1, 1, 1, 1, &s, &e), LOOM_ERR_INVALID, &e, "class 4 has 0 nodes",
                "empty class");
    ck_assert_int_eq(loom_split_per_class(&labels, 5, 0, 1, 1, 1, &s, &e), LOOM_OK);
    loom_node_split_free(&s);

    /* i64 and u8 labels give the same split as i32. */
    int64_t l64[N];
    uint8_t l8[N];
    for (int i = 0; i < N; i++)
        l64[i] = l8[i] = (uint8_t)lab[i];
    loom_array a64 = {.dtype = LOOM_I64, .ndim = 1, .shape = {N}, .data = l64},
               a8 = {.dtype = LOOM_U8, .ndim = 1, .shape = {N}, .data = l8};
    loom_node_split s64, s8;
    ck_assert_int_eq(loom_split_per_class(&labels, 4, 5, 30, 50, 7, &s, &e), LOOM_OK);
    ck_assert_int_eq(loom_split_per_class(&a64, 4, 5, 30, 50, 7, &s64, &e), LOOM_OK);
    ck_assert_int_eq(loom_split_per_class(&a8, 4, 5, 30, 50, 7, &s8, &e), LOOM_OK);
    ck_assert(!memcmp(s.train.data, s64.train.data, N) && !memcmp(s.test.data, s8.test.data, N));
    loom_node_split_free(&s);
    loom_node_split_free(&s64);
    loom_node_split_free(&s8);
}
END_TEST

START_TEST(test_split_is_fixed_across_platforms)
{
    /* The generator is pure uint64 arithmetic: pin the first training nodes of one seed so a
     * change to the generator or the shuffle (which would change every published result) shows. */
    enum { N = 40 };
    int32_t lab[N];
    for (int i = 0; i < N; i++)
        lab[i] = i % 2;
    loom_array labels = {.dtype = LOOM_I32, .ndim = 1, .shape = {N}, .data = lab};
    loom_node_split s;
    loom_error e = {0};
    ck_assert_int_eq(loom_split_per_class(&labels, 2, 2, 3, 4, 12345, &s, &e), LOOM_OK);
    char got[3][64];
    for (int m = 0; m < 3; m++) {
        const uint8_t *v = (m == 0 ? s.train : m == 1 ? s.val : s.test).data;
        int n = 0;
        got[m][0] = 0;
        for (int i = 0; i < N; i++)
            if (v[i])
                n += snprintf(got[m] + n, sizeof got[m] - (size_t)n, "%s%d", n ? "," : "", i);
    }
    /* The same figures come from a Python transcription of split.c's generator and shuffle. */
    ck_assert_str_eq(got[0], "3,13,14,20");
    ck_assert_str_eq(got[1], "8,10,33");
    ck_assert_str_eq(got[2], "9,18,21,36");
    loom_node_split_free(&s);
}
END_TEST

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("test_citation: mkdtemp");
        return 1;
    }
    loom_error e = {0};
    int have_cora = loom_data_find("cora.npz", NULL, cora, sizeof cora, &e) == LOOM_OK;
    if (!have_cora)
        printf("test_citation: skipping the Cora tests: %s\n", e.msg);

    Suite *s = suite_create("citation");
    TCase *syn = tcase_create("synthetic");
    tcase_add_test(syn, test_synthetic_sparse_and_dense);
    tcase_add_test(syn, test_synthetic_errors);
    tcase_add_test(syn, test_data_find);
    tcase_add_test(syn, test_split_synthetic);
    tcase_add_test(syn, test_split_is_fixed_across_platforms);
    suite_add_tcase(s, syn);
    if (have_cora) {
        TCase *tc = tcase_create("cora");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_cora_load);
        tcase_add_test(tc, test_cora_load_via_find);
        tcase_add_test(tc, test_cora_npz_members);
        tcase_add_test(tc, test_cora_split);
        suite_add_tcase(s, tc);
    }
    int failed = lt_run_suite(s);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_citation: could not remove %s\n", tmpdir);
    if (failed)
        return 1;
    return have_cora ? 0 : 77;
}
