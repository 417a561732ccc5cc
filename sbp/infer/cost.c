/* The cost model (see cost.h): the boxing planner's collectives, their bytes and seconds, and the
 * seconds of an op on a device. */
#include "sbp/infer/cost.h"

#include "graphs/builder/graph.h"

void loom__cost_default(loom__cost_model *cm)
{
    *cm = (loom__cost_model){.source = "built-in"};
    /* a machine of a few cores: ~100 GFLOP/s in f32 GEMMs, ~10 GB/s of streaming, ~10 us an act
     * through the runtime and a few more a BLAS call; boxing a pass over the parts in shared memory
     * once the devices meet */
    cm->dev[LOOM_DEVICE_CPU] = (loom__cost_dev){.flops = 100e9, .mem_bw = 10e9, .op_latency = 10e-6, .lib_latency = 3e-6,
                                                .box_latency = 20e-6, .box_bw = 10e9, .step_latency = 50e-6, .shared = 1};
    /* an H100/H200: ~50 TFLOP/s f32, ~3 TB/s, a few microseconds a kernel (in a captured graph),
     * a cuBLAS or cuDNN call a few more (its heuristics, a split-K reduction's second kernel);
     * NCCL rings over NVLink */
    cm->dev[LOOM_DEVICE_CUDA] = (loom__cost_dev){.flops = 50e12, .mem_bw = 3e12, .op_latency = 4e-6, .lib_latency = 4e-6,
                                                 .box_latency = 10e-6, .box_bw = 150e9, .step_latency = 30e-6, .shared = 0};
    /* nodes of either kind on 8 x 400 Gb/s of network, a ring step between them 10 us; a kernel's
     * threads on idle cores */
    for (int k = 0; k < LOOM_DEVICE_KIND_COUNT; k++)
        cm->dev[k].net_bw = 400e9, cm->dev[k].net_latency = 10e-6, cm->dev[k].thread_gain = 1, cm->dev[k].core_share = 1;
}

void loom__cost_unit(const loom__cost_dev *d, double unit[LOOM__COST_TERMS])
{
    unit[LOOM__TERM_OPS] = d->op_latency;
    unit[LOOM__TERM_LIBS] = d->lib_latency;
    unit[LOOM__TERM_FLOPS] = 1 / d->flops;
    unit[LOOM__TERM_BYTES] = 1 / d->mem_bw;
    unit[LOOM__TERM_BOXES] = d->box_latency;
    unit[LOOM__TERM_BOX_BYTES] = 1 / d->box_bw;
    unit[LOOM__TERM_STEPS] = d->step_latency;
    unit[LOOM__TERM_NET_BOXES] = d->net_latency;
    unit[LOOM__TERM_NET_BYTES] = 1 / d->net_bw;
}

double loom__terms_seconds(const double *terms, const loom__cost_dev *d)
{
    double unit[LOOM__COST_TERMS], s = 0;
    loom__cost_unit(d, unit);
    for (int i = 0; i < LOOM__COST_TERMS; i++)
        s += terms[i] ? terms[i] * unit[i] : 0; /* a figure a device never uses may be left 0 */
    return s;
}

loom__box_kind loom__boxing(loom_sbp from, loom_sbp to)
{
    if (loom_sbp_equal(from, to))
        return LOOM__BOX_NONE;
    switch (from.kind) {
    case LOOM_SBP_SPLIT:
        return to.kind == LOOM_SBP_BROADCAST ? LOOM__BOX_ALL_GATHER
               : to.kind == LOOM_SBP_SPLIT  ? LOOM__BOX_ALL_TO_ALL
                                            : LOOM__BOX_GATHER_ZERO;
    case LOOM_SBP_PARTIAL_SUM:
        return to.kind == LOOM_SBP_BROADCAST ? LOOM__BOX_ALL_REDUCE : LOOM__BOX_REDUCE_SCATTER;
    case LOOM_SBP_BROADCAST:
        return to.kind == LOOM_SBP_SPLIT ? LOOM__BOX_SLICE : LOOM__BOX_LOCAL_ZERO;
    default:
        return LOOM__BOX_NONE;
    }
}

const char *loom__box_name(loom__box_kind k)
{
    static const char *const names[LOOM__BOX_KIND_COUNT] = {
        [LOOM__BOX_NONE] = "none",
        [LOOM__BOX_ALL_GATHER] = "all-gather",
        [LOOM__BOX_ALL_REDUCE] = "all-reduce",
        [LOOM__BOX_REDUCE_SCATTER] = "reduce-scatter",
        [LOOM__BOX_ALL_TO_ALL] = "all-to-all",
        [LOOM__BOX_SLICE] = "slice",
        [LOOM__BOX_LOCAL_ZERO] = "local (zero but one)",
        [LOOM__BOX_GATHER_ZERO] = "all-gather, zero but one",
    };
    return (unsigned)k < LOOM__BOX_KIND_COUNT ? names[k] : "?";
}

int loom__all_reduce_two_phase(double bytes, int n, const loom__cost_dev *d)
{
    /* one phase: latency + n (n + 1) b / bw; two: 2 latency + n (3 + 1/n) b / bw */
    return d->shared && n > 2 && (double)(n * n - 2 * n - 1) * bytes / d->box_bw > d->box_latency;
}

int loom__all_reduce_ring(double bytes, int n, int per_rank, const loom__cost_dev *d)
{
    /* a rank of m devices, T bytes: one phase receives (n - m) T and its devices read and write
     * m (n + 1) T, in one boxing; the ring receives (m + 1) (n - m) / n T (each device's range of
     * every other rank's part, then the other ranks' ranges once), and its devices read and write
     * m (2 + 1/n) T: the reduce-scatter reads its range of every part and writes it, (1 + 1/n) T,
     * and the all-gather writes the whole, T, from ranges just written (its own by the
     * reduce-scatter, the others' by the transport), read where they are still in cache. So on 2
     * devices too, past some bytes (3.5 T against 4 T): measured, 2 ranks of one device each
     * all-reduce faster so from 1 to 64 MiB (bench/README.md) */
    if (n < 2 || per_rank < 1 || per_rank >= n)
        return 0;
    const double m = per_rank, T = bytes;
    const double one = (n - m) * T + m * (n + 1) * T, ring = (m + 1) * (n - m) / n * T + m * (2 + 1.0 / n) * T;
    return (one - ring) / d->box_bw > d->box_latency;
}

/* Shared memory: device d's task reads the parts its result needs and writes its result
 * (runtime/comm/parts.c, loom__part_convert). */
static double shared_bytes(loom__box_kind k, double bytes, int n, const loom__cost_dev *d)
{
    switch (k) {
    case LOOM__BOX_ALL_GATHER:
    case LOOM__BOX_GATHER_ZERO:
    case LOOM__BOX_LOCAL_ZERO:
        return 2 * bytes; /* the whole read, the whole written */
    case LOOM__BOX_ALL_REDUCE: /* every part read whole and the sum written, or the two phases */
        return loom__all_reduce_two_phase(bytes, n, d) ? 3 * bytes + bytes / n : (n + 1) * bytes;
    case LOOM__BOX_REDUCE_SCATTER:
        return bytes + bytes / n; /* the device's range of every part, its range written */
    case LOOM__BOX_ALL_TO_ALL:
    case LOOM__BOX_SLICE:
        return 2 * bytes / n;
    default:
        return 0;
    }
}

double loom__ring_bytes(loom__box_kind k, double bytes, int n)
{
    if (n <= 1)
        return 0;
    double f = (double)(n - 1) / n;
    switch (k) {
    case LOOM__BOX_ALL_GATHER:
    case LOOM__BOX_REDUCE_SCATTER:
    case LOOM__BOX_GATHER_ZERO:
        return f * bytes;
    case LOOM__BOX_ALL_REDUCE:
        return 2 * f * bytes;
    case LOOM__BOX_ALL_TO_ALL:
        return f * bytes / n; /* each device keeps 1/n of its 1/n part and sends the rest */
    default:
        return 0; /* slices and zeroing are local */
    }
}

int loom__box_local(loom__box_kind k) { return k == LOOM__BOX_SLICE || k == LOOM__BOX_LOCAL_ZERO; }

int loom__ring_steps(loom__box_kind k, int n)
{
    if (n <= 1 || k == LOOM__BOX_NONE || loom__box_local(k))
        return 0;
    return k == LOOM__BOX_ALL_REDUCE ? 2 * (n - 1) : n - 1;
}

/* floor(log2 n), n >= 1: the depth of a binary tree of n nodes. */
static int log2_floor(int n)
{
    int l = 0;
    while (n >>= 1)
        l++;
    return l;
}

loom__net_coll loom__net_coll_of(loom__box_kind k, double bytes, int N, int per_node, double latency, double node_bw)
{
    loom__net_coll ring = {.steps = loom__ring_steps(k, N), .bytes = loom__ring_bytes(k, bytes, N)};
    ring.seconds = ring.steps * latency + per_node * ring.bytes / node_bw;
    if (k != LOOM__BOX_ALL_REDUCE || N <= 2) /* two nodes: a tree's 2 steps are the ring's, its bytes twice */
        return ring;
    loom__net_coll tree = {.tree = 1, .steps = 2 * log2_floor(N), .bytes = 2 * bytes};
    tree.seconds = tree.steps * latency + per_node * tree.bytes / node_bw;
    return tree.seconds < ring.seconds ? tree : ring;
}

double loom__flat_node_share(loom__box_kind k, double bytes, int N)
{
    return k == LOOM__BOX_ALL_TO_ALL ? bytes / ((double)N * N) : loom__box_local(k) ? bytes / N : bytes;
}

double loom__box_bytes(loom__box_kind k, double bytes, int n, const loom__cost_dev *d)
{
    if (n <= 1 || k == LOOM__BOX_NONE)
        return 0;
    return d->shared ? shared_bytes(k, bytes, n, d) : loom__ring_bytes(k, bytes, n);
}

void loom__box_terms(loom__box_kind k, double bytes, int n, const loom__cost_dev *d, double *terms)
{
    double b = loom__box_bytes(k, bytes, n, d);
    if (b == 0)
        return;
    if (d->shared) { /* the n tasks at once, on the machine's bandwidth */
        terms[LOOM__TERM_BOXES] += k == LOOM__BOX_ALL_REDUCE && loom__all_reduce_two_phase(bytes, n, d) ? 2 : 1;
        terms[LOOM__TERM_BOX_BYTES] += n * b;
        return;
    }
    terms[LOOM__TERM_BOXES] += loom__ring_steps(k, n);
    terms[LOOM__TERM_BOX_BYTES] += b;
}

loom__net_coll loom__net_terms(loom__box_kind k, double bytes, int N, int per_node, const loom__cost_dev *d, double *terms)
{
    loom__net_coll c = loom__net_coll_of(k, bytes, N, per_node, d->net_latency, d->net_bw);
    if (c.bytes == 0)
        return (loom__net_coll){0};
    terms[LOOM__TERM_NET_BOXES] += c.steps;
    terms[LOOM__TERM_NET_BYTES] += per_node * c.bytes;
    return c;
}

double loom__box_seconds(loom__box_kind k, double bytes, int n, const loom__cost_dev *d)
{
    double terms[LOOM__COST_TERMS] = {0};
    loom__box_terms(k, bytes, n, d, terms);
    return loom__terms_seconds(terms, d);
}

double loom__tensor_bytes(const loom_tensor *t)
{
    const loom_graph *g = t->graph;
    if (t->layout == LOOM__CSR) /* structure: about a row pointer and two entries per row */
        return (double)loom__dim_bound(g, t->shape.d[0]) * 3 * 4;
    return (double)loom_dtype_size(t->dtype) * loom__shape_bound_elems(g, &t->shape);
}

/* t's placement, or NULL (one CPU device) in a graph without placements. */
static const loom_placement *placement_of(const loom_tensor *t) { return t->graph->places ? t->graph->places[t->place] : NULL; }

loom_device_kind loom__tensor_kind(const loom_tensor *t)
{
    const loom_placement *p = placement_of(t);
    return p ? loom_placement_kind(p) : LOOM_DEVICE_CPU;
}

int loom__tensor_ranks(const loom_tensor *t)
{
    const loom_placement *p = placement_of(t);
    return p && loom_placement_nranks(p) > 1;
}

/* On devices sharing a machine of C cores (its rates), one of n devices running at once (or the
 * pipeline's `running`) with T kernel threads: what its work counts times the machine's rate (a
 * kernel split over the threads: the devices share min(C', max(T, P)) cores, c of them each, of
 * which a c > 1 counts 1 + thread_gain (c - 1); one on one thread: a core, or C'/P of one, where
 * C' is C, or for several devices core_share C, at least one), and how
 * many acts an act counts (queued past C devices). */
static void shared_factors(const loom__cost_dev *d, int n, int threaded, double *mult, double *acts)
{
    const double C = d->cores > 1 ? d->cores : 1, T = d->threads > 0 ? d->threads : C;
    const double P = d->running > n ? d->running : n, busy = T > P ? T : P;
    const double share = P > 1 && d->core_share > 0 && d->core_share < 1 ? C * d->core_share : C,
                 got = share > 1 ? share : 1; /* the cores devices running at once get */
    double c = (busy < got ? busy : got) / P;
    if (c > 1)
        c = 1 + d->thread_gain * (c - 1);
    *mult = threaded ? C / c : C * (P > got ? P / got : 1);
    *acts = P > C ? P / C : 1;
}

/* The terms of op t on one of n devices, doing `share` of its work (see cost.h); 0 for a leaf. */
static double op_terms_share(const loom_tensor *t, double share, int n, const loom__cost_model *cm, double *terms)
{
    const loom_op_def *def = loom__op_def(t->op);
    const loom__cost_dev *d = &cm->dev[loom__tensor_kind(t)];
    double acts = 1, mult = 1;
    if (d->shared) {
        shared_factors(d, n, (def->flags & LOOM__OPF_THREADED) != 0, &mult, &acts);
        share *= mult;
    }
    /* an in-place update has no value of its own: it reads and writes its parameter's size */
    const loom_tensor *out = def->flags & LOOM__OPF_INPLACE ? t->src[0] : t;
    double bytes = loom__tensor_bytes(out) * (def->flags & LOOM__OPF_INPLACE ? 2 : 1);
    for (int i = 0; i < t->n_src; i++)
        bytes += loom__tensor_bytes(t->src[i]);
    double flops = def->flops ? def->flops(t) : loom__shape_bound_elems(t->graph, &out->shape);
    double add[LOOM__COST_TERMS] = {[LOOM__TERM_OPS] = acts, [LOOM__TERM_LIBS] = def->flags & LOOM__OPF_LIBRARY ? acts : 0};
    if (flops / d->flops > bytes / d->mem_bw)
        add[LOOM__TERM_FLOPS] = flops * share;
    else
        add[LOOM__TERM_BYTES] = bytes * share;
    for (int i = 0; i < LOOM__COST_TERMS; i++)
        terms[i] += add[i];
    return loom__terms_seconds(add, d);
}

/* 1 when sig splits a source of t or its output. */
static int splits(const loom_tensor *t, const loom__sbp_sig *sig)
{
    int split = 0;
    for (int i = 0; i <= t->n_src && !split; i++)
        split = (i < t->n_src ? sig->in[i] : sig->out).kind == LOOM_SBP_SPLIT;
    return split;
}

double loom__op_terms(const loom_tensor *t, const loom__sbp_sig *sig, int n, const loom__cost_model *cm, double *terms)
{
    if (loom__op_def(t->op)->flags & LOOM__OPF_LEAF)
        return 0;
    int split = sig && n > 1 && splits(t, sig);
    return op_terms_share(t, split ? 1.0 / n : 1.0, n, cm, terms);
}

double loom__op_terms_nd(const loom_tensor *t, const loom__sbp_sig *const sig[2], const int mesh[2], const loom__cost_model *cm,
                         double *terms)
{
    if (loom__op_def(t->op)->flags & LOOM__OPF_LEAF)
        return 0;
    double share = 1;
    for (int l = 0; l < 2; l++)
        if (mesh[l] > 1 && splits(t, sig[l]))
            share /= mesh[l];
    return op_terms_share(t, share, mesh[0] * mesh[1], cm, terms);
}

void loom__acc_terms(double bytes, int n, const loom__cost_dev *d, double *terms)
{
    double acts = 1, share = 1;
    if (d->shared) /* as an op whose kernel runs on one thread */
        shared_factors(d, n, 0, &share, &acts);
    terms[LOOM__TERM_OPS] += acts;
    terms[LOOM__TERM_BYTES] += 3 * bytes * share;
}

double loom__op_seconds(const loom_tensor *t, const loom__sbp_sig *sig, int n, const loom__cost_model *cm)
{
    double terms[LOOM__COST_TERMS] = {0};
    return loom__op_terms(t, sig, n, cm, terms);
}
