/* loom plan: the SBP plan of a model's training step (each op's signature and why, every boxing
 * op and the bytes it moves), as text, Graphviz (or a PNG drawn by its dot) or the compiled plan's JSON; or a plan written as
 * JSON before, printed without its program. */
#include "tools/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    if (failed && s != LOOM_OK && s != LOOM_ERR_IO && s != LOOM_ERR_NOMEM) /* refused, not a failed write */
        return remove(path), fprintf(stderr, "loom plan: %s\n", loom_program_error(p)), 1;
    if (failed)
        return fprintf(stderr, "loom plan: cannot write %s: %s\n", path, s == LOOM_ERR_NOMEM ? "out of memory" : strerror(err)), 1;
    printf("wrote %s\n", path);
    return 0;
}

/* Draws the program's Graphviz graph into png with dot; 0, or 1 with a message (dot missing, or
 * failing). */
static int draw(loom_program *p, const char *png)
{
    if (!cli_program_found("dot"))
        return fprintf(stderr, "loom plan: --png needs Graphviz's dot program, which is not on PATH "
                               "(scripts/install-deps.sh --dev installs graphviz; --dot FILE writes the graph without it)\n"),
               1;
    char cmd[4300] = "dot -Tpng -o '";
    size_t k = strlen(cmd);
    for (const char *c = png; *c && k + 6 < sizeof cmd; c++) /* png in single quotes, a quote as '\'' */
        k += *c == '\'' ? (size_t)snprintf(cmd + k, sizeof cmd - k, "'\\''") : (cmd[k] = *c, 1);
    if (k + 2 >= sizeof cmd)
        return fprintf(stderr, "loom plan: --png: the path is too long\n"), 1;
    memcpy(cmd + k, "'", 2);
    FILE *f = popen(cmd, "w");
    if (!f)
        return fprintf(stderr, "loom plan: --png: cannot run dot: %s\n", strerror(errno)), 1;
    loom_status s = loom_program_write_dot(p, f);
    int status = pclose(f);
    if (s != LOOM_OK || status != 0)
        return fprintf(stderr, "loom plan: --png: dot could not write %s (its messages above)\n", png), 1;
    printf("wrote %s\n", png);
    return 0;
}

/* v bytes in decimal units (bandwidths are quoted so: GB/s), into b. */
static const char *si_bytes(double v, char b[32])
{
    static const char *const unit[] = {"B", "kB", "MB", "GB", "TB"};
    int u = 0;
    while (v >= 1000 && u < 4)
        v /= 1000, u++;
    snprintf(b, 32, u ? "%.3g %s" : "%.0f %s", v, unit[u]);
    return b;
}

/* What rank `rank` sends in a step, by collective, and their predicted seconds under links; 0, or
 * 1 with the message. */
static int print_traffic(loom_program *p, int rank, const loom_link_model *links)
{
    loom_traffic t;
    if (loom_program_traffic(p, rank, links, &t) != LOOM_OK)
        return fprintf(stderr, "loom plan: %s\n", loom_program_error(p)), 1;
    char b[3][32];
    printf("\nrank %d: %d tasks on its %d devices; %d node%s of %d devices\n", t.rank, t.ntasks, t.ndevices, t.nodes,
           t.nodes == 1 ? "" : "s", t.per_node);
    printf("links: between nodes %d x %s/s = %s/s a node, %.0f us a step; within a node %s/s a device, %.0f us a step\n",
           links->node_links, si_bytes(links->link_bw, b[0]), si_bytes(links->node_links * links->link_bw, b[1]),
           links->node_latency * 1e6, si_bytes(links->gpu_bw, b[2]), links->gpu_latency * 1e6);
    printf("%-15s %6s %16s %16s %16s %12s  %s\n", "collective", "count", "sent in node", "sent to nodes", "received", "seconds",
           "between nodes");
    double total = 0;
    for (int c = 0; c < LOOM_COLL_COUNT; c++) {
        if (!t.count[c] && !t.gpu_bytes[c])
            continue;
        char s[3][32], algo[48];
        long long trees = t.net_trees[c], rings = t.net_rings[c];
        if (trees && rings)
            snprintf(algo, sizeof algo, "%lld tree, %lld ring", trees, rings);
        else
            snprintf(algo, sizeof algo, "%s", trees ? "tree" : rings ? "ring" : "-");
        printf("%-15s %6lld %16s %16s %16s %12.6f  %s\n", loom_collective_name((loom_collective)c), (long long)t.count[c],
               si_bytes(t.gpu_bytes[c], s[0]), si_bytes(t.node_bytes[c], s[1]), si_bytes(t.gpu_bytes[c] + t.node_bytes[c], s[2]),
               t.seconds[c], algo);
        total += t.seconds[c];
    }
    printf("a step's collectives, one after another: %.6f s (all-reduce: %.6f s)\n", total, t.seconds[LOOM_COLL_ALL_REDUCE]);
    return 0;
}

int cli_plan(int argc, char **argv)
{
    cli_opts o = {0};
    const cli_model *m;
    int rc = cli_command_args("plan", argc, argv, &o, &m);
    if (rc != CLI_GO)
        return rc;
    if (!m) { /* a plan written before */
        if (argc > 3)
            return fprintf(stderr, "loom plan: a plan file takes no options\n"), cli_usage(stderr, "plan");
        loom_error e = LOOM_ERROR_INIT;
        if (loom_plan_file_print(o.model, stdout, &e) != LOOM_OK)
            return fprintf(stderr, "loom plan: %s\n", e.msg), 1;
        return 0;
    }
    if (!o.placement)
        o.placement = "cpu:0-3";
    loom_link_model links = LOOM_LINK_MODEL_INIT;
    loom_error le = LOOM_ERROR_INIT;
    if (loom_link_model_parse(o.link, o.nvlink, &links, &le) != LOOM_OK)
        return fprintf(stderr, "loom plan: --%s: %s\n", strstr(le.msg, "network") ? "link" : "nvlink", le.msg), 2;
    char cached[4200];
    if (!o.cost && !getenv("LOOM_COST_MODEL") && cli_cost_cache(cached, sizeof cached, 0) == 0 && access(cached, R_OK) == 0)
        o.cost = cached; /* this machine's calibration, where `loom calibrate` wrote one */
    cli_run r;
    if ((rc = cli_run_new(&r, "plan", m, &o, 1)) != 0) {
        cli_run_free(&r);
        return rc;
    }
    printf("model %s on %s%s%s: ", m->name, o.placement, o.rank ? ", the plan of rank " : "", o.rank ? o.rank : "");
    if (loom_program_print_plan(r.p, stdout) != LOOM_OK)
        rc = 1;
    if ((o.rank || o.link || o.nvlink) && rc == 0)
        rc = print_traffic(r.p, o.rank ? atoi(o.rank) : 0, &links);
    if (o.tasks && rc == 0) {
        printf("\nthe compiled plan of a training step:\n");
        if (loom_program_write_plan(r.p, LOOM_RUN_STEP, LOOM_PLAN_TEXT, stdout) != LOOM_OK)
            rc = (fprintf(stderr, "loom plan: %s\n", loom_program_error(r.p)), 1);
    }
    if (o.dot && rc == 0)
        rc = write_to(r.p, o.dot, 0);
    if (o.png && rc == 0)
        rc = draw(r.p, o.png);
    if (o.json && rc == 0)
        rc = write_to(r.p, o.json, 1);
    cli_run_free(&r);
    return rc;
}
