/* Programs that each box one tensor from one SBP to another (every kind: S(0), S(1), B and P to
 * each other), for the boxing tests on CPU devices (test_box_route.c) and between GPUs
 * (gpu_boxing.c): the same program on any placement must give the same logical values. */
#ifndef LOOM_TESTS_BOX_CASES_H
#define LOOM_TESTS_BOX_CASES_H

#include "harness.h"

enum { LT_BOX_KINDS = 4 }; /* S(0), S(1), B, P */
loom_sbp lt_box_sbp(int k);

/* Runs the program that boxes a [rows, 5] f32 value from lt_box_sbp(from) to lt_box_sbp(to) on
 * placement `place` (forward, fed data), fetches the boxed value (its logical value, the parts
 * joined; to B, a product that reads every device's copy) into out (rows * 5 floats), and writes
 * the plan's boxing lines into plan (NULL: not).
 * Fails the test on any error. */
void lt_box_run(const char *place, int from, int to, int64_t rows, float *out, char *plan, size_t plan_len);

/* Copies box (sat, ext) of src (row-major, shape ss) to dat of dst (shape ds), element by element,
 * es bytes an element: what the boxing's box copies must give. */
void lt_host_box(void *dst, const int64_t *ds, const int64_t *dat, const void *src, const int64_t *ss, const int64_t *sat,
                 const int64_t *ext, int nd, size_t es);

#endif
