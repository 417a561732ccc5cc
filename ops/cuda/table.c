/* The CUDA kernel table: one entry per op, filled once by each family's registration function. */
#include "ops/cuda/cuda.h"

#include <pthread.h>

static loom__cuda_op table[LOOM_OP_COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void fill(void)
{
    loom__cuda_register_binary(table);
    loom__cuda_register_unary(table);
    loom__cuda_register_matmul(table);
    loom__cuda_register_dropout(table);
    loom__cuda_register_softmax(table);
    loom__cuda_register_softmax_ce(table);
    loom__cuda_register_optim(table);
    loom__cuda_register_reduce(table);
    loom__cuda_register_shape(table);
    loom__cuda_register_index(table);
    loom__cuda_register_sparse(table);
    loom__cuda_register_loss(table);
    loom__cuda_register_conv(table);
    loom__cuda_register_pool2d(table);
    loom__cuda_register_norm(table);
}

const loom__cuda_op *loom__cuda_op_get(loom_op op)
{
    static const loom__cuda_op none = {0};
    if ((unsigned)op >= LOOM_OP_COUNT)
        return &none;
    pthread_once(&once, fill);
    return &table[op];
}
