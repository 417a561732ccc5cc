/* The cases of test_sbp_sig (sbp_sig_cases.c): for each op of the registry, a few small graphs
 * around it on f64 data (i32 indices, u8 masks, CSR matrices), whose split axes are 5 or 7 long
 * where they can be, with a variant per attribute that changes the op's signatures. */
#ifndef LOOM_TESTS_SBP_SIG_CASES_H
#define LOOM_TESTS_SBP_SIG_CASES_H

#include "harness.h"
#include "graphs/core/op.h"

#include <stdlib.h>

enum { MAX_CASES = 16 };

/* A concrete value: dense (dtype f64, i32 or u8) or CSR with f64 values; owns its data. */
typedef struct val {
    int csr;
    loom_array a;
    loom_csr m;
} val;

typedef struct src_spec {
    val v;
    uint32_t dyn; /* dims of the source that are the case's dynamic dim N (its size is their size) */
} src_spec;

typedef struct op_case {
    char label[96];
    loom_op op;
    int n_src;
    src_spec src[LOOM__MAX_SRC];
    loom__attrs a;
} op_case;

static inline void val_free(val *v)
{
    loom_array_free(&v->a);
    if (v->csr) { /* allocated here with malloc, not by Loom's readers: free the same way */
        free(v->m.rowptr);
        free(v->m.col);
        free(v->m.val);
        v->m = (loom_csr){0};
    }
}

#define DIMS(...) (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__}

/* The cases of op, at most MAX_CASES into cs; 0 when it has none. Every op the registry lists
 * needs one: adding an op means adding its case here. */
int make_cases(loom_op op, op_case *cs);

#endif
