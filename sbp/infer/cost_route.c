/* The cost model on a 2-D mesh (see cost.h): a boxing between two SBPs of two levels is priced
 * along each route that can make it, and the cheapest is taken.
 *
 * A route is a sequence of 1-D boxings. A step on level 1 boxes, within each row of the mesh, the
 * row's share of the tensor (its level-0 part) among the row's devices: it is always valid. A
 * step on level 0 boxes, within each column, the column's share (its level-1 part) among the
 * column's devices: valid when level 1 is B or P, or splits an axis that neither of the step's
 * SBPs splits (a split of the same axis on both levels is nested, and the column's devices then
 * hold pieces of different shares). Routes: level 1 then level 0; level 0 then level 1; level 1 to
 * B, then level 0, then level 1 from B (always valid); and, when both SBPs are one value on both
 * levels ((S(0), S(0)), (B, B), (P, P)), one boxing over the whole mesh as if it were 1-D (flat).
 * On devices with links, also level 1 to S(a), then level 0 on each device's 1/columns of its
 * row's share, then level 1 from S(a) (a an axis the tensor splits over a row, when valid): the
 * hierarchical collective, (P, P) -> (B, B) a reduce-scatter within each row (a node), an
 * all-reduce of 1/columns of the tensor across the rows, an all-gather within each row.
 * Where the devices share memory an all-reduce step is priced in one phase, as the mesh's boxing
 * task runs it.
 *
 * On a placement over ranks the rows are nodes: a level-0 step is a collective between the nodes,
 * a ring or, for an all-reduce, a tree when cheaper (loom__net_coll_of), priced with the network's
 * figures (net_latency a step, net_bw the node's links, which its G devices' collectives share),
 * CPU devices too, as they share no memory across ranks; a level-1 step
 * is within one node's machine (on devices sharing memory, that node's row alone); the route
 * through S(a) is open to CPU devices as well; and a flat step runs hierarchically, as the
 * traffic of a rank counts it (graphs/plan/plan_traffic.c). */
#include "sbp/infer/cost.h"

#include "graphs/builder/graph.h"
#include "ops/sbp_sigs.h"

#include <stdio.h>
#include <string.h>

/* Adds to t the terms of `k` on a group of n devices holding a share of gb bytes, priced by the
 * device kind's figures (one machine's tasks: shared devices count their group's); returns the
 * bytes a device moves. */
static double group_terms(loom__box_kind k, double gb, int n, const loom__cost_dev *d, double *t)
{
    if (d->shared && k == LOOM__BOX_ALL_REDUCE && n > 1) { /* in one phase: a mesh's task sums its group's parts */
        t[LOOM__TERM_BOXES] += 1;
        t[LOOM__TERM_BOX_BYTES] += n * (n + 1) * gb;
        return (n + 1) * gb;
    }
    loom__box_terms(k, gb, n, d, t);
    return loom__box_bytes(k, gb, n, d);
}

static void add_terms(loom__box_route *r, const double *t, loom__box_step st)
{
    for (int i = 0; i < LOOM__COST_TERMS; i++)
        r->terms[i] += t[i];
    r->step[r->nsteps++] = st;
    r->bytes += st.bytes;
}

/* Adds step (level l, a -> b, the other level being `other`) to r; 0, or -1 when the step is
 * invalid. Over ranks (ranks 1) level 0 is between the nodes, and a machine holds one row. */
static int add_step(loom__box_route *r, int l, loom_sbp a, loom_sbp b, loom_sbp other, const int mesh[2], double bytes, int ranks,
                    const loom__cost_dev *d)
{
    if (loom_sbp_equal(a, b))
        return 0;
    if (l == 0 && other.kind == LOOM_SBP_SPLIT &&
        ((a.kind == LOOM_SBP_SPLIT && a.axis == other.axis) || (b.kind == LOOM_SBP_SPLIT && b.axis == other.axis)))
        return -1;
    int n = mesh[l], groups = mesh[1 - l];
    double gb = other.kind == LOOM_SBP_SPLIT ? bytes / groups : bytes; /* a group's share of the tensor */
    loom__box_kind k = loom__boxing(a, b);
    double t[LOOM__COST_TERMS] = {0}, moved;
    int tree = 0;
    if (ranks && l == 0 && !loom__box_local(k)) {
        loom__net_coll c = loom__net_terms(k, gb, n, groups, d, t);
        moved = c.bytes, tree = c.tree;
    } else {
        moved = group_terms(k, gb, n, d, t);
        if (d->shared) /* the groups' tasks on a machine at once, on its bandwidth: every group's, or over
                        * ranks a node's (its row; of a column, its device) */
            t[LOOM__TERM_BOX_BYTES] *= !ranks ? groups : l == 1 ? 1 : (double)groups / n;
    }
    add_terms(r, t, (loom__box_step){.level = l, .from = a, .to = b, .kind = k, .n = n, .tree = tree, .bytes = moved, .share = gb});
    return 0;
}

/* Adds the flat step a -> b over every device of the mesh to r. Over ranks it runs hierarchically:
 * within each node on the node's share (an all-to-all's within the node: T/N^2, a local one's
 * T/N), and between the nodes each device carrying 1/G of it. */
static void add_flat(loom__box_route *r, loom_sbp a, loom_sbp b, const int mesh[2], double bytes, int ranks, const loom__cost_dev *d)
{
    const int N = mesh[0], G = mesh[1];
    if (!ranks) {
        add_step(r, 0, a, b, loom_broadcast(), (const int[2]){N * G, 1}, bytes, 0, d);
        r->step[r->nsteps - 1].level = -1;
        return;
    }
    loom__box_kind k = loom__boxing(a, b);
    double t[LOOM__COST_TERMS] = {0};
    double moved = group_terms(k, loom__flat_node_share(k, bytes, N), G, d, t);
    loom__net_coll c = {0};
    if (!loom__box_local(k))
        c = loom__net_terms(k, bytes / G, N, G, d, t);
    add_terms(r, t,
              (loom__box_step){.level = -1, .from = a, .to = b, .kind = k, .n = N * G, .tree = c.tree, .bytes = moved + c.bytes, .share = bytes});
}

static int uniform(const loom_nd_sbp *s) { return loom_sbp_equal(s->v[0], s->v[1]); }

int loom__box_routes(const loom_nd_sbp *from, const loom_nd_sbp *to, const int mesh[2], double bytes, int axis, int ranks,
                     const loom__cost_dev *d, loom__box_route c[LOOM__BOX_ROUTES])
{
    int nc = 0;
    const loom_sbp a0 = from->v[0], a1 = from->v[1], b0 = to->v[0], b1 = to->v[1];
    if (uniform(from) && uniform(to)) { /* flat */
        c[nc] = (loom__box_route){.flat = 1};
        if (!loom_sbp_equal(a0, b0))
            add_flat(&c[nc], a0, b0, mesh, bytes, ranks, d);
        nc++;
    }
    c[nc] = (loom__box_route){0}; /* level 1, then level 0 */
    if (!add_step(&c[nc], 1, a1, b1, a0, mesh, bytes, ranks, d) && !add_step(&c[nc], 0, a0, b0, b1, mesh, bytes, ranks, d))
        nc++;
    c[nc] = (loom__box_route){0}; /* level 0, then level 1 */
    if (!add_step(&c[nc], 0, a0, b0, a1, mesh, bytes, ranks, d) && !add_step(&c[nc], 1, a1, b1, b0, mesh, bytes, ranks, d))
        nc++;
    c[nc] = (loom__box_route){0}; /* level 1 through B */
    add_step(&c[nc], 1, a1, loom_broadcast(), a0, mesh, bytes, ranks, d);
    add_step(&c[nc], 0, a0, b0, loom_broadcast(), mesh, bytes, ranks, d);
    add_step(&c[nc], 1, loom_broadcast(), b1, b0, mesh, bytes, ranks, d);
    nc++;
    if ((!d->shared || ranks) && axis >= 0) { /* level 1 through S(axis): the hierarchical collective of links */
        const loom_sbp sa = loom_split(axis);
        c[nc] = (loom__box_route){0};
        if (!add_step(&c[nc], 1, a1, sa, a0, mesh, bytes, ranks, d) && !add_step(&c[nc], 0, a0, b0, sa, mesh, bytes, ranks, d) &&
            !add_step(&c[nc], 1, sa, b1, b0, mesh, bytes, ranks, d))
            nc++;
    }
    for (int k = 0; k < nc; k++)
        c[k].seconds = loom__terms_seconds(c[k].terms, d);
    return nc;
}

int loom__route_axis(const loom_tensor *t, int n)
{
    for (int a = 0; t->layout == LOOM__DENSE && a < t->shape.ndim; a++)
        if (loom__sbp_can_split(&t->shape, a) && loom__dim_bound(t->graph, t->shape.d[a]) >= n)
            return a;
    return -1;
}

double loom__box_route_plan(const loom_nd_sbp *from, const loom_nd_sbp *to, const int mesh[2], double bytes, int axis, int ranks,
                            const loom__cost_dev *d, loom__box_route *best)
{
    *best = (loom__box_route){0};
    if (loom_nd_sbp_equal(from, to))
        return 0;
    loom__box_route c[LOOM__BOX_ROUTES];
    int nc = loom__box_routes(from, to, mesh, bytes, axis, ranks, d, c);
    for (int k = 0; k < nc; k++)
        if (k == 0 || c[k].seconds < best->seconds)
            *best = c[k];
    return best->seconds;
}

size_t loom__box_route_str(const loom__box_route *r, char *buf, size_t len)
{
    size_t o = 0;
    if (len)
        buf[0] = 0;
    for (int k = 0; k < r->nsteps; k++) {
        char a[24], b[24];
        loom_sbp_str(r->step[k].from, a, sizeof a);
        loom_sbp_str(r->step[k].to, b, sizeof b);
        const char *tree = r->step[k].tree ? ", a tree between the nodes" : "";
        int w = r->step[k].level < 0
                    ? snprintf(o < len ? buf + o : NULL, o < len ? len - o : 0, "%s%s %s -> %s over all %d devices%s", k ? ", then " : "",
                               loom__box_name(r->step[k].kind), a, b, r->step[k].n, tree)
                    : snprintf(o < len ? buf + o : NULL, o < len ? len - o : 0, "%s%s %s -> %s on level %d (groups of %d%s)",
                               k ? ", then " : "", loom__box_name(r->step[k].kind), a, b, r->step[k].level, r->step[k].n, tree);
        o += w > 0 ? (size_t)w : 0;
    }
    return o;
}
