/* The .npy parser: every dtype and conversion, shapes, header versions and dict forms, and broken
 * headers, each parsed straight and through stored and deflated archives (which must agree).
 * The zip layer is tests/test_npz.c. */
#include <check.h>
#include <loom/loom.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "npz_build.h"

/* An archive of one member "a.npy" holding npy. */
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

/* A value read as a float dtype keeps its value: f64 to f32 may round (underflow included) but not
 * overflow to inf, an integer must be exact; NaN and inf in the file stay as they are. Errors name
 * the file, the member, the element and the value. */
START_TEST(test_values_kept_or_refused)
{
    double f8[7] = {0.1, 1e-300, NAN, INFINITY, -INFINITY, 3.4028235e38, -3.40282356e38};
    nb_buf npy = nb_npy("<f8", "(7,)", f8, sizeof f8);
    loom_array a;
    loom_error e = {0};
    ck_assert_msg(parse3(&npy, LOOM_F32, &a, &e) == LOOM_OK, "%s", e.msg);
    const float *f = a.data;
    ck_assert(f[0] == 0.1f && f[1] == 0 && isnan(f[2]) && f[3] == INFINITY && f[4] == -INFINITY && f[5] == FLT_MAX &&
              f[6] == -FLT_MAX);
    loom_array_free(&a);
    nb_free(&npy);

    double big[2] = {1, -1e300};
    npy = nb_npy("<f8", "(2,)", big, sizeof big);
    nb_buf z = zip1(&npy, 1);
    expect_fail(read_a(&z, LOOM_F32, &a, &e), LOOM_ERR_FORMAT, &e,
                "element 1 is -1.0000000000000001e+300, which does not fit f32", "-1e300 as f32");
    ck_assert_msg(!strncmp(e.msg, NAME ": member a.npy (data at offset ", strlen(NAME) + 30), "%s", e.msg);
    ck_assert_ptr_null(a.data);
    nb_free(&z);
    nb_free(&npy);

    int64_t i8[4] = {INT64_C(1) << 53, INT64_MIN, INT64_C(1) << 62, (INT64_C(1) << 53) + 1};
    npy = nb_npy("<i8", "(4,)", i8, sizeof i8);
    z = zip1(&npy, 0);
    expect_fail(read_a(&z, LOOM_F64, &a, &e), LOOM_ERR_FORMAT, &e,
                "element 3 is 9007199254740993, which does not fit f64 exactly (the nearest f64 is 9007199254740992)",
                "2^53 + 1 as f64");
    ck_assert_msg(!strncmp(e.msg, NAME ": member a.npy (data at offset ", strlen(NAME) + 30), "%s", e.msg);
    nb_free(&z);
    i8[3] = -(INT64_C(1) << 53);
    nb_free(&npy);
    npy = nb_npy("<i8", "(4,)", i8, sizeof i8);
    ck_assert_msg(parse3(&npy, LOOM_F64, &a, &e) == LOOM_OK, "%s", e.msg);
    ck_assert(elem(&a, 0) == 9007199254740992.0 && elem(&a, 1) == -9223372036854775808.0 && elem(&a, 3) == -9007199254740992.0);
    loom_array_free(&a);
    nb_free(&npy);

    int32_t i4[2] = {16777216, 16777217};
    npy = nb_npy("<i4", "(2,)", i4, sizeof i4);
    expect_fail(parse3(&npy, LOOM_F32, &a, &e), LOOM_ERR_FORMAT, &e,
                "element 1 is 16777217, which does not fit f32 exactly (the nearest f32 is 16777216)", "2^24 + 1 as f32");
    ck_assert_int_eq(parse3(&npy, LOOM_F64, &a, &e), LOOM_OK);
    loom_array_free(&a);
    nb_free(&npy);

    uint64_t u8[1] = {UINT64_MAX};
    npy = nb_npy("<u8", "(1,)", u8, sizeof u8);
    expect_fail(parse3(&npy, LOOM_F64, &a, &e), LOOM_ERR_FORMAT, &e, "element 0 is 18446744073709551615, which does not fit f64 exactly",
                "2^64 - 1 as f64");
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
        expect_fail(parse3(&a8, LOOM_F32, &a, &e), LOOM_ERR_FORMAT, &e, "element 2 is 1.0000000000000001e+300, which does not fit f32",
                    "1e300 as f32");
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
static Suite *suite(void)
{
    Suite *s = suite_create("npy");
    TCase *npy = tcase_create("npy");
    tcase_add_test(npy, test_int_dtypes_to_every_dtype);
    tcase_add_test(npy, test_bool_and_negative_ints);
    tcase_add_test(npy, test_int_range_checks);
    tcase_add_test(npy, test_float_dtypes);
    tcase_add_test(npy, test_values_kept_or_refused);
    tcase_add_test(npy, test_shapes);
    tcase_add_test(npy, test_absurd_shapes);
    tcase_add_test(npy, test_header_versions_and_dict_forms);
    tcase_add_test(npy, test_header_garbage);
    tcase_add_test(npy, test_unsupported_dtypes);
    tcase_add_test(npy, test_bad_magic_and_lengths);
    suite_add_tcase(s, npy);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
