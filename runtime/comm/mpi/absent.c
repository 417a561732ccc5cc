/* A build without MPI: one process, rank 0 of 1; a runtime with actors of another rank is refused. */
#define LOOM__RT_PRIVATE
#include "runtime/runtime.h"

#include <loom/dist.h>

loom_status loom_dist_init(loom_error *err)
{
    if (err)
        *err = LOOM_ERROR_INIT;
    return LOOM_OK;
}
int loom_dist_rank(void) { return 0; }
int loom_dist_size(void) { return 1; }
int loom_dist_available(void) { return 0; }
int loom__net_ready(void) { return 0; }
void loom_dist_finalize(void) {}

loom_status loom__net_same_plan(uint64_t hash, char *msg, size_t len)
{
    (void)hash, (void)msg, (void)len;
    return LOOM_OK;
}

loom_status loom__net_bcast(void *buf, size_t bytes, int root, char *msg, size_t len)
{
    (void)buf, (void)bytes, (void)root, (void)msg, (void)len;
    return LOOM_OK;
}

loom_status loom__net_all_ok(loom_status st, char *msg, size_t len)
{
    (void)msg, (void)len;
    return st;
}

int64_t loom__net_timeout_ns(void) { return 10000000000; }

int64_t loom__net_data_sent(void) { return 0; }

loom_status loom__net_layout(loom__rt *rt)
{
    return loom__rt_build_fail(rt, LOOM_ERR_UNSUPPORTED,
                               "loom__rt_run: actors of other ranks need MPI, and this Loom was built without it "
                               "(scripts/install-deps.sh installs Open MPI; configure again)");
}

void loom__net_free(loom__rt *rt) { (void)rt; }

void *loom__net_main(void *thread)
{
    (void)thread;
    return NULL;
}
