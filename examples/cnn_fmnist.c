/* Trains a CNN on Fashion-MNIST (the Debian package dataset-fashion-mnist, or $LOOM_DATA/fashion-mnist).
 *
 *     cnn_fmnist [--model lenet|convnet|resnet20] [--placement cpu:0] [--batch 256] [--epochs 6]
 *                [--lr 0.05] [--momentum 0.9] [--weight-decay 0] [--cosine] [--augment] [--seed 0]
 *                [--limit N] [--min-accuracy A] [--skip-missing] [--quiet]
 *
 * SGD with momentum (PyTorch's rule) on the softmax cross entropy, with --cosine a cosine schedule of
 * the learning rate over every step of the run (to 0); pixels normalised with the
 * training set's mean and standard deviation; --augment adds random crops (padding 2) and
 * horizontal flips in the data source. Each epoch prints a progress line (images per second) and
 * the test accuracy. --limit trains on the first N training images (a quick run); --min-accuracy
 * makes the exit status 3 when the last epoch's test accuracy is below A; --skip-missing exits
 * with 77 (the test suite's "skipped") when the dataset is not installed. */
#include <loom/images.h>
#include <loom/loom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct options {
    const char *model, *placement;
    int64_t batch, limit;
    int epochs, augment, cosine, skip_missing, quiet;
    double lr, momentum, weight_decay, min_accuracy;
    uint64_t seed;
} options;

static int parse(int argc, char **argv, options *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int *flag = !strcmp(a, "--augment") ? &o->augment : !strcmp(a, "--cosine") ? &o->cosine
                        : !strcmp(a, "--skip-missing") ? &o->skip_missing : !strcmp(a, "--quiet") ? &o->quiet : NULL;
        if (flag) {
            *flag = 1;
            continue;
        }
        if (!v)
            return fprintf(stderr, "cnn_fmnist: %s needs a value\n", a), -1;
        char *end = NULL;
        if (!strcmp(a, "--model"))
            o->model = v, end = (char *)v + strlen(v);
        else if (!strcmp(a, "--placement"))
            o->placement = v, end = (char *)v + strlen(v);
        else if (!strcmp(a, "--batch"))
            o->batch = strtoll(v, &end, 10);
        else if (!strcmp(a, "--limit"))
            o->limit = strtoll(v, &end, 10);
        else if (!strcmp(a, "--epochs"))
            o->epochs = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--lr"))
            o->lr = strtod(v, &end);
        else if (!strcmp(a, "--momentum"))
            o->momentum = strtod(v, &end);
        else if (!strcmp(a, "--weight-decay"))
            o->weight_decay = strtod(v, &end);
        else if (!strcmp(a, "--min-accuracy"))
            o->min_accuracy = strtod(v, &end);
        else if (!strcmp(a, "--seed"))
            o->seed = strtoull(v, &end, 10);
        else
            return fprintf(stderr, "cnn_fmnist: unknown option %s (see the top of examples/cnn_fmnist.c)\n", a), -1;
        if (!end || *end || end == v)
            return fprintf(stderr, "cnn_fmnist: %s: '%s' is not a valid value\n", a, v), -1;
        i++;
    }
    if (o->batch < 1 || o->epochs < 1 || o->limit < 0 || !(o->lr > 0) || o->momentum < 0 || o->weight_decay < 0)
        return fprintf(stderr, "cnn_fmnist: batch and epochs must be >= 1, lr > 0, momentum and weight decay >= 0\n"), -1;
    if (strcmp(o->model, "lenet") && strcmp(o->model, "convnet") && strcmp(o->model, "resnet20"))
        return fprintf(stderr, "cnn_fmnist: --model is lenet, convnet or resnet20, not '%s'\n", o->model), -1;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv)
{
    options o = {.model = "lenet", .placement = "cpu:0", .batch = 256, .epochs = 6, .lr = 0.05, .momentum = 0.9};
    if (parse(argc, argv, &o))
        return 2;
    loom_error err = LOOM_ERROR_INIT;
    loom_image_set train = {0}, test = {0};
    if (loom_fashion_mnist_load(NULL, 1, &train, &err) != LOOM_OK || loom_fashion_mnist_load(NULL, 0, &test, &err) != LOOM_OK) {
        fprintf(stderr, "cnn_fmnist: %s\n", err.msg);
        return err.status == LOOM_ERR_NOT_FOUND && o.skip_missing ? 77 : 1;
    }
    if (o.limit > 0 && o.limit < train.count) { /* the first images only: their arrays' leading rows */
        train.count = o.limit;
        train.images.shape[0] = o.limit;
        train.labels.shape[0] = o.limit;
    }

    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, o.seed);
    if (strcmp(o.placement, "cpu:0")) {
        loom_placement *pl = loom_placement_parse(o.placement, &err);
        if (!pl)
            return fprintf(stderr, "cnn_fmnist: --placement: %s\n", err.msg), 2;
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    loom_dim B = loom_dim_dynamic(g, "B", o.batch); /* the last step of an epoch may be shorter */
    loom_tensor *x = loom_input(g, "images", LOOM_F32, loom_shape(B, train.channels, train.height, train.width));
    loom_tensor *y = loom_input(g, "labels", LOOM_I32, loom_shape(B));
    loom_tensor *logits = !strcmp(o.model, "lenet")     ? loom_nn_lenet5(g, x, train.num_classes)
                          : !strcmp(o.model, "convnet") ? loom_nn_convnet(g, x, train.num_classes)
                                                        : loom_nn_resnet20(g, x, train.num_classes);
    loom_tensor *loss = loom_softmax_cross_entropy(g, logits, y, NULL);
    loom_train_opts t = LOOM_TRAIN_OPTS_INIT;
    t.optimizer = loom_sgd(o.lr);
    t.optimizer.momentum = o.momentum;
    t.optimizer.weight_decay = o.weight_decay;
    if (o.cosine) { /* over every step of the run */
        t.optimizer.schedule = LOOM_LR_COSINE;
        t.optimizer.total_steps = (int64_t)o.epochs * ((train.count + o.batch - 1) / o.batch);
    }
    loom_program *p = NULL;
    loom_image_source *src = NULL;
    int rc = 1;
    double acc = 0;
    if (loom_compile(g, loss, &t, &p) != LOOM_OK) {
        fprintf(stderr, "cnn_fmnist: %s\n", loom_graph_error(g));
        goto done;
    }
    loom_image_opts io = LOOM_IMAGE_OPTS_INIT;
    io.batch = o.batch;
    io.seed = o.seed;
    loom_image_set_mean_std(&train, &io.mean, &io.std);
    if (o.augment)
        io.crop_pad = 2, io.flip = 1;
    if (loom_image_source_new(&train, x, y, &io, &src, &err) != LOOM_OK)
        goto fail;
    if (!o.quiet)
        printf("%s on %s: %lld training and %lld test images, batch %lld, SGD lr %g%s momentum %g weight decay %g\n", o.model,
               o.placement, (long long)train.count, (long long)test.count, (long long)o.batch, o.lr, o.cosine ? " (cosine)" : "",
               o.momentum, o.weight_decay);
    for (int e = 0; e < o.epochs; e++) {
        int64_t before;
        loom_program_losses(p, &before);
        if (loom_image_source_epoch(src, e, &err) != LOOM_OK)
            goto fail;
        loom_program_set_source(p, loom_image_source_fn, src);
        const double t0 = now();
        if (loom_program_run_steps(p, LOOM_RUN_STEP, loom_image_source_steps(src)) != LOOM_OK) {
            snprintf(err.msg, sizeof err.msg, "%s", loom_program_error(p));
            goto fail;
        }
        const double secs = now() - t0;
        int64_t n;
        const double *l = loom_program_losses(p, &n);
        double sum = 0;
        for (int64_t i = before; i < n; i++)
            sum += l[i];
        if (loom_image_accuracy(p, logits, &test, x, y, &io, LOOM_RUN_EVAL, &acc, &err) != LOOM_OK)
            goto fail;
        if (!o.quiet)
            printf("epoch %d: loss %.4f, %.0f images/s, test accuracy %.4f\n", e + 1, n > before ? sum / (double)(n - before) : 0.0,
                   (double)train.count / secs, acc);
        fflush(stdout);
    }
    rc = acc < o.min_accuracy ? 3 : 0;
    if (rc)
        fprintf(stderr, "cnn_fmnist: test accuracy %.4f, wanted at least %.4f\n", acc, o.min_accuracy);
    goto done;
fail:
    fprintf(stderr, "cnn_fmnist: %s\n", err.msg);
done:
    loom_image_source_free(src);
    loom_program_free(p);
    loom_graph_free(g);
    loom_image_set_free(&train);
    loom_image_set_free(&test);
    return rc;
}
