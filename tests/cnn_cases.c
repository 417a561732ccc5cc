/* CNNs trained a few steps on a placement, for the equivalence tests (see cnn_cases.h). */
#include "cnn_cases.h"
#include "harness.h"

#include <string.h>

enum { BATCH = 6 };

const char *const lt_cnn_name[] = {"LeNet-5", "ConvNet", "ResNet-20"};

void lt_cnn_train(lt_cnn_model m, const char *placement, const char *split_weight, lt_cnn_run *r)
{
    loom_graph *g = lt_graph_on(placement, 3);
    loom_tensor *x = loom_input(g, "images", LOOM_F32, loom_shape(BATCH, 1, 28, 28));
    loom_tensor *y = loom_input(g, "labels", LOOM_I32, loom_shape(BATCH));
    loom_tensor *logits = m == LT_LENET ? loom_nn_lenet5(g, x, 10) : m == LT_CONVNET ? loom_nn_convnet(g, x, 10) : loom_nn_resnet20(g, x, 10);
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
    for (int s = 0; s < LT_CNN_STEPS; s++) {
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
    if (m == LT_RESNET) {
        loom_array v;
        ck_assert(loom_program_fetch(p, loom_graph_tensor(g, "layer3.2.conv2.bn.running_mean"), &v) == LOOM_OK);
        for (int i = 0; i < 8; i++)
            r->stat[i] = ((const float *)v.data)[i];
    }
    loom_program_free(p);
    loom_graph_free(g);
}

