/* The TU graph-classification text format (loom_tu_load): small datasets written here, whose
 * loaded form is known exactly, in every layout the format allows (node attributes, node labels,
 * both, neither; CRLF, no final newline, blanks), and each malformed file with its message. */
#include <check.h>
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static char tmpdir[] = "/tmp/loom_test_tu_XXXXXX";

/* Writes len bytes of text to dir/T<suffix>. */
static void write_file(const char *dir, const char *suffix, const char *text, size_t len)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/T%s", dir, suffix);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* Writes files[0], files[2], ... (suffixes of dataset T) with the contents files[1], files[3], ...
 * (a NULL content writes nothing) into a new directory; returns its path, valid until the next call. */
static const char *make_dataset(const char *const *files)
{
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s/dXXXXXX", tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    for (int i = 0; files[i]; i += 2)
        if (files[i + 1])
            write_file(dir, files[i], files[i + 1], strlen(files[i + 1]));
    return dir;
}

static loom_samples load(const char *const *files)
{
    loom_samples s;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_msg(loom_tu_load(make_dataset(files), "T", &s, &e) == LOOM_OK, "%s", e.msg);
    return s;
}

static void expect_i64(const int64_t *got, const int64_t *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s[%d] is %lld, expected %lld", what, i, (long long)got[i], (long long)want[i]);
}

static void expect_i32(const int32_t *got, const int32_t *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s[%d] is %d, expected %d", what, i, got[i], want[i]);
}

static void expect_f32(const float *got, const float *want, int n, const char *what)
{
    for (int i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s[%d] is %g, expected %g", what, i, (double)got[i], (double)want[i]);
}

/* Three graphs of 3, 2 and 4 nodes. The edges of graph 3 and 2 come between those of graph 1, to
 * show that each graph keeps its edges in file order. Graph labels 5, -2, 5 become 1, 0, 1; node
 * labels 0, 2, 7 become one-hot columns 0, 1, 2 after the two attributes. */
static const char full_a[] = "1, 2\n2, 1\n6, 7\n4, 5\n2, 3\n7, 6\n5, 4\n3, 2\n9, 8\n8,9\n";
static const char full_indicator[] = "1\n1\n1\n2\n2\n3\n3\n3\n3\n";
static const char full_graph_labels[] = "5\n-2\n5\n";
static const char full_node_labels[] = "0\n2\n0\n7\n2\n0\n0\n7\n2\n";
static const char full_attributes[] = "0.5, -1\n1e1,2\n 3.0 ,4\n-0.25, 0\n6, 7\n8, 9\n10, 11\n12, 13\n14, 15\n";

static const int64_t full_node_off[] = {0, 3, 5, 9}, full_edge_off[] = {0, 4, 6, 10};
static const int32_t full_src[] = {0, 1, 1, 2, 0, 1, 0, 1, 3, 2}, full_dst[] = {1, 0, 2, 1, 1, 0, 1, 0, 2, 3};
static const int32_t full_graph_y[] = {1, 0, 1};

static const float full_x[] = {
    0.5f, -1, 1, 0, 0, /* */ 10, 2, 0, 1, 0, /* */ 3, 4, 1, 0, 0,                      /* graph 1 */
    -0.25f, 0, 0, 0, 1, /* */ 6, 7, 0, 1, 0,                                           /* graph 2 */
    8, 9, 1, 0, 0, /* */ 10, 11, 1, 0, 0, /* */ 12, 13, 0, 0, 1, /* */ 14, 15, 0, 1, 0, /* graph 3 */
};

/* Loads files, a layout of the three graphs above, and checks every array: x is [9, cols]. */
static void check_full(const char *const *files, int64_t cols, const float *x)
{
    loom_samples s = load(files);
    ck_assert_int_eq(s.count, 3);
    expect_i64(s.node_off, full_node_off, 4, "node_off");
    expect_i64(s.edge_off, full_edge_off, 4, "edge_off");
    expect_i32(s.src, full_src, 10, "src");
    expect_i32(s.dst, full_dst, 10, "dst");
    ck_assert_int_eq(s.num_classes, 2);
    expect_i32(s.graph_y, full_graph_y, 3, "graph_y");
    ck_assert_int_eq(s.node_features, cols);
    expect_f32(s.x, x, 9 * (int)cols, "x");
    ck_assert_int_eq(s.edge_features, 0);
    ck_assert_ptr_null(s.edge_attr);
    ck_assert_ptr_null(s.edge_y);
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_msg(loom_samples_validate(&s, &e) == LOOM_OK, "%s", e.msg);
    loom_samples_free(&s);
    ck_assert_ptr_null(s.x);
}

START_TEST(test_attributes_and_node_labels)
{
    check_full((const char *const[]){"_A.txt", full_a, "_graph_indicator.txt", full_indicator, "_graph_labels.txt",
                                     full_graph_labels, "_node_labels.txt", full_node_labels, "_node_attributes.txt",
                                     full_attributes, NULL},
               5, full_x);
}
END_TEST

START_TEST(test_node_labels_only)
{
    static const float x[] = {1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0};
    check_full((const char *const[]){"_A.txt", full_a, "_graph_indicator.txt", full_indicator, "_graph_labels.txt",
                                     full_graph_labels, "_node_labels.txt", full_node_labels, NULL},
               3, x);
}
END_TEST

START_TEST(test_attributes_only)
{
    static const float x[] = {0.5f, -1, 10, 2, 3, 4, -0.25f, 0, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    check_full((const char *const[]){"_A.txt", full_a, "_graph_indicator.txt", full_indicator, "_graph_labels.txt",
                                     full_graph_labels, "_node_attributes.txt", full_attributes, NULL},
               2, x);
}
END_TEST

/* Neither node file: a column of ones. The edge and graph files Loom does not read are ignored. */
START_TEST(test_ones_without_node_files)
{
    static const float ones[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    check_full((const char *const[]){"_A.txt", full_a, "_graph_indicator.txt", full_indicator, "_graph_labels.txt",
                                     full_graph_labels, "_edge_labels.txt", "x\n", "_edge_attributes.txt", "?\n",
                                     "_graph_attributes.txt", "nan\n", NULL},
               1, ones);

    /* No edges at all: graphs of isolated nodes. */
    loom_samples s =
        load((const char *const[]){"_A.txt", "", "_graph_indicator.txt", "1\n2\n2\n", "_graph_labels.txt", "0\n1\n", NULL});
    ck_assert_int_eq(s.count, 2);
    static const int64_t node_off[] = {0, 1, 3}, edge_off[] = {0, 0, 0};
    expect_i64(s.node_off, node_off, 3, "node_off");
    expect_i64(s.edge_off, edge_off, 3, "edge_off");
    loom_samples_free(&s);
}
END_TEST

START_TEST(test_negative_graph_labels)
{
    loom_samples s = load((const char *const[]){"_A.txt", "1, 2\n2, 1\n", "_graph_indicator.txt", "1\n1\n2\n3\n4\n",
                                                "_graph_labels.txt", "-1\n1\n-1\n+1\n", NULL});
    ck_assert_int_eq(s.count, 4);
    ck_assert_int_eq(s.num_classes, 2);
    static const int32_t y[] = {0, 1, 0, 1};
    expect_i32(s.graph_y, y, 4, "graph_y");
    loom_samples_free(&s);
}
END_TEST

/* CRLF line ends, no final newline, trailing blanks, and blank lines at the end of a file. */
START_TEST(test_line_ends)
{
    check_full((const char *const[]){
                   "_A.txt", "1, 2\r\n2, 1\r\n6, 7\r\n4, 5  \r\n2, 3\r\n7, 6\t\r\n5, 4\r\n3, 2\r\n9, 8\r\n8,9",
                   "_graph_indicator.txt", "1\r\n1\r\n1\r\n2\r\n2\r\n3\r\n3\r\n3\r\n3",
                   "_graph_labels.txt", "5 \r\n-2\r\n5\r\n\r\n  \r\n",
                   "_node_labels.txt", "0\r\n2\r\n0\r\n7\r\n2\r\n0\r\n0\r\n7\r\n2\n\n",
                   "_node_attributes.txt", "0.5, -1\r\n1e1,2\r\n 3.0 ,4\r\n-0.25, 0\r\n6, 7\r\n8, 9\r\n10, 11\r\n12, 13\r\n14, 15",
                   NULL},
               5, full_x);
}
END_TEST

/* No limit on a line's length: one node of 20,000 attributes (a line of about 200 KB). */
START_TEST(test_long_line)
{
    enum { F = 20000 };
    char *line = malloc(F * 10 + 2);
    ck_assert_ptr_nonnull(line);
    size_t n = 0;
    for (int k = 0; k < F; k++)
        n += (size_t)sprintf(line + n, "%s%d.5", k ? ", " : "", k);
    strcpy(line + n, "\n");
    loom_samples s = load((const char *const[]){"_A.txt", "1, 1\n", "_graph_indicator.txt", "1\n", "_graph_labels.txt", "3\n",
                                                "_node_attributes.txt", line, NULL});
    free(line);
    ck_assert_int_eq(s.node_features, F);
    ck_assert(s.x[0] == 0.5f && s.x[F - 1] == F - 1 + 0.5f);
    ck_assert_int_eq(s.num_classes, 1);
    ck_assert_int_eq(s.graph_y[0], 0);
    loom_samples_free(&s);
}
END_TEST

typedef struct {
    const char *file;   /* the suffix whose content replaces that of the full dataset */
    const char *text;   /* NULL: the file is left out */
    loom_status status;
    const char *needle; /* in the message */
} bad_case;

static const bad_case bad_cases[] = {
    /* DS_A.txt */
    {"_A.txt", "1, 2\n2, x\n", LOOM_ERR_FORMAT, "T_A.txt: line 2, column 4: expected a node id (an integer), got 'x'"},
    {"_A.txt", "1, 2\n2x, 1\n", LOOM_ERR_FORMAT, "T_A.txt: line 2, column 1: expected a node id (an integer), got '2x'"},
    {"_A.txt", "1, 2\n0, 1\n", LOOM_ERR_FORMAT,
     "T_A.txt: line 2, column 1: expected a node id in [1, 9] (the nodes of T_graph_indicator.txt), got 0"},
    {"_A.txt", "1, 2\n9, 10\n", LOOM_ERR_FORMAT, "T_A.txt: line 2, column 4: expected a node id in [1, 9]"},
    {"_A.txt", "1, 2\n-1, 2\n", LOOM_ERR_FORMAT, "T_A.txt: line 2, column 1: expected a node id in [1, 9]"},
    {"_A.txt", "1, 2\n3, 4\n", LOOM_ERR_FORMAT,
     "T_A.txt: line 2, column 4: node 3 is in graph 1 but node 4 in graph 2: expected an edge within one graph"},
    {"_A.txt", "1 2\n", LOOM_ERR_FORMAT, "T_A.txt: line 1, column 3: expected ',' after the first node id, got '2'"},
    {"_A.txt", "1,\n", LOOM_ERR_FORMAT, "T_A.txt: line 1, column 3: expected a node id (an integer), got the end of the line"},
    {"_A.txt", "1, 2, 3\n", LOOM_ERR_FORMAT,
     "T_A.txt: line 1, column 5: expected the end of the line after the second node id, got ','"},
    {"_A.txt", "1, 2\n\n2, 1\n", LOOM_ERR_FORMAT,
     "T_A.txt: line 2, column 1: expected a node id (an integer), got an empty line"},
    {"_A.txt", "1, 99999999999999999999\n", LOOM_ERR_FORMAT,
     "T_A.txt: line 1, column 4: expected a node id, got '99999999999999999999': outside the range of a 64-bit integer"},
    {"_A.txt", "1, 9223372036854775807\n", LOOM_ERR_FORMAT, "T_A.txt: line 1, column 4: expected a node id in [1, 9]"},
    {"_A.txt", NULL, LOOM_ERR_IO, "T_A.txt: No such file or directory"},
    /* DS_graph_indicator.txt */
    {"_graph_indicator.txt", "", LOOM_ERR_FORMAT,
     "T_graph_indicator.txt: line 1, column 1: expected a graph id, got the end of the file: a dataset has at least one graph"},
    {"_graph_indicator.txt", "\n \n", LOOM_ERR_FORMAT,
     "T_graph_indicator.txt: line 1, column 1: expected a graph id, got the end"},
    {"_graph_indicator.txt", "1\n1\n1\n2\n2\n3\n3\n2\n3\n", LOOM_ERR_FORMAT,
     "T_graph_indicator.txt: line 8, column 1: expected graph id 3 or 4, got 2: the nodes of a graph are contiguous"},
    {"_graph_indicator.txt", "1\n1\n1\n2\n2\n1\n3\n3\n3\n", LOOM_ERR_FORMAT,
     "T_graph_indicator.txt: line 6, column 1: expected graph id 2 or 3, got 1"},
    {"_graph_indicator.txt", "1\n1\n1\n3\n3\n3\n3\n3\n3\n", LOOM_ERR_FORMAT,
     "T_graph_indicator.txt: line 4, column 1: expected graph id 1 or 2, got 3"},
    {"_graph_indicator.txt", "0\n1\n1\n2\n2\n3\n3\n3\n3\n", LOOM_ERR_FORMAT,
     "T_graph_indicator.txt: line 1, column 1: expected graph id 1 on the first line, got 0"},
    {"_graph_indicator.txt", "1\n1\n1\n2\n2\n3\n3\n3\n3.0\n", LOOM_ERR_FORMAT,
     "T_graph_indicator.txt: line 9, column 1: expected a graph id (an integer), got '3.0'"},
    {"_graph_indicator.txt", "1\n1\n1\n2\n2\n3\n3\n3\n3 3\n", LOOM_ERR_FORMAT,
     "T_graph_indicator.txt: line 9, column 3: expected the end of the line after the graph id, got '3'"},
    {"_graph_indicator.txt", NULL, LOOM_ERR_IO, "T_graph_indicator.txt: No such file or directory"},
    /* DS_graph_labels.txt */
    {"_graph_labels.txt", "5\n-2\n", LOOM_ERR_FORMAT,
     "T_graph_labels.txt: line 3, column 1: expected the label of graph 3, got the end of the file: "
     "T_graph_indicator.txt has 3 graphs"},
    {"_graph_labels.txt", "", LOOM_ERR_FORMAT, "T_graph_labels.txt: line 1, column 1: expected the label of graph 1"},
    {"_graph_labels.txt", "5\n-2\n5\n1\n", LOOM_ERR_FORMAT,
     "T_graph_labels.txt: line 4, column 1: expected the end of the file after 3 lines, one per graph of "
     "T_graph_indicator.txt, got '1'"},
    {"_graph_labels.txt", "5\n-2\nfive\n", LOOM_ERR_FORMAT,
     "T_graph_labels.txt: line 3, column 1: expected a graph label (an integer), got 'five'"},
    {"_graph_labels.txt", NULL, LOOM_ERR_IO, "T_graph_labels.txt: No such file or directory"},
    /* DS_node_labels.txt */
    {"_node_labels.txt", "0\n2\n0\n7\n2\n0\n0\n7\n", LOOM_ERR_FORMAT,
     "T_node_labels.txt: line 9, column 1: expected the label of node 9, got the end of the file: "
     "T_graph_indicator.txt has 9 nodes"},
    {"_node_labels.txt", "0\n2\n0\n7\n2\n0\n0\n7\n2\n2\n", LOOM_ERR_FORMAT,
     "T_node_labels.txt: line 10, column 1: expected the end of the file after 9 lines, one per node of T_graph_indicator.txt"},
    {"_node_labels.txt", "", LOOM_ERR_FORMAT, "T_node_labels.txt: line 1, column 1: expected the label of node 1"},
    {"_node_labels.txt", "0\n2\n0.5\n", LOOM_ERR_FORMAT,
     "T_node_labels.txt: line 3, column 1: expected a node label (an integer), got '0.5'"},
    /* DS_node_attributes.txt */
    {"_node_attributes.txt", "0.5, -1\n1e1,2\n 3.0 ,4, 5\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 3, column 10: expected 2 attributes, as on line 1, got more: '5'"},
    {"_node_attributes.txt", "0.5, -1\n1e1\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 2, column 4: expected 2 attributes, as on line 1, got 1"},
    {"_node_attributes.txt", "0.5, -1\n1e1, nan\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 2, column 6: expected attribute 2 to be a finite number, got 'nan'"},
    {"_node_attributes.txt", "-inf, 1\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 1, column 1: expected attribute 1 to be a finite number, got '-inf'"},
    {"_node_attributes.txt", "1e39, 1\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 1, column 1: expected attribute 1 within f32's range, got '1e39'"},
    {"_node_attributes.txt", "0.5, -1\n1.2.3, 0\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 2, column 1: expected attribute 1 (a real number), got '1.2.3'"},
    {"_node_attributes.txt", "0.5, -1\n1,,2\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 2, column 3: expected attribute 2 (a real number), got ','"},
    {"_node_attributes.txt", "0.5 -1\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 1, column 5: expected ',' or the end of the line after attribute 1, got '-1'"},
    {"_node_attributes.txt", "0.5, -1\n1, 2\n", LOOM_ERR_FORMAT,
     "T_node_attributes.txt: line 3, column 1: expected the attributes of node 3, got the end of the file"},
    {"_node_attributes.txt", "", LOOM_ERR_FORMAT, "T_node_attributes.txt: line 1, column 1: expected the attributes of node 1"},
};

START_TEST(test_bad_files)
{
    const bad_case *c = &bad_cases[_i];
    const char *files[] = {"_A.txt", full_a, "_graph_indicator.txt", full_indicator, "_graph_labels.txt", full_graph_labels,
                           "_node_labels.txt", full_node_labels, "_node_attributes.txt", full_attributes, NULL};
    for (int k = 0; files[k]; k += 2)
        if (!strcmp(files[k], c->file))
            files[k + 1] = c->text;
    const char *dir = make_dataset(files);
    loom_samples s;
    loom_error e = LOOM_ERROR_INIT;
    loom_status st = loom_tu_load(dir, "T", &s, &e);
    ck_assert_msg(st == c->status, "case %d (%s): status %d (%s), expected %d", _i, c->file, st, e.msg, c->status);
    ck_assert_msg(strstr(e.msg, c->needle), "case %d: message '%s' lacks '%s'", _i, e.msg, c->needle);
    ck_assert_msg(s.count == 0 && !s.node_off && !s.edge_off && !s.src && !s.x && !s.graph_y, "case %d: output not cleared", _i);
}
END_TEST

/* A NUL byte is refused where it stands, not taken as the end of the line. */
START_TEST(test_nul_byte)
{
    static const char a[] = "1, 2\n2, 1\0 junk\n";
    const char *dir = make_dataset((const char *const[]){"_graph_indicator.txt", full_indicator, "_graph_labels.txt",
                                                         full_graph_labels, NULL});
    write_file(dir, "_A.txt", a, sizeof a - 1);
    loom_samples s;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_tu_load(dir, "T", &s, &e), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "T_A.txt: line 2, column 5: expected text, got a NUL byte"), "%s", e.msg);
}
END_TEST

/* A node label file of more distinct labels than a one-hot feature takes is refused before the
 * features (nodes x labels) are allocated: 5,000 nodes of one graph, each its own label. */
START_TEST(test_too_many_node_labels)
{
    enum { N = 5000 };
    static char ind[N * 2 + 1], lab[N * 6 + 1];
    char *pi = ind, *pl = lab;
    for (int i = 0; i < N; i++) {
        pi += sprintf(pi, "1\n");
        pl += sprintf(pl, "%d\n", i);
    }
    const char *dir = make_dataset((const char *const[]){"_A.txt", "1, 2\n", "_graph_indicator.txt", ind, "_graph_labels.txt", "0\n",
                                                         "_node_labels.txt", lab, NULL});
    loom_samples s;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_tu_load(dir, "T", &s, &e), LOOM_ERR_UNSUPPORTED);
    ck_assert_msg(strstr(e.msg, "5000 distinct node labels, over the 4096 a one-hot node feature takes"), "%s", e.msg);
}
END_TEST

START_TEST(test_bad_calls)
{
    loom_samples s;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_tu_load(NULL, "T", &s, &e), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_tu_load(tmpdir, "", &s, &e), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_tu_load(tmpdir, "T", NULL, &e), LOOM_ERR_INVALID);
    /* A missing directory: the first file cannot be opened. */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/absent", tmpdir);
    ck_assert_int_eq(loom_tu_load(dir, "T", &s, NULL), LOOM_ERR_IO);
    ck_assert_int_eq(loom_tu_load(dir, "T", &s, &e), LOOM_ERR_IO);
    ck_assert_msg(strstr(e.msg, "cannot open ") && strstr(e.msg, "/absent/T_graph_indicator.txt: No such file or directory"),
                  "%s", e.msg);
}
END_TEST

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("test_tu: mkdtemp");
        return 1;
    }
    Suite *s = suite_create("tu");
    TCase *tc = tcase_create("tu");
    tcase_add_test(tc, test_attributes_and_node_labels);
    tcase_add_test(tc, test_node_labels_only);
    tcase_add_test(tc, test_attributes_only);
    tcase_add_test(tc, test_ones_without_node_files);
    tcase_add_test(tc, test_negative_graph_labels);
    tcase_add_test(tc, test_line_ends);
    tcase_add_test(tc, test_long_line);
    tcase_add_loop_test(tc, test_bad_files, 0, (int)(sizeof bad_cases / sizeof *bad_cases));
    tcase_add_test(tc, test_nul_byte);
    tcase_add_test(tc, test_too_many_node_labels);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);
    int failed = lt_run_suite(s);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_tu: could not remove %s\n", tmpdir);
    return failed;
}
