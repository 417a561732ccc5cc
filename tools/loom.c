/* The loom command-line program.
 *
 *     loom train MODEL [options]   trains a model (gcn, gat, in, gin, mlp, lenet, convnet,
 *                                  resnet20) on its data: a line or a progress bar per epoch,
 *                                  --metrics as JSON lines, --checkpoint DIR and --resume, --plot
 *                                  FILE.png (gnuplot)
 *     loom bench MODEL [options]   a short timed run of its training steps: one JSON line
 *     loom plan MODEL [options]    the SBP plan of its training step on --placement (cpu:0-3):
 *                                  each op's signature and why, every boxing op and the bytes it
 *                                  moves; --dot FILE (Graphviz), --tasks and --json FILE (the
 *                                  compiled plan), --cost FILE (a calibration; else
 *                                  $LOOM_COST_MODEL's, else this machine's cached one)
 *     loom plan FILE.json          a plan written as JSON by any program, printed
 *     loom calibrate [--output FILE] [--force]
 *                                  measures this machine for the cost model (loom_calibrate) into
 *                                  FILE, by default this machine's cache ($XDG_CACHE_HOME or
 *                                  ~/.cache, loom/cost-model-HOST.json)
 *     loom info | loom ops         what this build has; the op registry
 *     loom help COMMAND, loom COMMAND --help
 *                                  a command's options, the models and examples
 *
 * The options are in tools/args.c, the models in tools/models.c. Exit status: 0; 1 when compiling,
 * training or a write fails; 2 for a usage error (a missing or bad option value, an unknown
 * option, command or model; the usage line on stderr); 130 for a training run interrupted.
 */
#include "tools/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

int cli_cost_cache(char *path, size_t len, int make)
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
                return fprintf(stderr, "loom calibrate: --output needs a value\n"), cli_usage(stderr, "calibrate");
            out = argv[++i];
        } else {
            return fprintf(stderr, "loom calibrate: unknown %s '%s'\n", argv[i][0] == '-' ? "option" : "argument", argv[i]),
                   cli_usage(stderr, "calibrate");
        }
    }
    char path[4200];
    if (!out && cli_cost_cache(path, sizeof path, 1) != 0)
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
        return cli_usage(stderr, NULL);
    const char *c = argv[1];
    if (!strcmp(c, "-h") || !strcmp(c, "--help"))
        return argc > 2 ? cli_help(argv[2]) : cli_usage(stdout, NULL);
    if (!strcmp(c, "help"))
        return argc > 3 ? (fprintf(stderr, "loom help: unknown argument '%s'\n", argv[3]), 2)
               : argc > 2 ? cli_help(argv[2]) : cli_usage(stdout, NULL);
    if (!strcmp(c, "train"))
        return cli_train(argc, argv);
    if (!strcmp(c, "bench"))
        return cli_bench(argc, argv);
    if (!strcmp(c, "plan"))
        return cli_plan(argc, argv);
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return cli_help(c);
    if (!strcmp(c, "calibrate"))
        return calibrate(argc, argv);
    int known = !strcmp(c, "info") || !strcmp(c, "ops");
    if (!known)
        return fprintf(stderr, "loom: unknown command '%s'\n", c), cli_usage(stderr, NULL);
    if (argc > 2)
        return fprintf(stderr, "loom %s: unknown argument '%s'\n", c, argv[2]), cli_usage(stderr, c);
    return !strcmp(c, "info") ? info() : ops();
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
