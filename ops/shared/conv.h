/* The geometry of a 2-D convolution (internal): conv2d and its gradient ops (ops/conv.c) read
 * their attributes and check their operands' sizes here, in shape inference, in the CPU kernels
 * (ops/cpu/conv.c) and in the CUDA launchers (ops/cuda/conv.cu), so that every device accepts the
 * same calls and refuses the rest with the same message. */
#ifndef LOOM_OPS_SHARED_CONV_H
#define LOOM_OPS_SHARED_CONV_H

#include "graphs/core/op.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Attribute slots (loom__attrs.i) of the three ops: stride, padding and dilation as (h, w) pairs,
 * then the group count. The gradient ops also keep in a.shape the spatial dims of what they make:
 * x's (H, W) for conv2d_grad_input, w's (R, S) for conv2d_grad_weight. */
enum { LOOM__CONV_STRIDE = 0, LOOM__CONV_PAD = 2, LOOM__CONV_DIL = 4, LOOM__CONV_GROUPS = 6 };

/* x [n, c, h, w] * w [k, cg, r, s] -> y [n, k, p, q], with groups groups of cg = c / groups input
 * and kg = k / groups output channels. Every size is >= 0. */
typedef struct loom__conv {
    int64_t n, c, h, w;
    int64_t k, cg, r, s;
    int64_t p, q, kg;
    int64_t stride[2], pad[2], dil[2], groups;
} loom__conv;

/* cv's stride, pad, dil and groups from an op's attributes. */
void loom__conv_set_attrs(loom__conv *cv, const loom__attrs *a);

/* Checks cv's attributes and sizes (c, h, w, k, cg, r, s; n is not read) and sets p, q and kg: the
 * groups, strides and dilations positive, padding >= 0, c and k divisible by the groups, cg the
 * input channels of a group, and the dilated kernel within the padded input. Else writes why
 * (without the op's name) into msg and returns LOOM_ERR_INVALID (an attribute) or LOOM_ERR_SHAPE. */
loom_status loom__conv_check(loom__conv *cv, char *msg, size_t len);

/* The operands of a kernel of t (conv2d: x, w[, b] -> y; conv2d_grad_input: dy, w -> dx;
 * conv2d_grad_weight: x, dy -> dw) checked against each other and t's attributes: 4-D values of
 * out's float dtype whose sizes loom__conv_check accepts and that make out's shape (b: [K]). Fills
 * cv; else LOOM_ERR_SHAPE or LOOM_ERR_DTYPE with ctx's message naming the op. */
loom_status loom__conv_operands(loom__conv *cv, const loom_tensor *t, const loom__value *out, loom__value *const *src,
                                const loom__kctx *ctx);

/* Elements of one group's im2col matrix: cg r s rows of p q columns; -1 when over an int64. */
int64_t loom__conv_cols(const loom__conv *cv);

/* What a kernel of op (one of the three) has left to do for cv, whose sizes may be 0 (a device's
 * part of a split, an empty batch): LOOM__CONV_EMPTY, its output has no element; LOOM__CONV_ZERO,
 * no element of x or dy reaches it, so it is 0 (conv2d: the bias); else LOOM__CONV_RUN. */
typedef enum loom__conv_work { LOOM__CONV_RUN, LOOM__CONV_EMPTY, LOOM__CONV_ZERO } loom__conv_work;
loom__conv_work loom__conv_work_of(const loom__conv *cv, loom_op op);

#ifdef __cplusplus
}
#endif

#endif
