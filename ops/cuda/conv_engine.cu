// cuDNN's graph (backend) API for conv2d and its gradient ops (host calls only; the interface and
// the contract are in conv_engine.cuh). One problem is one operation graph: x, w and y tensors
// (NCHW, dense), a convolution (cross-correlation, symmetric padding, groups implied by x's
// channels over w's) and the op on them. Its candidates are the engine configs of cuDNN's
// heuristics, mode A then the fallback list (as PyTorch's cudnn.benchmark takes them), without
// duplicates, in their order, kept when
//   - their numerical notes allow the math: never down-converted inputs or reduced-precision
//     reductions, and no tensor cores (TF32) where f32 must be FMA math (strict);
//   - under LOOM_DETERMINISTIC, they are not marked non-deterministic;
//   - they do not compile at run time (NVRTC: seconds, and not in a capture);
//   - their plan finalizes and its workspace is within the limit.
// Without measure the first kept is taken (no launch, no allocation: the call may be inside a
// CUDA graph's capture). With measure every kept one runs on scratch buffers, once to warm up
// then RUNS times, and the least time wins.
// Every plan of a device is made and run with one handle of its own (device_handle), made where a
// plan is first set up on the device and never destroyed, as the plans are not: a program's handle
// lives as long as its program, and a plan kept in the table outlives it. A run sets that handle's
// stream to its caller's, under the device's lock.
// defines: loom__conv_engine_pick, loom__conv_engine_run, loom__conv_engine_describe
#include "ops/cuda/conv_engine.cuh"

#ifdef LOOM_HAVE_CUDNN

#include <cuda_runtime.h>
#include <stdio.h>
#include <string.h>

#include <mutex>
#include <new>

enum { UID_X = 'x', UID_W = 'w', UID_Y = 'y' };

// Descriptors of a problem's operation graph (x, w, y, convolution, operation, graph), then of its
// chosen engine config and execution plan.
enum { GRAPH_DESCS = 6, PLAN_DESCS = GRAPH_DESCS + 2, TAG = 256 };

struct loom__conv_plan {
    cudnnBackendDescriptor_t d[PLAN_DESCS] = {};
    int n = 0;
    size_t bytes = 0;
    float ms = -1; // its time when measured
    int timed = 0; // candidates timed
    char tag[TAG] = "";
    int device = 0;
    ~loom__conv_plan()
    {
        while (n > 0)
            cudnnBackendDestroyDescriptor(d[--n]);
    }
};

namespace {

constexpr int RUNS = 3;       // timed runs of a candidate
constexpr int CANDIDATES = 64; // engine configs looked at, at most
constexpr int DEVICES = 64;    // devices with a handle of their own; a device past them has no plans

// The handles of the devices (see the top of the file) and the locks of their streams. Made once
// and never torn down, as the plans made with them.
struct device_handles {
    std::mutex make;
    std::mutex run[DEVICES];
    cudnnHandle_t h[DEVICES] = {};
};
device_handles &handles = *new device_handles;

// Device's handle; with setup made when missing (the device current), else NULL when missing.
cudnnHandle_t device_handle(int device, bool setup)
{
    if (device < 0 || device >= DEVICES)
        return nullptr;
    std::lock_guard<std::mutex> lock(handles.make);
    if (!handles.h[device] && setup && cudnnCreate(&handles.h[device]) != CUDNN_STATUS_SUCCESS)
        handles.h[device] = nullptr;
    return handles.h[device];
}

#define TRY(call)                                   \
    do {                                            \
        const cudnnStatus_t s_ = (call);            \
        if (s_ != CUDNN_STATUS_SUCCESS)             \
            return s_;                              \
    } while (0)

cudnnStatus_t set(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a, cudnnBackendAttributeType_t t, int64_t n,
                  const void *v)
{
    return cudnnBackendSetAttribute(d, a, t, n, v);
}

cudnnStatus_t set_desc(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a, cudnnBackendDescriptor_t v)
{
    return set(d, a, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &v);
}

// A descriptor of type made into p's next slot.
cudnnStatus_t make(loom__conv_plan *p, cudnnBackendDescriptorType_t type, cudnnBackendDescriptor_t *out)
{
    TRY(cudnnBackendCreateDescriptor(type, out));
    p->d[p->n++] = *out;
    return CUDNN_STATUS_SUCCESS;
}

// A dense NCHW tensor of dims.
cudnnStatus_t tensor(loom__conv_plan *p, int64_t uid, const int64_t dims[4], cudnnDataType_t t, int64_t align,
                     cudnnBackendDescriptor_t *out)
{
    const int64_t strides[4] = {dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1};
    TRY(make(p, CUDNN_BACKEND_TENSOR_DESCRIPTOR, out));
    TRY(set(*out, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t));
    TRY(set(*out, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, dims));
    TRY(set(*out, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, strides));
    TRY(set(*out, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid));
    TRY(set(*out, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align));
    return cudnnBackendFinalize(*out);
}

// The attributes of each op's operation descriptor.
struct op_attrs {
    cudnnBackendDescriptorType_t type;
    cudnnBackendAttributeName_t x, w, y, conv, alpha, beta;
};

const op_attrs &attrs_of(loom_op op)
{
    static const op_attrs fwd = {CUDNN_BACKEND_OPERATION_CONVOLUTION_FORWARD_DESCRIPTOR,
                                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_X,
                                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_W,
                                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_Y,
                                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_CONV_DESC,
                                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_ALPHA,
                                 CUDNN_ATTR_OPERATION_CONVOLUTION_FORWARD_BETA};
    static const op_attrs data = {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_DATA_DESCRIPTOR,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DX,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_W,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_DY,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_CONV_DESC,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_ALPHA,
                                  CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_DATA_BETA};
    static const op_attrs filter = {CUDNN_BACKEND_OPERATION_CONVOLUTION_BACKWARD_FILTER_DESCRIPTOR,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_X,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DW,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_DY,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_CONV_DESC,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_ALPHA,
                                    CUDNN_ATTR_OPERATION_CONVOLUTION_BWD_FILTER_BETA};
    return op == LOOM_OP_CONV2D ? fwd : op == LOOM_OP_CONV2D_GRAD_INPUT ? data : filter;
}

// The operation graph of a's problem into p's first GRAPH_DESCS slots; *graph is the last.
cudnnStatus_t make_graph(loom__conv_plan *p, const loom__conv_engine_ask &a, cudnnHandle_t h, cudnnBackendDescriptor_t *graph)
{
    const loom__conv *cv = a.cv;
    const cudnnDataType_t t = a.dt == LOOM_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    const int64_t xd[4] = {cv->n, cv->c, cv->h, cv->w}, wd[4] = {cv->k, cv->cg, cv->r, cv->s}, yd[4] = {cv->n, cv->k, cv->p, cv->q};
    cudnnBackendDescriptor_t x, w, y, conv, op;
    TRY(tensor(p, UID_X, xd, t, a.align, &x));
    TRY(tensor(p, UID_W, wd, t, a.align, &w));
    TRY(tensor(p, UID_Y, yd, t, a.align, &y));

    const int64_t dims = 2;
    const cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
    TRY(make(p, CUDNN_BACKEND_CONVOLUTION_DESCRIPTOR, &conv));
    TRY(set(conv, CUDNN_ATTR_CONVOLUTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &t));
    TRY(set(conv, CUDNN_ATTR_CONVOLUTION_CONV_MODE, CUDNN_TYPE_CONVOLUTION_MODE, 1, &mode));
    TRY(set(conv, CUDNN_ATTR_CONVOLUTION_SPATIAL_DIMS, CUDNN_TYPE_INT64, 1, &dims));
    TRY(set(conv, CUDNN_ATTR_CONVOLUTION_PRE_PADDINGS, CUDNN_TYPE_INT64, dims, cv->pad));
    TRY(set(conv, CUDNN_ATTR_CONVOLUTION_POST_PADDINGS, CUDNN_TYPE_INT64, dims, cv->pad));
    TRY(set(conv, CUDNN_ATTR_CONVOLUTION_DILATIONS, CUDNN_TYPE_INT64, dims, cv->dil));
    TRY(set(conv, CUDNN_ATTR_CONVOLUTION_FILTER_STRIDES, CUDNN_TYPE_INT64, dims, cv->stride));
    TRY(cudnnBackendFinalize(conv));

    const op_attrs &o = attrs_of(a.op);
    const double one_d = 1, zero_d = 0;
    const float one_f = 1, zero_f = 0;
    const bool f64 = a.dt == LOOM_F64;
    TRY(make(p, o.type, &op));
    TRY(set_desc(op, o.x, x));
    TRY(set_desc(op, o.w, w));
    TRY(set_desc(op, o.y, y));
    TRY(set_desc(op, o.conv, conv));
    TRY(set(op, o.alpha, f64 ? CUDNN_TYPE_DOUBLE : CUDNN_TYPE_FLOAT, 1, f64 ? (const void *)&one_d : (const void *)&one_f));
    TRY(set(op, o.beta, f64 ? CUDNN_TYPE_DOUBLE : CUDNN_TYPE_FLOAT, 1, f64 ? (const void *)&zero_d : (const void *)&zero_f));
    TRY(cudnnBackendFinalize(op));

    TRY(make(p, CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR, graph));
    TRY(set_desc(*graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, op));
    TRY(set(*graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h));
    return cudnnBackendFinalize(*graph);
}

// Candidates: engine configs, and for those kept their execution plans; destroys what it holds.
struct candidates {
    cudnnBackendDescriptor_t cfg[CANDIDATES] = {}, plan[CANDIDATES] = {};
    size_t bytes[CANDIDATES] = {};
    char tag[CANDIDATES][TAG] = {};
    float ms[CANDIDATES] = {};
    int n = 0;
    candidates() = default;
    candidates(const candidates &) = delete;
    candidates &operator=(const candidates &) = delete;
    ~candidates()
    {
        for (int i = 0; i < n; i++) {
            if (plan[i])
                cudnnBackendDestroyDescriptor(plan[i]);
            if (cfg[i])
                cudnnBackendDestroyDescriptor(cfg[i]);
        }
    }
};

// Appends the engine configs of heuristics mode for graph to c, in their order, as many as fit.
cudnnStatus_t heuristics(cudnnBackendDescriptor_t graph, cudnnBackendHeurMode_t mode, candidates *c)
{
    cudnnBackendDescriptor_t heur;
    TRY(cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR, &heur));
    int64_t count = 0, got = 0;
    cudnnStatus_t s = set_desc(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph);
    if (s == CUDNN_STATUS_SUCCESS)
        s = set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendFinalize(heur);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr);
    if (count > CANDIDATES - c->n)
        count = CANDIDATES - c->n;
    const int at = c->n;
    for (int64_t i = 0; i < count && s == CUDNN_STATUS_SUCCESS; i++)
        if ((s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR, &c->cfg[c->n])) == CUDNN_STATUS_SUCCESS)
            c->n++;
    if (s == CUDNN_STATUS_SUCCESS && count > 0)
        s = cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS, CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &got,
                                     &c->cfg[at]);
    // configs not filled in are dropped (and, after a failure, all of this mode's)
    const int keep = s == CUDNN_STATUS_SUCCESS ? at + (int)(got < count ? got : count) : at;
    while (c->n > keep) {
        cudnnBackendDestroyDescriptor(c->cfg[--c->n]);
        c->cfg[c->n] = nullptr;
    }
    cudnnBackendDestroyDescriptor(heur);
    return s;
}

// Whether a note of engine (numerical or behavioural: type, name, count) is in bad.
template <typename Note>
cudnnStatus_t has_note(cudnnBackendDescriptor_t engine, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
                       bool (*bad)(Note, const loom__conv_engine_ask &), const loom__conv_engine_ask &a, bool *out)
{
    Note notes[32];
    int64_t n = 0;
    TRY(cudnnBackendGetAttribute(engine, name, type, 32, &n, notes));
    *out = false;
    for (int64_t i = 0; i < n && i < 32; i++)
        *out = *out || bad(notes[i], a);
    return CUDNN_STATUS_SUCCESS;
}

bool bad_numerics(cudnnBackendNumericalNote_t note, const loom__conv_engine_ask &a)
{
    return note == CUDNN_NUMERICAL_NOTE_DOWN_CONVERT_INPUTS || note == CUDNN_NUMERICAL_NOTE_REDUCED_PRECISION_REDUCTION ||
           (a.strict && note == CUDNN_NUMERICAL_NOTE_TENSOR_CORE) || (a.det && note == CUDNN_NUMERICAL_NOTE_NONDETERMINISTIC);
}

bool bad_behaviour(cudnnBackendBehaviorNote_t note, const loom__conv_engine_ask &) { return note == CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION; }

// "engine N (kT=V ...)" of cfg into tag.
cudnnStatus_t tag_of(cudnnBackendDescriptor_t cfg, cudnnBackendDescriptor_t engine, char *tag, size_t len)
{
    int64_t index = -1, n = 0;
    TRY(cudnnBackendGetAttribute(engine, CUDNN_ATTR_ENGINE_GLOBAL_INDEX, CUDNN_TYPE_INT64, 1, &n, &index));
    int at = snprintf(tag, len, "engine %lld", (long long)index);
    enum { KNOBS = 64 }; // CUDNN_KNOB_TYPE_COUNTS is 44 in cuDNN 9.19
    cudnnBackendDescriptor_t knob[KNOBS] = {};
    int made = 0;
    cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
    for (; made < KNOBS && s == CUDNN_STATUS_SUCCESS; made += s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_KNOB_CHOICE_DESCRIPTOR, &knob[made]);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_KNOB_CHOICES, CUDNN_TYPE_BACKEND_DESCRIPTOR, KNOBS, &n, knob);
    for (int64_t i = 0; s == CUDNN_STATUS_SUCCESS && i < n && i < KNOBS; i++) {
        cudnnBackendKnobType_t type;
        int64_t value = 0, m = 0;
        s = cudnnBackendGetAttribute(knob[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_TYPE, CUDNN_TYPE_KNOB_TYPE, 1, &m, &type);
        if (s == CUDNN_STATUS_SUCCESS)
            s = cudnnBackendGetAttribute(knob[i], CUDNN_ATTR_KNOB_CHOICE_KNOB_VALUE, CUDNN_TYPE_INT64, 1, &m, &value);
        if (s == CUDNN_STATUS_SUCCESS && at >= 0 && (size_t)at < len)
            at += snprintf(tag + at, len - (size_t)at, "%s%d=%lld", i ? " k" : " (k", (int)type, (long long)value);
    }
    if (s == CUDNN_STATUS_SUCCESS && n > 0 && at >= 0 && (size_t)at < len)
        snprintf(tag + at, len - (size_t)at, ")");
    while (made > 0)
        cudnnBackendDestroyDescriptor(knob[--made]);
    return s == CUDNN_STATUS_SUCCESS && strlen(tag) + 1 >= len ? CUDNN_STATUS_BAD_PARAM : s; // cut short: no tag
}

// Whether cfg may run a's problem (its notes, see the top); its tag into tag, or when the tag
// cannot be read, one that no other candidate has (the i-th).
bool admissible(cudnnBackendDescriptor_t cfg, const loom__conv_engine_ask &a, int i, char *tag, size_t len)
{
    cudnnBackendDescriptor_t engine;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_ENGINE_DESCRIPTOR, &engine) != CUDNN_STATUS_SUCCESS)
        return false;
    int64_t n = 0;
    bool numerics = true, behaviour = true;
    const bool ok =
        cudnnBackendGetAttribute(cfg, CUDNN_ATTR_ENGINECFG_ENGINE, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &n, &engine) ==
            CUDNN_STATUS_SUCCESS &&
        has_note(engine, CUDNN_ATTR_ENGINE_NUMERICAL_NOTE, CUDNN_TYPE_NUMERICAL_NOTE, bad_numerics, a, &numerics) ==
            CUDNN_STATUS_SUCCESS &&
        has_note(engine, CUDNN_ATTR_ENGINE_BEHAVIOR_NOTE, CUDNN_TYPE_BEHAVIOR_NOTE, bad_behaviour, a, &behaviour) ==
            CUDNN_STATUS_SUCCESS &&
        !numerics && !behaviour;
    if (ok && tag_of(cfg, engine, tag, len) != CUDNN_STATUS_SUCCESS)
        snprintf(tag, len, "engine config %d of the heuristics", i);
    cudnnBackendDestroyDescriptor(engine);
    return ok;
}

// cfg's execution plan on h and its workspace.
cudnnStatus_t make_plan(cudnnHandle_t h, cudnnBackendDescriptor_t cfg, cudnnBackendDescriptor_t *plan, size_t *bytes)
{
    TRY(cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, plan));
    int64_t ws = 0, n = 0;
    cudnnStatus_t s = set(*plan, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    if (s == CUDNN_STATUS_SUCCESS)
        s = set_desc(*plan, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, cfg);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendFinalize(*plan);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendGetAttribute(*plan, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64, 1, &n, &ws);
    if (s == CUDNN_STATUS_SUCCESS && ws < 0)
        s = CUDNN_STATUS_BAD_PARAM;
    if (s != CUDNN_STATUS_SUCCESS) {
        cudnnBackendDestroyDescriptor(*plan);
        *plan = nullptr;
        return s;
    }
    *bytes = (size_t)ws;
    return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t execute(cudnnHandle_t h, cudnnBackendDescriptor_t plan, void *x, void *w, void *y, void *ws)
{
    cudnnBackendDescriptor_t vp;
    TRY(cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &vp));
    void *ptr[3] = {x, w, y};
    const int64_t uid[3] = {UID_X, UID_W, UID_Y};
    cudnnStatus_t s = set(vp, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 3, ptr);
    if (s == CUDNN_STATUS_SUCCESS)
        s = set(vp, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 3, uid);
    if (s == CUDNN_STATUS_SUCCESS)
        s = set(vp, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1, &ws);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendFinalize(vp);
    if (s == CUDNN_STATUS_SUCCESS)
        s = cudnnBackendExecute(h, plan, vp);
    cudnnBackendDestroyDescriptor(vp);
    return s;
}

// Runs plan (made with device's handle) on the stream of caller's handle, under the device's lock.
cudnnStatus_t run_on(int device, cudnnHandle_t caller, cudnnBackendDescriptor_t plan, void *x, void *w, void *y, void *ws)
{
    const cudnnHandle_t h = device_handle(device, false);
    cudaStream_t st;
    if (!h)
        return CUDNN_STATUS_NOT_INITIALIZED;
    TRY(cudnnGetStream(caller, &st));
    std::lock_guard<std::mutex> lock(handles.run[device]);
    TRY(cudnnSetStream(h, st));
    return execute(h, plan, x, w, y, ws);
}

// Device scratch of the timing runs: x, w, y at the problem's sizes and the largest workspace.
struct scratch {
    void *p[4] = {};
    cudaEvent_t ev[2] = {};
    scratch() = default;
    scratch(const scratch &) = delete;
    scratch &operator=(const scratch &) = delete;
    ~scratch()
    {
        for (void *q : p)
            if (q)
                cudaFree(q);
        for (cudaEvent_t e : ev)
            if (e)
                cudaEventDestroy(e);
        (void)cudaGetLastError(); // a failed allocation is not the next kernel's error
    }
    bool alloc(const size_t bytes[4], cudaStream_t st)
    {
        for (int i = 0; i < 4; i++)
            if (cudaMalloc(&p[i], bytes[i] ? bytes[i] : 1) != cudaSuccess || cudaMemsetAsync(p[i], 0, bytes[i], st) != cudaSuccess)
                return false;
        return cudaEventCreate(&ev[0]) == cudaSuccess && cudaEventCreate(&ev[1]) == cudaSuccess;
    }
};

// Each candidate's least time of RUNS runs after one to warm up into c->ms (-1: it failed);
// false when the scratch cannot be had (nothing timed).
bool time_candidates(const loom__conv_engine_ask &a, candidates *c)
{
    const loom__conv *cv = a.cv;
    const size_t el = loom_dtype_size(a.dt);
    size_t bytes[4] = {(size_t)(cv->n * cv->c * cv->h * cv->w) * el, (size_t)(cv->k * cv->cg * cv->r * cv->s) * el,
                       (size_t)(cv->n * cv->k * cv->p * cv->q) * el, 0};
    for (int i = 0; i < c->n; i++)
        if (c->plan[i] && c->bytes[i] > bytes[3])
            bytes[3] = c->bytes[i];
    cudaStream_t st;
    scratch s;
    if (cudnnGetStream(a.h, &st) != CUDNN_STATUS_SUCCESS || !s.alloc(bytes, st))
        return false;
    for (int i = 0; i < c->n; i++) {
        c->ms[i] = -1;
        if (!c->plan[i] || run_on(a.device, a.h, c->plan[i], s.p[0], s.p[1], s.p[2], s.p[3]) != CUDNN_STATUS_SUCCESS)
            continue;
        for (int r = 0; r < RUNS; r++) {
            float ms = -1;
            if (cudaEventRecord(s.ev[0], st) != cudaSuccess ||
                run_on(a.device, a.h, c->plan[i], s.p[0], s.p[1], s.p[2], s.p[3]) != CUDNN_STATUS_SUCCESS ||
                cudaEventRecord(s.ev[1], st) != cudaSuccess || cudaEventSynchronize(s.ev[1]) != cudaSuccess ||
                cudaEventElapsedTime(&ms, s.ev[0], s.ev[1]) != cudaSuccess) {
                c->ms[i] = -1;
                break;
            }
            if (c->ms[i] < 0 || ms < c->ms[i])
                c->ms[i] = ms;
        }
    }
    return cudaStreamSynchronize(st) == cudaSuccess;
}

} // namespace

loom__conv_plan_ref loom__conv_engine_pick(const loom__conv_engine_ask &a, size_t *bytes)
{
    loom__conv_plan *p = new (std::nothrow) loom__conv_plan;
    if (!p)
        return nullptr;
    loom__conv_plan_ref ref;
    try {
        ref = loom__conv_plan_ref(p); // deletes p if it throws
    } catch (...) {
        return nullptr;
    }
    const cudnnHandle_t h = device_handle(a.device, a.setup);
    cudnnBackendDescriptor_t graph;
    if (!h || make_graph(p, a, h, &graph) != CUDNN_STATUS_SUCCESS)
        return nullptr;
    p->device = a.device;
    candidates c;
    // a mode that fails leaves the other's (f64 problems may have neither)
    (void)heuristics(graph, CUDNN_HEUR_MODE_A, &c);
    (void)heuristics(graph, CUDNN_HEUR_MODE_FALLBACK, &c);
    int kept = 0, first = -1;
    for (int i = 0; i < c.n && (a.measure || first < 0); i++) {
        bool seen = false;
        if (!admissible(c.cfg[i], a, i, c.tag[i], sizeof c.tag[i]))
            continue;
        for (int j = 0; j < i && !seen; j++)
            seen = c.plan[j] && !strcmp(c.tag[j], c.tag[i]);
        if (seen || make_plan(h, c.cfg[i], &c.plan[i], &c.bytes[i]) != CUDNN_STATUS_SUCCESS)
            continue;
        if (c.bytes[i] > a.limit) {
            cudnnBackendDestroyDescriptor(c.plan[i]);
            c.plan[i] = nullptr;
            continue;
        }
        kept++;
        if (first < 0)
            first = i;
    }
    if (first < 0)
        return nullptr;
    int best = first;
    if (a.measure && kept > 1 && time_candidates(a, &c)) { // else (no scratch) the first, untimed
        best = -1;
        for (int i = 0; i < c.n; i++)
            if (c.plan[i] && c.ms[i] >= 0 && (best < 0 || c.ms[i] < c.ms[best]))
                best = i;
        if (best < 0) // none ran
            return nullptr;
        p->ms = c.ms[best];
        p->timed = kept;
    }
    p->d[p->n++] = c.cfg[best];
    p->d[p->n++] = c.plan[best];
    c.cfg[best] = c.plan[best] = nullptr;
    p->bytes = c.bytes[best];
    memcpy(p->tag, c.tag[best], sizeof p->tag);
    *bytes = p->bytes;
    return ref;
}

cudnnStatus_t loom__conv_engine_run(loom__conv_plan &p, cudnnHandle_t h, void *x, void *w, void *y, void *ws)
{
    return run_on(p.device, h, p.d[p.n - 1], x, w, y, p.bytes ? ws : nullptr);
}

void loom__conv_engine_describe(const loom__conv_plan &p, char *buf, size_t len)
{
    if (p.ms >= 0)
        snprintf(buf, len, "%s, workspace %zu B, %.4f ms, fastest of %d timed", p.tag, p.bytes, p.ms, p.timed);
    else
        snprintf(buf, len, "%s, workspace %zu B, first of cuDNN's heuristics that fits", p.tag, p.bytes);
}

#endif // LOOM_HAVE_CUDNN
