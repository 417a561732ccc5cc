/* The binary file of a loom_samples (loom_samples_write, loom_samples_read; bench/peers/events.py
 * reads it with numpy). Little-endian throughout:
 *
 *   byte  0  magic "LOOMSMP1"           byte 48  i64 nodes (total)
 *   byte  8  u32 version (1)            byte 56  i64 edges (total)
 *   byte 12  u32 header bytes (80)      byte 64  u32 flags: 1 edge_attr, 2 edge_y, 4 graph_y
 *   byte 16  i64 count                  byte 68  u32 CRC-32 (zlib's) of the payload
 *   byte 24  i64 node_features          byte 72  u64 payload bytes
 *   byte 32  i64 edge_features
 *   byte 40  i64 num_classes
 *
 * then the payload from byte 80: node_off and edge_off (i64, count + 1 each), src and dst (i32,
 * edges each), x (f32, nodes x node_features), and those of edge_attr (f32, edges x edge_features),
 * edge_y (f32, edges) and graph_y (i32, count) that the flags name, each padded with zero bytes to a
 * multiple of 8.
 *
 * Arrays are encoded and decoded a byte at a time through a buffer, so the file is the same on a
 * host of either byte order. The reader believes nothing before checking it: the header's sizes
 * against each other, against the payload size it states and against the file's size, all before
 * allocating; the checksum over every byte read; then the offsets, which the arrays' extents rest
 * on; then loom_samples_validate. */
#define _POSIX_C_SOURCE 200809L
#include <loom/samples.h>

#include "data/files.h"

#include <zlib.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SF_MAGIC "LOOMSMP1"
enum { SF_VERSION = 1, SF_HEADER = 80, SF_BUF = 1 << 16 };
enum { SF_EDGE_ATTR = 1, SF_EDGE_Y = 2, SF_GRAPH_Y = 4, SF_FLAGS = 7 };
/* where each header field is, for messages */
enum { AT_VERSION = 8, AT_HEADER = 12, AT_COUNT = 16, AT_NODE_F = 24, AT_EDGE_F = 32, AT_CLASSES = 40, AT_NODES = 48,
       AT_EDGES = 56, AT_FLAGS = 64, AT_CRC = 68, AT_PAYLOAD = 72 };

/* One array of the payload: n elements of size bytes (4 or 8) at data; at is the header field
 * that sizes it. */
typedef struct sf_array {
    const char *name;
    void *data;
    int64_t n;
    int size, at;
} sf_array;

static void put32(uint8_t *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (uint8_t)(v >> 8 * k);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (uint8_t)(v >> 8 * k);
}

static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* n elements of size bytes rounded up to 8; -1 when that overflows an int64. */
static int64_t sf_padded(int64_t n, int size)
{
    if (n > (INT64_MAX - 7) / size)
        return -1;
    return (n * size + 7) / 8 * 8;
}

/* The arrays of s in file order, those absent left out; returns how many. */
static int sf_arrays(const loom_samples *s, int64_t nodes, int64_t edges, uint32_t flags, sf_array a[8])
{
    int k = 0;
    a[k++] = (sf_array){"node_off", s->node_off, s->count + 1, 8, AT_COUNT};
    a[k++] = (sf_array){"edge_off", s->edge_off, s->count + 1, 8, AT_COUNT};
    a[k++] = (sf_array){"src", s->src, edges, 4, AT_EDGES};
    a[k++] = (sf_array){"dst", s->dst, edges, 4, AT_EDGES};
    a[k++] = (sf_array){"x", s->x, nodes * s->node_features, 4, AT_NODES};
    if (flags & SF_EDGE_ATTR)
        a[k++] = (sf_array){"edge_attr", s->edge_attr, edges * s->edge_features, 4, AT_EDGES};
    if (flags & SF_EDGE_Y)
        a[k++] = (sf_array){"edge_y", s->edge_y, edges, 4, AT_EDGES};
    if (flags & SF_GRAPH_Y)
        a[k++] = (sf_array){"graph_y", s->graph_y, s->count, 4, AT_COUNT};
    return k;
}

/* ---------------------------------------------------------------------------------------------
 * Writing.
 * ------------------------------------------------------------------------------------------- */
typedef struct sf_writer {
    int fd;
    uint8_t *buf;
    size_t fill;
    uLong crc;
    int err; /* errno of the first failed write, 0 while all went well */
} sf_writer;

static void sf_flush(sf_writer *w)
{
    w->crc = crc32(w->crc, w->buf, (uInt)w->fill);
    if (!w->err)
        w->err = loom__file_write(w->fd, w->buf, w->fill);
    w->fill = 0;
}

static void sf_put(sf_writer *w, const sf_array *a)
{
    const uint8_t *p = a->data;
    for (int64_t i = 0; i < a->n && !w->err; i++) {
        if (w->fill + (size_t)a->size > SF_BUF) /* full: every flush but the last is SF_BUF bytes */
            sf_flush(w);
        if (a->size == 8) {
            uint64_t v;
            memcpy(&v, p + i * 8, 8);
            put64(w->buf + w->fill, v);
        } else {
            uint32_t v;
            memcpy(&v, p + i * 4, 4);
            put32(w->buf + w->fill, v);
        }
        w->fill += (size_t)a->size;
    }
    while (w->fill % 8) /* the buffer starts at a multiple of SF_BUF in the payload */
        w->buf[w->fill++] = 0;
}

loom_status loom_samples_write(const loom_samples *s, const char *path, loom_error *err)
{
    if (!s || !path || !path[0])
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_samples_write: NULL %s", s ? "or empty path" : "set");
    loom_error verr = LOOM_ERROR_INIT;
    if (loom_samples_validate(s, &verr))
        return loom_error_set(err, verr.status, "loom_samples_write %s: %s", path, verr.msg);
    int64_t nodes = s->node_off[s->count], edges = s->edge_off[s->count];
    uint32_t flags = (s->edge_attr ? SF_EDGE_ATTR : 0) | (s->edge_y ? SF_EDGE_Y : 0) | (s->graph_y ? SF_GRAPH_Y : 0);
    sf_array a[8];
    int na = sf_arrays(s, nodes, edges, flags, a);
    uint64_t payload = 0;
    for (int k = 0; k < na; k++) {
        int64_t b = sf_padded(a[k].n, a[k].size);
        if (b < 0 || (uint64_t)b > (uint64_t)INT64_MAX - SF_HEADER - payload)
            return loom_error_set(err, LOOM_ERR_INVALID, "loom_samples_write %s: %s of %" PRId64 " elements: the file would "
                                  "be over 2^63 bytes", path, a[k].name, a[k].n);
        payload += (uint64_t)b;
    }

    uint8_t *buf = malloc(SF_BUF);
    if (!buf)
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_samples_write %s: out of memory", path);
    char *tmp;
    sf_writer w = {.fd = loom__file_replace_open(path, &tmp), .buf = buf, .crc = crc32(0, NULL, 0)};
    if (w.fd < 0) {
        loom_status st = loom_error_set(err, LOOM_ERR_IO, "loom_samples_write: cannot create %s: %s", tmp ? tmp : path,
                                        strerror(errno));
        free(tmp);
        free(buf);
        return st;
    }
    /* the payload first, after room for the header, which holds its checksum */
    uint8_t head[SF_HEADER] = {0};
    if (lseek(w.fd, SF_HEADER, SEEK_SET) != SF_HEADER)
        w.err = errno;
    for (int k = 0; k < na && !w.err; k++)
        sf_put(&w, &a[k]);
    if (!w.err)
        sf_flush(&w);
    memcpy(head, SF_MAGIC, 8);
    put32(head + AT_VERSION, SF_VERSION);
    put32(head + AT_HEADER, SF_HEADER);
    put64(head + AT_COUNT, (uint64_t)s->count);
    put64(head + AT_NODE_F, (uint64_t)s->node_features);
    put64(head + AT_EDGE_F, (uint64_t)s->edge_features);
    put64(head + AT_CLASSES, (uint64_t)s->num_classes);
    put64(head + AT_NODES, (uint64_t)nodes);
    put64(head + AT_EDGES, (uint64_t)edges);
    put32(head + AT_FLAGS, flags);
    put32(head + AT_CRC, (uint32_t)w.crc);
    put64(head + AT_PAYLOAD, payload);
    if (!w.err) {
        ssize_t k = pwrite(w.fd, head, SF_HEADER, 0);
        if (k != SF_HEADER)
            w.err = k < 0 ? errno : EIO;
    }
    int renamed;
    w.err = loom__file_replace_end(w.fd, tmp, path, w.err, &renamed);
    free(buf);
    if (w.err && !renamed)
        return loom_error_set(err, LOOM_ERR_IO, "loom_samples_write: cannot write %s: %s", path, strerror(w.err));
    if (w.err)
        return loom_error_set(err, LOOM_ERR_IO, "loom_samples_write: %s written, but its directory cannot be synced: %s",
                              path, strerror(w.err));
    return LOOM_OK;
}

/* ---------------------------------------------------------------------------------------------
 * Reading.
 * ------------------------------------------------------------------------------------------- */
typedef struct sf_reader {
    int fd;
    const char *path;
    uint64_t at; /* the file offset of the next byte */
    uint8_t *buf;
    uLong crc;
    loom_error *err;
} sf_reader;

/* Decodes array a from the file, its padding included, into a->data. */
static loom_status sf_get(sf_reader *r, const sf_array *a)
{
    uint64_t bytes = (uint64_t)sf_padded(a->n, a->size), begin = r->at;
    uint8_t *p = a->data;
    for (uint64_t done = 0; done < bytes;) {
        size_t n = bytes - done < SF_BUF ? (size_t)(bytes - done) : SF_BUF;
        ssize_t k = loom__file_read(r->fd, r->buf, n);
        if (k < 0)
            return loom_error_set(r->err, LOOM_ERR_IO, "%s: byte %" PRIu64 ": cannot read %s: %s", r->path, r->at, a->name,
                                  strerror(errno));
        if ((size_t)k < n) /* the file shrank since its size was checked */
            return loom__file_bad(r->err, r->path, r->at + (uint64_t)k, "truncated: the file ends inside %s (bytes %" PRIu64
                          " to %" PRIu64 ")", a->name, begin, begin + bytes);
        r->crc = crc32(r->crc, r->buf, (uInt)n);
        /* whole elements: n and done are multiples of 8 but the last chunk's end, where the
         * padding is */
        for (size_t off = 0; off + (size_t)a->size <= n; off += (size_t)a->size) {
            uint64_t i = (done + off) / (uint64_t)a->size;
            if (i >= (uint64_t)a->n)
                break;
            if (a->size == 8) {
                uint64_t v = get64(r->buf + off);
                memcpy(p + i * 8, &v, 8);
            } else {
                uint32_t v = get32(r->buf + off);
                memcpy(p + i * 4, &v, 4);
            }
        }
        done += n;
        r->at += n;
    }
    return LOOM_OK;
}

/* off[0 .. count] starts at 0, never decreases and ends at total; at is off's place in the file. */
static loom_status sf_offsets(sf_reader *r, const char *name, const int64_t *off, int64_t count, int64_t total, uint64_t at)
{
    if (off[0] != 0)
        return loom__file_bad(r->err, r->path, at, "%s[0] is %" PRId64 ": expected 0", name, off[0]);
    for (int64_t i = 0; i < count; i++)
        if (off[i + 1] < off[i] || off[i + 1] > total)
            return loom__file_bad(r->err, r->path, at + 8 * (uint64_t)(i + 1), "%s[%" PRId64 "] is %" PRId64 ": expected %" PRId64
                          " to %" PRId64 " (offsets never decrease and end at the header's total)",
                          name, i + 1, off[i + 1], off[i], total);
    if (off[count] != total)
        return loom__file_bad(r->err, r->path, at + 8 * (uint64_t)count, "%s[%" PRId64 "] is %" PRId64 ": expected %" PRId64
                      " (the total in the header)", name, count, off[count], total);
    return LOOM_OK;
}

/* The header's counts, checked each against its range and all against the payload size they
 * make; *payload the payload bytes. */
static loom_status sf_header(sf_reader *r, const uint8_t *h, loom_samples *s, int64_t *nodes, int64_t *edges,
                             uint32_t *flags, uint64_t *payload)
{
    struct {
        int at;
        const char *name;
        int64_t min;
    } f[] = {{AT_COUNT, "count", 0}, {AT_NODE_F, "node_features", 1}, {AT_EDGE_F, "edge_features", 0},
             {AT_CLASSES, "num_classes", 0}, {AT_NODES, "nodes", 0}, {AT_EDGES, "edges", 0}};
    int64_t v[6];
    for (int k = 0; k < 6; k++) {
        v[k] = (int64_t)get64(h + f[k].at);
        if (v[k] < f[k].min)
            return loom__file_bad(r->err, r->path, (uint64_t)f[k].at, "%s is %" PRId64 ": expected at least %" PRId64, f[k].name,
                          v[k], f[k].min);
    }
    s->count = v[0];
    s->node_features = v[1];
    s->edge_features = v[2];
    s->num_classes = v[3];
    *nodes = v[4];
    *edges = v[5];
    *flags = get32(h + AT_FLAGS);
    if (*flags & ~(uint32_t)SF_FLAGS)
        return loom__file_bad(r->err, r->path, AT_FLAGS, "flags 0x%" PRIx32 ": expected only 0x1 (edge_attr), 0x2 (edge_y) and "
                      "0x4 (graph_y)", *flags);
    if (s->edge_features && *edges && !(*flags & SF_EDGE_ATTR))
        return loom__file_bad(r->err, r->path, AT_FLAGS, "flags 0x%" PRIx32 ": %" PRId64 " edge features but no edge_attr "
                      "(flag 0x1)", *flags, s->edge_features);
    if (s->num_classes && s->count && !(*flags & SF_GRAPH_Y))
        return loom__file_bad(r->err, r->path, AT_FLAGS, "flags 0x%" PRIx32 ": %" PRId64 " classes but no graph_y (flag 0x4)",
                      *flags, s->num_classes);
    if (s->count == INT64_MAX)
        return loom__file_bad(r->err, r->path, AT_COUNT, "count is %" PRId64 ": count + 1 offsets overflow an int64", s->count);
    if (*nodes > INT64_MAX / s->node_features)
        return loom__file_bad(r->err, r->path, AT_NODES, "%" PRId64 " nodes of %" PRId64 " features overflow an int64", *nodes,
                      s->node_features);
    if (s->edge_features && *edges > INT64_MAX / s->edge_features)
        return loom__file_bad(r->err, r->path, AT_EDGES, "%" PRId64 " edges of %" PRId64 " features overflow an int64", *edges,
                      s->edge_features);
    /* the sizes of the arrays, from the counts alone (no data is read yet) */
    sf_array a[8];
    int na = sf_arrays(s, *nodes, *edges, *flags, a);
    uint64_t sum = 0;
    for (int k = 0; k < na; k++) {
        int64_t b = sf_padded(a[k].n, a[k].size);
        if (b < 0 || (uint64_t)b > (uint64_t)INT64_MAX - SF_HEADER - sum)
            return loom__file_bad(r->err, r->path, (uint64_t)a[k].at, "%s of %" PRId64 " elements: the file would be over 2^63 "
                          "bytes (the counts overflow)", a[k].name, a[k].n);
        sum += (uint64_t)b;
    }
    *payload = get64(h + AT_PAYLOAD);
    if (*payload != sum)
        return loom__file_bad(r->err, r->path, AT_PAYLOAD, "payload of %" PRIu64 " bytes: the counts give %" PRIu64, *payload, sum);
    return LOOM_OK;
}

/* Allocates s's arrays for the header's counts (bounded by the file's size by now). */
static loom_status sf_alloc(sf_reader *r, loom_samples *s, int64_t nodes, int64_t edges, uint32_t flags)
{
    size_t off = (size_t)(s->count + 1) * 8, e4 = (size_t)edges * 4 + 4;
    s->node_off = malloc(off);
    s->edge_off = malloc(off);
    s->src = malloc(e4);
    s->dst = malloc(e4);
    s->x = malloc((size_t)(nodes * s->node_features) * 4 + 4);
    if (flags & SF_EDGE_ATTR)
        s->edge_attr = malloc((size_t)(edges * s->edge_features) * 4 + 4);
    if (flags & SF_EDGE_Y)
        s->edge_y = malloc(e4);
    if (flags & SF_GRAPH_Y)
        s->graph_y = malloc((size_t)s->count * 4 + 4);
    if (!s->node_off || !s->edge_off || !s->src || !s->dst || !s->x || (!s->edge_attr && (flags & SF_EDGE_ATTR)) ||
        (!s->edge_y && (flags & SF_EDGE_Y)) || (!s->graph_y && (flags & SF_GRAPH_Y)))
        return loom_error_set(r->err, LOOM_ERR_NOMEM, "%s: out of memory for %" PRId64 " samples, %" PRId64 " nodes and %"
                              PRId64 " edges", r->path, s->count, nodes, edges);
    return LOOM_OK;
}

/* Everything after opening: header, sizes, arrays, checksum, offsets, the set's own check. */
static loom_status sf_read_all(sf_reader *r, uint64_t size, loom_samples *s)
{
    uint8_t h[SF_HEADER] = {0};
    size_t have = size < SF_HEADER ? (size_t)size : SF_HEADER;
    ssize_t k = loom__file_read(r->fd, h, have);
    if (k < 0)
        return loom_error_set(r->err, LOOM_ERR_IO, "%s: cannot read: %s", r->path, strerror(errno));
    if ((size_t)k < have) /* shrank since fstat */
        have = (size_t)k;
    if (memcmp(h, SF_MAGIC, have < 8 ? have : 8))
        return loom__file_bad(r->err, r->path, 0, "not a Loom samples file: expected the magic \"%s\"", SF_MAGIC);
    /* another version may have another header: its number first, when the file holds it */
    uint32_t version = get32(h + AT_VERSION);
    if (have >= AT_VERSION + 4 && version != SF_VERSION)
        return loom__file_bad(r->err, r->path, AT_VERSION, "version %" PRIu32 ", this Loom reads version %d", version, SF_VERSION);
    if (have < SF_HEADER)
        return loom__file_bad(r->err, r->path, have, "truncated: the file ends at byte %zu, expected the %d-byte header", have,
                      SF_HEADER);
    r->at = SF_HEADER;
    if (get32(h + AT_HEADER) != SF_HEADER)
        return loom__file_bad(r->err, r->path, AT_HEADER, "header of %" PRIu32 " bytes: version %d has %d", get32(h + AT_HEADER),
                      SF_VERSION, SF_HEADER);
    int64_t nodes = 0, edges = 0;
    uint32_t flags = 0;
    uint64_t payload = 0;
    loom_status st = sf_header(r, h, s, &nodes, &edges, &flags, &payload);
    if (st)
        return st;
    if (size < SF_HEADER + payload)
        return loom__file_bad(r->err, r->path, size, "truncated: the file ends at byte %" PRIu64 ", expected %" PRIu64 " bytes",
                      size, SF_HEADER + payload);
    if (size > SF_HEADER + payload)
        return loom__file_bad(r->err, r->path, SF_HEADER + payload, "%" PRIu64 " bytes past the end of the arrays: expected the "
                      "file to end here", size - SF_HEADER - payload);
    if ((st = sf_alloc(r, s, nodes, edges, flags)))
        return st;
    sf_array a[8];
    int na = sf_arrays(s, nodes, edges, flags, a);
    uint64_t at[8];
    for (int i = 0; i < na; i++) {
        at[i] = r->at;
        if ((st = sf_get(r, &a[i])))
            return st;
    }
    uint32_t want = get32(h + AT_CRC);
    if ((uint32_t)r->crc != want)
        return loom__file_bad(r->err, r->path, SF_HEADER, "the payload's CRC-32 is 0x%08" PRIx32 ", expected 0x%08" PRIx32
                      " (the header's, byte %d): the file is corrupt", (uint32_t)r->crc, want, AT_CRC);
    if ((st = sf_offsets(r, "node_off", s->node_off, s->count, nodes, at[0])) ||
        (st = sf_offsets(r, "edge_off", s->edge_off, s->count, edges, at[1])))
        return st;
    loom_error verr = LOOM_ERROR_INIT;
    if (loom_samples_validate(s, &verr))
        return loom__file_bad(r->err, r->path, SF_HEADER, "the arrays (bytes %d to %" PRIu64 "): %s", SF_HEADER,
                      SF_HEADER + payload, verr.msg);
    return LOOM_OK;
}

loom_status loom_samples_read(const char *path, loom_samples *out, loom_error *err)
{
    if (out)
        *out = LOOM_SAMPLES_INIT;
    if (!path || !out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_samples_read: NULL %s", path ? "output" : "path");
    int fd;
    uint64_t size;
    loom_status st = loom__file_open(path, LOOM_ERR_IO, &fd, &size, err);
    if (st)
        return st;
    sf_reader r = {.fd = fd, .path = path, .at = 0, .buf = NULL, .crc = crc32(0, NULL, 0), .err = err};
    if (!(r.buf = malloc(SF_BUF)))
        st = loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory", path);
    if (!st)
        st = sf_read_all(&r, size, out);
    free(r.buf);
    close(fd);
    if (st)
        loom_samples_free(out);
    return st;
}
