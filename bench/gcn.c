/* GCN training speed: two-layer GCN (hidden 16, dropout 0.5, Adam) on Cora, full batch, one
 * optimizer step per epoch. Prints one JSON line per case.
 *
 *     gcn [--epochs 200] [--warmup 20]
 *
 * Cora comes from $LOOM_DATA/cora.npz (or the cache). Time covers loom_program_run(STEP) only:
 * forward, backward and the update, as PyG's epoch loop measures it. */
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
    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(d.num_nodes, d.num_features));
    loom_tensor *adj = loom_input_csr(g, "adj", LOOM_F32, d.num_nodes, d.num_nodes);
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(d.num_nodes));
    loom_tensor *mask = loom_input(g, "train_mask", LOOM_U8, loom_shape(d.num_nodes));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_gcn(g, adj, x, 16, d.num_classes, 0.5), y, mask);
    loom_optimizer adam = loom_adam(0.01);
    adam.weight_decay = 5e-4;
    loom_program *p;
    if (loom_compile(g, loss, &(loom_train_opts){.optimizer = adam}, &p) != LOOM_OK) {
        fprintf(stderr, "gcn: %s\n", loom_graph_error(g));
        return 1;
    }
    if (loom_program_feed(p, x, &d.x) || loom_program_feed_csr(p, adj, &d.adj) || loom_program_feed(p, y, &d.labels) ||
        loom_program_feed(p, mask, &split.train)) {
        fprintf(stderr, "gcn: %s\n", loom_program_error(p));
        return 1;
    }
    double t0 = 0;
    for (int e = 0; e < warmup + epochs; e++) {
        if (e == warmup)
            t0 = now_ms();
        if (loom_program_run(p, LOOM_RUN_STEP) != LOOM_OK) {
            fprintf(stderr, "gcn: %s\n", loom_program_error(p));
            return 1;
        }
    }
    double ms = (now_ms() - t0) / epochs;
    loom_array l;
    loom_program_fetch(p, loss, &l);
    printf("{\"case\": \"gcn_cora\", \"device\": \"cpu\", \"executor\": \"reference\", \"nodes\": %lld, \"edges\": %lld, "
           "\"hidden\": 16, \"epochs\": %d, \"ms_per_epoch\": %.4f, \"final_loss\": %.4f}\n",
           (long long)d.num_nodes, (long long)d.adj.nnz, epochs, ms, ((float *)l.data)[0]);
    loom_program_free(p);
    loom_graph_free(g);
    loom_node_split_free(&split);
    loom_node_dataset_free(&d);
    return 0;
}
