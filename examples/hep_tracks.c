/* Finds particle tracks in generated collider events with an interaction network: each event is a
 * graph of detector hits, and the network scores every candidate segment between hits on adjacent
 * layers as true (both hits from one particle) or not. Nothing to download: the events are made by
 * loom_events_generate (docs/events.md).
 *
 *     hep_tracks [--events 1000] [--test-events 200] [--seed 1] [--epochs 8] [--sampler balance]
 *                [--batch 8] [--placement cpu:0] [--hidden 32] [--rounds 3] [--lr 0.003] [--pos-weight 1]
 *                [--memory-limit BYTES] [--min-precision P] [--min-recall R] [--quiet]
 *
 * Per epoch it prints the mean training loss, the edge precision and recall at 0.5 on the
 * held-out events (made from another seed), samples per second and the plan's memory per device.
 * --sampler takes random, balance, outlier, skew, budget, devices or plan; budget and plan pack
 * shares under a node and edge budget (plan: the largest that --memory-limit allows). On a
 * placement of several devices each step's share of each device is whole events, and every
 * device trains on its own share. With --min-precision / --min-recall the exit status is 3 when
 * the last epoch falls below them. */
#include <loom/loom.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct options {
    int64_t events, test_events, batch, hidden, memory_limit;
    uint64_t seed;
    int epochs, rounds, quiet;
    double lr, pos_weight, min_precision, min_recall;
    const char *sampler, *placement;
} options;

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (!v)
            return fprintf(stderr, "hep_tracks: %s needs a value\n", a), -1;
        char *end = NULL;
        if (!strcmp(a, "--events"))
            o->events = strtoll(v, &end, 10);
        else if (!strcmp(a, "--test-events"))
            o->test_events = strtoll(v, &end, 10);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10);
        else if (!strcmp(a, "--epochs"))
            o->epochs = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--batch"))
            o->batch = strtoll(v, &end, 10);
        else if (!strcmp(a, "--hidden"))
            o->hidden = strtoll(v, &end, 10);
        else if (!strcmp(a, "--rounds"))
            o->rounds = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--lr"))
            o->lr = strtod(v, &end);
        else if (!strcmp(a, "--pos-weight"))
            o->pos_weight = strtod(v, &end);
        else if (!strcmp(a, "--memory-limit"))
            o->memory_limit = strtoll(v, &end, 10);
        else if (!strcmp(a, "--min-precision"))
            o->min_precision = strtod(v, &end);
        else if (!strcmp(a, "--min-recall"))
            o->min_recall = strtod(v, &end);
        else if (!strcmp(a, "--sampler"))
            o->sampler = v, end = (char *)v + strlen(v);
        else if (!strcmp(a, "--placement"))
            o->placement = v, end = (char *)v + strlen(v);
        else
            return fprintf(stderr, "hep_tracks: unknown option %s (see the comment at the top of examples/hep_tracks.c)\n", a), -1;
        if (!end || *end || end == v)
            return fprintf(stderr, "hep_tracks: %s: '%s' is not a valid value\n", a, v), -1;
        i++;
    }
    if (o->events < 1 || o->test_events < 1 || o->epochs < 1 || o->batch < 1 || o->hidden < 1 || o->rounds < 0 || !(o->lr > 0) || !(o->pos_weight > 0))
        return fprintf(stderr, "hep_tracks: events, test events, epochs, batch and hidden must be >= 1, rounds >= 0, lr and pos-weight > 0\n"), -1;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct model {
    loom_graph *g;
    loom_program *p;
    loom_batch_inputs in;
    loom_tensor *logits, *loss;
} model;

static int build(model *m, const options *o, const loom_samples *train)
{
    loom_graph *g = m->g = loom_graph_new();
    loom_graph_set_seed(g, o->seed);
    if (strcmp(o->placement, "cpu:0")) {
        loom_error err = LOOM_ERROR_INIT;
        loom_placement *pl = loom_placement_parse(o->placement, &err);
        if (!pl)
            return fprintf(stderr, "hep_tracks: --placement: %s\n", err.msg), -1;
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    /* bounds of `batch` mean events for now; each epoch's are its sampler's (loom_batch_plan_epoch) */
    loom_batch_inputs_make(g, train, o->batch, LOOM_TASK_EDGES, &m->in);
    m->logits = loom_nn_interaction_network(g, "in", m->in.x, m->in.edge_attr, m->in.src, m->in.dst, o->hidden, o->rounds);
    m->loss = loom_bce_with_logits(g, m->logits, m->in.edge_y, o->pos_weight);
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_adam(o->lr);
    opts.memory_limit = o->memory_limit;
    if (loom_compile(g, m->loss, &opts, &m->p) != LOOM_OK)
        return fprintf(stderr, "hep_tracks: %s\n", loom_graph_error(g)), -1;
    return 0;
}

int main(int argc, char **argv)
{
    options o = {.events = 1000, .test_events = 200, .seed = 1, .epochs = 8, .batch = 8, .hidden = 32, .rounds = 3,
                 .lr = 0.003, .pos_weight = 1.0, .sampler = "balance", .placement = "cpu:0"};
    if (parse(argc, argv, &o))
        return 2;
    loom_error err = LOOM_ERROR_INIT;
    loom_samples train = LOOM_SAMPLES_INIT, test = LOOM_SAMPLES_INIT;
    loom_event_opts eo = LOOM_EVENT_OPTS_INIT;
    eo.events = o.events;
    eo.seed = o.seed;
    double t0 = now();
    if (loom_events_generate(&eo, &train, &err) != LOOM_OK)
        return fprintf(stderr, "hep_tracks: %s\n", err.msg), 1;
    eo.events = o.test_events;
    eo.seed = o.seed + 0x9e3779b9u; /* held out: events of another seed */
    if (loom_events_generate(&eo, &test, &err) != LOOM_OK)
        return fprintf(stderr, "hep_tracks: %s\n", err.msg), 1;
    if (!o.quiet)
        printf("generated %" PRId64 " training and %" PRId64 " held-out events (%" PRId64 " hits, %" PRId64 " segments) in %.2f s\n",
               train.count, test.count, train.node_off[train.count], train.edge_off[train.count], now() - t0);

    model m = {0};
    loom_sampler *smp = NULL;
    loom_batch_source *src = NULL;
    int rc = 1;
    loom_edge_metrics em = {0};
    if (build(&m, &o, &train))
        goto done;
    const int ndev = loom_program_devices(m.p);
    loom_sampler_opts so = LOOM_SAMPLER_OPTS_INIT;
    so.batch = o.batch;
    so.devices = ndev;
    so.seed = o.seed;
    if (loom_sampler_kind_parse(o.sampler, &so.kind, &err) != LOOM_OK)
        goto fail;
    if (so.kind == LOOM_SAMPLER_BUDGET) /* as many nodes and edges as `batch` mean events hold */
        loom_sampler_mean_budget(&train, &so);
    if (so.kind == LOOM_SAMPLER_PLAN) {
        if (o.memory_limit <= 0) {
            snprintf(err.msg, sizeof err.msg, "the plan sampler packs to --memory-limit BYTES, which is missing");
            goto fail;
        }
        if (loom_batch_fit_plan(m.p, LOOM_RUN_STEP, &train, &m.in, &so, &err) != LOOM_OK)
            goto fail;
        if (!o.quiet)
            printf("plan sampler: shares of up to %" PRId64 " hits and %" PRId64 " segments fit %" PRId64 " bytes a device\n",
                   so.max_nodes, so.max_edges, o.memory_limit);
    }
    if (loom_sampler_new(&train, NULL, train.count, &so, &smp, &err) != LOOM_OK ||
        loom_batch_source_new(m.p, &train, smp, &m.in, &src, &err) != LOOM_OK)
        goto fail;
    for (int epoch = 0; epoch < o.epochs; epoch++) {
        double start = now();
        int64_t before;
        loom_program_losses(m.p, &before);
        if (loom_sampler_epoch(smp, epoch, &err) != LOOM_OK || loom_batch_plan_epoch(m.p, smp, &m.in, &err) != LOOM_OK)
            goto fail;
        loom_batch_source_rewind(src, 0);
        if (loom_batch_run(src, LOOM_RUN_STEP, 0, &err) != LOOM_OK)
            goto fail;
        double secs = now() - start;
        int64_t n;
        const double *losses = loom_program_losses(m.p, &n);
        double sum = 0;
        for (int64_t i = before; i < n; i++)
            sum += losses[i];
        char mem[256] = "";
        for (int d = 0; d < ndev; d++) {
            loom_memory mm;
            if (loom_program_memory(m.p, LOOM_RUN_STEP, d, &mm) == LOOM_OK)
                snprintf(mem + strlen(mem), sizeof mem - strlen(mem), "%s%.1f", d ? "/" : "", (double)mm.total / (1 << 20));
        }
        /* held-out events, in steps dealt as training deals them: a memory limit holds for them too */
        if (loom_batch_edge_metrics(m.p, m.logits, &test, &so, &m.in, LOOM_RUN_EVAL, &em, &err) != LOOM_OK)
            goto fail;
        if (!o.quiet)
            printf("epoch %d: loss %.4f, edge precision %.4f, recall %.4f, %.0f events/s, plan %s MiB per device\n", epoch + 1,
                   n > before ? sum / (double)(n - before) : 0.0, em.precision, em.recall, (double)train.count / secs, mem);
        fflush(stdout);
    }
    rc = 0;
    if (em.precision < o.min_precision || em.recall < o.min_recall) {
        fprintf(stderr, "hep_tracks: precision %.4f and recall %.4f; wanted at least %.4f and %.4f\n", em.precision, em.recall,
                o.min_precision, o.min_recall);
        rc = 3;
    }
    goto done;
fail:
    fprintf(stderr, "hep_tracks: %s\n", err.msg);
done:
    loom_batch_source_free(src);
    loom_sampler_free(smp);
    loom_program_free(m.p);
    loom_graph_free(m.g);
    loom_samples_free(&train);
    loom_samples_free(&test);
    return rc;
}
