/* Writes the checkpoints tests/checkpoint_py.py reads with Python's safetensors package (or a
 * reader of the published layout): DIR/sgd.safetensors (an f32 MLP after one step of SGD with
 * momentum) and DIR/adam.safetensors (an f64 MLP after three steps of Adam), and prints one JSON
 * line for each: its metadata, and each tensor's dtype, shape and values (as many digits as make
 * them exact), or null values where the public API cannot tell them (Adam's moments). The momentum
 * buffer of SGD's first step is the gradient, which can be fetched. With --read, loads a file that
 * Python wrote into the Adam MLP and prints the same line of what it then holds.
 *
 *     checkpoint_writer DIR
 *     checkpoint_writer --read FILE */
#include <loom/loom.h>

#include <stdio.h>
#include <string.h>

static const char *const layer_params[] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};

static void print_values(const loom_array *a)
{
    int64_t n = 1;
    for (int k = 0; k < a->ndim; k++)
        n *= a->shape[k];
    printf("[");
    for (int64_t i = 0; i < n; i++)
        if (a->dtype == LOOM_F32)
            printf("%s%.9g", i ? "," : "", (double)((const float *)a->data)[i]);
        else
            printf("%s%.17g", i ? "," : "", ((const double *)a->data)[i]);
    printf("]");
}

static void print_entry(const char *name, const loom_array *a, int with_values, int *first)
{
    printf("%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", *first ? "" : ",", name, a->dtype == LOOM_F32 ? "F32" : "F64");
    for (int k = 0; k < a->ndim; k++)
        printf("%s%lld", k ? "," : "", (long long)a->shape[k]);
    printf("],\"values\":");
    if (with_values)
        print_values(a);
    else
        printf("null");
    printf("}");
    *first = 0;
}

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "checkpoint_writer: %s: %s\n", what, msg ? msg : "(no message)");
    return 1;
}

typedef struct net {
    loom_graph *g;
    loom_program *p;
    loom_tensor *x, *y;
} net;

/* An MLP of dtype with optimizer opt, its gradients kept; 1 on failure (said). */
static int net_new(net *n, loom_dtype dtype, loom_optimizer opt)
{
    loom_graph *g = n->g = loom_graph_new();
    loom_graph_set_seed(g, 5);
    n->x = loom_input(g, "x", dtype, loom_shape(4, 3));
    n->y = loom_input(g, "y", LOOM_I32, loom_shape(4));
    loom_tensor *h = loom_relu(g, loom_nn_linear(g, "fc1", n->x, 5, 1));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, 2, 1), n->y, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = opt;
    if (loom_compile(g, loss, &o, &n->p) != LOOM_OK)
        return fail("loom_compile", loom_graph_error(g));
    for (int k = 0; k < 4; k++)
        loom_program_keep(n->p, loom_program_grad(n->p, loom_graph_find(g, layer_params[k])));
    return 0;
}

static void net_free(net *n)
{
    loom_program_free(n->p);
    loom_graph_free(n->g);
}

/* The JSON line of file: the metadata, each parameter's values, each state's dtype and shape
 * (and SGD's momentum, the gradient of its first step, when with_state). */
static int describe(net *n, const char *file, int sgd, int with_state)
{
    int first = 1;
    printf("{\"file\":\"%s\",\"metadata\":{\"optimizer\":\"%s\",\"step\":\"%lld\"},\"tensors\":{", file,
           sgd ? "sgd" : "adam", (long long)loom_program_steps(n->p));
    for (int k = 0; k < 4; k++) {
        loom_tensor *t = loom_graph_find(n->g, layer_params[k]);
        loom_array v, grad;
        if (loom_program_fetch(n->p, t, &v) != LOOM_OK)
            return fail("loom_program_fetch", loom_program_error(n->p));
        print_entry(layer_params[k], &v, 1, &first);
        grad = v; /* the state's dtype and shape */
        if (with_state && loom_program_fetch(n->p, loom_program_grad(n->p, t), &grad) != LOOM_OK)
            return fail("loom_program_fetch", loom_program_error(n->p));
        char name[96];
        snprintf(name, sizeof name, "%s.%s", layer_params[k], sgd ? "momentum" : "exp_avg");
        print_entry(name, &grad, sgd && with_state, &first);
        if (!sgd) {
            snprintf(name, sizeof name, "%s.exp_avg_sq", layer_params[k]);
            print_entry(name, &grad, 0, &first);
        }
    }
    printf("}}\n");
    return 0;
}

/* An MLP of dtype trained `steps` steps with opt, saved to DIR/file, then described. */
static int write_one(const char *dir, const char *file, loom_dtype dtype, loom_optimizer opt, int steps)
{
    net n;
    if (net_new(&n, dtype, opt)) {
        net_free(&n);
        return 1;
    }
    double xd[12];
    float xf[12];
    int32_t yd[4] = {0, 1, 1, 0};
    for (int i = 0; i < 12; i++)
        xf[i] = (float)(xd[i] = (double)((i * 5) % 7) / 7.0 - 0.5);
    loom_array xa = {.dtype = dtype, .ndim = 2, .shape = {4, 3}, .data = dtype == LOOM_F32 ? (void *)xf : (void *)xd};
    loom_array ya = {.dtype = LOOM_I32, .ndim = 1, .shape = {4}, .data = yd};
    int rc = 0;
    if (loom_program_feed(n.p, n.x, &xa) != LOOM_OK || loom_program_feed(n.p, n.y, &ya) != LOOM_OK ||
        loom_program_run_steps(n.p, LOOM_RUN_STEP, steps) != LOOM_OK)
        rc = fail("training", loom_program_error(n.p));
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (!rc && loom_program_save(n.p, path) != LOOM_OK)
        rc = fail("loom_program_save", loom_program_error(n.p));
    if (!rc)
        rc = describe(&n, file, opt.kind == LOOM_OPT_SGD, 1);
    net_free(&n);
    return rc;
}

int main(int argc, char **argv)
{
    loom_optimizer sgd = loom_sgd(0.1);
    sgd.momentum = 0.9;
    loom_optimizer adam = loom_adam(0.01);
    adam.schedule = LOOM_LR_COSINE;
    adam.total_steps = 10;
    if (argc == 3 && !strcmp(argv[1], "--read")) { /* a file Python wrote, into the Adam MLP */
        net n;
        int rc = net_new(&n, LOOM_F64, adam);
        if (!rc && loom_program_load(n.p, argv[2]) != LOOM_OK)
            rc = fail("loom_program_load", loom_program_error(n.p));
        if (!rc)
            rc = describe(&n, argv[2], 0, 0);
        net_free(&n);
        return rc;
    }
    if (argc != 2) {
        fprintf(stderr, "usage: checkpoint_writer DIR | checkpoint_writer --read FILE\n");
        return 2;
    }
    return write_one(argv[1], "sgd.safetensors", LOOM_F32, sgd, 1) | write_one(argv[1], "adam.safetensors", LOOM_F64, adam, 3);
}
