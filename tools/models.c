/* The models the loom command trains, benchmarks and plans, each built from nn/ on its data: the
 * GCN and GAT on a citation graph (full batch), the interaction network and GIN on batches of graph
 * samples (generated collider events, a TU dataset, a samples file), and the CNNs on images
 * (Fashion-MNIST). Each model's step runs through the library's own data sources: the graph is fed
 * once, a batch source collates graph samples, an image source normalises images. */
#include "tools/cli.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const cli_model models[] = {
    {"gcn", "2-layer GCN (hidden 16, dropout 0.5), node classification, full batch", "cora", CLI_NODES, 0.01, 0, 16},
    {"gat", "2-layer GAT (8 heads of hidden 8, one head out, dropout 0.6), node classification, full batch", "cora",
     CLI_NODES, 0.005, 0, 8},
    {"in", "interaction network (hidden 32, 3 rounds), edge classification of track segments", "events", CLI_SAMPLES, 0.003,
     8, 32},
    {"gin", "GIN (hidden 32, 3 layers), graph classification", "events", CLI_SAMPLES, 0.01, 32, 32},
    {"mlp", "784-128-10 perceptron on flattened images", "fashion-mnist", CLI_IMAGES, 0.05, 256, 128},
    {"lenet", "LeNet-5", "fashion-mnist", CLI_IMAGES, 0.05, 256, 0},
    {"convnet", "two convolutions (64, 128 channels) and two linear layers", "fashion-mnist", CLI_IMAGES, 0.05, 256, 0},
    {"resnet20", "ResNet-20 with batch norm", "fashion-mnist", CLI_IMAGES, 0.05, 128, 0},
};
enum { MODELS = sizeof models / sizeof *models };

static const char *const data_help[] = {
    [CLI_NODES] = "cora (downloaded once), synthetic (Cora's sizes, random labels), FILE.npz",
    [CLI_SAMPLES] = "events, events:N (generated), DIR/NAME (TU format), FILE (loom_samples_write)",
    [CLI_IMAGES] = "fashion-mnist, DIR (its IDX files)",
};

const cli_model *cli_model_find(const char *name)
{
    for (int i = 0; name && i < MODELS; i++)
        if (!strcmp(models[i].name, name))
            return &models[i];
    return NULL;
}

void cli_model_names(char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < MODELS && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", i ? ", " : "", models[i].name);
}

void cli_model_list(FILE *f)
{
    for (int i = 0; i < MODELS; i++)
        fprintf(f, "  %-9s %s\n  %-9s --data %s\n", models[i].name, models[i].about, "", data_help[models[i].kind]);
    fprintf(f, "  (gin on events learns whether an event has more hits than the median one; events are scored on\n"
               "  held-out ones, a TU dataset or a samples file on its own samples)\n");
}

const char *cli_sample_name(const cli_run *r)
{
    return r->m->kind == CLI_NODES ? "nodes" : r->m->kind == CLI_IMAGES ? "images" : !strcmp(r->m->name, "in") ? "events" : "graphs";
}

/* ---- data ---------------------------------------------------------------------------------- */

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), t = strlen(tail);
    return n >= t && !strcmp(s + n - t, tail);
}

/* Labels each event 1 when it has more hits than the median event of s, else 0: a graph label
 * GIN can learn from generated events. 0, or -1 out of memory. */
static int label_by_size(loom_samples *s, int64_t median)
{
    s->graph_y = malloc((size_t)s->count * sizeof *s->graph_y);
    if (!s->graph_y)
        return -1;
    for (int64_t i = 0; i < s->count; i++)
        s->graph_y[i] = loom_samples_nodes(s, i) > median;
    s->num_classes = 2;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The training set's median hits per event. */
static int64_t median_nodes(const loom_samples *s)
{
    int64_t *n = malloc((size_t)s->count * sizeof *n), m = 0;
    if (!n)
        return 0;
    for (int64_t i = 0; i < s->count; i++)
        n[i] = loom_samples_nodes(s, i);
    qsort(n, (size_t)s->count, sizeof *n, cmp_i64);
    m = n[s->count / 2];
    free(n);
    return m;
}

/* The first n samples of s, in place (their arrays keep their length). */
static void keep_first(loom_samples *s, int64_t n)
{
    if (n > 0 && n < s->count)
        s->count = n;
}

static void keep_first_images(loom_image_set *s, int64_t n)
{
    if (n > 0 && n < s->count)
        s->count = s->images.shape[0] = s->labels.shape[0] = n;
}

static int load_samples(cli_run *r, const char *cmd, loom_error *err)
{
    const char *d = r->o.data;
    const int gin = !strcmp(r->m->name, "gin");
    if (!strcmp(d, "events") || !strncmp(d, "events:", 7)) {
        loom_event_opts eo = LOOM_EVENT_OPTS_INIT;
        if (d[6] == ':') {
            char *end;
            long long n = strtoll(d + 7, &end, 10);
            if (end == d + 7 || *end || n < 2 || n > 10000000)
                return fprintf(stderr, "loom %s: --data '%s': expected events:N with N from 2 to 10000000\n", cmd, d), 2;
            eo.events = n;
        }
        if (r->shapes_only && eo.events > 200)
            eo.events = 200; /* the sizes of the bounds, no more */
        eo.seed = 1 + r->o.seed;
        int64_t held = eo.events / 5 > 0 ? eo.events / 5 : 1;
        if (loom_events_generate(&eo, &r->train, err) != LOOM_OK)
            return 1;
        eo.events = held;
        eo.seed += 0x9e3779b9u; /* held out: events of another seed */
        if (!r->shapes_only && loom_events_generate(&eo, &r->test, err) != LOOM_OK)
            return 1;
        if (gin) {
            int64_t median = median_nodes(&r->train);
            if (label_by_size(&r->train, median) || (!r->shapes_only && label_by_size(&r->test, median)))
                return loom_error_set(err, LOOM_ERR_NOMEM, "out of memory"), 1;
        }
    } else if (is_file(d)) {
        if (loom_samples_read(d, &r->train, err) != LOOM_OK)
            return 1;
    } else { /* DIR/NAME: a TU dataset */
        char dir[4096];
        const char *slash = strrchr(d, '/');
        if (!slash || slash == d || (size_t)(slash - d) >= sizeof dir || !slash[1])
            return fprintf(stderr, "loom %s: --data '%s': expected %s\n", cmd, d, data_help[CLI_SAMPLES]), 2;
        memcpy(dir, d, (size_t)(slash - d));
        dir[slash - d] = 0;
        struct stat st;
        if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
            return loom_error_set(err, LOOM_ERR_NOT_FOUND, "--data '%s': no such file, nor a directory %s of a TU dataset", d, dir), 1;
        if (loom_tu_load(dir, slash + 1, &r->train, err) != LOOM_OK)
            return 1;
    }
    if (gin && !r->train.graph_y)
        return fprintf(stderr, "loom %s: --data '%s' has no graph labels, which gin learns\n", cmd, d), 2;
    if (!gin && !r->train.edge_y)
        return fprintf(stderr, "loom %s: --data '%s' has no edge labels, which in learns\n", cmd, d), 2;
    keep_first(&r->train, r->o.limit);
    keep_first(&r->test, r->o.limit);
    r->node_features = r->train.node_features;
    r->classes = gin ? r->train.num_classes : 1;
    return 0;
}

static int load_nodes(cli_run *r, const char *cmd, loom_error *err)
{
    const char *d = r->o.data;
    const int cora = !strcmp(d, "cora"), synthetic = !strcmp(d, "synthetic");
    if (!cora && !synthetic && !ends_with(d, ".npz"))
        return fprintf(stderr, "loom %s: --data '%s': expected %s\n", cmd, d, data_help[CLI_NODES]), 2;
    const int gat = !strcmp(r->m->name, "gat");
    /* Cora's sizes, and GAT's edges with a self loop per node (a synthetic graph's own, less the
     * self loops it drew, are counted by making it) */
    if (r->shapes_only && !ends_with(d, ".npz") && !(gat && synthetic)) {
        r->num_nodes = 2708, r->node_features = 1433, r->classes = 7, r->num_edges = 10556 + 2708;
        return 0;
    }
    loom_status st = cora ? loom_cora_load(&r->nodes, err)
                     : synthetic ? loom_synthetic_graph(2708, 10556, 1433, 7, r->o.seed, &r->nodes, err)
                                 : loom_citation_load(d, &r->nodes, err);
    if (st != LOOM_OK)
        return 1;
    r->num_nodes = r->nodes.num_nodes, r->node_features = r->nodes.num_features, r->classes = r->nodes.num_classes;
    if (gat) { /* GAT's edges: a self loop per node, as PyG's GATConv */
        if (loom_csr_edges(&r->nodes.adj, 1, &r->src, &r->dst, err) != LOOM_OK)
            return 1;
        r->num_edges = r->src.shape[0];
    }
    if (r->shapes_only)
        return 0;
    /* Kipf and Welling's split: 20 labelled nodes a class, 500 to validate, 1000 to test */
    return loom_split_per_class(&r->nodes.labels, r->classes, 20, 500, 1000, r->o.seed, &r->split, err) != LOOM_OK;
}

static int load_images(cli_run *r, const char *cmd, loom_error *err)
{
    const char *d = r->o.data;
    (void)cmd;
    if (r->shapes_only && !strcmp(d, "fashion-mnist")) {
        r->channels = 1, r->height = r->width = 28, r->classes = 10;
        return 0;
    }
    const char *dir = strcmp(d, "fashion-mnist") ? d : NULL;
    if (loom_fashion_mnist_load(dir, 1, &r->itrain, err) != LOOM_OK ||
        (!r->shapes_only && loom_fashion_mnist_load(dir, 0, &r->itest, err) != LOOM_OK))
        return 1;
    keep_first_images(&r->itrain, r->o.limit);
    keep_first_images(&r->itest, r->o.limit);
    r->channels = r->itrain.channels, r->height = r->itrain.height, r->width = r->itrain.width;
    r->classes = r->itrain.num_classes;
    return 0;
}

/* ---- the models ---------------------------------------------------------------------------- */

/* The graph of r's model and its loss, on r's placement; the optimizer into t. */
static void build(cli_run *r, loom_train_opts *t)
{
    loom_graph *g = r->g;
    const char *name = r->m->name;
    const int64_t hidden = r->o.hidden ? r->o.hidden : r->m->hidden;
    const double lr = r->o.lr > 0 ? r->o.lr : r->m->lr;
    if (r->m->kind == CLI_NODES) {
        r->x = loom_input(g, "x", LOOM_F32, loom_shape(r->num_nodes, r->node_features));
        r->y = loom_input(g, "y", LOOM_I32, loom_shape(r->num_nodes));
        r->mask = loom_input(g, "train_mask", LOOM_U8, loom_shape(r->num_nodes));
        if (!strcmp(name, "gat")) { /* PyG's GAT example: weight decay on every parameter */
            r->esrc = loom_input_index(g, "src", loom_shape(r->num_edges), r->num_nodes);
            r->edst = loom_input_index(g, "dst", loom_shape(r->num_edges), r->num_nodes);
            r->logits = loom_nn_gat(g, r->x, r->esrc, r->edst, 8, hidden, r->classes, 0.6);
        } else {
            r->adj = loom_input_csr(g, "adj", LOOM_F32, r->num_nodes, r->num_nodes);
            r->logits = loom_nn_gcn(g, r->adj, r->x, hidden, r->classes, 0.5);
            /* weight decay on the first layer only, as Kipf and Welling */
            loom_param_set_weight_decay(loom_graph_tensor(g, "gcn2.weight"), 0);
            loom_param_set_weight_decay(loom_graph_tensor(g, "gcn2.bias"), 0);
        }
        r->loss = loom_softmax_cross_entropy(g, r->logits, r->y, r->mask);
        t->optimizer = loom_adam(lr);
        t->optimizer.weight_decay = 5e-4;
    } else if (r->m->kind == CLI_SAMPLES) {
        const int gin = !strcmp(name, "gin");
        loom_batch_inputs_make(g, &r->train, r->o.batch, gin ? LOOM_TASK_GRAPHS : LOOM_TASK_EDGES, &r->in);
        if (gin) {
            r->logits = loom_nn_gin(g, "gin", r->in.x, r->in.src, r->in.dst, r->in.node_graph, r->in.graphs, hidden, 3, r->classes);
            r->loss = loom_softmax_cross_entropy(g, r->logits, r->in.graph_y, NULL);
        } else {
            r->logits = loom_nn_interaction_network(g, "in", r->in.x, r->in.edge_attr, r->in.src, r->in.dst, hidden, 3);
            r->loss = loom_bce_with_logits(g, r->logits, r->in.edge_y, 1.0);
        }
        t->optimizer = loom_adam(lr);
    } else {
        loom_dim B = loom_dim_dynamic(g, "B", r->o.batch); /* the last step of an epoch may be shorter */
        r->x = loom_input(g, "images", LOOM_F32, loom_shape(B, r->channels, r->height, r->width));
        r->y = loom_input(g, "labels", LOOM_I32, loom_shape(B));
        if (!strcmp(name, "mlp"))
            r->logits = loom_nn_mlp(g, "fc", loom_flatten(g, r->x), 2, (const int64_t[]){hidden, r->classes}, LOOM_ACT_RELU);
        else
            r->logits = !strcmp(name, "lenet")     ? loom_nn_lenet5(g, r->x, r->classes)
                        : !strcmp(name, "convnet") ? loom_nn_convnet(g, r->x, r->classes)
                                                   : loom_nn_resnet20(g, r->x, r->classes);
        r->loss = loom_softmax_cross_entropy(g, r->logits, r->y, NULL);
        t->optimizer = loom_sgd(lr);
        t->optimizer.momentum = 0.9;
    }
}

/* The data sources of a training run. */
static int sources(cli_run *r, const char *cmd, loom_error *err)
{
    loom_program *p = r->p;
    if (r->m->kind == CLI_NODES) {
        if (loom_program_feed(p, r->x, &r->nodes.x) || (r->adj && loom_program_feed_csr(p, r->adj, &r->nodes.adj)) ||
            (r->esrc && (loom_program_feed(p, r->esrc, &r->src) || loom_program_feed(p, r->edst, &r->dst))) ||
            loom_program_feed(p, r->y, &r->nodes.labels) || loom_program_feed(p, r->mask, &r->split.train) ||
            loom_program_keep(p, r->logits))
            return loom_error_set(err, LOOM_ERR_INVALID, "%s", loom_program_error(p)), 1;
        return 0;
    }
    if (r->m->kind == CLI_IMAGES) {
        r->io = LOOM_IMAGE_OPTS_INIT;
        r->io.batch = r->o.batch;
        r->io.seed = r->o.seed;
        loom_image_set_mean_std(&r->itrain, &r->io.mean, &r->io.std);
        return loom_image_source_new(&r->itrain, r->x, r->y, &r->io, &r->isrc, err) != LOOM_OK;
    }
    r->so = LOOM_SAMPLER_OPTS_INIT;
    r->so.batch = r->o.batch;
    r->so.devices = loom_program_devices(p);
    r->so.seed = r->o.seed;
    if (loom_sampler_kind_parse(r->o.sampler ? r->o.sampler : "balance", &r->so.kind, err) != LOOM_OK)
        return fprintf(stderr, "loom %s: --sampler: %s\n", cmd, err->msg), 2;
    if (r->so.kind == LOOM_SAMPLER_PLAN)
        return fprintf(stderr, "loom %s: --sampler plan is not offered here (examples/hep_tracks.c shows it)\n", cmd), 2;
    if (r->so.kind == LOOM_SAMPLER_BUDGET) /* as many nodes and edges as `batch` mean samples hold */
        loom_sampler_mean_budget(&r->train, &r->so);
    if (loom_sampler_new(&r->train, NULL, r->train.count, &r->so, &r->smp, err) != LOOM_OK ||
        loom_batch_source_new(p, &r->train, r->smp, &r->in, &r->bsrc, err) != LOOM_OK)
        return 1;
    return 0;
}

int cli_run_new(cli_run *r, const char *cmd, const cli_model *m, const cli_opts *o, int shapes_only)
{
    memset(r, 0, sizeof *r);
    r->m = m;
    r->o = *o;
    r->shapes_only = shapes_only;
    r->train = r->test = LOOM_SAMPLES_INIT;
    if (!r->o.data)
        r->o.data = m->data;
    if (!r->o.batch)
        r->o.batch = m->batch;
    /* options the model has no use for are refused, not ignored */
    const char *unused = m->kind == CLI_NODES && o->batch    ? "--batch (it trains on the whole graph)"
                         : m->kind == CLI_NODES && o->limit  ? "--limit (it trains on the whole graph)"
                         : m->kind != CLI_SAMPLES && o->sampler ? "--sampler (it deals graph samples: in, gin)"
                         : !m->hidden && o->hidden           ? "--hidden (gcn, gat, in, gin and mlp have one)"
                                                             : NULL;
    if (unused)
        return fprintf(stderr, "loom %s %s: this model takes no %s\n", cmd, m->name, unused), 2;
    loom_error err = LOOM_ERROR_INIT;
    loom_placement *pl = NULL;
    if (o->placement && !(pl = loom_placement_parse(o->placement, &err)))
        return fprintf(stderr, "loom %s: --placement: %s\n", cmd, err.msg), 2;
    const int over_ranks = pl && loom_placement_nranks(pl) > 1;
    int rc = m->kind == CLI_NODES ? load_nodes(r, cmd, &err) : m->kind == CLI_SAMPLES ? load_samples(r, cmd, &err) : load_images(r, cmd, &err);
    if (rc) {
        loom_placement_free(pl);
        return rc == 2 ? 2 : (fprintf(stderr, "loom %s: %s\n", cmd, err.msg), 1);
    }
    r->g = loom_graph_new();
    loom_graph_set_seed(r->g, r->o.seed);
    if (pl)
        loom_graph_set_placement(r->g, pl);
    loom_placement_free(pl);
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    build(r, &t);
    if (o->rank) { /* plan only: the rank's part of a job's plan */
        char *end = NULL;
        long rank = *o->rank >= '0' && *o->rank <= '9' ? strtol(o->rank, &end, 10) : -1;
        if (rank < 0 || rank > LOOM_MAX_RANK || *end)
            return fprintf(stderr, "loom %s: --rank '%s': expected a rank, 0 to %d\n", cmd, o->rank, LOOM_MAX_RANK), 2;
        t.plan_only = 1;
        t.plan_rank = (int)rank;
    }
    t.memory_limit = o->memory_limit;
    t.cost_model = o->cost;
    loom_link_model links = LOOM_LINK_MODEL_INIT; /* --link: the network SBP inference prices too */
    if (o->link && loom_link_model_parse(o->link, NULL, &links, &err) != LOOM_OK)
        return fprintf(stderr, "loom %s: --link: %s\n", cmd, err.msg), 2;
    t.links = o->link ? &links : NULL;
    if (loom_compile(r->g, r->loss, &t, &r->p) != LOOM_OK) {
        int hint = !strcmp(cmd, "plan") && !o->rank && over_ranks; /* a job's plan, asked here */
        return fprintf(stderr, "loom %s: %s%s\n", cmd, loom_graph_error(r->g),
                       hint ? " (loom plan --rank R compiles the plan of one of its ranks here)" : ""), 1;
    }
    if (shapes_only)
        return 0;
    rc = sources(r, cmd, &err);
    if (rc == 1)
        fprintf(stderr, "loom %s: %s\n", cmd, err.msg);
    return rc;
}

void cli_run_free(cli_run *r)
{
    loom_batch_source_free(r->bsrc);
    loom_sampler_free(r->smp);
    loom_image_source_free(r->isrc);
    loom_program_free(r->p);
    loom_graph_free(r->g);
    loom_node_split_free(&r->split);
    loom_node_dataset_free(&r->nodes);
    loom_array_free(&r->src);
    loom_array_free(&r->dst);
    loom_samples_free(&r->train);
    loom_samples_free(&r->test);
    loom_image_set_free(&r->itrain);
    loom_image_set_free(&r->itest);
    memset(r, 0, sizeof *r);
}

/* ---- epochs, steps, accuracy --------------------------------------------------------------- */

loom_status cli_epoch(cli_run *r, int64_t e, loom_error *err)
{
    loom_status st = LOOM_OK;
    r->next = 0;
    if (r->m->kind == CLI_NODES) {
        r->epoch_steps = 1;
    } else if (r->m->kind == CLI_IMAGES) {
        if ((st = loom_image_source_epoch(r->isrc, e, err)) == LOOM_OK)
            loom_program_set_source(r->p, loom_image_source_fn, r->isrc);
        r->epoch_steps = loom_image_source_steps(r->isrc);
    } else {
        if ((st = loom_sampler_epoch(r->smp, e, err)) == LOOM_OK && (st = loom_batch_plan_epoch(r->p, r->smp, &r->in, err)) == LOOM_OK)
            loom_batch_source_rewind(r->bsrc, 0);
        r->epoch_steps = loom_sampler_steps(r->smp);
    }
    return st;
}

loom_status cli_steps(cli_run *r, int64_t n, int64_t *samples, loom_error *err)
{
    loom_status st;
    if (n > r->epoch_steps - r->next)
        n = r->epoch_steps - r->next;
    for (int64_t k = r->next; k < r->next + n; k++) {
        int64_t c = 0;
        if (r->m->kind == CLI_NODES)
            c = r->num_nodes;
        else if (r->m->kind == CLI_IMAGES)
            loom_image_source_labels(r->isrc, k, &c);
        else
            for (int d = 0; d < r->so.devices; d++) {
                int64_t q;
                loom_sampler_share(r->smp, k, d, &q);
                c += q;
            }
        *samples += c;
    }
    if (r->m->kind == CLI_SAMPLES)
        st = loom_batch_run(r->bsrc, LOOM_RUN_STEP, n, err);
    else if ((st = loom_program_run_steps(r->p, LOOM_RUN_STEP, n)) != LOOM_OK)
        loom_error_set(err, st, "%s", loom_program_error(r->p));
    r->next += n;
    return st;
}

loom_status cli_accuracy(cli_run *r, double *acc, loom_error *err)
{
    *acc = -1;
    if (r->m->kind == CLI_IMAGES)
        return loom_image_accuracy(r->p, r->logits, &r->itest, r->x, r->y, &r->io, LOOM_RUN_EVAL, acc, err);
    if (r->m->kind == CLI_SAMPLES) {
        /* the held-out events; a dataset read from files is scored on its own samples */
        const loom_samples *s = r->test.count ? &r->test : &r->train;
        if (r->in.graph_y)
            return loom_batch_graph_accuracy(r->p, r->logits, s, &r->so, &r->in, LOOM_RUN_EVAL, acc, err);
        loom_edge_metrics em;
        loom_status st = loom_batch_edge_metrics(r->p, r->logits, s, &r->so, &r->in, LOOM_RUN_EVAL, &em, err);
        if (st == LOOM_OK)
            *acc = em.accuracy;
        return st;
    }
    loom_array z;
    loom_status st = loom_program_run(r->p, LOOM_RUN_EVAL);
    if (st == LOOM_OK)
        st = loom_program_fetch(r->p, r->logits, &z);
    if (st != LOOM_OK)
        return loom_error_set(err, st, "%s", loom_program_error(r->p));
    *acc = loom_accuracy(&z, &r->nodes.labels, &r->split.test);
    return LOOM_OK;
}
