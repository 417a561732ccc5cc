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
    char cached[4200];
    if (!o.cost && !getenv("LOOM_COST_MODEL") && cli_cost_cache(cached, sizeof cached, 0) == 0 && access(cached, R_OK) == 0)
        o.cost = cached; /* this machine's calibration, where `loom calibrate` wrote one */
    cli_run r;
    if ((rc = cli_run_new(&r, "plan", m, &o, 1)) != 0) {
        cli_run_free(&r);
        return rc;
    }
    printf("model %s on %s: ", m->name, o.placement);
    if (loom_program_print_plan(r.p, stdout) != LOOM_OK)
        rc = 1;
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
