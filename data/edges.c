/* A CSR adjacency as an edge list (loom_csr_edges): what gathers, scatters and the segment softmax
 * take where a sparse product took the matrix, with self loops put in as GAT wants them. */
#include <loom/data.h>

loom_status loom_csr_edges(const loom_csr *adj, int self_loops, loom_array *src, loom_array *dst, loom_error *err)
{
    if (src)
        *src = LOOM_ARRAY_INIT;
    if (dst)
        *dst = LOOM_ARRAY_INIT;
    if (!adj || !src || !dst)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_csr_edges: the adjacency and both outputs are required");
    loom_status s = loom_csr_validate(adj, err);
    if (s != LOOM_OK)
        return s;
    if (adj->nrows > INT32_MAX)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_csr_edges: %lld rows do not fit i32 destination indices",
                              (long long)adj->nrows);
    if (self_loops && adj->nrows != adj->ncols)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "loom_csr_edges: a self loop per node needs a square adjacency; it is %lld x %lld",
                              (long long)adj->nrows, (long long)adj->ncols);
    /* validated: nnz = rowptr[nrows] <= INT32_MAX, so nnz + nrows fits an int64 */
    int64_t e = adj->nnz;
    if (self_loops) {
        for (int64_t r = 0; r < adj->nrows; r++)
            for (int32_t k = adj->rowptr[r]; k < adj->rowptr[r + 1]; k++)
                e -= adj->col[k] == r;
        e += adj->nrows;
    }
    const int64_t shape[1] = {e};
    if (loom_array_alloc(src, LOOM_I32, 1, shape) != LOOM_OK || loom_array_alloc(dst, LOOM_I32, 1, shape) != LOOM_OK) {
        loom_array_free(src);
        loom_array_free(dst);
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_csr_edges: out of memory for %lld edges", (long long)e);
    }
    int32_t *s_ = src->data, *d_ = dst->data;
    int64_t j = 0;
    for (int64_t r = 0; r < adj->nrows; r++) {
        if (self_loops)
            s_[j] = d_[j] = (int32_t)r, j++;
        for (int32_t k = adj->rowptr[r]; k < adj->rowptr[r + 1]; k++) {
            if (self_loops && adj->col[k] == r)
                continue;
            s_[j] = adj->col[k];
            d_[j++] = (int32_t)r;
        }
    }
    return LOOM_OK;
}
