/* CUDA devices for the runtime (C API over the CUDA runtime, cuBLAS, cuSPARSE and cuDNN; implemented in
 * runtime/devices/cuda/device.cu). Nothing here is called inside a step except the asynchronous calls
 * (copies, events, host functions, graph launches): allocation, handle creation and
 * synchronisation happen when a plan is set up or torn down.
 *
 * Every call that can fail returns a status and writes "cuda: <call>: <reason>" into msg.
 * Streams, events and graphs are opaque pointers (cudaStream_t, cudaEvent_t, cudaGraphExec_t). */
#ifndef LOOM_RUNTIME_CUDA_CUDA_RT_H
#define LOOM_RUNTIME_CUDA_CUDA_RT_H

#include <loom/core.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The stream roles of a device: one stream each. */
enum loom__cuda_stream_role {
    LOOM__CUDA_COMPUTE,
    LOOM__CUDA_H2D,
    LOOM__CUDA_D2H,
    LOOM__CUDA_COMM,
    LOOM__CUDA_STREAM_COUNT
};

/* Bytes of the device's error record (ops/cuda/cuda.h, loom__cuda_err; a little more, aligned). */
#define LOOM__CUDA_ERR_BYTES 64

typedef struct loom__cuda_dev {
    int index;
    void *stream[LOOM__CUDA_STREAM_COUNT];
    void *blas;     /* cublasHandle_t on the compute stream */
    void *sparse;   /* cusparseHandle_t on the compute stream */
    void *dnn;      /* cudnnHandle_t on the compute stream; NULL in a build without cuDNN, or when
                       cuDNN could not start on the device */
    void *err;      /* device: LOOM__CUDA_ERR_BYTES, zeroed */
    void *err_host; /* pinned host copy of it */
} loom__cuda_dev;

/* Opens device `index`: its streams (non-blocking), library handles and error record. */
loom_status loom__cuda_dev_open(int index, loom__cuda_dev *d, char *msg, size_t len);
/* Synchronises the device's streams and frees what open made; safe on a zeroed struct. */
void loom__cuda_dev_close(loom__cuda_dev *d);
/* Gives cuBLAS its workspace (device memory of the plan), so that no call allocates: needed for
 * capturing steps as graphs. */
loom_status loom__cuda_dev_blas_workspace(loom__cuda_dev *d, void *ws, size_t bytes, char *msg, size_t len);
/* Makes `index` the calling thread's current device (each worker thread calls it once). */
loom_status loom__cuda_set_device(int index, char *msg, size_t len);

/* Device memory of device `index` (NULL for 0 bytes), and pinned host memory. */
loom_status loom__cuda_alloc(int index, size_t bytes, void **out, char *msg, size_t len);
void loom__cuda_free(void *p);
loom_status loom__cuda_host_alloc(size_t bytes, void **out, char *msg, size_t len);
void loom__cuda_host_free(void *p);
/* Bytes free and in all on device `index`. */
loom_status loom__cuda_mem_info(int index, size_t *free_bytes, size_t *total_bytes, char *msg, size_t len);

/* Copies n bytes (any direction, unified addressing) on stream. */
loom_status loom__cuda_copy_async(void *dst, const void *src, size_t n, void *stream, char *msg, size_t len);
/* Sets n bytes to 0 on stream. */
loom_status loom__cuda_zero_async(void *dst, size_t n, void *stream, char *msg, size_t len);
/* Copies and waits: for setting up plans and for tests, never in a step. */
loom_status loom__cuda_copy_sync(void *dst, const void *src, size_t n, char *msg, size_t len);
loom_status loom__cuda_stream_sync(void *stream, char *msg, size_t len);

/* Events without timing: record on a stream, make another stream wait for it. */
loom_status loom__cuda_event_new(void **ev, char *msg, size_t len);
void loom__cuda_event_free(void *ev);
loom_status loom__cuda_event_record(void *ev, void *stream, char *msg, size_t len);
loom_status loom__cuda_stream_wait(void *stream, void *ev, char *msg, size_t len);
/* Timing events, for benchmarks: recorded with loom__cuda_event_record and freed with
 * loom__cuda_event_free like the others; elapsed waits for stop and gives the milliseconds between
 * the two records. */
loom_status loom__cuda_timer_new(void **ev, char *msg, size_t len);
loom_status loom__cuda_timer_elapsed(void *start, void *stop, float *ms, char *msg, size_t len);

/* Calls fn(arg) on a CUDA thread once the work queued on stream before it has finished. fn must
 * not call CUDA: it posts a message (loom__rt_complete) and returns. */
loom_status loom__cuda_host_fn(void *stream, void (*fn)(void *), void *arg, char *msg, size_t len);

/* Graph capture of one stream's work: begin, then the launches to record, then end, which
 * instantiates the graph (NULL *exec on failure). A launch replays it on stream. */
loom_status loom__cuda_capture_begin(void *stream, char *msg, size_t len);
loom_status loom__cuda_capture_end(void *stream, void **exec, char *msg, size_t len);
loom_status loom__cuda_graph_launch(void *exec, void *stream, char *msg, size_t len);
void loom__cuda_graph_free(void *exec);

/* Writes v into the int64 at dst (device memory) on stream: a step number that kernels replayed
 * from a graph read there. */
loom_status loom__cuda_set_i64(int64_t *dst, int64_t v, void *stream, char *msg, size_t len);
/* Copies the box of extent ext (nd dims) at sat of src, a row-major tensor of sshape, to dat of
 * dst (dshape), elements of es bytes (1, 4 or 8), on stream (runtime/devices/cuda/box.cu). */
loom_status loom__cuda_box_copy(void *dst, const int64_t *dshape, const int64_t *dat, const void *src, const int64_t *sshape,
                                const int64_t *sat, const int64_t *ext, int nd, size_t es, void *stream, char *msg, size_t len);
/* Ends a capture that failed half way (the graph is dropped) and clears the error. */
void loom__cuda_capture_abort(void *stream);


#ifdef __cplusplus
}
#endif
#endif
