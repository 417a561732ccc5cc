/* SBP values: parsing, the canonical print, checks against a tensor and a placement, and the
 * split arithmetic every later SBP pass uses.
 *
 *     nd_sbp := sbp | '(' list ')' | '[' list ']'     list := sbp [ ',' sbp ]   (spaces around
 *     sbp    := 'S(' axis ')' | 'S' axis | 'B' | 'P' | 'P(sum)'                 tokens allowed
 *                                                                                in brackets only)
 * Canonical prints: "S(0)", "B", "P", "(S(0), B)". Axes are 0 .. LOOM_MAX_DIMS - 1, never
 * negative: an SBP outlives any one tensor's rank (signatures are written per op), so counting
 * from the end would give one spelling two meanings. */
#include <loom/sbp.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sbp/types/parse.h"

typedef loom__parser parser;

/* "found ..." for the character at ps->pos; whitespace gets the rule that it broke. */
static const char *found(parser *ps, char out[96])
{
    unsigned char c = (unsigned char)ps->s[ps->pos];
    if (!c)
        snprintf(out, 96, "found the end");
    else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f')
        snprintf(out, 96, "found whitespace (allowed only between the values of a 2-D SBP, as in '(S(0), B)')");
    else if (c > 0x20 && c < 0x7f)
        snprintf(out, 96, "found '%c'", c);
    else
        snprintf(out, 96, "found byte 0x%02x", c);
    return out;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static void skip_spaces(parser *ps)
{
    while (ps->s[ps->pos] == ' ')
        ps->pos++;
}

/* The axis of S(i) or Si at ps->pos. */
static loom_status axis(parser *ps, int *out)
{
    const char *s = ps->s;
    size_t at = ps->pos, end = at;
    char f[96];
    if (s[at] == '-' && is_digit(s[at + 1]))
        return loom__parse_fail(ps, "negative split axis at offset %zu: axes count from 0 (write S(1), not S(-1), for the last axis of a 2-D tensor)",
                    at);
    if (!is_digit(s[at]))
        return loom__parse_fail(ps, "expected a split axis (0 to %d) at offset %zu, %s", LOOM_MAX_DIMS - 1, at, found(ps, f));
    int v = 0;
    for (; is_digit(s[end]); end++)
        if (v < LOOM_MAX_DIMS) /* stop growing once too large: no overflow */
            v = v * 10 + (s[end] - '0');
    int nd = (int)(end - at);
    if (v >= LOOM_MAX_DIMS)
        return loom__parse_fail(ps, "split axis %.*s%s at offset %zu is over %d (tensors have at most %d dims)", nd > 20 ? 20 : nd, s + at,
                    nd > 20 ? "..." : "", at, LOOM_MAX_DIMS - 1, LOOM_MAX_DIMS);
    if (nd > 1)
        return loom__parse_fail(ps, "split axis '%.*s%s' at offset %zu has a leading zero; write %d", nd > 20 ? 20 : nd, s + at,
                    nd > 20 ? "..." : "", at, v);
    ps->pos = end;
    *out = v;
    return LOOM_OK;
}

/* One value at ps->pos. */
static loom_status one(parser *ps, loom_sbp *out)
{
    const char *s = ps->s;
    size_t at = ps->pos;
    char f[96];
    switch (s[at]) {
    case 'S': {
        int ax;
        ps->pos++;
        loom_status st;
        if (is_digit(s[ps->pos]) || s[ps->pos] == '-') { /* "S0": the shorthand of signature tables */
            if ((st = axis(ps, &ax)))
                return st;
        } else {
            if (s[ps->pos] != '(')
                return loom__parse_fail(ps, "expected '(' after 'S' at offset %zu, %s (a split is written S(0))", ps->pos, found(ps, f));
            ps->pos++;
            if ((st = axis(ps, &ax)))
                return st;
            if (s[ps->pos] != ')')
                return loom__parse_fail(ps, "expected ')' at offset %zu to close 'S(' at offset %zu, %s", ps->pos, at, found(ps, f));
            ps->pos++;
        }
        *out = loom_split(ax);
        return LOOM_OK;
    }
    case 'B':
        ps->pos++;
        *out = loom_broadcast();
        return LOOM_OK;
    case 'P':
        ps->pos++;
        if (s[ps->pos] == '(') {
            size_t w = ++ps->pos, end = w;
            while ((s[end] >= 'a' && s[end] <= 'z') || (s[end] >= 'A' && s[end] <= 'Z'))
                end++;
            if (end - w != 3 || memcmp(s + w, "sum", 3)) {
                if (end == w)
                    return loom__parse_fail(ps, "expected 'sum' at offset %zu, %s (a partial sum is written P or P(sum))", w, found(ps, f));
                int n = (int)(end - w);
                return loom__parse_fail(ps, "partial '%.*s%s' at offset %zu is not supported; Loom has only P(sum)", n > 20 ? 20 : n, s + w,
                            n > 20 ? "..." : "", w);
            }
            ps->pos = end;
            if (s[ps->pos] != ')')
                return loom__parse_fail(ps, "expected ')' at offset %zu to close 'P(' at offset %zu, %s", ps->pos, at, found(ps, f));
            ps->pos++;
        }
        *out = loom_partial_sum();
        return LOOM_OK;
    case 's':
    case 'b':
    case 'p':
        return loom__parse_fail(ps, "unknown SBP '%c' at offset %zu; expected S(i), B or P (upper case)", s[at], at);
    default:
        return loom__parse_fail(ps, "expected an SBP (S(i), B or P) at offset %zu, %s", at, found(ps, f));
    }
}

static loom_status parse(const char *s, int levels, loom_nd_sbp *out, loom_error *err)
{
    if (!s || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "SBP: %s is NULL", s ? "the output" : "the string");
    parser ps = loom__parser_start(s, "SBP", err);
    if (!*s)
        return loom__parse_fail(&ps, "the string is empty; expected S(i), B or P%s", levels > 1 ? ", or two of them as in '(S(0), B)'" : "");
    loom_nd_sbp v = {0};
    loom_status st;
    char f[96];
    if (levels > 1 && (s[0] == '(' || s[0] == '[')) {
        char close = s[0] == '(' ? ')' : ']', other = s[0] == '(' ? ']' : ')';
        ps.pos = 1;
        for (;;) {
            skip_spaces(&ps);
            if (v.n == LOOM_SBP_MAX_LEVELS)
                return loom__parse_fail(&ps, "a third value at offset %zu; an SBP has at most %d levels", ps.pos, LOOM_SBP_MAX_LEVELS);
            if ((st = one(&ps, &v.v[v.n])))
                return st;
            v.n++;
            skip_spaces(&ps);
            if (s[ps.pos] == ',') {
                ps.pos++;
                continue;
            }
            if (s[ps.pos] == close) {
                ps.pos++;
                break;
            }
            if (s[ps.pos] == other)
                return loom__parse_fail(&ps, "'%c' at offset %zu does not match '%c' at offset 0", other, ps.pos, s[0]);
            return loom__parse_fail(&ps, "expected ',' or '%c' at offset %zu, %s", close, ps.pos, found(&ps, f));
        }
    } else {
        if ((st = one(&ps, &v.v[0])))
            return st;
        v.n = 1;
    }
    if (s[ps.pos])
        return loom__parse_fail(&ps, "unexpected character at offset %zu after the SBP, %s", ps.pos, found(&ps, f));
    *out = v;
    return LOOM_OK;
}

loom_status loom_sbp_parse(const char *s, loom_sbp *out, loom_error *err)
{
    loom_nd_sbp v;
    if (!out)
        return loom_error_set(err, LOOM_ERR_INVALID, "SBP: the output is NULL");
    loom_status st = parse(s, 1, &v, err);
    if (st == LOOM_OK)
        *out = v.v[0];
    return st;
}

loom_status loom_nd_sbp_parse(const char *s, loom_nd_sbp *out, loom_error *err) { return parse(s, LOOM_SBP_MAX_LEVELS, out, err); }

size_t loom_sbp_str(loom_sbp s, char *buf, size_t len)
{
    char tmp[32];
    switch (s.kind) {
    case LOOM_SBP_SPLIT: snprintf(tmp, sizeof tmp, "S(%d)", s.axis); break;
    case LOOM_SBP_BROADCAST: snprintf(tmp, sizeof tmp, "B"); break;
    case LOOM_SBP_PARTIAL_SUM: snprintf(tmp, sizeof tmp, "P"); break;
    case LOOM_SBP_UNSET: snprintf(tmp, sizeof tmp, "unset"); break;
    default: snprintf(tmp, sizeof tmp, "?"); break;
    }
    if (buf && len)
        snprintf(buf, len, "%s", tmp);
    return strlen(tmp);
}

size_t loom_nd_sbp_str(const loom_nd_sbp *s, char *buf, size_t len)
{
    char a[32], b[32], tmp[80];
    if (!s || s->n < 0 || s->n > LOOM_SBP_MAX_LEVELS)
        snprintf(tmp, sizeof tmp, "?");
    else if (s->n == 0)
        snprintf(tmp, sizeof tmp, "unset");
    else if (s->n == 1)
        loom_sbp_str(s->v[0], tmp, sizeof tmp);
    else {
        loom_sbp_str(s->v[0], a, sizeof a);
        loom_sbp_str(s->v[1], b, sizeof b);
        snprintf(tmp, sizeof tmp, "(%s, %s)", a, b);
    }
    if (buf && len)
        snprintf(buf, len, "%s", tmp);
    return strlen(tmp);
}

int loom_sbp_equal(loom_sbp a, loom_sbp b) { return a.kind == b.kind && (a.kind != LOOM_SBP_SPLIT || a.axis == b.axis); }

int loom_nd_sbp_equal(const loom_nd_sbp *a, const loom_nd_sbp *b)
{
    if (!a || !b || a->n != b->n || a->n < 0 || a->n > LOOM_SBP_MAX_LEVELS)
        return a == b;
    for (int i = 0; i < a->n; i++)
        if (!loom_sbp_equal(a->v[i], b->v[i]))
            return 0;
    return 1;
}

loom_status loom_sbp_check(loom_sbp s, int ndim, loom_error *err)
{
    if (ndim < 0 || ndim > LOOM_MAX_DIMS)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_sbp_check: a tensor of %d dims (0 to %d)", ndim, LOOM_MAX_DIMS);
    switch (s.kind) {
    case LOOM_SBP_SPLIT:
        if (s.axis < 0)
            return loom_error_set(err, LOOM_ERR_INVALID, "S(%d) splits a negative axis; axes count from 0", s.axis);
        if (s.axis >= ndim)
            return loom_error_set(err, LOOM_ERR_INVALID, "S(%d) splits axis %d of a %d-D tensor%s", s.axis, s.axis, ndim,
                                  ndim ? "" : " (a scalar cannot be split)");
        return LOOM_OK;
    case LOOM_SBP_BROADCAST:
    case LOOM_SBP_PARTIAL_SUM: return LOOM_OK;
    case LOOM_SBP_UNSET: return loom_error_set(err, LOOM_ERR_INVALID, "the SBP is unset (none of S(i), B, P was chosen)");
    default: return loom_error_set(err, LOOM_ERR_INVALID, "SBP kind %d is not S, B or P", (int)s.kind);
    }
}

loom_status loom_nd_sbp_check(const loom_nd_sbp *s, const loom_placement *p, int ndim, loom_error *err)
{
    if (!s || !p)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_nd_sbp_check: the %s is NULL", s ? "placement" : "SBP");
    char ss[80], ps[96];
    loom_nd_sbp_str(s, ss, sizeof ss);
    if (loom_placement_str(p, ps, sizeof ps) >= sizeof ps)
        memcpy(ps + sizeof ps - 4, "...", 4);
    int dims[2], h = loom_placement_hierarchy(p, dims);
    if (s->n != h) {
        char hs[32];
        if (h == 1)
            snprintf(hs, sizeof hs, "[%d]", dims[0]);
        else
            snprintf(hs, sizeof hs, "[%d, %d]", dims[0], dims[1]);
        return loom_error_set(err, LOOM_ERR_INVALID, "SBP %s has %d level%s but placement '%s' has a %d-D hierarchy %s", ss, s->n,
                              s->n == 1 ? "" : "s", ps, h, hs);
    }
    for (int i = 0; i < s->n; i++) {
        loom_error e;
        loom_status st = loom_sbp_check(s->v[i], ndim, &e);
        if (st)
            return s->n == 1 ? loom_error_set(err, st, "%s", e.msg)
                             : loom_error_set(err, st, "level %d of %s on '%s': %s", i, ss, ps, e.msg);
    }
    return LOOM_OK;
}

loom_status loom_split_part(int64_t n, int k, int j, int64_t *start, int64_t *size)
{
    if (n < 0 || k < 1 || j < 0 || j >= k)
        return LOOM_ERR_INVALID;
    int64_t q = n / k, r = n % k;
    /* j < k and q * k <= n, so j * q + min(j, r) <= n: no overflow for any n >= 0. */
    if (start)
        *start = j * q + (j < r ? j : r);
    if (size)
        *size = q + (j < r);
    return LOOM_OK;
}
