/* The loom command's parts: the models it trains and plans (models.c), the options its commands
 * share (args.c), train and bench (train.c), plan (plan.c), curves drawn by gnuplot (plot.c). */
#ifndef LOOM_TOOLS_CLI_H
#define LOOM_TOOLS_CLI_H

#include <loom/images.h>
#include <loom/loom.h>

#include <stdint.h>
#include <stdio.h>

/* ---- options ------------------------------------------------------------------------------- */

typedef struct cli_model cli_model;

/* What train, bench and plan take; 0 or NULL where not given. */
typedef struct cli_opts {
    const char *model, *data, *placement, *sampler, *checkpoint, *metrics, *plot, *cost, *dot, *png, *json, *rank, *link, *nvlink;
    int64_t batch, limit, log_every, steps, warmup, hidden, memory_limit;
    int epochs, resume, quiet, tasks;
    double lr;
    uint64_t seed;
} cli_opts;

/* Options a command accepts, as bits. */
enum {
    CLI_O_DATA = 1 << 0,
    CLI_O_PLACEMENT = 1 << 1,
    CLI_O_SAMPLER = 1 << 2,
    CLI_O_EPOCHS = 1 << 3,
    CLI_O_BATCH = 1 << 4,
    CLI_O_LR = 1 << 5,
    CLI_O_CHECKPOINT = 1 << 6,
    CLI_O_RESUME = 1 << 7,
    CLI_O_METRICS = 1 << 8,
    CLI_O_PLOT = 1 << 9,
    CLI_O_LIMIT = 1 << 10,
    CLI_O_SEED = 1 << 11,
    CLI_O_HIDDEN = 1 << 12,
    CLI_O_LOG_EVERY = 1 << 13,
    CLI_O_QUIET = 1 << 14,
    CLI_O_STEPS = 1 << 15,
    CLI_O_WARMUP = 1 << 16,
    CLI_O_MEMORY = 1 << 17,
    CLI_O_COST = 1 << 18,
    CLI_O_DOT = 1 << 19,
    CLI_O_JSON = 1 << 20,
    CLI_O_TASKS = 1 << 21,
    CLI_O_PNG = 1 << 22,
    CLI_O_RANK = 1 << 23,
    CLI_O_LINK = 1 << 24,
    CLI_O_NVLINK = 1 << 25,
};

/* Parses argv[2 ..] of command `cmd` into o (whose defaults are kept where an option is absent):
 * options in `accepted`, and one model argument (a model name or, for plan, a file). 0, or the exit
 * status with the message printed: 2 for bad usage, and 0 with *help set for --help. */
int cli_parse(const char *cmd, int argc, char **argv, unsigned accepted, cli_opts *o, int *help);
/* Parses command cmd's options (those its help lists) and its model into o and *m; CLI_GO to go
 * on, else the exit status with the message or the help printed. plan takes a FILE.json for a
 * model: CLI_GO, *m NULL. */
int cli_command_args(const char *cmd, int argc, char **argv, cli_opts *o, const cli_model **m);
enum { CLI_GO = -1 };
/* The usage of a command (NULL: of all) on f; returns 2 on stderr, else 0. */
int cli_usage(FILE *f, const char *cmd);
/* The help of command cmd on standard output, with examples; 0, or 2 for a command there is none of. */
int cli_help(const char *cmd);

/* ---- models -------------------------------------------------------------------------------- */

typedef enum cli_data_kind { CLI_NODES, CLI_SAMPLES, CLI_IMAGES } cli_data_kind;

/* A model the loom command knows: how to build it and what it trains on by default. */
struct cli_model {
    const char *name, *about, *data; /* data: the default --data */
    cli_data_kind kind;
    double lr;          /* the default learning rate (Adam for graphs, SGD with momentum 0.9 for images) */
    int64_t batch;      /* the default batch (0: the whole graph) */
    int64_t hidden;     /* the default hidden width (0: the model has no such option) */
};

/* The model named name, or NULL. */
const cli_model *cli_model_find(const char *name);
/* The models' names, as "gcn, in, ...", into buf. */
void cli_model_names(char *buf, size_t len);
/* One line per model (name, what it is, its data) on f. */
void cli_model_list(FILE *f);

/* A model built and compiled with its data: what train and bench run, and plan prints. */
typedef struct cli_run {
    const cli_model *m;
    cli_opts o;
    int shapes_only; /* plan: sizes without the data where they are known */
    /* the data */
    loom_node_dataset nodes;
    loom_node_split split;
    loom_array src, dst; /* gat: the graph's edges with a self loop per node */
    loom_samples train, test;
    loom_image_set itrain, itest;
    int64_t node_features, classes, channels, height, width, num_nodes, num_edges;
    /* the model */
    loom_graph *g;
    loom_program *p;
    loom_tensor *logits, *loss, *x, *y, *adj, *mask, *esrc, *edst;
    loom_batch_inputs in;
    /* an epoch's machinery */
    loom_sampler_opts so;
    loom_sampler *smp;
    loom_batch_source *bsrc;
    loom_image_opts io;
    loom_image_source *isrc;
    int64_t epoch_steps, next; /* steps of the current epoch, the one run next */
} cli_run;

/* Loads r->o's data for model m (shapes_only: sizes alone where the data is not needed to know
 * them), builds the model on the placement and compiles it; 0, or 1 with the message on stderr
 * prefixed by cmd (2 when the data or an option is bad usage: an unknown data name). */
int cli_run_new(cli_run *r, const char *cmd, const cli_model *m, const cli_opts *o, int shapes_only);
void cli_run_free(cli_run *r);
/* Deals epoch e (>= 0) and rewinds to its first step; its steps in r->epoch_steps. */
loom_status cli_epoch(cli_run *r, int64_t e, loom_error *err);
/* Runs the next n steps of the epoch (training), adding the samples they held to *samples. */
loom_status cli_steps(cli_run *r, int64_t n, int64_t *samples, loom_error *err);
/* The model's held-out accuracy (GCN and GAT: the test nodes; interaction network: its edges at 0.5; GIN:
 * its graphs; images: the test set), or -1 where it has none. */
loom_status cli_accuracy(cli_run *r, double *acc, loom_error *err);
/* What a sample is for the model ("nodes", "events", "graphs", "images"). */
const char *cli_sample_name(const cli_run *r);

/* ---- commands ------------------------------------------------------------------------------ */

int cli_train(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_plan(int argc, char **argv);

/* Draws metrics (JSON lines of loom train) as loss, accuracy and throughput curves over epochs
 * into png with gnuplot; 0, or 1 with a message. cli_program_found says whether a program (gnuplot, dot) is on PATH. */
int cli_plot(const char *metrics, const char *png, const char *title);
int cli_program_found(const char *name);

/* This machine's calibration for the cost model: $XDG_CACHE_HOME/loom/cost-model-HOST.json
 * (~/.cache without it), its directories made when make; 0, or -1 (said when make). */
int cli_cost_cache(char *path, size_t len, int make);

/* A monotonic clock in seconds. */
double cli_now(void);

#endif
