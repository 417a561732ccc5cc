// CUDA kernels of the dropout ops (see ops/cuda/cuda.h for the contract).
// defines: loom__cuda_register_dropout
#include "ops/cuda/common.cuh"

extern "C" void loom__cuda_register_dropout(loom__cuda_op *table) { (void)table; }
