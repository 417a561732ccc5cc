/* The executor's GPU state (internal to actors/devices/): what the GPU device (cuda.c) and its fused
 * chains replayed as CUDA graphs (cuda_graphs.c) share. Built with CUDA only. */
#ifndef LOOM_ACTORS_DEVICES_CUDA_INTERNAL_H
#define LOOM_ACTORS_DEVICES_CUDA_INTERNAL_H

#include "actors/exec_internal.h"
#include "runtime/devices/cuda/cuda_rt.h"

typedef struct dev_state {
    loom__cuda_dev dev;
    char *block;        /* the one allocation: shared + own | params | inputs | workspace | cuBLAS's */
    loom__cuda_kctx kc; /* the kernels' context; tag set per act */
    char *inputs;       /* fed data staged on the device (no data source) */
    int64_t *step_dev;  /* the step a replayed graph's random kernels read */
    size_t *input_off;  /* by input: offset of its part in inputs */
} dev_state;

typedef struct completion {
    loom__rt *rt;
    uint64_t aid;
} completion;

struct loom__exec_cuda {
    dev_state *d;        /* by device */
    /* NCCL: by placement, each position's communicator (NULL: another process's device, or a
     * placement without one); each device's scratch for its boxings (in its block) */
    void ***comm;
    char **scratch;
    size_t *scratch_bytes;
    int comm_aborted;    /* 1: a failed run aborted the communicators; the next run makes them anew */
    int64_t drain_ns;    /* when the run in progress was first seen draining (0: not yet) */
    completion *done;    /* by task: what a copy's host function completes */
    void **events;       /* every event made, to free */
    int nevents, cap_events;
    int deterministic;
};

/* ---- cuda.c ---------------------------------------------------------------------------------- */

/* Makes CUDA device `index` the calling thread's current one (a no-op when it is already). */
loom_status loom__exec_cuda_on_device(int index, char *msg, size_t len);
/* After a call that set the thread's device behind loom__exec_cuda_on_device's back. */
void loom__exec_cuda_forget_device(void);
/* The kernel context of task `task` from the act's: its device's handles, the task as its tag. */
loom__kctx loom__exec_cuda_kernel_ctx(const loom__exec *x, const loom__kctx *from, int task, loom__cuda_kctx *cc);
/* Defers act a of task `task` and completes it once the work queued on stream so far is done. */
loom_status loom__exec_cuda_complete_after(loom__exec *x, loom__act *a, int task, void *stream);
/* After a launch on the compute stream: events for the buffers that other streams read (the act's
 * first nout outputs) or write (its first nin inputs). */
loom_status loom__exec_cuda_mark_events(loom__act *a, int nin, int nout, void *stream);

/* ---- cuda_nccl.c ----------------------------------------------------------------------------- */

/* Refuses what the boxing between GPUs does not do (a build without NCCL, moves between ranks or
 * of partial sums, sparse values, 2-D meshes, collectives met in different orders), naming the
 * tensor. */
loom_status loom__exec_cuda_check_boxing(loom__exec *x);
/* Scratch bytes device d's boxings and moves need (0 without any). */
size_t loom__exec_cuda_box_scratch(const loom__exec *x, int d);
/* The communicators of the plan's GPU placements: those that box, and in a job Loom's MPI layer
 * started every one (the bootstrap over MPI runs for a placement of one device too). */
loom_status loom__exec_cuda_comm_open(loom__exec *x);
/* Frees them (abort: without waiting for collectives in flight). */
void loom__exec_cuda_comm_close(loom__exec *x, int abort);
/* The communicators' asynchronous errors after a run; after a failed one (st), or on such an
 * error, aborts them (the next run makes them anew) so that no stream waits for a collective a
 * stopped device never joined. With communicators, the run's wait polls their errors (runtime
 * hooks; see docs/runtime.md). */
loom_status loom__exec_cuda_comm_end(loom__exec *x, loom_status st);
/* The act's boxing on its device (the exec device's box entry). */
loom_status loom__exec_cuda_box(loom__exec *x, loom__act *a, int task, loom__comm_box *b, loom__value *out);

/* ---- cuda_move.c ----------------------------------------------------------------------------- */

/* The act of a move from another GPU placement of this process: on the target device's compute
 * stream, after each source buffer's writer (its event), the overlaps of the source parts with
 * its own part copied over (peer copies by unified addresses); complete once they are done, so
 * that the sources' writers reuse their buffers only then. */
loom_status loom__exec_cuda_move_act(void *vctx, loom__act *a);

/* ---- cuda_graphs.c --------------------------------------------------------------------------- */

/* 1: device d's chain runs as one actor (no boxing or move task on it, $LOOM_CUDA_GRAPHS not 0). */
int loom__exec_cuda_fusable(const loom__exec *x, int d);
/* The act of a fused chain. The first key of a chain runs its kernels one by one (libraries load
 * what they need outside a capture); its second run is captured and launched; later ones replay
 * the graph. A failed capture turns graphs off for this chain and runs the kernels one by one. */
loom_status loom__exec_cuda_step_act(void *vctx, loom__act *a);
/* Frees the graphs captured for f. */
void loom__exec_cuda_graphs_free(loom__fused *f);

#endif
