/* The op registry: one definition per op, indexed by the op enum. */
#include "graphs/core/op.h"

#include <stddef.h>

#define X(e, n) extern const loom_op_def loom__op_##n;
#include "graphs/core/ops.def"
#undef X

static const loom_op_def *const registry[LOOM_OP_COUNT] = {
#define X(e, n) [LOOM_OP_##e] = &loom__op_##n,
#include "graphs/core/ops.def"
#undef X
};
_Static_assert(sizeof registry / sizeof registry[0] == LOOM_OP_COUNT, "one registry entry per op");

const loom_op_def *loom__op_def(loom_op op)
{
    if ((unsigned)op >= LOOM_OP_COUNT)
        return NULL;
    return registry[op];
}
