/* The GPU device of the executor in a build without CUDA: a program placed on cuda:N is refused
 * at compile time (no such device), so opening one only says why, should it ever be asked. */
#include "actors/exec_internal.h"

static loom_status absent_open(loom__exec *x)
{
    return loom__exec_fail(x, LOOM_ERR_UNSUPPORTED, "loom_program_run: this build of Loom has no CUDA");
}

const loom__exec_device loom__exec_cuda_device = {.rt_kind = LOOM__RT_DEV_CUDA, .open = absent_open};
