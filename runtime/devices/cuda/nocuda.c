/* Built instead of the CUDA runtime when Loom is configured without CUDA. */
#include <loom/core.h>

#include <stdio.h>

int loom_cuda_device_count(loom_error *why)
{
    if (why) {
        why->status = LOOM_ERR_UNSUPPORTED;
        snprintf(why->msg, sizeof why->msg, "this build of Loom has no CUDA support (configure with -DLOOM_CUDA=ON)");
    }
    return 0;
}

loom_status loom_cuda_memory_used(int device, size_t *used, loom_error *why)
{
    (void)device;
    if (used)
        *used = 0;
    return loom_error_set(why, LOOM_ERR_UNSUPPORTED, "this build of Loom has no CUDA support (configure with -DLOOM_CUDA=ON)");
}
