/* The executor's state (internal to actors/): what exec.c and the GPU part (actors/cuda/) share. */
#ifndef LOOM_ACTORS_EXEC_INTERNAL_H
#define LOOM_ACTORS_EXEC_INTERNAL_H

#include "actors/exec.h"
#include "graphs/parts.h"
#include "ops/cuda/cuda.h"
#include "runtime/runtime.h"

enum { STREAM_DEVICE = 0, STREAM_SOURCE = 1, STREAM_HOST = 2 }; /* of CPU actor ids */

/* What travels in a register buffer: the value's real sizes and where its data lives. */
typedef struct token {
    loom__value v;
    char *base;   /* the buffer (a source fed from the program points v elsewhere) */
    int has_dims; /* the piece's dynamic dims (logical sizes), from the source */
    int64_t dims[LOOM__MAX_DYN];
    loom__cuda_err *err; /* a copy back from a GPU: the device's error record, after the value in
                            the pinned buffer (LOOM__COPY_TRAILER) */
    /* GPU buffers read on another stream than the one that writes them: recorded after the
     * writer's work (ev_w) and after the readers' (ev_r), waited for by the other side */
    void *ev_w, *ev_r;
} token;

typedef struct actor_ctx {
    struct loom__exec *x;
    int task;
} actor_ctx;

struct loom_feeder {
    struct loom__exec *x;
    void *const *out; /* the source's output tokens, inputs x devices */
    int64_t step;
    char *msg; /* the source's message buffer: a refused feed says why there */
    size_t msg_size;
};

typedef struct loom__exec_cuda loom__exec_cuda;

/* A device chain run by one actor (GPUs: each piece's kernels replayed as one CUDA graph). */
typedef struct loom__fused {
    int device;
    int *tasks, ntasks; /* the chain, in order */
    int *in, nin;       /* registers it reads from outside, one input slot each (the control slot follows) */
    int *out, nout;     /* registers it writes that are read outside it, its outputs in this order */
    uint64_t aid;
    actor_ctx ctx;
    void *graphs;       /* the GPU part's captured steps */
} loom__fused;

struct loom__exec {
    loom_program *p;
    loom__plan *pl;
    loom__rt *rt;
    int n;              /* devices */
    char **dev_block;   /* by device: its shared block, then its own registers */
    char **param_block; /* by device: parameters' and optimizer state's parts */
    char *host_block;   /* host registers */
    token **tok;        /* by register: regst_num tokens */
    void ***bufs;       /* by register: pointers to its tokens, as the runtime takes them */
    uint64_t *aid;      /* by task */
    actor_ctx *ctx;     /* by task */
    int *input_k;       /* by tensor id: the input's index among the source's inputs, or -1 */
    int ninputs;
    int *input_id;      /* by input index: its tensor id */
    int *input_off;     /* by input index: its first part among the source's outputs (its parts follow) */
    int *input_n;       /* by input index: its parts */
    /* Without a data source on several devices or a GPU: each input's parts of the fed data, by
     * source output (on the device for GPUs), cut again when the data is fed anew. */
    loom__value *stat;
    uint64_t *stat_version;
    /* With a data source on several devices or a GPU: each input's logical value, staged on the
     * host before the source cuts it into parts. */
    token *stage;
    char *stage_block;
    loom__exec_cuda *cuda; /* GPU state; NULL on CPU devices */
    loom__fused **fused;   /* by device: its chain fused into one actor, or NULL */
    int *slot_of;          /* by register: its input slot in the fused chain that reads it, or -1 */
    int *outidx_of;        /* by register: its output index in the fused chain that writes it, or -1 */
    int64_t last_piece;    /* the last piece of the run in progress, or -1 when a data source decides */
};

/* 1 when the sink of kept tensor t copies piece `piece` to the host: the loss of every training
 * step (the loss history), and the rest only at the run's last piece, which is all a fetch can
 * see (every piece when a data source may end the run early). */
int loom__exec_keeps(const loom__exec *x, const loom_tensor *t, int64_t piece);

static inline int loom__exec_on_gpu(const loom__exec *x) { return x->pl->kind == LOOM_DEVICE_CUDA; }
/* One CPU device: parameters, fed data and kept values are the program's own storage. */
static inline int loom__exec_in_program(const loom__exec *x) { return x->n == 1 && !loom__exec_on_gpu(x); }
/* The act of a task on a CPU device or the host (NULL: a copy, which only GPUs have). */
loom__act_fn loom__exec_cpu_act(const loom__task *k);

/* The concrete logical shape of t at a piece whose dims dims_from carries (NULL: none); -1, or the
 * index of a dynamic dim that nothing binds. */
int loom__exec_resolve(const loom_graph *g, const loom_tensor *t, const token *dims_from, int64_t *shape);
/* The first of an act's nin input tokens that carries the piece's dims, or NULL. */
const token *loom__exec_dims_of(const loom__act *a, int nin);
/* Sets out's shape to its register's part of t at this piece (the logical shape from the dims,
 * cut by the register's SBP) and carries the dims on; LOOM_ERR_SHAPE naming a dim nothing binds. */
loom_status loom__exec_shape_out(const loom__exec *x, const loom_tensor *t, const loom__regst *rg, const token *dims,
                                 token *out, loom__act *a);
/* Points a CSR token at its three parts inside the buffer at base, for nrows rows and nnz entries. */
void loom__exec_csr_layout(token *k, char *base, int64_t nrows, int64_t nnz, loom_dtype vdtype);
/* The base pointer of buffer b of register r, NULL for registers without plan memory. */
char *loom__exec_buffer(const loom__exec *x, int r, int b);
/* A parameter's or optimizer state's part on device d, in the plan's param area (device memory on
 * a GPU). */
loom__value loom__exec_param_part(const loom__exec *x, const loom_tensor *t, int d);
/* Part j of logical input k (its value v) under the input's SBP, into token out, whose base is
 * host memory with room for it. */
void loom__exec_cut_input(const loom__exec *x, const loom__value *v, int k, int j, token *out);

#ifdef LOOM_HAVE_CUDA
/* The GPU part (actors/cuda/exec.c). */
loom_status loom__exec_cuda_new(loom__exec *x);  /* devices, blocks, events, workspaces */
void loom__exec_cuda_free(loom__exec *x);
loom__act_fn loom__exec_cuda_act(const loom__exec *x, const loom__task *k); /* the act of a task on a GPU */
int loom__exec_cuda_deferred(const loom__task *k); /* acts it defers at most at once */
int loom__exec_cuda_fusable(const loom__exec *x, int d); /* 1: run device d's chain as one actor */
loom_status loom__exec_cuda_step_act(void *ctx, loom__act *a); /* a fused chain's act */
loom_status loom__exec_cuda_run_begin(loom__exec *x); /* fed data and the step onto the devices */
loom_status loom__exec_cuda_run_end(loom__exec *x, loom_status st); /* waits for the devices; their errors */
/* Copies a parameter's or state's part between the host and its device. */
loom_status loom__exec_cuda_copy(loom__exec *x, void *dst, const void *src, size_t bytes);
/* The message of a device error record, naming the task's op; LOOM_OK when it holds none. */
loom_status loom__exec_cuda_err(const loom__exec *x, const loom__cuda_err *e, char *msg, size_t len);
#endif

#endif
