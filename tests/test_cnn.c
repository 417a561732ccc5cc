/* CNNs on several CPU devices against one: LeNet-5, the ConvNet and ResNet-20 (batch norm
 * included: its statistics are partial sums reduced across the devices) trained data parallel on
 * cpu:0-1 and cpu:0-3, and with a layer split by output channels (the weight S(0), its output
 * S(1)), give one device's losses within 1e-5; so do the running statistics. */
#include "cnn_cases.h"
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void versus_one(lt_cnn_model m, const char *split_weight)
{
    lt_cnn_run one, many;
    lt_cnn_train(m, NULL, NULL, &one);
    for (int k = 0; k < 2; k++) {
        const char *pl = k ? "cpu:0-3" : "cpu:0-1";
        lt_cnn_train(m, pl, split_weight, &many);
        char what[128];
        snprintf(what, sizeof what, "%s on %s%s%s, losses", lt_cnn_name[m], pl, split_weight ? ", split " : "", split_weight ? split_weight : "");
        lt_assert_close(many.loss, one.loss, LT_CNN_STEPS, 1e-5, what);
        lt_record_results(what, many.loss, LT_CNN_STEPS);
        snprintf(what, sizeof what, "%s on %s, running statistics", lt_cnn_name[m], pl);
        lt_assert_close(many.stat, one.stat, 8, 1e-5, what);
    }
    ck_assert(fabs(one.loss[LT_CNN_STEPS - 1] - one.loss[0]) > 1e-6); /* it trained */
}

START_TEST(test_lenet_data_parallel) { versus_one(LT_LENET, NULL); }
END_TEST
START_TEST(test_lenet_channel_split) { versus_one(LT_LENET, "conv2.weight"); }
END_TEST
START_TEST(test_convnet_channel_split) { versus_one(LT_CONVNET, "conv1.weight"); }
END_TEST
START_TEST(test_resnet20_data_parallel) { versus_one(LT_RESNET, NULL); }
END_TEST
START_TEST(test_resnet20_channel_split) { versus_one(LT_RESNET, "layer2.0.conv1.weight"); }
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
