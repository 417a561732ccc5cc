/* Placements: parsing, canonical printing and round trips (fixed cases and many generated ones),
 * accessors, equality and overlap, every parse error with its message, and the checks against a
 * run. */
#include <check.h>
#include <loom/loom.h>
#include <loom/sbp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* A small deterministic generator (splitmix64): the generated cases are the same on every run. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}
static int rng_int(uint64_t *s, int n) { return (int)(rng_next(s) % (uint64_t)n); }

/* print(p) into a static-size buffer, checking the returned length. */
static void pstr(const loom_placement *p, char *buf, size_t len)
{
    size_t n = loom_placement_str(p, buf, len);
    ck_assert_uint_lt(n, len);
    ck_assert_uint_eq(n, strlen(buf));
}

/* Parses s, which must print as canon, re-parse equal and print the same again. */
static loom_placement *roundtrip(const char *s, const char *canon)
{
    loom_error err = {0};
    loom_placement *p = loom_placement_parse(s, &err);
    ck_assert_msg(p, "parse '%s': %s", s, err.msg);
    static char a[8300], b[8300];
    pstr(p, a, sizeof a);
    ck_assert_msg(!strcmp(a, canon), "'%s' printed as '%s', expected '%s'", s, a, canon);
    loom_placement *q = loom_placement_parse(a, &err);
    ck_assert_msg(q, "re-parse '%s': %s", a, err.msg);
    ck_assert(loom_placement_equal(p, q));
    pstr(q, b, sizeof b);
    ck_assert_str_eq(a, b);
    loom_placement_free(q);
    return p;
}

/* ---- placements: fixed cases -------------------------------------------------------------- */

START_TEST(test_placement_examples)
{
    static const struct {
        const char *in, *canon;
        loom_device_kind kind;
        int ndev, nranks, hdim, h0, h1;
    } cases[] = {
        {"cpu:0", "cpu:0", LOOM_DEVICE_CPU, 1, 1, 1, 1, 0},
        {"cpu:0-3", "cpu:0-3", LOOM_DEVICE_CPU, 4, 1, 1, 4, 0},
        {"cuda:0-1", "cuda:0-1", LOOM_DEVICE_CUDA, 2, 1, 1, 2, 0},
        {"cuda:0,2,5", "cuda:0,2,5", LOOM_DEVICE_CUDA, 3, 1, 1, 3, 0},
        {"cpu:0-1,3", "cpu:0-1,3", LOOM_DEVICE_CPU, 3, 1, 1, 3, 0},
        {"cpu:0,1,2,3", "cpu:0-3", LOOM_DEVICE_CPU, 4, 1, 1, 4, 0},
        {"cpu:0-1,2-3", "cpu:0-3", LOOM_DEVICE_CPU, 4, 1, 1, 4, 0},
        {"cpu:0,1", "cpu:0-1", LOOM_DEVICE_CPU, 2, 1, 1, 2, 0},
        {"cuda:3-3", "cuda:3", LOOM_DEVICE_CUDA, 1, 1, 1, 1, 0},
        {"cpu:0-127", "cpu:0-127", LOOM_DEVICE_CPU, 128, 1, 1, 128, 0},
        {"cpu:10,12-13,15", "cpu:10,12-13,15", LOOM_DEVICE_CPU, 4, 1, 1, 4, 0},
        {"@0-1/cuda:0-3", "@0-1/cuda:0-3", LOOM_DEVICE_CUDA, 8, 2, 2, 2, 4},
        {"@0/cpu:0-3", "@0/cpu:0-3", LOOM_DEVICE_CPU, 4, 1, 2, 1, 4},
        {"@0,2/cuda:0-1", "@0,2/cuda:0-1", LOOM_DEVICE_CUDA, 4, 2, 2, 2, 2},
        {"@0,1,2/cpu:5", "@0-2/cpu:5", LOOM_DEVICE_CPU, 3, 3, 2, 3, 1},
        {"@65535/cpu:127", "@65535/cpu:127", LOOM_DEVICE_CPU, 1, 1, 2, 1, 1},
        {"@0-9,100-101/cuda:7", "@0-9,100-101/cuda:7", LOOM_DEVICE_CUDA, 12, 12, 2, 12, 1},
        {"cpu:0-3[2,2]", "cpu:0-3[2,2]", LOOM_DEVICE_CPU, 4, 1, 2, 2, 2},
        {"cpu:0,1,2,3[1,4]", "cpu:0-3[1,4]", LOOM_DEVICE_CPU, 4, 1, 2, 1, 4},
        {"cpu:0-3[4,1]", "cpu:0-3[4,1]", LOOM_DEVICE_CPU, 4, 1, 2, 4, 1},
        {"cpu:0-1[2,1]", "cpu:0-1[2,1]", LOOM_DEVICE_CPU, 2, 1, 2, 2, 1},
        {"cpu:0-5[3,2]", "cpu:0-5[3,2]", LOOM_DEVICE_CPU, 6, 1, 2, 3, 2},
        {"cuda:0-7[2,4]", "cuda:0-7[2,4]", LOOM_DEVICE_CUDA, 8, 1, 2, 2, 4},
        {"cuda:0,2,4-6,9[2,3]", "cuda:0,2,4-6,9[2,3]", LOOM_DEVICE_CUDA, 6, 1, 2, 2, 3},
        {"cpu:5[1,1]", "cpu:5[1,1]", LOOM_DEVICE_CPU, 1, 1, 2, 1, 1},
        {"cpu:0-127[8,16]", "cpu:0-127[8,16]", LOOM_DEVICE_CPU, 128, 1, 2, 8, 16},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_placement *p = roundtrip(cases[i].in, cases[i].canon);
        int dims[2] = {0, 0};
        ck_assert_int_eq(loom_placement_kind(p), cases[i].kind);
        ck_assert_int_eq(loom_placement_ndevices(p), cases[i].ndev);
        ck_assert_int_eq(loom_placement_nranks(p), cases[i].nranks);
        ck_assert_int_eq(loom_placement_hierarchy(p, dims), cases[i].hdim);
        ck_assert_int_eq(dims[0], cases[i].h0);
        if (cases[i].hdim == 2)
            ck_assert_int_eq(dims[1], cases[i].h1);
        ck_assert_int_eq(loom_placement_has_ranks(p), cases[i].in[0] == '@');
        ck_assert_int_eq(loom_placement_ndevices_per_rank(p) * loom_placement_nranks(p), loom_placement_ndevices(p));
        loom_placement_free(p);
    }
    /* The whole rank space: 8M devices, stored as two lists. */
    loom_placement *big = roundtrip("@0-65535/cpu:0-127", "@0-65535/cpu:0-127");
    ck_assert_int_eq(loom_placement_ndevices(big), 65536 * 128);
    int r;
    ck_assert_int_eq(loom_placement_device(big, 65536 * 128 - 1, &r), 127);
    ck_assert_int_eq(r, 65535);
    loom_placement_free(big);
}
END_TEST

START_TEST(test_placement_accessors)
{
    loom_placement *p = roundtrip("@0,2/cuda:1,3-4", "@0,2/cuda:1,3-4");
    static const int want_rank[6] = {0, 0, 0, 2, 2, 2}, want_dev[6] = {1, 3, 4, 1, 3, 4};
    for (int i = 0; i < 6; i++) {
        int r = -7;
        ck_assert_int_eq(loom_placement_device(p, i, &r), want_dev[i]);
        ck_assert_int_eq(r, want_rank[i]);
        ck_assert_int_eq(loom_placement_device(p, i, NULL), want_dev[i]);
        ck_assert_int_eq(loom_placement_find(p, want_rank[i], want_dev[i]), i);
    }
    ck_assert_int_eq(loom_placement_device(p, 6, NULL), -1);
    ck_assert_int_eq(loom_placement_device(p, -1, NULL), -1);
    ck_assert_int_eq(loom_placement_find(p, 1, 1), -1);   /* rank not there */
    ck_assert_int_eq(loom_placement_find(p, 0, 2), -1);   /* device not there */
    ck_assert_int_eq(loom_placement_find(p, 3, 1), -1);   /* past the last rank */
    ck_assert_int_eq(loom_placement_find(p, 0, 500), -1); /* past any index */
    ck_assert_int_eq(loom_placement_rank(p, 0), 0);
    ck_assert_int_eq(loom_placement_rank(p, 1), 2);
    ck_assert_int_eq(loom_placement_rank(p, 2), -1);
    ck_assert_int_eq(loom_placement_local_index(p, 2), 4);
    ck_assert_int_eq(loom_placement_local_index(p, 3), -1);
    ck_assert_str_eq(loom_device_kind_name(loom_placement_kind(p)), "cuda");
    ck_assert_str_eq(loom_device_kind_name(LOOM_DEVICE_CPU), "cpu");
    ck_assert_str_eq(loom_device_kind_name(LOOM_DEVICE_KIND_COUNT), "?");

    /* Without "@": rank 0, hierarchy 1-D. */
    loom_placement *c = roundtrip("cpu:2-3", "cpu:2-3");
    int r = -1;
    ck_assert_int_eq(loom_placement_device(c, 1, &r), 3);
    ck_assert_int_eq(r, 0);
    ck_assert_int_eq(loom_placement_rank(c, 0), 0);
    ck_assert_int_eq(loom_placement_find(c, 0, 2), 0);

    /* Copies are equal and independent. */
    loom_placement *d = loom_placement_copy(p);
    ck_assert(loom_placement_equal(d, p));
    loom_placement_free(p);
    char buf[64];
    pstr(d, buf, sizeof buf);
    ck_assert_str_eq(buf, "@0,2/cuda:1,3-4");
    loom_placement_free(d);

    /* Truncated prints: snprintf-style length, always terminated. */
    ck_assert_uint_eq(loom_placement_str(c, NULL, 0), 7);
    ck_assert_uint_eq(loom_placement_str(c, buf, 4), 7);
    ck_assert_str_eq(buf, "cpu");
    ck_assert_uint_eq(loom_placement_str(c, buf, 1), 7);
    ck_assert_str_eq(buf, "");
    loom_placement_free(c);

    /* NULL is safe everywhere. */
    int dims[2];
    ck_assert_int_eq(loom_placement_ndevices(NULL), 0);
    ck_assert_int_eq(loom_placement_hierarchy(NULL, dims), 0);
    ck_assert_int_eq(loom_placement_device(NULL, 0, NULL), -1);
    ck_assert_int_eq(loom_placement_find(NULL, 0, 0), -1);
    ck_assert_ptr_null(loom_placement_copy(NULL));
    ck_assert(!loom_placement_overlaps(NULL, NULL));
    loom_placement_free(NULL);
}
END_TEST

START_TEST(test_placement_equal_overlap)
{
    static const struct {
        const char *a, *b;
        int equal, overlap;
    } cases[] = {
        {"cpu:0-3", "cpu:0,1,2,3", 1, 1},
        {"cpu:0-3", "cpu:3-5", 0, 1},
        {"cpu:0-3", "cpu:4-7", 0, 0},
        {"cpu:0-3", "cuda:0-3", 0, 0},      /* kinds differ: no shared device */
        {"cpu:0-3", "@0/cpu:0-3", 0, 1},    /* same devices, hierarchies [4] and [1, 4] */
        {"cpu:0-3", "@1/cpu:0-3", 0, 0},    /* without "@" is rank 0 */
        {"@0-1/cuda:0-3", "@1-2/cuda:3", 0, 1},
        {"@0-1/cuda:0-3", "@2-3/cuda:0-3", 0, 0},
        {"@0,2/cuda:0", "@1,3/cuda:0", 0, 0},
        {"@0-1/cuda:0-1", "@0-1/cuda:2-3", 0, 0},
        {"@0-1/cuda:0-1", "@0,1/cuda:0,1", 1, 1},
        {"cpu:64", "cpu:64,127", 0, 1},     /* the second word of the device set */
        {"cpu:63", "cpu:64", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_placement *a = loom_placement_parse(cases[i].a, NULL), *b = loom_placement_parse(cases[i].b, NULL);
        ck_assert(a && b);
        ck_assert_msg(loom_placement_equal(a, b) == cases[i].equal, "equal('%s', '%s')", cases[i].a, cases[i].b);
        ck_assert_msg(loom_placement_equal(b, a) == cases[i].equal, "equal('%s', '%s')", cases[i].b, cases[i].a);
        ck_assert_msg(loom_placement_overlaps(a, b) == cases[i].overlap, "overlaps('%s', '%s')", cases[i].a, cases[i].b);
        ck_assert_msg(loom_placement_overlaps(b, a) == cases[i].overlap, "overlaps('%s', '%s')", cases[i].b, cases[i].a);
        ck_assert(loom_placement_overlaps(a, a) && loom_placement_equal(a, a));
        loom_placement_free(a);
        loom_placement_free(b);
    }
}
END_TEST

/* Every parse error: the status, the string quoted in the message, and what was expected. */
START_TEST(test_placement_errors)
{
    static const struct {
        const char *in, *quoted, *needle;
    } cases[] = {
        {"", "''", "the string is empty; expected a placement such as 'cpu:0-3'"},
        {"tpu:0", "'tpu:0'", "unknown device kind 'tpu' at offset 0; expected 'cpu' or 'cuda'"},
        {"CPU:0", "'CPU:0'", "unknown device kind 'CPU' at offset 0"},
        {"gpu0", "'gpu0'", "unknown device kind 'gpu' at offset 0"},
        {"cpu0", "'cpu0'", "expected ':' after 'cpu' at offset 3, found '0'"},
        {"cuda", "'cuda'", "expected ':' after 'cuda' at offset 4, found the end"},
        {"0-3", "'0-3'", "expected a device kind ('cpu' or 'cuda') at offset 0, found '0'"},
        {"cpu:", "'cpu:'", "the device list is empty: expected a device index at offset 4"},
        {"cuda:0-", "'cuda:0-'", "expected a device index at offset 7, found the end"},
        {"cpu:0,", "'cpu:0,'", "expected a device index at offset 6, found the end"},
        {"cpu:,0", "'cpu:,0'", "expected a device index at offset 4, found ','"},
        {"cpu:0--1", "'cpu:0--1'", "negative device index at offset 6"},
        {"cpu:3-1", "'cpu:3-1'", "range 3-1 at offset 4 is descending; write 1-3"},
        {"cpu:0,0", "'cpu:0,0'", "device index 0 at offset 6 is listed twice"},
        {"cpu:0-2,1", "'cpu:0-2,1'", "device index 1 at offset 8 is listed twice"},
        {"cpu:0-2,1-4", "'cpu:0-2,1-4'", "range 1-4 at offset 8 lists device index 1 twice"},
        {"cuda:2,0", "'cuda:2,0'", "the list must be increasing: device index 0 at offset 7 comes after 2"},
        {"@1,0/cpu:0", "'@1,0/cpu:0'", "the list must be increasing: rank 0 at offset 3 comes after 1"},
        {"@0-3,2/cpu:0", "'@0-3,2/cpu:0'", "rank 2 at offset 5 is listed twice"},
        {"cpu:-1", "'cpu:-1'", "negative device index at offset 4"},
        {"@-1/cpu:0", "'@-1/cpu:0'", "negative rank at offset 1"},
        {"cpu:128", "'cpu:128'", "device index 128 at offset 4 is over 127 (the actor id has 7 bits for it)"},
        {"cuda:0-200", "'cuda:0-200'", "device index 200 at offset 7 is over 127"},
        {"cpu:99999999999999999999999999", "'cpu:99999999999999999999999999'",
         "device index 99999999999999999999... at offset 4 is over 127"},
        {"@65536/cpu:0", "'@65536/cpu:0'", "rank 65536 at offset 1 is over 65535 (the actor id has 16 bits for it)"},
        {"cpu:01", "'cpu:01'", "device index '01' at offset 4 has a leading zero; write 1"},
        {"cpu:0-3x", "'cpu:0-3x'", "unexpected 'x' at offset 7 after the device list"},
        {"cpu:0-3/", "'cpu:0-3/'", "unexpected '/' at offset 7 after the device list"},
        {"cpu:0;cuda:1", "'cpu:0;cuda:1'", "unexpected ';' at offset 5 after the device list"},
        {"cpu:0-3@0", "'cpu:0-3@0'", "unexpected '@' at offset 7"},
        {"cpu: 0", "'cpu: 0'", "whitespace at offset 4; a placement has no spaces (did you mean 'cpu:0'?)"},
        {" cpu:0-3", "' cpu:0-3'", "whitespace at offset 0"},
        {"cpu:0-3\n", "'cpu:0-3\\x0a'", "whitespace at offset 7; a placement has no spaces (did you mean 'cpu:0-3'?)"},
        {"@0-1 / cuda:0", "'@0-1 / cuda:0'", "did you mean '@0-1/cuda:0'?"},
        {"cpu:0,cuda:1", "'cpu:0,cuda:1'", "a second device kind 'cuda' at offset 6 in a cpu placement (a placement has one kind)"},
        {"@0/cuda:0,cpu:1", "'@0/cuda:0,cpu:1'", "a second device kind 'cpu' at offset 10 in a cuda placement"},
        {"cpu:0,x", "'cpu:0,x'", "expected a device index at offset 6, found 'x'"},
        {"@", "'@'", "the rank list is empty: expected a rank at offset 1"},
        {"@/cpu:0", "'@/cpu:0'", "the rank list is empty: expected a rank at offset 1"},
        {"@0-1cuda:0", "'@0-1cuda:0'", "expected '/' after the rank list at offset 4, found 'c'"},
        {"@0-1", "'@0-1'", "expected '/' after the rank list at offset 4, found the end"},
        {"@0-1/", "'@0-1/'", "expected a device kind ('cpu' or 'cuda') at offset 5, found the end"},
        {"@0-1/cuda:", "'@0-1/cuda:'", "the device list is empty: expected a device index at offset 10"},
        {"cpu:\x01", "'cpu:\\x01'", "expected a device index at offset 4, found byte 0x01"},
        {"cpu:0\xff", "'cpu:0\\xff'", "unexpected byte 0xff at offset 5"},
        /* meshes */
        {"cpu:0-3[2,3]", "'cpu:0-3[2,3]'", "mesh [2,3] at offset 7 has 6 devices but the list has 4"},
        {"cpu:0-3[3,1]", "'cpu:0-3[3,1]'", "mesh [3,1] at offset 7 has 3 devices but the list has 4"},
        {"cpu:0-3[4]", "'cpu:0-3[4]'", "expected ',' at offset 9 (a mesh has 2 dims, as in [2,2]), found ']'"},
        {"cpu:0-3[2,2,1]", "'cpu:0-3[2,2,1]'", "expected ']' at offset 11 to close '[' at offset 7 (a mesh has 2 dims), found ','"},
        {"cpu:0-3[2,2", "'cpu:0-3[2,2'", "expected ']' at offset 11 to close '[' at offset 7 (a mesh has 2 dims), found the end"},
        {"cpu:0-3[]", "'cpu:0-3[]'", "expected a mesh size at offset 8, found ']'"},
        {"cpu:0-3[,4]", "'cpu:0-3[,4]'", "expected a mesh size at offset 8, found ','"},
        {"cpu:0-3[0,4]", "'cpu:0-3[0,4]'", "mesh size 0 at offset 8; each dim of a mesh is at least 1"},
        {"cpu:0-3[2,02]", "'cpu:0-3[2,02]'", "mesh size '02' at offset 10 has a leading zero; write 2"},
        {"cpu:0-3[-2,2]", "'cpu:0-3[-2,2]'", "negative mesh size at offset 8"},
        {"cpu:0-3[2x2]", "'cpu:0-3[2x2]'", "expected ',' at offset 9 (a mesh has 2 dims, as in [2,2]), found 'x'"},
        {"cpu:0-3[2,2]x", "'cpu:0-3[2,2]x'", "unexpected 'x' at offset 12 after the mesh"},
        {"cpu:0-3[2,2][2,2]", "'cpu:0-3[2,2][2,2]'", "unexpected '[' at offset 12 after the mesh"},
        {"cpu:0-3[1000,2]", "'cpu:0-3[1000,2]'", "mesh size 1000 at offset 8 is over 128 (a placement holds at most 128 devices)"},
        {"@0-1/cpu:0-1[2,1]", "'@0-1/cpu:0-1[2,1]'",
         "a mesh at offset 12 on a placement with ranks, whose hierarchy is [ranks, devices per rank] already"},
        {"cpu:0-3[2, 2]", "'cpu:0-3[2, 2]'", "whitespace at offset 10; a placement has no spaces (did you mean 'cpu:0-3[2,2]'?)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_error err = {0};
        loom_placement *p = loom_placement_parse(cases[i].in, &err);
        ck_assert_msg(!p, "'%s' parsed", cases[i].in);
        ck_assert_int_eq(err.status, LOOM_ERR_INVALID);
        char quoted[128];
        snprintf(quoted, sizeof quoted, "placement %s: ", cases[i].quoted);
        ck_assert_msg(!strncmp(err.msg, quoted, strlen(quoted)), "'%s': message '%s' does not start with \"%s\"", cases[i].in,
                      err.msg, quoted);
        ck_assert_msg(strstr(err.msg, cases[i].needle), "'%s': message '%s' lacks \"%s\"", cases[i].in, err.msg, cases[i].needle);
        ck_assert_ptr_null(loom_placement_parse(cases[i].in, NULL)); /* no error record: still safe */
    }

    /* A long string is quoted in part, and the message stays within the record. */
    char longs[2000];
    memset(longs, '1', sizeof longs - 1);
    memcpy(longs, "cpu:", 4);
    longs[sizeof longs - 1] = 0;
    loom_error err = {0};
    ck_assert_ptr_null(loom_placement_parse(longs, &err));
    ck_assert_ptr_nonnull(strstr(err.msg, "11111...': device index 11111111111111111111... at offset 4 is over 127"));

    /* Whitespace: the suggestion is made only when the string without it parses. */
    ck_assert_ptr_null(loom_placement_parse("cpu: x", &err));
    ck_assert_str_eq(err.msg, "placement 'cpu: x': whitespace at offset 4; a placement has no spaces");

    ck_assert_ptr_null(loom_placement_parse(NULL, &err));
    ck_assert_str_eq(err.msg, "placement: the string is NULL");
}
END_TEST

/* A mesh is another hierarchy of the same devices: not equal to the 1-D placement or another mesh,
 * overlapping both; device i sits at row i / columns, column i % columns. */
START_TEST(test_placement_mesh)
{
    loom_error err = {0};
    loom_placement *flat = loom_placement_parse("cpu:0-3", &err), *m22 = loom_placement_parse("cpu:0-3[2,2]", &err),
                   *m14 = loom_placement_parse("cpu:0-3[1,4]", &err), *copy = loom_placement_copy(m22);
    ck_assert(flat && m22 && m14 && copy);
    ck_assert(!loom_placement_equal(flat, m22));
    ck_assert(!loom_placement_equal(m22, m14));
    ck_assert(loom_placement_equal(m22, copy));
    ck_assert(loom_placement_overlaps(flat, m22) && loom_placement_overlaps(m14, m22));
    ck_assert_int_eq(loom_placement_ndevices(m22), 4);
    ck_assert_int_eq(loom_placement_nranks(m22), 1);
    ck_assert_int_eq(loom_placement_has_ranks(m22), 0);
    for (int i = 0; i < 4; i++) {
        int r;
        ck_assert_int_eq(loom_placement_device(m22, i, &r), i);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(loom_placement_find(m22, 0, i), i);
    }
    /* the SBP of a tensor on it has two levels */
    loom_nd_sbp two = loom_nd_sbp_2d(loom_split(0), loom_broadcast()), one = loom_nd_sbp_1d(loom_split(0));
    ck_assert_int_eq(loom_nd_sbp_check(&two, m22, 2, &err), LOOM_OK);
    ck_assert_int_eq(loom_nd_sbp_check(&one, m22, 2, &err), LOOM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "SBP S(0) has 1 level but placement 'cpu:0-3[2,2]' has a 2-D hierarchy [2, 2]");
    ck_assert_int_eq(loom_nd_sbp_check(&two, flat, 2, &err), LOOM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "SBP (S(0), B) has 2 levels but placement 'cpu:0-3' has a 1-D hierarchy [4]");
    /* made from the 1-D placement: the same as parsed */
    loom_placement *made = loom_placement_mesh(flat, 2, 2, &err);
    ck_assert_msg(made && loom_placement_equal(made, m22), "%s", err.msg);
    ck_assert_ptr_null(loom_placement_mesh(flat, 2, 3, &err));
    ck_assert_str_eq(err.msg, "loom_placement_mesh: a mesh of 2 x 3 for placement 'cpu:0-3' of 4 devices");
    ck_assert_ptr_null(loom_placement_mesh(flat, 0, 4, &err));
    loom_placement *ranked = loom_placement_parse("@0-1/cpu:0-1", &err);
    ck_assert_ptr_null(loom_placement_mesh(ranked, 2, 2, &err));
    ck_assert_str_eq(err.msg, "loom_placement_mesh: placement '@0-1/cpu:0-1' has ranks, whose hierarchy is [ranks, devices per rank] "
                              "already");
    ck_assert_ptr_null(loom_placement_mesh(NULL, 1, 1, &err));
    loom_placement_free(ranked);
    loom_placement_free(made);
    loom_placement_free(flat);
    loom_placement_free(m22);
    loom_placement_free(m14);
    loom_placement_free(copy);
}
END_TEST

START_TEST(test_placement_new)
{
    loom_error err = {0};
    static const int devs[4] = {0, 1, 2, 5}, ranks[3] = {0, 1, 7};
    loom_placement *p = loom_placement_new(LOOM_DEVICE_CUDA, 3, ranks, 4, devs, &err);
    ck_assert_msg(p, "%s", err.msg);
    char buf[64];
    pstr(p, buf, sizeof buf);
    ck_assert_str_eq(buf, "@0-1,7/cuda:0-2,5");
    loom_placement_free(p);
    p = loom_placement_new(LOOM_DEVICE_CPU, 0, NULL, 2, devs, &err);
    ck_assert_msg(p, "%s", err.msg);
    pstr(p, buf, sizeof buf);
    ck_assert_str_eq(buf, "cpu:0-1");
    loom_placement_free(p);

    static const int bad_devs[3] = {0, 3, 3}, far[2] = {1, 128}, neg[1] = {-1}, bad_ranks[2] = {4, 2};
    static const struct {
        loom_device_kind kind;
        int nranks;
        const int *ranks;
        int ndev;
        const int *devs;
        const char *needle;
    } cases[] = {
        {LOOM_DEVICE_CPU, 0, NULL, 0, devs, "a placement needs at least one device, got 0"},
        {LOOM_DEVICE_CPU, 0, NULL, 2, NULL, "a placement needs at least one device, got 2 and no list"},
        {LOOM_DEVICE_CPU, 0, NULL, 129, devs, "129 devices per rank, at most 128"},
        {LOOM_DEVICE_CUDA, 0, NULL, 3, bad_devs, "strictly increasing: device index 3 (entry 2) after 3"},
        {LOOM_DEVICE_CUDA, 0, NULL, 2, far, "device index 128 (entry 1) is outside [0, 127]"},
        {LOOM_DEVICE_CUDA, 0, NULL, 1, neg, "device index -1 (entry 0) is outside [0, 127]"},
        {LOOM_DEVICE_CUDA, 2, bad_ranks, 1, devs, "strictly increasing: rank 2 (entry 1) after 4"},
        {LOOM_DEVICE_CUDA, 0, ranks, 1, devs, "0 ranks with a list"},
        {LOOM_DEVICE_CUDA, 2, NULL, 1, devs, "2 ranks without a list"},
        {LOOM_DEVICE_KIND_COUNT, 0, NULL, 1, devs, "device kind 2 is not cpu or cuda"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err = (loom_error){0};
        ck_assert_ptr_null(loom_placement_new(cases[i].kind, cases[i].nranks, cases[i].ranks, cases[i].ndev, cases[i].devs, &err));
        ck_assert_int_eq(err.status, LOOM_ERR_INVALID);
        ck_assert_msg(strstr(err.msg, "loom_placement_new: ") == err.msg && strstr(err.msg, cases[i].needle),
                      "case %zu: message '%s' lacks \"%s\"", i, err.msg, cases[i].needle);
    }
}
END_TEST

START_TEST(test_placement_check)
{
    static const struct {
        const char *p;
        int nranks, ncuda;
        loom_status st;
        const char *msg;
    } cases[] = {
        {"cuda:0-3", 1, 1, LOOM_ERR_NOT_FOUND, "placement 'cuda:0-3' needs 4 CUDA devices (up to cuda:3), this machine has 1"},
        {"cuda:0", 1, 0, LOOM_ERR_NOT_FOUND,
         "placement 'cuda:0' needs 1 CUDA device (up to cuda:0), this machine has none (no GPU visible, or Loom built without CUDA)"},
        {"cuda:5", 1, 2, LOOM_ERR_NOT_FOUND, "placement 'cuda:5' needs 6 CUDA devices (up to cuda:5), this machine has 2"},
        {"cuda:0-3", 1, 4, LOOM_OK, ""},
        {"cuda:0,2", 1, 3, LOOM_OK, ""},
        {"cpu:0-127", 1, 0, LOOM_OK, ""},
        {"@0-3/cpu:0", 1, 0, LOOM_ERR_NOT_FOUND, "placement '@0-3/cpu:0' needs 4 processes (ranks up to 3), this run has 1"},
        {"@0/cpu:0", 0, 0, LOOM_ERR_NOT_FOUND, "placement '@0/cpu:0' needs 1 process (ranks up to 0), this run has 0"},
        {"@0-3/cuda:0-1", 4, 2, LOOM_OK, ""},
        {"@0-3/cuda:0-1", 4, 1, LOOM_ERR_NOT_FOUND, "needs 2 CUDA devices"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_placement *p = loom_placement_parse(cases[i].p, NULL);
        ck_assert(p);
        loom_error err = {0};
        ck_assert_int_eq(loom_placement_check(p, cases[i].nranks, cases[i].ncuda, &err), cases[i].st);
        if (cases[i].st)
            ck_assert_msg(strstr(err.msg, cases[i].msg), "'%s': message '%s' lacks \"%s\"", cases[i].p, err.msg, cases[i].msg);
        loom_placement_free(p);
    }
    loom_error err = {0};
    ck_assert_int_eq(loom_placement_check(NULL, 1, 1, &err), LOOM_ERR_INVALID);
}
END_TEST

/* ---- placements: generated round trips ---------------------------------------------------- */

/* Writes n increasing values as a list, runs cut into random pieces (a non-canonical spelling of
 * the same set) when scramble, else canonically (the reference printer, independent of Loom's). */
static void write_list(char *out, size_t len, int n, const int *v, int scramble, uint64_t *rs)
{
    size_t k = 0;
    out[0] = 0;
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1 && !(scramble && rng_int(rs, 3) == 0))
            j++;
        if (j == i || (scramble && j == i + 1 && rng_int(rs, 2)))
            j = i; /* a run of two written as two singles sometimes */
        k += (size_t)snprintf(out + k, len - k, "%s%d", i ? "," : "", v[i]);
        if (j > i)
            k += (size_t)snprintf(out + k, len - k, "-%d", v[j]);
        i = j + 1;
    }
}

/* A random increasing subset of [0, max]: dense, sparse, runs or one value. */
static int random_set(uint64_t *rs, int max, int cap, int *v)
{
    int n = 0, style = rng_int(rs, 4), base = rng_int(rs, max + 1);
    if (style == 0) { /* one value */
        v[n++] = base;
        return n;
    }
    int density = style == 1 ? 90 : style == 2 ? 20 : 60;
    for (int x = base; x <= max && n < cap; x++) {
        if (style == 3 && rng_int(rs, 8) == 0)
            x += rng_int(rs, 40); /* gaps between runs */
        if (x <= max && rng_int(rs, 100) < density)
            v[n++] = x;
    }
    if (!n)
        v[n++] = base;
    return n;
}

START_TEST(test_placement_roundtrip_generated)
{
    uint64_t rs = 12345;
    static int devs[LOOM_MAX_DEVICE_INDEX + 1], ranks[400];
    static char canon[8300], scrambled[8300], ldev[4096], lrank[4096], got[8300];
    for (int it = 0; it < 5000; it++) {
        loom_device_kind kind = rng_int(&rs, 2) ? LOOM_DEVICE_CUDA : LOOM_DEVICE_CPU;
        int ndev = random_set(&rs, LOOM_MAX_DEVICE_INDEX, LOOM_MAX_DEVICE_INDEX + 1, devs);
        int with_ranks = rng_int(&rs, 2);
        int nranks = with_ranks ? random_set(&rs, rng_int(&rs, 2) ? 20 : LOOM_MAX_RANK, 400, ranks) : 0;

        /* Reference canonical form. */
        write_list(ldev, sizeof ldev, ndev, devs, 0, &rs);
        write_list(lrank, sizeof lrank, nranks, ranks, 0, &rs);
        snprintf(canon, sizeof canon, "%s%s%s%s:%s", with_ranks ? "@" : "", with_ranks ? lrank : "", with_ranks ? "/" : "",
                 loom_device_kind_name(kind), ldev);

        loom_error err = {0};
        loom_placement *p = loom_placement_new(kind, nranks, with_ranks ? ranks : NULL, ndev, devs, &err);
        ck_assert_msg(p, "%s: %s", canon, err.msg);
        pstr(p, got, sizeof got);
        ck_assert_str_eq(got, canon);

        /* A scrambled spelling parses to the same placement and prints canonically. */
        write_list(ldev, sizeof ldev, ndev, devs, 1, &rs);
        write_list(lrank, sizeof lrank, nranks, ranks, 1, &rs);
        snprintf(scrambled, sizeof scrambled, "%s%s%s%s:%s", with_ranks ? "@" : "", with_ranks ? lrank : "", with_ranks ? "/" : "",
                 loom_device_kind_name(kind), ldev);
        loom_placement *q = roundtrip(scrambled, canon);
        ck_assert(loom_placement_equal(p, q));
        ck_assert(loom_placement_overlaps(p, q));

        /* Accessors agree with the lists. */
        ck_assert_int_eq(loom_placement_ndevices(q), ndev * (with_ranks ? nranks : 1));
        for (int i = 0; i < loom_placement_ndevices(q) && i < 2000; i++) {
            int r, d = loom_placement_device(q, i, &r), want_r = with_ranks ? ranks[i / ndev] : 0;
            /* A plain test, not a Check assertion per device: each of those costs a system call. */
            if (d != devs[i % ndev] || r != want_r || loom_placement_find(q, r, d) != i)
                ck_abort_msg("%s: device %d is (%d, %d), expected (%d, %d)", canon, i, r, d, want_r, devs[i % ndev]);
        }
        loom_placement_free(p);
        loom_placement_free(q);
    }
}
END_TEST
static Suite *suite(void)
{
    Suite *s = suite_create("placement_parse");
    TCase *pl = tcase_create("placement");
    tcase_add_test(pl, test_placement_examples);
    tcase_add_test(pl, test_placement_accessors);
    tcase_add_test(pl, test_placement_equal_overlap);
    tcase_add_test(pl, test_placement_errors);
    tcase_add_test(pl, test_placement_mesh);
    tcase_add_test(pl, test_placement_new);
    tcase_add_test(pl, test_placement_check);
    tcase_add_test(pl, test_placement_roundtrip_generated);
    suite_add_tcase(s, pl);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
