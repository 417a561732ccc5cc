/* IDX files, the format of MNIST and Fashion-MNIST (loom_idx_read), gzip'd or not:
 *
 *   byte 0  0x00 0x00      byte 3  the number of dims, n
 *   byte 2  the type       byte 4  n dims, each a big-endian u32
 *
 * then the elements in C order, big-endian, and nothing after them. The types: 0x08 u8, 0x09 i8,
 * 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64.
 *
 * A file that starts 1f 8b is a gzip stream, read through zlib's gzread; offsets in messages are
 * of the uncompressed stream. The header's dims are believed only as far as the file can hold
 * them: an uncompressed file's size bounds them before anything is allocated, and a gzip'd file's
 * data is read in chunks into a buffer that doubles as the data arrives, so a header claiming more
 * than the stream holds fails at the stream's end, having allocated at most twice what came. */
#include <loom/data.h>

#include "data/files.h"

#include <zlib.h>

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { IDX_FIRST_CHUNK = 1 << 20, IDX_TRAILING = 4096 };

typedef struct idx_type {
    uint8_t code;
    int read;          /* 0: a type Loom has no arrays of */
    loom_dtype dtype;
    size_t size;
    const char *name;
} idx_type;

static const idx_type idx_types[] = {
    {0x08, 1, LOOM_U8, 1, "u8"},   {0x09, 0, LOOM_U8, 1, "i8"},   {0x0B, 0, LOOM_U8, 2, "i16"},
    {0x0C, 1, LOOM_I32, 4, "i32"}, {0x0D, 1, LOOM_F32, 4, "f32"}, {0x0E, 1, LOOM_F64, 8, "f64"},
};

typedef struct idx_in {
    gzFile f;
    const char *path;
    uint64_t at;   /* the offset of the next byte of the uncompressed stream */
    uint64_t size; /* the file's size, which bounds the stream when it is not compressed */
    int gz;
    loom_error *err;
} idx_in;

/* Reads up to n bytes, *got of them: fewer when the stream ends, which is for the caller to name
 * (cut_short tells a stream cut short from one that ended). A read error is LOOM_ERR_IO, corrupt
 * compressed data LOOM_ERR_FORMAT. */
static loom_status idx_get(idx_in *r, void *p, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        unsigned len = n - *got > INT_MAX ? INT_MAX : (unsigned)(n - *got); /* gzread counts in an int */
        int k = gzread(r->f, (uint8_t *)p + *got, len);
        if (k < 0) {
            int zerr;
            const char *why = gzerror(r->f, &zerr);
            uint64_t at = r->at + *got;
            if (zerr == Z_MEM_ERROR)
                return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: byte %" PRIu64 ": out of memory in zlib", r->path, at);
            if (zerr == Z_ERRNO)
                return loom_error_set(r->err, LOOM_ERR_IO, "%s: byte %" PRIu64 ": cannot read: %s", r->path, at, why);
            return loom__file_bad(r->err, r->path, at, "the gzip stream is corrupt (%s)", why);
        }
        if (k == 0)
            break;
        *got += (size_t)k;
    }
    r->at += *got;
    return LOOM_OK;
}

/* What a message adds on why the stream ended: that a gzip stream was cut short (zlib's
 * "unexpected end of file"), or nothing. */
static const char *cut_short(const idx_in *r)
{
    int zerr;
    gzerror(r->f, &zerr);
    return r->gz && zerr == Z_BUF_ERROR ? "; the gzip stream is cut short" : "";
}

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

/* n elements of size bytes from big-endian to the host's order, in place. */
static void from_big_endian(uint8_t *p, int64_t n, size_t size)
{
    if (size == 1)
        return;
    for (int64_t i = 0; i < n; i++, p += size) {
        uint64_t v = 0;
        for (size_t b = 0; b < size; b++)
            v = v << 8 | p[b];
        if (size == 4) {
            uint32_t w = (uint32_t)v;
            memcpy(p, &w, 4);
        } else {
            memcpy(p, &v, 8);
        }
    }
}

/* The header: the type and dims into t and a (dtype, ndim, shape), the data's bytes into *bytes. */
static loom_status idx_header(idx_in *r, const idx_type **t, loom_array *a, uint64_t *bytes)
{
    uint8_t h[4 + 4 * LOOM_MAX_DIMS];
    size_t got;
    loom_status st = idx_get(r, h, 4, &got);
    if (st)
        return st;
    if (got < 4)
        return loom__file_bad(r->err, r->path, got,
                              "the file ends at byte %zu, expected the 4-byte IDX magic (two zero bytes, the type, the "
                              "number of dims)%s",
                              got, cut_short(r));
    if (h[0] || h[1])
        return loom__file_bad(r->err, r->path, h[0] ? 0 : 1, "found 0x%02x 0x%02x, expected an IDX file's two zero bytes%s",
                              h[0], h[1], r->gz ? " (at the start of the uncompressed stream)" : " (or gzip's 1f 8b)");
    *t = NULL;
    for (size_t i = 0; i < sizeof idx_types / sizeof *idx_types; i++)
        if (idx_types[i].code == h[2])
            *t = &idx_types[i];
    if (!*t)
        return loom__file_bad(r->err, r->path, 2,
                              "type byte 0x%02x, expected 0x08 (u8), 0x09 (i8), 0x0b (i16), 0x0c (i32), 0x0d (f32) or "
                              "0x0e (f64)",
                              h[2]);
    if (!(*t)->read)
        return loom_error_set(r->err, LOOM_ERR_UNSUPPORTED,
                              "%s: byte 2: type 0x%02x (%s): Loom has no %s arrays; it reads 0x08 (u8), 0x0c (i32), 0x0d "
                              "(f32) and 0x0e (f64)",
                              r->path, h[2], (*t)->name, (*t)->name);
    int nd = h[3];
    if (nd < 1 || nd > LOOM_MAX_DIMS)
        return loom__file_bad(r->err, r->path, 3, "%d dims, expected 1 to %d", nd, LOOM_MAX_DIMS);
    if ((st = idx_get(r, h + 4, 4 * (size_t)nd, &got)))
        return st;
    if (got < 4 * (size_t)nd)
        return loom__file_bad(r->err, r->path, 4 + got, "the file ends at byte %zu, expected %d dims of 4 bytes each, to byte %d%s",
                              4 + got, nd, 4 + 4 * nd, cut_short(r));
    a->dtype = (*t)->dtype;
    a->ndim = nd;
    int zero = 0;
    for (int i = 0; i < nd; i++) {
        a->shape[i] = be32(h + 4 + 4 * i);
        zero |= a->shape[i] == 0;
    }
    /* the byte count within an int64 (then so is the element count), unless a dim is 0 */
    *bytes = zero ? 0 : (*t)->size;
    for (int i = 0; i < nd && !zero; i++) {
        if (*bytes > (uint64_t)INT64_MAX / (uint64_t)a->shape[i]) {
            char what[160];
            loom__data_describe(what, sizeof what, a->dtype, nd, a->shape);
            return loom__file_bad(r->err, r->path, 4 + 4 * (uint64_t)i,
                                  "dim %d is %" PRId64 ": %s is more than 2^63 - 1 bytes, expected dims whose product "
                                  "fits an int64",
                                  i, a->shape[i], what);
        }
        *bytes *= (uint64_t)a->shape[i];
    }
    return LOOM_OK;
}

/* The data after the header: `bytes` of them, then the stream's end. */
static loom_status idx_data(idx_in *r, loom_array *a, uint64_t bytes)
{
    const uint64_t start = r->at;
    char what[160];
    loom__data_describe(what, sizeof what, a->dtype, a->ndim, a->shape);
    if (!r->gz && bytes > r->size - start)
        return loom__file_bad(r->err, r->path, r->size, "the data ends at byte %" PRIu64 ", expected %" PRIu64 " bytes of %s",
                              r->size, bytes, what);
    /* bytes fits the file when it is not compressed: a size_t, at most SIZE_MAX / 2 (loom__data_open) */
    uint64_t cap = r->gz && bytes > IDX_FIRST_CHUNK ? IDX_FIRST_CHUNK : bytes, fill = 0;
    uint8_t *buf = malloc(cap ? (size_t)cap : 1);
    if (!buf)
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory for %" PRIu64 " bytes of %s", r->path, cap, what);
    a->data = buf;
    while (fill < bytes) {
        if (fill == cap) {
            cap = cap > bytes / 2 ? bytes : cap * 2;
            if (cap > SIZE_MAX / 2 || !(buf = realloc(a->data, (size_t)cap)))
                return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory for %" PRIu64 " bytes of %s", r->path, cap,
                                      what);
            a->data = buf;
        }
        size_t got;
        loom_status st = idx_get(r, buf + fill, (size_t)(cap - fill), &got);
        if (st)
            return st;
        fill += got;
        if (fill < cap)
            return loom__file_bad(r->err, r->path, r->at, "the data ends at byte %" PRIu64 ", expected %" PRIu64 " bytes of %s%s",
                                  r->at, bytes, what, cut_short(r));
    }
    uint8_t extra[IDX_TRAILING];
    size_t got;
    loom_status st = idx_get(r, extra, sizeof extra, &got);
    if (st)
        return st;
    if (got) {
        /* an uncompressed file's size says how many; a gzip stream is not read to its end for it */
        uint64_t past = r->gz ? got : r->size - start - bytes;
        return loom__file_bad(r->err, r->path, start + bytes,
                              "%s%" PRIu64 " byte%s past the end of the data (%" PRIu64 " bytes of %s): expected the %s "
                              "to end here",
                              r->gz && got == sizeof extra ? "at least " : "", past, past == 1 ? "" : "s", bytes, what,
                              r->gz ? "stream" : "file");
    }
    if (*cut_short(r))
        return loom__file_bad(r->err, r->path, start + bytes,
                              "the gzip stream is cut short: its data is whole, but it ends before gzip's trailer (the "
                              "CRC-32 and length)");
    from_big_endian(buf, bytes ? (int64_t)(bytes / (uint64_t)loom_dtype_size(a->dtype)) : 0, loom_dtype_size(a->dtype));
    return LOOM_OK;
}

loom_status loom_idx_read(const char *path, loom_array *out, loom_error *err)
{
    if (out)
        *out = LOOM_ARRAY_INIT;
    if (!path || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_idx_read: NULL %s", path ? "output" : "path");
    int fd;
    uint64_t size;
    loom_status st = loom__file_open(path, LOOM_ERR_IO, &fd, &size, err);
    if (st)
        return st;
    idx_in r = {.f = gzdopen(fd, "rb"), .path = path, .size = size, .err = err};
    if (!r.f) {
        close(fd);
        return loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory to open it through zlib", path);
    }
    gzbuffer(r.f, 1 << 17);
    r.gz = !gzdirect(r.f); /* zlib looks for 1f 8b */
    const idx_type *t = NULL;
    uint64_t bytes = 0;
    if (!(st = idx_header(&r, &t, out, &bytes)))
        st = idx_data(&r, out, bytes);
    gzclose(r.f);
    if (st)
        loom_array_free(out);
    return st;
}
