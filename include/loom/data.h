/** @file
 * Datasets: NumPy .npz archives, IDX files and Fashion-MNIST, citation graphs (Cora-style), seeded
 * node splits. */
#ifndef LOOM_DATA_H
#define LOOM_DATA_H

#include "core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * NumPy .npz: a zip archive of .npy arrays, stored or deflated. Reads little-endian bool, int8-64,
 * uint8-64, float32 and float64 arrays in C order (version 1, 2 and 3 headers, zip64 entries).
 * Anything else fails with LOOM_ERR_FORMAT or LOOM_ERR_UNSUPPORTED and a message naming the file,
 * the member, the byte offset and what was expected.
 * ------------------------------------------------------------------------------------------- */
/** An open .npz archive (opaque). */
typedef struct loom_npz loom_npz;

/** Opens path and reads its zip directory. */
loom_status loom_npz_open(const char *path, loom_npz **out, loom_error *err);
/** Same, from a caller's buffer (kept alive until loom_npz_close); name is used in messages. */
loom_status loom_npz_open_mem(const void *data, size_t size, const char *name, loom_npz **out, loom_error *err);
/** Closes the archive. NULL is ignored. */
void loom_npz_close(loom_npz *z);
/** Number of members. */
int loom_npz_count(const loom_npz *z);
/** The array name of member i (without ".npy"), owned by the archive. */
const char *loom_npz_name(const loom_npz *z, int i);
/** Reads array `name` converted to dtype (integers to integers or floats, floats to floats; a value
 * that does not fit is an error naming the file, member, element and value). Fitting: an integer
 * in the target's range, read as a float only when exact (2^53 + 1 is not an f64); f64 read as f32
 * rounds to nearest, tiny values to 0, but a finite value past f32's range (it would become inf)
 * does not fit; NaN and inf stay. out is allocated; free it with loom_array_free. */
loom_status loom_npz_read(loom_npz *z, const char *name, loom_dtype dtype, loom_array *out, loom_error *err);
/** Parses one .npy image (header and data) from memory; name is used in messages. */
loom_status loom_npy_parse(const void *data, size_t size, const char *name, loom_dtype dtype, loom_array *out, loom_error *err);

/* ---------------------------------------------------------------------------------------------
 * IDX files (the MNIST format): two zero bytes, a type byte (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32,
 * 0x0D f32, 0x0E f64), the number of dims, each dim as a big-endian u32, then the data big-endian.
 * ------------------------------------------------------------------------------------------- */

/** Reads an IDX file, gzip'd (it starts 1f 8b) or not, into out: u8 data as a LOOM_U8 array, i32
 * as LOOM_I32, f32 as LOOM_F32, f64 as LOOM_F64, in the host's byte order; i8 and i16 are
 * LOOM_ERR_UNSUPPORTED naming the type. A bad magic or type byte, 0 or more than LOOM_MAX_DIMS
 * dims, dims whose byte count overflows an int64, a file or gzip stream that ends early and bytes
 * after the data are LOOM_ERR_FORMAT naming the file, the byte offset (in the uncompressed
 * stream) and what was expected there, before anything is allocated from a count the file cannot
 * hold. A file that cannot be opened or read is LOOM_ERR_IO. Free out with loom_array_free. */
loom_status loom_idx_read(const char *path, loom_array *out, loom_error *err);

/* ---------------------------------------------------------------------------------------------
 * Image datasets. The batch source that feeds them to a program is in images.h.
 * ------------------------------------------------------------------------------------------- */
/** A labelled image dataset held in memory. */
typedef struct loom_image_set {
    int64_t count;       /**< images */
    int64_t channels;    /**< channels of each */
    int64_t height;      /**< rows of each */
    int64_t width;       /**< columns of each */
    int64_t num_classes; /**< labels are 0 .. num_classes - 1 */
    loom_array images; /**< [count, channels, height, width] u8 */
    loom_array labels; /**< [count] i32 in [0, num_classes) */
} loom_image_set;

/** Fashion-MNIST's training set (train != 0: 60,000 images) or test set (10,000), 28 x 28 grey
 * (channels 1, 10 classes), from the IDX files train-images-idx3-ubyte.gz,
 * train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (each also
 * read without .gz) in dir; dir NULL: in $LOOM_DATA/fashion-mnist, then
 * /usr/share/datasets/fashion-mnist, where the Debian package dataset-fashion-mnist installs them.
 * LOOM_ERR_NOT_FOUND says where it looked and which package installs the files. A mislabelled
 * set (a label outside 0..9, image and label counts that differ, images not 28 x 28 u8, labels not
 * u8) is LOOM_ERR_FORMAT naming the file and what was expected; the files' own errors are
 * loom_idx_read's. Free out with loom_image_set_free. */
loom_status loom_fashion_mnist_load(const char *dir, int train, loom_image_set *out, loom_error *err);
/** Frees the set's arrays and clears it. */
void loom_image_set_free(loom_image_set *s);
/** The mean and standard deviation of every pixel of s on the [0, 1] scale (p / 255), summed in
 * double in the set's order: what loom_image_opts' mean and std normalise by. Both 0 for an empty
 * set or one whose images are not u8. */
void loom_image_set_mean_std(const loom_image_set *s, double *mean, double *std);

/* ---------------------------------------------------------------------------------------------
 * Citation graphs in the Cora/CiteSeer .npz layout (adj_data/adj_indices/adj_indptr/adj_shape,
 * attr_* likewise, labels).
 * ------------------------------------------------------------------------------------------- */
/** A graph with node features and node labels (node classification). */
typedef struct loom_node_dataset {
    int64_t num_nodes;    /**< nodes */
    int64_t num_features; /**< features of each node */
    int64_t num_classes;  /**< labels are 0 .. num_classes - 1 */
    loom_csr adj;      /**< values 1 (f32); a citation graph: symmetric, no self loops, no duplicates */
    loom_array x;      /**< [num_nodes, num_features] f32, rows normalised to sum 1 */
    loom_array labels; /**< [num_nodes] i32 */
} loom_node_dataset;

/** Finds `file` (e.g. "cora.npz"): $LOOM_DATA/file, then the cache ($XDG_CACHE_HOME/loom or
 * ~/.cache/loom), then downloads url into the cache when a network is reachable (url may be NULL).
 * On success path holds the file's path. LOOM_ERR_NOT_FOUND says where it looked and where to put
 * the file. */
loom_status loom_data_find(const char *file, const char *url, char *path, size_t pathlen, loom_error *err);

/** Loads a citation graph from an .npz file. */
loom_status loom_citation_load(const char *path, loom_node_dataset *out, loom_error *err);
/** Finds (see loom_data_find) and loads Cora. */
loom_status loom_cora_load(loom_node_dataset *out, loom_error *err);
/** Frees the dataset's matrix and arrays. NULL is ignored. */
void loom_node_dataset_free(loom_node_dataset *d);

/* ---------------------------------------------------------------------------------------------
 * Synthetic graphs for benchmarks, the same bytes as bench/peers/synthetic.py makes in numpy.
 * ------------------------------------------------------------------------------------------- */

/** A seeded random graph: `edges` uniform (src, dst) pairs as a CSR whose row is the destination, rows
 * in edge order, duplicates and self loops kept, values 1; x [nodes, features] f32 in [0, 1); labels
 * i32 in [0, classes). Free with loom_node_dataset_free. LOOM_ERR_INVALID names a bad size. */
loom_status loom_synthetic_graph(int64_t nodes, int64_t edges, int64_t features, int64_t classes, uint64_t seed,
                                 loom_node_dataset *out, loom_error *err);

/** The edges of a CSR adjacency as two [E] i32 arrays for gathers, scatters and the segment softmax:
 * entry (row r, column c) is the edge c -> r (src c, dst r: a row is a destination, as spmm reads
 * it), in the matrix's order. With self_loops, diagonal entries are left out and each node i gets
 * one edge i -> i, first in its row: PyG's remove_self_loops then add_self_loops, which GAT uses.
 * src and dst are allocated (free with loom_array_free). An invalid matrix is loom_csr_validate's
 * LOOM_ERR_FORMAT; more than INT32_MAX rows, or self loops on a matrix that is not square,
 * LOOM_ERR_INVALID. */
loom_status loom_csr_edges(const loom_csr *adj, int self_loops, loom_array *src, loom_array *dst, loom_error *err);

/** Training, validation and test masks over a dataset's nodes. */
typedef struct loom_node_split {
    loom_array train; /**< [num_nodes] u8: 1 for a training node */
    loom_array val;   /**< [num_nodes] u8: 1 for a validation node */
    loom_array test;  /**< [num_nodes] u8: 1 for a test node */
} loom_node_split;
/** A seeded split: per_class nodes of each class for training, then num_val and num_test of the
 * remaining nodes, drawn at random. Masks are [num_nodes] u8 arrays, allocated. A class with
 * fewer than per_class nodes gives LOOM_ERR_INVALID. */
loom_status loom_split_per_class(const loom_array *labels, int64_t num_classes, int per_class, int num_val, int num_test,
                                 uint64_t seed, loom_node_split *out, loom_error *err);
/** Frees the split's masks. NULL is ignored. */
void loom_node_split_free(loom_node_split *s);

#ifdef __cplusplus
}
#endif
#endif
