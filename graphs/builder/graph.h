/* The logical graph (internal): an arena of tensors in creation order, which is a topological
 * order since a tensor is made after its sources. */
#ifndef LOOM_GRAPHS_GRAPH_H
#define LOOM_GRAPHS_GRAPH_H

#include <loom/graph.h>

#include "graphs/core/op.h"

typedef struct loom__dyn_dim {
    char name[32];
    int64_t bound;
    int64_t part_bound; /* a device's part when split by parts (loom_dim_set_part_bound); 0: an even split */
} loom__dyn_dim;

struct loom_graph {
    loom_tensor **t; /* by id */
    int n, cap;
    loom_tensor *chunk; /* tensors are carved from chunks, freed with the graph */
    int chunk_used;
    void **chunks;
    int nchunks;
    loom__dyn_dim *dyn;
    int ndyn;
    int64_t dyn_tag; /* this graph's tag in its dynamic dim handles (core.h) */
    loom_tensor poison;
    loom_status status;
    char err[512];
    uint64_t seed;
    loom_placement *placement; /* the first placement set: where tensors are unless moved; NULL: one device */
    /* every placement of the graph: [0] is `placement` (NULL: one device), the others come from
     * later loom_graph_set_placement and loom_to_placement calls; a tensor's place indexes it */
    loom_placement **places;
    int nplaces, cap_places;
    int cur_place; /* where leaves made now go */
    /* names → ids: open addressing, LOOM__NAME_FREE or LOOM__NAME_GONE where no name is; every
     * named tensor is in it once, unless names_cap is -1 (out of memory: names are searched) */
    int *names;
    int names_cap, names_used; /* slots, and slots that are not free */
};
#define LOOM__NAME_FREE (-1)
#define LOOM__NAME_GONE (-2) /* a renamed tensor's old slot: probes go on past it */

/* Devices of place k (1 for the default, NULL placement). */
int loom__place_ndev(const loom_graph *g, int k);

/* Index of a dynamic dim handle, or -1 when d is not one of g's (a size, or another graph's). */
int loom__dyn_index(const loom_graph *g, loom_dim d);
/* The most that part j of n of dynamic dim k may hold: its part bound when set (at most the bound),
 * else its share of an even split of the bound. */
int64_t loom__dyn_part_bound(const loom_graph *g, int k, int n, int j);

/* LOOM_OK when data of rank ndim and shape fits input t: each size equal to a static dim, within a
 * dynamic one's bound; else LOOM_ERR_SHAPE with msg naming the input, its shape, the dim, the
 * size and the bound ("input 'x' is [N, 2], data has size 5 in dim 0 (over N's bound of 4)").
 * Every way of feeding checks here. */
loom_status loom__input_dims(const loom_graph *g, const loom_tensor *t, int ndim, const int64_t *shape, char *msg, size_t len);
/* With micro > 1 micro-batches a step: LOOM_OK when the rows of data of rank ndim and shape for
 * input t (its axis 0, the batch) cut into micro equal micro-batches, else LOOM_ERR_SHAPE with msg
 * naming the input, its rows and the count. */
loom_status loom__micro_rows(const loom_tensor *t, int ndim, const int64_t *shape, int micro, char *msg, size_t len);

#endif
