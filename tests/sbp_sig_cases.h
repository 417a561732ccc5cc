/* The cases of test_sbp_sig (sbp_sig_cases.c): for each op of the registry, a few small graphs
 * around it on f64 data (i32 indices, u8 masks, CSR matrices), whose split axes are 5 or 7 long
 * where they can be, with a variant per attribute that changes the op's signatures. sbp_doc
 * writes docs/sbp.md from the same cases. */
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

/* Builds the case's op on inputs shaped like vals into a new graph *g (sources in src), with the
 * case's dynamic dim N where the sources' dyn says when dynamic, else static sizes throughout; a:
 * the op's attributes. Returns the op's tensor, or NULL with the reason in why (*g still to free). */
loom_tensor *case_build(const op_case *c, const val *vals, const loom__attrs *a, int dynamic, loom_graph **g,
                        loom_tensor **src, char *why, size_t len);
/* A signature of nsrc sources as text, "(S(0), B) -> P", into buf. */
const char *case_sig_str(const loom__sbp_sig *s, int nsrc, char *buf, size_t len);

#endif
