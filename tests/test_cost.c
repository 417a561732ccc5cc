/* The cost model: calibration files read (and refused, naming the file, the byte and what was
 * expected), a calibration measured on this machine and used by a compile, and the CPU all-reduce
 * in one phase or two (chosen by the model) giving the same bits. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graphs/session/program.h"
#include "ops/cpu/pool.h"

static char dir[64];

static void make_dir(void)
{
    snprintf(dir, sizeof dir, "/tmp/loom_cost_XXXXXX");
    ck_assert(mkdtemp(dir) != NULL);
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes text to dir/name; the path in path. */
static void put(const char *name, const char *text, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

#define CPU_FIGURES(lat)                                                                                             \
    "{\"flops\": 1e11, \"mem_bw\": 1e10, \"op_latency\": 1e-5, \"box_latency\": " lat ", \"box_bw\": 1e10, "     \
    "\"step_latency\": 5e-5, \"shared\": true}"
#define FILE_OF(cpu) "{\"format\": \"loom-cost-model\", \"version\": 1, \"devices\": {\"cpu\": " cpu "}}"

/* A data-parallel MLP (784-256-10, batch 512) on cpu:0-3 compiled with the cost model at path
 * (NULL: the built-in one). */
static loom_program *mlp(loom_graph *g, const char *cost)
{
    loom_error e = LOOM_ERROR_INIT;
    loom_placement *pl = loom_placement_parse("cpu:0-3", &e);
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_graph_set_seed(g, 7);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(512, 784));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(512));
    loom_tensor *h = loom_relu(g, loom_nn_linear(g, "fc1", x, 256, 1));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 10, 1), y, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.05);
    o.cost_model = cost;
    loom_program *p = NULL;
    ck_assert_msg(loom_compile(g, loss, &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
    return p;
}

/* Tasks of the step's plan that reduce a partial sum into ranges (the first of two phases). */
static int reduce_scatters(loom_program *p)
{
    loom_memory m;
    ck_assert_msg(loom_program_memory(p, LOOM_RUN_STEP, 0, &m) == LOOM_OK, "%s", loom_program_error(p));
    const loom__plan *pl = loom__program_plan_of(p, LOOM_RUN_STEP);
    int n = 0;
    for (int k = 0; k < pl->ntasks; k++)
        n += pl->task[k].kind == LOOM__TASK_BOXING && pl->regst[pl->task[k].in[0]].sbp.kind == LOOM_SBP_PARTIAL_SUM &&
             pl->regst[pl->task[k].out[0]].sbp.kind == LOOM_SBP_SPLIT;
    return n;
}

/* Three SGD steps on fixed data; the parameters after them into w (fc1.weight, then fc2.weight). */
static void train(loom_program *p, loom_graph *g, float *w)
{
    float *x = malloc(512 * 784 * sizeof *x);
    int32_t y[512];
    ck_assert(x != NULL);
    for (int i = 0; i < 512 * 784; i++)
        x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    for (int i = 0; i < 512; i++)
        y[i] = (i * 7) % 10;
    ck_assert(loom_program_feed(p, loom_graph_find(g, "x"), &(loom_array){.dtype = LOOM_F32, .ndim = 2, .shape = {512, 784}, .data = x}) == LOOM_OK);
    ck_assert(loom_program_feed(p, loom_graph_find(g, "y"), &(loom_array){.dtype = LOOM_I32, .ndim = 1, .shape = {512}, .data = y}) == LOOM_OK);
    free(x);
    ck_assert_msg(loom_program_run_steps(p, LOOM_RUN_STEP, 3) == LOOM_OK, "%s", loom_program_error(p));
    loom_array a = LOOM_ARRAY_INIT, b = LOOM_ARRAY_INIT;
    ck_assert(loom_program_fetch(p, loom_graph_find(g, "fc1.weight"), &a) == LOOM_OK);
    ck_assert(loom_program_fetch(p, loom_graph_find(g, "fc2.weight"), &b) == LOOM_OK);
    memcpy(w, a.data, 784 * 256 * sizeof *w);
    memcpy(w + 784 * 256, b.data, 256 * 10 * sizeof *w); /* views into the program: not freed */
}

START_TEST(test_all_reduce_phases_same_bits)
{
    /* a box latency of a second makes every all-reduce one phase, of a picosecond two phases
     * where the gradient has rows to split */
    make_dir();
    char one[128], two[128];
    put("one.json", FILE_OF(CPU_FIGURES("1")), one, sizeof one);
    put("two.json", FILE_OF(CPU_FIGURES("1e-12")), two, sizeof two);
    enum { NW = 784 * 256 + 256 * 10 };
    float *w1 = malloc(NW * sizeof *w1), *w2 = malloc(NW * sizeof *w2);
    loom_graph *g1 = loom_graph_new(), *g2 = loom_graph_new();
    loom_program *p1 = mlp(g1, one), *p2 = mlp(g2, two);
    ck_assert_int_eq(reduce_scatters(p1), 0);
    ck_assert_int_ge(reduce_scatters(p2), 4 * 2); /* both weights' gradients at least, on every device */
    train(p1, g1, w1);
    train(p2, g2, w2);
    ck_assert_msg(!memcmp(w1, w2, NW * sizeof *w1), "one-phase and two-phase all-reduces give different parameters");
    loom_program_free(p1);
    loom_program_free(p2);
    loom_graph_free(g1);
    loom_graph_free(g2);
    free(w1);
    free(w2);
    remove_dir();
}
END_TEST

/* The step's plan printed, into buf. */
static void plan_text(loom_program *p, char *buf, size_t len)
{
    FILE *f = fmemopen(buf, len, "w");
    ck_assert(f != NULL);
    ck_assert(loom_program_print_plan(p, f) == LOOM_OK);
    fclose(f);
    buf[len - 1] = 0;
}

START_TEST(test_calibration_measured_and_used)
{
    make_dir();
    char path[128], text[1 << 16];
    snprintf(path, sizeof path, "%s/machine.json", dir);
    loom_error e = LOOM_ERROR_INIT;
    ck_assert_msg(loom_calibrate(path, NULL, &e) == LOOM_OK, "%s", e.msg);
    loom__cost_model cm;
    ck_assert_msg(loom__cost_load(path, &cm, &e) == LOOM_OK, "%s", e.msg);
    const loom__cost_dev *d = &cm.dev[LOOM_DEVICE_CPU];
    double rate[] = {d->flops, d->mem_bw, d->box_bw}, lat[] = {d->op_latency, d->lib_latency, d->box_latency, d->step_latency};
    for (size_t i = 0; i < sizeof rate / sizeof *rate; i++)
        ck_assert_msg(rate[i] > 0 && isfinite(rate[i]), "rate %zu is %g", i, rate[i]);
    for (size_t i = 0; i < sizeof lat / sizeof *lat; i++)
        ck_assert_msg(lat[i] >= 0 && isfinite(lat[i]), "latency %zu is %g", i, lat[i]);
    ck_assert_msg(d->thread_gain >= 0 && d->thread_gain <= 1, "thread_gain %g", d->thread_gain);
    ck_assert_msg(d->core_share > 0 && d->core_share <= 1, "core_share %g", d->core_share);
    ck_assert(d->shared);
    /* every case's measured and predicted step are in the file */
    FILE *f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    ck_assert_ptr_nonnull(strstr(text, "\"large all-reduces\""));
    ck_assert_ptr_nonnull(strstr(text, "\"small matrix products\""));
    ck_assert_ptr_nonnull(strstr(text, "\"lib_latency\": "));
    ck_assert_ptr_nonnull(strstr(text, "\"thread_gain\": "));
    if (loom__pool_cores() > 1) /* measured from the matrix products on one thread and on all */
        ck_assert_ptr_nonnull(strstr(text, "\"matrix products, one thread\""));
    ck_assert_ptr_nonnull(strstr(text, "\"net_bw\": 4e+11")); /* the network's, as given: one machine does not measure it */
    ck_assert_ptr_nonnull(strstr(text, "\"measured_s\""));
    /* a compile takes it, by option and by $LOOM_COST_MODEL, and the plan says so */
    loom_graph *g = loom_graph_new();
    loom_program *p = mlp(g, path);
    plan_text(p, text, sizeof text);
    ck_assert_msg(strstr(text, path) && strstr(text, "predicted step"), "%s", text);
    loom_program_free(p);
    loom_graph_free(g);
    setenv("LOOM_COST_MODEL", path, 1);
    g = loom_graph_new();
    p = mlp(g, NULL);
    plan_text(p, text, sizeof text);
    ck_assert_msg(strstr(text, path) != NULL, "%s", text);
    loom_program_free(p);
    loom_graph_free(g);
    unsetenv("LOOM_COST_MODEL");
    remove_dir();
}
END_TEST

/* Compiling with the file of this text fails with a message holding every one of the wanted
 * strings. */
static void refused(const char *name, const char *text, const char *want1, const char *want2)
{
    char path[128];
    if (text)
        put(name, text, path, sizeof path);
    else
        snprintf(path, sizeof path, "%s/%s", dir, name);
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(4, 4));
    loom_tensor *loss = loom_mean(g, loom_nn_linear(g, "fc", x, 2, 0), 3u, 0);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.cost_model = path;
    loom_program *p = NULL;
    ck_assert_int_ne(loom_compile(g, loss, &o, &p), LOOM_OK);
    ck_assert(p == NULL);
    const char *msg = loom_graph_error(g);
    ck_assert_msg(strstr(msg, path) && strstr(msg, want1) && (!want2 || strstr(msg, want2)), "%s: %s", name, msg);
    loom_graph_free(g);
}

START_TEST(test_bad_calibration_files)
{
    make_dir();
    refused("missing.json", NULL, "cannot open", NULL);
    refused("empty.json", "", "byte 0", NULL);
    refused("array.json", "[1, 2]", "byte 0", "expected an object");
    refused("format.json", "{\"format\": \"other\", \"version\": 1, \"devices\": {}}", "byte 11", "loom-cost-model");
    refused("version.json", "{\"format\": \"loom-cost-model\", \"version\": 2, \"devices\": {}}", "byte 41", "\"version\": 1");
    refused("kind.json", "{\"format\": \"loom-cost-model\", \"version\": 1, \"devices\": {\"tpu\": {}}}", "byte 63",
            "unknown device kind 'tpu'");
    refused("negative.json", FILE_OF(CPU_FIGURES("-1")), "'box_latency' must be a non-negative number", "byte");
    refused("string.json", FILE_OF("{\"flops\": \"fast\"}"), "'flops' must be a positive number", "byte");
    refused("unknown.json", FILE_OF("{\"flop\": 1e9}"), "unknown figure 'flop'", "byte");
    refused("missing_figure.json", FILE_OF("{\"flops\": 1e9, \"shared\": true}"), "the figure 'mem_bw' is missing", "byte");
    refused("truncated.json", "{\"format\": \"loom-cost-model\", \"version\": 1, \"devices\": {\"cpu\": {\"flops\": 1e9",
            "byte", NULL);
    remove_dir();
}
END_TEST

START_TEST(test_one_device_plan_has_costs)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(64, 32));
    loom_tensor *loss = loom_mean(g, loom_nn_linear(g, "fc", x, 8, 1), 3u, 0);
    loom_program *p = NULL;
    ck_assert(loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_sgd(0.1)}, &p) == LOOM_OK);
    char text[1 << 14];
    plan_text(p, text, sizeof text);
    ck_assert_msg(strstr(text, "one device") && strstr(text, "matmul") && strstr(text, " us ") &&
                      strstr(text, "predicted step") && strstr(text, "built-in"),
                  "%s", text);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

/* A graph of x and w, [n, n] each, with relu(x) in *r and x w in *m. */
static loom_graph *relu_and_matmul(int64_t n, loom_tensor **r, loom_tensor **m)
{
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(n, n));
    loom_tensor *w = loom_input(g, "w", LOOM_F32, loom_shape(n, n));
    *r = loom_relu(g, x);
    *m = loom_matmul(g, x, w);
    ck_assert_int_eq(loom_graph_status(g), LOOM_OK);
    return g;
}

/* CPU devices share the machine's cores (C = 2 here, whose rates the figures are) and the
 * program's kernel threads (T): an op whose kernel splits over them (matmul) costs as much on one
 * device of two threads as split over two devices, but twice that on one device of one thread;
 * one that runs on one thread (relu) costs twice as much on one device as split over two; past
 * the cores, devices queue (their acts count n / C each). The bugs this catches: every op at 1/n
 * of the machine's rate (one device's relu predicted twice as fast as measured), and a program of
 * one thread priced at the rate of all the cores. */
START_TEST(test_threads_share_the_cores)
{
    loom_tensor *r, *m;
    loom_graph *g = relu_and_matmul(1024, &r, &m);
    loom__cost_model cm;
    loom__cost_default(&cm);
    loom__sbp_sig whole = {.in = {loom_broadcast(), loom_broadcast()}, .out = loom_broadcast()};
    loom__sbp_sig rows = {.in = {loom_split(0), loom_broadcast()}, .out = loom_split(0)};
    double t[LOOM__COST_TERMS];
    cm.dev[LOOM_DEVICE_CPU].cores = 2;
    for (int threads = 1; threads <= 2; threads++) {
        cm.dev[LOOM_DEVICE_CPU].threads = threads;
        double r1[LOOM__COST_TERMS] = {0}, r2[LOOM__COST_TERMS] = {0}, m1[LOOM__COST_TERMS] = {0}, m2[LOOM__COST_TERMS] = {0};
        loom__op_terms(r, &whole, 1, &cm, r1);
        loom__op_terms(r, &rows, 2, &cm, r2);
        loom__op_terms(m, &whole, 1, &cm, m1);
        loom__op_terms(m, &rows, 2, &cm, m2);
        ck_assert_msg(m2[LOOM__TERM_FLOPS] > 0 && m1[LOOM__TERM_FLOPS] == (threads == 1 ? 2 : 1) * m2[LOOM__TERM_FLOPS],
                      "threads %d: matmul's flops %g on one device, %g split over two", threads, m1[LOOM__TERM_FLOPS],
                      m2[LOOM__TERM_FLOPS]);
        ck_assert_msg(r2[LOOM__TERM_BYTES] > 0 && r1[LOOM__TERM_BYTES] == 2 * r2[LOOM__TERM_BYTES],
                      "threads %d: relu's bytes %g on one device, %g split over two", threads, r1[LOOM__TERM_BYTES],
                      r2[LOOM__TERM_BYTES]);
        ck_assert_double_eq(r2[LOOM__TERM_OPS], 1); /* 2 devices on 2 cores: no queue */
    }
    memset(t, 0, sizeof t);
    loom__op_terms(r, &rows, 4, &cm, t); /* 4 devices on 2 cores */
    ck_assert_double_eq_tol(t[LOOM__TERM_OPS], 2, 1e-12);
    /* a quarter of its bytes each, at a quarter of the rate: the whole at the machine's */
    ck_assert_double_eq_tol(t[LOOM__TERM_BYTES], 2 * 1024.0 * 1024 * 4, 1e-3);
    /* the threads' gain: a split op of one device gets 1 + gain of the 2 cores' rate; devices of
     * one core each, and one-thread ops, are as before */
    cm.dev[LOOM_DEVICE_CPU].threads = 2;
    for (int k = 0; k <= 2; k++) {
        cm.dev[LOOM_DEVICE_CPU].thread_gain = k / 2.0;
        double m1[LOOM__COST_TERMS] = {0}, m2[LOOM__COST_TERMS] = {0}, r1[LOOM__COST_TERMS] = {0}, r2[LOOM__COST_TERMS] = {0};
        loom__op_terms(m, &whole, 1, &cm, m1);
        loom__op_terms(m, &rows, 2, &cm, m2);
        loom__op_terms(r, &whole, 1, &cm, r1);
        loom__op_terms(r, &rows, 2, &cm, r2);
        ck_assert_msg(fabs(m1[LOOM__TERM_FLOPS] * (1 + k / 2.0) - 2 * m2[LOOM__TERM_FLOPS]) < 1e-6 * m2[LOOM__TERM_FLOPS],
                      "gain %g: matmul's flops %g on one device, %g split over two", k / 2.0, m1[LOOM__TERM_FLOPS],
                      m2[LOOM__TERM_FLOPS]);
        ck_assert_double_eq(r1[LOOM__TERM_BYTES], 2 * r2[LOOM__TERM_BYTES]);
    }
    /* core_share: two devices that get 1.5 of the 2 cores run 4/3 as long, ops on one thread and
     * split ones alike; one device is as before; no share below one core */
    cm.dev[LOOM_DEVICE_CPU].thread_gain = 1;
    for (int k = 0; k < 3; k++) {
        double share[] = {1, 0.75, 0.25}, slower[] = {1, 4.0 / 3, 2}; /* 0.25 of 2 cores: held at one */
        double a1[LOOM__COST_TERMS] = {0}, a2[LOOM__COST_TERMS] = {0}, b1[LOOM__COST_TERMS] = {0}, b2[LOOM__COST_TERMS] = {0};
        cm.dev[LOOM_DEVICE_CPU].core_share = 1;
        loom__op_terms(m, &rows, 2, &cm, a1);
        loom__op_terms(r, &rows, 2, &cm, b1);
        loom__op_terms(m, &whole, 1, &cm, t);
        cm.dev[LOOM_DEVICE_CPU].core_share = share[k];
        loom__op_terms(m, &rows, 2, &cm, a2);
        loom__op_terms(r, &rows, 2, &cm, b2);
        double one[LOOM__COST_TERMS] = {0};
        loom__op_terms(m, &whole, 1, &cm, one);
        ck_assert_msg(fabs(a2[LOOM__TERM_FLOPS] - slower[k] * a1[LOOM__TERM_FLOPS]) < 1e-6 * a1[LOOM__TERM_FLOPS] &&
                          fabs(b2[LOOM__TERM_BYTES] - slower[k] * b1[LOOM__TERM_BYTES]) < 1e-6 * b1[LOOM__TERM_BYTES],
                      "core_share %g: matmul's flops %g (was %g), relu's bytes %g (was %g)", share[k], a2[LOOM__TERM_FLOPS],
                      a1[LOOM__TERM_FLOPS], b2[LOOM__TERM_BYTES], b1[LOOM__TERM_BYTES]);
        ck_assert_double_eq(one[LOOM__TERM_FLOPS], t[LOOM__TERM_FLOPS]);
        memset(t, 0, sizeof t);
    }
    cm.dev[LOOM_DEVICE_CPU].core_share = 1;
    cm.dev[LOOM_DEVICE_CPU].thread_gain = 0; /* 4 devices on 2 cores: half a core each, whatever the gain */
    memset(t, 0, sizeof t);
    loom__op_terms(m, &rows, 4, &cm, t);
    double t1[LOOM__COST_TERMS] = {0};
    cm.dev[LOOM_DEVICE_CPU].thread_gain = 1;
    loom__op_terms(m, &rows, 4, &cm, t1);
    ck_assert_double_eq(t[LOOM__TERM_FLOPS], t1[LOOM__TERM_FLOPS]);
    cm.dev[LOOM_DEVICE_CPU].cores = 1;
    memset(t, 0, sizeof t);
    loom__op_terms(r, &rows, 2, &cm, t); /* 2 devices on one core queue */
    ck_assert_double_eq_tol(t[LOOM__TERM_OPS], 2, 1e-12);
    loom_graph_free(g);
}
END_TEST

/* A program's kernel threads by default: the cores each of its devices gets, at least one (one
 * device: every core; cpu:0-1 on 2 cores: one each); loom_train_opts.threads overrides. */
START_TEST(test_default_threads)
{
    const int cores = loom__pool_cores();
    const char *spec[] = {"cpu:0", "cpu:0-1", "cpu:0-3"};
    const int ndev[] = {1, 2, 4};
    for (int i = 0; i < 3; i++)
        for (int given = 0; given <= 3; given += 3) {
            loom_error e = LOOM_ERROR_INIT;
            loom_graph *g = loom_graph_new();
            loom_placement *pl = loom_placement_parse(spec[i], &e);
            loom_graph_set_placement(g, pl);
            loom_placement_free(pl);
            loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(8, 4));
            loom_tensor_set_sbp(x, loom_split(0));
            loom_tensor *y = loom_scale(g, x, 2);
            loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
            o.threads = given;
            loom_program *p = NULL;
            ck_assert_msg(loom_compile(g, NULL, &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
            (void)y;
            int want = given ? given : cores / ndev[i] > 1 ? cores / ndev[i] : 1;
            ck_assert_msg(p->threads == want && p->cost.dev[LOOM_DEVICE_CPU].threads == want, "%s, threads %d: %d (wanted %d)",
                          spec[i], given, p->threads, want);
            loom_program_free(p);
            loom_graph_free(g);
        }
}
END_TEST

/* Parses text as a calibration into *cm; the message into msg. */
static int parse(const char *text, loom__cost_model *cm, char *msg, size_t len)
{
    return loom__cost_parse(text, strlen(text), "t.json", cm, msg, len);
}

/* text refused at the byte where `at` first occurs in it, with a message holding want. */
static void refused_at(const char *text, const char *at, const char *want)
{
    loom__cost_model cm;
    char msg[256], byte[32];
    ck_assert_ptr_nonnull(strstr(text, at));
    snprintf(byte, sizeof byte, "byte %zu:", (size_t)(strstr(text, at) - text));
    ck_assert_int_eq(parse(text, &cm, msg, sizeof msg), -1);
    ck_assert_msg(strstr(msg, "t.json") && strstr(msg, byte) && strstr(msg, want), "%s (wanted %s %s)", msg, byte, want);
}

#define LIB_FIGURES(lib, step)                                                                                       \
    "{\"flops\": 1e11, \"mem_bw\": 1e10, \"op_latency\": 1e-5, \"lib_latency\": " lib ", \"box_latency\": 2e-5, " \
    "\"box_bw\": 1e10, \"step_latency\": " step ", \"shared\": true}"

#define NET_FIGURES(lat, bw)                                                                                         \
    "{\"flops\": 1e11, \"mem_bw\": 1e10, \"op_latency\": 1e-5, \"box_latency\": 2e-5, \"box_bw\": 1e10, "                \
    "\"step_latency\": 5e-5, \"net_latency\": " lat ", \"net_bw\": " bw ", \"shared\": true}"

#define GAIN_FIGURES(gain)                                                                                           \
    "{\"flops\": 1e11, \"mem_bw\": 1e10, \"op_latency\": 1e-5, \"box_latency\": 2e-5, \"box_bw\": 1e10, "                \
    "\"step_latency\": 5e-5, \"thread_gain\": " gain ", \"shared\": true}"

#define SHARE_FIGURES(share)                                                                                         \
    "{\"flops\": 1e11, \"mem_bw\": 1e10, \"op_latency\": 1e-5, \"box_latency\": 2e-5, \"box_bw\": 1e10, "                \
    "\"step_latency\": 5e-5, \"core_share\": " share ", \"shared\": true}"

/* lib_latency, and the network's figures (net_latency, net_bw): read when there, the built-in
 * figure when not (a file written before it was a figure); a latency may be 0 (a calibration fits
 * one so), below 0 or not a number is refused at its byte; a rate of 0 is refused. */
START_TEST(test_lib_latency_read)
{
    loom__cost_model cm, def;
    loom__cost_default(&def);
    char msg[256];
    ck_assert_msg(parse(FILE_OF(LIB_FIGURES("7e-6", "0")), &cm, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].lib_latency, 7e-6);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].step_latency, 0);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CUDA].lib_latency, def.dev[LOOM_DEVICE_CUDA].lib_latency);
    ck_assert_msg(parse(FILE_OF(CPU_FIGURES("2e-5")), &cm, msg, sizeof msg) == 0, "%s", msg);
    ck_assert(def.dev[LOOM_DEVICE_CPU].lib_latency > 0);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].lib_latency, def.dev[LOOM_DEVICE_CPU].lib_latency);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].op_latency, 1e-5);
    refused_at(FILE_OF(LIB_FIGURES("-1e-6", "5e-5")), "-1e-6", "'lib_latency' must be a non-negative number");
    refused_at(FILE_OF(LIB_FIGURES("\"slow\"", "5e-5")), "\"slow\"", "'lib_latency' must be a non-negative number");
    refused_at(FILE_OF(LIB_FIGURES("1e999", "5e-5")), "1e999", "'lib_latency' must be a non-negative number");
    refused_at(FILE_OF(LIB_FIGURES("1e-6", "-5e-5")), "-5e-5", "'step_latency' must be a non-negative number");
    refused_at(FILE_OF("{\"flops\": 0}"), "0}", "'flops' must be a positive number");
    refused_at(FILE_OF("{\"lib_latncy\": 1e-6}"), "1e-6", "unknown figure 'lib_latncy'");
    /* thread_gain: a number from 0 to 1, the built-in 1 when left out */
    ck_assert_double_eq(def.dev[LOOM_DEVICE_CPU].thread_gain, 1);
    ck_assert_msg(parse(FILE_OF(GAIN_FIGURES("0.25")), &cm, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].thread_gain, 0.25);
    ck_assert_msg(parse(FILE_OF(GAIN_FIGURES("0")), &cm, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].thread_gain, 0);
    refused_at(FILE_OF(GAIN_FIGURES("1.5")), "1.5", "'thread_gain' must be a number from 0 to 1");
    refused_at(FILE_OF(GAIN_FIGURES("-0.1")), "-0.1", "'thread_gain' must be a number from 0 to 1");
    refused_at(FILE_OF(GAIN_FIGURES("true")), "true", "'thread_gain' must be a number from 0 to 1");
    ck_assert_msg(parse(FILE_OF(CPU_FIGURES("2e-5")), &cm, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].thread_gain, 1);
    /* core_share: above 0, at most 1, the built-in 1 when left out */
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].core_share, 1);
    ck_assert_msg(parse(FILE_OF(SHARE_FIGURES("0.6")), &cm, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].core_share, 0.6);
    refused_at(FILE_OF(SHARE_FIGURES("0")), "0, \"shared", "'core_share' must be a number above 0, at most 1");
    refused_at(FILE_OF(SHARE_FIGURES("1.01")), "1.01", "'core_share' must be a number above 0, at most 1");
    /* the parse refused leaves the model as it was */
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].op_latency, 1e-5);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].net_latency, 10e-6);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].net_bw, 400e9);
    ck_assert_msg(parse(FILE_OF(NET_FIGURES("2e-6", "1.25e10")), &cm, msg, sizeof msg) == 0, "%s", msg);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].net_latency, 2e-6);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CPU].net_bw, 1.25e10);
    ck_assert_double_eq(cm.dev[LOOM_DEVICE_CUDA].net_bw, def.dev[LOOM_DEVICE_CUDA].net_bw);
    refused_at(FILE_OF(NET_FIGURES("-1", "1e10")), "-1", "'net_latency' must be a non-negative number");
    refused_at(FILE_OF(NET_FIGURES("1e-5", "0")), "0, \"shared", "'net_bw' must be a positive number");
}
END_TEST

/* A case of the calibration's shape: ops elementwise, libs of them library calls. */
static loom__cost_case fit_case(double ops, double libs, double flops, double bytes, double boxes, double box_bytes)
{
    return (loom__cost_case){.terms = {[LOOM__TERM_OPS] = ops, [LOOM__TERM_LIBS] = libs, [LOOM__TERM_FLOPS] = flops,
                                       [LOOM__TERM_BYTES] = bytes, [LOOM__TERM_BOXES] = boxes,
                                       [LOOM__TERM_BOX_BYTES] = box_bytes, [LOOM__TERM_STEPS] = 1}};
}

/* The fit recovers the figures the steps were made of, every one of the seven, from the built-in
 * ones; a term no case has keeps its figure. */
START_TEST(test_fit_recovers_figures)
{
    loom__cost_dev truth = {.flops = 3e11, .mem_bw = 2e10, .op_latency = 1.5e-6, .lib_latency = 6e-6, .box_latency = 9e-6,
                            .box_bw = 5e9, .step_latency = 2.5e-5, .shared = 1};
    loom__cost_case c[] = {
        fit_case(8, 0, 0, 8 * 768, 0, 0),               /* small ops */
        fit_case(48, 0, 0, 48 * 768, 0, 0),             /* many small ops */
        fit_case(16, 16, 16 * 221184.0, 0, 0, 0),       /* small matrix products */
        fit_case(8, 0, 0, 8 * 8.0 * (1 << 20), 0, 0),   /* large elementwise ops */
        fit_case(4, 4, 4 * 2 * 256.0 * 512 * 512, 0, 0, 0), /* matrix products */
        fit_case(8, 0, 0, 0, 8, 8 * 1024.0),            /* small all-gathers */
        fit_case(8, 0, 0, 0, 8, 8 * 8.0 * (1 << 20)),   /* large all-gathers */
    };
    enum { N = sizeof c / sizeof *c };
    for (int i = 0; i < N; i++)
        c[i].measured = loom__terms_seconds(c[i].terms, &truth);
    loom__cost_model cm;
    loom__cost_default(&cm);
    loom__cost_dev d = cm.dev[LOOM_DEVICE_CPU];
    int fitted[LOOM__COST_TERMS] = {0};
    loom__cost_fit(c, N, &d, fitted);
    double got[] = {d.flops, d.mem_bw, d.op_latency, d.lib_latency, d.box_latency, d.box_bw, d.step_latency};
    double want[] = {truth.flops, truth.mem_bw, truth.op_latency, truth.lib_latency, truth.box_latency, truth.box_bw,
                     truth.step_latency};
    for (int j = 0; j < 7; j++)
        ck_assert_msg(fabs(got[j] - want[j]) <= 1e-6 * want[j], "figure %d: %g, wanted %g", j, got[j], want[j]);
    for (int j = 0; j < LOOM__COST_TERMS; j++) /* the network's: no case of one machine has them */
        ck_assert_msg(fitted[j] == (j != LOOM__TERM_NET_BOXES && j != LOOM__TERM_NET_BYTES), "term %d fitted: %d", j, fitted[j]);
    /* without library calls in any case, lib_latency keeps its figure and is not fitted */
    for (int i = 0; i < N; i++)
        c[i].terms[LOOM__TERM_LIBS] = 0;
    c[2].measured = loom__terms_seconds(c[2].terms, &truth);
    c[4].measured = loom__terms_seconds(c[4].terms, &truth);
    d = cm.dev[LOOM_DEVICE_CPU];
    memset(fitted, 0, sizeof fitted);
    loom__cost_fit(c, N, &d, fitted);
    ck_assert_double_eq(d.lib_latency, cm.dev[LOOM_DEVICE_CPU].lib_latency);
    ck_assert(!fitted[LOOM__TERM_LIBS] && fitted[LOOM__TERM_OPS]);
    ck_assert_double_eq_tol(d.op_latency, truth.op_latency, 1e-6 * truth.op_latency);
}
END_TEST

/* The steps of an H100: 8 small ops in 10.1 us, 48 in 61.6 us, 16 small products in 120 us. By
 * least squares alone the step's own seconds come out below 0 (-0.2 us): the fit holds them at 0
 * and fits the op latency without them (about 1.27 us, what the steps show), where holding the
 * step at its built-in figure would leave no room for any op latency at all. */
START_TEST(test_fit_latency_not_negative)
{
    loom__cost_case c[] = {fit_case(8, 0, 0, 0, 0, 0), fit_case(48, 0, 0, 0, 0, 0), fit_case(16, 16, 0, 0, 0, 0)};
    c[0].measured = 10.1e-6;
    c[1].measured = 61.6e-6;
    c[2].measured = 120e-6;
    loom__cost_model cm;
    loom__cost_default(&cm);
    loom__cost_dev d = cm.dev[LOOM_DEVICE_CUDA];
    int fitted[LOOM__COST_TERMS] = {0};
    loom__cost_fit(c, 3, &d, fitted);
    ck_assert_msg(d.step_latency == 0, "step latency %g", d.step_latency);
    ck_assert_msg(d.op_latency > 1.2e-6 && d.op_latency < 1.35e-6, "op latency %g", d.op_latency);
    /* the products: 120 us less 16 ops, a call each */
    ck_assert_double_eq_tol(d.lib_latency, (120e-6 - 16 * d.op_latency) / 16, 1e-12);
    ck_assert(fitted[LOOM__TERM_OPS] && fitted[LOOM__TERM_LIBS] && fitted[LOOM__TERM_STEPS]);
    ck_assert(!fitted[LOOM__TERM_FLOPS] && d.flops == cm.dev[LOOM_DEVICE_CUDA].flops);
}
END_TEST

/* A library op (matmul) costs lib_latency more per act, an elementwise one (relu) nothing more;
 * a whole plan's predicted step grows with it. */
START_TEST(test_lib_latency_priced)
{
    loom_tensor *r, *m;
    loom_graph *g = relu_and_matmul(64, &r, &m);
    loom__cost_model a, b;
    loom__cost_default(&a);
    a.dev[LOOM_DEVICE_CPU].cores = 2;
    a.dev[LOOM_DEVICE_CPU].lib_latency = 0;
    b = a;
    b.dev[LOOM_DEVICE_CPU].lib_latency = 1e-3;
    ck_assert_double_eq_tol(loom__op_seconds(m, NULL, 1, &b) - loom__op_seconds(m, NULL, 1, &a), 1e-3, 1e-12);
    ck_assert_double_eq(loom__op_seconds(r, NULL, 1, &b), loom__op_seconds(r, NULL, 1, &a));
    double t[LOOM__COST_TERMS] = {0};
    loom__op_terms(m, NULL, 1, &b, t);
    ck_assert_double_eq(t[LOOM__TERM_LIBS], 1);
    loom_graph_free(g);

    /* the MLP: two products forward, three backward (no gradient of x), on every device */
    g = loom_graph_new();
    loom_program *p = mlp(g, NULL);
    loom__prediction pa, pb;
    ck_assert_int_eq(loom__program_predict(p, &a, &pa), 0);
    ck_assert_int_eq(loom__program_predict(p, &b, &pb), 0);
    ck_assert_msg(pb.terms[LOOM__TERM_LIBS] >= 5, "library calls %g", pb.terms[LOOM__TERM_LIBS]);
    ck_assert_msg(pb.seconds >= pa.seconds + 5e-3, "predicted %g s with lib_latency 1 ms, %g s with 0", pb.seconds, pa.seconds);
    loom_program_free(p);
    loom_graph_free(g);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cost");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_bad_calibration_files);
    tcase_add_test(tc, test_one_device_plan_has_costs);
    tcase_add_test(tc, test_all_reduce_phases_same_bits);
    tcase_add_test(tc, test_calibration_measured_and_used);
    tcase_add_test(tc, test_threads_share_the_cores);
    tcase_add_test(tc, test_default_threads);
    tcase_add_test(tc, test_lib_latency_read);
    tcase_add_test(tc, test_fit_recovers_figures);
    tcase_add_test(tc, test_fit_latency_not_negative);
    tcase_add_test(tc, test_lib_latency_priced);
    suite_add_tcase(s, tc);
    SRunner *r = srunner_create(s);
    srunner_run_all(r, CK_NORMAL);
    int failed = srunner_ntests_failed(r);
    srunner_free(r);
    return failed ? 1 : 0;
}
