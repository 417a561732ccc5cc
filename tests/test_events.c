/* Generated collider events (loom_events_generate) and the samples file (loom_samples_write,
 * loom_samples_read): the same bytes for the same options, each event from (seed, i) alone, the
 * default set's sizes and edge labels, bad options, and every kind of bad file refused with the
 * file, the byte and what was expected. */
#define _GNU_SOURCE /* mkdtemp */
#include <check.h>
#include <loom/loom.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "harness.h"

/* data/events.c, not public: the generator that also counts the true segments (pairs of one
 * particle's hits on adjacent layers) and those among the edges. */
loom_status loom__events_segments(const loom_event_opts *o, loom_samples *out, int64_t *segments, int64_t *kept,
                                  loom_error *err);

static char tmpdir[] = "/tmp/loom_events_XXXXXX";

static loom_samples make(loom_event_opts o)
{
    loom_samples s;
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_events_generate(&o, &s, &err) == LOOM_OK, "%s", err.msg);
    return s;
}

static loom_event_opts opts(int64_t events, uint64_t seed)
{
    loom_event_opts o = LOOM_EVENT_OPTS_INIT;
    o.events = events;
    o.seed = seed;
    return o;
}

/* 1 when samples [0, n) of a and b hold the same bytes (b may hold more samples). */
static int same_prefix(const loom_samples *a, const loom_samples *b, int64_t n)
{
    if (a->node_features != b->node_features || a->edge_features != b->edge_features ||
        a->num_classes != b->num_classes || !a->edge_attr != !b->edge_attr || !a->edge_y != !b->edge_y ||
        !a->graph_y != !b->graph_y)
        return 0;
    size_t no = (size_t)(n + 1) * sizeof(int64_t);
    if (memcmp(a->node_off, b->node_off, no) || memcmp(a->edge_off, b->edge_off, no))
        return 0;
    size_t nodes = (size_t)a->node_off[n], edges = (size_t)a->edge_off[n];
    return !memcmp(a->x, b->x, nodes * (size_t)a->node_features * 4) && !memcmp(a->src, b->src, edges * 4) &&
           !memcmp(a->dst, b->dst, edges * 4) &&
           (!a->edge_attr || !memcmp(a->edge_attr, b->edge_attr, edges * (size_t)a->edge_features * 4)) &&
           (!a->edge_y || !memcmp(a->edge_y, b->edge_y, edges * 4)) &&
           (!a->graph_y || !memcmp(a->graph_y, b->graph_y, (size_t)n * 4));
}

static int same_set(const loom_samples *a, const loom_samples *b)
{
    return a->count == b->count && same_prefix(a, b, a->count);
}

START_TEST(test_same_options_same_bytes)
{
    loom_samples a = make(opts(300, 11)), b = make(opts(300, 11)), c = make(opts(300, 12));
    ck_assert_msg(same_set(&a, &b), "the same options gave different events");
    ck_assert_msg(!same_prefix(&a, &c, 1), "seeds 11 and 12 gave the same first event");
    ck_assert_msg(memcmp(a.x, c.x, 64 * sizeof *a.x) != 0, "seeds 11 and 12 gave the same hits");
    loom_samples_free(&a);
    loom_samples_free(&b);
    loom_samples_free(&c);
}
END_TEST

START_TEST(test_event_from_seed_and_index)
{
    /* 40 events are made on one thread, 700 on several (where there are CPUs): still a prefix */
    loom_samples small = make(opts(40, 5)), large = make(opts(700, 5));
    ck_assert_msg(same_prefix(&small, &large, 40), "events=40 is not a prefix of events=700");
    ck_assert_int_eq(large.count, 700);
    loom_samples_free(&small);
    loom_samples_free(&large);
}
END_TEST

/* The CRC-32 a file written from s holds (byte 68): a checksum of every array, the same on hosts of
 * either byte order. */
static uint32_t file_crc(const loom_samples *s, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_samples_write(s, path, &err) == LOOM_OK, "%s", err.msg);
    unsigned char h[80];
    FILE *f = fopen(path, "rb");
    ck_assert(f);
    ck_assert_uint_eq(fread(h, 1, sizeof h, f), sizeof h);
    fclose(f);
    remove(path);
    return (uint32_t)h[68] | (uint32_t)h[69] << 8 | (uint32_t)h[70] << 16 | (uint32_t)h[71] << 24;
}

START_TEST(test_same_bytes_on_every_machine)
{
    /* Figures of gcc -O0, gcc -O3 -march=native and clang -O2 -march=native on x86-64, all alike: a
     * machine whose arithmetic differs (fused multiply-adds, x87 precision, another series) would
     * make other events. The whole default set is checked in test_default_set. */
    loom_samples s = make(opts(30, 1));
    ck_assert_int_eq(s.node_off[30], 15140);
    ck_assert_int_eq(s.edge_off[30], 39867);
    ck_assert_uint_eq(file_crc(&s, "golden.bin"), 0xa00c5e2cu);
    loom_samples_free(&s);
}
END_TEST

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

START_TEST(test_default_set)
{
    loom_event_opts o = LOOM_EVENT_OPTS_INIT;
    loom_samples s;
    loom_error err = LOOM_ERROR_INIT;
    int64_t segments = 0, kept = 0;
    ck_assert_msg(loom__events_segments(&o, &s, &segments, &kept, &err) == LOOM_OK, "%s", err.msg);
    ck_assert_int_eq(s.count, 1000);
    ck_assert_int_eq(s.node_features, 5);
    ck_assert_int_eq(s.edge_features, 4);
    ck_assert_int_eq(s.num_classes, 0);
    ck_assert_ptr_null(s.graph_y);
    ck_assert_ptr_nonnull(s.edge_attr);
    ck_assert_ptr_nonnull(s.edge_y);
    ck_assert_int_eq(loom_samples_validate(&s, &err), LOOM_OK);

    int64_t n = s.count, nodes[1000], edges[1000];
    for (int64_t i = 0; i < n; i++) {
        nodes[i] = loom_samples_nodes(&s, i);
        edges[i] = loom_samples_edges(&s, i);
    }
    qsort(nodes, (size_t)n, sizeof *nodes, cmp_i64);
    qsort(edges, (size_t)n, sizeof *edges, cmp_i64);
    ck_assert_msg(nodes[0] > 0 && nodes[n - 1] >= 20 * nodes[0], "nodes per event span %lld to %lld: under 20x",
                  (long long)nodes[0], (long long)nodes[n - 1]);
    ck_assert_msg(nodes[n / 2] >= 150 && nodes[n / 2] <= 800, "median event of %lld hits", (long long)nodes[n / 2]);
    ck_assert_msg(nodes[n - 1] <= 6000, "largest event of %lld hits", (long long)nodes[n - 1]);

    /* every edge joins a hit to one on the next layer, sorted by source then target */
    int64_t bad = 0;
    double trues = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *x = s.x + s.node_off[i] * 5;
        for (int64_t e = s.edge_off[i]; e < s.edge_off[i + 1]; e++) {
            int32_t a = s.src[e], b = s.dst[e];
            bad += x[b * 5 + 4] - x[a * 5 + 4] < 0.05f || x[b * 5 + 4] - x[a * 5 + 4] > 0.15f;
            if (e > s.edge_off[i])
                bad += a < s.src[e - 1] || (a == s.src[e - 1] && b <= s.dst[e - 1]);
            trues += s.edge_y[e];
        }
        for (int64_t k = 0; k < loom_samples_nodes(&s, i); k++) {
            const float *h = x + k * 5; /* r [m], phi / pi, z [m], eta, layer / 10 */
            bad += !(h[0] >= 0.032f && h[0] <= 1.02f && h[1] >= -1.0f && h[1] < 1.0f && h[2] > -1.11f && h[2] < 1.11f &&
                     h[3] > -4.3f && h[3] < 4.3f && h[4] >= 0.0f && h[4] <= 0.9f);
        }
    }
    ck_assert_int_eq(bad, 0);
    double purity = trues / (double)s.edge_off[n], kept_fraction = (double)kept / (double)segments;
    printf("test_events: %lld events, hits min %lld median %lld p99 %lld max %lld; edges min %lld median %lld p99 %lld "
           "max %lld; true edges %.4f; true segments kept %.5f (%lld of %lld)\n",
           (long long)n, (long long)nodes[0], (long long)nodes[(n - 1) / 2], (long long)nodes[(n - 1) * 99 / 100],
           (long long)nodes[n - 1], (long long)edges[0], (long long)edges[(n - 1) / 2],
           (long long)edges[(n - 1) * 99 / 100], (long long)edges[n - 1], purity, kept_fraction, (long long)kept,
           (long long)segments);
    ck_assert_msg(purity > 0.05 && purity < 0.4, "true edges: %.4f of all", purity);
    ck_assert_msg(kept_fraction >= 0.99, "the windows keep %.4f of the true segments", kept_fraction);
    ck_assert_int_eq((int64_t)trues, kept); /* an edge is true exactly when it is a segment */
    ck_assert_int_eq(s.node_off[n], 578442);
    ck_assert_int_eq(s.edge_off[n], 1372863);
    ck_assert_uint_eq(file_crc(&s, "default.bin"), 0xa53ea730u);
    loom_samples_free(&s);
}
END_TEST

static void expect_invalid(loom_event_opts o, const char *needle)
{
    loom_samples s;
    memset(&s, 0xab, sizeof s);
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_events_generate(&o, &s, &err), LOOM_ERR_INVALID);
    ck_assert_int_eq(err.status, LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "loom_events_generate: ") && strstr(err.msg, needle), "message '%s' lacks '%s'",
                  err.msg, needle);
    ck_assert_ptr_null(s.node_off); /* cleared: freeing it is safe */
    loom_samples_free(&s);
}

/* The defaults with one option set to a bad value: refused naming it. */
#define EXPECT_BAD(field, value, needle)                                                                 \
    do {                                                                                                \
        loom_event_opts o_ = LOOM_EVENT_OPTS_INIT;                                                       \
        o_.field = value;                                                                                \
        expect_invalid(o_, needle);                                                                      \
    } while (0)

START_TEST(test_bad_options)
{
    EXPECT_BAD(events, 0, "events is 0");
    EXPECT_BAD(events, -3, "events is -3");
    EXPECT_BAD(events, INT64_MAX, "events is 9223372036854775807");
    EXPECT_BAD(pileup_mean, 0.5, "pileup_mean is 0.5");
    EXPECT_BAD(pileup_mean, NAN, "pileup_mean is nan");
    EXPECT_BAD(pileup_tail, 1.0, "pileup_tail is 1: expected a Pareto shape above 1");
    EXPECT_BAD(pileup_tail, -2, "pileup_tail is -2");
    EXPECT_BAD(pileup_max, 0, "pileup_max is 0");
    EXPECT_BAD(pileup_max, INT64_C(1) << 40, "pileup_max is 1099511627776");
    EXPECT_BAD(particles, -1, "particles is -1");
    EXPECT_BAD(particles, INFINITY, "particles is inf");
    EXPECT_BAD(pt_min, 0, "pt_min is 0");
    EXPECT_BAD(pt_min, NAN, "pt_min is nan");
    EXPECT_BAD(noise, -0.1, "noise is -0.1");
    EXPECT_BAD(noise, 1e9, "noise is 1e+09");

    loom_error err = LOOM_ERROR_INIT;
    loom_samples s;
    loom_event_opts o = LOOM_EVENT_OPTS_INIT;
    ck_assert_int_eq(loom_events_generate(NULL, &s, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "NULL options"), "%s", err.msg);
    ck_assert_int_eq(loom_events_generate(&o, NULL, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "NULL output"), "%s", err.msg);
    ck_assert_int_eq(loom_events_generate(&o, NULL, NULL), LOOM_ERR_INVALID); /* err may be NULL */
}
END_TEST

START_TEST(test_sparse_events)
{
    /* One collision of one particle on average and no noise: events with no hits at all, and edges
     * nearly all true (false ones only where two particles cross). */
    loom_event_opts o = opts(200, 3);
    o.pileup_mean = 1.0;
    o.pileup_max = 1;
    o.particles = 1.0;
    o.noise = 0.0;
    loom_samples s = make(o);
    int64_t empty = 0;
    double trues = 0;
    for (int64_t i = 0; i < s.count; i++)
        empty += loom_samples_nodes(&s, i) == 0;
    for (int64_t e = 0; e < s.edge_off[s.count]; e++)
        trues += s.edge_y[e];
    ck_assert_int_gt(empty, 0);
    ck_assert_int_lt(empty, s.count);
    ck_assert_msg(trues > 0.95 * (double)s.edge_off[s.count], "%.0f true of %lld edges", trues,
                  (long long)s.edge_off[s.count]);
    loom_samples_free(&s);
    o.particles = 0.0;
    s = make(o);
    ck_assert_int_eq(s.node_off[s.count], 0);
    ck_assert_int_eq(s.edge_off[s.count], 0);
    loom_samples_free(&s);
}
END_TEST

/* ---------------------------------------------------------------------------------------------
 * The file.
 * ------------------------------------------------------------------------------------------- */
static void path_of(char *path, size_t len, const char *name) { snprintf(path, len, "%s/%s", tmpdir, name); }

static void write_ok(const loom_samples *s, const char *name)
{
    char path[256];
    path_of(path, sizeof path, name);
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_samples_write(s, path, &err) == LOOM_OK, "%s", err.msg);
}

static loom_samples read_ok(const char *name)
{
    char path[256];
    path_of(path, sizeof path, name);
    loom_samples s;
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_samples_read(path, &s, &err) == LOOM_OK, "%s", err.msg);
    return s;
}

/* A small set with graph labels and no edge features or labels: the other flags. */
static loom_samples labelled_set(void)
{
    static int64_t node_off[] = {0, 2, 2, 5}, edge_off[] = {0, 1, 1, 4};
    static int32_t src[] = {0, 0, 1, 2}, dst[] = {1, 2, 2, 0}, graph_y[] = {2, 0, 1};
    static float x[] = {1, -2, 3.5f, 4, 5};
    return (loom_samples){.count = 3, .node_features = 1, .edge_features = 0, .num_classes = 3, .node_off = node_off,
                          .edge_off = edge_off, .src = src, .dst = dst, .x = x, .graph_y = graph_y};
}

START_TEST(test_file_round_trip)
{
    loom_samples s = make(opts(60, 9));
    write_ok(&s, "events.bin");
    write_ok(&s, "events.bin"); /* over an existing file */
    loom_samples r = read_ok("events.bin");
    ck_assert_msg(same_set(&s, &r), "the file read back differs from what was written");
    loom_samples_free(&r);
    loom_samples_free(&s);

    s = labelled_set();
    write_ok(&s, "labelled.bin");
    r = read_ok("labelled.bin");
    ck_assert_msg(same_set(&s, &r), "the labelled set read back differs");
    ck_assert_ptr_null(r.edge_attr);
    ck_assert_ptr_null(r.edge_y);
    ck_assert_int_eq(r.graph_y[0], 2);
    loom_samples_free(&r);

    /* no samples at all */
    int64_t zero = 0;
    float none = 0;
    s = (loom_samples){.count = 0, .node_features = 3, .node_off = &zero, .edge_off = &zero, .x = &none};
    write_ok(&s, "empty.bin");
    r = read_ok("empty.bin");
    ck_assert_int_eq(r.count, 0);
    ck_assert_int_eq(r.node_features, 3);
    ck_assert_int_eq(r.node_off[0], 0);
    loom_samples_free(&r);

    /* nothing left beside the files: the temporary names were renamed */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "test $(ls '%s' | grep -c tmp) -eq 0", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* The bytes of a file written from s. */
static unsigned char *file_bytes(const loom_samples *s, size_t *len)
{
    write_ok(s, "good.bin");
    char path[256];
    path_of(path, sizeof path, "good.bin");
    FILE *f = fopen(path, "rb");
    ck_assert(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    unsigned char *b = malloc(*len + 16);
    ck_assert(b);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void put32(unsigned char *p, uint32_t v)
{
    for (int k = 0; k < 4; k++)
        p[k] = (unsigned char)(v >> 8 * k);
}

static void put64(unsigned char *p, uint64_t v)
{
    for (int k = 0; k < 8; k++)
        p[k] = (unsigned char)(v >> 8 * k);
}

/* The header's checksum made right again after a change to the payload. */
static void fix_crc(unsigned char *b, size_t len) { put32(b + 68, (uint32_t)crc32(0, b + 80, (uInt)(len - 80))); }

/* Writes len bytes of b as bad.bin and expects reading it to fail with status, the file and
 * "byte <at>: " and needle in the message. */
static void expect_refused(const unsigned char *b, size_t len, loom_status status, long long at, const char *needle)
{
    char path[256], want[300];
    path_of(path, sizeof path, "bad.bin");
    FILE *f = fopen(path, "wb");
    ck_assert(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    loom_samples s;
    memset(&s, 0xab, sizeof s);
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_samples_read(path, &s, &err), status);
    snprintf(want, sizeof want, "%s: byte %lld: ", path, at);
    ck_assert_msg(strstr(err.msg, want), "message '%s' lacks '%s'", err.msg, want);
    ck_assert_msg(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_ptr_null(s.node_off); /* cleared, nothing leaked */
    remove(path);
}

START_TEST(test_bad_files)
{
    loom_samples s = make(opts(4, 2));
    size_t len;
    unsigned char *good = file_bytes(&s, &len), *b = malloc(len + 16);
    ck_assert(b);
    int64_t count = s.count, edges = s.edge_off[s.count];
    char want[200];

    /* not a samples file; another version */
    memcpy(b, good, len);
    memcpy(b, "PK\3\4abcd", 8);
    expect_refused(b, len, LOOM_ERR_FORMAT, 0, "not a Loom samples file: expected the magic \"LOOMSMP1\"");
    expect_refused((const unsigned char *)"hello", 5, LOOM_ERR_FORMAT, 0, "not a Loom samples file");
    memcpy(b, good, len);
    put32(b + 8, 2);
    expect_refused(b, len, LOOM_ERR_FORMAT, 8, "version 2, this Loom reads version 1");
    expect_refused(b, 20, LOOM_ERR_FORMAT, 8, "version 2"); /* the version first, even in a short file */

    /* truncated: empty, inside the magic, inside the header, inside an array, the last byte */
    expect_refused(good, 0, LOOM_ERR_FORMAT, 0, "truncated: the file ends at byte 0, expected the 80-byte header");
    expect_refused(good, 5, LOOM_ERR_FORMAT, 5, "truncated: the file ends at byte 5");
    expect_refused(good, 40, LOOM_ERR_FORMAT, 40, "truncated: the file ends at byte 40, expected the 80-byte header");
    snprintf(want, sizeof want, "truncated: the file ends at byte 80, expected %zu bytes", len);
    expect_refused(good, 80, LOOM_ERR_FORMAT, 80, want);
    size_t mid = 80 + 2 * 8 * (size_t)(count + 1) + 4 * (size_t)edges + 2; /* inside dst */
    snprintf(want, sizeof want, "truncated: the file ends at byte %zu, expected %zu bytes", mid, len);
    expect_refused(good, mid, LOOM_ERR_FORMAT, (long long)mid, want);
    snprintf(want, sizeof want, "truncated: the file ends at byte %zu, expected %zu bytes", len - 1, len);
    expect_refused(good, len - 1, LOOM_ERR_FORMAT, (long long)len - 1, want);
    /* and one byte too many */
    memcpy(b, good, len);
    b[len] = 0;
    expect_refused(b, len + 1, LOOM_ERR_FORMAT, (long long)len, "1 bytes past the end of the arrays");

    /* a flipped bit in the payload: the checksum */
    memcpy(b, good, len);
    b[len / 2] ^= 0x10;
    expect_refused(b, len, LOOM_ERR_FORMAT, 80, "CRC-32");
    expect_refused(b, len, LOOM_ERR_FORMAT, 80, "(the header's, byte 68): the file is corrupt");

    /* header counts that overflow or disagree, before anything is allocated from them */
    memcpy(b, good, len);
    put64(b + 16, (uint64_t)INT64_MAX);
    expect_refused(b, len, LOOM_ERR_FORMAT, 16, "count is 9223372036854775807: count + 1 offsets overflow");
    put64(b + 16, UINT64_C(1) << 61);
    expect_refused(b, len, LOOM_ERR_FORMAT, 16, "node_off of 2305843009213693953 elements: the file would be over 2^63");
    put64(b + 16, UINT64_C(1) << 40); /* fits an int64, not the file */
    expect_refused(b, len, LOOM_ERR_FORMAT, 72, "the counts give");
    put64(b + 16, UINT64_C(1) << 63);
    expect_refused(b, len, LOOM_ERR_FORMAT, 16, "count is -9223372036854775808: expected at least 0");
    memcpy(b, good, len);
    put64(b + 48, UINT64_C(1) << 62);
    expect_refused(b, len, LOOM_ERR_FORMAT, 48, "4611686018427387904 nodes of 5 features overflow an int64");
    memcpy(b, good, len);
    put64(b + 56, UINT64_C(1) << 61);
    expect_refused(b, len, LOOM_ERR_FORMAT, 56, "edges of 4 features overflow an int64");
    memcpy(b, good, len);
    put64(b + 24, 0);
    expect_refused(b, len, LOOM_ERR_FORMAT, 24, "node_features is 0: expected at least 1");
    memcpy(b, good, len);
    put32(b + 64, 0x13);
    expect_refused(b, len, LOOM_ERR_FORMAT, 64, "flags 0x13: expected only");
    put32(b + 64, 0x2);
    expect_refused(b, len, LOOM_ERR_FORMAT, 64, "4 edge features but no edge_attr");
    memcpy(b, good, len);
    put32(b + 12, 96);
    expect_refused(b, len, LOOM_ERR_FORMAT, 12, "header of 96 bytes");

    /* a right checksum over wrong offsets and endpoints: refused before they are used */
    memcpy(b, good, len);
    size_t last = 80 + 8 * (size_t)count; /* node_off[count] */
    put64(b + last, (uint64_t)s.node_off[count] + 1000);
    fix_crc(b, len);
    snprintf(want, sizeof want, "node_off[%lld] is %lld", (long long)count, (long long)s.node_off[count] + 1000);
    expect_refused(b, len, LOOM_ERR_FORMAT, (long long)last, want);
    memcpy(b, good, len);
    put64(b + 80 + 8, UINT64_C(1) << 62); /* node_off[1] */
    fix_crc(b, len);
    expect_refused(b, len, LOOM_ERR_FORMAT, 88, "node_off[1] is 4611686018427387904");
    memcpy(b, good, len);
    size_t src0 = 80 + 16 * (size_t)(count + 1);
    put32(b + src0, 1u << 30);
    fix_crc(b, len);
    expect_refused(b, len, LOOM_ERR_FORMAT, 80, "sample 0, edge 0: endpoints (1073741824");

    /* files that cannot be read at all */
    loom_samples r;
    loom_error err = LOOM_ERROR_INIT;
    char path[256];
    path_of(path, sizeof path, "missing.bin");
    ck_assert_int_eq(loom_samples_read(path, &r, &err), LOOM_ERR_IO);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
    ck_assert_int_eq(loom_samples_read(tmpdir, &r, &err), LOOM_ERR_IO);
    ck_assert_msg(strstr(err.msg, tmpdir) && strstr(err.msg, strerror(EISDIR)), "%s", err.msg);
    ck_assert_int_eq(loom_samples_read(NULL, &r, &err), LOOM_ERR_INVALID);

    /* nor written */
    snprintf(path, sizeof path, "%s/no/such/dir/x.bin", tmpdir);
    ck_assert_int_eq(loom_samples_write(&s, path, &err), LOOM_ERR_IO);
    ck_assert_msg(strstr(err.msg, path) && strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
    ck_assert_int_eq(loom_samples_write(&s, tmpdir, &err), LOOM_ERR_IO); /* a directory is not replaced */
    ck_assert_msg(strstr(err.msg, tmpdir), "%s", err.msg);
    struct stat st;
    ck_assert_int_eq(stat(tmpdir, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    s.src[0] = -1; /* a bad set is not written */
    path_of(path, sizeof path, "never.bin");
    ck_assert_int_eq(loom_samples_write(&s, path, &err), LOOM_ERR_FORMAT);
    ck_assert_int_ne(access(path, F_OK), 0);

    free(good);
    free(b);
    loom_samples_free(&s);
}
END_TEST

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("test_events: mkdtemp");
        return 1;
    }
    Suite *s = suite_create("events");
    TCase *tc = tcase_create("events");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_same_options_same_bytes);
    tcase_add_test(tc, test_event_from_seed_and_index);
    tcase_add_test(tc, test_same_bytes_on_every_machine);
    tcase_add_test(tc, test_default_set);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_sparse_events);
    tcase_add_test(tc, test_file_round_trip);
    tcase_add_test(tc, test_bad_files);
    suite_add_tcase(s, tc);
    int failed = lt_run_suite(s);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_events: could not remove %s\n", tmpdir);
    return failed ? 1 : 0;
}
