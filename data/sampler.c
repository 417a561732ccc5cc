/* Samplers (include/loom/batch.h): a list of graph samples dealt into steps, one share per device.
 *
 * An epoch is made in two passes. The first puts the list's positions in step order (stage), with
 * each position's device (dev) and the steps' bounds in stage (bounds); the second lays the steps
 * out, in the step order the kind asks for, as one array of ids grouped by step and then by device,
 * which is what loom_sampler_share returns. Every array is sized by n at loom_sampler_new, so an
 * epoch allocates nothing; the per-device arrays are sized by devices (at most 1024).
 *
 * The nonempty shares of a step are always devices 0 .. m-1: dealing in order fills devices from
 * 0, and the least-loaded choice takes the lowest empty device before any higher one (an empty
 * share has load 0, the least there is, and always fits: a sample larger than the whole budget is
 * refused at loom_sampler_new). A step stores only its m shares, so an epoch holds at most n
 * shares however many devices there are.
 *
 * Every draw is value i of a stream, loom__data_rand64(key of the stream, i) (data/rand.h), keyed by
 * (seed, epoch, stream): an epoch depends on nothing else. */
#include <loom/batch.h>

#include "data/rand.h"
#include "data/sampler_internal.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 1024

struct loom_sampler {
    const loom_samples *s;
    loom_sampler_opts o;
    int64_t n;
    int64_t *block;   /* every int64 array below */
    int32_t *block32; /* dev, heap and aside */
    int64_t *ids;     /* [n] the list */
    int64_t *size;    /* [n] the size of ids[p] by o.size */
    int64_t *by_rank; /* [n] positions, largest first, ties by id */

    /* the epoch being dealt */
    int64_t *stage;  /* [n] positions in step order */
    int32_t *dev;    /* [n] the device of stage[i] */
    int64_t *bounds; /* [n + 1] step k of stage is bounds[k] .. bounds[k+1]-1 */
    int64_t *cyc;    /* [n] an order of steps */

    /* the share being packed, per device: its load (by o.size), nodes and edges; a heap of the
     * step's shares by (load, device) holds the nonempty ones and the lowest empty one */
    int64_t *load, *dnodes, *dedges;
    int32_t *heap, *aside;
    int hn, m, bounded;
    int64_t *count; /* [devices + 1] a step's samples per device, then where each device's go */

    /* the epoch dealt */
    int64_t steps, shares, laid;
    int64_t *order;  /* [n] ids by step, then by device; scratch while dealing, laid over after */
    int64_t *first;  /* [n + 1] step k's shares are first[k] .. first[k+1]-1 */
    int64_t *sh_off; /* [n + 1] share j is order[sh_off[j] .. sh_off[j+1]-1] */
    int64_t top_nodes, top_edges, top_bytes, top_step;
    int top_device;
};

static const char *const kind_names[LOOM_SAMPLER_KIND_COUNT] = {
    [LOOM_SAMPLER_RANDOM] = "random", [LOOM_SAMPLER_BALANCE] = "balance", [LOOM_SAMPLER_OUTLIER] = "outlier",
    [LOOM_SAMPLER_SKEW] = "skew",     [LOOM_SAMPLER_BUDGET] = "budget",   [LOOM_SAMPLER_DEVICES] = "devices",
    [LOOM_SAMPLER_PLAN] = "plan",
};

const char *loom_sampler_kind_name(loom_sampler_kind k)
{
    return (int)k >= 0 && k < LOOM_SAMPLER_KIND_COUNT ? kind_names[k] : NULL;
}

loom_status loom_sampler_kind_parse(const char *name, loom_sampler_kind *out, loom_error *err)
{
    for (int k = 0; name && k < LOOM_SAMPLER_KIND_COUNT; k++)
        if (!strcmp(name, kind_names[k])) {
            if (out)
                *out = (loom_sampler_kind)k;
            return LOOM_OK;
        }
    char list[128];
    size_t len = 0;
    for (int k = 0; k < LOOM_SAMPLER_KIND_COUNT; k++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", k ? ", " : "", kind_names[k]);
    return loom_error_set(err, LOOM_ERR_INVALID, "unknown sampler '%s': expected one of %s", name ? name : "(null)",
                          list);
}

/* ---- the generator (data/rand.h) ------------------------------------------------------------- */

enum { STREAM_SAMPLES = 1, STREAM_STEPS = 2 };

static uint64_t stream_key(const loom_sampler *p, int64_t epoch, uint64_t stream)
{
    return loom__data_rand64(loom__data_rand64(p->o.seed, (uint64_t)epoch), stream);
}

static void iota(int64_t *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        v[i] = i;
}

/* ---- loom_sampler_new ------------------------------------------------------------------------- */

/* A refusal of loom_sampler_new, into the caller's err. */
#define REFUSE(...) loom_error_set(err, LOOM_ERR_INVALID, "loom_sampler_new: " __VA_ARGS__)

static int uses_batch(loom_sampler_kind k) { return k != LOOM_SAMPLER_BUDGET && k != LOOM_SAMPLER_PLAN; }

static loom_status check_opts(const loom_sampler_opts *o, loom_error *err)
{
    if ((int)o->kind < 0 || o->kind >= LOOM_SAMPLER_KIND_COUNT)
        return REFUSE("kind is %d: expected 0 to %d (random, balance, outlier, skew, budget, devices, plan)",
                      (int)o->kind, LOOM_SAMPLER_KIND_COUNT - 1);
    const char *name = kind_names[o->kind];
    if (o->devices < 1 || o->devices > MAX_DEVICES)
        return REFUSE("devices is %d: expected 1 to %d", o->devices, MAX_DEVICES);
    if ((int)o->size < 0 || o->size >= LOOM_SIZE_KIND_COUNT)
        return REFUSE("size is %d: expected 0 to %d (bytes, nodes, edges)", (int)o->size, LOOM_SIZE_KIND_COUNT - 1);
    if (uses_batch(o->kind) && o->batch < 1)
        return REFUSE("batch is %" PRId64 ": expected >= 1 for the %s sampler", o->batch, name);
    if (o->kind == LOOM_SAMPLER_BALANCE && !(o->fraction > 0.0 && o->fraction <= 1.0))
        return REFUSE("fraction is %g: expected a value in (0, 1] for the balance sampler", o->fraction);
    if (!uses_batch(o->kind)) {
        if (o->max_nodes < 0)
            return REFUSE("max_nodes is %" PRId64 ": expected >= 0 (0: no bound)", o->max_nodes);
        if (o->max_edges < 0)
            return REFUSE("max_edges is %" PRId64 ": expected >= 0 (0: no bound)", o->max_edges);
        if (o->kind == LOOM_SAMPLER_PLAN && !o->max_nodes && !o->max_edges)
            return REFUSE("max_nodes and max_edges are both 0: the plan sampler's budget comes from "
                          "loom_batch_fit_plan");
    }
    return LOOM_OK;
}

/* Reads sample id's sizes into p (position i), and adds them to the list's totals, refusing sizes
 * that are negative, that loom_samples_bytes could not compute in an int64, or whose sums over
 * the list would overflow: every load and share sum below is at most a total, so none overflows. */
static loom_status read_sizes(loom_sampler *p, int64_t i, int64_t id, int64_t tot[3], loom_error *err)
{
    const loom_samples *s = p->s;
    int64_t nodes = loom_samples_nodes(s, id), edges = loom_samples_edges(s, id);
    if (nodes < 0 || edges < 0)
        return REFUSE("sample %" PRId64 " has %" PRId64 " nodes and %" PRId64 " edges: offsets decrease", id, nodes,
                      edges);
    /* loom_samples_bytes: node_features * 4 + 4 a node, edge_features * 4 + 16 at most an edge */
    int64_t per_node = s->node_features * 4 + 4, per_edge = s->edge_features * 4 + 16;
    if (nodes > INT64_MAX / 4 / per_node || edges > INT64_MAX / 4 / per_edge)
        return REFUSE("sample %" PRId64 ": %" PRId64 " nodes and %" PRId64 " edges overflow its size in bytes", id,
                      nodes, edges);
    int64_t bytes = loom_samples_bytes(s, id), v[3] = {nodes, edges, bytes};
    for (int k = 0; k < 3; k++) {
        if (tot[k] > INT64_MAX - v[k])
            return REFUSE("the samples' sizes add up past 2^63 (at sample %" PRId64 ")", id);
        tot[k] += v[k];
    }
    p->size[i] = p->o.size == LOOM_SIZE_NODES ? nodes : p->o.size == LOOM_SIZE_EDGES ? edges : bytes;
    int64_t bn = p->o.max_nodes, be = p->o.max_edges;
    if (!uses_batch(p->o.kind) && ((bn && nodes > bn) || (be && edges > be)))
        return REFUSE("sample %" PRId64 " (%" PRId64 " nodes, %" PRId64 " edges) is larger than the whole budget of a "
                      "share (max_nodes %" PRId64 ", max_edges %" PRId64 "; 0 is no bound)",
                      id, nodes, edges, bn, be);
    return LOOM_OK;
}

typedef struct ranked {
    int64_t size, id, pos;
} ranked;

/* largest first, ties by id; a repeated id compares equal to itself, so its copies end adjacent */
static int by_size(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* by_rank, refusing a repeated id. */
static loom_status rank_samples(loom_sampler *p, loom_error *err)
{
    ranked *r = malloc((size_t)p->n * sizeof *r);
    if (!r)
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_sampler_new: out of memory for %" PRId64 " samples", p->n);
    for (int64_t i = 0; i < p->n; i++)
        r[i] = (ranked){p->size[i], p->ids[i], i};
    qsort(r, (size_t)p->n, sizeof *r, by_size);
    loom_status st = LOOM_OK;
    for (int64_t i = 0; i < p->n; i++) {
        if (i && r[i].id == r[i - 1].id) {
            int64_t a = r[i - 1].pos < r[i].pos ? r[i - 1].pos : r[i].pos, b = r[i - 1].pos ^ r[i].pos ^ a;
            st = REFUSE("ids[%" PRId64 "] and ids[%" PRId64 "] are both sample %" PRId64 ": it would be dealt twice", a,
                        b, r[i].id);
            break;
        }
        p->by_rank[i] = r[i].pos;
    }
    free(r);
    return st;
}

static loom_status check_list(const loom_samples *s, const int64_t *ids, int64_t n, loom_error *err)
{
    if (s->count < 0 || (s->count && (!s->node_off || !s->edge_off)) || s->node_features < 0 ||
        s->node_features > (INT64_C(1) << 40) || s->edge_features < 0 || s->edge_features > (INT64_C(1) << 40))
        return REFUSE("bad dataset: %" PRId64 " samples, %" PRId64 " node features, %" PRId64 " edge features%s",
                      s->count, s->node_features, s->edge_features, s->node_off && s->edge_off ? "" : ", no offsets");
    if (!ids && n != s->count)
        return REFUSE("ids is NULL but n is %" PRId64 ": expected the dataset's %" PRId64 " samples", n, s->count);
    if (n == 0)
        return REFUSE("empty dataset: no samples to deal");
    if (n < 0)
        return REFUSE("n is %" PRId64 ": expected >= 1", n);
    /* the arrays: 9 int64 and an int32 a sample, and 24 bytes a sample while ranking */
    if (n > INT64_MAX / 128 || (uint64_t)n > SIZE_MAX / 128)
        return REFUSE("n is %" PRId64 ": too many samples to hold", n);
    for (int64_t i = 0; ids && i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->count)
            return REFUSE("ids[%" PRId64 "] is %" PRId64 ": outside the dataset's %" PRId64 " samples", i, ids[i],
                          s->count);
    return LOOM_OK;
}

loom_status loom_sampler_new(const loom_samples *s, const int64_t *ids, int64_t n, const loom_sampler_opts *o,
                             loom_sampler **out, loom_error *err)
{
    if (out)
        *out = NULL;
    if (!s || !o || !out)
        return REFUSE("NULL %s", !s ? "samples" : !o ? "options" : "output");
    loom_status st = check_opts(o, err);
    if (st == LOOM_OK)
        st = check_list(s, ids, n, err);
    if (st != LOOM_OK)
        return st;

    loom_sampler *p = calloc(1, sizeof *p);
    if (!p)
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_sampler_new: out of memory");
    *p = (loom_sampler){.s = s, .o = *o, .n = n, .top_step = -1, .top_device = -1};
    size_t n0 = (size_t)n, n1 = n0 + 1, d = (size_t)o->devices;
    int64_t *w = p->block = malloc((6 * n0 + 3 * n1 + 4 * d + 1) * sizeof *w);
    int32_t *v = p->block32 = malloc((n0 + 2 * d) * sizeof *v);
    if (!w || !v) {
        loom_sampler_free(p);
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_sampler_new: out of memory for %" PRId64 " samples", n);
    }
    int64_t **parts[] = {&p->ids,    &p->size,   &p->by_rank, &p->stage, &p->cyc,    &p->order,  &p->bounds,
                         &p->first,  &p->sh_off, &p->load,    &p->dnodes, &p->dedges, &p->count};
    size_t lens[] = {n0, n0, n0, n0, n0, n0, n1, n1, n1, d, d, d, d + 1};
    for (size_t k = 0; k < sizeof lens / sizeof *lens; k++)
        *parts[k] = w, w += lens[k];
    p->dev = v, p->heap = v + n0, p->aside = v + n0 + d;
    int64_t tot[3] = {0, 0, 0};
    for (int64_t i = 0; i < n && st == LOOM_OK; i++) {
        p->ids[i] = ids ? ids[i] : i;
        st = read_sizes(p, i, p->ids[i], tot, err);
    }
    if (st == LOOM_OK)
        st = rank_samples(p, err);
    if (st != LOOM_OK) {
        loom_sampler_free(p);
        return st;
    }
    p->first[0] = p->sh_off[0] = 0;
    *out = p;
    return LOOM_OK;
}

void loom_sampler_free(loom_sampler *p)
{
    if (!p)
        return;
    free(p->block);
    free(p->block32);
    free(p);
}

/* ---- dealing ------------------------------------------------------------------------------------ */

/* Steps of `batch` positions of stage (the last smaller), each dealt in order: its j-th sample to
 * device j % devices, so the first (count % devices) shares hold one more. Returns the steps. */
static int64_t in_batches(loom_sampler *p)
{
    int64_t b = p->o.batch, steps = (p->n - 1) / b + 1;
    for (int64_t k = 0; k <= steps; k++)
        p->bounds[k] = k < steps ? k * b : p->n;
    for (int64_t k = 0; k < steps; k++)
        for (int64_t i = p->bounds[k]; i < p->bounds[k + 1]; i++)
            p->dev[i] = (int32_t)((i - p->bounds[k]) % p->o.devices);
    return steps;
}

/* The order of the heap: by load, ties to the lower device. */
static int lighter(const loom_sampler *p, int32_t a, int32_t b)
{
    return p->load[a] < p->load[b] || (p->load[a] == p->load[b] && a < b);
}

static void heap_push(loom_sampler *p, int32_t d)
{
    int i = p->hn++;
    while (i > 0 && lighter(p, d, p->heap[(i - 1) / 2])) {
        p->heap[i] = p->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    p->heap[i] = d;
}

/* Puts d at the root and moves it down to its place. */
static void sift_down(loom_sampler *p, int32_t d)
{
    int i = 0;
    for (int c; (c = 2 * i + 1) < p->hn; i = c) {
        if (c + 1 < p->hn && lighter(p, p->heap[c + 1], p->heap[c]))
            c++;
        if (!lighter(p, p->heap[c], d))
            break;
        p->heap[i] = p->heap[c];
    }
    p->heap[i] = d;
}

static int32_t heap_pop(loom_sampler *p)
{
    int32_t top = p->heap[0];
    if (--p->hn)
        sift_down(p, p->heap[p->hn]);
    return top;
}

/* A step with every share empty: device 0 is the lowest empty one. */
static void step_open(loom_sampler *p)
{
    p->hn = 0;
    p->m = 0;
    p->load[0] = p->dnodes[0] = p->dedges[0] = 0;
    heap_push(p, 0);
}

/* Puts position pos into the least loaded share of the open step that fits it (ties to the lower
 * device) and returns that device; -1 when none fits. Shares that do not fit are popped in (load,
 * device) order until the root fits, and go back after it has taken the sample. */
static int32_t place(loom_sampler *p, int64_t pos)
{
    int64_t id = p->ids[pos], a = loom_samples_nodes(p->s, id), b = loom_samples_edges(p->s, id);
    int64_t bn = p->bounded ? p->o.max_nodes : 0, be = p->bounded ? p->o.max_edges : 0;
    int32_t got = -1;
    int na = 0;
    while (p->hn && got < 0) {
        int32_t d = p->heap[0];
        if ((!bn || p->dnodes[d] + a <= bn) && (!be || p->dedges[d] + b <= be))
            got = d;
        else
            p->aside[na++] = heap_pop(p);
    }
    if (got >= 0) {
        p->load[got] += p->size[pos];
        p->dnodes[got] += a;
        p->dedges[got] += b;
        sift_down(p, got);
    }
    for (int k = 0; k < na; k++)
        heap_push(p, p->aside[k]);
    if (got >= 0 && got == p->m && ++p->m < p->o.devices) {
        p->load[p->m] = p->dnodes[p->m] = p->dedges[p->m] = 0;
        heap_push(p, (int32_t)p->m);
    }
    return got;
}

static int64_t deal_random(loom_sampler *p, uint64_t ks)
{
    iota(p->stage, p->n);
    loom__data_shuffle(p->stage, p->n, ks);
    return in_batches(p);
}

/* balance and outlier: the `large` largest samples dealt round-robin over the steps, the sample of
 * rank r to the (r % steps)-th step of a shuffled order of steps, skipping the last (short) step
 * once it is full; then the rest, shuffled, fill each step up to its size. A step lists its large
 * samples first, so dealing in order gives them to different devices. Until in_batches writes the
 * bounds, bounds holds each step's count so far (fill), and order the shuffled rest (perm). */
static int64_t deal_spread(loom_sampler *p, int64_t large, uint64_t ks, uint64_t kt)
{
    int64_t n = p->n, b = p->o.batch, steps = (n - 1) / b + 1, last = n - (steps - 1) * b;
    int64_t *fill = p->bounds, *perm = p->order;
    iota(p->cyc, steps);
    loom__data_shuffle(p->cyc, steps, kt);
    memset(fill, 0, (size_t)steps * sizeof *fill);
    /* large <= n, the steps' room, so the skipping ends */
    for (int64_t r = 0, q = 0; r < large; r++, q = q + 1 == steps ? 0 : q + 1) {
        while (fill[p->cyc[q]] == (p->cyc[q] == steps - 1 ? last : b))
            q = q + 1 == steps ? 0 : q + 1;
        int64_t k = p->cyc[q];
        p->stage[k * b + fill[k]++] = p->by_rank[r];
    }
    memcpy(perm, p->by_rank + large, (size_t)(n - large) * sizeof *perm);
    loom__data_shuffle(perm, n - large, ks);
    for (int64_t k = 0, q = 0; k < steps; k++)
        while (fill[k] < (k == steps - 1 ? last : b))
            p->stage[k * b + fill[k]++] = perm[q++];
    return in_batches(p);
}

/* Largest first, cut into steps of `batch`; the full steps in a shuffled order, the short one last. */
static int64_t deal_skew(loom_sampler *p, uint64_t kt)
{
    memcpy(p->stage, p->by_rank, (size_t)p->n * sizeof *p->stage);
    int64_t steps = in_batches(p), full = p->n / p->o.batch;
    iota(p->cyc, steps);
    loom__data_shuffle(p->cyc, full, kt);
    return steps;
}

/* Shuffled steps of `batch`, each dealt largest first into the least loaded share. The steps are
 * put in size order by one pass over all samples largest first, each to the next place of its step
 * (a counting sort by step, with order holding each position's step and cyc each step's next
 * place): O(n), however large the steps. */
static int64_t deal_devices(loom_sampler *p, uint64_t ks)
{
    int64_t steps = deal_random(p, ks), *step_of = p->order, *next = p->cyc;
    for (int64_t i = 0; i < p->n; i++)
        step_of[p->stage[i]] = i / p->o.batch;
    memcpy(next, p->bounds, (size_t)steps * sizeof *next);
    for (int64_t r = 0; r < p->n; r++)
        p->stage[next[step_of[p->by_rank[r]]]++] = p->by_rank[r];
    p->bounded = 0;
    for (int64_t k = 0; k < steps; k++) {
        step_open(p);
        for (int64_t i = p->bounds[k]; i < p->bounds[k + 1]; i++)
            p->dev[i] = place(p, p->stage[i]); /* without a budget every share fits */
    }
    return steps;
}

/* budget and plan: shuffled (or largest first) samples packed into the least loaded share that
 * fits; a sample that fits none closes the step. With `sort` the steps go in a shuffled order. */
static int64_t deal_budget(loom_sampler *p, uint64_t ks, uint64_t kt)
{
    if (p->o.sort)
        memcpy(p->stage, p->by_rank, (size_t)p->n * sizeof *p->stage);
    else {
        iota(p->stage, p->n);
        loom__data_shuffle(p->stage, p->n, ks);
    }
    p->bounded = 1;
    int64_t steps = 0;
    p->bounds[0] = 0;
    step_open(p);
    for (int64_t i = 0; i < p->n; i++) {
        int32_t d = place(p, p->stage[i]);
        if (d < 0) {
            p->bounds[++steps] = i;
            step_open(p);
            d = place(p, p->stage[i]); /* fits the empty device 0: no sample exceeds the budget */
        }
        p->dev[i] = d;
    }
    p->bounds[++steps] = p->n;
    iota(p->cyc, steps);
    if (p->o.sort)
        loom__data_shuffle(p->cyc, steps, kt);
    return steps;
}

/* Lays out step src of stage as the next step of the epoch: its ids grouped by device (each
 * device's in stage order), its shares' offsets, and the largest shares so far. */
static void lay_step(loom_sampler *p, int64_t src)
{
    int64_t b0 = p->bounds[src], b1 = p->bounds[src + 1], *c = p->count;
    int m = 0;
    for (int64_t i = b0; i < b1; i++)
        if (p->dev[i] >= m)
            m = p->dev[i] + 1;
    memset(c, 0, ((size_t)m + 1) * sizeof *c);
    for (int64_t i = b0; i < b1; i++)
        c[p->dev[i] + 1]++;
    c[0] = p->laid;
    for (int d = 0; d < m; d++)
        c[d + 1] += c[d];
    int64_t j0 = p->shares;
    for (int d = 0; d < m; d++)
        p->sh_off[j0 + d] = c[d];
    for (int64_t i = b0; i < b1; i++)
        p->order[c[p->dev[i]]++] = p->ids[p->stage[i]];
    p->laid += b1 - b0;
    p->shares += m;
    p->sh_off[p->shares] = p->laid;
    p->first[++p->steps] = p->shares;
    for (int d = 0; d < m; d++) {
        int64_t nodes, edges, bytes = 0;
        loom_sampler_share_size(p, p->steps - 1, d, &nodes, &edges);
        for (int64_t i = p->sh_off[j0 + d]; i < p->sh_off[j0 + d + 1]; i++)
            bytes += loom_samples_bytes(p->s, p->order[i]);
        if (nodes > p->top_nodes)
            p->top_nodes = nodes;
        if (edges > p->top_edges)
            p->top_edges = edges;
        if (p->top_step < 0 || bytes > p->top_bytes) {
            p->top_bytes = bytes;
            p->top_step = p->steps - 1;
            p->top_device = d;
        }
    }
}

loom_status loom_sampler_epoch(loom_sampler *p, int64_t epoch, loom_error *err)
{
    if (!p)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_sampler_epoch: NULL sampler");
    if (epoch < 0)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_sampler_epoch: epoch is %" PRId64 ": expected >= 0", epoch);
    uint64_t ks = stream_key(p, epoch, STREAM_SAMPLES), kt = stream_key(p, epoch, STREAM_STEPS);
    int64_t steps = 0, n = p->n;
    const int64_t *step_order = NULL; /* NULL: as dealt */
    switch (p->o.kind) {
    case LOOM_SAMPLER_RANDOM:
        steps = deal_random(p, ks);
        break;
    case LOOM_SAMPLER_BALANCE: {
        /* ceil(fraction * n), kept in [1, n] against rounding */
        double want = p->o.fraction * (double)n;
        int64_t large = want >= (double)n ? n : (int64_t)want;
        if ((double)large < want)
            large++;
        steps = deal_spread(p, large < 1 ? 1 : large > n ? n : large, ks, kt);
        break;
    }
    case LOOM_SAMPLER_OUTLIER:
        steps = deal_spread(p, (n - 1) / p->o.batch + 1, ks, kt);
        break;
    case LOOM_SAMPLER_SKEW:
        steps = deal_skew(p, kt);
        step_order = p->cyc;
        break;
    case LOOM_SAMPLER_DEVICES:
        steps = deal_devices(p, ks);
        break;
    case LOOM_SAMPLER_BUDGET:
    case LOOM_SAMPLER_PLAN:
        steps = deal_budget(p, ks, kt);
        step_order = p->cyc;
        break;
    case LOOM_SAMPLER_KIND_COUNT:
        break; /* refused at loom_sampler_new */
    }
    p->steps = p->shares = p->laid = 0;
    p->top_nodes = p->top_edges = p->top_bytes = 0;
    p->top_step = -1;
    p->top_device = -1;
    for (int64_t k = 0; k < steps; k++)
        lay_step(p, step_order ? step_order[k] : k);
    return LOOM_OK;
}

/* ---- queries ------------------------------------------------------------------------------------ */

int64_t loom_sampler_steps(const loom_sampler *p) { return p ? p->steps : 0; }

const int64_t *loom_sampler_share(const loom_sampler *p, int64_t k, int d, int64_t *n)
{
    int64_t j = p && k >= 0 && k < p->steps && d >= 0 ? p->first[k] + d : -1;
    if (j < 0 || j >= p->first[k + 1]) {
        if (n)
            *n = 0;
        return NULL;
    }
    if (n)
        *n = p->sh_off[j + 1] - p->sh_off[j];
    return p->order + p->sh_off[j];
}

void loom_sampler_share_size(const loom_sampler *p, int64_t k, int d, int64_t *nodes, int64_t *edges)
{
    int64_t len, sn = 0, se = 0;
    const int64_t *ids = loom_sampler_share(p, k, d, &len);
    for (int64_t i = 0; i < len; i++) {
        sn += loom_samples_nodes(p->s, ids[i]);
        se += loom_samples_edges(p->s, ids[i]);
    }
    if (nodes)
        *nodes = sn;
    if (edges)
        *edges = se;
}

void loom_sampler_largest(const loom_sampler *p, int64_t *nodes, int64_t *edges, int64_t *step, int *device)
{
    if (nodes)
        *nodes = p ? p->top_nodes : 0;
    if (edges)
        *edges = p ? p->top_edges : 0;
    if (step)
        *step = p ? p->top_step : -1;
    if (device)
        *device = p ? p->top_device : -1;
}

const loom_sampler_opts *loom_sampler_options(const loom_sampler *p) { return p ? &p->o : NULL; }

void loom_sampler_mean_budget(const loom_samples *s, loom_sampler_opts *o)
{
    if (!s || !o || s->count < 1)
        return;
    const int devices = o->devices > 0 ? o->devices : 1;
    int64_t most_n = 0, most_e = 0;
    for (int64_t i = 0; i < s->count; i++) {
        most_n = loom_samples_nodes(s, i) > most_n ? loom_samples_nodes(s, i) : most_n;
        most_e = loom_samples_edges(s, i) > most_e ? loom_samples_edges(s, i) : most_e;
    }
    /* the mean of batch samples: totals are within an int64 (loom_samples_validate), batch is a caller's count */
    const double per = (double)(o->batch > 0 ? o->batch : 1) / (double)s->count / devices;
    const int64_t n = (int64_t)(per * (double)s->node_off[s->count]), e = (int64_t)(per * (double)s->edge_off[s->count]);
    o->max_nodes = n > most_n ? n : most_n;
    o->max_edges = e > most_e ? e : most_e;
}

const loom_samples *loom__sampler_samples(const loom_sampler *smp) { return smp ? smp->s : NULL; }
