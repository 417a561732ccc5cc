/* The loom command's options: one table of every option (its bit, what it takes, its help line), the
 * parser each command calls with the options it accepts, and the usage and help texts. */
#include "tools/cli.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum arg_kind { ARG_FLAG, ARG_TEXT, ARG_COUNT, ARG_REAL, ARG_BYTES } arg_kind;

typedef struct arg {
    const char *name;
    unsigned bit;
    arg_kind kind;
    size_t at; /* the member of cli_opts it sets */
    const char *value, *help;
} arg;

#define AT(member) offsetof(cli_opts, member)
static const arg args[] = {
    {"--data", CLI_O_DATA, ARG_TEXT, AT(data), "D", "what to train on (see the models' list below)"},
    {"--placement", CLI_O_PLACEMENT, ARG_TEXT, AT(placement), "P", "devices: cpu:0, cpu:0-3 (data parallel), cuda:0"},
    {"--sampler", CLI_O_SAMPLER, ARG_TEXT, AT(sampler), "S",
     "graph samples only: random, balance, outlier, skew, budget, devices (default balance)"},
    {"--epochs", CLI_O_EPOCHS, ARG_COUNT, AT(epochs), "N", "epochs to train to (with --resume: in all)"},
    {"--batch", CLI_O_BATCH, ARG_COUNT, AT(batch), "N", "samples a step (images, graphs); not gcn's whole graph"},
    {"--lr", CLI_O_LR, ARG_REAL, AT(lr), "R", "the learning rate (Adam for graph models, SGD momentum 0.9 for images)"},
    {"--checkpoint", CLI_O_CHECKPOINT, ARG_TEXT, AT(checkpoint), "DIR",
     "save the model at each epoch's end into DIR (atomically, the last kept)"},
    {"--resume", CLI_O_RESUME, ARG_FLAG, AT(resume), NULL, "go on from the latest checkpoint in --checkpoint DIR"},
    {"--metrics", CLI_O_METRICS, ARG_TEXT, AT(metrics), "FILE", "write a JSON line per epoch (and per --log-every steps)"},
    {"--log-every", CLI_O_LOG_EVERY, ARG_COUNT, AT(log_every), "N", "a metrics line every N steps too"},
    {"--plot", CLI_O_PLOT, ARG_TEXT, AT(plot), "FILE.png", "draw loss, accuracy and throughput with gnuplot"},
    {"--limit", CLI_O_LIMIT, ARG_COUNT, AT(limit), "N", "use the first N training (and held-out) samples: a quick run"},
    {"--hidden", CLI_O_HIDDEN, ARG_COUNT, AT(hidden), "N", "the hidden width (gcn, gat per head, in, gin, mlp)"},
    {"--seed", CLI_O_SEED, ARG_COUNT, AT(seed), "N", "the seed of the weights and the data's order (default 0)"},
    {"--memory-limit", CLI_O_MEMORY, ARG_BYTES, AT(memory_limit), "BYTES", "the plan's memory limit per device"},
    {"--steps", CLI_O_STEPS, ARG_COUNT, AT(steps), "N", "timed steps (default 20)"},
    {"--warmup", CLI_O_WARMUP, ARG_COUNT, AT(warmup), "N", "untimed steps first (default 3)"},
    {"--cost", CLI_O_COST, ARG_TEXT, AT(cost), "FILE", "the cost model's figures (loom calibrate)"},
    {"--dot", CLI_O_DOT, ARG_TEXT, AT(dot), "FILE", "write the plan as Graphviz"},
    {"--png", CLI_O_PNG, ARG_TEXT, AT(png), "FILE", "draw the plan as a PNG (Graphviz's dot; devices as clusters)"},
    {"--json", CLI_O_JSON, ARG_TEXT, AT(json), "FILE", "write the compiled plan as JSON"},
    {"--tasks", CLI_O_TASKS, ARG_FLAG, AT(tasks), NULL, "print the compiled plan: tasks, registers, memory"},
    {"--rank", CLI_O_RANK, ARG_TEXT, AT(rank), "R",
     "compile the plan of rank R alone, without its job (placements over many ranks, GPUs on none here)"},
    {"--link", CLI_O_LINK, ARG_TEXT, AT(link), "L", "a node's network links, for SBP inference over ranks and the traffic of --rank (default 8x400Gb/s)"},
    {"--nvlink", CLI_O_NVLINK, ARG_TEXT, AT(nvlink), "RATE", "a device's links within its node (default 450GB/s)"},
    {"--quiet", CLI_O_QUIET, ARG_FLAG, AT(quiet), NULL, "print nothing but errors (and bench's JSON line)"},
};
#undef AT

enum { TRAIN_OPTS = CLI_O_DATA | CLI_O_PLACEMENT | CLI_O_SAMPLER | CLI_O_EPOCHS | CLI_O_BATCH | CLI_O_LR | CLI_O_CHECKPOINT |
                    CLI_O_RESUME | CLI_O_METRICS | CLI_O_LOG_EVERY | CLI_O_PLOT | CLI_O_LIMIT | CLI_O_HIDDEN | CLI_O_SEED |
                    CLI_O_MEMORY | CLI_O_QUIET,
       BENCH_OPTS = CLI_O_DATA | CLI_O_PLACEMENT | CLI_O_SAMPLER | CLI_O_BATCH | CLI_O_LR | CLI_O_LIMIT | CLI_O_HIDDEN |
                    CLI_O_SEED | CLI_O_MEMORY | CLI_O_STEPS | CLI_O_WARMUP,
       PLAN_OPTS = CLI_O_DATA | CLI_O_PLACEMENT | CLI_O_BATCH | CLI_O_HIDDEN | CLI_O_COST | CLI_O_DOT | CLI_O_PNG | CLI_O_JSON | CLI_O_TASKS |
                   CLI_O_MEMORY | CLI_O_RANK | CLI_O_LINK | CLI_O_NVLINK };

typedef struct command {
    const char *name, *args, *about;
    unsigned opts;
    const char *examples;
} command;

static const command commands[] = {
    {"train", "MODEL [options]", "train a model, printing a line (or a progress bar) per epoch", TRAIN_OPTS,
     "  loom train in --epochs 5                          the interaction network on 1,000 generated events\n"
     "  loom train convnet --limit 5000 --epochs 2 --placement cpu:0-1\n"
     "  loom train gcn --data synthetic --metrics m.jsonl --plot curves.png\n"
     "  loom train lenet --epochs 6 --checkpoint ckpt     then, stopped, go on with:\n"
     "  loom train lenet --epochs 6 --checkpoint ckpt --resume\n"},
    {"bench", "MODEL [options]", "a short timed run of a model's training steps: one JSON line", BENCH_OPTS,
     "  loom bench lenet --batch 256 --steps 20\n"
     "  loom bench in --placement cpu:0-1 --sampler balance\n"},
    {"plan", "MODEL [options] | FILE.json", "the SBP plan of a model's training step (default placement cpu:0-3)", PLAN_OPTS,
     "  loom plan gcn --placement cpu:0-3                 each op's signature and why, every boxing op\n"
     "  loom plan convnet --placement cpu:0-1 --dot plan.dot\n"
     "  loom plan mlp --placement cpu:0-3 --png plan.png     the devices as clusters, boxing in red\n"
     "  loom plan in --tasks --json plan.json             the compiled plan, written as JSON\n"
     "  loom plan convnet --batch 524288 --placement @0-127/cuda:0-7 --rank 5 --link 8x400Gb/s\n"
     "                                                    rank 5's plan of 1,024 GPUs, and its traffic\n"
     "  loom plan plan.json                               a plan written before\n"},
    {"calibrate", "[--output FILE] [--force]", "measure this machine for the cost model", 0,
     "  loom calibrate                                    into this machine's cache\n"
     "  loom calibrate --output costs.json --force\n"},
    {"info", "", "what this build has: version, CUDA devices, registered ops", 0, "  loom info\n"},
    {"ops", "", "the op registry, one op a line", 0, "  loom ops\n"},
};

static const command *find_command(const char *name)
{
    for (size_t i = 0; name && i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

int cli_usage(FILE *f, const char *cmd)
{
    const command *c = find_command(cmd);
    if (c) {
        fprintf(f, "usage: loom %s %s (loom %s --help)\n", c->name, c->args, c->name);
    } else {
        fprintf(f, "usage: loom COMMAND [options], COMMAND one of:\n");
        for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
            fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].about);
        fprintf(f, "loom COMMAND --help for its options and examples\n");
    }
    return f == stderr ? 2 : 0;
}

int cli_help(const char *cmd)
{
    const command *c = find_command(cmd);
    if (!c)
        return fprintf(stderr, "loom: unknown command '%s'\n", cmd), cli_usage(stderr, NULL);
    printf("loom %s %s\n  %s\n", c->name, c->args, c->about);
    if (c->opts) {
        printf("\noptions:\n");
        for (size_t i = 0; i < sizeof args / sizeof *args; i++)
            if (c->opts & args[i].bit) {
                char lhs[64];
                snprintf(lhs, sizeof lhs, "%s%s%s", args[i].name, args[i].value ? " " : "", args[i].value ? args[i].value : "");
                printf("  %-22s %s\n", lhs, args[i].help);
            }
    } else if (!strcmp(c->name, "calibrate")) {
        printf("\noptions:\n  %-22s %s\n  %-22s %s\n", "--output FILE", "where to write (default: this machine's cache)", "--force",
               "measure again when the file exists");
    }
    if (c->opts & CLI_O_DATA) {
        printf("\nmodels (--data: the default first):\n");
        cli_model_list(stdout);
    }
    printf("\nexamples:\n%s", c->examples);
    if (!strcmp(c->name, "train"))
        printf("\nExit status: 0; 1 when training fails; 2 for bad usage; 130 when interrupted (Ctrl-C: the last\n"
               "checkpoint stays, and --resume goes on from it).\n");
    return 0;
}

/* Reads v into the member at of o as kind wants; 0, or -1 when v is not such a value. */
static int set_value(const arg *a, const char *v, cli_opts *o)
{
    char *end = NULL;
    void *at = (char *)o + a->at;
    errno = 0;
    switch (a->kind) {
    case ARG_TEXT:
        if (!*v)
            return -1;
        *(const char **)at = v;
        return 0;
    case ARG_COUNT: {
        if (*v == '-' || *v == '+')
            return -1;
        unsigned long long n = strtoull(v, &end, 10);
        if (end == v || *end || errno)
            return -1;
        if (a->at == offsetof(cli_opts, seed)) {
            o->seed = n;
            return 0;
        }
        if (n < 1 || n > (a->at == offsetof(cli_opts, epochs) ? 1000000ull : (unsigned long long)INT64_MAX / 4))
            return -1;
        if (a->at == offsetof(cli_opts, epochs))
            o->epochs = (int)n;
        else
            *(int64_t *)at = (int64_t)n;
        return 0;
    }
    case ARG_BYTES: {
        if (*v == '-' || *v == '+')
            return -1;
        unsigned long long n = strtoull(v, &end, 10);
        const unsigned long long unit = *end == 'K' ? 1ull << 10 : *end == 'M' ? 1ull << 20 : *end == 'G' ? 1ull << 30 : 1;
        if (unit > 1)
            end++;
        if (end == v || *end || errno || n < 1 || n > (unsigned long long)INT64_MAX / unit)
            return -1;
        *(int64_t *)at = (int64_t)(n * unit);
        return 0;
    }
    case ARG_REAL: {
        double d = strtod(v, &end);
        if (end == v || *end || errno || !(d > 0) || d > 1e6)
            return -1;
        *(double *)at = d;
        return 0;
    }
    case ARG_FLAG:
        break;
    }
    return -1;
}

static const char *what_value(const arg *a)
{
    switch (a->kind) {
    case ARG_COUNT:
        return a->at == offsetof(cli_opts, seed) ? "an integer >= 0" : "an integer >= 1";
    case ARG_REAL:
        return "a number > 0";
    case ARG_BYTES:
        return "a byte count >= 1 (K, M or G after it: KiB, MiB, GiB)";
    default:
        return "a non-empty value";
    }
}

int cli_parse(const char *cmd, int argc, char **argv, unsigned accepted, cli_opts *o, int *help)
{
    *help = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return 0;
        }
        const arg *found = NULL;
        for (size_t k = 0; k < sizeof args / sizeof *args; k++)
            if (!strcmp(args[k].name, a))
                found = &args[k];
        if (!found) {
            if (a[0] == '-' || o->model)
                return fprintf(stderr, "loom %s: unknown %s '%s'\n", cmd, a[0] == '-' ? "option" : "argument", a),
                       cli_usage(stderr, cmd);
            o->model = a;
            continue;
        }
        if (!(accepted & found->bit))
            return fprintf(stderr, "loom %s: %s is not an option of loom %s\n", cmd, a, cmd), cli_usage(stderr, cmd);
        if (found->kind == ARG_FLAG) {
            *(int *)((char *)o + found->at) = 1;
            continue;
        }
        if (i + 1 == argc)
            return fprintf(stderr, "loom %s: %s needs a value\n", cmd, a), cli_usage(stderr, cmd);
        if (set_value(found, argv[++i], o))
            return fprintf(stderr, "loom %s: %s '%s': expected %s\n", cmd, a, argv[i], what_value(found)), 2;
    }
    return 0;
}

int cli_command_args(const char *cmd, int argc, char **argv, cli_opts *o, const cli_model **m)
{
    const command *c = find_command(cmd);
    int help;
    *m = NULL;
    int rc = cli_parse(cmd, argc, argv, c ? c->opts : 0, o, &help);
    if (rc || help)
        return rc ? rc : cli_help(cmd);
    char names[128];
    cli_model_names(names, sizeof names);
    const size_t len = o->model ? strlen(o->model) : 0;
    if (!o->model)
        return fprintf(stderr, "loom %s: which model? (%s%s)\n", cmd, names, strcmp(cmd, "plan") ? "" : ", or a plan FILE.json"),
               cli_usage(stderr, cmd);
    if (!strcmp(cmd, "plan") && len > 5 && !strcmp(o->model + len - 5, ".json"))
        return CLI_GO; /* a plan written before */
    if (!(*m = cli_model_find(o->model)))
        return fprintf(stderr, "loom %s: unknown model '%s' (%s)\n", cmd, o->model, names), 2;
    return CLI_GO;
}
