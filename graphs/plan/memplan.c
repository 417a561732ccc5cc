/* Greedy-by-size placement of blocks by lifetime (see memplan.h).
 *
 * For each block in size order, the blocks already placed whose lifetimes meet its own are found
 * through a static index: the blocks sorted by first position, with a tree of the largest last
 * position over each range of them, so that the blocks starting at or before this one's last
 * position and ending at or after its first are reported in O(log n) each. Sorted by offset, they
 * leave the lowest gap that fits in one scan. The offsets are those of the plain method (try
 * offset 0, move past every placed block it overlaps, until none does): both give the lowest
 * offset free of every such block. */
#include "graphs/plan/memplan.h"

#include "graphs/plan/plan.h"

#include <limits.h>
#include <stdlib.h>

typedef struct key {
    size_t bytes;
    int first, idx;
} key;

static int by_size(const void *a, const void *b) /* bytes descending, then index: a total order */
{
    const key *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes > y->bytes ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int by_first(const void *a, const void *b)
{
    const key *x = a, *y = b;
    if (x->first != y->first)
        return x->first < y->first ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

typedef struct span {
    size_t offset, end;
} span;

static int by_offset(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

typedef struct finder {
    const loom__block *b;
    const key *sorted; /* the blocks by first position */
    const int *rank;   /* by block: its place in size order */
    int *maxlast;      /* tree over `sorted`: node 1 the whole, node i's children 2i and 2i+1 */
    span *found;
    int nfound;
} finder;

/* Reports into ix->found the blocks among sorted[0, hi) of node's range [lo, lo + width) that
 * last at least until `from` and come before rank `before` in size order. */
static void meeting(finder *ix, int node, int lo, int width, int hi, int from, int before)
{
    if (lo >= hi || ix->maxlast[node] < from)
        return;
    if (width == 1) {
        int j = ix->sorted[lo].idx;
        if (ix->rank[j] < before)
            ix->found[ix->nfound++] = (span){ix->b[j].offset, loom__bytes_add(ix->b[j].offset, ix->b[j].bytes)};
        return;
    }
    meeting(ix, 2 * node, lo, width / 2, hi, from, before);
    meeting(ix, 2 * node + 1, lo + width / 2, width / 2, hi, from, before);
}

size_t loom__memplan(loom__block *b, int n)
{
    if (n <= 0)
        return 0;
    int leaves = 1;
    while (leaves < n)
        leaves *= 2;
    key *size_order = malloc((size_t)n * sizeof *size_order);
    key *sorted = malloc((size_t)n * sizeof *sorted);
    int *rank = malloc((size_t)n * sizeof *rank);
    int *maxlast = malloc((size_t)2 * (size_t)leaves * sizeof *maxlast);
    span *found = malloc((size_t)n * sizeof *found);
    size_t top = 0;
    if (!size_order || !sorted || !rank || !maxlast || !found) {
        top = LOOM__MEMPLAN_NOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++)
        size_order[i] = sorted[i] = (key){.bytes = b[i].bytes, .first = b[i].first, .idx = i};
    qsort(size_order, (size_t)n, sizeof *size_order, by_size);
    qsort(sorted, (size_t)n, sizeof *sorted, by_first);
    for (int i = 0; i < n; i++)
        rank[size_order[i].idx] = i;
    for (int i = 0; i < leaves; i++)
        maxlast[leaves + i] = i < n ? b[sorted[i].idx].last : INT_MIN;
    for (int i = leaves - 1; i > 0; i--)
        maxlast[i] = maxlast[2 * i] > maxlast[2 * i + 1] ? maxlast[2 * i] : maxlast[2 * i + 1];
    finder ix = {.b = b, .sorted = sorted, .rank = rank, .maxlast = maxlast, .found = found};
    for (int i = 0; i < n; i++) {
        loom__block *r = &b[size_order[i].idx];
        int lo = 0, hi = n; /* hi: the blocks starting at or before r's last position */
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (sorted[mid].first <= r->last)
                lo = mid + 1;
            else
                hi = mid;
        }
        ix.nfound = 0;
        meeting(&ix, 1, 0, leaves, lo, r->first, i);
        qsort(found, (size_t)ix.nfound, sizeof *found, by_offset);
        size_t off = 0;
        for (int j = 0; j < ix.nfound && found[j].offset < loom__bytes_add(off, r->bytes); j++)
            if (found[j].end > off)
                off = found[j].end;
        r->offset = off;
        if (loom__bytes_add(off, r->bytes) > top)
            top = loom__bytes_add(off, r->bytes);
    }
out:
    free(size_order);
    free(sorted);
    free(rank);
    free(maxlast);
    free(found);
    return top;
}
