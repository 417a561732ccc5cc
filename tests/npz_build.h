/* Test helpers: assemble .npy images and .npz (zip) archives in memory, the way numpy writes them
 * (stored or raw-deflated members, zip64 extras in local headers as savez's force_zip64 does,
 * optionally zip64 central entries, a zip64 end record and a comment), so the reader can be tested
 * on exact bytes, including broken ones. Header-only: each test program includes it once. */
#ifndef LOOM_TESTS_NPZ_BUILD_H
#define LOOM_TESTS_NPZ_BUILD_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <check.h>
#include <loom/loom.h>

/* Asserts a call failed with `want`, the error record says so too, and its message holds needle. */
static inline void expect_fail(loom_status got, loom_status want, const loom_error *e, const char *needle, const char *what)
{
    ck_assert_msg(got == want, "%s: status %d (%s), expected %d; message: %s", what, got, loom_status_str(got), want,
                  e->msg);
    ck_assert_msg(e->status == want, "%s: err.status %d, expected %d", what, e->status, want);
    if (needle)
        ck_assert_msg(strstr(e->msg, needle), "%s: message '%s' lacks '%s'", what, e->msg, needle);
}

typedef struct {
    uint8_t *p;
    size_t n, cap;
} nb_buf;

static inline void nb_put(nb_buf *b, const void *d, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            abort(); /* test helper: no memory is not a case under test */
        b->p = p;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static inline void nb_u8(nb_buf *b, unsigned v)
{
    uint8_t x = (uint8_t)v;
    nb_put(b, &x, 1);
}
static inline void nb_u16(nb_buf *b, unsigned v)
{
    nb_u8(b, v & 0xff);
    nb_u8(b, (v >> 8) & 0xff);
}
static inline void nb_u32(nb_buf *b, uint32_t v)
{
    nb_u16(b, v & 0xffff);
    nb_u16(b, v >> 16);
}
static inline void nb_u64(nb_buf *b, uint64_t v)
{
    nb_u32(b, (uint32_t)v);
    nb_u32(b, (uint32_t)(v >> 32));
}
static inline void nb_free(nb_buf *b)
{
    free(b->p);
    *b = (nb_buf){0};
}

/* Patches a little-endian field of an assembled image. */
static inline void nb_set16(nb_buf *b, size_t at, unsigned v)
{
    b->p[at] = (uint8_t)v;
    b->p[at + 1] = (uint8_t)(v >> 8);
}
static inline void nb_set32(nb_buf *b, size_t at, uint32_t v)
{
    nb_set16(b, at, v & 0xffff);
    nb_set16(b, at + 2, v >> 16);
}
static inline uint32_t nb_get32(const nb_buf *b, size_t at)
{
    return (uint32_t)b->p[at] | (uint32_t)b->p[at + 1] << 8 | (uint32_t)b->p[at + 2] << 16 | (uint32_t)b->p[at + 3] << 24;
}

/* An .npy image with the given header dict text, padded with spaces and a newline so the data
 * starts at a multiple of 64 as numpy does; major 1 uses a u16 header length, 2 and 3 a u32. */
static inline nb_buf nb_npy_raw(int major, const char *dict, const void *data, size_t n)
{
    nb_buf b = {0};
    nb_put(&b, "\x93NUMPY", 6);
    nb_u8(&b, (unsigned)major);
    nb_u8(&b, 0);
    size_t pre = major == 1 ? 10 : 12, len = strlen(dict) + 1;
    while ((pre + len) % 64)
        len++;
    if (major == 1)
        nb_u16(&b, (unsigned)len);
    else
        nb_u32(&b, (uint32_t)len);
    nb_put(&b, dict, strlen(dict));
    for (size_t i = strlen(dict); i + 1 < len; i++)
        nb_u8(&b, ' ');
    nb_u8(&b, '\n');
    nb_put(&b, data, n);
    return b;
}

/* A version 1.0 .npy in C order, e.g. nb_npy("<f4", "(3,)", data, 12). */
static inline nb_buf nb_npy(const char *descr, const char *shape, const void *data, size_t n)
{
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    return nb_npy_raw(1, dict, data, n);
}

typedef struct {
    const char *name; /* "x.npy" */
    const void *data;
    size_t size;
    int deflate;       /* method 8 instead of 0 */
    int zip64_local;   /* numpy's savez: sizes 0xFFFFFFFF and a zip64 extra in the local header */
    int zip64_central; /* sizes and offset 0xFFFFFFFF and a zip64 extra in the central entry */
} nb_member;

typedef struct {
    int zip64_end;       /* a zip64 end record and locator before the end record */
    const char *comment; /* the archive comment */
} nb_zip_opts;

static inline nb_buf nb_deflate(const void *data, size_t n)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (deflateInit2(&s, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    nb_buf out = {0};
    size_t cap = deflateBound(&s, (uLong)n) + 16;
    out.p = malloc(cap);
    out.cap = cap;
    if (!out.p)
        abort();
    s.next_in = (Bytef *)(uintptr_t)data;
    s.avail_in = (uInt)n;
    s.next_out = out.p;
    s.avail_out = (uInt)cap;
    if (deflate(&s, Z_FINISH) != Z_STREAM_END)
        abort();
    out.n = cap - s.avail_out;
    deflateEnd(&s);
    return out;
}

static inline nb_buf nb_zip(const nb_member *m, int count, const nb_zip_opts *o)
{
    nb_buf z = {0}, cd = {0};
    for (int i = 0; i < count; i++) {
        nb_buf comp = {0};
        const uint8_t *body = m[i].data;
        size_t csize = m[i].size;
        if (m[i].deflate) {
            comp = nb_deflate(m[i].data, m[i].size);
            body = comp.p;
            csize = comp.n;
        }
        uint32_t crc = (uint32_t)crc32(0L, m[i].data, (uInt)m[i].size);
        size_t nlen = strlen(m[i].name), lho = z.n;
        /* local header */
        nb_put(&z, "PK\3\4", 4);
        nb_u16(&z, m[i].zip64_local ? 45 : 20);
        nb_u16(&z, 0);
        nb_u16(&z, m[i].deflate ? 8 : 0);
        nb_u16(&z, 0);
        nb_u16(&z, 0x21);
        nb_u32(&z, crc);
        nb_u32(&z, m[i].zip64_local ? UINT32_MAX : (uint32_t)csize);
        nb_u32(&z, m[i].zip64_local ? UINT32_MAX : (uint32_t)m[i].size);
        nb_u16(&z, (unsigned)nlen);
        nb_u16(&z, m[i].zip64_local ? 20 : 0);
        nb_put(&z, m[i].name, nlen);
        if (m[i].zip64_local) {
            nb_u16(&z, 1);
            nb_u16(&z, 16);
            nb_u64(&z, m[i].size);
            nb_u64(&z, csize);
        }
        nb_put(&z, body, csize);
        /* central entry */
        int c64 = m[i].zip64_central;
        nb_put(&cd, "PK\1\2", 4);
        nb_u16(&cd, c64 ? 45 : 20);
        nb_u16(&cd, c64 ? 45 : 20);
        nb_u16(&cd, 0);
        nb_u16(&cd, m[i].deflate ? 8 : 0);
        nb_u16(&cd, 0);
        nb_u16(&cd, 0x21);
        nb_u32(&cd, crc);
        nb_u32(&cd, c64 ? UINT32_MAX : (uint32_t)csize);
        nb_u32(&cd, c64 ? UINT32_MAX : (uint32_t)m[i].size);
        nb_u16(&cd, (unsigned)nlen);
        nb_u16(&cd, c64 ? 28 : 0);
        nb_u16(&cd, 0);
        nb_u16(&cd, 0);
        nb_u16(&cd, 0);
        nb_u32(&cd, 0);
        nb_u32(&cd, c64 ? UINT32_MAX : (uint32_t)lho);
        nb_put(&cd, m[i].name, nlen);
        if (c64) {
            nb_u16(&cd, 1);
            nb_u16(&cd, 24);
            nb_u64(&cd, m[i].size);
            nb_u64(&cd, csize);
            nb_u64(&cd, lho);
        }
        nb_free(&comp);
    }
    size_t cd_off = z.n, cd_size = cd.n;
    nb_put(&z, cd.p, cd.n);
    nb_free(&cd);
    int z64 = o && o->zip64_end;
    if (z64) {
        size_t rec = z.n;
        nb_put(&z, "PK\6\6", 4);
        nb_u64(&z, 44);
        nb_u16(&z, 45);
        nb_u16(&z, 45);
        nb_u32(&z, 0);
        nb_u32(&z, 0);
        nb_u64(&z, (uint64_t)count);
        nb_u64(&z, (uint64_t)count);
        nb_u64(&z, cd_size);
        nb_u64(&z, cd_off);
        nb_put(&z, "PK\6\7", 4);
        nb_u32(&z, 0);
        nb_u64(&z, rec);
        nb_u32(&z, 1);
    }
    const char *comment = o && o->comment ? o->comment : "";
    nb_put(&z, "PK\5\6", 4);
    nb_u16(&z, 0);
    nb_u16(&z, 0);
    nb_u16(&z, z64 ? 0xFFFF : (unsigned)count);
    nb_u16(&z, z64 ? 0xFFFF : (unsigned)count);
    nb_u32(&z, z64 ? UINT32_MAX : (uint32_t)cd_size);
    nb_u32(&z, z64 ? UINT32_MAX : (uint32_t)cd_off);
    nb_u16(&z, (unsigned)strlen(comment));
    nb_put(&z, comment, strlen(comment));
    return z;
}

/* Offset of the central directory of an image made by nb_zip without zip64 end or comment. */
static inline size_t nb_cd_offset(const nb_buf *z) { return nb_get32(z, z->n - 22 + 16); }

static inline int nb_write(const char *path, const nb_buf *b)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(b->p, 1, b->n, f) == b->n;
    return fclose(f) == 0 && ok ? 0 : -1;
}


/* The name archives built by the tests are opened under. */
#define NAME "t.npz"

/* An archive of one member "a.npy" holding npy. */
static inline nb_buf zip1(const nb_buf *npy, int deflate)
{
    nb_member m = {"a.npy", npy->p, npy->n, deflate, 1, 0};
    return nb_zip(&m, 1, NULL);
}

/* Opens z and reads "a" as dtype; the archive stays open only for the call. */
static inline loom_status read_a(const nb_buf *z, loom_dtype dt, loom_array *a, loom_error *e)
{
    loom_npz *npz = NULL;
    loom_status s = loom_npz_open_mem(z->p, z->n, NAME, &npz, e);
    if (s)
        return s;
    s = loom_npz_read(npz, "a", dt, a, e);
    loom_npz_close(npz);
    return s;
}

/* Element i of a loaded array, as a double. */
static inline double elem(const loom_array *a, int64_t i)
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


#endif
