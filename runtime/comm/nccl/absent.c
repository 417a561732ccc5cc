/* Built instead of runtime/comm/nccl/nccl.c when Loom has no NCCL: GPUs of one placement that
 * would exchange parts are refused when the run starts (actors/devices/cuda.c says so first). */
#include "runtime/comm/nccl/nccl.h"

#include <stdio.h>

const int loom__nccl_built = 0;

static const char why[] = "this build of Loom has no NCCL (the CUDA toolkit's, or one CMAKE_LIBRARY_PATH points at)";

loom_status loom__nccl_open(int n, const int *rank, const int *cuda, int self, int over_job, void **comm, char *msg, size_t len)
{
    (void)n, (void)rank, (void)cuda, (void)self, (void)over_job, (void)comm;
    snprintf(msg, len, "%s", why);
    return LOOM_ERR_UNSUPPORTED;
}

void loom__nccl_close(void *comm, int abort) { (void)comm, (void)abort; }

loom_status loom__nccl_error(void *comm, char *msg, size_t len)
{
    (void)comm, (void)msg, (void)len;
    return LOOM_OK;
}

size_t loom__nccl_scratch(size_t from_bytes, size_t to_bytes, int n)
{
    (void)from_bytes, (void)to_bytes, (void)n;
    return 0;
}

static loom_status absent_box(const loom__comm_box *b, loom__value *out, char *msg, size_t len)
{
    (void)b, (void)out;
    snprintf(msg, len, "%s", why);
    return LOOM_ERR_UNSUPPORTED;
}

const loom__comm_ops loom__comm_nccl = {.name = "NCCL (absent)", .box = absent_box};
