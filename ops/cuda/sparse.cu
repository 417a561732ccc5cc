// CUDA kernels of the sparse ops (see ops/cuda/cuda.h for the contract).
// defines: loom__cuda_register_sparse
#include "ops/cuda/common.cuh"

extern "C" void loom__cuda_register_sparse(loom__cuda_op *table) { (void)table; }
