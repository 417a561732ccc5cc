/* Shared by the placement and SBP parsers (internal): the cursor, and messages that quote the
 * input. */
#ifndef LOOM_SBP_PARSE_H
#define LOOM_SBP_PARSE_H

#include <loom/core.h>

typedef struct loom__parser {
    const char *s;
    size_t pos;
    loom_error *err;
    const char *what; /* "placement", "SBP": the first word of every message */
    char q[256];      /* s, quoted */
} loom__parser;

/* A cursor at the start of s for `what`, with s quoted for messages. */
loom__parser loom__parser_start(const char *s, const char *what, loom_error *err);
/* Copies s for a message: at most 60 characters, bytes outside printable ASCII as \xNN and "..."
 * when cut, so that a message stays one readable line whatever the input. */
void loom__parse_quote(const char *s, char out[256]);
/* Sets "<what> '<s>': <detail>" and returns LOOM_ERR_INVALID (-1), so that a parsing function
 * returning a status or -1 can `return loom__parse_fail(...)`. */
int loom__parse_fail(loom__parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
