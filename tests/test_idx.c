/* IDX files (loom_idx_read) and Fashion-MNIST (loom_fashion_mnist_load): files the test writes,
 * plain and gzip'd, read back; every malformed header, truncation and trailing byte refused with
 * its byte offset; a gzip stream cut short or corrupt; sets mislabelled on purpose. The real
 * Fashion-MNIST files, where installed ($LOOM_DATA/fashion-mnist or the Debian package
 * dataset-fashion-mnist), are checked for their counts, classes and first image; without them the
 * other tests still run and the program exits 77 (skipped). */
#define _GNU_SOURCE /* mkdtemp */
#include "harness.h"

#include <zlib.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/loom_idx_XXXXXX";

/* ---- writing files ---------------------------------------------------------------------------- */

/* An IDX image in buf: the magic (type, nd), the dims big-endian, then len bytes of data as given
 * (already big-endian). Returns its length. */
static size_t idx_image(uint8_t *buf, uint8_t type, int nd, const uint32_t *dims, const void *data, size_t len)
{
    size_t n = 0;
    buf[n++] = 0;
    buf[n++] = 0;
    buf[n++] = type;
    buf[n++] = (uint8_t)nd;
    for (int i = 0; i < nd; i++) {
        buf[n++] = (uint8_t)(dims[i] >> 24);
        buf[n++] = (uint8_t)(dims[i] >> 16);
        buf[n++] = (uint8_t)(dims[i] >> 8);
        buf[n++] = (uint8_t)dims[i];
    }
    if (len)
        memcpy(buf + n, data, len);
    return n + len;
}

static void path_of(char *path, size_t cap, const char *name) { snprintf(path, cap, "%s/%s", tmpdir, name); }

/* Files are replaced by a new one, not truncated in place: ext4 flushes a file truncated and
 * rewritten at its close, which made thousands of rewrites take seconds. */
static void write_plain(const char *path, const void *b, size_t n)
{
    unlink(path);
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    ck_assert_uint_eq(fwrite(b, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_gz(const char *path, const void *b, size_t n)
{
    unlink(path);
    gzFile f = gzopen(path, "wb");
    ck_assert_msg(f != NULL, "%s", path);
    if (n)
        ck_assert_int_eq(gzwrite(f, b, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(f), Z_OK);
}

/* The bytes of file path (malloc'd), *n of them. */
static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*n + 1);
    ck_assert_uint_eq(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

/* Writes b as name (plain) and name.gz, and returns in paths both files' paths. */
static void write_both(const char *name, const void *b, size_t n, char paths[2][256])
{
    char gzname[128];
    snprintf(gzname, sizeof gzname, "%s.gz", name);
    path_of(paths[0], 256, name);
    path_of(paths[1], 256, gzname);
    write_plain(paths[0], b, n);
    write_gz(paths[1], b, n);
}

/* The read of path fails with status s and a message holding the path and each of the needles. */
static void expect_refused(const char *path, loom_status s, const char *n1, const char *n2)
{
    loom_array a;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_msg(loom_idx_read(path, &a, &e) == s, "%s: status %d, expected %d: %s", path, e.status, s, e.msg);
    ck_assert_int_eq(e.status, s);
    ck_assert_ptr_null(a.data);
    ck_assert_msg(strstr(e.msg, path) != NULL, "the message does not name %s: %s", path, e.msg);
    ck_assert_msg(strstr(e.msg, n1) != NULL, "%s: expected '%s' in: %s", path, n1, e.msg);
    ck_assert_msg(!n2 || strstr(e.msg, n2) != NULL, "%s: expected '%s' in: %s", path, n2, e.msg);
}

/* The same refusal of b as a plain file and gzip'd. */
static void expect_refused_both(const char *name, const void *b, size_t n, loom_status s, const char *n1, const char *n2)
{
    char paths[2][256];
    write_both(name, b, n, paths);
    expect_refused(paths[0], s, n1, n2);
    expect_refused(paths[1], s, n1, n2);
}

/* ---- reading ------------------------------------------------------------------------------------ */

static void read_ok(const char *path, loom_array *a)
{
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_msg(loom_idx_read(path, a, &e) == LOOM_OK, "%s", e.msg);
}

/* n host values of size bytes (1, 4 or 8) as big-endian bytes. */
static void to_big_endian(uint8_t *to, const void *from, int n, size_t size)
{
    const uint8_t *p = from;
    for (int i = 0; i < n; i++) {
        uint64_t v = 0;
        if (size == 1) {
            v = p[i];
        } else if (size == 4) {
            uint32_t w;
            memcpy(&w, p + 4 * i, 4);
            v = w;
        } else {
            memcpy(&v, p + 8 * i, 8);
        }
        for (size_t b = 0; b < size; b++)
            to[(size_t)i * size + b] = (uint8_t)(v >> (8 * (size - 1 - b)));
    }
}

/* n values of size bytes written as an IDX file of type and dims, plain and gzip'd: both read back
 * as dtype, those dims and those values. */
static void round_trip(const char *name, uint8_t type, int nd, const uint32_t *dims, loom_dtype dtype, const void *values,
                       int n, size_t size)
{
    uint8_t be[256], buf[512];
    char paths[2][256];
    to_big_endian(be, values, n, size);
    write_both(name, buf, idx_image(buf, type, nd, dims, be, (size_t)n * size), paths);
    for (int z = 0; z < 2; z++) {
        loom_array a;
        read_ok(paths[z], &a);
        ck_assert_int_eq(a.dtype, dtype);
        ck_assert_int_eq(a.ndim, nd);
        for (int i = 0; i < nd; i++)
            ck_assert_int_eq(a.shape[i], dims[i]);
        ck_assert_int_eq(loom_array_numel(&a), n);
        if (n)
            ck_assert_mem_eq(a.data, values, (size_t)n * size);
        loom_array_free(&a);
    }
}

START_TEST(test_reads_u8_i32_f32_f64)
{
    uint8_t u8[24];
    for (int i = 0; i < 24; i++)
        u8[i] = (uint8_t)(i * 11);
    const uint32_t d3[3] = {2, 3, 4}, d1[1] = {5}, d2[2] = {2, 2}, d1b[1] = {3}, d0[2] = {0, 28};
    round_trip("u8", 0x08, 3, d3, LOOM_U8, u8, 24, 1);
    const int32_t i32[5] = {0, 1, -1, 2147483647, -2147483647 - 1};
    round_trip("i32", 0x0C, 1, d1, LOOM_I32, i32, 5, 4);
    const float f32[4] = {1.5f, -2.25f, 0.0f, 3.0e38f};
    round_trip("f32", 0x0D, 2, d2, LOOM_F32, f32, 4, 4);
    const double f64[3] = {0.1, -1e300, 42.0};
    round_trip("f64", 0x0E, 1, d1b, LOOM_F64, f64, 3, 8);
    /* a dim of 0: no data, read as an empty array */
    round_trip("empty", 0x08, 2, d0, LOOM_U8, u8, 0, 1);
}
END_TEST

START_TEST(test_bad_headers)
{
    uint8_t buf[512];
    const uint32_t d3[3] = {2, 3, 4};
    uint8_t data[24] = {0};
    size_t n = idx_image(buf, 0x08, 3, d3, data, sizeof data);

    uint8_t b[512];
    memcpy(b, buf, n);
    b[0] = 'P', b[1] = 'K';
    expect_refused_both("magic", b, n, LOOM_ERR_FORMAT, "byte 0: found 0x50 0x4b, expected an IDX file's two zero bytes", NULL);
    memcpy(b, buf, n);
    b[1] = 1;
    expect_refused_both("magic1", b, n, LOOM_ERR_FORMAT, "byte 1: found 0x00 0x01", NULL);
    memcpy(b, buf, n);
    b[2] = 0x01;
    expect_refused_both("type", b, n, LOOM_ERR_FORMAT, "byte 2: type byte 0x01, expected 0x08 (u8), 0x09 (i8)", NULL);
    b[2] = 0x09;
    expect_refused_both("i8", b, n, LOOM_ERR_UNSUPPORTED, "byte 2: type 0x09 (i8): Loom has no i8 arrays", NULL);
    b[2] = 0x0B;
    expect_refused_both("i16", b, n, LOOM_ERR_UNSUPPORTED, "byte 2: type 0x0b (i16)", NULL);

    /* 0 dims, 7 dims */
    size_t m = idx_image(b, 0x08, 0, NULL, data, 1);
    expect_refused_both("dims0", b, m, LOOM_ERR_FORMAT, "byte 3: 0 dims, expected 1 to 6", NULL);
    const uint32_t d7[7] = {1, 1, 1, 1, 1, 1, 1};
    m = idx_image(b, 0x08, 7, d7, data, 1);
    expect_refused_both("dims7", b, m, LOOM_ERR_FORMAT, "byte 3: 7 dims, expected 1 to 6", NULL);

    /* dims whose byte count overflows an int64: 2^32 - 1 squared is past 2^63 at dim 1 (byte 8) */
    const uint32_t huge[3] = {UINT32_MAX, UINT32_MAX, UINT32_MAX};
    m = idx_image(b, 0x08, 3, huge, data, 4);
    expect_refused_both("overflow", b, m, LOOM_ERR_FORMAT,
                        "byte 8: dim 1 is 4294967295: 4294967295 x 4294967295 x 4294967295 u8 is more than 2^63 - 1 bytes", NULL);
    const uint32_t f64big[2] = {1u << 31, 1u << 31}; /* 2^62 elements of 8 bytes */
    m = idx_image(b, 0x0E, 2, f64big, data, 8);
    expect_refused_both("overflow64", b, m, LOOM_ERR_FORMAT, "byte 8: dim 1 is 2147483648", NULL);

    /* a count the file cannot hold: refused at the file's size (plain) or its stream's end (gzip),
     * without allocating a terabyte */
    const uint32_t tera[2] = {1000000, 1000000};
    m = idx_image(b, 0x08, 2, tera, data, 24);
    expect_refused_both("tera", b, m, LOOM_ERR_FORMAT, "byte 36: the data ends at byte 36, expected 1000000000000 bytes of 1000000 x 1000000 u8",
                        NULL);
}
END_TEST

START_TEST(test_truncated_everywhere)
{
    uint8_t buf[512];
    const uint32_t d3[3] = {2, 3, 4};
    uint8_t data[24];
    for (int i = 0; i < 24; i++)
        data[i] = (uint8_t)i;
    size_t n = idx_image(buf, 0x08, 3, d3, data, sizeof data); /* 16 bytes of header, 24 of data */
    ck_assert_uint_eq(n, 40);
    char want[160], name[32];
    for (size_t k = 0; k < n; k++) {
        snprintf(name, sizeof name, "cut%zu", k);
        if (k < 4)
            snprintf(want, sizeof want, "byte %zu: the file ends at byte %zu, expected the 4-byte IDX magic", k, k);
        else if (k < 16)
            snprintf(want, sizeof want, "byte %zu: the file ends at byte %zu, expected 3 dims of 4 bytes each, to byte 16", k, k);
        else
            snprintf(want, sizeof want, "byte %zu: the data ends at byte %zu, expected 24 bytes of 2 x 3 x 4 u8", k, k);
        expect_refused_both(name, buf, k, LOOM_ERR_FORMAT, want, NULL);
    }
    /* bytes after the data */
    memcpy(buf + n, "abc", 3);
    char paths[2][256];
    write_both("trailing", buf, n + 3, paths);
    expect_refused(paths[0], LOOM_ERR_FORMAT,
                   "byte 40: 3 bytes past the end of the data (24 bytes of 2 x 3 x 4 u8): expected the file to end here", NULL);
    expect_refused(paths[1], LOOM_ERR_FORMAT, "byte 40: 3 bytes past the end of the data", "expected the stream to end here");
    write_both("trailing1", buf, n + 1, paths);
    expect_refused(paths[0], LOOM_ERR_FORMAT, "byte 40: 1 byte past the end of the data", NULL);
    /* more than the reader looks at in a gzip stream */
    static uint8_t big[40 + 10000];
    memcpy(big, buf, n);
    write_both("trailing_many", big, sizeof big, paths);
    expect_refused(paths[0], LOOM_ERR_FORMAT, "byte 40: 10000 bytes past the end of the data", NULL);
    expect_refused(paths[1], LOOM_ERR_FORMAT, "byte 40: at least 4096 bytes past the end of the data", NULL);
}
END_TEST

/* A gzip'd file cut anywhere in its compressed bytes, or with a byte of its deflate data or its
 * CRC changed: refused, never read as whole. */
START_TEST(test_gzip_cut_short_or_corrupt)
{
    /* data that deflate cannot shrink much, so that cuts land inside the data */
    static uint8_t buf[16 + 4096];
    static uint8_t data[4096];
    uint64_t x = 88172645463325252u;
    for (size_t i = 0; i < sizeof data; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    const uint32_t d3[3] = {4, 32, 32};
    size_t n = idx_image(buf, 0x08, 3, d3, data, sizeof data);
    char paths[2][256];
    write_both("whole", buf, n, paths);
    size_t zn;
    uint8_t *z = slurp(paths[1], &zn);
    char path[256];
    path_of(path, sizeof path, "cut.gz");
    int in_data = 0, after_data = 0;
    for (size_t k = 2; k < zn; k++) {
        write_plain(path, z, k);
        loom_array a;
        loom_error e = LOOM_ERROR_INIT;
        ck_assert_msg(loom_idx_read(path, &a, &e) == LOOM_ERR_FORMAT, "cut at %zu of %zu: %s", k, zn, e.msg);
        ck_assert_msg(strstr(e.msg, "the gzip stream is cut short") || strstr(e.msg, "the gzip stream is corrupt"),
                      "cut at %zu of %zu: %s", k, zn, e.msg);
        in_data += strstr(e.msg, "the data ends at byte") != NULL;
        after_data += strstr(e.msg, "its data is whole, but it ends before gzip's trailer") != NULL;
        ck_assert_ptr_null(a.data);
    }
    ck_assert_int_gt(in_data, 10);
    ck_assert_int_gt(after_data, 0); /* cuts inside the 8-byte trailer */
    /* the trailer's CRC-32 changed */
    z[zn - 8] ^= 0xff;
    write_plain(path, z, zn);
    expect_refused(path, LOOM_ERR_FORMAT, "the gzip stream is corrupt", NULL);
    free(z);
}
END_TEST

START_TEST(test_files_that_cannot_be_read)
{
    char path[256];
    path_of(path, sizeof path, "absent.gz");
    expect_refused(path, LOOM_ERR_IO, "cannot open", strerror(ENOENT));
    expect_refused(tmpdir, LOOM_ERR_IO, "not a regular file", strerror(EISDIR));
    loom_array a;
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_idx_read(NULL, &a, &e), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_idx_read(path, NULL, NULL), LOOM_ERR_INVALID);
}
END_TEST

/* ---- Fashion-MNIST ----------------------------------------------------------------------------- */

/* Writes a set of n 28 x 28 images (image i all pixels i) with the given labels into dir/sub, as
 * the training set's files, gzip'd; side: the images' width. */
static void write_set(const char *sub, int n, const uint8_t *labels, int nlabels, uint32_t side, char *dir, size_t cap)
{
    snprintf(dir, cap, "%s/%s", tmpdir, sub);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    size_t len = (size_t)n * 28 * side;
    uint8_t *b = malloc(16 + len + 8 + (size_t)nlabels);
    uint8_t *px = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        px[i] = (uint8_t)(i / (28 * side));
    const uint32_t di[3] = {(uint32_t)n, 28, side}, dl[1] = {(uint32_t)nlabels};
    char path[512];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    write_gz(path, b, idx_image(b, 0x08, 3, di, px, len));
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte.gz", dir);
    write_gz(path, b, idx_image(b, 0x08, 1, dl, labels, (size_t)nlabels));
    free(b);
    free(px);
}

START_TEST(test_small_and_mislabelled_sets)
{
    char dir[256];
    loom_image_set s;
    loom_error e = LOOM_ERROR_INIT;
    const uint8_t good[3] = {9, 0, 4};
    write_set("good", 3, good, 3, 28, dir, sizeof dir);
    ck_assert_msg(loom_fashion_mnist_load(dir, 1, &s, &e) == LOOM_OK, "%s", e.msg);
    ck_assert_int_eq(s.count, 3);
    ck_assert(s.channels == 1 && s.height == 28 && s.width == 28 && s.num_classes == 10);
    ck_assert(s.images.dtype == LOOM_U8 && s.images.ndim == 4 && s.images.shape[0] == 3 && s.images.shape[1] == 1 &&
              s.images.shape[2] == 28 && s.images.shape[3] == 28);
    ck_assert(s.labels.dtype == LOOM_I32 && s.labels.ndim == 1 && s.labels.shape[0] == 3);
    const int32_t *l = s.labels.data;
    ck_assert(l[0] == 9 && l[1] == 0 && l[2] == 4);
    ck_assert_int_eq(((const uint8_t *)s.images.data)[2 * 784 + 783], 2);
    loom_image_set_free(&s);
    ck_assert_ptr_null(s.images.data);
    /* the test set is not there */
    ck_assert_int_eq(loom_fashion_mnist_load(dir, 0, &s, &e), LOOM_ERR_NOT_FOUND);
    ck_assert_msg(strstr(e.msg, "t10k-images-idx3-ubyte.gz") && strstr(e.msg, dir) && strstr(e.msg, "dataset-fashion-mnist"),
                  "%s", e.msg);

    const uint8_t ten[3] = {1, 2, 10};
    write_set("label10", 3, ten, 3, 28, dir, sizeof dir);
    ck_assert_int_eq(loom_fashion_mnist_load(dir, 1, &s, &e), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "train-labels-idx1-ubyte.gz: byte 10: label 2 is 10, expected a class 0 to 9"), "%s", e.msg);
    ck_assert_ptr_null(s.images.data);

    write_set("counts", 3, good, 2, 28, dir, sizeof dir);
    ck_assert_int_eq(loom_fashion_mnist_load(dir, 1, &s, &e), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "train-labels-idx1-ubyte.gz: 2 labels, expected 3: one for each image of ") &&
                      strstr(e.msg, "train-images-idx3-ubyte.gz"),
                  "%s", e.msg);

    write_set("narrow", 3, good, 3, 27, dir, sizeof dir);
    ck_assert_int_eq(loom_fashion_mnist_load(dir, 1, &s, &e), LOOM_ERR_FORMAT);
    ck_assert_msg(strstr(e.msg, "train-images-idx3-ubyte.gz: 3 x 28 x 27 u8, expected 28 x 28 u8 images"), "%s", e.msg);

    /* with no directory given, $LOOM_DATA/fashion-mnist comes first */
    const char *was = getenv("LOOM_DATA");
    char *saved = was ? strdup(was) : NULL, ld[256];
    snprintf(ld, sizeof ld, "%s/ld", tmpdir);
    ck_assert_int_eq(mkdir(ld, 0755), 0);
    write_set("ld/fashion-mnist", 3, good, 3, 28, dir, sizeof dir);
    setenv("LOOM_DATA", ld, 1);
    ck_assert_msg(loom_fashion_mnist_load(NULL, 1, &s, &e) == LOOM_OK, "%s", e.msg);
    ck_assert_int_eq(s.count, 3);
    loom_image_set_free(&s);
    if (saved)
        setenv("LOOM_DATA", saved, 1);
    else
        unsetenv("LOOM_DATA");
    free(saved);

    /* an empty directory: where it looked, and the package */
    snprintf(dir, sizeof dir, "%s/none", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    ck_assert_int_eq(loom_fashion_mnist_load(dir, 1, &s, &e), LOOM_ERR_NOT_FOUND);
    ck_assert_msg(strstr(e.msg, "Fashion-MNIST's training set not found") && strstr(e.msg, dir) &&
                      strstr(e.msg, "train-labels-idx1-ubyte.gz") && strstr(e.msg, "dataset-fashion-mnist"),
                  "%s", e.msg);
    ck_assert_int_eq(loom_fashion_mnist_load(dir, 1, NULL, &e), LOOM_ERR_INVALID);
    loom_image_set_free(NULL);
}
END_TEST

/* The installed set: counts, classes and the first image's bytes (their CRC-32, as zlib and
 * Python's zlib.crc32 compute it over the files' bytes 16 .. 799). */
static void check_real(int train)
{
    loom_image_set s;
    loom_error e = LOOM_ERROR_INIT;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_msg(loom_fashion_mnist_load(NULL, train, &s, &e) == LOOM_OK, "%s", e.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("test_idx: Fashion-MNIST's %s set loaded in %.3f s\n", train ? "training" : "test",
           (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
    const int64_t n = train ? 60000 : 10000;
    ck_assert_int_eq(s.count, n);
    ck_assert(s.images.shape[0] == n && s.images.shape[1] == 1 && s.images.shape[2] == 28 && s.images.shape[3] == 28);
    int64_t per[10] = {0};
    const int32_t *l = s.labels.data;
    for (int64_t i = 0; i < n; i++) {
        ck_assert(l[i] >= 0 && l[i] < 10);
        per[l[i]]++;
    }
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(per[c], n / 10);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), s.images.data, 784);
    ck_assert_uint_eq(crc, train ? 0xf270beb5u : 0x52830860u);
    ck_assert_int_eq(l[0], 9);
    loom_image_set_free(&s);
}

START_TEST(test_fashion_mnist_train) { check_real(1); }
END_TEST

START_TEST(test_fashion_mnist_test) { check_real(0); }
END_TEST

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("test_idx: mkdtemp");
        return 1;
    }
    loom_image_set probe;
    loom_error e = LOOM_ERROR_INIT;
    int have = loom_fashion_mnist_load(NULL, 0, &probe, &e) == LOOM_OK;
    loom_image_set_free(&probe);
    if (!have)
        printf("test_idx: skipping the Fashion-MNIST files: %s\n", e.msg);

    Suite *s = suite_create("idx");
    TCase *tc = tcase_create("files");
    tcase_add_test(tc, test_reads_u8_i32_f32_f64);
    tcase_add_test(tc, test_bad_headers);
    tcase_add_test(tc, test_truncated_everywhere);
    tcase_add_test(tc, test_gzip_cut_short_or_corrupt);
    tcase_add_test(tc, test_files_that_cannot_be_read);
    tcase_add_test(tc, test_small_and_mislabelled_sets);
    suite_add_tcase(s, tc);
    if (have) {
        TCase *fm = tcase_create("fashion_mnist");
        tcase_set_timeout(fm, 120);
        tcase_add_test(fm, test_fashion_mnist_train);
        tcase_add_test(fm, test_fashion_mnist_test);
        suite_add_tcase(s, fm);
    }
    int failed = lt_run_suite(s);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_idx: could not remove %s\n", tmpdir);
    if (failed)
        return 1;
    return have ? 0 : 77;
}
