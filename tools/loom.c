/* The loom command-line program.
 *
 *     loom info     what this build has: version, CUDA devices, registered ops
 *     loom ops      the op registry, one op a line
 *     loom plan MODEL [--placement P] [--dot FILE]
 *                   the SBP plan of a model's training step on placement P (default cpu:0-3):
 *                   each op's signature and why, every boxing op and the bytes it moves.
 *                   Models: gcn (Cora's sizes, 2 layers, hidden 16), mlp (784-128-10).
 */
#include <loom/loom.h>

#include <stdio.h>
#include <string.h>

#include "graphs/program.h"
#include "ops/op.h"

static int usage(FILE *f)
{
    fprintf(f, "usage: loom info | loom ops | loom plan gcn|mlp [--placement P] [--dot FILE]\n");
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
    printf("ops: %d\n", (int)LOOM_OP_COUNT);
    return 0;
}

static int ops(void)
{
    for (int i = 0; i < LOOM_OP_COUNT; i++) {
        const loom_op_def *d = loom__op_def((loom_op)i);
        printf("%-28s %s%s\n", d ? d->name : "(missing)", d && d->grad ? "grad" : "-",
               d && (d->flags & LOOM__OPF_LEAF) ? " leaf" : "");
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

static int plan(int argc, char **argv)
{
    const char *model = argc > 2 ? argv[2] : NULL, *placement = "cpu:0-3", *dot = NULL;
    for (int i = 3; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--placement"))
            placement = argv[i + 1];
        else if (!strcmp(argv[i], "--dot"))
            dot = argv[i + 1];
        else
            return fprintf(stderr, "loom plan: unknown option %s\n", argv[i]), 2;
    }
    if (!model)
        return usage(stderr);
    loom_error err = {0};
    loom_placement *pl = loom_placement_parse(placement, &err);
    if (!pl)
        return fprintf(stderr, "loom plan: %s\n", err.msg), 2;
    loom_graph *g = loom_graph_new();
    loom_graph_set_placement(g, pl);
    loom_tensor *loss = build_model(g, model);
    if (!loss) {
        fprintf(stderr, "loom plan: unknown model '%s' (gcn, mlp)\n", model);
        return 2;
    }
    loom_program *p;
    if (loom_compile(g, loss, &(loom_train_opts){.optimizer = loom_adam(0.01)}, &p) != LOOM_OK) {
        fprintf(stderr, "loom plan: %s\n", loom_graph_error(g));
        return 1;
    }
    char ps[128];
    loom_placement_str(pl, ps, sizeof ps);
    printf("model %s on %s: %d tensors (forward %d, backward %d, updates %d)\n\n", model, ps, p->n, p->fwd_end,
           p->bwd_end - p->fwd_end, p->n - p->bwd_end);
    if (p->ndevices > 1) {
        loom__sbp_plan_print(&p->sbp, g, p->n, stdout);
        if (dot) {
            FILE *f = fopen(dot, "w");
            if (!f)
                return fprintf(stderr, "loom plan: cannot write %s\n", dot), 1;
            loom__sbp_plan_dot(&p->sbp, g, p->n, f);
            fclose(f);
            printf("wrote %s\n", dot);
        }
    } else {
        printf("one device: every tensor is whole there, nothing to box\n");
    }
    loom_program_free(p);
    loom_graph_free(g);
    loom_placement_free(pl);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage(stderr);
    if (!strcmp(argv[1], "info"))
        return info();
    if (!strcmp(argv[1], "ops"))
        return ops();
    if (!strcmp(argv[1], "plan"))
        return plan(argc, argv);
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help"))
        return usage(stdout);
    fprintf(stderr, "loom: unknown command '%s'\n", argv[1]);
    return usage(stderr);
}
