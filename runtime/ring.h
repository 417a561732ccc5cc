/* Message queues of a worker thread: the MPSC ring other threads post to (concurrencykit's
 * ck_ring, messages stored by value) and the plain FIFO for messages between actors of the same
 * thread. Both are sized at setup from the plan so that a push can never fail (see layout.c,
 * plan_queues); a failing push is a bug in that bound, hence an assert. Private to runtime/.
 *
 * ThreadSanitizer: ck's atomics are inline assembly that TSan does not see, so it would take the
 * ring's slot copies for races and, worse, would not see that a REQ orders the producer's writes to
 * a buffer before the consumer's reads. Under TSan the ring accesses are therefore hidden
 * (__tsan_ignore_thread_begin/end) and the ordering the ring really provides is declared instead:
 * a release on the ring before each enqueue, an acquire after each successful dequeue. Builds
 * without TSan compile to the bare ck calls. */
#ifndef LOOM_RUNTIME_RING_H
#define LOOM_RUNTIME_RING_H

#include "runtime/runtime.h"

#include <assert.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <time.h> /* ck_ec.h needs struct timespec */

#include <ck_ec.h>
#include <ck_pr.h>
#include <ck_ring.h>

#if defined(__SANITIZE_THREAD__)
#define LOOM__TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOOM__TSAN 1
#endif
#endif

#ifdef LOOM__TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
void __tsan_ignore_thread_begin(void);
void __tsan_ignore_thread_end(void);
#define LOOM__TSAN_RELEASE(p) __tsan_release(p)
#define LOOM__TSAN_ACQUIRE(p) __tsan_acquire(p)
#define LOOM__TSAN_IGNORE_BEGIN() __tsan_ignore_thread_begin()
#define LOOM__TSAN_IGNORE_END() __tsan_ignore_thread_end()
#else
#define LOOM__TSAN_RELEASE(p) ((void)0)
#define LOOM__TSAN_ACQUIRE(p) ((void)0)
#define LOOM__TSAN_IGNORE_BEGIN() ((void)0)
#define LOOM__TSAN_IGNORE_END() ((void)0)
#endif

_Static_assert(sizeof(loom__rt_msg) == 32, "a message is 32 bytes");

/* ck_ring_{enqueue,dequeue}_mpsc_loom__rt_msg: messages stored by value in the ring's slots. */
CK_RING_PROTOTYPE(loom__rt_msg, loom__rt_msg)

/* ---- the MPSC ring ------------------------------------------------------------------------ */

typedef struct loom__ring {
    ck_ring_t ring;         /* ck pads producer and consumer indices onto separate cache lines */
    loom__rt_msg *slots;    /* ring.size slots; holds ring.size - 1 messages */
} loom__ring;

/* Any thread. Never fails when the ring was sized from the plan.
 *
 * ck's MP enqueue is reserve, copy, commit, and a commit waits (spinning) until every earlier
 * reservation has committed. A producer preempted between its reserve and its commit, which is
 * common when threads outnumber cores (the wake-up we send preempts whoever runs on that core),
 * would make the next producer on the same core spin for a whole time slice: we measured 1 ms per
 * act on 4 threads over 2 cores. So we wait for our turn ourselves, yielding after a short spin,
 * and call ck's commit only when it will not spin. */
static inline void loom__ring_push(loom__ring *r, const loom__rt_msg *m)
{
    unsigned ticket;
    LOOM__TSAN_RELEASE(r);
    LOOM__TSAN_IGNORE_BEGIN();
    loom__rt_msg *slot;
    while (!(slot = ck_ring_enqueue_reserve_mpsc_loom__rt_msg(&r->ring, r->slots, &ticket))) {
        assert(0 && "runtime ring full: the plan's bound on messages in flight is wrong");
        sched_yield(); /* with NDEBUG: wait for room rather than write nowhere */
    }
    *slot = *m;
    for (unsigned spins = 0; ck_pr_load_uint(&r->ring.p_tail) != ticket; spins++) {
        if (spins < 64)
            ck_pr_stall();
        else
            sched_yield();
    }
    ck_ring_enqueue_commit_mpsc(&r->ring, ticket);
    LOOM__TSAN_IGNORE_END();
}

/* The owning thread only. */
static inline bool loom__ring_pop(loom__ring *r, loom__rt_msg *m)
{
    LOOM__TSAN_IGNORE_BEGIN();
    bool ok = ck_ring_dequeue_mpsc_loom__rt_msg(&r->ring, r->slots, m);
    LOOM__TSAN_IGNORE_END();
    if (ok)
        LOOM__TSAN_ACQUIRE(r);
    return ok;
}

/* The owning thread only; a racing push may make it stale at once (callers re-check). */
static inline bool loom__ring_empty(loom__ring *r)
{
    LOOM__TSAN_IGNORE_BEGIN();
    unsigned n = ck_ring_size(&r->ring);
    LOOM__TSAN_IGNORE_END();
    return n == 0;
}

/* ---- the local FIFO ------------------------------------------------------------------------ */

typedef struct loom__fifo {
    loom__rt_msg *slots;
    uint32_t mask;          /* capacity - 1, capacity a power of two */
    uint32_t head, tail;    /* free-running; tail - head messages are queued */
} loom__fifo;

static inline void loom__fifo_push(loom__fifo *f, const loom__rt_msg *m)
{
    assert(f->tail - f->head <= f->mask && "runtime local queue full: the plan's bound is wrong");
    f->slots[f->tail++ & f->mask] = *m;
}

static inline bool loom__fifo_pop(loom__fifo *f, loom__rt_msg *m)
{
    if (f->head == f->tail)
        return false;
    *m = f->slots[f->head++ & f->mask];
    return true;
}

/* ---- wake-ups ------------------------------------------------------------------------------ */

/* Futex-backed ops for ck_ec (run.c). A sleeping thread waits on its event count; whoever
 * makes it runnable posts, then increments the count, which wakes it only if it is asleep. */
extern const struct ck_ec_mode loom__ec_mode;

/* Waits until ec's value differs from v or CLOCK_MONOTONIC passes dl. ck_ec's own timed wait
 * sleeps in steps of its backoff (the first 2 ms long with loom__ec_mode) and gives the futex the
 * step's end even when dl is sooner, so a wait of 4 us lasted 2 ms; each step here ends by dl. */
void loom__ec_wait_until(struct ck_ec32 *ec, const struct ck_ec_mode *mode, uint32_t v, const struct timespec *dl);
/* 1 when time a is before time b. */
static inline int loom__ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

#endif
