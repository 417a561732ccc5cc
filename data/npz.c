/* NumPy .npz archives: the zip layer (end of central directory, zip64, central and local headers,
 * stored and deflated members, CRC-32). Each member is an .npy image parsed by npy.c.
 *
 * The whole archive is held in memory (Cora is 540 KB) and every structure is read from it only
 * after checking that it lies inside; sizes declared by headers are checked against the archive's
 * size before anything is allocated from them. Offsets in messages are from the archive's start. */
#include <loom/data.h>

#include "data/files.h"

#define ZLIB_CONST
#include <zlib.h>

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char *path; /* the name in the archive, "x.npy" */
    char *name; /* the array's name, "x" */
    uint16_t flags, method;
    uint32_t crc;
    uint64_t csize, usize, lho; /* compressed and uncompressed sizes, local header offset */
    uint64_t cdo;               /* where its central directory entry starts, for messages */
} npz_member;

struct loom_npz {
    char *file;
    const uint8_t *data;
    size_t size;
    uint8_t *owned; /* the file's bytes when loom_npz_open read them */
    int count;
    npz_member *m;
};

enum { EOCD_LEN = 22, LOC64_LEN = 20, EOCD64_LEN = 56, CEN_LEN = 46, LOC_LEN = 30 };


static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int sig(const uint8_t *p, uint8_t a, uint8_t b) { return p[0] == 'P' && p[1] == 'K' && p[2] == a && p[3] == b; }

/* 1 when [off, off + len) lies inside [0, end). */
static int inside(uint64_t off, uint64_t len, uint64_t end) { return off <= end && len <= end - off; }

/* The zip64 extra field (id 1) of a central entry: 8-byte values for exactly those of usize,
 * csize and lho (in that order) whose 32-bit field is 0xFFFFFFFF, then a 4-byte disk number. */
static loom_status read_zip64_extra(const loom_npz *z, const uint8_t *x, size_t xlen, uint64_t xoff, const char *mname,
                                    uint64_t *usize, uint64_t *csize, uint64_t *lho, uint32_t *disk, loom_error *err)
{
    int need_u = *usize == UINT32_MAX, need_c = *csize == UINT32_MAX, need_l = *lho == UINT32_MAX;
    int need_d = *disk == UINT16_MAX;
    size_t i = 0;
    /* Trailing bytes too few for a field header are padding some writers leave; skip them. */
    while (xlen - i >= 4) {
        uint16_t id = rd16(x + i), len = rd16(x + i + 2);
        if (len > xlen - i - 4)
            return loom_error_set(err, LOOM_ERR_FORMAT,
                        "%s: member %s: central extra field at offset %llu: expected %u bytes of field 0x%04x, the extra "
                        "area has %zu left",
                        z->file, mname, (unsigned long long)(xoff + i), len, id, xlen - i - 4);
        if (id == 1) {
            const uint8_t *f = x + i + 4;
            size_t k = 0;
            uint64_t *vals[3] = {usize, csize, lho};
            int need[3] = {need_u, need_c, need_l};
            for (int v = 0; v < 3; v++) {
                if (!need[v])
                    continue;
                if (len - k < 8)
                    return loom_error_set(err, LOOM_ERR_FORMAT,
                                "%s: member %s: zip64 extra field at offset %llu: expected an 8-byte %s, the field has "
                                "%u bytes",
                                z->file, mname, (unsigned long long)(xoff + i),
                                v == 0 ? "uncompressed size" : v == 1 ? "compressed size" : "local header offset", len);
                *vals[v] = rd64(f + k);
                k += 8;
                need[v] = 0;
            }
            if (need_d && len - k >= 4) {
                *disk = rd32(f + k);
                need_d = 0;
            }
            need_u = need_c = need_l = 0;
        }
        i += 4 + (size_t)len;
    }
    if (need_u || need_c || need_l)
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: member %s: central entry at offset %llu: expected a zip64 extra field (0x0001) holding its %s "
                    "(the 32-bit field is 0xFFFFFFFF)",
                    z->file, mname, (unsigned long long)xoff,
                    need_u ? "uncompressed size" : need_c ? "compressed size" : "local header offset");
    return LOOM_OK;
}

/* Finds the end-of-central-directory record (zip64 when present) and reads every central entry. */
static loom_status read_directory(loom_npz *z, loom_error *err)
{
    const uint8_t *d = z->data;
    size_t size = z->size;
    if (size < EOCD_LEN)
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: offset 0: expected a zip archive (at least a 22-byte end-of-central-directory record), found "
                    "%zu bytes",
                    z->file, size);
    /* Search backwards: the record is followed by a comment of up to 65535 bytes, whose length it
     * holds; a candidate counts only when that length reaches exactly the end of the file. */
    size_t lo = size - EOCD_LEN > 65535 ? size - EOCD_LEN - 65535 : 0, e = size - EOCD_LEN + 1;
    int found = 0;
    while (e-- > lo) {
        if (sig(d + e, 5, 6) && e + EOCD_LEN + rd16(d + e + 20) == size) {
            found = 1;
            break;
        }
    }
    if (!found)
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: offsets %zu to %zu: expected an end-of-central-directory record (signature PK\\5\\6) ending the "
                    "file; not a zip archive, or truncated",
                    z->file, lo, size - EOCD_LEN);
    uint64_t disk = rd16(d + e + 4), cd_disk = rd16(d + e + 6), n_here = rd16(d + e + 8), n = rd16(d + e + 10);
    uint64_t cd_size = rd32(d + e + 12), cd_off = rd32(d + e + 16);
    uint64_t cd_end_limit = e; /* the directory must end before the records that describe it */

    if (e >= LOC64_LEN && sig(d + e - LOC64_LEN, 6, 7)) {
        size_t l = e - LOC64_LEN;
        uint32_t z64_disk = rd32(d + l + 4), disks = rd32(d + l + 16);
        uint64_t r = rd64(d + l + 8);
        if (z64_disk != 0 || disks > 1)
            return loom_error_set(err, LOOM_ERR_UNSUPPORTED, "%s: zip64 locator at offset %zu: a multi-disk archive (%u disks)",
                        z->file, l, disks);
        if (!inside(r, EOCD64_LEN, l))
            return loom_error_set(err, LOOM_ERR_FORMAT,
                        "%s: zip64 locator at offset %zu: expected the zip64 end-of-central-directory record before it, "
                        "found offset %llu",
                        z->file, l, (unsigned long long)r);
        if (!sig(d + r, 6, 6))
            return loom_error_set(err, LOOM_ERR_FORMAT,
                        "%s: zip64 end-of-central-directory record at offset %llu: expected signature PK\\6\\6",
                        z->file, (unsigned long long)r);
        disk = rd32(d + r + 16);
        cd_disk = rd32(d + r + 20);
        n_here = rd64(d + r + 24);
        n = rd64(d + r + 32);
        cd_size = rd64(d + r + 40);
        cd_off = rd64(d + r + 48);
        cd_end_limit = r;
    } else if (n == UINT16_MAX || cd_size == UINT32_MAX || cd_off == UINT32_MAX) {
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: end-of-central-directory record at offset %zu: its fields are 0xFFFF..., so expected a zip64 "
                    "locator (PK\\6\\7) at offset %lld",
                    z->file, e, (long long)e - LOC64_LEN);
    }
    if (disk != 0 || cd_disk != 0 || n_here != n)
        return loom_error_set(err, LOOM_ERR_UNSUPPORTED,
                    "%s: end-of-central-directory record at offset %zu: a multi-disk archive (disk %llu, directory on "
                    "disk %llu, %llu of %llu entries here)",
                    z->file, e, (unsigned long long)disk, (unsigned long long)cd_disk, (unsigned long long)n_here,
                    (unsigned long long)n);
    if (!inside(cd_off, cd_size, cd_end_limit))
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: end-of-central-directory record at offset %zu: expected the central directory (offset %llu, "
                    "%llu bytes) to end by offset %llu",
                    z->file, e, (unsigned long long)cd_off, (unsigned long long)cd_size,
                    (unsigned long long)cd_end_limit);
    if (n > cd_size / CEN_LEN || n > INT_MAX)
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: end-of-central-directory record at offset %zu: %llu entries cannot fit in a central directory "
                    "of %llu bytes",
                    z->file, e, (unsigned long long)n, (unsigned long long)cd_size);

    z->m = calloc(n ? (size_t)n : 1, sizeof *z->m);
    if (!z->m)
        return loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory for %llu directory entries", z->file, (unsigned long long)n);
    uint64_t pos = cd_off, end = cd_off + cd_size;
    for (uint64_t i = 0; i < n; i++) {
        if (!inside(pos, CEN_LEN, end) || !sig(d + pos, 1, 2))
            return loom_error_set(err, LOOM_ERR_FORMAT,
                        "%s: central directory entry %llu at offset %llu: expected signature PK\\1\\2 and %d bytes "
                        "within the directory (which ends at offset %llu)",
                        z->file, (unsigned long long)i, (unsigned long long)pos, CEN_LEN, (unsigned long long)end);
        const uint8_t *c = d + pos;
        size_t nlen = rd16(c + 28), xlen = rd16(c + 30), clen = rd16(c + 32);
        if (!inside(pos + CEN_LEN, (uint64_t)nlen + xlen + clen, end))
            return loom_error_set(err, LOOM_ERR_FORMAT,
                        "%s: central directory entry %llu at offset %llu: expected a %zu-byte name, %zu-byte extra and "
                        "%zu-byte comment within the directory (which ends at offset %llu)",
                        z->file, (unsigned long long)i, (unsigned long long)pos, nlen, xlen, clen,
                        (unsigned long long)end);
        if (nlen == 0 || memchr(c + CEN_LEN, 0, nlen))
            return loom_error_set(err, LOOM_ERR_FORMAT,
                        "%s: central directory entry %llu at offset %llu: expected a non-empty name without NUL bytes",
                        z->file, (unsigned long long)i, (unsigned long long)pos);
        npz_member *m = &z->m[z->count];
        m->path = malloc(nlen + 1);
        if (!m->path)
            return loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory", z->file);
        memcpy(m->path, c + CEN_LEN, nlen);
        m->path[nlen] = 0;
        size_t base = nlen > 4 && !memcmp(m->path + nlen - 4, ".npy", 4) ? nlen - 4 : nlen;
        m->name = malloc(base + 1);
        if (!m->name) {
            free(m->path);
            m->path = NULL;
            return loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory", z->file);
        }
        memcpy(m->name, m->path, base);
        m->name[base] = 0;
        z->count++;
        m->flags = rd16(c + 8);
        m->method = rd16(c + 10);
        m->crc = rd32(c + 16);
        m->csize = rd32(c + 20);
        m->usize = rd32(c + 24);
        m->lho = rd32(c + 42);
        m->cdo = pos;
        uint32_t mdisk = rd16(c + 34);
        loom_status s = read_zip64_extra(z, c + CEN_LEN + nlen, xlen, pos + CEN_LEN + nlen, m->path, &m->usize, &m->csize,
                                         &m->lho, &mdisk, err);
        if (s)
            return s;
        if (mdisk != 0)
            return loom_error_set(err, LOOM_ERR_UNSUPPORTED, "%s: member %s: central entry at offset %llu: on disk %u (multi-disk)",
                        z->file, m->path, (unsigned long long)pos, mdisk);
        pos += CEN_LEN + nlen + xlen + clen;
    }
    return LOOM_OK;
}

loom_status loom_npz_open_mem(const void *data, size_t size, const char *name, loom_npz **out, loom_error *err)
{
    if (!name)
        name = "<memory>";
    if (!out || (!data && size))
        return loom_error_set(err, LOOM_ERR_INVALID, "%s: loom_npz_open_mem: NULL output or data", name);
    *out = NULL;
    loom_npz *z = calloc(1, sizeof *z);
    if (!z || !(z->file = strdup(name))) {
        free(z);
        return loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory", name);
    }
    z->data = data ? data : (const uint8_t *)"";
    z->size = size;
    loom_status s = read_directory(z, err);
    if (s) {
        loom_npz_close(z);
        return s;
    }
    *out = z;
    return LOOM_OK;
}

loom_status loom_npz_open(const char *path, loom_npz **out, loom_error *err)
{
    if (!path || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_npz_open: NULL path or output");
    *out = NULL;
    int fd;
    uint64_t fsize;
    loom_status st = loom__file_open(path, LOOM_ERR_NOT_FOUND, &fd, &fsize, err);
    if (st)
        return st;
    size_t size = (size_t)fsize;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            free(buf);
            return loom_error_set(err, LOOM_ERR_IO, "%s: read failed at offset %zu: %s", path, got,
                        r == 0 ? "unexpected end of file" : strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    loom_status s = loom_npz_open_mem(buf, size, path, out, err);
    if (s) {
        free(buf);
        return s;
    }
    (*out)->owned = buf;
    return LOOM_OK;
}

void loom_npz_close(loom_npz *z)
{
    if (!z)
        return;
    for (int i = 0; i < z->count; i++) {
        free(z->m[i].path);
        free(z->m[i].name);
    }
    free(z->m);
    free(z->owned);
    free(z->file);
    free(z);
}

int loom_npz_count(const loom_npz *z) { return z ? z->count : 0; }

const char *loom_npz_name(const loom_npz *z, int i) { return z && i >= 0 && i < z->count ? z->m[i].name : NULL; }

/* Inflates raw deflate data into exactly usize bytes at out. */
static loom_status inflate_member(const loom_npz *z, const npz_member *m, const uint8_t *in, uint64_t data_off,
                                  uint8_t *out, loom_error *err)
{
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -MAX_WBITS) != Z_OK)
        return loom_error_set(err, LOOM_ERR_NOMEM, "%s: member %s: cannot start zlib's inflate", z->file, m->path);
    uint64_t in_left = m->csize, out_left = m->usize;
    int rc;
    do {
        /* zlib counts in uInt: feed more than 4 GiB in pieces. */
        if (s.avail_in == 0 && in_left) {
            uInt k = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;
            s.next_in = in;
            s.avail_in = k;
            in += k;
            in_left -= k;
        }
        if (s.avail_out == 0 && out_left) {
            uInt k = out_left > UINT_MAX ? UINT_MAX : (uInt)out_left;
            s.next_out = out;
            s.avail_out = k;
            out += k;
            out_left -= k;
        }
        rc = inflate(&s, Z_NO_FLUSH);
    } while (rc == Z_OK);
    uint64_t produced = m->usize - out_left - s.avail_out;
    loom_status st = LOOM_OK;
    if (rc == Z_STREAM_END && produced != m->usize)
        st = loom_error_set(err, LOOM_ERR_FORMAT,
                  "%s: member %s: deflate data at offset %llu: expected %llu bytes uncompressed, found %llu", z->file,
                  m->path, (unsigned long long)data_off, (unsigned long long)m->usize, (unsigned long long)produced);
    else if (rc == Z_BUF_ERROR && produced == m->usize)
        st = loom_error_set(err, LOOM_ERR_FORMAT,
                  "%s: member %s: deflate data at offset %llu: expected %llu bytes uncompressed, found more", z->file,
                  m->path, (unsigned long long)data_off, (unsigned long long)m->usize);
    else if (rc == Z_BUF_ERROR)
        st = loom_error_set(err, LOOM_ERR_FORMAT,
                  "%s: member %s: deflate data at offset %llu: expected the end of the stream within %llu compressed "
                  "bytes",
                  z->file, m->path, (unsigned long long)data_off, (unsigned long long)m->csize);
    else if (rc == Z_MEM_ERROR)
        st = loom_error_set(err, LOOM_ERR_NOMEM, "%s: member %s: out of memory in inflate", z->file, m->path);
    else if (rc != Z_STREAM_END)
        st = loom_error_set(err, LOOM_ERR_FORMAT, "%s: member %s: deflate data at offset %llu: corrupt (%s)", z->file, m->path,
                  (unsigned long long)(data_off + m->csize - in_left - s.avail_in), s.msg ? s.msg : "zlib error");
    inflateEnd(&s);
    return st;
}

static uint32_t crc_of(const uint8_t *p, uint64_t n)
{
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {
        uInt k = n > UINT_MAX ? UINT_MAX : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* NOT_FOUND naming the array and listing what the archive holds, as much as fits. */
static loom_status missing(const loom_npz *z, const char *name, loom_error *err)
{
    if (!err)
        return LOOM_ERR_NOT_FOUND;
    loom_error_set(err, LOOM_ERR_NOT_FOUND, "%s: no member '%s' (%s.npy); the archive holds %d%s", z->file, name, name, z->count,
         z->count ? ":" : "");
    size_t len = strlen(err->msg), cap = sizeof err->msg;
    for (int i = 0; i < z->count; i++) {
        size_t k = strlen(z->m[i].name);
        if (len + k + 2 + 5 >= cap) {
            memcpy(err->msg + len, " ...", 5);
            break;
        }
        err->msg[len++] = i ? ',' : ' ';
        if (i)
            err->msg[len++] = ' ';
        memcpy(err->msg + len, z->m[i].name, k + 1);
        len += k;
    }
    return LOOM_ERR_NOT_FOUND;
}

loom_status loom_npz_read(loom_npz *z, const char *name, loom_dtype dtype, loom_array *out, loom_error *err)
{
    if (out)
        *out = (loom_array){0};
    if (!z || !name || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_npz_read: NULL archive, name or output");
    const npz_member *m = NULL;
    for (int i = 0; i < z->count && !m; i++)
        if (!strcmp(z->m[i].name, name) || !strcmp(z->m[i].path, name))
            m = &z->m[i];
    if (!m)
        return missing(z, name, err);

    if (m->flags & 1)
        return loom_error_set(err, LOOM_ERR_UNSUPPORTED, "%s: member %s: central entry at offset %llu: encrypted", z->file, m->path,
                    (unsigned long long)m->cdo);
    if (m->method != 0 && m->method != 8)
        return loom_error_set(err, LOOM_ERR_UNSUPPORTED,
                    "%s: member %s: central entry at offset %llu: compression method %u (expected 0, stored, or 8, "
                    "deflate)",
                    z->file, m->path, (unsigned long long)m->cdo, m->method);
    const uint8_t *d = z->data;
    if (!inside(m->lho, LOC_LEN, z->size) || !sig(d + m->lho, 3, 4))
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: member %s: local header at offset %llu: expected signature PK\\3\\4 and %d bytes (file size %zu)",
                    z->file, m->path, (unsigned long long)m->lho, LOC_LEN, z->size);
    /* The local header has extra fields of its own (numpy writes zip64 ones there only): its
     * lengths, not the central entry's, locate the data. Its sizes may be zero (data descriptor
     * flag) or 0xFFFFFFFF (zip64), so the central entry's are used. */
    const uint8_t *l = d + m->lho;
    uint64_t nlen = rd16(l + 26), xlen = rd16(l + 28), data_off = m->lho + LOC_LEN + nlen + xlen;
    if (!inside(m->lho + LOC_LEN, nlen + xlen, z->size))
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: member %s: local header at offset %llu: expected a %llu-byte name and %llu-byte extra field "
                    "within the file (size %zu)",
                    z->file, m->path, (unsigned long long)m->lho, (unsigned long long)nlen, (unsigned long long)xlen,
                    z->size);
    if (nlen != strlen(m->path) || memcmp(l + LOC_LEN, m->path, nlen) != 0)
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: member %s: local header at offset %llu: expected the central directory's name, found another",
                    z->file, m->path, (unsigned long long)m->lho);
    if (!inside(data_off, m->csize, z->size))
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: member %s: data at offset %llu: expected %llu compressed bytes, the file ends at offset %zu",
                    z->file, m->path, (unsigned long long)data_off, (unsigned long long)m->csize, z->size);

    const uint8_t *payload = d + data_off;
    uint8_t *buf = NULL;
    if (m->method == 0) {
        if (m->usize != m->csize)
            return loom_error_set(err, LOOM_ERR_FORMAT,
                        "%s: member %s: central entry at offset %llu: a stored member must have equal sizes, found %llu "
                        "compressed and %llu uncompressed",
                        z->file, m->path, (unsigned long long)m->cdo, (unsigned long long)m->csize,
                        (unsigned long long)m->usize);
    } else {
        /* Deflate expands at most 1032:1, so a declared size beyond that is corrupt; bounding it
         * before allocating keeps a 100-byte file from asking for terabytes. */
        if (m->usize > m->csize * 1032 + 1024)
            return loom_error_set(err, LOOM_ERR_FORMAT,
                        "%s: member %s: central entry at offset %llu: %llu uncompressed bytes from %llu compressed is "
                        "more than deflate can produce",
                        z->file, m->path, (unsigned long long)m->cdo, (unsigned long long)m->usize,
                        (unsigned long long)m->csize);
        if (m->usize > SIZE_MAX / 2 || !(buf = malloc(m->usize ? (size_t)m->usize : 1)))
            return loom_error_set(err, LOOM_ERR_NOMEM, "%s: member %s: out of memory for %llu bytes", z->file, m->path,
                        (unsigned long long)m->usize);
        loom_status s = inflate_member(z, m, payload, data_off, buf, err);
        if (s) {
            free(buf);
            return s;
        }
        payload = buf;
    }
    uint32_t crc = crc_of(payload, m->usize);
    if (crc != m->crc) {
        free(buf);
        return loom_error_set(err, LOOM_ERR_FORMAT,
                    "%s: member %s: data at offset %llu: expected CRC-32 %08x (central entry at offset %llu), found %08x",
                    z->file, m->path, (unsigned long long)data_off, m->crc, (unsigned long long)m->cdo, crc);
    }
    char label[384];
    snprintf(label, sizeof label, "%s: member %s (data at offset %llu)", z->file, m->path, (unsigned long long)data_off);
    loom_status s = loom_npy_parse(payload, (size_t)m->usize, label, dtype, out, err);
    free(buf);
    return s;
}
