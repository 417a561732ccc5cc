/* The command of every GPU test (tests/gpu_*.c, mpi_gpu_np*) in a build without CUDA, which does
 * not build them: says so and exits 77, so ctest lists each one as skipped. */
#include <stdio.h>

int main(void)
{
    puts("skipped: this build has no CUDA");
    return 77;
}
