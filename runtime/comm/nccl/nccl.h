/* NCCL between GPUs (internal): the communicators of the GPU placements, and the boxing between
 * GPUs as a communicator of comm.h (runtime/comm/nccl/nccl.c; in a build without NCCL,
 * runtime/comm/nccl/absent.c, which refuses). */
#ifndef LOOM_RUNTIME_COMM_NCCL_NCCL_H
#define LOOM_RUNTIME_COMM_NCCL_NCCL_H

#include "runtime/comm/comm.h"

/* 1 when this build of Loom has NCCL. */
extern const int loom__nccl_built;

/* Makes the communicators of one group: the n devices of a GPU placement in its order, device j
 * on process rank[j] with CUDA index cuda[j], NCCL rank j. This process (rank `self`) gets one per
 * device of its own in comm[j], the others NULL. With over_job 1 (a plan over ranks) the unique
 * id is made on rank[0]'s process and broadcast over the job (loom__net_bcast), so every process
 * calls this for every group, in the same order, a group of one device included; with 0 the
 * group is this process's own. Over the job, every process fails together (loom__net_all_ok), the
 * others naming the rank that failed, before any waits for it; a failure leaves no communicator.
 * Leaves the calling thread's CUDA device changed. LOOM_ERR_RUNTIME (LOOM_ERR_UNSUPPORTED without
 * NCCL) with msg. */
loom_status loom__nccl_open(int n, const int *rank, const int *cuda, int self, int over_job, void **comm, char *msg, size_t len);
/* Frees a communicator (NULL: nothing); abort 1 ends its work in flight instead of waiting for it
 * (after a failed run, where a collective may wait for a device that stopped). */
void loom__nccl_close(void *comm, int abort);
/* The communicator's asynchronous error (a peer gone, a network failure): LOOM_ERR_RUNTIME with
 * msg, else LOOM_OK. */
loom_status loom__nccl_error(void *comm, char *msg, size_t len);

/* What one device's boxing goes through: the loom__comm_box's ctx. */
typedef struct loom__nccl_ctx {
    void *comm;           /* the device's communicator in its placement's group */
    void *stream;         /* where its work is queued (the device's compute stream) */
    char *scratch;        /* device memory for packed boxes and partial sums */
    size_t scratch_bytes; /* loom__nccl_scratch of the largest boxing on the device, at least */
} loom__nccl_ctx;

/* Scratch bytes a boxing of one device needs: parts of from_bytes and to_bytes (their registers'
 * sizes) on n devices. */
size_t loom__nccl_scratch(size_t from_bytes, size_t to_bytes, int n);

/* The boxing between GPUs: parts[0] is the device's own part (device memory), out its part
 * under b->to; its route (runtime/comm/route.h) runs as NCCL calls and box copies on ctx's
 * stream, every device of the group calling its own. Dense values of a 1-D placement (or a mesh
 * with one level of one device); a partial sum of f32, f64, i32, i64 or u8. */
extern const loom__comm_ops loom__comm_nccl;

#endif
