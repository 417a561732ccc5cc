/* The layering check: reads every C, CUDA and header file of a source tree, and the includes and
 * the calls between them, and reports each edge that points against the flow of the design:
 *
 *     ground types (include/loom, graphs/core, sbp/types)            0
 *     the runtime and devices (runtime/, runtime/devices/)           1
 *     ops and their kernels, the builder (ops/, graphs/builder)      2
 *     graph passes (sbp/infer)                                       3
 *     the compiled plan (graphs/plan)                                4
 *     actors (actors/)                                               5
 *     the session: compile, feed, run (graphs/session)               6
 *     models and datasets (nn/, data/)                               7
 *     users of the library (tools/, examples/, bench/)               8
 *
 * A file may include and call what is in its own layer or below. Users see the public API only:
 * they include <loom/...> (and their own folder's headers) and call no internal (loom__) function.
 * LOOM_HAVE_CUDA appears only in the device layer (runtime/devices, actors/devices, ops/cuda) and
 * in tests. tests/ is outside the layers. */
#ifndef LOOM_TESTS_LAYERING_CHECK_H
#define LOOM_TESTS_LAYERING_CHECK_H

#include <stdio.h>

/* Checks the tree at root; writes one line per violation to out and returns their count, or -1
 * when the tree cannot be read (why on out). */
int layering_check(const char *root, FILE *out);

#endif
