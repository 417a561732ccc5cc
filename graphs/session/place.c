/* Automatic placement (include/loom/place.h): candidates of devices and strategies compiled and
 * priced by the cost model, the fastest predicted that fits chosen, the best few run and timed.
 *
 * A candidate is the first k devices of the ones given (k = 1, 2, 4, ... and all of them) with a
 * strategy: one device alone; data parallel (dense inputs S(0), parameters B); model parallel
 * (matrix parameters S(1) and the products x W by them, inputs B); or no hints at all, where SBP inference chooses each
 * tensor's SBP by the same cost model (a hybrid where that is cheaper); or, for a model that can
 * build itself as a pipeline, its stages on consecutive groups of the devices (data parallel within
 * a group of several), the batch cut into micro-batches. Each is built afresh from the user's
 * builder, so no candidate sees another's gradient or update tensors. */
#include <loom/place.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graphs/builder/graph.h"
#include "graphs/session/program.h"

enum { ROUNDS = 5 }; /* of the timed steps, each candidate's fastest kept */

const char *loom_place_strategy_name(loom_place_strategy s)
{
    static const char *const names[] = {"one device", "data", "model", "inferred", "2-D hybrid", "pipeline"};
    return (unsigned)s < LOOM_PLACE_STRATEGY_COUNT ? names[s] : "?";
}

void loom_place_result_free(loom_place_result *r)
{
    if (!r)
        return;
    free(r->cand);
    *r = (loom_place_result){.chosen = -1, .best_measured = -1};
}

/* The strategy's SBP hints on g's leaves: inputs and parameters made by build. */
static void hint(loom_graph *g, loom_place_strategy s)
{
    if (s == LOOM_PLACE_ONE_DEVICE || s == LOOM_PLACE_INFERRED)
        return;
    const int mesh = s == LOOM_PLACE_MESH;
    for (int id = 0; id < g->n; id++) {
        loom_tensor *t = g->t[id];
        if (mesh) { /* data parallel across the rows, model parallel within each */
            int matrix = t->op == LOOM_OP_PARAM && t->shape.ndim == 2,
                product = t->op == LOOM_OP_MATMUL && !t->a.i[1] && t->src[1]->op == LOOM_OP_PARAM && t->src[1]->shape.ndim == 2;
            if (t->op == LOOM_OP_INPUT && t->layout == LOOM__DENSE && t->shape.ndim >= 1)
                loom_tensor_set_nd_sbp(t, loom_nd_sbp_2d(loom_split(0), loom_broadcast()));
            else if (t->op == LOOM_OP_PARAM)
                loom_tensor_set_nd_sbp(t, loom_nd_sbp_2d(loom_broadcast(), matrix ? loom_split(1) : loom_broadcast()));
            else if (product)
                loom_tensor_set_nd_sbp(t, loom_nd_sbp_2d(loom_split(0), loom_split(1)));
            continue;
        }
        if (t->op == LOOM_OP_INPUT && t->layout == LOOM__DENSE && t->shape.ndim >= 1)
            loom_tensor_set_sbp(t, s == LOOM_PLACE_DATA ? loom_split(0) : loom_broadcast());
        else if (t->op == LOOM_OP_PARAM)
            loom_tensor_set_sbp(t, s == LOOM_PLACE_MODEL && t->shape.ndim == 2 ? loom_split(1) : loom_broadcast());
        else if (s == LOOM_PLACE_MODEL && t->op == LOOM_OP_MATMUL && !t->a.i[1] && t->src[1]->op == LOOM_OP_PARAM &&
                 t->src[1]->shape.ndim == 2)
            loom_tensor_set_sbp(t, loom_split(1)); /* x W with W split by columns: (B, S(1)) -> S(1), not W gathered */
    }
}

/* The model as c's pipeline on g (placed on pl's devices, cut into c->stages groups); its loss, or
 * NULL with c->why. */
static loom_tensor *build_stages(const loom_place_model *m, const loom_placement *pl, loom_place_candidate *c, loom_graph *g)
{
    loom_placement *stage[LOOM_MAX_DEVICE_INDEX + 1] = {0};
    loom_tensor *loss = NULL;
    loom_error e = LOOM_ERROR_INIT;
    int k = 0;
    while (k < c->stages && (stage[k] = loom_placement_stage(pl, k, c->stages, &e)) != NULL)
        k++;
    if (k < c->stages) {
        snprintf(c->why, sizeof c->why, "stage %d of %d: %s", k, c->stages, e.msg);
    } else {
        loom_graph_set_placement(g, stage[0]);
        loss = m->stages(g, (const loom_placement *const *)stage, c->stages, m->user);
        if (!loss || loom_graph_status(g) != LOOM_OK) {
            snprintf(c->why, sizeof c->why, "the model's stage build (%d stages) failed: %s", c->stages,
                     loom_graph_error(g) ? loom_graph_error(g) : "it returned no loss");
            loss = NULL;
        }
    }
    for (int i = 0; i < k; i++)
        loom_placement_free(stage[i]);
    return loss;
}

/* c's micro-batches: o's, or the largest of 8, 4 and 2 that divides the batch (axis 0 of g's first
 * dense input); 0 with c->why when none does. */
static int micro_batches(const loom_place_opts *o, loom_graph *g, loom_place_candidate *c)
{
    if (o->micro_batches > 0)
        return o->micro_batches;
    for (int id = 0; id < g->n; id++) {
        const loom_tensor *t = g->t[id];
        if (t->op != LOOM_OP_INPUT || t->layout != LOOM__DENSE || t->shape.ndim < 1)
            continue;
        int64_t rows = loom__dim_bound(g, t->shape.d[0]);
        for (int mb = 8; mb >= 2; mb /= 2)
            if (rows % mb == 0)
                return mb;
        snprintf(c->why, sizeof c->why, "the batch of '%s' (%lld rows) is divided by none of 8, 4 and 2 micro-batches",
                 loom_tensor_name(t), (long long)rows);
        return 0;
    }
    snprintf(c->why, sizeof c->why, "the model has no dense input to cut into micro-batches");
    return 0;
}

/* Candidate c built, hinted and compiled into *pp on *gp (both NULL on failure, with c->why and
 * the status; *built 0 when the build failed, the user's error, and 1 when the compile failed, or
 * the stage build, the candidate's). */
static loom_status make(const loom_place_model *m, const loom_place_opts *o, const loom_placement *pl,
                        loom_place_candidate *c, loom_graph **gp, loom_program **pp, int *built)
{
    *built = 0;
    *gp = NULL;
    *pp = NULL;
    loom_graph *g = loom_graph_new();
    if (!g)
        return LOOM_ERR_NOMEM;
    const int pipe = c->strategy == LOOM_PLACE_PIPELINE;
    loom_tensor *loss;
    if (pipe) {
        *built = 1;
        if (!(loss = build_stages(m, pl, c, g)) || !(c->micro_batches = micro_batches(o, g, c))) {
            loom_status s = loom_graph_status(g) != LOOM_OK ? loom_graph_status(g) : LOOM_ERR_INVALID;
            loom_graph_free(g);
            return s;
        }
    } else {
        loom_graph_set_placement(g, pl);
        loss = m->build(g, m->user);
        if (!loss || loom_graph_status(g) != LOOM_OK) {
            snprintf(c->why, sizeof c->why, "the model's build failed: %s",
                     loom_graph_error(g) ? loom_graph_error(g) : "it returned no loss");
            loom_status s = loom_graph_status(g) != LOOM_OK ? loom_graph_status(g) : LOOM_ERR_INVALID;
            loom_graph_free(g);
            return s;
        }
        *built = 1;
    }
    /* a pipeline's stages of several devices each: data parallel within them */
    hint(g, !pipe ? c->strategy : loom_placement_ndevices(pl) > c->stages ? LOOM_PLACE_DATA : LOOM_PLACE_ONE_DEVICE);
    loom_train_opts t = o->train;
    t.memory_limit = o->memory_limit;
    if (pipe)
        t.micro_batches = c->micro_batches;
    loom_status s = loom_compile(g, loss, &t, pp);
    if (s != LOOM_OK) {
        snprintf(c->why, sizeof c->why, "%s", loom_graph_error(g) ? loom_graph_error(g) : "the compile failed");
        loom_graph_free(g);
        return s;
    }
    *gp = g;
    return LOOM_OK;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int by_seconds(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A candidate being measured: its graph and program, and its rounds' seconds per step. */
typedef struct timed {
    loom_graph *g;
    loom_program *p;
    double round[ROUNDS];
} timed;

/* The failure of a step of candidate c. */
static loom_status step_failed(const loom_place_candidate *c, loom_program *p, loom_status s, loom_error *err)
{
    return loom_error_set(err, s, "loom_place_search: a step of %s (%s) failed: %s", c->placement,
                          loom_place_strategy_name(c->strategy), loom_program_error(p));
}

/* The n candidates c[0 .. n-1], compiled into t: each fed and warmed up, then ROUNDS rounds of
 * the timed steps, each round running every candidate in turn, so that a slower spell of the
 * machine (another process, a neighbour on a shared host) falls on all of them alike; the
 * fastest round's seconds per step in c->measured_s. */
static loom_status measure(const loom_place_model *m, const loom_place_opts *o, loom_place_candidate *c, timed *t, int n,
                           loom_error *err)
{
    loom_status s;
    for (int i = 0; i < n; i++) {
        if ((s = m->feed(t[i].p, t[i].g, m->user)) != LOOM_OK)
            return loom_error_set(err, s, "loom_place_search: the feed of %s (%s) failed: %s", c[i].placement,
                                  loom_place_strategy_name(c[i].strategy), loom_program_error(t[i].p));
        if (o->warmup > 0 && (s = loom_program_run_steps(t[i].p, LOOM_RUN_STEP, o->warmup)) != LOOM_OK)
            return step_failed(&c[i], t[i].p, s, err);
    }
    int64_t per = o->steps / ROUNDS > 0 ? o->steps / ROUNDS : 1;
    for (int r = 0; r < ROUNDS; r++)
        for (int k = 0; k < n; k++) {
            const int i = r % 2 ? n - 1 - k : k; /* odd rounds in reverse: no candidate always runs first */
            double t0 = now();
            if ((s = loom_program_run_steps(t[i].p, LOOM_RUN_STEP, per)) != LOOM_OK)
                return step_failed(&c[i], t[i].p, s, err);
            t[i].round[r] = (now() - t0) / (double)per;
        }
    for (int i = 0; i < n; i++) {
        qsort(t[i].round, ROUNDS, sizeof *t[i].round, by_seconds);
        c[i].measured_s = t[i].round[0];
    }
    return LOOM_OK;
}

/* The ok candidates first, by predicted seconds; the rest after, in their order. */
static int by_prediction(const void *a, const void *b)
{
    const loom_place_candidate *x = a, *y = b;
    if (x->ok != y->ok)
        return y->ok - x->ok;
    if (!x->ok)
        return 0;
    return (x->predicted_s > y->predicted_s) - (x->predicted_s < y->predicted_s);
}

/* The first k devices of all. */
static loom_placement *prefix(const loom_placement *all, int k, loom_error *err)
{
    int devs[LOOM_MAX_DEVICE_INDEX + 1];
    for (int i = 0; i < k; i++)
        devs[i] = loom_placement_device(all, i, NULL);
    return loom_placement_new(loom_placement_kind(all), 0, NULL, k, devs, err);
}

/* Candidate c of strategy st (a pipeline: of `stages` stages) on `on`: compiled and priced, its
 * plan's bytes held to the limit; a log line. LOOM_OK when it is priced or does not fit (c->ok
 * says), the user's status when the build or feed fails. */
static loom_status price(const loom_place_model *m, const loom_place_opts *o, const loom_placement *on, loom_place_strategy st,
                         int stages, loom_place_candidate *c, loom_error *err)
{
    loom_placement_str(on, c->placement, sizeof c->placement);
    c->strategy = st;
    c->stages = stages;
    c->micro_batches = 1;
    c->measured_s = -1;
    loom_graph *g;
    loom_program *p;
    int built;
    loom_status s = LOOM_OK, cs = make(m, o, on, c, &g, &p, &built);
    if (cs != LOOM_OK && !built) {
        s = loom_error_set(err, cs, "loom_place_search: on %s, %s", c->placement, c->why);
    } else if (cs == LOOM_OK) {
        c->ok = 1;
        c->predicted_s = loom_program_predicted_step(p);
        const loom__plan *plan = loom__program_plan_of(p, LOOM_RUN_STEP);
        if (!plan) { /* a CSR input sizes the plan: made once it is fed, and held to the limit then */
            loom_memory mem;
            if ((s = m->feed(p, g, m->user)) != LOOM_OK)
                s = loom_error_set(err, s, "loom_place_search: the feed of %s (%s) failed: %s", c->placement,
                                   loom_place_strategy_name(c->strategy), loom_program_error(p));
            else if (loom_program_memory(p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &mem) != LOOM_OK)
                c->ok = 0, c->predicted_s = 0, snprintf(c->why, sizeof c->why, "%s", loom_program_error(p));
            plan = loom__program_plan_of(p, LOOM_RUN_STEP);
        }
        c->peak_bytes = plan ? loom__program_plan_needs(p, plan) : 0;
    }
    char what[64];
    snprintf(what, sizeof what, st == LOOM_PLACE_PIPELINE ? "%s %dx%d" : "%s", loom_place_strategy_name(st), c->stages,
             c->micro_batches);
    if (o->log && s == LOOM_OK && !c->ok)
        fprintf(o->log, "place: %-12s %-14s %s\n", c->placement, what, c->why);
    if (o->log && c->ok)
        fprintf(o->log, "place: %-12s %-14s predicted %10.1f us, %lld bytes on its largest device\n", c->placement, what,
                c->predicted_s * 1e6, (long long)c->peak_bytes);
    loom_program_free(p);
    loom_graph_free(g);
    return s;
}

loom_status loom_place_search(const loom_place_model *m, const loom_place_opts *o, loom_place_result *out,
                              loom_error *err)
{
    if (!out)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_place_search: out is NULL");
    *out = (loom_place_result){.chosen = -1, .best_measured = -1};
    if (!m || !m->build || !m->feed || !o)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_place_search: the model (its build and feed) and the options are needed");
    if (o->measure < 0 || o->warmup < 0 || o->steps < 0 || o->memory_limit < 0 || o->micro_batches < 0)
        return loom_error_set(err, LOOM_ERR_INVALID,
                              "loom_place_search: measure (%d), warmup (%d), steps (%d), memory_limit (%lld) and micro_batches (%d) must be >= 0",
                              o->measure, o->warmup, o->steps, (long long)o->memory_limit, o->micro_batches);
    if (o->measure > 0 && o->steps == 0)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_place_search: measuring takes steps >= 1");
    loom_placement *all = loom_placement_parse(o->devices ? o->devices : "", err);
    if (!all)
        return LOOM_ERR_INVALID;
    if (loom_placement_has_ranks(all)) {
        loom_placement_free(all);
        return loom_error_set(err, LOOM_ERR_UNSUPPORTED, "loom_place_search: devices '%s' span ranks; a search takes the devices of this process",
                              o->devices);
    }
    int ndev = loom_placement_ndevices(all), sizes[16], nsizes = 0;
    for (int k = 1; k < ndev; k *= 2)
        sizes[nsizes++] = k;
    sizes[nsizes++] = ndev;
    /* each size: a candidate of each strategy, and a pipeline for each power of two of devices a stage */
    out->cand = calloc((size_t)nsizes * (LOOM_PLACE_STRATEGY_COUNT + 8), sizeof *out->cand);
    if (!out->cand) {
        loom_placement_free(all);
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_place_search: out of memory");
    }
    loom_status s = LOOM_OK;
    for (int i = 0; i < nsizes && s == LOOM_OK; i++) {
        loom_placement *pl = prefix(all, sizes[i], err);
        if (!pl) {
            s = LOOM_ERR_NOMEM;
            break;
        }
        /* a 2-D mesh of 2 rows where the devices pair up, on CPU devices (the actor runtime's
         * boxing between 2-D SBPs is in shared memory) */
        loom_placement *mesh = sizes[i] >= 4 && sizes[i] % 2 == 0 && loom_placement_kind(all) == LOOM_DEVICE_CPU
                                   ? loom_placement_mesh(pl, 2, sizes[i] / 2, err)
                                   : NULL;
        for (int st = 0; st < LOOM_PLACE_PIPELINE && s == LOOM_OK; st++) {
            if ((sizes[i] == 1) != (st == LOOM_PLACE_ONE_DEVICE) || (st == LOOM_PLACE_MESH && !mesh))
                continue;
            s = price(m, o, st == LOOM_PLACE_MESH ? mesh : pl, (loom_place_strategy)st, 1, &out->cand[out->n++], err);
        }
        /* pipelines: sizes[i] / g stages of g devices each, g = 1, 2, 4, ... dividing sizes[i], two stages at least */
        for (int per = 1; m->stages && per <= sizes[i] / 2 && s == LOOM_OK; per *= 2)
            if (sizes[i] % per == 0)
                s = price(m, o, pl, LOOM_PLACE_PIPELINE, sizes[i] / per, &out->cand[out->n++], err);
        loom_placement_free(pl);
        loom_placement_free(mesh);
    }
    qsort(out->cand, (size_t)out->n, sizeof *out->cand, by_prediction);
    out->chosen = out->n > 0 && out->cand[0].ok ? 0 : -1;
    int nm = 0; /* the candidates measured: the o->measure fastest predicted that compiled */
    while (nm < out->n && nm < o->measure && out->cand[nm].ok)
        nm++;
    timed *t = nm ? calloc((size_t)nm, sizeof *t) : NULL;
    if (nm && !t)
        s = loom_error_set(err, LOOM_ERR_NOMEM, "loom_place_search: out of memory");
    for (int i = 0; s == LOOM_OK && i < nm; i++) {
        loom_place_candidate *c = &out->cand[i];
        loom_placement *pl = loom_placement_parse(c->placement, err);
        int built;
        s = pl ? make(m, o, pl, c, &t[i].g, &t[i].p, &built) : LOOM_ERR_NOMEM;
        if (s != LOOM_OK)
            s = loom_error_set(err, s, "loom_place_search: %s (%s) compiled once, not again: %s", c->placement,
                               loom_place_strategy_name(c->strategy), c->why);
        loom_placement_free(pl);
    }
    if (s == LOOM_OK && nm)
        s = measure(m, o, out->cand, t, nm, err);
    for (int i = 0; s == LOOM_OK && i < nm; i++) {
        loom_place_candidate *c = &out->cand[i];
        if (o->log)
            fprintf(o->log, "place: %-12s %-10s measured  %10.1f us (predicted %.1f us)\n", c->placement,
                    loom_place_strategy_name(c->strategy), c->measured_s * 1e6, c->predicted_s * 1e6);
        if (out->best_measured < 0 || c->measured_s < out->cand[out->best_measured].measured_s)
            out->best_measured = i;
    }
    for (int i = 0; t && i < nm; i++) {
        loom_program_free(t[i].p);
        loom_graph_free(t[i].g);
    }
    free(t);
    loom_placement_free(all);
    return s;
}
