/* The JSON reader (see json.h): recursive descent over the text, values appended to one array. */
#include "graphs/core/json.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct reader {
    const char *t;
    size_t len, at;
    loom__json *doc;
    char *msg;
    size_t msglen;
    int failed;
} reader;

static int fail(reader *r, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(reader *r, size_t at, const char *fmt, ...)
{
    if (r->failed)
        return -1;
    r->failed = 1;
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(r->msg, r->msglen, "byte %zu: %s", at, what);
    return -1;
}

static void skip_space(reader *r)
{
    while (r->at < r->len && (r->t[r->at] == ' ' || r->t[r->at] == '\t' || r->t[r->at] == '\n' || r->t[r->at] == '\r'))
        r->at++;
}

static int new_val(reader *r, loom__json_kind kind, size_t at)
{
    loom__json *d = r->doc;
    if (d->n == d->cap) {
        int cap = d->cap ? d->cap * 2 : 256;
        loom__json_val *v = realloc(d->v, (size_t)cap * sizeof *v);
        if (!v)
            return fail(r, at, "out of memory");
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n] = (loom__json_val){.kind = kind, .at = at, .first = -1, .next = -1};
    return d->n++;
}

static int hex4(reader *r, unsigned *out)
{
    if (r->len - r->at < 4)
        return fail(r, r->at, "a \\u escape needs four hex digits");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = r->t[r->at + (size_t)i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return fail(r, r->at + (size_t)i, "'%c' is not a hex digit", c);
    }
    r->at += 4;
    *out = v;
    return 0;
}

static void put_utf8(char *s, size_t *n, unsigned c)
{
    if (c < 0x80) {
        s[(*n)++] = (char)c;
    } else if (c < 0x800) {
        s[(*n)++] = (char)(0xC0 | (c >> 6));
        s[(*n)++] = (char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        s[(*n)++] = (char)(0xE0 | (c >> 12));
        s[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
        s[(*n)++] = (char)(0x80 | (c & 0x3F));
    } else {
        s[(*n)++] = (char)(0xF0 | (c >> 18));
        s[(*n)++] = (char)(0x80 | ((c >> 12) & 0x3F));
        s[(*n)++] = (char)(0x80 | ((c >> 6) & 0x3F));
        s[(*n)++] = (char)(0x80 | (c & 0x3F));
    }
}

/* A string at r->at (the opening quote), decoded into the document's buffer; its offset there. */
static int read_string(reader *r, size_t *off)
{
    size_t start = r->at++;
    loom__json *d = r->doc;
    *off = d->nstr;
    while (1) {
        if (r->at >= r->len)
            return fail(r, start, "a string without its closing quote");
        unsigned char c = (unsigned char)r->t[r->at];
        unsigned cp = c;
        if (c == '"') {
            r->at++;
            break;
        }
        if (c < 0x20)
            return fail(r, r->at, "a control character inside a string");
        r->at++;
        if (c == '\\') {
            if (r->at >= r->len)
                return fail(r, r->at, "an escape at the end of the text");
            char e = r->t[r->at++];
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (hex4(r, &cp))
                    return -1;
                if (cp >= 0xDC00 && cp < 0xE000)
                    return fail(r, r->at - 6, "a low surrogate without its high half");
                if (cp >= 0xD800 && cp < 0xDC00) { /* a surrogate pair */
                    unsigned lo;
                    if (r->len - r->at < 2 || r->t[r->at] != '\\' || r->t[r->at + 1] != 'u')
                        return fail(r, r->at, "a high surrogate without its low half");
                    r->at += 2;
                    if (hex4(r, &lo))
                        return -1;
                    if (lo < 0xDC00 || lo >= 0xE000)
                        return fail(r, r->at - 4, "a high surrogate without its low half");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                }
                break;
            default: return fail(r, r->at - 1, "'\\%c' is not an escape", e);
            }
        }
        /* the decoded text is never longer than the text itself, plus one NUL per string */
        if (c == '\\')
            put_utf8(d->strings, &d->nstr, cp);
        else
            d->strings[d->nstr++] = (char)c;
    }
    d->strings[d->nstr++] = 0;
    return 0;
}

static int read_value(reader *r, int depth);

static int read_number(reader *r)
{
    size_t start = r->at;
    int is_int = 1;
    if (r->at < r->len && r->t[r->at] == '-')
        r->at++;
    if (r->at >= r->len || r->t[r->at] < '0' || r->t[r->at] > '9')
        return fail(r, start, "expected a value");
    while (r->at < r->len) {
        char c = r->t[r->at];
        if (c >= '0' && c <= '9') {
        } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || (c == '-' && r->at > start)) {
            is_int = 0;
        } else {
            break;
        }
        r->at++;
    }
    char buf[64];
    size_t n = r->at - start;
    if (n >= sizeof buf)
        return fail(r, start, "a number of more than 63 characters");
    memcpy(buf, r->t + start, n);
    buf[n] = 0;
    int v = new_val(r, LOOM__JSON_NUM, start);
    if (v < 0)
        return -1;
    loom__json_val *jv = &r->doc->v[v];
    char *end;
    errno = 0;
    jv->f = strtod(buf, &end);
    if (*end)
        return fail(r, start, "'%s' is not a number", buf);
    if (is_int) {
        errno = 0;
        long long i = strtoll(buf, &end, 10);
        jv->is_int = errno == 0 && !*end;
        jv->i = (int64_t)i;
    }
    return v;
}

static int read_word(reader *r, const char *w, loom__json_kind kind, int64_t i)
{
    size_t n = strlen(w);
    if (r->len - r->at < n || memcmp(r->t + r->at, w, n))
        return fail(r, r->at, "expected a value");
    int v = new_val(r, kind, r->at);
    if (v >= 0)
        r->doc->v[v].i = i;
    r->at += n;
    return v;
}

/* The members of an object or the elements of an array, after the opening bracket. */
static int read_children(reader *r, int parent, char close, int depth)
{
    int last = -1;
    skip_space(r);
    if (r->at < r->len && r->t[r->at] == close) {
        r->at++;
        return 0;
    }
    while (1) {
        size_t key = 0;
        int obj = close == '}';
        skip_space(r);
        if (obj) {
            if (r->at >= r->len || r->t[r->at] != '"')
                return fail(r, r->at, "expected a member's name in quotes");
            if (read_string(r, &key))
                return -1;
            skip_space(r);
            if (r->at >= r->len || r->t[r->at] != ':')
                return fail(r, r->at, "expected ':' after a member's name");
            r->at++;
        }
        int v = read_value(r, depth + 1);
        if (v < 0)
            return -1;
        loom__json *d = r->doc;
        if (obj)
            d->v[v].key = (const char *)(uintptr_t)(key + 1); /* an offset for now: the buffer may move */
        if (last < 0)
            d->v[parent].first = v;
        else
            d->v[last].next = v;
        last = v;
        d->v[parent].n++;
        skip_space(r);
        if (r->at < r->len && r->t[r->at] == ',') {
            r->at++;
            continue;
        }
        if (r->at < r->len && r->t[r->at] == close) {
            r->at++;
            return 0;
        }
        return fail(r, r->at, "expected ',' or '%c'", close);
    }
}

static int read_value(reader *r, int depth)
{
    skip_space(r);
    if (depth > LOOM__JSON_MAX_DEPTH)
        return fail(r, r->at, "nested more than %d deep", LOOM__JSON_MAX_DEPTH);
    if (r->at >= r->len)
        return fail(r, r->at, "expected a value, the text ended");
    char c = r->t[r->at];
    if (c == '{' || c == '[') {
        int v = new_val(r, c == '{' ? LOOM__JSON_OBJ : LOOM__JSON_ARR, r->at);
        if (v < 0)
            return -1;
        r->at++;
        return read_children(r, v, c == '{' ? '}' : ']', depth) ? -1 : v;
    }
    if (c == '"') {
        int v = new_val(r, LOOM__JSON_STR, r->at);
        size_t off;
        if (v < 0 || read_string(r, &off))
            return -1;
        r->doc->v[v].s = (char *)(uintptr_t)(off + 1);
        return v;
    }
    if (c == 't')
        return read_word(r, "true", LOOM__JSON_BOOL, 1);
    if (c == 'f')
        return read_word(r, "false", LOOM__JSON_BOOL, 0);
    if (c == 'n')
        return read_word(r, "null", LOOM__JSON_NULL, 0);
    return read_number(r);
}

int loom__json_parse(const char *text, size_t len, loom__json *doc, char *msg, size_t msglen)
{
    return loom__json_parse_range(text, 0, len, doc, msg, msglen);
}

int loom__json_parse_range(const char *text, size_t begin, size_t end, loom__json *doc, char *msg, size_t msglen)
{
    *doc = (loom__json){0};
    reader r = {.t = text, .len = end, .at = begin, .doc = doc, .msg = msg, .msglen = msglen};
    doc->strings = malloc(end - begin + 1);
    if (!doc->strings) {
        snprintf(msg, msglen, "byte %zu: out of memory", begin);
        return -1;
    }
    int root = read_value(&r, 0);
    if (root == 0) {
        skip_space(&r);
        if (r.at < end)
            fail(&r, r.at, "text after the document");
    }
    if (root < 0 || r.failed) {
        loom__json_free(doc);
        return -1;
    }
    for (int i = 0; i < doc->n; i++) { /* offsets into the strings become pointers */
        if (doc->v[i].key)
            doc->v[i].key = doc->strings + ((uintptr_t)doc->v[i].key - 1);
        if (doc->v[i].s)
            doc->v[i].s = doc->strings + ((uintptr_t)doc->v[i].s - 1);
    }
    return 0;
}

void loom__json_free(loom__json *doc)
{
    free(doc->v);
    free(doc->strings);
    *doc = (loom__json){0};
}

int loom__json_get(const loom__json *doc, int o, const char *key)
{
    if (o < 0 || doc->v[o].kind != LOOM__JSON_OBJ)
        return -1;
    for (int c = doc->v[o].first; c >= 0; c = doc->v[c].next)
        if (!strcmp(doc->v[c].key, key))
            return c;
    return -1;
}

void loom__json_put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}
