/* SBP inference (see infer.h), in numbered passes:
 *   1. leaves: the user's hint, else inputs S(0) along the batch and parameters B;
 *   2. ops in topological order: the signature of least boxing cost given the producers;
 *   3. refinement: each op again, counting its consumers' boxing as well. */
#include "sbp/infer/infer.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graphs/builder/graph.h"
#include "ops/sbp_sigs.h"

static int is_set(loom_sbp s) { return s.kind != LOOM_SBP_UNSET; }

/* The candidates of t: its op's signatures and the all-broadcast one. An in-place update changes
 * its parameter where it lives, so its only signature is the parameter's own SBP for every source
 * (a replicated parameter updated in slices would no longer be replicated; a split one, as in
 * model parallelism, is updated in its parts). */
static int candidates(const loom__sbp_plan *pl, const loom_tensor *t, loom__sbp_sig *sigs)
{
    const loom_op_def *def = loom__op_def(t->op);
    if (t->op == LOOM_OP_MOVE) {
        /* the source stays as it is on its placement; the transfer lands in any SBP of the
         * destination: the source's own first (nothing to rearrange), then B, then each split */
        loom_sbp from = pl->sbp[t->src[0]->id];
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
            sigs[0].in[i] = pl->sbp[t->src[0]->id];
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

/* The boxing of source i of t into the SBP sig wants, on the source's devices. */
static double box_in(const loom__sbp_plan *pl, const loom_tensor *t, const loom__sbp_sig *sig, int i, const loom__cost_model *cm)
{
    const loom_tensor *s = t->src[i];
    return loom__box_seconds(loom__boxing(pl->sbp[s->id], sig->in[i]), loom__tensor_bytes(s), pl->nparts[s->id],
                             &cm->dev[loom__tensor_kind(s)]);
}

static double in_cost(const loom__sbp_plan *pl, const loom_tensor *t, const loom__sbp_sig *s, const loom__cost_model *cm)
{
    double c = 0;
    for (int i = 0; i < t->n_src; i++)
        c += box_in(pl, t, s, i, cm);
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
static double out_cost(const loom__sbp_plan *pl, const consumers *cs, const loom_tensor *t, loom_sbp out,
                       const loom__cost_model *cm)
{
    enum { SEEN = 16 }; /* distinct SBPs remembered; past them, each consumer counts */
    loom_sbp seen[SEEN];
    int nseen = 0;
    double c = 0, b = loom__tensor_bytes(t);
    const loom__cost_dev *d = &cm->dev[loom__tensor_kind(t)];
    for (int k = cs->start[t->id]; k < cs->start[t->id + 1]; k++) {
        const loom_sbp want = pl->sig[cs->id[k]].in[cs->slot[k]];
        int again = 0;
        for (int j = 0; j < nseen && !again; j++)
            again = loom_sbp_equal(seen[j], want);
        if (again)
            continue;
        if (nseen < SEEN)
            seen[nseen++] = want;
        c += loom__box_seconds(loom__boxing(out, want), b, pl->nparts[t->id], d);
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
    loom__sbp_sig sigs[LOOM__MAX_SIGS];
    consumers cs = {0};
    if (consumers_build(&cs, g, end, dead)) {
        consumers_free(&cs);
        loom__sbp_plan_free(&pl);
        snprintf(msg, len, "out of memory");
        return LOOM_ERR_NOMEM;
    }

    for (int id = 0; id < end; id++)
        pl.nparts[id] = loom__place_ndev(g, g->t[id]->place);

    /* 1. leaves */
    for (int id = 0; id < end; id++) {
        loom_tensor *t = g->t[id];
        int n = pl.nparts[id];
        if (!(loom__op_def(t->op)->flags & LOOM__OPF_LEAF))
            continue;
        const char *why = "hint";
        loom_sbp s = t->sbp_hint;
        if (!is_set(s)) {
            int batch = t->op == LOOM_OP_INPUT && t->shape.ndim >= 1 &&
                        (loom__dyn_index(g, t->shape.d[0]) >= 0 || t->shape.d[0] >= n);
            s = batch ? loom_split(0) : loom_broadcast();
            why = batch ? "input: split along the batch" : t->op == LOOM_OP_INPUT ? "input: too small to split"
                                                                                  : "parameter: broadcast";
        }
        pl.sbp[id] = s;
        pl.sig[id].out = s;
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
            int ns = candidates(&pl, t, sigs), best = -1, exact = 0;
            double best_cost = INFINITY;
            for (int k = 0; k < ns; k++) {
                if (is_set(t->sbp_hint) && !loom_sbp_equal(sigs[k].out, t->sbp_hint))
                    continue;
                double in = in_cost(&pl, t, &sigs[k], cm);
                double c = in + loom__op_seconds(t, &sigs[k], pl.nparts[id], cm);
                if (pass == 1)
                    c += out_cost(&pl, &cs, t, sigs[k].out, cm);
                if (c < best_cost) {
                    best_cost = c;
                    best = k;
                    exact = in == 0;
                }
            }
            if (best < 0) {
                char have[160] = "", want[600], b[24];
                for (int i = 0; i < t->n_src; i++) {
                    loom_sbp_str(pl.sbp[t->src[i]->id], b, sizeof b);
                    snprintf(have + strlen(have), sizeof have - strlen(have), "%s%s", i ? ", " : "", b);
                }
                list_sigs(t, sigs, ns, want, sizeof want);
                loom_sbp_str(t->sbp_hint, b, sizeof b);
                snprintf(msg, len, "%s '%s': no signature gives the requested %s (its sources are %s); valid: %s", def->name,
                         loom_tensor_name(t), b, have, want);
                loom__sbp_plan_free(&pl);
                consumers_free(&cs);
                return LOOM_ERR_INVALID;
            }
            if (pass == 1 && !memcmp(&pl.sig[id], &sigs[best], sizeof sigs[best]))
                continue;
            pl.sig[id] = sigs[best];
            pl.sbp[id] = sigs[best].out;
            snprintf(pl.cause[id], sizeof pl.cause[id], "%s",
                     is_set(t->sbp_hint) ? "hint"
                     : pass == 1         ? "refined for its consumers"
                     : exact             ? "matches its sources"
                                         : "least boxing");
        }
    }

    for (int id = 0; id < end; id++)
        for (int i = 0; i < g->t[id]->n_src && !(dead && dead[id]); i++) {
            const loom_tensor *s = g->t[id]->src[i];
            loom__box_kind k = loom__boxing(pl.sbp[s->id], pl.sig[id].in[i]);
            pl.box_bytes += loom__box_bytes(k, loom__tensor_bytes(s), pl.nparts[s->id], &cm->dev[loom__tensor_kind(s)]);
            pl.box_seconds += box_in(&pl, g->t[id], &pl.sig[id], i, cm);
        }
    consumers_free(&cs);
    *out = pl;
    return LOOM_OK;
}

void loom__sbp_plan_predict(const loom__sbp_plan *pl, loom_graph *g, int end, const loom__cost_model *cm,
                            loom__prediction *out)
{
    enum { SLOTS = LOOM_DEVICE_KIND_COUNT * LOOM__COST_DEVICES };
    /* by kind and device index: the terms of its ops (0 .. COST_TERMS) and of its boxing after */
    double (*dev)[2 * LOOM__COST_TERMS] = calloc(SLOTS, sizeof *dev);
    double *done = calloc((size_t)end + 1, sizeof *done); /* when each tensor is ready on the longest chain */
    *out = (loom__prediction){0};
    if (!dev || !done) {
        free(dev);
        free(done);
        out->seconds = NAN;
        return;
    }
    for (int id = 0; id < end; id++) {
        const loom_tensor *t = g->t[id];
        if (pl->dead && pl->dead[id])
            continue;
        double op[LOOM__COST_TERMS] = {0}, in[LOOM__COST_TERMS] = {0}, start = 0;
        for (int i = 0; i < t->n_src; i++) {
            const loom_tensor *s = t->src[i];
            double b[LOOM__COST_TERMS] = {0};
            loom__box_terms(loom__boxing(pl->sbp[s->id], pl->sig[id].in[i]), loom__tensor_bytes(s), pl->nparts[s->id],
                            &cm->dev[loom__tensor_kind(s)], b);
            double sec = loom__terms_seconds(b, &cm->dev[loom__tensor_kind(s)]);
            for (int j = 0; j < LOOM__COST_TERMS; j++)
                in[j] += b[j];
            if (done[s->id] + sec > start)
                start = done[s->id] + sec;
        }
        done[id] = start + loom__op_terms(t, &pl->sig[id], pl->nparts[id], cm, op);
        if (done[id] > out->chain)
            out->chain = done[id];
        const loom_placement *q = g->places ? g->places[t->place] : NULL;
        size_t base = (size_t)loom__tensor_kind(t) * LOOM__COST_DEVICES;
        for (int j = 0; j < pl->nparts[id]; j++) {
            double *d = dev[base + (size_t)(q ? loom_placement_device(q, j, NULL) : 0)];
            for (int k = 0; k < LOOM__COST_TERMS; k++) {
                d[k] += op[k];
                d[LOOM__COST_TERMS + k] += in[k];
            }
        }
    }
    for (size_t k = 0; k < SLOTS; k++) {
        const loom__cost_dev *d = &cm->dev[k / LOOM__COST_DEVICES];
        double ops = loom__terms_seconds(dev[k], d), box = loom__terms_seconds(dev[k] + LOOM__COST_TERMS, d);
        if (ops + box > out->busiest) {
            out->busiest = ops + box;
            out->compute = ops;
            out->boxing = box;
            out->kind = (loom_device_kind)(k / LOOM__COST_DEVICES);
            for (int j = 0; j < LOOM__COST_TERMS; j++)
                out->terms[j] = dev[k][j] + dev[k][LOOM__COST_TERMS + j];
        }
    }
    out->terms[LOOM__TERM_STEPS] = 1;
    out->step = cm->dev[out->kind].step_latency;
    out->seconds = (out->busiest > out->chain ? out->busiest : out->chain) + out->step;
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

void loom__sbp_plan_print(const loom__sbp_plan *pl, loom_graph *g, int end, const loom__cost_model *cm, FILE *f)
{
    char b[32], sh[96], c1[24], c2[24];
    fprintf(f, "%-5s %-26s %-22s %-20s %-28s %-11s %-11s %s\n", "id", "op", "tensor", "shape", "signature", "op", "boxing",
            "why");
    for (int id = 0; id < end; id++) {
        const loom_tensor *t = g->t[id];
        if (pl->dead && pl->dead[id])
            continue; /* never runs */
        char sig[160] = "";
        size_t o = 0;
        if (!(loom__op_def(t->op)->flags & LOOM__OPF_LEAF)) {
            o += (size_t)snprintf(sig + o, sizeof sig - o, "(");
            for (int i = 0; i < t->n_src && o < sizeof sig; i++) {
                loom_sbp_str(pl->sig[id].in[i], b, sizeof b);
                o += (size_t)snprintf(sig + o, sizeof sig - o, "%s%s", i ? ", " : "", b);
            }
            if (o < sizeof sig)
                o += (size_t)snprintf(sig + o, sizeof sig - o, ") -> ");
        }
        loom_sbp_str(pl->sbp[id], b, sizeof b);
        if (o < sizeof sig)
            snprintf(sig + o, sizeof sig - o, "%s", b);
        double op = loom__op_seconds(t, &pl->sig[id], pl->nparts[id], cm), in = in_cost(pl, t, &pl->sig[id], cm);
        fprintf(f, "%-5d %-26s %-22.22s %-20s %-28s %-11s %-11s %s\n", id, loom__op_def(t->op)->name, loom_tensor_name(t),
                loom__shape_str(g, &t->shape, sh, sizeof sh), sig, op > 0 ? secs(op, c1, sizeof c1) : "-",
                in > 0 ? secs(in, c2, sizeof c2) : "-", pl->cause ? pl->cause[id] : "one device");
    }
    fprintf(f, "\nboxing:\n");
    int nbox = 0;
    for (int id = 0; id < end; id++)
        for (int i = 0; i < g->t[id]->n_src && !(pl->dead && pl->dead[id]); i++) {
            const loom_tensor *s = g->t[id]->src[i];
            loom__box_kind k = loom__boxing(pl->sbp[s->id], pl->sig[id].in[i]);
            if (k == LOOM__BOX_NONE)
                continue;
            char from[24], to[24];
            loom_sbp_str(pl->sbp[s->id], from, sizeof from);
            loom_sbp_str(pl->sig[id].in[i], to, sizeof to);
            double bytes = loom__tensor_bytes(s);
            const loom__cost_dev *d = &cm->dev[loom__tensor_kind(s)];
            fprintf(f, "  %-26s %s -> %s of '%s' (tensor %d, %.0f bytes) for %s (tensor %d): %.0f bytes %s per device, %s\n",
                    loom__box_name(k), from, to, loom_tensor_name(s), s->id, bytes, loom__op_def(g->t[id]->op)->name, id,
                    loom__box_bytes(k, bytes, pl->nparts[s->id], d), d->shared ? "read and written" : "sent",
                    secs(box_in(pl, g->t[id], &pl->sig[id], i, cm), c1, sizeof c1));
            nbox++;
        }
    if (!nbox)
        fprintf(f, "  none\n");
    loom__prediction pr;
    loom__sbp_plan_predict(pl, g, end, cm, &pr);
    fprintf(f, "%d boxing ops; %.0f bytes moved per device per step\n", nbox, pl->box_bytes);
    fprintf(f, "predicted step: %s (busiest device: ops %s", secs(pr.seconds, c1, sizeof c1), secs(pr.compute, c2, sizeof c2));
    fprintf(f, ", boxing %s; longest chain %s; ", secs(pr.boxing, c1, sizeof c1), secs(pr.chain, c2, sizeof c2));
    fprintf(f, "per step %s) under the %s cost model\n", secs(pr.step, c1, sizeof c1), cm->source);
}

void loom__sbp_plan_dot(const loom__sbp_plan *pl, loom_graph *g, int end, FILE *f)
{
    char b[32];
    fprintf(f, "digraph loom_plan {\n  rankdir=TB;\n  node [shape=box, fontsize=10];\n");
    for (int d = 0; d < pl->n; d++) {
        fprintf(f, "  subgraph cluster_dev%d {\n    label=\"device %d\";\n    style=rounded;\n", d, d);
        for (int id = 0; id < end; id++) {
            if ((pl->dead && pl->dead[id]) || d >= pl->nparts[id])
                continue; /* dead, or on a placement of fewer devices */
            loom_sbp_str(pl->sbp[id], b, sizeof b);
            fprintf(f, "    t%d_%d [label=\"%s\\n%s\\n%s\"];\n", id, d, loom__op_def(g->t[id]->op)->name,
                    loom_tensor_name(g->t[id]), b);
        }
        fprintf(f, "  }\n");
    }
    for (int id = 0; id < end; id++)
        for (int i = 0; i < g->t[id]->n_src && !(pl->dead && pl->dead[id]); i++) {
            int s = g->t[id]->src[i]->id;
            loom__box_kind k = loom__boxing(pl->sbp[s], pl->sig[id].in[i]);
            if (k == LOOM__BOX_NONE && g->t[id]->op != LOOM_OP_MOVE) {
                for (int d = 0; d < pl->nparts[id]; d++)
                    fprintf(f, "  t%d_%d -> t%d_%d;\n", s, d, id, d);
                continue;
            }
            fprintf(f, "  box%d_%d [label=\"%s\", color=red, fontcolor=red, shape=hexagon];\n", id, i,
                    k == LOOM__BOX_NONE ? "move" : loom__box_name(k));
            for (int d = 0; d < pl->nparts[s]; d++)
                fprintf(f, "  t%d_%d -> box%d_%d [color=red];\n", s, d, id, i);
            for (int d = 0; d < pl->nparts[id]; d++)
                fprintf(f, "  box%d_%d -> t%d_%d [color=red];\n", id, i, id, d);
        }
    fprintf(f, "}\n");
}
