/* CNNs trained the same way on any placement: LeNet-5, the ConvNet and ResNet-20 on seeded
 * images (batch 6), SGD with momentum, LT_CNN_STEPS steps. */
#ifndef LOOM_TESTS_CNN_CASES_H
#define LOOM_TESTS_CNN_CASES_H

enum { LT_CNN_STEPS = 3 };
typedef enum { LT_LENET, LT_CONVNET, LT_RESNET } lt_cnn_model;
extern const char *const lt_cnn_name[];

typedef struct lt_cnn_run {
    double loss[LT_CNN_STEPS];
    double stat[8]; /* a running mean's first elements (ResNet-20), else zeros */
} lt_cnn_run;

/* Trains m on placement (NULL: one CPU device), split_weight (when not NULL) split by output
 * channels, and returns its losses and statistics. Fails the test on error. */
void lt_cnn_train(lt_cnn_model m, const char *placement, const char *split_weight, lt_cnn_run *r);

#endif
