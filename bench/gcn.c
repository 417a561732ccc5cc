/* GCN training speed: two-layer GCN (hidden 16, dropout 0.5, Adam) on Cora, full batch, one
 * optimizer step per epoch. Prints one JSON line per case.
 *
 *     gcn [--epochs 200] [--warmup 20]
 *
 * Cora comes from $LOOM_DATA/cora.npz (or the cache). Time covers the training steps only:
 * forward, backward and the update, as PyG's epoch loop measures it. One line per executor. */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    int epochs = 200, warmup = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--epochs"))
            epochs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup"))
            warmup = atoi(argv[i + 1]);
    }
    loom_node_dataset d;
    loom_error err = {0};
    if (loom_cora_load(&d, &err) != LOOM_OK) {
        fprintf(stderr, "gcn: %s\n", err.msg);
        return 1;
    }
    loom_node_split split;
    if (loom_split_per_class(&d.labels, d.num_classes, 20, 500, 1000, 0, &split, &err) != LOOM_OK) {
        fprintf(stderr, "gcn: %s\n", err.msg);
        return 1;
    }
    /* the same model on each executor: the actor runtime (all epochs in one pipelined run, and one
     * run per epoch as an interactive loop does) and the reference executor */
    static const struct {
        const char *name;
        loom_executor exec;
        int one_run;
    } cases[] = {{"actors", LOOM_EXEC_ACTORS, 1}, {"actors_run_per_epoch", LOOM_EXEC_ACTORS, 0}, {"reference", LOOM_EXEC_REFERENCE, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        loom_graph *g = loom_graph_new();
        loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(d.num_nodes, d.num_features));
        loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F32, d.num_nodes, d.num_nodes);
        loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(d.num_nodes));
        loom_tensor *mask = loom_input(g, "train_mask", LOOM_U8, loom_shape(d.num_nodes));
        loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_gcn(g, adj, x, 16, d.num_classes, 0.5), y, mask);
        loom_optimizer adam = loom_adam(0.01);
        adam.weight_decay = 5e-4;
        loom_program *p;
        if (loom_compile(g, loss, &(loom_train_opts){.optimizer = adam, .executor = cases[c].exec}, &p) != LOOM_OK) {
            fprintf(stderr, "gcn: %s\n", loom_graph_error(g));
            return 1;
        }
        if (loom_program_feed(p, x, &d.x) || loom_program_feed_csr(p, adj, &d.adj) || loom_program_feed(p, y, &d.labels) ||
            loom_program_feed(p, mask, &split.train) || loom_program_run_steps(p, LOOM_RUN_STEP, warmup)) {
            fprintf(stderr, "gcn: %s\n", loom_program_error(p));
            return 1;
        }
        double t0 = now_ms();
        loom_status s = LOOM_OK;
        if (cases[c].one_run)
            s = loom_program_run_steps(p, LOOM_RUN_STEP, epochs);
        else
            for (int e = 0; e < epochs && s == LOOM_OK; e++)
                s = loom_program_run(p, LOOM_RUN_STEP);
        double ms = (now_ms() - t0) / epochs;
        if (s != LOOM_OK) {
            fprintf(stderr, "gcn: %s\n", loom_program_error(p));
            return 1;
        }
        int64_t n;
        const double *losses = loom_program_losses(p, &n);
        size_t shared = 0, unshared = 0, own = 0;
        if (cases[c].exec == LOOM_EXEC_ACTORS)
            loom_program_memory(p, LOOM_RUN_STEP, &shared, &unshared, &own);
        printf("{\"case\": \"gcn_cora\", \"device\": \"cpu\", \"executor\": \"%s\", \"nodes\": %lld, \"edges\": %lld, "
               "\"hidden\": 16, \"epochs\": %d, \"ms_per_epoch\": %.4f, \"final_loss\": %.6f, \"plan_shared_bytes\": %zu, "
               "\"plan_unshared_bytes\": %zu, \"plan_own_bytes\": %zu}\n",
               cases[c].name, (long long)d.num_nodes, (long long)d.adj.nnz, epochs, ms, losses[n - 1], shared, unshared, own);
        loom_program_free(p);
        loom_graph_free(g);
    }
    loom_node_split_free(&split);
    loom_node_dataset_free(&d);
    return 0;
}
