// CUDA device discovery. C-callable launchers only: the runtime that uses them is C.
// defines: loom_cuda_device_count
#include <cuda_runtime.h>
#include <stdio.h>

#include <loom/core.h>

extern "C" int loom_cuda_device_count(loom_error *why)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) {
            why->status = LOOM_ERR_RUNTIME;
            snprintf(why->msg, sizeof why->msg, "cuda: %s", cudaGetErrorString(e));
        }
        (void)cudaGetLastError(); // clear the sticky error for later calls
        return 0;
    }
    return n;
}
