/* Dims and shapes on a graph: dynamic dims (their handles carry the graph's tag and their index),
 * bounds, printing, and the checks every shape the builder accepts passes. */
#include "graphs/builder/builder_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int loom__dyn_index(const loom_graph *g, loom_dim d)
{
    if (!g || !loom_dim_is_dynamic(d))
        return -1;
    int64_t h = d - LOOM__DYN_BASE, i = h & ((INT64_C(1) << LOOM__DYN_INDEX_BITS) - 1);
    return h >> LOOM__DYN_INDEX_BITS == g->dyn_tag && i < g->ndyn ? (int)i : -1;
}

int loom__dim_ok(const loom_graph *g, loom_dim d, int allow_dynamic, const char *what, char *why, size_t len)
{
    int k = loom__dyn_index(g, d);
    if (k >= 0 && allow_dynamic)
        return 1;
    if (k >= 0)
        snprintf(why, len, "%s is the dynamic dim %s, where only static sizes are allowed", what, g->dyn[k].name);
    else if (loom_dim_is_dynamic(d))
        snprintf(why, len, "%s is %s", what,
                 (d - LOOM__DYN_BASE) >> LOOM__DYN_INDEX_BITS != g->dyn_tag ? "a dynamic dim of another graph"
                                                                              : "not a dynamic dim of this graph");
    else if (d < 0)
        snprintf(why, len, "%s is %" PRId64 " (a size must be >= 0)", what, d);
    else
        return 1;
    return 0;
}

loom_dim loom_dim_dynamic(loom_graph *g, const char *name, int64_t bound)
{
    if (!g)
        return 0;
    if (!name || !*name || strlen(name) >= sizeof g->dyn[0].name) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_dim_dynamic: name must be 1 to %zu characters", sizeof g->dyn[0].name - 1);
        return 0;
    }
    if (bound < 0) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_dim_dynamic: bound of '%s' is %" PRId64 ", expected >= 0", name, bound);
        return 0;
    }
    if (g->ndyn >= 1 << LOOM__DYN_INDEX_BITS) {
        loom__fail(g, LOOM_ERR_INVALID, "loom_dim_dynamic: '%s' would be dynamic dim %d; a graph has at most %d", name,
                   g->ndyn + 1, 1 << LOOM__DYN_INDEX_BITS);
        return 0;
    }
    for (int i = 0; i < g->ndyn; i++)
        if (!strcmp(g->dyn[i].name, name)) {
            loom__fail(g, LOOM_ERR_INVALID, "loom_dim_dynamic: a dynamic dim named '%s' exists already", name);
            return 0;
        }
    loom__dyn_dim *d = realloc(g->dyn, (size_t)(g->ndyn + 1) * sizeof *d);
    if (!d) {
        loom__fail(g, LOOM_ERR_NOMEM, "loom_dim_dynamic: out of memory");
        return 0;
    }
    g->dyn = d;
    snprintf(d[g->ndyn].name, sizeof d[g->ndyn].name, "%s", name);
    d[g->ndyn].bound = bound;
    d[g->ndyn].part_bound = 0;
    return LOOM__DYN_BASE + (g->dyn_tag << LOOM__DYN_INDEX_BITS) + g->ndyn++;
}

int loom__dim_eq(loom_dim a, loom_dim b) { return a == b; }

int loom__shape_eq(const loom_shape *a, const loom_shape *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (!loom__dim_eq(a->d[i], b->d[i]))
            return 0;
    return 1;
}

int64_t loom__dim_bound(const loom_graph *g, loom_dim d)
{
    int i = loom__dyn_index(g, d);
    return i >= 0 ? g->dyn[i].bound : d;
}

double loom__shape_bound_elems(const loom_graph *g, const loom_shape *s)
{
    double n = 1;
    for (int i = 0; i < s->ndim; i++)
        n *= (double)loom__dim_bound(g, s->d[i]);
    return n;
}

int loom__axis(int axis, int ndim)
{
    if (axis < 0)
        axis += ndim;
    return axis >= 0 && axis < ndim ? axis : -1;
}

const char *loom__shape_str(const loom_graph *g, const loom_shape *s, char *buf, size_t len)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "[");
    for (int i = 0; i < s->ndim; i++) {
        const char *sep = i ? ", " : "";
        int k = loom__dyn_index(g, s->d[i]);
        if (k >= 0)
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%s", sep, g->dyn[k].name);
        else if (loom_dim_is_dynamic(s->d[i]))
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s?", sep); /* not a dim of g */
        else
            o += (size_t)snprintf(buf + o, o < len ? len - o : 0, "%s%" PRId64, sep, s->d[i]);
    }
    snprintf(buf + o, o < len ? len - o : 0, "]");
    return buf;
}


int loom__shape_ok(const loom_graph *g, const loom_shape *s, int allow_dynamic, char *why, size_t len)
{
    if (s->ndim < 0 || s->ndim > LOOM_MAX_DIMS) {
        snprintf(why, len, "%d dims (0 to %d allowed)", s->ndim, LOOM_MAX_DIMS);
        return 0;
    }
    for (int i = 0; i < s->ndim; i++) {
        char what[16];
        snprintf(what, sizeof what, "dim %d", i);
        if (!loom__dim_ok(g, s->d[i], allow_dynamic, what, why, len))
            return 0;
    }
    return 1;
}

int loom__size_fits(const loom_graph *g, loom_dtype dtype, loom__layout layout, const loom_shape *s, char *why, size_t len)
{
    int64_t b[LOOM_MAX_DIMS], rows;
    int dyn = 0, empty = 0;
    for (int i = 0; i < s->ndim; i++) {
        b[i] = loom__dim_bound(g, s->d[i]);
        dyn |= loom_dim_is_dynamic(s->d[i]);
        if (b[i] == 0 && layout == LOOM__DENSE)
            b[i] = 1, empty = 1;
    }
    double bytes = 0;
    if (layout == LOOM__CSR) {
        if (s->ndim != 2 || (!loom__add_size(b[0], 1, &rows) && !loom__mul_size(rows, sizeof(int32_t), &rows)))
            return 1;
        bytes = ((double)b[0] + 1) * sizeof(int32_t);
    } else {
        if (!loom__dense_size(dtype, s->ndim, b, NULL, NULL))
            return 1;
        bytes = (double)loom_dtype_size(dtype);
        for (int i = 0; i < s->ndim; i++)
            bytes *= (double)b[i];
    }
    char sb[128];
    snprintf(why, len, "%s of %s %s 2^%g bytes%s%s, over what an int64 byte count holds", loom__shape_str(g, s, sb, sizeof sb),
             loom_dtype_name(dtype), layout == LOOM__CSR ? "has a row pointer of" : empty ? "has strides of" : "is",
             round(log2(bytes) * 10) / 10, empty ? " (its dims but the zeros)" : "", dyn ? " at the bounds of its dynamic dims" : "");
    return 0;
}
