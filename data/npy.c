/* NumPy .npy images: the header dict and the conversion of the data to a Loom dtype
 * (loom_npy_parse). The zip layer of .npz archives is in npz.c.
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 for 1.0, u32 for 2.0 and 3.0), a Python
 * dict literal such as {'descr': '<f4', 'fortran_order': False, 'shape': (5429,), } padded with
 * spaces and a newline, then numel * itemsize bytes of data. The header comes from a file that may
 * be corrupt, so the dict is parsed by hand, strictly, with every read bounded by the header. */
#include <loom/data.h>

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* '<' data is used as native data; a big-endian host would need byte swaps everywhere. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .npy reader assumes a little-endian host"
#endif


typedef enum { K_BOOL, K_INT, K_UINT, K_FLOAT } src_kind;

/* The header being parsed: p[pos..end) is what is left of the dict. */
typedef struct {
    const char *name;
    const uint8_t *p;
    size_t pos, end;
    loom_error *err;
} hdr;

static loom_status expected(hdr *h, const char *what)
{
    if (h->pos >= h->end)
        return loom_error_set(h->err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: expected %s, found the end of the header",
                    h->name, h->pos, what);
    uint8_t c = h->p[h->pos];
    if (c >= 0x20 && c < 0x7f)
        return loom_error_set(h->err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: expected %s, found '%c'", h->name, h->pos,
                    what, c);
    return loom_error_set(h->err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: expected %s, found byte 0x%02x", h->name,
                h->pos, what, c);
}

static void skip_ws(hdr *h)
{
    while (h->pos < h->end && (h->p[h->pos] == ' ' || h->p[h->pos] == '\t' || h->p[h->pos] == '\n' || h->p[h->pos] == '\r'))
        h->pos++;
}

static int peek(hdr *h) { return h->pos < h->end ? h->p[h->pos] : -1; }

static loom_status eat(hdr *h, char c, const char *what)
{
    skip_ws(h);
    if (peek(h) != (unsigned char)c)
        return expected(h, what);
    h->pos++;
    return LOOM_OK;
}

/* A Python string literal without escapes (numpy never writes any in these three keys). */
static loom_status parse_str(hdr *h, char *out, size_t cap, const char *what)
{
    skip_ws(h);
    int q = peek(h);
    if (q != '\'' && q != '"')
        return expected(h, what);
    size_t start = ++h->pos, n = 0;
    while (h->pos < h->end && h->p[h->pos] != q) {
        uint8_t c = h->p[h->pos];
        if (c == '\\' || c < 0x20 || c >= 0x7f)
            return expected(h, "a plain ASCII string without escapes");
        if (n + 1 >= cap)
            return loom_error_set(h->err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: string longer than %zu characters",
                        h->name, start, cap - 1);
        out[n++] = (char)c;
        h->pos++;
    }
    if (h->pos >= h->end)
        return expected(h, "the closing quote of a string");
    h->pos++;
    out[n] = 0;
    return LOOM_OK;
}

static int match_word(hdr *h, const char *w)
{
    size_t n = strlen(w);
    if (h->end - h->pos < n || memcmp(h->p + h->pos, w, n) != 0)
        return 0;
    /* "Truex" is not True. */
    if (h->end - h->pos > n) {
        uint8_t c = h->p[h->pos + n];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')
            return 0;
    }
    h->pos += n;
    return 1;
}

static loom_status parse_bool(hdr *h, int *v)
{
    skip_ws(h);
    if (match_word(h, "True"))
        *v = 1;
    else if (match_word(h, "False"))
        *v = 0;
    else
        return expected(h, "True or False for 'fortran_order'");
    return LOOM_OK;
}

/* A non-negative decimal integer, with Python 2's optional L suffix (old numpy wrote "(3L,)"). */
static loom_status parse_dim(hdr *h, int64_t *v)
{
    skip_ws(h);
    size_t start = h->pos;
    if (peek(h) == '-')
        return loom_error_set(h->err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: negative dimension in 'shape'", h->name,
                    start);
    if (peek(h) < '0' || peek(h) > '9')
        return expected(h, "a dimension (a non-negative integer) in 'shape'");
    uint64_t x = 0;
    while (peek(h) >= '0' && peek(h) <= '9') {
        unsigned d = (unsigned)(h->p[h->pos] - '0');
        if (x > ((uint64_t)INT64_MAX - d) / 10)
            return loom_error_set(h->err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: dimension in 'shape' overflows int64",
                        h->name, start);
        x = x * 10 + d;
        h->pos++;
    }
    if (peek(h) == 'L' || peek(h) == 'l')
        h->pos++;
    *v = (int64_t)x;
    return LOOM_OK;
}

/* A tuple: () for a scalar, (n,) for 1-D, (a, b) or (a, b,) beyond. "(n)" is an int, not a tuple. */
static loom_status parse_shape(hdr *h, int *ndim, int64_t *shape)
{
    loom_status s = eat(h, '(', "'(' opening the tuple of 'shape'");
    if (s)
        return s;
    *ndim = 0;
    skip_ws(h);
    if (peek(h) == ')') {
        h->pos++;
        return LOOM_OK;
    }
    for (;;) {
        int64_t d = 0;
        if ((s = parse_dim(h, &d)))
            return s;
        if (*ndim >= LOOM_MAX_DIMS)
            return loom_error_set(h->err, LOOM_ERR_UNSUPPORTED, "%s: .npy header at offset %zu: 'shape' has more than %d dimensions",
                        h->name, h->pos, LOOM_MAX_DIMS);
        shape[(*ndim)++] = d;
        skip_ws(h);
        if (peek(h) == ')') {
            if (*ndim == 1)
                return expected(h, "',' after the only dimension of a 1-D 'shape' (a tuple)");
            h->pos++;
            return LOOM_OK;
        }
        if ((s = eat(h, ',', "',' or ')' in 'shape'")))
            return s;
        skip_ws(h);
        if (peek(h) == ')') {
            h->pos++;
            return LOOM_OK;
        }
    }
}

typedef struct {
    char descr[32];
    int fortran;
    int ndim;
    int64_t shape[LOOM_MAX_DIMS];
} npy_header;

static loom_status parse_dict(hdr *h, npy_header *out)
{
    loom_status s = eat(h, '{', "'{' opening the header dict");
    if (s)
        return s;
    int seen[3] = {0, 0, 0};
    for (;;) {
        skip_ws(h);
        if (peek(h) == '}') {
            h->pos++;
            break;
        }
        size_t key_at = h->pos;
        char key[32];
        if ((s = parse_str(h, key, sizeof key, "a quoted key or '}' in the header dict")))
            return s;
        int k = !strcmp(key, "descr") ? 0 : !strcmp(key, "fortran_order") ? 1 : !strcmp(key, "shape") ? 2 : -1;
        if (k < 0)
            return loom_error_set(h->err, LOOM_ERR_FORMAT,
                        "%s: .npy header at offset %zu: unexpected key '%s' (expected 'descr', 'fortran_order', 'shape')",
                        h->name, key_at, key);
        if (seen[k]++)
            return loom_error_set(h->err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: key '%s' appears twice", h->name, key_at,
                        key);
        if ((s = eat(h, ':', "':' after a key")))
            return s;
        skip_ws(h);
        if (k == 0 && peek(h) == '[')
            return loom_error_set(h->err, LOOM_ERR_UNSUPPORTED, "%s: .npy header at offset %zu: structured dtype (a list 'descr')",
                        h->name, h->pos);
        s = k == 0 ? parse_str(h, out->descr, sizeof out->descr, "a quoted dtype string for 'descr'")
            : k == 1 ? parse_bool(h, &out->fortran)
                     : parse_shape(h, &out->ndim, out->shape);
        if (s)
            return s;
        skip_ws(h);
        if (peek(h) == ',') {
            h->pos++;
            continue;
        }
        if ((s = eat(h, '}', "',' or '}' after a value in the header dict")))
            return s;
        break;
    }
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return loom_error_set(h->err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: the dict has no key '%s'", h->name,
                        h->pos, keys[k]);
    skip_ws(h);
    if (h->pos != h->end)
        return expected(h, "only spaces and a newline after the header dict");
    return LOOM_OK;
}

/* Maps a descr to kind and item size; '=' and '|' mean native, which is little-endian here. */
static loom_status parse_descr(const char *name, const char *d, size_t at, src_kind *kind, size_t *size, loom_error *err)
{
    const char *p = d;
    char order = '=';
    if (*p == '<' || *p == '>' || *p == '|' || *p == '=')
        order = *p++;
    int ok = 1;
    switch (p[0]) {
    case 'b':
        *kind = K_BOOL;
        break;
    case 'i':
        *kind = K_INT;
        break;
    case 'u':
        *kind = K_UINT;
        break;
    case 'f':
        *kind = K_FLOAT;
        break;
    default:
        ok = 0;
    }
    if (ok) {
        *size = p[1] >= '1' && p[1] <= '8' && !p[2] ? (size_t)(p[1] - '0') : 0;
        if (*kind == K_BOOL)
            ok = *size == 1;
        else if (*kind == K_FLOAT)
            ok = *size == 4 || *size == 8;
        else
            ok = *size == 1 || *size == 2 || *size == 4 || *size == 8;
    }
    if (!ok)
        return loom_error_set(err, LOOM_ERR_UNSUPPORTED,
                    "%s: .npy header at offset %zu: dtype '%s' is not supported (expected bool, int8-64, uint8-64, "
                    "float32 or float64)",
                    name, at, d);
    if (order == '>' && *size > 1)
        return loom_error_set(err, LOOM_ERR_UNSUPPORTED, "%s: .npy header at offset %zu: dtype '%s' is big-endian (expected '<')",
                    name, at, d);
    return LOOM_OK;
}

static int64_t load_int(const uint8_t *p, size_t size)
{
    switch (size) {
    case 1: {
        int8_t v;
        memcpy(&v, p, 1);
        return v;
    }
    case 2: {
        int16_t v;
        memcpy(&v, p, 2);
        return v;
    }
    case 4: {
        int32_t v;
        memcpy(&v, p, 4);
        return v;
    }
    default: {
        int64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    }
}

static uint64_t load_uint(const uint8_t *p, size_t size)
{
    uint64_t v = 0;
    memcpy(&v, p, size); /* little-endian: the low bytes come first */
    return v;
}

static double load_float(const uint8_t *p, size_t size)
{
    if (size == 4) {
        float v;
        memcpy(&v, p, 4);
        return v;
    }
    double v;
    memcpy(&v, p, 8);
    return v;
}

static void store_int(void *dst, loom_dtype t, int64_t i, int64_t v)
{
    switch (t) {
    case LOOM_F32:
        ((float *)dst)[i] = (float)v;
        break;
    case LOOM_F64:
        ((double *)dst)[i] = (double)v;
        break;
    case LOOM_I32:
        ((int32_t *)dst)[i] = (int32_t)v;
        break;
    case LOOM_I64:
        ((int64_t *)dst)[i] = v;
        break;
    default:
        ((uint8_t *)dst)[i] = (uint8_t)v;
        break;
    }
}

/* 1 when the magnitude m of an integer is exact in a float of `digits` significant bits: its
 * bits from the highest set one to the lowest fit them (2^53 + 1 does not fit f64's 53). */
static int exact_in(uint64_t m, int digits) { return m == 0 || 64 - __builtin_clzll(m) - __builtin_ctzll(m) <= digits; }

static int float_digits(loom_dtype t) { return t == LOOM_F32 ? 24 : 53; }

static int int_fits(loom_dtype t, int64_t v)
{
    switch (t) {
    case LOOM_I32:
        return v >= INT32_MIN && v <= INT32_MAX;
    case LOOM_U8:
        return v >= 0 && v <= 255;
    case LOOM_F32:
    case LOOM_F64: /* |INT64_MIN| = 2^63 is exact in both */
        return exact_in(v < 0 ? -(uint64_t)v : (uint64_t)v, float_digits(t));
    default:
        return 1; /* i64 */
    }
}

/* An integer that a float dtype cannot hold exactly: the message says the nearest it holds. */
static loom_status inexact(const char *name, int64_t i, const char *value, loom_dtype t, double nearest, loom_error *err)
{
    return loom_error_set(err, LOOM_ERR_FORMAT, "%s: element %lld is %s, which does not fit %s exactly (the nearest %s is %.17g)",
                          name, (long long)i, value, loom_dtype_name(t), loom_dtype_name(t), nearest);
}

/* Converts n elements of src to out's dtype; out is allocated. */
static loom_status convert(const char *name, const uint8_t *src, src_kind kind, size_t size, int64_t n, loom_array *out,
                           loom_error *err)
{
    loom_dtype t = out->dtype;
    /* The common case, the file's own type: a plain copy. */
    if ((kind == K_FLOAT && ((size == 4 && t == LOOM_F32) || (size == 8 && t == LOOM_F64))) ||
        (kind == K_INT && ((size == 4 && t == LOOM_I32) || (size == 8 && t == LOOM_I64))) ||
        (kind == K_UINT && size == 1 && t == LOOM_U8)) {
        if (n)
            memcpy(out->data, src, (size_t)n * size);
        return LOOM_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *p = src + (size_t)i * size;
        switch (kind) {
        case K_FLOAT: {
            /* f64 to f32 rounds to nearest (underflow included: it is rounding too); a finite value
             * beyond f32's range would become inf, so it is refused. NaN and inf stay as they are. */
            double v = load_float(p, size);
            if (t == LOOM_F32) {
                float f = (float)v;
                if (isinf(f) && !isinf(v))
                    return loom_error_set(err, LOOM_ERR_FORMAT,
                                          "%s: element %lld is %.17g, which does not fit f32 (largest finite %.9g)", name,
                                          (long long)i, v, (double)FLT_MAX);
                ((float *)out->data)[i] = f;
            } else {
                ((double *)out->data)[i] = v;
            }
            break;
        }
        case K_BOOL:
            store_int(out->data, t, i, *p != 0);
            break;
        case K_INT: {
            int64_t v = load_int(p, size);
            if (!int_fits(t, v)) {
                char b[24];
                snprintf(b, sizeof b, "%lld", (long long)v);
                if (loom_dtype_is_float(t))
                    return inexact(name, i, b, t, t == LOOM_F32 ? (double)(float)v : (double)v, err);
                return loom_error_set(err, LOOM_ERR_FORMAT, "%s: element %lld is %s, which does not fit %s", name, (long long)i,
                                      b, loom_dtype_name(t));
            }
            store_int(out->data, t, i, v);
            break;
        }
        case K_UINT: {
            uint64_t v = load_uint(p, size);
            int fits = loom_dtype_is_float(t) ? exact_in(v, float_digits(t)) : v <= (uint64_t)INT64_MAX && int_fits(t, (int64_t)v);
            if (!fits) {
                char b[24];
                snprintf(b, sizeof b, "%llu", (unsigned long long)v);
                if (loom_dtype_is_float(t))
                    return inexact(name, i, b, t, t == LOOM_F32 ? (double)(float)v : (double)v, err);
                return loom_error_set(err, LOOM_ERR_FORMAT, "%s: element %lld is %s, which does not fit %s", name, (long long)i,
                                      b, loom_dtype_name(t));
            }
            if (t == LOOM_F32)
                ((float *)out->data)[i] = (float)v;
            else if (t == LOOM_F64)
                ((double *)out->data)[i] = (double)v;
            else
                store_int(out->data, t, i, (int64_t)v);
            break;
        }
        }
    }
    return LOOM_OK;
}

loom_status loom_npy_parse(const void *data, size_t size, const char *name, loom_dtype dtype, loom_array *out,
                           loom_error *err)
{
    if (out)
        *out = (loom_array){0};
    if (!name)
        name = "<npy>";
    if (!out || (!data && size) || !loom_dtype_size(dtype))
        return loom_error_set(err, LOOM_ERR_INVALID, "%s: loom_npy_parse: NULL output or data, or an invalid dtype", name);
    const uint8_t *p = data;
    static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (size < 10 || memcmp(p, magic, 6) != 0) {
        if (size >= 6 && memcmp(p, magic, 6) == 0)
            return loom_error_set(err, LOOM_ERR_FORMAT, "%s: .npy header at offset 6: expected a version and header length, found "
                        "the end of the data (%zu bytes)", name, size);
        return loom_error_set(err, LOOM_ERR_FORMAT, "%s: offset 0: expected the .npy magic \\x93NUMPY (%zu bytes of data)", name,
                    size);
    }
    unsigned major = p[6], minor = p[7];
    if (major < 1 || major > 3 || minor != 0)
        return loom_error_set(err, LOOM_ERR_UNSUPPORTED, "%s: offset 6: .npy version %u.%u (expected 1.0, 2.0 or 3.0)", name, major,
                    minor);
    size_t hstart, hlen;
    if (major == 1) {
        hstart = 10;
        hlen = (size_t)p[8] | (size_t)p[9] << 8;
    } else {
        if (size < 12)
            return loom_error_set(err, LOOM_ERR_FORMAT, "%s: offset 8: expected a 4-byte header length, found the end of the data "
                        "(%zu bytes)", name, size);
        hstart = 12;
        hlen = (size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24;
    }
    if (hlen > size - hstart)
        return loom_error_set(err, LOOM_ERR_FORMAT, "%s: offset 8: header length %zu runs past the end of the data (%zu bytes, "
                    "header from offset %zu)", name, hlen, size, hstart);

    npy_header h = {.ndim = 0};
    hdr ps = {.name = name, .p = p, .pos = hstart, .end = hstart + hlen, .err = err};
    loom_status s = parse_dict(&ps, &h);
    if (s)
        return s;
    src_kind kind = K_BOOL;
    size_t isize = 0;
    if ((s = parse_descr(name, h.descr, hstart, &kind, &isize, err)))
        return s;
    if (h.fortran)
        return loom_error_set(err, LOOM_ERR_UNSUPPORTED, "%s: .npy header at offset %zu: fortran_order True (expected C order)",
                    name, hstart);
    if (kind == K_FLOAT && !loom_dtype_is_float(dtype))
        return loom_error_set(err, LOOM_ERR_DTYPE, "%s: float data ('%s') cannot be read as %s", name, h.descr,
                    loom_dtype_name(dtype));

    /* numel and byte count, checked for overflow: the product of the non-zero dims is bounded even
     * for a 0-size array, so a header cannot ask for an absurd allocation either way. */
    int64_t numel = 1, nonzero = 1;
    for (int i = 0; i < h.ndim; i++) {
        if (h.shape[i] == 0) {
            numel = 0;
            continue;
        }
        if (nonzero > INT64_MAX / 16 / h.shape[i])
            return loom_error_set(err, LOOM_ERR_FORMAT, "%s: .npy header at offset %zu: shape is too large (its size overflows)",
                        name, hstart);
        nonzero *= h.shape[i];
    }
    if (numel)
        numel = nonzero;
    size_t dstart = hstart + hlen, have = size - dstart;
    uint64_t want = (uint64_t)numel * isize; /* < 2^63: numel < 2^59 and isize <= 8 */
    if (want != have)
        return loom_error_set(err, LOOM_ERR_FORMAT, "%s: data at offset %zu: expected %llu bytes (%lld elements of '%s'), found %zu",
                    name, dstart, (unsigned long long)want, (long long)numel, h.descr, have);
    s = loom_array_alloc(out, dtype, h.ndim, h.shape);
    if (s) {
        *out = (loom_array){0};
        return loom_error_set(err, s == LOOM_ERR_NOMEM ? LOOM_ERR_NOMEM : LOOM_ERR_FORMAT, "%s: cannot allocate %lld elements of %s",
                    name, (long long)numel, loom_dtype_name(dtype));
    }
    if ((s = convert(name, p + dstart, kind, isize, numel, out, err)))
        loom_array_free(out);
    return s;
}
