/* GCN and GAT training speed, full batch, one optimizer step per epoch. One JSON line per case, with
 * the fields of bench/peers/gcn_pyg.py, which does the same work in PyTorch Geometric.
 *
 *     gcn [--model gcn|gat] [--graph cora|synthetic] [--placement cpu:0|cuda:0]
 *         [--executor actors|reference|all] [--epochs 200] [--warmup 20] [--nodes 1000000]
 *         [--edges 20000000] [--features 64] [--hidden H] [--heads 8] [--classes 16] [--seed 0]
 *         [--memory-limit BYTES] [--threads 0] [--dropout P]
 *
 * gcn (the default): loom_nn_gcn, dropout 0.5, gcn(hidden, relu), dropout 0.5, gcn(classes); Adam
 * lr 0.01; hidden 16 on cora, 128 on synthetic. gat: loom_nn_gat, PyG's GAT example: dropout 0.6
 * on the inputs and the attention coefficients, gat(8 heads of hidden 8, concatenated), ELU,
 * dropout 0.6, gat(classes, one head); a self loop per node (loom_csr_edges); Adam lr 0.005.
 *
 * cora: $LOOM_DATA/cora.npz (or the cache); the loss over the 20-per-class training rows of
 * loom_split_per_class (seed 0); weight decay 5e-4, on the first layer only for GCN (PyG's
 * example) and on every parameter for GAT (PyG's example). synthetic:
 * loom_synthetic_graph(nodes, edges, features, classes, seed), the graph
 * bench/peers/synthetic.py makes; the loss over every node; no weight decay.
 *
 * Executors (--executor all, the default, runs the three): "actors" times all epochs in one
 * pipelined loom_program_run_steps; "actors_run_per_epoch" one loom_program_run per epoch, as an
 * interactive loop does; "reference" the reference executor (the host oracle, whatever the
 * placement). The warm-up epochs run first (they build the plan; with --warmup 0 the first timed
 * epoch does); the time covers the timed epochs only (forward, backward and update), and a run
 * returns once its last loss reached the host, so no separate synchronisation is needed.
 *
 * Memory: "plan_bytes" is what the actor executor's plan takes on the device: on a GPU its one
 * allocation (loom_program_memory's total for the device: registers shared by lifetime, registers of their
 * own, parameters and optimizer state, the fed data, kernel and cuBLAS scratch); on one CPU device
 * the registers plus the program's parameters and Adam's two moments of each (counted from their
 * shapes, at least 64 bytes each as the program allocates them). It is a static plan, not a
 * measured peak: "peak_bytes" is null, and compare.py sets plan_bytes against the peer's
 * torch.cuda.max_memory_allocated. The reference executor has no plan (null).
 *
 * --threads is loom_train_opts.threads, the kernel threads of each device (0: the cores this
 * process may run on); --dropout the model's dropout rates, GAT's attention dropout among them (0
 * turns them off, for a comparison with the peer that leaves out the random masks). A placement of
 * several CPU devices (cpu:0-1) trains as SBP inference splits the graph (GCN: data parallel).
 *
 * A plan over the memory limit (--memory-limit, default the machine's memory) or an allocation
 * that fails gives a line with "oom": true; any other failure a line with "error", and exit
 * status 1 after the remaining cases. */
#include <loom/loom.h>

#include "bench/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct options {
    const char *model, *graph, *placement, *executor;
    int epochs, warmup;
    int64_t nodes, edges, features, hidden, heads, classes;
    int64_t memory_limit; /* loom_train_opts.memory_limit: 0 is the machine's memory */
    uint64_t seed;
    int threads;
    double dropout;
} options;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int usage(void)
{
    fprintf(stderr, "usage: gcn [--model gcn|gat] [--graph cora|synthetic] [--placement P] [--executor actors|reference|all]\n"
                    "           [--epochs N] [--warmup N] [--nodes N] [--edges N] [--features N] [--hidden N] [--heads N]\n"
                    "           [--classes N] [--seed N] [--memory-limit BYTES] [--threads N] [--dropout P]\n");
    return 2;
}

/* A whole decimal integer in [lo, hi] into *out; otherwise a message naming the option. */
static int parse_int(const char *opt, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        fprintf(stderr, "gcn: %s is '%s': expected an integer from %lld to %lld\n", opt, v, (long long)lo, (long long)hi);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t x = 0;
        int rc = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!v)
            return fprintf(stderr, "gcn: %s needs a value\n", a), -1;
        if (!strcmp(a, "--model"))
            o->model = v;
        else if (!strcmp(a, "--graph"))
            o->graph = v;
        else if (!strcmp(a, "--placement"))
            o->placement = !strcmp(v, "cpu") ? "cpu:0" : !strcmp(v, "cuda") ? "cuda:0" : v;
        else if (!strcmp(a, "--executor"))
            o->executor = v;
        else if (!strcmp(a, "--epochs"))
            rc = parse_int(a, v, 1, INT32_MAX, &x), o->epochs = (int)x;
        else if (!strcmp(a, "--warmup"))
            rc = parse_int(a, v, 0, INT32_MAX, &x), o->warmup = (int)x;
        else if (!strcmp(a, "--nodes"))
            rc = parse_int(a, v, 1, INT32_MAX, &o->nodes);
        else if (!strcmp(a, "--edges"))
            rc = parse_int(a, v, 0, INT32_MAX, &o->edges);
        else if (!strcmp(a, "--features"))
            rc = parse_int(a, v, 1, INT32_MAX, &o->features);
        else if (!strcmp(a, "--hidden"))
            rc = parse_int(a, v, 1, INT32_MAX, &o->hidden);
        else if (!strcmp(a, "--heads"))
            rc = parse_int(a, v, 1, 4096, &o->heads);
        else if (!strcmp(a, "--classes"))
            rc = parse_int(a, v, 1, INT32_MAX, &o->classes);
        else if (!strcmp(a, "--memory-limit"))
            rc = parse_int(a, v, 0, INT64_MAX, &o->memory_limit);
        else if (!strcmp(a, "--threads"))
            rc = parse_int(a, v, 0, 4096, &x), o->threads = (int)x;
        else if (!strcmp(a, "--dropout")) {
            char *end;
            o->dropout = strtod(v, &end);
            if (end == v || *end || !(o->dropout >= 0 && o->dropout < 1))
                return fprintf(stderr, "gcn: --dropout is '%s': expected a number in [0, 1)\n", v), -1;
        } else if (!strcmp(a, "--seed"))
            rc = parse_int(a, v, 0, INT64_MAX, &x), o->seed = (uint64_t)x;
        else
            return fprintf(stderr, "gcn: unknown option %s\n", a), -1;
        if (rc)
            return -1;
    }
    if (strcmp(o->model, "gcn") && strcmp(o->model, "gat"))
        return fprintf(stderr, "gcn: --model is '%s': expected gcn or gat\n", o->model), -1;
    if (o->dropout < 0)
        o->dropout = !strcmp(o->model, "gat") ? 0.6 : 0.5;
    if (strcmp(o->graph, "cora") && strcmp(o->graph, "synthetic"))
        return fprintf(stderr, "gcn: --graph is '%s': expected cora or synthetic\n", o->graph), -1;
    if (strcmp(o->executor, "actors") && strcmp(o->executor, "reference") && strcmp(o->executor, "all"))
        return fprintf(stderr, "gcn: --executor is '%s': expected actors, reference or all\n", o->executor), -1;
    return 0;
}

/* Parameters and Adam's two moments, each allocated at no less than 64 bytes
 * (the reference executor's value allocation). */
static size_t param_state_bytes(loom_graph *g)
{
    size_t total = 0;
    loom_tensor *t;
    for (int k = 0; (t = loom_graph_param(g, k)); k++) {
        size_t b = loom_dtype_size(loom_tensor_dtype(t));
        for (int i = 0; i < loom_tensor_ndim(t); i++)
            b *= (size_t)loom_tensor_dim(t, i);
        total += 3 * (b < 64 ? 64 : b);
    }
    return total;
}

typedef struct bench_case {
    const char *name;
    loom_executor exec;
    int one_run;
} bench_case;

typedef struct bench_data {
    const char *name; /* "cora" or "synthetic" */
    loom_node_dataset d;
    loom_array src, dst; /* gat only: the edges with a self loop per node */
    loom_node_split split; /* cora only */
    int64_t train_rows;
} bench_data;

/* The fields every line has, up to (and without) the closing brace. */
static void print_head(const options *o, const bench_data *b, const char *device, const bench_case *c, int64_t hidden)
{
    printf("{\"case\": \"%s\", \"impl\": \"loom\", \"model\": \"%s\", \"executor\": \"%s\", \"device\": \"%s\", "
           "\"nodes\": %lld, \"edges\": %lld, \"features\": %lld, \"hidden\": %lld, \"heads\": %lld, \"classes\": %lld, "
           "\"train_rows\": %lld, \"epochs\": %d, \"warmup\": %d, \"threads\": %d, \"dropout\": %g",
           b->name, o->model, c->name, device, (long long)b->d.num_nodes, (long long)b->d.adj.nnz,
           (long long)b->d.num_features, (long long)hidden, (long long)(b->src.data ? o->heads : 1),
           (long long)b->d.num_classes, (long long)b->train_rows, o->epochs, o->warmup, o->threads, o->dropout);
}

/* A line for a run that failed before any case: the dataset, or the placement on this machine. */
static void print_fail(const options *o, const char *device, loom_status s, const char *why)
{
    char msg[1200];
    printf("{\"case\": \"%s\", \"impl\": \"loom\", \"device\": \"%s\", \"oom\": %s, \"error\": %s}\n", o->graph, device,
           s == LOOM_ERR_NOMEM ? "true" : "false", json_str(why, msg, sizeof msg));
    fflush(stdout);
}

/* Builds, compiles and times one case; prints its line. 0 on success or out of memory, 1 on any
 * other failure. */
static int run_case(const options *o, const bench_data *b, const loom_placement *pl, const char *device, const bench_case *c)
{
    int cora = !strcmp(b->name, "cora"), gat = b->src.data != NULL;
    int64_t hidden = o->hidden ? o->hidden : gat ? 8 : cora ? 16 : 128;
    const loom_node_dataset *d = &b->d;
    loom_graph *g = loom_graph_new();
    if (!g) {
        print_head(o, b, device, c, hidden);
        printf(", \"oom\": true, \"error\": \"out of memory for the graph\"}\n");
        return 0;
    }
    loom_graph_set_placement(g, pl);
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(d->num_nodes, d->num_features));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(d->num_nodes));
    loom_tensor *mask = cora ? loom_input(g, "train_mask", LOOM_U8, loom_shape(d->num_nodes)) : NULL;
    loom_tensor *adj = NULL, *src = NULL, *dst = NULL, *logits;
    if (gat) {
        src = loom_input_index(g, "src", loom_shape(b->src.shape[0]), d->num_nodes);
        dst = loom_input_index(g, "dst", loom_shape(b->dst.shape[0]), d->num_nodes);
        logits = loom_nn_gat(g, x, src, dst, o->heads, hidden, d->num_classes, o->dropout);
    } else {
        adj = loom_input_csr(g, "adj", LOOM_F32, d->num_nodes, d->num_nodes);
        logits = loom_nn_gcn(g, adj, x, hidden, d->num_classes, o->dropout);
    }
    loom_tensor *loss = loom_softmax_cross_entropy(g, logits, y, mask);
    loom_optimizer adam = loom_adam(gat ? 0.005 : 0.01);
    if (cora)
        adam.weight_decay = 5e-4;
    if (cora && !gat) {
        loom_param_set_weight_decay(loom_graph_find(g, "gcn2.weight"), 0);
        loom_param_set_weight_decay(loom_graph_find(g, "gcn2.bias"), 0);
    }
    loom_program *p = NULL;
    loom_train_opts opts = {.optimizer = adam, .executor = c->exec, .memory_limit = o->memory_limit, .threads = o->threads};
    loom_status s = loom_compile(g, loss, &opts, &p);
    const char *why = s ? loom_graph_error(g) : NULL;
    if (!s && ((s = loom_program_feed(p, x, &d->x)) || (adj && (s = loom_program_feed_csr(p, adj, &d->adj))) ||
               (src && ((s = loom_program_feed(p, src, &b->src)) || (s = loom_program_feed(p, dst, &b->dst)))) ||
               (s = loom_program_feed(p, y, &d->labels)) || (mask && (s = loom_program_feed(p, mask, &b->split.train)))))
        why = loom_program_error(p);
    if (!s && (s = loom_program_run_steps(p, LOOM_RUN_STEP, o->warmup)))
        why = loom_program_error(p);
    double ms = 0;
    if (!s) {
        double t0 = now_ms();
        if (c->one_run)
            s = loom_program_run_steps(p, LOOM_RUN_STEP, o->epochs);
        else
            for (int e = 0; e < o->epochs && !s; e++)
                s = loom_program_run(p, LOOM_RUN_STEP);
        ms = (now_ms() - t0) / o->epochs;
        if (s)
            why = loom_program_error(p);
    }
    loom_memory all = {0}, dm = {0};
    if (!s && c->exec == LOOM_EXEC_ACTORS && ((s = loom_program_memory(p, LOOM_RUN_STEP, LOOM_ALL_DEVICES, &all)) ||
                                              (s = loom_program_memory(p, LOOM_RUN_STEP, 0, &dm))))
        why = loom_program_error(p);

    char msg[1200];
    print_head(o, b, device, c, hidden);
    if (s) {
        fprintf(stderr, "gcn: %s, %s: %s\n", b->name, c->name, why ? why : loom_status_str(s));
        printf(", \"oom\": %s, \"error\": %s}\n", s == LOOM_ERR_NOMEM ? "true" : "false",
               json_str(why ? why : loom_status_str(s), msg, sizeof msg));
    } else {
        int64_t n;
        const double *losses = loom_program_losses(p, &n);
        printf(", \"ms_per_epoch\": %.4f, \"final_loss\": %.6f, \"oom\": false, \"peak_bytes\": null", ms, losses[n - 1]);
        /* one CPU device keeps parameters in the program: counted from their shapes */
        if (c->exec == LOOM_EXEC_ACTORS)
            printf(", \"plan_bytes\": %zu, \"plan_shared_bytes\": %zu, \"plan_unshared_bytes\": %zu, \"plan_own_bytes\": %zu, "
                   "\"plan_params_bytes\": %zu, \"plan_inputs_bytes\": %zu, \"plan_scratch_bytes\": %zu}\n",
                   dm.params ? dm.total : all.shared + all.own + param_state_bytes(g), all.shared, all.unshared, all.own,
                   dm.params ? dm.params : param_state_bytes(g), dm.inputs, dm.scratch);
        else
            printf(", \"plan_bytes\": null}\n");
    }
    fflush(stdout);
    loom_program_free(p);
    loom_graph_free(g);
    return s && s != LOOM_ERR_NOMEM;
}

/* The graph (and for GAT its edges with self loops). */
static loom_status load(const options *o, bench_data *b, loom_error *err)
{
    b->name = o->graph;
    loom_status s;
    if (!strcmp(o->graph, "synthetic")) {
        s = loom_synthetic_graph(o->nodes, o->edges, o->features, o->classes, o->seed, &b->d, err);
        b->train_rows = b->d.num_nodes;
    } else
        s = loom_cora_load(&b->d, err);
    if (!s && !strcmp(o->model, "gat"))
        s = loom_csr_edges(&b->d.adj, 1, &b->src, &b->dst, err);
    if (s || strcmp(o->graph, "cora"))
        return s;
    s = loom_split_per_class(&b->d.labels, b->d.num_classes, 20, 500, 1000, 0, &b->split, err);
    const uint8_t *m = b->split.train.data;
    for (int64_t i = 0; !s && i < b->d.num_nodes; i++)
        b->train_rows += m[i] != 0;
    return s;
}

int main(int argc, char **argv)
{
    options o = {.model = "gcn", .graph = "cora", .placement = "cpu:0", .executor = "all", .epochs = 200, .warmup = 20,
                 .nodes = 1000000, .edges = 20000000, .features = 64, .heads = 8, .classes = 16, .dropout = -1};
    if (parse(argc, argv, &o))
        return usage();
    loom_error err = {0};
    loom_placement *pl = loom_placement_parse(o.placement, &err);
    if (!pl) {
        fprintf(stderr, "gcn: --placement: %s\n", err.msg);
        return 2;
    }
    char device[64];
    loom_placement_str(pl, device, sizeof device);
    if (loom_placement_check(pl, 1, loom_cuda_device_count(NULL), &err)) {
        fprintf(stderr, "gcn: %s\n", err.msg);
        print_fail(&o, device, err.status, err.msg);
        loom_placement_free(pl);
        return 1;
    }

    bench_data b = {0};
    loom_status s = load(&o, &b, &err);
    if (s) {
        fprintf(stderr, "gcn: %s\n", err.msg);
        print_fail(&o, device, s, err.msg);
        loom_node_split_free(&b.split);
        loom_node_dataset_free(&b.d);
        loom_array_free(&b.src);
        loom_array_free(&b.dst);
        loom_placement_free(pl);
        return s == LOOM_ERR_NOMEM ? 0 : 1;
    }
    static const bench_case cases[] = {{"actors", LOOM_EXEC_ACTORS, 1},
                                       {"actors_run_per_epoch", LOOM_EXEC_ACTORS, 0},
                                       {"reference", LOOM_EXEC_REFERENCE, 1}};
    int failed = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int all = !strcmp(o.executor, "all");
        if (all || !strcmp(o.executor, cases[c].name))
            failed |= run_case(&o, &b, pl, device, &cases[c]);
    }
    loom_node_split_free(&b.split);
    loom_node_dataset_free(&b.d);
    loom_array_free(&b.src);
    loom_array_free(&b.dst);
    loom_placement_free(pl);
    return failed;
}
