/* Builders for graph batches: index inputs, whose values index the rows of a dim, and the part
 * bounds of dynamic dims that a batch split by whole graphs gives each device unevenly. */
#include <inttypes.h>
#include <stdio.h>

#include "graphs/builder/graph.h"

loom_tensor *loom_input_index(loom_graph *g, const char *name, loom_shape shape, loom_dim range)
{
    char why[160];
    if (g && !loom__dim_ok(g, range, 1, "range", why, sizeof why))
        return loom__fail(g, LOOM_ERR_SHAPE, "loom_input_index '%s': %s", name ? name : "?", why);
    loom_tensor *t = loom_input(g, name, LOOM_I32, shape);
    if (loom_tensor_is_poisoned(t))
        return t;
    t->a.i[2] = 1;
    t->a.i[3] = range;
    return t;
}

void loom_dim_set_part_bound(loom_graph *g, loom_dim d, int64_t part_bound)
{
    if (!g)
        return;
    int k = loom__dyn_index(g, d);
    if (k < 0) {
        if (loom_dim_is_dynamic(d))
            loom__fail(g, LOOM_ERR_INVALID, "loom_dim_set_part_bound: the dim is a dynamic dim of another graph");
        else
            loom__fail(g, LOOM_ERR_INVALID, "loom_dim_set_part_bound: %" PRId64 " is a size, not a dynamic dim", (int64_t)d);
        return;
    }
    if (part_bound < 0) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_dim_set_part_bound: part bound of '%s' is %" PRId64 ", expected >= 0",
                   g->dyn[k].name, part_bound);
        return;
    }
    g->dyn[k].part_bound = part_bound;
}

int64_t loom__dyn_part_bound(const loom_graph *g, int k, int n, int j)
{
    const loom__dyn_dim *d = &g->dyn[k];
    if (d->part_bound > 0)
        return d->part_bound < d->bound ? d->part_bound : d->bound;
    int64_t start, size;
    loom_split_part(d->bound, n, j, &start, &size);
    return size;
}
