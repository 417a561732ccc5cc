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
