/* Seeded synthetic graphs for benchmarks (loom_synthetic_graph): uniform random directed edges,
 * uniform features and labels, the same bytes on every platform, and reproduced exactly by the
 * numpy generator of bench/peers/synthetic.py, so Loom and its peers train on one graph.
 *
 * Every number is value i of a stream: loom__data_rand64(key of the stream, i), the counter-based
 * generator of data/rand.h (loom__rand64 of graphs/core/op.h restated; tests/test_synthetic.c
 * checks that the two agree). A counter-based draw needs no state, so numpy computes whole arrays
 * at once and this file can draw an edge twice (once to count its row, once to place it) instead of
 * keeping 100M destinations in memory.
 *
 * Large graphs are built on several threads (100M edges take seconds, not tens of them): each
 * thread counts and then places the edges of one contiguous range, after the entries of the ranges
 * before it, which is a stable counting sort: the bytes do not depend on the number of threads. */
#include <loom/data.h>

#include "data/rand.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

/* The streams, each keyed by loom__data_rand64(seed, stream). */
enum { SYN_SRC, SYN_DST, SYN_X, SYN_Y };


/* floor(r * n / 2^64) for n < 2^32, from 32-bit halves so that numpy's uint64 computes the same
 * (no 128-bit product there). Unlike a rejection loop it takes one draw per value, which keeps
 * value i at counter i; its bias, n / 2^64 at most, is far below anything a benchmark sees. */
static uint32_t below(uint64_t r, uint64_t n)
{
    return (uint32_t)(((r >> 32) * n + (((r & UINT64_C(0xffffffff)) * n) >> 32)) >> 32);
}

/* The top 24 bits as a float in [0, 1): exact, where rounding a 53-bit double to float could give
 * 1.0f. */
static float unit_f32(uint64_t r) { return (float)(r >> 40) * 0x1.0p-24f; }

/* One thread's share: edges [e0, e1), feature elements [x0, x1) and labels [y0, y1). cnt counts
 * the range's entries per row, then holds where the range's next entry of each row goes. */
typedef struct syn_part {
    int64_t e0, e1, x0, x1, y0, y1;
    int32_t *cnt;
    uint64_t ksrc, kdst, kx, ky, nodes, classes;
    loom_node_dataset *out;
    int phase; /* 0: count rows, features and labels; 1: place the entries */
} syn_part;

static void *syn_run(void *arg)
{
    syn_part *p = arg;
    loom_csr *a = &p->out->adj;
    if (p->phase == 0) {
        for (int64_t e = p->e0; e < p->e1; e++)
            p->cnt[below(loom__data_rand64(p->kdst, (uint64_t)e), p->nodes)]++;
        float *x = p->out->x.data;
        for (int64_t i = p->x0; i < p->x1; i++)
            x[i] = unit_f32(loom__data_rand64(p->kx, (uint64_t)i));
        int32_t *y = p->out->labels.data;
        for (int64_t i = p->y0; i < p->y1; i++)
            y[i] = (int32_t)below(loom__data_rand64(p->ky, (uint64_t)i), p->classes);
    } else {
        float *v = a->val;
        for (int64_t e = p->e0; e < p->e1; e++) {
            uint32_t d = below(loom__data_rand64(p->kdst, (uint64_t)e), p->nodes);
            a->col[p->cnt[d]++] = (int32_t)below(loom__data_rand64(p->ksrc, (uint64_t)e), p->nodes);
            v[e] = 1.0f;
        }
    }
    return NULL;
}

/* Runs every part, parts 1.. on threads of their own; a thread that cannot start runs in the
 * caller instead (same result, only slower). */
static void syn_run_all(syn_part *parts, int n, int phase)
{
    pthread_t tid[16];
    int started[16] = {0};
    for (int t = 0; t < n; t++)
        parts[t].phase = phase;
    for (int t = 1; t < n; t++)
        started[t] = pthread_create(&tid[t], NULL, syn_run, &parts[t]) == 0;
    syn_run(&parts[0]);
    for (int t = 1; t < n; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            syn_run(&parts[t]);
    }
}

/* Threads for a graph: at most 16 and the online CPUs, one per 2^20 edges, and few enough that
 * their row counts (nodes int32 each) take no more memory than the column indices. */
static int syn_threads(int64_t nodes, int64_t edges)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t t = cpus < 1 ? 1 : cpus > 16 ? 16 : cpus;
    if (t > edges >> 20)
        t = edges >> 20;
    if (t > edges / nodes)
        t = edges / nodes;
    return t < 1 ? 1 : (int)t;
}

loom_status loom_synthetic_graph(int64_t nodes, int64_t edges, int64_t features, int64_t classes, uint64_t seed,
                                 loom_node_dataset *out, loom_error *err)
{
    if (out)
        *out = (loom_node_dataset){0};
    if (!out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_synthetic_graph: NULL output");
    /* CSR indices are int32: node ids and rowptr (which reaches the edge count) must fit. */
    if (nodes < 1 || nodes > INT32_MAX)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "loom_synthetic_graph: nodes is %lld: expected 1 to 2^31 - 1 (int32 CSR indices)",
                              (long long)nodes);
    if (edges < 0 || edges > INT32_MAX)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "loom_synthetic_graph: edges is %lld: expected 0 to 2^31 - 1 (int32 CSR row pointers)",
                              (long long)edges);
    if (features < 1 || features > INT64_MAX / 16 / nodes)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "loom_synthetic_graph: features is %lld: expected 1 to %lld (nodes x features must fit an array)",
                              (long long)features, (long long)(INT64_MAX / 16 / nodes));
    if (classes < 1 || classes > INT32_MAX)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "loom_synthetic_graph: classes is %lld: expected 1 to 2^31 - 1 (i32 labels)",
                              (long long)classes);

    int nt = syn_threads(nodes, edges);
    syn_part parts[16];
    int32_t *cnt = calloc((size_t)nt * (size_t)nodes, sizeof *cnt);
    loom_csr *a = &out->adj;
    *a = (loom_csr){.nrows = nodes, .ncols = nodes, .nnz = edges, .vdtype = LOOM_F32};
    a->rowptr = malloc(((size_t)nodes + 1) * sizeof *a->rowptr);
    a->col = malloc(((size_t)edges + 1) * sizeof *a->col);
    a->val = malloc(((size_t)edges + 1) * sizeof(float));
    int64_t xshape[2] = {nodes, features};
    if (!cnt || !a->rowptr || !a->col || !a->val || loom_array_alloc(&out->x, LOOM_F32, 2, xshape) ||
        loom_array_alloc(&out->labels, LOOM_I32, 1, &nodes)) {
        free(cnt);
        loom_node_dataset_free(out);
        return loom_error_set(err, LOOM_ERR_NOMEM,
                              "loom_synthetic_graph: out of memory for %lld nodes, %lld edges, %lld features",
                              (long long)nodes, (long long)edges, (long long)features);
    }
    int64_t nx = nodes * features;
    for (int t = 0; t < nt; t++)
        parts[t] = (syn_part){
            .e0 = edges * t / nt, .e1 = edges * (t + 1) / nt,
            .x0 = nx / nt * t, .x1 = t + 1 == nt ? nx : nx / nt * (t + 1), /* nx * t might overflow */
            .y0 = nodes * t / nt, .y1 = nodes * (t + 1) / nt,
            .cnt = cnt + (size_t)t * (size_t)nodes,
            .ksrc = loom__data_rand64(seed, SYN_SRC), .kdst = loom__data_rand64(seed, SYN_DST),
            .kx = loom__data_rand64(seed, SYN_X), .ky = loom__data_rand64(seed, SYN_Y),
            .nodes = (uint64_t)nodes, .classes = (uint64_t)classes,
            .out = out,
        };

    /* The row of an entry is its destination (A x sums messages from sources into targets, PyG's
     * source_to_target flow). Row d holds the entries of range 0, then of range 1 ..., each in edge
     * order. */
    syn_run_all(parts, nt, 0);
    int32_t next = 0;
    for (int64_t d = 0; d < nodes; d++) {
        a->rowptr[d] = next;
        for (int t = 0; t < nt; t++) {
            int32_t c = parts[t].cnt[d];
            parts[t].cnt[d] = next;
            next += c;
        }
    }
    a->rowptr[nodes] = next;
    syn_run_all(parts, nt, 1);
    free(cnt);
    out->num_nodes = nodes;
    out->num_features = features;
    out->num_classes = classes;
    return LOOM_OK;
}
