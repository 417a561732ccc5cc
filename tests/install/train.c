/* A program built against an installed Loom (tests/install/check.sh builds it with find_package and
 * with pkg-config, linked to the shared and to the static library): a two-layer network learns
 * which of three features is largest on 64 fixed samples. Exit 0 when the loss of the last of 40
 * steps is under half the first's; 1, saying why, otherwise. */
#include <loom/loom.h>

#include <stdio.h>

enum { N = 64, F = 3, STEPS = 40 };

int main(void)
{
    static float xs[N * F];
    static int32_t ys[N];
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < F; j++) {
            seed = seed * 1664525u + 1013904223u; /* a fixed sequence: the same data everywhere */
            xs[i * F + j] = (float)(seed >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
            if (xs[i * F + j] > xs[i * F + ys[i]])
                ys[i] = j;
        }
    }

    loom_graph *g = loom_graph_new();
    loom_tensor *x = loom_input(g, "x", LOOM_F32, loom_shape(N, F));
    loom_tensor *y = loom_input(g, "y", LOOM_I32, loom_shape(N));
    loom_tensor *h = loom_relu(g, loom_nn_linear(g, "fc1", x, 16, 1));
    loom_tensor *loss = loom_softmax_cross_entropy(g, loom_nn_linear(g, "fc2", h, F, 1), y, NULL);
    loom_train_opts opts = LOOM_TRAIN_OPTS_INIT;
    opts.optimizer = loom_adam(0.05);
    loom_program *p;
    if (loom_compile(g, loss, &opts, &p) != LOOM_OK) {
        fprintf(stderr, "compile: %s\n", loom_graph_error(g));
        return 1;
    }
    loom_array xa = {.dtype = LOOM_F32, .ndim = 2, .shape = {N, F}, .data = xs};
    loom_array ya = {.dtype = LOOM_I32, .ndim = 1, .shape = {N}, .data = ys};
    int64_t n = 0;
    const double *l = NULL;
    if (loom_program_feed(p, x, &xa) != LOOM_OK || loom_program_feed(p, y, &ya) != LOOM_OK ||
        loom_program_run_steps(p, LOOM_RUN_STEP, STEPS) != LOOM_OK || !(l = loom_program_losses(p, &n)) ||
        n != STEPS) {
        fprintf(stderr, "training: %s\n", loom_program_error(p));
        return 1;
    }
    int ok = l[n - 1] < 0.5 * l[0];
    printf("loom %s: loss %.4f after 1 step, %.4f after %d\n", ok ? "trains" : "does NOT train", l[0], l[n - 1],
           STEPS);
    loom_program_free(p);
    loom_graph_free(g);
    return ok ? 0 : 1;
}
