/* Pipeline parallelism: an MLP of `stages` x `layers` layers (width `width`, tanh between them,
 * softmax cross entropy on 10 classes), stage k's layers on stage k of the placement
 * (loom_placement_stage: "cpu:0-3" gives stage k cpu:k), SGD on a batch fed once. One JSON line per
 * schedule:
 *
 *   sequential  the whole batch as one piece (micro_batches 1): the stages run one after another
 *   gpipe       `micro` micro-batches, every forward of a step then every backward
 *   1f1b        `micro` micro-batches, one forward one backward after a warm-up of S - k on stage k
 *
 *     pipeline [--placement cpu:0-3] [--stages 4] [--layers 2] [--width 512] [--batch 256]
 *              [--micro 8] [--steps 20] [--warmup 3] [--threads 1] [--cost FILE] [--trace PREFIX]
 *              [--stage-ranks 0]
 *
 * --stage-ranks 1 puts stage k on rank k, on the placement's devices there ("cpu:0": stage k on
 * "@k/cpu:0"); run it under mpirun -np STAGES. Rank 0 prints.
 *
 * ms_per_step: the timed steps after the warm-up, total / steps (a run returns once its last update
 * has run); predicted_ms: the cost model's step (loom_program_predicted_step, with --cost a
 * calibration from loom calibrate, else $LOOM_COST_MODEL or the built-in figures). From loom_program_memory, summed over stage k's devices: act_bytes[k], the activations
 * the stage keeps for its backward pass at once (what the schedule decides); reg_bytes[k], all its
 * registers (shared by lifetime plus their own: activations, gradients, the micro-batches passed
 * between stages); param_bytes[k], its parameters. --trace writes each case's Chrome
 * trace to PREFIX-CASE.json (LOOM_TRACE: each run replaces it, so the timed run's stays). */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct opts {
    const char *placement, *name, *trace, *cost; /* name: every stage's devices */
    int stages, layers, micro, steps, warmup, threads, stage_ranks;
    int64_t width, batch;
} opts;

enum { CLASSES = 10, MAX_STAGES = 64 };
static const char *const names[] = {"sequential", "gpipe", "1f1b"};

/* The model on g, stage k's layers on stage k of all; its input and labels in x, y. */
static loom_tensor *build(loom_graph *g, const opts *o, const loom_placement *all, loom_tensor **x, loom_tensor **y,
                          loom_error *err)
{
    loom_tensor *h = NULL;
    for (int k = 0; k < o->stages; k++) {
        char on_rank[160];
        snprintf(on_rank, sizeof on_rank, "@%d/%s", k, o->placement);
        loom_placement *s = o->stage_ranks ? loom_placement_parse(on_rank, err) : loom_placement_stage(all, k, o->stages, err);
        if (!s)
            return NULL;
        if (k == 0) {
            loom_graph_set_placement(g, s);
            h = *x = loom_input(g, "x", LOOM_F32, loom_shape(o->batch, o->width));
        } else {
            h = loom_to_placement(g, h, s);
            loom_graph_set_placement(g, s);
        }
        loom_placement_free(s);
        for (int l = 0; l < o->layers; l++) {
            char name[32];
            int last = k == o->stages - 1 && l == o->layers - 1;
            snprintf(name, sizeof name, "s%d.fc%d", k, l);
            h = loom_nn_linear(g, name, h, last ? CLASSES : o->width, 1);
            if (!last)
                h = loom_tanh(g, h);
        }
    }
    *y = loom_input(g, "y", LOOM_I32, loom_shape(o->batch));
    return loom_softmax_cross_entropy(g, h, *y, NULL);
}

static int run_case(const opts *o, int c, const loom_placement *all)
{
    loom_error err = LOOM_ERROR_INIT;
    loom_graph *g = loom_graph_new();
    loom_tensor *x = NULL, *y = NULL, *loss = build(g, o, all, &x, &y, &err);
    int rc = -1;
    loom_program *p = NULL;
    float *xs = malloc((size_t)(o->batch * o->width) * sizeof *xs);
    int32_t *ys = malloc((size_t)o->batch * sizeof *ys);
    if (!loss || !xs || !ys) {
        fprintf(stderr, "pipeline: %s\n", !loss ? err.msg : "out of memory");
        goto done;
    }
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = loom_sgd(0.01);
    t.threads = o->threads;
    t.micro_batches = c == 0 ? 1 : o->micro;
    t.schedule = c == 1 ? LOOM_SCHEDULE_GPIPE : LOOM_SCHEDULE_1F1B;
    t.cost_model = o->cost;
    if (loom_compile(g, loss, &t, &p) != LOOM_OK) {
        fprintf(stderr, "pipeline: %s\n", loom_graph_error(g));
        goto done;
    }
    for (int64_t i = 0; i < o->batch * o->width; i++) /* a fixed pattern in [-1, 1): the speed does not depend on it */
        xs[i] = (float)((i * 2654435761u) % 2000) / 1000.0f - 1.0f;
    for (int64_t i = 0; i < o->batch; i++)
        ys[i] = (int32_t)(i % CLASSES);
    loom_array a = {.dtype = LOOM_F32, .ndim = 2, .shape = {o->batch, o->width}, .data = xs};
    loom_array b = {.dtype = LOOM_I32, .ndim = 1, .shape = {o->batch}, .data = ys};
    char trace[512];
    if (o->trace) { /* read as the actors are built, at the first run; each run replaces the file: the timed one's stays */
        snprintf(trace, sizeof trace, "%s-%s.json", o->trace, names[c]);
        setenv("LOOM_TRACE", trace, 1);
    }
    if (loom_program_feed(p, x, &a) != LOOM_OK || loom_program_feed(p, y, &b) != LOOM_OK ||
        (o->warmup > 0 && loom_program_run_steps(p, LOOM_RUN_STEP, o->warmup) != LOOM_OK)) {
        fprintf(stderr, "pipeline: %s\n", loom_program_error(p));
        goto done;
    }
    double t0 = now();
    loom_status s = loom_program_run_steps(p, LOOM_RUN_STEP, o->steps);
    double dt = now() - t0;
    if (s != LOOM_OK) {
        fprintf(stderr, "pipeline: %s\n", loom_program_error(p));
        goto done;
    }
    int64_t nl;
    const double *l = loom_program_losses(p, &nl);
    printf("{\"case\":\"%s\",\"placement\":\"%s\",\"stages\":%d,\"layers_per_stage\":%d,\"width\":%lld,\"batch\":%lld,"
           "\"micro_batches\":%d,\"threads\":%d,\"steps\":%d,\"warmup\":%d,\"ms_per_step\":%.3f,\"predicted_ms\":%.3f,\"samples_per_s\":%.1f,"
           "\"final_loss\":%.6f,\"act_bytes\":[",
           names[c], o->name, o->stages, o->layers, (long long)o->width, (long long)o->batch, t.micro_batches, o->threads,
           o->steps, o->warmup, 1e3 * dt / o->steps, 1e3 * loom_program_predicted_step(p), (double)o->batch * o->steps / dt, nl ? l[nl - 1] : 0.0);
    loom_memory m[MAX_STAGES];
    int ndev = loom_placement_ndevices(all);
    for (int k = 0; k < o->stages; k++) { /* stage k's devices: positions first .. first + n - 1 of all */
        int64_t first, n;
        loom_split_part(ndev, o->stages, k, &first, &n);
        m[k] = (loom_memory){0};
        for (int64_t d = first; d < first + n; d++) {
            loom_memory md;
            if (loom_program_memory(p, LOOM_RUN_STEP, (int)d, &md) != LOOM_OK) {
                fprintf(stderr, "pipeline: %s\n", loom_program_error(p));
                goto done;
            }
            m[k].activations += md.activations;
            m[k].shared += md.shared + md.own;
            m[k].params += md.params;
        }
        printf("%s%zu", k ? "," : "", m[k].activations);
    }
    printf("],\"reg_bytes\":[");
    for (int k = 0; k < o->stages; k++)
        printf("%s%zu", k ? "," : "", m[k].shared);
    printf("],\"param_bytes\":[");
    for (int k = 0; k < o->stages; k++)
        printf("%s%zu", k ? "," : "", m[k].params);
    printf("]}\n");
    fflush(stdout);
    rc = 0;
done:
    if (o->trace)
        unsetenv("LOOM_TRACE");
    loom_program_free(p);
    loom_graph_free(g);
    free(xs);
    free(ys);
    return rc;
}

int main(int argc, char **argv)
{
    opts o = {.placement = "cpu:0-3", .stages = 4, .layers = 2, .width = 512, .batch = 256, .micro = 8, .steps = 20,
              .warmup = 3, .threads = 1};
    for (int i = 1; i < argc; i += 2) { /* each option and its value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "pipeline: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--placement"))
            o.placement = v;
        else if (!strcmp(a, "--cost"))
            o.cost = v;
        else if (!strcmp(a, "--trace"))
            o.trace = v;
        else if (!strcmp(a, "--stages"))
            o.stages = atoi(v);
        else if (!strcmp(a, "--layers"))
            o.layers = atoi(v);
        else if (!strcmp(a, "--width"))
            o.width = atoll(v);
        else if (!strcmp(a, "--batch"))
            o.batch = atoll(v);
        else if (!strcmp(a, "--micro"))
            o.micro = atoi(v);
        else if (!strcmp(a, "--steps"))
            o.steps = atoi(v);
        else if (!strcmp(a, "--warmup"))
            o.warmup = atoi(v);
        else if (!strcmp(a, "--threads"))
            o.threads = atoi(v);
        else if (!strcmp(a, "--stage-ranks"))
            o.stage_ranks = atoi(v);
        else {
            fprintf(stderr, "pipeline: unknown option %s\n", a);
            return 2;
        }
    }
    if (o.stages < 1 || o.stages > MAX_STAGES || o.layers < 1 || o.width < 1 || o.width > 1 << 16 || o.batch < 1 ||
        o.batch > 1 << 20 || o.micro < 1 || o.steps < 1 || o.warmup < 0 || o.threads < 0) {
        fprintf(stderr, "pipeline: stages 1 .. %d, layers, width (up to 65536), batch (up to 2^20), micro and steps at least 1\n",
                MAX_STAGES);
        return 2;
    }
    loom_error err = LOOM_ERROR_INIT;
    char over_ranks[160];
    snprintf(over_ranks, sizeof over_ranks, "@0-%d/%s", o.stages - 1, o.placement);
    o.name = o.stage_ranks ? over_ranks : o.placement;
    if (o.stage_ranks && loom_dist_init(&err) != LOOM_OK) {
        fprintf(stderr, "pipeline: %s\n", err.msg);
        return 2;
    }
    if (loom_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) /* over ranks, rank 0 prints */
        return 2;
    loom_placement *all = loom_placement_parse(o.name, &err);
    if (!all) {
        fprintf(stderr, "pipeline: %s\n", err.msg);
        return 2;
    }
    int rc = 0;
    for (int c = 0; c < 3; c++)
        rc |= run_case(&o, c, all) != 0;
    loom_placement_free(all);
    loom_dist_finalize();
    return rc;
}
