/* Samplers (loom_sampler): every id once an epoch, `devices` shares a step, budgets kept, epochs
 * made from (seed, epoch) alone; the peak share each kind deals on a skewed dataset (balance below
 * random, skew above all, devices more even than dealing in order); bad options, a sample larger
 * than the budget, kind names; and a million samples dealt in linear time. */
#include <check.h>
#include <loom/loom.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

enum { N = 600 };

static uint64_t lcg(uint64_t *st)
{
    *st = *st * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return *st >> 33;
}

/* count samples, nine in ten small (8 to 40 nodes), one in ten large (300 to 900 nodes), 2 to 4
 * edges a node. When full, x, edge_attr, src and dst are there, zero-filled, and
 * loom_samples_validate accepts the set; otherwise only the offsets, which is all a sampler reads. */
static loom_samples make_samples(int64_t count, uint64_t seed, int full)
{
    loom_samples s = LOOM_SAMPLES_INIT;
    s.count = count;
    s.node_features = 3;
    s.edge_features = 1;
    s.node_off = malloc((size_t)(count + 1) * sizeof *s.node_off);
    s.edge_off = malloc((size_t)(count + 1) * sizeof *s.edge_off);
    ck_assert(s.node_off && s.edge_off);
    s.node_off[0] = s.edge_off[0] = 0;
    uint64_t st = seed;
    for (int64_t i = 0; i < count; i++) {
        int64_t nodes = lcg(&st) % 10 ? 8 + (int64_t)(lcg(&st) % 33) : 300 + (int64_t)(lcg(&st) % 601);
        s.node_off[i + 1] = s.node_off[i] + nodes;
        s.edge_off[i + 1] = s.edge_off[i] + nodes * (2 + (int64_t)(lcg(&st) % 3));
    }
    if (full) {
        int64_t nodes = s.node_off[count], edges = s.edge_off[count];
        s.x = calloc((size_t)(nodes * s.node_features), sizeof *s.x);
        s.edge_attr = calloc((size_t)edges, sizeof *s.edge_attr);
        s.src = calloc((size_t)edges, sizeof *s.src);
        s.dst = calloc((size_t)edges, sizeof *s.dst);
        ck_assert(s.x && s.edge_attr && s.src && s.dst);
        loom_error err = LOOM_ERROR_INIT;
        ck_assert_msg(loom_samples_validate(&s, &err) == LOOM_OK, "%s", err.msg);
    }
    return s;
}

static loom_sampler *make(const loom_samples *s, const int64_t *ids, int64_t n, loom_sampler_opts o)
{
    loom_sampler *p = NULL;
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_sampler_new(s, ids, n, &o, &p, &err) == LOOM_OK, "%s", err.msg);
    return p;
}

static void deal(loom_sampler *p, int64_t epoch)
{
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_msg(loom_sampler_epoch(p, epoch, &err) == LOOM_OK, "%s", err.msg);
}

/* A hash of the epoch's steps: every share's ids in order. */
static uint64_t fingerprint(const loom_sampler *p)
{
    uint64_t h = UINT64_C(1469598103934665603);
    int devices = loom_sampler_options(p)->devices;
    for (int64_t k = 0; k < loom_sampler_steps(p); k++)
        for (int d = 0; d < devices; d++) {
            int64_t len;
            const int64_t *ids = loom_sampler_share(p, k, d, &len);
            h = (h ^ (uint64_t)(len + 7 * d)) * UINT64_C(1099511628211);
            for (int64_t i = 0; i < len; i++)
                h = (h ^ (uint64_t)ids[i]) * UINT64_C(1099511628211);
        }
    return h;
}

/* The epoch dealt last visits ids[0 .. n-1] (all of s when NULL) once each, and nothing else; its
 * steps have `devices` shares, none all empty; share sizes, budgets and the largest share agree. */
static void check_epoch(const loom_samples *s, const int64_t *ids, int64_t n, const loom_sampler *p)
{
    const loom_sampler_opts *o = loom_sampler_options(p);
    int *seen = calloc((size_t)s->count, sizeof *seen);
    ck_assert(seen);
    for (int64_t i = 0; i < n; i++)
        seen[ids ? ids[i] : i] = -1; /* listed, not yet visited */
    int64_t steps = loom_sampler_steps(p), visited = 0, top_n = 0, top_e = 0, top_b = -1, top_k = -1;
    int top_d = -1;
    ck_assert_int_ge(steps, 1);
    for (int64_t k = 0; k < steps; k++) {
        int64_t in_step = 0;
        for (int d = 0; d < o->devices; d++) {
            int64_t len, nodes = 0, edges = 0, bytes = 0, sn, se;
            const int64_t *sh = loom_sampler_share(p, k, d, &len);
            ck_assert(len == 0 || sh != NULL);
            for (int64_t i = 0; i < len; i++) {
                ck_assert_int_ge(sh[i], 0);
                ck_assert_int_lt(sh[i], s->count);
                ck_assert_msg(seen[sh[i]] == -1, "sample %lld %s", (long long)sh[i],
                              seen[sh[i]] ? "visited twice" : "not in the list");
                seen[sh[i]] = 1;
                nodes += loom_samples_nodes(s, sh[i]);
                edges += loom_samples_edges(s, sh[i]);
                bytes += loom_samples_bytes(s, sh[i]);
            }
            loom_sampler_share_size(p, k, d, &sn, &se);
            ck_assert_int_eq(sn, nodes);
            ck_assert_int_eq(se, edges);
            if (o->kind == LOOM_SAMPLER_BUDGET || o->kind == LOOM_SAMPLER_PLAN) {
                ck_assert(!o->max_nodes || nodes <= o->max_nodes);
                ck_assert(!o->max_edges || edges <= o->max_edges);
            }
            top_n = nodes > top_n ? nodes : top_n;
            top_e = edges > top_e ? edges : top_e;
            if (bytes > top_b) {
                top_b = bytes;
                top_k = k;
                top_d = d;
            }
            in_step += len;
        }
        int64_t len = 1;
        ck_assert_ptr_null(loom_sampler_share(p, k, o->devices, &len)); /* only `devices` shares */
        ck_assert_int_eq(len, 0);
        ck_assert_int_ge(in_step, 1);
        visited += in_step;
    }
    ck_assert_int_eq(visited, n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_int_eq(seen[ids ? ids[i] : i], 1);
    int64_t ln, le, lk;
    int ld;
    loom_sampler_largest(p, &ln, &le, &lk, &ld);
    ck_assert_int_eq(ln, top_n);
    ck_assert_int_eq(le, top_e);
    ck_assert_int_eq(lk, top_k);
    ck_assert_int_eq(ld, top_d);
    free(seen);
}

/* A sampler of o over ids (all of s when NULL), epoch `epoch` dealt and checked; its steps. */
static int64_t deal_checked(const loom_samples *s, const int64_t *ids, int64_t n, loom_sampler_opts o, int64_t epoch)
{
    loom_sampler *p = make(s, ids, n, o);
    deal(p, epoch);
    check_epoch(s, ids, n, p);
    int64_t steps = loom_sampler_steps(p);
    loom_sampler_free(p);
    return steps;
}

/* The options of a kind for these tests: steps of 16, or a budget of 1,500 nodes and 5,000 edges
 * a share (the largest sample has 900 nodes and 3,600 edges). */
static loom_sampler_opts opts_of(loom_sampler_kind kind, int devices, uint64_t seed)
{
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT;
    o.kind = kind;
    o.batch = 16;
    o.devices = devices;
    o.seed = seed;
    o.size = LOOM_SIZE_NODES;
    if (kind == LOOM_SAMPLER_BUDGET || kind == LOOM_SAMPLER_PLAN) {
        o.max_nodes = 1500;
        o.max_edges = 5000;
    }
    return o;
}

START_TEST(test_every_id_once)
{
    loom_samples s = make_samples(N, 11, 1);
    int64_t sub[N / 3];
    for (int64_t i = 0; i < N / 3; i++)
        sub[i] = (i * 7 + 5) % N; /* 7 is prime to 600: distinct */
    for (int kind = 0; kind < LOOM_SAMPLER_KIND_COUNT; kind++)
        for (int devices = 1; devices <= 3; devices++)
            for (uint64_t seed = 1; seed <= 2; seed++)
                for (int sort = 0; sort <= 1; sort++) {
                    loom_sampler_opts o = opts_of((loom_sampler_kind)kind, devices, seed);
                    o.sort = sort;
                    o.size = (loom_size_kind)((kind + sort) % LOOM_SIZE_KIND_COUNT);
                    loom_sampler *all = make(&s, NULL, N, o), *part = make(&s, sub, N / 3, o);
                    ck_assert_int_eq(loom_sampler_steps(all), 0);
                    for (int64_t epoch = 0; epoch < 3; epoch++) {
                        deal(all, epoch);
                        check_epoch(&s, NULL, N, all);
                        deal(part, epoch);
                        check_epoch(&s, sub, N / 3, part);
                    }
                    loom_sampler_free(all);
                    loom_sampler_free(part);
                }
    loom_samples_free(&s);
}
END_TEST

START_TEST(test_same_epoch_same_steps)
{
    loom_samples s = make_samples(N, 12, 0);
    for (int kind = 0; kind < LOOM_SAMPLER_KIND_COUNT; kind++)
        for (int devices = 1; devices <= 3; devices++)
            for (int sort = 0; sort <= 1; sort++) {
                loom_sampler_opts o = opts_of((loom_sampler_kind)kind, devices, 5);
                o.sort = sort;
                loom_sampler *a = make(&s, NULL, N, o), *b = make(&s, NULL, N, o);
                o.seed = 6;
                loom_sampler *c = make(&s, NULL, N, o);
                deal(a, 3);
                uint64_t h3 = fingerprint(a);
                deal(a, 4);
                uint64_t h4 = fingerprint(a);
                deal(a, 3);
                ck_assert_uint_eq(fingerprint(a), h3); /* dealt again */
                deal(b, 3);
                ck_assert_uint_eq(fingerprint(b), h3); /* another sampler, the same options */
                deal(c, 3);
                ck_assert_msg(h4 != h3, "%s (devices %d): epochs 3 and 4 alike", loom_sampler_kind_name(kind), devices);
                ck_assert_msg(fingerprint(c) != h3, "%s (devices %d): seeds 5 and 6 alike", loom_sampler_kind_name(kind),
                              devices);
                loom_sampler_free(a);
                loom_sampler_free(b);
                loom_sampler_free(c);
            }
    loom_samples_free(&s);
}
END_TEST

/* The kinds dealt in steps of `batch`: ceil(n / batch) steps of batch samples (the last smaller),
 * shares of equal counts (the first ones one larger) except for devices. */
START_TEST(test_steps_of_batch)
{
    loom_samples s = make_samples(N, 13, 0);
    loom_sampler_kind kinds[] = {LOOM_SAMPLER_RANDOM, LOOM_SAMPLER_BALANCE, LOOM_SAMPLER_OUTLIER, LOOM_SAMPLER_SKEW,
                                 LOOM_SAMPLER_DEVICES};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        for (int devices = 1; devices <= 3; devices++)
            for (int64_t batch = 1; batch <= 70; batch += 23) {
                loom_sampler_opts o = opts_of(kinds[i], devices, 1);
                o.batch = batch;
                loom_sampler *p = make(&s, NULL, N, o);
                deal(p, 0);
                int64_t steps = loom_sampler_steps(p);
                ck_assert_int_eq(steps, (N + batch - 1) / batch);
                for (int64_t k = 0; k < steps; k++) {
                    int64_t want = k < steps - 1 ? batch : N - (steps - 1) * batch, got = 0;
                    for (int d = 0; d < devices; d++) {
                        int64_t len;
                        loom_sampler_share(p, k, d, &len);
                        if (kinds[i] != LOOM_SAMPLER_DEVICES)
                            ck_assert_int_eq(len, want / devices + (d < want % devices));
                        got += len;
                    }
                    ck_assert_int_eq(got, want);
                }
                loom_sampler_free(p);
            }
    loom_samples_free(&s);
}
END_TEST

/* balance from one large sample to all of them, outlier and balance with a step a sample, and
 * steps longer than the list. */
START_TEST(test_spread_extremes)
{
    loom_samples s = make_samples(N, 22, 0);
    double fractions[] = {1e-9, 0.5, 1.0};
    for (int devices = 1; devices <= 3; devices++) {
        for (int i = 0; i < 3; i++) {
            loom_sampler_opts o = opts_of(LOOM_SAMPLER_BALANCE, devices, 2);
            o.batch = 7;
            o.fraction = fractions[i];
            ck_assert_int_eq(deal_checked(&s, NULL, N, o, 1), (N + 6) / 7);
        }
        for (int kind = LOOM_SAMPLER_BALANCE; kind <= LOOM_SAMPLER_SKEW; kind++) {
            loom_sampler_opts o = opts_of((loom_sampler_kind)kind, devices, 2);
            o.batch = 1;
            ck_assert_int_eq(deal_checked(&s, NULL, N, o, 0), N);
            o.batch = 5 * N;
            ck_assert_int_eq(deal_checked(&s, NULL, N, o, 0), 1);
        }
    }
    loom_samples_free(&s);
}
END_TEST

/* The rank of every sample of s by nodes, largest first, ties by id. */
static int64_t *ranks(const loom_samples *s)
{
    int64_t *r = malloc((size_t)s->count * sizeof *r);
    ck_assert(r);
    for (int64_t i = 0; i < s->count; i++) {
        r[i] = 0;
        for (int64_t j = 0; j < s->count; j++) {
            int64_t a = loom_samples_nodes(s, i), b = loom_samples_nodes(s, j);
            r[i] += b > a || (b == a && j < i);
        }
    }
    return r;
}

/* Composition by rank: outlier puts one of the `steps` largest in each step; skew's steps are
 * runs of consecutive ranks; balance gives each step floor or ceil of large / steps of the
 * largest. */
START_TEST(test_composition_by_size)
{
    loom_samples s = make_samples(N, 14, 0);
    int64_t *rank = ranks(&s), batch = 16, steps = (N + batch - 1) / batch;
    int64_t large = 60; /* ceil(0.1 * 600) */
    loom_sampler_kind kinds[] = {LOOM_SAMPLER_OUTLIER, LOOM_SAMPLER_SKEW, LOOM_SAMPLER_BALANCE};
    for (size_t i = 0; i < 3; i++)
        for (int epoch = 0; epoch < 3; epoch++) {
            loom_sampler_opts o = opts_of(kinds[i], 2, 3);
            loom_sampler *p = make(&s, NULL, N, o);
            deal(p, epoch);
            ck_assert_int_eq(loom_sampler_steps(p), steps);
            for (int64_t k = 0; k < steps; k++) {
                int64_t top = 0, lo = N, hi = -1, count = 0;
                for (int d = 0; d < 2; d++) {
                    int64_t len;
                    const int64_t *ids = loom_sampler_share(p, k, d, &len);
                    for (int64_t j = 0; j < len; j++) {
                        int64_t r = rank[ids[j]];
                        top += kinds[i] == LOOM_SAMPLER_OUTLIER ? r < steps : r < large;
                        lo = r < lo ? r : lo;
                        hi = r > hi ? r : hi;
                    }
                    count += len;
                }
                if (kinds[i] == LOOM_SAMPLER_OUTLIER)
                    ck_assert_int_eq(top, 1);
                else if (kinds[i] == LOOM_SAMPLER_SKEW)
                    ck_assert_int_eq(hi - lo + 1, count);
                else
                    ck_assert(top == large / steps || top == (large + steps - 1) / steps);
            }
            loom_sampler_free(p);
        }
    free(rank);
    loom_samples_free(&s);
}
END_TEST

/* Over `epochs` epochs of kind: the mean of the largest share in nodes, and the mean over steps of
 * (largest share / mean share) in nodes. */
static void peak(const loom_samples *s, loom_sampler_kind kind, int devices, int epochs, double *largest,
                 double *spread)
{
    loom_sampler *p = make(s, NULL, s->count, opts_of(kind, devices, 21));
    double sum = 0, ratio = 0;
    int64_t steps = 0;
    for (int epoch = 0; epoch < epochs; epoch++) {
        deal(p, epoch);
        int64_t nodes;
        loom_sampler_largest(p, &nodes, NULL, NULL, NULL);
        sum += (double)nodes;
        for (int64_t k = 0; k < loom_sampler_steps(p); k++, steps++) {
            int64_t top = 0, all = 0;
            for (int d = 0; d < devices; d++) {
                int64_t n;
                loom_sampler_share_size(p, k, d, &n, NULL);
                top = n > top ? n : top;
                all += n;
            }
            ratio += (double)top * devices / (double)all;
        }
    }
    *largest = sum / epochs;
    *spread = ratio / (double)steps;
    loom_sampler_free(p);
}

START_TEST(test_peak_share_by_kind)
{
    loom_samples s = make_samples(N, 15, 0);
    loom_sampler_kind kinds[] = {LOOM_SAMPLER_RANDOM, LOOM_SAMPLER_BALANCE, LOOM_SAMPLER_OUTLIER, LOOM_SAMPLER_SKEW,
                                 LOOM_SAMPLER_DEVICES, LOOM_SAMPLER_BUDGET};
    enum { K = sizeof kinds / sizeof *kinds };
    printf("largest share in nodes, mean of 8 epochs (%d samples of 8 to 900 nodes, 16 a step; budget: 1500 nodes, "
           "5000 edges a share); max/mean share per step\n",
           N);
    for (int devices = 1; devices <= 3; devices++) {
        double largest[K], spread[K];
        printf("  devices %d:", devices);
        for (int i = 0; i < K; i++) {
            peak(&s, kinds[i], devices, 8, &largest[i], &spread[i]);
            printf(" %s %.0f (%.2f)%s", loom_sampler_kind_name(kinds[i]), largest[i], spread[i], i + 1 < K ? "," : "\n");
        }
        ck_assert_msg(largest[1] < 0.9 * largest[0], "devices %d: balance %.0f, random %.0f", devices, largest[1],
                      largest[0]);
        for (int i = 0; i < 3; i++)
            ck_assert_msg(largest[3] > largest[i], "devices %d: skew %.0f, %s %.0f", devices, largest[3],
                          loom_sampler_kind_name(kinds[i]), largest[i]);
        ck_assert_msg(largest[3] > largest[4], "devices %d: skew %.0f, devices %.0f", devices, largest[3], largest[4]);
        if (devices > 1) /* the same steps as random's, dealt by size instead of in order */
            ck_assert_msg(spread[4] < spread[0] - 0.05, "devices %d: max / mean share %.3f, dealt in order %.3f", devices,
                          spread[4], spread[0]);
    }
    fflush(stdout);
    loom_samples_free(&s);
}
END_TEST

static void expect_invalid(const loom_samples *s, const int64_t *ids, int64_t n, loom_sampler_opts o, const char *needle)
{
    static char junk;
    loom_sampler *p = (loom_sampler *)&junk; /* not NULL, to see it cleared */
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_sampler_new(s, ids, n, &o, &p, &err), LOOM_ERR_INVALID);
    ck_assert_ptr_null(p);
    ck_assert_msg(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
    ck_assert_msg(strstr(err.msg, "loom_sampler_new: "), "message '%s' does not name the call", err.msg);
    ck_assert_int_eq(loom_sampler_new(s, ids, n, &o, &p, NULL), LOOM_ERR_INVALID); /* err may be NULL */
}

START_TEST(test_bad_options)
{
    loom_samples s = make_samples(N, 16, 0);
    loom_sampler_opts o = LOOM_SAMPLER_OPTS_INIT, b;
    b = o, b.kind = LOOM_SAMPLER_KIND_COUNT;
    expect_invalid(&s, NULL, N, b, "kind is 7: expected 0 to 6");
    b = o, b.kind = (loom_sampler_kind)-1;
    expect_invalid(&s, NULL, N, b, "kind is -1");
    b = o, b.batch = 0;
    expect_invalid(&s, NULL, N, b, "batch is 0: expected >= 1 for the random sampler");
    b = o, b.kind = LOOM_SAMPLER_DEVICES, b.batch = -4;
    expect_invalid(&s, NULL, N, b, "batch is -4: expected >= 1 for the devices sampler");
    b = o, b.devices = 0;
    expect_invalid(&s, NULL, N, b, "devices is 0: expected 1 to 1024");
    b = o, b.devices = 1025;
    expect_invalid(&s, NULL, N, b, "devices is 1025");
    b = o, b.size = LOOM_SIZE_KIND_COUNT;
    expect_invalid(&s, NULL, N, b, "size is 3: expected 0 to 2 (bytes, nodes, edges)");
    b = o, b.kind = LOOM_SAMPLER_BALANCE, b.fraction = 0;
    expect_invalid(&s, NULL, N, b, "fraction is 0: expected a value in (0, 1]");
    b.fraction = 1.5;
    expect_invalid(&s, NULL, N, b, "fraction is 1.5");
    b.fraction = NAN;
    expect_invalid(&s, NULL, N, b, "fraction is ");
    b = o, b.kind = LOOM_SAMPLER_BUDGET, b.max_nodes = -1;
    expect_invalid(&s, NULL, N, b, "max_nodes is -1: expected >= 0");
    b = o, b.kind = LOOM_SAMPLER_BUDGET, b.max_edges = -7;
    expect_invalid(&s, NULL, N, b, "max_edges is -7: expected >= 0");
    b = o, b.kind = LOOM_SAMPLER_PLAN;
    expect_invalid(&s, NULL, N, b, "the plan sampler's budget comes from loom_batch_fit_plan");
    expect_invalid(&s, NULL, N - 1, o, "ids is NULL but n is 599: expected the dataset's 600 samples");
    int64_t ids[4] = {3, 9, 600, 1};
    expect_invalid(&s, ids, 4, o, "ids[2] is 600: outside the dataset's 600 samples");
    ids[2] = -2;
    expect_invalid(&s, ids, 4, o, "ids[2] is -2");
    ids[2] = 9;
    expect_invalid(&s, ids, 4, o, "ids[1] and ids[2] are both sample 9: it would be dealt twice");
    expect_invalid(&s, ids, 0, o, "empty dataset: no samples to deal");
    expect_invalid(&s, ids, -3, o, "n is -3: expected >= 1");
    loom_samples none = LOOM_SAMPLES_INIT;
    none.node_features = 1;
    expect_invalid(&none, NULL, 0, o, "empty dataset: no samples to deal");
    expect_invalid(NULL, NULL, 0, o, "NULL samples");
    loom_error err = LOOM_ERROR_INIT;
    ck_assert_int_eq(loom_sampler_new(&s, NULL, N, NULL, NULL, &err), LOOM_ERR_INVALID);
    /* options a kind does not use are not checked */
    b = o, b.kind = LOOM_SAMPLER_BUDGET, b.batch = 0, b.fraction = 0;
    loom_sampler_free(make(&s, NULL, N, b));
    b = o, b.max_nodes = -1;
    loom_sampler_free(make(&s, NULL, N, b));
    /* an epoch before 0 */
    loom_sampler *p = make(&s, NULL, N, o);
    ck_assert_int_eq(loom_sampler_epoch(p, -1, &err), LOOM_ERR_INVALID);
    ck_assert_msg(strstr(err.msg, "epoch is -1: expected >= 0"), "%s", err.msg);
    ck_assert_int_eq(loom_sampler_steps(p), 0);
    int64_t ln = 1, lk = 0;
    int ld = 0;
    loom_sampler_largest(p, &ln, NULL, &lk, &ld);
    ck_assert_int_eq(ln, 0);
    ck_assert_int_eq(lk, -1);
    ck_assert_int_eq(ld, -1);
    loom_sampler_free(p);
    loom_sampler_free(NULL);
    loom_samples_free(&s);
}
END_TEST

/* The sample with the most nodes (edges: 1) of s, the first of them. */
static int64_t largest_sample(const loom_samples *s, int edges)
{
    int64_t big = 0;
    for (int64_t i = 1; i < s->count; i++)
        if (edges ? loom_samples_edges(s, i) > loom_samples_edges(s, big) : loom_samples_nodes(s, i) > loom_samples_nodes(s, big))
            big = i;
    return big;
}

START_TEST(test_sample_over_budget)
{
    loom_samples s = make_samples(N, 17, 0);
    int64_t big = largest_sample(&s, 0), nodes = loom_samples_nodes(&s, big), edges = loom_samples_edges(&s, big);
    loom_sampler_opts o = opts_of(LOOM_SAMPLER_BUDGET, 2, 1);
    o.max_nodes = nodes - 1;
    o.max_edges = 0;
    char want[200];
    snprintf(want, sizeof want,
             "sample %lld (%lld nodes, %lld edges) is larger than the whole budget of a share (max_nodes %lld, max_edges 0",
             (long long)big, (long long)nodes, (long long)edges, (long long)(nodes - 1));
    expect_invalid(&s, NULL, N, o, want);
    o.kind = LOOM_SAMPLER_PLAN;
    expect_invalid(&s, NULL, N, o, want);
    /* on edges alone; a list without the samples over the budget is dealt */
    big = largest_sample(&s, 1);
    edges = loom_samples_edges(&s, big);
    o.max_nodes = 0;
    o.max_edges = edges - 1;
    snprintf(want, sizeof want, "sample %lld (%lld nodes, %lld edges) is larger", (long long)big,
             (long long)loom_samples_nodes(&s, big), (long long)edges);
    expect_invalid(&s, &big, 1, o, want);
    int64_t rest[N], m = 0;
    for (int64_t i = 0; i < N; i++)
        if (loom_samples_edges(&s, i) < edges)
            rest[m++] = i;
    deal_checked(&s, rest, m, o, 0);
    /* a budget the largest sample fits exactly */
    o.max_edges = edges;
    o.sort = 1;
    deal_checked(&s, NULL, N, o, 2);
    loom_samples_free(&s);
}
END_TEST

/* Budget packing fills shares: with a budget of several samples, steps are few and full. */
START_TEST(test_budget_packs)
{
    loom_samples s = make_samples(N, 18, 0);
    int64_t total = s.node_off[N];
    for (int devices = 1; devices <= 3; devices++)
        for (int sort = 0; sort <= 1; sort++) {
            loom_sampler_opts o = opts_of(LOOM_SAMPLER_BUDGET, devices, 4);
            o.max_edges = 0;
            o.sort = sort;
            /* a step closes only when its next sample (at most 900 nodes) fits no share */
            int64_t steps = deal_checked(&s, NULL, N, o, 1), bound = total / ((1500 - 900) * devices) + 1;
            ck_assert_msg(steps <= bound, "%lld steps, over %lld", (long long)steps, (long long)bound);
        }
    /* no bound at all: one step */
    loom_sampler_opts o = opts_of(LOOM_SAMPLER_BUDGET, 3, 4);
    o.max_nodes = o.max_edges = 0;
    ck_assert_int_eq(deal_checked(&s, NULL, N, o, 0), 1);
    loom_samples_free(&s);
}
END_TEST

/* Fewer samples than devices: empty shares, still one step. */
START_TEST(test_fewer_samples_than_devices)
{
    loom_samples s = make_samples(N, 19, 0);
    int64_t ids[2] = {5, 2};
    for (int kind = 0; kind < LOOM_SAMPLER_KIND_COUNT; kind++) {
        loom_sampler *p = make(&s, ids, 2, opts_of((loom_sampler_kind)kind, 3, 1));
        deal(p, 0);
        ck_assert_int_eq(loom_sampler_steps(p), 1);
        check_epoch(&s, ids, 2, p);
        int64_t len = 1;
        ck_assert_ptr_null(loom_sampler_share(p, 0, 2, &len));
        ck_assert_int_eq(len, 0);
        ck_assert_ptr_null(loom_sampler_share(p, 1, 0, &len));
        ck_assert_ptr_null(loom_sampler_share(p, -1, 0, &len));
        loom_sampler_free(p);
    }
    loom_samples_free(&s);
}
END_TEST

START_TEST(test_kind_names)
{
    const char *names[] = {"random", "balance", "outlier", "skew", "budget", "devices", "plan"};
    ck_assert_int_eq(LOOM_SAMPLER_KIND_COUNT, 7);
    for (int k = 0; k < LOOM_SAMPLER_KIND_COUNT; k++) {
        ck_assert_str_eq(loom_sampler_kind_name((loom_sampler_kind)k), names[k]);
        loom_sampler_kind got = LOOM_SAMPLER_KIND_COUNT;
        ck_assert_int_eq(loom_sampler_kind_parse(names[k], &got, NULL), LOOM_OK);
        ck_assert_int_eq(got, k);
    }
    ck_assert_ptr_null(loom_sampler_kind_name(LOOM_SAMPLER_KIND_COUNT));
    ck_assert_ptr_null(loom_sampler_kind_name((loom_sampler_kind)-1));
    loom_error err = LOOM_ERROR_INIT;
    loom_sampler_kind got = LOOM_SAMPLER_SKEW;
    ck_assert_int_eq(loom_sampler_kind_parse("balanced", &got, &err), LOOM_ERR_INVALID);
    ck_assert_int_eq(got, LOOM_SAMPLER_SKEW);
    ck_assert_str_eq(err.msg, "unknown sampler 'balanced': expected one of random, balance, outlier, skew, budget, "
                              "devices, plan");
    ck_assert_int_eq(loom_sampler_kind_parse("", &got, &err), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_sampler_kind_parse("Random", &got, NULL), LOOM_ERR_INVALID);
    ck_assert_int_eq(loom_sampler_kind_parse(NULL, &got, &err), LOOM_ERR_INVALID);
}
END_TEST

/* A million samples: new and an epoch of every kind, timed in CPU time (the machine may be shared);
 * seconds would mean a quadratic step. */
START_TEST(test_million_samples)
{
    loom_samples s = make_samples(1000000, 20, 0); /* offsets only: a sampler reads nothing else */
    printf("a million samples, 4 devices, CPU seconds (new + one epoch):");
    for (int kind = 0; kind < LOOM_SAMPLER_KIND_COUNT; kind++) {
        loom_sampler_opts o = opts_of((loom_sampler_kind)kind, 4, 1);
        o.batch = 64;
        struct timespec t0, t1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
        loom_sampler *p = make(&s, NULL, s.count, o);
        deal(p, 1);
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
        double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        printf(" %s %.3f s%s", loom_sampler_kind_name((loom_sampler_kind)kind), sec,
               kind + 1 < LOOM_SAMPLER_KIND_COUNT ? "," : "\n");
        ck_assert_msg(sec < 20.0, "%s: %.1f s", loom_sampler_kind_name((loom_sampler_kind)kind), sec);
        int64_t len, seen = 0;
        for (int64_t k = 0; k < loom_sampler_steps(p); k++)
            for (int d = 0; d < 4; d++) {
                loom_sampler_share(p, k, d, &len);
                seen += len;
            }
        ck_assert_int_eq(seen, s.count);
        loom_sampler_free(p);
    }
    fflush(stdout);
    loom_samples_free(&s);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sampler");
    TCase *tc = tcase_create("sampler");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_kind_names);
    tcase_add_test(tc, test_every_id_once);
    tcase_add_test(tc, test_same_epoch_same_steps);
    tcase_add_test(tc, test_steps_of_batch);
    tcase_add_test(tc, test_composition_by_size);
    tcase_add_test(tc, test_spread_extremes);
    tcase_add_test(tc, test_peak_share_by_kind);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_sample_over_budget);
    tcase_add_test(tc, test_budget_packs);
    tcase_add_test(tc, test_fewer_samples_than_devices);
    tcase_add_test(tc, test_million_samples);
    suite_add_tcase(s, tc);
    return lt_run_suite(s) ? 1 : 0;
}
