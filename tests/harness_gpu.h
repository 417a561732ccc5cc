/* The GPU side of the op harness: every CUDA kernel is checked against the CPU kernel on the same
 * inputs (CUDA builds only; a GPU test without a GPU exits 77, skipped).
 *
 *     lt_gpu *gpu = lt_gpu_open_or_skip();                 // exits 77 when there is no GPU
 *     ... build a case, compile with .executor = LOOM_EXEC_REFERENCE, feed ...
 *     loom_program_run(p, LOOM_RUN_GRAD);                  // every value of the step, on the host
 *     lt_gpu_check_program(gpu, p, 1e-5);                  // each op's CUDA kernel on its inputs
 *     lt_gpu_close(gpu);
 */
#ifndef LOOM_TESTS_HARNESS_GPU_H
#define LOOM_TESTS_HARNESS_GPU_H

#include <stddef.h>

#include "graphs/program.h"
#include "ops/cuda/cuda.h"

typedef struct lt_gpu lt_gpu;

/* Device 0, its streams and handles; prints why and exits 77 (skipped) when there is no GPU. Call
 * it inside the suite (an unchecked fixture, with CK_FORK=no: a CUDA context made before a fork is
 * unusable in the child), after main has checked loom_cuda_device_count. */
lt_gpu *lt_gpu_open_or_skip(void);
void lt_gpu_close(lt_gpu *g);
/* Turns the kernels' deterministic mode on or off (default off) and TF32 (default off). */
void lt_gpu_set_modes(lt_gpu *g, int deterministic, int tf32);

/* Runs t's CPU kernel on host copies of src and its CUDA kernel on device copies, then compares
 * the outputs (and, for in-place ops, every source): floats within tol * max(1, |cpu|), integers
 * and masks exactly. out_like gives the output's dtype and concrete shape (ignored for in-place
 * ops). Fails the test on a mismatch, a kernel error, a device error record, or a missing CUDA
 * kernel; returns the worst relative error. */
double lt_gpu_check_op(lt_gpu *g, const loom_tensor *t, const loom__value *out_like, loom__value *const *src,
                       int64_t step, int training, double tol);

/* Checks every op p ran in its last reference run (GRAD mode: forward and backward, every value
 * kept) with lt_gpu_check_op, sources and expected outputs from the program's values, plus every
 * optimizer update on the current parameters, gradients and state. Returns the worst error. */
double lt_gpu_check_program(lt_gpu *g, loom_program *p, double tol);

/* Runs t's CUDA kernel only and returns its status; *err gets the device error record (code 0 when
 * none). For tests of device-side failures. */
loom_status lt_gpu_run_op(lt_gpu *g, const loom_tensor *t, const loom__value *out_like, loom__value *const *src,
                          loom__cuda_err *err, char *msg, size_t len);

#endif
