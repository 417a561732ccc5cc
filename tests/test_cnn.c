/* CNNs on several CPU devices against one: LeNet-5, the ConvNet and ResNet-20 (batch norm
 * included: its statistics are partial sums reduced across the devices) trained data parallel on
 * cpu:0-1 and cpu:0-3, and with a layer split by output channels (the weight S(0), its output
 * S(1)), give one device's losses within 1e-5; so do the running statistics. */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { BATCH = 6, STEPS = 3 };

typedef enum { LENET, CONVNET, RESNET } model;

typedef struct run {
    double loss[STEPS];
    double stat[8]; /* a running mean's first elements (ResNet-20), else zeros */
} run;

static void train(model m, const char *placement, const char *split_weight, run *r)
{
    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, 3);
    if (placement) {
        loom_error err = LOOM_ERROR_INIT;
        loom_placement *pl = loom_placement_parse(placement, &err);
        ck_assert_msg(pl != NULL, "%s", err.msg);
        loom_graph_set_placement(g, pl);
        loom_placement_free(pl);
    }
    loom_tensor *x = loom_input(g, "images", LOOM_F32, loom_shape(BATCH, 1, 28, 28));
    loom_tensor *y = loom_input(g, "labels", LOOM_I32, loom_shape(BATCH));
    loom_tensor *logits = m == LENET ? loom_nn_lenet5(g, x, 10) : m == CONVNET ? loom_nn_convnet(g, x, 10) : loom_nn_resnet20(g, x, 10);
    if (split_weight)
        loom_tensor_set_sbp(loom_graph_tensor(g, split_weight), loom_split(0));
    loom_tensor *loss = loom_softmax_cross_entropy(g, logits, y, NULL);
    loom_train_opts o = LOOM_TRAIN_OPTS_INIT;
    o.optimizer = loom_sgd(0.05);
    o.optimizer.momentum = 0.9;
    loom_program *p;
    ck_assert_msg(loom_compile(g, loss, &o, &p) == LOOM_OK, "%s", loom_graph_error(g));
    static float img[BATCH * 28 * 28];
    double tmp[BATCH * 28 * 28];
    int32_t lab[BATCH];
    memset(r, 0, sizeof *r);
    for (int s = 0; s < STEPS; s++) {
        lt_fill_normal(tmp, BATCH * 28 * 28, 40 + (uint64_t)s);
        for (int i = 0; i < BATCH * 28 * 28; i++)
            img[i] = (float)tmp[i];
        for (int i = 0; i < BATCH; i++)
            lab[i] = (int32_t)((i * 7 + s * 3) % 10);
        loom_array a = {.dtype = LOOM_F32, .ndim = 4, .shape = {BATCH, 1, 28, 28}, .data = img};
        loom_array b = {.dtype = LOOM_I32, .ndim = 1, .shape = {BATCH}, .data = lab};
        ck_assert(loom_program_feed(p, x, &a) == LOOM_OK && loom_program_feed(p, y, &b) == LOOM_OK);
        ck_assert_msg(loom_program_run(p, LOOM_RUN_STEP) == LOOM_OK, "%s: %s", placement ? placement : "cpu:0",
                      loom_program_error(p));
        loom_array l;
        ck_assert(loom_program_fetch(p, loss, &l) == LOOM_OK);
        r->loss[s] = ((const float *)l.data)[0];
    }
    if (m == RESNET) {
        loom_array v;
        ck_assert(loom_program_fetch(p, loom_graph_tensor(g, "layer3.2.conv2.bn.running_mean"), &v) == LOOM_OK);
        for (int i = 0; i < 8; i++)
            r->stat[i] = ((const float *)v.data)[i];
    }
    loom_program_free(p);
    loom_graph_free(g);
}

static void versus_one(model m, const char *split_weight)
{
    static const char *const names[] = {"LeNet-5", "ConvNet", "ResNet-20"};
    run one, many;
    train(m, NULL, NULL, &one);
    for (int k = 0; k < 2; k++) {
        const char *pl = k ? "cpu:0-3" : "cpu:0-1";
        train(m, pl, split_weight, &many);
        char what[128];
        snprintf(what, sizeof what, "%s on %s%s%s, losses", names[m], pl, split_weight ? ", split " : "", split_weight ? split_weight : "");
        lt_assert_close(many.loss, one.loss, STEPS, 1e-5, what);
        lt_record_results(what, many.loss, STEPS);
        snprintf(what, sizeof what, "%s on %s, running statistics", names[m], pl);
        lt_assert_close(many.stat, one.stat, 8, 1e-5, what);
    }
    ck_assert(fabs(one.loss[STEPS - 1] - one.loss[0]) > 1e-6); /* it trained */
}

START_TEST(test_lenet_data_parallel) { versus_one(LENET, NULL); }
END_TEST
START_TEST(test_lenet_channel_split) { versus_one(LENET, "conv2.weight"); }
END_TEST
START_TEST(test_convnet_channel_split) { versus_one(CONVNET, "conv1.weight"); }
END_TEST
START_TEST(test_resnet20_data_parallel) { versus_one(RESNET, NULL); }
END_TEST
START_TEST(test_resnet20_channel_split) { versus_one(RESNET, "layer2.0.conv1.weight"); }
END_TEST

int main(void)
{
    Suite *s = suite_create("cnn");
    TCase *tc = tcase_create("all");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_lenet_data_parallel);
    tcase_add_test(tc, test_lenet_channel_split);
    tcase_add_test(tc, test_convnet_channel_split);
    tcase_add_test(tc, test_resnet20_data_parallel);
    tcase_add_test(tc, test_resnet20_channel_split);
    suite_add_tcase(s, tc);
    return lt_run_suite(s);
}
