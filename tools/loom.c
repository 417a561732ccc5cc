/* The loom command-line program.
 *
 *     loom info     what this build has: version, CUDA devices, registered ops
 *     loom ops      the op registry, one op a line
 *     loom plan MODEL [--placement P] [--dot FILE] [--tasks] [--json FILE]
 *                   the SBP plan of a model's training step on placement P (default cpu:0-3):
 *                   each op's signature and why, every boxing op and the bytes it moves.
 *                   Models: gcn (Cora's sizes, 2 layers, hidden 16), mlp (784-128-10).
 *                   --dot writes the plan as Graphviz; on one device, one cluster and no boxing.
 *                   --tasks prints the compiled plan the actors run: each task, register and
 *                   device's memory. --json writes that plan as JSON.
 *                   --cost FILE takes the cost model's figures from a calibration (else
 *                   $LOOM_COST_MODEL's, else this machine's cached by loom calibrate, else the
 *                   built-in ones): each op's and boxing's seconds and the predicted step are
 *                   printed.
 *     loom plan FILE.json
 *                   the tasks, registers and memory of a plan written as JSON by any program
 *                   (loom_program_write_plan, or --json above).
 *     loom calibrate [--output FILE] [--force]
 *                   measures this machine for the cost model (loom_calibrate, a few seconds) and
 *                   writes the figures to FILE, by default this machine's cache
 *                   ($XDG_CACHE_HOME or ~/.cache, loom/cost-model-HOST.json); a calibration
 *                   already there is shown, not measured again, unless --force.
 *
 * Exit status: 0; 1 when compiling or a write fails (the dot file, standard output); 2 for a usage
 * error (a missing option value, an unknown option, command or model; the usage line on stderr).
 */
#include <loom/loom.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int usage(FILE *f)
{
    fprintf(f, "usage: loom info | loom ops | loom plan gcn|mlp [--placement P] [--dot FILE] [--tasks] [--json FILE]"
               " [--cost FILE] | loom plan FILE.json | loom calibrate [--output FILE] [--force]\n");
    return f == stderr ? 2 : 0;
}

static int info(void)
{
    loom_error why = {0};
    int n = loom_cuda_device_count(&why);
    printf("loom %s\n", LOOM_VERSION);
    printf("cuda devices: %d%s%s\n", n, n ? "" : " (", n ? "" : why.msg[0] ? why.msg : "none found");
    if (!n)
        printf(")\n");
    printf("ops: %d\n", loom_op_count());
    return 0;
}

static int ops(void)
{
    for (int i = 0; i < loom_op_count(); i++) {
        loom_op_about a = {0};
        if (loom_op_info(i, &a) != LOOM_OK)
            a.name = "(missing)";
        printf("%-28s %s%s\n", a.name, a.has_grad ? "grad" : "-", a.is_leaf ? " leaf" : "");
    }
    return 0;
}

/* The training step of a model of nn/, on shapes alone (no data is read). */
static loom_tensor *build_model(loom_graph *g, const char *model)
{
    if (!strcmp(model, "gcn")) {
        loom_dim N = loom_dim_dynamic(g, "N", 2708);
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 1433));
        loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F32, N, N);
        loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(N));
        return loom_softmax_cross_entropy(g, loom_nn_gcn(g, adj, x, 16, 7, 0.5), y, NULL);
    }
    if (!strcmp(model, "mlp")) {
        loom_dim N = loom_dim_dynamic(g, "N", 256);
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, 784));
        loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(N));
        loom_tensor *h = loom_relu(g, loom_nn_linear(g, "fc1", x, 128, 1));
        return loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 10, 1), y, NULL);
    }
    return NULL;
}

/* Writes the program's Graphviz graph (json 0) or its step's plan as JSON (json 1) to path; 0, or
 * 1 with a message when a write or the close fails (a full disk shows only at the close, when the
 * buffer is flushed). */
static int write_to(loom_program *p, const char *path, int json)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return fprintf(stderr, "loom plan: cannot write %s: %s\n", path, strerror(errno)), 1;
    loom_status s = json ? loom_program_write_plan(p, LOOM_RUN_STEP, LOOM_PLAN_JSON, f) : loom_program_write_dot(p, f);
    int failed = s != LOOM_OK || ferror(f);
    int err = errno;
    if (fclose(f) != 0 && !failed)
        failed = 1, err = errno;
    if (failed)
        return fprintf(stderr, "loom plan: cannot write %s: %s\n", path, s == LOOM_ERR_NOMEM ? "out of memory" : strerror(err)), 1;
    printf("wrote %s\n", path);
    return 0;
}

static int cache_path(char *path, size_t len, int make);

static int plan(int argc, char **argv)
{
    const char *model = NULL, *placement = "cpu:0-3", *dot = NULL, *json = NULL, *cost = NULL;
    int tasks = 0;
    for (int i = 2; i < argc; i++) {
        const char **value = !strcmp(argv[i], "--placement") ? &placement
                             : !strcmp(argv[i], "--dot")     ? &dot
                             : !strcmp(argv[i], "--json")    ? &json
                             : !strcmp(argv[i], "--cost")    ? &cost
                                                             : NULL;
        if (!strcmp(argv[i], "--tasks")) {
            tasks = 1;
        } else if (value) {
            if (i + 1 == argc)
                return fprintf(stderr, "loom plan: %s needs a value\n", argv[i]), usage(stderr);
            *value = argv[++i];
        } else if (argv[i][0] == '-' || model) {
            return fprintf(stderr, "loom plan: unknown %s '%s'\n", argv[i][0] == '-' ? "option" : "argument", argv[i]),
                   usage(stderr);
        } else {
            model = argv[i];
        }
    }
    if (!model)
        return fprintf(stderr, "loom plan: which model?\n"), usage(stderr);
    size_t len = strlen(model);
    if (len > 5 && !strcmp(model + len - 5, ".json")) { /* a plan written before */
        if (dot || json || tasks || cost || argc > 3)
            return fprintf(stderr, "loom plan: a plan file takes no options\n"), usage(stderr);
        loom_error e = LOOM_ERROR_INIT;
        if (loom_plan_file_print(model, stdout, &e) != LOOM_OK)
            return fprintf(stderr, "loom plan: %s\n", e.msg), 1;
        return 0;
    }
    loom_error err = {0};
    loom_placement *pl = loom_placement_parse(placement, &err);
    if (!pl)
        return fprintf(stderr, "loom plan: %s\n", err.msg), 2;
    int rc = 0;
    loom_program *p = NULL;
    loom_graph *g = loom_graph_new();
    loom_graph_set_placement(g, pl);
    loom_tensor *loss = build_model(g, model);
    if (!loss) {
        fprintf(stderr, "loom plan: unknown model '%s' (gcn, mlp)\n", model);
        rc = 2;
        goto out;
    }
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_adam(0.01);
    char cached[4200];
    if (!cost && !getenv("LOOM_COST_MODEL") && cache_path(cached, sizeof cached, 0) == 0 && access(cached, R_OK) == 0)
        cost = cached; /* this machine's calibration, where `loom calibrate` wrote one */
    o.cost_model = cost;
    if (loom_compile(g, loss, &o, &p) != LOOM_OK) {
        fprintf(stderr, "loom plan: %s\n", loom_graph_error(g));
        rc = 1;
        goto out;
    }
    char ps[128];
    loom_placement_str(pl, ps, sizeof ps);
    printf("model %s on %s: ", model, ps);
    if (loom_program_print_plan(p, stdout) != LOOM_OK)
        rc = 1;
    if (tasks && rc == 0) {
        printf("\nthe compiled plan of a training step:\n");
        if (loom_program_write_plan(p, LOOM_RUN_STEP, LOOM_PLAN_TEXT, stdout) != LOOM_OK)
            rc = (fprintf(stderr, "loom plan: %s\n", loom_program_error(p)), 1);
    }
    if (dot && rc == 0)
        rc = write_to(p, dot, 0);
    if (json && rc == 0)
        rc = write_to(p, json, 1);
out:
    loom_program_free(p);
    loom_graph_free(g);
    loom_placement_free(pl);
    return rc;
}

/* This machine's calibration: $XDG_CACHE_HOME/loom/cost-model-HOST.json (~/.cache without it),
 * its directories made when make; 0, or -1 with why (said when make). */
static int cache_path(char *path, size_t len, int make)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    char dir[4096], host[256] = "";
    if (xdg && *xdg)
        snprintf(dir, sizeof dir, "%s", xdg);
    else if (home && *home)
        snprintf(dir, sizeof dir, "%s/.cache", home);
    else
        return make ? fprintf(stderr, "loom calibrate: neither XDG_CACHE_HOME nor HOME is set; give --output FILE\n"), -1 : -1;
    gethostname(host, sizeof host - 1);
    for (char *c = host; *c; c++)
        if (*c == '/')
            *c = '_';
    size_t n = strlen(dir);
    if (n + 6 >= sizeof dir)
        return fprintf(stderr, "loom calibrate: the cache directory's path is too long\n"), -1;
    memcpy(dir + n, "/loom", 6);
    for (char *c = dir + 1; make && *c; c++) { /* each directory of the path, made when missing */
        if (*c != '/')
            continue;
        *c = 0;
        int bad = mkdir(dir, 0755) != 0 && errno != EEXIST;
        *c = '/';
        if (bad)
            return fprintf(stderr, "loom calibrate: cannot make %.*s: %s\n", (int)(c - dir), dir, strerror(errno)), -1;
    }
    if (make && mkdir(dir, 0755) != 0 && errno != EEXIST)
        return fprintf(stderr, "loom calibrate: cannot make %s: %s\n", dir, strerror(errno)), -1;
    if ((size_t)snprintf(path, len, "%s/cost-model-%s.json", dir, host[0] ? host : "unknown") >= len)
        return fprintf(stderr, "loom calibrate: the cache file's path is too long\n"), -1;
    return 0;
}

static int calibrate(int argc, char **argv)
{
    const char *out = NULL;
    int force = 0;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--force")) {
            force = 1;
        } else if (!strcmp(argv[i], "--output")) {
            if (i + 1 == argc)
                return fprintf(stderr, "loom calibrate: --output needs a value\n"), usage(stderr);
            out = argv[++i];
        } else {
            return fprintf(stderr, "loom calibrate: unknown %s '%s'\n", argv[i][0] == '-' ? "option" : "argument", argv[i]),
                   usage(stderr);
        }
    }
    char path[4200];
    if (!out && cache_path(path, sizeof path, 1) != 0)
        return 1;
    out = out ? out : path;
    FILE *f = force ? NULL : fopen(out, "r");
    if (f) { /* measured before: shown, not measured again */
        printf("the calibration in %s (loom calibrate --force measures again):\n", out);
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            fwrite(buf, 1, n, stdout);
        fclose(f);
    } else {
        loom_error e = LOOM_ERROR_INIT;
        if (loom_calibrate(out, stdout, &e) != LOOM_OK)
            return fprintf(stderr, "loom calibrate: %s\n", e.msg), 1;
        printf("written to %s\n", out);
    }
    printf("use it: LOOM_COST_MODEL=%s (or loom_train_opts.cost_model, or loom plan --cost)\n", out);
    return 0;
}

static int command(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "plan"))
        return plan(argc, argv);
    if (!strcmp(argv[1], "calibrate"))
        return calibrate(argc, argv);
    int known = !strcmp(argv[1], "info") || !strcmp(argv[1], "ops") || !strcmp(argv[1], "-h") ||
                !strcmp(argv[1], "--help") || !strcmp(argv[1], "help");
    if (!known)
        return fprintf(stderr, "loom: unknown command '%s'\n", argv[1]), usage(stderr);
    if (argc > 2)
        return fprintf(stderr, "loom %s: unknown argument '%s'\n", argv[1], argv[2]), usage(stderr);
    if (!strcmp(argv[1], "info"))
        return info();
    if (!strcmp(argv[1], "ops"))
        return ops();
    return usage(stdout);
}

int main(int argc, char **argv)
{
    int rc = command(argc, argv);
    /* what was printed must have reached standard output (loom ops > /dev/full fails) */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "loom: cannot write standard output: %s\n", strerror(errno));
        return rc ? rc : 1;
    }
    return rc;
}
