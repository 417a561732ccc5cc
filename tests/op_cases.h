/* The op table: every op a user can build has one or more rows here, and every program that
 * checks ops (test_op_registry on CPU devices, gpu_op_registry on a GPU) runs every row.
 *
 * A row builds a small graph around one op on seeded data, in a float dtype of the caller's
 * choice (f64 for gradient checks, f32 for the GPU), and says what to expect: the output shape, a
 * call the builder must refuse (LOOM_ERR_SHAPE, naming the builder), whether gradients flow.
 *
 * The rule for internal ops (grad ops, fill, optimizer state and updates, dropout's mask): they
 * have no row of their own; they are listed in lt_op_exempt with the rows that reach them (through
 * a forward op's gradient or through the optimizer), and test_op_registry checks that some row's
 * training program really contains each of them. An op of graphs/core/ops.def with neither a row nor an
 * exemption fails test_op_registry. */
#ifndef LOOM_TESTS_OP_CASES_H
#define LOOM_TESTS_OP_CASES_H

#include "harness.h"
#include "graphs/core/op.h"

/* How a row makes its leaves: the float dtype of the data, and the SBP hint each leaf gets on a
 * placement of several devices (split < 0: none, inference picks; else S(split) for every dense
 * leaf of rank above split, S(0) for CSR inputs when split is 0). */
typedef struct lt_row_env {
    loom_dtype dt;
    int split;
} lt_row_env;

/* Builds the row's graph on c and returns the op's output. */
typedef loom_tensor *(*lt_row_build)(lt_case *c, const lt_row_env *e);

enum lt_row_flags {
    LT_ROW_DIFF = 1u << 0, /* the output depends on parameters differentiably: gradcheck it */
};

typedef struct lt_op_row {
    const char *name;  /* "matmul", "matmul (transposed b)" */
    loom_op op;        /* the op of the tensor build returns */
    lt_row_build build;
    int ndim;          /* the output's shape */
    int64_t shape[LOOM_MAX_DIMS];
    uint32_t flags;
    lt_row_build bad;  /* NULL, or the same call with operands of the wrong shapes */
    const char *api;   /* the builder that bad's message must name */
} lt_op_row;

typedef struct lt_op_exemption {
    loom_op op;
    int reached;        /* 1: some row's training program must contain it */
    const char *why;
} lt_op_exemption;

extern const lt_op_row lt_op_rows[];
extern const int lt_op_nrows;
extern const lt_op_exemption lt_op_exempt[];
extern const int lt_op_nexempt;

/* Writes into missing (LOOM_OP_COUNT entries at most) every op of the registry that has neither a
 * row among rows nor an exemption among ex, and returns their number. */
int lt_op_missing(const lt_op_row *rows, int nrows, const lt_op_exemption *ex, int nex, loom_op *missing);

#endif
