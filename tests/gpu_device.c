/* The CUDA build sees the machine's GPUs. Skipped (exit 77) where Loom has no CUDA or no GPU. */
#include <loom/loom.h>

#include <stdio.h>

int main(void)
{
    loom_error why = {0};
    int n = loom_cuda_device_count(&why);
    if (n == 0) {
        printf("gpu_device: skipped: no CUDA device (%s)\n", why.msg[0] ? why.msg : "none found");
        return 77;
    }
    printf("gpu_device: %d CUDA device(s)\n", n);
    return n > 0 ? 0 : 1;
}
