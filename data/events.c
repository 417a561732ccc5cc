/* Synthetic collider events (loom_events_generate, docs/events.md): charged particles on helices in
 * a 2 T solenoid crossing ten cylindrical barrel layers, each event one graph of hits (nodes) and
 * candidate segments between hits on adjacent layers (edges), labelled by whether both hits come
 * from one particle.
 *
 * Event i is drawn from the counter-based generator of data/rand.h keyed by loom__data_rand64(seed,
 * i), its counter running from 0: the event depends on (seed, i) alone, so a set of N events is a
 * prefix of a set of N + k, and events are made on several threads without changing a byte.
 *
 * The same bytes on every machine: the arithmetic is IEEE-754 double with basic operations and
 * sqrt only (correctly rounded everywhere), no contraction into fused multiply-adds, and the
 * elementary functions (exp, log, asin) are the series of data/events_math.h instead of the C
 * library's, whose last bits differ between libraries. floor, frexp and ldexp are exact. This assumes doubles are
 * evaluated as doubles (FLT_EVAL_METHOD 0: x86-64, AArch64), not in x87 extended precision. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <loom/samples.h>

#include "data/events_math.h"
#include "data/rand.h"

#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------------
 * The detector and the windows that make candidate edges.
 * ------------------------------------------------------------------------------------------- */
enum { EV_LAYERS = 10, EV_NODE_F = 5, EV_EDGE_F = 4 };
static const double ev_radius[EV_LAYERS] = {32, 72, 116, 172, 260, 360, 500, 660, 820, 1020}; /* mm */
#define EV_HALF_Z 1100.0   /* mm: the barrel's half-length */
#define EV_FIELD 2.0       /* T, along z */
#define EV_ETA_MAX 2.5     /* particles' pseudorapidity is uniform in [-EV_ETA_MAX, EV_ETA_MAX] */
#define EV_VERTEX_Z 55.0   /* mm: the spread of the collisions along the beam */
#define EV_EFFICIENCY 0.98 /* a particle crossing a layer leaves a hit */
#define EV_SIGMA_RPHI 0.05 /* mm: resolution along the layer's circumference */
#define EV_SIGMA_Z 0.5     /* mm: resolution along the beam */
#define EV_Z0_WINDOW 300.0 /* mm: a segment's line meets the beam within this of z = 0 (5.5 sigma of the vertices) */

/* ---------------------------------------------------------------------------------------------
 * Random numbers: value n of the event's stream is loom__data_rand64(key, n) (data/rand.h); the
 * checksums that tests/test_events.c pins hold it to that.
 * ------------------------------------------------------------------------------------------- */

typedef struct ev_rng {
    uint64_t key, n;
} ev_rng;

static uint64_t ev_next(ev_rng *g) { return loom__data_rand64(g->key, g->n++); }

/* Uniform in (0, 1]: never 0, so its logarithm and negative powers are finite. */
static double ev_unit(ev_rng *g) { return (double)((ev_next(g) >> 11) + 1) * 0x1.0p-53; }

/* Uniform in (-1, 1]. */
static double ev_sym(ev_rng *g) { return 2.0 * ev_unit(g) - 1.0; }

/* N(0, 1) by Marsaglia's polar method (of the pair it makes, one is used). */
static double ev_gauss(ev_rng *g)
{
    for (;;) {
        double u = ev_sym(g), v = ev_sym(g), s = u * u + v * v;
        if (s < 1.0 && s > 0.0)
            return u * sqrt(-2.0 * ev_log(s) / s);
    }
}

/* ---------------------------------------------------------------------------------------------
 * What the options fix for every event.
 * ------------------------------------------------------------------------------------------- */

/* Poisson draws by Knuth's product of uniforms, the mean split into parts of at most EV_POIS_PART
 * (a sum of Poisson counts is one), so that e^-part stays far from underflow. */
#define EV_POIS_PART 256.0

typedef struct ev_setup {
    const loom_event_opts *o;
    double lomax_scale;             /* pile-up: 1 + floor(scale (U^(-1/tail) - 1)) */
    int64_t pois_parts;             /* whole parts of the particle mean */
    double pois_part_exp, pois_rest_exp; /* e^-EV_POIS_PART and e^-(the rest) */
    double wphi;                    /* |dphi| window of a candidate edge */
    double wslope;                  /* |dz / dr| window */
} ev_setup;

/* One window of each kind for every pair of adjacent layers, wide enough for the pair that needs
 * the most. The turn of a helix of radius R between radii r1 < r2 (from the origin) is
 * asin(r2 / 2R) - asin(r1 / 2R); it grows as R shrinks, so among the tracks that reach r2 the one
 * of R = max(R at pt_min, r2 / 2) turns the most. The dphi window is 10% over the largest such turn
 * (the outermost pair's) and 5 sigma of two hits' resolution; the slope window the steepest track's
 * dz/dr (its arc per radius times sinh of the largest eta), 10% over, and 5 sigma of two hits' z
 * over the gap. Inner pairs, whose true segments turn far less than the window, collect most of
 * the false candidates: the work left to a classifier. */
static void ev_windows(ev_setup *st)
{
    double rmin = 1000.0 * st->o->pt_min / (0.3 * EV_FIELD), shmax = ev_sinh(EV_ETA_MAX);
    st->wphi = st->wslope = 0.0;
    for (int l = 0; l + 1 < EV_LAYERS; l++) {
        double r1 = ev_radius[l], r2 = ev_radius[l + 1], R = rmin > r2 / 2 ? rmin : r2 / 2;
        double turn = ev_asin(r2 / (2 * R)) - ev_asin(r1 / (2 * R));
        double w = 1.1 * turn + 5.0 * EV_SIGMA_RPHI * sqrt(1.0 / (r1 * r1) + 1.0 / (r2 * r2));
        double slope = 1.1 * shmax * 2 * R * turn / (r2 - r1) + 5.0 * EV_SIGMA_Z * sqrt(2.0) / (r2 - r1);
        st->wphi = w > st->wphi ? w : st->wphi;
        st->wslope = slope > st->wslope ? slope : st->wslope;
    }
    if (st->wphi > EV_PI)
        st->wphi = EV_PI;
}

static void ev_setup_init(ev_setup *st, const loom_event_opts *o)
{
    st->o = o;
    /* A Lomax (Pareto of the second kind) y = s (U^(-1/a) - 1) has mean s / (a - 1); 1 + floor(y)
     * has about that plus 1/2, hence s = (mean - 1/2)(a - 1). */
    st->lomax_scale = (o->pileup_mean - 0.5) * (o->pileup_tail - 1.0);
    st->pois_parts = (int64_t)floor(o->particles / EV_POIS_PART);
    st->pois_part_exp = ev_exp(-EV_POIS_PART);
    st->pois_rest_exp = ev_exp(-(o->particles - (double)st->pois_parts * EV_POIS_PART));
    ev_windows(st);
}

static int64_t ev_pileup(const ev_setup *st, ev_rng *g)
{
    double y = st->lomax_scale * (ev_exp(-ev_log(ev_unit(g)) / st->o->pileup_tail) - 1.0);
    return y >= (double)(st->o->pileup_max - 1) ? st->o->pileup_max : 1 + (int64_t)floor(y);
}

static int64_t ev_poisson_part(double limit, ev_rng *g)
{
    int64_t k = 0;
    for (double p = ev_unit(g); p > limit; p *= ev_unit(g))
        k++;
    return k;
}

static int64_t ev_poisson(const ev_setup *st, ev_rng *g)
{
    int64_t k = ev_poisson_part(st->pois_rest_exp, g);
    for (int64_t i = 0; i < st->pois_parts; i++)
        k += ev_poisson_part(st->pois_part_exp, g);
    return k;
}

/* ---------------------------------------------------------------------------------------------
 * One event.
 * ------------------------------------------------------------------------------------------- */
typedef struct ev_hit {
    double phi, z, eta;
    int32_t layer;
    int32_t particle; /* -1: a noise hit */
    int32_t gen;      /* order made: the last key of the sort, so the order is total */
} ev_hit;

typedef struct ev_event {
    int64_t nodes, edges, cap_hits, cap_edges;
    ev_hit *hit;
    float *x, *attr, *y;
    int32_t *src, *dst;
    int64_t segments; /* pairs of one particle's hits on adjacent layers */
    int64_t kept;     /* of those, the ones among the edges */
} ev_event;

static void ev_event_free(ev_event *e)
{
    free(e->hit);
    free(e->x);
    free(e->attr);
    free(e->y);
    free(e->src);
    free(e->dst);
    *e = (ev_event){0};
}

/* Why an event failed: out of memory, or more hits than an i32 index numbers. */
typedef enum { EV_FAIL_NONE, EV_FAIL_NOMEM, EV_FAIL_HITS } ev_fail;

/* The capacity after cap that holds need (> cap) elements, doubling; 0 when that many elements of
 * elem bytes overflow a size_t. */
static int64_t ev_capacity(int64_t cap, int64_t need, size_t elem)
{
    int64_t n = cap ? cap : 256;
    while (n < need)
        n = n > INT64_MAX / 2 ? need : n * 2;
    return (uint64_t)n > SIZE_MAX / elem ? 0 : n;
}

/* Reallocates *p to n elements of elem bytes; 0 when it cannot (*p is kept). */
static int ev_realloc(void **p, int64_t n, size_t elem)
{
    void *q = realloc(*p, (size_t)n * elem);
    if (!q)
        return 0;
    *p = q;
    return 1;
}

static ev_fail ev_add_hit(ev_event *e, int32_t layer, double phi, double z, int32_t particle)
{
    if (e->nodes >= INT32_MAX)
        return EV_FAIL_HITS;
    if (e->nodes == e->cap_hits) {
        int64_t n = ev_capacity(e->cap_hits, e->nodes + 1, sizeof *e->hit);
        if (!n || !ev_realloc((void **)&e->hit, n, sizeof *e->hit))
            return EV_FAIL_NOMEM;
        e->cap_hits = n;
    }
    e->hit[e->nodes] = (ev_hit){.phi = phi, .z = z, .layer = layer, .particle = particle, .gen = (int32_t)e->nodes};
    e->nodes++;
    return EV_FAIL_NONE;
}

/* The hits of one particle from a vertex at z0; *pid is its number when it leaves a hit. */
static ev_fail ev_particle(const ev_setup *st, ev_rng *g, double z0, int32_t *pid, ev_event *e)
{
    double q = (ev_next(g) & 1) ? 1.0 : -1.0;
    double pt = st->o->pt_min / sqrt(ev_unit(g)); /* dN/dpt ~ pt^-3 above pt_min */
    double eta = EV_ETA_MAX * ev_sym(g), phi0 = EV_PI * ev_sym(g);
    double R = 1000.0 * pt / (0.3 * EV_FIELD), sh = ev_sinh(eta);
    unsigned layers = 0;
    for (int l = 0; l < EV_LAYERS; l++) {
        double r = ev_radius[l];
        if (r >= 2 * R)
            break; /* the helix turns back before this layer */
        double a = ev_asin(r / (2 * R)), z = z0 + 2 * R * a * sh;
        if (fabs(z) >= EV_HALF_Z)
            continue;
        if (ev_unit(g) > EV_EFFICIENCY)
            continue;
        double phi = ev_wrap(phi0 - q * a + EV_SIGMA_RPHI * ev_gauss(g) / r);
        ev_fail f = ev_add_hit(e, l, phi, z + EV_SIGMA_Z * ev_gauss(g), *pid);
        if (f)
            return f;
        layers |= 1u << l;
    }
    for (unsigned m = layers & (layers >> 1); m; m &= m - 1)
        e->segments++;
    if (layers)
        (*pid)++;
    return EV_FAIL_NONE;
}

static int ev_hit_cmp(const void *pa, const void *pb)
{
    const ev_hit *a = pa, *b = pb;
    if (a->layer != b->layer)
        return a->layer < b->layer ? -1 : 1;
    if (a->phi != b->phi)
        return a->phi < b->phi ? -1 : 1;
    return (a->gen > b->gen) - (a->gen < b->gen);
}

/* First of hits [lo, hi) (sorted by phi) whose phi is at least v. */
static int64_t ev_lower(const ev_hit *h, int64_t lo, int64_t hi, double v)
{
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (h[mid].phi < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Room for one more edge in each of the edge arrays (a capacity whose edge_attr fits a size_t). */
static ev_fail ev_edge_room(ev_event *e)
{
    if (e->edges < e->cap_edges)
        return EV_FAIL_NONE;
    int64_t n = ev_capacity(e->cap_edges, e->edges + 1, EV_EDGE_F * sizeof *e->attr);
    if (!n || !ev_realloc((void **)&e->src, n, sizeof *e->src) || !ev_realloc((void **)&e->dst, n, sizeof *e->dst) ||
        !ev_realloc((void **)&e->y, n, sizeof *e->y) || !ev_realloc((void **)&e->attr, n * EV_EDGE_F, sizeof *e->attr))
        return EV_FAIL_NOMEM;
    e->cap_edges = n;
    return EV_FAIL_NONE;
}

/* The edge from hit a (layer l) to hit b (layer l + 1) when the pair passes the windows. */
static ev_fail ev_edge(const ev_setup *st, ev_event *e, int64_t a, int64_t b)
{
    const ev_hit *ha = &e->hit[a], *hb = &e->hit[b];
    int l = ha->layer;
    double dphi = ev_wrap(hb->phi - ha->phi), dr = ev_radius[l + 1] - ev_radius[l], dz = hb->z - ha->z;
    double slope = dz / dr, z0 = ha->z - ev_radius[l] * slope;
    if (fabs(dphi) >= st->wphi || fabs(slope) >= st->wslope || fabs(z0) >= EV_Z0_WINDOW)
        return EV_FAIL_NONE;
    ev_fail f = ev_edge_room(e);
    if (f)
        return f;
    int64_t k = e->edges++;
    e->src[k] = (int32_t)a;
    e->dst[k] = (int32_t)b;
    double deta = hb->eta - ha->eta;
    float *v = e->attr + k * EV_EDGE_F;
    v[0] = (float)(dr / 1000.0);
    v[1] = (float)dphi;
    v[2] = (float)(dz / 1000.0);
    v[3] = (float)sqrt(deta * deta + dphi * dphi);
    int same = ha->particle >= 0 && ha->particle == hb->particle;
    e->y[k] = same ? 1.0f : 0.0f;
    e->kept += same;
    return EV_FAIL_NONE;
}

/* Edges from every hit of layer l to the hits of layer l + 1 inside the windows, by source then
 * target. Layer l + 1's hits [lo, hi) are sorted by phi: a source's candidates are the hits within
 * its dphi window, one range, or two where the window crosses phi = +-pi; the part past -pi wraps
 * to the top of the range and the part past +pi to its bottom, which keeps targets increasing. */
static ev_fail ev_layer_edges(const ev_setup *st, ev_event *e, int64_t a0, int64_t a1, int64_t lo, int64_t hi)
{
    double w = st->wphi;
    for (int64_t a = a0; a < a1; a++) {
        double phi = e->hit[a].phi;
        int64_t r[3][2] = {{lo, lo}, {lo, hi}, {hi, hi}}; /* wrapped bottom, main, wrapped top */
        if (w < EV_PI) { /* else the whole circle */
            r[1][0] = ev_lower(e->hit, lo, hi, phi - w);
            r[1][1] = ev_lower(e->hit, lo, hi, phi + w);
            if (phi + w >= EV_PI)
                r[0][1] = ev_lower(e->hit, lo, hi, phi + w - 2 * EV_PI);
            if (phi - w < -EV_PI)
                r[2][0] = ev_lower(e->hit, lo, hi, phi - w + 2 * EV_PI);
        }
        for (int k = 0; k < 3; k++)
            for (int64_t b = r[k][0]; b < r[k][1]; b++) {
                ev_fail f = ev_edge(st, e, a, b);
                if (f)
                    return f;
            }
    }
    return EV_FAIL_NONE;
}

/* Event `index`: hits of every collision's particles, noise hits, then the graph. */
static ev_fail ev_make(const ev_setup *st, int64_t index, ev_event *e)
{
    const loom_event_opts *o = st->o;
    ev_rng g = {.key = loom__data_rand64(o->seed, (uint64_t)index), .n = 0};
    int64_t collisions = ev_pileup(st, &g);
    int32_t pid = 0;
    for (int64_t c = 0; c < collisions; c++) {
        double z0 = EV_VERTEX_Z * ev_gauss(&g);
        int64_t n = ev_poisson(st, &g);
        for (int64_t p = 0; p < n; p++) {
            ev_fail f = ev_particle(st, &g, z0, &pid, e);
            if (f)
                return f;
        }
    }
    /* noise * hits on average: the fraction rounded up with the probability of its remainder */
    double want = o->noise * (double)e->nodes;
    double noise = floor(want + ev_unit(&g) - 0x1.0p-53);
    if (noise >= (double)(INT32_MAX - e->nodes))
        return EV_FAIL_HITS;
    for (int64_t k = 0, n = (int64_t)noise; k < n; k++) {
        int32_t layer = (int32_t)((ev_next(&g) >> 32) * EV_LAYERS >> 32);
        double phi = ev_wrap(EV_PI * ev_sym(&g)), z = EV_HALF_Z * ev_sym(&g);
        ev_fail f = ev_add_hit(e, layer, phi, z, -1);
        if (f)
            return f;
    }

    /* Nodes by layer, then phi: the order of a detector readout, which tells nothing of particles. */
    if (e->nodes)
        qsort(e->hit, (size_t)e->nodes, sizeof *e->hit, ev_hit_cmp);
    int64_t start[EV_LAYERS + 1] = {0};
    for (int64_t i = 0; i < e->nodes; i++)
        start[e->hit[i].layer + 1]++;
    for (int l = 0; l < EV_LAYERS; l++)
        start[l + 1] += start[l];
    if (!(e->x = malloc((size_t)(e->nodes ? e->nodes : 1) * EV_NODE_F * sizeof *e->x)))
        return EV_FAIL_NOMEM;
    for (int64_t i = 0; i < e->nodes; i++) {
        ev_hit *h = &e->hit[i];
        double r = ev_radius[h->layer];
        h->eta = ev_asinh(h->z / r);
        float *v = e->x + i * EV_NODE_F;
        v[0] = (float)(r / 1000.0);
        v[1] = (float)(h->phi / EV_PI);
        v[2] = (float)(h->z / 1000.0);
        v[3] = (float)h->eta;
        v[4] = (float)h->layer / EV_LAYERS;
    }
    for (int l = 0; l + 1 < EV_LAYERS; l++) {
        ev_fail f = ev_layer_edges(st, e, start[l], start[l + 1], start[l + 1], start[l + 2]);
        if (f)
            return f;
    }
    free(e->hit);
    e->hit = NULL;
    return EV_FAIL_NONE;
}

/* ---------------------------------------------------------------------------------------------
 * All events, on several threads: each takes the next event not yet made. Events are kept apart
 * until all are made, then copied in order, so threads change nothing of the result.
 * ------------------------------------------------------------------------------------------- */
typedef struct ev_work {
    const ev_setup *st;
    ev_event *ev;
    int64_t count;
    atomic_int_fast64_t next;
    /* the first failing event and why: events after it are skipped, events before it are all made,
     * so it is the same event whatever the threads did */
    atomic_int_fast64_t failed_at;
    pthread_mutex_t lock;
    ev_fail why;
} ev_work;

static void *ev_worker(void *arg)
{
    ev_work *w = arg;
    for (;;) {
        int64_t i = atomic_fetch_add(&w->next, 1);
        if (i >= w->count || i > atomic_load(&w->failed_at))
            return NULL;
        ev_fail f = ev_make(w->st, i, &w->ev[i]);
        if (f) {
            ev_event_free(&w->ev[i]);
            pthread_mutex_lock(&w->lock);
            if (i < atomic_load(&w->failed_at)) {
                atomic_store(&w->failed_at, i);
                w->why = f;
            }
            pthread_mutex_unlock(&w->lock);
        }
    }
}

/* Threads: the online CPUs, at most 16, and one per 64 events. */
static int ev_threads(int64_t events)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t t = cpus < 1 ? 1 : cpus > 16 ? 16 : cpus;
    if (t > events / 64)
        t = events / 64;
    return t < 1 ? 1 : (int)t;
}

static void ev_run(ev_work *w)
{
    pthread_t tid[16];
    int nt = ev_threads(w->count), started[16] = {0};
    for (int t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, ev_worker, w) == 0;
    ev_worker(w); /* a thread that did not start leaves its events to the others */
    for (int t = 1; t < nt; t++)
        if (started[t])
            pthread_join(tid[t], NULL);
}

#define EV_ERR(err, ...) loom_error_set(err, LOOM_ERR_INVALID, "loom_events_generate: " __VA_ARGS__)

static loom_status ev_check(const loom_event_opts *o, loom_error *err)
{
    if (o->events < 1 || o->events > INT64_MAX / 16)
        return EV_ERR(err, "events is %" PRId64 ": expected 1 to 2^59 - 1", o->events);
    if (!(o->pileup_mean >= 1.0 && o->pileup_mean <= 1e5))
        return EV_ERR(err, "pileup_mean is %g: expected 1 to 1e5 collisions per event", o->pileup_mean);
    if (!(o->pileup_tail > 1.0 && o->pileup_tail <= 100.0))
        return EV_ERR(err, "pileup_tail is %g: expected a Pareto shape above 1 (the mean is infinite at 1 and below) and "
                      "at most 100", o->pileup_tail);
    if (o->pileup_max < 1 || o->pileup_max > 100000)
        return EV_ERR(err, "pileup_max is %" PRId64 ": expected 1 to 100000 collisions", o->pileup_max);
    if (!(o->particles >= 0.0 && o->particles <= 1e5))
        return EV_ERR(err, "particles is %g: expected 0 to 1e5 per collision", o->particles);
    if (!(o->pt_min > 0.0 && o->pt_min <= 1e6))
        return EV_ERR(err, "pt_min is %g: expected above 0 and at most 1e6 GeV", o->pt_min);
    if (!(o->noise >= 0.0 && o->noise <= 100.0))
        return EV_ERR(err, "noise is %g: expected 0 to 100 (noise hits per particle hit)", o->noise);
    return LOOM_OK;
}

/* Counts every event's sizes into out's offsets; LOOM_ERR_NOMEM or INVALID when the totals do not
 * fit. */
static loom_status ev_offsets(const ev_work *w, loom_samples *out, loom_error *err)
{
    out->node_off[0] = out->edge_off[0] = 0;
    for (int64_t i = 0; i < w->count; i++) {
        /* bounds that keep the bytes of x and edge_attr within an int64 */
        if (w->ev[i].nodes > INT64_MAX / (EV_NODE_F * 4) - out->node_off[i] ||
            w->ev[i].edges > INT64_MAX / (EV_EDGE_F * 4) - out->edge_off[i])
            return EV_ERR(err, "events 0 to %" PRId64 " hold %" PRId64 " + %" PRId64 " hits and %" PRId64 " + %" PRId64
                          " edges, over what an int64 byte count of their features holds", i, out->node_off[i],
                          w->ev[i].nodes, out->edge_off[i], w->ev[i].edges);
        out->node_off[i + 1] = out->node_off[i] + w->ev[i].nodes;
        out->edge_off[i + 1] = out->edge_off[i] + w->ev[i].edges;
    }
    return LOOM_OK;
}

static void *ev_alloc(int64_t n, size_t elem)
{
    return (uint64_t)n > SIZE_MAX / elem - 1 ? NULL : malloc((size_t)(n ? n : 1) * elem);
}

/* Copies every event into out (offsets made) and frees it. */
static loom_status ev_gather(ev_work *w, loom_samples *out, loom_error *err)
{
    int64_t nodes = out->node_off[w->count], edges = out->edge_off[w->count];
    out->x = ev_alloc(nodes * EV_NODE_F, sizeof *out->x);
    out->edge_attr = ev_alloc(edges * EV_EDGE_F, sizeof *out->edge_attr);
    out->edge_y = ev_alloc(edges, sizeof *out->edge_y);
    out->src = ev_alloc(edges, sizeof *out->src);
    out->dst = ev_alloc(edges, sizeof *out->dst);
    if (!out->x || !out->edge_attr || !out->edge_y || !out->src || !out->dst)
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_events_generate: out of memory for %" PRId64 " hits and %" PRId64
                              " edges", nodes, edges);
    for (int64_t i = 0; i < w->count; i++) {
        ev_event *e = &w->ev[i];
        int64_t n0 = out->node_off[i], e0 = out->edge_off[i];
        if (e->nodes)
            memcpy(out->x + n0 * EV_NODE_F, e->x, (size_t)(e->nodes * EV_NODE_F) * sizeof *e->x);
        if (e->edges) {
            memcpy(out->edge_attr + e0 * EV_EDGE_F, e->attr, (size_t)(e->edges * EV_EDGE_F) * sizeof *e->attr);
            memcpy(out->edge_y + e0, e->y, (size_t)e->edges * sizeof *e->y);
            memcpy(out->src + e0, e->src, (size_t)e->edges * sizeof *e->src);
            memcpy(out->dst + e0, e->dst, (size_t)e->edges * sizeof *e->dst);
        }
        ev_event_free(e);
    }
    return LOOM_OK;
}

/* loom_events_generate, and the counts of true segments made and kept (docs/events.md). */
static loom_status ev_generate(const loom_event_opts *o, loom_samples *out, int64_t *segments, int64_t *kept,
                               loom_error *err)
{
    if (out)
        *out = LOOM_SAMPLES_INIT;
    if (!o || !out)
        return EV_ERR(err, "NULL %s", o ? "output" : "options");
    loom_status s = ev_check(o, err);
    if (s)
        return s;
    ev_setup st;
    ev_setup_init(&st, o);
    ev_work w = {.st = &st, .count = o->events, .why = EV_FAIL_NONE};
    atomic_init(&w.next, 0);
    atomic_init(&w.failed_at, INT64_MAX);
    w.ev = calloc((size_t)o->events, sizeof *w.ev);
    out->node_off = ev_alloc(o->events + 1, sizeof *out->node_off);
    out->edge_off = ev_alloc(o->events + 1, sizeof *out->edge_off);
    if (!w.ev || !out->node_off || !out->edge_off || pthread_mutex_init(&w.lock, NULL) != 0) {
        free(w.ev);
        loom_samples_free(out);
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_events_generate: out of memory for %" PRId64 " events", o->events);
    }
    ev_run(&w);
    pthread_mutex_destroy(&w.lock);
    int64_t bad = atomic_load(&w.failed_at);
    if (bad != INT64_MAX)
        s = w.why == EV_FAIL_NOMEM
                ? loom_error_set(err, LOOM_ERR_NOMEM, "loom_events_generate: out of memory making event %" PRId64, bad)
                : EV_ERR(err, "event %" PRId64 " has over 2^31 - 1 hits: lower pileup_max (%" PRId64 "), particles (%g) or "
                         "noise (%g)", bad, o->pileup_max, o->particles, o->noise);
    if (!s)
        s = ev_offsets(&w, out, err);
    for (int64_t i = 0; i < o->events && (segments || kept); i++) {
        if (segments)
            *segments += w.ev[i].segments;
        if (kept)
            *kept += w.ev[i].kept;
    }
    if (!s)
        s = ev_gather(&w, out, err);
    for (int64_t i = 0; i < o->events; i++)
        ev_event_free(&w.ev[i]);
    free(w.ev);
    if (!s) {
        out->count = o->events;
        out->node_features = EV_NODE_F;
        out->edge_features = EV_EDGE_F;
        out->num_classes = 0;
        s = loom_samples_validate(out, err);
    }
    if (s)
        loom_samples_free(out);
    return s;
}

loom_status loom_events_generate(const loom_event_opts *o, loom_samples *out, loom_error *err)
{
    return ev_generate(o, out, NULL, NULL, err);
}

/* Not in the public headers: loom_events_generate that also adds to *segments the pairs of one
 * particle's hits on adjacent layers (the true segments) and to *kept those among the edges, so
 * that tests/test_events.c checks the windows keep almost all of them. */
loom_status loom__events_segments(const loom_event_opts *o, loom_samples *out, int64_t *segments, int64_t *kept,
                                  loom_error *err);
loom_status loom__events_segments(const loom_event_opts *o, loom_samples *out, int64_t *segments, int64_t *kept,
                                  loom_error *err)
{
    return ev_generate(o, out, segments, kept, err);
}
