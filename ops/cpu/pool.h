/* The CPU kernels' thread pool: a kernel splits its work into parts and runs them on the pool's
 * threads, the caller taking part 0. One pool per program, of the program's kernel thread count
 * (loom_train_opts.threads). Idle workers sleep on a condition variable: they never spin against
 * the runtime's threads.
 *
 * A kernel's result must not depend on how its parts were run: loom__pool_run may run them all on
 * the caller, one after the other (no pool, or the pool busy with another caller's parts), so a
 * kernel gives each output element to exactly one part and computes it the same way whatever the
 * split. */
#ifndef LOOM_OPS_CPU_POOL_H
#define LOOM_OPS_CPU_POOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct loom__pool loom__pool;

/* A pool of threads - 1 workers (threads >= 2); NULL when out of memory or no thread could start. */
loom__pool *loom__pool_new(int threads);
void loom__pool_free(loom__pool *p);

/* The cores this process may run on (its affinity mask when the library was loaded), at least 1:
 * the default thread count. */
int loom__pool_cores(void);

/* The threads a kernel may split over: 1 without a pool. */
int loom__pool_threads(const loom__pool *p);

/* Calls fn(arg, part, nparts) for every part in [0, nparts) and returns when all returned; on
 * the pool's workers when it is free, else all on the caller. */
typedef void (*loom__pool_fn)(void *arg, int part, int nparts);
void loom__pool_run(loom__pool *p, int nparts, loom__pool_fn fn, void *arg);

/* Parts for work of `work` units (flops or bytes, roughly): 1 below a size where waking a worker
 * costs more than it saves, else the pool's threads. */
int loom__pool_parts(const loom__pool *p, double work);

/* [*lo, *hi): part `part` of nparts of the rows of a CSR matrix, split so that each part holds
 * about as many nonzeros (rowptr has nrows + 1 entries). */
void loom__pool_split_csr(const int32_t *rowptr, int64_t nrows, int part, int nparts, int64_t *lo, int64_t *hi);

/* [*lo, *hi): part `part` of nparts of n items split evenly. */
void loom__pool_split(int64_t n, int part, int nparts, int64_t *lo, int64_t *hi);

#ifdef __cplusplus
}
#endif

#endif
