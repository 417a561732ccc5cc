// CUDA devices: discovery, streams, library handles (cuBLAS, cuSPARSE, and cuDNN where built with
// it), memory, events, host functions and graphs behind the C API of
// runtime/devices/cuda/cuda_rt.h.
// defines: loom_cuda_device_count, loom_cuda_memory_used, loom__cuda_*
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusparse.h>
#include <stdio.h>
#ifdef LOOM_HAVE_CUDNN
#include <cudnn.h>
#endif

#include <loom/core.h>

#include "graphs/core/op.h" // loom__bytes_str
#include "runtime/devices/cuda/cuda_rt.h"

static loom_status fail(cudaError_t e, const char *what, char *msg, size_t len)
{
    if (msg && len)
        snprintf(msg, len, "cuda: %s: %s", what, cudaGetErrorString(e));
    (void)cudaGetLastError(); // a sticky error stays; a plain one is cleared for later calls
    return e == cudaErrorMemoryAllocation ? LOOM_ERR_NOMEM : LOOM_ERR_RUNTIME;
}

#define CK(call, what)                                     \
    do {                                                   \
        cudaError_t e_ = (call);                           \
        if (e_ != cudaSuccess)                             \
            return fail(e_, (what), msg, len);             \
    } while (0)

extern "C" int loom_cuda_device_count(loom_error *why)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (why) {
            why->status = LOOM_ERR_RUNTIME;
            snprintf(why->msg, sizeof why->msg, "cuda: %s", cudaGetErrorString(e));
        }
        (void)cudaGetLastError(); // clear the sticky error for later calls
        return 0;
    }
    return n;
}

extern "C" loom_status loom_cuda_memory_used(int device, size_t *used, loom_error *why)
{
    size_t free_b = 0, total_b = 0;
    int prev = 0;
    cudaError_t e = cudaGetDevice(&prev);
    if (e == cudaSuccess)
        e = cudaSetDevice(device);
    if (e == cudaSuccess)
        e = cudaMemGetInfo(&free_b, &total_b);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return loom_error_set(why, LOOM_ERR_RUNTIME, "cuda: device %d: %s", device, cudaGetErrorString(e));
    }
    (void)cudaSetDevice(prev);
    if (used)
        *used = total_b - free_b;
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_set_device(int index, char *msg, size_t len)
{
    CK(cudaSetDevice(index), "cudaSetDevice");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_dev_open(int index, loom__cuda_dev *d, char *msg, size_t len)
{
    *d = loom__cuda_dev{};
    d->index = index;
    CK(cudaSetDevice(index), "cudaSetDevice");
    for (int r = 0; r < LOOM__CUDA_STREAM_COUNT; r++) {
        cudaStream_t s;
        cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
        if (e != cudaSuccess) {
            loom__cuda_dev_close(d);
            return fail(e, "cudaStreamCreateWithFlags", msg, len);
        }
        d->stream[r] = s;
    }
    cublasHandle_t blas;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS) {
        loom__cuda_dev_close(d);
        snprintf(msg, len, "cuda: cublasCreate failed on device %d", index);
        return LOOM_ERR_RUNTIME;
    }
    d->blas = blas;
    cublasSetStream(blas, (cudaStream_t)d->stream[LOOM__CUDA_COMPUTE]);
    cusparseHandle_t sp;
    if (cusparseCreate(&sp) != CUSPARSE_STATUS_SUCCESS) {
        loom__cuda_dev_close(d);
        snprintf(msg, len, "cuda: cusparseCreate failed on device %d", index);
        return LOOM_ERR_RUNTIME;
    }
    d->sparse = sp;
    cusparseSetStream(sp, (cudaStream_t)d->stream[LOOM__CUDA_COMPUTE]);
#ifdef LOOM_HAVE_CUDNN
    /* Without a handle (a cuDNN that cannot start here) the convolutions take their im2col path:
     * the device still serves everything else. */
    cudnnHandle_t dnn;
    if (cudnnCreate(&dnn) == CUDNN_STATUS_SUCCESS) {
        d->dnn = dnn;
        cudnnSetStream(dnn, (cudaStream_t)d->stream[LOOM__CUDA_COMPUTE]);
    }
#endif
    cudaError_t e = cudaMalloc(&d->err, LOOM__CUDA_ERR_BYTES);
    if (e == cudaSuccess) /* done before any kernel of the non-blocking streams reads it */
        e = cudaMemsetAsync(d->err, 0, LOOM__CUDA_ERR_BYTES, (cudaStream_t)d->stream[LOOM__CUDA_COMPUTE]);
    if (e == cudaSuccess)
        e = cudaStreamSynchronize((cudaStream_t)d->stream[LOOM__CUDA_COMPUTE]);
    if (e == cudaSuccess)
        e = cudaMallocHost(&d->err_host, LOOM__CUDA_ERR_BYTES);
    if (e != cudaSuccess) {
        loom__cuda_dev_close(d);
        return fail(e, "the device error record", msg, len);
    }
    return LOOM_OK;
}

extern "C" void loom__cuda_dev_close(loom__cuda_dev *d)
{
    if (d->stream[0] || d->blas || d->err)
        cudaSetDevice(d->index);
    for (int r = 0; r < LOOM__CUDA_STREAM_COUNT; r++)
        if (d->stream[r]) {
            cudaStreamSynchronize((cudaStream_t)d->stream[r]);
            cudaStreamDestroy((cudaStream_t)d->stream[r]);
        }
    if (d->blas)
        cublasDestroy((cublasHandle_t)d->blas);
    if (d->sparse)
        cusparseDestroy((cusparseHandle_t)d->sparse);
#ifdef LOOM_HAVE_CUDNN
    if (d->dnn)
        cudnnDestroy((cudnnHandle_t)d->dnn);
#endif
    cudaFree(d->err);
    cudaFreeHost(d->err_host);
    (void)cudaGetLastError();
    int index = d->index;
    *d = loom__cuda_dev{};
    d->index = index;
}

extern "C" loom_status loom__cuda_dev_blas_workspace(loom__cuda_dev *d, void *ws, size_t bytes, char *msg, size_t len)
{
    if (cublasSetWorkspace((cublasHandle_t)d->blas, ws, bytes) != CUBLAS_STATUS_SUCCESS) {
        snprintf(msg, len, "cuda: cublasSetWorkspace failed on device %d", d->index);
        return LOOM_ERR_RUNTIME;
    }
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_alloc(int index, size_t bytes, void **out, char *msg, size_t len)
{
    *out = NULL;
    if (!bytes)
        return LOOM_OK;
    CK(cudaSetDevice(index), "cudaSetDevice");
    cudaError_t e = cudaMalloc(out, bytes);
    if (e != cudaSuccess) {
        *out = NULL;
        char what[96], b[32];
        snprintf(what, sizeof what, "cudaMalloc of %s on device %d", loom__bytes_str((double)bytes, b, sizeof b), index);
        return fail(e, what, msg, len);
    }
    return LOOM_OK;
}

extern "C" void loom__cuda_free(void *p)
{
    if (p)
        cudaFree(p);
}

extern "C" loom_status loom__cuda_host_alloc(size_t bytes, void **out, char *msg, size_t len)
{
    *out = NULL;
    CK(cudaMallocHost(out, bytes ? bytes : 64), "cudaMallocHost");
    return LOOM_OK;
}

extern "C" void loom__cuda_host_free(void *p)
{
    if (p)
        cudaFreeHost(p);
}

extern "C" loom_status loom__cuda_mem_info(int index, size_t *free_bytes, size_t *total_bytes, char *msg, size_t len)
{
    CK(cudaSetDevice(index), "cudaSetDevice");
    CK(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_copy_async(void *dst, const void *src, size_t n, void *stream, char *msg, size_t len)
{
    if (n)
        CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, (cudaStream_t)stream), "cudaMemcpyAsync");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_zero_async(void *dst, size_t n, void *stream, char *msg, size_t len)
{
    if (n)
        CK(cudaMemsetAsync(dst, 0, n, (cudaStream_t)stream), "cudaMemsetAsync");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_copy_sync(void *dst, const void *src, size_t n, char *msg, size_t len)
{
    // Not cudaMemcpy: from pageable memory it may return before the copy reaches the device, and
    // kernels on Loom's non-blocking streams would not wait for it. A copy on this thread's stream,
    // then waiting for that stream, is done when this returns.
    if (n) {
        CK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, cudaStreamPerThread), "cudaMemcpyAsync");
        CK(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize");
    }
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_stream_sync(void *stream, char *msg, size_t len)
{
    CK(cudaStreamSynchronize((cudaStream_t)stream), "cudaStreamSynchronize");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_event_new(void **ev, char *msg, size_t len)
{
    cudaEvent_t e;
    CK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate");
    *ev = e;
    return LOOM_OK;
}

extern "C" void loom__cuda_event_free(void *ev)
{
    if (ev)
        cudaEventDestroy((cudaEvent_t)ev);
}

extern "C" loom_status loom__cuda_event_record(void *ev, void *stream, char *msg, size_t len)
{
    CK(cudaEventRecord((cudaEvent_t)ev, (cudaStream_t)stream), "cudaEventRecord");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_stream_wait(void *stream, void *ev, char *msg, size_t len)
{
    CK(cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)ev, 0), "cudaStreamWaitEvent");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_timer_new(void **ev, char *msg, size_t len)
{
    cudaEvent_t e;
    CK(cudaEventCreate(&e), "cudaEventCreate");
    *ev = e;
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_timer_elapsed(void *start, void *stop, float *ms, char *msg, size_t len)
{
    CK(cudaEventSynchronize((cudaEvent_t)stop), "cudaEventSynchronize");
    CK(cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)stop), "cudaEventElapsedTime");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_host_fn(void *stream, void (*fn)(void *), void *arg, char *msg, size_t len)
{
    CK(cudaLaunchHostFunc((cudaStream_t)stream, fn, arg), "cudaLaunchHostFunc");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_capture_begin(void *stream, char *msg, size_t len)
{
    // thread-local mode: other threads may keep using CUDA while this one captures
    CK(cudaStreamBeginCapture((cudaStream_t)stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_capture_end(void *stream, void **exec, char *msg, size_t len)
{
    *exec = NULL;
    cudaGraph_t graph = NULL;
    CK(cudaStreamEndCapture((cudaStream_t)stream, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t ge = NULL;
    cudaError_t e = cudaGraphInstantiate(&ge, graph, 0);
    cudaGraphDestroy(graph);
    if (e != cudaSuccess)
        return fail(e, "cudaGraphInstantiate", msg, len);
    *exec = ge;
    return LOOM_OK;
}

extern "C" loom_status loom__cuda_graph_launch(void *exec, void *stream, char *msg, size_t len)
{
    CK(cudaGraphLaunch((cudaGraphExec_t)exec, (cudaStream_t)stream), "cudaGraphLaunch");
    return LOOM_OK;
}

extern "C" void loom__cuda_graph_free(void *exec)
{
    if (exec)
        cudaGraphExecDestroy((cudaGraphExec_t)exec);
}

static __global__ void set_i64(int64_t *dst, int64_t v) { *dst = v; }

extern "C" loom_status loom__cuda_set_i64(int64_t *dst, int64_t v, void *stream, char *msg, size_t len)
{
    set_i64<<<1, 1, 0, (cudaStream_t)stream>>>(dst, v);
    CK(cudaGetLastError(), "set_i64 launch");
    return LOOM_OK;
}

extern "C" void loom__cuda_capture_abort(void *stream)
{
    cudaGraph_t graph = NULL;
    cudaStreamCaptureStatus st;
    if (cudaStreamIsCapturing((cudaStream_t)stream, &st) == cudaSuccess && st != cudaStreamCaptureStatusNone &&
        cudaStreamEndCapture((cudaStream_t)stream, &graph) == cudaSuccess && graph)
        cudaGraphDestroy(graph);
    (void)cudaGetLastError();
}
