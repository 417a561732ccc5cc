// CUDA kernels of the index ops (see ops/cuda/cuda.h for the contract).
// defines: loom__cuda_register_index
#include "ops/cuda/common.cuh"

extern "C" void loom__cuda_register_index(loom__cuda_op *table) { (void)table; }
