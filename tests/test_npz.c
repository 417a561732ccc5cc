/* The .npz / .npy reader: every dtype and conversion, shapes, header versions, zip variants
 * (stored, deflated, zip64, comments), and broken input of every kind, which must fail with a
 * status and a message naming the file and an offset, never crash or read out of bounds. */
#include <check.h>
#include <loom/loom.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npz_build.h"

#define NAME "t.npz"

/* An archive of one member "a.npy" holding npy. */
static nb_buf zip1(const nb_buf *npy, int deflate)
{
    nb_member m = {"a.npy", npy->p, npy->n, deflate, 1, 0};
    return nb_zip(&m, 1, NULL);
}

/* Opens z and reads "a" as dtype; the archive stays open only for the call. */
static loom_status read_a(const nb_buf *z, loom_dtype dt, loom_array *a, loom_error *e)
{
    loom_npz *npz = NULL;
    loom_status s = loom_npz_open_mem(z->p, z->n, NAME, &npz, e);
    if (s)
        return s;
    s = loom_npz_read(npz, "a", dt, a, e);
    loom_npz_close(npz);
    return s;
}

/* Parses an .npy straight and through a stored and a deflated archive; all three must agree. */
static loom_status parse3(const nb_buf *npy, loom_dtype dt, loom_array *a, loom_error *e)
{
    loom_status s0 = loom_npy_parse(npy->p, npy->n, "a.npy", dt, a, e);
    for (int deflate = 0; deflate < 2; deflate++) {
        nb_buf z = zip1(npy, deflate);
        loom_array b;
        loom_error e2 = {0};
        loom_status s = read_a(&z, dt, &b, &e2);
        nb_free(&z);
        ck_assert_msg(s == s0, "status %d through a zip (deflate %d), %d straight: %s", s, deflate, s0, e2.msg);
        if (s == LOOM_OK) {
            ck_assert_int_eq(b.ndim, a->ndim);
            size_t bytes = (size_t)loom_array_numel(&b) * loom_dtype_size(dt);
            ck_assert(bytes == 0 || memcmp(a->data, b.data, bytes) == 0);
            loom_array_free(&b);
        }
    }
    return s0;
}

static double elem(const loom_array *a, int64_t i)
{
    switch (a->dtype) {
    case LOOM_F32:
        return ((float *)a->data)[i];
    case LOOM_F64:
        return ((double *)a->data)[i];
    case LOOM_I32:
        return ((int32_t *)a->data)[i];
    case LOOM_I64:
        return (double)((int64_t *)a->data)[i];
    default:
        return ((uint8_t *)a->data)[i];
    }
}

/* Encodes v in the little-endian integer of `size` bytes at p. */
static void put_le(uint8_t *p, size_t size, uint64_t v)
{
    for (size_t k = 0; k < size; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

START_TEST(test_int_dtypes_to_every_dtype)
{
    static const char *descrs[] = {"<i1", "|i1", "<i2", "<i4", "<i8", "|u1", "<u1", "<u2", "<u4", "<u8", "=i4", "=u2", ">i1"};
    static const int sizes[] = {1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 2, 1};
    static const int64_t vals[] = {0, 1, 2, 100, 127, 7};
    const int n = 6;
    for (size_t d = 0; d < sizeof descrs / sizeof *descrs; d++) {
        uint8_t raw[6 * 8];
        for (int i = 0; i < n; i++)
            put_le(raw + i * sizes[d], (size_t)sizes[d], (uint64_t)vals[i]);
        nb_buf npy = nb_npy(descrs[d], "(2, 3)", raw, (size_t)(n * sizes[d]));
        for (int t = 0; t < LOOM_DTYPE_COUNT; t++) {
            loom_array a;
            loom_error e = {0};
            ck_assert_msg(parse3(&npy, (loom_dtype)t, &a, &e) == LOOM_OK, "%s as %s: %s", descrs[d],
                          loom_dtype_name((loom_dtype)t), e.msg);
            ck_assert_int_eq(a.dtype, t);
            ck_assert_int_eq(a.ndim, 2);
            ck_assert_int_eq(a.shape[0], 2);
            ck_assert_int_eq(a.shape[1], 3);
            for (int i = 0; i < n; i++)
                ck_assert_msg(elem(&a, i) == (double)vals[i], "%s as %s [%d]: %g", descrs[d],
                              loom_dtype_name((loom_dtype)t), i, elem(&a, i));
            loom_array_free(&a);
        }
        nb_free(&npy);
    }
}
END_TEST

START_TEST(test_bool_and_negative_ints)
{
    uint8_t b[4] = {0, 1, 1, 0};
    nb_buf npy = nb_npy("|b1", "(4,)", b, 4);
    for (int t = 0; t < LOOM_DTYPE_COUNT; t++) {
        loom_array a;
        loom_error e = {0};
        ck_assert_msg(parse3(&npy, (loom_dtype)t, &a, &e) == LOOM_OK, "%s", e.msg);
        for (int i = 0; i < 4; i++)
            ck_assert(elem(&a, i) == b[i]);
        loom_array_free(&a);
    }
    nb_free(&npy);
    /* -5 fits every signed and float target, not u8. */
    int16_t v[2] = {-5, 300};
    npy = nb_npy("<i2", "(2,)", v, sizeof v);
    loom_dtype ok[] = {LOOM_I32, LOOM_I64, LOOM_F32, LOOM_F64};
    for (int t = 0; t < 4; t++) {
        loom_array a;
        loom_error e = {0};
        ck_assert_msg(parse3(&npy, ok[t], &a, &e) == LOOM_OK, "%s", e.msg);
        ck_assert(elem(&a, 0) == -5 && elem(&a, 1) == 300);
        loom_array_free(&a);
    }
    loom_array a;
    loom_error e = {0};
    expect_fail(parse3(&npy, LOOM_U8, &a, &e), LOOM_ERR_FORMAT, &e, "element 0 is -5", "i2 -5 as u8");
    ck_assert_ptr_null(a.data);
    nb_free(&npy);
}
END_TEST

START_TEST(test_int_range_checks)
{
    loom_array a;
    loom_error e = {0};
    int64_t i8[3] = {0, 1, INT64_C(2147483648)};
    nb_buf npy = nb_npy("<i8", "(3,)", i8, sizeof i8);
    expect_fail(parse3(&npy, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "element 2 is 2147483648, which does not fit i32",
                "2^31 as i32");
    ck_assert_int_eq(parse3(&npy, LOOM_I64, &a, &e), LOOM_OK);
    loom_array_free(&a);
    nb_free(&npy);

    uint64_t u8[2] = {5, UINT64_C(1) << 63};
    npy = nb_npy("<u8", "(2,)", u8, sizeof u8);
    expect_fail(parse3(&npy, LOOM_I64, &a, &e), LOOM_ERR_FORMAT, &e, "element 1 is 9223372036854775808", "2^63 as i64");
    ck_assert_int_eq(parse3(&npy, LOOM_F64, &a, &e), LOOM_OK);
    ck_assert(elem(&a, 1) == 9223372036854775808.0);
    loom_array_free(&a);
    nb_free(&npy);

    uint32_t u4[1] = {4000000000u};
    npy = nb_npy("<u4", "(1,)", u4, sizeof u4);
    expect_fail(parse3(&npy, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "element 0", "4e9 as i32");
    expect_fail(parse3(&npy, LOOM_U8, &a, &e), LOOM_ERR_FORMAT, &e, "which does not fit u8", "4e9 as u8");
    ck_assert_int_eq(parse3(&npy, LOOM_I64, &a, &e), LOOM_OK);
    ck_assert(elem(&a, 0) == 4000000000.0);
    loom_array_free(&a);
    nb_free(&npy);

    int32_t i4[4] = {0, 255, 256, -1};
    npy = nb_npy("<i4", "(4,)", i4, sizeof i4);
    expect_fail(parse3(&npy, LOOM_U8, &a, &e), LOOM_ERR_FORMAT, &e, "element 2 is 256", "256 as u8");
    nb_free(&npy);
}
END_TEST

START_TEST(test_float_dtypes)
{
    float f4[3] = {0.5f, -1.25f, 3.0e38f};
    double f8[3] = {0.5, -1.25, 1e300};
    const char *d4[] = {"<f4", "=f4"}, *d8[] = {"<f8", "=f8"};
    for (int k = 0; k < 2; k++) {
        nb_buf a4 = nb_npy(d4[k], "(3,)", f4, sizeof f4), a8 = nb_npy(d8[k], "(3,)", f8, sizeof f8);
        loom_array a;
        loom_error e = {0};
        ck_assert_int_eq(parse3(&a4, LOOM_F32, &a, &e), LOOM_OK);
        ck_assert(memcmp(a.data, f4, sizeof f4) == 0);
        loom_array_free(&a);
        ck_assert_int_eq(parse3(&a4, LOOM_F64, &a, &e), LOOM_OK);
        ck_assert(elem(&a, 0) == 0.5 && elem(&a, 1) == -1.25 && elem(&a, 2) == (double)3.0e38f);
        loom_array_free(&a);
        ck_assert_int_eq(parse3(&a8, LOOM_F64, &a, &e), LOOM_OK);
        ck_assert(memcmp(a.data, f8, sizeof f8) == 0);
        loom_array_free(&a);
        ck_assert_int_eq(parse3(&a8, LOOM_F32, &a, &e), LOOM_OK);
        ck_assert(elem(&a, 0) == 0.5 && elem(&a, 1) == -1.25 && isinf(elem(&a, 2)));
        loom_array_free(&a);
        loom_dtype ints[] = {LOOM_I32, LOOM_I64, LOOM_U8};
        for (int t = 0; t < 3; t++) {
            expect_fail(parse3(&a4, ints[t], &a, &e), LOOM_ERR_DTYPE, &e, "cannot be read as", "f4 as int");
            expect_fail(parse3(&a8, ints[t], &a, &e), LOOM_ERR_DTYPE, &e, d8[k], "f8 as int");
        }
        nb_free(&a4);
        nb_free(&a8);
    }
}
END_TEST

START_TEST(test_shapes)
{
    static const struct {
        const char *shape;
        int ndim;
        int64_t numel;
    } cases[] = {
        {"()", 0, 1},         {"(0,)", 1, 0},          {"(3, 0)", 2, 0},          {"(2, 3)", 2, 6},
        {"(2, 3,)", 2, 6},    {"(6,)", 1, 6},          {"( 6 , )", 1, 6},         {"(1, 1, 1, 1, 1, 2)", 6, 2},
        {"(2L, 3L)", 2, 6},   {"(0, 9223372036854775807)", 2, 0},
    };
    int32_t data[6] = {1, 2, 3, 4, 5, 6};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        nb_buf npy = nb_npy("<i4", cases[c].shape, data, (size_t)cases[c].numel * 4);
        loom_array a;
        loom_error e = {0};
        loom_status s = parse3(&npy, LOOM_I64, &a, &e);
        if (!strcmp(cases[c].shape, "(0, 9223372036854775807)")) {
            /* 0 elements, but a dim Loom cannot hold: refused without allocating anything big. */
            expect_fail(s, LOOM_ERR_FORMAT, &e, "too large", cases[c].shape);
            nb_free(&npy);
            continue;
        }
        ck_assert_msg(s == LOOM_OK, "%s: %s", cases[c].shape, e.msg);
        ck_assert_int_eq(a.ndim, cases[c].ndim);
        ck_assert_int_eq(loom_array_numel(&a), cases[c].numel);
        for (int64_t i = 0; i < cases[c].numel; i++)
            ck_assert(elem(&a, i) == (double)(i + 1));
        loom_array_free(&a);
        nb_free(&npy);
    }
    int32_t one = 1;
    nb_buf npy = nb_npy("<i4", "(1, 1, 1, 1, 1, 1, 1)", &one, 4);
    loom_array a;
    loom_error e = {0};
    expect_fail(parse3(&npy, LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "more than 6 dimensions", "7-D");
    nb_free(&npy);
}
END_TEST

START_TEST(test_absurd_shapes)
{
    static const char *shapes[] = {
        "(9223372036854775807, 9223372036854775807)", /* product overflows */
        "(99999999999999999999,)",                    /* a dim overflows int64 */
        "(4611686018427387904,)",                     /* numel * 8 overflows */
        "(3037000500, 3037000500)",                   /* product just over 2^63 */
        "(1152921504606846976,)",                     /* 2^60: bytes fit uint64, not the file */
        "(4,)",                                       /* file holds 3 elements */
        "(2,)",                                       /* file holds 3 elements */
    };
    int64_t data[3] = {1, 2, 3};
    for (size_t c = 0; c < sizeof shapes / sizeof *shapes; c++) {
        nb_buf npy = nb_npy("<i8", shapes[c], data, sizeof data);
        loom_array a;
        loom_error e = {0};
        expect_fail(parse3(&npy, LOOM_I64, &a, &e), LOOM_ERR_FORMAT, &e, "offset", shapes[c]);
        ck_assert_ptr_null(a.data);
        nb_free(&npy);
    }
}
END_TEST

START_TEST(test_header_versions_and_dict_forms)
{
    static const char *dicts[] = {
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), }",
        "{'shape': (3,), 'descr': '<i4', 'fortran_order': False}",
        "{\"fortran_order\": False, \"shape\": (3,), \"descr\": \"<i4\"}",
        "  {  'descr'  :  '<i4'  ,\t'fortran_order':False,'shape':(3 ,) }  ",
    };
    int32_t v[3] = {7, 8, 9};
    for (int major = 1; major <= 3; major++)
        for (size_t d = 0; d < sizeof dicts / sizeof *dicts; d++) {
            nb_buf npy = nb_npy_raw(major, dicts[d], v, sizeof v);
            loom_array a;
            loom_error e = {0};
            ck_assert_msg(parse3(&npy, LOOM_I32, &a, &e) == LOOM_OK, "v%d %s: %s", major, dicts[d], e.msg);
            ck_assert(memcmp(a.data, v, sizeof v) == 0);
            loom_array_free(&a);
            nb_free(&npy);
        }
    /* Versions 4.0 and 1.1 do not exist. */
    nb_buf npy = nb_npy_raw(1, dicts[0], v, sizeof v);
    loom_array a;
    loom_error e = {0};
    npy.p[6] = 4;
    expect_fail(loom_npy_parse(npy.p, npy.n, "a.npy", LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "version 4.0", "v4");
    npy.p[6] = 1;
    npy.p[7] = 1;
    expect_fail(loom_npy_parse(npy.p, npy.n, "a.npy", LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "version 1.1", "v1.1");
    nb_free(&npy);
}
END_TEST

START_TEST(test_header_garbage)
{
    static const char *dicts[] = {
        "",
        "{",
        "{}",
        "[]",
        "descr",
        "{'descr': '<i4'}",
        "{'descr': '<i4', 'fortran_order': False}",
        "{'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,), 'extra': 1}",
        "{'descr': '<i4', 'descr': '<i4', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': <i4, 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<i4, 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<i4\\n', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<i4', 'fortran_order': Maybe, 'shape': (3,)}",
        "{'descr': '<i4', 'fortran_order': Falsey, 'shape': (3,)}",
        "{'descr': '<i4', 'fortran_order': 0, 'shape': (3,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': 3}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': [3]}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (-3,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (a,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3.0,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,)",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,)} x",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,)}}",
        "{'descr': '<i4' 'fortran_order': False, 'shape': (3,)}",
        "{'descr' '<i4', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': '<i4', 'fortran_order': False, 'shape': (3,),,}",
        "{'descr': '\xc3\xa9', 'fortran_order': False, 'shape': (3,)}",
        "{'descr': 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'fortran_order': False, 'shape': (3,)}",
    };
    int32_t v[3] = {7, 8, 9};
    for (size_t d = 0; d < sizeof dicts / sizeof *dicts; d++) {
        nb_buf npy = nb_npy_raw(1, dicts[d], v, sizeof v);
        loom_array a;
        loom_error e = {0};
        loom_status s = parse3(&npy, LOOM_I32, &a, &e);
        expect_fail(s, LOOM_ERR_FORMAT, &e, ".npy header at offset", dicts[d]);
        ck_assert_msg(strstr(e.msg, "a.npy"), "%s: message '%s' lacks the name", dicts[d], e.msg);
        nb_free(&npy);
    }
}
END_TEST

START_TEST(test_unsupported_dtypes)
{
    static const struct {
        const char *descr, *needle;
    } cases[] = {
        {">f4", "big-endian"}, {">i8", "big-endian"}, {"|O", "'|O'"},    {"<U7", "'<U7'"},
        {"<U22", "'<U22'"},    {"<f2", "'<f2'"},      {"<c8", "'<c8'"},  {"|S3", "'|S3'"},
        {"|V4", "'|V4'"},      {"<i3", "'<i3'"},      {"<i16", "'<i16'"}, {"", "''"},
        {"|b2", "'|b2'"},      {"<M8[ns]", "'<M8[ns]'"},
    };
    uint8_t raw[64] = {0};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        nb_buf npy = nb_npy(cases[c].descr, "(2,)", raw, 8);
        loom_array a;
        loom_error e = {0};
        expect_fail(parse3(&npy, LOOM_F64, &a, &e), LOOM_ERR_UNSUPPORTED, &e, cases[c].needle, cases[c].descr);
        nb_free(&npy);
    }
    nb_buf npy = nb_npy_raw(1, "{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (2,)}", raw, 8);
    loom_array a;
    loom_error e = {0};
    expect_fail(parse3(&npy, LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "structured", "structured");
    nb_free(&npy);
    npy = nb_npy_raw(1, "{'descr': '<i4', 'fortran_order': True, 'shape': (2,)}", raw, 8);
    expect_fail(parse3(&npy, LOOM_I32, &a, &e), LOOM_ERR_UNSUPPORTED, &e, "fortran_order", "fortran");
    nb_free(&npy);
}
END_TEST

START_TEST(test_bad_magic_and_lengths)
{
    int32_t v[3] = {1, 2, 3};
    nb_buf npy = nb_npy("<i4", "(3,)", v, sizeof v);
    loom_array a;
    loom_error e = {0};
    npy.p[5] = 'X';
    expect_fail(parse3(&npy, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "expected the .npy magic", "magic");
    npy.p[5] = 'Y';
    nb_set16(&npy, 8, 0xffff); /* header longer than the image */
    expect_fail(parse3(&npy, LOOM_I32, &a, &e), LOOM_ERR_FORMAT, &e, "runs past the end", "header length");
    nb_free(&npy);
    /* Every prefix of a valid image fails cleanly; read from an exact-size copy so that any
     * over-read is an out-of-bounds access the sanitizers see. */
    npy = nb_npy("<i4", "(3,)", v, sizeof v);
    for (size_t n = 0; n < npy.n; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, npy.p, n);
        e = (loom_error){0};
        loom_status s = loom_npy_parse(copy, n, "a.npy", LOOM_I32, &a, &e);
        ck_assert_msg(s == LOOM_ERR_FORMAT, "prefix %zu: status %d: %s", n, s, e.msg);
        ck_assert_msg(strstr(e.msg, "a.npy") && strstr(e.msg, "offset"), "prefix %zu: message '%s'", n, e.msg);
        free(copy);
    }
    nb_free(&npy);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The zip layer.
 * ------------------------------------------------------------------------------------------- */

/* Two members, one stored and one deflated, plus their expected values. */
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
    TCase *npy = tcase_create("npy");
    tcase_add_test(npy, test_int_dtypes_to_every_dtype);
    tcase_add_test(npy, test_bool_and_negative_ints);
    tcase_add_test(npy, test_int_range_checks);
    tcase_add_test(npy, test_float_dtypes);
    tcase_add_test(npy, test_shapes);
    tcase_add_test(npy, test_absurd_shapes);
    tcase_add_test(npy, test_header_versions_and_dict_forms);
    tcase_add_test(npy, test_header_garbage);
    tcase_add_test(npy, test_unsupported_dtypes);
    tcase_add_test(npy, test_bad_magic_and_lengths);
    suite_add_tcase(s, npy);
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

int main(void)
{
    SRunner *r = srunner_create(suite());
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
