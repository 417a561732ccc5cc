/* Shared by the kernel tests of the reduction, shape, index and sparse families
 * (gpu_ops_reduce_shape.c, gpu_ops_sparse.c): every op of a program checked on the GPU in the
 * default mode and, where some kernel has another path there, in deterministic mode; and in
 * deterministic mode every kernel of these families run twice more on the same inputs, over
 * output and workspace memory filled with different garbage each time, for the same bits. CUDA
 * builds only. */
#ifndef LOOM_TESTS_GPU_FAMILIES_H
#define LOOM_TESTS_GPU_FAMILIES_H

#include "harness_gpu.h"

static inline int in_families(loom_op op)
{
    switch (op) {
    case LOOM_OP_SUM:
    case LOOM_OP_MEAN:
    case LOOM_OP_EXPAND:
    case LOOM_OP_RESHAPE:
    case LOOM_OP_TRANSPOSE:
    case LOOM_OP_CONCAT:
    case LOOM_OP_SLICE:
    case LOOM_OP_SLICE_GRAD:
    case LOOM_OP_GATHER_ROWS:
    case LOOM_OP_SCATTER:
    case LOOM_OP_SCATTER_GRAD:
    case LOOM_OP_SPMM:
    case LOOM_OP_DEGREE: return 1;
    default: return 0;
    }
}

/* Every op of these families that p ran: two deterministic runs, over output and workspace memory
 * filled with different garbage, the same bits. */
static inline void check_bits(lt_gpu *gpu, loom_program *p)
{
    ck_assert_msg(lt_gpu_check_bits(gpu, p, in_families) > 0, "check_bits: no op of these families ran");
}

/* 1 when p holds an op whose kernel takes another path in deterministic mode: scatter, and the
 * transposed spmm. */
static inline int has_deterministic_path(const loom_program *p)
{
    for (int id = 0; id < p->n; id++) {
        const loom_tensor *t = p->g->t[id];
        if (t->op == LOOM_OP_SCATTER || (t->op == LOOM_OP_SPMM && t->a.i[0]))
            return 1;
    }
    return 0;
}

/* Runs a GRAD step of loss (forward and backward) on the reference executor, then checks every op
 * on the GPU in the default mode and (where some kernel has another path there) in deterministic
 * mode, and the repeatability of these families' kernels. Returns the program (the case's). */
static inline loom_program *check_all(lt_gpu *gpu, lt_case *c, loom_tensor *loss, double tol)
{
    loom_program *p = lt_compile_reference(c, loss, NULL);
    loom_status s = loom_program_run(p, LOOM_RUN_GRAD);
    ck_assert_msg(s == LOOM_OK, "grad run: %s", loom_program_error(p));
    lt_gpu_set_modes(gpu, 0, 0);
    lt_gpu_check_program(gpu, p, tol);
    if (has_deterministic_path(p)) {
        lt_gpu_set_modes(gpu, 1, 0);
        lt_gpu_check_program(gpu, p, tol);
        lt_gpu_set_modes(gpu, 0, 0);
    }
    check_bits(gpu, p);
    return p;
}

/* t's CUDA kernel against its CPU kernel on the values p computed (tol 0: bit for bit). */
static inline void check_one(lt_gpu *gpu, loom_program *p, const loom_tensor *t, double tol)
{
    loom__value *src[LOOM__MAX_SRC];
    lt_gpu_sources(p, t, src);
    lt_gpu_check_op(gpu, t, &p->val[t->id], src, p->step, 1, tol);
}

#endif
