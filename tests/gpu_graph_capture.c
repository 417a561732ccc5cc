/* A step captured as a CUDA graph and replayed, as the GPU executor runs a fused chain: kernels that
 * neither synchronise nor allocate while captured, random ones that read the step from device
 * memory at each replay. Skipped (77) in a build without CUDA or on a machine without a GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "harness_gpu.h"

#include "runtime/devices/cuda/cuda_rt.h"

/* The device, opened by the suite's fixture (see suite). */
static lt_gpu *gpu;


/* matmul, dropout_mask, dropout and softmax_cross_entropy launched inside a stream capture, as the
 * GPU executor runs a step, then replayed at other steps: no kernel may synchronise or allocate
 * while captured, and each replay's mask is drawn from the step in device memory (step_dev), not
 * from the step the capture froze. Each replay is checked against the CPU kernels at its step. */
START_TEST(test_graph_capture_replay)
{
    enum { R = 33, K = 5, C = 7, NOPS = 4 };
    char msg[256];
    loom__cuda_dev dev;
    ck_assert_msg(loom__cuda_dev_open(0, &dev, msg, sizeof msg) == LOOM_OK, "%s", msg);
    const size_t blas_bytes = (size_t)32 << 20;
    void *blas_ws = lt_gpu_alloc(dev.index, blas_bytes, NULL, -1);
    ck_assert_msg(loom__cuda_dev_blas_workspace(&dev, blas_ws, blas_bytes, msg, sizeof msg) == LOOM_OK, "%s", msg);

    loom_graph *g = loom_graph_new();
    loom_graph_set_seed(g, 77);
    loom_tensor *at = loom_input(g, "a", LOOM_F32, loom_shape(R, K));
    loom_tensor *wt = loom_input(g, "w", LOOM_F32, loom_shape(K, C));
    loom_tensor *lt = loom_input(g, "l", LOOM_I32, loom_shape(R));
    loom_tensor *zt = loom_matmul(g, at, wt);
    loom_tensor *yt = loom_dropout(g, zt, 0.5);
    loom_tensor *losst = loom_softmax_cross_entropy(g, yt, lt, NULL);
    ck_assert_msg(loom_graph_status(g) == LOOM_OK, "%s", loom_graph_error(g));
    const loom_tensor *ops[NOPS] = {zt, yt->src[1], yt, losst};

    /* host values (the CPU side) and device copies, the op results in the same order */
    double tmp[R * K];
    float ha[R * K], hw[K * C], hz[R * C], hy[R * C], hloss;
    uint8_t hm[R * C];
    int32_t hl[R];
    lt_fill_normal(tmp, R * K, 1);
    for (int i = 0; i < R * K; i++)
        ha[i] = (float)tmp[i];
    lt_fill_normal(tmp, K * C, 2);
    for (int i = 0; i < K * C; i++)
        hw[i] = (float)tmp[i];
    lt_fill_int(hl, R, C, 3);
    loom__value h[7] = {
        {.dtype = LOOM_F32, .ndim = 2, .shape = {R, K}, .data = ha}, {.dtype = LOOM_F32, .ndim = 2, .shape = {K, C}, .data = hw},
        {.dtype = LOOM_I32, .ndim = 1, .shape = {R}, .data = hl},    {.dtype = LOOM_F32, .ndim = 2, .shape = {R, C}, .data = hz},
        {.dtype = LOOM_U8, .ndim = 2, .shape = {R, C}, .data = hm},  {.dtype = LOOM_F32, .ndim = 2, .shape = {R, C}, .data = hy},
        {.dtype = LOOM_F32, .ndim = 0, .data = &hloss},
    };
    loom__value d[7];
    for (int i = 0; i < 7; i++) {
        d[i] = h[i];
        d[i].data = lt_gpu_alloc(dev.index, (size_t)loom__numel(&h[i]) * loom_dtype_size(h[i].dtype),
                                 i < 3 ? h[i].data : NULL, -1);
    }
    /* sources and output of each op, as indices into h and d */
    static const int srcs[NOPS][3] = {{0, 1, -1}, {3, -1, -1}, {3, 4, -1}, {5, 2, -1}}, outs[NOPS] = {3, 4, 5, 6};
    int64_t nnz[LOOM__MAX_SRC] = {0};
    const loom__cuda_op *ce = loom__cuda_op_get(LOOM_OP_SOFTMAX_CE);
    ck_assert_ptr_nonnull(ce->run);
    const loom__cuda_kctx dev_cc = {.device = dev.index, .stream = dev.stream[LOOM__CUDA_COMPUTE], .blas = dev.blas,
                                    .sparse = dev.sparse, .dnn = dev.dnn, .err = dev.err};
    const size_t ws = ce->workspace ? ce->workspace(losst, nnz, &dev_cc) : 0;
    void *dws = ws ? lt_gpu_alloc(dev.index, ws, NULL, -1) : NULL;
    int64_t *dstep = lt_gpu_alloc(dev.index, sizeof(int64_t), NULL, -1);

    /* every kernel once, then captured; both with a kctx step (9) that is not the replayed one */
    void *exec = NULL;
    for (int pass = 0; pass < 2; pass++) {
        ck_assert_msg(loom__cuda_set_i64(dstep, 0, dev.stream[LOOM__CUDA_COMPUTE], msg, sizeof msg) == LOOM_OK, "%s", msg);
        if (pass)
            ck_assert_msg(loom__cuda_capture_begin(dev.stream[LOOM__CUDA_COMPUTE], msg, sizeof msg) == LOOM_OK, "%s", msg);
        for (int k = 0; k < NOPS; k++) {
            const loom_tensor *t = ops[k];
            loom__cuda_kctx cc = {.device = dev.index, .stream = dev.stream[LOOM__CUDA_COMPUTE], .blas = dev.blas,
                                  .sparse = dev.sparse, .dnn = dev.dnn, .workspace = dws, .workspace_bytes = ws, .err = dev.err,
                                  .tag = t->id, .step_dev = dstep};
            loom__kctx kc = {.step = 9, .training = 1, .seed = 77, .msg = msg, .msglen = sizeof msg, .cuda = &cc};
            loom__value *src[LOOM__MAX_SRC];
            for (int i = 0; i < t->n_src; i++)
                src[i] = &d[srcs[k][i]];
            const loom__cuda_op *op = loom__cuda_op_get(t->op);
            ck_assert_ptr_nonnull(op->run);
            loom_status s = op->run(t, &d[outs[k]], src, &kc);
            ck_assert_msg(s == LOOM_OK, "%s: %s", loom__op_def(t->op)->name, msg);
        }
        if (pass)
            ck_assert_msg(loom__cuda_capture_end(dev.stream[LOOM__CUDA_COMPUTE], &exec, msg, sizeof msg) == LOOM_OK, "%s", msg);
        ck_assert_msg(loom__cuda_stream_sync(dev.stream[LOOM__CUDA_COMPUTE], msg, sizeof msg) == LOOM_OK, "%s", msg);
    }
    ck_assert_ptr_nonnull(exec);

    static const int64_t steps[] = {1, 4, 0, 2};
    for (size_t r = 0; r < sizeof steps / sizeof steps[0]; r++) {
        void *st = dev.stream[LOOM__CUDA_COMPUTE];
        ck_assert_msg(loom__cuda_set_i64(dstep, steps[r], st, msg, sizeof msg) == LOOM_OK, "%s", msg);
        ck_assert_msg(loom__cuda_graph_launch(exec, st, msg, sizeof msg) == LOOM_OK, "%s", msg);
        ck_assert_msg(loom__cuda_stream_sync(st, msg, sizeof msg) == LOOM_OK, "%s", msg);
        loom__cuda_err err;
        ck_assert_msg(loom__cuda_copy_sync(&err, dev.err, sizeof err, msg, sizeof msg) == LOOM_OK, "%s", msg);
        ck_assert_int_eq(err.code, 0);
        /* the CPU kernels at this step */
        for (int k = 0; k < NOPS; k++) {
            const loom_tensor *t = ops[k];
            loom__kctx kc = {.step = steps[r], .training = 1, .seed = 77, .msg = msg, .msglen = sizeof msg};
            loom__value *src[LOOM__MAX_SRC];
            for (int i = 0; i < t->n_src; i++)
                src[i] = &h[srcs[k][i]];
            ck_assert_msg(loom__op_def(t->op)->cpu(t, &h[outs[k]], src, &kc) == LOOM_OK, "%s", msg);
        }
        uint8_t gm[R * C];
        float gy[R * C], gloss;
        ck_assert(loom__cuda_copy_sync(gm, d[4].data, sizeof gm, msg, sizeof msg) == LOOM_OK);
        ck_assert(loom__cuda_copy_sync(gy, d[5].data, sizeof gy, msg, sizeof msg) == LOOM_OK);
        ck_assert(loom__cuda_copy_sync(&gloss, d[6].data, sizeof gloss, msg, sizeof msg) == LOOM_OK);
        ck_assert_msg(memcmp(gm, hm, sizeof gm) == 0, "replay at step %lld: the mask differs from the CPU's",
                      (long long)steps[r]);
        for (int i = 0; i < R * C; i++)
            ck_assert_msg(fabs(gy[i] - hy[i]) <= 1e-5 * fmax(1, fabs(hy[i])), "replay at step %lld: y[%d] is %g, not %g",
                          (long long)steps[r], i, gy[i], hy[i]);
        ck_assert_msg(fabs(gloss - hloss) <= 1e-5 * fmax(1, fabs(hloss)), "replay at step %lld: loss %g, not %g",
                      (long long)steps[r], gloss, hloss);
    }
    loom__cuda_graph_free(exec);
    for (int i = 0; i < 7; i++)
        loom__cuda_free(d[i].data);
    loom__cuda_free(dws);
    loom__cuda_free(dstep);
    loom__cuda_dev_close(&dev);
    loom__cuda_free(blas_ws);
    loom_graph_free(g);
}
END_TEST

/* The device is opened once for the whole suite, which runs unforked (see harness_gpu.h). */
static Suite *suite(void)
{
    Suite *s = suite_create("gpu_graph_capture");
    TCase *tc = tcase_create("ops");
    lt_gpu_add_fixture(tc, &gpu);
    tcase_add_test(tc, test_graph_capture_replay);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return lt_gpu_run(suite);
}
