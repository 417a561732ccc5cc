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
    completion *done;    /* by task: what a copy's host function completes */
    void **events;       /* every event made, to free */
    int nevents, cap_events;
    int deterministic;
};

/* ---- cuda.c ---------------------------------------------------------------------------------- */

/* Makes CUDA device `index` the calling thread's current one (a no-op when it is already). */
loom_status loom__exec_cuda_on_device(int index, char *msg, size_t len);
/* The kernel context of task `task` from the act's: its device's handles, the task as its tag. */
loom__kctx loom__exec_cuda_kernel_ctx(const loom__exec *x, const loom__kctx *from, int task, loom__cuda_kctx *cc);
/* After a launch on the compute stream: events for the buffers that other streams read (the act's
 * first nout outputs) or write (its first nin inputs). */
loom_status loom__exec_cuda_mark_events(loom__act *a, int nin, int nout, void *stream);

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
