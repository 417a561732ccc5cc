/* The .npz reader's zip layer: zip variants (stored, deflated, zip64, comments, data
 * descriptors), CRC-32, and broken archives of every kind, which must fail with a status and a
 * message naming the file and an offset, never crash or read out of bounds. The .npy parser is
 * tests/test_npy.c. */
#include <check.h>
#include <loom/loom.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "npz_build.h"

/* An archive of one member "a.npy" holding npy. */
static const float two_a[5] = {1.5f, 2.5f, -3.0f, 0.0f, 42.0f};
static const int64_t two_b[4] = {10, -20, 30, -40};

static nb_buf two_members(int zip64_local, int zip64_central, const nb_zip_opts *o)
{
    nb_buf a = nb_npy("<f4", "(5,)", two_a, sizeof two_a), b = nb_npy("<i8", "(2, 2)", two_b, sizeof two_b);
    nb_member m[2] = {{"a.npy", a.p, a.n, 0, zip64_local, zip64_central}, {"b.npy", b.p, b.n, 1, zip64_local, zip64_central}};
    nb_buf z = nb_zip(m, 2, o);
    nb_free(&a);
    nb_free(&b);
    return z;
}

static void check_two(const nb_buf *z, const char *what)
{
    loom_npz *npz;
    loom_error e = {0};
    ck_assert_msg(loom_npz_open_mem(z->p, z->n, NAME, &npz, &e) == LOOM_OK, "%s: %s", what, e.msg);
    ck_assert_int_eq(loom_npz_count(npz), 2);
    ck_assert_str_eq(loom_npz_name(npz, 0), "a");
    ck_assert_str_eq(loom_npz_name(npz, 1), "b");
    ck_assert_ptr_null(loom_npz_name(npz, 2));
    ck_assert_ptr_null(loom_npz_name(npz, -1));
    loom_array a;
    ck_assert_msg(loom_npz_read(npz, "a", LOOM_F32, &a, &e) == LOOM_OK, "%s: %s", what, e.msg);
    ck_assert(a.ndim == 1 && a.shape[0] == 5 && memcmp(a.data, two_a, sizeof two_a) == 0);
    loom_array_free(&a);
    ck_assert_msg(loom_npz_read(npz, "b.npy", LOOM_I64, &a, &e) == LOOM_OK, "%s: %s", what, e.msg);
    ck_assert(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 2 && memcmp(a.data, two_b, sizeof two_b) == 0);
    loom_array_free(&a);
    loom_npz_close(npz);
}

START_TEST(test_zip_variants)
{
    nb_zip_opts z64 = {.zip64_end = 1}, comment = {.comment = "a comment PK\5\6 that looks like a record"},
                both = {.zip64_end = 1, .comment = "c"};
    const nb_zip_opts *opts[] = {NULL, &z64, &comment, &both};
    for (int lo = 0; lo < 2; lo++)
        for (int ce = 0; ce < 2; ce++)
            for (int o = 0; o < 4; o++) {
                nb_buf z = two_members(lo, ce, opts[o]);
                char what[96];
                snprintf(what, sizeof what, "local zip64 %d, central zip64 %d, opts %d", lo, ce, o);
                check_two(&z, what);
                nb_free(&z);
            }
}
END_TEST

START_TEST(test_large_deflated_member)
{
    enum { N = 20000 };
    double *v = malloc(N * sizeof *v);
    for (int i = 0; i < N; i++)
        v[i] = i % 7 == 0 ? 0.0 : sin(i * 0.01);
    nb_buf npy = nb_npy("<f8", "(100, 200)", v, N * sizeof *v);
    nb_buf z = zip1(&npy, 1);
    ck_assert_uint_lt(z.n, npy.n); /* really compressed */
    loom_array a;
    loom_error e = {0};
    ck_assert_msg(read_a(&z, LOOM_F64, &a, &e) == LOOM_OK, "%s", e.msg);
    ck_assert(a.shape[0] == 100 && a.shape[1] == 200 && memcmp(a.data, v, N * sizeof *v) == 0);
    loom_array_free(&a);
    nb_free(&z);
    nb_free(&npy);
    free(v);
}
END_TEST

START_TEST(test_crc_mismatch)
{
    for (int deflate = 0; deflate < 2; deflate++) {
        int32_t v[3] = {1, 2, 3};
        nb_buf npy = nb_npy("<i4", "(3,)", v, sizeof v);
        nb_buf z = zip1(&npy, deflate);
        size_t cd = nb_cd_offset(&z);
        nb_set32(&z, cd + 16, nb_get32(&z, cd + 16) ^ 1);
        loom_array a;
        loom_error e = {0};
        expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "CRC-32", "crc");
        ck_assert_msg(strstr(e.msg, NAME ": member a.npy: data at offset"), "%s", e.msg);
        nb_free(&z);
        if (!deflate) {
            /* Flipping a data byte of a stored member is caught the same way. */
            z = zip1(&npy, 0);
            z.p[nb_cd_offset(&z) - 1] ^= 0x40;
            expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "CRC-32", "crc data");
            nb_free(&z);
        }
        nb_free(&npy);
    }
}
END_TEST

/* Opens an exact-size copy of the first n bytes of z, reads every member as f64 and i64, and
 * returns the first failure's status (0 when everything worked; float members refused as i64,
 * LOOM_ERR_DTYPE, do not count); messages must name the file. */
static loom_status try_all(const uint8_t *p, size_t n, loom_error *first)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, p, n);
    loom_npz *z;
    loom_error e = {0};
    loom_status s = loom_npz_open_mem(copy, n, NAME, &z, &e), ret = s;
    if (s == LOOM_OK) {
        for (int i = 0; i < loom_npz_count(z); i++)
            for (int t = 0; t < 2; t++) {
                loom_array a;
                loom_error e2 = {0};
                s = loom_npz_read(z, loom_npz_name(z, i), t ? LOOM_I64 : LOOM_F64, &a, &e2);
                loom_array_free(&a);
                if (s == LOOM_ERR_DTYPE)
                    continue;
                if (s && !ret) {
                    ret = s;
                    e = e2;
                }
                if (s)
                    ck_assert_msg(strstr(e2.msg, NAME), "message '%s' lacks the file name", e2.msg);
            }
        loom_npz_close(z);
    }
    if (ret)
        ck_assert_msg(strstr(e.msg, NAME), "message '%s' lacks the file name", e.msg);
    if (first)
        *first = e;
    free(copy);
    return ret;
}

START_TEST(test_truncation_everywhere)
{
    nb_zip_opts z64 = {.zip64_end = 1};
    for (int variant = 0; variant < 2; variant++) {
        nb_buf z = two_members(1, variant, variant ? &z64 : NULL);
        for (size_t n = 0; n < z.n; n++) {
            loom_error e;
            loom_status s = try_all(z.p, n, &e);
            ck_assert_msg(s == LOOM_ERR_FORMAT, "prefix %zu of %zu: status %d: %s", n, z.n, s, e.msg);
            ck_assert_msg(strstr(e.msg, "offset"), "prefix %zu: message '%s' has no offset", n, e.msg);
        }
        ck_assert_int_eq(try_all(z.p, z.n, NULL), LOOM_OK);
        nb_free(&z);
    }
    /* A whole archive around a truncated .npy: the member's own prefixes. */
    int32_t v[3] = {1, 2, 3};
    nb_buf npy = nb_npy("<i4", "(3,)", v, sizeof v);
    for (size_t n = 0; n < npy.n; n++)
        for (int deflate = 0; deflate < 2; deflate++) {
            nb_member m = {"a.npy", npy.p, n, deflate, 1, 0};
            nb_buf z = nb_zip(&m, 1, NULL);
            loom_error e;
            loom_status s = try_all(z.p, z.n, &e);
            ck_assert_msg(s == LOOM_ERR_FORMAT, "npy prefix %zu: status %d: %s", n, s, e.msg);
            ck_assert_msg(strstr(e.msg, NAME ": member a.npy") && strstr(e.msg, "offset"), "npy prefix %zu: '%s'", n,
                          e.msg);
            nb_free(&z);
        }
    nb_free(&npy);
}
END_TEST

START_TEST(test_corruption_never_crashes)
{
    /* Every byte of a small archive replaced by a few values: whatever the outcome, no crash, no
     * over-read (the sanitizer build sees those) and a message with the file name on failure. */
    nb_zip_opts z64 = {.zip64_end = 1};
    nb_buf z = two_members(1, 1, &z64);
    static const uint8_t xors[] = {0x01, 0x80, 0xff, 0x7f};
    int failures = 0;
    for (size_t i = 0; i < z.n; i++)
        for (size_t k = 0; k < sizeof xors; k++) {
            z.p[i] ^= xors[k];
            failures += try_all(z.p, z.n, NULL) != LOOM_OK;
            z.p[i] ^= xors[k];
        }
    ck_assert_int_gt(failures, (int)z.n); /* most corruptions are caught */
    nb_free(&z);
}
END_TEST

START_TEST(test_unsupported_zip)
{
    int32_t v[3] = {1, 2, 3};
    nb_buf npy = nb_npy("<i4", "(3,)", v, sizeof v);
    loom_array a;
    loom_error e = {0};

    nb_buf z = zip1(&npy, 0);
    nb_set16(&z, nb_cd_offset(&z) + 8, 1); /* encrypted */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "encrypted", "encrypted");
    ck_assert_msg(strstr(e.msg, NAME ": member a.npy: central entry at offset"), "%s", e.msg);
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set16(&z, nb_cd_offset(&z) + 10, 12); /* bzip2 */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "compression method 12", "bzip2");
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set16(&z, z.n - 22 + 4, 1); /* this is disk 1 */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "multi-disk", "disk");
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set16(&z, z.n - 22 + 8, 0); /* 0 of 1 entries on this disk */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "multi-disk", "entries");
    nb_free(&z);
    nb_free(&npy);
}
END_TEST

START_TEST(test_corrupt_structures)
{
    int32_t v[3] = {1, 2, 3};
    nb_buf npy = nb_npy("<i4", "(3,)", v, sizeof v);
    loom_array a;
    loom_error e = {0};

    nb_buf z = zip1(&npy, 0);
    z.p[2] = 9; /* local header signature */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e,
                NAME ": member a.npy: local header at offset 0: expected signature PK\\3\\4", "local sig");
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set16(&z, 28, 0xfff0); /* local extra length past the file */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "local header at offset 0", "local extra");
    nb_free(&z);

    z = zip1(&npy, 0);
    z.p[30] = 'b'; /* local name differs */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "central directory's name", "local name");
    nb_free(&z);

    z = zip1(&npy, 0);
    size_t cd = nb_cd_offset(&z);
    nb_set32(&z, cd + 20, 0x7fffffff); /* stored: csize past the end */
    nb_set32(&z, cd + 24, 0x7fffffff);
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "the file ends at offset", "csize");
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set32(&z, nb_cd_offset(&z) + 24, 5); /* stored with unequal sizes */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "equal sizes", "stored sizes");
    nb_free(&z);

    z = zip1(&npy, 1);
    nb_set32(&z, nb_cd_offset(&z) + 24, 0xfffffff0); /* deflate: absurd declared size */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "more than deflate can produce", "usize");
    nb_free(&z);

    z = zip1(&npy, 1);
    cd = nb_cd_offset(&z);
    nb_set32(&z, cd + 24, nb_get32(&z, cd + 24) - 1); /* deflate: inflates to more than declared */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "found more", "usize small");
    nb_set32(&z, cd + 24, nb_get32(&z, cd + 24) + 2); /* and to less */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "uncompressed, found", "usize large");
    nb_free(&z);

    z = zip1(&npy, 1);
    memset(z.p + 30 + 5 + 20 + 2, 0xff, 4); /* garbage inside the deflate stream (after the local zip64 extra) */
    loom_status s = read_a(&z, LOOM_I32, &a, &e);
    ck_assert_msg(s == LOOM_ERR_FORMAT && strstr(e.msg, NAME ": member a.npy") && strstr(e.msg, "offset"), "%d %s", s,
                  e.msg);
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set32(&z, z.n - 22 + 16, (uint32_t)z.n); /* directory offset past the end */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "end-of-central-directory record at offset", "cd off");
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set16(&z, z.n - 22 + 8, 60000); /* more entries than the directory holds */
    nb_set16(&z, z.n - 22 + 10, 60000);
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "60000 entries cannot fit", "entries");
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set32(&z, z.n - 22 + 16, 0xffffffff); /* zip64 marker without a zip64 record */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "zip64 locator", "zip64 marker");
    nb_free(&z);

    z = zip1(&npy, 0);
    nb_set32(&z, nb_cd_offset(&z) + 24, 0xffffffff); /* zip64 size without the extra field */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "zip64 extra field", "zip64 extra");
    nb_free(&z);

    z = zip1(&npy, 0);
    z.p[nb_cd_offset(&z) + 46] = 0; /* NUL in the name */
    expect_fail(read_a(&z, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "without NUL", "nul name");
    nb_free(&z);

    nb_buf junk = {0};
    nb_put(&junk, "this is not a zip file at all, just some text", 45);
    expect_fail(read_a(&junk, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "not a zip archive", "junk");
    nb_free(&junk);
    nb_free(&npy);
}
END_TEST

START_TEST(test_missing_member)
{
    nb_buf z = two_members(1, 0, NULL);
    loom_npz *npz;
    loom_error e = {0};
    ck_assert_int_eq(loom_npz_open_mem(z.p, z.n, NAME, &npz, &e), LOOM_OK);
    loom_array a;
    expect_fail(loom_npz_read(npz, "labels", LOOM_I32, &a, &e), LOOM_ERR_NOT_FOUND, &e, "no member 'labels'", "missing");
    ck_assert_msg(strstr(e.msg, NAME) && strstr(e.msg, "holds 2: a, b"), "%s", e.msg);
    loom_npz_close(npz);
    nb_free(&z);

    /* Many members: the list is cut with "..." inside the message buffer. */
    enum { M = 60 };
    int32_t v = 1;
    nb_buf npy = nb_npy("<i4", "()", &v, 4);
    nb_member m[M];
    char names[M][48];
    for (int i = 0; i < M; i++) {
        snprintf(names[i], sizeof names[i], "a_rather_long_member_name_%02d.npy", i);
        m[i] = (nb_member){names[i], npy.p, npy.n, 0, 0, 0};
    }
    z = nb_zip(m, M, NULL);
    ck_assert_int_eq(loom_npz_open_mem(z.p, z.n, NAME, &npz, &e), LOOM_OK);
    ck_assert_int_eq(loom_npz_count(npz), M);
    expect_fail(loom_npz_read(npz, "zzz", LOOM_I32, &a, &e), LOOM_ERR_NOT_FOUND, &e, "holds 60: a_rather_long_member_name_00, ",
                "many");
    ck_assert_msg(strlen(e.msg) < sizeof e.msg && !strcmp(e.msg + strlen(e.msg) - 4, " ..."), "%s", e.msg);
    ck_assert_int_eq(loom_npz_read(npz, "a_rather_long_member_name_59", LOOM_I32, &a, &e), LOOM_OK);
    loom_array_free(&a);
    loom_npz_close(npz);
    nb_free(&z);
    nb_free(&npy);
}
END_TEST

START_TEST(test_empty_archive_and_files)
{
    nb_buf z = nb_zip(NULL, 0, NULL);
    loom_npz *npz;
    loom_error e = {0};
    ck_assert_int_eq(loom_npz_open_mem(z.p, z.n, NAME, &npz, &e), LOOM_OK);
    ck_assert_int_eq(loom_npz_count(npz), 0);
    loom_npz_close(npz);
    nb_free(&z);

    char path[] = "/tmp/loom_test_npz_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    z = two_members(1, 0, NULL);
    ck_assert_int_eq(nb_write(path, &z), 0);
    ck_assert_msg(loom_npz_open(path, &npz, &e) == LOOM_OK, "%s", e.msg);
    loom_array a;
    ck_assert_int_eq(loom_npz_read(npz, "b", LOOM_F64, &a, &e), LOOM_OK);
    ck_assert(elem(&a, 3) == -40.0);
    loom_array_free(&a);
    loom_npz_close(npz);
    nb_free(&z);
    unlink(path);
    expect_fail(loom_npz_open(path, &npz, &e), LOOM_ERR_NOT_FOUND, &e, path, "gone");
    ck_assert_ptr_null(npz);
    expect_fail(loom_npz_open("/tmp", &npz, &e), LOOM_ERR_IO, &e, "not a regular file", "dir");
    ck_assert_int_eq(loom_npz_open_mem(NULL, 0, NULL, &npz, &e), LOOM_ERR_FORMAT);
    ck_assert_int_eq(loom_npz_open_mem(NULL, 0, NULL, NULL, NULL), LOOM_ERR_INVALID);
    loom_npz_close(NULL);
    ck_assert_int_eq(loom_npz_count(NULL), 0);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("npz");
    TCase *zip = tcase_create("zip");
    tcase_set_timeout(zip, 120);
    tcase_add_test(zip, test_zip_variants);
    tcase_add_test(zip, test_large_deflated_member);
    tcase_add_test(zip, test_crc_mismatch);
    tcase_add_test(zip, test_truncation_everywhere);
    tcase_add_test(zip, test_corruption_never_crashes);
    tcase_add_test(zip, test_unsupported_zip);
    tcase_add_test(zip, test_corrupt_structures);
    tcase_add_test(zip, test_missing_member);
    tcase_add_test(zip, test_empty_archive_and_files);
    suite_add_tcase(s, zip);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
