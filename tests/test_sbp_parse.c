/* SBP values: parsing, canonical printing and round trips, every parse error with its message, the
 * checks against a tensor, and the split arithmetic, exhaustively for small sizes. */
#include <check.h>
#include <loom/loom.h>
#include <loom/sbp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- SBP ---------------------------------------------------------------------------------- */

START_TEST(test_sbp_values)
{
    static const struct {
        const char *in, *canon;
        int n;
        loom_sbp a, b;
    } cases[] = {
        {"S(0)", "S(0)", 1, {LOOM_SBP_SPLIT, 0}, {0, 0}},
        {"S(1)", "S(1)", 1, {LOOM_SBP_SPLIT, 1}, {0, 0}},
        {"S(5)", "S(5)", 1, {LOOM_SBP_SPLIT, 5}, {0, 0}},
        {"S0", "S(0)", 1, {LOOM_SBP_SPLIT, 0}, {0, 0}},
        {"B", "B", 1, {LOOM_SBP_BROADCAST, 0}, {0, 0}},
        {"P", "P", 1, {LOOM_SBP_PARTIAL_SUM, 0}, {0, 0}},
        {"P(sum)", "P", 1, {LOOM_SBP_PARTIAL_SUM, 0}, {0, 0}},
        {"(S(0), B)", "(S(0), B)", 2, {LOOM_SBP_SPLIT, 0}, {LOOM_SBP_BROADCAST, 0}},
        {"[S(0), B]", "(S(0), B)", 2, {LOOM_SBP_SPLIT, 0}, {LOOM_SBP_BROADCAST, 0}},
        {"(S(0),B)", "(S(0), B)", 2, {LOOM_SBP_SPLIT, 0}, {LOOM_SBP_BROADCAST, 0}},
        {"(  P(sum) ,  S1  )", "(P, S(1))", 2, {LOOM_SBP_PARTIAL_SUM, 0}, {LOOM_SBP_SPLIT, 1}},
        {"[B,B]", "(B, B)", 2, {LOOM_SBP_BROADCAST, 0}, {LOOM_SBP_BROADCAST, 0}},
        {"(S(1))", "S(1)", 1, {LOOM_SBP_SPLIT, 1}, {0, 0}},
        {"[ P ]", "P", 1, {LOOM_SBP_PARTIAL_SUM, 0}, {0, 0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_nd_sbp v;
        loom_error err = {0};
        ck_assert_msg(loom_nd_sbp_parse(cases[i].in, &v, &err) == LOOM_OK, "'%s': %s", cases[i].in, err.msg);
        ck_assert_int_eq(v.n, cases[i].n);
        ck_assert(loom_sbp_equal(v.v[0], cases[i].a));
        ck_assert_int_eq(v.v[0].kind, cases[i].a.kind);
        ck_assert_int_eq(v.v[0].axis, cases[i].a.axis);
        if (v.n == 2)
            ck_assert(loom_sbp_equal(v.v[1], cases[i].b));
        char buf[64];
        ck_assert_uint_eq(loom_nd_sbp_str(&v, buf, sizeof buf), strlen(cases[i].canon));
        ck_assert_str_eq(buf, cases[i].canon);
        if (v.n == 1 && cases[i].in[0] != '(' && cases[i].in[0] != '[') {
            loom_sbp one;
            ck_assert_int_eq(loom_sbp_parse(cases[i].in, &one, &err), LOOM_OK);
            ck_assert(loom_sbp_equal(one, cases[i].a));
        }
    }
    ck_assert(loom_sbp_equal(loom_split(2), (loom_sbp){LOOM_SBP_SPLIT, 2}));
    ck_assert(!loom_sbp_equal(loom_split(2), loom_split(1)));
    ck_assert(!loom_sbp_equal(loom_broadcast(), loom_partial_sum()));
    ck_assert(loom_sbp_equal(loom_broadcast(), (loom_sbp){LOOM_SBP_BROADCAST, 7})); /* axis ignored unless split */
    loom_sbp zero = {0};
    ck_assert_int_eq(zero.kind, LOOM_SBP_UNSET); /* a zeroed value is unset, never S(0) */
    char buf[16];
    ck_assert_uint_eq(loom_sbp_str(zero, buf, sizeof buf), 5);
    ck_assert_str_eq(buf, "unset");
    ck_assert_uint_eq(loom_sbp_str(loom_split(3), buf, 3), 4);
    ck_assert_str_eq(buf, "S(");
    loom_nd_sbp un = {0};
    ck_assert_uint_eq(loom_nd_sbp_str(&un, buf, sizeof buf), 5);
    ck_assert_str_eq(buf, "unset");
    loom_nd_sbp two = loom_nd_sbp_2d(loom_split(0), loom_broadcast()), two2 = two;
    ck_assert(loom_nd_sbp_equal(&two, &two2));
    two2.v[1] = loom_partial_sum();
    ck_assert(!loom_nd_sbp_equal(&two, &two2));
    loom_nd_sbp one = loom_nd_sbp_1d(loom_split(0));
    ck_assert(!loom_nd_sbp_equal(&one, &two));
}
END_TEST

/* Every SBP value and pair: print, parse, and print again. */
START_TEST(test_sbp_roundtrip_all)
{
    loom_sbp all[LOOM_MAX_DIMS + 2];
    int n = 0;
    for (int a = 0; a < LOOM_MAX_DIMS; a++)
        all[n++] = loom_split(a);
    all[n++] = loom_broadcast();
    all[n++] = loom_partial_sum();
    char a[64], b[64], spelled[64];
    for (int i = 0; i < n; i++) {
        loom_sbp v;
        loom_sbp_str(all[i], a, sizeof a);
        ck_assert_int_eq(loom_sbp_parse(a, &v, NULL), LOOM_OK);
        ck_assert(loom_sbp_equal(v, all[i]));
        loom_sbp_str(v, b, sizeof b);
        ck_assert_str_eq(a, b);
        for (int j = -1; j < n; j++) {
            loom_nd_sbp x = j < 0 ? loom_nd_sbp_1d(all[i]) : loom_nd_sbp_2d(all[i], all[j]), y;
            loom_nd_sbp_str(&x, a, sizeof a);
            ck_assert_int_eq(loom_nd_sbp_parse(a, &y, NULL), LOOM_OK);
            ck_assert(loom_nd_sbp_equal(&x, &y));
            loom_nd_sbp_str(&y, b, sizeof b);
            ck_assert_str_eq(a, b);
            if (j >= 0) { /* the other spelling */
                char s0[16], s1[16];
                loom_sbp_str(all[i], s0, sizeof s0);
                loom_sbp_str(all[j], s1, sizeof s1);
                snprintf(spelled, sizeof spelled, "[%s,%s]", s0, s1);
                ck_assert_int_eq(loom_nd_sbp_parse(spelled, &y, NULL), LOOM_OK);
                ck_assert(loom_nd_sbp_equal(&x, &y));
            }
        }
    }
}
END_TEST

START_TEST(test_sbp_errors)
{
    static const struct {
        int nd; /* 1: loom_sbp_parse, 2: loom_nd_sbp_parse */
        const char *in, *quoted, *needle;
    } cases[] = {
        {1, "", "''", "the string is empty; expected S(i), B or P"},
        {2, "", "''", "the string is empty; expected S(i), B or P, or two of them as in '(S(0), B)'"},
        {1, "S", "'S'", "expected '(' after 'S' at offset 1, found the end (a split is written S(0))"},
        {1, "S(", "'S('", "expected a split axis (0 to 5) at offset 2, found the end"},
        {1, "S()", "'S()'", "expected a split axis (0 to 5) at offset 2, found ')'"},
        {1, "S(0", "'S(0'", "expected ')' at offset 3 to close 'S(' at offset 0, found the end"},
        {1, "S(-1)", "'S(-1)'", "negative split axis at offset 2: axes count from 0"},
        {1, "S-1", "'S-1'", "negative split axis at offset 1"},
        {1, "S(6)", "'S(6)'", "split axis 6 at offset 2 is over 5 (tensors have at most 6 dims)"},
        {1, "S(99999999999999999999999)", "'S(99999999999999999999999)'", "split axis 99999999999999999999... at offset 2 is over 5"},
        {1, "S(01)", "'S(01)'", "split axis '01' at offset 2 has a leading zero; write 1"},
        {1, "S(0)x", "'S(0)x'", "unexpected character at offset 4 after the SBP, found 'x'"},
        {1, "Split(0)", "'Split(0)'", "expected '(' after 'S' at offset 1, found 'p'"},
        {1, "s(0)", "'s(0)'", "unknown SBP 's' at offset 0; expected S(i), B or P (upper case)"},
        {1, "b", "'b'", "unknown SBP 'b' at offset 0"},
        {1, "X", "'X'", "expected an SBP (S(i), B or P) at offset 0, found 'X'"},
        {1, "P(max)", "'P(max)'", "partial 'max' at offset 2 is not supported; Loom has only P(sum)"},
        {1, "P()", "'P()'", "expected 'sum' at offset 2, found ')'"},
        {1, "P(sum", "'P(sum'", "expected ')' at offset 5 to close 'P(' at offset 0, found the end"},
        {1, "BB", "'BB'", "unexpected character at offset 1 after the SBP, found 'B'"},
        {1, " B", "' B'", "expected an SBP (S(i), B or P) at offset 0, found whitespace (allowed only between the values of a 2-D SBP"},
        {1, "B ", "'B '", "unexpected character at offset 1 after the SBP, found whitespace"},
        {1, "S( 0)", "'S( 0)'", "expected a split axis (0 to 5) at offset 2, found whitespace"},
        {1, "(S(0), B)", "'(S(0), B)'", "expected an SBP (S(i), B or P) at offset 0, found '('"},
        {2, "(S(0), B, P)", "'(S(0), B, P)'", "a third value at offset 10; an SBP has at most 2 levels"},
        {2, "(S(0), B]", "'(S(0), B]'", "']' at offset 8 does not match '(' at offset 0"},
        {2, "[S(0), B)", "'[S(0), B)'", "')' at offset 8 does not match '[' at offset 0"},
        {2, "(S(0), B", "'(S(0), B'", "expected ',' or ')' at offset 8, found the end"},
        {2, "(S(0) B)", "'(S(0) B)'", "expected ',' or ')' at offset 6, found 'B'"},
        {2, "()", "'()'", "expected an SBP (S(i), B or P) at offset 1, found ')'"},
        {2, "(S(0),)", "'(S(0),)'", "expected an SBP (S(i), B or P) at offset 6, found ')'"},
        {2, "(B, B) ", "'(B, B) '", "unexpected character at offset 6 after the SBP, found whitespace"},
        {2, " (B, B)", "' (B, B)'", "at offset 0, found whitespace"},
        {2, "(B,\tB)", "'(B,\\x09B)'", "at offset 3, found whitespace"},
        {2, "((B))", "'((B))'", "expected an SBP (S(i), B or P) at offset 1, found '('"},
        {2, "B\x80", "'B\\x80'", "found byte 0x80"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_error err = {0};
        loom_status st;
        loom_nd_sbp nd = loom_nd_sbp_1d(loom_broadcast()), before = nd;
        if (cases[i].nd == 1) {
            loom_sbp one = loom_broadcast();
            st = loom_sbp_parse(cases[i].in, &one, &err);
            ck_assert(loom_sbp_equal(one, loom_broadcast())); /* untouched on error */
        } else {
            st = loom_nd_sbp_parse(cases[i].in, &nd, &err);
            ck_assert(loom_nd_sbp_equal(&nd, &before));
        }
        ck_assert_msg(st == LOOM_ERR_INVALID, "'%s' parsed", cases[i].in);
        char quoted[128];
        snprintf(quoted, sizeof quoted, "SBP %s: ", cases[i].quoted);
        ck_assert_msg(!strncmp(err.msg, quoted, strlen(quoted)), "'%s': message '%s' does not start with \"%s\"", cases[i].in,
                      err.msg, quoted);
        ck_assert_msg(strstr(err.msg, cases[i].needle), "'%s': message '%s' lacks \"%s\"", cases[i].in, err.msg, cases[i].needle);
    }
    loom_error err = {0};
    loom_sbp one;
    ck_assert_int_eq(loom_sbp_parse(NULL, &one, &err), LOOM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "SBP: the string is NULL");
    ck_assert_int_eq(loom_sbp_parse("B", NULL, &err), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_nd_sbp_parse("B", NULL, NULL), LOOM_ERR_INVALID);
}
END_TEST

START_TEST(test_sbp_check)
{
    static const struct {
        loom_sbp s;
        int ndim;
        const char *msg; /* NULL: valid */
    } cases[] = {
        {{LOOM_SBP_SPLIT, 3}, 2, "S(3) splits axis 3 of a 2-D tensor"},
        {{LOOM_SBP_SPLIT, 2}, 2, "S(2) splits axis 2 of a 2-D tensor"},
        {{LOOM_SBP_SPLIT, 1}, 2, NULL},
        {{LOOM_SBP_SPLIT, 0}, 0, "S(0) splits axis 0 of a 0-D tensor (a scalar cannot be split)"},
        {{LOOM_SBP_SPLIT, -1}, 2, "S(-1) splits a negative axis; axes count from 0"},
        {{LOOM_SBP_BROADCAST, 0}, 0, NULL},
        {{LOOM_SBP_PARTIAL_SUM, 0}, 6, NULL},
        {{LOOM_SBP_UNSET, 0}, 2, "the SBP is unset"},
        {{LOOM_SBP_KIND_COUNT, 0}, 2, "SBP kind 4 is not S, B or P"},
        {{LOOM_SBP_BROADCAST, 0}, 7, "a tensor of 7 dims"},
        {{LOOM_SBP_BROADCAST, 0}, -1, "a tensor of -1 dims"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        loom_error err = {0};
        loom_status st = loom_sbp_check(cases[i].s, cases[i].ndim, &err);
        if (!cases[i].msg) {
            ck_assert_msg(st == LOOM_OK, "case %zu: %s", i, err.msg);
            continue;
        }
        ck_assert_int_eq(st, LOOM_ERR_INVALID);
        ck_assert_msg(strstr(err.msg, cases[i].msg), "case %zu: message '%s' lacks \"%s\"", i, err.msg, cases[i].msg);
    }

    /* Levels against the placement's hierarchy. */
    loom_placement *flat = loom_placement_parse("cuda:0-3", NULL), *grid = loom_placement_parse("@0-1/cuda:0-3", NULL);
    ck_assert(flat && grid);
    loom_nd_sbp s0 = loom_nd_sbp_1d(loom_split(0)), s0b = loom_nd_sbp_2d(loom_split(0), loom_broadcast()),
                bad = loom_nd_sbp_2d(loom_broadcast(), loom_split(3)), bad1 = loom_nd_sbp_1d(loom_split(3));
    loom_error err = {0};
    ck_assert_int_eq(loom_nd_sbp_check(&s0, flat, 2, &err), LOOM_OK);
    ck_assert_int_eq(loom_nd_sbp_check(&s0b, grid, 2, &err), LOOM_OK);
    ck_assert_int_eq(loom_nd_sbp_check(&s0b, flat, 2, &err), LOOM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "SBP (S(0), B) has 2 levels but placement 'cuda:0-3' has a 1-D hierarchy [4]");
    ck_assert_int_eq(loom_nd_sbp_check(&s0, grid, 2, &err), LOOM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "SBP S(0) has 1 level but placement '@0-1/cuda:0-3' has a 2-D hierarchy [2, 4]");
    ck_assert_int_eq(loom_nd_sbp_check(&bad, grid, 2, &err), LOOM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "level 1 of (B, S(3)) on '@0-1/cuda:0-3': S(3) splits axis 3 of a 2-D tensor");
    ck_assert_int_eq(loom_nd_sbp_check(&bad1, flat, 2, &err), LOOM_ERR_INVALID);
    ck_assert_str_eq(err.msg, "S(3) splits axis 3 of a 2-D tensor");
    ck_assert_int_eq(loom_nd_sbp_check(NULL, flat, 2, &err), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_nd_sbp_check(&s0, NULL, 2, &err), LOOM_ERR_INVALID);
    loom_placement_free(flat);
    loom_placement_free(grid);
}
END_TEST

/* ---- split arithmetic --------------------------------------------------------------------- */

START_TEST(test_split_part_exhaustive)
{
    /* Plain comparisons in the loop (in fork mode each Check assertion costs a system call);
     * the first bad case fails with its numbers. */
    for (int64_t n = 0; n <= 300; n++)
        for (int k = 1; k <= 70; k++) {
            int64_t next = 0, first = -1, prev = -1;
            for (int j = 0; j < k; j++) {
                int64_t start = -1, size = -1;
                loom_status st = loom_split_part(n, k, j, &start, &size);
                if (first < 0)
                    first = size;
                int ok = st == LOOM_OK && start == next && size >= 0 && first - size <= 1 /* differ by at most 1 */
                         && (prev < 0 || size <= prev)                                  /* larger parts first */
                         && size == n / k + (j < n % k);                                /* the first n % k larger */
                if (!ok)
                    ck_abort_msg("n %lld k %d j %d: status %d, part [%lld, +%lld), expected start %lld", (long long)n, k, j, st,
                                 (long long)start, (long long)size, (long long)next);
                next = start + size;
                prev = size;
            }
            if (next != n) /* the parts cover [0, n) exactly once */
                ck_abort_msg("n %lld k %d: parts end at %lld", (long long)n, k, (long long)next);
        }

    /* No overflow at the top of the range. */
    int64_t start, size, n = INT64_MAX;
    for (int k = 1; k <= 7; k++) {
        ck_assert_int_eq(loom_split_part(n, k, k - 1, &start, &size), LOOM_OK);
        ck_assert(start + size == n);
    }
    ck_assert_int_eq(loom_split_part(10, 4, 1, NULL, &size), LOOM_OK);
    ck_assert_int_eq(size, 3);

    /* Invalid arguments leave the outputs alone. */
    static const struct {
        int64_t n;
        int k, j;
    } bad[] = {{-1, 2, 0}, {10, 0, 0}, {10, -3, 0}, {10, 4, 4}, {10, 4, -1}, {-(INT64_C(1) << 62), 2, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        start = size = 77;
        ck_assert_int_eq(loom_split_part(bad[i].n, bad[i].k, bad[i].j, &start, &size), LOOM_ERR_INVALID);
        ck_assert(start == 77 && size == 77);
    }
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sbp_parse");
    TCase *sb = tcase_create("sbp");
    tcase_add_test(sb, test_sbp_values);
    tcase_add_test(sb, test_sbp_roundtrip_all);
    tcase_add_test(sb, test_sbp_errors);
    tcase_add_test(sb, test_sbp_check);
    tcase_add_test(sb, test_split_part_exhaustive);
    suite_add_tcase(s, sb);
    return s;
}

int main(void) { return lt_run_suite(suite()); }
