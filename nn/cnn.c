/* Convolutional networks built from the public ops: a convolution layer with PyTorch's default
 * initialisation, LeNet-5, the two-convolution ConvNet and ResNet-20 (include/loom/nn.h). Every
 * layer is a split of the batch under data parallelism; batch norm's statistics are partial sums
 * reduced across devices by the SBP inference, so a split batch normalises as the whole one. */
#include <loom/nn.h>

#include <math.h>
#include <stdio.h>

loom_tensor *loom_nn_conv2d(loom_graph *g, const char *name, loom_tensor *x, int64_t out_channels, int kernel, int stride,
                            int pad, int bias)
{
    char pn[64];
    const int64_t in = loom_tensor_ndim(x) == 4 ? loom_tensor_dim(x, 1) : 0;
    const double bound = in > 0 && kernel > 0 ? 1.0 / sqrt((double)in * kernel * kernel) : 1.0;
    const loom_dtype dt = loom_tensor_dtype(x);
    snprintf(pn, sizeof pn, "%.50s.weight", name ? name : "conv");
    loom_tensor *w = loom_param(g, pn, dt, loom_shape(out_channels, in, kernel, kernel), loom_init_uniform(-bound, bound, 0));
    loom_tensor *b = NULL;
    if (bias) {
        snprintf(pn, sizeof pn, "%.50s.bias", name ? name : "conv");
        b = loom_param(g, pn, dt, loom_shape(out_channels), loom_init_uniform(-bound, bound, 0));
    }
    loom_conv2d_opts o = LOOM_CONV2D_OPTS_INIT;
    o.stride[0] = o.stride[1] = stride;
    o.pad[0] = o.pad[1] = pad;
    return loom_conv2d(g, x, w, b, &o);
}

static loom_tensor *max_pool2(loom_graph *g, loom_tensor *x)
{
    loom_pool2d_opts o = LOOM_POOL2D_OPTS_INIT; /* 2x2, stride 2 */
    return loom_max_pool2d(g, x, &o);
}

loom_tensor *loom_nn_lenet5(loom_graph *g, loom_tensor *x, int64_t classes)
{
    loom_tensor *h = max_pool2(g, loom_relu(g, loom_nn_conv2d(g, "conv1", x, 6, 5, 1, 2, 1)));
    h = max_pool2(g, loom_relu(g, loom_nn_conv2d(g, "conv2", h, 16, 5, 1, 0, 1)));
    h = loom_relu(g, loom_nn_linear(g, "fc1", loom_flatten(g, h), 120, 1));
    h = loom_relu(g, loom_nn_linear(g, "fc2", h, 84, 1));
    return loom_nn_linear(g, "fc3", h, classes, 1);
}

loom_tensor *loom_nn_convnet(loom_graph *g, loom_tensor *x, int64_t classes)
{
    loom_tensor *h = max_pool2(g, loom_relu(g, loom_nn_conv2d(g, "conv1", x, 64, 3, 1, 1, 1)));
    h = max_pool2(g, loom_relu(g, loom_nn_conv2d(g, "conv2", h, 128, 3, 1, 1, 1)));
    h = loom_relu(g, loom_nn_linear(g, "fc1", loom_flatten(g, h), 256, 1));
    return loom_nn_linear(g, "fc2", h, classes, 1);
}

/* conv (no bias) then batch norm, named "<name>" and "<name>.bn"; with relu set, relu(bn + res)
 * (res NULL: none) as one fused op. */
static loom_tensor *conv_bn(loom_graph *g, const char *name, loom_tensor *x, int64_t out, int kernel, int stride, int pad,
                            int relu, loom_tensor *res)
{
    char bn[64];
    snprintf(bn, sizeof bn, "%.50s.bn", name);
    loom_tensor *h = loom_nn_conv2d(g, name, x, out, kernel, stride, pad, 0);
    return relu ? loom_batch_norm_relu(g, bn, h, res, 0.1, 1e-5) : loom_batch_norm(g, bn, h, 0.1, 1e-5);
}

/* A basic block: relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)), the shortcut a 1x1 conv and bn
 * where the block changes the channels or the size; each relu fused with the batch norm before it
 * (and the add), so that the block's tail is one pass. */
static loom_tensor *basic_block(loom_graph *g, const char *name, loom_tensor *x, int64_t out, int stride)
{
    char n1[64], n2[64], ns[64];
    snprintf(n1, sizeof n1, "%.40s.conv1", name);
    snprintf(n2, sizeof n2, "%.40s.conv2", name);
    snprintf(ns, sizeof ns, "%.40s.shortcut", name);
    loom_tensor *h = conv_bn(g, n1, x, out, 3, stride, 1, 1, NULL);
    loom_tensor *s = stride != 1 || loom_tensor_dim(x, 1) != out ? conv_bn(g, ns, x, out, 1, stride, 0, 0, NULL) : x;
    return conv_bn(g, n2, h, out, 3, 1, 1, 1, s);
}

loom_tensor *loom_nn_resnet20(loom_graph *g, loom_tensor *x, int64_t classes)
{
    loom_tensor *h = conv_bn(g, "stem", x, 16, 3, 1, 1, 1, NULL);
    const int64_t widths[3] = {16, 32, 64};
    char name[32];
    for (int stage = 0; stage < 3; stage++)
        for (int b = 0; b < 3; b++) {
            snprintf(name, sizeof name, "layer%d.%d", stage + 1, b);
            h = basic_block(g, name, h, widths[stage], stage > 0 && b == 0 ? 2 : 1);
        }
    return loom_nn_linear(g, "fc", loom_global_avg_pool(g, h), classes, 1);
}
