/** @file
 * Datasets of many small graphs (graph samples): collider events, TU graph-classification data.
 *
 * A loom_samples holds every sample's nodes and edges in one block, with per-sample offsets: sample
 * i owns nodes node_off[i] .. node_off[i+1]-1 and edges edge_off[i] .. edge_off[i+1]-1, and its
 * edges name their endpoints by the node's number within the sample (0 .. its node count - 1).
 * Batches of samples (include/loom/batch.h) are collated from it block-diagonally.
 *
 * Generated events (loom_events_generate) are the embedded default dataset: nothing to download.
 * Any loom_samples can be written to a compact binary file and read back (loom_samples_write,
 * loom_samples_read), so a large dataset is made once. */
#ifndef LOOM_SAMPLES_H
#define LOOM_SAMPLES_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A dataset of many small graphs, each a sample: node features, edges (with features and labels)
 * and a graph label, stored sample after sample in flat arrays. */
typedef struct loom_samples {
    int64_t count;          /**< samples */
    int64_t node_features;  /**< columns of x (>= 1) */
    int64_t edge_features;  /**< columns of edge_attr (0: none) */
    int64_t num_classes;    /**< classes of graph_y (0: no graph labels) */
    int64_t *node_off;      /**< [count + 1], node_off[0] = 0 */
    int64_t *edge_off;      /**< [count + 1], edge_off[0] = 0 */
    int32_t *src;           /**< [edges]: each edge's source node, within its sample */
    int32_t *dst;           /**< [edges]: each edge's destination node, within its sample */
    float *x;               /**< [nodes, node_features] */
    float *edge_attr;       /**< [edges, edge_features], or NULL */
    float *edge_y;          /**< [edges] edge labels 0 or 1, or NULL */
    int32_t *graph_y;       /**< [count] graph labels in [0, num_classes), or NULL */
} loom_samples;

/** A cleared set (nothing allocated), what loom_samples_free leaves. */
#define LOOM_SAMPLES_INIT                                                                               \
    ((loom_samples){.count = 0, .node_features = 0, .edge_features = 0, .num_classes = 0, .node_off = NULL, \
                    .edge_off = NULL, .src = NULL, .dst = NULL, .x = NULL, .edge_attr = NULL, .edge_y = NULL, \
                    .graph_y = NULL})

/** Frees what Loom allocated in s and clears it; safe on a cleared set. */
void loom_samples_free(loom_samples *s);
/** Nodes of sample i (i in [0, count)). */
static inline int64_t loom_samples_nodes(const loom_samples *s, int64_t i) { return s->node_off[i + 1] - s->node_off[i]; }
/** Edges of sample i (i in [0, count)). */
static inline int64_t loom_samples_edges(const loom_samples *s, int64_t i) { return s->edge_off[i + 1] - s->edge_off[i]; }
/** Bytes of sample i's tensors in a batch: features, edge features, endpoints, labels, and the
 * segment ids a collation adds (one i32 per node and per edge). */
int64_t loom_samples_bytes(const loom_samples *s, int64_t i);
/** Checks every offset, count and endpoint (offsets start at 0 and never decrease, endpoints inside
 * their sample, labels in range, features finite); LOOM_ERR_FORMAT naming the first bad sample and
 * field. Readers and generators call it on what they return. */
loom_status loom_samples_validate(const loom_samples *s, loom_error *err);

/** Writes s to path as a compact binary file (a header with a magic, a version, the counts and a
 * CRC-32 of the payload; the arrays little-endian), atomically: a temporary file, fsync, rename. */
loom_status loom_samples_write(const loom_samples *s, const char *path, loom_error *err);
/** Reads a file written by loom_samples_write. A file that is not one, of another version, truncated,
 * with a bad checksum or inconsistent counts gives LOOM_ERR_FORMAT naming the file, the byte offset
 * and what was expected; LOOM_ERR_IO when it cannot be opened or read. */
loom_status loom_samples_read(const char *path, loom_samples *out, loom_error *err);

/** Options of the synthetic collider events (docs/events.md): charged particles on helices in a solenoid field
 * crossing cylindrical barrel layers, hits with resolution noise, noise hits, a heavy-tailed
 * pile-up count per event. Each event is a graph: hits are nodes (features r, phi, z and derived),
 * candidate segments between hits on adjacent layers inside geometric windows are edges (features
 * dr, dphi, dz, dR), labelled 1 when both hits come from the same particle. */
typedef struct loom_event_opts {
    int64_t events;       /**< how many (>= 1) */
    uint64_t seed;        /**< event i is made from (seed, i) alone: any subset is reproducible */
    double pileup_mean;   /**< mean number of collisions per event (heavy tailed, >= 1 each; 1 to 1e5) */
    double pileup_tail;   /**< Pareto shape of the pile-up count: smaller is heavier (> 1) */
    int64_t pileup_max;   /**< the largest pile-up count drawn (1 to 100000) */
    double particles;     /**< mean charged particles per collision, |eta| < 2.5 (0 to 1e5) */
    double pt_min;        /**< GeV: the smallest transverse momentum generated; the edge windows keep
                               the segments of tracks down to it, so a lower one makes more edges */
    double noise;         /**< noise hits as a fraction of the particles' hits (0 to 100) */
} loom_event_opts;

/** The defaults: 1,000 events from seed 1, about 280 hits in the median event and 4,800 in the
 * largest (over 20x the smallest), edges about 30% true (docs/events.md gives the distribution). */
#define LOOM_EVENT_OPTS_INIT                                                                         \
    ((loom_event_opts){.events = 1000, .seed = 1, .pileup_mean = 3.0, .pileup_tail = 1.6, .pileup_max = 20, \
                       .particles = 25.0, .pt_min = 0.5, .noise = 0.2})

/** Generates events into out (x: [hits, 5] f32, edge_attr: [edges, 4], edge_y). The same options
 * give the same bytes on every machine and thread count. LOOM_ERR_INVALID names a bad option. */
loom_status loom_events_generate(const loom_event_opts *o, loom_samples *out, loom_error *err);

/** Reads dataset name of directory dir in the TU graph-classification text format
 * (https://chrsmrrs.github.io/datasets/docs/format/): name_A.txt (one edge "row, col" a line, 1-based node ids),
 * name_graph_indicator.txt (node i's graph id on line i: ids 1 .. G, the nodes of a graph
 * contiguous, graphs in increasing order, so every graph has a node), name_graph_labels.txt (graph
 * j's integer label on line j), and optionally name_node_labels.txt (node i's integer label) and
 * name_node_attributes.txt (node i's comma-separated reals, as many on every line);
 * name_edge_labels.txt, name_edge_attributes.txt and name_graph_attributes.txt are not read.
 *
 * Graphs become samples in file order, each with its edges as given (directed: the standard
 * datasets list an undirected edge both ways), in file order, with endpoints numbered within the
 * graph; graph_y holds the graph labels renumbered 0 .. C-1 in increasing order of value. Node
 * features are the node attributes, followed by a one-hot of the node labels (a column per
 * distinct label, in increasing order of value) when those exist, or a single column of ones when
 * neither file does. There are no edge features or edge labels. A required file that cannot be
 * opened gives LOOM_ERR_IO naming its path; a malformed file LOOM_ERR_FORMAT naming the file, the
 * line and the column (1-based, in bytes) and what was expected there. Blank lines are allowed only
 * at the end of a file; line ends may be `\n` or `\r\n`, the last may be missing. */
loom_status loom_tu_load(const char *dir, const char *name, loom_samples *out, loom_error *err);

#ifdef __cplusplus
}
#endif
#endif
