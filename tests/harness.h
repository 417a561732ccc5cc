/* The op test harness: build a small graph once, feed it, evaluate it through the reference
 * executor, and check gradients numerically (f64, central differences).
 *
 *     START_TEST(test_relu_grad) {
 *         lt_case *c = lt_case_new();
 *         loom_tensor *x = lt_param(c, "x", loom_shape(3, 4));       // f64, N(0, 1), seeded
 *         lt_gradcheck(c, loom_relu(lt_graph(c), x), 1e-6);          // fails the test on error
 *         lt_case_free(c);
 *     } END_TEST
 *
 * Inputs carry their data (copied at creation) and are fed after compiling; a dynamic dim of an
 * input takes its size from that data. */
#ifndef LOOM_TESTS_HARNESS_H
#define LOOM_TESTS_HARNESS_H

#include <check.h>
#include <loom/loom.h>

typedef struct lt_case lt_case;

lt_case *lt_case_new(void);
void lt_case_free(lt_case *c);
loom_graph *lt_graph(lt_case *c);

/* A dense input whose data is shape_now (the concrete sizes, which must fit shape's bounds). */
loom_tensor *lt_input(lt_case *c, const char *name, loom_dtype dtype, loom_shape shape, const int64_t *shape_now,
                      const void *data);
/* A dense input of static shape. */
loom_tensor *lt_input_static(lt_case *c, const char *name, loom_dtype dtype, loom_shape shape, const void *data);
/* A CSR input (f64 or f32 values) with its data; nrows/ncols may be dynamic dims of the graph. */
loom_tensor *lt_input_csr(lt_case *c, const char *name, loom_dim nrows, loom_dim ncols, const loom_csr *m);
/* The seed a parameter's values draw from, derived from its name. */
uint64_t lt_name_seed(const char *name);
/* An f64 parameter of static shape, N(0, 1) from lt_name_seed(name). */
loom_tensor *lt_param(lt_case *c, const char *name, loom_shape shape);

/* Compiles the graph for inference (first call only), feeds, runs LOOM_RUN_FORWARD (training mode)
 * and returns a view of t (valid until the case is freed or run again). Fails the test on error. */
loom_array lt_eval(lt_case *c, loom_tensor *t);

/* Compiles the case for training loss with opts (NULL: the defaults) and feeds it; the program
 * stays the case's. Fails the test on error. */
loom_program *lt_compile(lt_case *c, loom_tensor *loss, const loom_train_opts *opts);
/* Compiles the case for training loss with the reference executor (every value kept) and opt
 * (NULL: none), and feeds it; the program stays the case's. Fails the test on error. */
loom_program *lt_compile_reference(lt_case *c, loom_tensor *loss, const loom_optimizer *opt);

/* The case's program once compiled (by lt_eval, lt_gradcheck or lt_compile_reference), else NULL. */
loom_program *lt_case_program(lt_case *c);

/* Checks d loss / d p for every parameter p against central differences, with
 * loss = sum(out * R), R a fixed random tensor of out's concrete shape. Fails the test when
 * |analytic - numeric| / max(1, |analytic|, |numeric|) exceeds tol anywhere; returns the worst. */
double lt_gradcheck(lt_case *c, loom_tensor *out, double tol);

/* The graph's error must contain `needle` (case-sensitive) and compiling must fail with it. */
void lt_expect_error(loom_graph *g, const char *needle);

/* Asserts |a[i] - b[i]| <= tol * max(1, |b[i]|) for n doubles, naming the first bad index. */
void lt_assert_close(const double *a, const double *b, int64_t n, double tol, const char *what);

/* A new graph seeded with seed, on placement (NULL: none, one CPU device); fails the test when the
 * placement does not parse. */
loom_graph *lt_graph_on(const char *placement, uint64_t seed);
/* The placement s, parsed; fails the test when it does not parse. The caller frees it. */
loom_placement *lt_placement(const char *s);

/* Runs a Check suite: CK_FORK as set in the environment, returns the process exit code. */
int lt_run_suite(Suite *s);
/* Runs a suite of GPU tests without forking (CUDA, once touched, is unusable in a forked child);
 * returns 77 (skipped, saying why) where no CUDA device is present. */
int lt_run_gpu_suite(Suite *s);

/* The start of a test run by mpirun: loom_dist_init (on failure prog's message on stderr, and -1),
 * then the placement over every rank of the job with `devices` on each ("cpu:0-1": "@0-1/cpu:0-1"
 * on 2 ranks) into placement. */
int lt_mpi_init(const char *prog, char *placement, size_t len, const char *devices);
/* Runs a suite on every rank without forking, then loom_dist_finalize; the exit code. */
int lt_run_mpi_suite(Suite *s);

/* When LOOM_TEST_RESULTS names a file, appends one line to it: what, then the n values' bits in hex,
 * so that the results of two builds can be compared exactly (sort the file, then hash it). */
void lt_record_results(const char *what, const double *v, int64_t n);

/* A malloc'd copy of a float array's elements as doubles (free it). */
double *lt_to_double(const loom_array *a);

/* A random DAG of ops on [R, C] float tensors (R in 1..5, C in 1..4, returned in rc) from inputs
 * "x" [R, C] and "idx" [R] (i32 in [0, R)) and parameters "w0", "w1" [R, C], "wc" [C, C]; returns a
 * scalar loss. The same seed builds the same graph. */
loom_tensor *lt_random_graph(loom_graph *g, uint64_t seed, loom_tensor **x_out, loom_tensor **idx_out, int64_t *rc);

/* The JSON of p's plan of LOOM_RUN_STEP, written into a new temporary file whose path goes into
 * path (at least 32 bytes), and returned as malloc'd text (free it; unlink the file). */
char *lt_plan_json(loom_program *p, char *path);
/* Replaces the file at path with n bytes of text. */
void lt_write_file(const char *path, const char *text, size_t n);

/* Product of n sizes (1 for n = 0). */
int64_t lt_numel(int n, const int64_t *d);

/* Deterministic test data: fills n doubles with N(0, 1) / ints in [0, hi). */
void lt_fill_normal(double *x, int64_t n, uint64_t seed);
/* The values of x as the test's dtype: with f32 set, x is rounded to float in place; xf gets x as
 * floats either way (the f32 operand, while x stays the reference). */
void lt_as_dtype(double *x, float *xf, int64_t n, int f32);
void lt_fill_int(int32_t *x, int64_t n, int32_t hi, uint64_t seed);

#endif
