/* The actor runtime: threads, lock-free message rings, the register protocol, termination,
 * errors, cancel and tracing. It knows nothing of graphs, ops or tensors; the physical plan builds
 * actors on it.
 *
 * A short tour:
 *
 *     loom__rt *rt = loom__rt_new(NULL);                          // defaults; $LOOM_TRACE honoured
 *     void *bufs[2] = {blk0, blk1};                               // caller-owned register buffers
 *     loom__rt_add_actor(rt, &(loom__actor_desc){
 *         .id = loom__aid(0, LOOM__RT_DEV_CPU, 0, 0, 7), .name = "matmul",
 *         .act = my_act, .ctx = my_state, .nin = 2, .nout = 1,
 *         .out = (loom__regst_desc[]){{.regst_num = 2, .bufs = bufs}}});
 *     ... more actors ...
 *     loom__rt_connect(rt, producer_id, 0, matmul_id, 1);         // producer's register 0 -> input 1
 *     if (loom__rt_run(rt, 100) != LOOM_OK)                       // 100 pieces (steps)
 *         fprintf(stderr, "%s\n", loom__rt_error(rt));
 *     loom__rt_free(rt);
 *
 * Protocol (docs/runtime.md has the long form). An actor has nin input slots and nout output
 * registers; a register has regst_num caller-provided buffers and any number of consumers. An actor
 * acts when every input slot holds a ready version and every output register has a free buffer. Its
 * callback reads the inputs and writes one buffer of each output register; then the runtime sends
 * REQ (this buffer is ready) to every consumer and ACK (I am done with your buffer) to the producer of
 * every input. A buffer is free again once every consumer has acked it. Each version carries the
 * piece (step) number; all inputs of an act carry the same one. Sources (nin == 0) act once per piece
 * until their callback reports end of data or the run's piece count is reached, then send EOD; an
 * actor whose input has seen EOD and holds no more versions forwards EOD and is done. The run ends
 * when every actor is done (so every sink has seen every piece and every last update has run).
 * A failing callback or loom__rt_cancel drains the run: the sources produce no new piece, the
 * failed actor ends as if its data had ended (its act's buffers go back), and every piece begun
 * completes wherever it does not need the failed act; so a training step is either done on every
 * actor after the failure's piece or not begun. Only a broken protocol, a thread that cannot start
 * or loom__rt_fail (a device's error) stop the threads at once.
 *
 * Threads: one worker per (rank, device kind, device index, stream) that the actors use, so the
 * thread of an actor follows from its id. All state of an actor is touched by its own thread only;
 * threads talk through bounded MPSC rings (concurrencykit) sized from the plan so an enqueue never
 * fails, and sleep on an event count when idle. Correctness never depends on threads running at the
 * same time. Threads are started by loom__rt_run and joined before it returns.
 *
 * Not thread-safe: building, running and freeing are one caller's business; only loom__rt_cancel,
 * loom__rt_complete and loom__rt_fail may be called from other threads (during a run). */
#ifndef LOOM_RUNTIME_RUNTIME_H
#define LOOM_RUNTIME_RUNTIME_H

#include <loom/core.h>

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------
 * Actor ids: rank 16 | device kind 5 | device index 7 | stream 15 | task 21 bits (OneFlow's layout),
 * most significant first. Tasks should be numbered densely per stream (0, 1, 2 ...): a thread
 * finds its actors by task number in an array.
 * ------------------------------------------------------------------------------------------- */
#define LOOM__AID_TASK_BITS 21
#define LOOM__AID_STREAM_BITS 15
#define LOOM__AID_DEV_BITS 7
#define LOOM__AID_KIND_BITS 5
#define LOOM__AID_RANK_BITS 16

#define LOOM__AID_STREAM_SHIFT LOOM__AID_TASK_BITS
#define LOOM__AID_DEV_SHIFT (LOOM__AID_STREAM_SHIFT + LOOM__AID_STREAM_BITS)
#define LOOM__AID_KIND_SHIFT (LOOM__AID_DEV_SHIFT + LOOM__AID_DEV_BITS)
#define LOOM__AID_RANK_SHIFT (LOOM__AID_KIND_SHIFT + LOOM__AID_KIND_BITS)

#define LOOM__AID_FIELD(id, shift, bits) ((unsigned)(((id) >> (shift)) & ((UINT64_C(1) << (bits)) - 1)))

/* Device kinds of the id's kind field; the names appear in traces ("cpu:0/s1"). */
enum loom__rt_dev_kind { LOOM__RT_DEV_CPU = 0, LOOM__RT_DEV_CUDA = 1, LOOM__RT_DEV_KIND_COUNT };

/* Packs an actor id; each field is truncated to its width. */
static inline uint64_t loom__aid(unsigned rank, unsigned kind, unsigned dev, unsigned stream, unsigned task)
{
    return ((uint64_t)(rank & 0xffffu) << LOOM__AID_RANK_SHIFT) | ((uint64_t)(kind & 0x1fu) << LOOM__AID_KIND_SHIFT) |
           ((uint64_t)(dev & 0x7fu) << LOOM__AID_DEV_SHIFT) | ((uint64_t)(stream & 0x7fffu) << LOOM__AID_STREAM_SHIFT) |
           (uint64_t)(task & 0x1fffffu);
}
static inline unsigned loom__aid_rank(uint64_t id) { return LOOM__AID_FIELD(id, LOOM__AID_RANK_SHIFT, LOOM__AID_RANK_BITS); }
static inline unsigned loom__aid_kind(uint64_t id) { return LOOM__AID_FIELD(id, LOOM__AID_KIND_SHIFT, LOOM__AID_KIND_BITS); }
static inline unsigned loom__aid_dev(uint64_t id) { return LOOM__AID_FIELD(id, LOOM__AID_DEV_SHIFT, LOOM__AID_DEV_BITS); }
static inline unsigned loom__aid_stream(uint64_t id) { return LOOM__AID_FIELD(id, LOOM__AID_STREAM_SHIFT, LOOM__AID_STREAM_BITS); }
static inline unsigned loom__aid_task(uint64_t id) { return LOOM__AID_FIELD(id, 0, LOOM__AID_TASK_BITS); }
/* rank | kind | dev | stream: equal for exactly the actors that share a thread. */
static inline uint64_t loom__aid_stream_key(uint64_t id) { return id >> LOOM__AID_TASK_BITS; }

/* ---------------------------------------------------------------------------------------------
 * Messages: 32 bytes, copied by value through the rings; nothing on the message path allocates or
 * locks. Stop and cancel are not messages: they are a flag plus a wake-up of every thread, so the
 * rings never need room for them.
 * ------------------------------------------------------------------------------------------- */
enum loom__rt_msg_kind {
    LOOM__MSG_REQ = 1, /* producer -> consumer: buffer `buf` of your input slot `reg` holds piece `piece` */
    LOOM__MSG_ACK,     /* consumer -> producer: I am done with buffer `buf` of your register `reg` */
    LOOM__MSG_EOD,     /* producer -> consumer: no version will follow on your input slot `reg` */
    LOOM__MSG_DONE,    /* anyone -> actor: your oldest deferred act has completed (loom__rt_complete) */
};

typedef struct loom__rt_msg {
    uint64_t dst, src; /* actor ids */
    int64_t piece;
    uint32_t buf;      /* buffer index within the register */
    uint16_t reg;      /* REQ/EOD: the consumer's input slot; ACK: the producer's output register */
    uint8_t kind;      /* enum loom__rt_msg_kind */
    uint8_t pad_;
} loom__rt_msg;

/* ---------------------------------------------------------------------------------------------
 * Acting.
 * ------------------------------------------------------------------------------------------- */
typedef struct loom__rt loom__rt;

/* What an act callback sees. The runtime fills everything above the line; the callback may set the
 * fields below it. Pointers stay valid for the duration of the call only. */
typedef struct loom__act {
    loom__rt *rt;
    uint64_t id;              /* the acting actor */
    const char *name;
    int thread;               /* worker thread index */
    int64_t piece;            /* the piece of the inputs (sources, initial emits: of the outputs) */
    int64_t out_piece;        /* the piece the outputs will carry: piece + initial_emits */
    int initial;              /* 1 for one of the initial emits (inputs absent: in[i] == NULL) */
    int nin, nout;
    void *const *in;          /* in[i]: the buffer of input slot i (read only, by convention) */
    const int64_t *in_piece;  /* in_piece[i]: the piece of that version (all equal, see above) */
    void *const *out;         /* out[j]: the buffer chosen in output register j */
    const uint32_t *out_buf;  /* out_buf[j]: its index in the register */
    char *msg;                /* room for an error message (msg_size bytes, starts empty) */
    size_t msg_size;
    int can_defer;            /* the actor has max_deferred > 0 */
    int repeat;               /* an actor with hold > 1: which act of its input version this is (0 first) */
    /* ---- set by the callback ---- */
    int eod;                  /* sources: nothing was produced; end of data (outputs discarded) */
    int deferred;             /* set through loom__act_defer: completes later (GPU) */
} loom__act;

/* Acts once. Returns LOOM_OK, or an error that stops the run; the message the callback writes to
 * a->msg (snprintf) becomes the run's message, prefixed with the actor's name and piece. */
typedef loom_status (*loom__act_fn)(void *ctx, loom__act *a);

/* Marks the current act as deferred: the runtime keeps its inputs and output buffers and sends
 * nothing until loom__rt_complete(rt, a->id, ...) is called, from any thread, once per deferred act
 * and in the order of the acts. Holds only if the callback then returns LOOM_OK (an error return
 * means no completion will come). Needs desc.max_deferred > 0: LOOM_ERR_INVALID otherwise, and the
 * act is not deferred. */
loom_status loom__act_defer(loom__act *a);

/* ---------------------------------------------------------------------------------------------
 * Building.
 * ------------------------------------------------------------------------------------------- */
#define LOOM__RT_MAX_REGST 1024 /* buffers per register */
#define LOOM__RT_MAX_SLOTS 4096 /* inputs or output registers per actor */

/* An output register: regst_num buffers (0 means 2: double buffering). bufs may be NULL for a
 * register that carries only control (every buffer pointer is then NULL); the runtime never
 * allocates, reads or frees buffer memory. */
typedef struct loom__regst_desc {
    int regst_num;
    void *const *bufs;
} loom__regst_desc;

typedef struct loom__actor_desc {
    uint64_t id;               /* unique; its rank must be the runtime's */
    const char *name;          /* copied; traces and messages use it */
    loom__act_fn act;          /* NULL: a no-op act */
    void *ctx;
    int nin;                   /* input slots, each connected once with loom__rt_connect */
    int nout;                  /* output registers, described by out[0 .. nout-1] */
    const loom__regst_desc *out; /* copied; NULL: every register double-buffered, bufs NULL */
    /* Versions emitted at the start of each run before any input is consumed (a parameter holder:
     * emit version t = 0, then for each piece t consume the gradient of t to emit t + 1). Such an
     * actor closes a cycle; it needs nin > 0. Output pieces are input pieces + initial_emits. */
    int initial_emits;
    int max_deferred;          /* deferred acts that may be in flight at once (0: none) */
    /* An actor of another rank: it acts there; here it stands for its end of the edges with this
     * rank's actors, which the communication thread carries (runtime/comm/mpi/). Its output
     * registers' bufs are this rank's mirrors of its buffers, filled by the transport through the
     * runtime's wire (loom__rt_set_wire) before its REQs are delivered. act is unused, and so are
     * hold, group, gather and in_place (refused: its rank runs its groups of pieces, and here they
     * show only in the pieces its messages carry). */
    int remote;
    /* Actors whose acts are not one per piece (a step cut into micro-batches: the pieces of a
     * step come in groups). None of them may defer acts.
     * hold: each input version serves `hold` acts (0 means 1): the first pops nothing, the last
     *   pops it and acks it; act j of a version emits piece in + initial_emits + j. A parameter
     *   holder emits each version once per micro-batch so.
     * group: pieces come in groups of `group` (0 means 1), group g being pieces g*group ..
     *   g*group + group - 1. A source that drains ends only at a group's end (the step begun
     *   completes). With gather, an actor emits once per group: an act on piece p with
     *   (p + 1) % group != 0 gives its output buffers back unsent (the next act takes the same
     *   ones first), and the act on the group's last piece emits them carrying the group's first
     *   piece (+ initial_emits). A gradient accumulates over the micro-batches of a step so.
     * in_place: a new input version is taken only when every buffer of every output register is
     *   free (nobody reads anything the actor emitted): the actor may then write them in place. */
    int hold;
    int group;
    int gather;
    int in_place;
} loom__actor_desc;

/* How register buffers travel between ranks: the caller's description of its own buffers (the
 * runtime never reads them otherwise). pack describes buffer buf for rank `rank`: a header of at
 * most LOOM__WIRE_HEAD bytes into head (its length returned) and up to three ranges of bytes (what
 * that rank's actors read of it); room gives, from that header (hlen bytes), the ranges of a mirror
 * buffer that the same data lands in (with their capacities); unpack applies a received header to
 * a mirror once its ranges have landed. */
#define LOOM__WIRE_HEAD 1024
typedef struct loom__rt_wire {
    void *ctx;
    size_t (*pack)(void *ctx, void *buf, int rank, void *head, const void *range[3], size_t len[3]);
    void (*room)(void *ctx, void *buf, const void *head, size_t hlen, void *range[3], size_t cap[3]);
    void (*unpack)(void *ctx, void *buf, const void *head, size_t len);
} loom__rt_wire;
/* Sets the wire of the buffers of the runtime's registers (before the first run). */
void loom__rt_set_wire(loom__rt *rt, const loom__rt_wire *w);

/* What the caller's devices do while a run waits for them and when it stops (every entry
 * optional). poll is called about every 100 ms while loom__rt_run waits for its threads or for
 * deferred completions, on the thread that called it (draining: the run drains, after a failed
 * act or a cancel); a status other than LOOM_OK stops the run at once with msg (a device failed
 * on its own, or device work a draining run waits for will never end). stopped is called once per
 * run that failed or was cancelled, after its threads are joined and before the wait for deferred
 * completions: it must make every deferred completion come (end device work that waits for a
 * device that stopped, e.g. a collective a peer never joined). */
typedef struct loom__rt_hooks {
    void *ctx;
    loom_status (*poll)(void *ctx, int draining, char *msg, size_t len);
    void (*stopped)(void *ctx);
} loom__rt_hooks;
/* Sets the hooks (between runs). */
void loom__rt_set_hooks(loom__rt *rt, const loom__rt_hooks *h);

typedef struct loom__rt_opts {
    int rank;                  /* this process's rank: every actor's id must carry it */
    int pin;                   /* pin worker threads to cores with hwloc (1 in LOOM__RT_OPTS_INIT) */
    int spin;                  /* polls of an empty ring before sleeping (-1: default) */
    const char *trace;         /* write a Chrome trace after each run to this pattern's file (%p,
                                  %n, %%: loom__trace_path); NULL: $LOOM_TRACE */
    int trace_record;          /* record acts in memory even without a trace file (tests) */
} loom__rt_opts;
#define LOOM__RT_OPTS_INIT {.rank = 0, .pin = 1, .spin = -1, .trace = NULL, .trace_record = 0}

/* A new, empty runtime; opts NULL means LOOM__RT_OPTS_INIT. NULL only when out of memory. */
loom__rt *loom__rt_new(const loom__rt_opts *opts);
/* Joins nothing (no thread outlives a run) and frees everything the runtime allocated; NULL is a
 * no-op. Buffers given in descs stay the caller's. */
void loom__rt_free(loom__rt *rt);

/* Adds an actor. Mistakes (duplicate id, bad counts) are kept as the runtime's first error and
 * returned here and by loom__rt_run. Only before the first run. */
loom_status loom__rt_add_actor(loom__rt *rt, const loom__actor_desc *d);
/* Connects output register `reg` of `producer` to input slot `slot` of `consumer`. Ids are
 * resolved at the first run, which reports unknown ids or unconnected slots. */
loom_status loom__rt_connect(loom__rt *rt, uint64_t producer, int reg, uint64_t consumer, int slot);

/* Every process of the job passes its plan's hash: LOOM_OK when all are equal, else
 * LOOM_ERR_INVALID with msg naming each rank whose plan differs from rank 0's. A collective: every
 * rank calls it (runtime/comm/mpi/; LOOM_OK at once in a job of one process). */
loom_status loom__net_same_plan(uint64_t hash, char *msg, size_t len);

/* 1 when this process belongs to a job that Loom's MPI layer started (loom_dist_init), of one
 * process or more; 0 without MPI. */
int loom__net_ready(void);

/* Sends bytes at buf from rank root to every process of the job (a collective; a no-op in a job
 * of one process). LOOM_ERR_RUNTIME with msg when MPI fails. */
loom_status loom__net_bcast(void *buf, size_t bytes, int root, char *msg, size_t len);

/* Every process of the job passes its status st (with msg, when not LOOM_OK): LOOM_OK when every
 * one is LOOM_OK; else the failing ones keep theirs and the others return the status of the first
 * failing rank, with msg "rank R: <its message>". A collective (st at once in a job of one
 * process). */
loom_status loom__net_all_ok(loom_status st, char *msg, size_t len);

/* Bytes of register buffers this process has sent to other ranks since it started (what the
 * communication threads' REQs carried: the wire's ranges); 0 without MPI. Read between runs. */
int64_t loom__net_data_sent(void);

/* LOOM_NET_TIMEOUT in nanoseconds (10 s when unset or not a number of seconds; always 10 s
 * without MPI). */
int64_t loom__net_timeout_ns(void);

/* ---------------------------------------------------------------------------------------------
 * Running.
 * ------------------------------------------------------------------------------------------- */

/* Runs pieces until every actor is done: sources stop after max_pieces pieces (0: when their
 * callback sets eod). Piece numbers continue from the previous run (0 the first time). The first
 * call also validates and lays out the plan (LOOM_ERR_INVALID naming the actor: unknown ids,
 * unconnected slots, a cycle without initial emits, an actor no source feeds). Returns LOOM_OK, the
 * first failing callback's status, LOOM_ERR_RUNTIME "cancelled", or LOOM_ERR_RUNTIME for a thread
 * that could not start; the message is in loom__rt_error. A failed run may be run again: every run
 * starts from empty queues and free buffers. */
loom_status loom__rt_run(loom__rt *rt, int64_t max_pieces);

/* Ends the run in progress (or the next one, if none is running) with LOOM_ERR_RUNTIME "cancelled":
 * the run drains (the pieces begun complete; a run not begun yet ends at once). Safe from any
 * thread and from a signal handler: one atomic store. */
void loom__rt_cancel(loom__rt *rt);
/* Takes back a cancel that no run has consumed yet: 1 if there was one. */
int loom__rt_take_cancel(loom__rt *rt);
/* Sets the piece the next run starts at (between runs only). */
void loom__rt_set_next_piece(loom__rt *rt, int64_t piece);

/* Records an error (first one wins) and stops the run at once; for code outside an act callback,
 * e.g. a device callback. Safe from any thread. Returns st. */
loom_status loom__rt_fail(loom__rt *rt, loom_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Completes the oldest deferred act of `actor`: its REQs and ACKs go out on the actor's thread.
 * Safe from any thread. A non-OK st fails the run with msg (NULL: the status text). loom__rt_run
 * does not return before every deferred act is completed. */
void loom__rt_complete(loom__rt *rt, uint64_t actor, loom_status st, const char *msg);

/* The message of the last failure: of a building call or of the last run ("" after a successful
 * run); valid until the next run. */
const char *loom__rt_error(const loom__rt *rt);

/* The piece the next run starts at. */
int64_t loom__rt_next_piece(const loom__rt *rt);
/* Worker threads of the plan (0 before the first run). */
int loom__rt_thread_count(const loom__rt *rt);
/* The worker thread index an actor runs on, or -1 (unknown id, or before the first run). */
int loom__rt_thread_of(const loom__rt *rt, uint64_t actor);
/* Acts of an actor in the last run (initial emits included), or -1 for an unknown id. */
int64_t loom__rt_actor_acts(const loom__rt *rt, uint64_t actor);
/* Counters of worker thread ti in the last run: messages handled and times it went to sleep; its
 * name ("cpu:0/s0") when name is not NULL. 0 when ti is out of range. */
int loom__rt_thread_stats(const loom__rt *rt, int ti, int64_t *msgs, int64_t *sleeps, const char **name);

/* ---------------------------------------------------------------------------------------------
 * Tracing. With a trace path (opts.trace or $LOOM_TRACE) or opts.trace_record, each act of the
 * last run is kept: thread, actor, piece, begin and end (CLOCK_MONOTONIC ns). With a path, a Chrome
 * trace (chrome://tracing, ui.perfetto.dev) is written after every run to the file its pattern
 * names for the run (%p the process id, %n the run's number in the process, %% a '%'), replacing
 * a file of that name (see loom__rt_trace_write); a trace that cannot be written never fails the
 * run, a pattern with another conversion fails the first run before it runs anything.
 * ------------------------------------------------------------------------------------------- */
typedef struct loom__rt_event {
    const char *actor;         /* the actor's name, owned by the runtime */
    uint64_t id;
    int thread;
    int64_t piece;             /* the act's piece (loom__act.piece) */
    int initial;
    int64_t begin_ns, end_ns;
} loom__rt_event;

/* Recorded events of the last run, ordered by thread, then time. */
size_t loom__rt_trace_count(const loom__rt *rt);
/* The i-th event; 0 when i is out of range. */
int loom__rt_trace_get(const loom__rt *rt, size_t i, loom__rt_event *e);
/* The act of the named actor at `piece` (not an initial emit); 1 when found. */
int loom__rt_trace_find(const loom__rt *rt, const char *actor, int64_t piece, loom__rt_event *e);
/* Writes the recorded events as a Chrome trace: a new or regular file via path.tmp and a rename, a
 * character device or FIFO (/dev/null, /dev/stdout, a pipe) in place; a symbolic link, a directory
 * or another kind of file is refused, never replaced. Every write and the close are checked.
 * LOOM_ERR_IO with the message kept on the runtime. */
loom_status loom__rt_trace_write(loom__rt *rt, const char *path);
/* Why the last run's trace file could not be written, or NULL. It does not change the run's
 * status (the run's pieces were done); the first such failure is also printed to stderr. */
const char *loom__rt_trace_error(const loom__rt *rt);

/* ---------------------------------------------------------------------------------------------
 * Private to the runtime/ sources (which define LOOM__RT_PRIVATE): the state the files share. Users of the
 * API above need none of it.
 * ------------------------------------------------------------------------------------------- */
#ifdef LOOM__RT_PRIVATE
#include "runtime/ring.h"
#include "runtime/trace.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>

/* The other end of an edge, resolved at layout so the message path looks nothing up. */
typedef struct loom__rt_peer {
    uint64_t id;
    uint32_t thread;          /* the worker that runs it */
    uint16_t reg;             /* a consumer: its input slot; a producer: its output register */
} loom__rt_peer;

typedef struct loom__rt_ver {
    int64_t piece;
    uint32_t buf;
} loom__rt_ver;

typedef struct loom__rt_in {
    loom__rt_peer producer;
    void *const *bufs;        /* the producer register's buffers: written at build, read-only after */
    loom__rt_ver *q;          /* ready versions, a FIFO of cap = the producer's regst_num */
    uint32_t cap, head, n;
    int eod;                  /* EOD seen; done once q drains */
    int with_data;            /* a remote consumer's slot: its REQs carry the buffer to its rank
                                 (the register's first consumer there; the others' REQs follow it) */
} loom__rt_in;

typedef struct loom__rt_out {
    uint32_t regst_num;
    void **bufs;
    loom__rt_peer *cons;      /* consumers, ncons of them */
    uint32_t ncons;
    uint32_t *pending;        /* per buffer: ACKs still owed; 0 when free or being written */
    uint32_t *freeq;          /* free buffer indices, a FIFO of regst_num */
    uint32_t free_head, free_n;
} loom__rt_out;

typedef struct loom__actor {
    uint64_t id;
    char *name;
    loom__act_fn fn;
    void *ctx;
    uint32_t index;           /* in the runtime's actor array (trace records name actors by it) */
    uint32_t thread;
    int nin, nout, initial_emits, max_deferred;
    int remote;               /* of another rank: its thread is the communication thread */
    int hold, group, gather, in_place; /* see loom__actor_desc; hold and group at least 1 */
    loom__rt_in *in;
    loom__rt_out *out;
    /* Acts taken but not yet completed (a ring of nrec = max(1, max_deferred) records): the input
     * versions each consumed and the output buffers it took, so completing needs no other state. */
    loom__rt_ver *rec_in;     /* nrec * nin */
    uint32_t *rec_out;        /* nrec * nout */
    int64_t *rec_piece;       /* nrec: the piece its outputs carry */
    uint8_t *rec_flags;       /* nrec: LOOM__REC_READY, LOOM__REC_INITIAL */
    int nrec, rec_head, rec_n;
    /* per-act scratch for the callback's view */
    void **in_ptr, **out_ptr;
    int64_t *in_piece;
    /* run state, reset by loom__actor_reset */
    int done;                 /* EOD sent; REQs that still come are acked at once */
    int ending;               /* no act can follow: done once the records drain */
    int to_emit;              /* initial emits left */
    int held;                 /* acts done on the input version at the heads (hold > 1) */
    int64_t next_piece;       /* sources and initial emits: the next piece to produce */
    int64_t acts;
} loom__actor;

typedef struct loom__rt_thread {
    loom__ring ring;          /* ck_ring pads its producer and consumer words apart */
    _Alignas(64) struct ck_ec32 ec; /* producers bump it after posting: a line of its own */
    _Alignas(64) loom__fifo fifo;
    loom__rt *rt;
    uint32_t index;
    uint64_t key;             /* loom__aid_stream_key of its actors */
    pthread_t pth;
    int started;
    loom__actor **actors;     /* those it runs */
    int nactors;
    loom__actor **by_task;    /* task number -> actor, ntask entries */
    uint32_t ntask;
    int64_t msgs;             /* messages handled in the last run */
    int64_t sleeps;           /* times it went to sleep in the last run */
    loom__trace_buf trace;
    int net;                  /* the communication thread (the last one): it carries the remote actors' messages */
    char name[40];
    char msg[512];            /* scratch for a failing callback's message */
} loom__rt_thread;

struct loom__rt {
    loom__rt_opts opts;
    char *trace_path;
    int tracing;
    int spin;

    loom__actor **actors;     /* sorted by id after layout */
    int nactors, cap;
    struct loom__rt_edge { uint64_t producer, consumer; int reg, slot; } *edges;
    int nedges, edge_cap;
    loom_status build_status; /* the first building mistake, kept in build_msg */
    char build_msg[512];
    int laid_out;

    loom__rt_thread *threads;
    int nthreads;             /* workers, then the communication thread when there are remote actors */
    int nlocal;               /* actors of this rank (the others are remote) */
    loom__rt_wire wire;
    loom__rt_hooks hooks;
    struct loom__net *net;    /* the communication thread's state (runtime/comm/mpi/) */
    int64_t runs;             /* runs begun: every rank runs the same sequence of them */
    _Atomic int hard;         /* stopped at once (loom__rt_fail), not drained */
    _Atomic int quiesce;      /* the workers have ended: the communication thread stops posting to them ... */
    _Atomic int quiet;        /* ... and says it has */
    _Atomic int leftovers;    /* the REQs the workers left are acked: the communication thread may end */
    _Atomic int nthreads_live; /* threads[] may be woken by loom__rt_cancel once this is set */

    _Atomic int stop;         /* the run must end: done, failed or cancelled */
    _Atomic int live;         /* actors not yet done */
    _Atomic int err_state;    /* 0 none, 1 being written, 2 written: first error wins */
    _Atomic int cancel_req;
    _Atomic int draining;     /* a callback failed: sources end their data, the pieces begun complete */
    _Atomic int deferred;     /* deferred acts not yet completed */
    loom_status status;
    char msg[512];

    int64_t next_piece, run_first, run_end;
    int64_t t0_ns;            /* start of the last run */

    void *topo;               /* hwloc_topology_t, loaded at the first run when pinning */
    int ncores;
    _Atomic int pin_warned;
    _Atomic int trace_warned;
    char trace_msg[512];      /* why the last run's trace was not written, "" when it was */
};

/* actor.c */
loom_status loom__actor_new(const loom__actor_desc *d, loom__actor **out, char *msg, size_t msg_size);
loom_status loom__actor_layout(loom__actor *a); /* after edges are resolved: queues and scratch */
void loom__actor_free(loom__actor *a);
void loom__actor_reset(loom__actor *a, int64_t first_piece);
void loom__actor_start(loom__rt_thread *t, loom__actor *a);
void loom__actor_on_msg(loom__rt_thread *t, loom__actor *a, const loom__rt_msg *m);

/* runtime.c */
/* Keeps the first building mistake; loom__rt_run returns it. */
loom_status loom__rt_build_fail(loom__rt *rt, loom_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* layout.c */
/* Index of the actor with this id in the sorted array, or -1. */
int loom__rt_find_actor(const loom__rt *rt, uint64_t id);
/* Sorts the actors into threads, resolves the edges, checks the graph and sizes the queues; a
 * mistake is kept as the building mistake. */
loom_status loom__rt_layout(loom__rt *rt);

/* comm/mpi/mpi.c (absent.c without MPI): the communication thread. */
/* Its state for a runtime with remote actors (at layout; LOOM_ERR_UNSUPPORTED without MPI). */
loom_status loom__net_layout(loom__rt *rt);
void loom__net_free(loom__rt *rt);
/* The thread's body: carries messages between this rank's workers and the other ranks, the
 * failures of any rank to every rank, and ends the run with the other ranks. */
void *loom__net_main(void *thread);
/* A message from outside a worker (the communication thread, the joining caller) to a worker. */
void loom__rt_post(loom__rt *rt, uint32_t thread, const loom__rt_msg *m);

/* run.c */
void loom__rt_stop(loom__rt *rt);
void loom__rt_actor_done(loom__rt *rt);
loom_status loom__rt_failv(loom__rt *rt, loom_status st, const char *fmt, va_list ap);
/* Records an error (first one wins) and drains the run instead of stopping it: the sources end
 * their data, the pieces already begun complete wherever they do not need the failed act. */
loom_status loom__rt_drain(loom__rt *rt, loom_status st, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Sends a message from thread `self` to an actor of thread `thread`. */
static inline void loom__rt_send(loom__rt_thread *self, uint32_t thread, const loom__rt_msg *m)
{
    if (thread == self->index) {
        loom__fifo_push(&self->fifo, m);
        return;
    }
    loom__rt_thread *d = &self->rt->threads[thread];
    loom__ring_push(&d->ring, m);
    ck_ec32_inc(&d->ec, &loom__ec_mode);
}

static inline int loom__rt_stopping(loom__rt *rt) { return atomic_load_explicit(&rt->stop, memory_order_relaxed); }
/* Sources produce no new piece: a callback failed, or the run is cancelled. */
static inline int loom__rt_draining(loom__rt *rt)
{
    return atomic_load_explicit(&rt->draining, memory_order_relaxed) || atomic_load_explicit(&rt->cancel_req, memory_order_relaxed);
}
#endif /* LOOM__RT_PRIVATE */

#endif
