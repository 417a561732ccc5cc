/* loom_calibrate: the cost model's figures measured on this machine (sbp/infer/cost.h).
 *
 * Designed graphs, each one kind of work (chains of small ops, of small and of large matrix
 * products, of large elementwise ops, of boxings small and large), are compiled and run for a
 * fraction of a second each, in rounds of every case in turn, and their steps timed. Narrow
 * matrix products on one device run twice, with the program's kernel threads and with one: how
 * much faster the threads made them is thread_gain, measured rather than fitted. The model predicts each step as a sum of terms
 * (ops, library calls, flops, bytes, boxings, boxing bytes, steps) times the seconds one of each
 * takes; those seconds are what the calibration fits (loom__cost_fit: least squares over the
 * cases, weighted so that every case counts by its relative error, no latency below 0). A term no
 * case exercises keeps its built-in figure (a machine with one GPU measures no GPU boxing). The
 * fit is made three times, each with the roofline side (flops or bytes) each op falls on under the
 * figures of the one before. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "graphs/core/files.h"
#include "graphs/core/json.h"
#include "graphs/session/program.h"
#include "ops/cpu/pool.h"

enum pattern {
    SCALE,  /* a chain of scale ops over x */
    MATMUL, /* a chain of products with a [cols, cols] weight */
    GATHER, /* scale into B (all-gather), scale back into S(0) (a local slice), again */
    REDUCE, /* column sums of x (P), each into B (all-reduce) */
};

enum { ROUNDS = 3 }; /* of the cases' measures (calibrate_kind) */

typedef struct cal_case {
    const char *what;
    loom_device_kind kind;
    int ndev; /* devices 0 .. ndev - 1 */
    enum pattern pattern;
    int ops;
    int64_t rows, cols; /* of x, over all devices */
    int threads;        /* the program's kernel threads (0: as many as cores) */
    int gain_only;      /* measured for thread_gain, not fitted */
} cal_case;

typedef struct cal_result {
    loom__cost_case c; /* the terms and the measured step */
    double predicted;
} cal_result;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The graph of case c on its placement; its program compiled (inference: no loss) and x fed. */
static loom_status build(const cal_case *c, loom_graph **gp, loom_program **pp, loom_error *err)
{
    char spec[32];
    snprintf(spec, sizeof spec, c->ndev > 1 ? "%s:0-%d" : "%s:0", loom_device_kind_name(c->kind), c->ndev - 1);
    loom_placement *place = loom_placement_parse(spec, err);
    if (!place)
        return err->status;
    loom_graph *g = loom_graph_new();
    if (!g) {
        loom_placement_free(place);
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_calibrate: out of memory");
    }
    loom_graph_set_placement(g, place);
    loom_placement_free(place);
    loom_graph_set_seed(g, 1);
    const int many = c->ndev > 1;
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(c->rows, c->cols)), *h = x;
    if (many)
        loom_tensor_set_sbp(x, loom_split(0));
    loom_tensor *w = c->pattern == MATMUL ? loom_param(g, "w", LOOM_F32, loom_shape(c->cols, c->cols), loom_init_normal(0, 0.01, 1))
                                          : NULL;
    for (int k = 0; k < c->ops; k++) {
        switch (c->pattern) {
        case SCALE:
            h = loom_scale(g, h, 0.5);
            break;
        case MATMUL:
            h = loom_matmul(g, h, w);
            break;
        case GATHER:
            h = loom_scale(g, h, 0.5);
            if (many)
                loom_tensor_set_sbp(h, k % 2 ? loom_split(0) : loom_broadcast());
            break;
        case REDUCE: {
            loom_tensor *s = loom_sum(g, x, 1u, 0);
            if (many)
                loom_tensor_set_sbp(s, loom_partial_sum());
            h = loom_scale(g, s, 0.5);
            if (many)
                loom_tensor_set_sbp(h, loom_broadcast());
            break;
        }
        }
        if (many && c->pattern != GATHER && c->pattern != REDUCE)
            loom_tensor_set_sbp(h, loom_split(0));
    }
    loom_program *p = NULL;
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.threads = c->threads;
    loom_status s = loom_graph_error(g) ? LOOM_ERR_INVALID : loom_compile(g, NULL, &o, &p);
    if (s != LOOM_OK) {
        loom_error_set(err, s, "loom_calibrate: case '%s': %s", c->what, loom_graph_error(g));
        loom_graph_free(g);
        return s;
    }
    size_t n = (size_t)(c->rows * c->cols);
    float *data = malloc(n * sizeof *data);
    if (!data) {
        loom_program_free(p);
        loom_graph_free(g);
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_calibrate: out of memory");
    }
    for (size_t i = 0; i < n; i++)
        data[i] = (float)(i % 17) * 0.125f - 1.0f;
    loom_array a = {.dtype = LOOM_F32, .ndim = 2, .shape = {c->rows, c->cols}, .data = data};
    s = loom_program_feed(p, x, &a);
    free(data);
    if (s != LOOM_OK) {
        loom_error_set(err, s, "loom_calibrate: case '%s': %s", c->what, loom_program_error(p));
        loom_program_free(p);
        loom_graph_free(g);
        return s;
    }
    *gp = g;
    *pp = p;
    return LOOM_OK;
}

/* Seconds a step of p takes: steps run in one go (the executor pipelines them, as training does),
 * as many as fill about `budget` seconds, the least of three such runs. */
static loom_status measure(loom_program *p, double budget, double *out, loom_error *err)
{
    int64_t steps = 2;
    double best = INFINITY;
    loom_status s = loom_program_run_steps(p, LOOM_RUN_EVAL, 2); /* warm: buffers, threads, caches */
    for (int rep = 0; s == LOOM_OK && rep < 3;) {
        double t0 = now_s();
        s = loom_program_run_steps(p, LOOM_RUN_EVAL, steps);
        double dt = now_s() - t0;
        if (s != LOOM_OK)
            break;
        if (dt < budget / 3 && steps < (1 << 20)) { /* too short to time: more steps, not counted */
            steps *= dt > 0 ? (int64_t)fmin(16, fmax(2, budget / 3 / dt)) : 16;
            continue;
        }
        best = fmin(best, dt / (double)steps);
        rep++;
    }
    if (s != LOOM_OK)
        return loom_error_set(err, s, "loom_calibrate: %s", loom_program_error(p));
    *out = best;
    return LOOM_OK;
}

/* The terms of the step of p under cm (the roofline side of each op depends on cm). */
static void terms_of(loom_program *p, const loom__cost_model *cm, cal_result *r)
{
    loom__prediction pr;
    if (loom__program_predict(p, cm, &pr) == 0)
        memcpy(r->c.terms, pr.terms, sizeof r->c.terms);
}

/* The cases of one device kind: one device, and `multi` devices when there are two or more. */
static int cases_of(loom_device_kind kind, int multi, cal_case *c)
{
    int n = 0, m = multi;
    const int64_t big = kind == LOOM_DEVICE_CUDA ? 1 << 24 : 1 << 20; /* floats of a large tensor */
    c[n++] = (cal_case){"small ops", kind, 1, SCALE, 8, 8, 8, 0, 0};
    c[n++] = (cal_case){"many small ops", kind, 1, SCALE, 48, 8, 8, 0, 0};
    /* library calls: [48, 48] products, a GEMM's register tile (which matmul's flops count at
     * least), so that the flops the model counts are those done and the rest is the calls' */
    c[n++] = (cal_case){"small matrix products", kind, 1, MATMUL, 16, 48, 48, 0, 0};
    c[n++] = (cal_case){"large elementwise ops", kind, 1, SCALE, 8, big / 256, 256, 0, 0};
    c[n++] = (cal_case){"matrix products", kind, 1, MATMUL, 4, kind == LOOM_DEVICE_CUDA ? 4096 : 256, kind == LOOM_DEVICE_CUDA ? 2048 : 512, 0, 0};
    if (kind == LOOM_DEVICE_CPU && loom__pool_cores() > 1) { /* on one thread */
        c[n++] = (cal_case){"matrix products, one thread", kind, 1, MATMUL, 4, 256, 512, 1, 0};
        /* thread_gain: products just large enough for a kernel to split them (about 130 us each on
         * one core), on all the threads and on one; not fitted, as their flops count a whole GEMM
         * tile of 48 where they have 32 columns */
        c[n++] = (cal_case){"narrow matrix products", kind, 1, MATMUL, 8, 6400, 32, 0, 1};
        c[n++] = (cal_case){"narrow matrix products, one thread", kind, 1, MATMUL, 8, 6400, 32, 1, 1};
    }
    if (m < 2)
        return n;
    c[n++] = (cal_case){"large elementwise ops, split", kind, m, SCALE, 8, big / 256, 256, 0, 0};
    c[n++] = (cal_case){"matrix products, split", kind, m, MATMUL, 4, (kind == LOOM_DEVICE_CUDA ? 4096 : 256) * m,
                        kind == LOOM_DEVICE_CUDA ? 2048 : 512, 0, 0};
    c[n++] = (cal_case){"small all-gathers", kind, m, GATHER, 8, 8 * m, 8, 0, 0};
    c[n++] = (cal_case){"large all-gathers", kind, m, GATHER, 8, big / 256, 256, 0, 0};
    c[n++] = (cal_case){"large all-reduces", kind, m, REDUCE, 4, 2 * m, big / 2, 0, 0};
    return n;
}

static const char *const term_field[LOOM__COST_TERMS] = {
    [LOOM__TERM_OPS] = "op_latency",   [LOOM__TERM_LIBS] = "lib_latency", [LOOM__TERM_FLOPS] = "flops", [LOOM__TERM_BYTES] = "mem_bw",
    [LOOM__TERM_BOXES] = "box_latency", [LOOM__TERM_BOX_BYTES] = "box_bw", [LOOM__TERM_STEPS] = "step_latency",
    [LOOM__TERM_NET_BOXES] = "net_latency", [LOOM__TERM_NET_BYTES] = "net_bw",
};

/* thread_gain from the narrow matrix products measured with the program's threads (as many as
 * cores, c) and with one: 1 + thread_gain (c - 1) is how much faster the threads made them, held
 * to 0 .. 1. Left as it was when the cases have no such pair. */
static void thread_gain(const cal_case *c, const cal_result *r, int n, loom__cost_dev *d, int *fitted)
{
    int all = -1, one = -1;
    for (int i = 0; i < n; i++)
        if (c[i].gain_only)
            *(c[i].threads == 1 ? &one : &all) = i;
    const int cores = loom__pool_cores();
    if (all < 0 || one < 0 || cores < 2 || !(r[all].c.measured > 0))
        return;
    double g = (r[one].c.measured / r[all].c.measured - 1) / (cores - 1);
    d->thread_gain = g < 0 ? 0 : g > 1 ? 1 : g;
    fitted[LOOM__COST_TERMS] = 1;
}

/* core_share from the matrix products on one thread and split over m devices, each device the
 * one thread's rows: the devices ran at m t1 / tm cores' rate of the C they could use, held to
 * 1 / C .. 1. Left as it was when the cases have no such pair. */
static void core_share(const cal_case *c, const cal_result *r, int n, loom__cost_dev *d, int *fitted)
{
    int one = -1, split = -1;
    for (int i = 0; i < n; i++)
        if (c[i].pattern == MATMUL && !c[i].gain_only && c[i].ops == 4)
            if (c[i].ndev > 1 || c[i].threads == 1)
                *(c[i].ndev > 1 ? &split : &one) = i;
    const int cores = loom__pool_cores();
    if (one < 0 || split < 0 || cores < 2 || !(r[split].c.measured > 0))
        return;
    const int m = c[split].ndev;
    double got = m * r[one].c.measured / r[split].c.measured, most = m < cores ? m : cores;
    double share = (got < most ? got : most) / cores;
    d->core_share = share < 1.0 / cores ? 1.0 / cores : share;
    fitted[LOOM__COST_TERMS + 1] = 1;
}

/* Calibrates kind's figures in cm->dev[kind] over its cases; writes the cases' lines to log and
 * keeps them in res (room for 16). */
static loom_status calibrate_kind(loom__cost_model *cm, loom_device_kind kind, int multi, double budget, FILE *log,
                                  cal_case *cases, cal_result *res, int *ncases, int *fitted, loom_error *err)
{
    int n = cases_of(kind, multi, cases);
    loom_graph *g[16] = {0};
    loom_program *p[16] = {0};
    loom_status s = LOOM_OK;
    for (int i = 0; i < n && s == LOOM_OK; i++)
        s = build(&cases[i], &g[i], &p[i], err);
    /* rounds of every case in turn, each case's fastest kept: a slower spell of the machine
     * (another process) falls on every case alike rather than on the few measured in it */
    for (int round = 0; round < ROUNDS && s == LOOM_OK; round++)
        for (int i = 0; i < n && s == LOOM_OK; i++) {
            double t = INFINITY;
            s = measure(p[i], budget / ROUNDS, &t, err);
            if (round == 0 || t < res[i].c.measured)
                res[i].c.measured = t;
        }
    if (s == LOOM_OK) {
        thread_gain(cases, res, n, &cm->dev[kind], fitted);
        core_share(cases, res, n, &cm->dev[kind], fitted);
    }
    for (int round = 0; s == LOOM_OK && round < 3; round++) { /* the roofline sides settle */
        for (int i = 0; i < n; i++)
            terms_of(p[i], cm, &res[i]);
        loom__cost_case fc[16];
        int nf = 0;
        for (int i = 0; i < n; i++)
            if (!cases[i].gain_only)
                fc[nf++] = res[i].c;
        loom__cost_fit(fc, nf, &cm->dev[kind], fitted);
    }
    for (int i = 0; s == LOOM_OK && i < n; i++) {
        terms_of(p[i], cm, &res[i]);
        res[i].predicted = loom__terms_seconds(res[i].c.terms, &cm->dev[kind]);
        if (log)
            fprintf(log, "calibrate: %-32s on %s:0%s%d  measured %10.1f us  predicted %10.1f us\n", cases[i].what,
                    loom_device_kind_name(kind), cases[i].ndev > 1 ? "-" : "", cases[i].ndev > 1 ? cases[i].ndev - 1 : 0,
                    res[i].c.measured * 1e6, res[i].predicted * 1e6);
    }
    for (int i = 0; i < n; i++) {
        loom_program_free(p[i]);
        loom_graph_free(g[i]);
    }
    *ncases = n;
    return s;
}

static void put_dev(FILE *f, loom_device_kind kind, const loom__cost_dev *d, const int *fitted, int last)
{
    fprintf(f, "    \"%s\": {\"flops\": %.6g, \"mem_bw\": %.6g, \"op_latency\": %.6g, \"lib_latency\": %.6g, "
               "\"box_latency\": %.6g, \"box_bw\": %.6g, \"step_latency\": %.6g, \"net_latency\": %.6g, \"net_bw\": %.6g, "
               "\"thread_gain\": %.4g, \"core_share\": %.4g, \"shared\": %s, \"measured\": [",
            loom_device_kind_name(kind), d->flops, d->mem_bw, d->op_latency, d->lib_latency, d->box_latency, d->box_bw,
            d->step_latency, d->net_latency, d->net_bw, d->thread_gain, d->core_share, d->shared ? "true" : "false");
    for (int j = 0, k = 0; j <= LOOM__COST_TERMS + 1; j++)
        if (fitted[j])
            fprintf(f, "%s\"%s\"", k++ ? ", " : "", j < LOOM__COST_TERMS ? term_field[j] : j == LOOM__COST_TERMS ? "thread_gain" : "core_share");
    fprintf(f, "]}%s\n", last ? "" : ",");
}

loom_status loom_calibrate(const char *path, FILE *log, loom_error *err)
{
    loom_error none = LOOM_ERROR_INIT;
    err = err ? err : &none;
    if (!path)
        return loom_error_set(err, LOOM_ERR_INVALID, "loom_calibrate: the path is NULL");
    loom__cost_model cm;
    loom__cost_default(&cm);
    enum { MAXC = 16 };
    cal_case cases[LOOM_DEVICE_KIND_COUNT][MAXC];
    cal_result res[LOOM_DEVICE_KIND_COUNT][MAXC];
    int ncases[LOOM_DEVICE_KIND_COUNT] = {0}, fitted[LOOM_DEVICE_KIND_COUNT][LOOM__COST_TERMS + 2] = {{0}}; /* + thread_gain, core_share */
    int cores = loom__pool_cores(), cpus = cores < 2 ? 2 : cores > 4 ? 4 : cores;
    loom_error why = LOOM_ERROR_INIT;
    int gpus = loom_cuda_device_count(&why);
    loom_status s = calibrate_kind(&cm, LOOM_DEVICE_CPU, cpus, 0.3, log, cases[LOOM_DEVICE_CPU], res[LOOM_DEVICE_CPU],
                                   &ncases[LOOM_DEVICE_CPU], fitted[LOOM_DEVICE_CPU], err);
    if (s == LOOM_OK && gpus > 0)
        s = calibrate_kind(&cm, LOOM_DEVICE_CUDA, gpus >= 2 ? 2 : 1, 0.3, log, cases[LOOM_DEVICE_CUDA],
                           res[LOOM_DEVICE_CUDA], &ncases[LOOM_DEVICE_CUDA], fitted[LOOM_DEVICE_CUDA], err);
    if (s != LOOM_OK)
        return s;

    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_calibrate: out of memory");
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    time_t t = time(NULL);
    struct tm tm;
    char when[32] = "";
    if (gmtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(f, "{\n  \"format\": \"loom-cost-model\",\n  \"version\": 1,\n  \"machine\": ");
    loom__json_put_str(f, host);
    fprintf(f, ",\n  \"measured_at\": \"%s\",\n  \"devices\": {\n", when);
    for (int k = 0; k < LOOM_DEVICE_KIND_COUNT; k++)
        put_dev(f, (loom_device_kind)k, &cm.dev[k], fitted[k], k == LOOM_DEVICE_KIND_COUNT - 1);
    fprintf(f, "  },\n  \"cases\": [\n");
    for (int k = 0, first = 1; k < LOOM_DEVICE_KIND_COUNT; k++)
        for (int i = 0; i < ncases[k]; i++, first = 0) {
            fprintf(f, "%s    {\"what\": \"%s\", \"devices\": \"%s:0-%d\", \"measured_s\": %.6g, \"predicted_s\": %.6g}",
                    first ? "" : ",\n", cases[k][i].what, loom_device_kind_name((loom_device_kind)k), cases[k][i].ndev - 1,
                    res[k][i].c.measured, res[k][i].predicted);
        }
    fprintf(f, "\n  ]\n}\n");
    if (fclose(f) != 0 || !text) {
        free(text);
        return loom_error_set(err, LOOM_ERR_NOMEM, "loom_calibrate: out of memory");
    }
    char *tmp = NULL;
    int fd = loom__file_replace_open(path, &tmp), e = fd < 0 ? errno : 0, renamed = 0;
    if (fd >= 0)
        e = loom__file_replace_end(fd, tmp, path, loom__file_write(fd, text, len), &renamed);
    else
        free(tmp);
    free(text);
    if (e && !renamed)
        return loom_error_set(err, LOOM_ERR_IO, "loom_calibrate: cannot write %s: %s", path, strerror(e));
    return LOOM_OK;
}

loom_status loom__cost_load(const char *path, loom__cost_model *cm, loom_error *err)
{
    int fd;
    uint64_t size;
    loom_status s = loom__file_open(path, LOOM_ERR_IO, &fd, &size, err);
    if (s != LOOM_OK)
        return s;
    char *text = malloc((size_t)size + 1);
    ssize_t got = text ? loom__file_read(fd, text, (size_t)size) : -1;
    int e = errno;
    close(fd);
    if (!text || got != (ssize_t)size) {
        free(text);
        return !text ? loom_error_set(err, LOOM_ERR_NOMEM, "%s: out of memory", path)
                     : loom_error_set(err, LOOM_ERR_IO, "%s: cannot read: %s", path, got < 0 ? strerror(e) : "the file shrank");
    }
    text[size] = 0;
    char msg[sizeof err->msg];
    int rc = loom__cost_parse(text, (size_t)size, path, cm, msg, sizeof msg);
    free(text);
    return rc ? loom_error_set(err, LOOM_ERR_FORMAT, "%s", msg) : LOOM_OK;
}
