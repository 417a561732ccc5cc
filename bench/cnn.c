/* CNN training speed: LeNet-5, the ConvNet and ResNet-20 of include/loom/nn.h on 28x28 grey images,
 * SGD with momentum 0.9 on the softmax cross entropy, the batch fed once (data already on the
 * device, as bench/peers/cnn_torch.py has it), `steps` optimizer steps timed after `warmup`. One
 * JSON line per model, the fields of bench/peers/cnn_torch.py's lines.
 *
 *     cnn [--model lenet|convnet|resnet20|all] [--placement cpu:0|cuda:0] [--batch B] [--steps 50]
 *         [--warmup 10] [--threads 0] [--matmul f32|tf32|bf16]
 *
 * The batch defaults to the model's recipe (LeNet-5 256, the ConvNet 512, ResNet-20 128). --matmul
 * is loom_train_opts.matmul, for convolutions as for matrix products on a GPU: f32 (the default)
 * runs them on FMA math, as cnn_torch.py's default (TF32 off); tf32 as its --tf32.
 * images_per_s = batch * steps / seconds; a run returns once its last loss is on the host.
 * plan_bytes is the plan's total for the device (on a GPU its one allocation). */
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static const char *const models[] = {"lenet", "convnet", "resnet20"};
static const int64_t recipe_batch[] = {256, 512, 128};

static int run_model(int m, const char *placement, int64_t batch, int steps, int warmup, int threads, loom_matmul_precision mm)
{
    loom_error err = LOOM_ERROR_INIT;
    loom_graph *g = loom_graph_new();
    loom_placement *pl = loom_placement_parse(placement, &err);
    if (!pl)
        return fprintf(stderr, "cnn: %s\n", err.msg), -1;
    loom_graph_set_placement(g, pl);
    loom_placement_free(pl);
    loom_tensor *x = loom_input(g, "images", LOOM_F32, loom_shape(batch, 1, 28, 28));
    loom_tensor *y = loom_input(g, "labels", LOOM_I32, loom_shape(batch));
    loom_tensor *z = m == 0 ? loom_nn_lenet5(g, x, 10) : m == 1 ? loom_nn_convnet(g, x, 10) : loom_nn_resnet20(g, x, 10);
    loom_tensor *loss = loom_softmax_cross_entropy(g, z, y, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.05);
    o.optimizer.momentum = 0.9;
    o.threads = threads;
    o.matmul = mm;
    loom_program *p = NULL;
    int rc = -1;
    float *img = malloc((size_t)batch * 28 * 28 * sizeof *img);
    int32_t *lab = malloc((size_t)batch * sizeof *lab);
    if (!img || !lab || loom_compile(g, loss, &o, &p) != LOOM_OK) {
        fprintf(stderr, "cnn: %s\n", img && lab ? loom_graph_error(g) : "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < batch * 28 * 28; i++) /* a fixed pattern in [-1, 1): the speed does not depend on it */
        img[i] = (float)((i * 2654435761u) % 2000) / 1000.0f - 1.0f;
    for (int64_t i = 0; i < batch; i++)
        lab[i] = (int32_t)(i % 10);
    loom_array a = {.dtype = LOOM_F32, .ndim = 4, .shape = {batch, 1, 28, 28}, .data = img};
    loom_array b = {.dtype = LOOM_I32, .ndim = 1, .shape = {batch}, .data = lab};
    if (loom_program_feed(p, x, &a) != LOOM_OK || loom_program_feed(p, y, &b) != LOOM_OK ||
        (warmup > 0 && loom_program_run_steps(p, LOOM_RUN_STEP, warmup) != LOOM_OK)) {
        fprintf(stderr, "cnn: %s\n", loom_program_error(p));
        goto done;
    }
    const double t0 = now();
    if (loom_program_run_steps(p, LOOM_RUN_STEP, steps) != LOOM_OK) {
        fprintf(stderr, "cnn: %s\n", loom_program_error(p));
        goto done;
    }
    const double secs = now() - t0;
    loom_memory mem = {0};
    loom_program_memory(p, LOOM_RUN_STEP, 0, &mem);
    int64_t n;
    const double *l = loom_program_losses(p, &n);
    printf("{\"case\": \"cnn\", \"model\": \"%s\", \"impl\": \"loom\", \"variant\": \"actors\", \"math\": \"%s\", \"device\": \"%s\", \"batch\": %lld, "
           "\"steps\": %d, \"warmup\": %d, \"ms_per_iter\": %.4f, \"images_per_s\": %.0f, \"plan_bytes\": %zu, \"final_loss\": %.6f}\n",
           models[m], mm == LOOM_MATMUL_F32 ? "f32" : mm == LOOM_MATMUL_TF32 ? "tf32" : "bf16", placement, (long long)batch, steps, warmup, 1e3 * secs / steps, (double)batch * steps / secs, mem.total,
           n ? l[n - 1] : 0.0);
    fflush(stdout);
    rc = 0;
done:
    free(img);
    free(lab);
    loom_program_free(p);
    loom_graph_free(g);
    return rc;
}

int main(int argc, char **argv)
{
    const char *model = "all", *placement = "cpu:0";
    int64_t batch = 0;
    int steps = 50, warmup = 10, threads = 0;
    loom_matmul_precision mm = LOOM_MATMUL_F32;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--model"))
            model = v;
        else if (!strcmp(a, "--placement"))
            placement = v;
        else if (!strcmp(a, "--batch"))
            batch = atoll(v);
        else if (!strcmp(a, "--steps"))
            steps = atoi(v);
        else if (!strcmp(a, "--warmup"))
            warmup = atoi(v);
        else if (!strcmp(a, "--threads"))
            threads = atoi(v);
        else if (!strcmp(a, "--matmul") && (!strcmp(v, "f32") || !strcmp(v, "tf32") || !strcmp(v, "bf16")))
            mm = !strcmp(v, "f32") ? LOOM_MATMUL_F32 : !strcmp(v, "tf32") ? LOOM_MATMUL_TF32 : LOOM_MATMUL_BF16;
        else
            return fprintf(stderr, "cnn: unknown option %s (see the top of bench/cnn.c)\n", a), 2;
    }
    if ((argc - 1) % 2 || steps < 1 || warmup < 0 || batch < 0)
        return fprintf(stderr, "cnn: options take a value each; steps >= 1, warmup and batch >= 0\n"), 2;
    int failed = 0, any = 0;
    for (int m = 0; m < 3; m++)
        if (!strcmp(model, "all") || !strcmp(model, models[m])) {
            any = 1;
            failed |= run_model(m, placement, batch ? batch : recipe_batch[m], steps, warmup, threads, mm) != 0;
        }
    if (!any)
        return fprintf(stderr, "cnn: --model is lenet, convnet, resnet20 or all, not '%s'\n", model), 2;
    return failed;
}
