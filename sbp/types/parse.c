/* Shared by the placement and SBP parsers (see parse.h). */
#include "sbp/types/parse.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void loom__parse_quote(const char *s, char out[256])
{
    size_t n = 0, i = 0;
    for (; s[i] && i < 60; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out[n++] = (char)c;
        else
            n += (size_t)snprintf(out + n, 5, "\\x%02x", c);
    }
    if (s[i])
        memcpy(out + n, "...", 3), n += 3;
    out[n] = 0;
}

loom__parser loom__parser_start(const char *s, const char *what, loom_error *err)
{
    loom__parser ps = {.s = s, .err = err, .what = what};
    loom__parse_quote(s, ps.q);
    return ps;
}

int loom__parse_fail(loom__parser *ps, const char *fmt, ...)
{
    char detail[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    loom_error_set(ps->err, LOOM_ERR_INVALID, "%s '%s': %s", ps->what, ps->q, detail);
    return LOOM_ERR_INVALID;
}
