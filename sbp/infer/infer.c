/* SBP inference (see infer.h), in numbered passes:
 *   1. leaves: the user's hint, else inputs S(0) along the batch and parameters B;
 *   2. ops in topological order: the signature of least boxing cost given the producers;
 *   3. refinement: each op again, counting its consumers' boxing as well.
 * On a 2-D mesh a signature is a pair, one of the op's 1-D signatures per level, and every pair is
 * weighed (boxing priced by route, sbp/infer/cost_route.c). */
#include "sbp/infer/infer.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/builder/graph.h"
#include "ops/sbp_sigs.h"

/* The candidates of t: its op's signatures and the all-broadcast one. An in-place update changes
 * its parameter where it lives, so its only signature is the parameter's own SBP for every source
 * (a replicated parameter updated in slices would no longer be replicated; a split one, as in
 * model parallelism, is updated in its parts). */
static int candidates(const loom__sbp_plan *pl, const loom_sbp *sbp, const loom_tensor *t, loom__sbp_sig *sigs)
{
    const loom_op_def *def = loom__op_def(t->op);
    if (t->op == LOOM_OP_MOVE) {
        /* the source stays as it is on its placement; the transfer lands in any SBP of the
         * destination: the source's own first (nothing to rearrange), then B, then each split */
        loom_sbp from = sbp[t->src[0]->id];
        int n = 0;
        if (from.kind != LOOM_SBP_PARTIAL_SUM)
            sigs[n].in[0] = from, sigs[n++].out = from;
        if (from.kind != LOOM_SBP_BROADCAST)
            sigs[n].in[0] = from, sigs[n++].out = loom_broadcast();
        for (int i = 0; i < t->shape.ndim && n < LOOM__MAX_SIGS; i++)
            if (loom__sbp_can_split(&t->shape, i) && !loom_sbp_equal(from, loom_split(i)))
                sigs[n].in[0] = from, sigs[n++].out = loom_split(i);
        return n;
    }
    if (def->flags & LOOM__OPF_INPLACE) {
        for (int i = 0; i < LOOM__MAX_SRC; i++)
            sigs[0].in[i] = sbp[t->src[0]->id];
        sigs[0].out = loom_broadcast(); /* no value of its own */
        return 1;
    }
    int listed = def->sbp ? def->sbp(t, sigs, LOOM__MAX_SIGS - 1) : 0, n = 0;
    for (int k = 0; k < listed; k++) { /* a list is written for float tensors: no P on others */
        int ok = sigs[k].out.kind != LOOM_SBP_PARTIAL_SUM || loom__sbp_can_partial(t);
        for (int i = 0; i < t->n_src && ok; i++)
            ok = sigs[k].in[i].kind != LOOM_SBP_PARTIAL_SUM || loom__sbp_can_partial(t->src[i]);
        if (ok)
            sigs[n++] = sigs[k];
    }
    loom__sbp_sig all_b;
    for (int i = 0; i < LOOM__MAX_SRC; i++)
        all_b.in[i] = loom_broadcast();
    all_b.out = loom_broadcast();
    sigs[n++] = all_b;
    if (pl->nparts[t->id] > 1 && loom__reads_local_index(t, 1)) { /* the index as fed, S(0), or nothing */
        int kept = 0;
        for (int k = 0; k < n; k++)
            if (loom_sbp_equal(sigs[k].in[1], loom_split(0)))
                sigs[kept++] = sigs[k];
        n = kept;
    }
    return n;
}

/* The boxing of source i of t into the SBP its signature (sig on level 0, sig1 on level 1) wants,
 * on the source's devices; the route into *r when r is not NULL. */
static double box_in(const loom__sbp_plan *pl, const loom_tensor *t, const loom__sbp_sig *sig, const loom__sbp_sig *sig1, int i,
                     const loom__cost_model *cm, loom__box_route *r)
{
    const loom_tensor *s = t->src[i];
    const loom__cost_dev *d = &cm->dev[loom__tensor_kind(s)];
    if (t->op == LOOM_OP_MOVE) { /* reads its source as it is (a move task, not a boxing) */
        if (r)
            *r = (loom__box_route){0};
        return 0;
    }
    if (loom__sbp_plan_2d(pl, s->id)) {
        loom_nd_sbp from = loom__sbp_plan_nd(pl, s->id), to = loom_nd_sbp_2d(sig->in[i], sig1->in[i]);
        loom__box_route tmp;
        return loom__box_route_plan(&from, &to, pl->mesh[s->id], loom__tensor_bytes(s), loom__route_axis(s, pl->mesh[s->id][1]),
                                    loom__tensor_ranks(s), d, r ? r : &tmp);
    }
    loom__box_kind k = loom__boxing(pl->sbp[s->id], sig->in[i]);
    double b = loom__tensor_bytes(s);
    if (r) {
        *r = (loom__box_route){0};
        if (k != LOOM__BOX_NONE) {
            r->step[r->nsteps++] = (loom__box_step){.from = pl->sbp[s->id], .to = sig->in[i], .kind = k, .n = pl->nparts[s->id],
                                                    .bytes = loom__box_bytes(k, b, pl->nparts[s->id], d)};
            r->bytes = r->step[0].bytes;
            loom__box_terms(k, b, pl->nparts[s->id], d, r->terms);
        }
    }
    return loom__box_seconds(k, b, pl->nparts[s->id], d);
}

double loom__sbp_plan_box(const loom__sbp_plan *pl, const loom_tensor *t, int i, const loom__cost_model *cm, loom__box_route *r)
{
    return box_in(pl, t, &pl->sig[t->id], pl->sig1 ? &pl->sig1[t->id] : &pl->sig[t->id], i, cm, r);
}

static double in_cost(const loom__sbp_plan *pl, const loom_tensor *t, const loom__sbp_sig *s, const loom__sbp_sig *s1,
                      const loom__cost_model *cm)
{
    double c = 0;
    for (int i = 0; i < t->n_src; i++)
        c += box_in(pl, t, s, s1, i, cm, NULL);
    return c;
}

/* Who reads each tensor: (consumer id, source slot) pairs, grouped by tensor, so that the
 * refinement pass stays linear in the graph. */
typedef struct consumers {
    int *start; /* by tensor id, end + 1 entries */
    int *id, *slot;
} consumers;

static int consumers_build(consumers *c, loom_graph *g, int end, const uint8_t *dead)
{
    int total = 0;
    c->start = calloc((size_t)end + 2, sizeof *c->start);
    for (int id = 0; c->start && id < end; id++)
        for (int i = 0; i < g->t[id]->n_src && !(dead && dead[id]); i++, total++)
            c->start[g->t[id]->src[i]->id + 1]++;
    c->id = malloc((size_t)total * sizeof *c->id + 1);
    c->slot = malloc((size_t)total * sizeof *c->slot + 1);
    int *fill = calloc((size_t)end + 1, sizeof *fill);
    if (!c->start || !c->id || !c->slot || !fill) {
        free(fill);
        return -1;
    }
    for (int id = 0; id < end; id++)
        c->start[id + 1] += c->start[id];
    for (int id = 0; id < end; id++)
        for (int i = 0; i < g->t[id]->n_src && !(dead && dead[id]); i++) {
            int s = g->t[id]->src[i]->id, at = c->start[s] + fill[s]++;
            c->id[at] = id;
            c->slot[at] = i;
        }
    free(fill);
    return 0;
}

static void consumers_free(consumers *c)
{
    free(c->start);
    free(c->id);
    free(c->slot);
}

/* Consumers' boxing if t's output were `out`, given their chosen signatures: once per SBP they
 * want, as the plan boxes a tensor once for every consumer that wants the same SBP
 * (graphs/plan/plan.c, parts_as). */
static double out_cost(const loom__sbp_plan *pl, const consumers *cs, const loom_tensor *t, loom_sbp out, loom_sbp out1,
                       const loom__cost_model *cm)
{
    enum { SEEN = 16 }; /* distinct SBPs remembered; past them, each consumer counts */
    loom_nd_sbp seen[SEEN];
    int nseen = 0, two = loom__sbp_plan_2d(pl, t->id), ranks = loom__tensor_ranks(t);
    double c = 0, b = loom__tensor_bytes(t);
    const loom__cost_dev *d = &cm->dev[loom__tensor_kind(t)];
    const loom_nd_sbp have = two ? loom_nd_sbp_2d(out, out1) : loom_nd_sbp_1d(out);
    for (int k = cs->start[t->id]; k < cs->start[t->id + 1]; k++) {
        const loom_nd_sbp want = loom__sbp_plan_want(pl, t->graph->t[cs->id[k]], cs->slot[k]);
        int again = 0;
        for (int j = 0; j < nseen && !again; j++)
            again = loom_nd_sbp_equal(&seen[j], &want);
        if (again)
            continue;
        if (nseen < SEEN)
            seen[nseen++] = want;
        loom__box_route r;
        c += two ? loom__box_route_plan(&have, &want, pl->mesh[t->id], b, loom__route_axis(t, pl->mesh[t->id][1]), ranks, d, &r)
                 : loom__box_seconds(loom__boxing(out, want.v[0]), b, pl->nparts[t->id], d);
    }
    return c;
}

void loom__sbp_plan_free(loom__sbp_plan *pl)
{
    if (!pl)
        return;
    free(pl->sbp);
    free(pl->sig);
    free(pl->cause);
    free(pl->nparts);
    free(pl->mesh);
    free(pl->sbp1);
    free(pl->sig1);
    *pl = (loom__sbp_plan){0};
}

static void list_sigs(const loom_tensor *t, const loom__sbp_sig *sigs, int ns, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = 0;
    for (int k = 0; k < ns && o < len; k++) {
        o += (size_t)snprintf(buf + o, len - o, "%s(", k ? ", " : "");
        for (int i = 0; i < t->n_src && o < len; i++) {
            char s[24];
            loom_sbp_str(sigs[k].in[i], s, sizeof s);
            o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", s);
        }
        char s[24];
        loom_sbp_str(sigs[k].out, s, sizeof s);
        if (o < len)
            o += (size_t)snprintf(buf + o, len - o, ") -> %s", s);
    }
}

/* Level-1 arrays and each tensor's mesh, when a placement of g is 2-D; 0, or -1 out of memory.
 * Tensors on 1-D placements have B on level 1 (a move from one onto a mesh starts from it). */
static int mesh_alloc(loom__sbp_plan *pl, loom_graph *g, int end)
{
    int any = 0;
    for (int k = 0; k < g->nplaces && !any; k++) {
        int dims[2];
        any = g->places[k] && loom_placement_hierarchy(g->places[k], dims) == 2;
    }
    if (!any)
        return 0;
    pl->mesh = calloc((size_t)end + 1, sizeof *pl->mesh);
    pl->sbp1 = calloc((size_t)end + 1, sizeof *pl->sbp1);
    pl->sig1 = calloc((size_t)end + 1, sizeof *pl->sig1);
    if (!pl->mesh || !pl->sbp1 || !pl->sig1)
        return -1;
    for (int id = 0; id < end; id++) {
        const loom_placement *p = g->t[id]->place < g->nplaces ? g->places[g->t[id]->place] : NULL;
        int dims[2];
        if (p && loom_placement_hierarchy(p, dims) == 2)
            memcpy(pl->mesh[id], dims, sizeof dims);
        else
            pl->sbp1[id] = loom_broadcast(); /* on a mesh, unset until chosen, as on level 0 */
    }
    return 0;
}

/* t's hint with a level per level of its placement (n 0: none): a one-level hint on a mesh holds
 * on both levels. */
static loom_nd_sbp hint(const loom__sbp_plan *pl, const loom_tensor *t)
{
    loom_nd_sbp h = t->sbp_hint;
    if (h.n == 1)
        h.v[1] = h.v[0];
    if (h.n)
        h.n = loom__sbp_plan_2d(pl, t->id) ? 2 : 1;
    return h;
}

loom_status loom__sbp_infer(loom_graph *g, int end, const uint8_t *dead, int n, const loom__cost_model *cm,
                            loom__sbp_plan *out, char *msg, size_t len)
{
    loom__sbp_plan pl = {.n = n, .ntensors = end, .dead = dead};
    pl.sbp = calloc((size_t)end + 1, sizeof *pl.sbp);
    pl.sig = calloc((size_t)end + 1, sizeof *pl.sig);
    pl.cause = calloc((size_t)end + 1, sizeof *pl.cause);
    pl.nparts = calloc((size_t)end + 1, sizeof *pl.nparts);
    if (!pl.sbp || !pl.sig || !pl.cause || !pl.nparts) {
        loom__sbp_plan_free(&pl);
        snprintf(msg, len, "out of memory");
        return LOOM_ERR_NOMEM;
    }
    loom__sbp_sig sigs[LOOM__MAX_SIGS], sigs1[LOOM__MAX_SIGS];
    consumers cs = {0};
    if (consumers_build(&cs, g, end, dead)) {
        consumers_free(&cs);
        loom__sbp_plan_free(&pl);
        snprintf(msg, len, "out of memory");
        return LOOM_ERR_NOMEM;
    }

    for (int id = 0; id < end; id++)
        pl.nparts[id] = loom__place_ndev(g, g->t[id]->place);
    if (mesh_alloc(&pl, g, end)) {
        consumers_free(&cs);
        loom__sbp_plan_free(&pl);
        snprintf(msg, len, "out of memory");
        return LOOM_ERR_NOMEM;
    }

    /* 1. leaves */
    for (int id = 0; id < end; id++) {
        loom_tensor *t = g->t[id];
        int n = pl.nparts[id];
        if (!(loom__op_def(t->op)->flags & LOOM__OPF_LEAF))
            continue;
        const char *why = "hint";
        loom_nd_sbp h = hint(&pl, t);
        loom_sbp s = h.v[0];
        if (!h.n) {
            int batch = t->op == LOOM_OP_INPUT && t->shape.ndim >= 1 &&
                        (loom__dyn_index(g, t->shape.d[0]) >= 0 || t->shape.d[0] >= n);
            s = batch ? loom_split(0) : loom_broadcast();
            h = loom_nd_sbp_2d(s, s);
            why = batch ? "input: split along the batch" : t->op == LOOM_OP_INPUT ? "input: too small to split"
                                                                                  : "parameter: broadcast";
        }
        pl.sbp[id] = s;
        pl.sig[id].out = s;
        if (loom__sbp_plan_2d(&pl, id))
            pl.sbp1[id] = pl.sig1[id].out = h.v[1];
        snprintf(pl.cause[id], sizeof pl.cause[id], "%s", why);
    }

    /* optimizer state lives like its parameter: whole, or in the same parts */
    for (int id = 0; id < end; id++) {
        const loom_tensor *u = g->t[id];
        if (!(loom__op_def(u->op)->flags & LOOM__OPF_INPLACE))
            continue;
        for (int i = 2; i < u->n_src; i++)
            if (u->src[i]->op == LOOM_OP_STATE) {
                pl.sbp[u->src[i]->id] = pl.sig[u->src[i]->id].out = pl.sbp[u->src[0]->id];
                if (pl.sbp1)
                    pl.sbp1[u->src[i]->id] = pl.sig1[u->src[i]->id].out = pl.sbp1[u->src[0]->id];
                snprintf(pl.cause[u->src[i]->id], sizeof pl.cause[0], "optimizer state: as its parameter");
            }
    }

    /* 2. ops, given their producers; 3. again, given their consumers too */
    for (int pass = 0; pass < 2; pass++) {
        for (int id = 0; id < end; id++) {
            loom_tensor *t = g->t[id];
            const loom_op_def *def = loom__op_def(t->op);
            if ((def->flags & LOOM__OPF_LEAF) || (dead && dead[id]))
                continue;
            int two = loom__sbp_plan_2d(&pl, id);
            int ns = candidates(&pl, pl.sbp, t, sigs), ns1 = two ? candidates(&pl, pl.sbp1, t, sigs1) : 1, best = -1, best1 = 0,
                exact = 0;
            const loom_nd_sbp h = hint(&pl, t);
            double best_cost = INFINITY;
            for (int k = 0; k < ns; k++)
                for (int k1 = 0; k1 < ns1; k1++) {
                    const loom__sbp_sig *s1 = two ? &sigs1[k1] : &sigs[k];
                    if (h.n && (!loom_sbp_equal(sigs[k].out, h.v[0]) || (two && !loom_sbp_equal(s1->out, h.v[1]))))
                        continue;
                    double in = in_cost(&pl, t, &sigs[k], s1, cm);
                    const loom__sbp_sig *pair[2] = {&sigs[k], s1};
                    double opc = two ? loom__op_terms_nd(t, pair, pl.mesh[id], cm, (double[LOOM__COST_TERMS]){0})
                                     : loom__op_seconds(t, &sigs[k], pl.nparts[id], cm);
                    double c = in + opc;
                    if (pass == 1)
                        c += out_cost(&pl, &cs, t, sigs[k].out, s1->out, cm);
                    if (c < best_cost) {
                        best_cost = c;
                        best = k;
                        best1 = k1;
                        exact = in == 0;
                    }
                }
            if (best < 0) {
                char have[160] = "", want[600], b[80];
                for (int i = 0; i < t->n_src; i++) {
                    loom_nd_sbp si = loom__sbp_plan_nd(&pl, t->src[i]->id);
                    loom_nd_sbp_str(&si, b, sizeof b);
                    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", b);
                }
                list_sigs(t, sigs, ns, want, sizeof want);
                loom_nd_sbp_str(&h, b, sizeof b);
                snprintf(msg, len, "%s '%s': no signature gives the requested %s (its sources are %s); valid%s: %s", def->name,
                         loom_tensor_name(t), b, have, two ? " on each level" : "", want);
                loom__sbp_plan_free(&pl);
                consumers_free(&cs);
                return LOOM_ERR_INVALID;
            }
            if (pass == 1 && !memcmp(&pl.sig[id], &sigs[best], sizeof sigs[best]) &&
                (!two || !memcmp(&pl.sig1[id], &sigs1[best1], sizeof sigs1[best1])))
                continue;
            pl.sig[id] = sigs[best];
            pl.sbp[id] = sigs[best].out;
            if (two) {
                pl.sig1[id] = sigs1[best1];
                pl.sbp1[id] = sigs1[best1].out;
            }
            snprintf(pl.cause[id], sizeof pl.cause[id], "%s",
                     h.n                 ? "hint"
                     : pass == 1         ? "refined for its consumers"
                     : exact             ? "matches its sources"
                                         : "least boxing");
        }
    }

    for (int id = 0; id < end; id++)
        for (int i = 0; i < g->t[id]->n_src && !(dead && dead[id]); i++) {
            loom__box_route r;
            pl.box_seconds += loom__sbp_plan_box(&pl, g->t[id], i, cm, &r);
            pl.box_bytes += r.bytes;
        }
    consumers_free(&cs);
    *out = pl;
    return LOOM_OK;
}

/* The terms of op t on one of its devices under its signature (both levels on a mesh). */
static double op_terms(const loom__sbp_plan *pl, const loom_tensor *t, const loom__cost_model *cm, double *terms)
{
    if (!loom__sbp_plan_2d(pl, t->id))
        return loom__op_terms(t, &pl->sig[t->id], pl->nparts[t->id], cm, terms);
    const loom__sbp_sig *pair[2] = {&pl->sig[t->id], &pl->sig1[t->id]};
    return loom__op_terms_nd(t, pair, pl->mesh[t->id], cm, terms);
}

/* Op t's signature, both levels on a mesh: "(S(0), B) -> S(0)", "((S(0), B), (B, S(1))) -> (S(0), S(1))". */
static void sig_str(const loom__sbp_plan *pl, const loom_tensor *t, char *sig, size_t len)
{
    char b[80];
    size_t o = 0;
    sig[0] = 0;
    if (!(loom__op_def(t->op)->flags & LOOM__OPF_LEAF)) {
        o += (size_t)snprintf(sig + o, len - o, "(");
        for (int i = 0; i < t->n_src && o < len; i++) {
            loom_nd_sbp w = loom__sbp_plan_2d(pl, t->id) && t->op != LOOM_OP_MOVE
                                ? loom_nd_sbp_2d(pl->sig[t->id].in[i], pl->sig1[t->id].in[i])
                                : loom__sbp_plan_want(pl, t, i);
            loom_nd_sbp_str(&w, b, sizeof b);
            o += (size_t)snprintf(sig + o, len - o, "%s%s", i ? ", " : "", b);
        }
        if (o < len)
            o += (size_t)snprintf(sig + o, len - o, ") -> ");
    }
    loom_nd_sbp out = loom__sbp_plan_nd(pl, t->id);
    loom_nd_sbp_str(&out, b, sizeof b);
    if (o < len)
        snprintf(sig + o, len - o, "%s", b);
}

enum { SLOTS = LOOM_DEVICE_KIND_COUNT * LOOM__COST_DEVICES };

/* A pipeline's stages: each device slot's (the placements in the order the passes, ids before upd,
 * first reach them, as the plan cuts its stages; -1 for a slot no tensor is on); returns their
 * number, and in *ndev the devices of them all. */
static int stages_of(const loom__sbp_plan *pl, loom_graph *g, int upd, int stage[SLOTS], int *ndev)
{
    int nst = 0, last = -1;
    *ndev = 0;
    for (int k = 0; k < SLOTS; k++)
        stage[k] = -1;
    for (int id = 0; id < upd && g->places; id++) {
        const loom_tensor *t = g->t[id];
        if ((pl->dead && pl->dead[id]) || t->place == last)
            continue;
        last = t->place;
        const loom_placement *q = g->places[t->place];
        size_t base = (size_t)loom__tensor_kind(t) * LOOM__COST_DEVICES;
        int added = 0;
        for (int j = 0; j < loom_placement_ndevices(q); j++) {
            int *s = &stage[base + (size_t)loom_placement_device(q, j, NULL)];
            if (*s < 0)
                *s = nst, added = 1, ++*ndev;
        }
        nst += added;
    }
    return nst ? nst : 1;
}

/* The step of a pipeline (cost.h) into out: dev holds by slot the terms of its passes (ops, then
 * boxing), of its updates (the same), of its passes' ops with every device of the pipeline
 * running at once, then their boxing, and of a micro-batch's gradient sums, alone and with every
 * device running. */
static void pipelined(const int stage[SLOTS], int nst, int micro, const double (*dev)[8 * LOOM__COST_TERMS],
                      const loom__cost_model *cm, loom__prediction *out)
{
    double alone[SLOTS] = {0}, busy[SLOTS] = {0}; /* by stage: a micro-batch's seconds */
    for (size_t k = 0; k < SLOTS; k++) {
        const loom__cost_dev *d = &cm->dev[k / LOOM__COST_DEVICES];
        int s = stage[k] < 0 ? 0 : stage[k];
        double pass[LOOM__COST_TERMS], upd[LOOM__COST_TERMS], all[LOOM__COST_TERMS];
        for (int j = 0; j < LOOM__COST_TERMS; j++) {
            pass[j] = dev[k][j] + dev[k][LOOM__COST_TERMS + j];
            upd[j] = dev[k][2 * LOOM__COST_TERMS + j] + dev[k][3 * LOOM__COST_TERMS + j];
            all[j] = dev[k][4 * LOOM__COST_TERMS + j] + dev[k][5 * LOOM__COST_TERMS + j];
        }
        double a = loom__terms_seconds(pass, d) + loom__terms_seconds(dev[k] + 6 * LOOM__COST_TERMS, d),
               b = loom__terms_seconds(all, d) + loom__terms_seconds(dev[k] + 7 * LOOM__COST_TERMS, d),
               u = loom__terms_seconds(upd, d);
        alone[s] = a > alone[s] ? a : alone[s];
        busy[s] = b > busy[s] ? b : busy[s];
        out->update = u > out->update ? u : out->update;
    }
    for (int s = 0; s < nst; s++) {
        out->fill += alone[s];
        out->period = busy[s] > out->period ? busy[s] : out->period;
    }
    out->micro = micro;
    out->stages = nst;
    out->seconds = out->fill + (micro - 1) * out->period + out->update + out->step;
}

void loom__sbp_plan_predict(const loom__sbp_plan *pl, loom_graph *g, int end, int micro, int upd,
                            const loom__cost_model *cm, loom__prediction *out)
{
    /* by kind and device index: the terms of its ops (0 .. COST_TERMS) and of its boxing after,
     * those of the passes, then those of the updates (from upd: with micro-batches); then (with
     * micro-batches) its passes' ops and boxing with every device of the pipeline busy, and a
     * micro-batch's gradient sums alone and busy */
    double (*dev)[8 * LOOM__COST_TERMS] = calloc(SLOTS, sizeof *dev);
    double *done = calloc((size_t)end + 1, sizeof *done); /* when each tensor is ready on the longest chain */
    *out = (loom__prediction){.micro = 1, .stages = 1};
    if (!dev || !done) {
        free(dev);
        free(done);
        out->seconds = NAN;
        return;
    }
    micro = micro > 1 ? micro : 1;
    upd = micro > 1 && upd < end ? upd : end;
    int stage[SLOTS], nst = 1, running = 0;
    loom__cost_model busy = *cm; /* a pipeline's devices all at work (cost.h) */
    if (micro > 1) {
        nst = stages_of(pl, g, upd, stage, &running);
        for (int k = 0; k < LOOM_DEVICE_KIND_COUNT; k++)
            busy.dev[k].running = running;
    }
    for (int id = 0; id < end; id++) {
        const loom_tensor *t = g->t[id];
        if (pl->dead && pl->dead[id])
            continue;
        double op[LOOM__COST_TERMS] = {0}, in[LOOM__COST_TERMS] = {0}, start = 0;
        for (int i = 0; i < t->n_src; i++) {
            const loom_tensor *s = t->src[i];
            loom__box_route r;
            loom__sbp_plan_box(pl, t, i, cm, &r);
            double sec = loom__terms_seconds(r.terms, &cm->dev[loom__tensor_kind(s)]);
            for (int j = 0; j < LOOM__COST_TERMS; j++)
                in[j] += r.terms[j];
            if (done[s->id] + sec > start)
                start = done[s->id] + sec;
        }
        done[id] = start + op_terms(pl, t, cm, op);
        if (done[id] > out->chain)
            out->chain = done[id];
        const loom_placement *q = g->places ? g->places[t->place] : NULL;
        size_t base = (size_t)loom__tensor_kind(t) * LOOM__COST_DEVICES;
        for (int j = 0; j < pl->nparts[id]; j++) {
            int rank = 0, index = q ? loom_placement_device(q, j, &rank) : 0;
            if (q && rank != loom_placement_rank(q, 0))
                continue; /* its other ranks' devices, of the same index, run alike at once */
            double *slot = dev[base + (size_t)index], *d = slot + (id < upd ? 0 : 2 * LOOM__COST_TERMS);
            for (int k = 0; k < LOOM__COST_TERMS; k++) {
                d[k] += op[k];
                d[LOOM__COST_TERMS + k] += in[k];
            }
            if (id < upd && micro > 1) {
                op_terms(pl, t, &busy, slot + 4 * LOOM__COST_TERMS);
                for (int k = 0; k < LOOM__COST_TERMS; k++)
                    slot[5 * LOOM__COST_TERMS + k] += in[k];
            }
            if (micro > 1 && t->op == LOOM_OP_PARAM) { /* its gradient summed once a micro-batch */
                double b = loom__tensor_bytes(t) / (pl->sbp[id].kind == LOOM_SBP_SPLIT ? pl->nparts[id] : 1);
                const loom_device_kind kind = loom__tensor_kind(t);
                loom__acc_terms(b, pl->nparts[id], &cm->dev[kind], slot + 6 * LOOM__COST_TERMS);
                loom__acc_terms(b, pl->nparts[id], &busy.dev[kind], slot + 7 * LOOM__COST_TERMS);
            }
        }
    }
    for (size_t k = 0; k < SLOTS; k++) {
        const loom__cost_dev *d = &cm->dev[k / LOOM__COST_DEVICES];
        double op[LOOM__COST_TERMS], in[LOOM__COST_TERMS];
        for (int j = 0; j < LOOM__COST_TERMS; j++) {
            op[j] = dev[k][j] + dev[k][2 * LOOM__COST_TERMS + j];
            in[j] = dev[k][LOOM__COST_TERMS + j] + dev[k][3 * LOOM__COST_TERMS + j];
        }
        double ops = loom__terms_seconds(op, d), box = loom__terms_seconds(in, d);
        if (ops + box > out->busiest) {
            out->busiest = ops + box;
            out->compute = ops;
            out->boxing = box;
            out->kind = (loom_device_kind)(k / LOOM__COST_DEVICES);
            for (int j = 0; j < LOOM__COST_TERMS; j++)
                out->terms[j] = op[j] + in[j];
        }
    }
    out->terms[LOOM__TERM_STEPS] = 1;
    out->step = cm->dev[out->kind].step_latency;
    out->seconds = (out->busiest > out->chain ? out->busiest : out->chain) + out->step;
    if (micro > 1)
        pipelined(stage, nst, micro, (const double(*)[8 * LOOM__COST_TERMS])dev, cm, out);
    free(dev);
    free(done);
}

/* Seconds as text: microseconds below a millisecond, else milliseconds. */
static const char *secs(double s, char *buf, size_t len)
{
    if (s < 1e-3)
        snprintf(buf, len, "%.1f us", s * 1e6);
    else
        snprintf(buf, len, "%.3f ms", s * 1e3);
    return buf;
}

void loom__sbp_plan_print(const loom__sbp_plan *pl, loom_graph *g, int end, int micro, int upd, const loom__cost_model *cm,
                          FILE *f)
{
    char sh[96], c1[24], c2[24], c3[24];
    fprintf(f, "%-5s %-26s %-22s %-20s %-28s %-11s %-11s %s\n", "id", "op", "tensor", "shape", "signature", "op", "boxing",
            "why");
    for (int id = 0; id < end; id++) {
        const loom_tensor *t = g->t[id];
        if (pl->dead && pl->dead[id])
            continue; /* never runs */
        char sig[200];
        sig_str(pl, t, sig, sizeof sig);
        double in = 0, op = op_terms(pl, t, cm, (double[LOOM__COST_TERMS]){0});
        for (int i = 0; i < t->n_src; i++)
            in += loom__sbp_plan_box(pl, t, i, cm, NULL);
        fprintf(f, "%-5d %-26s %-22.22s %-20s %-28s %-11s %-11s %s\n", id, loom__op_def(t->op)->name, loom_tensor_name(t),
                loom__shape_str(g, &t->shape, sh, sizeof sh), sig, op > 0 ? secs(op, c1, sizeof c1) : "-",
                in > 0 ? secs(in, c2, sizeof c2) : "-", pl->cause ? pl->cause[id] : "one device");
    }
    fprintf(f, "\nboxing:\n");
    int nbox = 0;
    for (int id = 0; id < end; id++)
        for (int i = 0; i < g->t[id]->n_src && !(pl->dead && pl->dead[id]); i++) {
            const loom_tensor *s = g->t[id]->src[i];
            loom__box_route r;
            double sec = loom__sbp_plan_box(pl, g->t[id], i, cm, &r);
            if (!r.nsteps)
                continue;
            char from[80], to[80], route[400];
            loom_nd_sbp have = loom__sbp_plan_nd(pl, s->id), want = loom__sbp_plan_want(pl, g->t[id], i);
            loom_nd_sbp_str(&have, from, sizeof from);
            loom_nd_sbp_str(&want, to, sizeof to);
            double bytes = loom__tensor_bytes(s);
            const loom__cost_dev *d = &cm->dev[loom__tensor_kind(s)];
            if (loom__sbp_plan_2d(pl, s->id)) {
                loom__box_route_str(&r, route, sizeof route);
                fprintf(f, "  %-26s %s -> %s of '%s' (tensor %d, %.0f bytes) for %s (tensor %d): %s; %.0f bytes %s per device, %s\n",
                        r.flat ? "flat" : "hierarchical", from, to, loom_tensor_name(s), s->id, bytes,
                        loom__op_def(g->t[id]->op)->name, id, route, r.bytes, d->shared ? "read and written" : "sent",
                        secs(sec, c1, sizeof c1));
                nbox++;
                continue;
            }
            fprintf(f, "  %-26s %s -> %s of '%s' (tensor %d, %.0f bytes) for %s (tensor %d): %.0f bytes %s per device, %s\n",
                    loom__box_name(r.step[0].kind), from, to, loom_tensor_name(s), s->id, bytes, loom__op_def(g->t[id]->op)->name, id,
                    r.bytes, d->shared ? "read and written" : "sent", secs(sec, c1, sizeof c1));
            nbox++;
        }
    if (!nbox)
        fprintf(f, "  none\n");
    loom__prediction pr;
    loom__sbp_plan_predict(pl, g, end, micro, upd, cm, &pr);
    fprintf(f, "%d boxing ops; %.0f bytes moved per device per step\n", nbox, pl->box_bytes);
    fprintf(f, "predicted step: %s (busiest device: ops %s", secs(pr.seconds, c1, sizeof c1), secs(pr.compute, c2, sizeof c2));
    fprintf(f, ", boxing %s; longest chain %s; ", secs(pr.boxing, c1, sizeof c1), secs(pr.chain, c2, sizeof c2));
    fprintf(f, "per step %s) under the %s cost model\n", secs(pr.step, c1, sizeof c1), cm->source);
    if (pr.micro > 1)
        fprintf(f, "pipelined: %d micro-batches through %d stage%s: %s to fill, %s a micro-batch after, updates %s\n", pr.micro,
                pr.stages, pr.stages == 1 ? "" : "s", secs(pr.fill, c1, sizeof c1), secs(pr.period, c2, sizeof c2),
                secs(pr.update, c3, sizeof c3));
}

void loom__sbp_plan_dot(const loom__sbp_plan *pl, loom_graph *g, int end, FILE *f)
{
    char b[80];
    fprintf(f, "digraph loom_plan {\n  rankdir=TB;\n  node [shape=box, fontsize=10];\n");
    for (int d = 0; d < pl->n; d++) {
        fprintf(f, "  subgraph cluster_dev%d {\n    label=\"device %d\";\n    style=rounded;\n", d, d);
        for (int id = 0; id < end; id++) {
            if ((pl->dead && pl->dead[id]) || d >= pl->nparts[id])
                continue; /* dead, or on a placement of fewer devices */
            loom_nd_sbp nd = loom__sbp_plan_nd(pl, id);
            loom_nd_sbp_str(&nd, b, sizeof b);
            fprintf(f, "    t%d_%d [label=\"%s\\n%s\\n%s\"];\n", id, d, loom__op_def(g->t[id]->op)->name,
                    loom_tensor_name(g->t[id]), b);
        }
        fprintf(f, "  }\n");
    }
    for (int id = 0; id < end; id++)
        for (int i = 0; i < g->t[id]->n_src && !(pl->dead && pl->dead[id]); i++) {
            int s = g->t[id]->src[i]->id;
            loom_nd_sbp have = loom__sbp_plan_nd(pl, s), want = loom__sbp_plan_want(pl, g->t[id], i);
            loom__box_kind k = have.n == 1 ? loom__boxing(have.v[0], want.v[0]) : LOOM__BOX_NONE;
            int boxed = !loom_nd_sbp_equal(&have, &want);
            if (!boxed && g->t[id]->op != LOOM_OP_MOVE) {
                for (int d = 0; d < pl->nparts[id]; d++)
                    fprintf(f, "  t%d_%d -> t%d_%d;\n", s, d, id, d);
                continue;
            }
            fprintf(f, "  box%d_%d [label=\"%s\", color=red, fontcolor=red, shape=hexagon];\n", id, i,
                    !boxed ? "move" : have.n == 1 ? loom__box_name(k) : "hierarchical boxing");
            for (int d = 0; d < pl->nparts[s]; d++)
                fprintf(f, "  t%d_%d -> box%d_%d [color=red];\n", s, d, id, i);
            for (int d = 0; d < pl->nparts[id]; d++)
                fprintf(f, "  box%d_%d -> t%d_%d [color=red];\n", id, i, id, d);
        }
    fprintf(f, "}\n");
}
