/* Balanced batching of event graphs: the interaction network of examples/hep_tracks.c trained on
 * generated events with each sampler on each placement. One JSON line per (sampler, placement):
 * the epoch's largest share (nodes, edges), the plan's bytes on the busiest device for it, on a
 * GPU also the memory the driver reports in use for the run, the load imbalance across devices
 * (the largest share's nodes over the mean share's, averaged over steps), step and epoch time,
 * and the held-out edge precision, recall and accuracy after the last epoch.
 *
 *     balance [--events 1000] [--test-events 200] [--epochs 3] [--batch 16] [--hidden 32] [--rounds 3]
 *             [--lr 0.003] [--seed 1] [--placements cpu:0,cpu:0-1,cpu:0-3]
 *             [--samplers random,balance,outlier,skew,budget,devices,plan] [--plan-fraction 0.95]
 *             [--write-events DIR] [--write-steps FILE]
 *
 * Every sampler deals the same events, `batch` of them a step (budget: the node and edge budget of
 * `batch` mean events, split over the devices, at least the largest event: loom_sampler_mean_budget); plan packs to a memory limit of plan-fraction times
 * what balance's first epoch needs, and its plan is compiled for what its packing needs. The
 * models start from the same seed. --write-events writes the training and held-out events
 * (DIR/train.bin, DIR/test.bin, loom_samples_write) and --write-steps each sampler's steps on the
 * first placement, one JSON line per (sampler, epoch), with the device shares of a step joined:
 * bench/peers/in_pyg.py trains on exactly those batches. */
#include <loom/loom.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct options {
    int64_t events, test_events, batch, hidden;
    int epochs, rounds;
    double lr, plan_fraction;
    uint64_t seed;
    char placements[256], samplers[256];
    const char *write_events, *write_steps;
} options;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i += 2) { /* an option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return fprintf(stderr, "balance: %s needs a value\n", a), -1;
        char *end = NULL;
        if (!strcmp(a, "--events"))
            o->events = strtoll(v, &end, 10);
        else if (!strcmp(a, "--test-events"))
            o->test_events = strtoll(v, &end, 10);
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
        else if (!strcmp(a, "--plan-fraction"))
            o->plan_fraction = strtod(v, &end);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10);
        else if (!strcmp(a, "--placements"))
            end = (char *)v + strlen(v), snprintf(o->placements, sizeof o->placements, "%s", v);
        else if (!strcmp(a, "--samplers"))
            end = (char *)v + strlen(v), snprintf(o->samplers, sizeof o->samplers, "%s", v);
        else if (!strcmp(a, "--write-events"))
            end = (char *)v + strlen(v), o->write_events = v;
        else if (!strcmp(a, "--write-steps"))
            end = (char *)v + strlen(v), o->write_steps = v;
        else
            return fprintf(stderr, "balance: unknown option %s (see the top of bench/balance.c)\n", a), -1;
        if (!end || *end || end == v)
            return fprintf(stderr, "balance: %s: '%s' is not a valid value\n", a, v), -1;
    }
    if (o->events < 1 || o->test_events < 1 || o->epochs < 1 || o->batch < 1 || o->hidden < 1 || o->rounds < 0 ||
        !(o->lr > 0) || !(o->plan_fraction > 0))
        return fprintf(stderr, "balance: counts must be >= 1, lr and plan fraction > 0\n"), -1;
    return 0;
}

typedef struct model {
    loom_graph *g;
    loom_program *p;
    loom_batch_inputs in;
    loom_tensor *logits;
    int ndev, cuda;
} model;

static void model_free(model *m)
{
    loom_program_free(m->p);
    loom_graph_free(m->g);
    memset(m, 0, sizeof *m);
}

static int model_new(model *m, const options *o, const loom_samples *s, const char *placement, int64_t memory_limit,
                     loom_error *err)
{
    memset(m, 0, sizeof *m);
    loom_graph *g = m->g = loom_graph_new();
    loom_graph_set_seed(g, o->seed);
    loom_placement *pl = loom_placement_parse(placement, err);
    if (!pl)
        return -1;
    m->cuda = loom_placement_kind(pl) == LOOM_DEVICE_CUDA;
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_batch_inputs_make(g, s, o->batch, LOOM_TASK_EDGES, &m->in);
    m->logits = loom_nn_interaction_network(g, "in", m->in.x, m->in.edge_attr, m->in.src, m->in.dst, o->hidden, o->rounds);
    loom_tensor *loss = loom_bce_with_logits(g, m->logits, m->in.edge_y, 1.0);
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = loom_adam(o->lr);
    t.memory_limit = memory_limit;
    if (loom_compile(g, loss, &t, &m->p) != LOOM_OK) {
        loom_error_set(err, loom_graph_status(g), "%s", loom_graph_error(g));
        return -1;
    }
    m->ndev = loom_program_devices(m->p);
    return 0;
}

/* The sampler options of kind on ndev devices; budget and plan per share. */
static loom_sampler_opts sampler_opts(const options *o, const loom_samples *s, loom_sampler_kind kind, int ndev)
{
    loom_sampler_opts so = LOOM_SAMPLER_OPTS_INIT;
    so.kind = kind;
    so.batch = o->batch;
    so.devices = ndev;
    so.seed = o->seed;
    if (kind == LOOM_SAMPLER_BUDGET)
        loom_sampler_mean_budget(s, &so);
    return so;
}

/* The plan's bytes on the busiest device. */
static size_t plan_peak(loom_program *p, int ndev)
{
    size_t most = 0;
    for (int d = 0; d < ndev; d++) {
        loom_memory m;
        if (loom_program_memory(p, LOOM_RUN_STEP, d, &m) == LOOM_OK && m.total > most)
            most = m.total;
    }
    return most;
}

/* The largest share's nodes over the mean share's, averaged over the steps that hold any. */
static double imbalance(const loom_sampler *smp, int ndev)
{
    double sum = 0;
    int64_t steps = 0;
    for (int64_t k = 0; k < loom_sampler_steps(smp); k++) {
        int64_t most = 0, all = 0, n, e;
        for (int d = 0; d < ndev; d++) {
            loom_sampler_share_size(smp, k, d, &n, &e);
            most = n > most ? n : most;
            all += n;
        }
        if (all > 0)
            sum += (double)most * ndev / (double)all, steps++;
    }
    return steps ? sum / (double)steps : 1.0;
}

/* One JSON line a step, the shares of step k joined: what the peer trains on. */
static void write_steps(FILE *f, const loom_sampler *smp, const char *sampler, int epoch, int ndev)
{
    fprintf(f, "{\"sampler\":\"%s\",\"epoch\":%d,\"steps\":[", sampler, epoch);
    for (int64_t k = 0; k < loom_sampler_steps(smp); k++) {
        fputs(k ? ",[" : "[", f);
        int first = 1;
        for (int d = 0; d < ndev; d++) {
            int64_t n;
            const int64_t *ids = loom_sampler_share(smp, k, d, &n);
            for (int64_t i = 0; i < n; i++, first = 0)
                fprintf(f, "%s%" PRId64, first ? "" : ",", ids[i]);
        }
        fputc(']', f);
    }
    fputs("]}\n", f);
}

/* The memory limit of the plan sampler: plan_fraction of what balance's first epoch needs. */
static int plan_limit(const options *o, const loom_samples *s, const char *placement, int64_t *limit, loom_error *err)
{
    model m;
    if (model_new(&m, o, s, placement, 0, err))
        return model_free(&m), -1;
    loom_sampler_opts so = sampler_opts(o, s, LOOM_SAMPLER_BALANCE, m.ndev);
    loom_sampler *smp = NULL;
    int rc = -1;
    if (loom_sampler_new(s, NULL, s->count, &so, &smp, err) == LOOM_OK && loom_sampler_epoch(smp, 0, err) == LOOM_OK &&
        loom_batch_plan_epoch(m.p, smp, &m.in, err) == LOOM_OK) {
        loom_memory all;
        if (loom_program_memory(m.p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &all) == LOOM_OK) {
            /* CPU devices share the host's memory (the limit bounds the whole plan); a GPU its own */
            *limit = (int64_t)(o->plan_fraction * (double)(m.cuda ? plan_peak(m.p, m.ndev) : all.total));
            rc = 0;
        }
    }
    loom_sampler_free(smp);
    model_free(&m);
    return rc;
}

static int run_case(const options *o, const loom_samples *train, const loom_samples *test, const char *placement,
                    loom_sampler_kind kind, FILE *steps_out)
{
    const char *sname = loom_sampler_kind_name(kind);
    loom_error err = LOOM_ERROR_INIT;
    model m = {0};
    loom_sampler *smp = NULL;
    loom_batch_source *src = NULL;
    int64_t limit = 0;
    size_t base = 0, used = 0, peak = 0;
    int64_t most_n = 0, most_e = 0, steps = 0;
    double secs = 0, imb = 0;
    loom_edge_metrics em = {0};
    if (kind == LOOM_SAMPLER_PLAN && plan_limit(o, train, placement, &limit, &err))
        goto fail;
    if (model_new(&m, o, train, placement, limit, &err))
        goto fail;
    if (m.cuda && loom_cuda_memory_used(0, &base, &err) != LOOM_OK)
        goto fail;
    loom_sampler_opts so = sampler_opts(o, train, kind, m.ndev);
    if (kind == LOOM_SAMPLER_PLAN && loom_batch_fit_plan(m.p, LOOM_RUN_STEP, train, &m.in, &so, &err) != LOOM_OK)
        goto fail;
    if (loom_sampler_new(train, NULL, train->count, &so, &smp, &err) != LOOM_OK ||
        loom_batch_source_new(m.p, train, smp, &m.in, &src, &err) != LOOM_OK)
        goto fail;
    for (int e = 0; e < o->epochs; e++) {
        if (loom_sampler_epoch(smp, e, &err) != LOOM_OK)
            goto fail;
        if (steps_out)
            write_steps(steps_out, smp, sname, e, m.ndev);
        int64_t n, ed, at;
        int dev;
        loom_sampler_largest(smp, &n, &ed, &at, &dev);
        most_n = n > most_n ? n : most_n;
        most_e = ed > most_e ? ed : most_e;
        imb += imbalance(smp, m.ndev) / o->epochs;
        double t0 = now();
        if (loom_batch_plan_epoch(m.p, smp, &m.in, &err) != LOOM_OK)
            goto fail;
        loom_batch_source_rewind(src, 0);
        if (loom_batch_run(src, LOOM_RUN_STEP, 0, &err) != LOOM_OK)
            goto fail;
        secs += now() - t0;
        steps += loom_sampler_steps(smp);
        size_t pp = plan_peak(m.p, m.ndev);
        peak = pp > peak ? pp : peak;
        size_t now_used = 0; /* after the epoch: the plan's one allocation is in use */
        if (m.cuda && loom_cuda_memory_used(0, &now_used, &err) == LOOM_OK && now_used > used)
            used = now_used;
    }
    if (loom_batch_edge_metrics(m.p, m.logits, test, &so, &m.in, LOOM_RUN_EVAL, &em, &err) != LOOM_OK)
        goto fail;
    printf("{\"bench\":\"balance\",\"impl\":\"loom\",\"sampler\":\"%s\",\"placement\":\"%s\",\"events\":%" PRId64
           ",\"batch\":%" PRId64 ",\"epochs\":%d,\"steps_per_epoch\":%.1f,\"largest_nodes\":%" PRId64 ",\"largest_edges\":%" PRId64
           ",\"plan_peak_bytes\":%zu,\"gpu_used_bytes\":",
           sname, placement, train->count, o->batch, o->epochs, (double)steps / o->epochs, most_n, most_e, peak);
    if (m.cuda)
        printf("%zu", used > base ? used - base : 0);
    else
        fputs("null", stdout);
    printf(",\"memory_limit\":%" PRId64 ",\"imbalance\":%.3f,\"step_ms\":%.3f,\"epoch_s\":%.3f,\"precision\":%.4f,\"recall\":%.4f,"
           "\"accuracy\":%.4f}\n",
           limit, imb, 1e3 * secs / (double)(steps ? steps : 1), secs / o->epochs, em.precision, em.recall, em.accuracy);
    fflush(stdout);
    loom_batch_source_free(src);
    loom_sampler_free(smp);
    model_free(&m);
    return 0;
fail:
    printf("{\"bench\":\"balance\",\"impl\":\"loom\",\"sampler\":\"%s\",\"placement\":\"%s\",\"error\":\"", sname, placement);
    for (const char *c = err.msg; *c; c++)
        if (*c == '"' || *c == '\\')
            printf("\\%c", *c);
        else if ((unsigned char)*c >= 0x20)
            putchar(*c);
    printf("\",\"oom\":%s}\n", err.status == LOOM_ERR_NOMEM ? "true" : "false");
    fflush(stdout);
    loom_batch_source_free(src);
    loom_sampler_free(smp);
    model_free(&m);
    return -1;
}

int main(int argc, char **argv)
{
    options o = {.events = 1000, .test_events = 200, .epochs = 3, .batch = 16, .hidden = 32, .rounds = 3, .lr = 0.003,
                 .plan_fraction = 0.95, .seed = 1, .placements = "cpu:0,cpu:0-1,cpu:0-3",
                 .samplers = "random,balance,outlier,skew,budget,devices,plan"};
    if (parse(argc, argv, &o))
        return 2;
    loom_error err = LOOM_ERROR_INIT;
    loom_samples train = LOOM_SAMPLES_INIT, test = LOOM_SAMPLES_INIT;
    loom_event_opts eo = LOOM_EVENT_OPTS_INIT;
    eo.events = o.events;
    eo.seed = o.seed;
    if (loom_events_generate(&eo, &train, &err) != LOOM_OK)
        return fprintf(stderr, "balance: %s\n", err.msg), 1;
    eo.events = o.test_events;
    eo.seed = o.seed + 0x9e3779b9u; /* held out, as examples/hep_tracks.c does */
    if (loom_events_generate(&eo, &test, &err) != LOOM_OK)
        return fprintf(stderr, "balance: %s\n", err.msg), 1;
    if (o.write_events) {
        char path[4096];
        snprintf(path, sizeof path, "%s/train.bin", o.write_events);
        if (loom_samples_write(&train, path, &err) != LOOM_OK)
            return fprintf(stderr, "balance: %s\n", err.msg), 1;
        snprintf(path, sizeof path, "%s/test.bin", o.write_events);
        if (loom_samples_write(&test, path, &err) != LOOM_OK)
            return fprintf(stderr, "balance: %s\n", err.msg), 1;
    }
    FILE *steps = o.write_steps ? fopen(o.write_steps, "w") : NULL;
    if (o.write_steps && !steps)
        return fprintf(stderr, "balance: cannot write %s\n", o.write_steps), 1;
    int failed = 0, first = 1;
    for (char *pl = strtok(o.placements, ","); pl; pl = strtok(NULL, ","), first = 0) {
        char names[256];
        snprintf(names, sizeof names, "%s", o.samplers);
        for (char *sv = NULL, *sn = strtok_r(names, ",", &sv); sn; sn = strtok_r(NULL, ",", &sv)) {
            loom_sampler_kind kind;
            if (loom_sampler_kind_parse(sn, &kind, &err) != LOOM_OK)
                return fprintf(stderr, "balance: %s\n", err.msg), 2;
            failed |= run_case(&o, &train, &test, pl, kind, first ? steps : NULL) != 0;
        }
    }
    if (steps)
        fclose(steps);
    loom_samples_free(&train);
    loom_samples_free(&test);
    return failed;
}
