/* The traffic of one rank of a plan (see plan.h): the collectives its boxing tasks join and the
 * bytes its devices send, within their node and to other nodes, under a link model. A rank is a
 * node; a placement over ranks is a mesh [nodes N, devices of a node G].
 *
 * A boxing on such a mesh runs the route the cost model chose for it (cost_route.c): steps within
 * each node (level 1: groups of G devices), between nodes (level 0: groups of N devices, one a
 * node, G groups at once sharing each node's links) or over every device (flat); (P, P) -> (B, B)
 * on GPUs, a reduce-scatter in each node, an all-reduce of a device's 1/G between the nodes and an
 * all-gather in each node. The boxing counts as one collective (boxing_of), its steps summed. A collective of
 * the share S of the tensor that its group boxes, on a group of n devices, sends from each device
 * (ring collectives):
 *
 *   all-reduce                  2 (n-1)/n S     2 (n-1) ring steps
 *   all-gather, reduce-scatter  (n-1)/n S       n-1 ring steps
 *   all-to-all                  (n-1) S/n^2     n-1 steps
 *
 * within its node for a level-1 step, to other nodes for a level-0 step. Between N nodes an
 * all-reduce runs as a double binary tree instead when that takes less time (as NCCL's tuner
 * chooses): 2 S from each device over 2 floor(log2 N) steps; the cost model chooses its own
 * all-reduces between nodes by the same function (loom__net_coll_of), here on the link model's
 * figures. A flat step runs hierarchically: within each node, then between the nodes (each
 * device carrying 1/G of the node's share), then within each node again, each device sending
 *
 *   all-reduce                  2 (G-1)/G S in its node, 2 (N-1)/N S/G to other nodes (ring)
 *                                                        or 2 S/G (tree)
 *   all-gather, reduce-scatter  (G-1)/G S,               (N-1)/N S/G
 *   all-to-all                  (G-1) S/n^2,             (n-G) S/n^2
 *
 * A step takes what a device sends in its node / gpu_bw, plus what the node sends out (G times a
 * device's) / (links x link_bw), plus its steps' latencies (within a node gpu_latency, between
 * nodes node_latency); the steps of a boxing, and the boxings of a step, one after another. A
 * placement without ranks is one node; a 1-D one, of G devices, a flat step. */
#include "graphs/plan/plan.h"

#include "sbp/infer/cost.h"

#include <string.h>

/* What one device sends in step st of a boxing on a placement of n devices, G of them on each
 * node: within its node (*gpu) and to other nodes (*node); *tree when the step between the nodes
 * is a tree; returns the step's seconds on links m. */
static double step_traffic(const loom__box_step *st, int n, int G, const loom_link_model *m, double *gpu, double *node, int *tree)
{
    /* a level-1 step is a ring of the st->n devices of a node; a level-0 one a collective between
     * st->n nodes; a flat one both, G devices of N nodes */
    const int in_node = st->level == 0 ? 1 : st->level == 1 ? st->n : G, N = st->level == 0 ? st->n : st->level == 1 ? 1 : n / G;
    *gpu = loom__ring_bytes(st->kind, st->level < 0 ? loom__flat_node_share(st->kind, st->share, N) : st->share, in_node);
    loom__net_coll c =
        loom__net_coll_of(st->kind, st->level < 0 ? st->share / G : st->share, N, G, m->node_latency, m->node_links * m->link_bw);
    *node = c.bytes;
    *tree = c.tree;
    return *gpu / m->gpu_bw + loom__ring_steps(st->kind, in_node) * m->gpu_latency + c.seconds;
}

/* The collective of a boxing kind, or -1 for a local one. */
static int collective_of(loom__box_kind k)
{
    switch (k) {
    case LOOM__BOX_ALL_REDUCE:
        return LOOM_COLL_ALL_REDUCE;
    case LOOM__BOX_ALL_GATHER:
    case LOOM__BOX_GATHER_ZERO:
        return LOOM_COLL_ALL_GATHER;
    case LOOM__BOX_REDUCE_SCATTER:
        return LOOM_COLL_REDUCE_SCATTER;
    case LOOM__BOX_ALL_TO_ALL:
        return LOOM_COLL_ALL_TO_ALL;
    default:
        return -1;
    }
}

/* The collective of a boxing from `from` to `to`, which a step of its route may run in part: of
 * its levels' collectives, the first in loom_collective's order (P -> B on a level makes it an
 * all-reduce); -1 when every level is local. */
static int boxing_of(const loom__lay *from, const loom__lay *to)
{
    int c = -1;
    for (int l = 0; l < from->s.n; l++) {
        int cl = collective_of(loom__boxing(from->s.v[l], to->s.v[l]));
        c = cl >= 0 && (c < 0 || cl < c) ? cl : c;
    }
    return c;
}

/* 1 when position j of placement `place` is a device of the plan on rank `rank`. */
static int on_rank(const loom__plan *pl, int place, int j, int rank)
{
    int d = pl->place_dev[place][j];
    return d >= 0 && pl->dev_rank[d] == rank;
}

int loom__plan_traffic(const loom__plan *pl, int rank, const loom__cost_model *cost, const loom_link_model *m, loom_traffic *out)
{
    memset(out, 0, sizeof *out);
    out->rank = rank;
    out->ntasks = pl->ntasks;
    out->nodes = out->per_node = 1;
    for (int d = 0; d < pl->ndev; d++)
        out->ndevices += pl->dev_rank[d] == rank;
    if (!out->ndevices)
        return -1;
    for (int k = 0; k < pl->nplaces; k++)
        if (pl->place_n[k] > out->nodes * out->per_node)
            out->per_node = pl->place_per_rank[k], out->nodes = pl->place_n[k] / pl->place_per_rank[k];
    for (int i = 0; i < pl->ntasks; i++) {
        const loom__task *k = &pl->task[i];
        if (k->kind != LOOM__TASK_BOXING || pl->dev_rank[k->device] != rank)
            continue;
        const loom__regst *to = &pl->regst[k->out[0]];
        const loom__lay lf = loom__regst_lay(&pl->regst[k->in[0]]), lt = loom__regst_lay(to);
        const loom_tensor *t = loom__task_tensor(pl, k);
        int place = t->place < pl->nplaces ? t->place : 0, n = pl->place_n[place], G = pl->place_per_rank[place];
        loom__box_route r = {.nsteps = 1, .flat = 1};
        if (lf.s.n > 1 && lt.s.n > 1) /* a mesh [n / G, G]: the route the cost model takes */
            loom__box_route_plan(&lf.s, &lt.s, lf.mesh, loom__tensor_bytes(t), loom__route_axis(t, lf.mesh[1]), loom__tensor_ranks(t),
                                 &cost->dev[pl->kind], &r);
        else
            r.step[0] = (loom__box_step){.level = -1, .kind = loom__boxing(lf.s.v[0], lt.s.v[0]), .n = n, .share = loom__tensor_bytes(t)};
        /* its first part on the rank: the boxing counted there, once; one of a mesh's two levels
         * and one flat (a two-phase all-reduce over ranks: (P, P) -> S(i) -> (B, B)), flat */
        int first = 0, c = lf.s.n == lt.s.n ? boxing_of(&lf, &lt) : collective_of(r.step[0].kind);
        while (first < n && !on_rank(pl, place, first, rank))
            first++;
        if (c < 0)
            continue;
        const int once = to->part == first;
        int net = 0, tree = 0;
        out->count[c] += once;
        for (int j = 0; j < r.nsteps; j++) {
            const loom__box_step *st = &r.step[j];
            if (collective_of(st->kind) < 0)
                continue;
            double gpu, node;
            int st_tree;
            double sec = step_traffic(st, n, G, m, &gpu, &node, &st_tree);
            out->gpu_bytes[c] += gpu;
            out->node_bytes[c] += node;
            out->seconds[c] += once ? sec : 0;
            net |= node > 0;
            tree |= st_tree;
        }
        out->net_trees[c] += once && tree;
        out->net_rings[c] += once && net && !tree;
    }
    return 0;
}
