/* The GPU side of the op harness: every CUDA kernel is checked against the CPU kernel on the same
 * inputs (a GPU test without a GPU exits 77, skipped).
 *
 *     lt_gpu *gpu = lt_gpu_open_or_skip();                 // exits 77 when there is no GPU
 *     ... build a case, compile with .executor = LOOM_EXEC_REFERENCE, feed ...
 *     loom_program_run(p, LOOM_RUN_GRAD);                  // every value of the step, on the host
 *     lt_gpu_check_program(gpu, p, 1e-5);                  // each op's CUDA kernel on its inputs
 *     lt_gpu_close(gpu);
 *
 * A GPU test program opens the device once for its whole suite:
 *
 *     #include "harness_gpu.h"
 *     static lt_gpu *gpu;
 *     ... tests ...
 *     static Suite *suite(void) { ... lt_gpu_add_fixture(tc, &gpu); ... }
 *     int main(void) { return lt_gpu_run(suite); }
 *
 * This harness and the GPU tests are built in CUDA builds only; a build without CUDA lists each
 * GPU test all the same, run as tests/no_cuda.c, which exits 77 (skipped; tests/CMakeLists.txt).
 */
#ifndef LOOM_TESTS_HARNESS_GPU_H
#define LOOM_TESTS_HARNESS_GPU_H

#include <check.h>
#include <stddef.h>

#include "graphs/session/program.h"
#include "harness.h"
#include "ops/cuda/cuda.h"

typedef struct lt_gpu lt_gpu;

/* Device 0, its streams and handles; prints why and exits 77 (skipped) when there is no GPU. Call
 * it inside the suite (an unchecked fixture, with CK_FORK=no: a CUDA context made before a fork is
 * unusable in the child), after main has checked loom_cuda_device_count. */
lt_gpu *lt_gpu_open_or_skip(void);
void lt_gpu_close(lt_gpu *g);

/* Adds to tc the unchecked fixture (ck_assert needs a running suite) that opens the device into
 * *gpu with lt_gpu_open_or_skip before the first test and closes it after the last; one per program. */
void lt_gpu_add_fixture(TCase *tc, lt_gpu **gpu);
/* The main of a GPU test program: prints why and returns 77 (skipped) when there is no GPU, else
 * runs suite() unforked (CK_FORK=no: a forked test could not use the parent's CUDA context) and
 * returns the exit code. */
int lt_gpu_run(Suite *(*suite)(void));

/* Turns the kernels' deterministic mode on or off (default off) and TF32 (default off). */
void lt_gpu_set_modes(lt_gpu *g, int deterministic, int matmul);
/* Gives kernels the device's cuDNN handle (on, the default) or none (their paths without cuDNN). */
void lt_gpu_set_dnn(lt_gpu *g, int on);
/* The kernel context g's kernels get, less its workspace and error record: the device, its
 * handles (cuDNN's as lt_gpu_set_dnn says) and g's modes. */
loom__cuda_kctx lt_gpu_kctx(lt_gpu *g);

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

/* Runs t's CUDA kernel (g's modes) on device copies of src, its output and workspace first filled
 * with the byte `fill` (the workspace with fill ^ 0x5a); fails the test on an error or a device
 * error record. Returns the output's bytes (malloc'd, *n of them). For tests of repeatability. */
void *lt_gpu_run_filled(lt_gpu *g, const loom_tensor *t, const loom__value *out_like, loom__value *const *src, int fill,
                        size_t *n);

/* Every op of p's last run that pick selects: its CUDA kernel run twice in deterministic mode on
 * the program's values, over output and workspace memory filled with different bytes, must give
 * the same bits (fails the test otherwise). Leaves g out of deterministic mode; returns how many
 * ops it checked. */
int lt_gpu_check_bits(lt_gpu *g, loom_program *p, int (*pick)(loom_op op));

/* src[i] = the value p holds for t's source i; 0 when the last run left one of them uncomputed. */
int lt_gpu_sources(loom_program *p, const loom_tensor *t, loom__value **src);

/* Device memory on device `index` of n bytes (64 when n is 0): a copy of from's n bytes, else every
 * byte `fill` (fill < 0: uninitialised). Fails the test on an error; free with loom__cuda_free. */
void *lt_gpu_alloc(int index, size_t n, const void *from, int fill);

/* ---- cases for the kernel tests -------------------------------------------------------------- */

/* The tolerance of a float dtype's kernels against the CPU's (relative to max(1, |cpu|)). */
double lt_gpu_tol(loom_dtype dt);
/* A parameter N(0, 1) of either float dtype (lt_param makes f64 ones), seeded by its name. */
loom_tensor *lt_gpu_param(lt_case *c, const char *name, loom_dtype dt, loom_shape s);
/* A parameter uniform in [lo, hi), seeded by its name: divisors kept away from 0. */
loom_tensor *lt_gpu_param_uniform(lt_case *c, const char *name, loom_dtype dt, loom_shape s, double lo, double hi);
/* The static shape of n dims d. */
loom_shape lt_gpu_shape(int n, const int64_t *d);
/* sum(y * y): a scalar loss whose gradient 2y differs per element. */
loom_tensor *lt_gpu_sq_loss(loom_graph *g, loom_tensor *y);
/* acc + sum(y * y) (acc NULL: none yet). */
loom_tensor *lt_gpu_add_sq(loom_graph *g, loom_tensor *acc, loom_tensor *y);
/* A static float input of N(0, 1) values in dt (now: its sizes when its shape has dynamic dims). */
loom_tensor *lt_gpu_input_normal(lt_case *c, const char *name, loom_dtype dt, loom_shape s, const int64_t *now,
                                 uint64_t seed);
/* The optimizer of the training cases: Adam, learning rate 0.01. */
loom_optimizer lt_gpu_adam(void);
/* Compiles loss with opt, takes `steps` optimizer steps, runs one GRAD step and checks every op
 * it ran, and every update, on the GPU. Returns the worst error. */
double lt_gpu_check_case(lt_gpu *g, lt_case *c, loom_tensor *loss, loom_optimizer opt, int steps, double tol);

#endif
