// cuDNN's graph (backend) API for the convolutions of ops/cuda/conv.cu (C++ only): an engine
// chosen for one problem, finalized into an execution plan, and run. Included by conv.cu and
// conv_engine.cu.
// defines: loom__conv_engine_pick, loom__conv_engine_run, loom__conv_engine_describe
#ifndef LOOM_OPS_CUDA_CONV_ENGINE_CUH
#define LOOM_OPS_CUDA_CONV_ENGINE_CUH

#ifdef LOOM_HAVE_CUDNN

#include <cudnn.h>

#include <memory>

#include "ops/shared/conv.h"

// An execution plan with every descriptor it was made from (opaque; conv_engine.cu). Shared:
// the choice table holds one reference and each call running it another, so a plan evicted from
// the table lives until its last call returns.
struct loom__conv_plan;
typedef std::shared_ptr<loom__conv_plan> loom__conv_plan_ref;

// One problem to choose an engine for: op (conv2d, conv2d_grad_input, conv2d_grad_weight) on cv
// in dt (f32 or f64), its tensors' addresses aligned to align bytes.
struct loom__conv_engine_ask {
    cudnnHandle_t h; // the caller's: its stream is the one timed on
    int device;      // the CUDA device current, whose handle makes and runs the plans
    loom_op op;
    const loom__conv *cv;
    loom_dtype dt;
    int64_t align;
    bool strict;  // f32 on FMA math: no tensor cores
    bool det;     // LOOM_DETERMINISTIC: deterministic engines only, in heuristic order
    bool setup;   // where a plan is set up: may allocate (the device's handle, once)
    bool measure; // time the candidates (launches, allocations and a synchronisation)
    size_t limit; // workspace bytes at most
};

// The engine for a: cuDNN's heuristics (mode A, then its fallback list) in their order, less those
// whose notes conflict with the math (see conv_engine.cu), runtime-compiled ones and those needing
// more than a.limit bytes of workspace; with a.measure the fastest of them, else the first. NULL
// when none (or out of memory). *bytes gets its workspace.
loom__conv_plan_ref loom__conv_engine_pick(const loom__conv_engine_ask &a, size_t *bytes);

// Runs plan p on h's stream: x [n, c, h, w], w [k, cg, r, s], y [n, k, p, q] as the op reads and
// writes them (dx, dy and dw in their places), ws of the plan's bytes. A host call; serialised
// per device, as the plans of a device share its handle (conv_engine.cu).
cudnnStatus_t loom__conv_engine_run(loom__conv_plan &p, cudnnHandle_t h, void *x, void *w, void *y, void *ws);

// "engine 12 (k2=1 k3=0), workspace 0 B, 0.041 ms, fastest of 7 timed" into buf.
void loom__conv_engine_describe(const loom__conv_plan &p, char *buf, size_t len);

#endif // LOOM_HAVE_CUDNN

#endif
