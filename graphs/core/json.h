/* A small JSON reader and string writer (internal): the whole text parsed into a tree of values, each with the byte
 * offset it starts at, so that a reader of a document can say where it is wrong. Strings are
 * decoded (escapes, \uXXXX as UTF-8); integers are kept exactly (int64), other numbers as
 * doubles. Nesting is bounded (LOOM__JSON_MAX_DEPTH). */
#ifndef LOOM_GRAPHS_JSON_H
#define LOOM_GRAPHS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define LOOM__JSON_MAX_DEPTH 64

typedef enum loom__json_kind { LOOM__JSON_NULL, LOOM__JSON_BOOL, LOOM__JSON_NUM, LOOM__JSON_STR, LOOM__JSON_ARR, LOOM__JSON_OBJ } loom__json_kind;

typedef struct loom__json_val {
    loom__json_kind kind;
    size_t at;       /* byte offset of its first character */
    int is_int;      /* a number written without fraction or exponent that fits an int64 */
    int64_t i;       /* numbers (is_int), booleans */
    double f;        /* numbers */
    char *s;         /* strings: decoded, NUL-terminated (a NUL inside ends it) */
    const char *key; /* a member of an object: its name */
    int first, next; /* first child and next sibling (indices in the document), -1 for none */
    int n;           /* children */
} loom__json_val;

typedef struct loom__json {
    loom__json_val *v; /* v[0] is the root */
    int n, cap;
    char *strings;     /* the decoded strings */
    size_t nstr;
} loom__json;

/* Parses len bytes of text; 0, or -1 with msg ("byte 120: expected ',' or '}'") and doc empty. */
int loom__json_parse(const char *text, size_t len, loom__json *doc, char *msg, size_t msglen);
/* Parses the bytes [begin, end) of text, a document inside a file of other bytes: the offsets of
 * the values and of msg are text's (the file's). */
int loom__json_parse_range(const char *text, size_t begin, size_t end, loom__json *doc, char *msg, size_t msglen);
void loom__json_free(loom__json *doc);
/* Writes s as a JSON string (quotes, escapes). */
void loom__json_put_str(FILE *f, const char *s);

/* The member of object o named key, or -1 (o not an object, or no such member). */
int loom__json_get(const loom__json *doc, int o, const char *key);

#endif
