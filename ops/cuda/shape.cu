// CUDA kernels of the shape ops (see ops/cuda/cuda.h for the contract).
// defines: loom__cuda_register_shape
#include "ops/cuda/common.cuh"

extern "C" void loom__cuda_register_shape(loom__cuda_op *table) { (void)table; }
