/* Per-thread act records for tracing (runtime.h has the reading API). Each worker appends to its
 * own buffer, so recording takes no lock and no atomic; the buffers are read after the threads are
 * joined. Private to runtime/. */
#ifndef LOOM_RUNTIME_TRACE_H
#define LOOM_RUNTIME_TRACE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

typedef struct loom__trace_rec {
    int64_t piece;
    int64_t begin_ns, end_ns;
    uint32_t actor;   /* index into the runtime's actor array */
    uint32_t initial;
} loom__trace_rec;

typedef struct loom__trace_buf {
    loom__trace_rec *rec;
    size_t n, cap;
    size_t lost;      /* records dropped because growing failed */
} loom__trace_buf;

static inline int64_t loom__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The time ns (under a second) from now on clock clk: a deadline for a timed wait. */
static inline struct timespec loom__deadline_after(clockid_t clk, long ns)
{
    struct timespec dl;
    clock_gettime(clk, &dl);
    dl.tv_nsec += ns;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    return dl;
}

/* Doubles the buffer; on failure counts the record as lost and returns 0. */
int loom__trace_grow(loom__trace_buf *b);

static inline void loom__trace_add(loom__trace_buf *b, uint32_t actor, int64_t piece, int initial, int64_t begin_ns,
                                   int64_t end_ns)
{
    if (b->n == b->cap && !loom__trace_grow(b))
        return;
    b->rec[b->n++] = (loom__trace_rec){.piece = piece, .begin_ns = begin_ns, .end_ns = end_ns, .actor = actor,
                                       .initial = (uint32_t)initial};
}

void loom__trace_free(loom__trace_buf *b);

/* The file of one run named by a trace pattern (opts.trace, $LOOM_TRACE): %p the process id, %n
 * the run's number among the process's traced runs, %% a '%', any other byte itself. Allocated
 * (the caller frees it), or NULL with msg set: a '%' before any other byte or ending the pattern
 * (the message names it and its byte), or out of memory. */
char *loom__trace_path(const char *pattern, long pid, uint64_t run, char *msg, size_t len);
/* The next number of the process's traced runs (0, 1, ...), from any thread. */
uint64_t loom__trace_next_run(void);

#endif
