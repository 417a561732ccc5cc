/* Shared by the runtime tests: test actors that write and check values per piece, and builders.
 * Act callbacks never call ck_assert (they run on worker threads): a failed check returns an
 * error with a message, which fails the run. Piece counts shrink under ThreadSanitizer, or by
 * $LOOM_RT_TEST_SCALE (a divisor). */
#ifndef LOOM_TESTS_RT_HELPERS_H
#define LOOM_TESTS_RT_HELPERS_H

#include "harness.h"

#include "runtime/runtime.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define RT_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define RT_TSAN 1
#endif
#endif

static inline int64_t scaled(int64_t n)
{
    const char *s = getenv("LOOM_RT_TEST_SCALE");
    int64_t div = s && atoll(s) > 0 ? atoll(s) : 1;
#ifdef RT_TSAN
    if (!s)
        div = 10;
#endif
    return n / div > 10 ? n / div : 10;
}

/* The value actor `k` writes at piece p; its consumers check it. */
static inline int64_t val(int64_t p, int k) { return p * 1009 + k; }

#define MAXB 4
typedef struct tact {
    int k;                  /* stage; written values are val(piece, k) */
    int nin;
    int expect_k[32];       /* input i must hold val(piece, expect_k[i]) */
    int64_t buf[MAXB];
    void *ptr[MAXB];
    /* sources */
    int64_t eod_at;         /* set eod at this piece (-1: never) */
    /* failures */
    int64_t fail_at;        /* return fail_st at this piece (-1: never) */
    loom_status fail_st;
    /* sinks */
    int64_t next;           /* the piece expected next */
    int64_t count;
    /* parameter holder */
    int64_t param;
    useconds_t sleep_us;    /* per act, to make cancel land mid-run */
} tact;

static inline loom_status check_fail(loom__act *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline loom_status check_fail(loom__act *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->msg, a->msg_size, fmt, ap);
    va_end(ap);
    return LOOM_ERR_RUNTIME;
}

/* Generic stage: checks every input's piece and value, writes val(piece, k) to every output. Sinks
 * (no outputs) also check that pieces arrive once each, in order. */
static inline loom_status stage_act(void *ctx, loom__act *a)
{
    tact *c = ctx;
    if (c->sleep_us)
        usleep(c->sleep_us);
    if (a->piece == c->fail_at) {
        snprintf(a->msg, a->msg_size, "planned failure at %" PRId64, a->piece);
        return c->fail_st;
    }
    if (a->nin == 0 && a->piece == c->eod_at) {
        a->eod = 1;
        return LOOM_OK;
    }
    for (int i = 0; i < a->nin; i++) {
        if (a->in_piece[i] != a->piece)
            return check_fail(a, "input %d has piece %" PRId64 ", act piece %" PRId64, i, a->in_piece[i], a->piece);
        int64_t v = *(const int64_t *)a->in[i];
        if (v != val(a->piece, c->expect_k[i]))
            return check_fail(a, "input %d holds %" PRId64 ", expected %" PRId64, i, v, val(a->piece, c->expect_k[i]));
    }
    for (int j = 0; j < a->nout; j++)
        *(int64_t *)a->out[j] = val(a->piece, c->k);
    if (a->nout == 0) {
        if (a->piece != c->next)
            return check_fail(a, "sink got piece %" PRId64 ", expected %" PRId64, a->piece, c->next);
        c->next++;
    }
    c->count++;
    return LOOM_OK;
}

static inline tact *tact_new(int k)
{
    tact *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->k = k;
    c->eod_at = -1;
    c->fail_at = -1;
    for (int b = 0; b < MAXB; b++)
        c->ptr[b] = &c->buf[b];
    return c;
}

/* Adds an actor with one output register of regst_num buffers (nout 0 or 1). */
static inline void add(loom__rt *rt, uint64_t id, const char *name, tact *c, int nin, int nout, int regst_num)
{
    loom__regst_desc out = {.regst_num = regst_num, .bufs = c->ptr};
    loom_status st = loom__rt_add_actor(rt, &(loom__actor_desc){.id = id, .name = name, .act = stage_act, .ctx = c,
                                                                 .nin = nin, .nout = nout, .out = nout ? &out : NULL});
    ck_assert_int_eq(st, LOOM_OK);
    c->nin = nin;
}

static inline uint64_t cpu_id(int dev, int task) { return loom__aid(0, LOOM__RT_DEV_CPU, (unsigned)dev, 0, (unsigned)task); }

static inline loom__rt *rt_new(void)
{
    loom__rt *rt = loom__rt_new(&(loom__rt_opts){.pin = 1, .spin = -1});
    ck_assert_ptr_nonnull(rt);
    return rt;
}

/* ---- ids ------------------------------------------------------------------------------------- */

#endif
